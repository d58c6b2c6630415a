/* The CPU backend's frames in flight (backend.h's queue_frame and collect_frame): at depth 2
 * a runner thread computes the frames in order while the caller prepares the next one and
 * writes out the previous one; at depth 1 queue_frame runs the frame itself. Either way
 * collect_frame pops them from `done`. Each frame's buffers count in the budget. */
#include "backend-cpu.h"

#include <string.h>

static void
free_frame (CpuBackend *be, CpuFrame *f)
{
  g_clear_pointer (&f->input, hfam_cpu_free);
  g_clear_pointer (&f->semantic, hfam_cpu_free);
  g_clear_pointer (&f->fusion, hfam_cpu_free);
  g_clear_error (&f->error);
  hfam_cpu_release_counted (be, &f->bytes);
}

void
hfam_cpu_free_frames (CpuBackend *be)
{
  for (int k = 0; k < 2; k++)
    free_frame (be, &be->frames[k]);
}

/* One queued frame, start to end; the outputs stay in the frame for collect_frame. */
static void
run_frame (CpuBackend *be, CpuFrame *f)
{
  HfamBackend *base = &be->base;
  const size_t plane = (size_t) be->width * be->height;
  HfamOutputs out = { f->semantic, f->fusion, f->fusion + plane };

  if (!base->ops->set_input (base, f->input, &f->error))
    return;
  for (int stage = 0; stage < HFAM_N_STAGES; stage++)
    if (!base->ops->run_stage (base, stage, &f->error))
      return;
  if (base->ops->synchronize (base, &f->error))
    base->ops->get_outputs (base, &out, &f->error);
}

gpointer
hfam_cpu_runner_main (gpointer data)
{
  CpuBackend *be = data;
  CpuFrame *f;

  /* a frame of its own, `be`, asks the runner to stop */
  while ((f = g_async_queue_pop (be->todo)) != (CpuFrame *) be) {
    run_frame (be, f);
    g_async_queue_push (be->done, f);
  }
  return NULL;
}

static float *
frame_planes (CpuBackend *be, CpuFrame *f, int n_planes, GError **error)
{
  return hfam_cpu_counted_alloc (be, sizeof (float) * n_planes * be->width * be->height,
                                 &f->bytes, error);
}

gboolean
hfam_cpu_queue_frame (HfamBackend *base, const float *input, GError **error)
{
  CpuBackend *be = (CpuBackend *) base;
  const size_t plane = (size_t) be->width * be->height;
  CpuFrame *f = &be->frames[be->next_frame];

  if (!be->width) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "cpu backend: queue before plan");
    return FALSE;
  }
  /* plan frees the frames: sized for the planned input */
  if (!f->input
      && !((f->input = frame_planes (be, f, 3, error))
           && (f->semantic = frame_planes (be, f, 3, error))
           && (f->fusion = frame_planes (be, f, 2, error)))) {
    free_frame (be, f);
    return FALSE;
  }
  memcpy (f->input, input, sizeof (float) * 3 * plane);
  be->next_frame = (be->next_frame + 1) % G_N_ELEMENTS (be->frames);
  if (be->runner) {
    g_async_queue_push (be->todo, f);
  } else {
    run_frame (be, f);
    g_async_queue_push (be->done, f);
  }
  return TRUE;
}

gboolean
hfam_cpu_collect_frame (HfamBackend *base, HfamOutputs *out, GError **error)
{
  CpuBackend *be = (CpuBackend *) base;
  const size_t plane = (size_t) be->width * be->height;
  CpuFrame *f = g_async_queue_pop (be->done);

  if (f->error) {
    g_propagate_error (error, f->error);
    f->error = NULL;
    return FALSE;
  }
  if (out->semantic)
    memcpy (out->semantic, f->semantic, sizeof (float) * 3 * plane);
  if (out->detail)
    memcpy (out->detail, f->fusion, sizeof (float) * plane);
  if (out->fused)
    memcpy (out->fused, f->fusion + plane, sizeof (float) * plane);
  return TRUE;
}
