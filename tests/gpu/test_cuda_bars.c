/* Black bars cleared from the matte on the GPU (kernels/bars.cu) against the CPU twin
 * (kernels/bars.c): random grey planes from 1x1 to 1920x1080 with bars of random widths on
 * each edge (values at or under black there, black itself among them) and a picture whose
 * pixels are just above black or dark at random, each edge of it holding at least one that is
 * not dark; its first row and column dark but for one pixel; NaN in a bar's row (which ends
 * the bar there); frames that are black all over, and frames without bars. The decision is one
 * comparison per pixel, so `found` and the whole matte must agree to the bit; where the
 * frame's bars are known, the twin must find them too.
 * At the frame's size: hfam_cuda_frame_find_bars against hfam_frame_find_bars on device frames
 * of every format (RGB, BGR, RGBA, BGRA, NV12, I420), tightly packed and pitched, from 1x1 to
 * 1920x1080: bars of random widths drawn black on random edges, widened by 0..3 dark lines,
 * around a picture clear of the threshold (RGB sums up to the threshold's and just over it, the
 * threshold a sum / 765 as the twin rounds it; YUV pixels' means at least YUV_MARGIN from it,
 * the device's YUV conversion fusing multiply-adds), the inference bars at a random size
 * consistent with them (some edges 0, now and then one past them), with the frame and with
 * none; bars must agree to the int. hfam_cuda_matte_image_clear_bars against
 * hfam_matte_image_clear_bars on every output format, tight and pitched, random bytes, random
 * bars and refused ones: every byte, padding untouched. hfam_cuda_plane_zero_bars against
 * hfam_plane_zero_bars on float planes: every value. What the launchers refuse. Then the
 * ops' times at 512x288 and 1920x1080 with and without bars, and at the frame's size on a
 * 1920x1080 letterbox (median of 50). Exits 77 (skipped) when no CUDA device opens; the seed
 * is printed, HFAM_TEST_SEED=N repeats a run. */
#include "bars.cuh"
#include "check-cuda.h"
#include "median.h"

#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static int n_failed;

/* A value at or under black: black itself, 0 or between. */
static float
dark (GRand *rand, float black)
{
  switch (g_rand_int_range (rand, 0, 4)) {
  case 0:
    return black;
  case 1:
    return 0.0f;
  default:
    return (float) g_rand_double (rand) * black;
  }
}

/* A value over black: half the time the next float up (above 1 where black is 1: only the
 * comparison counts). */
static float
light (GRand *rand, float black)
{
  const float v = black + (float) g_rand_double (rand) * (1.0f - black);
  return g_rand_boolean (rand) || v <= black ? nextafterf (black, INFINITY) : v;
}

static void
compare (const char *name, const float *grey, const float *matte, int w, int h,
         const HfamBarParams *p, const HfamBars *expect)
{
  const size_t n = (size_t) w * h, bytes = sizeof (float) * n;
  g_autofree float *want = g_memdup2 (matte, bytes), *got = g_new (float, n);
  HfamBars bars;
  int found[4], *d_found;
  float *d_matte, *d_grey;
  size_t differ = 0, cleared = 0;

  CHECK_CUDA (cudaMalloc ((void **) &d_matte, bytes));
  CHECK_CUDA (cudaMalloc ((void **) &d_grey, bytes));
  CHECK_CUDA (cudaMalloc ((void **) &d_found, sizeof found));
  CHECK_CUDA (cudaMemcpy (d_matte, matte, bytes, cudaMemcpyHostToDevice));
  CHECK_CUDA (cudaMemcpy (d_grey, grey, bytes, cudaMemcpyHostToDevice));
  CHECK_CUDA (hfam_cuda_matte_clear_bars (d_matte, d_grey, w, h, p, d_found, 0));
  CHECK_CUDA (cudaMemcpy (got, d_matte, bytes, cudaMemcpyDeviceToHost));
  CHECK_CUDA (cudaMemcpy (found, d_found, sizeof found, cudaMemcpyDeviceToHost));
  g_assert_cmpint (hfam_matte_clear_bars (want, grey, w, h, p, &bars), ==, 0);
  for (size_t i = 0; i < n; i++) {
    differ += memcmp (&got[i], &want[i], sizeof (float)) != 0;
    cleared += memcmp (&want[i], &matte[i], sizeof (float)) != 0;
  }
  const gboolean same_bars = found[0] == bars.top && found[1] == bars.bottom
                             && found[2] == bars.left && found[3] == bars.right;
  const gboolean as_made = !expect || memcmp (expect, &bars, sizeof bars) == 0;
  const gboolean ok = !differ && same_bars && as_made;
  printf ("%s bars %-44s cpu %d %d %d %d, gpu %d %d %d %d; %zu of %zu pixels differ "
          "(%zu cleared)%s\n",
          ok ? "ok  " : "FAIL", name, bars.top, bars.bottom, bars.left, bars.right, found[0],
          found[1], found[2], found[3], differ, n, cleared,
          as_made ? "" : "; the CPU twin missed the bars made");
  n_failed += !ok;
  cudaFree (d_matte);
  cudaFree (d_grey);
  cudaFree (d_found);
}

/* Bars b (top + bottom <= h, left + right <= w) around a picture in which a share `dark_share`
 * of pixels is dark; with `thin`, the picture's first row and column are dark but for one
 * pixel; with `nan`, a NaN in one of the top bar's rows (the twin's bar ends above it). */
static void
check_frame (GRand *rand, int w, int h, float black, HfamBars b, double dark_share,
             gboolean thin, gboolean nan)
{
  const size_t n = (size_t) w * h;
  const int x0 = b.left, x1 = w - b.right, y0 = b.top, y1 = h - b.bottom;
  const gboolean picture = x0 < x1 && y0 < y1;
  g_autofree float *grey = g_new (float, n), *matte = g_new (float, n);
  HfamBars expect = picture ? b : (HfamBars) { h, 0, w, 0 };
  char name[96];

  g_assert (b.top + b.bottom <= h && b.left + b.right <= w);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      const gboolean inside = x >= x0 && x < x1 && y >= y0 && y < y1;
      const gboolean is_dark = !inside || (thin && (x == x0 || y == y0))
                               || g_rand_double (rand) < dark_share;
      grey[(size_t) y * w + x] = is_dark ? dark (rand, black) : light (rand, black);
      matte[(size_t) y * w + x] = (float) g_rand_double (rand);
    }
  if (picture) {
    /* one pixel not dark on each of the picture's edges, so that the bars end where made */
    grey[(size_t) y0 * w + g_rand_int_range (rand, x0, x1)] = light (rand, black);
    grey[(size_t) (y1 - 1) * w + g_rand_int_range (rand, x0, x1)] = light (rand, black);
    grey[(size_t) g_rand_int_range (rand, y0, y1) * w + x0] = light (rand, black);
    grey[(size_t) g_rand_int_range (rand, y0, y1) * w + x1 - 1] = light (rand, black);
  }
  if (nan && b.top > 0) {
    const int y = g_rand_int_range (rand, 0, b.top), x = g_rand_int_range (rand, 0, w);
    grey[(size_t) y * w + x] = NAN;
    if (picture) {
      expect.top = y;
      if (x < b.left)
        expect.left = x;
      if (x >= w - b.right)
        expect.right = w - 1 - x;
    } else {
      expect = (HfamBars) { y, h - 1 - y, x, w - 1 - x };
    }
  }
  snprintf (name, sizeof name, "%dx%d black %g bars %d %d %d %d%s%s", w, h, black, b.top,
            b.bottom, b.left, b.right, thin ? " thin" : "", nan && b.top > 0 ? " nan" : "");
  compare (name, grey, matte, w, h, &(HfamBarParams) { black }, &expect);
}

/* Bars of random widths, each edge's up to a third of the frame (or none, one time in four). */
static HfamBars
random_bars (GRand *rand, int w, int h)
{
  HfamBars b;
  int *side[4] = { &b.top, &b.bottom, &b.left, &b.right };

  for (int k = 0; k < 4; k++) {
    const int extent = k < 2 ? h : w;
    *side[k] = g_rand_int_range (rand, 0, 4) ? g_rand_int_range (rand, 0, extent / 3 + 1) : 0;
  }
  return b;
}

static void
check_random (GRand *rand, int w, int h)
{
  static const float blacks[] = { 0.0f, 0.02f, 0.0625f, 0.1f, 1.0f };
  const float black = blacks[g_rand_int_range (rand, 0, G_N_ELEMENTS (blacks))];

  check_frame (rand, w, h, black, random_bars (rand, w, h), g_rand_double (rand),
               g_rand_boolean (rand), g_rand_boolean (rand));
}

/* Scattered pixels not dark (a share `light_share`) and no bars made: against the twin only. */
static void
check_noise (GRand *rand, int w, int h, float black, double light_share)
{
  const size_t n = (size_t) w * h;
  g_autofree float *grey = g_new (float, n), *matte = g_new (float, n);
  char name[96];

  for (size_t i = 0; i < n; i++) {
    grey[i] = g_rand_double (rand) < light_share ? light (rand, black) : dark (rand, black);
    matte[i] = (float) g_rand_double (rand);
  }
  snprintf (name, sizeof name, "%dx%d black %g noise %g", w, h, black, light_share);
  compare (name, grey, matte, w, h, &(HfamBarParams) { black }, NULL);
}

/* (G_GNUC_UNUSED: the emulator leaves it out) */
static G_GNUC_UNUSED void
time_op (GRand *rand, int w, int h, HfamBars b, const char *what)
{
  const size_t n = (size_t) w * h, bytes = sizeof (float) * n;
  const HfamBarParams p = { 0.0625f };
  g_autofree float *grey = g_new (float, n), *matte = g_new (float, n);
  double ms[50];
  float *d_matte, *d_grey;
  int *d_found;
  cudaEvent_t start, stop;

  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      const gboolean inside = x >= b.left && x < w - b.right && y >= b.top && y < h - b.bottom;
      grey[(size_t) y * w + x] = inside ? light (rand, p.black) : dark (rand, p.black);
      matte[(size_t) y * w + x] = (float) g_rand_double (rand);
    }
  CHECK_CUDA (cudaMalloc ((void **) &d_matte, bytes));
  CHECK_CUDA (cudaMalloc ((void **) &d_grey, bytes));
  CHECK_CUDA (cudaMalloc ((void **) &d_found, 4 * sizeof (int)));
  CHECK_CUDA (cudaMemcpy (d_grey, grey, bytes, cudaMemcpyHostToDevice));
  /* (the op does the same work on a matte it has cleared before) */
  CHECK_CUDA (cudaMemcpy (d_matte, matte, bytes, cudaMemcpyHostToDevice));
  CHECK_CUDA (cudaEventCreate (&start));
  CHECK_CUDA (cudaEventCreate (&stop));
  for (int k = 0; k < 50; k++) {
    float elapsed;
    CHECK_CUDA (cudaEventRecord (start, 0));
    CHECK_CUDA (hfam_cuda_matte_clear_bars (d_matte, d_grey, w, h, &p, d_found, 0));
    CHECK_CUDA (cudaEventRecord (stop, 0));
    CHECK_CUDA (cudaEventSynchronize (stop));
    CHECK_CUDA (cudaEventElapsedTime (&elapsed, start, stop));
    ms[k] = elapsed;
  }
  printf ("time bars %dx%d %s: median %.3f ms\n", w, h, what, median (ms, 50));
  cudaEventDestroy (start);
  cudaEventDestroy (stop);
  cudaFree (d_matte);
  cudaFree (d_grey);
  cudaFree (d_found);
}

/* ---- at the frame's size: hfam_cuda_frame_find_bars, hfam_cuda_matte_image_clear_bars ---- */

static const char *const frame_names[] = { "RGB", "BGR", "RGBA", "BGRA", "NV12", "I420" };

/* A frame in host memory and its copy in device memory; rows tightly packed or pitched (each
 * plane's rows padded to the next multiple of 256 bytes past their end), the padding random. */
typedef struct {
  HfamFrame host, dev;
  size_t bytes[3];
  int planes;
} TestFrame;

static TestFrame
frame_new (GRand *rand, HfamFrameFormat fmt, int w, int h, gboolean pitched)
{
  const int cw = (w + 1) / 2, ch = (h + 1) / 2;
  const int row[3] = { fmt <= HFAM_FRAME_BGR ? 3 * w : fmt <= HFAM_FRAME_BGRA ? 4 * w : w,
                       fmt == HFAM_FRAME_NV12 ? 2 * cw : cw, cw };
  TestFrame f = { .host = { .width = w, .height = h, .format = fmt } };

  f.planes = fmt <= HFAM_FRAME_BGRA ? 1 : fmt == HFAM_FRAME_NV12 ? 2 : 3;
  for (int k = 0; k < f.planes; k++) {
    uint8_t *mem;
    f.host.strides[k] = pitched ? (row[k] + 256) / 256 * 256 : row[k];
    f.bytes[k] = (size_t) f.host.strides[k] * (k ? ch : h);
    mem = g_malloc (f.bytes[k]);
    for (size_t i = 0; i < f.bytes[k]; i++)
      mem[i] = (uint8_t) g_rand_int (rand);
    f.host.planes[k] = mem;
  }
  f.dev = f.host;
  return f;
}

static void
frame_upload (TestFrame *f)
{
  for (int k = 0; k < f->planes; k++) {
    void *d;
    CHECK_CUDA (cudaMalloc (&d, f->bytes[k]));
    CHECK_CUDA (cudaMemcpy (d, f->host.planes[k], f->bytes[k], cudaMemcpyHostToDevice));
    f->dev.planes[k] = d;
  }
}

static void
frame_free (TestFrame *f)
{
  for (int k = 0; k < f->planes; k++) {
    g_free ((void *) f->host.planes[k]);
    if (f->dev.planes[k] != f->host.planes[k])
      cudaFree ((void *) f->dev.planes[k]);
  }
}

static uint8_t *
at (TestFrame *f, int k, int x, int y, int bpp)
{
  return (uint8_t *) f->host.planes[k] + (size_t) y * f->host.strides[k] + (size_t) x * bpp;
}

/* bars.c's dark test's value: the pixel's R'G'B' mean in 0..1 */
static float
mean_of (const TestFrame *f, const HfamYuvToRgb *yuv, int x, int y)
{
  float rgb[3];
  hfam_frame_pixel_rgb (&f->host, yuv, x, y, rgb);
  for (int c = 0; c < 3; c++)
    rgb[c] = rgb[c] < 0.0f ? 0.0f : rgb[c] > 255.0f ? 255.0f : rgb[c];
  return (rgb[0] + rgb[1] + rgb[2]) * (1.0f / 765.0f);
}

/* How close to black a YUV pixel's mean may come (the device's is within 2e-7 of the twin's:
 * bars.cuh); RGB pixels come as close as they can, to the bit. */
#define YUV_MARGIN 1e-5f

typedef enum { BLACK, DARK, LIGHT } Shade;

/* An R'G'B' triple of sum `sum` (0..765) in random shares. */
static void
split_sum (GRand *rand, int sum, uint8_t v[3])
{
  const int r = g_rand_int_range (rand, MAX (0, sum - 510), MIN (255, sum) + 1);
  const int g = g_rand_int_range (rand, MAX (0, sum - r - 255), MIN (255, sum - r) + 1);
  v[0] = (uint8_t) r;
  v[1] = (uint8_t) g;
  v[2] = (uint8_t) (sum - r - g);
}

/* Each pixel in its shade: RGB sums at or under `sum` (the threshold's: black is sum / 765, as
 * the twin rounds it) for BLACK (at most 6) and DARK (often just that), over it for LIGHT
 * (often by one); YUV pixels moved along Y until their mean is clear of black by YUV_MARGIN,
 * chroma near neutral in 2x2 cells with a dark pixel, anywhere else. */
static void
draw (GRand *rand, TestFrame *f, const HfamYuvToRgb *yuv, const Shade *shade, int sum,
      float black)
{
  const int w = f->host.width, h = f->host.height, fmt = f->host.format;

  if (fmt <= HFAM_FRAME_BGRA) {
    const int bpp = fmt <= HFAM_FRAME_BGR ? 3 : 4, bgr = fmt == HFAM_FRAME_BGR
                                                         || fmt == HFAM_FRAME_BGRA;
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        const Shade s = shade[(size_t) y * w + x];
        const int edge = g_rand_int_range (rand, 0, 4) == 0;
        uint8_t v[3], *p = at (f, 0, x, y, bpp);
        split_sum (rand, s == BLACK ? g_rand_int_range (rand, 0, MIN (sum, 6) + 1)
                         : s == DARK ? (edge ? sum : g_rand_int_range (rand, 0, sum + 1))
                         : edge ? sum + 1 : g_rand_int_range (rand, sum + 1, 766), v);
        p[bgr ? 2 : 0] = v[0];
        p[1] = v[1];
        p[bgr ? 0 : 2] = v[2];
      }
    return;
  }
  for (int cy = 0; cy < (h + 1) / 2; cy++)
    for (int cx = 0; cx < (w + 1) / 2; cx++) {
      gboolean neutral = FALSE;
      for (int y = 2 * cy; y < MIN (h, 2 * cy + 2); y++)
        for (int x = 2 * cx; x < MIN (w, 2 * cx + 2); x++)
          neutral |= shade[(size_t) y * w + x] != LIGHT;
      for (int k = 0; k < 2; k++) {
        const uint8_t c = (uint8_t) (neutral ? g_rand_int_range (rand, 126, 131)
                                             : g_rand_int_range (rand, 16, 241));
        if (fmt == HFAM_FRAME_NV12)
          at (f, 1, cx, cy, 2)[k] = c;
        else
          *at (f, 1 + k, cx, cy, 1) = c;
      }
    }
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      const Shade s = shade[(size_t) y * w + x];
      uint8_t *p = at (f, 0, x, y, 1);
      *p = (uint8_t) (s == BLACK ? g_rand_int_range (rand, 0, 17)
                      : s == DARK ? g_rand_int_range (rand, 0, 40)
                      : g_rand_int_range (rand, 60, 256));
      if (s == LIGHT)
        while (!(mean_of (f, yuv, x, y) > black + YUV_MARGIN))
          g_assert_cmpint (++*p, !=, 0);
      else
        while (!(mean_of (f, yuv, x, y) <= black - YUV_MARGIN))
          g_assert_cmpint ((*p)--, !=, 0);
    }
}

/* bars.c's under() */
static int
under (int count, int n, int of)
{
  return (int) ((int64_t) count * n / of);
}

/* One frame's bars by the device, with the frame and without (the mapping only), against
 * the twin's; `made` (may be NULL) the frame's bars as drawn, which the twin must find. */
static void
compare_frame (const char *name, const TestFrame *f, const HfamYuvToRgb *yuv,
               const HfamBars *inference, int iw, int ih, const HfamBarParams *p,
               const HfamBars *made)
{
  const int fw = f->host.width, fh = f->host.height;
  int *d_in, got[2][4];
  HfamBars want[2];
  gboolean ok = TRUE;

  CHECK_CUDA (cudaMalloc ((void **) &d_in, 12 * sizeof (int)));
  CHECK_CUDA (cudaMemcpy (d_in, inference, sizeof (HfamBars), cudaMemcpyHostToDevice));
  CHECK_CUDA (hfam_cuda_frame_find_bars (&f->dev, yuv, d_in, iw, ih, fw, fh, p, d_in + 4, 0));
  CHECK_CUDA (hfam_cuda_frame_find_bars (NULL, NULL, d_in, iw, ih, fw, fh, p, d_in + 8, 0));
  CHECK_CUDA (cudaMemcpy (got, d_in + 4, sizeof got, cudaMemcpyDeviceToHost));
  hfam_frame_find_bars (&f->host, yuv, inference, iw, ih, fw, fh, p, &want[0]);
  hfam_frame_find_bars (NULL, NULL, inference, iw, ih, fw, fh, p, &want[1]);
  for (int k = 0; k < 2; k++)
    ok &= memcmp (got[k], &want[k], sizeof want[k]) == 0;
  const gboolean as_made = !made || memcmp (made, &want[0], sizeof want[0]) == 0;
  printf ("%s frame bars %-50s in %d %d %d %d at %dx%d: cpu %d %d %d %d, gpu %d %d %d %d; "
          "mapped cpu %d %d %d %d, gpu %d %d %d %d%s\n",
          ok && as_made ? "ok  " : "FAIL", name, inference->top, inference->bottom,
          inference->left, inference->right, iw, ih, want[0].top, want[0].bottom, want[0].left,
          want[0].right, got[0][0], got[0][1], got[0][2], got[0][3], want[1].top,
          want[1].bottom, want[1].left, want[1].right, got[1][0], got[1][1], got[1][2],
          got[1][3], as_made ? "" : "; the twin missed the bars made");
  n_failed += !(ok && as_made);
  cudaFree (d_in);
}

/* A frame of the format with bars B drawn black on random edges, then 0..3 dark lines inside
 * each (the frame's bars F = B + those), a picture inside F clear of black (LIGHT, and DARK
 * at a random share) with a LIGHT pixel on each of its edge lines; the inference bars at a
 * random size whose rows (columns) wholly under them reach at most F, some edges 0, and now
 * and then one that reaches past F (then only against the twin); now and then a LIGHT speck
 * in the rows mapped, which neither reads. */
static void
check_frame_bars (GRand *rand, HfamFrameFormat fmt, int w, int h, gboolean pitched)
{
  static const int sums[] = { 0, 15, 47, 48, 76 };
  static const float yuv_blacks[] = { 0.02f, 0.0625f, 0.1f };
  const gboolean is_yuv = fmt >= HFAM_FRAME_NV12;
  const int sum = sums[g_rand_int_range (rand, 0, G_N_ELEMENTS (sums))];
  const HfamBarParams p = { is_yuv ? yuv_blacks[g_rand_int_range (rand, 0, 3)]
                                   : (float) sum * (1.0f / 765.0f) };
  const gboolean big = g_rand_boolean (rand);
  const int iw = big ? 512 : g_rand_int_range (rand, 8, 2 * w + 9);
  const int ih = big ? 288 : g_rand_int_range (rand, 8, 2 * h + 9);
  const int extent[4] = { h, h, w, w }, of[4] = { ih, ih, iw, iw };
  HfamBars b = random_bars (rand, w, h), in;
  int *B = &b.top, F[4], *c = &in.top;
  gboolean consistent = TRUE;
  g_autofree Shade *shade = g_new (Shade, (size_t) w * h);
  HfamYuvToRgb yuv;
  TestFrame f = frame_new (rand, fmt, w, h, pitched);
  char name[96];

  hfam_yuv_to_rgb_init (&yuv, g_rand_boolean (rand) ? HFAM_MATRIX_BT709 : HFAM_MATRIX_BT601,
                        g_rand_boolean (rand) ? HFAM_RANGE_LIMITED : HFAM_RANGE_FULL);
  for (int k = 0; k < 4; k++)
    F[k] = B[k] + (g_rand_boolean (rand) ? g_rand_int_range (rand, 1, 4) : 0);
  F[0] = MIN (F[0], h);
  F[1] = MIN (F[1], h - F[0]);
  F[2] = MIN (F[2], w);
  F[3] = MIN (F[3], w - F[2]);
  const int x0 = F[2], x1 = w - F[3], y0 = F[0], y1 = h - F[1];
  /* the most of the inference size's rows (columns) whose frame rows under them stay in F */
  for (int k = 0; k < 4; k++) {
    const int left = of[k] - (k % 2 ? c[k - 1] : 0);
    const int most = MIN (left, (int) (((int64_t) (F[k] + 1) * of[k] - 1) / extent[k]));
    c[k] = g_rand_int_range (rand, 0, 4) == 0 || most < 1 ? 0
                                                          : g_rand_int_range (rand, 1, most + 1);
    if (g_rand_int_range (rand, 0, 8) == 0 && most < left) {
      c[k] = g_rand_int_range (rand, most + 1, MIN (left, most + 3) + 1);
      consistent &= under (c[k], extent[k], of[k]) <= F[k];
    }
  }
  const double dark_share = g_rand_double_range (rand, 0.0, 0.5);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      shade[(size_t) y * w + x] = x < B[2] || x >= w - B[3] || y < B[0] || y >= h - B[1] ? BLACK
                                  : x < x0 || x >= x1 || y < y0 || y >= y1 ? DARK
                                  : g_rand_double (rand) < dark_share ? DARK : LIGHT;
  const gboolean picture = x0 < x1 && y0 < y1;
  if (picture) {
    shade[(size_t) y0 * w + g_rand_int_range (rand, x0, x1)] = LIGHT;
    shade[(size_t) (y1 - 1) * w + g_rand_int_range (rand, x0, x1)] = LIGHT;
    shade[(size_t) g_rand_int_range (rand, y0, y1) * w + x0] = LIGHT;
    shade[(size_t) g_rand_int_range (rand, y0, y1) * w + x1 - 1] = LIGHT;
  }
  /* a LIGHT speck in a row that the inference's top (bottom) bar maps, in the columns where
   * the left (right) bar widens if any: the rows mapped are never read */
  const int mapped[4] = { under (c[0], h, ih), under (c[1], h, ih), under (c[2], w, iw),
                          under (c[3], w, iw) };
  for (int k = 0; k < 2 && consistent; k++)
    if (mapped[k] > 0 && g_rand_boolean (rand)) {
      const int y = k ? h - 1 - g_rand_int_range (rand, 0, mapped[1])
                      : g_rand_int_range (rand, 0, mapped[0]);
      const int x = c[2] && mapped[2] < x0 ? g_rand_int_range (rand, mapped[2], x0)
                    : c[3] && mapped[3] < F[3] ? g_rand_int_range (rand, x1, w - mapped[3])
                    : g_rand_int_range (rand, 0, w);
      shade[(size_t) y * w + x] = LIGHT;
    }
  draw (rand, &f, &yuv, shade, sum, p.black);
  frame_upload (&f);
  const HfamBars made = { in.top ? F[0] : 0, in.bottom ? F[1] : 0, in.left ? F[2] : 0,
                          in.right ? F[3] : 0 };
  snprintf (name, sizeof name, "%s %dx%d%s black %.4g F %d %d %d %d", frame_names[fmt], w, h,
            pitched ? " pitched" : "", p.black, F[0], F[1], F[2], F[3]);
  compare_frame (name, &f, &yuv, &in, iw, ih, &p, picture && consistent ? &made : NULL);
  frame_free (&f);
}

/* An output image of each format, tight and pitched, random bytes (padding too), cleared
 * over random bars (and over bars the twin refuses: nothing) by the device and the twin;
 * every byte must agree. */
static void
check_clear (GRand *rand, HfamMatteFormat fmt, int w, int h, gboolean pitched)
{
  static const char *const names[] = { "GRAY8", "GRAY16", "RGBA", "BGRA", "RGBA premultiplied",
                                       "BGRA premultiplied" };
  const int bpp = hfam_matte_bytes_per_pixel (fmt);
  const int stride = pitched ? (g_rand_boolean (rand) ? (w * bpp + 256) / 256 * 256
                                                      : w * bpp + 5)
                             : w * bpp;
  const size_t bytes = (size_t) stride * h;
  g_autofree uint8_t *before = g_malloc (bytes), *want = g_malloc (bytes),
                     *got = g_malloc (bytes);
  HfamBars b = random_bars (rand, w, h);
  HfamMatteImage host = { want, stride, w, h, fmt }, dev = host;
  int *d_bars, expect;
  size_t differ = 0;
  char name[96];

  switch (g_rand_int_range (rand, 0, 8)) {
  case 0:  /* the whole image */
    b = (HfamBars) { g_rand_int_range (rand, 0, h + 1), 0, 0, 0 };
    b.bottom = h - b.top;
    break;
  case 1:  /* refused: nothing cleared */
    b.top = -1;
    break;
  case 2:
    b.left = w - b.right + 1;
    break;
  default:
    break;
  }
  for (size_t i = 0; i < bytes; i++)
    before[i] = (uint8_t) g_rand_int_range (rand, 1, 256);
  memcpy (want, before, bytes);
  CHECK_CUDA (cudaMalloc ((void **) &dev.data, bytes));
  CHECK_CUDA (cudaMalloc ((void **) &d_bars, sizeof b));
  CHECK_CUDA (cudaMemcpy (dev.data, before, bytes, cudaMemcpyHostToDevice));
  CHECK_CUDA (cudaMemcpy (d_bars, &b, sizeof b, cudaMemcpyHostToDevice));
  CHECK_CUDA (hfam_cuda_matte_image_clear_bars (&dev, d_bars, 0));
  CHECK_CUDA (cudaMemcpy (got, dev.data, bytes, cudaMemcpyDeviceToHost));
  expect = hfam_matte_image_clear_bars (&host, &b);
  for (size_t i = 0; i < bytes; i++)
    differ += got[i] != want[i];
  /* (the twin is checked against a plain oracle in tests/kernels/test_bars.c) */
  for (int y = 0; y < h; y++)
    differ += memcmp (got + (size_t) y * stride + w * bpp, before + (size_t) y * stride + w * bpp,
                      stride - w * bpp) != 0;
  snprintf (name, sizeof name, "%s %dx%d stride %d bars %d %d %d %d%s", names[fmt], w, h,
            stride, b.top, b.bottom, b.left, b.right, expect ? " (refused)" : "");
  printf ("%s clear %-56s %zu of %zu bytes differ\n", differ ? "FAIL" : "ok  ", name, differ,
          bytes);
  n_failed += differ != 0;
  cudaFree (dev.data);
  cudaFree (d_bars);
}

/* A float plane of random values cleared over random bars (the whole plane, one time in
 * eight) by the device and the twin: every value must agree. */
static void
check_plane (GRand *rand, int w, int h)
{
  const size_t n = (size_t) w * h;
  g_autofree float *want = g_new (float, n), *got = g_new (float, n);
  HfamBars b = random_bars (rand, w, h);
  float *d_plane;
  int *d_bars;
  char name[96];

  if (g_rand_int_range (rand, 0, 8) == 0) {
    b = (HfamBars) { g_rand_int_range (rand, 0, h + 1), 0, 0, 0 };
    b.bottom = h - b.top;
  }
  for (size_t i = 0; i < n; i++)
    want[i] = (float) g_rand_double_range (rand, 0.001, 1.0);
  CHECK_CUDA (cudaMalloc ((void **) &d_plane, sizeof (float) * n));
  CHECK_CUDA (cudaMalloc ((void **) &d_bars, sizeof b));
  CHECK_CUDA (cudaMemcpy (d_plane, want, sizeof (float) * n, cudaMemcpyHostToDevice));
  CHECK_CUDA (cudaMemcpy (d_bars, &b, sizeof b, cudaMemcpyHostToDevice));
  CHECK_CUDA (hfam_cuda_plane_zero_bars (d_plane, w, h, d_bars, 0));
  CHECK_CUDA (cudaMemcpy (got, d_plane, sizeof (float) * n, cudaMemcpyDeviceToHost));
  hfam_plane_zero_bars (want, w, h, &b);
  snprintf (name, sizeof name, "%dx%d bars %d %d %d %d", w, h, b.top, b.bottom, b.left, b.right);
  const gboolean same = memcmp (got, want, sizeof (float) * n) == 0;
  printf ("%s plane %-56s %s\n", same ? "ok  " : "FAIL", name, same ? "equal" : "differs");
  n_failed += !same;
  cudaFree (d_plane);
  cudaFree (d_bars);
}

/* What the two launchers refuse (nothing queued), and inference bars that hfam_find_bars
 * cannot give (negative): the mapping alone, the frame not read. */
static void
check_refused (GRand *rand)
{
  const HfamBarParams p = { 0.1f }, nan_black = { NAN };
  TestFrame f = frame_new (rand, HFAM_FRAME_NV12, 16, 8, FALSE);
  HfamFrame bad;
  HfamYuvToRgb yuv;
  const HfamBars in = { -3, 1, 2, -1 };
  HfamBars want;
  Shade shade[16 * 8];
  int *d, got[4];

  hfam_yuv_to_rgb_init (&yuv, HFAM_MATRIX_BT709, HFAM_RANGE_LIMITED);
  for (int i = 0; i < 16 * 8; i++)
    shade[i] = i < 3 * 16 ? BLACK : LIGHT;
  draw (rand, &f, &yuv, shade, 0, p.black);
  frame_upload (&f);
  CHECK_CUDA (cudaMalloc ((void **) &d, 8 * sizeof (int)));
  g_assert (hfam_cuda_frame_find_bars (NULL, NULL, NULL, 8, 8, 16, 8, &p, d, 0)
            == cudaErrorInvalidValue);
  g_assert (hfam_cuda_frame_find_bars (NULL, NULL, d, 8, 8, 16, 8, &p, NULL, 0)
            == cudaErrorInvalidValue);
  g_assert (hfam_cuda_frame_find_bars (NULL, NULL, d, 0, 8, 16, 8, &p, d, 0)
            == cudaErrorInvalidValue);
  g_assert (hfam_cuda_frame_find_bars (NULL, NULL, d, 8, 8, 16, 0, &p, d, 0)
            == cudaErrorInvalidValue);
  g_assert (hfam_cuda_frame_find_bars (NULL, NULL, d, 8, 8, 16, 8, NULL, d, 0)
            == cudaErrorInvalidValue);
  g_assert (hfam_cuda_frame_find_bars (NULL, NULL, d, 8, 8, 16, 8, &nan_black, d, 0)
            == cudaErrorInvalidValue);
  /* a YUV frame without its matrix, of another size, or invalid */
  g_assert (hfam_cuda_frame_find_bars (&f.dev, NULL, d, 8, 8, 16, 8, &p, d, 0)
            == cudaErrorInvalidValue);
  g_assert (hfam_cuda_frame_find_bars (&f.dev, &yuv, d, 8, 8, 16, 9, &p, d, 0)
            == cudaErrorInvalidValue);
  bad = f.dev;
  bad.strides[1] = 7;
  g_assert (hfam_cuda_frame_find_bars (&bad, &yuv, d, 8, 8, 16, 8, &p, d, 0)
            == cudaErrorInvalidValue);
  g_assert (hfam_cuda_matte_image_clear_bars (NULL, d, 0) == cudaErrorInvalidValue);
  g_assert (hfam_cuda_matte_image_clear_bars (&(HfamMatteImage) { NULL, 16, 4, 4,
                                                                  HFAM_MATTE_GRAY8 },
                                              d, 0)
            == cudaErrorInvalidValue);
  g_assert (hfam_cuda_matte_image_clear_bars (&(HfamMatteImage) { (uint8_t *) d, 16, 4, 4,
                                                                  HFAM_MATTE_GRAY8 },
                                              NULL, 0)
            == cudaErrorInvalidValue);
  g_assert (hfam_cuda_matte_image_clear_bars (&(HfamMatteImage) { (uint8_t *) d, 15, 4, 1,
                                                                  HFAM_MATTE_RGBA },
                                              d, 0)
            == cudaErrorInvalidValue);
  g_assert (hfam_cuda_matte_image_clear_bars (&(HfamMatteImage) { (uint8_t *) d, 16, 0, 1,
                                                                  HFAM_MATTE_GRAY8 },
                                              d, 0)
            == cudaErrorInvalidValue);
  g_assert (hfam_cuda_matte_image_clear_bars (&(HfamMatteImage) { (uint8_t *) d, 16, 4, 1,
                                                                  HFAM_MATTE_N_FORMATS },
                                              d, 0)
            == cudaErrorInvalidValue);
  CHECK_CUDA (cudaDeviceSynchronize ());
  CHECK_CUDA (cudaMemcpy (d, &in, sizeof in, cudaMemcpyHostToDevice));
  CHECK_CUDA (hfam_cuda_frame_find_bars (&f.dev, &yuv, d, 8, 8, 16, 8, &p, d + 4, 0));
  CHECK_CUDA (cudaMemcpy (got, d + 4, sizeof got, cudaMemcpyDeviceToHost));
  hfam_frame_find_bars (NULL, NULL, &in, 8, 8, 16, 8, &p, &want);
  g_assert_cmpmem (got, sizeof got, &want, sizeof want);
  /* in place: bars the same ints as inference */
  const HfamBars letterbox = { 2, 2, 0, 0 };
  CHECK_CUDA (cudaMemcpy (d, &letterbox, sizeof letterbox, cudaMemcpyHostToDevice));
  CHECK_CUDA (hfam_cuda_frame_find_bars (&f.dev, &yuv, d, 8, 8, 16, 8, &p, d, 0));
  CHECK_CUDA (cudaMemcpy (got, d, sizeof got, cudaMemcpyDeviceToHost));
  hfam_frame_find_bars (&f.host, &yuv, &letterbox, 8, 8, 16, 8, &p, &want);
  g_assert_cmpint (want.top, ==, 3);
  g_assert_cmpmem (got, sizeof got, &want, sizeof want);
  /* in place, all bar, nothing read: a thread that read the bars written would widen them */
  const HfamBars whole = { 16, 0, 0, 0 };
  CHECK_CUDA (cudaMemcpy (d, &whole, sizeof whole, cudaMemcpyHostToDevice));
  CHECK_CUDA (hfam_cuda_frame_find_bars (&f.dev, &yuv, d, 16, 16, 16, 8, &p, d, 0));
  CHECK_CUDA (cudaMemcpy (got, d, sizeof got, cudaMemcpyDeviceToHost));
  hfam_frame_find_bars (&f.host, &yuv, &whole, 16, 16, 16, 8, &p, &want);
  g_assert_cmpint (want.top, ==, 8);
  g_assert_cmpmem (got, sizeof got, &want, sizeof want);
  printf ("ok   frame bars refused arguments, negative inference bars, in place\n");
  cudaFree (d);
  frame_free (&f);
}

/* Median times at the frame's size: the bars found on a letterboxed frame whose bars are two
 * rows wider than the mapped ones, and an output image cleared over them. */
/* (G_GNUC_UNUSED: the emulator leaves it out) */
static G_GNUC_UNUSED void
time_frame (GRand *rand, HfamFrameFormat fmt, HfamMatteFormat out_fmt)
{
  const int w = 1920, h = 1080, bpp = hfam_matte_bytes_per_pixel (out_fmt);
  const HfamBarParams p = { 0.0625f };
  const HfamBars in = { 38, 38, 0, 0 };  /* 142 rows at 1080 */
  TestFrame f = frame_new (rand, fmt, w, h, FALSE);
  g_autofree Shade *shade = g_new (Shade, (size_t) w * h);
  HfamMatteImage out = { NULL, w * bpp, w, h, out_fmt };
  HfamYuvToRgb yuv;
  double ms[2][50];
  int *d;
  cudaEvent_t start, stop;

  hfam_yuv_to_rgb_init (&yuv, HFAM_MATRIX_BT709, HFAM_RANGE_LIMITED);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      shade[(size_t) y * w + x] = y < 140 || y >= h - 140 ? BLACK
                                  : y < 144 || y >= h - 144 ? DARK : LIGHT;
  draw (rand, &f, &yuv, shade, 47, p.black);
  frame_upload (&f);
  CHECK_CUDA (cudaMalloc ((void **) &d, 8 * sizeof (int)));
  CHECK_CUDA (cudaMalloc ((void **) &out.data, (size_t) out.stride * h));
  CHECK_CUDA (cudaMemcpy (d, &in, sizeof in, cudaMemcpyHostToDevice));
  CHECK_CUDA (cudaEventCreate (&start));
  CHECK_CUDA (cudaEventCreate (&stop));
  for (int op = 0; op < 2; op++)
    for (int k = 0; k < 50; k++) {
      float elapsed;
      CHECK_CUDA (cudaEventRecord (start, 0));
      if (op == 0)
        CHECK_CUDA (hfam_cuda_frame_find_bars (&f.dev, &yuv, d, 512, 288, w, h, &p, d + 4, 0));
      else
        CHECK_CUDA (hfam_cuda_matte_image_clear_bars (&out, d + 4, 0));
      CHECK_CUDA (cudaEventRecord (stop, 0));
      CHECK_CUDA (cudaEventSynchronize (stop));
      CHECK_CUDA (cudaEventElapsedTime (&elapsed, start, stop));
      ms[op][k] = elapsed;
    }
  printf ("time frame bars %s %dx%d letterbox 144 (mapped 142): median %.3f ms; "
          "clear %s over them: median %.3f ms\n", frame_names[fmt], w, h, median (ms[0], 50),
          bpp == 1 ? "GRAY8" : "RGBA premultiplied", median (ms[1], 50));
  cudaEventDestroy (start);
  cudaEventDestroy (stop);
  cudaFree (d);
  cudaFree (out.data);
  frame_free (&f);
}

int
main (void)
{
  const char *seed_env = g_getenv ("HFAM_TEST_SEED");
  const guint32 seed = seed_env ? (guint32) g_ascii_strtoull (seed_env, NULL, 10)
                                : (guint32) g_get_real_time ();
  static const int shapes[][2] = { { 1, 1 }, { 1, 7 }, { 9, 1 }, { 2, 2 }, { 17, 13 },
                                   { 37, 23 }, { 255, 3 }, { 3, 300 }, { 257, 129 },
                                   { 512, 288 }, { 1920, 1080 } };
  static const int frame_sizes[][2] = { { 1, 1 }, { 3, 2 }, { 17, 13 }, { 333, 187 },
                                        { 1920, 1080 } };
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  int devices = 0;
  int *d_found;

  if (cudaGetDeviceCount (&devices) != cudaSuccess || devices == 0) {
    printf ("SKIP: no CUDA device\n");
    return 77;
  }
  printf ("seed %u (HFAM_TEST_SEED repeats it)\n", seed);
  for (size_t s = 0; s < G_N_ELEMENTS (shapes); s++) {
    const int w = shapes[s][0], h = shapes[s][1];
    check_frame (rand, w, h, 0.0625f, (HfamBars) { 0, 0, 0, 0 }, 0.0, FALSE, FALSE);
    check_frame (rand, w, h, 0.0625f, (HfamBars) { h, 0, 0, 0 }, 0.0, FALSE, FALSE);
    check_frame (rand, w, h, 0.0625f, (HfamBars) { h, 0, 0, 0 }, 0.0, FALSE, TRUE);
    for (int k = 0; k < 4; k++)
      check_random (rand, w, h);
  }
  /* letterbox, pillarbox, both; the picture dark but for its edges' pixels */
  check_frame (rand, 512, 288, 0.0625f, (HfamBars) { 36, 36, 0, 0 }, 0.5, FALSE, FALSE);
  check_frame (rand, 512, 288, 0.0625f, (HfamBars) { 0, 0, 64, 64 }, 0.5, TRUE, FALSE);
  check_frame (rand, 512, 288, 0.0625f, (HfamBars) { 36, 36, 64, 64 }, 1.0, TRUE, TRUE);
  check_frame (rand, 1920, 1080, 0.0625f, (HfamBars) { 140, 140, 0, 0 }, 0.3, TRUE, TRUE);
  check_frame (rand, 1920, 1080, 0.0625f, (HfamBars) { 0, 0, 240, 240 }, 0.3, FALSE, FALSE);
  check_frame (rand, 1920, 1080, 0.02f, (HfamBars) { 0, 1, 1, 0 }, 1.0, TRUE, FALSE);
  check_noise (rand, 37, 23, 0.1f, 0.02);
  check_noise (rand, 512, 288, 0.0625f, 0.0005);

  /* a bad argument queues nothing */
  CHECK_CUDA (cudaMalloc ((void **) &d_found, 4 * sizeof (int)));
  g_assert (hfam_cuda_matte_clear_bars ((float *) 16, (float *) 16, 0, 4,
                                        &(HfamBarParams) { 0.1f }, d_found, 0)
            == cudaErrorInvalidValue);
  g_assert (hfam_cuda_matte_clear_bars ((float *) 16, NULL, 4, 4, &(HfamBarParams) { 0.1f },
                                        d_found, 0)
            == cudaErrorInvalidValue);
  g_assert (hfam_cuda_matte_clear_bars ((float *) 16, (float *) 16, 4, 4,
                                        &(HfamBarParams) { 0.1f }, NULL, 0)
            == cudaErrorInvalidValue);
  g_assert (hfam_cuda_matte_clear_bars ((float *) 16, (float *) 16, 4, 4,
                                        &(HfamBarParams) { NAN }, d_found, 0)
            == cudaErrorInvalidValue);
  CHECK_CUDA (cudaDeviceSynchronize ());
  cudaFree (d_found);

  /* at the frame's size */
  for (int fmt = 0; fmt < HFAM_FRAME_N_FORMATS; fmt++)
    for (size_t s = 0; s < G_N_ELEMENTS (frame_sizes); s++)
      for (int pitched = 0; pitched < 2; pitched++)
        for (int k = 0; k < (frame_sizes[s][0] > 1000 ? 1 : 4); k++)
          check_frame_bars (rand, fmt, frame_sizes[s][0], frame_sizes[s][1], pitched);
  for (int fmt = 0; fmt < HFAM_MATTE_N_FORMATS; fmt++)
    for (size_t s = 0; s < G_N_ELEMENTS (frame_sizes); s++)
      for (int pitched = 0; pitched < 2; pitched++)
        for (int k = 0; k < 2; k++)
          check_clear (rand, fmt, frame_sizes[s][0], frame_sizes[s][1], pitched);
  for (size_t s = 0; s < G_N_ELEMENTS (frame_sizes); s++)
    for (int k = 0; k < 2; k++)
      check_plane (rand, frame_sizes[s][0], frame_sizes[s][1]);
  g_assert (hfam_cuda_plane_zero_bars (NULL, 4, 4, (int *) 16, 0) == cudaErrorInvalidValue);
  g_assert (hfam_cuda_plane_zero_bars ((float *) 16, 0, 4, (int *) 16, 0)
            == cudaErrorInvalidValue);
  check_refused (rand);

#ifndef HFAM_CUDA_EMULATOR /* (tests/gpu/emulator: its times say nothing of a GPU's) */
  time_op (rand, 512, 288, (HfamBars) { 0, 0, 0, 0 }, "no bars");
  time_op (rand, 512, 288, (HfamBars) { 36, 36, 0, 0 }, "letterbox 36");
  time_op (rand, 1920, 1080, (HfamBars) { 0, 0, 0, 0 }, "no bars");
  time_op (rand, 1920, 1080, (HfamBars) { 140, 140, 0, 0 }, "letterbox 140");
  time_frame (rand, HFAM_FRAME_RGBA, HFAM_MATTE_RGBA_PREMULTIPLIED);
  time_frame (rand, HFAM_FRAME_NV12, HFAM_MATTE_GRAY8);
#endif
  printf ("%s\n", n_failed ? "FAILED" : "all passed");
  return n_failed ? 1 : 0;
}
