/* hfammatte's caps and buffer pools: what each of the three pads can carry
 * given the other side of the element (the sink's from both outputs, an
 * output's from upstream), the input caps, each output's caps agreed with
 * downstream for the current input, and the buffer pool each linked output
 * writes into.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "gsthfammatteprivate.h"

#ifdef HFAM_HAVE_GST_CUDA
#include <gst/cuda/gstcudabufferpool.h>
#include <gst/cuda/gstcudamemory.h>
#endif

void
gst_hfam_matte_clear_pool (GstHfamMatteOutput * output)
{
  if (output->pool) {
    gst_buffer_pool_set_active (output->pool, FALSE);
    gst_clear_object (&output->pool);
  }
}

/* `caps` with the format replaced by the formats of the pad's template for the
 * same memory: the element changes only the format (and with it colorimetry
 * and chroma siting), never the memory. */
static GstCaps *
gst_hfam_matte_with_formats (GstCaps * caps, GstPad * templ_pad)
{
  GstCaps *templ = gst_pad_get_pad_template_caps (templ_pad);
  GstCaps *result;

  if (gst_caps_is_any (caps))
    return templ;

  result = gst_caps_new_empty ();
  for (guint i = 0; i < gst_caps_get_size (caps); i++) {
    GstCapsFeatures *features = gst_caps_get_features (caps, i);

    /* each memory of the template it names (ANY names them all) */
    for (guint t = 0; t < gst_caps_get_size (templ); t++) {
      GstCapsFeatures *templ_features = gst_caps_get_features (templ, t);
      GstStructure *s;

      if (!gst_caps_features_is_equal (features, templ_features))
        continue;
      s = gst_structure_copy (gst_caps_get_structure (caps, i));
      gst_structure_remove_fields (s, "format", "colorimetry", "chroma-site",
          NULL);
      gst_structure_set_value (s, "format",
          gst_structure_get_value (gst_caps_get_structure (templ, t),
              "format"));
      result = gst_caps_merge_structure_full (result, s,
          gst_caps_features_copy (templ_features));
    }
  }
  gst_caps_unref (templ);
  return result;
}

/* The pad's template, without CUDA memory while there is no CUDA context to
 * use it with. */
static GstCaps *
gst_hfam_matte_template_caps (GstHfamMatte * self, GstPad * pad)
{
  GstCaps *templ = gst_pad_get_pad_template_caps (pad);
#ifdef HFAM_HAVE_GST_CUDA
  GstCaps *result;
  gboolean have_cuda;

  GST_OBJECT_LOCK (self);
  have_cuda = self->cuda_context != NULL;
  GST_OBJECT_UNLOCK (self);
  if (have_cuda)
    return templ;
  result = gst_caps_new_empty ();
  for (guint i = 0; i < gst_caps_get_size (templ); i++)
    if (!gst_caps_features_contains (gst_caps_get_features (templ, i),
            GST_CAPS_FEATURE_MEMORY_CUDA_MEMORY))
      result = gst_caps_merge_structure_full (result,
          gst_structure_copy (gst_caps_get_structure (templ, i)),
          gst_caps_features_copy (gst_caps_get_features (templ, i)));
  gst_caps_unref (templ);
  return result;
#else
  return templ;
#endif
}

/* What one pad can carry given what is on the other side of the element:
 * `peer_caps` of the opposite pads, re-expressed in this pad's formats. */
static GstCaps *
gst_hfam_matte_restrict (GstCaps * allowed, GstCaps * peer_caps, GstPad * pad)
{
  GstCaps *possible = gst_hfam_matte_with_formats (peer_caps, pad);
  GstCaps *result = gst_caps_intersect_full (allowed, possible,
      GST_CAPS_INTERSECT_FIRST);

  gst_caps_unref (possible);
  gst_caps_unref (allowed);
  return result;
}

/* `caps` as a caps query answers it: within `filter`, in the filter's order of preference
 * (takes `caps`). */
static GstCaps *
gst_hfam_matte_filter (GstCaps * caps, GstCaps * filter)
{
  GstCaps *filtered;

  if (!filter)
    return caps;
  filtered = gst_caps_intersect_full (filter, caps, GST_CAPS_INTERSECT_FIRST);
  gst_caps_unref (caps);
  return filtered;
}

GstCaps *
gst_hfam_matte_sink_caps (GstHfamMatte * self, GstCaps * filter)
{
  GstCaps *caps = gst_hfam_matte_template_caps (self, self->sinkpad);
  GstHfamMatteOutput *outputs[] = { &self->fill, &self->key };

  for (guint i = 0; i < G_N_ELEMENTS (outputs); i++) {
    GstCaps *templ, *peer;

    /* An unlinked output restricts nothing: its template would (the alpha
     * pad's has no CUDA memory). Linking it sends a reconfigure upstream. */
    if (!gst_pad_is_linked (outputs[i]->pad))
      continue;
    templ = gst_hfam_matte_template_caps (self, outputs[i]->pad);
    peer = gst_pad_peer_query_caps (outputs[i]->pad, templ);
    caps = gst_hfam_matte_restrict (caps, peer, self->sinkpad);
    gst_caps_unref (peer);
    gst_caps_unref (templ);
  }
  return gst_hfam_matte_filter (caps, filter);
}

GstCaps *
gst_hfam_matte_src_caps (GstHfamMatte * self, GstPad * pad, GstCaps * filter)
{
  GstCaps *sink_templ = gst_hfam_matte_template_caps (self, self->sinkpad);
  GstCaps *upstream = gst_pad_peer_query_caps (self->sinkpad, sink_templ);
  GstCaps *caps = gst_hfam_matte_restrict (gst_hfam_matte_template_caps (self,
          pad), upstream, pad);

  gst_caps_unref (upstream);
  gst_caps_unref (sink_templ);
  return gst_hfam_matte_filter (caps, filter);
}

/* The caps an output offers for the current input: its size, framerate,
 * aspect and interlacing, in the output's formats, the preferred first. */
static GstCaps *
gst_hfam_matte_output_offer (GstHfamMatte * self, GstHfamMatteOutput * output)
{
  const GstVideoInfo *in = &self->in_info;
  const gboolean is_fill = output == &self->fill;
  const GstVideoFormat in_format = GST_VIDEO_INFO_FORMAT (in);
  const gboolean bgr_input = in_format == GST_VIDEO_FORMAT_BGRA
      || in_format == GST_VIDEO_FORMAT_BGRx
      || in_format == GST_VIDEO_FORMAT_BGR;
  GstVideoFormat formats[2];
  GValue list = G_VALUE_INIT, item = G_VALUE_INIT;
  GstVideoInfo info;
  GstCaps *caps;

  if (is_fill) {
    /* Keep the input's channel order: copying is then plain. */
    formats[0] = bgr_input ? GST_VIDEO_FORMAT_BGRA : GST_VIDEO_FORMAT_RGBA;
    formats[1] = bgr_input ? GST_VIDEO_FORMAT_RGBA : GST_VIDEO_FORMAT_BGRA;
  } else {
    formats[0] = GST_VIDEO_FORMAT_GRAY8;
    formats[1] = GST_VIDEO_FORMAT_GRAY16_LE;
  }

  gst_video_info_set_interlaced_format (&info, formats[0],
      GST_VIDEO_INFO_INTERLACE_MODE (in), GST_VIDEO_INFO_WIDTH (in),
      GST_VIDEO_INFO_HEIGHT (in));
  GST_VIDEO_INFO_FPS_N (&info) = GST_VIDEO_INFO_FPS_N (in);
  GST_VIDEO_INFO_FPS_D (&info) = GST_VIDEO_INFO_FPS_D (in);
  GST_VIDEO_INFO_PAR_N (&info) = GST_VIDEO_INFO_PAR_N (in);
  GST_VIDEO_INFO_PAR_D (&info) = GST_VIDEO_INFO_PAR_D (in);
  GST_VIDEO_INFO_FIELD_ORDER (&info) = GST_VIDEO_INFO_FIELD_ORDER (in);
  if (is_fill)
    info.colorimetry =
        gst_hfam_matte_worker_colour_info (self->worker)->colorimetry;
  caps = gst_video_info_to_caps (&info);
  /* the memory the input is in */
  if (self->in_cuda_memory)
    gst_caps_set_features (caps, 0,
        gst_caps_features_new ("memory:CUDAMemory", NULL));

  g_value_init (&list, GST_TYPE_LIST);
  g_value_init (&item, G_TYPE_STRING);
  for (guint i = 0; i < G_N_ELEMENTS (formats); i++) {
    g_value_set_static_string (&item, gst_video_format_to_string (formats[i]));
    gst_value_list_append_value (&list, &item);
  }
  gst_caps_set_value (caps, "format", &list);
  g_value_unset (&item);
  g_value_unset (&list);
  return caps;
}

/* The buffer pool downstream proposes for `caps`, or a video pool of ours. */
static GstBufferPool *
gst_hfam_matte_decide_pool (GstHfamMatte * self, GstHfamMatteOutput * output,
    GstCaps * caps)
{
  GstQuery *query = gst_query_new_allocation (caps, TRUE);
  GstBufferPool *pool = NULL;
  GstStructure *config;
  guint size = GST_VIDEO_INFO_SIZE (&output->info), min = 0, max = 0;

  if (!gst_pad_peer_query (output->pad, query))
    GST_DEBUG_OBJECT (output->pad, "downstream gave no allocation answer");
  if (gst_query_get_n_allocation_pools (query) > 0) {
    gst_query_parse_nth_allocation_pool (query, 0, &pool, &size, &min, &max);
    size = MAX (size, GST_VIDEO_INFO_SIZE (&output->info));
  }
#ifdef HFAM_HAVE_GST_CUDA
  /* CUDA memory of the context the matte is written in, or none */
  if (output->cuda_memory) {
    GstCudaContext *cuda_context;

    GST_OBJECT_LOCK (self);
    cuda_context = self->cuda_context ? gst_object_ref (self->cuda_context)
        : NULL;
    GST_OBJECT_UNLOCK (self);
    if (!cuda_context) {
      GST_ERROR_OBJECT (output->pad, "CUDA memory caps without a CUDA context");
      gst_clear_object (&pool);
      gst_query_unref (query);
      return NULL;
    }
    if (pool && (!GST_IS_CUDA_BUFFER_POOL (pool)
            || gst_cuda_context_get_handle (GST_CUDA_BUFFER_POOL (pool)->context)
            != gst_cuda_context_get_handle (cuda_context)))
      gst_clear_object (&pool);
    if (!pool)
      pool = gst_cuda_buffer_pool_new (cuda_context);
    gst_object_unref (cuda_context);
  }
#endif
  if (!pool)
    pool = gst_video_buffer_pool_new ();

  config = gst_buffer_pool_get_config (pool);
  gst_buffer_pool_config_set_params (config, caps, size, min, max);
  if (gst_query_find_allocation_meta (query, GST_VIDEO_META_API_TYPE, NULL))
    gst_buffer_pool_config_add_option (config,
        GST_BUFFER_POOL_OPTION_VIDEO_META);
  gst_query_unref (query);

  /* A pool may adjust the configuration; take it if it still fits. */
  if (!gst_buffer_pool_set_config (pool, config)) {
    config = gst_buffer_pool_get_config (pool);
    if (!gst_buffer_pool_config_validate_params (config, caps, size, min, max)
        || !gst_buffer_pool_set_config (pool, config)) {
      GST_ERROR_OBJECT (output->pad, "buffer pool rejects %" GST_PTR_FORMAT,
          caps);
      gst_object_unref (pool);
      return NULL;
    }
  }
  if (!gst_buffer_pool_set_active (pool, TRUE)) {
    GST_ERROR_OBJECT (output->pad, "cannot activate the buffer pool");
    gst_object_unref (pool);
    return NULL;
  }
  return pool;
}

/* Agrees on this output's caps with downstream, sends them and, when the pad
 * is linked, sets up its buffer pool. An unlinked pad keeps the caps as a
 * sticky event for when it gets linked. */
static gboolean
gst_hfam_matte_negotiate_output (GstHfamMatte * self,
    GstHfamMatteOutput * output)
{
  GstCaps *offer = gst_hfam_matte_output_offer (self, output);
  GstCaps *caps = gst_pad_peer_query_caps (output->pad, offer);
  GstCaps *current;
  GstVideoInfo info;
  gboolean unchanged;

  gst_caps_unref (offer);
  if (gst_caps_is_empty (caps)) {
    GST_ERROR_OBJECT (output->pad, "downstream accepts no %dx%d %s",
        GST_VIDEO_INFO_WIDTH (&self->in_info),
        GST_VIDEO_INFO_HEIGHT (&self->in_info),
        output == &self->fill ? "RGBA or BGRA" : "GRAY8 or GRAY16_LE");
    gst_caps_unref (caps);
    return FALSE;
  }
  caps = gst_caps_fixate (caps);
  if (!gst_video_info_from_caps (&info, caps)) {
    GST_ERROR_OBJECT (output->pad, "invalid caps %" GST_PTR_FORMAT, caps);
    gst_caps_unref (caps);
    return FALSE;
  }

  output->cuda_memory = gst_caps_features_contains (gst_caps_get_features (caps,
          0), "memory:CUDAMemory");
  current = gst_pad_get_current_caps (output->pad);
  unchanged = current && gst_caps_is_equal (current, caps);
  gst_clear_caps (&current);
  if (!unchanged) {
    GST_DEBUG_OBJECT (output->pad, "negotiated %" GST_PTR_FORMAT, caps);
    gst_hfam_matte_clear_pool (output);
    if (!gst_pad_set_caps (output->pad, caps)) {
      GST_ERROR_OBJECT (output->pad, "downstream refused %" GST_PTR_FORMAT,
          caps);
      gst_caps_unref (caps);
      return FALSE;
    }
    output->info = info;
  }
  if (!output->pool && gst_pad_is_linked (output->pad))
    output->pool = gst_hfam_matte_decide_pool (self, output, caps);
  gst_caps_unref (caps);
  return output->pool || !gst_pad_is_linked (output->pad);
}

gboolean
gst_hfam_matte_set_caps (GstHfamMatte * self, GstCaps * caps)
{
  GstVideoInfo info;
  gboolean cuda_memory;

  if (!gst_video_info_from_caps (&info, caps)) {
    GST_ERROR_OBJECT (self, "invalid caps %" GST_PTR_FORMAT, caps);
    return FALSE;
  }
  cuda_memory = gst_caps_features_contains (gst_caps_get_features (caps, 0),
      "memory:CUDAMemory");
  if (!self->have_input || !gst_video_info_is_equal (&info, &self->in_info)
      || cuda_memory != self->in_cuda_memory) {
    if (!gst_hfam_matte_worker_set_input (self->worker, &info, cuda_memory)) {
      GST_ERROR_OBJECT (self, "cannot convert %" GST_PTR_FORMAT " to RGBA",
          caps);
      self->have_input = FALSE;
      return FALSE;
    }
    self->in_info = info;
    self->in_cuda_memory = cuda_memory;
    self->have_input = TRUE;
    gst_hfam_matte_set_frame_duration (self,
        GST_VIDEO_INFO_FPS_N (&info) > 0 ? gst_util_uint64_scale (GST_SECOND,
            GST_VIDEO_INFO_FPS_D (&info), GST_VIDEO_INFO_FPS_N (&info)) : 0,
        TRUE);
  }
  /* Both outputs now; the chain function renegotiates a pad that gets linked
   * or reconfigured later. */
  gst_pad_check_reconfigure (self->fill.pad);
  gst_pad_check_reconfigure (self->key.pad);
  return gst_hfam_matte_negotiate_output (self, &self->fill)
      && gst_hfam_matte_negotiate_output (self, &self->key);
}

/* Negotiates again an output that was linked or reconfigured since: new caps
 * or, with the same caps, a new pool. */
gboolean
gst_hfam_matte_ensure_output (GstHfamMatte * self, GstHfamMatteOutput * output)
{
  if (!gst_pad_check_reconfigure (output->pad) && output->pool)
    return TRUE;
  gst_hfam_matte_clear_pool (output);
  if (gst_hfam_matte_negotiate_output (self, output))
    return TRUE;
  gst_pad_mark_reconfigure (output->pad);
  return FALSE;
}
