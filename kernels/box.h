/* Box means on the CPU, the building block of the matte refinement (refine.h) and of the
 * foreground colour estimation (foreground.h): O(1) work per value whatever the radius.
 *
 * An image here is w x h pixels of c interleaved floats. The mean of channel k at (x, y) is
 * taken over the window [x - r, x + r] x [y - r, y + r] clipped to the image, divided by the
 * number of pixels inside it (so the borders are not darkened):
 *   mean = sum * (1.0f / (float) (nx * ny))
 * Columns are summed by a running sum down the rows (each thread of the OpenMP team starts its
 * own at its first row), rows by prefix sums along the row: on small integers, as the tests use,
 * every sum is exact and the result is bit-exact against the plain formula.
 *
 * The input rows come from a callback and the means go to another, so that the callers build
 * their products (alpha * F, I * I ...) row by row and use the means at once, without storing
 * a whole image of either. CUDA twin: the box kernels of refine.cu and foreground.cu. */
#ifndef HFAM_KERNELS_BOX_H
#define HFAM_KERNELS_BOX_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The row loops here and in refine.c, foreground.c, compensate.c and heads.c vectorise;
 * where the toolchain can dispatch at run time, AVX2 and AVX-512 clones double and quadruple
 * their width (no FMA: the clones round alike; resize.c's vertical pass gains nothing from
 * AVX-512 and keeps AVX2).
 * GCC only: clang 14 leaves a cloned function called from another file unresolved. */
#if defined(__x86_64__) && defined(__GLIBC__) && defined(__has_attribute) && !defined(__clang__)
#if __has_attribute(target_clones)
#define HFAM_VECTOR_CLONES __attribute__ ((target_clones ("avx512f", "avx2", "default")))
#endif
#endif
#ifndef HFAM_VECTOR_CLONES
#define HFAM_VECTOR_CLONES
#endif

/* v clamped to 0..1, NaN going to 0 as on the GPU; written as the max and min instructions are
 * defined, so that the compiler uses them (a nested ternary compiles to branches). */
static inline float
hfam_clamp01 (float v)
{
  v = v > 0.0f ? v : 0.0f;
  return v < 1.0f ? v : 1.0f;
}

/* Input row y (w * c floats): a pointer into the caller's data, or `scratch` (w * c floats of
 * the calling thread) filled. Called from several threads at once, for any row, maybe twice. */
typedef const float *(*HfamBoxRowIn) (int y, float *scratch, void *user);

/* The means of row y (w * c floats); `scratch` is w * c floats of the calling thread. Called
 * once per row, from several threads at once. */
typedef void (*HfamBoxRowOut) (int y, const float *mean, float *scratch, void *user);

/* 0, or -1 on a size < 1, r < 0, or no memory. Work spreads over the calling thread's OpenMP
 * team when w * h * c is large (HFAM_PARALLEL_MIN_VALUES). */
int hfam_box_mean (int w, int h, int c, int r, HfamBoxRowIn in, HfamBoxRowOut out, void *user);

/* The same one row at a time, top to bottom from a first row, for callers that chain two box
 * filters (the second's input rows made from the first's means as it asks for them). */
typedef struct {
  int w, h, c, r;
  int y0;                /* the first row */
  int y;                 /* the row hfam_box_rows_next returns */
  HfamBoxRowIn in;
  void *user;
  float *col;            /* the column sums of the last row returned (of y0 before) */
  float *scratch_add, *scratch_sub, *prefix, *mean;
  int owned;             /* whether col is this iterator's allocation */
} HfamBoxRows;

/* Floats of an iterator's buffers. */
#define HFAM_BOX_ROWS_FLOATS(w, c) (5 * (size_t) (w) * (c) + (c))

/* mem: HFAM_BOX_ROWS_FLOATS (w, c) floats for the buffers, or NULL to allocate them. 0, or -1
 * on bad arguments or no memory. */
int hfam_box_rows_init (HfamBoxRows *b, int w, int h, int c, int r, int y0, HfamBoxRowIn in,
                        void *user, float *mem);
/* The means of row b->y (w * c floats, valid until the next call); b->y advances. */
const float *hfam_box_rows_next (HfamBoxRows *b);
void hfam_box_rows_clear (HfamBoxRows *b);

/* Host memory a kernel keeps from call to call (zero-initialise it; hfam_scratch_clear frees
 * it): at 1080p a fresh allocation per frame costs more in page faults than the arithmetic. */
typedef struct {
  void *mem;
  size_t bytes;
} HfamScratch;

/* At least `bytes` bytes (what was there is not kept), or NULL when there is no memory. */
void *hfam_scratch_reserve (HfamScratch *s, size_t bytes);
void hfam_scratch_clear (HfamScratch *s);

/* Row y of a host frame as R'G'B' floats in 0..1, 3 per pixel (frame.h's conversion divided
 * by 255), to rgb (3 * width floats). */
void hfam_frame_row_rgb01 (const HfamFrame *frame, const HfamYuvToRgb *yuv, int y, float *rgb);

#ifdef __cplusplus
}
#endif

#endif
