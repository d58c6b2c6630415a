/* The kept matte resized to the frame on the GPU (hfam_cuda_matte_resize, kernels/matte.cu: the
 * device frames' matte when refine is none) against its CPU twin, hfam_resize_plane and then
 * hfam_key_levels_apply: enlarged, reduced and kept, into rows wider than the frame (whose
 * padding it must leave alone), with and without key levels, by the largest absolute
 * difference (1e-5). Exits 77 (skipped) when no CUDA device opens. */
#include "matte.cuh"
#include "resize.h"
#include "check-cuda.h"

#include <glib.h>
#include <math.h>
#include <stdio.h>

static int n_failed;

/* Values outside 0..1 too: the op clamps them, as the twin does. */
static void
check_resize (GRand *rand, int aw, int ah, int w, int h, int stride, const HfamKeyLevels *levels)
{
  const size_t out_n = (size_t) stride * h;
  g_autofree float *alpha = g_new (float, (size_t) aw * ah), *cpu = g_new (float, (size_t) w * h);
  g_autofree float *gpu = g_new (float, out_n);
  HfamCudaFilter fx, fy;
  float *d_alpha, *d_out, worst = 0.0f;
  gboolean padding_kept = TRUE;
  char name[96];

  for (size_t i = 0; i < (size_t) aw * ah; i++)
    alpha[i] = (float) g_rand_double_range (rand, -0.1, 1.1);
  CHECK_CUDA (cudaMalloc ((void **) &d_alpha, sizeof (float) * aw * ah));
  CHECK_CUDA (cudaMalloc ((void **) &d_out, sizeof (float) * out_n));
  CHECK_CUDA (cudaMemcpy (d_alpha, alpha, sizeof (float) * aw * ah, cudaMemcpyHostToDevice));
  /* (the padding: a value the op never writes) */
  CHECK_CUDA (cudaMemset (d_out, 0xff, sizeof (float) * out_n));
  CHECK_CUDA (hfam_cuda_filter_new (aw, w, &fx));
  CHECK_CUDA (hfam_cuda_filter_new (ah, h, &fy));
  CHECK_CUDA (hfam_cuda_matte_resize (d_alpha, aw, ah, &fx, &fy, levels, d_out, stride, 0));
  CHECK_CUDA (cudaMemcpy (gpu, d_out, sizeof (float) * out_n, cudaMemcpyDeviceToHost));

  g_assert_cmpint (hfam_resize_plane (alpha, aw, ah, aw, cpu, w, h, w), ==, 0);
  hfam_key_levels_apply (cpu, (size_t) w * h, levels);
  for (int y = 0; y < h; y++) {
    for (int x = 0; x < w; x++)
      worst = fmaxf (worst, fabsf (gpu[(size_t) y * stride + x] - cpu[(size_t) y * w + x]));
    for (int x = w; x < stride; x++)
      padding_kept = padding_kept && isnan (gpu[(size_t) y * stride + x]);
  }
  snprintf (name, sizeof name, "matte resize %dx%d -> %dx%d stride %d%s", aw, ah, w, h, stride,
            levels ? " key levels" : "");
  printf ("%s %-52s worst difference %.3g (bound 1e-05)%s\n",
          worst <= 1e-5f && padding_kept ? "ok  " : "FAIL", name, worst,
          padding_kept ? "" : "; row padding written");
  n_failed += !(worst <= 1e-5f && padding_kept);

  /* a filter of other sizes, or levels out of order, queue nothing */
  g_assert (hfam_cuda_matte_resize (d_alpha, aw + 1, ah, &fx, &fy, NULL, d_out, stride, 0)
            == cudaErrorInvalidValue);
  g_assert (hfam_cuda_matte_resize (d_alpha, aw, ah, &fx, &fy, NULL, d_out, w - 1, 0)
            == cudaErrorInvalidValue);
  g_assert (hfam_cuda_matte_resize (d_alpha, aw, ah, &fx, &fy, &(HfamKeyLevels) { 0.6f, 0.4f },
                                    d_out, stride, 0)
            == cudaErrorInvalidValue);
  hfam_cuda_filter_free (&fx);
  hfam_cuda_filter_free (&fy);
  cudaFree (d_alpha);
  cudaFree (d_out);
}

int
main (void)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (7);
  const HfamKeyLevels levels = { 0.2f, 0.7f };
  int devices = 0;

  if (cudaGetDeviceCount (&devices) != cudaSuccess || devices == 0) {
    printf ("SKIP: no CUDA device\n");
    return 77;
  }
  check_resize (rand, 512, 288, 1920, 1080, 1920, NULL);
  check_resize (rand, 512, 288, 1920, 1080, 1984, &levels);
  check_resize (rand, 416, 234, 1918, 1080, 1920, NULL);
  check_resize (rand, 512, 288, 333, 187, 340, &levels);
  check_resize (rand, 64, 48, 64, 48, 64, &levels);
  check_resize (rand, 1, 1, 7, 5, 9, NULL);
  check_resize (rand, 37, 23, 1, 1, 1, NULL);
  printf ("%s\n", n_failed ? "FAILED" : "all passed");
  return n_failed ? 1 : 0;
}
