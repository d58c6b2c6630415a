/* The CUDA emulator's cuDNN and cuBLASLt (cudnn.cc, cublaslt.cc) against results worked out by
 * hand on tiny inputs, called as the CUDA backend (model/engine/cuda/) calls them: convolutions
 * NHWC and NCHW with padding, stride, dilation and groups, in fp32 and fp16; the fused
 * convolution with a residual, a bias and ReLU; cuBLASLt's product x W^T of a 1x1 convolution
 * with and without its epilogue; the search's and the heuristic's answers; and the refusals. Work
 * is queued on streams, so every read of a result follows a synchronisation. */
#include "cublasLt.h"
#include "cudnn.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                   \
  do {                                                                                \
    if (!(cond)) {                                                                    \
      fprintf (stderr, "%s:%d: %s does not hold\n", __FILE__, __LINE__, #cond);       \
      exit (1);                                                                       \
    }                                                                                 \
  } while (0)
#define DNN_OK(call) CHECK ((call) == CUDNN_STATUS_SUCCESS)
#define LT_OK(call) CHECK ((call) == CUBLAS_STATUS_SUCCESS)

/* The device memory of the test that runs, freed at its end by free_device. */
static void *test_memory[8];
static int n_test_memory;

static void *
device_alloc (size_t bytes)
{
  void *dev = NULL;
  CHECK (n_test_memory < 8);
  CHECK (cudaMalloc (&dev, bytes) == cudaSuccess);
  test_memory[n_test_memory++] = dev;
  return dev;
}

static void
free_device (void)
{
  while (n_test_memory > 0)
    CHECK (cudaFree (test_memory[--n_test_memory]) == cudaSuccess);
}

static void *
upload (const void *host, size_t bytes)
{
  void *dev = device_alloc (bytes);
  CHECK (cudaMemcpy (dev, host, bytes, cudaMemcpyHostToDevice) == cudaSuccess);
  return dev;
}

/* `bytes` of 0xff: NaN, which a result must not keep */
static void *
poisoned (size_t bytes)
{
  void *dev = device_alloc (bytes);
  CHECK (cudaMemset (dev, 0xff, bytes) == cudaSuccess);
  return dev;
}

/* Whether the first float at `dev` is NaN, once the work before is done. */
static int
nan_at (const void *dev)
{
  float f;
  CHECK (cudaDeviceSynchronize () == cudaSuccess);
  CHECK (cudaMemcpy (&f, dev, sizeof f, cudaMemcpyDeviceToHost) == cudaSuccess);
  return isnan (f);
}

static void
expect (const char *what, const void *dev, const float *want, int n)
{
  float got[64];
  CHECK (n <= 64);
  CHECK (cudaDeviceSynchronize () == cudaSuccess);
  CHECK (cudaMemcpy (got, dev, sizeof (float) * n, cudaMemcpyDeviceToHost) == cudaSuccess);
  for (int i = 0; i < n; i++)
    if (!(fabsf (got[i] - want[i]) <= 1e-5f * fmaxf (1.0f, fabsf (want[i])))) {
      fprintf (stderr, "%s: element %d is %g, not %g\n", what, i, got[i], want[i]);
      exit (1);
    }
}

/* A half's bits for a float that a half holds exactly (normal or zero), and back. */
static uint16_t
half_bits (float f)
{
  int e;
  const float m = frexpf (fabsf (f), &e); /* f = m 2^e, m in [0.5, 1) */
  if (f == 0.0f)
    return 0;
  return (uint16_t) ((f < 0 ? 0x8000 : 0) | (e + 14) << 10 | ((int) (m * 2048.0f) & 0x3ff));
}

static float
half_value (uint16_t h)
{
  const int e = (h >> 10) & 0x1f;
  const float v = e ? ldexpf (1.0f + (h & 0x3ff) / 1024.0f, e - 15) : 0.0f;
  return h & 0x8000 ? -v : v;
}

typedef struct {
  cudnnTensorDescriptor_t x, y, z, b;
  cudnnFilterDescriptor_t w;
  cudnnConvolutionDescriptor_t conv;
} Descs;

static Descs
make_descs (void)
{
  Descs d;
  DNN_OK (cudnnCreateTensorDescriptor (&d.x));
  DNN_OK (cudnnCreateTensorDescriptor (&d.y));
  DNN_OK (cudnnCreateTensorDescriptor (&d.z));
  DNN_OK (cudnnCreateTensorDescriptor (&d.b));
  DNN_OK (cudnnCreateFilterDescriptor (&d.w));
  DNN_OK (cudnnCreateConvolutionDescriptor (&d.conv));
  return d;
}

/* The descriptors and the test's device memory. */
static void
release (Descs *d)
{
  free_device ();
  DNN_OK (cudnnDestroyTensorDescriptor (d->x));
  DNN_OK (cudnnDestroyTensorDescriptor (d->y));
  DNN_OK (cudnnDestroyTensorDescriptor (d->z));
  DNN_OK (cudnnDestroyTensorDescriptor (d->b));
  DNN_OK (cudnnDestroyFilterDescriptor (d->w));
  DNN_OK (cudnnDestroyConvolutionDescriptor (d->conv));
}

/* y = conv (x, w), IMPLICIT_GEMM, without a workspace. */
static cudnnStatus_t
forward (cudnnHandle_t h, const Descs *d, const void *x, const void *w, void *y)
{
  const float one = 1.0f, zero = 0.0f;
  return cudnnConvolutionForward (h, &one, d->x, x, d->w, w, d->conv,
                                  CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL, 0, &zero, d->y,
                                  y);
}

/* 3x3, padding 1, NHWC fp32, two channels in and out: filter 0 sums channel 0 around each
 * pixel; filter 1 takes channel 1 at the pixel and twice channel 0 up and left of it. Then
 * alpha 2, beta 1 over the first result (3 times it), through GEMM and its workspace. And the
 * refusals: a workspace too small, host memory, an algorithm cuDNN has not for the shape, an
 * output of the wrong size. */
static void
test_3x3 (cudnnHandle_t h)
{
  Descs d = make_descs ();
  float x[18], w[36] = { 0 }, y3[18];
  const float want[18] = { 12, 10, 21, 20, 16, 30, 27, 40, 45,
                           52, 33, 64, 24, 70, 39, 88, 28, 100 };
  const float one = 1.0f, two = 2.0f, zero = 0.0f;
  int n, c, oh, ow;
  size_t ws_bytes = 0;

  for (int i = 0; i < 9; i++) {
    x[2 * i] = (float) (i + 1);
    x[2 * i + 1] = 10.0f * (float) (i + 1);
    w[2 * i] = 1.0f;            /* filter 0, tap i, channel 0 */
  }
  w[18 + 2 * 4 + 1] = 1.0f;     /* filter 1, centre, channel 1 */
  w[18 + 0] = 2.0f;             /* filter 1, tap (0, 0), channel 0 */
  void *xd = upload (x, sizeof x), *wd = upload (w, sizeof w), *yd = poisoned (sizeof want);
  DNN_OK (cudnnSetTensor4dDescriptor (d.x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, 2, 3, 3));
  DNN_OK (cudnnSetTensor4dDescriptor (d.y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, 2, 3, 3));
  DNN_OK (cudnnSetFilter4dDescriptor (d.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, 2, 2, 3, 3));
  DNN_OK (cudnnSetConvolution2dDescriptor (d.conv, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                           CUDNN_DATA_FLOAT));
  DNN_OK (cudnnSetConvolutionMathType (d.conv, CUDNN_FMA_MATH));
  DNN_OK (cudnnGetConvolution2dForwardOutputDim (d.conv, d.x, d.w, &n, &c, &oh, &ow));
  CHECK (n == 1 && c == 2 && oh == 3 && ow == 3);
  DNN_OK (forward (h, &d, xd, wd, yd));
  expect ("3x3 NHWC", yd, want, 18);

  DNN_OK (cudnnGetConvolutionForwardWorkspaceSize (h, d.x, d.w, d.conv, d.y,
                                                   CUDNN_CONVOLUTION_FWD_ALGO_GEMM, &ws_bytes));
  CHECK (ws_bytes > 0);
  void *ws = poisoned (ws_bytes);
  CHECK (cudaMemset (ws, 0, ws_bytes) == cudaSuccess);
  CHECK (cudnnConvolutionForward (h, &two, d.x, xd, d.w, wd, d.conv,
                                  CUDNN_CONVOLUTION_FWD_ALGO_GEMM, ws, ws_bytes - 1, &one, d.y,
                                  yd)
         == CUDNN_STATUS_BAD_PARAM);
  DNN_OK (cudnnConvolutionForward (h, &two, d.x, xd, d.w, wd, d.conv,
                                   CUDNN_CONVOLUTION_FWD_ALGO_GEMM, ws, ws_bytes, &one, d.y, yd));
  for (int i = 0; i < 18; i++)
    y3[i] = 3.0f * want[i];
  expect ("alpha 2, beta 1", yd, y3, 18);
  CHECK (nan_at (ws)); /* the algorithm's workspace holds its own values after it */

  CHECK (forward (h, &d, x, wd, yd) == CUDNN_STATUS_BAD_PARAM);
  CHECK (cudnnConvolutionForward (h, &one, d.x, xd, d.w, wd, d.conv,
                                  CUDNN_CONVOLUTION_FWD_ALGO_FFT, NULL, 0, &zero, d.y, yd)
         == CUDNN_STATUS_NOT_SUPPORTED);
  DNN_OK (cudnnSetTensor4dDescriptor (d.y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, 2, 2, 2));
  CHECK (forward (h, &d, xd, wd, yd) == CUDNN_STATUS_BAD_PARAM);
  release (&d);
}

/* NCHW, two 5x5 channels (0..24, and ones) by a KCRS filter (1..9 on channel 0, 100 on
 * channel 1: a hundred per tap inside the map) with stride 2, dilation 3 and padding 3. */
static void
test_stride_dilation (cudnnHandle_t h)
{
  Descs d = make_descs ();
  float x[50], w[18];
  const float want[9] = { 700, 346, 688, 328, 160, 314, 672, 324, 628 };
  int n, c, oh, ow;

  for (int i = 0; i < 25; i++) {
    x[i] = (float) i;
    x[25 + i] = 1.0f;
  }
  for (int i = 0; i < 9; i++) {
    w[i] = (float) (i + 1);
    w[9 + i] = 100.0f;
  }
  void *xd = upload (x, sizeof x), *wd = upload (w, sizeof w), *yd = poisoned (sizeof want);
  DNN_OK (cudnnSetTensor4dDescriptor (d.x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 2, 5, 5));
  DNN_OK (cudnnSetFilter4dDescriptor (d.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 1, 2, 3, 3));
  DNN_OK (cudnnSetConvolution2dDescriptor (d.conv, 3, 3, 2, 2, 3, 3, CUDNN_CROSS_CORRELATION,
                                           CUDNN_DATA_FLOAT));
  DNN_OK (cudnnGetConvolution2dForwardOutputDim (d.conv, d.x, d.w, &n, &c, &oh, &ow));
  CHECK (n == 1 && c == 1 && oh == 3 && ow == 3);
  DNN_OK (cudnnSetTensor4dDescriptor (d.y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 1, 3, 3));
  DNN_OK (forward (h, &d, xd, wd, yd));
  expect ("stride 2, dilation 3, NCHW", yd, want, 9);
  release (&d);
}

/* Two groups, 1x1 (as split-K's convolution): filter 0 reads channels 0 and 1, filter 1
 * channels 2 and 3. A filter of all four channels does not fit the groups. */
static void
test_groups (cudnnHandle_t h)
{
  Descs d = make_descs ();
  const float x[4] = { 1, 2, 3, 4 }, w[4] = { 1, 10, 100, 1000 }, want[2] = { 21, 4300 };
  int n, c, oh, ow;
  void *xd = upload (x, sizeof x), *wd = upload (w, sizeof w), *yd = poisoned (sizeof want);

  DNN_OK (cudnnSetTensor4dDescriptor (d.x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, 4, 1, 1));
  DNN_OK (cudnnSetTensor4dDescriptor (d.y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, 2, 1, 1));
  DNN_OK (cudnnSetFilter4dDescriptor (d.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, 2, 2, 1, 1));
  DNN_OK (cudnnSetConvolution2dDescriptor (d.conv, 0, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                           CUDNN_DATA_FLOAT));
  DNN_OK (cudnnSetConvolutionGroupCount (d.conv, 2));
  DNN_OK (forward (h, &d, xd, wd, yd));
  expect ("groups", yd, want, 2);
  DNN_OK (cudnnSetFilter4dDescriptor (d.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, 2, 4, 1, 1));
  CHECK (cudnnGetConvolution2dForwardOutputDim (d.conv, d.x, d.w, &n, &c, &oh, &ow)
         == CUDNN_STATUS_BAD_PARAM);
  CHECK (forward (h, &d, xd, wd, yd) == CUDNN_STATUS_BAD_PARAM);
  release (&d);
}

/* fp16, a 2x2 filter over a 2x2 map, fp32 computation. 2049 is a tie between halves (2 apart
 * there), rounded to the even 2048; 2049 + 2^-19 is above it, and rounded once it is 2050
 * (through a float first it would be the tie again: a GPU's fp32 sums may well give 2048). */
static void
test_half (cudnnHandle_t h)
{
  Descs d = make_descs ();
  const float tiny = 1.0f / 1024.0f;
  const float xf[4] = { 2048, 1, tiny, tiny }, wf[8] = { 1, 1, 0, 0, 1, 1, tiny, tiny };
  const float want[2] = { 2048, 2050 };
  uint16_t x[4], w[8], y[2];

  for (int i = 0; i < 4; i++)
    x[i] = half_bits (xf[i]);
  for (int i = 0; i < 8; i++)
    w[i] = half_bits (wf[i]);
  void *xd = upload (x, sizeof x), *wd = upload (w, sizeof w), *yd = poisoned (sizeof y);
  DNN_OK (cudnnSetTensor4dDescriptor (d.x, CUDNN_TENSOR_NHWC, CUDNN_DATA_HALF, 1, 1, 2, 2));
  DNN_OK (cudnnSetTensor4dDescriptor (d.y, CUDNN_TENSOR_NHWC, CUDNN_DATA_HALF, 1, 2, 1, 1));
  DNN_OK (cudnnSetFilter4dDescriptor (d.w, CUDNN_DATA_HALF, CUDNN_TENSOR_NHWC, 2, 1, 2, 2));
  DNN_OK (cudnnSetConvolution2dDescriptor (d.conv, 0, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                           CUDNN_DATA_FLOAT));
  DNN_OK (cudnnSetConvolutionMathType (d.conv, CUDNN_TENSOR_OP_MATH));
  DNN_OK (forward (h, &d, xd, wd, yd));
  CHECK (cudaDeviceSynchronize () == cudaSuccess);
  CHECK (cudaMemcpy (y, yd, sizeof y, cudaMemcpyDeviceToHost) == cudaSuccess);
  CHECK (half_value (y[0]) == want[0] && half_value (y[1]) == want[1]);
  /* fp16 filters on fp32 maps */
  DNN_OK (cudnnSetTensor4dDescriptor (d.x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, 1, 2, 2));
  CHECK (forward (h, &d, xd, wd, yd) == CUDNN_STATUS_BAD_PARAM);
  release (&d);
}

/* y = ReLU (2 conv + z + bias) on a 1x2 map of two channels, 1x1 filters summing (+) and
 * negating (-) the channels: conv is (3, -3) and (2, -2). Identity instead of ReLU only with
 * IMPLICIT_PRECOMP_GEMM, as cuDNN. Then z as y itself with alpha2 0 (y holds NaN: unread). */
static void
test_fused (cudnnHandle_t h)
{
  Descs d = make_descs ();
  cudnnActivationDescriptor_t relu, identity;
  const float x[4] = { 1, 2, 3, -1 }, w[4] = { 1, 1, -1, -1 }, z[4] = { 0.5f, 1, 0, 10 };
  const float bias[2] = { 1, -1 };
  const float relu_want[4] = { 7.5f, 0, 5, 5 }, identity_want[4] = { 7.5f, -6, 5, 5 };
  const float no_z_want[4] = { 4, 0, 3, 0 };
  const float one = 1.0f, two = 2.0f, zero = 0.0f;
  const cudnnConvolutionFwdAlgo_t precomp = CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM;
  size_t ws_bytes = 0;
  void *xd = upload (x, sizeof x), *wd = upload (w, sizeof w), *zd = upload (z, sizeof z);
  void *bd = upload (bias, sizeof bias), *yd = poisoned (sizeof z);

  DNN_OK (cudnnCreateActivationDescriptor (&relu));
  DNN_OK (cudnnSetActivationDescriptor (relu, CUDNN_ACTIVATION_RELU, CUDNN_PROPAGATE_NAN, 0.0));
  DNN_OK (cudnnCreateActivationDescriptor (&identity));
  DNN_OK (cudnnSetActivationDescriptor (identity, CUDNN_ACTIVATION_IDENTITY,
                                        CUDNN_PROPAGATE_NAN, 0.0));
  DNN_OK (cudnnSetTensor4dDescriptor (d.x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, 2, 1, 2));
  DNN_OK (cudnnSetTensor4dDescriptor (d.y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, 2, 1, 2));
  DNN_OK (cudnnSetTensor4dDescriptor (d.b, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 2, 1, 1));
  DNN_OK (cudnnSetFilter4dDescriptor (d.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, 2, 2, 1, 1));
  DNN_OK (cudnnSetConvolution2dDescriptor (d.conv, 0, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                           CUDNN_DATA_FLOAT));
  DNN_OK (cudnnGetConvolutionForwardWorkspaceSize (h, d.x, d.w, d.conv, d.y, precomp,
                                                   &ws_bytes));
  void *ws = poisoned (ws_bytes ? ws_bytes : 1);
  DNN_OK (cudnnConvolutionBiasActivationForward (h, &two, d.x, xd, d.w, wd, d.conv, precomp, ws,
                                                 ws_bytes, &one, d.y, zd, d.b, bd, relu, d.y,
                                                 yd));
  expect ("bias, residual, ReLU", yd, relu_want, 4);
  CHECK (cudnnConvolutionBiasActivationForward (h, &two, d.x, xd, d.w, wd, d.conv,
                                                CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL,
                                                0, &one, d.y, zd, d.b, bd, identity, d.y, yd)
         == CUDNN_STATUS_NOT_SUPPORTED);
  DNN_OK (cudnnConvolutionBiasActivationForward (h, &two, d.x, xd, d.w, wd, d.conv, precomp, ws,
                                                 ws_bytes, &one, d.y, zd, d.b, bd, identity,
                                                 d.y, yd));
  expect ("bias, residual, identity", yd, identity_want, 4);
  CHECK (cudaMemset (yd, 0xff, sizeof z) == cudaSuccess);
  DNN_OK (cudnnConvolutionBiasActivationForward (h, &one, d.x, xd, d.w, wd, d.conv, precomp, ws,
                                                 ws_bytes, &zero, d.y, yd, d.b, bd, relu, d.y,
                                                 yd));
  expect ("bias, ReLU, z = y unread", yd, no_z_want, 4);
  /* a bias of 3 channels for 2 filters */
  DNN_OK (cudnnSetTensor4dDescriptor (d.b, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, 3, 1, 1));
  CHECK (cudnnConvolutionBiasActivationForward (h, &two, d.x, xd, d.w, wd, d.conv, precomp, ws,
                                                ws_bytes, &one, d.y, zd, d.b, bd, relu, d.y, yd)
         == CUDNN_STATUS_BAD_PARAM);
  DNN_OK (cudnnDestroyActivationDescriptor (relu));
  DNN_OK (cudnnDestroyActivationDescriptor (identity));
  release (&d);
}

/* The search: every algorithm reported, those that ran first and fastest first, GEMM failing
 * to allocate without its workspace; y left with arbitrary values. */
static void
test_search (cudnnHandle_t h)
{
  Descs d = make_descs ();
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  float x[2 * 8 * 8], w[3 * 2 * 9], y[3 * 8 * 8];
  int returned = 0, gemm = -1;

  memset (x, 0, sizeof x);
  memset (w, 0, sizeof w);
  memset (y, 0, sizeof y);
  void *xd = upload (x, sizeof x), *wd = upload (w, sizeof w), *yd = upload (y, sizeof y);
  void *ws = poisoned (4096);
  DNN_OK (cudnnSetTensor4dDescriptor (d.x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, 2, 8, 8));
  DNN_OK (cudnnSetTensor4dDescriptor (d.y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, 3, 8, 8));
  DNN_OK (cudnnSetFilter4dDescriptor (d.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, 3, 2, 3, 3));
  DNN_OK (cudnnSetConvolution2dDescriptor (d.conv, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                           CUDNN_DATA_FLOAT));
  DNN_OK (cudnnSetConvolutionMathType (d.conv, CUDNN_FMA_MATH));
  DNN_OK (cudnnFindConvolutionForwardAlgorithmEx (h, d.x, xd, d.w, wd, d.conv, d.y, yd,
                                                  CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &returned,
                                                  perf, ws, 4096));
  CHECK (returned == CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
  CHECK (perf[0].status == CUDNN_STATUS_SUCCESS && perf[0].time >= 0.0f);
  for (int k = 0; k < returned; k++) {
    CHECK (perf[k].mathType == CUDNN_FMA_MATH && perf[k].determinism == CUDNN_DETERMINISTIC);
    if (k > 0 && perf[k].status == CUDNN_STATUS_SUCCESS)
      CHECK (perf[k - 1].status == CUDNN_STATUS_SUCCESS && perf[k - 1].time <= perf[k].time);
    if (perf[k].algo == CUDNN_CONVOLUTION_FWD_ALGO_GEMM)
      gemm = k;
  }
  /* GEMM unrolls 64 positions x 2 channels x 9 taps of floats: more than 4096 bytes */
  CHECK (gemm >= 0 && perf[gemm].status != CUDNN_STATUS_SUCCESS && perf[gemm].memory > 4096);
  CHECK (cudaDeviceSynchronize () == cudaSuccess);
  CHECK (cudaMemcpy (y, yd, sizeof y, cudaMemcpyDeviceToHost) == cudaSuccess);
  CHECK (isnan (y[0]));
  release (&d);
}

/* Work on a stream of its own runs when the stream is waited for, not before. */
static void
test_deferred (void)
{
  Descs d = make_descs ();
  cudnnHandle_t h;
  cudaStream_t stream;
  const float x = 3.0f, w = 2.0f, before = 7.0f, want = 6.0f;
  float got = 0.0f;
  void *xd = upload (&x, sizeof x), *wd = upload (&w, sizeof w), *yd = upload (&before, 4);

  CHECK (cudaStreamCreateWithFlags (&stream, cudaStreamNonBlocking) == cudaSuccess);
  DNN_OK (cudnnCreate (&h));
  DNN_OK (cudnnSetStream (h, stream));
  DNN_OK (cudnnSetTensor4dDescriptor (d.x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, 1, 1, 1));
  DNN_OK (cudnnSetTensor4dDescriptor (d.y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, 1, 1, 1));
  DNN_OK (cudnnSetFilter4dDescriptor (d.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, 1, 1, 1, 1));
  DNN_OK (cudnnSetConvolution2dDescriptor (d.conv, 0, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                           CUDNN_DATA_FLOAT));
  DNN_OK (forward (h, &d, xd, wd, yd));
  CHECK (cudaMemcpy (&got, yd, sizeof got, cudaMemcpyDeviceToHost) == cudaSuccess);
  CHECK (got == before);
  CHECK (cudaStreamSynchronize (stream) == cudaSuccess);
  CHECK (cudaMemcpy (&got, yd, sizeof got, cudaMemcpyDeviceToHost) == cudaSuccess);
  CHECK (got == want);
  DNN_OK (cudnnDestroy (h));
  CHECK (cudaStreamDestroy (stream) == cudaSuccess);
  release (&d);
}

/* cuBLASLt as conv.c's 1x1 convolution: y (cout x positions) = W^T x, W a KRSC filter seen
 * as cin x cout with TRANSA, x NHWC seen as cin x positions; cin 4, cout 4, 3 positions. */
static void
test_gemm (void)
{
  const float w[16] = { 1, 2, 3, 4, -1, 0, 1, 0, 0, 0, 0, 1, 2, 0, 0, 0 };
  const float x[12] = { 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 2 };
  const float bias[4] = { 1, 0.5f, -1, 1 };
  const float plain_want[12] = { 10, 0, 1, 2, 1, -1, 0, 2, 8, 0, 2, 0 };
  const float fused_want[12] = { 11, 0.5f, 0, 3, 2, 0, 0, 3, 9, 0.5f, 1, 1 };
  const float one = 1.0f, zero = 0.0f;
  const cublasOperation_t transpose = CUBLAS_OP_T;
  const uint64_t max_workspace = 1 << 20;
  const uint32_t unaligned = 4;
  cublasLtHandle_t lt;
  cublasLtMatmulDesc_t desc;
  cublasLtMatrixLayout_t wl, xl, yl, wrong;
  cublasLtMatmulPreference_t pref;
  cublasLtMatmulHeuristicResult_t results[8];
  int n_results = 0;
  /* (x with 4 bytes to spare, for an x that is not aligned to 16) */
  void *wd = upload (w, sizeof w), *xd = poisoned (4 + sizeof x), *bd = upload (bias, sizeof bias);
  void *yd = poisoned (sizeof plain_want), *ws = poisoned (max_workspace);
  const void *null_bias = NULL;

  CHECK (cudaMemcpy (xd, x, sizeof x, cudaMemcpyHostToDevice) == cudaSuccess);
  LT_OK (cublasLtCreate (&lt));
  LT_OK (cublasLtMatmulDescCreate (&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  LT_OK (cublasLtMatmulDescSetAttribute (desc, CUBLASLT_MATMUL_DESC_TRANSA, &transpose,
                                         sizeof transpose));
  CHECK (cublasLtMatmulDescSetAttribute (desc, CUBLASLT_MATMUL_DESC_TRANSA, &transpose, 2)
         == CUBLAS_STATUS_INVALID_VALUE);
  LT_OK (cublasLtMatrixLayoutCreate (&wl, CUDA_R_32F, 4, 4, 4));
  LT_OK (cublasLtMatrixLayoutCreate (&xl, CUDA_R_32F, 4, 3, 4));
  LT_OK (cublasLtMatrixLayoutCreate (&yl, CUDA_R_32F, 4, 3, 4));
  LT_OK (cublasLtMatrixLayoutCreate (&wrong, CUDA_R_32F, 3, 3, 3));
  LT_OK (cublasLtMatmulPreferenceCreate (&pref));
  LT_OK (cublasLtMatmulPreferenceSetAttribute (pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                               &max_workspace, sizeof max_workspace));
  for (int fused = 0; fused <= 1; fused++) {
    const cublasLtEpilogue_t epilogue = fused ? CUBLASLT_EPILOGUE_RELU_BIAS
                                              : CUBLASLT_EPILOGUE_DEFAULT;
    const void *bias_pointer = fused ? bd : NULL;
    LT_OK (cublasLtMatmulDescSetAttribute (desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue,
                                           sizeof epilogue));
    LT_OK (cublasLtMatmulDescSetAttribute (desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                           &bias_pointer, sizeof bias_pointer));
    LT_OK (cublasLtMatmulAlgoGetHeuristic (lt, desc, wl, xl, yl, yl, pref, 8, results,
                                           &n_results));
    CHECK (n_results >= 2 && results[1].workspaceSize > 0);
    for (int k = 0; k < n_results; k++) {
      CHECK (results[k].state == CUBLAS_STATUS_SUCCESS
             && results[k].workspaceSize <= max_workspace);
      CHECK (cudaMemset (yd, 0xff, sizeof plain_want) == cudaSuccess);
      LT_OK (cublasLtMatmul (lt, desc, &one, wd, wl, xd, xl, &zero, yd, yl, yd, yl,
                             &results[k].algo, ws, results[k].workspaceSize, NULL));
      expect (fused ? "cuBLASLt, bias and ReLU" : "cuBLASLt", yd, fused ? fused_want : plain_want,
              12);
    }
  }
  /* the refusals: m, n, k that disagree; a bias epilogue without a bias; x at 4 bytes past
   * the 16 that the first algorithm (promised 256) needs */
  CHECK (cublasLtMatmul (lt, desc, &one, wd, wl, xd, wrong, &zero, yd, yl, yd, yl,
                         &results[0].algo, ws, max_workspace, NULL)
         == CUBLAS_STATUS_INVALID_VALUE);
  CHECK (cublasLtMatmul (lt, desc, &one, wd, wl, (char *) xd + 4, xl, &zero, yd, yl, yd, yl,
                         &results[0].algo, ws, max_workspace, NULL)
         == CUBLAS_STATUS_NOT_SUPPORTED);
  LT_OK (cublasLtMatmulDescSetAttribute (desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &null_bias,
                                         sizeof null_bias));
  CHECK (cublasLtMatmul (lt, desc, &one, wd, wl, xd, xl, &zero, yd, yl, yd, yl,
                         &results[0].algo, ws, max_workspace, NULL)
         == CUBLAS_STATUS_INVALID_VALUE);
  /* an x aligned to 4 bytes only, said so: the heuristic offers the kernel of single elements */
  LT_OK (cublasLtMatmulDescSetAttribute (desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bd,
                                         sizeof bd));
  LT_OK (cublasLtMatmulPreferenceSetAttribute (pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                                               &unaligned, sizeof unaligned));
  LT_OK (cublasLtMatmulAlgoGetHeuristic (lt, desc, wl, xl, yl, yl, pref, 8, results,
                                         &n_results));
  CHECK (n_results == 1);
  CHECK (cudaMemcpy ((char *) xd + 4, x, sizeof x, cudaMemcpyHostToDevice) == cudaSuccess);
  LT_OK (cublasLtMatmul (lt, desc, &one, wd, wl, (char *) xd + 4, xl, &zero, yd, yl, yd, yl,
                         &results[0].algo, ws, results[0].workspaceSize, NULL));
  expect ("cuBLASLt, x aligned to 4 bytes", yd, fused_want, 12);
  CHECK (cublasLtMatmulPreferenceSetAttribute (pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                               &unaligned, sizeof unaligned)
         == CUBLAS_STATUS_INVALID_VALUE);
  LT_OK (cublasLtMatmulPreferenceDestroy (pref));
  LT_OK (cublasLtMatrixLayoutDestroy (wl));
  LT_OK (cublasLtMatrixLayoutDestroy (xl));
  LT_OK (cublasLtMatrixLayoutDestroy (yl));
  LT_OK (cublasLtMatrixLayoutDestroy (wrong));
  LT_OK (cublasLtMatmulDescDestroy (desc));
  LT_OK (cublasLtDestroy (lt));
  free_device ();
}

int
main (void)
{
  cudnnHandle_t h;

  CHECK (cudnnGetVersion () == 91900);
  DNN_OK (cudnnCreate (&h));
  test_3x3 (h);
  test_stride_dilation (h);
  test_groups (h);
  test_half (h);
  test_fused (h);
  test_search (h);
  DNN_OK (cudnnDestroy (h));
  test_deferred ();
  test_gemm ();
  printf ("ok\n");
  return 0;
}
