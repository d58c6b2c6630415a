/* kernels/frame.c, the CPU twins of the fused pre-processing and the matte writer:
 * the YUV matrices against the standards' published coefficients, RGB frames against
 * hfam_preprocess_rgb8 (itself checked against PyTorch by test_resize.c), YUV frames by
 * hand, the filter tables applied in the CUDA kernel's order against the twin, the matte
 * formats by hand, and the matte's temporal blend by hand and against the resize (blending
 * before or after it gives the same matte). */
#include "frame.h"
#include "kernel-test.h"
#include "resize.h"

#include <glib.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static void
test_matrices (void)
{
  HfamYuvToRgb c;

  /* BT.601 full range (JPEG): R = Y + 1.402 Cr', G = Y - 0.344136 Cb' - 0.714136 Cr',
   * B = Y + 1.772 Cb' (Cb' = Cb - 128) */
  hfam_yuv_to_rgb_init (&c, HFAM_MATRIX_BT601, HFAM_RANGE_FULL);
  g_assert_cmpfloat_with_epsilon (c.m[0], 1.0, 1e-6);
  g_assert_cmpfloat_with_epsilon (c.m[2], 1.402, 1e-5);
  g_assert_cmpfloat_with_epsilon (c.m[4], -0.344136, 1e-5);
  g_assert_cmpfloat_with_epsilon (c.m[5], -0.714136, 1e-5);
  g_assert_cmpfloat_with_epsilon (c.m[7], 1.772, 1e-5);
  g_assert_cmpfloat_with_epsilon (c.offset[0], -1.402 * 128, 1e-3);
  /* BT.709 full: 1.5748, -0.187324, -0.468124, 1.8556 */
  hfam_yuv_to_rgb_init (&c, HFAM_MATRIX_BT709, HFAM_RANGE_FULL);
  g_assert_cmpfloat_with_epsilon (c.m[2], 1.5748, 1e-5);
  g_assert_cmpfloat_with_epsilon (c.m[4], -0.187324, 1e-5);
  g_assert_cmpfloat_with_epsilon (c.m[5], -0.468124, 1e-5);
  g_assert_cmpfloat_with_epsilon (c.m[7], 1.8556, 1e-5);
  /* BT.601 limited: 1.164383 (Y - 16), 1.596027, -0.391762, -0.812968, 2.017232 */
  hfam_yuv_to_rgb_init (&c, HFAM_MATRIX_BT601, HFAM_RANGE_LIMITED);
  g_assert_cmpfloat_with_epsilon (c.m[0], 1.164383, 1e-5);
  g_assert_cmpfloat_with_epsilon (c.m[2], 1.596027, 1e-5);
  g_assert_cmpfloat_with_epsilon (c.m[4], -0.391762, 1e-5);
  g_assert_cmpfloat_with_epsilon (c.m[5], -0.812968, 1e-5);
  g_assert_cmpfloat_with_epsilon (c.m[7], 2.017232, 1e-5);
  /* BT.709 limited: 1.164383, 1.792741, -0.213249, -0.532909, 2.112402 */
  hfam_yuv_to_rgb_init (&c, HFAM_MATRIX_BT709, HFAM_RANGE_LIMITED);
  g_assert_cmpfloat_with_epsilon (c.m[2], 1.792741, 1e-5);
  g_assert_cmpfloat_with_epsilon (c.m[4], -0.213249, 1e-5);
  g_assert_cmpfloat_with_epsilon (c.m[5], -0.532909, 1e-5);
  g_assert_cmpfloat_with_epsilon (c.m[7], 2.112402, 1e-5);
}

/* Black, white and grey map to the ends and the middle in every matrix and range. */
static void
test_yuv_pixels (void)
{
  for (int m = 0; m < 2; m++)
    for (int r = 0; r < 2; r++) {
      const int limited = r == HFAM_RANGE_LIMITED;
      uint8_t y[4], uv[2] = { 128, 128 };
      HfamFrame f = { { y, uv }, { 2, 2 }, 2, 2, HFAM_FRAME_NV12 };
      HfamYuvToRgb c;
      float rgb[3];

      hfam_yuv_to_rgb_init (&c, m, r);
      y[0] = limited ? 16 : 0;
      y[1] = limited ? 235 : 255;
      y[2] = limited ? 5 : 0;    /* below black: clamps */
      y[3] = 128;
      hfam_frame_pixel_rgb (&f, &c, 0, 0, rgb);
      for (int k = 0; k < 3; k++)
        g_assert_cmpfloat_with_epsilon (rgb[k], 0.0, 1e-3);
      hfam_frame_pixel_rgb (&f, &c, 1, 0, rgb);
      for (int k = 0; k < 3; k++)
        g_assert_cmpfloat_with_epsilon (rgb[k], 255.0, 1e-3);
      hfam_frame_pixel_rgb (&f, &c, 0, 1, rgb);
      for (int k = 0; k < 3; k++)
        g_assert_cmpfloat (rgb[k], ==, 0.0f);
      hfam_frame_pixel_rgb (&f, &c, 1, 1, rgb);
      for (int k = 0; k < 3; k++)
        g_assert_cmpfloat_with_epsilon (rgb[k], limited ? (128 - 16) * 255.0 / 219.0 : 128.0,
                                        1e-3);
    }
}

static const HfamPreprocessParams imagenet = {
  .order = { 0, 1, 2 }, .scale = 1.0f,
  .mean = { 0.485f, 0.456f, 0.406f }, .std = { 0.229f, 0.224f, 0.225f },
};

/* RGB formats: the twin equals hfam_preprocess_rgb8 (up to float rounding: the two resize
 * in a different order), for shrinking, enlarging and mixed sizes, both channel orders. */
static void
test_rgb_formats (void)
{
  static const int sizes[][4] = { { 37, 23, 64, 32 }, { 200, 120, 64, 32 }, { 20, 10, 64, 32 },
                                  { 96, 31, 32, 64 } };
  static const HfamFrameFormat formats[4] = { HFAM_FRAME_RGB, HFAM_FRAME_BGR, HFAM_FRAME_RGBA,
                                              HFAM_FRAME_BGRA };
  static const int offsets[4][3] = { { 0, 1, 2 }, { 2, 1, 0 }, { 0, 1, 2 }, { 2, 1, 0 } };
  g_autoptr (GRand) rand = g_rand_new_with_seed (11);
  HfamPreprocessParams caffe = { .order = { 2, 1, 0 }, .scale = 255.0f,
                                 .mean = { 103.939f, 116.779f, 123.68f }, .std = { 1, 1, 1 } };

  for (size_t s = 0; s < G_N_ELEMENTS (sizes); s++)
    for (int f = 0; f < 4; f++)
      for (int p = 0; p < 2; p++) {
        const int sw = sizes[s][0], sh = sizes[s][1], dw = sizes[s][2], dh = sizes[s][3];
        const int bpp = f < 2 ? 3 : 4, stride = sw * bpp + 5;
        const HfamPreprocessParams *pp = p ? &caffe : &imagenet;
        g_autofree uint8_t *pixels = g_new (uint8_t, (size_t) stride * sh);
        g_autofree float *twin = g_new (float, 3 * dw * dh);
        g_autofree float *ref = g_new (float, 3 * dw * dh);
        HfamFrame frame = { { pixels }, { stride }, sw, sh, formats[f] };

        for (size_t i = 0; i < (size_t) stride * sh; i++)
          pixels[i] = (uint8_t) g_rand_int_range (rand, 0, 256);
        g_assert_cmpint (hfam_frame_preprocess (&frame, pp, twin, dw, dh), ==, 0);
        g_assert_cmpint (hfam_preprocess_rgb8 (pixels, sw, sh, stride, bpp, offsets[f], ref, dw,
                                                dh, pp->order, pp->scale, pp->mean, pp->std),
                         ==, 0);
        /* 1e-5 of the 0..1 range, scaled to the normalised one (as test_resize.c) */
        g_assert_cmpfloat (max_abs_diff (twin, ref, 3 * dw * dh), <=,
                           1e-5 * pp->scale / pp->std[0] * 4);
      }
}

/* The filter tables applied as the CUDA kernel applies them (2-D taps, rows of columns) give
 * the twin's result: the tables are resize.c's. */
static void
test_filter_tables (void)
{
  static const int sizes[][4] = { { 1920, 1080, 512, 288 }, { 37, 23, 64, 32 },
                                  { 640, 480, 96, 64 }, { 1, 1, 32, 32 } };
  g_autoptr (GRand) rand = g_rand_new_with_seed (5);

  for (size_t s = 0; s < G_N_ELEMENTS (sizes); s++) {
    const int sw = sizes[s][0], sh = sizes[s][1], dw = sizes[s][2], dh = sizes[s][3];
    g_autofree float *src = g_new (float, (size_t) sw * sh);
    g_autofree float *ref = g_new (float, (size_t) dw * dh);
    HfamResizeFilter fx, fy;
    float worst = 0.0f;

    for (size_t i = 0; i < (size_t) sw * sh; i++)
      src[i] = (float) g_rand_double (rand);
    g_assert_cmpint (hfam_resize_plane (src, sw, sh, sw, ref, dw, dh, dw), ==, 0);
    g_assert_cmpint (hfam_resize_filter_init (&fx, sw, dw), ==, 0);
    g_assert_cmpint (hfam_resize_filter_init (&fy, sh, dh), ==, 0);
    for (int y = 0; y < dh; y++)
      for (int x = 0; x < dw; x++) {
        float acc = 0.0f;
        g_assert_cmpint (fx.start[x], >=, 0);
        g_assert_cmpint (fx.start[x] + fx.len[x], <=, sw);
        g_assert_cmpint (fx.len[x], <=, fx.k);
        for (int ty = 0; ty < fy.len[y]; ty++) {
          float row = 0.0f;
          for (int tx = 0; tx < fx.len[x]; tx++)
            row += fx.w[(size_t) x * fx.k + tx]
                   * src[(size_t) (fy.start[y] + ty) * sw + fx.start[x] + tx];
          acc += fy.w[(size_t) y * fy.k + ty] * row;
        }
        worst = MAX (worst, fabsf (acc - ref[(size_t) y * dw + x]));
      }
    g_assert_cmpfloat (worst, <=, 2e-6);
    hfam_resize_filter_clear (&fx);
    hfam_resize_filter_clear (&fy);
  }
  {
    HfamResizeFilter f;
    g_assert_cmpint (hfam_resize_filter_init (&f, 0, 4), ==, -1);
    g_assert_cmpint (hfam_resize_filter_init (&f, 4, 0), ==, -1);
  }
}

/* NV12 and I420 holding the same samples give the same tensor; a frame of one colour gives
 * that colour's normalised value everywhere (odd sizes: the last chroma sample covers one
 * column or row). */
static void
test_yuv_formats (void)
{
  const int w = 33, h = 17, cw = 17, ch = 9, dw = 32, dh = 32;
  g_autofree uint8_t *Y = g_new (uint8_t, w * h);
  g_autofree uint8_t *uv = g_new (uint8_t, 2 * cw * ch);
  g_autofree uint8_t *u = g_new (uint8_t, cw * ch);
  g_autofree uint8_t *v = g_new (uint8_t, cw * ch);
  g_autofree float *a = g_new (float, 3 * dw * dh);
  g_autofree float *b = g_new (float, 3 * dw * dh);
  g_autoptr (GRand) rand = g_rand_new_with_seed (13);
  HfamPreprocessParams p = imagenet;
  HfamFrame nv12 = { { Y, uv }, { w, 2 * cw }, w, h, HFAM_FRAME_NV12 };
  HfamFrame i420 = { { Y, u, v }, { w, cw, cw }, w, h, HFAM_FRAME_I420 };
  float rgb[3];

  hfam_yuv_to_rgb_init (&p.yuv, HFAM_MATRIX_BT709, HFAM_RANGE_LIMITED);
  for (int i = 0; i < w * h; i++)
    Y[i] = (uint8_t) g_rand_int_range (rand, 0, 256);
  for (int i = 0; i < cw * ch; i++) {
    u[i] = uv[2 * i] = (uint8_t) g_rand_int_range (rand, 0, 256);
    v[i] = uv[2 * i + 1] = (uint8_t) g_rand_int_range (rand, 0, 256);
  }
  g_assert_cmpint (hfam_frame_preprocess (&nv12, &p, a, dw, dh), ==, 0);
  g_assert_cmpint (hfam_frame_preprocess (&i420, &p, b, dw, dh), ==, 0);
  g_assert_cmpfloat (max_abs_diff (a, b, 3 * dw * dh), ==, 0.0f);

  /* the chroma sample of the last (odd) column and row */
  hfam_frame_pixel_rgb (&nv12, &p.yuv, w - 1, h - 1, rgb);
  {
    float ref[3];
    const float Yv = Y[(h - 1) * w + w - 1], U = u[(ch - 1) * cw + cw - 1];
    const float V = v[(ch - 1) * cw + cw - 1];
    for (int k = 0; k < 3; k++) {
      ref[k] = p.yuv.m[3 * k] * Yv + p.yuv.m[3 * k + 1] * U + p.yuv.m[3 * k + 2] * V
               + p.yuv.offset[k];
      ref[k] = ref[k] < 0 ? 0 : ref[k] > 255 ? 255 : ref[k];
      g_assert_cmpfloat_with_epsilon (rgb[k], ref[k], 1e-3);
    }
  }

  memset (Y, 180, w * h);
  memset (u, 128, cw * ch);
  memset (v, 128, cw * ch);
  g_assert_cmpint (hfam_frame_preprocess (&i420, &p, b, dw, dh), ==, 0);
  for (int k = 0; k < 3; k++) {
    const float grey = (float) ((180 - 16) * 255.0 / 219.0);
    const float expected = (grey / 255.0f - p.mean[k]) / p.std[k];
    for (int i = 0; i < dw * dh; i++)
      g_assert_cmpfloat_with_epsilon (b[k * dw * dh + i], expected, 1e-4);
  }
  /* bad frames are refused */
  i420.planes[2] = NULL;
  g_assert_cmpint (hfam_frame_preprocess (&i420, &p, b, dw, dh), ==, -1);
  nv12.strides[1] = 2 * cw - 1;
  g_assert_cmpint (hfam_frame_preprocess (&nv12, &p, b, dw, dh), ==, -1);
}

static void
test_matte_formats (void)
{
  /* alpha 2x2 -> frame 4x2: columns enlarge (0.75/0.25 taps), rows keep */
  static const float alpha[4] = { 0.0f, 1.0f, 0.5f, 1.2f };
  uint8_t rgba[4 * 4 * 2], out[4 * 4 * 2];
  uint16_t key16[4 * 2];
  HfamFrame frame = { { rgba }, { 16 }, 4, 2, HFAM_FRAME_RGBA };
  HfamYuvToRgb yuv;
  HfamMatteImage img = { out, 4, 4, 2, HFAM_MATTE_GRAY8 };
  float resized[8];

  hfam_yuv_to_rgb_init (&yuv, HFAM_MATRIX_BT601, HFAM_RANGE_LIMITED);
  for (int i = 0; i < 32; i++)
    rgba[i] = (uint8_t) (i * 7 + 3);
  g_assert_cmpint (hfam_resize_plane (alpha, 2, 2, 2, resized, 4, 2, 4), ==, 0);

  g_assert_cmpint (hfam_matte_write (alpha, 2, 2, NULL, NULL, &img), ==, 0);
  for (int i = 0; i < 8; i++) {
    const float a = CLAMP (resized[i], 0.0f, 1.0f);
    g_assert_cmpint (out[i], ==, (int) floorf (a * 255.0f + 0.5f));
  }
  g_assert_cmpint (out[0], ==, 0);     /* 0 */
  g_assert_cmpint (out[1], ==, 64);    /* 0.25 * 255 = 63.75 */
  g_assert_cmpint (out[3], ==, 255);
  g_assert_cmpint (out[4], ==, 128);   /* 0.5 -> 127.5 -> 128 */
  g_assert_cmpint (out[7], ==, 255);   /* 1.2 clamps */

  img.data = (uint8_t *) key16;
  img.stride = 8;
  img.format = HFAM_MATTE_GRAY16;
  g_assert_cmpint (hfam_matte_write (alpha, 2, 2, NULL, NULL, &img), ==, 0);
  g_assert_cmpint (key16[4], ==, 32768);
  g_assert_cmpint (key16[1], ==, 16384);  /* 16383.75 */
  g_assert_cmpint (key16[7], ==, 65535);

  img.data = out;
  img.stride = 16;
  for (int f = HFAM_MATTE_RGBA; f <= HFAM_MATTE_BGRA_PREMULTIPLIED; f++) {
    const int bgr = f == HFAM_MATTE_BGRA || f == HFAM_MATTE_BGRA_PREMULTIPLIED;
    const int pre = f >= HFAM_MATTE_RGBA_PREMULTIPLIED;
    img.format = f;
    g_assert_cmpint (hfam_matte_write (alpha, 2, 2, &frame, &yuv, &img), ==, 0);
    for (int i = 0; i < 8; i++) {
      const int a8 = (int) floorf (CLAMP (resized[i], 0.0f, 1.0f) * 255.0f + 0.5f);
      for (int k = 0; k < 3; k++) {
        const int c = rgba[4 * i + k];
        const int want = pre ? (int) floor (c * a8 / 255.0 + 0.5) : c;
        g_assert_cmpint (out[4 * i + (bgr ? 2 - k : k)], ==, want);
      }
      g_assert_cmpint (out[4 * i + 3], ==, a8);
    }
  }
  /* 200 * 128 / 255 = 100.4 -> 100 */
  rgba[0] = 200;
  {
    static const float half[4] = { 0.5f, 0.5f, 0.5f, 0.5f };
    img.format = HFAM_MATTE_RGBA_PREMULTIPLIED;
    g_assert_cmpint (hfam_matte_write (half, 2, 2, &frame, &yuv, &img), ==, 0);
    g_assert_cmpint (out[0], ==, 100);
    g_assert_cmpint (out[3], ==, 128);
  }
  /* a colour format needs the frame, of the output's size */
  g_assert_cmpint (hfam_matte_write (alpha, 2, 2, NULL, &yuv, &img), ==, -1);
  frame.width = 3;
  g_assert_cmpint (hfam_matte_write (alpha, 2, 2, &frame, &yuv, &img), ==, -1);
  img.stride = 3;
  img.format = HFAM_MATTE_GRAY8;
  g_assert_cmpint (hfam_matte_write (alpha, 2, 2, NULL, NULL, &img), ==, -1);
}

/* A shrinking matte: the key equals hfam_resize_plane's result rounded. */
static void
test_matte_shrink (void)
{
  const int aw = 64, ah = 48, w = 37, h = 21;
  g_autofree float *alpha = g_new (float, aw * ah);
  g_autofree float *ref = g_new (float, w * h);
  g_autofree uint8_t *key = g_new (uint8_t, w * h);
  g_autoptr (GRand) rand = g_rand_new_with_seed (17);
  HfamMatteImage img = { key, w, w, h, HFAM_MATTE_GRAY8 };

  for (int i = 0; i < aw * ah; i++)
    alpha[i] = (float) g_rand_double_range (rand, -0.2, 1.2);
  g_assert_cmpint (hfam_matte_write (alpha, aw, ah, NULL, NULL, &img), ==, 0);
  g_assert_cmpint (hfam_resize_plane (alpha, aw, ah, aw, ref, w, h, w), ==, 0);
  for (int i = 0; i < w * h; i++)
    g_assert_cmpint (key[i], ==, (int) floorf (CLAMP (ref[i], 0.0f, 1.0f) * 255.0f + 0.5f));
}

/* A 1080p matte, spread over threads, comes out as on one thread, bit for bit: a colour
 * format from an NV12 frame and from an RGBA one, and a key. */
static void
test_matte_threads (void)
{
  const int aw = 512, ah = 288, w = 1920, h = 1080;
  g_autofree float *alpha = g_new (float, aw * ah);
  g_autofree uint8_t *nv12 = g_malloc ((size_t) w * h * 3 / 2);
  g_autofree uint8_t *rgba = g_malloc ((size_t) w * h * 4);
  g_autofree uint8_t *one = g_malloc ((size_t) w * h * 4);
  g_autofree uint8_t *many = g_malloc ((size_t) w * h * 4);
  g_autoptr (GRand) rand = g_rand_new_with_seed (23);
  const HfamFrame frames[2] = {
    { .planes = { nv12, nv12 + (size_t) w * h }, .strides = { w, w }, .width = w, .height = h,
      .format = HFAM_FRAME_NV12 },
    { .planes = { rgba }, .strides = { w * 4 }, .width = w, .height = h,
      .format = HFAM_FRAME_RGBA },
  };
  static const HfamMatteFormat formats[3] = {
    HFAM_MATTE_RGBA_PREMULTIPLIED, HFAM_MATTE_BGRA, HFAM_MATTE_GRAY16,
  };
  HfamYuvToRgb yuv;

  hfam_yuv_to_rgb_init (&yuv, HFAM_MATRIX_BT709, HFAM_RANGE_LIMITED);
  for (int i = 0; i < aw * ah; i++)
    alpha[i] = (float) g_rand_double_range (rand, -0.2, 1.2);
  for (size_t i = 0; i < (size_t) w * h * 3 / 2; i++)
    nv12[i] = (uint8_t) g_rand_int (rand);
  for (size_t i = 0; i < (size_t) w * h * 4; i++)
    rgba[i] = (uint8_t) g_rand_int (rand);
  for (int f = 0; f < 3; f++) {
    const HfamMatteImage out[2] = {
      { one, w * hfam_matte_bytes_per_pixel (formats[f]), w, h, formats[f] },
      { many, w * hfam_matte_bytes_per_pixel (formats[f]), w, h, formats[f] },
    };
    for (int k = 0; k < 2; k++) {
      omp_set_num_threads (k == 0 ? 1 : 3);
      g_assert_cmpint (hfam_matte_write (alpha, aw, ah, &frames[f % 2], &yuv, &out[k]), ==, 0);
    }
    g_assert_true (memcmp (one, many, (size_t) out[0].stride * h) == 0);
  }
}

/* The blend by hand, on values a float holds exactly; s = 0 takes the fresh matte, s = 1 keeps
 * the old one; nothing past n is written. */
static void
test_matte_blend (void)
{
  const float fresh[5] = { 0.0f, 1.0f, 0.5f, -0.25f, 7.0f };
  const float old[5] = { 1.0f, 0.0f, 0.5f, 0.75f, 7.0f };
  const float quarter[4] = { 0.25f, 0.75f, 0.5f, 0.0f };
  float matte[5];

  memcpy (matte, old, sizeof matte);
  hfam_matte_blend (matte, fresh, 4, 0.25f);
  for (int i = 0; i < 4; i++)
    g_assert_cmpfloat (matte[i], ==, quarter[i]);
  g_assert_cmpfloat (matte[4], ==, old[4]);

  memcpy (matte, old, sizeof matte);
  hfam_matte_blend (matte, fresh, 5, 0.0f);
  g_assert_cmpmem (matte, sizeof matte, fresh, sizeof fresh);
  memcpy (matte, old, sizeof matte);
  hfam_matte_blend (matte, fresh, 5, 1.0f);
  g_assert_cmpmem (matte, sizeof matte, old, sizeof old);
  hfam_matte_blend (matte, fresh, 0, 0.5f);
  g_assert_cmpmem (matte, sizeof matte, old, sizeof old);
}

/* The element blends at the frame's size, the CUDA backend at the inference size before the
 * resize: the resize is linear, so both give the same matte up to float rounding. */
static void
test_blend_resize_commute (void)
{
  static const int sizes[][4] = { { 64, 48, 37, 21 }, { 32, 32, 333, 187 } };
  const float s = 0.3f;
  g_autoptr (GRand) rand = g_rand_new_with_seed (23);

  for (size_t k = 0; k < G_N_ELEMENTS (sizes); k++) {
    const int aw = sizes[k][0], ah = sizes[k][1], w = sizes[k][2], h = sizes[k][3];
    g_autofree float *a = g_new (float, aw * ah), *b = g_new (float, aw * ah);
    g_autofree float *ra = g_new (float, w * h), *rb = g_new (float, w * h);
    g_autofree float *device = g_new (float, w * h);
    double max_diff = 0.0;

    for (int i = 0; i < aw * ah; i++) {
      a[i] = (float) g_rand_double_range (rand, -0.2, 1.2);
      b[i] = (float) g_rand_double_range (rand, -0.2, 1.2);
    }
    g_assert_cmpint (hfam_resize_plane (a, aw, ah, aw, ra, w, h, w), ==, 0);
    g_assert_cmpint (hfam_resize_plane (b, aw, ah, aw, rb, w, h, w), ==, 0);
    hfam_matte_blend (rb, ra, (size_t) w * h, s);          /* the element's order */
    hfam_matte_blend (b, a, (size_t) aw * ah, s);          /* the backend's */
    g_assert_cmpint (hfam_resize_plane (b, aw, ah, aw, device, w, h, w), ==, 0);
    for (int i = 0; i < w * h; i++)
      max_diff = MAX (max_diff, fabs ((double) device[i] - rb[i]));
    g_assert_cmpfloat (max_diff, <=, 1e-6);
  }
}

/* ---- the fast YUV paths (hfam_frame_row_rgb, hfam_frame_preprocess_rows, the fill) ---- */

/* A tiny YUV frame of odd or even sides with padded rows, in both layouts, samples covering
 * the whole byte range (so that conversions clamp). */
typedef struct {
  int w, h, cw, ch;
  guint8 *Y, *u, *v, *uv;
  HfamFrame i420, nv12;
} YuvCase;

static void
yuv_case_init (YuvCase *c, int w, int h, guint32 seed)
{
  const int ys = w + 3, cs = (w + 1) / 2 + 5;
  GRand *rand = g_rand_new_with_seed (seed);

  c->w = w;
  c->h = h;
  c->cw = (w + 1) / 2;
  c->ch = (h + 1) / 2;
  c->Y = g_malloc ((size_t) ys * h);
  c->u = g_malloc ((size_t) cs * c->ch);
  c->v = g_malloc ((size_t) cs * c->ch);
  c->uv = g_malloc ((size_t) 2 * cs * c->ch);
  for (int i = 0; i < ys * h; i++)
    c->Y[i] = (guint8) g_rand_int_range (rand, 0, 256);
  for (int i = 0; i < cs * c->ch; i++) {
    c->u[i] = (guint8) g_rand_int_range (rand, 0, 256);
    c->v[i] = (guint8) g_rand_int_range (rand, 0, 256);
  }
  for (int y = 0; y < c->ch; y++)
    for (int x = 0; x < cs; x++) {
      c->uv[(size_t) y * 2 * cs + 2 * x] = c->u[(size_t) y * cs + x];
      c->uv[(size_t) y * 2 * cs + 2 * x + 1] = c->v[(size_t) y * cs + x];
    }
  c->i420 = (HfamFrame) { { c->Y, c->u, c->v }, { ys, cs, cs }, w, h, HFAM_FRAME_I420 };
  c->nv12 = (HfamFrame) { { c->Y, c->uv }, { ys, 2 * cs }, w, h, HFAM_FRAME_NV12 };
  g_rand_free (rand);
}

static void
yuv_case_clear (YuvCase *c)
{
  g_free (c->Y);
  g_free (c->u);
  g_free (c->v);
  g_free (c->uv);
}

/* The standards' formula for one pixel, in double, from the chroma sample covering it. */
static void
reference_rgb (const YuvCase *c, HfamColorMatrix matrix, HfamColorRange range, int x, int y,
               double rgb[3])
{
  const double kr = matrix == HFAM_MATRIX_BT709 ? 0.2126 : 0.299;
  const double kb = matrix == HFAM_MATRIX_BT709 ? 0.0722 : 0.114;
  const int full = range == HFAM_RANGE_FULL;
  const int cs = c->i420.strides[1];
  const double Y = (c->Y[(size_t) y * c->i420.strides[0] + x] - (full ? 0.0 : 16.0))
                   * (full ? 1.0 : 255.0 / 219.0);
  const double cb = (c->u[(size_t) (y / 2) * cs + x / 2] - 128.0) * (full ? 1.0 : 255.0 / 224.0);
  const double cr = (c->v[(size_t) (y / 2) * cs + x / 2] - 128.0) * (full ? 1.0 : 255.0 / 224.0);
  const double r = Y + 2.0 * (1.0 - kr) * cr, b = Y + 2.0 * (1.0 - kb) * cb;
  const double g = (Y - kr * r - kb * b) / (1.0 - kr - kb);

  rgb[0] = CLAMP (r, 0.0, 255.0);
  rgb[1] = CLAMP (g, 0.0, 255.0);
  rgb[2] = CLAMP (b, 0.0, 255.0);
}

/* (513 and 515: the rows' passes of 256 pixels, the last of one pixel and of three) */
static const int yuv_sizes[][2] = { { 1, 1 }, { 2, 2 }, { 3, 1 }, { 1, 4 }, { 7, 5 },
                                    { 16, 9 }, { 33, 17 }, { 513, 2 }, { 515, 3 } };

/* Rows of both layouts, every matrix and range, equal the oracle hfam_frame_pixel_rgb bit for
 * bit (times the gain) and the standards' formula to float rounding. */
static void
test_yuv_rows (void)
{
  for (guint s = 0; s < G_N_ELEMENTS (yuv_sizes); s++) {
    YuvCase c;
    yuv_case_init (&c, yuv_sizes[s][0], yuv_sizes[s][1], 11 + s);
    float *row = g_new (float, 3 * c.w);
    for (int m = 0; m < 4; m++) {
      const HfamColorMatrix matrix = m / 2 ? HFAM_MATRIX_BT709 : HFAM_MATRIX_BT601;
      const HfamColorRange range = m % 2 ? HFAM_RANGE_FULL : HFAM_RANGE_LIMITED;
      HfamYuvToRgb yuv;
      hfam_yuv_to_rgb_init (&yuv, matrix, range);
      for (int f = 0; f < 2; f++) {
        const HfamFrame *frame = f ? &c.nv12 : &c.i420;
        for (int y = 0; y < c.h; y++) {
          hfam_frame_row_rgb (frame, &yuv, y, 1.0f, row);
          for (int x = 0; x < c.w; x++) {
            float oracle[3];
            double ref[3];
            hfam_frame_pixel_rgb (frame, &yuv, x, y, oracle);
            reference_rgb (&c, matrix, range, x, y, ref);
            for (int k = 0; k < 3; k++) {
              g_assert_cmpfloat (row[3 * x + k], ==, oracle[k]);
              g_assert_cmpfloat_with_epsilon (row[3 * x + k], ref[k], 1e-3);
            }
          }
          hfam_frame_row_rgb (frame, &yuv, y, 1.0f / 255.0f, row);
          for (int x = 0; x < c.w; x++) {
            float oracle[3];
            hfam_frame_pixel_rgb (frame, &yuv, x, y, oracle);
            for (int k = 0; k < 3; k++)
              g_assert_cmpfloat (row[3 * x + k], ==, oracle[k] * (1.0f / 255.0f));
          }
        }
      }
    }
    g_free (row);
    yuv_case_clear (&c);
  }
}

/* The row by row preprocess equals the oracle hfam_frame_preprocess to float rounding, for
 * shrinking, enlarging and mixed sizes, both layouts, every matrix and range, on one thread
 * and on a team. */
static void
test_preprocess_rows (void)
{
  static const int out_sizes[][2] = { { 1, 1 }, { 3, 2 }, { 8, 5 }, { 40, 3 } };

  for (guint s = 0; s < G_N_ELEMENTS (yuv_sizes); s++) {
    YuvCase c;
    yuv_case_init (&c, yuv_sizes[s][0], yuv_sizes[s][1], 31 + s);
    for (guint o = 0; o < G_N_ELEMENTS (out_sizes); o++)
      for (int m = 0; m < 4; m++) {
        const int dw = out_sizes[o][0], dh = out_sizes[o][1];
        HfamPreprocessParams p = { .order = { 2, 1, 0 }, .scale = 1.0f,
                                   .mean = { 0.485f, 0.456f, 0.406f },
                                   .std = { 0.229f, 0.224f, 0.225f } };
        float *fast = g_new (float, 3 * dw * dh), *oracle = g_new (float, 3 * dw * dh);
        hfam_yuv_to_rgb_init (&p.yuv, m / 2 ? HFAM_MATRIX_BT709 : HFAM_MATRIX_BT601,
                              m % 2 ? HFAM_RANGE_FULL : HFAM_RANGE_LIMITED);
        for (int f = 0; f < 2; f++) {
          const HfamFrame *frame = f ? &c.nv12 : &c.i420;
          g_assert_cmpint (hfam_frame_preprocess (frame, &p, oracle, dw, dh), ==, 0);
          omp_set_num_threads (1 + (m % 2));
          g_assert_cmpint (hfam_frame_preprocess_rows (frame, &p, fast, dw, dh), ==, 0);
          /* (values up to about 2.6 after the normalisation) */
          g_assert_cmpfloat (max_abs_diff (fast, oracle, 3 * (size_t) dw * dh), <, 1e-5f);
        }
        g_free (fast);
        g_free (oracle);
      }
    yuv_case_clear (&c);
  }
  omp_set_num_threads (1);
}

/* The fill from a YUV frame: every pixel's colours the standards' formula rounded (to one
 * level where float rounding meets a half), premultiplied or not, RGBA and BGRA, both
 * layouts, every matrix and range. */
static void
test_yuv_fill (void)
{
  for (guint s = 0; s < G_N_ELEMENTS (yuv_sizes); s++) {
    YuvCase c;
    yuv_case_init (&c, yuv_sizes[s][0], yuv_sizes[s][1], 51 + s);
    const int w = c.w, h = c.h, stride = 4 * w + 4;
    float *alpha = g_new (float, w * h);
    guint8 *out = g_malloc0 ((size_t) stride * h);
    for (int i = 0; i < w * h; i++)
      alpha[i] = (float) ((i * 37) % 101) / 100.0f;
    for (int m = 0; m < 4; m++) {
      const HfamColorMatrix matrix = m / 2 ? HFAM_MATRIX_BT709 : HFAM_MATRIX_BT601;
      const HfamColorRange range = m % 2 ? HFAM_RANGE_FULL : HFAM_RANGE_LIMITED;
      HfamYuvToRgb yuv;
      hfam_yuv_to_rgb_init (&yuv, matrix, range);
      for (int f = 0; f < 2; f++)
        for (int fmt = HFAM_MATTE_RGBA; fmt <= HFAM_MATTE_BGRA_PREMULTIPLIED; fmt++) {
          const HfamMatteImage img = { out, stride, w, h, fmt };
          const int bgr = fmt == HFAM_MATTE_BGRA || fmt == HFAM_MATTE_BGRA_PREMULTIPLIED;
          const int pm = fmt >= HFAM_MATTE_RGBA_PREMULTIPLIED;
          g_assert_cmpint (hfam_matte_write (alpha, w, h, f ? &c.nv12 : &c.i420, &yuv, &img),
                           ==, 0);
          for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
              const guint8 *px = out + (size_t) y * stride + 4 * x;
              /* (in float, as frame.h writes it) */
              const int a8 = (int) (alpha[y * w + x] * 255.0f + 0.5f);
              double ref[3];
              reference_rgb (&c, matrix, range, x, y, ref);
              g_assert_cmpint (px[3], ==, a8);
              for (int k = 0; k < 3; k++) {
                const int level = (int) floor (ref[k] + 0.5);
                const int want = pm ? (level * a8 + 127) / 255 : level;
                g_assert_cmpint (abs (px[bgr ? 2 - k : k] - want), <=, 1);
              }
            }
        }
    }
    g_free (alpha);
    g_free (out);
    yuv_case_clear (&c);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/frame/matrices", test_matrices);
  g_test_add_func ("/frame/yuv-pixels", test_yuv_pixels);
  g_test_add_func ("/frame/rgb-formats", test_rgb_formats);
  g_test_add_func ("/frame/filter-tables", test_filter_tables);
  g_test_add_func ("/frame/yuv-formats", test_yuv_formats);
  g_test_add_func ("/frame/matte-formats", test_matte_formats);
  g_test_add_func ("/frame/matte-shrink", test_matte_shrink);
  g_test_add_func ("/frame/matte-threads", test_matte_threads);
  g_test_add_func ("/frame/matte-blend", test_matte_blend);
  g_test_add_func ("/frame/blend-resize-commute", test_blend_resize_commute);
  g_test_add_func ("/frame/yuv-rows", test_yuv_rows);
  g_test_add_func ("/frame/preprocess-rows", test_preprocess_rows);
  g_test_add_func ("/frame/yuv-fill", test_yuv_fill);
  return g_test_run ();
}
