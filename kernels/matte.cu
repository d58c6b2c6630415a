/* The matte writer (matte.cuh): one thread per output pixel; the blend: a grid-stride loop. */
#include "matte.cuh"
#include "box.cuh"

namespace {

constexpr int BLOCK_X = 32, BLOCK_Y = 8;

/* alpha resized to output pixel (x, y), clamped to 0..1 */
__device__ inline float
resized_alpha (const float *alpha, int aw, const HfamCudaFilter &fx, const HfamCudaFilter &fy,
               int x, int y)
{
  const int x0 = fx.start[x], nx = fx.len[x], y0 = fy.start[y], ny = fy.len[y];
  const float *wx = fx.w + (size_t) x * fx.k, *wy = fy.w + (size_t) y * fy.k;
  float v = 0.0f;
  for (int ty = 0; ty < ny; ty++) {
    const float *row = alpha + (size_t) (y0 + ty) * aw + x0;
    float r = 0.0f;
    for (int tx = 0; tx < nx; tx++)
      r += wx[tx] * row[tx];
    v += wy[ty] * r;
  }
  return fminf (fmaxf (v, 0.0f), 1.0f);
}

__global__ void
matte_kernel (const float *alpha, int aw, HfamCudaFilter fx, HfamCudaFilter fy, HfamFrame f,
              HfamYuvToRgb yuv, HfamMatteImage out)
{
  const int x = blockIdx.x * BLOCK_X + threadIdx.x, y = blockIdx.y * BLOCK_Y + threadIdx.y;
  if (x >= out.width || y >= out.height)
    return;
  const float v = resized_alpha (alpha, aw, fx, fy, x, y);
  uint8_t *dst = out.data + (ptrdiff_t) y * out.stride;
  if (out.format == HFAM_MATTE_GRAY8) {
    dst[x] = (uint8_t) (int) (v * 255.0f + 0.5f);
  } else if (out.format == HFAM_MATTE_GRAY16) {
    ((uint16_t *) dst)[x] = (uint16_t) (int) (v * 65535.0f + 0.5f);
  } else {
    const bool bgr = out.format == HFAM_MATTE_BGRA || out.format == HFAM_MATTE_BGRA_PREMULTIPLIED;
    const bool premultiply = out.format == HFAM_MATTE_RGBA_PREMULTIPLIED
                             || out.format == HFAM_MATTE_BGRA_PREMULTIPLIED;
    const int a8 = (int) (v * 255.0f + 0.5f);
    float rgb[3];
    int c[3];
    hfam_cuda_pixel_rgb (f, yuv, x, y, rgb);
    for (int k = 0; k < 3; k++) {
      c[k] = (int) (rgb[k] + 0.5f);
      if (premultiply)
        c[k] = (c[k] * a8 + 127) / 255;
    }
    uchar4 px;
    px.x = (uint8_t) c[bgr ? 2 : 0];
    px.y = (uint8_t) c[1];
    px.z = (uint8_t) c[bgr ? 0 : 2];
    px.w = (uint8_t) a8;
    dst[4 * x + 0] = px.x;
    dst[4 * x + 1] = px.y;
    dst[4 * x + 2] = px.z;
    dst[4 * x + 3] = px.w;
  }
}

__global__ void
resize_kernel (const float *alpha, int aw, HfamCudaFilter fx, HfamCudaFilter fy, float *out,
               int out_stride, float black, float scale)
{
  const int x = blockIdx.x * BLOCK_X + threadIdx.x, y = blockIdx.y * BLOCK_Y + threadIdx.y;
  if (x >= fx.out || y >= fy.out)
    return;
  const float v = resized_alpha (alpha, aw, fx, fy, x, y);
  out[(size_t) y * out_stride + x] = fminf (fmaxf ((v - black) * scale, 0.0f), 1.0f);
}

__global__ void
blend_kernel (float *matte, const float *fresh, size_t n, float smoothing)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
       i += (size_t) gridDim.x * blockDim.x)
    matte[i] = (1.0f - smoothing) * fresh[i] + smoothing * matte[i];
}

} // namespace

extern "C" cudaError_t
hfam_cuda_matte (const float *alpha, int aw, int ah, const HfamCudaFilter *fx,
                 const HfamCudaFilter *fy, const HfamFrame *frame, const HfamYuvToRgb *yuv,
                 const HfamMatteImage *out, cudaStream_t stream)
{
  const bool colour = out && out->format >= HFAM_MATTE_RGBA;
  HfamFrame none = {};
  HfamYuvToRgb identity = {};

  HFAM_CUDA_REQUIRE (alpha && aw >= 1 && ah >= 1 && fx && fy && out && out->data);
  HFAM_CUDA_REQUIRE ((unsigned) out->format < HFAM_MATTE_N_FORMATS && out->width >= 1
                     && out->height >= 1
                     && out->stride >= out->width * hfam_matte_bytes_per_pixel (out->format));
  HFAM_CUDA_REQUIRE (fx->start && fy->start && fx->in == aw && fy->in == ah
                     && fx->out == out->width && fy->out == out->height);
  HFAM_CUDA_REQUIRE (out->format != HFAM_MATTE_GRAY16
                     || (out->stride % 2 == 0 && (uintptr_t) out->data % 2 == 0));
  HFAM_CUDA_REQUIRE (!colour || (frame && yuv && hfam_frame_valid (frame)
                                 && frame->width == out->width
                                 && frame->height == out->height));
  const dim3 block (BLOCK_X, BLOCK_Y), grid ((out->width + BLOCK_X - 1) / BLOCK_X,
                                             (out->height + BLOCK_Y - 1) / BLOCK_Y);
  matte_kernel<<<grid, block, 0, stream>>> (alpha, aw, *fx, *fy, colour ? *frame : none,
                                            colour ? *yuv : identity, *out);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}

extern "C" cudaError_t
hfam_cuda_matte_resize (const float *alpha, int aw, int ah, const HfamCudaFilter *fx,
                        const HfamCudaFilter *fy, const HfamKeyLevels *levels, float *out,
                        int out_stride, cudaStream_t stream)
{
  HFAM_CUDA_REQUIRE (alpha && aw >= 1 && ah >= 1 && fx && fy && out && fx->start && fy->start);
  HFAM_CUDA_REQUIRE (fx->in == aw && fy->in == ah && out_stride >= fx->out);
  HFAM_CUDA_REQUIRE (!levels || hfam_key_levels_valid (levels));
  const float black = levels ? levels->black : 0.0f;
  const float scale = levels ? 1.0f / (levels->white - levels->black) : 1.0f;
  const dim3 block (BLOCK_X, BLOCK_Y), grid ((fx->out + BLOCK_X - 1) / BLOCK_X,
                                             (fy->out + BLOCK_Y - 1) / BLOCK_Y);
  resize_kernel<<<grid, block, 0, stream>>> (alpha, aw, *fx, *fy, out, out_stride, black,
                                             scale);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}

extern "C" cudaError_t
hfam_cuda_matte_blend (float *matte, const float *fresh, size_t n, float smoothing,
                       cudaStream_t stream)
{
  /* (written so that NaN fails too) */
  HFAM_CUDA_REQUIRE (matte && fresh && smoothing >= 0.0f && smoothing <= 1.0f);
  if (n == 0)
    return cudaSuccess;
  blend_kernel<<<hfam_cuda_blocks (n, HFAM_CUDA_BLOCK), HFAM_CUDA_BLOCK, 0, stream>>> (
      matte, fresh, n, smoothing);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}
