/* hfammatte over time: the matte carried from frame to frame
 * (inference-interval, temporal-smoothing and what restarts it), QoS, latency,
 * and pipeline-depth's held frame. */
#include "harness.h"

#include <string.h>

static gboolean
mattes_differ (const float *a, const float *b, gsize n)
{
  for (gsize i = 0; i < n; i++) {
    if (level (a[i], 255) != level (b[i], 255))
      return TRUE;
  }
  return FALSE;
}

/* inference-interval=3 with `mode`: frames 0 and 3 run the network, frames 1
 * and 2 show the kept matte; with HFAM_TEMPORAL_COMPENSATED (the default) moved
 * along their picture's motion, each from the one before (hfam_context_follow),
 * otherwise frame 0's as it is. The colour is always the current frame's. */
static void
check_inference_interval (HfamTemporal mode)
{
  const HfamFrameParams runs = {.long_side = INFERENCE_SIZE,.temporal = mode };
  GstElement *element = make_element ();
  GstBuffer *frames[4];
  Expected expected[4];
  GstVideoInfo info;
  Engine engine;
  Rig rig;

  memset (expected, 0, sizeof expected);
  engine_open (&engine);
  /* the matte as carried, without the refinement by each frame on top */
  fail_unless (hfam_context_set_edges (engine.ctx, NULL, NULL));
  g_object_set (element, "inference-interval", 3, "refine", HFAM_REFINE_NONE,
      "temporal-mode", mode, NULL);
  video_info (&info, GST_VIDEO_FORMAT_RGB, WIDTH, HEIGHT);
  for (guint i = 0; i < 4; i++) {
    frames[i] = make_frame (&info, 100 + i);
    expect_with (&engine, &info, frames[i], i % 3 == 0 ? &runs : NULL,
        &expected[i]);
  }
  fail_unless (mattes_differ (expected[0].matte, expected[3].matte,
          WIDTH * HEIGHT), "the test frames give the same matte");
  fail_unless (mattes_differ (expected[0].matte, expected[1].matte,
          WIDTH * HEIGHT) == (mode == HFAM_TEMPORAL_COMPENSATED),
      "the kept matte moved where it should not, or not where it should");

  rig_start (&rig, element, TRUE, TRUE);
  rig_set_format (&rig, &info);
  for (guint i = 0; i < 4; i++) {
    GstBuffer *out;

    fail_unless_equals_int (rig_push (&rig, frames[i], i), GST_FLOW_OK);
    out = gst_harness_pull (rig.fill);
    check_fill (rig.fill, out, &expected[i], expected[i].matte, FALSE);
    gst_buffer_unref (out);
    out = gst_harness_pull (rig.key);
    check_key (rig.key, out, expected[i].matte, 0);
    gst_buffer_unref (out);
  }
  for (guint i = 0; i < 4; i++)
    expected_clear (&expected[i]);
  rig_stop (&rig);
  engine_close (&engine);
}

GST_START_TEST (test_inference_interval)
{
  check_inference_interval (HFAM_TEMPORAL_BLEND);
}

GST_END_TEST;

GST_START_TEST (test_inference_interval_follows)
{
  check_inference_interval (HFAM_TEMPORAL_COMPENSATED);
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
  /* the matte as blended, without the refinement by each frame on top */
  fail_unless (hfam_context_set_edges (engine.ctx, NULL, NULL));
  g_object_set (element, "temporal-smoothing", (gdouble) s, "temporal-mode",
      HFAM_TEMPORAL_BLEND, "refine", HFAM_REFINE_NONE, NULL);
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

/* The default temporal-mode (compensated) with a frame that repeats (held), one
 * that changes (followed) and one with a camera's noise (held, the refined
 * detail too): libhfam's own temporal path, byte for byte, on both pads. */
GST_START_TEST (test_temporal_compensated)
{
  const gdouble s = 0.6;
  GstElement *element = make_element ();
  GstVideoInfo info;
  GstBuffer *frames[4];
  Engine engine;
  Rig rig;

  engine_open (&engine);
  g_object_set (element, "temporal-smoothing", s, NULL);
  video_info (&info, GST_VIDEO_FORMAT_RGBA, WIDTH, HEIGHT);
  frames[0] = make_frame (&info, 300);
  frames[1] = gst_buffer_copy_deep (frames[0]);
  frames[2] = make_frame (&info, 301);
  frames[3] = noisy_copy (frames[2]);
  rig_start (&rig, element, TRUE, TRUE);
  rig_set_format (&rig, &info);
  for (guint i = 0; i < 4; i++) {
    const HfamFrameParams params = {.long_side = INFERENCE_SIZE,
      .smoothing = i == 0 ? 0.0f : (float) s,.temporal = HFAM_TEMPORAL_COMPENSATED
    };
    Expected expected = { 0 };

    expect_with (&engine, &info, frames[i], &params, &expected);
    push_and_check_expected (&rig, frames[i], i, &expected, FALSE);
    expected_clear (&expected);
  }
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

TCase *
temporal_tcase (void)
{
  TCase *tc = tcase_create ("temporal");

  tcase_add_test (tc, test_inference_interval);
  tcase_add_test (tc, test_inference_interval_follows);
  tcase_add_test (tc, test_temporal_smoothing);
  tcase_add_test (tc, test_temporal_compensated);
  tcase_add_test (tc, test_reset_on_flush_segment_discont);
  tcase_add_test (tc, test_qos);
  tcase_add_test (tc, test_latency);
  tcase_add_test (tc, test_pipeline_depth_same_output);
  tcase_add_test (tc, test_pipeline_depth_held_frame);
  return tc;
}
