/* Motion-aware temporal smoothing (temporal.cuh): one thread per pixel. */
#include "temporal.cuh"

#include <cuda_fp16.h>

namespace {

constexpr int BLOCK_X = 32, BLOCK_Y = 8;

__global__ void
grey_kernel (HfamNhwc in, float a0, float a1, float a2, float b, float *grey)
{
  const int x = blockIdx.x * BLOCK_X + threadIdx.x, y = blockIdx.y * BLOCK_Y + threadIdx.y;
  if (x >= in.w || y >= in.h)
    return;
  const size_t i = ((size_t) y * in.w + x) * in.cs;
  float v[3];
  for (int k = 0; k < 3; k++)
    v[k] = in.dtype == HFAM_CUDA_F16 ? __half2float (((const __half *) in.data)[i + k])
                                     : ((const float *) in.data)[i + k];
  grey[(size_t) y * in.w + x] = v[0] * a0 + v[1] * a1 + v[2] * a2 + b;
}

__global__ void
blend_kernel (float *matte, const float *fresh, const float *grey, const float *kept_grey,
              const float *moved, int w, int h, HfamMotionParams p, float *still)
{
  const int x = blockIdx.x * BLOCK_X + threadIdx.x, y = blockIdx.y * BLOCK_Y + threadIdx.y;
  if (x >= w || y >= h)
    return;
  const int x0 = max (0, x - p.radius), x1 = min (w - 1, x + p.radius);
  const int y0 = max (0, y - p.radius), y1 = min (h - 1, y + p.radius);
  float sum = 0.0f;
  for (int j = y0; j <= y1; j++)
    for (int i = x0; i <= x1; i++)
      sum += fabsf (grey[(size_t) j * w + i] - kept_grey[(size_t) j * w + i]);
  const float d = sum * (1.0f / (float) ((x1 - x0 + 1) * (y1 - y0 + 1)));
  const size_t o = (size_t) y * w + x;
  const float m = moved ? fminf (fmaxf (moved[o], 0.0f), 1.0f) : 0.0f;
  const float unchanged = fminf (fmaxf ((p.moving - d) / (p.moving - p.still), 0.0f), 1.0f);
  const float s = (p.hold + m * (p.hold_moved - p.hold)) * unchanged;
  matte[o] = (1.0f - s) * fresh[o] + s * matte[o];
  if (still)
    still[o] = p.hold * unchanged * (1.0f - m);
}

} // namespace

extern "C" cudaError_t
hfam_cuda_motion_grey (const HfamNhwc *input, const HfamPreprocessParams *p, float *grey,
                       cudaStream_t stream)
{
  HFAM_CUDA_REQUIRE (input && input->data && p && grey && input->c >= 3 && input->cs >= input->c
                     && input->w >= 1 && input->h >= 1 && p->scale != 0.0f);
  const float s = 3.0f * p->scale;
  const dim3 block (BLOCK_X, BLOCK_Y), grid ((input->w + BLOCK_X - 1) / BLOCK_X,
                                             (input->h + BLOCK_Y - 1) / BLOCK_Y);
  grey_kernel<<<grid, block, 0, stream>>> (*input, p->std[0] / s, p->std[1] / s, p->std[2] / s,
                                           (p->mean[0] + p->mean[1] + p->mean[2]) / s, grey);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}

extern "C" cudaError_t
hfam_cuda_matte_blend_motion (float *matte, const float *fresh, const float *grey,
                              const float *kept_grey, const float *moved, int w, int h,
                              const HfamMotionParams *p, float *still, cudaStream_t stream)
{
  HFAM_CUDA_REQUIRE (matte && fresh && grey && kept_grey && w >= 1 && h >= 1
                     && hfam_motion_params_valid (p));
  const dim3 block (BLOCK_X, BLOCK_Y), grid ((w + BLOCK_X - 1) / BLOCK_X,
                                             (h + BLOCK_Y - 1) / BLOCK_Y);
  blend_kernel<<<grid, block, 0, stream>>> (matte, fresh, grey, kept_grey, moved, w, h, *p,
                                            still);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}
