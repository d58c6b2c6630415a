/* hfam-video-eval: how a matte holds up over time. The engine mattes each frame of a sequence in
 * order through libhfam's own temporal path (hfam_context_run with HfamFrameParams: the code
 * the element runs; with --interval N, the network on one frame in N and the others written
 * from the kept matte by hfam_context_follow and hfam_context_write_kept, as the element's
 * inference-interval), and the mattes are scored, quantised to 8 bits as the element's GRAY8
 * key:
 *
 * With ground truth (a folder made by model/python/videoset/make_videoset.py: manifest.json,
 * SEQ/frames/NNNNN.jpg, SEQ/alpha/NNNNN.png), per sequence and their mean:
 *   dtSSD  = the mean over frames of 100 sqrt (mean over pixels of
 *            ((a_t - a_t-1) - (g_t - g_t-1))^2), frame 0 counting 0 (RVM's evaluation)
 *   SAD    = the mean over frames of sum |a - g| / 1000 (hfam-eval's)
 *   MSE    = the mean over frames of mean (a - g)^2
 *   moving SAD = SAD over the frames the manifest marks as moving (lag shows there)
 *   flicker, as below.
 * Without (a folder of frames, PNG or JPEG, in name order: a real clip):
 *   flicker = the mean over frames t >= 1 of mean |a_t - a_t-1| in 8-bit levels over the
 *             pixels whose colour changed by at most FLICKER_STILL_LEVELS in every channel
 *             between the two frames (where the picture is still, the matte should be). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include <hfam/hfam.h>
#include "imageio.h"
#include "matte-read.h"
#include "options.h"

/* a colour change up to this many 8-bit levels is a still pixel's (camera noise, coding) */
#define FLICKER_STILL_LEVELS 6

static char *model_path, *temporal_text, *csv_path, *save_dir;
static OptionsEngine engine;
static int interval = 1;
static gboolean default_model;

static const GOptionEntry entries[] = {
  { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path, "Weight file (safetensors)", "M" },
  { "default-model", 'd', 0, G_OPTION_ARG_NONE, &default_model, "Run the default model", NULL },
  { "temporal", 0, 0, G_OPTION_ARG_STRING, &temporal_text,
    "Temporal smoothing: compensated:S (the element's default method), motion:S (the same "
    "without motion compensation), blend:S (the plain blend), or none; S in 0..1 (default: as "
    "the element)", "HOW" },
  { "csv", 0, 0, G_OPTION_ARG_FILENAME, &csv_path, "Write the table as CSV too", "FILE" },
  { "save", 0, 0, G_OPTION_ARG_FILENAME, &save_dir,
    "Write the mattes there, as DIR/SEQUENCE/NNNNN.png (gray, 8 bits: what was scored)", "DIR" },
  { "interval", 0, 0, G_OPTION_ARG_INT, &interval,
    "Run the network on one frame in N and write the others from its matte, as the element's "
    "inference-interval (default 1: every frame)", "N" },
  G_OPTION_ENTRY_NULL
};

static const char *const methods[] = { [HFAM_TEMPORAL_BLEND] = "blend",
                                       [HFAM_TEMPORAL_MOTION] = "motion",
                                       [HFAM_TEMPORAL_COMPENSATED] = "compensated" };

/* --temporal none | blend:S | motion:S | compensated:S into params; NULL: the element's
 * default. */
static gboolean
parse_temporal (const char *text, HfamFrameParams *params, GError **error)
{
  const char *colon;
  char *end;
  double s;

  params->temporal = HFAM_TEMPORAL_COMPENSATED;
  params->smoothing = HFAM_TEMPORAL_SMOOTHING_DEFAULT;
  if (!text)
    return TRUE;
  if (g_str_equal (text, "none")) {
    params->smoothing = 0.0f;
    return TRUE;
  }
  colon = strchr (text, ':');
  for (guint m = 0; colon && m < G_N_ELEMENTS (methods); m++) {
    if (strlen (methods[m]) != (size_t) (colon - text)
        || strncmp (text, methods[m], colon - text) != 0)
      continue;
    s = g_ascii_strtod (colon + 1, &end);
    /* (written so that NaN fails too) */
    if (end != colon + 1 && !*end && s >= 0.0 && s <= 1.0) {
      params->temporal = (HfamTemporal) m;
      params->smoothing = (float) s;
      return TRUE;
    }
  }
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
               "--temporal %s: want none, blend:S, motion:S or compensated:S with 0 <= S <= 1",
               text);
  return FALSE;
}

/* One sequence's frames (and ground truth, or NULL) in order. */
typedef struct {
  char *name;
  GPtrArray *frames, *truths;
  gboolean *moving;
} Sequence;

static void
sequence_free (gpointer data)
{
  Sequence *s = data;

  g_free (s->name);
  g_ptr_array_unref (s->frames);
  if (s->truths)
    g_ptr_array_unref (s->truths);
  g_free (s->moving);
  g_free (s);
}

static int
compare_strings (const void *a, const void *b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* The picture files of a folder (a real clip), in name order. */
static Sequence *
clip_sequence (const char *dir, GError **error)
{
  g_autoptr (GDir) folder = g_dir_open (dir, 0, error);
  Sequence *s;
  const char *name;

  if (!folder)
    return NULL;
  s = g_new0 (Sequence, 1);
  s->name = g_path_get_basename (dir);
  s->frames = g_ptr_array_new_with_free_func (g_free);
  while ((name = g_dir_read_name (folder)))
    if (g_str_has_suffix (name, ".png") || g_str_has_suffix (name, ".jpg")
        || g_str_has_suffix (name, ".jpeg"))
      g_ptr_array_add (s->frames, g_build_filename (dir, name, NULL));
  qsort (s->frames->pdata, s->frames->len, sizeof (gpointer), compare_strings);
  if (s->frames->len < 2) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "%s: fewer than 2 PNG or JPEG frames",
                 dir);
    sequence_free (s);
    return NULL;
  }
  return s;
}

/* o's member `name` when it holds a value of this kind (a JSON_NODE_VALUE of `value_type`, or
 * an array or object), else NULL: a manifest's types are not trusted. */
static JsonNode *
member_of (JsonObject *o, const char *name, JsonNodeType kind, GType value_type)
{
  JsonNode *node = o && json_object_has_member (o, name) ? json_object_get_member (o, name)
                                                         : NULL;

  if (!node || JSON_NODE_TYPE (node) != kind
      || (kind == JSON_NODE_VALUE && json_node_get_value_type (node) != value_type))
    return NULL;
  return node;
}

/* The sequences of a make_videoset.py folder. */
static GPtrArray *
manifest_sequences (const char *dir, const char *manifest, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  g_autoptr (GPtrArray) sequences = g_ptr_array_new_with_free_func (sequence_free);
  JsonNode *root, *member;
  JsonArray *list;

  if (!json_parser_load_from_file (parser, manifest, error))
    return NULL;
  root = json_parser_get_root (parser);
  member = root && JSON_NODE_HOLDS_OBJECT (root)
               ? member_of (json_node_get_object (root), "sequences", JSON_NODE_ARRAY, 0) : NULL;
  list = member ? json_node_get_array (member) : NULL;
  if (!list || json_array_get_length (list) == 0) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "%s: no \"sequences\" array", manifest);
    return NULL;
  }
  for (guint i = 0; i < json_array_get_length (list); i++) {
    JsonNode *element = json_array_get_element (list, i);
    JsonObject *o = JSON_NODE_HOLDS_OBJECT (element) ? json_node_get_object (element) : NULL;
    JsonNode *moving_node = member_of (o, "moving", JSON_NODE_ARRAY, 0);
    JsonNode *frames_node = member_of (o, "frames", JSON_NODE_VALUE, G_TYPE_INT64);
    JsonNode *name_node = member_of (o, "name", JSON_NODE_VALUE, G_TYPE_STRING);
    JsonArray *moving = moving_node ? json_node_get_array (moving_node) : NULL;
    const gint64 n = frames_node ? json_node_get_int (frames_node) : 0;
    const char *name = name_node ? json_node_get_string (name_node) : NULL;
    gboolean flags = moving && json_array_get_length (moving) == n;

    for (gint64 t = 0; flags && t < n; t++) {
      JsonNode *flag = json_array_get_element (moving, t);
      flags = JSON_NODE_HOLDS_VALUE (flag) && json_node_get_value_type (flag) == G_TYPE_BOOLEAN;
    }
    if (!name || !flags || n < 2 || n > 100000 || strchr (name, '/')
        || g_str_equal (name, "..")) {
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                   "%s: sequence %u: want a name, frames >= 2 and a \"moving\" flag per frame",
                   manifest, i);
      return NULL;
    }
    Sequence *s = g_new0 (Sequence, 1);
    s->name = g_strdup (name);
    s->frames = g_ptr_array_new_with_free_func (g_free);
    s->truths = g_ptr_array_new_with_free_func (g_free);
    s->moving = g_new (gboolean, n);
    for (gint64 t = 0; t < n; t++) {
      g_ptr_array_add (s->frames, g_strdup_printf ("%s/%s/frames/%05" G_GINT64_FORMAT ".jpg",
                                                   dir, name, t));
      g_ptr_array_add (s->truths, g_strdup_printf ("%s/%s/alpha/%05" G_GINT64_FORMAT ".png",
                                                   dir, name, t));
      s->moving[t] = json_array_get_boolean_element (moving, t);
    }
    g_ptr_array_add (sequences, s);
  }
  return g_steal_pointer (&sequences);
}

typedef struct {
  double dtssd, sad, mse, moving_sad, flicker;
} VideoScores;

/* Scores one sequence; frame 0 starts afresh (no smoothing into the previous sequence).
 * Frames 0, interval, 2 interval, ... run the network; the rest show the kept matte, moved
 * along their picture's motion where the smoothing compensates motion. */
static gboolean
score_sequence (HfamContext *ctx, const Sequence *s, const HfamFrameParams *params,
                VideoScores *out, GError **error)
{
  g_autofree double *prev = NULL, *prev_truth = NULL, *alpha = NULL;
  g_autoptr (ImageioPicture) prev_picture = NULL;
  double dtssd = 0, sad = 0, mse = 0, moving_sad = 0, flicker = 0;
  int n_moving = 0, width = 0, height = 0;

  for (guint t = 0; t < s->frames->len; t++) {
    g_autoptr (ImageioPicture) picture = imageio_read (s->frames->pdata[t], error);
    g_autoptr (Matte) truth = NULL;
    HfamFrameParams p = *params;
    size_t n;

    if (!picture)
      return FALSE;
    if (t == 0) {
      width = picture->width;
      height = picture->height;
      alpha = g_new (double, (size_t) width * height);
      prev = g_new (double, (size_t) width * height);
      prev_truth = g_new (double, (size_t) width * height);
      p.smoothing = 0.0f;
    } else if (picture->width != width || picture->height != height) {
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "%s is %dx%d, frame 0 %dx%d",
                   (char *) s->frames->pdata[t], picture->width, picture->height, width, height);
      return FALSE;
    }
    n = (size_t) width * height;
    g_autofree float *matte = g_new (float, n);
    const HfamImage frame = {
      .planes = { picture->pixels }, .strides = { picture->stride }, .width = width,
      .height = height, .format = picture->channels == 4 ? HFAM_FORMAT_RGBA : HFAM_FORMAT_RGB,
    };
    const HfamImage key = {
      .planes = { (uint8_t *) matte }, .strides = { (int) sizeof (float) * width },
      .width = width, .height = height, .format = HFAM_FORMAT_GRAY32F,
    };
    if (t % interval == 0 ? !hfam_context_run (ctx, &frame, &p, &key, 1, error)
                          : !hfam_context_follow (ctx, &frame, error)
                            || !hfam_context_write_kept (ctx, &frame, &key, 1, error))
      return FALSE;
    g_autofree guint8 *bytes = g_new (guint8, n);
    for (size_t i = 0; i < n; i++) {
      bytes[i] = (guint8) lrintf (CLAMP (matte[i], 0.0f, 1.0f) * 255.0f);
      alpha[i] = bytes[i] / 255.0;
    }
    if (save_dir) {
      g_autofree char *dir = g_build_filename (save_dir, s->name, NULL);
      g_autofree char *file = g_strdup_printf ("%05u.png", t);
      g_autofree char *path = g_build_filename (dir, file, NULL);
      if (g_mkdir_with_parents (dir, 0777) != 0) {
        g_set_error (error, HFAM_ERROR, HFAM_ERROR_IO, "%s: cannot create it", dir);
        return FALSE;
      }
      if (!imageio_write_png (path, bytes, width, height, width, 1, error))
        return FALSE;
    }

    if (s->truths) {
      if (!(truth = matte_read (s->truths->pdata[t], error)))
        return FALSE;
      if (truth->width != width || truth->height != height) {
        g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "%s is %dx%d, its frame %dx%d",
                     (char *) s->truths->pdata[t], truth->width, truth->height, width, height);
        return FALSE;
      }
      double frame_sad = 0, frame_mse = 0, dt = 0;
      for (size_t i = 0; i < n; i++) {
        const double d = alpha[i] - truth->alpha[i];
        frame_sad += fabs (d);
        frame_mse += d * d;
        if (t > 0) {
          const double e = (alpha[i] - prev[i]) - (truth->alpha[i] - prev_truth[i]);
          dt += e * e;
        }
      }
      sad += frame_sad / 1000;
      mse += frame_mse / n;
      dtssd += t > 0 ? 100 * sqrt (dt / n) : 0;
      if (s->moving[t]) {
        moving_sad += frame_sad / 1000;
        n_moving++;
      }
      memcpy (prev_truth, truth->alpha, sizeof (double) * n);
    }
    if (t > 0) {
      double change = 0;
      size_t still = 0;
      for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++) {
          const guint8 *a = picture->pixels + (size_t) y * picture->stride + x * picture->channels;
          const guint8 *b = prev_picture->pixels + (size_t) y * prev_picture->stride
                            + x * prev_picture->channels;
          const size_t i = (size_t) y * width + x;
          if (ABS (a[0] - b[0]) <= FLICKER_STILL_LEVELS && ABS (a[1] - b[1]) <= FLICKER_STILL_LEVELS
              && ABS (a[2] - b[2]) <= FLICKER_STILL_LEVELS) {
            change += fabs (alpha[i] - prev[i]);
            still++;
          }
        }
      flicker += still ? 255 * change / still : 0;
    }
    memcpy (prev, alpha, sizeof (double) * n);
    g_clear_pointer (&prev_picture, imageio_picture_free);
    prev_picture = g_steal_pointer (&picture);
  }
  *out = (VideoScores) {
    .dtssd = dtssd / s->frames->len, .sad = sad / s->frames->len,
    .mse = mse / s->frames->len, .moving_sad = n_moving ? moving_sad / n_moving : NAN,
    .flicker = flicker / (s->frames->len - 1),
  };
  return TRUE;
}

static void
print_row (GString *csv, const char *name, const VideoScores *v, gboolean truth)
{
  if (truth) {
    g_print ("%-12s %8.4f %10.4f %10.6f %10.4f %8.4f\n", name, v->dtssd, v->sad, v->mse,
             v->moving_sad, v->flicker);
    g_string_append_printf (csv, "%s,%.17g,%.17g,%.17g,%.17g,%.17g\n", name, v->dtssd, v->sad,
                            v->mse, v->moving_sad, v->flicker);
  } else {
    g_print ("%-12s %8.4f\n", name, v->flicker);
    g_string_append_printf (csv, "%s,%.17g\n", name, v->flicker);
  }
}

static gboolean
run (int argc, char **argv, GError **error)
{
  g_autoptr (GOptionContext) options = g_option_context_new ("SET | FRAMES...");
  g_autoptr (GPtrArray) sequences = NULL;
  g_autoptr (HfamModel) model = NULL;
  g_autoptr (HfamContext) ctx = NULL;
  g_autoptr (GString) csv = g_string_new (NULL);
  HfamOptions engine_options;
  HfamFrameParams params = { 0 };
  HfamEdgeParams edges;
  VideoScores sum = { 0 };
  gboolean truth;

  g_option_context_set_summary (options,
    "Scores mattes over time, each frame matted in order through libhfam's temporal path.\n"
    "SET: a folder of model/python/videoset/make_videoset.py (manifest.json): dtSSD, SAD, MSE,\n"
    "SAD over the moving frames and flicker per sequence. FRAMES: folders of a clip's frames\n"
    "(PNG or JPEG, in name order): flicker, the matte's change where the picture is still.");
  g_option_context_add_main_entries (options, entries, NULL);
  options_add_engine (options, &engine);
  if (!g_option_context_parse (options, &argc, &argv, error))
    return FALSE;
  if (interval < 1) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "--interval %d: want 1 or more",
                 interval);
    return FALSE;
  }
  if (argc < 2 || (default_model && model_path) || (!default_model && !model_path)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "usage: hfam-video-eval (--model M | --default-model) SET | FRAMES... "
                 "(see --help)");
    return FALSE;
  }
  if (default_model)
    model_path = g_strdup (hfam_default_model_path ());
  if (!options_parse_engine (&engine, NULL, NULL, &params, &engine_options, &edges, error)
      || !parse_temporal (temporal_text, &params, error))
    return FALSE;

  g_autofree char *manifest = g_build_filename (argv[1], "manifest.json", NULL);
  truth = argc == 2 && g_file_test (manifest, G_FILE_TEST_EXISTS);
  if (truth) {
    if (!(sequences = manifest_sequences (argv[1], manifest, error)))
      return FALSE;
  } else {
    sequences = g_ptr_array_new_with_free_func (sequence_free);
    for (int i = 1; i < argc; i++) {
      Sequence *s = clip_sequence (argv[i], error);
      if (!s)
        return FALSE;
      g_ptr_array_add (sequences, s);
    }
  }
  if (!(model = hfam_model_load (model_path, error)))
    return FALSE;
  if (!(ctx = hfam_context_new (model, &engine_options, NULL, error))
      || !hfam_context_set_edges (ctx, &edges, error))
    return FALSE;

  g_print ("# hfam-video-eval: %u sequence(s) in %s%s; %s on %s, inference long side %d; "
           "pixel aspect %g; islands %g; letterbox %s; temporal %s %g; refinement %s; the "
           "network on one frame in %d; mattes quantised to 8 bits\n", sequences->len,
           argv[1], argc > 2 ? " ..." : "", hfam_model_path (model),
           hfam_context_backend_name (ctx),
           params.long_side > 0 ? params.long_side : hfam_model_inference_size (model),
           params.pixel_aspect > 0.0f ? params.pixel_aspect : 1.0f, params.islands,
           params.letterbox ? "on" : "off",
           params.smoothing == 0.0f ? "none" : methods[params.temporal], params.smoothing,
           edges.refine == HFAM_REFINE_GUIDED ? "guided" : "none", interval);
  g_print ("# flicker: mean |a_t - a_t-1| in 8-bit levels where no colour channel changed by "
           "more than %d levels\n", FLICKER_STILL_LEVELS);
  if (truth) {
    g_print ("# dtSSD: RVM's, frame 0 counting 0; SAD / 1000 and MSE per frame, their means; "
             "moving SAD: over the frames marked moving\n");
    g_print ("%-12s %8s %10s %10s %10s %8s\n", "sequence", "dtSSD", "SAD", "MSE", "movingSAD",
             "flicker");
    g_string_append (csv, "sequence,dtssd,sad,mse,moving_sad,flicker\n");
  } else {
    g_print ("%-12s %8s\n", "clip", "flicker");
    g_string_append (csv, "clip,flicker\n");
  }
  for (guint i = 0; i < sequences->len; i++) {
    const Sequence *s = sequences->pdata[i];
    VideoScores v;
    if (!score_sequence (ctx, s, &params, &v, error))
      return FALSE;
    print_row (csv, s->name, &v, truth);
    sum.dtssd += v.dtssd;
    sum.sad += v.sad;
    sum.mse += v.mse;
    sum.moving_sad += v.moving_sad;
    sum.flicker += v.flicker;
  }
  const double n = sequences->len;
  const VideoScores mean = { sum.dtssd / n, sum.sad / n, sum.mse / n, sum.moving_sad / n,
                             sum.flicker / n };
  print_row (csv, "mean", &mean, truth);
  return !csv_path || g_file_set_contents (csv_path, csv->str, csv->len, error);
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;

  if (!run (argc, argv, &error)) {
    g_printerr ("hfam-video-eval: %s\n", error->message);
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
