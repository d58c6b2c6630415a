/* hfammatte's enumerated properties as GTypes (backend, precision, refine and
 * fill), the properties a frame runs with as the worker takes them, and
 * inference-size: auto and sizes over the memory budget.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "gsthfammatteprivate.h"

GType
gst_hfam_matte_backend_get_type (void)
{
  static GType backend_type = 0;
  static const GEnumValue backends[] = {
    {GST_HFAM_MATTE_BACKEND_AUTO,
        "CUDA when a device opens, otherwise the CPU", "auto"},
    {GST_HFAM_MATTE_BACKEND_CPU, "CPU", "cpu"},
    {GST_HFAM_MATTE_BACKEND_CUDA, "CUDA", "cuda"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&backend_type)) {
    GType type = g_enum_register_static ("GstHfamMatteBackend", backends);
    g_once_init_leave (&backend_type, type);
  }
  return backend_type;
}

/* libhfam's HfamPrecision, value for value */
GType
gst_hfam_matte_precision_get_type (void)
{
  static GType precision_type = 0;
  static const GEnumValue precisions[] = {
    {HFAM_PRECISION_DEFAULT, "fp16 on CUDA; on the CPU int8 for a model with "
          "activation ranges on a CPU with VNNI, and bf16 for the rest on a CPU "
          "with AVX512-BF16, else fp32", "default"},
    {HFAM_PRECISION_FP32, "fp32 (CUDA without TF32)", "fp32"},
    {HFAM_PRECISION_FP16, "fp16 on CUDA's tensor cores (the CPU computes fp32)",
        "fp16"},
    {HFAM_PRECISION_INT8, "the CPU's convolutions that the model has activation ranges for "
          "(encoder, L-BB, decoders) in int8: needs such a model (CUDA computes fp16)", "int8"},
    {HFAM_PRECISION_BF16, "the CPU's convolutions in bf16: needs AVX512-BF16 (CUDA computes "
          "fp16)", "bf16"},
    {HFAM_PRECISION_INT8_BF16, "int8's layers, the CPU's other convolutions in bf16 (CUDA "
          "computes fp16)", "int8-bf16"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&precision_type)) {
    GType type = g_enum_register_static ("GstHfamMattePrecision", precisions);
    g_once_init_leave (&precision_type, type);
  }
  return precision_type;
}

/* libhfam's HfamRefine, value for value */
GType
gst_hfam_matte_refine_get_type (void)
{
  static GType refine_type = 0;
  static const GEnumValue refines[] = {
    {HFAM_REFINE_NONE, "The matte resized to the frame", "none"},
    {HFAM_REFINE_GUIDED, "Fast guided filter: edges follow the frame's",
        "guided"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&refine_type)) {
    GType type = g_enum_register_static ("GstHfamMatteRefine", refines);
    g_once_init_leave (&refine_type, type);
  }
  return refine_type;
}

/* libhfam's HfamFill, value for value */
GType
gst_hfam_matte_fill_get_type (void)
{
  static GType fill_type = 0;
  static const GEnumValue fills[] = {
    {HFAM_FILL_FRAME, "The frame's own pixels", "frame"},
    {HFAM_FILL_FOREGROUND,
        "The estimated foreground colour, without the old background's halo",
        "foreground"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&fill_type)) {
    GType type = g_enum_register_static ("GstHfamMatteFill", fills);
    g_once_init_leave (&fill_type, type);
  }
  return fill_type;
}

gboolean
gst_hfam_matte_set_key_level (GstHfamMatte * self, gboolean white,
    gdouble level)
{
  const gdouble black_level = white ? self->key_black : level;
  const gdouble white_level = white ? level : self->key_white;

  if (white_level <= black_level) {
    GST_WARNING ("%s: key-white %g would be at or below key-black %g: the "
        "change is refused, the pair in force stays (lower key-black first, "
        "raise key-white first)", GST_OBJECT_NAME (self), white_level,
        black_level);
    return FALSE;
  }
  if (white)
    self->key_white = level;
  else
    self->key_black = level;
  return TRUE;
}

void
gst_hfam_matte_frame_settings (GstHfamMatte * self, GstBuffer * frame,
    GstHfamMatteWorkerSettings * settings)
{
  const GstClockTime stream_time = self->segment.format == GST_FORMAT_TIME
      ? gst_segment_to_stream_time (&self->segment, GST_FORMAT_TIME,
      GST_BUFFER_PTS (frame)) : GST_CLOCK_TIME_NONE;

  /* Controlled properties take their values at the frame's stream time, as
   * GStreamer's own filters sync them; this takes the object lock. */
  if (GST_CLOCK_TIME_IS_VALID (stream_time))
    gst_object_sync_values (GST_OBJECT (self), stream_time);
  GST_OBJECT_LOCK (self);
  settings->inference_size = gst_hfam_matte_inference_size (self);
  settings->inference_interval = self->inference_interval;
  settings->temporal_smoothing = self->temporal_smoothing;
  settings->temporal_mode = self->temporal_mode;
  settings->islands = self->islands;
  settings->letterbox = self->letterbox;
  hfam_edge_params_init (&settings->edges);
  settings->edges.refine = self->refine;
  settings->edges.fill = self->fill_colours;
  settings->edges.key_black = self->key_black;
  settings->edges.key_white = self->key_white;
  GST_OBJECT_UNLOCK (self);
}

/* libhfam's HfamTemporal, value for value */
GType
gst_hfam_matte_temporal_get_type (void)
{
  static GType temporal_type = 0;
  static const GEnumValue modes[] = {
    {HFAM_TEMPORAL_BLEND, "The same blend everywhere", "blend"},
    {HFAM_TEMPORAL_MOTION,
        "Blend where the picture is still (refined: the edges' detail too), follow at "
        "once where it moves", "motion"},
    {HFAM_TEMPORAL_COMPENSATED,
        "As motion, after moving the kept matte along the picture's motion",
        "compensated"},
    {0, NULL, NULL},
  };

  if (g_once_init_enter (&temporal_type)) {
    GType type = g_enum_register_static ("GstHfamMatteTemporal", modes);
    g_once_init_leave (&temporal_type, type);
  }
  return temporal_type;
}

/* Under the object lock: inference-size, with 0 (auto) as the context's
 * real-time size (the model's own on CUDA, a smaller one on the CPU). */
int
gst_hfam_matte_inference_size (GstHfamMatte * self)
{
  return self->inference_size > 0 ? (int) self->inference_size
      : gst_hfam_matte_worker_auto_inference_size (self->worker);
}

/* An inference-size change over the memory budget while running: the size in
 * force stays and the property goes back to it, with a warning. FALSE when
 * there is no other size in force (the first frame) or `error` is not about
 * the budget. */
gboolean
gst_hfam_matte_keep_inference_size (GstHfamMatte * self,
    GstHfamMatteWorkerSettings * settings, const GError * error)
{
  const int in_force = gst_hfam_matte_worker_inference_size (self->worker);
  gboolean revert;

  if (!g_error_matches (error, HFAM_ERROR, HFAM_ERROR_BUDGET) || in_force == 0
      || in_force == settings->inference_size)
    return FALSE;
  GST_ELEMENT_WARNING (self, LIBRARY, SETTINGS,
      ("inference-size %d is over the memory budget, staying at %d: %s",
          settings->inference_size, in_force, error->message),
      ("raise memory-budget (in READY) for larger sizes"));
  GST_OBJECT_LOCK (self);
  /* unless the application has set another size since */
  revert = self->inference_size == (guint) settings->inference_size;
  if (revert)
    self->inference_size = in_force;
  GST_OBJECT_UNLOCK (self);
  if (revert)
    g_object_notify (G_OBJECT (self), "inference-size");
  settings->inference_size = in_force;
  return TRUE;
}
