/* Frames in and out of the network on the CPU (frame.h): the oracles of preprocess.cu and
 * matte.cu. Written for clarity: whole float planes, then hfam_resize_plane. */
#include "frame.h"
#include "box.h"
#include "resize.h"

#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

void
hfam_yuv_to_rgb_init (HfamYuvToRgb *c, HfamColorMatrix matrix, HfamColorRange range)
{
  const double kr = matrix == HFAM_MATRIX_BT709 ? 0.2126 : 0.299;
  const double kb = matrix == HFAM_MATRIX_BT709 ? 0.0722 : 0.114;
  const double kg = 1.0 - kr - kb;
  const int limited = range == HFAM_RANGE_LIMITED;
  const double ys = limited ? 255.0 / 219.0 : 1.0, yoff = limited ? 16.0 : 0.0;
  const double cs = limited ? 255.0 / 224.0 : 1.0;
  /* R = Y' + 2 (1 - kr) Cr, B = Y' + 2 (1 - kb) Cb, G = (Y' - kr R - kb B) / kg */
  const double rv = cs * 2.0 * (1.0 - kr), bu = cs * 2.0 * (1.0 - kb);
  const double gu = -bu * kb / kg, gv = -rv * kr / kg;
  const double m[9] = { ys, 0.0, rv, ys, gu, gv, ys, bu, 0.0 };

  for (int i = 0; i < 9; i++)
    c->m[i] = (float) m[i];
  for (int r = 0; r < 3; r++)
    c->offset[r] = (float) (-(m[3 * r] * yoff + (m[3 * r + 1] + m[3 * r + 2]) * 128.0));
}

static float
clamp255 (float v)
{
  return v < 0.0f ? 0.0f : v > 255.0f ? 255.0f : v;
}

void
hfam_frame_pixel_rgb (const HfamFrame *f, const HfamYuvToRgb *yuv, int x, int y, float rgb[3])
{
  const uint8_t *p;
  float Y, U, V;

  switch (f->format) {
  case HFAM_FRAME_RGB:
  case HFAM_FRAME_BGR:
  case HFAM_FRAME_RGBA:
  case HFAM_FRAME_BGRA: {
    const int bpp = f->format <= HFAM_FRAME_BGR ? 3 : 4;
    const int bgr = f->format == HFAM_FRAME_BGR || f->format == HFAM_FRAME_BGRA;
    p = f->planes[0] + (ptrdiff_t) y * f->strides[0] + (ptrdiff_t) x * bpp;
    rgb[0] = p[bgr ? 2 : 0];
    rgb[1] = p[1];
    rgb[2] = p[bgr ? 0 : 2];
    return;
  }
  case HFAM_FRAME_NV12:
    Y = f->planes[0][(ptrdiff_t) y * f->strides[0] + x];
    p = f->planes[1] + (ptrdiff_t) (y / 2) * f->strides[1] + (ptrdiff_t) (x / 2) * 2;
    U = p[0];
    V = p[1];
    break;
  case HFAM_FRAME_I420:
  default:
    Y = f->planes[0][(ptrdiff_t) y * f->strides[0] + x];
    U = f->planes[1][(ptrdiff_t) (y / 2) * f->strides[1] + x / 2];
    V = f->planes[2][(ptrdiff_t) (y / 2) * f->strides[2] + x / 2];
    break;
  }
  for (int r = 0; r < 3; r++)
    rgb[r] = clamp255 (yuv->m[3 * r] * Y + yuv->m[3 * r + 1] * U + yuv->m[3 * r + 2] * V
                       + yuv->offset[r]);
}

/* v clamped to 0..255 as clamp255, written as the max and min instructions are defined so that
 * a loop over it vectorises. */
static inline float
clamp255_vector (float v)
{
  v = v > 0.0f ? v : 0.0f;
  return v < 255.0f ? v : 255.0f;
}

/* Pixels per pass of yuv_row: its planar rows stay in the L1 cache. Even, so that each pass
 * starts on a chroma sample's first pixel. */
#define YUV_CHUNK 256

/* One YUV row, chroma samples `step` bytes apart (1: I420, 2: NV12), with
 * hfam_frame_pixel_rgb's arithmetic in its order. In passes of YUV_CHUNK pixels: the chroma
 * widened to a sample per pixel, then R, G and B as planes, then interleaved, loops that
 * vectorise with contiguous loads and stores (one over the pixels that interleaves as it goes
 * takes 1.6 times as long). Inlined with a constant step. */
static inline __attribute__ ((always_inline)) void
yuv_row (const uint8_t *restrict luma, const uint8_t *restrict cb, const uint8_t *restrict cr,
         int step, int width, const HfamYuvToRgb *c, float gain, float *restrict rgb)
{
  float m[12], U[YUV_CHUNK], V[YUV_CHUNK], plane[3][YUV_CHUNK];

  memcpy (m, c->m, sizeof c->m);
  memcpy (m + 9, c->offset, sizeof c->offset);
  for (int x0 = 0; x0 < width; x0 += YUV_CHUNK) {
    const int n = width - x0 < YUV_CHUNK ? width - x0 : YUV_CHUNK;
    const uint8_t *u = cb + (size_t) (x0 / 2) * step, *v = cr + (size_t) (x0 / 2) * step;
    const uint8_t *y = luma + x0;
    /* (an odd last pixel writes one sample past n, within the arrays) */
    for (int j = 0; j < (n + 1) / 2; j++) {
      U[2 * j] = U[2 * j + 1] = u[j * step];
      V[2 * j] = V[2 * j + 1] = v[j * step];
    }
    for (int i = 0; i < n; i++) {
      const float Y = y[i];
      plane[0][i] = clamp255_vector (m[0] * Y + m[1] * U[i] + m[2] * V[i] + m[9]) * gain;
      plane[1][i] = clamp255_vector (m[3] * Y + m[4] * U[i] + m[5] * V[i] + m[10]) * gain;
      plane[2][i] = clamp255_vector (m[6] * Y + m[7] * U[i] + m[8] * V[i] + m[11]) * gain;
    }
    float *out = rgb + 3 * (size_t) x0;
    for (int i = 0; i < n; i++) {
      out[3 * i] = plane[0][i];
      out[3 * i + 1] = plane[1][i];
      out[3 * i + 2] = plane[2][i];
    }
  }
}

HFAM_VECTOR_CLONES static void
yuv_row_i420 (const uint8_t *luma, const uint8_t *cb, const uint8_t *cr, int width,
              const HfamYuvToRgb *c, float gain, float *rgb)
{
  yuv_row (luma, cb, cr, 1, width, c, gain, rgb);
}

HFAM_VECTOR_CLONES static void
yuv_row_nv12 (const uint8_t *luma, const uint8_t *cbcr, int width, const HfamYuvToRgb *c,
              float gain, float *rgb)
{
  yuv_row (luma, cbcr, cbcr + 1, 2, width, c, gain, rgb);
}

void
hfam_frame_row_rgb (const HfamFrame *f, const HfamYuvToRgb *yuv, int y, float gain, float *rgb)
{
  const uint8_t *luma = f->planes[0] + (ptrdiff_t) y * f->strides[0];

  if (f->format == HFAM_FRAME_NV12) {
    yuv_row_nv12 (luma, f->planes[1] + (ptrdiff_t) (y / 2) * f->strides[1], f->width, yuv,
                  gain, rgb);
  } else if (f->format == HFAM_FRAME_I420) {
    yuv_row_i420 (luma, f->planes[1] + (ptrdiff_t) (y / 2) * f->strides[1],
                  f->planes[2] + (ptrdiff_t) (y / 2) * f->strides[2], f->width, yuv, gain, rgb);
  } else {
    const int bpp = f->format <= HFAM_FRAME_BGR ? 3 : 4;
    const int bgr = f->format == HFAM_FRAME_BGR || f->format == HFAM_FRAME_BGRA;
    const int r_in = bgr ? 2 : 0, b_in = bgr ? 0 : 2;
    for (int x = 0; x < f->width; x++, luma += bpp) {
      rgb[3 * x] = luma[r_in] * gain;
      rgb[3 * x + 1] = luma[1] * gain;
      rgb[3 * x + 2] = luma[b_in] * gain;
    }
  }
}

int
hfam_frame_valid (const HfamFrame *f)
{
  int cw;
  if (!f || f->width < 1 || f->height < 1 || (unsigned) f->format >= HFAM_FRAME_N_FORMATS
      || !f->planes[0])
    return 0;
  cw = (f->width + 1) / 2;
  switch (f->format) {
  case HFAM_FRAME_RGB:
  case HFAM_FRAME_BGR:
    return f->strides[0] >= 3 * f->width;
  case HFAM_FRAME_RGBA:
  case HFAM_FRAME_BGRA:
    return f->strides[0] >= 4 * f->width;
  case HFAM_FRAME_NV12:
    return f->strides[0] >= f->width && f->planes[1] && f->strides[1] >= 2 * cw;
  case HFAM_FRAME_I420:
    return f->strides[0] >= f->width && f->planes[1] && f->planes[2] && f->strides[1] >= cw
           && f->strides[2] >= cw;
  }
  return 0;
}

/* ---- the filter, as kernels/resize.c's filter_init ---- */


/* ---- in ---- */

int
hfam_frame_preprocess (const HfamFrame *frame, const HfamPreprocessParams *p, float *dst,
                       int dw, int dh)
{
  const int sw = frame->width, sh = frame->height;
  const size_t splane = (size_t) sw * sh, dplane = (size_t) dw * dh;
  float *rgb;
  int ok = 1;

  if (!hfam_frame_valid (frame) || dw < 1 || dh < 1)
    return -1;
  if (!(rgb = malloc (sizeof (float) * 3 * splane)))
    return -1;
  for (int y = 0; y < sh; y++)
    for (int x = 0; x < sw; x++) {
      float v[3];
      hfam_frame_pixel_rgb (frame, &p->yuv, x, y, v);
      for (int k = 0; k < 3; k++)
        rgb[k * splane + (size_t) y * sw + x] = v[k];
    }
  for (int k = 0; k < 3 && ok; k++) {
    const float mul = p->scale / 255.0f / p->std[k], add = -p->mean[k] / p->std[k];
    float *out = dst + k * dplane;
    ok = hfam_resize_plane (rgb + p->order[k] * splane, sw, sh, sw, out, dw, dh, dw) == 0;
    for (size_t i = 0; ok && i < dplane; i++)
      out[i] = out[i] * mul + add;
  }
  free (rgb);
  return ok ? 0 : -1;
}

typedef struct {
  const HfamFrame *frame;
  const HfamYuvToRgb *yuv;
} RowSource;

static void
read_frame_row (const void *source, int y, float *rgb)
{
  const RowSource *s = source;
  hfam_frame_row_rgb (s->frame, s->yuv, y, 1.0f, rgb);
}

int
hfam_frame_preprocess_rows (const HfamFrame *frame, const HfamPreprocessParams *p,
                            float *dst, int dw, int dh)
{
  const RowSource source = { frame, &p->yuv };

  if (!hfam_frame_valid (frame) || dw < 1 || dh < 1)
    return -1;
  return hfam_preprocess_rows (read_frame_row, &source, frame->width, frame->height, dst, dw,
                               dh, p->order, p->scale, p->mean, p->std);
}

/* ---- out ---- */

int
hfam_matte_bytes_per_pixel (HfamMatteFormat format)
{
  return format == HFAM_MATTE_GRAY8 ? 1 : format == HFAM_MATTE_GRAY16 ? 2 : 4;
}

static inline float
clamp01 (float v)
{
  return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
}

/* One RGBA/BGRA pixel (r_out, b_out: where red and blue go), colours premultiplied if asked. */
static inline void
store_rgba (uint8_t *px, int r, int g, int b, int a8, int premultiply, int r_out, int b_out)
{
  if (premultiply) {
    r = (r * a8 + 127) / 255;
    g = (g * a8 + 127) / 255;
    b = (b * a8 + 127) / 255;
  }
  px[r_out] = (uint8_t) r;
  px[1] = (uint8_t) g;
  px[b_out] = (uint8_t) b;
  px[3] = (uint8_t) a8;
}

/* One row of a fill from the frame's colours as floats (3 per pixel): the rounding and the
 * stores of store_rgba. Straight colours with the offsets constant vectorise. */
static inline __attribute__ ((always_inline)) void
fill_row (const float *restrict rgb, const float *restrict alpha, int w, int premultiply,
          int r_out, uint8_t *restrict row)
{
  for (int x = 0; x < w; x++)
    store_rgba (row + 4 * x, (int) (rgb[3 * x] + 0.5f), (int) (rgb[3 * x + 1] + 0.5f),
                (int) (rgb[3 * x + 2] + 0.5f), (int) (clamp01 (alpha[x]) * 255.0f + 0.5f),
                premultiply, r_out, 2 - r_out);
}

HFAM_VECTOR_CLONES static void
fill_row_straight (const float *rgb, const float *alpha, int w, int r_out, uint8_t *row)
{
  if (r_out == 0)
    fill_row (rgb, alpha, w, 0, 0, row);
  else
    fill_row (rgb, alpha, w, 0, 2, row);
}

static void
fill_row_premultiplied (const float *rgb, const float *alpha, int w, int r_out, uint8_t *row)
{
  fill_row (rgb, alpha, w, 1, r_out, row);
}

int
hfam_matte_write (const float *alpha, int aw, int ah, const HfamFrame *frame,
                  const HfamYuvToRgb *yuv, const HfamMatteImage *out)
{
  const int w = out->width, h = out->height;
  const int colour = out->format >= HFAM_MATTE_RGBA;
  const int bgr = out->format == HFAM_MATTE_BGRA || out->format == HFAM_MATTE_BGRA_PREMULTIPLIED;
  const int premultiply = out->format == HFAM_MATTE_RGBA_PREMULTIPLIED
                          || out->format == HFAM_MATTE_BGRA_PREMULTIPLIED;
  /* RGB frames are read as bytes, without the per-pixel conversion (same values) */
  const int packed = colour && frame && frame->format <= HFAM_FRAME_BGRA;
  const int in_bpp = packed && frame->format >= HFAM_FRAME_RGBA ? 4 : 3;
  const int in_bgr = packed && (frame->format == HFAM_FRAME_BGR
                                || frame->format == HFAM_FRAME_BGRA);
  const int r_out = bgr ? 2 : 0, b_out = bgr ? 0 : 2;
  const float *a = alpha;
  float *resized = NULL, *rgb_rows = NULL;

  if (!alpha || aw < 1 || ah < 1 || !out->data || w < 1 || h < 1
      || (unsigned) out->format >= HFAM_MATTE_N_FORMATS
      || out->stride < w * hfam_matte_bytes_per_pixel (out->format))
    return -1;
  if (colour && (!frame || !hfam_frame_valid (frame) || frame->width != w || frame->height != h
                 || (!packed && !yuv)))
    return -1;
  if (aw != w || ah != h) {
    if (!(resized = malloc (sizeof (float) * (size_t) w * h)))
      return -1;
    if (hfam_resize_plane (alpha, aw, ah, aw, resized, w, h, w) != 0) {
      free (resized);
      return -1;
    }
    a = resized;
  }
  /* YUV frames' colours a row at a time, in a row of floats per thread */
  if (colour && !packed
      && !(rgb_rows = malloc (sizeof (float) * 3 * (size_t) w * omp_get_max_threads ()))) {
    free (resized);
    return -1;
  }
  /* rows are independent: a frame's worth spreads over the calling thread's OpenMP team */
#pragma omp parallel for if ((int64_t) w * h >= HFAM_PARALLEL_MIN_VALUES)
  for (int y = 0; y < h; y++) {
    uint8_t *row = out->data + (ptrdiff_t) y * out->stride;
    const float *arow = a + (size_t) y * w;
    if (out->format == HFAM_MATTE_GRAY8) {
      for (int x = 0; x < w; x++)
        row[x] = (uint8_t) (int) (clamp01 (arow[x]) * 255.0f + 0.5f);
    } else if (out->format == HFAM_MATTE_GRAY16) {
      for (int x = 0; x < w; x++) {
        const uint16_t a16 = (uint16_t) (int) (clamp01 (arow[x]) * 65535.0f + 0.5f);
        memcpy (row + 2 * x, &a16, 2);
      }
    } else if (packed) {
      /* offsets hoisted out of the loop: the compiler vectorises nothing here otherwise */
      const uint8_t *in = frame->planes[0] + (ptrdiff_t) y * frame->strides[0];
      const int r_in = in_bgr ? 2 : 0, b_in = in_bgr ? 0 : 2;
      for (int x = 0; x < w; x++, in += in_bpp)
        store_rgba (row + 4 * x, in[r_in], in[1], in[b_in],
                    (int) (clamp01 (arow[x]) * 255.0f + 0.5f), premultiply, r_out, b_out);
    } else {
      float *rgb = rgb_rows + (size_t) omp_get_thread_num () * 3 * w;
      hfam_frame_row_rgb (frame, yuv, y, 1.0f, rgb);
      if (premultiply)
        fill_row_premultiplied (rgb, arow, w, r_out, row);
      else if (bgr)
        fill_row_straight (rgb, arow, w, 2, row);
      else
        fill_row_straight (rgb, arow, w, 0, row);
    }
  }
  free (rgb_rows);
  free (resized);
  return 0;
}

void
hfam_matte_blend (float *matte, const float *fresh, size_t n, float smoothing)
{
  for (size_t i = 0; i < n; i++)
    matte[i] = (1.0f - smoothing) * fresh[i] + smoothing * matte[i];
}
