/* Black bars cleared from the matte (bars.cuh). */
#include "bars.cuh"
#include "box.cuh"

#include <limits.h>

namespace {

/* find_bars's blocks at most (each takes every so many rows): enough to fill the device, few
 * enough atomics on the four counters. */
constexpr unsigned MAX_ROW_BLOCKS = 1024;

/* What stays where every pixel is dark: top h and left w, as on the CPU; bottom h and right w
 * too, which clear_bars then sets to 0 (the twin's scans stop at top + bottom == h). */
__global__ void
set_found (int *found, int w, int h)
{
  found[0] = h;
  found[1] = h;
  found[2] = w;
  found[3] = w;
}

__device__ int
warp_min (int v)
{
  for (int o = 16; o > 0; o >>= 1)
    v = min (v, __shfl_xor_sync (0xffffffffu, v, o));
  return v;
}

/* Each pixel that is not dark offers its distances to the four edges (top: its row, bottom:
 * h - 1 - its row, ...); the smallest of each is that edge's bar. */
__global__ void
find_bars (const float *grey, int w, int h, float black, int *found)
{
  __shared__ int least[4][HFAM_CUDA_BLOCK / 32];
  int d[4] = { INT_MAX, INT_MAX, INT_MAX, INT_MAX };

  for (int y = blockIdx.x; y < h; y += gridDim.x) {
    const float *row = grey + (size_t) y * w;
    for (int x = threadIdx.x; x < w; x += blockDim.x)
      /* (as the twin compares: NaN is not dark) */
      if (!(row[x] <= black)) {
        d[0] = min (d[0], y);
        d[1] = min (d[1], h - 1 - y);
        d[2] = min (d[2], x);
        d[3] = min (d[3], w - 1 - x);
      }
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int k = 0; k < 4; k++) {
    const int m = warp_min (d[k]);
    if (lane == 0)
      least[k][warp] = m;
  }
  __syncthreads ();
  if (threadIdx.x < 4) {
    int m = INT_MAX;
    for (int i = 0; i < HFAM_CUDA_BLOCK / 32; i++)
      m = min (m, least[threadIdx.x][i]);
    if (m != INT_MAX)
      atomicMin (&found[threadIdx.x], m);
  }
}

__global__ void
clear_bars (float *matte, int *found, int w, int h)
{
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  const int n = w * h, top = found[0];
  if (top == h) {
    /* every pixel is dark: the top bar is the whole frame. Only here is found[1] or [3]
     * written, and only where top < h are they read: no thread reads what another writes */
    if (i == 0)
      found[1] = found[3] = 0;
    if (i < n)
      matte[i] = 0.0f;
    return;
  }
  if (i >= n)
    return;
  const int y = i / w, x = i - y * w;
  if (y < top || y >= h - found[1] || x < found[2] || x >= w - found[3])
    matte[i] = 0.0f;
}

/* ---- at the frame's size ---- */

/* frame_find_bars's threads: a 1920-pixel row is two pixels each, a 1080-row column one. */
constexpr int FIND_BLOCK = 1024;

/* clear_image's blocks at most; each takes every so many rows. */
constexpr unsigned MAX_CLEAR_BLOCKS = 4096;

/* bars.c's dark_pixel: the sum and the product rounded one at a time in the twin's order. */
__device__ bool
dark_pixel (const HfamFrame &f, const HfamYuvToRgb &c, int x, int y, float black)
{
  float rgb[3];
  hfam_cuda_pixel_rgb (f, c, x, y, rgb);
  return __fmul_rn (__fadd_rn (__fadd_rn (rgb[0], rgb[1]), rgb[2]), 1.0f / 765.0f) <= black;
}

/* Whether pixels [from, to) of row (column) `at` are all dark: the block's answer, which every
 * thread must ask for together. */
__device__ bool
dark_line (const HfamFrame &f, const HfamYuvToRgb &c, int at, int from, int to, bool column,
           float black)
{
  bool light = false;
  for (int k = from + (int) threadIdx.x; k < to && !light; k += blockDim.x)
    light = !(column ? dark_pixel (f, c, at, k, black) : dark_pixel (f, c, k, at, black));
  return !__syncthreads_or (light);
}

/* bars.c's under(): the frame's rows (columns) of n wholly under count of `of`. */
__device__ int
under (int count, int n, int of)
{
  return (int) ((long long) count * n / of);
}

/* One block. Every thread maps the bars and runs the same loops (their conditions are the
 * same in all, so that dark_line's barrier is met by the whole block). */
__global__ void
frame_find_bars (HfamFrame f, bool read, HfamYuvToRgb c, const int *inference, int iw, int ih,
                 int fw, int fh, float black, int *bars)
{
  const int in[4] = { inference[0], inference[1], inference[2], inference[3] };
  int top = under (in[0], fh, ih), bottom = under (in[1], fh, ih);
  int left = under (in[2], fw, iw), right = under (in[3], fw, iw);

  /* (compared so that no sum overflows: the values are device memory, unchecked) */
  if (read && in[0] >= 0 && in[1] >= 0 && in[2] >= 0 && in[3] >= 0 && in[0] <= ih - in[1]
      && in[2] <= iw - in[3]) {
    if (in[0])
      while (top + bottom < fh && dark_line (f, c, top, 0, fw, false, black))
        top++;
    if (in[1])
      while (top + bottom < fh && dark_line (f, c, fh - 1 - bottom, 0, fw, false, black))
        bottom++;
    if (in[2])
      while (left + right < fw && dark_line (f, c, left, top, fh - bottom, true, black))
        left++;
    if (in[3])
      while (left + right < fw && dark_line (f, c, fw - 1 - right, top, fh - bottom, true, black))
        right++;
  }
  /* every thread has read inference before bars (which may be the same ints) is written */
  __syncthreads ();
  if (threadIdx.x == 0) {
    bars[0] = top;
    bars[1] = bottom;
    bars[2] = left;
    bars[3] = right;
  }
}

/* A block per row (every gridDim.x-th): its bar pixels' bytes from `first` of each on
 * (bpp - first of them) set to 0, a thread per byte. */
__global__ void
clear_image (HfamMatteImage out, const int *bars, int bpp, int first)
{
  const int top = bars[0], bottom = bars[1], left = bars[2], right = bars[3];
  const int w = out.width, h = out.height, per = bpp - first;

  /* the twin's refusal, without a sum that could overflow */
  if (top < 0 || bottom < 0 || left < 0 || right < 0 || top > h - bottom || left > w - right)
    return;
  for (int y = blockIdx.x; y < h; y += gridDim.x) {
    uint8_t *row = out.data + (ptrdiff_t) y * out.stride;
    const bool whole = y < top || y >= h - bottom;
    /* the row's bar pixels: all w, or the left ones then the right ones */
    const int n = (whole ? w : left + right) * per;
    for (int k = threadIdx.x; k < n; k += blockDim.x) {
      const int i = k / per, x = whole || i < left ? i : w - right - left + i;
      row[(ptrdiff_t) x * bpp + first + (k - i * per)] = 0;
    }
  }
}

} // namespace

extern "C" cudaError_t
hfam_cuda_matte_clear_bars (float *matte, const float *grey, int w, int h,
                            const HfamBarParams *p, int *found, cudaStream_t stream)
{
  HFAM_CUDA_REQUIRE (matte && grey && found && w >= 1 && h >= 1
                     && (int64_t) w * h <= 0x7fffffff);
  HFAM_CUDA_REQUIRE (hfam_bar_params_valid (p));
  const unsigned row_blocks = h < (int) MAX_ROW_BLOCKS ? (unsigned) h : MAX_ROW_BLOCKS;
  set_found<<<1, 1, 0, stream>>> (found, w, h);
  HFAM_CUDA_LAUNCH_CHECK ();
  find_bars<<<row_blocks, HFAM_CUDA_BLOCK, 0, stream>>> (grey, w, h, p->black, found);
  HFAM_CUDA_LAUNCH_CHECK ();
  clear_bars<<<hfam_cuda_blocks ((size_t) w * h, HFAM_CUDA_BLOCK), HFAM_CUDA_BLOCK, 0, stream>>> (
    matte, found, w, h);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}

extern "C" cudaError_t
hfam_cuda_frame_find_bars (const HfamFrame *frame, const HfamYuvToRgb *yuv,
                           const int *inference, int iw, int ih, int fw, int fh,
                           const HfamBarParams *p, int *bars, cudaStream_t stream)
{
  HfamFrame none = {};
  HfamYuvToRgb identity = {};

  HFAM_CUDA_REQUIRE (inference && bars && iw >= 1 && ih >= 1 && fw >= 1 && fh >= 1);
  HFAM_CUDA_REQUIRE (hfam_bar_params_valid (p));
  HFAM_CUDA_REQUIRE (!frame || (hfam_frame_valid (frame) && frame->width == fw
                                && frame->height == fh
                                && (frame->format <= HFAM_FRAME_BGRA || yuv)));
  frame_find_bars<<<1, FIND_BLOCK, 0, stream>>> (frame ? *frame : none, frame != NULL,
                                                  yuv ? *yuv : identity, inference, iw, ih, fw,
                                                  fh, p->black, bars);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}

extern "C" cudaError_t
hfam_cuda_matte_image_clear_bars (const HfamMatteImage *out, const int *bars,
                                  cudaStream_t stream)
{
  HFAM_CUDA_REQUIRE (out && out->data && bars && (unsigned) out->format < HFAM_MATTE_N_FORMATS);
  const int bpp = hfam_matte_bytes_per_pixel (out->format);
  HFAM_CUDA_REQUIRE (out->width >= 1 && out->height >= 1 && out->width <= 0x7fffffff / 4
                     && out->stride >= out->width * bpp);
  const bool premultiplied = out->format == HFAM_MATTE_RGBA_PREMULTIPLIED
                             || out->format == HFAM_MATTE_BGRA_PREMULTIPLIED;
  const unsigned blocks = out->height < (int) MAX_CLEAR_BLOCKS ? (unsigned) out->height
                                                                : MAX_CLEAR_BLOCKS;
  clear_image<<<blocks, HFAM_CUDA_BLOCK, 0, stream>>> (*out, bars, bpp,
                                                       bpp == 4 && !premultiplied ? 3 : 0);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}

extern "C" cudaError_t
hfam_cuda_plane_zero_bars (float *plane, int w, int h, const int *bars, cudaStream_t stream)
{
  HFAM_CUDA_REQUIRE (plane && bars && w >= 1 && h >= 1 && w <= 0x7fffffff / 4);
  /* 0.0f is four zero bytes: the plane's clear is that of a premultiplied image of its size,
   * which sets all four bytes of each pixel under the bars to 0 */
  const HfamMatteImage view = { (uint8_t *) plane, 4 * w, w, h, HFAM_MATTE_RGBA_PREMULTIPLIED };
  return hfam_cuda_matte_image_clear_bars (&view, bars, stream);
}
