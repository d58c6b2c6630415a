/* The matte back to the frame on the GPU: alpha (the network's alpha_p, fp32 at the inference
 * size) resized to the frame's size with the filter of kernels/resize.c and written in one
 * pass as a GRAY8/GRAY16 key or as the alpha of an RGBA/BGRA copy of the frame (straight or
 * premultiplied), rounded to nearest. CPU twin: hfam_matte_write (frame.h). Or resized into
 * a float plane for the edge ops (refine.cuh, foreground.cuh). And the temporal smoothing of
 * alpha with the matte kept from earlier frames, at the inference size. CPU twin:
 * hfam_matte_blend (frame.h). */
#ifndef HFAM_KERNELS_MATTE_CUH
#define HFAM_KERNELS_MATTE_CUH

#include "preprocess.cuh"
#include "refine.h"

HFAM_CUDA_BEGIN_DECLS

/* alpha: aw x ah fp32 (device), tightly packed; fx: aw -> out->width, fy: ah -> out->height;
 * frame (device planes, out's size) for the colour formats, may be NULL for the keys;
 * out->data in device memory. */
cudaError_t hfam_cuda_matte (const float *alpha, int aw, int ah, const HfamCudaFilter *fx,
                             const HfamCudaFilter *fy, const HfamFrame *frame,
                             const HfamYuvToRgb *yuv, const HfamMatteImage *out,
                             cudaStream_t stream);

/* alpha (aw x ah fp32, device) resized with fx and fy into out (fx->out x fy->out fp32,
 * device, out_stride floats per row), clamped to 0..1, then the key levels (NULL: none). CPU
 * twin: hfam_resize_plane (resize.h), then hfam_key_levels_apply (refine.h). */
cudaError_t hfam_cuda_matte_resize (const float *alpha, int aw, int ah, const HfamCudaFilter *fx,
                                    const HfamCudaFilter *fy, const HfamKeyLevels *levels,
                                    float *out, int out_stride, cudaStream_t stream);

/* matte[i] = (1 - smoothing) * fresh[i] + smoothing * matte[i] for n fp32 values (device), in
 * place; smoothing in 0..1. matte and fresh are the same plane or do not overlap. */
cudaError_t hfam_cuda_matte_blend (float *matte, const float *fresh, size_t n, float smoothing,
                                   cudaStream_t stream);

HFAM_CUDA_END_DECLS

#endif
