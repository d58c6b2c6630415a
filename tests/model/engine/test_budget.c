/* The context's host memory budget (HfamOptions.memory_budget) and the API's bounds: sizes
 * that do not fit are refused before they are allocated, with HFAM_ERROR_BUDGET, and leave a
 * context that runs the next size that fits as a fresh one would; values out of the API's
 * range are refused with HFAM_ERROR_ARGUMENT naming the value and the bound.
 * Usage: test-budget GOLDEN_DIR DEFAULT_MODEL */
#include "hfam-internal.h"

#include <string.h>

#define MIB (G_GUINT64_CONSTANT (1) << 20)
#define W 70
#define H 45

static const char *golden_dir, *default_model;

static HfamModel *
tiny_model (void)
{
  g_autofree char *path = g_build_filename (golden_dir, "r18_64x64.safetensors", NULL);
  g_autoptr (GError) error = NULL;
  HfamModel *model = hfam_model_load (path, &error);

  g_assert_no_error (error);
  return model;
}

static HfamContext *
budget_context (HfamModel *model, int pipeline_depth, guint64 budget)
{
  const HfamOptions options = {
    .backend = HFAM_BACKEND_CPU, .n_threads = 2, .pipeline_depth = pipeline_depth,
    .memory_budget = budget,
  };
  g_autoptr (GError) error = NULL;
  HfamContext *ctx = hfam_context_new (model, &options, NULL, &error);

  g_assert_no_error (error);
  return ctx;
}

static HfamImage
rgba_frame (guint8 *pixels, int w, int h)
{
  for (size_t i = 0; i < (size_t) w * h * 4; i++)
    pixels[i] = (guint8) (i * 7 + (i / 4) * 3);
  return (HfamImage) {
    .planes = { pixels }, .strides = { 4 * w }, .width = w, .height = h,
    .format = HFAM_FORMAT_RGBA,
  };
}

static gboolean
run_at (HfamContext *ctx, const HfamImage *frame, int long_side, float *alpha, GError **error)
{
  const HfamFrameParams params = { .long_side = long_side };
  const HfamImage matte = {
    .planes = { (guint8 *) alpha }, .strides = { (int) sizeof (float) * frame->width },
    .width = frame->width, .height = frame->height, .format = HFAM_FORMAT_GRAY32F,
  };

  return hfam_context_run (ctx, frame, &params, &matte, 1, error);
}

static void
expect_same (const float *got, const float *want, size_t n)
{
  for (size_t i = 0; i < n; i++)
    g_assert_cmpfloat (got[i], ==, want[i]);
}

static void
expect_budget_error (GError **error, const char *size)
{
  g_assert_error (*error, HFAM_ERROR, HFAM_ERROR_BUDGET);
  g_assert_nonnull (strstr ((*error)->message, size));
  g_assert_nonnull (strstr ((*error)->message, "memory budget of"));
  g_clear_error (error);
}

/* A size above the budget is refused before its plan is allocated, and the context then
 * runs a size that fits, synchronously and pipelined, as a fresh one does. */
static void
test_refused_then_fits (gconstpointer data)
{
  const int depth = GPOINTER_TO_INT (data);
  const guint64 budget = 48 * MIB;
  g_autoptr (HfamModel) model = tiny_model ();
  g_autoptr (HfamContext) fresh = budget_context (model, 1, 0);
  g_autoptr (HfamContext) ctx = budget_context (model, depth, budget);
  g_autofree guint8 *pixels = g_new (guint8, W * H * 4);
  const HfamImage frame = rgba_frame (pixels, W, H);
  const HfamFrameParams big = { .long_side = 2048 };
  float want[W * H], got[W * H];
  g_autoptr (GError) error = NULL;

  g_assert_true (run_at (fresh, &frame, 64, want, &error));
  g_assert_no_error (error);
  for (int round = 0; round < 2; round++) {
    if (depth == 1)
      g_assert_false (run_at (ctx, &frame, 2048, got, &error));
    else
      g_assert_false (hfam_context_submit (ctx, &frame, &big, &error));
    expect_budget_error (&error, "inference size 2048x1312");
    g_assert_cmpuint (hfam_context_host_memory (ctx), <=, budget);
    if (depth == 1) {
      g_assert_true (run_at (ctx, &frame, 64, got, &error));
    } else {
      const HfamFrameParams fits = { .long_side = 64 };
      const HfamImage matte = {
        .planes = { (guint8 *) got }, .strides = { (int) sizeof (float) * W }, .width = W,
        .height = H, .format = HFAM_FORMAT_GRAY32F,
      };
      g_assert_true (hfam_context_submit (ctx, &frame, &fits, &error)
                     && hfam_context_submit (ctx, &frame, &fits, &error)
                     && hfam_context_collect (ctx, NULL, &matte, 1, &error));
      expect_same (got, want, W * H);
      g_assert_true (hfam_context_collect (ctx, NULL, &matte, 1, &error));
    }
    g_assert_no_error (error);
    expect_same (got, want, W * H);
    g_assert_cmpuint (hfam_context_host_memory (ctx), <=, budget);
  }
}

/* The budget stops a plan wherever it runs out: in the activations, a padded copy, the
 * weights (their reordered copy, or the plain one it is made from), the scratchpad. Whatever
 * half of the weights a refused plan made, the next plan that fits computes what a fresh
 * context does: a weight reorder that failed must not leave its zeroed copy for the next.
 * (96x32 and 32x32 take the same weight layouts: no map is large enough for Winograd.) */
static void
test_refused_anywhere (void)
{
  enum { FW = 90, FH = 30 };
  g_autoptr (HfamModel) model = tiny_model ();
  g_autoptr (HfamContext) fresh = budget_context (model, 1, 0);
  guint8 pixels[FW * FH * 4];
  const HfamImage frame = rgba_frame (pixels, FW, FH);
  float want[FW * FH], got[FW * FH];
  g_autoptr (GError) error = NULL;
  guint64 needed_96, needed_32;
  int n_fitted = 0, n_refused = 0;

  /* what each size holds after a run (the 32x32 plan with the weights the 96x32 one made) */
  g_assert_true (run_at (fresh, &frame, 96, got, &error));
  needed_96 = hfam_context_host_memory (fresh);
  g_assert_true (run_at (fresh, &frame, 32, want, &error));
  needed_32 = hfam_context_host_memory (fresh);
  g_assert_no_error (error);
  g_assert_cmpuint (needed_32, <, needed_96);
  /* budgets from a little under what 32x32 needs to what 96x32 does */
  for (int step = 0; step < 40; step++) {
    const guint64 budget = needed_32 * 15 / 16 + (needed_96 - needed_32 * 15 / 16) * step / 40;
    g_autoptr (HfamContext) ctx = budget_context (model, 1, budget);

    if (run_at (ctx, &frame, 96, got, &error)) {
      g_assert_no_error (error);
      continue;
    }
    g_assert_error (error, HFAM_ERROR, HFAM_ERROR_BUDGET);
    g_clear_error (&error);
    n_refused++;
    if (!run_at (ctx, &frame, 32, got, &error)) {
      /* too small a budget for that size too */
      g_assert_error (error, HFAM_ERROR, HFAM_ERROR_BUDGET);
      g_clear_error (&error);
      continue;
    }
    expect_same (got, want, FW * FH);
    n_fitted++;
  }
  g_test_message ("%d budgets refused 96x32, %d of them ran 32x32", n_refused, n_fitted);
  g_assert_cmpint (n_refused, >, 20);
  g_assert_cmpint (n_fitted, >, 10);
}

/* A frame whose own buffers (its preprocessing, the matte at its size) do not fit is refused
 * before the network runs. */
static void
test_large_frame (void)
{
  const int w = 2000, h = 2000;
  g_autoptr (HfamModel) model = tiny_model ();
  g_autoptr (HfamContext) ctx = budget_context (model, 1, 32 * MIB);
  g_autofree guint8 *pixels = g_new (guint8, (size_t) w * h * 4);
  g_autofree float *alpha = g_new (float, (size_t) w * h);
  const HfamImage frame = rgba_frame (pixels, w, h), small = rgba_frame (pixels, W, H);
  g_autoptr (GError) error = NULL;

  g_assert_false (run_at (ctx, &frame, 64, alpha, &error));
  expect_budget_error (&error, "frame 2000x2000");
  g_assert_true (run_at (ctx, &small, 64, alpha, &error));
  g_assert_no_error (error);
}

/* The default model in fp32 at 4096x4096 would commit about 10.3 GiB by the plan's estimate (int8
 * keeps most values in a quarter of the bytes: its peak at 4096x3072 was 4.1 GiB); the default
 * budget is at most 8 GiB: refused from the estimate, before anything of that size is allocated. */
static void
test_default_budget (void)
{
  const HfamOptions options = {
    .backend = HFAM_BACKEND_CPU, .n_threads = 2, .precision = HFAM_PRECISION_FP32,
  };
  g_autoptr (GError) error = NULL;
  g_autoptr (HfamModel) model = hfam_model_load (default_model, &error);
  g_autoptr (HfamContext) ctx = NULL;
  g_autofree guint8 *pixels = g_new (guint8, 480 * 480 * 4);
  g_autofree float *alpha = g_new (float, 480 * 480);
  const HfamImage frame = rgba_frame (pixels, 480, 480);

  g_assert_no_error (error);
  ctx = hfam_context_new (model, &options, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (run_at (ctx, &frame, 4096, alpha, &error));
  expect_budget_error (&error, "inference size 4096x4096");
  g_assert_cmpuint (hfam_context_host_memory (ctx), ==, 0);
}

static void
expect_argument_error (gboolean ok, GError **error, const char *value, const char *bound)
{
  g_assert_false (ok);
  g_assert_error (*error, HFAM_ERROR, HFAM_ERROR_ARGUMENT);
  g_assert_nonnull (strstr ((*error)->message, value));
  g_assert_nonnull (strstr ((*error)->message, bound));
  g_clear_error (error);
}

/* Long sides and frame sides out of the API's range, and the inference size of extreme
 * arguments, which must not overflow. */
static void
test_bounds (void)
{
  g_autoptr (HfamModel) model = tiny_model ();
  g_autoptr (HfamContext) ctx = budget_context (model, 1, 0);
  guint8 pixels[W * H * 4];
  float alpha[W * H];
  const HfamImage frame = rgba_frame (pixels, W, H);
  const HfamFrameParams huge = { .long_side = G_MAXINT };
  HfamImage wide = frame;
  g_autoptr (GError) error = NULL;
  int w, h;

  expect_argument_error (run_at (ctx, &frame, G_MAXINT, alpha, &error), &error, "2147483647",
                         "8192");
  expect_argument_error (hfam_context_submit (ctx, &frame, &huge, &error), &error,
                         "2147483647", "8192");
  expect_argument_error (run_at (ctx, &frame, HFAM_MAX_LONG_SIDE + 1, alpha, &error), &error,
                         "8193", "8192");
  /* (the check comes before the planes are read) */
  wide.width = HFAM_MAX_FRAME_SIDE + 1;
  wide.strides[0] = G_MAXINT;
  expect_argument_error (hfam_context_submit (ctx, &wide, NULL, &error), &error, "32769x45",
                         "32768");
  wide.width = G_MAXINT;
  expect_argument_error (hfam_context_write_kept (ctx, &wide, NULL, 0, &error), &error,
                         "2147483647x45", "32768");

  hfam_inference_dims (1, 1, 1.0f, G_MAXINT, &w, &h);
  g_assert_cmpint (w, >=, 32);
  g_assert_cmpint (w % 32, ==, 0);
  g_assert_cmpint (w, ==, h);
  hfam_inference_dims (G_MAXINT, 1, 1.0f, G_MAXINT, &w, &h);
  g_assert_cmpint (w, >, 0);
  g_assert_cmpint (h, ==, 32);
  hfam_inference_dims (HFAM_MAX_FRAME_SIDE, 1, 1.0f, HFAM_MAX_LONG_SIDE, &w, &h);
  g_assert_cmpint (w, ==, HFAM_MAX_LONG_SIDE);
  g_assert_cmpint (h, ==, 32);

  /* and the context still runs */
  g_assert_true (run_at (ctx, &frame, 64, alpha, &error));
  g_assert_no_error (error);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (argc < 3) {
    g_printerr ("usage: test-budget GOLDEN_DIR DEFAULT_MODEL\n");
    return 2;
  }
  golden_dir = argv[1];
  default_model = argv[2];
  g_test_add_data_func ("/budget/refused-then-fits/sync", GINT_TO_POINTER (1),
                        test_refused_then_fits);
  g_test_add_data_func ("/budget/refused-then-fits/pipelined", GINT_TO_POINTER (2),
                        test_refused_then_fits);
  g_test_add_func ("/budget/refused-anywhere", test_refused_anywhere);
  g_test_add_func ("/budget/large-frame", test_large_frame);
  g_test_add_func ("/budget/default", test_default_budget);
  g_test_add_func ("/api/bounds", test_bounds);
  return g_test_run ();
}
