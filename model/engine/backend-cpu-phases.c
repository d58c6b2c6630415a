/* Dilated convolutions as batches of undilated ones. A 3x3 convolution with dilation d only
 * ever combines pixels that lie d apart, so the map splits into d x d interleaved phase images
 * (rows p, p + d, p + 2d, ... and columns q, q + d, ...) that it convolves independently with
 * dilation 1. oneDNN's Winograd takes no dilation; on a batch of d² phase images it takes
 * half the time of the direct dilated kernel on MFEM's maps, copies into and out of the phase
 * images included. The phase images lie in the plan's scratchpad, after the convolution's own
 * scratch. */
#include "backend-cpu.h"

#include <stdint.h>

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

gboolean
hfam_cpu_phase_fits (const HfamConvParams *p, const Value *src)
{
  const int d = p->dilation;
  return p->kernel == 3 && p->stride == 1 && d > 1 && p->pad == d && p->residual < 0
         && src->width % d == 0 && src->height % d == 0
         && (size_t) p->cin * src->width * src->height * sizeof (float) <= PHASE_MAX_INPUT;
}

/* The d² phase images of a map of `channels` x h x w as one batch, blocked like the map. */
static dnnl_status_t
batch_md (const CpuBackend *be, int channels, int d, int w, int h, dnnl_memory_desc_t *md)
{
  dnnl_dims_t dims = { d * d, channels, h / d, w / d };
  return dnnl_memory_desc_init_by_tag (md, 4, dims, dnnl_f32, be->blocked_tag);
}

gboolean
hfam_cpu_phase_mds (const CpuBackend *be, const HfamNode *n, const HfamConvParams *p,
                    const Value *src, dnnl_memory_desc_t *in, dnnl_memory_desc_t *out,
                    GError **error)
{
  DNNL_TRY (batch_md (be, p->cin, p->dilation, src->width, src->height, in), n);
  DNNL_TRY (batch_md (be, p->cout, p->dilation, src->width, src->height, out), n);
  return TRUE;
}

/* The same elements seen two ways, as (p, q, channel block, i, j, channel in block): pixel
 * (i d + p, j d + q) of a blocked map, and pixel (i, j) of phase image p d + q in the batch. */
static dnnl_status_t
phase_views (const CpuBackend *be, int channels, int d, int w, int h, dnnl_memory_desc_t *map,
             dnnl_memory_desc_t *batch)
{
  const dnnl_dim_t b = be->block, blocks = (channels + b - 1) / b, hq = h / d, wq = w / d;
  dnnl_dims_t dims = { d, d, blocks, hq, wq, b };
  dnnl_dims_t map_strides = { w * b, b, h * w * b, d * w * b, d * b, 1 };
  dnnl_dims_t batch_strides = { d * blocks * hq * wq * b, blocks * hq * wq * b, hq * wq * b,
                                wq * b, b, 1 };
  dnnl_status_t st = dnnl_memory_desc_init_by_strides (map, 6, dims, dnnl_f32, map_strides);
  return st != dnnl_success ? st
                            : dnnl_memory_desc_init_by_strides (batch, 6, dims, dnnl_f32,
                                                                batch_strides);
}

static gboolean
make_reorder (const HfamNode *n, CpuBackend *be, const dnnl_memory_desc_t *from,
              const dnnl_memory_desc_t *to, dnnl_primitive_t *prim, GError **error)
{
  dnnl_primitive_desc_t pd;
  dnnl_status_t st;

  DNNL_TRY (dnnl_reorder_primitive_desc_create (&pd, from, be->engine, to, be->engine, NULL), n);
  st = dnnl_primitive_create (prim, pd);
  dnnl_primitive_desc_destroy (pd);
  DNNL_TRY (st, n);
  return TRUE;
}

gboolean
hfam_cpu_plan_phases (CpuBackend *be, Step *s, const HfamNode *n, const HfamConvParams *p,
                      const Value *src, const Value *dst, const_dnnl_primitive_desc_t conv,
                      GError **error)
{
  const int d = p->dilation;
  const dnnl_memory_desc_t *in_md = dnnl_primitive_desc_query_md (conv, dnnl_query_src_md, 0);
  const dnnl_memory_desc_t *out_md = dnnl_primitive_desc_query_md (conv, dnnl_query_dst_md, 0);
  const dnnl_memory_desc_t *sp = dnnl_primitive_desc_query_md (conv, dnnl_query_scratchpad_md,
                                                               0);
  const size_t conv_scratch = sp ? dnnl_memory_desc_get_size (sp) : 0;
  dnnl_memory_desc_t in_map, in_batch, out_map, out_batch;
  size_t in_size, out_size;

  DNNL_TRY (phase_views (be, p->cin, d, src->width, src->height, &in_map, &in_batch), n);
  DNNL_TRY (phase_views (be, p->cout, d, src->width, src->height, &out_map, &out_batch), n);
  if (!make_reorder (n, be, &in_map, &in_batch, &s->phase_split, error)
      || !make_reorder (n, be, &out_batch, &out_map, &s->phase_merge, error))
    return FALSE;
  DNNL_TRY (dnnl_memory_create (&s->split_from, &in_map, be->engine,
                                (uint8_t *) src->block->data + src->offset), n);
  DNNL_TRY (dnnl_memory_create (&s->merge_to, &out_map, be->engine,
                                (uint8_t *) dst->block->data + dst->offset), n);
  /* in the scratchpad, which hfam_cpu_bind_phases gives them once it exists */
  DNNL_TRY (dnnl_memory_create (&s->split_to, &in_batch, be->engine, DNNL_MEMORY_NONE), n);
  DNNL_TRY (dnnl_memory_create (&s->phase_in, in_md, be->engine, DNNL_MEMORY_NONE), n);
  DNNL_TRY (dnnl_memory_create (&s->phase_out, out_md, be->engine, DNNL_MEMORY_NONE), n);
  DNNL_TRY (dnnl_memory_create (&s->merge_from, &out_batch, be->engine, DNNL_MEMORY_NONE), n);
  in_size = dnnl_memory_desc_get_size (in_md);
  out_size = dnnl_memory_desc_get_size (out_md);
  s->phase_offset = (conv_scratch + 63) & ~(size_t) 63;
  s->phase_out_offset = (s->phase_offset + in_size + 63) & ~(size_t) 63;
  be->scratchpad_size = MAX (be->scratchpad_size, s->phase_out_offset + out_size);
  return TRUE;
}

gboolean
hfam_cpu_bind_phases (CpuBackend *be, GError **error)
{
  const HfamGraph *g = be->base.graph;

  for (int i = 0; i < g->n_nodes; i++) {
    Step *s = &be->steps[i];
    uint8_t *in, *out;

    if (!s->phase_split)
      continue;
    in = (uint8_t *) be->scratchpad + s->phase_offset;
    out = (uint8_t *) be->scratchpad + s->phase_out_offset;
    DNNL_TRY (dnnl_memory_set_data_handle (s->split_to, in), &g->nodes[i]);
    DNNL_TRY (dnnl_memory_set_data_handle (s->phase_in, in), &g->nodes[i]);
    DNNL_TRY (dnnl_memory_set_data_handle (s->phase_out, out), &g->nodes[i]);
    DNNL_TRY (dnnl_memory_set_data_handle (s->merge_from, out), &g->nodes[i]);
  }
  return TRUE;
}

gboolean
hfam_cpu_run_phases (CpuBackend *be, Step *s, const HfamNode *n, gboolean merge,
                     GError **error)
{
  dnnl_exec_arg_t args[2] = { { DNNL_ARG_FROM, merge ? s->merge_from : s->split_from },
                              { DNNL_ARG_TO, merge ? s->merge_to : s->split_to } };
  DNNL_TRY (dnnl_primitive_execute (merge ? s->phase_merge : s->phase_split, be->stream, 2,
                                    args), n);
  return TRUE;
}

void
hfam_cpu_clear_phases (Step *s)
{
  dnnl_memory_t *mems[] = { &s->split_from, &s->split_to, &s->phase_in, &s->phase_out,
                            &s->merge_from, &s->merge_to };

  if (s->phase_split)
    dnnl_primitive_destroy (s->phase_split);
  if (s->phase_merge)
    dnnl_primitive_destroy (s->phase_merge);
  s->phase_split = s->phase_merge = NULL;
  for (guint k = 0; k < G_N_ELEMENTS (mems); k++) {
    if (*mems[k])
      dnnl_memory_destroy (*mems[k]);
    *mems[k] = NULL;
  }
}
