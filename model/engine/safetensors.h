/* Memory-mapped safetensors reader with full validation.
 *
 * File layout: bytes 0..7 hold N, the JSON header's length (little-endian uint64); bytes
 * 8..8+N-1 the header, a JSON object; then the data section. Each header member except
 * "__metadata__" describes one tensor:
 *   "name": {"dtype": "F32" | "F16" | "I8" | "U8", "shape": [d0, d1, ...],
 *            "data_offsets": [begin, end]}
 * with offsets relative to the data section's first byte, end - begin = product(shape) *
 * sizeof(dtype), begin <= end <= data section size, and no two tensors' ranges overlapping.
 * "__metadata__", if present, is an object of string values. A weight stored as I8 is
 * quantised per first index (per output channel of a convolution): its companion "NAME.scale"
 * (F32 or F16, shape [d0]) gives value = q * scale[i0]. Tensor data is little-endian,
 * row-major (C order). A header longer than 64 MiB is refused as absurd.
 *
 * Every error names the file and, where there is one, the tensor. */
#ifndef HFAM_SAFETENSORS_H
#define HFAM_SAFETENSORS_H

#include <glib.h>
#include <stddef.h>
#include <stdint.h>

G_BEGIN_DECLS

#define HFAM_ST_MAX_DIMS 8

typedef enum { HFAM_DTYPE_F32, HFAM_DTYPE_F16, HFAM_DTYPE_I8, HFAM_DTYPE_U8 } HfamDtype;

typedef struct _HfamStTensor HfamStTensor;
struct _HfamStTensor {
  const char *name;
  HfamDtype dtype;
  int n_dims;
  int64_t shape[HFAM_ST_MAX_DIMS];
  const void *data;   /* inside the mapping */
  size_t n_bytes;
  gboolean used;      /* set by hfam_st_take() */
  const HfamStTensor *scale;  /* I8: "NAME.scale", set by hfam_st_take() */
};

typedef struct _HfamSafetensors HfamSafetensors;

/* Maps and validates the whole file (structure, dtypes, sizes, ranges, overlaps). */
HfamSafetensors *hfam_st_open (const char *path, GError **error);
void hfam_st_close (HfamSafetensors *st);
const char *hfam_st_path (const HfamSafetensors *st);

/* NULL if absent. */
const char *hfam_st_metadata (const HfamSafetensors *st, const char *key);
guint hfam_st_n_tensors (const HfamSafetensors *st);
const HfamStTensor *hfam_st_tensor_at (const HfamSafetensors *st, guint i);
const HfamStTensor *hfam_st_find (const HfamSafetensors *st, const char *name);

/* Looks up `name`, checks dtype is one of F32/F16/I8 (I8 with its "NAME.scale") and shape
 * equals `shape[n_dims]`, marks it (and its scale) used. On failure: NULL and a message
 * naming file, tensor, expected and found. */
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

/* Tells the kernel the mapping's pages may be dropped (after weights were copied). */
void hfam_st_release_pages (HfamSafetensors *st);

G_END_DECLS

#endif
