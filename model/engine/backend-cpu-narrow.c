/* The decoders' last layers, 3x3 convolutions into 1 or 3 channels, by hfam_narrow_conv3x3
 * (kernels/narrow-conv.h) instead of oneDNN, whose blocked layouts pad the output channels to
 * 8 or 16 and so do 5 to 16 times their arithmetic: at 256 x 256 each took 3.5 ms in
 * oneDNN's Winograd. The weights are kept in the input's blocked layout, in the weight cache
 * like oneDNN's; input and output stay blocked as the graph has them. Not in bf16: oneDNN's
 * bf16 convolutions take as long there. */
#include "backend-cpu.h"
#include "narrow-conv.h"

gboolean
hfam_cpu_narrow_fits (const CpuBackend *be, int id)
{
  const HfamGraph *g = be->base.graph;
  const HfamNode *n = &g->nodes[id];
  const HfamConvParams *p = &n->conv;

  /* fp32 values of nodes that are not planar are blocked (backend-cpu-values.c) */
  return n->op == HFAM_OP_CONV && p->kernel == 3 && p->stride == 1 && p->dilation == 1
         && p->pad == 1 && p->residual < 0 && p->cout <= HFAM_NARROW_CONV_MAX_OUT
         && !be->runs_int8[id] && !be->runs_bf16[id] && be->fp32[id] && !n->planar
         && !g->nodes[n->inputs[0]].planar && (be->block == 8 || be->block == 16);
}

gboolean
hfam_cpu_plan_narrow (CpuBackend *be, int id, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  const HfamConvParams *p = &n->conv;
  dnnl_memory_desc_t weights_md;
  dnnl_dims_t dims = { p->cout, p->cin, 3, 3 };

  DNNL_TRY (dnnl_memory_desc_init_by_tag (&weights_md, 4, dims, dnnl_f32, be->blocked_tag), n);
  if (!hfam_cpu_load_conv_weights (be, &be->steps[id], n, p, &weights_md, error))
    return FALSE;
  be->steps[id].narrow = TRUE;
  return TRUE;
}

gboolean
hfam_cpu_run_narrow (CpuBackend *be, int id, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  const Step *s = &be->steps[id];
  const Value *src = &be->values[n->inputs[0]], *v = &be->values[id];
  HfamBlockedMap in = { .block = be->block, .n_blocks = (n->conv.cin + be->block - 1) / be->block,
                        .width = src->width, .height = src->height };
  void *from, *to;

  DNNL_TRY (dnnl_memory_get_data_handle (src->mem, &from), n);
  DNNL_TRY (dnnl_memory_get_data_handle (v->mem, &to), n);
  in.src = from;
  if (hfam_narrow_conv3x3 (&in, s->weights_data, s->bias_data, n->conv.cout, n->conv.relu, to)
      != 0) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "cpu backend: %s: bad sizes", n->name);
    return FALSE;
  }
  return TRUE;
}
