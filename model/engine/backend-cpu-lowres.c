/* A dilated convolution over an enlarged input, computed before the enlargement.
 *
 * L-BB's first convolution (3x3, dilation 2) reads concat(f0, up(f1)), f1 enlarged twice
 * (bilinear, half-pixel centres). On the enlarged channels its taps lie two pixels apart, one
 * pixel of f1, and the enlargement and the convolution are both linear: with f1 edge-padded by
 * one pixel (which is what the enlargement's clamping at the border does), every output pixel
 * at least 2 pixels from the border equals the enlargement of an undilated 3x3 convolution of
 * f1 itself, which does a quarter of the multiply-adds (and takes Winograd). The 2-pixel band
 * along the border, where the dilated taps fall outside the map, is computed as it was, from
 * strips of up(f1). The skip channels (f0) keep their own dilated convolution, which adds the
 * bias, the rest (oneDNN's sum post-op) and the ReLU. Exact up to rounding; BENCHMARKS.md,
 * "L-BB's first convolution at f1's size", has the time it saves. In fp32, where Winograd
 * runs, that convolution runs on phase images (backend-cpu-phases.c) at half its direct time:
 * the enlargement and the band are written straight into the phase images of the result, f0
 * is copied into its own, and L-BB's second convolution reads the result's as they are.
 *
 * It runs in fp32 (blocked maps) and in int8 (nhwc maps: u8 x s8 convolutions into fp32,
 * summed in fp32 and quantised once at the end), where the map is at least 8 pixels a side.
 * Nothing but this convolution reads the concatenation, so once the strips (and in int8 f0)
 * are copied out into the plan's scratchpad, after its convolutions' scratch, the padded f1
 * and its convolution take the concatenation's place: the split takes little more memory
 * than the convolution did. */
#include "backend-cpu.h"

#include <stdint.h>
#include <string.h>

/* rows of the band above and below, read with the two rows beyond them that the taps reach */
#define BAND 2
#define STRIP (2 * BAND + 2)
/* copies smaller than this run on one thread */
#define PARALLEL_BYTES ((size_t) 256 << 10)

enum { LOW, ROWS, COLS, SKIP, N_CONVS };
G_DEFINE_AUTO_CLEANUP_FREE_FUNC (dnnl_primitive_desc_t, dnnl_primitive_desc_destroy, NULL)
/* int8 only: SKIP_IN, f0's channels copied out of the concatenation (oneDNN's int8
 * convolutions take reference code on a strided view), and SUM, the sum in fp32 */
enum { PADDED, LOW_OUT, ROWS_IN, COLS_IN, ROWS_OUT, COLS_OUT, SKIP_IN, SUM, N_BUFFERS };
#define FIRST_SCRATCH ROWS_IN /* the buffers before it lie in the concatenation's memory */

/* A map's pixels: images x planes (channel blocks, or one plane in nhwc) x rows x cols, each
 * pixel_bytes long and pixel_stride apart (more in a view of some of nhwc's channels). */
typedef struct {
  uint8_t *data;
  int images, planes, rows, cols;
  size_t pixel_bytes, pixel_stride;
} Map;

struct _HfamCpuLowres {
  gboolean int8;
  gboolean phased;              /* fp32: f0's convolution on phase images */
  int block;                    /* channels per plane: the blocked layout's, 0 for nhwc */
  int skip_channels, up_channels, out_channels;
  int width, height;            /* the output's (and up(f1)'s) */
  Map f1, up, skip, dst;        /* up: int8's up(f1) (fp32 enlarges what it needs from f1);
                                 * skip: int8's view of f0 in the concatenation */
  Map maps[N_BUFFERS];
  uint8_t *concat;              /* where the buffers before FIRST_SCRATCH lie: the
                                 * concatenation's memory (fp32: up(f1)'s slice of it) */
  dnnl_primitive_t convs[N_CONVS], enlarge, quantise;
  dnnl_memory_t weights[N_CONVS], bias, buffers[N_BUFFERS], skip_mem, dst_mem;
  void *weights_data[N_CONVS];
  dnnl_memory_desc_t buffer_mds[N_BUFFERS];
  size_t offsets[N_BUFFERS];    /* into the concatenation's memory or the scratchpad */
};

/* A dense map of `channels` with elements of elem_bytes, laid out as lr's maps are. */
static Map
map_of (const HfamCpuLowres *lr, void *data, int images, int channels, int rows, int cols,
        size_t elem_bytes)
{
  const int per_plane = lr->block ? lr->block : channels;
  const size_t pixel = elem_bytes * per_plane;
  return (Map) { data, images, (channels + per_plane - 1) / per_plane, rows, cols, pixel, pixel };
}

static size_t
map_size (const Map *m)
{
  return (size_t) m->images * m->planes * m->rows * m->cols * m->pixel_stride;
}

/* f0's convolution, the whole one's on f0's channels alone */
static HfamConvParams
skip_params (const HfamCpuLowres *lr, const HfamConvParams *whole)
{
  return (HfamConvParams) { .cin = lr->skip_channels, .cout = whole->cout, .kernel = 3,
                            .stride = 1, .dilation = 2, .pad = 2, .relu = whole->relu,
                            .residual = -1 };
}

/* The sizes of the buffers that lie in the concatenation's memory, and of that memory. */
static void
concat_sizes (const CpuBackend *be, int id, size_t *buffers, size_t *concat)
{
  const HfamGraph *g = be->base.graph;
  const HfamNode *n = &g->nodes[id], *cat = &g->nodes[n->inputs[0]];
  const int f1 = g->nodes[cat->inputs[1]].inputs[0], cu = g->nodes[f1].channels;
  const Value *v = &be->values[id];
  const gboolean int8 = be->runs_int8[id];
  const HfamCpuLowres shape = { .block = int8 ? 0 : be->block };
  Map padded = map_of (&shape, NULL, 1, cu, v->height / 2 + 2, v->width / 2 + 2,
                       int8 ? 1 : sizeof (float));
  Map low = map_of (&shape, NULL, 1, n->conv.cout, v->height / 2, v->width / 2, sizeof (float));
  Map whole = map_of (&shape, NULL, 1, int8 ? cat->channels : cu, v->height, v->width,
                      int8 ? 1 : sizeof (float));

  *buffers = ((map_size (&padded) + 63) & ~(size_t) 63) + map_size (&low);
  *concat = map_size (&whole);
}

gboolean
hfam_cpu_lowres_fits (const CpuBackend *be, int id)
{
  const HfamGraph *g = be->base.graph;
  const HfamNode *n = &g->nodes[id], *cat, *up;
  const HfamConvParams *p = &n->conv;
  const Value *v = &be->values[id];
  const gboolean int8 = be->runs_int8[id];
  size_t buffers, concat;
  int f1;

  /* tests compare the two ways */
  if (g_strcmp0 (g_getenv ("HFAM_CPU_WHOLE_CONVOLUTIONS"), "1") == 0)
    return FALSE;
  if (n->op != HFAM_OP_CONV || be->runs_bf16[id] || p->kernel != 3 || p->stride != 1
      || p->dilation != 2 || p->pad != 2 || p->residual >= 0 || v->width < 8 || v->height < 8)
    return FALSE;
  cat = &g->nodes[n->inputs[0]];
  if (cat->op != HFAM_OP_CONCAT || cat->n_inputs != 2 || g->last_use[n->inputs[0]] != id
      || (int8 ? !be->runs_int8[n->inputs[0]] : !be->fp32[n->inputs[0]]))
    return FALSE;
  up = &g->nodes[cat->inputs[1]];
  f1 = up->inputs[0];
  if (up->op != HFAM_OP_RESIZE || g->nodes[f1].planar
      || v->width != 2 * be->values[f1].width || v->height != 2 * be->values[f1].height)
    return FALSE;
  /* int8: after ReLUs (u8), the only int8 maps the network feeds it */
  if (int8 ? !be->quantised[f1] || be->values[f1].qmd.data_type != dnnl_u8
                 || be->values[n->inputs[0]].qmd.data_type != dnnl_u8
           : !be->fp32[f1] || g->nodes[cat->inputs[0]].channels % be->block)
    return FALSE;
  /* f1 is read again here, so it must outlive the convolution (the detail decoder reads it);
   * the padded f1 and its convolution must fit in the concatenation's memory */
  concat_sizes (be, id, &buffers, &concat);
  return g->last_use[f1] > id && buffers <= concat;
}

/* A buffer's description and map: blocked fp32, or nhwc of `type` in int8. */
static dnnl_status_t
buffer_md (const CpuBackend *be, HfamCpuLowres *lr, int which, dnnl_data_type_t type,
           dnnl_dim_t n, dnnl_dim_t c, dnnl_dim_t h, dnnl_dim_t w)
{
  dnnl_dims_t dims = { n, c, h, w };
  const size_t elem = type == dnnl_f32 ? sizeof (float) : 1;

  lr->maps[which] = map_of (lr, NULL, n, c, h, w, elem);
  return dnnl_memory_desc_init_by_tag (&lr->buffer_mds[which], 4, dims, type,
                                       lr->int8 ? dnnl_nhwc : be->blocked_tag);
}

/* Convolution `which` of the split, from the buffers or values it reads to those it writes;
 * in int8 with `scales` per output channel, into fp32. */
static gboolean
plan_piece (CpuBackend *be, const HfamNode *n, HfamCpuLowres *lr, int which,
            const dnnl_memory_desc_t *src_md, const dnnl_memory_desc_t *dst_md,
            const float *scales, dnnl_primitive_desc_t *pd, GError **error)
{
  const HfamConvParams *p = &n->conv;
  const int pad = which == SKIP ? 2 : 0;
  HfamCpuConvSpec spec = { .cin = which == SKIP ? lr->skip_channels : lr->up_channels,
                           .cout = p->cout, .kernel = 3, .stride = 1,
                           .dilation = which == LOW ? 1 : 2,
                           .pad_l = { which == COLS ? 2 : pad, which == ROWS ? 2 : pad },
                           .pad_r = { which == COLS ? 2 : pad, which == ROWS ? 2 : pad },
                           .bias = which == SKIP, .sum = which == SKIP,
                           .relu = which == SKIP && p->relu, .scales = scales,
                           .alg = dnnl_convolution_direct };

  if (which == LOW && !lr->int8 && be->base.winograd
      && hfam_cpu_wants_winograd (&(HfamConvParams) { .kernel = 3, .stride = 1,
                                                      .cin = spec.cin, .cout = spec.cout },
                                  lr->width / 2, lr->height / 2)) {
    spec.alg = dnnl_convolution_winograd;
    if (hfam_cpu_conv_pd (be, n, &spec, src_md, dst_md, pd, NULL))
      return TRUE;
    spec.alg = dnnl_convolution_direct;
  }
  return hfam_cpu_conv_pd (be, n, &spec, src_md, dst_md, pd, error);
}

/* The weights of piece `which` (the skip channels' for SKIP, the enlarged ones' otherwise) in
 * the layout its primitive asks for (quantised with the whole convolution's scales in int8),
 * from `plain`: the whole convolution's oihw weights, then room for one piece's in fp32 and
 * in int8. */
static gboolean
load_piece_weights (CpuBackend *be, const HfamNode *n, HfamCpuLowres *lr, int which,
                    const_dnnl_primitive_desc_t pd, float *plain, const float *weight_scales,
                    GError **error)
{
  const HfamConvParams *p = &n->conv;
  const int first = which == SKIP ? 0 : lr->skip_channels;
  const int channels = which == SKIP ? lr->skip_channels : lr->up_channels;
  const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md (pd, dnnl_query_weights_md, 0);
  const size_t count = (size_t) p->cout * channels * 9;
  float *piece = plain + (size_t) p->cout * p->cin * 9;
  int8_t *quantised = (int8_t *) (piece + count);

  /* the strips' convolutions differ from the others only in their padding */
  for (int k = 0; k < which && which != SKIP; k++) {
    const dnnl_memory_desc_t *md;
    if (dnnl_memory_get_memory_desc (lr->weights[k], &md) == dnnl_success
        && dnnl_memory_desc_equal (md, want)) {
      DNNL_TRY (dnnl_memory_create (&lr->weights[which], want, be->engine, lr->weights_data[k]),
                n);
      return TRUE;
    }
  }
  if (!(lr->weights_data[which] = hfam_cpu_counted_alloc (be, dnnl_memory_desc_get_size (want),
                                                          &be->plan_bytes, error)))
    return FALSE;
  DNNL_TRY (dnnl_memory_create (&lr->weights[which], want, be->engine,
                                lr->weights_data[which]), n);
  /* oneDNN's Winograd reorder takes only a dense source */
  for (int o = 0; o < p->cout; o++)
    memcpy (piece + (size_t) o * channels * 9, plain + ((size_t) o * p->cin + first) * 9,
            sizeof (float) * channels * 9);
  if (lr->int8)
    hfam_cpu_quantise_weights (piece, p->cout, (size_t) channels * 9, weight_scales, quantised);
  if (!hfam_cpu_reorder_weights (be, p->cout, channels, 3, lr->int8 ? dnnl_s8 : dnnl_f32,
                                 lr->int8 ? (void *) quantised : piece, lr->weights[which])) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                 "cpu backend: %s: cannot reorder weights", n->name);
    return FALSE;
  }
  return TRUE;
}

/* The enlargement of the low-size result to the destination (int8: to SUM), and in int8 the
 * quantisation of SUM into the value's int8 form; *scratch grows to their scratch. */
static gboolean
plan_enlarge (CpuBackend *be, const HfamNode *n, HfamCpuLowres *lr,
              const dnnl_memory_desc_t *dst_md, size_t *scratch, GError **error)
{
  const Value *v = &be->values[n - be->base.graph->nodes];
  float quantise_scale;
  dnnl_resampling_desc_t rd;
  dnnl_primitive_attr_t attr = hfam_cpu_new_attr ();
  dnnl_primitive_desc_t pd = NULL;
  const dnnl_memory_desc_t *sp;
  dnnl_status_t st;

  st = dnnl_resampling_forward_desc_init (&rd, dnnl_forward_inference, dnnl_resampling_linear,
                                          NULL, &lr->buffer_mds[LOW_OUT], dst_md);
  if (st == dnnl_success)
    st = dnnl_primitive_desc_create (&pd, &rd, attr, be->engine, NULL);
  dnnl_primitive_attr_destroy (attr);
  DNNL_TRY (st, n);
  sp = dnnl_primitive_desc_query_md (pd, dnnl_query_scratchpad_md, 0);
  *scratch = MAX (*scratch, sp ? dnnl_memory_desc_get_size (sp) : 0);
  st = dnnl_primitive_create (&lr->enlarge, pd);
  dnnl_primitive_desc_destroy (pd);
  DNNL_TRY (st, n);
  if (!lr->int8)
    return TRUE;
  quantise_scale = 1.0f / v->qscale;
  dnnl_primitive_attr_create (&attr);
  dnnl_primitive_attr_set_output_scales (attr, 1, 0, &quantise_scale);
  st = dnnl_reorder_primitive_desc_create (&pd, dst_md, be->engine, &v->qmd, be->engine, attr);
  dnnl_primitive_attr_destroy (attr);
  DNNL_TRY (st, n);
  st = dnnl_primitive_create (&lr->quantise, pd);
  dnnl_primitive_desc_destroy (pd);
  DNNL_TRY (st, n);
  return TRUE;
}

/* The buffers' descriptions and maps (int8: f1's type for the padded f1, the
 * concatenation's for its strips and f0, fp32 for the convolutions' results). */
static gboolean
describe_buffers (const CpuBackend *be, HfamCpuLowres *lr, dnnl_data_type_t f1_type,
                  dnnl_data_type_t concat_type)
{
  const int w = lr->width, h = lr->height, cu = lr->up_channels, co = lr->out_channels;
  const dnnl_data_type_t in = lr->int8 ? concat_type : dnnl_f32;

  return buffer_md (be, lr, PADDED, lr->int8 ? f1_type : dnnl_f32, 1, cu, h / 2 + 2, w / 2 + 2)
             == dnnl_success
         && buffer_md (be, lr, LOW_OUT, dnnl_f32, 1, co, h / 2, w / 2) == dnnl_success
         && buffer_md (be, lr, ROWS_IN, in, 2, cu, STRIP, w) == dnnl_success
         && buffer_md (be, lr, COLS_IN, in, 2, cu, h, STRIP) == dnnl_success
         && buffer_md (be, lr, ROWS_OUT, dnnl_f32, 2, co, BAND, w) == dnnl_success
         && buffer_md (be, lr, COLS_OUT, dnnl_f32, 2, co, h, BAND) == dnnl_success
         && buffer_md (be, lr, SKIP_IN, in, 1, lr->skip_channels, h, w) == dnnl_success
         && buffer_md (be, lr, SUM, dnnl_f32, 1, co, h, w) == dnnl_success;
}

/* The pieces' primitives and weights, and where their buffers go. */
static gboolean
plan_pieces (CpuBackend *be, int id, HfamCpuLowres *lr, float *plain, GError **error)
{
  const HfamGraph *g = be->base.graph;
  const HfamNode *n = &g->nodes[id];
  const int cat = n->inputs[0], f1 = g->nodes[g->nodes[cat].inputs[1]].inputs[0];
  const Value *v = &be->values[id], *cv = &be->values[cat], *f1v = &be->values[f1];
  const float *ws = be->steps[id].weight_scales;
  const int n_buffers = lr->int8 ? N_BUFFERS : SKIP_IN;
  dnnl_memory_desc_t *mds = lr->buffer_mds, skip_md;
  const dnnl_memory_desc_t *srcs[N_CONVS] = { &mds[PADDED], &mds[ROWS_IN], &mds[COLS_IN],
                                              lr->int8 ? &mds[SKIP_IN] : &skip_md };
  const dnnl_memory_desc_t *dsts[N_CONVS] = { &mds[LOW_OUT], &mds[ROWS_OUT], &mds[COLS_OUT],
                                              lr->int8 ? &mds[SUM] : &v->md };
  g_autofree float *scales = g_new (float, 2 * n->conv.cout);
  const HfamConvParams skip = skip_params (lr, &n->conv);
  /* the phased f0 convolution's, for the phase images' plan once the buffers have their place */
  g_auto (dnnl_primitive_desc_t) skip_pd = NULL;
  size_t scratch = 0, end = 0;

  if (!describe_buffers (be, lr, f1v->qmd.data_type, cv->qmd.data_type)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "cpu backend: %s: bad buffer", n->name);
    return FALSE;
  }
  if (!lr->int8) {
    dnnl_dims_t dims = { 1, lr->skip_channels, lr->height, lr->width };
    DNNL_TRY (dnnl_memory_desc_init_by_tag (&skip_md, 4, dims, dnnl_f32, be->blocked_tag), n);
  }
  /* int8: what a sum of f1's and of the concatenation's values times weights is in fp32 */
  for (int o = 0; lr->int8 && o < n->conv.cout; o++) {
    scales[o] = f1v->qscale * ws[o];
    scales[n->conv.cout + o] = cv->qscale * ws[o];
  }
  for (int k = 0; k < N_CONVS; k++) {
    dnnl_primitive_desc_t pd;
    const dnnl_memory_desc_t *sp;
    dnnl_status_t st;

    if (k == SKIP && lr->phased)
      lr->phased = hfam_cpu_phase_pd (be, n, &skip, v, TRUE, &pd);
    if (!(k == SKIP && lr->phased)
        && !plan_piece (be, n, lr, k, srcs[k], dsts[k],
                        lr->int8 ? scales + (k == LOW ? 0 : n->conv.cout) : NULL, &pd, error))
      return FALSE;
    if (!load_piece_weights (be, n, lr, k, pd, plain, ws, error)) {
      dnnl_primitive_desc_destroy (pd);
      return FALSE;
    }
    sp = dnnl_primitive_desc_query_md (pd, dnnl_query_scratchpad_md, 0);
    scratch = MAX (scratch, sp ? dnnl_memory_desc_get_size (sp) : 0);
    st = dnnl_primitive_create (&lr->convs[k], pd);
    if (k == SKIP && lr->phased)
      skip_pd = pd;
    else
      dnnl_primitive_desc_destroy (pd);
    DNNL_TRY (st, n);
  }
  /* the phased convolution writes the value once its phase images are copied out */
  if (!lr->phased && !plan_enlarge (be, n, lr, dsts[SKIP], &scratch, error))
    return FALSE;
  for (int k = 0; k < n_buffers; k++) {
    if (k == FIRST_SCRATCH)
      end = scratch;
    lr->offsets[k] = (end + 63) & ~(size_t) 63;
    end = lr->offsets[k] + dnnl_memory_desc_get_size (&mds[k]);
    lr->maps[k].data = k < FIRST_SCRATCH ? lr->concat + lr->offsets[k] : NULL;
    DNNL_TRY (dnnl_memory_create (&lr->buffers[k], &mds[k], be->engine,
                                  k < FIRST_SCRATCH ? lr->maps[k].data : DNNL_MEMORY_NONE), n);
  }
  be->scratchpad_size = MAX (be->scratchpad_size, end);
  /* f0's phase images: the enlargement goes into them after f1's convolution at low size,
   * whose scratch they may take then, but before the band's copy, which reads the strips'
   * results (from offsets[FIRST_SCRATCH] to `end`). So below the strips where they fit, else
   * after them. */
  if (lr->phased) {
    const gboolean below = hfam_cpu_phases_end (skip_pd, 0) <= lr->offsets[FIRST_SCRATCH];
    return hfam_cpu_plan_phases (be, id, skip_pd, below ? 0 : end, error);
  }
  if (!lr->int8) {
    DNNL_TRY (dnnl_memory_create (&lr->skip_mem, &skip_md, be->engine, lr->skip.data), n);
    DNNL_TRY (dnnl_memory_create (&lr->dst_mem, &v->md, be->engine, lr->dst.data), n);
  }
  return TRUE;
}

/* Where the split reads and writes: f1, the concatenation's up(f1) and f0 (in int8 views of
 * some of its nhwc channels), the destination (int8: SUM, bound later). */
static void
place_maps (CpuBackend *be, int id, HfamCpuLowres *lr)
{
  const HfamGraph *g = be->base.graph;
  const HfamNode *n = &g->nodes[id];
  const int cat = n->inputs[0], up = g->nodes[cat].inputs[1], f1 = g->nodes[up].inputs[0];
  const Value *v = &be->values[id], *cv = &be->values[cat], *f1v = &be->values[f1];
  const int w = lr->width, h = lr->height;

  if (lr->int8) {
    const size_t all = g->nodes[cat].channels;
    lr->concat = cv->qblock->data;
    lr->f1 = map_of (lr, f1v->qblock->data, 1, lr->up_channels, h / 2, w / 2, 1);
    lr->up = map_of (lr, lr->concat + lr->skip_channels, 1, lr->up_channels, h, w, 1);
    lr->skip = map_of (lr, lr->concat, 1, lr->skip_channels, h, w, 1);
    lr->up.pixel_stride = lr->skip.pixel_stride = all;
    lr->dst = map_of (lr, NULL, 1, lr->out_channels, h, w, sizeof (float));
    return;
  }
  /* fp32 reads f0 in place: the buffers take up(f1)'s slice only */
  lr->concat = (uint8_t *) cv->block->data + cv->offset + hfam_cpu_slice_offset (be, cat, up);
  lr->f1 = map_of (lr, (uint8_t *) f1v->block->data + f1v->offset, 1, lr->up_channels, h / 2,
                   w / 2, sizeof (float));
  lr->skip = map_of (lr, (uint8_t *) cv->block->data + cv->offset, 1, lr->skip_channels, h, w,
                     sizeof (float));
  lr->dst = map_of (lr, (uint8_t *) v->block->data + v->offset, 1, lr->out_channels, h, w,
                    sizeof (float));
}

gboolean
hfam_cpu_plan_lowres (CpuBackend *be, int id, GError **error)
{
  const HfamGraph *g = be->base.graph;
  const HfamNode *n = &g->nodes[id];
  const HfamConvParams *p = &n->conv;
  const int cat = n->inputs[0], up = g->nodes[cat].inputs[1];
  const size_t count = (size_t) p->cout * p->cin * 9;
  /* the whole, one piece in fp32 and in int8 */
  const guint64 plain_size = 2 * sizeof (float) * count + count;
  Step *s = &be->steps[id];
  HfamCpuLowres *lr;
  HfamConvParams skip;
  float *plain;
  gboolean ok = FALSE;

  /* the whole convolution's weights, from a plan at a size where the split did not fit */
  hfam_cpu_drop_weights (be, s);
  lr = s->lowres = g_new0 (HfamCpuLowres, 1);
  lr->int8 = be->runs_int8[id];
  lr->block = lr->int8 ? 0 : be->block;
  lr->up_channels = g->nodes[up].channels;
  lr->skip_channels = p->cin - lr->up_channels;
  lr->out_channels = p->cout;
  lr->width = be->values[id].width;
  lr->height = be->values[id].height;
  /* fp32 enlarges the strips it needs from f1: up(f1) itself, where it would be written into
   * the concatenation, is not made */
  be->steps[up].idle = !lr->int8 && be->values[up].concat == cat;
  skip = skip_params (lr, p);
  lr->phased = !lr->int8 && be->base.winograd
               && hfam_cpu_wants_winograd (&skip, lr->width, lr->height)
               && hfam_cpu_phases_pay (&skip, &be->values[id]);
  place_maps (be, id, lr);
  /* int8: the pieces' weights quantised with the whole convolution's scales */
  if (lr->int8 ? !hfam_cpu_int8_scales (be, s, n, p, be->values[cat].qscale, error)
               : !hfam_cpu_load_bias (be, s, n, p, error))
    return FALSE;
  lr->bias = s->bias;
  /* the plain copies live for this call only, but count while they do */
  if (!hfam_host_budget_take (be->budget, plain_size, "inference size", be->width, be->height,
                              error))
    return FALSE;
  if ((plain = hfam_cpu_alloc0 (plain_size, error))) {
    hfam_st_to_f32 (p->weight, plain);
    ok = plan_pieces (be, id, lr, plain, error);
  }
  hfam_cpu_free (plain);
  hfam_host_budget_give (be->budget, plain_size);
  return ok;
}

gboolean
hfam_cpu_bind_lowres (CpuBackend *be, GError **error)
{
  const HfamGraph *g = be->base.graph;

  for (int i = 0; i < g->n_nodes; i++) {
    HfamCpuLowres *lr = be->steps[i].lowres;
    if (!lr)
      continue;
    for (int k = FIRST_SCRATCH; k < (lr->int8 ? N_BUFFERS : SKIP_IN); k++) {
      lr->maps[k].data = (uint8_t *) be->scratchpad + lr->offsets[k];
      DNNL_TRY (dnnl_memory_set_data_handle (lr->buffers[k], lr->maps[k].data), &g->nodes[i]);
    }
    if (lr->int8)
      lr->dst.data = lr->maps[SUM].data;
  }
  return TRUE;
}

static uint8_t *
pixel (const Map *m, int image, int plane, int y, int x)
{
  return m->data
         + ((((size_t) image * m->planes + plane) * m->rows + y) * m->cols + x) * m->pixel_stride;
}

/* rows x cols pixels from (sy, sx) of image si of `from` (NULL: zeros) to (dy, dx) of image
 * di of `to`, in every plane. */
static void
copy_pixels (const Map *to, int di, int dy, int dx, const Map *from, int si, int sy, int sx,
             int rows, int cols)
{
  const size_t bytes = to->pixel_bytes;
  const gboolean runs = to->pixel_stride == bytes && (!from || from->pixel_stride == bytes);
  const int lines = to->planes * rows;

#pragma omp parallel for if ((size_t) lines * cols * bytes >= PARALLEL_BYTES)
  for (int k = 0; k < lines; k++) {
    const int plane = k / rows, y = k % rows;
    uint8_t *d = pixel (to, di, plane, dy + y, dx);
    const uint8_t *s = from ? pixel (from, si, plane, sy + y, sx) : NULL;

    if (runs && s)
      memcpy (d, s, bytes * cols);
    else if (runs)
      memset (d, 0, bytes * cols);
    else
      for (int x = 0; x < cols; x++) {
        if (s)
          memcpy (d + x * to->pixel_stride, s + x * from->pixel_stride, bytes);
        else
          memset (d + x * to->pixel_stride, 0, bytes);
      }
  }
}

/* f1 with each edge pixel repeated once outward. */
static void
pad_f1 (HfamCpuLowres *lr)
{
  const Map *padded = &lr->maps[PADDED];
  const int w = lr->width / 2, h = lr->height / 2;

  copy_pixels (padded, 0, 1, 1, &lr->f1, 0, 0, 0, h, w);
  copy_pixels (padded, 0, 1, 0, &lr->f1, 0, 0, 0, h, 1);
  copy_pixels (padded, 0, 1, w + 1, &lr->f1, 0, 0, w - 1, h, 1);
  copy_pixels (padded, 0, 0, 0, padded, 0, 1, 0, 1, w + 2);
  copy_pixels (padded, 0, h + 1, 0, padded, 0, h, 0, 1, w + 2);
}

/* The enlargement's pixels 2i + p along a side-n axis (p: 0 or 1) take 3/4 of pixel i and
 * 1/4 of this one, clamped at the border. */
static inline int
neighbour (int i, int p, int n)
{
  return p ? MIN (i + 1, n - 1) : MAX (i - 1, 0);
}

/* One enlarged pixel of b floats from the four it reads: the near row's near and side
 * pixels, then the far row's */
static inline __attribute__ ((always_inline)) void
blend (const float *near, const float *near_side, const float *far, const float *far_side,
       float *out, const int b)
{
  for (int k = 0; k < b; k++)
    out[k] = 0.75f * (0.75f * near[k] + 0.25f * near_side[k])
             + 0.25f * (0.75f * far[k] + 0.25f * far_side[k]);
}

/* rows x cols pixels of up(f1) from (sy, sx) to (dy, dx) of image di of `to`, in every plane:
 * int8 copies them from the concatenation, fp32 enlarges them from f1 (its up(f1) is never
 * made). b is a constant where take_up calls it. */
static inline __attribute__ ((always_inline)) void
enlarge_rect (const HfamCpuLowres *lr, const Map *to, int di, int dy, int dx, int sy, int sx,
              int rows, int cols, const int b)
{
  const Map *f1 = &lr->f1;

#pragma omp parallel for if (to->planes > 1)
  for (int plane = 0; plane < to->planes; plane++)
    for (int y = sy; y < sy + rows; y++) {
      const float *near = (const float *) pixel (f1, 0, plane, y / 2, 0);
      const float *far = (const float *) pixel (f1, 0, plane, neighbour (y / 2, y % 2, f1->rows),
                                                0);
      for (int x = sx; x < sx + cols; x++) {
        const int j = x / 2 * b, side = neighbour (x / 2, x % 2, f1->cols) * b;
        blend (near + j, near + side, far + j, far + side,
               (float *) pixel (to, di, plane, dy + y - sy, dx + x - sx), b);
      }
    }
}

static void
take_up (const HfamCpuLowres *lr, const Map *to, int di, int dy, int dx, int sy, int sx,
         int rows, int cols)
{
  if (lr->int8)
    copy_pixels (to, di, dy, dx, &lr->up, 0, sy, sx, rows, cols);
  else if (lr->block == 16)
    enlarge_rect (lr, to, di, dy, dx, sy, sx, rows, cols, 16);
  else
    enlarge_rect (lr, to, di, dy, dx, sy, sx, rows, cols, 8);
}

/* The strips of up(f1) that the band's taps read, with zeros where they fall outside: rows
 * (top: 2 zero rows, then rows 0..3; bottom: the last 4 rows, then 2 zero rows) and columns
 * likewise, each pair a batch of two images. */
static void
gather_strips (HfamCpuLowres *lr)
{
  const Map *rows = &lr->maps[ROWS_IN], *cols = &lr->maps[COLS_IN];
  const int w = lr->width, h = lr->height, inner = STRIP - BAND;

  copy_pixels (rows, 0, 0, 0, NULL, 0, 0, 0, BAND, w);
  take_up (lr, rows, 0, BAND, 0, 0, 0, inner, w);
  take_up (lr, rows, 1, 0, 0, h - inner, 0, inner, w);
  copy_pixels (rows, 1, inner, 0, NULL, 0, 0, 0, BAND, w);
  copy_pixels (cols, 0, 0, 0, NULL, 0, 0, 0, h, BAND);
  take_up (lr, cols, 0, 0, BAND, 0, 0, h, inner);
  take_up (lr, cols, 1, 0, 0, 0, w - inner, h, inner);
  copy_pixels (cols, 1, 0, inner, NULL, 0, 0, 0, h, BAND);
}

/* rows x cols pixels of image si of `from` to (dy, dx) of the result's phase images of
 * dilation 2, in every plane; or of the result itself where `phases` is NULL. */
static void
put_pixels (const HfamCpuLowres *lr, const Map *phases, int dy, int dx, const Map *from, int si,
            int rows, int cols)
{
  if (!phases) {
    copy_pixels (&lr->dst, 0, dy, dx, from, si, 0, 0, rows, cols);
    return;
  }
  for (int plane = 0; plane < from->planes; plane++)
    for (int y = dy; y < dy + rows; y++)
      for (int x = dx; x < dx + cols; x++)
        memcpy (pixel (phases, y % 2 * 2 + x % 2, plane, y / 2, x / 2),
                pixel (from, si, plane, y - dy, x - dx), from->pixel_bytes);
}

/* The band's results over the enlarged low-size ones: 2 rows and columns along each side. */
static void
scatter_band (HfamCpuLowres *lr, const Map *phases)
{
  const Map *rows = &lr->maps[ROWS_OUT], *cols = &lr->maps[COLS_OUT];
  const int w = lr->width, h = lr->height;

  put_pixels (lr, phases, 0, 0, rows, 0, BAND, w);
  put_pixels (lr, phases, h - BAND, 0, rows, 1, BAND, w);
  put_pixels (lr, phases, 0, 0, cols, 0, h, BAND);
  put_pixels (lr, phases, 0, w - BAND, cols, 1, h, BAND);
}

/* One plane of phase image (py, px) of the low-size result enlarged twice (bilinear, half-pixel
 * centres, clamped at the border): its pixel (i, j) is the enlargement's (2i + py, 2j + px),
 * 3/4 of the low-size pixel (i, j) and 1/4 of its neighbour on py's (px's) side, in each
 * direction. b is a constant where enlarge_into_phases calls it. */
static inline __attribute__ ((always_inline)) void
enlarge_plane (const Map *low, int plane, int py, int px, float *out, const int b)
{
  const int w = low->cols, h = low->rows;

  for (int i = 0; i < h; i++) {
    const float *near = (const float *) pixel (low, 0, plane, i, 0);
    const float *far = (const float *) pixel (low, 0, plane, neighbour (i, py, h), 0);
    for (int j = 0; j < w; j++) {
      const int side = neighbour (j, px, w) * b;
      blend (near + j * b, near + side, far + j * b, far + side,
             out + ((size_t) i * w + j) * b, b);
    }
  }
}

static void
enlarge_into_phases (const HfamCpuLowres *lr, const Map *phases)
{
  const Map *low = &lr->maps[LOW_OUT];

#pragma omp parallel for collapse(2) schedule(static)
  for (int phase = 0; phase < 4; phase++)
    for (int plane = 0; plane < low->planes; plane++) {
      float *out = (float *) pixel (phases, phase, plane, 0, 0);
      if (lr->block == 16)
        enlarge_plane (low, plane, phase / 2, phase % 2, out, 16);
      else
        enlarge_plane (low, plane, phase / 2, phase % 2, out, 8);
    }
}

static gboolean
run_conv (CpuBackend *be, HfamCpuLowres *lr, int which, dnnl_memory_t src, dnnl_memory_t dst)
{
  dnnl_exec_arg_t args[] = { { DNNL_ARG_SRC, src }, { DNNL_ARG_WEIGHTS, lr->weights[which] },
                             { DNNL_ARG_DST, dst }, { DNNL_ARG_SCRATCHPAD, be->scratchpad_mem },
                             { DNNL_ARG_BIAS, lr->bias } };
  return dnnl_primitive_execute (lr->convs[which], be->stream, which == SKIP ? 5 : 4, args)
         == dnnl_success;
}

/* f0's convolution on phase images: the enlargement and the band into the result's, f0 into
 * its own, and the result's copied out unless the next convolution reads them. */
static gboolean
run_phased (CpuBackend *be, int id, HfamCpuLowres *lr, GError **error)
{
  const Step *s = &be->steps[id];
  void *data;
  Map phases;

  DNNL_TRY (dnnl_memory_get_data_handle (s->phase_out, &data), &be->base.graph->nodes[id]);
  /* the four phase images of dilation 2, as backend-cpu-phases.c lays out a map whose sides 2
   * divides */
  phases = map_of (lr, data, 4, lr->out_channels, lr->height / 2, lr->width / 2, sizeof (float));
  enlarge_into_phases (lr, &phases);
  scatter_band (lr, &phases);
  if (!hfam_cpu_copy_phases (be, id, (float *) lr->skip.data, lr->skip_channels, FALSE, error))
    return FALSE;
  if (!run_conv (be, lr, SKIP, s->phase_in, s->phase_out)) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                 "cpu backend: %s: the convolution of f0's phase images failed",
                 be->base.graph->nodes[id].name);
    return FALSE;
  }
  return s->phases_to_next
         || hfam_cpu_copy_phases (be, id, (float *) lr->dst.data, lr->out_channels, TRUE,
                                  error);
}

gboolean
hfam_cpu_run_lowres (CpuBackend *be, int id, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  HfamCpuLowres *lr = be->steps[id].lowres;
  dnnl_memory_t sum = lr->int8 ? lr->buffers[SUM] : lr->dst_mem;
  dnnl_exec_arg_t enlarge[] = { { DNNL_ARG_SRC, lr->buffers[LOW_OUT] }, { DNNL_ARG_DST, sum },
                                { DNNL_ARG_SCRATCHPAD, be->scratchpad_mem } };
  dnnl_exec_arg_t quantise[] = { { DNNL_ARG_FROM, sum },
                                 { DNNL_ARG_TO, be->values[id].qmem } };

  /* first what the padded f1 and its convolution overwrite in the concatenation */
  gather_strips (lr);
  if (lr->int8)
    copy_pixels (&lr->maps[SKIP_IN], 0, 0, 0, &lr->skip, 0, 0, 0, lr->height, lr->width);
  pad_f1 (lr);
  if (!run_conv (be, lr, LOW, lr->buffers[PADDED], lr->buffers[LOW_OUT])
      || !run_conv (be, lr, ROWS, lr->buffers[ROWS_IN], lr->buffers[ROWS_OUT])
      || !run_conv (be, lr, COLS, lr->buffers[COLS_IN], lr->buffers[COLS_OUT]))
    goto fail;
  if (lr->phased)
    return run_phased (be, id, lr, error);
  if (dnnl_primitive_execute (lr->enlarge, be->stream, 3, enlarge) != dnnl_success)
    goto fail;
  scatter_band (lr, NULL);
  if (run_conv (be, lr, SKIP, lr->int8 ? lr->buffers[SKIP_IN] : lr->skip_mem, sum)
      && (!lr->int8
          || dnnl_primitive_execute (lr->quantise, be->stream, 2, quantise) == dnnl_success))
    return TRUE;
fail:
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
               "cpu backend: %s: a piece of the convolution at f1's size failed", n->name);
  return FALSE;
}

void
hfam_cpu_clear_lowres (Step *s)
{
  HfamCpuLowres *lr = s->lowres;

  if (!lr)
    return;
  for (int k = 0; k < N_CONVS; k++) {
    if (lr->convs[k])
      dnnl_primitive_destroy (lr->convs[k]);
    if (lr->weights[k])
      dnnl_memory_destroy (lr->weights[k]);
    hfam_cpu_free (lr->weights_data[k]);
  }
  for (int k = 0; k < N_BUFFERS; k++)
    if (lr->buffers[k])
      dnnl_memory_destroy (lr->buffers[k]);
  if (lr->enlarge)
    dnnl_primitive_destroy (lr->enlarge);
  if (lr->quantise)
    dnnl_primitive_destroy (lr->quantise);
  if (lr->skip_mem)
    dnnl_memory_destroy (lr->skip_mem);
  if (lr->dst_mem)
    dnnl_memory_destroy (lr->dst_mem);
  g_free (lr);
  s->lowres = NULL;
}
