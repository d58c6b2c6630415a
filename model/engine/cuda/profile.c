/* HFAM_CUDA_PROFILE=1 (graphs off, one stream, so that nothing runs beside a node) times every
 * node with events, device time only: the stream is held by a gate until all of a stage is
 * queued (queue.c), so cuDNN's host overhead does not show; the slowest nodes are printed when
 * the backend is freed. */
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

/* HFAM_CUDA_PROFILE: the nodes that took the most time, with what the convolutions achieved
 * (TFLOP/s, 2 per multiply-accumulate), then the totals by kind of node, on stderr. */
void
print_profile (const CudaBackend *be)
{
  const HfamGraph *g = be->base.graph;
  g_autofree int *order = g_new (int, g->n_nodes);
  /* kind -> ms, nodes, MACs */
  g_autoptr (GHashTable) kinds = g_hash_table_new_full (g_str_hash, g_str_equal, NULL, g_free);
  g_autoptr (GList) names = NULL;
  double total = 0.0;

  for (int i = 0; i < g->n_nodes; i++) {
    double *sum = g_hash_table_lookup (kinds, node_kind (&g->nodes[i]));
    order[i] = i;
    total += be->node_ms[i];
    if (!sum) {
      sum = g_new0 (double, 3);
      g_hash_table_insert (kinds, (gpointer) node_kind (&g->nodes[i]), sum);
    }
    sum[0] += be->node_ms[i];
    sum[1] += 1.0;
    sum[2] += node_macs (be, i);
  }
  if (total <= 0.0)
    return;
  g_qsort_with_data (order, g->n_nodes, sizeof *order, compare_node_ms, be->node_ms);
  g_printerr ("cuda backend profile: %.3f ms in all nodes, over every run (%d runs of %d "
              "frames); the slowest:\n", total, be->profiled_frames, be->base.batch);
  for (int k = 0; k < MIN (g->n_nodes, 40); k++) {
    const int i = order[k];
    const Step *s = &be->steps[i];
    const double macs = node_macs (be, i);
    g_printerr ("  %-28s %-9s %8.3f ms %5.1f %%  %dx%dx%d", g->nodes[i].name,
                be->stage_name (g->nodes[i].stage), be->node_ms[i],
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
  names = g_hash_table_get_keys (kinds);
  for (GList *l = names; l; l = l->next) {
    const double *sum = g_hash_table_lookup (kinds, l->data);
    g_printerr ("  %-20s %4.0f nodes %8.3f ms %5.1f %%", (const char *) l->data, sum[1], sum[0],
                100.0 * sum[0] / total);
    if (sum[2] > 0.0)
      g_printerr (" %.1f TFLOP/s", 2.0 * sum[2] * be->profiled_frames / (sum[0] * 1e9));
    g_printerr ("\n");
  }
}
