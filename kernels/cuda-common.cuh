/* What every CUDA op of kernels/ shares: the element types, the NHWC tensor view the ops read
 * and write, and (for nvcc only) the device helpers and the launch check.
 *
 * This header is C as well as CUDA C++: model/engine/cuda/ and the tests include it (and
 * every op's .cuh) from C. Launchers are plain C functions that return cudaSuccess, or
 * cudaErrorInvalidValue when a precondition fails (nothing is queued then), or the error of the
 * launch itself. They never synchronise; they run on the stream they are given. */
#ifndef HFAM_KERNELS_CUDA_COMMON_CUH
#define HFAM_KERNELS_CUDA_COMMON_CUH

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#define HFAM_CUDA_BEGIN_DECLS extern "C" {
#define HFAM_CUDA_END_DECLS }
#else
#define HFAM_CUDA_BEGIN_DECLS
#define HFAM_CUDA_END_DECLS
#endif

HFAM_CUDA_BEGIN_DECLS

/* Element type of feature maps (and of convolution weights and biases). Planar maps of the
 * heads (P_s, A, alpha) are always fp32. */
typedef enum {
  HFAM_CUDA_F32,
  HFAM_CUDA_F16,
} HfamCudaDtype;

/* A feature map, N = 1, in NHWC order: element (y, x, c) lives at
 * data[((size_t) y * w + x) * cs + c]. cs (the pixel stride in elements) is at least c: a
 * view into a channel slice of a wider map (a concatenation's destination) starts at the
 * slice's first channel and keeps the wide map's cs. */
typedef struct {
  void *data;
  int w, h;
  int c;          /* channels read or written */
  int cs;         /* elements per pixel */
  HfamCudaDtype dtype;
} HfamNhwc;

static inline size_t
hfam_cuda_dtype_size (HfamCudaDtype dtype)
{
  return dtype == HFAM_CUDA_F16 ? 2 : 4;
}

/* The view of channels [c0, c0 + c) of `t`. */
static inline HfamNhwc
hfam_nhwc_slice (HfamNhwc t, int c0, int c)
{
  HfamNhwc v = t;
  v.data = (char *) t.data + (size_t) c0 * hfam_cuda_dtype_size (t.dtype);
  v.c = c;
  return v;
}

HFAM_CUDA_END_DECLS

#ifdef __CUDACC__
#include <cuda_fp16.h>

/* Element loads and stores in fp32 arithmetic; fp16 rounds to nearest even on store. */
static __device__ __forceinline__ float
hfam_ld (const float *p)
{
  return *p;
}

static __device__ __forceinline__ float
hfam_ld (const __half *p)
{
  return __half2float (*p);
}

static __device__ __forceinline__ void
hfam_st (float *p, float v)
{
  *p = v;
}

static __device__ __forceinline__ void
hfam_st (__half *p, float v)
{
  *p = __float2half_rn (v);
}

/* Threads per block of the element-wise kernels. */
#define HFAM_CUDA_BLOCK 256

static inline unsigned
hfam_cuda_blocks (size_t n, unsigned block)
{
  size_t b = (n + block - 1) / block;
  return (unsigned) (b > 0x7fffffff ? 0x7fffffff : (b ? b : 1));
}

/* After a launch: the launch's own error (configuration, missing kernel image). */
#define HFAM_CUDA_LAUNCH_CHECK() \
  do {                           \
    cudaError_t err_ = cudaGetLastError (); \
    if (err_ != cudaSuccess)     \
      return err_;               \
  } while (0)

/* Precondition of a launcher: queue nothing and report an invalid value. */
#define HFAM_CUDA_REQUIRE(cond) \
  do {                          \
    if (!(cond))                \
      return cudaErrorInvalidValue; \
  } while (0)

/* Calls fn<float> or fn<__half> by dtype. */
#define HFAM_CUDA_DISPATCH(dtype, fn, ...) \
  ((dtype) == HFAM_CUDA_F16 ? fn<__half> (__VA_ARGS__) : fn<float> (__VA_ARGS__))
#endif

#endif
