/* The CUDA emulator's host side (README.md here): memory, streams, events, graphs, contexts and
 * the driver calls that the runtime hands out, as the runtime API and the driver API define
 * them, on host memory.
 *
 * Work queued on a stream (a launch, an asynchronous copy, a host function, cuDNN's and
 * cuBLASLt's calls) runs when something waits for it: a synchronisation, an event waited for,
 * a synchronous call on the legacy default stream (which waits for the blocking streams), a
 * free. So a host read of what no synchronisation has ordered after the work that writes it
 * sees the old data, as it may on a GPU. The legacy default stream's own work runs at once.
 *
 * Stream capture records each captured stream's work into the graph in the order it is queued
 * (an order that keeps every dependency), with the checks of the runtime: a capture joined by
 * an event, a stream left unjoined at the end, a synchronous or legacy-stream call during a
 * capture. Contexts are contexts.cc's. */
#include "emulator.h"
#include "stream.h"


#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct HfamEmuCapture;

struct HfamEmuStream {
  bool legacy;
  unsigned flags;
  CUcontext context;
  std::deque<std::function<void ()>> queue;
  unsigned long long queued, done; /* ops queued and run since creation */
  bool draining;
  HfamEmuCapture *capture;          /* the capture it takes part in, or null */
  unsigned long long captured;      /* its ops captured in that capture */
  double clock_ms;                  /* its clock, moved on by its ops as they run */
  unsigned long long costed;        /* the ops that moved it */
};

/* Where an event was last recorded: a point in a stream, or in a capture. */
struct EventState {
  unsigned flags;
  HfamEmuStream *stream; /* null: never recorded (a wait for it waits for nothing) */
  unsigned long long point;
  HfamEmuCapture *capture;
  double ms;
  bool timed; /* its record ran */
};

struct HfamEmuEvent {
  std::shared_ptr<EventState> state;
};

struct HfamEmuCapture {
  HfamEmuStream *origin;
  enum cudaStreamCaptureMode mode;
  std::vector<std::function<void ()>> ops;
  std::set<HfamEmuStream *> streams;
  /* for each stream: the most of its captured ops that the origin has waited for */
  std::map<HfamEmuStream *, unsigned long long> joined;
  bool invalidated;
};

struct HfamEmuGraph {
  std::vector<std::function<void ()>> ops;
};

struct HfamEmuGraphExec {
  std::vector<std::function<void ()>> ops;
};

namespace hfam_emu {
namespace {

cudaError_t last_error = cudaSuccess;

struct Allocation {
  size_t size;
  CUcontext context;
};

std::map<std::uintptr_t, Allocation> allocations;     /* cudaMalloc: base -> */
std::map<std::uintptr_t, size_t> host_allocations;    /* cudaHostAlloc: base -> size */
std::set<cudaStream_t> streams;
std::set<cudaEvent_t> events;
std::set<cudaGraph_t> graphs;
std::set<cudaGraphExec_t> graph_execs;
thread_local HfamEmuCapture *thread_capture; /* a capture this thread began */

/* The stream whose op is running (the API lock is held), whose clock that op moves on. */
HfamEmuStream *running;

/* Runs `work`, an op of `s`. */
void
run_op (HfamEmuStream *s, const std::function<void ()> &work)
{
  HfamEmuStream *const outer = running;
  running = s;
  work ();
  running = outer;
}

/* Each stream's clock (README.md, "Time"): each op, when it runs, moves its stream's clock on
 * by a cost worked out from its size, so that the backend's timed choices are the same at every
 * run, whatever other threads do; HFAM_CUDA_EMULATOR_SEED=N (N > 0) scales the cost of each op
 * by a factor of [1/16, 16) drawn from N and the op's number in its stream, for other choices,
 * as reproducible. */
void
advance_clock (double cost_ms)
{
  static const char *const seed_text = getenv ("HFAM_CUDA_EMULATOR_SEED");
  static const uint64_t seed = seed_text ? strtoull (seed_text, nullptr, 10) : 0;
  HfamEmuStream *const s = running;

  if (seed) {
    /* splitmix64 of the seed and the op's number */
    uint64_t z = seed * 0x9e3779b97f4a7c15ull + ++s->costed * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    cost_ms *= exp2 (8.0 * (double) (z >> 11) * 0x1.0p-53 - 4.0);
  }
  s->clock_ms += cost_ms;
}

/* (the costs of an H100's order of magnitude: 2 us to start an op, 1e11 threads, 1 TB and
 * 2.5e14 fp16 or 2.5e13 fp32 multiply-adds a second, 131072 threads to fill it) */
const double op_overhead_ms = 2e-3, device_threads = 131072;

/* The legacy default stream of each context: its work runs at once. */
HfamEmuStream *
legacy_stream ()
{
  static std::map<CUcontext, HfamEmuStream> legacy;
  HfamEmuStream &s = legacy[current_context ()];
  s.legacy = true;
  s.context = current_context ();
  return &s;
}

bool
is_legacy (cudaStream_t stream)
{
  return stream == nullptr || stream == cudaStreamLegacy;
}

/* The stream, or null where it is none of the current context's. */
HfamEmuStream *
resolve (cudaStream_t stream)
{
  if (is_legacy (stream))
    return legacy_stream ();
  if (!streams.count (stream) || stream->context != current_context ())
    return nullptr;
  return stream;
}

/* Runs `s`'s queued work up to its `point`-th op (a destroyed stream's has all run). */
void
drain (HfamEmuStream *s, unsigned long long point)
{
  if ((!s->legacy && !streams.count (s)) || s->done >= point)
    return;
  if (s->draining) {
    fprintf (stderr, "CUDA emulator: a stream's work waits for later work of its own\n");
    abort ();
  }
  s->draining = true;
  while (s->done < point && !s->queue.empty ()) {
    std::function<void ()> work = std::move (s->queue.front ());
    s->queue.pop_front ();
    run_op (s, work);
    s->done++;
  }
  s->draining = false;
}

void
drain_all (HfamEmuStream *s)
{
  drain (s, s->queued);
}

/* What a call on the legacy default stream waits for: every blocking stream of its context. */
void
drain_blocking (CUcontext context)
{
  for (cudaStream_t s : streams)
    if (s->context == context && !(s->flags & cudaStreamNonBlocking))
      drain_all (s);
}

void
drain_device ()
{
  for (cudaStream_t s : streams)
    drain_all (s);
}

/* A call that synchronises with the device or the legacy stream, made while this thread
 * captures: the runtime refuses it and invalidates the capture. */
bool
refused_in_capture ()
{
  if (!thread_capture)
    return false;
  thread_capture->invalidated = true;
  set_error (cudaErrorStreamCaptureUnsupported);
  return true;
}

void
leave_capture (HfamEmuCapture *c)
{
  for (HfamEmuStream *s : c->streams) {
    s->capture = nullptr;
    s->captured = 0;
  }
  if (thread_capture == c)
    thread_capture = nullptr;
  delete c;
}

bool
in_host_allocation (const void *p, size_t size)
{
  const std::uintptr_t a = (std::uintptr_t) p;
  auto it = host_allocations.upper_bound (a);
  if (it == host_allocations.begin ())
    return false;
  --it;
  return a + size >= a && a + size <= it->first + it->second;
}

/* What memory `p` is: where the copy's kind is cudaMemcpyDefault, the runtime looks. */
bool
copy_reaches_device (const void *p, size_t size, bool device)
{
  return device ? on_device (p, size) : !on_device (p, 0);
}

cudaError_t
check_copy (void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind)
{
  if (!dst || !src)
    return set_error (cudaErrorInvalidValue);
  if (kind < cudaMemcpyHostToHost || kind > cudaMemcpyDefault)
    return set_error (cudaErrorInvalidMemcpyDirection);
  const bool from_device = kind == cudaMemcpyDefault ? on_device (src, 0)
                           : kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  const bool to_device = kind == cudaMemcpyDefault ? on_device (dst, 0)
                         : kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  if (!copy_reaches_device (src, bytes, from_device)
      || !copy_reaches_device (dst, bytes, to_device)) {
    fprintf (stderr, "CUDA emulator: a copy of %zu bytes %p -> %p (kind %d) reaches outside "
             "device memory, or into it where the kind says host\n", bytes, src, dst,
             (int) kind);
    return set_error (cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

} // namespace

double
launch_cost (double threads)
{
  return op_overhead_ms + threads * 1e-8;
}

double
copy_cost (double bytes)
{
  return op_overhead_ms + bytes * 1e-9;
}

double
product_cost (double macs, double outputs, bool half)
{
  return op_overhead_ms + macs * (half ? 4e-12 : 4e-11) / std::min (1.0, outputs / device_threads);
}

std::recursive_mutex &
api_lock ()
{
  static std::recursive_mutex lock;
  return lock;
}

cudaError_t
set_error (cudaError_t error)
{
  if (error != cudaSuccess)
    last_error = error;
  return error;
}

bool
on_device (const void *p, size_t size)
{
  const std::uintptr_t a = (std::uintptr_t) p;
  auto it = allocations.upper_bound (a);
  if (it == allocations.begin ())
    return false;
  --it;
  return a + size >= a && a + size <= it->first + it->second.size;
}

/* For kernel arguments: device memory of the context the kernel runs in. */
bool
is_device_pointer (const void *p)
{
  std::lock_guard<std::recursive_mutex> guard (api_lock ());
  const std::uintptr_t a = (std::uintptr_t) p;
  auto it = allocations.upper_bound (a);
  if (it == allocations.begin ())
    return false;
  --it;
  return a <= it->first + it->second.size && it->second.context == current_context ();
}

void
drain_context (CUcontext context)
{
  for (cudaStream_t s : streams)
    if (s->context == context)
      drain_all (s);
}

cudaError_t
enqueue (cudaStream_t stream, double cost_ms, std::function<void ()> op)
{
  std::function<void ()> work = [op = std::move (op), cost_ms] {
    op ();
    advance_clock (cost_ms);
  };
  std::lock_guard<std::recursive_mutex> guard (api_lock ());
  HfamEmuStream *s = resolve (stream);
  if (!s)
    return set_error (cudaErrorInvalidResourceHandle);
  if (s->capture) {
    if (s->capture->invalidated)
      return set_error (cudaErrorStreamCaptureInvalidated);
    s->capture->ops.push_back (std::move (work));
    s->captured++;
    return cudaSuccess;
  }
  if (is_legacy (stream)) {
    /* (in a capture of this thread or a global one, the legacy stream is off limits) */
    if (thread_capture) {
      thread_capture->invalidated = true;
      return set_error (cudaErrorStreamCaptureImplicit);
    }
    drain_blocking (s->context);
    run_op (s, work);
    return cudaSuccess;
  }
  s->queue.push_back (std::move (work));
  s->queued++;
  return cudaSuccess;
}

void
queue_launch (cudaStream_t stream, double threads, std::function<void ()> work)
{
  enqueue (stream, launch_cost (threads), std::move (work));
}

} // namespace hfam_emu

using namespace hfam_emu;

#define LOCKED std::lock_guard<std::recursive_mutex> guard (api_lock ())

extern "C" {

cudaError_t
cudaGetDeviceCount (int *count)
{
  if (!count)
    return set_error (cudaErrorInvalidValue);
  *count = 1;
  return cudaSuccess;
}

cudaError_t
cudaGetDeviceProperties (struct cudaDeviceProp *prop, int device)
{
  if (!prop)
    return set_error (cudaErrorInvalidValue);
  if (device != 0)
    return set_error (cudaErrorInvalidDevice);
  *prop = {};
  snprintf (prop->name, sizeof prop->name, "CUDA emulator on the CPU (tests/gpu/emulator)");
  prop->major = 9;
  prop->minor = 0;
  return cudaSuccess;
}

cudaError_t
cudaSetDevice (int device)
{
  LOCKED;
  if (device != 0)
    return set_error (cudaErrorInvalidDevice);
  bind_primary_context ();
  return cudaSuccess;
}

cudaError_t
cudaMemGetInfo (size_t *free_bytes, size_t *total_bytes)
{
  LOCKED;
  size_t used = 0;
  if (!free_bytes || !total_bytes)
    return set_error (cudaErrorInvalidValue);
  for (const auto &a : allocations)
    used += a.second.size;
  /* an 80 GB device, as the H100 the GPU checks run on */
  *total_bytes = (size_t) 80 << 30;
  *free_bytes = *total_bytes - std::min (used, *total_bytes);
  return cudaSuccess;
}

cudaError_t
cudaGetDevice (int *device)
{
  if (!device)
    return set_error (cudaErrorInvalidValue);
  *device = 0;
  return cudaSuccess;
}

cudaError_t
cudaDeviceSynchronize (void)
{
  LOCKED;
  if (refused_in_capture ())
    return cudaErrorStreamCaptureUnsupported;
  drain_device ();
  return cudaSuccess;
}

cudaError_t
cudaGetLastError (void)
{
  LOCKED;
  const cudaError_t error = last_error;
  last_error = cudaSuccess;
  return error;
}

const char *
cudaGetErrorString (cudaError_t error)
{
  switch (error) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorStreamCaptureUnsupported: return "not allowed while a stream is captured";
    case cudaErrorStreamCaptureInvalidated: return "the capture failed earlier";
    case cudaErrorStreamCaptureMerge: return "two captures would merge";
    case cudaErrorStreamCaptureUnmatched: return "the capture did not begin on this stream";
    case cudaErrorStreamCaptureUnjoined: return "a stream of the capture has not joined back";
    case cudaErrorStreamCaptureImplicit: return "the legacy stream during a capture";
    case cudaErrorStreamCaptureWrongThread: return "the capture belongs to another thread";
  }
  return "unknown error";
}

cudaError_t
cudaMalloc (void **ptr, size_t size)
{
  LOCKED;
  void *p = nullptr;
  if (!ptr)
    return set_error (cudaErrorInvalidValue);
  if (refused_in_capture ())
    return cudaErrorStreamCaptureUnsupported;
  /* exactly `size` bytes (at least one), so that a sanitizer sees a kernel read past the end;
   * aligned as cudaMalloc aligns */
  if (posix_memalign (&p, 256, size ? size : 1) != 0)
    return set_error (cudaErrorMemoryAllocation);
  /* what a GPU's fresh memory holds is left over: 0xff bytes (NaN, -1) show a read of it */
  memset (p, 0xff, size);
  allocations[(std::uintptr_t) p] = { size, current_context () };
  *ptr = p;
  return cudaSuccess;
}

cudaError_t
cudaFree (void *ptr)
{
  LOCKED;
  if (!ptr)
    return cudaSuccess;
  auto it = allocations.find ((std::uintptr_t) ptr);
  if (it == allocations.end ())
    return set_error (cudaErrorInvalidDevicePointer);
  /* cudaFree waits for the device: queued work may still use the memory */
  drain_device ();
  allocations.erase (it);
  free (ptr);
  return cudaSuccess;
}

cudaError_t
cudaHostAlloc (void **ptr, size_t size, unsigned int flags)
{
  LOCKED;
  void *p = nullptr;
  if (!ptr || flags != cudaHostAllocDefault)
    return set_error (cudaErrorInvalidValue);
  if (posix_memalign (&p, 4096, size ? size : 1) != 0)
    return set_error (cudaErrorMemoryAllocation);
  host_allocations[(std::uintptr_t) p] = size;
  *ptr = p;
  return cudaSuccess;
}

cudaError_t
cudaFreeHost (void *ptr)
{
  LOCKED;
  if (!ptr)
    return cudaSuccess;
  auto it = host_allocations.find ((std::uintptr_t) ptr);
  if (it == host_allocations.end ())
    return set_error (cudaErrorInvalidValue);
  drain_device ();
  host_allocations.erase (it);
  free (ptr);
  return cudaSuccess;
}

cudaError_t
cudaPointerGetAttributes (struct cudaPointerAttributes *attributes, const void *ptr)
{
  LOCKED;
  if (!attributes)
    return set_error (cudaErrorInvalidValue);
  *attributes = {};
  attributes->device = 0;
  if (on_device (ptr, 0)) {
    attributes->type = cudaMemoryTypeDevice;
    attributes->devicePointer = (void *) ptr;
  } else if (in_host_allocation (ptr, 0)) {
    attributes->type = cudaMemoryTypeHost;
    attributes->hostPointer = (void *) ptr;
    attributes->devicePointer = (void *) ptr;
  } else {
    attributes->type = cudaMemoryTypeUnregistered;
    attributes->device = -2;
  }
  return cudaSuccess;
}

cudaError_t
cudaMemcpyAsync (void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind,
                 cudaStream_t stream)
{
  LOCKED;
  if (bytes == 0)
    return cudaSuccess;
  cudaError_t err = check_copy (dst, src, bytes, kind);
  if (err != cudaSuccess)
    return err;
  if (!resolve (stream))
    return set_error (cudaErrorInvalidResourceHandle);
  /* Pageable host memory: the runtime has read the source before the call returns, and
   * writes the destination before it returns; pinned memory (cudaHostAlloc) and device
   * memory are read and written when the copy runs. */
  const bool host_source = !on_device (src, 0) && !in_host_allocation (src, bytes);
  const bool host_destination = !on_device (dst, 0) && !in_host_allocation (dst, bytes);
  if (host_source) {
    auto copy = std::make_shared<std::vector<unsigned char>> ((const unsigned char *) src,
                                                               (const unsigned char *) src + bytes);
    return enqueue (stream, copy_cost (bytes),
                    [dst, copy] { memcpy (dst, copy->data (), copy->size ()); });
  }
  err = enqueue (stream, copy_cost (bytes), [dst, src, bytes] { memmove (dst, src, bytes); });
  if (err == cudaSuccess && host_destination && !is_legacy (stream))
    drain_all (resolve (stream));
  return err;
}

cudaError_t
cudaMemcpy (void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind)
{
  LOCKED;
  if (refused_in_capture ())
    return cudaErrorStreamCaptureUnsupported;
  return cudaMemcpyAsync (dst, src, bytes, kind, nullptr);
}

cudaError_t
cudaMemcpy2D (void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
              size_t height, enum cudaMemcpyKind kind)
{
  LOCKED;
  if (width > dpitch || width > spitch)
    return set_error (cudaErrorInvalidValue);
  if (width == 0 || height == 0)
    return cudaSuccess;
  for (size_t row = 0; row < height; row++) {
    const cudaError_t err = cudaMemcpy ((char *) dst + row * dpitch,
                                        (const char *) src + row * spitch, width, kind);
    if (err != cudaSuccess)
      return err;
  }
  return cudaSuccess;
}

cudaError_t
cudaMemsetAsync (void *ptr, int value, size_t bytes, cudaStream_t stream)
{
  LOCKED;
  if (bytes == 0)
    return cudaSuccess;
  if (!on_device (ptr, bytes))
    return set_error (cudaErrorInvalidValue);
  return enqueue (stream, copy_cost (bytes), [ptr, value, bytes] { memset (ptr, value, bytes); });
}

cudaError_t
cudaMemset (void *ptr, int value, size_t bytes)
{
  LOCKED;
  if (refused_in_capture ())
    return cudaErrorStreamCaptureUnsupported;
  return cudaMemsetAsync (ptr, value, bytes, nullptr);
}

cudaError_t
cudaStreamCreateWithFlags (cudaStream_t *stream, unsigned int flags)
{
  LOCKED;
  if (!stream || (flags & ~cudaStreamNonBlocking))
    return set_error (cudaErrorInvalidValue);
  *stream = new HfamEmuStream ();
  (*stream)->flags = flags;
  (*stream)->context = current_context ();
  streams.insert (*stream);
  return cudaSuccess;
}

cudaError_t
cudaStreamDestroy (cudaStream_t stream)
{
  LOCKED;
  if (is_legacy (stream) || !streams.count (stream))
    return set_error (cudaErrorInvalidResourceHandle);
  if (stream->capture)
    return set_error (cudaErrorStreamCaptureUnsupported);
  /* its queued work still runs */
  drain_all (stream);
  streams.erase (stream);
  delete stream;
  return cudaSuccess;
}

cudaError_t
cudaStreamSynchronize (cudaStream_t stream)
{
  LOCKED;
  HfamEmuStream *s = resolve (stream);
  if (!s)
    return set_error (cudaErrorInvalidResourceHandle);
  if (s->capture || refused_in_capture ()) {
    if (s->capture)
      s->capture->invalidated = true;
    return set_error (cudaErrorStreamCaptureUnsupported);
  }
  if (is_legacy (stream))
    drain_blocking (s->context);
  else
    drain_all (s);
  return cudaSuccess;
}

cudaError_t
cudaLaunchHostFunc (cudaStream_t stream, cudaHostFn_t fn, void *user_data)
{
  LOCKED;
  if (!fn)
    return set_error (cudaErrorInvalidValue);
  return enqueue (stream, op_overhead_ms, [fn, user_data] { fn (user_data); });
}

cudaError_t
cudaEventCreateWithFlags (cudaEvent_t *event, unsigned int flags)
{
  LOCKED;
  if (!event || (flags & ~(unsigned) cudaEventDisableTiming))
    return set_error (cudaErrorInvalidValue);
  *event = new HfamEmuEvent ();
  (*event)->state = std::make_shared<EventState> ();
  (*event)->state->flags = flags;
  events.insert (*event);
  return cudaSuccess;
}

cudaError_t
cudaEventCreate (cudaEvent_t *event)
{
  return cudaEventCreateWithFlags (event, 0);
}

cudaError_t
cudaEventDestroy (cudaEvent_t event)
{
  LOCKED;
  if (!event || !events.erase (event))
    return set_error (cudaErrorInvalidResourceHandle);
  /* (a record still queued keeps its state) */
  delete event;
  return cudaSuccess;
}

cudaError_t
cudaEventRecord (cudaEvent_t event, cudaStream_t stream)
{
  LOCKED;
  HfamEmuStream *s = resolve (stream);
  if (!event || !events.count (event) || !s)
    return set_error (cudaErrorInvalidResourceHandle);
  EventState &e = *event->state;
  if (s->capture) {
    /* in a capture an event only marks a point for other streams to join at */
    e.stream = s;
    e.capture = s->capture;
    e.point = s->captured;
    return cudaSuccess;
  }
  std::shared_ptr<EventState> state = event->state;
  e.capture = nullptr;
  e.stream = s;
  e.timed = false;
  const cudaError_t err = enqueue (stream, 0.0, [state] {
    state->ms = running->clock_ms;
    state->timed = true;
  });
  /* the point is the record's own op: it has run when the stream's done count reaches it */
  e.point = is_legacy (stream) ? 0 : s->queued;
  return err;
}

/* Runs what `event` waits for; false where it is not complete (a capture's). */
static bool
complete (EventState &e)
{
  if (!e.stream)
    return true;
  if (e.capture)
    return false;
  drain (e.stream, e.point);
  return true;
}

cudaError_t
cudaEventSynchronize (cudaEvent_t event)
{
  LOCKED;
  if (!event || !events.count (event))
    return set_error (cudaErrorInvalidResourceHandle);
  if (refused_in_capture ())
    return cudaErrorStreamCaptureUnsupported;
  complete (*event->state);
  return cudaSuccess;
}

cudaError_t
cudaEventQuery (cudaEvent_t event)
{
  LOCKED;
  if (!event || !events.count (event))
    return set_error (cudaErrorInvalidResourceHandle);
  EventState &e = *event->state;
  if (refused_in_capture ())
    return cudaErrorStreamCaptureUnsupported;
  /* work not yet run is "not ready" once, and runs: the caller's wait for it is then short */
  if (e.stream && !e.capture && (e.stream->legacy || streams.count (e.stream))
      && e.stream->done < e.point) {
    complete (e);
    return cudaErrorNotReady;
  }
  return cudaSuccess;
}

cudaError_t
cudaEventElapsedTime (float *ms, cudaEvent_t start, cudaEvent_t end)
{
  LOCKED;
  if (!ms)
    return set_error (cudaErrorInvalidValue);
  if (!start || !end || !events.count (start) || !events.count (end)
      || (start->state->flags & cudaEventDisableTiming)
      || (end->state->flags & cudaEventDisableTiming))
    return set_error (cudaErrorInvalidResourceHandle);
  if (!start->state->timed || !end->state->timed)
    return set_error (cudaErrorNotReady);
  *ms = (float) (end->state->ms - start->state->ms);
  return cudaSuccess;
}

cudaError_t
cudaStreamWaitEvent (cudaStream_t stream, cudaEvent_t event, unsigned int flags)
{
  LOCKED;
  HfamEmuStream *s = resolve (stream);
  if (!s || !event || !events.count (event))
    return set_error (cudaErrorInvalidResourceHandle);
  if (flags != 0)
    return set_error (cudaErrorInvalidValue);
  EventState &e = *event->state;
  if (e.capture) {
    if (s->capture && s->capture != e.capture)
      return set_error (cudaErrorStreamCaptureMerge);
    if (is_legacy (stream)) {
      e.capture->invalidated = true;
      return set_error (cudaErrorStreamCaptureImplicit);
    }
    /* the stream joins the capture, or (the origin) takes in what the event's stream did */
    if (!s->capture) {
      s->capture = e.capture;
      s->captured = 0;
      e.capture->streams.insert (s);
    }
    if (s == e.capture->origin) {
      unsigned long long &seen = e.capture->joined[e.stream];
      seen = std::max (seen, e.point);
    }
    return cudaSuccess;
  }
  if (!e.stream || s->capture)
    /* a wait for work outside the capture: the graph does not depend on it */
    return cudaSuccess;
  HfamEmuStream *from = e.stream;
  const unsigned long long point = e.point;
  /* (and the clock goes on from the record's time, where the event was not recorded again) */
  std::shared_ptr<EventState> state = event->state;
  return enqueue (stream, 0.0, [from, point, state] {
    drain (from, point);
    if (state->timed && state->stream == from && state->point == point)
      running->clock_ms = std::max (running->clock_ms, state->ms);
  });
}

cudaError_t
cudaStreamBeginCapture (cudaStream_t stream, enum cudaStreamCaptureMode mode)
{
  LOCKED;
  HfamEmuStream *s = resolve (stream);
  if (!s || is_legacy (stream))
    return set_error (is_legacy (stream) ? cudaErrorStreamCaptureUnsupported
                                         : cudaErrorInvalidResourceHandle);
  if (s->capture)
    return set_error (cudaErrorIllegalState);
  if (mode != cudaStreamCaptureModeThreadLocal && mode != cudaStreamCaptureModeGlobal
      && mode != cudaStreamCaptureModeRelaxed)
    return set_error (cudaErrorInvalidValue);
  HfamEmuCapture *c = new HfamEmuCapture ();
  c->origin = s;
  c->mode = mode;
  c->streams.insert (s);
  s->capture = c;
  s->captured = 0;
  if (mode != cudaStreamCaptureModeRelaxed)
    thread_capture = c;
  return cudaSuccess;
}

cudaError_t
cudaStreamEndCapture (cudaStream_t stream, cudaGraph_t *graph)
{
  LOCKED;
  HfamEmuStream *s = resolve (stream);
  if (!s || !graph)
    return set_error (cudaErrorInvalidValue);
  *graph = nullptr;
  HfamEmuCapture *c = s->capture;
  if (!c)
    return set_error (cudaErrorIllegalState);
  if (c->origin != s) {
    c->invalidated = true;
    return set_error (cudaErrorStreamCaptureUnmatched);
  }
  if (c->invalidated) {
    leave_capture (c);
    return set_error (cudaErrorStreamCaptureInvalidated);
  }
  for (HfamEmuStream *joined : c->streams)
    if (joined != s && joined->captured > 0
        && (!c->joined.count (joined) || c->joined[joined] < joined->captured)) {
      leave_capture (c);
      return set_error (cudaErrorStreamCaptureUnjoined);
    }
  HfamEmuGraph *g = new HfamEmuGraph ();
  g->ops = std::move (c->ops);
  graphs.insert (g);
  leave_capture (c);
  *graph = g;
  return cudaSuccess;
}

cudaError_t
cudaStreamIsCapturing (cudaStream_t stream, enum cudaStreamCaptureStatus *status)
{
  LOCKED;
  HfamEmuStream *s = resolve (stream);
  if (!s || !status)
    return set_error (cudaErrorInvalidValue);
  *status = !s->capture ? cudaStreamCaptureStatusNone
            : s->capture->invalidated ? cudaStreamCaptureStatusInvalidated
                                      : cudaStreamCaptureStatusActive;
  return cudaSuccess;
}

cudaError_t
cudaGraphInstantiate (cudaGraphExec_t *exec, cudaGraph_t graph, unsigned long long flags)
{
  LOCKED;
  if (!exec || !graph || !graphs.count (graph) || flags != 0)
    return set_error (cudaErrorInvalidValue);
  *exec = new HfamEmuGraphExec ();
  (*exec)->ops = graph->ops;
  graph_execs.insert (*exec);
  return cudaSuccess;
}

cudaError_t
cudaGraphLaunch (cudaGraphExec_t exec, cudaStream_t stream)
{
  LOCKED;
  if (!exec || !graph_execs.count (exec))
    return set_error (cudaErrorInvalidResourceHandle);
  /* (a copy: the executable graph may be destroyed before its launch has run) */
  auto ops = std::make_shared<std::vector<std::function<void ()>>> (exec->ops);
  return enqueue (stream, op_overhead_ms, [ops] {
    for (auto &op : *ops)
      op ();
  });
}

cudaError_t
cudaGraphDestroy (cudaGraph_t graph)
{
  LOCKED;
  if (!graph || !graphs.erase (graph))
    return set_error (cudaErrorInvalidValue);
  delete graph;
  return cudaSuccess;
}

cudaError_t
cudaGraphExecDestroy (cudaGraphExec_t exec)
{
  LOCKED;
  if (!exec || !graph_execs.erase (exec))
    return set_error (cudaErrorInvalidValue);
  delete exec;
  return cudaSuccess;
}

} // extern "C"
