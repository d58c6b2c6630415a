/* kernels/heads.c: the per-pixel heads against the plain formulas with libm's expf (their
 * exponential is a vectorised one of their own), with extreme logits and the ties of the
 * argmax, on planes small and large enough to be split among threads; the pooling against
 * plain sums; and the int8 scaling (the CPU backend's detail skips in int8): hand-computed
 * values, rounding ties to even, saturation, in place. */
#include "heads.h"
#include "resize.h"

#include <glib.h>
#include <math.h>
#include <stdint.h>

/* the heads' planes: 34 x 18 (one thread) and 512 x 288 (split among threads) */
static const int sizes[2][2] = { { 34, 18 }, { 512, 288 } };

/* logits of every size, with a few extreme ones (the softmax and the sigmoids must stay finite
 * and in 0..1 however large) */
static float *
random_logits (GRand *rng, size_t n)
{
  float *v = g_new (float, n);
  for (size_t i = 0; i < n; i++)
    v[i] = i % 97 == 3 ? (i % 2 ? 150.0f : -150.0f) : (float) g_rand_double_range (rng, -12, 12);
  return v;
}

static double
relative_error (float got, float want)
{
  return fabs ((double) got - want) / fmax (fabs (want), 1e-30);
}

static void
test_semantic_head (void)
{
  GRand *rng = g_rand_new_with_seed (5);

  for (int s = 0; s < 2; s++) {
    const int w = sizes[s][0], h = sizes[s][1];
    const size_t n = (size_t) w * h, low = n / 4;
    g_autofree float *logits = random_logits (rng, 3 * low);
    g_autofree float *prob = g_new (float, 3 * n);
    g_autofree float *want = g_new (float, 3 * n);
    double worst = 0.0;

    g_assert_cmpint (hfam_semantic_head (logits, w, h, prob), ==, 0);
    for (int k = 0; k < 3; k++)
      g_assert_cmpint (hfam_resize_plane (logits + k * low, w / 2, h / 2, w / 2, want + k * n, w,
                                          h, w), ==, 0);
    for (size_t i = 0; i < n; i++) {
      const float m = fmaxf (want[i], fmaxf (want[n + i], want[2 * n + i]));
      const float e[3] = { expf (want[i] - m), expf (want[n + i] - m), expf (want[2 * n + i] - m) };
      for (int k = 0; k < 3; k++) {
        const float p = e[k] / (e[0] + e[1] + e[2]);
        g_assert_true (prob[k * n + i] >= 0.0f && prob[k * n + i] <= 1.0f);
        /* (absolute below 1e-30: the plain formula's denormals) */
        if (p > 1e-30f)
          worst = fmax (worst, relative_error (prob[k * n + i], p));
        else
          g_assert_cmpfloat (prob[k * n + i], <, 1e-30f);
      }
    }
    g_assert_cmpfloat (worst, <, 1e-6);
  }
  g_assert_cmpint (hfam_semantic_head (NULL, 3, 4, NULL), ==, -1);
  g_rand_free (rng);
}

static void
test_attention_map (void)
{
  GRand *rng = g_rand_new_with_seed (6);
  const float weight[3] = { -4.5f, 1.25f, 3.0f }, bias = -0.5f;

  for (int s = 0; s < 2; s++) {
    /* (extreme "probabilities" too, for the sigmoid's far ends) */
    const size_t n = (size_t) sizes[s][0] * sizes[s][1];
    g_autofree float *prob = random_logits (rng, 3 * n);
    g_autofree float *map = g_new (float, n);

    hfam_attention_map (prob, (int) n, weight, bias, map);
    for (size_t i = 0; i < n; i++) {
      const float x = weight[0] * prob[i] + weight[1] * prob[n + i] + weight[2] * prob[2 * n + i]
                      + bias;
      const float want = 1.0f / (1.0f + expf (-x));
      g_assert_true (map[i] >= 0.0f && map[i] <= 1.0f);
      if (want > 1e-30f)
        g_assert_cmpfloat (relative_error (map[i], want), <, 1e-6);
      else
        g_assert_cmpfloat (map[i], <, 1e-30f);
    }
  }
  g_rand_free (rng);
}

static void
test_fusion (void)
{
  GRand *rng = g_rand_new_with_seed (7);

  for (int s = 0; s < 2; s++) {
    const int w = sizes[s][0], h = sizes[s][1];
    const size_t n = (size_t) w * h;
    g_autofree float *logit = random_logits (rng, n / 4);
    g_autofree float *prob = g_new (float, 3 * n);
    g_autofree float *enlarged = g_new (float, n);
    g_autofree float *alpha_d = g_new (float, n);
    g_autofree float *alpha_p = g_new (float, n);

    /* the classes' probabilities from a few levels, so that ties of every kind occur */
    for (size_t i = 0; i < 3 * n; i++)
      prob[i] = (float) g_rand_int_range (rng, 0, 3) * 0.25f;
    g_assert_cmpint (hfam_fusion (logit, w, h, prob, alpha_d, alpha_p), ==, 0);
    g_assert_cmpint (hfam_resize_plane (logit, w / 2, h / 2, w / 2, enlarged, w, h, w), ==, 0);
    for (size_t i = 0; i < n; i++) {
      const float d = 1.0f / (1.0f + expf (-enlarged[i]));
      /* the first maximum wins */
      int class = 0;
      for (int k = 1; k < 3; k++)
        if (prob[k * n + i] > prob[class * n + i])
          class = k;
      g_assert_cmpint (hfam_semantic_class (prob, n, i), ==, class);
      g_assert_cmpfloat (relative_error (alpha_d[i], d), <, 1e-6);
      g_assert_cmpfloat (alpha_p[i], ==, class == 0 ? 0.0f : class == 1 ? alpha_d[i] : 1.0f);
    }
  }
  g_rand_free (rng);
}

static void
test_pool_plane (void)
{
  GRand *rng = g_rand_new_with_seed (8);

  for (int s = 0; s < 2; s++)
    for (int factor = 2; factor <= 4; factor += 2) {
      const int w = sizes[s][0] / 2 * 2, h = sizes[s][1] / 2 * 2;
      const int ow = w / factor, oh = h / factor;
      g_autofree float *src = g_new (float, (size_t) w * h);
      g_autofree float *dst = g_new (float, (size_t) ow * oh);

      /* small integers: every sum exact, whatever the order */
      for (size_t i = 0; i < (size_t) w * h; i++)
        src[i] = (float) g_rand_int_range (rng, 0, 9);
      hfam_pool_plane (src, w, h, factor, dst);
      for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++) {
          float sum = 0.0f;
          for (int dy = 0; dy < factor; dy++)
            for (int dx = 0; dx < factor; dx++)
              sum += src[(size_t) (y * factor + dy) * w + x * factor + dx];
          g_assert_cmpfloat (dst[(size_t) y * ow + x], ==, sum / (float) (factor * factor));
        }
    }
  g_rand_free (rng);
}

static void
test_scale_u8 (void)
{
  /* two pixels of three channels */
  const uint8_t src[6] = { 10, 3, 255, 200, 1, 7 };
  const float map[2] = { 0.5f, 1.0f };
  uint8_t dst[6];
  /* x 0.5 x 2: 10, 3, 255 as they are; x 1 x 2: 200 -> 400, saturated to 255; 1 -> 2; 7 -> 14 */
  const uint8_t expected[6] = { 10, 3, 255, 255, 2, 14 };

  hfam_scale_nhwc_int8 (src, 3, 2, 1, map, 2.0f, dst);
  for (int i = 0; i < 6; i++)
    g_assert_cmpint (dst[i], ==, expected[i]);
}

static void
test_scale_rounding (void)
{
  /* x 0.5: 1 -> 0.5 -> 0, 3 -> 1.5 -> 2, 5 -> 2.5 -> 2, 7 -> 3.5 -> 4 (ties to even), and
   * 9 -> 4.5 -> 4 */
  const uint8_t src[5] = { 1, 3, 5, 7, 9 };
  const float map[1] = { 0.5f };
  const uint8_t expected[5] = { 0, 2, 2, 4, 4 };
  uint8_t dst[5];

  hfam_scale_nhwc_int8 (src, 5, 1, 1, map, 1.0f, dst);
  for (int i = 0; i < 5; i++)
    g_assert_cmpint (dst[i], ==, expected[i]);
}

static void
test_scale_s8_in_place (void)
{
  int8_t v[4] = { -100, 100, -3, 127 };
  const float map[2] = { 1.0f, 0.25f };
  /* x 1.5: -150 -> -128, 150 -> 127; x 0.375: -1.125 -> -1, 47.625 -> 48 */
  const int8_t expected[4] = { -128, 127, -1, 48 };

  hfam_scale_nhwc_int8 (v, 2, 2, 0, map, 1.5f, v);
  for (int i = 0; i < 4; i++)
    g_assert_cmpint (v[i], ==, expected[i]);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/heads/semantic-head", test_semantic_head);
  g_test_add_func ("/heads/attention-map", test_attention_map);
  g_test_add_func ("/heads/fusion", test_fusion);
  g_test_add_func ("/heads/pool-plane", test_pool_plane);
  g_test_add_func ("/heads/scale-int8/u8", test_scale_u8);
  g_test_add_func ("/heads/scale-int8/rounding", test_scale_rounding);
  g_test_add_func ("/heads/scale-int8/s8-in-place", test_scale_s8_in_place);
  return g_test_run ();
}
