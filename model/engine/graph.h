/* The HFAM graph, described once from the hyper-parameters and executed by any backend.
 *
 * Every value is one node's output. Spatial sizes are symbolic: a value lives at the input's
 * size divided by `div` (1, 2, 4, ..., 32), or is a single pixel (div = 0, after a global
 * pool), so one graph serves every input size. Feature maps are "blocked" (the backend's
 * preferred layout); the per-pixel maps of the heads (P_s, A and its pooled copies, alpha) are
 * "planar" float planes, because their kernels read them pixel by pixel. */
#ifndef HFAM_GRAPH_H
#define HFAM_GRAPH_H

#include "hparams.h"
#include "safetensors.h"

G_BEGIN_DECLS

/* The network's stages, in the order they run (hfam-bench times each). */
typedef enum {
  HFAM_STAGE_ENCODER,
  HFAM_STAGE_MFEM,
  HFAM_STAGE_SEMANTIC,
  HFAM_STAGE_LBB,
  HFAM_STAGE_DETAIL,
  HFAM_STAGE_FUSION,
  HFAM_N_STAGES
} HfamStage;

const char *hfam_stage_name (HfamStage stage);

typedef enum {
  HFAM_OP_INPUT,        /* the normalised frame, 3 channels, planar NCHW */
  HFAM_OP_CONV,         /* k x k convolution, folded BN as bias, optional residual, ReLU */
  HFAM_OP_MAXPOOL,      /* 3x3, stride 2, pad 1 */
  HFAM_OP_AVGPOOL,      /* kernel = stride = factor; div grows by the factor */
  HFAM_OP_GLOBAL_POOL,  /* mean over the plane, to div 0 */
  HFAM_OP_RESIZE,       /* bilinear, align_corners = false, to this node's div */
  HFAM_OP_CONCAT,       /* along channels */
  HFAM_OP_SK_PROJECT,   /* MFEM: SK attention over b0..b4, then the 1x1 projection */
  HFAM_OP_SEMANTIC_HEAD,/* logits at div 2 -> enlarge to div 1 -> softmax: P_s (planar) */
  HFAM_OP_ATTENTION,    /* A = sigmoid(w . P_s + b), planar, 1 channel */
  HFAM_OP_POOL_MAP,     /* a planar map average-pooled to this node's div */
  HFAM_OP_SCALE_BY_MAP, /* feature map (blocked) times a planar map of the same size */
  HFAM_OP_FUSION,       /* detail logit at div 2 -> enlarge -> sigmoid = alpha_d; with P_s
                           -> alpha_p. Planar, 2 channels: alpha_d, alpha_p */
} HfamOp;

typedef struct {
  const HfamStTensor *weight;  /* (cout, cin, k, k) */
  const HfamStTensor *bias;    /* (cout) */
  int cin, cout, kernel, stride, dilation, pad;
  gboolean relu;
  int residual;                /* value added before the ReLU, or -1 */
} HfamConvParams;


typedef struct {
  int gap_branches;            /* GLOBAL_POOL node over concat(b0..b3) */
  int pooled_branch;           /* b4 (div 0) */
  HfamConvParams squeeze;      /* Cm -> d, ReLU */
  HfamConvParams select;       /* d -> 5 Cm, plain */
  HfamConvParams project;      /* 5 Cm -> Cm, ReLU */
} HfamSkParams;

/* Lanes: chains of nodes that a backend with concurrent queues (CUDA streams) may run side by
 * side, each lane in graph order, so that branches that need only early encoder features run
 * while the encoder goes on. Lane 0 holds the critical path (graph.c says which node is where). */
#define HFAM_N_LANES 8

typedef struct {
  HfamOp op;
  HfamStage stage;
  int lane;                    /* 0 .. HFAM_N_LANES - 1 */
  char *name;
  int inputs[4];
  int n_inputs;
  int channels;
  int div;
  gboolean planar;
  HfamConvParams conv;         /* CONV */
  HfamSkParams sk;             /* SK_PROJECT; inputs[0] = concat(b0..b3) */
  int factor;                  /* AVGPOOL, POOL_MAP */
  const HfamStTensor *attention_weight, *attention_bias;  /* ATTENTION */
  /* The input, the SK projections and the convolutions of the groups of activation ranges
   * (graph.c, model/README.md "Activation ranges"): the magnitude this value's int8 form
   * reaches, from the file's NAME.act_max (calibrated); 0 without one (L-BB and the decoders'
   * group then run in fp32 or bf16). The CPU backend runs each such convolution in int8. */
  float act_max;
} HfamNode;

typedef struct {
  HfamNode *nodes;
  int n_nodes;
  int input;      /* node ids of the outputs */
  int semantic;   /* P_s */
  int fusion;     /* alpha_d, alpha_p */
  gboolean act_ranges;  /* the input and every encoder CONV have an act_max: int8 can run */
  int *last_use;  /* per node: the last node that reads it (n_nodes for outputs) */
  /* Cross-lane order, for a backend that runs every lane in order on a queue of its own:
   * before node i, its lane waits for node lane_waits[i * HFAM_N_LANES + m] of lane m (-1: no
   * new wait on lane m), the latest of lane m that i reads and that its lane has not waited
   * for already (directly or through an earlier wait); lane_signals[j]: some node waits for
   * node j, so the backend records j's completion. */
  int *lane_waits;
  gboolean *lane_signals;
} HfamGraph;

/* Builds the graph, taking every tensor it needs from `st` (checked by name and shape). */
HfamGraph *hfam_graph_build (const HfamHparams *hp, HfamSafetensors *st, GError **error);
void hfam_graph_free (HfamGraph *graph);

/* Whether node `n` reads value `id`. */
static inline gboolean
hfam_node_reads (const HfamNode *n, int id)
{
  for (int k = 0; k < n->n_inputs; k++)
    if (n->inputs[k] == id)
      return TRUE;
  return FALSE;
}

G_END_DECLS

#endif
