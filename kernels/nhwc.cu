/* CUDA ops between convolutions (nhwc.cuh); twins in nhwc.c. Element-wise kernels use a
 * grid-stride loop over (pixel, channel) with the channel fastest, so that consecutive threads
 * touch consecutive addresses of an NHWC map. */
#include "nhwc.cuh"

namespace {

/* Pixels per block (y) and channels per block (x) of the global pool. */
constexpr int GP_CHANNELS = 32;
constexpr int GP_ROWS = 8;

__host__ __device__ inline size_t
offset (const HfamNhwc &t, size_t pixel, int c)
{
  return pixel * (size_t) t.cs + (size_t) c;
}

bool
same_size (const HfamNhwc *a, const HfamNhwc *b)
{
  return a->w == b->w && a->h == b->h && a->c == b->c && a->dtype == b->dtype;
}

bool
valid (const HfamNhwc *t)
{
  return t && t->data && t->w > 0 && t->h > 0 && t->c > 0 && t->cs >= t->c;
}

template <typename T>
__global__ void
bias_act_kernel (HfamNhwc x, const T *bias, HfamNhwc r, bool has_r, bool relu, HfamNhwc y)
{
  const size_t n = (size_t) x.w * x.h * x.c;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
       i += (size_t) gridDim.x * blockDim.x) {
    const size_t p = i / x.c;
    const int c = (int) (i % x.c);
    float v = hfam_ld ((const T *) x.data + offset (x, p, c)) + hfam_ld (bias + c);
    if (has_r)
      v += hfam_ld ((const T *) r.data + offset (r, p, c));
    hfam_st ((T *) y.data + offset (y, p, c), relu && v < 0.0f ? 0.0f : v);
  }
}

template <typename T>
cudaError_t
bias_act (const HfamNhwc *x, const void *bias, const HfamNhwc *r, int relu, const HfamNhwc *y,
          cudaStream_t stream)
{
  const size_t n = (size_t) x->w * x->h * x->c;
  HfamNhwc none = {};
  bias_act_kernel<T><<<hfam_cuda_blocks (n, HFAM_CUDA_BLOCK), HFAM_CUDA_BLOCK, 0, stream>>> (
      *x, (const T *) bias, r ? *r : none, r != NULL, relu != 0, *y);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}

template <typename T>
__global__ void
split_k_sum_kernel (HfamNhwc part, int splits, const T *bias, HfamNhwc r, bool has_r, bool relu,
                    HfamNhwc y)
{
  const size_t n = (size_t) y.w * y.h * y.c;
  const int group = part.c / splits;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
       i += (size_t) gridDim.x * blockDim.x) {
    const size_t p = i / y.c;
    const int c = (int) (i % y.c);
    const T *src = (const T *) part.data + offset (part, p, c);
    float v = 0.0f;
    for (int g = 0; g < splits; g++)
      v += hfam_ld (src + (size_t) g * group);
    v += hfam_ld (bias + c);
    if (has_r)
      v += hfam_ld ((const T *) r.data + offset (r, p, c));
    hfam_st ((T *) y.data + offset (y, p, c), relu && v < 0.0f ? 0.0f : v);
  }
}

template <typename T>
cudaError_t
split_k_sum (const HfamNhwc *part, int splits, const void *bias, const HfamNhwc *r, int relu,
             const HfamNhwc *y, cudaStream_t stream)
{
  const size_t n = (size_t) y->w * y->h * y->c;
  HfamNhwc none = {};
  split_k_sum_kernel<T><<<hfam_cuda_blocks (n, HFAM_CUDA_BLOCK), HFAM_CUDA_BLOCK, 0, stream>>> (
      *part, splits, (const T *) bias, r ? *r : none, r != NULL, relu != 0, *y);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}

/* As hfam_nhwc_resize's linear_taps. */
__device__ inline void
linear_taps (int i, int in, int out, int &i0, int &i1, float &l1)
{
  const float scale = (float) in / (float) out;
  float src = ((float) i + 0.5f) * scale - 0.5f;
  if (src < 0.0f)
    src = 0.0f;
  i0 = min ((int) src, in - 1);
  i1 = i0 + 1 < in ? i0 + 1 : in - 1;
  l1 = src - (float) i0;
}

template <typename T>
__global__ void
resize_kernel (HfamNhwc s, HfamNhwc d)
{
  const size_t n = (size_t) d.w * d.h * d.c;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
       i += (size_t) gridDim.x * blockDim.x) {
    const int c = (int) (i % d.c);
    const size_t p = i / d.c;
    const int x = (int) (p % d.w), y = (int) (p / d.w);
    int x0, x1, y0, y1;
    float lx, ly;
    linear_taps (x, s.w, d.w, x0, x1, lx);
    linear_taps (y, s.h, d.h, y0, y1, ly);
    const T *src = (const T *) s.data;
    const float a = hfam_ld (src + offset (s, (size_t) y0 * s.w + x0, c));
    const float b = hfam_ld (src + offset (s, (size_t) y0 * s.w + x1, c));
    const float e = hfam_ld (src + offset (s, (size_t) y1 * s.w + x0, c));
    const float f = hfam_ld (src + offset (s, (size_t) y1 * s.w + x1, c));
    hfam_st ((T *) d.data + offset (d, p, c),
             (1.0f - ly) * ((1.0f - lx) * a + lx * b) + ly * ((1.0f - lx) * e + lx * f));
  }
}

template <typename T>
cudaError_t
resize (const HfamNhwc *s, const HfamNhwc *d, cudaStream_t stream)
{
  const size_t n = (size_t) d->w * d->h * d->c;
  resize_kernel<T><<<hfam_cuda_blocks (n, HFAM_CUDA_BLOCK), HFAM_CUDA_BLOCK, 0, stream>>> (*s,
                                                                                         *d);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}

template <typename T>
__global__ void
avgpool_kernel (HfamNhwc s, int factor, HfamNhwc d)
{
  const size_t n = (size_t) d.w * d.h * d.c;
  const float inv = 1.0f / (float) (factor * factor);
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
       i += (size_t) gridDim.x * blockDim.x) {
    const int c = (int) (i % d.c);
    const size_t p = i / d.c;
    const int x = (int) (p % d.w), y = (int) (p / d.w);
    float sum = 0.0f;
    for (int dy = 0; dy < factor; dy++)
      for (int dx = 0; dx < factor; dx++)
        sum += hfam_ld ((const T *) s.data
                        + offset (s, (size_t) (y * factor + dy) * s.w + x * factor + dx, c));
    hfam_st ((T *) d.data + offset (d, p, c), sum * inv);
  }
}

template <typename T>
cudaError_t
avgpool (const HfamNhwc *s, int factor, const HfamNhwc *d, cudaStream_t stream)
{
  const size_t n = (size_t) d->w * d->h * d->c;
  avgpool_kernel<T><<<hfam_cuda_blocks (n, HFAM_CUDA_BLOCK), HFAM_CUDA_BLOCK, 0, stream>>> (
      *s, factor, *d);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}

template <typename T>
__global__ void
maxpool_kernel (HfamNhwc s, HfamNhwc d)
{
  const size_t n = (size_t) d.w * d.h * d.c;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
       i += (size_t) gridDim.x * blockDim.x) {
    const int c = (int) (i % d.c);
    const size_t p = i / d.c;
    const int x = (int) (p % d.w), y = (int) (p / d.w);
    float m = -INFINITY;
    for (int dy = -1; dy <= 1; dy++)
      for (int dx = -1; dx <= 1; dx++) {
        const int sx = 2 * x + dx, sy = 2 * y + dy;
        if (sx >= 0 && sy >= 0 && sx < s.w && sy < s.h)
          m = fmaxf (m, hfam_ld ((const T *) s.data + offset (s, (size_t) sy * s.w + sx, c)));
      }
    hfam_st ((T *) d.data + offset (d, p, c), m);
  }
}

template <typename T>
cudaError_t
maxpool (const HfamNhwc *s, const HfamNhwc *d, cudaStream_t stream)
{
  const size_t n = (size_t) d->w * d->h * d->c;
  maxpool_kernel<T><<<hfam_cuda_blocks (n, HFAM_CUDA_BLOCK), HFAM_CUDA_BLOCK, 0, stream>>> (*s,
                                                                                          *d);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}

/* One block per GP_CHANNELS channels: each row of threads sums every GP_ROWS-th pixel, then
 * the rows are added in shared memory. */
template <typename T>
__global__ void
global_pool_kernel (HfamNhwc s, HfamNhwc d)
{
  __shared__ float part[GP_ROWS][GP_CHANNELS];
  const int c = blockIdx.x * GP_CHANNELS + threadIdx.x;
  const size_t n = (size_t) s.w * s.h;
  float sum = 0.0f;
  if (c < s.c)
    for (size_t p = threadIdx.y; p < n; p += GP_ROWS)
      sum += hfam_ld ((const T *) s.data + offset (s, p, c));
  part[threadIdx.y][threadIdx.x] = sum;
  __syncthreads ();
  if (threadIdx.y == 0 && c < s.c) {
    for (int r = 1; r < GP_ROWS; r++)
      sum += part[r][threadIdx.x];
    hfam_st ((T *) d.data + c, sum / (float) n);
  }
}

template <typename T>
cudaError_t
global_pool (const HfamNhwc *s, const HfamNhwc *d, cudaStream_t stream)
{
  const dim3 block (GP_CHANNELS, GP_ROWS);
  global_pool_kernel<T><<<(s->c + GP_CHANNELS - 1) / GP_CHANNELS, block, 0, stream>>> (*s, *d);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}

template <typename T>
__global__ void
copy_kernel (HfamNhwc s, HfamNhwc d)
{
  const size_t n = (size_t) s.w * s.h * s.c;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
       i += (size_t) gridDim.x * blockDim.x) {
    const int c = (int) (i % s.c);
    const size_t p = i / s.c;
    ((T *) d.data)[offset (d, p, c)] = ((const T *) s.data)[offset (s, p, c)];
  }
}

template <typename T>
cudaError_t
copy (const HfamNhwc *s, const HfamNhwc *d, cudaStream_t stream)
{
  const size_t n = (size_t) s->w * s->h * s->c;
  copy_kernel<T><<<hfam_cuda_blocks (n, HFAM_CUDA_BLOCK), HFAM_CUDA_BLOCK, 0, stream>>> (*s, *d);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}

template <typename T>
__global__ void
scale_kernel (HfamNhwc s, const float *map, HfamNhwc d)
{
  const size_t n = (size_t) s.w * s.h * s.c;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
       i += (size_t) gridDim.x * blockDim.x) {
    const int c = (int) (i % s.c);
    const size_t p = i / s.c;
    hfam_st ((T *) d.data + offset (d, p, c), hfam_ld ((const T *) s.data + offset (s, p, c))
                                                   * map[p]);
  }
}

template <typename T>
cudaError_t
scale_by_map (const HfamNhwc *s, const float *map, const HfamNhwc *d, cudaStream_t stream)
{
  const size_t n = (size_t) s->w * s->h * s->c;
  scale_kernel<T><<<hfam_cuda_blocks (n, HFAM_CUDA_BLOCK), HFAM_CUDA_BLOCK, 0, stream>>> (
      *s, map, *d);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}

template <typename T>
__global__ void
from_planar_kernel (const float *planar, HfamNhwc d)
{
  const size_t plane = (size_t) d.w * d.h, n = plane * d.cs;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
       i += (size_t) gridDim.x * blockDim.x) {
    const int c = (int) (i % d.cs);
    const size_t p = i / d.cs;
    hfam_st ((T *) d.data + i, c < d.c ? planar[c * plane + p] : 0.0f);
  }
}

template <typename T>
cudaError_t
from_planar (const float *planar, const HfamNhwc *d, cudaStream_t stream)
{
  const size_t n = (size_t) d->w * d->h * d->cs;
  from_planar_kernel<T><<<hfam_cuda_blocks (n, HFAM_CUDA_BLOCK), HFAM_CUDA_BLOCK, 0, stream>>> (
      planar, *d);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}

template <typename T>
__global__ void
to_planar_kernel (HfamNhwc s, float *planar)
{
  const size_t plane = (size_t) s.w * s.h, n = plane * s.c;
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
       i += (size_t) gridDim.x * blockDim.x) {
    const int c = (int) (i % s.c);
    const size_t p = i / s.c;
    planar[c * plane + p] = hfam_ld ((const T *) s.data + offset (s, p, c));
  }
}

template <typename T>
cudaError_t
to_planar (const HfamNhwc *s, float *planar, cudaStream_t stream)
{
  const size_t n = (size_t) s->w * s->h * s->c;
  to_planar_kernel<T><<<hfam_cuda_blocks (n, HFAM_CUDA_BLOCK), HFAM_CUDA_BLOCK, 0, stream>>> (
      *s, planar);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}

template <typename S, typename D>
__global__ void
convert_kernel (const S *src, D *dst, size_t n)
{
  for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < n;
       i += (size_t) gridDim.x * blockDim.x)
    hfam_st (dst + i, hfam_ld (src + i));
}

} // namespace

extern "C" cudaError_t
hfam_cuda_bias_act (const HfamNhwc *x, const void *bias, const HfamNhwc *residual, int relu,
                    const HfamNhwc *y, cudaStream_t stream)
{
  HFAM_CUDA_REQUIRE (valid (x) && valid (y) && bias && same_size (x, y));
  HFAM_CUDA_REQUIRE (!residual || (valid (residual) && same_size (x, residual)));
  return HFAM_CUDA_DISPATCH (x->dtype, bias_act, x, bias, residual, relu, y, stream);
}

extern "C" cudaError_t
hfam_cuda_split_k_sum (const HfamNhwc *partials, int splits, const void *bias,
                       const HfamNhwc *residual, int relu, const HfamNhwc *y,
                       cudaStream_t stream)
{
  HFAM_CUDA_REQUIRE (valid (partials) && valid (y) && bias && splits >= 1
                     && partials->c % splits == 0 && y->c <= partials->c / splits
                     && partials->w == y->w && partials->h == y->h
                     && partials->dtype == y->dtype);
  HFAM_CUDA_REQUIRE (!residual || (valid (residual) && same_size (y, residual)));
  return HFAM_CUDA_DISPATCH (y->dtype, split_k_sum, partials, splits, bias, residual, relu, y,
                             stream);
}

extern "C" cudaError_t
hfam_cuda_resize (const HfamNhwc *src, const HfamNhwc *dst, cudaStream_t stream)
{
  HFAM_CUDA_REQUIRE (valid (src) && valid (dst) && src->c == dst->c
                     && src->dtype == dst->dtype);
  return HFAM_CUDA_DISPATCH (src->dtype, resize, src, dst, stream);
}

extern "C" cudaError_t
hfam_cuda_avgpool (const HfamNhwc *src, int factor, const HfamNhwc *dst, cudaStream_t stream)
{
  HFAM_CUDA_REQUIRE (valid (src) && valid (dst) && factor >= 1 && src->c == dst->c
                     && src->dtype == dst->dtype && dst->w == src->w / factor
                     && dst->h == src->h / factor);
  return HFAM_CUDA_DISPATCH (src->dtype, avgpool, src, factor, dst, stream);
}

extern "C" cudaError_t
hfam_cuda_maxpool (const HfamNhwc *src, const HfamNhwc *dst, cudaStream_t stream)
{
  HFAM_CUDA_REQUIRE (valid (src) && valid (dst) && src->c == dst->c && src->dtype == dst->dtype
                     && dst->w == (src->w + 1) / 2 && dst->h == (src->h + 1) / 2);
  return HFAM_CUDA_DISPATCH (src->dtype, maxpool, src, dst, stream);
}

extern "C" cudaError_t
hfam_cuda_global_pool (const HfamNhwc *src, const HfamNhwc *dst, cudaStream_t stream)
{
  HFAM_CUDA_REQUIRE (valid (src) && valid (dst) && src->c == dst->c && src->dtype == dst->dtype
                     && dst->w == 1 && dst->h == 1);
  return HFAM_CUDA_DISPATCH (src->dtype, global_pool, src, dst, stream);
}

extern "C" cudaError_t
hfam_cuda_copy (const HfamNhwc *src, const HfamNhwc *dst, cudaStream_t stream)
{
  HFAM_CUDA_REQUIRE (valid (src) && valid (dst) && same_size (src, dst));
  return HFAM_CUDA_DISPATCH (src->dtype, copy, src, dst, stream);
}

extern "C" cudaError_t
hfam_cuda_scale_by_map (const HfamNhwc *src, const float *map, const HfamNhwc *dst,
                        cudaStream_t stream)
{
  HFAM_CUDA_REQUIRE (valid (src) && valid (dst) && map && same_size (src, dst));
  return HFAM_CUDA_DISPATCH (src->dtype, scale_by_map, src, map, dst, stream);
}

extern "C" cudaError_t
hfam_cuda_from_planar (const float *planar, const HfamNhwc *dst, cudaStream_t stream)
{
  HFAM_CUDA_REQUIRE (planar && valid (dst));
  return HFAM_CUDA_DISPATCH (dst->dtype, from_planar, planar, dst, stream);
}

extern "C" cudaError_t
hfam_cuda_to_planar (const HfamNhwc *src, float *planar, cudaStream_t stream)
{
  HFAM_CUDA_REQUIRE (planar && valid (src));
  return HFAM_CUDA_DISPATCH (src->dtype, to_planar, src, planar, stream);
}

extern "C" cudaError_t
hfam_cuda_convert (const void *src, HfamCudaDtype src_dtype, void *dst, HfamCudaDtype dst_dtype,
                   size_t n, cudaStream_t stream)
{
  const unsigned blocks = hfam_cuda_blocks (n, HFAM_CUDA_BLOCK);
  HFAM_CUDA_REQUIRE (src && dst);
  if (n == 0)
    return cudaSuccess;
  if (src_dtype == HFAM_CUDA_F32 && dst_dtype == HFAM_CUDA_F16)
    convert_kernel<<<blocks, HFAM_CUDA_BLOCK, 0, stream>>> ((const float *) src, (__half *) dst,
                                                           n);
  else if (src_dtype == HFAM_CUDA_F16 && dst_dtype == HFAM_CUDA_F32)
    convert_kernel<<<blocks, HFAM_CUDA_BLOCK, 0, stream>>> ((const __half *) src, (float *) dst,
                                                           n);
  else
    return cudaMemcpyAsync (dst, src, n * hfam_cuda_dtype_size (src_dtype),
                            cudaMemcpyDeviceToDevice, stream);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}
