/* PNG through libpng's classic API rather than the simplified one, which would apply gamma
 * (it treats 16-bit data as linear): the network wants the stored values as they are
 * (model/README.md). Both libraries report errors by longjmp; every object that lives
 * across a setjmp is volatile and freed on the error path. */
#include "imageio.h"

#include <glib/gstdio.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "decode.h"
#include <hfam/hfam.h>

void
imageio_picture_free (ImageioPicture *picture)
{
  if (!picture)
    return;
  g_free (picture->pixels);
  g_free (picture);
}

/* NULL when the pixels do not fit in memory: sizes come from the file. */
static ImageioPicture *
picture_new (int width, int height, int channels)
{
  ImageioPicture *picture;
  guint8 *pixels = g_try_malloc_n ((gsize) height, (gsize) width * channels);

  if (!pixels)
    return NULL;
  picture = g_new (ImageioPicture, 1);
  picture->pixels = pixels;
  picture->width = width;
  picture->height = height;
  picture->stride = width * channels;
  picture->channels = channels;
  return picture;
}

static ImageioPicture *
read_png (FILE *file, const char *path, GError **error)
{
  DecodeErrorTarget target = {
    .path = path, .code = HFAM_ERROR_FORMAT, .error = error,
  };
  png_structp png;
  png_infop info;
  ImageioPicture *volatile picture = NULL;
  png_bytep *volatile rows = NULL;

  if (!decode_png_reader_new (&target, &png, &info))
    return NULL;
  if (setjmp (png_jmpbuf (png))) {
    png_destroy_read_struct (&png, &info, NULL);
    g_free (rows);
    imageio_picture_free (picture);
    return NULL;
  }

  decode_png_read_header (png, info, file);
  png_set_expand (png);
  png_set_strip_16 (png);
  png_set_gray_to_rgb (png);
  png_set_interlace_handling (png);
  png_read_update_info (png, info);

  int width = png_get_image_width (png, info), height = png_get_image_height (png, info);
  picture = picture_new (width, height, png_get_channels (png, info));
  if (!picture)
    png_error (png, "image too large for memory");
  rows = g_new (png_bytep, height);
  for (int y = 0; y < height; y++)
    rows[y] = picture->pixels + (gsize) y * picture->stride;
  png_read_image (png, rows);
  png_read_end (png, NULL);

  png_destroy_read_struct (&png, &info, NULL);
  g_free (rows);
  return picture;
}

static ImageioPicture *
read_jpeg (FILE *file, const char *path, GError **error)
{
  struct jpeg_decompress_struct cinfo;
  DecodeJpegError jerr = {
    .target = { .path = path, .code = HFAM_ERROR_FORMAT, .error = error },
  };
  ImageioPicture *volatile picture = NULL;

  memset (&cinfo, 0, sizeof cinfo);
  decode_jpeg_errors (&cinfo, &jerr);
  if (setjmp (jerr.jump)) {
    jpeg_destroy_decompress (&cinfo);
    imageio_picture_free (picture);
    return NULL;
  }

  decode_jpeg_read_header (&cinfo, &jerr, file);
  cinfo.out_color_space = JCS_RGB;
  jpeg_start_decompress (&cinfo);
  picture = picture_new (cinfo.output_width, cinfo.output_height, 3);
  if (!picture)
    ERREXIT1 (&cinfo, JERR_OUT_OF_MEMORY, 0);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = picture->pixels + (gsize) cinfo.output_scanline * picture->stride;
    jpeg_read_scanlines (&cinfo, &row, 1);
  }
  jpeg_finish_decompress (&cinfo);
  jpeg_destroy_decompress (&cinfo);
  return picture;
}

ImageioPicture *
imageio_read_stream (FILE *file, const char *name, GError **error)
{
  DecodeFormat format;

  if (!decode_sniff (file, name, &format, error))
    return NULL;
  return format == DECODE_PNG ? read_png (file, name, error) : read_jpeg (file, name, error);
}

ImageioPicture *
imageio_read (const char *path, GError **error)
{
  ImageioPicture *picture;
  FILE *file = decode_fopen (path, error);

  if (!file)
    return NULL;
  picture = imageio_read_stream (file, path, error);
  fclose (file);
  return picture;
}

gboolean
imageio_write_png (const char *path, const guint8 *pixels, int width, int height, int stride,
                   int channels, GError **error)
{
  DecodeErrorTarget target = { .path = path, .code = HFAM_ERROR_IO, .error = error };
  png_structp png;
  png_infop info = NULL;
  FILE *file;

  g_return_val_if_fail (channels == 1 || channels == 4, FALSE);

  file = g_fopen (path, "wb");
  if (!file) {
    decode_set_io_error (error, path);
    return FALSE;
  }

  png = png_create_write_struct (PNG_LIBPNG_VER_STRING, &target, decode_png_on_error,
                                 decode_png_on_warning);
  if (png)
    info = png_create_info_struct (png);
  if (!info) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_IO, "%s: out of memory", path);
    png_destroy_write_struct (&png, NULL);
    fclose (file);
    return FALSE;
  }
  if (setjmp (png_jmpbuf (png))) {
    png_destroy_write_struct (&png, &info);
    fclose (file);
    return FALSE;
  }

  png_init_io (png, file);
  png_set_IHDR (png, info, width, height, 8,
                channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB_ALPHA,
                PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info (png, info);
  for (int y = 0; y < height; y++)
    png_write_row (png, pixels + (gsize) y * stride);
  png_write_end (png, NULL);
  png_destroy_write_struct (&png, &info);

  /* A full disk often shows only when the buffered tail is flushed. */
  if (fclose (file) != 0) {
    decode_set_io_error (error, path);
    return FALSE;
  }
  return TRUE;
}
