/* hfammatte's per-stream state: see hfam-worker.h. */
#include "hfam-worker.h"

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

void
hfam_worker_write_fill (HfamWorker *worker, const GstVideoFrame *in, GstVideoFrame *out,
                        gboolean premultiplied)
{
  const GstVideoFrame *colour = hfam_worker_colour_frame (worker, in);
  const int width = GST_VIDEO_FRAME_WIDTH (out), height = GST_VIDEO_FRAME_HEIGHT (out);
  const int src_stride = GST_VIDEO_FRAME_PLANE_STRIDE (colour, 0);
  const int src_pixel = GST_VIDEO_FRAME_COMP_PSTRIDE (colour, 0);
  const int dst_stride = GST_VIDEO_FRAME_PLANE_STRIDE (out, 0);
  const int dst_alpha = GST_VIDEO_FRAME_COMP_POFFSET (out, GST_VIDEO_COMP_A);
  const guint8 *src_rows = GST_VIDEO_FRAME_PLANE_DATA (colour, 0);
  guint8 *dst_rows = GST_VIDEO_FRAME_PLANE_DATA (out, 0);
  int src_offset[3], dst_offset[3];

  for (int c = 0; c < 3; c++) {
    src_offset[c] = GST_VIDEO_FRAME_COMP_POFFSET (colour, c);
    dst_offset[c] = GST_VIDEO_FRAME_COMP_POFFSET (out, c);
  }
  for (int y = 0; y < height; y++) {
    const guint8 *src = src_rows + (gsize) y * src_stride;
    const float *matte = worker->matte + (gsize) y * width;
    guint8 *dst = dst_rows + (gsize) y * dst_stride;

    for (int x = 0; x < width; x++, src += src_pixel, dst += 4) {
      const guint alpha = hfam_worker_alpha8 (matte[x]);

      for (int c = 0; c < 3; c++) {
        const guint value = src[src_offset[c]];
        /* (v * a + 127) / 255 is v * a / 255 rounded to nearest: 255 is odd, no ties. */
        dst[dst_offset[c]] = premultiplied ? (value * alpha + 127) / 255 : value;
      }
      dst[dst_alpha] = alpha;
    }
  }
}

void
hfam_worker_write_key (const HfamWorker *worker, GstVideoFrame *out)
{
  const int width = GST_VIDEO_FRAME_WIDTH (out), height = GST_VIDEO_FRAME_HEIGHT (out);
  const int stride = GST_VIDEO_FRAME_PLANE_STRIDE (out, 0);
  const gboolean deep = GST_VIDEO_FRAME_FORMAT (out) == GST_VIDEO_FORMAT_GRAY16_LE;
  guint8 *rows = GST_VIDEO_FRAME_PLANE_DATA (out, 0);

  for (int y = 0; y < height; y++) {
    const float *matte = worker->matte + (gsize) y * width;
    guint8 *row = rows + (gsize) y * stride;

    if (deep) {
      for (int x = 0; x < width; x++)
        GST_WRITE_UINT16_LE (row + 2 * x, hfam_worker_alpha16 (matte[x]));
    } else {
      for (int x = 0; x < width; x++)
        row[x] = hfam_worker_alpha8 (matte[x]);
    }
  }
}
