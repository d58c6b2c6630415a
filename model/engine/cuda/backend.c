/* The CUDA backend: convolutions by cuDNN (legacy API) on NHWC maps, fp16 on tensor cores by
 * default or fp32 (FMA only, no TF32); everything between convolutions and the heads by the
 * CUDA ops of kernels/ (each with its CPU twin).
 *
 * - BatchNorm is folded at export; bias, ReLU and the residual sum are fused into the
 *   convolution with cudnnConvolutionBiasActivationForward (residual as its z input) where
 *   cuDNN accepts it; otherwise cudnnConvolutionForward + hfam_cuda_bias_act.
 * - The algorithm of each convolution shape is chosen once by cudnnFindConvolutionForward-
 *   AlgorithmEx and timing (the fastest deterministic one whose workspace fits WORKSPACE_CAP,
 *   fused or not) and cached for the process; each stream has one workspace, allocated at
 *   plan. Where the output has few positions (the deep layers at batch 1, whose tiles fill
 *   few multiprocessors), split-K is timed too: the convolution as a grouped one over 2, 4 or
 *   8 slices of its input channels (weights copied into that layout), the partial results
 *   summed with bias, residual and ReLU by hfam_cuda_split_k_sum. HFAM_CUDA_SPLIT_K=0 leaves
 *   it out; HFAM_CUDA_SPLIT_K=2|4|8 takes it wherever it applies (for the tests).
 * - Weights are converted once (KRSC, channels padded to a multiple of 8 in fp16, zeros) into
 *   one device allocation. MFEM's projection weights are refolded per frame on the device
 *   (hfam_cuda_sk_fold).
 * - Every value has its own buffer in one allocation per frame slot (no reuse: the streams
 *   run concurrently, so liveness would need cross-stream fences). Resize, average-pool and
 *   attention products whose only reader is a concatenation write straight into its channel
 *   slice; other inputs of a concatenation are copied into theirs.
 * - Streams: one per lane of the graph (graph.h, graph.c), ordered by the graph's cross-lane
 *   waits (an event after each node another lane waits for), so that MFEM at f2 and f3 and
 *   L-BB run while the encoder goes on, the encoder's projection shortcuts beside the first
 *   block's other convolutions, each MFEM's dilated branches beside one another, and P3..P0
 *   and the detail decoder's first block beside the semantic decoder. Lane 0, the critical path, is the main stream: a frame's other lanes
 *   start from it and join it at the end.
 * - Pipeline depth 2: two frame slots, each with its own streams, buffers and workspaces, so
 *   the encoder of frame n + 1 runs while the decoders of frame n do.
 * - The per-frame work (input upload, every stage, alpha download) is captured once per slot
 *   into a CUDA graph and replayed; if capture fails the backend queues kernels instead.
 * - Host input goes through pinned staging.
 * - Device frames (queue_device_frame): kernels/preprocess.cu writes the frame straight into
 *   the network's input on the main stream, then a second graph of the slot, captured
 *   without the upload and the download, runs the network. At collect, alpha_p becomes the
 *   backend's kept matte (copied, or blended into the one kept before: temporal smoothing),
 *   and kernels/matte.cu writes the outputs from the kept matte; frames that reuse it
 *   (write_kept_matte) are written from it the same way. All of that runs on one stream of
 *   the kept matte's own, after the frame, and each call waits for it. The preprocessing
 *   filters (frame size to inference size) are kept per slot, the kept matte's (to the
 *   outputs' size) with it; each is rebuilt when a size changes.
 * - With HfamCudaOptions.current_context everything runs on the CUDA context that was
 *   current when the backend was made (a GstCudaContext, say) and the device is never set,
 *   which would replace that context; each call checks that it is current again. The driver
 *   API's cuCtxGetCurrent is reached through the runtime, so no libcuda at link time.
 * Set HFAM_CUDA_SYNC=1 in the environment to synchronise after every node (graphs off, one
 * stream): a failing kernel is then reported with the node that queued it.
 * HFAM_CUDA_ONE_STREAM=1 runs every lane on the main stream, to measure what the lanes gain.
 * HFAM_CUDA_PROFILE=1 (graphs off, one stream, so that nothing runs beside a node) times every
 * node with events, device time only: the stream is held by a gate until all of a stage is
 * queued, so cuDNN's host overhead does not show; the slowest nodes are printed when the
 * backend is freed. */
#include "backend.h"
#include "attention.cuh"
#include "matte.cuh"
#include "nhwc.cuh"
#include "sk.cuh"
#include "softmax-fusion.cuh"

#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#ifdef HFAM_HAVE_CUBLASLT
#include <cublasLt.h>
#endif
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 2
#define N_STREAMS HFAM_N_LANES
/* The most workspace one convolution may use (split-K's partial results included). */
#define WORKSPACE_CAP ((size_t) 256 << 20)
/* Split-K is tried where the output has at most this many positions, and where each slice
 * still reduces over this many products per output. */
#define SPLIT_K_MAX_POSITIONS 4096
#define SPLIT_K_MIN_DEPTH 512
static const int split_k_ways[] = { 2, 4, 8 };
/* cuBLASLt's heuristic candidates timed per 1x1 convolution and epilogue */
#define GEMM_CANDIDATES 8
#define ALIGN 256

/* Lane 0's stream: a frame starts and ends there. */
#define MAIN_STREAM 0

/* Where a frame's input comes from and where its alpha_p goes. */
typedef enum {
  FRAME_HOST,    /* host planes in through pinned staging, alpha_p out to pinned memory */
  FRAME_DEVICE,  /* preprocessed on the device before the graph; alpha_p stays there */
  N_FRAME_KINDS
} FrameKind;

typedef struct {
  cudnnConvolutionFwdAlgo_t algo;
  cudnnMathType_t math;
  size_t workspace;   /* split-K: its partial results first, then the convolution's */
  gboolean fused;     /* the bias and ReLU in cuDNN's call, or in cuBLASLt's epilogue */
  int splits;         /* 1, or the slices of the input channels (split-K) */
  gboolean gemm;      /* a 1x1 convolution as one cuBLASLt matrix product (not cuDNN) */
#ifdef HFAM_HAVE_CUBLASLT
  cublasLtMatmulAlgo_t gemm_algo;
#endif
} ConvChoice;

/* What does not change from frame to frame or slot to slot. */
typedef struct {
  int cs;               /* NHWC elements per pixel (feature maps); 0 for planar maps */
  int w, h;             /* the value's size at the planned input size */
  size_t offset, bytes; /* in each slot's arena (not for views) */
  int view_of;          /* the CONCAT whose slice this value is, or -1 */
  int view_c0;
  int consumers;
  gboolean in_place[4]; /* CONCAT: input k writes its slice itself */
  /* CONV, SK_PROJECT */
  gboolean is_conv;
  const HfamConvParams *conv;
  cudnnTensorDescriptor_t x_desc, y_desc, b_desc;
  cudnnFilterDescriptor_t w_desc;
  cudnnConvolutionDescriptor_t conv_desc;
  ConvChoice choice;
  ConvChoice fallback;  /* where choice is a cuBLASLt product: cuDNN's fastest plain way */
  /* split-K: the grouped convolution, and its weights (device) for the splits prepared */
  cudnnTensorDescriptor_t part_desc;
  cudnnFilterDescriptor_t split_w_desc;
  cudnnConvolutionDescriptor_t split_conv_desc;
  void *split_weight;
#ifdef HFAM_HAVE_CUBLASLT
  /* 1x1 convolutions as a matrix product: its descriptor, and the layouts of W, x and y */
  cublasLtMatmulDesc_t gemm_desc;
  cublasLtMatrixLayout_t gemm_w, gemm_x, gemm_y;
#endif
  size_t weight_offset, bias_offset; /* CONV: in the weight allocation */
  /* SK_PROJECT: fp32 tensors in the weight allocation; per-frame weights in the slots */
  HfamCudaSkWeights sk;
  size_t sk_weight_offset, sk_bias_offset, sk_scratch_offset;
  /* ATTENTION */
  float att_w[3], att_b;
} Step;

typedef struct {
  char *arena;
  cudaStream_t streams[N_STREAMS];
  cudnnHandle_t cudnn[N_STREAMS];
  void *workspace[N_STREAMS];
  cudaEvent_t frame_start, frame_done;
  cudaEvent_t lane_done[N_STREAMS];
  cudaEvent_t *node_done;       /* per node, where graph->lane_signals says so */
  float *host_in, *host_alpha;  /* pinned */
  size_t dev_in_offset;         /* input planes (fp32) in the arena */
  cudaGraphExec_t graphs[N_FRAME_KINDS];  /* each captured when first needed */
  gboolean warm;                /* a whole frame ran uncaptured since the plan */
  gboolean queued;              /* a frame is in flight here */
  FrameKind kind;               /* of the frame in flight */
  int next_stage;               /* set_input/run_stage: the next stage to queue */
  /* device frames: frame size -> inference size (x, y) */
  HfamCudaFilter to_input[2];
} Slot;

typedef struct {
  HfamBackend base;
  int device;
  /* HfamCudaOptions.current_context: the caller's context (NULL: the device's primary one) */
  CUcontext context;
  PFN_cuCtxGetCurrent_v4000 get_current_context;
  HfamCudaDtype dtype;
  cudnnDataType_t cudnn_dtype;
  int depth;
  gboolean graphs, debug_sync;
  int n_streams;                /* HFAM_N_LANES, or 1 where each node is to be timed alone */
  int split_k;                  /* HFAM_CUDA_SPLIT_K: -1 timed (default), 0 never, or forced */
  int gemm;                     /* HFAM_CUDA_GEMM: -1 timed (default), 0 never, 1 forced */
#ifdef HFAM_HAVE_CUBLASLT
  cublasLtHandle_t lt;
#endif
  double *node_ms;              /* HFAM_CUDA_PROFILE: per node, summed over frames */
  int profiled_frames;
  cudaEvent_t *node_events;     /* HFAM_CUDA_PROFILE: start and stop of every node */
  int width, height;
  Step *steps;
  Slot slots[MAX_DEPTH];
  char *weights;                /* device */
  size_t workspace_need[N_STREAMS];
  cudnnActivationDescriptor_t relu;
  int head, tail;               /* frames queued, frames collected */
  gboolean whole_frame_queued;  /* run_stage: stage 0 queued the whole frame */
  /* device frames: the kept matte (fp32 alpha_p of the last frame collected, at its
   * inference size, blended over time), its filters to the outputs' size (x, y), and the
   * stream that writes it and the outputs from it (made with the first device collect) */
  float *kept;                  /* allocated for kept_width x kept_height */
  int kept_width, kept_height;
  gboolean have_kept;           /* `kept` holds a matte */
  HfamCudaFilter kept_to_frame[2];
  cudaStream_t matte_stream;
} CudaBackend;

/* Algorithm choices by device, precision and convolution shape, for the whole process: every
 * context on the same device reuses them (cuDNN's search costs seconds on a deep network). */
static GHashTable *choice_cache;
static GMutex choice_lock;

#define CUDA_TRY(call, what)                                                                  \
  do {                                                                                        \
    const cudaError_t err_ = (call);                                                          \
    if (err_ != cudaSuccess) {                                                                \
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "cuda backend: %s: %s failed: %s",  \
                   (what), #call, cudaGetErrorString (err_));                                 \
      /* or the next launch check would report it again */                                   \
      cudaGetLastError ();                                                                    \
      return FALSE;                                                                           \
    }                                                                                         \
  } while (0)

#ifdef HFAM_HAVE_CUBLASLT
#define LT_TRY(call, what)                                                                    \
  do {                                                                                        \
    const cublasStatus_t st_ = (call);                                                        \
    if (st_ != CUBLAS_STATUS_SUCCESS) {                                                       \
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "cuda backend: %s: %s failed: %s",  \
                   (what), #call, cublasLtGetStatusString (st_));                             \
      return FALSE;                                                                           \
    }                                                                                         \
  } while (0)
#endif

#define CUDNN_TRY(call, what)                                                                 \
  do {                                                                                        \
    const cudnnStatus_t st_ = (call);                                                         \
    if (st_ != CUDNN_STATUS_SUCCESS) {                                                        \
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "cuda backend: %s: %s failed: %s",  \
                   (what), #call, cudnnGetErrorString (st_));                                 \
      return FALSE;                                                                           \
    }                                                                                         \
  } while (0)

/* Makes the backend's device current on the calling thread: its primary context by
 * cudaSetDevice, or, for a backend on the caller's context, a check that this context is
 * current (setting the device would replace it). */
static gboolean
use_device (CudaBackend *be, const char *what, GError **error)
{
  CUcontext current = NULL;

  if (!be->context) {
    CUDA_TRY (cudaSetDevice (be->device), what);
    return TRUE;
  }
  if (be->get_current_context (&current) != CUDA_SUCCESS || current != be->context) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                 "cuda backend: %s: the CUDA context the backend was made on is not current "
                 "on this thread", what);
    return FALSE;
  }
  return TRUE;
}

/* A resize filter from `in` to `out` samples in `f`, made again only when a size changed;
 * nothing may be using the old one. */
static gboolean
ensure_filter (HfamCudaFilter *f, int in, int out, const char *what, GError **error)
{
  if (f->start && f->in == in && f->out == out)
    return TRUE;
  hfam_cuda_filter_free (f);
  CUDA_TRY (hfam_cuda_filter_new (in, out, f), what);
  /* its upload went through the legacy default stream, which the backend's non-blocking
   * streams do not wait for */
  CUDA_TRY (cudaStreamSynchronize (cudaStreamLegacy), what);
  return TRUE;
}

static size_t
align_up (size_t n)
{
  return (n + ALIGN - 1) / ALIGN * ALIGN;
}

static size_t
elem (const CudaBackend *be)
{
  return hfam_cuda_dtype_size (be->dtype);
}

/* Channels as stored: a multiple of 8 in fp16, for the tensor cores. */
static int
padded (const CudaBackend *be, int c)
{
  return be->dtype == HFAM_CUDA_F16 ? (c + 7) / 8 * 8 : c;
}

/* The stream of node `id`: its lane's, or the main one when every node runs alone. */
static int
node_stream (const CudaBackend *be, int id)
{
  return be->n_streams > 1 ? be->base.graph->nodes[id].lane : MAIN_STREAM;
}

static gboolean
is_planar (const HfamNode *n)
{
  /* the input is planar in the graph's terms (for the CPU); here it is NHWC */
  return n->planar && n->op != HFAM_OP_INPUT;
}

/* ---- values ---- */

static HfamNhwc
value_nhwc (const CudaBackend *be, const Slot *slot, int id)
{
  const Step *s = &be->steps[id];
  const HfamNode *n = &be->base.graph->nodes[id];
  HfamNhwc t = { .w = s->w, .h = s->h, .c = n->channels, .cs = s->cs, .dtype = be->dtype };
  if (s->view_of >= 0) {
    const Step *v = &be->steps[s->view_of];
    t.data = slot->arena + v->offset + (size_t) s->view_c0 * elem (be);
    t.cs = v->cs;
  } else {
    t.data = slot->arena + s->offset;
  }
  return t;
}

static float *
value_planar (const CudaBackend *be, const Slot *slot, int id)
{
  return (float *) (slot->arena + be->steps[id].offset);
}

/* Channel strides, consumers and concatenation slices: all independent of the input size. */
static void
layout_values (CudaBackend *be)
{
  const HfamGraph *g = be->base.graph;
  for (int i = 0; i < g->n_nodes; i++) {
    const HfamNode *n = &g->nodes[i];
    Step *s = &be->steps[i];
    s->cs = is_planar (n) ? 0 : padded (be, n->channels);
    s->view_of = -1;
    for (int k = 0; k < n->n_inputs; k++)
      be->steps[n->inputs[k]].consumers++;
    s->is_conv = n->op == HFAM_OP_CONV || n->op == HFAM_OP_SK_PROJECT;
    s->conv = n->op == HFAM_OP_CONV ? &n->conv : n->op == HFAM_OP_SK_PROJECT ? &n->sk.project
                                                                              : NULL;
  }
  for (int i = 0; i < g->n_nodes; i++) {
    const HfamNode *n = &g->nodes[i];
    int c0 = 0;
    if (n->op != HFAM_OP_CONCAT)
      continue;
    for (int k = 0; k < n->n_inputs; k++) {
      const int p = n->inputs[k];
      const HfamNode *in = &g->nodes[p];
      gboolean once = TRUE;
      for (int j = 0; j < n->n_inputs; j++)
        once &= j == k || n->inputs[j] != p;
      if ((in->op == HFAM_OP_RESIZE || in->op == HFAM_OP_AVGPOOL
           || in->op == HFAM_OP_SCALE_BY_MAP)
          && !is_planar (in) && be->steps[p].consumers == 1 && once
          && be->steps[p].view_of < 0) {
        be->steps[p].view_of = i;
        be->steps[p].view_c0 = c0;
        be->steps[i].in_place[k] = TRUE;
      }
      c0 += in->channels;
    }
  }
}

/* Sizes and arena offsets for an input size; returns the arena's size. */
static size_t
size_values (CudaBackend *be)
{
  const HfamGraph *g = be->base.graph;
  size_t off = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    const HfamNode *n = &g->nodes[i];
    Step *s = &be->steps[i];
    s->w = n->div ? be->width / n->div : 1;
    s->h = n->div ? be->height / n->div : 1;
    s->bytes = is_planar (n) ? sizeof (float) * n->channels * (size_t) s->w * s->h
                             : elem (be) * s->cs * (size_t) s->w * s->h;
    if (s->view_of >= 0)
      continue;
    s->offset = off;
    off += align_up (s->bytes);
    if (n->op == HFAM_OP_SK_PROJECT) {
      const int cm = n->channels;
      s->sk_weight_offset = off;
      off += align_up (elem (be) * (size_t) s->cs * be->steps[n->inputs[0]].cs);
      s->sk_bias_offset = off;
      off += align_up (elem (be) * (size_t) s->cs);
      s->sk_scratch_offset = off;
      off += align_up (sizeof (float) * hfam_cuda_sk_scratch_floats (cm));
    }
  }
  for (int k = 0; k < be->depth; k++)
    be->slots[k].dev_in_offset = off;
  off += align_up (sizeof (float) * 3 * (size_t) be->width * be->height);
  return off;
}

/* ---- weights ---- */

/* Host fp32 into the weight allocation at `offset`, converted to the backend's dtype through
 * the fp32 device staging buffer (or as they are, fp32). */
static gboolean
upload (CudaBackend *be, const float *host, size_t n, size_t offset, gboolean convert,
        float *staging, const char *what, GError **error)
{
  if (!convert || be->dtype == HFAM_CUDA_F32) {
    CUDA_TRY (cudaMemcpy (be->weights + offset, host, sizeof (float) * n,
                          cudaMemcpyHostToDevice), what);
    return TRUE;
  }
  CUDA_TRY (cudaMemcpy (staging, host, sizeof (float) * n, cudaMemcpyHostToDevice), what);
  CUDA_TRY (hfam_cuda_convert (staging, HFAM_CUDA_F32, be->weights + offset, be->dtype, n, 0),
            what);
  CUDA_TRY (cudaDeviceSynchronize (), what);
  return TRUE;
}

/* Every convolution's weights (KRSC, padded with zeros) and bias, and the SK tensors, into one
 * device allocation. */
static gboolean
load_weights (CudaBackend *be, GError **error)
{
  const HfamGraph *g = be->base.graph;
  size_t total = 0, max_elems = 1;
  float *staging = NULL;
  gboolean ok = TRUE;

  for (int i = 0; i < g->n_nodes; i++) {
    const HfamNode *n = &g->nodes[i];
    Step *s = &be->steps[i];
    if (n->op == HFAM_OP_CONV) {
      const size_t nw = (size_t) s->cs * n->conv.kernel * n->conv.kernel
                        * be->steps[n->inputs[0]].cs;
      s->weight_offset = total;
      total += align_up (nw * elem (be));
      s->bias_offset = total;
      total += align_up ((size_t) s->cs * elem (be));
      max_elems = MAX (max_elems, nw);
    } else if (n->op == HFAM_OP_SK_PROJECT) {
      const HfamStTensor *t[6] = { n->sk.squeeze.weight, n->sk.squeeze.bias, n->sk.select.weight,
                                   n->sk.select.bias, n->sk.project.weight, n->sk.project.bias };
      size_t off[6];
      for (int k = 0; k < 6; k++) {
        off[k] = total;
        total += align_up (sizeof (float) * hfam_st_n_elements (t[k]));
      }
      /* pointers are filled in once the allocation exists */
      s->sk.cm = n->channels;
      s->sk.d = n->sk.squeeze.cout;
      s->sk.squeeze_w = (const float *) off[0];
      s->sk.squeeze_b = (const float *) off[1];
      s->sk.select_w = (const float *) off[2];
      s->sk.select_b = (const float *) off[3];
      s->sk.project_w = (const float *) off[4];
      s->sk.project_b = (const float *) off[5];
    } else if (n->op == HFAM_OP_ATTENTION) {
      hfam_st_to_f32 (n->attention_weight, s->att_w);
      hfam_st_to_f32 (n->attention_bias, &s->att_b);
    }
  }
  CUDA_TRY (cudaMalloc ((void **) &be->weights, MAX (total, 1)), "weights");
  CUDA_TRY (cudaMemset (be->weights, 0, MAX (total, 1)), "weights");
  CUDA_TRY (cudaMalloc ((void **) &staging, sizeof (float) * max_elems), "weights");

  for (int i = 0; i < g->n_nodes && ok; i++) {
    const HfamNode *n = &g->nodes[i];
    Step *s = &be->steps[i];
    if (n->op == HFAM_OP_CONV) {
      const HfamConvParams *p = &n->conv;
      const int k = p->kernel, cin_pad = be->steps[n->inputs[0]].cs;
      g_autofree float *plain = hfam_st_dup_f32 (p->weight);
      g_autofree float *bias = g_new0 (float, s->cs);
      g_autofree float *krsc = g_new0 (float, (size_t) s->cs * k * k * cin_pad);
      for (int o = 0; o < p->cout; o++)
        for (int c = 0; c < p->cin; c++)
          for (int r = 0; r < k; r++)
            for (int q = 0; q < k; q++)
              krsc[(((size_t) o * k + r) * k + q) * cin_pad + c] =
                plain[(((size_t) o * p->cin + c) * k + r) * k + q];
      hfam_st_to_f32 (p->bias, bias);
      ok = upload (be, krsc, (size_t) s->cs * k * k * cin_pad, s->weight_offset, TRUE, staging,
                   n->name, error)
           && upload (be, bias, s->cs, s->bias_offset, TRUE, staging, n->name, error);
    } else if (n->op == HFAM_OP_SK_PROJECT) {
      const HfamStTensor *t[6] = { n->sk.squeeze.weight, n->sk.squeeze.bias, n->sk.select.weight,
                                   n->sk.select.bias, n->sk.project.weight, n->sk.project.bias };
      const float **ptr[6] = { &s->sk.squeeze_w, &s->sk.squeeze_b, &s->sk.select_w,
                               &s->sk.select_b, &s->sk.project_w, &s->sk.project_b };
      for (int j = 0; j < 6 && ok; j++) {
        g_autofree float *host = hfam_st_dup_f32 (t[j]);
        const size_t off = (size_t) *ptr[j];
        ok = upload (be, host, hfam_st_n_elements (t[j]), off, FALSE, staging, n->name, error);
        *ptr[j] = (const float *) (be->weights + off);
      }
    }
  }
  cudaFree (staging);
  return ok;
}

static void *
conv_weight (const CudaBackend *be, const Slot *slot, int id)
{
  const Step *s = &be->steps[id];
  return be->base.graph->nodes[id].op == HFAM_OP_SK_PROJECT ? slot->arena + s->sk_weight_offset
                                                            : be->weights + s->weight_offset;
}

static void *
conv_bias (const CudaBackend *be, const Slot *slot, int id)
{
  const Step *s = &be->steps[id];
  return be->base.graph->nodes[id].op == HFAM_OP_SK_PROJECT ? slot->arena + s->sk_bias_offset
                                                            : be->weights + s->bias_offset;
}

/* ---- convolutions ---- */

/* Whether convolution `id` may run split into `splits` slices of its input channels, and is
 * worth timing so. */
static gboolean
split_k_applies (const CudaBackend *be, int id, int splits)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  const Step *s = &be->steps[id], *in = &be->steps[n->inputs[0]];
  /* tensor cores read a group's channels 8 halves at a time */
  const int align = be->dtype == HFAM_CUDA_F16 ? 8 : 1;

  return n->op == HFAM_OP_CONV && (size_t) s->w * s->h <= SPLIT_K_MAX_POSITIONS
         && in->cs % (splits * align) == 0
         && in->cs / splits * n->conv.kernel * n->conv.kernel >= SPLIT_K_MIN_DEPTH;
}

/* Bytes of split-K's partial results, at the start of the workspace. */
static size_t
split_k_partials_bytes (const CudaBackend *be, const Step *s, int splits)
{
  return align_up ((size_t) splits * s->cs * s->w * s->h * elem (be));
}

/* The grouped convolution of convolution `id` split `splits` ways: its descriptors, and its
 * weights, group g being the KRSC weights' input channels [g cg, (g + 1) cg). At plan only:
 * the copies are on the legacy stream, and cuda_plan synchronises the device before any frame
 * runs. */
static gboolean
prepare_split_k (CudaBackend *be, int id, int splits, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  Step *s = &be->steps[id];
  const HfamConvParams *p = s->conv;
  const int cin = be->steps[n->inputs[0]].cs, cg = cin / splits;
  const size_t e = elem (be), rows = (size_t) s->cs * p->kernel * p->kernel;

  cudaFree (s->split_weight);
  s->split_weight = NULL;
  CUDNN_TRY (cudnnSetTensor4dDescriptor (s->part_desc, CUDNN_TENSOR_NHWC, be->cudnn_dtype, 1,
                                         splits * s->cs, s->h, s->w), n->name);
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
static gboolean
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
static gboolean
prepare_gemm (CudaBackend *be, int id, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  Step *s = &be->steps[id];
  const int cin = be->steps[n->inputs[0]].cs;
  const uint64_t positions = (uint64_t) s->w * s->h;
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
static gboolean
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
queue_gemm (CudaBackend *be, Slot *slot, int id, int stream, const ConvChoice *way, void *ws,
            GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  Step *s = &be->steps[id];
  const HfamNhwc x = value_nhwc (be, slot, n->inputs[0]), y = value_nhwc (be, slot, id);
  const float one = 1.0f, zero = 0.0f;
  cublasStatus_t st;

  if (!set_gemm_epilogue (s, way, conv_bias (be, slot, id), n->name, error))
    return FALSE;
  st = cublasLtMatmul (be->lt, s->gemm_desc, &one, conv_weight (be, slot, id), s->gemm_w, x.data,
                       s->gemm_x, &zero, y.data, s->gemm_y, y.data, s->gemm_y, &way->gemm_algo,
                       ws, way->workspace, slot->streams[stream]);
  if (st != CUBLAS_STATUS_SUCCESS) {
    /* all that the call had, to tell a refused shape from a refused buffer */
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                 "cuda backend: %s: cuBLASLt's product (m %d, n %d, k %d, %s, epilogue %s, "
                 "weights %p, x %p, y %p, %zu bytes of workspace at %p) failed: %s", n->name,
                 s->cs, s->w * s->h, be->steps[n->inputs[0]].cs,
                 be->dtype == HFAM_CUDA_F16 ? "fp16" : "fp32", way->fused ? "bias" : "none",
                 conv_weight (be, slot, id), x.data, y.data, way->workspace, ws,
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
static gboolean
queue_conv (CudaBackend *be, Slot *slot, int id, int stream, const ConvChoice *way, void *ws,
            GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  const Step *s = &be->steps[id];
  const HfamConvParams *p = s->conv;
  cudnnHandle_t h = slot->cudnn[stream];
  const HfamNhwc x = value_nhwc (be, slot, n->inputs[0]), y = value_nhwc (be, slot, id);
  const gboolean residual = n->op == HFAM_OP_CONV && p->residual >= 0;
  const HfamNhwc z = residual ? value_nhwc (be, slot, p->residual) : y;
  const float one = 1.0f, zero = 0.0f, alpha2 = residual ? 1.0f : 0.0f;
  void *w = conv_weight (be, slot, id), *b = conv_bias (be, slot, id);

  if (way->splits > 1) {
    const size_t part_bytes = split_k_partials_bytes (be, s, way->splits);
    const HfamNhwc part = { ws, s->w, s->h, way->splits * s->cs, way->splits * s->cs,
                            be->dtype };
    HfamNhwc yp = y, zp = z;
    yp.c = zp.c = s->cs;
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
    if (!queue_gemm (be, slot, id, stream, way, ws, error))
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
  {
    /* bias over the padded channels too (zeros), so padding stays zero */
    HfamNhwc yp = y, zp = z;
    yp.c = zp.c = s->cs;
    CUDA_TRY (hfam_cuda_bias_act (&yp, b, residual ? &zp : NULL, p->relu, &yp,
                                  slot->streams[stream]), n->name);
  }
  return TRUE;
}

static gboolean
run_conv (CudaBackend *be, Slot *slot, int id, int stream, GError **error)
{
  Step *s = &be->steps[id];
  g_autoptr (GError) refused = NULL;

  if (queue_conv (be, slot, id, stream, &s->choice, slot->workspace[stream],
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
  return queue_conv (be, slot, id, stream, &s->choice, slot->workspace[stream], error);
}

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
        || !queue_conv (be, slot, id, stream, way, ws, &error)
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
               slot->cudnn[stream], s->x_desc, x.data, s->w_desc, conv_weight (be, slot, id),
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
      != CUBLAS_STATUS_SUCCESS) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                 "cuda backend: %s: cuBLASLt refuses a workspace preference", n->name);
    ok = FALSE;
  }
  for (int fused = 0; ok && fused <= (residual ? 0 : 1); fused++) {
    const ConvChoice epilogue = { .fused = fused, .splits = 1, .gemm = TRUE };
    int n_results = 0;
    cublasStatus_t st;
    ok = set_gemm_epilogue (s, &epilogue, conv_bias (be, &be->slots[0], id), n->name, error);
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
static gboolean
plan_conv (CudaBackend *be, int id, void *find_ws, size_t find_ws_size, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  Step *s = &be->steps[id];
  const HfamConvParams *p = s->conv;
  const Step *in = &be->steps[n->inputs[0]];
  const int stream = node_stream (be, id);
  const gboolean residual = n->op == HFAM_OP_CONV && p->residual >= 0;
  const cudnnMathType_t math = be->dtype == HFAM_CUDA_F16 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH;
  g_autofree char *key = g_strdup_printf ("%d %d %d %d %d %d %d %d %d %d %d %d %d %d %d",
                                          be->device, be->dtype, in->cs, s->cs, p->kernel,
                                          p->stride, p->dilation, p->pad, in->w, in->h, p->relu,
                                          residual, be->split_k, be->gemm,
                                          n->op == HFAM_OP_CONV);
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

  CUDNN_TRY (cudnnSetTensor4dDescriptor (s->x_desc, CUDNN_TENSOR_NHWC, be->cudnn_dtype, 1,
                                         in->cs, in->h, in->w), n->name);
  CUDNN_TRY (cudnnSetTensor4dDescriptor (s->y_desc, CUDNN_TENSOR_NHWC, be->cudnn_dtype, 1,
                                         s->cs, s->h, s->w), n->name);
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
  if (on != 1 || oc != s->cs || oh != s->h || ow != s->w) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                 "cuda backend: %s: cuDNN's output %dx%dx%d is not the graph's %dx%dx%d",
                 n->name, oc, oh, ow, s->cs, s->h, s->w);
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

/* ---- running nodes ---- */

static gboolean
run_node (CudaBackend *be, Slot *slot, int id, GError **error)
{
  const HfamGraph *g = be->base.graph;
  const HfamNode *n = &g->nodes[id];
  const Step *s = &be->steps[id];
  const int stream = node_stream (be, id);
  const cudaStream_t st = slot->streams[stream];
  HfamNhwc src = { 0 }, dst = { 0 };

  if (n->n_inputs && !is_planar (&g->nodes[n->inputs[0]]))
    src = value_nhwc (be, slot, n->inputs[0]);
  if (!is_planar (n))
    dst = value_nhwc (be, slot, id);

  switch (n->op) {
  case HFAM_OP_INPUT:
    return TRUE;  /* converted when the frame starts */
  case HFAM_OP_CONV:
    return run_conv (be, slot, id, stream, error);
  case HFAM_OP_SK_PROJECT: {
    const HfamNhwc gap = value_nhwc (be, slot, n->sk.gap_branches);
    const HfamNhwc pooled = value_nhwc (be, slot, n->sk.pooled_branch);
    CUDA_TRY (hfam_cuda_sk_fold (&s->sk, gap.data, pooled.data, be->dtype,
                                 (float *) (slot->arena + s->sk_scratch_offset),
                                 slot->arena + s->sk_weight_offset,
                                 be->steps[n->inputs[0]].cs, slot->arena + s->sk_bias_offset, st),
              n->name);
    return run_conv (be, slot, id, stream, error);
  }
  case HFAM_OP_MAXPOOL:
    CUDA_TRY (hfam_cuda_maxpool (&src, &dst, st), n->name);
    return TRUE;
  case HFAM_OP_AVGPOOL:
    CUDA_TRY (hfam_cuda_avgpool (&src, n->factor, &dst, st), n->name);
    return TRUE;
  case HFAM_OP_GLOBAL_POOL:
    CUDA_TRY (hfam_cuda_global_pool (&src, &dst, st), n->name);
    return TRUE;
  case HFAM_OP_RESIZE:
    CUDA_TRY (hfam_cuda_resize (&src, &dst, st), n->name);
    return TRUE;
  case HFAM_OP_CONCAT: {
    int c0 = 0;
    for (int k = 0; k < n->n_inputs; k++) {
      const HfamNhwc in = value_nhwc (be, slot, n->inputs[k]);
      const HfamNhwc slice = hfam_nhwc_slice (dst, c0, in.c);
      if (!s->in_place[k])
        CUDA_TRY (hfam_cuda_copy (&in, &slice, st), n->name);
      c0 += in.c;
    }
    /* padding channels past c0 (fp16) were zeroed at plan, and nothing writes them */
    return TRUE;
  }
  case HFAM_OP_SEMANTIC_HEAD:
    CUDA_TRY (hfam_cuda_semantic_head (&src, s->w, s->h, value_planar (be, slot, id), st),
              n->name);
    return TRUE;
  case HFAM_OP_ATTENTION:
    CUDA_TRY (hfam_cuda_attention_map (value_planar (be, slot, n->inputs[0]), s->w * s->h,
                                       s->att_w, s->att_b, value_planar (be, slot, id), st),
              n->name);
    return TRUE;
  case HFAM_OP_POOL_MAP: {
    const Step *in = &be->steps[n->inputs[0]];
    CUDA_TRY (hfam_cuda_pool_plane (value_planar (be, slot, n->inputs[0]), in->w, in->h,
                                    n->factor, value_planar (be, slot, id), st), n->name);
    return TRUE;
  }
  case HFAM_OP_SCALE_BY_MAP:
    CUDA_TRY (hfam_cuda_scale_by_map (&src, value_planar (be, slot, n->inputs[1]), &dst, st),
              n->name);
    return TRUE;
  case HFAM_OP_FUSION: {
    float *out = value_planar (be, slot, id);
    CUDA_TRY (hfam_cuda_fusion (&src, value_planar (be, slot, n->inputs[1]), s->w, s->h, out,
                                out + (size_t) s->w * s->h, st), n->name);
    return TRUE;
  }
  }
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "cuda backend: %s: unknown operation",
               n->name);
  return FALSE;
}

/* HFAM_CUDA_PROFILE: a host function that holds a stream until the host opens the gate. */
typedef struct {
  GMutex lock;
  GCond cond;
  gboolean open;
} Gate;

static void CUDART_CB
gate_wait (void *data)
{
  Gate *gate = data;
  g_mutex_lock (&gate->lock);
  while (!gate->open)
    g_cond_wait (&gate->cond, &gate->lock);
  g_mutex_unlock (&gate->lock);
}

static void
gate_open (Gate *gate)
{
  g_mutex_lock (&gate->lock);
  gate->open = TRUE;
  g_cond_signal (&gate->cond);
  g_mutex_unlock (&gate->lock);
}

/* Queues one stage of the frame in `slot`, each node on its lane's stream after the waits the
 * graph's lane order asks for. For a host frame the first stage uploads and converts the input
 * (then the other lanes start from the main stream) and the last one downloads alpha_p, once
 * every lane has joined the main stream (recording frame_done there unless the work is being
 * captured). */
static gboolean
queue_stage_work (CudaBackend *be, Slot *slot, HfamStage stage, FrameKind kind,
                  gboolean capturing, GError **error)
{
  const HfamGraph *g = be->base.graph;
  const cudaStream_t main = slot->streams[MAIN_STREAM];
  const char *name = hfam_stage_name (stage);
  const size_t plane = (size_t) be->width * be->height;

  if (stage == 0) {
    if (kind == FRAME_HOST) {
      const HfamNhwc in = value_nhwc (be, slot, g->input);
      float *dev_in = (float *) (slot->arena + slot->dev_in_offset);
      CUDA_TRY (cudaMemcpyAsync (dev_in, slot->host_in, sizeof (float) * 3 * plane,
                                 cudaMemcpyHostToDevice, main), "input");
      CUDA_TRY (hfam_cuda_from_planar (dev_in, &in, main), "input");
    }
    /* (in a capture this is what brings the other streams into the graph) */
    CUDA_TRY (cudaEventRecord (slot->frame_start, main), name);
    for (int k = 1; k < be->n_streams; k++)
      CUDA_TRY (cudaStreamWaitEvent (slot->streams[k], slot->frame_start, 0), name);
  }
  for (int i = 0; i < g->n_nodes; i++) {
    const int stream = node_stream (be, i);
    const cudaStream_t st = slot->streams[stream];
    if (g->nodes[i].stage != stage)
      continue;
    for (int m = 0; m < HFAM_N_LANES && be->n_streams > 1; m++) {
      const int j = g->lane_waits[(size_t) i * HFAM_N_LANES + m];
      if (j >= 0)
        CUDA_TRY (cudaStreamWaitEvent (st, slot->node_done[j], 0), g->nodes[i].name);
    }
    if (be->node_ms)
      CUDA_TRY (cudaEventRecord (be->node_events[2 * i], st), g->nodes[i].name);
    if (!run_node (be, slot, i, error))
      return FALSE;
    if (be->node_ms)
      CUDA_TRY (cudaEventRecord (be->node_events[2 * i + 1], st), g->nodes[i].name);
    if (be->n_streams > 1 && g->lane_signals[i])
      CUDA_TRY (cudaEventRecord (slot->node_done[i], st), g->nodes[i].name);
    if (be->debug_sync) {
      CUDA_TRY (cudaStreamSynchronize (st), g->nodes[i].name);
      CUDA_TRY (cudaGetLastError (), g->nodes[i].name);
    }
  }
  if (stage == HFAM_N_STAGES - 1) {
    for (int k = 1; k < be->n_streams; k++) {
      CUDA_TRY (cudaEventRecord (slot->lane_done[k], slot->streams[k]), name);
      CUDA_TRY (cudaStreamWaitEvent (main, slot->lane_done[k], 0), name);
    }
    if (kind == FRAME_HOST) {
      const float *fusion = value_planar (be, slot, g->fusion);
      CUDA_TRY (cudaMemcpyAsync (slot->host_alpha, fusion + plane, sizeof (float) * plane,
                                 cudaMemcpyDeviceToHost, main), "alpha");
    }
    if (!capturing)
      CUDA_TRY (cudaEventRecord (slot->frame_done, main), name);
  }
  return TRUE;
}

/* queue_stage_work; with HFAM_CUDA_PROFILE (one stream), once the slot is warm, behind a gate
 * (opened once the whole stage is queued, whatever happened), then waits for it and adds up the
 * time of each node. The last stage of an uncaptured frame makes the slot warm: the first one
 * runs ungated, since loading a kernel lazily may wait for the stream that the gate holds. */
static gboolean
queue_stage (CudaBackend *be, Slot *slot, HfamStage stage, FrameKind kind, gboolean capturing,
             GError **error)
{
  const HfamGraph *g = be->base.graph;
  const char *name = hfam_stage_name (stage);
  Gate gate = { .open = FALSE };
  gboolean ok;

  if (!be->node_ms || !slot->warm) {
    ok = queue_stage_work (be, slot, stage, kind, capturing, error);
    if (ok && !capturing && stage == HFAM_N_STAGES - 1)
      slot->warm = TRUE;
    return ok;
  }
  g_mutex_init (&gate.lock);
  g_cond_init (&gate.cond);
  if (cudaLaunchHostFunc (slot->streams[MAIN_STREAM], gate_wait, &gate) != cudaSuccess)
    gate.open = TRUE;  /* nothing waits on it */
  ok = queue_stage_work (be, slot, stage, kind, capturing, error);
  gate_open (&gate);
  if (cudaStreamSynchronize (slot->streams[MAIN_STREAM]) != cudaSuccess && ok) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "cuda backend: %s: %s", name,
                 cudaGetErrorString (cudaGetLastError ()));
    ok = FALSE;
  }
  g_mutex_clear (&gate.lock);
  g_cond_clear (&gate.cond);
  for (int i = 0; i < g->n_nodes && ok; i++) {
    float ms;
    if (g->nodes[i].stage != stage)
      continue;
    CUDA_TRY (cudaEventElapsedTime (&ms, be->node_events[2 * i], be->node_events[2 * i + 1]),
              g->nodes[i].name);
    be->node_ms[i] += ms;
  }
  if (ok && stage == HFAM_N_STAGES - 1)
    be->profiled_frames++;
  return ok;
}

/* Ends a capture that went wrong and leaves every stream of the slot usable. */
static void
abandon_capture (const CudaBackend *be, Slot *slot)
{
  cudaGraph_t graph = NULL;
  enum cudaStreamCaptureStatus status;

  cudaStreamEndCapture (slot->streams[MAIN_STREAM], &graph);
  if (graph)
    cudaGraphDestroy (graph);
  for (int k = 0; k < be->n_streams; k++)
    if (cudaStreamIsCapturing (slot->streams[k], &status) == cudaSuccess
        && status != cudaStreamCaptureStatusNone) {
      graph = NULL;
      cudaStreamEndCapture (slot->streams[k], &graph);
      if (graph)
        cudaGraphDestroy (graph);
    }
  cudaGetLastError ();
}

/* Captures the whole frame of `slot` for a frame of `kind` into a graph; FALSE (no error set)
 * if capture does not work here, with the streams left usable. */
static gboolean
capture_frame (CudaBackend *be, Slot *slot, FrameKind kind)
{
  g_autoptr (GError) error = NULL;
  cudaGraph_t graph = NULL;
  cudaError_t err;

  if (cudaStreamBeginCapture (slot->streams[MAIN_STREAM], cudaStreamCaptureModeThreadLocal)
      != cudaSuccess) {
    cudaGetLastError ();
    return FALSE;
  }
  for (int stage = 0; stage < HFAM_N_STAGES; stage++)
    if (!queue_stage (be, slot, stage, kind, TRUE, &error)) {
      g_debug ("cuda backend: capture failed (%s); queueing kernels instead", error->message);
      abandon_capture (be, slot);
      return FALSE;
    }
  err = cudaStreamEndCapture (slot->streams[MAIN_STREAM], &graph);
  if (err == cudaSuccess && graph)
    err = cudaGraphInstantiate (&slot->graphs[kind], graph, 0);
  if (graph)
    cudaGraphDestroy (graph);
  if (err != cudaSuccess) {
    g_debug ("cuda backend: capture failed (%s); queueing kernels instead",
             cudaGetErrorString (err));
    slot->graphs[kind] = NULL;
    abandon_capture (be, slot);
    return FALSE;
  }
  return TRUE;
}

/* Queues the whole frame of `slot`: a host frame's input is in host_in already, a device
 * frame's preprocessing queued on the main stream. */
static gboolean
queue_whole_frame (CudaBackend *be, Slot *slot, FrameKind kind, GError **error)
{
  /* A slot's first frame after a plan runs uncaptured: the first use of its cuDNN handles and
   * of lazily loaded kernels may do what a capture does not allow. */
  if (be->graphs && slot->warm && !slot->graphs[kind] && !capture_frame (be, slot, kind)) {
    g_message ("cuda backend: CUDA graph capture failed (G_MESSAGES_DEBUG=all says why); "
               "queueing kernels from now on, which is slower");
    be->graphs = FALSE;
  }
  if (be->graphs && slot->warm) {
    CUDA_TRY (cudaGraphLaunch (slot->graphs[kind], slot->streams[MAIN_STREAM]), "frame");
    CUDA_TRY (cudaEventRecord (slot->frame_done, slot->streams[MAIN_STREAM]), "frame");
    return TRUE;
  }
  for (int stage = 0; stage < HFAM_N_STAGES; stage++)
    if (!queue_stage (be, slot, stage, kind, FALSE, error))
      return FALSE;
  return TRUE;
}

/* ---- planning ---- */

static void
free_slot_plan (Slot *slot)
{
  for (int k = 0; k < N_FRAME_KINDS; k++) {
    if (slot->graphs[k])
      cudaGraphExecDestroy (slot->graphs[k]);
    slot->graphs[k] = NULL;
  }
  cudaFree (slot->arena);
  slot->arena = NULL;
  for (int k = 0; k < N_STREAMS; k++) {
    cudaFree (slot->workspace[k]);
    slot->workspace[k] = NULL;
  }
  if (slot->host_in)
    cudaFreeHost (slot->host_in);
  if (slot->host_alpha)
    cudaFreeHost (slot->host_alpha);
  slot->host_in = slot->host_alpha = NULL;
  slot->queued = FALSE;
  slot->next_stage = 0;
  slot->warm = FALSE;
}

static void
clear_plan (CudaBackend *be)
{
  for (int k = 0; k < be->depth; k++) {
    Slot *slot = &be->slots[k];
    for (int j = 0; j < N_STREAMS; j++)
      if (slot->streams[j])
        cudaStreamSynchronize (slot->streams[j]);
    free_slot_plan (slot);
  }
  memset (be->workspace_need, 0, sizeof be->workspace_need);
  be->width = be->height = 0;
  be->head = be->tail = 0;
  be->whole_frame_queued = FALSE;
}

static gboolean
cuda_plan (HfamBackend *base, int width, int height, GError **error)
{
  CudaBackend *be = (CudaBackend *) base;
  const HfamGraph *g = base->graph;
  const size_t plane = (size_t) width * height;
  size_t arena_size, find_ws_size = WORKSPACE_CAP;
  void *find_ws = NULL;
  gboolean ok = TRUE;

  if (be->width == width && be->height == height)
    return TRUE;
  if (!use_device (be, "plan", error))
    return FALSE;
  clear_plan (be);
  if (width < 32 || height < 32 || width % 32 || height % 32) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "cuda backend: input %dx%d: both sides must be positive multiples of 32", width,
                 height);
    return FALSE;
  }
  if (!be->weights && !load_weights (be, error)) {
    /* half loaded is not loaded: the next plan starts over */
    cudaFree (be->weights);
    be->weights = NULL;
    return FALSE;
  }
  be->width = width;
  be->height = height;
  arena_size = size_values (be);
  for (int k = 0; k < be->depth; k++) {
    Slot *slot = &be->slots[k];
    if (cudaMalloc ((void **) &slot->arena, arena_size) != cudaSuccess
        || cudaMemset (slot->arena, 0, arena_size) != cudaSuccess
        || cudaHostAlloc ((void **) &slot->host_in, sizeof (float) * 3 * plane,
                          cudaHostAllocDefault) != cudaSuccess
        || cudaHostAlloc ((void **) &slot->host_alpha, sizeof (float) * plane,
                          cudaHostAllocDefault) != cudaSuccess) {
      cudaGetLastError ();
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                   "cuda backend: %dx%d: cannot allocate %zu MiB of device memory per frame "
                   "slot (%d slots) or the pinned staging", width, height, arena_size >> 20,
                   be->depth);
      clear_plan (be);
      return FALSE;
    }
  }
  g_debug ("cuda backend: %dx%d: %zu MiB of activations per slot, %d slot(s)", width, height,
           arena_size >> 20, be->depth);

  /* the algorithm search's workspace: as much of the cap as the device gives */
  while (cudaMalloc (&find_ws, find_ws_size) != cudaSuccess && find_ws_size > (1 << 20)) {
    cudaGetLastError ();
    find_ws = NULL;
    find_ws_size /= 2;
  }
  if (!find_ws) {
    cudaGetLastError ();
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                 "cuda backend: no device memory for cuDNN's workspace");
    clear_plan (be);
    return FALSE;
  }
  for (int i = 0; i < g->n_nodes && ok; i++)
    if (be->steps[i].is_conv)
      ok = plan_conv (be, i, find_ws, find_ws_size, error);
  cudaFree (find_ws);
  for (int k = 0; k < be->depth && ok; k++)
    for (int j = 0; j < N_STREAMS && ok; j++)
      if (be->workspace_need[j]
          && cudaMalloc (&be->slots[k].workspace[j], be->workspace_need[j]) != cudaSuccess) {
        cudaGetLastError ();
        g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                     "cuda backend: cannot allocate %zu MiB of cuDNN workspace",
                     be->workspace_need[j] >> 20);
        ok = FALSE;
      }
  /* the algorithm search wrote into the values: start clean (padding channels must be 0) */
  for (int k = 0; k < be->depth && ok; k++)
    if (cudaMemset (be->slots[k].arena, 0, arena_size) != cudaSuccess
        || cudaDeviceSynchronize () != cudaSuccess) {
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "cuda backend: plan: %s",
                   cudaGetErrorString (cudaGetLastError ()));
      ok = FALSE;
    }
  if (!ok) {
    clear_plan (be);
    return FALSE;
  }
  return TRUE;
}

/* ---- the frame interface ---- */

static Slot *
head_slot (CudaBackend *be)
{
  return &be->slots[be->head % be->depth];
}

static gboolean
check_planned (CudaBackend *be, GError **error)
{
  if (be->width)
    return TRUE;
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "cuda backend: run before plan");
  return FALSE;
}

/* The slot the next frame goes to, or NULL (with an error) while it is in flight. */
static Slot *
free_head_slot (CudaBackend *be, GError **error)
{
  Slot *slot = head_slot (be);

  if (!slot->queued && slot->next_stage == 0)
    return slot;
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
               "cuda backend: every frame slot is in flight: collect a frame first");
  return NULL;
}

static gboolean
cuda_set_input (HfamBackend *base, const float *input, GError **error)
{
  CudaBackend *be = (CudaBackend *) base;
  Slot *slot;

  if (!check_planned (be, error) || !(slot = free_head_slot (be, error)))
    return FALSE;
  memcpy (slot->host_in, input, sizeof (float) * 3 * (size_t) be->width * be->height);
  return TRUE;
}

/* After a failure while queueing: wait for what was queued and make the slot free again. */
static void
drain_slot (CudaBackend *be, Slot *slot)
{
  for (int j = 0; j < be->n_streams; j++)
    cudaStreamSynchronize (slot->streams[j]);
  cudaGetLastError ();
  slot->next_stage = 0;
  be->whole_frame_queued = FALSE;
}

static void
finish_queueing (CudaBackend *be, Slot *slot, FrameKind kind)
{
  slot->queued = TRUE;
  slot->kind = kind;
  slot->next_stage = 0;
  be->head++;
}

/* Takes the oldest frame out of flight and returns its slot; NULL, with an error, when there
 * is none (nothing taken) or when it is not of `kind` (dropped then, as after any failed
 * collect). A dropped frame may still be running: whatever the slot takes next is queued on
 * the same streams, after it. */
static Slot *
take_oldest_frame (CudaBackend *be, FrameKind kind, GError **error)
{
  static const char *const collect[N_FRAME_KINDS] = {
    [FRAME_HOST] = "collect_frame", [FRAME_DEVICE] = "collect_device_matte",
  };
  Slot *slot;

  if (!check_planned (be, error))
    return NULL;
  slot = &be->slots[be->tail % be->depth];
  if (!slot->queued) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "cuda backend: no frame to collect");
    return NULL;
  }
  slot->queued = FALSE;
  be->tail++;
  /* (a frame that run_stage queued whole and that failed before its last stage) */
  be->whole_frame_queued = FALSE;
  if (slot->kind == kind)
    return slot;
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
               "cuda backend: %s on a frame that only %s collects: the frame is dropped",
               collect[kind], collect[slot->kind]);
  return NULL;
}

static gboolean
cuda_run_stage (HfamBackend *base, HfamStage stage, GError **error)
{
  CudaBackend *be = (CudaBackend *) base;
  Slot *slot;

  if (!check_planned (be, error) || !use_device (be, hfam_stage_name (stage), error))
    return FALSE;
  slot = head_slot (be);
  if (!be->whole_frame_queued && ((int) stage != slot->next_stage || slot->queued)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "cuda backend: stage %s queued out of order", hfam_stage_name (stage));
    return FALSE;
  }
  /* a graph holds the whole frame: it goes with the first stage, the others have nothing
   * left to queue */
  if (be->whole_frame_queued) {
    if (stage == HFAM_N_STAGES - 1)
      be->whole_frame_queued = FALSE;
    return TRUE;
  }
  if (stage == 0 && be->graphs) {
    /* (if capture fails here, this queues every stage without a graph) */
    if (!queue_whole_frame (be, slot, FRAME_HOST, error)) {
      drain_slot (be, slot);
      return FALSE;
    }
    finish_queueing (be, slot, FRAME_HOST);
    be->whole_frame_queued = HFAM_N_STAGES > 1;
    return TRUE;
  }
  if (!queue_stage (be, slot, stage, FRAME_HOST, FALSE, error)) {
    drain_slot (be, slot);
    return FALSE;
  }
  slot->next_stage = stage + 1;
  if (slot->next_stage == HFAM_N_STAGES)
    finish_queueing (be, slot, FRAME_HOST);
  return TRUE;
}

/* Stages queued for the frame at the head that hfam.c's timing waits for one by one; and
 * in-flight frames are not touched. */
static gboolean
cuda_synchronize (HfamBackend *base, GError **error)
{
  CudaBackend *be = (CudaBackend *) base;

  if (!use_device (be, "synchronize", error))
    return FALSE;
  for (int k = 0; k < be->depth; k++) {
    Slot *slot = &be->slots[k];
    if (slot->queued)
      CUDA_TRY (cudaEventSynchronize (slot->frame_done), "synchronize");
    else if (slot->next_stage > 0)
      for (int j = 0; j < be->n_streams; j++)
        CUDA_TRY (cudaStreamSynchronize (slot->streams[j]), "synchronize");
  }
  return TRUE;
}

static gboolean
cuda_collect_frame (HfamBackend *base, HfamOutputs *out, GError **error)
{
  CudaBackend *be = (CudaBackend *) base;
  const HfamGraph *g = base->graph;
  const size_t plane = (size_t) be->width * be->height;
  Slot *slot;
  cudaError_t err;

  if (!(slot = take_oldest_frame (be, FRAME_HOST, error)) || !use_device (be, "outputs", error))
    return FALSE;
  err = cudaEventSynchronize (slot->frame_done);
  if (err == cudaSuccess && out->semantic)
    err = cudaMemcpy (out->semantic, value_planar (be, slot, g->semantic),
                      sizeof (float) * 3 * plane, cudaMemcpyDeviceToHost);
  if (err == cudaSuccess && out->detail)
    err = cudaMemcpy (out->detail, value_planar (be, slot, g->fusion), sizeof (float) * plane,
                      cudaMemcpyDeviceToHost);
  if (err != cudaSuccess) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "cuda backend: frame failed: %s",
                 cudaGetErrorString (err));
    return FALSE;
  }
  if (out->fused)
    memcpy (out->fused, slot->host_alpha, sizeof (float) * plane);
  return TRUE;
}

static gboolean
cuda_queue_frame (HfamBackend *base, const float *input, GError **error)
{
  CudaBackend *be = (CudaBackend *) base;
  Slot *slot;

  if (!cuda_set_input (base, input, error) || !use_device (be, "frame", error))
    return FALSE;
  slot = head_slot (be);
  if (!queue_whole_frame (be, slot, FRAME_HOST, error)) {
    drain_slot (be, slot);
    return FALSE;
  }
  finish_queueing (be, slot, FRAME_HOST);
  return TRUE;
}

/* Whether the device can read `p`: a kernel reading host memory would fault, and a fault
 * spoils the whole CUDA context, the caller's too. */
static gboolean
check_device_memory (const void *p, const char *what, int index, GError **error)
{
  struct cudaPointerAttributes attr;
  cudaError_t err = cudaPointerGetAttributes (&attr, p);

  if (err == cudaSuccess && attr.devicePointer)
    return TRUE;
  cudaGetLastError ();
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
               "cuda backend: %s %d (%p) is not memory the device can read%s%s", what, index, p,
               err != cudaSuccess ? ": " : " (host memory?)",
               err != cudaSuccess ? cudaGetErrorString (err) : "");
  return FALSE;
}

static gboolean
check_frame_memory (const HfamFrame *frame, GError **error)
{
  const int n_planes = frame->format == HFAM_FRAME_I420 ? 3 : frame->format == HFAM_FRAME_NV12 ? 2
                                                                                             : 1;
  for (int k = 0; k < n_planes; k++)
    if (!check_device_memory (frame->planes[k], "frame plane", k, error))
      return FALSE;
  return TRUE;
}

static gboolean
cuda_queue_device_frame (HfamBackend *base, const HfamFrame *frame,
                         const HfamPreprocessParams *params, GError **error)
{
  CudaBackend *be = (CudaBackend *) base;
  Slot *slot;
  HfamNhwc input;

  if (!check_planned (be, error) || !use_device (be, "device frame", error)
      || !(slot = free_head_slot (be, error)) || !check_frame_memory (frame, error))
    return FALSE;
  /* the slot's last frame is collected: nothing reads its filters any more */
  if (!ensure_filter (&slot->to_input[0], frame->width, be->width, "preprocess", error)
      || !ensure_filter (&slot->to_input[1], frame->height, be->height, "preprocess", error))
    return FALSE;
  input = value_nhwc (be, slot, be->base.graph->input);
  /* on the main stream, ahead of the frame's graph (which cannot hold the frame's
   * pointers: they change from frame to frame) */
  CUDA_TRY (hfam_cuda_preprocess (frame, params, &slot->to_input[0], &slot->to_input[1], &input,
                                  slot->streams[MAIN_STREAM]), "preprocess");
  if (!queue_whole_frame (be, slot, FRAME_DEVICE, error)) {
    drain_slot (be, slot);
    return FALSE;
  }
  finish_queueing (be, slot, FRAME_DEVICE);
  return TRUE;
}

/* The kept matte's stream: made when first needed (the caller's context is current then). */
static gboolean
ensure_matte_stream (CudaBackend *be, GError **error)
{
  if (!be->matte_stream)
    CUDA_TRY (cudaStreamCreateWithFlags (&be->matte_stream, cudaStreamNonBlocking),
              "matte stream");
  return TRUE;
}

/* Queues the alpha_p of the frame in `slot` into the kept matte on the matte stream, after the
 * frame: blended when `blend` (a kept matte of the planned size exists), else copied, into an
 * allocation of the planned size. */
static gboolean
keep_matte (CudaBackend *be, Slot *slot, gboolean blend, float smoothing, GError **error)
{
  const size_t plane = (size_t) be->width * be->height;
  /* fusion's output: alpha_d, then alpha_p */
  const float *alpha = value_planar (be, slot, be->base.graph->fusion) + plane;

  CUDA_TRY (cudaStreamWaitEvent (be->matte_stream, slot->frame_done, 0), "kept matte");
  if (blend) {
    CUDA_TRY (hfam_cuda_matte_blend (be->kept, alpha, plane, smoothing, be->matte_stream),
              "temporal smoothing");
    return TRUE;
  }
  if (be->kept_width != be->width || be->kept_height != be->height) {
    /* every call waited for the matte stream: nothing reads the old one */
    cudaFree (be->kept);
    be->kept = NULL;
    be->kept_width = be->kept_height = 0;
    CUDA_TRY (cudaMalloc ((void **) &be->kept, sizeof (float) * plane), "kept matte");
    be->kept_width = be->width;
    be->kept_height = be->height;
  }
  CUDA_TRY (cudaMemcpyAsync (be->kept, alpha, sizeof (float) * plane, cudaMemcpyDeviceToDevice,
                             be->matte_stream), "kept matte");
  return TRUE;
}

/* Queues the kept matte into the outputs on the matte stream, the colour formats with
 * `frame`'s colours. */
static gboolean
write_kept (CudaBackend *be, const HfamFrame *frame, const HfamYuvToRgb *yuv,
            const HfamMatteImage *outputs, int n_outputs, GError **error)
{
  /* hfam_cuda_matte asks for a matrix even where the frame is RGB and it is not read */
  static const HfamYuvToRgb unused_yuv;
  gboolean colour = FALSE;

  if (n_outputs == 0)
    return TRUE;
  for (int i = 0; i < n_outputs; i++) {
    if (!check_device_memory (outputs[i].data, "output", i, error))
      return FALSE;
    colour |= outputs[i].format >= HFAM_MATTE_RGBA;
  }
  if ((colour && !check_frame_memory (frame, error))
      || !ensure_filter (&be->kept_to_frame[0], be->kept_width, outputs[0].width, "matte",
                         error)
      || !ensure_filter (&be->kept_to_frame[1], be->kept_height, outputs[0].height, "matte",
                         error))
    return FALSE;
  for (int i = 0; i < n_outputs; i++) {
    const cudaError_t err = hfam_cuda_matte (be->kept, be->kept_width, be->kept_height,
                                             &be->kept_to_frame[0], &be->kept_to_frame[1],
                                             frame, yuv ? yuv : &unused_yuv, &outputs[i],
                                             be->matte_stream);
    if (err != cudaSuccess) {
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                   "cuda backend: output %d (%dx%d, matte format %d): hfam_cuda_matte failed: "
                   "%s", i, outputs[i].width, outputs[i].height, outputs[i].format,
                   cudaGetErrorString (err));
      return FALSE;
    }
  }
  return TRUE;
}

/* Waits for everything queued on the matte stream, after a failure too (nothing may still
 * write the kept matte or the outputs when the call returns); `ok`: how it went so far. */
static gboolean
finish_matte (CudaBackend *be, gboolean ok, const char *what, GError **error)
{
  const cudaError_t err = cudaStreamSynchronize (be->matte_stream);

  if (err != cudaSuccess && ok) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "cuda backend: %s failed: %s", what,
                 cudaGetErrorString (err));
    return FALSE;
  }
  return ok;
}

static gboolean
cuda_collect_device_matte (HfamBackend *base, const HfamFrame *frame, const HfamYuvToRgb *yuv,
                           float smoothing, const HfamMatteImage *outputs, int n_outputs,
                           GError **error)
{
  CudaBackend *be = (CudaBackend *) base;
  const gboolean blend = smoothing > 0.0f && be->have_kept && be->kept_width == be->width
                         && be->kept_height == be->height;
  Slot *slot;
  gboolean ok;

  /* blended into or replaced, the matte kept so far is gone; a failure leaves none */
  be->have_kept = FALSE;
  if (!(slot = take_oldest_frame (be, FRAME_DEVICE, error)) || !use_device (be, "matte", error)
      || !ensure_matte_stream (be, error))
    return FALSE;
  ok = keep_matte (be, slot, blend, smoothing, error)
       && write_kept (be, frame, yuv, outputs, n_outputs, error);
  /* the matte stream waited for the frame (unless that failed: a dropped frame may run on),
   * so the slot is idle once it is done */
  be->have_kept = finish_matte (be, ok, "frame", error);
  return be->have_kept;
}

static gboolean
cuda_write_kept_matte (HfamBackend *base, const HfamFrame *frame, const HfamYuvToRgb *yuv,
                       const HfamMatteImage *outputs, int n_outputs, GError **error)
{
  CudaBackend *be = (CudaBackend *) base;

  if (!use_device (be, "kept matte", error))
    return FALSE;
  if (!be->have_kept) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "cuda backend: no matte is kept: collect a device frame first");
    return FALSE;
  }
  return finish_matte (be, write_kept (be, frame, yuv, outputs, n_outputs, error), "matte",
                       error);
}

static int
compare_node_ms (gconstpointer a, gconstpointer b, gpointer data)
{
  const double *ms = data;
  const double x = ms[*(const int *) a], y = ms[*(const int *) b];
  return (x < y) - (x > y);
}

/* HFAM_CUDA_PROFILE: what kind of work a node is, for the totals by kind. */
static const char *
node_kind (const HfamNode *n)
{
  static const char *const ops[] = {
    [HFAM_OP_INPUT] = "input", [HFAM_OP_CONV] = "conv", [HFAM_OP_MAXPOOL] = "maxpool",
    [HFAM_OP_AVGPOOL] = "avgpool", [HFAM_OP_GLOBAL_POOL] = "global pool",
    [HFAM_OP_RESIZE] = "resize", [HFAM_OP_CONCAT] = "concat copies",
    [HFAM_OP_SK_PROJECT] = "SK fold + 1x1 conv", [HFAM_OP_SEMANTIC_HEAD] = "semantic head",
    [HFAM_OP_ATTENTION] = "attention", [HFAM_OP_POOL_MAP] = "pool map",
    [HFAM_OP_SCALE_BY_MAP] = "scale by map", [HFAM_OP_FUSION] = "fusion",
  };
  if (n->op != HFAM_OP_CONV)
    return ops[n->op];
  if (n->conv.kernel == 3)
    return n->conv.dilation > 1 ? "conv 3x3 dilated" : "conv 3x3";
  return n->conv.kernel == 1 ? "conv 1x1" : "conv 7x7";
}

/* Multiply-accumulates of a convolution node (0 for the others). */
static double
node_macs (const CudaBackend *be, int id)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  const HfamConvParams *p = n->op == HFAM_OP_CONV ? &n->conv
                            : n->op == HFAM_OP_SK_PROJECT ? &n->sk.project : NULL;
  const Step *s = &be->steps[id];
  return p ? (double) s->w * s->h * p->cout * p->cin * p->kernel * p->kernel : 0.0;
}

/* HFAM_CUDA_PROFILE: the nodes that took the most time, with what the convolutions achieved
 * (TFLOP/s, 2 per multiply-accumulate), then the totals by kind of node, on stderr. */
static void
print_profile (const CudaBackend *be)
{
  const HfamGraph *g = be->base.graph;
  g_autofree int *order = g_new (int, g->n_nodes);
  /* kind -> ms, nodes, MACs */
  g_autoptr (GHashTable) kinds = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  g_autoptr (GList) names = NULL;
  double total = 0.0;

  for (int i = 0; i < g->n_nodes; i++) {
    double *sum = g_hash_table_lookup (kinds, node_kind (&g->nodes[i]));
    order[i] = i;
    total += be->node_ms[i];
    if (!sum) {
      sum = g_new0 (double, 3);
      g_hash_table_insert (kinds, (gpointer) node_kind (&g->nodes[i]), sum);
    }
    sum[0] += be->node_ms[i];
    sum[1] += 1.0;
    sum[2] += node_macs (be, i);
  }
  if (total <= 0.0)
    return;
  g_qsort_with_data (order, g->n_nodes, sizeof *order, compare_node_ms, be->node_ms);
  g_printerr ("cuda backend profile: %.3f ms in all nodes, over every frame run (%d frames); "
              "the slowest:\n", total, be->profiled_frames);
  for (int k = 0; k < MIN (g->n_nodes, 40); k++) {
    const int i = order[k];
    const Step *s = &be->steps[i];
    const double macs = node_macs (be, i);
    g_printerr ("  %-28s %-9s %8.3f ms %5.1f %%  %dx%dx%d", g->nodes[i].name,
                hfam_stage_name (g->nodes[i].stage), be->node_ms[i],
                100.0 * be->node_ms[i] / total, s->w, s->h, s->cs);
    if (s->is_conv && s->choice.splits > 1)
      g_printerr (" %s split-K %d, %.1f TFLOP/s", node_kind (&g->nodes[i]), s->choice.splits,
                  2.0 * macs * be->profiled_frames / (be->node_ms[i] * 1e9));
    else if (s->is_conv)
      g_printerr (" %s%s%s, %.1f TFLOP/s", node_kind (&g->nodes[i]),
                  s->choice.gemm ? " cuBLASLt" : "", s->choice.fused ? " fused" : " + bias_act",
                  2.0 * macs * be->profiled_frames / (be->node_ms[i] * 1e9));
    g_printerr ("\n");
  }
  g_printerr ("by kind:\n");
  names = g_hash_table_get_keys (kinds);
  for (GList *l = names; l; l = l->next) {
    const double *sum = g_hash_table_lookup (kinds, l->data);
    g_printerr ("  %-20s %4.0f nodes %8.3f ms %5.1f %%", (const char *) l->data, sum[1], sum[0],
                100.0 * sum[0] / total);
    if (sum[2] > 0.0)
      g_printerr (" %.1f TFLOP/s", 2.0 * sum[2] * be->profiled_frames / (sum[0] * 1e9));
    g_printerr ("\n");
  }
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
  for (int t = 0; t < 2; t++)
    hfam_cuda_filter_free (&be->kept_to_frame[t]);
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
  cudaFree (be->weights);
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
  .queue_device_frame = cuda_queue_device_frame,
  .collect_device_matte = cuda_collect_device_matte,
  .write_kept_matte = cuda_write_kept_matte,
};

static gboolean
create_objects (CudaBackend *be, GError **error)
{
  const HfamGraph *g = be->base.graph;

  for (int k = 0; k < be->depth; k++) {
    Slot *slot = &be->slots[k];
    for (int j = 0; j < be->n_streams; j++) {
      CUDA_TRY (cudaStreamCreateWithFlags (&slot->streams[j], cudaStreamNonBlocking), "streams");
      CUDNN_TRY (cudnnCreate (&slot->cudnn[j]), "cuDNN");
      CUDNN_TRY (cudnnSetStream (slot->cudnn[j], slot->streams[j]), "cuDNN");
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

/* For HfamCudaOptions.current_context: the context current on the calling thread, its device,
 * and the driver's cuCtxGetCurrent (reached through the runtime). */
static gboolean
find_current_context (PFN_cuCtxGetCurrent_v4000 *get_current, CUcontext *context, int *device,
                      GError **error)
{
  enum cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
  void *fn = NULL;
  cudaError_t err;

  err = cudaGetDriverEntryPointByVersion ("cuCtxGetCurrent", &fn, 4000, cudaEnableDefault,
                                          &found);
  if (err != cudaSuccess || found != cudaDriverEntryPointSuccess || !fn) {
    cudaGetLastError ();
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                 "cuda backend: the driver's cuCtxGetCurrent is not to be found (%s, query "
                 "result %d)", cudaGetErrorString (err), found);
    return FALSE;
  }
  *get_current = (PFN_cuCtxGetCurrent_v4000) fn;
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

HfamBackend *
hfam_backend_cuda_new (const HfamGraph *graph, int device_id, const HfamCudaOptions *options,
                       GError **error)
{
  static const HfamCudaOptions defaults = { .fp16 = TRUE };
  CudaBackend *be;
  struct cudaDeviceProp prop;
  int count = 0, device = device_id < 0 ? 0 : device_id;
  CUcontext context = NULL;
  PFN_cuCtxGetCurrent_v4000 get_current = NULL;
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
  if (options->current_context) {
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
  be->base.ops = &cuda_ops;
  be->base.graph = graph;
  be->device = device;
  be->context = context;
  be->get_current_context = get_current;
  be->dtype = options->fp16 ? HFAM_CUDA_F16 : HFAM_CUDA_F32;
  be->cudnn_dtype = options->fp16 ? CUDNN_DATA_HALF : CUDNN_DATA_FLOAT;
  be->depth = CLAMP (options->pipeline_depth, 1, MAX_DEPTH);
  /* (profiling times every node already; a sync inside its gated stages would wait forever) */
  be->debug_sync = env_flag ("HFAM_CUDA_SYNC") && !profile;
  be->graphs = !options->no_graphs && !be->debug_sync && !profile;
  be->split_k = split_k_setting ();
  be->gemm = gemm_setting ();
  /* a node timed or checked alone: one stream, so that nothing runs beside it */
  be->n_streams = be->debug_sync || profile || env_flag ("HFAM_CUDA_ONE_STREAM") ? 1 : N_STREAMS;
  be->base.pipeline_depth = be->depth;
  be->base.precision = options->fp16 ? HFAM_PRECISION_FP16 : HFAM_PRECISION_FP32;
  be->steps = g_new0 (Step, graph->n_nodes);
  if (profile) {
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
           "depth %d, graphs %s, %d stream(s) per frame", device, prop.name, prop.major,
           prop.minor, context ? "the caller's" : "its primary", cudnnGetVersion (),
           options->fp16 ? "fp16" : "fp32", be->depth, be->graphs ? "on" : "off",
           be->n_streams);
  return &be->base;
}
