/* kernels/nhwc.c, the CPU twins of the CUDA ops between convolutions: hand-computed cases, the
 * resize against hfam_resize_plane (itself checked against PyTorch by test_resize.c), and
 * views into channel slices of wider maps. */
#include "nhwc.h"
#include "resize.h"

#include <glib.h>
#include <math.h>

static HfamNhwcHost
map_new (int w, int h, int c, int cs)
{
  HfamNhwcHost t = { g_new0 (float, (size_t) w * h * cs), w, h, c, cs };
  return t;
}

static void
fill_random (const HfamNhwcHost *t, GRand *rand)
{
  for (size_t i = 0; i < (size_t) t->w * t->h * t->cs; i++)
    t->data[i] = (float) g_rand_double_range (rand, -2.0, 2.0);
}

static void
test_bias_act (void)
{
  float x[4] = { -1.0f, 2.0f, 0.25f, -0.5f }, r[4] = { 1.0f, 1.0f, -1.0f, 0.0f }, y[4];
  const float bias[2] = { 0.5f, -3.0f };
  HfamNhwcHost tx = { x, 2, 1, 2, 2 }, tr = { r, 2, 1, 2, 2 }, ty = { y, 2, 1, 2, 2 };
  const float plain[4] = { -0.5f, -1.0f, 0.75f, -3.5f };
  const float relu_res[4] = { 0.5f, 0.0f, 0.0f, 0.0f };

  hfam_nhwc_bias_act (&tx, bias, NULL, 0, &ty);
  for (int i = 0; i < 4; i++)
    g_assert_cmpfloat (y[i], ==, plain[i]);
  hfam_nhwc_bias_act (&tx, bias, &tr, 1, &ty);
  for (int i = 0; i < 4; i++)
    g_assert_cmpfloat (y[i], ==, relu_res[i]);
  /* in place */
  hfam_nhwc_bias_act (&tx, bias, NULL, 1, &tx);
  g_assert_cmpfloat (x[0], ==, 0.0f);
  g_assert_cmpfloat (x[2], ==, 0.75f);
}

/* Two pixels, three splits of two channels (y reads one, as a padded output would not), then
 * the same sums through hfam_nhwc_bias_act: a split-K convolution must equal the plain one. */
static void
test_split_k_sum (void)
{
  float part[12] = { 1.0f, 10.0f, 2.0f, 20.0f, -4.0f, 40.0f,
                     0.5f, 5.0f, 0.25f, 2.5f, 0.125f, 1.25f };
  float r[2] = { 1.0f, -1.0f }, y[2], sum[2], want[2];
  const float bias[1] = { 0.5f };
  HfamNhwcHost tp = { part, 2, 1, 6, 6 }, tr = { r, 2, 1, 1, 1 }, ty = { y, 2, 1, 1, 1 };
  HfamNhwcHost ts = { sum, 2, 1, 1, 1 }, tw = { want, 2, 1, 1, 1 };

  hfam_nhwc_split_k_sum (&tp, 3, bias, NULL, 0, &ty);
  g_assert_cmpfloat (y[0], ==, -0.5f);   /* 1 + 2 - 4 + 0.5 */
  g_assert_cmpfloat (y[1], ==, 1.375f);  /* 0.5 + 0.25 + 0.125 + 0.5 */
  hfam_nhwc_split_k_sum (&tp, 3, bias, &tr, 1, &ty);
  g_assert_cmpfloat (y[0], ==, 0.5f);
  g_assert_cmpfloat (y[1], ==, 0.375f);
  /* against the unsplit path */
  sum[0] = 1.0f + 2.0f - 4.0f;
  sum[1] = 0.5f + 0.25f + 0.125f;
  hfam_nhwc_bias_act (&ts, bias, &tr, 1, &tw);
  g_assert_cmpfloat (y[0], ==, want[0]);
  g_assert_cmpfloat (y[1], ==, want[1]);
}

/* The checkerboard of test_resize.c, channel 1 its complement. */
static void
test_resize_hand (void)
{
  float src[8] = { 0, 1, 1, 0, 1, 0, 0, 1 };
  static const float expected[16] = {
    0.0f,  0.25f,  0.75f,  1.0f,
    0.25f, 0.375f, 0.625f, 0.75f,
    0.75f, 0.625f, 0.375f, 0.25f,
    1.0f,  0.75f,  0.25f,  0.0f,
  };
  HfamNhwcHost s = { src, 2, 2, 2, 2 };
  HfamNhwcHost d = map_new (4, 4, 2, 2);

  hfam_nhwc_resize (&s, &d);
  for (int i = 0; i < 16; i++) {
    g_assert_cmpfloat_with_epsilon (d.data[2 * i], expected[i], 1e-7);
    g_assert_cmpfloat_with_epsilon (d.data[2 * i + 1], 1.0f - expected[i], 1e-7);
  }
  g_free (d.data);
}

/* Enlarging by the graph's factors equals the antialiased resize on every channel; the
 * destination is a slice of a wider map whose other channels stay untouched. */
static void
test_resize_vs_plane (void)
{
  static const int cases[][4] = { { 5, 3, 10, 6 }, { 8, 4, 32, 16 }, { 3, 5, 12, 20 },
                                  { 1, 1, 2, 2 }, { 16, 9, 32, 18 } };
  g_autoptr (GRand) rand = g_rand_new_with_seed (7);

  for (size_t k = 0; k < G_N_ELEMENTS (cases); k++) {
    const int sw = cases[k][0], sh = cases[k][1], dw = cases[k][2], dh = cases[k][3], c = 5;
    HfamNhwcHost s = map_new (sw, sh, c, 8), wide = map_new (dw, dh, 12, 12);
    HfamNhwcHost d = wide;
    g_autofree float *plane_in = g_new (float, sw * sh);
    g_autofree float *plane_out = g_new (float, dw * dh);
    g_autofree float *planar = g_new (float, (size_t) c * dw * dh);

    fill_random (&s, rand);
    for (size_t i = 0; i < (size_t) dw * dh * 12; i++)
      wide.data[i] = 42.0f;
    d.data = wide.data + 4;
    d.c = c;
    hfam_nhwc_resize (&s, &d);
    hfam_nhwc_to_planar (&d, planar);
    for (int ch = 0; ch < c; ch++) {
      for (int i = 0; i < sw * sh; i++)
        plane_in[i] = s.data[(size_t) i * s.cs + ch];
      g_assert_cmpint (hfam_resize_plane (plane_in, sw, sh, sw, plane_out, dw, dh, dw), ==, 0);
      for (int i = 0; i < dw * dh; i++)
        g_assert_cmpfloat_with_epsilon (planar[(size_t) ch * dw * dh + i], plane_out[i], 2e-6);
    }
    for (int i = 0; i < dw * dh; i++)
      for (int ch = 0; ch < 12; ch++)
        if (ch < 4 || ch >= 4 + c)
          g_assert_cmpfloat (wide.data[(size_t) i * 12 + ch], ==, 42.0f);
    g_free (s.data);
    g_free (wide.data);
  }
}

static void
test_pools (void)
{
  float src[16];
  HfamNhwcHost s = { src, 4, 4, 1, 1 };
  HfamNhwcHost avg = map_new (2, 2, 1, 1), max = map_new (2, 2, 1, 1), gp = map_new (1, 1, 1, 3);
  static const float avg_expected[4] = { 2.5f, 4.5f, 10.5f, 12.5f };
  /* windows centred on (0, 0), (2, 0), (0, 2), (2, 2) with padding 1 */
  static const float max_expected[4] = { 5.0f, 7.0f, 13.0f, 15.0f };

  for (int i = 0; i < 16; i++)
    src[i] = (float) i;
  hfam_nhwc_avgpool (&s, 2, &avg);
  hfam_nhwc_maxpool (&s, &max);
  hfam_nhwc_global_pool (&s, &gp);
  for (int i = 0; i < 4; i++) {
    g_assert_cmpfloat (avg.data[i], ==, avg_expected[i]);
    g_assert_cmpfloat (max.data[i], ==, max_expected[i]);
  }
  g_assert_cmpfloat (gp.data[0], ==, 7.5f);

  /* all negative: the padding must not win */
  for (int i = 0; i < 16; i++)
    src[i] = -1.0f - (float) i;
  hfam_nhwc_maxpool (&s, &max);
  g_assert_cmpfloat (max.data[0], ==, -1.0f);
  g_assert_cmpfloat (max.data[3], ==, -6.0f);
  g_free (avg.data);
  g_free (max.data);
  g_free (gp.data);
}

static void
test_copy_scale_planar (void)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (3);
  HfamNhwcHost a = map_new (3, 2, 4, 4), wide = map_new (3, 2, 10, 16);
  HfamNhwcHost slice = wide, back = map_new (3, 2, 4, 8);
  const float map[6] = { 0.0f, 0.5f, 1.0f, 2.0f, -1.0f, 0.25f };
  g_autofree float *planar = g_new (float, 4 * 6);

  fill_random (&a, rand);
  slice.data = wide.data + 6;
  slice.c = 4;
  hfam_nhwc_copy (&a, &slice);
  for (int p = 0; p < 6; p++)
    for (int c = 0; c < 4; c++)
      g_assert_cmpfloat (wide.data[p * 16 + 6 + c], ==, a.data[p * 4 + c]);

  hfam_nhwc_scale_by_map (&slice, map, &slice);
  for (int p = 0; p < 6; p++)
    for (int c = 0; c < 4; c++)
      g_assert_cmpfloat (wide.data[p * 16 + 6 + c], ==, a.data[p * 4 + c] * map[p]);

  /* planar round trip; padding channels become 0 */
  hfam_nhwc_to_planar (&a, planar);
  g_assert_cmpfloat (planar[1 * 6 + 2], ==, a.data[2 * 4 + 1]);
  for (size_t i = 0; i < 6 * 8; i++)
    back.data[i] = 9.0f;
  hfam_nhwc_from_planar (planar, &back);
  for (int p = 0; p < 6; p++)
    for (int c = 0; c < 8; c++)
      g_assert_cmpfloat (back.data[p * 8 + c], ==, c < 4 ? a.data[p * 4 + c] : 0.0f);
  g_free (a.data);
  g_free (wide.data);
  g_free (back.data);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/nhwc/bias-act", test_bias_act);
  g_test_add_func ("/nhwc/split-k-sum", test_split_k_sum);
  g_test_add_func ("/nhwc/resize/hand", test_resize_hand);
  g_test_add_func ("/nhwc/resize/vs-plane", test_resize_vs_plane);
  g_test_add_func ("/nhwc/pools", test_pools);
  g_test_add_func ("/nhwc/copy-scale-planar", test_copy_scale_planar);
  return g_test_run ();
}
