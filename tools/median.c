/* See median.h. */
#include "median.h"

#include <stdlib.h>

static int
compare_doubles (const void *a, const void *b)
{
  const double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

double
percentile (double *values, int n, double q)
{
  int rank = (int) (q * n + 0.999999);

  qsort (values, n, sizeof *values, compare_doubles);
  rank = rank < 1 ? 1 : rank > n ? n : rank;
  return values[rank - 1];
}

double
median (double *values, int n)
{
  qsort (values, n, sizeof *values, compare_doubles);
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}
