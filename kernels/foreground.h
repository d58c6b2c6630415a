/* Foreground colour estimation (decontamination) on the CPU: blur-fusion, Forte & Pitie,
 * "Approximate fast foreground colour estimation", ICIP 2021. CUDA twin: foreground.cuh.
 *
 * Along soft edges a frame's pixel I is alpha F + (1 - alpha) B: the person's colour mixed with
 * the old background's, which a composite over a new background shows as a halo. Each pass
 * estimates F and B as local alpha-weighted means, then moves F along the residual:
 *   bF = box(F alpha) / (box(alpha) + 1e-5),  bB = box(B (1 - alpha)) / (1 - box(alpha) + 1e-5)
 *   F' = clamp (bF + alpha (I - alpha bF - (1 - alpha) bB), 0, 1)
 * Pass 1 takes F = B = I with the large radius (on a coarse grid, below); pass 2 takes F = pass 1's
 * F' and B = pass 1's bB with the small radius. box() is the clipped box mean of box.h; colours are
 * the frame's R'G'B' in 0..1 (frame.h's conversion / 255), alpha is clamped to 0..1 first.
 *
 * Where alpha = 1 the result is the frame's pixel; where alpha = 0 it is the foreground colour
 * blurred in from nearby (black when none is within reach), which a premultiplied or composited
 * output never shows.
 *
 * Output: the src pad's image, an RGBA/BGRA frame of F' and alpha, straight or premultiplied,
 * rounded as hfam_matte_write rounds (frame.h): a8 = floor(alpha * 255 + 0.5), colours
 * floor(F' * 255 + 0.5), premultiplied (c * a8 + 127) / 255. It replaces hfam_matte_write's
 * frame-pixel fill when the fill is the foreground. */
#ifndef HFAM_KERNELS_FOREGROUND_H
#define HFAM_KERNELS_FOREGROUND_H

#include "box.h"
#include "frame.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int radius_large;  /* pass 1, pixels at the frame's size, >= 1 (the paper: 90) */
  int radius_small;  /* pass 2, >= 1 (the paper: 6) */
  int coarse;        /* pass 1's grid, 1 to HFAM_FOREGROUND_MAX_COARSE (below) */
} HfamForegroundParams;

#define HFAM_FOREGROUND_MAX_COARSE 8

/* Pass 1 on a coarse grid. Its means are smooth (a window of 181 pixels at the paper's radius),
 * so they are taken on cells of coarse x coarse pixels, which cuts pass 1's cost at 1080p to
 * a sixteenth with coarse 4:
 *   - cell (i, j) holds the means of pass 1's inputs over pixels [coarse i, coarse (i + 1)) x
 *     [coarse j, coarse (j + 1)) clipped to the frame (cw x ch cells, sides rounded up);
 *   - their box means, radius hfam_foreground_coarse_radius (radius_large / coarse, >= 1);
 *   - every pixel of a cell takes the cell's means (the window's centre moves by less than
 *     coarse / 2 pixels, and pass 2's box smooths the steps between cells).
 * coarse 1 is the paper's full-size pass. */
int hfam_foreground_coarse_radius (const HfamForegroundParams *p);

/* Channels per pixel of the passes' interleaved images: alpha, F alpha, B (1 - alpha), padding;
 * the CUDA op uses the same layout. */
#define HFAM_FOREGROUND_CHANNELS 8

int hfam_foreground_params_valid (const HfamForegroundParams *p);

/* Bytes of scratch hfam_foreground takes for a width x height frame with `threads` OpenMP
 * threads (p valid). */
size_t hfam_foreground_scratch_bytes (int width, int height, const HfamForegroundParams *p,
                                      int threads);

/* frame (yuv for NV12 and I420 only) and its alpha (frame's size, alpha_stride floats per row) to
 * out (frame's size; RGBA, BGRA or their premultiplied formats). scratch: memory kept for the next
 * call (NULL: allocated and freed in this one; two images of 8 floats per cell, and each thread of
 * the OpenMP team about 2 radius_small + 9 rows of 8 floats per pixel). 0, or -1 on bad arguments
 * or no memory. */
int hfam_foreground (const HfamFrame *frame, const HfamYuvToRgb *yuv, const float *alpha,
                     int alpha_stride, const HfamForegroundParams *p, const HfamMatteImage *out,
                     HfamScratch *scratch);

#ifdef __cplusplus
}
#endif

#endif
