/* What libhfam's own tests and benchmarks reach below the public API (hfam.h): the network on
 * normalised tensors at the inference size, its intermediate outputs, per-stage timing, the
 * hyper-parameters. Not installed; libhfam_internal_dep exports it. */
#ifndef HFAM_INTERNAL_H
#define HFAM_INTERNAL_H

#include <hfam/hfam.h>
#include "backend.h"
#include "batch.h"
#include "frame.h"
#include "hparams.h"

G_BEGIN_DECLS

const HfamHparams *hfam_model_hparams (const HfamModel *model);

/* The bytes of weights the CPU backends of the model's contexts hold in their own layouts:
 * each layout once, however many contexts use it. */
guint64 hfam_model_cpu_weight_bytes (const HfamModel *model);

/* The model's preprocessing parameters (channel order, scale, mean, std; yuv left zero), as
 * kernels/preprocess.cu and its CPU twin hfam_frame_preprocess take them. */
void hfam_model_preprocess_params (const HfamModel *model, HfamPreprocessParams *params);

/* The motion-aware blend's parameters (kernels/temporal.h) for a temporal smoothing: hold
 * `smoothing`, the rest from hfam.h's HFAM_MOTION_*, as the element's frames get them. */
void hfam_motion_params_init (HfamMotionParams *p, float smoothing);

/* HFAM_TEMPORAL_COMPENSATED's flow parameters (kernels/compensate.h): hfam.h's HFAM_FLOW_*. */
void hfam_flow_params_init (HfamFlowParams *p);

/* Inference size for a frame (model/README.md): the picture as shown (its width times
 * `pixel_aspect`, HfamFrameParams'; <= 0: 1) scaled to long side `long_side`, each side
 * rounded to a multiple of 32. */
void hfam_inference_dims (int frame_w, int frame_h, float pixel_aspect, int long_side,
                          int *inf_w, int *inf_h);

/* The network on an already normalised input tensor (3 planes, NCHW, N = 1) whose width and
 * height are multiples of 32; outputs at the same size. */
gboolean hfam_context_run_tensor (HfamContext *ctx, const float *input, int width,
                                  int height, HfamOutputs *out, GError **error);

/* Pipelined tensors, as hfam_context_submit and hfam_context_collect take frames: the input
 * is copied before submit returns; `out` may be NULL. */
gboolean hfam_context_submit_tensor (HfamContext *ctx, const float *input, int width,
                                     int height, GError **error);
/* The same for a frame whose collect asks for alpha_p alone (out->fused): a batch group's
 * lane then fetches nothing else from the device. */
gboolean hfam_context_submit_tensor_alpha (HfamContext *ctx, const float *input, int width,
                                           int height, GError **error);
gboolean hfam_context_collect_tensor (HfamContext *ctx, HfamOutputs *out, GError **error);

/* What the context's batch group has run so far (batch.h); FALSE for a context without
 * one. */
gboolean hfam_context_batch_counts (HfamContext *ctx, HfamBatchCounts *counts);

/* The host memory counted in the context's budget now (HfamOptions.memory_budget), bytes. */
guint64 hfam_context_host_memory (const HfamContext *ctx);

/* Per-stage timing of the last synchronous run, in seconds (each stage synchronised while
 * timing is on). */
void hfam_context_set_timing (HfamContext *ctx, gboolean enabled);
void hfam_context_stage_times (const HfamContext *ctx, double seconds[HFAM_N_STAGES]);

G_END_DECLS

#endif
