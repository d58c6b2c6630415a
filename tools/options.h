/* The numeric options that hfam-matte and hfam-eval share, taken as strings and parsed with
 * their bounds, so that a value out of range is an error naming the option, the value and
 * the bounds (HFAM_ERROR_ARGUMENT) rather than a wrapped-around request. */
#ifndef HFAM_TOOLS_OPTIONS_H
#define HFAM_TOOLS_OPTIONS_H

#include <hfam/hfam.h>

G_BEGIN_DECLS

/* The largest --memory-budget, in MiB (16 TiB). */
#define OPTIONS_MAX_MEMORY_BUDGET_MIB (1 << 24)

/* --size N: the long side of the inference size, 32 to HFAM_MAX_LONG_SIDE; NULL: 0, the
 * model's. */
gboolean options_parse_size (const char *text, int *long_side, GError **error);

/* --memory-budget MIB: 1 to OPTIONS_MAX_MEMORY_BUDGET_MIB, as bytes; NULL: 0, libhfam's
 * default (hfam_default_memory_budget). */
gboolean options_parse_memory_budget (const char *text, guint64 *bytes, GError **error);

/* --refine none|guided|guided:RADIUS,EPS, --fill frame|foreground and --key-levels B,W
 * (0 <= B < W <= 1) into edges (the defaults for what is NULL); hfam_context_set_edges checks
 * the numbers again. */
gboolean options_parse_edges (const char *refine, const char *fill, const char *key_levels,
                              HfamEdgeParams *edges, GError **error);

/* --islands S: 0 to 1 (HfamFrameParams.islands); NULL: HFAM_ISLANDS_DEFAULT, as the element. */
gboolean options_parse_islands (const char *text, float *islands, GError **error);

/* --letterbox on|off (HfamFrameParams.letterbox); NULL: on, as the element. */
gboolean options_parse_letterbox (const char *text, gboolean *letterbox, GError **error);

/* --pixel-aspect N:D (HfamFrameParams.pixel_aspect); NULL: 0, square pixels. */
gboolean options_parse_pixel_aspect (const char *text, float *pixel_aspect, GError **error);

/* The engine options the tools share (--size, --memory-budget, --threads, --backend,
 * --precision, --refine, --islands, --letterbox, --pixel-aspect), their text as given. */
typedef struct {
  char *size_text, *budget_text, *backend_name, *precision_name, *refine_text, *islands_text;
  char *letterbox_text, *pixel_aspect_text;
  int n_threads;
} OptionsEngine;

/* Adds them to the context's main group; `engine` must outlive the parse. */
void options_add_engine (GOptionContext *context, OptionsEngine *engine);

/* Whether any of them was given. */
gboolean options_engine_given (const OptionsEngine *engine);

/* Their values, each parsed as above: the inference long side, islands, letterbox and pixel
 * aspect into `frame` (its other fields left as they are), the context's options (backend,
 * precision, threads, memory budget), and the edges with the tool's own --fill and
 * --key-levels (NULL where it has none). */
gboolean options_parse_engine (const OptionsEngine *engine, const char *fill,
                               const char *key_levels, HfamFrameParams *frame,
                               HfamOptions *options, HfamEdgeParams *edges, GError **error);

G_END_DECLS

#endif
