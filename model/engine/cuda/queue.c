/* A frame's work on the CUDA backend: its nodes, stage by stage, on the streams of the graph's
 * lanes.
 * - Streams: one per lane of the graph (graph.h, graph.c), ordered by the graph's cross-lane
 *   waits (an event after each node another lane waits for), so that MFEM at f2 and f3 and
 *   L-BB run while the encoder goes on, the encoder's projection shortcuts beside the first
 *   block's other convolutions, each MFEM's dilated branches beside one another, and P3..P0
 *   and the detail decoder's first block beside the semantic decoder. Lane 0, the critical
 *   path, is the main stream: a frame's other lanes start from it and join it at the end.
 * - The per-frame work (input upload, every stage, alpha download) is captured once per slot
 *   into a CUDA graph and replayed; if capture fails the backend queues kernels instead.
 * - A batch runs each convolution once for all its frames, and the other nodes frame by
 *   frame (run_node). */
#include "cuda-backend.h"

/* Node `id` on frame `frame` of the batch: every operation but the convolutions, which
 * run_node queues for the batch at once. */
static gboolean
run_op (CudaBackend *be, Slot *slot, int id, int frame, GError **error)
{
  const HfamGraph *g = be->base.graph;
  const HfamNode *n = &g->nodes[id];
  const Step *s = &be->steps[id];
  const cudaStream_t st = slot->streams[node_stream (be, id)];
  HfamNhwc src = { 0 }, dst = { 0 };

  if (n->n_inputs && !is_planar (&g->nodes[n->inputs[0]]))
    src = value_nhwc_at (be, slot, n->inputs[0], frame);
  if (!is_planar (n))
    dst = value_nhwc_at (be, slot, id, frame);

  switch (n->op) {
  case HFAM_OP_INPUT:
    return TRUE;  /* converted when the frame starts */
  case HFAM_OP_CONV:
  case HFAM_OP_SK_PROJECT:
    break;  /* run_node queues the convolutions */
  case HFAM_OP_MAXPOOL:
    CUDA_TRY (hfam_cuda_maxpool (&src, &dst, st), n->name);
    return TRUE;
  case HFAM_OP_AVGPOOL:
    CUDA_TRY (hfam_cuda_avgpool (&src, n->factor, &dst, st), n->name);
    return TRUE;
  case HFAM_OP_GLOBAL_POOL:
    CUDA_TRY (hfam_cuda_global_pool (&src, &dst, st), n->name);
    return TRUE;
  case HFAM_OP_RESIZE:
    CUDA_TRY (hfam_cuda_resize (&src, &dst, st), n->name);
    return TRUE;
  case HFAM_OP_CONCAT: {
    int c0 = 0;
    for (int k = 0; k < n->n_inputs; k++) {
      const HfamNhwc in = value_nhwc_at (be, slot, n->inputs[k], frame);
      const HfamNhwc slice = hfam_nhwc_slice (dst, c0, in.c);
      if (!s->in_place[k])
        CUDA_TRY (hfam_cuda_copy (&in, &slice, st), n->name);
      c0 += in.c;
    }
    /* padding channels past c0 (fp16) were zeroed at plan, and nothing writes them */
    return TRUE;
  }
  case HFAM_OP_SEMANTIC_HEAD:
    CUDA_TRY (hfam_cuda_semantic_head (&src, s->w, s->h, value_planar_at (be, slot, id, frame),
                                       st), n->name);
    return TRUE;
  case HFAM_OP_ATTENTION:
    CUDA_TRY (hfam_cuda_attention_map (value_planar_at (be, slot, n->inputs[0], frame),
                                       s->w * s->h, s->att_w, s->att_b,
                                       value_planar_at (be, slot, id, frame), st), n->name);
    return TRUE;
  case HFAM_OP_POOL_MAP: {
    const Step *in = &be->steps[n->inputs[0]];
    CUDA_TRY (hfam_cuda_pool_plane (value_planar_at (be, slot, n->inputs[0], frame), in->w,
                                    in->h, n->factor, value_planar_at (be, slot, id, frame),
                                    st), n->name);
    return TRUE;
  }
  case HFAM_OP_SCALE_BY_MAP:
    CUDA_TRY (hfam_cuda_scale_by_map (&src, value_planar_at (be, slot, n->inputs[1], frame),
                                      &dst, st), n->name);
    return TRUE;
  case HFAM_OP_FUSION: {
    float *out = value_planar_at (be, slot, id, frame);
    CUDA_TRY (hfam_cuda_fusion (&src, value_planar_at (be, slot, n->inputs[1], frame), s->w,
                                s->h, out, out + (size_t) s->w * s->h, st), n->name);
    return TRUE;
  }
  }
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
               "cuda backend: %s: not an operation of run_op", n->name);
  return FALSE;
}

/* Node `id` for every frame of the batch: a convolution in one call, an SK projection one
 * frame at a time with the frame's own weights, the other operations one launch a frame (they
 * are a small part of the time, and each kernel stays the one its CPU twin checks). */
static gboolean
run_node (CudaBackend *be, Slot *slot, int id, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  const Step *s = &be->steps[id];
  const int stream = node_stream (be, id);

  if (n->op == HFAM_OP_CONV)
    return run_conv (be, slot, id, stream, 0, error);
  for (int frame = 0; frame < be->base.batch; frame++) {
    if (n->op == HFAM_OP_SK_PROJECT) {
      const HfamNhwc gap = value_nhwc_at (be, slot, n->sk.gap_branches, frame);
      const HfamNhwc pooled = value_nhwc_at (be, slot, n->sk.pooled_branch, frame);
      const size_t sk = frame * s->sk_stride;
      CUDA_TRY (hfam_cuda_sk_fold (&s->sk, gap.data, pooled.data, be->dtype,
                                   (float *) (slot->arena + s->sk_scratch_offset + sk),
                                   slot->arena + s->sk_weight_offset + sk,
                                   be->steps[n->inputs[0]].cs,
                                   slot->arena + s->sk_bias_offset + sk,
                                   slot->streams[stream]), n->name);
      if (!run_conv (be, slot, id, stream, frame, error))
        return FALSE;
    } else if (!run_op (be, slot, id, frame, error)) {
      return FALSE;
    }
  }
  return TRUE;
}

/* HFAM_CUDA_PROFILE: a host function that holds a stream until the host opens the gate. */
typedef struct {
  GMutex lock;
  GCond cond;
  gboolean open;
} Gate;

static void CUDART_CB
gate_wait (void *data)
{
  Gate *gate = data;
  g_mutex_lock (&gate->lock);
  while (!gate->open)
    g_cond_wait (&gate->cond, &gate->lock);
  g_mutex_unlock (&gate->lock);
}

static void
gate_open (Gate *gate)
{
  g_mutex_lock (&gate->lock);
  gate->open = TRUE;
  g_cond_signal (&gate->cond);
  g_mutex_unlock (&gate->lock);
}

/* Queues one stage of the frame in `slot`, each node on its lane's stream after the waits the
 * graph's lane order asks for. For a host frame the first stage uploads and converts the input
 * (then the other lanes start from the main stream) and the last one downloads alpha_p, once
 * every lane has joined the main stream (recording frame_done there unless the work is being
 * captured). */
static gboolean
queue_stage_work (CudaBackend *be, Slot *slot, HfamStage stage, FrameKind kind,
                  gboolean capturing, GError **error)
{
  const HfamGraph *g = be->base.graph;
  const cudaStream_t main = slot->streams[MAIN_STREAM];
  const char *name = be->stage_name (stage);
  const size_t plane = (size_t) be->width * be->height;

  if (stage == 0) {
    if (kind == FRAME_HOST) {
      float *dev_in = (float *) (slot->arena + slot->dev_in_offset);
      CUDA_TRY (cudaMemcpyAsync (dev_in, slot->host_in, sizeof (float) * 3 * plane * be->base.batch,
                                 cudaMemcpyHostToDevice, main), "input");
      for (int frame = 0; frame < be->base.batch; frame++) {
        const HfamNhwc in = value_nhwc_at (be, slot, g->input, frame);
        CUDA_TRY (hfam_cuda_from_planar (dev_in + 3 * plane * frame, &in, main), "input");
      }
    }
    /* (in a capture this is what brings the other streams into the graph) */
    CUDA_TRY (cudaEventRecord (slot->frame_start, main), name);
    for (int k = 1; k < be->n_streams; k++)
      CUDA_TRY (cudaStreamWaitEvent (slot->streams[k], slot->frame_start, 0), name);
  }
  for (int i = 0; i < g->n_nodes; i++) {
    const int stream = node_stream (be, i);
    const cudaStream_t st = slot->streams[stream];
    if (g->nodes[i].stage != stage)
      continue;
    for (int m = 0; m < HFAM_N_LANES && be->n_streams > 1; m++) {
      const int j = g->lane_waits[(size_t) i * HFAM_N_LANES + m];
      if (j >= 0)
        CUDA_TRY (cudaStreamWaitEvent (st, slot->node_done[j], 0), g->nodes[i].name);
    }
    if (be->node_ms)
      CUDA_TRY (cudaEventRecord (be->node_events[2 * i], st), g->nodes[i].name);
    if (!run_node (be, slot, i, error))
      return FALSE;
    if (be->node_ms)
      CUDA_TRY (cudaEventRecord (be->node_events[2 * i + 1], st), g->nodes[i].name);
    if (be->n_streams > 1 && g->lane_signals[i])
      CUDA_TRY (cudaEventRecord (slot->node_done[i], st), g->nodes[i].name);
    if (be->debug_sync) {
      CUDA_TRY (cudaStreamSynchronize (st), g->nodes[i].name);
      CUDA_TRY (cudaGetLastError (), g->nodes[i].name);
    }
  }
  if (stage == HFAM_N_STAGES - 1) {
    for (int k = 1; k < be->n_streams; k++) {
      CUDA_TRY (cudaEventRecord (slot->lane_done[k], slot->streams[k]), name);
      CUDA_TRY (cudaStreamWaitEvent (main, slot->lane_done[k], 0), name);
    }
    for (int frame = 0; frame < be->base.batch && kind == FRAME_HOST; frame++) {
      const float *fusion = value_planar_at (be, slot, g->fusion, frame);
      CUDA_TRY (cudaMemcpyAsync (slot->host_alpha + plane * frame, fusion + plane,
                                 sizeof (float) * plane, cudaMemcpyDeviceToHost, main),
                "alpha");
    }
    if (!capturing)
      CUDA_TRY (cudaEventRecord (slot->frame_done, main), name);
  }
  return TRUE;
}

/* queue_stage_work; with HFAM_CUDA_PROFILE (one stream), once the slot is warm, behind a gate
 * (opened once the whole stage is queued, whatever happened), then waits for it and adds up the
 * time of each node. The last stage of an uncaptured frame makes the slot warm: the first one
 * runs ungated, since loading a kernel lazily may wait for the stream that the gate holds. */
gboolean
queue_stage (CudaBackend *be, Slot *slot, HfamStage stage, FrameKind kind, gboolean capturing,
             GError **error)
{
  const HfamGraph *g = be->base.graph;
  const char *name = be->stage_name (stage);
  Gate gate = { .open = FALSE };
  gboolean ok;

  if (!be->node_ms || !slot->warm[kind]) {
    ok = queue_stage_work (be, slot, stage, kind, capturing, error);
    if (ok && !capturing && stage == HFAM_N_STAGES - 1)
      slot->warm[kind] = TRUE;
    return ok;
  }
  g_mutex_init (&gate.lock);
  g_cond_init (&gate.cond);
  if (cudaLaunchHostFunc (slot->streams[MAIN_STREAM], gate_wait, &gate) != cudaSuccess)
    gate.open = TRUE;  /* nothing waits on it */
  ok = queue_stage_work (be, slot, stage, kind, capturing, error);
  gate_open (&gate);
  if (cudaStreamSynchronize (slot->streams[MAIN_STREAM]) != cudaSuccess && ok) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "cuda backend: %s: %s", name,
                 cudaGetErrorString (cudaGetLastError ()));
    ok = FALSE;
  }
  g_mutex_clear (&gate.lock);
  g_cond_clear (&gate.cond);
  for (int i = 0; i < g->n_nodes && ok; i++) {
    float ms;
    if (g->nodes[i].stage != stage)
      continue;
    CUDA_TRY (cudaEventElapsedTime (&ms, be->node_events[2 * i], be->node_events[2 * i + 1]),
              g->nodes[i].name);
    be->node_ms[i] += ms;
  }
  if (ok && stage == HFAM_N_STAGES - 1)
    be->profiled_frames++;
  return ok;
}

/* Ends a capture that went wrong and leaves every stream of the slot usable. */
static void
abandon_capture (const CudaBackend *be, Slot *slot)
{
  cudaGraph_t graph = NULL;
  enum cudaStreamCaptureStatus status;

  cudaStreamEndCapture (slot->streams[MAIN_STREAM], &graph);
  if (graph)
    cudaGraphDestroy (graph);
  for (int k = 0; k < be->n_streams; k++)
    if (cudaStreamIsCapturing (slot->streams[k], &status) == cudaSuccess
        && status != cudaStreamCaptureStatusNone) {
      graph = NULL;
      cudaStreamEndCapture (slot->streams[k], &graph);
      if (graph)
        cudaGraphDestroy (graph);
    }
  cudaGetLastError ();
}

/* Captures the whole frame of `slot` for a frame of `kind` into a graph; FALSE (no error set)
 * if capture does not work here, with the streams left usable. */
static gboolean
capture_frame (CudaBackend *be, Slot *slot, FrameKind kind)
{
  g_autoptr (GError) error = NULL;
  cudaGraph_t graph = NULL;
  cudaError_t err;

  if (cudaStreamBeginCapture (slot->streams[MAIN_STREAM], cudaStreamCaptureModeThreadLocal)
      != cudaSuccess) {
    cudaGetLastError ();
    return FALSE;
  }
  for (int stage = 0; stage < HFAM_N_STAGES; stage++)
    if (!queue_stage (be, slot, stage, kind, TRUE, &error)) {
      g_debug ("cuda backend: capture failed (%s); queueing kernels instead", error->message);
      abandon_capture (be, slot);
      return FALSE;
    }
  err = cudaStreamEndCapture (slot->streams[MAIN_STREAM], &graph);
  if (err == cudaSuccess && graph)
    err = cudaGraphInstantiate (&slot->graphs[kind], graph, 0);
  if (graph)
    cudaGraphDestroy (graph);
  if (err != cudaSuccess) {
    g_debug ("cuda backend: capture failed (%s); queueing kernels instead",
             cudaGetErrorString (err));
    slot->graphs[kind] = NULL;
    abandon_capture (be, slot);
    return FALSE;
  }
  return TRUE;
}

/* Queues the whole frame of `slot`: a host frame's input is in host_in already, a device
 * frame's preprocessing queued on the main stream. */
gboolean
queue_whole_frame (CudaBackend *be, Slot *slot, FrameKind kind, GError **error)
{
  /* A slot's first frame after a plan runs uncaptured: the first use of its cuDNN handles and
   * of lazily loaded kernels may do what a capture does not allow. */
  if (be->graphs && slot->warm[kind] && !slot->graphs[kind]
      && !capture_frame (be, slot, kind)) {
    g_message ("cuda backend: CUDA graph capture failed (G_MESSAGES_DEBUG=all says why); "
               "queueing kernels from now on, which is slower");
    be->graphs = FALSE;
  }
  if (be->graphs && slot->warm[kind]) {
    CUDA_TRY (cudaGraphLaunch (slot->graphs[kind], slot->streams[MAIN_STREAM]), "frame");
    CUDA_TRY (cudaEventRecord (slot->frame_done, slot->streams[MAIN_STREAM]), "frame");
    return TRUE;
  }
  for (int stage = 0; stage < HFAM_N_STAGES; stage++)
    if (!queue_stage (be, slot, stage, kind, FALSE, error))
      return FALSE;
  return TRUE;
}
