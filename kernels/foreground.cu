/* Blur-fusion (foreground.cuh): pass 1's input cells from the frame (a thread per cell), their
 * box means, pass 2's input from pass 1's fusion with the cell means enlarged, its box means,
 * the output; one thread per pixel in the other steps. */
#include "foreground.cuh"

namespace {

constexpr int C = HFAM_FOREGROUND_CHANNELS;
constexpr int BLOCK_X = 32, BLOCK_Y = 8;

__device__ __forceinline__ float
clamp01 (float v)
{
  return fminf (fmaxf (v, 0.0f), 1.0f);
}

/* As fuse in foreground.c. */
__device__ __forceinline__ void
fuse (const float *m, float a, const float I[3], float F[3], float bB[3])
{
  const float inv_f = 1.0f / (m[0] + 1e-5f), inv_b = 1.0f / (1.0f - m[0] + 1e-5f);
  for (int k = 0; k < 3; k++) {
    const float bF = m[1 + k] * inv_f;
    bB[k] = m[4 + k] * inv_b;
    F[k] = clamp01 (bF + a * (I[k] - a * bF - (1.0f - a) * bB[k]));
  }
}

/* Pass 1's input cells: the means of alpha, I alpha, I (1 - alpha) over each cell, summed row
 * by row in order, as make_cells in foreground.c. */
__global__ void
first_cells (HfamFrame f, HfamYuvToRgb yuv, const float *alpha, int alpha_stride, int coarse,
             int cw, int ch, float *cells)
{
  const int i = blockIdx.x * BLOCK_X + threadIdx.x, j = blockIdx.y * BLOCK_Y + threadIdx.y;
  if (i >= cw || j >= ch)
    return;
  const int x0 = i * coarse, x1 = min (x0 + coarse, f.width);
  const int y0 = j * coarse, y1 = min (y0 + coarse, f.height);
  float sum[C - 1] = {};
  for (int y = y0; y < y1; y++)
    for (int x = x0; x < x1; x++) {
      const float a = clamp01 (alpha[(size_t) y * alpha_stride + x]);
      float I[3];
      hfam_cuda_pixel_rgb01 (f, yuv, x, y, I);
      sum[0] += a;
      for (int k = 0; k < 3; k++) {
        const float Ia = I[k] * a;
        sum[1 + k] += Ia;
        sum[4 + k] += I[k] - Ia;
      }
    }
  const float scale = 1.0f / (float) ((x1 - x0) * (y1 - y0));
  float *o = cells + ((size_t) j * cw + i) * C;
  for (int k = 0; k < C - 1; k++)
    o[k] = sum[k] * scale;
  o[C - 1] = 0.0f;
}

/* Pass 2's input from pass 1's means (the pixel's cell's): alpha, F' alpha, bB (1 - alpha). */
__global__ void
first_out (HfamFrame f, HfamYuvToRgb yuv, const float *alpha, int alpha_stride,
           const float *cell_means, int coarse, int cw, float *dst)
{
  const int x = blockIdx.x * BLOCK_X + threadIdx.x, y = blockIdx.y * BLOCK_Y + threadIdx.y;
  if (x >= f.width || y >= f.height)
    return;
  const float a = clamp01 (alpha[(size_t) y * alpha_stride + x]);
  float I[3], F[3], bB[3];
  hfam_cuda_pixel_rgb01 (f, yuv, x, y, I);
  fuse (cell_means + ((size_t) (y / coarse) * cw + x / coarse) * C, a, I, F, bB);
  float *o = dst + ((size_t) y * f.width + x) * C;
  o[0] = a;
  for (int k = 0; k < 3; k++) {
    o[1 + k] = F[k] * a;
    o[4 + k] = bB[k] * (1.0f - a);
  }
  o[7] = 0.0f;
}

/* The output from pass 2's means, rounded as hfam_matte_write rounds. */
__global__ void
second_out (HfamFrame f, HfamYuvToRgb yuv, const float *alpha, int alpha_stride,
            const float *means, HfamMatteImage out)
{
  const int x = blockIdx.x * BLOCK_X + threadIdx.x, y = blockIdx.y * BLOCK_Y + threadIdx.y;
  if (x >= f.width || y >= f.height)
    return;
  const bool bgr = out.format == HFAM_MATTE_BGRA || out.format == HFAM_MATTE_BGRA_PREMULTIPLIED;
  const bool premultiply = out.format == HFAM_MATTE_RGBA_PREMULTIPLIED
                           || out.format == HFAM_MATTE_BGRA_PREMULTIPLIED;
  const float a = clamp01 (alpha[(size_t) y * alpha_stride + x]);
  const int a8 = (int) (a * 255.0f + 0.5f);
  float I[3], F[3], bB[3];
  int c[3];
  hfam_cuda_pixel_rgb01 (f, yuv, x, y, I);
  fuse (means + ((size_t) y * f.width + x) * C, a, I, F, bB);
  for (int k = 0; k < 3; k++) {
    c[k] = (int) (F[k] * 255.0f + 0.5f);
    if (premultiply)
      c[k] = (c[k] * a8 + 127) / 255;
  }
  uint8_t *px = out.data + (ptrdiff_t) y * out.stride + 4 * (ptrdiff_t) x;
  px[0] = (uint8_t) c[bgr ? 2 : 0];
  px[1] = (uint8_t) c[1];
  px[2] = (uint8_t) c[bgr ? 0 : 2];
  px[3] = (uint8_t) a8;
}

/* The coarse grid's side for a frame side n, as foreground.c. */
int
cells_along (int n, int coarse)
{
  return (n + coarse - 1) / coarse;
}

} // namespace

extern "C" size_t
hfam_cuda_foreground_workspace_bytes (int w, int h, const HfamForegroundParams *p)
{
  if (w < 1 || h < 1 || !hfam_foreground_params_valid (p))
    return 0;
  const size_t cells = (size_t) cells_along (w, p->coarse) * cells_along (h, p->coarse);
  return 2 * sizeof (float) * C * ((size_t) w * h + cells);
}

extern "C" cudaError_t
hfam_cuda_foreground (const HfamFrame *frame, const HfamYuvToRgb *yuv, const float *alpha,
                      int alpha_stride, const HfamForegroundParams *p, const HfamMatteImage *out,
                      void *workspace, size_t workspace_bytes, cudaStream_t stream)
{
  HFAM_CUDA_REQUIRE (frame && hfam_frame_valid (frame) && alpha && out && out->data && workspace);
  HFAM_CUDA_REQUIRE (yuv || frame->format <= HFAM_FRAME_BGRA);
  HFAM_CUDA_REQUIRE (hfam_foreground_params_valid (p) && alpha_stride >= frame->width);
  HFAM_CUDA_REQUIRE (out->format >= HFAM_MATTE_RGBA
                     && (unsigned) out->format < HFAM_MATTE_N_FORMATS
                     && out->width == frame->width && out->height == frame->height
                     && out->stride >= 4 * out->width);
  HFAM_CUDA_REQUIRE (workspace_bytes >= hfam_cuda_foreground_workspace_bytes (frame->width,
                                                                              frame->height, p));
  const int w = frame->width, h = frame->height, coarse = p->coarse;
  const int cw = cells_along (w, coarse), ch = cells_along (h, coarse);
  const HfamYuvToRgb none = {}, conversion = yuv ? *yuv : none;
  float *a = (float *) workspace, *b = a + (size_t) C * w * h;
  float *cells = b + (size_t) C * w * h, *cell_sums = cells + (size_t) C * cw * ch;
  const dim3 block (BLOCK_X, BLOCK_Y), grid ((w + BLOCK_X - 1) / BLOCK_X,
                                             (h + BLOCK_Y - 1) / BLOCK_Y);
  const dim3 cell_grid ((cw + BLOCK_X - 1) / BLOCK_X, (ch + BLOCK_Y - 1) / BLOCK_Y);
  cudaError_t err;

  first_cells<<<cell_grid, block, 0, stream>>> (*frame, conversion, alpha, alpha_stride, coarse,
                                                cw, ch, cells);
  HFAM_CUDA_LAUNCH_CHECK ();
  if ((err = hfam_cuda_box_mean (cells, cell_sums, cells, cw, ch, C,
                                 hfam_foreground_coarse_radius (p), stream)) != cudaSuccess)
    return err;
  first_out<<<grid, block, 0, stream>>> (*frame, conversion, alpha, alpha_stride, cells, coarse,
                                         cw, a);
  HFAM_CUDA_LAUNCH_CHECK ();
  if ((err = hfam_cuda_box_mean (a, b, a, w, h, C, p->radius_small, stream)) != cudaSuccess)
    return err;
  second_out<<<grid, block, 0, stream>>> (*frame, conversion, alpha, alpha_stride, a, *out);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}
