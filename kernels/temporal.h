/* Temporal smoothing that knows about motion, at the inference size, on the CPU: the oracle of
 * temporal.cu.
 *
 * A plain blend of each matte with the one kept from the frames before (hfam_matte_blend,
 * frame.h) holds still edges steady but drags moving ones behind. Here the blend weight of
 * each pixel comes from how much the picture changed there since the kept matte's frame:
 *   d   = the mean of |grey - kept_grey| over the (2 radius + 1)^2 window around the pixel
 *         (clipped to the image), grey being the frame's mean R'G'B' in 0..1 at the inference
 *         size (hfam_motion_grey);
 *   s   = h * clamp ((moving - d) / (moving - still), 0, 1), h = hold where the kept matte
 *         was not moved, hold_moved where motion compensation (compensate.h) says the
 *         picture moved a pixel or more around it, linearly between;
 *   matte = (1 - s) fresh + s matte.
 * Where the picture is still (d <= still: the camera's noise) the matte is held with weight
 * `hold`; where it moves (d >= moving) the fresh matte replaces it at once; between, linearly.
 * A moved matte is held less (hold_moved): the flow's errors add up over the frames a moving
 * edge is held, and show as lag.
 * The blend also says where the picture stood still: still = hold * clamp ((moving - d) /
 * (moving - still), 0, 1) * (1 - clamp (moved, 0, 1)), the weight with which the refined
 * matte's detail at the frame's size is held too (refine.h's HfamRefineHold): the guided
 * refinement takes the frame's own pixels, and with them the camera's noise, into the
 * matte's edges every frame.
 * CUDA twin: temporal.cuh. */
#ifndef HFAM_KERNELS_TEMPORAL_H
#define HFAM_KERNELS_TEMPORAL_H

#include <stddef.h>

#include "frame.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  float hold;     /* the kept matte's weight where the picture is still, 0..1 */
  float still;    /* picture change (0..1) at or below which the matte is held */
  float moving;   /* ... at or above which the fresh matte is taken, > still */
  int radius;     /* of the window the change is averaged over, >= 0 */
  float hold_moved;  /* the weight where the picture moved a pixel or more around, 0..1 */
} HfamMotionParams;

int hfam_motion_params_valid (const HfamMotionParams *p);

/* The grey plane (w x h, 0..1) of a normalised input tensor (3 planes of w x h, as
 * hfam_frame_preprocess writes them with p): the mean over the channels of
 * (value * std + mean) / scale, which undoes the normalisation. */
void hfam_motion_grey (const float *input, int w, int h, const HfamPreprocessParams *p,
                       float *grey);

/* matte (w x h, in place) blended with fresh as above, grey and kept_grey the two frames'
 * grey planes, moved how far the picture moved around each pixel (w x h, in pixels, as
 * hfam_motion_compensate gives it; NULL: nowhere); still (w x h; NULL: not wanted) the
 * still weights above. 0, or -1 on bad arguments or no memory. */
int hfam_matte_blend_motion (float *matte, const float *fresh, const float *grey,
                             const float *kept_grey, const float *moved, int w, int h,
                             const HfamMotionParams *p, float *still);

#ifdef __cplusplus
}
#endif

#endif
