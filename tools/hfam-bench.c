/* hfam-bench: the engine's time per stage and per frame on a fixed inference size, its memory
 * beyond the weights, and the ratio to the PyTorch reference on the same size and threads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib/gstdio.h>

#include "hfam-internal.h"
#include "median.h"

#define WARM_UP_RUNS 2

static char *model_path, *size_text, *backend_name, *precision_name;
static int n_runs = 10, n_threads, n_rounds = 1, depth;
static gboolean no_torch, no_graphs;
static HfamOptions context_options;  /* --backend, --threads, --precision, --depth */
static HfamCudaOptions cuda_options = { .device_id = -1 };  /* --no-graphs */
/* The backend and precision the engine ran on, for the PyTorch run to match. */
static const char *engine_backend = "cpu";
static gboolean engine_fp16;

static const GOptionEntry entries[] = {
  { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path, "Weight file (safetensors)", "M" },
  { "size", 's', 0, G_OPTION_ARG_STRING, &size_text, "Input size, multiples of 32", "WxH" },
  { "runs", 'n', 0, G_OPTION_ARG_INT, &n_runs, "Timed runs after 2 warm-up runs (10)", "N" },
  { "threads", 't', 0, G_OPTION_ARG_INT, &n_threads, "CPU threads (default: one per core)",
    "T" },
  { "backend", 'b', 0, G_OPTION_ARG_STRING, &backend_name, "auto (default), cpu or cuda",
    "NAME" },
  { "no-torch", 0, 0, G_OPTION_ARG_NONE, &no_torch, "Skip the PyTorch comparison", NULL },
  { "rounds", 'r', 0, G_OPTION_ARG_INT, &n_rounds,
    "Alternate engine and PyTorch this many times; the ratio is the median of the rounds' "
    "ratios, so that load changing on a shared machine hits both sides alike (1)", "R" },
  { "precision", 'p', 0, G_OPTION_ARG_STRING, &precision_name,
    "default, fp32, fp16 (CUDA; the CPU computes fp32) or int8 (the CPU: encoder, L-BB; PyTorch "
    "stays fp32)", "P" },
  { "depth", 'd', 0, G_OPTION_ARG_INT, &depth,
    "Pipeline depth, frames in flight (1 or 2): times the latency and throughput of "
    "submitted frames instead of the stages", "N" },
  { "no-graphs", 0, 0, G_OPTION_ARG_NONE, &no_graphs,
    "CUDA: queue kernels instead of replaying a CUDA graph (without it, the encoder's time "
    "covers the whole frame)", NULL },
  G_OPTION_ENTRY_NULL
};

static const char *
precision_label (HfamPrecision precision)
{
  return precision == HFAM_PRECISION_INT8 ? "int8 encoder and L-BB"
         : precision == HFAM_PRECISION_FP16 ? "fp16" : "fp32";
}

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

static gint64
status_kb (const char *status, const char *key)
{
  const char *line = strstr (status, key);
  return line ? g_ascii_strtoll (line + strlen (key), NULL, 10) : -1;
}

static Memory
memory_now (void)
{
  g_autofree char *status = NULL;
  Memory m = { -1, -1, -1, -1 };

  if (g_file_get_contents ("/proc/self/status", &status, NULL, NULL)) {
    m.rss = status_kb (status, "\nVmRSS:");
    m.anon = status_kb (status, "\nRssAnon:");
    m.file = status_kb (status, "\nRssFile:");
    m.hwm = status_kb (status, "\nVmHWM:");
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

/* The reference's median frame time in ms: torch_bench.py prints `median_ms VALUE` last.
 * When the engine ran on CUDA, so does PyTorch, in the same precision. */
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
                         cuda && engine_fp16 ? "--half" : NULL, NULL };
  g_autofree char *output = NULL;
  int status;

  if (!g_spawn_sync (NULL, (char **) argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, &output, NULL,
                     &status, error)
      || !g_spawn_check_wait_status (status, error)) {
    g_prefix_error (error, "%s: ", script);
    return FALSE;
  }

  g_auto (GStrv) lines = g_strsplit (g_strstrip (output), "\n", -1);
  guint n = g_strv_length (lines);
  for (guint i = 0; i + 1 < n; i++)
    g_print ("pytorch: %s\n", lines[i]);

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
  engine_fp16 = hfam_context_precision (ctx) == HFAM_PRECISION_FP16;
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

/* Submitted frames (hfam_context_submit_tensor) with up to the context's pipeline depth in
 * flight: the median latency from submit to collect, and the throughput over the timed
 * frames. The inputs are 4 fresh random tensors used in turn, made before timing. */
static gboolean
bench_pipeline (HfamModel *model, HfamBackendKind kind, const HfamOptions *options,
                int width, int height, int threads, double *frame_ms, GError **error)
{
  const HfamHparams *hp = hfam_model_hparams (model);
  const gsize plane = (gsize) width * height;
  enum { N_INPUTS = 4 };
  float *inputs[N_INPUTS];
  g_autofree float *alpha = g_new (float, plane);
  g_autofree gint64 *submitted = g_new0 (gint64, n_runs);
  g_autofree gint64 *latency = g_new0 (gint64, n_runs);
  g_autoptr (GRand) rand = g_rand_new_with_seed (1);
  HfamOutputs outputs = { .fused = alpha };
  HfamContext *ctx;
  int in_flight = 0, next = 0, done = 0, d;
  gint64 start = 0, end;
  gboolean ok = TRUE;

  for (int i = 0; i < N_INPUTS; i++) {
    inputs[i] = g_new (float, 3 * plane);
    for (int k = 0; k < 3; k++)
      for (gsize j = 0; j < plane; j++)
        inputs[i][k * plane + j] = (g_rand_double (rand) * hp->input_scale - hp->input_mean[k])
                                   / hp->input_std[k];
  }
  ctx = hfam_context_new (model, options, &cuda_options, error);
  if (!ctx) {
    for (int i = 0; i < N_INPUTS; i++)
      g_free (inputs[i]);
    return FALSE;
  }
  d = hfam_context_pipeline_depth (ctx);
  engine_backend = g_intern_string (hfam_context_backend_name (ctx));
  engine_fp16 = hfam_context_precision (ctx) == HFAM_PRECISION_FP16;
  /* warm-up: plan, algorithm search, a graph per frame slot */
  for (int i = 0; i < WARM_UP_RUNS + d && ok; i++)
    ok = hfam_context_submit_tensor (ctx, inputs[i % N_INPUTS], width, height, error)
         && hfam_context_collect_tensor (ctx, &outputs, error);
  while (ok && done < n_runs) {
    if (next < n_runs && in_flight < d) {
      submitted[next] = g_get_monotonic_time ();
      if (next == 0)
        start = submitted[next];
      ok = hfam_context_submit_tensor (ctx, inputs[next % N_INPUTS], width, height, error);
      next++;
      in_flight++;
    } else {
      ok = hfam_context_collect_tensor (ctx, &outputs, error);
      latency[done] = g_get_monotonic_time () - submitted[done];
      done++;
      in_flight--;
    }
  }
  end = g_get_monotonic_time ();
  while (in_flight-- > 0)
    hfam_context_collect_tensor (ctx, NULL, NULL);
  if (ok) {
    const double fps = n_runs / ((end - start) / 1e6);
    qsort (latency, n_runs, sizeof *latency, compare_gint64);
    *frame_ms = (n_runs % 2 ? latency[n_runs / 2]
                            : (latency[n_runs / 2 - 1] + latency[n_runs / 2]) / 2) / 1000.0;
    g_print ("backend %s, %s, pipeline depth %d%s, %dx%d, %d frames after %d warm-up frames\n",
             engine_backend, engine_fp16 ? "fp16" : "fp32", d,
             cuda_options.no_graphs ? ", no CUDA graphs" : "", width, height, n_runs,
             WARM_UP_RUNS + d);
    g_print ("  latency (submit to collect): median %.2f ms, min %.2f ms, max %.2f ms\n",
             *frame_ms, latency[0] / 1000.0, latency[n_runs - 1] / 1000.0);
    g_print ("  throughput %.1f frames/s (%.2f ms per frame)\n", fps, 1000.0 / fps);
  }
  hfam_context_free (ctx);
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

static gboolean
run (int argc, char **argv, GError **error)
{
  g_autoptr (GOptionContext) options = g_option_context_new (NULL);
  HfamBackendKind kind = HFAM_BACKEND_AUTO;
  HfamModel *model;
  GStatBuf st;
  int width, height, threads;
  double engine_ms, torch_ms;
  gboolean ok;


  g_option_context_set_summary (options, "Times the engine on a random input of one size.");
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
  context_options.pipeline_depth = depth;
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
  if (no_torch) {
    ok = bench (model, kind, width, height, threads, &engine_ms, error);
    hfam_model_free (model);
    return ok;
  }
  if (python_path ()[0] == '\0' || !python_has_torch ()) {
    ok = bench (model, kind, width, height, threads, &engine_ms, error);
    hfam_model_free (model);
    if (ok)
      g_print ("ratio engine/pytorch: n/a (%s cannot import torch)\n",
               python_path ()[0] ? python_path () : "no python3 found at configure time:");
    return ok;
  }

  g_autofree double *ratios = g_new (double, n_rounds);
  g_autofree double *engine = g_new (double, n_rounds);
  g_autofree double *torch = g_new (double, n_rounds);
  for (int round = 0; round < n_rounds; round++) {
    if (n_rounds > 1)
      g_print ("round %d of %d\n", round + 1, n_rounds);
    if (!bench (model, kind, width, height, threads, &engine[round], error)
        || !torch_median_ms (width, height, threads, &torch[round], error)) {
      hfam_model_free (model);
      return FALSE;
    }
    ratios[round] = engine[round] / torch[round];
    if (n_rounds > 1)
      g_print ("round %d: engine %.2f ms, pytorch %.2f ms, ratio %.2f\n", round + 1,
               engine[round], torch[round], ratios[round]);
  }
  hfam_model_free (model);
  engine_ms = median (engine, n_rounds);
  torch_ms = median (torch, n_rounds);
  if (g_strcmp0 (engine_backend, "cuda") == 0)
    g_print ("ratio engine/pytorch: %.2f (median of %d round(s); engine %.2f ms, pytorch %.2f "
             "ms, both cuda %s, %dx%d)\n", median (ratios, n_rounds), n_rounds, engine_ms,
             torch_ms, engine_fp16 ? "fp16" : "fp32", width, height);
  else
    g_print ("ratio engine/pytorch: %.2f (median of %d round(s); engine %.2f ms, pytorch %.2f "
             "ms, %d threads, %dx%d)\n",
             median (ratios, n_rounds), n_rounds, engine_ms, torch_ms, threads, width, height);
  return TRUE;
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
