/* Image resampling on the CPU: PyTorch's bilinear interpolation with antialias=True and
 * align_corners=False (a triangle filter widened by the scale factor when shrinking, plain
 * bilinear with edge clamping when enlarging), separable, exact to float rounding. */
#ifndef HFAM_KERNELS_RESIZE_H
#define HFAM_KERNELS_RESIZE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The taps of one 1-D pass of the filter from `in` to `out` samples: output i reads len[i]
 * inputs from start[i] with weights w[i * k ...] (the rest of its k weights are 0). Zero taps
 * at either end are trimmed: they add exact zeros in PyTorch, so no sum changes. */
typedef struct {
  int in, out, k;
  int *start, *len;
  float *w;
  int lo, hi;   /* the inputs read by any output */
  int64_t taps; /* sum of len: the work per line of this pass */
} HfamResizeFilter;

/* Below this many output values the frame functions here and in frame.h stay on one thread:
 * an OpenMP team costs more than it saves on the small maps of the tests and of the heads. */
#define HFAM_PARALLEL_MIN_VALUES 65536

/* 0, or -1 on a size < 1 or no memory. The CUDA preprocessing uploads these same tables. */
int hfam_resize_filter_init (HfamResizeFilter *f, int in, int out);
void hfam_resize_filter_clear (HfamResizeFilter *f);

/* One float plane src (sw x sh, row stride ss floats) to dst (dw x dh, stride ds floats).
 * Returns 0, or -1 when a size is < 1 or the scratch allocation fails. */
int hfam_resize_plane (const float *src, int sw, int sh, int ss, float *dst, int dw, int dh,
                       int ds);

/* An 8-bit interleaved frame (bytes_per_pixel 3 or 4; r, g, b = byte offsets of red, green,
 * blue in a pixel) to `dst`, 3 planes of dw x dh, resized as above and normalised:
 * plane k holds (value / 255 * scale - mean[k]) / std[k] of channel order[k] (0 = R, 1 = G,
 * 2 = B). Returns 0 or -1 as above. */
int hfam_preprocess_rgb8 (const uint8_t *src, int sw, int sh, int stride, int bytes_per_pixel,
                          const int rgb_offsets[3], float *dst, int dw, int dh,
                          const int order[3], float scale, const float mean[3],
                          const float std[3]);

/* Writes row y of a source picture as R'G'B' floats on 0..255, 3 per pixel, to rgb (3 * its
 * width floats). */
typedef void (*HfamRowReader) (const void *source, int y, float *rgb);

/* hfam_preprocess_rgb8's resize and normalisation for a source (sw x sh) that `read` gives
 * row by row: each row the filter reads is read about once (a thread keeps the rows its
 * output rows share) and nothing at the source's size is kept. Rows spread over the calling
 * thread's OpenMP team, and so `read` must be safe to call from several threads. Returns 0 or
 * -1 as above. */
int hfam_preprocess_rows (HfamRowReader read, const void *source, int sw, int sh, float *dst,
                          int dw, int dh, const int order[3], float scale, const float mean[3],
                          const float std[3]);

#ifdef __cplusplus
}
#endif

#endif
