/* The CUDA backend's insides, shared by its files in model/engine/cuda/ and private to them:
 * the backend, its frame slots and per-node steps, the error macros, and the functions one file
 * calls in another (grouped by the file that defines them). backend.c says how it works. */
#ifndef HFAM_CUDA_BACKEND_H
#define HFAM_CUDA_BACKEND_H

#include "backend.h"
#include "attention.cuh"
#include "compensate.cuh"
#include "foreground.cuh"
#include "bars.cuh"
#include "islands.cuh"
#include "matte.cuh"
#include "nhwc.cuh"
#include "refine.cuh"
#include "temporal.cuh"
#include "sk.cuh"
#include "softmax-fusion.cuh"

#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#ifdef HFAM_HAVE_CUBLASLT
#include <cublasLt.h>
#endif
#include <gmodule.h>

#define MAX_DEPTH 2
#define N_STREAMS HFAM_N_LANES
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
  /* SK_PROJECT: fp32 tensors in the weight allocation; per-frame weights in the slots, the
   * first frame's at these offsets, frame k's sk_stride * k bytes further */
  HfamCudaSkWeights sk;
  size_t sk_weight_offset, sk_bias_offset, sk_scratch_offset, sk_stride;
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
  gboolean warm[N_FRAME_KINDS]; /* a whole frame of the kind ran uncaptured since the plan
                                   (the kinds' kernels differ: a device frame's first run of
                                   the host path's would happen inside a capture) */
  gboolean queued;              /* a frame is in flight here */
  int n_frames;                 /* queue_batch: the frames of the batch in flight here */
  FrameKind kind;               /* of the frame in flight */
  int next_stage;               /* set_input/run_stage: the next stage to queue */
  /* device frames: frame size -> inference size (x, y) */
  HfamCudaFilter to_input[2];
} Slot;

typedef struct {
  HfamBackend base;
  /* libhfam's hfam_stage_name, for the messages (see HfamCudaModuleNewBackend) */
  const char *(*stage_name) (HfamStage stage);
  int device;
  /* HfamCudaOptions.current_context: the caller's context, or HfamCudaBackendOptions.context
   * (NULL: the device's primary one) */
  CUcontext context;
  PFN_cuCtxGetCurrent_v4000 get_current_context;
  /* HfamCudaBackendOptions.context: the driver's cuCtxSetCurrent, which every call uses to
   * make `context` current on its thread (NULL: the caller makes it current) */
  PFN_cuCtxSetCurrent_v4000 set_current_context;
  /* HfamCudaBackendOptions.frames_only: a slot's arena holds the input tensor, then alpha_p
   * (from alpha_offset) that a batch group's lane writes */
  gboolean frames_only;
  size_t alpha_offset;
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
  char *weights;                /* device; shared (weights.c) */
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
  /* HFAM_TEMPORAL_MOTION: the grey planes of the kept matte's frame and of the frame being
   * kept (kept_width x kept_height each), and the normalisation they undo */
  float *grey[2];
  size_t grey_bytes;
  gboolean kept_grey_valid;     /* grey[0] is the kept matte's frame's */
  /* HFAM_TEMPORAL_COMPENSATED: kernels/compensate.cuh's scratch */
  float *flow_scratch;
  size_t flow_scratch_bytes;
  /* HfamFrameParams.islands: kernels/islands.cuh's scratch */
  void *islands_scratch;
  size_t islands_scratch_bytes;
  /* HfamFrameParams.letterbox: the bars kernels/bars.cuh found (4 ints at the inference size,
   * then 4 at the outputs' size), where kept_bars says the kept matte's were cleared, with
   * bar_params */
  int *bars_found;
  size_t bars_found_bytes;
  gboolean kept_bars;
  HfamBarParams bar_params;
  HfamPreprocessParams grey_params;
  /* frames that follow the kept matte (HfamDeviceOps.follow): such a frame preprocessed at the
   * kept matte's size (fp32 NHWC, 3 channels), and its filters to that size (x, y) */
  float *follow_input;
  size_t follow_input_bytes;
  HfamCudaFilter follow_to_kept[2];
  /* HFAM_TEMPORAL_MOTION and _COMPENSATED with refinement, as the host's (context.h): the
   * blend's still weights (kept_width x kept_height) and the refined matte's detail held at the
   * outputs' size */
  gboolean holds;               /* the kept matte's frame asked for it */
  float *still;
  size_t still_bytes;
  gboolean still_valid;         /* still belongs to the kept matte's blend with the one before */
  float *held;
  size_t held_bytes;
  int held_width, held_height;
  gboolean held_current;        /* held was refined from the kept matte, for its frame */
  /* the edges (hfam_context_set_edges) on device frames: the kept matte at the outputs' size,
   * refined or resized, then keyed; the refinement's plan for its sizes and parameters; the
   * foreground's workspace; identity filters for writing the outputs from that matte */
  float *edge_matte;
  size_t edge_matte_bytes;
  HfamCudaRefinePlan refine_plan;
  HfamRefineParams refine_params;   /* the plan's (radius 0: no plan) */
  void *foreground_workspace;
  size_t foreground_workspace_bytes;
  HfamCudaFilter edge_identity[2];
} CudaBackend;

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

static inline size_t
align_up (size_t n)
{
  return (n + ALIGN - 1) / ALIGN * ALIGN;
}

static inline size_t
elem (const CudaBackend *be)
{
  return hfam_cuda_dtype_size (be->dtype);
}

/* The stream of node `id`: its lane's, or the main one when every node runs alone. */
static inline int
node_stream (const CudaBackend *be, int id)
{
  return be->n_streams > 1 ? be->base.graph->nodes[id].lane : MAIN_STREAM;
}

/* The frames one cuDNN call of convolution `id` takes: the batch, except for the SK
 * projections, whose weights differ from frame to frame (one call a frame). */
static inline int
conv_batch (const CudaBackend *be, int id)
{
  return be->base.graph->nodes[id].op == HFAM_OP_SK_PROJECT ? 1 : be->base.batch;
}

static inline gboolean
is_planar (const HfamNode *n)
{
  /* the input is planar in the graph's terms (for the CPU); here it is NHWC */
  return n->planar && n->op != HFAM_OP_INPUT;
}

/* backend.c: the backend made and freed, the module's entry point */
G_MODULE_EXPORT HfamCudaModuleNewBackend hfam_cuda_module_new_backend;
G_MODULE_EXPORT extern const HfamCudaModuleAbi hfam_cuda_module_abi;
gboolean use_device (CudaBackend *be, const char *what, GError **error);

/* plan.c: the values' buffers, planning for an input size */
HfamNhwc value_nhwc (const CudaBackend *be, const Slot *slot, int id);
float *value_planar (const CudaBackend *be, const Slot *slot, int id);
/* The same for frame `frame` of the batch (value_nhwc and value_planar: frame 0). */
HfamNhwc value_nhwc_at (const CudaBackend *be, const Slot *slot, int id, int frame);
float *value_planar_at (const CudaBackend *be, const Slot *slot, int id, int frame);
void layout_values (CudaBackend *be);
void clear_plan (CudaBackend *be);
gboolean cuda_plan (HfamBackend *base, int width, int height, GError **error);
/* alpha_p of the frame in `slot` (frame 0 of a batch; a frames-only backend's from its lane) */
float *frame_alpha (const CudaBackend *be, const Slot *slot);

/* weights.c: the weights, shared by the model's backends on one context and dtype (loaded by
 * the first plan, released by free) */
gboolean load_weights (CudaBackend *be, GError **error);
void release_weights (CudaBackend *be);
/* (an SK projection's: frame `frame`'s; the other convolutions': the model's) */
void *conv_weight (const CudaBackend *be, const Slot *slot, int id, int frame);
void *conv_bias (const CudaBackend *be, const Slot *slot, int id, int frame);

/* conv.c: running a convolution one way or another */
gboolean split_k_applies (const CudaBackend *be, int id, int splits);
size_t split_k_partials_bytes (const CudaBackend *be, const Step *s, int splits);
gboolean prepare_split_k (CudaBackend *be, int id, int splits, GError **error);
gboolean gemm_applies (const CudaBackend *be, int id);
#ifdef HFAM_HAVE_CUBLASLT
gboolean prepare_gemm (CudaBackend *be, int id, GError **error);
gboolean set_gemm_epilogue (Step *s, const ConvChoice *way, const void *bias, const char *what,
                            GError **error);
#endif
/* (on conv_batch frames from frame `frame`) */
gboolean queue_conv (CudaBackend *be, Slot *slot, int id, int stream, const ConvChoice *way,
                     int frame, void *ws, GError **error);
gboolean run_conv (CudaBackend *be, Slot *slot, int id, int stream, int frame, GError **error);

/* conv-search.c: the way each convolution runs, chosen by timing */
extern const int split_k_ways[3];
gboolean plan_conv (CudaBackend *be, int id, void *find_ws, size_t find_ws_size,
                    GError **error);

/* queue.c: a frame's nodes and stages queued, or replayed from a CUDA graph */
gboolean queue_stage (CudaBackend *be, Slot *slot, HfamStage stage, FrameKind kind,
                      gboolean capturing, GError **error);
gboolean queue_whole_frame (CudaBackend *be, Slot *slot, FrameKind kind, GError **error);

/* frames.c: host frames, and the frame slots in flight */
gboolean check_planned (CudaBackend *be, GError **error);
Slot *free_head_slot (CudaBackend *be, GError **error);
void drain_slot (CudaBackend *be, Slot *slot);
void finish_queueing (CudaBackend *be, Slot *slot, FrameKind kind);
Slot *take_oldest_frame (CudaBackend *be, FrameKind kind, GError **error);
void drop_frame (Slot *slot);
gboolean cuda_set_input (HfamBackend *base, const float *input, GError **error);
gboolean cuda_run_stage (HfamBackend *base, HfamStage stage, GError **error);
gboolean cuda_synchronize (HfamBackend *base, GError **error);
gboolean cuda_collect_frame (HfamBackend *base, HfamOutputs *out, GError **error);
gboolean cuda_queue_frame (HfamBackend *base, const float *input, GError **error);
gboolean cuda_queue_batch (HfamBackend *base, const float *const *inputs, int n,
                           GError **error);
gboolean cuda_collect_batch (HfamBackend *base, HfamOutputs *out, int n, GError **error);
gboolean cuda_batch_done (HfamBackend *base);

/* device-frames.c: frames in device memory, and the kept matte; a batch of other backends'
 * device frames (HfamDeviceSlice) */
extern const HfamDeviceOps cuda_device_ops;
gboolean cuda_queue_device_batch (HfamBackend *base, const HfamDeviceSlice *slices, int n,
                                  GError **error);

/* profile.c: HFAM_CUDA_PROFILE */
void print_profile (const CudaBackend *be);

#endif
