/* Foreground colour estimation on the GPU: blur-fusion as foreground.h describes it, the two
 * passes' box means through box.cuh, the output written as the src pad's RGBA/BGRA image
 * (straight or premultiplied) in the same pass as pass 2's fusion. CPU twin: hfam_foreground
 * (foreground.h). */
#ifndef HFAM_KERNELS_FOREGROUND_CUH
#define HFAM_KERNELS_FOREGROUND_CUH

#include "box.cuh"
#include "foreground.h"

HFAM_CUDA_BEGIN_DECLS

/* Bytes of device workspace for a w x h frame: two images of HFAM_FOREGROUND_CHANNELS floats
 * per pixel and two per cell of pass 1's grid (at 1920 x 1080 with cells of 4, 141 MB); 0 when
 * p is not valid. */
size_t hfam_cuda_foreground_workspace_bytes (int w, int h, const HfamForegroundParams *p);

/* frame (device planes; yuv for NV12 and I420 only) and its alpha (device, frame's size,
 * alpha_stride floats per row) to out (device; frame's size; RGBA, BGRA or premultiplied). */
cudaError_t hfam_cuda_foreground (const HfamFrame *frame, const HfamYuvToRgb *yuv,
                                  const float *alpha, int alpha_stride,
                                  const HfamForegroundParams *p, const HfamMatteImage *out,
                                  void *workspace, size_t workspace_bytes, cudaStream_t stream);

HFAM_CUDA_END_DECLS

#endif
