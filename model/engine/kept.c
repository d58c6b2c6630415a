/* The kept matte on the host: a collected frame's fresh matte (its black bars cleared, its
 * islands dropped) blended into the kept one by the frame's temporal method, then the blend's
 * islands dropped; and the kept matte moved along the picture's motion. The device frames'
 * twin of this is the backend's keep_matte (backend.h). */
#include "context.h"
#include "hfam-internal.h"
#include "bars.h"
#include "compensate.h"
#include "islands.h"
#include "temporal.h"

#include <string.h>

gboolean
hfam_context_ensure_counted (HfamContext *ctx, float **buffer, guint64 *held, guint64 bytes,
                             const char *what, int width, int height, GError **error)
{
  if (*buffer && *held == bytes)
    return TRUE;
  g_clear_pointer (buffer, g_free);
  hfam_host_budget_give (&ctx->budget, *held);
  *held = 0;
  if (!hfam_host_budget_take (&ctx->budget, bytes, what, width, height, error))
    return FALSE;
  if (!(*buffer = g_try_malloc (bytes))) {
    hfam_host_budget_give (&ctx->budget, bytes);
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "%s %dx%d: out of memory", what, width,
                 height);
    return FALSE;
  }
  *held = bytes;
  return TRUE;
}

gboolean
hfam_context_compensate_kept (HfamContext *ctx, const float *grey, const float **moved,
                              GError **error)
{
  HfamKeptMatte *kept = &ctx->kept;
  HfamKeptBuffers *const buf = &kept->buffers;
  const size_t plane = (size_t) kept->width * kept->height;
  HfamFlowParams fp;
  hfam_flow_params_init (&fp);
  const size_t floats = plane + hfam_compensate_scratch_floats (kept->width, kept->height, &fp);

  if (!hfam_context_ensure_counted (ctx, &buf->flow_scratch, &buf->flow_scratch_bytes,
                                    sizeof (float) * (guint64) floats, "inference size",
                                    kept->width, kept->height, error))
    return FALSE;
  *moved = buf->flow_scratch;
  if (hfam_motion_compensate (buf->host, buf->grey, grey, kept->width, kept->height, &fp,
                              buf->flow_scratch, buf->flow_scratch + plane) != 0) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "motion compensation: out of memory");
    return FALSE;
  }
  return TRUE;
}

/* `matte` (at the inference size) with its islands dropped (kernels/islands.h). */
static gboolean
drop_islands (HfamContext *ctx, float *matte, float share, GError **error)
{
  HfamKeptBuffers *const buf = &ctx->kept.buffers;
  const HfamIslandParams p = { .floor = HFAM_ISLAND_FLOOR, .share = share };

  if (!hfam_context_ensure_counted (ctx, &buf->islands, &buf->islands_bytes,
                                    hfam_islands_scratch_bytes (ctx->width, ctx->height),
                                    "inference size", ctx->width, ctx->height, error))
    return FALSE;
  if (hfam_matte_drop_islands (matte, ctx->width, ctx->height, &p, buf->islands) != 0) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "islands %g at %dx%d: refused", share,
                 ctx->width, ctx->height);
    return FALSE;
  }
  return TRUE;
}

gboolean
hfam_context_keep_host_matte (HfamContext *ctx, const HfamPendingFrame *collected,
                              GError **error)
{
  HfamKeptMatte *kept = &ctx->kept;
  HfamKeptBuffers *const buf = &kept->buffers;
  const size_t n = (size_t) ctx->width * ctx->height;
  const gboolean blend = collected->smoothing > 0.0f && kept->valid
                         && kept->memory == HFAM_MEMORY_HOST && kept->width == ctx->width
                         && kept->height == ctx->height;

  const gboolean motion = collected->temporal != HFAM_TEMPORAL_BLEND;
  const float *grey = motion ? ctx->grey[collected->slot] : NULL;
  /* the held matte belongs to the kept matte's frame, which is now the one before */
  const gboolean held_before = kept->held_current;

  kept->bars = (HfamBars) { 0, 0, 0, 0 };
  if (collected->letterbox) {
    const HfamBarParams bars = { .black = HFAM_BAR_BLACK };
    hfam_matte_clear_bars (ctx->fused, ctx->grey[collected->slot], ctx->width, ctx->height,
                           &bars, &kept->bars);
  }
  if (collected->islands > 0.0f && !drop_islands (ctx, ctx->fused, collected->islands, error)) {
    kept->valid = FALSE;
    return FALSE;
  }
  kept->holds = motion && collected->smoothing > 0.0f;
  kept->compensates = collected->temporal == HFAM_TEMPORAL_COMPENSATED;
  kept->still_valid = kept->held_current = FALSE;
  if (blend && motion && kept->grey_valid) {
    HfamMotionParams mp;
    const float *moved = NULL;
    hfam_motion_params_init (&mp, collected->smoothing);
    if (collected->temporal == HFAM_TEMPORAL_COMPENSATED
        && !hfam_context_compensate_kept (ctx, grey, &moved, error)) {
      kept->valid = FALSE;
      return FALSE;
    }
    if (!hfam_context_ensure_counted (ctx, &buf->still, &buf->still_bytes, sizeof (float) * n,
                                      "inference size", ctx->width, ctx->height, error)) {
      kept->valid = FALSE;
      return FALSE;
    }
    kept->still_valid = held_before;
    if (hfam_matte_blend_motion (buf->host, ctx->fused, grey, buf->grey, moved, ctx->width,
                                 ctx->height, &mp, buf->still) != 0) {
      kept->valid = FALSE;
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "temporal smoothing: out of memory");
      return FALSE;
    }
  } else if (blend) {
    hfam_matte_blend (buf->host, ctx->fused, n, collected->smoothing);
  } else {
    if (!hfam_context_ensure_counted (ctx, &buf->host, &buf->host_bytes, sizeof (float) * n,
                                      "inference size", ctx->width, ctx->height, error)) {
      kept->valid = FALSE;
      return FALSE;
    }
    memcpy (buf->host, ctx->fused, sizeof (float) * n);
  }
  /* A region the network has dropped lives on in a held matte, fading by the hold each frame:
   * from the blend too, it goes once it is an island. (Dropped from the fresh matte alone, the
   * held ones stay; from the blend alone, the fresh ones join faint held ones: both lag more on
   * the validation video sets.) */
  if (blend && collected->islands > 0.0f
      && !drop_islands (ctx, buf->host, collected->islands, error)) {
    kept->valid = FALSE;
    return FALSE;
  }
  /* the picture the kept matte now belongs to, for the next frame's motion */
  kept->grey_valid = FALSE;
  if (motion) {
    if (!hfam_context_ensure_counted (ctx, &buf->grey, &buf->grey_bytes, sizeof (float) * n,
                                      "inference size", ctx->width, ctx->height, error)) {
      kept->valid = FALSE;
      return FALSE;
    }
    memcpy (buf->grey, grey, sizeof (float) * n);
    kept->grey_valid = TRUE;
  }
  kept->valid = TRUE;
  kept->memory = HFAM_MEMORY_HOST;
  kept->long_side = collected->long_side;
  kept->pixel_aspect = collected->pixel_aspect;
  kept->width = ctx->width;
  kept->height = ctx->height;
  kept->resized_width = kept->resized_height = 0;
  return TRUE;
}

void
hfam_motion_params_init (HfamMotionParams *p, float smoothing)
{
  *p = (HfamMotionParams) { .hold = smoothing, .still = HFAM_MOTION_STILL,
                            .moving = HFAM_MOTION_MOVING, .radius = HFAM_MOTION_RADIUS,
                            .hold_moved = smoothing * HFAM_MOTION_MOVED_SHARE };
}

void
hfam_flow_params_init (HfamFlowParams *p)
{
  *p = (HfamFlowParams) { .block = HFAM_FLOW_BLOCK, .levels = HFAM_FLOW_LEVELS,
                          .search = HFAM_FLOW_SEARCH, .bias = HFAM_FLOW_BIAS,
                          .spread = HFAM_FLOW_SPREAD };
}
