/* cuDNN's legacy convolutions, as the CUDA backend (model/engine/cuda/) calls them, for the CUDA
 * emulator (README.md here): cudnn.h, computed on the CPU. Each computing call is queued on the
 * handle's stream and runs when the stream does, with the descriptors and the host scalars as
 * they were at the call, as on a GPU; it is captured into a graph like a launch.
 *
 * What it refuses that cuDNN refuses too: null arguments, descriptors not set or that disagree
 * (input channels that are not the filter's times the groups, an output that is not
 * cudnnGetConvolution2dForwardOutputDim's, types that differ, a bias not 1xKx1x1, z unlike y),
 * an algorithm cuDNN has not for the shape, a workspace smaller than the algorithm needs, an
 * identity activation with another algorithm than IMPLICIT_PRECOMP_GEMM. What it refuses that
 * cuDNN would not (a GPU would fault or compute garbage): data, bias or workspace that is not
 * device memory over the whole extent, a convolution in place (its input overlapping its
 * output). Each refusal says why on stderr. The workspace an algorithm uses, and y after the
 * search, are filled with 0xff bytes (NaN: cuDNN leaves arbitrary values there), so that a
 * caller that keeps data there loses it here too.
 *
 * What it cannot show: speed (the search's times are made up, in a fixed order); the real
 * algorithms' rounding and order of summation: here every sum is in double, rounded once to the
 * output type, where a GPU sums in fp32 in its own order (tensor cores, Winograd transforms and
 * split sums each round their own way), so that a test's tolerance must allow for the GPU's. */
#include "cudnn.h"
#include "dnn-common.h"

#include <algorithm>
#include <climits>
#include <vector>

using namespace hfam_emu_dnn;

struct cudnnContext {
  cudaStream_t stream;
};

struct cudnnTensorStruct {
  bool set;
  cudnnTensorFormat_t format;
  cudnnDataType_t type;
  int n, c, h, w;
};

struct cudnnFilterStruct {
  bool set;
  cudnnDataType_t type;
  cudnnTensorFormat_t format;
  int k, c, r, s;
};

struct cudnnConvolutionStruct {
  bool set;
  int pad_h, pad_w, stride_h, stride_w, dilation_h, dilation_w;
  cudnnDataType_t compute;
  int groups = 1;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};

struct cudnnActivationStruct {
  bool set;
  cudnnActivationMode_t mode;
  cudnnNanPropagation_t nan;
};

namespace {

size_t
dnn_elem (cudnnDataType_t type)
{
  return type == CUDNN_DATA_HALF ? 2 : 4;
}

size_t
elements (const cudnnTensorStruct &t)
{
  return (size_t) t.n * t.c * t.h * t.w;
}

size_t
tensor_at (const cudnnTensorStruct &t, int n, int c, int h, int w)
{
  return t.format == CUDNN_TENSOR_NHWC ? (((size_t) n * t.h + h) * t.w + w) * t.c + c
                                       : (((size_t) n * t.c + c) * t.h + h) * t.w + w;
}

int
channel_of (const cudnnTensorStruct &t, size_t i)
{
  return (int) (t.format == CUDNN_TENSOR_NHWC ? i % t.c : i / ((size_t) t.h * t.w) % t.c);
}

size_t
filter_at (const cudnnFilterStruct &f, int k, int c, int r, int s)
{
  return f.format == CUDNN_TENSOR_NHWC ? (((size_t) k * f.r + r) * f.s + s) * f.c + c
                                       : (((size_t) k * f.c + c) * f.r + r) * f.s + s;
}

bool
valid_format (cudnnTensorFormat_t format)
{
  return format == CUDNN_TENSOR_NCHW || format == CUDNN_TENSOR_NHWC;
}

bool
valid_type (cudnnDataType_t type)
{
  return type == CUDNN_DATA_FLOAT || type == CUDNN_DATA_HALF;
}

/* The output of conv on x and w (NCHW order of dimensions), or why there is none. */
const char *
output_dims (const cudnnConvolutionStruct &conv, const cudnnTensorStruct &x,
             const cudnnFilterStruct &w, int dims[4])
{
  const int reach_h = (w.r - 1) * conv.dilation_h + 1, reach_w = (w.s - 1) * conv.dilation_w + 1;
  if (!conv.set || !x.set || !w.set)
    return "a descriptor is not set";
  if (x.c != w.c * conv.groups || w.k % conv.groups)
    return "the input's channels are not the filter's times the groups, or the filters do "
           "not split into the groups";
  if (x.h + 2 * conv.pad_h < reach_h || x.w + 2 * conv.pad_w < reach_w)
    return "the dilated filter is larger than the padded input";
  dims[0] = x.n;
  dims[1] = w.k;
  dims[2] = 1 + (x.h + 2 * conv.pad_h - reach_h) / conv.stride_h;
  dims[3] = 1 + (x.w + 2 * conv.pad_w - reach_w) / conv.stride_w;
  return nullptr;
}

/* A convolution's descriptors as they were at the call. */
struct Conv {
  cudnnTensorStruct x, y;
  cudnnFilterStruct w;
  cudnnConvolutionStruct conv;
};

cudnnStatus_t
describe_conv (const char *api, const cudnnTensorStruct *x, const cudnnFilterStruct *w,
               const cudnnConvolutionStruct *conv, const cudnnTensorStruct *y, Conv *out)
{
  int dims[4];
  const char *fault;

  if (!x || !w || !conv || !y || !y->set) {
    complain ("%s: a descriptor is null or not set", api);
    return CUDNN_STATUS_BAD_PARAM;
  }
  if ((fault = output_dims (*conv, *x, *w, dims))) {
    complain ("%s: %s", api, fault);
    return CUDNN_STATUS_BAD_PARAM;
  }
  if (x->type != w->type || x->type != y->type) {
    complain ("%s: x, w and y are not of one type", api);
    return CUDNN_STATUS_BAD_PARAM;
  }
  if (conv->compute == CUDNN_DATA_HALF && x->type != CUDNN_DATA_HALF) {
    complain ("%s: fp32 data with an fp16 computation", api);
    return CUDNN_STATUS_NOT_SUPPORTED;
  }
  if (y->n != dims[0] || y->c != dims[1] || y->h != dims[2] || y->w != dims[3]) {
    complain ("%s: y is %dx%dx%dx%d (NCHW), the convolution's output %dx%dx%dx%d", api, y->n,
              y->c, y->h, y->w, dims[0], dims[1], dims[2], dims[3]);
    return CUDNN_STATUS_BAD_PARAM;
  }
  *out = { *x, *y, *w, *conv };
  return CUDNN_STATUS_SUCCESS;
}

bool
winograd_applies (const Conv &p)
{
  return p.w.r == 3 && p.w.s == 3 && p.conv.stride_h == 1 && p.conv.stride_w == 1
         && p.conv.dilation_h == 1 && p.conv.dilation_w == 1 && p.conv.groups == 1;
}

/* The emulator's algorithms, fastest first (each a twentieth slower than the one before on
 * the clock), then those it has not. */
const cudnnConvolutionFwdAlgo_t ranked[CUDNN_CONVOLUTION_FWD_ALGO_COUNT] = {
  CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED,
  CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,         CUDNN_CONVOLUTION_FWD_ALGO_GEMM,
  CUDNN_CONVOLUTION_FWD_ALGO_DIRECT,                CUDNN_CONVOLUTION_FWD_ALGO_FFT,
  CUDNN_CONVOLUTION_FWD_ALGO_FFT_TILING,            CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD,
};

/* The workspace of each algorithm the emulator has (NOT_SUPPORTED for the others), in sizes
 * such as the real ones need, so that the caller's workspace handling is exercised. */
cudnnStatus_t
workspace_need (const Conv &p, cudnnConvolutionFwdAlgo_t algo, size_t *bytes)
{
  const size_t positions = (size_t) p.y.n * p.y.h * p.y.w, taps = (size_t) p.w.r * p.w.s;
  switch (algo) {
  case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM:
    *bytes = 0;
    return CUDNN_STATUS_SUCCESS;
  case CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM: /* the taps' offsets, precomputed */
    *bytes = sizeof (int) * taps * p.w.c;
    return CUDNN_STATUS_SUCCESS;
  case CUDNN_CONVOLUTION_FWD_ALGO_GEMM: /* the input unrolled, a row per position */
    *bytes = positions * p.x.c * taps * dnn_elem (p.x.type);
    return CUDNN_STATUS_SUCCESS;
  case CUDNN_CONVOLUTION_FWD_ALGO_WINOGRAD_NONFUSED: {
    /* F(4x4, 3x3): the 6x6 transforms of the input tiles, the filters and the output tiles */
    const size_t tiles = (size_t) p.y.n * ((p.y.h + 3) / 4) * ((p.y.w + 3) / 4);
    if (!winograd_applies (p))
      break;
    *bytes = 36 * sizeof (float) * (tiles * p.x.c + (size_t) p.w.k * p.x.c + tiles * p.w.k);
    return CUDNN_STATUS_SUCCESS;
  }
  default:
    break;
  }
  return CUDNN_STATUS_NOT_SUPPORTED;
}

/* sums[k] += x w[k] for each k < n: the convolutions' innermost loop, where the emulated
 * network's tests spend most of their time, built for the wider vector units too. */
__attribute__ ((target_clones ("avx512f", "avx2", "default"))) void
accumulate (double *sums, double x, const float *w, int n)
{
  for (int k = 0; k < n; k++)
    sums[k] += x * w[k];
}

/* conv(x, w) at each element of y, in y's order, summed in double. The output channels are
 * the inner loop, each its own sum, so that the compiler vectorises it as it is. */
std::vector<double>
convolve (const Conv &p, const void *x, const void *w)
{
  const bool half = p.x.type == CUDNN_DATA_HALF;
  const int C = p.x.c, H = p.x.h, W = p.x.w, K = p.w.k, R = p.w.r, S = p.w.s;
  const int groups = p.conv.groups, cg = p.w.c, kg = K / groups;
  /* x as NHWC and w as RSCK floats */
  std::vector<float> xs (elements (p.x)), ws ((size_t) R * S * cg * K);
  std::vector<double> out (elements (p.y)), sums (K);
  size_t i = 0;

  for (int n = 0; n < p.x.n; n++)
    for (int h = 0; h < H; h++)
      for (int v = 0; v < W; v++)
        for (int c = 0; c < C; c++)
          xs[i++] = load (x, tensor_at (p.x, n, c, h, v), half);
  for (int k = 0; k < K; k++)
    for (int r = 0; r < R; r++)
      for (int s = 0; s < S; s++)
        for (int c = 0; c < cg; c++)
          ws[(((size_t) r * S + s) * cg + c) * K + k] = load (w, filter_at (p.w, k, c, r, s), half);
  for (int n = 0; n < p.y.n; n++)
    for (int oh = 0; oh < p.y.h; oh++)
      for (int ow = 0; ow < p.y.w; ow++) {
        std::fill (sums.begin (), sums.end (), 0.0);
        for (int r = 0; r < R; r++) {
          const int ih = oh * p.conv.stride_h - p.conv.pad_h + r * p.conv.dilation_h;
          for (int s = 0; s < S && ih >= 0 && ih < H; s++) {
            const int iw = ow * p.conv.stride_w - p.conv.pad_w + s * p.conv.dilation_w;
            if (iw < 0 || iw >= W)
              continue;
            const float *xv = &xs[(((size_t) n * H + ih) * W + iw) * C];
            for (int g = 0; g < groups; g++)
              for (int c = 0; c < cg; c++)
                accumulate (&sums[(size_t) g * kg], xv[g * cg + c],
                            &ws[(((size_t) r * S + s) * cg + c) * K + (size_t) g * kg], kg);
          }
        }
        for (int k = 0; k < K; k++)
          out[tensor_at (p.y, n, k, oh, ow)] = sums[k];
      }
  return out;
}

/* The checks that every convolution call makes: its handle and descriptors, its data in
 * device memory, and no convolution in place. */
cudnnStatus_t
check_conv_call (const char *api, cudnnHandle_t handle, const cudnnTensorStruct *x_desc,
                 const void *x, const cudnnFilterStruct *w_desc, const void *w,
                 const cudnnConvolutionStruct *conv, const cudnnTensorStruct *y_desc,
                 const void *y, Conv *p)
{
  size_t x_bytes, w_bytes, y_bytes;
  cudnnStatus_t st;

  if (!handle) {
    complain ("%s: no handle", api);
    return CUDNN_STATUS_BAD_PARAM;
  }
  if ((st = describe_conv (api, x_desc, w_desc, conv, y_desc, p)) != CUDNN_STATUS_SUCCESS)
    return st;
  x_bytes = elements (p->x) * dnn_elem (p->x.type);
  y_bytes = elements (p->y) * dnn_elem (p->y.type);
  w_bytes = (size_t) p->w.k * p->w.c * p->w.r * p->w.s * dnn_elem (p->w.type);
  if (!device_memory (api, "x", x, x_bytes) || !device_memory (api, "w", w, w_bytes)
      || !device_memory (api, "y", y, y_bytes))
    return CUDNN_STATUS_BAD_PARAM;
  if (overlap (x, x_bytes, y, y_bytes) || overlap (w, w_bytes, y, y_bytes)) {
    complain ("%s: y overlaps x or w (cuDNN does not convolve in place)", api);
    return CUDNN_STATUS_BAD_PARAM;
  }
  return CUDNN_STATUS_SUCCESS;
}

/* The algorithm, and a workspace that holds what it needs (*need). */
cudnnStatus_t
check_algo (const char *api, const Conv &p, cudnnConvolutionFwdAlgo_t algo, const void *workspace,
            size_t workspace_bytes, size_t *need)
{
  if (workspace_need (p, algo, need) != CUDNN_STATUS_SUCCESS) {
    complain ("%s: algorithm %d does not take this convolution", api, (int) algo);
    return CUDNN_STATUS_NOT_SUPPORTED;
  }
  if (workspace_bytes < *need) {
    complain ("%s: algorithm %d needs %zu bytes of workspace, given %zu", api, (int) algo, *need,
              workspace_bytes);
    return CUDNN_STATUS_BAD_PARAM;
  }
  if (*need && !device_memory (api, "the workspace", workspace, *need))
    return CUDNN_STATUS_BAD_PARAM;
  return CUDNN_STATUS_SUCCESS;
}

/* What follows the convolution: y = act (alpha1 conv + alpha2 z + bias), where
 * cudnnConvolutionForward's z is y, with no bias and no activation. */
struct ConvTail {
  float alpha1, alpha2;
  const void *z, *bias;
  bool relu, propagate_nan;
};

cudnnStatus_t
queue_conv (cudnnHandle_t handle, const Conv &p, cudnnConvolutionFwdAlgo_t algo, const void *x,
            const void *w, void *y, void *workspace, size_t need, const ConvTail &t)
{
  const double outputs = (double) elements (p.y);
  const int rank = (int) (std::find (ranked, ranked + CUDNN_CONVOLUTION_FWD_ALGO_COUNT, algo)
                          - ranked);
  const double macs = outputs * p.w.c * p.w.r * p.w.s;
  const double cost = hfam_emu::product_cost (macs, outputs, p.y.type == CUDNN_DATA_HALF)
                      * (1.0 + 0.05 * rank);
  const bool queued = queue (handle->stream, cost, workspace, need, [p, x, w, y, t] {
    const bool half = p.y.type == CUDNN_DATA_HALF;
    const std::vector<double> sum = convolve (p, x, w);
    for (size_t i = 0; i < sum.size (); i++) {
      /* (a scale of 0 leaves its tensor unread, so that NaN there does not stay: cuDNN's beta
       * 0; z is y itself or apart from it, each element read before it is written) */
      double v = t.alpha1 * sum[i];
      if (t.alpha2 != 0.0f)
        v += t.alpha2 * (double) load (t.z, i, half);
      if (t.bias)
        v += load (t.bias, channel_of (p.y, i), half);
      if (t.relu && !(v > 0.0) && !(std::isnan (v) && t.propagate_nan))
        v = 0.0;
      store (y, i, half, v);
    }
  });
  return queued ? CUDNN_STATUS_SUCCESS : CUDNN_STATUS_EXECUTION_FAILED;
}

bool
same_tensor (const cudnnTensorStruct &a, const cudnnTensorStruct &b)
{
  return a.set && b.set && a.format == b.format && a.type == b.type && a.n == b.n && a.c == b.c
         && a.h == b.h && a.w == b.w;
}

} // namespace

extern "C" {

size_t
cudnnGetVersion (void)
{
  return 91900;
}

const char *
cudnnGetErrorString (cudnnStatus_t status)
{
  static const std::pair<cudnnStatus_t, const char *> names[] = {
    NAMED (CUDNN_STATUS_SUCCESS),          NAMED (CUDNN_STATUS_NOT_INITIALIZED),
    NAMED (CUDNN_STATUS_BAD_PARAM),        NAMED (CUDNN_STATUS_NOT_SUPPORTED),
    NAMED (CUDNN_STATUS_INTERNAL_ERROR),
    NAMED (CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED),
    NAMED (CUDNN_STATUS_EXECUTION_FAILED),
  };
  return name_of (status, names);
}

cudnnStatus_t
cudnnCreate (cudnnHandle_t *handle)
{
  return create (handle, CUDNN_STATUS_BAD_PARAM);
}

cudnnStatus_t
cudnnDestroy (cudnnHandle_t handle)
{
  ApiGuard guard (hfam_emu::api_lock ());
  if (!handle)
    return CUDNN_STATUS_BAD_PARAM;
  /* cuDNN's documentation: destroying a handle synchronises the device */
  cudaDeviceSynchronize ();
  delete handle;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t
cudnnSetStream (cudnnHandle_t handle, cudaStream_t stream)
{
  ApiGuard guard (hfam_emu::api_lock ());
  if (!handle)
    return CUDNN_STATUS_BAD_PARAM;
  handle->stream = stream;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t
cudnnCreateTensorDescriptor (cudnnTensorDescriptor_t *desc)
{
  return create (desc, CUDNN_STATUS_BAD_PARAM);
}

cudnnStatus_t
cudnnDestroyTensorDescriptor (cudnnTensorDescriptor_t desc)
{
  return destroy<cudnnStatus_t> (desc);
}

cudnnStatus_t
cudnnSetTensor4dDescriptor (cudnnTensorDescriptor_t desc, cudnnTensorFormat_t format,
                            cudnnDataType_t type, int n, int c, int h, int w)
{
  ApiGuard guard (hfam_emu::api_lock ());
  /* (cuDNN's legacy tensors hold at most 2^31 - 1 elements) */
  if (!desc || !valid_format (format) || n <= 0 || c <= 0 || h <= 0 || w <= 0
      || (double) n * c * h * w > INT_MAX)
    return CUDNN_STATUS_BAD_PARAM;
  if (!valid_type (type))
    return CUDNN_STATUS_NOT_SUPPORTED;
  *desc = { true, format, type, n, c, h, w };
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t
cudnnCreateFilterDescriptor (cudnnFilterDescriptor_t *desc)
{
  return create (desc, CUDNN_STATUS_BAD_PARAM);
}

cudnnStatus_t
cudnnDestroyFilterDescriptor (cudnnFilterDescriptor_t desc)
{
  return destroy<cudnnStatus_t> (desc);
}

cudnnStatus_t
cudnnSetFilter4dDescriptor (cudnnFilterDescriptor_t desc, cudnnDataType_t type,
                            cudnnTensorFormat_t format, int k, int c, int h, int w)
{
  ApiGuard guard (hfam_emu::api_lock ());
  if (!desc || !valid_format (format) || k <= 0 || c <= 0 || h <= 0 || w <= 0
      || (double) k * c * h * w > INT_MAX)
    return CUDNN_STATUS_BAD_PARAM;
  if (!valid_type (type))
    return CUDNN_STATUS_NOT_SUPPORTED;
  *desc = { true, type, format, k, c, h, w };
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t
cudnnCreateActivationDescriptor (cudnnActivationDescriptor_t *desc)
{
  return create (desc, CUDNN_STATUS_BAD_PARAM);
}

cudnnStatus_t
cudnnDestroyActivationDescriptor (cudnnActivationDescriptor_t desc)
{
  return destroy<cudnnStatus_t> (desc);
}

cudnnStatus_t
cudnnSetActivationDescriptor (cudnnActivationDescriptor_t desc, cudnnActivationMode_t mode,
                              cudnnNanPropagation_t nan, double)
{
  ApiGuard guard (hfam_emu::api_lock ());
  if (!desc || (mode != CUDNN_ACTIVATION_RELU && mode != CUDNN_ACTIVATION_IDENTITY)
      || (nan != CUDNN_NOT_PROPAGATE_NAN && nan != CUDNN_PROPAGATE_NAN))
    return CUDNN_STATUS_BAD_PARAM;
  *desc = { true, mode, nan };
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t
cudnnCreateConvolutionDescriptor (cudnnConvolutionDescriptor_t *desc)
{
  return create (desc, CUDNN_STATUS_BAD_PARAM);
}

cudnnStatus_t
cudnnDestroyConvolutionDescriptor (cudnnConvolutionDescriptor_t desc)
{
  return destroy<cudnnStatus_t> (desc);
}

cudnnStatus_t
cudnnSetConvolution2dDescriptor (cudnnConvolutionDescriptor_t desc, int pad_h, int pad_w,
                                 int stride_h, int stride_w, int dilation_h, int dilation_w,
                                 cudnnConvolutionMode_t mode, cudnnDataType_t compute_type)
{
  ApiGuard guard (hfam_emu::api_lock ());
  if (!desc || pad_h < 0 || pad_w < 0 || stride_h <= 0 || stride_w <= 0 || dilation_h <= 0
      || dilation_w <= 0 || mode != CUDNN_CROSS_CORRELATION)
    return CUDNN_STATUS_BAD_PARAM;
  if (!valid_type (compute_type))
    return CUDNN_STATUS_NOT_SUPPORTED;
  *desc = { true, pad_h,        pad_w,        stride_h,    stride_w,
            dilation_h, dilation_w, compute_type, desc->groups, desc->math };
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t
cudnnSetConvolutionGroupCount (cudnnConvolutionDescriptor_t desc, int groups)
{
  ApiGuard guard (hfam_emu::api_lock ());
  if (!desc || groups < 1)
    return CUDNN_STATUS_BAD_PARAM;
  desc->groups = groups;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t
cudnnSetConvolutionMathType (cudnnConvolutionDescriptor_t desc, cudnnMathType_t math)
{
  ApiGuard guard (hfam_emu::api_lock ());
  if (!desc || (math != CUDNN_DEFAULT_MATH && math != CUDNN_TENSOR_OP_MATH
                && math != CUDNN_FMA_MATH))
    return CUDNN_STATUS_BAD_PARAM;
  desc->math = math;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t
cudnnGetConvolution2dForwardOutputDim (const cudnnConvolutionDescriptor_t conv,
                                       const cudnnTensorDescriptor_t x_desc,
                                       const cudnnFilterDescriptor_t w_desc, int *n, int *c,
                                       int *h, int *w)
{
  ApiGuard guard (hfam_emu::api_lock ());
  int dims[4];
  const char *fault;

  if (!conv || !x_desc || !w_desc || !n || !c || !h || !w)
    return CUDNN_STATUS_BAD_PARAM;
  if ((fault = output_dims (*conv, *x_desc, *w_desc, dims))) {
    complain ("cudnnGetConvolution2dForwardOutputDim: %s", fault);
    return CUDNN_STATUS_BAD_PARAM;
  }
  *n = dims[0];
  *c = dims[1];
  *h = dims[2];
  *w = dims[3];
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t
cudnnGetConvolutionForwardWorkspaceSize (cudnnHandle_t handle,
                                         const cudnnTensorDescriptor_t x_desc,
                                         const cudnnFilterDescriptor_t w_desc,
                                         const cudnnConvolutionDescriptor_t conv,
                                         const cudnnTensorDescriptor_t y_desc,
                                         cudnnConvolutionFwdAlgo_t algo, size_t *bytes)
{
  ApiGuard guard (hfam_emu::api_lock ());
  const char *api = "cudnnGetConvolutionForwardWorkspaceSize";
  Conv p;
  cudnnStatus_t st;

  if (!handle || !bytes)
    return CUDNN_STATUS_BAD_PARAM;
  if ((st = describe_conv (api, x_desc, w_desc, conv, y_desc, &p)) != CUDNN_STATUS_SUCCESS)
    return st;
  return workspace_need (p, algo, bytes);
}

/* The search does not run the algorithms: it reports those the emulator has, each with the
 * workspace it needs and a made-up time, in a fixed order, and those whose workspace is more
 * than given as failed to allocate, as cuDNN does. Like cuDNN, it leaves arbitrary values in y
 * (0xff bytes), queued on the handle's stream; not in the workspace, which is the largest the
 * backend allocates: filling it at each search made the network's test three times as slow. */
cudnnStatus_t
cudnnFindConvolutionForwardAlgorithmEx (
  cudnnHandle_t handle, const cudnnTensorDescriptor_t x_desc, const void *x,
  const cudnnFilterDescriptor_t w_desc, const void *w, const cudnnConvolutionDescriptor_t conv,
  const cudnnTensorDescriptor_t y_desc, void *y, const int requested, int *returned,
  cudnnConvolutionFwdAlgoPerf_t *results, void *workspace, size_t workspace_bytes)
{
  ApiGuard guard (hfam_emu::api_lock ());
  const char *api = "cudnnFindConvolutionForwardAlgorithmEx";
  std::vector<cudnnConvolutionFwdAlgoPerf_t> perf;
  Conv p;
  cudnnStatus_t st;

  if ((st = check_conv_call (api, handle, x_desc, x, w_desc, w, conv, y_desc, y, &p))
      != CUDNN_STATUS_SUCCESS)
    return st;
  if (requested < 1 || !returned || !results
      || (workspace_bytes && !device_memory (api, "the workspace", workspace, workspace_bytes)))
    return CUDNN_STATUS_BAD_PARAM;
  for (int i = 0; i < CUDNN_CONVOLUTION_FWD_ALGO_COUNT; i++) {
    cudnnConvolutionFwdAlgoPerf_t r = {};
    r.algo = ranked[i];
    r.determinism = CUDNN_DETERMINISTIC;
    r.mathType = p.conv.math;
    r.time = -1.0f;
    if (workspace_need (p, r.algo, &r.memory) != CUDNN_STATUS_SUCCESS)
      r.status = CUDNN_STATUS_NOT_SUPPORTED;
    else if (r.memory > workspace_bytes)
      r.status = CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
    else
      r.time = 0.5f * (float) (i + 1);
    perf.push_back (r);
  }
  /* those that ran first, in order of time */
  std::stable_sort (perf.begin (), perf.end (), [] (const auto &a, const auto &b) {
    return a.status == CUDNN_STATUS_SUCCESS && b.status != CUDNN_STATUS_SUCCESS;
  });
  *returned = std::min (requested, (int) perf.size ());
  std::copy (perf.begin (), perf.begin () + *returned, results);
  const size_t y_bytes = elements (p.y) * dnn_elem (p.y.type);
  return queue (handle->stream, 0.0, workspace, 0,
                [y, y_bytes] { std::memset (y, 0xff, y_bytes); })
           ? CUDNN_STATUS_SUCCESS
           : CUDNN_STATUS_EXECUTION_FAILED;
}

cudnnStatus_t
cudnnConvolutionForward (cudnnHandle_t handle, const void *alpha,
                         const cudnnTensorDescriptor_t x_desc, const void *x,
                         const cudnnFilterDescriptor_t w_desc, const void *w,
                         const cudnnConvolutionDescriptor_t conv,
                         cudnnConvolutionFwdAlgo_t algo, void *workspace,
                         size_t workspace_bytes, const void *beta,
                         const cudnnTensorDescriptor_t y_desc, void *y)
{
  ApiGuard guard (hfam_emu::api_lock ());
  const char *api = "cudnnConvolutionForward";
  Conv p;
  size_t need;
  cudnnStatus_t st;

  if (!alpha || !beta) {
    complain ("%s: alpha or beta is null", api);
    return CUDNN_STATUS_BAD_PARAM;
  }
  if ((st = check_conv_call (api, handle, x_desc, x, w_desc, w, conv, y_desc, y, &p))
        != CUDNN_STATUS_SUCCESS
      || (st = check_algo (api, p, algo, workspace, workspace_bytes, &need))
           != CUDNN_STATUS_SUCCESS)
    return st;
  /* (the scalars of fp16 and fp32 convolutions are floats, read now as cuDNN reads them) */
  return queue_conv (handle, p, algo, x, w, y, workspace, need,
                     { *static_cast<const float *> (alpha), *static_cast<const float *> (beta), y,
                       nullptr, false, false });
}

cudnnStatus_t
cudnnConvolutionBiasActivationForward (
  cudnnHandle_t handle, const void *alpha1, const cudnnTensorDescriptor_t x_desc, const void *x,
  const cudnnFilterDescriptor_t w_desc, const void *w, const cudnnConvolutionDescriptor_t conv,
  cudnnConvolutionFwdAlgo_t algo, void *workspace, size_t workspace_bytes, const void *alpha2,
  const cudnnTensorDescriptor_t z_desc, const void *z, const cudnnTensorDescriptor_t bias_desc,
  const void *bias, const cudnnActivationDescriptor_t activation,
  const cudnnTensorDescriptor_t y_desc, void *y)
{
  ApiGuard guard (hfam_emu::api_lock ());
  const char *api = "cudnnConvolutionBiasActivationForward";
  Conv p;
  size_t need;
  cudnnStatus_t st;

  if (!alpha1 || !alpha2 || !z_desc || !bias_desc || !activation || !activation->set) {
    complain ("%s: a scale, z's or the bias's descriptor or the activation is null or not set",
              api);
    return CUDNN_STATUS_BAD_PARAM;
  }
  if ((st = check_conv_call (api, handle, x_desc, x, w_desc, w, conv, y_desc, y, &p))
      != CUDNN_STATUS_SUCCESS)
    return st;
  const size_t e = dnn_elem (p.y.type), y_bytes = elements (p.y) * e;
  if (!same_tensor (*z_desc, p.y)) {
    complain ("%s: z's descriptor is not y's", api);
    return CUDNN_STATUS_BAD_PARAM;
  }
  if (!bias_desc->set || bias_desc->n != 1 || bias_desc->c != p.y.c || bias_desc->h != 1
      || bias_desc->w != 1 || bias_desc->type != p.y.type) {
    complain ("%s: the bias is not 1x%dx1x1 of y's type", api, p.y.c);
    return CUDNN_STATUS_BAD_PARAM;
  }
  if (!device_memory (api, "z", z, y_bytes)
      || !device_memory (api, "the bias", bias, (size_t) p.y.c * e))
    return CUDNN_STATUS_BAD_PARAM;
  if (z != y && overlap (z, y_bytes, y, y_bytes)) {
    complain ("%s: z overlaps y without being y", api);
    return CUDNN_STATUS_BAD_PARAM;
  }
  if (activation->mode == CUDNN_ACTIVATION_IDENTITY
      && algo != CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM) {
    complain ("%s: an identity activation with algorithm %d (only IMPLICIT_PRECOMP_GEMM)", api,
              (int) algo);
    return CUDNN_STATUS_NOT_SUPPORTED;
  }
  if ((st = check_algo (api, p, algo, workspace, workspace_bytes, &need)) != CUDNN_STATUS_SUCCESS)
    return st;
  return queue_conv (handle, p, algo, x, w, y, workspace, need,
                     { *static_cast<const float *> (alpha1), *static_cast<const float *> (alpha2),
                       z, bias, activation->mode == CUDNN_ACTIVATION_RELU,
                       activation->nan == CUDNN_PROPAGATE_NAN });
}

} // extern "C"
