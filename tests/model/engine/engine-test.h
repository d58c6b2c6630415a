/* What the engine's tests share: the golden vectors' folder, libhfam's public API shortened,
 * and the frames of the pipelined and temporal tests with their comparison. */
#ifndef HFAM_TESTS_ENGINE_TEST_H
#define HFAM_TESTS_ENGINE_TEST_H

#include <hfam/hfam.h>

#include <glib.h>

/* the folder of model/python/reference/golden.py's files, from the test's arguments */
extern const char *golden_dir;

/* g_test_init, then golden_dir from the first argument (the usage, and exit 2, without one) */
void engine_test_init (int *argc, char ***argv);

/* GOLDEN_DIR/NAME SUFFIX */
char *golden_path (const char *name, const char *suffix);
double max_abs_diff (const float *a, const float *b, size_t n);

/* a context on the CPU backend in fp32, 2 threads */
HfamContext *cpu_context (HfamModel *model, int pipeline_depth, GError **error);
HfamImage packed_image (guint8 *pixels, int w, int h, int bpp, HfamFormat format);
/* The matte as floats, the frame's size. */
HfamImage float_matte (float *alpha, int w, int h);

/* the pipelined and temporal tests' frames: RGBA, PIPE_W x PIPE_H, a pattern per seed */
#define PIPE_W 70
#define PIPE_H 45
void fill_frame (guint8 *pixels, int seed);
/* two PIPE_W x PIPE_H mattes within 1e-6 */
void expect_same_matte (const float *got, const float *want);

#endif
