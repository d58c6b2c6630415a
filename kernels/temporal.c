/* Motion-aware temporal smoothing on the CPU (temporal.h): the oracle of temporal.cu. At the
 * inference size (~512 x 288) it is a few operations per pixel: the change's window means come
 * from box.h. */
#include "temporal.h"
#include "box.h"

#include <math.h>
#include <stdlib.h>

int
hfam_motion_params_valid (const HfamMotionParams *p)
{
  /* (written so that NaN fails) */
  return p && p->hold >= 0.0f && p->hold <= 1.0f && p->still >= 0.0f && p->moving > p->still
         && isfinite (p->moving) && p->radius >= 0 && p->hold_moved >= 0.0f
         && p->hold_moved <= 1.0f;
}

HFAM_VECTOR_CLONES void
hfam_motion_grey (const float *input, int w, int h, const HfamPreprocessParams *p, float *grey)
{
  const size_t n = (size_t) w * h;
  float a[3], b[3];

  /* value * std + mean undoes the normalisation, / scale the input scale, / 3 the mean */
  for (int k = 0; k < 3; k++) {
    a[k] = p->std[k] / (3.0f * p->scale);
    b[k] = p->mean[k] / (3.0f * p->scale);
  }
#pragma omp parallel for if (n >= HFAM_PARALLEL_MIN_VALUES)
  for (size_t i = 0; i < n; i++)
    grey[i] = (input[i] * a[0] + b[0]) + (input[n + i] * a[1] + b[1])
              + (input[2 * n + i] * a[2] + b[2]);
}

typedef struct {
  const float *grey, *kept_grey, *moved;
  float *matte, *still;
  const float *fresh;
  int w;
  HfamMotionParams p;
} Blend;

/* the change, one channel */
HFAM_VECTOR_CLONES static const float *
change_row (int y, float *row, void *user)
{
  const Blend *b = user;
  const float *g = b->grey + (size_t) y * b->w, *k = b->kept_grey + (size_t) y * b->w;

  for (int x = 0; x < b->w; x++)
    row[x] = fabsf (g[x] - k[x]);
  return row;
}

/* One row of the blend; `moved` and `still` NULL or not in each call, so that their tests go
 * and the loop vectorises. */
static inline __attribute__ ((always_inline)) void
blend_pixels (const HfamMotionParams *p, const float *restrict mean,
              const float *restrict fresh, const float *restrict moved, int w,
              float *restrict matte, float *restrict still)
{
  const float span = 1.0f / (p->moving - p->still);

  for (int x = 0; x < w; x++) {
    const float m = moved ? hfam_clamp01 (moved[x]) : 0.0f;
    const float unchanged = hfam_clamp01 ((p->moving - mean[x]) * span);
    const float s = (p->hold + m * (p->hold_moved - p->hold)) * unchanged;
    matte[x] = (1.0f - s) * fresh[x] + s * matte[x];
    if (still)
      still[x] = p->hold * unchanged * (1.0f - m);
  }
}

HFAM_VECTOR_CLONES static void
blend_row (int y, const float *mean, float *scratch, void *user)
{
  const Blend *b = user;
  const size_t row = (size_t) y * b->w;
  float *matte = b->matte + row, *still = b->still ? b->still + row : NULL;
  const float *fresh = b->fresh + row, *moved = b->moved ? b->moved + row : NULL;

  if (moved && still)
    blend_pixels (&b->p, mean, fresh, moved, b->w, matte, still);
  else if (moved)
    blend_pixels (&b->p, mean, fresh, moved, b->w, matte, NULL);
  else if (still)
    blend_pixels (&b->p, mean, fresh, NULL, b->w, matte, still);
  else
    blend_pixels (&b->p, mean, fresh, NULL, b->w, matte, NULL);
}

int
hfam_matte_blend_motion (float *matte, const float *fresh, const float *grey,
                         const float *kept_grey, const float *moved, int w, int h,
                         const HfamMotionParams *p, float *still)
{
  const Blend b = { grey, kept_grey, moved, matte, still, fresh, w,
                    p ? *p : (HfamMotionParams) { 0 } };

  if (!matte || !fresh || !grey || !kept_grey || w < 1 || h < 1
      || !hfam_motion_params_valid (p))
    return -1;
  return hfam_box_mean (w, h, 1, p->radius, change_row, blend_row, (void *) &b);
}
