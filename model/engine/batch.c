/* Batch groups (batch.h): one backend and one runner thread for the frames of several
 * contexts. A batch starts with the oldest frame queued and takes the frames of its inference
 * size queued behind it, up to max_batch. Before it runs, the runner waits for more while
 * fewer than max_batch are queued and some member has none queued, but never longer than
 * the timeout after the first one was queued: a member alone in its group never waits.
 *
 * The CPU backend has no batch dimension, so a batch runs its frames one after another on
 * the group's backend, with all its threads. What the group gives there is one plan (one
 * activation arena) for all its members and one team of threads instead of one each
 * (BENCHMARKS.md, "Batch groups"). */
#include "batch.h"

#include <string.h>

struct _HfamBatchGroup {
  /* the settings its members share (hfam_batch_group_join compares them) */
  HfamPrecision precision;
  int n_threads;
  int max_batch;
  gint64 timeout_us;
  HfamBackend *backend;
  HfamHostBudget budget;  /* the backend's plan and the frames queued */
  GThread *runner;
  /* the rest under `lock` */
  GMutex lock;
  GCond work;             /* to the runner: a frame was queued, a member left, stop */
  GCond done;             /* to the members: frames have run */
  GQueue queued;          /* HfamBatchFrame, oldest first */
  int members;
  gboolean stopping;
  HfamBatchCounts counts;
};

struct _HfamBatchFrame {
  const void *member;
  int width, height;
  float *planes;          /* the input (3 planes), then P_s (3), alpha_d and alpha_p */
  guint64 bytes;
  gint64 queued_at;       /* monotonic, microseconds */
  gboolean done;
  GError *error;
};

static size_t
plane_size (const HfamBatchFrame *frame)
{
  return (size_t) frame->width * frame->height;
}

static int
queued_like (HfamBatchGroup *g, const HfamBatchFrame *first)
{
  int n = 0;

  for (GList *l = g->queued.head; l; l = l->next) {
    const HfamBatchFrame *f = l->data;
    n += f->width == first->width && f->height == first->height;
  }
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

/* Under the lock: takes the batch out of the queue, the oldest frame and those of its size. */
static int
take_batch (HfamBatchGroup *g, HfamBatchFrame **batch)
{
  const HfamBatchFrame *first = g_queue_peek_head (&g->queued);
  const int width = first->width, height = first->height;
  GList *l = g->queued.head;
  int n = 0;

  while (l && n < g->max_batch) {
    GList *next = l->next;
    HfamBatchFrame *f = l->data;
    if (f->width == width && f->height == height) {
      batch[n++] = f;
      g_queue_delete_link (&g->queued, l);
    }
    l = next;
  }
  return n;
}

/* One frame through the backend, outputs into its planes. A frame that fails after it went
 * in is taken out again (a get_outputs that wants nothing), as tensors.c does. */
static gboolean
run_frame (HfamBackend *be, HfamBatchFrame *frame, GError **error)
{
  const size_t plane = plane_size (frame);
  HfamOutputs out = { .semantic = frame->planes + 3 * plane,
                      .detail = frame->planes + 6 * plane,
                      .fused = frame->planes + 7 * plane };
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

static gpointer
run_batches (gpointer data)
{
  HfamBatchGroup *g = data;
  int planned_width = 0, planned_height = 0;

  g_mutex_lock (&g->lock);
  for (;;) {
    HfamBatchFrame *batch[HFAM_MAX_BATCH];
    GError *plan_error = NULL;
    int n;

    while (!g->stopping && g_queue_is_empty (&g->queued))
      g_cond_wait (&g->work, &g->lock);
    if (g_queue_is_empty (&g->queued))
      break;
    wait_for_batch (g);
    n = take_batch (g, batch);
    /* under the lock: the plan takes from the budget that submit takes from */
    if (batch[0]->width != planned_width || batch[0]->height != planned_height) {
      planned_width = planned_height = 0;
      if (g->backend->ops->plan (g->backend, batch[0]->width, batch[0]->height, &plan_error)) {
        planned_width = batch[0]->width;
        planned_height = batch[0]->height;
      }
    }
    g_mutex_unlock (&g->lock);
    for (int i = 0; i < n; i++) {
      if (plan_error)
        batch[i]->error = g_error_copy (plan_error);
      else
        run_frame (g->backend, batch[i], &batch[i]->error);
    }
    g_clear_error (&plan_error);
    g_mutex_lock (&g->lock);
    for (int i = 0; i < n; i++)
      batch[i]->done = TRUE;
    g->counts.batches++;
    g->counts.frames += n;
    g->counts.largest = MAX (g->counts.largest, n);
    g_cond_broadcast (&g->done);
  }
  g_mutex_unlock (&g->lock);
  return NULL;
}

static gboolean
same_settings (const HfamBatchGroup *g, HfamPrecision precision, int n_threads, int max_batch,
               gint64 timeout_us)
{
  return g->precision == precision && g->n_threads == n_threads && g->max_batch == max_batch
         && g->timeout_us == timeout_us;
}

HfamBatchGroup *
hfam_batch_group_join (HfamBatchGroups *groups, const HfamGraph *graph,
                       HfamCpuWeightCache *weight_cache, const HfamOptions *options,
                       GError **error)
{
  const int n_threads = options->n_threads > 0 ? options->n_threads
                                                : (int) g_get_num_processors ();
  const int max_batch = MIN (options->max_batch, HFAM_MAX_BATCH);
  const gint64 timeout_us = MAX (options->batch_timeout_us, 0);
  HfamBatchGroup *g = NULL;

  g_mutex_lock (&groups->lock);
  for (GList *l = groups->groups; l && !g; l = l->next)
    if (same_settings (l->data, options->precision, n_threads, max_batch, timeout_us))
      g = l->data;
  if (!g) {
    g = g_new0 (HfamBatchGroup, 1);
    g->precision = options->precision;
    g->n_threads = n_threads;
    g->max_batch = max_batch;
    g->timeout_us = timeout_us;
    g->budget.limit = options->memory_budget > 0 ? options->memory_budget
                                                 : hfam_default_memory_budget ();
    /* depth 1: the runner is the group's thread */
    if (!(g->backend = hfam_backend_cpu_new (graph, weight_cache, options->precision, n_threads,
                                             1, &g->budget, error))) {
      g_free (g);
      g_mutex_unlock (&groups->lock);
      return NULL;
    }
    g_mutex_init (&g->lock);
    g_cond_init (&g->work);
    g_cond_init (&g->done);
    g_queue_init (&g->queued);
    g->runner = g_thread_new ("hfam-batch", run_batches, g);
    groups->groups = g_list_prepend (groups->groups, g);
  }
  g_mutex_lock (&g->lock);
  g->members++;
  g_mutex_unlock (&g->lock);
  g_mutex_unlock (&groups->lock);
  return g;
}

void
hfam_batch_group_leave (HfamBatchGroups *groups, HfamBatchGroup *g)
{
  gboolean last;

  g_mutex_lock (&groups->lock);
  g_mutex_lock (&g->lock);
  last = --g->members == 0;
  if (last)
    g->stopping = TRUE;
  /* a batch waiting for this member's frame is due now */
  g_cond_signal (&g->work);
  g_mutex_unlock (&g->lock);
  if (last)
    groups->groups = g_list_remove (groups->groups, g);
  g_mutex_unlock (&groups->lock);
  if (!last)
    return;
  g_thread_join (g->runner);
  g->backend->ops->free (g->backend);
  g_mutex_clear (&g->lock);
  g_cond_clear (&g->work);
  g_cond_clear (&g->done);
  g_free (g);
}

HfamBackend *
hfam_batch_group_backend (HfamBatchGroup *group)
{
  return group->backend;
}

int
hfam_batch_group_max_batch (const HfamBatchGroup *group)
{
  return group->max_batch;
}

HfamBatchFrame *
hfam_batch_group_submit (HfamBatchGroup *g, const void *member, const float *input, int width,
                         int height, GError **error)
{
  HfamBatchFrame *frame = g_new0 (HfamBatchFrame, 1);
  gboolean taken;

  frame->member = member;
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
  g_mutex_lock (&g->lock);
  frame->queued_at = g_get_monotonic_time ();
  g_queue_push_tail (&g->queued, frame);
  g_cond_signal (&g->work);
  g_mutex_unlock (&g->lock);
  return frame;
}

gboolean
hfam_batch_group_collect (HfamBatchGroup *g, HfamBatchFrame *frame, HfamOutputs *out,
                          GError **error)
{
  const size_t plane = plane_size (frame);
  gboolean ok;

  g_mutex_lock (&g->lock);
  while (!frame->done)
    g_cond_wait (&g->done, &g->lock);
  hfam_host_budget_give (&g->budget, frame->bytes);
  g_mutex_unlock (&g->lock);
  ok = !frame->error;
  if (frame->error)
    g_propagate_error (error, frame->error);
  else {
    if (out->semantic)
      memcpy (out->semantic, frame->planes + 3 * plane, sizeof (float) * 3 * plane);
    if (out->detail)
      memcpy (out->detail, frame->planes + 6 * plane, sizeof (float) * plane);
    if (out->fused)
      memcpy (out->fused, frame->planes + 7 * plane, sizeof (float) * plane);
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
  g_mutex_unlock (&g->lock);
}
