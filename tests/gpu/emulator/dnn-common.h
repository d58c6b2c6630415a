/* What the CUDA emulator's cuDNN (cudnn.cc) and cuBLASLt (cublaslt.cc) share (README.md here):
 * their refusals' messages, their handles' and descriptors' making, the checks of device
 * memory, fp16 loads and stores, and the queueing of their work on a stream. */
#ifndef HFAM_CUDA_EMULATOR_DNN_COMMON_H
#define HFAM_CUDA_EMULATOR_DNN_COMMON_H

#include "cuda_fp16.h"
#include "stream.h"

#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <utility>

namespace hfam_emu_dnn {

using ApiGuard = std::lock_guard<std::recursive_mutex>;

inline __attribute__ ((format (printf, 1, 2))) void
complain (const char *format, ...)
{
  va_list args;
  va_start (args, format);
  fputs ("CUDA emulator: ", stderr);
  vfprintf (stderr, format, args);
  fputc ('\n', stderr);
  va_end (args);
}

/* Every descriptor's and handle's creation and destruction (Status {}: success in both
 * libraries). */
template <typename T, typename Status>
Status
create (T **out, Status refusal)
{
  ApiGuard guard (hfam_emu::api_lock ());
  if (!out)
    return refusal;
  *out = new T {};
  return Status {};
}

template <typename Status, typename T>
Status
destroy (T *object)
{
  ApiGuard guard (hfam_emu::api_lock ());
  delete object;
  return Status {};
}

template <typename Status, size_t N>
inline const char *
name_of (Status status, const std::pair<Status, const char *> (&names)[N])
{
  for (const auto &name : names)
    if (name.first == status)
      return name.second;
  return "an unknown status";
}

#define NAMED(status) { status, #status }

/* Whether [p, p + bytes) is device memory, complaining where not. */
inline bool
device_memory (const char *api, const char *what, const void *p, size_t bytes)
{
  if (p && hfam_emu::on_device (p, bytes))
    return true;
  complain ("%s: %s (%p, %zu bytes) is not device memory from cudaMalloc", api, what, p, bytes);
  return false;
}

inline bool
overlap (const void *a, size_t a_bytes, const void *b, size_t b_bytes)
{
  const uintptr_t pa = (uintptr_t) a, pb = (uintptr_t) b;
  return pa < pb + b_bytes && pb < pa + a_bytes;
}

inline float
load (const void *p, size_t i, bool half)
{
  return half ? __half2float (static_cast<const __half *> (p)[i])
              : static_cast<const float *> (p)[i];
}

/* v rounded once to a half: rounded to float towards odd first, which keeps what the second
 * rounding needs to know (a float has more than twice a half's digits) */
inline __half
half_of (double v)
{
  float f = (float) v;
  if (std::isfinite (f) && (double) f != v) {
    uint32_t bits;
    if (std::fabs ((double) f) > std::fabs (v))
      f = std::nextafter (f, 0.0f);
    std::memcpy (&bits, &f, sizeof bits);
    bits |= 1u;
    std::memcpy (&f, &bits, sizeof f);
  }
  return __float2half_rn (f);
}

inline void
store (void *p, size_t i, bool half, double v)
{
  if (half)
    static_cast<__half *> (p)[i] = half_of (v);
  else
    static_cast<float *> (p)[i] = (float) v;
}

/* The work of a call, queued on `stream` behind what is there, costing `cost_ms` on the
 * stream's clock: first the workspace that the algorithm uses is filled with 0xff bytes, as the
 * algorithm leaves it with values of its own. */
inline bool
queue (cudaStream_t stream, double cost_ms, void *workspace, size_t workspace_bytes,
       std::function<void (void)> work)
{
  return hfam_emu::enqueue (stream, cost_ms, [workspace, workspace_bytes, work] {
    if (workspace_bytes)
      std::memset (workspace, 0xff, workspace_bytes);
    work ();
  }) == cudaSuccess;
}

} // namespace hfam_emu_dnn

#endif
