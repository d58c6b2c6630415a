/* Reading PNG and JPEG files into 8-bit RGB or RGBA, writing gray or RGBA PNG files, for the
 * command-line tools. Errors are HFAM_ERROR_IO (cannot open, read or write) or
 * HFAM_ERROR_FORMAT (not a PNG or JPEG file, a corrupt or truncated one, or one larger than
 * decode.h's limits: 64 megapixels), and name the file. */
#ifndef HFAM_TOOLS_IMAGEIO_H
#define HFAM_TOOLS_IMAGEIO_H

#include <glib.h>
#include <stdio.h>

G_BEGIN_DECLS

typedef struct {
  guint8 *pixels;
  int width, height;
  int stride;    /* bytes per row */
  int channels;  /* 3: R, G, B; 4: R, G, B, A (straight alpha) */
} ImageioPicture;

/* Recognises the format by the file's signature. PNG: any colour type and depth, palettes
 * and gray expanded to RGB, 16-bit samples cut to their high byte, RGBA when the file has
 * alpha (or a tRNS chunk); JPEG: always RGB. */
ImageioPicture *imageio_read (const char *path, GError **error);
/* The same from an open file (fmemopen: from memory), at its position; `name` for errors. */
ImageioPicture *imageio_read_stream (FILE *file, const char *name, GError **error);

void imageio_picture_free (ImageioPicture *picture);

G_DEFINE_AUTOPTR_CLEANUP_FUNC (ImageioPicture, imageio_picture_free)

/* Writes an 8-bit PNG with `channels` 1 (gray) or 4 (RGBA, straight alpha). */
gboolean imageio_write_png (const char *path, const guint8 *pixels, int width, int height,
                            int stride, int channels, GError **error);

G_END_DECLS

#endif
