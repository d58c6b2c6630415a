/* hfammatte's frames out: a frame whose matte is ready is written into a buffer
 * from the pool of each linked output (on the host, or on the device for a
 * frame in CUDA memory), stamped with the input's timestamps and flags, and
 * pushed through the flow combiner. With them the timing: QoS, which drops
 * frames already late downstream, and the latency that covers the network and
 * the frames held.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "gsthfammatteprivate.h"

#ifdef HFAM_HAVE_GST_CUDA
#include <gst/cuda/gstcudamemory.h>
#endif

void
gst_hfam_matte_reset_qos (GstHfamMatte * self)
{
  GST_OBJECT_LOCK (self);
  self->fill.earliest_time = self->key.earliest_time = GST_CLOCK_TIME_NONE;
  self->fill.proportion = self->key.proportion = 1.0;
  GST_OBJECT_UNLOCK (self);
}

void
gst_hfam_matte_reset_outputs (GstHfamMatte * self)
{
  self->processed = self->dropped = 0;
  self->warmed_up = FALSE;
  gst_hfam_matte_reset_qos (self);
  gst_flow_combiner_reset (self->flow_combiner);
  GST_OBJECT_LOCK (self);
  self->latency = self->held_latency = 0;
  GST_OBJECT_UNLOCK (self);
}

void
gst_hfam_matte_update_qos (GstHfamMatte * self, GstHfamMatteOutput * output,
    GstEvent * event)
{
  GstClockTimeDiff diff;
  GstClockTime timestamp;
  gdouble proportion;

  gst_event_parse_qos (event, NULL, &proportion, &diff, &timestamp);
  GST_OBJECT_LOCK (self);
  output->proportion = proportion;
  if (GST_CLOCK_TIME_IS_VALID (timestamp))
    output->earliest_time = diff < 0 && (GstClockTime) - diff > timestamp
        ? 0 : timestamp + diff;
  else
    output->earliest_time = GST_CLOCK_TIME_NONE;
  GST_OBJECT_UNLOCK (self);
}

static gboolean
gst_hfam_matte_output_is_late (const GstHfamMatteOutput * output,
    GstClockTime end)
{
  return GST_CLOCK_TIME_IS_VALID (output->earliest_time)
      && end <= output->earliest_time;
}

/* QoS: a frame that ends before the earliest time every linked output can
 * still show is dropped instead of processed; a QOS message says so. */
gboolean
gst_hfam_matte_drop_if_late (GstHfamMatte * self, GstBuffer * buffer,
    gboolean want_fill, gboolean want_key)
{
  const GstClockTime pts = GST_BUFFER_PTS (buffer);
  const GstClockTime duration = GST_BUFFER_DURATION (buffer);
  GstClockTime running_time, end, earliest;
  gdouble proportion;
  gboolean late;
  GstMessage *message;

  if (self->segment.format != GST_FORMAT_TIME || !GST_CLOCK_TIME_IS_VALID (pts))
    return FALSE;
  running_time = gst_segment_to_running_time (&self->segment, GST_FORMAT_TIME,
      pts);
  if (!GST_CLOCK_TIME_IS_VALID (running_time))
    return FALSE;
  end = running_time + (GST_CLOCK_TIME_IS_VALID (duration) ? duration : 0);

  GST_OBJECT_LOCK (self);
  late = self->qos
      && (!want_fill || gst_hfam_matte_output_is_late (&self->fill, end))
      && (!want_key || gst_hfam_matte_output_is_late (&self->key, end));
  /* The output that is least late decides. */
  if (want_fill && (!want_key
          || self->fill.earliest_time <= self->key.earliest_time)) {
    earliest = self->fill.earliest_time;
    proportion = self->fill.proportion;
  } else {
    earliest = self->key.earliest_time;
    proportion = self->key.proportion;
  }
  GST_OBJECT_UNLOCK (self);
  if (!late)
    return FALSE;

  self->dropped++;
  self->discont = TRUE;
  GST_DEBUG_OBJECT (self, "dropping late frame %" GST_TIME_FORMAT
      ", earliest %" GST_TIME_FORMAT, GST_TIME_ARGS (running_time),
      GST_TIME_ARGS (earliest));
  message = gst_message_new_qos (GST_OBJECT (self), FALSE, running_time,
      gst_segment_to_stream_time (&self->segment, GST_FORMAT_TIME, pts), pts,
      duration);
  gst_message_set_qos_values (message, GST_CLOCK_DIFF (running_time, earliest),
      proportion, 1000000);
  gst_message_set_qos_stats (message, GST_FORMAT_BUFFERS, self->processed,
      self->dropped);
  gst_element_post_message (GST_ELEMENT (self), message);
  return TRUE;
}

/* Live sinks wait by the pipeline latency; make it cover the network.
 * `taken`: from the frame's arrival, or the next one's for a held frame, to its
 * output being ready. */
static void
gst_hfam_matte_update_latency (GstHfamMatte * self, GstClockTime taken)
{
  GstClockTime latency = GST_CLOCK_TIME_NONE;

  /* The first run also plans the engine: it says nothing of the rest. */
  if (!self->warmed_up) {
    self->warmed_up = TRUE;
    return;
  }
  GST_OBJECT_LOCK (self);
  if (taken > self->latency)
    latency = self->latency = gst_util_uint64_scale_ceil (taken, 5, 4);
  GST_OBJECT_UNLOCK (self);
  if (GST_CLOCK_TIME_IS_VALID (latency)) {
    GST_INFO_OBJECT (self, "a frame took %" GST_TIME_FORMAT ", latency now %"
        GST_TIME_FORMAT, GST_TIME_ARGS (taken), GST_TIME_ARGS (latency));
    gst_element_post_message (GST_ELEMENT (self),
        gst_message_new_latency (GST_OBJECT (self)));
  }
}

/* A held frame waits for the next one: with pipeline-depth 2 the latency grows
 * by a frame duration. `replace`: the caps' framerate; otherwise (variable
 * framerate) a buffer's duration, which only ever raises it. */
void
gst_hfam_matte_set_frame_duration (GstHfamMatte * self, GstClockTime duration,
    gboolean replace)
{
  const GstClockTime held =
      (gst_hfam_matte_worker_depth (self->worker) - 1) * duration;
  gboolean changed;

  GST_OBJECT_LOCK (self);
  changed = replace ? held != self->held_latency : held > self->held_latency;
  if (changed)
    self->held_latency = held;
  GST_OBJECT_UNLOCK (self);
  if (changed) {
    GST_INFO_OBJECT (self, "holding a frame adds %" GST_TIME_FORMAT,
        GST_TIME_ARGS (held));
    gst_element_post_message (GST_ELEMENT (self),
        gst_message_new_latency (GST_OBJECT (self)));
  }
}

/* The input's timestamps and flags on an output buffer. */
static void
gst_hfam_matte_stamp (GstBuffer * outbuf, const GstHfamMatteWorkerFrame * frame)
{
  gst_buffer_copy_into (outbuf, frame->buffer,
      GST_BUFFER_COPY_FLAGS | GST_BUFFER_COPY_TIMESTAMPS, 0, -1);
  if (frame->discont)
    GST_BUFFER_FLAG_SET (outbuf, GST_BUFFER_FLAG_DISCONT);
}

/* An output buffer from its pad's pool, mapped for writing: on the device (GST_MAP_CUDA)
 * for a frame on the device path. */
static GstFlowReturn
gst_hfam_matte_acquire (GstHfamMatte * self, GstHfamMatteOutput * output,
    gboolean on_device, GstBuffer ** outbuf, GstVideoFrame * mapped)
{
  GstMapFlags flags = GST_MAP_WRITE;
  GstFlowReturn ret;

  ret = gst_buffer_pool_acquire_buffer (output->pool, outbuf, NULL);
  if (ret == GST_FLOW_FLUSHING) {
    GST_DEBUG_OBJECT (output->pad, "flushing");
    return ret;
  }
  if (ret != GST_FLOW_OK) {
    GST_ERROR_OBJECT (output->pad, "no output buffer: %s",
        gst_flow_get_name (ret));
    return ret;
  }
#ifdef HFAM_HAVE_GST_CUDA
  if (on_device) {
    if (!gst_is_cuda_memory (gst_buffer_peek_memory (*outbuf, 0))) {
      GST_ERROR_OBJECT (output->pad, "the output buffer is not CUDA memory");
      gst_clear_buffer (outbuf);
      return GST_FLOW_ERROR;
    }
    flags |= GST_MAP_CUDA;
  }
#else
  g_assert (!on_device);
#endif
  if (!gst_video_frame_map (mapped, &output->info, *outbuf, flags)) {
    GST_ERROR_OBJECT (output->pad, "cannot map the output buffer");
    gst_clear_buffer (outbuf);
    return GST_FLOW_ERROR;
  }
  return GST_FLOW_OK;
}

/* Pushes what was made; an output that made nothing counts as not linked. */
GstFlowReturn
gst_hfam_matte_push (GstHfamMatte * self, GstBuffer * fill_buf,
    GstBuffer * key_buf)
{
  GstFlowReturn fill_ret, key_ret;

  fill_ret = fill_buf ? gst_pad_push (self->fill.pad, fill_buf)
      : GST_FLOW_NOT_LINKED;
  gst_flow_combiner_update_pad_flow (self->flow_combiner, self->fill.pad,
      fill_ret);
  key_ret = key_buf ? gst_pad_push (self->key.pad, key_buf)
      : GST_FLOW_NOT_LINKED;
  return gst_flow_combiner_update_pad_flow (self->flow_combiner, self->key.pad,
      key_ret);
}

/* A due frame that goes to no output (none linked, or no buffer for it):
 * settled all the same, else libhfam would keep it in flight and the next frame
 * would find it there. */
static GstFlowReturn
gst_hfam_matte_settle (GstHfamMatte * self, GstHfamMatteWorkerFrame * frame)
{
  GError *error = NULL;

  if (gst_hfam_matte_worker_settle (self->worker, frame, &error))
    return GST_FLOW_OK;
  GST_ELEMENT_ERROR (self, LIBRARY, FAILED,
      ("Matting failed: %s", error->message), (NULL));
  g_error_free (error);
  return GST_FLOW_ERROR;
}

/* The frame's matte into a buffer for each output it goes to, stamped with
 * its timestamps and flags; settled where it goes to none. */
static GstFlowReturn
gst_hfam_matte_render (GstHfamMatte * self, GstHfamMatteWorkerFrame * frame,
    gboolean want_fill, gboolean want_key, gboolean premultiplied,
    GstBuffer ** fill_buf, GstBuffer ** key_buf)
{
  GstVideoFrame fill, key;
  GstFlowReturn ret = GST_FLOW_OK;
  GError *error = NULL;
  gboolean written;

  if (want_fill)
    ret = gst_hfam_matte_acquire (self, &self->fill, frame->on_device,
        fill_buf, &fill);
  if (ret == GST_FLOW_OK && want_key)
    ret = gst_hfam_matte_acquire (self, &self->key, FALSE, key_buf, &key);
  if (ret != GST_FLOW_OK || !(*fill_buf || *key_buf)) {
    if (*fill_buf)
      gst_video_frame_unmap (&fill);
    gst_clear_buffer (fill_buf);
    /* (the acquire's flow return is the one to give) */
    return gst_hfam_matte_settle (self, frame) == GST_FLOW_OK ? ret
        : GST_FLOW_ERROR;
  }
  written = gst_hfam_matte_worker_write (self->worker, frame,
      *fill_buf ? &fill : NULL, premultiplied, *key_buf ? &key : NULL, &error);
  if (*fill_buf)
    gst_video_frame_unmap (&fill);
  if (*key_buf)
    gst_video_frame_unmap (&key);
  if (!written) {
    GST_ELEMENT_ERROR (self, LIBRARY, FAILED,
        ("Matting failed: %s", error->message), (NULL));
    g_error_free (error);
    gst_clear_buffer (fill_buf);
    gst_clear_buffer (key_buf);
    return GST_FLOW_ERROR;
  }
  if (*fill_buf)
    gst_hfam_matte_stamp (*fill_buf, frame);
  if (*key_buf)
    gst_hfam_matte_stamp (*key_buf, frame);
  return GST_FLOW_OK;
}

/* Writes and pushes a frame whose matte is ready (on the device path: whose
 * matte is collected here), on each linked output. `since`: when the frame
 * that made it due arrived. */
static GstFlowReturn
gst_hfam_matte_output_frame (GstHfamMatte * self,
    GstHfamMatteWorkerFrame * frame, GstClockTime since)
{
  const gboolean want_fill = gst_pad_is_linked (self->fill.pad)
      && self->fill.pool;
  const gboolean want_key = gst_pad_is_linked (self->key.pad) && self->key.pool;
  GstBuffer *fill_buf = NULL, *key_buf = NULL;
  GstFlowReturn ret = GST_FLOW_OK;
  gboolean premultiplied;

  GST_OBJECT_LOCK (self);
  premultiplied = self->premultiplied;
  GST_OBJECT_UNLOCK (self);
  if (frame->on_device && want_key)
    GST_WARNING_OBJECT (self->key.pad, "no key for a frame in CUDA memory: "
        "linked after negotiation? (a linked key pad negotiates system memory)");
  ret = gst_hfam_matte_render (self, frame, want_fill,
      want_key && !frame->on_device, premultiplied, &fill_buf, &key_buf);
  if (ret != GST_FLOW_OK)
    return ret;
  /* ready to go: what downstream then takes to accept it is not ours */
  if (frame->runs)
    gst_hfam_matte_update_latency (self,
        gst_util_get_timestamp () - MAX (frame->arrived, since));
  self->processed++;
  return gst_hfam_matte_push (self, fill_buf, key_buf);
}

/* Pushes the held frames that are due (all of them with `drain`). `since`:
 * when the frame that made them due arrived. */
GstFlowReturn
gst_hfam_matte_output_due (GstHfamMatte * self, gboolean drain,
    GstClockTime since)
{
  GstHfamMatteWorkerFrame *frame;
  GstFlowReturn ret = GST_FLOW_OK;

  while (ret == GST_FLOW_OK
      && (frame = gst_hfam_matte_worker_pop (self->worker, drain))) {
    ret = gst_hfam_matte_output_frame (self, frame, since);
    gst_hfam_matte_worker_frame_free (frame);
  }
  return ret;
}

/* Before a serialized event: every held frame out, in order. Frames that
 * cannot be pushed are dropped. */
void
gst_hfam_matte_drain (GstHfamMatte * self)
{
  GstFlowReturn ret = gst_hfam_matte_output_due (self, TRUE,
      gst_util_get_timestamp ());

  if (ret != GST_FLOW_OK) {
    GST_DEBUG_OBJECT (self, "drain: %s, dropping %u held frame(s)",
        gst_flow_get_name (ret), gst_hfam_matte_worker_n_held (self->worker));
    gst_hfam_matte_worker_flush (self->worker);
  }
}
