/* hfammatte's instance and what its files share: the element (gsthfammatte.c),
 * caps and buffer pools (gsthfammattecaps.c), the frames out with QoS and
 * latency (gsthfammatteoutput.c), and the pipeline's CUDA context
 * (gsthfammattecuda.c). The per-stream state is gsthfammatteworker.h's.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#ifndef GST_HFAM_MATTE_PRIVATE_H
#define GST_HFAM_MATTE_PRIVATE_H

#include "gsthfammatte.h"
#include "gsthfammatteworker.h"

#include <gst/base/gstflowcombiner.h>
#include <gst/video/video.h>
#ifdef HFAM_HAVE_GST_CUDA
#include <gst/cuda/gstcudacontext.h>
#endif

G_BEGIN_DECLS

GST_DEBUG_CATEGORY_EXTERN (gst_hfam_matte_debug);
#define GST_CAT_DEFAULT gst_hfam_matte_debug

typedef enum
{
  GST_HFAM_MATTE_BACKEND_AUTO,
  GST_HFAM_MATTE_BACKEND_CPU,
  GST_HFAM_MATTE_BACKEND_CUDA,
} GstHfamMatteBackend;

/* gsthfammatteproperties.c */
#define GST_TYPE_HFAM_MATTE_BACKEND (gst_hfam_matte_backend_get_type ())
GType gst_hfam_matte_backend_get_type (void);
/* libhfam's HfamPrecision, HfamRefine, HfamFill and HfamTemporal, value for value */
#define GST_TYPE_HFAM_MATTE_PRECISION (gst_hfam_matte_precision_get_type ())
GType gst_hfam_matte_precision_get_type (void);
#define GST_TYPE_HFAM_MATTE_REFINE (gst_hfam_matte_refine_get_type ())
GType gst_hfam_matte_refine_get_type (void);
#define GST_TYPE_HFAM_MATTE_FILL (gst_hfam_matte_fill_get_type ())
GType gst_hfam_matte_fill_get_type (void);
#define GST_TYPE_HFAM_MATTE_TEMPORAL (gst_hfam_matte_temporal_get_type ())
GType gst_hfam_matte_temporal_get_type (void);

/* One source pad: the frame with its matte ("src") or the matte alone ("alpha"). */
typedef struct
{
  GstPad *pad;
  GstVideoInfo info;            /* negotiated */
  gboolean cuda_memory;         /* negotiated memory:CUDAMemory */
  GstBufferPool *pool;          /* set while negotiated and linked */
  /* QoS from downstream, under the object lock: frames that end before
   * earliest_time are late there. */
  GstClockTime earliest_time;
  gdouble proportion;
} GstHfamMatteOutput;

struct _GstHfamMatte
{
  GstElement parent;

  GstPad *sinkpad;
  GstHfamMatteOutput fill;
  GstHfamMatteOutput key;
  GstFlowCombiner *flow_combiner;

  /* Properties, under the object lock. */
  gchar *model_path;
  GstHfamMatteBackend backend;
  gint cuda_device_id;
  guint inference_size;
  guint inference_interval;
  gdouble temporal_smoothing;
  HfamTemporal temporal_mode;
  gdouble islands;
  gboolean letterbox;
  gboolean premultiplied;
  gboolean qos;
  guint n_threads;
  HfamPrecision precision;
  guint pipeline_depth;
  guint64 memory_budget_mib;
  gboolean share_model;
  guint max_batch;
  GstClockTime batch_timeout;
  HfamRefine refine;
  HfamFill fill_colours;         /* the fill property */
  gdouble key_black, key_white;
  /* From READY->PAUSED, which reads the READY-only properties, to PAUSED->READY:
   * those are in force and refuse changes. */
  gboolean started;

#ifdef HFAM_HAVE_GST_CUDA
  /* The pipeline's CUDA context (GstContext), under the object lock. */
  GstCudaContext *cuda_context;
#endif

  /* Between READY->PAUSED and PAUSED->READY. */
  HfamModel *model;
  GstHfamMatteWorker *worker;
  gboolean warned_cpu_fallback;

  /* Streaming thread. */
  gboolean have_input;
  GstVideoInfo in_info;
  gboolean in_cuda_memory;
  GstSegment segment;
  gboolean discont;             /* frames were dropped since the last output */
  guint64 processed, dropped;
  gboolean warmed_up;           /* the first network run of the stream is done */

  /* Under the object lock. */
  GstClockTime latency;         /* the longest arrival-to-output measured */
  GstClockTime held_latency;    /* what holding frames adds: a frame duration */
  guint32 last_seek_seqnum;
};

/* gsthfammattecaps.c: caps over the three pads, output negotiation and pools. */
GstCaps *gst_hfam_matte_sink_caps (GstHfamMatte * self, GstCaps * filter);
GstCaps *gst_hfam_matte_src_caps (GstHfamMatte * self, GstPad * pad,
    GstCaps * filter);
gboolean gst_hfam_matte_set_caps (GstHfamMatte * self, GstCaps * caps);
gboolean gst_hfam_matte_ensure_output (GstHfamMatte * self,
    GstHfamMatteOutput * output);
void gst_hfam_matte_clear_pool (GstHfamMatteOutput * output);

/* gsthfammatteoutput.c: frames out, QoS and latency. */
void gst_hfam_matte_reset_qos (GstHfamMatte * self);
/* A stream's start: the counts, QoS, flow combiner and measured latency anew. */
void gst_hfam_matte_reset_outputs (GstHfamMatte * self);
void gst_hfam_matte_update_qos (GstHfamMatte * self,
    GstHfamMatteOutput * output, GstEvent * event);
gboolean gst_hfam_matte_drop_if_late (GstHfamMatte * self, GstBuffer * buffer,
    gboolean want_fill, gboolean want_key);
void gst_hfam_matte_set_frame_duration (GstHfamMatte * self,
    GstClockTime duration, gboolean replace);
GstFlowReturn gst_hfam_matte_push (GstHfamMatte * self, GstBuffer * fill_buf,
    GstBuffer * key_buf);
GstFlowReturn gst_hfam_matte_output_due (GstHfamMatte * self, gboolean drain,
    GstClockTime since);
void gst_hfam_matte_drain (GstHfamMatte * self);

/* gsthfammattecuda.c: the model at `path`, shared with other elements when
 * `share_model` (hfam_model_load_shared); NULL, with the error posted, when
 * it does not load. */
HfamModel *gst_hfam_matte_load_model (GstHfamMatte * self, const gchar * path,
    gboolean share_model);
/* gsthfammattecuda.c: opens the backend the backend property asks for, with
 * `options` (whose backend it sets); auto falls back to the CPU when no CUDA
 * device opens. *cuda_context: the GstCudaContext libhfam runs on, if any (a
 * reference). NULL, with the error posted, when none opens. */
HfamContext *gst_hfam_matte_open_context (GstHfamMatte * self,
    GstHfamMatteBackend backend, gint device_id, const HfamOptions * options,
    gpointer * cuda_context);

#ifdef HFAM_HAVE_GST_CUDA
/* gsthfammattecuda.c: the pipeline's CUDA context. */
void gst_hfam_matte_handle_set_context (GstHfamMatte * self,
    GstContext * context);
gboolean gst_hfam_matte_context_query (GstHfamMatte * self, GstQuery * query);
void gst_hfam_matte_propose_cuda_pool (GstHfamMatte * self, GstQuery * query);
#endif

/* gsthfammatteproperties.c, under the object lock. key-black (white FALSE) or
 * key-white to `level`; FALSE, with a warning in the debug log, when white would
 * not be above black (the pair in force stays). */
gboolean gst_hfam_matte_set_key_level (GstHfamMatte * self, gboolean white,
    gdouble level);
/* The properties `frame` runs with (inference size, interval, temporal,
 * islands, letterbox, refine, fill, key levels) as the worker takes them,
 * the controlled ones at the frame's stream time; takes the object lock. */
void gst_hfam_matte_frame_settings (GstHfamMatte * self, GstBuffer * frame,
    GstHfamMatteWorkerSettings * settings);
/* gsthfammatteproperties.c: the inference size a frame runs at (under the
 * object lock), and gst_hfam_matte_keep_inference_size: see there. */
int gst_hfam_matte_inference_size (GstHfamMatte * self);
gboolean gst_hfam_matte_keep_inference_size (GstHfamMatte * self,
    GstHfamMatteWorkerSettings * settings, const GError * error);

G_END_DECLS

#endif
