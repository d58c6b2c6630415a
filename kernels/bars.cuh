/* Black bars cleared from the matte on the GPU (bars.h says what, and is the CPU twin): the
 * bars are what lies outside the bounding box of the grey plane's pixels that are not dark
 * (the twin's top bar ends at the first row with such a pixel, and so on), so one pass over
 * all pixels finds them, each block's least distance to each edge kept by an atomic minimum,
 * rather than the twin's scan inwards from the edges, which a single block would have to run.
 * Three small kernels on the stream (set, find, clear), nothing read back to the host.
 * At the frame's size (hfam_frame_find_bars): one block maps the bars and widens each over the
 * frame's dark rows (columns) a line at a time, the block's threads testing a line's pixels
 * together; an output image is cleared over them a block per row. */
#ifndef HFAM_KERNELS_BARS_CUH
#define HFAM_KERNELS_BARS_CUH

#include "bars.h"
#include "cuda-common.cuh"

HFAM_CUDA_BEGIN_DECLS

/* matte (device, w x h fp32, in place) set to 0 over the bars of grey (device, w x h fp32);
 * found (device, 4 ints) receives them: top, bottom, left, right, as HfamBars. */
cudaError_t hfam_cuda_matte_clear_bars (float *matte, const float *grey, int w, int h,
                                        const HfamBarParams *p, int *found, cudaStream_t stream);

/* The bars at the frame's size, hfam_frame_find_bars's (bars.h) on the device. inference:
 * device int[4], the bars found at iw x ih (top, bottom, left, right: as `found` above);
 * bars: device int[4] out, the same order (may be inference itself). frame: NULL (the mapping
 * only), or a frame of fw x fh whose planes are in device memory; yuv: host memory, needed for
 * NV12 and I420 only. The frame's rows (columns) are read only for inference bars that
 * hfam_find_bars can give (each >= 0, top + bottom <= ih, left + right <= iw); others get the
 * mapping alone. One block. The dark test is the twin's to the bit for the RGB formats; for
 * NV12 and I420 a pixel's mean is within 2e-7 of the twin's (hfam_cuda_pixel_rgb, box.cuh), so
 * the two can differ where it lies that close to p->black. */
cudaError_t hfam_cuda_frame_find_bars (const HfamFrame *frame, const HfamYuvToRgb *yuv,
                                       const int *inference, int iw, int ih, int fw, int fh,
                                       const HfamBarParams *p, int *bars, cudaStream_t stream);

/* out (an output image in device memory, any HfamMatteFormat) cleared over bars (device
 * int[4], top, bottom, left, right), hfam_matte_image_clear_bars's bytes: a key's all, a
 * straight colour format's alpha (4th) byte, a premultiplied format's four; bars that the
 * twin refuses (a negative one, top + bottom > height, left + right > width) clear nothing.
 * Bytes past each row's width * bytes per pixel are not touched. */
cudaError_t hfam_cuda_matte_image_clear_bars (const HfamMatteImage *out, const int *bars,
                                              cudaStream_t stream);

/* plane (device, w x h fp32, tightly packed, in place) set to 0 over bars (device int[4], as
 * above; bars the image clear refuses clear nothing): hfam_plane_zero_bars (bars.h) with the
 * bars on the device, for a matte that is cleared before the outputs are made from it. */
cudaError_t hfam_cuda_plane_zero_bars (float *plane, int w, int h, const int *bars,
                                       cudaStream_t stream);

HFAM_CUDA_END_DECLS

#endif
