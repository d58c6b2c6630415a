/* The CUDA backend's frames in device memory (backend.h's HfamDeviceOps): kernels/preprocess.cu
 * writes the frame straight into the network's input on the main stream, then a second graph
 * of the slot, captured without the upload and the download, runs the network. keep_matte
 * makes alpha_p the kept matte (copied, or blended into the one kept before: temporal
 * smoothing, as libhfam says), and kernels/matte.cu writes the outputs from the kept matte
 * (write_matte). Both run on one stream of the kept matte's own, after the frame, and each
 * call waits for it. The
 * preprocessing filters (frame size to inference size) are kept per slot, the kept matte's (to
 * the outputs' size) with it; each is rebuilt when a size changes.
 * In a batch group, a member's frames-only backend preprocesses its frames into inputs of its
 * own and keeps and writes their mattes as above, and the group's lane runs a batch of them
 * at once (cuda_queue_device_batch): each input copied in, each alpha_p copied back. */
#include "cuda-backend.h"

/* A resize filter from `in` to `out` samples in `f`, made again only when a size changed;
 * nothing may be using the old one. */
static gboolean
ensure_filter (HfamCudaFilter *f, int in, int out, const char *what, GError **error)
{
  if (f->start && f->in == in && f->out == out)
    return TRUE;
  hfam_cuda_filter_free (f);
  CUDA_TRY (hfam_cuda_filter_new (in, out, f), what);
  /* its upload went through the legacy default stream, which the backend's non-blocking
   * streams do not wait for */
  CUDA_TRY (cudaStreamSynchronize (cudaStreamLegacy), what);
  return TRUE;
}

/* Whether the device can read `p`: a kernel reading host memory would fault, and a fault
 * spoils the whole CUDA context, the caller's too. */
static gboolean
check_device_memory (const void *p, const char *what, int index, GError **error)
{
  struct cudaPointerAttributes attr;
  cudaError_t err = cudaPointerGetAttributes (&attr, p);

  if (err == cudaSuccess && attr.devicePointer)
    return TRUE;
  cudaGetLastError ();
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
               "cuda backend: %s %d (%p) is not memory the device can read%s%s", what, index, p,
               err != cudaSuccess ? ": " : " (host memory?)",
               err != cudaSuccess ? cudaGetErrorString (err) : "");
  return FALSE;
}

static gboolean
check_frame_memory (const HfamFrame *frame, GError **error)
{
  const int n_planes = frame->format == HFAM_FRAME_I420 ? 3 : frame->format == HFAM_FRAME_NV12 ? 2
                                                                                             : 1;
  for (int k = 0; k < n_planes; k++)
    if (!check_device_memory (frame->planes[k], "frame plane", k, error))
      return FALSE;
  return TRUE;
}

/* The frame into the slot's input tensor on the main stream, ahead of the frame's graph
 * (which cannot hold the frame's pointers: they change from frame to frame); a frames-only
 * backend records when that input is ready for its batch group's lane (cuda_slice). */
static gboolean
queue_preprocess (CudaBackend *be, Slot *slot, const HfamFrame *frame,
                  const HfamPreprocessParams *params, GError **error)
{
  HfamNhwc input = value_nhwc (be, slot, be->base.graph->input);

  CUDA_TRY (hfam_cuda_preprocess (frame, params, &slot->to_input[0], &slot->to_input[1], &input,
                                  slot->streams[MAIN_STREAM]), "preprocess");
  if (be->frames_only)
    CUDA_TRY (cudaEventRecord (slot->frame_done, slot->streams[MAIN_STREAM]), "preprocess");
  return TRUE;
}

static gboolean
cuda_queue_device_frame (HfamBackend *base, const HfamFrame *frame,
                         const HfamPreprocessParams *params, GError **error)
{
  CudaBackend *be = (CudaBackend *) base;
  Slot *slot;

  if (!check_planned (be, error) || !use_device (be, "device frame", error)
      || !(slot = free_head_slot (be, error)) || !check_frame_memory (frame, error))
    return FALSE;
  /* the slot's last frame is collected: nothing reads its filters any more */
  if (!ensure_filter (&slot->to_input[0], frame->width, be->width, "preprocess", error)
      || !ensure_filter (&slot->to_input[1], frame->height, be->height, "preprocess", error))
    return FALSE;
  /* (one model, one normalisation: what the motion's grey plane undoes) */
  be->grey_params = *params;
  /* a failure may leave work queued that reads the caller's frame: waited for */
  if (!queue_preprocess (be, slot, frame, params, error)
      || (!be->frames_only && !queue_whole_frame (be, slot, FRAME_DEVICE, error))) {
    drain_slot (be, slot);
    return FALSE;
  }
  finish_queueing (be, slot, FRAME_DEVICE);
  return TRUE;
}

/* The kept matte's stream: made when first needed (the caller's context is current then). */
static gboolean
ensure_matte_stream (CudaBackend *be, GError **error)
{
  if (!be->matte_stream)
    CUDA_TRY (cudaStreamCreateWithFlags (&be->matte_stream, cudaStreamNonBlocking),
              "matte stream");
  return TRUE;
}

/* A device buffer of at least `bytes`, made again only when it grows; nothing may be using the
 * old one (every call waits for the matte stream). */
static gboolean
ensure_device_buffer (void **buffer, size_t *have, size_t bytes, const char *what,
                      GError **error)
{
  if (*have >= bytes)
    return TRUE;
  cudaFree (*buffer);
  *buffer = NULL;
  *have = 0;
  CUDA_TRY (cudaMalloc (buffer, bytes), what);
  *have = bytes;
  return TRUE;
}

/* Queues the alpha_p of the frame in `slot` into the kept matte on the matte stream, after the
 * frame: blended when `blend` (a kept matte of the planned size exists), then the blend's
 * islands dropped, else copied, into an allocation of the planned size. */
static gboolean
keep_matte (CudaBackend *be, Slot *slot, const HfamBarParams *bars,
            const HfamIslandParams *islands, gboolean blend,
            float smoothing, const HfamMotionParams *motion, const HfamFlowParams *flow,
            GError **error)
{
  const size_t plane = (size_t) be->width * be->height;
  float *alpha = frame_alpha (be, slot);
  gboolean by_motion = blend && motion && be->kept_grey_valid;
  /* the held matte belongs to the kept matte's frame, which is now the one before */
  const gboolean held_before = be->held_current;

  CUDA_TRY (cudaStreamWaitEvent (be->matte_stream, slot->frame_done, 0), "kept matte");
  be->kept_grey_valid = FALSE;
  be->holds = motion && smoothing > 0.0f;
  be->still_valid = be->held_current = FALSE;
  if (motion || bars) {
    const HfamNhwc input = value_nhwc (be, slot, be->base.graph->input);
    if (be->grey_bytes < sizeof (float) * plane) {
      /* every call waited for the matte stream: nothing reads the old ones */
      cudaFree (be->grey[0]);
      cudaFree (be->grey[1]);
      be->grey[0] = be->grey[1] = NULL;
      be->grey_bytes = 0;
      by_motion = FALSE;
      CUDA_TRY (cudaMalloc ((void **) &be->grey[0], sizeof (float) * plane), "motion");
      CUDA_TRY (cudaMalloc ((void **) &be->grey[1], sizeof (float) * plane), "motion");
      be->grey_bytes = sizeof (float) * plane;
    }
    /* the frame's grey into grey[1]; grey[0] is the kept matte's frame's */
    CUDA_TRY (hfam_cuda_motion_grey (&input, &be->grey_params, be->grey[1], be->matte_stream),
              "motion");
  }
  be->kept_bars = FALSE;
  if (bars) {
    if (!ensure_device_buffer ((void **) &be->bars_found, &be->bars_found_bytes,
                               8 * sizeof (int), "letterbox", error))
      return FALSE;
    CUDA_TRY (hfam_cuda_matte_clear_bars (alpha, be->grey[1], be->width, be->height, bars,
                                          be->bars_found, be->matte_stream),
              "letterbox");
    be->kept_bars = TRUE;
    be->bar_params = *bars;
  }
  if (islands) {
    if (!ensure_device_buffer (&be->islands_scratch, &be->islands_scratch_bytes,
                               hfam_islands_scratch_bytes (be->width, be->height), "islands",
                               error))
      return FALSE;
    CUDA_TRY (hfam_cuda_matte_drop_islands (alpha, be->width, be->height, islands,
                                            be->islands_scratch, be->matte_stream),
              "islands");
  }
  /* how far compensation moved each pixel: the flow scratch's first plane */
  const float *moved = NULL;
  if (by_motion && flow) {
    const size_t floats = plane + hfam_compensate_scratch_floats (be->width, be->height, flow);
    if (!ensure_device_buffer ((void **) &be->flow_scratch, &be->flow_scratch_bytes,
                               sizeof (float) * floats, "motion compensation", error))
      return FALSE;
    CUDA_TRY (hfam_cuda_motion_compensate (be->kept, be->grey[0], be->grey[1], be->width,
                                           be->height, flow, be->flow_scratch,
                                           be->flow_scratch + plane, be->matte_stream),
              "motion compensation");
    moved = be->flow_scratch;
  }
  if (by_motion) {
    if (!ensure_device_buffer ((void **) &be->still, &be->still_bytes, sizeof (float) * plane,
                               "temporal smoothing", error))
      return FALSE;
    CUDA_TRY (hfam_cuda_matte_blend_motion (be->kept, alpha, be->grey[1], be->grey[0], moved,
                                            be->width, be->height, motion, be->still,
                                            be->matte_stream),
              "temporal smoothing");
    be->still_valid = held_before;
  } else if (blend)
    CUDA_TRY (hfam_cuda_matte_blend (be->kept, alpha, plane, smoothing, be->matte_stream),
              "temporal smoothing");
  if (motion) {
    float *grey = be->grey[0];
    be->grey[0] = be->grey[1];
    be->grey[1] = grey;
    be->kept_grey_valid = TRUE;
  }
  if (blend) {
    /* as on the host (kept.c): a held region the network has dropped goes once it is an
     * island of the blend */
    if (islands)
      CUDA_TRY (hfam_cuda_matte_drop_islands (be->kept, be->width, be->height, islands,
                                              be->islands_scratch, be->matte_stream),
                "islands");
    return TRUE;
  }
  if (be->kept_width != be->width || be->kept_height != be->height) {
    /* every call waited for the matte stream: nothing reads the old one */
    cudaFree (be->kept);
    be->kept = NULL;
    be->kept_width = be->kept_height = 0;
    CUDA_TRY (cudaMalloc ((void **) &be->kept, sizeof (float) * plane), "kept matte");
    be->kept_width = be->width;
    be->kept_height = be->height;
  }
  CUDA_TRY (cudaMemcpyAsync (be->kept, alpha, sizeof (float) * plane, cudaMemcpyDeviceToDevice,
                             be->matte_stream), "kept matte");
  return TRUE;
}

/* The kept matte at the outputs' size w x h into be->edge_matte, as resize_host_matte makes
 * it on the host (frames.c): refined when asked, else resized; then the key levels. */
static gboolean
make_edge_matte (CudaBackend *be, const HfamFrame *frame, const HfamYuvToRgb *yuv, int w,
                 int h, const HfamDeviceEdges *edges, GError **error)
{
  const HfamKeyLevels *levels = &edges->levels;
  const gboolean keyed = levels->black != 0.0f || levels->white != 1.0f;
  const HfamRefineParams rp = edges->refine_params;
  const HfamRefineParams *planned = &be->refine_params;

  if (!ensure_device_buffer ((void **) &be->edge_matte, &be->edge_matte_bytes,
                             sizeof (float) * (size_t) w * h, "edge matte", error))
    return FALSE;
  if (!edges->refine) {
    if (!ensure_filter (&be->kept_to_frame[0], be->kept_width, w, "matte", error)
        || !ensure_filter (&be->kept_to_frame[1], be->kept_height, h, "matte", error))
      return FALSE;
    CUDA_TRY (hfam_cuda_matte_resize (be->kept, be->kept_width, be->kept_height,
                                      &be->kept_to_frame[0], &be->kept_to_frame[1],
                                      keyed ? levels : NULL, be->edge_matte, w,
                                      be->matte_stream), "matte");
    return TRUE;
  }
  if (!planned->radius || planned->radius != rp.radius || planned->eps != rp.eps
      || planned->colour != rp.colour || planned->stats_width != rp.stats_width
      || planned->stats_height != rp.stats_height
      || be->refine_plan.aw != be->kept_width || be->refine_plan.ah != be->kept_height
      || be->refine_plan.fw != w || be->refine_plan.fh != h) {
    if (planned->radius)
      hfam_cuda_refine_plan_free (&be->refine_plan);
    be->refine_params.radius = 0;
    CUDA_TRY (hfam_cuda_refine_plan_new (&be->refine_plan, be->kept_width, be->kept_height, w, h,
                                         &rp), "refine");
    be->refine_params = rp;
    /* its filters' uploads went through the legacy default stream (as ensure_filter's) */
    CUDA_TRY (cudaStreamSynchronize (cudaStreamLegacy), "refine");
  }
  if (edges->collected && be->holds) {
    /* held only over a matte refined for the frame before, at this size */
    const gboolean continues = be->still_valid && be->held_width == w && be->held_height == h;
    if (!ensure_device_buffer ((void **) &be->held, &be->held_bytes,
                               sizeof (float) * (size_t) w * h, "refine", error))
      return FALSE;
    const HfamRefineHold hold = { continues ? be->still : NULL, be->held, w };
    CUDA_TRY (hfam_cuda_refine_held (&be->refine_plan, be->kept, frame, yuv, &rp,
                                     keyed ? levels : NULL, &hold, be->edge_matte, w,
                                     be->matte_stream), "refine");
    be->held_current = TRUE;
    be->held_width = w;
    be->held_height = h;
    return TRUE;
  }
  CUDA_TRY (hfam_cuda_refine (&be->refine_plan, be->kept, frame, yuv, &rp,
                              keyed ? levels : NULL, be->edge_matte, w, be->matte_stream),
            "refine");
  return TRUE;
}

/* The outputs from be->edge_matte: the keys and the frame's fill through hfam_cuda_matte
 * (identity filters), the foreground's fill through hfam_cuda_foreground. */
static gboolean
write_edge_outputs (CudaBackend *be, const HfamFrame *frame, const HfamYuvToRgb *yuv,
                    const HfamMatteImage *outputs, int n_outputs, const HfamDeviceEdges *edges,
                    GError **error)
{
  const int w = outputs[0].width, h = outputs[0].height;
  const HfamForegroundParams *fp = &edges->foreground_params;

  if (!ensure_filter (&be->edge_identity[0], w, w, "matte", error)
      || !ensure_filter (&be->edge_identity[1], h, h, "matte", error))
    return FALSE;
  for (int i = 0; i < n_outputs; i++) {
    cudaError_t err;
    if (outputs[i].format >= HFAM_MATTE_RGBA && edges->foreground) {
      const size_t bytes = hfam_cuda_foreground_workspace_bytes (w, h, fp);
      if (!ensure_device_buffer (&be->foreground_workspace, &be->foreground_workspace_bytes,
                                 bytes, "foreground", error))
        return FALSE;
      err = hfam_cuda_foreground (frame, yuv, be->edge_matte, w, fp, &outputs[i],
                                  be->foreground_workspace, bytes, be->matte_stream);
    } else {
      err = hfam_cuda_matte (be->edge_matte, w, h, &be->edge_identity[0],
                             &be->edge_identity[1], frame, yuv, &outputs[i], be->matte_stream);
    }
    if (err != cudaSuccess) {
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                   "cuda backend: output %d (%dx%d, matte format %d): %s failed: %s", i,
                   outputs[i].width, outputs[i].height, outputs[i].format,
                   edges->foreground ? "the foreground" : "hfam_cuda_matte",
                   cudaGetErrorString (err));
      return FALSE;
    }
  }
  return TRUE;
}

/* Queues the frame's black bars (w x h) on the matte stream into the second half of
 * bars_found: those cleared from the kept matte, widened over `frame`'s own where it is
 * given. */
static gboolean
find_frame_bars (CudaBackend *be, const HfamFrame *frame, const HfamYuvToRgb *yuv, int w,
                 int h, GError **error)
{
  CUDA_TRY (hfam_cuda_frame_find_bars (frame, yuv, be->bars_found, be->kept_width,
                                       be->kept_height, w, h, &be->bar_params,
                                       be->bars_found + 4, be->matte_stream),
            "letterbox");
  return TRUE;
}

/* The edge matte (w x h) cleared over the frame's bars, after find_frame_bars. */
static gboolean
clear_edge_matte_bars (CudaBackend *be, int w, int h, GError **error)
{
  CUDA_TRY (hfam_cuda_plane_zero_bars (be->edge_matte, w, h, be->bars_found + 4,
                                       be->matte_stream),
            "letterbox");
  return TRUE;
}

/* The outputs written from the kept matte as it is, cleared over the frame's bars after
 * find_frame_bars. */
static gboolean
clear_output_bars (CudaBackend *be, const HfamMatteImage *outputs, int n_outputs,
                   GError **error)
{
  for (int i = 0; i < n_outputs; i++)
    CUDA_TRY (hfam_cuda_matte_image_clear_bars (&outputs[i], be->bars_found + 4,
                                                be->matte_stream),
              "letterbox");
  return TRUE;
}

/* Queues the kept matte into the outputs on the matte stream, the colour formats with
 * `frame`'s colours. */
static gboolean
write_kept (CudaBackend *be, const HfamFrame *frame, const HfamYuvToRgb *yuv,
            const HfamMatteImage *outputs, int n_outputs, const HfamDeviceEdges *edges,
            GError **error)
{
  /* hfam_cuda_matte asks for a matrix even where the frame is RGB and it is not read */
  static const HfamYuvToRgb unused_yuv;
  const HfamYuvToRgb *matrix = yuv ? yuv : &unused_yuv;
  const gboolean plain = !edges->refine && !edges->foreground && edges->levels.black == 0.0f
                         && edges->levels.white == 1.0f;
  gboolean colour = FALSE;

  if (n_outputs == 0)
    return TRUE;
  const int w = outputs[0].width, h = outputs[0].height;
  for (int i = 0; i < n_outputs; i++) {
    if (!check_device_memory (outputs[i].data, "output", i, error))
      return FALSE;
    colour |= outputs[i].format >= HFAM_MATTE_RGBA;
  }
  if (!frame && edges->refine) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "refine: guided refinement reads the frame: pass it with the outputs");
    return FALSE;
  }
  /* (the bars at the outputs' size widen over the frame's own where it is given) */
  if ((colour || edges->refine || (frame && be->kept_bars))
      && !check_frame_memory (frame, error))
    return FALSE;
  /* the edge matte is cleared over the frame's bars before the outputs are made from it, as
   * the host clears its resized matte: the foreground's colours are estimated from it */
  if (!plain)
    return make_edge_matte (be, frame, matrix, w, h, edges, error)
           && (!be->kept_bars
               || (find_frame_bars (be, frame, matrix, w, h, error)
                   && clear_edge_matte_bars (be, w, h, error)))
           && write_edge_outputs (be, frame, matrix, outputs, n_outputs, edges, error);
  if (!ensure_filter (&be->kept_to_frame[0], be->kept_width, w, "matte", error)
      || !ensure_filter (&be->kept_to_frame[1], be->kept_height, h, "matte", error))
    return FALSE;
  for (int i = 0; i < n_outputs; i++) {
    const cudaError_t err = hfam_cuda_matte (be->kept, be->kept_width, be->kept_height,
                                             &be->kept_to_frame[0], &be->kept_to_frame[1],
                                             frame, matrix, &outputs[i], be->matte_stream);
    if (err != cudaSuccess) {
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                   "cuda backend: output %d (%dx%d, matte format %d): hfam_cuda_matte failed: "
                   "%s", i, outputs[i].width, outputs[i].height, outputs[i].format,
                   cudaGetErrorString (err));
      return FALSE;
    }
  }
  return !be->kept_bars
         || (find_frame_bars (be, frame, matrix, w, h, error)
             && clear_output_bars (be, outputs, n_outputs, error));
}

/* Waits for everything queued on the matte stream, after a failure too (nothing may still
 * write the kept matte or the outputs when the call returns); `ok`: how it went so far. */
static gboolean
finish_matte (CudaBackend *be, gboolean ok, const char *what, GError **error)
{
  const cudaError_t err = cudaStreamSynchronize (be->matte_stream);

  if (err != cudaSuccess && ok) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "cuda backend: %s failed: %s", what,
                 cudaGetErrorString (err));
    return FALSE;
  }
  return ok;
}

static gboolean
cuda_keep_matte (HfamBackend *base, const HfamBarParams *bars, const HfamIslandParams *islands,
                 gboolean blend,
                 float smoothing, const HfamMotionParams *motion, const HfamFlowParams *flow,
                 GError **error)
{
  CudaBackend *be = (CudaBackend *) base;
  Slot *slot;

  /* blended into or replaced, the matte kept so far is gone; a failure leaves none */
  be->have_kept = FALSE;
  if (!(slot = take_oldest_frame (be, FRAME_DEVICE, error)))
    return FALSE;
  if (!use_device (be, "matte", error) || !ensure_matte_stream (be, error)) {
    drop_frame (slot);
    return FALSE;
  }
  /* the matte stream waits for the frame (unless queueing that failed: a dropped frame may
   * run on), so the slot is idle once it is done */
  be->have_kept = finish_matte (be, keep_matte (be, slot, bars, islands,
                                                blend && be->kept_width == be->width
                                                  && be->kept_height == be->height,
                                                smoothing, motion, flow, error),
                                "frame", error);
  return be->have_kept;
}

static gboolean
cuda_write_matte (HfamBackend *base, const HfamFrame *frame, const HfamYuvToRgb *yuv,
                  const HfamMatteImage *outputs, int n_outputs, const HfamDeviceEdges *edges,
                  GError **error)
{
  CudaBackend *be = (CudaBackend *) base;

  if (!use_device (be, "kept matte", error))
    return FALSE;
  if (!be->have_kept) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "cuda backend: no matte is kept: collect a device frame first");
    return FALSE;
  }
  /* the kept matte into the outputs, cleared over the frame's black bars where the kept
   * matte's were cleared */
  if (finish_matte (be, write_kept (be, frame, yuv, outputs, n_outputs, edges, error), "matte",
                    error))
    return TRUE;
  /* the held refinement was queued, not necessarily written: the next frame must not hold
   * over it (the host path marks it so when its refinement fails) */
  be->held_current = FALSE;
  return FALSE;
}

/* Queues the kept matte's move to `frame`'s picture on the matte stream: `frame` into
 * follow_input at the kept size, its grey plane into grey[1], the compensation of the kept
 * matte and grey[0] against it; then grey[1] is the kept one. */
static gboolean
follow_kept (CudaBackend *be, const HfamFrame *frame, const HfamPreprocessParams *params,
             const HfamFlowParams *flow, GError **error)
{
  const int w = be->kept_width, h = be->kept_height;
  const size_t plane = (size_t) w * h;
  const HfamNhwc input = { be->follow_input, w, h, 3, 3, HFAM_CUDA_F32 };
  float *grey;

  CUDA_TRY (hfam_cuda_preprocess (frame, params, &be->follow_to_kept[0], &be->follow_to_kept[1],
                                  &input, be->matte_stream), "follow");
  CUDA_TRY (hfam_cuda_motion_grey (&input, params, be->grey[1], be->matte_stream), "follow");
  CUDA_TRY (hfam_cuda_motion_compensate (be->kept, be->grey[0], be->grey[1], w, h, flow,
                                         NULL, be->flow_scratch + plane, be->matte_stream),
            "follow");
  grey = be->grey[0];
  be->grey[0] = be->grey[1];
  be->grey[1] = grey;
  return TRUE;
}

static gboolean
cuda_follow (HfamBackend *base, const HfamFrame *frame, const HfamPreprocessParams *params,
             const HfamFlowParams *flow, GError **error)
{
  CudaBackend *be = (CudaBackend *) base;
  const int w = be->kept_width, h = be->kept_height;
  const size_t plane = (size_t) w * h;
  const size_t scratch = plane + hfam_compensate_scratch_floats (w, h, flow);

  if (!use_device (be, "follow", error) || !check_frame_memory (frame, error))
    return FALSE;
  if (!be->have_kept || !be->kept_grey_valid)
    return TRUE;
  /* every call waited for the matte stream: nothing reads the old buffers and filters */
  if (!ensure_matte_stream (be, error)
      || !ensure_filter (&be->follow_to_kept[0], frame->width, w, "follow", error)
      || !ensure_filter (&be->follow_to_kept[1], frame->height, h, "follow", error)
      || !ensure_device_buffer ((void **) &be->follow_input, &be->follow_input_bytes,
                                sizeof (float) * 3 * plane, "follow", error)
      || !ensure_device_buffer ((void **) &be->flow_scratch, &be->flow_scratch_bytes,
                                sizeof (float) * scratch, "follow", error))
    return FALSE;
  /* a kernel that failed may have moved the kept matte in part: it is dropped */
  be->have_kept = finish_matte (be, follow_kept (be, frame, params, flow, error), "follow",
                                error);
  /* as on the host (frames.c): the held detail stays where the matte was */
  be->held_current = FALSE;
  return be->have_kept;
}

/* A frames-only backend's frame queued last, for its batch group's lane. */
static void
cuda_slice (HfamBackend *base, HfamDeviceSlice *slice)
{
  CudaBackend *be = (CudaBackend *) base;
  const Slot *slot = &be->slots[(be->head + be->depth - 1) % be->depth];
  const int input = be->base.graph->input;

  g_return_if_fail (be->frames_only && slot->queued);
  *slice = (HfamDeviceSlice) {
    .input = value_nhwc (be, slot, input).data,
    .input_bytes = be->steps[input].bytes,
    .ready = slot->frame_done,
    .alpha = frame_alpha (be, slot),
  };
}

static void
cuda_drop_frame (HfamBackend *base)
{
  CudaBackend *be = (CudaBackend *) base;
  g_autoptr (GError) error = NULL;
  Slot *slot;

  be->have_kept = FALSE;
  if ((slot = take_oldest_frame (be, FRAME_DEVICE, &error)))
    drop_frame (slot);
  else
    g_debug ("cuda backend: drop_frame: %s", error->message);
}

const HfamDeviceOps cuda_device_ops = {
  .queue_frame = cuda_queue_device_frame,
  .keep_matte = cuda_keep_matte,
  .write_matte = cuda_write_matte,
  .follow = cuda_follow,
  .slice = cuda_slice,
  .drop_frame = cuda_drop_frame,
};

/* The batch's inputs copied from the slices into the head slot (on its main stream, each once
 * its member's preprocessing is done), the network queued on them, and each alpha_p copied
 * out to its slice; the last `batch - n` frames run on what their inputs held before. */
static gboolean
queue_slices (CudaBackend *be, Slot *slot, const HfamDeviceSlice *slices, int n,
              GError **error)
{
  const HfamGraph *g = be->base.graph;
  const cudaStream_t main = slot->streams[MAIN_STREAM];
  const size_t plane = (size_t) be->width * be->height;

  for (int k = 0; k < n; k++) {
    CUDA_TRY (cudaStreamWaitEvent (main, (cudaEvent_t) slices[k].ready, 0), "batch input");
    CUDA_TRY (cudaMemcpyAsync (value_nhwc_at (be, slot, g->input, k).data, slices[k].input,
                               slices[k].input_bytes, cudaMemcpyDeviceToDevice, main),
              "batch input");
  }
  if (!queue_whole_frame (be, slot, FRAME_DEVICE, error))
    return FALSE;
  for (int k = 0; k < n; k++)
    CUDA_TRY (cudaMemcpyAsync (slices[k].alpha, value_planar_at (be, slot, g->fusion, k) + plane,
                               sizeof (float) * plane, cudaMemcpyDeviceToDevice, main),
              "batch alpha");
  CUDA_TRY (cudaEventRecord (slot->frame_done, main), "batch");
  return TRUE;
}

gboolean
cuda_queue_device_batch (HfamBackend *base, const HfamDeviceSlice *slices, int n,
                         GError **error)
{
  CudaBackend *be = (CudaBackend *) base;
  Slot *slot;

  if (n < 1 || n > be->base.batch) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "cuda backend: a batch of %d device frames; this backend runs 1 to %d", n,
                 be->base.batch);
    return FALSE;
  }
  if (!check_planned (be, error) || !use_device (be, "device batch", error)
      || !(slot = free_head_slot (be, error)))
    return FALSE;
  for (int k = 0; k < n; k++)
    if (slices[k].input_bytes != be->steps[be->base.graph->input].bytes) {
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                   "cuda backend: device frame %d of the batch has an input of %zu bytes, the "
                   "batch's %dx%d input %zu: another size or precision", k,
                   slices[k].input_bytes, be->width, be->height,
                   be->steps[be->base.graph->input].bytes);
      return FALSE;
    }
  if (!queue_slices (be, slot, slices, n, error)) {
    drain_slot (be, slot);
    return FALSE;
  }
  finish_queueing (be, slot, FRAME_DEVICE);
  slot->n_frames = n;
  return TRUE;
}
