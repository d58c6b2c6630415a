/* Matte refinement at the frame's resolution on the GPU: the fast guided filter of refine.h,
 * step for step (the guide through the pre-processing op, box means through box.cuh), the
 * clamp and the key levels folded into its last pass; and the key levels alone on a plane.
 * CPU twins: hfam_refine and hfam_key_levels_apply (refine.h). */
#ifndef HFAM_KERNELS_REFINE_CUH
#define HFAM_KERNELS_REFINE_CUH

#include "box.cuh"
#include "preprocess.cuh"
#include "refine.h"

HFAM_CUDA_BEGIN_DECLS

/* What one refinement of aw x ah alpha on fw x fh frames needs on the device: the filters of
 * its resizes and its workspace (about 38 floats per pixel at the statistics' size). */
typedef struct {
  int aw, ah, sw, sh, fw, fh;
  int colour;
  HfamCudaFilter alpha_x, alpha_y;   /* alpha to the statistics' size; unset when equal */
  HfamCudaFilter guide_x, guide_y;   /* the frame to the statistics' size */
  HfamCudaFilter up_x, up_y;         /* the statistics' size to the frame's */
  float *workspace;
} HfamCudaRefinePlan;

/* Allocates and uploads (synchronously: call it when planning, not per frame).
 * cudaErrorInvalidValue when hfam_refine_params_valid fails. */
cudaError_t hfam_cuda_refine_plan_new (HfamCudaRefinePlan *plan, int aw, int ah, int fw, int fh,
                                       const HfamRefineParams *p);
void hfam_cuda_refine_plan_free (HfamCudaRefinePlan *plan);

/* alpha (device, aw x ah fp32, tightly packed) refined with frame (device planes, fw x fh) into
 * out (device, fw x fh, out_stride floats per row), then the key levels (NULL: none). p must
 * be the plan's (same statistics' size and guide). */
cudaError_t hfam_cuda_refine (const HfamCudaRefinePlan *plan, const float *alpha,
                              const HfamFrame *frame, const HfamYuvToRgb *yuv,
                              const HfamRefineParams *p, const HfamKeyLevels *levels,
                              float *out, int out_stride, cudaStream_t stream);

/* hfam_cuda_refine, then held over time as refine.h's hfam_refine_held (hold's planes in
 * device memory; hold NULL: as hfam_cuda_refine). */
cudaError_t hfam_cuda_refine_held (const HfamCudaRefinePlan *plan, const float *alpha,
                                   const HfamFrame *frame, const HfamYuvToRgb *yuv,
                                   const HfamRefineParams *p, const HfamKeyLevels *levels,
                                   const HfamRefineHold *hold, float *out, int out_stride,
                                   cudaStream_t stream);

/* n fp32 values (device) in place: clamped to 0..1, then the levels (NULL: only the clamp). */
cudaError_t hfam_cuda_key_levels (float *alpha, size_t n, const HfamKeyLevels *levels,
                                  cudaStream_t stream);

HFAM_CUDA_END_DECLS

#endif
