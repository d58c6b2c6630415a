/* The part of cuBLASLt that the CUDA backend (model/engine/cuda/) calls for its 1x1 convolutions,
 * for the CUDA emulator (README.md here; cublaslt.cc runs it on the CPU). The values and the
 * semi-opaque structures are cuBLAS's own, so that a status, an attribute or the size of an
 * algorithm kept in the backend's structures is the same as on a GPU.
 *
 * Only what the backend calls is here; a call of anything else fails to compile, which says
 * that the emulator needs it. C as well as C++. */
#ifndef HFAM_CUDA_EMULATOR_CUBLASLT_H
#define HFAM_CUDA_EMULATOR_CUBLASLT_H

#include "cuda_runtime_api.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  CUBLAS_STATUS_SUCCESS = 0,
  CUBLAS_STATUS_NOT_INITIALIZED = 1,
  CUBLAS_STATUS_ALLOC_FAILED = 3,
  CUBLAS_STATUS_INVALID_VALUE = 7,
  CUBLAS_STATUS_EXECUTION_FAILED = 13,
  CUBLAS_STATUS_INTERNAL_ERROR = 14,
  CUBLAS_STATUS_NOT_SUPPORTED = 15,
} cublasStatus_t;

/* (library_types.h's in the toolkit) */
typedef enum cudaDataType_t {
  CUDA_R_32F = 0,
  CUDA_R_16F = 2,
} cudaDataType;
typedef enum cudaDataType_t cudaDataType_t;

typedef enum {
  CUBLAS_COMPUTE_32F = 68,
} cublasComputeType_t;

typedef enum {
  CUBLAS_OP_N = 0,
  CUBLAS_OP_T = 1,
} cublasOperation_t;

typedef enum {
  CUBLASLT_EPILOGUE_DEFAULT = 1,
  CUBLASLT_EPILOGUE_RELU = 2,
  CUBLASLT_EPILOGUE_BIAS = 4,
  CUBLASLT_EPILOGUE_RELU_BIAS = 6,
} cublasLtEpilogue_t;

/* TRANSA, TRANSB: int32_t; EPILOGUE: uint32_t; BIAS_POINTER: const void * (its type is D's) */
typedef enum {
  CUBLASLT_MATMUL_DESC_TRANSA = 3,
  CUBLASLT_MATMUL_DESC_TRANSB = 4,
  CUBLASLT_MATMUL_DESC_EPILOGUE = 7,
  CUBLASLT_MATMUL_DESC_BIAS_POINTER = 8,
} cublasLtMatmulDescAttributes_t;

/* MAX_WORKSPACE_BYTES: uint64_t (default 0); MIN_ALIGNMENT_*: uint32_t (default 256) */
typedef enum {
  CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1,
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES = 5,
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES = 6,
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES = 7,
  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES = 8,
} cublasLtMatmulPreferenceAttributes_t;

typedef struct cublasLtContext *cublasLtHandle_t;
typedef struct HfamEmuLtMatmulDesc *cublasLtMatmulDesc_t;
typedef struct HfamEmuLtMatrixLayout *cublasLtMatrixLayout_t;
typedef struct HfamEmuLtPreference *cublasLtMatmulPreference_t;

/* semi-opaque, of cuBLASLt's size: the caller keeps it by value */
typedef struct {
  uint64_t data[8];
} cublasLtMatmulAlgo_t;

/* cuBLASLt's layout, field for field */
typedef struct {
  cublasLtMatmulAlgo_t algo;
  size_t workspaceSize;
  cublasStatus_t state;
  float wavesCount;
  int reserved[4];
} cublasLtMatmulHeuristicResult_t;

const char *cublasLtGetStatusString (cublasStatus_t status);

cublasStatus_t cublasLtCreate (cublasLtHandle_t *handle);
cublasStatus_t cublasLtDestroy (cublasLtHandle_t handle);

cublasStatus_t cublasLtMatmulDescCreate (cublasLtMatmulDesc_t *desc,
                                         cublasComputeType_t compute_type,
                                         cudaDataType_t scale_type);
cublasStatus_t cublasLtMatmulDescDestroy (cublasLtMatmulDesc_t desc);
cublasStatus_t cublasLtMatmulDescSetAttribute (cublasLtMatmulDesc_t desc,
                                               cublasLtMatmulDescAttributes_t attr,
                                               const void *buf, size_t size);

/* column-major, rows x cols, leading dimension ld */
cublasStatus_t cublasLtMatrixLayoutCreate (cublasLtMatrixLayout_t *layout, cudaDataType type,
                                           uint64_t rows, uint64_t cols, int64_t ld);
cublasStatus_t cublasLtMatrixLayoutDestroy (cublasLtMatrixLayout_t layout);

cublasStatus_t cublasLtMatmulPreferenceCreate (cublasLtMatmulPreference_t *pref);
cublasStatus_t cublasLtMatmulPreferenceDestroy (cublasLtMatmulPreference_t pref);
cublasStatus_t cublasLtMatmulPreferenceSetAttribute (cublasLtMatmulPreference_t pref,
                                                     cublasLtMatmulPreferenceAttributes_t attr,
                                                     const void *buf, size_t size);

cublasStatus_t cublasLtMatmulAlgoGetHeuristic (
  cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a_desc,
  cublasLtMatrixLayout_t b_desc, cublasLtMatrixLayout_t c_desc, cublasLtMatrixLayout_t d_desc,
  cublasLtMatmulPreference_t pref, int requested, cublasLtMatmulHeuristicResult_t results[],
  int *returned);

/* D = epilogue (alpha op(A) op(B) + beta C) */
cublasStatus_t cublasLtMatmul (cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                               const void *alpha, const void *a, cublasLtMatrixLayout_t a_desc,
                               const void *b, cublasLtMatrixLayout_t b_desc, const void *beta,
                               const void *c, cublasLtMatrixLayout_t c_desc, void *d,
                               cublasLtMatrixLayout_t d_desc, const cublasLtMatmulAlgo_t *algo,
                               void *workspace, size_t workspace_bytes, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
