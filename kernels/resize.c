/* PyTorch 1.13's antialiased bilinear resampling (aten/src/ATen/native/cpu/UpSampleKernel.cpp,
 * _compute_indices_weights_aa with the triangle filter), as two 1-D passes.
 *
 * The vertical pass walks whole rows and vectorises; the horizontal pass gathers a few taps per
 * output. Which order is cheaper depends on the sizes, so each call estimates both. Only one
 * source line is ever converted to float in the vertical-first order, and the horizontal-first
 * order keeps just the (source height x output width) intermediate.
 *
 * Lines are independent: large images spread them over the calling thread's OpenMP team
 * (omp_set_num_threads), each thread with a line buffer of its own. */
#include "resize.h"

#include <math.h>
#include <omp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A horizontal tap costs about this many vertical ones, a gather against a vectorised stream:
 * with it both orders were timed on 1920x1080 <-> 512x288 (x86-64) and the cheaper one won. */
#define HPASS_COST 4


void
hfam_resize_filter_clear (HfamResizeFilter *f)
{
  free (f->start);
  free (f->len);
  free (f->w);
  f->start = f->len = NULL;
  f->w = NULL;
}

static float
triangle (float x)
{
  if (x < 0.0)
    x = -x;
  if (x < 1.0)
    return 1.0 - x;
  return 0.0;
}

/* The arithmetic, float or double at each step, follows PyTorch's so that the weights round
 * the same way. */
int
hfam_resize_filter_init (HfamResizeFilter *f, int in, int out)
{
  memset (f, 0, sizeof *f);
  if (in < 1 || out < 1)
    return -1;

  float scale = (float) in / (float) out;
  float support = scale >= 1.0 ? scale : 1.0f;
  float invscale = scale >= 1.0 ? 1.0 / scale : 1.0;

  f->in = in;
  f->out = out;
  f->k = (int) ceilf (support) * 2 + 1;
  f->start = malloc (sizeof (int) * out);
  f->len = malloc (sizeof (int) * out);
  f->w = calloc ((size_t) out * f->k, sizeof (float));
  f->taps = 0;
  f->lo = in;
  f->hi = 0;
  if (!f->start || !f->len || !f->w) {
    hfam_resize_filter_clear (f);
    return -1;
  }

  for (int i = 0; i < out; i++) {
    float center = scale * (i + 0.5);
    int64_t xmin = (int64_t) (center - support + 0.5);
    int64_t xmax = (int64_t) (center + support + 0.5);
    float *w = f->w + (size_t) i * f->k;
    float total = 0.0f;

    if (xmin < 0)
      xmin = 0;
    if (xmax > in)
      xmax = in;
    for (int64_t j = 0; j < xmax - xmin; j++) {
      w[j] = triangle ((j + xmin - center + 0.5) * invscale);
      total += w[j];
    }
    if (total != 0.0f)
      for (int64_t j = 0; j < xmax - xmin; j++)
        w[j] /= total;

    /* Zero taps at either end add exact zeros in PyTorch: dropping them changes no sum. */
    int lo = 0, hi = (int) (xmax - xmin);
    while (hi - lo > 1 && w[lo] == 0.0f)
      lo++;
    while (hi - lo > 1 && w[hi - 1] == 0.0f)
      hi--;
    for (int j = lo; j < hi; j++)
      w[j - lo] = w[j];
    for (int j = hi - lo; j < f->k; j++)
      w[j] = 0.0f;
    f->start[i] = (int) xmin + lo;
    f->len[i] = hi - lo;
    f->taps += hi - lo;
    if (f->start[i] < f->lo)
      f->lo = f->start[i];
    if (f->start[i] + f->len[i] > f->hi)
      f->hi = f->start[i] + f->len[i];
  }
  return 0;
}

/* The vertical pass does most of the work on large frames and vectorises; where the toolchain
 * can dispatch at run time, an AVX2 clone doubles its width. */
#if defined(__x86_64__) && defined(__GLIBC__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define VECTOR_CLONES __attribute__ ((target_clones ("avx2", "default")))
#endif
#endif
#ifndef VECTOR_CLONES
#define VECTOR_CLONES
#endif

/* The vertical pass: out[x] = sum over t of w[t] * line t[x], in PyTorch's order. */
#define DEFINE_VPASS(name, type)                                                            \
  VECTOR_CLONES static void name (const type *src, ptrdiff_t stride, int n, const float *w, \
                                  int width, float *out)                                    \
  {                                                                                         \
    for (int x = 0; x < width; x++)                                                         \
      out[x] = src[x] * w[0];                                                               \
    for (int t = 1; t < n; t++) {                                                           \
      const type *s = src + t * stride;                                                     \
      float wt = w[t];                                                                      \
      for (int x = 0; x < width; x++)                                                       \
        out[x] += s[x] * wt;                                                                \
    }                                                                                       \
  }

DEFINE_VPASS (vpass_f32, float)
DEFINE_VPASS (vpass_u8, uint8_t)

static void
hpass_f32 (const float *src, const HfamResizeFilter *f, int width, float *out)
{
  for (int x = 0; x < width; x++) {
    const float *s = src + f->start[x];
    const float *w = f->w + (size_t) x * f->k;
    float acc = s[0] * w[0];
    for (int t = 1; t < f->len[x]; t++)
      acc += s[t] * w[t];
    out[x] = acc;
  }
}

typedef float v4sf __attribute__ ((vector_size (16)));

/* The horizontal pass over interleaved pixels `ps` (3 or 4) floats apart, to out[k][x] from
 * the channel at offset off[k]. All channels of a pixel go through one 4-wide multiply-add;
 * with ps = 3 the last pixel's load reads one float past it, so `src` needs one float of
 * padding. */
static void
hpass3_f32 (const float *src, const HfamResizeFilter *f, int width, int ps, const int off[3],
            float *const out[3])
{
  for (int x = 0; x < width; x++) {
    const float *s = src + (ptrdiff_t) f->start[x] * ps;
    const float *w = f->w + (size_t) x * f->k;
    v4sf p, acc;

    memcpy (&p, s, sizeof p);
    acc = p * w[0];
    for (int t = 1; t < f->len[x]; t++) {
      s += ps;
      memcpy (&p, s, sizeof p);
      acc += p * w[t];
    }
    out[0][x] = acc[off[0]];
    out[1][x] = acc[off[1]];
    out[2][x] = acc[off[2]];
  }
}

/* The same from bytes, for the horizontal-first order. */
static void
hpass3_u8 (const uint8_t *src, const HfamResizeFilter *f, int width, int ps, const int off[3],
           float *const out[3])
{
  for (int x = 0; x < width; x++) {
    const uint8_t *s = src + (ptrdiff_t) f->start[x] * ps;
    const float *w = f->w + (size_t) x * f->k;
    float a0 = s[off[0]] * w[0], a1 = s[off[1]] * w[0], a2 = s[off[2]] * w[0];

    for (int t = 1; t < f->len[x]; t++) {
      s += ps;
      a0 += s[off[0]] * w[t];
      a1 += s[off[1]] * w[t];
      a2 += s[off[2]] * w[t];
    }
    out[0][x] = a0;
    out[1][x] = a1;
    out[2][x] = a2;
  }
}

/* Whether to run the vertical pass first: vch values per source pixel go through the vertical
 * pass in that order, hch channels through every horizontal pass. */
static int
vertical_first (const HfamResizeFilter *fx, const HfamResizeFilter *fy, int sw, int dw, int dh,
                int vch, int hch)
{
  int64_t v_first = (int64_t) sw * vch * fy->taps + (int64_t) HPASS_COST * hch * dh * fx->taps;
  int64_t h_first = (int64_t) HPASS_COST * hch * (fy->hi - fy->lo) * fx->taps
                    + (int64_t) hch * dw * fy->taps;
  return v_first <= h_first;
}

static int
filters_init (HfamResizeFilter *fx, HfamResizeFilter *fy, int sw, int sh, int dw, int dh)
{
  if (sw < 1 || sh < 1 || dw < 1 || dh < 1)
    return -1;
  if (hfam_resize_filter_init (fx, sw, dw) < 0)
    return -1;
  if (hfam_resize_filter_init (fy, sh, dh) < 0) {
    hfam_resize_filter_clear (fx);
    return -1;
  }
  return 0;
}

int
hfam_resize_plane (const float *src, int sw, int sh, int ss, float *dst, int dw, int dh, int ds)
{
  const int parallel = (int64_t) dw * dh >= HFAM_PARALLEL_MIN_VALUES;
  HfamResizeFilter fx, fy;
  float *tmp;
  int ok;

  if (filters_init (&fx, &fy, sw, sh, dw, dh) < 0)
    return -1;

  if (vertical_first (&fx, &fy, sw, dw, dh, 1, 1)) {
    /* One source-width line per thread. */
    tmp = malloc (sizeof (float) * sw * (size_t) omp_get_max_threads ());
    if (tmp) {
#pragma omp parallel for if (parallel)
      for (int y = 0; y < dh; y++) {
        float *line = tmp + (size_t) omp_get_thread_num () * sw;
        vpass_f32 (src + (ptrdiff_t) fy.start[y] * ss, ss, fy.len[y],
                   fy.w + (size_t) y * fy.k, sw, line);
        hpass_f32 (line, &fx, dw, dst + (ptrdiff_t) y * ds);
      }
    }
  } else {
    /* The source lines that the vertical pass reads, at the output width. */
    tmp = malloc (sizeof (float) * dw * (size_t) (fy.hi - fy.lo));
    if (tmp) {
#pragma omp parallel if (parallel)
      {
#pragma omp for
        for (int y = fy.lo; y < fy.hi; y++)
          hpass_f32 (src + (ptrdiff_t) y * ss, &fx, dw, tmp + (size_t) (y - fy.lo) * dw);
#pragma omp for
        for (int y = 0; y < dh; y++)
          vpass_f32 (tmp + (size_t) (fy.start[y] - fy.lo) * dw, dw, fy.len[y],
                     fy.w + (size_t) y * fy.k, dw, dst + (ptrdiff_t) y * ds);
      }
    }
  }

  ok = tmp != NULL;
  free (tmp);
  hfam_resize_filter_clear (&fx);
  hfam_resize_filter_clear (&fy);
  return ok ? 0 : -1;
}

/* value * mul + add on one output line of each plane, mul and add folding /255, scale, mean
 * and std: a linear map commutes with the (normalised) filter, so it runs on the few outputs. */
static void
normalise (float *const line[3], int width, const float mul[3], const float add[3])
{
  for (int k = 0; k < 3; k++)
    for (int x = 0; x < width; x++)
      line[k][x] = line[k][x] * mul[k] + add[k];
}

int
hfam_preprocess_rgb8 (const uint8_t *src, int sw, int sh, int stride, int bytes_per_pixel,
                      const int rgb_offsets[3], float *dst, int dw, int dh,
                      const int order[3], float scale, const float mean[3],
                      const float std[3])
{
  const int parallel = (int64_t) dw * dh >= HFAM_PARALLEL_MIN_VALUES;
  HfamResizeFilter fx, fy;
  size_t plane = (size_t) dw * dh;
  int off[3];
  float mul[3], add[3];
  float *tmp;
  int ok;

  if (bytes_per_pixel != 3 && bytes_per_pixel != 4)
    return -1;
  if (filters_init (&fx, &fy, sw, sh, dw, dh) < 0)
    return -1;
  for (int k = 0; k < 3; k++) {
    off[k] = rgb_offsets[order[k]];
    mul[k] = scale / 255.0f / std[k];
    add[k] = -mean[k] / std[k];
  }

  if (vertical_first (&fx, &fy, sw, dw, dh, bytes_per_pixel, 3)) {
    /* One source line per thread, all its bytes as floats (the vertical pass need not pick
     * channels), and the padding that hpass3_f32 needs. */
    const size_t line_floats = sw * (size_t) bytes_per_pixel + 1;
    tmp = malloc (sizeof (float) * line_floats * (size_t) omp_get_max_threads ());
    if (tmp) {
#pragma omp parallel for if (parallel)
      for (int y = 0; y < dh; y++) {
        float *line = tmp + (size_t) omp_get_thread_num () * line_floats;
        float *const out[3] = { dst + y * (size_t) dw, dst + plane + y * (size_t) dw,
                                dst + 2 * plane + y * (size_t) dw };
        vpass_u8 (src + (ptrdiff_t) fy.start[y] * stride, stride, fy.len[y],
                  fy.w + (size_t) y * fy.k, sw * bytes_per_pixel, line);
        hpass3_f32 (line, &fx, dw, bytes_per_pixel, off, out);
        normalise (out, dw, mul, add);
      }
    }
  } else {
    /* Three planes of the source lines that the vertical pass reads, at the output width. */
    size_t tplane = (size_t) dw * (fy.hi - fy.lo);
    tmp = malloc (sizeof (float) * 3 * tplane);
    if (tmp) {
#pragma omp parallel if (parallel)
      {
#pragma omp for
        for (int y = fy.lo; y < fy.hi; y++) {
          size_t o = (size_t) (y - fy.lo) * dw;
          float *const out[3] = { tmp + o, tmp + tplane + o, tmp + 2 * tplane + o };
          hpass3_u8 (src + (ptrdiff_t) y * stride, &fx, dw, bytes_per_pixel, off, out);
        }
#pragma omp for
        for (int y = 0; y < dh; y++) {
          float *const out[3] = { dst + y * (size_t) dw, dst + plane + y * (size_t) dw,
                                  dst + 2 * plane + y * (size_t) dw };
          for (int k = 0; k < 3; k++)
            vpass_f32 (tmp + k * tplane + (size_t) (fy.start[y] - fy.lo) * dw, dw, fy.len[y],
                       fy.w + (size_t) y * fy.k, dw, out[k]);
          normalise (out, dw, mul, add);
        }
      }
    }
  }

  ok = tmp != NULL;
  free (tmp);
  hfam_resize_filter_clear (&fx);
  hfam_resize_filter_clear (&fy);
  return ok ? 0 : -1;
}

/* The vertical pass over rows anywhere (the ring of hfam_preprocess_rows), in vpass_f32's
 * order. */
VECTOR_CLONES static void
vpass_rows (const float *const *rows, int n, const float *w, int width, float *out)
{
  for (int x = 0; x < width; x++)
    out[x] = rows[0][x] * w[0];
  for (int t = 1; t < n; t++) {
    const float *s = rows[t];
    const float wt = w[t];
    for (int x = 0; x < width; x++)
      out[x] += s[x] * wt;
  }
}

int
hfam_preprocess_rows (HfamRowReader read, const void *source, int sw, int sh, float *dst,
                      int dw, int dh, const int order[3], float scale, const float mean[3],
                      const float std[3])
{
  const int parallel = (int64_t) dw * dh >= HFAM_PARALLEL_MIN_VALUES;
  /* a source row, and the padding that hpass3_f32 needs */
  const size_t line_floats = 3 * (size_t) sw + 1;
  HfamResizeFilter fx, fy;
  size_t plane = (size_t) dw * dh, thread_floats;
  float mul[3], add[3];
  float *mem;
  int *held;
  int ok;

  if (filters_init (&fx, &fy, sw, sh, dw, dh) < 0)
    return -1;
  for (int k = 0; k < 3; k++) {
    mul[k] = scale / 255.0f / std[k];
    add[k] = -mean[k] / std[k];
  }
  /* Vertical first, one band of output rows per thread, each thread keeping the source rows
   * it has read in a ring of fy.k (the most any output row reads): the filter's windows
   * overlap, and the ring makes a row read for one output row serve the next, so that each
   * is read (converted) about once. Then its vertical sum, then the horizontal pass. */
  thread_floats = ((size_t) fy.k + 1) * line_floats;
  mem = calloc (thread_floats * (size_t) omp_get_max_threads (), sizeof (float));
  held = malloc (sizeof (int) * (size_t) fy.k * omp_get_max_threads ());
  if (mem && held) {
#pragma omp parallel if (parallel)
    {
      float *ring = mem + (size_t) omp_get_thread_num () * thread_floats;
      float *line = ring + (size_t) fy.k * line_floats;
      int *row_in = held + (size_t) omp_get_thread_num () * fy.k;
      const float *rows[fy.k];

      for (int i = 0; i < fy.k; i++)
        row_in[i] = -1;
#pragma omp for schedule(static)
      for (int y = 0; y < dh; y++) {
        float *const out[3] = { dst + y * (size_t) dw, dst + plane + y * (size_t) dw,
                                dst + 2 * plane + y * (size_t) dw };
        for (int t = 0; t < fy.len[y]; t++) {
          const int source_row = fy.start[y] + t, slot = source_row % fy.k;
          if (row_in[slot] != source_row) {
            read (source, source_row, ring + (size_t) slot * line_floats);
            row_in[slot] = source_row;
          }
          rows[t] = ring + (size_t) slot * line_floats;
        }
        vpass_rows (rows, fy.len[y], fy.w + (size_t) y * fy.k, 3 * sw, line);
        hpass3_f32 (line, &fx, dw, 3, order, out);
        normalise (out, dw, mul, add);
      }
    }
  }

  ok = mem && held;
  free (mem);
  free (held);
  hfam_resize_filter_clear (&fx);
  hfam_resize_filter_clear (&fy);
  return ok ? 0 : -1;
}
