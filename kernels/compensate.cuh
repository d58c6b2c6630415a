/* Motion compensation of the kept matte on the GPU, at the inference size (compensate.h): the
 * pyramid's 2 x 2 means (one thread per pixel), the block matching (one thread per block, the
 * candidates in the CPU's order), the warp of both planes and the spread of the distances moved
 * (one thread per pixel). CPU twin: hfam_motion_compensate (compensate.h). */
#ifndef HFAM_KERNELS_COMPENSATE_CUH
#define HFAM_KERNELS_COMPENSATE_CUH

#include "compensate.h"
#include "cuda-common.cuh"

HFAM_CUDA_BEGIN_DECLS

/* kept_matte and kept_grey (device, w x h fp32 each) warped in place along the flow of grey
 * (device, w x h) against kept_grey, how far the picture moved around each pixel (as
 * hfam_motion_compensate) into moved (device, w x h) unless NULL; scratch:
 * hfam_compensate_scratch_floats (w, h, p) device floats. */
cudaError_t hfam_cuda_motion_compensate (float *kept_matte, float *kept_grey, const float *grey,
                                         int w, int h, const HfamFlowParams *p, float *moved,
                                         float *scratch, cudaStream_t stream);

HFAM_CUDA_END_DECLS

#endif
