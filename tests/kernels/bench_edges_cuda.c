/* The edge kernels' cost at 1920x1080 on the GPU (not a test; built with the CUDA backend):
 * the median over rounds of the refinement (colour guide, statistics at 512x288, radius 8),
 * the foreground estimation (radii 90 and 6) and the two in turn, timed with CUDA events on
 * one stream. Exits 77 where no device opens.
 *
 * Usage: bench-edges-cuda [ROUNDS]   (default 51) */
#include "foreground.cuh"
#include "refine.cuh"

#include <glib.h>
#include <stdio.h>
#include <stdlib.h>

#define W 1920
#define H 1080
#define AW 512
#define AH 288

#define CHECK(call)                                                                    \
  do {                                                                                 \
    cudaError_t e_ = (call);                                                           \
    if (e_ != cudaSuccess) {                                                           \
      fprintf (stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString (e_)); \
      return 1;                                                                        \
    }                                                                                  \
  } while (0)

static int
compare (const void *a, const void *b)
{
  const float x = *(const float *) a, y = *(const float *) b;
  return x < y ? -1 : x > y;
}

int
main (int argc, char **argv)
{
  const int rounds = argc > 1 ? atoi (argv[1]) : 51;
  static const char *const names[] = { "refine (colour guide, r 8)", "foreground (r 90, 6)",
                                       "refine + foreground" };
  const HfamRefineParams rp = { 8, 1e-3f, 0, 0, 1 };
  const HfamForegroundParams fp = { 90, 6, 4 };
  const size_t ws = hfam_cuda_foreground_workspace_bytes (W, H, &fp);
  g_autofree uint8_t *pixels = g_new (uint8_t, (size_t) 4 * W * H);
  g_autofree float *alpha = g_new (float, AW * AH);
  g_autofree float *ms = g_new (float, 3 * (size_t) (rounds > 0 ? rounds : 1));
  HfamCudaRefinePlan plan;
  HfamFrame frame = { { NULL }, { 4 * W }, W, H, HFAM_FRAME_RGBA };
  HfamMatteImage out = { NULL, 4 * W, W, H, HFAM_MATTE_RGBA };
  uint8_t *dpixels;
  float *dalpha, *dfull;
  void *work;
  cudaEvent_t start, stop;
  int count = 0;

  if (rounds < 1)
    return 2;
  if (cudaGetDeviceCount (&count) != cudaSuccess || count == 0) {
    printf ("SKIP: no CUDA device opens\n");
    return 77;
  }
  for (size_t i = 0; i < (size_t) 4 * W * H; i++)
    pixels[i] = (uint8_t) g_random_int_range (0, 256);
  for (int i = 0; i < AW * AH; i++)
    alpha[i] = (float) g_random_double ();
  CHECK (cudaMalloc ((void **) &dpixels, (size_t) 4 * W * H));
  CHECK (cudaMalloc ((void **) &out.data, (size_t) 4 * W * H));
  CHECK (cudaMalloc ((void **) &dalpha, sizeof (float) * AW * AH));
  CHECK (cudaMalloc ((void **) &dfull, sizeof (float) * W * H));
  CHECK (cudaMalloc (&work, ws));
  CHECK (cudaMemcpy (dpixels, pixels, (size_t) 4 * W * H, cudaMemcpyHostToDevice));
  CHECK (cudaMemcpy (dalpha, alpha, sizeof (float) * AW * AH, cudaMemcpyHostToDevice));
  frame.planes[0] = dpixels;
  CHECK (hfam_cuda_refine_plan_new (&plan, AW, AH, W, H, &rp));
  CHECK (cudaEventCreate (&start));
  CHECK (cudaEventCreate (&stop));
  for (int r = -3; r < rounds; r++)   /* three rounds to warm up */
    for (int s = 0; s < 3; s++) {
      float t;
      CHECK (cudaEventRecord (start, 0));
      if (s != 1)
        CHECK (hfam_cuda_refine (&plan, dalpha, &frame, NULL, &rp, NULL, dfull, W, 0));
      if (s != 0)
        CHECK (hfam_cuda_foreground (&frame, NULL, dfull, W, &fp, &out, work, ws, 0));
      CHECK (cudaEventRecord (stop, 0));
      CHECK (cudaEventSynchronize (stop));
      CHECK (cudaEventElapsedTime (&t, start, stop));
      if (r >= 0)
        ms[(size_t) s * rounds + r] = t;
    }
  printf ("%dx%d, matte %dx%d, median of %d rounds:\n", W, H, AW, AH, rounds);
  for (int s = 0; s < 3; s++) {
    qsort (ms + (size_t) s * rounds, rounds, sizeof (float), compare);
    printf ("  %-28s %7.3f ms\n", names[s], ms[(size_t) s * rounds + rounds / 2]);
  }
  hfam_cuda_refine_plan_free (&plan);
  cudaFree (work);
  cudaFree (dfull);
  cudaFree (dalpha);
  cudaFree (out.data);
  cudaFree (dpixels);
  return 0;
}
