#include "options.h"

static gboolean
parse_bounded (const char *option, const char *text, guint64 min, guint64 max, const char *unit,
               guint64 *value, GError **error)
{
  if (g_ascii_string_to_unsigned (text, 10, min, max, value, NULL))
    return TRUE;
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
               "%s %s: want a whole number of %s from %" G_GUINT64_FORMAT " to %"
               G_GUINT64_FORMAT, option, text, unit, min, max);
  return FALSE;
}

gboolean
options_parse_size (const char *text, int *long_side, GError **error)
{
  guint64 value = 0;

  if (text && !parse_bounded ("--size", text, 32, HFAM_MAX_LONG_SIDE, "pixels", &value, error))
    return FALSE;
  *long_side = (int) value;
  return TRUE;
}

gboolean
options_parse_memory_budget (const char *text, guint64 *bytes, GError **error)
{
  guint64 mib = 0;

  if (text && !parse_bounded ("--memory-budget", text, 1, OPTIONS_MAX_MEMORY_BUDGET_MIB, "MiB",
                              &mib, error))
    return FALSE;
  *bytes = mib << 20;
  return TRUE;
}

gboolean
options_parse_edges (const char *refine, const char *fill, const char *key_levels,
                     HfamEdgeParams *edges, GError **error)
{
  g_auto (GStrv) levels = NULL;
  char *end;

  hfam_edge_params_init (edges);
  if (refine && g_str_equal (refine, "guided"))
    edges->refine = HFAM_REFINE_GUIDED;
  else if (refine && !g_str_equal (refine, "none")) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "--refine %s: want none or guided",
                 refine);
    return FALSE;
  }
  if (fill && g_str_equal (fill, "foreground"))
    edges->fill = HFAM_FILL_FOREGROUND;
  else if (fill && !g_str_equal (fill, "frame")) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "--fill %s: want frame or foreground",
                 fill);
    return FALSE;
  }
  if (!key_levels)
    return TRUE;
  levels = g_strsplit (key_levels, ",", -1);
  if (g_strv_length (levels) == 2) {
    edges->key_black = (float) g_ascii_strtod (levels[0], &end);
    if (*levels[0] && !*end) {
      edges->key_white = (float) g_ascii_strtod (levels[1], &end);
      /* (written so that NaN fails too) */
      if (*levels[1] && !*end && edges->key_black >= 0.0f
          && edges->key_black < edges->key_white && edges->key_white <= 1.0f)
        return TRUE;
    }
  }
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
               "--key-levels %s: want BLACK,WHITE with 0 <= BLACK < WHITE <= 1", key_levels);
  return FALSE;
}
