/* What hfammatte's outputs hold: the input's colour with libhfam's matte,
 * premultiplied or not, at odd sizes, of non-square pixels and of interlaced
 * fields, in the colour the input's colorimetry gives; the input's timestamps
 * and flags, and the events, on both pads. */
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

static float
largest_difference (const float *a, const float *b, gsize n)
{
  float largest = 0.0f;

  for (gsize i = 0; i < n; i++)
    largest = MAX (largest, fabsf (a[i] - b[i]));
  return largest;
}

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
    GstBuffer *frame;
    Expected shown = { 0 }, as_square = { 0 };
    float largest;
    Rig rig;

    g_object_set (element, "inference-size", 64, NULL);
    video_info (&info, GST_VIDEO_FORMAT_I420, 40, 40);
    GST_VIDEO_INFO_PAR_N (&info) = aspects[i][0];
    GST_VIDEO_INFO_PAR_D (&info) = aspects[i][1];
    frame = make_frame (&info, 11);
    rig_start (&rig, element, TRUE, TRUE);
    rig_set_format (&rig, &info);
    expect_at (&engine, &info, frame, 64, &shown);
    push_and_check_expected (&rig, gst_buffer_ref (frame), 0, &shown, FALSE);
    rig_stop (&rig);

    /* (so the checks above fail when the element ignores the aspect) */
    square = info;
    GST_VIDEO_INFO_PAR_N (&square) = GST_VIDEO_INFO_PAR_D (&square) = 1;
    expect_at (&engine, &square, frame, 64, &as_square);
    largest = largest_difference (shown.matte, as_square.matte, 40 * 40);
    fail_unless (largest > 2.0f / 255, "%g", largest);
    expected_clear (&as_square);
    expected_clear (&shown);
    gst_buffer_unref (frame);
  }
  engine_close (&engine);
}

GST_END_TEST;

/* libhfam's matte of each field of an interlaced RGBA frame (rows 0, 2, ... on
 * `top`, rows 1, 3, ... on `bottom`, each of pixels twice as tall) woven back
 * into `fields`, with the frame's own colour. */
static void
expect_fields (HfamContext * top, HfamContext * bottom, const GstVideoInfo * info,
    GstBuffer * frame, const HfamFrameParams * params, Expected * fields)
{
  const gint w = GST_VIDEO_INFO_WIDTH (info), h = GST_VIDEO_INFO_HEIGHT (info);
  HfamFrameParams field_params = *params;
  GstVideoFrame mapped;
  GError *error = NULL;

  field_params.pixel_aspect = 0.5f;
  fields->colour_info = *info;
  fields->colour = gst_buffer_ref (frame);
  fields->matte = g_new (float, w * h);
  fail_unless (gst_video_frame_map (&mapped, info, frame, GST_MAP_READ));
  for (gint f = 0; f < 2; f++) {
    const gint stride = GST_VIDEO_FRAME_PLANE_STRIDE (&mapped, 0);
    const HfamImage field = {.planes = {(guint8 *)
            GST_VIDEO_FRAME_PLANE_DATA (&mapped, 0) + f * stride},
      .strides = {2 * stride},.width = w,.height = (h + 1 - f) / 2,
      .format = HFAM_FORMAT_RGBA
    };
    const HfamImage matte = {.planes = {(guint8 *) (fields->matte + f * w)},
      .strides = {2 * w * sizeof (float)},.width = w,.height = field.height,
      .format = HFAM_FORMAT_GRAY32F
    };
    fail_unless (hfam_context_run (f ? bottom : top, &field, &field_params,
            &matte, 1, &error), "%s", error ? error->message : "");
  }
  gst_video_frame_unmap (&mapped);
}

/* Interlaced frames run field by field: each field a picture of its own, of
 * pixels twice as tall, the top fields on one context and the bottom ones on
 * another (each with its own temporal smoothing and kept matte), each field's
 * rows of the outputs from its own matte. */
GST_START_TEST (test_interlaced)
{
  const gdouble s = 0.6;
  GstElement *element = make_element ();
  Engine engine, woven_engine;
  HfamContext *bottom;
  HfamEdgeParams edges;
  GstVideoInfo info;
  GstBuffer *frames[3];
  Expected woven = { 0 };
  GError *error = NULL;
  Rig rig;

  engine_open (&engine);
  bottom = hfam_context_new_sibling (engine.ctx, &error);
  fail_unless (bottom != NULL, "%s", error ? error->message : "");
  element_default_edges (&edges);
  fail_unless (hfam_context_set_edges (bottom, &edges, NULL));
  g_object_set (element, "temporal-smoothing", s, NULL);
  /* (an odd height: the top field has a row more) */
  video_info (&info, GST_VIDEO_FORMAT_RGBA, 40, 41);
  GST_VIDEO_INFO_INTERLACE_MODE (&info) = GST_VIDEO_INTERLACE_MODE_INTERLEAVED;
  /* a still picture, then the same with a camera's noise: held, not replaced */
  frames[0] = make_frame (&info, 5);
  frames[1] = gst_buffer_copy_deep (frames[0]);
  frames[2] = noisy_copy (frames[0]);
  rig_start (&rig, element, TRUE, TRUE);
  rig_set_format (&rig, &info);
  for (guint i = 0; i < G_N_ELEMENTS (frames); i++) {
    const HfamFrameParams params = {.long_side = INFERENCE_SIZE,
      .smoothing = i == 0 ? 0.0f : (float) s,.temporal = HFAM_TEMPORAL_COMPENSATED
    };
    Expected fields = { 0 };

    expect_fields (engine.ctx, bottom, &info, frames[i], &params, &fields);
    if (i == 0) {
      /* (so the checks fail when the element runs the woven frame) */
      engine_open (&woven_engine);
      expect (&woven_engine, &info, frames[0], &woven);
      fail_unless (largest_difference (fields.matte, woven.matte,
              40 * 41) > 2.0f / 255);
      expected_clear (&woven);
      engine_close (&woven_engine);
    }
    push_and_check_expected (&rig, frames[i], i, &fields, FALSE);
    expected_clear (&fields);
  }
  rig_stop (&rig);
  hfam_context_free (bottom);
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
  tcase_add_test (tc, test_interlaced);
  tcase_add_test (tc, test_colorimetry);
  tcase_add_test (tc, test_timestamps_and_flags);
  tcase_add_test (tc, test_events_reach_both_pads);
  return tc;
}
