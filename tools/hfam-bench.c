/* hfam-bench: the engine's time per stage and per frame on a fixed inference size, its memory
 * beyond the weights, and the ratios to the PyTorch reference and to ONNX Runtime (for Node, on
 * the CPU) on the same network, size and threads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib/gstdio.h>

#include "hfam-internal.h"
#include "median.h"
#include "proc-status.h"

#define WARM_UP_RUNS 2

static char *model_path, *size_text, *backend_name, *precision_name;
static int n_runs = 10, n_threads, n_rounds = 1, depth, batch = 1, batch_timeout_us = 2000;
static gboolean no_torch, no_ort, no_graphs;
static HfamOptions context_options;  /* --backend, --threads, --precision, --depth */
static HfamCudaOptions cuda_options = { .device_id = -1 };  /* --no-graphs */
/* The backend and precision the engine ran on, for the PyTorch run to match. */
static const char *engine_backend = "cpu";
static HfamPrecision engine_precision = HFAM_PRECISION_DEFAULT;
/* The ONNX Runtime side: the exported network and the node_modules holding onnxruntime-node
 * (model/python/ort/prepare.py), or NULL when it is skipped. */
static char *ort_dir, *onnx_path, *ort_node_modules;

static const GOptionEntry entries[] = {
  { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path, "Weight file (safetensors)", "M" },
  { "size", 's', 0, G_OPTION_ARG_STRING, &size_text, "Input size, multiples of 32", "WxH" },
  { "runs", 'n', 0, G_OPTION_ARG_INT, &n_runs, "Timed runs after 2 warm-up runs (10)", "N" },
  { "threads", 't', 0, G_OPTION_ARG_INT, &n_threads, "CPU threads (default: one per core)",
    "T" },
  { "backend", 'b', 0, G_OPTION_ARG_STRING, &backend_name, "auto (default), cpu or cuda",
    "NAME" },
  { "no-torch", 0, 0, G_OPTION_ARG_NONE, &no_torch, "Skip the PyTorch comparison", NULL },
  { "no-ort", 0, 0, G_OPTION_ARG_NONE, &no_ort,
    "Skip the ONNX Runtime comparison (CPU only; needs node, and npm the first time)", NULL },
  { "rounds", 'r', 0, G_OPTION_ARG_INT, &n_rounds,
    "Alternate engine, PyTorch and ONNX Runtime this many times; each ratio is the median of "
    "the rounds' ratios, so that load changing on a shared machine hits all sides alike (1)",
    "R" },
  { "precision", 'p', 0, G_OPTION_ARG_STRING, &precision_name,
    "default, fp32, fp16 (CUDA; the CPU computes fp32), int8 (the CPU: the layers with "
    "ranges), bf16 (the CPU: the convolutions) or int8-bf16 (both); PyTorch stays fp32", "P" },
  { "depth", 'd', 0, G_OPTION_ARG_INT, &depth,
    "Pipeline depth, frames in flight (1 or 2): times the latency and throughput of "
    "submitted frames instead of the stages", "N" },
  { "batch", 0, 0, G_OPTION_ARG_INT, &batch,
    "With --depth: this many streams, each a context, in one batch group of max-batch N "
    "(1: one context of its own); throughput over all their frames (1)", "N" },
  { "batch-timeout", 0, 0, G_OPTION_ARG_INT, &batch_timeout_us,
    "With --batch: how long a batch waits for the streams' frames, which one thread submits "
    "one after another (2000; 0 would run what is there, batches part empty)", "US" },
  { "no-graphs", 0, 0, G_OPTION_ARG_NONE, &no_graphs,
    "CUDA: queue kernels instead of replaying a CUDA graph (without it, the encoder's time "
    "covers the whole frame)", NULL },
  G_OPTION_ENTRY_NULL
};

static gboolean
parse_size (const char *text, int *width, int *height, GError **error)
{
  int end = 0;

  if (!text) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "--size WxH is required");
    return FALSE;
  }
  if (sscanf (text, "%dx%d%n", width, height, &end) != 2 || text[end] != '\0' || *width < 32
      || *height < 32 || *width % 32 != 0 || *height % 32 != 0) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "--size %s: want WxH, both positive multiples of 32", text);
    return FALSE;
  }
  return TRUE;
}

/* Resident memory from /proc/self/status, in kB; -1 where unknown (not Linux). */
typedef struct {
  gint64 rss, anon, file, hwm;
} Memory;

static Memory
memory_now (void)
{
  g_autofree char *status = NULL;
  Memory m = { -1, -1, -1, -1 };

  if (g_file_get_contents ("/proc/self/status", &status, NULL, NULL)) {
    m.rss = proc_status_field (status, "\nVmRSS:");
    m.anon = proc_status_field (status, "\nRssAnon:");
    m.file = proc_status_field (status, "\nRssFile:");
    m.hwm = proc_status_field (status, "\nVmHWM:");
  }
  return m;
}

static void
memory_peak (Memory *peak, const Memory *m)
{
  peak->rss = MAX (peak->rss, m->rss);
  peak->anon = MAX (peak->anon, m->anon);
  peak->file = MAX (peak->file, m->file);
  peak->hwm = MAX (peak->hwm, m->hwm);
}

static double
mib (gint64 kb)
{
  return kb / 1024.0;
}

/* The Python with torch: HFAM_PYTHON from the environment, else the one configure found. */
static const char *
python_path (void)
{
  const char *env = g_getenv ("HFAM_PYTHON");
  return env && env[0] ? env : HFAM_PYTHON;
}

/* The engine's precision as the tools name it. No default case: a new precision must be
 * named here (-Wswitch). */
static const char *
precision_label (HfamPrecision precision)
{
  switch (precision) {
    case HFAM_PRECISION_DEFAULT:
    case HFAM_PRECISION_FP32:
      return "fp32";
    case HFAM_PRECISION_FP16:
      return "fp16";
    case HFAM_PRECISION_INT8:
      return "int8 where the file has ranges";
    case HFAM_PRECISION_BF16:
      return "bf16 convolutions";
    case HFAM_PRECISION_INT8_BF16:
      return "int8 where the file has ranges, bf16 convolutions";
  }
  return "unknown";
}

/* Runs a timing script, which prints `median_ms VALUE` last, and echoes its other lines after
 * `label: `. `envp` NULL: this process's environment. */
static gboolean
spawn_median_ms (const char *const *argv, char **envp, const char *script, const char *label,
                 double *ms, GError **error)
{
  g_autofree char *output = NULL;
  int status;

  if (!g_spawn_sync (NULL, (char **) argv, envp, G_SPAWN_SEARCH_PATH, NULL, NULL, &output,
                     NULL, &status, error)
      || !g_spawn_check_wait_status (status, error)) {
    g_prefix_error (error, "%s: ", script);
    return FALSE;
  }

  g_auto (GStrv) lines = g_strsplit (g_strstrip (output), "\n", -1);
  guint n = g_strv_length (lines);
  for (guint i = 0; i + 1 < n; i++)
    g_print ("%s: %s\n", label, lines[i]);

  const char *last = n ? lines[n - 1] : "";
  char *end;
  if (g_str_has_prefix (last, "median_ms ")) {
    *ms = g_ascii_strtod (last + strlen ("median_ms "), &end);
    if (end != last + strlen ("median_ms ") && *end == '\0' && *ms > 0)
      return TRUE;
  }
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
               "%s: last line '%s' is not 'median_ms VALUE'", script, last);
  return FALSE;
}

/* The reference's median frame time in ms (torch_bench.py). When the engine ran on CUDA, so
 * does PyTorch, in the same precision. */
static gboolean
torch_median_ms (int width, int height, int threads, double *ms, GError **error)
{
  const gboolean cuda = g_strcmp0 (engine_backend, "cuda") == 0;
  g_autofree char *script =
    g_build_filename (HFAM_SOURCE_DIR, "model", "python", "reference", "torch_bench.py", NULL);
  g_autofree char *size = g_strdup_printf ("%dx%d", width, height);
  g_autofree char *runs = g_strdup_printf ("%d", n_runs);
  g_autofree char *thread_count = g_strdup_printf ("%d", threads);
  const char *argv[] = { python_path (), script, "--model", model_path, "--size", size, "-n",
                         runs, "--threads", thread_count, "--device", cuda ? "cuda" : "cpu",
                         cuda && engine_precision == HFAM_PRECISION_FP16 ? "--half" : NULL,
                         NULL };

  return spawn_median_ms (argv, NULL, script, "pytorch", ms, error);
}

/* ONNX Runtime's median frame time in ms (model/python/ort/ort_bench.js, fp32 on the CPU),
 * with the engine's thread count as its intra-op threads. */
static gboolean
ort_median_ms (int width, int height, int threads, double *ms, GError **error)
{
  g_autofree char *script =
    g_build_filename (HFAM_SOURCE_DIR, "model", "python", "ort", "ort_bench.js", NULL);
  g_autofree char *size = g_strdup_printf ("%dx%d", width, height);
  g_autofree char *runs = g_strdup_printf ("%d", n_runs);
  g_autofree char *thread_count = g_strdup_printf ("%d", threads);
  const char *argv[] = { "node", script, onnx_path, "--size", size, "-n", runs, "--threads",
                         thread_count, NULL };
  g_auto (GStrv) envp = g_environ_setenv (g_get_environ (), "NODE_PATH", ort_node_modules,
                                          TRUE);

  return spawn_median_ms (argv, envp, script, "onnxruntime", ms, error);
}

/* Readies the ONNX Runtime side (prepare.py: onnxruntime-node from the download cache, the
 * network exported to ONNX in a temporary folder). FALSE with `reason` set where it is
 * skipped: no node, or npm cannot fetch the package (prepare.py's exit 77); FALSE with
 * `error` set where it fails. */
static gboolean
ort_prepare (int width, int height, char **reason, GError **error)
{
  g_autofree char *script =
    g_build_filename (HFAM_SOURCE_DIR, "model", "python", "ort", "prepare.py", NULL);
  g_autofree char *node = g_find_program_in_path ("node");
  g_autofree char *size = g_strdup_printf ("%dx%d", width, height);
  g_autofree char *output = NULL;
  int status;

  if (!node) {
    *reason = g_strdup ("node is not installed");
    return FALSE;
  }
  ort_dir = g_dir_make_tmp ("hfam-bench-XXXXXX", error);
  if (!ort_dir)
    return FALSE;
  onnx_path = g_build_filename (ort_dir, "model.onnx", NULL);
  const char *argv[] = { python_path (), script, "--model", model_path, "--size", size, "-o",
                         onnx_path, NULL };
  g_print ("onnxruntime: exporting %s at %s to ONNX\n", model_path, size);
  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &output, NULL,
                     &status, error)) {
    g_prefix_error (error, "%s: ", script);
    return FALSE;
  }
  g_auto (GStrv) lines = g_strsplit (g_strstrip (output), "\n", -1);
  guint n = g_strv_length (lines);
  const char *last = n ? lines[n - 1] : "";
  g_autoptr (GError) exit_error = NULL;
  if (!g_spawn_check_wait_status (status, &exit_error)) {
    if (g_error_matches (exit_error, G_SPAWN_EXIT_ERROR, 77)) {
      *reason = g_strdup (g_str_has_prefix (last, "skipped: ") ? last + strlen ("skipped: ")
                                                                : last);
      return FALSE;
    }
    g_propagate_prefixed_error (error, g_steal_pointer (&exit_error), "%s: ", script);
    return FALSE;
  }
  for (guint i = 0; i + 1 < n; i++)
    g_print ("onnxruntime: %s\n", lines[i]);
  if (!g_str_has_prefix (last, "node_modules ")) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                 "%s: last line '%s' is not 'node_modules PATH'", script, last);
    return FALSE;
  }
  ort_node_modules = g_strdup (last + strlen ("node_modules "));
  return TRUE;
}

static void
ort_cleanup (void)
{
  if (onnx_path)
    g_unlink (onnx_path);
  if (ort_dir)
    g_rmdir (ort_dir);
  g_clear_pointer (&onnx_path, g_free);
  g_clear_pointer (&ort_dir, g_free);
  g_clear_pointer (&ort_node_modules, g_free);
}

static gboolean
python_has_torch (void)
{
  const char *argv[] = { python_path (), "-c", "import torch", NULL };
  int status;

  return g_spawn_sync (NULL, (char **) argv, NULL,
                       G_SPAWN_STDOUT_TO_DEV_NULL | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, NULL,
                       NULL, &status, NULL)
         && g_spawn_check_wait_status (status, NULL);
}

/* Times the engine; its median frame time in ms goes to `frame_ms`. */
static gboolean
bench_engine (HfamModel *model, HfamBackendKind kind, int width, int height, int threads,
              double *frame_ms, GError **error)
{
  const HfamHparams *hp = hfam_model_hparams (model);
  gsize plane = (gsize) width * height;
  g_autofree float *input = g_new (float, 3 * plane);
  g_autofree float *alpha = g_new (float, plane);
  g_autofree double *frame = g_new (double, n_runs);
  g_autofree double *stages = g_new (double, (gsize) HFAM_N_STAGES * n_runs);
  g_autoptr (GRand) rand = g_rand_new_with_seed (1);
  HfamOutputs outputs = { .fused = alpha };
  HfamContext *ctx;
  Memory after_context, peak;

  /* Uniform pixels, normalised as the model expects. */
  for (int k = 0; k < 3; k++)
    for (gsize i = 0; i < plane; i++)
      input[k * plane + i] = (g_rand_double (rand) * hp->input_scale - hp->input_mean[k])
                             / hp->input_std[k];

  ctx = hfam_context_new (model, &context_options, &cuda_options, error);
  if (!ctx)
    return FALSE;
  after_context = peak = memory_now ();
  hfam_context_set_timing (ctx, TRUE);

  for (int run = -WARM_UP_RUNS; run < n_runs; run++) {
    gint64 start = g_get_monotonic_time ();
    double seconds[HFAM_N_STAGES];

    if (!hfam_context_run_tensor (ctx, input, width, height, &outputs, error)) {
      hfam_context_free (ctx);
      return FALSE;
    }
    Memory now = memory_now ();
    memory_peak (&peak, &now);
    if (run < 0)
      continue;
    frame[run] = (g_get_monotonic_time () - start) / 1000.0;
    hfam_context_stage_times (ctx, seconds);
    for (int s = 0; s < HFAM_N_STAGES; s++)
      stages[s * n_runs + run] = seconds[s] * 1000.0;
  }

  g_print ("backend %s, %s, %d threads, %dx%d, median of %d runs after %d warm-up runs\n",
           hfam_context_backend_name (ctx), precision_label (hfam_context_precision (ctx)),
           threads, width, height, n_runs, WARM_UP_RUNS);
  engine_backend = g_intern_string (hfam_context_backend_name (ctx));
  engine_precision = hfam_context_precision (ctx);
  hfam_context_free (ctx);

  int name_width = strlen ("frame");
  for (int s = 0; s < HFAM_N_STAGES; s++)
    name_width = MAX (name_width, (int) strlen (hfam_stage_name (s)));
  for (int s = 0; s < HFAM_N_STAGES; s++)
    g_print ("  %-*s %9.2f ms\n", name_width, hfam_stage_name (s),
             median (stages + s * n_runs, n_runs));
  *frame_ms = median (frame, n_runs);
  g_print ("  %-*s %9.2f ms\n", name_width, "frame", *frame_ms);

  g_print ("memory, MiB: after context RSS %.1f (anon %.1f, file %.1f); peak VmHWM %.1f, "
           "RssAnon %.1f, RssFile %.1f (anon and file sampled after each run)\n",
           mib (after_context.rss), mib (after_context.anon), mib (after_context.file),
           mib (peak.hwm), mib (peak.anon), mib (peak.file));
  return TRUE;
}

static int
compare_gint64 (const void *a, const void *b)
{
  gint64 x = *(const gint64 *) a, y = *(const gint64 *) b;
  return (x > y) - (x < y);
}

/* Submitted frames (hfam_context_submit_tensor_alpha) with up to the context's pipeline depth in
 * flight, on `batch` contexts (streams) at once, in one batch group when there are several:
 * each round submits a frame on every stream and collects the oldest of each. The median
 * latency from submit to collect, and the throughput over all the timed frames. The inputs
 * are 4 fresh random tensors used in turn, made before timing. */
static gboolean
bench_pipeline (HfamModel *model, HfamBackendKind kind, const HfamOptions *options,
                int width, int height, int threads, double *frame_ms, GError **error)
{
  const HfamHparams *hp = hfam_model_hparams (model);
  const gsize plane = (gsize) width * height;
  const int n_frames = n_runs * batch;
  enum { N_INPUTS = 4 };
  float *inputs[N_INPUTS];
  g_autofree float *alpha = g_new (float, plane);
  g_autofree gint64 *submitted = g_new0 (gint64, n_frames);
  g_autofree gint64 *latency = g_new0 (gint64, n_frames);
  g_autofree HfamContext **ctx = g_new0 (HfamContext *, batch);
  g_autoptr (GRand) rand = g_rand_new_with_seed (1);
  HfamOptions grouped = *options;
  HfamOutputs outputs = { .fused = alpha };
  HfamBatchCounts before = { 0 }, after = { 0 };
  int in_flight = 0, next = 0, done = 0, d = 0;
  gint64 start = 0, end;
  gboolean ok = TRUE;

  for (int i = 0; i < N_INPUTS; i++) {
    inputs[i] = g_new (float, 3 * plane);
    for (int k = 0; k < 3; k++)
      for (gsize j = 0; j < plane; j++)
        inputs[i][k * plane + j] = (g_rand_double (rand) * hp->input_scale - hp->input_mean[k])
                                   / hp->input_std[k];
  }
  grouped.max_batch = batch;
  grouped.batch_timeout_us = batch_timeout_us;
  for (int m = 0; m < batch && ok; m++)
    ok = (ctx[m] = hfam_context_new (model, &grouped, &cuda_options, error)) != NULL;
  if (ok) {
    d = hfam_context_pipeline_depth (ctx[0]);
    engine_backend = g_intern_string (hfam_context_backend_name (ctx[0]));
    engine_precision = hfam_context_precision (ctx[0]);
  }
  /* warm-up: plan, algorithm search, a graph per frame slot; the streams together, as the
   * timed rounds run them */
  for (int i = 0; i < WARM_UP_RUNS + d && ok; i++) {
    for (int m = 0; m < batch && ok; m++)
      ok = hfam_context_submit_tensor_alpha (ctx[m], inputs[(i + m) % N_INPUTS], width,
                                             height, error);
    for (int m = 0; m < batch && ok; m++)
      ok = hfam_context_collect_tensor (ctx[m], &outputs, error);
  }
  if (ok && batch > 1)
    hfam_context_batch_counts (ctx[0], &before);
  /* frame f is stream f % batch's */
  while (ok && done < n_frames) {
    if (next < n_frames && in_flight < d * batch) {
      for (int m = 0; m < batch && ok; m++, next++, in_flight++) {
        submitted[next] = g_get_monotonic_time ();
        if (next == 0)
          start = submitted[next];
        ok = hfam_context_submit_tensor_alpha (ctx[m], inputs[next % N_INPUTS], width,
                                               height, error);
      }
    } else {
      for (int m = 0; m < batch && ok; m++, done++, in_flight--) {
        ok = hfam_context_collect_tensor (ctx[m], &outputs, error);
        latency[done] = g_get_monotonic_time () - submitted[done];
      }
    }
  }
  end = g_get_monotonic_time ();
  if (ok && batch > 1)
    hfam_context_batch_counts (ctx[0], &after);
  for (int m = 0; m < batch && ctx[m]; m++)
    for (int k = 0; k < in_flight / batch; k++)
      hfam_context_collect_tensor (ctx[m], NULL, NULL);
  if (ok) {
    const double fps = n_frames / ((end - start) / 1e6);
    qsort (latency, n_frames, sizeof *latency, compare_gint64);
    *frame_ms = (n_frames % 2 ? latency[n_frames / 2]
                              : (latency[n_frames / 2 - 1] + latency[n_frames / 2]) / 2)
                / 1000.0;
    g_print ("backend %s, %s, pipeline depth %d%s, %dx%d, %d stream(s)%s, %d frames each "
             "after %d warm-up frames\n",
             engine_backend, precision_label (engine_precision), d,
             cuda_options.no_graphs ? ", no CUDA graphs" : "", width, height, batch,
             batch > 1 ? " in one batch group" : "", n_runs, WARM_UP_RUNS + d);
    g_print ("  latency (submit to collect): median %.2f ms, min %.2f ms, max %.2f ms\n",
             *frame_ms, latency[0] / 1000.0, latency[n_frames - 1] / 1000.0);
    g_print ("  throughput %.1f frames/s (%.2f ms per frame), all streams\n", fps,
             1000.0 / fps);
    /* (how full the timed batches were: a batch of fewer frames costs a whole one on CUDA) */
    if (batch > 1 && after.batches > before.batches)
      g_print ("  batch group: %" G_GUINT64_FORMAT " frames in %" G_GUINT64_FORMAT
               " batches, mean batch %.2f frames, largest %d\n",
               after.frames - before.frames, after.batches - before.batches,
               (double) (after.frames - before.frames) / (after.batches - before.batches),
               after.largest);
  }
  for (int m = 0; m < batch; m++)
    hfam_context_free (ctx[m]);
  for (int i = 0; i < N_INPUTS; i++)
    g_free (inputs[i]);
  return ok;
}

/* The stage times (bench_engine), or with --depth the pipelined frames (bench_pipeline). */
static gboolean
bench (HfamModel *model, HfamBackendKind kind, int width, int height, int threads,
       double *frame_ms, GError **error)
{
  if (depth > 0)
    return bench_pipeline (model, kind, &context_options, width, height, threads, frame_ms,
                           error);
  return bench_engine (model, kind, width, height, threads, frame_ms, error);
}

/* Rounds of the engine, PyTorch and ONNX Runtime in turn, each side that can run, and the
 * ratios of the engine's time to the others'. */
static gboolean
bench_rounds (HfamModel *model, HfamBackendKind kind, int width, int height, int threads,
              GError **error)
{
  g_autofree char *torch_skipped = NULL, *ort_skipped = NULL;
  const gboolean have_torch =
    (!no_torch || !no_ort) && python_path ()[0] != '\0' && python_has_torch ();
  gboolean torch_side = !no_torch && have_torch, ort_side = FALSE;

  if (!no_torch && !have_torch)
    torch_skipped = python_path ()[0] ? g_strdup_printf ("%s cannot import torch", python_path ())
                                      : g_strdup ("no python3 found at configure time");
  if (no_ort)
    ;
  else if (kind == HFAM_BACKEND_CUDA)
    ort_skipped = g_strdup ("the engine runs on cuda; the ONNX Runtime side is CPU only");
  else if (!have_torch)
    ort_skipped = g_strdup ("the export to ONNX needs a python3 with torch");
  else if (ort_prepare (width, height, &ort_skipped, error))
    ort_side = TRUE;
  else if (!ort_skipped)
    return FALSE;
  if (ort_skipped)
    g_print ("onnxruntime: skipped: %s\n", ort_skipped);

  g_autofree double *engine = g_new (double, n_rounds);
  g_autofree double *torch = g_new (double, n_rounds);
  g_autofree double *ort = g_new (double, n_rounds);
  g_autofree double *torch_ratios = g_new (double, n_rounds);
  g_autofree double *ort_ratios = g_new (double, n_rounds);
  for (int round = 0; round < n_rounds; round++) {
    if (n_rounds > 1)
      g_print ("round %d of %d\n", round + 1, n_rounds);
    if (!bench (model, kind, width, height, threads, &engine[round], error))
      return FALSE;
    if (ort_side && g_strcmp0 (engine_backend, "cuda") == 0) {
      ort_side = FALSE;
      ort_skipped = g_strdup ("the engine runs on cuda; the ONNX Runtime side is CPU only");
    }
    if (torch_side) {
      if (!torch_median_ms (width, height, threads, &torch[round], error))
        return FALSE;
      torch_ratios[round] = engine[round] / torch[round];
    }
    if (ort_side) {
      if (!ort_median_ms (width, height, threads, &ort[round], error))
        return FALSE;
      ort_ratios[round] = engine[round] / ort[round];
    }
    if (n_rounds > 1 && (torch_side || ort_side)) {
      g_autoptr (GString) line = g_string_new (NULL);
      g_string_printf (line, "round %d: engine %.2f ms", round + 1, engine[round]);
      if (torch_side)
        g_string_append_printf (line, ", pytorch %.2f ms (ratio %.2f)", torch[round],
                                torch_ratios[round]);
      if (ort_side)
        g_string_append_printf (line, ", onnxruntime %.2f ms (ratio %.2f)", ort[round],
                                ort_ratios[round]);
      g_print ("%s\n", line->str);
    }
  }

  const double engine_ms = median (engine, n_rounds);
  const char *precision = precision_label (engine_precision);
  if (torch_side && g_strcmp0 (engine_backend, "cuda") == 0)
    g_print ("ratio engine/pytorch: %.2f (median of %d round(s); engine %.2f ms, pytorch %.2f "
             "ms, both cuda %s, %dx%d)\n", median (torch_ratios, n_rounds), n_rounds,
             engine_ms, median (torch, n_rounds), precision, width, height);
  else if (torch_side)
    g_print ("ratio engine/pytorch: %.2f (median of %d round(s); engine %.2f ms %s, pytorch "
             "%.2f ms fp32, %d threads, %dx%d)\n", median (torch_ratios, n_rounds), n_rounds,
             engine_ms, precision, median (torch, n_rounds), threads, width, height);
  else if (torch_skipped)
    g_print ("ratio engine/pytorch: n/a (%s)\n", torch_skipped);
  if (ort_side)
    g_print ("ratio engine/onnxruntime: %.2f (median of %d round(s); engine %.2f ms %s, "
             "onnxruntime %.2f ms fp32, %d threads, %dx%d)\n", median (ort_ratios, n_rounds),
             n_rounds, engine_ms, precision, median (ort, n_rounds), threads, width, height);
  else if (ort_skipped)
    g_print ("ratio engine/onnxruntime: n/a (%s)\n", ort_skipped);
  return TRUE;
}

static gboolean
run (int argc, char **argv, GError **error)
{
  g_autoptr (GOptionContext) options = g_option_context_new (NULL);
  HfamBackendKind kind = HFAM_BACKEND_AUTO;
  HfamModel *model;
  GStatBuf st;
  int width, height, threads;
  gboolean ok;


  g_option_context_set_summary (options, "Times the engine on a random input of one size, beside "
                                "PyTorch and ONNX Runtime on the same network.");
  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, error))
    return FALSE;
  if (argc != 1 || !model_path) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "usage: hfam-bench --model M --size WxH [-n N] (see --help)");
    return FALSE;
  }
  if (!parse_size (size_text, &width, &height, error))
    return FALSE;
  if (n_runs < 1 || n_rounds < 1) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "-n %d --rounds %d: want at least 1 run and 1 round", n_runs, n_rounds);
    return FALSE;
  }
  if (backend_name && !hfam_backend_kind_parse (backend_name, &kind, error))
    return FALSE;
  if (precision_name && !hfam_precision_parse (precision_name, &context_options.precision,
                                               error))
    return FALSE;
  if (depth < 0 || depth > 2) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "--depth %d: 1 or 2", depth);
    return FALSE;
  }
  if (batch < 1 || batch > HFAM_MAX_BATCH || (batch > 1 && depth == 0)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "--batch %d: 1 to %d, and more than 1 with --depth only", batch,
                 HFAM_MAX_BATCH);
    return FALSE;
  }
  context_options.pipeline_depth = depth;
  if (batch > 1 && (!no_torch || !no_ort)) {
    /* a latency of several streams is no frame time to set beside theirs */
    g_print ("--batch %d: the engine alone (no PyTorch or ONNX Runtime side)\n", batch);
    no_torch = no_ort = TRUE;
  }
  cuda_options.no_graphs = no_graphs;
  /* One number for both the engine and PyTorch, so that the ratio compares like with like. */
  threads = n_threads > 0 ? n_threads : (int) g_get_num_processors ();
  context_options.backend = kind;
  context_options.n_threads = threads;

  Memory start = memory_now ();
  model = hfam_model_load (model_path, error);
  if (!model)
    return FALSE;
  Memory loaded = memory_now ();
  g_print ("model %s: weights file %.1f MiB; RSS at start %.1f MiB, after load %.1f MiB "
           "(anon %.1f, file %.1f)\n",
           model_path, g_stat (model_path, &st) == 0 ? st.st_size / 1048576.0 : -1.0,
           mib (start.rss), mib (loaded.rss), mib (loaded.anon), mib (loaded.file));
  ok = bench_rounds (model, kind, width, height, threads, error);
  hfam_model_free (model);
  ort_cleanup ();
  return ok;
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;

  if (!run (argc, argv, &error)) {
    g_printerr ("hfam-bench: %s\n", error->message);
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
