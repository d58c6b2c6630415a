/* The four matting errors of HFAM.md section 7 (SAD, MSE, Grad, Conn), computed over the whole
 * image as the Deep Image Matting (DIM) evaluation code defines them, on alphas in [0, 1].
 * Mattes are width x height doubles, row-major and contiguous; both have the same size.
 * Every sum is accumulated in double.
 *
 *   SAD  = sum |p - g| / 1000
 *   MSE  = mean (p - g)^2                                (not scaled)
 *   Grad = sum (|grad p| - |grad g|)^2 / 1000, where grad is DIM's gaussgradient: sigma 1.4,
 *          a 9 x 9 kernel gauss(dy) * dgauss(dx) scaled to unit L2 norm (half size
 *          ceil(sigma sqrt(-2 ln(sqrt(2 pi) sigma 0.01))) = 4), convolution with the border
 *          pixels replicated, and its transpose for y. Unlike DIM's Matlab code the alphas are
 *          not min-max stretched (mat2gray): the two agree whenever a matte spans 0 to 1.
 *   Conn = sum |phi(p) - phi(g)| / 1000, phi(a) = 1 - (a - l) when a - l >= 0.15, else 1.
 *          l(x) = t_(k-1) for the first threshold t_k = k / 10 (k = 1..10) at which x is
 *          outside the largest 4-connected region of {p >= t_k and g >= t_k}, and 1 when x
 *          never leaves it. Among regions of equal size the largest is the one whose first
 *          pixel comes first in column-major order (Matlab's bwconncomp followed by max). */
#ifndef HFAM_TOOLS_MATTE_METRICS_H
#define HFAM_TOOLS_MATTE_METRICS_H

#include <glib.h>

G_BEGIN_DECLS

#define MATTE_GRAD_SIGMA 1.4
#define MATTE_CONN_STEPS 10     /* thresholds 0.1, 0.2, ..., 1 */
#define MATTE_CONN_PHI_CUT 0.15

typedef struct {
  double sad, mse, grad, conn;
} MatteScores;

double matte_sad (const double *pred, const double *gt, int width, int height);
double matte_mse (const double *pred, const double *gt, int width, int height);
double matte_grad (const double *pred, const double *gt, int width, int height);
double matte_conn (const double *pred, const double *gt, int width, int height);

void matte_score (const double *pred, const double *gt, int width, int height,
                  MatteScores *scores);

G_END_DECLS

#endif
