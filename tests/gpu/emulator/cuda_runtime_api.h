/* The part of the CUDA runtime API that the launchers of kernels/, the CUDA backend
 * (model/engine/cuda/) and the tests of tests/gpu/ call, for the CUDA emulator (README.md here):
 * memory is host memory, work queued on a stream runs when something waits for it (host.cc),
 * and a kernel launch runs its threads one after another on the CPU (emulator.h, runtime.cc).
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
  cudaErrorIllegalState = 401,
  cudaErrorNotReady = 600,
  cudaErrorStreamCaptureUnsupported = 900,
  cudaErrorStreamCaptureInvalidated = 901,
  cudaErrorStreamCaptureMerge = 902,
  cudaErrorStreamCaptureUnmatched = 903,
  cudaErrorStreamCaptureUnjoined = 904,
  cudaErrorStreamCaptureImplicit = 906,
  cudaErrorStreamCaptureWrongThread = 908,
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
typedef struct HfamEmuGraph *cudaGraph_t;
typedef struct HfamEmuGraphExec *cudaGraphExec_t;

#define CUDART_CB
typedef void (CUDART_CB *cudaHostFn_t) (void *user_data);

#define cudaStreamLegacy ((cudaStream_t) 0x1)
#define cudaStreamNonBlocking 0x01
#define cudaEventDisableTiming 0x02
#define cudaHostAllocDefault 0x00

struct cudaDeviceProp {
  char name[256];
  int major, minor;
};

enum cudaMemoryType {
  cudaMemoryTypeUnregistered = 0,
  cudaMemoryTypeHost = 1,
  cudaMemoryTypeDevice = 2,
  cudaMemoryTypeManaged = 3,
};

struct cudaPointerAttributes {
  enum cudaMemoryType type;
  int device;
  void *devicePointer;
  void *hostPointer;
};

enum cudaStreamCaptureMode {
  cudaStreamCaptureModeGlobal = 0,
  cudaStreamCaptureModeThreadLocal = 1,
  cudaStreamCaptureModeRelaxed = 2,
};

enum cudaStreamCaptureStatus {
  cudaStreamCaptureStatusNone = 0,
  cudaStreamCaptureStatusActive = 1,
  cudaStreamCaptureStatusInvalidated = 2,
};

enum cudaGetDriverEntryPointFlags {
  cudaEnableDefault = 0x0,
};

enum cudaDriverEntryPointQueryResult {
  cudaDriverEntryPointSuccess = 0,
  cudaDriverEntryPointSymbolNotFound = 1,
  cudaDriverEntryPointVersionNotSufficent = 2,
};

cudaError_t cudaGetDeviceCount (int *count);
cudaError_t cudaGetDeviceProperties (struct cudaDeviceProp *prop, int device);
cudaError_t cudaSetDevice (int device);
cudaError_t cudaGetDevice (int *device);
cudaError_t cudaMemGetInfo (size_t *free_bytes, size_t *total_bytes);
cudaError_t cudaDeviceSynchronize (void);
cudaError_t cudaGetLastError (void);
const char *cudaGetErrorString (cudaError_t error);

cudaError_t cudaMalloc (void **ptr, size_t size);
cudaError_t cudaFree (void *ptr);
cudaError_t cudaMemcpy (void *dst, const void *src, size_t count, enum cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync (void *dst, const void *src, size_t count, enum cudaMemcpyKind kind,
                             cudaStream_t stream);
cudaError_t cudaMemcpy2D (void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                          size_t height, enum cudaMemcpyKind kind);
cudaError_t cudaMemset (void *ptr, int value, size_t count);
cudaError_t cudaMemsetAsync (void *ptr, int value, size_t count, cudaStream_t stream);
cudaError_t cudaHostAlloc (void **ptr, size_t size, unsigned int flags);
cudaError_t cudaFreeHost (void *ptr);
cudaError_t cudaPointerGetAttributes (struct cudaPointerAttributes *attributes, const void *ptr);

cudaError_t cudaStreamCreateWithFlags (cudaStream_t *stream, unsigned int flags);
cudaError_t cudaStreamDestroy (cudaStream_t stream);
cudaError_t cudaStreamSynchronize (cudaStream_t stream);
cudaError_t cudaStreamWaitEvent (cudaStream_t stream, cudaEvent_t event, unsigned int flags);
cudaError_t cudaLaunchHostFunc (cudaStream_t stream, cudaHostFn_t fn, void *user_data);

cudaError_t cudaEventCreate (cudaEvent_t *event);
cudaError_t cudaEventCreateWithFlags (cudaEvent_t *event, unsigned int flags);
cudaError_t cudaEventDestroy (cudaEvent_t event);
cudaError_t cudaEventRecord (cudaEvent_t event, cudaStream_t stream);
cudaError_t cudaEventSynchronize (cudaEvent_t event);
cudaError_t cudaEventElapsedTime (float *ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaEventQuery (cudaEvent_t event);

cudaError_t cudaStreamBeginCapture (cudaStream_t stream, enum cudaStreamCaptureMode mode);
cudaError_t cudaStreamEndCapture (cudaStream_t stream, cudaGraph_t *graph);
cudaError_t cudaStreamIsCapturing (cudaStream_t stream, enum cudaStreamCaptureStatus *status);
cudaError_t cudaGraphInstantiate (cudaGraphExec_t *exec, cudaGraph_t graph,
                                  unsigned long long flags);
cudaError_t cudaGraphLaunch (cudaGraphExec_t exec, cudaStream_t stream);
cudaError_t cudaGraphDestroy (cudaGraph_t graph);
cudaError_t cudaGraphExecDestroy (cudaGraphExec_t exec);

/* The driver API's functions (cuda.h, cudaTypedefs.h), as the runtime hands them out. */
cudaError_t cudaGetDriverEntryPointByVersion (const char *symbol, void **function,
                                              unsigned int version, unsigned long long flags,
                                              enum cudaDriverEntryPointQueryResult *status);

#ifdef __cplusplus
}
#endif

#endif
