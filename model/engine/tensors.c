/* The network on tensors at the inference size, and the frames in flight (one mechanism for
 * tensors, host frames and device frames): what frames.c builds on, and what the engine's
 * tests and hfam-bench reach through hfam-internal.h. */
#include "context.h"
#include "hfam-internal.h"

#include <string.h>

static const char *
memory_name (HfamMemory memory)
{
  return memory == HFAM_MEMORY_CUDA ? "CUDA device" : "host";
}

/* The bytes of libhfam's planes at an inference size: the input (3) and alpha_p (1). */
static guint64
size_bytes (int width, int height)
{
  return sizeof (float) * 4 * (guint64) width * height;
}

/* Drops the planned size's buffers; the next frame plans again. */
static void
forget_size (HfamContext *ctx)
{
  hfam_host_budget_give (&ctx->budget, size_bytes (ctx->width, ctx->height));
  g_clear_pointer (&ctx->input, g_free);
  g_clear_pointer (&ctx->fused, g_free);
  ctx->width = ctx->height = 0;
}

/* Plans libhfam and the backend for an inference size. A refused size (the budget, no
 * memory, the backend) leaves libhfam without a plan and nothing of that size allocated: the
 * next call plans again, for whatever size it asks. */
static gboolean
ensure_size (HfamContext *ctx, int width, int height, GError **error)
{
  const guint64 bytes = size_bytes (width, height);
  gboolean planned;

  if (ctx->width == width && ctx->height == height)
    return TRUE;
  forget_size (ctx);
  /* the backend's estimate counts libhfam's part too; a batch group's runner plans its own */
  ctx->budget.reserved = bytes;
  planned = ctx->group || ctx->backend->ops->plan (ctx->backend, width, height, error);
  ctx->budget.reserved = 0;
  /* (a backend plan that leaves no room for them stays until the next plan replaces it) */
  if (!planned
      || !hfam_host_budget_take (&ctx->budget, bytes, "inference size", width, height, error))
    return FALSE;
  ctx->input = g_try_malloc (bytes / 4 * 3);
  ctx->fused = g_try_malloc (bytes / 4);
  ctx->width = width;
  ctx->height = height;
  if (!ctx->input || !ctx->fused) {
    forget_size (ctx);
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                 "inference size %dx%d: out of memory for the input planes", width, height);
    return FALSE;
  }
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
hfam_context_ready_to_submit (HfamContext *ctx, HfamMemory memory, int width, int height,
                              const char *what, GError **error)
{
  if (ctx->n_pending >= hfam_context_pipeline_depth (ctx)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "%s: %d frame(s) in flight already, the pipeline depth: collect first", what,
                 ctx->n_pending);
    return FALSE;
  }
  for (int i = 0; i < ctx->n_pending; i++)
    if (pending_frame (ctx, i)->memory != memory) {
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                   "%s: frames from %s memory are in flight: collect them first", what,
                   memory_name (pending_frame (ctx, i)->memory));
      return FALSE;
    }
  if (ctx->n_pending > 0 && (width != ctx->width || height != ctx->height)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "%s: inference size %dx%d while %dx%d frames are in flight: collect them "
                 "first", what, width, height, ctx->width, ctx->height);
    return FALSE;
  }
  return ensure_size (ctx, width, height, error);
}

void
hfam_context_add_pending (HfamContext *ctx, const HfamPendingFrame *frame,
                          HfamBatchFrame *batched)
{
  *pending_frame (ctx, ctx->n_pending) = *frame;
  ctx->batched[(ctx->first_pending + ctx->n_pending) % HFAM_MAX_PIPELINE_DEPTH] = batched;
  ctx->n_pending++;
}

const HfamPendingFrame *
hfam_context_oldest_pending (HfamContext *ctx, const char *what, GError **error)
{
  if (ctx->n_pending > 0)
    return pending_frame (ctx, 0);
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "%s: no frame was submitted", what);
  return NULL;
}

void
hfam_context_drop_oldest (HfamContext *ctx)
{
  ctx->first_pending = (ctx->first_pending + 1) % HFAM_MAX_PIPELINE_DEPTH;
  ctx->n_pending--;
}

/* One frame through every stage. A frame that fails after it went in is taken out of the
 * backend again (a collect that wants nothing), so that the next one finds it empty. */
gboolean
hfam_context_run_input (HfamContext *ctx, HfamOutputs *out, GError **error)
{
  static const HfamOutputs nothing = { 0 };
  HfamBackend *be = ctx->backend;
  HfamOutputs discard = nothing;
  gboolean ok = TRUE;

  if (ctx->group) {
    const HfamPendingFrame tensor = { .memory = HFAM_MEMORY_HOST,
                                      .fused_only = !out->semantic && !out->detail };
    return hfam_context_submit_input (ctx, &tensor, error)
           && hfam_context_collect_outputs (ctx, out, error);
  }
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
  if (!hfam_context_no_frames_in_flight (ctx, error) || !ensure_size (ctx, width, height, error))
    return FALSE;
  memcpy (ctx->input, input, sizeof (float) * 3 * (size_t) width * height);
  return hfam_context_run_input (ctx, out, error);
}

gboolean
hfam_context_submit_input (HfamContext *ctx, const HfamPendingFrame *pending, GError **error)
{
  HfamBackend *be = ctx->backend;
  HfamBatchFrame *batched = NULL;

  if (ctx->group) {
    batched = hfam_batch_group_submit (ctx->group, ctx, ctx->input, ctx->width, ctx->height,
                                       pending->fused_only, error);
    if (!batched)
      return FALSE;
  } else if (be->ops->queue_frame) {
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
  hfam_context_add_pending (ctx, pending, batched);
  return TRUE;
}

gboolean
hfam_context_collect_outputs (HfamContext *ctx, HfamOutputs *out, GError **error)
{
  HfamBackend *be = ctx->backend;
  gboolean ok;

  if (ctx->group)
    ok = hfam_batch_group_collect (ctx->group, ctx->batched[ctx->first_pending], out, error);
  else if (be->ops->collect_frame)
    ok = be->ops->collect_frame (be, out, error);
  else
    ok = be->ops->get_outputs (be, out, error);
  hfam_context_drop_oldest (ctx);
  return ok;
}

static gboolean
submit_tensor (HfamContext *ctx, const float *input, int width, int height, gboolean fused_only,
               const char *what, GError **error)
{
  const HfamPendingFrame pending = { .memory = HFAM_MEMORY_HOST, .fused_only = fused_only };

  if (!hfam_context_ready_to_submit (ctx, HFAM_MEMORY_HOST, width, height, what, error))
    return FALSE;
  memcpy (ctx->input, input, sizeof (float) * 3 * (size_t) width * height);
  return hfam_context_submit_input (ctx, &pending, error);
}

gboolean
hfam_context_submit_tensor (HfamContext *ctx, const float *input, int width, int height,
                            GError **error)
{
  return submit_tensor (ctx, input, width, height, FALSE, "hfam_context_submit_tensor", error);
}

gboolean
hfam_context_submit_tensor_alpha (HfamContext *ctx, const float *input, int width, int height,
                                  GError **error)
{
  return submit_tensor (ctx, input, width, height, TRUE, "hfam_context_submit_tensor_alpha",
                        error);
}

gboolean
hfam_context_collect_tensor (HfamContext *ctx, HfamOutputs *out, GError **error)
{
  static const char *const what = "hfam_context_collect_tensor";
  const HfamPendingFrame *oldest = hfam_context_oldest_pending (ctx, what, error);
  HfamOutputs none = { 0 };

  if (!oldest)
    return FALSE;
  if (oldest->frame_width != 0) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "%s: the oldest frame in flight is an image from %s memory: collect it with "
                 "hfam_context_collect", what, memory_name (oldest->memory));
    return FALSE;
  }
  return hfam_context_collect_outputs (ctx, out ? out : &none, error);
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
