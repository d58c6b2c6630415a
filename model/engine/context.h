/* libhfam's context: what hfam.c (model and context), tensors.c (the network on tensors,
 * frames in flight) and frames.c (images in and out, the kept matte) share. Private to
 * model/engine/. */
#ifndef HFAM_CONTEXT_H
#define HFAM_CONTEXT_H

#include <hfam/hfam.h>
#include "backend.h"
#include "batch.h"
#include "box.h"
#include "safetensors.h"

G_BEGIN_DECLS

#define HFAM_MAX_PIPELINE_DEPTH 2

struct _HfamModel {
  gint refs;
  char *path;
  char *shared_key;  /* hfam_model_load_shared's: the file's identity; NULL for a private one */
  HfamSafetensors *st;
  HfamHparams hp;
  HfamGraph *graph;
  HfamCpuWeightCache *cpu_weights;  /* the CPU backends' of its contexts */
  HfamBatchGroups batch_groups;     /* of its contexts with HfamOptions.max_batch > 1 */
};

/* What a submitted frame needs when it is collected. */
typedef struct {
  int frame_width, frame_height;  /* the frame's own size; 0 for a submitted tensor */
  HfamMemory memory;              /* where the frame, and so its matte, are */
  int long_side;                  /* the long side it runs at */
  float pixel_aspect;             /* its HfamFrameParams.pixel_aspect, 1 for 0 */
  float smoothing;                /* its HfamFrameParams.smoothing */
  HfamTemporal temporal;          /* and .temporal */
  float islands;                  /* and .islands */
  gboolean letterbox;             /* and .letterbox */
  int slot;                       /* host frames: its grey plane in HfamContext.grey (with
                                     a motion-weighted temporal method or letterbox) */
  gboolean fused_only;            /* its collect wants alpha_p alone (a batch group's lane
                                     then fetches nothing else) */
} HfamPendingFrame;

/* The kept matte's host memory, reused from frame to frame and counted in the context's
 * budget; a device frame's kept matte leaves it for the next host frame. */
typedef struct {
  float *host;             /* the matte */
  /* the matte resized to the last output size asked for, so that a fill and a key of one
   * frame resize it once */
  float *resized;
  /* HFAM_TEMPORAL_MOTION and _COMPENSATED: the grey plane of the matte's latest frame */
  float *grey;
  /* HFAM_TEMPORAL_COMPENSATED: kernels/compensate.h's scratch */
  float *flow_scratch;
  /* hfam_context_follow: a frame that does not run, preprocessed (three planes) and its grey
   * plane */
  float *follow;
  /* HFAM_TEMPORAL_MOTION and _COMPENSATED with guided refinement: the refined matte's detail
   * held at the frame's size where the picture is still (kernels/refine.h), and the blend's
   * still weights it is held with (kernels/temporal.h) */
  float *still;
  float *held;
  /* HfamFrameParams.islands: kernels/islands.h's scratch (labels and masses) */
  float *islands;
  guint64 host_bytes, resized_bytes, grey_bytes, flow_scratch_bytes, follow_bytes, still_bytes,
      held_bytes, islands_bytes;
} HfamKeptBuffers;

/* The kept matte (hfam.h): alpha_p of the last frame collected, at its inference size. Host
 * frames keep it in `buffers`; device frames in the backend's memory (backend.h), described
 * here. */
typedef struct {
  gboolean valid;
  HfamMemory memory;
  int long_side;           /* the long side its frame ran at */
  float pixel_aspect;      /* and the pixel aspect */
  int width, height;       /* its inference size */
  HfamKeptBuffers buffers;
  /* the rest describes the buffers of a host frame's matte */
  int resized_width, resized_height;
  gboolean grey_valid;
  gboolean compensates;    /* its frame asked for HFAM_TEMPORAL_COMPENSATED */
  gboolean holds;          /* its frame asked for the held detail (smoothing > 0) */
  gboolean still_valid;    /* still belongs to the kept matte's blend with the one before */
  int held_width, held_height;
  gboolean held_current;   /* held was refined from the kept matte, for its frame */
  HfamBars bars;           /* the black bars cleared from it (kernels/bars.h); 0 without
                              HfamFrameParams.letterbox */
} HfamKeptMatte;

struct _HfamContext {
  HfamModel *model;
  /* what it was made with, the backend as it resolved (hfam_context_new_sibling) */
  HfamOptions options;
  HfamCudaOptions cuda;
  /* its own, or its batch group's first, which only the group runs */
  HfamBackend *backend;
  HfamBatchGroup *group;  /* NULL: the context runs its frames itself */
  /* in a batch group on CUDA: its own frames-only backend (backend.h), which preprocesses its
   * device frames and keeps and writes their mattes while the group's lane runs their
   * network; NULL otherwise */
  HfamBackend *device_backend;
  int pipeline_depth;     /* hfam_context_pipeline_depth */
  int host_threads;       /* OpenMP team for the resizes on the host, any backend */
  HfamHostBudget budget;  /* host memory its plans and frames may commit, and hold now */
  gboolean timing;
  double stage_seconds[HFAM_N_STAGES];
  int width, height;      /* the planned inference size */
  float *input;           /* normalised input planes */
  float *fused;           /* alpha_p at the inference size */
  /* frames submitted and not yet collected, oldest at pending[first_pending] */
  HfamPendingFrame pending[HFAM_MAX_PIPELINE_DEPTH];
  /* host frames in flight with HFAM_TEMPORAL_MOTION or _COMPENSATED, or with letterbox: their
   * grey planes at the inference size (kernels/temporal.h), by ring position as `pending` */
  float *grey[HFAM_MAX_PIPELINE_DEPTH];
  guint64 grey_bytes[HFAM_MAX_PIPELINE_DEPTH];
  int first_pending, n_pending;
  /* with a batch group: the group's frame of each frame in flight, by ring position */
  HfamBatchFrame *batched[HFAM_MAX_PIPELINE_DEPTH];
  HfamKeptMatte kept;
  HfamEdgeParams edges;       /* hfam_context_set_edges */
  /* host frames: the refinement's and foreground's memory, kept from frame to frame and
   * counted in the budget */
  HfamScratch edge_scratch;
};

/* FALSE, with an error, while submitted frames are not collected. */
gboolean hfam_context_no_frames_in_flight (HfamContext *ctx, GError **error);

/* The frames in flight, one mechanism for host and device frames. `what` names the caller
 * in the errors. */
/* Whether a frame in this memory and of this inference size may go in now (room under the
 * pipeline depth, no frame in other memory in flight, the inference size of those in
 * flight); plans the backend for it. */
gboolean hfam_context_ready_to_submit (HfamContext *ctx, HfamMemory memory, int width,
                                       int height, const char *what, GError **error);
/* ctx->input (planned) into the backend as a frame in flight; `pending` says what collect
 * needs. */
gboolean hfam_context_submit_input (HfamContext *ctx, const HfamPendingFrame *pending,
                                    GError **error);
/* Records a frame the backend has queued; `batched`: the batch group's frame of it (NULL
 * outside a group). */
void hfam_context_add_pending (HfamContext *ctx, const HfamPendingFrame *frame,
                               HfamBatchFrame *batched);
/* The oldest frame in flight (NULL, with an error, when there is none). */
const HfamPendingFrame *hfam_context_oldest_pending (HfamContext *ctx, const char *what,
                                                     GError **error);
/* The oldest host frame's outputs (there is one); it is out of flight afterwards, even when
 * this fails (the backend dropped it). */
gboolean hfam_context_collect_outputs (HfamContext *ctx, HfamOutputs *out, GError **error);
/* Takes the oldest frame out of flight, once the backend collected it (or failed to: it
 * dropped the frame then). */
void hfam_context_drop_oldest (HfamContext *ctx);
/* One frame of ctx->input through every stage, synchronously, timed when timing is on. */
gboolean hfam_context_run_input (HfamContext *ctx, HfamOutputs *out, GError **error);

/* The kept matte on the host (kept.c). */
/* A host buffer of `bytes` in *buffer, counted in the budget (*held: what it holds now); kept
 * when it has that size already. A refusal leaves none. `what`, width and height name the
 * size in the errors. */
gboolean hfam_context_ensure_counted (HfamContext *ctx, float **buffer, guint64 *held,
                                      guint64 bytes, const char *what, int width, int height,
                                      GError **error);
/* The kept matte and its grey plane moved in place along the picture's motion from that grey
 * plane to `grey` (kernels/compensate.h); *moved: the flow scratch's plane of how far the
 * picture moved around each pixel. A failure leaves both as they were. */
gboolean hfam_context_compensate_kept (HfamContext *ctx, const float *grey, const float **moved,
                                       GError **error);
/* The fresh matte of a collected host frame (ctx->fused) into the kept one, with `collected`'s
 * black bars, islands, smoothing and temporal method; a failure keeps none. */
gboolean hfam_context_keep_host_matte (HfamContext *ctx, const HfamPendingFrame *collected,
                                       GError **error);

G_END_DECLS

#endif
