/* The device side of CUDA C++ for the CUDA emulator (README.md here), force-included before every
 * kernel file of kernels/ that translate.py has translated (each launch `k<<<grid, block, shared,
 * stream>>> (args)` becomes `hfam_emu::Launch<BARRIERS> (grid, block, shared, stream)
 * ([] (auto... p) { k (p...); }, args)`).
 *
 * A launch runs every thread of every block on the calling thread, block after block. Where the
 * kernel reaches barriers (__syncthreads, its votes, warp shuffles) a block's threads are fibers
 * that run until they all reach the barrier; elsewhere each thread simply runs to its end.
 * Shared memory is one copy, filled with 0xff bytes at each block's start (one block at a time
 * uses it); atomics are plain reads and writes. What this cannot show: races, the order of
 * atomics, the GPU's memory model and its rounding of fused multiply-adds and fast maths. */
#ifndef HFAM_CUDA_EMULATOR_H
#define HFAM_CUDA_EMULATOR_H

#include <climits>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cuda_runtime_api.h"
#include "cuda_fp16.h"

#define __CUDACC__ 1
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline

struct dim3 {
  unsigned x, y, z;
  constexpr dim3 (unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x (x_), y (y_), z (z_) {}
};

struct uchar4 {
  unsigned char x, y, z, w;
};

namespace hfam_emu {

/* Where the running thread is. */
const dim3 &thread_index ();
const dim3 &block_index ();
const dim3 &block_dim ();
const dim3 &grid_dim ();

/* Barriers and votes of the block and of the running thread's warp (fibers only). */
void sync_block ();
int sync_block_or (int predicate);
/* Every lane of the warp offers `value`; returns lane `source`'s, or its own where `source` is
 * outside the warp or the block. */
std::uint64_t warp_exchange (std::uint64_t value, int source);
int lane ();
/* The launch's dynamic shared memory (translate.py's rewrite of `extern __shared__`). */
void *dynamic_shared ();
/* Counts the blocks run, so that shared () knows a new one. */
unsigned long block_serial ();

/* A `__shared__ T` of a kernel (translate.py's rewrite; Line tells two of one type apart): the
 * first thread of each block that reaches it fills it with 0xff bytes. */
template <typename T, int Line>
T &
shared ()
{
  static T storage;
  static unsigned long filled_for;
  if (filled_for != block_serial ()) {
    std::memset (&storage, 0xff, sizeof storage);
    filled_for = block_serial ();
  }
  return storage;
}

/* Whether the launch's configuration is one the driver takes; sets the error that
 * cudaGetLastError returns where not. */
bool check_launch (dim3 grid, dim3 block, size_t shared);
/* Runs `body (closure)` once per thread of the launch. */
void launch (dim3 grid, dim3 block, size_t shared, bool barriers, void (*body) (void *),
             void *closure);
/* Queues `work`, a launch of `threads` threads, on `stream` (host.cc), setting the error where
 * it cannot be. */
void queue_launch (cudaStream_t stream, double threads, std::function<void ()> work);
/* Whether `p` lies in (or at the end of) memory that cudaMalloc returned in the current
 * context. */
bool is_device_pointer (const void *p);
/* Reports a kernel argument that the device could not read, and fails the launch. */
void report_host_pointer (int argument, const void *p);

template <typename T>
bool
check_argument (int index, const T &value)
{
  if constexpr (std::is_pointer_v<T>) {
    if (value != nullptr && !is_device_pointer ((const void *) value)) {
      report_host_pointer (index, (const void *) value);
      return false;
    }
  }
  return true;
}

template <bool Barriers>
struct Launch {
  dim3 grid, block;
  size_t shared;
  cudaStream_t stream;

  Launch (dim3 grid_, dim3 block_, size_t shared_ = 0, cudaStream_t stream_ = nullptr)
    : grid (grid_), block (block_), shared (shared_), stream (stream_)
  {
  }

  /* The arguments are copied once, as a launch copies them, and each thread gets its own
   * copy of those (`call` takes them by value). The launch runs when its stream's work does. */
  template <typename Call, typename... Args>
  void operator() (Call call, Args &&...args) const
  {
    auto params
      = std::make_shared<std::tuple<std::decay_t<Args>...>> (std::forward<Args> (args)...);
    bool ok = std::apply ([] (const auto &...p) {
      int index = 0;
      return (check_argument (index++, p) && ...);
    }, *params);
    if (!ok || !check_launch (grid, block, shared))
      return;
    const dim3 g = grid, b = block;
    const size_t bytes = shared;
    const double threads = (double) g.x * g.y * g.z * b.x * b.y * b.z;
    queue_launch (stream, threads, [call, params, g, b, bytes] {
      auto run = [&] { std::apply (call, *params); };
      launch (g, b, bytes, Barriers,
              [] (void *closure) { (*static_cast<decltype (run) *> (closure)) (); }, &run);
    });
  }
};

template <typename T>
T
shuffle (T value, int source)
{
  static_assert (sizeof (T) <= sizeof (std::uint64_t), "a shuffle moves at most 64 bits");
  std::uint64_t bits = 0;
  std::memcpy (&bits, &value, sizeof value);
  bits = warp_exchange (bits, source);
  std::memcpy (&value, &bits, sizeof value);
  return value;
}

} // namespace hfam_emu

#define threadIdx (hfam_emu::thread_index ())
#define blockIdx (hfam_emu::block_index ())
#define blockDim (hfam_emu::block_dim ())
#define gridDim (hfam_emu::grid_dim ())
constexpr int warpSize = 32;

inline void
__syncthreads ()
{
  hfam_emu::sync_block ();
}

inline int
__syncthreads_or (int predicate)
{
  return hfam_emu::sync_block_or (predicate);
}

template <typename T>
T
__shfl_xor_sync (unsigned, T value, int lane_mask)
{
  return hfam_emu::shuffle (value, hfam_emu::lane () ^ lane_mask);
}

template <typename T>
T
__shfl_down_sync (unsigned, T value, unsigned delta)
{
  return hfam_emu::shuffle (value, hfam_emu::lane () + (int) delta);
}

/* Rounded operations: separate IEEE operations (the emulator is built without contraction). */
inline float __fadd_rn (float a, float b) { return a + b; }
inline float __fsub_rn (float a, float b) { return a - b; }
inline float __fmul_rn (float a, float b) { return a * b; }

inline int
__float_as_int (float f)
{
  int i;
  std::memcpy (&i, &f, sizeof i);
  return i;
}

/* The device's min and max overloads. */
inline int min (int a, int b) { return a < b ? a : b; }
inline int max (int a, int b) { return a > b ? a : b; }
inline unsigned min (unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max (unsigned a, unsigned b) { return a > b ? a : b; }
inline float min (float a, float b) { return std::fmin (a, b); }
inline float max (float a, float b) { return std::fmax (a, b); }

/* Atomics: threads run one at a time, so a plain read-modify-write is atomic. */
inline int
atomicMin (int *p, int v)
{
  const int old = *p;
  *p = old < v ? old : v;
  return old;
}

inline int
atomicMax (int *p, int v)
{
  const int old = *p;
  *p = old > v ? old : v;
  return old;
}

template <typename T>
T
atomicAdd (T *p, T v)
{
  const T old = *p;
  *p = old + v;
  return old;
}

#endif
