/* The way each convolution of the CUDA backend runs (conv.c), chosen at plan: the algorithm of
 * each convolution shape is chosen once by cudnnFindConvolutionForwardAlgorithmEx and timing
 * (the fastest deterministic one whose workspace fits the plan's WORKSPACE_CAP, fused or not)
 * and cached for the process. Where the output has few positions, split-K is timed too:
 * HFAM_CUDA_SPLIT_K=0 leaves it out; HFAM_CUDA_SPLIT_K=2|4|8 takes it wherever it applies (for
 * the tests). Likewise cuBLASLt's product for 1x1 convolutions: HFAM_CUDA_GEMM=0 leaves it
 * out, HFAM_CUDA_GEMM=1 takes it wherever it applies. */
#include "cuda-backend.h"

/* The slices split-K tries (HFAM_CUDA_SPLIT_K may force one of them). */
const int split_k_ways[3] = { 2, 4, 8 };
/* cuBLASLt's heuristic candidates timed per 1x1 convolution and epilogue */
#define GEMM_CANDIDATES 8

/* Algorithm choices by device, precision and convolution shape, for the whole process: every
 * context on the same device reuses them (cuDNN's search costs seconds on a deep network). */
static GHashTable *choice_cache;
static GMutex choice_lock;

/* Milliseconds per run of convolution `id` done `way` (the best of a few runs after a warm-up),
 * or a negative number if cuDNN refuses that way. */
static float
time_conv (CudaBackend *be, Slot *slot, int id, int stream, const ConvChoice *way, void *ws)
{
  const cudaStream_t st = slot->streams[stream];
  const Step *s = &be->steps[id];
  cudaEvent_t start = NULL, stop = NULL;
  float best = -1.0f;

  if ((!way->gemm
       && cudnnSetConvolutionMathType (way->splits > 1 ? s->split_conv_desc : s->conv_desc,
                                       way->math) != CUDNN_STATUS_SUCCESS)
      || cudaEventCreate (&start) != cudaSuccess || cudaEventCreate (&stop) != cudaSuccess)
    goto out;
  for (int r = 0; r < 4; r++) {
    g_autoptr (GError) error = NULL;
    float ms;
    if (cudaEventRecord (start, st) != cudaSuccess
        || !queue_conv (be, slot, id, stream, way, 0, ws, &error)
        || cudaEventRecord (stop, st) != cudaSuccess || cudaEventSynchronize (stop) != cudaSuccess
        || cudaEventElapsedTime (&ms, start, stop) != cudaSuccess) {
      best = -1.0f;
      break;
    }
    if (r > 0)  /* the first run loads the kernel */
      best = best < 0 ? ms : MIN (best, ms);
  }
out:
  cudaGetLastError ();
  if (start)
    cudaEventDestroy (start);
  if (stop)
    cudaEventDestroy (stop);
  return best;
}

/* Times `way` of convolution `id` where its workspace fits the search's, and keeps it in
 * `found` / `best_ms` when it is the fastest so far (best_ms < 0: none yet). */
static void
consider_way (CudaBackend *be, int id, const ConvChoice *way, void *find_ws, size_t find_ws_size,
              ConvChoice *found, float *best_ms)
{
  float ms;

  if (way->workspace > find_ws_size)
    return;
  ms = time_conv (be, &be->slots[0], id, node_stream (be, id), way, find_ws);
  if (ms >= 0 && (*best_ms < 0 || ms < *best_ms)) {
    *best_ms = ms;
    *found = *way;
  }
}

/* Times every plain way of convolution `id` (each deterministic algorithm cuDNN's search finds
 * within the search's workspace, fused where it has a ReLU and not), keeping the fastest in
 * `found` / `best_ms` (best_ms < 0: none yet). On slot 0's buffers, at plan. */
static gboolean
time_plain_ways (CudaBackend *be, int id, void *find_ws, size_t find_ws_size, ConvChoice *found,
                 float *best_ms, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  Step *s = &be->steps[id];
  const HfamConvParams *p = s->conv;
  Slot *slot = &be->slots[0];
  const int stream = node_stream (be, id);
  const HfamNhwc x = value_nhwc (be, slot, n->inputs[0]), y = value_nhwc (be, slot, id);
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
  int n_perf = 0;

  CUDNN_TRY (cudnnFindConvolutionForwardAlgorithmEx (
               slot->cudnn[stream], s->x_desc, x.data, s->w_desc, conv_weight (be, slot, id, 0),
               s->conv_desc, s->y_desc, y.data, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n_perf,
               perf, find_ws, find_ws_size),
             n->name);
  for (int k = 0; k < n_perf; k++) {
    /* deterministic: the same frame gives the same matte on any stream */
    if (perf[k].status != CUDNN_STATUS_SUCCESS || perf[k].memory > find_ws_size
        || perf[k].determinism != CUDNN_DETERMINISTIC)
      continue;
    /* fp32 stays on FMA: TF32 would round the inputs to 10 bits */
    for (int fused = 0; fused <= (p->relu ? 1 : 0); fused++) {
      ConvChoice way = { .algo = perf[k].algo,
                         .math = be->dtype == HFAM_CUDA_F16 ? perf[k].mathType : CUDNN_FMA_MATH,
                         .fused = fused, .splits = 1 };
      CUDNN_TRY (cudnnSetConvolutionMathType (s->conv_desc, way.math), n->name);
      if (cudnnGetConvolutionForwardWorkspaceSize (slot->cudnn[stream], s->x_desc, s->w_desc,
                                                   s->conv_desc, s->y_desc, way.algo,
                                                   &way.workspace) != CUDNN_STATUS_SUCCESS)
        way.workspace = 0;
      way.workspace = MAX (way.workspace, perf[k].memory);
      consider_way (be, id, &way, find_ws, find_ws_size, found, best_ms);
    }
  }
  return TRUE;
}

/* The same for split-K, each number of slices that applies (only be->split_k when forced);
 * a grouped convolution that cuDNN does not take is a candidate less. */
static gboolean
time_split_ways (CudaBackend *be, int id, void *find_ws, size_t find_ws_size, ConvChoice *found,
                 float *best_ms, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  Step *s = &be->steps[id];
  Slot *slot = &be->slots[0];
  const int stream = node_stream (be, id);
  const HfamNhwc x = value_nhwc (be, slot, n->inputs[0]);
  const cudnnMathType_t math = be->dtype == HFAM_CUDA_F16 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
  cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];

  for (guint w = 0; w < G_N_ELEMENTS (split_k_ways); w++) {
    const int splits = split_k_ways[w];
    const size_t part_bytes = split_k_partials_bytes (be, s, splits);
    cudnnStatus_t st;
    int n_perf = 0;
    if ((be->split_k > 0 && splits != be->split_k) || !split_k_applies (be, id, splits)
        || part_bytes >= find_ws_size)
      continue;
    if (!prepare_split_k (be, id, splits, error))
      return FALSE;
    CUDNN_TRY (cudnnSetConvolutionMathType (s->split_conv_desc, math), n->name);
    /* the partial results at the start of the search's workspace */
    st = cudnnFindConvolutionForwardAlgorithmEx (
      slot->cudnn[stream], s->x_desc, x.data, s->split_w_desc, s->split_weight,
      s->split_conv_desc, s->part_desc, find_ws, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n_perf,
      perf, (char *) find_ws + part_bytes, find_ws_size - part_bytes);
    if (st != CUDNN_STATUS_SUCCESS) {
      g_debug ("cuda backend: %s: split-K %d: %s", n->name, splits, cudnnGetErrorString (st));
      continue;
    }
    for (int k = 0; k < n_perf; k++) {
      ConvChoice way = { .algo = perf[k].algo,
                         .math = be->dtype == HFAM_CUDA_F16 ? perf[k].mathType : CUDNN_FMA_MATH,
                         .splits = splits };
      size_t conv_ws = 0;
      if (perf[k].status != CUDNN_STATUS_SUCCESS || perf[k].determinism != CUDNN_DETERMINISTIC)
        continue;
      CUDNN_TRY (cudnnSetConvolutionMathType (s->split_conv_desc, way.math), n->name);
      if (cudnnGetConvolutionForwardWorkspaceSize (slot->cudnn[stream], s->x_desc,
                                                   s->split_w_desc, s->split_conv_desc,
                                                   s->part_desc, way.algo, &conv_ws)
          != CUDNN_STATUS_SUCCESS)
        conv_ws = 0;
      way.workspace = part_bytes + MAX (conv_ws, perf[k].memory);
      consider_way (be, id, &way, find_ws, find_ws_size, found, best_ms);
    }
  }
  return TRUE;
}

#ifdef HFAM_HAVE_CUBLASLT
/* The largest power of two, up to cuBLASLt's default 256, that divides the address of value
 * `id` in every frame of a batch (an SK projection runs a frame at a time, and the frames'
 * maps need not start on 256 bytes). */
static uint32_t
frame_alignment (const CudaBackend *be, int id)
{
  const Step *s = &be->steps[id];
  const Slot *slot = &be->slots[0];
  const size_t start = (size_t) ((char *) value_nhwc (be, slot, id).data - (char *) slot->arena);
  const size_t stride = be->steps[s->view_of >= 0 ? s->view_of : id].bytes;
  uint32_t align = 256;

  while (align > 1 && ((start | stride) & (align - 1)))
    align /= 2;
  return align;
}

/* The alignments a batch's frame-by-frame product can promise for x (B) and y (C, D); the
 * weights (A) of each frame start on 256 bytes (sk_stride). */
static gboolean
set_frame_alignment (CudaBackend *be, int id, cublasLtMatmulPreference_t preference)
{
  const uint32_t x = frame_alignment (be, be->base.graph->nodes[id].inputs[0]);
  const uint32_t y = frame_alignment (be, id);

  return cublasLtMatmulPreferenceSetAttribute (preference,
                                               CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &x,
                                               sizeof x) == CUBLAS_STATUS_SUCCESS
         && cublasLtMatmulPreferenceSetAttribute (preference,
                                                  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &y,
                                                  sizeof y) == CUBLAS_STATUS_SUCCESS
         && cublasLtMatmulPreferenceSetAttribute (preference,
                                                  CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &y,
                                                  sizeof y) == CUBLAS_STATUS_SUCCESS;
}
#endif

/* The same for cuBLASLt's product (a 1x1 convolution): the heuristic's first GEMM_CANDIDATES
 * algorithms within the search's workspace, each without an epilogue (hfam_cuda_bias_act
 * after) and, where there is no residual, with the bias (and ReLU) in the epilogue. */
static gboolean
time_gemm_ways (CudaBackend *be, int id, void *find_ws, size_t find_ws_size, ConvChoice *found,
                float *best_ms, GError **error)
{
#ifdef HFAM_HAVE_CUBLASLT
  const HfamNode *n = &be->base.graph->nodes[id];
  Step *s = &be->steps[id];
  const gboolean residual = n->op == HFAM_OP_CONV && s->conv->residual >= 0;
  const uint64_t max_workspace = find_ws_size;
  cublasLtMatmulHeuristicResult_t results[GEMM_CANDIDATES];
  cublasLtMatmulPreference_t preference = NULL;
  gboolean ok = TRUE;

  if (!prepare_gemm (be, id, error))
    return FALSE;
  LT_TRY (cublasLtMatmulPreferenceCreate (&preference), n->name);
  if (cublasLtMatmulPreferenceSetAttribute (preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                            &max_workspace, sizeof max_workspace)
        != CUBLAS_STATUS_SUCCESS
      || (conv_batch (be, id) < be->base.batch && !set_frame_alignment (be, id, preference))) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                 "cuda backend: %s: cuBLASLt refuses a workspace or alignment preference",
                 n->name);
    ok = FALSE;
  }
  for (int fused = 0; ok && fused <= (residual ? 0 : 1); fused++) {
    const ConvChoice epilogue = { .fused = fused, .splits = 1, .gemm = TRUE };
    int n_results = 0;
    cublasStatus_t st;
    ok = set_gemm_epilogue (s, &epilogue, conv_bias (be, &be->slots[0], id, 0), n->name,
                          error);
    if (!ok)
      break;
    st = cublasLtMatmulAlgoGetHeuristic (be->lt, s->gemm_desc, s->gemm_w, s->gemm_x, s->gemm_y,
                                         s->gemm_y, preference, GEMM_CANDIDATES, results,
                                         &n_results);
    if (st != CUBLAS_STATUS_SUCCESS) {
      g_debug ("cuda backend: %s: cuBLASLt has no algorithm (epilogue %d): %s", n->name, fused,
               cublasLtGetStatusString (st));
      continue;
    }
    for (int k = 0; k < n_results; k++) {
      ConvChoice way = epilogue;
      if (results[k].state != CUBLAS_STATUS_SUCCESS)
        continue;
      way.math = be->dtype == HFAM_CUDA_F16 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
      way.workspace = results[k].workspaceSize;
      way.gemm_algo = results[k].algo;
      consider_way (be, id, &way, find_ws, find_ws_size, found, best_ms);
    }
  }
  cublasLtMatmulPreferenceDestroy (preference);
  return ok;
#else
  return TRUE;
#endif
}

/* Descriptors for the planned size, and the way to run the convolution: every algorithm that
 * cuDNN's search finds within WORKSPACE_CAP, each fused (where cuDNN takes it) and unfused with
 * hfam_cuda_bias_act, and split-K where it applies, timed as it will run; the fastest wins.
 * cuDNN's own ranking times the bare convolution only, and its fused call often takes a slow
 * kernel. Chosen once per shape, on slot 0's buffers (their contents do not matter). */
gboolean
plan_conv (CudaBackend *be, int id, void *find_ws, size_t find_ws_size, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  Step *s = &be->steps[id];
  const HfamConvParams *p = s->conv;
  const Step *in = &be->steps[n->inputs[0]];
  const int stream = node_stream (be, id);
  const gboolean residual = n->op == HFAM_OP_CONV && p->residual >= 0;
  const cudnnMathType_t math = be->dtype == HFAM_CUDA_F16 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
  const int frames = conv_batch (be, id);
  /* (the batch, not `frames`: an SK projection's product in a batch has other alignments) */
  g_autofree char *key = g_strdup_printf ("%d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d",
                                          be->device, be->dtype, in->cs, s->cs, p->kernel,
                                          p->stride, p->dilation, p->pad, in->w, in->h, p->relu,
                                          residual, be->split_k, be->gemm,
                                          n->op == HFAM_OP_CONV, be->base.batch);
  ConvChoice *choice, found, fallback = { 0 };
  int on, oc, oh, ow;

  g_mutex_lock (&choice_lock);
  if (!choice_cache)
    choice_cache = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  choice = g_hash_table_lookup (choice_cache, key);
  if (choice) {
    /* (the cache holds the choice and its fallback) */
    found = choice[0];
    fallback = choice[1];
  }
  g_mutex_unlock (&choice_lock);
  choice = choice ? &found : NULL;

  CUDNN_TRY (cudnnSetTensor4dDescriptor (s->x_desc, CUDNN_TENSOR_NHWC, be->cudnn_dtype,
                                         frames, in->cs, in->h, in->w), n->name);
  CUDNN_TRY (cudnnSetTensor4dDescriptor (s->y_desc, CUDNN_TENSOR_NHWC, be->cudnn_dtype,
                                         frames, s->cs, s->h, s->w), n->name);
  CUDNN_TRY (cudnnSetTensor4dDescriptor (s->b_desc, CUDNN_TENSOR_NCHW, be->cudnn_dtype, 1,
                                         s->cs, 1, 1), n->name);
  CUDNN_TRY (cudnnSetFilter4dDescriptor (s->w_desc, be->cudnn_dtype, CUDNN_TENSOR_NHWC, s->cs,
                                         in->cs, p->kernel, p->kernel), n->name);
  CUDNN_TRY (cudnnSetConvolution2dDescriptor (s->conv_desc, p->pad, p->pad, p->stride,
                                              p->stride, p->dilation, p->dilation,
                                              CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
             n->name);
  CUDNN_TRY (cudnnSetConvolutionMathType (s->conv_desc, math), n->name);
  CUDNN_TRY (cudnnGetConvolution2dForwardOutputDim (s->conv_desc, s->x_desc, s->w_desc, &on,
                                                    &oc, &oh, &ow), n->name);
  if (on != frames || oc != s->cs || oh != s->h || ow != s->w) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                 "cuda backend: %s: cuDNN's output %dx%dx%dx%d is not the graph's %dx%dx%dx%d",
                 n->name, on, oc, oh, ow, frames, s->cs, s->h, s->w);
    return FALSE;
  }

  /* A product from the cache runs once on this node's buffers before it is taken: it is what
   * this node did not run at plan, and cuBLASLt has refused at run time products that ran at
   * plan (see run_conv). */
#ifdef HFAM_HAVE_CUBLASLT
  if (choice && choice->gemm) {
    if (!prepare_gemm (be, id, error))
      return FALSE;
    if (choice->workspace > find_ws_size
        || time_conv (be, &be->slots[0], id, stream, choice, find_ws) < 0) {
      g_debug ("cuda backend: %s: the cached cuBLASLt product does not run here; timing afresh",
               n->name);
      choice = NULL;
    }
  }
#endif

  if (!choice) {
    const gboolean force_gemm = be->gemm > 0 && gemm_applies (be, id);
    const gboolean force_split = !force_gemm && be->split_k > 0
                                 && split_k_applies (be, id, be->split_k);
    float best_ms = -1.0f, plain_ms = -1.0f;

    /* cuDNN's plain ways: a candidate unless another way is forced, and a product's fallback
     * should cuBLASLt refuse it at run time (run_conv) */
    fallback = (ConvChoice) { 0 };
    if (!time_plain_ways (be, id, find_ws, find_ws_size, &fallback, &plain_ms, error))
      return FALSE;
    if (!force_gemm && !force_split) {
      found = fallback;
      best_ms = plain_ms;
    }
    if ((!force_gemm && be->split_k != 0
         && !time_split_ways (be, id, find_ws, find_ws_size, &found, &best_ms, error))
        || (be->gemm != 0 && gemm_applies (be, id)
            && !time_gemm_ways (be, id, find_ws, find_ws_size, &found, &best_ms, error)))
      return FALSE;
    /* a forced way that cuDNN or cuBLASLt does not take: the plain ways after all */
    if (best_ms < 0 && plain_ms >= 0) {
      found = fallback;
      best_ms = plain_ms;
    }
    if (best_ms >= 0 && found.gemm && plain_ms < 0) {
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                   "cuda backend: %s: cuDNN has no algorithm to fall back on", n->name);
      return FALSE;
    }
    if (best_ms < 0) {
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                   "cuda backend: %s: cuDNN has no convolution algorithm for %dx%dx%d -> "
                   "%dx%dx%d (kernel %d, stride %d, dilation %d) within %zu MiB of workspace",
                   n->name, in->w, in->h, in->cs, s->w, s->h, s->cs, p->kernel, p->stride,
                   p->dilation, find_ws_size >> 20);
      return FALSE;
    }
    choice = &found;
    g_debug ("cuda backend: %s: %s %d, math %d, %s, split %d way(s), %zu bytes of "
             "workspace, %.3f ms", n->name, choice->gemm ? "cuBLASLt" : "cuDNN algorithm",
             choice->algo, choice->math, choice->fused ? "fused" : "not fused", choice->splits,
             choice->workspace, best_ms);
    {
      const ConvChoice pair[2] = { *choice, fallback };
      g_mutex_lock (&choice_lock);
      g_hash_table_replace (choice_cache, g_steal_pointer (&key), g_memdup2 (pair, sizeof pair));
      g_mutex_unlock (&choice_lock);
    }
  }
  /* (a product's layouts for this size are made: by its timing, or by the cache's check) */
  s->choice = *choice;
  s->fallback = fallback;
  if (s->choice.splits > 1) {
    /* (the search may have left another split's weights) */
    if (!prepare_split_k (be, id, s->choice.splits, error))
      return FALSE;
    CUDNN_TRY (cudnnSetConvolutionMathType (s->split_conv_desc, s->choice.math), n->name);
  } else {
    cudaFree (s->split_weight);
    s->split_weight = NULL;
    CUDNN_TRY (cudnnSetConvolutionMathType (s->conv_desc, s->choice.math), n->name);
  }
  be->workspace_need[stream] = MAX (be->workspace_need[stream], s->choice.workspace);
  if (s->choice.gemm)
    be->workspace_need[stream] = MAX (be->workspace_need[stream], s->fallback.workspace);
  return TRUE;
}
