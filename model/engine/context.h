/* libhfam's context, shared by the host-frame API (hfam.c) and the device-frame API
 * (hfam-device.c). Private to model/. */
#ifndef HFAM_CONTEXT_H
#define HFAM_CONTEXT_H

#include "backend.h"
#include "frame.h"

G_BEGIN_DECLS

#define HFAM_MAX_PIPELINE_DEPTH 2

/* What a submitted frame needs when it is collected. */
typedef struct {
  int frame_width, frame_height;  /* the frame's own size; 0 for a submitted tensor */
  gboolean on_device;             /* submitted by hfam_context_submit_device_frame */
  int long_side;                  /* device frames: the long side it runs at */
} HfamPendingFrame;

struct _HfamContext {
  HfamModel *model;
  HfamBackend *backend;
  int host_threads;       /* OpenMP team for the resizes on the host, any backend */
  gboolean timing;
  double stage_seconds[HFAM_N_STAGES];
  int width, height;      /* the planned inference size */
  float *input;           /* normalised input planes */
  float *fused;           /* alpha_p at the inference size */
  /* frames submitted and not yet collected, oldest at pending[first_pending] */
  HfamPendingFrame pending[HFAM_MAX_PIPELINE_DEPTH];
  int first_pending, n_pending;
  /* the backend's kept matte (hfam-device.h): the long side its frame ran at and its
   * inference size; 0 x 0 while there is none */
  int kept_long_side, kept_width, kept_height;
};

/* Plans the backend for an inference size (a no-op when it is the planned one). */
gboolean hfam_context_ensure_size (HfamContext *ctx, int width, int height, GError **error);
/* FALSE, with an error, while submitted frames are not collected. */
gboolean hfam_context_no_frames_in_flight (HfamContext *ctx, GError **error);

/* The frames in flight, one mechanism for host and device frames. `what` names the caller
 * in the errors. */
/* Whether a frame of this kind and inference size may go in now (room under the pipeline
 * depth, no frame of the other kind in flight, the inference size of those in flight);
 * plans the backend for it. */
gboolean hfam_context_ready_to_submit (HfamContext *ctx, gboolean on_device, int width,
                                       int height, const char *what, GError **error);
/* Records a frame the backend has queued. */
void hfam_context_add_pending (HfamContext *ctx, const HfamPendingFrame *frame);
/* The oldest frame in flight, when there is one and it is of this kind (else NULL, with an
 * error, and nothing changes). */
const HfamPendingFrame *hfam_context_oldest_pending (HfamContext *ctx, gboolean on_device,
                                                     const char *what, GError **error);
/* Takes the oldest frame out of flight, once the backend collected it (or failed to: it
 * dropped the frame then). */
void hfam_context_drop_oldest (HfamContext *ctx);

G_END_DECLS

#endif
