/* The whole network on the CUDA backend against the CPU backend, same weights, same random
 * inputs: P_s, alpha_d and alpha_p.
 *   fp32 (graphs on and off): max abs difference <= 1e-3 on P_s and alpha_d; alpha_p too,
 *     except on pixels where the CPU's two largest class probabilities are within 1e-3 (the
 *     argmax may fall either way there). How many such pixels there are depends on the
 *     weights, not on the backend (random weights give many). The flips, pixels whose class
 *     (the argmax of P_s) differs from the CPU's, must stay under 1 %.
 *   fp16 (graphs on, pipeline depth 1 and 2): mean abs difference <= 5e-3 on P_s and alpha_d, and
 *     on alpha_p without the pixels whose two best classes are within 5e-2 (fp16 moves P_s by up to
 *     ~3e-2 on a random ResNet-101, so the argmax may fall either way there; on the first GPU run
 *     such flips alone lifted the mean to 5.4e-3); flips under 1 % as for fp32. (Counting as flips
 *     the near-ties whose alpha_p moved by more than 1e-3 failed on the second GPU run: fp16's
 *     ordinary noise on alpha_d moves most of them that much.)
 * Depth 2 submits frames A and B, collects A, submits C, collects B and C, each against the
 * CPU's result for its own input (the frame slots must not mix). Three of the configurations
 * run again with every lane on one stream (HFAM_CUDA_ONE_STREAM): the results must be the
 * same bit for bit, or a wait between the graph's lanes is missing. Two more take split-K
 * wherever it applies (HFAM_CUDA_SPLIT_K=4 in fp32, 2 in fp16), and two cuBLASLt's product for
 * every 1x1 convolution (HFAM_CUDA_GEMM=1, fp32, and fp16 at depth 2 also against one stream),
 * against the CPU as above.
 * Shared weights: a second fp16 context on the same model takes the first one's device
 * weights (the device memory it takes is less, by at least a quarter of the file's size for a
 * file of 16 MB or more, than that of a context on a second copy of the model) and computes as
 * the CPU does.
 * Batches (HfamOptions.max_batch 3): three contexts of one batch group submit a frame each,
 * which run as one batch of three, each frame against the CPU as above (the frames of a batch
 * must not mix); at depth 2 two such rounds, two batches in flight; then two contexts' frames
 * after the time-out (a batch of two on the lane planned for three, in the slots that ran
 * three), then one alone; the group's contexts take device frames (test_cuda_device_frames.c
 * runs them). In fp32 and in fp16 at
 * depth 2 on every map; on maps of at most 160x96 also fp32 at depth 2 without graphs, fp16
 * with split-K forced, fp32 with cuBLASLt forced at depth 2, and fp16 on one stream.
 * Exits 77 (skipped) with a message when no CUDA device opens.
 * Usage: test-cuda-network MODEL WxH [MODEL WxH ...] */
#include "hfam-internal.h"
#include "heads.h"

#include <cuda_runtime.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIE_MARGIN 1e-3
#define TIE_MARGIN_FP16 5e-2

typedef struct {
  float *semantic, *detail, *fused;
} Result;

static int n_failed;

static Result
result_new (size_t plane)
{
  Result r = { g_new (float, 3 * plane), g_new (float, plane), g_new (float, plane) };
  return r;
}

static void
result_clear (Result *r)
{
  g_free (r->semantic);
  g_free (r->detail);
  g_free (r->fused);
}

static HfamOutputs
outputs_of (Result *r)
{
  HfamOutputs o = { r->semantic, r->detail, r->fused };
  return o;
}

static void
random_input (float *input, size_t plane, const HfamHparams *hp, GRand *rand)
{
  for (int k = 0; k < 3; k++)
    for (size_t i = 0; i < plane; i++)
      input[k * plane + i] = (float) ((g_rand_double (rand) * hp->input_scale - hp->input_mean[k])
                                      / hp->input_std[k]);
}

typedef struct {
  double max_abs, mean_abs;
} Diff;

static Diff
diff (const float *a, const float *b, size_t n, const gboolean *skip)
{
  Diff d = { 0.0, 0.0 };
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    double e;
    if (skip && skip[i])
      continue;
    e = isfinite (a[i]) ? fabs ((double) a[i] - b[i]) : INFINITY;
    d.max_abs = MAX (d.max_abs, e);
    d.mean_abs += e;
    m++;
  }
  d.mean_abs = m ? d.mean_abs / m : 0.0;
  return d;
}

/* Compares a CUDA result with the CPU's; fp16 by mean, fp32 by max. */
static void
compare (const char *what, const Result *gpu, const Result *cpu, size_t plane, gboolean fp16)
{
  g_autofree gboolean *ties = g_new0 (gboolean, plane);
  size_t n_ties = 0, n_flips = 0;
  Diff ds, dd, df;
  gboolean ok;

  for (size_t i = 0; i < plane; i++) {
    float p[3] = { cpu->semantic[i], cpu->semantic[plane + i], cpu->semantic[2 * plane + i] };
    float hi = MAX (p[0], MAX (p[1], p[2])), lo = MIN (p[0], MIN (p[1], p[2]));
    float mid = p[0] + p[1] + p[2] - hi - lo;
    ties[i] = hi - mid <= (fp16 ? TIE_MARGIN_FP16 : TIE_MARGIN);
    n_ties += ties[i];
    n_flips += hfam_semantic_class (gpu->semantic, plane, i)
               != hfam_semantic_class (cpu->semantic, plane, i);
  }
  ds = diff (gpu->semantic, cpu->semantic, 3 * plane, NULL);
  dd = diff (gpu->detail, cpu->detail, plane, NULL);
  df = diff (gpu->fused, cpu->fused, plane, ties);
  if (fp16)
    ok = ds.mean_abs <= 5e-3 && dd.mean_abs <= 5e-3 && df.mean_abs <= 5e-3
         && n_flips * 100 <= plane;
  else
    ok = ds.max_abs <= 1e-3 && dd.max_abs <= 1e-3 && df.max_abs <= 1e-3
         && n_flips * 100 <= plane;
  printf ("%-4s %-40s P_s max %.2e mean %.2e | alpha_d max %.2e mean %.2e | alpha_p max %.2e "
          "mean %.2e (%zu near-ties%s, %zu flipped)\n",
          ok ? "ok" : "FAIL", what, ds.max_abs, ds.mean_abs, dd.max_abs, dd.mean_abs,
          df.max_abs, df.mean_abs, n_ties, " skipped", n_flips);
  if (!ok)
    n_failed++;
}

typedef enum {
  FRAMES_RAN,
  FRAMES_SKIPPED,  /* no CUDA context opens (a SKIP line) */
  FRAMES_FAILED,   /* a frame failed (a FAIL line, counted) */
} FramesRun;

/* The three frames through a CUDA context made with `options`: one at a time, or at depth 2
 * interleaved (A and B in flight, collect A, submit C, ...). */
static FramesRun
run_frames (HfamModel *model, const char *name, const HfamOptions *options,
            const HfamCudaOptions *cuda, float *const inputs[3], int w, int h, Result gpu[3])
{
  g_autoptr (GError) error = NULL;
  const size_t plane = (size_t) w * h;
  HfamOptions on_cuda = *options;
  HfamContext *ctx;
  FramesRun run = FRAMES_RAN;

  on_cuda.backend = HFAM_BACKEND_CUDA;
  ctx = hfam_context_new (model, &on_cuda, cuda, &error);

  if (!ctx) {
    printf ("SKIP: %s\n", error->message);
    return FRAMES_SKIPPED;
  }
  g_assert_cmpstr (hfam_context_backend_name (ctx), ==, "cuda");
  g_assert_cmpint (hfam_context_precision (ctx), ==, options->precision);
  for (int f = 0; f < 3; f++)
    gpu[f] = result_new (plane);
  if (options->pipeline_depth == 2) {
    HfamOutputs o[3] = { outputs_of (&gpu[0]), outputs_of (&gpu[1]), outputs_of (&gpu[2]) };
    g_assert_cmpint (hfam_context_pipeline_depth (ctx), ==, 2);
    if (!hfam_context_submit_tensor (ctx, inputs[0], w, h, &error)
        || !hfam_context_submit_tensor (ctx, inputs[1], w, h, &error))
      run = FRAMES_FAILED;
    /* a third frame does not fit */
    if (run == FRAMES_RAN) {
      g_assert_false (hfam_context_submit_tensor (ctx, inputs[2], w, h, &error));
      g_clear_error (&error);
    }
    if (run == FRAMES_RAN
        && (!hfam_context_collect_tensor (ctx, &o[0], &error)
            || !hfam_context_submit_tensor (ctx, inputs[2], w, h, &error)
            || !hfam_context_collect_tensor (ctx, &o[1], &error)
            || !hfam_context_collect_tensor (ctx, &o[2], &error)))
      run = FRAMES_FAILED;
  } else {
    for (int f = 0; f < 3 && run == FRAMES_RAN; f++) {
      HfamOutputs o = outputs_of (&gpu[f]);
      if (!hfam_context_run_tensor (ctx, inputs[f], w, h, &o, &error))
        run = FRAMES_FAILED;
    }
  }
  hfam_context_free (ctx);
  if (run == FRAMES_FAILED) {
    /* the next configurations still run: one refusal must not hide the rest */
    printf ("FAIL %s: %s\n", name, error->message);
    n_failed++;
    for (int f = 0; f < 3; f++)
      result_clear (&gpu[f]);
  }
  return run;
}

/* The graph's lanes on their own streams must compute exactly what one stream does (same
 * kernels, same algorithms): any difference is a missing wait between lanes. */
static void
compare_one_stream (HfamModel *model, const char *what, const HfamOptions *options,
                    const HfamCudaOptions *cuda, float *const inputs[3], int w, int h,
                    Result lanes[3])
{
  const size_t plane = (size_t) w * h;
  Result one[3];
  gboolean same = TRUE;

  g_setenv ("HFAM_CUDA_ONE_STREAM", "1", TRUE);
  switch (run_frames (model, what, options, cuda, inputs, w, h, one)) {
  case FRAMES_SKIPPED:
    g_error ("%s: a second CUDA context does not open", what);
  case FRAMES_FAILED:
    g_unsetenv ("HFAM_CUDA_ONE_STREAM");
    return;
  case FRAMES_RAN:
    break;
  }
  g_unsetenv ("HFAM_CUDA_ONE_STREAM");
  for (int f = 0; f < 3; f++) {
    same &= memcmp (one[f].semantic, lanes[f].semantic, sizeof (float) * 3 * plane) == 0
            && memcmp (one[f].detail, lanes[f].detail, sizeof (float) * plane) == 0
            && memcmp (one[f].fused, lanes[f].fused, sizeof (float) * plane) == 0;
    result_clear (&one[f]);
  }
  printf ("%-4s %-40s lanes against one stream, bit for bit\n", same ? "ok" : "FAIL", what);
  if (!same)
    n_failed++;
}

/* Device memory free now, in bytes. */
static double
device_free_bytes (void)
{
  size_t free_bytes = 0, total = 0;

  cudaMemGetInfo (&free_bytes, &total);
  return (double) free_bytes;
}

/* One fp16 frame through `ctx` (NULL: a context that did not open, with `error`), compared
 * with the CPU; FALSE on a failure, counted. */
static gboolean
run_fp16 (HfamContext *ctx, GError *error, const char *what, const float *input, int w, int h,
          const Result *cpu)
{
  Result gpu = result_new ((size_t) w * h);
  HfamOutputs o = outputs_of (&gpu);
  gboolean ok = ctx && hfam_context_run_tensor (ctx, input, w, h, &o, &error);

  if (!ok) {
    printf ("FAIL %s: %s\n", what, error->message);
    n_failed++;
  } else {
    compare (what, &gpu, cpu, (size_t) w * h, TRUE);
  }
  g_clear_error (&error);
  result_clear (&gpu);
  return ok;
}

/* One fp16 frame through a new context on `model`, compared with the CPU; the context stays
 * open (NULL on a failure, counted). */
static HfamContext *
open_and_run (HfamModel *model, const char *what, const float *input, int w, int h,
              const Result *cpu)
{
  const HfamOptions options = { .backend = HFAM_BACKEND_CUDA,
                                .precision = HFAM_PRECISION_FP16 };
  GError *error = NULL;
  HfamContext *ctx = hfam_context_new (model, &options, NULL, &error);

  if (!run_fp16 (ctx, error, what, input, w, h, cpu)) {
    hfam_context_free (ctx);
    ctx = NULL;
  }
  return ctx;
}

static void
check_shared_weights (HfamModel *model, const char *path, const char *base,
                      const float *input, int w, int h, const Result *cpu)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (HfamModel) copy = hfam_model_load (path, &error);
  HfamContext *first, *second = NULL, *own = NULL;
  double before, shared_bytes = 0, own_bytes = 0;
  char what[160];
  GStatBuf st;

  g_assert_no_error (error);
  snprintf (what, sizeof what, "%s %dx%d fp16, first context", base, w, h);
  if (!(first = open_and_run (model, what, input, w, h, cpu)))
    return;
  before = device_free_bytes ();
  snprintf (what, sizeof what, "%s %dx%d fp16, second context (shared weights)", base, w, h);
  second = open_and_run (model, what, input, w, h, cpu);
  shared_bytes = before - device_free_bytes ();
  before = device_free_bytes ();
  snprintf (what, sizeof what, "%s %dx%d fp16, context on a copy of the model", base, w, h);
  own = open_and_run (copy, what, input, w, h, cpu);
  own_bytes = before - device_free_bytes ();
  if (second && own && g_stat (path, &st) == 0) {
    const gboolean big = st.st_size >= (16 << 20);
    const gboolean ok = !big || own_bytes - shared_bytes >= 0.25 * st.st_size;
    printf ("%-4s %s %dx%d: device memory of a second context %.1f MiB, of one on a copy "
            "%.1f MiB (file %.1f MiB%s)\n", ok ? "ok" : "FAIL", base, w, h,
            shared_bytes / (1 << 20), own_bytes / (1 << 20), st.st_size / (double) (1 << 20),
            big ? "" : ", too small to tell: not checked");
    if (!ok)
      n_failed++;
  }
  /* the shared weights outlive the context that uploaded them while another uses them */
  hfam_context_free (first);
  if (second) {
    snprintf (what, sizeof what, "%s %dx%d fp16, second context after the first is freed",
              base, w, h);
    run_fp16 (second, NULL, what, input, w, h, cpu);
  }
  hfam_context_free (own);
  hfam_context_free (second);
}

/* A batch configuration: the members' precision and depth, the lane's graphs, a way forced. */
typedef struct {
  const char *name;
  HfamPrecision precision;
  int depth;
  gboolean no_graphs;
  const char *force, *value;  /* an environment variable, as the configurations of run_case */
} BatchConfig;

/* Collects member `m`'s oldest frame, which ran input `f`, and checks it against the CPU. */
static gboolean
collect_member (HfamContext *ctx, const char *what, int f, Result *gpu, const Result *cpu,
                size_t plane, gboolean fp16, GError **error)
{
  HfamOutputs o = outputs_of (gpu);

  if (!hfam_context_collect_tensor (ctx, &o, error))
    return FALSE;
  compare (what, gpu, &cpu[f], plane, fp16);
  return TRUE;
}

/* The batch checks (see the top) in one configuration: three members of one group, `depth`
 * rounds of a frame each in flight (batches of three, up to two in flight), then a batch of
 * two after the time-out in the slots that ran three, then one alone. */
static void
check_batches (HfamModel *model, const char *base, const BatchConfig *config,
               float *const inputs[3], int w, int h, const Result cpu[3])
{
  const HfamOptions options = { .backend = HFAM_BACKEND_CUDA, .precision = config->precision,
                                .pipeline_depth = config->depth, .max_batch = 3,
                                /* long enough that three frames submitted one after
                                   the other always meet (a batch of three goes at once) */
                                .batch_timeout_us = 200000 };
  const HfamCudaOptions cuda = { .device_id = -1, .no_graphs = config->no_graphs };
  const gboolean fp16 = config->precision == HFAM_PRECISION_FP16;
  const size_t plane = (size_t) w * h;
  g_autoptr (GError) error = NULL;
  HfamContext *ctx[3] = { NULL };
  HfamBatchCounts counts = { 0 };
  Result gpu = result_new (plane);
  char what[192];
  gboolean ok = TRUE;

  if (config->force)
    g_setenv (config->force, config->value, TRUE);
  for (int m = 0; m < 3 && ok; m++)
    ok = (ctx[m] = hfam_context_new (model, &options, &cuda, &error)) != NULL;
  /* member m's frame of round r runs input (m + r) % 3 */
  for (int r = 0; r < config->depth && ok; r++)
    for (int m = 0; m < 3 && ok; m++)
      ok = hfam_context_submit_tensor (ctx[m], inputs[(m + r) % 3], w, h, &error);
  for (int r = 0; r < config->depth && ok; r++)
    for (int m = 0; m < 3 && ok; m++) {
      snprintf (what, sizeof what, "%s %dx%d %s batch of 3 (round %d), member %d", base, w, h,
                config->name, r, m);
      ok = collect_member (ctx[m], what, (m + r) % 3, &gpu, cpu, plane, fp16, &error);
    }
  if (ok) {
    const gboolean counted = hfam_context_batch_counts (ctx[0], &counts)
                             && counts.largest == 3
                             && counts.frames == (guint64) 3 * config->depth;
    printf ("%-4s %s %dx%d %s batch group: %d members, %" G_GUINT64_FORMAT " batch(es) of %"
            G_GUINT64_FORMAT " frames, the largest of %d\n", counted ? "ok" : "FAIL", base, w, h,
            config->name, counts.members, counts.batches, counts.frames, counts.largest);
    n_failed += !counted;
    /* (through frames-only backends of their own: test_cuda_device_frames.c runs them) */
    printf ("%-4s %s %s batch group: its members take device frames\n",
            hfam_context_device_frames (ctx[0]) ? "ok" : "FAIL", base, config->name);
    n_failed += !hfam_context_device_frames (ctx[0]);
  }
  /* two members: a batch of two in a slot that ran three */
  for (int m = 0; m < 2 && ok; m++)
    ok = hfam_context_submit_tensor (ctx[m], inputs[2 - m], w, h, &error);
  for (int m = 0; m < 2 && ok; m++) {
    snprintf (what, sizeof what, "%s %dx%d %s batch of 2 of 3, member %d", base, w, h,
              config->name, m);
    ok = collect_member (ctx[m], what, 2 - m, &gpu, cpu, plane, fp16, &error);
  }
  if (ok) {
    snprintf (what, sizeof what, "%s %dx%d %s batch of 1 of 3", base, w, h, config->name);
    ok = hfam_context_submit_tensor (ctx[1], inputs[1], w, h, &error)
         && collect_member (ctx[1], what, 1, &gpu, cpu, plane, fp16, &error);
  }
  if (!ok) {
    printf ("FAIL %s %s batch group: %s\n", base, config->name, error->message);
    n_failed++;
  }
  for (int m = 0; m < 3; m++)
    hfam_context_free (ctx[m]);
  result_clear (&gpu);
  if (config->force)
    g_unsetenv (config->force);
}

static gboolean
run_case (const char *path, int w, int h, guint32 seed)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (HfamModel) model = hfam_model_load (path, &error);
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  const size_t plane = (size_t) w * h;
  float *inputs[3];
  Result cpu[3];
  HfamContext *ctx;
  g_autofree char *base = g_path_get_basename (path);
  gboolean opened = TRUE;

  if (!model) {
    printf ("FAIL %s: %s\n", path, error->message);
    n_failed++;
    return TRUE;
  }
  ctx = hfam_context_new (model, &(HfamOptions) { .backend = HFAM_BACKEND_CPU,
                                                  .precision = HFAM_PRECISION_FP32 },
                         NULL, &error);
  g_assert_no_error (error);
  for (int f = 0; f < 3; f++) {
    HfamOutputs o;
    inputs[f] = g_new (float, 3 * plane);
    random_input (inputs[f], plane, hfam_model_hparams (model), rand);
    cpu[f] = result_new (plane);
    o = outputs_of (&cpu[f]);
    if (!hfam_context_run_tensor (ctx, inputs[f], w, h, &o, &error))
      g_error ("cpu: %s", error->message);
  }
  hfam_context_free (ctx);

  static const struct {
    const char *name;
    HfamOptions options;
    gboolean no_graphs;
    gboolean against_one_stream;
    /* a way forced wherever it applies: HFAM_CUDA_SPLIT_K or HFAM_CUDA_GEMM, and its value */
    const char *force, *value;
  } configs[] = {
    { .name = "fp32", .options = { .precision = HFAM_PRECISION_FP32, .pipeline_depth = 1 } },
    { .name = "fp32 no graphs",
      .options = { .precision = HFAM_PRECISION_FP32, .pipeline_depth = 1 },
      .no_graphs = TRUE,
      .against_one_stream = TRUE },
    { .name = "fp16", .options = { .precision = HFAM_PRECISION_FP16, .pipeline_depth = 1 },
      .against_one_stream = TRUE },
    { .name = "fp16 no graphs",
      .options = { .precision = HFAM_PRECISION_FP16, .pipeline_depth = 1 },
      .no_graphs = TRUE },
    { .name = "fp16 depth 2", .options = { .precision = HFAM_PRECISION_FP16, .pipeline_depth = 2 },
      .against_one_stream = TRUE },
    { .name = "fp32 depth 2 no graphs",
      .options = { .precision = HFAM_PRECISION_FP32, .pipeline_depth = 2 },
      .no_graphs = TRUE },
    { .name = "fp32 split-K 4",
      .options = { .precision = HFAM_PRECISION_FP32, .pipeline_depth = 1 },
      .force = "HFAM_CUDA_SPLIT_K", .value = "4" },
    { .name = "fp16 split-K 2",
      .options = { .precision = HFAM_PRECISION_FP16, .pipeline_depth = 1 },
      .force = "HFAM_CUDA_SPLIT_K", .value = "2" },
    { .name = "fp32 cuBLASLt",
      .options = { .precision = HFAM_PRECISION_FP32, .pipeline_depth = 1 },
      .force = "HFAM_CUDA_GEMM", .value = "1" },
    { .name = "fp16 cuBLASLt depth 2",
      .options = { .precision = HFAM_PRECISION_FP16, .pipeline_depth = 2 },
      .against_one_stream = TRUE, .force = "HFAM_CUDA_GEMM", .value = "1" },
  };
  for (size_t c = 0; c < G_N_ELEMENTS (configs) && opened; c++) {
    const gboolean fp16 = configs[c].options.precision == HFAM_PRECISION_FP16;
    const HfamCudaOptions cuda = { .device_id = -1, .no_graphs = configs[c].no_graphs };
    Result gpu[3];
    char what[160];
    FramesRun run;

    if (configs[c].force)
      g_setenv (configs[c].force, configs[c].value, TRUE);
    run = run_frames (model, configs[c].name, &configs[c].options, &cuda, inputs, w, h, gpu);
    if (run != FRAMES_RAN) {
      if (configs[c].force)
        g_unsetenv (configs[c].force);
      opened = run == FRAMES_FAILED;
      continue;
    }
    for (int f = 0; f < 3; f++) {
      snprintf (what, sizeof what, "%s %dx%d %s frame %d", base, w, h, configs[c].name, f);
      compare (what, &gpu[f], &cpu[f], plane, fp16);
    }
    if (configs[c].against_one_stream) {
      snprintf (what, sizeof what, "%s %dx%d %s", base, w, h, configs[c].name);
      compare_one_stream (model, what, &configs[c].options, &cuda, inputs, w, h, gpu);
    }
    if (configs[c].force)
      g_unsetenv (configs[c].force);
    for (int f = 0; f < 3; f++)
      result_clear (&gpu[f]);
  }
  if (opened) {
    check_shared_weights (model, path, base, inputs[0], w, h, &cpu[0]);
    /* the forced ways and graphs off on the small maps only (each is a search of its own) */
    static const BatchConfig batch_configs[] = {
      { .name = "fp32", .precision = HFAM_PRECISION_FP32, .depth = 1 },
      { .name = "fp16 depth 2", .precision = HFAM_PRECISION_FP16, .depth = 2 },
      { .name = "fp32 depth 2 no graphs", .precision = HFAM_PRECISION_FP32, .depth = 2,
        .no_graphs = TRUE },
      { .name = "fp16 split-K 2", .precision = HFAM_PRECISION_FP16, .depth = 1,
        .force = "HFAM_CUDA_SPLIT_K", .value = "2" },
      { .name = "fp32 cuBLASLt depth 2", .precision = HFAM_PRECISION_FP32, .depth = 2,
        .force = "HFAM_CUDA_GEMM", .value = "1" },
      { .name = "fp16 one stream", .precision = HFAM_PRECISION_FP16, .depth = 1,
        .force = "HFAM_CUDA_ONE_STREAM", .value = "1" },
    };
    const size_t n_batch_configs = (size_t) w * h <= 160 * 96 ? G_N_ELEMENTS (batch_configs) : 2;
    for (size_t c = 0; c < n_batch_configs; c++)
      check_batches (model, base, &batch_configs[c], inputs, w, h, cpu);
  }
  for (int f = 0; f < 3; f++) {
    g_free (inputs[f]);
    result_clear (&cpu[f]);
  }
  return opened;
}

int
main (int argc, char **argv)
{
  const char *seed_env = g_getenv ("HFAM_TEST_SEED");
  const guint32 seed = seed_env ? (guint32) g_ascii_strtoull (seed_env, NULL, 10)
                                : (guint32) g_get_real_time ();

  if (argc < 3 || argc % 2 == 0) {
    fprintf (stderr, "usage: %s MODEL WxH [MODEL WxH ...]\n", argv[0]);
    return 2;
  }
  /* line by line: an abort must not swallow what ran before it */
  setvbuf (stdout, NULL, _IOLBF, 0);
  printf ("seed %u (HFAM_TEST_SEED repeats it)\n", seed);
  {
    /* skip at once where no device opens */
    g_autoptr (GError) error = NULL;
    g_autoptr (HfamModel) model = hfam_model_load (argv[1], &error);
    const HfamOptions cuda = { .backend = HFAM_BACKEND_CUDA };
    HfamContext *ctx = model ? hfam_context_new (model, &cuda, NULL, &error) : NULL;
    if (model && !ctx) {
      printf ("SKIP: %s\n", error->message);
      return 77;
    }
    hfam_context_free (ctx);
  }
  for (int i = 1; i + 1 < argc; i += 2) {
    int w, h;
    if (sscanf (argv[i + 1], "%dx%d", &w, &h) != 2) {
      fprintf (stderr, "%s: not WxH\n", argv[i + 1]);
      return 2;
    }
    if (!run_case (argv[i], w, h, seed + (guint32) i))
      return 77;
  }
  printf ("%s\n", n_failed ? "FAILED" : "all passed");
  return n_failed ? 1 : 0;
}
