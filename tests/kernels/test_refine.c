/* The matte refinement on the CPU (kernels/box.c, refine.c), the twin of refine.cu: the box
 * means bit-exact against the plain formula (small integers sum exactly), the key levels by
 * hand, the guided filter against a plain double-precision oracle written from the paper's
 * formulas (windows summed pixel by pixel), and its properties: a constant guide passes a
 * smooth alpha through; a step in the guide sharpens a soft step; the matte held over time
 * against the same formula on the refined and the resized planes; and the same planes from
 * one thread and from a team. */
#include "box.h"
#include "kernel-test.h"
#include "refine.h"
#include "resize.h"

#include <glib.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

static GRand *rng;

/* ---- box means ---- */

typedef struct {
  const float *src;
  float *dst;
  int w, c;
} Plain;

static const float *
plain_in (int y, float *scratch, void *user)
{
  const Plain *p = user;
  return p->src + (size_t) y * p->w * p->c;
}

static void
plain_out (int y, const float *mean, float *scratch, void *user)
{
  const Plain *p = user;
  memcpy (p->dst + (size_t) y * p->w * p->c, mean, sizeof (float) * p->w * p->c);
}

static void
test_box_exact (void)
{
  /* the last size is large enough for several threads' bands */
  static const int sizes[][3] = { { 13, 11, 5 }, { 7, 9, 8 }, { 1, 1, 4 }, { 30, 3, 16 },
                                  { 128, 72, 8 } };
  static const int radii[] = { 0, 1, 3, 20 };

  omp_set_num_threads (3);
  for (size_t s = 0; s < G_N_ELEMENTS (sizes); s++)
    for (size_t ri = 0; ri < G_N_ELEMENTS (radii); ri++) {
      const int w = sizes[s][0], h = sizes[s][1], c = sizes[s][2], r = radii[ri];
      const size_t n = (size_t) w * h * c;
      g_autofree float *src = g_new (float, n), *dst = g_new (float, n);
      Plain p = { src, dst, w, c };

      for (size_t i = 0; i < n; i++)
        src[i] = (float) g_rand_int_range (rng, 0, 10);
      g_assert_cmpint (hfam_box_mean (w, h, c, r, plain_in, plain_out, &p), ==, 0);
      for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
          const int x0 = MAX (x - r, 0), x1 = MIN (x + r, w - 1);
          const int y0 = MAX (y - r, 0), y1 = MIN (y + r, h - 1);
          for (int k = 0; k < c; k++) {
            float sum = 0.0f;
            for (int v = y0; v <= y1; v++)
              for (int u = x0; u <= x1; u++)
                sum += src[((size_t) v * w + u) * c + k];
            g_assert_cmpfloat (dst[((size_t) y * w + x) * c + k], ==,
                               sum * (1.0f / (float) ((x1 - x0 + 1) * (y1 - y0 + 1))));
          }
        }
    }
  g_assert_cmpint (hfam_box_mean (0, 4, 4, 1, plain_in, plain_out, NULL), ==, -1);
  g_assert_cmpint (hfam_box_mean (4, 4, 4, -1, plain_in, plain_out, NULL), ==, -1);
  omp_set_num_threads (2);
}

/* ---- key levels ---- */

static void
test_key_levels (void)
{
  float a[] = { -0.5f, 0.1f, 0.2f, 0.4f, 0.6f, 0.9f, 1.5f, 0.3f };
  const float expect[] = { 0.0f, 0.0f, 0.0f, 0.5f, 1.0f, 1.0f, 1.0f, 0.25f };
  float b[] = { -0.5f, 0.25f, 1.5f };
  const HfamKeyLevels levels = { 0.2f, 0.6f }, identity = { 0.0f, 1.0f };
  const HfamKeyLevels bad[] = { { 0.5f, 0.5f }, { 0.6f, 0.2f }, { -0.1f, 1.0f }, { 0.0f, 1.1f },
                                { NAN, 1.0f } };

  hfam_key_levels_apply (a, G_N_ELEMENTS (a), &levels);
  for (size_t i = 0; i < G_N_ELEMENTS (a); i++)
    g_assert_cmpfloat_with_epsilon (a[i], expect[i], 1e-6);
  hfam_key_levels_apply (b, G_N_ELEMENTS (b), &identity);
  g_assert_cmpfloat (b[0], ==, 0.0f);
  g_assert_cmpfloat (b[1], ==, 0.25f);
  g_assert_cmpfloat (b[2], ==, 1.0f);
  g_assert_true (hfam_key_levels_valid (&levels));
  g_assert_true (hfam_key_levels_valid (&identity));
  for (size_t i = 0; i < G_N_ELEMENTS (bad); i++)
    g_assert_false (hfam_key_levels_valid (&bad[i]));
}

/* ---- the guided filter ---- */

typedef struct {
  int w, h;
  uint8_t *rgb;     /* RGB, 3 w bytes per row */
} Image;

static Image
image_random (int w, int h)
{
  Image im = { w, h, g_new (uint8_t, 3 * (size_t) w * h) };
  for (size_t i = 0; i < 3 * (size_t) w * h; i++)
    im.rgb[i] = (uint8_t) g_rand_int_range (rng, 0, 256);
  return im;
}

static HfamFrame
image_frame (const Image *im)
{
  return (HfamFrame) { { im->rgb }, { 3 * im->w }, im->w, im->h, HFAM_FRAME_RGB };
}

/* Solves the 3x3 system m x = b by Gaussian elimination with partial pivoting. */
static void
solve3 (double m[3][3], double b[3], double x[3])
{
  for (int col = 0; col < 3; col++) {
    int piv = col;
    for (int row = col + 1; row < 3; row++)
      if (fabs (m[row][col]) > fabs (m[piv][col]))
        piv = row;
    for (int k = 0; k < 3; k++) {
      const double t = m[col][k];
      m[col][k] = m[piv][k];
      m[piv][k] = t;
    }
    const double tb = b[col];
    b[col] = b[piv];
    b[piv] = tb;
    for (int row = col + 1; row < 3; row++) {
      const double f = m[row][col] / m[col][col];
      for (int k = col; k < 3; k++)
        m[row][k] -= f * m[col][k];
      b[row] -= f * b[col];
    }
  }
  for (int row = 2; row >= 0; row--) {
    double s = b[row];
    for (int k = row + 1; k < 3; k++)
      s -= m[row][k] * x[k];
    x[row] = s / m[row][row];
  }
}

/* The guided filter from its definition: guide planes I (nc of sw x sh), p, then the mean
 * coefficients, nc + 1 planes of sw x sh (a per channel, b). */
static void
guided_oracle (const double *I, int nc, const double *p, int sw, int sh, int r, double eps,
               double *mean_coef)
{
  const size_t plane = (size_t) sw * sh;
  g_autofree double *coef = g_new (double, (nc + 1) * plane);
  g_autofree double *prod = g_new (double, plane);

  for (int y = 0; y < sh; y++)
    for (int x = 0; x < sw; x++) {
      double mI[3], mp = window_mean (p, sw, sh, x, y, r), cov[3][3], v[3], a[3] = { 0 };
      for (int i = 0; i < nc; i++) {
        mI[i] = window_mean (I + i * plane, sw, sh, x, y, r);
        for (size_t q = 0; q < plane; q++)
          prod[q] = I[i * plane + q] * p[q];
        v[i] = window_mean (prod, sw, sh, x, y, r) - mI[i] * mp;
      }
      for (int i = 0; i < nc; i++)
        for (int j = 0; j < nc; j++) {
          for (size_t q = 0; q < plane; q++)
            prod[q] = I[i * plane + q] * I[j * plane + q];
          cov[i][j] = window_mean (prod, sw, sh, x, y, r) - mI[i] * mI[j] + (i == j ? eps : 0);
        }
      if (nc == 1)
        a[0] = v[0] / cov[0][0];
      else
        solve3 (cov, v, a);
      double b = mp;
      for (int i = 0; i < nc; i++) {
        coef[i * plane + (size_t) y * sw + x] = a[i];
        b -= a[i] * mI[i];
      }
      coef[nc * plane + (size_t) y * sw + x] = b;
    }
  for (int k = 0; k <= nc; k++)
    for (int y = 0; y < sh; y++)
      for (int x = 0; x < sw; x++)
        mean_coef[k * plane + (size_t) y * sw + x] = window_mean (coef + k * plane, sw, sh, x, y,
                                                                  r);
}

/* hfam_refine against the oracle: the guide and alpha at the statistics' size from the kernels
 * the filter documents using (checked elsewhere), the rest from the definition in double. */
static void
check_refine (int fw, int fh, int aw, int ah, int sw, int sh, int colour, int r, float eps)
{
  const int nc = colour ? 3 : 1;
  const size_t plane = (size_t) sw * sh;
  static const int order[3] = { 0, 1, 2 }, offsets[3] = { 0, 1, 2 };
  static const float zero[3] = { 0, 0, 0 }, one[3] = { 1, 1, 1 };
  Image im = image_random (fw, fh);
  const HfamFrame frame = image_frame (&im);
  const HfamRefineParams p = { r, eps, sw == aw && sh == ah ? 0 : sw, sw == aw && sh == ah ? 0 : sh,
                               colour };
  g_autofree float *alpha = g_new (float, aw * ah), *low = g_new (float, plane);
  g_autofree float *rgb = g_new (float, 3 * plane), *out = g_new (float, (size_t) fw * fh);
  g_autofree float *coef_f = g_new (float, (nc + 1) * plane);
  g_autofree float *big = g_new (float, (nc + 1) * (size_t) fw * fh);
  g_autofree double *I = g_new (double, nc * plane), *pd = g_new (double, plane);
  g_autofree double *mean_coef = g_new (double, (nc + 1) * plane);
  double worst = 0.0;

  for (int i = 0; i < aw * ah; i++)
    alpha[i] = (float) g_rand_double_range (rng, -0.1, 1.1);
  g_assert_cmpint (hfam_refine (alpha, aw, ah, &frame, NULL, &p, NULL, out, fw, NULL), ==, 0);
  /* the same with memory kept from an earlier call, full of NaNs (nothing may read what it
   * did not write) */
  {
    HfamScratch scratch = { NULL, 0 };
    g_autofree float *again = g_new (float, (size_t) fw * fh);
    memset (hfam_scratch_reserve (&scratch, 16 << 20), 0xff, 16 << 20);
    for (int k = 0; k < 2; k++) {
      g_assert_cmpint (hfam_refine (alpha, aw, ah, &frame, NULL, &p, NULL, again, fw, &scratch),
                       ==, 0);
      g_assert_cmpmem (again, sizeof (float) * fw * fh, out, sizeof (float) * fw * fh);
    }
    hfam_scratch_clear (&scratch);
  }

  g_assert_cmpint (hfam_preprocess_rgb8 (im.rgb, fw, fh, 3 * fw, 3, offsets, rgb, sw, sh, order,
                                         1.0f, zero, one), ==, 0);
  g_assert_cmpint (hfam_resize_plane (alpha, aw, ah, aw, low, sw, sh, sw), ==, 0);
  for (size_t q = 0; q < plane; q++) {
    pd[q] = low[q];
    if (colour)
      for (int k = 0; k < 3; k++)
        I[k * plane + q] = rgb[k * plane + q];
    else
      I[q] = 0.299f * rgb[q] + 0.587f * rgb[plane + q] + 0.114f * rgb[2 * plane + q];
  }
  guided_oracle (I, nc, pd, sw, sh, r, eps, mean_coef);
  for (size_t q = 0; q < (nc + 1) * plane; q++)
    coef_f[q] = (float) mean_coef[q];
  for (int k = 0; k <= nc; k++)
    g_assert_cmpint (hfam_resize_plane (coef_f + k * plane, sw, sh, sw,
                                        big + k * (size_t) fw * fh, fw, fh, fw), ==, 0);
  for (int y = 0; y < fh; y++)
    for (int x = 0; x < fw; x++) {
      const size_t i = (size_t) y * fw + x, n = (size_t) fw * fh;
      const double R = im.rgb[3 * i] / 255.0, G = im.rgb[3 * i + 1] / 255.0;
      const double B = im.rgb[3 * i + 2] / 255.0;
      double q = colour ? big[i] * R + big[n + i] * G + big[2 * n + i] * B + big[3 * n + i]
                        : big[i] * (0.299 * R + 0.587 * G + 0.114 * B) + big[n + i];
      q = CLAMP (q, 0.0, 1.0);
      worst = MAX (worst, fabs (q - out[i]));
    }
  if (g_test_verbose ())
    printf ("refine %s %dx%d -> stats %dx%d -> %dx%d, r %d, eps %g: worst error %.3g\n",
            colour ? "colour" : "grey", aw, ah, sw, sh, fw, fh, r, eps, worst);
  g_assert_cmpfloat (worst, <, 2e-4);
  g_free (im.rgb);
}

static void
test_refine_oracle (void)
{
  check_refine (20, 14, 20, 14, 20, 14, 1, 2, 1e-2f);
  check_refine (20, 14, 20, 14, 20, 14, 0, 3, 1e-3f);
  check_refine (37, 23, 12, 8, 12, 8, 1, 1, 1e-2f);
  check_refine (37, 23, 12, 8, 12, 8, 0, 2, 1e-2f);
  check_refine (48, 30, 10, 7, 16, 10, 1, 2, 1e-2f);    /* stats between the two sizes */
  /* a large frame: the box passes and the last step spread over threads */
  check_refine (400, 300, 100, 75, 100, 75, 1, 3, 1e-2f);
}

/* Refuses what it cannot do, and writes out's rows only. */
static void
test_refine_arguments (void)
{
  Image im = image_random (8, 6);
  const HfamFrame frame = image_frame (&im);
  float alpha[4 * 3], out[10 * 6];
  HfamRefineParams p = { 1, 1e-2f, 0, 0, 1 };
  const HfamKeyLevels bad = { 0.7f, 0.3f };

  for (int i = 0; i < 12; i++)
    alpha[i] = 0.5f;
  for (int i = 0; i < 60; i++)
    out[i] = -7.0f;
  g_assert_cmpint (hfam_refine (alpha, 4, 3, &frame, NULL, &p, NULL, out, 10, NULL), ==, 0);
  for (int y = 0; y < 6; y++)
    for (int x = 8; x < 10; x++)
      g_assert_cmpfloat (out[y * 10 + x], ==, -7.0f);
  g_assert_cmpint (hfam_refine (alpha, 4, 3, &frame, NULL, &p, NULL, out, 7, NULL), ==, -1);
  g_assert_cmpint (hfam_refine (alpha, 4, 3, &frame, NULL, &p, &bad, out, 10, NULL), ==, -1);
  g_assert_cmpint (hfam_refine (alpha, 0, 3, &frame, NULL, &p, NULL, out, 10, NULL), ==, -1);
  p.radius = 0;
  g_assert_cmpint (hfam_refine (alpha, 4, 3, &frame, NULL, &p, NULL, out, 10, NULL), ==, -1);
  p.radius = 1;
  p.eps = 0.0f;
  g_assert_cmpint (hfam_refine (alpha, 4, 3, &frame, NULL, &p, NULL, out, 10, NULL), ==, -1);
  p.eps = 1e-2f;
  p.stats_width = 9;   /* larger than the frame */
  p.stats_height = 3;
  g_assert_cmpint (hfam_refine (alpha, 4, 3, &frame, NULL, &p, NULL, out, 10, NULL), ==, -1);
  p.stats_width = 4;
  p.stats_height = 0;
  g_assert_cmpint (hfam_refine (alpha, 4, 3, &frame, NULL, &p, NULL, out, 10, NULL), ==, -1);
  g_free (im.rgb);
}

/* A constant guide has no edges to follow: the output is the smoothed alpha, enlarged. A
 * linear ramp survives box means unchanged away from the borders. */
static void
test_refine_constant_guide (void)
{
  const int fw = 96, fh = 64, aw = 24, ah = 16, r = 2;
  g_autofree uint8_t *grey = g_new (uint8_t, 3 * fw * fh);
  g_autofree float *alpha = g_new (float, aw * ah), *out = g_new (float, fw * fh);
  g_autofree float *plain = g_new (float, fw * fh);
  const HfamFrame frame = { { grey }, { 3 * fw }, fw, fh, HFAM_FRAME_RGB };
  const HfamRefineParams p = { r, 1e-3f, 0, 0, 1 };
  double worst = 0.0;

  memset (grey, 128, 3 * fw * fh);
  for (int y = 0; y < ah; y++)
    for (int x = 0; x < aw; x++)
      alpha[y * aw + x] = 0.2f + 0.6f * x / (aw - 1) * (0.5f + 0.5f * y / (ah - 1));
  g_assert_cmpint (hfam_refine (alpha, aw, ah, &frame, NULL, &p, NULL, out, fw, NULL), ==, 0);
  g_assert_cmpint (hfam_resize_plane (alpha, aw, ah, aw, plain, fw, fh, fw), ==, 0);
  /* away from the borders: two box passes of radius r at the low size, 4x enlarged */
  for (int y = 4 * (2 * r + 1); y < fh - 4 * (2 * r + 1); y++)
    for (int x = 4 * (2 * r + 1); x < fw - 4 * (2 * r + 1); x++)
      worst = MAX (worst, fabs (out[y * fw + x] - plain[y * fw + x]));
  if (g_test_verbose ())
    printf ("constant guide: worst difference from the plain enlargement %.3g\n", worst);
  g_assert_cmpfloat (worst, <, 1e-4);

  /* the key levels folded in are the levels applied after */
  const HfamKeyLevels levels = { 0.3f, 0.7f };
  g_assert_cmpint (hfam_refine (alpha, aw, ah, &frame, NULL, &p, &levels, plain, fw, NULL), ==,
                   0);
  hfam_key_levels_apply (out, (size_t) fw * fh, &levels);
  for (int i = 0; i < fw * fh; i++)
    g_assert_cmpfloat (plain[i], ==, out[i]);
}

/* A sharp step in the frame and the network's soft step (the true step made 4x smaller and
 * enlarged again): refinement brings the matte back to the step. */
static void
test_refine_step_edge (void)
{
  const int fw = 128, fh = 32, aw = 32, ah = 8, edge = 61;
  g_autofree uint8_t *rgb = g_new (uint8_t, 3 * fw * fh);
  g_autofree float *truth = g_new (float, fw * fh), *alpha = g_new (float, aw * ah);
  g_autofree float *plain = g_new (float, fw * fh), *refined = g_new (float, fw * fh);
  const HfamFrame frame = { { rgb }, { 3 * fw }, fw, fh, HFAM_FRAME_RGB };
  const HfamRefineParams p = { 2, 1e-3f, 0, 0, 1 };
  double err_plain = 0.0, err_refined = 0.0;
  int ramp_plain = 0, ramp_refined = 0;

  for (int y = 0; y < fh; y++)
    for (int x = 0; x < fw; x++) {
      const int fg = x >= edge;
      uint8_t *px = rgb + 3 * (y * fw + x);
      px[0] = fg ? 200 : 40;
      px[1] = fg ? 150 : 90;
      px[2] = fg ? 60 : 170;
      truth[y * fw + x] = (float) fg;
    }
  g_assert_cmpint (hfam_resize_plane (truth, fw, fh, fw, alpha, aw, ah, aw), ==, 0);
  g_assert_cmpint (hfam_resize_plane (alpha, aw, ah, aw, plain, fw, fh, fw), ==, 0);
  g_assert_cmpint (hfam_refine (alpha, aw, ah, &frame, NULL, &p, NULL, refined, fw, NULL), ==,
                   0);
  for (int x = 0; x < fw; x++) {
    const float a = plain[(fh / 2) * fw + x], b = refined[(fh / 2) * fw + x];
    ramp_plain += a > 0.1f && a < 0.9f;
    ramp_refined += b > 0.1f && b < 0.9f;
  }
  for (int i = 0; i < fw * fh; i++) {
    err_plain += fabs (plain[i] - truth[i]);
    err_refined += fabs (refined[i] - truth[i]);
  }
  printf ("step edge: pixels between 0.1 and 0.9 across it: %d enlarged, %d refined; "
          "mean error %.4f enlarged, %.4f refined\n", ramp_plain, ramp_refined,
          err_plain / (fw * fh), err_refined / (fw * fh));
  g_assert_cmpint (ramp_refined, <=, 1);
  g_assert_cmpint (ramp_plain, >=, 4);
  g_assert_cmpfloat (err_refined, <, 0.25 * err_plain);
}

/* Held over time (hfam_refine_held): with q the refinement before the levels, u alpha and S
 * the still weights enlarged to the frame as resize.h enlarges (through the statistics' size
 * where that differs), the detail d = q - u is held, d' = d + S (held - d), held takes d'
 * and the output is the levels of u + d'; a restart (no still weights) keeps q and holds its
 * detail; no hold is hfam_refine. */
static void
test_refine_held (void)
{
  const int fw = 61, fh = 37, aw = 16, ah = 10, stride = fw + 3;
  const HfamKeyLevels levels = { 0.1f, 0.9f };
  g_autofree uint8_t *rgb = g_new (uint8_t, 3 * fw * fh);
  g_autofree float *alpha = g_new (float, aw * ah), *still = g_new (float, aw * ah);
  g_autofree float *q = g_new (float, fw * fh), *s = g_new (float, fw * fh);
  g_autofree float *u = g_new (float, fw * fh);
  g_autofree float *out = g_new (float, fw * fh), *plain = g_new (float, fw * fh);
  g_autofree float *held = g_new (float, stride * fh), *before = g_new (float, stride * fh);
  g_autofree float *low = g_new (float, aw * ah);
  const HfamFrame frame = { { rgb }, { 3 * fw }, fw, fh, HFAM_FRAME_RGB };

  for (int i = 0; i < 3 * fw * fh; i++)
    rgb[i] = (uint8_t) g_rand_int_range (rng, 0, 256);
  for (int i = 0; i < aw * ah; i++) {
    alpha[i] = (float) g_rand_double (rng);
    still[i] = (float) g_rand_double (rng);
  }
  for (int i = 0; i < stride * fh; i++)
    before[i] = (float) g_rand_double (rng);
  /* statistics at alpha's size, then at a smaller one (the still weights resized there too) */
  for (int c = 0; c < 2; c++) {
    const HfamRefineParams p = { 2, 1e-3f, c ? 12 : 0, c ? 8 : 0, 1 };
    const HfamRefineHold hold = { still, held, stride }, restart = { NULL, held, stride };
    double worst = 0.0;

    g_assert_cmpint (hfam_refine (alpha, aw, ah, &frame, NULL, &p, NULL, q, fw, NULL), ==, 0);
    for (int k = 0; k < 2; k++) {
      const float *plane = k ? still : alpha;
      float *full = k ? s : u;
      if (c) {
        g_assert_cmpint (hfam_resize_plane (plane, aw, ah, aw, low, 12, 8, 12), ==, 0);
        g_assert_cmpint (hfam_resize_plane (low, 12, 8, 12, full, fw, fh, fw), ==, 0);
      } else {
        g_assert_cmpint (hfam_resize_plane (plane, aw, ah, aw, full, fw, fh, fw), ==, 0);
      }
    }
    memcpy (held, before, sizeof (float) * stride * fh);
    g_assert_cmpint (hfam_refine_held (alpha, aw, ah, &frame, NULL, &p, &levels, &hold, out, fw,
                                       NULL), ==, 0);
    for (int y = 0; y < fh; y++)
      for (int x = 0; x < fw; x++) {
        const int i = y * fw + x, k = y * stride + x;
        const double d = (double) q[i] - u[i], h = d + s[i] * (before[k] - d);
        worst = MAX (worst, fabs (held[k] - h));
        worst = MAX (worst, fabs (out[i] - CLAMP ((CLAMP (u[i] + h, 0.0, 1.0) - 0.1) / 0.8, 0.0,
                                                  1.0)));
      }
    if (g_test_verbose ())
      printf ("held, statistics %s: worst difference %.3g\n", c ? "12x8" : "16x10", worst);
    g_assert_cmpfloat (worst, <, 1e-5);

    g_assert_cmpint (hfam_refine_held (alpha, aw, ah, &frame, NULL, &p, NULL, &restart, out, fw,
                                       NULL), ==, 0);
    for (int y = 0; y < fh; y++)
      for (int x = 0; x < fw; x++) {
        g_assert_cmpfloat_with_epsilon (held[y * stride + x], q[y * fw + x] - u[y * fw + x],
                                        1e-6);
        g_assert_cmpfloat (out[y * fw + x], ==, q[y * fw + x]);
      }
    g_assert_cmpint (hfam_refine_held (alpha, aw, ah, &frame, NULL, &p, NULL, NULL, plain, fw,
                                       NULL), ==, 0);
    g_assert_cmpint (memcmp (plain, q, sizeof (float) * fw * fh), ==, 0);
    /* a held matte narrower than the frame, or none, is refused */
    const HfamRefineHold narrow = { still, held, fw - 1 }, none = { still, NULL, stride };
    g_assert_cmpint (hfam_refine_held (alpha, aw, ah, &frame, NULL, &p, NULL, &narrow, out, fw,
                                       NULL), ==, -1);
    g_assert_cmpint (hfam_refine_held (alpha, aw, ah, &frame, NULL, &p, NULL, &none, out, fw,
                                       NULL), ==, -1);
  }
}

/* The colour guide reads RGBA and BGRA frames' bytes as they are, other formats through a row
 * of floats: the same picture as RGB, RGBA and BGRA gives the same planes bit for bit, plain,
 * held and restarted, in colour and grey. */
static void
test_refine_formats (void)
{
  const int fw = 45, fh = 29, aw = 12, ah = 8, n = fw * fh;
  const HfamKeyLevels levels = { 0.05f, 0.9f };
  g_autofree uint8_t *rgb = g_new (uint8_t, 3 * n), *rgba = g_new (uint8_t, 4 * n);
  g_autofree uint8_t *bgra = g_new (uint8_t, 4 * n);
  g_autofree float *alpha = g_new (float, aw * ah), *still = g_new (float, aw * ah);
  g_autofree float *before = g_new (float, n), *out = g_new (float, 3 * n);
  g_autofree float *held = g_new (float, 3 * n);
  const HfamFrame frames[3] = { { { rgb }, { 3 * fw }, fw, fh, HFAM_FRAME_RGB },
                                { { rgba }, { 4 * fw }, fw, fh, HFAM_FRAME_RGBA },
                                { { bgra }, { 4 * fw }, fw, fh, HFAM_FRAME_BGRA } };

  for (int i = 0; i < n; i++)
    for (int k = 0; k < 3; k++) {
      rgb[3 * i + k] = rgba[4 * i + k] = bgra[4 * i + 2 - k]
        = (uint8_t) g_rand_int_range (rng, 0, 256);
      rgba[4 * i + 3] = bgra[4 * i + 3] = (uint8_t) g_rand_int_range (rng, 0, 256);
    }
  for (int i = 0; i < aw * ah; i++) {
    alpha[i] = (float) g_rand_double (rng);
    still[i] = (float) g_rand_double (rng);
  }
  for (int i = 0; i < n; i++)
    before[i] = (float) g_rand_double_range (rng, -0.5, 0.5);
  for (int colour = 0; colour < 2; colour++)
    for (int mode = 0; mode < 3; mode++) {
      const HfamRefineParams p = { 2, 1e-3f, 0, 0, colour };
      for (int f = 0; f < 3; f++) {
        const HfamRefineHold hold = { mode == 2 ? still : NULL, held + (size_t) f * n, fw };
        memcpy (held + (size_t) f * n, before, sizeof (float) * n);
        g_assert_cmpint (hfam_refine_held (alpha, aw, ah, &frames[f], NULL, &p, &levels,
                                           mode ? &hold : NULL, out + (size_t) f * n, fw, NULL),
                         ==, 0);
      }
      for (int f = 1; f < 3; f++) {
        g_assert_cmpint (memcmp (out, out + (size_t) f * n, sizeof (float) * n), ==, 0);
        g_assert_cmpint (memcmp (held, held + (size_t) f * n, sizeof (float) * n), ==, 0);
      }
    }
}

/* At a frame of HFAM_PARALLEL_MIN_VALUES pixels and more the frame's rows run on a team, each
 * thread widening the rows of the statistics its own rows take: one thread and two give the
 * same planes, bit for bit, plain and held (the held detail too), in colour and grey, from
 * statistics at alpha's size and at a smaller one. (The statistics are small enough that their
 * box means run on one thread: on a team each thread's sums start afresh at its band of rows,
 * box.h, and round differently.) */
static void
test_refine_team (void)
{
  const int fw = 403, fh = 219, aw = 80, ah = 44, n = fw * fh;
  g_autofree uint8_t *rgb = g_new (uint8_t, 3 * n);
  g_autofree float *alpha = g_new (float, aw * ah), *still = g_new (float, aw * ah);
  g_autofree float *out = g_new (float, 2 * n), *held = g_new (float, 2 * n);
  g_autofree float *before = g_new (float, n);
  const HfamFrame frame = { { rgb }, { 3 * fw }, fw, fh, HFAM_FRAME_RGB };
  const HfamKeyLevels levels = { 0.05f, 0.95f };

  g_assert_cmpint (n, >=, HFAM_PARALLEL_MIN_VALUES);
  g_assert_cmpint (aw * ah * HFAM_REFINE_STATS_CHANNELS (1), <, HFAM_PARALLEL_MIN_VALUES);
  for (int i = 0; i < 3 * n; i++)
    rgb[i] = (uint8_t) g_rand_int_range (rng, 0, 256);
  for (int i = 0; i < aw * ah; i++) {
    alpha[i] = (float) g_rand_double (rng);
    still[i] = (float) g_rand_double (rng);
  }
  for (int i = 0; i < n; i++)
    before[i] = (float) g_rand_double_range (rng, -0.5, 0.5);
  for (int c = 0; c < 4; c++) {
    const HfamRefineParams p = { 2, 1e-3f, c & 1 ? 64 : 0, c & 1 ? 36 : 0, c < 2 };
    for (int held_too = 0; held_too < 2; held_too++) {
      for (int t = 0; t < 2; t++) {
        const HfamRefineHold hold = { still, held + t * n, fw };
        omp_set_num_threads (t ? 2 : 1);
        memcpy (held + t * n, before, sizeof (float) * n);
        g_assert_cmpint (hfam_refine_held (alpha, aw, ah, &frame, NULL, &p, &levels,
                                           held_too ? &hold : NULL, out + t * n, fw, NULL),
                         ==, 0);
      }
      g_assert_cmpmem (out, sizeof (float) * n, out + n, sizeof (float) * n);
      g_assert_cmpmem (held, sizeof (float) * n, held + n, sizeof (float) * n);
    }
  }
  omp_set_num_threads (2);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  rng = g_rand_new_with_seed (16);
  omp_set_num_threads (2);
  g_test_add_func ("/box/exact", test_box_exact);
  g_test_add_func ("/levels", test_key_levels);
  g_test_add_func ("/refine/oracle", test_refine_oracle);
  g_test_add_func ("/refine/arguments", test_refine_arguments);
  g_test_add_func ("/refine/constant-guide", test_refine_constant_guide);
  g_test_add_func ("/refine/step-edge", test_refine_step_edge);
  g_test_add_func ("/refine/held", test_refine_held);
  g_test_add_func ("/refine/formats", test_refine_formats);
  g_test_add_func ("/refine/team", test_refine_team);
  return g_test_run ();
}
