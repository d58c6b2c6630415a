/* Images in and out of the network (hfam.h: run, submit, collect, write_kept) and the kept
 * matte, for frames in host memory and in CUDA device memory alike. Every precondition is
 * checked here, on the host, before anything goes in. Host frames are resized and written by
 * the kernels of kernels/resize.h and kernels/frame.h; device frames by the backend's device
 * ops (backend.h), which only CUDA has. Either way the kept matte is decided here: which frame
 * blends into which, and whether a frame may show it (kept.c keeps a host frame's). */
#include "context.h"
#include "hfam-internal.h"
#include "foreground.h"
#include "refine.h"
#include "resize.h"
#include "temporal.h"

#include <omp.h>
#include <string.h>

/* hfam-types.h's frame formats are kernels/frame.h's, in the same order */
G_STATIC_ASSERT ((int) HFAM_FORMAT_RGB == (int) HFAM_FRAME_RGB);
G_STATIC_ASSERT ((int) HFAM_FORMAT_BGRA == (int) HFAM_FRAME_BGRA);
G_STATIC_ASSERT ((int) HFAM_FORMAT_I420 == (int) HFAM_FRAME_I420);

static gboolean
is_frame_format (HfamFormat format)
{
  return (unsigned) format <= HFAM_FORMAT_I420;
}

static gboolean
is_colour_output (HfamFormat format)
{
  return format == HFAM_FORMAT_RGBA || format == HFAM_FORMAT_BGRA;
}

static gboolean
is_output_format (HfamFormat format)
{
  return is_colour_output (format) || format == HFAM_FORMAT_GRAY8
         || format == HFAM_FORMAT_GRAY16 || format == HFAM_FORMAT_GRAY32F;
}

/* The image as the kernels see a frame. */
static HfamFrame
kernel_frame (const HfamImage *image)
{
  return (HfamFrame) {
    .planes = { image->planes[0], image->planes[1], image->planes[2] },
    .strides = { image->strides[0], image->strides[1], image->strides[2] },
    .width = image->width,
    .height = image->height,
    .format = (HfamFrameFormat) image->format,
  };
}

static HfamYuvToRgb
kernel_yuv (const HfamImage *image)
{
  HfamYuvToRgb yuv;

  hfam_yuv_to_rgb_init (&yuv, image->yuv_matrix == HFAM_YUV_BT709 ? HFAM_MATRIX_BT709
                                                                   : HFAM_MATRIX_BT601,
                        image->yuv_full_range ? HFAM_RANGE_FULL : HFAM_RANGE_LIMITED);
  return yuv;
}

/* How `frame` is normalised for the model: the model's order, scale, mean and std, and the
 * frame's YUV matrix and range (which RGB frames do not read). */
static HfamPreprocessParams
frame_preprocess_params (const HfamContext *ctx, const HfamImage *frame)
{
  HfamPreprocessParams params;

  hfam_model_preprocess_params (ctx->model, &params);
  params.yuv = kernel_yuv (frame);
  return params;
}

/* An output (not GRAY32F) as the kernels see it. */
static HfamMatteImage
kernel_matte (const HfamImage *out)
{
  HfamMatteFormat format = HFAM_MATTE_GRAY8;

  if (out->format == HFAM_FORMAT_GRAY16)
    format = HFAM_MATTE_GRAY16;
  else if (out->format == HFAM_FORMAT_RGBA)
    format = out->premultiplied ? HFAM_MATTE_RGBA_PREMULTIPLIED : HFAM_MATTE_RGBA;
  else if (out->format == HFAM_FORMAT_BGRA)
    format = out->premultiplied ? HFAM_MATTE_BGRA_PREMULTIPLIED : HFAM_MATTE_BGRA;
  return (HfamMatteImage) {
    .data = out->planes[0],
    .stride = out->strides[0],
    .width = out->width,
    .height = out->height,
    .format = format,
  };
}

/* Sides within HFAM_MAX_FRAME_SIDE: every product of them the engine forms fits. */
static gboolean
check_frame_size (int width, int height, const char *what, GError **error)
{
  if (width >= 1 && height >= 1 && width <= HFAM_MAX_FRAME_SIDE
      && height <= HFAM_MAX_FRAME_SIDE)
    return TRUE;
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
               "%s: frame %dx%d: each side must be 1 to %d pixels", what, width, height,
               HFAM_MAX_FRAME_SIDE);
  return FALSE;
}

static gboolean
check_frame (const HfamImage *frame, const char *what, GError **error)
{
  HfamFrame k;

  if (frame && !check_frame_size (frame->width, frame->height, what, error))
    return FALSE;
  if (!frame || !is_frame_format (frame->format)
      || (unsigned) frame->memory > HFAM_MEMORY_CUDA
      || (k = kernel_frame (frame), !hfam_frame_valid (&k))) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "%s: bad frame (no planes, a format that is not a frame's, or strides too "
                 "small for its format and width)", what);
    return FALSE;
  }
  return TRUE;
}

static int
output_bytes_per_pixel (HfamFormat format)
{
  return format == HFAM_FORMAT_GRAY8 ? 1 : format == HFAM_FORMAT_GRAY16 ? 2 : 4;
}

static gboolean
check_output (const HfamImage *out, int i, int width, int height, HfamMemory memory,
              const char *what, GError **error)
{
  const int bpp = output_bytes_per_pixel (out->format);

  if (!out->planes[0] || out->width != width || out->height != height
      || out->strides[0] < out->width * bpp
      || !is_output_format (out->format)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "%s: output %d: %dx%d, format %d, stride %d: want data, RGBA, BGRA or a "
                 "GRAY format, the frame's size (%dx%d) and a stride of at least a row",
                 what, i, out->width, out->height, out->format, out->strides[0], width, height);
    return FALSE;
  }
  if (out->memory != memory || (out->format == HFAM_FORMAT_GRAY32F
                                && memory != HFAM_MEMORY_HOST)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "%s: output %d: in the other memory than the frame (or GRAY32F on a device)",
                 what, i);
    return FALSE;
  }
  /* GRAY16 and GRAY32F are stored as whole uint16_t and float */
  if (bpp > 1 && out->format != HFAM_FORMAT_RGBA && out->format != HFAM_FORMAT_BGRA
      && (out->strides[0] % bpp != 0 || (uintptr_t) out->planes[0] % bpp != 0)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "%s: output %d: its data and stride must be aligned to %d bytes", what, i,
                 bpp);
    return FALSE;
  }
  return TRUE;
}

/* The outputs of a frame of `width` x `height` in `memory`; `frame` gives the colours, and
 * with guided refinement the guide of every output, so then it is checked for any output. */
static gboolean
check_outputs (const HfamContext *ctx, int width, int height, HfamMemory memory,
               const HfamImage *frame, const HfamImage *outputs, int n_outputs,
               const char *what, GError **error)
{
  const gboolean refines = ctx->edges.refine == HFAM_REFINE_GUIDED && n_outputs > 0;
  int colour = -1; /* the first output that takes the frame's colours */

  if (n_outputs < 0 || (n_outputs > 0 && !outputs)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "%s: %d outputs at %p", what,
                 n_outputs, (const void *) outputs);
    return FALSE;
  }
  for (int i = 0; i < n_outputs; i++) {
    if (!check_output (&outputs[i], i, width, height, memory, what, error))
      return FALSE;
    if (colour < 0 && is_colour_output (outputs[i].format))
      colour = i;
  }
  if (!refines && colour < 0)
    return TRUE;
  if (!frame) {
    if (colour >= 0)
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                   "%s: output %d takes the frame's colours: pass the frame with the outputs",
                   what, colour);
    else
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                   "%s: guided refinement reads the frame: pass it with the outputs", what);
    return FALSE;
  }
  if (!check_frame (frame, what, error))
    return FALSE;
  if (frame->width != width || frame->height != height || frame->memory != memory) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "%s: the frame the outputs read is %dx%d in %s memory, the submitted one %dx%d",
                 what, frame->width, frame->height,
                 frame->memory == HFAM_MEMORY_CUDA ? "device" : "host", width, height);
    return FALSE;
  }
  return TRUE;
}

static gboolean
check_params (const HfamFrameParams *params, const char *what, GError **error)
{
  if (params && params->long_side > HFAM_MAX_LONG_SIDE) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "%s: long side %d: want at most %d (or 0 for the model's)", what,
                 params->long_side, HFAM_MAX_LONG_SIDE);
    return FALSE;
  }
  if (params && (unsigned) params->temporal > HFAM_TEMPORAL_COMPENSATED) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "%s: temporal %d: no such method", what,
                 params->temporal);
    return FALSE;
  }
  /* (written so that NaN fails too) */
  if (params && !(params->smoothing >= 0.0f && params->smoothing <= 1.0f)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "%s: smoothing %g: want 0..1", what,
                 params->smoothing);
    return FALSE;
  }
  if (params && !(params->islands >= 0.0f && params->islands <= 1.0f)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "%s: islands %g: want 0..1", what,
                 params->islands);
    return FALSE;
  }
  if (params && params->pixel_aspect != 0.0f
      && !(params->pixel_aspect >= HFAM_MIN_PIXEL_ASPECT
           && params->pixel_aspect <= HFAM_MAX_PIXEL_ASPECT)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "%s: pixel aspect %g: want %g..%g (or 0 for square pixels)", what,
                 params->pixel_aspect, HFAM_MIN_PIXEL_ASPECT, HFAM_MAX_PIXEL_ASPECT);
    return FALSE;
  }
  return TRUE;
}

/* The host memory a frame needs besides the plan, at most: the preprocessing's scratch (up to
 * three planes of the larger of the frame and its inference size), the kept matte and its
 * resize to the frame. Checked before the frame goes in, so that one too large fails before
 * the network runs. */
static gboolean
check_host_frame_budget (HfamContext *ctx, const HfamImage *frame, int width, int height,
                         GError **error)
{
  const guint64 w = MAX (frame->width, width), h = MAX (frame->height, height);
  const guint64 frame_plane = (guint64) frame->width * frame->height;

  return hfam_host_budget_check (&ctx->budget,
                                 sizeof (float) * (3 * w * h + frame_plane
                                                   + (guint64) width * height),
                                 "frame", frame->width, frame->height, error);
}

/* The backend that takes the context's device frames and keeps their mattes: its own, or in
 * a batch group its frames-only one. */
static HfamBackend *
device_backend (HfamContext *ctx)
{
  return ctx->device_backend ? ctx->device_backend : ctx->backend;
}

static gboolean
check_device_backend (HfamContext *ctx, const char *what, GError **error)
{
  if (device_backend (ctx)->device)
    return TRUE;
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_UNSUPPORTED,
               "%s: the %s backend takes frames in host memory only (device frames need a "
               "CUDA context)", what, ctx->backend->ops->name);
  return FALSE;
}

/* What collect will need of the frame, and the inference size it runs at. */
static HfamPendingFrame
pending_of (const HfamContext *ctx, const HfamImage *frame, const HfamFrameParams *params,
            int *width, int *height)
{
  const HfamPendingFrame pending = {
    .frame_width = frame->width,
    .frame_height = frame->height,
    .memory = frame->memory,
    .long_side = params && params->long_side > 0 ? params->long_side
                                                 : ctx->model->hp.inference_size,
    .pixel_aspect = params && params->pixel_aspect > 0.0f ? params->pixel_aspect : 1.0f,
    .smoothing = params ? params->smoothing : 0.0f,
    .temporal = params ? params->temporal : HFAM_TEMPORAL_BLEND,
    .islands = params ? params->islands : 0.0f,
    .letterbox = params && params->letterbox,
    .fused_only = TRUE,
  };

  hfam_inference_dims (frame->width, frame->height, pending.pixel_aspect, pending.long_side,
                       width, height);
  return pending;
}

/* A host frame into `input` (three planes of width x height), normalised as the model wants
 * (*params, which the grey plane needs too). */
static gboolean
preprocess_host_frame (HfamContext *ctx, const HfamImage *frame, int width, int height,
                       float *input, HfamPreprocessParams *params, GError **error)
{
  static const int offsets[][3] = { { 0, 1, 2 }, { 2, 1, 0 }, { 0, 1, 2 }, { 2, 1, 0 } };
  int failed;

  *params = frame_preprocess_params (ctx, frame);
  /* OpenMP's thread count belongs to the calling thread */
  omp_set_num_threads (ctx->host_threads);
  if (frame->format <= HFAM_FORMAT_BGRA) {
    /* resize.c's routine for 8-bit RGB, and frame.c's row by row one for YUV: frame.c's
     * general one is the CUDA op's slow oracle */
    failed = hfam_preprocess_rgb8 (frame->planes[0], frame->width, frame->height,
                                   frame->strides[0], frame->format <= HFAM_FORMAT_BGR ? 3 : 4,
                                   offsets[frame->format], input, width, height,
                                   params->order, params->scale, params->mean, params->std);
  } else {
    const HfamFrame k = kernel_frame (frame);
    failed = hfam_frame_preprocess_rows (&k, params, input, width, height);
  }
  if (failed) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "preprocess: out of memory");
    return FALSE;
  }
  return TRUE;
}

/* A host frame into ctx->input at its inference size, the backend planned for it, when it
 * may go in now; with HFAM_TEMPORAL_MOTION or _COMPENSATED, or with letterbox, its grey plane
 * into the next ring position (pending->slot). */
static gboolean
prepare_host_frame (HfamContext *ctx, const HfamImage *frame, int width, int height,
                    HfamPendingFrame *pending, const char *what, GError **error)
{
  HfamPreprocessParams params;

  if (!hfam_context_ready_to_submit (ctx, HFAM_MEMORY_HOST, width, height, what, error)
      || !check_host_frame_budget (ctx, frame, width, height, error))
    return FALSE;
  if (!preprocess_host_frame (ctx, frame, width, height, ctx->input, &params, error))
    return FALSE;
  pending->slot = (ctx->first_pending + ctx->n_pending) % HFAM_MAX_PIPELINE_DEPTH;
  /* (also without smoothing: the first frame after a restart is the next one's reference) */
  if (pending->temporal != HFAM_TEMPORAL_BLEND || pending->letterbox) {
    if (!hfam_context_ensure_counted (ctx, &ctx->grey[pending->slot],
                                      &ctx->grey_bytes[pending->slot],
                                      sizeof (float) * (guint64) width * height,
                                      "inference size", width, height, error))
      return FALSE;
    hfam_motion_grey (ctx->input, width, height, &params, ctx->grey[pending->slot]);
  }
  return TRUE;
}

void
hfam_edge_params_init (HfamEdgeParams *edges)
{
  *edges = (HfamEdgeParams) {
    .refine = HFAM_REFINE_NONE,
    .refine_radius = HFAM_REFINE_RADIUS_DEFAULT,
    .refine_eps = HFAM_REFINE_EPS_DEFAULT,
    .fill = HFAM_FILL_FRAME,
    .key_black = 0.0f,
    .key_white = 1.0f,
  };
}

gboolean
hfam_context_set_edges (HfamContext *ctx, const HfamEdgeParams *edges, GError **error)
{
  static const char *const what = "hfam_context_set_edges";
  HfamEdgeParams defaults;

  g_return_val_if_fail (ctx != NULL, FALSE);
  if (!edges) {
    hfam_edge_params_init (&defaults);
    edges = &defaults;
  }
  if ((unsigned) edges->refine > HFAM_REFINE_GUIDED
      || (unsigned) edges->fill > HFAM_FILL_FOREGROUND) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "%s: refine %d, fill %d: no such choice",
                 what, edges->refine, edges->fill);
    return FALSE;
  }
  /* (written so that NaN fails too) */
  if (edges->refine_radius < 1 || edges->refine_radius > 64
      || !(edges->refine_eps > 0.0f && edges->refine_eps <= 1.0f)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "%s: refine radius %d, eps %g: want 1..64 and 0 < eps <= 1", what,
                 edges->refine_radius, edges->refine_eps);
    return FALSE;
  }
  if (!(edges->key_black >= 0.0f && edges->key_black < edges->key_white
        && edges->key_white <= 1.0f)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "%s: key levels black %g, white %g: want 0 <= black < white <= 1", what,
                 edges->key_black, edges->key_white);
    return FALSE;
  }
  /* the matte resized with other edges is stale (the element sets them on every frame) */
  if (edges->refine != ctx->edges.refine || edges->key_black != ctx->edges.key_black
      || edges->key_white != ctx->edges.key_white)
    ctx->kept.resized_width = ctx->kept.resized_height = 0;
  ctx->edges = *edges;
  return TRUE;
}

/* ctx->edge_scratch of at least `bytes`, counted in the budget. */
static gboolean
ensure_edge_scratch (HfamContext *ctx, size_t bytes, int width, int height, GError **error)
{
  HfamScratch *scratch = &ctx->edge_scratch;

  if (scratch->bytes >= bytes)
    return TRUE;
  hfam_host_budget_give (&ctx->budget, scratch->bytes);
  hfam_scratch_clear (scratch);
  if (!hfam_host_budget_take (&ctx->budget, bytes, "edges of a frame", width, height, error))
    return FALSE;
  if (!hfam_scratch_reserve (scratch, bytes)) {
    hfam_host_budget_give (&ctx->budget, bytes);
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "edges of a frame %dx%d: out of memory",
                 width, height);
    return FALSE;
  }
  return TRUE;
}

/* The guided filter's parameters for a kw x kh matte on a w x h frame, for the host and the
 * device paths alike: the statistics at the matte's size, or the frame's where that is smaller
 * (a frame below the inference size); a radius the statistics cannot hold is refused here,
 * naming it, rather than by the kernel. */
static gboolean
refine_params (const HfamEdgeParams *edges, int kw, int kh, int w, int h, HfamRefineParams *rp,
               GError **error)
{
  *rp = (HfamRefineParams) { .radius = edges->refine_radius, .eps = edges->refine_eps,
                             .stats_width = MIN (kw, w), .stats_height = MIN (kh, h),
                             .colour = 1 };
  if (hfam_refine_params_valid (rp, kw, kh, w, h))
    return TRUE;
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
               "refine: radius %d, eps %g: not usable on a %dx%d matte for a %dx%d frame",
               rp->radius, rp->eps, kw, kh, w, h);
  return FALSE;
}

/* The kept host matte at the frame's size into buffers.resized: resized (or refined, guided by
 * `frame`, which check_outputs has checked, and for the frame it was collected with
 * (`collected`) held where the picture is still), then the key levels, then cleared over the
 * frame's black bars where the kept matte was. Kept for the next output of the same size
 * unless refined: a refined matte depends on its frame's colours. */
static gboolean
resize_host_matte (HfamContext *ctx, const HfamImage *frame, int width, int height,
                   gboolean collected, GError **error)
{
  HfamKeptMatte *kept = &ctx->kept;
  HfamKeptBuffers *const buf = &kept->buffers;
  const HfamEdgeParams *edges = &ctx->edges;
  const HfamKeyLevels levels = { edges->key_black, edges->key_white };
  const gboolean refine = edges->refine == HFAM_REFINE_GUIDED;
  const gboolean keyed = levels.black != 0.0f || levels.white != 1.0f;
  HfamRefineParams rp;
  int failed;

  if (!refine && kept->resized_width == width && kept->resized_height == height)
    return TRUE;
  kept->resized_width = kept->resized_height = 0;
  if (!hfam_context_ensure_counted (ctx, &buf->resized, &buf->resized_bytes,
                                    sizeof (float) * (guint64) width * height, "frame", width,
                                    height, error))
    return FALSE;
  if (refine) {
    HfamFrame guide;
    HfamYuvToRgb yuv;

    if (!refine_params (edges, kept->width, kept->height, width, height, &rp, error))
      return FALSE;
    if (!ensure_edge_scratch (ctx, hfam_refine_scratch_bytes (kept->width, kept->height, width,
                                                              &rp, ctx->host_threads),
                              width, height, error))
      return FALSE;
    guide = kernel_frame (frame);
    yuv = kernel_yuv (frame);
    if (collected && kept->holds) {
      /* held only over a matte refined for the frame before, at this size */
      const gboolean continues = kept->still_valid && kept->held_width == width
                                 && kept->held_height == height;
      if (!hfam_context_ensure_counted (ctx, &buf->held, &buf->held_bytes,
                                        sizeof (float) * (guint64) width * height, "frame",
                                        width, height, error))
        return FALSE;
      const HfamRefineHold hold = { continues ? buf->still : NULL, buf->held, width };
      failed = hfam_refine_held (buf->host, kept->width, kept->height, &guide, &yuv, &rp,
                                 keyed ? &levels : NULL, &hold, buf->resized, width,
                                 &ctx->edge_scratch);
      kept->held_current = !failed;
      kept->held_width = width;
      kept->held_height = height;
    } else {
      failed = hfam_refine (buf->host, kept->width, kept->height, &guide, &yuv, &rp,
                            keyed ? &levels : NULL, buf->resized, width, &ctx->edge_scratch);
    }
  } else {
    failed = hfam_resize_plane (buf->host, kept->width, kept->height, kept->width,
                                buf->resized, width, height, width);
    if (!failed && keyed)
      hfam_key_levels_apply (buf->resized, (size_t) width * height, &levels);
  }
  if (failed) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "%s: out of memory",
                 refine ? "refine" : "resize");
    return FALSE;
  }
  if (kept->bars.top || kept->bars.bottom || kept->bars.left || kept->bars.right) {
    const HfamBarParams bp = { .black = HFAM_BAR_BLACK };
    const HfamFrame colours = frame ? kernel_frame (frame) : (HfamFrame) { 0 };
    const HfamYuvToRgb yuv = frame ? kernel_yuv (frame) : (HfamYuvToRgb) { 0 };
    HfamBars bars;
    hfam_frame_find_bars (frame ? &colours : NULL, &yuv, &kept->bars, kept->width, kept->height,
                          width, height, &bp, &bars);
    hfam_plane_zero_bars (buf->resized, width, height, &bars);
  }
  if (!refine) {
    kept->resized_width = width;
    kept->resized_height = height;
  }
  return TRUE;
}

/* One RGBA/BGRA output of the foreground's colours. */
static gboolean
write_foreground (HfamContext *ctx, const HfamImage *frame, const HfamMatteImage *matte,
                  int i, GError **error)
{
  const HfamForegroundParams fp = { HFAM_FOREGROUND_RADIUS_LARGE,
                                    HFAM_FOREGROUND_RADIUS_SMALL, HFAM_FOREGROUND_COARSE };
  const HfamFrame colours = kernel_frame (frame);
  const HfamYuvToRgb yuv = kernel_yuv (frame);

  if (!ensure_edge_scratch (ctx, hfam_foreground_scratch_bytes (frame->width, frame->height,
                                                                &fp, ctx->host_threads),
                            frame->width, frame->height, error))
    return FALSE;
  if (hfam_foreground (&colours, &yuv, ctx->kept.buffers.resized, frame->width, &fp, matte,
                       &ctx->edge_scratch) != 0) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "output %d: foreground: out of memory",
                 i);
    return FALSE;
  }
  return TRUE;
}

/* The kept host matte into outputs of `width` x `height` (checked). */
static gboolean
write_host_outputs (HfamContext *ctx, const HfamImage *frame, int width, int height,
                    const HfamImage *outputs, int n_outputs, gboolean collected,
                    GError **error)
{
  HfamKeptMatte *kept = &ctx->kept;
  HfamKeptBuffers *const buf = &kept->buffers;
  HfamFrame colours;
  HfamYuvToRgb yuv;

  if (n_outputs == 0)
    return TRUE;
  omp_set_num_threads (ctx->host_threads);
  if (!resize_host_matte (ctx, frame, width, height, collected, error))
    return FALSE;
  if (frame) {
    colours = kernel_frame (frame);
    yuv = kernel_yuv (frame);
  }
  for (int i = 0; i < n_outputs; i++) {
    const HfamImage *out = &outputs[i];
    HfamMatteImage matte;

    if (out->format == HFAM_FORMAT_GRAY32F) {
      for (int y = 0; y < height; y++)
        memcpy (out->planes[0] + (size_t) y * out->strides[0],
                buf->resized + (size_t) y * width, sizeof (float) * width);
      continue;
    }
    matte = kernel_matte (out);
    if (is_colour_output (out->format) && ctx->edges.fill == HFAM_FILL_FOREGROUND) {
      if (!write_foreground (ctx, frame, &matte, i, error))
        return FALSE;
      continue;
    }
    if (hfam_matte_write (buf->resized, width, height, frame ? &colours : NULL,
                          frame ? &yuv : NULL, &matte) != 0) {
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "output %d: out of memory", i);
      return FALSE;
    }
  }
  return TRUE;
}

/* The oldest host frame out of flight into the kept matte, then into the outputs. */
static gboolean
collect_host (HfamContext *ctx, const HfamImage *frame, const HfamImage *outputs,
              int n_outputs, GError **error)
{
  const HfamPendingFrame collected = *hfam_context_oldest_pending (ctx, NULL, NULL);
  HfamOutputs out = { .fused = ctx->fused };

  if (!hfam_context_collect_outputs (ctx, &out, error)) {
    ctx->kept.valid = FALSE;
    return FALSE;
  }
  return hfam_context_keep_host_matte (ctx, &collected, error)
         && write_host_outputs (ctx, frame, collected.frame_width, collected.frame_height,
                                outputs, n_outputs, TRUE, error);
}

/* The kept device matte (kw x kh) into outputs of its frame's size (checked), by the
 * backend; `collected`: for the frame it was just collected with. */
static gboolean
write_device_outputs (HfamContext *ctx, const HfamImage *frame, int kw, int kh,
                      const HfamImage *outputs, int n_outputs, gboolean collected,
                      GError **error)
{
  HfamDeviceEdges edges = {
    .refine = ctx->edges.refine == HFAM_REFINE_GUIDED,
    .levels = { ctx->edges.key_black, ctx->edges.key_white },
    .foreground = ctx->edges.fill == HFAM_FILL_FOREGROUND,
    .foreground_params = { HFAM_FOREGROUND_RADIUS_LARGE, HFAM_FOREGROUND_RADIUS_SMALL,
                           HFAM_FOREGROUND_COARSE },
    .collected = collected,
  };
  g_autofree HfamMatteImage *mattes = NULL;
  HfamFrame colours = { 0 };
  HfamYuvToRgb yuv = { 0 };
  HfamBackend *be;

  if (n_outputs > 0 && edges.refine
      && !refine_params (&ctx->edges, kw, kh, outputs[0].width, outputs[0].height,
                         &edges.refine_params, error))
    return FALSE;
  mattes = g_new (HfamMatteImage, MAX (n_outputs, 1));

  for (int i = 0; i < n_outputs; i++)
    mattes[i] = kernel_matte (&outputs[i]);
  if (frame) {
    colours = kernel_frame (frame);
    yuv = kernel_yuv (frame);
  }
  be = device_backend (ctx);
  return be->device->write_matte (be, frame ? &colours : NULL, frame ? &yuv : NULL, mattes,
                                  n_outputs, &edges, error);
}

static gboolean
submit_device (HfamContext *ctx, const HfamImage *frame, const HfamPendingFrame *pending,
               int width, int height, const char *what, GError **error)
{
  const HfamFrame k = kernel_frame (frame);
  HfamBackend *be = device_backend (ctx);
  HfamBatchFrame *batched = NULL;
  const HfamPreprocessParams params = frame_preprocess_params (ctx, frame);

  /* (a batch group's runner plans its lane; the member plans its frames-only backend) */
  if (!check_device_backend (ctx, what, error)
      || !hfam_context_ready_to_submit (ctx, HFAM_MEMORY_CUDA, width, height, what, error)
      || (ctx->group && !be->ops->plan (be, width, height, error)))
    return FALSE;
  if (!be->device->queue_frame (be, &k, &params, error))
    return FALSE;
  if (ctx->group) {
    HfamDeviceSlice slice;
    be->device->slice (be, &slice);
    batched = hfam_batch_group_submit_device (ctx->group, ctx, &slice, width, height);
  }
  hfam_context_add_pending (ctx, pending, batched);
  return TRUE;
}

/* The oldest device frame out of flight: the backend keeps its matte on the device, blended
 * into the kept one when this says so, and writes the outputs from it. */
static gboolean
collect_device (HfamContext *ctx, const HfamImage *frame, const HfamImage *outputs,
                int n_outputs, const char *what, GError **error)
{
  const HfamPendingFrame collected = *hfam_context_oldest_pending (ctx, NULL, NULL);
  HfamBackend *be = device_backend (ctx);
  HfamKeptMatte *kept = &ctx->kept;
  int width, height;
  gboolean blend, ok, kept_ok;

  if (!check_device_backend (ctx, what, error))
    return FALSE;
  hfam_inference_dims (collected.frame_width, collected.frame_height, collected.pixel_aspect,
                       collected.long_side, &width, &height);
  blend = collected.smoothing > 0.0f && kept->valid && kept->memory == HFAM_MEMORY_CUDA
          && kept->width == width && kept->height == height;
  HfamMotionParams motion;
  HfamFlowParams flow;
  hfam_motion_params_init (&motion, collected.smoothing);
  hfam_flow_params_init (&flow);
  const HfamIslandParams islands = { .floor = HFAM_ISLAND_FLOOR, .share = collected.islands };
  const HfamBarParams bars = { .black = HFAM_BAR_BLACK };
  /* in a batch group, the lane has written its alpha_p once the group's frame is done */
  ok = !ctx->group
       || hfam_batch_group_collect (ctx->group, ctx->batched[ctx->first_pending], NULL, error);
  if (ok)
    ok = be->device->keep_matte (be, collected.letterbox ? &bars : NULL,
                                 collected.islands > 0.0f ? &islands : NULL, blend,
                                 collected.smoothing,
                                 collected.temporal != HFAM_TEMPORAL_BLEND ? &motion : NULL,
                                 collected.temporal == HFAM_TEMPORAL_COMPENSATED ? &flow : NULL,
                                 error);
  else
    be->device->drop_frame (be);
  hfam_context_drop_oldest (ctx);
  /* (a matte kept stays kept when its outputs fail, as on the host) */
  kept_ok = ok;
  ok = ok && write_device_outputs (ctx, frame, width, height, outputs, n_outputs, TRUE, error);
  /* (the host buffers stay for the next host frame) */
  *kept = (HfamKeptMatte) { .valid = kept_ok, .memory = HFAM_MEMORY_CUDA,
                            .long_side = collected.long_side,
                            .pixel_aspect = collected.pixel_aspect, .width = width,
                            .height = height,
                            .compensates = collected.temporal == HFAM_TEMPORAL_COMPENSATED,
                            .buffers = kept->buffers };
  return ok;
}

gboolean
hfam_context_submit (HfamContext *ctx, const HfamImage *frame, const HfamFrameParams *params,
                     GError **error)
{
  static const char *const what = "hfam_context_submit";
  HfamPendingFrame pending;
  int width, height;

  g_return_val_if_fail (ctx != NULL, FALSE);
  if (!check_frame (frame, what, error) || !check_params (params, what, error))
    return FALSE;
  pending = pending_of (ctx, frame, params, &width, &height);
  if (frame->memory == HFAM_MEMORY_CUDA)
    return submit_device (ctx, frame, &pending, width, height, what, error);
  return prepare_host_frame (ctx, frame, width, height, &pending, what, error)
         && hfam_context_submit_input (ctx, &pending, error);
}

gboolean
hfam_context_collect (HfamContext *ctx, const HfamImage *frame, const HfamImage *outputs,
                      int n_outputs, GError **error)
{
  static const char *const what = "hfam_context_collect";
  const HfamPendingFrame *oldest;

  g_return_val_if_fail (ctx != NULL, FALSE);
  if (!(oldest = hfam_context_oldest_pending (ctx, what, error)))
    return FALSE;
  /* checked before the collect: a bad call leaves the frame in flight */
  if (oldest->frame_width == 0) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "%s: the frame was submitted as a tensor: use hfam_context_collect_tensor",
                 what);
    return FALSE;
  }
  if (!check_outputs (ctx, oldest->frame_width, oldest->frame_height, oldest->memory, frame,
                      outputs, n_outputs, what, error))
    return FALSE;
  if (oldest->memory == HFAM_MEMORY_CUDA)
    return collect_device (ctx, frame, outputs, n_outputs, what, error);
  return collect_host (ctx, frame, outputs, n_outputs, error);
}

gboolean
hfam_context_run (HfamContext *ctx, const HfamImage *frame, const HfamFrameParams *params,
                  const HfamImage *outputs, int n_outputs, GError **error)
{
  static const char *const what = "hfam_context_run";
  HfamPendingFrame pending;
  HfamOutputs out;
  int width, height;

  g_return_val_if_fail (ctx != NULL, FALSE);
  /* everything is checked before the frame goes in, so that a bad call leaves nothing in
   * flight */
  if (!hfam_context_no_frames_in_flight (ctx, error) || !check_frame (frame, what, error)
      || !check_params (params, what, error)
      || !check_outputs (ctx, frame->width, frame->height, frame->memory, frame, outputs,
                         n_outputs, what, error))
    return FALSE;
  pending = pending_of (ctx, frame, params, &width, &height);
  if (frame->memory == HFAM_MEMORY_CUDA)
    return submit_device (ctx, frame, &pending, width, height, what, error)
           && collect_device (ctx, frame, outputs, n_outputs, what, error);
  /* on the host, synchronously: per-stage timing sees this frame */
  if (!prepare_host_frame (ctx, frame, width, height, &pending, what, error))
    return FALSE;
  out = (HfamOutputs) { .fused = ctx->fused };  /* (planning may have moved it) */
  if (!hfam_context_run_input (ctx, &out, error)) {
    ctx->kept.valid = FALSE;
    return FALSE;
  }
  return hfam_context_keep_host_matte (ctx, &pending, error)
         && write_host_outputs (ctx, frame, frame->width, frame->height, outputs, n_outputs,
                                TRUE, error);
}

/* Whether the kept matte may stand for a frame of `shape`'s size and memory: kept there, and
 * at the inference size such a frame runs at (checked first: check_frame_size). */
static gboolean
check_kept_for (HfamContext *ctx, const HfamImage *shape, const char *what, GError **error)
{
  const HfamKeptMatte *kept = &ctx->kept;
  int width, height;

  if (shape->memory == HFAM_MEMORY_CUDA && !check_device_backend (ctx, what, error))
    return FALSE;
  if (!kept->valid || kept->memory != shape->memory) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "%s: no matte is kept in %s memory: collect a frame from there first (a "
                 "failed collect keeps none)", what,
                 shape->memory == HFAM_MEMORY_CUDA ? "device" : "host");
    return FALSE;
  }
  hfam_inference_dims (shape->width, shape->height, kept->pixel_aspect, kept->long_side, &width,
                       &height);
  if (width != kept->width || height != kept->height) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "%s: a %dx%d frame runs at %dx%d (long side %d, pixel aspect %g), the kept "
                 "matte is %dx%d: it belongs to a frame of another shape", what, shape->width,
                 shape->height, width, height, kept->long_side, kept->pixel_aspect,
                 kept->width, kept->height);
    return FALSE;
  }
  return TRUE;
}

gboolean
hfam_context_write_kept (HfamContext *ctx, const HfamImage *frame, const HfamImage *outputs,
                         int n_outputs, GError **error)
{
  static const char *const what = "hfam_context_write_kept";
  const HfamKeptMatte *kept = &ctx->kept;
  /* without colours to write, the outputs say the frame's shape and memory */
  const HfamImage *shape = frame ? frame : outputs;

  g_return_val_if_fail (ctx != NULL, FALSE);
  if (!frame && (n_outputs < 1 || !outputs)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "%s: no frame and no output: nothing to write", what);
    return FALSE;
  }
  if ((frame && !check_frame (frame, what, error))
      || !check_frame_size (shape->width, shape->height, what, error)
      || !check_kept_for (ctx, shape, what, error)
      || !check_outputs (ctx, shape->width, shape->height, shape->memory, frame, outputs,
                         n_outputs, what, error))
    return FALSE;
  if (shape->memory == HFAM_MEMORY_HOST)
    return write_host_outputs (ctx, frame, shape->width, shape->height, outputs, n_outputs,
                               FALSE, error);
  return write_device_outputs (ctx, frame, kept->width, kept->height, outputs, n_outputs, FALSE,
                               error);
}

gboolean
hfam_context_follow (HfamContext *ctx, const HfamImage *frame, GError **error)
{
  static const char *const what = "hfam_context_follow";
  HfamKeptMatte *kept = &ctx->kept;
  HfamKeptBuffers *const buf = &kept->buffers;
  HfamPreprocessParams params;
  const float *moved;

  g_return_val_if_fail (ctx != NULL, FALSE);
  if (!check_frame (frame, what, error) || !check_kept_for (ctx, frame, what, error))
    return FALSE;
  if (!kept->compensates)
    return TRUE;
  if (frame->memory == HFAM_MEMORY_CUDA) {
    HfamBackend *be = device_backend (ctx);
    const HfamFrame k = kernel_frame (frame);
    const HfamPreprocessParams device_params = frame_preprocess_params (ctx, frame);
    HfamFlowParams flow;
    hfam_flow_params_init (&flow);
    if (be->device->follow (be, &k, &device_params, &flow, error))
      return TRUE;
    /* the backend may have dropped the matte (a failed kernel may have moved it in part):
     * the next frame starts afresh rather than blend into what is left */
    kept->valid = FALSE;
    return FALSE;
  }
  if (!kept->grey_valid)
    return TRUE;
  const size_t plane = (size_t) kept->width * kept->height;
  if (!hfam_context_ensure_counted (ctx, &buf->follow, &buf->follow_bytes,
                                    sizeof (float) * 4 * plane, "inference size", kept->width,
                                    kept->height, error)
      || !preprocess_host_frame (ctx, frame, kept->width, kept->height, buf->follow, &params,
                                 error))
    return FALSE;
  float *grey = buf->follow + 3 * plane;
  hfam_motion_grey (buf->follow, kept->width, kept->height, &params, grey);
  /* (a failure leaves the kept matte and grey as they were) */
  if (!hfam_context_compensate_kept (ctx, grey, &moved, error))
    return FALSE;
  /* the matte now belongs to this frame: the next one's motion is measured from its picture;
   * the detail held at the frame's size stays where the matte was, so the next frame holds
   * none of it (stale detail cost 3 % dtSSD and 9 % flicker on the validation video set at
   * inference-interval 2 and 3: BENCHMARKS.md) */
  memcpy (buf->grey, grey, sizeof (float) * plane);
  kept->resized_width = kept->resized_height = 0;
  kept->held_current = FALSE;
  return TRUE;
}
