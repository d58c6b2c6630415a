/* The edge kernels' cost at 1920x1080 on the CPU (not a test): the median over rounds of the
 * matte refinement (colour and grey guide, statistics at the inference size 512x288), the
 * foreground estimation and the key levels, each round running them in turn. Wall time, and
 * the CPU time of the process (all threads) over the thread count: on a shared machine the
 * wall time is what the others leave, the CPU time what a quiet machine would take.
 *
 * Usage: bench-edges [THREADS [ROUNDS [STEP]]]   (defaults: 2 threads, 21 rounds, every step;
 *        STEP 0..3 runs one, for a profiler) */
#include "foreground.h"
#include "refine.h"

#include <glib.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define W 1920
#define H 1080
#define AW 512
#define AH 288

static double
cpu_ms (void)
{
  struct timespec t;
  clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int
compare (const void *a, const void *b)
{
  const double x = *(const double *) a, y = *(const double *) b;
  return x < y ? -1 : x > y;
}

int
main (int argc, char **argv)
{
  const int threads = argc > 1 ? atoi (argv[1]) : 2, rounds = argc > 2 ? atoi (argv[2]) : 21;
  const int only = argc > 3 ? atoi (argv[3]) : -1;
  static const char *const names[] = { "refine (colour guide, r 8)", "refine (grey guide, r 8)",
                                       "foreground (r 90, 6)", "key levels" };
  enum { N_STEPS = G_N_ELEMENTS (names) };
  g_autofree uint8_t *pixels = g_new (uint8_t, (size_t) 4 * W * H);
  g_autofree uint8_t *rgba = g_new (uint8_t, (size_t) 4 * W * H);
  g_autofree float *alpha = g_new (float, AW * AH), *full = g_new (float, (size_t) W * H);
  g_autofree double *ms = g_new (double, (size_t) N_STEPS * rounds);
  g_autofree double *cpu = g_new (double, (size_t) N_STEPS * rounds);
  const HfamFrame frame = { { pixels }, { 4 * W }, W, H, HFAM_FRAME_RGBA };
  const HfamMatteImage out = { rgba, 4 * W, W, H, HFAM_MATTE_RGBA };
  const HfamForegroundParams fg = { 90, 6, 4 };
  const HfamKeyLevels levels = { 0.1f, 0.9f };
  /* kept from frame to frame, as a stream would */
  HfamScratch scratch = { NULL, 0 }, fg_scratch = { NULL, 0 };
  GRand *rng = g_rand_new_with_seed (1);

  if (threads < 1 || rounds < 1)
    return 2;
  omp_set_num_threads (threads);
  for (size_t i = 0; i < (size_t) 4 * W * H; i++)
    pixels[i] = (uint8_t) g_rand_int_range (rng, 0, 256);
  for (int i = 0; i < AW * AH; i++)
    alpha[i] = (float) g_rand_double (rng);
  for (int r = 0; r < rounds; r++)
    for (int s = 0; s < N_STEPS; s++) {
      const HfamRefineParams rp = { 8, 1e-3f, 0, 0, s == 0 };
      const gint64 t0 = g_get_monotonic_time ();
      const double c0 = cpu_ms ();
      int ret = 0;
      if (only >= 0 && s != only)
        continue;
      if (s < 2)
        ret = hfam_refine (alpha, AW, AH, &frame, NULL, &rp, NULL, full, W, &scratch);
      else if (s == 2)
        ret = hfam_foreground (&frame, NULL, full, W, &fg, &out, &fg_scratch);
      else
        hfam_key_levels_apply (full, (size_t) W * H, &levels);
      ms[(size_t) s * rounds + r] = (g_get_monotonic_time () - t0) / 1000.0;
      cpu[(size_t) s * rounds + r] = (cpu_ms () - c0) / threads;
      if (ret != 0) {
        fprintf (stderr, "%s failed\n", names[s]);
        return 1;
      }
    }
  printf ("%dx%d, matte %dx%d, %d threads, median of %d rounds: wall ms, CPU ms / threads\n",
          W, H, AW, AH, threads, rounds);
  for (int s = 0; s < N_STEPS; s++) {
    if (only >= 0 && s != only)
      continue;
    qsort (ms + (size_t) s * rounds, rounds, sizeof (double), compare);
    qsort (cpu + (size_t) s * rounds, rounds, sizeof (double), compare);
    printf ("  %-28s %7.2f %7.2f\n", names[s], ms[(size_t) s * rounds + rounds / 2],
            cpu[(size_t) s * rounds + rounds / 2]);
  }
  hfam_scratch_clear (&scratch);
  hfam_scratch_clear (&fg_scratch);
  g_rand_free (rng);
  return 0;
}
