/* hfammatte's per-stream state: the libhfam context, the conversion of non-RGB frames to
 * RGBA, and the matte carried from one frame to the next (inference-interval and
 * temporal-smoothing). Used by the streaming thread only. */
#ifndef HFAM_WORKER_H
#define HFAM_WORKER_H

#include <gst/video/video.h>

#include "hfam.h"

G_BEGIN_DECLS

typedef struct _HfamWorker HfamWorker;

typedef struct {
  int inference_size;          /* long side the network sees */
  guint inference_interval;    /* run the network on one frame in this many */
  float temporal_smoothing;    /* weight of the previous matte in the blend */
} HfamWorkerSettings;

/* Takes ownership of ctx. n_threads: for the colour conversion, 0 = one per core. */
HfamWorker *hfam_worker_new (HfamContext *ctx, guint n_threads);
void hfam_worker_free (HfamWorker *worker);

/* Prepares for frames of this format; a new format also resets the temporal state.
 * FALSE when the format cannot be converted to RGBA. */
gboolean hfam_worker_set_input (HfamWorker *worker, const GstVideoInfo *info);

/* The format of the colour that write_fill copies: the input's own for RGB input, RGBA in
 * sRGB for the rest. */
const GstVideoInfo *hfam_worker_colour_info (const HfamWorker *worker);

/* Forgets the previous matte: the next frame runs the network and is not blended. */
void hfam_worker_reset (HfamWorker *worker);

/* Brings the matte up to date for this frame: runs the network or, between runs, keeps
 * the last matte. *ran tells which. Call once per frame, before the writers. */
gboolean hfam_worker_update_matte (HfamWorker *worker, const GstVideoFrame *in,
                                   const HfamWorkerSettings *settings, gboolean *ran,
                                   GError **error);

/* The frame's colour with the matte as alpha, into an RGBA or BGRA frame; the matte alone,
 * into a GRAY8 or GRAY16_LE frame. Both by kernels/frame.c's hfam_matte_write (alpha rounded
 * to the nearest 8- or 16-bit level). FALSE only on frames the writer refuses (a bug). */
gboolean hfam_worker_write_fill (HfamWorker *worker, const GstVideoFrame *in,
                                 GstVideoFrame *out, gboolean premultiplied);
gboolean hfam_worker_write_key (const HfamWorker *worker, GstVideoFrame *out);

G_END_DECLS

#endif
