/* The device-frame API (hfam-device.h): every precondition is checked here, on the host, then
 * the backend's optional device ops (backend.h) do the work. Backends without them (the CPU
 * backend, and every backend of a build without CUDA) refuse with HFAM_ERROR_UNSUPPORTED.
 *
 * Frames in flight are tracked by hfam.c's bookkeeping (context.h), shared with the
 * host-frame API. The kept matte lives in the backend; what the checks need of it (whether
 * there is one, its inference size and the long side its frame ran at) is kept here, from
 * each collect's outcome. */
#include <hfam/hfam-device.h>
#include "context.h"

static gboolean
check_backend (HfamContext *ctx, const char *what, GError **error)
{
  const HfamBackendOps *ops = ctx->backend->ops;
  if (ops->queue_device_frame && ops->collect_device_matte && ops->write_kept_matte)
    return TRUE;
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_UNSUPPORTED,
               "%s: the %s backend takes frames in host memory only (device frames need a "
               "CUDA context)", what, ops->name);
  return FALSE;
}

static gboolean
is_yuv (HfamFrameFormat format)
{
  return format == HFAM_FRAME_NV12 || format == HFAM_FRAME_I420;
}

static gboolean
check_frame (const HfamFrame *frame, const HfamYuvToRgb *yuv, const char *what, GError **error)
{
  if (!frame || !hfam_frame_valid (frame)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "%s: bad frame (no planes, or strides too small for its format and width)",
                 what);
    return FALSE;
  }
  if (is_yuv (frame->format) && !yuv) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "%s: an NV12 or I420 frame needs its HfamYuvToRgb", what);
    return FALSE;
  }
  return TRUE;
}

/* The outputs of a frame of `width` x `height`; `frame` and `yuv` as collect takes them. */
static gboolean
check_outputs (int width, int height, const HfamFrame *frame, const HfamYuvToRgb *yuv,
               const HfamMatteImage *outputs, int n_outputs, const char *what, GError **error)
{
  gboolean colour = FALSE;

  if (n_outputs < 0 || (n_outputs > 0 && !outputs)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "%s: %d outputs at %p", what,
                 n_outputs, (const void *) outputs);
    return FALSE;
  }
  for (int i = 0; i < n_outputs; i++) {
    const HfamMatteImage *out = &outputs[i];
    if (!out->data || (unsigned) out->format >= HFAM_MATTE_N_FORMATS
        || out->width != width || out->height != height
        || out->stride < out->width * hfam_matte_bytes_per_pixel (out->format)) {
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                   "%s: output %d: %dx%d, format %d, stride %d: want data, a HfamMatteFormat, "
                   "the frame's size (%dx%d) and a stride of at least a row",
                   what, i, out->width, out->height, out->format, out->stride, width, height);
      return FALSE;
    }
    /* 16-bit keys are stored as whole uint16_t */
    if (out->format == HFAM_MATTE_GRAY16
        && (out->stride % 2 != 0 || (uintptr_t) out->data % 2 != 0)) {
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                   "%s: output %d: GRAY16 needs its data and stride aligned to 2 bytes", what,
                   i);
      return FALSE;
    }
    colour |= out->format >= HFAM_MATTE_RGBA;
  }
  if (!colour)
    return TRUE;
  if (!check_frame (frame, yuv, what, error))
    return FALSE;
  if (frame->width != width || frame->height != height) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "%s: the frame for the colours is %dx%d, the submitted one %dx%d", what,
                 frame->width, frame->height, width, height);
    return FALSE;
  }
  return TRUE;
}

static gboolean
check_smoothing (float smoothing, const char *what, GError **error)
{
  /* (written so that NaN fails too) */
  if (smoothing >= 0.0f && smoothing <= 1.0f)
    return TRUE;
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "%s: smoothing %g: want 0..1", what,
               smoothing);
  return FALSE;
}

/* What the backend keeps after a collect: the matte of `collected`, or none (NULL). */
static void
set_kept_matte (HfamContext *ctx, const HfamPendingFrame *collected)
{
  ctx->kept_long_side = ctx->kept_width = ctx->kept_height = 0;
  if (collected) {
    ctx->kept_long_side = collected->long_side;
    hfam_inference_dims (collected->frame_width, collected->frame_height, collected->long_side,
                         &ctx->kept_width, &ctx->kept_height);
  }
}

gboolean
hfam_context_submit_device_frame (HfamContext *ctx, const HfamFrame *frame,
                                  const HfamYuvToRgb *yuv, int long_side, GError **error)
{
  static const char *const what = "hfam_context_submit_device_frame";
  const HfamHparams *hp;
  HfamPreprocessParams params;
  HfamPendingFrame pending = { .on_device = TRUE };
  int width, height;

  g_return_val_if_fail (ctx != NULL, FALSE);
  if (!check_backend (ctx, what, error) || !check_frame (frame, yuv, what, error))
    return FALSE;
  hp = hfam_model_hparams (ctx->model);
  pending.long_side = long_side > 0 ? long_side : hp->inference_size;
  hfam_inference_dims (frame->width, frame->height, pending.long_side, &width, &height);
  if (!hfam_context_ready_to_submit (ctx, TRUE, width, height, what, error))
    return FALSE;
  hfam_model_preprocess_params (ctx->model, &params);
  if (yuv)
    params.yuv = *yuv;
  if (!ctx->backend->ops->queue_device_frame (ctx->backend, frame, &params, error))
    return FALSE;
  pending.frame_width = frame->width;
  pending.frame_height = frame->height;
  hfam_context_add_pending (ctx, &pending);
  return TRUE;
}

gboolean
hfam_context_collect_device_matte (HfamContext *ctx, const HfamFrame *frame,
                                   const HfamYuvToRgb *yuv, float smoothing,
                                   const HfamMatteImage *outputs, int n_outputs,
                                   GError **error)
{
  static const char *const what = "hfam_context_collect_device_matte";
  const HfamPendingFrame *oldest;
  HfamPendingFrame collected;
  gboolean ok;

  g_return_val_if_fail (ctx != NULL, FALSE);
  if (!check_backend (ctx, what, error) || !check_smoothing (smoothing, what, error)
      || !(oldest = hfam_context_oldest_pending (ctx, TRUE, what, error)))
    return FALSE;
  if (!check_outputs (oldest->frame_width, oldest->frame_height, frame, yuv, outputs,
                      n_outputs, what, error))
    return FALSE;
  collected = *oldest;
  ok = ctx->backend->ops->collect_device_matte (ctx->backend, frame, yuv, smoothing, outputs,
                                                n_outputs, error);
  hfam_context_drop_oldest (ctx);
  set_kept_matte (ctx, ok ? &collected : NULL);
  return ok;
}

gboolean
hfam_context_write_kept_matte (HfamContext *ctx, const HfamFrame *frame,
                               const HfamYuvToRgb *yuv, const HfamMatteImage *outputs,
                               int n_outputs, GError **error)
{
  static const char *const what = "hfam_context_write_kept_matte";
  int width, height;

  g_return_val_if_fail (ctx != NULL, FALSE);
  if (!check_backend (ctx, what, error) || !check_frame (frame, yuv, what, error))
    return FALSE;
  if (ctx->kept_width == 0) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "%s: no matte is kept: collect a device frame first (a failed collect keeps "
                 "none)", what);
    return FALSE;
  }
  hfam_inference_dims (frame->width, frame->height, ctx->kept_long_side, &width, &height);
  if (width != ctx->kept_width || height != ctx->kept_height) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "%s: a %dx%d frame runs at %dx%d (long side %d), the kept matte is %dx%d: it "
                 "belongs to a frame of another shape", what, frame->width, frame->height, width,
                 height, ctx->kept_long_side, ctx->kept_width, ctx->kept_height);
    return FALSE;
  }
  return check_outputs (frame->width, frame->height, frame, yuv, outputs, n_outputs, what,
                        error)
         && ctx->backend->ops->write_kept_matte (ctx->backend, frame, yuv, outputs, n_outputs,
                                                 error);
}

gboolean
hfam_context_matte_device (HfamContext *ctx, const HfamFrame *frame, const HfamYuvToRgb *yuv,
                           int long_side, const HfamMatteImage *outputs, int n_outputs,
                           GError **error)
{
  static const char *const what = "hfam_context_matte_device";

  g_return_val_if_fail (ctx != NULL, FALSE);
  /* the outputs are checked before the frame goes in, so that a bad one leaves no frame in
   * flight */
  return check_backend (ctx, what, error) && hfam_context_no_frames_in_flight (ctx, error)
         && check_frame (frame, yuv, what, error)
         && check_outputs (frame->width, frame->height, frame, yuv, outputs, n_outputs, what,
                           error)
         && hfam_context_submit_device_frame (ctx, frame, yuv, long_side, error)
         && hfam_context_collect_device_matte (ctx, frame, yuv, 0.0f, outputs, n_outputs,
                                               error);
}
