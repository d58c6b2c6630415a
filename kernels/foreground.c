/* Blur-fusion on the CPU (foreground.h): the oracle of foreground.cu.
 *
 * Each thread of the OpenMP team takes a band of rows and chains the two passes through a ring
 * of rows: pass 2's box filter asks for its input rows (alpha, F' alpha, bB (1 - alpha)) in
 * order, and pass 1 makes each from its means when asked, its own input rows built from the
 * frame and alpha on the fly. Pass 2 only ever needs its last 2 r + 2 rows, so no image of
 * either pass is stored: a whole-frame buffer (8 floats per pixel) costs more in page faults
 * and memory traffic than both passes' arithmetic. */
#include "foreground.h"
#include "box.h"
#include "resize.h"

#include <omp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define C HFAM_FOREGROUND_CHANNELS

typedef struct {
  const HfamFrame *frame;
  const HfamYuvToRgb *yuv;
  const float *alpha;
  int alpha_stride;
  const HfamMatteImage *out;
} Fusion;

/* One thread's band: pass 1 running ahead of pass 2, pass 2's input rows in the ring. */
typedef struct {
  const Fusion *f;
  HfamBoxRows first;
  float *ring;                  /* ring_rows x w x C */
  int ring_rows;
  float *rgb;                   /* one row of the frame, 3 w, then fuse_inverses', 2 w: used
                                 * by first_in, first_out and second_out in turn */
} Band;

int
hfam_foreground_params_valid (const HfamForegroundParams *p)
{
  return p && p->radius_large >= 1 && p->radius_small >= 1;
}

/* The two divisions of fuse for a row of means, in a loop of their own that vectorises;
 * inv: 2 w floats. */
static inline void
fuse_inverses (const float *m, int w, float *inv)
{
  for (int x = 0; x < w; x++)
    inv[x] = m[(size_t) C * x];
  for (int x = 0; x < w; x++) {
    const float mean_alpha = inv[x];
    inv[x] = 1.0f / (mean_alpha + 1e-5f);
    inv[w + x] = 1.0f / (1.0f - mean_alpha + 1e-5f);
  }
}

/* F' of one pixel from the pass's means m, alpha a and the frame's colour I; bB too. inv_f,
 * inv_b: from fuse_inverses. */
static inline void
fuse (const float *m, float inv_f, float inv_b, float a, const float I[3], float F[3],
      float bB[3])
{
  for (int k = 0; k < 3; k++) {
    const float bF = m[1 + k] * inv_f;
    bB[k] = m[4 + k] * inv_b;
    F[k] = hfam_clamp01 (bF + a * (I[k] - a * bF - (1.0f - a) * bB[k]));
  }
}

/* Pass 1's input: alpha, I alpha, I (1 - alpha). */
HFAM_VECTOR_CLONES static const float *
first_in (int y, float *restrict row, void *user)
{
  const Band *b = user;
  const Fusion *f = b->f;
  const int w = f->frame->width;
  const float *restrict alpha = f->alpha + (size_t) y * f->alpha_stride;
  float *restrict rgb = b->rgb;

  hfam_frame_row_rgb01 (f->frame, f->yuv, y, rgb);
  for (int x = 0; x < w; x++) {
    const float a = hfam_clamp01 (alpha[x]);
    const float r = rgb[3 * x], g = rgb[3 * x + 1], bl = rgb[3 * x + 2];
    float *o = row + (size_t) C * x;
    o[0] = a;
    o[1] = r * a;
    o[2] = g * a;
    o[3] = bl * a;
    o[4] = r - r * a;
    o[5] = g - g * a;
    o[6] = bl - bl * a;
    o[7] = 0.0f;
  }
  return row;
}

/* Pass 2's input row y, o, from pass 1's means m. */
HFAM_VECTOR_CLONES static void
first_out (const Fusion *f, int y, const float *m, float *rgb, float *o)
{
  const int w = f->frame->width;
  const float *alpha = f->alpha + (size_t) y * f->alpha_stride;
  float *inv = rgb + 3 * (size_t) w;

  hfam_frame_row_rgb01 (f->frame, f->yuv, y, rgb);
  fuse_inverses (m, w, inv);
  for (int x = 0; x < w; x++, m += C, o += C) {
    const float a = hfam_clamp01 (alpha[x]);
    float F[3], bB[3];
    fuse (m, inv[x], inv[w + x], a, rgb + 3 * x, F, bB);
    o[0] = a;
    for (int k = 0; k < 3; k++) {
      o[1 + k] = F[k] * a;
      o[4 + k] = bB[k] * (1.0f - a);
    }
    o[7] = 0.0f;
  }
}

static const float *
second_in (int y, float *scratch, void *user)
{
  Band *b = user;
  const size_t row = (size_t) b->f->frame->width * C;

  /* rows are asked for in order, at most 2 r + 2 apart */
  while (b->first.y <= y) {
    const int made = b->first.y;
    const float *m = hfam_box_rows_next (&b->first);
    first_out (b->f, made, m, b->rgb, b->ring + (size_t) (made % b->ring_rows) * row);
  }
  return b->ring + (size_t) (y % b->ring_rows) * row;
}

/* The output row y from pass 2's means m. */
HFAM_VECTOR_CLONES static void
second_out (const Fusion *f, int y, const float *m, float *rgb)
{
  const int w = f->frame->width;
  const float *alpha = f->alpha + (size_t) y * f->alpha_stride;
  const HfamMatteImage *out = f->out;
  const int bgr = out->format == HFAM_MATTE_BGRA || out->format == HFAM_MATTE_BGRA_PREMULTIPLIED;
  const int premultiply = out->format == HFAM_MATTE_RGBA_PREMULTIPLIED
                          || out->format == HFAM_MATTE_BGRA_PREMULTIPLIED;
  uint8_t *px = out->data + (ptrdiff_t) y * out->stride;
  float *inv = rgb + 3 * (size_t) w;

  hfam_frame_row_rgb01 (f->frame, f->yuv, y, rgb);
  fuse_inverses (m, w, inv);
  for (int x = 0; x < w; x++, m += C, px += 4) {
    const float a = hfam_clamp01 (alpha[x]);
    const int a8 = (int) (a * 255.0f + 0.5f);
    float F[3], bB[3];
    int c[3];
    fuse (m, inv[x], inv[w + x], a, rgb + 3 * x, F, bB);
    for (int k = 0; k < 3; k++) {
      c[k] = (int) (F[k] * 255.0f + 0.5f);
      if (premultiply)
        c[k] = (c[k] * a8 + 127) / 255;
    }
    px[bgr ? 2 : 0] = (uint8_t) c[0];
    px[1] = (uint8_t) c[1];
    px[bgr ? 0 : 2] = (uint8_t) c[2];
    px[3] = (uint8_t) a8;
  }
}

/* Floats of one band's memory: the ring, a row of colours and inverses, the two iterators. */
static size_t
band_floats (int w, int radius_small)
{
  return (size_t) (2 * radius_small + 2) * w * C + 5 * (size_t) w
         + 2 * HFAM_BOX_ROWS_FLOATS (w, C);
}

/* Output rows [y0, y1) with mem (band_floats). */
static void
band_run (const Fusion *f, const HfamForegroundParams *p, int y0, int y1, float *mem)
{
  const int w = f->frame->width, h = f->frame->height, rs = p->radius_small;
  const int first_row = y0 - rs < 0 ? 0 : y0 - rs;
  Band b = { f, { 0 }, mem, 2 * rs + 2, NULL };
  float *first_mem = mem + (size_t) b.ring_rows * w * C + 5 * (size_t) w;
  HfamBoxRows second;

  b.rgb = b.ring + (size_t) b.ring_rows * w * C;
  /* (with their memory given, the iterators cannot fail) */
  hfam_box_rows_init (&b.first, w, h, C, p->radius_large, first_row, first_in, &b, first_mem);
  hfam_box_rows_init (&second, w, h, C, rs, y0, second_in, &b,
                      first_mem + HFAM_BOX_ROWS_FLOATS (w, C));
  for (int y = y0; y < y1; y++)
    second_out (f, y, hfam_box_rows_next (&second), b.rgb);
}

size_t
hfam_foreground_scratch_bytes (int width, const HfamForegroundParams *p, int threads)
{
  return sizeof (float) * band_floats (width, p->radius_small) * threads;
}

int
hfam_foreground (const HfamFrame *frame, const HfamYuvToRgb *yuv, const float *alpha,
                 int alpha_stride, const HfamForegroundParams *p, const HfamMatteImage *out,
                 HfamScratch *scratch)
{
  const Fusion f = { frame, yuv, alpha, alpha_stride, out };
  HfamScratch own = { NULL, 0 };
  size_t per_band;
  float *mem;

  if (!hfam_frame_valid (frame) || (frame->format >= HFAM_FRAME_NV12 && !yuv) || !alpha
      || alpha_stride < frame->width || !hfam_foreground_params_valid (p) || !out || !out->data
      || out->format < HFAM_MATTE_RGBA || (unsigned) out->format >= HFAM_MATTE_N_FORMATS
      || out->width != frame->width || out->height != frame->height
      || out->stride < 4 * out->width)
    return -1;
  per_band = band_floats (frame->width, p->radius_small);
  mem = hfam_scratch_reserve (scratch ? scratch : &own,
                              hfam_foreground_scratch_bytes (frame->width, p,
                                                             omp_get_max_threads ()));
  if (!mem)
    return -1;
#pragma omp parallel if ((int64_t) frame->width * frame->height >= HFAM_PARALLEL_MIN_VALUES)
  {
    const int t = omp_get_thread_num (), nt = omp_get_num_threads (), h = frame->height;
    const int y0 = (int) ((int64_t) h * t / nt), y1 = (int) ((int64_t) h * (t + 1) / nt);
    if (y0 < y1)
      band_run (&f, p, y0, y1, mem + per_band * t);
  }
  hfam_scratch_clear (&own);
  return 0;
}
