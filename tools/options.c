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
