/* The backend interface: a small table of functions that executes a HfamGraph, and for a
 * backend with device memory a second one that takes frames in and mattes out there.
 * A backend owns its buffers (host or device) and uses the weights in the layout it runs
 * fastest, a copy shared with the other backends of its model where it can (the CPU's per
 * layout, HfamCpuWeightCache; CUDA's per context and dtype, cuda/weights.c). Stages may be
 * asynchronous; synchronize() waits for everything queued.
 * What to run, when to blend and what to write is libhfam's to decide (frames.c). */
#ifndef HFAM_BACKEND_H
#define HFAM_BACKEND_H

#include "bars.h"
#include "compensate.h"
#include "foreground.h"
#include "frame.h"
#include "graph.h"
#include "islands.h"
#include "refine.h"
#include "temporal.h"

G_BEGIN_DECLS

/* The largest batch (HfamOptions.max_batch). */
#define HFAM_MAX_BATCH 64

/* Outputs at the inference size (planar, row-major); any may be NULL. */
typedef struct {
  float *semantic;  /* P_s: 3 planes (background, unknown, foreground) */
  float *detail;    /* alpha_d: 1 plane */
  float *fused;     /* alpha_p: 1 plane */
} HfamOutputs;

typedef struct _HfamBackend HfamBackend;

/* A device frame taken and preprocessed by one backend (a batch group's member) for another
 * (the group's lane, on the same CUDA context) to run: where its network input is, when it is
 * ready, and where its alpha_p goes. All in device memory; the member's, which stays put
 * until the member collects the frame. */
typedef struct {
  const void *input;   /* the network's input tensor, in the backends' layout and dtype */
  size_t input_bytes;
  void *ready;         /* a cudaEvent_t, recorded once `input` is written */
  float *alpha;        /* alpha_p, fp32, at the inference size */
} HfamDeviceSlice;

typedef struct {
  const char *name;
  /* Prepares execution for one input size (both multiples of 32); called again on a change. */
  gboolean (*plan) (HfamBackend *backend, int width, int height, GError **error);
  /* Copies the normalised input (3 planes, host memory) in. */
  gboolean (*set_input) (HfamBackend *backend, const float *input, GError **error);
  /* Queues the nodes of one stage; stages are queued in HfamStage order. */
  gboolean (*run_stage) (HfamBackend *backend, HfamStage stage, GError **error);
  gboolean (*synchronize) (HfamBackend *backend, GError **error);
  /* Copies the requested outputs (any pointer may be NULL) to host planes. */
  gboolean (*get_outputs) (HfamBackend *backend, HfamOutputs *out, GError **error);
  void (*free) (HfamBackend *backend);
  /* Optional (NULL where the backend runs one frame at a time): queues the input and every
   * stage of one frame and returns without waiting; at most `pipeline_depth` frames are in
   * flight, collected in order by collect_frame, which waits for the oldest one. */
  gboolean (*queue_frame) (HfamBackend *backend, const float *input, GError **error);
  gboolean (*collect_frame) (HfamBackend *backend, HfamOutputs *out, GError **error);
  /* Optional (NULL where the backend has no batch dimension; HfamBackend.batch is 1 then):
   * queue_frame for `n` frames (1 <= n <= batch) run as one batch, and collect_frame for
   * them, out[k] for inputs[k]. A batch of fewer than `batch` frames costs a whole one. */
  gboolean (*queue_batch) (HfamBackend *backend, const float *const *inputs, int n,
                           GError **error);
  gboolean (*collect_batch) (HfamBackend *backend, HfamOutputs *out, int n, GError **error);
  /* Optional, with queue_batch: whether the oldest batch in flight has finished (or failed),
   * so that collect_batch will not wait; never blocks. */
  gboolean (*batch_done) (HfamBackend *backend);
  /* Optional, with queue_batch: a batch of `n` device frames that other backends on the same
   * CUDA context took and preprocessed (HfamDeviceOps.slice): each input copied in once it
   * is ready, each alpha_p copied out to its slice. collect_batch with `out` NULL collects
   * it; its outputs are in the slices then. */
  gboolean (*queue_device_batch) (HfamBackend *backend, const HfamDeviceSlice *slices, int n,
                                  GError **error);
} HfamBackendOps;

/* What write_matte does at the outputs' size: libhfam's edges (hfam_context_set_edges) in
 * the kernels' terms. */
typedef struct {
  gboolean refine;                   /* the guided filter, else a plain resize */
  HfamRefineParams refine_params;    /* checked against the kept matte and the outputs' size */
  HfamKeyLevels levels;              /* { 0, 1 }: none */
  gboolean foreground;               /* colour outputs: the estimated foreground's colours */
  HfamForegroundParams foreground_params;
  /* the outputs of the frame just kept (keep_matte), not of a later one: with `refine` and a
   * motion-weighted blend, the refined matte's detail is held where the picture is still
   * (kernels/refine.h's HfamRefineHold) */
  gboolean collected;
} HfamDeviceEdges;

/* Frames and mattes in the backend's device memory. The device frames' mattes stay there:
 * the one of the last frame collected is the device side of libhfam's kept matte (hfam.h),
 * held by the backend at its frame's inference size. */
typedef struct {
  /* queue_frame for a frame whose planes are in the backend's device memory, preprocessed
   * there (`params`, with its yuv for NV12 and I420) at the planned size straight into the
   * network's input. Its frames are collected by keep_matte only, the others by
   * collect_frame only. */
  gboolean (*queue_frame) (HfamBackend *backend, const HfamFrame *frame,
                           const HfamPreprocessParams *params, GError **error);
  /* Waits for the oldest frame and makes its alpha_p the kept matte, first set to 0 over the
   * frame's black bars with `bars` (NULL: not; kernels/bars.h, on the frame's grey plane), then
   * its islands dropped with `islands` (NULL: not; kernels/islands.h; both checked by the
   * caller): blended into it when `blend` (kept = (1 - smoothing) * alpha_p + smoothing * kept;
   * the caller knows the kept one has this inference size), and the blend's islands dropped
   * too, so that a region the network dropped is not held; else copied. With `motion` (NULL:
   * none), the frame's grey plane is kept with the matte, and a blend weighs each pixel by the
   * change from the kept one's (kernels/temporal.h; motion->hold is the smoothing) when that
   * frame kept one too, after moving the kept matte and grey along the picture's motion with
   * `flow` (NULL: not; kernels/compensate.h); that blend's still weights are kept for
   * write_matte's `collected`.
   * The frame is out of flight afterwards, even when this fails; a failure leaves no kept
   * matte. */
  gboolean (*keep_matte) (HfamBackend *backend, const HfamBarParams *bars,
                          const HfamIslandParams *islands, gboolean blend,
                          float smoothing, const HfamMotionParams *motion,
                          const HfamFlowParams *flow, GError **error);
  /* For a frame that does not run the network: moves the kept matte and its grey plane along
   * the picture's motion from the kept matte's frame to `frame` (kernels/compensate.h with
   * `flow`), for which `frame` is preprocessed (`params`) at the kept matte's size; `frame`'s
   * grey plane is the kept one's afterwards. Does nothing where keep_matte kept no grey plane
   * (no `motion`). Also while frames are in flight; returns when done. A failure to allocate
   * leaves the kept matte as it was. */
  gboolean (*follow) (HfamBackend *backend, const HfamFrame *frame,
                      const HfamPreprocessParams *params, const HfamFlowParams *flow,
                      GError **error);
  /* Writes the kept matte, resized to the outputs' size (all alike), into `n_outputs` device
   * images, the colour formats with `frame`'s colours (`yuv` for NV12 and I420), with `edges`
   * as the host path applies them (frames.c; `frame` is needed for the refinement too);
   * returns when they are written. Also while frames are in flight. */
  gboolean (*write_matte) (HfamBackend *backend, const HfamFrame *frame,
                           const HfamYuvToRgb *yuv, const HfamMatteImage *outputs,
                           int n_outputs, const HfamDeviceEdges *edges, GError **error);
  /* A backend that runs no network of its own (HfamCudaBackendOptions.frames_only, a batch
   * group's member) has queue_frame preprocess the frame only: `slice` describes the frame
   * queued last for the group's lane, which writes its alpha_p; keep_matte then keeps that.
   * drop_frame takes the oldest frame out of flight without a matte, where its batch failed
   * (no matte is kept afterwards). For frames-only backends only. */
  void (*slice) (HfamBackend *backend, HfamDeviceSlice *slice);
  void (*drop_frame) (HfamBackend *backend);
} HfamDeviceOps;

struct _HfamBackend {
  const HfamBackendOps *ops;
  const HfamDeviceOps *device; /* NULL where the backend has no device memory */
  const HfamGraph *graph;
  int pipeline_depth;          /* frames in flight with queue_frame (0 or 1: one) */
  int batch;                   /* frames each queue_batch runs as one (0 or 1: one) */
  gboolean gpu;                /* it computes on a GPU (the CUDA backend) */
  HfamPrecision precision;     /* what it computes in (HFAM_PRECISION_DEFAULT: fp32) */
  gboolean winograd;           /* its fp32 3x3 convolutions may run in Winograd (the CPU's
                                  with AVX-512): hfam_context_auto_long_side's size depends */
  void *cuda_context;          /* the CUcontext it runs on; NULL: its device's primary one
                                  (or no GPU) */
};

/* A context's host memory budget (HfamOptions.memory_budget), shared by libhfam's own
 * buffers and the CPU backend's: every allocation whose size comes from a file or a property
 * is counted here before it is made, and given back when it is freed. */
typedef struct {
  guint64 limit;     /* bytes */
  guint64 held;      /* bytes counted now */
  guint64 reserved;  /* bytes libhfam takes once a plan is made: a plan's estimate counts them,
                        so that the error tells the whole need */
} HfamHostBudget;

/* Whether `bytes` more fit under the limit; if not, HFAM_ERROR_BUDGET: "`what` WxH needs about
 * N MiB of host memory, more than the memory budget of M MiB", N counting what is held. */
gboolean hfam_host_budget_check (const HfamHostBudget *budget, guint64 bytes, const char *what,
                                 int width, int height, GError **error);
/* hfam_host_budget_check, then counts the bytes as held. */
gboolean hfam_host_budget_take (HfamHostBudget *budget, guint64 bytes, const char *what,
                                int width, int height, GError **error);
void hfam_host_budget_give (HfamHostBudget *budget, guint64 bytes);

/* The convolutions' weights in the CPU backends' layouts, kept by the model (hfam.c) and
 * shared by the backends of every context made on it: a layout is made once, by the first
 * backend whose plan asks for it, and freed when the last one using it lets go. Thread-safe.
 * Freed once no backend uses it. */
typedef struct _HfamCpuWeightCache HfamCpuWeightCache;
HfamCpuWeightCache *hfam_cpu_weight_cache_new (int n_nodes);
void hfam_cpu_weight_cache_free (HfamCpuWeightCache *cache);
/* The bytes it holds: each layout once, however many backends use it. */
guint64 hfam_cpu_weight_cache_bytes (HfamCpuWeightCache *cache);

/* pipeline_depth 2: queue_frame hands frames to a thread of the backend's own, so that the
 * caller prepares the next frame while one runs. Every host buffer it allocates (plans,
 * reordered weights, queued frames) is counted in `budget`, which must outlive it; a plan
 * whose estimate (activations, planar copies, queued frames) does not fit is refused before
 * anything is allocated. `precision`: INT8 runs the layers with activation ranges in int8 (the
 * encoder, L-BB, the decoders' group) and needs the graph's (HFAM_ERROR_UNSUPPORTED without
 * them); BF16 the convolutions in bf16 (a CPU with AVX512-BF16), INT8_BF16 both; DEFAULT
 * picks int8 where the ranges are there and the CPU has VNNI, and bf16 for the rest where it
 * has AVX512-BF16, else fp32; FP16 computes fp32. `weight_cache`: the model's (shared
 * weights), or NULL (its own). */
HfamBackend *hfam_backend_cpu_new (const HfamGraph *graph, HfamCpuWeightCache *weight_cache,
                                   HfamPrecision precision, int n_threads, int pipeline_depth,
                                   HfamHostBudget *budget, GError **error);

/* The CUDA backend (model/engine/cuda/), where the build has one (HFAM_HAVE_CUDA). */
typedef struct {
  void *context;          /* a CUcontext to run on (not with current_context), which every
                             call makes current on its thread: for a batch group's lane, on a
                             thread of its own, beside members on that context. (First, so
                             that the struct has no padding: a batch group compares its
                             settings byte for byte.) */
  gboolean fp16;          /* NHWC fp16 on tensor cores; FALSE: fp32 (no TF32) */
  int pipeline_depth;     /* frames in flight, 1 or 2 (<= 0: 1) */
  gboolean no_graphs;     /* queue each frame's work instead of replaying a CUDA graph */
  gboolean current_context; /* run on the CUDA context current on the calling thread, not on
                               device_id's primary one; it must be current around every
                               later call, free included */
  int batch;              /* frames per run, 1 to HFAM_MAX_BATCH (<= 0: 1): a backend with a
                             batch of more than one takes frames through queue_batch or
                             queue_device_batch (the others run one frame as a whole batch)
                             and has no device frames of its own (HfamBackend.device NULL) */
  gboolean frames_only;   /* no network: device frames preprocessed for a batch group's lane
                             and their mattes kept and written (HfamDeviceOps.slice); the
                             host path's ops fail */
} HfamCudaBackendOptions;

/* NULL, with an HFAM_ERROR_BACKEND error saying why, when the CUDA backend's module does not
 * open (cuda-module.c), no CUDA device opens (no driver, no device, device_id out of range) or
 * cuDNN cannot start. device_id < 0: the first. */
HfamBackend *hfam_backend_cuda_new (const HfamGraph *graph, int device_id,
                                    const HfamCudaBackendOptions *options, GError **error);

/* The CUDA module's entry point, which hfam_backend_cuda_new finds by this name:
 * hfam_backend_cuda_new's work, given libhfam's hfam_stage_name. The module cannot link
 * hfam.c (the whole engine would come with it), nor find libhfam's symbols at run time
 * (GStreamer loads the plugin, libhfam inside, with local symbols). */
#define HFAM_CUDA_MODULE_ENTRY "hfam_cuda_module_new_backend"
typedef HfamBackend *HfamCudaModuleNewBackend (const HfamGraph *graph, int device_id,
                                               const HfamCudaBackendOptions *options,
                                               const char *(*stage_name) (HfamStage stage),
                                               GError **error);

/* What libhfam and the module exchange by layout: the graph, the backend and its tables, the
 * options, the device frames' slices. A module built from other headers (a stale install, an old
 * build tree) is refused rather than called at shifted offsets: it exports these numbers under the
 * name below, and libhfam compares them with its own. The sizes catch fields added or removed;
 * HFAM_CUDA_MODULE_VERSION is raised for a change of meaning that keeps them. */
#define HFAM_CUDA_MODULE_VERSION 3
#define HFAM_CUDA_MODULE_ABI_SYMBOL "hfam_cuda_module_abi"
#define HFAM_CUDA_MODULE_ABI_LENGTH 8
typedef guint32 HfamCudaModuleAbi[HFAM_CUDA_MODULE_ABI_LENGTH];
#define HFAM_CUDA_MODULE_ABI_OF(version)                                                       \
  { (version), sizeof (HfamGraph), sizeof (HfamNode), sizeof (HfamBackend),                    \
    sizeof (HfamBackendOps), sizeof (HfamDeviceOps), sizeof (HfamCudaBackendOptions),         \
    sizeof (HfamDeviceSlice) }
#define HFAM_CUDA_MODULE_ABI_INIT HFAM_CUDA_MODULE_ABI_OF (HFAM_CUDA_MODULE_VERSION)

G_END_DECLS

#endif
