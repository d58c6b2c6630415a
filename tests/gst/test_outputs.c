/* What hfammatte's outputs hold: the input's colour with libhfam's matte,
 * premultiplied or not, at odd sizes, in the colour the input's colorimetry
 * gives; the input's timestamps and flags, and the events, on both pads. */
#include "harness.h"

#include <string.h>

/* How far the fill of a YUV frame libhfam converts may be from the same
 * frame's through GstVideoConverter (test_yuv_matches_converter), in levels:
 * colours measured within 7 (the converter's 8-bit matrix is itself up to 5
 * levels off the standards' formula on a flat BT.601 colour, and it
 * interpolates chroma where libhfam takes the covering sample); the test
 * model's random weights magnify its input's change into the matte, measured
 * within 27 at worst, 5.8 on average. */
#define COLOUR_TOLERANCE 8
#define ALPHA_TOLERANCE 32
#define ALPHA_MEAN_TOLERANCE 8

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

/* Colorimetry decides the RGB the network sees: the same bytes read as BT.601
 * and as BT.709 give different colour, each as libhfam converts it. */
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

/* A picture of smooth colours (chroma varying slowly, as in a camera's), RGBA. */
static GstBuffer *
make_smooth_rgba (const GstVideoInfo * rgba)
{
  const gint w = GST_VIDEO_INFO_WIDTH (rgba), h = GST_VIDEO_INFO_HEIGHT (rgba);
  GstBuffer *buffer = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (rgba),
      NULL);
  GstMapInfo map;

  gst_buffer_map (buffer, &map, GST_MAP_WRITE);
  for (gint y = 0; y < h; y++)
    for (gint x = 0; x < w; x++) {
      guint8 *p = map.data + (gsize) y * GST_VIDEO_INFO_PLANE_STRIDE (rgba, 0)
          + 4 * x;
      p[0] = (guint8) (90 + 40 * x / MAX (w - 1, 1));
      p[1] = (guint8) (170 - 40 * y / MAX (h - 1, 1));
      p[2] = (guint8) (100 + 30 * (x + y) / (w + h));
      p[3] = 255;
    }
  gst_buffer_unmap (buffer, &map);
  return buffer;
}

/* The fill of one frame through a fresh element. */
static GstBuffer *
fill_of (const GstVideoInfo * info, GstBuffer * frame)
{
  GstBuffer *fill;
  Rig rig;

  rig_start (&rig, make_element (), TRUE, FALSE);
  gst_harness_set_sink_caps_str (rig.fill, "video/x-raw,format=RGBA");
  rig_set_format (&rig, info);
  fail_unless_equals_int (rig_push (&rig, frame, 0), GST_FLOW_OK);
  fill = gst_harness_pull (rig.fill);
  rig_stop (&rig);
  return fill;
}

/* NV12 and I420 in BT.601 and BT.709, limited and full range, which the element
 * reads as they are, fill as the same picture does given as RGBA by
 * GstVideoConverter (what the element did with them before): colours within
 * the converter's chroma upsampling and rounding, the matte within what those
 * change in the network's input. */
GST_START_TEST (test_yuv_matches_converter)
{
  const GstVideoFormat formats[] = { GST_VIDEO_FORMAT_I420,
    GST_VIDEO_FORMAT_NV12
  };
  const gchar *colorimetries[] = { "bt601", "bt709" };
  const gint sizes[][2] = { { WIDTH, HEIGHT }, { 37, 9 } };

  for (guint f = 0; f < G_N_ELEMENTS (formats); f++)
    for (guint c = 0; c < 2 * G_N_ELEMENTS (colorimetries); c++)
      for (guint s = 0; s < G_N_ELEMENTS (sizes); s++) {
        GstVideoInfo yuv, rgba;
        GstBuffer *picture, *frame, *converted, *fills[2];
        GstMapInfo a, b;
        HfamImage layout;
        guint colour_diff = 0, alpha_diff = 0;
        gdouble alpha_sum = 0.0, alpha_mean;

        video_info (&rgba, GST_VIDEO_FORMAT_RGBA, sizes[s][0], sizes[s][1]);
        video_info (&yuv, formats[f], sizes[s][0], sizes[s][1]);
        fail_unless (gst_video_colorimetry_from_string (&yuv.colorimetry,
                colorimetries[c / 2]));
        if (c % 2)
          yuv.colorimetry.range = GST_VIDEO_COLOR_RANGE_0_255;
        fail_unless (yuv_layout (&yuv, &layout));
        picture = make_smooth_rgba (&rgba);
        frame = convert (&rgba, picture, &yuv);
        converted = convert (&yuv, frame, &rgba);
        fills[0] = fill_of (&yuv, frame);
        fills[1] = fill_of (&rgba, converted);

        gst_buffer_map (fills[0], &a, GST_MAP_READ);
        gst_buffer_map (fills[1], &b, GST_MAP_READ);
        fail_unless_equals_int (a.size, b.size);
        for (gsize i = 0; i < a.size; i++) {
          const guint d = ABS ((gint) a.data[i] - (gint) b.data[i]);
          if (i % 4 == 3) {
            alpha_diff = MAX (alpha_diff, d);
            alpha_sum += d;
          } else
            colour_diff = MAX (colour_diff, d);
        }
        alpha_mean = alpha_sum / (a.size / 4);
        GST_INFO ("%s %s%s %dx%d: colours within %u, alpha within %u, %.2f on "
            "average", gst_video_format_to_string (formats[f]),
            colorimetries[c / 2], c % 2 ? " full" : "", sizes[s][0],
            sizes[s][1], colour_diff, alpha_diff, alpha_mean);
        fail_unless (colour_diff <= COLOUR_TOLERANCE, "colours differ by %u",
            colour_diff);
        fail_unless (alpha_diff <= ALPHA_TOLERANCE, "alpha differs by %u",
            alpha_diff);
        fail_unless (alpha_mean <= ALPHA_MEAN_TOLERANCE,
            "alpha differs by %.2f on average", alpha_mean);
        gst_buffer_unmap (fills[1], &b);
        gst_buffer_unmap (fills[0], &a);
        gst_buffer_unref (fills[0]);
        gst_buffer_unref (fills[1]);
        gst_buffer_unref (picture);
      }
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
  tcase_add_test (tc, test_colorimetry);
  tcase_add_test (tc, test_yuv_matches_converter);
  tcase_add_test (tc, test_timestamps_and_flags);
  tcase_add_test (tc, test_events_reach_both_pads);
  return tc;
}
