/* libFuzzer target: the command-line tools' image readers on hostile bytes. The input is read
 * as hfam-eval reads its files, from memory (fmemopen): as a picture for the network
 * (tools/imageio.c) and as a matte (tools/matte-read.c), each telling PNG from JPEG by the
 * signature as the tools do. Any outcome but a picture or a GError is a defect.
 *
 *   tests/fuzz/seed-images.sh CORPUS && build-fuzz/tests/fuzz/fuzz-images CORPUS */
#include <stdint.h>
#include <stdio.h>

#include <hfam/hfam-types.h>

#include "imageio.h"
#include "matte-read.h"

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

static void
check_outcome (gboolean read, GError *error)
{
  /* exactly one of a result and an error, and the error is the readers' own */
  g_assert_true (read != (error != NULL));
  g_assert_true (!error || error->domain == HFAM_ERROR);
  g_clear_error (&error);
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  GError *error = NULL;
  FILE *file;

  /* (fmemopen refuses an empty buffer) */
  if (size == 0 || !(file = fmemopen ((void *) data, size, "rb")))
    return 0;

  ImageioPicture *picture = imageio_read_stream (file, "fuzz-input", &error);
  if (picture)
    g_assert_true (picture->width > 0 && picture->height > 0
                   && (picture->channels == 3 || picture->channels == 4));
  check_outcome (picture != NULL, error);
  imageio_picture_free (picture);

  error = NULL;
  rewind (file);
  Matte *matte = matte_read_stream (file, "fuzz-input", &error);
  check_outcome (matte != NULL, error);
  matte_free (matte);

  fclose (file);
  return 0;
}
