/* hfammatte's per-stream state: see hfam-worker.h. */
#include "hfam-worker.h"

#include "frame.h"

struct _HfamWorker {
  HfamContext *ctx;
  guint n_threads;

  GstVideoInfo in_info;
  gboolean direct;                /* the input is RGB that libhfam reads as it is */
  HfamPixelFormat pixel_format;   /* its layout, when direct */
  GstVideoInfo colour_info;
  GstVideoConverter *converter;   /* input -> RGBA, when not direct */
  GstVideoFrame colour_frame;     /* the converter's output, mapped while set */
  gboolean colour_ready;          /* colour_frame holds the current frame */

  float *matte;                   /* width x height, what the outputs show */
  float *fresh;                   /* the network's output before the blend */
  gboolean have_matte;
  guint frames_since_inference;
};

HfamWorker *
hfam_worker_new (HfamContext *ctx, guint n_threads)
{
  HfamWorker *worker = g_new0 (HfamWorker, 1);

  worker->ctx = ctx;
  worker->n_threads = n_threads;
  return worker;
}

static void
hfam_worker_clear_input (HfamWorker *worker)
{
  if (worker->converter) {
    gst_video_converter_free (worker->converter);
    gst_video_frame_unmap (&worker->colour_frame);
    worker->converter = NULL;
  }
  g_clear_pointer (&worker->matte, g_free);
  g_clear_pointer (&worker->fresh, g_free);
}

void
hfam_worker_free (HfamWorker *worker)
{
  if (!worker)
    return;
  hfam_worker_clear_input (worker);
  hfam_context_free (worker->ctx);
  g_free (worker);
}

static gboolean
hfam_worker_direct_format (GstVideoFormat format, HfamPixelFormat *pixel_format)
{
  switch (format) {
    case GST_VIDEO_FORMAT_RGB:
      *pixel_format = HFAM_PIXEL_RGB8;
      return TRUE;
    case GST_VIDEO_FORMAT_BGR:
      *pixel_format = HFAM_PIXEL_BGR8;
      return TRUE;
    case GST_VIDEO_FORMAT_RGBA:
    case GST_VIDEO_FORMAT_RGBx:
      *pixel_format = HFAM_PIXEL_RGBA8;
      return TRUE;
    case GST_VIDEO_FORMAT_BGRA:
    case GST_VIDEO_FORMAT_BGRx:
      *pixel_format = HFAM_PIXEL_BGRA8;
      return TRUE;
    default:
      return FALSE;
  }
}

gboolean
hfam_worker_set_input (HfamWorker *worker, const GstVideoInfo *info)
{
  const int width = GST_VIDEO_INFO_WIDTH (info), height = GST_VIDEO_INFO_HEIGHT (info);

  hfam_worker_clear_input (worker);
  worker->in_info = *info;
  worker->direct = hfam_worker_direct_format (GST_VIDEO_INFO_FORMAT (info),
                                              &worker->pixel_format);
  if (worker->direct) {
    worker->colour_info = *info;
  } else {
    GstBuffer *colour_buffer;

    /* The RGBA info carries the default RGB colorimetry (sRGB); the converter reads the
     * input's matrix, range and chroma siting from `info`. */
    gst_video_info_set_interlaced_format (&worker->colour_info, GST_VIDEO_FORMAT_RGBA,
                                          GST_VIDEO_INFO_INTERLACE_MODE (info), width, height);
    /* The converter changes pixels, not timing or aspect. */
    GST_VIDEO_INFO_FPS_N (&worker->colour_info) = GST_VIDEO_INFO_FPS_N (info);
    GST_VIDEO_INFO_FPS_D (&worker->colour_info) = GST_VIDEO_INFO_FPS_D (info);
    GST_VIDEO_INFO_PAR_N (&worker->colour_info) = GST_VIDEO_INFO_PAR_N (info);
    GST_VIDEO_INFO_PAR_D (&worker->colour_info) = GST_VIDEO_INFO_PAR_D (info);
    worker->converter = gst_video_converter_new (info, &worker->colour_info,
        gst_structure_new ("options", GST_VIDEO_CONVERTER_OPT_THREADS, G_TYPE_UINT,
                           worker->n_threads, NULL));
    if (!worker->converter)
      return FALSE;
    colour_buffer = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (&worker->colour_info),
                                             NULL);
    /* The frame keeps its own reference to the buffer until unmapped. */
    if (!gst_video_frame_map (&worker->colour_frame, &worker->colour_info, colour_buffer,
                              GST_MAP_READWRITE)) {
      gst_buffer_unref (colour_buffer);
      gst_video_converter_free (worker->converter);
      worker->converter = NULL;
      return FALSE;
    }
    gst_buffer_unref (colour_buffer);
  }
  worker->matte = g_new0 (float, (gsize) width * height);
  worker->fresh = g_new0 (float, (gsize) width * height);
  hfam_worker_reset (worker);
  return TRUE;
}

const GstVideoInfo *
hfam_worker_colour_info (const HfamWorker *worker)
{
  return &worker->colour_info;
}

void
hfam_worker_reset (HfamWorker *worker)
{
  worker->have_matte = FALSE;
  worker->frames_since_inference = 0;
}

/* The frame in an RGB layout: the input itself or, converted once per frame, RGBA. */
static const GstVideoFrame *
hfam_worker_colour_frame (HfamWorker *worker, const GstVideoFrame *in)
{
  if (worker->direct)
    return in;
  if (!worker->colour_ready) {
    gst_video_converter_frame (worker->converter, in, &worker->colour_frame);
    worker->colour_ready = TRUE;
  }
  return &worker->colour_frame;
}

gboolean
hfam_worker_update_matte (HfamWorker *worker, const GstVideoFrame *in,
                          const HfamWorkerSettings *settings, gboolean *ran, GError **error)
{
  const int width = GST_VIDEO_INFO_WIDTH (&worker->in_info);
  const int height = GST_VIDEO_INFO_HEIGHT (&worker->in_info);
  const gsize n_pixels = (gsize) width * height;
  const float smoothing = settings->temporal_smoothing;
  const GstVideoFrame *colour;
  gboolean blend;
  HfamImage image;

  worker->colour_ready = FALSE;
  *ran = !worker->have_matte || worker->frames_since_inference >= settings->inference_interval;
  if (!*ran) {
    worker->frames_since_inference++;
    return TRUE;
  }

  colour = hfam_worker_colour_frame (worker, in);
  image = (HfamImage) {
    .data = GST_VIDEO_FRAME_PLANE_DATA (colour, 0),
    .width = width,
    .height = height,
    .stride = GST_VIDEO_FRAME_PLANE_STRIDE (colour, 0),
    .format = worker->direct ? worker->pixel_format : HFAM_PIXEL_RGBA8,
  };
  /* The blend needs the previous matte intact until the new one is complete. */
  blend = worker->have_matte && smoothing > 0.0f;
  if (!hfam_context_matte (worker->ctx, &image, settings->inference_size,
                           blend ? worker->fresh : worker->matte, width, NULL, error)) {
    worker->have_matte = FALSE;
    return FALSE;
  }
  if (blend) {
    for (gsize i = 0; i < n_pixels; i++)
      worker->matte[i] = (1.0f - smoothing) * worker->fresh[i] + smoothing * worker->matte[i];
  }
  worker->have_matte = TRUE;
  worker->frames_since_inference = 1;
  return TRUE;
}

/* The colour frame as kernels/frame.h sees it. */
static HfamFrame
hfam_worker_frame (const HfamWorker *worker, const GstVideoFrame *colour)
{
  static const HfamFrameFormat formats[] = {
    [HFAM_PIXEL_RGB8] = HFAM_FRAME_RGB, [HFAM_PIXEL_BGR8] = HFAM_FRAME_BGR,
    [HFAM_PIXEL_RGBA8] = HFAM_FRAME_RGBA, [HFAM_PIXEL_BGRA8] = HFAM_FRAME_BGRA,
  };
  return (HfamFrame) {
    .planes = { GST_VIDEO_FRAME_PLANE_DATA (colour, 0) },
    .strides = { GST_VIDEO_FRAME_PLANE_STRIDE (colour, 0) },
    .width = GST_VIDEO_FRAME_WIDTH (colour),
    .height = GST_VIDEO_FRAME_HEIGHT (colour),
    .format = worker->direct ? formats[worker->pixel_format] : HFAM_FRAME_RGBA,
  };
}

/* The matte (already at the frame's size) into `out` by kernels/frame.c's writer, the CPU
 * twin of the CUDA one. */
static gboolean
hfam_worker_write (const HfamWorker *worker, const HfamFrame *frame, GstVideoFrame *out,
                   HfamMatteFormat format)
{
  const HfamMatteImage image = {
    .data = GST_VIDEO_FRAME_PLANE_DATA (out, 0),
    .stride = GST_VIDEO_FRAME_PLANE_STRIDE (out, 0),
    .width = GST_VIDEO_FRAME_WIDTH (out),
    .height = GST_VIDEO_FRAME_HEIGHT (out),
    .format = format,
  };
  return hfam_matte_write (worker->matte, image.width, image.height, frame, NULL, &image) == 0;
}

gboolean
hfam_worker_write_fill (HfamWorker *worker, const GstVideoFrame *in, GstVideoFrame *out,
                        gboolean premultiplied)
{
  const HfamFrame frame = hfam_worker_frame (worker, hfam_worker_colour_frame (worker, in));
  const gboolean bgra = GST_VIDEO_FRAME_FORMAT (out) == GST_VIDEO_FORMAT_BGRA;

  return hfam_worker_write (worker, &frame, out,
      bgra ? (premultiplied ? HFAM_MATTE_BGRA_PREMULTIPLIED : HFAM_MATTE_BGRA)
           : (premultiplied ? HFAM_MATTE_RGBA_PREMULTIPLIED : HFAM_MATTE_RGBA));
}

gboolean
hfam_worker_write_key (const HfamWorker *worker, GstVideoFrame *out)
{
  const gboolean deep = GST_VIDEO_FRAME_FORMAT (out) == GST_VIDEO_FORMAT_GRAY16_LE;

  if (!hfam_worker_write (worker, NULL, out, deep ? HFAM_MATTE_GRAY16 : HFAM_MATTE_GRAY8))
    return FALSE;
#if G_BYTE_ORDER == G_BIG_ENDIAN
  /* the writer's GRAY16 is in host order; the pad's format is little-endian */
  if (deep)
    for (int y = 0; y < GST_VIDEO_FRAME_HEIGHT (out); y++) {
      guint16 *row = (guint16 *) ((guint8 *) GST_VIDEO_FRAME_PLANE_DATA (out, 0)
          + (gsize) y * GST_VIDEO_FRAME_PLANE_STRIDE (out, 0));
      for (int x = 0; x < GST_VIDEO_FRAME_WIDTH (out); x++)
        row[x] = GUINT16_TO_LE (row[x]);
    }
#endif
  return TRUE;
}
