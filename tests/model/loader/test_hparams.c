/* Tests of the hyper-parameters read from a weight file's __metadata__ (hparams.c), on the
 * valid file of test_loader.c with one value changed. */
#include "loader-test.h"

/* Opens the valid file with one metadata value replaced, or removed when `value` is NULL. */
static HfamSafetensors *
open_with_metadata (const char *key, const char *value, char **path)
{
  g_autoptr (JsonNode) header = valid_header ();
  JsonObject *metadata = json_object_get_object_member (json_node_get_object (header),
                                                        "__metadata__");
  if (value != NULL)
    json_object_set_string_member (metadata, key, value);
  else
    json_object_remove_member (metadata, key);
  *path = write_weights (header);
  g_autoptr (GError) error = NULL;
  HfamSafetensors *st = hfam_st_open (*path, &error);
  g_assert_no_error (error);
  return st;
}

static void
test_hparams_valid (void)
{
  g_autofree char *path = NULL;
  HfamSafetensors *st = open_with_metadata ("stride_in_1x1", "true", &path);
  g_autoptr (GError) error = NULL;
  HfamHparams hp;
  g_assert_true (hfam_hparams_read (st, &hp, &error));
  g_assert_no_error (error);

  g_assert_cmpint (hp.encoder_depth, ==, 50);
  g_assert_cmpint (hp.encoder_width, ==, 64);
  g_assert_true (hp.stride_in_1x1);
  g_assert_true (hp.input_bgr);
  g_assert_cmpfloat (hp.input_scale, ==, 255.0f);
  g_assert_cmpfloat (hp.input_mean[1], ==, 0.456f);
  g_assert_cmpfloat (hp.input_std[2], ==, 0.225f);
  g_assert_cmpint (hp.mfem_channels, ==, 256);
  g_assert_cmpint (hp.mfem_rates[0][2], ==, 12);
  g_assert_cmpint (hp.mfem_rates[1][0], ==, 2);
  g_assert_cmpint (hp.mfem_rates[2][2], ==, 3);
  g_assert_cmpint (hp.sk_width, ==, 32);
  g_assert_cmpint (hp.context_widths[0], ==, 256);
  g_assert_cmpint (hp.context_widths[4], ==, 64);
  g_assert_cmpint (hp.semantic_widths[0][0], ==, 512);
  g_assert_cmpint (hp.semantic_widths[2][0], ==, 128);
  g_assert_cmpint (hp.semantic_widths[4][2], ==, 3);
  g_assert_cmpint (hp.detail_widths[4][2], ==, 1);
  g_assert_cmpint (hp.lbb_width, ==, 64);
  g_assert_cmpint (hp.lbb_dilation, ==, 2);
  g_assert_cmpint (hp.inference_size, ==, 512);
  hfam_st_close (st);
}

static void
test_hparams_encoder (void)
{
  static const struct {
    int depth, width;
    int channels[5], blocks[4];
  } cases[] = {
    { 18, 64, { 64, 64, 128, 256, 512 }, { 2, 2, 2, 2 } },
    { 34, 32, { 32, 32, 64, 128, 256 }, { 3, 4, 6, 3 } },
    { 50, 64, { 64, 256, 512, 1024, 2048 }, { 3, 4, 6, 3 } },
    { 101, 16, { 16, 64, 128, 256, 512 }, { 3, 4, 23, 3 } },
  };
  for (size_t i = 0; i < G_N_ELEMENTS (cases); i++) {
    HfamHparams hp = { .encoder_depth = cases[i].depth, .encoder_width = cases[i].width };
    int channels[5], blocks[4];
    hfam_hparams_encoder_channels (&hp, channels);
    hfam_hparams_encoder_blocks (&hp, blocks);
    g_assert_cmpmem (channels, sizeof channels, cases[i].channels, sizeof channels);
    g_assert_cmpmem (blocks, sizeof blocks, cases[i].blocks, sizeof blocks);
  }
}

/* The valid file's hyper-parameters with inference_size, mfem_rates and lbb_dilation set. */
static gboolean
read_dilations (const char *inference_size, const char *rates, const char *lbb_dilation,
                char **path, GError **error)
{
  g_autoptr (JsonNode) header = valid_header ();
  JsonObject *metadata = json_object_get_object_member (json_node_get_object (header),
                                                        "__metadata__");
  json_object_set_string_member (metadata, "inference_size", inference_size);
  json_object_set_string_member (metadata, "mfem_rates", rates);
  json_object_set_string_member (metadata, "lbb_dilation", lbb_dilation);
  *path = write_weights (header);
  HfamSafetensors *st = hfam_st_open (*path, error);
  g_assert_no_error (*error);
  HfamHparams hp;
  gboolean ok = hfam_hparams_read (st, &hp, error);
  hfam_st_close (st);
  return ok;
}

/* The bounds follow the size the model is made for, never below the 512 it is trained at. */
static void
test_hparams_dilation_bounds (void)
{
  static const char *const standard = "4,8,12,2,4,6,1,2,3";
  static const char *const widest = "511,511,511,255,255,255,127,127,127";
  g_autoptr (GError) error = NULL;
  g_autofree char *small = NULL, *large = NULL, *past = NULL, *lbb = NULL;

  g_assert_true (read_dilations ("64", standard, "2", &small, &error));
  g_assert_true (read_dilations ("4096", widest, "2047", &large, &error));
  g_assert_no_error (error);
  g_assert_false (read_dilations ("4096", "511,511,512,255,255,255,127,127,127", "2", &past,
                                  &error));
  assert_error (error, past, HFAM_ERROR_FORMAT,
                "value 3 (512) is a dilation at f2 (H/8: 512 pixels at a long side of 4096), "
                "expected at most 511");
  g_clear_error (&error);
  g_assert_false (read_dilations ("4096", widest, "2048", &lbb, &error));
  assert_error (error, lbb, HFAM_ERROR_FORMAT, "expected at most 2047");
}

typedef struct {
  const char *name;
  const char *key;
  const char *value; /* NULL: the key is removed */
  const char *fragment;
} HparamCase;

static const HparamCase hparam_cases[] = {
  { "missing", "lbb_width", NULL, "hyper-parameter 'lbb_width' is missing" },
  { "format", "format", "gguf", "'format' is 'gguf', expected 'hfam'" },
  { "format-version", "format_version", "2", "'format_version' is '2', expected '1'" },
  { "depth", "encoder_depth", "19", "'encoder_depth' is '19', expected '18' or '34' or '50'" },
  { "width-zero", "encoder_width", "0", "'encoder_width' is '0', expected an integer in 1..65536" },
  { "width-text", "sk_width", "32x", "'sk_width' is '32x', expected an integer" },
  { "bool", "stride_in_1x1", "yes", "'stride_in_1x1' is 'yes', expected 'false' or 'true'" },
  { "order", "input_order", "RGBA", "'input_order' is 'RGBA', expected 'RGB' or 'BGR'" },
  { "scale-zero", "input_scale", "0", "'input_scale' is '0', expected a number > 0" },
  { "scale-nan", "input_scale", "nan", "'input_scale' is 'nan', expected a finite number" },
  { "mean-text", "input_mean", "0.485,abc,0.406", "value 2 ('abc') is not a finite number" },
  { "std-zero", "input_std", "0.229,0,0.225", "value 2 ('0') is not a finite non-zero number" },
  { "std-length", "input_std", "0.229,0.224", "2 values, expected 3" },
  { "rates-length", "mfem_rates", "4,8,12,2,4,6,1,2", "8 values, expected 9" },
  { "rates-zero", "mfem_rates", "4,8,12,2,0,6,1,2,3",
    "value 5 ('0') is not an integer in 1..4096" },
  /* Dilations past the map they apply to at a long side of 512 read only padding: f2 is 64
   * pixels on its long side, f3 32, f4 16, L-BB's maps 256. */
  { "rates-huge", "mfem_rates", "1024,1024,1024,1024,1024,1024,1024,1024,1024",
    "value 1 (1024) is a dilation at f2 (H/8: 64 pixels at a long side of 512), "
    "expected at most 63" },
  { "rates-f3", "mfem_rates", "4,8,12,2,4,32,1,2,3",
    "value 6 (32) is a dilation at f3 (H/16: 32 pixels at a long side of 512), "
    "expected at most 31" },
  { "rates-f4", "mfem_rates", "4,8,12,2,4,6,1,2,16",
    "value 9 (16) is a dilation at f4 (H/32: 16 pixels at a long side of 512), "
    "expected at most 15" },
  { "dilation-huge", "lbb_dilation", "1024",
    "'lbb_dilation' is '1024', a dilation at H/2 (256 pixels at a long side of 512), "
    "expected at most 255" },
  { "inference-huge", "inference_size", "16384",
    "'inference_size' is '16384', expected an integer in 32..4096" },
  /* What the preprocessing derives must be finite, and not 0 where it multiplies. */
  { "std-tiny", "input_std", "0.229,1e-40,0.225",
    "channel 1 is normalised as p * inf + -inf (p = 0..255)" },
  { "mean-huge", "input_mean", "0.485,0.456,3e38", "channel 2 is normalised as p * " },
  { "scale-vanishing", "input_scale", "1e-44", "channel 0 is normalised as p * 0 + " },
  { "context-length", "context_widths", "256,256,128,64,64,64", "6 values, expected 5" },
  { "semantic-last", "semantic_widths",
    "512,512,256,256,256,128,128,128,64,64,64,64,64,64,4", "expected 3 as the last width" },
  { "detail-last", "detail_widths",
    "512,512,256,256,256,128,128,128,64,64,64,64,64,64,3", "expected 1 as the last width" },
  { "inference-multiple", "inference_size", "500", "expected a multiple of 32" },
  { "inference-small", "inference_size", "0",
    "'inference_size' is '0', expected an integer in 32.." },
  { "dilation-empty", "lbb_dilation", "", "'lbb_dilation' is '', expected an integer" },
};

static void
test_hparams_reject (gconstpointer data)
{
  const HparamCase *c = data;
  g_autofree char *path = NULL;
  HfamSafetensors *st = open_with_metadata (c->key, c->value, &path);
  g_autoptr (GError) error = NULL;
  HfamHparams hp;
  g_assert_false (hfam_hparams_read (st, &hp, &error));
  assert_error (error, path, HFAM_ERROR_FORMAT, c->fragment);
  hfam_st_close (st);
}

void
loader_add_hparams_tests (void)
{
  g_test_add_func ("/loader/hparams/valid", test_hparams_valid);
  g_test_add_func ("/loader/hparams/encoder", test_hparams_encoder);
  g_test_add_func ("/loader/hparams/dilation-bounds", test_hparams_dilation_bounds);
  for (size_t i = 0; i < G_N_ELEMENTS (hparam_cases); i++) {
    g_autofree char *name = g_strconcat ("/loader/hparams/reject/", hparam_cases[i].name, NULL);
    g_test_add_data_func (name, &hparam_cases[i], test_hparams_reject);
  }
}
