/* HFAM's position attention on the GPU: A = sigmoid(w . P_s + b) per pixel, and A average-
 * pooled to each skip's size. Planar fp32 maps. CPU twins: hfam_attention_map and
 * hfam_pool_plane (heads.h). */
#ifndef HFAM_KERNELS_ATTENTION_CUH
#define HFAM_KERNELS_ATTENTION_CUH

#include "cuda-common.cuh"

HFAM_CUDA_BEGIN_DECLS

/* prob: 3 planes of n_pixels (P_s); map: n_pixels. */
cudaError_t hfam_cuda_attention_map (const float *prob, int n_pixels, const float weight[3],
                                     float bias, float *map, cudaStream_t stream);

/* src (w x h) average-pooled by `factor` (w and h multiples of it) into dst. */
cudaError_t hfam_cuda_pool_plane (const float *src, int w, int h, int factor, float *dst,
                                  cudaStream_t stream);

HFAM_CUDA_END_DECLS

#endif
