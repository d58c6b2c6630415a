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
} HfamBackendOps;

struct _HfamBackend {
  const HfamBackendOps *ops;
  const HfamGraph *graph;
};

HfamBackend *hfam_backend_cpu_new (const HfamGraph *graph, int n_threads, GError **error);

G_END_DECLS

#endif
