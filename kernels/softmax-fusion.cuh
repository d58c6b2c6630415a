/* The heads on the GPU, each fused into one pass over the full-size output: the semantic
 * logits (NHWC, at half size) enlarged x2 (bilinear, align_corners = false) and turned into
 * P_s by a softmax over the 3 classes; the detail logit enlarged x2 and passed through a
 * sigmoid (alpha_d), and alpha_p chosen by the argmax of P_s (background 0, unknown alpha_d,
 * foreground 1, the first of equal maxima). Outputs are planar fp32.
 * CPU twins: hfam_semantic_head and hfam_fusion (heads.h), which take planar logits. */
#ifndef HFAM_KERNELS_SOFTMAX_FUSION_CUH
#define HFAM_KERNELS_SOFTMAX_FUSION_CUH

#include "cuda-common.cuh"

HFAM_CUDA_BEGIN_DECLS

/* logits: w/2 x h/2, c == 3 (any cs); prob: 3 planes of w x h. */
cudaError_t hfam_cuda_semantic_head (const HfamNhwc *logits, int w, int h, float *prob,
                                     cudaStream_t stream);

/* detail: w/2 x h/2, c == 1; prob: P_s (3 planes of w x h); alpha_d, alpha_p: w x h. */
cudaError_t hfam_cuda_fusion (const HfamNhwc *detail, const float *prob, int w, int h,
                              float *alpha_d, float *alpha_p, cudaStream_t stream);

HFAM_CUDA_END_DECLS

#endif
