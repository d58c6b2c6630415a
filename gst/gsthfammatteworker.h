/* hfammatte's per-stream state: the libhfam context, the conversion of non-RGB frames to
 * RGBA on the host path, the frames held while the network runs on them (pipeline-depth),
 * and which frames run the network and with what smoothing (inference-interval,
 * temporal-smoothing, restarted by a reset). The matte carried from one frame to the next is
 * libhfam's kept matte, on the host or on the device alike. Used by the streaming thread
 * only. */
#ifndef GST_HFAM_MATTE_WORKER_H
#define GST_HFAM_MATTE_WORKER_H

#include <gst/video/video.h>
#ifdef HFAM_HAVE_GST_CUDA
#include <gst/cuda/gstcudacontext.h>
#endif

#include <hfam/hfam.h>

G_BEGIN_DECLS

typedef struct _GstHfamMatteWorker GstHfamMatteWorker;

typedef struct {
  int inference_size;          /* long side the network sees */
  guint inference_interval;    /* run the network on one frame in this many */
  float temporal_smoothing;    /* weight of the previous matte in the blend */
  HfamTemporal temporal_mode;  /* where it blends */
  float islands;               /* the share under which a region of the matte is dropped */
  gboolean letterbox;          /* the matte cleared over black bars along the edges */
  HfamEdgeParams edges;        /* refine, fill, key levels: from the next output written */
} GstHfamMatteWorkerSettings;

/* A frame from its arrival to its output. */
typedef struct {
  GstBuffer *buffer;           /* the input, mapped as `in` */
  GstVideoFrame in;
  GstVideoFrame colour;        /* the input converted to RGBA, when `converted` */
  gboolean converted;
  gboolean on_device;          /* `in` is mapped on the device (GST_MAP_CUDA), the network
                                  runs on it there, the matte stays there and the fill
                                  is written there */
  gboolean runs;               /* the network runs on it; otherwise it shows the last matte */
  float smoothing;             /* weight of the previous matte when its own arrives */
  HfamTemporal temporal;       /* where */
  float islands;               /* HfamFrameParams.islands */
  gboolean letterbox;          /* HfamFrameParams.letterbox */
  gboolean discont;            /* the element's: frames before it were dropped */
  GstClockTime arrived;        /* gst_util_get_timestamp () at gst_hfam_matte_worker_push */
} GstHfamMatteWorkerFrame;

/* Takes ownership of ctx. n_threads: for the colour conversion, 0 = one per core. */
GstHfamMatteWorker *gst_hfam_matte_worker_new (HfamContext *ctx, guint n_threads);
#ifdef HFAM_HAVE_GST_CUDA
/* ctx runs on `cuda_context` (made with cuda_current_context while it was pushed): the
 * worker pushes it around every libhfam call, and frames in its CUDA memory can take the
 * device path. Takes a reference. */
void gst_hfam_matte_worker_set_cuda_context (GstHfamMatteWorker *worker,
                                             GstCudaContext *cuda_context);
#endif
void gst_hfam_matte_worker_free (GstHfamMatteWorker *worker);

/* Frames the worker holds at most: the context's pipeline depth. */
int gst_hfam_matte_worker_depth (const GstHfamMatteWorker *worker);

/* Prepares for frames of this format (dropping any held frame); a new format also resets
 * the temporal state. `cuda_memory`: the caps carry memory:CUDAMemory. FALSE when the
 * format cannot be converted to RGBA. */
gboolean gst_hfam_matte_worker_set_input (GstHfamMatteWorker *worker,
                                          const GstVideoInfo *info, gboolean cuda_memory);

/* Whether the input set last takes the device path (CUDA memory that libhfam's context reads
 * on the device). */
gboolean gst_hfam_matte_worker_on_device (const GstHfamMatteWorker *worker);

/* Whether the frames in flight must be drained before `buffer` is pushed with `settings`:
 * libhfam keeps frames of one path (device or host) and one inference size in flight. */
gboolean gst_hfam_matte_worker_must_drain (const GstHfamMatteWorker *worker, GstBuffer *buffer,
                                           const GstHfamMatteWorkerSettings *settings);

/* The inference size of the last frame submitted to the network, the one in force (0: none
 * yet). */
int gst_hfam_matte_worker_inference_size (const GstHfamMatteWorker *worker);

/* What inference-size 0 (auto) means on this worker's context. */
int gst_hfam_matte_worker_auto_inference_size (const GstHfamMatteWorker *worker);

/* The format of the colour that the fill copies: the input's own for RGB input, RGBA in
 * sRGB for the rest. */
const GstVideoInfo *gst_hfam_matte_worker_colour_info (const GstHfamMatteWorker *worker);

/* Forgets the previous matte: the next frame pushed runs the network and is not blended.
 * Frames already held keep their matte. */
void gst_hfam_matte_worker_reset (GstHfamMatteWorker *worker);

/* Takes `buffer`, decides whether the network runs on it and if so submits it; the frame is
 * held until gst_hfam_matte_worker_pop returns it. NULL, with the buffer released, on
 * failure. */
GstHfamMatteWorkerFrame *
gst_hfam_matte_worker_push (GstHfamMatteWorker *worker, GstBuffer *buffer,
                            const GstHfamMatteWorkerSettings *settings, GError **error);

/* The oldest held frame when it is due (every held frame is due with `drain`), to be
 * written (or settled) and released with gst_hfam_matte_worker_frame_free; NULL when none is.
 * A frame is due when the network does not run on it, or when pipeline-depth frames are in
 * flight. */
GstHfamMatteWorkerFrame *gst_hfam_matte_worker_pop (GstHfamMatteWorker *worker,
                                                     gboolean drain);
void gst_hfam_matte_worker_frame_free (GstHfamMatteWorkerFrame *frame);

/* A due frame that goes to no output: if the network ran on it, collected with none, which
 * takes it out of libhfam's flight and keeps its matte; otherwise the kept matte follows its
 * picture. FALSE when the network failed. */
gboolean gst_hfam_matte_worker_settle (GstHfamMatteWorker *worker,
                                       GstHfamMatteWorkerFrame *frame, GError **error);

/* Drops every held frame, waiting for the network to finish those in flight. */
void gst_hfam_matte_worker_flush (GstHfamMatteWorker *worker);
guint gst_hfam_matte_worker_n_held (const GstHfamMatteWorker *worker);

/* A due frame's matte (collected, blended into the one before, and kept; or for a frame
 * that does not run the network, libhfam's kept matte moved along its picture) into `fill`,
 * an RGBA or BGRA frame of its colours with the matte as alpha, and `key`, GRAY8 or
 * GRAY16_LE: either may be NULL, not both. Mapped on the host, or with GST_MAP_CUDA for a
 * frame on the device path (`key` NULL there); resized to the frame, refined and rounded to
 * the nearest level by libhfam, both from one matte; returns when they are written. FALSE
 * when the network failed on the frame. */
gboolean gst_hfam_matte_worker_write (GstHfamMatteWorker *worker, GstHfamMatteWorkerFrame *frame,
                                      GstVideoFrame *fill, gboolean premultiplied,
                                      GstVideoFrame *key, GError **error);

G_END_DECLS

#endif
