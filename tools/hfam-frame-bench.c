/* hfam-frame-bench: the host-side work around the network for one frame, which on a CUDA
 * machine with frames in system memory is all the CPU does per frame: the frame resized and
 * normalised to the inference size (hfam_preprocess_rgb8), alpha_p resized back to the frame
 * (hfam_resize_plane), and the RGBA fill and the GRAY8 key written (hfam_matte_write); then the
 * edges of libhfam's hfam_context_set_edges: key levels on the resized matte, the guided
 * refinement (instead of the resize, at its default radius and eps) and the foreground fill
 * (instead of the RGBA fill), each with its memory kept from round to round; and the
 * motion-aware temporal smoothing at the inference size (the frame's grey plane from the
 * network's input, the blend by the picture's change: kernels/temporal.h) and the motion
 * compensation before it (kernels/compensate.h; on these synthetic planes nearly every block
 * finds a vector, so its sub-pixel step runs almost everywhere), and the guided refinement
 * held over time with the blend's still weights (what the refinement costs with the element's
 * default smoothing, kernels/refine.h), and the matte's islands dropped at the inference size
 * (kernels/islands.h, the element's default share; one thread whatever --threads; on the
 * synthetic matte, above the floor almost everywhere, the most work per pixel; the element
 * runs it on the fresh matte and, with smoothing, on the blend too), and the
 * black bars of a letterbox (kernels/bars.h: an eighth of the height at the top and at the
 * bottom of a grey plane of its own at the inference size, found and cleared from the matte;
 * then at the frame's size found from those, the frame's first row after each read, and
 * cleared from the refined matte; one thread). With
 * --pictures (a frame of a real video and the one
 * before it, both of the frame's size) the frame is the second picture and each round's
 * temporal steps start from the first, as the element's do between two frames of that video:
 * where the picture is still, the warp copies and the sub-pixel step does not run. Each
 * on one thread and on --threads threads, the two alternated round by round so that load on
 * the machine hits both alike; prints medians and the ratio.
 *
 * With --format i420 or nv12, both sides run on --threads threads and compare the two ways
 * a YUV frame goes through: converted to RGBA first by GstVideoConverter (the element's way
 * before issue 18; a step of its own, then the RGBA steps above) against read as it is
 * (hfam_frame_preprocess_rows, and the fill, refinement and foreground converting rows as
 * they go). */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#ifdef HFAM_HAVE_GST_VIDEO
#include <gst/video/video.h>
#endif

#include "compensate.h"
#include "foreground.h"
#include "frame.h"
#include "hfam-internal.h"
#include "imageio.h"
#include "bars.h"
#include "islands.h"
#include "median.h"
#include "refine.h"
#include "resize.h"
#include "temporal.h"

enum {
  STEP_CONVERT, STEP_PREPROCESS, STEP_RESIZE, STEP_KEY_LEVELS, STEP_FILL, STEP_KEY, STEP_REFINE,
  STEP_FOREGROUND, STEP_MOTION, STEP_COMPENSATE, STEP_HELD, STEP_ISLANDS, STEP_LETTERBOX, N_STEPS
};

static const char *const step_names[N_STEPS] = {
  "to RGBA", "preprocess", "alpha resize", "key levels", "RGBA fill", "GRAY8 key", "guided refine",
  "foreground", "motion smooth", "compensate", "held refine", "islands", "letterbox",
};

static char *size_text, *format_text, *pictures_text;
static int n_rounds = 15, n_threads, long_side = 512;

static const GOptionEntry entries[] = {
  { "size", 's', 0, G_OPTION_ARG_STRING, &size_text, "Frame size (default 1920x1080)", "WxH" },
  { "inference-size", 'i', 0, G_OPTION_ARG_INT, &long_side,
    "Long side of the inference size (default 512)", "N" },
  { "rounds", 'r', 0, G_OPTION_ARG_INT, &n_rounds, "Rounds, each timing both (default 15)",
    "R" },
  { "threads", 't', 0, G_OPTION_ARG_INT, &n_threads, "Threads (default: one per core)", "T" },
  { "format", 'f', 0, G_OPTION_ARG_STRING, &format_text,
    "The frame's format: rgba (default), i420 or nv12 (these: via RGBA against direct)",
    "F" },
  { "pictures", 'p', 0, G_OPTION_ARG_STRING, &pictures_text,
    "Two frames of a real video, of the frame's size (PNG or JPEG): the temporal steps on "
    "their motion (default: synthetic planes where nearly every block moves)", "BEFORE,FRAME" },
  G_OPTION_ENTRY_NULL
};

/* What the steps read and write. */
typedef struct {
  uint8_t *rgba;
  HfamFrame yuv;            /* with --format i420 or nv12 */
  HfamYuvToRgb yuv_to_rgb;
#ifdef HFAM_HAVE_GST_VIDEO
  GstVideoConverter *converter;
  GstVideoFrame yuv_mapped, rgba_mapped;
#endif
  int width, height, inf_w, inf_h;
  float *input, *alpha_p, *alpha, *refined;
  uint8_t *fill, *key;
  HfamScratch scratch;
  float *grey, *kept_grey, *kept;   /* at the inference size */
  float *moved;                     /* the compensation's pixels moved, for the blend */
  float *still, *held;              /* the blend's still weights; the held detail (frame) */
  float *flow_scratch;              /* kernels/compensate.h's */
  float *before_grey;               /* --pictures: the first's grey, kept again every round */
  void *islands_scratch;            /* kernels/islands.h's */
  float *bar_grey;                  /* a letterboxed grey plane at the inference size */
} Buffers;

/* The network's input as the element makes it: frame to inference size, BGR, Caffe means */
static const HfamPreprocessParams caffe_input = { .order = { 2, 1, 0 }, .scale = 255.0f,
                                                  .mean = { 103.939f, 116.779f, 123.68f },
                                                  .std = { 1.0f, 1.0f, 1.0f } };

static int
preprocess_rgba (const uint8_t *rgba, const Buffers *b)
{
  static const int rgb_offsets[3] = { 0, 1, 2 };
  const HfamPreprocessParams *p = &caffe_input;

  return hfam_preprocess_rgb8 (rgba, b->width, b->height, b->width * 4, 4, rgb_offsets,
                               b->input, b->inf_w, b->inf_h, p->order, p->scale, p->mean,
                               p->std);
}

/* One pass over every step on `threads` threads, the frame in RGBA or, `direct`, in YUV as it
 * is; milliseconds per step into ms. */
static gboolean
time_steps (int threads, gboolean direct, Buffers *b, double ms[N_STEPS])
{
  const uint8_t *rgba = b->rgba;
  const int width = b->width, height = b->height, inf_w = b->inf_w, inf_h = b->inf_h;
  float *input = b->input, *alpha_p = b->alpha_p, *alpha = b->alpha, *refined = b->refined;
  uint8_t *fill = b->fill, *key = b->key;
  HfamScratch *scratch = &b->scratch;
  const HfamPreprocessParams pre = caffe_input;
  HfamMotionParams motion;
  const HfamFrame rgba_frame = { .planes = { rgba }, .strides = { width * 4 }, .width = width,
                                 .height = height, .format = HFAM_FRAME_RGBA };
  const HfamFrame frame = direct ? b->yuv : rgba_frame;
  const HfamYuvToRgb *yuv = direct ? &b->yuv_to_rgb : NULL;
  HfamPreprocessParams yuv_pre = pre;
  const HfamMatteImage fill_image = { fill, width * 4, width, height, HFAM_MATTE_RGBA };
  const HfamMatteImage key_image = { key, width, width, height, HFAM_MATTE_GRAY8 };
  const HfamKeyLevels levels = { 0.1f, 0.9f };
  const HfamRefineParams refine = { .radius = HFAM_REFINE_RADIUS_DEFAULT,
                                    .eps = HFAM_REFINE_EPS_DEFAULT, .colour = 1 };
  const HfamForegroundParams foreground = { HFAM_FOREGROUND_RADIUS_LARGE,
                                            HFAM_FOREGROUND_RADIUS_SMALL,
                                            HFAM_FOREGROUND_COARSE };
  HfamFlowParams flow;
  gint64 t[N_STEPS + 1];
  int failed = 0;

  omp_set_num_threads (threads);
  hfam_motion_params_init (&motion, HFAM_TEMPORAL_SMOOTHING_DEFAULT);
  hfam_flow_params_init (&flow);
  yuv_pre.yuv = b->yuv_to_rgb;
  if (b->before_grey) {
    /* the matte and grey plane the element kept at the first picture */
    memcpy (b->kept_grey, b->before_grey, sizeof (float) * inf_w * inf_h);
    memcpy (b->kept, alpha_p, sizeof (float) * inf_w * inf_h);
  }
  t[0] = g_get_monotonic_time ();
#ifdef HFAM_HAVE_GST_VIDEO
  if (b->converter && !direct)
    gst_video_converter_frame (b->converter, &b->yuv_mapped, &b->rgba_mapped);
#endif
  t[1] = g_get_monotonic_time ();
  if (direct)
    failed |= hfam_frame_preprocess_rows (&frame, &yuv_pre, input, inf_w, inf_h);
  else
    failed |= preprocess_rgba (rgba, b);
  t[2] = g_get_monotonic_time ();
  failed |= hfam_resize_plane (alpha_p, inf_w, inf_h, inf_w, alpha, width, height, width);
  t[3] = g_get_monotonic_time ();
  hfam_key_levels_apply (alpha, (size_t) width * height, &levels);
  t[4] = g_get_monotonic_time ();
  failed |= hfam_matte_write (alpha, width, height, &frame, yuv, &fill_image);
  t[5] = g_get_monotonic_time ();
  failed |= hfam_matte_write (alpha, width, height, NULL, NULL, &key_image);
  t[6] = g_get_monotonic_time ();
  failed |= hfam_refine (alpha_p, inf_w, inf_h, &frame, yuv, &refine, NULL, refined, width,
                         scratch);
  t[7] = g_get_monotonic_time ();
  failed |= hfam_foreground (&frame, yuv, alpha, width, &foreground, &fill_image, scratch);
  t[8] = g_get_monotonic_time ();
  hfam_motion_grey (input, inf_w, inf_h, &pre, b->grey);
  failed |= hfam_matte_blend_motion (b->kept, alpha_p, b->grey, b->kept_grey, b->moved, inf_w,
                                     inf_h, &motion, b->still);
  t[9] = g_get_monotonic_time ();
  failed |= hfam_motion_compensate (b->kept, b->kept_grey, b->grey, inf_w, inf_h, &flow,
                                    b->moved, b->flow_scratch);
  t[10] = g_get_monotonic_time ();
  const HfamRefineHold hold = { b->still, b->held, width };
  failed |= hfam_refine_held (alpha_p, inf_w, inf_h, &frame, yuv, &refine, NULL, &hold, refined,
                              width, scratch);
  t[11] = g_get_monotonic_time ();
  const HfamIslandParams islands = { HFAM_ISLAND_FLOOR, HFAM_ISLANDS_DEFAULT };
  failed |= hfam_matte_drop_islands (b->kept, inf_w, inf_h, &islands, b->islands_scratch);
  t[12] = g_get_monotonic_time ();
  const HfamBarParams bp = { HFAM_BAR_BLACK };
  HfamBars inference_bars, frame_bars;
  failed |= hfam_matte_clear_bars (b->kept, b->bar_grey, inf_w, inf_h, &bp, &inference_bars);
  hfam_frame_find_bars (&frame, yuv, &inference_bars, inf_w, inf_h, width, height, &bp,
                        &frame_bars);
  hfam_plane_zero_bars (refined, width, height, &frame_bars);
  t[13] = g_get_monotonic_time ();
  for (int k = 0; k < N_STEPS; k++)
    ms[k] = (t[k + 1] - t[k]) / 1000.0;
  return failed == 0;
}

/* The YUV frame (BT.709, limited range, as HD cameras give it) in b->yuv, its planes in
 * *planes, the RGBA one made from it by GstVideoConverter on `threads` threads as the element
 * did. FALSE, said, without GStreamer. */
static gboolean
yuv_frame_init (Buffers *b, gboolean nv12, int threads, uint8_t **planes)
{
  const int w = b->width, h = b->height, cw = (w + 1) / 2, ch = (h + 1) / 2;
  uint8_t *luma, *chroma;

  *planes = g_malloc ((size_t) w * h + 2 * (size_t) cw * ch);
  luma = *planes;
  chroma = luma + (size_t) w * h;
  /* edges everywhere, as the RGBA frame, with chroma on the whole range */
  for (size_t i = 0; i < (size_t) w * h; i++)
    luma[i] = (uint8_t) (i * 7 + i / 4099);
  for (size_t i = 0; i < 2 * (size_t) cw * ch; i++)
    chroma[i] = (uint8_t) (i * 13 + i / 977);
  b->yuv = nv12 ? (HfamFrame) { { luma, chroma }, { w, 2 * cw }, w, h, HFAM_FRAME_NV12 }
                : (HfamFrame) { { luma, chroma, chroma + (size_t) cw * ch }, { w, cw, cw }, w,
                                h, HFAM_FRAME_I420 };
  hfam_yuv_to_rgb_init (&b->yuv_to_rgb, HFAM_MATRIX_BT709, HFAM_RANGE_LIMITED);
#ifdef HFAM_HAVE_GST_VIDEO
  {
    GstVideoInfo yuv_info, rgba_info;
    GstBuffer *yuv_buffer, *rgba_buffer;
    gsize offsets[GST_VIDEO_MAX_PLANES] = { 0 };
    gint strides[GST_VIDEO_MAX_PLANES] = { 0 };

    gst_init (NULL, NULL);
    gst_video_info_set_format (&yuv_info, nv12 ? GST_VIDEO_FORMAT_NV12 : GST_VIDEO_FORMAT_I420,
                               w, h);
    gst_video_colorimetry_from_string (&yuv_info.colorimetry, "bt709");
    gst_video_info_set_format (&rgba_info, GST_VIDEO_FORMAT_RGBA, w, h);
    for (int i = 0; i < (nv12 ? 2 : 3); i++) {
      offsets[i] = b->yuv.planes[i] - luma;
      strides[i] = b->yuv.strides[i];
    }
    yuv_buffer = gst_buffer_new_wrapped_full (0, luma, (size_t) w * h + 2 * (size_t) cw * ch,
                                              0, (size_t) w * h + 2 * (size_t) cw * ch, NULL,
                                              NULL);
    gst_buffer_add_video_meta_full (yuv_buffer, 0, GST_VIDEO_INFO_FORMAT (&yuv_info), w, h,
                                    nv12 ? 2 : 3, offsets, strides);
    rgba_buffer = gst_buffer_new_wrapped_full (0, b->rgba, (size_t) w * h * 4, 0,
                                               (size_t) w * h * 4, NULL, NULL);
    b->converter = gst_video_converter_new (&yuv_info, &rgba_info,
        gst_structure_new ("options", GST_VIDEO_CONVERTER_OPT_THREADS, G_TYPE_UINT,
                           (guint) threads, NULL));
    if (!b->converter || !gst_video_frame_map (&b->yuv_mapped, &yuv_info, yuv_buffer,
                                               GST_MAP_READ)
        || !gst_video_frame_map (&b->rgba_mapped, &rgba_info, rgba_buffer, GST_MAP_WRITE)) {
      g_printerr ("hfam-frame-bench: cannot set up GstVideoConverter\n");
      return FALSE;
    }
    /* the mapped frames hold their buffers */
    gst_buffer_unref (yuv_buffer);
    gst_buffer_unref (rgba_buffer);
    return TRUE;
  }
#else
  g_printerr ("hfam-frame-bench: --format %s compares against GstVideoConverter: this build "
              "has no GStreamer\n", nv12 ? "nv12" : "i420");
  return FALSE;
#endif
}

int
main (int argc, char **argv)
{
  g_autoptr (GOptionContext) options = g_option_context_new ("- host-side work per frame");
  g_autoptr (GError) error = NULL;
  int width = 1920, height = 1080, inf_w, inf_h, threads;
  gboolean yuv;
  g_autofree uint8_t *rgba = NULL, *fill = NULL, *key = NULL;
  g_autofree float *input = NULL, *alpha_p = NULL, *alpha = NULL, *refined = NULL;
  g_autofree float *grey = NULL, *kept_grey = NULL, *kept = NULL, *moved = NULL;
  g_autofree float *flow_scratch = NULL, *still = NULL, *held = NULL, *before_grey = NULL;
  g_autofree void *islands_scratch = NULL;
  g_autofree float *bar_grey = NULL;
  g_autofree double *samples = NULL;
  double warm[N_STEPS];

  g_option_context_add_main_entries (options, entries, NULL);
  if (!g_option_context_parse (options, &argc, &argv, &error)) {
    g_printerr ("hfam-frame-bench: %s\n", error->message);
    return EXIT_FAILURE;
  }
  if ((size_text && sscanf (size_text, "%dx%d", &width, &height) != 2) || width < 32
      || height < 32 || long_side < 32 || n_rounds < 1) {
    g_printerr ("hfam-frame-bench: --size WxH of at least 32x32, --inference-size >= 32, "
                "--rounds >= 1\n");
    return EXIT_FAILURE;
  }
  if (format_text && g_strcmp0 (format_text, "rgba") != 0 && g_strcmp0 (format_text, "i420") != 0
      && g_strcmp0 (format_text, "nv12") != 0) {
    g_printerr ("hfam-frame-bench: --format %s: want rgba, i420 or nv12\n", format_text);
    return EXIT_FAILURE;
  }
  yuv = format_text && g_strcmp0 (format_text, "rgba") != 0;
  if (pictures_text && yuv) {
    g_printerr ("hfam-frame-bench: --pictures takes RGBA frames: leave --format out\n");
    return EXIT_FAILURE;
  }
  threads = n_threads > 0 ? n_threads : (int) g_get_num_processors ();
  hfam_inference_dims (width, height, 1.0f, long_side, &inf_w, &inf_h);
  rgba = g_malloc ((size_t) width * height * 4);
  fill = g_malloc ((size_t) width * height * 4);
  key = g_malloc ((size_t) width * height);
  input = g_new (float, 3 * (size_t) inf_w * inf_h);
  alpha_p = g_new (float, (size_t) inf_w * inf_h);
  alpha = g_new (float, (size_t) width * height);
  refined = g_new (float, (size_t) width * height);
  grey = g_new (float, (size_t) inf_w * inf_h);
  kept = g_new (float, (size_t) inf_w * inf_h);
  kept_grey = g_new (float, (size_t) inf_w * inf_h);
  /* (the first round's blend reads it before a compensation has written it) */
  moved = g_new0 (float, (size_t) inf_w * inf_h);
  still = g_new (float, (size_t) inf_w * inf_h);
  held = g_new0 (float, (size_t) width * height);
  {
    HfamFlowParams flow;
    hfam_flow_params_init (&flow);
    flow_scratch = g_new (float, hfam_compensate_scratch_floats (inf_w, inf_h, &flow));
  }
  islands_scratch = g_malloc (hfam_islands_scratch_bytes (inf_w, inf_h));
  /* a frame and a matte with edges everywhere, so no branch is taken more than a real one */
  for (size_t i = 0; i < (size_t) width * height * 4; i++)
    rgba[i] = (uint8_t) (i * 7 + i / 4099);
  for (size_t i = 0; i < (size_t) inf_w * inf_h; i++) {
    alpha_p[i] = kept[i] = (float) (i % 97) / 96.0f;
    /* a kept picture unlike the frame's: held, followed and between, all taken */
    kept_grey[i] = (float) (i % 89) / 88.0f;
  }
  bar_grey = g_memdup2 (kept_grey, sizeof (float) * inf_w * inf_h);
  memset (bar_grey, 0, sizeof (float) * inf_w * (inf_h / 8));
  memset (bar_grey + (size_t) inf_w * (inf_h - inf_h / 8), 0, sizeof (float) * inf_w * (inf_h / 8));
  Buffers b = { .rgba = rgba, .width = width, .height = height, .inf_w = inf_w,
                .inf_h = inf_h, .input = input, .alpha_p = alpha_p, .alpha = alpha,
                .refined = refined, .fill = fill, .key = key, .scratch = { NULL, 0 },
                .grey = grey, .kept_grey = kept_grey, .kept = kept, .moved = moved,
                .flow_scratch = flow_scratch, .still = still, .held = held,
                .islands_scratch = islands_scratch, .bar_grey = bar_grey };
  if (pictures_text) {
    g_auto (GStrv) paths = g_strsplit (pictures_text, ",", -1);
    if (g_strv_length (paths) != 2) {
      g_printerr ("hfam-frame-bench: --pictures wants two files, BEFORE,FRAME\n");
      return EXIT_FAILURE;
    }
    /* the first picture's grey, then the second as the frame */
    before_grey = g_new (float, (size_t) inf_w * inf_h);
    for (int k = 0; k < 2; k++) {
      g_autoptr (ImageioPicture) picture = imageio_read (paths[k], &error);
      if (!picture) {
        g_printerr ("hfam-frame-bench: %s\n", error->message);
        return EXIT_FAILURE;
      }
      if (picture->width != width || picture->height != height) {
        g_printerr ("hfam-frame-bench: %s is %dx%d, the frame %dx%d (--size)\n", paths[k],
                    picture->width, picture->height, width, height);
        return EXIT_FAILURE;
      }
      for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++) {
          const guint8 *in = picture->pixels + (size_t) y * picture->stride
                             + (size_t) x * picture->channels;
          uint8_t *out = rgba + ((size_t) y * width + x) * 4;
          memcpy (out, in, 3);
          out[3] = 255;
        }
      if (k == 0) {
        if (preprocess_rgba (rgba, &b) != 0) {
          g_printerr ("hfam-frame-bench: out of memory\n");
          return EXIT_FAILURE;
        }
        hfam_motion_grey (input, inf_w, inf_h, &caffe_input, before_grey);
      }
    }
    b.before_grey = before_grey;
  }
  g_autofree uint8_t *yuv_planes = NULL;

  if (yuv && !yuv_frame_init (&b, g_strcmp0 (format_text, "nv12") == 0, threads,
                              &yuv_planes))
    return EXIT_FAILURE;

  /* [round][1 thread / threads][step] */
  samples = g_new (double, (size_t) n_rounds * 2 * N_STEPS);
  /* first touch of every buffer, on both sides: RGBA on one thread and on `threads`, or
   * YUV via RGBA and direct, both on `threads` */
  for (int side = 0; side < 2; side++)
    time_steps (side || yuv ? threads : 1, yuv && side, &b, warm);
  for (int r = 0; r < n_rounds; r++)
    for (int side = 0; side < 2; side++)
      if (!time_steps (side || yuv ? threads : 1, yuv && side, &b,
                       samples + ((size_t) r * 2 + side) * N_STEPS)) {
        g_printerr ("hfam-frame-bench: a step refused its arguments or ran out of memory\n");
        return EXIT_FAILURE;
      }

  g_print ("frame %dx%d %s, inference %dx%d, %d rounds, medians in ms\n", width, height,
           yuv ? format_text : "rgba", inf_w, inf_h, n_rounds);
  g_print ("%-14s %10s %10s %8s\n", "step", yuv ? "via RGBA" : "1 thread",
           yuv ? "direct" : "threads", "ratio");
  {
    g_autofree double *column = g_new (double, n_rounds);
    /* each step; all of them; and what the default smoothing costs (the blend, the
     * compensation, the held refinement less the plain one, and the islands dropped from the
     * blend: a second time, after the fresh matte's), summed within each round */
    for (int k = yuv ? 0 : 1; k <= N_STEPS + 1; k++) {
      double m[2];
      for (int side = 0; side < 2; side++) {
        for (int r = 0; r < n_rounds; r++) {
          const double *s = samples + ((size_t) r * 2 + side) * N_STEPS;
          column[r] = 0.0;
          for (int j = 0; j < N_STEPS; j++)
            if (j == k || k == N_STEPS)
              column[r] += s[j];
          if (k == N_STEPS + 1)
            column[r] = s[STEP_MOTION] + s[STEP_COMPENSATE] + s[STEP_HELD] - s[STEP_REFINE]
                        + s[STEP_ISLANDS];
        }
        m[side] = median (column, n_rounds);
      }
      g_print ("%-14s %10.2f %10.2f %8.2f\n",
               k < N_STEPS ? step_names[k] : k == N_STEPS ? "all (per round)" : "smoothing",
               m[0], m[1], m[1] / m[0]);
    }
    if (yuv)
      g_print ("threads: %d on both sides; ratio = direct / via RGBA (< 1: faster)\n",
               threads);
    else
      g_print ("threads: %d; ratio = threads / 1 thread (< 1: faster)\n", threads);
  }
  hfam_scratch_clear (&b.scratch);
#ifdef HFAM_HAVE_GST_VIDEO
  if (b.converter) {
    gst_video_frame_unmap (&b.yuv_mapped);
    gst_video_frame_unmap (&b.rgba_mapped);
    gst_video_converter_free (b.converter);
  }
#endif
  return EXIT_SUCCESS;
}
