/* hfammatte: removes the background behind people with libhfam.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef GST_HFAM_MATTE_H
#define GST_HFAM_MATTE_H

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_HFAM_MATTE (gst_hfam_matte_get_type ())
G_DECLARE_FINAL_TYPE (GstHfamMatte, gst_hfam_matte, GST, HFAM_MATTE, GstElement)

GST_ELEMENT_REGISTER_DECLARE (hfammatte);

G_END_DECLS

#endif
