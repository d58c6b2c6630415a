/* libhfam's model (weights + graph) and the context that runs it on a backend. Frames go
 * through it in frames.c, tensors in tensors.c. */
#include "context.h"
#include "hfam-internal.h"

#include <math.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

HfamModel *
hfam_model_load (const char *path, GError **error)
{
  HfamModel *model = g_new0 (HfamModel, 1);
  model->refs = 1;
  model->path = g_strdup (path);
  if (!(model->st = hfam_st_open (path, error))
      || !hfam_hparams_read (model->st, &model->hp, error)
      || !(model->graph = hfam_graph_build (&model->hp, model->st, error))) {
    hfam_model_free (model);
    return NULL;
  }
  model->cpu_weights = hfam_cpu_weight_cache_new (model->graph->n_nodes);
  g_mutex_init (&model->batch_groups.lock);
  return model;
}

/* The models hfam_model_load_shared loaded, by their files' identity, while anyone holds
 * them. */
static GMutex shared_models_lock;
static GHashTable *shared_models;

/* Which file `path` is now (NULL where it cannot be read): a file replaced or rewritten since
 * has another identity. */
static char *
file_identity (const char *path)
{
  GStatBuf st;

  if (g_stat (path, &st) != 0)
    return NULL;
  return g_strdup_printf ("%ju:%ju:%jd:%jd.%09ld", (uintmax_t) st.st_dev,
                          (uintmax_t) st.st_ino, (intmax_t) st.st_size,
                          (intmax_t) st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

HfamModel *
hfam_model_load_shared (const char *path, GError **error)
{
  g_autofree char *key = file_identity (path);
  HfamModel *model;

  /* hfam_model_load says what is wrong with a file that cannot be read */
  if (!key)
    return hfam_model_load (path, error);
  /* held while a model loads, so that elements starting together load the file once */
  g_mutex_lock (&shared_models_lock);
  if (!shared_models)
    shared_models = g_hash_table_new (g_str_hash, g_str_equal);
  if ((model = g_hash_table_lookup (shared_models, key)))
    g_atomic_int_inc (&model->refs);
  else if ((model = hfam_model_load (path, error))) {
    model->shared_key = g_steal_pointer (&key);
    g_hash_table_insert (shared_models, model->shared_key, model);
  }
  g_mutex_unlock (&shared_models_lock);
  return model;
}

HfamModel *
hfam_model_ref (HfamModel *model)
{
  g_atomic_int_inc (&model->refs);
  return model;
}

void
hfam_model_free (HfamModel *model)
{
  if (!model)
    return;
  if (model->shared_key) {
    /* under the lock: a lookup must not find a model on its way out */
    gboolean last;
    g_mutex_lock (&shared_models_lock);
    if ((last = g_atomic_int_dec_and_test (&model->refs)))
      g_hash_table_remove (shared_models, model->shared_key);
    g_mutex_unlock (&shared_models_lock);
    if (!last)
      return;
  } else if (!g_atomic_int_dec_and_test (&model->refs)) {
    return;
  }
  /* (a model whose file failed to load has neither) */
  if (model->cpu_weights) {
    hfam_cpu_weight_cache_free (model->cpu_weights);
    g_mutex_clear (&model->batch_groups.lock);
  }
  hfam_graph_free (model->graph);
  if (model->st)
    hfam_st_close (model->st);
  g_free (model->shared_key);
  g_free (model->path);
  g_free (model);
}

guint64
hfam_model_cpu_weight_bytes (const HfamModel *model)
{
  return hfam_cpu_weight_cache_bytes (model->cpu_weights);
}

int
hfam_model_inference_size (const HfamModel *model)
{
  return model->hp.inference_size;
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

guint64
hfam_default_memory_budget (void)
{
  const guint64 cap = G_GUINT64_CONSTANT (8) << 30;
  const long pages = sysconf (_SC_PHYS_PAGES), page_size = sysconf (_SC_PAGESIZE);
  if (pages <= 0 || page_size <= 0)
    return cap;
  return MIN (cap, (guint64) pages * (guint64) page_size / 2);
}

static double
mib (guint64 bytes)
{
  return bytes / (double) (1 << 20);
}

gboolean
hfam_host_budget_check (const HfamHostBudget *budget, guint64 bytes, const char *what,
                        int width, int height, GError **error)
{
  /* (written so that a sum past 2^64 cannot wrap around) */
  if (bytes <= budget->limit && budget->held <= budget->limit - bytes)
    return TRUE;
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_BUDGET,
               "%s %dx%d needs about %.0f MiB of host memory, more than the memory budget of "
               "%.0f MiB: ask for a smaller size, or raise the budget "
               "(HfamOptions.memory_budget; --memory-budget in hfam-matte and hfam-eval)",
               what, width, height, ceil (mib (budget->held) + mib (bytes)), mib (budget->limit));
  return FALSE;
}

gboolean
hfam_host_budget_take (HfamHostBudget *budget, guint64 bytes, const char *what, int width,
                       int height, GError **error)
{
  if (!hfam_host_budget_check (budget, bytes, what, width, height, error))
    return FALSE;
  budget->held += bytes;
  return TRUE;
}

void
hfam_host_budget_give (HfamHostBudget *budget, guint64 bytes)
{
  g_assert (bytes <= budget->held);
  budget->held -= bytes;
}

/* The index of `name` among `n` names, or -1 with an error naming them: "unknown WHAT 'x'
 * (a, b or c)". */
static int
name_index (const char *what, const char *const *names, int n, const char *name,
            GError **error)
{
  g_autoptr (GString) choices = g_string_new (NULL);

  for (int k = 0; k < n; k++)
    if (g_strcmp0 (name, names[k]) == 0)
      return k;
  for (int k = 0; k < n; k++)
    g_string_append_printf (choices, "%s%s", k == 0 ? "" : k == n - 1 ? " or " : ", ",
                            names[k]);
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "unknown %s '%s' (%s)", what, name,
               choices->str);
  return -1;
}

gboolean
hfam_backend_kind_parse (const char *name, HfamBackendKind *kind, GError **error)
{
  static const char *const names[] = { "auto", "cpu", "cuda" };  /* HfamBackendKind's order */
  const int k = name_index ("backend", names, G_N_ELEMENTS (names), name, error);

  if (k >= 0)
    *kind = k;
  return k >= 0;
}

gboolean
hfam_precision_parse (const char *name, HfamPrecision *precision, GError **error)
{
  static const char *const names[] = { "default", "fp32", "fp16", "int8", "bf16",
                                       "int8-bf16" };  /* HfamPrecision's */
  const int k = name_index ("precision", names, G_N_ELEMENTS (names), name, error);

  if (k >= 0)
    *precision = k;
  return k >= 0;
}

#ifdef HFAM_HAVE_CUDA
/* A CUDA batch group's lanes (HfamBatchLanes): on the members' CUDA context (the one their
 * frames-only backends run on; NULL: the device's primary one), two batches in flight,
 * whatever the member's pipeline_depth says. */
typedef struct {
  HfamCudaBackendOptions options;
  int device_id;
} CudaLaneSettings;

static HfamBackend *
new_cuda_lane (const HfamGraph *graph, int batch, const void *settings, GError **error)
{
  const CudaLaneSettings *lane = settings;
  HfamCudaBackendOptions options = lane->options;

  options.batch = batch;
  return hfam_backend_cuda_new (graph, lane->device_id, &options, error);
}
#endif

HfamContext *
hfam_context_new (HfamModel *model, const HfamOptions *options, const HfamCudaOptions *cuda,
                  GError **error)
{
  static const HfamOptions default_options = { 0 };
  static const HfamCudaOptions default_cuda = { .device_id = -1 };
  HfamContext *ctx;
  HfamBackend *backend = NULL;

  g_return_val_if_fail (model != NULL, NULL);
  if (!options)
    options = &default_options;
  if (!cuda)
    cuda = &default_cuda;
  if ((unsigned) options->backend > HFAM_BACKEND_CUDA
      || (unsigned) options->precision > HFAM_PRECISION_INT8_BF16 || options->pipeline_depth > 2
      || options->max_batch > HFAM_MAX_BATCH || options->batch_timeout_us < 0) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "context options: backend %d, precision %d, pipeline depth %d, max batch %d, "
                 "batch time-out %d us: want a HfamBackendKind, a HfamPrecision, a depth of at "
                 "most 2, a batch of at most %d and a time-out of at least 0",
                 options->backend, options->precision, options->pipeline_depth,
                 options->max_batch, options->batch_timeout_us, HFAM_MAX_BATCH);
    return NULL;
  }
  /* before the backend, which counts its memory in the context's budget */
  ctx = g_new0 (HfamContext, 1);
  ctx->budget.limit = options->memory_budget > 0 ? options->memory_budget
                                                 : hfam_default_memory_budget ();
#ifdef HFAM_HAVE_CUDA
  if (options->backend == HFAM_BACKEND_CUDA || options->backend == HFAM_BACKEND_AUTO) {
    const HfamCudaBackendOptions backend_options = {
      .fp16 = options->precision != HFAM_PRECISION_FP32,
      .pipeline_depth = options->pipeline_depth,
      .no_graphs = cuda->no_graphs,
      .current_context = cuda->current_context,
    };
    CudaLaneSettings lane;
    const HfamBatchLanes cuda_lanes = { new_cuda_lane, &lane, sizeof lane };
    GError *cuda_error = NULL;
    /* (compared byte for byte: no stray padding) */
    memset (&lane, 0, sizeof lane);
    lane.options = backend_options;
    lane.options.pipeline_depth = 2;
    lane.options.current_context = FALSE;
    lane.device_id = MAX (cuda->device_id, 0);
    if (options->max_batch > 1) {
      HfamCudaBackendOptions frames_options = backend_options;
      frames_options.frames_only = TRUE;
      ctx->device_backend = hfam_backend_cuda_new (model->graph, cuda->device_id,
                                                   &frames_options, &cuda_error);
      if (ctx->device_backend) {
        /* the lane reads the member's device frames' inputs and writes their mattes; a
         * context says its device */
        lane.options.context = ctx->device_backend->cuda_context;
        if (lane.options.context)
          lane.device_id = 0;
        if ((ctx->group = hfam_batch_group_join (&model->batch_groups, model->graph, NULL,
                                                 options, &cuda_lanes, &cuda_error)))
          backend = hfam_batch_group_backend (ctx->group);
        else {
          ctx->device_backend->ops->free (ctx->device_backend);
          ctx->device_backend = NULL;
        }
      }
    } else
      backend = hfam_backend_cuda_new (model->graph, cuda->device_id, &backend_options,
                                       &cuda_error);
    if (!backend && options->backend == HFAM_BACKEND_CUDA) {
      g_propagate_error (error, cuda_error);
      g_free (ctx);
      return NULL;
    }
    if (!backend) {
      g_debug ("hfam: %s; running on the CPU", cuda_error->message);
      g_clear_error (&cuda_error);
    }
  }
#else
  if (options->backend == HFAM_BACKEND_CUDA) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_UNSUPPORTED,
                 "backend cuda: this build has no CUDA backend");
    g_free (ctx);
    return NULL;
  }
#endif
  ctx->options = *options;
  ctx->options.backend = backend ? HFAM_BACKEND_CUDA : HFAM_BACKEND_CPU;
  ctx->cuda = *cuda;
  if (!backend && options->max_batch > 1
      && (ctx->group = hfam_batch_group_join (&model->batch_groups, model->graph,
                                              model->cpu_weights, options, NULL, error)))
    backend = hfam_batch_group_backend (ctx->group);
  if (ctx->group) {
    /* the group's runner computes while the member goes on */
    ctx->pipeline_depth = CLAMP (options->pipeline_depth, 1, HFAM_MAX_PIPELINE_DEPTH);
  } else if (options->max_batch > 1) {
    g_free (ctx);
    return NULL;
  } else if (backend) {
    ctx->pipeline_depth = MAX (backend->pipeline_depth, 1);
  } else if ((backend = hfam_backend_cpu_new (model->graph, model->cpu_weights,
                                              options->precision, options->n_threads,
                                              options->pipeline_depth, &ctx->budget, error))) {
    ctx->pipeline_depth = MAX (backend->pipeline_depth, 1);
  } else {
    g_free (ctx);
    return NULL;
  }
  ctx->model = hfam_model_ref (model);
  ctx->backend = backend;
  ctx->host_threads = options->n_threads > 0 ? options->n_threads
                                             : (int) g_get_num_processors ();
  hfam_edge_params_init (&ctx->edges);
  return ctx;
}

HfamContext *
hfam_context_new_sibling (const HfamContext *ctx, GError **error)
{
  return hfam_context_new (ctx->model, &ctx->options, &ctx->cuda, error);
}

HfamPrecision
hfam_context_precision (const HfamContext *ctx)
{
  return ctx->backend->precision == HFAM_PRECISION_DEFAULT ? HFAM_PRECISION_FP32
                                                           : ctx->backend->precision;
}

int
hfam_context_auto_long_side (const HfamContext *ctx)
{
  const int model_side = hfam_model_inference_size (ctx->model);
  int side;

  if (ctx->backend->gpu)
    return model_side;
  switch (hfam_context_precision (ctx)) {
  case HFAM_PRECISION_INT8_BF16:
    side = HFAM_CPU_REALTIME_LONG_SIDE_INT8_BF16;
    break;
  case HFAM_PRECISION_INT8:
    side = HFAM_CPU_REALTIME_LONG_SIDE_INT8;
    break;
  default:
    side = ctx->backend->winograd ? HFAM_CPU_REALTIME_LONG_SIDE_FP32
                                  : HFAM_CPU_REALTIME_LONG_SIDE_FP32_AVX2;
  }
  side = (int) lround (side * sqrt (ctx->host_threads / 2.0) / 32.0) * 32;
  return CLAMP (side, 32, model_side);
}

int
hfam_context_pipeline_depth (const HfamContext *ctx)
{
  return ctx->pipeline_depth;
}

gboolean
hfam_context_device_frames (const HfamContext *ctx)
{
  return ctx->backend->device != NULL || ctx->device_backend != NULL;
}

int
hfam_context_max_batch (const HfamContext *ctx)
{
  return ctx->group ? hfam_batch_group_max_batch (ctx->group) : 1;
}

void
hfam_context_free (HfamContext *ctx)
{
  HfamOutputs none = { 0 };

  if (!ctx)
    return;
  /* frames still in flight are finished and dropped: the backend frees nothing in use */
  while (ctx->n_pending > 0) {
    if (ctx->group) {
      const gboolean device = hfam_context_oldest_pending (ctx, NULL, NULL)->memory
                              == HFAM_MEMORY_CUDA;
      hfam_context_collect_outputs (ctx, &none, NULL);
      if (device)
        ctx->device_backend->device->drop_frame (ctx->device_backend);
    } else {
      if (ctx->backend->ops->collect_frame)
        ctx->backend->ops->collect_frame (ctx->backend, &none, NULL);
      hfam_context_drop_oldest (ctx);
    }
  }
  if (ctx->group)
    hfam_batch_group_leave (&ctx->model->batch_groups, ctx->group, ctx->pipeline_depth);
  else
    ctx->backend->ops->free (ctx->backend);
  /* (after the group: its lane may read this backend's inputs until the member leaves) */
  if (ctx->device_backend)
    ctx->device_backend->ops->free (ctx->device_backend);
  g_free (ctx->input);
  g_free (ctx->fused);
  g_free (ctx->kept.buffers.host);
  g_free (ctx->kept.buffers.resized);
  g_free (ctx->kept.buffers.grey);
  g_free (ctx->kept.buffers.flow_scratch);
  g_free (ctx->kept.buffers.follow);
  g_free (ctx->kept.buffers.still);
  g_free (ctx->kept.buffers.held);
  g_free (ctx->kept.buffers.islands);
  for (int i = 0; i < HFAM_MAX_PIPELINE_DEPTH; i++)
    g_free (ctx->grey[i]);
  hfam_scratch_clear (&ctx->edge_scratch);
  hfam_model_free (ctx->model);
  g_free (ctx);
}

gboolean
hfam_context_batch_counts (HfamContext *ctx, HfamBatchCounts *counts)
{
  if (!ctx->group)
    return FALSE;
  hfam_batch_group_counts (ctx->group, counts);
  return TRUE;
}

guint64
hfam_context_host_memory (const HfamContext *ctx)
{
  return ctx->budget.held;
}

const char *
hfam_context_backend_name (const HfamContext *ctx)
{
  return ctx->backend->ops->name;
}

/* One side: in double precision and clamped before it becomes an int, so that no argument
 * overflows it (the API refuses sides and long sides out of range before this). */
static int
inference_side (double side, double scale)
{
  const double rounded = 32.0 * round (side * scale / 32.0);
  return (int) CLAMP (rounded, 32.0, (double) (G_MAXINT / 32 * 32));
}

void
hfam_inference_dims (int frame_w, int frame_h, float pixel_aspect, int long_side, int *inf_w,
                     int *inf_h)
{
  /* the picture as it is shown: its pixels' width times their aspect */
  const double shown_w = (double) frame_w * (pixel_aspect > 0.0f ? pixel_aspect : 1.0f);
  const double scale = (double) MAX (long_side, 1) / MAX (MAX (shown_w, frame_h), 1.0);
  *inf_w = inference_side (shown_w, scale);
  *inf_h = inference_side (frame_h, scale);
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
