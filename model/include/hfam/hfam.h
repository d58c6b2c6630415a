/* libhfam: the HFAM portrait matting network (see model/README.md) on interchangeable
 * backends. Load a model once, make a context per stream, and run frames through it:
 *
 *   HfamModel *model = hfam_model_load (hfam_default_model_path (), &error);
 *   HfamContext *ctx = hfam_context_new (model, NULL, NULL, &error);
 *   hfam_context_run (ctx, &frame, NULL, &key, 1, &error);
 *
 * Thread-safety: a HfamModel may be shared by threads and contexts (what its contexts share of it
 * is locked); a HfamContext is used by one thread at a time. Every failure is reported through
 * GError (domain HFAM_ERROR, hfam-types.h) with a message naming the file, tensor or argument at
 * fault. */
#ifndef HFAM_H
#define HFAM_H

#include <hfam/hfam-types.h>

G_BEGIN_DECLS

typedef struct _HfamModel HfamModel;
typedef struct _HfamContext HfamContext;

/* Maps, validates and keeps the weight file; builds the graph. NULL on failure. The contexts
 * made on one model share its weights: the mapped file, and the CPU backend's copies in the
 * layouts it computes with (made once for all of them). */
HfamModel *hfam_model_load (const char *path, GError **error);
/* The process's one model for the file at `path`, loaded at the first call and kept while
 * anyone holds it: the same file (device, inode, size and modification time; a file replaced
 * or rewritten since loads anew) gives the same model, so that every stream of a process
 * holds the weights once. Thread-safe. */
HfamModel *hfam_model_load_shared (const char *path, GError **error);
/* A model is reference counted: a context holds one on its model; hfam_model_free drops
 * one, the last frees it. */
HfamModel *hfam_model_ref (HfamModel *model);
void hfam_model_free (HfamModel *model);
const char *hfam_model_path (const HfamModel *model);
/* The long side, in pixels, at which the model runs a frame unless told otherwise. */
int hfam_model_inference_size (const HfamModel *model);

/* The default model: $HFAMMATTE_DEFAULT_MODEL when set (an uninstalled build, tests), else
 * the file installed with the project (DATADIR/hfammatte/default.safetensors). */
const char *hfam_default_model_path (void);

/* "auto", "cpu" or "cuda"; an error naming the choices otherwise. */
gboolean hfam_backend_kind_parse (const char *name, HfamBackendKind *kind, GError **error);
/* "default", "fp32", "fp16", "int8", "bf16" or "int8-bf16" (HFAM_ERROR_ARGUMENT naming them
 * otherwise). */
gboolean hfam_precision_parse (const char *name, HfamPrecision *precision, GError **error);

/* How a context runs; all zero (or NULL) is: the best backend, fp16 on CUDA and fp32 on the
 * CPU, one thread per core, one frame in flight. */
typedef struct {
  HfamBackendKind backend;  /* AUTO falls back to the CPU when no CUDA device opens */
  HfamPrecision precision;
  int n_threads;            /* the CPU backend's threads and the OpenMP team of the frame
                               resizes on the host (set on the calling thread); <= 0: one per
                               core */
  int pipeline_depth;       /* frames in flight with submit/collect, 1 or 2 (<= 0: 1): at 2,
                               CUDA runs the encoder of one frame while the decoders of the
                               previous one run, and the CPU backend runs frames on a thread of
                               its own while the caller prepares the next */
  guint64 memory_budget;    /* bytes of host memory the context may commit for its plans and
                               frames (the CPU backend's activations, scratch, reordered
                               weights -- counted in each context that uses them, though the
                               contexts of a model hold them once -- and queued frames,
                               libhfam's planes at the inference and at the frame size; not the
                               mapped weight file, nor CUDA device memory); a plan or frame
                               above it fails with HFAM_ERROR_BUDGET before it is allocated.
                               0: hfam_default_memory_budget () */
  int max_batch;            /* > 1 (at most 64): the context joins its model's batch group
                               for these options (the contexts of the model with the same
                               backend, precision, n_threads (CPU) or CUDA context (CUDA),
                               max_batch and batch_timeout_us), which runs the frames that
                               its members submit at about the same time as one batch of up
                               to max_batch frames of one inference size. The CPU backend
                               has no batch dimension: the group runs a batch's frames side
                               by side on min(max_batch, n_threads, the sum of the members'
                               pipeline depths) lanes, each a backend with its share of the
                               n_threads (so the group holds a plan a lane, not one a
                               member, and a member alone at depth 1 has all the threads;
                               its memory is counted in a budget of the group's own, the
                               first member's memory_budget). The CUDA backend has one: its
                               group runs a batch as one, on one backend planned for
                               batches of min(max_batch, members) frames, on the members'
                               CUDA context; frames in device memory stay there (each member
                               preprocesses its own and keeps and writes their mattes, as a
                               context alone does). Submit returns at once; collect waits
                               for the frame.
                               <= 1: the context runs its frames itself */
  int batch_timeout_us;     /* how long a batch waits for more frames after its first was
                               submitted, while fewer than max_batch are queued and a member
                               of the group has none queued (a member alone never waits) */
} HfamOptions;

/* The memory budget a context gets by default: half the physical memory, at most 8 GiB. */
guint64 hfam_default_memory_budget (void);

/* What only the CUDA backend reads; NULL: defaults. */
typedef struct {
  int device_id;            /* < 0: the first device */
  gboolean no_graphs;       /* queue every frame's kernels instead of replaying a captured
                               CUDA graph (per-stage timing needs this) */
  gboolean current_context; /* run on the CUDA context current on the calling thread (a
                               GstCudaContext the caller pushed, say) instead of the device's
                               primary one; device_id is then ignored, and that context must be
                               current around every later call on this context, the free
                               included */
} HfamCudaOptions;

HfamContext *hfam_context_new (HfamModel *model, const HfamOptions *options,
                               const HfamCudaOptions *cuda, GError **error);
/* Another context made as `ctx` was (its model, options and CUDA options), on the backend
 * `ctx` runs on (HFAM_BACKEND_AUTO as it resolved): a second stream alike, such as the other
 * field of interlaced video. With HfamCudaOptions.current_context, as for `ctx`, the same CUDA
 * context must be current. */
HfamContext *hfam_context_new_sibling (const HfamContext *ctx, GError **error);
void hfam_context_free (HfamContext *ctx);
const char *hfam_context_backend_name (const HfamContext *ctx);
/* The long side a live stream should run at on this context (the element's
 * `inference-size=0`): the model's own on CUDA; on the CPU a size that sustained 15 frames/s
 * at 1080p on 2 cores with the element's defaults, in the context's precision (BENCHMARKS.md,
 * "A CPU preset"; int8-bf16 the size below the marginal 448's 15.3-15.6; bf16 alone has no
 * size measured and takes fp32's; fp32 without AVX-512, where oneDNN has no Winograd, the one
 * measured with oneDNN held to AVX2), scaled by the square root of the context's threads over
 * 2 (a frame's work grows with the square of the side), rounded to a multiple of 32 and never
 * above the model's own. */
#define HFAM_CPU_REALTIME_LONG_SIDE_FP32 256
#define HFAM_CPU_REALTIME_LONG_SIDE_FP32_AVX2 192
#define HFAM_CPU_REALTIME_LONG_SIDE_INT8 320
#define HFAM_CPU_REALTIME_LONG_SIDE_INT8_BF16 416
int hfam_context_auto_long_side (const HfamContext *ctx);
/* What it computes in (FP32, FP16, or INT8: the CPU's encoder in int8) and how many frames
 * it keeps in flight. */
HfamPrecision hfam_context_precision (const HfamContext *ctx);
int hfam_context_pipeline_depth (const HfamContext *ctx);
/* The largest batch its frames run in: HfamOptions.max_batch in a batch group, else 1. */
int hfam_context_max_batch (const HfamContext *ctx);
/* Whether it runs frames in CUDA memory (HFAM_MEMORY_CUDA) on the device: the CUDA backend's
 * contexts, in a batch group or not. */
gboolean hfam_context_device_frames (const HfamContext *ctx);

/* The bounds of the API's sizes: a frame's sides (HfamImage.width and height) are 1 to
 * HFAM_MAX_FRAME_SIDE, a long side (HfamFrameParams.long_side) at most HFAM_MAX_LONG_SIDE;
 * HFAM_ERROR_ARGUMENT names a value out of them. Within them the memory budget decides. */
#define HFAM_MAX_FRAME_SIDE 32768
#define HFAM_MAX_LONG_SIDE 8192

/* How temporal smoothing blends a frame's matte into the kept one (HfamFrameParams). */
typedef enum {
  HFAM_TEMPORAL_BLEND,   /* everywhere alike: kept = (1 - smoothing) fresh + smoothing kept */
  HFAM_TEMPORAL_MOTION,  /* smoothing where the picture is still, none where it moves, so that
                            still edges stop flickering and moving ones do not lag
                            (kernels/temporal.h, the HFAM_MOTION_* below); with guided
                            refinement, the detail it adds at the frame's size is held
                            likewise where the picture did not move (kernels/refine.h) */
  HFAM_TEMPORAL_COMPENSATED,  /* HFAM_TEMPORAL_MOTION after moving the kept matte along the
                                 picture's motion (kernels/compensate.h, the HFAM_FLOW_* below),
                                 so that moving edges are held where they went too */
} HfamTemporal;

/* HFAM_TEMPORAL_MOTION's picture change (mean |grey difference| in 0..1 over a window of
 * radius HFAM_MOTION_RADIUS at the inference size) up to which the matte is held and from
 * which it follows the frame; and the element's (and the tools') smoothing, the weight with
 * which it holds still pixels (with HFAM_TEMPORAL_COMPENSATED, the element's default method).
 * Chosen on a validation video set (BENCHMARKS.md, "Temporal"). */
#define HFAM_MOTION_STILL 0.005f
#define HFAM_MOTION_MOVING 0.02f
#define HFAM_MOTION_RADIUS 2
#define HFAM_TEMPORAL_SMOOTHING_DEFAULT 0.95f
/* HFAM_TEMPORAL_COMPENSATED holds the pixels near which the picture moved a pixel or more
 * (HFAM_FLOW_SPREAD below) with this share of the smoothing only (from the full smoothing at
 * no motion, linearly): the flow's errors add up while a moving edge is held, and show as lag.
 * Chosen on the validation video set too. */
#define HFAM_MOTION_MOVED_SHARE 0.35f

/* HFAM_TEMPORAL_COMPENSATED's block matching (kernels/compensate.h): blocks of
 * HFAM_FLOW_BLOCK pixels at the inference size, HFAM_FLOW_LEVELS pyramid levels, a search
 * radius of HFAM_FLOW_SEARCH pixels at the coarsest, HFAM_FLOW_BIAS per pixel moved; a pixel
 * counts as moved (HFAM_MOTION_MOVED_SHARE) as far as the picture moved within
 * HFAM_FLOW_SPREAD pixels of it (a block: chosen on the validation video set too). */
#define HFAM_FLOW_BLOCK 8
#define HFAM_FLOW_LEVELS 3
#define HFAM_FLOW_SEARCH 4
#define HFAM_FLOW_BIAS 2e-5f
#define HFAM_FLOW_SPREAD 8

/* HfamFrameParams.islands: the alpha above which pixels join a region, and the element's (and
 * the tools') share, chosen on validation sets of one and of two people (BENCHMARKS.md,
 * "Islands"): busy backgrounds' flowers, boats and patterns that the network takes for the
 * person come out as regions of their own, far smaller than the person; a larger share drops
 * more of them, and more second people who are much smaller than the first. */
#define HFAM_ISLAND_FLOOR 0.05f
#define HFAM_ISLANDS_DEFAULT 0.05f

/* HfamFrameParams.letterbox: the grey value (0..1, at the inference size) at or under which a
 * pixel of a row or column along the frame's edge is a black bar's (kernels/bars.h). Decoded
 * video's black bars come out at 0 to 0.01; a row of a picture is rarely this dark
 * throughout. */
#define HFAM_BAR_BLACK 0.03f

/* How one frame runs; NULL: the model's inference size, no smoothing. */
typedef struct {
  int long_side;    /* the long side the network sees (the other a multiple of 32 too);
                       <= 0: hfam_model_inference_size; at most HFAM_MAX_LONG_SIDE. The CPU
                       backend's memory grows with its square: about 1 GB at 1024,
                       15 GB at 4096 */
  float smoothing;  /* 0..1: temporal smoothing. When the frame's matte arrives it is blended
                       into the kept matte (below), kept = (1 - smoothing) * fresh +
                       smoothing * kept, if there is one of the same inference size; 0: the
                       fresh matte replaces it */
  HfamTemporal temporal;  /* how: HFAM_TEMPORAL_BLEND (0) by default */
  float islands;    /* 0..1: before that, the fresh matte's islands are dropped: regions of
                       pixels above HFAM_ISLAND_FLOOR (8-connected) whose alpha sums to less
                       than this share of the largest region's (kernels/islands.h); 0: none */
  gboolean letterbox;  /* before the islands, the fresh matte is set to 0 over the black bars
                          along the frame's edges (letterbox, pillarbox: kernels/bars.h, with
                          HFAM_BAR_BLACK); FALSE: not */
  float pixel_aspect;  /* the frame's pixels' width over their height (a video's pixel aspect
                          ratio: 4/3 for 1440x1080 HDV shown at 16:9); 0: 1, square. The
                          network sees the picture as it is shown, `long_side` its shown long
                          side: a person squeezed by anamorphic pixels is one it was not
                          trained on. HFAM_MIN_PIXEL_ASPECT .. HFAM_MAX_PIXEL_ASPECT */
} HfamFrameParams;

#define HFAM_MIN_PIXEL_ASPECT 0.0625f
#define HFAM_MAX_PIXEL_ASPECT 16.0f

/* What is done to the matte and the fill at the frame's resolution, on every output written
 * from then on (hfam_context_set_edges): the edges of kernels/refine.h and foreground.h. */
typedef enum {
  HFAM_REFINE_NONE,    /* the matte as resized to the frame */
  HFAM_REFINE_GUIDED,  /* the fast guided filter, guided by the frame's colours: edges follow
                          the frame's instead of the upsampled ramp */
} HfamRefine;

typedef enum {
  HFAM_FILL_FRAME,       /* RGBA/BGRA outputs carry the frame's own pixels */
  HFAM_FILL_FOREGROUND,  /* ... the estimated foreground colour (blur-fusion), without the old
                            background's halo along soft edges */
} HfamFill;

/* The guided filter's window radius (at the inference size) and regulariser, chosen on a
 * validation split of teacher-labelled photos (BENCHMARKS.md, "Edges"), and the blur-fusion
 * radii (at the frame's size). */
#define HFAM_REFINE_RADIUS_DEFAULT 3
#define HFAM_REFINE_EPS_DEFAULT 1e-4f
#define HFAM_FOREGROUND_RADIUS_LARGE 90
#define HFAM_FOREGROUND_RADIUS_SMALL 6
#define HFAM_FOREGROUND_COARSE 4  /* blur-fusion's first pass on cells of 4 x 4 pixels */

typedef struct {
  HfamRefine refine;   /* HFAM_REFINE_NONE by default (the element and the tools: guided) */
  int refine_radius;   /* >= 1, at most 64 */
  float refine_eps;    /* > 0, at most 1 */
  HfamFill fill;       /* HFAM_FILL_FRAME by default */
  float key_black;     /* key levels on every output's matte: below black 0, above white 1, */
  float key_white;     /* linear between; 0 <= black < white <= 1; 0 and 1 leave it as is */
} HfamEdgeParams;

/* libhfam's defaults: the matte as the network made it, resized (no refinement, which needs
 * the frame), the frame's fill, key levels 0 and 1. The element and the tools refine by
 * default (guided, HFAM_REFINE_*_DEFAULT). */
void hfam_edge_params_init (HfamEdgeParams *edges);

/* Sets what every output written from now on (collect, run, write_kept) gets, host and
 * device frames alike; NULL: the defaults. A value out of range fails with
 * HFAM_ERROR_ARGUMENT and changes nothing. Guided refinement reads the frame, so the outputs'
 * calls then need it even for GRAY outputs. */
gboolean hfam_context_set_edges (HfamContext *ctx, const HfamEdgeParams *edges,
                                 GError **error);

/* The kept matte: every frame collected leaves its matte (alpha_p at the inference size) in
 * the context, in the memory its frame came from, to be blended into by the next frame and
 * shown by frames that do not run the network (hfam_context_write_kept). A failed collect
 * keeps none.
 *
 * Outputs: images of the frame's size in the frame's memory, written from the kept matte
 * resized to that size (kernels/frame.h says how: antialiased bilinear, rounded to the
 * nearest level): GRAY8, GRAY16 and (host memory only) GRAY32F are the matte alone; RGBA and
 * BGRA carry `frame`'s colours (straight or premultiplied) with the matte as alpha. */

/* One frame, synchronously: runs the network on it and writes `n_outputs` outputs. Refused
 * while submitted frames are in flight. */
gboolean hfam_context_run (HfamContext *ctx, const HfamImage *frame,
                           const HfamFrameParams *params, const HfamImage *outputs,
                           int n_outputs, GError **error);

/* Pipelined: submit up to hfam_context_pipeline_depth() frames, then collect them oldest
 * first. A host frame is read before submit returns; a CUDA frame is read asynchronously and
 * must stay unchanged until it is collected. Frames in flight share one memory and one
 * inference size. */
gboolean hfam_context_submit (HfamContext *ctx, const HfamImage *frame,
                              const HfamFrameParams *params, GError **error);
/* Waits for the oldest frame in flight, makes its matte the kept one and writes the
 * outputs (n_outputs may be 0); `frame` is the one submitted, read again for the colours of
 * RGBA and BGRA outputs and, with guided refinement, as every output's guide (may be NULL
 * when neither reads it). Returns when the outputs are written. Refused arguments leave the
 * frame in flight; a failure after that drops it. */
gboolean hfam_context_collect (HfamContext *ctx, const HfamImage *frame,
                               const HfamImage *outputs, int n_outputs, GError **error);

/* For a frame that does not run the network: writes the kept matte into its outputs, with
 * `frame`'s colours (`frame` may be NULL when no output is RGBA or BGRA and the refinement is
 * not guided: the outputs then say the frame's size and memory). Also while frames are in
 * flight. Refused when no matte is kept in that memory, or when the frame, at the long side
 * the kept matte's frame ran at, would run at another inference size (its shape differs). */
gboolean hfam_context_write_kept (HfamContext *ctx, const HfamImage *frame,
                                  const HfamImage *outputs, int n_outputs, GError **error);

/* For a frame that does not run the network, once, before its outputs are written: moves the
 * kept matte along the picture's motion from its frame to `frame` (kernels/compensate.h's
 * flow of their grey planes at the inference size), so that it follows a moving person between
 * the frames that run, and the next frame's motion is measured from this one. Only where the
 * kept matte's frame ran with HFAM_TEMPORAL_COMPENSATED; otherwise it does nothing. The
 * refinement's detail held at the frame's size (HFAM_TEMPORAL_MOTION) is not moved: the next
 * frame that runs holds none of it and starts it again. Host and device frames alike (a device
 * frame's on the device). Refused as hfam_context_write_kept is. */
gboolean hfam_context_follow (HfamContext *ctx, const HfamImage *frame, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (HfamModel, hfam_model_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (HfamContext, hfam_context_free)

G_END_DECLS

#endif
