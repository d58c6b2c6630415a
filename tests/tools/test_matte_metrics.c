/* The matting errors of tools/matte-metrics.c on cases worked out by hand. Their agreement
 * with model/python/train/metrics.py on many mattes is agreement.py's job. */
#include <math.h>

#include "matte-metrics.h"

/* Relative to the larger magnitude; exact zeros compare exactly. */
static void
assert_close (double got, double want, double tolerance)
{
  if (want == 0)
    g_assert_cmpfloat (got, ==, 0);
  else
    g_assert_cmpfloat_with_epsilon (got, want, tolerance * fabs (want));
}

/* A smooth blob with a few hard steps and a hole: it touches 0 and 1 and much in between. */
static double *
varied_matte (int width, int height)
{
  double *alpha = g_new (double, (gsize) width * height);

  for (int y = 0; y < height; y++)
    for (int x = 0; x < width; x++) {
      double dx = (x - 0.4 * width) / width, dy = (y - 0.5 * height) / height;
      double a = 1.5 - 4 * sqrt (dx * dx + dy * dy);
      if ((x / 3 + y / 5) % 7 == 0)
        a = 0;
      alpha[(gsize) y * width + x] = CLAMP (a, 0, 1);
    }
  return alpha;
}

static void
test_identical (void)
{
  int w = 37, h = 23;
  g_autofree double *alpha = varied_matte (w, h);
  MatteScores s;

  matte_score (alpha, alpha, w, h, &s);
  g_assert_cmpfloat (s.sad, ==, 0);
  g_assert_cmpfloat (s.mse, ==, 0);
  g_assert_cmpfloat (s.grad, ==, 0);
  g_assert_cmpfloat (s.conn, ==, 0);
}

/* pred = gt + 0.25 over a gt in [0, 0.75]: SAD = 0.25 n / 1000, MSE = 0.0625, and the
 * gradients are the same (up to rounding: the derivative taps sum to 0 only nearly). */
static void
test_constant_offset (void)
{
  int w = 19, h = 11;
  gsize n = (gsize) w * h;
  g_autofree double *gt = varied_matte (w, h);
  g_autofree double *pred = g_new (double, n);

  for (gsize i = 0; i < n; i++) {
    gt[i] *= 0.75;
    pred[i] = gt[i] + 0.25;
  }
  assert_close (matte_sad (pred, gt, w, h), 0.25 * n / 1000, 1e-12);
  assert_close (matte_mse (pred, gt, w, h), 0.0625, 1e-12);
  g_assert_cmpfloat (matte_grad (pred, gt, w, h), <, 1e-20);
}

/* Flat gt 0.5, flat pred 0.75: every pixel is in the one region up to t = 0.5 and none at
 * 0.6, so l = 0.5; phi(0.75) = 1 - 0.25, phi(0.5) = 1: Conn = 0.25 n / 1000. */
static void
test_flat_conn (void)
{
  int w = 7, h = 5;
  gsize n = (gsize) w * h;
  g_autofree double *gt = g_new (double, n), *pred = g_new (double, n);

  for (gsize i = 0; i < n; i++) {
    gt[i] = 0.5;
    pred[i] = 0.75;
  }
  assert_close (matte_conn (pred, gt, w, h), 0.25 * n / 1000, 1e-12);
  g_assert_cmpfloat (matte_grad (pred, gt, w, h), <, 1e-20);
}

/* A vertical step (0 left of column k, 1 from k on) against a flat 0, and the same step
 * turned by 90 degrees. With g(u) = exp(-u^2 / (2 sigma^2)), d(u) = -u g(u), u = -4..4 (the
 * constant factors cancel in the unit L2 norm), the x gradient of the step at column x is
 * sum g * sum_{u <= x - k} d(u) / sqrt(sum g^2 sum d^2), the same in every row, and the y
 * gradient is 0: Grad = height * sum_x gx(x)^2 / 1000. */
static void
test_step_edge (void)
{
  int w = 16, h = 9, k = 7;
  double sigma = MATTE_GRAD_SIGMA, sum_g = 0, sum_g2 = 0, sum_d2 = 0, want = 0;
  g_autofree double *step = g_new0 (double, (gsize) w * h);
  g_autofree double *turned = g_new0 (double, (gsize) w * h);
  g_autofree double *flat = g_new0 (double, (gsize) w * h);

  for (int u = -4; u <= 4; u++) {
    double g = exp (-u * u / (2 * sigma * sigma));
    sum_g += g;
    sum_g2 += g * g;
    sum_d2 += u * g * u * g;
  }
  for (int x = 0; x < w; x++) {
    double tail = 0;
    for (int u = -4; u <= MIN (x - k, 4); u++)
      tail += -u * exp (-u * u / (2 * sigma * sigma));
    double gx = sum_g * tail / sqrt (sum_g2 * sum_d2);
    want += h * gx * gx / 1000;
  }

  for (int y = 0; y < h; y++)
    for (int x = k; x < w; x++)
      step[(gsize) y * w + x] = 1;
  /* turned is h wide and w high: row x of it is column x of the step */
  for (int x = k; x < w; x++)
    for (int y = 0; y < h; y++)
      turned[(gsize) x * h + y] = 1;

  double grad = matte_grad (step, flat, w, h);
  g_assert_cmpfloat (grad, >, 0);
  assert_close (grad, want, 1e-12);
  assert_close (matte_grad (flat, step, w, h), want, 1e-12);
  assert_close (matte_grad (turned, flat, h, w), want, 1e-12);
}

/* gt = 1 1 1 1, pred = 1 0.5 1 1. Up to t = 0.5 the four pixels are one region; from 0.6 the
 * regions are {0} and {2, 3}, the larger wins: pixels 0 and 1 leave with l = 0.5, pixels 2
 * and 3 never (l = 1). phi(pred) = 0.5 1 1 1, phi(gt) = 0.5 0.5 1 1: Conn = 0.5 / 1000. */
static void
test_conn_cut_off (void)
{
  const double gt[4] = { 1, 1, 1, 1 }, pred[4] = { 1, 0.5, 1, 1 };
  MatteScores s;

  matte_score (pred, gt, 4, 1, &s);
  assert_close (s.conn, 0.5 / 1000, 1e-12);
  assert_close (s.sad, 0.5 / 1000, 1e-12);
  assert_close (s.mse, 0.0625, 1e-12);
}

/* pred = [0 0.4; 0.1 0], gt = [0 0.1; 0.1 0]. At t = 0.1 the regions {top right} and
 * {bottom left} tie; bottom left comes first in column-major order and wins, so top right
 * leaves with l = 0 and bottom left at 0.2 with l = 0.1. Top right: phi(0.4) = 0.6,
 * phi(0.1) = 1 (0.1 < 0.15); bottom left: both d = 0. Conn = 0.4 / 1000 (the top right
 * region, first in row-major order, would give 0.3 / 1000). */
static void
test_conn_tie (void)
{
  const double pred[4] = { 0, 0.4, 0.1, 0 }, gt[4] = { 0, 0.1, 0.1, 0 };

  assert_close (matte_conn (pred, gt, 2, 2), 0.4 / 1000, 1e-12);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/metrics/identical", test_identical);
  g_test_add_func ("/metrics/constant-offset", test_constant_offset);
  g_test_add_func ("/metrics/flat-conn", test_flat_conn);
  g_test_add_func ("/metrics/step-edge", test_step_edge);
  g_test_add_func ("/metrics/conn-cut-off", test_conn_cut_off);
  g_test_add_func ("/metrics/conn-tie", test_conn_tie);
  return g_test_run ();
}
