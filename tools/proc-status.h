/* Numbers from /proc/self/status, for the benches' memory figures. */
#ifndef HFAM_TOOLS_PROC_STATUS_H
#define HFAM_TOOLS_PROC_STATUS_H

#include <glib.h>

/* The number after `key` ("\nVmRSS:", "\nVmHWM:" in kB; "Threads:") in `status`, the file's
 * text; -1 where it is not there. */
gint64 proc_status_field (const char *status, const char *key);
/* The same from the file as it is now; -1 where it cannot be read (not Linux). */
gint64 proc_status_now (const char *key);

#endif
