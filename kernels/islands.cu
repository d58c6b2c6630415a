/* Islands of the matte dropped (islands.cuh). */
#include "islands.cuh"

namespace {

/* The root of i's region, halving the path on the way (each node passed points at its
 * grandparent): without it, threads that run in an unlucky order build chains as long as a
 * region, and every walk along them is as long (the CUDA emulator, running the threads last
 * first, took minutes on a 1080p matte). A node written here is not a root and stays none, and
 * its grandparent is in its own tree, so a concurrent union loses nothing; roots only ever
 * move to smaller indices (atomicMin), so the walk ends. */
__device__ int
find_root (int *label, int i)
{
  int next;
  while ((next = label[i]) != i) {
    const int up = label[next];
    if (up != next)
      label[i] = up;
    i = up;
  }
  return i;
}

/* The regions of a and b one: the larger root is pointed at the smaller one, unless another
 * thread moved it first, then again from where it went. */
__device__ void
unite (int *label, int a, int b)
{
  for (;;) {
    a = find_root (label, a);
    b = find_root (label, b);
    if (a == b)
      return;
    if (a > b) {
      const int t = a;
      a = b;
      b = t;
    }
    const int old = atomicMin (&label[b], a);
    if (old == b)
      return;
    b = old;
  }
}

__global__ void
init_labels (const float *matte, int *label, float *mass, int n, float floor)
{
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) {
    label[i] = matte[i] > floor ? i : -1;
    mass[i] = 0.0f;
  }
  if (i == 0)
    mass[n] = 0.0f;
}

__global__ void
merge (int *label, int w, int h)
{
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= w * h || label[i] < 0)
    return;
  const int x = i % w, y = i / w;
  if (x > 0 && label[i - 1] >= 0)
    unite (label, i, i - 1);
  if (y > 0)
    for (int dx = -1; dx <= 1; dx++)
      if (x + dx >= 0 && x + dx < w && label[i - w + dx] >= 0)
        unite (label, i, i - w + dx);
}

__global__ void
sum_masses (const float *matte, int *label, float *mass, int n)
{
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n || label[i] < 0)
    return;
  /* (no other thread writes label[i] now: the merge has finished) */
  const int root = find_root (label, i);
  atomicAdd (&mass[root], matte[i]);
}

__global__ void
find_largest (const int *label, float *mass, int n)
{
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  /* masses are >= 0, whose order their bits as ints keep */
  if (i < n && label[i] == i)
    atomicMax ((int *) &mass[n], __float_as_int (mass[i]));
}

__global__ void
drop (float *matte, int *label, const float *mass, int n, float share)
{
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n || label[i] < 0)
    return;
  if (mass[find_root (label, i)] < share * mass[n])
    matte[i] = 0.0f;
}

} // namespace

extern "C" cudaError_t
hfam_cuda_matte_drop_islands (float *matte, int w, int h, const HfamIslandParams *p,
                              void *scratch, cudaStream_t stream)
{
  HFAM_CUDA_REQUIRE (matte && scratch && w >= 1 && h >= 1 && (int64_t) w * h <= 0x7fffffff);
  HFAM_CUDA_REQUIRE (hfam_island_params_valid (p));
  const int n = w * h;
  int *label = (int *) scratch;
  float *mass = (float *) (label + n);
  const unsigned blocks = hfam_cuda_blocks (n, HFAM_CUDA_BLOCK);
  init_labels<<<blocks, HFAM_CUDA_BLOCK, 0, stream>>> (matte, label, mass, n, p->floor);
  HFAM_CUDA_LAUNCH_CHECK ();
  merge<<<blocks, HFAM_CUDA_BLOCK, 0, stream>>> (label, w, h);
  HFAM_CUDA_LAUNCH_CHECK ();
  sum_masses<<<blocks, HFAM_CUDA_BLOCK, 0, stream>>> (matte, label, mass, n);
  HFAM_CUDA_LAUNCH_CHECK ();
  find_largest<<<blocks, HFAM_CUDA_BLOCK, 0, stream>>> (label, mass, n);
  HFAM_CUDA_LAUNCH_CHECK ();
  drop<<<blocks, HFAM_CUDA_BLOCK, 0, stream>>> (matte, label, mass, n, p->share);
  HFAM_CUDA_LAUNCH_CHECK ();
  return cudaSuccess;
}
