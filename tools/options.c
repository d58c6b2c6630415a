#include "options.h"

#include <string.h>

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
options_parse_islands (const char *text, float *islands, GError **error)
{
  char *end;

  *islands = HFAM_ISLANDS_DEFAULT;
  if (!text)
    return TRUE;
  const double share = g_ascii_strtod (text, &end);
  /* (written so that NaN fails too) */
  if (end == text || *end || !(share >= 0.0 && share <= 1.0)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "--islands %s: want a share from 0 to 1",
                 text);
    return FALSE;
  }
  *islands = (float) share;
  return TRUE;
}

gboolean
options_parse_letterbox (const char *text, gboolean *letterbox, GError **error)
{
  *letterbox = !text || g_str_equal (text, "on");
  if (text && !*letterbox && !g_str_equal (text, "off")) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "--letterbox %s: want on or off", text);
    return FALSE;
  }
  return TRUE;
}

gboolean
options_parse_pixel_aspect (const char *text, float *pixel_aspect, GError **error)
{
  guint64 n, d;
  char **parts;
  gboolean ok;

  *pixel_aspect = 0.0f;
  if (!text)
    return TRUE;
  parts = g_strsplit (text, ":", 3);
  ok = g_strv_length (parts) == 2
       && g_ascii_string_to_unsigned (parts[0], 10, 1, G_MAXINT, &n, NULL)
       && g_ascii_string_to_unsigned (parts[1], 10, 1, G_MAXINT, &d, NULL)
       && (double) n / d >= HFAM_MIN_PIXEL_ASPECT && (double) n / d <= HFAM_MAX_PIXEL_ASPECT;
  g_strfreev (parts);
  if (!ok) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "--pixel-aspect %s: want N:D, whole numbers whose ratio is %g to %g", text,
                 HFAM_MIN_PIXEL_ASPECT, HFAM_MAX_PIXEL_ASPECT);
    return FALSE;
  }
  *pixel_aspect = (float) ((double) n / d);
  return TRUE;
}

/* none, guided, or guided:RADIUS,EPS for the filter's window radius and regulariser. */
static gboolean
parse_refine (const char *text, HfamEdgeParams *edges)
{
  const char *colon = strchr (text, ':');
  char *end;

  if (g_str_equal (text, "none")) {
    edges->refine = HFAM_REFINE_NONE;
    return TRUE;
  }
  if (colon ? colon - text != 6 || strncmp (text, "guided", 6) != 0
            : !g_str_equal (text, "guided"))
    return FALSE;
  if (!colon)
    return TRUE;
  gint64 radius = g_ascii_strtoll (colon + 1, &end, 10);
  if (end == colon + 1 || *end != ',' || radius < 1 || radius > 64)
    return FALSE;
  const char *eps_text = end + 1;
  double eps = g_ascii_strtod (eps_text, &end);
  /* (written so that NaN fails too) */
  if (end == eps_text || *end || !(eps > 0.0 && eps <= 1.0))
    return FALSE;
  edges->refine_radius = (int) radius;
  edges->refine_eps = (float) eps;
  return TRUE;
}

gboolean
options_parse_edges (const char *refine, const char *fill, const char *key_levels,
                     HfamEdgeParams *edges, GError **error)
{
  g_auto (GStrv) levels = NULL;
  char *end;

  hfam_edge_params_init (edges);
  /* as the element: refined unless asked not to */
  edges->refine = HFAM_REFINE_GUIDED;
  if (refine && !parse_refine (refine, edges)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "--refine %s: want none, guided or guided:RADIUS,EPS (radius 1 to 64, "
                 "0 < eps <= 1)", refine);
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

void
options_add_engine (GOptionContext *context, OptionsEngine *engine)
{
  const GOptionEntry entries[] = {
    { "size", 's', 0, G_OPTION_ARG_STRING, &engine->size_text,
      "Long side of the inference size, 32 to 8192 (default: the model's)", "N" },
    { "memory-budget", 0, 0, G_OPTION_ARG_STRING, &engine->budget_text,
      "Host memory the engine may commit, in MiB (default: half the memory, at most 8 GiB)",
      "MIB" },
    { "threads", 't', 0, G_OPTION_ARG_INT, &engine->n_threads,
      "CPU threads (default: one per core)", "N" },
    { "backend", 'b', 0, G_OPTION_ARG_STRING, &engine->backend_name,
      "auto (default), cpu or cuda", "NAME" },
    { "precision", 0, 0, G_OPTION_ARG_STRING, &engine->precision_name,
      "default (fp16 on CUDA; on the CPU int8 with VNNI for a model with activation ranges "
      "and bf16 for the rest with AVX512-BF16, else fp32), fp32, fp16 (CUDA), int8, bf16 or "
      "int8-bf16 (CPU)", "NAME" },
    { "refine", 0, 0, G_OPTION_ARG_STRING, &engine->refine_text,
      "Matte refinement at the picture's size: guided (the default, as the element), "
      "guided:RADIUS,EPS (window radius at the inference size, regulariser), or none",
      "HOW" },
    { "islands", 0, 0, G_OPTION_ARG_STRING, &engine->islands_text,
      "Drop the matte's regions whose alpha sums to less than this share of the largest "
      "region's, 0 to 1 (default 0.05, as the element; 0: keep all)", "S" },
    { "letterbox", 0, 0, G_OPTION_ARG_STRING, &engine->letterbox_text,
      "on (the default, as the element): the matte is 0 over black bars along the picture's "
      "edges; off: as the network made it there", "on|off" },
    { "pixel-aspect", 0, 0, G_OPTION_ARG_STRING, &engine->pixel_aspect_text,
      "The pictures' pixel aspect ratio, as a video's caps give it (1440x1080 HDV: 4:3); the "
      "network sees them as shown (default 1:1, square)", "N:D" },
    G_OPTION_ENTRY_NULL
  };

  /* (GLib copies the entries) */
  g_option_context_add_main_entries (context, entries, NULL);
}

gboolean
options_engine_given (const OptionsEngine *engine)
{
  return engine->size_text || engine->budget_text || engine->backend_name
         || engine->precision_name || engine->refine_text || engine->islands_text
         || engine->letterbox_text || engine->pixel_aspect_text || engine->n_threads;
}

gboolean
options_parse_engine (const OptionsEngine *engine, const char *fill, const char *key_levels,
                      HfamFrameParams *frame, HfamOptions *options, HfamEdgeParams *edges,
                      GError **error)
{
  *options = (HfamOptions) { .backend = HFAM_BACKEND_AUTO, .n_threads = engine->n_threads };
  return (!engine->backend_name
          || hfam_backend_kind_parse (engine->backend_name, &options->backend, error))
         && (!engine->precision_name
             || hfam_precision_parse (engine->precision_name, &options->precision, error))
         && options_parse_size (engine->size_text, &frame->long_side, error)
         && options_parse_islands (engine->islands_text, &frame->islands, error)
         && options_parse_letterbox (engine->letterbox_text, &frame->letterbox, error)
         && options_parse_pixel_aspect (engine->pixel_aspect_text, &frame->pixel_aspect, error)
         && options_parse_memory_budget (engine->budget_text, &options->memory_budget, error)
         && options_parse_edges (engine->refine_text, fill, key_levels, edges, error);
}
