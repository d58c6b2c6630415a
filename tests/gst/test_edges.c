/* hfammatte's edge properties (refine, fill, key-black, key-white), islands and
 * letterbox: on every output format, what libhfam writes with the same edges,
 * islands and letterbox; changeable while PLAYING; a key-white at or below
 * key-black refused; the levels driven frame by frame by GstController. */
#include "harness.h"

#include <gst/controller/controller.h>
#include <string.h>

typedef struct
{
  const gchar *pad;             /* "src" or "alpha" */
  const gchar *format;
  gboolean premultiplied;
  HfamFormat hfam_format;
  gint bpp;
} OutputFormat;

static const OutputFormat output_formats[] = {
  {"src", "RGBA", FALSE, HFAM_FORMAT_RGBA, 4},
  {"src", "BGRA", FALSE, HFAM_FORMAT_BGRA, 4},
  {"src", "RGBA", TRUE, HFAM_FORMAT_RGBA, 4},
  {"src", "BGRA", TRUE, HFAM_FORMAT_BGRA, 4},
  {"alpha", "GRAY8", FALSE, HFAM_FORMAT_GRAY8, 1},
  {"alpha", "GRAY16_LE", FALSE, HFAM_FORMAT_GRAY16, 2},
};

/* What libhfam writes for an RGBA frame of width x height with these
 * parameters and edges. */
static GBytes *
libhfam_output_with (Engine * engine, GstBuffer * in, gint width, gint height,
    const HfamFrameParams * params, const HfamEdgeParams * edges,
    const OutputFormat * of)
{
  guint8 *pixels = g_malloc ((gsize) width * height * of->bpp);
  GError *error = NULL;
  GstMapInfo map;
  HfamImage frame, out;

  fail_unless (gst_buffer_map (in, &map, GST_MAP_READ));
  frame = (HfamImage) {.planes = {map.data},.strides = {width * 4},
    .width = width,.height = height,.format = HFAM_FORMAT_RGBA };
  out = (HfamImage) {.planes = {pixels},.strides = {width * of->bpp},
    .width = width,.height = height,.format = of->hfam_format,
    .premultiplied = of->premultiplied };
  fail_unless (hfam_context_set_edges (engine->ctx, edges, &error), "%s",
      error ? error->message : "");
  fail_unless (hfam_context_run (engine->ctx, &frame, params, &out, 1,
          &error), "%s", error ? error->message : "");
  gst_buffer_unmap (in, &map);
  return g_bytes_new_take (pixels, (gsize) width * height * of->bpp);
}

/* The same for a frame of the tests' size. */
static GBytes *
libhfam_output (Engine * engine, GstBuffer * in, const HfamEdgeParams * edges,
    const OutputFormat * of)
{
  const HfamFrameParams params = {.long_side = INFERENCE_SIZE };

  return libhfam_output_with (engine, in, WIDTH, HEIGHT, &params, edges, of);
}

static GBytes *
element_output (Rig * rig, const OutputFormat * of, GstBuffer * in,
    guint index)
{
  GstHarness *h = g_str_equal (of->pad, "src") ? rig->fill : rig->key;

  fail_unless_equals_int (rig_push (rig, gst_buffer_ref (in), index),
      GST_FLOW_OK);
  return packed_pixels (h, gst_harness_pull (h));
}

/* The element on a rig whose one linked pad takes `of`, frames of `info` in. */
static void
rig_start_format (Rig * rig, GstElement * element, const OutputFormat * of,
    const GstVideoInfo * info)
{
  const gboolean on_src = g_str_equal (of->pad, "src");
  g_autofree gchar *caps = g_strdup_printf ("video/x-raw,format=%s",
      of->format);

  g_object_set (element, "premultiplied", of->premultiplied, NULL);
  rig_start (rig, element, on_src, !on_src);
  gst_harness_set_sink_caps_str (on_src ? rig->fill : rig->key, caps);
  rig_set_format (rig, info);
}

static void
expect_same_bytes (GBytes * got, GBytes * want, const gchar * what)
{
  fail_unless (g_bytes_equal (got, want), "%s differs from libhfam's", what);
  g_bytes_unref (got);
  g_bytes_unref (want);
}

/* Each property on its own, on every output format, set before the start and
 * then changed while PLAYING. */
GST_START_TEST (test_edges_every_format)
{
  GstVideoInfo info;
  GstBuffer *in;
  Engine engine;

  engine_open (&engine);
  video_info (&info, GST_VIDEO_FORMAT_RGBA, WIDTH, HEIGHT);
  in = make_frame (&info, 5);
  for (guint setting = 0; setting < 3; setting++) {
    for (guint i = 0; i < G_N_ELEMENTS (output_formats); i++) {
      const OutputFormat *of = &output_formats[i];
      GstElement *element = make_element ();
      HfamEdgeParams edges;
      Rig rig;

      element_default_edges (&edges);
      rig_start_format (&rig, element, of, &info);
      /* the defaults first, then the property changed while PLAYING */
      expect_same_bytes (element_output (&rig, of, in, 0),
          libhfam_output (&engine, in, &edges, of), "default");
      if (setting == 0) {
        g_object_set (element, "refine", HFAM_REFINE_NONE, NULL);
        edges.refine = HFAM_REFINE_NONE;
      } else if (setting == 1) {
        g_object_set (element, "fill", HFAM_FILL_FOREGROUND, NULL);
        edges.fill = HFAM_FILL_FOREGROUND;
      } else {
        g_object_set (element, "key-black", 0.3, "key-white", 0.6, NULL);
        edges.key_black = 0.3f;
        edges.key_white = 0.6f;
      }
      expect_same_bytes (element_output (&rig, of, in, 1),
          libhfam_output (&engine, in, &edges, of), of->format);
      rig_stop (&rig);
    }
  }
  gst_buffer_unref (in);
  engine_close (&engine);
}

GST_END_TEST;

/* A setting of HfamFrameParams as a property: step 0 turns it off in `params`
 * alone (what the frame must change from), step 1 sets the element's default in
 * both, step 2 changes it in both while PLAYING. */
typedef void (*FrameSetting) (GstElement * element, HfamFrameParams * params,
    guint step);

/* `setting` on every output format on `in`: the element's default, then the
 * change while PLAYING, each what libhfam writes with the same parameters. */
static void
check_frame_setting (GstBuffer * in, const GstVideoInfo * info,
    FrameSetting setting, const gchar * what)
{
  const gint width = GST_VIDEO_INFO_WIDTH (info);
  const gint height = GST_VIDEO_INFO_HEIGHT (info);
  Engine engine;

  engine_open (&engine);
  for (guint i = 0; i < G_N_ELEMENTS (output_formats); i++) {
    const OutputFormat *of = &output_formats[i];
    GstElement *element = make_element ();
    HfamFrameParams params = {.long_side = width }, off;
    HfamEdgeParams edges;
    GBytes *none;
    Rig rig;

    element_default_edges (&edges);
    g_object_set (element, "inference-size", width, NULL);
    /* (make_element turns the setting off) */
    setting (element, &params, 1);
    rig_start_format (&rig, element, of, info);
    off = params;
    setting (NULL, &off, 0);
    none = libhfam_output_with (&engine, in, width, height, &off, &edges, of);
    for (guint k = 0; k < 2; k++) {
      GBytes *want = libhfam_output_with (&engine, in, width, height, &params,
          &edges, of);

      /* (the frame has something for it to change, or this would not test it) */
      fail_if (k == 0 && g_bytes_equal (want, none), "%s changed nothing",
          what);
      expect_same_bytes (element_output (&rig, of, in, k), want, of->format);
      setting (element, &params, 2);
    }
    g_bytes_unref (none);
    rig_stop (&rig);
  }
  engine_close (&engine);
}

/* islands: the default, then 0.5. */
static void
islands_setting (GstElement * element, HfamFrameParams * params, guint step)
{
  params->islands = step == 0 ? 0.0f : step == 1 ? HFAM_ISLANDS_DEFAULT : 0.5f;
  if (element)
    g_object_set (element, "islands", (gdouble) params->islands, NULL);
}

/* letterbox: the default (on, which the property's spec must say), then off. */
static void
letterbox_setting (GstElement * element, HfamFrameParams * params, guint step)
{
  params->letterbox = step == 1;
  if (element && step == 1)
    fail_unless (G_PARAM_SPEC_BOOLEAN (g_object_class_find_property
            (G_OBJECT_GET_CLASS (element), "letterbox"))->default_value);
  if (element)
    g_object_set (element, "letterbox", params->letterbox, NULL);
}

/* At the tests' 32 pixels the test model's matte is one region; at 160 it has
 * several. */
GST_START_TEST (test_islands)
{
  GstVideoInfo info;
  GstBuffer *in;

  video_info (&info, GST_VIDEO_FORMAT_RGBA, 160, 96);
  in = make_frame (&info, 7);
  check_frame_setting (in, &info, islands_setting, "islands");
  gst_buffer_unref (in);
}

GST_END_TEST;

/* A frame with black bars of 16 rows above and below. */
GST_START_TEST (test_letterbox)
{
  const gint bar = 16;
  GstVideoInfo info;
  GstMapInfo map;
  GstBuffer *in;

  video_info (&info, GST_VIDEO_FORMAT_RGBA, 160, 96);
  in = make_frame (&info, 9);
  fail_unless (gst_buffer_map (in, &map, GST_MAP_WRITE));
  for (gint y = 0; y < 96; y++)
    if (y < bar || y >= 96 - bar)
      for (gint x = 0; x < 160; x++)
        memset (map.data + (gsize) y * GST_VIDEO_INFO_PLANE_STRIDE (&info, 0)
            + (gsize) x * 4, 0, 3);
  gst_buffer_unmap (in, &map);
  check_frame_setting (in, &info, letterbox_setting, "letterbox");
  gst_buffer_unref (in);
}

GST_END_TEST;

GST_START_TEST (test_key_levels_refused)
{
  GstElement *element = make_element ();
  LogCapture capture;
  gdouble black, white;
  gchar *log;

  log_capture_start (&capture, GST_LEVEL_WARNING);
  g_object_set (element, "key-black", 0.4, "key-white", 0.8, NULL);
  /* white at or below black, and black at or above white: both refused */
  g_object_set (element, "key-white", 0.4, NULL);
  g_object_set (element, "key-black", 0.9, NULL);
  log = log_capture_stop (&capture);
  g_object_get (element, "key-black", &black, "key-white", &white, NULL);
  fail_unless_equals_float (black, 0.4);
  fail_unless_equals_float (white, 0.8);
  fail_unless (strstr (log, "key-white") != NULL, "no warning: %s", log);
  g_free (log);
  gst_object_unref (element);
}

GST_END_TEST;

/* `name` bound to a linear ramp from `from` at the first frame to `to` at the
 * third; returns the control source, to read the values it gives. */
static GstControlSource *
ramp (GstElement * element, const gchar * name, gdouble from, gdouble to)
{
  GstControlSource *source = gst_interpolation_control_source_new ();
  GstTimedValueControlSource *timed = GST_TIMED_VALUE_CONTROL_SOURCE (source);

  g_object_set (source, "mode", GST_INTERPOLATION_MODE_LINEAR, NULL);
  gst_timed_value_control_source_set (timed, 0, from);
  gst_timed_value_control_source_set (timed, 2 * FRAME_DURATION, to);
  fail_unless (gst_object_add_control_binding (GST_OBJECT (element),
          gst_direct_control_binding_new_absolute (GST_OBJECT (element), name,
              source)), "%s is not controllable", name);
  return source;
}

/* The levels under GstController: each frame's output is libhfam's with the
 * values the ramps give at its time. */
GST_START_TEST (test_controlled_levels)
{
  const gchar *names[] = { "key-black", "key-white", "temporal-smoothing",
    "islands"
  };
  const gdouble from[] = { 0.0, 1.0, 0.0, 0.0 }, to[] = { 0.2, 0.5, 0.6, 0.5 };
  GstControlSource *sources[G_N_ELEMENTS (names)];
  GstElement *element = make_element ();
  GstVideoInfo info;
  Engine engine;
  Rig rig;

  engine_open (&engine);
  video_info (&info, GST_VIDEO_FORMAT_RGBA, WIDTH, HEIGHT);
  g_object_set (element, "temporal-mode", HFAM_TEMPORAL_BLEND, NULL);
  for (guint n = 0; n < G_N_ELEMENTS (names); n++)
    sources[n] = ramp (element, names[n], from[n], to[n]);
  rig_start (&rig, element, FALSE, TRUE);
  gst_harness_set_sink_caps_str (rig.key, "video/x-raw,format=GRAY8");
  rig_set_format (&rig, &info);
  for (guint i = 0; i < 3; i++) {
    GstBuffer *in = make_frame (&info, 40 + i);
    gdouble v[G_N_ELEMENTS (names)];
    HfamFrameParams params = {.long_side = INFERENCE_SIZE,
      .temporal = HFAM_TEMPORAL_BLEND
    };
    HfamEdgeParams edges;

    for (guint n = 0; n < G_N_ELEMENTS (names); n++)
      fail_unless (gst_control_source_get_value (sources[n],
              i * FRAME_DURATION, &v[n]));
    element_default_edges (&edges);
    edges.key_black = (float) v[0];
    edges.key_white = (float) v[1];
    params.smoothing = (float) v[2];
    params.islands = (float) v[3];
    fail_unless_equals_int (rig_push (&rig, gst_buffer_ref (in), i),
        GST_FLOW_OK);
    expect_same_bytes (packed_pixels (rig.key, gst_harness_pull (rig.key)),
        libhfam_output_with (&engine, in, WIDTH, HEIGHT, &params, &edges,
            &output_formats[4]), "the controlled key");
    gst_buffer_unref (in);
  }
  rig_stop (&rig);
  for (guint n = 0; n < G_N_ELEMENTS (names); n++)
    gst_object_unref (sources[n]);
  engine_close (&engine);
}

GST_END_TEST;

TCase *
edges_tcase (void)
{
  TCase *tc = tcase_create ("edges");

  tcase_add_test (tc, test_edges_every_format);
  tcase_add_test (tc, test_islands);
  tcase_add_test (tc, test_letterbox);
  tcase_add_test (tc, test_key_levels_refused);
  tcase_add_test (tc, test_controlled_levels);
  return tc;
}
