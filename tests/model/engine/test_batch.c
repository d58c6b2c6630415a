/* Batch groups (HfamOptions.max_batch): contexts of one model with the same settings run their
 * frames on one backend, in batches of the frames submitted together, each frame's matte the
 * one a context of its own makes; a batch waits for the members without a frame queued only
 * up to the time-out, and a member alone not at all.
 * Usage: test-batch GOLDEN_DIR */
#include "engine-test.h"
#include "hfam-internal.h"

#include <string.h>

#define N_FRAMES 4
#define LONG_TIMEOUT_US (60 * G_USEC_PER_SEC)

static HfamModel *
load_model (void)
{
  g_autofree char *path = golden_path ("r18_64x64", ".safetensors");
  g_autoptr (GError) error = NULL;
  HfamModel *model = hfam_model_load (path, &error);

  g_assert_no_error (error);
  return model;
}

static HfamContext *
member (HfamModel *model, int max_batch, gint64 timeout_us, int pipeline_depth)
{
  const HfamOptions options = {
    .backend = HFAM_BACKEND_CPU, .precision = HFAM_PRECISION_FP32, .n_threads = 2,
    .pipeline_depth = pipeline_depth, .max_batch = max_batch,
    .batch_timeout_us = (int) MIN (timeout_us, G_MAXINT),
  };
  g_autoptr (GError) error = NULL;
  HfamContext *ctx = hfam_context_new (model, &options, NULL, &error);

  g_assert_no_error (error);
  g_assert_cmpint (hfam_context_max_batch (ctx), ==, MAX (max_batch, 1));
  return ctx;
}

static HfamBatchCounts
counts_of (HfamContext *ctx)
{
  HfamBatchCounts counts;

  g_assert_true (hfam_context_batch_counts (ctx, &counts));
  return counts;
}

/* The matte of the frame of `seed` at `long_side`, run alone on ctx. */
static gboolean
run_seed (HfamContext *ctx, int seed, int long_side, float *alpha, GError **error)
{
  g_autofree guint8 *pixels = g_malloc ((size_t) PIPE_W * PIPE_H * 4);
  const HfamImage frame = packed_image (pixels, PIPE_W, PIPE_H, 4, HFAM_FORMAT_RGBA);
  const HfamImage matte = float_matte (alpha, PIPE_W, PIPE_H);
  const HfamFrameParams params = { .long_side = long_side };

  fill_frame (pixels, seed);
  return hfam_context_run (ctx, &frame, &params, &matte, 1, error);
}

/* What a context of its own makes of seed's frame (on one thread: a lane of the groups here
 * has one or two, which make the same mattes within expect_same_matte's 1e-6). */
static float *
private_matte (HfamModel *model, int seed, int long_side)
{
  const HfamOptions options = {
    .backend = HFAM_BACKEND_CPU, .precision = HFAM_PRECISION_FP32, .n_threads = 1,
  };
  g_autoptr (GError) error = NULL;
  g_autoptr (HfamContext) ctx = hfam_context_new (model, &options, NULL, &error);
  float *alpha = g_new (float, PIPE_W * PIPE_H);

  g_assert_no_error (error);
  g_assert_true (run_seed (ctx, seed, long_side, alpha, &error));
  g_assert_no_error (error);
  return alpha;
}

/* Runs seed's frame at long side 64 on ctx and expects `want`. */
static void
expect_run (HfamContext *ctx, int seed, const float *want)
{
  g_autofree float *alpha = g_new (float, PIPE_W * PIPE_H);
  g_autoptr (GError) error = NULL;

  g_assert_true (run_seed (ctx, seed, 64, alpha, &error));
  g_assert_no_error (error);
  expect_same_matte (alpha, want);
}

/* A stream: its member runs the frames of its seeds, then leaves the group when `leave`. */
typedef struct {
  HfamContext *ctx;
  int first_seed, n_frames, long_side;
  gboolean leave;
  float *mattes;  /* n_frames */
  GError *error;
} Stream;

static gpointer
run_stream (gpointer data)
{
  Stream *s = data;

  for (int i = 0; i < s->n_frames && !s->error; i++)
    run_seed (s->ctx, s->first_seed + i, s->long_side, s->mattes + (size_t) i * PIPE_W * PIPE_H,
              &s->error);
  if (s->leave)
    g_clear_pointer (&s->ctx, hfam_context_free);
  return NULL;
}

/* Runs the streams at once, each on a thread of its own. */
static void
run_streams (Stream *streams, int n)
{
  GThread *threads[8];

  for (int k = 0; k < n; k++) {
    streams[k].mattes = g_new (float, (size_t) streams[k].n_frames * PIPE_W * PIPE_H);
    threads[k] = g_thread_new ("stream", run_stream, &streams[k]);
  }
  for (int k = 0; k < n; k++) {
    g_thread_join (threads[k]);
    g_assert_no_error (streams[k].error);
  }
}

static void
expect_private_mattes (HfamModel *model, const Stream *s)
{
  for (int i = 0; i < s->n_frames; i++) {
    g_autofree float *want = private_matte (model, s->first_seed + i, s->long_side);
    expect_same_matte (s->mattes + (size_t) i * PIPE_W * PIPE_H, want);
  }
}

/* Three streams that each wait for their frame: every batch takes one frame of each, runs
 * them on its two lanes, and each matte is the one a context of its own makes. */
static void
test_streams_batched (void)
{
  g_autoptr (HfamModel) model = load_model ();
  Stream streams[3];
  HfamBatchCounts counts;

  for (int k = 0; k < 3; k++)
    streams[k] = (Stream) { .ctx = member (model, 3, LONG_TIMEOUT_US, 1),
                            .first_seed = 10 * k, .n_frames = N_FRAMES, .long_side = 64 };
  run_streams (streams, 3);
  counts = counts_of (streams[0].ctx);
  g_assert_cmpint (counts.members, ==, 3);
  g_assert_cmpint (counts.lanes, ==, 2);
  g_assert_cmpuint (counts.frames, ==, 3 * N_FRAMES);
  g_assert_cmpuint (counts.batches, ==, N_FRAMES);
  g_assert_cmpint (counts.largest, ==, 3);
  for (int k = 0; k < 3; k++) {
    expect_private_mattes (model, &streams[k]);
    hfam_context_free (streams[k].ctx);
    g_free (streams[k].mattes);
  }
}

/* max_batch caps a batch: four frames from four members, two by two, whichever come
 * together (a batch waits for two; the members served leave, so that none waits for them).
 * The lanes follow the members: one for one member, two (the threads) for more. */
static void
test_max_batch (void)
{
  g_autoptr (HfamModel) model = load_model ();
  g_autoptr (HfamContext) watcher = member (model, 2, LONG_TIMEOUT_US, 1);
  g_autofree float *want = private_matte (model, 3, 64);
  Stream streams[3];
  GThread *threads[3];
  HfamBatchCounts counts;

  /* a member alone has one lane, with all the threads */
  g_assert_cmpint (counts_of (watcher).lanes, ==, 1);
  for (int k = 0; k < 3; k++) {
    streams[k] = (Stream) { .ctx = member (model, 2, LONG_TIMEOUT_US, 1), .first_seed = k,
                            .n_frames = 1, .long_side = 64, .leave = TRUE };
    streams[k].mattes = g_new (float, PIPE_W * PIPE_H);
  }
  counts = counts_of (watcher);
  g_assert_cmpint (counts.members, ==, 4);
  g_assert_cmpint (counts.lanes, ==, 2);
  {
    /* a context of another max_batch is in a group of its own */
    g_autoptr (HfamContext) other = member (model, 3, LONG_TIMEOUT_US, 1);
    g_assert_cmpint (counts_of (other).members, ==, 1);
  }
  for (int k = 0; k < 3; k++)
    threads[k] = g_thread_new ("stream", run_stream, &streams[k]);
  expect_run (watcher, 3, want);
  for (int k = 0; k < 3; k++) {
    g_thread_join (threads[k]);
    g_assert_no_error (streams[k].error);
    expect_private_mattes (model, &streams[k]);
    g_free (streams[k].mattes);
  }
  counts = counts_of (watcher);
  g_assert_cmpint (counts.members, ==, 1);
  g_assert_cmpint (counts.lanes, ==, 1);
  g_assert_cmpuint (counts.frames, ==, 4);
  g_assert_cmpuint (counts.batches, ==, 2);
  g_assert_cmpint (counts.largest, ==, 2);
}

/* A member alone never waits, whatever the time-out; with another member that submits
 * nothing, a batch waits the time-out and then runs what it has. */
static void
test_time_out (void)
{
  g_autoptr (HfamModel) model = load_model ();
  g_autoptr (HfamContext) alone = member (model, 4, LONG_TIMEOUT_US, 1);
  g_autofree float *want = private_matte (model, 5, 64);
  gint64 start = g_get_monotonic_time ();
  HfamBatchCounts counts;

  for (int i = 0; i < N_FRAMES; i++)
    expect_run (alone, 5, want);
  /* (far below the time-out: it did not wait) */
  g_assert_cmpint (g_get_monotonic_time () - start, <, LONG_TIMEOUT_US / 2);
  counts = counts_of (alone);
  g_assert_cmpuint (counts.batches, ==, N_FRAMES);
  g_assert_cmpint (counts.largest, ==, 1);
  {
    const gint64 timeout_us = 200 * 1000;
    g_autoptr (HfamContext) busy = member (model, 4, timeout_us, 1);
    g_autoptr (HfamContext) idle = member (model, 4, timeout_us, 1);

    start = g_get_monotonic_time ();
    expect_run (busy, 5, want);
    g_assert_cmpint (g_get_monotonic_time () - start, >=, timeout_us);
    counts = counts_of (busy);
    g_assert_cmpuint (counts.frames, ==, 1);
    g_assert_cmpint (counts.largest, ==, 1);
  }
}

/* Frames of different inference sizes run in different batches, each at its size, and
 * pipelined members (depth 2) get their frames back in order. (A short time-out: the last
 * frame of the stream that ends later waits it out for the other.) */
static void
test_sizes_and_depth (void)
{
  const gint64 timeout_us = 100 * 1000;
  g_autoptr (HfamModel) model = load_model ();
  Stream streams[2] = {
    { .ctx = member (model, 2, timeout_us, 2), .first_seed = 1, .n_frames = N_FRAMES,
      .long_side = 64 },
    { .ctx = member (model, 2, timeout_us, 2), .first_seed = 7, .n_frames = N_FRAMES,
      .long_side = 96 },
  };
  g_autoptr (GError) error = NULL;
  g_autofree guint8 *pixels = g_malloc ((size_t) PIPE_W * PIPE_H * 4);
  const HfamImage frame = packed_image (pixels, PIPE_W, PIPE_H, 4, HFAM_FORMAT_RGBA);
  float *alpha[2];
  HfamBatchCounts counts;

  run_streams (streams, 2);
  counts = counts_of (streams[0].ctx);
  g_assert_cmpuint (counts.frames, ==, 2 * N_FRAMES);
  g_assert_cmpint (counts.largest, ==, 1);
  for (int k = 0; k < 2; k++)
    expect_private_mattes (model, &streams[k]);
  /* two frames in flight on one member, the second collected after the first; a member
   * alone at depth 2 has a lane (one thread) for each of its frames */
  g_assert_cmpint (hfam_context_pipeline_depth (streams[0].ctx), ==, 2);
  hfam_context_free (streams[1].ctx);
  g_assert_cmpint (counts_of (streams[0].ctx).lanes, ==, 2);
  for (int i = 0; i < 2; i++) {
    const HfamFrameParams params = { .long_side = 64 };
    fill_frame (pixels, 20 + i);
    g_assert_true (hfam_context_submit (streams[0].ctx, &frame, &params, &error));
    g_assert_no_error (error);
  }
  for (int i = 0; i < 2; i++) {
    g_autofree float *want = private_matte (model, 20 + i, 64);
    const HfamImage matte = float_matte (alpha[i] = g_new (float, PIPE_W * PIPE_H), PIPE_W,
                                         PIPE_H);
    fill_frame (pixels, 20 + i);
    g_assert_true (hfam_context_collect (streams[0].ctx, &frame, &matte, 1, &error));
    g_assert_no_error (error);
    expect_same_matte (alpha[i], want);
    g_free (alpha[i]);
  }
  /* and a member freed with frames in flight finishes them first */
  g_assert_true (hfam_context_submit (streams[0].ctx, &frame, NULL, &error));
  g_assert_no_error (error);
  hfam_context_free (streams[0].ctx);
  for (int k = 0; k < 2; k++)
    g_free (streams[k].mattes);
}

/* Members joining and leaving while others stream (the lanes made again each time): every
 * frame still gets its own matte. */
static void
test_join_and_leave (void)
{
  const gint64 timeout_us = 50 * 1000;
  g_autoptr (HfamModel) model = load_model ();
  Stream streams[3];
  GThread *threads[3];

  for (int k = 0; k < 3; k++) {
    streams[k] = (Stream) { .ctx = member (model, 4, timeout_us, 1 + k % 2),
                            .first_seed = 30 + 10 * k, .n_frames = 2 + 2 * k,
                            .long_side = 64, .leave = TRUE };
    streams[k].mattes = g_new (float, (size_t) streams[k].n_frames * PIPE_W * PIPE_H);
    threads[k] = g_thread_new ("stream", run_stream, &streams[k]);
  }
  for (int i = 0; i < 5; i++)
    hfam_context_free (member (model, 4, timeout_us, 1));
  for (int k = 0; k < 3; k++) {
    g_thread_join (threads[k]);
    g_assert_no_error (streams[k].error);
    expect_private_mattes (model, &streams[k]);
    g_free (streams[k].mattes);
  }
}

/* A frame the group's memory budget refuses fails for its member alone: the other member's
 * frames run, and the member runs a smaller frame next. */
static void
test_budget (void)
{
  g_autoptr (HfamModel) model = load_model ();
  const HfamOptions options = {
    .backend = HFAM_BACKEND_CPU, .precision = HFAM_PRECISION_FP32, .n_threads = 2,
    .max_batch = 2, .memory_budget = 64 << 20,
  };
  g_autoptr (GError) error = NULL;
  g_autoptr (HfamContext) a = hfam_context_new (model, &options, NULL, &error);
  g_autoptr (HfamContext) b = hfam_context_new (model, &options, NULL, &error);
  g_autofree float *alpha = g_new (float, PIPE_W * PIPE_H);
  g_autofree float *want = private_matte (model, 2, 64);

  g_assert_no_error (error);
  g_assert_false (run_seed (a, 2, 1024, alpha, &error));
  g_assert_error (error, HFAM_ERROR, HFAM_ERROR_BUDGET);
  g_test_message ("%s", error->message);
  g_clear_error (&error);
  expect_run (b, 2, want);
  expect_run (a, 2, want);
}

/* Options out of range are refused; a max_batch of 1 (or 0) is no group. */
static void
test_options (void)
{
  g_autoptr (HfamModel) model = load_model ();
  HfamOptions options = { .backend = HFAM_BACKEND_CPU, .max_batch = 65 };
  g_autoptr (GError) error = NULL;
  g_autoptr (HfamContext) plain = NULL;
  HfamBatchCounts counts;

  g_assert_null (hfam_context_new (model, &options, NULL, &error));
  g_assert_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT);
  g_clear_error (&error);
  options.max_batch = 2;
  options.batch_timeout_us = -1;
  g_assert_null (hfam_context_new (model, &options, NULL, &error));
  g_assert_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT);
  g_clear_error (&error);
  options.max_batch = 1;
  options.batch_timeout_us = 0;
  plain = hfam_context_new (model, &options, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (hfam_context_max_batch (plain), ==, 1);
  g_assert_false (hfam_context_batch_counts (plain, &counts));
  /* (the CPU backend takes host frames only, grouped or not) */
  g_assert_false (hfam_context_device_frames (plain));
}

int
main (int argc, char **argv)
{
  engine_test_init (&argc, &argv);
  g_test_add_func ("/batch/streams-batched", test_streams_batched);
  g_test_add_func ("/batch/max-batch", test_max_batch);
  g_test_add_func ("/batch/time-out", test_time_out);
  g_test_add_func ("/batch/sizes-and-depth", test_sizes_and_depth);
  g_test_add_func ("/batch/join-and-leave", test_join_and_leave);
  g_test_add_func ("/batch/budget", test_budget);
  g_test_add_func ("/batch/options", test_options);
  return g_test_run ();
}
