/* libhfam on frames in CUDA device memory (GstCudaMemory, for one): the frame goes to the
 * network and the matte back into device images through kernels/preprocess.cu and matte.cu,
 * never through the host. CUDA contexts only: elsewhere, and in builds without CUDA, these
 * fail with HFAM_ERROR_UNSUPPORTED.
 *
 * The frames' memory must belong to the CUDA context the HfamContext runs on: with
 * HfamContextOptions.cuda_current_context, the one that was current when it was made, and
 * which must be current again around every call. Frames submitted here and host frames
 * (hfam_context_submit_frame) cannot be in flight together. */
#ifndef HFAM_DEVICE_H
#define HFAM_DEVICE_H

#include "frame.h"
#include "hfam.h"

G_BEGIN_DECLS

/* Queues a frame whose planes are in device memory: preprocessed on the device to the
 * inference size for `long_side` (<= 0: the model's) and run, without waiting. `yuv` is
 * needed for NV12 and I420 only. The frame is read asynchronously: keep it unchanged until
 * this frame is collected. At most hfam_context_pipeline_depth() frames in flight. */
gboolean hfam_context_submit_device_frame (HfamContext *ctx, const HfamFrame *frame,
                                           const HfamYuvToRgb *yuv, int long_side,
                                           GError **error);

/* Waits for the oldest submitted device frame and writes its matte, resized to the frame's
 * size, into `n_outputs` device images of that size (keys, or the colours of `frame` with
 * the matte as alpha; `frame` may be NULL when every output is a key, `yuv` is needed for
 * the colours of NV12 and I420 frames). Returns when all are written: GStreamer 1.22's CUDA
 * memory carries no stream to order later work by. Refused arguments leave the frame in
 * flight; a failure after that drops it, as n_outputs = 0 does on purpose. */
gboolean hfam_context_collect_device_matte (HfamContext *ctx, const HfamFrame *frame,
                                            const HfamYuvToRgb *yuv,
                                            const HfamMatteImage *outputs, int n_outputs,
                                            GError **error);

/* Both at once, for a context with no frame in flight. */
gboolean hfam_context_matte_device (HfamContext *ctx, const HfamFrame *frame,
                                    const HfamYuvToRgb *yuv, int long_side,
                                    const HfamMatteImage *outputs, int n_outputs,
                                    GError **error);

G_END_DECLS

#endif
