/* The median of timing samples, for the benchmarks. */
#ifndef HFAM_TOOLS_MEDIAN_H
#define HFAM_TOOLS_MEDIAN_H

/* Sorts `values` (n >= 1) in place; the middle one, or the mean of the middle two. */
double median (double *values, int n);

#endif
