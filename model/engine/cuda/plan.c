/* The CUDA backend's buffers, and its plan for one input size.
 * - Every value has its own buffer in one allocation per frame slot (no reuse: the streams
 *   run concurrently, so liveness would need cross-stream fences). Resize, average-pool and
 *   attention products whose only reader is a concatenation write straight into its channel
 *   slice; other inputs of a concatenation are copied into theirs.
 * - A batch's values hold one map a frame, one after another (N of cuDNN's NHWC tensors).
 * - Each stream has one workspace, allocated at plan, for the ways its convolutions take
 *   (conv-search.c). */
#include "cuda-backend.h"

#include <string.h>

/* The most workspace one convolution may use (split-K's partial results included). */
#define WORKSPACE_CAP ((size_t) 256 << 20)

/* Channels as stored: a multiple of 8 in fp16, for the tensor cores. */
static int
padded (const CudaBackend *be, int c)
{
  return be->dtype == HFAM_CUDA_F16 ? (c + 7) / 8 * 8 : c;
}

HfamNhwc
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

float *
value_planar (const CudaBackend *be, const Slot *slot, int id)
{
  return (float *) (slot->arena + be->steps[id].offset);
}

HfamNhwc
value_nhwc_at (const CudaBackend *be, const Slot *slot, int id, int frame)
{
  const Step *s = &be->steps[id];
  HfamNhwc t = value_nhwc (be, slot, id);
  /* a slice moves with the map it is a slice of */
  t.data = (char *) t.data + (size_t) frame * be->steps[s->view_of >= 0 ? s->view_of : id].bytes;
  return t;
}

float *
value_planar_at (const CudaBackend *be, const Slot *slot, int id, int frame)
{
  return (float *) (slot->arena + be->steps[id].offset
                    + (size_t) frame * be->steps[id].bytes);
}

/* Channel strides, consumers and concatenation slices: all independent of the input size. */
void
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
    off += align_up (s->bytes * be->base.batch);
    if (n->op == HFAM_OP_SK_PROJECT) {
      const int cm = n->channels;
      const size_t start = off;
      s->sk_weight_offset = off;
      off += align_up (elem (be) * (size_t) s->cs * be->steps[n->inputs[0]].cs);
      s->sk_bias_offset = off;
      off += align_up (elem (be) * (size_t) s->cs);
      s->sk_scratch_offset = off;
      off += align_up (sizeof (float) * hfam_cuda_sk_scratch_floats (cm));
      s->sk_stride = off - start;
      off += s->sk_stride * (be->base.batch - 1);
    }
  }
  for (int k = 0; k < be->depth; k++)
    be->slots[k].dev_in_offset = off;
  off += align_up (sizeof (float) * 3 * (size_t) be->width * be->height * be->base.batch);
  return off;
}

float *
frame_alpha (const CudaBackend *be, const Slot *slot)
{
  /* fusion's output: alpha_d, then alpha_p */
  if (be->frames_only)
    return (float *) (slot->arena + be->alpha_offset);
  return value_planar (be, slot, be->base.graph->fusion) + (size_t) be->width * be->height;
}

/* A frames-only backend's plan: per slot, the input tensor (as the network's input value is
 * laid out, so that a lane copies it as it is) and alpha_p; no weights, no convolutions. */
static gboolean
plan_frames_only (CudaBackend *be, int width, int height, GError **error)
{
  Step *in = &be->steps[be->base.graph->input];
  size_t arena_size;

  be->width = width;
  be->height = height;
  in->w = width;
  in->h = height;
  in->offset = 0;
  in->bytes = elem (be) * in->cs * (size_t) width * height;
  be->alpha_offset = align_up (in->bytes);
  arena_size = be->alpha_offset + align_up (sizeof (float) * (size_t) width * height);
  /* (zeroed on the slot's stream: the context is shared with the lane and other members,
   * which a device-wide wait would hold up) */
  for (int k = 0; k < be->depth; k++) {
    Slot *slot = &be->slots[k];
    if (cudaMalloc ((void **) &slot->arena, arena_size) != cudaSuccess
        || cudaMemsetAsync (slot->arena, 0, arena_size, slot->streams[MAIN_STREAM])
               != cudaSuccess
        || cudaStreamSynchronize (slot->streams[MAIN_STREAM]) != cudaSuccess) {
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                   "cuda backend: %dx%d: cannot allocate %zu KiB of device memory for a "
                   "frame's input and matte: %s", width, height, arena_size >> 10,
                   cudaGetErrorString (cudaGetLastError ()));
      clear_plan (be);
      return FALSE;
    }
  }
  return TRUE;
}

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
  for (int kind = 0; kind < N_FRAME_KINDS; kind++)
    slot->warm[kind] = FALSE;
}

void
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

gboolean
cuda_plan (HfamBackend *base, int width, int height, GError **error)
{
  CudaBackend *be = (CudaBackend *) base;
  const HfamGraph *g = base->graph;
  const size_t plane = (size_t) width * height * be->base.batch;
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
  if (be->frames_only)
    return plan_frames_only (be, width, height, error);
  if (!be->weights && !load_weights (be, error))
    return FALSE;
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
                   "slot (%d slots, batches of %d) or the pinned staging", width, height,
                   arena_size >> 20, be->depth, be->base.batch);
      clear_plan (be);
      return FALSE;
    }
    /* a batch of fewer frames runs the rest of the batch on what is there: zeros at first */
    memset (slot->host_in, 0, sizeof (float) * 3 * plane);
  }
  g_debug ("cuda backend: %dx%d: %zu MiB of activations per slot, %d slot(s), batches of %d",
           width, height, arena_size >> 20, be->depth, be->base.batch);

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
