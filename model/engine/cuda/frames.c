/* The CUDA backend's frames in host memory, and its frame slots in flight.
 * - Pipeline depth 2: two frame slots, each with its own streams, buffers and workspaces, so
 *   the encoder of frame n + 1 runs while the decoders of frame n do.
 * - Host input goes through pinned staging.
 * - A batch is one frame slot's work for `batch` frames; queue_frame and collect_frame use its
 *   first frame. */
#include "cuda-backend.h"

#include <string.h>

static Slot *
head_slot (CudaBackend *be)
{
  return &be->slots[be->head % be->depth];
}

gboolean
check_planned (CudaBackend *be, GError **error)
{
  if (be->width)
    return TRUE;
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "cuda backend: run before plan");
  return FALSE;
}

/* The slot the next frame goes to, or NULL (with an error) while it is in flight. */
Slot *
free_head_slot (CudaBackend *be, GError **error)
{
  Slot *slot = head_slot (be);

  if (!slot->queued && slot->next_stage == 0)
    return slot;
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
               "cuda backend: every frame slot is in flight: collect a frame first");
  return NULL;
}

/* Copies `n` frames' inputs into the free head slot's staging (a batch's first ones: the
 * frames past n run on the inputs of the slot's last batch, and their outputs are not read). */
static gboolean
stage_inputs (CudaBackend *be, const float *const *inputs, int n, GError **error)
{
  const size_t planes = 3 * (size_t) be->width * be->height;
  Slot *slot;

  if (!check_planned (be, error) || !(slot = free_head_slot (be, error)))
    return FALSE;
  for (int k = 0; k < n; k++)
    memcpy (slot->host_in + planes * k, inputs[k], sizeof (float) * planes);
  return TRUE;
}

gboolean
cuda_set_input (HfamBackend *base, const float *input, GError **error)
{
  return stage_inputs ((CudaBackend *) base, &input, 1, error);
}

/* After a failure while queueing: wait for what was queued and make the slot free again. */
void
drain_slot (CudaBackend *be, Slot *slot)
{
  for (int j = 0; j < be->n_streams; j++)
    cudaStreamSynchronize (slot->streams[j]);
  cudaGetLastError ();
  slot->next_stage = 0;
  be->whole_frame_queued = FALSE;
}

void
finish_queueing (CudaBackend *be, Slot *slot, FrameKind kind)
{
  slot->queued = TRUE;
  slot->kind = kind;
  slot->next_stage = 0;
  slot->n_frames = 1;  /* (queue_staged says how many a batch has) */
  be->head++;
}

/* Waits for a frame that is dropped uncollected: its copies read the slot's pinned staging,
 * which the next frame's host copy overwrites, or the caller's device frame, which the caller
 * may reuse once the drop returns. (Its error, if any, is the dropped frame's.) */
void
drop_frame (Slot *slot)
{
  cudaEventSynchronize (slot->frame_done);
  cudaGetLastError ();
}

/* Takes the oldest frame out of flight and returns its slot; NULL, with an error, when there
 * is none (nothing taken) or when it is not of `kind` (dropped then, as after any failed
 * collect). A dropped frame may still be running: whatever the slot takes next is queued on
 * the same streams, after it; but its staged input is written by the host, so drop_frame
 * waits for it. */
Slot *
take_oldest_frame (CudaBackend *be, FrameKind kind, GError **error)
{
  static const char *const collect[N_FRAME_KINDS] = {
    [FRAME_HOST] = "collect_frame", [FRAME_DEVICE] = "keep_matte",
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
  drop_frame (slot);
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
               "cuda backend: %s on a frame that only %s collects: the frame is dropped",
               collect[kind], collect[slot->kind]);
  return NULL;
}

gboolean
cuda_run_stage (HfamBackend *base, HfamStage stage, GError **error)
{
  CudaBackend *be = (CudaBackend *) base;
  Slot *slot;

  if (!check_planned (be, error) || !use_device (be, be->stage_name (stage), error))
    return FALSE;
  slot = head_slot (be);
  if (!be->whole_frame_queued && ((int) stage != slot->next_stage || slot->queued)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "cuda backend: stage %s queued out of order", be->stage_name (stage));
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
gboolean
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

/* Waits for the frames of `slot` and copies the outputs of its first `n` (any pointer of
 * out[k] may be NULL). */
static gboolean
copy_outputs (CudaBackend *be, Slot *slot, HfamOutputs *out, int n, GError **error)
{
  const HfamGraph *g = be->base.graph;
  const size_t plane = (size_t) be->width * be->height;
  cudaError_t err = cudaEventSynchronize (slot->frame_done);

  for (int k = 0; k < n && err == cudaSuccess; k++) {
    if (out[k].semantic)
      err = cudaMemcpy (out[k].semantic, value_planar_at (be, slot, g->semantic, k),
                        sizeof (float) * 3 * plane, cudaMemcpyDeviceToHost);
    if (err == cudaSuccess && out[k].detail)
      err = cudaMemcpy (out[k].detail, value_planar_at (be, slot, g->fusion, k),
                        sizeof (float) * plane, cudaMemcpyDeviceToHost);
    if (out[k].fused)
      memcpy (out[k].fused, slot->host_alpha + plane * k, sizeof (float) * plane);
  }
  if (err != cudaSuccess) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "cuda backend: frame failed: %s",
                 cudaGetErrorString (err));
    return FALSE;
  }
  return TRUE;
}

gboolean
cuda_collect_frame (HfamBackend *base, HfamOutputs *out, GError **error)
{
  CudaBackend *be = (CudaBackend *) base;
  Slot *slot;

  if (!(slot = take_oldest_frame (be, FRAME_HOST, error)) || !use_device (be, "outputs", error))
    return FALSE;
  return copy_outputs (be, slot, out, 1, error);
}

/* Queues the head slot's work on the input staged there: a frame, or a batch of `n`. */
static gboolean
queue_staged (CudaBackend *be, int n, GError **error)
{
  Slot *slot = head_slot (be);

  if (!queue_whole_frame (be, slot, FRAME_HOST, error)) {
    drain_slot (be, slot);
    return FALSE;
  }
  finish_queueing (be, slot, FRAME_HOST);
  slot->n_frames = n;
  return TRUE;
}

gboolean
cuda_queue_frame (HfamBackend *base, const float *input, GError **error)
{
  CudaBackend *be = (CudaBackend *) base;

  return cuda_set_input (base, input, error) && use_device (be, "frame", error)
         && queue_staged (be, 1, error);
}

gboolean
cuda_queue_batch (HfamBackend *base, const float *const *inputs, int n, GError **error)
{
  CudaBackend *be = (CudaBackend *) base;

  if (n < 1 || n > be->base.batch) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "cuda backend: a batch of %d frames; this backend runs 1 to %d", n,
                 be->base.batch);
    return FALSE;
  }
  return stage_inputs (be, inputs, n, error) && use_device (be, "batch", error)
         && queue_staged (be, n, error);
}

gboolean
cuda_batch_done (HfamBackend *base)
{
  CudaBackend *be = (CudaBackend *) base;
  const Slot *slot = &be->slots[be->tail % be->depth];
  cudaError_t err;

  if (!slot->queued)
    return TRUE;
  /* (any answer but "not ready" lets collect_batch find out) */
  err = cudaEventQuery (slot->frame_done);
  if (err == cudaErrorNotReady) {
    cudaGetLastError ();
    return FALSE;
  }
  return TRUE;
}

gboolean
cuda_collect_batch (HfamBackend *base, HfamOutputs *out, int n, GError **error)
{
  CudaBackend *be = (CudaBackend *) base;
  Slot *slot;

  /* (out NULL: a batch of device frames, whose outputs went to their slices). The device
   * first: a frame taken out of flight is waited for, or its members' buffers could be
   * reused while the lane still copies */
  if (!use_device (be, "outputs", error)
      || !(slot = take_oldest_frame (be, out ? FRAME_HOST : FRAME_DEVICE, error)))
    return FALSE;
  if (n != slot->n_frames) {
    drop_frame (slot);
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "cuda backend: %d frames collected of a batch of %d: the batch is dropped", n,
                 slot->n_frames);
    return FALSE;
  }
  if (!out) {
    CUDA_TRY (cudaEventSynchronize (slot->frame_done), "device batch");
    return TRUE;
  }
  return copy_outputs (be, slot, out, n, error);
}
