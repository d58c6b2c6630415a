/* hfammatte: removes the background behind people with libhfam.
 * SPDX-License-Identifier: LGPL-2.1-or-later */

/**
 * SECTION:element-hfammatte
 * @title: hfammatte
 *
 * Estimates an alpha matte of the people in each frame with the HFAM portrait
 * matting network (libhfam) and outputs it twice: on `src`, the frame itself
 * with the matte in its alpha channel (RGBA or BGRA), and on `alpha`, the
 * matte alone (GRAY8 or GRAY16_LE) with the same timestamps, for keyers,
 * `alphacombine` or `compositor`. Either output may be left unlinked; the
 * element does no work for it.
 *
 * The network runs at `inference-size` (long side) whatever the frame size;
 * the matte is resized back to the frame. Non-RGB input is converted to RGB
 * with its negotiated colorimetry. Memory and time grow with `inference-size`
 * squared. Its default, 0 (auto), is the model's own size on CUDA and a
 * real-time size on the CPU (hfam_context_auto_long_side: 256 in fp32, 192
 * in fp32 without AVX-512, 320 in int8, 416 in int8-bf16, on 2 threads; more
 * with more); 512 gives the model's best matte. At that size, before the
 * smoothing and the resize, `islands` drops the parts of the matte apart from
 * the person (a flower or a boat taken for foreground): the regions whose alpha
 * sums to less than that share of the largest region's, and again from the
 * smoothed matte, so that what the network dropped does not linger; 0 keeps
 * every one, as scenes with several people of different sizes need;
 * `letterbox` clears bars.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 videotestsrc num-buffers=100 ! hfammatte name=m \
 *     m.src ! queue ! compositor background=checker ! videoconvert ! autovideosink \
 *     m.alpha ! queue ! videoconvert ! autovideosink
 * ]| Runs the default model (the `model` property's default, installed with
 * the element) and shows the frames over a checkerboard where the matte makes
 * them transparent and, in a second window, the matte alone. Like after a tee,
 * each branch needs its queue.
 *
 * ## Changing properties while running
 * `inference-size`, `inference-interval`, `temporal-smoothing`, `temporal-mode`,
 * `islands`, `letterbox`, `premultiplied`, `qos`, `refine`, `fill`, `key-black`
 * and `key-white` apply from the next frame in any state (a held frame first
 * goes out at the old `inference-size`; a size over `memory-budget` is refused
 * with a warning, and the property set back). The others are read when going
 * to PAUSED: changeable only in NULL and READY, they refuse a change later
 * with a warning in the debug log. The levels, `key-black`, `key-white`,
 * `temporal-smoothing` and `islands`, are controllable: a GstController
 * binding sets them for each frame at its stream time.
 *
 * ## Pipeline depth and latency
 * With `pipeline-depth=1` (the default) the element processes each frame in
 * its chain function and holds nothing back. With `pipeline-depth=2` it holds
 * one frame: the network runs on frame n + 1 while frame n is written out and
 * pushed (on CUDA the encoder of n + 1 also overlaps the decoders of n; on the
 * CPU the network runs on a thread of its own), which raises throughput at the
 * cost of one frame of latency. Serialized events (EOS, caps, segments, gaps)
 * first push the held frame out; a flush drops it.
 *
 * ## CUDA memory
 * Where the element is built with CUDA and GStreamer's gstcuda library, its
 * pads also carry `video/x-raw(memory:CUDAMemory)` (sink: NV12, I420, RGBA,
 * BGRA, RGBx, BGRx), the same memory on all three pads. The CUDA backend then
 * runs on the pipeline's CUDA context, shared with the neighbours through
 * GstContext, and frames in that context's memory go from the input to the
 * outputs without a copy through the host: the frame is resized and
 * normalised on the device, and the matte written on the device into buffers
 * of a CUDA buffer pool. The matte stays on the device between frames too:
 * `temporal-smoothing` blends it there (at the inference size, before the
 * resize to the frame, which gives the same matte up to float rounding; a
 * change of `inference-size` restarts the smoothing there) and the frames that
 * `inference-interval` skips are written from it, where it is, after moving
 * it along the picture's motion. For colour matrices other
 * than BT.601 and BT.709, frames go through gstcuda's host staging instead.
 *
 * A network run takes time. In live pipelines the element therefore reports
 * as its latency the longest time it has measured from a frame's arrival (or,
 * for a held frame, the next frame's arrival) to its outputs being written,
 * with a quarter of headroom, not counting a stream's first run, which also
 * sets the engine up; it posts a latency message whenever that grows, so that
 * sinks keep frames in sync instead of finding all of them late. To that it
 * adds, with `pipeline-depth=2`, one frame duration (from the caps' framerate
 * or, where that is variable, the buffers' duration).
 */

#include "gsthfammatteprivate.h"

#ifdef HFAM_HAVE_GST_CUDA
#include <gst/cuda/gstcudamemory.h>
#endif
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string.h>

GST_DEBUG_CATEGORY (gst_hfam_matte_debug);

#define DEFAULT_PROP_MODEL hfam_default_model_path ()
#define DEFAULT_PROP_BACKEND GST_HFAM_MATTE_BACKEND_AUTO
#define DEFAULT_PROP_CUDA_DEVICE_ID -1
#define DEFAULT_PROP_INFERENCE_SIZE 0  /* auto */
#define DEFAULT_PROP_INFERENCE_INTERVAL 1
#define DEFAULT_PROP_TEMPORAL_SMOOTHING HFAM_TEMPORAL_SMOOTHING_DEFAULT
#define DEFAULT_PROP_TEMPORAL_MODE HFAM_TEMPORAL_COMPENSATED
#define DEFAULT_PROP_ISLANDS HFAM_ISLANDS_DEFAULT
#define DEFAULT_PROP_LETTERBOX TRUE
#define DEFAULT_PROP_PREMULTIPLIED FALSE
#define DEFAULT_PROP_QOS TRUE
#define DEFAULT_PROP_N_THREADS 0
#define DEFAULT_PROP_PRECISION HFAM_PRECISION_DEFAULT
#define DEFAULT_PROP_PIPELINE_DEPTH 1
#define DEFAULT_PROP_MEMORY_BUDGET 0
#define DEFAULT_PROP_SHARE_MODEL TRUE
#define DEFAULT_PROP_MAX_BATCH 1
#define DEFAULT_PROP_BATCH_TIMEOUT (1 * GST_MSECOND)
/* guided: chosen on a validation split (BENCHMARKS.md, "Edges"); the fill and levels leave
 * the colours and the matte as they are */
#define DEFAULT_PROP_REFINE HFAM_REFINE_GUIDED
#define DEFAULT_PROP_FILL HFAM_FILL_FRAME
#define DEFAULT_PROP_KEY_BLACK 0.0
#define DEFAULT_PROP_KEY_WHITE 1.0

/* libhfam's bounds (HfamOptions): a batch of at most 64, a time-out in whole microseconds
 * that fit an int; a second is already far more than a live stream can wait */
#define MAX_MAX_BATCH 64
#define MAX_BATCH_TIMEOUT GST_SECOND

/* in MiB: the most whose bytes still fit a guint64 */
#define MAX_MEMORY_BUDGET (G_MAXUINT64 >> 20)

#define MIN_INFERENCE_SIZE 32
#define MAX_INFERENCE_SIZE 4096

/* the levels: changeable while PLAYING, and by a GstController binding */
#define LEVEL_FLAGS (G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | \
    GST_PARAM_MUTABLE_PLAYING | GST_PARAM_CONTROLLABLE)

enum
{
  PROP_0,
  PROP_MODEL,
  PROP_BACKEND,
  PROP_CUDA_DEVICE_ID,
  PROP_INFERENCE_SIZE,
  PROP_INFERENCE_INTERVAL,
  PROP_TEMPORAL_SMOOTHING,
  PROP_TEMPORAL_MODE,
  PROP_ISLANDS,
  PROP_LETTERBOX,
  PROP_PREMULTIPLIED,
  PROP_QOS,
  PROP_N_THREADS,
  PROP_PRECISION,
  PROP_PIPELINE_DEPTH,
  PROP_MEMORY_BUDGET,
  PROP_SHARE_MODEL,
  PROP_MAX_BATCH,
  PROP_BATCH_TIMEOUT,
  PROP_REFINE,
  PROP_FILL,
  PROP_KEY_BLACK,
  PROP_KEY_WHITE,
};

/* RGB layouts libhfam reads as they are first (upstream picks them when it can), then YUV. */
#define SINK_FORMATS "{ RGBA, BGRA, RGBx, BGRx, RGB, BGR, ARGB, ABGR, xRGB, xBGR, I420, YV12, " \
    "NV12, NV21, Y42B, Y444, YUY2, UYVY, AYUV, v210, P010_10LE, I420_10LE, I422_10LE, Y444_10LE }"

/* The same in CUDA memory, first: upstream keeps frames on the device when it
 * can. The sink's are what gstcuda allocates and the device path reads. */
#ifdef HFAM_HAVE_GST_CUDA
#define CUDA_CAPS(formats) GST_VIDEO_CAPS_MAKE_WITH_FEATURES \
    (GST_CAPS_FEATURE_MEMORY_CUDA_MEMORY, formats) "; "
#else
#define CUDA_CAPS(formats) ""
#endif

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK,
    GST_PAD_ALWAYS,
    GST_STATIC_CAPS (CUDA_CAPS ("{ NV12, I420, RGBA, BGRA, RGBx, BGRx }")
        GST_VIDEO_CAPS_MAKE (SINK_FORMATS)));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC,
    GST_PAD_ALWAYS,
    GST_STATIC_CAPS (CUDA_CAPS ("{ RGBA, BGRA }")
        GST_VIDEO_CAPS_MAKE ("{ RGBA, BGRA }")));

/* System memory only: gstcuda allocates no GRAY format (1.22 aborts on one), so
 * the key in CUDA memory could come from no pool. With this pad linked, the
 * element runs on system memory. */
static GstStaticPadTemplate alpha_template = GST_STATIC_PAD_TEMPLATE ("alpha",
    GST_PAD_SRC,
    GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE ("{ GRAY8, GRAY16_LE }")));

#define gst_hfam_matte_parent_class parent_class
G_DEFINE_TYPE (GstHfamMatte, gst_hfam_matte, GST_TYPE_ELEMENT);
GST_ELEMENT_REGISTER_DEFINE_WITH_CODE (hfammatte, "hfammatte", GST_RANK_NONE,
    GST_TYPE_HFAM_MATTE,
    GST_DEBUG_CATEGORY_INIT (gst_hfam_matte_debug, "hfammatte", 0,
        "HFAM portrait matting"));

static void gst_hfam_matte_finalize (GObject * object);
static void gst_hfam_matte_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec);
static void gst_hfam_matte_get_property (GObject * object, guint prop_id,
    GValue * value, GParamSpec * pspec);
static GstStateChangeReturn gst_hfam_matte_change_state (GstElement * element,
    GstStateChange transition);
#ifdef HFAM_HAVE_GST_CUDA
static void gst_hfam_matte_set_context (GstElement * element,
    GstContext * context);
#endif
static GstFlowReturn gst_hfam_matte_chain (GstPad * pad, GstObject * parent,
    GstBuffer * buffer);
static gboolean gst_hfam_matte_sink_event (GstPad * pad, GstObject * parent,
    GstEvent * event);
static gboolean gst_hfam_matte_sink_query (GstPad * pad, GstObject * parent,
    GstQuery * query);
static gboolean gst_hfam_matte_src_event (GstPad * pad, GstObject * parent,
    GstEvent * event);
static gboolean gst_hfam_matte_src_query (GstPad * pad, GstObject * parent,
    GstQuery * query);

static void
gst_hfam_matte_class_init (GstHfamMatteClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);

  gobject_class->finalize = gst_hfam_matte_finalize;
  gobject_class->set_property = gst_hfam_matte_set_property;
  gobject_class->get_property = gst_hfam_matte_get_property;

  g_object_class_install_property (gobject_class, PROP_MODEL,
      g_param_spec_string ("model", "Model",
          "HFAM weight file (.safetensors), read when going to PAUSED (the "
          "default: the model installed with the element; NULL sets it back); "
          "changeable only in NULL and READY",
          DEFAULT_PROP_MODEL, G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_BACKEND,
      g_param_spec_enum ("backend", "Backend",
          "Where the network runs; chosen when going to PAUSED; changeable "
          "only in NULL and READY",
          GST_TYPE_HFAM_MATTE_BACKEND, DEFAULT_PROP_BACKEND,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_CUDA_DEVICE_ID,
      g_param_spec_int ("cuda-device-id", "CUDA device ID",
          "CUDA device to run on (-1 = the first one); changeable only in NULL "
          "and READY", -1, G_MAXINT,
          DEFAULT_PROP_CUDA_DEVICE_ID, G_PARAM_READWRITE |
          G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_INFERENCE_SIZE,
      g_param_spec_uint ("inference-size", "Inference size",
          "Long side of the frame as the network sees it, rounded to a "
          "multiple of 32; 0: auto (the model's size on CUDA, a real-time "
          "size on the CPU that grows with n-threads). Memory and time grow "
          "with its square (on the CPU, 4096 on a 4:3 frame takes gigabytes "
          "and minutes a frame); a size over memory-budget fails the first "
          "frame, or while running keeps the previous size", 0,
          MAX_INFERENCE_SIZE,
          DEFAULT_PROP_INFERENCE_SIZE, G_PARAM_READWRITE |
          G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_INFERENCE_INTERVAL,
      g_param_spec_uint ("inference-interval", "Inference interval",
          "Run the network on one frame in this many and reuse its matte in "
          "between (moved along the picture's motion when temporal-mode is "
          "compensated)", 1, G_MAXUINT, DEFAULT_PROP_INFERENCE_INTERVAL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_TEMPORAL_SMOOTHING,
      g_param_spec_double ("temporal-smoothing", "Temporal smoothing",
          "Weight s of the previous matte: matte = (1 - s) * new + s * "
          "previous (temporal-mode says where); restarts on flush, seek, "
          "discontinuity and caps change", 0.0, 1.0,
          DEFAULT_PROP_TEMPORAL_SMOOTHING, LEVEL_FLAGS));
  g_object_class_install_property (gobject_class, PROP_TEMPORAL_MODE,
      g_param_spec_enum ("temporal-mode", "Temporal mode",
          "Where temporal-smoothing blends", GST_TYPE_HFAM_MATTE_TEMPORAL,
          DEFAULT_PROP_TEMPORAL_MODE, G_PARAM_READWRITE |
          G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_ISLANDS,
      g_param_spec_double ("islands", "Islands",
          "Drop the parts of the matte apart from the person (regions whose "
          "alpha sums to less than this share of the largest region's; 0: "
          "keep all)", 0.0, 1.0, DEFAULT_PROP_ISLANDS, LEVEL_FLAGS));
  g_object_class_install_property (gobject_class, PROP_LETTERBOX,
      g_param_spec_boolean ("letterbox", "Letterbox",
          "Black bars along the frame's edges (letterbox, pillarbox) are not "
          "the person: the matte is 0 over them", DEFAULT_PROP_LETTERBOX,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_PREMULTIPLIED,
      g_param_spec_boolean ("premultiplied", "Premultiplied",
          "Multiply the colour of the src output by its alpha",
          DEFAULT_PROP_PREMULTIPLIED, G_PARAM_READWRITE |
          G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_QOS,
      g_param_spec_boolean ("qos", "QoS",
          "Drop frames that are already late downstream", DEFAULT_PROP_QOS,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_N_THREADS,
      g_param_spec_uint ("n-threads", "Threads",
          "CPU threads for the network, the colour conversion and the "
          "matte's resizing and writing (0 = one per core); changeable only in "
          "NULL and READY", 0, 1024, DEFAULT_PROP_N_THREADS,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_PRECISION,
      g_param_spec_enum ("precision", "Precision",
          "What the network computes in; chosen when going to PAUSED; "
          "changeable only in NULL and READY",
          GST_TYPE_HFAM_MATTE_PRECISION, DEFAULT_PROP_PRECISION,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_PIPELINE_DEPTH,
      g_param_spec_uint ("pipeline-depth", "Pipeline depth",
          "Frames the network works on at once: 1 = lowest latency, 2 = the "
          "next frame runs while the previous one is finished and pushed, one "
          "frame of latency more; changeable only in NULL and READY", 1, 2,
          DEFAULT_PROP_PIPELINE_DEPTH, G_PARAM_READWRITE |
          G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_MEMORY_BUDGET,
      g_param_spec_uint64 ("memory-budget", "Memory budget",
          "Host memory in MiB the network may take for its weights in the "
          "CPU's layout and an inference size (0 = half the physical memory, "
          "at most 8 GiB); "
          "changeable only in NULL and READY", 0, MAX_MEMORY_BUDGET,
          DEFAULT_PROP_MEMORY_BUDGET, G_PARAM_READWRITE |
          G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_SHARE_MODEL,
      g_param_spec_boolean ("share-model", "Share model",
          "Load the model once for all the elements of the process that name "
          "the same file, so that they hold its weights (and the CPU's copies "
          "of them) once; FALSE: a copy of this element's own; changeable only "
          "in NULL and READY", DEFAULT_PROP_SHARE_MODEL,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_MAX_BATCH,
      g_param_spec_uint ("max-batch", "Max batch",
          "Run this element's frames with those of the other elements of the "
          "process on the same model file (share-model) and settings in "
          "batches of up to this many frames; 1 = run its frames alone. The "
          "CPU backend runs a batch's frames side by side, each lane with a "
          "share of n-threads; the CUDA backend runs a batch as one (frames "
          "in CUDA memory stay there); changeable only in NULL and READY",
          1, MAX_MAX_BATCH, DEFAULT_PROP_MAX_BATCH, G_PARAM_READWRITE |
          G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_BATCH_TIMEOUT,
      g_param_spec_uint64 ("batch-timeout", "Batch timeout",
          "With max-batch > 1: how long (ns) a batch waits for the frames of "
          "the elements that have none queued yet, after its first frame "
          "arrived (an element alone never waits); changeable only in NULL "
          "and READY", 0, MAX_BATCH_TIMEOUT, DEFAULT_PROP_BATCH_TIMEOUT,
          G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
          GST_PARAM_MUTABLE_READY));
  g_object_class_install_property (gobject_class, PROP_REFINE,
      g_param_spec_enum ("refine", "Refine",
          "Refine the matte at the frame's size, guided by the frame",
          GST_TYPE_HFAM_MATTE_REFINE, DEFAULT_PROP_REFINE, G_PARAM_READWRITE |
          G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_FILL,
      g_param_spec_enum ("fill", "Fill", "The colours of the src pad's frames",
          GST_TYPE_HFAM_MATTE_FILL, DEFAULT_PROP_FILL, G_PARAM_READWRITE |
          G_PARAM_STATIC_STRINGS | GST_PARAM_MUTABLE_PLAYING));
  g_object_class_install_property (gobject_class, PROP_KEY_BLACK,
      g_param_spec_double ("key-black", "Key black",
          "Matte values at or below this become 0 (below key-white)", 0.0, 1.0,
          DEFAULT_PROP_KEY_BLACK, LEVEL_FLAGS));
  g_object_class_install_property (gobject_class, PROP_KEY_WHITE,
      g_param_spec_double ("key-white", "Key white",
          "Matte values at or above this become 1 (above key-black)", 0.0, 1.0,
          DEFAULT_PROP_KEY_WHITE, LEVEL_FLAGS));

  element_class->change_state = GST_DEBUG_FUNCPTR (gst_hfam_matte_change_state);
#ifdef HFAM_HAVE_GST_CUDA
  element_class->set_context = GST_DEBUG_FUNCPTR (gst_hfam_matte_set_context);
#endif

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_add_static_pad_template (element_class, &alpha_template);
  gst_element_class_set_static_metadata (element_class,
      "HFAM portrait matting", "Filter/Effect/Video",
      "Removes the background behind people: the frame with an alpha matte "
      "on src, the matte alone on alpha", "hfammatte developers");
  /* gst-inspect-1.0 lists every metadata key: the launch line shows there. */
  gst_element_class_add_static_metadata (element_class, "example",
      "gst-launch-1.0 videotestsrc num-buffers=100 ! hfammatte name=m "
      "m.src ! queue ! compositor "
      "background=checker ! videoconvert ! autovideosink m.alpha ! queue ! "
      "videoconvert ! autovideosink");

  gst_type_mark_as_plugin_api (GST_TYPE_HFAM_MATTE_BACKEND, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_HFAM_MATTE_REFINE, 0);
  gst_type_mark_as_plugin_api (GST_TYPE_HFAM_MATTE_FILL, 0);
}

static void
gst_hfam_matte_init_output (GstHfamMatte * self, GstHfamMatteOutput * output,
    GstStaticPadTemplate * templ)
{
  output->pad = gst_pad_new_from_static_template (templ, templ->name_template);
  gst_pad_set_event_function (output->pad,
      GST_DEBUG_FUNCPTR (gst_hfam_matte_src_event));
  gst_pad_set_query_function (output->pad,
      GST_DEBUG_FUNCPTR (gst_hfam_matte_src_query));
  gst_element_add_pad (GST_ELEMENT (self), output->pad);
  gst_flow_combiner_add_pad (self->flow_combiner, output->pad);
}

static void
gst_hfam_matte_init (GstHfamMatte * self)
{
  self->sinkpad = gst_pad_new_from_static_template (&sink_template, "sink");
  gst_pad_set_chain_function (self->sinkpad,
      GST_DEBUG_FUNCPTR (gst_hfam_matte_chain));
  gst_pad_set_event_function (self->sinkpad,
      GST_DEBUG_FUNCPTR (gst_hfam_matte_sink_event));
  gst_pad_set_query_function (self->sinkpad,
      GST_DEBUG_FUNCPTR (gst_hfam_matte_sink_query));
  gst_element_add_pad (GST_ELEMENT (self), self->sinkpad);

  self->flow_combiner = gst_flow_combiner_new ();
  gst_hfam_matte_init_output (self, &self->fill, &src_template);
  gst_hfam_matte_init_output (self, &self->key, &alpha_template);

  self->model_path = g_strdup (DEFAULT_PROP_MODEL);
  self->backend = DEFAULT_PROP_BACKEND;
  self->cuda_device_id = DEFAULT_PROP_CUDA_DEVICE_ID;
  self->inference_size = DEFAULT_PROP_INFERENCE_SIZE;
  self->inference_interval = DEFAULT_PROP_INFERENCE_INTERVAL;
  self->temporal_smoothing = DEFAULT_PROP_TEMPORAL_SMOOTHING;
  self->temporal_mode = DEFAULT_PROP_TEMPORAL_MODE;
  self->islands = DEFAULT_PROP_ISLANDS;
  self->letterbox = DEFAULT_PROP_LETTERBOX;
  self->premultiplied = DEFAULT_PROP_PREMULTIPLIED;
  self->qos = DEFAULT_PROP_QOS;
  self->n_threads = DEFAULT_PROP_N_THREADS;
  self->precision = DEFAULT_PROP_PRECISION;
  self->pipeline_depth = DEFAULT_PROP_PIPELINE_DEPTH;
  self->memory_budget_mib = DEFAULT_PROP_MEMORY_BUDGET;
  self->share_model = DEFAULT_PROP_SHARE_MODEL;
  self->max_batch = DEFAULT_PROP_MAX_BATCH;
  self->batch_timeout = DEFAULT_PROP_BATCH_TIMEOUT;
  self->refine = DEFAULT_PROP_REFINE;
  self->fill_colours = DEFAULT_PROP_FILL;
  self->key_black = DEFAULT_PROP_KEY_BLACK;
  self->key_white = DEFAULT_PROP_KEY_WHITE;
}

static void
gst_hfam_matte_finalize (GObject * object)
{
  GstHfamMatte *self = GST_HFAM_MATTE (object);

  gst_flow_combiner_free (self->flow_combiner);
  g_free (self->model_path);
#ifdef HFAM_HAVE_GST_CUDA
  gst_clear_object (&self->cuda_context);
#endif

  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_hfam_matte_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstHfamMatte *self = GST_HFAM_MATTE (object);

  GST_OBJECT_LOCK (self);
  /* what going to PAUSED read stays in force until READY */
  if ((pspec->flags & GST_PARAM_MUTABLE_READY) && self->started) {
    GST_OBJECT_UNLOCK (self);
    GST_WARNING_OBJECT (self, "property '%s' is changeable only in NULL and "
        "READY: the change is ignored, the value in force stays", pspec->name);
    return;
  }
  switch (prop_id) {
    case PROP_MODEL:
      g_free (self->model_path);
      self->model_path = g_value_dup_string (value);
      if (!self->model_path || !*self->model_path) {
        g_free (self->model_path);
        self->model_path = g_strdup (DEFAULT_PROP_MODEL);
      }
      break;
    case PROP_BACKEND:
      self->backend = g_value_get_enum (value);
      break;
    case PROP_CUDA_DEVICE_ID:
      self->cuda_device_id = g_value_get_int (value);
      break;
    case PROP_INFERENCE_SIZE:
      /* The engine works in multiples of 32; keep what it will use (0: auto). */
      self->inference_size = g_value_get_uint (value) == 0 ? 0
          : CLAMP ((g_value_get_uint (value) + 16) / 32 * 32,
          MIN_INFERENCE_SIZE, MAX_INFERENCE_SIZE);
      break;
    case PROP_INFERENCE_INTERVAL:
      self->inference_interval = g_value_get_uint (value);
      break;
    case PROP_TEMPORAL_SMOOTHING:
      self->temporal_smoothing = g_value_get_double (value);
      break;
    case PROP_TEMPORAL_MODE:
      self->temporal_mode = g_value_get_enum (value);
      break;
    case PROP_ISLANDS:
      self->islands = g_value_get_double (value);
      break;
    case PROP_LETTERBOX:
      self->letterbox = g_value_get_boolean (value);
      break;
    case PROP_PREMULTIPLIED:
      self->premultiplied = g_value_get_boolean (value);
      break;
    case PROP_QOS:
      self->qos = g_value_get_boolean (value);
      break;
    case PROP_N_THREADS:
      self->n_threads = g_value_get_uint (value);
      break;
    case PROP_PRECISION:
      self->precision = g_value_get_enum (value);
      break;
    case PROP_PIPELINE_DEPTH:
      self->pipeline_depth = g_value_get_uint (value);
      break;
    case PROP_MEMORY_BUDGET:
      self->memory_budget_mib = g_value_get_uint64 (value);
      break;
    case PROP_SHARE_MODEL:
      self->share_model = g_value_get_boolean (value);
      break;
    case PROP_MAX_BATCH:
      self->max_batch = g_value_get_uint (value);
      break;
    case PROP_BATCH_TIMEOUT:
      self->batch_timeout = g_value_get_uint64 (value);
      break;
    case PROP_REFINE:
      self->refine = g_value_get_enum (value);
      break;
    case PROP_FILL:
      self->fill_colours = g_value_get_enum (value);
      break;
    case PROP_KEY_BLACK:
    case PROP_KEY_WHITE:
      gst_hfam_matte_set_key_level (self, prop_id == PROP_KEY_WHITE,
          g_value_get_double (value));
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_hfam_matte_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstHfamMatte *self = GST_HFAM_MATTE (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL:
      g_value_set_string (value, self->model_path);
      break;
    case PROP_BACKEND:
      g_value_set_enum (value, self->backend);
      break;
    case PROP_CUDA_DEVICE_ID:
      g_value_set_int (value, self->cuda_device_id);
      break;
    case PROP_INFERENCE_SIZE:
      g_value_set_uint (value, self->inference_size);
      break;
    case PROP_INFERENCE_INTERVAL:
      g_value_set_uint (value, self->inference_interval);
      break;
    case PROP_TEMPORAL_SMOOTHING:
      g_value_set_double (value, self->temporal_smoothing);
      break;
    case PROP_TEMPORAL_MODE:
      g_value_set_enum (value, self->temporal_mode);
      break;
    case PROP_ISLANDS:
      g_value_set_double (value, self->islands);
      break;
    case PROP_LETTERBOX:
      g_value_set_boolean (value, self->letterbox);
      break;
    case PROP_PREMULTIPLIED:
      g_value_set_boolean (value, self->premultiplied);
      break;
    case PROP_QOS:
      g_value_set_boolean (value, self->qos);
      break;
    case PROP_N_THREADS:
      g_value_set_uint (value, self->n_threads);
      break;
    case PROP_PRECISION:
      g_value_set_enum (value, self->precision);
      break;
    case PROP_PIPELINE_DEPTH:
      g_value_set_uint (value, self->pipeline_depth);
      break;
    case PROP_MEMORY_BUDGET:
      g_value_set_uint64 (value, self->memory_budget_mib);
      break;
    case PROP_SHARE_MODEL:
      g_value_set_boolean (value, self->share_model);
      break;
    case PROP_MAX_BATCH:
      g_value_set_uint (value, self->max_batch);
      break;
    case PROP_BATCH_TIMEOUT:
      g_value_set_uint64 (value, self->batch_timeout);
      break;
    case PROP_REFINE:
      g_value_set_enum (value, self->refine);
      break;
    case PROP_FILL:
      g_value_set_enum (value, self->fill_colours);
      break;
    case PROP_KEY_BLACK:
    case PROP_KEY_WHITE:
      g_value_set_double (value,
          prop_id == PROP_KEY_WHITE ? self->key_white : self->key_black);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

/* READY->PAUSED: load the model and open the backend, so that a bad model or a
 * missing device fails the state change. */
static gboolean
gst_hfam_matte_start (GstHfamMatte * self)
{
  GstHfamMatteBackend backend;
  HfamOptions options;
  HfamContext *ctx;
  gpointer cuda_context;
  gchar *path;
  gint device_id;
  gboolean share_model;

  GST_OBJECT_LOCK (self);
  self->started = TRUE;
  path = g_strdup (self->model_path);
  backend = self->backend;
  device_id = self->cuda_device_id;
  memset (&options, 0, sizeof (options));
  options.precision = self->precision;
  options.n_threads = self->n_threads;
  options.pipeline_depth = self->pipeline_depth;
  options.memory_budget = self->memory_budget_mib << 20;
  options.max_batch = self->max_batch;
  options.batch_timeout_us = self->batch_timeout / GST_USECOND;
  share_model = self->share_model;
  GST_OBJECT_UNLOCK (self);

  self->model = gst_hfam_matte_load_model (self, path, share_model);
  g_free (path);
  if (!self->model)
    return FALSE;

  ctx = gst_hfam_matte_open_context (self, backend, device_id, &options,
      &cuda_context);
  if (!ctx) {
    g_clear_pointer (&self->model, hfam_model_free);
    return FALSE;
  }
  GST_INFO_OBJECT (self, "running on the %s backend%s, pipeline depth %d, "
      "batches of up to %d", hfam_context_backend_name (ctx),
      cuda_context ? " on the pipeline's CUDA context" : "",
      hfam_context_pipeline_depth (ctx), hfam_context_max_batch (ctx));
  self->worker = gst_hfam_matte_worker_new (ctx, options.n_threads);
#ifdef HFAM_HAVE_GST_CUDA
  if (cuda_context) {
    gst_hfam_matte_worker_set_cuda_context (self->worker, cuda_context);
    gst_object_unref (cuda_context);
  }
#endif

  self->have_input = FALSE;
  gst_segment_init (&self->segment, GST_FORMAT_UNDEFINED);
  self->discont = FALSE;
  gst_hfam_matte_reset_outputs (self);
  GST_OBJECT_LOCK (self);
  self->last_seek_seqnum = GST_SEQNUM_INVALID;
  GST_OBJECT_UNLOCK (self);
  return TRUE;
}

static void
gst_hfam_matte_stop (GstHfamMatte * self)
{
  gst_hfam_matte_clear_pool (&self->fill);
  gst_hfam_matte_clear_pool (&self->key);
  g_clear_pointer (&self->worker, gst_hfam_matte_worker_free);
  g_clear_pointer (&self->model, hfam_model_free);
#ifdef __GLIBC__
  /* The model and plans just freed (100 MB and more) came from the malloc
   * arenas of the threads that made them, which keep the pages: a process
   * that goes through READY again and again would hold one copy an arena. */
  malloc_trim (0);
#endif
  GST_OBJECT_LOCK (self);
#ifdef HFAM_HAVE_GST_CUDA
  gst_clear_object (&self->cuda_context);
#endif
  self->started = FALSE;
  GST_OBJECT_UNLOCK (self);
}

static GstStateChangeReturn
gst_hfam_matte_change_state (GstElement * element, GstStateChange transition)
{
  GstHfamMatte *self = GST_HFAM_MATTE (element);
  GstStateChangeReturn ret;

  if (transition == GST_STATE_CHANGE_READY_TO_PAUSED
      && !gst_hfam_matte_start (self)) {
    gst_hfam_matte_stop (self);
    return GST_STATE_CHANGE_FAILURE;
  }

  ret = GST_ELEMENT_CLASS (parent_class)->change_state (element, transition);

  /* After the parent deactivated the pads, no streaming thread is inside. */
  if (transition == GST_STATE_CHANGE_PAUSED_TO_READY
      || (transition == GST_STATE_CHANGE_READY_TO_PAUSED
          && ret == GST_STATE_CHANGE_FAILURE))
    gst_hfam_matte_stop (self);
  return ret;
}

#ifdef HFAM_HAVE_GST_CUDA
/* gsthfammattecuda.c takes a CUDA context; the parent keeps every context. */
static void
gst_hfam_matte_set_context (GstElement * element, GstContext * context)
{
  gst_hfam_matte_handle_set_context (GST_HFAM_MATTE (element), context);
  GST_ELEMENT_CLASS (parent_class)->set_context (element, context);
}
#endif

static GstFlowReturn
gst_hfam_matte_chain (GstPad * pad, GstObject * parent, GstBuffer * inbuf)
{
  GstHfamMatte *self = GST_HFAM_MATTE (parent);
  const gboolean want_fill = gst_pad_is_linked (self->fill.pad);
  const gboolean want_key = gst_pad_is_linked (self->key.pad);
  const GstClockTime arrived = gst_util_get_timestamp ();
  GstHfamMatteWorkerSettings settings;
  GstHfamMatteWorkerFrame *frame;
  GError *error = NULL;

  if (!want_fill && !want_key) {
    GST_LOG_OBJECT (self, "no output linked, dropping %" GST_PTR_FORMAT, inbuf);
    gst_buffer_unref (inbuf);
    return gst_hfam_matte_push (self, NULL, NULL);
  }
  if (!self->have_input) {
    GST_ELEMENT_ERROR (self, CORE, NEGOTIATION, (NULL),
        ("a buffer arrived before the caps"));
    gst_buffer_unref (inbuf);
    return GST_FLOW_NOT_NEGOTIATED;
  }
  if (GST_BUFFER_FLAG_IS_SET (inbuf, GST_BUFFER_FLAG_DISCONT))
    gst_hfam_matte_worker_reset (self->worker);
  if (GST_VIDEO_INFO_FPS_N (&self->in_info) == 0
      && GST_BUFFER_DURATION_IS_VALID (inbuf))
    gst_hfam_matte_set_frame_duration (self, GST_BUFFER_DURATION (inbuf),
        FALSE);
  if (gst_hfam_matte_drop_if_late (self, inbuf, want_fill, want_key)) {
    gst_buffer_unref (inbuf);
    return GST_FLOW_OK;
  }
  if ((want_fill && !gst_hfam_matte_ensure_output (self, &self->fill))
      || (want_key && !gst_hfam_matte_ensure_output (self, &self->key))) {
    GST_ERROR_OBJECT (self, "output not negotiated");
    gst_buffer_unref (inbuf);
    return GST_FLOW_NOT_NEGOTIATED;
  }

  gst_hfam_matte_frame_settings (self, inbuf, &settings);

  /* frames in flight go out at their size, and on their path, first */
  if (gst_hfam_matte_worker_must_drain (self->worker, inbuf, &settings))
    gst_hfam_matte_drain (self);
  frame = gst_hfam_matte_worker_push (self->worker, gst_buffer_ref (inbuf),
      &settings, &error);
  if (!frame && gst_hfam_matte_keep_inference_size (self, &settings, error)) {
    g_clear_error (&error);
    frame = gst_hfam_matte_worker_push (self->worker, gst_buffer_ref (inbuf),
        &settings, &error);
  }
  gst_buffer_unref (inbuf);
  if (!frame) {
    GST_ELEMENT_ERROR (self, LIBRARY, FAILED,
        ("Matting failed: %s", error->message), (NULL));
    g_error_free (error);
    return GST_FLOW_ERROR;
  }
  frame->discont = self->discont;
  self->discont = FALSE;
  return gst_hfam_matte_output_due (self, FALSE, arrived);
}

/* The alpha pad carries a stream of its own, named after the input's. */
static gboolean
gst_hfam_matte_start_streams (GstHfamMatte * self, GstEvent * event)
{
  const gchar *stream_id;
  gchar *key_stream_id;
  GstEvent *key_event;
  GstStreamFlags flags;
  guint group_id;
  gboolean ok;

  gst_event_parse_stream_start (event, &stream_id);
  gst_event_parse_stream_flags (event, &flags);
  key_stream_id = g_strconcat (stream_id, "/alpha", NULL);
  key_event = gst_event_new_stream_start (key_stream_id);
  g_free (key_stream_id);
  gst_event_set_stream_flags (key_event, flags);
  if (gst_event_parse_group_id (event, &group_id))
    gst_event_set_group_id (key_event, group_id);
  gst_event_set_seqnum (key_event, gst_event_get_seqnum (event));

  ok = gst_pad_push_event (self->fill.pad, event);
  return gst_pad_push_event (self->key.pad, key_event) && ok;
}

static gboolean
gst_hfam_matte_sink_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  GstHfamMatte *self = GST_HFAM_MATTE (parent);

  GST_LOG_OBJECT (pad, "%" GST_PTR_FORMAT, event);
  /* Held frames go out before what follows them in the stream. */
  if (GST_EVENT_IS_SERIALIZED (event)
      && GST_EVENT_TYPE (event) != GST_EVENT_FLUSH_STOP
      && gst_hfam_matte_worker_n_held (self->worker) > 0)
    gst_hfam_matte_drain (self);
  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_STREAM_START:
      return gst_hfam_matte_start_streams (self, event);
    case GST_EVENT_CAPS:{
      GstCaps *caps;
      gboolean ok;

      gst_event_parse_caps (event, &caps);
      ok = gst_hfam_matte_set_caps (self, caps);
      gst_event_unref (event);
      return ok;
    }
    case GST_EVENT_SEGMENT:
      /* A new segment follows a seek: the previous matte belongs elsewhere. */
      gst_event_copy_segment (event, &self->segment);
      gst_hfam_matte_worker_reset (self->worker);
      break;
    case GST_EVENT_FLUSH_STOP:
      gst_hfam_matte_worker_flush (self->worker);
      gst_hfam_matte_worker_reset (self->worker);
      gst_segment_init (&self->segment, GST_FORMAT_UNDEFINED);
      gst_hfam_matte_reset_qos (self);
      gst_flow_combiner_reset (self->flow_combiner);
      break;
    default:
      break;
  }
  /* Everything else (segment, gap, EOS, flushes, tags) goes to both pads. */
  return gst_pad_event_default (pad, parent, event);
}

static gboolean
gst_hfam_matte_src_event (GstPad * pad, GstObject * parent, GstEvent * event)
{
  GstHfamMatte *self = GST_HFAM_MATTE (parent);

  switch (GST_EVENT_TYPE (event)) {
    case GST_EVENT_QOS:
      gst_hfam_matte_update_qos (self,
          pad == self->fill.pad ? &self->fill : &self->key, event);
      break;
    case GST_EVENT_SEEK:{
      /* A pipeline seek reaches us through both outputs: pass it once. */
      const guint32 seqnum = gst_event_get_seqnum (event);
      gboolean seen;

      GST_OBJECT_LOCK (self);
      seen = seqnum == self->last_seek_seqnum;
      self->last_seek_seqnum = seqnum;
      GST_OBJECT_UNLOCK (self);
      if (seen) {
        GST_DEBUG_OBJECT (pad, "seek %u already sent upstream", seqnum);
        gst_event_unref (event);
        return TRUE;
      }
      break;
    }
    default:
      break;
  }
  return gst_pad_event_default (pad, parent, event);
}

/* What every pad answers alike: the CUDA context, and the defaults. */
static gboolean
gst_hfam_matte_query_default (GstHfamMatte * self, GstPad * pad,
    GstObject * parent, GstQuery * query)
{
#ifdef HFAM_HAVE_GST_CUDA
  if (GST_QUERY_TYPE (query) == GST_QUERY_CONTEXT
      && gst_hfam_matte_context_query (self, query))
    return TRUE;
#endif
  return gst_pad_query_default (pad, parent, query);
}

static gboolean
gst_hfam_matte_sink_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  GstHfamMatte *self = GST_HFAM_MATTE (parent);

  switch (GST_QUERY_TYPE (query)) {
    case GST_QUERY_CAPS:{
      GstCaps *filter, *caps;

      gst_query_parse_caps (query, &filter);
      caps = gst_hfam_matte_sink_caps (self, filter);
      gst_query_set_caps_result (query, caps);
      gst_caps_unref (caps);
      return TRUE;
    }
    case GST_QUERY_ALLOCATION:
      /* Input frames are only read, through GstVideoFrame: any layout
       * described by a video meta will do. Downstream allocation is for
       * other caps and is not asked. */
      gst_query_add_allocation_meta (query, GST_VIDEO_META_API_TYPE, NULL);
#ifdef HFAM_HAVE_GST_CUDA
      gst_hfam_matte_propose_cuda_pool (self, query);
#endif
      return TRUE;
    default:
      return gst_hfam_matte_query_default (self, pad, parent, query);
  }
}

static gboolean
gst_hfam_matte_src_query (GstPad * pad, GstObject * parent, GstQuery * query)
{
  GstHfamMatte *self = GST_HFAM_MATTE (parent);

  switch (GST_QUERY_TYPE (query)) {
    case GST_QUERY_CAPS:{
      GstCaps *filter, *caps;

      gst_query_parse_caps (query, &filter);
      caps = gst_hfam_matte_src_caps (self, pad, filter);
      gst_query_set_caps_result (query, caps);
      gst_caps_unref (caps);
      return TRUE;
    }
    case GST_QUERY_LATENCY:{
      GstClockTime min, max, own;
      gboolean live;

      if (!gst_pad_peer_query (self->sinkpad, query))
        return FALSE;
      gst_query_parse_latency (query, &live, &min, &max);
      GST_OBJECT_LOCK (self);
      own = self->latency + self->held_latency;
      GST_OBJECT_UNLOCK (self);
      min += own;
      if (GST_CLOCK_TIME_IS_VALID (max))
        max += own;
      GST_DEBUG_OBJECT (pad, "latency +%" GST_TIME_FORMAT, GST_TIME_ARGS (own));
      gst_query_set_latency (query, live, min, max);
      return TRUE;
    }
    default:
      return gst_hfam_matte_query_default (self, pad, parent, query);
  }
}
