/* Black bars cleared from the matte on the CPU (kernels/bars.c), the twin of bars.cu: scenes
 * drawn by hand (a letterbox, a pillarbox, both, a dark row inside the picture, a bar's edge
 * that the resize blended, a frame black all over, none), random planes against a plain oracle
 * that tests every pixel's row and column, and the arguments it refuses. At the frame's size:
 * RGBA and NV12 frames drawn by hand (bars wider than the mapped ones, an edge without an
 * inference bar, the column scan within the row bars), the mapping's floor, random RGBA
 * frames against a plain oracle; an output image of each format cleared over bars. */
#include "bars.h"

#include <glib.h>
#include <math.h>
#include <string.h>

static const HfamBarParams params = { .black = 0.06f };

/* grey from rows of '#' (bright, 0.5), '.' (black, 0.02), '=' (exactly `black`) and '~' (a
 * blend, just above it); the matte is 1 everywhere. */
static void
draw (const char *const *rows, int h, float *grey, float *matte, int *w)
{
  *w = (int) strlen (rows[0]);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < *w; x++) {
      const char c = rows[y][x];
      grey[y * *w + x] = c == '#' ? 0.5f : c == '.' ? 0.02f : c == '=' ? params.black
                                                                       : params.black + 1e-6f;
      matte[y * *w + x] = 1.0f;
    }
}

static void
check_scene (const char *const *rows, int h, HfamBars want)
{
  float grey[64], matte[64];
  int w;
  HfamBars got;

  draw (rows, h, grey, matte, &w);
  g_assert_cmpint (hfam_matte_clear_bars (matte, grey, w, h, &params, &got), ==, 0);
  g_assert_cmpint (got.top, ==, want.top);
  g_assert_cmpint (got.bottom, ==, want.bottom);
  g_assert_cmpint (got.left, ==, want.left);
  g_assert_cmpint (got.right, ==, want.right);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      const gboolean bar = y < want.top || y >= h - want.bottom || x < want.left
                           || x >= w - want.right;
      g_assert_cmpfloat (matte[y * w + x], ==, bar ? 0.0f : 1.0f);
    }
}

static void
test_scenes (void)
{
  /* a letterbox (its bottom bar's edge at exactly black), a blended edge row kept */
  static const char *const letterbox[] = { "......", "##.#..", "#.##.#", "======", "......" };
  check_scene (letterbox, 5, (HfamBars) { 1, 2, 0, 0 });
  static const char *const blended[] = { "......", "~~~~~~", "#.##.#", "......" };
  check_scene (blended, 4, (HfamBars) { 1, 1, 0, 0 });
  /* a pillarbox; a dark row inside the picture is not a bar */
  static const char *const pillarbox[] = { "..##..", "..#...", "......", "..#.#." };
  check_scene (pillarbox, 4, (HfamBars) { 0, 0, 2, 1 });
  /* both at once (a window box) */
  static const char *const window[] = { ".....", ".##..", "..#..", "....." };
  check_scene (window, 4, (HfamBars) { 1, 1, 1, 2 });
  /* black all over: the rows take it all, then the columns */
  static const char *const black[] = { "...", "...", "..." };
  check_scene (black, 3, (HfamBars) { 3, 0, 3, 0 });
  /* no bars; and a single pixel */
  static const char *const none[] = { "#..#", "....", "#..#" };
  check_scene (none, 3, (HfamBars) { 0, 0, 0, 0 });
  static const char *const one[] = { "#" };
  check_scene (one, 1, (HfamBars) { 0, 0, 0, 0 });
}

static gboolean
dark (float v)
{
  return v <= params.black;
}

/* The oracle: a pixel is in a bar when every row from it to an edge, or every column, is
 * dark throughout. */
static void
test_random (void)
{
  GRand *rng = g_rand_new_with_seed (7);

  for (int round = 0; round < 300; round++) {
    const int w = g_rand_int_range (rng, 1, 40), h = g_rand_int_range (rng, 1, 30);
    const int bars[4] = { g_rand_int_range (rng, 0, h / 3 + 1), g_rand_int_range (rng, 0, h / 3 + 1),
                          g_rand_int_range (rng, 0, w / 3 + 1), g_rand_int_range (rng, 0, w / 3 + 1) };
    const double bright = g_rand_double_range (rng, 0.0, 1.0);
    g_autofree float *grey = g_new (float, w * h);
    g_autofree float *matte = g_new (float, w * h);
    g_autofree float *want = g_new (float, w * h);
    g_autofree gboolean *dark_row = g_new0 (gboolean, h);
    g_autofree gboolean *dark_col = g_new0 (gboolean, w);

    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        const gboolean in_bar = y < bars[0] || y >= h - bars[1] || x < bars[2] || x >= w - bars[3];
        /* the picture mostly dark too, so that whole rows of it are now and then */
        const gboolean lit = !in_bar && g_rand_double (rng) < bright * 0.3;
        grey[y * w + x] = lit ? (float) g_rand_double_range (rng, params.black + 1e-6, 1.0)
                              : (float) g_rand_double_range (rng, 0.0, params.black);
        matte[y * w + x] = (float) g_rand_double (rng);
      }
    if (g_rand_int_range (rng, 0, 10) == 0)
      grey[g_rand_int_range (rng, 0, w * h)] = NAN;
    for (int y = 0; y < h; y++) {
      dark_row[y] = TRUE;
      for (int x = 0; x < w; x++)
        dark_row[y] &= dark (grey[y * w + x]);
    }
    for (int x = 0; x < w; x++) {
      dark_col[x] = TRUE;
      for (int y = 0; y < h; y++)
        dark_col[x] &= dark (grey[y * w + x]);
    }
    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        gboolean up = TRUE, down = TRUE, left = TRUE, right = TRUE;
        for (int k = 0; k <= y; k++)
          up &= dark_row[k];
        for (int k = y; k < h; k++)
          down &= dark_row[k];
        for (int k = 0; k <= x; k++)
          left &= dark_col[k];
        for (int k = x; k < w; k++)
          right &= dark_col[k];
        want[y * w + x] = up || down || left || right ? 0.0f : matte[y * w + x];
      }
    HfamBars found;
    g_assert_cmpint (hfam_matte_clear_bars (matte, grey, w, h, &params, &found), ==, 0);
    g_assert_cmpint (found.top + found.bottom, <=, h);
    g_assert_cmpint (found.left + found.right, <=, w);
    g_assert_cmpmem (matte, sizeof (float) * w * h, want, sizeof (float) * w * h);
  }
  g_rand_free (rng);
}

static void
test_refused (void)
{
  float grey = 0.0f, matte = 1.0f;
  const HfamBarParams nan_black = { .black = NAN }, negative = { .black = -0.1f };

  g_assert_cmpint (hfam_matte_clear_bars (NULL, &grey, 1, 1, &params, NULL), ==, -1);
  g_assert_cmpint (hfam_matte_clear_bars (&matte, NULL, 1, 1, &params, NULL), ==, -1);
  g_assert_cmpint (hfam_matte_clear_bars (&matte, &grey, 0, 1, &params, NULL), ==, -1);
  g_assert_cmpint (hfam_matte_clear_bars (&matte, &grey, 1, 1, NULL, NULL), ==, -1);
  g_assert_cmpint (hfam_matte_clear_bars (&matte, &grey, 1, 1, &nan_black, NULL), ==, -1);
  g_assert_cmpint (hfam_matte_clear_bars (&matte, &grey, 1, 1, &negative, NULL), ==, -1);
  g_assert_cmpfloat (matte, ==, 1.0f);
}

/* ---- at the frame's size: hfam_frame_find_bars, hfam_matte_image_clear_bars ---- */

/* An RGBA frame from rows of '.' (0, 0, 0), '=' (15, 15, 15: sum 45, dark, 45 / 765 < 0.06),
 * '~' (16, 15, 15: sum 46, just over black) and '#' (200, 100, 50); the alpha byte 255. */
static HfamFrame
draw_rgba (const char *const *rows, int h, uint8_t *pixels)
{
  const int w = (int) strlen (rows[0]);

  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      const char c = rows[y][x];
      uint8_t *p = pixels + 4 * (y * w + x);
      p[0] = c == '#' ? 200 : c == '~' ? 16 : c == '=' ? 15 : 0;
      p[1] = c == '#' ? 100 : c == '.' ? 0 : 15;
      p[2] = c == '#' ? 50 : c == '.' ? 0 : 15;
      p[3] = 255;
    }
  return (HfamFrame) { { pixels }, { 4 * w }, w, h, HFAM_FRAME_RGBA };
}

static void
check_frame_bars_at (const HfamFrame *frame, const HfamYuvToRgb *yuv, HfamBars in, int iw,
                     int ih, const HfamBarParams *p, HfamBars want, HfamBars want_mapped)
{
  HfamBars got;

  hfam_frame_find_bars (frame, yuv, &in, iw, ih, frame->width, frame->height, p, &got);
  g_assert_cmpmem (&got, sizeof got, &want, sizeof want);
  hfam_frame_find_bars (NULL, NULL, &in, iw, ih, frame->width, frame->height, p, &got);
  g_assert_cmpmem (&got, sizeof got, &want_mapped, sizeof want_mapped);
}

static void
check_frame_bars (const HfamFrame *frame, const HfamYuvToRgb *yuv, HfamBars in, int iw,
                  int ih, HfamBars want, HfamBars want_mapped)
{
  check_frame_bars_at (frame, yuv, in, iw, ih, &params, want, want_mapped);
}

static void
test_frame_scenes (void)
{
  uint8_t pixels[4 * 64];

  /* a letterbox at 7x3 for 7x8: one inference row is 8 / 3 frame rows, 2 wholly under it.
   * The top bar widens over two dark rows (one at black exactly) to 4; the bottom keeps its
   * 2; the left's one column meets a bright pixel; the right has no inference bar and stays 0
   * though the frame's last column is dark over rows 4..5 */
  static const char *const letterbox[] = { ".......", ".......", "=.....=", ".......",
                                           ".#~##..", "..####.", ".......", "......." };
  HfamFrame f = draw_rgba (letterbox, 8, pixels);
  check_frame_bars (&f, NULL, (HfamBars) { 1, 1, 1, 0 }, 7, 3, (HfamBars) { 4, 2, 1, 0 },
                    (HfamBars) { 2, 2, 1, 0 });
  /* black exactly the mean of '=' (45 / 765 as the twin rounds it): still dark; of '~' not */
  const HfamBarParams at_45 = { 45.0f * (1.0f / 765.0f) };
  check_frame_bars_at (&f, NULL, (HfamBars) { 1, 1, 1, 0 }, 7, 3, &at_45,
                       (HfamBars) { 4, 2, 1, 0 }, (HfamBars) { 2, 2, 1, 0 });
  /* a pillarbox at 4x4 for 8x4 (two columns each): the left bar widens over a dark column
   * whose only bright pixel is in the top bar's row, which the column scan leaves out; the
   * right's next column is not dark; the top's mapped row is bright and stays a bar */
  static const char *const pillarbox[] = { "..#.....", "..=#.#..", "...#.#..", "..=##..." };
  f = draw_rgba (pillarbox, 4, pixels);
  check_frame_bars (&f, NULL, (HfamBars) { 1, 0, 1, 1 }, 4, 4, (HfamBars) { 1, 0, 3, 2 },
                    (HfamBars) { 1, 0, 2, 2 });
  /* the blend above black ('~') ends a bar; no inference bars: nothing, though the frame has
   * dark rows and columns at every edge */
  static const char *const blended[] = { "......", "~~~~~~", ".#..#.", "......" };
  f = draw_rgba (blended, 4, pixels);
  check_frame_bars (&f, NULL, (HfamBars) { 1, 0, 0, 0 }, 6, 4, (HfamBars) { 1, 0, 0, 0 },
                    (HfamBars) { 1, 0, 0, 0 });
  check_frame_bars (&f, NULL, (HfamBars) { 0, 0, 0, 0 }, 6, 4, (HfamBars) { 0, 0, 0, 0 },
                    (HfamBars) { 0, 0, 0, 0 });
  /* black all over, found so at the inference size: the rows take it all, then the columns
   * (over no rows: all dark) */
  static const char *const black[] = { "....", "....", "...." };
  f = draw_rgba (black, 3, pixels);
  check_frame_bars (&f, NULL, (HfamBars) { 2, 0, 2, 0 }, 2, 2, (HfamBars) { 3, 0, 4, 0 },
                    (HfamBars) { 3, 0, 4, 0 });
  /* an inference bar that wholly covers no frame row (one of 8 rows over a frame of 3) still
   * widens over the frame's dark rows; the columns, without one, stay 0 */
  check_frame_bars (&f, NULL, (HfamBars) { 0, 1, 0, 0 }, 4, 8, (HfamBars) { 0, 3, 0, 0 },
                    (HfamBars) { 0, 0, 0, 0 });
}

/* An NV12 frame (full-range BT.601, chroma neutral) from rows of Y: '.' 0, '=' 10 (mean about
 * 0.04, dark), '~' 20 (0.08, not dark), '#' 200. */
static void
test_frame_nv12 (void)
{
  static const char *const rows[] = { "........", "========", "~#######", "##~##~##",
                                      "========", "........" };
  uint8_t luma[8 * 6], chroma[8 * 3];
  const HfamFrame f = { { luma, chroma }, { 8, 8 }, 8, 6, HFAM_FRAME_NV12 };
  HfamYuvToRgb yuv;

  hfam_yuv_to_rgb_init (&yuv, HFAM_MATRIX_BT601, HFAM_RANGE_FULL);
  for (int y = 0; y < 6; y++)
    for (int x = 0; x < 8; x++) {
      const char c = rows[y][x];
      luma[y * 8 + x] = c == '#' ? 200 : c == '~' ? 20 : c == '=' ? 10 : 0;
    }
  memset (chroma, 128, sizeof chroma);
  /* 8x6 at 8x6: each inference row over one frame row; the top widens by one */
  check_frame_bars (&f, &yuv, (HfamBars) { 1, 1, 0, 0 }, 8, 6, (HfamBars) { 2, 2, 0, 0 },
                    (HfamBars) { 1, 1, 0, 0 });
  /* no bottom bar at the inference size: none, though the frame's last two rows are dark */
  check_frame_bars (&f, &yuv, (HfamBars) { 1, 0, 0, 0 }, 8, 6, (HfamBars) { 2, 0, 0, 0 },
                    (HfamBars) { 1, 0, 0, 0 });
  /* at 4x3: 2 rows under each; a left bar of one inference column (2 frame columns) widens
   * over none: column 2 is '#' in row 2 */
  check_frame_bars (&f, &yuv, (HfamBars) { 1, 1, 1, 0 }, 4, 3, (HfamBars) { 2, 2, 2, 0 },
                    (HfamBars) { 2, 2, 2, 0 });
}

/* The mapping alone: the frame's rows (columns) wholly under the inference size's, floored. */
static void
test_frame_mapping (void)
{
  static const struct {
    HfamBars in;
    int iw, ih, fw, fh;
    HfamBars want;
  } cases[] = {
    { { 38, 38, 0, 0 }, 512, 288, 1920, 1080, { 142, 142, 0, 0 } },  /* 142.5 */
    { { 36, 36, 64, 64 }, 512, 288, 1920, 1080, { 135, 135, 240, 240 } },  /* exact */
    { { 1, 3, 1, 2 }, 512, 288, 333, 187, { 0, 1, 0, 1 } },  /* 0.65, 1.95; 0.65, 1.3 */
    { { 2, 0, 0, 2 }, 3, 3, 7, 8, { 5, 0, 0, 4 } },  /* 5.33; 4.67 */
    { { 288, 0, 512, 0 }, 512, 288, 1920, 1080, { 1080, 0, 1920, 0 } },  /* all */
  };

  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++) {
    HfamBars got;
    hfam_frame_find_bars (NULL, NULL, &cases[i].in, cases[i].iw, cases[i].ih, cases[i].fw,
                          cases[i].fh, &params, &got);
    g_assert_cmpmem (&got, sizeof got, &cases[i].want, sizeof cases[i].want);
  }
}

/* Random RGBA frames with dark rows and columns at their edges against a plain oracle: each
 * edge with an inference bar takes its mapped lines (floor in double) and then each next line
 * that a map of dark pixels says is dark throughout (columns over the rows the row bars left);
 * sums kept off the threshold (45.9) so that the map needs no float rounding. */
static void
test_frame_random (void)
{
  GRand *rng = g_rand_new_with_seed (11);

  for (int round = 0; round < 400; round++) {
    const int w = g_rand_int_range (rng, 1, 24), h = g_rand_int_range (rng, 1, 20);
    const int iw = g_rand_int_range (rng, 1, 30), ih = g_rand_int_range (rng, 1, 30);
    const int dark_lines[4] = { g_rand_int_range (rng, 0, h / 2 + 1),
                                g_rand_int_range (rng, 0, h / 2 + 1),
                                g_rand_int_range (rng, 0, w / 2 + 1),
                                g_rand_int_range (rng, 0, w / 2 + 1) };
    const double bright = g_rand_double_range (rng, 0.05, 0.6);
    g_autofree uint8_t *pixels = g_new (uint8_t, 4 * w * h);
    g_autofree gboolean *dark = g_new (gboolean, w * h);
    const HfamFrame f = { { pixels }, { 4 * w }, w, h, HFAM_FRAME_RGBA };
    HfamBars in = { 0, 0, 0, 0 }, got, want;
    int *c = &in.top, *o = &want.top;

    for (int y = 0; y < h; y++)
      for (int x = 0; x < w; x++) {
        const gboolean edge = y < dark_lines[0] || y >= h - dark_lines[1] || x < dark_lines[2]
                              || x >= w - dark_lines[3];
        const int sum = !edge && g_rand_double (rng) < bright ? g_rand_int_range (rng, 52, 766)
                                                              : g_rand_int_range (rng, 0, 41);
        uint8_t *p = pixels + 4 * (y * w + x);
        p[0] = (uint8_t) MIN (sum, 255);
        p[1] = (uint8_t) MIN (sum - p[0], 255);
        p[2] = (uint8_t) (sum - p[0] - p[1]);
        p[3] = (uint8_t) g_rand_int (rng);
        dark[y * w + x] = sum / 765.0 <= 0.06;
      }
    /* valid inference bars: top + bottom <= ih, left + right <= iw; a quarter 0 */
    for (int k = 0; k < 4; k++) {
      const int room = (k < 2 ? ih : iw) - (k % 2 ? c[k - 1] : 0);
      c[k] = g_rand_int_range (rng, 0, 4) ? g_rand_int_range (rng, 0, room + 1) : 0;
    }
    hfam_frame_find_bars (&f, NULL, &in, iw, ih, w, h, &params, &got);
    for (int k = 0; k < 4; k++)
      o[k] = (int) floor ((double) c[k] * (k < 2 ? h : w) / (k < 2 ? ih : iw));
    for (int k = 0; k < 4; k++) {
      if (!c[k])
        continue;
      for (;;) {
        const int rows = k < 2, n = rows ? h : w;
        const int at = k % 2 ? n - 1 - o[k] : o[k];
        gboolean all = TRUE;
        if (o[k - k % 2] + o[k - k % 2 + 1] >= n)
          break;
        if (rows)
          for (int x = 0; x < w; x++)
            all &= dark[at * w + x];
        else
          for (int y = want.top; y < h - want.bottom; y++)
            all &= dark[y * w + at];
        if (!all)
          break;
        o[k]++;
      }
    }
    g_assert_cmpmem (&got, sizeof got, &want, sizeof want);
  }
  g_rand_free (rng);
}

/* Each output format with a padded stride, its bytes numbered, cleared over bars: in a bar, a
 * key's bytes 0, a straight colour's alpha 0 and colours kept, a premultiplied pixel all 0;
 * elsewhere and in the padding nothing changes; refused bars change nothing. */
static void
test_image_clear (void)
{
  static const HfamBars bars[] = { { 1, 1, 2, 1 }, { 0, 0, 0, 0 }, { 4, 0, 0, 0 },
                                   { 0, 2, 0, 5 }, { 1, 2, 3, 2 } };
  static const HfamBars refused[] = { { -1, 0, 0, 0 }, { 0, 0, 0, -1 }, { 3, 2, 0, 0 },
                                      { 0, 0, 3, 3 } };
  const int w = 5, h = 4;

  for (int fmt = 0; fmt < HFAM_MATTE_N_FORMATS; fmt++) {
    const int bpp = hfam_matte_bytes_per_pixel (fmt), stride = w * bpp + 3;
    const gboolean straight = fmt == HFAM_MATTE_RGBA || fmt == HFAM_MATTE_BGRA;
    uint8_t before[4 * 5 * 4 + 3 * 4], image[sizeof before];
    HfamMatteImage out = { image, stride, w, h, fmt };

    for (size_t i = 0; i < sizeof before; i++)
      before[i] = (uint8_t) (i % 251 + 1);
    for (size_t b = 0; b < G_N_ELEMENTS (bars); b++) {
      const HfamBars *bb = &bars[b];
      memcpy (image, before, sizeof image);
      g_assert_cmpint (hfam_matte_image_clear_bars (&out, bb), ==, 0);
      for (int y = 0; y < h; y++)
        for (int i = 0; i < stride; i++) {
          const int x = i / bpp, byte = i % bpp;
          const gboolean bar = i < w * bpp && (y < bb->top || y >= h - bb->bottom
                                               || x < bb->left || x >= w - bb->right);
          const gboolean cleared = bar && (!straight || byte == 3);
          g_assert_cmpint (image[y * stride + i], ==, (cleared ? 0 : before[y * stride + i]));
        }
    }
    for (size_t b = 0; b < G_N_ELEMENTS (refused); b++) {
      memcpy (image, before, sizeof image);
      g_assert_cmpint (hfam_matte_image_clear_bars (&out, &refused[b]), ==, -1);
      g_assert_cmpmem (image, sizeof image, before, sizeof before);
    }
    g_assert_cmpint (hfam_matte_image_clear_bars (&out, NULL), ==, -1);
    out.data = NULL;
    g_assert_cmpint (hfam_matte_image_clear_bars (&out, &bars[0]), ==, -1);
  }
  g_assert_cmpint (hfam_matte_image_clear_bars (NULL, &bars[0]), ==, -1);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/bars/scenes", test_scenes);
  g_test_add_func ("/bars/random", test_random);
  g_test_add_func ("/bars/refused", test_refused);
  g_test_add_func ("/bars/frame/scenes", test_frame_scenes);
  g_test_add_func ("/bars/frame/nv12", test_frame_nv12);
  g_test_add_func ("/bars/frame/mapping", test_frame_mapping);
  g_test_add_func ("/bars/frame/random", test_frame_random);
  g_test_add_func ("/bars/image-clear", test_image_clear);
  return g_test_run ();
}
