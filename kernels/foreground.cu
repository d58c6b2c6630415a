/* Blur-fusion (foreground.cuh): pass 1's input from the frame, its box means, pass 2's input
 * from pass 1's fusion, its box means, the output; one thread per pixel in each step. */
#include "foreground.cuh"

namespace {

constexpr int C = HFAM_FOREGROUND_CHANNELS;
constexpr int BLOCK_X = 32, BLOCK_Y = 8;

__device__ __forceinline__ float
clamp01 (float v)
{
  return fminf (fmaxf (v, 0.0f), 1.0f);
}

/* As fuse in foreground.c. */
__device__ __forceinline__ void
fuse (const float *m, float a, const float I[3], float F[3], float bB[3])
{
  const float inv_f = 1.0f / (m[0] + 1e-5f), inv_b = 1.0f / (1.0f - m[0] + 1e-5f);
  for (int k = 0; k < 3; k++) {
    const float bF = m[1 + k] * inv_f;
    bB[k] = m[4 + k] * inv_b;
    F[k] = clamp01 (bF + a * (I[k] - a * bF - (1.0f - a) * bB[k]));
  }
}

/* Pass 1's input: alpha, I alpha, I (1 - alpha). */
__global__ void
first_in (HfamFrame f, HfamYuvToRgb yuv, const float *alpha, int alpha_stride, float *dst)
{
  const int x = blockIdx.x * BLOCK_X + threadIdx.x, y = blockIdx.y * BLOCK_Y + threadIdx.y;
  if (x >= f.width || y >= f.height)
    return;
  const float a = clamp01 (alpha[(size_t) y * alpha_stride + x]);
  float I[3];
  hfam_cuda_pixel_rgb01 (f, yuv, x, y, I);
  float *o = dst + ((size_t) y * f.width + x) * C;
  o[0] = a;
  for (int k = 0; k < 3; k++) {
    o[1 + k] = I[k] * a;
    o[4 + k] = I[k] - o[1 + k];
  }
  o[7] = 0.0f;
}

/* Pass 2's input from pass 1's means: alpha, F' alpha, bB (1 - alpha). */
__global__ void
first_out (HfamFrame f, HfamYuvToRgb yuv, const float *alpha, int alpha_stride,
           const float *means, float *dst)
{
  const int x = blockIdx.x * BLOCK_X + threadIdx.x, y = blockIdx.y * BLOCK_Y + threadIdx.y;
  if (x >= f.width || y >= f.height)
    return;
  const size_t i = ((size_t) y * f.width + x) * C;
  const float a = clamp01 (alpha[(size_t) y * alpha_stride + x]);
  float I[3], F[3], bB[3];
  hfam_cuda_pixel_rgb01 (f, yuv, x, y, I);
  fuse (means + i, a, I, F, bB);
  float *o = dst + i;
  o[0] = a;
  for (int k = 0; k < 3; k++) {
    o[1 + k] = F[k] * a;
    o[4 + k] = bB[k] * (1.0f - a);
  }
  o[7] = 0.0f;
}

/* The output from pass 2's means, rounded as hfam_matte_write rounds. */
__global__ void
second_out (HfamFrame f, HfamYuvToRgb yuv, const float *alpha, int alpha_stride,
            const float *means, HfamMatteImage out)
{
  const int x = blockIdx.x * BLOCK_X + threadIdx.x, y = blockIdx.y * BLOCK_Y + threadIdx.y;
  if (x >= f.width || y >= f.height)
    return;
  const bool bgr = out.format == HFAM_MATTE_BGRA || out.format == HFAM_MATTE_BGRA_PREMULTIPLIED;
  const bool premultiply = out.format == HFAM_MATTE_RGBA_PREMULTIPLIED
                           || out.format == HFAM_MATTE_BGRA_PREMULTIPLIED;
  const float a = clamp01 (alpha[(size_t) y * alpha_stride + x]);
  const int a8 = (int) (a * 255.0f + 0.5f);
  float I[3], F[3], bB[3];
  int c[3];
  hfam_cuda_pixel_rgb01 (f, yuv, x, y, I);
  fuse (means + ((size_t) y * f.width + x) * C, a, I, F, bB);
  for (int k = 0; k < 3; k++) {
    c[k] = (int) (F[k] * 255.0f + 0.5f);
    if (premultiply)
      c[k] = (c[k] * a8 + 127) / 255;
  }
  uint8_t *px = out.data + (ptrdiff_t) y * out.stride + 4 * (ptrdiff_t) x;
  px[0] = (uint8_t) c[bgr ? 2 : 0];
  px[1] = (uint8_t) c[1];
  px[2] = (uint8_t) c[bgr ? 0 : 2];
  px[3] = (uint8_t) a8;
}

} // namespace

extern "C" size_t
hfam_cuda_foreground_workspace_bytes (int w, int h)
{
  return w < 1 || h < 1 ? 0 : 2 * sizeof (float) * C * (size_t) w * h;
}

extern "C" cudaError_t
hfam_cuda_foreground (const HfamFrame *frame, const HfamYuvToRgb *yuv, const float *alpha,
                      int alpha_stride, const HfamForegroundParams *p, const HfamMatteImage *out,
                      void *workspace, size_t workspace_bytes, cudaStream_t stream)
{
  HFAM_CUDA_REQUIRE (frame && hfam_frame_valid (frame) && alpha && out && out->data && workspace);
  HFAM_CUDA_REQUIRE (yuv || frame->format <= HFAM_FRAME_BGRA);
  HFAM_CUDA_REQUIRE (hfam_foreground_params_valid (p) && alpha_stride >= frame->width);
  HFAM_CUDA_REQUIRE (out->format >= HFAM_MATTE_RGBA
                     && (unsigned) out->format < HFAM_MATTE_N_FORMATS
                     && out->width == frame->width && out->height == frame->height
                     && out->stride >= 4 * out->width);
  HFAM_CUDA_REQUIRE (workspace_bytes >= hfam_cuda_foreground_workspace_bytes (frame->width,
                                                                              frame->height));
  const int w = frame->width, h = frame->height;
  const HfamYuvToRgb none = {}, conversion = yuv ? *yuv : none;
  float *a = (float *) workspace, *b = a + (size_t) C * w * h;
  const dim3 block (BLOCK_X, BLOCK_Y), grid ((w + BLOCK_X - 1) / BLOCK_X,
                                             (h + BLOCK_Y - 1) / BLOCK_Y);
  cudaError_t err;

  first_in<<<grid, block, 0, stream>>> (*frame, conversion, alpha, alpha_stride, a);
  HFAM_CUDA_LAUNCH_CHECK ();
  if ((err = hfam_cuda_box_mean (a, b, a, w, h, C, p->radius_large, stream)) != cudaSuccess)
    return err;
  first_out<<<grid, block, 0, stream>>> (*frame, conversion, alpha, alpha_stride, a, b);
  HFAM_CUDA_LAUNCH_CHECK ();
  if ((err = hfam_cuda_box_mean (b, a, b, w, h, C, p->radius_small, stream)) != cudaSuccess)
    return err;
  second_out<<<grid, block, 0, stream>>> (*frame, conversion, alpha, alpha_stride, b, *out);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}
