#include "matte-picture.h"

float *
matte_picture (HfamContext *ctx, const ImageioPicture *picture, const HfamFrameParams *params,
               GError **error)
{
  const HfamImage frame = {
    .planes = { picture->pixels },
    .strides = { picture->stride },
    .width = picture->width,
    .height = picture->height,
    .format = picture->channels == 4 ? HFAM_FORMAT_RGBA : HFAM_FORMAT_RGB,
  };
  g_autofree float *alpha = g_new (float, (gsize) picture->width * picture->height);
  const HfamImage matte = {
    .planes = { (uint8_t *) alpha },
    .strides = { (int) sizeof (float) * picture->width },
    .width = picture->width,
    .height = picture->height,
    .format = HFAM_FORMAT_GRAY32F,
  };

  if (!hfam_context_run (ctx, &frame, params, &matte, 1, error))
    return NULL;
  return g_steal_pointer (&alpha);
}
