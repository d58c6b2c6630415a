/* libhfam's public API: the model (weights + graph) and the per-user context that runs it on
 * a backend, with the frame-level pre- and post-processing of model/README.md. */
#include <hfam/hfam.h>
#include "context.h"
#include <hfam/hfam-device.h>
#include "hparams.h"
#include "resize.h"

#include <math.h>
#include <omp.h>
#include <string.h>

struct _HfamModel {
  char *path;
  HfamSafetensors *st;
  HfamHparams hp;
  HfamGraph *graph;
};

static const char *const stage_names[HFAM_N_STAGES] = {
  "encoder", "mfem", "semantic decoder", "L-BB", "detail decoder", "fusion",
};

const char *
hfam_stage_name (HfamStage stage)
{
  return stage < HFAM_N_STAGES ? stage_names[stage] : "?";
}

HfamModel *
hfam_model_load (const char *path, GError **error)
{
  HfamModel *model = g_new0 (HfamModel, 1);
  model->path = g_strdup (path);
  if (!(model->st = hfam_st_open (path, error))
      || !hfam_hparams_read (model->st, &model->hp, error)
      || !(model->graph = hfam_graph_build (&model->hp, model->st, error))) {
    hfam_model_free (model);
    return NULL;
  }
  return model;
}

void
hfam_model_free (HfamModel *model)
{
  if (!model)
    return;
  hfam_graph_free (model->graph);
  if (model->st)
    hfam_st_close (model->st);
  g_free (model->path);
  g_free (model);
}

const HfamHparams *
hfam_model_hparams (const HfamModel *model)
{
  return &model->hp;
}

const char *
hfam_model_path (const HfamModel *model)
{
  return model->path;
}

const char *
hfam_default_model_path (void)
{
  const char *env = g_getenv ("HFAMMATTE_DEFAULT_MODEL");
  return env && *env ? env : HFAM_DEFAULT_MODEL;
}

gboolean
hfam_backend_kind_parse (const char *name, HfamBackendKind *kind, GError **error)
{
  static const char *const names[] = { "auto", "cpu", "cuda" };

  for (HfamBackendKind k = HFAM_BACKEND_AUTO; k <= HFAM_BACKEND_CUDA; k++)
    if (g_strcmp0 (name, names[k]) == 0) {
      *kind = k;
      return TRUE;
    }
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
               "unknown backend '%s' (auto, cpu or cuda)", name);
  return FALSE;
}

HfamContext *
hfam_context_new (HfamModel *model, HfamBackendKind kind, int device_id, int n_threads,
                  GError **error)
{
  return hfam_context_new_full (model, kind, device_id, n_threads, NULL, error);
}

HfamContext *
hfam_context_new_full (HfamModel *model, HfamBackendKind kind, int device_id, int n_threads,
                       const HfamContextOptions *options, GError **error)
{
  static const HfamContextOptions defaults = { 0 };
  HfamContext *ctx;
  HfamBackend *backend = NULL;

  g_return_val_if_fail (model != NULL, NULL);
  if (!options)
    options = &defaults;
  if ((unsigned) options->precision > HFAM_PRECISION_FP16 || options->pipeline_depth > 2) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "context options: precision %d, pipeline depth %d: want a HfamPrecision and a "
                 "depth of at most 2", options->precision, options->pipeline_depth);
    return NULL;
  }
#ifdef HFAM_HAVE_CUDA
  if (kind == HFAM_BACKEND_CUDA || kind == HFAM_BACKEND_AUTO) {
    const HfamCudaOptions cuda = {
      .fp16 = options->precision != HFAM_PRECISION_FP32,
      .pipeline_depth = options->pipeline_depth,
      .no_graphs = options->no_cuda_graphs,
      .current_context = options->cuda_current_context,
    };
    GError *cuda_error = NULL;
    backend = hfam_backend_cuda_new (model->graph, device_id, &cuda, &cuda_error);
    if (!backend && kind == HFAM_BACKEND_CUDA) {
      g_propagate_error (error, cuda_error);
      return NULL;
    }
    if (!backend) {
      g_debug ("hfam: %s; running on the CPU", cuda_error->message);
      g_clear_error (&cuda_error);
    }
  }
#else
  if (kind == HFAM_BACKEND_CUDA) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_UNSUPPORTED,
                 "backend cuda: this build has no CUDA backend");
    return NULL;
  }
#endif
  if (!backend && !(backend = hfam_backend_cpu_new (model->graph, n_threads,
                                                    options->pipeline_depth, error)))
    return NULL;
  ctx = g_new0 (HfamContext, 1);
  ctx->model = model;
  ctx->backend = backend;
  ctx->host_threads = n_threads > 0 ? n_threads : (int) g_get_num_processors ();
  return ctx;
}

HfamPrecision
hfam_context_precision (const HfamContext *ctx)
{
  return ctx->backend->precision == HFAM_PRECISION_FP16 ? HFAM_PRECISION_FP16
                                                        : HFAM_PRECISION_FP32;
}

int
hfam_context_pipeline_depth (const HfamContext *ctx)
{
  return MAX (ctx->backend->pipeline_depth, 1);
}

void
hfam_context_free (HfamContext *ctx)
{
  HfamOutputs none = { 0 };

  if (!ctx)
    return;
  /* frames still in flight are finished and dropped: the backend frees nothing in use */
  for (; ctx->n_pending > 0; ctx->n_pending--)
    if (ctx->backend->ops->collect_frame)
      ctx->backend->ops->collect_frame (ctx->backend, &none, NULL);
  ctx->backend->ops->free (ctx->backend);
  g_free (ctx->input);
  g_free (ctx->fused);
  g_free (ctx);
}

const char *
hfam_context_backend_name (const HfamContext *ctx)
{
  return ctx->backend->ops->name;
}

void
hfam_inference_dims (int frame_w, int frame_h, int long_side, int *inf_w, int *inf_h)
{
  const double scale = (double) long_side / MAX (frame_w, frame_h);
  *inf_w = MAX (32, (int) lround (frame_w * scale / 32.0) * 32);
  *inf_h = MAX (32, (int) lround (frame_h * scale / 32.0) * 32);
}

void
hfam_context_set_timing (HfamContext *ctx, gboolean enabled)
{
  ctx->timing = enabled;
}

void
hfam_context_stage_times (const HfamContext *ctx, double seconds[HFAM_N_STAGES])
{
  for (int i = 0; i < HFAM_N_STAGES; i++)
    seconds[i] = ctx->stage_seconds[i];
}

gboolean
hfam_context_ensure_size (HfamContext *ctx, int width, int height, GError **error)
{
  const size_t plane = (size_t) width * height;
  if (ctx->width == width && ctx->height == height)
    return TRUE;
  if (!ctx->backend->ops->plan (ctx->backend, width, height, error)) {
    ctx->width = ctx->height = 0;
    return FALSE;
  }
  /* the backend holds its own copy of the weights now: the mapped pages can go (they come
   * back from the file if a later plan reads them again) */
  hfam_st_release_pages (ctx->model->st);
  ctx->width = width;
  ctx->height = height;
  g_free (ctx->input);
  g_free (ctx->fused);
  ctx->input = g_new (float, 3 * plane);
  ctx->fused = g_new (float, plane);
  return TRUE;
}

gboolean
hfam_context_no_frames_in_flight (HfamContext *ctx, GError **error)
{
  if (ctx->n_pending == 0)
    return TRUE;
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
               "%d submitted frame(s) not collected: collect them first", ctx->n_pending);
  return FALSE;
}

static HfamPendingFrame *
pending_frame (HfamContext *ctx, int i)
{
  return &ctx->pending[(ctx->first_pending + i) % HFAM_MAX_PIPELINE_DEPTH];
}

gboolean
hfam_context_ready_to_submit (HfamContext *ctx, gboolean on_device, int width, int height,
                              const char *what, GError **error)
{
  if (ctx->n_pending >= hfam_context_pipeline_depth (ctx)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "%s: %d frame(s) in flight already, the pipeline depth: collect first", what,
                 ctx->n_pending);
    return FALSE;
  }
  for (int i = 0; i < ctx->n_pending; i++)
    if (pending_frame (ctx, i)->on_device != on_device) {
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                   "%s: frames from %s memory are in flight: collect them first", what,
                   on_device ? "host" : "device");
      return FALSE;
    }
  if (ctx->n_pending > 0 && (width != ctx->width || height != ctx->height)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "%s: inference size %dx%d while %dx%d frames are in flight: collect them "
                 "first", what, width, height, ctx->width, ctx->height);
    return FALSE;
  }
  return hfam_context_ensure_size (ctx, width, height, error);
}

void
hfam_context_add_pending (HfamContext *ctx, const HfamPendingFrame *frame)
{
  *pending_frame (ctx, ctx->n_pending) = *frame;
  ctx->n_pending++;
}

const HfamPendingFrame *
hfam_context_oldest_pending (HfamContext *ctx, gboolean on_device, const char *what,
                             GError **error)
{
  const HfamPendingFrame *oldest = pending_frame (ctx, 0);

  if (ctx->n_pending == 0) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "%s: no frame was submitted", what);
    return NULL;
  }
  if (oldest->on_device != on_device) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "%s: the oldest frame in flight came from %s memory: collect it with the "
                 "%s-frame functions", what, oldest->on_device ? "device" : "host",
                 oldest->on_device ? "device" : "host");
    return NULL;
  }
  return oldest;
}

void
hfam_context_drop_oldest (HfamContext *ctx)
{
  ctx->first_pending = (ctx->first_pending + 1) % HFAM_MAX_PIPELINE_DEPTH;
  ctx->n_pending--;
}

/* One frame through every stage. A frame that fails after it went in is taken out of the
 * backend again (a collect that wants nothing), so that the next one finds it empty. */
static gboolean
run (HfamContext *ctx, HfamOutputs *out, GError **error)
{
  static const HfamOutputs nothing = { 0 };
  HfamBackend *be = ctx->backend;
  HfamOutputs discard = nothing;
  gboolean ok = TRUE;

  if (!be->ops->set_input (be, ctx->input, error))
    return FALSE;
  for (int stage = 0; stage < HFAM_N_STAGES && ok; stage++) {
    const gint64 start = ctx->timing ? g_get_monotonic_time () : 0;
    ok = be->ops->run_stage (be, stage, error)
         && (!ctx->timing || be->ops->synchronize (be, error));
    if (ok && ctx->timing)
      ctx->stage_seconds[stage] = (g_get_monotonic_time () - start) / 1e6;
  }
  if (ok && be->ops->synchronize (be, error))
    return be->ops->get_outputs (be, out, error);
  be->ops->get_outputs (be, &discard, NULL);
  return FALSE;
}

gboolean
hfam_context_run_tensor (HfamContext *ctx, const float *input, int width, int height,
                         HfamOutputs *out, GError **error)
{
  if (!hfam_context_no_frames_in_flight (ctx, error) || !hfam_context_ensure_size (ctx, width, height, error))
    return FALSE;
  memcpy (ctx->input, input, sizeof (float) * 3 * (size_t) width * height);
  return run (ctx, out, error);
}

void
hfam_model_preprocess_params (const HfamModel *model, HfamPreprocessParams *params)
{
  const HfamHparams *hp = &model->hp;

  *params = (HfamPreprocessParams) { .scale = hp->input_scale };
  for (int k = 0; k < 3; k++) {
    params->order[k] = hp->input_bgr ? 2 - k : k;
    params->mean[k] = hp->input_mean[k];
    params->std[k] = hp->input_std[k];
  }
}

/* The image into ctx->input at the inference size for long_side, the backend planned for
 * it, when a host frame may go in now. */
static gboolean
prepare_image (HfamContext *ctx, const HfamImage *image, int long_side, const char *what,
               GError **error)
{
  static const int bytes_per_pixel[] = { 3, 3, 4, 4 };
  static const int offsets[][3] = { { 0, 1, 2 }, { 2, 1, 0 }, { 0, 1, 2 }, { 2, 1, 0 } };
  HfamPreprocessParams params;
  int w, h;

  if (!image || !image->data || (unsigned) image->format > HFAM_PIXEL_BGRA8
      || image->width < 1 || image->height < 1
      || image->stride < image->width * bytes_per_pixel[image->format]) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "%s: bad image", what);
    return FALSE;
  }
  hfam_inference_dims (image->width, image->height,
                       long_side > 0 ? long_side : ctx->model->hp.inference_size, &w, &h);
  if (!hfam_context_ready_to_submit (ctx, FALSE, w, h, what, error))
    return FALSE;
  hfam_model_preprocess_params (ctx->model, &params);
  /* OpenMP's thread count belongs to the calling thread */
  omp_set_num_threads (ctx->host_threads);
  /* resize.c's routine for 8-bit RGB: frame.c's general one is the CUDA op's slow oracle */
  if (hfam_preprocess_frame (image->data, image->width, image->height, image->stride,
                             bytes_per_pixel[image->format], offsets[image->format],
                             ctx->input, w, h, params.order, params.scale, params.mean,
                             params.std) != 0) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "preprocess: out of memory");
    return FALSE;
  }
  return TRUE;
}

/* ctx->fused (alpha_p at the inference size) to the frame's size; extra->fused gets a copy. */
static gboolean
finish_matte (HfamContext *ctx, int frame_width, int frame_height, float *alpha,
              int alpha_stride, HfamOutputs *extra, GError **error)
{
  if (extra && extra->fused)
    memcpy (extra->fused, ctx->fused, sizeof (float) * (size_t) ctx->width * ctx->height);
  omp_set_num_threads (ctx->host_threads);
  if (hfam_resize_plane (ctx->fused, ctx->width, ctx->height, ctx->width, alpha, frame_width,
                         frame_height, alpha_stride) != 0) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "resize: out of memory");
    return FALSE;
  }
  return TRUE;
}

static gboolean
check_alpha (const HfamImage *image, const float *alpha, int alpha_stride, GError **error)
{
  if (alpha && alpha_stride >= image->width)
    return TRUE;
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
               "alpha: %s, stride %d for a frame %d wide", alpha ? "given" : "NULL",
               alpha_stride, image->width);
  return FALSE;
}

gboolean
hfam_context_matte (HfamContext *ctx, const HfamImage *image, int long_side, float *alpha,
                    int alpha_stride, HfamOutputs *extra, GError **error)
{
  HfamOutputs out = { 0 };

  if (!hfam_context_no_frames_in_flight (ctx, error)
      || !prepare_image (ctx, image, long_side, "hfam_context_matte", error)
      || !check_alpha (image, alpha, alpha_stride, error))
    return FALSE;
  if (extra)
    out = *extra;
  out.fused = ctx->fused;
  return run (ctx, &out, error)
      && finish_matte (ctx, image->width, image->height, alpha, alpha_stride, extra, error);
}

/* Queues ctx->input (planned) as a frame in flight; `pending` says what collect needs. */
static gboolean
submit (HfamContext *ctx, const HfamPendingFrame *pending, GError **error)
{
  HfamBackend *be = ctx->backend;

  if (be->ops->queue_frame) {
    if (!be->ops->queue_frame (be, ctx->input, error))
      return FALSE;
  } else {
    if (!be->ops->set_input (be, ctx->input, error))
      return FALSE;
    for (int stage = 0; stage < HFAM_N_STAGES; stage++)
      if (!be->ops->run_stage (be, stage, error))
        return FALSE;
    if (!be->ops->synchronize (be, error))
      return FALSE;
  }
  hfam_context_add_pending (ctx, pending);
  return TRUE;
}

/* The oldest host frame's outputs (hfam_context_oldest_pending said there is one); it is
 * out of flight afterwards, even when this fails (the backend dropped it). */
static gboolean
collect (HfamContext *ctx, HfamOutputs *out, GError **error)
{
  HfamBackend *be = ctx->backend;
  const gboolean ok = be->ops->collect_frame ? be->ops->collect_frame (be, out, error)
                                             : be->ops->get_outputs (be, out, error);

  hfam_context_drop_oldest (ctx);
  return ok;
}

gboolean
hfam_context_submit_tensor (HfamContext *ctx, const float *input, int width, int height,
                            GError **error)
{
  const HfamPendingFrame pending = { 0 };

  if (!hfam_context_ready_to_submit (ctx, FALSE, width, height, "hfam_context_submit_tensor",
                                     error))
    return FALSE;
  memcpy (ctx->input, input, sizeof (float) * 3 * (size_t) width * height);
  return submit (ctx, &pending, error);
}

gboolean
hfam_context_collect (HfamContext *ctx, HfamOutputs *out, GError **error)
{
  HfamOutputs none = { 0 };

  return hfam_context_oldest_pending (ctx, FALSE, "hfam_context_collect", error)
      && collect (ctx, out ? out : &none, error);
}

gboolean
hfam_context_submit_frame (HfamContext *ctx, const HfamImage *image, int long_side,
                           GError **error)
{
  HfamPendingFrame pending = { 0 };

  if (!prepare_image (ctx, image, long_side, "hfam_context_submit_frame", error))
    return FALSE;
  pending.frame_width = image->width;
  pending.frame_height = image->height;
  return submit (ctx, &pending, error);
}

gboolean
hfam_context_collect_matte (HfamContext *ctx, float *alpha, int alpha_stride,
                            HfamOutputs *extra, GError **error)
{
  static const char *const what = "hfam_context_collect_matte";
  const HfamPendingFrame *oldest = hfam_context_oldest_pending (ctx, FALSE, what, error);
  HfamOutputs out = { 0 };
  int frame_width, frame_height;

  if (!oldest)
    return FALSE;
  /* checked before the collect: a bad call leaves the frame in flight */
  if (oldest->frame_width == 0) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "%s: the frame was submitted as a tensor: use hfam_context_collect", what);
    return FALSE;
  }
  if (!alpha || alpha_stride < oldest->frame_width) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "%s: alpha %s, stride %d for a frame %d wide", what,
                 alpha ? "given" : "NULL", alpha_stride, oldest->frame_width);
    return FALSE;
  }
  frame_width = oldest->frame_width;
  frame_height = oldest->frame_height;
  if (extra)
    out = *extra;
  out.fused = ctx->fused;
  return collect (ctx, &out, error)
      && finish_matte (ctx, frame_width, frame_height, alpha, alpha_stride, extra, error);
}
