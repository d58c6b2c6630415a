/* The CPU backend's activations: the arena of blocks that values share by liveness (best fit
 * over blocks freed by earlier nodes), values written in place into their concatenation, and
 * what a plan of them holds. */
#include "backend-cpu.h"

#include <stdint.h>

/* A block's size only: hfam_cpu_allocate_values gives the blocks their memory once all are
 * known. */
static Block *
arena_take (CpuBackend *be, size_t size)
{
  Block *best = NULL;
  for (guint i = 0; i < be->blocks->len; i++) {
    Block *b = g_ptr_array_index (be->blocks, i);
    if (!b->in_use && b->size >= size && (!best || b->size < best->size))
      best = b;
  }
  if (!best) {
    best = g_new0 (Block, 1);
    best->size = size;
    g_ptr_array_add (be->blocks, best);
  }
  best->in_use = TRUE;
  return best;
}

void
hfam_cpu_block_free (gpointer p)
{
  Block *b = p;
  hfam_cpu_free (b->data);
  g_free (b);
}

void
hfam_cpu_value_dims (const CpuBackend *be, const HfamNode *n, dnnl_dims_t dims, int *w, int *h)
{
  *w = n->div ? be->width / n->div : 1;
  *h = n->div ? be->height / n->div : 1;
  dims[0] = 1;
  dims[1] = n->channels;
  dims[2] = *h;
  dims[3] = *w;
}

/* Whether node `id` may write its value straight into its slice of `concat`: one primitive or
 * kernel writes it into a destination of its own (not over a residual; an int8 convolution's
 * reorder to fp32), nothing else reads it, and it is a blocked fp32 value. */
static gboolean
writes_into_slice (const CpuBackend *be, const int *uses, int id, int concat)
{
  const HfamGraph *g = be->base.graph;
  const HfamNode *n = &g->nodes[id];

  if (uses[id] != 1 || g->last_use[id] != concat || n->planar || !be->fp32[id])
    return FALSE;
  switch (n->op) {
  case HFAM_OP_CONV:
    return n->conv.residual < 0;
  case HFAM_OP_SK_PROJECT:
  case HFAM_OP_RESIZE:
  case HFAM_OP_AVGPOOL:
  case HFAM_OP_MAXPOOL:
  case HFAM_OP_SCALE_BY_MAP:
    return TRUE;
  default:
    return FALSE;
  }
}

/* Concatenations copy their inputs (15 % of a frame in the profile). Where every input's
 * channels are whole blocks of the blocked layout, each slice of the destination is one
 * contiguous run of it (N = 1): the inputs that can write there do so in place
 * (Value.concat), and the concatenation copies only the others. */
static void
place_concat_inputs (CpuBackend *be)
{
  const HfamGraph *g = be->base.graph;
  g_autofree int *uses = g_new0 (int, g->n_nodes);

  for (int i = 0; i < g->n_nodes; i++) {
    be->values[i].concat = -1;
    for (int k = 0; k < g->nodes[i].n_inputs; k++)
      uses[g->nodes[i].inputs[k]]++;
  }
  for (int c = 0; c < g->n_nodes; c++) {
    const HfamNode *n = &g->nodes[c];
    gboolean whole_blocks = n->op == HFAM_OP_CONCAT && !n->planar && be->fp32[c];

    for (int k = 0; k < n->n_inputs && whole_blocks; k++)
      whole_blocks = g->nodes[n->inputs[k]].channels % be->block == 0;
    for (int k = 0; k < n->n_inputs && whole_blocks; k++)
      if (writes_into_slice (be, uses, n->inputs[k], c))
        be->values[n->inputs[k]].concat = c;
  }
}

/* Where input `id` of concatenation `concat` starts in its destination, in bytes. */
size_t
hfam_cpu_slice_offset (const CpuBackend *be, int concat, int id)
{
  const HfamGraph *g = be->base.graph;
  const HfamNode *c = &g->nodes[concat];
  const Value *v = &be->values[concat];
  size_t channels_before = 0;

  for (int k = 0; c->inputs[k] != id; k++)
    channels_before += g->nodes[c->inputs[k]].channels;
  return sizeof (float) * channels_before * v->width * v->height;
}

/* A value written in place: its concatenation's block, taken by the first of its slices. */
static gboolean
take_slice (CpuBackend *be, int id, GError **error)
{
  Value *v = &be->values[id], *cv = &be->values[v->concat];
  const HfamNode *c = &be->base.graph->nodes[v->concat];
  dnnl_memory_desc_t md;
  dnnl_dims_t dims;

  if (!cv->block) {
    hfam_cpu_value_dims (be, c, dims, &cv->width, &cv->height);
    DNNL_TRY (dnnl_memory_desc_init_by_tag (&md, 4, dims, dnnl_f32, be->blocked_tag), c);
    cv->block = arena_take (be, dnnl_memory_desc_get_size (&md));
  }
  v->block = cv->block;
  v->offset = hfam_cpu_slice_offset (be, v->concat, id);
  return TRUE;
}

/* The range and int8 type of a value's int8 form: its own, but a resize or scaling that an
 * int8 concatenation reads writes in the concatenation's, so that its values are rounded once,
 * as when the concatenation was quantised whole. */
static float
int8_range (const CpuBackend *be, int id, dnnl_data_type_t *data_type)
{
  const HfamGraph *g = be->base.graph;

  if ((g->nodes[id].op == HFAM_OP_RESIZE || g->nodes[id].op == HFAM_OP_SCALE_BY_MAP)
      && be->runs_int8[id])
    for (int j = id + 1; j <= g->last_use[id]; j++)
      if (g->nodes[j].op == HFAM_OP_CONCAT && be->runs_int8[j]
          && hfam_node_reads (&g->nodes[j], id))
        return hfam_cpu_value_range (g, j, data_type);
  return hfam_cpu_value_range (g, id, data_type);
}

/* Gives every value a block: one of the arena that no live value holds; for a value written
 * in place, its concatenation's (place_concat_inputs); for a residual convolution and the
 * attention product, the block of an input that dies there; and in int8 the same for the
 * int8 form (qblock). */
gboolean
hfam_cpu_assign_blocks (CpuBackend *be, GError **error)
{
  const HfamGraph *g = be->base.graph;

  place_concat_inputs (be);
  for (int i = 0; i < g->n_nodes; i++) {
    const HfamNode *n = &g->nodes[i];
    Value *v = &be->values[i];
    dnnl_dims_t dims;
    int in_place = -1;

    hfam_cpu_value_dims (be, n, dims, &v->width, &v->height);
    if (n->op == HFAM_OP_CONV && n->conv.residual >= 0)
      in_place = n->conv.residual;
    else if (n->op == HFAM_OP_SCALE_BY_MAP)
      in_place = n->inputs[0];
    if (be->fp32[i]) {
      DNNL_TRY (dnnl_memory_desc_init_by_tag (&v->md, 4, dims, dnnl_f32,
                                              n->planar ? dnnl_nchw : be->blocked_tag), n);
      if (v->concat >= 0) {
        if (!take_slice (be, i, error))
          return FALSE;
      } else if (v->block) {
        /* a concatenation whose slices took its block */
      } else if (in_place >= 0 && !be->runs_int8[i] && !hfam_cpu_writes_bf16 (be, i)
                 && g->last_use[in_place] == i
                 && dnnl_memory_desc_equal (&be->values[in_place].md, &v->md)) {
        v->block = be->values[in_place].block;
        v->offset = be->values[in_place].offset;
      } else {
        v->block = arena_take (be, dnnl_memory_desc_get_size (&v->md));
      }
    }
    if (be->quantised[i]) {
      dnnl_data_type_t data_type;
      const float range = int8_range (be, i, &data_type);
      size_t size;

      v->qscale = range / (data_type == dnnl_u8 ? 255 : 127);
      DNNL_TRY (dnnl_memory_desc_init_by_tag (&v->qmd, 4, dims, data_type, dnnl_nhwc), n);
      size = dnnl_memory_desc_get_size (&v->qmd);
      /* a residual's int8 form has the output's size whatever its type */
      if (in_place >= 0 && be->runs_int8[i] && g->last_use[in_place] == i
          && be->values[in_place].qblock && be->values[in_place].qblock->size == size)
        v->qblock = be->values[in_place].qblock;
      else
        v->qblock = arena_take (be, size);
    }
    if (be->has_bf16[i]) {
      DNNL_TRY (dnnl_memory_desc_init_by_tag (&v->bf16_md, 4, dims, dnnl_bf16, be->blocked_tag),
                n);
      if (in_place >= 0 && hfam_cpu_writes_bf16 (be, i) && g->last_use[in_place] == i
          && be->values[in_place].bf16_block
          && dnnl_memory_desc_equal (&be->values[in_place].bf16_md, &v->bf16_md))
        v->bf16_block = be->values[in_place].bf16_block;
      else
        v->bf16_block = arena_take (be, dnnl_memory_desc_get_size (&v->bf16_md));
    }
    for (int k = 0; k < n->n_inputs; k++) {
      Value *in = &be->values[n->inputs[k]];
      if (g->last_use[n->inputs[k]] != i)
        continue;
      if (in->block && in->block != v->block)
        in->block->in_use = FALSE;
      if (in->qblock && in->qblock != v->qblock)
        in->qblock->in_use = FALSE;
      if (in->bf16_block && in->bf16_block != v->bf16_block)
        in->bf16_block->in_use = FALSE;
    }
  }
  return TRUE;
}

/* What a plan of the assigned blocks will hold at least, to refuse one that cannot fit before
 * anything is allocated: the arena (most of it), the planar copies for the heads, the queued
 * frames, and the padded copies of the convolutions that pad as much as their input's side
 * (a dilation that large: those surely take one; only oneDNN knows which others do). The
 * other padded copies, the scratchpad and the weights come on top, counted as they are
 * made. */
guint64
hfam_cpu_plan_estimate (const CpuBackend *be)
{
  const HfamGraph *g = be->base.graph;
  const guint64 plane = sizeof (float) * (guint64) be->width * be->height;
  guint64 bytes = 8 * plane * be->base.pipeline_depth;  /* CpuFrame: 3 + 3 + 2 planes */

  for (guint i = 0; i < be->blocks->len; i++)
    bytes += ((Block *) g_ptr_array_index (be->blocks, i))->size;
  for (int i = 0; i < g->n_nodes; i++) {
    const HfamNode *n = &g->nodes[i];
    const Value *src = n->n_inputs ? &be->values[n->inputs[0]] : NULL;

    const guint64 channels = src ? g->nodes[n->inputs[0]].channels : 0;
    const guint64 pad = n->op == HFAM_OP_CONV ? n->conv.pad : 0;

    if (n->op == HFAM_OP_SEMANTIC_HEAD || n->op == HFAM_OP_FUSION)
      bytes += sizeof (float) * channels * src->width * src->height;
    if (pad > 0 && pad >= (guint64) MIN (src->width, src->height))
      bytes += sizeof (float) * channels * (src->width + 2 * pad) * (src->height + 2 * pad);
  }
  return bytes;
}

/* The blocks' memory, and every value's memory object on its block. */
gboolean
hfam_cpu_allocate_values (CpuBackend *be, GError **error)
{
  const HfamGraph *g = be->base.graph;

  for (guint i = 0; i < be->blocks->len; i++) {
    Block *b = g_ptr_array_index (be->blocks, i);
    if (!(b->data = hfam_cpu_counted_alloc (be, b->size, &be->plan_bytes, error)))
      return FALSE;
  }
  for (int i = 0; i < g->n_nodes; i++) {
    Value *v = &be->values[i];
    if (v->block)
      DNNL_TRY (dnnl_memory_create (&v->mem, &v->md, be->engine,
                                    (uint8_t *) v->block->data + v->offset), &g->nodes[i]);
    if (v->qblock)
      DNNL_TRY (dnnl_memory_create (&v->qmem, &v->qmd, be->engine, v->qblock->data),
                &g->nodes[i]);
    if (v->bf16_block)
      DNNL_TRY (dnnl_memory_create (&v->bf16_mem, &v->bf16_md, be->engine, v->bf16_block->data),
                &g->nodes[i]);
  }
  return TRUE;
}
