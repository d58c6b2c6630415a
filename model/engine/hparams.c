/* Hyper-parameters from __metadata__: every key of model/README.md's table is required. */
#include "hparams.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Widths beyond this are not a network but a corrupt file; the cap also keeps products
 * like width * 8 * 4 far from int overflow in the graph builder. (What widths cost is bounded
 * by the file too: every weight they imply must be in it.) */
#define MAX_WIDTH 65536
/* The element's inference-size property goes no further; the default model runs at 512. */
#define MAX_INFERENCE_SIZE 4096

/* Dilations cost no weight, only memory (the CPU backend pads a dilated convolution's input
 * by the dilation on every side), so the file alone would bound nothing: they are bounded by
 * what the network can use. A 3x3 convolution of dilation d reads its centre and the pixels d
 * away; on a map whose long side is S, d >= S reads only zero padding beside the centre. So
 * every dilation must be below the long side of the map it applies to at the size the model
 * is made for: its inference_size, and at least the 512 HFAM is trained at (HFAM.md, 6), so
 * that a small default size does not refuse the paper's rates. MFEM works at f2, f3, f4 (H/8,
 * H/16, H/32), L-BB at H/2: at 512, dilations below 64, 32, 16 and 256. */
#define TRAINING_SIZE 512
#define MFEM_FIRST_DIV 8
#define LBB_DIV 2

static const char *
lookup (const HfamSafetensors *st, const char *key, GError **error)
{
  const char *text = hfam_st_metadata (st, key);
  if (text == NULL)
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                 "%s: hyper-parameter '%s' is missing from __metadata__", hfam_st_path (st),
                 key);
  return text;
}

static gboolean
parse_int (const char *text, int min, int max, int *value)
{
  gint64 v;
  if (!g_ascii_string_to_signed (text, 10, min, max, &v, NULL))
    return FALSE;
  *value = (int) v;
  return TRUE;
}

static gboolean
parse_float (const char *text, float *value)
{
  char *end;
  errno = 0;
  double v = g_ascii_strtod (text, &end);
  if (end == text || *end != '\0' || errno != 0 || !isfinite ((float) v))
    return FALSE;
  *value = (float) v;
  return TRUE;
}

/* Splits a comma list, trimming blanks around items; NULL (and an error) unless it has
 * exactly `n` items. A single value is not split, so that "" or "1,2" read as one bad value. */
static char **
split_list (const HfamSafetensors *st, const char *key, const char *text, guint n,
            GError **error)
{
  g_auto (GStrv) items = NULL;
  if (n == 1) {
    items = g_new0 (char *, 2);
    items[0] = g_strdup (text);
  } else {
    items = g_strsplit (text, ",", -1);
  }
  guint n_items = g_strv_length (items);
  if (n_items != n) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                 "%s: hyper-parameter '%s' is '%s': %u values, expected %u separated by commas",
                 hfam_st_path (st), key, text, n_items, n);
    return NULL;
  }
  for (guint i = 0; i < n; i++)
    g_strstrip (items[i]);
  return g_steal_pointer (&items);
}

/* `what`: "an integer in 1..64", "a finite number"... */
static void
set_item_error (const HfamSafetensors *st, const char *key, const char *text, guint n, guint i,
                const char *item, const char *what, GError **error)
{
  if (n == 1)
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                 "%s: hyper-parameter '%s' is '%s', expected %s", hfam_st_path (st), key, text,
                 what);
  else
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                 "%s: hyper-parameter '%s' is '%s': value %u ('%s') is not %s",
                 hfam_st_path (st), key, text, i + 1, item, what);
}

/* Reads a list of `n` ints in [min, max] (n = 1 for a single int). */
static gboolean
read_ints (const HfamSafetensors *st, const char *key, guint n, int min, int max, int *values,
           GError **error)
{
  const char *text = lookup (st, key, error);
  if (text == NULL)
    return FALSE;
  g_auto (GStrv) items = split_list (st, key, text, n, error);
  if (items == NULL)
    return FALSE;
  for (guint i = 0; i < n; i++) {
    if (!parse_int (items[i], min, max, &values[i])) {
      g_autofree char *what = g_strdup_printf ("an integer in %d..%d", min, max);
      set_item_error (st, key, text, n, i, items[i], what, error);
      return FALSE;
    }
  }
  return TRUE;
}

static gboolean
read_int (const HfamSafetensors *st, const char *key, int min, int max, int *value,
          GError **error)
{
  return read_ints (st, key, 1, min, max, value, error);
}

/* Reads `n` finite floats; `nonzero` also refuses 0. */
static gboolean
read_floats (const HfamSafetensors *st, const char *key, guint n, gboolean nonzero,
             float *values, GError **error)
{
  const char *text = lookup (st, key, error);
  if (text == NULL)
    return FALSE;
  g_auto (GStrv) items = split_list (st, key, text, n, error);
  if (items == NULL)
    return FALSE;
  for (guint i = 0; i < n; i++) {
    if (!parse_float (items[i], &values[i]) || (nonzero && values[i] == 0.0f)) {
      set_item_error (st, key, text, n, i, items[i],
                      nonzero ? "a finite non-zero number" : "a finite number", error);
      return FALSE;
    }
  }
  return TRUE;
}

/* Reads a key whose value must be one of `choices`; returns its index. */
static gboolean
read_choice (const HfamSafetensors *st, const char *key, const char *const *choices,
             int *index, GError **error)
{
  const char *text = lookup (st, key, error);
  if (text == NULL)
    return FALSE;
  for (int i = 0; choices[i] != NULL; i++) {
    if (strcmp (text, choices[i]) == 0) {
      *index = i;
      return TRUE;
    }
  }
  g_autofree char *expected = g_strjoinv ("' or '", (char **) choices);
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
               "%s: hyper-parameter '%s' is '%s', expected '%s'", hfam_st_path (st), key, text,
               expected);
  return FALSE;
}

static gboolean
read_bool (const HfamSafetensors *st, const char *key, gboolean *value, GError **error)
{
  static const char *const choices[] = { "false", "true", NULL };
  int index;
  if (!read_choice (st, key, choices, &index, error))
    return FALSE;
  *value = index == 1;
  return TRUE;
}

static gboolean
fail_value (const HfamSafetensors *st, const char *key, const char *expected, GError **error)
{
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT, "%s: hyper-parameter '%s' is '%s', %s",
               hfam_st_path (st), key, hfam_st_metadata (st, key), expected);
  return FALSE;
}

/* The long side of a map at 1/div of the size the model is made for: the largest useful
 * dilation + 1. */
static int
map_side (const HfamHparams *hp, int div)
{
  return MAX (hp->inference_size, TRAINING_SIZE) / div;
}

static gboolean
check_dilations (const HfamSafetensors *st, const HfamHparams *hp, GError **error)
{
  for (int level = 0; level < 3; level++) {
    const int div = MFEM_FIRST_DIV << level;
    for (int k = 0; k < 3; k++) {
      if (hp->mfem_rates[level][k] >= map_side (hp, div)) {
        g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                     "%s: hyper-parameter 'mfem_rates' is '%s': value %d (%d) is a dilation at "
                     "f%d (H/%d: %d pixels at a long side of %d), expected at most %d",
                     hfam_st_path (st), hfam_st_metadata (st, "mfem_rates"), 3 * level + k + 1,
                     hp->mfem_rates[level][k], level + 2, div, map_side (hp, div),
                     map_side (hp, 1), map_side (hp, div) - 1);
        return FALSE;
      }
    }
  }
  if (hp->lbb_dilation >= map_side (hp, LBB_DIV)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                 "%s: hyper-parameter 'lbb_dilation' is '%s', a dilation at H/%d (%d pixels at "
                 "a long side of %d), expected at most %d", hfam_st_path (st),
                 hfam_st_metadata (st, "lbb_dilation"), LBB_DIV, map_side (hp, LBB_DIV),
                 map_side (hp, 1), map_side (hp, LBB_DIV) - 1);
    return FALSE;
  }
  return TRUE;
}

/* What the preprocessing derives (kernels/frame.c, kernels/preprocess.cu): x = p * mul + add
 * with mul = input_scale / 255 / std, add = -mean / std, for p in 0..255. Finite inputs can
 * still overflow (a tiny std) or vanish (mul = 0 loses the picture). */
static gboolean
check_normalisation (const HfamSafetensors *st, const HfamHparams *hp, GError **error)
{
  for (int k = 0; k < 3; k++) {
    const float mul = hp->input_scale / 255.0f / hp->input_std[k];
    const float add = -hp->input_mean[k] / hp->input_std[k];
    if (!isfinite (mul) || mul == 0.0f || !isfinite (add) || !isfinite (255.0f * mul + add)) {
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                   "%s: hyper-parameters 'input_scale', 'input_mean' and 'input_std' give no "
                   "usable input: channel %d is normalised as p * %g + %g (p = 0..255), "
                   "expected finite values and a factor other than 0", hfam_st_path (st), k,
                   (double) mul, (double) add);
      return FALSE;
    }
  }
  return TRUE;
}

gboolean
hfam_hparams_read (const HfamSafetensors *st, HfamHparams *hp, GError **error)
{
  static const char *const format[] = { "hfam", NULL };
  static const char *const format_version[] = { "1", NULL };
  static const char *const depths[] = { "18", "34", "50", "101", NULL };
  static const char *const orders[] = { "RGB", "BGR", NULL };
  int index;

  HfamHparams r = { 0 };
  if (!read_choice (st, "format", format, &index, error) ||
      !read_choice (st, "format_version", format_version, &index, error))
    return FALSE;

  if (!read_choice (st, "encoder_depth", depths, &index, error))
    return FALSE;
  r.encoder_depth = atoi (depths[index]);

  if (!read_int (st, "encoder_width", 1, MAX_WIDTH, &r.encoder_width, error) ||
      !read_bool (st, "stride_in_1x1", &r.stride_in_1x1, error) ||
      !read_choice (st, "input_order", orders, &index, error))
    return FALSE;
  r.input_bgr = index == 1;

  if (!read_floats (st, "input_scale", 1, FALSE, &r.input_scale, error))
    return FALSE;
  if (r.input_scale <= 0.0f)
    return fail_value (st, "input_scale", "expected a number > 0", error);

  if (!read_floats (st, "input_mean", 3, FALSE, r.input_mean, error) ||
      !read_floats (st, "input_std", 3, TRUE, r.input_std, error) ||
      !read_int (st, "mfem_channels", 1, MAX_WIDTH, &r.mfem_channels, error) ||
      !read_ints (st, "mfem_rates", 9, 1, MAX_INFERENCE_SIZE, &r.mfem_rates[0][0], error) ||
      !read_int (st, "sk_width", 1, MAX_WIDTH, &r.sk_width, error) ||
      !read_ints (st, "context_widths", 5, 1, MAX_WIDTH, r.context_widths, error) ||
      !read_ints (st, "semantic_widths", 15, 1, MAX_WIDTH, &r.semantic_widths[0][0], error) ||
      !read_ints (st, "detail_widths", 15, 1, MAX_WIDTH, &r.detail_widths[0][0], error))
    return FALSE;
  if (r.semantic_widths[4][2] != 3)
    return fail_value (st, "semantic_widths",
                       "expected 3 as the last width (background, unknown, foreground)", error);
  if (r.detail_widths[4][2] != 1)
    return fail_value (st, "detail_widths", "expected 1 as the last width (alpha)", error);

  if (!read_int (st, "lbb_width", 1, MAX_WIDTH, &r.lbb_width, error) ||
      !read_int (st, "lbb_dilation", 1, MAX_INFERENCE_SIZE, &r.lbb_dilation, error) ||
      !read_int (st, "inference_size", 32, MAX_INFERENCE_SIZE, &r.inference_size, error))
    return FALSE;
  if (r.inference_size % 32 != 0)
    return fail_value (st, "inference_size", "expected a multiple of 32", error);
  if (!check_dilations (st, &r, error) || !check_normalisation (st, &r, error))
    return FALSE;

  *hp = r;
  return TRUE;
}

void
hfam_hparams_encoder_channels (const HfamHparams *hp, int channels[5])
{
  int expansion = hp->encoder_depth >= 50 ? 4 : 1; /* bottleneck vs basic blocks */
  channels[0] = hp->encoder_width;                 /* the stem */
  for (int i = 1; i < 5; i++)
    channels[i] = hp->encoder_width * (1 << (i - 1)) * expansion;
}

void
hfam_hparams_encoder_blocks (const HfamHparams *hp, int blocks[4])
{
  static const int resnet18[4] = { 2, 2, 2, 2 };
  static const int resnet34_50[4] = { 3, 4, 6, 3 };
  static const int resnet101[4] = { 3, 4, 23, 3 };
  const int *source;
  switch (hp->encoder_depth) {
    case 18: source = resnet18; break;
    case 34:
    case 50: source = resnet34_50; break;
    case 101: source = resnet101; break;
    default: g_assert_not_reached (); /* hfam_hparams_read() admits no other depth */
  }
  memcpy (blocks, source, sizeof resnet18);
}
