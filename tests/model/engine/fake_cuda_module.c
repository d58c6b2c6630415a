/* A stand-in for the CUDA backend's module (model/engine/cuda/, loaded by cuda-module.c) whose
 * "device memory" is host memory and whose network is one formula a pixel, for
 * test-device-batches: libhfam's side of device frames (frames.c, batch.c, hfam.c) runs where no
 * GPU is. Device frames are preprocessed by hfam_frame_preprocess and written by
 * hfam_matte_write (the CUDA ops' CPU twins); the "network" maps each pixel's three input
 * values to alpha_p on its own, so that a frame's matte is the same alone or in any batch.
 * Every backend holds two frame slots. A batch lane (HfamCudaBackendOptions.batch > 1) runs
 * queue_batch and queue_device_batch, and refuses to plan a width of FAKE_REFUSED_WIDTH (a
 * failing batch); a frames-only backend preprocesses, describes its slots (slice), keeps and
 * writes; any other backend runs its frames alone. Black bars (at the inference size on
 * keeping, at the frame's size on writing) and islands (of the fresh matte, then of the
 * blend) cleared by their CPU twins. Temporal smoothing: the plain blend, the kept
 * matte's grey plane kept where keep_matte is given `motion`, and follow moving the kept matte
 * with hfam_motion_compensate (the CPU twins of the CUDA ops), or, with FAKE_CUDA_FAIL_FOLLOW
 * set, failing after it has spoilt the kept matte. */
#include "backend.h"
#include "bars.h"
#include "compensate.h"
#include "islands.h"
#include "temporal.h"

#include <gmodule.h>
#include <math.h>
#include <string.h>

#define FAKE_REFUSED_WIDTH 96
#define SLOTS 2

G_MODULE_EXPORT HfamCudaModuleNewBackend hfam_cuda_module_new_backend;
G_MODULE_EXPORT extern const HfamCudaModuleAbi hfam_cuda_module_abi;
const HfamCudaModuleAbi hfam_cuda_module_abi = HFAM_CUDA_MODULE_ABI_INIT;

typedef struct {
  float *input;   /* 3 planes, batch frames */
  float *alpha;   /* batch planes */
  gboolean queued;
  int n;          /* frames queued */
  HfamDeviceSlice slices[HFAM_MAX_BATCH];  /* a device batch's, written at collect */
  gboolean device_batch;
} Slot;

typedef struct {
  HfamBackend base;
  gboolean frames_only;
  int width, height;
  Slot slots[SLOTS];
  int head, tail;
  float *kept;
  int kept_width, kept_height;
  float *kept_grey;            /* the kept matte's frame's grey plane, where valid */
  gboolean kept_grey_valid;
  HfamBars kept_bars;          /* the black bars cleared from the kept matte, */
  HfamBarParams bar_params;    /* found with these */
  HfamPreprocessParams grey_params;  /* what the device frames were normalised with */
} Fake;

static size_t
plane (const Fake *f)
{
  return (size_t) f->width * f->height;
}

/* The "network": alpha_p of one frame's input planes. */
static void
fake_network (const float *input, size_t n, float *alpha)
{
  for (size_t i = 0; i < n; i++)
    alpha[i] = 1.0f / (1.0f + expf (-(input[i] + 0.5f * input[n + i] - input[2 * n + i])));
}

static gboolean
fake_plan (HfamBackend *base, int width, int height, GError **error)
{
  Fake *f = (Fake *) base;

  if (f->width == width && f->height == height)
    return TRUE;
  if (base->batch > 1 && width == FAKE_REFUSED_WIDTH) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "fake lane: width %d refused", width);
    return FALSE;
  }
  f->width = width;
  f->height = height;
  f->head = f->tail = 0;
  for (int k = 0; k < SLOTS; k++) {
    Slot *s = &f->slots[k];
    s->input = g_renew (float, s->input, 3 * plane (f) * base->batch);
    s->alpha = g_renew (float, s->alpha, plane (f) * base->batch);
    s->queued = FALSE;
  }
  return TRUE;
}

/* The head slot, free, or NULL with an error. */
static Slot *
head_slot (Fake *f, GError **error)
{
  Slot *s = &f->slots[f->head % SLOTS];

  if (!f->width || s->queued) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "fake: %s",
                 f->width ? "every slot is in flight" : "run before plan");
    return NULL;
  }
  return s;
}

static Slot *
take_oldest (Fake *f, GError **error)
{
  Slot *s = &f->slots[f->tail % SLOTS];

  if (!s->queued) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "fake: no frame to collect");
    return NULL;
  }
  s->queued = FALSE;
  f->tail++;
  return s;
}

static void
queued (Fake *f, Slot *s, int n, gboolean device_batch)
{
  s->queued = TRUE;
  s->n = n;
  s->device_batch = device_batch;
  f->head++;
}

static gboolean
fake_set_input (HfamBackend *base, const float *input, GError **error)
{
  Fake *f = (Fake *) base;
  Slot *s = head_slot (f, error);

  if (!s)
    return FALSE;
  memcpy (s->input, input, sizeof (float) * 3 * plane (f));
  return TRUE;
}

static gboolean
fake_run_stage (HfamBackend *base, HfamStage stage, GError **error)
{
  Fake *f = (Fake *) base;
  Slot *s = head_slot (f, error);

  if (!s)
    return FALSE;
  if (stage == HFAM_N_STAGES - 1) {
    fake_network (s->input, plane (f), s->alpha);
    queued (f, s, 1, FALSE);
  }
  return TRUE;
}

static gboolean
fake_synchronize (HfamBackend *base, GError **error)
{
  return TRUE;
}

static void
copy_outputs (const Fake *f, const Slot *s, HfamOutputs *out, int k)
{
  if (out->semantic)
    memset (out->semantic, 0, sizeof (float) * 3 * plane (f));
  if (out->detail)
    memset (out->detail, 0, sizeof (float) * plane (f));
  if (out->fused)
    memcpy (out->fused, s->alpha + plane (f) * k, sizeof (float) * plane (f));
}

static gboolean
fake_get_outputs (HfamBackend *base, HfamOutputs *out, GError **error)
{
  Fake *f = (Fake *) base;
  Slot *s = take_oldest (f, error);

  if (!s)
    return FALSE;
  copy_outputs (f, s, out, 0);
  return TRUE;
}

static void
fake_free (HfamBackend *base)
{
  Fake *f = (Fake *) base;

  for (int k = 0; k < SLOTS; k++) {
    g_free (f->slots[k].input);
    g_free (f->slots[k].alpha);
  }
  g_free (f->kept);
  g_free (f->kept_grey);
  g_free (f);
}

static gboolean
fake_queue_batch (HfamBackend *base, const float *const *inputs, int n, GError **error)
{
  Fake *f = (Fake *) base;
  Slot *s = head_slot (f, error);

  if (!s)
    return FALSE;
  for (int k = 0; k < n; k++)
    fake_network (inputs[k], plane (f), s->alpha + plane (f) * k);
  queued (f, s, n, FALSE);
  return TRUE;
}

static gboolean
fake_queue_device_batch (HfamBackend *base, const HfamDeviceSlice *slices, int n,
                         GError **error)
{
  Fake *f = (Fake *) base;
  Slot *s = head_slot (f, error);

  if (!s)
    return FALSE;
  for (int k = 0; k < n; k++) {
    if (slices[k].input_bytes != sizeof (float) * 3 * plane (f)) {
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "fake lane: slice %d of %zu bytes",
                   k, slices[k].input_bytes);
      return FALSE;
    }
    fake_network (slices[k].input, plane (f), s->alpha + plane (f) * k);
    s->slices[k] = slices[k];
  }
  queued (f, s, n, TRUE);
  return TRUE;
}

/* A device batch's alphas reach its slices here, as the CUDA lane's copies have finished by
 * its collect. */
static gboolean
fake_collect_batch (HfamBackend *base, HfamOutputs *out, int n, GError **error)
{
  Fake *f = (Fake *) base;
  Slot *s = take_oldest (f, error);

  if (!s)
    return FALSE;
  if (n != s->n || (out == NULL) != s->device_batch) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "fake lane: collected %d of %d (%s)",
                 n, s->n, s->device_batch ? "device" : "host");
    return FALSE;
  }
  for (int k = 0; k < n; k++) {
    if (out)
      copy_outputs (f, s, &out[k], k);
    else
      memcpy (s->slices[k].alpha, s->alpha + plane (f) * k, sizeof (float) * plane (f));
  }
  return TRUE;
}

static gboolean
fake_batch_done (HfamBackend *base)
{
  return TRUE;
}

static const HfamBackendOps fake_ops = {
  .name = "cuda",
  .plan = fake_plan,
  .set_input = fake_set_input,
  .run_stage = fake_run_stage,
  .synchronize = fake_synchronize,
  .get_outputs = fake_get_outputs,
  .free = fake_free,
  .queue_batch = fake_queue_batch,
  .collect_batch = fake_collect_batch,
  .batch_done = fake_batch_done,
  .queue_device_batch = fake_queue_device_batch,
};

/* ---- device frames ---- */

static gboolean
fake_queue_frame (HfamBackend *base, const HfamFrame *frame,
                  const HfamPreprocessParams *params, GError **error)
{
  Fake *f = (Fake *) base;
  Slot *s = head_slot (f, error);

  if (!s)
    return FALSE;
  f->grey_params = *params;
  if (hfam_frame_preprocess (frame, params, s->input, f->width, f->height) != 0) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "fake: preprocess failed");
    return FALSE;
  }
  if (!f->frames_only)
    fake_network (s->input, plane (f), s->alpha);
  queued (f, s, 1, FALSE);
  return TRUE;
}

static gboolean
fake_keep_matte (HfamBackend *base, const HfamBarParams *bars, const HfamIslandParams *islands,
                 gboolean blend, float smoothing, const HfamMotionParams *motion,
                 const HfamFlowParams *flow, GError **error)
{
  Fake *f = (Fake *) base;
  Slot *s = take_oldest (f, error);

  if (!s)
    return FALSE;
  f->kept_bars = (HfamBars) { 0, 0, 0, 0 };
  if (bars) {
    g_autofree float *grey = g_new (float, plane (f));
    hfam_motion_grey (s->input, f->width, f->height, &f->grey_params, grey);
    hfam_matte_clear_bars (s->alpha, grey, f->width, f->height, bars, &f->kept_bars);
    f->bar_params = *bars;
  }
  g_autofree void *scratch = islands ? g_malloc (hfam_islands_scratch_bytes (f->width, f->height))
                                      : NULL;
  if (islands)
    hfam_matte_drop_islands (s->alpha, f->width, f->height, islands, scratch);
  f->kept_grey_valid = motion != NULL;
  if (motion) {
    f->kept_grey = g_renew (float, f->kept_grey, plane (f));
    hfam_motion_grey (s->input, f->width, f->height, &f->grey_params, f->kept_grey);
  }
  if (blend) {
    for (size_t i = 0; i < plane (f); i++)
      f->kept[i] = (1.0f - smoothing) * s->alpha[i] + smoothing * f->kept[i];
    if (islands)
      hfam_matte_drop_islands (f->kept, f->width, f->height, islands, scratch);
    return TRUE;
  }
  f->kept = g_renew (float, f->kept, plane (f));
  memcpy (f->kept, s->alpha, sizeof (float) * plane (f));
  f->kept_width = f->width;
  f->kept_height = f->height;
  return TRUE;
}

static gboolean
fake_follow (HfamBackend *base, const HfamFrame *frame, const HfamPreprocessParams *params,
             const HfamFlowParams *flow, GError **error)
{
  Fake *f = (Fake *) base;
  const int w = f->kept_width, h = f->kept_height;
  const size_t n = (size_t) w * h;

  if (!f->kept_grey_valid)
    return TRUE;
  if (g_getenv ("FAKE_CUDA_FAIL_FOLLOW")) {
    /* a kernel that failed after moving part of the matte */
    for (size_t i = 0; i < n; i++)
      f->kept[i] = 1.0f;
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "fake: follow: a kernel failed");
    return FALSE;
  }
  g_autofree float *input = g_new (float, 4 * n);
  g_autofree float *scratch = g_new (float, hfam_compensate_scratch_floats (w, h, flow));
  float *grey = input + 3 * n;
  if (hfam_frame_preprocess (frame, params, input, w, h) != 0) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "fake: follow: preprocess failed");
    return FALSE;
  }
  hfam_motion_grey (input, w, h, params, grey);
  if (hfam_motion_compensate (f->kept, f->kept_grey, grey, w, h, flow, NULL, scratch) != 0) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "fake: follow: compensation failed");
    return FALSE;
  }
  memcpy (f->kept_grey, grey, sizeof (float) * n);
  return TRUE;
}

static gboolean
fake_write_matte (HfamBackend *base, const HfamFrame *frame, const HfamYuvToRgb *yuv,
                  const HfamMatteImage *outputs, int n_outputs, const HfamDeviceEdges *edges,
                  GError **error)
{
  Fake *f = (Fake *) base;
  const HfamBars *kb = &f->kept_bars;
  HfamBars bars = { 0, 0, 0, 0 };

  if (n_outputs > 0 && (kb->top || kb->bottom || kb->left || kb->right))
    hfam_frame_find_bars (frame, yuv, kb, f->kept_width, f->kept_height, outputs[0].width,
                          outputs[0].height, &f->bar_params, &bars);
  for (int i = 0; i < n_outputs; i++) {
    HfamMatteImage out = outputs[i];
    if (hfam_matte_write (f->kept, f->kept_width, f->kept_height, frame, yuv, &out) != 0
        || hfam_matte_image_clear_bars (&out, &bars) != 0) {
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "fake: output %d not written", i);
      return FALSE;
    }
  }
  return TRUE;
}

static void
fake_slice (HfamBackend *base, HfamDeviceSlice *slice)
{
  Fake *f = (Fake *) base;
  Slot *s = &f->slots[(f->head + SLOTS - 1) % SLOTS];

  *slice = (HfamDeviceSlice) { .input = s->input, .input_bytes = sizeof (float) * 3 * plane (f),
                               .alpha = s->alpha };
}

static void
fake_drop_frame (HfamBackend *base)
{
  take_oldest ((Fake *) base, NULL);
}

static const HfamDeviceOps fake_device_ops = {
  .queue_frame = fake_queue_frame,
  .keep_matte = fake_keep_matte,
  .write_matte = fake_write_matte,
  .follow = fake_follow,
  .slice = fake_slice,
  .drop_frame = fake_drop_frame,
};

HfamBackend *
hfam_cuda_module_new_backend (const HfamGraph *graph, int device_id,
                              const HfamCudaBackendOptions *options,
                              const char *(*stage_name) (HfamStage stage), GError **error)
{
  Fake *f = g_new0 (Fake, 1);

  f->frames_only = options->frames_only;
  f->base.ops = &fake_ops;
  f->base.graph = graph;
  f->base.batch = f->frames_only ? 1 : CLAMP (options->batch, 1, HFAM_MAX_BATCH);
  f->base.device = f->base.batch == 1 ? &fake_device_ops : NULL;
  f->base.pipeline_depth = SLOTS;
  f->base.gpu = TRUE;
  f->base.precision = HFAM_PRECISION_FP16;
  return &f->base;
}
