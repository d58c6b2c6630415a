/* The CPU backend's weights and its int8 parts (HFAM_PRECISION_INT8): the convolutions'
 * weights, quantised or not, reordered into each primitive's layout; which nodes run in int8,
 * the activations' scales, and planning the int8 convolutions and the reorders between a
 * value's fp32 and int8 forms (model/README.md, "How the CPU backend runs it"). */
#include "backend-cpu.h"

#include <math.h>
#include <stdint.h>

/* Symmetric int8 per output channel (-127..127), as the exporter stores weights: for such a
 * file this gives back the stored values and scales exactly. */
static void
weight_scales_of (const float *w, int cout, size_t per_channel, float *scales)
{
  for (int o = 0; o < cout; o++) {
    float peak = 0;
    for (size_t k = 0; k < per_channel; k++)
      peak = MAX (peak, fabsf (w[o * per_channel + k]));
    scales[o] = peak > 0 ? peak / 127 : 1;
  }
}

void
hfam_cpu_quantise_weights (const float *w, int cout, size_t per_channel, const float *scales,
                           int8_t *q)
{
  for (int o = 0; o < cout; o++)
    for (size_t k = 0; k < per_channel; k++)
      q[o * per_channel + k] =
          (int8_t) CLAMP (lrintf (w[o * per_channel + k] / scales[o]), -127, 127);
}

/* ---- the weights shared by the backends of one model ---- */

typedef struct {
  dnnl_memory_desc_t md;
  void *data;
  size_t size;
  int users;
} SharedWeights;

struct _HfamCpuWeightCache {
  GMutex lock;
  int n_nodes;
  GSList **by_node;  /* SharedWeights*, a node's weights in each layout a backend asked for */
  guint64 bytes;
};

HfamCpuWeightCache *
hfam_cpu_weight_cache_new (int n_nodes)
{
  HfamCpuWeightCache *cache = g_new0 (HfamCpuWeightCache, 1);

  g_mutex_init (&cache->lock);
  cache->n_nodes = n_nodes;
  cache->by_node = g_new0 (GSList *, n_nodes);
  return cache;
}

void
hfam_cpu_weight_cache_free (HfamCpuWeightCache *cache)
{
  if (!cache)
    return;
  /* the model outlives its contexts: nothing is in use now */
  for (int i = 0; i < cache->n_nodes; i++)
    g_assert (cache->by_node[i] == NULL);
  g_free (cache->by_node);
  g_mutex_clear (&cache->lock);
  g_free (cache);
}

guint64
hfam_cpu_weight_cache_bytes (HfamCpuWeightCache *cache)
{
  guint64 bytes;

  g_mutex_lock (&cache->lock);
  bytes = cache->bytes;
  g_mutex_unlock (&cache->lock);
  return bytes;
}

/* The node's weights in layout `md`, a use more counted; NULL when no backend made them. The
 * cache's lock is held. */
static void *
cache_take (HfamCpuWeightCache *cache, int node, const dnnl_memory_desc_t *md)
{
  for (GSList *l = cache->by_node[node]; l; l = l->next) {
    SharedWeights *w = l->data;
    if (dnnl_memory_desc_equal (&w->md, md)) {
      w->users++;
      return w->data;
    }
  }
  return NULL;
}

static void
cache_insert (HfamCpuWeightCache *cache, int node, const dnnl_memory_desc_t *md, void *data,
              size_t size)
{
  SharedWeights *w = g_new (SharedWeights, 1);

  *w = (SharedWeights) { .md = *md, .data = data, .size = size, .users = 1 };
  cache->by_node[node] = g_slist_prepend (cache->by_node[node], w);
  cache->bytes += size;
}

static void
cache_release (HfamCpuWeightCache *cache, int node, void *data)
{
  g_mutex_lock (&cache->lock);
  for (GSList *l = cache->by_node[node]; l; l = l->next) {
    SharedWeights *w = l->data;
    if (w->data != data)
      continue;
    if (--w->users == 0) {
      cache->by_node[node] = g_slist_delete_link (cache->by_node[node], l);
      cache->bytes -= w->size;
      hfam_cpu_free (w->data);
      g_free (w);
    }
    break;
  }
  g_mutex_unlock (&cache->lock);
}

/* A step's reordered weights, their memory given back to the budget (and to the cache, whose
 * last user frees them). */
void
hfam_cpu_drop_weights (CpuBackend *be, Step *s)
{
  if (s->weights)
    dnnl_memory_destroy (s->weights);
  if (s->weights_shared)
    cache_release (be->weight_cache, s - be->steps, s->weights_data);
  else
    hfam_cpu_free (s->weights_data);
  s->weights = NULL;
  s->weights_data = NULL;
  s->weights_shared = FALSE;
  hfam_cpu_release_counted (be, &s->weights_size);
}

gboolean
hfam_cpu_reorder_weights (CpuBackend *be, int cout, int cin, int kernel,
                          dnnl_data_type_t data_type, void *plain, dnnl_memory_t to)
{
  dnnl_memory_desc_t plain_md;
  const dnnl_memory_desc_t *to_md;
  dnnl_dims_t wdims = { cout, cin, kernel, kernel };
  dnnl_memory_t plain_mem = NULL;
  dnnl_primitive_desc_t rpd = NULL;
  dnnl_primitive_t reorder = NULL;
  gboolean ok = FALSE;

  if (dnnl_memory_get_memory_desc (to, &to_md) == dnnl_success
      && dnnl_memory_desc_init_by_tag (&plain_md, 4, wdims, data_type, dnnl_oihw) == dnnl_success
      && dnnl_memory_create (&plain_mem, &plain_md, be->engine, plain) == dnnl_success
      && dnnl_reorder_primitive_desc_create (&rpd, &plain_md, be->engine, to_md, be->engine,
                                             NULL) == dnnl_success
      && dnnl_primitive_create (&reorder, rpd) == dnnl_success) {
    dnnl_exec_arg_t args[2] = { { DNNL_ARG_FROM, plain_mem }, { DNNL_ARG_TO, to } };
    ok = dnnl_primitive_execute (reorder, be->stream, 2, args) == dnnl_success
         && dnnl_stream_wait (be->stream) == dnnl_success;
  }
  if (reorder)
    dnnl_primitive_destroy (reorder);
  if (rpd)
    dnnl_primitive_desc_destroy (rpd);
  if (plain_mem)
    dnnl_memory_destroy (plain_mem);
  return ok;
}

/* The weights, from the file's in fp32, reordered into s->weights: as they are, or quantised
 * when the step runs in int8 (s->weight_scales). */
static gboolean
reorder_conv_weights (CpuBackend *be, Step *s, const HfamNode *n, const HfamConvParams *p,
                      GError **error)
{
  const size_t count = (size_t) p->cout * p->cin * p->kernel * p->kernel;
  const guint64 plain_size = (sizeof (float) + (s->weight_scales ? 1 : 0)) * (guint64) count;
  float *plain;
  gboolean ok = FALSE;

  /* the plain copies live for this call only, but count while they do */
  if (!hfam_host_budget_take (be->budget, plain_size, "inference size", be->width, be->height,
                              error))
    return FALSE;
  if ((plain = hfam_cpu_alloc0 (plain_size, NULL))) {
    hfam_st_to_f32 (p->weight, plain);
    if (s->weight_scales) {
      int8_t *q = (int8_t *) (plain + count);
      hfam_cpu_quantise_weights (plain, p->cout, count / p->cout, s->weight_scales, q);
      ok = hfam_cpu_reorder_weights (be, p->cout, p->cin, p->kernel, dnnl_s8, q, s->weights);
    } else {
      ok = hfam_cpu_reorder_weights (be, p->cout, p->cin, p->kernel, dnnl_f32, plain,
                                      s->weights);
    }
  }
  hfam_cpu_free (plain);
  hfam_host_budget_give (be->budget, plain_size);
  if (!ok)
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                 "cpu backend: %s: cannot reorder weights", n->name);
  return ok;
}

gboolean
hfam_cpu_load_bias (CpuBackend *be, Step *s, const HfamNode *n, const HfamConvParams *p,
                    GError **error)
{
  dnnl_memory_desc_t bias_md;
  dnnl_dims_t bdims = { p->cout };

  if (s->bias)
    return TRUE;
  DNNL_TRY (dnnl_memory_desc_init_by_tag (&bias_md, 1, bdims, dnnl_f32, dnnl_a), n);
  if (!s->bias_data && !(s->bias_data = hfam_cpu_alloc0 (sizeof (float) * p->cout, error)))
    return FALSE;
  hfam_st_to_f32 (p->bias, s->bias_data);
  DNNL_TRY (dnnl_memory_create (&s->bias, &bias_md, be->engine, s->bias_data), n);
  return TRUE;
}

gboolean
hfam_cpu_int8_scales (CpuBackend *be, Step *s, const HfamNode *n, const HfamConvParams *p,
                      float input_scale, GError **error)
{
  if (!s->weight_scales) {
    g_autofree float *w = hfam_st_dup_f32 (p->weight);
    s->weight_scales = g_new (float, p->cout);
    weight_scales_of (w, p->cout, hfam_st_n_elements (p->weight) / p->cout, s->weight_scales);
  }
  if (!hfam_cpu_load_bias (be, s, n, p, error))
    return FALSE;
  /* oneDNN's int8 convolutions add the bias before the output scale */
  hfam_st_to_f32 (p->bias, s->bias_data);
  for (int o = 0; o < p->cout; o++)
    ((float *) s->bias_data)[o] /= input_scale * s->weight_scales[o];
  return TRUE;
}

/* The weights in s->weights_md: the cache's copy when another backend of the model made it,
 * else made here (and offered to the cache). Counted in this backend's budget either way: its
 * plans need them whether or not another context holds them too. */
static gboolean
make_conv_weights (CpuBackend *be, Step *s, const HfamNode *n, const HfamConvParams *p,
                   GError **error)
{
  HfamCpuWeightCache *cache = be->weight_cache;
  const int node = s - be->steps;
  const size_t size = dnnl_memory_desc_get_size (&s->weights_md);
  gboolean ok = FALSE, fresh = FALSE;

  if (!hfam_cpu_load_bias (be, s, n, p, error))
    return FALSE;
  if (!hfam_host_budget_take (be->budget, size, "inference size", be->width, be->height,
                              error))
    return FALSE;
  s->weights_size = size;
  /* held while the weights are made, so that two contexts planning at once make them once */
  if (cache)
    g_mutex_lock (&cache->lock);
  if (cache && (s->weights_data = cache_take (cache, node, &s->weights_md)))
    s->weights_shared = TRUE;
  else if ((s->weights_data = hfam_cpu_alloc0 (size, error)))
    fresh = TRUE;
  if (s->weights_data) {
    if (dnnl_memory_create (&s->weights, &s->weights_md, be->engine, s->weights_data)
        != dnnl_success)
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                   "cpu backend: %s: no memory object for the weights", n->name);
    else
      ok = !fresh || reorder_conv_weights (be, s, n, p, error);
  }
  if (ok && fresh && cache) {
    cache_insert (cache, node, &s->weights_md, s->weights_data, size);
    s->weights_shared = TRUE;
  }
  if (cache)
    g_mutex_unlock (&cache->lock);
  return ok;
}

gboolean
hfam_cpu_load_conv_weights (CpuBackend *be, Step *s, const HfamNode *n,
                            const HfamConvParams *p, const dnnl_memory_desc_t *want, GError **error)
{
  if (s->weights && dnnl_memory_desc_equal (&s->weights_md, want))
    return TRUE;
  hfam_cpu_drop_weights (be, s);
  s->weights_md = *want;
  if (make_conv_weights (be, s, n, p, error))
    return TRUE;
  /* half-made weights must not pass for the layout's at the next plan */
  hfam_cpu_drop_weights (be, s);
  return FALSE;
}

/* A convolution in int8 (one with an activation range): u8/s8 input and output, the weights
 * quantised per output channel (s32 sums), the scales of input, weights and output folded into
 * one output scale per channel, the residual (in its own scale and type) and ReLU as post-ops.
 * oneDNN's int8 convolutions add the bias before that scale, so the bias is divided by it. */
gboolean
hfam_cpu_plan_conv_int8 (CpuBackend *be, int id, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  const HfamConvParams *p = &n->conv;
  Step *s = &be->steps[id];
  const Value *src = &be->values[n->inputs[0]], *v = &be->values[id];
  dnnl_memory_desc_t w_any, b_md;
  dnnl_dims_t wdims = { p->cout, p->cin, p->kernel, p->kernel }, bdims = { p->cout };
  dnnl_dims_t strides = { p->stride, p->stride }, dil = { p->dilation - 1, p->dilation - 1 };
  dnnl_dims_t pads = { p->pad, p->pad };
  dnnl_convolution_desc_t cd;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_primitive_attr_t attr;
  dnnl_post_ops_t po = NULL;
  g_autofree float *output_scales = g_new (float, p->cout);
  dnnl_status_t st;

  if (!hfam_cpu_int8_scales (be, s, n, p, src->qscale, error))
    return FALSE;
  DNNL_TRY (dnnl_memory_desc_init_by_tag (&w_any, 4, wdims, dnnl_s8, dnnl_format_tag_any), n);
  DNNL_TRY (dnnl_memory_desc_init_by_tag (&b_md, 1, bdims, dnnl_f32, dnnl_a), n);
  DNNL_TRY (dnnl_dilated_convolution_forward_desc_init (&cd, dnnl_forward_inference,
                                                        dnnl_convolution_direct, &src->qmd,
                                                        &w_any, &b_md, &v->qmd, strides, dil,
                                                        pads, pads), n);
  attr = hfam_cpu_new_attr ();
  dnnl_post_ops_create (&po);
  if (p->residual >= 0) {
    const Value *r = &be->values[p->residual];
    dnnl_post_ops_append_sum_v2 (po, r->qscale / v->qscale, r->qmd.data_type);
  }
  if (p->relu)
    dnnl_post_ops_append_eltwise (po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f);
  dnnl_primitive_attr_set_post_ops (attr, po);
  dnnl_post_ops_destroy (po);
  for (int o = 0; o < p->cout; o++)
    output_scales[o] = src->qscale * s->weight_scales[o] / v->qscale;
  dnnl_primitive_attr_set_output_scales (attr, p->cout, 1 << 1, output_scales);
  st = dnnl_primitive_desc_create (&pd, &cd, attr, be->engine, NULL);
  dnnl_primitive_attr_destroy (attr);
  if (st != dnnl_success) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                 "cpu backend: %s: no int8 convolution: %s", n->name, dnnl_status2str (st));
    return FALSE;
  }
  if (!hfam_cpu_load_conv_weights (be, s, n, p,
                                   dnnl_primitive_desc_query_md (pd, dnnl_query_weights_md, 0),
                                   error)) {
    dnnl_primitive_desc_destroy (pd);
    return FALSE;
  }
  s->args[0] = (dnnl_exec_arg_t) { DNNL_ARG_SRC, src->qmem };
  s->args[1] = (dnnl_exec_arg_t) { DNNL_ARG_WEIGHTS, s->weights };
  s->args[2] = (dnnl_exec_arg_t) { DNNL_ARG_BIAS, s->bias };
  s->args[3] = (dnnl_exec_arg_t) { DNNL_ARG_DST, v->qmem };
  s->n_args = 4;
  return hfam_cpu_finish_primitive (be, s, n, pd, error);
}

/* The reorder between a value's fp32 and int8 forms, from the one its node writes. */
gboolean
hfam_cpu_plan_requant (CpuBackend *be, int id, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  Step *s = &be->steps[id];
  Value *v = &be->values[id];
  const gboolean to_int8 = !be->runs_int8[id];
  const float scale = to_int8 ? 1 / v->qscale : v->qscale;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_primitive_desc_t rpd;
  dnnl_status_t st;

  dnnl_primitive_attr_create (&attr);
  dnnl_primitive_attr_set_output_scales (attr, 1, 0, &scale);
  st = dnnl_reorder_primitive_desc_create (&rpd, to_int8 ? &v->md : &v->qmd, be->engine,
                                           to_int8 ? &v->qmd : &v->md, be->engine, attr);
  dnnl_primitive_attr_destroy (attr);
  DNNL_TRY (st, n);
  st = dnnl_primitive_create (&s->requant, rpd);
  dnnl_primitive_desc_destroy (rpd);
  DNNL_TRY (st, n);
  s->requant_args[0] = (dnnl_exec_arg_t) { DNNL_ARG_FROM, to_int8 ? v->mem : v->qmem };
  s->requant_args[1] = (dnnl_exec_arg_t) { DNNL_ARG_TO, to_int8 ? v->qmem : v->mem };
  return TRUE;
}

/* An int8 concatenation: each input reordered into its slice of the destination's nhwc int8
 * form from the form its node writes (int8 rescaled to the destination's scale, or bf16 or
 * fp32 quantised), one jit reorder each; oneDNN's int8 convolutions and resizes would fall
 * back to reference code on a strided slice. */
gboolean
hfam_cpu_plan_concat_int8 (CpuBackend *be, int id, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  const Value *v = &be->values[id];
  int c0 = 0;

  for (int k = 0; k < n->n_inputs; c0 += be->base.graph->nodes[n->inputs[k]].channels, k++) {
    const int in = n->inputs[k];
    const Value *src = &be->values[in];
    const gboolean from_int8 = be->runs_int8[in], from_bf16 = hfam_cpu_writes_bf16 (be, in);
    const float scale = (from_int8 ? src->qscale : 1.0f) / v->qscale;
    dnnl_dims_t dims, offsets = { 0, c0, 0, 0 };
    dnnl_memory_desc_t slice_md;
    dnnl_primitive_attr_t attr;
    gboolean added;
    int w, h;

    hfam_cpu_value_dims (be, &be->base.graph->nodes[in], dims, &w, &h);
    DNNL_TRY (dnnl_memory_desc_init_submemory (&slice_md, &v->qmd, dims, offsets), n);
    dnnl_primitive_attr_create (&attr);
    dnnl_primitive_attr_set_output_scales (attr, 1, 0, &scale);
    added = hfam_cpu_add_slice_copy (be, &be->steps[id], n, &slice_md, v->qblock->data,
                                     from_int8   ? &src->qmd
                                     : from_bf16 ? &src->bf16_md
                                                 : &src->md,
                                     from_int8   ? src->qmem
                                     : from_bf16 ? src->bf16_mem
                                                 : src->mem,
                                     attr, error);
    dnnl_primitive_attr_destroy (attr);
    if (!added)
      return FALSE;
  }
  return TRUE;
}

/* The largest magnitude of a value in the file's activation ranges, and the type of its int8
 * form: u8 after a ReLU, s8 otherwise. Pooling, a resize, a concatenation and the detail
 * skips' scaling by A (in 0..1) take no value beyond their inputs' ranges. */
float
hfam_cpu_value_range (const HfamGraph *g, int id, dnnl_data_type_t *data_type)
{
  const HfamNode *n = &g->nodes[id];
  float range = 0;

  switch (n->op) {
  case HFAM_OP_SCALE_BY_MAP:
    return hfam_cpu_value_range (g, n->inputs[0], data_type);
  case HFAM_OP_MAXPOOL:
  case HFAM_OP_AVGPOOL:
  case HFAM_OP_RESIZE:
  case HFAM_OP_CONCAT:
    *data_type = dnnl_u8;
    for (int k = 0; k < n->n_inputs; k++) {
      dnnl_data_type_t input_type;
      range = MAX (range, hfam_cpu_value_range (g, n->inputs[k], &input_type));
      if (input_type != dnnl_u8)
        *data_type = dnnl_s8;
    }
    return range;
  default:
    *data_type = (n->op == HFAM_OP_CONV && n->conv.relu) || n->op == HFAM_OP_SK_PROJECT
                     ? dnnl_u8
                     : dnnl_s8;
    return n->act_max;
  }
}

/* Whether oneDNN's int8 convolutions have VNNI's dot products here. */
gboolean
hfam_cpu_has_vnni (void)
{
  switch (dnnl_get_effective_cpu_isa ()) {
  case dnnl_cpu_isa_avx512_core_vnni:
  case dnnl_cpu_isa_avx512_core_bf16:
  case dnnl_cpu_isa_avx512_core_amx:
  case dnnl_cpu_isa_avx2_vnni:
    return TRUE;
  default:
    return FALSE;
  }
}

/* Whether every node that reads `id` runs in int8 (and something does; an output does not). */
static gboolean
read_only_in_int8 (const CpuBackend *be, int id)
{
  const HfamGraph *g = be->base.graph;
  gboolean read = FALSE;

  if (g->last_use[id] == g->n_nodes)
    return FALSE;
  for (int j = id + 1; j <= g->last_use[id]; j++)
    if (hfam_node_reads (&g->nodes[j], id)) {
      if (!be->runs_int8[j])
        return FALSE;
      read = TRUE;
    }
  return read;
}

/* Which nodes run in int8 (the convolutions of the encoder and, where the file has their
 * ranges, L-BB's and the decoders' group's; the encoder's max pool; the concatenations that
 * only int8 nodes read, and the resizes and detail-skip scalings of int8 values that only
 * those read: their inputs go straight into their int8 slices, not through an fp32
 * concatenation quantised whole)
 * and which forms each value needs: int8 where an int8 node makes or reads it, fp32 where
 * anything else does (an int8 concatenation reads its other inputs in the form their nodes
 * write, fp32 or bf16). */
void
hfam_cpu_mark_int8 (CpuBackend *be)
{
  const HfamGraph *g = be->base.graph;

  be->runs_int8 = g_new0 (gboolean, g->n_nodes);
  be->quantised = g_new0 (gboolean, g->n_nodes);
  be->fp32 = g_new0 (gboolean, g->n_nodes);
  for (int i = 0; i < g->n_nodes; i++) {
    const HfamNode *n = &g->nodes[i];
    be->runs_int8[i] = be->int8 && ((n->op == HFAM_OP_CONV && n->act_max > 0)
                                     || n->op == HFAM_OP_MAXPOOL);
  }
  /* from the last node back, so that a resize knows whether its concatenation runs in int8 */
  for (int i = g->n_nodes - 1; i >= 0 && be->int8; i--) {
    const HfamNode *n = &g->nodes[i];
    const gboolean maps_int8 = n->op == HFAM_OP_RESIZE || n->op == HFAM_OP_SCALE_BY_MAP;
    if (!n->planar && (n->op == HFAM_OP_CONCAT || (maps_int8 && be->runs_int8[n->inputs[0]])))
      be->runs_int8[i] = read_only_in_int8 (be, i);
  }
  for (int i = 0; i < g->n_nodes; i++) {
    be->quantised[i] = be->runs_int8[i];
    be->fp32[i] = !be->runs_int8[i] || g->last_use[i] == g->n_nodes;
  }
  for (int i = 0; i < g->n_nodes; i++)
    for (int k = 0; k < g->nodes[i].n_inputs; k++) {
      const int in = g->nodes[i].inputs[k];
      const HfamOp op = g->nodes[i].op;
      /* the scaling's map is a planar fp32 plane */
      if (!be->runs_int8[i] || (op == HFAM_OP_CONCAT && !be->runs_int8[in])
          || (op == HFAM_OP_SCALE_BY_MAP && k == 1))
        be->fp32[in] = TRUE;
      else
        be->quantised[in] = TRUE;
    }
}
