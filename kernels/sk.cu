/* SK attention fold (sk.cuh): one block computes the attention weights a (5 cm floats, into
 * the scratch), then one block per output channel scales its row of the projection and sums
 * the constant b4 term into its bias. */
#include "sk.cuh"

namespace {

constexpr int ATT_THREADS = 256;
constexpr int FOLD_THREADS = 256;

template <typename T>
__global__ void
attention_kernel (HfamCudaSkWeights w, const T *gap, const T *pooled, float *a_out)
{
  extern __shared__ float smem[];
  const int cm = w.cm, d = w.d;
  float *s = smem, *z = s + cm, *a = z + d;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, n_warps = blockDim.x / 32;

  for (int c = threadIdx.x; c < cm; c += blockDim.x)
    s[c] = hfam_ld (gap + c) + hfam_ld (gap + cm + c) + hfam_ld (gap + 2 * cm + c)
           + hfam_ld (gap + 3 * cm + c) + hfam_ld (pooled + c);
  __syncthreads ();
  /* z: one warp per output */
  for (int j = warp; j < d; j += n_warps) {
    float acc = 0.0f;
    for (int c = lane; c < cm; c += 32)
      acc += w.squeeze_w[(size_t) j * cm + c] * s[c];
    for (int o = 16; o > 0; o /= 2)
      acc += __shfl_down_sync (0xffffffffu, acc, o);
    if (lane == 0) {
      acc += w.squeeze_b[j];
      z[j] = acc > 0.0f ? acc : 0.0f;
    }
  }
  __syncthreads ();
  for (int i = threadIdx.x; i < 5 * cm; i += blockDim.x) {
    float acc = w.select_b[i];
    for (int j = 0; j < d; j++)
      acc += w.select_w[(size_t) i * d + j] * z[j];
    a[i] = acc;
  }
  __syncthreads ();
  for (int c = threadIdx.x; c < cm; c += blockDim.x) {
    float m = a[c], sum = 0.0f, e[5];
    for (int k = 1; k < 5; k++)
      m = fmaxf (m, a[k * cm + c]);
    for (int k = 0; k < 5; k++)
      sum += (e[k] = expf (a[k * cm + c] - m));
    for (int k = 0; k < 5; k++)
      a_out[k * cm + c] = e[k] / sum;
  }
}

template <typename T>
__global__ void
fold_kernel (HfamCudaSkWeights w, const T *pooled, const float *a, T *weight_out, int ld,
             T *bias_out)
{
  __shared__ float part[FOLD_THREADS / 32];
  const int cm = w.cm, o = blockIdx.x;
  const float *wp = w.project_w + (size_t) o * 5 * cm;
  T *row = weight_out + (size_t) o * ld;
  float acc = 0.0f;

  for (int i = threadIdx.x; i < 4 * cm; i += blockDim.x)
    hfam_st (row + i, wp[i] * a[i]);
  for (int c = threadIdx.x; c < cm; c += blockDim.x)
    acc += wp[4 * cm + c] * a[4 * cm + c] * hfam_ld (pooled + c);
  for (int s = 16; s > 0; s /= 2)
    acc += __shfl_down_sync (0xffffffffu, acc, s);
  if (threadIdx.x % 32 == 0)
    part[threadIdx.x / 32] = acc;
  __syncthreads ();
  if (threadIdx.x == 0) {
    float sum = w.project_b[o];
    for (int k = 0; k < FOLD_THREADS / 32; k++)
      sum += part[k];
    hfam_st (bias_out + o, sum);
  }
}

template <typename T>
cudaError_t
fold (const HfamCudaSkWeights *w, const void *gap, const void *pooled, float *scratch,
      void *weight_out, int ld, void *bias_out, cudaStream_t stream)
{
  const size_t smem = sizeof (float) * ((size_t) w->cm + w->d + 5 * (size_t) w->cm);
  attention_kernel<T><<<1, ATT_THREADS, smem, stream>>> (*w, (const T *) gap, (const T *) pooled,
                                                        scratch);
  HFAM_CUDA_LAUNCH_CHECK ();
  fold_kernel<T><<<w->cm, FOLD_THREADS, 0, stream>>> (*w, (const T *) pooled, scratch,
                                                     (T *) weight_out, ld, (T *) bias_out);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}

} // namespace

extern "C" cudaError_t
hfam_cuda_sk_fold (const HfamCudaSkWeights *w, const void *gap, const void *pooled,
                   HfamCudaDtype dtype, float *scratch, void *weight_out, int ld,
                   void *bias_out, cudaStream_t stream)
{
  HFAM_CUDA_REQUIRE (w && gap && pooled && scratch && weight_out && bias_out);
  HFAM_CUDA_REQUIRE (ld >= 4 * w->cm);
  HFAM_CUDA_REQUIRE (w->cm >= 1 && w->d >= 1 && w->squeeze_w && w->squeeze_b && w->select_w
                     && w->select_b && w->project_w && w->project_b);
  /* the attention block keeps s, z and the logits in shared memory */
  HFAM_CUDA_REQUIRE (sizeof (float) * (6 * (size_t) w->cm + w->d) <= 48 * 1024);
  return HFAM_CUDA_DISPATCH (dtype, fold, w, gap, pooled, scratch, weight_out, ld, bias_out,
                             stream);
}
