/* CPU twins of nhwc.cu: see nhwc.h. */
#include "nhwc.h"

#include <math.h>
#include <string.h>

void
hfam_nhwc_bias_act (const HfamNhwcHost *x, const float *bias, const HfamNhwcHost *residual,
                    int relu, const HfamNhwcHost *y)
{
  for (int yy = 0; yy < x->h; yy++)
    for (int xx = 0; xx < x->w; xx++) {
      const float *s = hfam_nhwc_at (x, xx, yy);
      const float *r = residual ? hfam_nhwc_at (residual, xx, yy) : NULL;
      float *d = hfam_nhwc_at (y, xx, yy);
      for (int c = 0; c < x->c; c++) {
        float v = s[c] + bias[c];
        if (r)
          v += r[c];
        d[c] = relu && v < 0.0f ? 0.0f : v;
      }
    }
}

void
hfam_nhwc_split_k_sum (const HfamNhwcHost *partials, int splits, const float *bias,
                       const HfamNhwcHost *residual, int relu, const HfamNhwcHost *y)
{
  const int group = partials->c / splits;

  for (int yy = 0; yy < y->h; yy++)
    for (int xx = 0; xx < y->w; xx++) {
      const float *p = hfam_nhwc_at (partials, xx, yy);
      const float *r = residual ? hfam_nhwc_at (residual, xx, yy) : NULL;
      float *d = hfam_nhwc_at (y, xx, yy);
      for (int c = 0; c < y->c; c++) {
        float v = 0.0f;
        for (int g = 0; g < splits; g++)
          v += p[g * group + c];
        v += bias[c];
        if (r)
          v += r[c];
        d[c] = relu && v < 0.0f ? 0.0f : v;
      }
    }
}

/* The two taps of output i of a bilinear pass from `in` to `out` samples. */
static void
linear_taps (int i, int in, int out, int *i0, int *i1, float *l1)
{
  const float scale = (float) in / (float) out;
  float src = ((float) i + 0.5f) * scale - 0.5f;
  if (src < 0.0f)
    src = 0.0f;
  *i0 = (int) src;
  if (*i0 > in - 1)
    *i0 = in - 1;
  *i1 = *i0 + 1 < in ? *i0 + 1 : in - 1;
  *l1 = src - (float) *i0;
}

void
hfam_nhwc_resize (const HfamNhwcHost *src, const HfamNhwcHost *dst)
{
  for (int y = 0; y < dst->h; y++) {
    int y0, y1;
    float ly;
    linear_taps (y, src->h, dst->h, &y0, &y1, &ly);
    for (int x = 0; x < dst->w; x++) {
      int x0, x1;
      float lx;
      linear_taps (x, src->w, dst->w, &x0, &x1, &lx);
      const float *a = hfam_nhwc_at (src, x0, y0), *b = hfam_nhwc_at (src, x1, y0);
      const float *c = hfam_nhwc_at (src, x0, y1), *e = hfam_nhwc_at (src, x1, y1);
      float *d = hfam_nhwc_at (dst, x, y);
      for (int k = 0; k < dst->c; k++)
        d[k] = (1.0f - ly) * ((1.0f - lx) * a[k] + lx * b[k])
               + ly * ((1.0f - lx) * c[k] + lx * e[k]);
    }
  }
}

void
hfam_nhwc_avgpool (const HfamNhwcHost *src, int factor, const HfamNhwcHost *dst)
{
  const float inv = 1.0f / (float) (factor * factor);
  for (int y = 0; y < dst->h; y++)
    for (int x = 0; x < dst->w; x++) {
      float *d = hfam_nhwc_at (dst, x, y);
      for (int k = 0; k < dst->c; k++) {
        float sum = 0.0f;
        for (int dy = 0; dy < factor; dy++)
          for (int dx = 0; dx < factor; dx++)
            sum += hfam_nhwc_at (src, x * factor + dx, y * factor + dy)[k];
        d[k] = sum * inv;
      }
    }
}

void
hfam_nhwc_maxpool (const HfamNhwcHost *src, const HfamNhwcHost *dst)
{
  for (int y = 0; y < dst->h; y++)
    for (int x = 0; x < dst->w; x++) {
      float *d = hfam_nhwc_at (dst, x, y);
      for (int k = 0; k < dst->c; k++) {
        float m = -INFINITY;
        for (int dy = -1; dy <= 1; dy++)
          for (int dx = -1; dx <= 1; dx++) {
            const int sx = 2 * x + dx, sy = 2 * y + dy;
            if (sx >= 0 && sy >= 0 && sx < src->w && sy < src->h)
              m = fmaxf (m, hfam_nhwc_at (src, sx, sy)[k]);
          }
        d[k] = m;
      }
    }
}

void
hfam_nhwc_global_pool (const HfamNhwcHost *src, const HfamNhwcHost *dst)
{
  const double inv = 1.0 / ((double) src->w * src->h);
  for (int k = 0; k < src->c; k++) {
    double sum = 0.0;
    for (int y = 0; y < src->h; y++)
      for (int x = 0; x < src->w; x++)
        sum += hfam_nhwc_at (src, x, y)[k];
    dst->data[k] = (float) (sum * inv);
  }
}

void
hfam_nhwc_copy (const HfamNhwcHost *src, const HfamNhwcHost *dst)
{
  for (int y = 0; y < src->h; y++)
    for (int x = 0; x < src->w; x++)
      memcpy (hfam_nhwc_at (dst, x, y), hfam_nhwc_at (src, x, y), sizeof (float) * src->c);
}

void
hfam_nhwc_scale_by_map (const HfamNhwcHost *src, const float *map, const HfamNhwcHost *dst)
{
  for (int y = 0; y < src->h; y++)
    for (int x = 0; x < src->w; x++) {
      const float m = map[(size_t) y * src->w + x];
      const float *s = hfam_nhwc_at (src, x, y);
      float *d = hfam_nhwc_at (dst, x, y);
      for (int k = 0; k < src->c; k++)
        d[k] = s[k] * m;
    }
}

void
hfam_nhwc_from_planar (const float *planar, const HfamNhwcHost *dst)
{
  const size_t plane = (size_t) dst->w * dst->h;
  for (size_t p = 0; p < plane; p++) {
    float *d = dst->data + p * dst->cs;
    for (int k = 0; k < dst->cs; k++)
      d[k] = k < dst->c ? planar[k * plane + p] : 0.0f;
  }
}

void
hfam_nhwc_to_planar (const HfamNhwcHost *src, float *planar)
{
  const size_t plane = (size_t) src->w * src->h;
  for (size_t p = 0; p < plane; p++)
    for (int k = 0; k < src->c; k++)
      planar[k * plane + p] = src->data[p * src->cs + k];
}
