/* The fast guided filter (refine.cuh): one thread per pixel in each step; the statistics'
 * steps at the low size, the last one at the frame's. */
#include "refine.cuh"

namespace {

constexpr int BLOCK_X = 32, BLOCK_Y = 8;

/* The levels as a multiply-add: black and 1 / (white - black). */
struct Levels {
  float black, scale;
};

__device__ __forceinline__ float
clamp01 (float v)
{
  return fminf (fmaxf (v, 0.0f), 1.0f);
}

/* Step 2: alpha to the statistics' size with the filter's 2-D taps (as matte.cu). */
__global__ void
resize_kernel (const float *src, int sw, HfamCudaFilter fx, HfamCudaFilter fy, float *dst)
{
  const int x = blockIdx.x * BLOCK_X + threadIdx.x, y = blockIdx.y * BLOCK_Y + threadIdx.y;
  if (x >= fx.out || y >= fy.out)
    return;
  const float *wx = fx.w + (size_t) x * fx.k, *wy = fy.w + (size_t) y * fy.k;
  float v = 0.0f;
  for (int ty = 0; ty < fy.len[y]; ty++) {
    const float *row = src + (size_t) (fy.start[y] + ty) * sw + fx.start[x];
    float s = 0.0f;
    for (int tx = 0; tx < fx.len[x]; tx++)
      s += wx[tx] * row[tx];
    v += wy[ty] * s;
  }
  dst[(size_t) y * fx.out + x] = v;
}

/* Step 3's input, as stats_row in refine.c; guide: NHWC, 4 floats per pixel. */
__global__ void
stats_kernel (const float *guide, const float *alpha, int n, int colour, float *stats)
{
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n)
    return;
  const float R = guide[4 * i], G = guide[4 * i + 1], B = guide[4 * i + 2], p = alpha[i];
  if (!colour) {
    const float I = 0.299f * R + 0.587f * G + 0.114f * B;
    float *o = stats + 4 * (size_t) i;
    o[0] = I;
    o[1] = p;
    o[2] = I * p;
    o[3] = I * I;
    return;
  }
  float *o = stats + 16 * (size_t) i;
  o[0] = R;
  o[1] = G;
  o[2] = B;
  o[3] = p;
  o[4] = R * p;
  o[5] = G * p;
  o[6] = B * p;
  o[7] = R * R;
  o[8] = R * G;
  o[9] = R * B;
  o[10] = G * G;
  o[11] = G * B;
  o[12] = B * B;
  o[13] = o[14] = o[15] = 0.0f;
}

/* Step 4, as coef_row in refine.c. */
__global__ void
coef_kernel (const float *means, int n, int colour, float eps, float *coef)
{
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n)
    return;
  if (!colour) {
    const float *m = means + 4 * (size_t) i;
    const float var = m[3] - m[0] * m[0], cov = m[2] - m[0] * m[1];
    const float a = cov / (var + eps);
    coef[2 * (size_t) i] = a;
    coef[2 * (size_t) i + 1] = m[1] - a * m[0];
    return;
  }
  const float *m = means + 16 * (size_t) i;
  const float v0 = m[4] - m[0] * m[3], v1 = m[5] - m[1] * m[3], v2 = m[6] - m[2] * m[3];
  const float s00 = m[7] - m[0] * m[0] + eps, s01 = m[8] - m[0] * m[1];
  const float s02 = m[9] - m[0] * m[2], s11 = m[10] - m[1] * m[1] + eps;
  const float s12 = m[11] - m[1] * m[2], s22 = m[12] - m[2] * m[2] + eps;
  const float c00 = s11 * s22 - s12 * s12, c01 = s02 * s12 - s01 * s22;
  const float c02 = s01 * s12 - s02 * s11, c11 = s00 * s22 - s02 * s02;
  const float c12 = s01 * s02 - s00 * s12, c22 = s00 * s11 - s01 * s01;
  const float inv_det = 1.0f / (s00 * c00 + s01 * c01 + s02 * c02);
  const float a0 = (c00 * v0 + c01 * v1 + c02 * v2) * inv_det;
  const float a1 = (c01 * v0 + c11 * v1 + c12 * v2) * inv_det;
  const float a2 = (c02 * v0 + c12 * v1 + c22 * v2) * inv_det;
  float *c = coef + 4 * (size_t) i;
  c[0] = a0;
  c[1] = a1;
  c[2] = a2;
  c[3] = m[3] - (a0 * m[0] + a1 * m[1] + a2 * m[2]);
}

/* Step 5: the mean coefficients enlarged to the frame's size and applied to its pixels;
 * where `held` is given, the detail over alpha (`base`, at the statistics' size) held with
 * the still weights (still NULL: a restart), all enlarged by the same taps; then the levels. */
template <int NC>
__global__ void
apply_kernel (const float *coef, int sw, HfamCudaFilter fx, HfamCudaFilter fy, HfamFrame f,
              HfamYuvToRgb yuv, Levels levels, const float *base, const float *still,
              float *held, int held_stride, float *out, int out_stride)
{
  const int x = blockIdx.x * BLOCK_X + threadIdx.x, y = blockIdx.y * BLOCK_Y + threadIdx.y;
  if (x >= f.width || y >= f.height)
    return;
  const float *wx = fx.w + (size_t) x * fx.k, *wy = fy.w + (size_t) y * fy.k;
  float A[NC + 1] = {}, S = 0.0f, U = 0.0f;
  for (int ty = 0; ty < fy.len[y]; ty++) {
    const size_t first = (size_t) (fy.start[y] + ty) * sw + fx.start[x];
    const float *row = coef + first * (NC + 1);
    for (int tx = 0; tx < fx.len[x]; tx++) {
      for (int k = 0; k <= NC; k++)
        A[k] += wy[ty] * wx[tx] * row[tx * (NC + 1) + k];
      if (held)
        U += wy[ty] * wx[tx] * base[first + tx];
      if (held && still)
        S += wy[ty] * wx[tx] * still[first + tx];
    }
  }
  float rgb[3], q;
  hfam_cuda_pixel_rgb01 (f, yuv, x, y, rgb);
  if constexpr (NC == 1)
    q = A[0] * (0.299f * rgb[0] + 0.587f * rgb[1] + 0.114f * rgb[2]) + A[1];
  else
    q = A[0] * rgb[0] + A[1] * rgb[1] + A[2] * rgb[2] + A[3];
  q = clamp01 (q);
  if (held) {
    float *h = held + (size_t) y * held_stride + x;
    float d = q - U;
    if (still) {
      d += S * (*h - d);
      q = clamp01 (U + d);
    }
    *h = d;
  }
  out[(size_t) y * out_stride + x] = clamp01 ((q - levels.black) * levels.scale);
}

__global__ void
levels_kernel (float *alpha, size_t n, Levels levels)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
       i += (size_t) gridDim.x * blockDim.x)
    alpha[i] = clamp01 ((clamp01 (alpha[i]) - levels.black) * levels.scale);
}

Levels
levels_of (const HfamKeyLevels *l)
{
  return l ? Levels { l->black, 1.0f / (l->white - l->black) } : Levels { 0.0f, 1.0f };
}

/* Workspace, in floats: the guide (4 per pixel), alpha at the statistics' size (1), the
 * statistics (16) and their column sums (16): the coefficients reuse the statistics; the
 * still weights at the statistics' size (1). */
size_t
workspace_floats (int sw, int sh)
{
  return (size_t) sw * sh * (4 + 1 + 16 + 16 + 1);
}

} // namespace

extern "C" cudaError_t
hfam_cuda_refine_plan_new (HfamCudaRefinePlan *plan, int aw, int ah, int fw, int fh,
                           const HfamRefineParams *p)
{
  cudaError_t err;

  HFAM_CUDA_REQUIRE (plan);
  *plan = HfamCudaRefinePlan {};
  HFAM_CUDA_REQUIRE (hfam_refine_params_valid (p, aw, ah, fw, fh));
  plan->aw = aw;
  plan->ah = ah;
  plan->sw = p->stats_width ? p->stats_width : aw;
  plan->sh = p->stats_height ? p->stats_height : ah;
  plan->fw = fw;
  plan->fh = fh;
  plan->colour = p->colour != 0;
  err = cudaMalloc ((void **) &plan->workspace,
                    sizeof (float) * workspace_floats (plan->sw, plan->sh));
  if (err == cudaSuccess && (plan->sw != aw || plan->sh != ah)) {
    err = hfam_cuda_filter_new (aw, plan->sw, &plan->alpha_x);
    if (err == cudaSuccess)
      err = hfam_cuda_filter_new (ah, plan->sh, &plan->alpha_y);
  }
  if (err == cudaSuccess)
    err = hfam_cuda_filter_new (fw, plan->sw, &plan->guide_x);
  if (err == cudaSuccess)
    err = hfam_cuda_filter_new (fh, plan->sh, &plan->guide_y);
  if (err == cudaSuccess)
    err = hfam_cuda_filter_new (plan->sw, fw, &plan->up_x);
  if (err == cudaSuccess)
    err = hfam_cuda_filter_new (plan->sh, fh, &plan->up_y);
  if (err != cudaSuccess)
    hfam_cuda_refine_plan_free (plan);
  return err;
}

extern "C" void
hfam_cuda_refine_plan_free (HfamCudaRefinePlan *plan)
{
  if (!plan)
    return;
  hfam_cuda_filter_free (&plan->alpha_x);
  hfam_cuda_filter_free (&plan->alpha_y);
  hfam_cuda_filter_free (&plan->guide_x);
  hfam_cuda_filter_free (&plan->guide_y);
  hfam_cuda_filter_free (&plan->up_x);
  hfam_cuda_filter_free (&plan->up_y);
  cudaFree (plan->workspace);
  *plan = HfamCudaRefinePlan {};
}

extern "C" cudaError_t
hfam_cuda_refine (const HfamCudaRefinePlan *plan, const float *alpha, const HfamFrame *frame,
                  const HfamYuvToRgb *yuv, const HfamRefineParams *p,
                  const HfamKeyLevels *levels, float *out, int out_stride, cudaStream_t stream)
{
  return hfam_cuda_refine_held (plan, alpha, frame, yuv, p, levels, NULL, out, out_stride,
                                stream);
}

extern "C" cudaError_t
hfam_cuda_refine_held (const HfamCudaRefinePlan *plan, const float *alpha,
                       const HfamFrame *frame, const HfamYuvToRgb *yuv,
                       const HfamRefineParams *p, const HfamKeyLevels *levels,
                       const HfamRefineHold *hold, float *out, int out_stride,
                       cudaStream_t stream)
{
  HFAM_CUDA_REQUIRE (plan && plan->workspace && alpha && frame && p && out);
  HFAM_CUDA_REQUIRE (!hold || (hold->held && hold->held_stride >= plan->fw));
  HFAM_CUDA_REQUIRE (hfam_frame_valid (frame) && (yuv || frame->format <= HFAM_FRAME_BGRA)
                     && frame->width == plan->fw
                     && frame->height == plan->fh && out_stride >= plan->fw);
  HFAM_CUDA_REQUIRE (hfam_refine_params_valid (p, plan->aw, plan->ah, plan->fw, plan->fh)
                     && (p->colour != 0) == plan->colour
                     && (p->stats_width ? p->stats_width : plan->aw) == plan->sw
                     && (p->stats_height ? p->stats_height : plan->ah) == plan->sh);
  HFAM_CUDA_REQUIRE (!levels || hfam_key_levels_valid (levels));

  const int sw = plan->sw, sh = plan->sh, n = sw * sh;
  const int channels = HFAM_REFINE_STATS_CHANNELS (plan->colour);
  const int nc = plan->colour ? 3 : 1;
  float *guide = plan->workspace, *low = guide + 4 * (size_t) n;
  float *stats = low + n, *sums = stats + 16 * (size_t) n, *low_still = sums + 16 * (size_t) n;
  const float *p_low = alpha, *still = hold ? hold->still : NULL;
  const HfamYuvToRgb none = {}, conversion = yuv ? *yuv : none;
  const HfamPreprocessParams identity = { { 0, 1, 2 }, 1.0f, { 0.0f, 0.0f, 0.0f },
                                          { 1.0f, 1.0f, 1.0f }, conversion };
  const HfamNhwc guide_map = { guide, sw, sh, 3, 4, HFAM_CUDA_F32 };
  const dim3 block (BLOCK_X, BLOCK_Y), low_grid ((sw + BLOCK_X - 1) / BLOCK_X,
                                                 (sh + BLOCK_Y - 1) / BLOCK_Y);
  const dim3 grid ((plan->fw + BLOCK_X - 1) / BLOCK_X, (plan->fh + BLOCK_Y - 1) / BLOCK_Y);
  const unsigned blocks = hfam_cuda_blocks (n, HFAM_CUDA_BLOCK);
  cudaError_t err;

  /* 1, 2: the guide and alpha at the statistics' size */
  err = hfam_cuda_preprocess (frame, &identity, &plan->guide_x, &plan->guide_y, &guide_map,
                              stream);
  if (err != cudaSuccess)
    return err;
  if (sw != plan->aw || sh != plan->ah) {
    resize_kernel<<<low_grid, block, 0, stream>>> (alpha, plan->aw, plan->alpha_x,
                                                   plan->alpha_y, low);
    HFAM_CUDA_LAUNCH_CHECK ();
    p_low = low;
    if (still) {
      resize_kernel<<<low_grid, block, 0, stream>>> (still, plan->aw, plan->alpha_x,
                                                     plan->alpha_y, low_still);
      HFAM_CUDA_LAUNCH_CHECK ();
      still = low_still;
    }
  }
  /* 3, 4: the fits and their means; the coefficients go where the statistics' column sums
   * were, and their column sums where the statistics were */
  stats_kernel<<<blocks, HFAM_CUDA_BLOCK, 0, stream>>> (guide, p_low, n, plan->colour, stats);
  HFAM_CUDA_LAUNCH_CHECK ();
  if ((err = hfam_cuda_box_mean (stats, sums, stats, sw, sh, channels, p->radius, stream))
      != cudaSuccess)
    return err;
  coef_kernel<<<blocks, HFAM_CUDA_BLOCK, 0, stream>>> (stats, n, plan->colour, p->eps, sums);
  HFAM_CUDA_LAUNCH_CHECK ();
  if ((err = hfam_cuda_box_mean (sums, stats, sums, sw, sh, nc + 1, p->radius, stream))
      != cudaSuccess)
    return err;
  /* 5: at the frame's size */
  float *held = hold ? hold->held : NULL;
  const int held_stride = hold ? hold->held_stride : 0;
  if (plan->colour)
    apply_kernel<3><<<grid, block, 0, stream>>> (sums, sw, plan->up_x, plan->up_y, *frame,
                                                 conversion, levels_of (levels), p_low, still,
                                                 held, held_stride, out, out_stride);
  else
    apply_kernel<1><<<grid, block, 0, stream>>> (sums, sw, plan->up_x, plan->up_y, *frame,
                                                 conversion, levels_of (levels), p_low, still,
                                                 held, held_stride, out, out_stride);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}

extern "C" cudaError_t
hfam_cuda_key_levels (float *alpha, size_t n, const HfamKeyLevels *levels, cudaStream_t stream)
{
  HFAM_CUDA_REQUIRE (alpha && (!levels || hfam_key_levels_valid (levels)));
  if (n == 0)
    return cudaSuccess;
  levels_kernel<<<hfam_cuda_blocks (n, HFAM_CUDA_BLOCK), HFAM_CUDA_BLOCK, 0, stream>>> (
      alpha, n, levels_of (levels));
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}
