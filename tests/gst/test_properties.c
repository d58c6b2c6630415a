/* hfammatte's properties and start-up errors: the model (missing, corrupt,
 * the default one), precision, cuda-device-id, the backend on a machine
 * without a CUDA device, and going through the states again. */
#include "harness.h"

#include <glib/gstdio.h>
#include <gmodule.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* READY->PAUSED fails with an error that contains `needle`. */
static void
check_start_fails (GstElement * element, const gchar * needle)
{
  GstBus *bus = gst_bus_new ();

  gst_element_set_bus (element, bus);
  fail_unless_equals_int (gst_element_set_state (element, GST_STATE_PAUSED),
      GST_STATE_CHANGE_FAILURE);
  pop_message_naming (bus, GST_MESSAGE_ERROR, needle);

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

/* The model property's default is the default model's path (gst-inspect shows
 * it); NULL sets it back. $HFAMMATTE_DEFAULT_MODEL stands in for the installed
 * model. The example launch line works without a model. */
GST_START_TEST (test_default_model)
{
  GstElementFactory *factory = gst_element_factory_find ("hfammatte");
  GstElement *element;
  GParamSpec *pspec;
  gchar *path, *missing;

  fail_unless (factory != NULL);
  fail_unless (strstr (gst_element_factory_get_metadata (factory, "example"),
          "model=") == NULL);
  gst_object_unref (factory);

  missing = g_build_filename (g_get_tmp_dir (), "hfam-no-such-default.safetensors", NULL);
  g_setenv ("HFAMMATTE_DEFAULT_MODEL", missing, TRUE);
  element = gst_element_factory_make ("hfammatte", NULL);
  pspec = g_object_class_find_property (G_OBJECT_GET_CLASS (element), "model");
  fail_unless (g_str_has_suffix (G_PARAM_SPEC_STRING (pspec)->default_value,
          ".safetensors"));
  g_object_get (element, "model", &path, NULL);
  fail_unless_equals_string (path, missing);
  g_free (path);
  g_object_set (element, "model", model_path (), NULL);
  g_object_set (element, "model", NULL, NULL);
  g_object_get (element, "model", &path, NULL);
  fail_unless_equals_string (path, missing);
  g_free (path);
  check_start_fails (element, missing);

  g_setenv ("HFAMMATTE_DEFAULT_MODEL", g_getenv ("HFAM_TEST_MODEL"), TRUE);
  element = gst_element_factory_make ("hfammatte", NULL);
  fail_unless_equals_int (gst_element_set_state (element, GST_STATE_PAUSED),
      GST_STATE_CHANGE_SUCCESS);
  fail_unless_equals_int (gst_element_set_state (element, GST_STATE_NULL),
      GST_STATE_CHANGE_SUCCESS);
  g_unsetenv ("HFAMMATTE_DEFAULT_MODEL");
  gst_object_unref (element);
  g_free (missing);
}

GST_END_TEST;

/* precision: "default" unless set; on the CPU fp32 and fp16 compute fp32, and
 * default is libhfam's default (bf16 for this model, which has no activation
 * ranges, on a CPU with AVX512-BF16), so the matte is libhfam's in that. */
GST_START_TEST (test_precision)
{
  static const gchar *const nicks[] = { "fp32", "fp16", "default" };
  static const HfamPrecision computes[] = { HFAM_PRECISION_FP32,
    HFAM_PRECISION_FP32, HFAM_PRECISION_DEFAULT
  };
  GstVideoInfo info;

  video_info (&info, GST_VIDEO_FORMAT_RGBA, WIDTH, HEIGHT);
  for (guint k = 0; k < G_N_ELEMENTS (nicks); k++) {
    GstElement *element = make_element ();
    Expected expected = { 0 };
    GstBuffer *in, *out;
    GstMapInfo map;
    Engine engine;
    Rig rig;

    engine_open_at (&engine, computes[k]);
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
    engine_close (&engine);
  }
}

GST_END_TEST;

/* precision=int8 on the CPU with a model that has no activation ranges (the
 * tiny model has none): the start fails saying so. */
GST_START_TEST (test_precision_int8_without_ranges)
{
  GstElement *element = make_element ();

  gst_util_set_object_arg (G_OBJECT (element), "precision", "int8");
  check_start_fails (element, "no activation ranges");
}

GST_END_TEST;

/* precision=int8-bf16 needs the ranges as int8 does (checked before the CPU's bf16, so the
 * message is the same on every CPU). */
GST_START_TEST (test_precision_int8_bf16_without_ranges)
{
  GstElement *element = make_element ();

  gst_util_set_object_arg (G_OBJECT (element), "precision", "int8-bf16");
  check_start_fails (element, "no activation ranges");
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

GST_START_TEST (test_backend_cuda_fails)
{
  GstElement *element = make_element ();

  gst_util_set_object_arg (G_OBJECT (element), "backend", "cuda");
  check_start_fails (element, "cuda");
}

GST_END_TEST;

/* backend=auto where no CUDA device opens runs on the CPU. Without an NVIDIA
 * driver that is expected: said in the debug log, no warning. */
GST_START_TEST (test_backend_auto_falls_back)
{
  GModule *driver = g_module_open ("libcuda.so.1", G_MODULE_BIND_LAZY);
  GstElement *element = make_element ();
  GstBus *bus = gst_bus_new ();
  LogCapture capture;
  GstVideoInfo info;
  GstMessage *message;
  Engine engine;
  gchar *log;
  Rig rig;

  engine_open (&engine);
  gst_util_set_object_arg (G_OBJECT (element), "backend", "auto");
  gst_element_set_bus (element, bus);
  video_info (&info, GST_VIDEO_FORMAT_RGBA, WIDTH, HEIGHT);
  log_capture_start (&capture, GST_LEVEL_DEBUG);
  rig_start (&rig, element, TRUE, TRUE);
  log = log_capture_stop (&capture);
  message = gst_bus_pop_filtered (bus, GST_MESSAGE_WARNING);
  if (!driver) {
    fail_unless (message == NULL, "a warning without an NVIDIA driver");
    fail_unless (strstr (log, "running on the CPU") != NULL, "%s", log);
  }
  g_clear_pointer (&message, gst_message_unref);
  g_free (log);
  rig_set_format (&rig, &info);
  push_and_check (&rig, &engine, &info, make_frame (&info, 1), 0, FALSE);
  rig_stop (&rig);
  gst_bus_set_flushing (bus, TRUE);
  gst_object_unref (bus);
  engine_close (&engine);
  if (driver)
    g_module_close (driver);
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

TCase *
properties_tcase (void)
{
  TCase *tc = tcase_create ("properties");

  tcase_add_test (tc, test_missing_model);
  tcase_add_test (tc, test_corrupt_model);
  tcase_add_test (tc, test_default_model);
  tcase_add_test (tc, test_precision);
  tcase_add_test (tc, test_precision_int8_without_ranges);
  tcase_add_test (tc, test_precision_int8_bf16_without_ranges);
  tcase_add_test (tc, test_cuda_device_id);
  if (!cuda_device_opens_apart ()) {
    tcase_add_test (tc, test_backend_cuda_fails);
    tcase_add_test (tc, test_backend_auto_falls_back);
  }
  tcase_add_test (tc, test_restart);
  return tc;
}
