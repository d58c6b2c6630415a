#include "proc-status.h"

#include <string.h>

gint64
proc_status_field (const char *status, const char *key)
{
  const char *line = strstr (status, key);
  return line ? g_ascii_strtoll (line + strlen (key), NULL, 10) : -1;
}

gint64
proc_status_now (const char *key)
{
  g_autofree char *status = NULL;

  if (!g_file_get_contents ("/proc/self/status", &status, NULL, NULL))
    return -1;
  return proc_status_field (status, key);
}
