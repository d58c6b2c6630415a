/* A picture read by imageio through libhfam: its matte as floats, at its own size. */
#ifndef MATTE_PICTURE_H
#define MATTE_PICTURE_H

#include <hfam/hfam.h>

#include "imageio.h"

/* width x height floats in 0..1, row after row (g_free them), run with `params` (its
 * long side and islands); NULL on failure. */
float *matte_picture (HfamContext *ctx, const ImageioPicture *picture,
                      const HfamFrameParams *params, GError **error);

#endif
