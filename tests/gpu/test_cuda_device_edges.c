/* The edges (hfam_context_set_edges: refinement, foreground fill, key levels) on frames in CUDA
 * memory against the same frame in host memory, on one CUDA context: the device path runs the
 * CUDA ops (refine.cu, foreground.cu, matte.cu's resize), the host path their CPU twins, both
 * from the same network. The frame is the same picture in both memories, so the two mattes
 * differ only by the pre-processing's rounding; in fp32 every output byte may differ by at
 * most 3 and at most 1 % of them by more than 1, but for 0.05 % of them, where that rounding
 * tips a near-tie of P_s; in fp16 by at most 6 but for 1.5 %, and 6 % by more than 1
 * (Tolerance says why).
 * Colours under alpha 0 are left out: they show nowhere, and there the foreground fill is the
 * ratio of two means near 0, which neither side has to the byte.
 * Frames: RGBA, BGRA, RGB, BGR, NV12 and I420 (BT.709, limited range) at 333x187, 640x360 and
 * 240x427 (another inference size), a soft disc and stripes over a gradient with noise, each
 * format at some sizes tightly packed and at others with rows padded to the next multiple of
 * 256 bytes (pitched), its outputs alike, whose padding no path may write. Outputs: GRAY8,
 * RGBA, BGRA premultiplied. Then the same with the element's defaults for the kept matte
 * (smoothing 0.95, motion-compensated, islands 0.05 (in fp32; main says why), letterbox on)
 * after a frame whose disc sat 5 pixels to the left: the kept matte's grey plane,
 * compensation, motion blend, the islands dropped from the fresh matte and from the blend, and
 * held refinement on the device against the host's;
 * with temporal-mode=motion (no compensation); and the frame following the kept matte of the
 * moved one instead of running (hfam_context_follow, as the element's skipped frames do).
 * And a frame in a window box (black bars above, below and on the left) with
 * HfamFrameParams.letterbox, refined with the foreground and resized with levels: the bars
 * found and cleared on the device (kernels/bars.cu) as on the host, to the frame's own bars.
 * All of it on a context alone at depth 1, then on a batch group's lone member at depth 2
 * (its device frames through its frames-only backend and the group's lane), each in fp32 and
 * in fp16 (the element's precision on CUDA). Last, in each group, a member freed with its
 * device frames in flight (dropped on the device) while another stays, which must still run.
 * Exits 77 (skipped) when no CUDA device opens. Built for the CUDA emulator (tests/gpu/emulator,
 * HFAM_CUDA_EMULATOR), each format and case runs at one size of the three.
 * Usage: test-cuda-device-edges MODEL */
#include <hfam/hfam.h>
#include "check-cuda.h"

#include <cuda_runtime_api.h>
#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define N_OUTPUTS 3
/* the value a pitched image's padding bytes hold, which no path may write */
#define PADDING_BYTE 0x5a

static const HfamFormat output_formats[N_OUTPUTS] = { HFAM_FORMAT_GRAY8, HFAM_FORMAT_RGBA,
                                                      HFAM_FORMAT_BGRA };

static gboolean
is_packed (HfamFormat f)
{
  return f != HFAM_FORMAT_NV12 && f != HFAM_FORMAT_I420;
}

static int
bytes_per_pixel (HfamFormat f)
{
  return f == HFAM_FORMAT_GRAY8 ? 1 : f == HFAM_FORMAT_RGB || f == HFAM_FORMAT_BGR ? 3 : 4;
}

static int
align_up (int n, int to)
{
  return (n + to - 1) / to * to;
}

/* Plane k's rows and the bytes of each row. */
static void
plane_shape (HfamFormat format, int w, int h, int k, int *rows, int *row_bytes)
{
  const int cw = (w + 1) / 2, ch = (h + 1) / 2;

  *rows = k == 0 ? h : ch;
  *row_bytes = k == 0 ? (is_packed (format) ? bytes_per_pixel (format) * w : w)
                      : format == HFAM_FORMAT_NV12 ? 2 * cw : cw;
}

static int
n_planes (HfamFormat f)
{
  return f == HFAM_FORMAT_I420 ? 3 : f == HFAM_FORMAT_NV12 ? 2 : 1;
}

/* The bytes of an image, its planes in one block, from plane 0. */
static size_t
image_bytes (const HfamImage *f)
{
  size_t bytes = 0;

  for (int k = 0; k < n_planes (f->format); k++) {
    int rows, row_bytes;
    plane_shape (f->format, f->width, f->height, k, &rows, &row_bytes);
    bytes += (size_t) f->strides[k] * rows;
  }
  return bytes;
}

/* An image in host memory, its planes in one block: tightly packed, or with rows padded to 256
 * bytes as pitched device memory is (the padding set to PADDING_BYTE). */
static HfamImage
image_new (HfamFormat format, int w, int h, gboolean pitched)
{
  HfamImage f = { .width = w, .height = h, .format = format, .memory = HFAM_MEMORY_HOST,
                  .yuv_matrix = HFAM_YUV_BT709 };
  uint8_t *p;

  for (int k = 0; k < n_planes (format); k++) {
    int rows, row_bytes;
    plane_shape (format, w, h, k, &rows, &row_bytes);
    /* (at least one byte of padding, also where a row is a multiple of 256 already) */
    f.strides[k] = pitched ? align_up (row_bytes + 1, 256) : row_bytes;
  }
  p = g_malloc (image_bytes (&f));
  memset (p, PADDING_BYTE, image_bytes (&f));
  for (int k = 0; k < n_planes (format); k++) {
    int rows, row_bytes;
    plane_shape (format, w, h, k, &rows, &row_bytes);
    f.planes[k] = p;
    for (int y = 0; y < rows; y++)
      memset (p + (size_t) y * f.strides[k], 0, row_bytes);
    p += (size_t) f.strides[k] * rows;
  }
  return f;
}

/* A frame: the disc `shift` pixels to the right of the centre; with `bars`, black bars of an
 * eighth of the height above and below and a tenth of the width on the left. */
static HfamImage
frame_new (HfamFormat format, int w, int h, int shift, gboolean pitched, gboolean bars,
           GRand *rand)
{
  HfamImage f = image_new (format, w, h, pitched);
  const int bpp = bytes_per_pixel (format);
  const gboolean bgr = format == HFAM_FORMAT_BGR || format == HFAM_FORMAT_BGRA;

  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      const double dx = (x - 0.5 * w - shift) / (0.3 * h), dy = (y - 0.55 * h) / (0.3 * h);
      const double disc = 1.0 / (1.0 + exp (8.0 * (sqrt (dx * dx + dy * dy) - 1.0)));
      const double stripes = 0.5 + 0.5 * sin (x * 0.7 + y * 0.05);
      int rgb[3];
      for (int k = 0; k < 3; k++) {
        const double bg = 40 + 150.0 * x / w * (k == 1) + 120.0 * y / h * (k == 2);
        const double fg = k == 0 ? 220 : k == 1 ? 160 * stripes + 40 : 90;
        rgb[k] = CLAMP ((int) lround (disc * fg + (1 - disc) * bg
                                      + g_rand_double_range (rand, -6, 6)), 0, 255);
      }
      if (bars && (y < h / 8 || y >= h - h / 8 || x < w / 10))
        rgb[0] = rgb[1] = rgb[2] = 0;
      if (is_packed (format)) {
        uint8_t *px = f.planes[0] + (size_t) y * f.strides[0] + (size_t) bpp * x;
        for (int k = 0; k < 3; k++)
          px[k] = (uint8_t) rgb[bgr ? 2 - k : k];
        if (bpp == 4)
          px[3] = 255;
        continue;
      }
      const double Y = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
      f.planes[0][(size_t) y * f.strides[0] + x] = (uint8_t) lround (16 + Y * 219.0 / 255.0);
      if (x % 2 == 0 && y % 2 == 0) {
        const int u = CLAMP (lround (128 + (rgb[2] - Y) / 1.8556 * 224.0 / 255.0), 0, 255);
        const int v = CLAMP (lround (128 + (rgb[0] - Y) / 1.5748 * 224.0 / 255.0), 0, 255);
        const size_t row = (size_t) (y / 2);
        if (format == HFAM_FORMAT_NV12) {
          f.planes[1][row * f.strides[1] + x] = (uint8_t) u;
          f.planes[1][row * f.strides[1] + x + 1] = (uint8_t) v;
        } else {
          f.planes[1][row * f.strides[1] + x / 2] = (uint8_t) u;
          f.planes[2][row * f.strides[2] + x / 2] = (uint8_t) v;
        }
      }
    }
  return f;
}

/* The same image in device memory (one allocation; the caller frees planes[0]). */
static HfamImage
image_upload (const HfamImage *host)
{
  HfamImage d = *host;
  uint8_t *p;

  CHECK_CUDA (cudaMalloc ((void **) &p, image_bytes (host)));
  CHECK_CUDA (cudaMemcpy (p, host->planes[0], image_bytes (host), cudaMemcpyHostToDevice));
  d.memory = HFAM_MEMORY_CUDA;
  for (int k = 0; k < 3; k++)
    d.planes[k] = host->planes[k] ? p + (host->planes[k] - host->planes[0]) : NULL;
  return d;
}

/* How far the device's output bytes may be from the host's: the mattes differ by the
 * pre-processing's rounding (fp32), and by where that rounding moves an fp16 value. Where that
 * rounding tips a pixel whose two best classes are near-tied (P_s, which this test does not
 * see) to the other class, that pixel's alpha_p differs by more, and the few frame pixels it
 * reaches. Measured on the CUDA emulator (2026-12-07, 60 cases of each context, tests/gpu/
 * emulator): fp32, clusters of 2x2 pixels up to 128 levels apart in 4 cases of 121, at most
 * 0.014 % of the bytes beyond 3; fp16 (the random R18 moves P_s by up to some 1e-2 there,
 * so near-ties are many), bytes beyond 6 in most cases, up to 0.64 % of them, and up to 3.7 %
 * beyond 1; up to 0.98 % and 4.0 % with split-K or cuBLASLt forced (in fp16 the ways the
 * backend picks by timing round otherwise, and a GPU picks its own). The bounds below leave
 * room for the GPU's own rounding; a plane, row or channel gone wrong is off in far more. */
typedef struct {
  int worst;               /* no byte further than this, but for near-ties: */
  double share_over_worst; /* at most this share of them further */
  double share_over_1;     /* at most this share of them off by more than 1 */
} Tolerance;

/* Compares output o's bytes row by row: the pixels (colours under alpha 0 left out: they show
 * nowhere, and there the foreground fill is the ratio of two means near 0), and the padding,
 * which neither path may write. */
static void
compare_bytes (const HfamImage *want_image, const uint8_t *got, int limit, size_t *worst,
               size_t *over_limit, size_t *over_one, size_t *total, size_t *padding_written)
{
  const int bpp = bytes_per_pixel (want_image->format);
  const int row_bytes = bpp * want_image->width, stride = want_image->strides[0];

  for (int y = 0; y < want_image->height; y++) {
    const uint8_t *want = want_image->planes[0] + (size_t) y * stride;
    const uint8_t *row = got + (size_t) y * stride;
    for (int i = 0; i < row_bytes; i++) {
      const size_t d = (size_t) ABS (row[i] - want[i]);
      if (bpp == 4 && i % 4 != 3 && want[i - i % 4 + 3] == 0)
        continue;
      *worst = MAX (*worst, d);
      *over_limit += d > (size_t) limit;
      *over_one += d > 1;
      (*total)++;
    }
    for (int i = row_bytes; i < stride; i++)
      *padding_written += (want[i] != PADDING_BYTE) + (row[i] != PADDING_BYTE);
  }
}

/* The frame run, or (`follows`) followed and written from the kept matte as a frame that does
 * not run the network is. */
static gboolean
run_or_follow (HfamContext *ctx, const HfamImage *frame, const HfamFrameParams *params,
               gboolean follows, const HfamImage *outputs, GError **error)
{
  if (follows)
    return hfam_context_follow (ctx, frame, error)
           && hfam_context_write_kept (ctx, frame, outputs, N_OUTPUTS, error);
  return hfam_context_run (ctx, frame, params, outputs, N_OUTPUTS, error);
}

/* One case: the outputs of the host frame and of the device frame, compared; 0 or 1. With
 * `before`, each path runs that frame first, with `params` too (it finds no kept matte in its
 * memory, so it starts afresh, but keeps its grey plane and held refinement for the next:
 * without them the frame would take the plain blend), its outputs not looked at; and with
 * `follows`, the frame follows the kept matte instead of running. Outputs are pitched where
 * the frame is. */
static int
run_case (HfamContext *ctx, const HfamImage *host, const HfamImage *before,
          const HfamFrameParams *params, gboolean follows, const HfamEdgeParams *edges,
          const Tolerance *tol, const char *name)
{
  const int w = host->width, h = host->height;
  int rows, row_bytes;
  plane_shape (host->format, w, h, 0, &rows, &row_bytes);
  const gboolean pitched = host->strides[0] != row_bytes;
  HfamImage dev = image_upload (host), out_host[N_OUTPUTS], out_dev[N_OUTPUTS];
  HfamImage dev_before = before ? image_upload (before) : dev;
  g_autoptr (GError) error = NULL;
  size_t worst = 0, over_worst = 0, over_one = 0, total = 0, padding_written = 0;

  if (!hfam_context_set_edges (ctx, edges, &error))
    g_error ("%s: set_edges: %s", name, error->message);
  for (int o = 0; o < N_OUTPUTS; o++) {
    out_host[o] = image_new (output_formats[o], w, h, pitched);
    out_host[o].premultiplied = output_formats[o] == HFAM_FORMAT_BGRA;
    out_dev[o] = image_upload (&out_host[o]);
  }
  /* (a frame of the other memory starts afresh: the kept matte is in its frame's memory) */
  if ((before && !hfam_context_run (ctx, before, params, out_host, N_OUTPUTS, &error))
      || !run_or_follow (ctx, host, params, follows, out_host, &error)
      || (before && !hfam_context_run (ctx, &dev_before, params, out_dev, N_OUTPUTS, &error))
      || !run_or_follow (ctx, &dev, params, follows, out_dev, &error))
    g_error ("%s: %s", name, error->message);
  for (int o = 0; o < N_OUTPUTS; o++) {
    const size_t n = image_bytes (&out_host[o]);
    g_autofree uint8_t *got = g_malloc (n);
    CHECK_CUDA (cudaMemcpy (got, out_dev[o].planes[0], n, cudaMemcpyDeviceToHost));
    compare_bytes (&out_host[o], got, tol->worst, &worst, &over_worst, &over_one, &total,
                   &padding_written);
    g_free (out_host[o].planes[0]);
    cudaFree (out_dev[o].planes[0]);
  }
  cudaFree (dev.planes[0]);
  if (before)
    cudaFree (dev_before.planes[0]);
  const gboolean ok = over_worst <= total * tol->share_over_worst
                      && over_one <= total * tol->share_over_1 && padding_written == 0;
  printf ("%s %-64s worst difference %zu, %.4f %% of the bytes off by more than %d, %.3f %% by "
          "more than 1, %zu padding bytes written\n", ok ? "ok  " : "FAIL", name, worst,
          100.0 * over_worst / total, tol->worst, 100.0 * over_one / total, padding_written);
  return ok ? 0 : 1;
}

/* Every case on `ctx`; `what` ends each case's name; `islands` is the smoothed cases' share. */
static int
run_cases (HfamContext *ctx, const char *what, const Tolerance *tol, float islands, GRand *rand)
{
  /* (the portrait size runs at another inference size: the kept state is made anew) */
  static const int sizes[][2] = { { 333, 187 }, { 640, 360 }, { 240, 427 } };
  static const HfamFormat formats[] = { HFAM_FORMAT_RGBA, HFAM_FORMAT_NV12, HFAM_FORMAT_I420,
                                        HFAM_FORMAT_BGRA, HFAM_FORMAT_RGB, HFAM_FORMAT_BGR };
  static const char *const format_names[] = { "RGBA", "NV12", "I420", "BGRA", "RGB", "BGR" };
  int failed = 0;

  for (size_t s = 0; s < G_N_ELEMENTS (sizes); s++)
    for (size_t f = 0; f < G_N_ELEMENTS (formats); f++)
      for (int e = 0; e < 10; e++) {
#ifdef HFAM_CUDA_EMULATOR
        /* (on the CUDA emulator, where each case takes a second or two: each format and case
         * at one of the sizes, every size in turn) */
        if (s != (f + e) % G_N_ELEMENTS (sizes))
          continue;
#endif
        /* e 4, 5: refined, and refined with the foreground, smoothed (motion-compensated)
         * after a moved frame; e 6: refined, smoothed by motion alone after it; e 7: refined
         * with the foreground, following the kept matte of a moved frame (compensated);
         * e 8, 9: in a window box, letterbox on, as e 1 and e 3 */
        const gboolean moved = e >= 4 && e < 8, follows = e == 7, boxed = e >= 8;
        /* (every format and every size both tightly packed and pitched, frames and outputs) */
        const gboolean pitched = (s + f) % 2 == 1;
        const HfamFrameParams smoothed = {
          .smoothing = HFAM_TEMPORAL_SMOOTHING_DEFAULT,
          .temporal = e == 6 ? HFAM_TEMPORAL_MOTION : HFAM_TEMPORAL_COMPENSATED,
          .islands = islands,
          .letterbox = TRUE,
        };
        const HfamFrameParams letterboxed = { .letterbox = TRUE };
        HfamImage before = frame_new (formats[f], sizes[s][0], sizes[s][1], -5, pitched, FALSE,
                                      rand);
        HfamImage host = frame_new (formats[f], sizes[s][0], sizes[s][1], 0, pitched, boxed,
                                    rand);
        HfamEdgeParams edges;
        char name[160];
        hfam_edge_params_init (&edges);
        /* refined; refined with the foreground and levels; resized with the foreground;
         * resized with levels only */
        edges.refine = e < 2 || moved || e == 8 ? HFAM_REFINE_GUIDED : HFAM_REFINE_NONE;
        edges.fill = e == 1 || e == 2 || e == 5 || e == 7 || e == 8 ? HFAM_FILL_FOREGROUND
                                                                     : HFAM_FILL_FRAME;
        if (e == 1 || e == 3 || e == 8 || e == 9) {
          edges.key_black = 0.1f;
          edges.key_white = 0.8f;
        }
        const char *const after_moved = boxed ? ", window box, letterbox on"
                                        : !moved ? ""
                                        : e == 6 ? ", smoothed (motion) after a moved frame"
                                        : follows ? ", followed after a moved frame"
                                                  : ", smoothed after a moved frame";
        snprintf (name, sizeof name, "%s %dx%d%s refine %s fill %s levels %g,%g%s%s",
                  format_names[f], sizes[s][0], sizes[s][1], pitched ? " pitched" : "",
                  edges.refine == HFAM_REFINE_GUIDED ? "guided" : "none",
                  edges.fill == HFAM_FILL_FOREGROUND ? "foreground" : "frame", edges.key_black,
                  edges.key_white, after_moved, what);
        failed += run_case (ctx, &host, moved ? &before : NULL,
                            moved ? &smoothed : boxed ? &letterboxed : NULL, follows, &edges,
                            tol, name);
        g_free (before.planes[0]);
        g_free (host.planes[0]);
      }
  return failed;
}

/* A batch member freed with frames in flight: its device frames are finished and dropped
 * (the CUDA backend's drop_frame), and the group's lane must go on serving the member that
 * stays, as one case of run_case shows. */
static int
drop_in_flight (HfamModel *model, const HfamOptions *options, const Tolerance *tol,
                const char *what, GRand *rand)
{
  g_autoptr (GError) error = NULL;
  HfamContext *leaving = hfam_context_new (model, options, NULL, &error);
  HfamContext *staying = leaving ? hfam_context_new (model, options, NULL, &error) : NULL;
  HfamImage host = frame_new (HFAM_FORMAT_RGBA, 333, 187, 0, TRUE, FALSE, rand), dev;
  const int depth = options->pipeline_depth;
  HfamEdgeParams edges;
  char name[96];
  int failed;

  if (!staying)
    g_error ("%s: %s", what, error->message);
  dev = image_upload (&host);
  for (int k = 0; k < depth; k++)
    if (!hfam_context_submit (leaving, &dev, NULL, &error))
      g_error ("%s: submit: %s", what, error->message);
  hfam_context_free (leaving);
  cudaFree (dev.planes[0]);
  hfam_edge_params_init (&edges);
  edges.refine = HFAM_REFINE_GUIDED;
  snprintf (name, sizeof name, "after a member left with %d frames in flight%s", depth, what);
  failed = run_case (staying, &host, NULL, NULL, FALSE, &edges, tol, name);
  hfam_context_free (staying);
  g_free (host.planes[0]);
  return failed;
}

int
main (int argc, char **argv)
{
  /* a context alone at depth 1; a batch group's lone member at depth 2, whose device frames
   * go through its frames-only backend and the group's lane (a lone member does not wait);
   * both in fp16 too, the element's precision on CUDA. In fp16 no islands are dropped: a region
   * whose mass is near the share's limit falls either way (kernels/islands.h), and fp16's
   * rounding puts one there often enough (a whole 600-pixel region, dropped on one path and
   * kept on the other, in one of 30 of the emulator's seeds); the matte they drop from is fp32
   * in both precisions, so fp32's cases cover them. */
  static const Tolerance fp32 = { 3, 0.0005, 0.01 }, fp16 = { 6, 0.015, 0.06 };
  static const struct {
    const char *what;
    HfamOptions options;
    const Tolerance *tol;
    float islands;
  } contexts[] = {
    { "", { .backend = HFAM_BACKEND_CUDA, .precision = HFAM_PRECISION_FP32 }, &fp32,
      HFAM_ISLANDS_DEFAULT },
    { ", batch member", { .backend = HFAM_BACKEND_CUDA, .precision = HFAM_PRECISION_FP32,
                          .pipeline_depth = 2, .max_batch = 2 }, &fp32, HFAM_ISLANDS_DEFAULT },
    { ", fp16", { .backend = HFAM_BACKEND_CUDA, .precision = HFAM_PRECISION_FP16 }, &fp16,
      0.0f },
    { ", fp16 batch member", { .backend = HFAM_BACKEND_CUDA, .precision = HFAM_PRECISION_FP16,
                               .pipeline_depth = 2, .max_batch = 2 }, &fp16, 0.0f },
  };
  g_autoptr (GError) error = NULL;
  g_autoptr (HfamModel) model = NULL;
  g_autoptr (GRand) rand = g_rand_new_with_seed (16);
  int failed = 0;

  if (argc != 2) {
    fprintf (stderr, "usage: %s MODEL\n", argv[0]);
    return 2;
  }
  if (!(model = hfam_model_load (argv[1], &error)))
    g_error ("%s", error->message);
  for (size_t c = 0; c < G_N_ELEMENTS (contexts); c++) {
    HfamContext *ctx = hfam_context_new (model, &contexts[c].options, NULL, &error);

    if (!ctx && c == 0) {
      printf ("SKIP: %s\n", error->message);
      return 77;
    }
    if (!ctx)
      g_error ("%s: %s", contexts[c].what, error->message);
    failed += run_cases (ctx, contexts[c].what, contexts[c].tol, contexts[c].islands, rand);
    hfam_context_free (ctx);
    if (contexts[c].options.max_batch > 1)
      failed += drop_in_flight (model, &contexts[c].options, contexts[c].tol, contexts[c].what,
                                rand);
  }
  printf ("%s\n", failed ? "FAILED" : "all passed");
  return failed ? 1 : 0;
}
