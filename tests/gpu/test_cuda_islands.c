/* The matte's islands dropped on the GPU (kernels/islands.cu) against the CPU twin
 * (kernels/islands.c): random sparse mattes at several sizes, floors and shares, a spiral (one
 * region whose union-find chains are as long as they get) beside small blobs, and a matte
 * with nothing above the floor. Alpha is a multiple of 1/16 so that every region's mass sums
 * exactly in any order: the two must agree to the bit. Then the time the op takes at 512x288
 * and 1920x1080 (median of 50). Exits 77 (skipped) when no CUDA device opens. */
#include "islands.cuh"
#include "check-cuda.h"
#include "median.h"

#include <glib.h>
#include <stdio.h>
#include <string.h>

static int n_failed;

static void
compare (const char *name, const float *matte, int w, int h, const HfamIslandParams *p)
{
  const size_t n = (size_t) w * h, bytes = sizeof (float) * n;
  g_autofree float *want = g_memdup2 (matte, bytes), *got = g_new (float, n);
  g_autofree void *scratch = g_malloc (hfam_islands_scratch_bytes (w, h));
  size_t differ = 0, dropped = 0;
  float *d_matte;
  void *d_scratch;

  CHECK_CUDA (cudaMalloc ((void **) &d_matte, bytes));
  CHECK_CUDA (cudaMalloc (&d_scratch, hfam_islands_scratch_bytes (w, h)));
  CHECK_CUDA (cudaMemcpy (d_matte, matte, bytes, cudaMemcpyHostToDevice));
  CHECK_CUDA (hfam_cuda_matte_drop_islands (d_matte, w, h, p, d_scratch, 0));
  CHECK_CUDA (cudaMemcpy (got, d_matte, bytes, cudaMemcpyDeviceToHost));
  g_assert_cmpint (hfam_matte_drop_islands (want, w, h, p, scratch), ==, 0);
  for (size_t i = 0; i < n; i++) {
    differ += memcmp (&got[i], &want[i], sizeof (float)) != 0;
    dropped += want[i] != matte[i];
  }
  printf ("%s islands %-40s %zu of %zu pixels differ (%zu dropped)\n", differ ? "FAIL" : "ok  ",
          name, differ, n, dropped);
  n_failed += differ != 0;
  cudaFree (d_matte);
  cudaFree (d_scratch);
}

static void
check_random (GRand *rand, int w, int h, float floor, float share, double density)
{
  const size_t n = (size_t) w * h;
  g_autofree float *matte = g_new (float, n);
  char name[64];

  for (size_t i = 0; i < n; i++)
    matte[i] = g_rand_double (rand) < density ? g_rand_int_range (rand, 0, 17) / 16.0f : 0.0f;
  snprintf (name, sizeof name, "random %dx%d floor %g share %g", w, h, floor, share);
  compare (name, matte, w, h, &(HfamIslandParams) { floor, share });
}

/* A one-pixel-wide spiral, walls two pixels apart, and a blob in every corner. */
static void
check_spiral (int w, int h)
{
  g_autofree float *matte = g_new0 (float, (size_t) w * h);
  int x0 = 4, y0 = 4, x1 = w - 5, y1 = h - 5;
  char name[64];

  while (x0 <= x1 && y0 <= y1) {
    for (int x = x0; x <= x1; x++)
      matte[(size_t) y0 * w + x] = 1.0f;
    for (int y = y0; y <= y1; y++)
      matte[(size_t) y * w + x1] = 1.0f;
    for (int x = x0; x <= x1; x++)
      matte[(size_t) y1 * w + x] = 1.0f;
    for (int y = y0 + 2; y <= y1; y++)
      matte[(size_t) y * w + x0] = 1.0f;
    matte[(size_t) (y0 + 2) * w + x0 + 1] = 1.0f;
    x0 += 2, y0 += 2, x1 -= 2, y1 -= 2;
  }
  for (int c = 0; c < 4; c++)
    for (int dy = 0; dy < 2; dy++)
      for (int dx = 0; dx < 2; dx++)
        matte[(size_t) ((c / 2) * (h - 2) + dy) * w + (c % 2) * (w - 2) + dx] = 0.5f;
  snprintf (name, sizeof name, "spiral %dx%d", w, h);
  compare (name, matte, w, h, &(HfamIslandParams) { 0.05f, 0.1f });
}

/* (G_GNUC_UNUSED: the emulator leaves it out) */
static G_GNUC_UNUSED void
time_op (GRand *rand, int w, int h)
{
  const size_t n = (size_t) w * h, bytes = sizeof (float) * n;
  const HfamIslandParams p = { 0.05f, 0.1f };
  g_autofree float *matte = g_new (float, n);
  double ms[50];
  float *d_matte;
  void *d_scratch;
  cudaEvent_t start, stop;

  for (size_t i = 0; i < n; i++)
    matte[i] = g_rand_double (rand) < 0.5 ? (float) g_rand_double (rand) : 0.0f;
  CHECK_CUDA (cudaMalloc ((void **) &d_matte, bytes));
  CHECK_CUDA (cudaMalloc (&d_scratch, hfam_islands_scratch_bytes (w, h)));
  CHECK_CUDA (cudaEventCreate (&start));
  CHECK_CUDA (cudaEventCreate (&stop));
  for (int k = 0; k < 50; k++) {
    float elapsed;
    CHECK_CUDA (cudaMemcpy (d_matte, matte, bytes, cudaMemcpyHostToDevice));
    CHECK_CUDA (cudaEventRecord (start, 0));
    CHECK_CUDA (hfam_cuda_matte_drop_islands (d_matte, w, h, &p, d_scratch, 0));
    CHECK_CUDA (cudaEventRecord (stop, 0));
    CHECK_CUDA (cudaEventSynchronize (stop));
    CHECK_CUDA (cudaEventElapsedTime (&elapsed, start, stop));
    ms[k] = elapsed;
  }
  printf ("time islands %dx%d: median %.3f ms\n", w, h, median (ms, 50));
  cudaEventDestroy (start);
  cudaEventDestroy (stop);
  cudaFree (d_matte);
  cudaFree (d_scratch);
}

int
main (void)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (16);
  int devices = 0;

  if (cudaGetDeviceCount (&devices) != cudaSuccess || devices == 0) {
    printf ("SKIP: no CUDA device\n");
    return 77;
  }
  check_random (rand, 1, 1, 0.05f, 0.1f, 1.0);
  check_random (rand, 17, 1, 0.05f, 0.1f, 0.7);
  check_random (rand, 1, 23, 0.05f, 0.5f, 0.7);
  check_random (rand, 37, 23, 0.05f, 0.1f, 0.5);
  check_random (rand, 512, 288, 0.05f, 0.1f, 0.45);
  check_random (rand, 512, 288, 0.3f, 0.3f, 0.6);
  check_random (rand, 512, 288, 0.0f, 1.0f, 0.5);
  check_random (rand, 1920, 1080, 0.05f, 0.1f, 0.45);
  check_random (rand, 1920, 1080, 0.05f, 0.001f, 0.55);
  check_random (rand, 64, 48, 1.0f, 0.1f, 1.0);  /* nothing above the floor */
  check_spiral (101, 77);
  check_spiral (512, 288);
  /* a bad argument queues nothing */
  g_assert (hfam_cuda_matte_drop_islands (NULL, 4, 4, &(HfamIslandParams) { 0.05f, 0.1f }, NULL,
                                          0)
            == cudaErrorInvalidValue);
  g_assert (hfam_cuda_matte_drop_islands ((float *) 16, 4, 4, &(HfamIslandParams) { 2.0f, 0.1f },
                                          (void *) 16, 0)
            == cudaErrorInvalidValue);
#ifndef HFAM_CUDA_EMULATOR /* (tests/gpu/emulator: its times say nothing of a GPU's) */
  time_op (rand, 512, 288);
  time_op (rand, 1920, 1080);
#endif
  printf ("%s\n", n_failed ? "FAILED" : "all passed");
  return n_failed ? 1 : 0;
}
