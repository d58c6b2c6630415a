/* Foreground colour estimation on the CPU (kernels/foreground.c), the twin of foreground.cu:
 * against a plain double-precision blur-fusion written from the paper's formulas (windows
 * summed pixel by pixel) on every frame and output format, the values where alpha is 0 or 1,
 * the arguments it refuses, and a synthetic scene with known foreground, background and
 * hair-like alpha: issue 16's bar, the fill's mean colour error inside 0 < alpha < 1 at most a
 * third of the frame pixels' (the numbers are printed). */
#include "foreground.h"
#include "kernel-test.h"

#include <glib.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>

static GRand *rng;

typedef struct {
  HfamFrame frame;
  uint8_t *mem;
} TestFrame;

/* A random frame of any format, with padded rows. */
static TestFrame
frame_random (HfamFrameFormat format, int w, int h)
{
  const int cw = (w + 1) / 2, ch = (h + 1) / 2;
  const int bpp = format <= HFAM_FRAME_BGR ? 3 : 4;
  TestFrame f = { .frame = { .width = w, .height = h, .format = format }, .mem = NULL };
  size_t total;

  if (format <= HFAM_FRAME_BGRA) {
    f.frame.strides[0] = bpp * w + 5;
    total = (size_t) f.frame.strides[0] * h;
  } else {
    f.frame.strides[0] = w + 3;
    f.frame.strides[1] = format == HFAM_FRAME_NV12 ? 2 * cw + 2 : cw + 1;
    f.frame.strides[2] = format == HFAM_FRAME_NV12 ? 0 : cw + 1;
    total = (size_t) f.frame.strides[0] * h + (size_t) (f.frame.strides[1] + f.frame.strides[2])
                                               * ch;
  }
  f.mem = g_malloc (total);
  for (size_t i = 0; i < total; i++)
    f.mem[i] = (uint8_t) g_rand_int_range (rng, 0, 256);
  f.frame.planes[0] = f.mem;
  if (format >= HFAM_FRAME_NV12)
    f.frame.planes[1] = f.mem + (size_t) f.frame.strides[0] * h;
  if (format == HFAM_FRAME_I420)
    f.frame.planes[2] = f.frame.planes[1] + (size_t) f.frame.strides[1] * ch;
  return f;
}

/* A pass's local mean of plane v as foreground.h defines it: the clipped window mean of radius
 * r / coarse (>= 1) over the means of coarse x coarse cells, the cell's at each of its pixels;
 * with coarse 1, the window mean of radius r at each pixel. */
static double *
pass_means (const double *v, int w, int h, int r, int coarse)
{
  const int cw = (w + coarse - 1) / coarse, ch = (h + coarse - 1) / coarse;
  const int rc = MAX (r / coarse, 1);
  g_autofree double *cells = g_new0 (double, (size_t) cw * ch);
  g_autofree double *boxed = g_new (double, (size_t) cw * ch);
  double *out = g_new (double, (size_t) w * h);

  for (int j = 0; j < ch; j++)
    for (int i = 0; i < cw; i++) {
      int n = 0;
      for (int y = j * coarse; y < MIN ((j + 1) * coarse, h); y++)
        for (int x = i * coarse; x < MIN ((i + 1) * coarse, w); x++, n++)
          cells[(size_t) j * cw + i] += v[(size_t) y * w + x];
      cells[(size_t) j * cw + i] /= n;
    }
  for (int j = 0; j < ch; j++)
    for (int i = 0; i < cw; i++)
      boxed[(size_t) j * cw + i] = window_mean (cells, cw, ch, i, j, rc);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      out[(size_t) y * w + x] = boxed[(size_t) (y / coarse) * cw + x / coarse];
  return out;
}

/* One blur-fusion pass from its definition: I, F, B are 3 planes, a one; F_out and B_out
 * (the blurred background) 3 planes. */
static void
fusion_pass (const double *I, const double *F, const double *B, const double *a, int w, int h,
             int r, int coarse, double *F_out, double *B_out)
{
  const size_t n = (size_t) w * h;
  g_autofree double *Fa = g_new (double, 3 * n), *Bb = g_new (double, 3 * n);
  g_autofree double *ma = pass_means (a, w, h, r, coarse);
  double *mF[3], *mB[3];

  for (int k = 0; k < 3; k++)
    for (size_t i = 0; i < n; i++) {
      Fa[k * n + i] = F[k * n + i] * a[i];
      Bb[k * n + i] = B[k * n + i] * (1.0 - a[i]);
    }
  for (int k = 0; k < 3; k++) {
    mF[k] = pass_means (Fa + k * n, w, h, r, coarse);
    mB[k] = pass_means (Bb + k * n, w, h, r, coarse);
  }
  for (size_t i = 0; i < n; i++)
    for (int k = 0; k < 3; k++) {
      const double bF = mF[k][i] / (ma[i] + 1e-5);
      const double bB = mB[k][i] / (1.0 - ma[i] + 1e-5);
      const double f = bF + a[i] * (I[k * n + i] - a[i] * bF - (1.0 - a[i]) * bB);
      F_out[k * n + i] = CLAMP (f, 0.0, 1.0);
      B_out[k * n + i] = bB;
    }
  for (int k = 0; k < 3; k++) {
    g_free (mF[k]);
    g_free (mB[k]);
  }
}

/* The foreground of a frame in double, 3 planes in 0..1. */
static double *
fusion_oracle (const HfamFrame *frame, const HfamYuvToRgb *yuv, const float *alpha,
               const HfamForegroundParams *p)
{
  const int w = frame->width, h = frame->height;
  const size_t n = (size_t) w * h;
  double *F2 = g_new (double, 3 * n);
  g_autofree double *I = g_new (double, 3 * n), *a = g_new (double, n);
  g_autofree double *F1 = g_new (double, 3 * n), *B1 = g_new (double, 3 * n);
  g_autofree double *B2 = g_new (double, 3 * n);

  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      const size_t i = (size_t) y * w + x;
      float rgb[3];
      hfam_frame_pixel_rgb (frame, yuv, x, y, rgb);
      for (int k = 0; k < 3; k++)
        I[k * n + i] = rgb[k] / 255.0;
      a[i] = CLAMP (alpha[i], 0.0f, 1.0f);
    }
  fusion_pass (I, I, I, a, w, h, p->radius_large, p->coarse, F1, B1);
  fusion_pass (I, F1, B1, a, w, h, p->radius_small, 1, F2, B2);
  return F2;
}

static const char *const frame_names[] = { "RGB", "BGR", "RGBA", "BGRA", "NV12", "I420" };
static const char *const out_names[] = { "", "", "RGBA", "BGRA", "RGBA premultiplied",
                                         "BGRA premultiplied" };

static void
test_foreground_oracle (void)
{
  /* w, h, radius_large, radius_small, coarse: the full-size pass, cells that do not divide
   * the frame, a radius under the cell size, and the threads' bands on a large frame */
  static const int sizes[][5] = { { 31, 19, 6, 2, 1 }, { 31, 19, 12, 2, 3 }, { 12, 9, 30, 1, 4 },
                                  { 13, 10, 3, 1, 4 }, { 300, 220, 40, 2, 4 } };
  HfamYuvToRgb yuv;

  hfam_yuv_to_rgb_init (&yuv, HFAM_MATRIX_BT709, HFAM_RANGE_LIMITED);
  for (size_t s = 0; s < G_N_ELEMENTS (sizes); s++)
    for (int src = 0; src < HFAM_FRAME_N_FORMATS; src++) {
      const int w = sizes[s][0], h = sizes[s][1], stride = 4 * w + 4;
      const HfamForegroundParams p = { sizes[s][2], sizes[s][3], sizes[s][4] };
      TestFrame f = frame_random (src, w, h);
      g_autofree float *alpha = g_new (float, (size_t) w * h);
      g_autofree uint8_t *out = g_new (uint8_t, (size_t) stride * h);
      g_autofree double *F = NULL;

      if (s == 4 && src != HFAM_FRAME_RGBA && src != HFAM_FRAME_NV12) {
        g_free (f.mem);
        continue;  /* the large size: the threads' bands, on two formats */
      }
      for (size_t i = 0; i < (size_t) w * h; i++) {
        const double u = g_rand_double (rng);
        alpha[i] = u < 0.2 ? 0.0f : u < 0.4 ? 1.0f : (float) g_rand_double_range (rng, -0.2, 1.2);
      }
      F = fusion_oracle (&f.frame, &yuv, alpha, &p);
      for (int fmt = HFAM_MATTE_RGBA; fmt < HFAM_MATTE_N_FORMATS; fmt++) {
        const HfamMatteImage img = { out, stride, w, h, fmt };
        const int bgr = fmt == HFAM_MATTE_BGRA || fmt == HFAM_MATTE_BGRA_PREMULTIPLIED;
        const int premultiply = fmt >= HFAM_MATTE_RGBA_PREMULTIPLIED;
        const int position[3] = { bgr ? 2 : 0, 1, bgr ? 0 : 2 };
        size_t off_by_one = 0;

        memset (out, 0xa5, (size_t) stride * h);
        if (fmt == HFAM_MATTE_RGBA) {
          g_assert_cmpint (hfam_foreground (&f.frame, &yuv, alpha, w, &p, &img, NULL), ==, 0);
        } else {
          /* memory kept from call to call: first too small for the frame, then large and
           * full of NaNs (nothing may read what it did not write) */
          HfamScratch scratch = { NULL, 0 };
          g_assert_nonnull (hfam_scratch_reserve (&scratch, 64));
          if (fmt == HFAM_MATTE_RGBA_PREMULTIPLIED)
            memset (hfam_scratch_reserve (&scratch, 16 << 20), 0xff, 16 << 20);
          for (int k = 0; k < 2; k++)
            g_assert_cmpint (hfam_foreground (&f.frame, &yuv, alpha, w, &p, &img, &scratch), ==,
                             0);
          hfam_scratch_clear (&scratch);
        }
        for (int y = 0; y < h; y++)
          for (int x = 0; x < w; x++) {
            const size_t i = (size_t) y * w + x, n = (size_t) w * h;
            const uint8_t *px = out + (size_t) y * stride + 4 * x;
            const int a8 = (int) (CLAMP (alpha[i], 0.0f, 1.0f) * 255.0f + 0.5f);
            g_assert_cmpint (px[3], ==, a8);
            for (int k = 0; k < 3; k++) {
              int want = (int) floor (F[k * n + i] * 255.0 + 0.5);
              if (premultiply)
                want = (want * a8 + 127) / 255;
              const int got = px[position[k]];
              if (abs (got - want) > 1)
                g_error ("foreground %s from %s %dx%d, pixel (%d, %d) channel %d: %d, oracle %d",
                         out_names[fmt], frame_names[src], w, h, x, y, k, got, want);
              off_by_one += got != want;
            }
          }
        /* float against double: a value may round the other way near a half */
        g_assert_cmpuint (off_by_one, <=, (size_t) w * h * 3 / 100 + 1);
        for (int y = 0; y < h; y++)
          for (int x = 4 * w; x < stride; x++)
            g_assert_cmpint (out[(size_t) y * stride + x], ==, 0xa5);
        if (g_test_verbose ())
          printf ("foreground %s from %s %dx%d: %zu values off by one\n", out_names[fmt],
                  frame_names[src], w, h, off_by_one);
      }
      g_free (f.mem);
    }
}

/* Where alpha is 1 the fill is the frame's pixel; where it is 0, premultiplied is 0. */
static void
test_foreground_ends (void)
{
  const int w = 40, h = 30;
  TestFrame f = frame_random (HFAM_FRAME_BGR, w, h);
  g_autofree float *alpha = g_new (float, w * h);
  g_autofree uint8_t *out = g_new (uint8_t, 4 * w * h);
  const HfamForegroundParams p = { 9, 2, 2 };

  for (int i = 0; i < w * h; i++)
    alpha[i] = g_rand_int_range (rng, 0, 3) * 0.5f;
  for (int fmt = HFAM_MATTE_RGBA; fmt < HFAM_MATTE_N_FORMATS; fmt += 2) {
    const HfamMatteImage img = { out, 4 * w, w, h, fmt };
    g_assert_cmpint (hfam_foreground (&f.frame, NULL, alpha, w, &p, &img, NULL), ==, 0);
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        const uint8_t *px = out + 4 * (y * w + x), *in = f.frame.planes[0] + y * f.frame.strides[0]
                                                        + 3 * x;
        if (alpha[y * w + x] == 1.0f)
          g_assert_true (px[0] == in[2] && px[1] == in[1] && px[2] == in[0] && px[3] == 255);
        else if (alpha[y * w + x] == 0.0f && fmt == HFAM_MATTE_RGBA_PREMULTIPLIED)
          g_assert_true (px[0] == 0 && px[1] == 0 && px[2] == 0 && px[3] == 0);
      }
  }
  g_free (f.mem);
}

static void
test_foreground_arguments (void)
{
  TestFrame f = frame_random (HFAM_FRAME_NV12, 8, 6);
  float alpha[8 * 6] = { 0 };
  uint8_t out[4 * 8 * 6];
  HfamYuvToRgb yuv;
  HfamForegroundParams p = { 3, 1, 1 };
  HfamMatteImage img = { out, 32, 8, 6, HFAM_MATTE_GRAY8 };

  hfam_yuv_to_rgb_init (&yuv, HFAM_MATRIX_BT601, HFAM_RANGE_FULL);
  g_assert_cmpint (hfam_foreground (&f.frame, &yuv, alpha, 8, &p, &img, NULL), ==, -1);
  img.format = HFAM_MATTE_RGBA;
  g_assert_cmpint (hfam_foreground (&f.frame, &yuv, alpha, 8, &p, &img, NULL), ==, 0);
  g_assert_cmpint (hfam_foreground (&f.frame, NULL, alpha, 8, &p, &img, NULL), ==, -1);
  g_assert_cmpint (hfam_foreground (&f.frame, &yuv, alpha, 7, &p, &img, NULL), ==, -1);
  img.stride = 31;
  g_assert_cmpint (hfam_foreground (&f.frame, &yuv, alpha, 8, &p, &img, NULL), ==, -1);
  img.stride = 32;
  img.width = 7;
  g_assert_cmpint (hfam_foreground (&f.frame, &yuv, alpha, 8, &p, &img, NULL), ==, -1);
  img.width = 8;
  p.radius_small = 0;
  g_assert_cmpint (hfam_foreground (&f.frame, &yuv, alpha, 8, &p, &img, NULL), ==, -1);
  p.radius_small = 1;
  for (p.coarse = 0; p.coarse <= HFAM_FOREGROUND_MAX_COARSE + 1; p.coarse++)
    g_assert_cmpint (hfam_foreground (&f.frame, &yuv, alpha, 8, &p, &img, NULL), ==,
                     p.coarse >= 1 && p.coarse <= HFAM_FOREGROUND_MAX_COARSE ? 0 : -1);
  g_free (f.mem);
}

/* A person's colours F (smooth, warm) over a background B (smooth, cool), with a solid body and
 * hair-like strands: thin soft lines whose alpha peaks below 1. I = alpha F + (1 - alpha) B,
 * rounded. Inside 0 < alpha < 1 the frame's own pixel carries B; the estimate should not. */
static void
test_foreground_scene (void)
{
  const int w = 240, h = 160;
  const HfamForegroundParams p = { 20, 3, 4 };
  g_autofree uint8_t *rgb = g_new (uint8_t, 3 * w * h), *out = g_new (uint8_t, 4 * w * h);
  g_autofree float *alpha = g_new (float, w * h), *F = g_new (float, 3 * w * h);
  const HfamFrame frame = { { rgb }, { 3 * w }, w, h, HFAM_FRAME_RGB };
  const HfamMatteImage img = { out, 4 * w, w, h, HFAM_MATTE_RGBA };
  double err_frame = 0.0, err_fill = 0.0;
  size_t n = 0;

  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      const int i = y * w + x;
      const double u = (double) x / w, v = (double) y / h;
      const double body = 1.0 / (1.0 + exp (-(y - 0.6 * h) / 1.5));  /* a soft shoulder line */
      double strands = 0.0;
      /* wavy strands above the body, a few pixels wide, alpha up to 0.8 */
      for (int s = 0; s < 9; s++) {
        const double cx = (s + 0.5) * w / 9.0 + 6.0 * sin (y * 0.09 + s);
        const double d = (x - cx) / 1.2;
        if (y > 0.15 * h)
          strands = MAX (strands, 0.8 * exp (-d * d));
      }
      const double a = MAX (body, strands);
      const double Fc[3] = { 180 + 50 * u, 110 + 40 * v, 60 + 30 * u * v };
      const double Bc[3] = { 30 + 40 * v, 140 + 60 * u, 210 - 50 * v };
      alpha[i] = (float) a;
      for (int k = 0; k < 3; k++) {
        F[3 * i + k] = (float) Fc[k];
        rgb[3 * i + k] = (uint8_t) floor (a * Fc[k] + (1 - a) * Bc[k] + 0.5);
      }
    }
  g_assert_cmpint (hfam_foreground (&frame, NULL, alpha, w, &p, &img, NULL), ==, 0);
  for (int i = 0; i < w * h; i++) {
    if (!(alpha[i] > 0.01f && alpha[i] < 0.99f))
      continue;
    n++;
    for (int k = 0; k < 3; k++) {
      err_frame += fabs (rgb[3 * i + k] - F[3 * i + k]) / 3.0;
      err_fill += fabs (out[4 * i + k] - F[3 * i + k]) / 3.0;
    }
  }
  err_frame /= n;
  err_fill /= n;
  printf ("synthetic scene %dx%d, radii %d and %d, cells of %d: mean colour error inside "
          "0 < alpha < 1 (%zu pixels, 0..255): frame pixels %.2f, estimated foreground %.2f "
          "(ratio %.3f)\n",
          w, h, p.radius_large, p.radius_small, p.coarse, n, err_frame, err_fill,
          err_fill / err_frame);
  g_assert_cmpuint (n, >, 1000);
  g_assert_cmpfloat (err_fill, <=, err_frame / 3.0);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  rng = g_rand_new_with_seed (16);
  omp_set_num_threads (2);
  g_test_add_func ("/foreground/oracle", test_foreground_oracle);
  g_test_add_func ("/foreground/ends", test_foreground_ends);
  g_test_add_func ("/foreground/arguments", test_foreground_arguments);
  g_test_add_func ("/foreground/scene", test_foreground_scene);
  return g_test_run ();
}
