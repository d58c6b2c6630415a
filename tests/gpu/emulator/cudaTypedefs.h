/* The driver API's function types (of the ABI versions named) that the CUDA backend and its
 * tests ask the runtime for, for the CUDA emulator (README.md here). */
#ifndef HFAM_CUDA_EMULATOR_CUDA_TYPEDEFS_H
#define HFAM_CUDA_EMULATOR_CUDA_TYPEDEFS_H

#include "cuda.h"

typedef CUresult (CUDAAPI *PFN_cuDeviceGet_v2000) (CUdevice *device, int ordinal);
typedef CUresult (CUDAAPI *PFN_cuCtxCreate_v3020) (CUcontext *context, unsigned int flags,
                                                   CUdevice device);
typedef CUresult (CUDAAPI *PFN_cuCtxDestroy_v4000) (CUcontext context);
typedef CUresult (CUDAAPI *PFN_cuCtxPopCurrent_v4000) (CUcontext *context);
typedef CUresult (CUDAAPI *PFN_cuCtxGetCurrent_v4000) (CUcontext *context);
typedef CUresult (CUDAAPI *PFN_cuCtxSetCurrent_v4000) (CUcontext context);

#endif
