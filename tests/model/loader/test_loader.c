/* Tests of the weight-file loader: a small valid safetensors file written here, and each
 * corruption model/README.md says the loader must reject, with the check that fires. */
#include "loader-test.h"

#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>

static char *tmp_dir;

static const char *const valid_metadata[][2] = {
  { "format", "hfam" },
  { "format_version", "1" },
  { "encoder_depth", "50" },
  { "encoder_width", "64" },
  { "stride_in_1x1", "false" },
  { "input_order", "BGR" },
  { "input_scale", "255" },
  { "input_mean", "0.485,0.456,0.406" },
  { "input_std", "0.229, 0.224, 0.225" },
  { "mfem_channels", "256" },
  { "mfem_rates", "4,8,12,2,4,6,1,2,3" },
  { "sk_width", "32" },
  { "context_widths", "256,256,128,64,64" },
  { "semantic_widths", "512,512,256,256,256,128,128,128,64,64,64,64,64,64,3" },
  { "detail_widths", "512,512,256,256,256,128,128,128,64,64,64,64,64,64,1" },
  { "lbb_width", "64" },
  { "lbb_dilation", "2" },
  { "inference_size", "512" },
};

/* The valid file's tensors. The F16 one comes first with an odd number of elements, so the
 * F32 tensors after it start on 2-byte but not 4-byte boundaries: reads must not assume
 * alignment. All finite, as a weight must be (infinities and NaN: test_f16_exhaustive). */
typedef struct {
  uint16_t bits;
  float value;
} HalfCase;

static const HalfCase halves[] = {
  { 0x3c00, 1.0f },
  { 0xc000, -2.0f },
  { 0x7bff, 65504.0f },             /* largest finite */
  { 0x0001, 0x1p-24f },             /* smallest subnormal */
  { 0x03ff, 1023 * 0x1p-24f },      /* largest subnormal */
  { 0x0400, 0x1p-14f },             /* smallest normal */
  { 0x3555, 0.333251953125f },
  { 0x8000, -0.0f },
  { 0xfbff, -65504.0f },            /* most negative finite */
  { 0x8001, -0x1p-24f },
  { 0x3bff, 0.99951171875f },       /* largest below 1 */
};
static const float conv_weight[6] = { 0.5f, -1.25f, 3.0f, 1e-20f, -7.0f, 0.1f };
static const float conv_bias[2] = { -0.75f, 42.0f };
static const float scale = 2.5f;

#define HALF_BEGIN 0
#define WEIGHT_BEGIN (HALF_BEGIN + 2 * G_N_ELEMENTS (halves))
#define BIAS_BEGIN (WEIGHT_BEGIN + sizeof conv_weight)
#define SCALE_BEGIN (BIAS_BEGIN + sizeof conv_bias)
#define DATA_SIZE (SCALE_BEGIN + sizeof scale)

static const int64_t half_shape[] = { G_N_ELEMENTS (halves) };
static const int64_t weight_shape[] = { 2, 3, 1, 1 };
static const int64_t bias_shape[] = { 2 };

static void
append_le32 (GByteArray *data, const float *values, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    uint32_t bits;
    memcpy (&bits, &values[i], sizeof bits);
    bits = GUINT32_TO_LE (bits);
    g_byte_array_append (data, (const guint8 *) &bits, sizeof bits);
  }
}

GByteArray *
valid_data (void)
{
  GByteArray *data = g_byte_array_new ();
  for (size_t i = 0; i < G_N_ELEMENTS (halves); i++) {
    uint16_t bits = GUINT16_TO_LE (halves[i].bits);
    g_byte_array_append (data, (const guint8 *) &bits, sizeof bits);
  }
  append_le32 (data, conv_weight, G_N_ELEMENTS (conv_weight));
  append_le32 (data, conv_bias, G_N_ELEMENTS (conv_bias));
  append_le32 (data, &scale, 1);
  g_assert_cmpuint (data->len, ==, DATA_SIZE);
  return data;
}

static void
add_tensor (JsonBuilder *b, const char *name, const char *dtype, const int64_t *shape,
            int n_dims, int64_t begin, int64_t end)
{
  json_builder_set_member_name (b, name);
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "dtype");
  json_builder_add_string_value (b, dtype);
  json_builder_set_member_name (b, "shape");
  json_builder_begin_array (b);
  for (int i = 0; i < n_dims; i++)
    json_builder_add_int_value (b, shape[i]);
  json_builder_end_array (b);
  json_builder_set_member_name (b, "data_offsets");
  json_builder_begin_array (b);
  json_builder_add_int_value (b, begin);
  json_builder_add_int_value (b, end);
  json_builder_end_array (b);
  json_builder_end_object (b);
}

JsonNode *
valid_header (void)
{
  g_autoptr (JsonBuilder) b = json_builder_new ();
  json_builder_begin_object (b);
  json_builder_set_member_name (b, "__metadata__");
  json_builder_begin_object (b);
  for (size_t i = 0; i < G_N_ELEMENTS (valid_metadata); i++) {
    json_builder_set_member_name (b, valid_metadata[i][0]);
    json_builder_add_string_value (b, valid_metadata[i][1]);
  }
  json_builder_end_object (b);
  add_tensor (b, "head.weight", "F16", half_shape, 1, HALF_BEGIN, WEIGHT_BEGIN);
  add_tensor (b, "encoder.conv1.weight", "F32", weight_shape, 4, WEIGHT_BEGIN, BIAS_BEGIN);
  add_tensor (b, "encoder.conv1.bias", "F32", bias_shape, 1, BIAS_BEGIN, SCALE_BEGIN);
  add_tensor (b, "head.scale", "F32", NULL, 0, SCALE_BEGIN, DATA_SIZE);
  json_builder_end_object (b);
  return json_builder_get_root (b);
}

/* A file in tmp_dir named after the running test. */
static char *
test_file_path (void)
{
  g_autofree char *name = g_strdelimit (g_strdup (g_test_get_path () + 1), "/", '-');
  return g_build_filename (tmp_dir, name, NULL);
}

char *
write_raw (const void *bytes, gsize length)
{
  char *path = test_file_path ();
  g_autoptr (GError) error = NULL;
  /* No fsync: the files are rewritten hundreds of times and thrown away. Without it GLib
   * 2.74 writes in place without truncating, so a shorter file would keep the longer one's
   * tail: removed first. */
  g_unlink (path);
  g_file_set_contents_full (path, bytes, (gssize) length, G_FILE_SET_CONTENTS_NONE, 0600,
                            &error);
  g_assert_no_error (error);
  return path;
}

GByteArray *
assemble (guint64 header_length, const char *header, gsize header_size, const GByteArray *data)
{
  GByteArray *file = g_byte_array_new ();
  guint64 le = GUINT64_TO_LE (header_length);
  g_byte_array_append (file, (const guint8 *) &le, sizeof le);
  g_byte_array_append (file, (const guint8 *) header, (guint) header_size);
  if (data != NULL)
    g_byte_array_append (file, data->data, data->len);
  return file;
}

/* Pads the header with blanks, as safetensors writers do, so that the data section starts
 * on an 8-byte boundary of the file and the alignment of each tensor is known. */
GByteArray *
serialise (JsonNode *header, const GByteArray *data)
{
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  json_generator_set_root (generator, header);
  g_autofree char *json = json_generator_to_data (generator, NULL);
  g_autoptr (GString) text = g_string_new (json);
  while ((8 + text->len) % 8 != 0)
    g_string_append_c (text, ' ');
  return assemble (text->len, text->str, text->len, data);
}

char *
write_weights (JsonNode *header)
{
  g_autoptr (GByteArray) data = valid_data ();
  g_autoptr (GByteArray) file = serialise (header, data);
  return write_raw (file->data, file->len);
}

static char *
write_valid (void)
{
  g_autoptr (JsonNode) header = valid_header ();
  return write_weights (header);
}

void
assert_error (const GError *error, const char *path, int code, const char *fragment)
{
  g_assert_nonnull (error);
  g_test_message ("%s", error->message);
  g_assert_error (error, HFAM_ERROR, code);
  g_assert_true (g_str_has_prefix (error->message, path));
  g_assert_nonnull (strstr (error->message, fragment));
}

void
assert_open_fails (const char *path, int code, const char *fragment)
{
  g_autoptr (GError) error = NULL;
  HfamSafetensors *st = hfam_st_open (path, &error);
  g_assert_null (st);
  assert_error (error, path, code, fragment);
}

static void
assert_same_float (float got, float expected)
{
  if (isnan (expected)) {
    g_assert_true (isnan (got));
  } else {
    /* Bitwise, so that -0 and 0 differ. */
    g_assert_cmpmem (&got, sizeof got, &expected, sizeof expected);
  }
}

static void
assert_tensor_values (const HfamStTensor *t, const float *expected, size_t n)
{
  g_autofree float *values = g_new (float, n);
  hfam_st_to_f32 (t, values);
  for (size_t i = 0; i < n; i++)
    assert_same_float (values[i], expected[i]);
}

void
check_valid_tensors (HfamSafetensors *st)
{
  g_autoptr (GError) error = NULL;
  float half_values[G_N_ELEMENTS (halves)];
  for (size_t i = 0; i < G_N_ELEMENTS (halves); i++)
    half_values[i] = halves[i].value;

  const HfamStTensor *t = hfam_st_take (st, "head.weight", 1, half_shape, &error);
  g_assert_no_error (error);
  g_assert_cmpint (t->dtype, ==, HFAM_DTYPE_F16);
  g_assert_cmpuint (t->n_bytes, ==, 2 * G_N_ELEMENTS (halves));
  assert_tensor_values (t, half_values, G_N_ELEMENTS (halves));

  t = hfam_st_take (st, "encoder.conv1.weight", 4, weight_shape, &error);
  g_assert_no_error (error);
  g_assert_cmpint (t->dtype, ==, HFAM_DTYPE_F32);
  g_assert_cmpuint ((guintptr) t->data % 4, !=, 0); /* the unaligned case is exercised */
  assert_tensor_values (t, conv_weight, G_N_ELEMENTS (conv_weight));

  t = hfam_st_take (st, "encoder.conv1.bias", 1, bias_shape, &error);
  g_assert_no_error (error);
  assert_tensor_values (t, conv_bias, G_N_ELEMENTS (conv_bias));

  t = hfam_st_take (st, "head.scale", 0, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (t->n_dims, ==, 0);
  assert_tensor_values (t, &scale, 1);
}

static void
test_open_valid (void)
{
  g_autofree char *path = write_valid ();
  g_autoptr (GError) error = NULL;
  HfamSafetensors *st = hfam_st_open (path, &error);
  g_assert_no_error (error);
  g_assert_nonnull (st);

  g_assert_cmpstr (hfam_st_path (st), ==, path);
  g_assert_cmpstr (hfam_st_metadata (st, "encoder_depth"), ==, "50");
  g_assert_null (hfam_st_metadata (st, "no_such_key"));
  g_assert_cmpuint (hfam_st_n_tensors (st), ==, 4);
  g_assert_cmpstr (hfam_st_tensor_at (st, 1)->name, ==, "encoder.conv1.weight");
  g_assert_true (hfam_st_find (st, "head.scale") == hfam_st_tensor_at (st, 3));
  g_assert_null (hfam_st_find (st, "__metadata__"));

  check_valid_tensors (st);
  g_assert_true (hfam_st_check_all_taken (st, &error));
  g_assert_no_error (error);

  hfam_st_close (st);
}

/* A header with no tensors is valid safetensors. */
static void
test_open_empty (void)
{
  static const char text[] = "{}";
  g_autoptr (GByteArray) file = assemble (2, text, 2, NULL);
  g_autofree char *path = write_raw (file->data, file->len);
  g_autoptr (GError) error = NULL;
  HfamSafetensors *st = hfam_st_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (hfam_st_n_tensors (st), ==, 0);
  g_assert_null (hfam_st_metadata (st, "format"));
  g_assert_true (hfam_st_check_all_taken (st, &error));
  hfam_st_close (st);
}

/* Every half value against an independent formula: (-1)^s * m * 2^(e-25) for normals. */
static void
test_f16_exhaustive (void)
{
  g_autofree uint8_t *bytes = g_new (uint8_t, 2 * 65536);
  for (guint h = 0; h < 65536; h++) {
    bytes[2 * h] = (uint8_t) (h & 0xff);
    bytes[2 * h + 1] = (uint8_t) (h >> 8);
  }
  HfamStTensor t = { .name = "all", .dtype = HFAM_DTYPE_F16, .n_dims = 1,
                     .shape = { 65536 }, .data = bytes, .n_bytes = 2 * 65536 };
  g_autofree float *values = g_new (float, 65536);
  hfam_st_to_f32 (&t, values);
  for (guint h = 0; h < 65536; h++) {
    int exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
    float expected;
    if (exponent == 0x1f)
      expected = mantissa ? NAN : INFINITY;
    else if (exponent == 0)
      expected = ldexpf ((float) mantissa, -24);
    else
      expected = ldexpf ((float) (mantissa | 0x400), exponent - 25);
    assert_same_float (values[h], (h & 0x8000) ? -expected : expected);
    if (exponent == 0x1f && mantissa != 0)
      g_assert_true (!signbit (values[h]) == !(h & 0x8000));
  }
}

/* --- corruptions of the JSON header --- */

static JsonObject *
entry (JsonObject *header, const char *tensor)
{
  return json_object_get_object_member (header, tensor);
}

static void
set_ints (JsonObject *object, const char *member, const int64_t *values, int n)
{
  JsonArray *array = json_array_sized_new ((guint) n);
  for (int i = 0; i < n; i++)
    json_array_add_int_element (array, values[i]);
  json_object_set_array_member (object, member, array);
}

static void
set_offsets (JsonObject *header, const char *tensor, int64_t begin, int64_t end)
{
  const int64_t offsets[] = { begin, end };
  set_ints (entry (header, tensor), "data_offsets", offsets, 2);
}

static void
corrupt_unknown_dtype (JsonObject *h)
{
  json_object_set_string_member (entry (h, "encoder.conv1.bias"), "dtype", "BF16");
}

static void
corrupt_dtype_not_string (JsonObject *h)
{
  json_object_set_int_member (entry (h, "encoder.conv1.bias"), "dtype", 32);
}

static void
corrupt_offsets_past_end (JsonObject *h)
{
  set_offsets (h, "head.scale", SCALE_BEGIN + 100, DATA_SIZE + 100);
}

static void
corrupt_begin_after_end (JsonObject *h)
{
  set_offsets (h, "encoder.conv1.bias", SCALE_BEGIN, BIAS_BEGIN);
}

static void
corrupt_overlap (JsonObject *h)
{
  /* Same size, shifted into the weight's range. */
  set_offsets (h, "encoder.conv1.bias", BIAS_BEGIN - 4, SCALE_BEGIN - 4);
}

static void
corrupt_size_mismatch (JsonObject *h)
{
  const int64_t shape[] = { 3 };
  set_ints (entry (h, "encoder.conv1.bias"), "shape", shape, 1);
}

static void
corrupt_size_overflow (JsonObject *h)
{
  /* 2^31 * 2^31 * 2^2 elements * 4 bytes wraps to 0 in 64 bits. */
  const int64_t shape[] = { INT64_C (1) << 31, INT64_C (1) << 31, 4 };
  set_ints (entry (h, "encoder.conv1.bias"), "shape", shape, 3);
  set_offsets (h, "encoder.conv1.bias", BIAS_BEGIN, BIAS_BEGIN);
}

static void
corrupt_negative_dim (JsonObject *h)
{
  const int64_t shape[] = { -2 };
  set_ints (entry (h, "encoder.conv1.bias"), "shape", shape, 1);
}

static void
corrupt_too_many_dims (JsonObject *h)
{
  const int64_t shape[HFAM_ST_MAX_DIMS + 1] = { 2, 1, 1, 1, 1, 1, 1, 1, 1 };
  set_ints (entry (h, "encoder.conv1.bias"), "shape", shape, HFAM_ST_MAX_DIMS + 1);
}

static void
corrupt_shape_not_array (JsonObject *h)
{
  json_object_set_string_member (entry (h, "encoder.conv1.bias"), "shape", "2");
}

static void
corrupt_offsets_not_pair (JsonObject *h)
{
  const int64_t offsets[] = { BIAS_BEGIN };
  set_ints (entry (h, "encoder.conv1.bias"), "data_offsets", offsets, 1);
}

static void
corrupt_offsets_float (JsonObject *h)
{
  JsonArray *offsets = json_array_new ();
  json_array_add_double_element (offsets, BIAS_BEGIN);
  json_array_add_double_element (offsets, SCALE_BEGIN);
  json_object_set_array_member (entry (h, "encoder.conv1.bias"), "data_offsets", offsets);
}

static void
corrupt_entry_not_object (JsonObject *h)
{
  json_object_set_string_member (h, "encoder.conv1.bias", "F32");
}

static void
corrupt_metadata_not_object (JsonObject *h)
{
  json_object_set_array_member (h, "__metadata__", json_array_new ());
}

static void
corrupt_metadata_not_string (JsonObject *h)
{
  json_object_set_int_member (json_object_get_object_member (h, "__metadata__"),
                              "encoder_depth", 50);
}

typedef struct {
  const char *name;
  void (*corrupt) (JsonObject *header);
  const char *fragment; /* proves the right check fired */
} HeaderCase;

static const HeaderCase header_cases[] = {
  { "unknown-dtype", corrupt_unknown_dtype,
    "tensor 'encoder.conv1.bias': unknown dtype 'BF16'" },
  { "dtype-not-string", corrupt_dtype_not_string,
    "tensor 'encoder.conv1.bias': dtype is not a string" },
  { "offsets-past-end", corrupt_offsets_past_end,
    "tensor 'head.scale': data_offsets [154, 158] end past the data section (58 bytes)" },
  { "begin-after-end", corrupt_begin_after_end,
    "tensor 'encoder.conv1.bias': data_offsets [54, 46] begin after end" },
  { "overlap", corrupt_overlap,
    "tensor 'encoder.conv1.bias': data_offsets [42, 50] overlap tensor "
    "'encoder.conv1.weight' [22, 46]" },
  { "size-mismatch", corrupt_size_mismatch,
    "tensor 'encoder.conv1.bias': shape [3] of F32 needs 12 bytes but data_offsets "
    "[46, 54] hold 8" },
  { "size-overflow", corrupt_size_overflow, "needs more than 2^64 bytes" },
  { "negative-dim", corrupt_negative_dim,
    "tensor 'encoder.conv1.bias': shape dimension 0 is not a non-negative integer" },
  { "too-many-dims", corrupt_too_many_dims, "shape has 9 dimensions, at most 8" },
  { "shape-not-array", corrupt_shape_not_array, "shape is not an array" },
  { "offsets-not-pair", corrupt_offsets_not_pair,
    "data_offsets is not two non-negative integers" },
  { "offsets-float", corrupt_offsets_float, "data_offsets is not two non-negative integers" },
  { "entry-not-object", corrupt_entry_not_object,
    "tensor 'encoder.conv1.bias': entry is not an object" },
  { "metadata-not-object", corrupt_metadata_not_object, "__metadata__ is not an object" },
  { "metadata-not-string", corrupt_metadata_not_string,
    "__metadata__ value of 'encoder_depth' is not a string" },
};

static void
test_reject_header (gconstpointer data)
{
  const HeaderCase *c = data;
  g_autoptr (JsonNode) header = valid_header ();
  c->corrupt (json_node_get_object (header));
  g_autofree char *path = write_weights (header);
  assert_open_fails (path, HFAM_ERROR_FORMAT, c->fragment);
}

/* --- corruptions of the bytes around the header --- */

static void
test_truncated_data (void)
{
  g_autoptr (JsonNode) header = valid_header ();
  g_autoptr (GByteArray) data = valid_data ();
  g_autoptr (GByteArray) file = serialise (header, data);
  g_autofree char *path = write_raw (file->data, file->len - 3);
  assert_open_fails (path, HFAM_ERROR_FORMAT,
                     "tensor 'head.scale': data_offsets [54, 58] end past the data section "
                     "(55 bytes)");
}

static void
test_truncated_header (void)
{
  g_autoptr (JsonNode) header = valid_header ();
  g_autoptr (GByteArray) data = valid_data ();
  g_autoptr (GByteArray) file = serialise (header, data);
  guint length = file->len - (guint) DATA_SIZE - 8;
  g_autofree char *path = write_raw (file->data, 8 + length / 2);
  g_autofree char *fragment = g_strdup_printf ("header length %u goes past the end of the file",
                                               length);
  assert_open_fails (path, HFAM_ERROR_FORMAT, fragment);
}

static void
test_bad_json (void)
{
  static const char text[] = "{\"head.weight\": {\"dtype\": ";
  g_autoptr (GByteArray) file = assemble (sizeof text - 1, text, sizeof text - 1, NULL);
  g_autofree char *path = write_raw (file->data, file->len);
  assert_open_fails (path, HFAM_ERROR_FORMAT, "header is not valid JSON: <data>:1:");
}

static void
test_duplicate_tensor (void)
{
  /* JsonBuilder cannot write a duplicate, so the header is spelt out. */
  static const char text[] =
    "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, "
    "\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}";
  static const guint8 zeros[8] = { 0 };
  g_autoptr (GByteArray) data = g_byte_array_append (g_byte_array_new (), zeros, sizeof zeros);
  g_autoptr (GByteArray) file = assemble (sizeof text - 1, text, sizeof text - 1, data);
  g_autofree char *path = write_raw (file->data, file->len);
  assert_open_fails (path, HFAM_ERROR_FORMAT, "header has the member 'a' more than once");
}

static void
test_root_not_object (void)
{
  static const char text[] = "[1, 2]";
  g_autoptr (GByteArray) file = assemble (sizeof text - 1, text, sizeof text - 1, NULL);
  g_autofree char *path = write_raw (file->data, file->len);
  assert_open_fails (path, HFAM_ERROR_FORMAT, "header is not a JSON object");
}

static void
test_absurd_header_length (void)
{
  static const char text[] = "{}";
  g_autoptr (GByteArray) file = assemble (G_GUINT64_CONSTANT (1) << 60, text, 2, NULL);
  g_autofree char *path = write_raw (file->data, file->len);
  assert_open_fails (path, HFAM_ERROR_FORMAT, "header length 1152921504606846976 is absurd");
}

static void
test_zero_header_length (void)
{
  static const char text[] = "{}";
  g_autoptr (GByteArray) file = assemble (0, text, 2, NULL);
  g_autofree char *path = write_raw (file->data, file->len);
  assert_open_fails (path, HFAM_ERROR_FORMAT, "header length is 0");
}

static void
test_short_file (void)
{
  g_autofree char *path = write_raw ("\x02\0\0\0\0", 5);
  assert_open_fails (path, HFAM_ERROR_FORMAT, "file is 5 bytes, too short");
}

static void
test_empty_file (void)
{
  g_autofree char *path = write_raw ("", 0);
  assert_open_fails (path, HFAM_ERROR_FORMAT, "file is 0 bytes, too short");
}

static void
test_missing_file (void)
{
  g_autofree char *path = test_file_path (); /* never written */
  assert_open_fails (path, HFAM_ERROR_IO, "cannot open: ");
}

static void
test_directory (void)
{
  assert_open_fails (tmp_dir, HFAM_ERROR_IO, "not a regular file");
}

/* --- what hfam_st_take() and hfam_st_check_all_taken() refuse --- */

static HfamSafetensors *
open_valid (char **path)
{
  *path = write_valid ();
  g_autoptr (GError) error = NULL;
  HfamSafetensors *st = hfam_st_open (*path, &error);
  g_assert_no_error (error);
  return st;
}

static void
test_take_wrong_shape (void)
{
  g_autofree char *path = NULL;
  HfamSafetensors *st = open_valid (&path);
  g_autoptr (GError) error = NULL;
  const int64_t expected[] = { 2, 3, 7, 7 };
  g_assert_null (hfam_st_take (st, "encoder.conv1.weight", 4, expected, &error));
  assert_error (error, path, HFAM_ERROR_FORMAT,
                "tensor 'encoder.conv1.weight' has shape [2, 3, 1, 1], expected [2, 3, 7, 7]");
  g_clear_error (&error);

  const int64_t fewer_dims[] = { 2, 3 };
  g_assert_null (hfam_st_take (st, "encoder.conv1.weight", 2, fewer_dims, &error));
  assert_error (error, path, HFAM_ERROR_FORMAT, "has shape [2, 3, 1, 1], expected [2, 3]");
  hfam_st_close (st);
}

static void
test_take_missing (void)
{
  g_autofree char *path = NULL;
  HfamSafetensors *st = open_valid (&path);
  g_autoptr (GError) error = NULL;
  g_assert_null (hfam_st_take (st, "encoder.conv2.weight", 4, weight_shape, &error));
  assert_error (error, path, HFAM_ERROR_FORMAT, "tensor 'encoder.conv2.weight' is missing");
  hfam_st_close (st);
}

static void
test_take_wrong_dtype (void)
{
  g_autoptr (JsonNode) header = valid_header ();
  JsonObject *bias = entry (json_node_get_object (header), "encoder.conv1.bias");
  json_object_set_string_member (bias, "dtype", "U8");
  const int64_t one_per_byte[] = { sizeof conv_bias };
  set_ints (bias, "shape", one_per_byte, 1);
  g_autofree char *path = write_weights (header);

  g_autoptr (GError) error = NULL;
  HfamSafetensors *st = hfam_st_open (path, &error);
  g_assert_no_error (error);
  const HfamStTensor *t = hfam_st_find (st, "encoder.conv1.bias");
  g_assert_cmpint (t->dtype, ==, HFAM_DTYPE_U8);
  float values[8];
  hfam_st_to_f32 (t, values);
  for (int i = 0; i < 8; i++)
    g_assert_cmpfloat (values[i], ==, ((const uint8_t *) t->data)[i]);

  g_assert_null (hfam_st_take (st, "encoder.conv1.bias", 1, bias_shape, &error));
  assert_error (error, path, HFAM_ERROR_FORMAT,
                "tensor 'encoder.conv1.bias' has dtype U8, expected F32, F16 or I8");
  hfam_st_close (st);
}

static void
test_extra_tensor (void)
{
  g_autofree char *path = NULL;
  HfamSafetensors *st = open_valid (&path);
  g_autoptr (GError) error = NULL;
  g_assert_nonnull (hfam_st_take (st, "head.weight", 1, half_shape, &error));
  g_assert_nonnull (hfam_st_take (st, "encoder.conv1.weight", 4, weight_shape, &error));
  g_assert_nonnull (hfam_st_take (st, "head.scale", 0, NULL, &error));
  g_assert_no_error (error);
  g_assert_false (hfam_st_check_all_taken (st, &error));
  assert_error (error, path, HFAM_ERROR_FORMAT, "unexpected tensor 'encoder.conv1.bias'");
  hfam_st_close (st);
}

/* --- I8 tensors: "w" [2, 3] with its scale "w.scale" --- */

static const int8_t i8_values[6] = { 1, -2, 3, 127, -127, 0 };

typedef struct {
  const char *scale_dtype;  /* NULL: no "w.scale" */
  int64_t scale_length;
  float scale[3];
  gboolean extra;           /* an F32 "v" with a "v.scale" that nothing asks for */
} I8File;

static char *
write_i8 (const I8File *f)
{
  static const int64_t w_shape[] = { 2, 3 }, v_shape[] = { 1 };
  g_autoptr (JsonBuilder) b = json_builder_new ();
  g_autoptr (GByteArray) data = g_byte_array_new ();
  g_autoptr (JsonNode) header = NULL;
  g_autoptr (GByteArray) file = NULL;
  const int element = !f->scale_dtype ? 0 : strcmp (f->scale_dtype, "F16") == 0 ? 2
                      : strcmp (f->scale_dtype, "U8") == 0 ? 1 : 4;
  const int64_t scale_bytes = f->scale_length * element;

  json_builder_begin_object (b);
  append_le32 (data, f->scale, (size_t) f->scale_length); /* cut to the scale's own size */
  if (f->scale_dtype)
    add_tensor (b, "w.scale", f->scale_dtype, &f->scale_length, 1, 0, scale_bytes);
  g_byte_array_set_size (data, (guint) scale_bytes);
  if (f->extra) {
    const float one = 1.0f;
    add_tensor (b, "v", "F32", v_shape, 1, data->len, data->len + 4);
    add_tensor (b, "v.scale", "F32", v_shape, 1, data->len + 4, data->len + 8);
    append_le32 (data, &one, 1);
    append_le32 (data, &one, 1);
  }
  add_tensor (b, "w", "I8", w_shape, 2, data->len, data->len + sizeof i8_values);
  g_byte_array_append (data, (const guint8 *) i8_values, sizeof i8_values);
  json_builder_end_object (b);
  header = json_builder_get_root (b);
  file = serialise (header, data);
  return write_raw (file->data, file->len);
}

/* Opens the file and takes "w" ([2, 3]); NULL with `error` set when the take fails. */
static const HfamStTensor *
take_i8 (const I8File *f, HfamSafetensors **st, char **path, GError **error)
{
  static const int64_t w_shape[] = { 2, 3 };
  *path = write_i8 (f);
  *st = hfam_st_open (*path, error);
  g_assert_no_error (*error);
  return hfam_st_take (*st, "w", 2, w_shape, error);
}

static void
test_i8_valid (void)
{
  const I8File f = { "F32", 2, { 0.5f, 2.0f }, FALSE };
  const float expected[6] = { 0.5f, -1.0f, 1.5f, 254.0f, -254.0f, 0.0f };
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;
  HfamSafetensors *st = NULL;
  const HfamStTensor *t = take_i8 (&f, &st, &path, &error);

  g_assert_no_error (error);
  g_assert_cmpint (t->dtype, ==, HFAM_DTYPE_I8);
  assert_tensor_values (t, expected, G_N_ELEMENTS (expected));
  g_assert_true (hfam_st_check_all_taken (st, &error));  /* the scale counts as taken */
  hfam_st_close (st);
}

static void
test_i8_reject (void)
{
  static const struct {
    I8File file;
    const char *message;
  } cases[] = {
    { { NULL, 2, { 0 }, FALSE }, "tensor 'w' is I8 but its scale 'w.scale' is missing" },
    { { "F32", 3, { 1, 1, 1 }, FALSE }, "tensor 'w.scale' is F32 [3], expected F32 or F16 [2]" },
    { { "U8", 2, { 1, 1 }, FALSE }, "tensor 'w.scale' is U8 [2], expected F32 or F16 [2]" },
    { { "F32", 2, { 1, INFINITY }, FALSE }, "tensor 'w.scale': value 1 is not finite" },
    { { "F32", 2, { NAN, 1 }, FALSE }, "tensor 'w.scale': value 0 is not finite" },
    /* finite factors, an infinite product: 127 * 1e37 */
    { { "F32", 2, { 1, 1e37f }, FALSE }, "tensor 'w': value 3 is not finite (inf)" },
  };
  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autoptr (GError) error = NULL;
    g_autofree char *path = NULL;
    HfamSafetensors *st = NULL;
    g_assert_null (take_i8 (&cases[i].file, &st, &path, &error));
    assert_error (error, path, HFAM_ERROR_FORMAT, cases[i].message);
    hfam_st_close (st);
  }
}

static void
test_i8_stray_scale (void)
{
  static const int64_t v_shape[] = { 1 };
  const I8File f = { "F32", 2, { 0.5f, 2.0f }, TRUE };
  g_autoptr (GError) error = NULL;
  g_autofree char *path = NULL;
  HfamSafetensors *st = NULL;

  g_assert_nonnull (take_i8 (&f, &st, &path, &error));
  g_assert_nonnull (hfam_st_take (st, "v", 1, v_shape, &error));
  g_assert_false (hfam_st_check_all_taken (st, &error));
  assert_error (error, path, HFAM_ERROR_FORMAT, "unexpected tensor 'v.scale'");
  hfam_st_close (st);
}

/* --- random damage: whatever open() accepts must be safe to read --- */

/* Mostly digits of the header, which keep the JSON parseable and so reach the size, range
 * and overlap checks; also any byte, and truncation. Reproducible with --seed. */
static void
damage (GByteArray *file, gsize header_end)
{
  if (header_end <= 8)
    return; /* already cut to pieces */
  switch (g_test_rand_int_range (0, 3)) {
    case 0:
      for (int tries = 0; tries < 100; tries++) {
        guint at = (guint) g_test_rand_int_range (8, (gint32) header_end);
        if (g_ascii_isdigit (file->data[at])) {
          file->data[at] = (guint8) ('0' + g_test_rand_int_range (0, 10));
          return;
        }
      }
      break;
    case 1:
      file->data[g_test_rand_int_range (0, (gint32) file->len)] =
        (guint8) g_test_rand_int_range (0, 256);
      break;
    default:
      g_byte_array_set_size (file, (guint) g_test_rand_int_range (0, (gint32) file->len));
      break;
  }
}

static void
test_random_damage (void)
{
  g_autoptr (JsonNode) header = valid_header ();
  g_autoptr (GByteArray) data = valid_data ();
  g_autoptr (GByteArray) valid = serialise (header, data);
  gsize header_end = valid->len - DATA_SIZE;
  guint n_opened = 0;

  for (int i = 0; i < 400; i++) {
    g_autoptr (GByteArray) file = g_byte_array_new ();
    g_byte_array_append (file, valid->data, valid->len);
    for (int n = g_test_rand_int_range (1, 4); n > 0; n--)
      damage (file, MIN (header_end, file->len));
    g_autofree char *path = write_raw (file->data, file->len);

    g_autoptr (GError) error = NULL;
    HfamSafetensors *st = hfam_st_open (path, &error);
    if (st == NULL) {
      g_assert_true (g_str_has_prefix (error->message, path));
      continue;
    }
    n_opened++;
    for (guint t = 0; t < hfam_st_n_tensors (st); t++) {
      const HfamStTensor *tensor = hfam_st_tensor_at (st, t);
      g_autofree float *values = g_new (float, tensor->n_bytes + 1);
      hfam_st_to_f32 (tensor, values);
    }
    HfamHparams hp;
    hfam_hparams_read (st, &hp, NULL);
    hfam_st_close (st);
  }
  g_test_message ("%u of 400 damaged files opened", n_opened);
}

/* Clean up even files left by a failing test. */
static void
remove_tmp_dir (void)
{
  g_autoptr (GDir) dir = g_dir_open (tmp_dir, 0, NULL);
  const char *name;
  while (dir != NULL && (name = g_dir_read_name (dir)) != NULL) {
    g_autofree char *path = g_build_filename (tmp_dir, name, NULL);
    g_unlink (path);
  }
  g_rmdir (tmp_dir);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_autoptr (GError) error = NULL;
  tmp_dir = g_dir_make_tmp ("hfam-loader-XXXXXX", &error);
  g_assert_no_error (error);

  g_test_add_func ("/loader/open/valid", test_open_valid);
  g_test_add_func ("/loader/open/empty", test_open_empty);
  g_test_add_func ("/loader/f16/exhaustive", test_f16_exhaustive);
  for (size_t i = 0; i < G_N_ELEMENTS (header_cases); i++) {
    g_autofree char *name = g_strconcat ("/loader/reject/", header_cases[i].name, NULL);
    g_test_add_data_func (name, &header_cases[i], test_reject_header);
  }
  g_test_add_func ("/loader/reject/truncated-data", test_truncated_data);
  g_test_add_func ("/loader/reject/truncated-header", test_truncated_header);
  g_test_add_func ("/loader/reject/bad-json", test_bad_json);
  g_test_add_func ("/loader/reject/duplicate-tensor", test_duplicate_tensor);
  g_test_add_func ("/loader/reject/root-not-object", test_root_not_object);
  g_test_add_func ("/loader/reject/absurd-header-length", test_absurd_header_length);
  g_test_add_func ("/loader/reject/zero-header-length", test_zero_header_length);
  g_test_add_func ("/loader/reject/short-file", test_short_file);
  g_test_add_func ("/loader/reject/empty-file", test_empty_file);
  g_test_add_func ("/loader/reject/missing-file", test_missing_file);
  g_test_add_func ("/loader/reject/directory", test_directory);
  g_test_add_func ("/loader/take/wrong-shape", test_take_wrong_shape);
  g_test_add_func ("/loader/take/missing", test_take_missing);
  g_test_add_func ("/loader/take/wrong-dtype", test_take_wrong_dtype);
  g_test_add_func ("/loader/take/extra-tensor", test_extra_tensor);
  g_test_add_func ("/loader/i8/valid", test_i8_valid);
  g_test_add_func ("/loader/i8/reject", test_i8_reject);
  g_test_add_func ("/loader/i8/stray-scale", test_i8_stray_scale);
  g_test_add_func ("/loader/random-damage", test_random_damage);
  loader_add_hparams_tests ();
  loader_add_hostile_tests ();

  int status = g_test_run ();
  remove_tmp_dir ();
  g_free (tmp_dir);
  return status;
}
