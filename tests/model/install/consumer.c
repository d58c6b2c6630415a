/* A program of its own on the installed libhfam: it includes <hfam/hfam.h> alone and links
 * -lhfam through pkg-config (test_install.py builds it against an installed tree). It mattes
 * a drawn frame through the public API and checks what a user relies on: the outputs of one
 * call agree with each other, a submit and collect gives the run's matte, and errors name
 * their cause.
 *
 *   consumer MODEL */
#include <hfam/hfam.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define W 96
#define H 64

static int failures;

static void
check (int ok, const char *what)
{
  if (!ok) {
    fprintf (stderr, "FAIL: %s\n", what);
    failures++;
  }
}

static HfamImage
packed (void *data, int channels, HfamFormat format)
{
  return (HfamImage) { .planes = { data }, .strides = { W * channels }, .width = W,
                       .height = H, .format = format };
}

int
main (int argc, char **argv)
{
  static guint8 rgb[H][W][3], key[H][W], again[H][W], fill[H][W][4];
  static float alpha[H][W];
  const HfamFrameParams params = { .long_side = 64 };
  GError *error = NULL;

  if (argc != 2) {
    fprintf (stderr, "usage: %s MODEL\n", argv[0]);
    return 2;
  }
  /* a missing file is refused, the path named */
  check (hfam_model_load ("/nonexistent/model.safetensors", &error) == NULL
           && g_error_matches (error, HFAM_ERROR, HFAM_ERROR_IO)
           && strstr (error->message, "/nonexistent/model.safetensors") != NULL,
         "a missing model names its path (HFAM_ERROR_IO)");
  g_clear_error (&error);

  g_autoptr (HfamModel) model = hfam_model_load (argv[1], &error);
  g_autoptr (HfamContext) ctx = model ? hfam_context_new (model, NULL, NULL, &error) : NULL;
  if (!ctx) {
    fprintf (stderr, "FAIL: %s\n", error->message);
    return 1;
  }
  /* a figure, a face over shoulders, before a plain wall */
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      static const guint8 skin[3] = { 224, 172, 140 }, shirt[3] = { 40, 60, 120 },
                          wall[3] = { 150, 170, 160 };
      const double face = hypot ((x - W / 2) / 11.0, (y - 22) / 14.0);
      const int body = y > 36 && abs (x - W / 2) < 12 + (y - 36);
      const guint8 *colour = face < 1.0 ? skin : body ? shirt : wall;
      memcpy (rgb[y][x], colour, 3);
    }

  const HfamImage frame = packed (rgb, 3, HFAM_FORMAT_RGB);
  const HfamImage outputs[] = { packed (alpha, 4, HFAM_FORMAT_GRAY32F),
                                packed (key, 1, HFAM_FORMAT_GRAY8),
                                packed (fill, 4, HFAM_FORMAT_RGBA) };
  check (hfam_context_run (ctx, &frame, &params, outputs, 3, &error), "hfam_context_run");
  g_clear_error (&error);
  double mean = 0.0;
  float lo = 1.0f, hi = 0.0f;
  int in_range = 1, key_is_matte = 1, fill_alpha_is_key = 1, fill_is_frame = 1;
  for (int y = 0; y < H; y++)
    for (int x = 0; x < W; x++) {
      mean += alpha[y][x] / (W * H);
      lo = fminf (lo, alpha[y][x]);
      hi = fmaxf (hi, alpha[y][x]);
      in_range &= alpha[y][x] >= 0.0f && alpha[y][x] <= 1.0f;
      key_is_matte &= abs (key[y][x] - (int) lrintf (alpha[y][x] * 255.0f)) <= 1;
      fill_alpha_is_key &= fill[y][x][3] == key[y][x];
      fill_is_frame &= memcmp (fill[y][x], rgb[y][x], 3) == 0;
    }
  check (in_range, "the matte is in 0..1");
  check (hi - lo > 0.01f, "the network ran: the matte is not flat");
  check (key_is_matte, "the key is the matte in bytes");
  check (fill_alpha_is_key, "the fill's alpha is the key");
  check (fill_is_frame, "the fill carries the frame's colours");

  const HfamImage key_again = packed (again, 1, HFAM_FORMAT_GRAY8);
  check (hfam_context_submit (ctx, &frame, &params, &error)
           && hfam_context_collect (ctx, &frame, &key_again, 1, &error),
         "hfam_context_submit and hfam_context_collect");
  g_clear_error (&error);
  check (memcmp (key, again, sizeof key) == 0, "submit and collect give the run's matte");

  /* an output of another size is refused as an argument error */
  HfamImage small = key_again;
  small.width = W / 2;
  check (!hfam_context_run (ctx, &frame, &params, &small, 1, &error)
           && g_error_matches (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT),
         "an output of another size is refused");
  g_clear_error (&error);

  printf ("%s backend, matte mean %.4f: %s\n", hfam_context_backend_name (ctx), mean,
          failures ? "FAILED" : "ok");
  return failures ? 1 : 0;
}
