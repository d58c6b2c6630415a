/* Tests of the hfammatte element: GstHarness on small frames, a tiny generated model
 * ($HFAM_TEST_MODEL), and libhfam called directly for the expected mattes. */
#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hfam/hfam.h>
#ifdef HFAM_HAVE_GST_CUDA
#include <hfam/hfam-device.h>
#include <gst/cuda/gstcudabufferpool.h>
#include <gst/cuda/gstcudaloader.h>
#include <gst/cuda/gstcudamemory.h>
#include <gst/cuda/gstcudautils.h>
#endif

#define INFERENCE_SIZE 32
#define WIDTH 38
#define HEIGHT 22
#define FRAME_DURATION (GST_SECOND / 25)

static const GstVideoFormat sink_formats[] = {
  GST_VIDEO_FORMAT_RGBA, GST_VIDEO_FORMAT_BGRA, GST_VIDEO_FORMAT_RGBx,
  GST_VIDEO_FORMAT_BGRx, GST_VIDEO_FORMAT_RGB, GST_VIDEO_FORMAT_BGR,
  GST_VIDEO_FORMAT_ARGB, GST_VIDEO_FORMAT_ABGR, GST_VIDEO_FORMAT_xRGB,
  GST_VIDEO_FORMAT_xBGR, GST_VIDEO_FORMAT_I420, GST_VIDEO_FORMAT_YV12,
  GST_VIDEO_FORMAT_NV12, GST_VIDEO_FORMAT_NV21, GST_VIDEO_FORMAT_Y42B,
  GST_VIDEO_FORMAT_Y444, GST_VIDEO_FORMAT_YUY2, GST_VIDEO_FORMAT_UYVY,
};

static const gchar *
model_path (void)
{
  const gchar *path = g_getenv ("HFAM_TEST_MODEL");

  fail_unless (path != NULL, "HFAM_TEST_MODEL is not set");
  return path;
}

/* ---- Frames and what the element should make of them ---- */

static void
video_info (GstVideoInfo * info, GstVideoFormat format, gint width, gint height)
{
  gst_video_info_set_format (info, format, width, height);
  GST_VIDEO_INFO_FPS_N (info) = 25;
  GST_VIDEO_INFO_FPS_D (info) = 1;
}

static GstBuffer *
convert (const GstVideoInfo * from, GstBuffer * buffer, const GstVideoInfo * to)
{
  GstVideoConverter *converter = gst_video_converter_new (from, to, NULL);
  GstBuffer *result = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (to),
      NULL);
  GstVideoFrame in, out;

  fail_unless (converter != NULL);
  fail_unless (gst_video_frame_map (&in, from, buffer, GST_MAP_READ));
  fail_unless (gst_video_frame_map (&out, to, result, GST_MAP_WRITE));
  gst_video_converter_frame (converter, &in, &out);
  gst_video_frame_unmap (&out);
  gst_video_frame_unmap (&in);
  gst_video_converter_free (converter);
  return result;
}

/* A frame of noise in `info`'s format, as an upstream converter would give it;
 * every seed a different one. */
static GstBuffer *
make_frame (const GstVideoInfo * info, guint32 seed)
{
  GRand *rand = g_rand_new_with_seed (seed);
  GstVideoInfo rgba;
  GstBuffer *buffer, *result;
  GstMapInfo map;

  video_info (&rgba, GST_VIDEO_FORMAT_RGBA, GST_VIDEO_INFO_WIDTH (info),
      GST_VIDEO_INFO_HEIGHT (info));
  buffer = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (&rgba), NULL);
  gst_buffer_map (buffer, &map, GST_MAP_WRITE);
  for (gsize i = 0; i < map.size; i++)
    map.data[i] = i % 4 == 3 ? 255 : g_rand_int_range (rand, 0, 256);
  gst_buffer_unmap (buffer, &map);
  g_rand_free (rand);

  if (GST_VIDEO_INFO_FORMAT (info) == GST_VIDEO_FORMAT_RGBA
      && gst_video_colorimetry_is_equal (&info->colorimetry, &rgba.colorimetry))
    return buffer;
  result = convert (&rgba, buffer, info);
  gst_buffer_unref (buffer);
  return result;
}

typedef struct
{
  HfamModel *model;
  HfamContext *ctx;
} Engine;

static void
engine_open (Engine * engine)
{
  GError *error = NULL;

  engine->model = hfam_model_load (model_path (), &error);
  fail_unless (engine->model != NULL, "%s", error ? error->message : "");
  engine->ctx = hfam_context_new (engine->model, HFAM_BACKEND_CPU, -1, 1,
      &error);
  fail_unless (engine->ctx != NULL, "%s", error ? error->message : "");
}

static void
engine_close (Engine * engine)
{
  hfam_context_free (engine->ctx);
  hfam_model_free (engine->model);
}

/* A frame as the element should see it: its colour in an RGB layout (the
 * frame itself, or RGBA converted with its colorimetry) and libhfam's matte. */
typedef struct
{
  GstVideoInfo colour_info;
  GstBuffer *colour;
  float *matte;
} Expected;

static gboolean
hfam_layout (GstVideoFormat format, HfamPixelFormat * layout)
{
  switch (format) {
    case GST_VIDEO_FORMAT_RGB:
      *layout = HFAM_PIXEL_RGB8;
      return TRUE;
    case GST_VIDEO_FORMAT_BGR:
      *layout = HFAM_PIXEL_BGR8;
      return TRUE;
    case GST_VIDEO_FORMAT_RGBA:
    case GST_VIDEO_FORMAT_RGBx:
      *layout = HFAM_PIXEL_RGBA8;
      return TRUE;
    case GST_VIDEO_FORMAT_BGRA:
    case GST_VIDEO_FORMAT_BGRx:
      *layout = HFAM_PIXEL_BGRA8;
      return TRUE;
    default:
      return FALSE;
  }
}

static void
expect (Engine * engine, const GstVideoInfo * info, GstBuffer * buffer,
    Expected * expected)
{
  const gint width = GST_VIDEO_INFO_WIDTH (info);
  const gint height = GST_VIDEO_INFO_HEIGHT (info);
  HfamPixelFormat layout;
  GstVideoFrame frame;
  HfamImage image;
  GError *error = NULL;

  if (hfam_layout (GST_VIDEO_INFO_FORMAT (info), &layout)) {
    expected->colour_info = *info;
    expected->colour = gst_buffer_ref (buffer);
  } else {
    layout = HFAM_PIXEL_RGBA8;
    video_info (&expected->colour_info, GST_VIDEO_FORMAT_RGBA, width, height);
    expected->colour = convert (info, buffer, &expected->colour_info);
  }
  fail_unless (gst_video_frame_map (&frame, &expected->colour_info,
          expected->colour, GST_MAP_READ));
  image.data = GST_VIDEO_FRAME_PLANE_DATA (&frame, 0);
  image.width = width;
  image.height = height;
  image.stride = GST_VIDEO_FRAME_PLANE_STRIDE (&frame, 0);
  image.format = layout;
  expected->matte = g_new (float, (gsize) width * height);
  fail_unless (hfam_context_matte (engine->ctx, &image, INFERENCE_SIZE,
          expected->matte, width, NULL, &error), "%s",
      error ? error->message : "");
  gst_video_frame_unmap (&frame);
}

static void
expected_clear (Expected * expected)
{
  gst_clear_buffer (&expected->colour);
  g_clear_pointer (&expected->matte, g_free);
}

/* Rounding to the nearest level, as the issue asks of the outputs. */
static guint
level (float alpha, guint max)
{
  return (guint) floorf (CLAMP (alpha, 0.0f, 1.0f) * max + 0.5f);
}

static gboolean
mattes_differ (const float *a, const float *b, gsize n)
{
  for (gsize i = 0; i < n; i++) {
    if (level (a[i], 255) != level (b[i], 255))
      return TRUE;
  }
  return FALSE;
}

static void
output_info (GstHarness * h, GstVideoInfo * info)
{
  GstCaps *caps = gst_pad_get_current_caps (h->sinkpad);

  fail_unless (caps != NULL);
  fail_unless (gst_video_info_from_caps (info, caps));
  gst_caps_unref (caps);
}

static GstVideoFormat
output_format (GstHarness * h)
{
  GstVideoInfo info;

  output_info (h, &info);
  return GST_VIDEO_INFO_FORMAT (&info);
}

/* The src output: the expected colour (premultiplied or not) and matte as alpha. */
static void
check_fill (GstHarness * h, GstBuffer * buffer, const Expected * expected,
    const float *matte, gboolean premultiplied)
{
  GstVideoFrame out, colour;
  GstVideoInfo info;

  output_info (h, &info);
  fail_unless (GST_VIDEO_INFO_FORMAT (&info) == GST_VIDEO_FORMAT_RGBA
      || GST_VIDEO_INFO_FORMAT (&info) == GST_VIDEO_FORMAT_BGRA);
  fail_unless_equals_int (GST_VIDEO_INFO_WIDTH (&info),
      GST_VIDEO_INFO_WIDTH (&expected->colour_info));
  fail_unless_equals_int (GST_VIDEO_INFO_HEIGHT (&info),
      GST_VIDEO_INFO_HEIGHT (&expected->colour_info));
  fail_unless (gst_video_frame_map (&out, &info, buffer, GST_MAP_READ));
  fail_unless (gst_video_frame_map (&colour, &expected->colour_info,
          expected->colour, GST_MAP_READ));
  for (gint y = 0; y < GST_VIDEO_INFO_HEIGHT (&info); y++) {
    const guint8 *src = (const guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&colour, 0)
        + y * GST_VIDEO_FRAME_PLANE_STRIDE (&colour, 0);
    const guint8 *dst = (const guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&out, 0)
        + y * GST_VIDEO_FRAME_PLANE_STRIDE (&out, 0);

    for (gint x = 0; x < GST_VIDEO_INFO_WIDTH (&info); x++) {
      const guint alpha = level (matte[y * GST_VIDEO_INFO_WIDTH (&info) + x],
          255);
      const guint8 *s = src + x * GST_VIDEO_FRAME_COMP_PSTRIDE (&colour, 0);
      const guint8 *d = dst + 4 * x;

      fail_unless_equals_int (d[GST_VIDEO_FRAME_COMP_POFFSET (&out, 3)], alpha);
      for (gint c = 0; c < 3; c++) {
        const guint value = s[GST_VIDEO_FRAME_COMP_POFFSET (&colour, c)];
        const guint want = premultiplied
            ? (guint) floor (value * alpha / 255.0 + 0.5) : value;

        fail_unless_equals_int (d[GST_VIDEO_FRAME_COMP_POFFSET (&out, c)], want);
      }
    }
  }
  gst_video_frame_unmap (&colour);
  gst_video_frame_unmap (&out);
}

/* The alpha output: the matte alone, GRAY8 or GRAY16_LE; levels may differ by
 * `tolerance` (for blends the test computes in another order). */
static void
check_key (GstHarness * h, GstBuffer * buffer, const float *matte,
    guint tolerance)
{
  GstVideoFrame out;
  GstVideoInfo info;
  gboolean deep;

  output_info (h, &info);
  deep = GST_VIDEO_INFO_FORMAT (&info) == GST_VIDEO_FORMAT_GRAY16_LE;
  fail_unless (deep || GST_VIDEO_INFO_FORMAT (&info) == GST_VIDEO_FORMAT_GRAY8);
  fail_unless (gst_video_frame_map (&out, &info, buffer, GST_MAP_READ));
  for (gint y = 0; y < GST_VIDEO_INFO_HEIGHT (&info); y++) {
    const guint8 *row = (const guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&out, 0)
        + y * GST_VIDEO_FRAME_PLANE_STRIDE (&out, 0);

    for (gint x = 0; x < GST_VIDEO_INFO_WIDTH (&info); x++) {
      const float m = matte[y * GST_VIDEO_INFO_WIDTH (&info) + x];
      const gint got = deep ? GST_READ_UINT16_LE (row + 2 * x) : row[x];
      const gint want = level (m, deep ? 65535 : 255);

      fail_unless (ABS (got - want) <= (gint) tolerance,
          "(%d, %d): got %d, want %d", x, y, got, want);
    }
  }
  gst_video_frame_unmap (&out);
}

/* ---- The element under harnesses ---- */

static GstElement *
make_element (void)
{
  GstElement *element = gst_element_factory_make ("hfammatte", NULL);

  fail_unless (element != NULL, "hfammatte not found on GST_PLUGIN_PATH");
  g_object_set (element, "model", model_path (), "backend", 1,
      "inference-size", INFERENCE_SIZE, "n-threads", 1, NULL);
  return element;
}

/* The element with the chosen outputs linked to harnesses; `element` is set up
 * (properties, bus) before, since the harness starts it. */
typedef struct
{
  GstElement *element;
  GstHarness *fill;             /* on "src", or NULL */
  GstHarness *key;              /* on "alpha", or NULL */
  GstHarness *input;            /* the one that pushes */
} Rig;

static void
rig_start (Rig * rig, GstElement * element, gboolean link_fill,
    gboolean link_key)
{
  rig->element = element;
  rig->fill = rig->key = NULL;
  if (link_fill)
    rig->fill = gst_harness_new_with_element (element, "sink", "src");
  if (link_key)
    rig->key = gst_harness_new_with_element (element, link_fill ? NULL : "sink",
        "alpha");
  if (!link_fill && !link_key)
    rig->fill = gst_harness_new_with_element (element, "sink", NULL);
  rig->input = rig->fill ? rig->fill : rig->key;
}

static void
rig_stop (Rig * rig)
{
  if (rig->key)
    gst_harness_teardown (rig->key);
  if (rig->fill)
    gst_harness_teardown (rig->fill);
  gst_object_unref (rig->element);
}

static void
rig_set_format (Rig * rig, const GstVideoInfo * info)
{
  gst_harness_set_src_caps (rig->input, gst_video_info_to_caps (info));
}

static GstFlowReturn
rig_push (Rig * rig, GstBuffer * buffer, guint index)
{
  GST_BUFFER_PTS (buffer) = index * FRAME_DURATION;
  GST_BUFFER_DTS (buffer) = index * FRAME_DURATION;
  GST_BUFFER_DURATION (buffer) = FRAME_DURATION;
  return gst_harness_push (rig->input, buffer);
}

/* Pushes `buffer` and checks both outputs against libhfam for it. */
static void
push_and_check (Rig * rig, Engine * engine, const GstVideoInfo * info,
    GstBuffer * buffer, guint index, gboolean premultiplied)
{
  Expected expected = { 0 };
  GstBuffer *out;

  expect (engine, info, buffer, &expected);
  fail_unless_equals_int (rig_push (rig, buffer, index), GST_FLOW_OK);
  if (rig->fill) {
    out = gst_harness_pull (rig->fill);
    check_fill (rig->fill, out, &expected, expected.matte, premultiplied);
    gst_buffer_unref (out);
  }
  if (rig->key) {
    out = gst_harness_pull (rig->key);
    check_key (rig->key, out, expected.matte, 0);
    gst_buffer_unref (out);
  }
  expected_clear (&expected);
}

/* ---- Tests ---- */

GST_START_TEST (test_sink_format)
{
  const GstVideoFormat format = sink_formats[__i__];
  GstVideoInfo info;
  Engine engine;
  Rig rig;

  GST_INFO ("input %s", gst_video_format_to_string (format));
  engine_open (&engine);
  video_info (&info, format, WIDTH, HEIGHT);
  rig_start (&rig, make_element (), TRUE, TRUE);
  rig_set_format (&rig, &info);
  for (guint i = 0; i < 2; i++)
    push_and_check (&rig, &engine, &info, make_frame (&info, i + 1), i, FALSE);
  rig_stop (&rig);
  engine_close (&engine);
}

GST_END_TEST;

/* RGBA in, RGBA out: the bytes are the input's colour and libhfam's matte. */
GST_START_TEST (test_rgba_equals_libhfam)
{
  GstVideoInfo info;
  Expected expected = { 0 };
  GstBuffer *in, *out;
  GstMapInfo in_map, out_map;
  Engine engine;
  Rig rig;

  engine_open (&engine);
  video_info (&info, GST_VIDEO_FORMAT_RGBA, WIDTH, HEIGHT);
  rig_start (&rig, make_element (), TRUE, FALSE);
  gst_harness_set_sink_caps_str (rig.fill, "video/x-raw,format=RGBA");
  rig_set_format (&rig, &info);
  in = make_frame (&info, 7);
  expect (&engine, &info, in, &expected);
  fail_unless_equals_int (rig_push (&rig, gst_buffer_ref (in), 0), GST_FLOW_OK);
  out = gst_harness_pull (rig.fill);

  fail_unless (gst_buffer_map (in, &in_map, GST_MAP_READ));
  fail_unless (gst_buffer_map (out, &out_map, GST_MAP_READ));
  fail_unless_equals_int (out_map.size, in_map.size);
  for (gsize i = 0; i < in_map.size; i++) {
    const guint want = i % 4 == 3 ? level (expected.matte[i / 4], 255)
        : in_map.data[i];
    fail_unless_equals_int (out_map.data[i], want);
  }
  gst_buffer_unmap (out, &out_map);
  gst_buffer_unmap (in, &in_map);

  gst_buffer_unref (out);
  gst_buffer_unref (in);
  expected_clear (&expected);
  rig_stop (&rig);
  engine_close (&engine);
}

GST_END_TEST;

/* precision: "default" unless set; on the CPU every choice computes fp32, so the
 * matte is libhfam's whatever is asked. */
GST_START_TEST (test_precision)
{
  static const gchar *const nicks[] = { "fp32", "fp16", "default" };
  GstVideoInfo info;
  Engine engine;

  engine_open (&engine);
  video_info (&info, GST_VIDEO_FORMAT_RGBA, WIDTH, HEIGHT);
  for (guint k = 0; k < G_N_ELEMENTS (nicks); k++) {
    GstElement *element = make_element ();
    Expected expected = { 0 };
    GstBuffer *in, *out;
    GstMapInfo map;
    Rig rig;

    if (k == 0) {
      gint precision;
      g_object_get (element, "precision", &precision, NULL);
      fail_unless_equals_int (precision, HFAM_PRECISION_DEFAULT);
    }
    gst_util_set_object_arg (G_OBJECT (element), "precision", nicks[k]);
    rig_start (&rig, element, TRUE, FALSE);
    gst_harness_set_sink_caps_str (rig.fill, "video/x-raw,format=RGBA");
    rig_set_format (&rig, &info);
    in = make_frame (&info, 11);
    expect (&engine, &info, in, &expected);
    fail_unless_equals_int (rig_push (&rig, gst_buffer_ref (in), 0), GST_FLOW_OK);
    out = gst_harness_pull (rig.fill);
    fail_unless (gst_buffer_map (out, &map, GST_MAP_READ));
    for (gsize i = 3; i < map.size; i += 4)
      fail_unless_equals_int (map.data[i], level (expected.matte[i / 4], 255));
    gst_buffer_unmap (out, &map);
    gst_buffer_unref (out);
    gst_buffer_unref (in);
    expected_clear (&expected);
    rig_stop (&rig);
  }
  engine_close (&engine);
}

GST_END_TEST;

/* The CUDA device is cuda-device-id, as on GStreamer's CUDA elements: -1 (the
 * first) unless set; no device-id beside it. */
GST_START_TEST (test_cuda_device_id)
{
  GstElement *element = make_element ();
  gint device_id;

  g_object_get (element, "cuda-device-id", &device_id, NULL);
  fail_unless_equals_int (device_id, -1);
  g_object_set (element, "cuda-device-id", 1, NULL);
  g_object_get (element, "cuda-device-id", &device_id, NULL);
  fail_unless_equals_int (device_id, 1);
  fail_unless (g_object_class_find_property (G_OBJECT_GET_CLASS (element),
          "device-id") == NULL);
  gst_object_unref (element);
}

GST_END_TEST;

/* Downstream picks the outputs' formats: BGRA from RGB input, GRAY16_LE, and
 * later RGBA and GRAY8. */
GST_START_TEST (test_output_formats)
{
  GstVideoInfo info;
  Engine engine;
  Rig rig;

  engine_open (&engine);
  video_info (&info, GST_VIDEO_FORMAT_RGB, WIDTH, HEIGHT);
  rig_start (&rig, make_element (), TRUE, TRUE);
  gst_harness_set_sink_caps_str (rig.fill, "video/x-raw,format=BGRA");
  gst_harness_set_sink_caps_str (rig.key, "video/x-raw,format=GRAY16_LE");
  rig_set_format (&rig, &info);
  push_and_check (&rig, &engine, &info, make_frame (&info, 3), 0, FALSE);
  fail_unless_equals_int (output_format (rig.fill), GST_VIDEO_FORMAT_BGRA);
  fail_unless_equals_int (output_format (rig.key), GST_VIDEO_FORMAT_GRAY16_LE);

  /* Downstream changes its mind mid-stream (a reconfigure event). */
  gst_harness_set_sink_caps_str (rig.fill, "video/x-raw,format=RGBA");
  gst_harness_set_sink_caps_str (rig.key, "video/x-raw,format=GRAY8");
  push_and_check (&rig, &engine, &info, make_frame (&info, 4), 1, FALSE);
  fail_unless_equals_int (output_format (rig.fill), GST_VIDEO_FORMAT_RGBA);
  fail_unless_equals_int (output_format (rig.key), GST_VIDEO_FORMAT_GRAY8);
  rig_stop (&rig);
  engine_close (&engine);
}

GST_END_TEST;

/* Downstream that takes any memory (caps features ANY) gets system memory. */
GST_START_TEST (test_any_memory_downstream)
{
  GstVideoInfo info;
  GstCaps *caps;
  Engine engine;
  Rig rig;

  engine_open (&engine);
  video_info (&info, GST_VIDEO_FORMAT_RGBA, WIDTH, HEIGHT);
  rig_start (&rig, make_element (), TRUE, TRUE);
  gst_harness_set_sink_caps_str (rig.fill, "video/x-raw(ANY)");
  gst_harness_set_sink_caps_str (rig.key, "video/x-raw(ANY),format=GRAY8");
  caps = gst_pad_peer_query_caps (rig.input->srcpad, NULL);
  fail_if (gst_caps_is_empty (caps), "no input caps for ANY memory downstream");
  gst_caps_unref (caps);
  rig_set_format (&rig, &info);
  push_and_check (&rig, &engine, &info, make_frame (&info, 9), 0, FALSE);
  fail_unless_equals_int (output_format (rig.fill), GST_VIDEO_FORMAT_RGBA);
  rig_stop (&rig);
  engine_close (&engine);
}

GST_END_TEST;

GST_START_TEST (test_premultiplied)
{
  GstElement *element = make_element ();
  GstVideoInfo info;
  Engine engine;
  Rig rig;

  engine_open (&engine);
  g_object_set (element, "premultiplied", TRUE, NULL);
  video_info (&info, GST_VIDEO_FORMAT_I420, WIDTH, HEIGHT);
  rig_start (&rig, element, TRUE, TRUE);
  rig_set_format (&rig, &info);
  push_and_check (&rig, &engine, &info, make_frame (&info, 4), 0, TRUE);
  rig_stop (&rig);
  engine_close (&engine);
}

GST_END_TEST;

/* Odd sizes, and a size that is not the inference size's aspect. */
GST_START_TEST (test_odd_sizes)
{
  const GstVideoFormat formats[] = { GST_VIDEO_FORMAT_RGB,
    GST_VIDEO_FORMAT_I420, GST_VIDEO_FORMAT_NV12
  };
  Engine engine;

  engine_open (&engine);
  for (guint i = 0; i < G_N_ELEMENTS (formats); i++) {
    GstVideoInfo info;
    Rig rig;

    video_info (&info, formats[i], 37, 9);
    rig_start (&rig, make_element (), TRUE, TRUE);
    rig_set_format (&rig, &info);
    push_and_check (&rig, &engine, &info, make_frame (&info, i), 0, FALSE);
    rig_stop (&rig);
  }
  engine_close (&engine);
}

GST_END_TEST;

/* Colorimetry decides the RGB the network sees: the same bytes read as BT.601
 * and as BT.709 give different colour, each as GstVideoConverter makes it. */
GST_START_TEST (test_colorimetry)
{
  const gchar *colorimetries[] = { "bt601", "bt709" };
  GstVideoInfo info;
  GstBuffer *frame;
  GstBuffer *fills[2];
  Engine engine;

  engine_open (&engine);
  video_info (&info, GST_VIDEO_FORMAT_I420, WIDTH, HEIGHT);
  frame = make_frame (&info, 9);
  for (guint i = 0; i < G_N_ELEMENTS (colorimetries); i++) {
    Rig rig;

    fail_unless (gst_video_colorimetry_from_string (&info.colorimetry,
            colorimetries[i]));
    rig_start (&rig, make_element (), TRUE, FALSE);
    rig_set_format (&rig, &info);
    push_and_check (&rig, &engine, &info, gst_buffer_ref (frame), 0, FALSE);
    fail_unless_equals_int (rig_push (&rig, gst_buffer_ref (frame), 1),
        GST_FLOW_OK);
    fills[i] = gst_harness_pull (rig.fill);
    rig_stop (&rig);
  }
  {
    GstMapInfo a, b;

    gst_buffer_map (fills[0], &a, GST_MAP_READ);
    gst_buffer_map (fills[1], &b, GST_MAP_READ);
    fail_unless (a.size == b.size && memcmp (a.data, b.data, a.size) != 0);
    gst_buffer_unmap (fills[1], &b);
    gst_buffer_unmap (fills[0], &a);
  }
  gst_buffer_unref (fills[0]);
  gst_buffer_unref (fills[1]);
  gst_buffer_unref (frame);
  engine_close (&engine);
}

GST_END_TEST;

/* Timestamps, duration and flags reach both outputs unchanged. */
GST_START_TEST (test_timestamps_and_flags)
{
  const GstBufferFlags flags = GST_BUFFER_FLAG_MARKER | GST_BUFFER_FLAG_DELTA_UNIT;
  GstVideoInfo info;
  Rig rig;

  video_info (&info, GST_VIDEO_FORMAT_NV12, WIDTH, HEIGHT);
  rig_start (&rig, make_element (), TRUE, TRUE);
  rig_set_format (&rig, &info);
  for (guint i = 0; i < 3; i++) {
    GstBuffer *in = make_frame (&info, i), *fill, *key;

    GST_BUFFER_FLAG_SET (in, flags);
    GST_BUFFER_PTS (in) = 1000 + i * FRAME_DURATION;
    GST_BUFFER_DTS (in) = 500 + i * FRAME_DURATION;
    GST_BUFFER_DURATION (in) = FRAME_DURATION - i;
    fail_unless_equals_int (gst_harness_push (rig.input, in), GST_FLOW_OK);
    fill = gst_harness_pull (rig.fill);
    key = gst_harness_pull (rig.key);
    for (guint j = 0; j < 2; j++) {
      GstBuffer *out = j == 0 ? fill : key;

      fail_unless_equals_uint64 (GST_BUFFER_PTS (out), 1000 + i * FRAME_DURATION);
      fail_unless_equals_uint64 (GST_BUFFER_DTS (out), 500 + i * FRAME_DURATION);
      fail_unless_equals_uint64 (GST_BUFFER_DURATION (out), FRAME_DURATION - i);
      fail_unless ((GST_BUFFER_FLAGS (out) & flags) == flags);
    }
    fail_unless_equals_uint64 (GST_BUFFER_PTS (key), GST_BUFFER_PTS (fill));
    gst_buffer_unref (fill);
    gst_buffer_unref (key);
  }
  rig_stop (&rig);
}

GST_END_TEST;

/* Sticky events on both pads: stream-start (the alpha stream named after the
 * input's), caps, segment; then GAP and EOS. */
GST_START_TEST (test_events_reach_both_pads)
{
  GstVideoInfo info;
  GstSegment segment;
  Rig rig;

  video_info (&info, GST_VIDEO_FORMAT_RGBA, WIDTH, HEIGHT);
  rig_start (&rig, make_element (), TRUE, TRUE);
  rig_set_format (&rig, &info);
  gst_segment_init (&segment, GST_FORMAT_TIME);
  segment.base = 5 * GST_SECOND;
  fail_unless (gst_harness_push_event (rig.input,
          gst_event_new_segment (&segment)));
  fail_unless_equals_int (rig_push (&rig, make_frame (&info, 1), 0),
      GST_FLOW_OK);
  fail_unless (gst_harness_push_event (rig.input,
          gst_event_new_gap (FRAME_DURATION, FRAME_DURATION)));
  fail_unless (gst_harness_push_event (rig.input, gst_event_new_eos ()));

  for (guint i = 0; i < 2; i++) {
    GstHarness *h = i == 0 ? rig.fill : rig.key;
    gboolean seen_gap = FALSE, seen_eos = FALSE, seen_caps = FALSE;
    const gchar *stream_id = NULL;
    GstEvent *event;

    while ((event = gst_harness_try_pull_event (h))) {
      switch (GST_EVENT_TYPE (event)) {
        case GST_EVENT_STREAM_START:
          gst_event_parse_stream_start (event, &stream_id);
          fail_unless_equals_int (g_str_has_suffix (stream_id, "/alpha"),
              h == rig.key);
          break;
        case GST_EVENT_CAPS:
          seen_caps = TRUE;
          break;
        case GST_EVENT_GAP:
          seen_gap = TRUE;
          break;
        case GST_EVENT_EOS:
          seen_eos = TRUE;
          break;
        default:
          break;
      }
      gst_event_unref (event);
    }
    fail_unless (stream_id != NULL && seen_caps && seen_gap && seen_eos);
    event = gst_pad_get_sticky_event (h->sinkpad, GST_EVENT_SEGMENT, 0);
    fail_unless (event != NULL);
    {
      const GstSegment *got;

      gst_event_parse_segment (event, &got);
      fail_unless_equals_uint64 (got->base, 5 * GST_SECOND);
    }
    gst_event_unref (event);
    gst_buffer_unref (gst_harness_pull (h));
  }
  rig_stop (&rig);
}

GST_END_TEST;

GST_START_TEST (test_only_src_linked)
{
  GstVideoInfo info;
  Engine engine;
  Rig rig;

  engine_open (&engine);
  video_info (&info, GST_VIDEO_FORMAT_I420, WIDTH, HEIGHT);
  rig_start (&rig, make_element (), TRUE, FALSE);
  rig_set_format (&rig, &info);
  for (guint i = 0; i < 3; i++)
    push_and_check (&rig, &engine, &info, make_frame (&info, i), i, FALSE);
  rig_stop (&rig);
  engine_close (&engine);
}

GST_END_TEST;

GST_START_TEST (test_only_alpha_linked)
{
  GstVideoInfo info;
  Engine engine;
  Rig rig;

  engine_open (&engine);
  video_info (&info, GST_VIDEO_FORMAT_BGRx, WIDTH, HEIGHT);
  rig_start (&rig, make_element (), FALSE, TRUE);
  rig_set_format (&rig, &info);
  for (guint i = 0; i < 3; i++)
    push_and_check (&rig, &engine, &info, make_frame (&info, i), i, FALSE);
  rig_stop (&rig);
  engine_close (&engine);
}

GST_END_TEST;

/* Nothing linked: not-linked, as any element with no downstream. */
GST_START_TEST (test_nothing_linked)
{
  GstVideoInfo info;
  Rig rig;

  video_info (&info, GST_VIDEO_FORMAT_RGB, WIDTH, HEIGHT);
  rig_start (&rig, make_element (), FALSE, FALSE);
  rig_set_format (&rig, &info);
  fail_unless_equals_int (rig_push (&rig, make_frame (&info, 1), 0),
      GST_FLOW_NOT_LINKED);
  rig_stop (&rig);
}

GST_END_TEST;

/* The alpha pad linked mid-stream gets caps and frames from then on. */
GST_START_TEST (test_link_alpha_later)
{
  GstVideoInfo info;
  Engine engine;
  Rig rig;

  engine_open (&engine);
  video_info (&info, GST_VIDEO_FORMAT_RGBA, WIDTH, HEIGHT);
  rig_start (&rig, make_element (), TRUE, FALSE);
  rig_set_format (&rig, &info);
  push_and_check (&rig, &engine, &info, make_frame (&info, 1), 0, FALSE);
  rig.key = gst_harness_new_with_element (rig.element, NULL, "alpha");
  push_and_check (&rig, &engine, &info, make_frame (&info, 2), 1, FALSE);
  rig_stop (&rig);
  engine_close (&engine);
}

GST_END_TEST;

/* Size and format change mid-stream; each output follows. */
GST_START_TEST (test_renegotiation)
{
  const struct
  {
    GstVideoFormat format;
    gint width, height;
  } steps[] = {
    {GST_VIDEO_FORMAT_RGBA, 48, 32},
    {GST_VIDEO_FORMAT_I420, 64, 40},
    {GST_VIDEO_FORMAT_BGR, 20, 30},
    {GST_VIDEO_FORMAT_RGBA, 48, 32},
  };
  GstElement *element = make_element ();
  Engine engine;
  Rig rig;

  engine_open (&engine);
  /* Smoothing must not blend across a caps change. */
  g_object_set (element, "temporal-smoothing", 0.5, NULL);
  rig_start (&rig, element, TRUE, TRUE);
  for (guint i = 0; i < G_N_ELEMENTS (steps); i++) {
    GstVideoInfo info, out_info;

    video_info (&info, steps[i].format, steps[i].width, steps[i].height);
    rig_set_format (&rig, &info);
    push_and_check (&rig, &engine, &info, make_frame (&info, i), i, FALSE);
    output_info (rig.fill, &out_info);
    fail_unless_equals_int (GST_VIDEO_INFO_WIDTH (&out_info), steps[i].width);
    fail_unless_equals_int (GST_VIDEO_INFO_HEIGHT (&out_info), steps[i].height);
    output_info (rig.key, &out_info);
    fail_unless_equals_int (GST_VIDEO_INFO_WIDTH (&out_info), steps[i].width);
    fail_unless_equals_int (GST_VIDEO_INFO_HEIGHT (&out_info), steps[i].height);
  }
  rig_stop (&rig);
  engine_close (&engine);
}

GST_END_TEST;

/* inference-interval=3: frames 0-2 show frame 0's matte, frame 3 its own. */
GST_START_TEST (test_inference_interval)
{
  GstElement *element = make_element ();
  GstBuffer *frames[4];
  Expected expected[4];
  GstVideoInfo info;
  Engine engine;
  Rig rig;

  memset (expected, 0, sizeof expected);
  engine_open (&engine);
  g_object_set (element, "inference-interval", 3, NULL);
  video_info (&info, GST_VIDEO_FORMAT_RGB, WIDTH, HEIGHT);
  for (guint i = 0; i < 4; i++) {
    frames[i] = make_frame (&info, 100 + i);
    expect (&engine, &info, frames[i], &expected[i]);
  }
  fail_unless (mattes_differ (expected[0].matte, expected[1].matte,
          WIDTH * HEIGHT), "the test frames give the same matte");
  fail_unless (mattes_differ (expected[0].matte, expected[3].matte,
          WIDTH * HEIGHT), "the test frames give the same matte");

  rig_start (&rig, element, TRUE, TRUE);
  rig_set_format (&rig, &info);
  for (guint i = 0; i < 4; i++) {
    const float *matte = expected[i == 3 ? 3 : 0].matte;
    GstBuffer *out;

    fail_unless_equals_int (rig_push (&rig, frames[i], i), GST_FLOW_OK);
    out = gst_harness_pull (rig.fill);
    /* The colour is always the current frame's. */
    check_fill (rig.fill, out, &expected[i], matte, FALSE);
    gst_buffer_unref (out);
    out = gst_harness_pull (rig.key);
    check_key (rig.key, out, matte, 0);
    gst_buffer_unref (out);
  }
  for (guint i = 0; i < 4; i++)
    expected_clear (&expected[i]);
  rig_stop (&rig);
  engine_close (&engine);
}

GST_END_TEST;

/* temporal-smoothing=s: matte_n = (1 - s) * new_n + s * matte_(n-1). */
GST_START_TEST (test_temporal_smoothing)
{
  const float s = 0.25f;
  GstElement *element = make_element ();
  GstVideoInfo info;
  float *blend;
  Engine engine;
  Rig rig;

  engine_open (&engine);
  g_object_set (element, "temporal-smoothing", (gdouble) s, NULL);
  video_info (&info, GST_VIDEO_FORMAT_RGBA, WIDTH, HEIGHT);
  blend = g_new (float, WIDTH * HEIGHT);
  rig_start (&rig, element, FALSE, TRUE);
  rig_set_format (&rig, &info);
  for (guint i = 0; i < 4; i++) {
    GstBuffer *frame = make_frame (&info, 200 + i), *out;
    Expected expected = { 0 };

    expect (&engine, &info, frame, &expected);
    for (gint p = 0; p < WIDTH * HEIGHT; p++)
      blend[p] = i == 0 ? expected.matte[p]
          : (1.0f - s) * expected.matte[p] + s * blend[p];
    if (i > 0)
      fail_unless (mattes_differ (blend, expected.matte, WIDTH * HEIGHT),
          "smoothing changed nothing");
    fail_unless_equals_int (rig_push (&rig, frame, i), GST_FLOW_OK);
    out = gst_harness_pull (rig.key);
    check_key (rig.key, out, blend, 1);
    gst_buffer_unref (out);
    expected_clear (&expected);
  }
  g_free (blend);
  rig_stop (&rig);
  engine_close (&engine);
}

GST_END_TEST;

/* A flush, a new segment or a discontinuity starts the smoothing afresh: the
 * frame after one is libhfam's matte of that frame alone. */
GST_START_TEST (test_reset_on_flush_segment_discont)
{
  GstElement *element = make_element ();
  GstVideoInfo info;
  GstSegment segment;
  Expected first = { 0 }, second = { 0 };
  GstBuffer *frames[2];
  Engine engine;
  Rig rig;

  engine_open (&engine);
  g_object_set (element, "temporal-smoothing", 0.5, NULL);
  video_info (&info, GST_VIDEO_FORMAT_RGBA, WIDTH, HEIGHT);
  gst_segment_init (&segment, GST_FORMAT_TIME);
  for (guint i = 0; i < 2; i++)
    frames[i] = make_frame (&info, 300 + i);
  expect (&engine, &info, frames[0], &first);
  expect (&engine, &info, frames[1], &second);
  fail_unless (mattes_differ (first.matte, second.matte, WIDTH * HEIGHT),
      "the test frames give the same matte");

  rig_start (&rig, element, FALSE, TRUE);
  rig_set_format (&rig, &info);
  for (guint reset = 0; reset < 3; reset++) {
    GstBuffer *frame = gst_buffer_copy (frames[1]);

    fail_unless_equals_int (rig_push (&rig, gst_buffer_ref (frames[0]), 0),
        GST_FLOW_OK);
    gst_buffer_unref (gst_harness_pull (rig.key));
    switch (reset) {
      case 0:
        fail_unless (gst_harness_push_event (rig.input,
                gst_event_new_flush_start ()));
        fail_unless (gst_harness_push_event (rig.input,
                gst_event_new_flush_stop (TRUE)));
        fail_unless (gst_harness_push_event (rig.input,
                gst_event_new_segment (&segment)));
        break;
      case 1:
        fail_unless (gst_harness_push_event (rig.input,
                gst_event_new_segment (&segment)));
        break;
      default:
        GST_BUFFER_FLAG_SET (frame, GST_BUFFER_FLAG_DISCONT);
        break;
    }
    push_and_check (&rig, &engine, &info, frame, 1, FALSE);
  }
  for (guint i = 0; i < 2; i++)
    gst_buffer_unref (frames[i]);
  expected_clear (&first);
  expected_clear (&second);
  rig_stop (&rig);
  engine_close (&engine);
}

GST_END_TEST;

/* Frames that would end before the earliest time downstream asked for are
 * dropped with a QOS message; with qos=false they are not. */
GST_START_TEST (test_qos)
{
  GstElement *element = make_element ();
  GstBus *bus = gst_bus_new ();
  GstVideoInfo info;
  GstMessage *message;
  GstBuffer *out;
  Rig rig;

  gst_element_set_bus (element, bus);
  video_info (&info, GST_VIDEO_FORMAT_RGB, WIDTH, HEIGHT);
  rig_start (&rig, element, TRUE, FALSE);
  rig_set_format (&rig, &info);
  /* Downstream is at 1 s. */
  fail_unless (gst_harness_push_upstream_event (rig.fill,
          gst_event_new_qos (GST_QOS_TYPE_UNDERFLOW, 0.5, 0, GST_SECOND)));

  fail_unless_equals_int (rig_push (&rig, make_frame (&info, 1), 0),
      GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_buffers_in_queue (rig.fill), 0);
  message = gst_bus_pop_filtered (bus, GST_MESSAGE_QOS);
  fail_unless (message != NULL);
  {
    guint64 processed, dropped;
    GstFormat format;

    gst_message_parse_qos_stats (message, &format, &processed, &dropped);
    fail_unless_equals_int (format, GST_FORMAT_BUFFERS);
    fail_unless_equals_uint64 (dropped, 1);
  }
  gst_message_unref (message);

  /* It ends at 1 s: still late. The next one is in time and marks the gap. */
  fail_unless_equals_int (rig_push (&rig, make_frame (&info, 2), 24),
      GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_buffers_in_queue (rig.fill), 0);
  fail_unless_equals_int (rig_push (&rig, make_frame (&info, 3), 25),
      GST_FLOW_OK);
  out = gst_harness_pull (rig.fill);
  fail_unless (GST_BUFFER_FLAG_IS_SET (out, GST_BUFFER_FLAG_DISCONT));
  gst_buffer_unref (out);

  g_object_set (element, "qos", FALSE, NULL);
  fail_unless_equals_int (rig_push (&rig, make_frame (&info, 4), 0),
      GST_FLOW_OK);
  gst_buffer_unref (gst_harness_pull (rig.fill));

  rig_stop (&rig);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
}

GST_END_TEST;

/* Latency: upstream's plus the element's own, which grows from 0 to cover the
 * network once it has run. */
GST_START_TEST (test_latency)
{
  GstElement *element = make_element ();
  GstBus *bus = gst_bus_new ();
  GstVideoInfo info;
  GstMessage *message;
  GstClockTime latency;
  Rig rig;

  gst_element_set_bus (element, bus);
  video_info (&info, GST_VIDEO_FORMAT_RGB, WIDTH, HEIGHT);
  rig_start (&rig, element, TRUE, TRUE);
  gst_harness_set_upstream_latency (rig.fill, 10 * GST_MSECOND);
  rig_set_format (&rig, &info);
  fail_unless_equals_uint64 (gst_harness_query_latency (rig.fill),
      10 * GST_MSECOND);
  for (guint i = 0; i < 3; i++) {
    fail_unless_equals_int (rig_push (&rig, make_frame (&info, i), i),
        GST_FLOW_OK);
    gst_buffer_unref (gst_harness_pull (rig.fill));
    gst_buffer_unref (gst_harness_pull (rig.key));
  }
  latency = gst_harness_query_latency (rig.fill);
  fail_unless (latency > 10 * GST_MSECOND);
  fail_unless_equals_uint64 (gst_harness_query_latency (rig.key), latency);
  message = gst_bus_pop_filtered (bus, GST_MESSAGE_LATENCY);
  fail_unless (message != NULL);
  gst_message_unref (message);

  rig_stop (&rig);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
}

GST_END_TEST;

/* The pixels of an output buffer, rows without their padding. */
static GBytes *
packed_pixels (GstHarness * h, GstBuffer * buffer)
{
  GByteArray *bytes = g_byte_array_new ();
  GstVideoFrame frame;
  GstVideoInfo info;

  output_info (h, &info);
  fail_unless (gst_video_frame_map (&frame, &info, buffer, GST_MAP_READ));
  for (gint y = 0; y < GST_VIDEO_INFO_HEIGHT (&info); y++)
    g_byte_array_append (bytes, (const guint8 *)
        GST_VIDEO_FRAME_PLANE_DATA (&frame, 0)
        + y * GST_VIDEO_FRAME_PLANE_STRIDE (&frame, 0),
        GST_VIDEO_INFO_WIDTH (&info) * GST_VIDEO_FRAME_COMP_PSTRIDE (&frame, 0));
  gst_video_frame_unmap (&frame);
  gst_buffer_unref (buffer);
  return g_byte_array_free_to_bytes (bytes);
}

/* The fill and key pixels of `n` frames (I420, so that colour conversion is
 * involved) through an element of this pipeline depth, with an inference
 * interval, smoothing, and a discontinuity at frame 2. The outputs come out
 * after EOS at the latest, in order. */
static void
run_sequence (guint depth, guint n, GBytes ** fills, GBytes ** keys)
{
  GstElement *element = make_element ();
  GstVideoInfo info;
  Rig rig;

  g_object_set (element, "pipeline-depth", depth, "inference-interval", 2,
      "temporal-smoothing", 0.3, NULL);
  video_info (&info, GST_VIDEO_FORMAT_I420, WIDTH, HEIGHT);
  rig_start (&rig, element, TRUE, TRUE);
  rig_set_format (&rig, &info);
  for (guint i = 0; i < n; i++) {
    GstBuffer *frame = make_frame (&info, 500 + i);

    if (i == 2)
      GST_BUFFER_FLAG_SET (frame, GST_BUFFER_FLAG_DISCONT);
    fail_unless_equals_int (rig_push (&rig, frame, i), GST_FLOW_OK);
  }
  fail_unless (gst_harness_push_event (rig.input, gst_event_new_eos ()));
  for (guint i = 0; i < n; i++) {
    GstBuffer *fill = gst_harness_pull (rig.fill);
    GstBuffer *key = gst_harness_pull (rig.key);

    fail_unless_equals_uint64 (GST_BUFFER_PTS (fill), i * FRAME_DURATION);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (key), i * FRAME_DURATION);
    fills[i] = packed_pixels (rig.fill, fill);
    keys[i] = packed_pixels (rig.key, key);
  }
  fail_unless_equals_int (gst_harness_buffers_in_queue (rig.key), 0);
  rig_stop (&rig);
}

/* pipeline-depth=2 changes when frames come out, never what they hold: with
 * an inference interval, smoothing, a discontinuity and converted colour, the
 * outputs are byte for byte those of depth 1. */
GST_START_TEST (test_pipeline_depth_same_output)
{
  GBytes *fills[2][6], *keys[2][6];
  GstElement *element = make_element ();
  guint depth;

  g_object_get (element, "pipeline-depth", &depth, NULL);
  fail_unless_equals_int (depth, 1);
  gst_object_unref (element);
  run_sequence (1, 6, fills[0], keys[0]);
  run_sequence (2, 6, fills[1], keys[1]);
  /* the network's runs show: frames 0, 2 and 4 have mattes of their own */
  fail_if (g_bytes_equal (keys[0][0], keys[0][2]));
  fail_if (g_bytes_equal (keys[0][2], keys[0][4]));
  for (guint i = 0; i < 6; i++) {
    fail_unless (g_bytes_equal (fills[0][i], fills[1][i]), "fill %u", i);
    fail_unless (g_bytes_equal (keys[0][i], keys[1][i]), "key %u", i);
    for (guint d = 0; d < 2; d++) {
      g_bytes_unref (fills[d][i]);
      g_bytes_unref (keys[d][i]);
    }
  }
}

GST_END_TEST;

/* Depth 2 holds one frame: it comes out when the next arrives, before a caps
 * change (at its own size) and before EOS; a flush drops it. The latency
 * includes a frame duration from the start. */
GST_START_TEST (test_pipeline_depth_held_frame)
{
  GstElement *element = make_element ();
  GstVideoInfo info, small, out_info;
  GstSegment segment;
  GstBuffer *out;
  Rig rig;

  g_object_set (element, "pipeline-depth", 2, NULL);
  video_info (&info, GST_VIDEO_FORMAT_RGB, WIDTH, HEIGHT);
  video_info (&small, GST_VIDEO_FORMAT_RGB, 30, 20);
  rig_start (&rig, element, TRUE, FALSE);
  gst_harness_set_upstream_latency (rig.fill, 10 * GST_MSECOND);
  rig_set_format (&rig, &info);
  fail_unless_equals_uint64 (gst_harness_query_latency (rig.fill),
      10 * GST_MSECOND + FRAME_DURATION);

  /* held until the next frame */
  fail_unless_equals_int (rig_push (&rig, make_frame (&info, 1), 0),
      GST_FLOW_OK);
  fail_unless_equals_int (gst_harness_buffers_in_queue (rig.fill), 0);
  fail_unless_equals_int (rig_push (&rig, make_frame (&info, 2), 1),
      GST_FLOW_OK);
  out = gst_harness_pull (rig.fill);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (out), 0);
  gst_buffer_unref (out);

  /* frame 1 goes out at its own size before the new caps pass */
  rig_set_format (&rig, &small);
  out = gst_harness_pull (rig.fill);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (out), FRAME_DURATION);
  fail_unless_equals_int (gst_buffer_get_size (out), WIDTH * HEIGHT * 4);
  gst_buffer_unref (out);
  output_info (rig.fill, &out_info);
  fail_unless_equals_int (GST_VIDEO_INFO_WIDTH (&out_info), 30);

  /* a flush drops the held frame; the stream goes on after it */
  fail_unless_equals_int (rig_push (&rig, make_frame (&small, 3), 2),
      GST_FLOW_OK);
  fail_unless (gst_harness_push_event (rig.input,
          gst_event_new_flush_start ()));
  fail_unless (gst_harness_push_event (rig.input,
          gst_event_new_flush_stop (TRUE)));
  gst_segment_init (&segment, GST_FORMAT_TIME);
  fail_unless (gst_harness_push_event (rig.input,
          gst_event_new_segment (&segment)));
  fail_unless_equals_int (rig_push (&rig, make_frame (&small, 4), 3),
      GST_FLOW_OK);
  fail_unless (gst_harness_push_event (rig.input, gst_event_new_eos ()));
  out = gst_harness_pull (rig.fill);
  fail_unless_equals_uint64 (GST_BUFFER_PTS (out), 3 * FRAME_DURATION);
  gst_buffer_unref (out);
  fail_unless_equals_int (gst_harness_buffers_in_queue (rig.fill), 0);

  /* and PAUSED->READY with a frame held frees it (the harness checks leaks) */
  fail_unless (gst_harness_push_event (rig.input,
          gst_event_new_flush_start ()));
  fail_unless (gst_harness_push_event (rig.input,
          gst_event_new_flush_stop (TRUE)));
  fail_unless (gst_harness_push_event (rig.input,
          gst_event_new_segment (&segment)));
  fail_unless_equals_int (rig_push (&rig, make_frame (&small, 5), 4),
      GST_FLOW_OK);
  rig_stop (&rig);
}

GST_END_TEST;


/* READY->PAUSED fails with an error that contains `needle`. */
static void
check_start_fails (GstElement * element, const gchar * needle)
{
  GstBus *bus = gst_bus_new ();
  GstMessage *message;
  GError *error = NULL;
  gchar *debug = NULL;

  gst_element_set_bus (element, bus);
  fail_unless_equals_int (gst_element_set_state (element, GST_STATE_PAUSED),
      GST_STATE_CHANGE_FAILURE);
  message = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (message != NULL);
  gst_message_parse_error (message, &error, &debug);
  GST_INFO ("error: %s (%s)", error->message, debug);
  fail_unless (strstr (error->message, needle) != NULL,
      "'%s' does not name '%s'", error->message, needle);
  g_error_free (error);
  g_free (debug);
  gst_message_unref (message);

  fail_unless_equals_int (gst_element_set_state (element, GST_STATE_NULL),
      GST_STATE_CHANGE_SUCCESS);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
  gst_object_unref (element);
}

static gchar *
write_temp_model (const gchar * contents, gsize length)
{
  GError *error = NULL;
  gchar *path;
  gint fd = g_file_open_tmp ("hfammatte-XXXXXX.safetensors", &path, &error);

  fail_unless (fd >= 0, "%s", error ? error->message : "");
  g_close (fd, NULL);
  fail_unless (g_file_set_contents (path, contents, length, &error), "%s",
      error ? error->message : "");
  return path;
}

GST_START_TEST (test_missing_model)
{
  const gchar *path = "/nonexistent/hfammatte/missing.safetensors";
  GstElement *element = make_element ();

  g_object_set (element, "model", path, NULL);
  check_start_fails (element, path);
}

GST_END_TEST;

GST_START_TEST (test_corrupt_model)
{
  const gchar garbage[] = "\xff\xff\xff\xff\xff\xff\xff\x7fnot a weight file";
  gchar *contents, *paths[2];
  gsize length;

  /* Nonsense, and the tiny model cut in half. */
  fail_unless (g_file_get_contents (model_path (), &contents, &length, NULL));
  paths[0] = write_temp_model (garbage, sizeof garbage - 1);
  paths[1] = write_temp_model (contents, length / 2);
  g_free (contents);
  for (guint i = 0; i < G_N_ELEMENTS (paths); i++) {
    GstElement *element = make_element ();

    g_object_set (element, "model", paths[i], NULL);
    check_start_fails (element, paths[i]);
    g_unlink (paths[i]);
    g_free (paths[i]);
  }
}

GST_END_TEST;

GST_START_TEST (test_default_model)
{
  GstElement *element = gst_element_factory_make ("hfammatte", NULL);
  gchar *path, *missing;

  /* unset means the default model; $HFAMMATTE_DEFAULT_MODEL stands in for the installed one */
  g_object_get (element, "model", &path, NULL);
  fail_unless (path == NULL);
  missing = g_build_filename (g_get_tmp_dir (), "hfam-no-such-default.safetensors", NULL);
  g_setenv ("HFAMMATTE_DEFAULT_MODEL", missing, TRUE);
  check_start_fails (gst_object_ref (element), missing);

  g_setenv ("HFAMMATTE_DEFAULT_MODEL", g_getenv ("HFAM_TEST_MODEL"), TRUE);
  fail_unless_equals_int (gst_element_set_state (element, GST_STATE_PAUSED),
      GST_STATE_CHANGE_SUCCESS);
  fail_unless_equals_int (gst_element_set_state (element, GST_STATE_NULL),
      GST_STATE_CHANGE_SUCCESS);
  g_unsetenv ("HFAMMATTE_DEFAULT_MODEL");
  gst_object_unref (element);
  g_free (missing);
}

GST_END_TEST;

/* Whether libhfam opens a CUDA device here: the backend tests below are about a machine
 * without one (cuda fails, auto warns and runs on the CPU). */
static gboolean
cuda_device_opens (void)
{
  HfamModel *model = hfam_model_load (g_getenv ("HFAM_TEST_MODEL"), NULL);
  HfamContext *ctx = model ? hfam_context_new (model, HFAM_BACKEND_CUDA, -1, 1, NULL) : NULL;
  gboolean opens = ctx != NULL;

  hfam_context_free (ctx);
  hfam_model_free (model);
  return opens;
}

GST_START_TEST (test_backend_cuda_fails)
{
  GstElement *element = make_element ();

  gst_util_set_object_arg (G_OBJECT (element), "backend", "cuda");
  check_start_fails (element, "cuda");
}

GST_END_TEST;

GST_START_TEST (test_backend_auto_falls_back)
{
  GstElement *element = make_element ();
  GstBus *bus = gst_bus_new ();
  GstVideoInfo info;
  GstMessage *message;
  Engine engine;
  Rig rig;

  engine_open (&engine);
  gst_util_set_object_arg (G_OBJECT (element), "backend", "auto");
  gst_element_set_bus (element, bus);
  video_info (&info, GST_VIDEO_FORMAT_RGBA, WIDTH, HEIGHT);
  rig_start (&rig, element, TRUE, TRUE);
  message = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING);
  fail_unless (message != NULL);
  gst_message_unref (message);
  rig_set_format (&rig, &info);
  push_and_check (&rig, &engine, &info, make_frame (&info, 1), 0, FALSE);
  rig_stop (&rig);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
  engine_close (&engine);
}

GST_END_TEST;

/* The element can go through its states again, with another model. */
GST_START_TEST (test_restart)
{
  GstElement *element = make_element ();
  GstVideoInfo info;
  Engine engine;

  engine_open (&engine);
  video_info (&info, GST_VIDEO_FORMAT_I420, WIDTH, HEIGHT);
  for (guint i = 0; i < 2; i++) {
    Rig rig;

    rig_start (&rig, gst_object_ref (element), TRUE, TRUE);
    rig_set_format (&rig, &info);
    push_and_check (&rig, &engine, &info, make_frame (&info, i), 0, FALSE);
    rig_stop (&rig);
    fail_unless_equals_int (gst_element_set_state (element, GST_STATE_NULL),
        GST_STATE_CHANGE_SUCCESS);
  }
  gst_object_unref (element);
  engine_close (&engine);
}

GST_END_TEST;

#ifdef HFAM_HAVE_GST_CUDA
/* ---- CUDA memory: with a CUDA device only ---- */

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
  if (cuda_context) {
    GstContext *context = gst_context_new_cuda_context (cuda_context);
    GstStructure *config;

    gst_util_set_object_arg (G_OBJECT (element), "backend", "cuda");
    gst_util_set_object_arg (G_OBJECT (element), "precision", "fp32");
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
  hfam_inference_dims (width, height, INFERENCE_SIZE, &inf_w, &inf_h);
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
 * (the frames in between show the key of the frame that ran, byte for byte),
 * temporal-smoothing 0.5 (blended at the inference size on the device, at the
 * frame's size on the CPU: equal up to float rounding), and both. */
GST_START_TEST (test_cuda_memory)
{
  static const GstVideoFormat formats[] = { GST_VIDEO_FORMAT_RGBA,
    GST_VIDEO_FORMAT_NV12
  };
  static const MemorySettings settings[] = { {1, 0.0}, {3, 0.0}, {1, 0.5},
  {2, 0.5}
  };
  GstCudaContext *cuda_context = cuda_memory_context ();
  Engine engine;

  if (!cuda_context || !cuda_device_opens ()) {
    g_print ("test_cuda_memory: skipped, no CUDA device\n");
    gst_clear_object (&cuda_context);
    return;
  }
  engine_open (&engine);
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
        /* a frame the network skips shows the kept matte of the one it ran on */
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
#endif

/* cuda_device_opens in a child process: CUDA started here would be unusable in
 * the children check forks for the tests. */
static gboolean
cuda_device_opens_apart (void)
{
  pid_t pid = fork ();
  int status;

  if (pid == 0)
    _exit (cuda_device_opens ()? 0 : 1);
  return pid > 0 && waitpid (pid, &status, 0) == pid && WIFEXITED (status)
      && WEXITSTATUS (status) == 0;
}

static Suite *
hfammatte_suite (void)
{
  Suite *s = suite_create ("hfammatte");
  TCase *tc = tcase_create ("general");

  suite_add_tcase (s, tc);
  tcase_add_loop_test (tc, test_sink_format, 0, G_N_ELEMENTS (sink_formats));
  tcase_add_test (tc, test_rgba_equals_libhfam);
  tcase_add_test (tc, test_output_formats);
  tcase_add_test (tc, test_any_memory_downstream);
  tcase_add_test (tc, test_premultiplied);
  tcase_add_test (tc, test_odd_sizes);
  tcase_add_test (tc, test_colorimetry);
  tcase_add_test (tc, test_timestamps_and_flags);
  tcase_add_test (tc, test_events_reach_both_pads);
  tcase_add_test (tc, test_only_src_linked);
  tcase_add_test (tc, test_only_alpha_linked);
  tcase_add_test (tc, test_nothing_linked);
  tcase_add_test (tc, test_link_alpha_later);
  tcase_add_test (tc, test_renegotiation);
  tcase_add_test (tc, test_inference_interval);
  tcase_add_test (tc, test_temporal_smoothing);
  tcase_add_test (tc, test_reset_on_flush_segment_discont);
  tcase_add_test (tc, test_qos);
  tcase_add_test (tc, test_latency);
  tcase_add_test (tc, test_pipeline_depth_same_output);
  tcase_add_test (tc, test_pipeline_depth_held_frame);
  tcase_add_test (tc, test_missing_model);
  tcase_add_test (tc, test_corrupt_model);
  tcase_add_test (tc, test_default_model);
  tcase_add_test (tc, test_precision);
  tcase_add_test (tc, test_cuda_device_id);
  if (!cuda_device_opens_apart ()) {
    tcase_add_test (tc, test_backend_cuda_fails);
    tcase_add_test (tc, test_backend_auto_falls_back);
  }
  tcase_add_test (tc, test_restart);
#ifdef HFAM_HAVE_GST_CUDA
  tcase_add_test (tc, test_cuda_memory);
#endif
  return s;
}

GST_CHECK_MAIN (hfammatte);
