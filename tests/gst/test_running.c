/* hfammatte's properties while it runs: inference-size changes at pipeline
 * depth 1 and 2, the READY-only properties refusing changes, and
 * memory-budget, at the start and when inference-size grows past it. */
#include "harness.h"

#include <string.h>

/* inference-size changes while PLAYING: the frames in flight go out at the
 * size they ran at, the next ones at the new size, every frame in order and
 * none lost; at pipeline depth 1 and 2 (__i__ + 1). */
GST_START_TEST (test_inference_size_change)
{
  static const gint sizes[] = { INFERENCE_SIZE, INFERENCE_SIZE,
    2 * INFERENCE_SIZE, 2 * INFERENCE_SIZE, INFERENCE_SIZE
  };
  GstElement *element = make_element ();
  Expected expected[G_N_ELEMENTS (sizes)];
  GstVideoInfo info;
  Engine engine;
  Rig rig;

  engine_open (&engine);
  g_object_set (element, "pipeline-depth", __i__ + 1, NULL);
  video_info (&info, GST_VIDEO_FORMAT_RGBA, WIDTH, HEIGHT);
  rig_start (&rig, element, TRUE, TRUE);
  rig_set_format (&rig, &info);
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++) {
    GstBuffer *in = make_frame (&info, 700 + i);

    expect_at (&engine, &info, in, sizes[i], &expected[i]);
    g_object_set (element, "inference-size", sizes[i], NULL);
    fail_unless_equals_int (rig_push (&rig, in, i), GST_FLOW_OK);
  }
  fail_unless (gst_harness_push_event (rig.input, gst_event_new_eos ()));
  for (guint i = 0; i < G_N_ELEMENTS (sizes); i++) {
    GstBuffer *fill = gst_harness_pull (rig.fill);
    GstBuffer *key = gst_harness_pull (rig.key);

    fail_unless_equals_uint64 (GST_BUFFER_PTS (fill), i * FRAME_DURATION);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (key), i * FRAME_DURATION);
    check_fill (rig.fill, fill, &expected[i], expected[i].matte, FALSE);
    check_key (rig.key, key, expected[i].matte, 0);
    gst_buffer_unref (fill);
    gst_buffer_unref (key);
    expected_clear (&expected[i]);
  }
  fail_unless_equals_int (gst_harness_buffers_in_queue (rig.fill), 0);
  rig_stop (&rig);
  engine_close (&engine);
}

GST_END_TEST;

/* inference-size 0, the default, is auto: the engine's real-time size for the
 * element's backend and threads (a CPU context like the element's says which),
 * and reads back as 0. */
GST_START_TEST (test_inference_size_auto)
{
  GstElement *element = make_element ();
  GParamSpec *pspec =
      g_object_class_find_property (G_OBJECT_GET_CLASS (element),
      "inference-size");
  GstVideoInfo info;
  Expected expected;
  Engine engine;
  guint size;
  int auto_size;
  Rig rig;

  fail_unless_equals_int (G_PARAM_SPEC_UINT (pspec)->default_value, 0);
  engine_open (&engine);
  auto_size = hfam_context_auto_long_side (engine.ctx);
  fail_unless (auto_size != INFERENCE_SIZE);
  g_object_set (element, "inference-size", 0, NULL);
  video_info (&info, GST_VIDEO_FORMAT_RGBA, WIDTH, HEIGHT);
  rig_start (&rig, element, TRUE, TRUE);
  rig_set_format (&rig, &info);
  {
    GstBuffer *in = make_frame (&info, 900);
    GstBuffer *fill, *key;

    expect_at (&engine, &info, in, auto_size, &expected);
    fail_unless_equals_int (rig_push (&rig, in, 0), GST_FLOW_OK);
    fail_unless (gst_harness_push_event (rig.input, gst_event_new_eos ()));
    fill = gst_harness_pull (rig.fill);
    key = gst_harness_pull (rig.key);
    check_fill (rig.fill, fill, &expected, expected.matte, FALSE);
    check_key (rig.key, key, expected.matte, 0);
    gst_buffer_unref (fill);
    gst_buffer_unref (key);
    expected_clear (&expected);
  }
  g_object_get (element, "inference-size", &size, NULL);
  fail_unless_equals_int (size, 0);
  rig_stop (&rig);
  engine_close (&engine);
}

GST_END_TEST;

/* What going to PAUSED reads, and a value other than make_element's. */
static const struct
{
  const gchar *name;
  const gchar *other;
} ready_only[] = {
  {"model", "/nonexistent/hfammatte/other.safetensors"},
  {"backend", "auto"},
  {"cuda-device-id", "3"},
  {"n-threads", "2"},
  {"pipeline-depth", "2"},
  {"precision", "fp16"},
  {"memory-budget", "100"},
  {"max-batch", "3"},
  {"batch-timeout", "5000000"},
};

/* The READY-only properties say so, and in PLAYING refuse a change with a
 * warning naming them: the value in force stays and reads back. In NULL
 * they change again. */
GST_START_TEST (test_ready_only_properties)
{
  GstElement *element = make_element ();
  GValue before[G_N_ELEMENTS (ready_only)] = { G_VALUE_INIT };
  GParamSpec *pspecs[G_N_ELEMENTS (ready_only)];
  LogCapture capture;
  GstVideoInfo info;
  gchar *log;
  Rig rig;

  for (guint i = 0; i < G_N_ELEMENTS (ready_only); i++) {
    pspecs[i] = g_object_class_find_property (G_OBJECT_GET_CLASS (element),
        ready_only[i].name);
    fail_unless (pspecs[i] != NULL, "no property %s", ready_only[i].name);
    fail_unless (pspecs[i]->flags & GST_PARAM_MUTABLE_READY, "%s",
        ready_only[i].name);
    fail_unless (strstr (g_param_spec_get_blurb (pspecs[i]),
            "changeable only in NULL and READY") != NULL, "%s: '%s'",
        ready_only[i].name, g_param_spec_get_blurb (pspecs[i]));
  }

  video_info (&info, GST_VIDEO_FORMAT_RGBA, WIDTH, HEIGHT);
  rig_start (&rig, gst_object_ref (element), TRUE, FALSE);
  rig_set_format (&rig, &info);
  fail_unless_equals_int (rig_push (&rig, make_frame (&info, 1), 0),
      GST_FLOW_OK);
  gst_buffer_unref (gst_harness_pull (rig.fill));

  log_capture_start (&capture, GST_LEVEL_WARNING);
  for (guint i = 0; i < G_N_ELEMENTS (ready_only); i++) {
    GValue after = G_VALUE_INIT;

    g_value_init (&before[i], pspecs[i]->value_type);
    g_value_init (&after, pspecs[i]->value_type);
    g_object_get_property (G_OBJECT (element), ready_only[i].name, &before[i]);
    gst_util_set_object_arg (G_OBJECT (element), ready_only[i].name,
        ready_only[i].other);
    g_object_get_property (G_OBJECT (element), ready_only[i].name, &after);
    fail_unless (g_param_values_cmp (pspecs[i], &before[i], &after) == 0,
        "%s changed in PLAYING", ready_only[i].name);
    g_value_unset (&after);
  }
  log = log_capture_stop (&capture);
  for (guint i = 0; i < G_N_ELEMENTS (ready_only); i++) {
    gchar *quoted = g_strdup_printf ("'%s'", ready_only[i].name);

    fail_unless (strstr (log, quoted) != NULL, "no warning names %s in:\n%s",
        quoted, log);
    g_free (quoted);
  }
  g_free (log);

  /* still running as it was */
  fail_unless_equals_int (rig_push (&rig, make_frame (&info, 2), 1),
      GST_FLOW_OK);
  gst_buffer_unref (gst_harness_pull (rig.fill));
  rig_stop (&rig);

  for (guint i = 0; i < G_N_ELEMENTS (ready_only); i++) {
    GValue after = G_VALUE_INIT;

    g_value_init (&after, pspecs[i]->value_type);
    gst_util_set_object_arg (G_OBJECT (element), ready_only[i].name,
        ready_only[i].other);
    g_object_get_property (G_OBJECT (element), ready_only[i].name, &after);
    fail_if (g_param_values_cmp (pspecs[i], &before[i], &after) == 0,
        "%s did not change in NULL", ready_only[i].name);
    g_value_unset (&after);
    g_value_unset (&before[i]);
  }
  gst_object_unref (element);
}

GST_END_TEST;

/* A budget that a frame at INFERENCE_SIZE fits and OVER_BUDGET_SIZE does
 * not (its input tensor alone takes 29 MB). */
#define MEMORY_BUDGET_MIB 8
#define OVER_BUDGET_SIZE 2048

/* A first frame over memory-budget fails the stream with libhfam's message,
 * which names the budget. */
/* The model this element loaded, as its start logs it: "...: shared at 0x..."
 * or "...: a copy of its own at 0x...". */
static gchar *
start_and_name_model (Rig * rig, GstElement * element)
{
  LogCapture capture;
  gchar *log, *at, *model;

  log_capture_start (&capture, GST_LEVEL_INFO);
  rig_start (rig, element, TRUE, FALSE);
  log = log_capture_stop (&capture);
  at = strstr (log, " at 0x");
  fail_unless (at != NULL, "no model in the log: %s", log);
  model = g_strndup (at + 4, strcspn (at + 4, " \n"));
  g_free (log);
  return model;
}

/* share-model (the default) gives the elements naming one file one model, a
 * copy of its own with FALSE; all of them matte the same. */
GST_START_TEST (test_share_model)
{
  GstElement *elements[3] = { make_element (), make_element (),
    make_element ()
  };
  gchar *models[3];
  gboolean share;
  GstVideoInfo info;
  Engine engine;
  Rig rigs[3];

  g_object_get (elements[0], "share-model", &share, NULL);
  fail_unless (share);
  g_object_set (elements[2], "share-model", FALSE, NULL);
  engine_open (&engine);
  video_info (&info, GST_VIDEO_FORMAT_RGBA, WIDTH, HEIGHT);
  for (guint i = 0; i < 3; i++) {
    g_object_set (elements[i], "inference-size", INFERENCE_SIZE, NULL);
    models[i] = start_and_name_model (&rigs[i], elements[i]);
    rig_set_format (&rigs[i], &info);
  }
  fail_unless_equals_string (models[0], models[1]);
  fail_if (g_str_equal (models[0], models[2]));
  for (guint i = 0; i < 3; i++) {
    push_and_check (&rigs[i], &engine, &info, make_frame (&info, 950), 0,
        FALSE);
    rig_stop (&rigs[i]);
    g_free (models[i]);
  }
  engine_close (&engine);
}

GST_END_TEST;

/* max-batch: two elements on one model, fed by a thread each, run their frames
 * in one batch group (their start says so) and make the mattes they make
 * alone. (How the group batches is libhfam's test-batch's to check.) */
#define BATCHED_FRAMES 3

typedef struct
{
  Rig *rig;
  GstBuffer *frames[BATCHED_FRAMES];
  GstFlowReturn flows[BATCHED_FRAMES];
} Feeder;

static gpointer
feed (gpointer data)
{
  Feeder *feeder = data;

  for (guint i = 0; i < BATCHED_FRAMES; i++)
    feeder->flows[i] = rig_push (feeder->rig, feeder->frames[i], i);
  return NULL;
}

GST_START_TEST (test_max_batch)
{
  Expected expected[2][BATCHED_FRAMES];
  GThread *threads[2];
  Feeder feeders[2];
  GstVideoInfo info;
  LogCapture capture;
  gchar *log;
  guint max_batch;
  Engine engine;
  Rig rigs[2];

  engine_open (&engine);
  video_info (&info, GST_VIDEO_FORMAT_RGBA, WIDTH, HEIGHT);
  log_capture_start (&capture, GST_LEVEL_INFO);
  for (guint k = 0; k < 2; k++) {
    GstElement *element = make_element ();

    g_object_get (element, "max-batch", &max_batch, NULL);
    fail_unless_equals_int (max_batch, 1);
    g_object_set (element, "inference-size", INFERENCE_SIZE, "max-batch", 2,
        "batch-timeout", GST_SECOND, NULL);
    rig_start (&rigs[k], element, TRUE, FALSE);
    rig_set_format (&rigs[k], &info);
    feeders[k].rig = &rigs[k];
    for (guint i = 0; i < BATCHED_FRAMES; i++) {
      feeders[k].frames[i] = make_frame (&info, 40 * k + i);
      expect (&engine, &info, feeders[k].frames[i], &expected[k][i]);
    }
  }
  log = log_capture_stop (&capture);
  fail_unless (strstr (log, "batches of up to 2") != NULL, "%s", log);
  g_free (log);
  for (guint k = 0; k < 2; k++)
    threads[k] = g_thread_new ("feed", feed, &feeders[k]);
  for (guint k = 0; k < 2; k++) {
    g_thread_join (threads[k]);
    for (guint i = 0; i < BATCHED_FRAMES; i++) {
      GstBuffer *out;

      fail_unless_equals_int (feeders[k].flows[i], GST_FLOW_OK);
      out = gst_harness_pull (rigs[k].fill);
      check_fill (rigs[k].fill, out, &expected[k][i], expected[k][i].matte,
          FALSE);
      gst_buffer_unref (out);
      expected_clear (&expected[k][i]);
    }
    rig_stop (&rigs[k]);
  }
  engine_close (&engine);
}

GST_END_TEST;

GST_START_TEST (test_memory_budget_first_frame)
{
  GstElement *element = make_element ();
  GstBus *bus = gst_bus_new ();
  GstVideoInfo info;
  Rig rig;

  g_object_set (element, "memory-budget", (guint64) MEMORY_BUDGET_MIB,
      "inference-size", OVER_BUDGET_SIZE, NULL);
  gst_element_set_bus (element, bus);
  video_info (&info, GST_VIDEO_FORMAT_RGBA, WIDTH, HEIGHT);
  rig_start (&rig, element, TRUE, FALSE);
  rig_set_format (&rig, &info);
  fail_unless_equals_int (rig_push (&rig, make_frame (&info, 1), 0),
      GST_FLOW_ERROR);
  pop_message_naming (bus, GST_MESSAGE_ERROR, "budget");
  rig_stop (&rig);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
}

GST_END_TEST;

/* inference-size over memory-budget while PLAYING: the stream goes on at the
 * size in force, one warning says why, and the property goes back to that
 * size. */
GST_START_TEST (test_memory_budget_size_change)
{
  GstElement *element = make_element ();
  GstBus *bus = gst_bus_new ();
  GstVideoInfo info;
  guint size;
  Engine engine;
  Rig rig;

  engine_open (&engine);
  g_object_set (element, "memory-budget", (guint64) MEMORY_BUDGET_MIB, NULL);
  gst_element_set_bus (element, bus);
  video_info (&info, GST_VIDEO_FORMAT_RGBA, WIDTH, HEIGHT);
  rig_start (&rig, element, TRUE, TRUE);
  rig_set_format (&rig, &info);
  push_and_check (&rig, &engine, &info, make_frame (&info, 1), 0, FALSE);

  g_object_set (element, "inference-size", OVER_BUDGET_SIZE, NULL);
  push_and_check (&rig, &engine, &info, make_frame (&info, 2), 1, FALSE);
  pop_message_naming (bus, GST_MESSAGE_WARNING, "budget");
  g_object_get (element, "inference-size", &size, NULL);
  fail_unless_equals_int (size, INFERENCE_SIZE);

  /* one warning for one change */
  push_and_check (&rig, &engine, &info, make_frame (&info, 3), 2, FALSE);
  fail_unless (gst_bus_pop_filtered (bus,
          GST_MESSAGE_WARNING | GST_MESSAGE_ERROR) == NULL);
  rig_stop (&rig);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
  engine_close (&engine);
}

GST_END_TEST;

TCase *
running_tcase (void)
{
  TCase *tc = tcase_create ("running");

  tcase_add_loop_test (tc, test_inference_size_change, 0, 2);
  tcase_add_test (tc, test_inference_size_auto);
  tcase_add_test (tc, test_ready_only_properties);
  tcase_add_test (tc, test_share_model);
  tcase_add_test (tc, test_max_batch);
  tcase_add_test (tc, test_memory_budget_first_frame);
  tcase_add_test (tc, test_memory_budget_size_change);
  return tc;
}
