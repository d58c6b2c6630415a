/* Batch groups whose lane has a batch dimension (batch.c's run_batch_lane, which runs a CUDA
 * group's batches), on a test backend that runs each batch's frames one by one on a CPU
 * backend, one thread, and keeps up to two batches: what the lane hands it and takes back can
 * be checked where no GPU is.
 *   - three members' frames run as batches of up to three, each frame's outputs those of a
 *     CPU backend of its own, in order, with two batches in flight;
 *   - the lane is made again as members join and leave (batches of one for a member alone);
 *     for a join, planned for the last batch's size while the old one still runs;
 *   - frames of two sizes interleaved run in batches of one size each;
 *   - a batch whose plan fails fails for its frames alone, and the next ones run;
 *   - a lane being replaced (a member joins) collects what it has in flight and takes no new
 *     frames, which the new lane runs: a member that keeps submitting cannot hold it;
 *   - while its batch has not finished (batch_done), a lane queues the next frame beside it
 *     rather than wait in collect;
 *   - members' device frames (HfamDeviceSlice: here host planes stand in for device memory)
 *     run in batches of their own, never mixed with host frames of the same size, each
 *     alpha_p in its own slice once the member collects the frame.
 * Usage: test-batch-lanes GOLDEN_DIR */
#include "context.h"
#include "engine-test.h"

#include <string.h>

#define W 64
#define H 64
#define MAX_FLIGHT 2

typedef struct {
  int batch;          /* as made */
  int largest;        /* the most frames queue_batch was given */
  int most_in_flight; /* the most batches queued and not yet collected */
  int fail_width;     /* plan refuses this width (0: none) */
  int fused_only;     /* frames collected with alpha_p alone asked for */
  int device_frames;  /* frames queue_device_batch was given */
  int largest_device; /* the most frames one queue_device_batch was given */
  /* atomic: */
  int made;           /* lanes made */
  int queued;         /* frames queued, all lanes */
  int first_lane;     /* frames the first lane queued, when it is freed */
  int live;           /* lanes made and not freed */
  int most_live_at_plan;  /* the most lanes alive while one planned */
  /* collect_batch waits while `hold`, and batch_done says no */
  GMutex gate_lock;
  GCond gate;
  gboolean hold;
} TestLaneLog;

/* The backend: a CPU backend (one thread) that runs a batch's frames when it is queued. */
typedef struct {
  HfamBackend base;
  HfamBackend *cpu;
  TestLaneLog *log;
  HfamHostBudget budget;  /* the CPU backend's: never the limit here */
  int width, height;
  float *outputs[MAX_FLIGHT][HFAM_MAX_BATCH];  /* P_s (3 planes), alpha_d, alpha_p */
  int n[MAX_FLIGHT];
  /* a batch of device frames: where its collect writes each alpha_p (NULL: host frames) */
  float *slice_alpha[MAX_FLIGHT][HFAM_MAX_BATCH];
  int head, tail;
  int frames_queued;
  gboolean first;     /* the first lane made */
} TestLane;

/* One frame through a planned CPU backend. */
static gboolean
run_cpu_frame (HfamBackend *cpu, const float *input, HfamOutputs *out, GError **error)
{
  if (!cpu->ops->set_input (cpu, input, error))
    return FALSE;
  for (int stage = 0; stage < HFAM_N_STAGES; stage++)
    if (!cpu->ops->run_stage (cpu, stage, error))
      return FALSE;
  return cpu->ops->synchronize (cpu, error) && cpu->ops->get_outputs (cpu, out, error);
}

static gboolean
lane_plan (HfamBackend *base, int width, int height, GError **error)
{
  TestLane *lane = (TestLane *) base;

  if (width == lane->width && height == lane->height)
    return TRUE;
  g_assert_cmpint (lane->head, ==, lane->tail);  /* nothing in flight across a new plan */
  lane->log->most_live_at_plan = MAX (lane->log->most_live_at_plan,
                                      g_atomic_int_get (&lane->log->live));
  if (width == lane->log->fail_width) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "test lane: width %d refused", width);
    return FALSE;
  }
  lane->width = width;
  lane->height = height;
  return lane->cpu->ops->plan (lane->cpu, width, height, error);
}

static gboolean
lane_queue_batch (HfamBackend *base, const float *const *inputs, int n, GError **error)
{
  TestLane *lane = (TestLane *) base;
  const int slot = lane->head % MAX_FLIGHT;
  const size_t plane = (size_t) lane->width * lane->height;

  g_assert_cmpint (n, >=, 1);
  g_assert_cmpint (n, <=, lane->log->batch);
  g_assert_cmpint (lane->head - lane->tail, <, MAX_FLIGHT);
  lane->log->largest = MAX (lane->log->largest, n);
  for (int k = 0; k < n; k++) {
    float *o = lane->outputs[slot][k] = g_renew (float, lane->outputs[slot][k], 5 * plane);
    HfamOutputs out = { .semantic = o, .detail = o + 3 * plane, .fused = o + 4 * plane };
    if (!run_cpu_frame (lane->cpu, inputs[k], &out, error))
      return FALSE;
  }
  lane->n[slot] = n;
  for (int k = 0; k < n; k++)
    lane->slice_alpha[slot][k] = NULL;
  lane->head++;
  lane->frames_queued += n;
  g_atomic_int_add (&lane->log->queued, n);
  lane->log->most_in_flight = MAX (lane->log->most_in_flight, lane->head - lane->tail);
  return TRUE;
}

static gboolean
lane_collect_batch (HfamBackend *base, HfamOutputs *out, int n, GError **error)
{
  TestLane *lane = (TestLane *) base;
  const int slot = lane->tail % MAX_FLIGHT;
  const size_t plane = (size_t) lane->width * lane->height;

  g_mutex_lock (&lane->log->gate_lock);
  while (lane->log->hold)
    g_cond_wait (&lane->log->gate, &lane->log->gate_lock);
  g_mutex_unlock (&lane->log->gate_lock);
  g_assert_cmpint (lane->head, >, lane->tail);
  g_assert_cmpint (n, ==, lane->n[slot]);
  lane->tail++;
  /* a batch of device frames is collected without outputs: alpha_p goes to the slices, as
   * the CUDA backend's copies (finished by then) put it there */
  g_assert_true (!out == !!lane->slice_alpha[slot][0]);
  for (int k = 0; k < n && !out; k++)
    memcpy (lane->slice_alpha[slot][k], lane->outputs[slot][k] + 4 * plane,
            sizeof (float) * plane);
  for (int k = 0; k < n && out; k++) {
    const float *o = lane->outputs[slot][k];
    lane->log->fused_only += !out[k].semantic && !out[k].detail && out[k].fused;
    if (out[k].semantic)
      memcpy (out[k].semantic, o, sizeof (float) * 3 * plane);
    if (out[k].detail)
      memcpy (out[k].detail, o + 3 * plane, sizeof (float) * plane);
    if (out[k].fused)
      memcpy (out[k].fused, o + 4 * plane, sizeof (float) * plane);
  }
  return TRUE;
}

/* Device frames: each slice's input (host planes here) runs as lane_queue_batch's inputs do;
 * its alpha_p is written to the slice when the batch is collected. */
static gboolean
lane_queue_device_batch (HfamBackend *base, const HfamDeviceSlice *slices, int n,
                         GError **error)
{
  TestLane *lane = (TestLane *) base;
  const float *inputs[HFAM_MAX_BATCH] = { NULL };
  const int slot = lane->head % MAX_FLIGHT;

  for (int k = 0; k < n; k++) {
    g_assert_cmpuint (slices[k].input_bytes, ==,
                      sizeof (float) * 3 * (size_t) lane->width * lane->height);
    inputs[k] = slices[k].input;
  }
  if (!lane_queue_batch (base, inputs, n, error))
    return FALSE;
  for (int k = 0; k < n; k++)
    lane->slice_alpha[slot][k] = slices[k].alpha;
  lane->log->device_frames += n;
  lane->log->largest_device = MAX (lane->log->largest_device, n);
  return TRUE;
}

static gboolean
lane_batch_done (HfamBackend *base)
{
  TestLaneLog *log = ((TestLane *) base)->log;
  gboolean done;

  g_mutex_lock (&log->gate_lock);
  done = !log->hold;
  g_mutex_unlock (&log->gate_lock);
  return done;
}

static void
lane_free (HfamBackend *base)
{
  TestLane *lane = (TestLane *) base;

  if (lane->first)
    g_atomic_int_set (&lane->log->first_lane, lane->frames_queued);
  g_atomic_int_add (&lane->log->live, -1);
  for (int s = 0; s < MAX_FLIGHT; s++)
    for (int k = 0; k < HFAM_MAX_BATCH; k++)
      g_free (lane->outputs[s][k]);
  lane->cpu->ops->free (lane->cpu);
  g_free (lane);
}

static const HfamBackendOps lane_ops = {
  .name = "test-lane",
  .plan = lane_plan,
  .free = lane_free,
  .queue_batch = lane_queue_batch,
  .collect_batch = lane_collect_batch,
  .batch_done = lane_batch_done,
  .queue_device_batch = lane_queue_device_batch,
};

/* HfamBatchLanes.new_backend; `settings`: the TestLaneLog * to write to. */
static HfamBackend *
new_test_lane (const HfamGraph *graph, int batch, const void *settings, GError **error)
{
  TestLaneLog *log = *(TestLaneLog *const *) settings;
  TestLane *lane = g_new0 (TestLane, 1);

  lane->budget.limit = G_MAXUINT64;
  lane->cpu = hfam_backend_cpu_new (graph, NULL, HFAM_PRECISION_FP32, 1, 1, &lane->budget,
                                    error);
  if (!lane->cpu) {
    g_free (lane);
    return NULL;
  }
  lane->base.ops = &lane_ops;
  lane->base.graph = graph;
  lane->base.pipeline_depth = MAX_FLIGHT;
  lane->base.batch = batch;
  lane->base.precision = HFAM_PRECISION_FP32;
  lane->log = log;
  lane->first = g_atomic_int_add (&log->made, 1) == 0;
  g_atomic_int_inc (&log->live);
  log->batch = batch;
  return &lane->base;
}

typedef struct {
  HfamModel *model;
  HfamBatchGroups groups;
  TestLaneLog log;
  TestLaneLog *log_pointer;  /* the lanes' settings: where they write */
  HfamBatchLanes lanes;
} Fixture;

static void
fixture_init (Fixture *f)
{
  g_autofree char *path = golden_path ("r18_64x64", ".safetensors");
  g_autoptr (GError) error = NULL;

  memset (f, 0, sizeof *f);
  f->model = hfam_model_load (path, &error);
  g_assert_no_error (error);
  g_mutex_init (&f->groups.lock);
  g_mutex_init (&f->log.gate_lock);
  g_cond_init (&f->log.gate);
  f->log_pointer = &f->log;
  f->lanes = (HfamBatchLanes) { new_test_lane, &f->log_pointer, sizeof f->log_pointer };
}

static void
fixture_clear (Fixture *f)
{
  g_assert_null (f->groups.groups);
  g_mutex_clear (&f->groups.lock);
  g_mutex_clear (&f->log.gate_lock);
  g_cond_clear (&f->log.gate);
  hfam_model_free (f->model);
}

static HfamBatchGroup *
join (Fixture *f, int max_batch, gint64 timeout_us)
{
  const HfamOptions options = { .precision = HFAM_PRECISION_FP32, .pipeline_depth = 2,
                                .max_batch = max_batch,
                                .batch_timeout_us = (int) timeout_us };
  g_autoptr (GError) error = NULL;
  HfamBatchGroup *g = hfam_batch_group_join (&f->groups, f->model->graph, NULL, &options,
                                             &f->lanes, &error);

  g_assert_no_error (error);
  g_assert_nonnull (g);
  return g;
}

/* A normalised input of its own for `seed`. */
static float *
input_of (int seed, int width, int height)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  float *input = g_new (float, 3 * (size_t) width * height);

  for (size_t i = 0; i < 3 * (size_t) width * height; i++)
    input[i] = (float) g_rand_double_range (rand, -2.0, 2.0);
  return input;
}

/* What a CPU backend of its own (one thread) makes of `input`: alpha_p. */
static float *
alpha_alone (Fixture *f, const float *input, int width, int height)
{
  HfamHostBudget budget = { .limit = G_MAXUINT64 };
  g_autoptr (GError) error = NULL;
  HfamBackend *cpu = hfam_backend_cpu_new (f->model->graph, NULL, HFAM_PRECISION_FP32, 1, 1,
                                           &budget, &error);
  float *alpha = g_new (float, (size_t) width * height);
  HfamOutputs out = { .fused = alpha };

  g_assert_no_error (error);
  g_assert_true (cpu->ops->plan (cpu, width, height, &error)
                 && run_cpu_frame (cpu, input, &out, &error));
  g_assert_no_error (error);
  cpu->ops->free (cpu);
  return alpha;
}

static void
expect_alpha (Fixture *f, HfamBatchGroup *g, HfamBatchFrame *frame, const float *input,
              int width, int height)
{
  g_autofree float *want = alpha_alone (f, input, width, height);
  g_autofree float *got = g_new (float, (size_t) width * height);
  HfamOutputs out = { .fused = got };
  g_autoptr (GError) error = NULL;

  g_assert_true (hfam_batch_group_collect (g, frame, &out, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (max_abs_diff (got, want, (size_t) width * height), ==, 0.0);
}

/* Three members, two frames each in flight: batches of three, two batches in flight, every
 * frame its own outputs; then members leave until one is left, whose frames run alone. */
static void
test_batches (void)
{
  Fixture f;
  HfamBatchGroup *g[3];
  HfamBatchFrame *frames[3][2];
  float *inputs[3][2];
  HfamBatchCounts counts;

  fixture_init (&f);
  for (int m = 0; m < 3; m++)
    g[m] = join (&f, 3, 60 * G_USEC_PER_SEC);
  g_assert_true (g[0] == g[1] && g[1] == g[2]);
  g_assert_cmpint (hfam_batch_group_backend (g[0])->batch, ==, 3);
  g_assert_null (hfam_batch_group_backend (g[0])->device);
  for (int r = 0; r < 2; r++)
    for (int m = 0; m < 3; m++) {
      g_autoptr (GError) error = NULL;
      inputs[m][r] = input_of (10 * m + r, W, H);
      frames[m][r] = hfam_batch_group_submit (g[m], &g[m], inputs[m][r], W, H, FALSE,
                                              &error);
      g_assert_no_error (error);
    }
  for (int r = 0; r < 2; r++)
    for (int m = 0; m < 3; m++)
      expect_alpha (&f, g[m], frames[m][r], inputs[m][r], W, H);
  hfam_batch_group_counts (g[0], &counts);
  g_assert_cmpint (f.log.batch, ==, 3);
  g_assert_cmpint (f.log.largest, ==, 3);
  g_assert_cmpuint (counts.frames, ==, 6);
  g_assert_cmpint (counts.lanes, ==, 1);
  /* (the runner forms its batches while the lane has the earlier ones in flight) */
  g_test_message ("batches %" G_GUINT64_FORMAT ", most in flight %d", counts.batches,
                  f.log.most_in_flight);
  g_assert_cmpint (f.log.most_live_at_plan, ==, 1);
  hfam_batch_group_leave (&f.groups, g[2], 2);
  hfam_batch_group_leave (&f.groups, g[1], 2);
  /* a member alone: its lane runs batches of one, planned at its first (not for a leave) */
  g_assert_cmpint (f.log.batch, ==, 1);
  {
    g_autoptr (GError) error = NULL;
    g_autofree float *input = input_of (99, W, H);
    HfamBatchFrame *frame = hfam_batch_group_submit (g[0], &g[0], input, W, H, TRUE, &error);
    g_assert_no_error (error);
    expect_alpha (&f, g[0], frame, input, W, H);
    /* submitted fused_only: the lane was asked for alpha_p alone */
    g_assert_cmpint (f.log.fused_only, ==, 1);
    g_assert_cmpint (f.log.most_live_at_plan, ==, 1);
  }
  hfam_batch_group_leave (&f.groups, g[0], 2);
  for (int r = 0; r < 2; r++)
    for (int m = 0; m < 3; m++)
      g_free (inputs[m][r]);
  fixture_clear (&f);
}

/* Two members at two sizes, interleaved: each batch holds frames of one size (a plan between
 * them, with nothing in flight: lane_plan checks), every frame its own outputs. A size the
 * lane's plan refuses fails its frames alone. */
static void
test_sizes_and_failures (void)
{
  Fixture f;
  HfamBatchGroup *g[2];
  const int widths[2] = { W, 96 };
  enum { N = 3 };
  HfamBatchFrame *frames[2][N];
  float *inputs[2][N];

  fixture_init (&f);
  for (int m = 0; m < 2; m++)
    g[m] = join (&f, 2, 50 * 1000);
  for (int round = 0; round < 2; round++) {
    /* round 1: the lane refuses the second size */
    f.log.fail_width = round ? widths[1] : 0;
    for (int i = 0; i < N; i++)
      for (int m = 0; m < 2; m++) {
        g_autoptr (GError) error = NULL;
        inputs[m][i] = input_of (100 * round + 10 * m + i, widths[m], H);
        frames[m][i] = hfam_batch_group_submit (g[m], &g[m], inputs[m][i], widths[m], H,
                                                FALSE, &error);
        g_assert_no_error (error);
        /* (at most two frames in flight a member, as a context keeps them) */
        if (i >= 1) {
          if (round && m == 1) {
            HfamOutputs out = { 0 };
            g_autoptr (GError) refused = NULL;
            g_assert_false (hfam_batch_group_collect (g[m], frames[m][i - 1], &out, &refused));
            g_assert_error (refused, HFAM_ERROR, HFAM_ERROR_BACKEND);
            g_assert_nonnull (strstr (refused->message, "width 96 refused"));
          } else {
            expect_alpha (&f, g[m], frames[m][i - 1], inputs[m][i - 1], widths[m], H);
          }
          g_free (inputs[m][i - 1]);
        }
      }
    for (int m = 0; m < 2; m++) {
      if (round && m == 1) {
        HfamOutputs out = { 0 };
        g_assert_false (hfam_batch_group_collect (g[m], frames[m][N - 1], &out, NULL));
      } else {
        expect_alpha (&f, g[m], frames[m][N - 1], inputs[m][N - 1], widths[m], H);
      }
      g_free (inputs[m][N - 1]);
    }
  }
  for (int m = 0; m < 2; m++)
    hfam_batch_group_leave (&f.groups, g[m], 2);
  fixture_clear (&f);
}

/* Holds the lanes' collects (and batch_done says no) while `hold`. */
static void
hold_collects (TestLaneLog *log, gboolean hold)
{
  g_mutex_lock (&log->gate_lock);
  log->hold = hold;
  g_cond_broadcast (&log->gate);
  g_mutex_unlock (&log->gate_lock);
}

/* A W x H frame of input `seed` (in *input) submitted by the group's one member, alpha_p alone
 * wanted. */
static HfamBatchFrame *
submit_own (HfamBatchGroup *g, float **input, int seed)
{
  g_autoptr (GError) error = NULL;
  HfamBatchFrame *frame;

  *input = input_of (seed, W, H);
  frame = hfam_batch_group_submit (g, g, *input, W, H, TRUE, &error);
  g_assert_no_error (error);
  return frame;
}

typedef struct {
  Fixture *f;
  HfamBatchGroup *g;
} Joiner;

static gpointer
join_thread (gpointer data)
{
  Joiner *joiner = data;
  joiner->g = join (joiner->f, 2, 0);
  return NULL;
}

/* Waits (a few seconds at most) until the atomic `value` is `want`. */
static void
wait_for (int *value, int want)
{
  for (int i = 0; i < 5000 && g_atomic_int_get (value) != want; i++)
    g_usleep (1000);
  g_assert_cmpint (g_atomic_int_get (value), ==, want);
}

/* A member's lane holds two frames in flight, its collect held back, two more ready behind
 * them; a second member joins, which replaces the lane. The old lane runs its two frames
 * alone, and the new one (batches of two) the two ready ones. */
static void
test_replaced_lane (void)
{
  Fixture f;
  HfamBatchGroup *g;
  HfamBatchFrame *frames[4];
  float *inputs[4];
  Joiner joiner = { &f, NULL };
  GThread *thread;

  fixture_init (&f);
  g = join (&f, 2, 0);
  hold_collects (&f.log, TRUE);
  for (int i = 0; i < 4; i++) {
    frames[i] = submit_own (g, &inputs[i], 200 + i);
    /* the first two in flight on the lane before the others are ready */
    if (i == 1)
      wait_for (&f.log.queued, 2);
  }
  thread = g_thread_new ("join", join_thread, &joiner);
  wait_for (&f.log.made, 2);
  /* (join stops the old lane right after making the new one) */
  g_usleep (300 * 1000);
  hold_collects (&f.log, FALSE);
  g_thread_join (thread);
  g_assert_true (joiner.g == g);
  for (int i = 0; i < 4; i++) {
    expect_alpha (&f, g, frames[i], inputs[i], W, H);
    g_free (inputs[i]);
  }
  g_assert_cmpint (g_atomic_int_get (&f.log.first_lane), ==, 2);
  /* the join's lane was planned while the old one ran */
  g_assert_cmpint (f.log.most_live_at_plan, ==, 2);
  g_assert_cmpint (f.log.batch, ==, 2);
  g_assert_cmpint (f.log.largest, ==, 2);
  hfam_batch_group_leave (&f.groups, g, 2);
  hfam_batch_group_leave (&f.groups, joiner.g, 2);
  fixture_clear (&f);
}

/* A member alone at depth 2: its first frame in flight and not finished, the lane queues the
 * second beside it (two batches in flight) instead of waiting for the first. */
static void
test_second_batch_beside (void)
{
  Fixture f;
  HfamBatchGroup *g;
  HfamBatchFrame *frames[2];
  float *inputs[2];

  fixture_init (&f);
  g = join (&f, 2, 0);
  hold_collects (&f.log, TRUE);
  for (int i = 0; i < 2; i++) {
    frames[i] = submit_own (g, &inputs[i], 300 + i);
    wait_for (&f.log.queued, i + 1);
  }
  g_assert_cmpint (f.log.most_in_flight, ==, 2);
  hold_collects (&f.log, FALSE);
  for (int i = 0; i < 2; i++) {
    expect_alpha (&f, g, frames[i], inputs[i], W, H);
    g_free (inputs[i]);
  }
  hfam_batch_group_leave (&f.groups, g, 2);
  fixture_clear (&f);
}

/* Three members, two rounds: members 0 and 1 submit device frames, member 2 a host frame of
 * the same size. The device frames run in batches of their own (lane_queue_device_batch
 * checks each slice's input), the host frames in theirs; each alpha_p is its input's, in its
 * slice once collected. */
static void
test_device_frames (void)
{
  Fixture f;
  HfamBatchGroup *g[3];
  HfamBatchFrame *frames[3][2];
  float *inputs[3][2], *alphas[2][2];
  const size_t plane = (size_t) W * H;

  fixture_init (&f);
  for (int m = 0; m < 3; m++)
    g[m] = join (&f, 3, 60 * G_USEC_PER_SEC);
  for (int r = 0; r < 2; r++)
    for (int m = 0; m < 3; m++) {
      g_autoptr (GError) error = NULL;
      inputs[m][r] = input_of (400 + 10 * m + r, W, H);
      if (m < 2) {
        const HfamDeviceSlice slice = {
          .input = inputs[m][r], .input_bytes = sizeof (float) * 3 * plane,
          .alpha = alphas[m][r] = g_new0 (float, plane),
        };
        frames[m][r] = hfam_batch_group_submit_device (g[m], &g[m], &slice, W, H);
      } else {
        frames[m][r] = hfam_batch_group_submit (g[m], &g[m], inputs[m][r], W, H, TRUE,
                                                &error);
        g_assert_no_error (error);
      }
    }
  for (int r = 0; r < 2; r++)
    for (int m = 0; m < 3; m++) {
      g_autoptr (GError) error = NULL;
      g_autofree float *want = alpha_alone (&f, inputs[m][r], W, H);
      if (m == 2) {
        expect_alpha (&f, g[m], frames[m][r], inputs[m][r], W, H);
      } else {
        g_assert_true (hfam_batch_group_collect (g[m], frames[m][r], NULL, &error));
        g_assert_no_error (error);
        g_assert_cmpfloat (max_abs_diff (alphas[m][r], want, plane), ==, 0.0);
        g_free (alphas[m][r]);
      }
    }
  /* (the first batch holds both members' first device frames: the runner waits for all
   * three members; later ones may take a member's two frames together) */
  g_assert_cmpint (f.log.device_frames, ==, 4);
  g_assert_cmpint (f.log.largest_device, >=, 2);
  g_assert_cmpint (f.log.queued, ==, 6);
  for (int m = 0; m < 3; m++)
    hfam_batch_group_leave (&f.groups, g[m], 2);
  for (int r = 0; r < 2; r++)
    for (int m = 0; m < 3; m++)
      g_free (inputs[m][r]);
  fixture_clear (&f);
}

int
main (int argc, char **argv)
{
  engine_test_init (&argc, &argv);
  g_test_add_func ("/batch-lanes/batches", test_batches);
  g_test_add_func ("/batch-lanes/sizes-and-failures", test_sizes_and_failures);
  g_test_add_func ("/batch-lanes/replaced-lane", test_replaced_lane);
  g_test_add_func ("/batch-lanes/second-batch-beside", test_second_batch_beside);
  g_test_add_func ("/batch-lanes/device-frames", test_device_frames);
  return g_test_run ();
}
