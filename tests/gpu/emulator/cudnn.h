/* The part of cuDNN's legacy convolution API that the CUDA backend (model/engine/cuda/) calls,
 * for the CUDA emulator (README.md here; cudnn.cc runs it on the CPU). The values are cuDNN 9's
 * own, so that a status or an algorithm number means the same as on a GPU.
 *
 * Only what the backend calls is here; a call of anything else fails to compile, which says
 * that the emulator needs it. C as well as C++. */
#ifndef HFAM_CUDA_EMULATOR_CUDNN_H
#define HFAM_CUDA_EMULATOR_CUDNN_H

#include "cuda_runtime_api.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  CUDNN_STATUS_SUCCESS = 0,
  CUDNN_STATUS_NOT_INITIALIZED = 1001,
  CUDNN_STATUS_BAD_PARAM = 2000,
  CUDNN_STATUS_NOT_SUPPORTED = 3000,
  CUDNN_STATUS_INTERNAL_ERROR = 4000,
  /* cuDNN 9's value of the deprecated CUDNN_STATUS_ALLOC_FAILED: a search's algorithm whose
   * workspace is more than the search was given */
  CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED = 4003,
  CUDNN_STATUS_EXECUTION_FAILED = 5000,
} cudnnStatus_t;

typedef enum {
  CUDNN_DATA_FLOAT = 0,
  CUDNN_DATA_HALF = 2,
} cudnnDataType_t;

typedef enum {
  CUDNN_DEFAULT_MATH = 0,
  CUDNN_TENSOR_OP_MATH = 1,
  CUDNN_FMA_MATH = 3,
} cudnnMathType_t;

typedef enum {
  CUDNN_NOT_PROPAGATE_NAN = 0,
  CUDNN_PROPAGATE_NAN = 1,
} cudnnNanPropagation_t;

typedef enum {
  CUDNN_TENSOR_NCHW = 0,
  CUDNN_TENSOR_NHWC = 1,
} cudnnTensorFormat_t;

typedef enum {
  CUDNN_ACTIVATION_RELU = 1,
  CUDNN_ACTIVATION_IDENTITY = 5,
} cudnnActivationMode_t;

typedef enum {
  CUDNN_CROSS_CORRELATION = 1,
} cudnnConvolutionMode_t;

typedef enum {
  CUDNN_NON_DETERMINISTIC = 0,
  CUDNN_DETERMINISTIC = 1,
} cudnnDeterminism_t;

typedef enum {
  CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM = 0,
  CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM = 1,
  CUDNN_CONVOLUTION_FWD_ALGO_GEMM = 2,
  CUDNN_CONVOLUTION_FWD_ALGO_DIRECT = 3,
  CUDNN_CONVOLUTION_FWD_ALGO_FFT = 4,
  CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING = 5,
  CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD = 6,
  CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED = 7,
  CUDNN_CONVOLUTION_FWD_ALGO_COUNT = 8,
} cudnnConvolutionFwdAlgo_t;

/* cuDNN's layout, field for field */
typedef struct cudnnConvolutionFwdAlgoPerfStruct {
  cudnnConvolutionFwdAlgo_t algo;
  cudnnStatus_t status;
  float time;
  size_t memory;
  cudnnDeterminism_t determinism;
  cudnnMathType_t mathType;
  int reserved[3];
} cudnnConvolutionFwdAlgoPerf_t;

typedef struct cudnnContext *cudnnHandle_t;
typedef struct cudnnTensorStruct *cudnnTensorDescriptor_t;
typedef struct cudnnFilterStruct *cudnnFilterDescriptor_t;
typedef struct cudnnConvolutionStruct *cudnnConvolutionDescriptor_t;
typedef struct cudnnActivationStruct *cudnnActivationDescriptor_t;

size_t cudnnGetVersion (void);
const char *cudnnGetErrorString (cudnnStatus_t status);

cudnnStatus_t cudnnCreate (cudnnHandle_t *handle);
cudnnStatus_t cudnnDestroy (cudnnHandle_t handle);
cudnnStatus_t cudnnSetStream (cudnnHandle_t handle, cudaStream_t stream);

cudnnStatus_t cudnnCreateTensorDescriptor (cudnnTensorDescriptor_t *desc);
cudnnStatus_t cudnnDestroyTensorDescriptor (cudnnTensorDescriptor_t desc);
cudnnStatus_t cudnnSetTensor4dDescriptor (cudnnTensorDescriptor_t desc,
                                          cudnnTensorFormat_t format, cudnnDataType_t type,
                                          int n, int c, int h, int w);

cudnnStatus_t cudnnCreateFilterDescriptor (cudnnFilterDescriptor_t *desc);
cudnnStatus_t cudnnDestroyFilterDescriptor (cudnnFilterDescriptor_t desc);
cudnnStatus_t cudnnSetFilter4dDescriptor (cudnnFilterDescriptor_t desc, cudnnDataType_t type,
                                          cudnnTensorFormat_t format, int k, int c, int h,
                                          int w);

cudnnStatus_t cudnnCreateActivationDescriptor (cudnnActivationDescriptor_t *desc);
cudnnStatus_t cudnnDestroyActivationDescriptor (cudnnActivationDescriptor_t desc);
cudnnStatus_t cudnnSetActivationDescriptor (cudnnActivationDescriptor_t desc,
                                            cudnnActivationMode_t mode,
                                            cudnnNanPropagation_t nan, double coef);

cudnnStatus_t cudnnCreateConvolutionDescriptor (cudnnConvolutionDescriptor_t *desc);
cudnnStatus_t cudnnDestroyConvolutionDescriptor (cudnnConvolutionDescriptor_t desc);
cudnnStatus_t cudnnSetConvolution2dDescriptor (cudnnConvolutionDescriptor_t desc, int pad_h,
                                               int pad_w, int stride_h, int stride_w,
                                               int dilation_h, int dilation_w,
                                               cudnnConvolutionMode_t mode,
                                               cudnnDataType_t compute_type);
cudnnStatus_t cudnnSetConvolutionGroupCount (cudnnConvolutionDescriptor_t desc, int groups);
cudnnStatus_t cudnnSetConvolutionMathType (cudnnConvolutionDescriptor_t desc,
                                           cudnnMathType_t math);
cudnnStatus_t cudnnGetConvolution2dForwardOutputDim (const cudnnConvolutionDescriptor_t conv,
                                                     const cudnnTensorDescriptor_t x_desc,
                                                     const cudnnFilterDescriptor_t w_desc,
                                                     int *n, int *c, int *h, int *w);

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize (cudnnHandle_t handle,
                                                       const cudnnTensorDescriptor_t x_desc,
                                                       const cudnnFilterDescriptor_t w_desc,
                                                       const cudnnConvolutionDescriptor_t conv,
                                                       const cudnnTensorDescriptor_t y_desc,
                                                       cudnnConvolutionFwdAlgo_t algo,
                                                       size_t *bytes);
cudnnStatus_t cudnnFindConvolutionForwardAlgorithmEx (
  cudnnHandle_t handle, const cudnnTensorDescriptor_t x_desc, const void *x,
  const cudnnFilterDescriptor_t w_desc, const void *w, const cudnnConvolutionDescriptor_t conv,
  const cudnnTensorDescriptor_t y_desc, void *y, const int requested, int *returned,
  cudnnConvolutionFwdAlgoPerf_t *results, void *workspace, size_t workspace_bytes);
cudnnStatus_t cudnnConvolutionForward (cudnnHandle_t handle, const void *alpha,
                                       const cudnnTensorDescriptor_t x_desc, const void *x,
                                       const cudnnFilterDescriptor_t w_desc, const void *w,
                                       const cudnnConvolutionDescriptor_t conv,
                                       cudnnConvolutionFwdAlgo_t algo, void *workspace,
                                       size_t workspace_bytes, const void *beta,
                                       const cudnnTensorDescriptor_t y_desc, void *y);
cudnnStatus_t cudnnConvolutionBiasActivationForward (
  cudnnHandle_t handle, const void *alpha1, const cudnnTensorDescriptor_t x_desc, const void *x,
  const cudnnFilterDescriptor_t w_desc, const void *w, const cudnnConvolutionDescriptor_t conv,
  cudnnConvolutionFwdAlgo_t algo, void *workspace, size_t workspace_bytes, const void *alpha2,
  const cudnnTensorDescriptor_t z_desc, const void *z, const cudnnTensorDescriptor_t bias_desc,
  const void *bias, const cudnnActivationDescriptor_t activation,
  const cudnnTensorDescriptor_t y_desc, void *y);

#ifdef __cplusplus
}
#endif

#endif
