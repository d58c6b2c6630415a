/* safetensors reader with full validation, on a private copy of the file.
 *
 * File layout: bytes 0..7 hold N, the JSON header's length (little-endian uint64); bytes
 * 8..8+N-1 the header, a JSON object; then the data section. Each header member except
 * "__metadata__" describes one tensor:
 *   "name": {"dtype": "F32" | "F16" | "I8" | "U8", "shape": [d0, d1, ...],
 *            "data_offsets": [begin, end]}
 * with offsets relative to the data section's first byte and end - begin = product(shape) *
 * sizeof(dtype). Sorted by begin, the tensors cover the data section exactly (the format's
 * own rule): the first begins at 0, each begins where the one before ends, the last ends at
 * the end of the file; no gap, no overlap, no trailing byte. "__metadata__", if present, is
 * an object of string values. A weight stored as I8 is quantised per first index (per output
 * channel of a convolution): its companion "NAME.scale" (F32 or F16, shape [d0]) gives
 * value = q * scale[i0]. Tensor data is little-endian, row-major (C order).
 *
 * Refused as absurd before anything is parsed: a file larger than HFAM_ST_MAX_FILE_SIZE, a
 * header longer than 1 MiB, and a header that nests arrays and objects deeper than
 * HFAM_ST_MAX_NESTING (json-glib recurses once per level, without a limit of its own).
 *
 * The file is read once into memory that only the reader holds, and everything is validated
 * there: what the engine reads later (a backend plans again when the inference size changes)
 * is what was validated, whatever happens to the file on disk.
 *
 * Every error names the file (or the name given for bytes) and, where there is one, the
 * tensor. */
#ifndef HFAM_SAFETENSORS_H
#define HFAM_SAFETENSORS_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

G_BEGIN_DECLS

#define HFAM_ST_MAX_DIMS 8
/* The paper's network (ResNet-101, 107.6 M parameters) is 430 MB in F32, the default model
 * 32 MB; the whole file stays in memory while the model lives, so a larger one is refused. */
#define HFAM_ST_MAX_FILE_SIZE (G_GUINT64_CONSTANT (1) << 30)
/* The format needs 3 (the header, a tensor's entry, its shape); a few more keep the finer
 * messages of the checks after parsing for headers that are merely wrong. */
#define HFAM_ST_MAX_NESTING 8

typedef enum { HFAM_DTYPE_F32, HFAM_DTYPE_F16, HFAM_DTYPE_I8, HFAM_DTYPE_U8 } HfamDtype;

typedef struct _HfamStTensor HfamStTensor;
struct _HfamStTensor {
  const char *name;
  HfamDtype dtype;
  int n_dims;
  int64_t shape[HFAM_ST_MAX_DIMS];
  const void *data;   /* inside the reader's copy of the file */
  size_t n_bytes;
  gboolean used;      /* set by hfam_st_take() */
  const HfamStTensor *scale;  /* I8: "NAME.scale", set by hfam_st_take() */
};

typedef struct _HfamSafetensors HfamSafetensors;

/* Reads the whole file into memory and validates it (structure, dtypes, sizes, ranges,
 * coverage). */
HfamSafetensors *hfam_st_open (const char *path, GError **error);
/* The same on bytes already in memory (the fuzzer's way in); `name` stands for the path in
 * errors and hfam_st_path(). Keeps a reference to `bytes`. */
HfamSafetensors *hfam_st_open_bytes (const char *name, GBytes *bytes, GError **error);
void hfam_st_close (HfamSafetensors *st);
const char *hfam_st_path (const HfamSafetensors *st);

/* NULL if absent. */
const char *hfam_st_metadata (const HfamSafetensors *st, const char *key);
guint hfam_st_n_tensors (const HfamSafetensors *st);
const HfamStTensor *hfam_st_tensor_at (const HfamSafetensors *st, guint i);
const HfamStTensor *hfam_st_find (const HfamSafetensors *st, const char *name);

/* Looks up `name`, checks dtype is one of F32/F16/I8 (I8 with its "NAME.scale"), shape
 * equals `shape[n_dims]` and every value is finite (for I8, every q * scale), marks it (and
 * its scale) used. On failure: NULL and a message naming file, tensor, expected and found
 * (for a value that is not finite, its index in row-major order). */
const HfamStTensor *hfam_st_take (HfamSafetensors *st, const char *name, int n_dims,
                                  const int64_t *shape, GError **error);

/* Fails naming the first tensor that no hfam_st_take() asked for. */
gboolean hfam_st_check_all_taken (const HfamSafetensors *st, GError **error);

/* Converts a tensor's elements to fp32 (F32 copy, F16 widening, I8 times its scale, U8 as
 * values). */
void hfam_st_to_f32 (const HfamStTensor *t, float *dst);

/* The number of elements; and a newly allocated fp32 copy (free with g_free). */
size_t hfam_st_n_elements (const HfamStTensor *t);
float *hfam_st_dup_f32 (const HfamStTensor *t);

G_END_DECLS

#endif
