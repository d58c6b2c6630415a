/* Motion compensation of the kept matte (compensate.cuh). The costs are summed in the CPU
 * twin's order with FMA contraction ruled out (__fmul_rn, __fadd_rn), so that both pick the
 * same vectors; at the inference size the matching is a few thousand threads of a few hundred
 * squared differences each. */
#include "compensate.cuh"

namespace {

constexpr int BLOCK_X = 32, BLOCK_Y = 8, FLOW_THREADS = 64;

struct Level {
  const float *grey, *kept;
  int w, h, block;
};

__device__ int
clampi (int v, int lo, int hi)
{
  return v < lo ? lo : v > hi ? hi : v;
}

__global__ void
halve_kernel (const float *g, const float *k, int w, int h, float *out_g, float *out_k)
{
  const int ow = w / 2, oh = h / 2;
  const int x = blockIdx.x * BLOCK_X + threadIdx.x, y = blockIdx.y * BLOCK_Y + threadIdx.y;
  if (x >= ow || y >= oh)
    return;
  const size_t a = (size_t) 2 * y * w + 2 * x, b = a + w;
  out_g[(size_t) y * ow + x] = 0.25f * ((g[a] + g[a + 1]) + (g[b] + g[b + 1]));
  out_k[(size_t) y * ow + x] = 0.25f * ((k[a] + k[a + 1]) + (k[b] + k[b + 1]));
}

/* compensate.c's block_cost: the 8-column sums for whole blocks inside, else row by row */
__device__ float
block_cost (const Level &l, int bx, int by, int ux, int uy)
{
  const int x0 = bx * l.block, y0 = by * l.block;
  const int x1 = min (x0 + l.block, l.w), y1 = min (y0 + l.block, l.h);
  const bool inside = x0 + ux >= 0 && x1 - 1 + ux < l.w;

  if (inside && x1 - x0 == 8) {
    float acc[8] = { 0 };
    for (int y = y0; y < y1; y++) {
      const float *a = l.grey + (size_t) y * l.w + x0;
      const float *b = l.kept + (size_t) clampi (y + uy, 0, l.h - 1) * l.w + x0 + ux;
      for (int k = 0; k < 8; k++) {
        const float d = __fsub_rn (a[k], b[k]);
        acc[k] = __fadd_rn (acc[k], __fmul_rn (d, d));
      }
    }
    return (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])))
           / (float) (8 * (y1 - y0));
  }
  float sum = 0.0f;
  for (int y = y0; y < y1; y++) {
    const float *a = l.grey + (size_t) y * l.w;
    const float *b = l.kept + (size_t) clampi (y + uy, 0, l.h - 1) * l.w;
    for (int x = x0; x < x1; x++) {
      const float d = __fsub_rn (a[x], b[clampi (x + ux, 0, l.w - 1)]);
      sum = __fadd_rn (sum, __fmul_rn (d, d));
    }
  }
  return sum / (float) ((x1 - x0) * (y1 - y0));
}

__device__ void
search_around (const Level &l, int bx, int by, int cx, int cy, float bias, float *best, int *ux,
               int *uy)
{
  for (int dy = -1; dy <= 1; dy++)
    for (int dx = -1; dx <= 1; dx++) {
      const int vx = cx + dx, vy = cy + dy;
      const float c = __fadd_rn (block_cost (l, bx, by, vx, vy),
                                 __fmul_rn (bias, (float) (abs (vx) + abs (vy))));
      if (c < *best) {
        *best = c;
        *ux = vx;
        *uy = vy;
      }
    }
}

__device__ float
parabola (float minus, float c0, float plus)
{
  const float curve = __fadd_rn (__fsub_rn (minus, __fmul_rn (2.0f, c0)), plus);
  if (!(curve > 0.0f))
    return 0.0f;
  return fminf (fmaxf (__fmul_rn (0.5f, minus - plus) / curve, -0.5f), 0.5f);
}

/* compensate.c's level_flow, one thread per block; at full size (sub != NULL) also the
 * sub-pixel vectors */
__global__ void
flow_kernel (Level l, int bw, int bh, const int *pux, const int *puy, int pbw, int pbh,
             float bias, int search, int *ux, int *uy, float *sub_x, float *sub_y)
{
  const int i = blockIdx.x * FLOW_THREADS + threadIdx.x;
  if (i >= bw * bh)
    return;
  const int bx = i % bw, by = i / bw;
  int vx = 0, vy = 0;
  float best = block_cost (l, bx, by, 0, 0);

  if (!pux) {
    for (int cy = -search; cy <= search; cy++)
      for (int cx = -search; cx <= search; cx++) {
        const float c = __fadd_rn (block_cost (l, bx, by, cx, cy),
                                   __fmul_rn (bias, (float) (abs (cx) + abs (cy))));
        if (c < best) {
          best = c;
          vx = cx;
          vy = cy;
        }
      }
  } else {
    const int px = min ((bx * l.block + l.block / 2) / 2 / l.block, pbw - 1);
    const int py = min ((by * l.block + l.block / 2) / 2 / l.block, pbh - 1);
    const size_t parent = (size_t) py * pbw + px;
    search_around (l, bx, by, 0, 0, bias, &best, &vx, &vy);
    if (pux[parent] != 0 || puy[parent] != 0)
      search_around (l, bx, by, 2 * pux[parent], 2 * puy[parent], bias, &best, &vx, &vy);
  }
  ux[i] = vx;
  uy[i] = vy;
  if (!sub_x)
    return;
  sub_x[i] = (float) vx;
  sub_y[i] = (float) vy;
  if (vx == 0 && vy == 0)
    return;
  const float c0 = block_cost (l, bx, by, vx, vy);
  sub_x[i] += parabola (block_cost (l, bx, by, vx - 1, vy), c0, block_cost (l, bx, by, vx + 1, vy));
  sub_y[i] += parabola (block_cost (l, bx, by, vx, vy - 1), c0, block_cost (l, bx, by, vx, vy + 1));
}

__device__ void
between_centres (int i, int block, float inv_block, int nb, int *b0, int *b1, float *t)
{
  const float f = ((float) i - 0.5f * (float) (block - 1)) * inv_block;
  if (f <= 0.0f) {
    *b0 = *b1 = 0;
    *t = 0.0f;
  } else if (f >= (float) (nb - 1)) {
    *b0 = *b1 = nb - 1;
    *t = 0.0f;
  } else {
    *b0 = (int) f;
    *b1 = *b0 + 1;
    *t = f - (float) *b0;
  }
}

/* (1 - t) a + t b, rounded as the CPU twin (built without contraction) rounds it: nvcc would
 * fuse a multiply and an add */
__device__ float
mix_rn (float a, float b, float t)
{
  return __fadd_rn (__fmul_rn (1.0f - t, a), __fmul_rn (t, b));
}

__device__ float
bilinear (const float *plane, int w, int x0, int y0, int x1, int y1, float fx, float fy)
{
  const float *r = plane + (size_t) y0 * w, *s = plane + (size_t) y1 * w;
  return mix_rn (mix_rn (r[x0], r[x1], fx), mix_rn (s[x0], s[x1], fx), fy);
}

__global__ void
warp_kernel (const float *a, const float *b, int w, int h, int block, const float *ux,
             const float *uy, float *out_a, float *out_b, float *moved)
{
  const int x = blockIdx.x * BLOCK_X + threadIdx.x, y = blockIdx.y * BLOCK_Y + threadIdx.y;
  if (x >= w || y >= h)
    return;
  const int bw = (w + block - 1) / block, bh = (h + block - 1) / block;
  const float inv_block = 1.0f / (float) block;
  int r0, r1, c0, c1;
  float ty, tx;
  between_centres (y, block, inv_block, bh, &r0, &r1, &ty);
  between_centres (x, block, inv_block, bw, &c0, &c1, &tx);
  const size_t p = (size_t) r0 * bw, q = (size_t) r1 * bw;
  /* (the CPU twin's order: the block rows first, then along the row) */
  const float vx = mix_rn (mix_rn (ux[p + c0], ux[q + c0], ty), mix_rn (ux[p + c1], ux[q + c1], ty),
                           tx);
  const float vy = mix_rn (mix_rn (uy[p + c0], uy[q + c0], ty), mix_rn (uy[p + c1], uy[q + c1], ty),
                           tx);
  if (moved)
    moved[(size_t) y * w + x] = sqrtf (__fadd_rn (__fmul_rn (vx, vx), __fmul_rn (vy, vy)));
  const float sx = fminf (fmaxf ((float) x + vx, 0.0f), (float) (w - 1));
  const float sy = fminf (fmaxf ((float) y + vy, 0.0f), (float) (h - 1));
  const int x0 = (int) sx, y0 = (int) sy, x1 = min (x0 + 1, w - 1), y1 = min (y0 + 1, h - 1);
  const float fx = sx - (float) x0, fy = sy - (float) y0;
  out_a[(size_t) y * w + x] = bilinear (a, w, x0, y0, x1, y1, fx, fy);
  out_b[(size_t) y * w + x] = bilinear (b, w, x0, y0, x1, y1, fx, fy);
}

/* compensate.c's window_max, one pass: out = in's largest value over [x - rx, x + rx] x
 * [y - ry, y + ry] (clipped); max is exact, so the CPU's order does not matter */
__global__ void
max_kernel (const float *in, int w, int h, int rx, int ry, float *out)
{
  const int x = blockIdx.x * BLOCK_X + threadIdx.x, y = blockIdx.y * BLOCK_Y + threadIdx.y;
  if (x >= w || y >= h)
    return;
  float m = in[(size_t) y * w + x];
  for (int j = max (0, y - ry); j <= min (h - 1, y + ry); j++)
    for (int i = max (0, x - rx); i <= min (w - 1, x + rx); i++)
      m = fmaxf (m, in[(size_t) j * w + i]);
  out[(size_t) y * w + x] = m;
}

dim3
pixel_grid (int w, int h)
{
  return dim3 ((w + BLOCK_X - 1) / BLOCK_X, (h + BLOCK_Y - 1) / BLOCK_Y);
}

} // namespace

extern "C" cudaError_t
hfam_cuda_motion_compensate (float *kept_matte, float *kept_grey, const float *grey, int w,
                             int h, const HfamFlowParams *p, float *moved, float *scratch,
                             cudaStream_t stream)
{
  HFAM_CUDA_REQUIRE (kept_matte && kept_grey && grey && scratch && w >= 1 && h >= 1
                     && hfam_flow_params_valid (p));
  /* compensate.c's layout: the full-size vectors, then the pyramid (hfam_flow_layout); the
   * warp's two outputs after the full-size vectors */
  HfamFlowLayout layout;
  hfam_flow_layout (w, h, p, &layout);
  const int levels = layout.levels;
  const int *bw = layout.bw, *bh = layout.bh;
  Level level[HFAM_FLOW_MAX_LEVELS];
  int *vectors[HFAM_FLOW_MAX_LEVELS];
  float *ux = scratch, *uy = scratch + (size_t) bw[0] * bh[0];
  float *rest = uy + (size_t) bw[0] * bh[0];
  for (int l = 0; l < levels; l++) {
    level[l] = Level { grey, kept_grey, layout.w[l], layout.h[l], p->block };
    if (l > 0) {
      float *g = rest + layout.planes[l], *k = g + (size_t) layout.w[l] * layout.h[l];
      halve_kernel<<<pixel_grid (level[l].w, level[l].h), dim3 (BLOCK_X, BLOCK_Y), 0,
                     stream>>> (level[l - 1].grey, level[l - 1].kept, level[l - 1].w,
                                level[l - 1].h, g, k);
      HFAM_CUDA_LAUNCH_CHECK ();
      level[l].grey = g;
      level[l].kept = k;
    }
    vectors[l] = (int *) (rest + layout.vectors[l]);
  }
  for (int l = levels - 1; l >= 0; l--) {
    const int nb = bw[l] * bh[l];
    const bool top = l == levels - 1;
    flow_kernel<<<(nb + FLOW_THREADS - 1) / FLOW_THREADS, FLOW_THREADS, 0, stream>>> (
        level[l], bw[l], bh[l], top ? nullptr : vectors[l + 1],
        top ? nullptr : vectors[l + 1] + (size_t) bw[l + 1] * bh[l + 1], top ? 0 : bw[l + 1],
        top ? 0 : bh[l + 1], p->bias * (float) (1 << l), p->search, vectors[l],
        vectors[l] + nb, l == 0 ? ux : nullptr, l == 0 ? uy : nullptr);
    HFAM_CUDA_LAUNCH_CHECK ();
  }
  const size_t plane = (size_t) w * h;
  warp_kernel<<<pixel_grid (w, h), dim3 (BLOCK_X, BLOCK_Y), 0, stream>>> (
      kept_matte, kept_grey, w, h, p->block, ux, uy, rest, rest + plane, moved);
  HFAM_CUDA_LAUNCH_CHECK ();
  cudaError_t err = cudaMemcpyAsync (kept_matte, rest, sizeof (float) * plane,
                                     cudaMemcpyDeviceToDevice, stream);
  if (err == cudaSuccess)
    err = cudaMemcpyAsync (kept_grey, rest + plane, sizeof (float) * plane,
                           cudaMemcpyDeviceToDevice, stream);
  if (err != cudaSuccess || !moved || p->spread == 0)
    return err;
  /* the spread: along the rows into the warp's first output (copied out above), then along
   * the columns back */
  max_kernel<<<pixel_grid (w, h), dim3 (BLOCK_X, BLOCK_Y), 0, stream>>> (moved, w, h,
                                                                           p->spread, 0, rest);
  HFAM_CUDA_LAUNCH_CHECK ();
  max_kernel<<<pixel_grid (w, h), dim3 (BLOCK_X, BLOCK_Y), 0, stream>>> (rest, w, h, 0,
                                                                           p->spread, moved);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}
