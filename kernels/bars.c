/* Black bars cleared from the matte (bars.h). The scan stops at each edge's first row or
 * column that is not a bar's, so a frame without bars costs four rows and columns read. */
#include "bars.h"

#include <string.h>

int
hfam_bar_params_valid (const HfamBarParams *p)
{
  /* (written so that NaN fails too) */
  return p && p->black >= 0.0f && p->black <= 1.0f;
}

static int
dark_row (const float *grey, int w, int y, float black)
{
  const float *row = grey + (size_t) y * w;
  for (int x = 0; x < w; x++)
    if (!(row[x] <= black))
      return 0;
  return 1;
}

static int
dark_column (const float *grey, int w, int h, int x, float black)
{
  for (int y = 0; y < h; y++)
    if (!(grey[(size_t) y * w + x] <= black))
      return 0;
  return 1;
}

void
hfam_find_bars (const float *grey, int w, int h, const HfamBarParams *p, HfamBars *bars)
{
  HfamBars b = { 0, 0, 0, 0 };

  while (b.top < h && dark_row (grey, w, b.top, p->black))
    b.top++;
  while (b.top + b.bottom < h && dark_row (grey, w, h - 1 - b.bottom, p->black))
    b.bottom++;
  while (b.left < w && dark_column (grey, w, h, b.left, p->black))
    b.left++;
  while (b.left + b.right < w && dark_column (grey, w, h, w - 1 - b.right, p->black))
    b.right++;
  *bars = b;
}

void
hfam_plane_zero_bars (float *plane, int w, int h, const HfamBars *b)
{
  memset (plane, 0, sizeof (float) * (size_t) b->top * w);
  memset (plane + (size_t) (h - b->bottom) * w, 0, sizeof (float) * (size_t) b->bottom * w);
  if (b->left || b->right)
    for (int y = b->top; y < h - b->bottom; y++) {
      float *row = plane + (size_t) y * w;
      memset (row, 0, sizeof (float) * b->left);
      memset (row + w - b->right, 0, sizeof (float) * b->right);
    }
}

int
hfam_matte_clear_bars (float *matte, const float *grey, int w, int h, const HfamBarParams *p,
                       HfamBars *found)
{
  HfamBars b;

  if (!matte || !grey || w < 1 || h < 1 || !hfam_bar_params_valid (p))
    return -1;
  hfam_find_bars (grey, w, h, p, &b);
  hfam_plane_zero_bars (matte, w, h, &b);
  if (found)
    *found = b;
  return 0;
}

static int
dark_pixel (const HfamFrame *frame, const HfamYuvToRgb *yuv, int x, int y, float black)
{
  float rgb[3];

  hfam_frame_pixel_rgb (frame, yuv, x, y, rgb);
  return (rgb[0] + rgb[1] + rgb[2]) * (1.0f / 765.0f) <= black;
}

/* Whether pixels [from, to) of row (column) `at` of the frame are all dark. */
static int
dark_line (const HfamFrame *frame, const HfamYuvToRgb *yuv, int at, int from, int to,
           int column, float black)
{
  for (int k = from; k < to; k++)
    if (!(column ? dark_pixel (frame, yuv, at, k, black) : dark_pixel (frame, yuv, k, at, black)))
      return 0;
  return 1;
}

/* The frame's rows (or columns) of n wholly under `count` of the inference size's `of`. */
static int
under (int count, int n, int of)
{
  return (int) ((int64_t) count * n / of);
}

void
hfam_frame_find_bars (const HfamFrame *frame, const HfamYuvToRgb *yuv,
                      const HfamBars *inference, int iw, int ih, int fw, int fh,
                      const HfamBarParams *p, HfamBars *bars)
{
  HfamBars b = { under (inference->top, fh, ih), under (inference->bottom, fh, ih),
                 under (inference->left, fw, iw), under (inference->right, fw, iw) };

  if (frame) {
    if (inference->top)
      while (b.top + b.bottom < fh && dark_line (frame, yuv, b.top, 0, fw, 0, p->black))
        b.top++;
    if (inference->bottom)
      while (b.top + b.bottom < fh
             && dark_line (frame, yuv, fh - 1 - b.bottom, 0, fw, 0, p->black))
        b.bottom++;
    if (inference->left)
      while (b.left + b.right < fw
             && dark_line (frame, yuv, b.left, b.top, fh - b.bottom, 1, p->black))
        b.left++;
    if (inference->right)
      while (b.left + b.right < fw
             && dark_line (frame, yuv, fw - 1 - b.right, b.top, fh - b.bottom, 1, p->black))
        b.right++;
  }
  *bars = b;
}

/* Pixels [x0, x1) of an output row cleared: whole, or (alpha_only) their fourth byte. */
static void
clear_pixels (uint8_t *row, int x0, int x1, int bpp, int alpha_only)
{
  if (!alpha_only) {
    memset (row + (size_t) x0 * bpp, 0, (size_t) (x1 - x0) * bpp);
    return;
  }
  for (int x = x0; x < x1; x++)
    row[(size_t) x * 4 + 3] = 0;
}

int
hfam_matte_image_clear_bars (const HfamMatteImage *out, const HfamBars *b)
{
  const int bpp = out ? hfam_matte_bytes_per_pixel (out->format) : 0;

  if (bpp <= 0 || !out->data || !b || b->top < 0 || b->bottom < 0 || b->left < 0
      || b->right < 0 || b->top + b->bottom > out->height || b->left + b->right > out->width)
    return -1;
  const int premultiplied = out->format == HFAM_MATTE_RGBA_PREMULTIPLIED
                            || out->format == HFAM_MATTE_BGRA_PREMULTIPLIED;
  /* a matte of 0 clears all of a key's bytes, a straight colour format's alpha (its fourth
   * byte), or all four premultiplied */
  const int alpha_only = bpp == 4 && !premultiplied;
  for (int y = 0; y < out->height; y++) {
    uint8_t *row = out->data + (size_t) y * out->stride;
    if (y < b->top || y >= out->height - b->bottom) {
      clear_pixels (row, 0, out->width, bpp, alpha_only);
    } else {
      clear_pixels (row, 0, b->left, bpp, alpha_only);
      clear_pixels (row, out->width - b->right, out->width, bpp, alpha_only);
    }
  }
  return 0;
}
