/* Fused pre-processing on the GPU: an 8-bit frame (RGB, BGR, RGBA, BGRA, NV12, I420; frame.h)
 * to the normalised NHWC inference tensor in one pass: colour conversion, PyTorch's
 * antialiased bilinear resize (the taps of kernels/resize.c, computed on the host) and the
 * normalisation. CPU twin: hfam_frame_preprocess (frame.h), which produces planar NCHW. */
#ifndef HFAM_KERNELS_PREPROCESS_CUH
#define HFAM_KERNELS_PREPROCESS_CUH

#include "cuda-common.cuh"
#include "frame.h"

HFAM_CUDA_BEGIN_DECLS

/* The taps of a HfamResizeFilter in device memory (one allocation, at start). */
typedef struct {
  int *start, *len;
  float *w;
  int in, out, k;
} HfamCudaFilter;

/* Computes the filter from `in` to `out` samples on the host and uploads it (synchronously:
 * call it when planning, not per frame). */
cudaError_t hfam_cuda_filter_new (int in, int out, HfamCudaFilter *f);
void hfam_cuda_filter_free (HfamCudaFilter *f);

/* frame (device planes) -> dst (dst->c == 3; padding channels up to dst->cs become 0).
 * fx: frame->width -> dst->w, fy: frame->height -> dst->h. */
cudaError_t hfam_cuda_preprocess (const HfamFrame *frame, const HfamPreprocessParams *params,
                                  const HfamCudaFilter *fx, const HfamCudaFilter *fy,
                                  const HfamNhwc *dst, cudaStream_t stream);

HFAM_CUDA_END_DECLS

#endif
