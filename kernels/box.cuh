/* Box means on the GPU, shared by the refinement (refine.cuh) and the foreground estimation
 * (foreground.cuh): w x h pixels of c interleaved fp32 values, the clipped window of radius r,
 * divided by the pixels inside it, mean = sum * (1.0f / (float) (nx * ny)). CPU twin:
 * hfam_box_mean (box.h), which sums in the same order along each column (a running sum from
 * the top of each band of rows) and along each row (a running sum here, prefix sums there):
 * on small integers both are exact.
 *
 * O(1) per value: threads own a value's column (then row) over a segment of rows (columns),
 * start with the sum of the segment's first window and slide it. And, for nvcc only, the frame
 * pixel fetches: in 0..255 (the matte writer's and the bars') and in 0..1 (the two ops'). */
#ifndef HFAM_KERNELS_BOX_CUH
#define HFAM_KERNELS_BOX_CUH

#include "cuda-common.cuh"
#include "frame.h"

HFAM_CUDA_BEGIN_DECLS

/* src -> dst (device, w * h * c fp32 each); tmp (same size) holds the column sums. dst may be
 * src; tmp must be neither. */
cudaError_t hfam_cuda_box_mean (const float *src, float *tmp, float *dst, int w, int h, int c,
                                int r, cudaStream_t stream);

HFAM_CUDA_END_DECLS

#ifdef __CUDACC__
/* R'G'B' of pixel (x, y) of a device frame in 0..255, as hfam_frame_pixel_rgb (frame.h) gives
 * it: the bytes for the RGB formats (exact); for NV12 and I420 the matrix, whose sum nvcc
 * contracts into fused multiply-adds (the CPU twin rounds each product and sum), so within
 * 6.1e-5 of the twin's (all 2^24 triples, the four matrices of hfam_yuv_to_rgb_init, either
 * contraction). The matte writer's colours (matte.cu) and the bars' dark test (bars.cu). */
static __device__ __forceinline__ void
hfam_cuda_pixel_rgb (const HfamFrame &f, const HfamYuvToRgb &c, int x, int y, float rgb[3])
{
  float Y, U, V;
  switch (f.format) {
  case HFAM_FRAME_RGB:
  case HFAM_FRAME_BGR:
  case HFAM_FRAME_RGBA:
  case HFAM_FRAME_BGRA: {
    const int bpp = f.format <= HFAM_FRAME_BGR ? 3 : 4;
    const bool bgr = f.format == HFAM_FRAME_BGR || f.format == HFAM_FRAME_BGRA;
    const uint8_t *s = f.planes[0] + (ptrdiff_t) y * f.strides[0] + (ptrdiff_t) x * bpp;
    rgb[0] = s[bgr ? 2 : 0];
    rgb[1] = s[1];
    rgb[2] = s[bgr ? 0 : 2];
    return;
  }
  case HFAM_FRAME_NV12: {
    const uint8_t *s = f.planes[1] + (ptrdiff_t) (y / 2) * f.strides[1] + (ptrdiff_t) (x / 2) * 2;
    Y = f.planes[0][(ptrdiff_t) y * f.strides[0] + x];
    U = s[0];
    V = s[1];
    break;
  }
  default:
    Y = f.planes[0][(ptrdiff_t) y * f.strides[0] + x];
    U = f.planes[1][(ptrdiff_t) (y / 2) * f.strides[1] + x / 2];
    V = f.planes[2][(ptrdiff_t) (y / 2) * f.strides[2] + x / 2];
    break;
  }
  for (int r = 0; r < 3; r++)
    rgb[r] = fminf (fmaxf (c.m[3 * r] * Y + c.m[3 * r + 1] * U + c.m[3 * r + 2] * V + c.offset[r],
                           0.0f), 255.0f);
}

/* R'G'B' of pixel (x, y) of a device frame in 0..1: frame.h's conversion, then * (1 / 255)
 * as hfam_frame_row_rgb01 (box.h). */
static __device__ __forceinline__ void
hfam_cuda_pixel_rgb01 (const HfamFrame &f, const HfamYuvToRgb &c, int x, int y, float rgb[3])
{
  const float s = 1.0f / 255.0f;
  if (f.format <= HFAM_FRAME_BGRA) {
    const int bpp = f.format <= HFAM_FRAME_BGR ? 3 : 4;
    const bool bgr = f.format == HFAM_FRAME_BGR || f.format == HFAM_FRAME_BGRA;
    const uint8_t *p = f.planes[0] + (ptrdiff_t) y * f.strides[0] + (ptrdiff_t) x * bpp;
    rgb[0] = p[bgr ? 2 : 0] * s;
    rgb[1] = p[1] * s;
    rgb[2] = p[bgr ? 0 : 2] * s;
    return;
  }
  const float Y = f.planes[0][(ptrdiff_t) y * f.strides[0] + x];
  float U, V;
  if (f.format == HFAM_FRAME_NV12) {
    const uint8_t *p = f.planes[1] + (ptrdiff_t) (y / 2) * f.strides[1] + (ptrdiff_t) (x / 2) * 2;
    U = p[0];
    V = p[1];
  } else {
    U = f.planes[1][(ptrdiff_t) (y / 2) * f.strides[1] + x / 2];
    V = f.planes[2][(ptrdiff_t) (y / 2) * f.strides[2] + x / 2];
  }
  for (int k = 0; k < 3; k++)
    rgb[k] = fminf (fmaxf (c.m[3 * k] * Y + c.m[3 * k + 1] * U + c.m[3 * k + 2] * V + c.offset[k],
                           0.0f), 255.0f) * s;
}
#endif

#endif
