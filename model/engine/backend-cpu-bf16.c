/* The CPU backend's bf16 parts (HFAM_PRECISION_BF16 and INT8_BF16): which convolutions run in
 * bf16, which values have a bf16 form, and the reorders between it and a value's other form
 * (model/README.md, "How the CPU backend runs it"). */
#include "backend-cpu.h"

/* Whether oneDNN's bf16 convolutions have AVX512-BF16's dot products here (without them it
 * emulates bf16, slower than fp32). */
gboolean
hfam_cpu_has_bf16 (void)
{
  switch (dnnl_get_effective_cpu_isa ()) {
  case dnnl_cpu_isa_avx512_core_bf16:
  case dnnl_cpu_isa_avx512_core_amx:
    return TRUE;
  default:
    return FALSE;
  }
}

/* A bf16 convolution writes bf16 unless an fp32 node reads its value (or it is an output), so
 * that the decoders' last convolutions feed their resizes without a reorder; but one with a
 * residual always does, or an fp32 reader at the end of a chain of residual blocks (f2 read
 * by MFEM's pooling) would make every block of the chain write fp32 and reorder to bf16. */
gboolean
hfam_cpu_writes_bf16 (const CpuBackend *be, int id)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  return be->runs_bf16[id] && (!be->fp32[id] || (n->op == HFAM_OP_CONV && n->conv.residual >= 0));
}

/* After hfam_cpu_mark_int8, which set be->fp32 as if every node it does not take ran in fp32:
 * redone here from the last node back, so that each value's readers are known before its node
 * decides what it writes. A bf16 convolution reads its input in bf16, its residual in the
 * form it writes, and anything else (the SK projection's pooled branches) in fp32. */
void
hfam_cpu_mark_bf16 (CpuBackend *be)
{
  const HfamGraph *g = be->base.graph;

  be->runs_bf16 = g_new0 (gboolean, g->n_nodes);
  be->has_bf16 = g_new0 (gboolean, g->n_nodes);
  if (!be->bf16)
    return;
  for (int i = 0; i < g->n_nodes; i++) {
    const HfamNode *n = &g->nodes[i];
    /* a convolution on the planar input (the first, which int8 takes when it runs) would need
     * a planar bf16 form */
    be->runs_bf16[i] = !be->runs_int8[i]
                       && (n->op == HFAM_OP_CONV || n->op == HFAM_OP_SK_PROJECT)
                       && !g->nodes[n->inputs[0]].planar;
    be->fp32[i] = g->last_use[i] == g->n_nodes;
  }
  for (int i = g->n_nodes - 1; i >= 0; i--) {
    const HfamNode *n = &g->nodes[i];
    const gboolean writes_bf16 = hfam_cpu_writes_bf16 (be, i);

    if (!be->runs_int8[i] && !be->runs_bf16[i])
      be->fp32[i] = TRUE;
    be->has_bf16[i] |= writes_bf16;
    if (be->runs_int8[i])
      continue;
    for (int k = 0; k < n->n_inputs; k++) {
      const int in = n->inputs[k];
      if (be->runs_bf16[i] && k == 0)
        be->has_bf16[in] = TRUE;
      else if (be->runs_bf16[i] && n->op == HFAM_OP_CONV && in == n->conv.residual)
        be->has_bf16[in] = TRUE;  /* a convolution with a residual writes bf16 */
      else
        be->fp32[in] = TRUE;
    }
  }
}

/* From the bf16 form to the fp32 one where the node writes bf16; else to the bf16 form from
 * the int8 one (scaled back) where the node runs in int8, from the fp32 one otherwise. */
gboolean
hfam_cpu_plan_bf16_reorder (CpuBackend *be, int id, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  Step *s = &be->steps[id];
  Value *v = &be->values[id];
  const gboolean from_bf16 = hfam_cpu_writes_bf16 (be, id);
  const gboolean from_int8 = be->runs_int8[id];
  const dnnl_memory_desc_t *other_md = from_int8 ? &v->qmd : &v->md;
  const dnnl_memory_t other = from_int8 ? v->qmem : v->mem;
  dnnl_primitive_attr_t attr = NULL;
  dnnl_primitive_desc_t rpd;
  dnnl_status_t st;

  dnnl_primitive_attr_create (&attr);
  if (from_int8)
    dnnl_primitive_attr_set_output_scales (attr, 1, 0, &v->qscale);
  st = dnnl_reorder_primitive_desc_create (&rpd, from_bf16 ? &v->bf16_md : other_md, be->engine,
                                           from_bf16 ? &v->md : &v->bf16_md, be->engine, attr);
  dnnl_primitive_attr_destroy (attr);
  DNNL_TRY (st, n);
  st = dnnl_primitive_create (&s->bf16_reorder, rpd);
  dnnl_primitive_desc_destroy (rpd);
  DNNL_TRY (st, n);
  s->bf16_reorder_args[0] = (dnnl_exec_arg_t) { DNNL_ARG_FROM, from_bf16 ? v->bf16_mem : other };
  s->bf16_reorder_args[1] = (dnnl_exec_arg_t) { DNNL_ARG_TO, from_bf16 ? v->mem : v->bf16_mem };
  return TRUE;
}
