/* Plain oracles that several kernel tests compare against: written the obvious way, in
 * double where it matters, so that a kernel's error is not the oracle's. */
#pragma once

#include <glib.h>
#include <math.h>
#include <stddef.h>

/* The largest |a[i] - b[i]|. */
static inline float
max_abs_diff (const float *a, const float *b, size_t n)
{
  float m = 0.0f;
  for (size_t i = 0; i < n; i++)
    m = MAX (m, fabsf (a[i] - b[i]));
  return m;
}

/* The mean of plane v (w x h) over the window of radius r around (x, y), clipped to the
 * plane. */
static inline double
window_mean (const double *v, int w, int h, int x, int y, int r)
{
  double sum = 0.0;
  int n = 0;
  for (int j = MAX (y - r, 0); j <= MIN (y + r, h - 1); j++)
    for (int i = MAX (x - r, 0); i <= MIN (x + r, w - 1); i++, n++)
      sum += v[(size_t) j * w + i];
  return sum / n;
}
