/* The engine against the PyTorch reference's golden vectors (model/python/reference/golden.py),
 * model-level rejection of inconsistent weight files, frames of awkward sizes, and the graph's
 * cross-lane order (which only a GPU would otherwise exercise).
 * Usage: test-engine GOLDEN_DIR [CASE...]   (CASE: NAME for NAME.safetensors and
 * NAME.golden.safetensors in GOLDEN_DIR; default: the cases of model/python/reference/golden.py) */
#include "context.h"
#include "engine-test.h"
#include "foreground.h"
#include "graph.h"
#include "hfam-internal.h"
#include "heads.h"
#include "hparams.h"
#include "proc-status.h"
#include "refine.h"
#include "safetensors.h"
#include "temporal.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <oneapi/dnnl/dnnl.h>
#include <math.h>
#include <string.h>

/* how far the engine's class probabilities may lie from the reference's */
#define P_S_TOLERANCE 1e-4

static const char *const cases[] = {
  "tiny_64x64", "tiny_f16_64x64", "r18_i8_64x64", "r18_64x64", "r18_160x96", "r50_64x64",
  "r50_160x96", "r50_256x256", "r50_512x416",
};

static float *
golden_tensor (HfamSafetensors *st, const char *name, size_t *n)
{
  const HfamStTensor *t = hfam_st_find (st, name);
  float *out;
  g_assert_nonnull (t);
  *n = t->n_bytes / sizeof (float);
  out = g_new (float, *n);
  hfam_st_to_f32 (t, out);
  return out;
}

/* ---- libhfam's public API, shortened for these tests ---- */

static gboolean
run_smoothed (HfamContext *ctx, const HfamImage *frame, int long_side, float smoothing,
              float *alpha, GError **error)
{
  const HfamFrameParams params = { .long_side = long_side, .smoothing = smoothing };
  const HfamImage matte = float_matte (alpha, frame->width, frame->height);

  return hfam_context_run (ctx, frame, &params, &matte, 1, error);
}

static gboolean
run_matte (HfamContext *ctx, const HfamImage *frame, int long_side, float *alpha,
           GError **error)
{
  return run_smoothed (ctx, frame, long_side, 0.0f, alpha, error);
}

static gboolean
submit_frame (HfamContext *ctx, const HfamImage *frame, int long_side, GError **error)
{
  const HfamFrameParams params = { .long_side = long_side };

  return hfam_context_submit (ctx, frame, &params, error);
}

static gboolean
collect_matte (HfamContext *ctx, float *alpha, int w, int h, GError **error)
{
  const HfamImage matte = float_matte (alpha, w, h);

  return hfam_context_collect (ctx, NULL, &matte, 1, error);
}

static void
test_golden (gconstpointer data)
{
  const char *name = data;
  g_autofree char *model_path = golden_path (name, ".safetensors");
  g_autofree char *golden = golden_path (name, ".golden.safetensors");
  g_autoptr (GError) error = NULL;
  HfamSafetensors *st = hfam_st_open (golden, &error);
  HfamModel *model;
  HfamContext *ctx;
  const HfamStTensor *input;
  g_autofree float *in = NULL, *sem = NULL, *det = NULL, *fus = NULL, *margin = NULL;
  g_autofree float *out_sem = NULL, *out_det = NULL, *out_fus = NULL;
  size_t n, plane;
  int w, h, mismatched = 0;

  g_assert_no_error (error);
  model = hfam_model_load (model_path, &error);
  g_assert_no_error (error);
  ctx = cpu_context (model, 1, &error);
  g_assert_no_error (error);

  input = hfam_st_find (st, "input");
  h = (int) input->shape[2];
  w = (int) input->shape[3];
  plane = (size_t) w * h;
  in = golden_tensor (st, "input", &n);
  sem = golden_tensor (st, "semantic", &n);
  det = golden_tensor (st, "detail", &n);
  fus = golden_tensor (st, "fused", &n);
  margin = golden_tensor (st, "margin", &n);
  out_sem = g_new (float, 3 * plane);
  out_det = g_new (float, plane);
  out_fus = g_new (float, plane);

  /* twice: the second run reuses the plan and must give the same answer */
  for (int pass = 0; pass < 2; pass++) {
    HfamOutputs out = { out_sem, out_det, out_fus };
    double e_sem, e_det, e_fus = 0.0;
    g_assert_true (hfam_context_run_tensor (ctx, in, w, h, &out, &error));
    g_assert_no_error (error);
    e_sem = max_abs_diff (out_sem, sem, 3 * plane);
    e_det = max_abs_diff (out_det, det, plane);
    mismatched = 0;
    for (size_t i = 0; i < plane; i++) {
      if (margin[i] < P_S_TOLERANCE)
        continue;  /* the reference's top two classes tie within P_s's tolerance: either
                    * answer is right */
      if (hfam_semantic_class (out_sem, plane, i) != hfam_semantic_class (sem, plane, i))
        mismatched++;
      e_fus = MAX (e_fus, fabs ((double) out_fus[i] - fus[i]));
    }
    g_test_message ("%s pass %d: max abs error P_s %.2e alpha_d %.2e alpha_p %.2e, "
                    "%d argmax mismatches", name, pass, e_sem, e_det, e_fus, mismatched);
    g_assert_cmpfloat (e_sem, <=, P_S_TOLERANCE);
    g_assert_cmpfloat (e_det, <=, 1e-4);
    g_assert_cmpfloat (e_fus, <=, 1e-4);
    g_assert_cmpint (mismatched, ==, 0);
  }

  /* the frame path: at its own size the resize is the identity, so the matte of the 8-bit
   * image equals the golden alpha_p (but for the ties above) */
  {
    const HfamStTensor *image = hfam_st_find (st, "image");
    const HfamImage frame = packed_image ((guint8 *) image->data, w, h, 3, HFAM_FORMAT_RGB);
    g_autofree float *alpha = g_new (float, plane);
    double e_alpha = 0.0;
    g_assert_cmpint (image->dtype, ==, HFAM_DTYPE_U8);
    g_assert_true (run_matte (ctx, &frame, MAX (w, h), alpha, &error));
    g_assert_no_error (error);
    for (size_t i = 0; i < plane; i++)
      if (margin[i] >= P_S_TOLERANCE)
        e_alpha = MAX (e_alpha, fabs ((double) alpha[i] - fus[i]));
    g_test_message ("%s frame path: max abs error of the matte %.2e", name, e_alpha);
    g_assert_cmpfloat (e_alpha, <=, 1e-4);
  }
  hfam_context_free (ctx);
  hfam_model_free (model);
  hfam_st_close (st);
}

/* ---- model-level corruption: rewrite the header of a valid file ---- */

typedef void (*HeaderEdit) (JsonObject *root);

static char *
write_edited (const char *src, HeaderEdit edit, const char *tmpdir, const char *tag)
{
  g_autofree char *contents = NULL;
  gsize len;
  guint64 hlen;
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  g_autofree char *header = NULL;
  g_autoptr (GByteArray) out = g_byte_array_new ();
  char *path = g_build_filename (tmpdir, tag, NULL);
  guint64 new_len;

  g_assert_true (g_file_get_contents (src, &contents, &len, NULL));
  memcpy (&hlen, contents, 8);
  g_assert_true (json_parser_load_from_data (parser, contents + 8, (gssize) hlen, NULL));
  edit (json_node_get_object (json_parser_get_root (parser)));
  json_generator_set_root (gen, json_parser_get_root (parser));
  header = json_generator_to_data (gen, NULL);
  new_len = strlen (header);
  g_byte_array_append (out, (const guint8 *) &new_len, 8);
  g_byte_array_append (out, (const guint8 *) header, (guint) new_len);
  g_byte_array_append (out, (const guint8 *) contents + 8 + hlen, (guint) (len - 8 - hlen));
  g_assert_true (g_file_set_contents (path, (const char *) out->data, out->len, NULL));
  return path;
}

static void
drop_tensor (JsonObject *root)
{
  /* renamed, not removed: its bytes stay covered (safetensors.h), so only the graph can tell */
  json_object_set_member (root, "psp2.conv.weight.old",
                          json_object_dup_member (root, "psp2.conv.weight"));
  json_object_remove_member (root, "psp2.conv.weight");
}

static void
reshape_tensor (JsonObject *root)
{
  /* same byte size, other shape: only the graph can tell */
  JsonArray *shape = json_object_get_array_member (
      json_object_get_object_member (root, "attention.weight"), "shape");
  json_array_remove_element (shape, 1);
  json_array_add_int_element (shape, 3);
}

static void
drop_hparam (JsonObject *root)
{
  json_object_remove_member (json_object_get_object_member (root, "__metadata__"), "sk_width");
}

static void
bad_hparam (JsonObject *root)
{
  json_object_set_string_member (json_object_get_object_member (root, "__metadata__"),
                                 "encoder_depth", "19");
}

static void
expect_rejected (HeaderEdit edit, const char *tag, const char *needle)
{
  g_autofree char *src = golden_path ("tiny_64x64", ".safetensors");
  g_autofree char *tmpdir = g_dir_make_tmp ("hfam-engine-XXXXXX", NULL);
  g_autofree char *path = write_edited (src, edit, tmpdir, tag);
  g_autoptr (GError) error = NULL;
  HfamModel *model = hfam_model_load (path, &error);

  g_assert_null (model);
  g_assert_nonnull (error);
  g_test_message ("%s: %s", tag, error->message);
  g_assert_nonnull (strstr (error->message, path));
  g_assert_nonnull (strstr (error->message, needle));
  g_unlink (path);
  g_rmdir (tmpdir);
}

static void
test_missing_tensor (void)
{
  expect_rejected (drop_tensor, "missing.safetensors", "psp2.conv.weight");
}

static void
test_wrong_shape (void)
{
  expect_rejected (reshape_tensor, "shape.safetensors", "attention.weight");
}

static void
test_missing_hparam (void)
{
  expect_rejected (drop_hparam, "nohparam.safetensors", "sk_width");
}

static void
test_bad_hparam (void)
{
  expect_rejected (bad_hparam, "badhparam.safetensors", "encoder_depth");
}

/* ---- frames of awkward sizes through the whole frame path ---- */

static void
run_frame (HfamContext *ctx, int w, int h, HfamFormat format, int bpp)
{
  g_autofree guint8 *pixels = g_new (guint8, (size_t) w * h * bpp);
  g_autofree float *alpha = g_new (float, (size_t) w * h);
  g_autoptr (GError) error = NULL;
  const HfamImage image = packed_image (pixels, w, h, bpp, format);

  for (size_t i = 0; i < (size_t) w * h * bpp; i++)
    pixels[i] = (guint8) (i * 37 + (i / bpp) * 11);
  g_assert_true (run_matte (ctx, &image, 0, alpha, &error));
  g_assert_no_error (error);
  for (size_t i = 0; i < (size_t) w * h; i++)
    g_assert_true (alpha[i] >= 0.0f && alpha[i] <= 1.0f);
}

/* hfam_inference_dims of a width x height frame gives want_w x want_h. */
static void
assert_inference_dims (int width, int height, float pixel_aspect, int long_side, int want_w,
                       int want_h)
{
  int w, h;

  hfam_inference_dims (width, height, pixel_aspect, long_side, &w, &h);
  g_assert_cmpint (w, ==, want_w);
  g_assert_cmpint (h, ==, want_h);
}

static void
test_odd_frames (void)
{
  g_autofree char *path = golden_path ("tiny_64x64", ".safetensors");
  g_autoptr (GError) error = NULL;
  HfamModel *model = hfam_model_load (path, &error);
  HfamContext *ctx;

  g_assert_no_error (error);
  ctx = cpu_context (model, 1, &error);
  g_assert_no_error (error);
  assert_inference_dims (1920, 1080, 1.0f, 512, 512, 288);
  assert_inference_dims (4097, 31, 1.0f, 512, 512, 32);
  run_frame (ctx, 1, 1, HFAM_FORMAT_RGB, 3);
  run_frame (ctx, 33, 17, HFAM_FORMAT_BGRA, 4);
  run_frame (ctx, 4097, 31, HFAM_FORMAT_RGBA, 4);
  run_frame (ctx, 33, 17, HFAM_FORMAT_BGR, 3);
  hfam_context_free (ctx);
  hfam_model_free (model);
}

/* ---- pipelined frames: hfam_context_submit / collect against hfam_context_run ---- */

/* A context of one thread made and run on a thread whose OpenMP team would be larger (one
 * per core): no thread starts. oneDNN's kernels run on as many threads as there were when
 * they were made, so the plan must hold to n_threads too. */
static gpointer
run_one_thread_context (gpointer data)
{
  g_autofree char *path = golden_path ("r18_64x64", ".safetensors");
  g_autoptr (GError) error = NULL;
  g_autoptr (HfamModel) model = hfam_model_load (path, &error);
  const HfamOptions options = {
    .backend = HFAM_BACKEND_CPU, .precision = HFAM_PRECISION_FP32, .n_threads = 1,
  };
  g_autoptr (HfamContext) ctx = NULL;
  g_autofree guint8 *pixels = g_malloc0 ((size_t) PIPE_W * PIPE_H * 4);
  g_autofree float *alpha = g_new (float, PIPE_W * PIPE_H);
  const HfamImage frame = packed_image (pixels, PIPE_W, PIPE_H, 4, HFAM_FORMAT_RGBA);
  const HfamImage matte = float_matte (alpha, PIPE_W, PIPE_H);
  const gint64 before = proc_status_now ("Threads:");

  g_assert_no_error (error);
  ctx = hfam_context_new (model, &options, NULL, &error);
  g_assert_no_error (error);
  fill_frame (pixels, 3);
  for (int i = 0; i < 2; i++)
    g_assert_true (hfam_context_run (ctx, &frame, NULL, &matte, 1, &error));
  g_assert_no_error (error);
  g_assert_cmpint (proc_status_now ("Threads:"), ==, before);
  return NULL;
}

static void
test_one_thread (void)
{
  if (proc_status_now ("Threads:") < 0 || g_get_num_processors () < 2) {
    g_test_skip ("needs /proc/self/status and two cores");
    return;
  }
  g_thread_join (g_thread_new ("one-thread", run_one_thread_context, NULL));
}

/* The CPU's real-time size: the fp32 preset (AVX2's without AVX-512) on 2 threads, growing
 * with threads, in multiples of 32, never above the model's own size. */
static void
test_auto_long_side (void)
{
  const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa ();  /* a mask, as in backend-cpu.c */
  const int preset = (isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core
                       ? HFAM_CPU_REALTIME_LONG_SIDE_FP32 : HFAM_CPU_REALTIME_LONG_SIDE_FP32_AVX2;
  g_autofree char *path = golden_path ("r18_64x64", ".safetensors");
  g_autoptr (GError) error = NULL;
  g_autoptr (HfamModel) model = hfam_model_load (path, &error);
  const int model_side = model ? hfam_model_inference_size (model) : 0;
  const int threads[] = { 1, 2, 4, 64 };
  int previous = 0;

  g_assert_no_error (error);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++) {
    const HfamOptions options = { .backend = HFAM_BACKEND_CPU, .precision = HFAM_PRECISION_FP32,
                                  .n_threads = threads[i] };
    g_autoptr (HfamContext) ctx = hfam_context_new (model, &options, NULL, &error);
    int side;

    g_assert_no_error (error);
    side = hfam_context_auto_long_side (ctx);
    g_assert_cmpint (side % 32, ==, 0);
    g_assert_cmpint (side, >=, MIN (previous, model_side));
    g_assert_cmpint (side, <=, model_side);
    if (threads[i] == 2)
      g_assert_cmpint (side, ==, MIN (preset, model_side));
    if (threads[i] == 1)
      g_assert_cmpint (side, <, MIN (preset, model_side) + 1);
    previous = side;
  }
  /* plenty of cores: the model's own size */
  g_assert_cmpint (previous, ==, model_side);
}

/* Whether oneDNN has AVX-512 is read from the ISA's mask, not its value: AVX2-VNNI's value
 * (Intel's cores since 2021 without AVX-512) is above AVX-512's, and taking it for AVX-512 put
 * the fp32 layers on 16-channel blocks, which AVX2's kernels leave to reference code (six
 * times slower; engine-avx2-vnni runs this with oneDNN held to AVX2-VNNI). */
static void
test_avx512_from_isa_mask (void)
{
  const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa ();
  const HfamOptions options = { .backend = HFAM_BACKEND_CPU, .precision = HFAM_PRECISION_FP32,
                                .n_threads = 2 };
  g_autofree char *path = golden_path ("r18_64x64", ".safetensors");
  g_autoptr (GError) error = NULL;
  g_autoptr (HfamModel) model = hfam_model_load (path, &error);
  g_autoptr (HfamContext) ctx = NULL;

  g_assert_no_error (error);
  ctx = hfam_context_new (model, &options, NULL, &error);
  g_assert_no_error (error);
  g_test_message ("oneDNN's ISA 0x%x", (unsigned) isa);
  g_assert_cmpint (ctx->backend->winograd, ==,
                   (isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core);
  if (isa == dnnl_cpu_isa_avx2_vnni || isa == dnnl_cpu_isa_avx2)
    g_assert_false (ctx->backend->winograd);
}

static void
test_pipelined (void)
{
  g_autofree char *path = golden_path ("r18_64x64", ".safetensors");
  g_autoptr (GError) error = NULL;
  g_autoptr (HfamModel) model = hfam_model_load (path, &error);
  g_autoptr (HfamContext) serial = NULL, piped = NULL;
  guint8 pixels[3][PIPE_W * PIPE_H * 4];
  float want[3][PIPE_W * PIPE_H], got[PIPE_W * PIPE_H];
  HfamImage images[3];

  g_assert_no_error (error);
  serial = cpu_context (model, 1, &error);
  g_assert_no_error (error);
  piped = cpu_context (model, 2, &error);
  g_assert_no_error (error);
  g_assert_cmpint (hfam_context_pipeline_depth (serial), ==, 1);
  g_assert_cmpint (hfam_context_pipeline_depth (piped), ==, 2);
  for (int k = 0; k < 3; k++) {
    fill_frame (pixels[k], k);
    images[k] = packed_image (pixels[k], PIPE_W, PIPE_H, 4, HFAM_FORMAT_RGBA);
    g_assert_true (run_matte (serial, &images[k], 64, want[k], &error));
    g_assert_no_error (error);
  }

  /* A and B in flight; a third frame waits for a collect; C after A is out */
  g_assert_true (submit_frame (piped, &images[0], 64, &error));
  g_assert_true (submit_frame (piped, &images[1], 64, &error));
  g_assert_no_error (error);
  g_assert_false (submit_frame (piped, &images[2], 64, &error));
  g_assert_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT);
  g_clear_error (&error);
  g_assert_false (run_matte (piped, &images[2], 64, got, &error));
  g_assert_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT);
  g_clear_error (&error);
  g_assert_true (collect_matte (piped, got, PIPE_W, PIPE_H, &error));
  g_assert_no_error (error);
  expect_same_matte (got, want[0]);
  /* another inference size cannot join the frames in flight */
  g_assert_false (submit_frame (piped, &images[2], 128, &error));
  g_assert_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT);
  g_clear_error (&error);
  g_assert_true (submit_frame (piped, &images[2], 64, &error));
  g_assert_true (collect_matte (piped, got, PIPE_W, PIPE_H, &error));
  g_assert_no_error (error);
  expect_same_matte (got, want[1]);
  g_assert_true (collect_matte (piped, got, PIPE_W, PIPE_H, &error));
  g_assert_no_error (error);
  expect_same_matte (got, want[2]);
  g_assert_false (collect_matte (piped, got, PIPE_W, PIPE_H, &error));
  g_assert_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT);
  g_clear_error (&error);

  /* depth 1 takes one frame at a time; a context freed with frames in flight waits for them */
  g_assert_true (submit_frame (serial, &images[0], 64, &error));
  g_assert_false (submit_frame (serial, &images[1], 64, &error));
  g_assert_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT);
  g_clear_error (&error);
  g_assert_true (collect_matte (serial, got, PIPE_W, PIPE_H, &error));
  expect_same_matte (got, want[0]);
  g_assert_true (submit_frame (piped, &images[0], 64, &error));
  g_assert_true (submit_frame (piped, &images[1], 64, &error));
  g_assert_no_error (error);
}

/* ---- the kept matte on the host (hfam.h): smoothing, frames that do not run, refusals ---- */

static void
expect_refused (gboolean ok, GError **error)
{
  g_assert_false (ok);
  g_assert_error (*error, HFAM_ERROR, HFAM_ERROR_ARGUMENT);
  g_clear_error (error);
}

static void
test_kept_matte (void)
{
  g_autofree char *path = golden_path ("r18_64x64", ".safetensors");
  g_autoptr (GError) error = NULL;
  g_autoptr (HfamModel) model = hfam_model_load (path, &error);
  g_autoptr (HfamContext) fresh = NULL, ctx = NULL;
  guint8 pixels[3][PIPE_W * PIPE_H * 4], key[PIPE_W * PIPE_H];
  float a[PIPE_W * PIPE_H], b[PIPE_W * PIPE_H], b128[PIPE_W * PIPE_H];
  float got[PIPE_W * PIPE_H], want[PIPE_W * PIPE_H];
  const HfamImage key_image = {
    .planes = { key }, .strides = { PIPE_W }, .width = PIPE_W, .height = PIPE_H,
    .format = HFAM_FORMAT_GRAY8,
  };
  HfamImage images[3], fill, transposed;

  g_assert_no_error (error);
  fresh = cpu_context (model, 1, &error);
  ctx = cpu_context (model, 1, &error);
  g_assert_no_error (error);
  for (int k = 0; k < 3; k++) {
    fill_frame (pixels[k], k);
    images[k] = packed_image (pixels[k], PIPE_W, PIPE_H, 4, HFAM_FORMAT_RGBA);
  }
  g_assert_true (run_matte (fresh, &images[0], 64, a, &error));
  g_assert_true (run_matte (fresh, &images[1], 64, b, &error));
  g_assert_true (run_matte (fresh, &images[1], 128, b128, &error));
  g_assert_no_error (error);

  /* nothing kept yet; bad smoothing, bad islands */
  expect_refused (hfam_context_write_kept (ctx, &images[2], &key_image, 1, &error), &error);
  expect_refused (run_smoothed (ctx, &images[0], 64, 1.5f, got, &error), &error);
  {
    const HfamFrameParams islands[] = { { .islands = -0.1f }, { .islands = 1.5f },
                                        { .islands = NAN } };
    const HfamImage out = float_matte (got, PIPE_W, PIPE_H);
    for (size_t k = 0; k < G_N_ELEMENTS (islands); k++)
      expect_refused (hfam_context_run (ctx, &images[0], &islands[k], &out, 1, &error), &error);
  }

  /* B blended into A, at the inference size: the resize is linear, so this is the blend of
   * the two mattes at the frame's size up to float rounding */
  g_assert_true (run_smoothed (ctx, &images[0], 64, 0.3f, got, &error));
  expect_same_matte (got, a);
  g_assert_true (run_smoothed (ctx, &images[1], 64, 0.3f, got, &error));
  g_assert_no_error (error);
  for (int i = 0; i < PIPE_W * PIPE_H; i++)
    want[i] = 0.7f * b[i] + 0.3f * a[i];
  g_assert_cmpfloat (max_abs_diff (got, want, (size_t) PIPE_W * PIPE_H), <=, 1e-5);

  /* a frame that does not run shows the kept matte, whatever its pixels; a key needs no
   * frame; colours do */
  memcpy (want, got, sizeof want);
  fill = float_matte (got, PIPE_W, PIPE_H);
  g_assert_true (hfam_context_write_kept (ctx, &images[2], &fill, 1, &error));
  g_assert_no_error (error);
  expect_same_matte (got, want);
  g_assert_true (hfam_context_write_kept (ctx, NULL, &key_image, 1, &error));
  g_assert_no_error (error);
  for (int i = 0; i < PIPE_W * PIPE_H; i++)
    g_assert_cmpint (key[i], ==, (int) (CLAMP (want[i], 0.0f, 1.0f) * 255.0f + 0.5f));
  fill = packed_image (pixels[2], PIPE_W, PIPE_H, 4, HFAM_FORMAT_RGBA);
  g_assert_false (hfam_context_write_kept (ctx, NULL, &fill, 1, &error));
  g_assert_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT);
  g_assert_nonnull (strstr (error->message, "output 0 takes the frame's colours"));
  g_clear_error (&error);
  /* a frame of another shape runs at another inference size: not this matte's */
  transposed = packed_image (pixels[2], PIPE_H, PIPE_W, 4, HFAM_FORMAT_RGBA);
  expect_refused (hfam_context_write_kept (ctx, &transposed, NULL, 0, &error), &error);

  /* another inference size starts afresh, smoothing or not */
  g_assert_true (run_smoothed (ctx, &images[1], 128, 0.5f, got, &error));
  g_assert_no_error (error);
  expect_same_matte (got, b128);
}

/* ---- Edges at the frame's size (hfam_context_set_edges) on host frames ---- */

/* A hard-edged disc as the kept matte: flat away from its outline, so that refinement can be
 * seen to touch only the edge. */
static void
keep_disc (HfamContext *ctx)
{
  HfamKeptMatte *kept = &ctx->kept;

  for (int y = 0; y < kept->height; y++)
    for (int x = 0; x < kept->width; x++) {
      const float dx = x - 0.5f * kept->width, dy = y - 0.5f * kept->height;
      kept->buffers.host[y * kept->width + x]
          = dx * dx + dy * dy < 0.1f * kept->width * kept->width;
    }
}

/* Whether the kept matte is one value within `r` of where frame pixel (x, y) falls on it. */
static gboolean
kept_flat_near (const HfamKeptMatte *kept, int x, int y, int r)
{
  const int u = (int) ((x + 0.5f) * kept->width / PIPE_W);
  const int v = (int) ((y + 0.5f) * kept->height / PIPE_H);
  const float *matte = kept->buffers.host;
  const float first = matte[CLAMP (v, 0, kept->height - 1) * kept->width
                            + CLAMP (u, 0, kept->width - 1)];

  for (int j = v - r; j <= v + r; j++)
    for (int i = u - r; i <= u + r; i++)
      if (matte[CLAMP (j, 0, kept->height - 1) * kept->width + CLAMP (i, 0, kept->width - 1)]
          != first)
        return FALSE;
  return TRUE;
}

static void
expect_edges_refused (HfamContext *ctx, const HfamEdgeParams *edges)
{
  g_autoptr (GError) error = NULL;

  g_assert_false (hfam_context_set_edges (ctx, edges, &error));
  g_assert_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT);
}

static void
test_edges (void)
{
  g_autofree char *path = golden_path ("r18_64x64", ".safetensors");
  g_autoptr (GError) error = NULL;
  g_autoptr (HfamModel) model = hfam_model_load (path, &error);
  g_autoptr (HfamContext) ctx = NULL;
  static guint8 pixels[PIPE_W * PIPE_H * 4], got_rgba[PIPE_W * PIPE_H * 4],
      want_rgba[PIPE_W * PIPE_H * 4], key[PIPE_W * PIPE_H];
  static float plain[PIPE_W * PIPE_H], got[PIPE_W * PIPE_H], want[PIPE_W * PIPE_H];
  const HfamImage frame = packed_image (pixels, PIPE_W, PIPE_H, 4, HFAM_FORMAT_RGBA);
  const HfamImage matte = float_matte (got, PIPE_W, PIPE_H);
  const HfamImage key_image = packed_image (key, PIPE_W, PIPE_H, 1, HFAM_FORMAT_GRAY8);
  const HfamFrame k = { .planes = { pixels }, .strides = { PIPE_W * 4 }, .width = PIPE_W,
                        .height = PIPE_H, .format = HFAM_FRAME_RGBA };
  const HfamYuvToRgb *no_yuv = NULL;
  HfamEdgeParams edges, bad;
  HfamKeptMatte *kept;
  guint64 held;
  gboolean changed = FALSE;

  g_assert_no_error (error);
  ctx = cpu_context (model, 1, &error);
  g_assert_no_error (error);
  fill_frame (pixels, 1);
  g_assert_true (run_matte (ctx, &frame, 32, plain, &error));
  g_assert_no_error (error);
  kept = &ctx->kept;
  keep_disc (ctx);
  kept->resized_width = 0;
  g_assert_true (hfam_context_write_kept (ctx, &frame, &matte, 1, &error));
  g_assert_no_error (error);
  memcpy (plain, got, sizeof plain);

  /* guided: the kernel's output, equal to the plain resize where the matte is flat, its
   * scratch counted in the budget; the key then needs the frame */
  hfam_edge_params_init (&edges);
  edges.refine = HFAM_REFINE_GUIDED;
  held = hfam_context_host_memory (ctx);
  g_assert_true (hfam_context_set_edges (ctx, &edges, &error));
  g_assert_true (hfam_context_write_kept (ctx, &frame, &matte, 1, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (hfam_context_host_memory (ctx), >, held);
  {
    const HfamRefineParams rp = { .radius = HFAM_REFINE_RADIUS_DEFAULT,
                                  .eps = HFAM_REFINE_EPS_DEFAULT, .colour = 1 };
    g_assert_cmpint (hfam_refine (kept->buffers.host, kept->width, kept->height, &k, no_yuv,
                                  &rp, NULL, want, PIPE_W, NULL), ==, 0);
  }
  expect_same_matte (got, want);
  for (int y = 0; y < PIPE_H; y++)
    for (int x = 0; x < PIPE_W; x++) {
      const size_t i = (size_t) y * PIPE_W + x;
      if (kept_flat_near (kept, x, y, 2 * HFAM_REFINE_RADIUS_DEFAULT + 2))
        g_assert_cmpfloat (fabsf (got[i] - plain[i]), <=, 1e-4);
      changed |= fabsf (got[i] - plain[i]) > 0.01f;
    }
  g_assert_true (changed);
  expect_refused (hfam_context_write_kept (ctx, NULL, &key_image, 1, &error), &error);
  {
    /* the guide of grey outputs is checked as colours' frames are: one taller than the
     * frame would be read past the matte's rows; refused, the frame stays in flight */
    static guint8 tall_pixels[PIPE_W * PIPE_H * 4 * 4];
    const HfamImage tall = packed_image (tall_pixels, PIPE_W, PIPE_H * 4, 4, HFAM_FORMAT_RGBA);

    expect_refused (hfam_context_write_kept (ctx, &tall, &key_image, 1, &error), &error);
    g_assert_true (submit_frame (ctx, &frame, 32, &error));
    expect_refused (hfam_context_collect (ctx, &tall, &key_image, 1, &error), &error);
    expect_refused (hfam_context_collect (ctx, NULL, &key_image, 1, &error), &error);
    g_assert_true (hfam_context_collect (ctx, &frame, &key_image, 1, &error));
    g_assert_no_error (error);
    keep_disc (ctx);
    kept->resized_width = 0;
  }

  /* key levels, on the plain resize */
  edges.refine = HFAM_REFINE_NONE;
  edges.key_black = 0.25f;
  edges.key_white = 0.75f;
  g_assert_true (hfam_context_set_edges (ctx, &edges, &error));
  g_assert_true (hfam_context_write_kept (ctx, NULL, &key_image, 1, &error));
  g_assert_true (hfam_context_write_kept (ctx, &frame, &matte, 1, &error));
  g_assert_no_error (error);
  for (int i = 0; i < PIPE_W * PIPE_H; i++) {
    want[i] = CLAMP ((plain[i] - 0.25f) * (1.0f / 0.5f), 0.0f, 1.0f);
    g_assert_cmpint (key[i], ==, (int) (want[i] * 255.0f + 0.5f));
  }
  expect_same_matte (got, want);

  /* foreground fill, straight and premultiplied: the kernel's */
  edges.key_black = 0.0f;
  edges.key_white = 1.0f;
  edges.fill = HFAM_FILL_FOREGROUND;
  g_assert_true (hfam_context_set_edges (ctx, &edges, &error));
  for (int premultiplied = 0; premultiplied < 2; premultiplied++) {
    const HfamForegroundParams fp = { HFAM_FOREGROUND_RADIUS_LARGE,
                                      HFAM_FOREGROUND_RADIUS_SMALL, HFAM_FOREGROUND_COARSE };
    HfamImage fill = packed_image (got_rgba, PIPE_W, PIPE_H, 4, HFAM_FORMAT_BGRA);
    const HfamMatteImage want_image = {
      .data = want_rgba, .stride = PIPE_W * 4, .width = PIPE_W, .height = PIPE_H,
      .format = premultiplied ? HFAM_MATTE_BGRA_PREMULTIPLIED : HFAM_MATTE_BGRA,
    };

    fill.premultiplied = premultiplied;
    g_assert_true (hfam_context_write_kept (ctx, &frame, &fill, 1, &error));
    g_assert_no_error (error);
    g_assert_cmpint (hfam_foreground (&k, no_yuv, plain, PIPE_W, &fp, &want_image, NULL), ==, 0);
    g_assert_cmpmem (got_rgba, sizeof got_rgba, want_rgba, sizeof want_rgba);
  }

  /* refused values change nothing */
  bad = edges;
  bad.key_black = bad.key_white = 0.5f;
  expect_edges_refused (ctx, &bad);
  bad = edges;
  bad.key_black = -0.1f;
  expect_edges_refused (ctx, &bad);
  bad = edges;
  bad.key_white = NAN;
  expect_edges_refused (ctx, &bad);
  bad = edges;
  bad.refine_radius = 0;
  expect_edges_refused (ctx, &bad);
  bad = edges;
  bad.refine_eps = 0.0f;
  expect_edges_refused (ctx, &bad);
  bad = edges;
  bad.refine = 7;
  expect_edges_refused (ctx, &bad);
  bad = edges;
  bad.fill = 7;
  expect_edges_refused (ctx, &bad);
  g_assert_true (hfam_context_set_edges (ctx, NULL, &error));
  g_assert_true (hfam_context_write_kept (ctx, &frame, &matte, 1, &error));
  g_assert_no_error (error);
  expect_same_matte (got, plain);

  /* a frame smaller than the inference size: the statistics at the frame's size */
  edges.refine = HFAM_REFINE_GUIDED;
  g_assert_true (hfam_context_set_edges (ctx, &edges, &error));
  {
    const HfamImage small = { .planes = { pixels }, .strides = { PIPE_W * 4 }, .width = 20,
                              .height = 12, .format = HFAM_FORMAT_RGBA };
    g_assert_true (run_matte (ctx, &small, 64, got, &error));
    g_assert_no_error (error);
  }
}

/* ---- NV12 and I420 frames on the host: kernels/frame.c's conversion, then the network ---- */

static void
test_yuv_frames (void)
{
  enum { W = 70, H = 45, CW = (W + 1) / 2, CH = (H + 1) / 2 };
  g_autofree char *path = golden_path ("r18_64x64", ".safetensors");
  g_autoptr (GError) error = NULL;
  g_autoptr (HfamModel) model = hfam_model_load (path, &error);
  g_autoptr (HfamContext) ctx = NULL;
  guint8 y[W * H], uv[CW * CH * 2], u[CW * CH], v[CW * CH];
  float got[W * H], bt601[W * H];

  g_assert_no_error (error);
  ctx = cpu_context (model, 1, &error);
  g_assert_no_error (error);
  for (int i = 0; i < W * H; i++)
    y[i] = (guint8) (16 + (i * 37 + (i / W) * 11) % 220);
  for (int i = 0; i < CW * CH; i++) {
    u[i] = uv[2 * i] = (guint8) (16 + (i * 13) % 224);
    v[i] = uv[2 * i + 1] = (guint8) (16 + (i * 29 + 100) % 224);
  }
  for (int format = HFAM_FORMAT_NV12; format <= HFAM_FORMAT_I420; format++) {
    const HfamImage frame = {
      .planes = { y, format == HFAM_FORMAT_NV12 ? uv : u, v },
      .strides = { W, format == HFAM_FORMAT_NV12 ? 2 * CW : CW, CW },
      .width = W, .height = H, .format = format, .yuv_matrix = HFAM_YUV_BT601,
    };
    HfamImage bt709 = frame;
    HfamPreprocessParams params;
    const HfamFrame k = {
      .planes = { frame.planes[0], frame.planes[1], frame.planes[2] },
      .strides = { frame.strides[0], frame.strides[1], frame.strides[2] },
      .width = W, .height = H, .format = (HfamFrameFormat) format,
    };
    int iw, ih;
    g_autofree float *input = NULL, *fused = NULL, *want = g_new (float, W * H);
    HfamOutputs out;

    /* the oracle: kernels/frame.c's conversion, the network on the tensor, the resize */
    hfam_inference_dims (W, H, 1.0f, 64, &iw, &ih);
    input = g_new (float, 3 * iw * ih);
    fused = g_new (float, iw * ih);
    out = (HfamOutputs) { .fused = fused };
    hfam_model_preprocess_params (model, &params);
    hfam_yuv_to_rgb_init (&params.yuv, HFAM_MATRIX_BT601, HFAM_RANGE_LIMITED);
    g_assert_cmpint (hfam_frame_preprocess (&k, &params, input, iw, ih), ==, 0);
    g_assert_true (hfam_context_run_tensor (ctx, input, iw, ih, &out, &error));
    g_assert_cmpint (hfam_resize_plane (fused, iw, ih, iw, want, W, H, W), ==, 0);

    g_assert_true (run_matte (ctx, &frame, 64, got, &error));
    g_assert_no_error (error);
    g_assert_cmpfloat (max_abs_diff (got, want, W * H), <=, 1e-6);
    /* the matrix is read: BT.709 gives other colours, so another matte */
    memcpy (bt601, got, sizeof got);
    bt709.yuv_matrix = HFAM_YUV_BT709;
    g_assert_true (run_matte (ctx, &bt709, 64, got, &error));
    g_assert_cmpfloat (max_abs_diff (got, bt601, W * H), >, 1e-4);
  }
}

/* ---- non-square pixels: the network sees the picture as it is shown ---- */

static void
test_pixel_aspect (void)
{
  enum { W = 48, H = 64, LONG = 64 };
  static const float refused[] = { -1.0f, 0.05f, 17.0f, NAN };
  g_autofree char *path = golden_path ("tiny_64x64", ".safetensors");
  g_autoptr (GError) error = NULL;
  g_autoptr (HfamModel) model = hfam_model_load (path, &error);
  g_autoptr (HfamContext) ctx = NULL;
  guint8 rgb[W * H * 3];
  float got[W * H], want[W * H], square[W * H];
  const HfamImage frame = packed_image (rgb, W, H, 3, HFAM_FORMAT_RGB);
  const HfamImage matte = float_matte (got, W, H);
  const HfamFrameParams params = { .long_side = LONG, .pixel_aspect = 2.0f };
  const HfamFrame k = { .planes = { rgb }, .strides = { W * 3 }, .width = W, .height = H,
                        .format = HFAM_FRAME_RGB };
  HfamPreprocessParams pre;
  int iw, ih;

  /* 1440x1080 HDV and 720x576 PAL 16:9 are shown at 16:9; 0 is square */
  assert_inference_dims (1440, 1080, 4.0f / 3.0f, 512, 512, 288);
  assert_inference_dims (720, 576, 64.0f / 45.0f, 512, 512, 288);
  assert_inference_dims (1080, 1080, 0.5f, 512, 256, 512);
  assert_inference_dims (1920, 1080, 0.0f, 512, 512, 288);

  g_assert_no_error (error);
  ctx = cpu_context (model, 1, &error);
  g_assert_no_error (error);
  for (int i = 0; i < W * H * 3; i++)
    rgb[i] = (guint8) ((i * 7 + (i / (3 * W)) * 13) % 251);

  /* the oracle: the frame preprocessed at the shown picture's inference size, 64x32 */
  hfam_inference_dims (W, H, params.pixel_aspect, LONG, &iw, &ih);
  g_assert_cmpint (iw, ==, 64);
  g_assert_cmpint (ih, ==, 32);
  {
    g_autofree float *input = g_new (float, 3 * iw * ih), *fused = g_new (float, iw * ih);
    HfamOutputs out = { .fused = fused };

    hfam_model_preprocess_params (model, &pre);
    g_assert_cmpint (hfam_frame_preprocess (&k, &pre, input, iw, ih), ==, 0);
    g_assert_true (hfam_context_run_tensor (ctx, input, iw, ih, &out, &error));
    g_assert_cmpint (hfam_resize_plane (fused, iw, ih, iw, want, W, H, W), ==, 0);
  }
  g_assert_true (hfam_context_run (ctx, &frame, &params, &matte, 1, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (max_abs_diff (got, want, W * H), <=, 1e-6);
  /* the kept matte stands for the next frame of that shape: at 64x32, not a square's 64x64 */
  memset (got, 0, sizeof got);
  g_assert_true (hfam_context_write_kept (ctx, &frame, &matte, 1, &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (max_abs_diff (got, want, W * H), <=, 1e-6);
  /* square pixels run at 64x64: another matte */
  g_assert_true (run_matte (ctx, &frame, LONG, square, &error));
  g_assert_cmpfloat (max_abs_diff (square, want, W * H), >, 1e-4);

  for (guint i = 0; i < G_N_ELEMENTS (refused); i++) {
    const HfamFrameParams bad = { .long_side = LONG, .pixel_aspect = refused[i] };

    g_assert_false (hfam_context_run (ctx, &frame, &bad, &matte, 1, &error));
    g_assert_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT);
    g_assert_nonnull (strstr (error->message, "pixel aspect"));
    g_clear_error (&error);
  }
}

/* The graph's lane order (graph.h) against the rule it must keep, checked independently of
 * how graph.c derives it: every node runs after every node it reads, where "after" is what a
 * backend running each lane in order on its own queue can know: the order of one lane, and
 * the waits, followed transitively. */
static void
test_lane_order (gconstpointer data)
{
  g_autofree char *path = golden_path (data, ".safetensors");
  g_autoptr (GError) error = NULL;
  HfamSafetensors *st = hfam_st_open (path, &error);
  HfamHparams hp;
  HfamGraph *g;
  int n, lane_nodes[HFAM_N_LANES] = { 0 };
  g_autofree guint8 *before = NULL;  /* before[a * n + b]: node a is done when b starts */
  g_autofree gboolean *named = NULL;

  g_assert_no_error (error);
  g_assert_true (hfam_hparams_read (st, &hp, &error));
  g = hfam_graph_build (&hp, st, &error);
  g_assert_no_error (error);
  n = g->n_nodes;
  before = g_new0 (guint8, (size_t) n * n);
  named = g_new0 (gboolean, n);
  for (int i = 0; i < n; i++) {
    const HfamNode *node = &g->nodes[i];
    g_assert_cmpint (node->lane, >=, 0);
    g_assert_cmpint (node->lane, <, HFAM_N_LANES);
    /* backends queue stage by stage: that must be graph order, which the waits assume */
    g_assert_cmpint (node->stage, >=, i > 0 ? g->nodes[i - 1].stage : 0);
    lane_nodes[node->lane]++;
    /* the latest earlier node of the same lane, and each wait, with all they come after */
    for (int j = i - 1; j >= 0; j--)
      if (g->nodes[j].lane == node->lane) {
        before[(size_t) j * n + i] = 1;
        break;
      }
    for (int m = 0; m < HFAM_N_LANES; m++) {
      const int j = g->lane_waits[(size_t) i * HFAM_N_LANES + m];
      if (j < 0)
        continue;
      g_assert_cmpint (j, <, i);
      g_assert_cmpint (g->nodes[j].lane, ==, m);
      g_assert_cmpint (m, !=, node->lane);
      g_assert_true (g->lane_signals[j]);
      named[j] = TRUE;
      before[(size_t) j * n + i] = 1;
    }
    for (int j = 0; j < i; j++)
      if (before[(size_t) j * n + i])
        for (int k = 0; k < j; k++)
          before[(size_t) k * n + i] |= before[(size_t) k * n + j];
    for (int k = 0; k < node->n_inputs; k++)
      if (!before[(size_t) node->inputs[k] * n + i])
        g_error ("%s: node %s may run before its input %s", (const char *) data, node->name,
                 g->nodes[node->inputs[k]].name);
  }
  /* no event is recorded that nothing waits for */
  for (int j = 0; j < n; j++)
    g_assert_cmpint (g->lane_signals[j], ==, named[j]);
  /* the side lanes are used: this order is what lets them overlap the encoder */
  for (int l = 0; l < HFAM_N_LANES; l++)
    g_assert_cmpint (lane_nodes[l], >, 0);
  g_assert_cmpint (g->nodes[g->input].lane, ==, 0);
  g_assert_cmpint (g->nodes[g->fusion].lane, ==, 0);
  hfam_graph_free (g);
  hfam_st_close (st);
}

int
main (int argc, char **argv)
{
  engine_test_init (&argc, &argv);
  if (argc > 2) {
    for (int i = 2; i < argc; i++) {
      g_autofree char *test = g_strdup_printf ("/engine/golden/%s", argv[i]);
      g_test_add_data_func (test, argv[i], test_golden);
    }
    return g_test_run ();
  }
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *test = g_strdup_printf ("/engine/golden/%s", cases[i]);
    g_test_add_data_func (test, cases[i], test_golden);
  }
  g_test_add_func ("/engine/reject/missing-tensor", test_missing_tensor);
  g_test_add_func ("/engine/reject/wrong-shape", test_wrong_shape);
  g_test_add_func ("/engine/reject/missing-hparam", test_missing_hparam);
  g_test_add_func ("/engine/reject/bad-hparam", test_bad_hparam);
  g_test_add_func ("/engine/odd-frames", test_odd_frames);
  g_test_add_func ("/engine/pipelined", test_pipelined);
  g_test_add_func ("/engine/auto-long-side", test_auto_long_side);
  g_test_add_func ("/engine/one-thread", test_one_thread);
  g_test_add_func ("/engine/avx512-from-isa-mask", test_avx512_from_isa_mask);
  g_test_add_func ("/engine/kept-matte", test_kept_matte);
  g_test_add_func ("/engine/yuv-frames", test_yuv_frames);
  g_test_add_func ("/engine/pixel-aspect", test_pixel_aspect);
  g_test_add_func ("/engine/edges", test_edges);
  g_test_add_data_func ("/engine/lane-order/tiny", "tiny_64x64", test_lane_order);
  g_test_add_data_func ("/engine/lane-order/r18", "r18_64x64", test_lane_order);
  g_test_add_data_func ("/engine/lane-order/r50", "r50_64x64", test_lane_order);
  return g_test_run ();
}
