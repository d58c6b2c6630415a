/* Batch groups (batch.h): backends and threads shared by the frames of several contexts.
 * The runner forms the batches: a batch starts with the oldest frame queued and takes the
 * frames of its inference size queued behind it, up to max_batch. Before it goes, the runner
 * waits for more while fewer than max_batch are queued and some member has none queued, but
 * never longer than the time-out after the first one was queued: a member alone in its group
 * never waits.
 *
 * The CPU backend has no batch dimension. A group runs the frames of its batches side by side
 * instead, on lanes: min(max_batch, n_threads, frames its members may have in flight) backends
 * with a share of the threads each, each taking the oldest frame ready as soon as it is free,
 * as a batch dimension would share the threads out among the frames. So a group holds one plan
 * (activation arena) a lane, not one a member, and one team of threads a lane; a member alone
 * at depth 1 has all the threads on one lane, one at depth 2 a lane for each of its two
 * frames (BENCHMARKS.md, "Batch groups"). The lanes are made again when members join or
 * leave.
 *
 * A backend with a batch dimension (the CUDA backend's, made by the caller's HfamBatchLanes)
 * runs a group's batches on one lane, planned for batches of min(max_batch, members) frames
 * (made again when members join or leave, so that a member alone runs batches of one), two
 * batches in flight so that one's copies overlap the other's network. Its frames are in host
 * memory, or in device memory on the lane's CUDA context: a member's device frame is
 * preprocessed by the member's own frames-only backend, which also keeps and writes its
 * matte, and the lane copies its input in and its alpha_p back (HfamDeviceSlice). A batch
 * holds frames of one size from one memory. */
#include "batch.h"

#include <string.h>

/* A backend, and the thread that runs the frames ready on it. */
typedef struct {
  HfamBatchGroup *group;
  HfamBackend *backend;
  GThread *thread;
} Lane;

struct _HfamBatchGroup {
  /* the settings its members share (hfam_batch_group_join compares them) */
  HfamPrecision precision;
  int n_threads;
  int max_batch;
  gint64 timeout_us;
  /* lanes with a batch dimension (batched.new_backend), else CPU ones */
  gboolean batched;
  HfamBatchLanes lanes_made;  /* its settings a copy of the group's own */
  const HfamGraph *graph;
  HfamCpuWeightCache *weight_cache;
  /* what members read of a backend (name, precision): one made with the group's settings,
   * never planned, which lives as long as the group; with a batch dimension, a copy of the
   * first lane's (batched_description), without device frames */
  HfamBackend *description;
  HfamBackend batched_description;
  Lane *lanes;            /* under `lock`, but made again by join and leave only */
  int n_lanes;
  int lane_batch;         /* the frames each lane's backend runs as one batch */
  int last_width, last_height;  /* under `lock`: the size of the last batch queued (batched) */
  HfamHostBudget budget;  /* the lanes' plans and the frames queued */
  GThread *runner;
  /* the rest under `lock` */
  GMutex lock;
  GCond work;             /* to the runner: a frame was queued, a member left, stop */
  GCond ready_cond;       /* to the lanes: a batch is ready, or stop */
  GCond done;             /* to the members: a frame has run */
  GQueue queued;          /* HfamBatchFrame, submitted, oldest first */
  GQueue ready;           /* HfamBatchFrame, in batches formed, oldest first */
  int members;
  int slots;              /* the frames its members may have in flight: their depths' sum */
  int outstanding;        /* frames submitted and not yet collected by their members */
  gboolean stopping;      /* the last member left: the runner stops */
  gboolean lanes_stop;    /* stop_lanes: the lanes take no more frames and stop */
  HfamBatchCounts counts;
};

struct _HfamBatchFrame {
  const void *member;
  int width, height;
  float *planes;          /* the input (3 planes), then P_s (3), alpha_d and alpha_p */
  guint64 bytes;
  gint64 queued_at;       /* monotonic, microseconds */
  gboolean fused_only;    /* P_s and alpha_d are not wanted */
  gboolean on_device;     /* no planes: its input and alpha_p are the member's, in `slice` */
  HfamDeviceSlice slice;
  gboolean done;
  GError *error;
};

static size_t
plane_size (const HfamBatchFrame *frame)
{
  return (size_t) frame->width * frame->height;
}

/* Whether two frames may run in one batch: one size, one memory. */
static gboolean
alike (const HfamBatchFrame *a, const HfamBatchFrame *b)
{
  return a->width == b->width && a->height == b->height && a->on_device == b->on_device;
}

static int
queued_like (HfamBatchGroup *g, const HfamBatchFrame *first)
{
  int n = 0;

  for (GList *l = g->queued.head; l; l = l->next)
    n += alike (l->data, first);
  return n;
}

/* How many members have a frame queued (not running). */
static int
members_queued (HfamBatchGroup *g)
{
  int n = 0;

  for (GList *l = g->queued.head; l; l = l->next) {
    gboolean seen = FALSE;
    for (GList *k = g->queued.head; k != l && !seen; k = k->next)
      seen = ((HfamBatchFrame *) k->data)->member == ((HfamBatchFrame *) l->data)->member;
    n += !seen;
  }
  return n;
}

/* Under the lock, with a frame queued: waits until a batch is due. */
static void
wait_for_batch (HfamBatchGroup *g)
{
  const HfamBatchFrame *first = g_queue_peek_head (&g->queued);
  const gint64 deadline = first->queued_at + g->timeout_us;

  while (!g->stopping && queued_like (g, first) < g->max_batch
         && members_queued (g) < g->members
         && g_cond_wait_until (&g->work, &g->lock, deadline))
    ;
}

/* Under the lock: takes out of `queue` its oldest frame and the frames alike behind it, in
 * order, up to `most`. */
static int
take_like_first (GQueue *queue, int most, HfamBatchFrame **frames)
{
  const HfamBatchFrame *first = g_queue_peek_head (queue);
  GList *l = queue->head;
  int n = 0;

  while (l && n < most) {
    GList *next = l->next;
    HfamBatchFrame *f = l->data;
    if (alike (f, first)) {
      frames[n++] = f;
      g_queue_delete_link (queue, l);
    }
    l = next;
  }
  return n;
}

/* Where a frame's outputs go: its planes after the input (alpha_p alone for one submitted
 * fused_only: a GPU's lane then copies nothing else back). */
static HfamOutputs
frame_outputs (HfamBatchFrame *frame)
{
  const size_t plane = plane_size (frame);
  if (frame->fused_only)
    return (HfamOutputs) { .fused = frame->planes + 7 * plane };
  return (HfamOutputs) { .semantic = frame->planes + 3 * plane,
                         .detail = frame->planes + 6 * plane,
                         .fused = frame->planes + 7 * plane };
}

/* One frame through the backend, outputs into its planes. A frame that fails after it went
 * in is taken out again (a get_outputs that wants nothing), as tensors.c does. */
static gboolean
run_frame (HfamBackend *be, HfamBatchFrame *frame, GError **error)
{
  HfamOutputs out = frame_outputs (frame);
  HfamOutputs discard = { 0 };
  gboolean ok = be->ops->set_input (be, frame->planes, error);

  if (!ok)
    return FALSE;
  for (int stage = 0; stage < HFAM_N_STAGES && ok; stage++)
    ok = be->ops->run_stage (be, stage, error);
  if (ok && be->ops->synchronize (be, error))
    return be->ops->get_outputs (be, &out, error);
  be->ops->get_outputs (be, &discard, NULL);
  return FALSE;
}

/* A lane: the oldest frame ready, planned for (under the lock: the plan takes from the
 * budget that submit takes from) and run, until stop_lanes. */
static gpointer
run_lane (gpointer data)
{
  Lane *lane = data;
  HfamBatchGroup *g = lane->group;

  g_mutex_lock (&g->lock);
  for (;;) {
    HfamBatchFrame *frame;

    while (!g->lanes_stop && g_queue_is_empty (&g->ready))
      g_cond_wait (&g->ready_cond, &g->lock);
    /* (a stopping lane leaves the frames ready to the lanes that replace it) */
    if (g->lanes_stop || !(frame = g_queue_pop_head (&g->ready)))
      break;
    if (lane->backend->ops->plan (lane->backend, frame->width, frame->height, &frame->error)) {
      g_mutex_unlock (&g->lock);
      run_frame (lane->backend, frame, &frame->error);
      g_mutex_lock (&g->lock);
    }
    frame->done = TRUE;
    g_cond_broadcast (&g->done);
  }
  g_mutex_unlock (&g->lock);
  return NULL;
}

/* A batch on a lane with a batch dimension. */
typedef struct {
  HfamBatchFrame *frames[HFAM_MAX_BATCH];
  int n;
} LaneBatch;

/* Under the lock: the frames of `batch` done, with `error` (or their own). */
static void
finish_batch (HfamBatchGroup *g, LaneBatch *batch, const GError *error)
{
  for (int k = 0; k < batch->n; k++) {
    if (error && !batch->frames[k]->error)
      batch->frames[k]->error = g_error_copy (error);
    batch->frames[k]->done = TRUE;
  }
  g_cond_broadcast (&g->done);
}

/* Queues the batch on the lane's backend, planned for its size first (which waits for the
 * batches in flight). Without the lock. */
static gboolean
queue_lane_batch (HfamBackend *be, LaneBatch *batch, GError **error)
{
  const float *inputs[HFAM_MAX_BATCH];
  HfamDeviceSlice slices[HFAM_MAX_BATCH];
  const gboolean on_device = batch->frames[0]->on_device;

  for (int k = 0; k < batch->n; k++) {
    inputs[k] = batch->frames[k]->planes;
    slices[k] = batch->frames[k]->slice;
  }
  if (!be->ops->plan (be, batch->frames[0]->width, batch->frames[0]->height, error))
    return FALSE;
  if (!on_device)
    return be->ops->queue_batch (be, inputs, batch->n, error);
  if (!be->ops->queue_device_batch) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_UNSUPPORTED,
                 "batch group: the %s backend runs no device frames", be->ops->name);
    return FALSE;
  }
  return be->ops->queue_device_batch (be, slices, batch->n, error);
}

/* Waits for the batch and copies each frame's outputs into its planes (a device batch's went
 * to its members' slices). Without the lock. */
static gboolean
collect_lane_batch (HfamBackend *be, LaneBatch *batch, GError **error)
{
  HfamOutputs out[HFAM_MAX_BATCH];

  if (batch->frames[0]->on_device)
    return be->ops->collect_batch (be, NULL, batch->n, error);
  for (int k = 0; k < batch->n; k++)
    out[k] = frame_outputs (batch->frames[k]);
  return be->ops->collect_batch (be, out, batch->n, error);
}

/* How long a lane with room for another batch waits for a frame before it asks again whether
 * the oldest batch has finished. */
#define BATCH_POLL_US 100

/* A lane whose backend has a batch dimension: the frames ready, a batch at a time, with up to
 * the backend's pipeline depth of batches in flight; a batch of another size waits until those
 * in flight are collected (its plan replaces theirs). With room for another batch, while a
 * member may still submit, it collects the oldest only once that has finished (batch_done):
 * collecting at once would block it there, and a batch ready meanwhile would wait for the
 * copies of the one before, the GPU idle. The group's counts are the batches it queues. */
static gpointer
run_batch_lane (gpointer data)
{
  Lane *lane = data;
  HfamBatchGroup *g = lane->group;
  HfamBackend *be = lane->backend;
  const int depth = MAX (be->pipeline_depth, 1);
  LaneBatch flight[2];
  int first = 0, n_flight = 0;

  g_mutex_lock (&g->lock);
  for (;;) {
    const HfamBatchFrame *next;
    LaneBatch *batch;
    GError *error = NULL;

    while (!g->lanes_stop && n_flight == 0 && g_queue_is_empty (&g->ready))
      g_cond_wait (&g->ready_cond, &g->lock);
    /* a stopping lane collects what it has in flight and leaves the frames ready to the lane
     * that replaces it: were it to take them, members that keep submitting could keep it
     * running, and join or leave waiting, for ever */
    next = g->lanes_stop ? NULL : g_queue_peek_head (&g->ready);
    if (!next && n_flight == 0)
      break;
    if (next && n_flight < MIN (depth, 2)
        && (n_flight == 0 || (next->width == flight[first].frames[0]->width
                              && next->height == flight[first].frames[0]->height))) {
      batch = &flight[(first + n_flight) % 2];
      batch->n = take_like_first (&g->ready, be->batch, batch->frames);
      g->last_width = batch->frames[0]->width;
      g->last_height = batch->frames[0]->height;
      g->counts.batches++;
      g->counts.frames += batch->n;
      g->counts.largest = MAX (g->counts.largest, batch->n);
      g_mutex_unlock (&g->lock);
      if (queue_lane_batch (be, batch, &error)) {
        g_mutex_lock (&g->lock);
        n_flight++;
        continue;
      }
      g_mutex_lock (&g->lock);
    } else if (!next && !g->lanes_stop && n_flight < MIN (depth, 2)
               && (!g_queue_is_empty (&g->queued) || g->outstanding < g->slots)
               && be->ops->batch_done && !be->ops->batch_done (be)) {
      /* (a frame may still come: one the runner has yet to form into a batch, or one a
       * member has yet to submit) */
      g_cond_wait_until (&g->ready_cond, &g->lock, g_get_monotonic_time () + BATCH_POLL_US);
      continue;
    } else {
      batch = &flight[first];
      g_mutex_unlock (&g->lock);
      collect_lane_batch (be, batch, &error);
      g_mutex_lock (&g->lock);
      first = (first + 1) % 2;
      n_flight--;
    }
    finish_batch (g, batch, error);
    g_clear_error (&error);
  }
  g_mutex_unlock (&g->lock);
  return NULL;
}

static gpointer
run_batches (gpointer data)
{
  HfamBatchGroup *g = data;

  g_mutex_lock (&g->lock);
  for (;;) {
    HfamBatchFrame *batch[HFAM_MAX_BATCH];
    int n;

    while (!g->stopping && g_queue_is_empty (&g->queued))
      g_cond_wait (&g->work, &g->lock);
    if (g_queue_is_empty (&g->queued))
      break;
    wait_for_batch (g);
    n = take_like_first (&g->queued, g->max_batch, batch);
    for (int i = 0; i < n; i++)
      g_queue_push_tail (&g->ready, batch[i]);
    g_cond_broadcast (&g->ready_cond);
    /* (a lane with a batch dimension counts the batches it runs) */
    if (!g->batched) {
      g->counts.batches++;
      g->counts.frames += n;
      g->counts.largest = MAX (g->counts.largest, n);
    }
  }
  g_mutex_unlock (&g->lock);
  return NULL;
}

static gboolean
same_settings (const HfamBatchGroup *g, const HfamBatchGroup *want)
{
  const HfamBatchLanes *a = &g->lanes_made, *b = &want->lanes_made;

  return g->batched == want->batched && g->precision == want->precision
         && g->n_threads == want->n_threads && g->max_batch == want->max_batch
         && g->timeout_us == want->timeout_us
         && (!g->batched || (a->new_backend == b->new_backend
                             && a->settings_size == b->settings_size
                             && memcmp (a->settings, b->settings, a->settings_size) == 0));
}

/* `n_lanes` lanes of the group's settings, not started: CPU ones with the threads shared out,
 * or ones with a batch dimension for batches of `batch`. NULL, with the backend's error, when
 * one fails. */
static Lane *
make_lanes_here (HfamBatchGroup *g, int n_lanes, int batch, GError **error)
{
  Lane *lanes = g_new0 (Lane, n_lanes);

  for (int k = 0; k < n_lanes; k++) {
    const int lane_threads = g->n_threads / n_lanes + (k < g->n_threads % n_lanes);
    lanes[k].group = g;
    /* CPU: depth 1, the lane's thread runs its frames itself */
    if (g->batched)
      lanes[k].backend = g->lanes_made.new_backend (g->graph, batch, g->lanes_made.settings,
                                                    error);
    else
      lanes[k].backend = hfam_backend_cpu_new (g->graph, g->weight_cache, g->precision,
                                               lane_threads, 1, &g->budget, error);
    if (!lanes[k].backend) {
      for (int i = 0; i < k; i++)
        lanes[i].backend->ops->free (lanes[i].backend);
      g_free (lanes);
      return NULL;
    }
  }
  return lanes;
}

/* Lanes with a batch dimension are made and freed on a thread of their own: a CUDA backend
 * sets the device (its primary context) or its context on the thread that calls it, which
 * would replace a CUDA context that the member's thread has pushed (the element's
 * GstCudaContext).
 * For a join, the new one is planned there for the size of the last batch, while the lane it
 * replaces runs on: the algorithm search of the new batch size does not hold up the members'
 * frames, and the weights it shares with that one are not freed and uploaded again. (Not for
 * a leave: members leave one after another when a pipeline stops, and each would search for a
 * batch size that never runs; while streaming, a size seen before comes from the search's
 * cache.) */
typedef struct {
  HfamBatchGroup *group;
  int n_lanes, batch;
  int width, height;  /* to plan for (0: none) */
  Lane *lanes;
  GError *error;
} LaneWork;

static gpointer
make_lanes_thread (gpointer data)
{
  LaneWork *work = data;
  HfamBackend *be;

  work->lanes = make_lanes_here (work->group, work->n_lanes, work->batch, &work->error);
  if (!work->lanes || !work->width)
    return NULL;
  be = work->lanes[0].backend;
  if (!be->ops->plan (be, work->width, work->height, &work->error)) {
    be->ops->free (be);
    g_clear_pointer (&work->lanes, g_free);
  }
  return NULL;
}

static Lane *
make_lanes (HfamBatchGroup *g, int n_lanes, int batch, gboolean plan_ahead, GError **error)
{
  LaneWork work = { g, n_lanes, batch, 0, 0, NULL, NULL };

  if (!g->batched)
    return make_lanes_here (g, n_lanes, batch, error);
  g_mutex_lock (&g->lock);
  if (plan_ahead) {
    work.width = g->last_width;
    work.height = g->last_height;
  }
  g_mutex_unlock (&g->lock);
  g_thread_join (g_thread_new ("hfam-batch-make", make_lanes_thread, &work));
  if (work.error)
    g_propagate_error (error, work.error);
  return work.lanes;
}

static gpointer
free_lanes_thread (gpointer data)
{
  HfamBatchGroup *g = data;
  for (int k = 0; k < g->n_lanes; k++)
    g->lanes[k].backend->ops->free (g->lanes[k].backend);
  return NULL;
}

/* Under the lock: the lanes' backends freed (their threads stopped, or never started). */
static void
free_lanes (HfamBatchGroup *g)
{
  if (g->batched && g->n_lanes)
    g_thread_join (g_thread_new ("hfam-batch-free", free_lanes_thread, g));
  else
    free_lanes_thread (g);
  g_clear_pointer (&g->lanes, g_free);
  g->n_lanes = 0;
}

static void
start_lanes (HfamBatchGroup *g)
{
  for (int k = 0; k < g->n_lanes; k++)
    g->lanes[k].thread = g_thread_new ("hfam-batch-lane", g->batched ? run_batch_lane : run_lane,
                                       &g->lanes[k]);
}

/* Stops the lanes once they have run the frames they took; the frames ready stay for the
 * lanes that replace them. */
static void
stop_lanes (HfamBatchGroup *g)
{
  g_mutex_lock (&g->lock);
  g->lanes_stop = TRUE;
  g_cond_broadcast (&g->ready_cond);
  g_mutex_unlock (&g->lock);
  for (int k = 0; k < g->n_lanes; k++)
    g_thread_join (g->lanes[k].thread);
}

/* As many lanes as the members want (join and leave, under the groups' lock): the old ones
 * stop after the frames they took, the new ones take the frames from there. A failure leaves
 * the old ones running. */
static gboolean
fit_lanes (HfamBatchGroup *g, gboolean plan_ahead, GError **error)
{
  const int members = MAX (MIN (g->max_batch, g->members), 1);
  /* (a member at depth 2 has two frames to run side by side) */
  const int n_lanes = g->batched ? 1
                                  : MAX (MIN (MIN (g->max_batch, g->slots), g->n_threads), 1);
  const int batch = g->batched ? members : 1;
  Lane *lanes;

  if (n_lanes == g->n_lanes && batch == g->lane_batch)
    return TRUE;
  /* CPU lanes under the lock: their plans take from the budget too. (Not a CUDA lane, whose
   * making takes long and would hold up the running lane and the members.) */
  if (!g->batched)
    g_mutex_lock (&g->lock);
  lanes = make_lanes (g, n_lanes, batch, plan_ahead, error);
  if (!g->batched)
    g_mutex_unlock (&g->lock);
  if (!lanes)
    return FALSE;
  if (g->batched && !g->description) {
    /* (HfamBatchLanes: the copy's ops outlive the lanes) */
    g->batched_description = *lanes[0].backend;
    g->batched_description.device = NULL;
    g->batched_description.batch = g->max_batch;
    g->description = &g->batched_description;
  }
  stop_lanes (g);
  g_mutex_lock (&g->lock);
  free_lanes (g);
  g->lanes = lanes;
  g->n_lanes = n_lanes;
  g->lane_batch = batch;
  g->lanes_stop = FALSE;
  g_mutex_unlock (&g->lock);
  start_lanes (g);
  return TRUE;
}

/* Frees a group whose threads have stopped. */
static void
free_group (HfamBatchGroup *g)
{
  free_lanes (g);
  if (g->description && g->description != &g->batched_description)
    g->description->ops->free (g->description);
  g_free ((gpointer) g->lanes_made.settings);
  g_mutex_clear (&g->lock);
  g_cond_clear (&g->work);
  g_cond_clear (&g->ready_cond);
  g_cond_clear (&g->done);
  g_free (g);
}

/* A new group of `want`'s settings, without members or lanes yet: its description (CPU; a
 * CUDA one's comes with its first lanes) and its runner. */
static HfamBatchGroup *
start_group (const HfamBatchGroup *want, const HfamOptions *options, GError **error)
{
  HfamBatchGroup *g = g_new0 (HfamBatchGroup, 1);

  g->precision = want->precision;
  g->n_threads = want->n_threads;
  g->max_batch = want->max_batch;
  g->timeout_us = want->timeout_us;
  g->batched = want->batched;
  g->lanes_made = want->lanes_made;
  if (g->batched)
    g->lanes_made.settings = g_memdup2 (want->lanes_made.settings,
                                        want->lanes_made.settings_size);
  g->graph = want->graph;
  g->weight_cache = want->weight_cache;
  g->budget.limit = options->memory_budget > 0 ? options->memory_budget
                                               : hfam_default_memory_budget ();
  g_mutex_init (&g->lock);
  g_cond_init (&g->work);
  g_cond_init (&g->ready_cond);
  g_cond_init (&g->done);
  g_queue_init (&g->queued);
  g_queue_init (&g->ready);
  if (!g->batched
      && !(g->description = hfam_backend_cpu_new (g->graph, g->weight_cache, g->precision,
                                                  g->n_threads, 1, &g->budget, error))) {
    free_group (g);
    return NULL;
  }
  g->runner = g_thread_new ("hfam-batch", run_batches, g);
  return g;
}

/* Stops a group without members and frees it. */
static void
stop_group (HfamBatchGroup *g)
{
  g_mutex_lock (&g->lock);
  g->stopping = TRUE;
  g_cond_signal (&g->work);
  g_mutex_unlock (&g->lock);
  g_thread_join (g->runner);
  stop_lanes (g);
  free_group (g);
}

HfamBatchGroup *
hfam_batch_group_join (HfamBatchGroups *groups, const HfamGraph *graph,
                       HfamCpuWeightCache *weight_cache, const HfamOptions *options,
                       const HfamBatchLanes *batched, GError **error)
{
  const int depth = CLAMP (options->pipeline_depth, 1, 2);
  HfamBatchGroup want = {
    .precision = options->precision,
    /* (threads for CPU lanes only) */
    .n_threads = batched ? 0 : options->n_threads > 0 ? options->n_threads
                                                      : (int) g_get_num_processors (),
    .max_batch = MIN (options->max_batch, HFAM_MAX_BATCH),
    .timeout_us = MAX (options->batch_timeout_us, 0),
    .batched = batched != NULL,
    .graph = graph,
    .weight_cache = weight_cache,
  };
  HfamBatchGroup *g = NULL;

  if (batched)
    want.lanes_made = *batched;
  g_mutex_lock (&groups->lock);
  for (GList *l = groups->groups; l && !g; l = l->next)
    if (same_settings (l->data, &want))
      g = l->data;
  if (!g && (g = start_group (&want, options, error)))
    groups->groups = g_list_prepend (groups->groups, g);
  if (g) {
    g_mutex_lock (&g->lock);
    g->members++;
    g->slots += depth;
    g_mutex_unlock (&g->lock);
    if (!fit_lanes (g, TRUE, error)) {
      g_mutex_lock (&g->lock);
      g->members--;
      g->slots -= depth;
      g_mutex_unlock (&g->lock);
      if (g->members == 0) {
        groups->groups = g_list_remove (groups->groups, g);
        stop_group (g);
      }
      g = NULL;
    }
  }
  g_mutex_unlock (&groups->lock);
  return g;
}

void
hfam_batch_group_leave (HfamBatchGroups *groups, HfamBatchGroup *g, int depth)
{
  g_mutex_lock (&groups->lock);
  g_mutex_lock (&g->lock);
  g->members--;
  g->slots -= depth;
  /* a batch waiting for this member's frame is due now */
  g_cond_signal (&g->work);
  g_mutex_unlock (&g->lock);
  if (g->members == 0) {
    groups->groups = g_list_remove (groups->groups, g);
    stop_group (g);
  } else {
    /* fewer lanes; where they cannot be made, the ones there are go on */
    fit_lanes (g, FALSE, NULL);
  }
  g_mutex_unlock (&groups->lock);
}

HfamBackend *
hfam_batch_group_backend (HfamBatchGroup *group)
{
  return group->description;
}

int
hfam_batch_group_max_batch (const HfamBatchGroup *group)
{
  return group->max_batch;
}

/* Hands a frame to the runner. */
static HfamBatchFrame *
queue_frame (HfamBatchGroup *g, HfamBatchFrame *frame)
{
  g_mutex_lock (&g->lock);
  frame->queued_at = g_get_monotonic_time ();
  g->outstanding++;
  g_queue_push_tail (&g->queued, frame);
  g_cond_signal (&g->work);
  g_mutex_unlock (&g->lock);
  return frame;
}

HfamBatchFrame *
hfam_batch_group_submit (HfamBatchGroup *g, const void *member, const float *input, int width,
                         int height, gboolean fused_only, GError **error)
{
  HfamBatchFrame *frame = g_new0 (HfamBatchFrame, 1);
  gboolean taken;

  frame->member = member;
  frame->fused_only = fused_only;
  frame->width = width;
  frame->height = height;
  frame->bytes = sizeof (float) * 8 * plane_size (frame);
  g_mutex_lock (&g->lock);
  taken = hfam_host_budget_take (&g->budget, frame->bytes, "batched frame", width, height,
                                 error);
  g_mutex_unlock (&g->lock);
  if (taken && !(frame->planes = g_try_malloc (frame->bytes))) {
    g_mutex_lock (&g->lock);
    hfam_host_budget_give (&g->budget, frame->bytes);
    g_mutex_unlock (&g->lock);
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "batched frame %dx%d: out of memory",
                 width, height);
  }
  if (!frame->planes) {
    g_free (frame);
    return NULL;
  }
  memcpy (frame->planes, input, sizeof (float) * 3 * plane_size (frame));
  return queue_frame (g, frame);
}

HfamBatchFrame *
hfam_batch_group_submit_device (HfamBatchGroup *g, const void *member,
                                const HfamDeviceSlice *slice, int width, int height)
{
  HfamBatchFrame *frame = g_new0 (HfamBatchFrame, 1);

  frame->member = member;
  frame->fused_only = TRUE;
  frame->on_device = TRUE;
  frame->slice = *slice;
  frame->width = width;
  frame->height = height;
  return queue_frame (g, frame);
}

gboolean
hfam_batch_group_collect (HfamBatchGroup *g, HfamBatchFrame *frame, const HfamOutputs *out,
                          GError **error)
{
  static const HfamOutputs nothing = { 0 };
  const size_t plane = plane_size (frame);
  gboolean ok;

  /* (a device frame's alpha_p is in its slice already) */
  if (!out || frame->on_device)
    out = &nothing;
  g_return_val_if_fail (!frame->fused_only || (!out->semantic && !out->detail), FALSE);
  g_mutex_lock (&g->lock);
  while (!frame->done)
    g_cond_wait (&g->done, &g->lock);
  g->outstanding--;
  hfam_host_budget_give (&g->budget, frame->bytes);
  g_mutex_unlock (&g->lock);
  ok = !frame->error;
  if (frame->error)
    g_propagate_error (error, frame->error);
  else if (!frame->on_device) {
    const HfamOutputs from = frame_outputs (frame);
    if (out->semantic)
      memcpy (out->semantic, from.semantic, sizeof (float) * 3 * plane);
    if (out->detail)
      memcpy (out->detail, from.detail, sizeof (float) * plane);
    if (out->fused)
      memcpy (out->fused, from.fused, sizeof (float) * plane);
  }
  g_free (frame->planes);
  g_free (frame);
  return ok;
}

void
hfam_batch_group_counts (HfamBatchGroup *g, HfamBatchCounts *counts)
{
  g_mutex_lock (&g->lock);
  *counts = g->counts;
  counts->members = g->members;
  counts->lanes = g->n_lanes;
  g_mutex_unlock (&g->lock);
}
