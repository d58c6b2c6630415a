/* What hfammatte's outputs hold: the input's colour with libhfam's matte,
 * premultiplied or not, at odd sizes, in the colour the input's colorimetry
 * gives; the input's timestamps and flags, and the events, on both pads. */
#include "harness.h"

#include <string.h>

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

/* Non-square pixels (the caps' pixel-aspect-ratio): the network sees the
 * picture as shown, a 40x40 frame of 2:1 pixels at 64x32, of 1:2 pixels at
 * 32x64, where square ones would run at 64x64. */
GST_START_TEST (test_pixel_aspect)
{
  const gint aspects[][2] = { {2, 1}, {1, 2} };
  Engine engine;

  engine_open (&engine);
  for (guint i = 0; i < G_N_ELEMENTS (aspects); i++) {
    GstElement *element = make_element ();
    GstVideoInfo info, square;
    GstBuffer *frame, *out;
    Expected shown = { 0 }, as_square = { 0 };
    float largest = 0.0f;
    Rig rig;

    g_object_set (element, "inference-size", 64, NULL);
    video_info (&info, GST_VIDEO_FORMAT_I420, 40, 40);
    GST_VIDEO_INFO_PAR_N (&info) = aspects[i][0];
    GST_VIDEO_INFO_PAR_D (&info) = aspects[i][1];
    frame = make_frame (&info, 11);
    rig_start (&rig, element, TRUE, TRUE);
    rig_set_format (&rig, &info);
    expect_at (&engine, &info, frame, 64, &shown);
    fail_unless_equals_int (rig_push (&rig, gst_buffer_ref (frame), 0),
        GST_FLOW_OK);
    out = gst_harness_pull (rig.fill);
    check_fill (rig.fill, out, &shown, shown.matte, FALSE);
    gst_buffer_unref (out);
    out = gst_harness_pull (rig.key);
    check_key (rig.key, out, shown.matte, 0);
    gst_buffer_unref (out);
    rig_stop (&rig);

    /* (so the checks above fail when the element ignores the aspect) */
    square = info;
    GST_VIDEO_INFO_PAR_N (&square) = GST_VIDEO_INFO_PAR_D (&square) = 1;
    expect_at (&engine, &square, frame, 64, &as_square);
    for (gint p = 0; p < 40 * 40; p++)
      largest = MAX (largest, fabsf (shown.matte[p] - as_square.matte[p]));
    fail_unless (largest > 2.0f / 255, "%g", largest);
    expected_clear (&as_square);
    expected_clear (&shown);
    gst_buffer_unref (frame);
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

TCase *
outputs_tcase (void)
{
  TCase *tc = tcase_create ("outputs");

  tcase_add_test (tc, test_rgba_equals_libhfam);
  tcase_add_test (tc, test_premultiplied);
  tcase_add_test (tc, test_odd_sizes);
  tcase_add_test (tc, test_pixel_aspect);
  tcase_add_test (tc, test_colorimetry);
  tcase_add_test (tc, test_timestamps_and_flags);
  tcase_add_test (tc, test_events_reach_both_pads);
  return tc;
}
