/* hfam-eval: SAD, MSE, Grad and Conn (defined in matte-metrics.h) of predicted mattes
 * against ground truth, per image and their mean. With --model the predictions come from
 * the engine run on a folder of pictures. Files pair up by stem, the name without its
 * extension; every file must find its partner, so that a mean is never over a subset. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include <hfam/hfam.h>
#include "imageio.h"
#include "matte-picture.h"
#include "matte-metrics.h"
#include "matte-read.h"
#include "options.h"

#define PROGRESS_BAR_WIDTH 30

static char *model_path, *save_dir, *csv_path;
static OptionsEngine engine;
static HfamFrameParams frame_params;
static gboolean force_progress, default_model;

static const GOptionEntry entries[] = {
  { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model_path,
    "Run this weight file (safetensors) on the pictures of the first folder", "M" },
  { "default-model", 'd', 0, G_OPTION_ARG_NONE, &default_model,
    "Run the default model (as --model)", NULL },
  { "save", 0, 0, G_OPTION_ARG_FILENAME, &save_dir,
    "Write the predicted mattes there as gray PNG files (with --model)", "DIR" },
  { "csv", 0, 0, G_OPTION_ARG_FILENAME, &csv_path,
    "Write the table as CSV too, the mean in the last row", "FILE" },
  { "progress", 0, 0, G_OPTION_ARG_NONE, &force_progress,
    "Report progress on stderr even when it is not a terminal", NULL },
  G_OPTION_ENTRY_NULL
};

/* One prediction (a matte, or with --model a picture) and its ground truth. */
typedef struct {
  char *stem;
  char *input;
  char *truth;
} Pair;

static void
pair_free (gpointer data)
{
  Pair *pair = data;

  g_free (pair->stem);
  g_free (pair->input);
  g_free (pair->truth);
  g_free (pair);
}

typedef enum {
  KIND_PNG = 1 << 0,
  KIND_JPEG = 1 << 1,
} FileKinds;

static FileKinds
file_kind (const char *extension)
{
  g_autofree char *lower = g_ascii_strdown (extension, -1);

  if (strcmp (lower, "png") == 0)
    return KIND_PNG;
  if (strcmp (lower, "jpg") == 0 || strcmp (lower, "jpeg") == 0)
    return KIND_JPEG;
  return 0;
}

/* stem -> path of the files of `dir` of the given kinds; other files are ignored. */
static GHashTable *
list_folder (const char *dir, FileKinds kinds, GError **error)
{
  g_autoptr (GDir) folder = g_dir_open (dir, 0, error);
  g_autoptr (GHashTable) files = NULL;
  const char *name;

  if (!folder)
    return NULL;
  files = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  while ((name = g_dir_read_name (folder))) {
    const char *dot = strrchr (name, '.');
    if (!dot || dot == name || !(file_kind (dot + 1) & kinds))
      continue;

    g_autofree char *stem = g_strndup (name, dot - name);
    g_autofree char *path = g_build_filename (dir, name, NULL);
    const char *other = g_hash_table_lookup (files, stem);
    if (other) {
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                   "%s and %s have the same name without extension: which one is meant?",
                   other, path);
      return NULL;
    }
    g_hash_table_insert (files, g_steal_pointer (&stem), g_steal_pointer (&path));
  }
  if (g_hash_table_size (files) == 0) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "%s: no %s file", dir,
                 kinds == KIND_PNG ? "PNG" : kinds == KIND_JPEG ? "JPEG" : "PNG or JPEG");
    return NULL;
  }
  return g_steal_pointer (&files);
}

static int
compare_strings (const void *a, const void *b)
{
  return strcmp (*(const char *const *) a, *(const char *const *) b);
}

/* The keys of `table` in strcmp order, for a stable table and a stable first error. */
static const char **
sorted_keys (GHashTable *table)
{
  guint n;
  const char **keys = (const char **) g_hash_table_get_keys_as_array (table, &n);

  qsort (keys, n, sizeof *keys, compare_strings);
  return keys;
}

/* Whether two paths name one folder (however spelled); FALSE when either does not exist. */
static gboolean
same_folder (const char *a, const char *b)
{
  GStatBuf sa, sb;

  return g_stat (a, &sa) == 0 && g_stat (b, &sb) == 0 && sa.st_dev == sb.st_dev
         && sa.st_ino == sb.st_ino;
}

/* The pairs in stem order. With --model, pictures and ground truth may share a folder
 * (data/portrait-dev's layout): the JPEG files are the pictures, the PNG files the mattes. */
static GPtrArray *
pair_files (const char *input_dir, const char *truth_dir, GError **error)
{
  gboolean one_folder = same_folder (input_dir, truth_dir);
  g_autoptr (GHashTable) inputs = NULL, truths = NULL;
  g_autoptr (GPtrArray) pairs = g_ptr_array_new_with_free_func (pair_free);

  if (one_folder && !model_path) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "%s and %s are one folder: predictions and ground truth must be apart",
                 input_dir, truth_dir);
    return NULL;
  }
  inputs = list_folder (input_dir, one_folder ? KIND_JPEG : KIND_PNG | KIND_JPEG, error);
  if (!inputs)
    return NULL;
  truths = list_folder (truth_dir, one_folder ? KIND_PNG : KIND_PNG | KIND_JPEG, error);
  if (!truths)
    return NULL;

  g_autofree const char **input_stems = sorted_keys (inputs);
  for (const char **stem = input_stems; *stem; stem++) {
    const char *truth = g_hash_table_lookup (truths, *stem);
    if (!truth) {
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                   "%s: no ground truth named %s.png or %s.jpg in %s",
                   (char *) g_hash_table_lookup (inputs, *stem), *stem, *stem, truth_dir);
      return NULL;
    }
    Pair *pair = g_new (Pair, 1);
    pair->stem = g_strdup (*stem);
    pair->input = g_strdup (g_hash_table_lookup (inputs, *stem));
    pair->truth = g_strdup (truth);
    g_ptr_array_add (pairs, pair);
  }

  g_autofree const char **truth_stems = sorted_keys (truths);
  for (const char **stem = truth_stems; *stem; stem++)
    if (!g_hash_table_contains (inputs, *stem)) {
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                   "%s: no %s named %s in %s", (char *) g_hash_table_lookup (truths, *stem),
                   model_path ? "picture" : "prediction", *stem, input_dir);
      return NULL;
    }
  return g_steal_pointer (&pairs);
}

static guint8
to_byte (float alpha)
{
  return (guint8) lrintf (CLAMP (alpha, 0.0f, 1.0f) * 255.0f);
}

/* The engine's matte of a picture, quantised to 8 bits as hfam-matte writes it, so that a
 * saved folder scores exactly as the run that wrote it. */
static Matte *
predict (HfamContext *ctx, const Pair *pair, GError **error)
{
  g_autoptr (ImageioPicture) picture = imageio_read (pair->input, error);

  if (!picture)
    return NULL;
  gsize n = (gsize) picture->width * picture->height;
  g_autofree float *alpha = matte_picture (ctx, picture, &frame_params, error);
  if (!alpha)
    return NULL;

  g_autofree guint8 *bytes = g_new (guint8, n);
  for (gsize i = 0; i < n; i++)
    bytes[i] = to_byte (alpha[i]);
  if (save_dir) {
    g_autofree char *name = g_strconcat (pair->stem, ".png", NULL);
    g_autofree char *path = g_build_filename (save_dir, name, NULL);
    if (!imageio_write_png (path, bytes, picture->width, picture->height, picture->width, 1,
                            error))
      return NULL;
  }

  Matte *matte = matte_new (picture->width, picture->height);
  for (gsize i = 0; i < n; i++)
    matte->alpha[i] = bytes[i] / 255.0;
  return matte;
}

/* ctx: NULL when the inputs are predicted mattes. */
static gboolean
score_pair (HfamContext *ctx, const Pair *pair, MatteScores *scores, GError **error)
{
  g_autoptr (Matte) prediction = ctx ? predict (ctx, pair, error)
                                     : matte_read (pair->input, error);
  g_autoptr (Matte) truth = NULL;

  if (!prediction)
    return FALSE;
  truth = matte_read (pair->truth, error);
  if (!truth)
    return FALSE;
  if (prediction->width != truth->width || prediction->height != truth->height) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "%s is %dx%d but its ground truth %s is %dx%d", pair->input,
                 prediction->width, prediction->height, pair->truth, truth->width,
                 truth->height);
    return FALSE;
  }
  matte_score (prediction->alpha, truth->alpha, truth->width, truth->height, scores);
  return TRUE;
}

/* A bar redrawn in place on a terminal; one line per image elsewhere (--progress). */
typedef struct {
  gboolean shown, on_terminal;
  guint total;
} Progress;

static void
progress_show (const Progress *progress, guint done, const char *stem)
{
  char bar[PROGRESS_BAR_WIDTH + 1];
  int filled = done * PROGRESS_BAR_WIDTH / progress->total;

  if (!progress->shown)
    return;
  if (progress->on_terminal) {
    memset (bar, '#', filled);
    memset (bar + filled, ' ', PROGRESS_BAR_WIDTH - filled);
    bar[PROGRESS_BAR_WIDTH] = '\0';
    g_printerr ("\r\033[K[%s] %u/%u %s", bar, done + 1, progress->total, stem);
  } else {
    g_printerr ("%u/%u %s\n", done + 1, progress->total, stem);
  }
}

/* Before anything else is printed to the terminal. */
static void
progress_clear (const Progress *progress)
{
  if (progress->shown && progress->on_terminal)
    g_printerr ("\r\033[K");
}

static void
print_conventions (GPtrArray *pairs, const char *input_dir, const char *truth_dir,
                   HfamContext *ctx, const HfamModel *model, const HfamEdgeParams *edges)
{
  g_print ("# hfam-eval: %u %s in %s against the ground truth in %s\n", pairs->len,
           ctx ? "pictures" : "predictions", input_dir, truth_dir);
  if (ctx) {
    g_print ("# predictions: %s on %s, inference long side %d, pixel aspect %g, islands %g, "
             "letterbox %s, quantised to 8 bits\n", hfam_model_path (model),
             hfam_context_backend_name (ctx),
             frame_params.long_side > 0 ? frame_params.long_side
                                        : hfam_model_inference_size (model),
             frame_params.pixel_aspect > 0.0f ? frame_params.pixel_aspect : 1.0f,
             frame_params.islands, frame_params.letterbox ? "on" : "off");
    if (edges->refine == HFAM_REFINE_GUIDED)
      g_print ("# refinement: guided filter, radius %d, eps %g\n", edges->refine_radius,
               edges->refine_eps);
    else
      g_print ("# refinement: none\n");
  }
  g_print ("# whole image (no trimap); alphas in [0, 1]: 8-bit v / 255, 16-bit v / 65535\n"
           "# SAD  = sum |p - g| / 1000\n"
           "# MSE  = mean (p - g)^2\n"
           "# Grad = sum (|grad p| - |grad g|)^2 / 1000; grad: DIM's gaussgradient, sigma %g, "
           "9x9 kernel of unit L2 norm, borders replicated; alphas not min-max stretched\n"
           "# Conn = sum |phi(p) - phi(g)| / 1000 (DIM): thresholds 0.1 to 1 step 0.1, "
           "largest 4-connected region of p, g >= t, phi(a) = 1 - (a - l) when a - l >= %g\n",
           MATTE_GRAD_SIGMA, MATTE_CONN_PHI_CUT);
}

static void
print_row (int name_width, const char *name, const MatteScores *s)
{
  g_print ("%-*s %10.4f %10.6f %10.4f %10.4f\n", name_width, name, s->sad, s->mse, s->grad,
           s->conn);
  fflush (stdout);
}

/* RFC 4180: a field with a comma, a quote or a line break is quoted, quotes doubled. */
static void
csv_append_row (GString *csv, const char *name, const MatteScores *s)
{
  if (strpbrk (name, ",\"\r\n")) {
    g_auto (GStrv) parts = g_strsplit (name, "\"", -1);
    g_autofree char *escaped = g_strjoinv ("\"\"", parts);
    g_string_append_printf (csv, "\"%s\"", escaped);
  } else {
    g_string_append (csv, name);
  }
  g_string_append_printf (csv, ",%.17g,%.17g,%.17g,%.17g\n", s->sad, s->mse, s->grad,
                          s->conn);
}

/* Scores every pair, printing the table as it goes; ctx NULL: the inputs are mattes. */
static gboolean
evaluate (GPtrArray *pairs, HfamContext *ctx, GString *csv, GError **error)
{
  Progress progress = {
    .shown = force_progress || isatty (STDERR_FILENO),
    .on_terminal = isatty (STDERR_FILENO),
    .total = pairs->len,
  };
  MatteScores sum = { 0 }, mean;
  int name_width = strlen ("image");

  for (guint i = 0; i < pairs->len; i++)
    name_width = MAX (name_width, (int) strlen (((Pair *) pairs->pdata[i])->stem));
  g_print ("%-*s %10s %10s %10s %10s\n", name_width, "image", "SAD", "MSE", "Grad", "Conn");

  for (guint i = 0; i < pairs->len; i++) {
    const Pair *pair = pairs->pdata[i];
    MatteScores scores;

    progress_show (&progress, i, pair->stem);
    if (!score_pair (ctx, pair, &scores, error)) {
      progress_clear (&progress);
      return FALSE;
    }
    progress_clear (&progress);
    print_row (name_width, pair->stem, &scores);
    csv_append_row (csv, pair->stem, &scores);
    sum.sad += scores.sad;
    sum.mse += scores.mse;
    sum.grad += scores.grad;
    sum.conn += scores.conn;
  }

  mean.sad = sum.sad / pairs->len;
  mean.mse = sum.mse / pairs->len;
  mean.grad = sum.grad / pairs->len;
  mean.conn = sum.conn / pairs->len;
  print_row (name_width, "mean", &mean);
  csv_append_row (csv, "mean", &mean);
  return TRUE;
}

/* The save folder, created; it may be neither input folder, whose files it would replace. */
static gboolean
prepare_save_dir (const char *input_dir, const char *truth_dir, GError **error)
{
  if (g_mkdir_with_parents (save_dir, 0777) != 0) {
    int saved_errno = errno;
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_IO, "%s: %s", save_dir,
                 g_strerror (saved_errno));
    return FALSE;
  }
  if (same_folder (save_dir, input_dir) || same_folder (save_dir, truth_dir)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "--save %s: the predictions would replace the input or ground truth files",
                 save_dir);
    return FALSE;
  }
  return TRUE;
}

static gboolean
run (int argc, char **argv, GError **error)
{
  g_autoptr (GOptionContext) options = g_option_context_new ("PREDICTIONS GROUND_TRUTH");
  g_autoptr (GPtrArray) pairs = NULL;
  g_autoptr (HfamModel) model = NULL;
  g_autoptr (HfamContext) ctx = NULL;
  g_autoptr (GString) csv = g_string_new ("image,sad,mse,grad,conn\n");
  HfamOptions engine_options;
  HfamEdgeParams edges;

  g_option_context_set_summary (options,
    "Scores predicted alpha mattes against ground truth (SAD, MSE, Grad, Conn), per image\n"
    "and their mean. PREDICTIONS and GROUND_TRUTH are folders of PNG or JPEG files that pair\n"
    "up by name without extension. With --model M, the first folder holds pictures that the\n"
    "engine mattes first:  hfam-eval --model M PICTURES GROUND_TRUTH");
  g_option_context_add_main_entries (options, entries, NULL);
  options_add_engine (options, &engine);
  if (!g_option_context_parse (options, &argc, &argv, error))
    return FALSE;
  if (argc != 3) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "usage: hfam-eval [--model M | --default-model] PREDICTIONS GROUND_TRUTH "
                 "(see --help)");
    return FALSE;
  }
  if (default_model && model_path) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "--model and --default-model exclude each other");
    return FALSE;
  }
  if (default_model)
    model_path = g_strdup (hfam_default_model_path ());
  if (!model_path && (save_dir || options_engine_given (&engine))) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "--save, --size, --threads, --backend, --memory-budget and --refine go with "
                 "--model");
    return FALSE;
  }
  if (!options_parse_engine (&engine, NULL, NULL, &frame_params, &engine_options, &edges, error))
    return FALSE;

  pairs = pair_files (argv[1], argv[2], error);
  if (!pairs)
    return FALSE;
  if (save_dir && !prepare_save_dir (argv[1], argv[2], error))
    return FALSE;
  if (model_path) {
    model = hfam_model_load (model_path, error);
    if (!model)
      return FALSE;
    ctx = hfam_context_new (model, &engine_options, NULL, error);
    if (!ctx || !hfam_context_set_edges (ctx, &edges, error))
      return FALSE;
  }

  print_conventions (pairs, argv[1], argv[2], ctx, model, &edges);
  if (!evaluate (pairs, ctx, csv, error))
    return FALSE;
  return !csv_path || g_file_set_contents (csv_path, csv->str, csv->len, error);
}

int
main (int argc, char **argv)
{
  g_autoptr (GError) error = NULL;

  if (!run (argc, argv, &error)) {
    g_printerr ("hfam-eval: %s\n", error->message);
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}
