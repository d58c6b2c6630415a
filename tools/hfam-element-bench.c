/* hfam-element-bench: frames through the hfammatte element as a pipeline feeds it, timed end to
 * end (a benchmark, not a test; not installed). Frames of --size in --format, in system memory
 * or (--memory cuda) in CUDA memory from gstcuda's own buffer pool, are pushed one after
 * another into the element; its `src` pad gives RGBA in the same memory. It prints frames/s
 * over the timed frames and the latency of each (push to output, median and 90th percentile;
 * at pipeline-depth 2 the output of a frame leaves during the next frame's push, so that
 * latency is an upper bound). --check N then compares the alpha of N frames with what the CPU
 * element (fp32, system memory) makes of the same frames.
 *
 *   OMP_WAIT_POLICY=passive build/tools/hfam-element-bench [--memory system|cuda]
 *       [--format I420|NV12|RGBA] [--size 1920x1080] [--frames 100] [--warmup 10]
 *       [--check N] [--streams N] [--set PROPERTY=VALUE ...]
 *
 * --streams N runs N elements at once (the same settings, so by default one shared model),
 * each fed the frames by a thread of its own, as N cameras would; it prints the frames/s of
 * all of them together (N x frames over the longest stream's time), each stream's latency,
 * and the process's peak host memory. Run it again with --set share-model=false for N
 * independent elements.
 * --set sets any property of the element (model, inference-size, pipeline-depth, precision,
 * n-threads, refine, ...); with --memory cuda, backend=cuda is set first. Exit status: 0, 1 on
 * an error or a failed check, 77 when --memory cuda finds no CUDA device.
 * Uninstalled, it finds the element in the build tree and the default model in the source
 * tree. */
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <hfam/hfam.h>

#ifdef HFAM_HAVE_GST_CUDA
#include <gst/cuda/gstcudabufferpool.h>
#include <gst/cuda/gstcudacontext.h>
#include <gst/cuda/gstcudaloader.h>
#include <gst/cuda/gstcudamemory.h>
#include <gst/cuda/gstcudautils.h>
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "median.h"
#include "proc-status.h"

#define N_DISTINCT_FRAMES 8
#define SKIP 77

static gchar *memory_name = "system", *format_name = "I420", *size_name = "1920x1080";
static gint n_frames = 100, n_warmup = 10, n_check = 0, n_streams = 1;
static gchar **settings;

static GOptionEntry entries[] = {
  { "memory", 0, 0, G_OPTION_ARG_STRING, &memory_name, "system or cuda", "MEMORY" },
  { "format", 0, 0, G_OPTION_ARG_STRING, &format_name, "input format: I420, NV12 or RGBA",
    "FORMAT" },
  { "size", 0, 0, G_OPTION_ARG_STRING, &size_name, "frame size (default 1920x1080)", "WxH" },
  { "frames", 0, 0, G_OPTION_ARG_INT, &n_frames, "timed frames (default 100)", "N" },
  { "warmup", 0, 0, G_OPTION_ARG_INT, &n_warmup, "frames before timing (default 10)", "N" },
  { "check", 0, 0, G_OPTION_ARG_INT, &n_check,
    "compare N frames' alpha with the CPU element's (default 0)", "N" },
  { "streams", 0, 0, G_OPTION_ARG_INT, &n_streams,
    "elements run at once, each fed by a thread of its own (default 1)", "N" },
  { "set", 0, 0, G_OPTION_ARG_STRING_ARRAY, &settings, "an element property", "NAME=VALUE" },
  { NULL }
};

/* A picture that changes from frame to frame: a gradient and a bright disc that moves. */
static GstBuffer *
make_frame (const GstVideoInfo *info, guint index)
{
  GstVideoInfo rgba_info;
  GstVideoConverter *convert;
  GstVideoFrame src, dst;
  GstBuffer *rgba, *out;
  const gint w = GST_VIDEO_INFO_WIDTH (info), h = GST_VIDEO_INFO_HEIGHT (info);
  const double cx = w * (0.3 + 0.05 * index), cy = h * 0.5, r = h * 0.3;

  gst_video_info_set_format (&rgba_info, GST_VIDEO_FORMAT_RGBA, w, h);
  rgba = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (&rgba_info), NULL);
  gst_video_frame_map (&src, &rgba_info, rgba, GST_MAP_WRITE);
  for (gint y = 0; y < h; y++) {
    guint8 *row = (guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&src, 0)
                  + (gsize) y * GST_VIDEO_FRAME_PLANE_STRIDE (&src, 0);
    for (gint x = 0; x < w; x++) {
      const gboolean inside = hypot (x - cx, y - cy) < r;
      row[4 * x] = inside ? 230 : (guint8) (255 * x / w);
      row[4 * x + 1] = inside ? 190 : (guint8) (255 * y / h);
      row[4 * x + 2] = inside ? 160 : 90;
      row[4 * x + 3] = 255;
    }
  }
  out = gst_buffer_new_allocate (NULL, GST_VIDEO_INFO_SIZE (info), NULL);
  gst_video_frame_map (&dst, info, out, GST_MAP_WRITE);
  convert = gst_video_converter_new (&rgba_info, (GstVideoInfo *) info, NULL);
  gst_video_converter_frame (convert, &src, &dst);
  gst_video_converter_free (convert);
  gst_video_frame_unmap (&dst);
  gst_video_frame_unmap (&src);
  gst_buffer_unref (rgba);
  return out;
}

/* What the element runs with and on. */
typedef struct {
  GstVideoInfo info;
  gboolean cuda;
#ifdef HFAM_HAVE_GST_CUDA
  GstCudaContext *cuda_context;
  GstBufferPool *pool;
#endif
} Input;

static gboolean
parse_size (const char *text, gint *w, gint *h)
{
  return sscanf (text, "%dx%d", w, h) == 2 && *w > 0 && *h > 0;
}

#ifdef HFAM_HAVE_GST_CUDA
/* The CUDA context and a pool of the input's caps in CUDA memory; FALSE without a device. */
static gboolean
open_cuda (Input *input, GstCaps *caps)
{
  GstStructure *config;

  if (!gst_cuda_load_library ())
    return FALSE;
  gst_cuda_memory_init_once ();
  input->cuda_context = gst_cuda_context_new (0);
  if (!input->cuda_context)
    return FALSE;
  input->pool = gst_cuda_buffer_pool_new (input->cuda_context);
  config = gst_buffer_pool_get_config (input->pool);
  gst_buffer_pool_config_set_params (config, caps, GST_VIDEO_INFO_SIZE (&input->info), 0, 0);
  return gst_buffer_pool_set_config (input->pool, config)
         && gst_buffer_pool_set_active (input->pool, TRUE);
}

/* `frame` copied into a buffer of the CUDA pool (gstcuda 1.22 uploads it at the first
 * GST_MAP_CUDA map, the element's); NULL when that fails. */
static GstBuffer *
upload (Input *input, GstBuffer *frame)
{
  GstVideoFrame src, dst;
  GstBuffer *buffer = NULL;
  gboolean copied;

  if (gst_buffer_pool_acquire_buffer (input->pool, &buffer, NULL) != GST_FLOW_OK)
    return NULL;
  if (!gst_video_frame_map (&src, &input->info, frame, GST_MAP_READ)) {
    gst_buffer_unref (buffer);
    return NULL;
  }
  if (!gst_video_frame_map (&dst, &input->info, buffer, GST_MAP_WRITE)) {
    gst_video_frame_unmap (&src);
    gst_buffer_unref (buffer);
    return NULL;
  }
  copied = gst_video_frame_copy (&dst, &src);
  gst_video_frame_unmap (&dst);
  gst_video_frame_unmap (&src);
  if (!copied)
    gst_clear_buffer (&buffer);
  return buffer;
}

/* Whether the element in `h` runs on the input's CUDA context, saying so when not: on another
 * one its frames would go through system memory, and the figures would not be the device
 * path's. */
static gboolean
on_input_context (const Input *input, GstHarness *h)
{
  GstQuery *query = gst_query_new_context (GST_CUDA_CONTEXT_TYPE);
  GstPad *pad = gst_element_get_static_pad (h->element, "sink");
  GstCudaContext *found = NULL;
  GstContext *context = NULL;
  gboolean same = FALSE;

  if (gst_pad_query (pad, query)) {
    gst_query_parse_context (query, &context);
    if (context && gst_structure_get (gst_context_get_structure (context),
                                      GST_CUDA_CONTEXT_TYPE, GST_TYPE_CUDA_CONTEXT, &found,
                                      NULL)) {
      same = gst_cuda_context_get_handle (found)
             == gst_cuda_context_get_handle (input->cuda_context);
      gst_object_unref (found);
    }
  }
  gst_query_unref (query);
  gst_object_unref (pad);
  if (!same)
    g_printerr ("hfammatte does not run on the input's CUDA context: its frames would go "
                "through system memory\n");
  return same;
}
#endif

static GstCaps *
input_caps (const Input *input)
{
  GstCaps *caps = gst_video_info_to_caps (&input->info);

  if (input->cuda)
    gst_caps_set_features (caps, 0, gst_caps_features_new ("memory:CUDAMemory", NULL));
  return caps;
}

/* NAME=VALUE settings on the element; FALSE (saying which) for one it does not have. */
static gboolean
apply_settings (GstElement *element, const char *const *list)
{
  for (const char *const *s = list; s && *s; s++) {
    g_auto (GStrv) kv = g_strsplit (*s, "=", 2);

    if (!kv[0] || !kv[1]
        || !g_object_class_find_property (G_OBJECT_GET_CLASS (element), kv[0])) {
      g_printerr ("--set %s: not PROPERTY=VALUE of hfammatte\n", *s);
      return FALSE;
    }
    gst_util_set_object_arg (G_OBJECT (element), kv[0], kv[1]);
  }
  return TRUE;
}

/* Whether the element starts (READY -> PAUSED opens the model and the backend), saying why
 * not: the harness would abort on a failed state change instead. */
static gboolean
element_starts (GstElement *element)
{
  GstBus *bus = gst_bus_new ();
  GstMessage *message;
  gboolean started;

  gst_element_set_bus (element, bus);
  started = gst_element_set_state (element, GST_STATE_PAUSED) != GST_STATE_CHANGE_FAILURE;
  if (!started && (message = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR))) {
    g_autoptr (GError) error = NULL;
    g_autofree gchar *debug = NULL;

    gst_message_parse_error (message, &error, &debug);
    g_printerr ("hfammatte does not start: %s\n%s\n", error->message, debug ? debug : "");
    gst_message_unref (message);
  } else if (!started) {
    g_printerr ("hfammatte does not start\n");
  }
  gst_element_set_state (element, GST_STATE_NULL);
  gst_element_set_bus (element, NULL);
  gst_object_unref (bus);
  return started;
}

/* The element with --set's properties, then `extra`'s (on CUDA the backend first); not
 * started. */
static GstElement *
configured_element (gboolean cuda, const char *const *extra)
{
  GstElement *element = gst_element_factory_make ("hfammatte", NULL);

  if (!element) {
    g_printerr ("no element hfammatte (GST_PLUGIN_PATH?)\n");
    return NULL;
  }
  if (cuda)
    gst_util_set_object_arg (G_OBJECT (element), "backend", "cuda");
  if (!apply_settings (element, (const char *const *) settings)
      || !apply_settings (element, extra))
    gst_clear_object (&element);
  return element;
}

/* The configured element (on CUDA with the input's context too), in a harness from its sink
 * pad to its src pad. */
static GstHarness *
start_element (const Input *input, gboolean cuda, const char *const *extra)
{
  GstElement *element = configured_element (cuda, extra);
  GstHarness *h;
  GstCaps *caps;

  if (!element)
    return NULL;
#ifdef HFAM_HAVE_GST_CUDA
  if (cuda) {
    GstContext *context = gst_context_new_cuda_context (input->cuda_context);
    gst_element_set_context (element, context);
    gst_context_unref (context);
  }
#endif
  if (!element_starts (element)) {
    gst_object_unref (element);
    return NULL;
  }
  h = gst_harness_new_with_element (element, "sink", "src");
  gst_object_unref (element);
  caps = input_caps (input);
  gst_harness_set_src_caps (h, caps);
  gst_harness_set_sink_caps_str (h, cuda ? "video/x-raw(memory:CUDAMemory),format=RGBA"
                                          : "video/x-raw,format=RGBA");
#ifdef HFAM_HAVE_GST_CUDA
  if (cuda && input->cuda && !on_input_context (input, h)) {
    gst_harness_teardown (h);
    return NULL;
  }
#endif
  return h;
}

static GstBuffer *
stamped (GstBuffer *frame, guint index)
{
  GstBuffer *buffer = gst_buffer_copy (frame);  /* shares the memory */

  GST_BUFFER_PTS (buffer) = index * (GST_SECOND / 30);
  GST_BUFFER_DURATION (buffer) = GST_SECOND / 30;
  return buffer;
}

/* The alpha of an RGBA output (downloaded from CUDA memory by the map). */
static guint8 *
alpha_of (GstBuffer *buffer, gint w, gint h)
{
  GstVideoInfo info;
  GstVideoFrame frame;
  guint8 *alpha = g_malloc ((gsize) w * h);

  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_RGBA, w, h);
  if (!gst_video_frame_map (&frame, &info, buffer, GST_MAP_READ)) {
    g_free (alpha);
    return NULL;
  }
  for (gint y = 0; y < h; y++) {
    const guint8 *row = (const guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&frame, 0)
                        + (gsize) y * GST_VIDEO_FRAME_PLANE_STRIDE (&frame, 0);
    for (gint x = 0; x < w; x++)
      alpha[(gsize) y * w + x] = row[4 * x + 3];
  }
  gst_video_frame_unmap (&frame);
  return alpha;
}

/* Pushes `warmup` + `n` frames (cycling through `frames`), then EOS for the frames still
 * held; keeps the outputs' alpha when `alphas` is given (n of them, warm-up none), and the
 * time from each timed frame's push to its output in `latency_ms` when given. Returns the
 * seconds from the first timed push to the last output, or -1 on a flow error. */
static double
run_frames (GstHarness *h, GstBuffer **frames, gint warmup, gint n, const GstVideoInfo *info,
            guint8 **alphas, double *latency_ms)
{
  const gint total = warmup + n;
  gint64 *pushed = g_new (gint64, total);
  gint64 end = 0;
  gint out = 0;

  for (gint i = 0; i <= total; i++) {
    GstBuffer *output;

    if (i < total) {
      pushed[i] = g_get_monotonic_time ();
      if (gst_harness_push (h, stamped (frames[i % N_DISTINCT_FRAMES], i)) != GST_FLOW_OK) {
        g_free (pushed);
        return -1.0;
      }
    } else {
      gst_harness_push_event (h, gst_event_new_eos ());
    }
    while (out < total && (output = gst_harness_try_pull (h))) {
      if (out >= warmup && alphas)
        alphas[out - warmup] = alpha_of (output, GST_VIDEO_INFO_WIDTH (info),
                                         GST_VIDEO_INFO_HEIGHT (info));
      /* the last output read back: the device's work is done before the clock stops */
      if (out == total - 1 && !alphas)
        g_free (alpha_of (output, GST_VIDEO_INFO_WIDTH (info), GST_VIDEO_INFO_HEIGHT (info)));
      end = g_get_monotonic_time ();
      if (out >= warmup && latency_ms)
        latency_ms[out - warmup] = (end - pushed[out]) / 1000.0;
      gst_buffer_unref (output);
      out++;
    }
  }
  end = out == total ? end - pushed[warmup] : -1;
  g_free (pushed);
  return end < 0 ? -1.0 : end / 1e6;
}

/* The alpha of `n` frames through an element; NULL on an error. */
static guint8 **
alphas_of_run (const Input *input, gboolean cuda, GstBuffer **frames, gint n,
               const char *const *extra)
{
  GstHarness *h = start_element (input, cuda, extra);
  guint8 **alphas = g_new0 (guint8 *, n);

  if (!h || run_frames (h, frames, 0, n, &input->info, alphas, NULL) < 0) {
    for (gint i = 0; i < n; i++)
      g_free (alphas[i]);
    g_clear_pointer (&alphas, g_free);
  }
  if (h)
    gst_harness_teardown (h);
  return alphas;
}

/* One of --streams' elements, run by a thread of its own. */
typedef struct {
  GstHarness *h;
  GstBuffer **frames;
  const GstVideoInfo *info;
  double seconds;
  double *latency_ms;
} Stream;

static gpointer
stream_main (gpointer data)
{
  Stream *stream = data;

  stream->seconds = run_frames (stream->h, stream->frames, n_warmup, n_frames, stream->info,
                                NULL, stream->latency_ms);
  return NULL;
}

/* The process's peak resident memory in MiB (VmHWM), or -1. */
static double
peak_host_mib (void)
{
  const gint64 kb = proc_status_now ("VmHWM:");
  return kb < 0 ? -1 : kb / 1024.0;
}

/* --streams: n_streams elements started one after another, then fed at once. */
static gboolean
run_streams (const Input *input, GstBuffer **frames)
{
  Stream *streams = g_new0 (Stream, n_streams);
  GThread **threads = g_new0 (GThread *, n_streams);
  double longest = 0, started_mib;
  gboolean ok = TRUE;

  for (gint i = 0; i < n_streams && ok; i++) {
    streams[i] = (Stream) { .frames = frames, .info = &input->info,
                            .latency_ms = g_new (double, n_frames) };
    ok = (streams[i].h = start_element (input, input->cuda, NULL)) != NULL;
  }
  started_mib = peak_host_mib ();
  for (gint i = 0; i < n_streams && ok; i++)
    threads[i] = g_thread_new ("stream", stream_main, &streams[i]);
  /* every thread joined before any harness goes */
  for (gint i = 0; i < n_streams; i++) {
    if (!threads[i])
      continue;
    g_thread_join (threads[i]);
    if (streams[i].seconds < 0)
      ok = FALSE;
    longest = MAX (longest, streams[i].seconds);
  }
  if (!ok)
    g_printerr ("an element failed (run with GST_DEBUG=hfammatte:4)\n");
  else {
    g_print ("%d streams of %s %dx%d in %s memory, %d frames each after %d:\n", n_streams,
             format_name, GST_VIDEO_INFO_WIDTH (&input->info),
             GST_VIDEO_INFO_HEIGHT (&input->info), memory_name, n_frames, n_warmup);
    g_print ("frames/s all streams %.1f\n", n_streams * n_frames / longest);
    for (gint i = 0; i < n_streams; i++)
      g_print ("stream %d: frames/s %.1f, latency ms median %.2f, 90th percentile %.2f\n", i,
               n_frames / streams[i].seconds, median (streams[i].latency_ms, n_frames),
               percentile (streams[i].latency_ms, n_frames, 0.9));
    g_print ("host memory peak MiB: %.0f once started, %.0f after the run\n", started_mib,
             peak_host_mib ());
  }
  for (gint i = 0; i < n_streams; i++) {
    if (streams[i].h)
      gst_harness_teardown (streams[i].h);
    g_free (streams[i].latency_ms);
  }
  g_free (threads);
  g_free (streams);
  return ok;
}

/* The inference size both elements of the check run at: --set's, else the model's own (auto
 * would give the CPU element a smaller one). NULL when the model does not load. */
static gchar *
check_size_setting (void)
{
  GstElement *element = configured_element (FALSE, NULL);
  g_autofree gchar *model_path = NULL;
  g_autoptr (GError) error = NULL;
  HfamModel *model;
  guint size;

  if (!element)
    return NULL;
  g_object_get (element, "model", &model_path, "inference-size", &size, NULL);
  gst_object_unref (element);
  if (size > 0)
    return g_strdup_printf ("inference-size=%u", size);
  model = hfam_model_load (model_path, &error);
  if (!model) {
    g_printerr ("check: %s\n", error->message);
    return NULL;
  }
  size = hfam_model_inference_size (model);
  hfam_model_free (model);
  return g_strdup_printf ("inference-size=%u", size);
}

/* The element's alpha (fp32 where it computes fp16) against the CPU element's on the same
 * frames, at the same inference size: fails when the mean difference exceeds one level or
 * fewer than 99 % of the pixels are within two (a class near-tie may flip a few; wrong
 * planes or strides show far above), and when less than 1 % of the CPU's alpha is soft
 * (1..254): a trained model sees nobody in these frames, so its alpha of 0 everywhere would
 * pass whatever the device did (check with random weights). */
static gboolean
check_against_cpu (const Input *input, GstBuffer **host_frames, GstBuffer **frames)
{
  g_autofree gchar *size = check_size_setting ();
  const char *const cpu[] = { "backend=cpu", "precision=fp32", size, NULL };
  const char *const fp32[] = { "precision=fp32", size, NULL };
  Input host_input = *input;
  guint8 **want, **got;
  const gsize n_pixels = (gsize) GST_VIDEO_INFO_WIDTH (&input->info)
                         * GST_VIDEO_INFO_HEIGHT (&input->info);
  gboolean ok = TRUE;

  if (!size)
    return FALSE;
  host_input.cuda = FALSE;
  want = alphas_of_run (&host_input, FALSE, host_frames, n_check, cpu);
  got = alphas_of_run (input, input->cuda, frames, n_check, fp32);
  ok = want && got;
  for (gint i = 0; ok && i < n_check; i++)
    ok = want[i] && got[i];  /* (an output that did not map) */
  if (!ok)
    g_printerr ("check: a run failed\n");
  for (gint i = 0; ok && i < n_check; i++) {
    double sum = 0.0;
    gsize near = 0, soft = 0;

    for (gsize p = 0; p < n_pixels; p++) {
      const gint d = abs ((gint) want[i][p] - (gint) got[i][p]);
      sum += d;
      near += d <= 2;
      soft += want[i][p] > 0 && want[i][p] < 255;
    }
    g_print ("check frame %d: alpha against the CPU element's: mean %.3f levels, %.2f %% "
             "within 2; soft (1..254) on %.2f %% of the CPU's\n", i, sum / n_pixels,
             100.0 * near / n_pixels, 100.0 * soft / n_pixels);
    ok = sum / n_pixels <= 1.0 && near >= 0.99 * n_pixels && soft >= 0.01 * n_pixels;
  }
  for (gint i = 0; i < n_check; i++) {
    if (want)
      g_free (want[i]);
    if (got)
      g_free (got[i]);
  }
  g_free (want);
  g_free (got);
  return ok;
}

int
main (int argc, char **argv)
{
  g_autoptr (GOptionContext) options = g_option_context_new ("- time the hfammatte element");
  g_autoptr (GError) error = NULL;
  GstBuffer *host_frames[N_DISTINCT_FRAMES], *frames[N_DISTINCT_FRAMES];
  GstVideoFormat format;
  Input input = { 0 };
  GstHarness *h;
  double *latency, seconds;
  gint w, h_px;
  int status = 0;

#ifdef HFAM_GST_PLUGIN_DIR
  if (!g_getenv ("GST_PLUGIN_PATH"))
    g_setenv ("GST_PLUGIN_PATH", HFAM_GST_PLUGIN_DIR, TRUE);
#endif
  /* uninstalled: the element's default model from the source tree */
  if (!g_file_test (hfam_default_model_path (), G_FILE_TEST_EXISTS))
    g_setenv ("HFAMMATTE_DEFAULT_MODEL", HFAM_SOURCE_DIR "/model/default/default.safetensors",
              FALSE);
  g_option_context_add_main_entries (options, entries, NULL);
  g_option_context_add_group (options, gst_init_get_option_group ());
  if (!g_option_context_parse (options, &argc, &argv, &error)) {
    g_printerr ("%s\n", error->message);
    return 1;
  }
  format = gst_video_format_from_string (format_name);
  if ((format != GST_VIDEO_FORMAT_I420 && format != GST_VIDEO_FORMAT_NV12
       && format != GST_VIDEO_FORMAT_RGBA) || !parse_size (size_name, &w, &h_px)
      || n_frames < 1 || n_warmup < 0 || n_check < 0 || n_streams < 1 || n_streams > 64
      || (strcmp (memory_name, "system") != 0 && strcmp (memory_name, "cuda") != 0)) {
    g_printerr ("bad --format, --size, --frames, --warmup, --check, --streams or --memory\n");
    return 1;
  }
  gst_video_info_set_format (&input.info, format, w, h_px);
  input.cuda = strcmp (memory_name, "cuda") == 0;
  if (input.cuda) {
#ifdef HFAM_HAVE_GST_CUDA
    GstCaps *caps = input_caps (&input);
    const gboolean opened = open_cuda (&input, caps);
    gst_caps_unref (caps);
    if (!opened) {
      g_print ("no CUDA device: skipped\n");
      return SKIP;
    }
#else
    g_print ("built without gstcuda: --memory cuda skipped\n");
    return SKIP;
#endif
  }
  for (guint i = 0; i < N_DISTINCT_FRAMES; i++) {
    host_frames[i] = make_frame (&input.info, i);
    frames[i] = gst_buffer_ref (host_frames[i]);
#ifdef HFAM_HAVE_GST_CUDA
    if (input.cuda) {
      gst_buffer_unref (frames[i]);
      frames[i] = upload (&input, host_frames[i]);
      if (!frames[i]) {
        g_printerr ("no buffer from the CUDA pool, or no copy into it\n");
        return 1;
      }
    }
#endif
  }

  if (n_streams == 1) {
    h = start_element (&input, input.cuda, NULL);
    if (!h)
      return 1;
    latency = g_new (double, n_frames);
    seconds = run_frames (h, frames, n_warmup, n_frames, &input.info, NULL, latency);
    if (seconds < 0) {
      g_printerr ("the element failed (run with GST_DEBUG=hfammatte:4)\n");
      status = 1;
    } else {
      g_print ("%s %dx%d in %s memory, %d frames after %d:\n", format_name, w, h_px,
               memory_name, n_frames, n_warmup);
      g_print ("frames/s %.1f\n", n_frames / seconds);
      g_print ("latency ms median %.2f, 90th percentile %.2f\n", median (latency, n_frames),
               percentile (latency, n_frames, 0.9));
    }
    gst_harness_teardown (h);
    g_free (latency);
  } else if (!run_streams (&input, frames)) {
    status = 1;
  }
  if (status == 0 && n_check > 0 && !check_against_cpu (&input, host_frames, frames)) {
    g_print ("check FAILED\n");
    status = 1;
  }
  for (guint i = 0; i < N_DISTINCT_FRAMES; i++) {
    gst_buffer_unref (frames[i]);
    gst_buffer_unref (host_frames[i]);
  }
#ifdef HFAM_HAVE_GST_CUDA
  if (input.pool) {
    gst_buffer_pool_set_active (input.pool, FALSE);
    gst_object_unref (input.pool);
  }
  gst_clear_object (&input.cuda_context);
#endif
  return status;
}
