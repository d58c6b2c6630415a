/* kernels/narrow-conv.c against a plain convolution on planar maps: both blocks, 1 to 4
 * outputs, ReLU, channels that do not fill the last block, and maps
 * narrower than a tile, one pixel wide or high, and with tiles and a remainder. Also a 3x3
 * map worked out by hand. */
#include "narrow-conv.h"

#include <glib.h>
#include <math.h>
#include <string.h>

/* planar oracle: out[o][y][x] over cin planar channels */
static float
plain_conv (const float *planar, int cin, int w, int h, const float *oihw, float bias, int o,
            int y, int x, gboolean relu)
{
  double sum = bias;
  for (int c = 0; c < cin; c++)
    for (int ky = 0; ky < 3; ky++)
      for (int kx = 0; kx < 3; kx++) {
        const int yy = y + ky - 1, xx = x + kx - 1;
        if (yy >= 0 && yy < h && xx >= 0 && xx < w)
          sum += (double) planar[((size_t) c * h + yy) * w + xx]
                 * oihw[(((size_t) o * cin + c) * 3 + ky) * 3 + kx];
      }
  return relu && sum < 0 ? 0.0f : (float) sum;
}

static void
check_case (int block, int cin, int n_out, int w, int h, gboolean relu)
{
  const int n_blocks = (cin + block - 1) / block;
  const size_t plane = (size_t) w * h;
  GRand *rand = g_rand_new_with_seed (cin * 1000 + w * 10 + h);
  float *planar = g_new (float, (size_t) cin * plane);
  float *oihw = g_new (float, (size_t) n_out * cin * 9), bias[HFAM_NARROW_CONV_MAX_OUT];
  float *blocked = g_new0 (float, (size_t) n_blocks * block * plane);
  float *weights = g_new0 (float, (size_t) n_out * n_blocks * 9 * block);
  float *dst = g_new (float, (size_t) block * plane);
  HfamBlockedMap in = { .src = blocked, .block = block, .n_blocks = n_blocks, .width = w,
                        .height = h };

  for (size_t i = 0; i < (size_t) cin * plane; i++) {
    const int c = i / plane;
    planar[i] = (float) g_rand_double_range (rand, -2, 2);
    blocked[((size_t) (c / block) * plane + i % plane) * block + c % block] = planar[i];
  }
  for (int o = 0; o < n_out; o++) {
    bias[o] = (float) g_rand_double_range (rand, -1, 1);
    for (int c = 0; c < cin; c++)
      for (int k = 0; k < 9; k++) {
        const float v = (float) g_rand_double_range (rand, -1, 1);
        oihw[((size_t) o * cin + c) * 9 + k] = v;
        weights[(((size_t) o * n_blocks + c / block) * 9 + k) * block + c % block] = v;
      }
  }
  /* lanes past n_out must come out zero: start them otherwise */
  for (size_t i = 0; i < (size_t) block * plane; i++)
    dst[i] = NAN;
  g_assert_cmpint (hfam_narrow_conv3x3 (&in, weights, bias, n_out, relu, dst), ==, 0);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      for (int o = 0; o < block; o++) {
        const float got = dst[((size_t) y * w + x) * block + o];
        const float want = o < n_out ? plain_conv (planar, cin, w, h, oihw, bias[o], o, y, x,
                                                   relu)
                                     : 0.0f;
        if (!(fabsf (got - want) <= 1e-4f * (1.0f + fabsf (want))))
          g_error ("block %d, %d -> %d, %dx%d%s: pixel (%d, %d) output %d: %g, want %g", block,
                   cin, n_out, w, h, relu ? ", relu" : "", x, y, o, got, want);
      }
  g_free (planar);
  g_free (oihw);
  g_free (blocked);
  g_free (weights);
  g_free (dst);
  g_rand_free (rand);
}

static void
test_against_plain (void)
{
  /* 1 and 2 wide or high (no interior), narrower than a tile of 8, tiles and a remainder */
  const int sizes[][2] = { { 1, 1 }, { 1, 5 }, { 6, 1 }, { 2, 2 }, { 5, 3 }, { 19, 7 },
                           { 37, 4 } };
  const int blocks[] = { 8, 16 }, channels[] = { 64, 20, 3 };

  for (guint b = 0; b < G_N_ELEMENTS (blocks); b++)
    for (guint c = 0; c < G_N_ELEMENTS (channels); c++)
      for (int n_out = 1; n_out <= HFAM_NARROW_CONV_MAX_OUT; n_out++)
        for (guint s = 0; s < G_N_ELEMENTS (sizes); s++)
          for (int relu = 0; relu < 2; relu++)
            check_case (blocks[b], channels[c], n_out, sizes[s][0], sizes[s][1], relu);
}

/* One channel of ones on a 3x3 map, all weights 1, bias 0.5: each output is the number of
 * map pixels in its 3x3 window, plus 0.5. */
static void
test_by_hand (void)
{
  float src[9 * 8] = { 0 }, weights[9 * 8] = { 0 }, dst[9 * 8];
  const float bias = 0.5f;
  const float want[9] = { 4.5f, 6.5f, 4.5f, 6.5f, 9.5f, 6.5f, 4.5f, 6.5f, 4.5f };
  HfamBlockedMap in = { .src = src, .block = 8, .n_blocks = 1, .width = 3, .height = 3 };

  for (int i = 0; i < 9; i++) {
    src[i * 8] = 1.0f;
    weights[i * 8] = 1.0f;
  }
  g_assert_cmpint (hfam_narrow_conv3x3 (&in, weights, &bias, 1, FALSE, dst), ==, 0);
  for (int i = 0; i < 9; i++)
    g_assert_cmpfloat (dst[i * 8], ==, want[i]);
}

static void
test_bad_sizes (void)
{
  float src[16] = { 0 }, weights[16 * 9] = { 0 }, bias[5] = { 0 }, dst[16];
  HfamBlockedMap in = { .src = src, .block = 16, .n_blocks = 1, .width = 1, .height = 1 };

  g_assert_cmpint (hfam_narrow_conv3x3 (&in, weights, bias, 0, FALSE, dst), ==, -1);
  g_assert_cmpint (hfam_narrow_conv3x3 (&in, weights, bias, 5, FALSE, dst), ==, -1);
  in.block = 4;
  g_assert_cmpint (hfam_narrow_conv3x3 (&in, weights, bias, 1, FALSE, dst), ==, -1);
  in.block = 16;
  in.width = 0;
  g_assert_cmpint (hfam_narrow_conv3x3 (&in, weights, bias, 1, FALSE, dst), ==, -1);
  in.width = 1;
  in.src = NULL;
  g_assert_cmpint (hfam_narrow_conv3x3 (&in, weights, bias, 1, FALSE, dst), ==, -1);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/narrow-conv/against-plain", test_against_plain);
  g_test_add_func ("/narrow-conv/by-hand", test_by_hand);
  g_test_add_func ("/narrow-conv/bad-sizes", test_bad_sizes);
  return g_test_run ();
}
