/* safetensors reader; the format and the checks are described in safetensors.h and
 * model/README.md. */
/* O_CLOEXEC is POSIX 2008, hidden by a strict -std=c11. */
#define _DEFAULT_SOURCE

#include "safetensors.h"

#include <hfam/hfam-types.h>

#include <errno.h>
#include <fcntl.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

G_DEFINE_QUARK (hfam-error-quark, hfam_error)

#define HEADER_LENGTH_BYTES 8
/* The default model's header is 33 kB, the paper's ResNet-101 would need about 50 kB. json-glib
 * holds some 40 bytes per byte of a hostile header (2.7 GB for 64 MiB of [0,0,0,...]), so the
 * limit is what bounds the parse's memory: 1 MiB, about 40 MB. */
#define MAX_HEADER_LENGTH (1u << 20)

struct _HfamSafetensors {
  char *path;
  GBytes *bytes;       /* the whole file, the reader's own copy */
  const uint8_t *file; /* its bytes */
  size_t file_size;
  const uint8_t *data; /* the data section, inside file */
  size_t data_size;
  HfamStTensor *tensors; /* in header order */
  guint n_tensors;
  GHashTable *by_name;   /* name -> HfamStTensor *, names owned by `names` */
  GHashTable *metadata;  /* key -> value, both owned */
  GStringChunk *names;
};

static const char *
dtype_name (HfamDtype dtype)
{
  switch (dtype) {
    case HFAM_DTYPE_F32: return "F32";
    case HFAM_DTYPE_F16: return "F16";
    case HFAM_DTYPE_I8: return "I8";
    case HFAM_DTYPE_U8: return "U8";
  }
  g_assert_not_reached ();
}

static size_t
dtype_size (HfamDtype dtype)
{
  switch (dtype) {
    case HFAM_DTYPE_F32: return 4;
    case HFAM_DTYPE_F16: return 2;
    case HFAM_DTYPE_I8:
    case HFAM_DTYPE_U8: return 1;
  }
  g_assert_not_reached ();
}

static gboolean
dtype_from_name (const char *name, HfamDtype *dtype)
{
  static const HfamDtype all[] = { HFAM_DTYPE_F32, HFAM_DTYPE_F16, HFAM_DTYPE_I8, HFAM_DTYPE_U8 };
  for (size_t i = 0; i < G_N_ELEMENTS (all); i++) {
    if (strcmp (name, dtype_name (all[i])) == 0) {
      *dtype = all[i];
      return TRUE;
    }
  }
  return FALSE;
}

/* "[64, 3, 7, 7]" */
static char *
shape_to_string (int n_dims, const int64_t *shape)
{
  GString *s = g_string_new ("[");
  for (int i = 0; i < n_dims; i++)
    g_string_append_printf (s, i ? ", %" G_GINT64_FORMAT : "%" G_GINT64_FORMAT, shape[i]);
  g_string_append_c (s, ']');
  return g_string_free (s, FALSE);
}

static gboolean
node_is_int (JsonNode *node)
{
  return JSON_NODE_HOLDS_VALUE (node) && json_node_get_value_type (node) == G_TYPE_INT64;
}

void
hfam_st_close (HfamSafetensors *st)
{
  if (st == NULL)
    return;
  g_clear_pointer (&st->bytes, g_bytes_unref);
  g_clear_pointer (&st->by_name, g_hash_table_unref);
  g_clear_pointer (&st->metadata, g_hash_table_unref);
  g_clear_pointer (&st->names, g_string_chunk_free);
  g_free (st->tensors);
  g_free (st->path);
  g_free (st);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (HfamSafetensors, hfam_st_close)

/* read() until `length` bytes are in or the file ends early. */
static gboolean
read_all (const char *path, int fd, uint8_t *buffer, size_t length, GError **error)
{
  size_t done = 0;
  while (done < length) {
    ssize_t n = read (fd, buffer + done, MIN (length - done, (size_t) G_MAXSSIZE));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      int err = errno;
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_IO, "%s: cannot read: %s", path,
                   g_strerror (err));
      return FALSE;
    }
    if (n == 0) {
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_IO,
                   "%s: file ended after %" G_GSIZE_FORMAT " of its %" G_GSIZE_FORMAT
                   " bytes (changed while read)", path, done, length);
      return FALSE;
    }
    done += (size_t) n;
  }
  return TRUE;
}

/* The whole file in memory of our own: a mapping would read the file again whenever the kernel
 * dropped a page, after validation (SIGBUS if it shrank, other values if it was rewritten). */
static GBytes *
read_file (const char *path, GError **error)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_IO, "%s: cannot open: %s", path,
                 g_strerror (err));
    return NULL;
  }
  struct stat info;
  if (fstat (fd, &info) != 0) {
    int err = errno;
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_IO, "%s: cannot stat: %s", path,
                 g_strerror (err));
    close (fd);
    return NULL;
  }
  if (!S_ISREG (info.st_mode)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_IO, "%s: not a regular file", path);
    close (fd);
    return NULL;
  }
  if ((guint64) info.st_size > HFAM_ST_MAX_FILE_SIZE) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                 "%s: file is %" G_GINT64_FORMAT " bytes, more than a weight file may hold (%"
                 G_GUINT64_FORMAT ")", path, (gint64) info.st_size, HFAM_ST_MAX_FILE_SIZE);
    close (fd);
    return NULL;
  }
  const size_t size = (size_t) info.st_size;
  uint8_t *buffer = g_try_malloc (MAX (size, 1));
  if (buffer == NULL) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_IO,
                 "%s: cannot read: no memory for its %" G_GSIZE_FORMAT " bytes", path, size);
    close (fd);
    return NULL;
  }
  gboolean ok = read_all (path, fd, buffer, size, error);
  close (fd);
  if (!ok) {
    g_free (buffer);
    return NULL;
  }
  return g_bytes_new_take (buffer, size);
}

/* Returns the header's length after checking it against the file and the 1 MiB limit. */
static gboolean
read_header_length (HfamSafetensors *st, size_t *length, GError **error)
{
  guint64 le;
  if (st->file_size < HEADER_LENGTH_BYTES) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                 "%s: file is %" G_GSIZE_FORMAT " bytes, too short for the 8-byte header "
                 "length", st->path, st->file_size);
    return FALSE;
  }
  memcpy (&le, st->file, sizeof le);
  guint64 n = GUINT64_FROM_LE (le);
  size_t available = st->file_size - HEADER_LENGTH_BYTES;
  if (n == 0) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT, "%s: header length is 0", st->path);
    return FALSE;
  }
  if (n > MAX_HEADER_LENGTH) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                 "%s: header length %" G_GUINT64_FORMAT " is absurd (limit %u bytes)",
                 st->path, n, MAX_HEADER_LENGTH);
    return FALSE;
  }
  if (n > available) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                 "%s: header length %" G_GUINT64_FORMAT " goes past the end of the file (%"
                 G_GSIZE_FORMAT " bytes after the length)", st->path, n, available);
    return FALSE;
  }
  *length = (size_t) n;
  return TRUE;
}

static gboolean
read_metadata (HfamSafetensors *st, JsonNode *node, GError **error)
{
  if (!JSON_NODE_HOLDS_OBJECT (node)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT, "%s: __metadata__ is not an object",
                 st->path);
    return FALSE;
  }
  JsonObject *object = json_node_get_object (node);
  g_autoptr (GList) keys = json_object_get_members (object);
  for (GList *l = keys; l != NULL; l = l->next) {
    const char *key = l->data;
    JsonNode *value = json_object_get_member (object, key);
    if (!JSON_NODE_HOLDS_VALUE (value) || json_node_get_value_type (value) != G_TYPE_STRING) {
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                   "%s: __metadata__ value of '%s' is not a string", st->path, key);
      return FALSE;
    }
    g_hash_table_insert (st->metadata, g_strdup (key), g_strdup (json_node_get_string (value)));
  }
  return TRUE;
}

static gboolean
read_shape (HfamSafetensors *st, HfamStTensor *t, JsonNode *node, GError **error)
{
  if (node == NULL || !JSON_NODE_HOLDS_ARRAY (node)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT, "%s: tensor '%s': shape is not an array",
                 st->path, t->name);
    return FALSE;
  }
  JsonArray *dims = json_node_get_array (node);
  guint n_dims = json_array_get_length (dims);
  if (n_dims > HFAM_ST_MAX_DIMS) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                 "%s: tensor '%s': shape has %u dimensions, at most %d supported", st->path,
                 t->name, n_dims, HFAM_ST_MAX_DIMS);
    return FALSE;
  }
  for (guint i = 0; i < n_dims; i++) {
    JsonNode *dim = json_array_get_element (dims, i);
    if (!node_is_int (dim) || json_node_get_int (dim) < 0) {
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                   "%s: tensor '%s': shape dimension %u is not a non-negative integer",
                   st->path, t->name, i);
      return FALSE;
    }
    t->shape[i] = json_node_get_int (dim);
  }
  t->n_dims = (int) n_dims;
  return TRUE;
}

/* Reads data_offsets and checks them against the data section and the element count. */
static gboolean
read_range (HfamSafetensors *st, HfamStTensor *t, JsonNode *node, guint64 *begin,
            guint64 *end, GError **error)
{
  JsonArray *pair = node != NULL && JSON_NODE_HOLDS_ARRAY (node) ? json_node_get_array (node)
                                                                 : NULL;
  if (pair == NULL || json_array_get_length (pair) != 2 ||
      !node_is_int (json_array_get_element (pair, 0)) ||
      !node_is_int (json_array_get_element (pair, 1)) ||
      json_array_get_int_element (pair, 0) < 0 || json_array_get_int_element (pair, 1) < 0) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                 "%s: tensor '%s': data_offsets is not two non-negative integers", st->path,
                 t->name);
    return FALSE;
  }
  *begin = (guint64) json_array_get_int_element (pair, 0);
  *end = (guint64) json_array_get_int_element (pair, 1);
  if (*begin > *end) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                 "%s: tensor '%s': data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                 "] begin after end", st->path, t->name, *begin, *end);
    return FALSE;
  }
  if (*end > st->data_size) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                 "%s: tensor '%s': data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                 "] end past the data section (%" G_GSIZE_FORMAT " bytes)", st->path, t->name,
                 *begin, *end, st->data_size);
    return FALSE;
  }

  /* The product may overflow for a hostile shape; any overflow is a mismatch anyway. */
  guint64 n_bytes = dtype_size (t->dtype);
  gboolean overflow = FALSE;
  for (int i = 0; i < t->n_dims && !overflow; i++)
    overflow = !g_uint64_checked_mul (&n_bytes, n_bytes, (guint64) t->shape[i]);
  if (overflow || n_bytes != *end - *begin) {
    g_autofree char *shape = shape_to_string (t->n_dims, t->shape);
    g_autofree char *needed = overflow ? g_strdup ("more than 2^64")
                                       : g_strdup_printf ("%" G_GUINT64_FORMAT, n_bytes);
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                 "%s: tensor '%s': shape %s of %s needs %s bytes but data_offsets [%"
                 G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT "] hold %" G_GUINT64_FORMAT, st->path,
                 t->name, shape, dtype_name (t->dtype), needed, *begin, *end, *end - *begin);
    return FALSE;
  }
  t->data = st->data + *begin;
  t->n_bytes = (size_t) n_bytes;
  return TRUE;
}

static gboolean
read_tensor (HfamSafetensors *st, HfamStTensor *t, JsonNode *node, guint64 *begin,
             guint64 *end, GError **error)
{
  if (!JSON_NODE_HOLDS_OBJECT (node)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT, "%s: tensor '%s': entry is not an object",
                 st->path, t->name);
    return FALSE;
  }
  JsonObject *entry = json_node_get_object (node);
  JsonNode *dtype = json_object_get_member (entry, "dtype");
  if (dtype == NULL || !JSON_NODE_HOLDS_VALUE (dtype) ||
      json_node_get_value_type (dtype) != G_TYPE_STRING) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT, "%s: tensor '%s': dtype is not a string",
                 st->path, t->name);
    return FALSE;
  }
  if (!dtype_from_name (json_node_get_string (dtype), &t->dtype)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                 "%s: tensor '%s': unknown dtype '%s' (expected F32, F16, I8 or U8)", st->path,
                 t->name, json_node_get_string (dtype));
    return FALSE;
  }
  return read_shape (st, t, json_object_get_member (entry, "shape"), error) &&
         read_range (st, t, json_object_get_member (entry, "data_offsets"), begin, end, error);
}

typedef struct {
  guint64 begin, end;
  const HfamStTensor *tensor;
} Range;

static int
compare_ranges (gconstpointer a, gconstpointer b)
{
  const Range *ra = a, *rb = b;
  if (ra->begin != rb->begin)
    return ra->begin < rb->begin ? -1 : 1;
  return ra->end < rb->end ? -1 : ra->end > rb->end;
}

/* The format's rule: sorted by begin, each range begins where the one before ended, from 0
 * to the end of the data section. Empty ranges hold no bytes: they can sit anywhere. */
static gboolean
check_coverage (HfamSafetensors *st, Range *ranges, guint n, GError **error)
{
  if (n > 1)
    qsort (ranges, n, sizeof *ranges, compare_ranges);
  const Range *previous = NULL;
  guint64 covered = 0; /* bytes 0..covered-1 belong to the ranges seen so far */
  for (guint i = 0; i < n; i++) {
    const Range *r = &ranges[i];
    if (r->begin == r->end)
      continue;
    if (r->begin < covered) {
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                   "%s: tensor '%s': data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                   "] overlap tensor '%s' [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT "]",
                   st->path, r->tensor->name, r->begin, r->end, previous->tensor->name,
                   previous->begin, previous->end);
      return FALSE;
    }
    if (r->begin > covered) {
      g_autofree char *after = previous == NULL
        ? g_strdup ("") : g_strdup_printf (", after tensor '%s'", previous->tensor->name);
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                   "%s: tensor '%s': data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT
                   "] leave bytes %" G_GUINT64_FORMAT "..%" G_GUINT64_FORMAT " of the data "
                   "section unused%s", st->path, r->tensor->name, r->begin, r->end, covered,
                   r->begin - 1, after);
      return FALSE;
    }
    covered = r->end;
    previous = r;
  }
  if (covered == st->data_size)
    return TRUE;
  if (previous == NULL)
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                 "%s: data section has %" G_GSIZE_FORMAT " bytes and no tensor", st->path,
                 st->data_size);
  else
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                 "%s: data section has %" G_GUINT64_FORMAT " bytes after the last tensor "
                 "('%s' ends at %" G_GUINT64_FORMAT " of %" G_GSIZE_FORMAT ")", st->path,
                 st->data_size - covered, previous->tensor->name, covered, st->data_size);
  return FALSE;
}

/* json-glib parses nested arrays and objects by recursion without a limit, so a header of
 * [[[[... overflows the stack: the depth is counted here first. It reads double-quoted
 * strings as JSON does (a backslash escapes the next character); json-glib also takes
 * single-quoted strings and comments, which would hide brackets from this count or show
 * others, and which no JSON has: refused. */
static gboolean
check_nesting (HfamSafetensors *st, const char *json, size_t length, GError **error)
{
  gboolean in_string = FALSE;
  int depth = 0;
  for (size_t i = 0; i < length; i++) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_string = FALSE;
    } else if (c == '"') {
      in_string = TRUE;
    } else if (c == '[' || c == '{') {
      if (++depth > HFAM_ST_MAX_NESTING) {
        g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                     "%s: header nests arrays and objects more than %d deep (byte %"
                     G_GSIZE_FORMAT " of the header)", st->path, HFAM_ST_MAX_NESTING, i);
        return FALSE;
      }
    } else if (c == ']' || c == '}') {
      depth = MAX (depth - 1, 0);
    } else if (c == '\'' || c == '/' || c == '#') {
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                   "%s: header is not valid JSON: '%c' outside a string (byte %" G_GSIZE_FORMAT
                   " of the header)", st->path, c, i);
      return FALSE;
    }
  }
  return TRUE;
}

/* json-glib keeps only the last of duplicate members; the parser's per-member signal is
 * the one place where the earlier ones can be seen. Keying by address is safe: an object is
 * freed during parsing only when a duplicate replaces it, after that duplicate is noted. */
typedef struct {
  GHashTable *names_by_object; /* JsonObject * -> set of member names */
  char *first_duplicate;
} DuplicateFinder;

static void
note_member (JsonParser *parser, JsonObject *object, const char *name, gpointer user_data)
{
  DuplicateFinder *finder = user_data;
  GHashTable *names = g_hash_table_lookup (finder->names_by_object, object);
  if (names == NULL) {
    names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
    g_hash_table_insert (finder->names_by_object, object, names);
  }
  if (!g_hash_table_add (names, g_strdup (name)) && finder->first_duplicate == NULL)
    finder->first_duplicate = g_strdup (name);
}

static gboolean
parse_json (HfamSafetensors *st, JsonParser *parser, const char *json, size_t length,
            GError **error)
{
  DuplicateFinder finder = {
    .names_by_object = g_hash_table_new_full (g_direct_hash, g_direct_equal, NULL,
                                              (GDestroyNotify) g_hash_table_unref),
  };
  g_signal_connect (parser, "object-member", G_CALLBACK (note_member), &finder);
  g_autoptr (GError) parse_error = NULL;
  gboolean parsed = json_parser_load_from_data (parser, json, (gssize) length, &parse_error);
  g_signal_handlers_disconnect_by_data (parser, &finder);
  g_hash_table_unref (finder.names_by_object);
  g_autofree char *duplicate = finder.first_duplicate;

  if (!parsed) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT, "%s: header is not valid JSON: %s",
                 st->path, parse_error->message);
    return FALSE;
  }
  if (duplicate != NULL) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                 "%s: header has the member '%s' more than once", st->path, duplicate);
    return FALSE;
  }
  return TRUE;
}

static gboolean
read_header (HfamSafetensors *st, const char *json, size_t length, GError **error)
{
  g_autoptr (JsonParser) parser = json_parser_new ();
  if (!check_nesting (st, json, length, error) || !parse_json (st, parser, json, length, error))
    return FALSE;
  JsonNode *root = json_parser_get_root (parser);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT (root)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT, "%s: header is not a JSON object",
                 st->path);
    return FALSE;
  }
  JsonObject *object = json_node_get_object (root);
  g_autoptr (GList) members = json_object_get_members (object);
  guint n_members = g_list_length (members);
  st->tensors = g_new0 (HfamStTensor, n_members);
  g_autofree Range *ranges = g_new (Range, n_members);

  for (GList *l = members; l != NULL; l = l->next) {
    const char *name = l->data;
    JsonNode *node = json_object_get_member (object, name);
    if (strcmp (name, "__metadata__") == 0) {
      if (!read_metadata (st, node, error))
        return FALSE;
      continue;
    }
    HfamStTensor *t = &st->tensors[st->n_tensors];
    Range *range = &ranges[st->n_tensors];
    t->name = g_string_chunk_insert (st->names, name);
    if (!read_tensor (st, t, node, &range->begin, &range->end, error))
      return FALSE;
    range->tensor = t;
    g_hash_table_insert (st->by_name, (gpointer) t->name, t);
    st->n_tensors++;
  }
  return check_coverage (st, ranges, st->n_tensors, error);
}

HfamSafetensors *
hfam_st_open_bytes (const char *name, GBytes *bytes, GError **error)
{
  g_return_val_if_fail (name != NULL && bytes != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  g_autoptr (HfamSafetensors) st = g_new0 (HfamSafetensors, 1);
  st->path = g_strdup (name);
  st->bytes = g_bytes_ref (bytes);
  st->file = g_bytes_get_data (bytes, &st->file_size);
  st->by_name = g_hash_table_new (g_str_hash, g_str_equal);
  st->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  st->names = g_string_chunk_new (1024);

  size_t header_length;
  if (!read_header_length (st, &header_length, error))
    return NULL;
  const char *header = (const char *) st->file + HEADER_LENGTH_BYTES;
  st->data = (const uint8_t *) header + header_length;
  st->data_size = st->file_size - HEADER_LENGTH_BYTES - header_length;
  if (!read_header (st, header, header_length, error))
    return NULL;
  return g_steal_pointer (&st);
}

HfamSafetensors *
hfam_st_open (const char *path, GError **error)
{
  g_return_val_if_fail (path != NULL, NULL);
  g_return_val_if_fail (error == NULL || *error == NULL, NULL);

  g_autoptr (GBytes) bytes = read_file (path, error);
  return bytes != NULL ? hfam_st_open_bytes (path, bytes, error) : NULL;
}

const char *
hfam_st_path (const HfamSafetensors *st)
{
  return st->path;
}

const char *
hfam_st_metadata (const HfamSafetensors *st, const char *key)
{
  return g_hash_table_lookup (st->metadata, key);
}

guint
hfam_st_n_tensors (const HfamSafetensors *st)
{
  return st->n_tensors;
}

const HfamStTensor *
hfam_st_tensor_at (const HfamSafetensors *st, guint i)
{
  g_return_val_if_fail (i < st->n_tensors, NULL);
  return &st->tensors[i];
}

const HfamStTensor *
hfam_st_find (const HfamSafetensors *st, const char *name)
{
  return g_hash_table_lookup (st->by_name, name);
}

static gboolean
shape_equals (const HfamStTensor *t, int n_dims, const int64_t *shape)
{
  if (t->n_dims != n_dims)
    return FALSE;
  for (int i = 0; i < n_dims; i++)
    if (t->shape[i] != shape[i])
      return FALSE;
  return TRUE;
}

/* Exact: every half value, subnormals included, is representable in single precision. */
static float
f16_to_f32 (uint16_t h)
{
  uint32_t sign = (uint32_t) (h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0) {
    /* Zero or subnormal: mantissa * 2^-24, a product that is exact in float. */
    float magnitude = (float) mantissa * 0x1p-24f;
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 0x1f)
    bits = sign | 0x7f800000u | (mantissa << 13); /* inf, or NaN keeping its payload */
  else
    bits = sign | ((exponent - 15 + 127) << 23) | (mantissa << 13);
  float f;
  memcpy (&f, &bits, sizeof f);
  return f;
}

/* Elements first .. first + n - 1 of `t` in fp32; `scale`: an I8 tensor's scale in fp32.
 * Element reads go through memcpy: safetensors gives no alignment guarantee. */
static void
convert (const HfamStTensor *t, const float *scale, size_t first, size_t n, float *dst)
{
  const uint8_t *src = t->data;
  switch (t->dtype) {
    case HFAM_DTYPE_F32:
      for (size_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy (&bits, src + 4 * (first + i), sizeof bits);
        bits = GUINT32_FROM_LE (bits);
        memcpy (&dst[i], &bits, sizeof bits);
      }
      break;
    case HFAM_DTYPE_F16:
      for (size_t i = 0; i < n; i++) {
        uint16_t bits;
        memcpy (&bits, src + 2 * (first + i), sizeof bits);
        dst[i] = f16_to_f32 (GUINT16_FROM_LE (bits));
      }
      break;
    case HFAM_DTYPE_I8: {
      /* one scale per slice of the first dimension; no element at all when one is empty */
      const size_t per_row = t->shape[0] > 0 ? t->n_bytes / (size_t) t->shape[0] : 0;
      for (size_t i = 0; i < n; i++)
        dst[i] = (float) (int8_t) src[first + i] * scale[(first + i) / per_row];
      break;
    }
    case HFAM_DTYPE_U8:
      for (size_t i = 0; i < n; i++)
        dst[i] = src[first + i];
      break;
  }
}

/* Every value in fp32 is finite (for I8, every q * scale: finite factors may overflow).
 * In slices, so that no allocation grows with the tensor. */
static gboolean
check_finite (HfamSafetensors *st, const HfamStTensor *t, GError **error)
{
  float values[1024];
  g_autofree float *scale = t->dtype == HFAM_DTYPE_I8 ? hfam_st_dup_f32 (t->scale) : NULL;
  const size_t n = t->n_bytes / dtype_size (t->dtype);
  for (size_t first = 0; first < n; first += G_N_ELEMENTS (values)) {
    const size_t count = MIN (n - first, G_N_ELEMENTS (values));
    convert (t, scale, first, count, values);
    for (size_t i = 0; i < count; i++) {
      if (!isfinite (values[i])) {
        g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                     "%s: tensor '%s': value %" G_GSIZE_FORMAT " is not finite (%g)", st->path,
                     t->name, first + i, (double) values[i]);
        return FALSE;
      }
    }
  }
  return TRUE;
}

/* An I8 tensor's "NAME.scale": F32 or F16, one value per first index, all finite. */
static gboolean
take_scale (HfamSafetensors *st, HfamStTensor *t, GError **error)
{
  g_autofree char *name = g_strconcat (t->name, ".scale", NULL);
  HfamStTensor *scale = g_hash_table_lookup (st->by_name, name);

  if (t->n_dims < 1) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                 "%s: tensor '%s' is I8 but has no dimension to scale along", st->path, t->name);
    return FALSE;
  }
  if (scale == NULL) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                 "%s: tensor '%s' is I8 but its scale '%s' is missing", st->path, t->name, name);
    return FALSE;
  }
  if ((scale->dtype != HFAM_DTYPE_F32 && scale->dtype != HFAM_DTYPE_F16) || scale->n_dims != 1
      || scale->shape[0] != t->shape[0]) {
    g_autofree char *found = shape_to_string (scale->n_dims, scale->shape);
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                 "%s: tensor '%s' is %s %s, expected F32 or F16 [%" G_GINT64_FORMAT "]",
                 st->path, name, dtype_name (scale->dtype), found, t->shape[0]);
    return FALSE;
  }
  if (!check_finite (st, scale, error))
    return FALSE;
  scale->used = TRUE;
  t->scale = scale;
  return TRUE;
}

const HfamStTensor *
hfam_st_take (HfamSafetensors *st, const char *name, int n_dims, const int64_t *shape,
              GError **error)
{
  g_return_val_if_fail (n_dims >= 0 && n_dims <= HFAM_ST_MAX_DIMS, NULL);

  HfamStTensor *t = g_hash_table_lookup (st->by_name, name);
  if (t == NULL) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT, "%s: tensor '%s' is missing", st->path,
                 name);
    return NULL;
  }
  if (t->dtype != HFAM_DTYPE_F32 && t->dtype != HFAM_DTYPE_F16 && t->dtype != HFAM_DTYPE_I8) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                 "%s: tensor '%s' has dtype %s, expected F32, F16 or I8", st->path, name,
                 dtype_name (t->dtype));
    return NULL;
  }
  if (!shape_equals (t, n_dims, shape)) {
    g_autofree char *expected = shape_to_string (n_dims, shape);
    g_autofree char *found = shape_to_string (t->n_dims, t->shape);
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                 "%s: tensor '%s' has shape %s, expected %s", st->path, name, found, expected);
    return NULL;
  }
  /* one infinity in a bias made the whole matte 0, and NaN reaches float-to-int conversions */
  if ((t->dtype == HFAM_DTYPE_I8 && !take_scale (st, t, error)) || !check_finite (st, t, error))
    return NULL;
  t->used = TRUE;
  return t;
}

gboolean
hfam_st_check_all_taken (const HfamSafetensors *st, GError **error)
{
  for (guint i = 0; i < st->n_tensors; i++) {
    if (!st->tensors[i].used) {
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                   "%s: unexpected tensor '%s' (%u tensors in the file, not all used)",
                   st->path, st->tensors[i].name, st->n_tensors);
      return FALSE;
    }
  }
  return TRUE;
}

void
hfam_st_to_f32 (const HfamStTensor *t, float *dst)
{
  g_autofree float *scale = NULL;
  if (t->dtype == HFAM_DTYPE_I8) {
    g_return_if_fail (t->scale != NULL); /* hfam_st_take attaches it */
    scale = hfam_st_dup_f32 (t->scale);
  }
  convert (t, scale, 0, t->n_bytes / dtype_size (t->dtype), dst);
}

size_t
hfam_st_n_elements (const HfamStTensor *t)
{
  size_t n = 1;
  for (int i = 0; i < t->n_dims; i++)
    n *= (size_t) t->shape[i];
  return n;
}

float *
hfam_st_dup_f32 (const HfamStTensor *t)
{
  float *out = g_new (float, hfam_st_n_elements (t));
  hfam_st_to_f32 (t, out);
  return out;
}
