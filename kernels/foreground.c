/* Blur-fusion on the CPU (foreground.h): the oracle of foreground.cu.
 *
 * Pass 1 runs on the coarse grid: its input cells are averaged from the frame row by row, its
 * box means taken there (a few MB at 1080p), and pass 2 reads each pixel's cell. Each
 * thread of the OpenMP team then takes a band of output rows and runs pass 2 through a ring of
 * rows: its box filter asks for its input rows (alpha, F' alpha, bB (1 - alpha)) in order, and
 * each is made when asked from pass 1's cell means, so no full-size image of either pass is
 * stored: a whole-frame buffer (8 floats per pixel) costs more in page faults and memory
 * traffic than both passes' arithmetic. */
#include "foreground.h"
#include "box.h"
#include "resize.h"

#include <omp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define C HFAM_FOREGROUND_CHANNELS

typedef struct {
  const HfamFrame *frame;
  const HfamYuvToRgb *yuv;
  const float *alpha;
  int alpha_stride;
  const HfamMatteImage *out;
  int coarse, cw, ch;           /* pass 1's grid: cells of coarse x coarse pixels, cw x ch */
  float *cells;                 /* cw x ch x C: pass 1's input, then its means */
  float *cell_means;
} Fusion;

/* One thread's band: pass 2's input rows in the ring. */
typedef struct {
  const Fusion *f;
  float *ring;                  /* ring_rows x w x C */
  int ring_rows;
  int next;                     /* the next row of the ring to make */
  float *rgb;                   /* one row of the frame, 3 w, then fuse_inverses', 2 w: used
                                 * by make_cells, first_out and second_out in turn */
  float *spread;                /* pass 1's bF and bB (3 planes of w each) of cell row
                                 * spread_row, each pixel its cell's */
  int spread_row;
} Band;

int
hfam_foreground_params_valid (const HfamForegroundParams *p)
{
  return p && p->radius_large >= 1 && p->radius_small >= 1 && p->coarse >= 1
         && p->coarse <= HFAM_FOREGROUND_MAX_COARSE;
}

int
hfam_foreground_coarse_radius (const HfamForegroundParams *p)
{
  return p->radius_large / p->coarse > 1 ? p->radius_large / p->coarse : 1;
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

/* F' of one colour channel from the frame's value i, bF, bB and alpha a (clamped) */
static inline float
fuse_channel (float i, float bF, float bB, float a)
{
  return hfam_clamp01 (bF + a * (i - a * bF - (1.0f - a) * bB));
}

/* F' of pixel x into I's place (rgb + 3 x), from its means m (C floats) and their inverses. */
static inline __attribute__ ((always_inline)) void
fuse (const float *restrict m, float inv_f, float inv_b, float alpha, float *restrict rgb)
{
  const float a = hfam_clamp01 (alpha);
  for (int k = 0; k < 3; k++)
    rgb[k] = fuse_channel (rgb[k], m[1 + k] * inv_f, m[4 + k] * inv_b, a);
}

/* Pass 1's input, cell row j: the means of alpha, I alpha and I (1 - alpha) over each cell,
 * summed row by row in order (as the twin sums them). rgb: 3 w floats. */
HFAM_VECTOR_CLONES static void
make_cells (const Fusion *f, int j, float *restrict rgb)
{
  const int w = f->frame->width, s = f->coarse;
  const int y0 = j * s, y1 = y0 + s < f->frame->height ? y0 + s : f->frame->height;
  float *restrict cells = f->cells + (size_t) j * f->cw * C;

  for (size_t i = 0; i < (size_t) f->cw * C; i++)
    cells[i] = 0.0f;
  for (int y = y0; y < y1; y++) {
    const float *restrict alpha = f->alpha + (size_t) y * f->alpha_stride;
    hfam_frame_row_rgb01 (f->frame, f->yuv, y, rgb);
    for (int i = 0; i < f->cw; i++) {
      float *o = cells + (size_t) C * i;
      for (int x = i * s; x < (i + 1) * s && x < w; x++) {
        const float a = hfam_clamp01 (alpha[x]);
        const float r = rgb[3 * x], g = rgb[3 * x + 1], bl = rgb[3 * x + 2];
        o[0] += a;
        o[1] += r * a;
        o[2] += g * a;
        o[3] += bl * a;
        o[4] += r - r * a;
        o[5] += g - g * a;
        o[6] += bl - bl * a;
      }
    }
  }
  for (int i = 0; i < f->cw; i++) {
    const int nx = (i + 1) * s < w ? s : w - i * s;
    const float scale = 1.0f / (float) (nx * (y1 - y0));
    for (int k = 0; k < C; k++)
      cells[(size_t) C * i + k] *= scale;
  }
}

static const float *
cells_in (int j, float *scratch, void *user)
{
  const Fusion *f = user;
  return f->cells + (size_t) j * f->cw * C;
}

static void
cells_out (int j, const float *m, float *scratch, void *user)
{
  const Fusion *f = user;
  memcpy (f->cell_means + (size_t) j * f->cw * C, m, sizeof (float) * f->cw * C);
}

/* Pass 1's bF and bB of cell row j spread to the pixels, each taking its cell's (6 planes of
 * w): made once for the coarse rows of a cell, so that first_out reads them in order rather
 * than gathers them from the cells. inv: 2 cw floats. */
static void
spread_cells (const Fusion *f, int j, float *inv, float *restrict spread)
{
  const int w = f->frame->width, s = f->coarse;
  const float *m = f->cell_means + (size_t) j * f->cw * C;

  fuse_inverses (m, f->cw, inv);
  for (int i = 0; i < f->cw; i++)
    for (int k = 0; k < 3; k++) {
      const float bF = m[(size_t) C * i + 1 + k] * inv[i];
      const float bB = m[(size_t) C * i + 4 + k] * inv[f->cw + i];
      for (int x = i * s; x < (i + 1) * s && x < w; x++) {
        spread[(size_t) k * w + x] = bF;
        spread[(size_t) (3 + k) * w + x] = bB;
      }
    }
}

/* Pass 2's input row y, o, from pass 1's means: each pixel takes its cell's. */
HFAM_VECTOR_CLONES static void
first_out (Band *b, int y, float *restrict o)
{
  const Fusion *f = b->f;
  const int w = f->frame->width;
  const float *restrict alpha = f->alpha + (size_t) y * f->alpha_stride;
  float *restrict rgb = b->rgb;

  if (b->spread_row != y / f->coarse) {
    b->spread_row = y / f->coarse;
    spread_cells (f, b->spread_row, rgb + 3 * (size_t) w, b->spread);
  }
  const float *restrict bF = b->spread, *restrict bB = b->spread + 3 * (size_t) w;
  hfam_frame_row_rgb01 (f->frame, f->yuv, y, rgb);
  for (int x = 0; x < w; x++) {
    const float a = hfam_clamp01 (alpha[x]);
    o[C * x] = a;
    for (int k = 0; k < 3; k++) {
      o[C * x + 4 + k] = bB[(size_t) k * w + x] * (1.0f - a);
      o[C * x + 1 + k] = fuse_channel (rgb[3 * x + k], bF[(size_t) k * w + x],
                                       bB[(size_t) k * w + x], a) * a;
    }
    o[C * x + 7] = 0.0f;
  }
}

static const float *
second_in (int y, float *scratch, void *user)
{
  Band *b = user;
  const size_t row = (size_t) b->f->frame->width * C;

  /* rows are asked for in order, at most 2 r + 2 apart, each twice (added, then dropped) */
  for (; b->next <= y; b->next++)
    first_out (b, b->next, b->ring + (size_t) (b->next % b->ring_rows) * row);
  return b->ring + (size_t) (y % b->ring_rows) * row;
}

/* Bytes of an RGBA/BGRA row from F' (3 per pixel) and alpha, rounded as hfam_matte_write
 * rounds; bgr and premultiply constant in each call, so that the loop has no branch. */
static inline __attribute__ ((always_inline)) void
pack_row (const float *restrict F, const float *restrict alpha, uint8_t *restrict px, int w,
          int bgr, int premultiply)
{
  for (int x = 0; x < w; x++) {
    const int a8 = (int) (hfam_clamp01 (alpha[x]) * 255.0f + 0.5f);
    int c[3];
    for (int k = 0; k < 3; k++) {
      c[k] = (int) (F[3 * x + k] * 255.0f + 0.5f);
      if (premultiply)
        c[k] = (c[k] * a8 + 127) / 255;
    }
    px[4 * x + (bgr ? 2 : 0)] = (uint8_t) c[0];
    px[4 * x + 1] = (uint8_t) c[1];
    px[4 * x + (bgr ? 0 : 2)] = (uint8_t) c[2];
    px[4 * x + 3] = (uint8_t) a8;
  }
}

/* The output row y from pass 2's means m. */
HFAM_VECTOR_CLONES static void
second_out (const Fusion *f, int y, const float *m, float *rgb)
{
  const int w = f->frame->width;
  const float *alpha = f->alpha + (size_t) y * f->alpha_stride;
  const HfamMatteImage *out = f->out;
  uint8_t *px = out->data + (ptrdiff_t) y * out->stride;
  float *inv = rgb + 3 * (size_t) w;

  hfam_frame_row_rgb01 (f->frame, f->yuv, y, rgb);
  fuse_inverses (m, w, inv);
  for (int x = 0; x < w; x++)
    fuse (m + (size_t) C * x, inv[x], inv[w + x], alpha[x], rgb + 3 * x);
  switch (out->format) {
  case HFAM_MATTE_RGBA:
    pack_row (rgb, alpha, px, w, 0, 0);
    break;
  case HFAM_MATTE_BGRA:
    pack_row (rgb, alpha, px, w, 1, 0);
    break;
  case HFAM_MATTE_RGBA_PREMULTIPLIED:
    pack_row (rgb, alpha, px, w, 0, 1);
    break;
  default:
    pack_row (rgb, alpha, px, w, 1, 1);
    break;
  }
}

/* Floats of one band's memory: the ring, a row of colours and inverses, pass 1's spread means,
 * pass 2's iterator. */
static size_t
band_floats (int w, int radius_small)
{
  return (size_t) (2 * radius_small + 2) * w * C + 11 * (size_t) w + HFAM_BOX_ROWS_FLOATS (w, C);
}

/* Output rows [y0, y1) with mem (band_floats). */
static void
band_run (const Fusion *f, const HfamForegroundParams *p, int y0, int y1, float *mem)
{
  const int w = f->frame->width, h = f->frame->height, rs = p->radius_small;
  Band b = { .f = f, .ring = mem, .ring_rows = 2 * rs + 2, .next = y0 - rs < 0 ? 0 : y0 - rs,
             .spread_row = -1 };
  HfamBoxRows second;

  b.rgb = b.ring + (size_t) b.ring_rows * w * C;
  b.spread = b.rgb + 5 * (size_t) w;
  /* (with its memory given, the iterator cannot fail) */
  hfam_box_rows_init (&second, w, h, C, rs, y0, second_in, &b, b.spread + 6 * (size_t) w);
  for (int y = y0; y < y1; y++)
    second_out (f, y, hfam_box_rows_next (&second), b.rgb);
}

/* The coarse grid's side for a frame side n. */
static int
cells_along (int n, int coarse)
{
  return (n + coarse - 1) / coarse;
}

size_t
hfam_foreground_scratch_bytes (int width, int height, const HfamForegroundParams *p,
                               int threads)
{
  const size_t cw = cells_along (width, p->coarse), ch = cells_along (height, p->coarse);

  return sizeof (float) * (2 * cw * ch * C + band_floats (width, p->radius_small) * threads);
}

int
hfam_foreground (const HfamFrame *frame, const HfamYuvToRgb *yuv, const float *alpha,
                 int alpha_stride, const HfamForegroundParams *p, const HfamMatteImage *out,
                 HfamScratch *scratch)
{
  HfamScratch own = { NULL, 0 };
  Fusion f = { .frame = frame, .yuv = yuv, .alpha = alpha, .alpha_stride = alpha_stride,
                .out = out };
  size_t per_band, cells;
  float *mem, *bands;
  int failed;

  if (!hfam_frame_valid (frame) || (frame->format >= HFAM_FRAME_NV12 && !yuv) || !alpha
      || alpha_stride < frame->width || !hfam_foreground_params_valid (p) || !out || !out->data
      || out->format < HFAM_MATTE_RGBA || (unsigned) out->format >= HFAM_MATTE_N_FORMATS
      || out->width != frame->width || out->height != frame->height
      || out->stride < 4 * out->width)
    return -1;
  f.coarse = p->coarse;
  f.cw = cells_along (frame->width, p->coarse);
  f.ch = cells_along (frame->height, p->coarse);
  cells = (size_t) f.cw * f.ch * C;
  per_band = band_floats (frame->width, p->radius_small);
  mem = hfam_scratch_reserve (scratch ? scratch : &own,
                              hfam_foreground_scratch_bytes (frame->width, frame->height, p,
                                                             omp_get_max_threads ()));
  if (!mem)
    return -1;
  f.cells = mem;
  f.cell_means = f.cells + cells;
  bands = f.cell_means + cells;
#pragma omp parallel for if (cells >= HFAM_PARALLEL_MIN_VALUES)
  for (int j = 0; j < f.ch; j++)
    make_cells (&f, j, bands + per_band * omp_get_thread_num ());
  failed = hfam_box_mean (f.cw, f.ch, C, hfam_foreground_coarse_radius (p), cells_in, cells_out,
                          &f) != 0;
  if (!failed) {
#pragma omp parallel if ((int64_t) frame->width * frame->height >= HFAM_PARALLEL_MIN_VALUES)
    {
      const int t = omp_get_thread_num (), nt = omp_get_num_threads (), h = frame->height;
      const int y0 = (int) ((int64_t) h * t / nt), y1 = (int) ((int64_t) h * (t + 1) / nt);
      if (y0 < y1)
        band_run (&f, p, y0, y1, bands + per_band * t);
    }
  }
  hfam_scratch_clear (&own);
  return failed ? -1 : 0;
}
