/* Motion compensation of the kept matte on the CPU (compensate.h): block matching over a small
 * pyramid of the grey planes, then a bilinear warp. At the inference size (~512 x 288) with
 * 8-pixel blocks that is a few million squared differences per frame. */
#include "compensate.h"

#include <limits.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "box.h"
#include "resize.h"

static inline int
mini (int a, int b)
{
  return a < b ? a : b;
}

static inline int
clampi (int v, int lo, int hi)
{
  return v < lo ? lo : v > hi ? hi : v;
}

int
hfam_flow_params_valid (const HfamFlowParams *p)
{
  /* (written so that NaN fails) */
  return p && p->block >= 2 && p->levels >= 1 && p->levels <= HFAM_FLOW_MAX_LEVELS
         && p->search >= 1 && p->search <= HFAM_FLOW_MAX_SEARCH && p->bias >= 0.0f
         && isfinite (p->bias) && p->spread >= 0 && p->spread <= HFAM_FLOW_MAX_SPREAD;
}

void
hfam_flow_blocks (int w, int h, const HfamFlowParams *p, int *bw, int *bh)
{
  *bw = (w + p->block - 1) / p->block;
  *bh = (h + p->block - 1) / p->block;
}

void
hfam_flow_layout (int w, int h, const HfamFlowParams *p, HfamFlowLayout *layout)
{
  size_t next = 0;

  layout->levels = 1;
  while (layout->levels < p->levels && (w >> layout->levels) >= p->block
         && (h >> layout->levels) >= p->block)
    layout->levels++;
  for (int l = 0; l < layout->levels; l++) {
    layout->w[l] = w >> l;
    layout->h[l] = h >> l;
    layout->planes[l] = next;
    if (l > 0)
      next += 2 * (size_t) layout->w[l] * layout->h[l];
    hfam_flow_blocks (layout->w[l], layout->h[l], p, &layout->bw[l], &layout->bh[l]);
    layout->vectors[l] = next;
    next += 2 * (size_t) layout->bw[l] * layout->bh[l];
  }
  layout->floats = next;
}

size_t
hfam_compensate_scratch_floats (int w, int h, const HfamFlowParams *p)
{
  const size_t plane = (size_t) w * h;
  HfamFlowLayout layout;

  /* the full-size vectors, then the pyramid, whose floats the warp's two outputs (and then
   * the spread of moved) reuse */
  hfam_flow_layout (w, h, p, &layout);
  return 2 * (size_t) layout.bw[0] * layout.bh[0]
         + (layout.floats > 2 * plane ? layout.floats : 2 * plane);
}

/* out (w / 2 x h / 2) = the 2 x 2 means of in (w x h), shared among the calling team */
static void
halve (const float *in, int w, int h, float *out)
{
  const int ow = w / 2, oh = h / 2;

#pragma omp for
  for (int y = 0; y < oh; y++) {
    const float *a = in + (size_t) 2 * y * w, *b = a + w;
    for (int x = 0; x < ow; x++)
      out[(size_t) y * ow + x] = 0.25f * ((a[2 * x] + a[2 * x + 1]) + (b[2 * x] + b[2 * x + 1]));
  }
}

typedef struct {
  const float *grey, *kept;
  int w, h, block;
} Level;

/* 8 floats, as the compiler lowers them for the target: one AVX register in the AVX2 clones
 * below, two SSE ones elsewhere; each lane's arithmetic is the same either way. (Passed by
 * pointer: a 32-byte vector by value would have an ABI of its own under AVX.) */
typedef float v8sf __attribute__ ((vector_size (32)));

/* the squared differences of 8 floats of a and b added to *acc */
static inline __attribute__ ((always_inline)) void
add_squares8 (v8sf *acc, const float *a, const float *b)
{
  v8sf va, vb;

  memcpy (&va, a, sizeof va);
  memcpy (&vb, b, sizeof vb);
  va -= vb;
  *acc += va * va;
}

/* the 8 lanes added in a fixed order (the CUDA twin's too) */
static inline __attribute__ ((always_inline)) float
sum8 (const v8sf *a)
{
  return (((*a)[0] + (*a)[1]) + ((*a)[2] + (*a)[3])) + (((*a)[4] + (*a)[5]) + ((*a)[6] + (*a)[7]));
}

/* 8 columns' sums of squared differences over rows y0..y1-1 of a and b (b's rows clamped,
 * moved by uy, and its columns by ux), a lane per column; the common case (whole 8-pixel
 * blocks inside the image) */
static inline __attribute__ ((always_inline)) float
cost8 (const Level *l, int x0, int y0, int y1, int ux, int uy)
{
  v8sf acc = { 0 };

  for (int y = y0; y < y1; y++)
    add_squares8 (&acc, l->grey + (size_t) y * l->w + x0,
                  l->kept + (size_t) clampi (y + uy, 0, l->h - 1) * l->w + x0 + ux);
  return sum8 (&acc);
}

/* the mean of (grey(p) - kept(p + u))^2 over block (bx, by), kept sampled clamped; inlined
 * into the cloned row loops below, which is where it gets AVX2 */
static inline __attribute__ ((always_inline)) float
block_cost (const Level *l, int bx, int by, int ux, int uy)
{
  const int x0 = bx * l->block, y0 = by * l->block;
  const int x1 = mini (x0 + l->block, l->w), y1 = mini (y0 + l->block, l->h);
  const int inside = x0 + ux >= 0 && x1 - 1 + ux < l->w;
  float sum = 0.0f;

  if (inside && x1 - x0 == 8)
    return cost8 (l, x0, y0, y1, ux, uy) / (float) (8 * (y1 - y0));
  for (int y = y0; y < y1; y++) {
    const float *a = l->grey + (size_t) y * l->w;
    const float *b = l->kept + (size_t) clampi (y + uy, 0, l->h - 1) * l->w;
    if (inside) {
      for (int x = x0; x < x1; x++) {
        const float d = a[x] - b[x + ux];
        sum += d * d;
      }
    } else {
      for (int x = x0; x < x1; x++) {
        const float d = a[x] - b[clampi (x + ux, 0, l->w - 1)];
        sum += d * d;
      }
    }
  }
  return sum / (float) ((x1 - x0) * (y1 - y0));
}

/* The costs (block_cost) of the 3 x 3 vectors around (cx, cy), row by row: one pass over the
 * block's rows serves all nine where the shifted 8-pixel rows lie inside the image, with each
 * cost summed in cost8's order (so the same bits). */
static inline __attribute__ ((always_inline)) void
costs_around (const Level *l, int bx, int by, int cx, int cy, float cost[9])
{
  const int x0 = bx * l->block, y0 = by * l->block;
  const int x1 = mini (x0 + l->block, l->w), y1 = mini (y0 + l->block, l->h);

  if (x1 - x0 != 8 || x0 + cx - 1 < 0 || x1 + cx >= l->w) {
    for (int i = 0; i < 9; i++)
      cost[i] = block_cost (l, bx, by, cx + i % 3 - 1, cy + i / 3 - 1);
    return;
  }
  v8sf acc[9] = { { 0 } };
  for (int y = y0; y < y1; y++) {
    const float *a = l->grey + (size_t) y * l->w + x0;
    for (int dy = 0; dy < 3; dy++) {
      const float *b = l->kept + (size_t) clampi (y + cy + dy - 1, 0, l->h - 1) * l->w + x0
                       + cx - 1;
      for (int dx = 0; dx < 3; dx++)
        add_squares8 (&acc[3 * dy + dx], a, b + dx);
    }
  }
  for (int i = 0; i < 9; i++)
    cost[i] = sum8 (&acc[i]) / (float) (8 * (y1 - y0));
}

/* the best of the 3 x 3 around (cx, cy) into *best (cost, ux, uy), by cost + bias; the
 * candidates within `searched` (pixels each way) of 0 are left out: their costs are known and,
 * with ties kept, could not win again */
static inline __attribute__ ((always_inline)) void
search_around (const Level *l, int bx, int by, int cx, int cy, int searched, float bias,
               float *best, int *ux, int *uy)
{
  float cost[9];

  costs_around (l, bx, by, cx, cy, cost);
  for (int dy = -1; dy <= 1; dy++)
    for (int dx = -1; dx <= 1; dx++) {
      const int vx = cx + dx, vy = cy + dy;
      if (abs (vx) <= searched && abs (vy) <= searched)
        continue;
      const float c = cost[3 * (dy + 1) + dx + 1] + bias * (float) (abs (vx) + abs (vy));
      if (c < *best) {
        *best = c;
        *ux = vx;
        *uy = vy;
      }
    }
}

/* (c_minus - c_plus) / (2 (c_minus - 2 c0 + c_plus)), the parabola's minimum, within +-0.5 */
static float
parabola (float minus, float c0, float plus)
{
  const float curve = minus - 2.0f * c0 + plus;

  if (!(curve > 0.0f))
    return 0.0f;
  return fminf (fmaxf (0.5f * (minus - plus) / curve, -0.5f), 0.5f);
}

/* One level's search: its planes, its vectors (bw x bh, in its pixels) and its parent's (pbw x
 * pbh, in the parent's pixels; NULL at the coarsest level, which searches all of
 * [-search, search]^2). */
typedef struct {
  Level l;
  int bw, bh;
  const int *pux, *puy;
  int pbw, pbh;
  float bias;
  int search;
  int *ux, *uy;
} LevelSearch;

/* The vectors of block row `by`; cloned for AVX2 (block_cost inlined), where the squared
 * differences are most of the flow's time */
HFAM_VECTOR_CLONES static void
search_row (const LevelSearch *s, int by)
{
  const Level *l = &s->l;

  for (int bx = 0; bx < s->bw; bx++) {
    int vx = 0, vy = 0;
    float best = block_cost (l, bx, by, 0, 0);
    if (!s->pux) {
      for (int cy = -s->search; cy <= s->search; cy++)
        for (int cx = -s->search; cx <= s->search; cx++) {
          const float c = block_cost (l, bx, by, cx, cy)
                          + s->bias * (float) (abs (cx) + abs (cy));
          if (c < best) {
            best = c;
            vx = cx;
            vy = cy;
          }
        }
    } else {
      /* the parent holding this block's centre */
      const int px = mini ((bx * l->block + l->block / 2) / 2 / l->block, s->pbw - 1);
      const int py = mini ((by * l->block + l->block / 2) / 2 / l->block, s->pbh - 1);
      const size_t parent = (size_t) py * s->pbw + px;
      search_around (l, bx, by, 0, 0, 0, s->bias, &best, &vx, &vy);
      if (s->pux[parent] != 0 || s->puy[parent] != 0)
        search_around (l, bx, by, 2 * s->pux[parent], 2 * s->puy[parent], 1, s->bias, &best,
                       &vx, &vy);
    }
    s->ux[(size_t) by * s->bw + bx] = vx;
    s->uy[(size_t) by * s->bw + bx] = vy;
  }
}

/* The sub-pixel vectors (ux, uy) of full-size block row `by` from the integer ones (ix, iy):
 * a parabola through the unbiased costs around each moving block's best */
HFAM_VECTOR_CLONES static void
subpixel_row (const Level *l, int bw, int by, const int *ix, const int *iy, float *ux, float *uy)
{
  for (int bx = 0; bx < bw; bx++) {
    const size_t b = (size_t) by * bw + bx;
    ux[b] = (float) ix[b];
    uy[b] = (float) iy[b];
    if (ix[b] == 0 && iy[b] == 0)
      continue;
    float cost[9];
    costs_around (l, bx, by, ix[b], iy[b], cost);
    ux[b] += parabola (cost[3], cost[4], cost[5]);
    uy[b] += parabola (cost[1], cost[4], cost[7]);
  }
}

int
hfam_block_flow (const float *grey, const float *kept_grey, int w, int h,
                 const HfamFlowParams *p, float *ux, float *uy, float *scratch)
{
  if (!grey || !kept_grey || !ux || !uy || !scratch || w < 1 || h < 1
      || !hfam_flow_params_valid (p))
    return -1;

  HfamFlowLayout layout;
  hfam_flow_layout (w, h, p, &layout);
  const int levels = layout.levels;
  const int *bw = layout.bw, *bh = layout.bh;
  Level level[HFAM_FLOW_MAX_LEVELS];
  int *vectors[HFAM_FLOW_MAX_LEVELS];

  /* (ints in float-sized slots) */
  _Static_assert (sizeof (int) == sizeof (float), "an int per float of scratch");
  for (int l = 0; l < levels; l++) {
    level[l] = (Level) { grey, kept_grey, layout.w[l], layout.h[l], p->block };
    if (l > 0) {
      level[l].grey = scratch + layout.planes[l];
      level[l].kept = level[l].grey + (size_t) layout.w[l] * layout.h[l];
    }
    vectors[l] = (int *) (scratch + layout.vectors[l]);
  }
  /* one team for the whole flow, each level by the full size's rule: the coarsest level's
   * full search costs about as much as the finest level's (a barrier between the passes is
   * cheaper than a new team) */
#pragma omp parallel if ((int64_t) w * h >= HFAM_PARALLEL_MIN_VALUES)
  {
    for (int l = 1; l < levels; l++) {
      float *g = scratch + layout.planes[l], *k = g + (size_t) layout.w[l] * layout.h[l];
      halve (level[l - 1].grey, level[l - 1].w, level[l - 1].h, g);
      halve (level[l - 1].kept, level[l - 1].w, level[l - 1].h, k);
    }
    for (int l = levels - 1; l >= 0; l--) {
      const size_t nb = (size_t) bw[l] * bh[l];
      const int top = l == levels - 1;
      const LevelSearch search = {
        level[l], bw[l], bh[l],
        top ? NULL : vectors[l + 1],
        top ? NULL : vectors[l + 1] + (size_t) bw[l + 1] * bh[l + 1],
        top ? 0 : bw[l + 1], top ? 0 : bh[l + 1],
        p->bias * (float) (1 << l), p->search, vectors[l], vectors[l] + nb,
      };
#pragma omp for
      for (int by = 0; by < bh[l]; by++)
        search_row (&search, by);
    }

    const int *ix = vectors[0], *iy = vectors[0] + (size_t) bw[0] * bh[0];
#pragma omp for
    for (int by = 0; by < bh[0]; by++)
      subpixel_row (&level[0], bw[0], by, ix, iy, ux, uy);
  }
  return 0;
}

/* Where pixel i falls between block centres b * block + (block - 1) / 2 (inv_block =
 * 1 / block): the first block and the second's weight, 0 at the clamped ends (where the second,
 * min (first + 1, nb - 1), does not count). */
static inline void
between_centres (int i, int block, float inv_block, int nb, int *b0, float *t)
{
  const float f = ((float) i - 0.5f * (float) (block - 1)) * inv_block;

  if (f <= 0.0f) {
    *b0 = 0;
    *t = 0.0f;
  } else if (f >= (float) (nb - 1)) {
    *b0 = nb - 1;
    *t = 0.0f;
  } else {
    *b0 = (int) f;
    *t = f - (float) *b0;
  }
}

/* v clamped to 0..hi, written as the max and min instructions are defined so that the
 * compiler uses them (fminf and fmaxf are calls into libm on baseline x86-64) */
static inline float
clampf (float v, float hi)
{
  v = v > 0.0f ? v : 0.0f;
  return v < hi ? v : hi;
}

/* Pixels [x_lo, x_hi) of one row of the warp, their vectors in pixel_vx, pixel_vy. Branch-free
 * so that it vectorises: where a pixel's vector is 0 the sampling gives its own value, bit for
 * bit. b and moved are NULL or not in each call, so that their tests go. */
static inline __attribute__ ((always_inline)) void
warp_pixels (const float *restrict a, const float *restrict b, int w, int h, int y,
             const float *restrict pixel_vx, const float *restrict pixel_vy, int x_lo, int x_hi,
             float *restrict out_a, float *restrict out_b, float *restrict moved)
{
  const int row = y * w;

  for (int x = x_lo; x < x_hi; x++) {
    const float vx = pixel_vx[x], vy = pixel_vy[x];
    if (moved)
      moved[row + x] = sqrtf (vx * vx + vy * vy);
    const float sx = clampf ((float) x + vx, (float) (w - 1));
    const float sy = clampf ((float) y + vy, (float) (h - 1));
    const int x0 = (int) sx, y0 = (int) sy;
    const int r = y0 * w, s = mini (y0 + 1, h - 1) * w, x1 = mini (x0 + 1, w - 1);
    const float fx = sx - (float) x0, fy = sy - (float) y0;
    out_a[row + x] = (1.0f - fy) * ((1.0f - fx) * a[r + x0] + fx * a[r + x1])
                     + fy * ((1.0f - fx) * a[s + x0] + fx * a[s + x1]);
    if (b)
      out_b[row + x] = (1.0f - fy) * ((1.0f - fx) * b[r + x0] + fx * b[r + x1])
                       + fy * ((1.0f - fx) * b[s + x0] + fx * b[s + x1]);
  }
}

/* whether the pixels whose first block is c take a vector other than 0 */
static inline int
column_moves (const float *row_vx, const float *row_vy, int bw, int c)
{
  const int c1 = mini (c + 1, bw - 1);
  return row_vx[c] != 0.0f || row_vy[c] != 0.0f || row_vx[c1] != 0.0f || row_vy[c1] != 0.0f;
}

/* The vectors of pixels [lo, hi) of one block column: (vx0, vy0) and (vx1, vy1) the block
 * column's and the next one's, weight[x] the next one's weight. (A function of its own, its
 * pointers restrict, so that the loop vectorises.) */
static inline __attribute__ ((always_inline)) void
column_vectors (const float *restrict weight, float vx0, float vx1, float vy0, float vy1,
                int lo, int hi, float *restrict pixel_vx, float *restrict pixel_vy)
{
  for (int x = lo; x < hi; x++) {
    pixel_vx[x] = (1.0f - weight[x]) * vx0 + weight[x] * vx1;
    pixel_vy[x] = (1.0f - weight[x]) * vy0 + weight[x] * vy1;
  }
}

/* One row of the warp, in runs of blocks: where the vectors are 0 (on real video most of the
 * picture) the planes are copied, elsewhere sampled (warp_pixels). `start`: the first pixel
 * of each block column (bw + 1, the last w); `weight`: every pixel's weight of the block
 * column after its own (between_centres); row_vx, row_vy: the vectors of the block rows above
 * and below the pixel row, already blended by its weight (bw each); pixel_vx, pixel_vy: w
 * floats each for the pixels' vectors. */
HFAM_VECTOR_CLONES static void
warp_row (const float *a, const float *b, int w, int h, int y, int bw, const int *start,
          const float *weight, const float *row_vx, const float *row_vy, float *pixel_vx,
          float *pixel_vy, float *out_a, float *out_b, float *moved)
{
  const size_t row = (size_t) y * w;

  for (int c = 0, e; c < bw; c = e) {
    const int moves = column_moves (row_vx, row_vy, bw, c);
    for (e = c + 1; e < bw && column_moves (row_vx, row_vy, bw, e) == moves; e++)
      ;
    const int lo = start[c], hi = start[e];
    /* the pixels' vectors, block column by block column (the two vectors constant in each) */
    for (int k = c; moves && k < e; k++) {
      const int k1 = mini (k + 1, bw - 1);
      column_vectors (weight, row_vx[k], row_vx[k1], row_vy[k], row_vy[k1], start[k],
                      start[k + 1], pixel_vx, pixel_vy);
    }
    if (!moves) {
      memcpy (out_a + row + lo, a + row + lo, sizeof (float) * (hi - lo));
      if (b)
        memcpy (out_b + row + lo, b + row + lo, sizeof (float) * (hi - lo));
      if (moved)
        memset (moved + row + lo, 0, sizeof (float) * (hi - lo));
    } else if (b && moved) {
      warp_pixels (a, b, w, h, y, pixel_vx, pixel_vy, lo, hi, out_a, out_b, moved);
    } else if (b) {
      warp_pixels (a, b, w, h, y, pixel_vx, pixel_vy, lo, hi, out_a, out_b, NULL);
    } else if (moved) {
      warp_pixels (a, NULL, w, h, y, pixel_vx, pixel_vy, lo, hi, out_a, NULL, moved);
    } else {
      warp_pixels (a, NULL, w, h, y, pixel_vx, pixel_vy, lo, hi, out_a, NULL, NULL);
    }
  }
}

/* hfam_warp_planes, then, where back_a is given, out_a and out_b copied into back_a and back_b
 * (a and b themselves, for hfam_motion_compensate) by the same team once every row is warped */
static int
warp_planes (const float *a, const float *b, int w, int h, int block, const float *ux,
             const float *uy, float *out_a, float *out_b, float *moved, float *back_a,
             float *back_b)
{
  const int bw = (w + block - 1) / block, bh = (h + block - 1) / block;
  const float inv_block = 1.0f / (float) block;
  const int parallel = (int64_t) w * h >= HFAM_PARALLEL_MIN_VALUES;
  const int threads = parallel ? omp_get_max_threads () : 1;
  /* each block column's first pixel and the columns' weights, the same on every row; then
   * each thread's row of vectors at the block columns and at the pixels */
  int *start = malloc (sizeof (int) * (bw + 1));
  float *weight = malloc (sizeof (float) * w);
  float *rows = malloc (2 * sizeof (float) * (bw + w) * threads);
  /* (the rows index the planes with ints, which vectorise) */
  const int failed = !start || !weight || !rows || (int64_t) w * h > INT_MAX;

  if (!failed) {
    /* (a pixel's first block rises with x) */
    int c = 0;
    for (int x = 0; x < w; x++) {
      int first;
      between_centres (x, block, inv_block, bw, &first, &weight[x]);
      while (c <= first)
        start[c++] = x;
    }
    while (c <= bw)
      start[c++] = w;
#pragma omp parallel num_threads (threads) if (parallel)
    {
      float *row_vx = rows + (size_t) 2 * (bw + w) * omp_get_thread_num (), *row_vy = row_vx + bw;
      float *pixel_vx = row_vy + bw, *pixel_vy = pixel_vx + w;
#pragma omp for
      for (int y = 0; y < h; y++) {
        int r0;
        float ty;
        between_centres (y, block, inv_block, bh, &r0, &ty);
        const int r1 = mini (r0 + 1, bh - 1);
        for (int c = 0; c < bw; c++) {
          row_vx[c] = (1.0f - ty) * ux[(size_t) r0 * bw + c] + ty * ux[(size_t) r1 * bw + c];
          row_vy[c] = (1.0f - ty) * uy[(size_t) r0 * bw + c] + ty * uy[(size_t) r1 * bw + c];
        }
        warp_row (a, b, w, h, y, bw, start, weight, row_vx, row_vy, pixel_vx, pixel_vy, out_a,
                  out_b, moved);
      }
      if (back_a) {
#pragma omp for
        for (int y = 0; y < h; y++) {
          memcpy (back_a + (size_t) y * w, out_a + (size_t) y * w, sizeof (float) * w);
          if (back_b)
            memcpy (back_b + (size_t) y * w, out_b + (size_t) y * w, sizeof (float) * w);
        }
      }
    }
  }
  free (start);
  free (weight);
  free (rows);
  return failed ? -1 : 0;
}

int
hfam_warp_planes (const float *a, const float *b, int w, int h, int block, const float *ux,
                  const float *uy, float *out_a, float *out_b, float *moved)
{
  return warp_planes (a, b, w, h, block, ux, uy, out_a, out_b, moved, NULL, NULL);
}

static inline float
maxf (float a, float b)
{
  return a > b ? a : b;
}

/* The largest power of 2 not above 2 r + 1: two windows of that many values, one from each
 * end, cover a window of 2 r + 1. */
static int
covering_span (int r)
{
  int span = 1;

  while (2 * span <= 2 * r + 1)
    span *= 2;
  return span;
}

/* the largest of in[x - r..x + r], clipped to 0..w - 1 */
static inline float
clipped_window_max (const float *in, int w, int x, int r)
{
  const int lo = x - r < 0 ? 0 : x - r, hi = mini (x + r, w - 1);
  float m = in[lo];

  for (int i = lo + 1; i <= hi; i++)
    m = maxf (m, in[i]);
  return m;
}

/* Row y of tmp: row y of plane's largest value over x - r..x + r (clipped). Spans doubled in
 * `line` and `spare` (w each): after k steps each value is the largest of 2^k from it on; the
 * pixels whose window is whole take two spans, the r at each end their own window. */
HFAM_VECTOR_CLONES static void
row_max (const float *plane, int w, int y, int r, float *line, float *spare, float *tmp)
{
  const float *in = plane + (size_t) y * w;
  float *out = tmp + (size_t) y * w;
  const int span = covering_span (r), left = mini (r, w), right = w - r > left ? w - r : left;

  memcpy (line, in, sizeof (float) * w);
  for (int s = 1; s < span; s *= 2) {
    for (int x = 0; x + s < w; x++)
      spare[x] = maxf (line[x], line[x + s]);
    for (int x = w - s < 0 ? 0 : w - s; x < w; x++)
      spare[x] = line[x];
    float *swap = line;
    line = spare;
    spare = swap;
  }
  for (int x = left; x < right; x++)
    out[x] = maxf (line[x - r], line[x + r - span + 1]);
  for (int x = 0; x < left; x++)
    out[x] = clipped_window_max (in, w, x, r);
  for (int x = right; x < w; x++)
    out[x] = clipped_window_max (in, w, x, r);
}

/* dst's row y: the larger of src's rows y and y + s (src's row y past the end) */
HFAM_VECTOR_CLONES static void
rows_max (const float *src, int w, int h, int y, int s, float *dst)
{
  const float *a = src + (size_t) y * w, *b = a + (size_t) s * w;
  float *out = dst + (size_t) y * w;

  if (y + s >= h) {
    memcpy (out, a, sizeof (float) * w);
    return;
  }
  for (int x = 0; x < w; x++)
    out[x] = maxf (a[x], b[x]);
}

/* plane's row y: the largest of rows y - r..y + r (clipped) of `rows`, from the spans in
 * `spans` (each row the largest of `span` rows from it on) where the window is whole */
HFAM_VECTOR_CLONES static void
column_max (const float *rows, const float *spans, int w, int h, int y, int r, int span,
            float *plane)
{
  float *out = plane + (size_t) y * w;

  if (y - r >= 0 && y + r < h) {
    const float *a = spans + (size_t) (y - r) * w, *b = spans + (size_t) (y + r - span + 1) * w;
    for (int x = 0; x < w; x++)
      out[x] = maxf (a[x], b[x]);
    return;
  }
  const int lo = y - r < 0 ? 0 : y - r;
  memcpy (out, rows + (size_t) lo * w, sizeof (float) * w);
  for (int j = lo + 1; j <= mini (y + r, h - 1); j++) {
    const float *in = rows + (size_t) j * w;
    for (int x = 0; x < w; x++)
      out[x] = maxf (out[x], in[x]);
  }
}

/* plane (w x h) replaced by its largest value over the (2 r + 1)^2 window around each pixel,
 * clipped to the image; tmp: 2 w x h floats. The windows along each axis come from spans
 * doubled log2 (2 r + 1) times rather than 2 r + 1 values each. */
static int
window_max (float *plane, int w, int h, int r, float *tmp)
{
  const int parallel = (int64_t) w * h >= HFAM_PARALLEL_MIN_VALUES;
  const int threads = parallel ? omp_get_max_threads () : 1, span = covering_span (r);
  float *rows = tmp, *other = tmp + (size_t) w * h;
  float *lines = malloc (2 * sizeof (float) * w * threads);

  if (!lines)
    return -1;
  /* the spans of rows are doubled between `other` and plane (free after the first pass) so as
   * to end in other */
  int steps = 0;
  for (int s = 1; s < span; s *= 2)
    steps++;
  /* one team for all the passes (a barrier between them is cheaper than a new team) */
#pragma omp parallel num_threads (threads) if (parallel)
  {
    float *line = lines + (size_t) 2 * w * omp_get_thread_num ();
#pragma omp for
    for (int y = 0; y < h; y++)
      row_max (plane, w, y, r, line, line + w, rows);
    const float *src = rows;
    for (int s = 1, k = 1; s < span; s *= 2, k++) {
      float *dst = (steps - k) % 2 == 0 ? other : plane;
#pragma omp for
      for (int y = 0; y < h; y++)
        rows_max (src, w, h, y, s, dst);
      src = dst;
    }
#pragma omp for
    for (int y = 0; y < h; y++)
      column_max (rows, src, w, h, y, r, span, plane);
  }
  free (lines);
  return 0;
}

int
hfam_motion_compensate (float *kept_matte, float *kept_grey, const float *grey, int w,
                        int h, const HfamFlowParams *p, float *moved, float *scratch)
{
  int bw, bh;

  if (!kept_matte || !kept_grey || !grey || !scratch || w < 1 || h < 1
      || !hfam_flow_params_valid (p))
    return -1;
  hfam_flow_blocks (w, h, p, &bw, &bh);
  float *ux = scratch, *uy = scratch + (size_t) bw * bh, *rest = uy + (size_t) bw * bh;

  hfam_block_flow (grey, kept_grey, w, h, p, ux, uy, rest);
  if (warp_planes (kept_matte, kept_grey, w, h, p->block, ux, uy, rest, rest + (size_t) w * h,
                   moved, kept_matte, kept_grey) != 0)
    return -1;
  if (moved && p->spread > 0 && window_max (moved, w, h, p->spread, rest) != 0)
    return -1;
  return 0;
}
