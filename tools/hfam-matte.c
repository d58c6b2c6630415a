/* hfam-matte: the alpha matte of one portrait picture, as a gray PNG or as the picture with
 * the matte for alpha. */
#include <math.h>
#include <stdlib.h>

#include <hfam/hfam.h>
#include "imageio.h"
#include "matte-picture.h"
#include "options.h"

static char *model_path, *output_path, *fill_text, *key_levels_text;
static OptionsEngine engine;
static HfamEdgeParams edges;
static gboolean want_alpha, want_rgba;
static HfamFrameParams frame_params;

static const GOptionEntry entries[] = {
  { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path,
    "Weight file (safetensors; default: the default model)", "M" },
  { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output_path, "PNG file to write", "OUT" },
  { "alpha", 0, 0, G_OPTION_ARG_NONE, &want_alpha, "Write the matte as gray (default)", NULL },
  { "rgba", 0, 0, G_OPTION_ARG_NONE, &want_rgba, "Write the picture with the matte as alpha",
    NULL },
  { "fill", 0, 0, G_OPTION_ARG_STRING, &fill_text,
    "Colours of --rgba: frame (the picture's, default) or foreground (estimated)", "WHAT" },
  { "key-levels", 0, 0, G_OPTION_ARG_STRING, &key_levels_text,
    "Black and white clip points of the matte (default: 0,1, unchanged)", "B,W" },
  G_OPTION_ENTRY_NULL
};

static guint8
to_byte (float alpha)
{
  return (guint8) lrintf (CLAMP (alpha, 0.0f, 1.0f) * 255.0f);
}

/* The picture with the kept matte as alpha and the foreground's colours, from libhfam. */
static gboolean
write_foreground (HfamContext *ctx, const ImageioPicture *picture, GError **error)
{
  const int w = picture->width, h = picture->height;
  g_autofree guint8 *rgba = g_new (guint8, (gsize) w * h * 4);
  const HfamImage frame = {
    .planes = { picture->pixels }, .strides = { picture->stride }, .width = w, .height = h,
    .format = picture->channels == 4 ? HFAM_FORMAT_RGBA : HFAM_FORMAT_RGB,
  };
  const HfamImage out = {
    .planes = { rgba }, .strides = { w * 4 }, .width = w, .height = h,
    .format = HFAM_FORMAT_RGBA,
  };

  return hfam_context_write_kept (ctx, &frame, &out, 1, error)
         && imageio_write_png (output_path, rgba, w, h, w * 4, 4, error);
}

/* The matte of `picture` (width x height floats), written as asked. */
static gboolean
write_result (HfamContext *ctx, const ImageioPicture *picture, const float *alpha,
              GError **error)
{
  int w = picture->width, h = picture->height;

  if (want_rgba && edges.fill == HFAM_FILL_FOREGROUND)
    return write_foreground (ctx, picture, error);
  if (want_rgba) {
    g_autofree guint8 *rgba = g_new (guint8, (gsize) w * h * 4);
    for (int y = 0; y < h; y++) {
      const guint8 *in = picture->pixels + (gsize) y * picture->stride;
      guint8 *out = rgba + (gsize) y * w * 4;
      for (int x = 0; x < w; x++, in += picture->channels, out += 4) {
        out[0] = in[0];
        out[1] = in[1];
        out[2] = in[2];
        out[3] = to_byte (alpha[(gsize) y * w + x]);
      }
    }
    return imageio_write_png (output_path, rgba, w, h, w * 4, 4, error);
  }

  g_autofree guint8 *gray = g_new (guint8, (gsize) w * h);
  for (gsize i = 0; i < (gsize) w * h; i++)
    gray[i] = to_byte (alpha[i]);
  return imageio_write_png (output_path, gray, w, h, w, 1, error);
}

static gboolean
matte (const char *input_path, const HfamOptions *options, GError **error)
{
  g_autoptr (ImageioPicture) picture = imageio_read (input_path, error);
  HfamModel *model;
  HfamContext *ctx;
  gboolean ok;

  if (!picture)
    return FALSE;
  model = hfam_model_load (model_path, error);
  if (!model)
    return FALSE;
  ctx = hfam_context_new (model, options, NULL, error);
  if (!ctx || !hfam_context_set_edges (ctx, &edges, error)) {
    hfam_context_free (ctx);
    hfam_model_free (model);
    return FALSE;
  }

  g_autofree float *alpha = matte_picture (ctx, picture, &frame_params, error);
  ok = alpha && write_result (ctx, picture, alpha, error);

  hfam_context_free (ctx);
  hfam_model_free (model);
  return ok;
}

static gboolean
run (int argc, char **argv, GError **error)
{
  g_autoptr (GOptionContext) options = g_option_context_new ("INPUT.(png|jpg)");
  HfamOptions engine_options;

  g_option_context_set_summary (options, "Writes the alpha matte of a portrait picture.");
  g_option_context_add_main_entries (options, entries, NULL);
  options_add_engine (options, &engine);
  if (!g_option_context_parse (options, &argc, &argv, error))
    return FALSE;
  if (argc != 2 || !output_path) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "usage: hfam-matte [--model M] INPUT.(png|jpg) -o OUT.png (see --help)");
    return FALSE;
  }
  if (!model_path)
    model_path = g_strdup (hfam_default_model_path ());
  if (want_alpha && want_rgba) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "--alpha and --rgba exclude each other");
    return FALSE;
  }
  if (!options_parse_engine (&engine, fill_text, key_levels_text, &frame_params, &engine_options,
                             &edges, error))
    return FALSE;
  if (fill_text && !want_rgba) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "--fill goes with --rgba");
    return FALSE;
  }
  return matte (argv[1], &engine_options, error);
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;

  if (!run (argc, argv, &error)) {
    g_printerr ("hfam-matte: %s\n", error->message);
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
