/* Islands of the matte dropped (islands.h): one raster pass of union-find over the rows' runs
 * of pixels above the floor, one of masses, one of dropping. The engine runs it at the
 * inference size, on the fresh matte and on the blend of the temporal smoothing
 * (BENCHMARKS.md, "Islands"). */
#include "islands.h"

#include <math.h>

int
hfam_island_params_valid (const HfamIslandParams *p)
{
  /* (written so that NaN fails too) */
  return p && p->floor >= 0.0f && p->floor <= 1.0f && p->share >= 0.0f && p->share <= 1.0f;
}

size_t
hfam_islands_scratch_bytes (int w, int h)
{
  if (w < 1 || h < 1)
    return 0;
  const size_t n = (size_t) w * h;
  /* the device's labels and masses; the host's runs fit in them and 8 h bytes more */
  return n * sizeof (int32_t) + (n + 1) * sizeof (float) + 8 * (size_t) h;
}

/* A run of pixels above the floor along a row, [start, end) as pixel indexes: a node of the
 * union-find, whose parent is a run of the same region before it. At most (w + 1) / 2 a row,
 * so h (w + 1) / 2 of 16 bytes fit in the scratch. */
typedef struct {
  int32_t start, end, parent;
  float mass;
} Run;

/* The root of run r's region, halving the path on the way: the chains stay short, and the
 * roots, which alone decide the regions, do not change. */
static int32_t
find_root (Run *runs, int32_t r)
{
  while (runs[r].parent != r) {
    runs[r].parent = runs[runs[r].parent].parent;
    r = runs[r].parent;
  }
  return r;
}

/* The regions of runs a and b one, with the smaller root as the root (as the CUDA twin). */
static void
unite (Run *runs, int32_t a, int32_t b)
{
  a = find_root (runs, a);
  b = find_root (runs, b);
  if (a < b)
    runs[b].parent = a;
  else if (b < a)
    runs[a].parent = b;
}

int
hfam_matte_drop_islands (float *matte, int w, int h, const HfamIslandParams *p, void *scratch)
{
  if (!matte || !scratch || w < 1 || h < 1 || (int64_t) w * h > INT32_MAX
      || !hfam_island_params_valid (p))
    return -1;
  Run *runs = scratch;
  int32_t count = 0, above_first = 0, above_end = 0;

  /* The runs, row by row, each joined to the runs of the row above that touch it: those
   * reaching from its start - 1 to its end + 1 (8-connected). Mattes are mostly long runs, so
   * the work a pixel is one comparison, where joining pixel by pixel searched roots at each. */
  for (int y = 0; y < h; y++) {
    const int32_t row = y * w, first = count;
    int32_t a = above_first;
    for (int x = 0; x < w;) {
      if (!(matte[row + x] > p->floor)) {
        x++;
        continue;
      }
      const int start = x;
      while (x < w && matte[row + x] > p->floor)
        x++;
      runs[count] = (Run) { row + start, row + x, count, 0.0f };
      /* the runs above that end before start - 1 touch no later run of this row either */
      while (a < above_end && runs[a].end - (row - w) < start)
        a++;
      for (int32_t b = a; b < above_end && runs[b].start - (row - w) <= x; b++)
        unite (runs, count, b);
      count++;
    }
    above_first = first;
    above_end = count;
  }
  /* Each run's mass into its root. A parent comes before its run, so by the time a run is
   * reached its parent points at the root. */
  float largest = 0.0f;
  for (int32_t r = 0; r < count; r++) {
    const int32_t root = runs[r].parent = runs[runs[r].parent].parent;
    float sum = 0.0f;
    /* (in any order: one chain of additions would wait on each) */
#pragma omp simd reduction(+ : sum)
    for (int32_t i = runs[r].start; i < runs[r].end; i++)
      sum += matte[i];
    runs[root].mass += sum;
    largest = fmaxf (largest, runs[root].mass);
  }
  const float limit = p->share * largest;
  for (int32_t r = 0; r < count; r++)
    if (runs[runs[r].parent].mass < limit)
      for (int32_t i = runs[r].start; i < runs[r].end; i++)
        matte[i] = 0.0f;
  return 0;
}
