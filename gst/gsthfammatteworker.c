/* hfammatte's per-stream state: see gsthfammatteworker.h. */
#include "gsthfammatteworker.h"

#ifdef HFAM_HAVE_GST_CUDA
#include <gst/cuda/gstcudamemory.h>
#endif

/* (the element's category, gsthfammatte.c's) */
GST_DEBUG_CATEGORY_EXTERN (gst_hfam_matte_debug);
#define GST_CAT_DEFAULT gst_hfam_matte_debug

struct _GstHfamMatteWorker {
  HfamContext *ctx;
  /* interlaced input (interleaved or mixed) runs field by field, each field a picture of half
   * the height: the top fields on `ctx`, the bottom ones on `bottom_ctx` (made when such caps
   * first arrive), so that the network sees no combing where the picture moves, and each
   * field's key follows that field's own picture */
  HfamContext *bottom_ctx;
  gboolean fields;
  guint n_threads;

  GstVideoInfo in_info;
  gboolean read_as_is;            /* libhfam reads the input's layout, `format` */
  HfamFormat format;
  gboolean direct;                /* read as is, and RGB: no conversion on the host */
  GstVideoInfo colour_info;
  GstVideoConverter *converter;   /* input -> RGBA, when not direct */
  GstBufferPool *colour_pool;     /* the converter's outputs, one per held frame */

  GQueue held;                    /* GstHfamMatteWorkerFrame, oldest first */
  guint n_in_flight;              /* held frames the network runs on */
#ifdef HFAM_HAVE_GST_CUDA
  GstCudaContext *cuda_context;   /* what libhfam runs on, or NULL */
  gboolean device_format;         /* CUDA memory caps in a format the device path reads */
  HfamYuvMatrix yuv_matrix;       /* its colour matrix, for NV12 and I420 */
  gboolean yuv_full_range;
#endif
  guint n_on_device;              /* frames in flight on the device path */
  int inference_size;             /* of the last frame submitted, and so of those in flight */
  gboolean have_matte;            /* a frame since the last reset runs the network: libhfam
                                     keeps its matte */
  gboolean matte_on_device;       /* that frame is on the device path, and so its matte */
  guint frames_since_inference;
  gboolean refine;                /* guided refinement: the key reads the frame too */
};

GstHfamMatteWorker *
gst_hfam_matte_worker_new (HfamContext *ctx, guint n_threads)
{
  GstHfamMatteWorker *worker = g_new0 (GstHfamMatteWorker, 1);

  worker->ctx = ctx;
  worker->n_threads = n_threads;
  g_queue_init (&worker->held);
  return worker;
}

/* libhfam's CUDA context runs on the pipeline's: current around every call. Returns whether
 * it was pushed (where it could not be, libhfam's call fails: no CUDA context is current). */
static gboolean
gst_hfam_matte_worker_enter (const GstHfamMatteWorker *worker)
{
#ifdef HFAM_HAVE_GST_CUDA
  if (!worker->cuda_context)
    return FALSE;
  if (gst_cuda_context_push (worker->cuda_context))
    return TRUE;
  GST_WARNING ("cannot make the CUDA context current");
#endif
  return FALSE;
}

/* (pops only what enter pushed: never a context of someone else's) */
static void
gst_hfam_matte_worker_leave (gboolean pushed)
{
#ifdef HFAM_HAVE_GST_CUDA
  if (pushed)
    gst_cuda_context_pop (NULL);
#endif
}

#ifdef HFAM_HAVE_GST_CUDA
void
gst_hfam_matte_worker_set_cuda_context (GstHfamMatteWorker *worker,
                                        GstCudaContext *cuda_context)
{
  gst_object_replace ((GstObject **) &worker->cuda_context, GST_OBJECT (cuda_context));
}
#endif

static void
gst_hfam_matte_worker_clear_input (GstHfamMatteWorker *worker)
{
  gst_hfam_matte_worker_flush (worker);
  g_clear_pointer (&worker->converter, gst_video_converter_free);
  if (worker->colour_pool) {
    gst_buffer_pool_set_active (worker->colour_pool, FALSE);
    gst_clear_object (&worker->colour_pool);
  }
}

void
gst_hfam_matte_worker_free (GstHfamMatteWorker *worker)
{
  gboolean pushed;

  if (!worker)
    return;
  gst_hfam_matte_worker_clear_input (worker);
  pushed = gst_hfam_matte_worker_enter (worker);
  hfam_context_free (worker->ctx);
  g_clear_pointer (&worker->bottom_ctx, hfam_context_free);
  gst_hfam_matte_worker_leave (pushed);
#ifdef HFAM_HAVE_GST_CUDA
  gst_clear_object (&worker->cuda_context);
#endif
  g_free (worker);
}

gboolean
gst_hfam_matte_worker_on_device (const GstHfamMatteWorker *worker)
{
#ifdef HFAM_HAVE_GST_CUDA
  return worker->device_format;
#else
  return FALSE;
#endif
}

int
gst_hfam_matte_worker_depth (const GstHfamMatteWorker *worker)
{
  return hfam_context_pipeline_depth (worker->ctx);
}

/* The contexts the input runs on: `ctx` alone, or with fields the top's and the bottom's. */
static int
gst_hfam_matte_worker_n_contexts (const GstHfamMatteWorker *worker)
{
  return worker->fields ? 2 : 1;
}

static HfamContext *
gst_hfam_matte_worker_context (const GstHfamMatteWorker *worker, int field)
{
  return field ? worker->bottom_ctx : worker->ctx;
}

/* Field `field` (0: top, 1: bottom) of a host image in a packed layout (the frame's RGB
 * layout, or an output): every other row from row `field`; without fields, the image. */
static HfamImage
gst_hfam_matte_worker_field (const GstHfamMatteWorker *worker, const HfamImage *image,
                             int field)
{
  HfamImage half = *image;

  if (worker->fields) {
    half.planes[0] += (gsize) field * image->strides[0];
    half.strides[0] *= 2;
    half.height = (image->height + 1 - field) / 2;
  }
  return half;
}

/* A call's colours (NULL: none) and outputs (fill and key at most) as field `field` sees
 * them. */
typedef struct {
  HfamImage colours;
  HfamImage outputs[2];
} GstHfamMatteWorkerViews;

static const HfamImage *
gst_hfam_matte_worker_views (const GstHfamMatteWorker *worker, const HfamImage *colours,
                             const HfamImage *outputs, int n_outputs, int field,
                             GstHfamMatteWorkerViews *views)
{
  g_assert (n_outputs <= 2);
  for (int i = 0; i < n_outputs; i++)
    views->outputs[i] = gst_hfam_matte_worker_field (worker, &outputs[i], field);
  if (!colours)
    return NULL;
  views->colours = gst_hfam_matte_worker_field (worker, colours, field);
  return &views->colours;
}

/* Whether `info` runs field by field: interlaced rows of two instants in each frame. */
static gboolean
gst_hfam_matte_worker_interlaced (const GstVideoInfo *info)
{
  const GstVideoInterlaceMode mode = GST_VIDEO_INFO_INTERLACE_MODE (info);

  return (mode == GST_VIDEO_INTERLACE_MODE_INTERLEAVED
          || mode == GST_VIDEO_INTERLACE_MODE_MIXED)
         && GST_VIDEO_INFO_HEIGHT (info) >= 2;
}

/* The layout libhfam reads `format` in, if it reads it as it is. */
static gboolean
gst_hfam_matte_worker_format (GstVideoFormat format, HfamFormat *hfam_format)
{
  switch (format) {
    case GST_VIDEO_FORMAT_RGB:
      *hfam_format = HFAM_FORMAT_RGB;
      return TRUE;
    case GST_VIDEO_FORMAT_BGR:
      *hfam_format = HFAM_FORMAT_BGR;
      return TRUE;
    case GST_VIDEO_FORMAT_RGBA:
    case GST_VIDEO_FORMAT_RGBx:
      *hfam_format = HFAM_FORMAT_RGBA;
      return TRUE;
    case GST_VIDEO_FORMAT_BGRA:
    case GST_VIDEO_FORMAT_BGRx:
      *hfam_format = HFAM_FORMAT_BGRA;
      return TRUE;
    case GST_VIDEO_FORMAT_NV12:
      *hfam_format = HFAM_FORMAT_NV12;
      return TRUE;
    case GST_VIDEO_FORMAT_I420:
      *hfam_format = HFAM_FORMAT_I420;
      return TRUE;
    default:
      return FALSE;
  }
}

/* A pool of RGBA frames for the converter: each held frame keeps its own. */
static GstBufferPool *
gst_hfam_matte_worker_colour_pool_new (const GstVideoInfo *info)
{
  GstBufferPool *pool = gst_video_buffer_pool_new ();
  GstCaps *caps = gst_video_info_to_caps (info);
  GstStructure *config = gst_buffer_pool_get_config (pool);

  gst_buffer_pool_config_set_params (config, caps, GST_VIDEO_INFO_SIZE (info), 0, 0);
  gst_caps_unref (caps);
  if (!gst_buffer_pool_set_config (pool, config)
      || !gst_buffer_pool_set_active (pool, TRUE)) {
    gst_object_unref (pool);
    return NULL;
  }
  return pool;
}

#ifdef HFAM_HAVE_GST_CUDA
/* Whether the device path (kernels/preprocess.cu, matte.cu) reads the worker's input: a layout
 * it reads as it is, in a colour matrix it knows (yuv then holds it). */
static gboolean
gst_hfam_matte_worker_device_format (GstHfamMatteWorker *worker)
{
  const GstVideoColorimetry *c = &worker->in_info.colorimetry;

  if (!worker->read_as_is)
    return FALSE;
  if (worker->format != HFAM_FORMAT_NV12 && worker->format != HFAM_FORMAT_I420)
    return TRUE;
  /* other matrices (BT.2020, SMPTE 240M) take the host path's converter */
  if ((c->matrix != GST_VIDEO_COLOR_MATRIX_BT601 && c->matrix != GST_VIDEO_COLOR_MATRIX_BT709)
      || (c->range != GST_VIDEO_COLOR_RANGE_0_255 && c->range != GST_VIDEO_COLOR_RANGE_16_235))
    return FALSE;
  worker->yuv_matrix = c->matrix == GST_VIDEO_COLOR_MATRIX_BT709 ? HFAM_YUV_BT709
                                                                 : HFAM_YUV_BT601;
  worker->yuv_full_range = c->range == GST_VIDEO_COLOR_RANGE_0_255;
  return TRUE;
}
#endif

gboolean
gst_hfam_matte_worker_set_input (GstHfamMatteWorker *worker, const GstVideoInfo *info,
                                 gboolean cuda_memory)
{
  const int width = GST_VIDEO_INFO_WIDTH (info), height = GST_VIDEO_INFO_HEIGHT (info);

  gst_hfam_matte_worker_clear_input (worker);
  worker->in_info = *info;
  worker->fields = FALSE;
  if (gst_hfam_matte_worker_interlaced (info)) {
    GError *error = NULL;
    gboolean pushed;

    if (!worker->bottom_ctx) {
      pushed = gst_hfam_matte_worker_enter (worker);
      worker->bottom_ctx = hfam_context_new_sibling (worker->ctx, &error);
      gst_hfam_matte_worker_leave (pushed);
    }
    if (!worker->bottom_ctx) {
      GST_WARNING ("no context for the bottom fields (%s): the frames run woven",
                   error->message);
      g_clear_error (&error);
    }
    worker->fields = worker->bottom_ctx != NULL;
  }
  worker->read_as_is = gst_hfam_matte_worker_format (GST_VIDEO_INFO_FORMAT (info),
                                                     &worker->format);
  worker->direct = worker->read_as_is && worker->format <= HFAM_FORMAT_BGRA;
  if (worker->direct) {
    worker->colour_info = *info;
  } else {
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
    worker->colour_pool = gst_hfam_matte_worker_colour_pool_new (&worker->colour_info);
    if (!worker->colour_pool) {
      g_clear_pointer (&worker->converter, gst_video_converter_free);
      return FALSE;
    }
  }
#ifdef HFAM_HAVE_GST_CUDA
  worker->device_format = cuda_memory && worker->cuda_context && !worker->fields
      && hfam_context_device_frames (worker->ctx)
      && gst_hfam_matte_worker_device_format (worker);
#endif
  gst_hfam_matte_worker_reset (worker);
  return TRUE;
}

const GstVideoInfo *
gst_hfam_matte_worker_colour_info (const GstHfamMatteWorker *worker)
{
  return &worker->colour_info;
}

void
gst_hfam_matte_worker_reset (GstHfamMatteWorker *worker)
{
  worker->have_matte = FALSE;
  worker->frames_since_inference = 0;
}

/* The frame in an RGB layout: the input itself or, converted once, RGBA. */
static const GstVideoFrame *
gst_hfam_matte_worker_colour_frame (GstHfamMatteWorker *worker, GstHfamMatteWorkerFrame *frame)
{
  GstBuffer *colour_buffer = NULL;

  if (worker->direct)
    return &frame->in;
  if (!frame->converted) {
    if (gst_buffer_pool_acquire_buffer (worker->colour_pool, &colour_buffer, NULL)
        != GST_FLOW_OK)
      return NULL;
    /* the mapped frame keeps its own reference until unmapped */
    frame->converted = gst_video_frame_map (&frame->colour, &worker->colour_info,
                                            colour_buffer, GST_MAP_READWRITE);
    gst_buffer_unref (colour_buffer);
    if (!frame->converted)
      return NULL;
    gst_video_converter_frame (worker->converter, &frame->in, &frame->colour);
  }
  return &frame->colour;
}

void
gst_hfam_matte_worker_frame_free (GstHfamMatteWorkerFrame *frame)
{
  if (frame->converted)
    gst_video_frame_unmap (&frame->colour);
  gst_video_frame_unmap (&frame->in);
  gst_buffer_unref (frame->buffer);
  g_free (frame);
}

/* A mapped frame as libhfam reads it. */
static HfamImage
gst_hfam_matte_worker_image (const GstVideoFrame *mapped, HfamFormat format, HfamMemory memory)
{
  HfamImage image = {
    .width = GST_VIDEO_FRAME_WIDTH (mapped),
    .height = GST_VIDEO_FRAME_HEIGHT (mapped),
    .format = format,
    .memory = memory,
  };

  for (guint i = 0; i < GST_VIDEO_FRAME_N_PLANES (mapped) && i < 3; i++) {
    image.planes[i] = GST_VIDEO_FRAME_PLANE_DATA (mapped, i);
    image.strides[i] = GST_VIDEO_FRAME_PLANE_STRIDE (mapped, i);
  }
  return image;
}

/* The frame as the network reads it, and where the outputs take their colours: on the
 * device path the input itself, on the host path its RGB layout (converted once). */
static gboolean
gst_hfam_matte_worker_input (GstHfamMatteWorker *worker, GstHfamMatteWorkerFrame *frame,
                             HfamImage *image, GError **error)
{
  const GstVideoFrame *colour;

#ifdef HFAM_HAVE_GST_CUDA
  if (frame->on_device) {
    *image = gst_hfam_matte_worker_image (&frame->in, worker->format, HFAM_MEMORY_CUDA);
    image->yuv_matrix = worker->yuv_matrix;
    image->yuv_full_range = worker->yuv_full_range;
    return TRUE;
  }
#endif
  if (!(colour = gst_hfam_matte_worker_colour_frame (worker, frame))) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                 "no memory for the frame converted to RGBA");
    return FALSE;
  }
  *image = gst_hfam_matte_worker_image (colour, worker->direct ? worker->format
                                                               : HFAM_FORMAT_RGBA,
                                        HFAM_MEMORY_HOST);
  return TRUE;
}

static gboolean
gst_hfam_matte_worker_submit (GstHfamMatteWorker *worker, GstHfamMatteWorkerFrame *frame,
                              int inference_size, GError **error)
{
  const int par_n = GST_VIDEO_INFO_PAR_N (&worker->in_info);
  const int par_d = GST_VIDEO_INFO_PAR_D (&worker->in_info);
  const HfamFrameParams params = {
    .long_side = inference_size,
    .smoothing = frame->smoothing,
    .temporal = frame->temporal,
    .islands = frame->islands,
    .letterbox = frame->letterbox,
    /* the network sees the picture as shown (caps without one say 1/1) */
    .pixel_aspect = par_n > 0 && par_d > 0 ? (float) par_n / par_d : 1.0f,
  };
  HfamImage image;
  gboolean ok = TRUE, pushed;

  if (!gst_hfam_matte_worker_input (worker, frame, &image, error))
    return FALSE;
  pushed = gst_hfam_matte_worker_enter (worker);
  for (int f = 0; ok && f < gst_hfam_matte_worker_n_contexts (worker); f++) {
    const HfamImage field = gst_hfam_matte_worker_field (worker, &image, f);
    HfamFrameParams field_params = params;

    /* (a field's pixels are twice as tall as the frame's) */
    if (worker->fields)
      field_params.pixel_aspect /= 2.0f;
    ok = hfam_context_submit (gst_hfam_matte_worker_context (worker, f), &field, &field_params,
                              error);
    /* the fields go in and out of flight together */
    if (!ok && f == 1 && !hfam_context_collect (worker->ctx, NULL, NULL, 0, NULL))
      GST_DEBUG ("the top field failed in the network too");
  }
  gst_hfam_matte_worker_leave (pushed);
  return ok;
}

/* The device path: CUDA memory of libhfam's own context, in a format it reads. The matte
 * stays on the device there: libhfam blends it and keeps it for the frames that do not run
 * the network. */
static gboolean
gst_hfam_matte_worker_takes_device_path (const GstHfamMatteWorker *worker, GstBuffer *buffer)
{
#ifdef HFAM_HAVE_GST_CUDA
  GstMemory *memory;

  if (!worker->device_format || gst_buffer_n_memory (buffer) != 1)
    return FALSE;
  memory = gst_buffer_peek_memory (buffer, 0);
  return gst_is_cuda_memory (memory)
      && gst_cuda_context_get_handle (GST_CUDA_MEMORY_CAST (memory)->context)
         == gst_cuda_context_get_handle (worker->cuda_context);
#else
  return FALSE;
#endif
}

gboolean
gst_hfam_matte_worker_must_drain (const GstHfamMatteWorker *worker, GstBuffer *buffer,
                                  const GstHfamMatteWorkerSettings *settings)
{
  return worker->n_in_flight > 0
      && (settings->inference_size != worker->inference_size
          || (worker->n_on_device > 0)
             != gst_hfam_matte_worker_takes_device_path (worker, buffer));
}

int
gst_hfam_matte_worker_inference_size (const GstHfamMatteWorker *worker)
{
  return worker->inference_size;
}

int
gst_hfam_matte_worker_auto_inference_size (const GstHfamMatteWorker *worker)
{
  return hfam_context_auto_long_side (worker->ctx);
}

GstHfamMatteWorkerFrame *
gst_hfam_matte_worker_push (GstHfamMatteWorker *worker, GstBuffer *buffer,
                            const GstHfamMatteWorkerSettings *settings, GError **error)
{
  GstHfamMatteWorkerFrame *frame = g_new0 (GstHfamMatteWorkerFrame, 1);
  GstMapFlags map_flags = GST_MAP_READ;
  gboolean have_matte;

  frame->arrived = gst_util_get_timestamp ();
  frame->buffer = buffer;
  if (!hfam_context_set_edges (worker->ctx, &settings->edges, error)
      || (worker->fields
          && !hfam_context_set_edges (worker->bottom_ctx, &settings->edges, error))) {
    gst_buffer_unref (buffer);
    g_free (frame);
    return NULL;
  }
  worker->refine = settings->edges.refine != HFAM_REFINE_NONE;
  frame->on_device = gst_hfam_matte_worker_takes_device_path (worker, buffer);
  /* (tests/gst/test_cuda_memory.c counts these) */
  GST_LOG ("frame %" GST_TIME_FORMAT " on the %s path", GST_TIME_ARGS (GST_BUFFER_PTS (buffer)),
           frame->on_device ? "device" : "host");
#ifdef HFAM_HAVE_GST_CUDA
  if (frame->on_device)
    map_flags |= GST_MAP_CUDA;
#endif
  if (!gst_video_frame_map (&frame->in, &worker->in_info, buffer, map_flags)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "cannot map the input frame: smaller than its caps say?");
    gst_buffer_unref (buffer);
    g_free (frame);
    return NULL;
  }
#if defined(HFAM_HAVE_GST_CUDA) && GST_CHECK_VERSION(1, 24, 0)
  /* from 1.24 upstream may leave CUDA memory written on a stream of its own, which a
   * GST_MAP_CUDA map does not wait for (libhfam's streams are not that one) */
  if (frame->on_device)
    for (guint i = 0; i < gst_buffer_n_memory (buffer); i++) {
      GstMemory *memory = gst_buffer_peek_memory (buffer, i);
      if (gst_is_cuda_memory (memory))
        gst_cuda_memory_sync (GST_CUDA_MEMORY_CAST (memory));
    }
#endif
  /* the current matte is where its frame's path keeps it: a frame on the other path runs the
   * network and starts afresh */
  have_matte = worker->have_matte && worker->matte_on_device == frame->on_device;
  frame->runs = !have_matte || worker->frames_since_inference >= settings->inference_interval;
  if (frame->runs) {
    /* the previous matte (if any since the reset) will be there when this one arrives */
    frame->smoothing = have_matte ? settings->temporal_smoothing : 0.0f;
    frame->temporal = settings->temporal_mode;
    frame->islands = settings->islands;
    frame->letterbox = settings->letterbox;
    if (!gst_hfam_matte_worker_submit (worker, frame, settings->inference_size, error)) {
      worker->have_matte = FALSE;
      gst_hfam_matte_worker_frame_free (frame);
      return NULL;
    }
    worker->n_in_flight++;
    worker->n_on_device += frame->on_device;
    worker->inference_size = settings->inference_size;
    worker->have_matte = TRUE;
    worker->matte_on_device = frame->on_device;
    worker->frames_since_inference = 1;
  } else {
    worker->frames_since_inference++;
  }
  g_queue_push_tail (&worker->held, frame);
  return frame;
}

/* The oldest frame in flight: libhfam keeps its matte (blended into the one before) and
 * writes it into `outputs`, the colours from `colours`. */
static gboolean
gst_hfam_matte_worker_collect (GstHfamMatteWorker *worker,
                               const GstHfamMatteWorkerFrame *frame, const HfamImage *colours,
                               const HfamImage *outputs, int n_outputs, GError **error)
{
  gboolean ok = TRUE, pushed;

  worker->n_in_flight--;
  worker->n_on_device -= frame->on_device;
  pushed = gst_hfam_matte_worker_enter (worker);
  /* (every field leaves flight, the first error is the one said) */
  for (int f = 0; f < gst_hfam_matte_worker_n_contexts (worker); f++) {
    GstHfamMatteWorkerViews views;
    const HfamImage *field_colours = gst_hfam_matte_worker_views (worker, colours, outputs,
                                                                  n_outputs, f, &views);
    ok &= hfam_context_collect (gst_hfam_matte_worker_context (worker, f), field_colours,
                                views.outputs, n_outputs, ok ? error : NULL);
  }
  gst_hfam_matte_worker_leave (pushed);
  /* a failed collect keeps no matte */
  if (!ok)
    worker->have_matte = FALSE;
  return ok;
}

/* A frame that does not run the network: the kept matte follows its picture's motion
 * (hfam_context_follow: where the smoothing compensates motion) before its outputs are
 * written from it. */
static gboolean
gst_hfam_matte_worker_follow (GstHfamMatteWorker *worker, GstHfamMatteWorkerFrame *frame,
                              GError **error)
{
  HfamImage image;
  gboolean ok = TRUE, pushed;

  if (!gst_hfam_matte_worker_input (worker, frame, &image, error))
    return FALSE;
  pushed = gst_hfam_matte_worker_enter (worker);
  for (int f = 0; ok && f < gst_hfam_matte_worker_n_contexts (worker); f++) {
    const HfamImage field = gst_hfam_matte_worker_field (worker, &image, f);
    ok = hfam_context_follow (gst_hfam_matte_worker_context (worker, f), &field, error);
  }
  gst_hfam_matte_worker_leave (pushed);
  return ok;
}

/* A frame the network runs on out of flight, its matte kept, written nowhere. */
static gboolean
gst_hfam_matte_worker_finish (GstHfamMatteWorker *worker, GstHfamMatteWorkerFrame *frame,
                              GError **error)
{
  return !frame->runs || gst_hfam_matte_worker_collect (worker, frame, NULL, NULL, 0, error);
}

gboolean
gst_hfam_matte_worker_settle (GstHfamMatteWorker *worker, GstHfamMatteWorkerFrame *frame,
                              GError **error)
{
  return frame->runs ? gst_hfam_matte_worker_finish (worker, frame, error)
                     : gst_hfam_matte_worker_follow (worker, frame, error);
}

GstHfamMatteWorkerFrame *
gst_hfam_matte_worker_pop (GstHfamMatteWorker *worker, gboolean drain)
{
  GstHfamMatteWorkerFrame *oldest = g_queue_peek_head (&worker->held);

  if (!oldest || (oldest->runs && !drain
                  && (int) worker->n_in_flight < gst_hfam_matte_worker_depth (worker)))
    return NULL;
  /* its matte is collected as its outputs are written (gst_hfam_matte_worker_write) */
  return g_queue_pop_head (&worker->held);
}

void
gst_hfam_matte_worker_flush (GstHfamMatteWorker *worker)
{
  GstHfamMatteWorkerFrame *frame;

  while ((frame = g_queue_pop_head (&worker->held))) {
    /* the network finishes the frame; its matte is kept, no output wants it */
    if (!gst_hfam_matte_worker_finish (worker, frame, NULL))
      GST_DEBUG ("a dropped frame failed in the network");
    gst_hfam_matte_worker_frame_free (frame);
  }
}

guint
gst_hfam_matte_worker_n_held (const GstHfamMatteWorker *worker)
{
  return worker->held.length;
}

/* An output frame, mapped on the host or on the device. */
static HfamImage
gst_hfam_matte_worker_output (GstVideoFrame *out, HfamMemory memory, gboolean premultiplied)
{
  HfamFormat format = HFAM_FORMAT_RGBA;
  HfamImage image;

  switch (GST_VIDEO_FRAME_FORMAT (out)) {
    case GST_VIDEO_FORMAT_BGRA:
      format = HFAM_FORMAT_BGRA;
      break;
    case GST_VIDEO_FORMAT_GRAY8:
      format = HFAM_FORMAT_GRAY8;
      break;
    case GST_VIDEO_FORMAT_GRAY16_LE:
      format = HFAM_FORMAT_GRAY16;
      break;
    default:
      break;
  }
  image = gst_hfam_matte_worker_image (out, format, memory);
  image.premultiplied = premultiplied;
  return image;
}

/* The kept matte into `outputs` for a frame whose matte is ready (collected, or not run). */
static gboolean
gst_hfam_matte_worker_write_kept (GstHfamMatteWorker *worker, const HfamImage *colours,
                                  const HfamImage *outputs, int n_outputs, GError **error)
{
  gboolean ok = TRUE, pushed;

  pushed = gst_hfam_matte_worker_enter (worker);
  for (int f = 0; ok && f < gst_hfam_matte_worker_n_contexts (worker); f++) {
    GstHfamMatteWorkerViews views;
    const HfamImage *field_colours = gst_hfam_matte_worker_views (worker, colours, outputs,
                                                                  n_outputs, f, &views);
    ok = hfam_context_write_kept (gst_hfam_matte_worker_context (worker, f), field_colours,
                                  views.outputs, n_outputs, error);
  }
  gst_hfam_matte_worker_leave (pushed);
  return ok;
}

/* libhfam's GRAY16 is in host order; the pad's format is little-endian. */
static void
gst_hfam_matte_worker_key_to_le (GstVideoFrame *key)
{
#if G_BYTE_ORDER == G_BIG_ENDIAN
  if (GST_VIDEO_FRAME_FORMAT (key) != GST_VIDEO_FORMAT_GRAY16_LE)
    return;
  for (int y = 0; y < GST_VIDEO_FRAME_HEIGHT (key); y++) {
    guint16 *row = (guint16 *) ((guint8 *) GST_VIDEO_FRAME_PLANE_DATA (key, 0)
        + (gsize) y * GST_VIDEO_FRAME_PLANE_STRIDE (key, 0));
    for (int x = 0; x < GST_VIDEO_FRAME_WIDTH (key); x++)
      row[x] = GUINT16_TO_LE (row[x]);
  }
#else
  (void) key;
#endif
}

gboolean
gst_hfam_matte_worker_write (GstHfamMatteWorker *worker, GstHfamMatteWorkerFrame *frame,
                             GstVideoFrame *fill, gboolean premultiplied, GstVideoFrame *key,
                             GError **error)
{
  const HfamMemory memory = frame->on_device ? HFAM_MEMORY_CUDA : HFAM_MEMORY_HOST;
  /* the key alone, unrefined, needs no colours: no conversion of the frame for it */
  const gboolean coloured = fill || worker->refine || frame->on_device;
  HfamImage colours, outputs[2];
  int n_outputs = 0;
  gboolean ok;

  if (fill)
    outputs[n_outputs++] = gst_hfam_matte_worker_output (fill, memory, premultiplied);
  if (key)
    outputs[n_outputs++] = gst_hfam_matte_worker_output (key, memory, FALSE);
  if (coloured && !gst_hfam_matte_worker_input (worker, frame, &colours, error))
    return FALSE;
  /* one call for both outputs, at collect where the frame ran: the refined matte is made once
   * for both, and holds its detail over the last frame's (kernels/refine.h) */
  ok = frame->runs
      ? gst_hfam_matte_worker_collect (worker, frame, coloured ? &colours : NULL, outputs,
                                       n_outputs, error)
      : gst_hfam_matte_worker_follow (worker, frame, error)
            && gst_hfam_matte_worker_write_kept (worker, coloured ? &colours : NULL, outputs,
                                                 n_outputs, error);
  /* (CUDA hosts are little-endian) */
  if (ok && key && !frame->on_device)
    gst_hfam_matte_worker_key_to_le (key);
  return ok;
}
