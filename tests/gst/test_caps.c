/* hfammatte's caps and negotiation: every input format, the output formats
 * downstream picks (and changes its mind on), which outputs are linked (one,
 * the other, none, the alpha pad later), and caps that change mid-stream. */
#include "harness.h"

static const GstVideoFormat sink_formats[] = {
  GST_VIDEO_FORMAT_RGBA, GST_VIDEO_FORMAT_BGRA, GST_VIDEO_FORMAT_RGBx,
  GST_VIDEO_FORMAT_BGRx, GST_VIDEO_FORMAT_RGB, GST_VIDEO_FORMAT_BGR,
  GST_VIDEO_FORMAT_ARGB, GST_VIDEO_FORMAT_ABGR, GST_VIDEO_FORMAT_xRGB,
  GST_VIDEO_FORMAT_xBGR, GST_VIDEO_FORMAT_I420, GST_VIDEO_FORMAT_YV12,
  GST_VIDEO_FORMAT_NV12, GST_VIDEO_FORMAT_NV21, GST_VIDEO_FORMAT_Y42B,
  GST_VIDEO_FORMAT_Y444, GST_VIDEO_FORMAT_YUY2, GST_VIDEO_FORMAT_UYVY,
  GST_VIDEO_FORMAT_AYUV, GST_VIDEO_FORMAT_v210, GST_VIDEO_FORMAT_P010_10LE,
  GST_VIDEO_FORMAT_I420_10LE, GST_VIDEO_FORMAT_I422_10LE,
  GST_VIDEO_FORMAT_Y444_10LE,
};

static GstVideoFormat
output_format (GstHarness * h)
{
  GstVideoInfo info;

  output_info (h, &info);
  return GST_VIDEO_INFO_FORMAT (&info);
}

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

/* Three frames of `format` with only the pads asked for linked, each checked against libhfam. */
static void
run_with_pads_linked (GstVideoFormat format, gboolean src, gboolean alpha)
{
  GstVideoInfo info;
  Engine engine;
  Rig rig;

  engine_open (&engine);
  video_info (&info, format, WIDTH, HEIGHT);
  rig_start (&rig, make_element (), src, alpha);
  rig_set_format (&rig, &info);
  for (guint i = 0; i < 3; i++)
    push_and_check (&rig, &engine, &info, make_frame (&info, i), i, FALSE);
  rig_stop (&rig);
  engine_close (&engine);
}

GST_START_TEST (test_only_src_linked)
{
  run_with_pads_linked (GST_VIDEO_FORMAT_I420, TRUE, FALSE);
}

GST_END_TEST;

GST_START_TEST (test_only_alpha_linked)
{
  run_with_pads_linked (GST_VIDEO_FORMAT_BGRx, FALSE, TRUE);
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

TCase *
caps_tcase (void)
{
  TCase *tc = tcase_create ("caps");

  tcase_add_loop_test (tc, test_sink_format, 0, G_N_ELEMENTS (sink_formats));
  tcase_add_test (tc, test_output_formats);
  tcase_add_test (tc, test_any_memory_downstream);
  tcase_add_test (tc, test_only_src_linked);
  tcase_add_test (tc, test_only_alpha_linked);
  tcase_add_test (tc, test_nothing_linked);
  tcase_add_test (tc, test_link_alpha_later);
  tcase_add_test (tc, test_renegotiation);
  return tc;
}
