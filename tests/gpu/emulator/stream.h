/* The CUDA emulator's streams, for the libraries it emulates beside the runtime (cudnn.cc,
 * cublaslt.cc): work queued on a stream runs when something waits for it, as a GPU's may run at
 * any time after it is queued, so that a read that no synchronisation orders after the work sees
 * the old data here too (README.md here). */
#ifndef HFAM_CUDA_EMULATOR_STREAM_H
#define HFAM_CUDA_EMULATOR_STREAM_H

#include "cuda.h"
#include "cuda_runtime_api.h"

#include <functional>
#include <mutex>

namespace hfam_emu {

/* Every call of the emulated APIs holds this lock: the CUDA APIs may be called from any thread,
 * and the emulator's state is one. */
std::recursive_mutex &api_lock ();

/* Queues `work` on `stream` behind what is queued there (the legacy default stream's runs at
 * once, after the work of every blocking stream); while the stream is being captured, `work`
 * goes into the graph instead. When it runs, it moves its stream's clock on by `cost_ms`.
 * cudaErrorInvalidResourceHandle for a stream that is not one, an error of the capture for a
 * stream that may not be used in it. */
cudaError_t enqueue (cudaStream_t stream, double cost_ms, std::function<void ()> work);

/* What ops cost on their stream's clock, in milliseconds (README.md, "Time"): a launch of
 * `threads` threads; a copy or fill of `bytes`; a product of `macs` multiply-adds into
 * `outputs` values, where fewer outputs than the device has threads leave it part idle. */
double launch_cost (double threads);
double copy_cost (double bytes);
double product_cost (double macs, double outputs, bool half);

/* Whether [p, p + size) lies within one allocation of cudaMalloc. */
bool on_device (const void *p, size_t size);

/* Sets the error that cudaGetLastError returns next; returns `error`. */
cudaError_t set_error (cudaError_t error);

/* The calling thread's context (contexts.cc): the device's primary one where it has none, as
 * the runtime binds it; cudaSetDevice makes the primary one current. */
CUcontext current_context ();
void bind_primary_context ();
/* Runs the queued work of every stream of `context` (host.cc). */
void drain_context (CUcontext context);

} // namespace hfam_emu

#endif
