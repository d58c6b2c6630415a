/* The part of the CUDA driver API's types that the CUDA backend and its tests use, for the CUDA
 * emulator (README.md here): they reach the driver's functions through the runtime
 * (cudaGetDriverEntryPointByVersion, host.cc), never by linking libcuda. */
#ifndef HFAM_CUDA_EMULATOR_CUDA_H
#define HFAM_CUDA_EMULATOR_CUDA_H

#define CUDAAPI

typedef struct HfamEmuContext *CUcontext;
typedef int CUdevice;

/* The values are the driver's own. */
typedef enum cudaError_enum {
  CUDA_SUCCESS = 0,
  CUDA_ERROR_INVALID_VALUE = 1,
  CUDA_ERROR_INVALID_DEVICE = 101,
  CUDA_ERROR_INVALID_CONTEXT = 201,
} CUresult;

#endif
