/* Position attention (attention.cuh). The pooled sums run in the twin's order (rows, then
 * columns), so they match it to the last bit; the map matches it to the exponentials' last
 * bits (the twin's is a vectorised one of its own, within 2 ulp of expf). */
#include "attention.cuh"

namespace {

__global__ void
attention_kernel (const float *prob, int n, float w0, float w1, float w2, float bias, float *map)
{
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    const float x = w0 * prob[i] + w1 * prob[(size_t) n + i] + w2 * prob[2 * (size_t) n + i]
                    + bias;
    map[i] = 1.0f / (1.0f + expf (-x));
  }
}

__global__ void
pool_kernel (const float *src, int w, int h, int factor, float *dst)
{
  const int ow = w / factor, oh = h / factor, n = ow * oh;
  const float inv = 1.0f / (float) (factor * factor);
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    const int x = i % ow, y = i / ow;
    float sum = 0.0f;
    for (int dy = 0; dy < factor; dy++) {
      const float *row = src + (size_t) (y * factor + dy) * w + (size_t) x * factor;
      for (int dx = 0; dx < factor; dx++)
        sum += row[dx];
    }
    dst[i] = sum * inv;
  }
}

} // namespace

extern "C" cudaError_t
hfam_cuda_attention_map (const float *prob, int n_pixels, const float weight[3], float bias,
                         float *map, cudaStream_t stream)
{
  HFAM_CUDA_REQUIRE (prob && weight && map && n_pixels >= 1);
  attention_kernel<<<hfam_cuda_blocks (n_pixels, HFAM_CUDA_BLOCK), HFAM_CUDA_BLOCK, 0, stream>>> (
      prob, n_pixels, weight[0], weight[1], weight[2], bias, map);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}

extern "C" cudaError_t
hfam_cuda_pool_plane (const float *src, int w, int h, int factor, float *dst,
                      cudaStream_t stream)
{
  HFAM_CUDA_REQUIRE (src && dst && factor >= 1 && w >= factor && h >= factor && w % factor == 0
                     && h % factor == 0);
  const int n = (w / factor) * (h / factor);
  pool_kernel<<<hfam_cuda_blocks (n, HFAM_CUDA_BLOCK), HFAM_CUDA_BLOCK, 0, stream>>> (src, w, h,
                                                                                   factor, dst);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}
