/* The edge and smoothing kernels' cost at 1920x1080 on the GPU (not a test; built with the
 * CUDA backend): the median over rounds, timed with CUDA events on one stream, of
 *   - the refinement at the element's defaults (colour guide, radius 3, eps 1e-4, statistics at
 *     the matte's 512x288), the foreground estimation (radii 90 and 6, cells of 4) and the two
 *     in turn: issue 16's bar;
 *   - the temporal smoothing at the element's defaults as the device path runs it (keep_matte
 *     in model/engine/cuda/device-frames.c): at 512x288 the input's grey plane, the
 *     compensation, the motion blend and the blend's islands; at the frame's size the held
 *     refinement (the parameters from libhfam, as the element's frames get them); and the
 *     smoothing's cost, those less the plain refinement in each round, as
 *     hfam-frame-bench's `smoothing` row on the CPU: issue 17's.
 * Random pictures, so that nearly every block moves: the worst case. Exits 77 where no device
 * opens.
 *
 * Usage: bench-edges-cuda [ROUNDS]   (default 51) */
#include "hfam-internal.h"
#include "compensate.cuh"
#include "foreground.cuh"
#include "islands.cuh"
#include "refine.cuh"
#include "temporal.cuh"

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

enum { REFINE, FOREGROUND, BOTH, KEEP, HELD, SMOOTHING, N_ROWS };

static int
compare (const void *a, const void *b)
{
  const float x = *(const float *) a, y = *(const float *) b;
  return x < y ? -1 : x > y;
}

/* n floats of 0..1 on the device */
static float *
random_device_floats (size_t n)
{
  g_autofree float *host = g_new (float, n);
  float *dev = NULL;

  for (size_t i = 0; i < n; i++)
    host[i] = (float) g_random_double ();
  if (cudaMalloc ((void **) &dev, sizeof (float) * n) != cudaSuccess)
    return NULL;
  if (cudaMemcpy (dev, host, sizeof (float) * n, cudaMemcpyHostToDevice) != cudaSuccess) {
    cudaFree (dev);
    return NULL;
  }
  return dev;
}

int
main (int argc, char **argv)
{
  const int rounds = argc > 1 ? atoi (argv[1]) : 51;
  static const char *const names[N_ROWS] = {
    "refine (defaults: r 3)", "foreground (r 90, 6)", "refine + foreground",
    "kept matte at 512x288", "held refine", "smoothing (kept + held - refine)",
  };
  const HfamRefineParams rp = { HFAM_REFINE_RADIUS_DEFAULT, HFAM_REFINE_EPS_DEFAULT, 0, 0, 1 };
  const HfamForegroundParams fp = { HFAM_FOREGROUND_RADIUS_LARGE, HFAM_FOREGROUND_RADIUS_SMALL,
                                    HFAM_FOREGROUND_COARSE };
  HfamMotionParams motion;
  HfamFlowParams flow;
  hfam_motion_params_init (&motion, HFAM_TEMPORAL_SMOOTHING_DEFAULT);
  hfam_flow_params_init (&flow);
  const HfamIslandParams islands = { HFAM_ISLAND_FLOOR, HFAM_ISLANDS_DEFAULT };
  /* the network's input as it is: value = picture, so the grey plane is their mean */
  const HfamPreprocessParams identity = { .order = { 0, 1, 2 }, .scale = 1.0f,
                                          .std = { 1.0f, 1.0f, 1.0f } };
  const size_t ws = hfam_cuda_foreground_workspace_bytes (W, H, &fp);
  const size_t plane = (size_t) AW * AH;
  const size_t flow_floats = plane + hfam_compensate_scratch_floats (AW, AH, &flow);
  g_autofree uint8_t *pixels = g_new (uint8_t, (size_t) 4 * W * H);
  g_autofree float *ms = g_new (float, N_ROWS * (size_t) (rounds > 0 ? rounds : 1));
  HfamCudaRefinePlan plan;
  HfamFrame frame = { { NULL }, { 4 * W }, W, H, HFAM_FRAME_RGBA };
  HfamMatteImage out = { NULL, 4 * W, W, H, HFAM_MATTE_RGBA };
  uint8_t *dpixels;
  float *dalpha, *dfull, *dinput, *dgrey, *dkept, *dkept_grey, *dkept_start, *dkept_grey_start;
  float *dflow, *dstill, *dheld;
  void *work, *islands_scratch;
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
  CHECK (cudaMalloc ((void **) &dpixels, (size_t) 4 * W * H));
  CHECK (cudaMalloc ((void **) &out.data, (size_t) 4 * W * H));
  CHECK (cudaMalloc ((void **) &dfull, sizeof (float) * W * H));
  CHECK (cudaMalloc ((void **) &dheld, sizeof (float) * W * H));
  CHECK (cudaMalloc (&work, ws));
  CHECK (cudaMalloc ((void **) &dgrey, sizeof (float) * plane));
  CHECK (cudaMalloc ((void **) &dkept, sizeof (float) * plane));
  CHECK (cudaMalloc ((void **) &dkept_grey, sizeof (float) * plane));
  CHECK (cudaMalloc ((void **) &dstill, sizeof (float) * plane));
  CHECK (cudaMalloc ((void **) &dflow, sizeof (float) * flow_floats));
  CHECK (cudaMalloc (&islands_scratch, hfam_islands_scratch_bytes (AW, AH)));
  dalpha = random_device_floats (plane);
  dinput = random_device_floats (3 * plane);
  dkept_start = random_device_floats (plane);
  dkept_grey_start = random_device_floats (plane);
  if (!dalpha || !dinput || !dkept_start || !dkept_grey_start) {
    fprintf (stderr, "bench-edges-cuda: out of device memory\n");
    return 1;
  }
  CHECK (cudaMemcpy (dpixels, pixels, (size_t) 4 * W * H, cudaMemcpyHostToDevice));
  CHECK (cudaMemset (dheld, 0, sizeof (float) * W * H));
  frame.planes[0] = dpixels;
  const HfamNhwc input = { dinput, AW, AH, 3, 3, HFAM_CUDA_F32 };
  const HfamRefineHold hold = { dstill, dheld, W };
  CHECK (hfam_cuda_refine_plan_new (&plan, AW, AH, W, H, &rp));
  CHECK (cudaEventCreate (&start));
  CHECK (cudaEventCreate (&stop));
  for (int r = -3; r < rounds; r++) {   /* three rounds to warm up */
    /* each round from the same kept matte and picture (compensation moves them in place) */
    CHECK (cudaMemcpyAsync (dkept, dkept_start, sizeof (float) * plane,
                            cudaMemcpyDeviceToDevice, 0));
    CHECK (cudaMemcpyAsync (dkept_grey, dkept_grey_start, sizeof (float) * plane,
                            cudaMemcpyDeviceToDevice, 0));
    for (int s = 0; s < SMOOTHING; s++) {
      float t;
      CHECK (cudaEventRecord (start, 0));
      if (s == REFINE || s == BOTH)
        CHECK (hfam_cuda_refine (&plan, dalpha, &frame, NULL, &rp, NULL, dfull, W, 0));
      if (s == FOREGROUND || s == BOTH)
        CHECK (hfam_cuda_foreground (&frame, NULL, dfull, W, &fp, &out, work, ws, 0));
      if (s == KEEP) {
        CHECK (hfam_cuda_motion_grey (&input, &identity, dgrey, 0));
        CHECK (hfam_cuda_motion_compensate (dkept, dkept_grey, dgrey, AW, AH, &flow,
                                            dflow, dflow + plane, 0));
        CHECK (hfam_cuda_matte_blend_motion (dkept, dalpha, dgrey, dkept_grey, dflow, AW, AH,
                                             &motion, dstill, 0));
        CHECK (hfam_cuda_matte_drop_islands (dkept, AW, AH, &islands, islands_scratch, 0));
      }
      if (s == HELD)
        CHECK (hfam_cuda_refine_held (&plan, dalpha, &frame, NULL, &rp, NULL, &hold, dfull, W,
                                      0));
      CHECK (cudaEventRecord (stop, 0));
      CHECK (cudaEventSynchronize (stop));
      CHECK (cudaEventElapsedTime (&t, start, stop));
      if (r >= 0)
        ms[(size_t) s * rounds + r] = t;
    }
    if (r >= 0)
      ms[(size_t) SMOOTHING * rounds + r] = ms[(size_t) KEEP * rounds + r]
                                            + ms[(size_t) HELD * rounds + r]
                                            - ms[(size_t) REFINE * rounds + r];
  }
  printf ("%dx%d, matte %dx%d, median of %d rounds:\n", W, H, AW, AH, rounds);
  for (int s = 0; s < N_ROWS; s++) {
    qsort (ms + (size_t) s * rounds, rounds, sizeof (float), compare);
    printf ("  %-34s %7.3f ms\n", names[s], ms[(size_t) s * rounds + rounds / 2]);
  }
  hfam_cuda_refine_plan_free (&plan);
  cudaFree (islands_scratch);
  cudaFree (dflow);
  cudaFree (dstill);
  cudaFree (dkept_grey_start);
  cudaFree (dkept_start);
  cudaFree (dkept_grey);
  cudaFree (dkept);
  cudaFree (dgrey);
  cudaFree (dinput);
  cudaFree (work);
  cudaFree (dheld);
  cudaFree (dfull);
  cudaFree (dalpha);
  cudaFree (out.data);
  cudaFree (dpixels);
  return 0;
}
