/* The engine's temporal path on host frames (kernels/temporal.h, compensate.h, refine.h):
 * the motion-weighted blend and the motion compensation reach their kernels with the right
 * planes in the right order, and with guided refinement the refined matte is held at the
 * frame's size with the blend's still weights, over the frame before's, and only then.
 * Usage: test-engine-temporal GOLDEN_DIR */
#include "compensate.h"
#include "context.h"
#include "engine-test.h"
#include "hfam-internal.h"
#include "refine.h"
#include "resize.h"
#include "temporal.h"

#include <math.h>
#include <string.h>

/* The golden R18, loaded once by main for every test. */
static HfamModel *r18;

/* A one-thread CPU context on it. */
static HfamContext *
new_context (void)
{
  g_autoptr (GError) error = NULL;
  HfamContext *ctx = cpu_context (r18, 1, &error);

  g_assert_no_error (error);
  return ctx;
}

/* HFAM_TEMPORAL_MOTION on host frames: the frame's grey plane and the kept one's reach
 * hfam_matte_blend_motion in that order (the kept matte after a frame is the kernel's blend of
 * the matte before and the frame's own), and a picture that only changes by noise below
 * HFAM_MOTION_STILL blends as the plain blend does. */
static void
test_motion_matte (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (HfamContext) ctx = new_context (), plain = new_context (), fresh = new_context ();
  guint8 pixels[3][PIPE_W * PIPE_H * 4];
  float got[PIPE_W * PIPE_H], want[PIPE_W * PIPE_H];
  const HfamFrameParams motion = { .long_side = 64, .smoothing = 0.4f,
                                   .temporal = HFAM_TEMPORAL_MOTION };
  const HfamFrameParams blend = { .long_side = 64, .smoothing = 0.4f };
  HfamMotionParams mp;
  const HfamImage out = float_matte (got, PIPE_W, PIPE_H);
  HfamImage images[3];

  fill_frame (pixels[0], 0);
  for (size_t i = 0; i < sizeof pixels[0]; i++) {
    pixels[1][i] = (guint8) CLAMP (pixels[0][i] + (int) (i % 3) - 1, 0, 255);  /* noise */
    /* moved: the left half changes, the right half is the noisy frame again */
    pixels[2][i] = (i / 4) % PIPE_W < PIPE_W / 2 ? 255 - pixels[0][i] : pixels[1][i];
  }
  for (int k = 0; k < 3; k++)
    images[k] = packed_image (pixels[k], PIPE_W, PIPE_H, 4, HFAM_FORMAT_RGBA);

  /* noise only: the plain blend's matte */
  g_assert_true (hfam_context_run (ctx, &images[0], &motion, &out, 1, &error));
  g_assert_true (hfam_context_run (ctx, &images[1], &motion, &out, 1, &error));
  memcpy (want, got, sizeof want);
  g_assert_true (hfam_context_run (plain, &images[0], &blend, &out, 1, &error));
  g_assert_true (hfam_context_run (plain, &images[1], &blend, &out, 1, &error));
  g_assert_no_error (error);
  expect_same_matte (got, want);

  /* a changed picture: the kernel's blend of the kept matte and the frame's, by their greys */
  const size_t n = (size_t) ctx->kept.width * ctx->kept.height;
  g_autofree float *kept = g_memdup2 (ctx->kept.buffers.host, sizeof (float) * n);
  g_autofree float *kept_grey = g_memdup2 (ctx->kept.buffers.grey, sizeof (float) * n);
  g_assert_true (ctx->kept.grey_valid);
  g_assert_true (hfam_context_run (fresh, &images[2], &blend, &out, 1, &error));
  g_assert_true (hfam_context_run (ctx, &images[2], &motion, &out, 1, &error));
  g_assert_no_error (error);
  hfam_motion_params_init (&mp, 0.4f);
  g_assert_cmpint (hfam_matte_blend_motion (kept, fresh->kept.buffers.host,
                                            ctx->kept.buffers.grey, kept_grey, NULL,
                                            ctx->kept.width, ctx->kept.height, &mp, NULL),
                   ==, 0);
  g_assert_cmpfloat (max_abs_diff (ctx->kept.buffers.host, kept, n), <=, 1e-6);
  /* and the picture's change told the halves apart: the fresh matte came through as it is
   * where the picture moved, and not where it did not */
  size_t taken = 0;
  for (size_t i = 0; i < n; i++)
    taken += ctx->kept.buffers.host[i] == fresh->kept.buffers.host[i];
  g_assert_cmpuint (taken, >, 0);
  g_assert_cmpuint (taken, <, n);
}

/* kept and kept_grey (w x h) moved by the kernel along the flow of grey against kept_grey, at
 * the engine's flow parameters; how far each pixel moved into `moved` unless NULL. */
static void
compensate_by_kernel (float *kept, float *kept_grey, const float *grey, int w, int h,
                      float *moved)
{
  HfamFlowParams fp;
  hfam_flow_params_init (&fp);
  g_autofree float *scratch = g_new (float, hfam_compensate_scratch_floats (w, h, &fp));

  g_assert_cmpint (hfam_motion_compensate (kept, kept_grey, grey, w, h, &fp, moved, scratch),
                   ==, 0);
}

/* Two RGBA frames of PIPE_W x PIPE_H: the test picture, and it moved 3 pixels to the right. */
static void
moved_pair (guint8 pixels[2][PIPE_W * PIPE_H * 4], HfamImage images[2])
{
  fill_frame (pixels[0], 0);
  for (size_t i = 0; i < PIPE_W * PIPE_H * 4; i++)
    pixels[1][i] = pixels[0][i - (i / 4 % PIPE_W >= 3 ? 12 : 0)];
  for (int k = 0; k < 2; k++)
    images[k] = packed_image (pixels[k], PIPE_W, PIPE_H, 4, HFAM_FORMAT_RGBA);
}

/* HFAM_TEMPORAL_COMPENSATED on host frames: the kept matte and grey are moved along the flow
 * of the frame's grey against the kept one before the motion blend, in that order, and the
 * blend holds the moved pixels with the smoothing's HFAM_MOTION_MOVED_SHARE. */
static void
test_compensated_matte (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (HfamContext) ctx = new_context (), fresh = new_context ();
  guint8 pixels[2][PIPE_W * PIPE_H * 4];
  float got[PIPE_W * PIPE_H];
  const HfamFrameParams compensated = { .long_side = 64, .smoothing = 0.6f,
                                        .temporal = HFAM_TEMPORAL_COMPENSATED };
  const HfamFrameParams none = { .long_side = 64 };
  HfamMotionParams mp;
  const HfamImage out = float_matte (got, PIPE_W, PIPE_H);
  HfamImage images[2];

  moved_pair (pixels, images);

  g_assert_true (hfam_context_run (ctx, &images[0], &compensated, &out, 1, &error));
  g_assert_no_error (error);
  const int w = ctx->kept.width, h = ctx->kept.height;
  g_autofree float *kept = g_memdup2 (ctx->kept.buffers.host, sizeof (float) * w * h);
  g_autofree float *kept_grey = g_memdup2 (ctx->kept.buffers.grey, sizeof (float) * w * h);
  g_autofree float *moved = g_new (float, w * h);
  g_assert_true (hfam_context_run (fresh, &images[1], &none, &out, 1, &error));
  g_assert_true (hfam_context_run (ctx, &images[1], &compensated, &out, 1, &error));
  g_assert_no_error (error);
  compensate_by_kernel (kept, kept_grey, ctx->kept.buffers.grey, w, h, moved);
  hfam_motion_params_init (&mp, 0.6f);
  g_assert_cmpfloat (mp.hold_moved, ==, 0.6f * HFAM_MOTION_MOVED_SHARE);
  g_assert_cmpint (hfam_matte_blend_motion (kept, fresh->kept.buffers.host,
                                            ctx->kept.buffers.grey, kept_grey, moved, w, h, &mp,
                                            NULL), ==, 0);
  g_assert_cmpfloat (max_abs_diff (ctx->kept.buffers.host, kept, (size_t) w * h), <=, 1e-6);
}

/* hfam_context_follow on host frames: after a frame that ran with HFAM_TEMPORAL_COMPENSATED,
 * the kept matte and grey are moved along the flow of the next frame's grey against the kept
 * one (the matte then belongs to that frame: its grey is that frame's), and the outputs are
 * written from the moved matte; after the plain blend, or with no matte kept, nothing moves
 * or it is refused. */
static void
test_follow (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (HfamContext) ctx = new_context (), fresh = new_context (), plain = new_context ();
  guint8 pixels[2][PIPE_W * PIPE_H * 4];
  float got[PIPE_W * PIPE_H], want[PIPE_W * PIPE_H];
  const HfamFrameParams compensated = { .long_side = 64, .smoothing = 0.6f,
                                        .temporal = HFAM_TEMPORAL_COMPENSATED };
  const HfamFrameParams blend = { .long_side = 64, .smoothing = 0.6f };
  const HfamImage out = float_matte (got, PIPE_W, PIPE_H);
  HfamImage images[2];

  moved_pair (pixels, images);

  /* nothing kept yet: refused */
  g_assert_false (hfam_context_follow (ctx, &images[1], &error));
  g_assert_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT);
  g_clear_error (&error);

  g_assert_true (hfam_context_run (ctx, &images[0], &compensated, &out, 1, &error));
  g_assert_true (hfam_context_run (fresh, &images[1], &compensated, &out, 1, &error));
  g_assert_no_error (error);
  const int w = ctx->kept.width, h = ctx->kept.height;
  g_autofree float *kept = g_memdup2 (ctx->kept.buffers.host, sizeof (float) * w * h);
  g_autofree float *kept_grey = g_memdup2 (ctx->kept.buffers.grey, sizeof (float) * w * h);
  compensate_by_kernel (kept, kept_grey, fresh->kept.buffers.grey, w, h, NULL);
  g_assert_cmpfloat (max_abs_diff (kept, ctx->kept.buffers.host, (size_t) w * h), >, 0.0f);
  g_assert_true (hfam_context_follow (ctx, &images[1], &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (max_abs_diff (ctx->kept.buffers.host, kept, (size_t) w * h), <=, 1e-6);
  g_assert_cmpfloat (max_abs_diff (ctx->kept.buffers.grey, fresh->kept.buffers.grey,
                                   (size_t) w * h), ==, 0.0f);
  /* the outputs come from the moved matte */
  g_assert_true (hfam_context_write_kept (ctx, &images[1], &out, 1, &error));
  g_assert_no_error (error);
  g_assert_cmpint (hfam_resize_plane (kept, w, h, w, want, PIPE_W, PIPE_H, PIPE_W), ==, 0);
  expect_same_matte (got, want);

  /* the plain blend does not compensate motion: the kept matte stays */
  g_assert_true (hfam_context_run (plain, &images[0], &blend, &out, 1, &error));
  g_assert_no_error (error);
  g_autofree float *before = g_memdup2 (plain->kept.buffers.host, sizeof (float) * w * h);
  g_assert_true (hfam_context_follow (plain, &images[1], &error));
  g_assert_no_error (error);
  g_assert_cmpfloat (max_abs_diff (plain->kept.buffers.host, before, (size_t) w * h), ==, 0.0f);
}

/* The refined matte of the kept one for `frame` (RGBA, PIPE_W x PIPE_H) by the kernel, held
 * with `hold` (NULL: not). */
static void
refine_kept (const HfamContext *ctx, guint8 *frame, const HfamRefineHold *hold, float *out)
{
  const HfamFrame k = { .planes = { frame }, .strides = { PIPE_W * 4 }, .width = PIPE_W,
                        .height = PIPE_H, .format = HFAM_FRAME_RGBA };
  const HfamRefineParams rp = { .radius = HFAM_REFINE_RADIUS_DEFAULT,
                                .eps = HFAM_REFINE_EPS_DEFAULT,
                                .stats_width = ctx->kept.width,
                                .stats_height = ctx->kept.height, .colour = 1 };

  g_assert_cmpint (hfam_refine_held (ctx->kept.buffers.host, ctx->kept.width, ctx->kept.height,
                                     &k, NULL, &rp, NULL, hold, out, PIPE_W, NULL), ==, 0);
}

/* Guided refinement with motion-weighted smoothing: the first frame only starts the held
 * matte; the next ones are the kernel's hold of their refined matte over the frame before's
 * with the blend's still weights (which hold something on a picture that only changes by
 * noise, and nothing where it changed); outputs written between frames leave it alone; a
 * frame that followed the kept matte in between, the plain blend and a restart hold nothing. */
static void
test_held_matte (void)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (HfamContext) ctx = new_context ();
  static guint8 pixels[3][PIPE_W * PIPE_H * 4];
  static float got[PIPE_W * PIPE_H], want[PIPE_W * PIPE_H], plain[PIPE_W * PIPE_H],
      before[PIPE_W * PIPE_H], after[PIPE_W * PIPE_H];
  const HfamFrameParams motion = { .long_side = 64, .smoothing = 0.6f,
                                   .temporal = HFAM_TEMPORAL_COMPENSATED };
  const HfamFrameParams blend = { .long_side = 64, .smoothing = 0.6f };
  const HfamFrameParams restart = { .long_side = 64 };
  const HfamImage out = float_matte (got, PIPE_W, PIPE_H);
  const size_t n = (size_t) PIPE_W * PIPE_H;
  HfamEdgeParams edges;
  HfamImage images[3];

  hfam_edge_params_init (&edges);
  edges.refine = HFAM_REFINE_GUIDED;
  g_assert_true (hfam_context_set_edges (ctx, &edges, &error));
  fill_frame (pixels[0], 2);
  for (size_t i = 0; i < sizeof pixels[0]; i++) {
    pixels[1][i] = (guint8) CLAMP (pixels[0][i] + (int) (i % 5) - 2, 0, 255);  /* noise */
    pixels[2][i] = (i / 4) % PIPE_W < PIPE_W / 2 ? 255 - pixels[0][i] : pixels[1][i];
  }
  for (int k = 0; k < 3; k++)
    images[k] = packed_image (pixels[k], PIPE_W, PIPE_H, 4, HFAM_FORMAT_RGBA);

  /* the first frame: its refined matte as it is, and the held one starts from it */
  g_assert_true (hfam_context_run (ctx, &images[0], &motion, &out, 1, &error));
  g_assert_no_error (error);
  memset (before, 0, sizeof before);
  const HfamRefineHold start = { NULL, before, PIPE_W };
  refine_kept (ctx, pixels[0], &start, want);
  expect_same_matte (got, want);
  g_assert_true (ctx->kept.held_current);
  expect_same_matte (ctx->kept.buffers.held, before);

  /* noise only: held over the first frame's, with the blend's still weights */
  for (int k = 1; k < 3; k++) {
    size_t held = 0;
    g_assert_true (hfam_context_run (ctx, &images[k], &motion, &out, 1, &error));
    g_assert_no_error (error);
    g_assert_true (ctx->kept.still_valid);
    memcpy (after, before, sizeof after);
    const HfamRefineHold hold = { ctx->kept.buffers.still, after, PIPE_W };
    refine_kept (ctx, pixels[k], &hold, want);
    refine_kept (ctx, pixels[k], NULL, plain);
    expect_same_matte (got, want);
    expect_same_matte (ctx->kept.buffers.held, after);
    for (size_t i = 0; i < n; i++)
      held += fabsf (got[i] - plain[i]) > 1e-4f;
    /* the noise moved the refined edges, and the hold kept some of them where they were;
     * where the picture changed (the left half of the third frame) nothing is held */
    g_assert_cmpuint (held, >, 0);
    if (k == 2)
      for (int y = 0; y < PIPE_H; y++)
        for (int x = 0; x < PIPE_W / 4; x++)
          g_assert_cmpfloat_with_epsilon (got[y * PIPE_W + x], plain[y * PIPE_W + x], 1e-6);
    /* an output written again between frames (inference-interval) is not held, and leaves
     * the held matte as it was */
    memcpy (before, ctx->kept.buffers.held, sizeof before);
    g_assert_true (hfam_context_write_kept (ctx, &images[0], &out, 1, &error));
    g_assert_no_error (error);
    g_assert_cmpint (memcmp (before, ctx->kept.buffers.held, sizeof before), ==, 0);
    refine_kept (ctx, pixels[0], NULL, want);
    expect_same_matte (got, want);
  }

  /* a frame that followed the kept matte in between (inference-interval) ends the hold: the
   * held detail was refined where the matte was before it moved */
  g_assert_true (hfam_context_follow (ctx, &images[0], &error));
  g_assert_no_error (error);
  g_assert_true (hfam_context_run (ctx, &images[1], &motion, &out, 1, &error));
  g_assert_no_error (error);
  g_assert_false (ctx->kept.still_valid);
  g_assert_true (ctx->kept.held_current);
  refine_kept (ctx, pixels[1], NULL, want);
  expect_same_matte (got, want);

  /* the plain blend and a restart: the refined matte as it is */
  for (int k = 0; k < 2; k++) {
    g_assert_true (hfam_context_run (ctx, &images[1], k ? &restart : &blend, &out, 1, &error));
    g_assert_no_error (error);
    g_assert_false (ctx->kept.holds);
    refine_kept (ctx, pixels[1], NULL, want);
    expect_same_matte (got, want);
  }
}

int
main (int argc, char **argv)
{
  g_autofree char *path = NULL;
  g_autoptr (GError) error = NULL;
  int status;

  engine_test_init (&argc, &argv);
  path = golden_path ("r18_64x64", ".safetensors");
  r18 = hfam_model_load (path, &error);
  g_assert_no_error (error);
  g_test_add_func ("/engine/motion-matte", test_motion_matte);
  g_test_add_func ("/engine/compensated-matte", test_compensated_matte);
  g_test_add_func ("/engine/held-matte", test_held_matte);
  g_test_add_func ("/engine/follow", test_follow);
  status = g_test_run ();
  hfam_model_free (r18);
  return status;
}
