/* What the loader tests share: the small valid weight file test_loader.c writes, and how they
 * check an error. */
#ifndef LOADER_TEST_H
#define LOADER_TEST_H

#include <json-glib/json-glib.h>

#include "hparams.h"
#include "safetensors.h"

/* The valid file's header; its metadata holds a valid value of every hyper-parameter. */
JsonNode *valid_header (void);
/* The valid file's tensors under `header`, written to a file named after the running test;
 * its path. */
char *write_weights (JsonNode *header);
/* `error` is in HFAM_ERROR with `code`, starts with `path` and says `fragment`. */
void assert_error (const GError *error, const char *path, int code, const char *fragment);

void loader_add_hparams_tests (void);

#endif
