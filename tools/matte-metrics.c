/* The definitions are in matte-metrics.h; the comments here say how they are computed. */
#include "matte-metrics.h"

#include <math.h>
#include <string.h>

/* DIM reports SAD, Grad and Conn in thousands: its test images are large. */
#define SCORE_SCALE 1000.0

/* gaussgradient's cut-off: the half size is where gauss(x) falls to this value. */
#define GAUSSGRADIENT_EPSILON 1e-2

double
matte_sad (const double *pred, const double *gt, int width, int height)
{
  gsize n = (gsize) width * height;
  double sum = 0;

  for (gsize i = 0; i < n; i++)
    sum += fabs (pred[i] - gt[i]);
  return sum / SCORE_SCALE;
}

double
matte_mse (const double *pred, const double *gt, int width, int height)
{
  gsize n = (gsize) width * height;
  double sum = 0;

  for (gsize i = 0; i < n; i++)
    sum += (pred[i] - gt[i]) * (pred[i] - gt[i]);
  return sum / n;
}

/* gaussgradient's 2-D kernel hx(y, x) = gauss(y) dgauss(x) / norm is separable; the norm is
 * folded into the derivative factor. Index u + half holds tap u. */
typedef struct {
  int half;
  double *smooth;  /* gauss(u) */
  double *deriv;   /* dgauss(u) / norm */
} GradKernel;

static double
gauss (double x, double sigma)
{
  return exp (-x * x / (2 * sigma * sigma)) / (sigma * sqrt (2 * G_PI));
}

static void
grad_kernel_init (GradKernel *kernel)
{
  double sigma = MATTE_GRAD_SIGMA, smooth_sq = 0, deriv_sq = 0;
  int half = (int) ceil (sigma * sqrt (-2 * log (sqrt (2 * G_PI) * sigma
                                                 * GAUSSGRADIENT_EPSILON)));

  kernel->half = half;
  kernel->smooth = g_new (double, 2 * half + 1);
  kernel->deriv = g_new (double, 2 * half + 1);
  for (int u = -half; u <= half; u++) {
    double g = gauss (u, sigma), d = -u * g / (sigma * sigma);
    kernel->smooth[u + half] = g;
    kernel->deriv[u + half] = d;
    smooth_sq += g * g;
    deriv_sq += d * d;
  }
  /* The squared norm of an outer product is the product of the factors' squared norms. */
  double norm = sqrt (smooth_sq * deriv_sq);
  for (int i = 0; i < 2 * half + 1; i++)
    kernel->deriv[i] /= norm;
}

static void
grad_kernel_clear (GradKernel *kernel)
{
  g_free (kernel->smooth);
  g_free (kernel->deriv);
}

/* out(x, y) = sum_u k(u) in(x - u, y): a convolution along each row, borders replicated. */
static void
convolve_rows (const double *in, int width, int height, const double *k, int half,
               double *out)
{
  for (int y = 0; y < height; y++) {
    const double *row = in + (gsize) y * width;
    for (int x = 0; x < width; x++) {
      double sum = 0;
      for (int u = -half; u <= half; u++)
        sum += k[u + half] * row[CLAMP (x - u, 0, width - 1)];
      out[(gsize) y * width + x] = sum;
    }
  }
}

/* |grad alpha|: gx = smooth along y of (deriv along x), gy = deriv along y of (smooth along
 * x). Clamping each axis in turn replicates the border exactly as the 2-D filter does.
 * `along_x`: two planes of scratch. */
static void
gradient_magnitude (const double *alpha, int width, int height, const GradKernel *kernel,
                    double *along_x[2], double *magnitude)
{
  int half = kernel->half;
  double *smoothed = along_x[0], *derived = along_x[1];

  convolve_rows (alpha, width, height, kernel->smooth, half, smoothed);
  convolve_rows (alpha, width, height, kernel->deriv, half, derived);
  for (int y = 0; y < height; y++)
    for (int x = 0; x < width; x++) {
      double gx = 0, gy = 0;
      for (int v = -half; v <= half; v++) {
        gsize i = (gsize) CLAMP (y - v, 0, height - 1) * width + x;
        gx += kernel->smooth[v + half] * derived[i];
        gy += kernel->deriv[v + half] * smoothed[i];
      }
      magnitude[(gsize) y * width + x] = sqrt (gx * gx + gy * gy);
    }
}

double
matte_grad (const double *pred, const double *gt, int width, int height)
{
  gsize n = (gsize) width * height;
  g_autofree double *planes = g_new (double, 4 * n);
  double *along_x[2] = { planes, planes + n };
  double *pred_magnitude = planes + 2 * n, *gt_magnitude = planes + 3 * n;
  GradKernel kernel;
  double sum = 0;

  grad_kernel_init (&kernel);
  gradient_magnitude (pred, width, height, &kernel, along_x, pred_magnitude);
  gradient_magnitude (gt, width, height, &kernel, along_x, gt_magnitude);
  grad_kernel_clear (&kernel);

  for (gsize i = 0; i < n; i++) {
    double d = pred_magnitude[i] - gt_magnitude[i];
    sum += d * d;
  }
  return sum / SCORE_SCALE;
}

/* Labels the 4-connected regions of `mask` (label 0: outside the mask) by flood fill from
 * seeds taken in column-major order, so that labels number the regions as Matlab's
 * bwconncomp does, and returns the label of the largest region, the first of equal ones;
 * 0 when the mask is empty. `queue`: scratch for width x height indices. */
static guint32
label_largest_region (const guint8 *mask, int width, int height, guint32 *label,
                      gsize *queue)
{
  guint32 next_label = 1, largest = 0;
  gsize largest_size = 0;

  memset (label, 0, (gsize) width * height * sizeof *label);
  for (int x0 = 0; x0 < width; x0++)
    for (int y0 = 0; y0 < height; y0++) {
      gsize seed = (gsize) y0 * width + x0, head = 0, tail = 0;

      if (!mask[seed] || label[seed])
        continue;
      label[seed] = next_label;
      queue[tail++] = seed;
      while (head < tail) {
        gsize i = queue[head++];
        int x = i % width, y = i / width;
        gsize neighbours[4];
        int n_neighbours = 0;

        if (x > 0)
          neighbours[n_neighbours++] = i - 1;
        if (x < width - 1)
          neighbours[n_neighbours++] = i + 1;
        if (y > 0)
          neighbours[n_neighbours++] = i - width;
        if (y < height - 1)
          neighbours[n_neighbours++] = i + width;
        for (int k = 0; k < n_neighbours; k++) {
          gsize j = neighbours[k];
          if (mask[j] && !label[j]) {
            label[j] = next_label;
            queue[tail++] = j;
          }
        }
      }
      /* The queue holds every pixel of the region once: its size. */
      if (tail > largest_size) {
        largest_size = tail;
        largest = next_label;
      }
      next_label++;
    }
  return largest;
}

static double
conn_phi (double alpha, double level)
{
  double d = alpha - level;
  return d >= MATTE_CONN_PHI_CUT ? 1 - d : 1;
}

double
matte_conn (const double *pred, const double *gt, int width, int height)
{
  gsize n = (gsize) width * height;
  g_autofree double *level = g_new (double, n);  /* DIM's l_map: -1 until a pixel leaves */
  g_autofree guint8 *mask = g_new (guint8, n);
  g_autofree guint32 *label = g_new (guint32, n);
  g_autofree gsize *queue = g_new (gsize, n);
  double sum = 0;

  for (gsize i = 0; i < n; i++)
    level[i] = -1;
  for (int k = 1; k <= MATTE_CONN_STEPS; k++) {
    /* k / 10 rather than k * 0.1: the thresholds are the doubles nearest to 0.1, 0.2, ... */
    double threshold = (double) k / MATTE_CONN_STEPS;
    double previous = (double) (k - 1) / MATTE_CONN_STEPS;

    for (gsize i = 0; i < n; i++)
      mask[i] = pred[i] >= threshold && gt[i] >= threshold;
    guint32 largest = label_largest_region (mask, width, height, label, queue);
    for (gsize i = 0; i < n; i++)
      if (level[i] < 0 && (largest == 0 || label[i] != largest))
        level[i] = previous;
  }

  for (gsize i = 0; i < n; i++) {
    double l = level[i] < 0 ? 1 : level[i];
    sum += fabs (conn_phi (pred[i], l) - conn_phi (gt[i], l));
  }
  return sum / SCORE_SCALE;
}

void
matte_score (const double *pred, const double *gt, int width, int height,
             MatteScores *scores)
{
  scores->sad = matte_sad (pred, gt, width, height);
  scores->mse = matte_mse (pred, gt, width, height);
  scores->grad = matte_grad (pred, gt, width, height);
  scores->conn = matte_conn (pred, gt, width, height);
}
