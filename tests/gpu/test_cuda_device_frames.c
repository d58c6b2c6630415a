/* Frames in CUDA device memory (hfam.h: HfamImages of HFAM_MEMORY_CUDA through
 * hfam_context_run, submit, collect and write_kept) on the CUDA backend against the CPU path.
 *
 * Frames: RGBA, BGRA, NV12 (BT.709, limited range) and I420 (BT.601, full range), each of
 * every size asked for (default 333x187 and 1920x1080), a lit figure on a graded background
 * with noise, in pitched device memory. A trained model sees hardly anyone in that picture
 * (the default model's alpha is ~0 almost everywhere), so the check needs a model with
 * random weights too, whose alpha varies all over the frame: each case prints the share of
 * its reference alpha that is neither 0 nor 1. The reference of each: the frame preprocessed by
 * hfam_frame_preprocess (kernels/frame.h, the CPU twin of preprocess.cu), the CPU backend's
 * alpha_p, and hfam_matte_write (the twin of matte.cu) into GRAY8, GRAY16, RGBA, RGBA
 * premultiplied and BGRA; the CUDA context writes the same five outputs in one
 * hfam_context_run (depth 1) or hfam_context_collect (depth 2).
 *   fp32: a pixel differs when its alpha is off by more than 1 level (8-bit) or
 *     1e-3 * 65535 + 1 (16-bit: the rounding of both), or a colour by more than 1; at most
 *     0.1 % of the pixels may differ.
 *   fp16: the mean alpha difference stays within 5e-3; straight colours as for fp32 (they do
 *     not depend on the network).
 *   Both skip the pixels that a near-tie of the CPU's P_s reaches (the two best classes within
 *   1e-3, fp16 5e-2, at the inference size: the argmax may fall either way there, as in
 *   test_cuda_network.c), and check that the bytes past each row's end stay untouched.
 * Configurations: the device's primary context, fp32 with and without CUDA graphs, and fp16;
 * fp32 on a context the test makes with cuCtxCreate and pushes (HfamCudaOptions
 * .current_context, which must stay current across every call); pipeline depth 2 (A, B in
 * flight, a third refused, collect A, submit C, collect B, collect C; frames of both sizes,
 * which share the inference size) in fp32 on such a context and in fp16 on the primary one.
 * A batch group (max_batch 3): three contexts' device frames run as one batch on the group's
 * lane, each against its own reference, in three passes (the lane's captured graphs
 * replayed), in fp32 on such a context (the lane runs on the members' context) and in fp16
 * at depth 2 (two batches in flight) on the primary one. The kept matte (fp32, depth
 * 2): temporal smoothing across two frames against hfam_matte_blend of the CPU's alpha_p, a
 * frame that does not run written from the kept matte while another is in flight, a change
 * of shape that starts afresh, and the refusals (nothing kept, a frame of another shape, a
 * smoothing outside 0..1); see run_kept_matte. Also: a context asking for the current CUDA
 * context where none is current fails; a tensor collect of a device frame and a frame
 * collect of a tensor are refused; a CPU context refuses device frames and the kept matte
 * (HFAM_ERROR_UNSUPPORTED).
 * Exits 77 (skipped) with a message when no CUDA device opens.
 * Usage: test-cuda-device-frames MODEL [WxH ...]
 *   (tests/gpu/run.sh: a random ResNet-50 HFAM and the default model; meson test: the golden
 *   R18 of tests/model/engine) */
#include "hfam-internal.h"
#include "resize.h"
#include "check-cuda.h"

#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime_api.h>
#include <glib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIE_MARGIN 1e-3
#define TIE_MARGIN_FP16 5e-2
#define N_OUTPUTS 5

#define CHECK_CU(call)                                                             \
  do {                                                                             \
    const CUresult res_ = (call);                                                  \
    if (res_ != CUDA_SUCCESS)                                                      \
      g_error ("%s:%d: %s: CUresult %d", __FILE__, __LINE__, #call, (int) res_);   \
  } while (0)

/* The outputs as the oracle (hfam_matte_write) writes them, and as the API takes them. */
static const HfamMatteFormat output_formats[N_OUTPUTS] = {
  HFAM_MATTE_GRAY8, HFAM_MATTE_GRAY16, HFAM_MATTE_RGBA, HFAM_MATTE_RGBA_PREMULTIPLIED,
  HFAM_MATTE_BGRA,
};
static const HfamImage output_images[N_OUTPUTS] = {
  { .format = HFAM_FORMAT_GRAY8, .memory = HFAM_MEMORY_CUDA },
  { .format = HFAM_FORMAT_GRAY16, .memory = HFAM_MEMORY_CUDA },
  { .format = HFAM_FORMAT_RGBA, .memory = HFAM_MEMORY_CUDA },
  { .format = HFAM_FORMAT_RGBA, .memory = HFAM_MEMORY_CUDA, .premultiplied = TRUE },
  { .format = HFAM_FORMAT_BGRA, .memory = HFAM_MEMORY_CUDA },
};
static const char *const output_names[HFAM_MATTE_N_FORMATS] = {
  "GRAY8", "GRAY16", "RGBA", "BGRA", "RGBA premultiplied", "BGRA premultiplied",
};
static const HfamFrameFormat frame_formats[] = {
  HFAM_FRAME_RGBA, HFAM_FRAME_BGRA, HFAM_FRAME_NV12, HFAM_FRAME_I420,
};
static const char *const frame_names[HFAM_FRAME_N_FORMATS] = {
  "RGB", "BGR", "RGBA", "BGRA", "NV12", "I420",
};
/* The frame formats as the API names them. */
static const HfamFormat image_formats[HFAM_FRAME_N_FORMATS] = {
  [HFAM_FRAME_RGB] = HFAM_FORMAT_RGB, [HFAM_FRAME_BGR] = HFAM_FORMAT_BGR,
  [HFAM_FRAME_RGBA] = HFAM_FORMAT_RGBA, [HFAM_FRAME_BGRA] = HFAM_FORMAT_BGRA,
  [HFAM_FRAME_NV12] = HFAM_FORMAT_NV12, [HFAM_FRAME_I420] = HFAM_FORMAT_I420,
};

static int n_failed;

/* The driver API, reached through the runtime: the test runs (and skips) where no libcuda is
 * installed. */
static struct {
  PFN_cuDeviceGet_v2000 device_get;
  PFN_cuCtxCreate_v3020 ctx_create;
  PFN_cuCtxDestroy_v4000 ctx_destroy;
  PFN_cuCtxPopCurrent_v4000 ctx_pop_current;
  PFN_cuCtxGetCurrent_v4000 ctx_get_current;
} driver;

static void *
driver_function (const char *name, unsigned int version)
{
  enum cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
  void *fn = NULL;

  CHECK_CUDA (cudaGetDriverEntryPointByVersion (name, &fn, version, cudaEnableDefault, &found));
  if (found != cudaDriverEntryPointSuccess || !fn)
    g_error ("the driver's %s (ABI of CUDA %u) is not to be found: %d", name, version, found);
  return fn;
}

static void
driver_init (void)
{
  driver.device_get = (PFN_cuDeviceGet_v2000) driver_function ("cuDeviceGet", 2000);
  driver.ctx_create = (PFN_cuCtxCreate_v3020) driver_function ("cuCtxCreate", 3020);
  driver.ctx_destroy = (PFN_cuCtxDestroy_v4000) driver_function ("cuCtxDestroy", 4000);
  driver.ctx_pop_current = (PFN_cuCtxPopCurrent_v4000) driver_function ("cuCtxPopCurrent", 4000);
  driver.ctx_get_current = (PFN_cuCtxGetCurrent_v4000) driver_function ("cuCtxGetCurrent", 4000);
}

static void
check (gboolean ok, const char *what)
{
  printf ("%-4s %s\n", ok ? "ok" : "FAIL", what);
  n_failed += !ok;
}

/* Whether a call failed (`ok` FALSE) with `code`, with a line that says what was checked and
 * one with the error's message; clears the error. */
static void
check_fails (gboolean ok, GError **error, HfamError code, const char *what)
{
  check (!ok && g_error_matches (*error, HFAM_ERROR, code), what);
  if (*error)
    printf ("     (%s)\n", (*error)->message);
  g_clear_error (error);
}

/* Whether a call was refused for its arguments (HFAM_ERROR_ARGUMENT). */
static void
check_refused (gboolean ok, GError **error, const char *what)
{
  check_fails (ok, error, HFAM_ERROR_ARGUMENT, what);
}

/* ---- frames ---- */

typedef struct {
  HfamFrame frame;   /* host planes */
  void *mem;
  size_t bytes;
  size_t offsets[3];
} HostFrame;

static int
align_up (int n, int to)
{
  return (n + to - 1) / to * to;
}

/* The picture: a figure (head and shoulders, lit from the left) on a graded background. */
static void
scene_rgb (int x, int y, int w, int h, GRand *rand, int rgb[3])
{
  const double u = (x + 0.5) / w, v = (y + 0.5) / h;
  const double head = pow ((u - 0.5) / 0.12, 2) + pow ((v - 0.35) / 0.2, 2);
  const double body = pow ((u - 0.5) / 0.3, 2) + pow ((v - 1.0) / 0.45, 2);
  const double light = 0.75 + 0.25 * (0.5 - u);
  double c[3] = { 40 + 120 * u, 70 + 90 * v, 150 - 60 * u };

  if (head < 1.0) {
    c[0] = 225 * light;
    c[1] = 175 * light;
    c[2] = 145 * light;
  } else if (body < 1.0) {
    c[0] = 40 * light;
    c[1] = 60 * light;
    c[2] = 190 * light;
  }
  for (int k = 0; k < 3; k++)
    rgb[k] = CLAMP ((int) lround (c[k] + g_rand_int_range (rand, -12, 13)), 0, 255);
}

static void
rgb_to_yuv (const int rgb[3], int yuv[3])
{
  const double y = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
  yuv[0] = CLAMP ((int) lround (y), 0, 255);
  yuv[1] = CLAMP ((int) lround (128 + (rgb[2] - y) / 1.772), 0, 255);
  yuv[2] = CLAMP ((int) lround (128 + (rgb[0] - y) / 1.402), 0, 255);
}

/* Rows padded to 256 bytes, as pitched device memory is. */
static HostFrame
host_frame_new (HfamFrameFormat format, int w, int h, GRand *rand)
{
  const int cw = (w + 1) / 2, ch = (h + 1) / 2;
  const int yuv = format == HFAM_FRAME_NV12 || format == HFAM_FRAME_I420;
  int rows[3] = { h, 0, 0 }, row_bytes[3] = { 0, 0, 0 };
  HostFrame f = { .frame = { .width = w, .height = h, .format = format } };
  uint8_t *p[3];

  row_bytes[0] = yuv ? w : 4 * w;
  if (format == HFAM_FRAME_NV12) {
    row_bytes[1] = 2 * cw;
    rows[1] = ch;
  } else if (format == HFAM_FRAME_I420) {
    row_bytes[1] = row_bytes[2] = cw;
    rows[1] = rows[2] = ch;
  }
  for (int k = 0; k < 3; k++) {
    f.frame.strides[k] = row_bytes[k] ? align_up (row_bytes[k], 256) : 0;
    f.offsets[k] = f.bytes;
    f.bytes += (size_t) f.frame.strides[k] * rows[k];
  }
  f.mem = g_malloc0 (f.bytes);
  for (int k = 0; k < 3; k++) {
    p[k] = row_bytes[k] ? (uint8_t *) f.mem + f.offsets[k] : NULL;
    f.frame.planes[k] = p[k];
  }
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      int rgb[3], c[3];
      scene_rgb (x, y, w, h, rand, rgb);
      if (!yuv) {
        uint8_t *px = p[0] + (size_t) y * f.frame.strides[0] + 4 * x;
        const int bgr = format == HFAM_FRAME_BGRA;
        px[0] = rgb[bgr ? 2 : 0];
        px[1] = rgb[1];
        px[2] = rgb[bgr ? 0 : 2];
        px[3] = 255;
        continue;
      }
      rgb_to_yuv (rgb, c);
      p[0][(size_t) y * f.frame.strides[0] + x] = c[0];
      if (x % 2 || y % 2)
        continue;
      if (format == HFAM_FRAME_NV12) {
        p[1][(size_t) (y / 2) * f.frame.strides[1] + x] = c[1];
        p[1][(size_t) (y / 2) * f.frame.strides[1] + x + 1] = c[2];
      } else {
        p[1][(size_t) (y / 2) * f.frame.strides[1] + x / 2] = c[1];
        p[2][(size_t) (y / 2) * f.frame.strides[2] + x / 2] = c[2];
      }
    }
  return f;
}

/* ---- the CPU reference ---- */

typedef struct {
  char name[64];
  HostFrame host;
  HfamYuvToRgb yuv;                  /* the oracle's matrix */
  HfamYuvMatrix yuv_matrix;          /* the same as the API takes it (NV12 and I420) */
  gboolean yuv_full_range;
  int inf_w, inf_h;
  float *semantic;                   /* the CPU backend's P_s, at the inference size */
  float *alpha;                      /* the CPU backend's alpha_p */
  uint8_t *expected[N_OUTPUTS];      /* hfam_matte_write of it */
  int strides[N_OUTPUTS];
} Case;

static void
case_init (Case *c, HfamContext *cpu, const HfamModel *model, HfamFrameFormat format, int w,
           int h, GRand *rand)
{
  HfamPreprocessParams params;
  g_autoptr (GError) error = NULL;
  g_autofree float *input = NULL;
  HfamOutputs out;
  size_t plane, n_partial = 0;

  snprintf (c->name, sizeof c->name, "%s %dx%d", frame_names[format], w, h);
  c->host = host_frame_new (format, w, h, rand);
  /* (RGB frames get BT.601 limited, the zero of an unset matrix: it must not be read there) */
  c->yuv_matrix = format == HFAM_FRAME_NV12 ? HFAM_YUV_BT709 : HFAM_YUV_BT601;
  c->yuv_full_range = format == HFAM_FRAME_I420;
  hfam_yuv_to_rgb_init (&c->yuv, format == HFAM_FRAME_NV12 ? HFAM_MATRIX_BT709
                                                           : HFAM_MATRIX_BT601,
                        format == HFAM_FRAME_NV12 ? HFAM_RANGE_LIMITED : HFAM_RANGE_FULL);
  hfam_model_preprocess_params (model, &params);
  params.yuv = c->yuv;
  hfam_inference_dims (w, h, 1.0f, hfam_model_hparams (model)->inference_size, &c->inf_w,
                       &c->inf_h);
  plane = (size_t) c->inf_w * c->inf_h;
  input = g_new (float, 3 * plane);
  c->alpha = g_new (float, plane);
  c->semantic = g_new (float, 3 * plane);
  g_assert_cmpint (hfam_frame_preprocess (&c->host.frame, &params, input, c->inf_w, c->inf_h),
                   ==, 0);
  out = (HfamOutputs) { .semantic = c->semantic, .fused = c->alpha };
  if (!hfam_context_run_tensor (cpu, input, c->inf_w, c->inf_h, &out, &error))
    g_error ("cpu: %s: %s", c->name, error->message);
  for (size_t i = 0; i < plane; i++)
    n_partial += c->alpha[i] > 0.01f && c->alpha[i] < 0.99f;
  printf ("case %s: inference size %dx%d, the CPU's alpha_p within 0.01..0.99 on %.1f %%\n",
          c->name, c->inf_w, c->inf_h, 100.0 * n_partial / plane);
  for (int o = 0; o < N_OUTPUTS; o++) {
    HfamMatteImage img;
    c->strides[o] = w * hfam_matte_bytes_per_pixel (output_formats[o]) + 10;
    c->expected[o] = g_malloc0 ((size_t) c->strides[o] * h);
    img = (HfamMatteImage) { c->expected[o], c->strides[o], w, h, output_formats[o] };
    g_assert_cmpint (hfam_matte_write (c->alpha, c->inf_w, c->inf_h, &c->host.frame, &c->yuv,
                                       &img), ==, 0);
  }
}

static void
case_clear (Case *c)
{
  g_free (c->host.mem);
  g_free (c->semantic);
  g_free (c->alpha);
  for (int o = 0; o < N_OUTPUTS; o++)
    g_free (c->expected[o]);
}

/* The frame's pixels that a near-tie of the CPU's P_s reaches through the resize. */
static gboolean *
near_ties (const Case *c, double margin, size_t *n_ties)
{
  const size_t plane = (size_t) c->inf_w * c->inf_h;
  const int w = c->host.frame.width, h = c->host.frame.height;
  g_autofree float *ties = g_new (float, plane), *reach = g_new (float, (size_t) w * h);
  gboolean *skip = g_new (gboolean, (size_t) w * h);

  for (size_t i = 0; i < plane; i++) {
    const float p[3] = { c->semantic[i], c->semantic[plane + i], c->semantic[2 * plane + i] };
    const float hi = MAX (p[0], MAX (p[1], p[2])), lo = MIN (p[0], MIN (p[1], p[2]));
    ties[i] = hi - (p[0] + p[1] + p[2] - hi - lo) <= margin;
  }
  g_assert_cmpint (hfam_resize_plane (ties, c->inf_w, c->inf_h, c->inf_w, reach, w, h, w), ==,
                   0);
  *n_ties = 0;
  for (size_t i = 0; i < (size_t) w * h; i++)
    *n_ties += skip[i] = reach[i] != 0.0f;
  return skip;
}

/* ---- the CUDA side ---- */

typedef struct {
  const char *name;
  HfamPrecision precision;
  int depth;
  gboolean no_graphs, current_context;
} Config;

static const Config configs[] = {
  { "fp32", HFAM_PRECISION_FP32, 1, FALSE, FALSE },
  { "fp32 no graphs", HFAM_PRECISION_FP32, 1, TRUE, FALSE },
  { "fp16", HFAM_PRECISION_FP16, 1, FALSE, FALSE },
  { "fp32 current context", HFAM_PRECISION_FP32, 1, FALSE, TRUE },
  { "fp32 depth 2 current context", HFAM_PRECISION_FP32, 2, FALSE, TRUE },
  { "fp16 depth 2", HFAM_PRECISION_FP16, 2, FALSE, FALSE },
};

/* A case's frame and outputs in device memory (of the CUDA context current now). */
typedef struct {
  HfamImage frame;
  HfamImage outputs[N_OUTPUTS];
} DeviceCase;

static DeviceCase
device_case_new (const Case *c)
{
  const HostFrame *f = &c->host;
  const int w = f->frame.width, h = f->frame.height;
  DeviceCase d = {
    .frame = { .width = w, .height = h, .format = image_formats[f->frame.format],
               .memory = HFAM_MEMORY_CUDA, .yuv_matrix = c->yuv_matrix,
               .yuv_full_range = c->yuv_full_range },
  };
  uint8_t *mem;

  CHECK_CUDA (cudaMalloc ((void **) &mem, f->bytes));
  CHECK_CUDA (cudaMemcpy (mem, f->mem, f->bytes, cudaMemcpyHostToDevice));
  for (int k = 0; k < 3; k++) {
    d.frame.planes[k] = f->frame.planes[k] ? mem + f->offsets[k] : NULL;
    d.frame.strides[k] = f->frame.strides[k];
  }
  for (int o = 0; o < N_OUTPUTS; o++) {
    CHECK_CUDA (cudaMalloc ((void **) &mem, (size_t) c->strides[o] * h));
    CHECK_CUDA (cudaMemset (mem, 0, (size_t) c->strides[o] * h));
    d.outputs[o] = output_images[o];
    d.outputs[o].planes[0] = mem;
    d.outputs[o].strides[0] = c->strides[o];
    d.outputs[o].width = w;
    d.outputs[o].height = h;
  }
  return d;
}

static void
device_case_free (DeviceCase *d)
{
  CHECK_CUDA (cudaFree (d->frame.planes[0]));
  for (int o = 0; o < N_OUTPUTS; o++)
    CHECK_CUDA (cudaFree (d->outputs[o].planes[0]));
}

/* Zeros in d's outputs, so that one a collect leaves unwritten shows. */
static void
clear_outputs (const DeviceCase *d)
{
  for (int o = 0; o < N_OUTPUTS; o++)
    CHECK_CUDA (cudaMemset (d->outputs[o].planes[0], 0,
                            (size_t) d->outputs[o].strides[0] * d->outputs[o].height));
  CHECK_CUDA (cudaDeviceSynchronize ());
}

/* A CUDA context as `config` says, on the first device (NULL, with the error, when it does
 * not open). */
static HfamContext *
cuda_context_new (HfamModel *model, const Config *config, GError **error)
{
  const HfamOptions options = {
    .backend = HFAM_BACKEND_CUDA, .precision = config->precision,
    .pipeline_depth = config->depth,
  };
  const HfamCudaOptions cuda = {
    .device_id = -1, .no_graphs = config->no_graphs,
    .current_context = config->current_context,
  };

  return hfam_context_new (model, &options, &cuda, error);
}

/* With a context of the test's own: it must still be the current one. */
static void
check_current (CUcontext own, const char *what)
{
  CUcontext current = NULL;

  if (!own)
    return;
  CHECK_CU (driver.ctx_get_current (&current));
  if (current != own) {
    printf ("FAIL %s: the test's CUDA context is no longer current\n", what);
    n_failed++;
  }
}

/* Whether output o of case c's frame matches its reference `expected` (see the top of the
 * file), with a line where it does not; *worst_off and *worst_mean keep the largest share of
 * differing pixels and the largest mean alpha difference seen. */
static gboolean
compare_output (const char *what, const Case *c, int o, const uint8_t *expected,
                const uint8_t *got, gboolean fp16, const gboolean *skip, double *worst_off,
                double *worst_mean)
{
  const HfamMatteFormat format = output_formats[o];
  const int w = c->host.frame.width, h = c->host.frame.height, stride = c->strides[o];
  const int bpp = hfam_matte_bytes_per_pixel (format);
  const int colour = format >= HFAM_MATTE_RGBA;
  const int premultiplied = format == HFAM_MATTE_RGBA_PREMULTIPLIED
                            || format == HFAM_MATTE_BGRA_PREMULTIPLIED;
  const int alpha_max = format == HFAM_MATTE_GRAY16 ? 65535 : 255;
  /* 1e-3 of alpha, and a level for rounding either value */
  const int alpha_tolerance = format == HFAM_MATTE_GRAY16 ? (int) (1e-3 * 65535) + 1 : 1;
  size_t n = 0, n_off = 0, n_padding = 0;
  double sum = 0.0, mean;
  gboolean ok;

  for (int y = 0; y < h; y++) {
    const uint8_t *a = expected + (size_t) y * stride, *b = got + (size_t) y * stride;
    for (int x = w * bpp; x < stride; x++)
      n_padding += b[x] != 0;
    for (int x = 0; x < w; x++) {
      int want, have;
      gboolean off = FALSE;
      if (skip[(size_t) y * w + x])
        continue;
      if (format == HFAM_MATTE_GRAY16) {
        uint16_t u, v;
        memcpy (&u, a + 2 * x, 2);
        memcpy (&v, b + 2 * x, 2);
        want = u;
        have = v;
      } else {
        want = a[bpp * x + (colour ? 3 : 0)];
        have = b[bpp * x + (colour ? 3 : 0)];
      }
      n++;
      sum += (double) abs (want - have) / alpha_max;
      if (!fp16)
        off = abs (want - have) > alpha_tolerance;
      /* straight colours come from the frame alone; premultiplied ones follow the alpha */
      if (colour && (!fp16 || !premultiplied))
        for (int k = 0; k < 3; k++)
          off |= abs (a[4 * x + k] - b[4 * x + k]) > 1;
      n_off += off;
    }
  }
  mean = n ? sum / n : 0.0;
  ok = n_off * 1000 <= n && n_padding == 0 && (!fp16 || mean <= 5e-3);
  if (!ok)
    printf ("FAIL %s %s: %zu of %zu pixels off (limit 0.1 %%), alpha mean difference %.2e%s, "
            "%zu bytes past the rows written\n", what, output_names[format], n_off, n, mean,
            fp16 ? " (limit 5e-3)" : "", n_padding);
  *worst_off = MAX (*worst_off, n ? (double) n_off / n : 0.0);
  *worst_mean = MAX (*worst_mean, mean);
  return ok;
}

/* The outputs of case c's frame, downloaded, against `expected` away from the pixels in
 * `skip` (n_skipped of them): one line for all five. */
static void
compare_outputs (const char *what, const Case *c, uint8_t *const expected[N_OUTPUTS],
                 const DeviceCase *d, gboolean fp16, const gboolean *skip, size_t n_skipped)
{
  const int h = c->host.frame.height;
  double worst_off = 0.0, worst_mean = 0.0;
  gboolean ok = TRUE;

  for (int o = 0; o < N_OUTPUTS; o++) {
    g_autofree uint8_t *got = g_malloc ((size_t) c->strides[o] * h);
    CHECK_CUDA (cudaMemcpy (got, d->outputs[o].planes[0], (size_t) c->strides[o] * h,
                            cudaMemcpyDeviceToHost));
    ok &= compare_output (what, c, o, expected[o], got, fp16, skip, &worst_off, &worst_mean);
  }
  printf ("%-4s %-50s 5 outputs: at most %.3f %% of pixels off, alpha mean difference at most "
          "%.2e; %zu near-tie pixels skipped\n", ok ? "ok" : "FAIL", what, 100 * worst_off,
          worst_mean, n_skipped);
  n_failed += !ok;
}

/* The case's outputs against its own reference. */
static void
compare_case (const char *config, const Case *c, const DeviceCase *d, gboolean fp16)
{
  size_t n_ties;
  g_autofree gboolean *skip = near_ties (c, fp16 ? TIE_MARGIN_FP16 : TIE_MARGIN, &n_ties);
  g_autofree char *what = g_strdup_printf ("%s, %s:", c->name, config);

  compare_outputs (what, c, c->expected, d, fp16, skip, n_ties);
}

/* `params`: NULL (the model's inference size, no smoothing) or the frame's smoothing. */
static void
submit (HfamContext *ctx, const Case *c, const DeviceCase *d, const HfamFrameParams *params,
        const Config *config, CUcontext own)
{
  g_autoptr (GError) error = NULL;
  if (!hfam_context_submit (ctx, &d->frame, params, &error))
    g_error ("%s: %s: submit: %s", config->name, c->name, error->message);
  check_current (own, config->name);
}

static void
collect (HfamContext *ctx, const Case *c, const DeviceCase *d, const Config *config,
         CUcontext own)
{
  g_autoptr (GError) error = NULL;
  if (!hfam_context_collect (ctx, &d->frame, d->outputs, N_OUTPUTS, &error))
    g_error ("%s: %s: collect: %s", config->name, c->name, error->message);
  check_current (own, config->name);
}

/* The kept matte into c's outputs, with c's colours. */
static void
write_kept (HfamContext *ctx, const Case *c, const DeviceCase *d, const Config *config)
{
  g_autoptr (GError) error = NULL;
  if (!hfam_context_write_kept (ctx, &d->frame, d->outputs, N_OUTPUTS, &error))
    g_error ("%s: %s: write_kept: %s", config->name, c->name, error->message);
}

/* Tensors (in host memory) and device frames do not collect each other (the frame stays in
 * flight). */
static void
check_kinds (HfamContext *ctx, const Case *c, const DeviceCase *d, const Config *config)
{
  g_autoptr (GError) error = NULL;
  const size_t plane = (size_t) c->inf_w * c->inf_h;
  g_autofree float *input = g_new0 (float, 3 * plane);

  submit (ctx, c, d, NULL, config, NULL);
  check_refused (hfam_context_collect_tensor (ctx, NULL, &error), &error,
                 "a tensor collect of a device frame is refused");
  collect (ctx, c, d, config, NULL);

  if (!hfam_context_submit_tensor (ctx, input, c->inf_w, c->inf_h, &error))
    g_error ("%s: submit_tensor: %s", config->name, error->message);
  check_refused (hfam_context_collect (ctx, NULL, d->outputs, 1, &error), &error,
                 "a frame collect (device outputs) of a tensor is refused");
  if (!hfam_context_collect_tensor (ctx, NULL, &error))
    g_error ("%s: collect_tensor: %s", config->name, error->message);
}

/* After a configuration's contexts are freed: its device frames freed, and its own CUDA
 * context (if any), still current, popped and destroyed. */
static void
release_config (const Config *config, CUcontext own, DeviceCase *d, int n_cases)
{
  CUcontext popped = NULL;

  check_current (own, config->name);
  for (int i = 0; i < n_cases; i++)
    device_case_free (&d[i]);
  if (own) {
    CHECK_CU (driver.ctx_pop_current (&popped));
    g_assert_true (popped == own);
    CHECK_CU (driver.ctx_destroy (own));
  }
}

/* The cases of the first one's inference size (at most `most`), into `same`; how many. */
static int
same_inference_size (const Case *cases, int n_cases, int *same, int most)
{
  int n_same = 0;

  for (int i = 0; i < n_cases && n_same < most; i++)
    if (cases[i].inf_w == cases[0].inf_w && cases[i].inf_h == cases[0].inf_h)
      same[n_same++] = i;
  return n_same;
}

static void
run_config (HfamModel *model, const Config *config, const Case *cases, int n_cases,
            CUdevice device)
{
  const gboolean fp16 = config->precision == HFAM_PRECISION_FP16;
  g_autoptr (GError) error = NULL;
  g_autofree DeviceCase *d = g_new (DeviceCase, n_cases);
  CUcontext own = NULL;
  HfamContext *ctx;

  if (config->current_context)
    CHECK_CU (driver.ctx_create (&own, 0, device));  /* and pushes it */
  if (!(ctx = cuda_context_new (model, config, &error)))
    g_error ("%s: %s", config->name, error->message);
  if (own) {
    /* else the frames, made in `own`, would be read from another context */
    CUcontext current = NULL;
    CHECK_CU (driver.ctx_get_current (&current));
    if (current != own)
      g_error ("%s: the test's CUDA context is no longer current after hfam_context_new "
               "(does HfamCudaOptions.current_context reach the backend?)", config->name);
  }
  g_assert_cmpint (hfam_context_precision (ctx), ==, config->precision);
  g_assert_cmpint (hfam_context_pipeline_depth (ctx), ==, config->depth);
  for (int i = 0; i < n_cases; i++)
    d[i] = device_case_new (&cases[i]);

  if (config->depth == 1) {
    for (int i = 0; i < n_cases; i++) {
      if (!hfam_context_run (ctx, &d[i].frame, NULL, d[i].outputs, N_OUTPUTS, &error))
        g_error ("%s: %s: %s", config->name, cases[i].name, error->message);
      check_current (own, config->name);
      compare_case (config->name, &cases[i], &d[i], fp16);
    }
    if (config == &configs[0])
      check_kinds (ctx, &cases[0], &d[0], config);
  } else {
    /* three frames that share an inference size, the sizes mixed where there are several */
    int same[64], a, b, c;
    const int n_same = same_inference_size (cases, n_cases, same, G_N_ELEMENTS (same));
    char what[160];
    a = same[0];
    b = same[n_same / 2];
    c = same[n_same - 1];
    snprintf (what, sizeof what, "%s (frame A)", config->name);
    submit (ctx, &cases[a], &d[a], NULL, config, own);
    submit (ctx, &cases[b], &d[b], NULL, config, own);
    check_refused (hfam_context_submit (ctx, &d[c].frame, NULL, &error), &error,
                   "a third frame in flight at depth 2 is refused");
    collect (ctx, &cases[a], &d[a], config, own);
    compare_case (what, &cases[a], &d[a], fp16);
    submit (ctx, &cases[c], &d[c], NULL, config, own);
    collect (ctx, &cases[b], &d[b], config, own);
    snprintf (what, sizeof what, "%s (frame B)", config->name);
    compare_case (what, &cases[b], &d[b], fp16);
    collect (ctx, &cases[c], &d[c], config, own);
    snprintf (what, sizeof what, "%s (frame C)", config->name);
    compare_case (what, &cases[c], &d[c], fp16);
  }

  hfam_context_free (ctx);
  release_config (config, own, d, n_cases);
}

/* ---- device frames in a batch group ---- */

static const Config batch_configs[] = {
  { "batch group, fp32 current context", HFAM_PRECISION_FP32, 1, FALSE, TRUE },
  { "batch group, fp16 depth 2", HFAM_PRECISION_FP16, 2, FALSE, FALSE },
};

/* Three contexts of one batch group (max_batch 3) submit a device frame each, `depth` rounds,
 * each round one batch of three on the group's lane; each frame's outputs against its own
 * reference, as run_config's. */
static void
run_batch_config (HfamModel *model, const Config *config, const Case *cases, int n_cases,
                  CUdevice device)
{
  const HfamOptions options = { .backend = HFAM_BACKEND_CUDA, .precision = config->precision,
                                .pipeline_depth = config->depth, .max_batch = 3,
                                /* three frames submitted one after another always meet */
                                .batch_timeout_us = 200000 };
  const HfamCudaOptions cuda = { .device_id = -1, .current_context = config->current_context };
  g_autoptr (GError) error = NULL;
  g_autofree DeviceCase *d = g_new (DeviceCase, n_cases);
  HfamContext *ctx[3];
  HfamBatchCounts counts = { 0 };
  CUcontext own = NULL;
  int same[64], n_same;
  char what[192];

  if (config->current_context)
    CHECK_CU (driver.ctx_create (&own, 0, device));  /* and pushes it */
  for (int m = 0; m < 3; m++)
    if (!(ctx[m] = hfam_context_new (model, &options, &cuda, &error)))
      g_error ("%s: %s", config->name, error->message);
  check (hfam_context_device_frames (ctx[0]) && hfam_context_max_batch (ctx[0]) == 3,
         "a batch group's member takes device frames");
  n_same = same_inference_size (cases, n_cases, same, G_N_ELEMENTS (same));
  for (int i = 0; i < n_cases; i++)
    d[i] = device_case_new (&cases[i]);
  /* member m, round r: case same[(m + r + pass) % n_same]; later passes replay lane graphs */
  for (int pass = 0; pass < 3; pass++) {
    for (int r = 0; r < config->depth; r++)
      for (int m = 0; m < 3; m++) {
        const int i = same[(m + r + pass) % n_same];
        submit (ctx[m], &cases[i], &d[i], NULL, config, own);
      }
    for (int r = 0; r < config->depth; r++)
      for (int m = 0; m < 3; m++) {
        const int i = same[(m + r + pass) % n_same];
        clear_outputs (&d[i]);
        collect (ctx[m], &cases[i], &d[i], config, own);
        snprintf (what, sizeof what, "%s (pass %d, member %d, round %d)", config->name, pass, m, r);
        compare_case (what, &cases[i], &d[i], config->precision == HFAM_PRECISION_FP16);
      }
  }
  snprintf (what, sizeof what, "%s: each round one batch of 3", config->name);
  check (hfam_context_batch_counts (ctx[0], &counts) && counts.largest == 3
         && counts.frames == (guint64) 9 * config->depth, what);
  for (int m = 0; m < 3; m++)
    hfam_context_free (ctx[m]);
  release_config (config, own, d, n_cases);
}

/* ---- the kept matte: temporal smoothing and frames that do not run ---- */

/* hfam_matte_write of `alpha` (at c's inference size) with the colours of c's frame, into
 * every output format. */
static void
expect_outputs (const Case *c, const float *alpha, uint8_t *expected[N_OUTPUTS])
{
  const int w = c->host.frame.width, h = c->host.frame.height;

  for (int o = 0; o < N_OUTPUTS; o++) {
    const HfamMatteImage img = { expected[o], c->strides[o], w, h, output_formats[o] };
    g_assert_cmpint (hfam_matte_write (alpha, c->inf_w, c->inf_h, &c->host.frame, &c->yuv,
                                       &img), ==, 0);
  }
}

/* The pixels that a near-tie of a's or b's P_s reaches (a and b of one size). */
static gboolean *
near_ties_of_both (const Case *a, const Case *b, size_t *n_ties)
{
  const size_t n = (size_t) a->host.frame.width * a->host.frame.height;
  size_t n_a, n_b;
  gboolean *skip = near_ties (a, TIE_MARGIN, &n_a);
  g_autofree gboolean *skip_b = near_ties (b, TIE_MARGIN, &n_b);

  *n_ties = 0;
  for (size_t i = 0; i < n; i++)
    *n_ties += skip[i] = skip[i] || skip_b[i];
  return skip;
}

/* The kept matte, fp32 at depth 2 on the device's primary context, against the CPU twins
 * (each case's alpha_p from hfam_frame_preprocess and the CPU backend, hfam_matte_blend,
 * hfam_matte_write). a, b and c: frames of one size (and inference size); other: a frame of
 * another shape. Every frame runs with smoothing s (HfamFrameParams, given at submit). In
 * order:
 *   - with nothing collected, writing the kept matte is refused;
 *   - a collected, nothing kept before: a's own matte;
 *   - b submitted, and while it is in flight c written from the kept matte: a's matte with c's
 *     colours;
 *   - c submitted with a smoothing outside 0..1 is refused (at depth 2, beside b, it would go
 *     in otherwise), b stays in flight alone;
 *   - writing the kept matte for `other` is refused (another inference size);
 *   - b collected: (1 - s) b + s a, with b's colours; c written again: that blend with c's
 *     colours;
 *   - `other` submitted and collected: its own matte (a kept matte of another inference size
 *     is replaced, not blended); c is refused now. */
static void
run_kept_matte (HfamModel *model, const Case *a, const Case *b, const Case *c,
                const Case *other)
{
  static const Config config = { "fp32 depth 2, kept matte", HFAM_PRECISION_FP32, 2, FALSE,
                                 FALSE };
  const float s = 0.5f;
  const HfamFrameParams smoothed = { .smoothing = s }, too_smooth = { .smoothing = 1.5f };
  const size_t plane = (size_t) a->inf_w * a->inf_h;
  g_autoptr (GError) error = NULL;
  g_autofree float *blend = g_memdup2 (a->alpha, sizeof (float) * plane);
  g_autofree gboolean *skip_a = NULL, *skip_ab = NULL;
  uint8_t *expected[N_OUTPUTS];
  DeviceCase da, db, dc, dother;
  size_t n_ties_a, n_ties_ab;
  HfamContext *ctx;
  gboolean ok;

  g_assert_cmpint (b->host.frame.width, ==, a->host.frame.width);
  g_assert_cmpint (c->host.frame.width, ==, a->host.frame.width);
  g_assert_cmpint (b->host.frame.height, ==, a->host.frame.height);
  g_assert_cmpint (c->host.frame.height, ==, a->host.frame.height);
  if (other->inf_w == a->inf_w && other->inf_h == a->inf_h)
    g_error ("%s and %s run at the same inference size: no other shape to refuse", a->name,
             other->name);
  if (!(ctx = cuda_context_new (model, &config, &error)))
    g_error ("%s: %s", config.name, error->message);
  da = device_case_new (a);
  db = device_case_new (b);
  dc = device_case_new (c);
  dother = device_case_new (other);
  for (int o = 0; o < N_OUTPUTS; o++)
    expected[o] = g_malloc0 ((size_t) a->strides[o] * a->host.frame.height);
  printf ("kept matte: A %s, B %s, C %s, another shape %s\n", a->name, b->name, c->name,
          other->name);
  skip_a = near_ties (a, TIE_MARGIN, &n_ties_a);
  skip_ab = near_ties_of_both (a, b, &n_ties_ab);
  hfam_matte_blend (blend, b->alpha, plane, s);

  ok = hfam_context_write_kept (ctx, &dc.frame, dc.outputs, N_OUTPUTS, &error);
  check_refused (ok, &error, "writing the kept matte before any collect is refused");

  submit (ctx, a, &da, &smoothed, &config, NULL);
  collect (ctx, a, &da, &config, NULL);
  compare_outputs ("kept matte: A, smoothed with nothing kept (its own)", a, a->expected, &da,
                   FALSE, skip_a, n_ties_a);

  submit (ctx, b, &db, &smoothed, &config, NULL);
  write_kept (ctx, c, &dc, &config);
  expect_outputs (c, a->alpha, expected);
  compare_outputs ("kept matte: C, A's matte while B is in flight", c, expected, &dc, FALSE,
                   skip_a, n_ties_a);

  /* The smoothing is the frame's own now, checked at submit (the old API took it at collect
   * and refused B's collect with 1.5, B staying in flight). C, of B's inference size, would go
   * in beside B at depth 2 but for the smoothing; B must stay in flight alone and collect as
   * below, unblended with anything of C's. */
  ok = hfam_context_submit (ctx, &dc.frame, &too_smooth, &error);
  check_refused (ok, &error, "a frame submitted with a smoothing of 1.5 is refused");
  ok = hfam_context_write_kept (ctx, &dother.frame, dother.outputs, N_OUTPUTS, &error);
  check_refused (ok, &error, "the kept matte for a frame of another shape is refused");

  collect (ctx, b, &db, &config, NULL);
  expect_outputs (b, blend, expected);
  compare_outputs ("kept matte: B, blended into A's (s 0.5)", b, expected, &db, FALSE, skip_ab,
                   n_ties_ab);
  write_kept (ctx, c, &dc, &config);
  expect_outputs (c, blend, expected);
  compare_outputs ("kept matte: C, the blend of A and B", c, expected, &dc, FALSE, skip_ab,
                   n_ties_ab);

  /* (were C in flight after all, this submit would be refused: another inference size) */
  submit (ctx, other, &dother, &smoothed, &config, NULL);
  collect (ctx, other, &dother, &config, NULL);
  compare_case ("kept matte, smoothed across a change of shape (its own)", other, &dother,
                FALSE);
  ok = hfam_context_write_kept (ctx, &dc.frame, dc.outputs, N_OUTPUTS, &error);
  check_refused (ok, &error, "C once the kept matte has another shape is refused");

  hfam_context_free (ctx);
  for (int o = 0; o < N_OUTPUTS; o++)
    g_free (expected[o]);
  device_case_free (&da);
  device_case_free (&db);
  device_case_free (&dc);
  device_case_free (&dother);
}

/* On a thread of its own, where no CUDA context has ever been current. */
static gpointer
new_without_current_context (gpointer model)
{
  static const Config config = { "current context, none current", HFAM_PRECISION_DEFAULT, 0,
                                 FALSE, TRUE };
  g_autoptr (GError) error = NULL;
  HfamContext *ctx = cuda_context_new (model, &config, &error);

  check_fails (ctx != NULL, &error, HFAM_ERROR_BACKEND,
               "asking for the current CUDA context where none is current fails");
  hfam_context_free (ctx);
  return NULL;
}

/* A context on the CPU refuses device frames (checked before the device is looked for: the
 * pixel is host memory that claims to be a device's), HFAM_ERROR_UNSUPPORTED rather than a
 * refused argument: the frame and its output are valid ones. */
static void
check_cpu_refuses (HfamModel *model)
{
  static uint8_t pixel[4];
  const HfamImage frame = { .planes = { pixel }, .strides = { 4 }, .width = 1, .height = 1,
                            .format = HFAM_FORMAT_RGBA, .memory = HFAM_MEMORY_CUDA };
  const HfamImage key = { .planes = { pixel }, .strides = { 1 }, .width = 1, .height = 1,
                          .format = HFAM_FORMAT_GRAY8, .memory = HFAM_MEMORY_CUDA };
  const HfamOptions options = { .backend = HFAM_BACKEND_CPU, .n_threads = 1 };
  g_autoptr (GError) error = NULL;
  g_autoptr (HfamContext) cpu = hfam_context_new (model, &options, NULL, &error);

  g_assert_no_error (error);
  check_fails (hfam_context_run (cpu, &frame, NULL, &key, 1, &error), &error,
               HFAM_ERROR_UNSUPPORTED, "a CPU context refuses device frames");
  check_fails (hfam_context_write_kept (cpu, &frame, &key, 1, &error), &error,
               HFAM_ERROR_UNSUPPORTED, "a CPU context refuses to write a kept matte");
}

int
main (int argc, char **argv)
{
  const char *seed_env = g_getenv ("HFAM_TEST_SEED");
  const guint32 seed = seed_env ? (guint32) g_ascii_strtoull (seed_env, NULL, 10)
                                : (guint32) g_get_real_time ();
  static const char *const default_sizes[] = { "333x187", "1920x1080" };
  static const Config probe_config = { "probe", HFAM_PRECISION_DEFAULT, 0, FALSE, FALSE };
  const char *const *sizes = argc > 2 ? (const char *const *) argv + 2 : default_sizes;
  const int n_sizes = argc > 2 ? argc - 2 : (int) G_N_ELEMENTS (default_sizes);
  g_autoptr (GError) error = NULL;
  g_autoptr (HfamModel) model = NULL;
  g_autoptr (GRand) rand = g_rand_new_with_seed (seed);
  HfamContext *probe, *cpu;
  Case *cases, other;
  int n_cases = 0, w0 = 0, h0 = 0;
  CUdevice device;
  GThread *thread;

  if (argc < 2) {
    fprintf (stderr, "usage: %s MODEL [WxH ...]\n", argv[0]);
    return 2;
  }
  if (!(model = hfam_model_load (argv[1], &error)))
    g_error ("%s", error->message);
  printf ("seed %u (HFAM_TEST_SEED repeats it)\n", seed);
  check_cpu_refuses (model);
  if (!(probe = cuda_context_new (model, &probe_config, &error))) {
    printf ("SKIP: %s\n", error->message);
    return n_failed ? 1 : 77;
  }
  hfam_context_free (probe);
  driver_init ();
  CHECK_CU (driver.device_get (&device, 0));

  thread = g_thread_new ("no-context", new_without_current_context, model);
  g_thread_join (thread);

  cpu = hfam_context_new (model, &(HfamOptions) { .backend = HFAM_BACKEND_CPU,
                                                  .precision = HFAM_PRECISION_FP32 },
                         NULL, &error);
  g_assert_no_error (error);
  cases = g_new0 (Case, n_sizes * G_N_ELEMENTS (frame_formats));
  for (int s = 0; s < n_sizes; s++) {
    int w, h;
    if (sscanf (sizes[s], "%dx%d", &w, &h) != 2 || w < 1 || h < 1) {
      fprintf (stderr, "%s: not WxH\n", sizes[s]);
      return 2;
    }
    for (size_t f = 0; f < G_N_ELEMENTS (frame_formats); f++)
      case_init (&cases[n_cases++], cpu, model, frame_formats[f], w, h,
                 rand);
    if (s == 0) {
      w0 = w;
      h0 = h;
    }
  }
  /* the first size on its side (taller where it is square) */
  case_init (&other, cpu, model, HFAM_FRAME_RGBA, h0,
             w0 == h0 ? 2 * h0 : w0, rand);
  hfam_context_free (cpu);

  for (size_t k = 0; k < G_N_ELEMENTS (configs); k++)
    run_config (model, &configs[k], cases, n_cases, device);
  for (size_t k = 0; k < G_N_ELEMENTS (batch_configs); k++)
    run_batch_config (model, &batch_configs[k], cases, n_cases, device);
  /* RGBA, NV12 and I420 of the first size */
  run_kept_matte (model, &cases[0], &cases[2], &cases[3], &other);

  for (int i = 0; i < n_cases; i++)
    case_clear (&cases[i]);
  case_clear (&other);
  g_free (cases);
  printf ("%s\n", n_failed ? "FAILED" : "all passed");
  return n_failed ? 1 : 0;
}
