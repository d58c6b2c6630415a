/* The part of the CUDA runtime API that the launchers of kernels/ and the kernel tests of
 * tests/gpu/ call, for the CUDA emulator (README.md here): memory is host memory, every call
 * runs at once on the calling thread (there is one stream, the default one: NULL; events keep
 * the time), and a kernel launch runs its threads one after another on the CPU (emulator.h).
 *
 * Only what this project calls is here; a call of anything else fails to compile, which says
 * that the emulator needs it. C as well as C++. */
#ifndef HFAM_CUDA_EMULATOR_RUNTIME_API_H
#define HFAM_CUDA_EMULATOR_RUNTIME_API_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The values are CUDA's own, so that a message or a number means the same as on a GPU. */
typedef enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidDevicePointer = 17,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
} cudaError_t;

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

typedef struct HfamEmuStream *cudaStream_t;
typedef struct HfamEmuEvent *cudaEvent_t;

struct cudaDeviceProp {
  char name[256];
  int major, minor;
};

cudaError_t cudaGetDeviceCount (int *count);
cudaError_t cudaGetDeviceProperties (struct cudaDeviceProp *prop, int device);
cudaError_t cudaDeviceSynchronize (void);
cudaError_t cudaGetLastError (void);
const char *cudaGetErrorString (cudaError_t error);

cudaError_t cudaMalloc (void **ptr, size_t size);
cudaError_t cudaFree (void *ptr);
cudaError_t cudaMemcpy (void *dst, const void *src, size_t count, enum cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync (void *dst, const void *src, size_t count, enum cudaMemcpyKind kind,
                             cudaStream_t stream);
cudaError_t cudaMemset (void *ptr, int value, size_t count);

cudaError_t cudaEventCreate (cudaEvent_t *event);
cudaError_t cudaEventDestroy (cudaEvent_t event);
cudaError_t cudaEventRecord (cudaEvent_t event, cudaStream_t stream);
cudaError_t cudaEventSynchronize (cudaEvent_t event);
cudaError_t cudaEventElapsedTime (float *ms, cudaEvent_t start, cudaEvent_t end);

#ifdef __cplusplus
}
#endif

#endif
