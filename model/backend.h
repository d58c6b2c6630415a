/* The backend interface: a small table of functions that executes a HfamGraph.
 * A backend owns its buffers (host or device) and its own copy of the weights in the layout
 * it runs fastest. Stages may be asynchronous; synchronize() waits for everything queued. */
#ifndef HFAM_BACKEND_H
#define HFAM_BACKEND_H

#include "graph.h"

G_BEGIN_DECLS

typedef struct _HfamBackend HfamBackend;

typedef struct {
  const char *name;
  /* Prepares execution for one input size (both multiples of 32); called again on a change. */
  gboolean (*plan) (HfamBackend *backend, int width, int height, GError **error);
  /* Copies the normalised input (3 planes, host memory) in. */
  gboolean (*set_input) (HfamBackend *backend, const float *input, GError **error);
  /* Queues the nodes of one stage; stages are queued in HfamStage order. */
  gboolean (*run_stage) (HfamBackend *backend, HfamStage stage, GError **error);
  gboolean (*synchronize) (HfamBackend *backend, GError **error);
  /* Copies the requested outputs (any pointer may be NULL) to host planes. */
  gboolean (*get_outputs) (HfamBackend *backend, HfamOutputs *out, GError **error);
  void (*free) (HfamBackend *backend);
  /* Optional (NULL where the backend runs one frame at a time): queues the input and every
   * stage of one frame and returns without waiting; at most `pipeline_depth` frames are in
   * flight, collected in order by collect_frame, which waits for the oldest one. */
  gboolean (*queue_frame) (HfamBackend *backend, const float *input, GError **error);
  gboolean (*collect_frame) (HfamBackend *backend, HfamOutputs *out, GError **error);
} HfamBackendOps;

struct _HfamBackend {
  const HfamBackendOps *ops;
  const HfamGraph *graph;
  int pipeline_depth;          /* frames in flight with queue_frame (0 or 1: one) */
  HfamPrecision precision;     /* what it computes in (HFAM_PRECISION_DEFAULT: fp32) */
};

HfamBackend *hfam_backend_cpu_new (const HfamGraph *graph, int n_threads, GError **error);

/* The CUDA backend (model/backend-cuda.c), where the build has one (HFAM_HAVE_CUDA). */
typedef struct {
  gboolean fp16;          /* NHWC fp16 on tensor cores; FALSE: fp32 (no TF32) */
  int pipeline_depth;     /* frames in flight, 1 or 2 (<= 0: 1) */
  gboolean no_graphs;     /* queue each frame's work instead of replaying a CUDA graph */
} HfamCudaOptions;

/* NULL, with an HFAM_ERROR_BACKEND error saying why, when no CUDA device opens (no driver,
 * no device, device_id out of range) or cuDNN cannot start. device_id < 0: the first. */
HfamBackend *hfam_backend_cuda_new (const HfamGraph *graph, int device_id,
                                    const HfamCudaOptions *options, GError **error);

G_END_DECLS

#endif
