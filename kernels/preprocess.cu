/* Fused pre-processing (preprocess.cuh). One thread per output pixel walks the 2-D taps of the
 * separable filter: sum over rows of wy * (sum over columns of wx * R'G'B'(x, y)). The format
 * is a template parameter so the pixel fetch has no branch. */
#include "preprocess.cuh"

#include <stdlib.h>

namespace {

constexpr int BLOCK_X = 32, BLOCK_Y = 8;

struct Params {
  int order[3];
  float mul[3], add[3];
  float m[9], offset[3];
};

template <HfamFrameFormat F>
__device__ inline void
pixel_rgb (const HfamFrame &f, const Params &p, int x, int y, float rgb[3])
{
  if (F == HFAM_FRAME_RGB || F == HFAM_FRAME_BGR || F == HFAM_FRAME_RGBA
      || F == HFAM_FRAME_BGRA) {
    constexpr int bpp = (F == HFAM_FRAME_RGB || F == HFAM_FRAME_BGR) ? 3 : 4;
    constexpr bool bgr = F == HFAM_FRAME_BGR || F == HFAM_FRAME_BGRA;
    const uint8_t *s = f.planes[0] + (ptrdiff_t) y * f.strides[0] + (ptrdiff_t) x * bpp;
    rgb[0] = s[bgr ? 2 : 0];
    rgb[1] = s[1];
    rgb[2] = s[bgr ? 0 : 2];
  } else {
    const float Y = f.planes[0][(ptrdiff_t) y * f.strides[0] + x];
    float U, V;
    if (F == HFAM_FRAME_NV12) {
      const uint8_t *c = f.planes[1] + (ptrdiff_t) (y / 2) * f.strides[1] + (ptrdiff_t) (x / 2) * 2;
      U = c[0];
      V = c[1];
    } else {
      U = f.planes[1][(ptrdiff_t) (y / 2) * f.strides[1] + x / 2];
      V = f.planes[2][(ptrdiff_t) (y / 2) * f.strides[2] + x / 2];
    }
    for (int r = 0; r < 3; r++)
      rgb[r] = fminf (fmaxf (p.m[3 * r] * Y + p.m[3 * r + 1] * U + p.m[3 * r + 2] * V
                             + p.offset[r], 0.0f), 255.0f);
  }
}

template <HfamFrameFormat F, typename T>
__global__ void
preprocess_kernel (HfamFrame f, Params p, HfamCudaFilter fx, HfamCudaFilter fy, HfamNhwc d)
{
  const int x = blockIdx.x * BLOCK_X + threadIdx.x, y = blockIdx.y * BLOCK_Y + threadIdx.y;
  if (x >= d.w || y >= d.h)
    return;
  const int x0 = fx.start[x], nx = fx.len[x], y0 = fy.start[y], ny = fy.len[y];
  const float *wx = fx.w + (size_t) x * fx.k, *wy = fy.w + (size_t) y * fy.k;
  float acc[3] = { 0.0f, 0.0f, 0.0f };
  for (int ty = 0; ty < ny; ty++) {
    float row[3] = { 0.0f, 0.0f, 0.0f };
    for (int tx = 0; tx < nx; tx++) {
      float rgb[3];
      pixel_rgb<F> (f, p, x0 + tx, y0 + ty, rgb);
      for (int k = 0; k < 3; k++)
        row[k] += wx[tx] * rgb[k];
    }
    for (int k = 0; k < 3; k++)
      acc[k] += wy[ty] * row[k];
  }
  T *out = (T *) d.data + ((size_t) y * d.w + x) * d.cs;
  for (int k = 0; k < 3; k++)
    hfam_st (out + k, acc[p.order[k]] * p.mul[k] + p.add[k]);
  for (int k = 3; k < d.cs; k++)
    hfam_st (out + k, 0.0f);
}

template <typename T>
cudaError_t
launch (const HfamFrame *f, const Params &p, const HfamCudaFilter *fx, const HfamCudaFilter *fy,
        const HfamNhwc *d, cudaStream_t stream)
{
  const dim3 block (BLOCK_X, BLOCK_Y), grid ((d->w + BLOCK_X - 1) / BLOCK_X,
                                             (d->h + BLOCK_Y - 1) / BLOCK_Y);
  switch (f->format) {
  case HFAM_FRAME_RGB:
    preprocess_kernel<HFAM_FRAME_RGB, T><<<grid, block, 0, stream>>> (*f, p, *fx, *fy, *d);
    break;
  case HFAM_FRAME_BGR:
    preprocess_kernel<HFAM_FRAME_BGR, T><<<grid, block, 0, stream>>> (*f, p, *fx, *fy, *d);
    break;
  case HFAM_FRAME_RGBA:
    preprocess_kernel<HFAM_FRAME_RGBA, T><<<grid, block, 0, stream>>> (*f, p, *fx, *fy, *d);
    break;
  case HFAM_FRAME_BGRA:
    preprocess_kernel<HFAM_FRAME_BGRA, T><<<grid, block, 0, stream>>> (*f, p, *fx, *fy, *d);
    break;
  case HFAM_FRAME_NV12:
    preprocess_kernel<HFAM_FRAME_NV12, T><<<grid, block, 0, stream>>> (*f, p, *fx, *fy, *d);
    break;
  case HFAM_FRAME_I420:
    preprocess_kernel<HFAM_FRAME_I420, T><<<grid, block, 0, stream>>> (*f, p, *fx, *fy, *d);
    break;
  default:
    return cudaErrorInvalidValue;
  }
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}

} // namespace

extern "C" cudaError_t
hfam_cuda_filter_new (int in, int out, HfamCudaFilter *f)
{
  HfamResizeFilter h;
  size_t n_int, bytes;
  char *mem = NULL;
  cudaError_t err;

  HFAM_CUDA_REQUIRE (f);
  *f = HfamCudaFilter {};
  if (hfam_resize_filter_init (&h, in, out) != 0)
    return cudaErrorInvalidValue;
  n_int = (size_t) out;
  bytes = 2 * n_int * sizeof (int) + (size_t) out * h.k * sizeof (float);
  err = cudaMalloc ((void **) &mem, bytes);
  if (err == cudaSuccess)
    err = cudaMemcpy (mem, h.start, n_int * sizeof (int), cudaMemcpyHostToDevice);
  if (err == cudaSuccess)
    err = cudaMemcpy (mem + n_int * sizeof (int), h.len, n_int * sizeof (int),
                      cudaMemcpyHostToDevice);
  if (err == cudaSuccess)
    err = cudaMemcpy (mem + 2 * n_int * sizeof (int), h.w, (size_t) out * h.k * sizeof (float),
                      cudaMemcpyHostToDevice);
  if (err == cudaSuccess) {
    f->start = (int *) mem;
    f->len = (int *) (mem + n_int * sizeof (int));
    f->w = (float *) (mem + 2 * n_int * sizeof (int));
    f->in = in;
    f->out = out;
    f->k = h.k;
  } else if (mem) {
    cudaFree (mem);
  }
  hfam_resize_filter_clear (&h);
  return err;
}

extern "C" void
hfam_cuda_filter_free (HfamCudaFilter *f)
{
  if (f && f->start)
    cudaFree (f->start);
  if (f)
    *f = HfamCudaFilter {};
}

extern "C" cudaError_t
hfam_cuda_preprocess (const HfamFrame *frame, const HfamPreprocessParams *params,
                      const HfamCudaFilter *fx, const HfamCudaFilter *fy, const HfamNhwc *dst,
                      cudaStream_t stream)
{
  Params p;

  HFAM_CUDA_REQUIRE (frame && params && fx && fy && dst && dst->data);
  HFAM_CUDA_REQUIRE (hfam_frame_valid (frame));
  HFAM_CUDA_REQUIRE (fx->start && fy->start && fx->in == frame->width
                     && fy->in == frame->height && fx->out == dst->w && fy->out == dst->h);
  HFAM_CUDA_REQUIRE (dst->c == 3 && dst->cs >= 3);
  for (int k = 0; k < 3; k++) {
    HFAM_CUDA_REQUIRE (params->order[k] >= 0 && params->order[k] < 3 && params->std[k] != 0.0f);
    p.order[k] = params->order[k];
    p.mul[k] = params->scale / 255.0f / params->std[k];
    p.add[k] = -params->mean[k] / params->std[k];
    p.offset[k] = params->yuv.offset[k];
  }
  for (int i = 0; i < 9; i++)
    p.m[i] = params->yuv.m[i];
  return HFAM_CUDA_DISPATCH (dst->dtype, launch, frame, p, fx, fy, dst, stream);
}
