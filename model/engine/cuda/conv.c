/* One convolution of the CUDA backend: y = conv(x) + bias (+ residual), ReLU where asked.
 * - BatchNorm is folded at export; bias, ReLU and the residual sum are fused into the
 *   convolution with cudnnConvolutionBiasActivationForward (residual as its z input) where
 *   cuDNN accepts it; otherwise cudnnConvolutionForward + hfam_cuda_bias_act.
 * - Split-K, where the output has few positions (the deep layers at batch 1, whose tiles fill
 *   few multiprocessors): the convolution as a grouped one over 2, 4 or 8 slices of its input
 *   channels (weights copied into that layout), the partial results summed with bias,
 *   residual and ReLU by hfam_cuda_split_k_sum.
 * - A 1x1 convolution may be one cuBLASLt matrix product, the bias and ReLU in its epilogue or
 *   by hfam_cuda_bias_act.
 * Which way each convolution takes is timed at plan (conv-search.c), for the batch: one
 * call runs conv_batch frames (cuDNN's N; the product's positions of them all). */
#include "cuda-backend.h"

/* Split-K is tried where the output has at most this many positions, and where each slice
 * still reduces over this many products per output. */
#define SPLIT_K_MAX_POSITIONS 4096
#define SPLIT_K_MIN_DEPTH 512

/* Whether convolution `id` may run split into `splits` slices of its input channels, and is
 * worth timing so. */
gboolean
split_k_applies (const CudaBackend *be, int id, int splits)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  const Step *s = &be->steps[id], *in = &be->steps[n->inputs[0]];
  /* tensor cores read a group's channels 8 halves at a time */
  const int align = be->dtype == HFAM_CUDA_F16 ? 8 : 1;

  return n->op == HFAM_OP_CONV && (size_t) s->w * s->h * be->base.batch <= SPLIT_K_MAX_POSITIONS
         && in->cs % (splits * align) == 0
         && in->cs / splits * n->conv.kernel * n->conv.kernel >= SPLIT_K_MIN_DEPTH;
}

/* Bytes of split-K's partial results, at the start of the workspace (split-K applies to
 * plain convolutions, which run the whole batch at once). */
size_t
split_k_partials_bytes (const CudaBackend *be, const Step *s, int splits)
{
  return align_up ((size_t) splits * s->cs * s->w * s->h * be->base.batch * elem (be));
}

/* The grouped convolution of convolution `id` split `splits` ways: its descriptors, and its
 * weights, group g being the KRSC weights' input channels [g cg, (g + 1) cg). At plan only:
 * the copies are on the legacy stream, and cuda_plan synchronises the device before any frame
 * runs. */
gboolean
prepare_split_k (CudaBackend *be, int id, int splits, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  Step *s = &be->steps[id];
  const HfamConvParams *p = s->conv;
  const int cin = be->steps[n->inputs[0]].cs, cg = cin / splits;
  const size_t e = elem (be), rows = (size_t) s->cs * p->kernel * p->kernel;

  cudaFree (s->split_weight);
  s->split_weight = NULL;
  CUDNN_TRY (cudnnSetTensor4dDescriptor (s->part_desc, CUDNN_TENSOR_NHWC, be->cudnn_dtype,
                                         be->base.batch, splits * s->cs, s->h, s->w), n->name);
  CUDNN_TRY (cudnnSetFilter4dDescriptor (s->split_w_desc, be->cudnn_dtype, CUDNN_TENSOR_NHWC,
                                         splits * s->cs, cg, p->kernel, p->kernel), n->name);
  CUDNN_TRY (cudnnSetConvolution2dDescriptor (s->split_conv_desc, p->pad, p->pad, p->stride,
                                              p->stride, p->dilation, p->dilation,
                                              CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
             n->name);
  CUDNN_TRY (cudnnSetConvolutionGroupCount (s->split_conv_desc, splits), n->name);
  CUDA_TRY (cudaMalloc (&s->split_weight, rows * cin * e), n->name);
  for (int g = 0; g < splits; g++)
    CUDA_TRY (cudaMemcpy2D ((char *) s->split_weight + g * rows * cg * e, cg * e,
                            be->weights + s->weight_offset + (size_t) g * cg * e, cin * e,
                            cg * e, rows, cudaMemcpyDeviceToDevice), n->name);
  return TRUE;
}

/* Whether convolution `id` is one matrix product, y[position][cout] = x[position][cin] W^T:
 * 1x1, stride 1, no padding (its maps are dense: only resizes, pools and scales write into
 * a concatenation's slice). */
gboolean
gemm_applies (const CudaBackend *be, int id)
{
#ifdef HFAM_HAVE_CUBLASLT
  const HfamConvParams *p = be->steps[id].conv;
  return be->lt && p->kernel == 1 && p->stride == 1 && p->pad == 0;
#else
  return FALSE;
#endif
}

#ifdef HFAM_HAVE_CUBLASLT
/* The layouts of convolution `id`'s product for the planned size, in cuBLASLt's column-major
 * terms: W is KRSC, so cin x cout with leading dimension cin (transposed by the descriptor),
 * x is cin x positions, y is cout x positions. */
gboolean
prepare_gemm (CudaBackend *be, int id, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  Step *s = &be->steps[id];
  const int cin = be->steps[n->inputs[0]].cs;
  /* a batch's maps follow one another: its positions are one matrix's columns */
  const uint64_t positions = (uint64_t) s->w * s->h * conv_batch (be, id);
  const cudaDataType_t type = be->dtype == HFAM_CUDA_F16 ? CUDA_R_16F : CUDA_R_32F;
  cublasLtMatrixLayout_t *layouts[3] = { &s->gemm_w, &s->gemm_x, &s->gemm_y };

  for (int k = 0; k < 3; k++)
    if (*layouts[k]) {
      cublasLtMatrixLayoutDestroy (*layouts[k]);
      *layouts[k] = NULL;
    }
  LT_TRY (cublasLtMatrixLayoutCreate (&s->gemm_w, type, cin, s->cs, cin), n->name);
  LT_TRY (cublasLtMatrixLayoutCreate (&s->gemm_x, type, cin, positions, cin), n->name);
  LT_TRY (cublasLtMatrixLayoutCreate (&s->gemm_y, type, s->cs, positions, s->cs), n->name);
  return TRUE;
}

/* The epilogue of a way: none (hfam_cuda_bias_act follows), or the bias and the ReLU. Both
 * attributes are set every time, so that a way runs with the descriptor it was timed with: an
 * unfused way timed before any fused one had no bias pointer, and at run time it had the one
 * that the fused ways' timing left (the prime suspect for cuBLASLt's run-time refusals on the
 * second GPU run, "an unsupported value or parameter"). */
gboolean
set_gemm_epilogue (Step *s, const ConvChoice *way, const void *bias, const char *what,
                   GError **error)
{
  const cublasLtEpilogue_t epilogue = !way->fused ? CUBLASLT_EPILOGUE_DEFAULT
                                      : s->conv->relu ? CUBLASLT_EPILOGUE_RELU_BIAS
                                                      : CUBLASLT_EPILOGUE_BIAS;
  const void *bias_pointer = way->fused ? bias : NULL;
  LT_TRY (cublasLtMatmulDescSetAttribute (s->gemm_desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue,
                                          sizeof epilogue), what);
  LT_TRY (cublasLtMatmulDescSetAttribute (s->gemm_desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER,
                                          &bias_pointer, sizeof bias_pointer), what);
  return TRUE;
}

/* y = x W^T (+ bias, ReLU where asked, in the epilogue when way->fused). */
static gboolean
queue_gemm (CudaBackend *be, Slot *slot, int id, int stream, const ConvChoice *way, int frame,
            void *ws, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  Step *s = &be->steps[id];
  const HfamNhwc x = value_nhwc_at (be, slot, n->inputs[0], frame);
  const HfamNhwc y = value_nhwc_at (be, slot, id, frame);
  void *w = conv_weight (be, slot, id, frame);
  const float one = 1.0f, zero = 0.0f;
  cublasStatus_t st;

  if (!set_gemm_epilogue (s, way, conv_bias (be, slot, id, frame), n->name, error))
    return FALSE;
  st = cublasLtMatmul (be->lt, s->gemm_desc, &one, w, s->gemm_w, x.data,
                       s->gemm_x, &zero, y.data, s->gemm_y, y.data, s->gemm_y, &way->gemm_algo,
                       ws, way->workspace, slot->streams[stream]);
  if (st != CUBLAS_STATUS_SUCCESS) {
    /* all that the call had, to tell a refused shape from a refused buffer */
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                 "cuda backend: %s: cuBLASLt's product (m %d, n %d, k %d, %s, epilogue %s, "
                 "weights %p, x %p, y %p, %zu bytes of workspace at %p) failed: %s", n->name,
                 s->cs, s->w * s->h * conv_batch (be, id), be->steps[n->inputs[0]].cs,
                 be->dtype == HFAM_CUDA_F16 ? "fp16" : "fp32", way->fused ? "bias" : "none",
                 w, x.data, y.data, way->workspace, ws,
                 cublasLtGetStatusString (st));
    return FALSE;
  }
  return TRUE;
}
#endif

/* y = conv(x) + bias (+ residual), ReLU where asked, the way `way` says: cuDNN's fused call,
 * the plain convolution and hfam_cuda_bias_act, split-K (the grouped convolution into the
 * start of the workspace, then hfam_cuda_split_k_sum), or cuBLASLt's product (with its
 * epilogue, or hfam_cuda_bias_act); `ws` holds way->workspace bytes. The descriptor's math
 * type must already be way->math (plan_conv leaves the chosen one set). */
gboolean
queue_conv (CudaBackend *be, Slot *slot, int id, int stream, const ConvChoice *way, int frame,
            void *ws, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  const Step *s = &be->steps[id];
  const HfamConvParams *p = s->conv;
  cudnnHandle_t h = slot->cudnn[stream];
  const int frames = conv_batch (be, id);
  /* a convolution's input, output and residual are whole maps, never slices */
  const HfamNhwc x = value_nhwc_at (be, slot, n->inputs[0], frame);
  const HfamNhwc y = value_nhwc_at (be, slot, id, frame);
  const gboolean residual = n->op == HFAM_OP_CONV && p->residual >= 0;
  const HfamNhwc z = residual ? value_nhwc_at (be, slot, p->residual, frame) : y;
  const float one = 1.0f, zero = 0.0f, alpha2 = residual ? 1.0f : 0.0f;
  void *w = conv_weight (be, slot, id, frame), *b = conv_bias (be, slot, id, frame);
  /* the bias and ReLU over the frames' maps as one map `frames` times as high */
  HfamNhwc yp = y, zp = z;

  yp.c = zp.c = s->cs;
  yp.h = zp.h = s->h * frames;
  if (way->splits > 1) {
    const size_t part_bytes = split_k_partials_bytes (be, s, way->splits);
    const HfamNhwc part = { ws, s->w, s->h * frames, way->splits * s->cs, way->splits * s->cs,
                            be->dtype };
    CUDNN_TRY (cudnnConvolutionForward (h, &one, s->x_desc, x.data, s->split_w_desc,
                                        s->split_weight, s->split_conv_desc, way->algo,
                                        (char *) ws + part_bytes, way->workspace - part_bytes,
                                        &zero, s->part_desc, part.data),
               n->name);
    CUDA_TRY (hfam_cuda_split_k_sum (&part, way->splits, b, residual ? &zp : NULL, p->relu, &yp,
                                     slot->streams[stream]), n->name);
    return TRUE;
  }
#ifdef HFAM_HAVE_CUBLASLT
  if (way->gemm) {
    if (!queue_gemm (be, slot, id, stream, way, frame, ws, error))
      return FALSE;
    if (way->fused)
      return TRUE;
  }
#endif
  if (way->fused && !way->gemm) {
    CUDNN_TRY (cudnnConvolutionBiasActivationForward (
                 h, &one, s->x_desc, x.data, s->w_desc, w, s->conv_desc, way->algo, ws,
                 way->workspace, &alpha2, s->y_desc, z.data, s->b_desc, b, be->relu,
                 s->y_desc, y.data),
               n->name);
    return TRUE;
  }
  if (!way->gemm)
    CUDNN_TRY (cudnnConvolutionForward (h, &one, s->x_desc, x.data, s->w_desc, w, s->conv_desc,
                                        way->algo, ws, way->workspace, &zero, s->y_desc,
                                        y.data),
               n->name);
  /* bias over the padded channels too (zeros), so padding stays zero */
  CUDA_TRY (hfam_cuda_bias_act (&yp, b, residual ? &zp : NULL, p->relu, &yp,
                                slot->streams[stream]), n->name);
  return TRUE;
}

gboolean
run_conv (CudaBackend *be, Slot *slot, int id, int stream, int frame, GError **error)
{
  Step *s = &be->steps[id];
  g_autoptr (GError) refused = NULL;

  if (queue_conv (be, slot, id, stream, &s->choice, frame, slot->workspace[stream],
                  s->choice.gemm ? &refused : error))
    return TRUE;
  if (!s->choice.gemm)
    return FALSE;
  /* cuBLASLt refused at run time a product that ran at plan (twice on the H200, before
   * set_gemm_epilogue set the bias pointer every time; none since, on an H100): cuDNN's
   * fastest plain way for this node from now on */
  g_warning ("%s; cuDNN from now on", refused->message);
  cudaGetLastError ();
  s->choice = s->fallback;
  CUDNN_TRY (cudnnSetConvolutionMathType (s->conv_desc, s->choice.math),
             be->base.graph->nodes[id].name);
  return queue_conv (be, slot, id, stream, &s->choice, frame, slot->workspace[stream], error);
}
