/* Dilated convolutions as batches of undilated ones. A 3x3 convolution with dilation d only
 * ever combines pixels that lie d apart, so the map splits into d x d interleaved phase images
 * (rows p, p + d, p + 2d, ... and columns q, q + d, ...) that it convolves independently with
 * dilation 1. oneDNN's Winograd takes no dilation; on a batch of d² phase images it takes
 * half the time of the direct dilated kernel on MFEM's maps, copies into and out of the phase
 * images included. A map whose sides are not multiples of d has phase images of two sizes,
 * padded with zeros to the larger (what the dilated taps read there). Winograd works in tiles
 * of 4 x 4 outputs, so small padded phase images waste much of their tiles (MFEM's dilation 12
 * at 64 x 64: 12 x 12 images of 6 x 6 or smaller, each in 2 x 2 tiles). Two phase images then
 * share one image, one above the other (or side by side), with a row (column) of zeros between
 * them that keeps the 3x3 kernel from mixing them: 12-row pairs fill 3 tiles where two 6-row
 * images took 4 (BENCHMARKS.md). The images lie in the plan's scratchpad, after the
 * convolution's own scratch. */
#include "backend-cpu.h"

#include <stdint.h>
#include <string.h>

/* oneDNN's Winograd (F(4x4, 3x3), or F(2x2, 3x3) on narrow layers) does 2.25 to 4 times fewer
 * multiplications than a direct 3x3 convolution and takes about half its time here (errors
 * stay near 1e-5 on the golden tests), but keeps its weights up to 4 times larger (6x6 tiles)
 * and transforms whole feature maps in its scratchpad: it pays on maps of some size, not on
 * the small deep ones whose weights dominate memory. Below 32 x 32 it takes only the widest
 * (2048 input channels and more: the decoders' first layers, MFEM's deepest branch), which
 * it runs in 0.6-0.7 of the direct time against 0.8 for 512 -> 512 (BENCHMARKS.md). A dilated
 * convolution takes it on its phase images (below). */
#define WINOGRAD_MIN_PIXELS (32 * 32)
#define WINOGRAD_MAX_WEIGHTS ((size_t) 3 << 20)
#define WIDE_WINOGRAD_MIN_PIXELS (16 * 16)
#define WIDE_WINOGRAD_MIN_CHANNELS 2048
#define WIDE_WINOGRAD_MAX_WEIGHTS ((size_t) 12 << 20)

gboolean
hfam_cpu_wants_winograd (const HfamConvParams *p, int width, int height)
{
  const size_t weights = (size_t) p->cin * p->cout * 9;

  if (p->kernel != 3 || p->stride != 1)
    return FALSE;
  if (p->cin >= WIDE_WINOGRAD_MIN_CHANNELS)
    return width * height >= WIDE_WINOGRAD_MIN_PIXELS && weights <= WIDE_WINOGRAD_MAX_WEIGHTS;
  return width * height >= WINOGRAD_MIN_PIXELS && weights <= WINOGRAD_MAX_WEIGHTS;
}

/* The phase images and Winograd's transforms of them in the scratchpad take memory in
 * proportion to the input: MFEM's deep maps (up to 512 x 64 x 64) save half their time for a
 * few MB, L-BB's 64-channel ones (256 x 256 for a 512 input: 16 MiB) a sixth of it for about
 * 80 MB; L-BB's first, over 320 channels, runs at f1's size instead (backend-cpu-lowres.c). */
#define PHASE_MAX_INPUT ((size_t) 16 << 20)

/* oneDNN's Winograd on these layers is F(4x4, 3x3): it computes outputs in tiles of 4 x 4 */
#define WINOGRAD_TILE 4

/* Where a direct kernel is there to compare with, padded phase images are taken only where
 * real pixels fill at least this much of the tiles: MFEM's dilation 6 at 32 x 32 took 1.09 of
 * the direct time with 0.44 of its tiles filled (6 x 6 images), and 0.68 with 0.79 (paired) */
#define PHASE_MIN_TILE_USE 0.6

/* the number of rows of a side-n map in phase p of dilation d */
static int
phase_length (int n, int d, int p)
{
  return p < n ? (n - p + d - 1) / d : 0;
}

static int
axis_tiles (const PhaseAxis *a)
{
  return a->images * ((a->side + WINOGRAD_TILE - 1) / WINOGRAD_TILE);
}

/* How the phases of a side-n map lie along one axis of the batch: one image each, or, for an
 * even d, phases p and p + d/2 one after the other with a zero between, where that fills
 * fewer tiles. A side that d divides keeps one phase per image: a chained convolution
 * (reads_input_phases) takes the batch as its input then. */
static PhaseAxis
phase_axis (int n, int d)
{
  const PhaseAxis single = { .images = d, .side = phase_length (n, d, 0), .paired = FALSE };
  const PhaseAxis paired = { .images = d / 2,
                             .side = phase_length (n, d, 0) + 1 + phase_length (n, d, d / 2),
                             .paired = TRUE };

  if (n % d == 0 || d % 2 || axis_tiles (&paired) >= axis_tiles (&single))
    return single;
  return paired;
}

/* source[i]: the map's row (column) at row i of the batch's images along this axis, image
 * after image; -1 where the image holds a zero */
static void
axis_sources (int n, int d, const PhaseAxis *a, int *source)
{
  for (int image = 0; image < a->images; image++) {
    const int first = phase_length (n, d, image);
    for (int i = 0; i < a->side; i++) {
      const int p = a->paired && i > first ? image + d / 2 : image;
      const int k = a->paired && i > first ? i - first - 1 : i;
      source[image * a->side + i] = (a->paired && i == first) || k >= phase_length (n, d, p)
                                        ? -1
                                        : k * d + p;
    }
  }
}

static size_t
batch_pixels (const HfamConvParams *p, const Value *src)
{
  const PhaseAxis x = phase_axis (src->width, p->dilation);
  const PhaseAxis y = phase_axis (src->height, p->dilation);
  return (size_t) x.images * x.side * y.images * y.side;
}

gboolean
hfam_cpu_phase_fits (const HfamConvParams *p, const Value *src, gboolean padded)
{
  const int d = p->dilation;
  return p->kernel == 3 && p->stride == 1 && d > 1 && p->pad == d && p->residual < 0
         && (padded || (src->width % d == 0 && src->height % d == 0))
         && (size_t) p->cin * batch_pixels (p, src) * sizeof (float) <= PHASE_MAX_INPUT;
}

gboolean
hfam_cpu_phases_pay (const HfamConvParams *p, const Value *src)
{
  const PhaseAxis x = phase_axis (src->width, p->dilation);
  const PhaseAxis y = phase_axis (src->height, p->dilation);
  const double tile_area = (double) axis_tiles (&x) * axis_tiles (&y) * WINOGRAD_TILE
                           * WINOGRAD_TILE;

  return hfam_cpu_phase_fits (p, src, FALSE)
         || (hfam_cpu_phase_fits (p, src, TRUE)
             && src->width * src->height >= PHASE_MIN_TILE_USE * tile_area);
}

/* The batch's images of a map of `channels` x h x w, blocked like the map. */
static dnnl_status_t
batch_md (const CpuBackend *be, int channels, const PhaseAxis *x, const PhaseAxis *y,
          dnnl_memory_desc_t *md)
{
  dnnl_dims_t dims = { x->images * y->images, channels, y->side, x->side };
  return dnnl_memory_desc_init_by_tag (md, 4, dims, dnnl_f32, be->blocked_tag);
}

gboolean
hfam_cpu_phase_pd (CpuBackend *be, const HfamNode *n, const HfamConvParams *p, const Value *src,
                   gboolean sum, dnnl_primitive_desc_t *pd)
{
  const HfamCpuConvSpec spec = { .cin = p->cin, .cout = p->cout, .kernel = 3, .stride = 1,
                                 .dilation = 1, .pad_l = { 1, 1 }, .pad_r = { 1, 1 },
                                 .bias = TRUE, .sum = sum, .relu = p->relu,
                                 .alg = dnnl_convolution_winograd };
  const PhaseAxis x = phase_axis (src->width, p->dilation);
  const PhaseAxis y = phase_axis (src->height, p->dilation);
  dnnl_memory_desc_t in, out;

  return batch_md (be, p->cin, &x, &y, &in) == dnnl_success
         && batch_md (be, p->cout, &x, &y, &out) == dnnl_success
         && hfam_cpu_conv_pd (be, n, &spec, &in, &out, pd, NULL);
}

/* Whether node `id`'s phased convolution can read its input's phase images as that node left
 * them: the input is the node before it, a phased convolution with the same dilation and
 * batch layout that only this node reads, in no other form, on a map not padded (padding would
 * hold its outputs, not zeros), and its batch out lies beyond this convolution's own scratch.
 * L-BB's 64-channel convolutions follow each other so. */
static gboolean
reads_input_phases (const CpuBackend *be, int id, const dnnl_memory_desc_t *in_md,
                    size_t conv_scratch)
{
  const HfamGraph *g = be->base.graph;
  const int in = g->nodes[id].inputs[0];
  const Step *from = &be->steps[in];
  const Value *map = &be->values[in];
  const dnnl_memory_desc_t *out_md;

  /* nothing may run between the two: the scratchpad is everyone's */
  if (in != id - 1 || from->phase_dilation != be->steps[id].phase_dilation
      || g->last_use[in] != id
      || be->quantised[in] || be->has_bf16[in] || map->width % from->phase_dilation
      || map->height % from->phase_dilation || from->phase_out_offset < conv_scratch)
    return FALSE;
  return dnnl_memory_get_memory_desc (from->phase_out, &out_md) == dnnl_success
         && dnnl_memory_desc_equal (out_md, in_md);
}

static size_t
conv_scratch_size (const_dnnl_primitive_desc_t conv)
{
  const dnnl_memory_desc_t *sp = dnnl_primitive_desc_query_md (conv, dnnl_query_scratchpad_md,
                                                               0);
  return sp ? dnnl_memory_desc_get_size (sp) : 0;
}

static size_t
align64 (size_t offset)
{
  return (offset + 63) & ~(size_t) 63;
}

/* Where the batches for `conv` lie with the batch in at `in_offset`: the batch out's offset,
 * and their end. */
static size_t
batches_end (const_dnnl_primitive_desc_t conv, size_t in_offset, size_t *out_offset)
{
  const size_t out = align64 (in_offset
                              + dnnl_memory_desc_get_size (
                                dnnl_primitive_desc_query_md (conv, dnnl_query_src_md, 0)));
  if (out_offset)
    *out_offset = out;
  return out + dnnl_memory_desc_get_size (dnnl_primitive_desc_query_md (conv, dnnl_query_dst_md,
                                                                        0));
}

/* Where the batch in lies unless it is the input's batch out: after the convolution's own
 * scratch and at least `before` bytes */
static size_t
batch_in_offset (const_dnnl_primitive_desc_t conv, size_t before)
{
  return align64 (MAX (conv_scratch_size (conv), before));
}

size_t
hfam_cpu_phases_end (const_dnnl_primitive_desc_t conv, size_t before)
{
  return batches_end (conv, batch_in_offset (conv, before), NULL);
}

gboolean
hfam_cpu_plan_phases (CpuBackend *be, int id, const_dnnl_primitive_desc_t conv, size_t before,
                      GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  Step *s = &be->steps[id];
  const Value *map = &be->values[n->inputs[0]];
  const dnnl_memory_desc_t *in_md = dnnl_primitive_desc_query_md (conv, dnnl_query_src_md, 0);
  const dnnl_memory_desc_t *out_md = dnnl_primitive_desc_query_md (conv, dnnl_query_dst_md, 0);
  const size_t conv_scratch = conv_scratch_size (conv);

  /* in the scratchpad, which hfam_cpu_bind_phases gives them once it exists */
  DNNL_TRY (dnnl_memory_create (&s->phase_in, in_md, be->engine, DNNL_MEMORY_NONE), n);
  DNNL_TRY (dnnl_memory_create (&s->phase_out, out_md, be->engine, DNNL_MEMORY_NONE), n);
  s->phase_dilation = n->conv.dilation;
  s->phase_x = phase_axis (map->width, s->phase_dilation);
  s->phase_y = phase_axis (map->height, s->phase_dilation);
  s->phase_sources = g_new (int, s->phase_x.images * s->phase_x.side
                                     + s->phase_y.images * s->phase_y.side);
  axis_sources (map->width, s->phase_dilation, &s->phase_x, s->phase_sources);
  axis_sources (map->height, s->phase_dilation, &s->phase_y,
                s->phase_sources + s->phase_x.images * s->phase_x.side);
  s->phase_offset = batch_in_offset (conv, before);
  if (reads_input_phases (be, id, in_md, conv_scratch)) {
    Step *from = &be->steps[n->inputs[0]];
    s->phase_offset = from->phase_out_offset;
    s->phases_from_input = from->phases_to_next = TRUE;
  }
  be->scratchpad_size = MAX (be->scratchpad_size,
                             batches_end (conv, s->phase_offset, &s->phase_out_offset));
  return TRUE;
}

gboolean
hfam_cpu_bind_phases (CpuBackend *be, GError **error)
{
  const HfamGraph *g = be->base.graph;

  for (int i = 0; i < g->n_nodes; i++) {
    Step *s = &be->steps[i];
    uint8_t *in = (uint8_t *) be->scratchpad + s->phase_offset;
    uint8_t *out = (uint8_t *) be->scratchpad + s->phase_out_offset;

    if (!s->phase_dilation)
      continue;
    DNNL_TRY (dnnl_memory_set_data_handle (s->phase_in, in), &g->nodes[i]);
    DNNL_TRY (dnnl_memory_set_data_handle (s->phase_out, out), &g->nodes[i]);
  }
  return TRUE;
}

/* Each pixel of one image of the batch (w x h pixels of b floats) and the pixel of a blocked
 * map's plane (map_w pixels wide) that `rows` and `cols` name for it, copied one way or the
 * other (`merge`: from the image into the map). The image's pixels that name none are zero.
 * b is a constant where copy_phases calls it. */
static inline __attribute__ ((always_inline)) void
copy_image (float *plane, float *image, int map_w, int w, int h, const int *rows,
            const int *cols, gboolean merge, const int b)
{
  for (int i = 0; i < h; i++)
    for (int j = 0; j < w; j++) {
      float *at = image + ((size_t) i * w + j) * b;
      if (rows[i] >= 0 && cols[j] >= 0) {
        float *pixel = plane + ((size_t) rows[i] * map_w + cols[j]) * b;
        memcpy (merge ? pixel : at, merge ? at : pixel, sizeof (float) * b);
      } else if (!merge) {
        memset (at, 0, sizeof (float) * b);
      }
    }
}

/* b: the backend's block, 16 or 8 */
static void
copy_phases (const Step *s, float *map, float *batch, int blocks, int b, int w, int h,
             gboolean merge)
{
  const PhaseAxis *x = &s->phase_x, *y = &s->phase_y;
  const int *cols = s->phase_sources, *rows = s->phase_sources + x->images * x->side;
  const size_t image = (size_t) x->side * y->side * b;

#pragma omp parallel for collapse(2) schedule(static)
  for (int i = 0; i < x->images * y->images; i++)
    for (int cb = 0; cb < blocks; cb++) {
      float *plane = map + (size_t) cb * h * w * b;
      float *at = batch + ((size_t) i * blocks + cb) * image;
      const int *image_rows = rows + i / x->images * y->side;
      const int *image_cols = cols + i % x->images * x->side;
      if (b == 16)
        copy_image (plane, at, w, x->side, y->side, image_rows, image_cols, merge, 16);
      else
        copy_image (plane, at, w, x->side, y->side, image_rows, image_cols, merge, 8);
    }
}

gboolean
hfam_cpu_copy_phases (const CpuBackend *be, int id, float *map, int channels, gboolean merge,
                      GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  const Step *s = &be->steps[id];
  const Value *v = &be->values[id];
  void *batch;

  DNNL_TRY (dnnl_memory_get_data_handle (merge ? s->phase_out : s->phase_in, &batch), n);
  copy_phases (s, map, batch, (channels + be->block - 1) / be->block, be->block, v->width,
               v->height, merge);
  return TRUE;
}

gboolean
hfam_cpu_run_phases (CpuBackend *be, int id, gboolean merge, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  const Value *map = &be->values[merge ? id : n->inputs[0]];

  return hfam_cpu_copy_phases (be, id, (float *) ((uint8_t *) map->block->data + map->offset),
                               merge ? n->conv.cout : n->conv.cin, merge, error);
}

void
hfam_cpu_clear_phases (Step *s)
{
  if (s->phase_in)
    dnnl_memory_destroy (s->phase_in);
  if (s->phase_out)
    dnnl_memory_destroy (s->phase_out);
  s->phase_in = s->phase_out = NULL;
  g_clear_pointer (&s->phase_sources, g_free);
  s->phase_dilation = 0;
  s->phases_from_input = s->phases_to_next = FALSE;
}
