/* Tests of weight files written to hurt (issue 15): headers nested to overflow the stack, a
 * file changed on disk after it was validated, data sections the tensors do not exactly cover,
 * weights that are not finite, and the same bytes opened from memory. */
#include "loader-test.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

/* --- headers nested deeper than the format needs --- */

/* `prefix` `depth` times, `middle`, `suffix` `depth` times, after `head`, before `tail`. */
static char *
nested_header (const char *head, const char *prefix, guint depth, const char *middle,
               const char *suffix, const char *tail)
{
  GString *text = g_string_new (head);
  for (guint i = 0; i < depth; i++)
    g_string_append (text, prefix);
  g_string_append (text, middle);
  for (guint i = 0; i < depth; i++)
    g_string_append (text, suffix);
  g_string_append (text, tail);
  return g_string_free (text, FALSE);
}

static void
assert_nesting_refused (const char *header)
{
  const gsize length = strlen (header);
  g_autoptr (GByteArray) file = assemble (length, header, length, NULL);
  g_autofree char *path = write_raw (file->data, file->len);
  assert_open_fails (path, HFAM_ERROR_FORMAT, "header nests arrays and objects more than 8 deep");
}

/* Each of these overflowed the stack inside json-glib, which recurses once per level. */
static void
test_nested_arrays (void)
{
  g_autofree char *header = nested_header ("{\"a\": ", "[", 100000, "", "]", "}");
  assert_nesting_refused (header);
}

/* Left open: 200,000 levels fit in the 1 MiB a header may have, and json-glib recursed as it
 * read them. A million levels, the first form found, are past that limit. */
static void
test_nested_objects (void)
{
  g_autofree char *header = nested_header ("", "{\"\":", 200000, "", "", "");
  assert_nesting_refused (header);

  g_autofree char *longer = nested_header ("", "{\"\":", 1000000, "1", "}", "");
  const gsize length = strlen (longer);
  g_autoptr (GByteArray) file = assemble (length, longer, length, NULL);
  g_autofree char *path = write_raw (file->data, file->len);
  assert_open_fails (path, HFAM_ERROR_FORMAT,
                     "header length 5000001 is absurd (limit 1048576 bytes)");
}

/* 64 MiB of [0,0,0,...] took 2.7 GB inside json-glib before the shape was refused. */
static void
test_header_too_long (void)
{
  g_autoptr (GString) header = g_string_new ("{\"a\": {\"dtype\": \"F32\", \"shape\": [0");
  while (header->len <= 1 << 20)
    g_string_append (header, ",0");
  g_string_append (header, "]}}");
  g_autoptr (GByteArray) file = assemble (header->len, header->str, header->len, NULL);
  g_autofree char *path = write_raw (file->data, file->len);
  g_autofree char *fragment = g_strdup_printf ("header length %" G_GSIZE_FORMAT " is absurd "
                                               "(limit 1048576 bytes)", header->len);
  assert_open_fails (path, HFAM_ERROR_FORMAT, fragment);
}

static void
test_nested_in_metadata (void)
{
  g_autofree char *header = nested_header ("{\"__metadata__\": {\"k\": ", "[", 90000, "",
                                           "]", "}}");
  assert_nesting_refused (header);
}

/* Nine levels, one more than allowed, at the end of an otherwise plain header. */
static void
test_nested_just_too_deep (void)
{
  g_autofree char *header = nested_header ("{\"__metadata__\": {}, \"a\": ", "[", 8, "",
                                           "]", "}");
  assert_nesting_refused (header);
}

/* json-glib also reads single-quoted strings and comments, where a double quote would make
 * the count skip the brackets after it: refused, deep or not. */
static void
test_quote_outside_string (void)
{
  static const struct {
    const char *head, *fragment;
  } cases[] = {
    { "{\"a\": ['\"', ", "'\'' outside a string (byte 7 of the header)" },
    { "{\"a\" /* \" */: ", "'/' outside a string (byte 5 of the header)" },
    { "{\"a\": # \"\n", "'#' outside a string (byte 6 of the header)" },
  };
  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++) {
    g_autofree char *header = nested_header (cases[i].head, "[", 100000, "", "]", "]}");
    const gsize length = strlen (header);
    g_autoptr (GByteArray) file = assemble (length, header, length, NULL);
    g_autofree char *path = write_raw (file->data, file->len);
    assert_open_fails (path, HFAM_ERROR_FORMAT, cases[i].fragment);
  }
}

/* Brackets inside strings, after escaped quotes and backslashes, are text, not nesting. */
static void
test_nested_in_strings (void)
{
  g_autoptr (JsonNode) header = valid_header ();
  JsonObject *metadata = json_object_get_object_member (json_node_get_object (header),
                                                        "__metadata__");
  g_autofree char *brackets = nested_header ("\"\\", "[{", 1000, "", "", "\\\"");
  json_object_set_string_member (metadata, "note", brackets);
  g_autofree char *path = write_weights (header);
  g_autoptr (GError) error = NULL;
  HfamSafetensors *st = hfam_st_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (hfam_st_metadata (st, "note"), ==, brackets);
  hfam_st_close (st);
}

/* --- the file changes on disk after it was opened --- */

static void
write_in_place (const char *path, const void *bytes, gsize length)
{
  int fd = g_open (path, O_WRONLY, 0);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (ftruncate (fd, 0), ==, 0);
  g_assert_cmpint (pwrite (fd, bytes, length, 0), ==, (gssize) length);
  g_assert_cmpint (close (fd), ==, 0);
}

/* What was validated is what is read: neither a truncation (SIGBUS through a mapping) nor a
 * rewrite with other values (unvalidated weights) reaches the tensors. */
static void
test_changed_on_disk (void)
{
  g_autoptr (JsonNode) header = valid_header ();
  g_autoptr (GByteArray) data = valid_data ();
  g_autoptr (GByteArray) file = serialise (header, data);
  g_autofree char *path = write_raw (file->data, file->len);
  g_autoptr (GError) error = NULL;
  HfamSafetensors *st = hfam_st_open (path, &error);
  g_assert_no_error (error);

  write_in_place (path, "", 0);
  check_valid_tensors (st);

  memset (file->data + file->len - data->len, 0xff, data->len); /* every value a NaN */
  write_in_place (path, file->data, file->len);
  check_valid_tensors (st);
  hfam_st_close (st);
}

/* A file past the limit is refused before any of it is read (a sparse file: no disk used). */
static void
test_too_large (void)
{
  g_autofree char *path = write_raw ("", 0);
  int fd = g_open (path, O_WRONLY, 0);
  g_assert_cmpint (fd, >=, 0);
  g_assert_cmpint (ftruncate (fd, (off_t) HFAM_ST_MAX_FILE_SIZE + 1), ==, 0);
  g_assert_cmpint (close (fd), ==, 0);
  assert_open_fails (path, HFAM_ERROR_FORMAT,
                     "file is 1073741825 bytes, more than a weight file may hold (1073741824)");
}

/* --- tensors must cover the data section exactly --- */

static void
move_tensor (JsonObject *header, const char *name, gint64 by)
{
  JsonArray *offsets = json_object_get_array_member (json_object_get_object_member (header,
                                                                                    name),
                                                     "data_offsets");
  for (guint i = 0; i < 2; i++) {
    JsonNode *offset = json_array_get_element (offsets, i);
    json_node_set_int (offset, json_node_get_int (offset) + by);
  }
}

/* The header length 4 bytes short: the last 4 blanks of the header join the data section and
 * every tensor reads 4 bytes early. */
static void
test_header_length_short (void)
{
  g_autoptr (JsonNode) header = valid_header ();
  g_autoptr (JsonGenerator) generator = json_generator_new ();
  json_generator_set_root (generator, header);
  g_autofree char *json = json_generator_to_data (generator, NULL);
  g_autofree char *padded = g_strconcat (json, "    ", NULL);
  g_autoptr (GByteArray) data = valid_data ();
  g_autoptr (GByteArray) file = assemble (strlen (padded) - 4, padded, strlen (padded), data);
  g_autofree char *path = write_raw (file->data, file->len);
  g_autofree char *fragment = g_strdup_printf ("data section has 4 bytes after the last tensor "
                                               "('head.scale' ends at %u of %u)", data->len,
                                               data->len + 4);
  assert_open_fails (path, HFAM_ERROR_FORMAT, fragment);
}

static void
test_gap_between_tensors (void)
{
  g_autoptr (JsonNode) header = valid_header ();
  g_autoptr (GByteArray) data = valid_data ();
  move_tensor (json_node_get_object (header), "head.scale", 4);
  g_byte_array_append (data, (const guint8 *) "\0\0\0\0", 4);
  g_autoptr (GByteArray) file = serialise (header, data);
  g_autofree char *path = write_raw (file->data, file->len);
  assert_open_fails (path, HFAM_ERROR_FORMAT,
                     "tensor 'head.scale': data_offsets [58, 62] leave bytes 54..57 of the data "
                     "section unused, after tensor 'encoder.conv1.bias'");
}

static void
test_gap_at_start (void)
{
  g_autoptr (JsonNode) header = valid_header ();
  g_autoptr (GByteArray) data = valid_data ();
  JsonObject *object = json_node_get_object (header);
  g_autoptr (GList) names = json_object_get_members (object);
  for (GList *l = names; l != NULL; l = l->next)
    if (strcmp (l->data, "__metadata__") != 0)
      move_tensor (object, l->data, 2);
  g_byte_array_prepend (data, (const guint8 *) "\0\0", 2);
  g_autoptr (GByteArray) file = serialise (header, data);
  g_autofree char *path = write_raw (file->data, file->len);
  assert_open_fails (path, HFAM_ERROR_FORMAT,
                     "tensor 'head.weight': data_offsets [2, 24] leave bytes 0..1 of the data "
                     "section unused");
}

static void
test_trailing_bytes (void)
{
  g_autoptr (JsonNode) header = valid_header ();
  g_autoptr (GByteArray) data = valid_data ();
  g_autoptr (GByteArray) file = serialise (header, data);
  g_byte_array_append (file, (const guint8 *) "tail", 4);
  g_autofree char *path = write_raw (file->data, file->len);
  assert_open_fails (path, HFAM_ERROR_FORMAT,
                     "data section has 4 bytes after the last tensor ('head.scale' ends at 58 "
                     "of 62)");
}

static void
test_no_tensors_but_data (void)
{
  static const char text[] = "{}      ";
  static const guint8 stray[] = { 1, 2, 3 };
  g_autoptr (GByteArray) data = g_byte_array_append (g_byte_array_new (), stray, sizeof stray);
  g_autoptr (GByteArray) file = assemble (sizeof text - 1, text, sizeof text - 1, data);
  g_autofree char *path = write_raw (file->data, file->len);
  assert_open_fails (path, HFAM_ERROR_FORMAT, "data section has 3 bytes and no tensor");
}

/* Empty tensors hold no bytes: anywhere in the order they cover nothing and leave no gap. */
static void
test_empty_tensor_covers (void)
{
  static const char text[] =
    "{\"e\": {\"dtype\": \"F32\", \"shape\": [0, 5], \"data_offsets\": [4, 4]}, "
    "\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}, "
    "\"b\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [4, 6]}}";
  static const guint8 bytes[6] = { 0 };
  g_autoptr (GByteArray) data = g_byte_array_append (g_byte_array_new (), bytes, sizeof bytes);
  g_autoptr (GByteArray) file = assemble (sizeof text - 1, text, sizeof text - 1, data);
  g_autofree char *path = write_raw (file->data, file->len);
  g_autoptr (GError) error = NULL;
  HfamSafetensors *st = hfam_st_open (path, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (hfam_st_n_tensors (st), ==, 3);
  hfam_st_close (st);
}

/* --- weights that are not finite --- */

static void
set_float (GByteArray *data, guint at, float value)
{
  uint32_t bits;
  memcpy (&bits, &value, sizeof bits);
  bits = GUINT32_TO_LE (bits);
  memcpy (data->data + at, &bits, sizeof bits);
}

/* The valid file with one value changed: a 4-byte F32 at `at`, or a 2-byte F16 `half`. */
static char *
write_changed (guint at, float value, gboolean half, guint16 half_bits)
{
  g_autoptr (JsonNode) header = valid_header ();
  g_autoptr (GByteArray) data = valid_data ();
  if (half) {
    guint16 le = GUINT16_TO_LE (half_bits);
    memcpy (data->data + at, &le, sizeof le);
  } else {
    set_float (data, at, value);
  }
  g_autoptr (GByteArray) file = serialise (header, data);
  return write_raw (file->data, file->len);
}

static void
assert_take_fails (const char *path, const char *name, int n_dims, const int64_t *shape,
                   const char *fragment)
{
  g_autoptr (GError) error = NULL;
  HfamSafetensors *st = hfam_st_open (path, &error);
  g_assert_no_error (error);
  g_assert_null (hfam_st_take (st, name, n_dims, shape, &error));
  assert_error (error, path, HFAM_ERROR_FORMAT, fragment);
  hfam_st_close (st);
}

/* One infinity in encoder.conv1.bias made the whole matte 0; NaN, F16 and -inf alike. */
static void
test_non_finite (void)
{
  static const int64_t bias_shape[] = { 2 }, half_shape[] = { 11 };
  /* the valid file's data: 11 halves (22 bytes), then the weight (6 floats), the bias (2) */
  const guint bias = 22 + 6 * 4;
  g_autofree char *inf = write_changed (bias + 4, INFINITY, FALSE, 0);
  assert_take_fails (inf, "encoder.conv1.bias", 1, bias_shape,
                     "tensor 'encoder.conv1.bias': value 1 is not finite (inf)");
  g_autofree char *nan = write_changed (bias, NAN, FALSE, 0);
  assert_take_fails (nan, "encoder.conv1.bias", 1, bias_shape,
                     "tensor 'encoder.conv1.bias': value 0 is not finite (nan)");
  g_autofree char *half = write_changed (2 * 7, 0, TRUE, 0xfc00);
  assert_take_fails (half, "head.weight", 1, half_shape,
                     "tensor 'head.weight': value 7 is not finite (-inf)");
}

/* --- the same bytes from memory --- */

static void
test_open_bytes (void)
{
  g_autoptr (JsonNode) header = valid_header ();
  g_autoptr (GByteArray) data = valid_data ();
  g_autoptr (GByteArray) file = serialise (header, data);
  g_autoptr (GBytes) bytes = g_bytes_new (file->data, file->len);
  g_autoptr (GError) error = NULL;
  HfamSafetensors *st = hfam_st_open_bytes ("weights in memory", bytes, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (hfam_st_path (st), ==, "weights in memory");
  check_valid_tensors (st);
  hfam_st_close (st);

  g_autoptr (GBytes) cut = g_bytes_new (file->data, file->len - 1);
  g_assert_null (hfam_st_open_bytes ("weights in memory", cut, &error));
  assert_error (error, "weights in memory", HFAM_ERROR_FORMAT, "end past the data section");
}

void
loader_add_hostile_tests (void)
{
  g_test_add_func ("/loader/hostile/nested-arrays", test_nested_arrays);
  g_test_add_func ("/loader/hostile/nested-objects", test_nested_objects);
  g_test_add_func ("/loader/hostile/header-too-long", test_header_too_long);
  g_test_add_func ("/loader/hostile/nested-in-metadata", test_nested_in_metadata);
  g_test_add_func ("/loader/hostile/nested-just-too-deep", test_nested_just_too_deep);
  g_test_add_func ("/loader/hostile/nested-in-strings", test_nested_in_strings);
  g_test_add_func ("/loader/hostile/quote-outside-string", test_quote_outside_string);
  g_test_add_func ("/loader/hostile/changed-on-disk", test_changed_on_disk);
  g_test_add_func ("/loader/hostile/too-large", test_too_large);
  g_test_add_func ("/loader/hostile/header-length-short", test_header_length_short);
  g_test_add_func ("/loader/hostile/gap-between-tensors", test_gap_between_tensors);
  g_test_add_func ("/loader/hostile/gap-at-start", test_gap_at_start);
  g_test_add_func ("/loader/hostile/trailing-bytes", test_trailing_bytes);
  g_test_add_func ("/loader/hostile/no-tensors-but-data", test_no_tensors_but_data);
  g_test_add_func ("/loader/hostile/empty-tensor-covers", test_empty_tensor_covers);
  g_test_add_func ("/loader/hostile/non-finite", test_non_finite);
  g_test_add_func ("/loader/hostile/open-bytes", test_open_bytes);
}
