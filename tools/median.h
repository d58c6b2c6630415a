/* The median of timing samples, for the benchmarks. */
#ifndef HFAM_TOOLS_MEDIAN_H
#define HFAM_TOOLS_MEDIAN_H

/* Sorts `values` (n >= 1) in place; the middle one, or the mean of the middle two. */
double median (double *values, int n);
/* Sorts `values` (n >= 1) in place; the value below which a share `q` (0..1) of them lie
 * (nearest rank). */
double percentile (double *values, int n, double q);

#endif
