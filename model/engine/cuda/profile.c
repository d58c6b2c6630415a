/* HFAM_CUDA_PROFILE=1 (graphs off, one stream, so that nothing runs beside a node) times every
 * node with events, device time only: the stream is held by a gate until all of a stage is
 * queued (queue.c), so cuDNN's host overhead does not show; the slowest nodes are printed when
 * the backend is freed. */
#include <string.h>

#include "cuda-backend.h"

static int
compare_node_ms (gconstpointer a, gconstpointer b, gpointer data)
{
  const double *ms = data;
  const double x = ms[*(const int *) a], y = ms[*(const int *) b];
  return (x < y) - (x > y);
}

/* HFAM_CUDA_PROFILE: what kind of work a node is, for the totals by kind. */
static const char *
node_kind (const HfamNode *n)
{
  static const char *const ops[] = {
    [HFAM_OP_INPUT] = "input", [HFAM_OP_CONV] = "conv", [HFAM_OP_MAXPOOL] = "maxpool",
    [HFAM_OP_AVGPOOL] = "avgpool", [HFAM_OP_GLOBAL_POOL] = "global pool",
    [HFAM_OP_RESIZE] = "resize", [HFAM_OP_CONCAT] = "concat copies",
    [HFAM_OP_SK_PROJECT] = "SK fold + 1x1 conv", [HFAM_OP_SEMANTIC_HEAD] = "semantic head",
    [HFAM_OP_ATTENTION] = "attention", [HFAM_OP_POOL_MAP] = "pool map",
    [HFAM_OP_SCALE_BY_MAP] = "scale by map", [HFAM_OP_FUSION] = "fusion",
  };
  if (n->op != HFAM_OP_CONV)
    return ops[n->op];
  if (n->conv.kernel == 3)
    return n->conv.dilation > 1 ? "conv 3x3 dilated" : "conv 3x3";
  return n->conv.kernel == 1 ? "conv 1x1" : "conv 7x7";
}

/* Multiply-accumulates of a convolution node in one run, every frame of the batch (0 for the
 * others). */
static double
node_macs (const CudaBackend *be, int id)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  const HfamConvParams *p = n->op == HFAM_OP_CONV ? &n->conv
                            : n->op == HFAM_OP_SK_PROJECT ? &n->sk.project : NULL;
  const Step *s = &be->steps[id];
  return p ? (double) s->w * s->h * p->cout * p->cin * p->kernel * p->kernel * be->base.batch
           : 0.0;
}

/* A kind of node and its totals over the profile. */
typedef struct
{
  const char *kind;
  double ms, nodes, macs;
} KindTotal;

static int
compare_kind_ms (gconstpointer a, gconstpointer b)
{
  const double x = ((const KindTotal *) a)->ms, y = ((const KindTotal *) b)->ms;
  return (x < y) - (x > y);
}

/* HFAM_CUDA_PROFILE: the nodes that took the most time, with what the convolutions achieved
 * (TFLOP/s, 2 per multiply-accumulate), then the totals by kind of node, the largest first, on
 * stderr. */
void
print_profile (const CudaBackend *be)
{
  const HfamGraph *g = be->base.graph;
  const int shown = MIN (g->n_nodes, 40);
  g_autofree int *order = g_new (int, g->n_nodes);
  g_autoptr (GArray) kinds = g_array_new (FALSE, TRUE, sizeof (KindTotal));
  double total = 0.0;
  int name_width = 0, stage_width = 0;

  for (int i = 0; i < g->n_nodes; i++) {
    const char *kind = node_kind (&g->nodes[i]);
    KindTotal *sum = NULL;
    for (guint k = 0; k < kinds->len && !sum; k++)
      if (g_array_index (kinds, KindTotal, k).kind == kind)
        sum = &g_array_index (kinds, KindTotal, k);
    if (!sum) {
      const KindTotal first = { .kind = kind };
      g_array_append_val (kinds, first);
      sum = &g_array_index (kinds, KindTotal, kinds->len - 1);
    }
    order[i] = i;
    total += be->node_ms[i];
    sum->ms += be->node_ms[i];
    sum->nodes += 1.0;
    sum->macs += node_macs (be, i);
  }
  if (total <= 0.0)
    return;
  g_qsort_with_data (order, g->n_nodes, sizeof *order, compare_node_ms, be->node_ms);
  g_array_sort (kinds, compare_kind_ms);
  for (int k = 0; k < shown; k++) {
    const HfamNode *n = &g->nodes[order[k]];
    name_width = MAX (name_width, (int) strlen (n->name));
    stage_width = MAX (stage_width, (int) strlen (be->stage_name (n->stage)));
  }
  g_printerr ("cuda backend profile: %.3f ms in all %d nodes, over every run (%d runs of %d "
              "frames); the slowest:\n", total, g->n_nodes, be->profiled_frames, be->base.batch);
  for (int k = 0; k < shown; k++) {
    const int i = order[k];
    const Step *s = &be->steps[i];
    const double macs = node_macs (be, i);
    g_printerr ("  %-*s  %-*s %8.3f ms %5.1f %%  %dx%dx%d", name_width, g->nodes[i].name,
                stage_width, be->stage_name (g->nodes[i].stage), be->node_ms[i],
                100.0 * be->node_ms[i] / total, s->w, s->h, s->cs);
    if (s->is_conv && s->choice.splits > 1)
      g_printerr (" %s split-K %d, %.1f TFLOP/s", node_kind (&g->nodes[i]), s->choice.splits,
                  2.0 * macs * be->profiled_frames / (be->node_ms[i] * 1e9));
    else if (s->is_conv)
      g_printerr (" %s%s%s, %.1f TFLOP/s", node_kind (&g->nodes[i]),
                  s->choice.gemm ? " cuBLASLt" : "", s->choice.fused ? " fused" : " + bias_act",
                  2.0 * macs * be->profiled_frames / (be->node_ms[i] * 1e9));
    g_printerr ("\n");
  }
  g_printerr ("by kind:\n");
  for (guint k = 0; k < kinds->len; k++) {
    const KindTotal *sum = &g_array_index (kinds, KindTotal, k);
    g_printerr ("  %-20s %4.0f nodes %8.3f ms %5.1f %%", sum->kind, sum->nodes, sum->ms,
                100.0 * sum->ms / total);
    if (sum->macs > 0.0)
      g_printerr (" %.1f TFLOP/s", 2.0 * sum->macs * be->profiled_frames / (sum->ms * 1e9));
    g_printerr ("\n");
  }
}
