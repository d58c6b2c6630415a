/* MFEM's SK attention folded into the 1x1 projection, per frame, on the GPU (the pooling
 * itself is hfam_cuda_global_pool of nhwc.cuh). CPU twin: hfam_sk_fold (heads.h), whose
 * comment gives the formulas:
 *   s = sum_k gap_k + b4; z = ReLU(Wsq s + bsq); a = softmax over the 5 branches of
 *   (Wsel z + bsel); weight_out[o][k cm + c] = Wp[o][k cm + c] a_k[c] (k < 4);
 *   bias_out[o] = bp[o] + sum_c Wp[o][4 cm + c] a_4[c] b4[c].
 * weight_out is row-major (cm, 4 cm): the KRSC (= KCRS) layout of a 1x1 convolution. */
#ifndef HFAM_KERNELS_SK_CUH
#define HFAM_KERNELS_SK_CUH

#include "cuda-common.cuh"

HFAM_CUDA_BEGIN_DECLS

/* The plain fp32 tensors of one MFEM's attention and projection (device memory), row-major
 * (out, in) as in the weight file. */
typedef struct {
  int cm, d;
  const float *squeeze_w, *squeeze_b;  /* (d, cm), (d) */
  const float *select_w, *select_b;    /* (5 cm, d), (5 cm) */
  const float *project_w, *project_b;  /* (cm, 5 cm), (cm) */
} HfamCudaSkWeights;

/* Floats of scratch that hfam_cuda_sk_fold needs (device memory). */
static inline size_t
hfam_cuda_sk_scratch_floats (int cm)
{
  return (size_t) 5 * cm;
}

/* gap: 4 cm values (b0..b3 pooled), pooled: cm values (b4), both of `dtype`; weight_out
 * (cm rows of 4 cm, `ld` >= 4 cm elements apart) and bias_out (cm) are written in `dtype` too;
 * elements past the 4 cm columns and rows past cm are not touched (a padded convolution keeps
 * them zero). Two kernels on `stream`. */
cudaError_t hfam_cuda_sk_fold (const HfamCudaSkWeights *w, const void *gap, const void *pooled,
                               HfamCudaDtype dtype, float *scratch, void *weight_out, int ld,
                               void *bias_out, cudaStream_t stream);

HFAM_CUDA_END_DECLS

#endif
