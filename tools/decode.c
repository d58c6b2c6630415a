#include "decode.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

void
decode_set_io_error (GError **error, const char *path)
{
  int saved_errno = errno;

  g_set_error (error, HFAM_ERROR, HFAM_ERROR_IO, "%s: %s", path, g_strerror (saved_errno));
}

FILE *
decode_open (const char *path, DecodeFormat *format, GError **error)
{
  static const guint8 jpeg_signature[3] = { 0xff, 0xd8, 0xff };
  guint8 signature[8];
  size_t n;
  FILE *file = g_fopen (path, "rb");

  if (!file) {
    decode_set_io_error (error, path);
    return NULL;
  }
  n = fread (signature, 1, sizeof signature, file);
  if (ferror (file)) {
    decode_set_io_error (error, path);
  } else if (n == sizeof signature && png_sig_cmp (signature, 0, n) == 0) {
    *format = DECODE_PNG;
    rewind (file);
    return file;
  } else if (n >= sizeof jpeg_signature
             && memcmp (signature, jpeg_signature, sizeof jpeg_signature) == 0) {
    *format = DECODE_JPEG;
    rewind (file);
    return file;
  } else {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT, "%s: not a PNG or JPEG file", path);
  }
  fclose (file);
  return NULL;
}

void
decode_png_on_error (png_structp png, png_const_charp message)
{
  DecodeErrorTarget *target = png_get_error_ptr (png);

  g_set_error (target->error, HFAM_ERROR, target->code, "%s: %s", target->path, message);
  png_longjmp (png, 1);
}

void
decode_png_on_warning (png_structp png, png_const_charp message)
{
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

static void
jpeg_on_message (j_common_ptr cinfo)
{
}

void
decode_jpeg_errors (struct jpeg_decompress_struct *cinfo, DecodeJpegError *jerr)
{
  cinfo->err = jpeg_std_error (&jerr->mgr);
  jerr->mgr.error_exit = jpeg_on_error;
  jerr->mgr.output_message = jpeg_on_message;
}
