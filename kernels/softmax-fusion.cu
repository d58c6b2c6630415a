/* Semantic head and fusion (softmax-fusion.cuh): one thread per full-size pixel. The x2
 * enlargement has PyTorch's taps: output i reads (i + 0.5) / 2 - 0.5, clamped at the edges,
 * which are hfam_resize_plane's weights (0.75 / 0.25, or one tap of 1 at the borders). */
#include "softmax-fusion.cuh"

namespace {

__device__ inline void
taps2 (int i, int in, int &i0, int &i1, float &l1)
{
  float src = ((float) i + 0.5f) * 0.5f - 0.5f;
  if (src < 0.0f)
    src = 0.0f;
  i0 = min ((int) src, in - 1);
  i1 = i0 + 1 < in ? i0 + 1 : in - 1;
  l1 = src - (float) i0;
}

/* Channel k of the half-size map at full-size pixel (x, y), enlarged. */
template <typename T>
__device__ inline float
enlarged (const HfamNhwc &t, int x, int y, int k)
{
  int x0, x1, y0, y1;
  float lx, ly;
  taps2 (x, t.w, x0, x1, lx);
  taps2 (y, t.h, y0, y1, ly);
  const T *d = (const T *) t.data;
  const float a = hfam_ld (d + ((size_t) y0 * t.w + x0) * t.cs + k);
  const float b = hfam_ld (d + ((size_t) y0 * t.w + x1) * t.cs + k);
  const float c = hfam_ld (d + ((size_t) y1 * t.w + x0) * t.cs + k);
  const float e = hfam_ld (d + ((size_t) y1 * t.w + x1) * t.cs + k);
  return (1.0f - ly) * ((1.0f - lx) * a + lx * b) + ly * ((1.0f - lx) * c + lx * e);
}

template <typename T>
__global__ void
semantic_kernel (HfamNhwc logits, int w, int h, float *prob)
{
  const size_t n = (size_t) w * h;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
       i += (size_t) gridDim.x * blockDim.x) {
    const int x = (int) (i % w), y = (int) (i / w);
    const float l0 = enlarged<T> (logits, x, y, 0), l1 = enlarged<T> (logits, x, y, 1);
    const float l2 = enlarged<T> (logits, x, y, 2);
    const float m = fmaxf (l0, fmaxf (l1, l2));
    const float e0 = expf (l0 - m), e1 = expf (l1 - m), e2 = expf (l2 - m);
    const float inv = 1.0f / (e0 + e1 + e2);
    prob[i] = e0 * inv;
    prob[n + i] = e1 * inv;
    prob[2 * n + i] = e2 * inv;
  }
}

template <typename T>
__global__ void
fusion_kernel (HfamNhwc detail, const float *prob, int w, int h, float *alpha_d, float *alpha_p)
{
  const size_t n = (size_t) w * h;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
       i += (size_t) gridDim.x * blockDim.x) {
    const int x = (int) (i % w), y = (int) (i / w);
    const float ad = 1.0f / (1.0f + expf (-enlarged<T> (detail, x, y, 0)));
    const float bg = prob[i], unknown = prob[n + i], fg = prob[2 * n + i];
    alpha_d[i] = ad;
    alpha_p[i] = (bg >= unknown && bg >= fg) ? 0.0f : (unknown >= fg ? ad : 1.0f);
  }
}

template <typename T>
cudaError_t
semantic (const HfamNhwc *logits, int w, int h, float *prob, cudaStream_t stream)
{
  semantic_kernel<T><<<hfam_cuda_blocks ((size_t) w * h, HFAM_CUDA_BLOCK), HFAM_CUDA_BLOCK, 0,
                       stream>>> (*logits, w, h, prob);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}

template <typename T>
cudaError_t
fusion (const HfamNhwc *detail, const float *prob, int w, int h, float *alpha_d, float *alpha_p,
        cudaStream_t stream)
{
  fusion_kernel<T><<<hfam_cuda_blocks ((size_t) w * h, HFAM_CUDA_BLOCK), HFAM_CUDA_BLOCK, 0,
                     stream>>> (*detail, prob, w, h, alpha_d, alpha_p);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}

bool
half_size (const HfamNhwc *t, int w, int h, int c)
{
  return t && t->data && w >= 2 && h >= 2 && w % 2 == 0 && h % 2 == 0 && t->w == w / 2
         && t->h == h / 2 && t->c == c && t->cs >= c;
}

} // namespace

extern "C" cudaError_t
hfam_cuda_semantic_head (const HfamNhwc *logits, int w, int h, float *prob, cudaStream_t stream)
{
  HFAM_CUDA_REQUIRE (half_size (logits, w, h, 3) && prob);
  return HFAM_CUDA_DISPATCH (logits->dtype, semantic, logits, w, h, prob, stream);
}

extern "C" cudaError_t
hfam_cuda_fusion (const HfamNhwc *detail, const float *prob, int w, int h, float *alpha_d,
                  float *alpha_p, cudaStream_t stream)
{
  HFAM_CUDA_REQUIRE (half_size (detail, w, h, 1) && prob && alpha_d && alpha_p);
  return HFAM_CUDA_DISPATCH (detail->dtype, fusion, detail, prob, w, h, alpha_d, alpha_p,
                             stream);
}
