/* What the loader tests share: the small valid weight file test_loader.c writes, and how they
 * check an error. */
#ifndef LOADER_TEST_H
#define LOADER_TEST_H

#include <json-glib/json-glib.h>

#include "hparams.h"
#include "safetensors.h"

/* The valid file's header; its metadata holds a valid value of every hyper-parameter. */
JsonNode *valid_header (void);
/* The valid file's data section, the tensors of valid_header() back to back. */
GByteArray *valid_data (void);
/* The valid file's tensors under `header`, written to a file named after the running test;
 * its path. */
char *write_weights (JsonNode *header);
/* `bytes` written to a file named after the running test; its path. */
char *write_raw (const void *bytes, gsize length);
/* length field + header text + data (may be NULL), with the length field given explicitly. */
GByteArray *assemble (guint64 header_length, const char *header, gsize header_size,
                      const GByteArray *data);
/* A whole file: `header` padded with blanks to an 8-byte boundary, then `data`. */
GByteArray *serialise (JsonNode *header, const GByteArray *data);

/* `error` is in HFAM_ERROR with `code`, starts with `path` and says `fragment`. */
void assert_error (const GError *error, const char *path, int code, const char *fragment);
void assert_open_fails (const char *path, int code, const char *fragment);
/* Takes every tensor of the valid file and checks its values. */
void check_valid_tensors (HfamSafetensors *st);

void loader_add_hparams_tests (void);
void loader_add_hostile_tests (void);

#endif
