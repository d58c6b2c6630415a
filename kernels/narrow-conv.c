/* 3x3 convolutions with few output channels (narrow-conv.h). Each output pixel keeps one
 * accumulator vector per output channel across the input's channel blocks and the nine taps,
 * with the input's block as the vector's lanes, and sums its lanes once at the end: the input
 * is read once per pixel and tap for all the outputs, nothing is padded. */
#include "narrow-conv.h"
#include "resize.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* As box.h's clones, with an AVX-512 one too: a block of 16 is one register there. */
#if defined(__x86_64__) && defined(__GLIBC__) && defined(__has_attribute) && !defined(__clang__)
#if __has_attribute(target_clones)
#define NARROW_CLONES __attribute__ ((target_clones ("avx512f", "avx2", "default")))
#endif
#endif
#ifndef NARROW_CLONES
#define NARROW_CLONES
#endif

#define ALWAYS_INLINE static inline __attribute__ ((always_inline))

/* (vectors through pointers: one passed or returned by value would change the ABI between
 * the clones) */
typedef float vf4 __attribute__ ((vector_size (4 * sizeof (float))));
typedef float vf8 __attribute__ ((vector_size (8 * sizeof (float))));
typedef float vf16 __attribute__ ((vector_size (16 * sizeof (float))));

/* pairwise sums of the lanes: in lane order they would be a chain of dependent additions */
ALWAYS_INLINE float
lane_sum8 (const vf8 *v)
{
  const vf4 s = __builtin_shufflevector (*v, *v, 0, 1, 2, 3)
                + __builtin_shufflevector (*v, *v, 4, 5, 6, 7);
  return (s[0] + s[2]) + (s[1] + s[3]);
}

ALWAYS_INLINE float
lane_sum16 (const vf16 *v)
{
  const vf8 s = __builtin_shufflevector (*v, *v, 0, 1, 2, 3, 4, 5, 6, 7)
                + __builtin_shufflevector (*v, *v, 8, 9, 10, 11, 12, 13, 14, 15);
  return lane_sum8 (&s);
}

/* Output pixels x .. x + P - 1 of row y for a block of B lanes, NO outputs, taps kx0 .. kx1
 * (those inside the row): constants where the row functions below call it, so that each case
 * compiles to its own loop with its accumulators in registers, P x NO independent chains of
 * additions. */
#define DEFINE_TILE(B)                                                                         \
  ALWAYS_INLINE void tile##B (const HfamBlockedMap *in, const float *weights,                  \
                              const float *bias, int relu, int y, int x, float *dst,           \
                              const int P, const int NO, const int kx0, const int kx1)         \
  {                                                                                            \
    const int w = in->width, h = in->height, nb = in->n_blocks;                                \
    const size_t per_out = (size_t) nb * 9 * B;                                                \
    const int ky0 = y == 0 ? 1 : 0, ky1 = y == h - 1 ? 1 : 2;                         \
    vf##B acc[HFAM_NARROW_CONV_MAX_OUT][8];                                                    \
                                                                                               \
    for (int o = 0; o < NO; o++)                                                               \
      for (int p = 0; p < P; p++)                                                              \
        acc[o][p] = (vf##B) { 0 };                                                             \
                                                                                               \
    for (int b = 0; b < nb; b++)                                                               \
      for (int ky = ky0; ky <= ky1; ky++) {                                                    \
        /* the P + 2 input pixels the taps of this row reach, from x - 1 */                    \
        const size_t row = ((size_t) b * h + y + ky - 1) * w + x - 1;                          \
        const float *wt = weights + ((size_t) b * 3 + ky) * 3 * B;                             \
        vf##B v[10];                                                                           \
        for (int k = kx0; k < P + kx1; k++)                                                    \
          memcpy (&v[k], in->src + (row + k) * B, sizeof v[k]);                                \
        for (int kx = kx0; kx <= kx1; kx++)                                                    \
          for (int o = 0; o < NO; o++) {                                                       \
            vf##B wv;                                                                          \
            memcpy (&wv, wt + o * per_out + kx * B, sizeof wv);                                \
            for (int p = 0; p < P; p++)                                                        \
              acc[o][p] += v[p + kx] * wv;                                                     \
          }                                                                                    \
      }                                                                                        \
    for (int p = 0; p < P; p++) {                                                              \
      vf##B out = { 0 };                                                                       \
      for (int o = 0; o < NO; o++) {                                                           \
        const float sum = lane_sum##B (&acc[o][p]) + bias[o];                                  \
        out[o] = relu && sum < 0.0f ? 0.0f : sum;                                              \
      }                                                                                        \
      memcpy (dst + (size_t) (x + p) * B, &out, sizeof out);                                   \
    }                                                                                          \
  }                                                                                            \
                                                                                               \
  /* Tiles of P pixels (8 for one output, 4 for more: what the registers hold) where all */    \
  /* three taps lie inside the row, single pixels at its ends */                               \
  ALWAYS_INLINE void row##B (const HfamBlockedMap *in, const float *weights,                   \
                             const float *bias, int relu, int y, float *dst, const int NO)     \
  {                                                                                            \
    const int w = in->width, P = NO == 1 ? 8 : 4;                                              \
    int x = 1;                                                                                 \
                                                                                               \
    if (w == 1) {                                                                              \
      tile##B (in, weights, bias, relu, y, 0, dst, 1, NO, 1, 1);                               \
      return;                                                                                  \
    }                                                                                          \
    tile##B (in, weights, bias, relu, y, 0, dst, 1, NO, 1, 2);                                 \
    for (; x + P <= w - 1; x += P)                                                             \
      tile##B (in, weights, bias, relu, y, x, dst, P, NO, 0, 2);                               \
    for (; x < w - 1; x++)                                                                     \
      tile##B (in, weights, bias, relu, y, x, dst, 1, NO, 0, 2);                               \
    tile##B (in, weights, bias, relu, y, w - 1, dst, 1, NO, 0, 1);                             \
  }

DEFINE_TILE (16)
DEFINE_TILE (8)

/* n_out as a constant, for each block */
#define ROW_CASES(B)                                                                           \
  switch (n_out) {                                                                             \
  case 1: row##B (in, weights, bias, relu, y, dst, 1); break;                                  \
  case 2: row##B (in, weights, bias, relu, y, dst, 2); break;                                  \
  case 3: row##B (in, weights, bias, relu, y, dst, 3); break;                                  \
  default: row##B (in, weights, bias, relu, y, dst, 4); break;                                 \
  }

NARROW_CLONES static void
narrow_row (const HfamBlockedMap *in, const float *weights, const float *bias, int n_out,
            int relu, int y, float *dst)
{
  if (in->block == 16)
    ROW_CASES (16)
  else
    ROW_CASES (8)
}

int
hfam_narrow_conv3x3 (const HfamBlockedMap *in, const float *weights, const float *bias,
                     int n_out, int relu, float *dst)
{
  const int w = in->width, h = in->height;

  if (w < 1 || h < 1 || in->n_blocks < 1 || (in->block != 8 && in->block != 16) || n_out < 1
      || n_out > HFAM_NARROW_CONV_MAX_OUT || !in->src)
    return -1;
  /* each output pixel reads 9 x n_blocks x block input values */
#pragma omp parallel for schedule(static)                                                      \
    if ((int64_t) w * h * in->n_blocks * in->block >= HFAM_PARALLEL_MIN_VALUES)
  for (int y = 0; y < h; y++)
    narrow_row (in, weights, bias, n_out, relu, y, dst + (size_t) y * w * in->block);
  return 0;
}
