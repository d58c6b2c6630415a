/* What the hfammatte tests share: see harness.h. */
#include "harness.h"

#include <math.h>
#include <string.h>

const gchar *
model_path (void)
{
  const gchar *path = g_getenv ("HFAM_TEST_MODEL");

  fail_unless (path != NULL, "HFAM_TEST_MODEL is not set");
  return path;
}

/* ---- Frames and what the element should make of them ---- */

void
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
GstBuffer *
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

void
engine_open (Engine * engine)
{
  engine_open_at (engine, HFAM_PRECISION_DEFAULT);
}

void
engine_open_at (Engine * engine, HfamPrecision precision)
{
  HfamEdgeParams edges;
  GError *error = NULL;

  engine->model = hfam_model_load (model_path (), &error);
  fail_unless (engine->model != NULL, "%s", error ? error->message : "");
  engine->ctx = hfam_context_new (engine->model,
      &(HfamOptions) {.backend = HFAM_BACKEND_CPU,.precision = precision,
        .n_threads = 1 }, NULL, &error);
  fail_unless (engine->ctx != NULL, "%s", error ? error->message : "");
  /* what the element writes by default */
  element_default_edges (&edges);
  fail_unless (hfam_context_set_edges (engine->ctx, &edges, &error), "%s",
      error ? error->message : "");
}

/* The element's default edges: its properties' defaults. */
void
element_default_edges (HfamEdgeParams * edges)
{
  GstElement *element = gst_element_factory_make ("hfammatte", NULL);
  GObjectClass *klass;

  fail_unless (element != NULL, "hfammatte is not registered");
  klass = G_OBJECT_GET_CLASS (element);
  hfam_edge_params_init (edges);
  edges->refine = g_value_get_enum (g_param_spec_get_default_value
      (g_object_class_find_property (klass, "refine")));
  edges->fill = g_value_get_enum (g_param_spec_get_default_value
      (g_object_class_find_property (klass, "fill")));
  edges->key_black = g_value_get_double (g_param_spec_get_default_value
      (g_object_class_find_property (klass, "key-black")));
  edges->key_white = g_value_get_double (g_param_spec_get_default_value
      (g_object_class_find_property (klass, "key-white")));
  gst_object_unref (element);
}

void
engine_close (Engine * engine)
{
  hfam_context_free (engine->ctx);
  hfam_model_free (engine->model);
}

static gboolean
hfam_layout (GstVideoFormat format, HfamFormat * layout)
{
  switch (format) {
    case GST_VIDEO_FORMAT_RGB:
      *layout = HFAM_FORMAT_RGB;
      return TRUE;
    case GST_VIDEO_FORMAT_BGR:
      *layout = HFAM_FORMAT_BGR;
      return TRUE;
    case GST_VIDEO_FORMAT_RGBA:
    case GST_VIDEO_FORMAT_RGBx:
      *layout = HFAM_FORMAT_RGBA;
      return TRUE;
    case GST_VIDEO_FORMAT_BGRA:
    case GST_VIDEO_FORMAT_BGRx:
      *layout = HFAM_FORMAT_BGRA;
      return TRUE;
    default:
      return FALSE;
  }
}

void
expect (Engine * engine, const GstVideoInfo * info, GstBuffer * buffer,
    Expected * expected)
{
  expect_at (engine, info, buffer, INFERENCE_SIZE, expected);
}

/* The same at another inference size. */
void
expect_at (Engine * engine, const GstVideoInfo * info, GstBuffer * buffer,
    gint inference_size, Expected * expected)
{
  const HfamFrameParams params = {.long_side = inference_size };

  expect_with (engine, info, buffer, &params, expected);
}

/* The same with these frame parameters (the engine's kept matte carries over
 * from the call before, as the element's); params NULL: a frame that does not
 * run the network, as the element's inference-interval skips it (the kept
 * matte follows its picture, then is written). */
void
expect_with (Engine * engine, const GstVideoInfo * info, GstBuffer * buffer,
    const HfamFrameParams * params, Expected * expected)
{
  const gint width = GST_VIDEO_INFO_WIDTH (info);
  const gint height = GST_VIDEO_INFO_HEIGHT (info);
  HfamFormat layout;
  GstVideoFrame frame;
  HfamImage image = { 0 }, matte = { 0 };
  HfamFrameParams shown;
  GError *error = NULL;

  if (hfam_layout (GST_VIDEO_INFO_FORMAT (info), &layout)) {
    expected->colour_info = *info;
    expected->colour = gst_buffer_ref (buffer);
  } else {
    layout = HFAM_FORMAT_RGBA;
    video_info (&expected->colour_info, GST_VIDEO_FORMAT_RGBA, width, height);
    expected->colour = convert (info, buffer, &expected->colour_info);
  }
  fail_unless (gst_video_frame_map (&frame, &expected->colour_info,
          expected->colour, GST_MAP_READ));
  image.planes[0] = GST_VIDEO_FRAME_PLANE_DATA (&frame, 0);
  image.strides[0] = GST_VIDEO_FRAME_PLANE_STRIDE (&frame, 0);
  image.width = matte.width = width;
  image.height = matte.height = height;
  image.format = layout;
  expected->matte = g_new (float, (gsize) width * height);
  matte.planes[0] = (guint8 *) expected->matte;
  matte.strides[0] = sizeof (float) * width;
  matte.format = HFAM_FORMAT_GRAY32F;
  if (params) {
    /* as the element: the caps' pixel aspect, whatever the test asks */
    shown = *params;
    shown.pixel_aspect = (float) GST_VIDEO_INFO_PAR_N (info)
        / GST_VIDEO_INFO_PAR_D (info);
  }
  fail_unless (params
      ? hfam_context_run (engine->ctx, &image, &shown, &matte, 1, &error)
      : hfam_context_follow (engine->ctx, &image, &error)
      && hfam_context_write_kept (engine->ctx, &image, &matte, 1, &error),
      "%s", error ? error->message : "");
  gst_video_frame_unmap (&frame);
}

void
expected_clear (Expected * expected)
{
  gst_clear_buffer (&expected->colour);
  g_clear_pointer (&expected->matte, g_free);
}

/* Rounding to the nearest level, as the issue asks of the outputs. */
guint
level (float alpha, guint max)
{
  return (guint) floorf (CLAMP (alpha, 0.0f, 1.0f) * max + 0.5f);
}

void
output_info (GstHarness * h, GstVideoInfo * info)
{
  GstCaps *caps = gst_pad_get_current_caps (h->sinkpad);

  fail_unless (caps != NULL);
  fail_unless (gst_video_info_from_caps (info, caps));
  gst_caps_unref (caps);
}

/* The src output: the expected colour (premultiplied or not) and matte as alpha. */
void
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
void
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

/* The pixels of an output buffer, rows without their padding. */
GBytes *
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

/* ---- The element under harnesses ---- */

GstElement *
make_element (void)
{
  GstElement *element = gst_element_factory_make ("hfammatte", NULL);

  fail_unless (element != NULL, "hfammatte not found on GST_PLUGIN_PATH");
  /* each frame's own matte, as expect() computes it: the tests of smoothing,
   * islands and letterbox set them themselves */
  g_object_set (element, "model", model_path (), "backend", 1,
      "inference-size", INFERENCE_SIZE, "n-threads", 1, "temporal-smoothing",
      0.0, "islands", 0.0, "letterbox", FALSE, NULL);
  return element;
}

void
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

void
rig_stop (Rig * rig)
{
  if (rig->key)
    gst_harness_teardown (rig->key);
  if (rig->fill)
    gst_harness_teardown (rig->fill);
  gst_object_unref (rig->element);
}

void
rig_set_format (Rig * rig, const GstVideoInfo * info)
{
  gst_harness_set_src_caps (rig->input, gst_video_info_to_caps (info));
}

GstFlowReturn
rig_push (Rig * rig, GstBuffer * buffer, guint index)
{
  GST_BUFFER_PTS (buffer) = index * FRAME_DURATION;
  GST_BUFFER_DTS (buffer) = index * FRAME_DURATION;
  GST_BUFFER_DURATION (buffer) = FRAME_DURATION;
  return gst_harness_push (rig->input, buffer);
}

/* A copy of `frame` with a camera's noise: a level of 2 on every fifth byte. */
GstBuffer *
noisy_copy (GstBuffer * frame)
{
  GstBuffer *copy = gst_buffer_copy_deep (frame);
  GstMapInfo map;

  fail_unless (gst_buffer_map (copy, &map, GST_MAP_WRITE));
  for (gsize b = 0; b < map.size; b += 5)
    map.data[b] = map.data[b] < 128 ? map.data[b] + 2 : map.data[b] - 2;
  gst_buffer_unmap (copy, &map);
  return copy;
}

/* Pushes `buffer` and checks both outputs against `expected`. */
void
push_and_check_expected (Rig * rig, GstBuffer * buffer, guint index,
    const Expected * expected, gboolean premultiplied)
{
  GstBuffer *out;

  fail_unless_equals_int (rig_push (rig, buffer, index), GST_FLOW_OK);
  if (rig->fill) {
    out = gst_harness_pull (rig->fill);
    check_fill (rig->fill, out, expected, expected->matte, premultiplied);
    gst_buffer_unref (out);
  }
  if (rig->key) {
    out = gst_harness_pull (rig->key);
    check_key (rig->key, out, expected->matte, 0);
    gst_buffer_unref (out);
  }
}

/* Pushes `buffer` and checks both outputs against libhfam for it. */
void
push_and_check (Rig * rig, Engine * engine, const GstVideoInfo * info,
    GstBuffer * buffer, guint index, gboolean premultiplied)
{
  Expected expected = { 0 };

  expect (engine, info, buffer, &expected);
  push_and_check_expected (rig, buffer, index, &expected, premultiplied);
  expected_clear (&expected);
}

/* Whether libhfam opens a CUDA device here: test_properties.c's backend tests
 * are about a machine without one (cuda fails, auto warns and runs on the CPU),
 * test_cuda_memory needs one. */
void
pop_message_naming (GstBus * bus, GstMessageType type, const gchar * needle)
{
  GstMessage *message = gst_bus_pop_filtered (bus, type);
  GError *error = NULL;
  gchar *debug = NULL;

  fail_unless (message != NULL, "no %s message",
      gst_message_type_get_name (type));
  if (type == GST_MESSAGE_ERROR)
    gst_message_parse_error (message, &error, &debug);
  else
    gst_message_parse_warning (message, &error, &debug);
  GST_INFO ("%s: %s (%s)", gst_message_type_get_name (type), error->message,
      debug);
  fail_unless (strstr (error->message, needle) != NULL,
      "'%s' does not name '%s'", error->message, needle);
  g_error_free (error);
  g_free (debug);
  gst_message_unref (message);
}

gboolean
cuda_device_opens (void)
{
  HfamModel *model = hfam_model_load (g_getenv ("HFAM_TEST_MODEL"), NULL);
  HfamContext *ctx = model ? hfam_context_new (model,
      &(HfamOptions) {.backend = HFAM_BACKEND_CUDA }, NULL, NULL) : NULL;
  gboolean opens = ctx != NULL;

  hfam_context_free (ctx);
  hfam_model_free (model);
  return opens;
}

static void
log_capture_message (GstDebugCategory * category, GstDebugLevel level,
    const gchar * file, const gchar * function, gint line, GObject * object,
    GstDebugMessage * message, gpointer user_data)
{
  LogCapture *capture = user_data;

  if (level > capture->level
      || g_strcmp0 (gst_debug_category_get_name (category), "hfammatte") != 0)
    return;
  g_mutex_lock (&capture->lock);
  g_string_append_printf (capture->text, "%s\n", gst_debug_message_get (message));
  g_mutex_unlock (&capture->lock);
}

void
log_capture_start (LogCapture * capture, GstDebugLevel level)
{
  capture->level = level;
  g_mutex_init (&capture->lock);
  capture->text = g_string_new (NULL);
  gst_debug_set_threshold_for_name ("hfammatte", level);
  gst_debug_add_log_function (log_capture_message, capture, NULL);
}

gchar *
log_capture_stop (LogCapture * capture)
{
  gst_debug_remove_log_function_by_data (capture);
  gst_debug_unset_threshold_for_name ("hfammatte");
  g_mutex_clear (&capture->lock);
  return g_string_free (capture->text, FALSE);
}
