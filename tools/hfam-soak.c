/* hfam-soak: a long run of the hfammatte element (a benchmark, not a test). Frames from
 * videotestsrc go through hfammatte to a fakesink on each output while, every --every frames,
 * the run changes a property (inference-size, temporal-smoothing, inference-interval,
 * premultiplied), seeks with a flush, or takes the pipeline through PAUSED or READY and back to
 * PLAYING (where pipeline-depth, READY-only, changes too). It prints the resident memory at the
 * start, after the warm-up and at the end (with what malloc has handed out, the file pages and
 * the threads, to tell a leak from memory that malloc keeps), counts GLib warnings and
 * criticals and the bus's warnings and errors, and says PASS when the memory after the run is
 * within 5 MB of the memory after the warm-up and nothing was counted. The disturbances come
 * at fixed frame counts, so that the warm-up can end where the run does in their cycle.
 *
 *   OMP_WAIT_POLICY=passive build/tools/hfam-soak [--frames 20000] [--model FILE]
 *
 * (libgomp reads OMP_WAIT_POLICY when it loads, before main; its idle threads otherwise spin
 * and take the cores from the pipeline's.)
 * Uninstalled, it finds the element in the build tree, and the default model in the source
 * tree when none is installed. */
#include <gst/gst.h>
#include <hfam/hfam.h>

#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "proc-status.h"

#define RSS_BAR_BYTES 5000000    /* "within 5 MB" */

typedef struct {
  gint frames;                   /* through the src output so far, atomic */
  gint glib_warnings;            /* GLib warnings and criticals, atomic */
  guint bus_warnings, bus_errors;
} Soak;

static Soak soak;

/* Every GLib message still goes to stderr; warnings and criticals are counted. */
static GLogWriterOutput
count_glib_message (GLogLevelFlags level, const GLogField *fields, gsize n_fields,
                    gpointer user_data)
{
  if (level & (G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_ERROR))
    g_atomic_int_inc (&soak.glib_warnings);
  return g_log_writer_default (level, fields, n_fields, user_data);
}

static GstPadProbeReturn
count_frame (GstPad *pad, GstPadProbeInfo *info, gpointer user_data)
{
  g_atomic_int_inc (&soak.frames);
  return GST_PAD_PROBE_OK;
}

/* A number from /proc/self/status ("VmRSS:" in kB, "Threads:"); 0 where it says nothing. */
static guint64
proc_status (const char *field)
{
  return MAX (proc_status_now (field), 0);
}

/* The resident set of this process, in bytes. */
static guint64
resident_bytes (void)
{
  return proc_status ("VmRSS:") * 1024;
}

/* Counts what the bus holds; FALSE on an error (the run stops). */
static gboolean
drain_bus (GstBus *bus, GstClockTime wait)
{
  GstMessage *message;
  gboolean ok = TRUE;

  while ((message = gst_bus_timed_pop_filtered (bus, wait,
                                                GST_MESSAGE_WARNING | GST_MESSAGE_ERROR))) {
    GError *error = NULL;
    gchar *debug = NULL;

    if (GST_MESSAGE_TYPE (message) == GST_MESSAGE_ERROR) {
      gst_message_parse_error (message, &error, &debug);
      soak.bus_errors++;
      ok = FALSE;
    } else {
      gst_message_parse_warning (message, &error, &debug);
      soak.bus_warnings++;
    }
    g_printerr ("bus %s from %s: %s (%s)\n", GST_MESSAGE_TYPE_NAME (message),
                GST_OBJECT_NAME (GST_MESSAGE_SRC (message)), error->message,
                debug ? debug : "");
    g_error_free (error);
    g_free (debug);
    gst_message_unref (message);
    wait = 0;
  }
  return ok;
}

static gboolean
set_state (GstElement *pipeline, GstState state)
{
  if (gst_element_set_state (pipeline, state) == GST_STATE_CHANGE_FAILURE
      || gst_element_get_state (pipeline, NULL, NULL, 60 * GST_SECOND)
         != GST_STATE_CHANGE_SUCCESS) {
    g_printerr ("the pipeline did not reach %s\n", gst_element_state_get_name (state));
    return FALSE;
  }
  return TRUE;
}

/* The event-th disturbance of the run; FALSE when the pipeline fails it. */
static gboolean
disturb (GstElement *pipeline, GstElement *matte, guint event, guint inference_size)
{
  const guint round = event / 8;

  switch (event % 8) {
    case 0:
      g_object_set (matte, "inference-size", round % 2 ? inference_size : inference_size + 32,
                    NULL);
      return TRUE;
    case 1:
      g_object_set (matte, "temporal-smoothing", round % 2 ? 0.0 : 0.5, NULL);
      return TRUE;
    case 2:
      g_object_set (matte, "inference-interval", round % 2 ? 1 : 2, NULL);
      return TRUE;
    case 3:
      g_object_set (matte, "premultiplied", round % 2 == 0, NULL);
      return TRUE;
    case 4:
    case 6:
      return gst_element_seek_simple (pipeline, GST_FORMAT_TIME, GST_SEEK_FLAG_FLUSH,
                                      event % 8 == 4 ? 0 : 10 * GST_SECOND);
    case 5:
      return set_state (pipeline, GST_STATE_PAUSED) && set_state (pipeline, GST_STATE_PLAYING);
    default:
      if (!set_state (pipeline, GST_STATE_READY))
        return FALSE;
      g_object_set (matte, "pipeline-depth", round % 2 ? 1 : 2, NULL);
      return set_state (pipeline, GST_STATE_PLAYING);
  }
}

/* What malloc has handed out and not had back: flat while the RSS grows means memory that
 * malloc keeps (fragments, arenas), not a leak. */
static double
malloc_in_use_mb (void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
  const struct mallinfo2 info = mallinfo2 ();

  return (info.uordblks + info.hblkhd) / 1e6;
#else
  return 0.0;
#endif
}

static void
print_rss (const char *when, guint frames, guint64 rss)
{
  g_print ("RSS %-8s after %6u frames: %8.1f MB (malloc in use %.1f MB)\n", when, frames,
           rss / 1e6, malloc_in_use_mb ());
}

int
main (int argc, char **argv)
{
  gint n_frames = 20000, warm_up = 2400, every = 100, inference_size = 64, n_threads = 0;
  g_autofree gchar *model = NULL, *backend = NULL, *launch = NULL;
  const GOptionEntry entries[] = {
    {"frames", 0, 0, G_OPTION_ARG_INT, &n_frames, "Frames in all (20000)", "N"},
    {"warm-up", 0, 0, G_OPTION_ARG_INT, &warm_up,
     "Frames before the reference RSS (2400: 3 rounds of the 8 disturbances, which leaves the "
     "pipeline as it is after 20000 frames)", "N"},
    {"every", 0, 0, G_OPTION_ARG_INT, &every, "Frames between disturbances (100)", "N"},
    {"inference-size", 0, 0, G_OPTION_ARG_INT, &inference_size,
     "Inference size; every other change adds 32 (64)", "PIXELS"},
    {"n-threads", 0, 0, G_OPTION_ARG_INT, &n_threads, "The element's threads (0: one per core)",
     "N"},
    {"model", 0, 0, G_OPTION_ARG_FILENAME, &model, "Weight file (the default model)", "FILE"},
    {"backend", 0, 0, G_OPTION_ARG_STRING, &backend, "auto, cpu or cuda (cpu)", "NAME"},
    { NULL, 0, 0, 0, NULL, NULL, NULL },
  };
  g_autoptr (GOptionContext) options = g_option_context_new ("- hfammatte soak benchmark");
  GError *error = NULL;
  GstElement *pipeline, *matte, *sink;
  GstPad *pad;
  GstBus *bus;
  guint64 rss_start, rss_warm = 0, rss_end;
  guint next_event, next_report, event = 0, frames = 0;
  gboolean ok = TRUE, pass;
  gint64 started;

  g_log_set_writer_func (count_glib_message, NULL, NULL);
  g_option_context_add_main_entries (options, entries, NULL);
  g_option_context_add_group (options, gst_init_get_option_group ());
  if (!g_option_context_parse (options, &argc, &argv, &error)) {
    g_printerr ("hfam-soak: %s\n", error->message);
    return 2;
  }
  if (n_frames < 1 || warm_up < 1 || warm_up >= n_frames || every < 1 || inference_size < 32
      || inference_size > 4096 - 32 || n_threads < 0) {
    g_printerr ("hfam-soak: want 0 < warm-up < frames, every > 0, 32 <= inference-size <= "
                "4064 and n-threads >= 0\n");
    return 2;
  }
#ifdef HFAM_GST_PLUGIN_DIR
  if (!gst_registry_check_feature_version (gst_registry_get (), "hfammatte", 1, 0, 0))
    gst_registry_scan_path (gst_registry_get (), HFAM_GST_PLUGIN_DIR);
#endif
  if (!model)
    model = g_strdup (hfam_default_model_path ());
#ifdef HFAM_SOURCE_DIR
  if (!g_file_test (model, G_FILE_TEST_EXISTS)) {
    g_free (model);
    model = g_build_filename (HFAM_SOURCE_DIR, "model", "default", "default.safetensors", NULL);
  }
#endif

  launch = g_strdup_printf (
      "videotestsrc pattern=ball is-live=false ! video/x-raw,width=320,height=240,framerate=30/1 "
      "! hfammatte name=matte backend=%s inference-size=%d n-threads=%d "
      "matte.src ! queue ! fakesink name=fill sync=false "
      "matte.alpha ! queue ! fakesink sync=false",
      backend ? backend : "cpu", inference_size, n_threads);
  pipeline = gst_parse_launch (launch, &error);
  if (!pipeline) {
    g_printerr ("hfam-soak: %s (is hfammatte on GST_PLUGIN_PATH?)\n", error->message);
    return 2;
  }
  matte = gst_bin_get_by_name (GST_BIN (pipeline), "matte");
  g_object_set (matte, "model", model, NULL);
  sink = gst_bin_get_by_name (GST_BIN (pipeline), "fill");
  pad = gst_element_get_static_pad (sink, "sink");
  gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER, count_frame, NULL, NULL);
  gst_object_unref (pad);
  gst_object_unref (sink);
  bus = gst_element_get_bus (pipeline);

  g_print ("hfam-soak: %d frames of 320x240, model %s, inference-size %d (+32 every other "
           "change), a disturbance every %d frames\n", n_frames, model, inference_size, every);
  started = g_get_monotonic_time ();
  ok = set_state (pipeline, GST_STATE_PLAYING);
  rss_start = resident_bytes ();
  print_rss ("start", 0, rss_start);
  next_event = every;
  next_report = 2000;
  while (ok && frames < (guint) n_frames) {
    ok = drain_bus (bus, 5 * GST_MSECOND);
    frames = g_atomic_int_get (&soak.frames);
    if (!rss_warm && frames >= (guint) warm_up) {
      rss_warm = resident_bytes ();
      print_rss ("warm-up", frames, rss_warm);
    }
    if (ok && frames >= next_event && frames < (guint) n_frames) {
      ok = disturb (pipeline, matte, event++, inference_size);
      next_event += every;
    }
    if (frames >= next_report) {
      g_print ("    %6u frames, RSS %.1f MB (malloc in use %.1f MB, file %.1f MB, %u threads)\n",
               frames, resident_bytes () / 1e6, malloc_in_use_mb (),
               proc_status ("RssFile:") / 1e3, (guint) proc_status ("Threads:"));
      next_report += 2000;
    }
  }
  rss_end = resident_bytes ();
  print_rss ("end", frames, rss_end);
  set_state (pipeline, GST_STATE_NULL);
  drain_bus (bus, 0);
  gst_object_unref (bus);
  gst_object_unref (matte);
  gst_object_unref (pipeline);

  g_print ("%u frames in %.0f s, %u disturbances; GLib warnings/criticals: %d, bus warnings: "
           "%u, bus errors: %u\n", frames, (g_get_monotonic_time () - started) / 1e6, event,
           g_atomic_int_get (&soak.glib_warnings), soak.bus_warnings, soak.bus_errors);
  pass = ok && frames >= (guint) n_frames && rss_warm > 0
         && (rss_end > rss_warm ? rss_end - rss_warm : rss_warm - rss_end) <= RSS_BAR_BYTES
         && g_atomic_int_get (&soak.glib_warnings) == 0 && soak.bus_warnings == 0
         && soak.bus_errors == 0;
  g_print ("%s: RSS after %u frames %+.2f MB from after the warm-up (bar: within 5 MB), "
           "%u warnings or criticals (bar: none)\n", pass ? "PASS" : "FAIL", frames,
           ((double) rss_end - (double) rss_warm) / 1e6,
           g_atomic_int_get (&soak.glib_warnings) + soak.bus_warnings + soak.bus_errors);
  return pass ? 0 : 1;
}
