#include "decode.h"

#include <errno.h>
#include <jerror.h>
#include <glib/gstdio.h>
#include <string.h>

void
decode_set_io_error (GError **error, const char *path)
{
  int saved_errno = errno;

  g_set_error (error, HFAM_ERROR, HFAM_ERROR_IO, "%s: %s", path, g_strerror (saved_errno));
}

gboolean
decode_sniff (FILE *file, const char *name, DecodeFormat *format, GError **error)
{
  static const guint8 jpeg_signature[3] = { 0xff, 0xd8, 0xff };
  guint8 signature[8];
  const long start = ftell (file);
  const size_t n = fread (signature, 1, sizeof signature, file);

  if (ferror (file) || fseek (file, start, SEEK_SET) != 0) {
    decode_set_io_error (error, name);
    return FALSE;
  }
  if (n == sizeof signature && png_sig_cmp (signature, 0, n) == 0) {
    *format = DECODE_PNG;
    return TRUE;
  }
  if (n >= sizeof jpeg_signature
      && memcmp (signature, jpeg_signature, sizeof jpeg_signature) == 0) {
    *format = DECODE_JPEG;
    return TRUE;
  }
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT, "%s: not a PNG or JPEG file", name);
  return FALSE;
}

FILE *
decode_fopen (const char *path, GError **error)
{
  FILE *file = g_fopen (path, "rb");

  if (!file)
    decode_set_io_error (error, path);
  return file;
}

gboolean
decode_check_size (const char *path, guint64 width, guint64 height, GError **error)
{
  if (width >= 1 && height >= 1 && width <= HFAM_MAX_FRAME_SIDE && height <= HFAM_MAX_FRAME_SIDE
      && width * height <= DECODE_MAX_PIXELS)
    return TRUE;
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
               "%s: %" G_GUINT64_FORMAT "x%" G_GUINT64_FORMAT " pixels: the tools read pictures "
               "of at most %" G_GUINT64_FORMAT " megapixels and %d pixels a side", path, width,
               height, DECODE_MAX_PIXELS >> 20, HFAM_MAX_FRAME_SIDE);
  return FALSE;
}

void
decode_png_on_error (png_structp png, png_const_charp message)
{
  DecodeErrorTarget *target = png_get_error_ptr (png);

  if (target->warning[0])
    g_set_error (target->error, HFAM_ERROR, target->code, "%s: %s (after: %s)", target->path,
                 message, target->warning);
  else
    g_set_error (target->error, HFAM_ERROR, target->code, "%s: %s", target->path, message);
  png_longjmp (png, 1);
}

void
decode_png_on_warning (png_structp png, png_const_charp message)
{
  DecodeErrorTarget *target = png_get_error_ptr (png);

  g_strlcpy (target->warning, message, sizeof target->warning);
}

gboolean
decode_png_reader_new (DecodeErrorTarget *target, png_structp *png, png_infop *info)
{
  *info = NULL;
  *png = png_create_read_struct (PNG_LIBPNG_VER_STRING, target, decode_png_on_error,
                                 decode_png_on_warning);
  if (*png)
    *info = png_create_info_struct (*png);
  if (!*info) {
    g_set_error (target->error, HFAM_ERROR, target->code, "%s: out of memory", target->path);
    png_destroy_read_struct (png, NULL, NULL);
    return FALSE;
  }
  return TRUE;
}

void
decode_png_read_header (png_structp png, png_infop info, FILE *file)
{
  const DecodeErrorTarget *target = png_get_error_ptr (png);

  png_init_io (png, file);
  png_set_user_limits (png, HFAM_MAX_FRAME_SIDE, HFAM_MAX_FRAME_SIDE);
  png_set_chunk_malloc_max (png, DECODE_PNG_MAX_CHUNK);
  png_set_chunk_cache_max (png, 1000);
  png_read_info (png, info);
  if (!decode_check_size (target->path, png_get_image_width (png, info),
                          png_get_image_height (png, info), target->error))
    png_longjmp (png, 1);
}

static void
jpeg_on_error (j_common_ptr cinfo)
{
  DecodeJpegError *jerr = (DecodeJpegError *) cinfo->err;
  char message[JMSG_LENGTH_MAX];

  jerr->mgr.format_message (cinfo, message);
  g_set_error (jerr->target.error, HFAM_ERROR, jerr->target.code, "%s: %s", jerr->target.path,
               message);
  longjmp (jerr->jump, 1);
}

/* Data that ends before the picture does (the file, or the scan at a marker) decodes as grey
 * rows from there on: an error, not a picture. */
static void
jpeg_on_message (j_common_ptr cinfo, int level)
{
  if (level < 0
      && (cinfo->err->msg_code == JWRN_JPEG_EOF || cinfo->err->msg_code == JWRN_HIT_MARKER))
    cinfo->err->error_exit (cinfo);
}

void
decode_jpeg_errors (struct jpeg_decompress_struct *cinfo, DecodeJpegError *jerr)
{
  cinfo->err = jpeg_std_error (&jerr->mgr);
  jerr->mgr.error_exit = jpeg_on_error;
  jerr->mgr.emit_message = jpeg_on_message;
}

void
decode_jpeg_read_header (struct jpeg_decompress_struct *cinfo, DecodeJpegError *jerr,
                         FILE *file)
{
  jpeg_create_decompress (cinfo);
  jpeg_stdio_src (cinfo, file);
  jpeg_read_header (cinfo, TRUE);
  if (!decode_check_size (jerr->target.path, cinfo->image_width, cinfo->image_height,
                          jerr->target.error))
    longjmp (jerr->jump, 1);
}
