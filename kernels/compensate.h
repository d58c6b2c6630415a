/* Motion compensation of the kept matte at the inference size, on the CPU (temporal.h's
 * motion-aware blend follows it).
 *
 * The kept matte belongs to the frame before; where the picture moved, the blend would hold
 * the edge where it was. Here the kept matte and its grey plane are first moved to where the
 * picture went, so that moving edges can be held too:
 *   flow: for each block of `block` x `block` pixels of the new grey plane, the displacement
 *     u = (ux, uy) whose kept grey kept_grey(p + u) best matches grey(p) over the block (the
 *     mean of the squared differences, sampling clamped to the image, plus `bias` per pixel of
 *     |ux| + |uy|, so that flat or noisy blocks keep 0). Coarse to fine over a pyramid of
 *     `levels` planes, each the 2 x 2 means of the one above: at the coarsest level every
 *     u in [-search, search]^2; at each finer one u = 2 u_parent + (-1..1)^2 and the zero
 *     vector's 3 x 3 (a small mover that the coarse level missed). At full size a best u other
 *     than 0 is refined to a sub-pixel one by a parabola through the costs at u and its four
 *     neighbours (at most half a pixel each way); a still block keeps exactly 0, so that a still
 *     picture's kept matte is not resampled;
 *   warp: each pixel's displacement is the bilinear interpolation of its four nearest block
 *     centres' (clamped at the borders), and the kept matte and kept grey are sampled there
 *     bilinearly (clamped to the image).
 * The blend then measures the change on the warped grey, so that where the flow is wrong the
 * change is large and the fresh matte is taken, and holds less the pixels near which the
 * picture moved (temporal.h): what the flow gets a little wrong would add up there, frame after
 * frame, as lag. */
#ifndef HFAM_KERNELS_COMPENSATE_H
#define HFAM_KERNELS_COMPENSATE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  int block;    /* block side in pixels at every level, >= 2 */
  int levels;   /* pyramid levels, 1 (full size only) to HFAM_FLOW_MAX_LEVELS */
  int search;   /* the coarsest level's search radius, in its pixels, 1..HFAM_FLOW_MAX_SEARCH */
  float bias;   /* cost added per pixel of |ux| + |uy| (grey in 0..1, squared), >= 0 */
  int spread;   /* hfam_motion_compensate's moved: the largest |u| within this many pixels,
                   0..HFAM_FLOW_MAX_SPREAD */
} HfamFlowParams;

#define HFAM_FLOW_MAX_LEVELS 4
#define HFAM_FLOW_MAX_SEARCH 16
#define HFAM_FLOW_MAX_SPREAD 64

int hfam_flow_params_valid (const HfamFlowParams *p);

/* Blocks per row and column at full size: ceil (w / block), ceil (h / block). */
void hfam_flow_blocks (int w, int h, const HfamFlowParams *p, int *bw, int *bh);

/* Where hfam_block_flow (and its CUDA twin) keeps the pyramid in its scratch, in floats from
 * the scratch's start: level by level, the two planes (grey, then kept) below full size, then
 * the level's integer vectors (ux, then uy: bw x bh ints each, an int per float). */
typedef struct {
  int levels;   /* in use: as many as asked while the coarsest still holds a whole block */
  int w[HFAM_FLOW_MAX_LEVELS], h[HFAM_FLOW_MAX_LEVELS];
  int bw[HFAM_FLOW_MAX_LEVELS], bh[HFAM_FLOW_MAX_LEVELS];
  size_t planes[HFAM_FLOW_MAX_LEVELS];   /* levels > 0: grey here, kept w x h floats on */
  size_t vectors[HFAM_FLOW_MAX_LEVELS];
  size_t floats;                         /* in all */
} HfamFlowLayout;

void hfam_flow_layout (int w, int h, const HfamFlowParams *p, HfamFlowLayout *layout);

/* Floats of scratch hfam_motion_compensate needs for w x h. */
size_t hfam_compensate_scratch_floats (int w, int h, const HfamFlowParams *p);

/* The flow above of grey against kept_grey (both w x h): ux, uy (bw x bh each, row-major, as
 * hfam_flow_blocks) in full-size pixels. `scratch`: hfam_compensate_scratch_floats. 0, or -1
 * on bad arguments. */
int hfam_block_flow (const float *grey, const float *kept_grey, int w, int h,
                     const HfamFlowParams *p, float *ux, float *uy, float *scratch);

/* Planes a and b (w x h; b may be NULL) sampled at p + u(p), u interpolated from the block
 * vectors ux, uy as above, into out_a and out_b (w x h, not the planes); |u(p)| into moved
 * (w x h) unless NULL. 0, or -1 when out of memory or w x h is over INT_MAX. */
int hfam_warp_planes (const float *a, const float *b, int w, int h, int block,
                      const float *ux, const float *uy, float *out_a, float *out_b,
                      float *moved);

/* kept_matte and kept_grey (w x h each) warped in place along the flow of grey against
 * kept_grey, and how far the picture moved around each pixel (the largest |u(q)|, in pixels,
 * over the pixels q within p->spread each way) into moved (w x h) unless NULL: temporal.h's
 * blend holds a moved matte less, and the pixels next to a moving edge too, whose kept matte
 * may hold where the edge was. 0, or -1 on bad arguments or when out of memory (the planes
 * unchanged). */
int hfam_motion_compensate (float *kept_matte, float *kept_grey, const float *grey, int w,
                            int h, const HfamFlowParams *p, float *moved, float *scratch);

#ifdef __cplusplus
}
#endif

#endif
