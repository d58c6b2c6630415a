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
 * And a frame that follows the kept matte (hfam_context_follow) in device memory: after a
 * frame run with motion-compensated smoothing, the picture moved, followed and written from the
 * kept matte, as the same frames in host memory give it; the matte moved; nothing moves after a
 * plain blend.
 * And islands (HfamFrameParams.islands) dropped from the fresh matte of host and device frames
 * alike (kept.c with kernels/islands.c on the host; the stand-in's keep_matte with the same
 * twin on the device), and from the blend where the smoothing holds a region the network
 * dropped; and black bars along the frame's edges (HfamFrameParams.letterbox) cleared from the
 * fresh matte in both memories (kernels/bars.c); and frames of non-square pixels run at the
 * shown picture's inference size in both.
 * Usage: test-device-batches GOLDEN_DIR FAKE_CUDA_MODULE */
#include "engine-test.h"
#include "hfam-internal.h"

#include <math.h>
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

/* An RGBA picture of smooth waves moved `dx` pixels to the right, in `memory`. */
static HfamImage
waves_of (guint8 *pixels, int dx, HfamMemory memory)
{
  HfamImage image = packed_image (pixels, W, H, 4, HFAM_FORMAT_RGBA);

  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      const double u = x - dx;
      guint8 *p = pixels + ((size_t) y * W + x) * 4;
      p[0] = (guint8) (128 + 100 * sin (u * 0.21) * cos (y * 0.17));
      p[1] = (guint8) (128 + 90 * cos (u * 0.13 + y * 0.11));
      p[2] = (guint8) (128 + 80 * sin ((u + y) * 0.09));
      p[3] = 255;
    }
  image.memory = memory;
  return image;
}

/* A context alone runs `first` with `params`, then writes the kept matte for `moved` into
 * `before` (GRAY8), follows `moved` and writes it again into `after`. */
static void
run_then_follow (HfamModel *model, const HfamImage *first, const HfamImage *moved,
                 const HfamFrameParams *params, guint8 *before, guint8 *after)
{
  const HfamOptions options = { .backend = HFAM_BACKEND_CUDA, .pipeline_depth = 1 };
  const HfamImage key_before = key_of (before, moved->memory);
  const HfamImage key_after = key_of (after, moved->memory);
  g_autoptr (GError) error = NULL;
  HfamContext *ctx = hfam_context_new (model, &options, NULL, &error);

  g_assert_no_error (error);
  g_assert_true (hfam_context_run (ctx, first, params, &key_before, 1, &error));
  g_assert_no_error (error);
  g_assert_true (hfam_context_write_kept (ctx, moved, &key_before, 1, &error));
  g_assert_no_error (error);
  g_assert_true (hfam_context_follow (ctx, moved, &error));
  g_assert_no_error (error);
  g_assert_true (hfam_context_write_kept (ctx, moved, &key_after, 1, &error));
  g_assert_no_error (error);
  hfam_context_free (ctx);
}

static void
test_device_follow (void)
{
  /* the frame's own size: the flow sees the whole move */
  const HfamFrameParams compensated = { .long_side = W, .smoothing = 0.5f,
                                        .temporal = HFAM_TEMPORAL_COMPENSATED };
  const HfamFrameParams blended = { .long_side = W, .smoothing = 0.5f };
  g_autofree char *path = golden_path ("tiny_64x64", ".safetensors");
  g_autoptr (GError) error = NULL;
  g_autoptr (HfamModel) model = hfam_model_load (path, &error);
  g_autofree guint8 *first = g_malloc (W * H * 4), *moved = g_malloc (W * H * 4);
  guint8 before[2][W * H], after[2][W * H];
  int max_diff = 0, changed = 0;

  g_assert_no_error (error);
  for (int m = 0; m < 2; m++) {
    const HfamMemory memory = m ? HFAM_MEMORY_CUDA : HFAM_MEMORY_HOST;
    const HfamImage a = waves_of (first, 0, memory), b = waves_of (moved, 6, memory);
    run_then_follow (model, &a, &b, &compensated, before[m], after[m]);
  }
  for (int i = 0; i < W * H; i++) {
    max_diff = MAX (max_diff, ABS (after[1][i] - after[0][i]));
    changed += ABS (after[1][i] - before[1][i]) > 8;
  }
  /* (the host frames' preprocessing is resize.c's, the stand-in's frame.c's: rounding) */
  g_assert_cmpint (max_diff, <=, 1);
  g_assert_cmpint (changed, >, W * H / 20);

  {
    const HfamImage a = waves_of (first, 0, HFAM_MEMORY_CUDA);
    const HfamImage b = waves_of (moved, 6, HFAM_MEMORY_CUDA);
    run_then_follow (model, &a, &b, &blended, before[1], after[1]);
    g_assert_cmpmem (after[1], W * H, before[1], W * H);
  }
}

/* A follow whose kernel failed (the stand-in spoils the kept matte, as a half-done move would):
 * the next frame starts afresh, its matte what it is alone, not blended into what is left. */
static void
test_device_failed_follow (void)
{
  const HfamFrameParams params = { .long_side = W, .smoothing = 0.5f,
                                   .temporal = HFAM_TEMPORAL_COMPENSATED };
  const HfamOptions options = { .backend = HFAM_BACKEND_CUDA, .pipeline_depth = 1 };
  g_autofree char *path = golden_path ("tiny_64x64", ".safetensors");
  g_autoptr (GError) error = NULL;
  g_autoptr (HfamModel) model = hfam_model_load (path, &error);
  g_autofree guint8 *first = g_malloc (W * H * 4), *moved = g_malloc (W * H * 4);
  guint8 want[W * H], got[W * H];
  HfamContext *ctx;

  g_assert_no_error (error);
  const HfamImage a = waves_of (first, 0, HFAM_MEMORY_CUDA);
  const HfamImage b = waves_of (moved, 6, HFAM_MEMORY_CUDA);
  const HfamImage key = key_of (got, HFAM_MEMORY_CUDA);
  alone (model, &b, &params, want);
  ctx = hfam_context_new (model, &options, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (hfam_context_run (ctx, &a, &params, &key, 1, &error));
  g_assert_no_error (error);
  g_setenv ("FAKE_CUDA_FAIL_FOLLOW", "1", TRUE);
  g_assert_false (hfam_context_follow (ctx, &b, &error));
  g_unsetenv ("FAKE_CUDA_FAIL_FOLLOW");
  g_assert_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND);
  g_clear_error (&error);
  g_assert_true (hfam_context_run (ctx, &b, &params, &key, 1, &error));
  g_assert_no_error (error);
  g_assert_cmpmem (got, W * H, want, W * H);
  hfam_context_free (ctx);
}

/* A blue picture (alpha about 0 in the stand-in's formula) with a red person (about 1) and a
 * red flower apart from it, `fw` x `fh` pixels from (120, 30) (0: none), in `memory`. */
static HfamImage
person_and_flower_of (guint8 *pixels, int fw, int fh, HfamMemory memory)
{
  HfamImage image = packed_image (pixels, W, H, 4, HFAM_FORMAT_RGBA);

  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      const gboolean person = x >= 20 && x < 80 && y >= 10 && y < 85;
      const gboolean flower = x >= 120 && x < 120 + fw && y >= 30 && y < 30 + fh;
      guint8 *p = pixels + ((size_t) y * W + x) * 4;
      p[0] = person || flower ? 255 : 0;
      p[1] = 0;
      p[2] = person || flower ? 0 : 255;
      p[3] = 255;
    }
  image.memory = memory;
  return image;
}

/* ... with a small flower */
static HfamImage
person_and_flower (guint8 *pixels, HfamMemory memory)
{
  return person_and_flower_of (pixels, 10, 8, memory);
}

/* The key of the frame `draw` makes, in host [0] and device [1] memory, with `params` into
 * `with` and with the model's inference size alone into `without`. */
static void
with_and_without (HfamImage (*draw) (guint8 *pixels, HfamMemory memory),
                  const HfamFrameParams *params, guint8 with[2][W * H],
                  guint8 without[2][W * H])
{
  const HfamFrameParams plain = { .long_side = W };
  g_autofree char *path = golden_path ("tiny_64x64", ".safetensors");
  g_autoptr (GError) error = NULL;
  g_autoptr (HfamModel) model = hfam_model_load (path, &error);
  g_autofree guint8 *pixels = g_malloc (W * H * 4);

  g_assert_no_error (error);
  for (int m = 0; m < 2; m++) {
    const HfamImage frame = draw (pixels, m ? HFAM_MEMORY_CUDA : HFAM_MEMORY_HOST);
    alone (model, &frame, params, with[m]);
    alone (model, &frame, &plain, without[m]);
  }
}

static void
test_device_islands (void)
{
  const HfamFrameParams dropping = { .long_side = W, .islands = 0.3f };
  guint8 dropped[2][W * H], kept[2][W * H];

  with_and_without (person_and_flower, &dropping, dropped, kept);
  for (int i = 0; i < W * H; i++) {
    const int x = i % W, y = i / W;
    const gboolean flower = x >= 120 && x < 130 && y >= 30 && y < 38;
    /* (the network runs at 160x96: the resize to 90 rows spreads the flower's edge) */
    const gboolean near = x >= 117 && x < 133 && y >= 27 && y < 41;
    g_assert_cmpint (ABS (dropped[1][i] - dropped[0][i]), <=, 1);
    g_assert_cmpint (ABS (kept[1][i] - kept[0][i]), <=, 1);
    const gboolean inside = x >= 122 && x < 128 && y >= 32 && y < 36;
    if (inside)
      g_assert_cmpint (kept[1][i], >, 200);
    if (flower) {
      g_assert_cmpint (dropped[1][i], <=, 1);
    } else if (!near) {
      g_assert_cmpint (dropped[1][i], ==, kept[1][i]);
    }
  }
}

/* A flower that the network drops, held by the smoothing: 38 x 38 pixels against the
 * person's 60 x 75, it is no island at a share of 0.3 in the first frame. In the next the
 * person stands alone, and the flower, held at 0.7 of its mass by the plain blend, is an
 * island of the kept matte: dropped from it at once, in both memories, where it would
 * otherwise fade over frames. */
static void
test_device_held_islands (void)
{
  const HfamFrameParams params = { .long_side = W, .islands = 0.3f, .smoothing = 0.7f,
                                   .temporal = HFAM_TEMPORAL_BLEND };
  const HfamOptions options = { .backend = HFAM_BACKEND_CUDA, .pipeline_depth = 1 };
  g_autofree char *path = golden_path ("tiny_64x64", ".safetensors");
  g_autoptr (GError) error = NULL;
  g_autoptr (HfamModel) model = hfam_model_load (path, &error);
  g_autofree guint8 *pixels = g_malloc (W * H * 4);
  guint8 first[2][W * H], second[2][W * H];

  g_assert_no_error (error);
  for (int m = 0; m < 2; m++) {
    const HfamMemory memory = m ? HFAM_MEMORY_CUDA : HFAM_MEMORY_HOST;
    HfamContext *ctx = hfam_context_new (model, &options, NULL, &error);
    const HfamImage keys[2] = { key_of (first[m], memory), key_of (second[m], memory) };

    g_assert_no_error (error);
    for (int k = 0; k < 2; k++) {
      const HfamImage frame = person_and_flower_of (pixels, k ? 0 : 38, k ? 0 : 38, memory);
      g_assert_true (hfam_context_run (ctx, &frame, &params, &keys[k], 1, &error));
      g_assert_no_error (error);
    }
    hfam_context_free (ctx);
  }
  for (int i = 0; i < W * H; i++) {
    const int x = i % W, y = i / W;
    const gboolean flower = x >= 122 && x < 156 && y >= 32 && y < 66;
    const gboolean person = x >= 22 && x < 78 && y >= 12 && y < 83;
    g_assert_cmpint (ABS (first[1][i] - first[0][i]), <=, 1);
    g_assert_cmpint (ABS (second[1][i] - second[0][i]), <=, 1);
    if (flower) {
      g_assert_cmpint (first[0][i], >, 200);
      g_assert_cmpint (second[0][i], <=, 1);
    }
    if (person)
      g_assert_cmpint (second[0][i], >, 200);
  }
}

/* A picture in a window box: black bars of TOP rows above and below, LEFT columns on the
 * left; inside, the pattern of person_and_flower. */
#define TOP 15
#define LEFT 12

static HfamImage
window_boxed (guint8 *pixels, HfamMemory memory)
{
  HfamImage image = person_and_flower (pixels, memory);

  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++)
      if (y < TOP || y >= H - TOP || x < LEFT)
        memset (pixels + ((size_t) y * W + x) * 4, 0, 3);
  return image;
}

static void
test_device_letterbox (void)
{
  const HfamFrameParams clearing = { .long_side = W, .letterbox = TRUE };
  guint8 cleared[2][W * H], kept[2][W * H];

  with_and_without (window_boxed, &clearing, cleared, kept);
  for (int i = 0; i < W * H; i++) {
    const int x = i % W, y = i / W;
    /* cleared to the frame's own bar; two pixels inside a bar's edge mix bar and picture in
     * the resizes */
    const gboolean bar = y < TOP || y >= H - TOP || x < LEFT;
    const gboolean picture = y >= TOP + 2 && y < H - TOP - 2 && x >= LEFT + 2;
    g_assert_cmpint (ABS (cleared[1][i] - cleared[0][i]), <=, 1);
    g_assert_cmpint (ABS (kept[1][i] - kept[0][i]), <=, 1);
    if (bar) {
      /* (the stand-in's network mattes black at about a fifth) */
      g_assert_cmpint (kept[1][i], >, 20);
      g_assert_cmpint (cleared[0][i], ==, 0);
      g_assert_cmpint (cleared[1][i], ==, 0);
    } else if (picture) {
      g_assert_cmpint (cleared[1][i], ==, kept[1][i]);
    }
  }
}

/* Non-square pixels: a frame of 2:1 pixels runs at the shown picture's 160x32 in both
 * memories, alike, and not as square pixels' 160x96 would. */
static void
test_device_pixel_aspect (void)
{
  const HfamFrameParams shown = { .long_side = W, .pixel_aspect = 2.0f };
  guint8 wide[2][W * H], square[2][W * H];
  int largest = 0;

  with_and_without (person_and_flower, &shown, wide, square);
  for (int i = 0; i < W * H; i++) {
    g_assert_cmpint (ABS (wide[1][i] - wide[0][i]), <=, 1);
    largest = MAX (largest, ABS (wide[1][i] - square[1][i]));
  }
  /* (the person's edges, resized from 32 rows instead of 96) */
  g_assert_cmpint (largest, >, 20);

  /* the kept device matte stands for the next frame of that shape */
  {
    const HfamOptions options = { .backend = HFAM_BACKEND_CUDA, .pipeline_depth = 1 };
    g_autofree char *path = golden_path ("tiny_64x64", ".safetensors");
    g_autoptr (GError) error = NULL;
    g_autoptr (HfamModel) model = hfam_model_load (path, &error);
    g_autoptr (HfamContext) ctx = hfam_context_new (model, &options, NULL, &error);
    g_autofree guint8 *pixels = g_malloc (W * H * 4);
    const HfamImage frame = person_and_flower (pixels, HFAM_MEMORY_CUDA);
    guint8 again[W * H];
    const HfamImage key = key_of (again, HFAM_MEMORY_CUDA);

    g_assert_no_error (error);
    g_assert_true (hfam_context_run (ctx, &frame, &shown, &key, 1, &error));
    memset (again, 0, sizeof again);
    g_assert_true (hfam_context_write_kept (ctx, &frame, &key, 1, &error));
    g_assert_no_error (error);
    g_assert_cmpmem (again, W * H, wide[1], W * H);
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
  g_test_add_func ("/device-frames/follow", test_device_follow);
  g_test_add_func ("/device-frames/failed-follow", test_device_failed_follow);
  g_test_add_func ("/device-frames/islands", test_device_islands);
  g_test_add_func ("/device-frames/held-islands", test_device_held_islands);
  g_test_add_func ("/device-frames/letterbox", test_device_letterbox);
  g_test_add_func ("/device-frames/pixel-aspect", test_device_pixel_aspect);
  return g_test_run ();
}
