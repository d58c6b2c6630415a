/* libpng and libjpeg plumbing shared by the image readers (imageio.c, matte-read.c): the
 * format sniffing and the error handlers that turn a decoder's error into a GError naming the
 * file and jump back to the reader's setjmp. */
#ifndef HFAM_TOOLS_DECODE_H
#define HFAM_TOOLS_DECODE_H

#include <glib.h>
#include <setjmp.h>
#include <stdio.h>

#include <jpeglib.h>
#include <png.h>

#include <hfam/hfam.h>

G_BEGIN_DECLS

/* From errno, which nothing may change before this call. */
void decode_set_io_error (GError **error, const char *path);

typedef enum { DECODE_PNG, DECODE_JPEG } DecodeFormat;

/* Opens `path` and tells PNG from JPEG by its signature; NULL with an error otherwise. */
FILE *decode_open (const char *path, DecodeFormat *format, GError **error);

/* Where a decoder's error handler puts the error before it jumps back. */
typedef struct {
  const char *path;
  HfamError code;
  GError **error;
} DecodeErrorTarget;

/* For png_create_{read,write}_struct with a DecodeErrorTarget as the error pointer;
 * warnings (an odd ICC profile, a bad CRC in an ancillary chunk) do not stop the decoder. */
void decode_png_on_error (png_structp png, png_const_charp message);
void decode_png_on_warning (png_structp png, png_const_charp message);

typedef struct {
  struct jpeg_error_mgr mgr;
  jmp_buf jump;
  DecodeErrorTarget target;
} DecodeJpegError;

/* Installs the handlers in cinfo: errors longjmp to jerr->jump; warnings about corrupt data
 * are ignored, libjpeg recovers as other viewers do. */
void decode_jpeg_errors (struct jpeg_decompress_struct *cinfo, DecodeJpegError *jerr);

G_END_DECLS

#endif
