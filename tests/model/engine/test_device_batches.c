/* Device frames in a CUDA batch group, libhfam's side (frames.c, batch.c, hfam.c), on a
 * stand-in for the CUDA module (fake_cuda_module.c: "device memory" in host memory, a network of
 * one formula a pixel, so that a frame's matte is the same alone or in any batch):
 *   - three members at depth 2 submit two rounds of device frames, which run as batches of
 *     three, and each collect writes the matte of its own frame, byte for byte what a context
 *     alone makes of it;
 *   - host and device frames of the same members run in batches of their own memory, each
 *     frame still its own matte;
 *   - a batch that fails (the lane refuses its size) fails its member's collect, which keeps no
 *     matte, and the member's next frame runs;
 *   - members freed with frames in flight.
 * Usage: test-device-batches GOLDEN_DIR FAKE_CUDA_MODULE */
#include "engine-test.h"
#include "hfam-internal.h"

#include <string.h>

#define W 160
#define H 90

/* An RGBA frame of its own pattern for `seed`, in "device" memory (the stand-in's). */
static HfamImage
frame_of (guint8 *pixels, guint seed, HfamMemory memory)
{
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  HfamImage image = packed_image (pixels, W, H, 4, HFAM_FORMAT_RGBA);

  for (int i = 0; i < W * H * 4; i++)
    pixels[i] = (guint8) g_rand_int_range (rand, 0, 256);
  image.memory = memory;
  return image;
}

static HfamImage
key_of (guint8 *pixels, HfamMemory memory)
{
  HfamImage key = packed_image (pixels, W, H, 1, HFAM_FORMAT_GRAY8);

  key.memory = memory;
  return key;
}

/* What a context alone (not in a group) writes for the frame. */
static void
alone (HfamModel *model, const HfamImage *frame, const HfamFrameParams *params, guint8 *want)
{
  const HfamOptions options = { .backend = HFAM_BACKEND_CUDA, .pipeline_depth = 1 };
  g_autoptr (GError) error = NULL;
  HfamContext *ctx = hfam_context_new (model, &options, NULL, &error);
  const HfamImage key = key_of (want, frame->memory);

  g_assert_no_error (error);
  g_assert_cmpint (hfam_context_max_batch (ctx), ==, 1);
  g_assert_true (hfam_context_run (ctx, frame, params, &key, 1, &error));
  g_assert_no_error (error);
  hfam_context_free (ctx);
}

static void
collect_own (HfamContext *ctx, HfamModel *model, const HfamImage *frame)
{
  g_autofree guint8 *want = g_malloc (W * H), *got = g_malloc0 (W * H);
  const HfamImage key = key_of (got, frame->memory);
  g_autoptr (GError) error = NULL;

  alone (model, frame, NULL, want);
  g_assert_true (hfam_context_collect (ctx, frame, &key, 1, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (got, W * H, want, W * H);
}

static void
test_device_batches (void)
{
  /* a batch waits up to a second for its members: the three submits of a round land well
   * inside it even on a loaded machine (at 0.2 s a round once split into 2 + 1 there); the
   * partial batches below wait it out (about 3 s in all) */
  const HfamOptions options = { .backend = HFAM_BACKEND_CUDA, .pipeline_depth = 2,
                                .max_batch = 3, .batch_timeout_us = 1000000 };
  g_autofree char *path = golden_path ("tiny_64x64", ".safetensors");
  g_autoptr (GError) error = NULL;
  g_autoptr (HfamModel) model = hfam_model_load (path, &error);
  guint8 *pixels[3][2];
  HfamImage frames[3][2];
  HfamContext *ctx[3];
  HfamBatchCounts counts;

  g_assert_no_error (error);
  for (int m = 0; m < 3; m++) {
    ctx[m] = hfam_context_new (model, &options, NULL, &error);
    g_assert_no_error (error);
    g_assert_true (hfam_context_device_frames (ctx[m]));
    g_assert_cmpint (hfam_context_max_batch (ctx[m]), ==, 3);
    for (int r = 0; r < 2; r++) {
      pixels[m][r] = g_malloc (W * H * 4);
      frames[m][r] = frame_of (pixels[m][r], 10 * m + r, HFAM_MEMORY_CUDA);
    }
  }
  /* two rounds in flight, then collected: each member its own frames' mattes */
  for (int r = 0; r < 2; r++)
    for (int m = 0; m < 3; m++) {
      g_assert_true (hfam_context_submit (ctx[m], &frames[m][r], NULL, &error));
      g_assert_no_error (error);
    }
  for (int r = 0; r < 2; r++)
    for (int m = 0; m < 3; m++)
      collect_own (ctx[m], model, &frames[m][r]);
  g_assert_true (hfam_context_batch_counts (ctx[0], &counts));
  g_assert_cmpint (counts.largest, ==, 3);
  g_assert_cmpuint (counts.frames, ==, 6);

  /* member 0 in host memory, the others on the device: batches of one memory each */
  frames[0][0].memory = HFAM_MEMORY_HOST;
  for (int m = 0; m < 3; m++) {
    g_assert_true (hfam_context_submit (ctx[m], &frames[m][0], NULL, &error));
    g_assert_no_error (error);
  }
  for (int m = 0; m < 3; m++)
    collect_own (ctx[m], model, &frames[m][0]);
  frames[0][0].memory = HFAM_MEMORY_CUDA;

  /* a batch the lane refuses: its member's collect fails and keeps no matte */
  {
    const HfamFrameParams refused = { .long_side = 96 };  /* a 96 x 64 inference size */
    g_autofree guint8 *got = g_malloc0 (W * H);
    const HfamImage key = key_of (got, HFAM_MEMORY_CUDA);
    g_assert_true (hfam_context_submit (ctx[1], &frames[1][1], &refused, &error));
    g_assert_no_error (error);
    g_assert_false (hfam_context_collect (ctx[1], &frames[1][1], &key, 1, &error));
    g_assert_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND);
    g_assert_nonnull (strstr (error->message, "width 96 refused"));
    g_clear_error (&error);
    g_assert_false (hfam_context_write_kept (ctx[1], &frames[1][1], &key, 1, &error));
    g_assert_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT);
    g_clear_error (&error);
    g_assert_true (hfam_context_submit (ctx[1], &frames[1][0], NULL, &error));
    g_assert_no_error (error);
    collect_own (ctx[1], model, &frames[1][0]);
  }

  /* freed with frames in flight (after them, the group's lane reads nothing of theirs) */
  for (int m = 0; m < 3; m++)
    g_assert_true (hfam_context_submit (ctx[m], &frames[m][1], NULL, &error));
  for (int m = 0; m < 3; m++) {
    hfam_context_free (ctx[m]);
    for (int r = 0; r < 2; r++)
      g_free (pixels[m][r]);
  }
}

int
main (int argc, char **argv)
{
  engine_test_init (&argc, &argv);
  g_assert_cmpint (argc, ==, 3);
  /* (before anything opens the module: it opens once a process) */
  g_setenv ("HFAMMATTE_CUDA_MODULE", argv[2], TRUE);
  g_test_add_func ("/device-batches/members", test_device_batches);
  return g_test_run ();
}
