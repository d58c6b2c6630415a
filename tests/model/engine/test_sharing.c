/* One model for many streams: hfam_model_load_shared gives every caller naming the same file
 * the same model, and the CPU backends of a model's contexts hold each layout of its weights
 * once, made by the first plan that asks for it and freed with the last context using it,
 * with the mattes of a private context.
 * Usage: test-sharing GOLDEN_DIR */
#include "hfam-internal.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#define W 150
#define H 90
#define N_THREADS 4

static const char *golden_dir;

static char *
golden_model (void)
{
  return g_build_filename (golden_dir, "r50_160x96.safetensors", NULL);
}

static HfamContext *
cpu_context (HfamModel *model)
{
  const HfamOptions options = { .backend = HFAM_BACKEND_CPU, .n_threads = 1 };
  g_autoptr (GError) error = NULL;
  HfamContext *ctx = hfam_context_new (model, &options, NULL, &error);

  g_assert_no_error (error);
  return ctx;
}

/* The matte of a fixed picture at `long_side`, into alpha (W x H). */
static void
run_frame (HfamContext *ctx, int long_side, float *alpha)
{
  g_autofree guint8 *pixels = g_malloc ((size_t) W * H * 4);
  const HfamFrameParams params = { .long_side = long_side };
  const HfamImage frame = {
    .planes = { pixels }, .strides = { 4 * W }, .width = W, .height = H,
    .format = HFAM_FORMAT_RGBA,
  };
  const HfamImage matte = {
    .planes = { (guint8 *) alpha }, .strides = { (int) sizeof (float) * W }, .width = W,
    .height = H, .format = HFAM_FORMAT_GRAY32F,
  };
  g_autoptr (GError) error = NULL;

  for (size_t i = 0; i < (size_t) W * H * 4; i++)
    pixels[i] = (guint8) ((i * 37) ^ (i / (4 * W)) * 11);
  g_assert_true (hfam_context_run (ctx, &frame, &params, &matte, 1, &error));
  g_assert_no_error (error);
}

static void
assert_same_matte (const float *a, const float *b)
{
  g_assert_cmpmem (a, sizeof (float) * W * H, b, sizeof (float) * W * H);
}

/* The same file gives the same model; another file, a private load or the file rewritten
 * give another. */
static void
test_same_file (void)
{
  g_autofree char *path = golden_model ();
  g_autofree char *copy = g_build_filename (g_get_tmp_dir (), "hfam-sharing-XXXXXX", NULL);
  g_autofree char *contents = NULL;
  g_autoptr (GError) error = NULL;
  HfamModel *first, *again, *other, *private_model, *rewritten;
  gsize length;
  int fd;

  first = hfam_model_load_shared (path, &error);
  g_assert_no_error (error);
  again = hfam_model_load_shared (path, &error);
  g_assert_no_error (error);
  g_assert_true (first == again);
  private_model = hfam_model_load (path, &error);
  g_assert_no_error (error);
  g_assert_true (private_model != first);

  g_assert_true (g_file_get_contents (path, &contents, &length, &error));
  fd = g_mkstemp (copy);
  g_assert_cmpint (fd, >=, 0);
  close (fd);
  g_assert_true (g_file_set_contents (copy, contents, length, &error));
  other = hfam_model_load_shared (copy, &error);
  g_assert_no_error (error);
  g_assert_true (other != first);
  /* a new file in its place (g_file_set_contents renames one over it) is another model;
   * the old one stays whole for whoever holds it */
  g_assert_true (g_file_set_contents (copy, contents, length, &error));
  rewritten = hfam_model_load_shared (copy, &error);
  g_assert_no_error (error);
  g_assert_true (rewritten != other);
  g_assert_cmpint (hfam_model_inference_size (other), ==, hfam_model_inference_size (first));

  hfam_model_free (rewritten);
  hfam_model_free (other);
  hfam_model_free (private_model);
  hfam_model_free (again);
  /* one holder left: the next load finds it */
  again = hfam_model_load_shared (path, &error);
  g_assert_true (again == first);
  hfam_model_free (again);
  hfam_model_free (first);
  g_unlink (copy);

  /* a file that is not there: hfam_model_load's error */
  g_assert_null (hfam_model_load_shared ("/nonexistent/model.safetensors", &error));
  g_assert_error (error, HFAM_ERROR, HFAM_ERROR_IO);
  g_assert_nonnull (strstr (error->message, "/nonexistent/model.safetensors"));
}

/* Two contexts on one model hold its weights once and matte as a context of its own does;
 * the weights go with the last context using them. */
static void
test_weights_once (void)
{
  g_autofree char *path = golden_model ();
  g_autoptr (GError) error = NULL;
  g_autofree float *alone = g_new (float, W * H), *first = g_new (float, W * H),
                   *second = g_new (float, W * H);
  HfamModel *model = hfam_model_load_shared (path, &error), *private_model;
  HfamContext *a, *b, *own;
  guint64 once;

  g_assert_no_error (error);
  private_model = hfam_model_load (path, &error);
  g_assert_no_error (error);
  own = cpu_context (private_model);
  run_frame (own, 160, alone);

  a = cpu_context (model);
  g_assert_cmpuint (hfam_model_cpu_weight_bytes (model), ==, 0);
  run_frame (a, 160, first);
  once = hfam_model_cpu_weight_bytes (model);
  g_assert_cmpuint (once, >, 0);
  g_assert_cmpuint (once, ==, hfam_model_cpu_weight_bytes (private_model));
  b = cpu_context (model);
  run_frame (b, 160, second);
  g_assert_cmpuint (hfam_model_cpu_weight_bytes (model), ==, once);
  assert_same_matte (first, alone);
  assert_same_matte (second, alone);

  /* b alone holds them now, and still runs */
  hfam_context_free (a);
  g_assert_cmpuint (hfam_model_cpu_weight_bytes (model), ==, once);
  run_frame (b, 160, second);
  assert_same_matte (second, alone);
  hfam_context_free (b);
  g_assert_cmpuint (hfam_model_cpu_weight_bytes (model), ==, 0);

  /* a context keeps its model: freeing the caller's reference first is allowed */
  a = cpu_context (model);
  hfam_model_free (model);
  run_frame (a, 160, first);
  assert_same_matte (first, alone);
  hfam_context_free (a);
  hfam_context_free (own);
  hfam_model_free (private_model);
}

typedef struct {
  HfamModel *model;
  float *alpha;
  guint64 weight_bytes;  /* the model's, once every stream has planned */
} Stream;

static GMutex streams_lock;
static GCond streams_cond;
static int n_arrived;

/* Returns once all N_THREADS streams have called it `round` times. */
static void
wait_for_streams (int round)
{
  g_mutex_lock (&streams_lock);
  n_arrived++;
  g_cond_broadcast (&streams_cond);
  while (n_arrived < round * N_THREADS)
    g_cond_wait (&streams_cond, &streams_lock);
  g_mutex_unlock (&streams_lock);
}

/* One stream: a context of its own on the shared model, planned while the others plan. */
static gpointer
stream_main (gpointer data)
{
  Stream *stream = data;
  HfamContext *ctx = cpu_context (stream->model);

  wait_for_streams (1);
  run_frame (ctx, 160, stream->alpha);
  wait_for_streams (2);
  stream->weight_bytes = hfam_model_cpu_weight_bytes (stream->model);
  run_frame (ctx, 160, stream->alpha);
  wait_for_streams (3);
  hfam_context_free (ctx);
  return NULL;
}

/* Streams planning together on threads of their own hold each layout of the weights once,
 * as one context does, and matte alike. */
static void
test_streams_at_once (void)
{
  g_autofree char *path = golden_model ();
  g_autoptr (GError) error = NULL;
  g_autofree float *alone = g_new (float, W * H);
  HfamModel *model = hfam_model_load_shared (path, &error);
  HfamContext *own = cpu_context (model);
  Stream streams[N_THREADS];
  GThread *threads[N_THREADS];
  guint64 once;

  g_assert_no_error (error);
  run_frame (own, 160, alone);
  once = hfam_model_cpu_weight_bytes (model);
  hfam_context_free (own);
  for (int i = 0; i < N_THREADS; i++) {
    streams[i] = (Stream) { .alpha = g_new (float, W * H) };
    streams[i].model = hfam_model_load_shared (path, &error);
    g_assert_no_error (error);
    g_assert_true (streams[i].model == model);
    threads[i] = g_thread_new ("stream", stream_main, &streams[i]);
  }
  for (int i = 0; i < N_THREADS; i++) {
    g_thread_join (threads[i]);
    assert_same_matte (streams[i].alpha, alone);
    g_assert_cmpuint (streams[i].weight_bytes, ==, once);
    g_free (streams[i].alpha);
    hfam_model_free (streams[i].model);
  }
  g_assert_cmpuint (hfam_model_cpu_weight_bytes (model), ==, 0);
  hfam_model_free (model);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  if (argc < 2)
    g_error ("usage: test-sharing GOLDEN_DIR");
  golden_dir = argv[1];
  g_test_add_func ("/sharing/same-file", test_same_file);
  g_test_add_func ("/sharing/weights-once", test_weights_once);
  g_test_add_func ("/sharing/streams-at-once", test_streams_at_once);
  return g_test_run ();
}
