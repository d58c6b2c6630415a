/* libpng and libjpeg plumbing shared by the image readers (imageio.c, matte-read.c): the
 * format sniffing, the size limits, and the error handlers that turn a decoder's error into a
 * GError naming the file and jump back to the reader's setjmp.
 *
 * Limits: a picture has at most DECODE_MAX_PIXELS pixels and sides of at most
 * HFAM_MAX_FRAME_SIDE, checked from the header before anything of its size is allocated;
 * libpng's ancillary chunks are capped too (DECODE_PNG_MAX_CHUNK). */
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

/* 64 megapixels: 8K UHD (33 Mpx) fits twice. */
#define DECODE_MAX_PIXELS (G_GUINT64_CONSTANT (64) << 20)
#define DECODE_PNG_MAX_CHUNK (16 << 20)

typedef enum { DECODE_PNG, DECODE_JPEG } DecodeFormat;

/* Opens `path` for reading; NULL with an error naming it otherwise. */
FILE *decode_fopen (const char *path, GError **error);

/* Tells PNG from JPEG by the signature of an open file, read from its current position,
 * which it comes back to; `name` names it in the errors. */
gboolean decode_sniff (FILE *file, const char *name, DecodeFormat *format, GError **error);

/* FALSE, with an HFAM_ERROR_FORMAT error naming the file and the limits, when a picture of
 * this size is over them. */
gboolean decode_check_size (const char *path, guint64 width, guint64 height, GError **error);

/* Where a decoder's error handler puts the error before it jumps back. */
typedef struct {
  const char *path;
  HfamError code;
  GError **error;
  char warning[160];  /* libpng's last warning, which often says why the error came */
} DecodeErrorTarget;

/* For png_create_{read,write}_struct with a DecodeErrorTarget as the error pointer;
 * warnings (an odd ICC profile, a bad CRC in an ancillary chunk) do not stop the decoder, but
 * the last one is kept for the error message (a side over the user limits warns first). */
void decode_png_on_error (png_structp png, png_const_charp message);
void decode_png_on_warning (png_structp png, png_const_charp message);

/* A libpng reader whose errors go to `target`; FALSE, with target's error set, when there is
 * no memory for one. */
gboolean decode_png_reader_new (DecodeErrorTarget *target, png_structp *png, png_infop *info);

/* After the reader's setjmp: reads the header of `file` under libpng's user limits (the sides,
 * the ancillary chunks), and jumps back with target's error set when the picture is over
 * decode_check_size's. */
void decode_png_read_header (png_structp png, png_infop info, FILE *file);

typedef struct {
  struct jpeg_error_mgr mgr;
  jmp_buf jump;
  DecodeErrorTarget target;
} DecodeJpegError;

/* Installs the handlers in cinfo: errors longjmp to jerr->jump, and so do the warnings that
 * the data ended early (a truncated file, a scan cut short by a marker); other warnings about
 * corrupt data are ignored, libjpeg recovers as other viewers do. */
void decode_jpeg_errors (struct jpeg_decompress_struct *cinfo, DecodeJpegError *jerr);

/* After jerr->jump's setjmp: creates the decompressor, reads the header of `file`, and jumps
 * back with the target's error set when the picture is over decode_check_size's. */
void decode_jpeg_read_header (struct jpeg_decompress_struct *cinfo, DecodeJpegError *jerr,
                              FILE *file);

G_END_DECLS

#endif
