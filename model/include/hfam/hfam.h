/* libhfam: the HFAM portrait matting network (see model/README.md), on interchangeable
 * backends. Thread-safety: a hfam_model is immutable once loaded and may be shared; a
 * hfam_context is used by one thread at a time. Every failure is reported through GError
 * (domain HFAM_ERROR) with a message that names the file, tensor or parameter at fault. */
#ifndef HFAM_H
#define HFAM_H

#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

#define HFAM_ERROR (hfam_error_quark ())
GQuark hfam_error_quark (void);

typedef enum {
  HFAM_ERROR_IO,          /* cannot open, map or read a file */
  HFAM_ERROR_FORMAT,      /* the weight file is malformed or inconsistent */
  HFAM_ERROR_UNSUPPORTED, /* valid request this build or backend cannot serve */
  HFAM_ERROR_BACKEND,     /* a backend call failed (oneDNN, CUDA, out of memory) */
  HFAM_ERROR_ARGUMENT,    /* bad argument: size, format, NULL */
} HfamError;

/* Hyper-parameters read from the weight file's __metadata__ (model/README.md). */
typedef struct {
  int encoder_depth;          /* 18, 34, 50, 101 */
  int encoder_width;          /* 64 in torchvision */
  gboolean stride_in_1x1;
  gboolean input_bgr;         /* network sees B, G, R */
  float input_scale;          /* pixels mapped to 0..input_scale */
  float input_mean[3], input_std[3];  /* in the network's channel order */
  int mfem_channels;          /* Cm */
  int mfem_rates[3][3];       /* [level 2,3,4][branch 1..3] */
  int sk_width;               /* d */
  int context_widths[5];      /* p_4 .. p_0 */
  int semantic_widths[5][3];  /* [block 4..0][conv] */
  int detail_widths[5][3];
  int lbb_width, lbb_dilation;
  int inference_size;
} HfamHparams;

typedef struct _HfamModel HfamModel;
typedef struct _HfamContext HfamContext;

/* Maps, validates and keeps the weight file; builds the graph. NULL on failure. */
HfamModel *hfam_model_load (const char *path, GError **error);
void hfam_model_free (HfamModel *model);
const HfamHparams *hfam_model_hparams (const HfamModel *model);
const char *hfam_model_path (const HfamModel *model);

/* The default model: $HFAMMATTE_DEFAULT_MODEL when set (an uninstalled build, tests), else
 * the file installed with the project (DATADIR/hfammatte/default.safetensors). */
const char *hfam_default_model_path (void);

typedef enum {
  HFAM_BACKEND_AUTO,  /* CUDA when a device opens, else the CPU */
  HFAM_BACKEND_CPU,
  HFAM_BACKEND_CUDA,
} HfamBackendKind;

/* "auto", "cpu" or "cuda"; an error naming the choices otherwise. */
gboolean hfam_backend_kind_parse (const char *name, HfamBackendKind *kind, GError **error);

/* n_threads: the CPU backend's threads, and the OpenMP team of the frame resizes on the host
 * (any backend; set on the calling thread); <= 0: one per core. device_id < 0: the first
 * device. */
HfamContext *hfam_context_new (HfamModel *model, HfamBackendKind kind, int device_id,
                               int n_threads, GError **error);

typedef enum {
  HFAM_PRECISION_DEFAULT,  /* fp16 on CUDA, fp32 on the CPU */
  HFAM_PRECISION_FP32,
  HFAM_PRECISION_FP16,     /* CUDA only: the CPU backend computes in fp32 whatever is asked */
} HfamPrecision;

/* Options of hfam_context_new_full; all zero = hfam_context_new's behaviour. */
typedef struct {
  HfamPrecision precision;
  int pipeline_depth;      /* frames in flight with the submit functions, 1 or 2 (<= 0: 1):
                              at 2, CUDA runs the encoder of one frame while the decoders of
                              the previous one run, and the CPU backend runs frames on a
                              thread of its own while the caller prepares the next */
  gboolean no_cuda_graphs; /* CUDA: queue every frame's kernels instead of replaying a
                              captured CUDA graph (per-stage timing needs this) */
  gboolean cuda_current_context; /* CUDA: run on the CUDA context current on the calling
                                    thread (a GstCudaContext the caller pushed, say) instead
                                    of the device's primary one; device_id is then ignored,
                                    and that context must be current around every later call
                                    on this HfamContext, hfam_context_free included */
} HfamContextOptions;

/* As hfam_context_new, with options (NULL: defaults). With HFAM_BACKEND_AUTO, a CUDA device
 * that does not open falls back to the CPU. */
HfamContext *hfam_context_new_full (HfamModel *model, HfamBackendKind kind, int device_id,
                                    int n_threads, const HfamContextOptions *options,
                                    GError **error);

/* What the context computes in (FP32 or FP16) and how many frames it keeps in flight. */
HfamPrecision hfam_context_precision (const HfamContext *ctx);
int hfam_context_pipeline_depth (const HfamContext *ctx);
void hfam_context_free (HfamContext *ctx);
const char *hfam_context_backend_name (const HfamContext *ctx);

/* Inference size for a frame (model/README.md): long side `long_side`, multiples of 32. */
void hfam_inference_dims (int frame_w, int frame_h, int long_side, int *inf_w, int *inf_h);

typedef enum {
  HFAM_PIXEL_RGB8,   /* 3 bytes per pixel */
  HFAM_PIXEL_BGR8,
  HFAM_PIXEL_RGBA8,  /* 4 bytes per pixel, 4th ignored */
  HFAM_PIXEL_BGRA8,
} HfamPixelFormat;

typedef struct {
  const uint8_t *data;
  int width, height;
  int stride;        /* bytes per row */
  HfamPixelFormat format;
} HfamImage;

/* Optional outputs at the inference size (inf_w x inf_h, planar, row-major). */
typedef struct {
  float *semantic;  /* P_s: 3 planes (background, unknown, foreground), or NULL */
  float *detail;    /* alpha_d: 1 plane, or NULL */
  float *fused;     /* alpha_p: 1 plane, or NULL */
} HfamOutputs;

/* Runs the network on an 8-bit frame of any size: resize to the inference size for
 * `long_side` (<= 0: the model's inference_size), run, resize alpha_p back.
 * alpha: width x height floats in 0..1, row stride `alpha_stride` floats. */
gboolean hfam_context_matte (HfamContext *ctx, const HfamImage *image, int long_side,
                             float *alpha, int alpha_stride, HfamOutputs *extra,
                             GError **error);

/* Runs the network on an already normalised input tensor (3 planes, NCHW, N = 1) whose
 * width and height are multiples of 32. Outputs at the same size. */
gboolean hfam_context_run_tensor (HfamContext *ctx, const float *input, int width,
                                  int height, HfamOutputs *out, GError **error);

/* Pipelined use: submit up to hfam_context_pipeline_depth() normalised input tensors (as
 * hfam_context_run_tensor takes them) before collecting their outputs, oldest first; on CUDA
 * with depth 2 the encoder of one frame runs while the decoders of the previous one do. The
 * input is copied before submit returns. All frames in flight must have the same size; the
 * other run functions refuse to run while frames are in flight. */
gboolean hfam_context_submit_tensor (HfamContext *ctx, const float *input, int width,
                                     int height, GError **error);
gboolean hfam_context_collect (HfamContext *ctx, HfamOutputs *out, GError **error);

/* Pipelined hfam_context_matte: submit up to hfam_context_pipeline_depth() frames (each is
 * read before submit returns) and collect their mattes, oldest first, at the frame's size.
 * All frames in flight must have the same inference size. `extra`, as in
 * hfam_context_matte, may be NULL. A collect refused for its arguments (no alpha, too
 * narrow a stride, a frame submitted as a tensor) leaves the frame in flight; one that fails
 * in the backend drops it. */
gboolean hfam_context_submit_frame (HfamContext *ctx, const HfamImage *image, int long_side,
                                    GError **error);
gboolean hfam_context_collect_matte (HfamContext *ctx, float *alpha, int alpha_stride,
                                     HfamOutputs *extra, GError **error);

/* Per-stage timing of the last run, in seconds (each stage synchronised when timing on). */
typedef enum {
  HFAM_STAGE_ENCODER,
  HFAM_STAGE_MFEM,
  HFAM_STAGE_SEMANTIC,
  HFAM_STAGE_LBB,
  HFAM_STAGE_DETAIL,
  HFAM_STAGE_FUSION,
  HFAM_N_STAGES
} HfamStage;

const char *hfam_stage_name (HfamStage stage);
void hfam_context_set_timing (HfamContext *ctx, gboolean enabled);
void hfam_context_stage_times (const HfamContext *ctx, double seconds[HFAM_N_STAGES]);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (HfamModel, hfam_model_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC (HfamContext, hfam_context_free)

G_END_DECLS

#endif
