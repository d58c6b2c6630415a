/* The CUDA emulator's cuda_runtime.h (README.md here): the runtime API alone. */
#ifndef HFAM_CUDA_EMULATOR_RUNTIME_H
#define HFAM_CUDA_EMULATOR_RUNTIME_H
#include "cuda_runtime_api.h"
#endif
