/* hfammatte on CUDA memory, in and out, against the CPU element on system
 * memory: with a CUDA device only (test_cuda_memory says it skips without
 * one). */
#include "harness.h"

#ifdef HFAM_HAVE_GST_CUDA
#include <math.h>
#include <string.h>

#include "hfam-internal.h"
#include <gst/cuda/gstcudabufferpool.h>
#include <gst/cuda/gstcudaloader.h>
#include <gst/cuda/gstcudamemory.h>
#include <gst/cuda/gstcudautils.h>

/* The frames hfammatte logged on the device path (gsthfammatteworker.c) while
 * watched: a fill in CUDA memory alone would not show that the element did not
 * fall back to system memory. */
static gint device_frames;

static void
count_device_frames (GstDebugCategory * category, GstDebugLevel level,
    const gchar * file, const gchar * function, gint line, GObject * object,
    GstDebugMessage * message, gpointer user_data)
{
  if (strcmp (gst_debug_category_get_name (category), "hfammatte") == 0
      && strstr (gst_debug_message_get (message), "on the device path"))
    g_atomic_int_inc (&device_frames);
}

/* (the default log function off meanwhile: hfammatte's log level would flood
 * it) */
static void
watch_device_path (gboolean on)
{
  static guint default_removed;

  if (on) {
    g_atomic_int_set (&device_frames, 0);
    default_removed = gst_debug_remove_log_function (gst_debug_log_default);
    gst_debug_add_log_function (count_device_frames, NULL, NULL);
    gst_debug_set_threshold_for_name ("hfammatte", GST_LEVEL_LOG);
  } else {
    gst_debug_unset_threshold_for_name ("hfammatte");
    gst_debug_remove_log_function (count_device_frames);
    if (default_removed)
      gst_debug_add_log_function (gst_debug_log_default, NULL, NULL);
  }
}

static GstCudaContext *
cuda_memory_context (void)
{
  if (!gst_cuda_load_library ())
    return NULL;
  /* for the test's own pool (the element registers it too, but opens later) */
  gst_cuda_memory_init_once ();
  return gst_cuda_context_new (0);
}

/* `frame` (system memory) copied into a buffer of the CUDA pool (gstcuda
 * uploads it on unmap). */
static GstBuffer *
upload (GstBufferPool * pool, const GstVideoInfo * info, GstBuffer * frame)
{
  GstVideoFrame src, dst;
  GstBuffer *buffer = NULL;

  fail_unless_equals_int (gst_buffer_pool_acquire_buffer (pool, &buffer, NULL),
      GST_FLOW_OK);
  fail_unless (gst_is_cuda_memory (gst_buffer_peek_memory (buffer, 0)));
  fail_unless (gst_video_frame_map (&src, info, frame, GST_MAP_READ));
  fail_unless (gst_video_frame_map (&dst, info, buffer, GST_MAP_WRITE));
  fail_unless (gst_video_frame_copy (&dst, &src));
  gst_video_frame_unmap (&dst);
  gst_video_frame_unmap (&src);
  return buffer;
}

#define N_MEMORY_FRAMES 5

/* How the matte is carried from frame to frame in test_cuda_memory. */
typedef struct
{
  guint interval;
  gdouble smoothing;
  gboolean refined;             /* the element's default refinement, else none */
  guint max_batch;              /* 0: the element's default */
  const gchar *temporal_mode;   /* NULL: the element's default (compensated) */
} MemorySettings;

/* Every 4th byte from offset 3 of packed RGBA or BGRA pixels: their alpha. */
static GBytes *
alpha_of (GBytes * packed)
{
  gsize n;
  const guint8 *p = g_bytes_get_data (packed, &n);
  guint8 *alpha = g_malloc (n / 4);

  for (gsize i = 0; i < n / 4; i++)
    alpha[i] = p[4 * i + 3];
  return g_bytes_new_take (alpha, n / 4);
}

/* The fill pixels of N_MEMORY_FRAMES frames through hfammatte, and their
 * alpha as the key: on the CPU from system memory, or (cuda_context set) on
 * CUDA from CUDA memory of that context, in and out. (Only the fill pad is
 * linked: the alpha pad has no CUDA memory, gstcuda allocating no GRAY.) */
static void
run_memory (GstCudaContext * cuda_context, GstVideoFormat format, guint depth,
    const MemorySettings * settings, GBytes ** fills, GBytes ** keys)
{
  GstElement *element = make_element ();
  GstBufferPool *pool = NULL;
  GstVideoInfo info;
  GstCaps *caps;
  Rig rig;

  video_info (&info, format, WIDTH, HEIGHT);
  caps = gst_video_info_to_caps (&info);
  g_object_set (element, "pipeline-depth", depth, "inference-interval",
      settings->interval, "temporal-smoothing", settings->smoothing, NULL);
  if (settings->max_batch)
    g_object_set (element, "max-batch", settings->max_batch, NULL);
  if (settings->temporal_mode)
    gst_util_set_object_arg (G_OBJECT (element), "temporal-mode",
        settings->temporal_mode);
  /* (a refined matte follows each frame, so the interval's frames differ) */
  if (!settings->refined)
    g_object_set (element, "refine", HFAM_REFINE_NONE, NULL);
  /* both in fp32: the CPU's default may be bf16 */
  gst_util_set_object_arg (G_OBJECT (element), "precision", "fp32");
  if (cuda_context) {
    GstContext *context = gst_context_new_cuda_context (cuda_context);
    GstStructure *config;

    gst_util_set_object_arg (G_OBJECT (element), "backend", "cuda");
    gst_element_set_context (element, context);
    gst_context_unref (context);
    gst_caps_set_features (caps, 0,
        gst_caps_features_new (GST_CAPS_FEATURE_MEMORY_CUDA_MEMORY, NULL));
    pool = gst_cuda_buffer_pool_new (cuda_context);
    config = gst_buffer_pool_get_config (pool);
    gst_buffer_pool_config_set_params (config, caps,
        GST_VIDEO_INFO_SIZE (&info), 0, 0);
    fail_unless (gst_buffer_pool_set_config (pool, config));
    fail_unless (gst_buffer_pool_set_active (pool, TRUE));
  }
  watch_device_path (TRUE);
  rig_start (&rig, element, TRUE, FALSE);
  gst_harness_set_src_caps (rig.input, caps);
  for (guint i = 0; i < N_MEMORY_FRAMES; i++) {
    GstBuffer *frame = make_frame (&info, 700 + i);

    if (pool) {
      GstBuffer *device = upload (pool, &info, frame);
      gst_buffer_unref (frame);
      frame = device;
    }
    fail_unless_equals_int (rig_push (&rig, frame, i), GST_FLOW_OK);
  }
  fail_unless (gst_harness_push_event (rig.input, gst_event_new_eos ()));
  for (guint i = 0; i < N_MEMORY_FRAMES; i++) {
    GstBuffer *fill = gst_harness_pull (rig.fill);

    /* the matte was written on the device, in CUDA memory */
    if (cuda_context)
      fail_unless (gst_is_cuda_memory (gst_buffer_peek_memory (fill, 0)));
    fills[i] = packed_pixels (rig.fill, fill);
    keys[i] = alpha_of (fills[i]);
  }
  rig_stop (&rig);
  watch_device_path (FALSE);
#ifndef GST_DISABLE_GST_DEBUG
  /* every frame on the device, in a batch group too */
  fail_unless_equals_int (g_atomic_int_get (&device_frames),
      cuda_context ? N_MEMORY_FRAMES : 0);
#endif
  if (pool) {
    gst_buffer_pool_set_active (pool, FALSE);
    gst_object_unref (pool);
  }
}

/* An NV12 frame mapped as libhfam's CPU twins read it, with the matrix and
 * range of its caps, as the element picks them. */
static HfamFrame
host_nv12 (const GstVideoInfo * info, GstVideoFrame * mapped, HfamYuvToRgb * yuv)
{
  const GstVideoColorimetry *c = &info->colorimetry;
  HfamFrame host = {.width = GST_VIDEO_INFO_WIDTH (info),
    .height = GST_VIDEO_INFO_HEIGHT (info),.format = HFAM_FRAME_NV12
  };

  fail_unless_equals_int (GST_VIDEO_INFO_FORMAT (info), GST_VIDEO_FORMAT_NV12);
  hfam_yuv_to_rgb_init (yuv, c->matrix == GST_VIDEO_COLOR_MATRIX_BT709
      ? HFAM_MATRIX_BT709 : HFAM_MATRIX_BT601,
      c->range == GST_VIDEO_COLOR_RANGE_0_255 ? HFAM_RANGE_FULL
      : HFAM_RANGE_LIMITED);
  for (guint i = 0; i < 2; i++) {
    host.planes[i] = GST_VIDEO_FRAME_PLANE_DATA (mapped, i);
    host.strides[i] = GST_VIDEO_FRAME_PLANE_STRIDE (mapped, i);
  }
  return host;
}

/* The key of an NV12 frame through the CPU twins of the device path
 * (hfam_frame_preprocess, then the CPU backend, then hfam_matte_write): what
 * the CUDA element should make of it, up to fp32 rounding. */
static GBytes *
twin_key_nv12 (Engine * engine, const GstVideoInfo * info, GstBuffer * frame)
{
  const gint width = GST_VIDEO_INFO_WIDTH (info);
  const gint height = GST_VIDEO_INFO_HEIGHT (info);
  HfamPreprocessParams params;
  GstVideoFrame mapped;
  HfamFrame host;
  HfamOutputs out = { 0 };
  HfamMatteImage key;
  GError *error = NULL;
  float *input, *alpha;
  gint inf_w, inf_h;

  fail_unless (gst_video_frame_map (&mapped, info, frame, GST_MAP_READ));
  hfam_model_preprocess_params (engine->model, &params);
  host = host_nv12 (info, &mapped, &params.yuv);
  hfam_inference_dims (width, height, 1.0f, INFERENCE_SIZE, &inf_w, &inf_h);
  input = g_new (float, 3 * (gsize) inf_w * inf_h);
  alpha = g_new (float, (gsize) inf_w * inf_h);
  fail_unless_equals_int (hfam_frame_preprocess (&host, &params, input, inf_w,
          inf_h), 0);
  out.fused = alpha;
  fail_unless (hfam_context_run_tensor (engine->ctx, input, inf_w, inf_h, &out,
          &error), "%s", error ? error->message : "");
  key = (HfamMatteImage) {
  g_malloc (width * height), width, width, height, HFAM_MATTE_GRAY8};
  fail_unless_equals_int (hfam_matte_write (alpha, inf_w, inf_h, NULL, NULL,
          &key), 0);
  gst_video_frame_unmap (&mapped);
  g_free (input);
  g_free (alpha);
  return g_bytes_new_take (key.data, (gsize) width * height);
}

/* Largest difference between the colour of a fill made from an NV12 frame on
 * the device and the colour that hfam_frame_pixel_rgb (the CPU twin of
 * matte.cu's conversion) gives for the same frame. Wrong planes, strides or
 * matrix show here as large differences; rounding as at most 1. */
static guint
device_colour_diff (const GstVideoInfo * info, GstBuffer * frame,
    GBytes * fill)
{
  const guint8 *rgba = g_bytes_get_data (fill, NULL);
  GstVideoFrame mapped;
  HfamYuvToRgb yuv;
  HfamFrame host;
  guint max = 0;

  fail_unless (gst_video_frame_map (&mapped, info, frame, GST_MAP_READ));
  host = host_nv12 (info, &mapped, &yuv);
  for (gint y = 0; y < host.height; y++)
    for (gint x = 0; x < host.width; x++) {
      float rgb[3];

      hfam_frame_pixel_rgb (&host, &yuv, x, y, rgb);
      for (guint k = 0; k < 3; k++) {
        const gint want = (gint) lrintf (CLAMP (rgb[k], 0.0f, 255.0f));
        const gint got = rgba[4 * ((gsize) y * host.width + x) + k];
        max = MAX (max, (guint) ABS (got - want));
      }
    }
  gst_video_frame_unmap (&mapped);
  return max;
}

/* The share of bytes of two keys that differ by at most `levels`. */
static double
share_within (GBytes * a, GBytes * b, guint levels)
{
  gsize n_a, n_b, near = 0;
  const guint8 *pa = g_bytes_get_data (a, &n_a);
  const guint8 *pb = g_bytes_get_data (b, &n_b);

  fail_unless_equals_int (n_a, n_b);
  for (gsize i = 0; i < n_a; i++)
    near += (guint) ABS ((gint) pa[i] - (gint) pb[i]) <= levels;
  return (double) near / MAX (n_a, 1);
}

/* Largest and mean difference of two byte strings of the same size; with a
 * stride, only every stride-th byte from `offset`. */
static void
byte_diff (GBytes * a, GBytes * b, gsize offset, gsize stride, guint * max,
    double *mean)
{
  gsize n_a, n_b, n = 0;
  const guint8 *pa = g_bytes_get_data (a, &n_a);
  const guint8 *pb = g_bytes_get_data (b, &n_b);

  fail_unless_equals_int (n_a, n_b);
  *max = 0;
  *mean = 0.0;
  for (gsize i = offset; i < n_a; i += stride, n++) {
    const guint d = ABS ((gint) pa[i] - (gint) pb[i]);
    *max = MAX (*max, d);
    *mean += d;
  }
  *mean /= MAX (n, 1);
}

/* CUDA memory in and out against the CPU element on system memory, fp32.
 * RGBA (the device path reads it as it is): the colour is the input's, the
 * key (the fill's alpha) within one level (rounding near a half). NV12: the
 * colour is hfam_frame_pixel_rgb's within one level (gstcuda's plane layout
 * and the caps' matrix reach the device), and each frame's own key that of the
 * CPU twins of the device path within one level (98 % of it: a near-tie of the
 * tiny random model's classes may flip a pixel). Not the CPU element's: the
 * device path takes chroma from the covering sample where GstVideoConverter
 * interpolates, and those few levels flip the tiny model's near-ties on a
 * quarter of the key (on an H200, 2026-11-26). Pipeline depth 2 on CUDA gives depth 1's
 * bytes. The same with the matte carried on the device: inference-interval 3
 * (the frames in between show the kept matte moved along their picture's
 * motion, on the device as on the CPU; with temporal-mode=blend, which does not
 * move it, the key of the frame that ran, byte for byte), temporal-smoothing
 * 0.5 (blended at the inference size on both), and both; these with
 * refine=none. Last, the element's default refinement (guided: refine.cu on
 * the device, its CPU twin on the CPU element), compared as the first. */
GST_START_TEST (test_cuda_memory)
{
  static const GstVideoFormat formats[] = { GST_VIDEO_FORMAT_RGBA,
    GST_VIDEO_FORMAT_NV12
  };
  static const MemorySettings settings[] = { {1, 0.0, FALSE, 0, NULL},
  {3, 0.0, FALSE, 0, NULL}, {3, 0.0, FALSE, 0, "blend"},
  {1, 0.5, FALSE, 0, NULL}, {2, 0.5, FALSE, 0, NULL}, {1, 0.0, TRUE, 0, NULL}
  };
  GstCudaContext *cuda_context = cuda_memory_context ();
  Engine engine;

  if (!cuda_context || !cuda_device_opens ()) {
    g_print ("test_cuda_memory: skipped, no CUDA device\n");
    gst_clear_object (&cuda_context);
    return;
  }
  engine_open_at (&engine, HFAM_PRECISION_FP32);
  for (guint f = 0; f < G_N_ELEMENTS (formats); f++) {
    GBytes *plain_keys[N_MEMORY_FRAMES];  /* the CPU's, each frame's own matte */

    for (guint s = 0; s < G_N_ELEMENTS (settings); s++) {
      /* [cpu, cuda, cuda depth 2][frame] */
      GBytes *fills[3][N_MEMORY_FRAMES], *keys[3][N_MEMORY_FRAMES];
      const guint interval = settings[s].interval;

      run_memory (NULL, formats[f], 1, &settings[s], fills[0], keys[0]);
      run_memory (cuda_context, formats[f], 1, &settings[s], fills[1],
          keys[1]);
      run_memory (cuda_context, formats[f], 2, &settings[s], fills[2],
          keys[2]);
      /* the setting shows: frame 1 does not get its own matte */
      if (s == 0)
        memcpy (plain_keys, keys[0], sizeof plain_keys);
      else
        fail_if (g_bytes_equal (keys[0][1], plain_keys[1]),
            "interval %u, smoothing %.1f changed nothing", interval,
            settings[s].smoothing);
      for (guint i = 0; i < N_MEMORY_FRAMES; i++) {
        guint max;
        double mean;

        byte_diff (keys[0][i], keys[1][i], 0, 1, &max, &mean);
        GST_INFO ("%s, interval %u, smoothing %.1f, frame %u: key max %u "
            "mean %.3f", gst_video_format_to_string (formats[f]), interval,
            settings[s].smoothing, i, max, mean);
        if (formats[f] == GST_VIDEO_FORMAT_RGBA) {
          fail_unless (max <= 1, "key differs by %u", max);
          for (guint c = 0; c < 3; c++) {
            byte_diff (fills[0][i], fills[1][i], c, 4, &max, &mean);
            fail_unless_equals_int (max, 0);
          }
        } else {
          GstVideoInfo nv12_info;
          GstBuffer *frame;

          video_info (&nv12_info, formats[f], WIDTH, HEIGHT);
          frame = make_frame (&nv12_info, 700 + i);
          max = device_colour_diff (&nv12_info, frame, fills[1][i]);
          GST_INFO ("NV12 frame %u: colour max %u", i, max);
          fail_unless (max <= 1, "the device's colour differs by %u", max);
          /* each frame's own matte: the twins' */
          if (s == 0) {
            GBytes *twin = twin_key_nv12 (&engine, &nv12_info, frame);
            const double near = share_within (twin, keys[1][i], 1);

            byte_diff (twin, keys[1][i], 0, 1, &max, &mean);
            GST_INFO ("NV12 frame %u: key against the twins max %u mean %.3f, "
                "%.1f %% within 1 level", i, max, mean, 100.0 * near);
            fail_unless (near >= 0.98, "only %.1f %% of the key within 1 level "
                "of the twins'", 100.0 * near);
            g_bytes_unref (twin);
          }
          gst_buffer_unref (frame);
        }
        /* a frame the network skips shows the kept matte of the one it ran on,
         * unmoved where the temporal mode does not follow motion */
        if (g_strcmp0 (settings[s].temporal_mode, "blend") == 0)
          fail_unless (g_bytes_equal (keys[1][i], keys[1][i - i % interval]),
              "frame %u", i);
        fail_unless (g_bytes_equal (keys[1][i], keys[2][i]));
        fail_unless (g_bytes_equal (fills[1][i], fills[2][i]));
      }
      for (guint i = 0; i < N_MEMORY_FRAMES; i++)
        for (guint k = 0; k < 3; k++) {
          g_bytes_unref (fills[k][i]);
          if (k > 0 || s > 0)
            g_bytes_unref (keys[k][i]);
        }
    }
    for (guint i = 0; i < N_MEMORY_FRAMES; i++)
      g_bytes_unref (plain_keys[i]);
  }
  engine_close (&engine);
  gst_object_unref (cuda_context);
}

GST_END_TEST;

/* In a batch group (max-batch=2) the CUDA element keeps its frames in CUDA
 * memory on the device (its frames-only backend preprocesses them and writes
 * the fill, the group's lane runs the network): the key within a level of the
 * CPU element's, the colours the same. */
GST_START_TEST (test_cuda_memory_batch_group)
{
  static const MemorySettings settings = { 1, 0.0, FALSE, 2, NULL };
  GstCudaContext *cuda_context = cuda_memory_context ();
  GBytes *fills[2][N_MEMORY_FRAMES], *keys[2][N_MEMORY_FRAMES];

  if (!cuda_context || !cuda_device_opens ()) {
    g_print ("test_cuda_memory_batch_group: skipped, no CUDA device\n");
    gst_clear_object (&cuda_context);
    return;
  }
  run_memory (NULL, GST_VIDEO_FORMAT_RGBA, 1, &settings, fills[0], keys[0]);
  run_memory (cuda_context, GST_VIDEO_FORMAT_RGBA, 1, &settings, fills[1],
      keys[1]);
  for (guint i = 0; i < N_MEMORY_FRAMES; i++) {
    guint max;
    double mean;

    byte_diff (keys[0][i], keys[1][i], 0, 1, &max, &mean);
    GST_INFO ("batch group, frame %u: key max %u mean %.3f", i, max, mean);
    fail_unless (max <= 1, "key differs by %u", max);
    for (guint c = 0; c < 3; c++) {
      byte_diff (fills[0][i], fills[1][i], c, 4, &max, &mean);
      fail_unless_equals_int (max, 0);
    }
    for (guint k = 0; k < 2; k++) {
      g_bytes_unref (fills[k][i]);
      g_bytes_unref (keys[k][i]);
    }
  }
  gst_object_unref (cuda_context);
}

GST_END_TEST;

/* The CUDA context an element started on backend=cuda answers a context query
 * with (a reference). */
static GstCudaContext *
element_cuda_context (GstElement * element)
{
  GstQuery *query = gst_query_new_context (GST_CUDA_CONTEXT_TYPE);
  GstPad *pad = gst_element_get_static_pad (element, "sink");
  GstCudaContext *cuda_context = NULL;
  GstContext *context = NULL;

  fail_unless (gst_pad_query (pad, query));
  gst_query_parse_context (query, &context);
  fail_unless (context != NULL);
  fail_unless (gst_structure_get (gst_context_get_structure (context),
          GST_CUDA_CONTEXT_TYPE, GST_TYPE_CUDA_CONTEXT, &cuda_context, NULL));
  gst_query_unref (query);
  gst_object_unref (pad);
  return cuda_context;
}

/* Elements in pipelines of their own that share their model (the default) run
 * on one CUDA context, so that they hold the device weights once; with
 * share-model=false each makes its own. */
GST_START_TEST (test_cuda_context_shared)
{
  if (!cuda_device_opens ()) {
    g_print ("test_cuda_context_shared: skipped, no CUDA device\n");
    return;
  }
  for (guint share = 0; share < 2; share++) {
    GstCudaContext *contexts[2];
    Rig rigs[2];

    for (guint i = 0; i < 2; i++) {
      GstElement *element = make_element ();

      gst_util_set_object_arg (G_OBJECT (element), "backend", "cuda");
      g_object_set (element, "share-model", (gboolean) share, NULL);
      rig_start (&rigs[i], element, TRUE, FALSE);
      contexts[i] = element_cuda_context (rigs[i].element);
    }
    fail_unless ((contexts[0] == contexts[1]) == (gboolean) share,
        "share-model=%u: the contexts are %s", share,
        contexts[0] == contexts[1] ? "one" : "two");
    for (guint i = 0; i < 2; i++) {
      gst_object_unref (contexts[i]);
      rig_stop (&rigs[i]);
    }
  }
}

GST_END_TEST;

TCase *
cuda_memory_tcase (void)
{
  TCase *tc = tcase_create ("cuda-memory");

  tcase_add_test (tc, test_cuda_memory);
  tcase_add_test (tc, test_cuda_memory_batch_group);
  tcase_add_test (tc, test_cuda_context_shared);
  return tc;
}
#endif
