/* Motion-aware temporal smoothing on the CPU (kernels/temporal.c), the twin of temporal.cu:
 * the grey plane against the values the normalisation started from, the blend against a plain
 * double-precision one written from temporal.h's formulas (windows summed pixel by pixel) at
 * several radii and sizes, with and without the compensation's moved pixels (held with
 * hold_moved), its two ends (a still picture holds with `hold`, or `hold_moved` where moved a
 * pixel, a moving one takes the fresh matte), the still weights it gives (the oracle's, and
 * `hold` exactly where nothing moved or changed, 0 where the picture moved a pixel), and the
 * arguments it refuses. */
#include "temporal.h"

#include <glib.h>
#include <math.h>
#include <string.h>

static GRand *rng;

static void
test_grey (void)
{
  const int w = 7, h = 5;
  const size_t n = (size_t) w * h;
  const HfamPreprocessParams p = { .order = { 2, 1, 0 }, .scale = 255.0f,
                                   .mean = { 123.7f, 116.3f, 103.5f },
                                   .std = { 58.4f, 57.1f, 57.4f } };
  float input[3 * 7 * 5], grey[7 * 5], v[3 * 7 * 5];

  for (size_t i = 0; i < 3 * n; i++) {
    const size_t k = i / n;
    v[i] = (float) g_rand_int_range (rng, 0, 256);
    input[i] = (v[i] / 255.0f * p.scale - p.mean[k]) / p.std[k];
  }
  hfam_motion_grey (input, w, h, &p, grey);
  for (size_t i = 0; i < n; i++)
    g_assert_cmpfloat_with_epsilon (grey[i], (v[i] + v[n + i] + v[2 * n + i]) / (3 * 255.0),
                                    1e-5);
}

static void
blend_oracle (const float *matte, const float *fresh, const float *grey, const float *kept,
              const float *moved, int w, int h, const HfamMotionParams *p, double *out,
              double *still)
{
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      double sum = 0.0;
      int count = 0;
      for (int j = MAX (0, y - p->radius); j <= MIN (h - 1, y + p->radius); j++)
        for (int i = MAX (0, x - p->radius); i <= MIN (w - 1, x + p->radius); i++, count++)
          sum += fabs ((double) grey[j * w + i] - kept[j * w + i]);
      const double d = sum / count;
      /* hold, to hold_moved at a pixel moved by 1 */
      const double k = moved ? CLAMP (moved[y * w + x], 0.0, 1.0) : 0.0;
      const double hold = (1 - k) * p->hold + k * p->hold_moved;
      const double unchanged = CLAMP ((p->moving - d) / (p->moving - p->still), 0.0, 1.0);
      const double s = hold * unchanged;
      out[y * w + x] = (1 - s) * fresh[y * w + x] + s * matte[y * w + x];
      still[y * w + x] = p->hold * unchanged * (1 - k);
    }
}

static void
test_blend_oracle (void)
{
  static const int cases[][3] = { { 9, 6, 0 }, { 9, 6, 1 }, { 31, 17, 2 }, { 300, 170, 3 } };

  for (size_t c = 0; c < 2 * G_N_ELEMENTS (cases); c++) {
    const int w = cases[c / 2][0], h = cases[c / 2][1];
    const size_t n = (size_t) w * h;
    const HfamMotionParams p = { 0.7f, 0.02f, 0.1f, cases[c / 2][2], 0.2f };
    g_autofree float *matte = g_new (float, n), *fresh = g_new (float, n);
    g_autofree float *grey = g_new (float, n), *kept = g_new (float, n);
    /* every other case with the compensation's distances: 0 to 2 pixels */
    g_autofree float *moved = c % 2 ? g_new (float, n) : NULL;
    g_autofree double *want = g_new (double, n), *want_still = g_new (double, n);
    g_autofree float *still = g_new (float, n);
    int fresh_taken = 0, held = 0;

    for (size_t i = 0; i < n; i++) {
      if (moved)
        moved[i] = (float) g_rand_double_range (rng, 0.0, 2.0);
      matte[i] = (float) g_rand_double (rng);
      fresh[i] = (float) g_rand_double (rng);
      grey[i] = (float) g_rand_double (rng);
      /* still in the left third, moving in the right third, between in the middle */
      const double band = (double) (i % w) / w;
      kept[i] = grey[i] + (float) (band < 1 / 3.0 ? g_rand_double_range (rng, -0.01, 0.01)
                                   : band < 2 / 3.0 ? g_rand_double_range (rng, -0.1, 0.1)
                                                    : g_rand_double_range (rng, 0.2, 0.4));
    }
    blend_oracle (matte, fresh, grey, kept, moved, w, h, &p, want, want_still);
    g_assert_cmpint (hfam_matte_blend_motion (matte, fresh, grey, kept, moved, w, h, &p, still),
                     ==, 0);
    for (size_t i = 0; i < n; i++) {
      g_assert_cmpfloat_with_epsilon (matte[i], want[i], 1e-5);
      g_assert_cmpfloat_with_epsilon (still[i], want_still[i], 1e-5);
      fresh_taken += want[i] == fresh[i];
      held += want_still[i] > 0.0;
    }
    /* both ends happen: somewhere the fresh matte is taken as it is, somewhere it is held */
    g_assert_cmpint (fresh_taken, >, 0);
    g_assert_cmpint (held, >, 0);
  }
}

/* A picture that does not change holds with exactly `hold`, or `hold_moved` where the kept
 * matte was moved a pixel or more; one that changes by more than `moving` everywhere takes
 * the fresh matte. */
static void
test_blend_ends (void)
{
  const int w = 40, h = 30;
  const HfamMotionParams p = { 0.6f, 0.02f, 0.08f, 2, 0.25f };
  float matte[40 * 30], fresh[40 * 30], grey[40 * 30], other[40 * 30], kept_matte[40 * 30];
  float moved[40 * 30], still[40 * 30];

  for (int i = 0; i < w * h; i++) {
    kept_matte[i] = matte[i] = (float) g_rand_double (rng);
    fresh[i] = (float) g_rand_double (rng);
    grey[i] = (float) g_rand_double_range (rng, 0.0, 0.5);
    other[i] = grey[i] + 0.3f;
    /* the left half not moved, the right half moved 1 to 3 pixels */
    moved[i] = i % w < w / 2 ? 0.0f : (float) g_rand_double_range (rng, 1.0, 3.0);
  }
  g_assert_cmpint (hfam_matte_blend_motion (matte, fresh, grey, grey, NULL, w, h, &p, still),
                   ==, 0);
  for (int i = 0; i < w * h; i++) {
    g_assert_cmpfloat_with_epsilon (matte[i], 0.4f * fresh[i] + 0.6f * kept_matte[i], 1e-6);
    g_assert_cmpfloat (still[i], ==, 0.6f);
  }
  memcpy (matte, kept_matte, sizeof matte);
  g_assert_cmpint (hfam_matte_blend_motion (matte, fresh, grey, grey, moved, w, h, &p, still),
                   ==, 0);
  for (int i = 0; i < w * h; i++) {
    const float hold = i % w < w / 2 ? 0.6f : 0.25f;
    g_assert_cmpfloat_with_epsilon (matte[i], (1 - hold) * fresh[i] + hold * kept_matte[i],
                                    1e-6);
    /* the refined matte is held only where nothing moved */
    g_assert_cmpfloat (still[i], ==, i % w < w / 2 ? 0.6f : 0.0f);
  }
  memcpy (matte, kept_matte, sizeof matte);
  g_assert_cmpint (hfam_matte_blend_motion (matte, fresh, grey, other, moved, w, h, &p, still),
                   ==, 0);
  for (int i = 0; i < w * h; i++) {
    g_assert_cmpfloat (matte[i], ==, fresh[i]);
    g_assert_cmpfloat (still[i], ==, 0.0f);
  }
}

static void
test_arguments (void)
{
  float m[4] = { 0 }, f[4] = { 0 }, g[4] = { 0 };
  HfamMotionParams p = { 0.5f, 0.02f, 0.08f, 1, 0.2f };

  g_assert_cmpint (hfam_matte_blend_motion (m, f, g, g, NULL, 2, 2, &p, NULL), ==, 0);
  g_assert_cmpint (hfam_matte_blend_motion (m, f, g, g, NULL, 0, 2, &p, NULL), ==, -1);
  g_assert_cmpint (hfam_matte_blend_motion (NULL, f, g, g, NULL, 2, 2, &p, NULL), ==, -1);
  p.hold_moved = -0.1f;
  g_assert_false (hfam_motion_params_valid (&p));
  p.hold_moved = 0.2f;
  p.hold = 1.5f;
  g_assert_false (hfam_motion_params_valid (&p));
  p.hold = NAN;
  g_assert_false (hfam_motion_params_valid (&p));
  p.hold = 0.5f;
  p.moving = p.still;
  g_assert_false (hfam_motion_params_valid (&p));
  p.moving = 0.08f;
  p.radius = -1;
  g_assert_cmpint (hfam_matte_blend_motion (m, f, g, g, NULL, 2, 2, &p, NULL), ==, -1);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  rng = g_rand_new_with_seed (17);
  g_test_add_func ("/temporal/grey", test_grey);
  g_test_add_func ("/temporal/blend-oracle", test_blend_oracle);
  g_test_add_func ("/temporal/blend-ends", test_blend_ends);
  g_test_add_func ("/temporal/arguments", test_arguments);
  return g_test_run ();
}
