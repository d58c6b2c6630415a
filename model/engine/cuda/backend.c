/* The CUDA backend: convolutions by cuDNN (legacy API) on NHWC maps, fp16 on tensor cores by
 * default or fp32 (FMA only, no TF32); everything between convolutions and the heads by the
 * CUDA ops of kernels/ (each with its CPU twin).
 *
 * It is a module of its own (libhfam-cuda.so), which libhfam opens when a context first asks
 * for CUDA (model/engine/cuda-module.c): only the module links cudart, cuDNN and cuBLASLt, so
 * that libhfam, the tools and the GStreamer plugin load where those are missing. Its files:
 * - backend.c: the backend made (its CUDA objects, the settings of the environment) and freed;
 * - weights.c: the weights, converted and uploaded once;
 * - plan.c: the values' buffers, and all that is planned for an input size;
 * - conv.c: one convolution, by cuDNN, split-K or cuBLASLt;
 * - conv-search.c: the way each convolution runs, chosen by timing;
 * - queue.c: a frame's nodes and stages on the lanes' streams, and its CUDA graph;
 * - frames.c: frames in host memory, and the frame slots in flight;
 * - device-frames.c: frames in device memory, and the kept matte;
 * - profile.c: the time of every node (HFAM_CUDA_PROFILE).
 *
 * With HfamCudaOptions.current_context everything runs on the CUDA context that was
 * current when the backend was made (a GstCudaContext, say) and the device is never set,
 * which would replace that context; each call checks that it is current again. A batch
 * group's lane, on threads of its own, is given its members' context instead
 * (HfamCudaBackendOptions.context), and makes it current itself. A group's members hold
 * frames-only backends: their device frames' preprocessing and kept mattes, without a
 * network (HfamCudaBackendOptions.frames_only; device-frames.c). The driver
 * API's cuCtxGetCurrent is reached through the runtime, so no libcuda at link time.
 * Set HFAM_CUDA_SYNC=1 in the environment to synchronise after every node (graphs off, one
 * stream): a failing kernel is then reported with the node that queued it.
 * HFAM_CUDA_ONE_STREAM=1 runs every lane on the main stream, to measure what the lanes gain.
 * HFAM_CUDA_PROFILE=1: profile.c; HFAM_CUDA_SPLIT_K and HFAM_CUDA_GEMM: conv-search.c. */
#include "cuda-backend.h"

#include <stdlib.h>
#include <string.h>

/* Makes the backend's device current on the calling thread: its primary context by
 * cudaSetDevice; for a backend given a context (HfamCudaBackendOptions.context), that context
 * by cuCtxSetCurrent; for one on the caller's context, a check that this context is current
 * (setting the device would replace it). */
gboolean
use_device (CudaBackend *be, const char *what, GError **error)
{
  CUcontext current = NULL;

  if (!be->context) {
    CUDA_TRY (cudaSetDevice (be->device), what);
    return TRUE;
  }
  if (be->get_current_context (&current) == CUDA_SUCCESS && current != be->context
      && be->set_current_context && be->set_current_context (be->context) == CUDA_SUCCESS)
    current = be->context;
  if (current != be->context) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                 "cuda backend: %s: the CUDA context the backend was made on is not current "
                 "on this thread", what);
    return FALSE;
  }
  return TRUE;
}

static void
cuda_free (HfamBackend *base)
{
  CudaBackend *be = (CudaBackend *) base;
  const HfamGraph *g = base->graph;
  g_autoptr (GError) error = NULL;

  if (!use_device (be, "free", &error))
    g_warning ("%s", error->message);
  if (be->node_ms) {
    print_profile (be);
    for (int i = 0; i < 2 * g->n_nodes; i++)
      if (be->node_events[i])
        cudaEventDestroy (be->node_events[i]);
    g_free (be->node_events);
    g_free (be->node_ms);
  }
  clear_plan (be);
  for (int k = 0; k < MAX_DEPTH; k++) {
    Slot *slot = &be->slots[k];
    for (int j = 0; j < N_STREAMS; j++) {
      if (slot->cudnn[j])
        cudnnDestroy (slot->cudnn[j]);
      if (slot->streams[j])
        cudaStreamDestroy (slot->streams[j]);
    }
    for (int j = 0; j < N_STREAMS; j++)
      if (slot->lane_done[j])
        cudaEventDestroy (slot->lane_done[j]);
    for (int i = 0; slot->node_done && i < g->n_nodes; i++)
      if (slot->node_done[i])
        cudaEventDestroy (slot->node_done[i]);
    g_free (slot->node_done);
    if (slot->frame_start)
      cudaEventDestroy (slot->frame_start);
    if (slot->frame_done)
      cudaEventDestroy (slot->frame_done);
    for (int t = 0; t < 2; t++)
      hfam_cuda_filter_free (&slot->to_input[t]);
  }
  if (be->matte_stream)
    cudaStreamDestroy (be->matte_stream);
  cudaFree (be->kept);
  for (int t = 0; t < 2; t++) {
    hfam_cuda_filter_free (&be->kept_to_frame[t]);
    hfam_cuda_filter_free (&be->edge_identity[t]);
    hfam_cuda_filter_free (&be->follow_to_kept[t]);
  }
  cudaFree (be->follow_input);
  cudaFree (be->edge_matte);
  cudaFree (be->flow_scratch);
  cudaFree (be->islands_scratch);
  cudaFree (be->bars_found);
  cudaFree (be->still);
  cudaFree (be->held);
  cudaFree (be->grey[0]);
  cudaFree (be->grey[1]);
  cudaFree (be->foreground_workspace);
  if (be->refine_params.radius)
    hfam_cuda_refine_plan_free (&be->refine_plan);
  if (be->steps)
    for (int i = 0; i < g->n_nodes; i++) {
      Step *s = &be->steps[i];
      if (s->x_desc)
        cudnnDestroyTensorDescriptor (s->x_desc);
      if (s->y_desc)
        cudnnDestroyTensorDescriptor (s->y_desc);
      if (s->b_desc)
        cudnnDestroyTensorDescriptor (s->b_desc);
      if (s->w_desc)
        cudnnDestroyFilterDescriptor (s->w_desc);
      if (s->conv_desc)
        cudnnDestroyConvolutionDescriptor (s->conv_desc);
      if (s->part_desc)
        cudnnDestroyTensorDescriptor (s->part_desc);
      if (s->split_w_desc)
        cudnnDestroyFilterDescriptor (s->split_w_desc);
      if (s->split_conv_desc)
        cudnnDestroyConvolutionDescriptor (s->split_conv_desc);
      cudaFree (s->split_weight);
#ifdef HFAM_HAVE_CUBLASLT
      if (s->gemm_desc)
        cublasLtMatmulDescDestroy (s->gemm_desc);
      if (s->gemm_w)
        cublasLtMatrixLayoutDestroy (s->gemm_w);
      if (s->gemm_x)
        cublasLtMatrixLayoutDestroy (s->gemm_x);
      if (s->gemm_y)
        cublasLtMatrixLayoutDestroy (s->gemm_y);
#endif
    }
#ifdef HFAM_HAVE_CUBLASLT
  if (be->lt)
    cublasLtDestroy (be->lt);
#endif
  if (be->relu)
    cudnnDestroyActivationDescriptor (be->relu);
  release_weights (be);
  g_free (be->steps);
  g_free (be);
}

static const HfamBackendOps cuda_ops = {
  .name = "cuda",
  .plan = cuda_plan,
  .set_input = cuda_set_input,
  .run_stage = cuda_run_stage,
  .synchronize = cuda_synchronize,
  .get_outputs = cuda_collect_frame,
  .free = cuda_free,
  .queue_frame = cuda_queue_frame,
  .collect_frame = cuda_collect_frame,
  .queue_batch = cuda_queue_batch,
  .collect_batch = cuda_collect_batch,
  .batch_done = cuda_batch_done,
  .queue_device_batch = cuda_queue_device_batch,
};

/* The host path's ops of a frames-only backend, which has no network to run them on. */
static gboolean
no_network (HfamBackend *base, GError **error)
{
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
               "cuda backend: a frames-only backend runs no network: its batch group's lane "
               "does");
  return FALSE;
}

static gboolean
no_network_input (HfamBackend *base, const float *input, GError **error)
{
  return no_network (base, error);
}

static gboolean
no_network_stage (HfamBackend *base, HfamStage stage, GError **error)
{
  return no_network (base, error);
}

static gboolean
no_network_outputs (HfamBackend *base, HfamOutputs *out, GError **error)
{
  return no_network (base, error);
}

static const HfamBackendOps cuda_frames_ops = {
  .name = "cuda",
  .plan = cuda_plan,
  .set_input = no_network_input,
  .run_stage = no_network_stage,
  .synchronize = cuda_synchronize,
  .get_outputs = no_network_outputs,
  .free = cuda_free,
};

static gboolean
create_objects (CudaBackend *be, GError **error)
{
  const HfamGraph *g = be->base.graph;

  for (int k = 0; k < be->depth; k++) {
    Slot *slot = &be->slots[k];
    for (int j = 0; j < be->n_streams; j++) {
      CUDA_TRY (cudaStreamCreateWithFlags (&slot->streams[j], cudaStreamNonBlocking), "streams");
      if (!be->frames_only) {
        CUDNN_TRY (cudnnCreate (&slot->cudnn[j]), "cuDNN");
        CUDNN_TRY (cudnnSetStream (slot->cudnn[j], slot->streams[j]), "cuDNN");
      }
      CUDA_TRY (cudaEventCreateWithFlags (&slot->lane_done[j], cudaEventDisableTiming),
                "events");
    }
    slot->node_done = g_new0 (cudaEvent_t, g->n_nodes);
    for (int i = 0; i < g->n_nodes && be->n_streams > 1; i++)
      if (g->lane_signals[i])
        CUDA_TRY (cudaEventCreateWithFlags (&slot->node_done[i], cudaEventDisableTiming),
                  g->nodes[i].name);
    CUDA_TRY (cudaEventCreateWithFlags (&slot->frame_start, cudaEventDisableTiming), "events");
    CUDA_TRY (cudaEventCreateWithFlags (&slot->frame_done, cudaEventDisableTiming), "events");
  }
  if (be->frames_only)
    return TRUE;  /* no convolutions */
  CUDNN_TRY (cudnnCreateActivationDescriptor (&be->relu), "cuDNN");
  CUDNN_TRY (cudnnSetActivationDescriptor (be->relu, CUDNN_ACTIVATION_RELU, CUDNN_PROPAGATE_NAN,
                                           0.0), "cuDNN");
  for (int i = 0; i < g->n_nodes; i++) {
    Step *s = &be->steps[i];
    if (!s->is_conv)
      continue;
    CUDNN_TRY (cudnnCreateTensorDescriptor (&s->x_desc), g->nodes[i].name);
    CUDNN_TRY (cudnnCreateTensorDescriptor (&s->y_desc), g->nodes[i].name);
    CUDNN_TRY (cudnnCreateTensorDescriptor (&s->b_desc), g->nodes[i].name);
    CUDNN_TRY (cudnnCreateFilterDescriptor (&s->w_desc), g->nodes[i].name);
    CUDNN_TRY (cudnnCreateConvolutionDescriptor (&s->conv_desc), g->nodes[i].name);
    CUDNN_TRY (cudnnCreateTensorDescriptor (&s->part_desc), g->nodes[i].name);
    CUDNN_TRY (cudnnCreateFilterDescriptor (&s->split_w_desc), g->nodes[i].name);
    CUDNN_TRY (cudnnCreateConvolutionDescriptor (&s->split_conv_desc), g->nodes[i].name);
  }
#ifdef HFAM_HAVE_CUBLASLT
  if (be->gemm != 0) {
    const cublasStatus_t st = cublasLtCreate (&be->lt);
    if (st != CUBLAS_STATUS_SUCCESS) {
      /* cuDNN does every convolution then */
      g_warning ("cuda backend: cuBLASLt does not start (%s): 1x1 convolutions on cuDNN only",
                 cublasLtGetStatusString (st));
      be->lt = NULL;
    }
  }
  for (int i = 0; i < g->n_nodes; i++) {
    const cublasOperation_t transpose = CUBLAS_OP_T;
    Step *s = &be->steps[i];
    if (!s->is_conv || !gemm_applies (be, i))
      continue;
    /* fp32 accumulation, also for fp16 maps; plain fp32 products, never TF32 */
    LT_TRY (cublasLtMatmulDescCreate (&s->gemm_desc, CUBLAS_COMPUTE_32F, CUDA_R_32F),
            g->nodes[i].name);
    LT_TRY (cublasLtMatmulDescSetAttribute (s->gemm_desc, CUBLASLT_MATMUL_DESC_TRANSA,
                                            &transpose, sizeof transpose), g->nodes[i].name);
  }
#endif
  return TRUE;
}

/* The driver API's function `name` (of CUDA 4.0's ABI), reached through the runtime: no
 * libcuda at link time. NULL, with an error, where the driver lacks it. */
static void *
driver_function (const char *name, GError **error)
{
  enum cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
  void *fn = NULL;
  const cudaError_t err = cudaGetDriverEntryPointByVersion (name, &fn, 4000, cudaEnableDefault,
                                                            &found);

  if (err == cudaSuccess && found == cudaDriverEntryPointSuccess && fn)
    return fn;
  cudaGetLastError ();
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
               "cuda backend: the driver's %s is not to be found (%s, query result %d)", name,
               cudaGetErrorString (err), found);
  return NULL;
}

/* For HfamCudaOptions.current_context: the context current on the calling thread, its device,
 * and the driver's cuCtxGetCurrent (reached through the runtime). */
static gboolean
find_current_context (PFN_cuCtxGetCurrent_v4000 *get_current, CUcontext *context, int *device,
                      GError **error)
{
  cudaError_t err;

  if (!(*get_current = (PFN_cuCtxGetCurrent_v4000) driver_function ("cuCtxGetCurrent", error)))
    return FALSE;
  if ((*get_current) (context) != CUDA_SUCCESS || !*context) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                 "cuda backend: asked to run on the calling thread's CUDA context, but none is "
                 "current: push one first");
    return FALSE;
  }
  if ((err = cudaGetDevice (device)) != cudaSuccess) {
    cudaGetLastError ();
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                 "cuda backend: the current CUDA context's device: cudaGetDevice failed: %s",
                 cudaGetErrorString (err));
    return FALSE;
  }
  return TRUE;
}

/* For HfamCudaBackendOptions.context: the driver's cuCtxSetCurrent (reached through the
 * runtime), with `context` made current on the calling thread. */
static gboolean
bind_context (CUcontext context, PFN_cuCtxSetCurrent_v4000 *set_current, GError **error)
{
  CUresult res;

  if (!(*set_current = (PFN_cuCtxSetCurrent_v4000) driver_function ("cuCtxSetCurrent", error)))
    return FALSE;
  if ((res = (*set_current) (context)) != CUDA_SUCCESS) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                 "cuda backend: the CUDA context to run on cannot be made current (driver "
                 "error %d)", (int) res);
    return FALSE;
  }
  return TRUE;
}

/* HFAM_CUDA_SPLIT_K: unset, -1 (split-K timed against the rest); 0 (never); 2, 4 or 8 (those
 * slices wherever split-K applies). Anything else is ignored with a warning. */
static int
split_k_setting (void)
{
  const char *value = g_getenv ("HFAM_CUDA_SPLIT_K");

  if (!value || !value[0])
    return -1;
  if (strcmp (value, "0") == 0)
    return 0;
  for (guint w = 0; w < G_N_ELEMENTS (split_k_ways); w++)
    if (atoi (value) == split_k_ways[w])
      return split_k_ways[w];
  g_warning ("HFAM_CUDA_SPLIT_K=%s: want 0, 2, 4 or 8; split-K is timed as usual", value);
  return -1;
}

/* HFAM_CUDA_GEMM: unset, -1 (cuBLASLt's product timed against cuDNN for 1x1 convolutions);
 * 0 (never); 1 (wherever it applies). Anything else is ignored with a warning. */
static int
gemm_setting (void)
{
  const char *value = g_getenv ("HFAM_CUDA_GEMM");

  if (!value || !value[0])
    return -1;
  if (strcmp (value, "0") == 0 || strcmp (value, "1") == 0)
    return atoi (value);
  g_warning ("HFAM_CUDA_GEMM=%s: want 0 or 1; cuBLASLt is timed as usual", value);
  return -1;
}

/* Whether the environment variable is set to something other than "" or "0". */
static gboolean
env_flag (const char *name)
{
  const char *value = g_getenv (name);
  return value && value[0] && strcmp (value, "0") != 0;
}

/* The layout this module was built for (backend.h); exported beside the entry point. */
const HfamCudaModuleAbi hfam_cuda_module_abi = HFAM_CUDA_MODULE_ABI_INIT;

/* The module's entry point (HfamCudaModuleNewBackend). */
HfamBackend *
hfam_cuda_module_new_backend (const HfamGraph *graph, int device_id,
                              const HfamCudaBackendOptions *options,
                              const char *(*stage_name) (HfamStage stage), GError **error)
{
  static const HfamCudaBackendOptions defaults = { .fp16 = TRUE };
  CudaBackend *be;
  struct cudaDeviceProp prop;
  int count = 0, device = device_id < 0 ? 0 : device_id;
  CUcontext context = NULL;
  PFN_cuCtxGetCurrent_v4000 get_current = NULL;
  PFN_cuCtxSetCurrent_v4000 set_current = NULL;
  cudaError_t err;
  const gboolean profile = env_flag ("HFAM_CUDA_PROFILE");

  if (!options)
    options = &defaults;
  err = cudaGetDeviceCount (&count);
  if (err != cudaSuccess || count == 0) {
    cudaGetLastError ();
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "cuda backend: no CUDA device: %s",
                 err != cudaSuccess ? cudaGetErrorString (err) : "none found");
    return NULL;
  }
  if (options->context && options->current_context) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "cuda backend: a context to run on, or the current one: not both");
    return NULL;
  }
  if (options->context && !bind_context (options->context, &set_current, error))
    return NULL;
  if (options->current_context || options->context) {
    if (!find_current_context (&get_current, &context, &device, error))
      return NULL;
  } else if (device >= count) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                 "cuda backend: device %d asked for, %d present", device, count);
    return NULL;
  }
  /* (the caller's context stays current: no cudaSetDevice then) */
  if ((!context && (err = cudaSetDevice (device)) != cudaSuccess)
      || (err = cudaGetDeviceProperties (&prop, device)) != cudaSuccess) {
    cudaGetLastError ();
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "cuda backend: device %d: %s", device,
                 cudaGetErrorString (err));
    return NULL;
  }
  if (prop.major * 10 + prop.minor < 75) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                 "cuda backend: device %d (%s) has compute capability %d.%d; 7.5 or newer is "
                 "needed", device, prop.name, prop.major, prop.minor);
    return NULL;
  }

  be = g_new0 (CudaBackend, 1);
  be->frames_only = options->frames_only;
  be->base.ops = be->frames_only ? &cuda_frames_ops : &cuda_ops;
  be->base.batch = be->frames_only ? 1 : CLAMP (options->batch, 1, HFAM_MAX_BATCH);
  /* a batch's device frames are its members' (HfamDeviceSlice), kept and written by them */
  be->base.device = be->base.batch == 1 ? &cuda_device_ops : NULL;
  be->base.cuda_context = context;
  be->base.gpu = TRUE;
  be->base.graph = graph;
  be->stage_name = stage_name;
  be->device = device;
  be->context = context;
  be->get_current_context = get_current;
  be->set_current_context = set_current;
  be->dtype = options->fp16 ? HFAM_CUDA_F16 : HFAM_CUDA_F32;
  be->cudnn_dtype = options->fp16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
  be->depth = CLAMP (options->pipeline_depth, 1, MAX_DEPTH);
  /* (profiling times every node already; a sync inside its gated stages would wait forever) */
  be->debug_sync = env_flag ("HFAM_CUDA_SYNC") && !profile;
  be->graphs = !options->no_graphs && !be->debug_sync && !profile;
  be->split_k = split_k_setting ();
  be->gemm = gemm_setting ();
  /* a node timed or checked alone: one stream, so that nothing runs beside it (and a
   * frames-only backend's preprocessing is one kernel) */
  be->n_streams = be->debug_sync || profile || be->frames_only
                  || env_flag ("HFAM_CUDA_ONE_STREAM") ? 1 : N_STREAMS;
  be->base.pipeline_depth = be->depth;
  be->base.precision = options->fp16 ? HFAM_PRECISION_FP16 : HFAM_PRECISION_FP32;
  be->steps = g_new0 (Step, graph->n_nodes);
  if (profile && !be->frames_only) {
    be->node_ms = g_new0 (double, graph->n_nodes);
    be->node_events = g_new0 (cudaEvent_t, 2 * graph->n_nodes);
    for (int i = 0; i < 2 * graph->n_nodes; i++)
      if (cudaEventCreate (&be->node_events[i]) != cudaSuccess) {
        g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "cuda backend: cannot create events");
        cuda_free (&be->base);
        return NULL;
      }
  }
  layout_values (be);
  if (!create_objects (be, error)) {
    cuda_free (&be->base);
    return NULL;
  }
  g_debug ("cuda backend: device %d, %s (compute capability %d.%d), %s context, cuDNN %zu, %s, "
           "depth %d, batches of %d, graphs %s, %d stream(s) per frame%s", device, prop.name,
           prop.major, prop.minor, context ? "the caller's" : "its primary",
           cudnnGetVersion (), options->fp16 ? "fp16" : "fp32", be->depth, be->base.batch,
           be->graphs ? "on" : "off", be->n_streams, be->frames_only ? ", frames only" : "");
  return &be->base;
}
