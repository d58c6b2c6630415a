/* What the engine's tests share (engine-test.h). */
#include "engine-test.h"

#include <math.h>
#include <stdlib.h>

const char *golden_dir;

void
engine_test_init (int *argc, char ***argv)
{
  g_test_init (argc, argv, NULL);
  if (*argc < 2) {
    g_printerr ("usage: %s GOLDEN_DIR\n", (*argv)[0]);
    exit (2);
  }
  golden_dir = (*argv)[1];
}

char *
golden_path (const char *name, const char *suffix)
{
  g_autofree char *file = g_strconcat (name, suffix, NULL);
  return g_build_filename (golden_dir, file, NULL);
}

double
max_abs_diff (const float *a, const float *b, size_t n)
{
  double worst = 0.0;
  for (size_t i = 0; i < n; i++)
    worst = MAX (worst, fabs ((double) a[i] - b[i]));
  return worst;
}

HfamContext *
cpu_context (HfamModel *model, int pipeline_depth, GError **error)
{
  const HfamOptions options = {
    .backend = HFAM_BACKEND_CPU, .precision = HFAM_PRECISION_FP32, .n_threads = 2,
    .pipeline_depth = pipeline_depth,
  };
  return hfam_context_new (model, &options, NULL, error);
}

HfamImage
packed_image (guint8 *pixels, int w, int h, int bpp, HfamFormat format)
{
  return (HfamImage) {
    .planes = { pixels }, .strides = { w * bpp }, .width = w, .height = h, .format = format,
  };
}

HfamImage
float_matte (float *alpha, int w, int h)
{
  return (HfamImage) {
    .planes = { (guint8 *) alpha }, .strides = { (int) sizeof (float) * w }, .width = w,
    .height = h, .format = HFAM_FORMAT_GRAY32F,
  };
}

void
fill_frame (guint8 *pixels, int seed)
{
  for (size_t i = 0; i < (size_t) PIPE_W * PIPE_H * 4; i++)
    pixels[i] = (guint8) (i * (7 + seed) + (i / 4) * (3 * seed + 1));
}

void
expect_same_matte (const float *got, const float *want)
{
  g_assert_cmpfloat (max_abs_diff (got, want, (size_t) PIPE_W * PIPE_H), <=, 1e-6);
}
