/* Motion-aware temporal smoothing on the GPU, at the inference size: the grey plane of the
 * network's input, and the blend of temporal.h (one thread per pixel, the window summed in
 * place). CPU twins: hfam_motion_grey and hfam_matte_blend_motion (temporal.h). */
#ifndef HFAM_KERNELS_TEMPORAL_CUH
#define HFAM_KERNELS_TEMPORAL_CUH

#include "cuda-common.cuh"
#include "temporal.h"

HFAM_CUDA_BEGIN_DECLS

/* input (device, NHWC, fp32 or fp16, normalised with p; its first 3 channels are read) ->
 * grey (device, input->w x input->h fp32). */
cudaError_t hfam_cuda_motion_grey (const HfamNhwc *input, const HfamPreprocessParams *p,
                                   float *grey, cudaStream_t stream);

/* matte (device, w x h fp32, in place) blended with fresh by the change between grey and
 * kept_grey, held less where moved (device planes of the same size; moved may be NULL); the
 * still weights into still (device, w x h; NULL: not wanted). */
cudaError_t hfam_cuda_matte_blend_motion (float *matte, const float *fresh, const float *grey,
                                          const float *kept_grey, const float *moved, int w,
                                          int h, const HfamMotionParams *p, float *still,
                                          cudaStream_t stream);

HFAM_CUDA_END_DECLS

#endif
