/* What the hfammatte tests share: the element under GstHarness on small frames,
 * a tiny generated model ($HFAM_TEST_MODEL), frames of noise, and libhfam called
 * directly for the mattes the element should make. Each test file gives its
 * cases as one TCase; test_hfammatte.c makes the suite of them. */
#ifndef HFAMMATTE_TESTS_HARNESS_H
#define HFAMMATTE_TESTS_HARNESS_H

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>

#include <hfam/hfam.h>

#define INFERENCE_SIZE 32
#define WIDTH 38
#define HEIGHT 22
#define FRAME_DURATION (GST_SECOND / 25)

const gchar *model_path (void);

/* ---- Frames and what the element should make of them ---- */

void video_info (GstVideoInfo * info, GstVideoFormat format, gint width,
    gint height);
GstBuffer *make_frame (const GstVideoInfo * info, guint32 seed);
GstBuffer *noisy_copy (GstBuffer * frame);

typedef struct
{
  HfamModel *model;
  HfamContext *ctx;
} Engine;

/* A CPU context on the test model in libhfam's default precision, as the
 * element's default; engine_open_at in another. */
void engine_open (Engine * engine);
void engine_open_at (Engine * engine, HfamPrecision precision);
void element_default_edges (HfamEdgeParams * edges);
void engine_close (Engine * engine);

/* A frame as the element should see it: its colour in an RGB layout (the
 * frame itself, or RGBA converted with its colorimetry) and libhfam's matte. */
typedef struct
{
  GstVideoInfo colour_info;
  GstBuffer *colour;
  float *matte;
} Expected;

void expect (Engine * engine, const GstVideoInfo * info, GstBuffer * buffer,
    Expected * expected);
void expect_at (Engine * engine, const GstVideoInfo * info, GstBuffer * buffer,
    gint inference_size, Expected * expected);
void expect_with (Engine * engine, const GstVideoInfo * info, GstBuffer * buffer,
    const HfamFrameParams * params, Expected * expected);
void expected_clear (Expected * expected);
guint level (float alpha, guint max);
void output_info (GstHarness * h, GstVideoInfo * info);
void check_fill (GstHarness * h, GstBuffer * buffer, const Expected * expected,
    const float *matte, gboolean premultiplied);
void check_key (GstHarness * h, GstBuffer * buffer, const float *matte,
    guint tolerance);
GBytes *packed_pixels (GstHarness * h, GstBuffer * buffer);

/* ---- The element under harnesses ---- */

GstElement *make_element (void);

/* The element with the chosen outputs linked to harnesses; `element` is set up
 * (properties, bus) before, since the harness starts it. */
typedef struct
{
  GstElement *element;
  GstHarness *fill;             /* on "src", or NULL */
  GstHarness *key;              /* on "alpha", or NULL */
  GstHarness *input;            /* the one that pushes */
} Rig;

void rig_start (Rig * rig, GstElement * element, gboolean link_fill,
    gboolean link_key);
void rig_stop (Rig * rig);
void rig_set_format (Rig * rig, const GstVideoInfo * info);
GstFlowReturn rig_push (Rig * rig, GstBuffer * buffer, guint index);
void push_and_check (Rig * rig, Engine * engine, const GstVideoInfo * info,
    GstBuffer * buffer, guint index, gboolean premultiplied);
void push_and_check_expected (Rig * rig, GstBuffer * buffer, guint index,
    const Expected * expected, gboolean premultiplied);

gboolean cuda_device_opens (void);

/* Pops the first ERROR or WARNING message (`type`) from `bus` and fails unless
 * there is one whose text contains `needle`. */
void pop_message_naming (GstBus * bus, GstMessageType type,
    const gchar * needle);

/* The element's debug log (category hfammatte) at `level` and more severe,
 * from log_capture_start to log_capture_stop, which returns it. */
typedef struct
{
  GstDebugLevel level;
  GMutex lock;
  GString *text;
} LogCapture;

void log_capture_start (LogCapture * capture, GstDebugLevel level);
gchar *log_capture_stop (LogCapture * capture);

/* ---- The test cases, a TCase a theme ---- */

TCase *caps_tcase (void);
TCase *outputs_tcase (void);
TCase *temporal_tcase (void);
TCase *properties_tcase (void);
TCase *running_tcase (void);
TCase *edges_tcase (void);
#ifdef HFAM_HAVE_GST_CUDA
TCase *cuda_memory_tcase (void);
#endif

#endif
