/* The CUDA ops the backend runs between convolutions, on NHWC maps (cuda-common.cuh).
 * CPU twins: nhwc.h, one function there per launcher here, same semantics.
 * Every map of one call has the same dtype; planar maps are fp32. Launchers check sizes and
 * return cudaErrorInvalidValue on a mismatch, queueing nothing. */
#ifndef HFAM_KERNELS_NHWC_CUH
#define HFAM_KERNELS_NHWC_CUH

#include "cuda-common.cuh"

HFAM_CUDA_BEGIN_DECLS

/* y = act(x + bias[c] (+ residual)); bias has x's dtype (device, c values), residual may be
 * NULL; x and y may be the same map. (For convolutions cuDNN cannot fuse.) */
cudaError_t hfam_cuda_bias_act (const HfamNhwc *x, const void *bias, const HfamNhwc *residual,
                                int relu, const HfamNhwc *y, cudaStream_t stream);

/* y = act(sum of the `splits` channel groups of a split-K convolution's partials + bias[c]
 * (+ residual)), summed in fp32 (twin: hfam_nhwc_split_k_sum); partials->c = splits * group,
 * y->c <= group, all of y's size and dtype. */
cudaError_t hfam_cuda_split_k_sum (const HfamNhwc *partials, int splits, const void *bias,
                                   const HfamNhwc *residual, int relu, const HfamNhwc *y,
                                   cudaStream_t stream);

/* Bilinear resize, align_corners = false, src to dst's size (twin: hfam_nhwc_resize). */
cudaError_t hfam_cuda_resize (const HfamNhwc *src, const HfamNhwc *dst, cudaStream_t stream);

/* Average pooling by an exact factor (twin: hfam_nhwc_avgpool). */
cudaError_t hfam_cuda_avgpool (const HfamNhwc *src, int factor, const HfamNhwc *dst,
                               cudaStream_t stream);

/* Max pooling 3x3, stride 2, padding 1 (twin: hfam_nhwc_maxpool). */
cudaError_t hfam_cuda_maxpool (const HfamNhwc *src, const HfamNhwc *dst, cudaStream_t stream);

/* Per-channel mean over the plane into a 1x1 map, accumulated in fp32
 * (twin: hfam_nhwc_global_pool). MFEM's global pools. */
cudaError_t hfam_cuda_global_pool (const HfamNhwc *src, const HfamNhwc *dst,
                                   cudaStream_t stream);

/* dst = src (a concatenation: dst is the slice of the destination). */
cudaError_t hfam_cuda_copy (const HfamNhwc *src, const HfamNhwc *dst, cudaStream_t stream);

/* dst = src * map (planar fp32, src's size); src and dst may be the same map. */
cudaError_t hfam_cuda_scale_by_map (const HfamNhwc *src, const float *map, const HfamNhwc *dst,
                                    cudaStream_t stream);

/* Planar fp32 (dst->c planes) into dst; padding channels c..cs-1 become 0. */
cudaError_t hfam_cuda_from_planar (const float *planar, const HfamNhwc *dst,
                                   cudaStream_t stream);

/* src into planar fp32 (src->c planes). */
cudaError_t hfam_cuda_to_planar (const HfamNhwc *src, float *planar, cudaStream_t stream);

/* n elements from one dtype to another (fp32 <-> fp16, or a plain copy). */
cudaError_t hfam_cuda_convert (const void *src, HfamCudaDtype src_dtype, void *dst,
                               HfamCudaDtype dst_dtype, size_t n, cudaStream_t stream);

HFAM_CUDA_END_DECLS

#endif
