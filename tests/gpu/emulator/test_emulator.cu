/* The CUDA emulator's own test (README.md here): what the kernel tests that run on it take for
 * granted. fp16 conversions against the compiler's _Float16 (every half, and floats across the
 * whole range); a block's barrier, vote and shared memory; a warp's shuffles; the order the
 * threads run in; the launch and copy checks a GPU's driver makes; streams that run their work
 * only when waited for, events between them, stream capture and its refusals, contexts, the
 * streams' clocks. Built as the kernels are (translate.py); run in both orders. */
#include "cudaTypedefs.h"

#include <stdio.h>
#include <stdlib.h>

namespace {

int n_failed;

void
check (bool ok, const char *what)
{
  printf ("%s %s\n", ok ? "ok  " : "FAIL", what);
  n_failed += !ok;
}

void
check_fp16 ()
{
#ifdef __FLT16_MAX__
  bool halves = true, floats = true;
  for (unsigned bits = 0; bits < 65536; bits++) {
    const __half h = { (std::uint16_t) bits };
    _Float16 reference;
    std::memcpy (&reference, &bits, sizeof reference);
    const float mine = __half2float (h), theirs = (float) reference;
    halves = halves && (std::memcmp (&mine, &theirs, sizeof mine) == 0
                        || (std::isnan (mine) && std::isnan (theirs)));
  }
  check (halves, "fp16: every half to float as _Float16 converts it");
  /* every 251st float pattern (all exponents, both signs, ties among them), and the ties next
   * to 65504 and the smallest subnormal */
  for (std::uint64_t bits = 0; bits <= 0xffffffffu; bits += 251) {
    float f;
    const std::uint32_t b = (std::uint32_t) bits;
    std::memcpy (&f, &b, sizeof f);
    const _Float16 reference = (_Float16) f;
    const __half mine = __float2half_rn (f);
    std::uint16_t theirs;
    std::memcpy (&theirs, &reference, sizeof theirs);
    floats = floats && (mine.bits == theirs || (std::isnan (f) && (mine.bits & 0x7c00) == 0x7c00
                                                 && (mine.bits & 0x3ff)));
  }
  for (float f : { 65504.0f, 65519.99f, 65520.0f, 0x1p-25f, 0x1.000002p-25f, 0x1.8p-24f,
                   0x1.ffcp-15f, 0x1.ffep-15f, 2049.0f, 2051.0f }) {
    const _Float16 reference = (_Float16) f;
    std::uint16_t theirs;
    std::memcpy (&theirs, &reference, sizeof theirs);
    floats = floats && __float2half_rn (f).bits == theirs;
  }
  check (floats, "fp16: floats to half, rounded to nearest even as _Float16 rounds them");
#else
  printf ("skip fp16: this compiler has no _Float16\n");
#endif
}

/* Each block reverses its slice through shared memory: right only if the barrier holds every
 * thread until all have written. */
__global__ void
reverse_kernel (const int *in, int *out)
{
  __shared__ int slice[128];
  const int base = blockIdx.x * blockDim.x;
  slice[threadIdx.x] = in[base + threadIdx.x];
  __syncthreads ();
  out[base + threadIdx.x] = slice[blockDim.x - 1 - threadIdx.x];
}

/* Sums of each warp by xor and by down shuffles, and whether any thread of the block is odd. */
__global__ void
warp_kernel (const int *in, int *xor_sums, int *down_sums, int *any_odd)
{
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  int a = in[i], b = in[i];
  for (int o = 16; o > 0; o >>= 1) {
    a += __shfl_xor_sync (0xffffffffu, a, o);
    b += __shfl_down_sync (0xffffffffu, b, o);
  }
  xor_sums[i] = a;
  if (threadIdx.x % 32 == 0)
    down_sums[i / 32] = b;
  const int odd = __syncthreads_or (in[i] % 2);
  if (threadIdx.x == 0)
    any_odd[blockIdx.x] = odd;
}

__global__ void
index_kernel (int *out)
{
  const int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
  out[y * gridDim.x * blockDim.x + x] = y * 1000 + x;
}

/* Each thread takes the next ticket: the order the threads ran in. */
__global__ void
ticket_kernel (int *next, int *tickets)
{
  tickets[blockIdx.x * blockDim.x + threadIdx.x] = atomicAdd (next, 1);
}

void
check_order ()
{
  const char *order = getenv ("HFAM_CUDA_EMULATOR_ORDER");
  const bool reverse = order && strcmp (order, "reverse") == 0;
  int tickets[12], *d, ok = 1;

  cudaMalloc ((void **) &d, sizeof (int) * 13);
  cudaMemset (d, 0, sizeof (int));
  ticket_kernel<<<3, 4>>> (d, d + 1);
  cudaMemcpy (tickets, d + 1, sizeof tickets, cudaMemcpyDeviceToHost);
  for (int i = 0; i < 12; i++)
    ok = ok && tickets[i] == (reverse ? 11 - i : i);
  check (ok, reverse ? "HFAM_CUDA_EMULATOR_ORDER=reverse: blocks and threads last first"
                     : "blocks and threads in launch order");
  cudaFree (d);
}

void
check_kernels ()
{
  constexpr int n = 512;
  int in[n], out[n], xor_sums[n], down_sums[n / 32], any_odd[n / 128], *d[5];
  bool ok = true;

  for (int i = 0; i < n; i++)
    in[i] = (i * 7919) % 1000 * 2 + (i == 300); /* one odd value, in the third block */
  for (int k = 0; k < 5; k++)
    cudaMalloc ((void **) &d[k], sizeof in);
  cudaMemcpy (d[0], in, sizeof in, cudaMemcpyHostToDevice);

  reverse_kernel<<<n / 128, 128>>> (d[0], d[1]);
  cudaMemcpy (out, d[1], sizeof out, cudaMemcpyDeviceToHost);
  for (int i = 0; i < n; i++)
    ok = ok && out[i] == in[i / 128 * 128 + 127 - i % 128];
  check (ok && cudaGetLastError () == cudaSuccess, "a barrier: blocks reversed in shared memory");

  warp_kernel<<<n / 128, 128>>> (d[0], d[2], d[3], d[4]);
  cudaMemcpy (xor_sums, d[2], sizeof xor_sums, cudaMemcpyDeviceToHost);
  cudaMemcpy (down_sums, d[3], sizeof down_sums, cudaMemcpyDeviceToHost);
  cudaMemcpy (any_odd, d[4], sizeof any_odd, cudaMemcpyDeviceToHost);
  ok = true;
  for (int w = 0; w < n / 32; w++) {
    int sum = 0;
    for (int l = 0; l < 32; l++)
      sum += in[32 * w + l];
    ok = ok && down_sums[w] == sum;
    for (int l = 0; l < 32; l++)
      ok = ok && xor_sums[32 * w + l] == sum;
  }
  check (ok, "warp shuffles: each warp's sum by xor (every lane) and down (lane 0)");
  check (any_odd[0] == 0 && any_odd[1] == 0 && any_odd[2] == 1 && any_odd[3] == 0,
         "__syncthreads_or: only the block with an odd value says so");

  /* 32 x 16 threads: n */
  index_kernel<<<dim3 (2, 2), dim3 (16, 8)>>> (d[1]);
  cudaMemcpy (out, d[1], sizeof out, cudaMemcpyDeviceToHost);
  ok = true;
  for (int y = 0; y < 16; y++)
    for (int x = 0; x < 32; x++)
      ok = ok && out[y * 32 + x] == y * 1000 + x;
  check (ok, "two-dimensional grid and blocks: every thread's index once");

  for (int k = 0; k < 5; k++)
    cudaFree (d[k]);
}

void
check_driver_checks ()
{
  int host[4] = { 0 }, *device;

  cudaMalloc ((void **) &device, sizeof host);
  reverse_kernel<<<1, 1025>>> (device, device);
  check (cudaGetLastError () == cudaErrorInvalidConfiguration && cudaGetLastError () == cudaSuccess,
         "a block of 1025 threads is refused, once");
  reverse_kernel<<<0, 128>>> (device, device);
  check (cudaGetLastError () == cudaErrorInvalidConfiguration, "an empty grid is refused");
  reverse_kernel<<<1, 4>>> (host, device);
  check (cudaGetLastError () == cudaErrorInvalidValue, "a host pointer argument is refused");
  check (cudaMemcpy (host, host, sizeof host, cudaMemcpyHostToDevice) == cudaErrorInvalidValue,
         "a copy to the device into host memory is refused");
  check (cudaMemcpy (host, device + 1, sizeof host, cudaMemcpyDeviceToHost)
             == cudaErrorInvalidValue,
         "a copy from past the end of an allocation is refused");
  check (cudaMemcpy (host, device, sizeof host, cudaMemcpyDeviceToHost) == cudaSuccess,
         "a copy within an allocation runs");
  check (cudaFree (host) == cudaErrorInvalidDevicePointer, "freeing host memory is refused");
  cudaGetLastError ();
  cudaFree (device);
}

__global__ void
fill_kernel (int *p, int value, int n)
{
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n)
    p[i] = value;
}

void
check_streams ()
{
  const int n = 64;
  int *device, *other, *pinned, pageable[64];
  cudaStream_t s1, s2, blocking;
  cudaEvent_t e1, e2;

  cudaMalloc ((void **) &device, n * sizeof (int));
  cudaMalloc ((void **) &other, n * sizeof (int));
  cudaHostAlloc ((void **) &pinned, n * sizeof (int), cudaHostAllocDefault);
  cudaMemset (device, 0, n * sizeof (int));
  cudaMemset (other, 0, n * sizeof (int));
  cudaStreamCreateWithFlags (&s1, cudaStreamNonBlocking);
  cudaStreamCreateWithFlags (&s2, cudaStreamNonBlocking);
  cudaStreamCreateWithFlags (&blocking, 0);
  cudaEventCreateWithFlags (&e1, cudaEventDisableTiming);
  cudaEventCreateWithFlags (&e2, cudaEventDisableTiming);

  pinned[0] = 0;
  fill_kernel<<<1, n, 0, s1>>> (device, 7, n);
  cudaMemcpyAsync (pinned, device, n * sizeof (int), cudaMemcpyDeviceToHost, s1);
  const bool before = pinned[0] == 0;
  cudaStreamSynchronize (s1);
  check (before && pinned[0] == 7 && pinned[n - 1] == 7,
         "a stream's work runs when it is waited for, not before");

  fill_kernel<<<1, n, 0, s1>>> (device, 8, n);
  cudaMemcpy (pageable, device, n * sizeof (int), cudaMemcpyDeviceToHost);
  const bool unordered = pageable[0] == 7;
  fill_kernel<<<1, n, 0, blocking>>> (other, 9, n);
  cudaMemcpy (pageable, other, n * sizeof (int), cudaMemcpyDeviceToHost);
  check (unordered && pageable[0] == 9,
         "cudaMemcpy waits for a blocking stream and not for a non-blocking one");
  cudaDeviceSynchronize ();

  fill_kernel<<<1, n, 0, s1>>> (device, 3, n);
  cudaEventRecord (e1, s1);
  cudaStreamWaitEvent (s2, e1, 0);
  cudaMemcpyAsync (other, device, n * sizeof (int), cudaMemcpyDeviceToDevice, s2);
  cudaMemcpyAsync (pinned, other, n * sizeof (int), cudaMemcpyDeviceToHost, s2);
  cudaStreamSynchronize (s2);
  check (pinned[0] == 3, "a stream that waits for an event runs after the work before it");

  for (int i = 0; i < n; i++)
    pageable[i] = 4;
  cudaMemcpyAsync (device, pageable, n * sizeof (int), cudaMemcpyHostToDevice, s1);
  pageable[0] = 5;
  cudaMemcpyAsync (pinned, device, n * sizeof (int), cudaMemcpyDeviceToHost, s1);
  cudaStreamSynchronize (s1);
  check (pinned[0] == 4, "a copy from pageable memory has read it when the call returns");

  /* a fork and a join in a capture: nothing runs until the graph does */
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  cudaStreamBeginCapture (s1, cudaStreamCaptureModeThreadLocal);
  fill_kernel<<<1, n, 0, s1>>> (device, 11, n);
  cudaEventRecord (e1, s1);
  cudaStreamWaitEvent (s2, e1, 0);
  fill_kernel<<<1, n, 0, s2>>> (other, 12, n);
  cudaEventRecord (e2, s2);
  cudaStreamWaitEvent (s1, e2, 0);
  const cudaError_t ended = cudaStreamEndCapture (s1, &graph);
  cudaMemcpy (pageable, device, n * sizeof (int), cudaMemcpyDeviceToHost);
  const bool not_yet = pageable[0] == 4;
  cudaGraphInstantiate (&exec, graph, 0);
  cudaGraphLaunch (exec, s1);
  cudaMemcpyAsync (pinned, device, n * sizeof (int), cudaMemcpyDeviceToHost, s1);
  cudaStreamSynchronize (s1);
  const int first = pinned[0];
  cudaMemcpy (pageable, other, n * sizeof (int), cudaMemcpyDeviceToHost);
  check (ended == cudaSuccess && not_yet && first == 11 && pageable[0] == 12,
         "a captured fork and join run when the graph runs, and only then");
  cudaGraphExecDestroy (exec);
  cudaGraphDestroy (graph);

  cudaStreamBeginCapture (s1, cudaStreamCaptureModeThreadLocal);
  cudaEventRecord (e1, s1);
  cudaStreamWaitEvent (s2, e1, 0);
  fill_kernel<<<1, n, 0, s2>>> (other, 13, n);
  check (cudaStreamEndCapture (s1, &graph) == cudaErrorStreamCaptureUnjoined && !graph,
         "a capture whose forked stream did not join is refused");
  cudaStreamBeginCapture (s1, cudaStreamCaptureModeThreadLocal);
  const cudaError_t in_capture = cudaMemcpy (pageable, device, sizeof (int),
                                             cudaMemcpyDeviceToHost);
  check (in_capture == cudaErrorStreamCaptureUnsupported
             && cudaStreamEndCapture (s1, &graph) == cudaErrorStreamCaptureInvalidated,
         "a synchronous copy in a capture is refused and ends it");
  cudaGetLastError ();

  /* a stream belongs to the context it was made in */
  PFN_cuCtxCreate_v3020 ctx_create;
  PFN_cuCtxPopCurrent_v4000 ctx_pop;
  PFN_cuCtxDestroy_v4000 ctx_destroy;
  cudaGetDriverEntryPointByVersion ("cuCtxCreate", (void **) &ctx_create, 3020, cudaEnableDefault,
                                    nullptr);
  cudaGetDriverEntryPointByVersion ("cuCtxPopCurrent", (void **) &ctx_pop, 4000,
                                    cudaEnableDefault, nullptr);
  cudaGetDriverEntryPointByVersion ("cuCtxDestroy", (void **) &ctx_destroy, 4000,
                                    cudaEnableDefault, nullptr);
  CUcontext own;
  cudaStream_t own_stream;
  ctx_create (&own, 0, 0);
  cudaStreamCreateWithFlags (&own_stream, cudaStreamNonBlocking);
  ctx_pop (nullptr);
  fill_kernel<<<1, n, 0, own_stream>>> (device, 1, n);
  check (cudaGetLastError () == cudaErrorInvalidResourceHandle,
         "a stream of another context is refused");
  cudaStreamDestroy (own_stream);
  cudaGetLastError ();
  ctx_destroy (own);

  cudaEventDestroy (e1);
  cudaEventDestroy (e2);
  cudaStreamDestroy (s1);
  cudaStreamDestroy (s2);
  cudaStreamDestroy (blocking);
  cudaFreeHost (pinned);
  cudaFree (device);
  cudaFree (other);
}

/* Milliseconds between two events around a launch of `blocks` blocks of 64 threads. */
float
time_fill (int *device, int blocks, cudaStream_t stream)
{
  cudaEvent_t start, stop;
  float ms = -1.0f;

  cudaEventCreate (&start);
  cudaEventCreate (&stop);
  cudaEventRecord (start, stream);
  fill_kernel<<<blocks, 64, 0, stream>>> (device, 1, blocks * 64);
  cudaEventRecord (stop, stream);
  cudaEventSynchronize (stop);
  cudaEventElapsedTime (&ms, start, stop);
  cudaEventDestroy (start);
  cudaEventDestroy (stop);
  return ms;
}

/* A stream's clock: an op's time is worked out from its size, the same at every run, so that
 * what the backend chooses by timing is too (but for HFAM_CUDA_EMULATOR_SEED's draws). */
void
check_clock ()
{
  const int blocks = 4096;
  int *device;
  cudaStream_t stream;

  cudaMalloc ((void **) &device, blocks * 64 * sizeof (int));
  cudaStreamCreateWithFlags (&stream, cudaStreamNonBlocking);
  const float small = time_fill (device, 1, stream), again = time_fill (device, 1, stream);
  const float large = time_fill (device, blocks, stream);
  const bool drawn = getenv ("HFAM_CUDA_EMULATOR_SEED") != nullptr;
  check (small > 0.0f && (drawn || small == again) && large > small,
         "a launch's time on its stream's clock grows with its threads and is the same each run");
  cudaStreamDestroy (stream);
  cudaFree (device);
}

} // namespace

int
main ()
{
  check_fp16 ();
  check_kernels ();
  check_order ();
  check_driver_checks ();
  check_streams ();
  check_clock ();
  printf ("%s\n", n_failed ? "FAILED" : "all passed");
  return n_failed ? 1 : 0;
}
