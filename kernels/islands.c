/* Islands of the matte dropped (islands.h): one raster pass of union-find, one of masses,
 * one of dropping. About 1 ms at 512x288 (BENCHMARKS.md, "Islands"); the engine runs it at
 * the inference size. */
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
  return n * sizeof (int32_t) + (n + 1) * sizeof (float);
}

/* The root of i's region, halving the path on the way: the chains stay short, and the roots,
 * which alone decide the regions, do not change. */
static int32_t
find_root (int32_t *label, int32_t i)
{
  while (label[i] != i) {
    label[i] = label[label[i]];
    i = label[i];
  }
  return i;
}

/* The regions of a and b one, with the smaller root as the root (as the CUDA twin). */
static void
unite (int32_t *label, int32_t a, int32_t b)
{
  a = find_root (label, a);
  b = find_root (label, b);
  if (a < b)
    label[b] = a;
  else if (b < a)
    label[a] = b;
}

int
hfam_matte_drop_islands (float *matte, int w, int h, const HfamIslandParams *p, void *scratch)
{
  if (!matte || !scratch || w < 1 || h < 1 || (int64_t) w * h > INT32_MAX
      || !hfam_island_params_valid (p))
    return -1;
  const int32_t n = w * h;
  int32_t *label = scratch;
  float *mass = (float *) (label + n);

  for (int32_t i = 0; i < n; i++) {
    label[i] = matte[i] > p->floor ? i : -1;
    mass[i] = 0.0f;
  }
  /* each pixel joins its neighbours above and to the left, skipping those joined already: the
   * pixel above is joined to its own left and right neighbours and to this pixel's left one
   * (diagonal to it); without it, the left one is joined to the one above it */
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      const int32_t i = y * w + x;
      if (label[i] < 0)
        continue;
      const int left = x > 0 && label[i - 1] >= 0;
      if (y > 0 && label[i - w] >= 0) {
        unite (label, i, i - w);
        continue;
      }
      if (left)
        unite (label, i, i - 1);
      else if (y > 0 && x > 0 && label[i - w - 1] >= 0)
        unite (label, i, i - w - 1);
      if (y > 0 && x + 1 < w && label[i - w + 1] >= 0)
        unite (label, i, i - w + 1);
    }
  float largest = 0.0f;
  for (int32_t i = 0; i < n; i++)
    if (label[i] >= 0) {
      label[i] = find_root (label, i);
      mass[label[i]] += matte[i];
    }
  for (int32_t i = 0; i < n; i++)
    if (label[i] == i)
      largest = fmaxf (largest, mass[i]);
  const float limit = p->share * largest;
  for (int32_t i = 0; i < n; i++)
    if (label[i] >= 0 && mass[label[i]] < limit)
      matte[i] = 0.0f;
  return 0;
}
