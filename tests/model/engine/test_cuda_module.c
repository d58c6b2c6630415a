/* libhfam refuses a CUDA backend's module built for another layout of what the two exchange
 * (cuda-module.c): a context asking for CUDA fails with an error that says so, one on auto
 * runs on the CPU, and the module's entry point is never called.
 * Usage: test-cuda-module GOLDEN_DIR STALE_MODULE */
#include "engine-test.h"

static const char *stale_module;

static void
test_stale_module (void)
{
  g_autofree char *path = golden_path ("tiny_64x64", ".safetensors");
  g_autoptr (GError) error = NULL;
  g_autoptr (HfamModel) model = hfam_model_load (path, &error);
  const HfamOptions cuda = { .backend = HFAM_BACKEND_CUDA };
  const HfamOptions automatic = { .backend = HFAM_BACKEND_AUTO };
  HfamContext *ctx;

  g_assert_no_error (error);
  g_assert_null (hfam_context_new (model, &cuda, NULL, &error));
  g_assert_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND);
  g_assert_nonnull (strstr (error->message, stale_module));
  g_assert_nonnull (strstr (error->message, "built for another libhfam"));
  g_clear_error (&error);
  ctx = hfam_context_new (model, &automatic, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (hfam_context_backend_name (ctx), ==, "cpu");
  hfam_context_free (ctx);
}

int
main (int argc, char **argv)
{
  engine_test_init (&argc, &argv);
  g_assert_cmpint (argc, ==, 3);
  stale_module = argv[2];
  /* (before anything opens the module: it opens once a process) */
  g_setenv ("HFAMMATTE_CUDA_MODULE", stale_module, TRUE);
  g_test_add_func ("/cuda-module/stale", test_stale_module);
  return g_test_run ();
}
