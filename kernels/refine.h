/* Matte refinement at the frame's resolution on the CPU, guided by the frame: the fast guided
 * filter (He, Sun, Tang, "Guided image filtering", TPAMI 2013; He & Sun, "Fast guided filter",
 * 2015), and the key levels of broadcast keyers. CUDA twin: refine.cuh.
 *
 * The filter models alpha near each pixel as an affine function of the guide I (the frame's
 * R'G'B' in 0..1, or its luma for a grey guide): alpha ~ a . I + b, fitted by least squares in
 * every (2r + 1)^2 window of the statistics' grid, a regularised by eps:
 *   a = (cov(I, I) + eps Id)^-1 cov(I, p),   b = mean(p) - a . mean(I)
 * with p the low-resolution alpha. The fits are averaged over the windows covering each pixel
 * (box means again), then bilinearly enlarged to the frame's size (kernels/resize.c's filter,
 * PyTorch's bilinear with align_corners=False) and applied to the full-resolution guide:
 *   q(x, y) = A(x, y) . I(x, y) + B(x, y)
 * so the matte's edges follow the frame's where the low-resolution matte only had a ramp.
 *
 * Steps, and the twin's:
 *   1. the guide at the statistics' size: the frame through hfam_preprocess_rgb8 (or
 *      hfam_frame_preprocess for YUV) with order R, G, B, scale 1, mean 0, std 1: value / 255,
 *      antialiased; grey: luma = 0.299 R + 0.587 G + 0.114 B of those;
 *   2. p: alpha resized to the statistics' size (hfam_resize_plane; as is when the sizes match);
 *   3. box means (box.h) of I, p, I p and the products I_i I_j (upper triangle), radius r;
 *   4. a, b per pixel (the 3x3 system by its adjugate), then their box means, radius r;
 *   5. at the frame's size: q as above, clamped to 0..1, then the key levels.
 * Over time (hfam_refine_held), step 5 holds q's detail over alpha where the picture stood
 * still:
 *   d = q - u,  d' = d + S (held - d),  held = d',  out = the key levels of clamp (u + d')
 * with u alpha and S the still weights of temporal.h's blend, enlarged to the frame's size as
 * the coefficients are, and held the last frame's d': the camera's noise in the guide moves
 * the refined edges every frame even where the smoothed matte holds still. Only the detail
 * is held: alpha itself was held at its own size already, and holding it twice would make a
 * moving person's matte lag. */
#ifndef HFAM_KERNELS_REFINE_H
#define HFAM_KERNELS_REFINE_H

#include <stddef.h>

#include "box.h"
#include "frame.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Black and white clip points of a matte: values below black go to 0, above white to 1,
 * linear between: a' = clamp ((a - black) * (1 / (white - black)), 0, 1). Valid when
 * 0 <= black < white <= 1; { 0, 1 } leaves a matte in 0..1 as it is. */
typedef struct {
  float black, white;
} HfamKeyLevels;

int hfam_key_levels_valid (const HfamKeyLevels *levels);

/* n floats in place: clamped to 0..1, then the levels (NULL: only the clamp). */
void hfam_key_levels_apply (float *alpha, size_t n, const HfamKeyLevels *levels);

typedef struct {
  int radius;        /* of the box windows at the statistics' size, >= 1 */
  float eps;         /* regulariser (guide in 0..1, so eps ~ a variance), > 0: larger smooths */
  int stats_width;   /* the statistics' size; 0 x 0: alpha's own size */
  int stats_height;
  int colour;        /* 1: R, G, B guide (a 3x3 system per pixel); 0: grey (luma) guide */
} HfamRefineParams;

/* Channels of the statistics' and the coefficients' interleaved images (padded to what the box
 * passes vectorise); the CUDA op uses the same layouts. */
#define HFAM_REFINE_STATS_CHANNELS(colour) ((colour) ? 16 : 4)
#define HFAM_REFINE_COEF_CHANNELS(colour) ((colour) ? 4 : 2)

/* Whether p is usable with alpha aw x ah (the statistics' size must be 1..the frame's). */
int hfam_refine_params_valid (const HfamRefineParams *p, int aw, int ah, int frame_width,
                              int frame_height);

/* The refined matte's detail held over time at the frame's size (hfam_refine_held). */
typedef struct {
  const float *still;  /* the still weights at alpha's size (aw x ah, 0..1); NULL: none,
                        * held only takes this frame's detail (a restart) */
  float *held;         /* the frame's size, held_stride floats per row: the last frame's held
                        * detail in (unless still is NULL), this frame's out */
  int held_stride;
} HfamRefineHold;

/* Bytes of scratch hfam_refine and hfam_refine_held take with `threads` OpenMP threads (p
 * valid). */
size_t hfam_refine_scratch_bytes (int aw, int ah, int frame_width, const HfamRefineParams *p,
                                  int threads);

/* alpha (aw x ah, tightly packed; the network's alpha_p) refined with `frame` as the guide
 * (yuv for NV12 and I420 only) into out (frame->width x frame->height, out_stride floats per
 * row), clamped to 0..1, then the key levels (NULL: none). scratch: memory kept for the next
 * call (NULL: allocated and freed in this one; about 9 floats per pixel of the statistics).
 * 0, or -1 on bad arguments or no memory. */
int hfam_refine (const float *alpha, int aw, int ah, const HfamFrame *frame,
                 const HfamYuvToRgb *yuv, const HfamRefineParams *p,
                 const HfamKeyLevels *levels, float *out, int out_stride, HfamScratch *scratch);

/* hfam_refine, then held over time as above (hold NULL: as hfam_refine). hold->held must not
 * overlap out. */
int hfam_refine_held (const float *alpha, int aw, int ah, const HfamFrame *frame,
                      const HfamYuvToRgb *yuv, const HfamRefineParams *p,
                      const HfamKeyLevels *levels, const HfamRefineHold *hold, float *out,
                      int out_stride, HfamScratch *scratch);

#ifdef __cplusplus
}
#endif

#endif
