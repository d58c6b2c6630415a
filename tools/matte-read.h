/* Mattes (predicted or ground truth) read as alphas in [0, 1] for hfam-eval. imageio serves
 * the network's input and cuts 16-bit samples to 8 bits; a matte keeps every bit:
 *   PNG: the alpha channel when the file has one (gray + alpha, RGBA, or a palette with a
 *        tRNS chunk), else the gray value, else the luma (299 R + 587 G + 114 B) / 1000
 *        rounded, which is exact where R = G = B. Gray below 8 bits is expanded to 8;
 *        a sample v becomes v / 255 (8 bits) or v / 65535 (16 bits).
 *   JPEG: libjpeg's gray output (the luma of a colour file), v / 255.
 * Errors: HFAM_ERROR_IO (cannot open or read) or HFAM_ERROR_FORMAT (not a PNG or JPEG file,
 * a corrupt or truncated one, or one over decode.h's limits: 64 megapixels), naming the
 * file. */
#ifndef HFAM_TOOLS_MATTE_READ_H
#define HFAM_TOOLS_MATTE_READ_H

#include <glib.h>
#include <stdio.h>

G_BEGIN_DECLS

typedef struct {
  double *alpha;  /* width x height, row-major, contiguous */
  int width, height;
} Matte;

Matte *matte_new (int width, int height);
Matte *matte_read (const char *path, GError **error);
/* The same from an open file (fmemopen: from memory), at its position; `name` for errors. */
Matte *matte_read_stream (FILE *file, const char *name, GError **error);
void matte_free (Matte *matte);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Matte, matte_free)

G_END_DECLS

#endif
