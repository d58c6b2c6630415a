/* Box means (box.h): a running sum of rows down each thread's band, then prefix sums along
 * each row of column sums. The horizontal pass is sequential along x but runs over the c
 * channels of a pixel at once, so the callers interleave their channels (and pad them to 4, 8
 * or 16; these and 1 get a loop of their own the compiler vectorises). */
#include "box.h"
#include "resize.h"

#include <omp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* acc[i] += add[i] - sub[i] (either may be NULL) */
HFAM_VECTOR_CLONES static void
slide (float *acc, const float *add, const float *sub, size_t n)
{
  if (add && sub)
    for (size_t i = 0; i < n; i++)
      acc[i] += add[i] - sub[i];
  else if (add)
    for (size_t i = 0; i < n; i++)
      acc[i] += add[i];
  else if (sub)
    for (size_t i = 0; i < n; i++)
      acc[i] -= sub[i];
}

/* The means of one row from its column sums `col` (rows summed: ny); prefix: (w + 1) * c. */
static inline __attribute__ ((always_inline)) void
row_means (const float *col, float *prefix, float *mean, int w, int c, int r, int ny)
{
  /* the windows that fit inside the row: one scale, and a loop over contiguous values */
  const int inner_lo = r < w ? r : w, inner_hi = w - r - 1;
  const float inner_scale = 1.0f / (float) ((2 * r + 1) * ny);

  for (int k = 0; k < c; k++)
    prefix[k] = 0.0f;
  for (int x = 0; x < w; x++)
    for (int k = 0; k < c; k++)
      prefix[(size_t) (x + 1) * c + k] = prefix[(size_t) x * c + k] + col[(size_t) x * c + k];
  for (int x = 0; x < w; x++) {
    if (x == inner_lo && inner_lo <= inner_hi) {
      const size_t ahead = (size_t) (r + 1) * c, behind = (size_t) r * c;
      for (size_t i = (size_t) inner_lo * c; i < (size_t) (inner_hi + 1) * c; i++)
        mean[i] = (prefix[i + ahead] - prefix[i - behind]) * inner_scale;
      x = inner_hi;
      continue;
    }
    const int lo = x - r < 0 ? 0 : x - r, hi = x + r + 1 > w ? w : x + r + 1;
    const float scale = 1.0f / (float) ((hi - lo) * ny);
    for (int k = 0; k < c; k++)
      mean[(size_t) x * c + k] = (prefix[(size_t) hi * c + k] - prefix[(size_t) lo * c + k])
                                 * scale;
  }
}

HFAM_VECTOR_CLONES static void
row_means_any (const float *col, float *prefix, float *mean, int w, int c, int r, int ny)
{
  switch (c) {
  case 1:
    row_means (col, prefix, mean, w, 1, r, ny);
    break;
  case 4:
    row_means (col, prefix, mean, w, 4, r, ny);
    break;
  case 8:
    row_means (col, prefix, mean, w, 8, r, ny);
    break;
  case 16:
    row_means (col, prefix, mean, w, 16, r, ny);
    break;
  default:
    row_means (col, prefix, mean, w, c, r, ny);
    break;
  }
}

int
hfam_box_rows_init (HfamBoxRows *b, int w, int h, int c, int r, int y0, HfamBoxRowIn in,
                    void *user, float *mem)
{
  const size_t n = (size_t) w * c;

  memset (b, 0, sizeof *b);
  if (w < 1 || h < 1 || c < 1 || r < 0 || y0 < 0 || y0 >= h || !in)
    return -1;
  b->owned = !mem;
  if (!(b->col = mem ? mem : malloc (sizeof (float) * HFAM_BOX_ROWS_FLOATS (w, c))))
    return -1;
  b->scratch_add = b->col + n;
  b->scratch_sub = b->scratch_add + n;
  b->mean = b->scratch_sub + n;
  b->prefix = b->mean + n;
  b->w = w;
  b->h = h;
  b->c = c;
  b->r = r;
  b->y = y0;
  b->in = in;
  b->user = user;
  b->y0 = y0;
  /* the sums of y0's window; later rows slide it */
  memset (b->col, 0, sizeof (float) * n);
  for (int t = y0 - r < 0 ? 0 : y0 - r; t <= y0 + r && t < h; t++)
    slide (b->col, in (t, b->scratch_add, user), NULL, n);
  return 0;
}

const float *
hfam_box_rows_next (HfamBoxRows *b)
{
  const int y = b->y, r = b->r, h = b->h;
  const int ny = (y + r >= h ? h - 1 : y + r) - (y - r < 0 ? 0 : y - r) + 1;

  if (y > b->y0)
    slide (b->col, y + r < h ? b->in (y + r, b->scratch_add, b->user) : NULL,
           y - r - 1 >= 0 ? b->in (y - r - 1, b->scratch_sub, b->user) : NULL,
           (size_t) b->w * b->c);
  row_means_any (b->col, b->prefix, b->mean, b->w, b->c, r, ny);
  b->y++;
  return b->mean;
}

void
hfam_box_rows_clear (HfamBoxRows *b)
{
  if (b->owned)
    free (b->col);
  b->col = NULL;
}

/* Rows [y0, y1) of the means; 0, or -1 when the thread's buffers cannot be had. */
static int
box_band (int w, int h, int c, int r, int y0, int y1, HfamBoxRowIn in, HfamBoxRowOut out,
          void *user)
{
  HfamBoxRows b;
  float *scratch_out = malloc (sizeof (float) * w * (size_t) c);

  if (!scratch_out || hfam_box_rows_init (&b, w, h, c, r, y0, in, user, NULL) != 0) {
    free (scratch_out);
    return -1;
  }
  for (int y = y0; y < y1; y++)
    out (y, hfam_box_rows_next (&b), scratch_out, user);
  hfam_box_rows_clear (&b);
  free (scratch_out);
  return 0;
}

int
hfam_box_mean (int w, int h, int c, int r, HfamBoxRowIn in, HfamBoxRowOut out, void *user)
{
  int failed = 0;

  if (w < 1 || h < 1 || c < 1 || r < 0 || !in || !out)
    return -1;
  /* each thread takes a band of rows; its running sum starts afresh at the band's top */
#pragma omp parallel if ((int64_t) w * h * c >= HFAM_PARALLEL_MIN_VALUES)
  {
    const int t = omp_get_thread_num (), nt = omp_get_num_threads ();
    const int y0 = (int) ((int64_t) h * t / nt), y1 = (int) ((int64_t) h * (t + 1) / nt);
    if (y0 < y1 && box_band (w, h, c, r, y0, y1, in, out, user) != 0) {
#pragma omp atomic write
      failed = 1;
    }
  }
  return failed ? -1 : 0;
}

/* (bpp and the offsets constant in each call: the loop vectorises) */
static inline __attribute__ ((always_inline)) void
packed_row (const uint8_t *p, int width, int bpp, int ri, int bi, float *rgb)
{
  const float s = 1.0f / 255.0f;
  for (int x = 0; x < width; x++) {
    rgb[3 * x] = p[bpp * x + ri] * s;
    rgb[3 * x + 1] = p[bpp * x + 1] * s;
    rgb[3 * x + 2] = p[bpp * x + bi] * s;
  }
}

void *
hfam_scratch_reserve (HfamScratch *s, size_t bytes)
{
  if (s->bytes < bytes) {
    free (s->mem);
    s->bytes = 0;
    if (!(s->mem = malloc (bytes)))
      return NULL;
    s->bytes = bytes;
  }
  return s->mem;
}

void
hfam_scratch_clear (HfamScratch *s)
{
  free (s->mem);
  s->mem = NULL;
  s->bytes = 0;
}

HFAM_VECTOR_CLONES void
hfam_frame_row_rgb01 (const HfamFrame *f, const HfamYuvToRgb *yuv, int y, float *rgb)
{
  const uint8_t *p = f->planes[0] + (ptrdiff_t) y * f->strides[0];

  switch (f->format) {
  case HFAM_FRAME_RGB:
    packed_row (p, f->width, 3, 0, 2, rgb);
    return;
  case HFAM_FRAME_BGR:
    packed_row (p, f->width, 3, 2, 0, rgb);
    return;
  case HFAM_FRAME_RGBA:
    packed_row (p, f->width, 4, 0, 2, rgb);
    return;
  case HFAM_FRAME_BGRA:
    packed_row (p, f->width, 4, 2, 0, rgb);
    return;
  default:
    hfam_frame_row_rgb (f, yuv, y, 1.0f / 255.0f, rgb);
  }
}
