/* A picture read by imageio through libhfam: its matte as floats, at its own size. */
#ifndef MATTE_PICTURE_H
#define MATTE_PICTURE_H

#include <hfam/hfam.h>

#include "imageio.h"

/* width x height floats in 0..1, row after row (g_free them); NULL on failure. long_side
 * <= 0: the model's inference size. */
float *matte_picture (HfamContext *ctx, const ImageioPicture *picture, int long_side,
                      GError **error);

#endif
