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
 * "L-BB's first convolution at f1's size", has the time it saves.
 *
 * All of it runs in fp32, where the map is at least 8 pixels a side. Nothing but this
 * convolution reads the concatenation, so once the strips are copied out (into the plan's
 * scratchpad, after its convolutions' scratch), the padded f1 and its convolution take the
 * place of up(f1) there: the split takes hardly more memory than the convolution did. */
#include "backend-cpu.h"

#include <stdint.h>
#include <string.h>

/* rows of the band above and below, read with the two rows beyond them that the taps reach */
#define BAND 2
#define STRIP (2 * BAND + 2)

enum { LOW, ROWS, COLS, SKIP, N_CONVS };
enum { PADDED, LOW_OUT, ROWS_IN, COLS_IN, ROWS_OUT, COLS_OUT, N_BUFFERS };
#define FIRST_SCRATCH ROWS_IN /* the buffers before it lie in up(f1)'s slice */

struct _HfamCpuLowres {
  int up_channels, out_channels, block;
  int width, height;            /* the output's (and up(f1)'s) */
  const float *f1;              /* f1, blocked */
  float *up;                    /* the slices of the concatenation: up(f1), f0 */
  const float *skip;
  float *dst;
  dnnl_primitive_t convs[N_CONVS], enlarge;
  dnnl_memory_t weights[N_CONVS], bias, buffers[N_BUFFERS], skip_mem, dst_mem;
  void *weights_data[N_CONVS];
  dnnl_memory_desc_t buffer_mds[N_BUFFERS];
  size_t offsets[N_BUFFERS];   /* into up(f1)'s slice or the scratchpad */
};

static size_t
blocked_size (const CpuBackend *be, int channels, int height, int width)
{
  const size_t b = be->block;
  return sizeof (float) * (channels + b - 1) / b * b * height * width;
}

gboolean
hfam_cpu_lowres_fits (const CpuBackend *be, int id)
{
  const HfamGraph *g = be->base.graph;
  const HfamNode *n = &g->nodes[id], *cat, *up;
  const HfamConvParams *p = &n->conv;
  const Value *v = &be->values[id];

  if (n->op != HFAM_OP_CONV || be->runs_int8[id] || be->runs_bf16[id] || p->kernel != 3
      || p->stride != 1 || p->dilation != 2 || p->pad != 2 || p->residual >= 0
      || v->width < 8 || v->height < 8)
    return FALSE;
  cat = &g->nodes[n->inputs[0]];
  if (cat->op != HFAM_OP_CONCAT || cat->n_inputs != 2 || !be->fp32[n->inputs[0]])
    return FALSE;
  up = &g->nodes[cat->inputs[1]];
  /* f1 is read again here, so it must outlive the convolution (the detail decoder reads it);
   * the padded f1 and its convolution must fit in up(f1)'s slice */
  return up->op == HFAM_OP_RESIZE && g->nodes[up->inputs[0]].div == 2 * up->div
         && be->fp32[up->inputs[0]] && g->last_use[up->inputs[0]] > id
         && g->last_use[n->inputs[0]] == id
         && g->nodes[cat->inputs[0]].channels % be->block == 0
         && ((blocked_size (be, up->channels, v->height / 2 + 2, v->width / 2 + 2) + 63) & ~63)
                    + blocked_size (be, p->cout, v->height / 2, v->width / 2)
                <= blocked_size (be, up->channels, v->height, v->width);
}

static dnnl_status_t
blocked_md (const CpuBackend *be, dnnl_dim_t n, dnnl_dim_t c, dnnl_dim_t h, dnnl_dim_t w,
            dnnl_memory_desc_t *md)
{
  dnnl_dims_t dims = { n, c, h, w };
  return dnnl_memory_desc_init_by_tag (md, 4, dims, dnnl_f32, be->blocked_tag);
}

/* Convolution `which` of the split, from the buffers or values it reads to those it writes. */
static gboolean
plan_piece (CpuBackend *be, const HfamNode *n, HfamCpuLowres *lr, int which,
            const dnnl_memory_desc_t *src_md, const dnnl_memory_desc_t *dst_md,
            dnnl_primitive_desc_t *pd, GError **error)
{
  const HfamConvParams *p = &n->conv;
  HfamCpuConvSpec spec = { .cin = which == SKIP ? p->cin - lr->up_channels : lr->up_channels,
                           .cout = p->cout, .kernel = 3, .stride = 1,
                           .dilation = which == LOW ? 1 : 2,
                           .pad_l = { which == COLS ? 2 : 0, which == ROWS ? 2 : 0 },
                           .pad_r = { which == COLS ? 2 : 0, which == ROWS ? 2 : 0 },
                           .bias = which == SKIP, .sum = which == SKIP,
                           .relu = which == SKIP && p->relu,
                           .alg = dnnl_convolution_direct };

  if (which == SKIP)
    spec.pad_l[0] = spec.pad_l[1] = spec.pad_r[0] = spec.pad_r[1] = 2;
  if (which == LOW && be->base.winograd
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
 * the layout its primitive asks for, from `plain`: the whole convolution's oihw weights, then
 * room for one piece's. */
static gboolean
load_piece_weights (CpuBackend *be, const HfamNode *n, HfamCpuLowres *lr, int which,
                    const_dnnl_primitive_desc_t pd, float *plain, GError **error)
{
  const HfamConvParams *p = &n->conv;
  const int skip_channels = p->cin - lr->up_channels;
  const int first = which == SKIP ? 0 : skip_channels;
  const int channels = which == SKIP ? skip_channels : lr->up_channels;
  const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md (pd, dnnl_query_weights_md, 0);
  float *piece = plain + (size_t) p->cout * p->cin * 9;

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
  if (!hfam_cpu_reorder_weights (be, p->cout, channels, 3, dnnl_f32, piece,
                                 lr->weights[which])) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                 "cpu backend: %s: cannot reorder weights", n->name);
    return FALSE;
  }
  return TRUE;
}

/* The enlargement of the low-size result to the destination; *scratch grows to its scratch. */
static gboolean
plan_enlarge (CpuBackend *be, const HfamNode *n, HfamCpuLowres *lr,
              const dnnl_memory_desc_t *dst_md, size_t *scratch, GError **error)
{
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
  return TRUE;
}

/* The pieces' primitives and weights, and where their buffers go in the scratchpad. */
static gboolean
plan_pieces (CpuBackend *be, int id, HfamCpuLowres *lr, float *plain, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  const int w = lr->width, h = lr->height, cu = lr->up_channels, co = lr->out_channels;
  const dnnl_memory_desc_t *dst_md = &be->values[id].md;
  dnnl_memory_desc_t *mds = lr->buffer_mds, skip_md;
  const dnnl_memory_desc_t *srcs[N_CONVS] = { &mds[PADDED], &mds[ROWS_IN], &mds[COLS_IN],
                                              &skip_md };
  const dnnl_memory_desc_t *dsts[N_CONVS] = { &mds[LOW_OUT], &mds[ROWS_OUT], &mds[COLS_OUT],
                                              dst_md };
  size_t scratch = 0, end;

  DNNL_TRY (blocked_md (be, 1, cu, h / 2 + 2, w / 2 + 2, &mds[PADDED]), n);
  DNNL_TRY (blocked_md (be, 1, co, h / 2, w / 2, &mds[LOW_OUT]), n);
  DNNL_TRY (blocked_md (be, 2, cu, STRIP, w, &mds[ROWS_IN]), n);
  DNNL_TRY (blocked_md (be, 2, cu, h, STRIP, &mds[COLS_IN]), n);
  DNNL_TRY (blocked_md (be, 2, co, BAND, w, &mds[ROWS_OUT]), n);
  DNNL_TRY (blocked_md (be, 2, co, h, BAND, &mds[COLS_OUT]), n);
  DNNL_TRY (blocked_md (be, 1, n->conv.cin - cu, h, w, &skip_md), n);
  for (int k = 0; k < N_CONVS; k++) {
    dnnl_primitive_desc_t pd;
    const dnnl_memory_desc_t *sp;
    dnnl_status_t st;

    if (!plan_piece (be, n, lr, k, srcs[k], dsts[k], &pd, error))
      return FALSE;
    if (!load_piece_weights (be, n, lr, k, pd, plain, error)) {
      dnnl_primitive_desc_destroy (pd);
      return FALSE;
    }
    sp = dnnl_primitive_desc_query_md (pd, dnnl_query_scratchpad_md, 0);
    scratch = MAX (scratch, sp ? dnnl_memory_desc_get_size (sp) : 0);
    st = dnnl_primitive_create (&lr->convs[k], pd);
    dnnl_primitive_desc_destroy (pd);
    DNNL_TRY (st, n);
  }
  if (!plan_enlarge (be, n, lr, dst_md, &scratch, error))
    return FALSE;
  for (int k = 0; k < N_BUFFERS; k++) {
    if (k == 0 || k == FIRST_SCRATCH)
      end = k ? scratch : 0;
    lr->offsets[k] = (end + 63) & ~(size_t) 63;
    end = lr->offsets[k] + dnnl_memory_desc_get_size (&mds[k]);
    DNNL_TRY (dnnl_memory_create (&lr->buffers[k], &mds[k], be->engine,
                                  k < FIRST_SCRATCH ? (uint8_t *) lr->up + lr->offsets[k]
                                                    : DNNL_MEMORY_NONE), n);
  }
  be->scratchpad_size = MAX (be->scratchpad_size, end);
  DNNL_TRY (dnnl_memory_create (&lr->skip_mem, &skip_md, be->engine, (void *) lr->skip), n);
  DNNL_TRY (dnnl_memory_create (&lr->dst_mem, dst_md, be->engine, lr->dst), n);
  return TRUE;
}

gboolean
hfam_cpu_plan_lowres (CpuBackend *be, int id, GError **error)
{
  const HfamGraph *g = be->base.graph;
  const HfamNode *n = &g->nodes[id], *cat = &g->nodes[n->inputs[0]];
  const int up = cat->inputs[1], f1 = g->nodes[up].inputs[0];
  const Value *v = &be->values[id], *cv = &be->values[n->inputs[0]];
  /* the whole and one piece */
  const guint64 plain_size = 2 * sizeof (float) * (guint64) n->conv.cout * n->conv.cin * 9;
  Step *s = &be->steps[id];
  HfamCpuLowres *lr;
  float *plain;
  gboolean ok;

  /* the whole convolution's weights, from a plan at a size where the split did not fit */
  hfam_cpu_drop_weights (be, s);
  lr = s->lowres = g_new0 (HfamCpuLowres, 1);
  lr->up_channels = g->nodes[up].channels;
  lr->out_channels = n->conv.cout;
  lr->block = be->block;
  lr->width = v->width;
  lr->height = v->height;
  lr->f1 = (const float *) ((const uint8_t *) be->values[f1].block->data
                            + be->values[f1].offset);
  lr->skip = (const float *) ((const uint8_t *) cv->block->data + cv->offset
                              + hfam_cpu_slice_offset (be, n->inputs[0], cat->inputs[0]));
  lr->up = (float *) ((uint8_t *) cv->block->data + cv->offset
                      + hfam_cpu_slice_offset (be, n->inputs[0], up));
  lr->dst = (float *) ((uint8_t *) v->block->data + v->offset);
  if (!hfam_cpu_load_bias (be, s, n, &n->conv, error))
    return FALSE;
  lr->bias = s->bias;
  /* the plain copies live for this call only, but count while they do */
  if (!hfam_host_budget_take (be->budget, plain_size, "inference size", be->width, be->height,
                              error))
    return FALSE;
  if (!(plain = hfam_cpu_alloc0 (plain_size, error))) {
    hfam_host_budget_give (be->budget, plain_size);
    return FALSE;
  }
  hfam_st_to_f32 (n->conv.weight, plain);
  ok = plan_pieces (be, id, lr, plain, error);
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
    for (int k = FIRST_SCRATCH; k < N_BUFFERS; k++)
      DNNL_TRY (dnnl_memory_set_data_handle (lr->buffers[k],
                                             (uint8_t *) be->scratchpad + lr->offsets[k]),
                &g->nodes[i]);
  }
  return TRUE;
}

static float *
buffer (const CpuBackend *be, const HfamCpuLowres *lr, int which)
{
  return (float *) ((uint8_t *) (which < FIRST_SCRATCH ? (void *) lr->up : be->scratchpad)
                     + lr->offsets[which]);
}

/* Blocked maps are [image][channel block][row][column][channel in block]: a run of a row's
 * pixels in one channel block is contiguous. */
static size_t
pixel_at (const HfamCpuLowres *lr, int image, int blocks, int cb, int rows, int cols, int y,
          int x)
{
  return ((((size_t) image * blocks + cb) * rows + y) * cols + x) * lr->block;
}

/* f1 with each edge pixel repeated once outward. */
static void
pad_f1 (const CpuBackend *be, const HfamCpuLowres *lr)
{
  const int w = lr->width / 2, h = lr->height / 2, b = lr->block;
  const int blocks = (lr->up_channels + b - 1) / b;
  float *padded = buffer (be, lr, PADDED);

#pragma omp parallel for
  for (int cb = 0; cb < blocks; cb++)
    for (int y = 0; y < h + 2; y++) {
      const float *from = lr->f1 + pixel_at (lr, 0, blocks, cb, h, w, CLAMP (y - 1, 0, h - 1), 0);
      float *to = padded + pixel_at (lr, 0, blocks, cb, h + 2, w + 2, y, 0);
      memcpy (to, from, sizeof (float) * b);
      memcpy (to + b, from, sizeof (float) * b * w);
      memcpy (to + (size_t) (w + 1) * b, from + (size_t) (w - 1) * b, sizeof (float) * b);
    }
}

/* The strips of up(f1) that the band's taps read, with zeros where they fall outside: rows
 * (top: 2 zero rows, then rows 0..3; bottom: the last 4 rows, then 2 zero rows) and columns
 * likewise, each pair a batch of two images. */
static void
gather_strips (const CpuBackend *be, const HfamCpuLowres *lr)
{
  const int w = lr->width, h = lr->height, b = lr->block, inner = STRIP - BAND;
  const int blocks = (lr->up_channels + b - 1) / b;
  float *rows = buffer (be, lr, ROWS_IN), *cols = buffer (be, lr, COLS_IN);
  const size_t row_bytes = sizeof (float) * b * w;

#pragma omp parallel for
  for (int cb = 0; cb < blocks; cb++) {
    memset (rows + pixel_at (lr, 0, blocks, cb, STRIP, w, 0, 0), 0, BAND * row_bytes);
    memcpy (rows + pixel_at (lr, 0, blocks, cb, STRIP, w, BAND, 0),
            lr->up + pixel_at (lr, 0, blocks, cb, h, w, 0, 0), inner * row_bytes);
    memcpy (rows + pixel_at (lr, 1, blocks, cb, STRIP, w, 0, 0),
            lr->up + pixel_at (lr, 0, blocks, cb, h, w, h - inner, 0), inner * row_bytes);
    memset (rows + pixel_at (lr, 1, blocks, cb, STRIP, w, inner, 0), 0, BAND * row_bytes);
    for (int y = 0; y < h; y++) {
      float *left = cols + pixel_at (lr, 0, blocks, cb, h, STRIP, y, 0);
      float *right = cols + pixel_at (lr, 1, blocks, cb, h, STRIP, y, 0);
      memset (left, 0, sizeof (float) * b * BAND);
      memcpy (left + BAND * b, lr->up + pixel_at (lr, 0, blocks, cb, h, w, y, 0),
              sizeof (float) * b * inner);
      memcpy (right, lr->up + pixel_at (lr, 0, blocks, cb, h, w, y, w - inner),
              sizeof (float) * b * inner);
      memset (right + inner * b, 0, sizeof (float) * b * BAND);
    }
  }
}

/* The band's results over the enlarged low-size ones: 2 rows and columns along each side. */
static void
scatter_band (const CpuBackend *be, const HfamCpuLowres *lr)
{
  const int w = lr->width, h = lr->height, b = lr->block;
  const int blocks = (lr->out_channels + b - 1) / b;
  const float *rows = buffer (be, lr, ROWS_OUT), *cols = buffer (be, lr, COLS_OUT);
  const size_t row_bytes = sizeof (float) * b * w;

#pragma omp parallel for
  for (int cb = 0; cb < blocks; cb++) {
    memcpy (lr->dst + pixel_at (lr, 0, blocks, cb, h, w, 0, 0),
            rows + pixel_at (lr, 0, blocks, cb, BAND, w, 0, 0), BAND * row_bytes);
    memcpy (lr->dst + pixel_at (lr, 0, blocks, cb, h, w, h - BAND, 0),
            rows + pixel_at (lr, 1, blocks, cb, BAND, w, 0, 0), BAND * row_bytes);
    for (int y = 0; y < h; y++) {
      memcpy (lr->dst + pixel_at (lr, 0, blocks, cb, h, w, y, 0),
              cols + pixel_at (lr, 0, blocks, cb, h, BAND, y, 0), sizeof (float) * b * BAND);
      memcpy (lr->dst + pixel_at (lr, 0, blocks, cb, h, w, y, w - BAND),
              cols + pixel_at (lr, 1, blocks, cb, h, BAND, y, 0), sizeof (float) * b * BAND);
    }
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

gboolean
hfam_cpu_run_lowres (CpuBackend *be, int id, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  HfamCpuLowres *lr = be->steps[id].lowres;
  dnnl_exec_arg_t enlarge[] = { { DNNL_ARG_SRC, lr->buffers[LOW_OUT] },
                                { DNNL_ARG_DST, lr->dst_mem },
                                { DNNL_ARG_SCRATCHPAD, be->scratchpad_mem } };

  /* the strips first: the padded f1 and its convolution overwrite up(f1) */
  gather_strips (be, lr);
  pad_f1 (be, lr);
  if (!run_conv (be, lr, LOW, lr->buffers[PADDED], lr->buffers[LOW_OUT])
      || dnnl_primitive_execute (lr->enlarge, be->stream, 3, enlarge) != dnnl_success
      || !run_conv (be, lr, ROWS, lr->buffers[ROWS_IN], lr->buffers[ROWS_OUT])
      || !run_conv (be, lr, COLS, lr->buffers[COLS_IN], lr->buffers[COLS_OUT]))
    goto fail;
  scatter_band (be, lr);
  if (run_conv (be, lr, SKIP, lr->skip_mem, lr->dst_mem))
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
  if (lr->skip_mem)
    dnnl_memory_destroy (lr->skip_mem);
  if (lr->dst_mem)
    dnnl_memory_destroy (lr->dst_mem);
  g_free (lr);
  s->lowres = NULL;
}
