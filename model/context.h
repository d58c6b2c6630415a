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
} HfamPendingFrame;

typedef struct _HfamDeviceState HfamDeviceState;

struct _HfamContext {
  HfamModel *model;
  HfamBackend *backend;
  gboolean timing;
  double stage_seconds[HFAM_N_STAGES];
  int width, height;      /* the planned inference size */
  float *input;           /* normalised input planes */
  float *fused;           /* alpha_p at the inference size */
  /* frames submitted and not yet collected, oldest at pending[first] */
  HfamPendingFrame pending[HFAM_MAX_PIPELINE_DEPTH];
  int first_pending, n_pending;
  HfamDeviceState *device;  /* hfam-device.c's state, NULL until a device frame arrives */
};

/* Plans the backend for an inference size (a no-op when it is the planned one). */
gboolean hfam_context_ensure_size (HfamContext *ctx, int width, int height, GError **error);
/* FALSE, with an error, while submitted frames are not collected. */
gboolean hfam_context_no_frames_in_flight (HfamContext *ctx, GError **error);
/* The preprocessing parameters of the model (order, scale, mean, std; yuv left zero). */
void hfam_context_preprocess_params (const HfamContext *ctx, HfamPreprocessParams *params);

/* hfam-device.c */
void hfam_device_state_free (HfamDeviceState *state);

G_END_DECLS

#endif
