/* libhfam on frames in CUDA device memory (GstCudaMemory, for one): the frame goes to the
 * network and the matte back into device images through kernels/preprocess.cu and matte.cu,
 * never through the host. CUDA contexts only: elsewhere, and in builds without CUDA, these
 * fail with HFAM_ERROR_UNSUPPORTED.
 *
 * The frames' memory must belong to the CUDA context the HfamContext runs on: with
 * HfamContextOptions.cuda_current_context, the one that was current when it was made, and
 * which must be current again around every call. Frames submitted here and host frames
 * (hfam_context_submit_frame) cannot be in flight together.
 *
 * The kept matte: every collect leaves the matte of its frame (alpha_p, fp32 at the inference
 * size, on the device) in the context, for the next collect to blend into (temporal
 * smoothing) and for frames that do not run the network to show
 * (hfam_context_write_kept_matte). Blending here, at the inference size before the resize to
 * the frame's size, gives what blending the resized mattes at the frame's size gives (as
 * hfammatte does with hfam_context_collect_matte's host mattes) up to float rounding: the
 * resize is linear, each output pixel a fixed weighted sum of the matte's. Host frames
 * neither use nor change the kept matte. */
#ifndef HFAM_DEVICE_H
#define HFAM_DEVICE_H

#include "frame.h"
#include <hfam/hfam.h>

G_BEGIN_DECLS

/* The model's preprocessing parameters (channel order, scale, mean, std; yuv left zero), as
 * kernels/preprocess.cu and its CPU twin hfam_frame_preprocess take them. */
void hfam_model_preprocess_params (const HfamModel *model, HfamPreprocessParams *params);

/* Queues a frame whose planes are in device memory: preprocessed on the device to the
 * inference size for `long_side` (<= 0: the model's) and run, without waiting. `yuv` is
 * needed for NV12 and I420 only. The frame is read asynchronously: keep it unchanged until
 * this frame is collected. At most hfam_context_pipeline_depth() frames in flight. */
gboolean hfam_context_submit_device_frame (HfamContext *ctx, const HfamFrame *frame,
                                           const HfamYuvToRgb *yuv, int long_side,
                                           GError **error);

/* Waits for the oldest submitted device frame. Its matte becomes the kept matte: blended
 * into the one kept before, kept = (1 - smoothing) * fresh + smoothing * kept
 * (kernels/matte.cuh), when smoothing > 0 and that one has the same inference size; as it is
 * otherwise (smoothing 0, no matte kept, another inference size). smoothing: 0..1, the weight
 * of the earlier frames. Then writes the kept matte, resized to the frame's size, into
 * `n_outputs` device images of that size (keys, or the colours of `frame` with the matte as
 * alpha; `frame` may be NULL when every output is a key, `yuv` is needed for the colours of
 * NV12 and I420 frames). Returns when all are written: GStreamer 1.22's CUDA memory carries
 * no stream to order later work by. Refused arguments leave the frame in flight and the kept
 * matte as it was; a failure after that drops the frame and leaves no kept matte.
 * n_outputs = 0 collects the frame and keeps its matte without writing anything. */
gboolean hfam_context_collect_device_matte (HfamContext *ctx, const HfamFrame *frame,
                                            const HfamYuvToRgb *yuv, float smoothing,
                                            const HfamMatteImage *outputs, int n_outputs,
                                            GError **error);

/* For a frame that does not run the network: writes the kept matte, resized to `frame`'s
 * size, into `n_outputs` device images of that size as the collect does (the colour formats
 * with `frame`'s own colours). Collects nothing and may be called while frames are in
 * flight; returns when all are written. `frame` and `yuv` as
 * hfam_context_submit_device_frame takes them. Refused (HFAM_ERROR_ARGUMENT) when no matte
 * is kept (no device frame collected yet, or the last collect failed) and when `frame`, at
 * the long side the kept matte's frame ran at, would run at another inference size than
 * that frame did (its shape differs). */
gboolean hfam_context_write_kept_matte (HfamContext *ctx, const HfamFrame *frame,
                                        const HfamYuvToRgb *yuv,
                                        const HfamMatteImage *outputs, int n_outputs,
                                        GError **error);

/* Submit and collect at once, for a context with no frame in flight, without smoothing: the
 * frame's matte becomes the kept one. */
gboolean hfam_context_matte_device (HfamContext *ctx, const HfamFrame *frame,
                                    const HfamYuvToRgb *yuv, int long_side,
                                    const HfamMatteImage *outputs, int n_outputs,
                                    GError **error);

G_END_DECLS

#endif
