/* kernels/resize.c: hand-computed cases, and with the argument `golden FILE` a comparison with
 * the outputs of PyTorch that resize_golden.py wrote (`golden` alone: no torch, skip). */
#include "kernel-test.h"
#include "resize.h"

#include <glib.h>
#include <math.h>
#include <omp.h>
#include <string.h>

/* Max abs error allowed on 0..1 data; normalised frames scale it by scale / std. */
#define GOLDEN_TOLERANCE 1e-5

static void
test_constant (void)
{
  static const int sizes[][2] = { { 1, 1 }, { 5, 3 }, { 37, 23 }, { 80, 50 }, { 1, 200 } };
  float src[37 * 23];

  for (size_t i = 0; i < G_N_ELEMENTS (src); i++)
    src[i] = 0.7f;
  for (size_t s = 0; s < G_N_ELEMENTS (sizes); s++) {
    int dw = sizes[s][0], dh = sizes[s][1];
    g_autofree float *dst = g_new (float, dw * dh);

    g_assert_cmpint (hfam_resize_plane (src, 37, 23, 37, dst, dw, dh, dw), ==, 0);
    for (int i = 0; i < dw * dh; i++)
      g_assert_cmpfloat_with_epsilon (dst[i], 0.7f, 1e-6);
  }
}

/* Align_corners = false: outputs 0..3 sit at inputs -0.25, 0.25, 0.75, 1.25, clamped, so the
 * 1-D weights are (1, 0), (3/4, 1/4), (1/4, 3/4), (0, 1). */
static void
test_checkerboard_enlarge (void)
{
  static const float src[4] = { 0, 1, 1, 0 };
  static const float expected[16] = {
    0.0f,  0.25f,  0.75f,  1.0f,
    0.25f, 0.375f, 0.625f, 0.75f,
    0.75f, 0.625f, 0.375f, 0.25f,
    1.0f,  0.75f,  0.25f,  0.0f,
  };
  float dst[16];

  g_assert_cmpint (hfam_resize_plane (src, 2, 2, 2, dst, 4, 4, 4), ==, 0);
  g_assert_cmpfloat (max_abs_diff (dst, expected, 16), <=, 1e-7);
}

/* Halving: the triangle widened to support 2 around centre 1 weighs inputs 0, 1, 2 as 3/4,
 * 3/4, 1/4 before normalisation (PIL-style, not a box), mirrored for the second output. */
static void
test_halve (void)
{
  static const float src[4] = { 0, 0, 7, 0 };
  float dst[2];

  g_assert_cmpint (hfam_resize_plane (src, 4, 1, 4, dst, 2, 1, 2), ==, 0);
  g_assert_cmpfloat_with_epsilon (dst[0], 1.0f, 1e-6);
  g_assert_cmpfloat_with_epsilon (dst[1], 3.0f, 1e-6);
}

static void
test_identity (void)
{
  float src[6 * 5], dst[6 * 5];

  for (size_t i = 0; i < G_N_ELEMENTS (src); i++)
    src[i] = g_test_rand_double ();
  g_assert_cmpint (hfam_resize_plane (src, 6, 5, 6, dst, 6, 5, 6), ==, 0);
  g_assert_cmpmem (src, sizeof src, dst, sizeof dst);
}

/* A constant BGRA frame: each plane holds the normalised value of the channel `order` asks
 * for, whatever the direction of the resize. */
static void
test_frame_constant (void)
{
  static const uint8_t pixel[4] = { 250, 128, 10, 99 }; /* B, G, R, A */
  static const int bgra[3] = { 2, 1, 0 }, bgr_order[3] = { 2, 1, 0 };
  static const float mean[3] = { 0.1f, 0.2f, 0.3f }, std[3] = { 0.5f, 0.25f, 2.0f };
  static const int sizes[][2] = { { 3, 2 }, { 40, 24 }, { 13, 200 } };
  uint8_t src[13 * 4 * 11];

  for (size_t i = 0; i < sizeof src; i++)
    src[i] = pixel[i % 4];
  for (size_t s = 0; s < G_N_ELEMENTS (sizes); s++) {
    int dw = sizes[s][0], dh = sizes[s][1];
    g_autofree float *dst = g_new (float, 3 * dw * dh);

    g_assert_cmpint (hfam_preprocess_rgb8 (src, 13, 11, 13 * 4, 4, bgra, dst, dw, dh,
                                            bgr_order, 255.0f, mean, std), ==, 0);
    for (int k = 0; k < 3; k++) {
      float want = (pixel[2 - bgr_order[k]] - mean[k]) / std[k];
      for (int i = 0; i < dw * dh; i++)
        g_assert_cmpfloat_with_epsilon (dst[k * dw * dh + i], want, 1e-3);
    }
  }
}

static void
test_bad_sizes (void)
{
  static const uint8_t bytes[12];
  static const int rgb[3] = { 0, 1, 2 };
  static const float zero[3], one[3] = { 1, 1, 1 };
  float plane[4] = { 0 }, out[12];

  g_assert_cmpint (hfam_resize_plane (plane, 0, 2, 2, out, 2, 2, 2), ==, -1);
  g_assert_cmpint (hfam_resize_plane (plane, 2, 2, 2, out, 2, 0, 2), ==, -1);
  g_assert_cmpint (hfam_preprocess_rgb8 (bytes, 2, 2, 4, 2, rgb, out, 2, 2, rgb, 1, zero,
                                          one), ==, -1);
  g_assert_cmpint (hfam_preprocess_rgb8 (bytes, 2, 2, 6, 3, rgb, out, 0, 2, rgb, 1, zero,
                                          one), ==, -1);
}

/* Reads the case stream of resize_golden.py. */
typedef struct {
  const uint8_t *p, *end;
} Reader;

static const void *
take (Reader *r, size_t n)
{
  const void *p = r->p;

  if ((size_t) (r->end - r->p) < n)
    g_error ("golden file truncated");
  r->p += n;
  return p;
}

static int32_t
take_i32 (Reader *r)
{
  int32_t v;
  memcpy (&v, take (r, 4), 4);
  return GINT32_FROM_LE (v);
}

static float
take_f32 (Reader *r)
{
  union { int32_t i; float f; } v = { .i = take_i32 (r) };
  return v.f;
}

/* The data is little-endian like every host this runs on; copied for alignment. */
static float *
take_floats (Reader *r, size_t n)
{
  return g_memdup2 (take (r, n * sizeof (float)), n * sizeof (float));
}

static void
golden_plane (Reader *r, int sw, int sh, int dw, int dh)
{
  int ss = take_i32 (r);
  g_autofree float *src = take_floats (r, (size_t) sh * ss);
  g_autofree float *want = take_floats (r, (size_t) dw * dh);
  g_autofree float *got = g_new (float, (size_t) dw * dh);

  g_test_message ("plane %dx%d (stride %d) -> %dx%d", sw, sh, ss, dw, dh);
  g_assert_cmpint (hfam_resize_plane (src, sw, sh, ss, got, dw, dh, dw), ==, 0);
  float err = max_abs_diff (got, want, (size_t) dw * dh);
  g_test_message ("  max abs error %.3g", err);
  g_assert_cmpfloat (err, <=, GOLDEN_TOLERANCE);
}

static void
golden_frame (Reader *r, int sw, int sh, int dw, int dh)
{
  int bpp = take_i32 (r), stride = take_i32 (r);
  int offsets[3], order[3];
  float scale, mean[3], std[3], tolerance = 0.0f;

  for (int k = 0; k < 3; k++)
    offsets[k] = take_i32 (r);
  for (int k = 0; k < 3; k++)
    order[k] = take_i32 (r);
  scale = take_f32 (r);
  for (int k = 0; k < 3; k++)
    mean[k] = take_f32 (r);
  for (int k = 0; k < 3; k++) {
    std[k] = take_f32 (r);
    tolerance = MAX (tolerance, GOLDEN_TOLERANCE * scale / std[k]);
  }

  const uint8_t *src = take (r, (size_t) sh * stride);
  g_autofree float *want = take_floats (r, (size_t) 3 * dw * dh);
  g_autofree float *got = g_new (float, (size_t) 3 * dw * dh);

  g_test_message ("frame %dx%d (%d bytes/pixel, stride %d) -> %dx%d", sw, sh, bpp, stride, dw,
                  dh);
  g_assert_cmpint (hfam_preprocess_rgb8 (src, sw, sh, stride, bpp, offsets, got, dw, dh,
                                          order, scale, mean, std), ==, 0);
  float err = max_abs_diff (got, want, (size_t) 3 * dw * dh);
  g_test_message ("  max abs error %.3g (allowed %.3g)", err, tolerance);
  g_assert_cmpfloat (err, <=, tolerance);
}

static void
test_golden (gconstpointer path)
{
  g_autoptr (GError) error = NULL;
  g_autoptr (GMappedFile) file = g_mapped_file_new (path, FALSE, &error);

  g_assert_no_error (error);
  Reader r = { (const uint8_t *) g_mapped_file_get_contents (file), NULL };
  r.end = r.p + g_mapped_file_get_length (file);
  g_assert_cmpmem (take (&r, 4), 4, "HFRG", 4);

  int n = take_i32 (&r);
  for (int i = 0; i < n; i++) {
    int kind = take_i32 (&r);
    int sw = take_i32 (&r), sh = take_i32 (&r), dw = take_i32 (&r), dh = take_i32 (&r);

    if (kind == 0)
      golden_plane (&r, sw, sh, dw, dh);
    else
      golden_frame (&r, sw, sh, dw, dh);
  }
  g_assert_true (r.p == r.end);
}

/* Frames large enough to spread over threads: the lines must come out as on one thread, bit
 * for bit, in both pass orders (shrinking and enlarging take different ones). */
static void
test_threads (void)
{
  static const int sizes[][4] = {
    { 1920, 1080, 512, 288 }, { 512, 288, 1920, 1080 }, { 1080, 1920, 288, 512 },
    { 640, 480, 1024, 768 },
  };
  static const int offsets[3] = { 2, 1, 0 }, order[3] = { 0, 1, 2 };
  static const float mean[3] = { 0.485f, 0.456f, 0.406f }, std[3] = { 0.229f, 0.224f, 0.225f };

  for (guint c = 0; c < G_N_ELEMENTS (sizes); c++) {
    const int sw = sizes[c][0], sh = sizes[c][1], dw = sizes[c][2], dh = sizes[c][3];
    g_autofree guint8 *bgra = g_malloc ((size_t) sw * sh * 4);
    g_autofree float *plane = g_new (float, (size_t) sw * sh);
    g_autofree float *one = g_new (float, 3 * (size_t) dw * dh);
    g_autofree float *many = g_new (float, 3 * (size_t) dw * dh);

    for (size_t i = 0; i < (size_t) sw * sh * 4; i++)
      bgra[i] = (guint8) (i * 13 + i / 977);
    for (size_t i = 0; i < (size_t) sw * sh; i++)
      plane[i] = (float) ((i * 7919) % 1000) / 999.0f;
    for (int threads = 1; threads <= 3; threads += 2) {
      float *out = threads == 1 ? one : many;
      omp_set_num_threads (threads);
      g_assert_cmpint (hfam_resize_plane (plane, sw, sh, sw, out, dw, dh, dw), ==, 0);
    }
    g_assert_true (memcmp (one, many, sizeof (float) * dw * dh) == 0);
    for (int threads = 1; threads <= 3; threads += 2) {
      float *out = threads == 1 ? one : many;
      omp_set_num_threads (threads);
      g_assert_cmpint (hfam_preprocess_rgb8 (bgra, sw, sh, sw * 4, 4, offsets, out, dw, dh,
                                              order, 1.0f, mean, std), ==, 0);
    }
    g_assert_true (memcmp (one, many, sizeof (float) * 3 * dw * dh) == 0);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);

  if (argc > 1 && strcmp (argv[1], "golden") == 0) {
    if (argc < 3) {
      g_print ("skipped: /usr/bin/python3 cannot import torch, so no golden outputs\n");
      return 77;
    }
    g_test_add_data_func ("/resize/golden", argv[2], test_golden);
    return g_test_run ();
  }

  g_test_add_func ("/resize/constant", test_constant);
  g_test_add_func ("/resize/checkerboard-enlarge", test_checkerboard_enlarge);
  g_test_add_func ("/resize/halve", test_halve);
  g_test_add_func ("/resize/identity", test_identity);
  g_test_add_func ("/resize/frame-constant", test_frame_constant);
  g_test_add_func ("/resize/bad-sizes", test_bad_sizes);
  g_test_add_func ("/resize/threads", test_threads);
  return g_test_run ();
}
