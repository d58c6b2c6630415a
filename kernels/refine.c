/* The fast guided filter and the key levels on the CPU (refine.h): the oracle of refine.cu.
 * Everything but the last step runs at the statistics' size (the inference size by default,
 * ~512 x 288), so the cost at the frame's size is one pass of a few multiply-adds per pixel. */
#include "refine.h"
#include "box.h"
#include "resize.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int
hfam_key_levels_valid (const HfamKeyLevels *l)
{
  /* (written so that NaN fails) */
  return l && l->black >= 0.0f && l->white <= 1.0f && l->black < l->white;
}

HFAM_VECTOR_CLONES void
hfam_key_levels_apply (float *alpha, size_t n, const HfamKeyLevels *l)
{
  const float black = l ? l->black : 0.0f, scale = l ? 1.0f / (l->white - l->black) : 1.0f;
  for (size_t i = 0; i < n; i++)
    alpha[i] = hfam_clamp01 ((hfam_clamp01 (alpha[i]) - black) * scale);
}

int
hfam_refine_params_valid (const HfamRefineParams *p, int aw, int ah, int fw, int fh)
{
  const int sw = p && p->stats_width ? p->stats_width : aw;
  const int sh = p && p->stats_height ? p->stats_height : ah;
  return p && p->radius >= 1 && p->eps > 0.0f && isfinite (p->eps) && p->stats_width >= 0
         && p->stats_height >= 0 && (p->stats_width == 0) == (p->stats_height == 0)
         && sw >= 1 && sh >= 1 && sw <= fw && sh <= fh && aw >= 1 && ah >= 1;
}

typedef struct {
  const float *guide;   /* nc planes of sw x sh, 0..1 */
  const float *alpha;   /* sw x sh */
  const float *still;   /* sw x sh, the still weights of a held matte; NULL: none */
  int sw, sh, nc;
  float eps;
  float *coef;          /* sw x sh x (nc + 1): a, then b */
  float *mean_coef;     /* their means, nc + 1 planes of sw x sh */
} Refine;

/* Step 3's input: I, p, I p, then I_i I_j for i <= j (padding 0). */
HFAM_VECTOR_CLONES static const float *
stats_row (int y, float *row, void *user)
{
  const Refine *g = user;
  const size_t plane = (size_t) g->sw * g->sh, off = (size_t) y * g->sw;
  const float *p = g->alpha + off;

  if (g->nc == 1) {
    const float *I = g->guide + off;
    for (int x = 0; x < g->sw; x++) {
      float *o = row + 4 * x;
      o[0] = I[x];
      o[1] = p[x];
      o[2] = I[x] * p[x];
      o[3] = I[x] * I[x];
    }
    return row;
  }
  const float *R = g->guide + off, *G = R + plane, *B = G + plane;
  for (int x = 0; x < g->sw; x++) {
    float *o = row + 16 * x;
    o[0] = R[x];
    o[1] = G[x];
    o[2] = B[x];
    o[3] = p[x];
    o[4] = R[x] * p[x];
    o[5] = G[x] * p[x];
    o[6] = B[x] * p[x];
    o[7] = R[x] * R[x];
    o[8] = R[x] * G[x];
    o[9] = R[x] * B[x];
    o[10] = G[x] * G[x];
    o[11] = G[x] * B[x];
    o[12] = B[x] * B[x];
    o[13] = o[14] = o[15] = 0.0f;
  }
  return row;
}

/* Step 4: the fit of each window from its means. */
HFAM_VECTOR_CLONES static void
coef_row (int y, const float *m, float *scratch, void *user)
{
  const Refine *g = user;
  const float eps = g->eps;

  if (g->nc == 1) {
    float *c = g->coef + (size_t) y * g->sw * 2;
    for (int x = 0; x < g->sw; x++, m += 4) {
      const float var = m[3] - m[0] * m[0], cov = m[2] - m[0] * m[1];
      const float a = cov / (var + eps);
      c[2 * x] = a;
      c[2 * x + 1] = m[1] - a * m[0];
    }
    return;
  }
  float *c = g->coef + (size_t) y * g->sw * 4;
  for (int x = 0; x < g->sw; x++, m += 16) {
    const float v0 = m[4] - m[0] * m[3], v1 = m[5] - m[1] * m[3], v2 = m[6] - m[2] * m[3];
    const float s00 = m[7] - m[0] * m[0] + eps, s01 = m[8] - m[0] * m[1];
    const float s02 = m[9] - m[0] * m[2], s11 = m[10] - m[1] * m[1] + eps;
    const float s12 = m[11] - m[1] * m[2], s22 = m[12] - m[2] * m[2] + eps;
    /* the adjugate of the symmetric matrix */
    const float c00 = s11 * s22 - s12 * s12, c01 = s02 * s12 - s01 * s22;
    const float c02 = s01 * s12 - s02 * s11, c11 = s00 * s22 - s02 * s02;
    const float c12 = s01 * s02 - s00 * s12, c22 = s00 * s11 - s01 * s01;
    const float inv_det = 1.0f / (s00 * c00 + s01 * c01 + s02 * c02);
    const float a0 = (c00 * v0 + c01 * v1 + c02 * v2) * inv_det;
    const float a1 = (c01 * v0 + c11 * v1 + c12 * v2) * inv_det;
    const float a2 = (c02 * v0 + c12 * v1 + c22 * v2) * inv_det;
    c[4 * x] = a0;
    c[4 * x + 1] = a1;
    c[4 * x + 2] = a2;
    c[4 * x + 3] = m[3] - (a0 * m[0] + a1 * m[1] + a2 * m[2]);
  }
}

static const float *
coef_in (int y, float *scratch, void *user)
{
  const Refine *g = user;
  return g->coef + (size_t) y * g->sw * (g->nc + 1);
}

/* (nch constant in each call: the loop vectorises) */
static inline __attribute__ ((always_inline)) void
deinterleave (const float *restrict m, int w, int nch, float *restrict planes, size_t plane)
{
  for (int x = 0; x < w; x++)
    for (int k = 0; k < nch; k++)
      planes[k * plane + x] = m[x * nch + k];
}

/* The means of the coefficients, as planes for the enlargement */
HFAM_VECTOR_CLONES static void
coef_out (int y, const float *m, float *scratch, void *user)
{
  const Refine *g = user;
  const size_t plane = (size_t) g->sw * g->sh;
  float *planes = g->mean_coef + (size_t) y * g->sw;

  if (g->nc == 1)
    deinterleave (m, g->sw, 2, planes, plane);
  else
    deinterleave (m, g->sw, 4, planes, plane);
}

/* Step 1: the guide at the statistics' size, nc planes. */
static int
low_guide (const HfamFrame *frame, const HfamYuvToRgb *yuv, int sw, int sh, int nc,
           float *guide)
{
  static const int order[3] = { 0, 1, 2 };
  static const float mean[3] = { 0.0f, 0.0f, 0.0f }, std[3] = { 1.0f, 1.0f, 1.0f };
  const size_t plane = (size_t) sw * sh;
  float *rgb = guide;

  if (nc == 1 && !(rgb = malloc (sizeof (float) * 3 * plane)))
    return -1;
  if (frame->format <= HFAM_FRAME_BGRA) {
    const int bgr = frame->format == HFAM_FRAME_BGR || frame->format == HFAM_FRAME_BGRA;
    const int offsets[3] = { bgr ? 2 : 0, 1, bgr ? 0 : 2 };
    const int bpp = frame->format <= HFAM_FRAME_BGR ? 3 : 4;
    if (hfam_preprocess_rgb8 (frame->planes[0], frame->width, frame->height, frame->strides[0],
                              bpp, offsets, rgb, sw, sh, order, 1.0f, mean, std) != 0)
      goto fail;
  } else {
    HfamPreprocessParams p = { { 0, 1, 2 }, 1.0f, { 0.0f, 0.0f, 0.0f }, { 1.0f, 1.0f, 1.0f },
                               *yuv };
    if (hfam_frame_preprocess_rows (frame, &p, rgb, sw, sh) != 0)
      goto fail;
  }
  if (nc == 1) {
    for (size_t i = 0; i < plane; i++)
      guide[i] = 0.299f * rgb[i] + 0.587f * rgb[plane + i] + 0.114f * rgb[2 * plane + i];
    free (rgb);
  }
  return 0;
fail:
  if (rgb != guide)
    free (rgb);
  return -1;
}

/* The enlargement of the coefficients along a row as two taps per pixel (fx's taps; a bilinear
 * enlargement has at most two), indices from the row's first input fx->lo: a loop over
 * pixels that gathers from them vectorises, where one over each pixel's own taps does not.
 * Faster still, the first `permuted` pixels go 8 at a time: the 8 inputs from their first
 * left tap (and the 8 after it, for the right taps) loaded and permuted by `offset`, the left
 * taps less that first one; an enlargement moves at most one input per pixel, so the taps of
 * 8 pixels lie within them. */
typedef struct {
  int *left, *right, *offset;
  float *left_weight, *right_weight;
  int permuted;
} TwoTaps;

/* (the permute is GCC's __builtin_shuffle; clang has no variable one, and gathers them all) */
#if defined(__GNUC__) && !defined(__clang__)
#define PERMUTED_WIDENING 1
#else
#define PERMUTED_WIDENING 0
#endif

/* Whether every output of f takes at most two inputs (an enlargement: 5b's rows). */
static int
at_most_two_taps (const HfamResizeFilter *f)
{
  for (int i = 0; i < f->out; i++)
    if (f->len[i] > 2)
      return 0;
  return 1;
}

static int
two_taps_init (TwoTaps *t, const HfamResizeFilter *fx)
{
  for (int x = 0; x < fx->out; x++) {
    const float *wx = fx->w + (size_t) x * fx->k;
    if (fx->len[x] > 2)
      return -1;
    t->left[x] = fx->start[x] - fx->lo;
    t->left_weight[x] = wx[0];
    t->right[x] = t->left[x] + (fx->len[x] > 1);
    t->right_weight[x] = fx->len[x] > 1 ? wx[1] : 0.0f;
  }
  /* whole blocks of 8 whose loads (9 inputs from the first left tap) stay inside the row */
  t->permuted = 0;
  for (int x0 = 0; PERMUTED_WIDENING && x0 + 8 <= fx->out; x0 += 8) {
    const int first = t->left[x0];
    if (first + 9 > fx->hi - fx->lo || t->left[x0 + 7] - first > 7)
      break;
    for (int x = x0; x < x0 + 8; x++)
      t->offset[x] = t->left[x] - first;
    t->permuted = x0 + 8;
  }
  return 0;
}

#if PERMUTED_WIDENING
/* 8 floats or ints, as the compiler lowers them for the target (one AVX register in the AVX2
 * clones; passed by pointer, as a 32-byte vector by value has an ABI of its own under AVX) */
typedef float v8sf __attribute__ ((vector_size (32)));
typedef int v8si __attribute__ ((vector_size (32)));
#endif

/* Step 5a, one row j of the statistics: its mean coefficients (and, for a held matte, alpha
 * and the still weights) enlarged along x to the frame's width by the two taps, one plane of
 * the frame's width per channel. The frame's rows (5b) enlarge along y with contiguous
 * multiply-adds from two such rows, which each thread widens as its rows reach them
 * (RowWindow): about once per row of the statistics, kept in the cache rather than written
 * out for the whole frame and read back. */
HFAM_VECTOR_CLONES static void
widen_row (const Refine *g, const TwoTaps *t, int lo, int w, int j, int channels,
           float *restrict wide)
{
  const size_t plane = (size_t) g->sw * g->sh, row_start = (size_t) j * g->sw + lo;

  for (int k = 0; k < channels; k++) {
    const int nch = g->nc + 1;
    const float *src = (k < nch ? g->mean_coef + k * plane : k == nch ? g->alpha : g->still)
                       + row_start;
    float *restrict row = wide + (size_t) k * w;
    int x = 0;
#if PERMUTED_WIDENING
    for (; x < t->permuted; x += 8) {
      v8sf left, right, left_weight, right_weight;
      v8si offset;
      memcpy (&left, src + t->left[x], sizeof left);
      memcpy (&right, src + t->left[x] + 1, sizeof right);
      memcpy (&offset, t->offset + x, sizeof offset);
      memcpy (&left_weight, t->left_weight + x, sizeof left_weight);
      memcpy (&right_weight, t->right_weight + x, sizeof right_weight);
      /* (where a pixel has one tap, its right weight is 0: the input after it counts 0 times) */
      const v8sf out = left_weight * __builtin_shuffle (left, offset)
                       + right_weight * __builtin_shuffle (right, offset);
      memcpy (row + x, &out, sizeof out);
    }
#endif
    for (; x < w; x++)
      row[x] = t->left_weight[x] * src[t->left[x]] + t->right_weight[x] * src[t->right[x]];
  }
}

/* Where apply_coefficients reads the guide's colours: the frame's row as R'G'B' floats, or the
 * frame's own RGBA or BGRA bytes (times 1 / 255 as hfam_frame_row_rgb01 takes them, so the
 * values are the same; reading the bytes saves writing and reading back the float row) */
enum { GUIDE_FLOATS, GUIDE_RGBA, GUIDE_BGRA };

/* Channel k (0 R, 1 G, 2 B) of pixel x of the guide's row */
static inline __attribute__ ((always_inline)) float
guide_colour (const float *restrict rgb, const uint8_t *restrict px, int source, int x, int k)
{
  if (source == GUIDE_FLOATS)
    return rgb[3 * x + k];
  return px[4 * x + (source == GUIDE_BGRA ? 2 - k : k)] * (1.0f / 255.0f);
}

/* q = A . I + B along one row of the frame, A and B (planes of `wide`, a and b of rows 0 and
 * 1) enlarged along y; where `held` is given, q's detail over alpha (the plane after B) held
 * with the still weights (the next plane; `still` 0: a restart); then the levels. nc, source,
 * still and held constant in each call, so the loops unroll and the branches go. */
static inline __attribute__ ((always_inline)) void
apply_coefficients (const float *restrict w0, const float *restrict w1, float a, float b,
                    const float *restrict rgb, const uint8_t *restrict px, int source, int w,
                    int nc, int still, float *restrict held, float black, float scale,
                    float *restrict out)
{
  const size_t base = (size_t) (nc + 1) * w, weight = base + w;

  for (int x = 0; x < w; x++) {
    float A[4], q;
    const float r = guide_colour (rgb, px, source, x, 0);
    const float g = guide_colour (rgb, px, source, x, 1);
    const float bl = guide_colour (rgb, px, source, x, 2);
    for (int k = 0; k <= nc; k++)
      A[k] = a * w0[(size_t) k * w + x] + b * w1[(size_t) k * w + x];
    if (nc == 1)
      q = A[0] * (0.299f * r + 0.587f * g + 0.114f * bl) + A[1];
    else
      q = A[0] * r + A[1] * g + A[2] * bl + A[3];
    q = hfam_clamp01 (q);
    if (held) {
      const float u = a * w0[base + x] + b * w1[base + x];
      float d = q - u;
      if (still) {
        d += (a * w0[weight + x] + b * w1[weight + x]) * (held[x] - d);
        q = hfam_clamp01 (u + d);
      }
      held[x] = d;
    }
    out[x] = hfam_clamp01 ((q - black) * scale);
  }
}

/* apply_coefficients with still and held as constants for each case */
static inline __attribute__ ((always_inline)) void
apply_held (const float *w0, const float *w1, float a, float b, const float *rgb,
            const uint8_t *px, int source, int w, int nc, int still, float *held, float black,
            float scale, float *out)
{
  if (!held)
    apply_coefficients (w0, w1, a, b, rgb, px, source, w, nc, 0, NULL, black, scale, out);
  else if (!still)
    apply_coefficients (w0, w1, a, b, rgb, px, source, w, nc, 0, held, black, scale, out);
  else
    apply_coefficients (w0, w1, a, b, rgb, px, source, w, nc, 1, held, black, scale, out);
}

/* Step 5b, one row y of the frame, from the widened rows w0 and w1 of the statistics (rows
 * fy->start[y] and the one after, or w0 again where y takes one tap). The colour guide reads
 * RGBA and BGRA frames' bytes as they are (the element's host frames); the rest through a
 * row of floats. */
HFAM_VECTOR_CLONES static void
apply_row (const Refine *g, const HfamResizeFilter *fy, const float *w0, const float *w1,
           const HfamFrame *frame, const HfamYuvToRgb *yuv, const HfamKeyLevels *levels, int y,
           float *rgb, float *held, float *out)
{
  const int w = frame->width, still = g->still != NULL;
  const float *wy = fy->w + (size_t) y * fy->k;
  const float a = wy[0], b = fy->len[y] > 1 ? wy[1] : 0.0f;
  const float black = levels ? levels->black : 0.0f;
  const float scale = levels ? 1.0f / (levels->white - levels->black) : 1.0f;
  const uint8_t *px = frame->planes[0] + (ptrdiff_t) y * frame->strides[0];

  if (g->nc == 3 && frame->format == HFAM_FRAME_RGBA)
    apply_held (w0, w1, a, b, NULL, px, GUIDE_RGBA, w, 3, still, held, black, scale, out);
  else if (g->nc == 3 && frame->format == HFAM_FRAME_BGRA)
    apply_held (w0, w1, a, b, NULL, px, GUIDE_BGRA, w, 3, still, held, black, scale, out);
  else {
    hfam_frame_row_rgb01 (frame, yuv, y, rgb);
    if (g->nc == 1)
      apply_held (w0, w1, a, b, rgb, NULL, GUIDE_FLOATS, w, 1, still, held, black, scale, out);
    else
      apply_held (w0, w1, a, b, rgb, NULL, GUIDE_FLOATS, w, 3, still, held, black, scale, out);
  }
}

/* A thread's two widened rows of the statistics: slots of `channels` planes of the frame's
 * width, `row` the statistics' row each holds (-1: none). The frame's rows take rows j and
 * j + 1 with j rising, so a thread that runs through its rows in order widens each row of
 * the statistics it needs once. */
typedef struct {
  float *slot[2];
  int row[2];
} RowWindow;

/* the slot holding row j of the statistics, widened into the slot of any row but `keep` if
 * it is in neither */
static const float *
window_row (RowWindow *win, const Refine *g, const TwoTaps *t, const HfamResizeFilter *fx,
            int w, int channels, int j, int keep)
{
  if (win->row[0] == j)
    return win->slot[0];
  if (win->row[1] == j)
    return win->slot[1];
  const int k = win->row[0] == keep ? 1 : 0;
  widen_row (g, t, fx->lo, w, j, channels, win->slot[k]);
  win->row[k] = j;
  return win->slot[k];
}

size_t
hfam_refine_scratch_bytes (int aw, int ah, int frame_width, const HfamRefineParams *p,
                           int threads)
{
  const size_t sw = p->stats_width ? p->stats_width : aw;
  const size_t sh = p->stats_height ? p->stats_height : ah;
  const size_t nc = p->colour ? 3 : 1;

  /* the guide, alpha, the still weights, the coefficients and their means at the
   * statistics' size; each thread's two rows of them widened to the frame's width (with
   * alpha and the still weights) and its row of the frame; the two taps and their offsets */
  return sizeof (float) * ((nc + 2 + 2 * (nc + 1)) * sw * sh
                           + (2 * (nc + 3) + 3) * (size_t) frame_width * threads
                           + 2 * (size_t) frame_width)
         + sizeof (int) * 3 * (size_t) frame_width;
}

int
hfam_refine (const float *alpha, int aw, int ah, const HfamFrame *frame,
             const HfamYuvToRgb *yuv, const HfamRefineParams *p, const HfamKeyLevels *levels,
             float *out, int out_stride, HfamScratch *scratch)
{
  return hfam_refine_held (alpha, aw, ah, frame, yuv, p, levels, NULL, out, out_stride, scratch);
}

int
hfam_refine_held (const float *alpha, int aw, int ah, const HfamFrame *frame,
                  const HfamYuvToRgb *yuv, const HfamRefineParams *p,
                  const HfamKeyLevels *levels, const HfamRefineHold *hold, float *out,
                  int out_stride, HfamScratch *scratch)
{
  const int w = frame ? frame->width : 0, h = frame ? frame->height : 0;
  const int sw = p && p->stats_width ? p->stats_width : aw;
  const int sh = p && p->stats_height ? p->stats_height : ah;
  const int nc = p && p->colour ? 3 : 1, threads = omp_get_max_threads ();
  const size_t plane = (size_t) sw * sh;
  HfamScratch own = { NULL, 0 };
  HfamResizeFilter fx = { 0 }, fy = { 0 };
  TwoTaps taps;
  size_t total;
  float *guide, *low_alpha, *low_still, *coef, *mean_coef, *rows;
  int failed = 0;

  if (!alpha || !out || !hfam_frame_valid (frame) || out_stride < w
      || (frame->format >= HFAM_FRAME_NV12 && !yuv) || !hfam_refine_params_valid (p, aw, ah, w, h)
      || (levels && !hfam_key_levels_valid (levels))
      || (hold && (!hold->held || hold->held_stride < w)))
    return -1;
  total = hfam_refine_scratch_bytes (aw, ah, w, p, threads);
  if (!(guide = hfam_scratch_reserve (scratch ? scratch : &own, total)))
    return -1;
  low_alpha = guide + nc * plane;
  low_still = low_alpha + plane;
  coef = low_still + plane;
  mean_coef = coef + (nc + 1) * plane;
  rows = mean_coef + (nc + 1) * plane;
  taps.left_weight = rows + (size_t) (2 * (nc + 3) + 3) * w * threads;
  taps.right_weight = taps.left_weight + w;
  taps.left = (int *) (taps.right_weight + w);
  taps.right = taps.left + w;
  taps.offset = taps.right + w;
  if (hfam_resize_filter_init (&fx, sw, w) != 0 || hfam_resize_filter_init (&fy, sh, h) != 0
      || two_taps_init (&taps, &fx) != 0 || !at_most_two_taps (&fy)) {
    hfam_resize_filter_clear (&fx);
    hfam_resize_filter_clear (&fy);
    hfam_scratch_clear (&own);
    return -1;
  }
  const int resized = sw != aw || sh != ah;
  const float *still = hold ? hold->still : NULL;
  if (resized)
    failed = hfam_resize_plane (alpha, aw, ah, aw, low_alpha, sw, sh, sw) != 0;
  if (!failed && resized && still)
    failed = hfam_resize_plane (still, aw, ah, aw, low_still, sw, sh, sw) != 0;
  if (!failed)
    failed = low_guide (frame, yuv, sw, sh, nc, guide) != 0;

  Refine g = { guide, resized ? low_alpha : alpha, still && resized ? low_still : still,
               sw, sh, nc, p->eps, coef, mean_coef };
  if (!failed)
    failed = hfam_box_mean (sw, sh, HFAM_REFINE_STATS_CHANNELS (p->colour), p->radius,
                            stats_row, coef_row, &g) != 0;
  if (!failed)
    failed = hfam_box_mean (sw, sh, nc + 1, p->radius, coef_in, coef_out, &g) != 0;
  /* (the planes of alpha and the still weights only for a held matte) */
  const int channels = nc + 1 + (hold ? 1 + (still != NULL) : 0);
  if (!failed) {
#pragma omp parallel if ((int64_t) w * h >= HFAM_PARALLEL_MIN_VALUES)
    {
      float *mine = rows + (size_t) (2 * (nc + 3) + 3) * w * omp_get_thread_num ();
      RowWindow win = { { mine, mine + (size_t) (nc + 3) * w }, { -1, -1 } };
      float *rgb = mine + (size_t) 2 * (nc + 3) * w;
      /* (static: each thread's rows in one run, in order) */
#pragma omp for schedule (static)
      for (int y = 0; y < h; y++) {
        const int j = fy.start[y], j1 = fy.len[y] > 1 ? j + 1 : j;
        const float *w0 = window_row (&win, &g, &taps, &fx, w, channels, j, j1);
        const float *w1 = window_row (&win, &g, &taps, &fx, w, channels, j1, j);
        apply_row (&g, &fy, w0, w1, frame, yuv, levels, y, rgb,
                   hold ? hold->held + (size_t) y * hold->held_stride : NULL,
                   out + (size_t) y * out_stride);
      }
    }
  }
  hfam_resize_filter_clear (&fx);
  hfam_resize_filter_clear (&fy);
  hfam_scratch_clear (&own);
  return failed ? -1 : 0;
}
