/* libFuzzer target: the whole load path of a weight file, as hfam_model_load() runs it
 * (safetensors parsing and validation, the hyper-parameters, the graph taking and checking
 * every tensor), on the input bytes in memory.
 *
 *   CC=clang meson setup build-fuzz -Dfuzzing=true -Db_sanitize=address,undefined \
 *     -Db_lundef=false -Dcuda=disabled
 *   meson compile -C build-fuzz fuzz-weights
 *   tests/fuzz/seed-weights.sh corpus-weights
 *   build-fuzz/tests/fuzz/fuzz-weights -max_len=65536 -max_total_time=180 corpus-weights
 *
 * Anything but a clean refusal or a built graph is a bug: a sanitizer report, a crash, a
 * GLib critical (fatal here), or a refusal that does not name its input. */
#include "graph.h"
#include "hparams.h"
#include "safetensors.h"

#include <stdlib.h>
#include <string.h>

#define INPUT_NAME "fuzz input"

int LLVMFuzzerInitialize (int *argc, char ***argv);
int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize (int *argc, char ***argv)
{
  g_log_set_always_fatal (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING);
  return 0;
}

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
  g_autoptr (GBytes) bytes = g_bytes_new_static (data, size);
  g_autoptr (GError) error = NULL;
  HfamSafetensors *st = hfam_st_open_bytes (INPUT_NAME, bytes, &error);
  HfamHparams hp;

  if (st != NULL && hfam_hparams_read (st, &hp, &error))
    hfam_graph_free (hfam_graph_build (&hp, st, &error));
  if (error != NULL && !g_str_has_prefix (error->message, INPUT_NAME ": "))
    abort ();
  if (st != NULL)
    hfam_st_close (st);
  return 0;
}
