/* The motion-aware temporal smoothing's CUDA ops (kernels/temporal.cu, compensate.cu) against
 * their CPU twins (kernels/temporal.c, compensate.c): the grey plane of an NHWC input (fp32 and
 * fp16, channels padded to 4) against hfam_motion_grey on the same values in planar order (the
 * fp16 values as the device reads them), the blend at several sizes and radii against
 * hfam_matte_blend_motion (with and without the compensation's moved pixels; the matte and
 * the still weights), by the largest absolute difference (1e-5), and the motion compensation
 * of a moved texture (the planes and how far each pixel moved) against hfam_motion_compensate
 * (1e-4: the same vectors, the warp's sums fused differently), at libhfam's flow parameters
 * and at one level, blocks of 5 and 12, no spread, and without the moved plane. Exits 77
 * (skipped) when no CUDA device opens. */
#include "compensate.cuh"
#include "nhwc.cuh"
#include "temporal.cuh"
#include "check-cuda.h"

#include <glib.h>
#include <math.h>
#include <stdio.h>

static int n_failed;

static void
report (const char *name, double worst, double bound)
{
  const gboolean ok = worst <= bound;
  printf ("%s %-48s worst difference %.3g (bound %.3g)\n", ok ? "ok  " : "FAIL", name, worst,
          bound);
  n_failed += !ok;
}

static void *
upload (const void *host, size_t bytes)
{
  void *dev;
  CHECK_CUDA (cudaMalloc (&dev, bytes));
  CHECK_CUDA (cudaMemcpy (dev, host, bytes, cudaMemcpyHostToDevice));
  return dev;
}

static void
check_grey (GRand *rand, int w, int h, HfamCudaDtype dtype)
{
  const size_t n = (size_t) w * h;
  const HfamPreprocessParams p = { .order = { 0, 1, 2 }, .scale = 1.0f,
                                   .mean = { 0.485f, 0.456f, 0.406f },
                                   .std = { 0.229f, 0.224f, 0.225f } };
  g_autofree float *planar = g_new (float, 3 * n), *want = g_new (float, n);
  g_autofree float *got = g_new (float, n), *nhwc = g_new0 (float, 4 * n);
  char name[64];
  double worst = 0;
  void *dev_in;

  for (size_t i = 0; i < 4 * n; i++)
    nhwc[i] = i % 4 < 3 ? (float) g_rand_double_range (rand, -2.0, 2.5) : 0.0f;
  dev_in = upload (nhwc, sizeof (float) * 4 * n);
  if (dtype == HFAM_CUDA_F16) {
    /* the input in fp16, and the CPU given the values the device reads */
    float *f32 = dev_in;
    CHECK_CUDA (cudaMalloc (&dev_in, 2 * 4 * n));
    CHECK_CUDA (hfam_cuda_convert (f32, HFAM_CUDA_F32, dev_in, HFAM_CUDA_F16, 4 * n, 0));
    CHECK_CUDA (hfam_cuda_convert (dev_in, HFAM_CUDA_F16, f32, HFAM_CUDA_F32, 4 * n, 0));
    CHECK_CUDA (cudaMemcpy (nhwc, f32, sizeof (float) * 4 * n, cudaMemcpyDeviceToHost));
    cudaFree (f32);
  }
  for (size_t i = 0; i < n; i++)
    for (int k = 0; k < 3; k++)
      planar[k * n + i] = nhwc[4 * i + k];
  hfam_motion_grey (planar, w, h, &p, want);
  float *dev_grey;
  CHECK_CUDA (cudaMalloc ((void **) &dev_grey, sizeof (float) * n));
  const HfamNhwc in = { dev_in, w, h, 3, 4, dtype };
  CHECK_CUDA (hfam_cuda_motion_grey (&in, &p, dev_grey, 0));
  CHECK_CUDA (cudaMemcpy (got, dev_grey, sizeof (float) * n, cudaMemcpyDeviceToHost));
  for (size_t i = 0; i < n; i++)
    worst = MAX (worst, fabs (got[i] - want[i]));
  snprintf (name, sizeof name, "motion grey %dx%d %s", w, h,
            dtype == HFAM_CUDA_F16 ? "fp16" : "fp32");
  report (name, worst, 1e-5);
  cudaFree (dev_in);
  cudaFree (dev_grey);
}

/* with_moved: the compensation's distances too (0 to 2 pixels), held less */
static void
check_blend (GRand *rand, int w, int h, int radius, gboolean with_moved)
{
  const size_t n = (size_t) w * h, bytes = sizeof (float) * n;
  const HfamMotionParams p = { 0.7f, 0.01f, 0.04f, radius, 0.25f };
  g_autofree float *matte = g_new (float, n), *fresh = g_new (float, n);
  g_autofree float *grey = g_new (float, n), *kept = g_new (float, n), *got = g_new (float, n);
  g_autofree float *moved = g_new (float, n), *still = g_new (float, n);
  g_autofree float *got_still = g_new (float, n);
  char name[64];
  double worst = 0;

  for (size_t i = 0; i < n; i++) {
    matte[i] = (float) g_rand_double (rand);
    fresh[i] = (float) g_rand_double (rand);
    grey[i] = (float) g_rand_double (rand);
    /* still, in between and moving, in vertical bands */
    kept[i] = grey[i] + (float) ((i % w) * 0.06 / w) * (g_rand_boolean (rand) ? 1 : -1);
    moved[i] = (float) g_rand_double_range (rand, 0.0, 2.0);
  }
  float *d_matte = upload (matte, bytes), *d_fresh = upload (fresh, bytes);
  float *d_grey = upload (grey, bytes), *d_kept = upload (kept, bytes);
  float *d_moved = with_moved ? upload (moved, bytes) : NULL, *d_still = upload (still, bytes);
  CHECK_CUDA (hfam_cuda_matte_blend_motion (d_matte, d_fresh, d_grey, d_kept, d_moved, w, h, &p,
                                            d_still, 0));
  CHECK_CUDA (cudaMemcpy (got, d_matte, bytes, cudaMemcpyDeviceToHost));
  CHECK_CUDA (cudaMemcpy (got_still, d_still, bytes, cudaMemcpyDeviceToHost));
  g_assert_cmpint (hfam_matte_blend_motion (matte, fresh, grey, kept,
                                            with_moved ? moved : NULL, w, h, &p, still), ==, 0);
  for (size_t i = 0; i < n; i++)
    worst = MAX (worst, MAX (fabs (got[i] - matte[i]), fabs (got_still[i] - still[i])));
  snprintf (name, sizeof name, "motion blend %dx%d radius %d%s", w, h, radius,
            with_moved ? " moved" : "");
  report (name, worst, 1e-5);
  cudaFree (d_matte);
  cudaFree (d_fresh);
  cudaFree (d_grey);
  cudaFree (d_kept);
  cudaFree (d_moved);
  cudaFree (d_still);
}

/* a smooth texture (a sum of bumps) moved by (dx, dy), and noise */
static void
texture (GRand *rand, float *plane, int w, int h, double dx, double dy, const double *bumps)
{
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      double v = 0.3;
      for (int b = 0; b < 200; b++) {
        const double *k = bumps + 4 * b, u = x - dx - k[0], t = y - dy - k[1];
        v += k[3] * exp (-(u * u + t * t) / k[2]);
      }
      plane[(size_t) y * w + x] = (float) (v + g_rand_double_range (rand, -0.005, 0.005));
    }
}

/* libhfam's flow parameters (hfam.h, HFAM_FLOW_*) */
static const HfamFlowParams flow_defaults = { 8, 3, 4, 2e-5f, 8 };

/* `with_moved`: the plane of how far each pixel moved asked for too */
static void
check_compensate (GRand *rand, int w, int h, double dx, double dy, const HfamFlowParams *flow,
                  gboolean with_moved)
{
  const size_t n = (size_t) w * h, bytes = sizeof (float) * n;
  const HfamFlowParams p = *flow;
  const size_t floats = hfam_compensate_scratch_floats (w, h, &p);
  g_autofree double *bumps = g_new (double, 4 * 200);
  g_autofree float *matte = g_new (float, n), *grey = g_new (float, n);
  g_autofree float *kept = g_new (float, n), *scratch = g_new (float, floats);
  g_autofree float *got = g_new (float, n), *moved = g_new (float, n);
  char name[128];
  double worst = 0;

  for (int b = 0; b < 200; b++) {
    bumps[4 * b] = g_rand_double_range (rand, 0, w);
    bumps[4 * b + 1] = g_rand_double_range (rand, 0, h);
    bumps[4 * b + 2] = g_rand_double_range (rand, 20, 200);
    bumps[4 * b + 3] = g_rand_double_range (rand, -0.2, 0.2);
  }
  texture (rand, kept, w, h, 0, 0, bumps);
  texture (rand, grey, w, h, dx, dy, bumps);
  for (size_t i = 0; i < n; i++)
    matte[i] = (float) g_rand_double (rand);
  float *d_matte = upload (matte, bytes), *d_kept = upload (kept, bytes);
  float *d_grey = upload (grey, bytes), *d_scratch, *d_moved;
  CHECK_CUDA (cudaMalloc ((void **) &d_scratch, sizeof (float) * floats));
  CHECK_CUDA (cudaMalloc ((void **) &d_moved, bytes));
  CHECK_CUDA (hfam_cuda_motion_compensate (d_matte, d_kept, d_grey, w, h, &p,
                                           with_moved ? d_moved : NULL, d_scratch, 0));
  g_assert_cmpint (hfam_motion_compensate (matte, kept, grey, w, h, &p,
                                           with_moved ? moved : NULL, scratch), ==, 0);
  CHECK_CUDA (cudaMemcpy (got, d_matte, bytes, cudaMemcpyDeviceToHost));
  for (size_t i = 0; i < n; i++)
    worst = MAX (worst, fabs (got[i] - matte[i]));
  CHECK_CUDA (cudaMemcpy (got, d_kept, bytes, cudaMemcpyDeviceToHost));
  for (size_t i = 0; i < n; i++)
    worst = MAX (worst, fabs (got[i] - kept[i]));
  CHECK_CUDA (cudaMemcpy (got, d_moved, bytes, cudaMemcpyDeviceToHost));
  for (size_t i = 0; with_moved && i < n; i++)
    worst = MAX (worst, fabs (got[i] - moved[i]));
  snprintf (name, sizeof name, "motion compensate %dx%d shift %g,%g block %d levels %d spread "
            "%d%s", w, h, dx, dy, p.block, p.levels, p.spread, with_moved ? "" : " (no moved)");
  report (name, worst, 1e-4);
  cudaFree (d_matte);
  cudaFree (d_kept);
  cudaFree (d_grey);
  cudaFree (d_scratch);
  cudaFree (d_moved);
}

int
main (void)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (5);
  int devices = 0;

  if (cudaGetDeviceCount (&devices) != cudaSuccess || devices == 0) {
    printf ("SKIP: no CUDA device\n");
    return 77;
  }
  check_grey (rand, 37, 23, HFAM_CUDA_F32);
  check_grey (rand, 512, 288, HFAM_CUDA_F32);
  check_grey (rand, 512, 288, HFAM_CUDA_F16);
  check_blend (rand, 9, 7, 0, FALSE);
  check_blend (rand, 37, 23, 2, FALSE);
  check_blend (rand, 37, 23, 2, TRUE);
  check_blend (rand, 512, 288, 2, FALSE);
  check_blend (rand, 512, 288, 2, TRUE);
  check_blend (rand, 512, 288, 5, FALSE);
  check_compensate (rand, 37, 23, 1, 0, &flow_defaults, TRUE);
  check_compensate (rand, 512, 288, 0, 0, &flow_defaults, TRUE);
  check_compensate (rand, 512, 288, 4.5, -2.25, &flow_defaults, TRUE);
  check_compensate (rand, 300, 170, -11, 6, &flow_defaults, TRUE);
  /* the full-size search alone with the sub-pixel step; blocks other than 8; no spread; no
   * moved plane */
  check_compensate (rand, 300, 170, 2.5, -1, &(HfamFlowParams) { 8, 1, 4, 2e-5f, 8 }, TRUE);
  check_compensate (rand, 300, 170, -6, 3, &(HfamFlowParams) { 12, 2, 3, 2e-5f, 0 }, TRUE);
  check_compensate (rand, 301, 171, 3, 1.5, &(HfamFlowParams) { 5, 3, 4, 0.0f, 3 }, TRUE);
  check_compensate (rand, 512, 288, 4.5, -2.25, &flow_defaults, FALSE);
  /* a bad argument queues nothing */
  g_assert (hfam_cuda_matte_blend_motion (NULL, NULL, NULL, NULL, NULL, 4, 4,
                                          &(HfamMotionParams) { 0.5f, 0.01f, 0.04f, 1, 0.2f },
                                          NULL, 0)
            == cudaErrorInvalidValue);
  printf ("%s\n", n_failed ? "FAILED" : "all passed");
  return n_failed ? 1 : 0;
}
