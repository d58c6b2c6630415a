/* Box means (box.cuh): a column pass writing sums, then a row pass writing means. */
#include "box.cuh"

namespace {

/* Rows (columns) per thread: a thread sums its first window (2 r + 1 values), then slides. */
constexpr int SEGMENT = 64;

__global__ void
column_sums (const float *src, float *sums, int n, int h, int r)
{
  const int i = blockIdx.x * blockDim.x + threadIdx.x, y0 = blockIdx.y * SEGMENT;
  if (i >= n || y0 >= h)
    return;
  const int y1 = min (h, y0 + SEGMENT);
  float s = 0.0f;
  /* y0's window, then slide, as the twin */
  for (int t = max (0, y0 - r); t <= min (y0 + r, h - 1); t++)
    s += src[(size_t) t * n + i];
  sums[(size_t) y0 * n + i] = s;
  for (int y = y0 + 1; y < y1; y++) {
    if (y + r < h)
      s += src[(size_t) (y + r) * n + i];
    if (y - r - 1 >= 0)
      s -= src[(size_t) (y - r - 1) * n + i];
    sums[(size_t) y * n + i] = s;
  }
}

__global__ void
row_means (const float *sums, float *dst, int w, int h, int c, int r, int segments)
{
  const size_t idx = blockIdx.x * (size_t) blockDim.x + threadIdx.x;
  if (idx >= (size_t) c * segments * h)
    return;
  const int k = (int) (idx % c), seg = (int) (idx / c % segments), y = (int) (idx / c / segments);
  const int x0 = seg * SEGMENT, x1 = min (w, x0 + SEGMENT);
  const int ny = min (h - 1, y + r) - max (0, y - r) + 1;
  const float *row = sums + (size_t) y * w * c + k;
  float *out = dst + (size_t) y * w * c + k;
  float s = 0.0f;
  for (int t = max (0, x0 - r); t <= min (x0 + r, w - 1); t++)
    s += row[(size_t) t * c];
  for (int x = x0; x < x1; x++) {
    if (x > x0 && x + r < w)
      s += row[(size_t) (x + r) * c];
    if (x > x0 && x - r - 1 >= 0)
      s -= row[(size_t) (x - r - 1) * c];
    const int nx = min (w - 1, x + r) - max (0, x - r) + 1;
    out[(size_t) x * c] = s * (1.0f / (float) (nx * ny));
  }
}

} // namespace

extern "C" cudaError_t
hfam_cuda_box_mean (const float *src, float *tmp, float *dst, int w, int h, int c, int r,
                    cudaStream_t stream)
{
  HFAM_CUDA_REQUIRE (src && tmp && dst && tmp != src && tmp != dst);
  HFAM_CUDA_REQUIRE (w >= 1 && h >= 1 && c >= 1 && r >= 0 && (int64_t) w * c <= 0x7fffffff);
  const int n = w * c, row_segments = (h + SEGMENT - 1) / SEGMENT;
  const int col_segments = (w + SEGMENT - 1) / SEGMENT;
  HFAM_CUDA_REQUIRE (row_segments <= 65535);
  const dim3 grid ((n + HFAM_CUDA_BLOCK - 1) / HFAM_CUDA_BLOCK, row_segments);
  column_sums<<<grid, HFAM_CUDA_BLOCK, 0, stream>>> (src, tmp, n, h, r);
  HFAM_CUDA_LAUNCH_CHECK ();
  row_means<<<hfam_cuda_blocks ((size_t) c * col_segments * h, HFAM_CUDA_BLOCK), HFAM_CUDA_BLOCK,
              0, stream>>> (tmp, dst, w, h, c, r, col_segments);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}
