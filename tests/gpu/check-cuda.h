/* CHECK_CUDA for the GPU tests that report through GLib: a failed CUDA call ends the test
 * with its place, the call and CUDA's message (g_error). */
#ifndef HFAM_TESTS_GPU_CHECK_CUDA_H
#define HFAM_TESTS_GPU_CHECK_CUDA_H

#include <cuda_runtime_api.h>
#include <glib.h>

#define CHECK_CUDA(call)                                                           \
  do {                                                                             \
    const cudaError_t err_ = (call);                                               \
    if (err_ != cudaSuccess)                                                       \
      g_error ("%s:%d: %s: %s", __FILE__, __LINE__, #call, cudaGetErrorString (err_)); \
  } while (0)

#endif
