/* The hfam plugin: registration only.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "gsthfammatte.h"

static gboolean
plugin_init (GstPlugin * plugin)
{
  return GST_ELEMENT_REGISTER (hfammatte, plugin);
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, hfam,
    "Portrait matting with the HFAM network", plugin_init, VERSION, GST_LICENSE,
    GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)
