/* The edges (hfam_context_set_edges: refinement, foreground fill, key levels) on frames in CUDA
 * memory against the same frame in host memory, on one CUDA context: the device path runs the
 * CUDA ops (refine.cu, foreground.cu, matte.cu's resize), the host path their CPU twins, both
 * from the same network (fp32). The frame is the same picture in both memories, so the two
 * mattes differ only by the pre-processing's rounding; every output byte may differ by at
 * most 3 and at most 1 % of them by more than 1. Colours under alpha 0 are left out: they show
 * nowhere, and there the foreground fill is the ratio of two means near 0, which neither side
 * has to the byte.
 * Frames: RGBA, NV12 and I420 (BT.709, limited range) at 333x187, 640x360 and 240x427
 * (another inference size), a soft disc and stripes over a gradient with noise. Outputs:
 * GRAY8, RGBA, BGRA premultiplied. Then the same with the element's default smoothing (0.5,
 * motion-compensated) after a frame whose disc sat 5 pixels to the left: the kept matte's grey
 * plane, compensation, motion blend and held refinement on the device against the host's; and
 * with temporal-mode=motion (no compensation).
 * All of it on a context alone at depth 1, then on a batch group's lone member at depth 2
 * (its device frames through its frames-only backend and the group's lane).
 * Exits 77 (skipped) when no CUDA device opens.
 * Usage: test-cuda-device-edges MODEL */
#include <hfam/hfam.h>
#include "check-cuda.h"

#include <cuda_runtime_api.h>
#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define N_OUTPUTS 3

static const HfamFormat output_formats[N_OUTPUTS] = { HFAM_FORMAT_GRAY8, HFAM_FORMAT_RGBA,
                                                      HFAM_FORMAT_BGRA };

/* A frame in host memory, tightly packed: RGBA, or NV12 or I420 (the planes in one block);
 * the disc `shift` pixels to the right of the centre. */
static HfamImage
frame_new (HfamFormat format, int w, int h, int shift, GRand *rand)
{
  const int cw = (w + 1) / 2, ch = (h + 1) / 2;
  HfamImage f = { .width = w, .height = h, .format = format, .memory = HFAM_MEMORY_HOST,
                  .yuv_matrix = HFAM_YUV_BT709 };
  const size_t bytes = format == HFAM_FORMAT_RGBA ? (size_t) 4 * w * h
                                                  : (size_t) w * h + (size_t) 2 * cw * ch;
  uint8_t *p = g_malloc0 (bytes);

  f.planes[0] = p;
  f.strides[0] = format == HFAM_FORMAT_RGBA ? 4 * w : w;
  if (format == HFAM_FORMAT_NV12) {
    f.planes[1] = p + (size_t) w * h;
    f.strides[1] = 2 * cw;
  } else if (format == HFAM_FORMAT_I420) {
    f.planes[1] = p + (size_t) w * h;
    f.planes[2] = f.planes[1] + (size_t) cw * ch;
    f.strides[1] = f.strides[2] = cw;
  }
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
      if (format == HFAM_FORMAT_RGBA) {
        memcpy (p + 4 * ((size_t) y * w + x), (uint8_t[4]) { rgb[0], rgb[1], rgb[2], 255 }, 4);
        continue;
      }
      const double Y = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
      p[(size_t) y * w + x] = (uint8_t) lround (16 + Y * 219.0 / 255.0);
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

static size_t
frame_bytes (const HfamImage *f)
{
  return f->format == HFAM_FORMAT_RGBA ? (size_t) 4 * f->width * f->height
                                       : (size_t) f->width * f->height
                                         + (size_t) 2 * ((f->width + 1) / 2)
                                           * ((f->height + 1) / 2);
}

/* The same picture in device memory (one allocation; the caller frees planes[0]). */
static HfamImage
frame_upload (const HfamImage *host)
{
  HfamImage d = *host;
  uint8_t *p;

  CHECK_CUDA (cudaMalloc ((void **) &p, frame_bytes (host)));
  CHECK_CUDA (cudaMemcpy (p, host->planes[0], frame_bytes (host), cudaMemcpyHostToDevice));
  d.memory = HFAM_MEMORY_CUDA;
  for (int k = 0; k < 3; k++)
    d.planes[k] = host->planes[k] ? p + (host->planes[k] - host->planes[0]) : NULL;
  return d;
}

static int
bytes_per_pixel (HfamFormat f)
{
  return f == HFAM_FORMAT_GRAY8 ? 1 : 4;
}

/* One case: the outputs of the host frame and of the device frame, compared; 0 or 1. With
 * `before`, each path runs that frame first, with `params` too (it finds no kept matte in its
 * memory, so it starts afresh, but keeps its grey plane and held refinement for the next:
 * without them the frame would take the plain blend), its outputs not looked at. */
static int
run_case (HfamContext *ctx, const HfamImage *host, const HfamImage *before,
          const HfamFrameParams *params, const HfamEdgeParams *edges, const char *name)
{
  const int w = host->width, h = host->height;
  HfamImage dev = frame_upload (host), out_host[N_OUTPUTS], out_dev[N_OUTPUTS];
  HfamImage dev_before = before ? frame_upload (before) : dev;
  g_autoptr (GError) error = NULL;
  size_t worst = 0, over_one = 0, total = 0;

  if (!hfam_context_set_edges (ctx, edges, &error))
    g_error ("%s: set_edges: %s", name, error->message);
  for (int o = 0; o < N_OUTPUTS; o++) {
    const int stride = w * bytes_per_pixel (output_formats[o]);
    out_host[o] = (HfamImage) { .planes = { g_malloc0 ((size_t) stride * h) },
                                .strides = { stride }, .width = w, .height = h,
                                .format = output_formats[o], .memory = HFAM_MEMORY_HOST,
                                .premultiplied = output_formats[o] == HFAM_FORMAT_BGRA };
    out_dev[o] = out_host[o];
    out_dev[o].memory = HFAM_MEMORY_CUDA;
    CHECK_CUDA (cudaMalloc ((void **) &out_dev[o].planes[0], (size_t) stride * h));
  }
  /* (a frame of the other memory starts afresh: the kept matte is in its frame's memory) */
  if ((before && !hfam_context_run (ctx, before, params, out_host, N_OUTPUTS, &error))
      || !hfam_context_run (ctx, host, params, out_host, N_OUTPUTS, &error)
      || (before && !hfam_context_run (ctx, &dev_before, params, out_dev, N_OUTPUTS, &error))
      || !hfam_context_run (ctx, &dev, params, out_dev, N_OUTPUTS, &error))
    g_error ("%s: %s", name, error->message);
  for (int o = 0; o < N_OUTPUTS; o++) {
    const size_t n = (size_t) out_host[o].strides[0] * h;
    const int bpp = bytes_per_pixel (output_formats[o]);
    const uint8_t *want = out_host[o].planes[0];
    g_autofree uint8_t *got = g_malloc (n);
    CHECK_CUDA (cudaMemcpy (got, out_dev[o].planes[0], n, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < n; i++) {
      const size_t d = (size_t) ABS (got[i] - want[i]);
      /* (a colour byte of a pixel whose alpha, the fourth byte, is 0) */
      if (bpp == 4 && i % 4 != 3 && want[i - i % 4 + 3] == 0)
        continue;
      worst = MAX (worst, d);
      over_one += d > 1;
      total++;
    }
    g_free (out_host[o].planes[0]);
    cudaFree (out_dev[o].planes[0]);
  }
  cudaFree (dev.planes[0]);
  if (before)
    cudaFree (dev_before.planes[0]);
  const gboolean ok = worst <= 3 && over_one <= total / 100;
  printf ("%s %-58s worst difference %zu, %.3f %% of the bytes off by more than 1\n",
          ok ? "ok  " : "FAIL", name, worst, 100.0 * over_one / total);
  return ok ? 0 : 1;
}

/* Every case on `ctx`; `what` ends each case's name. */
static int
run_cases (HfamContext *ctx, const char *what, GRand *rand)
{
  /* (the portrait size runs at another inference size: the kept state is made anew) */
  static const int sizes[][2] = { { 333, 187 }, { 640, 360 }, { 240, 427 } };
  static const HfamFormat formats[] = { HFAM_FORMAT_RGBA, HFAM_FORMAT_NV12, HFAM_FORMAT_I420 };
  static const char *const format_names[] = { "RGBA", "NV12", "I420" };
  int failed = 0;

  for (size_t s = 0; s < G_N_ELEMENTS (sizes); s++)
    for (size_t f = 0; f < G_N_ELEMENTS (formats); f++)
      for (int e = 0; e < 7; e++) {
        /* e 4, 5: refined, and refined with the foreground, smoothed (motion-compensated)
         * after a moved frame; e 6: refined, smoothed by motion alone after it */
        const gboolean moved = e >= 4;
        const HfamFrameParams smoothed = {
          .smoothing = 0.5f,
          .temporal = e == 6 ? HFAM_TEMPORAL_MOTION : HFAM_TEMPORAL_COMPENSATED,
        };
        HfamImage before = frame_new (formats[f], sizes[s][0], sizes[s][1], -5, rand);
        HfamImage host = frame_new (formats[f], sizes[s][0], sizes[s][1], 0, rand);
        HfamEdgeParams edges;
        char name[128];
        hfam_edge_params_init (&edges);
        /* refined; refined with the foreground and levels; resized with the foreground;
         * resized with levels only */
        edges.refine = e < 2 || moved ? HFAM_REFINE_GUIDED : HFAM_REFINE_NONE;
        edges.fill = e == 1 || e == 2 || e == 5 ? HFAM_FILL_FOREGROUND : HFAM_FILL_FRAME;
        if (e == 1 || e == 3) {
          edges.key_black = 0.1f;
          edges.key_white = 0.8f;
        }
        snprintf (name, sizeof name, "%s %dx%d refine %s fill %s levels %g,%g%s%s",
                  format_names[f], sizes[s][0], sizes[s][1],
                  edges.refine == HFAM_REFINE_GUIDED ? "guided" : "none",
                  edges.fill == HFAM_FILL_FOREGROUND ? "foreground" : "frame", edges.key_black,
                  edges.key_white, !moved ? "" : e == 6 ? ", smoothed (motion) after a moved frame"
                                                    : ", smoothed after a moved frame", what);
        failed += run_case (ctx, &host, moved ? &before : NULL, moved ? &smoothed : NULL,
                            &edges, name);
        g_free (before.planes[0]);
        g_free (host.planes[0]);
      }
  return failed;
}

int
main (int argc, char **argv)
{
  /* a context alone at depth 1; a batch group's lone member at depth 2, whose device frames
   * go through its frames-only backend and the group's lane (a lone member does not wait) */
  static const struct {
    const char *what;
    HfamOptions options;
  } contexts[] = {
    { "", { .backend = HFAM_BACKEND_CUDA, .precision = HFAM_PRECISION_FP32 } },
    { ", batch member", { .backend = HFAM_BACKEND_CUDA, .precision = HFAM_PRECISION_FP32,
                          .pipeline_depth = 2, .max_batch = 2 } },
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
    failed += run_cases (ctx, contexts[c].what, rand);
    hfam_context_free (ctx);
  }
  printf ("%s\n", failed ? "FAILED" : "all passed");
  return failed ? 1 : 0;
}
