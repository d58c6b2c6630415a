/* Both decoders report errors by longjmp; every object that lives across a setjmp is
 * volatile and freed on the error path (as in imageio.c). No gamma or colour transform is
 * applied: the stored values are the alphas. */
#include "matte-read.h"

#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "decode.h"
#include <hfam/hfam.h>

static Matte *
matte_wrap (double *alpha, int width, int height)
{
  Matte *matte = g_new (Matte, 1);

  matte->alpha = alpha;
  matte->width = width;
  matte->height = height;
  return matte;
}

Matte *
matte_new (int width, int height)
{
  return matte_wrap (g_new (double, (gsize) width * height), width, height);
}

void
matte_free (Matte *matte)
{
  if (!matte)
    return;
  g_free (matte->alpha);
  g_free (matte);
}

/* NULL when the alphas do not fit in memory: sizes come from the file. */
static Matte *
matte_try_new (int width, int height)
{
  double *alpha = g_try_malloc_n ((gsize) width * height, sizeof (double));

  return alpha ? matte_wrap (alpha, width, height) : NULL;
}

/* The alpha of one decoded pixel, as matte-read.h says; `bytes`: 1 or 2 (big-endian). */
static guint32
png_pixel_alpha (const png_byte *pixel, int channels, int bytes)
{
  guint32 sample[4];

  for (int c = 0; c < channels; c++)
    sample[c] = bytes == 2 ? (guint32) pixel[2 * c] << 8 | pixel[2 * c + 1] : pixel[c];
  switch (channels) {
  case 1:
    return sample[0];
  case 3:
    return (299 * sample[0] + 587 * sample[1] + 114 * sample[2] + 500) / 1000;
  default:  /* gray + alpha, RGBA */
    return sample[channels - 1];
  }
}

static Matte *
read_png (FILE *file, const char *path, GError **error)
{
  DecodeErrorTarget target = {
    .path = path, .code = HFAM_ERROR_FORMAT, .error = error,
  };
  png_structp png;
  png_infop info;
  Matte *volatile matte = NULL;
  png_bytep volatile pixels = NULL;
  png_bytep *volatile rows = NULL;

  if (!decode_png_reader_new (&target, &png, &info))
    return NULL;
  if (setjmp (png_jmpbuf (png))) {
    png_destroy_read_struct (&png, &info, NULL);
    g_free (rows);
    g_free (pixels);
    matte_free (matte);
    return NULL;
  }

  decode_png_read_header (png, info, file);
  /* A palette's tRNS becomes an alpha channel; a gray file's tRNS (one transparent level)
   * is ignored, its gray levels are the matte. */
  if (png_get_color_type (png, info) == PNG_COLOR_TYPE_PALETTE)
    png_set_palette_to_rgb (png);
  else if (png_get_bit_depth (png, info) < 8)
    png_set_expand_gray_1_2_4_to_8 (png);
  png_set_interlace_handling (png);
  png_read_update_info (png, info);

  int width = png_get_image_width (png, info), height = png_get_image_height (png, info);
  int channels = png_get_channels (png, info), bytes = png_get_bit_depth (png, info) / 8;
  gsize row_bytes = png_get_rowbytes (png, info);
  double full_scale = bytes == 2 ? 65535.0 : 255.0;

  matte = matte_try_new (width, height);
  pixels = g_try_malloc_n (height, row_bytes);
  if (!matte || !pixels)
    png_error (png, "image too large for memory");
  rows = g_new (png_bytep, height);
  for (int y = 0; y < height; y++)
    rows[y] = pixels + (gsize) y * row_bytes;
  png_read_image (png, rows);
  png_read_end (png, NULL);

  for (int y = 0; y < height; y++)
    for (int x = 0; x < width; x++)
      matte->alpha[(gsize) y * width + x]
        = png_pixel_alpha (rows[y] + (gsize) x * channels * bytes, channels, bytes)
          / full_scale;

  png_destroy_read_struct (&png, &info, NULL);
  g_free (rows);
  g_free (pixels);
  return matte;
}

static Matte *
read_jpeg (FILE *file, const char *path, GError **error)
{
  struct jpeg_decompress_struct cinfo;
  DecodeJpegError jerr = {
    .target = { .path = path, .code = HFAM_ERROR_FORMAT, .error = error },
  };
  Matte *volatile matte = NULL;
  JSAMPROW volatile row = NULL;

  memset (&cinfo, 0, sizeof cinfo);
  decode_jpeg_errors (&cinfo, &jerr);
  if (setjmp (jerr.jump)) {
    jpeg_destroy_decompress (&cinfo);
    g_free (row);
    matte_free (matte);
    return NULL;
  }

  decode_jpeg_read_header (&cinfo, &jerr, file);
  cinfo.out_color_space = JCS_GRAYSCALE;
  jpeg_start_decompress (&cinfo);
  matte = matte_try_new (cinfo.output_width, cinfo.output_height);
  if (!matte)
    ERREXIT1 (&cinfo, JERR_OUT_OF_MEMORY, 0);
  row = g_new (JSAMPLE, cinfo.output_width);
  while (cinfo.output_scanline < cinfo.output_height) {
    double *out = matte->alpha + (gsize) cinfo.output_scanline * matte->width;
    JSAMPROW rows[1] = { row };
    jpeg_read_scanlines (&cinfo, rows, 1);
    for (int x = 0; x < matte->width; x++)
      out[x] = row[x] / 255.0;
  }
  jpeg_finish_decompress (&cinfo);
  jpeg_destroy_decompress (&cinfo);
  g_free (row);
  return matte;
}

Matte *
matte_read_stream (FILE *file, const char *name, GError **error)
{
  DecodeFormat format;

  if (!decode_sniff (file, name, &format, error))
    return NULL;
  return format == DECODE_PNG ? read_png (file, name, error) : read_jpeg (file, name, error);
}

Matte *
matte_read (const char *path, GError **error)
{
  Matte *matte;
  FILE *file = decode_fopen (path, error);

  if (!file)
    return NULL;
  matte = matte_read_stream (file, path, error);
  fclose (file);
  return matte;
}
