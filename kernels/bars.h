/* Black bars along the frame's edges (letterbox, pillarbox) cleared from the matte, on the
 * CPU: the oracle of bars.cu.
 *
 * Video that was made for another aspect ratio carries black bars, and the network takes a
 * bar beside the person for part of the person (a bottom bar under a talking head comes out
 * at alpha 0.8). A bar is found on the frame's grey plane at the inference size
 * (temporal.h's hfam_motion_grey, 0..1): a row whose every value is at or under `black` is a
 * bar row, and so is each row after it inwards from the top edge until the first that is not;
 * the same from the bottom edge, and with columns from the left and the right edges. A row
 * that a bar's edge cuts after the resize is a mix of bar and picture, so it is not a bar row:
 * the matte keeps it. The matte is set to 0 over the bars. Flat black across the frame's whole
 * width or height is seldom the person; a frame that is black all over is cleared whole.
 *
 * At the frame's size the resize (and the refinement) would carry the matte of the picture's
 * edge row a few pixels into the bar, so the outputs are cleared over the frame's own bars too:
 * each edge's bar found at the inference size covers the frame's rows (columns) that lie
 * wholly under it, and then widens over the frame's next rows (columns) while they are dark
 * throughout (their R'G'B' mean over 255 at or under `black`), so that it ends where the
 * frame's bar does.
 * CUDA twin: bars.cuh. */
#ifndef HFAM_KERNELS_BARS_H
#define HFAM_KERNELS_BARS_H

#include "frame.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  float black;  /* grey value (0..1) at or under which a pixel is a bar's */
} HfamBarParams;

/* How many rows or columns the bars cover from each edge; top + bottom <= h and
 * left + right <= w (rows are taken from the top first, columns from the left). */
typedef struct {
  int top, bottom, left, right;
} HfamBars;

int hfam_bar_params_valid (const HfamBarParams *p);

/* The bars of grey (w x h) as above. */
void hfam_find_bars (const float *grey, int w, int h, const HfamBarParams *p, HfamBars *bars);

/* matte (w x h, in place) set to 0 over the bars that grey (w x h) has; `found` (may be NULL)
 * receives them. 0, or -1 on bad arguments. */
int hfam_matte_clear_bars (float *matte, const float *grey, int w, int h,
                           const HfamBarParams *p, HfamBars *found);

/* plane (w x h floats, tightly packed, in place) set to 0 over `bars`. */
void hfam_plane_zero_bars (float *plane, int w, int h, const HfamBars *bars);

/* The bars of a frame of fw x fh from those found at the inference size (iw x ih) as above;
 * `frame` (host memory, fw x fh; `yuv` for NV12 and I420) may be NULL: the bars then only
 * cover what lies wholly under the inference size's. An edge without a bar there has none. */
void hfam_frame_find_bars (const HfamFrame *frame, const HfamYuvToRgb *yuv,
                           const HfamBars *inference, int iw, int ih, int fw, int fh,
                           const HfamBarParams *p, HfamBars *bars);

/* An output image of the frame's size cleared over `bars`: its alpha 0, and with the
 * premultiplied formats its colours too (what a matte of 0 writes); the straight formats keep
 * their colours. 0, or -1 on bad arguments. */
int hfam_matte_image_clear_bars (const HfamMatteImage *out, const HfamBars *bars);

#ifdef __cplusplus
}
#endif

#endif
