/* Builds the HFAM graph of ../shared/HFAM.md from the hyper-parameters, in execution order,
 * stage by stage. Names follow model/README.md.
 *
 * Lanes (graph.h), chosen so that the critical path (lane 0) does nothing that can wait:
 * - 0: the encoder, MFEM at f4, the context convolution G and P4, the semantic decoder, A,
 *   the detail decoder's blocks 3..0 and the fusion;
 * - 1: MFEM at f2 (runs during layer3 and layer4), then P3..P0 (once G is there);
 * - 2: MFEM at f3 (runs during layer4 and MFEM at f4);
 * - 3: L-BB (from f1, during layers 2 to 4), then the detail decoder's block 4 (it reads f4
 *   only, so it runs beside the semantic decoder);
 * - 4, 5, 6: the dilated branches b1, b2, b3 of each MFEM, beside its b0 and b4: at f3 and f4
 *   a batch-1 convolution fills few of a large GPU's multiprocessors;
 * - 7: the encoder's projection shortcuts (downsample), beside the first block's conv1 and
 *   conv2. */
#include "graph.h"
#include "hparams.h"

#include <string.h>

static const char *const stage_names[HFAM_N_STAGES] = {
  "encoder", "mfem", "semantic decoder", "L-BB", "detail decoder", "fusion",
};

const char *
hfam_stage_name (HfamStage stage)
{
  return stage < HFAM_N_STAGES ? stage_names[stage] : "?";
}

/* The lanes of the list above. */
enum {
  LANE_CRITICAL,
  LANE_MFEM2,     /* then P3..P0 */
  LANE_MFEM3,
  LANE_LOW_LEVEL, /* L-BB, then the detail decoder's block 4 */
  LANE_BRANCH1,   /* each MFEM's b1, b2, b3 */
  LANE_BRANCH2,
  LANE_BRANCH3,
  LANE_SHORTCUT,
};
G_STATIC_ASSERT (LANE_SHORTCUT + 1 == HFAM_N_LANES);

typedef struct {
  GArray *nodes;           /* HfamNode */
  HfamSafetensors *st;
  const HfamHparams *hp;
  HfamStage stage;
  int lane;
  GError *error;           /* the first failure; later calls do nothing */
} Builder;

static HfamNode *
node_at (Builder *b, int id)
{
  return &g_array_index (b->nodes, HfamNode, id);
}

static int
add_node (Builder *b, HfamNode *node, const char *name)
{
  node->stage = b->stage;
  node->lane = b->lane;
  node->name = g_strdup (name);
  g_array_append_val (b->nodes, *node);
  return (int) b->nodes->len - 1;
}

static const HfamStTensor *
take (Builder *b, const char *name, const char *suffix, int n_dims, const int64_t *shape)
{
  g_autofree char *full = g_strconcat (name, suffix, NULL);
  if (b->error)
    return NULL;
  return hfam_st_take (b->st, full, n_dims, shape, &b->error);
}

static gboolean
take_conv (Builder *b, HfamConvParams *p, const char *name)
{
  const int64_t wshape[4] = { p->cout, p->cin, p->kernel, p->kernel };
  const int64_t bshape[1] = { p->cout };
  p->weight = take (b, name, ".weight", 4, wshape);
  p->bias = take (b, name, ".bias", 1, bshape);
  return b->error == NULL;
}

/* A "same" convolution; output at input div times stride. */
static int
conv (Builder *b, const char *name, int input, int cout, int kernel, int stride,
      int dilation, gboolean relu, int residual)
{
  HfamNode n = { .op = HFAM_OP_CONV, .n_inputs = 1, .inputs = { input } };
  if (b->error)
    return -1;
  n.conv = (HfamConvParams) {
    .cin = node_at (b, input)->channels, .cout = cout, .kernel = kernel, .stride = stride,
    .dilation = dilation, .pad = dilation * (kernel - 1) / 2, .relu = relu,
    .residual = residual,
  };
  if (!take_conv (b, &n.conv, name))
    return -1;
  if (residual >= 0) {
    n.inputs[n.n_inputs++] = residual;
  }
  n.channels = cout;
  n.div = node_at (b, input)->div * stride;
  return add_node (b, &n, name);
}

static int
simple (Builder *b, HfamOp op, const char *name, int input, int channels, int div,
        gboolean planar)
{
  HfamNode n = { .op = op, .n_inputs = 1, .inputs = { input }, .channels = channels,
                 .div = div, .planar = planar };
  if (b->error)
    return -1;
  return add_node (b, &n, name);
}

static int
resize (Builder *b, const char *name, int input, int div)
{
  if (b->error)
    return -1;
  return simple (b, HFAM_OP_RESIZE, name, input, node_at (b, input)->channels, div, FALSE);
}

static int
avgpool (Builder *b, HfamOp op, const char *name, int input, int factor)
{
  int id;
  if (b->error)
    return -1;
  id = simple (b, op, name, input, node_at (b, input)->channels,
               node_at (b, input)->div * factor, node_at (b, input)->planar);
  node_at (b, id)->factor = factor;
  return id;
}

static int
concat (Builder *b, const char *name, const int *inputs, int n_inputs)
{
  HfamNode n = { .op = HFAM_OP_CONCAT, .n_inputs = n_inputs };
  if (b->error)
    return -1;
  n.div = node_at (b, inputs[0])->div;
  for (int i = 0; i < n_inputs; i++) {
    g_assert (node_at (b, inputs[i])->div == n.div);
    n.inputs[i] = inputs[i];
    n.channels += node_at (b, inputs[i])->channels;
  }
  return add_node (b, &n, name);
}

/* ---- Encoder: torchvision ResNet ---- */

static int
residual_block (Builder *b, int layer, int index, int input, int planes, int stride,
                gboolean bottleneck)
{
  const int expansion = bottleneck ? 4 : 1;
  const int cin = b->error ? 0 : node_at (b, input)->channels;
  g_autofree char *prefix = g_strdup_printf ("encoder.layer%d.%d", layer, index);
  g_autofree char *n1 = g_strconcat (prefix, ".conv1", NULL);
  g_autofree char *n2 = g_strconcat (prefix, ".conv2", NULL);
  g_autofree char *n3 = g_strconcat (prefix, ".conv3", NULL);
  g_autofree char *nd = g_strconcat (prefix, ".downsample.0", NULL);
  int shortcut = input, x;

  if (stride != 1 || cin != planes * expansion) {
    b->lane = LANE_SHORTCUT;
    shortcut = conv (b, nd, input, planes * expansion, 1, stride, 1, FALSE, -1);
    b->lane = LANE_CRITICAL;
  }
  if (!bottleneck) {
    x = conv (b, n1, input, planes, 3, stride, 1, TRUE, -1);
    return conv (b, n2, x, planes, 3, 1, 1, TRUE, shortcut);
  }
  /* stride_in_1x1: Caffe/Keras ResNet v1 strides in the first 1x1, torchvision in the 3x3 */
  x = conv (b, n1, input, planes, 1, b->hp->stride_in_1x1 ? stride : 1, 1, TRUE, -1);
  x = conv (b, n2, x, planes, 3, b->hp->stride_in_1x1 ? 1 : stride, 1, TRUE, -1);
  return conv (b, n3, x, planes * expansion, 1, 1, 1, TRUE, shortcut);
}

static void
build_encoder (Builder *b, int input, int f[5])
{
  const HfamHparams *hp = b->hp;
  const gboolean bottleneck = hp->encoder_depth >= 50;
  int blocks[4], x;

  hfam_hparams_encoder_blocks (hp, blocks);
  b->stage = HFAM_STAGE_ENCODER;
  f[0] = conv (b, "encoder.conv1", input, hp->encoder_width, 7, 2, 1, TRUE, -1);
  x = b->error ? -1 : simple (b, HFAM_OP_MAXPOOL, "encoder.maxpool", f[0],
                              hp->encoder_width, 4, FALSE);
  for (int layer = 1; layer <= 4; layer++) {
    const int planes = hp->encoder_width << (layer - 1);
    for (int i = 0; i < blocks[layer - 1]; i++)
      x = residual_block (b, layer, i, x, planes, (layer > 1 && i == 0) ? 2 : 1, bottleneck);
    f[layer] = x;
  }
}

/* ---- MFEM: ASPP branches + SK attention + 1x1 projection ---- */

static int
build_mfem (Builder *b, int level, int f)
{
  const HfamHparams *hp = b->hp;
  const int cm = hp->mfem_channels;
  const int *rates = hp->mfem_rates[level - 2];
  int branches[4], gap, pooled, gap_branches;
  const int lane = level == 2 ? LANE_MFEM2 : level == 3 ? LANE_MFEM3 : LANE_CRITICAL;
  HfamNode n = { .op = HFAM_OP_SK_PROJECT, .n_inputs = 3, .channels = cm };
  g_autofree char *name = NULL;

  b->stage = HFAM_STAGE_MFEM;
  for (int k = 0; k < 4; k++) {
    g_autofree char *bn = g_strdup_printf ("mfem%d.b%d.conv", level, k);
    b->lane = k > 0 ? LANE_BRANCH1 + k - 1 : lane;
    branches[k] = k == 0 ? conv (b, bn, f, cm, 1, 1, 1, TRUE, -1)
                         : conv (b, bn, f, cm, 3, 1, rates[k - 1], TRUE, -1);
  }
  b->lane = lane;
  name = g_strdup_printf ("mfem%d.branches", level);
  n.inputs[0] = concat (b, name, branches, 4);
  g_free (name);
  name = g_strdup_printf ("mfem%d.gap_in", level);
  gap = b->error ? -1 : simple (b, HFAM_OP_GLOBAL_POOL, name, f, node_at (b, f)->channels, 0,
                                FALSE);
  g_free (name);
  name = g_strdup_printf ("mfem%d.b4.conv", level);
  pooled = conv (b, name, gap, cm, 1, 1, 1, TRUE, -1);
  g_free (name);
  name = g_strdup_printf ("mfem%d.gap_branches", level);
  gap_branches = b->error ? -1 : simple (b, HFAM_OP_GLOBAL_POOL, name, n.inputs[0], 4 * cm, 0,
                                         FALSE);
  if (b->error)
    return -1;

  n.inputs[1] = gap_branches;
  n.inputs[2] = pooled;
  n.div = node_at (b, f)->div;
  n.sk.gap_branches = gap_branches;
  n.sk.pooled_branch = pooled;
  n.sk.squeeze = (HfamConvParams) { .cin = cm, .cout = hp->sk_width, .kernel = 1,
                                    .stride = 1, .dilation = 1, .relu = TRUE, .residual = -1 };
  n.sk.select = (HfamConvParams) { .cin = hp->sk_width, .cout = 5 * cm, .kernel = 1,
                                   .stride = 1, .dilation = 1, .residual = -1 };
  n.sk.project = (HfamConvParams) { .cin = 5 * cm, .cout = cm, .kernel = 1, .stride = 1,
                                    .dilation = 1, .relu = TRUE, .residual = -1 };
  g_free (name);
  name = g_strdup_printf ("mfem%d.squeeze.conv", level);
  take_conv (b, &n.sk.squeeze, name);
  g_free (name);
  name = g_strdup_printf ("mfem%d.select", level);
  take_conv (b, &n.sk.select, name);
  g_free (name);
  name = g_strdup_printf ("mfem%d.project.conv", level);
  if (!take_conv (b, &n.sk.project, name))
    return -1;
  g_free (name);
  name = g_strdup_printf ("mfem%d", level);
  return add_node (b, &n, name);
}

/* G at H/8 and the five context maps P4..P0, each at its decoder block's input size. */
static void
build_context (Builder *b, const int f[5], int p[5])
{
  const HfamHparams *hp = b->hp;
  int m[3], g;

  for (int level = 2; level <= 4; level++)
    m[level - 2] = build_mfem (b, level, f[level]);
  b->lane = LANE_MFEM3;
  m[1] = resize (b, "context.up3", m[1], 8);
  b->lane = LANE_CRITICAL;
  m[2] = resize (b, "context.up4", m[2], 8);
  g = conv (b, "context.conv", concat (b, "context.concat", m, 3), hp->mfem_channels, 1, 1, 1,
            TRUE, -1);
  for (int i = 4; i >= 0; i--) {
    g_autofree char *name = g_strdup_printf ("psp%d.conv", i);
    g_autofree char *rname = g_strdup_printf ("psp%d.resize", i);
    /* block i's input lives at H / 2^(i+1) */
    const int div = 2 << i;
    int x;
    b->lane = i == 4 ? LANE_CRITICAL : LANE_MFEM2;
    x = conv (b, name, g, hp->context_widths[4 - i], 3, 1, 1, TRUE, -1);
    if (div > 8)
      p[i] = avgpool (b, HFAM_OP_AVGPOOL, rname, x, div / 8);
    else if (div < 8)
      p[i] = resize (b, rname, x, div);
    else
      p[i] = x;
  }
  b->lane = LANE_CRITICAL;
}

/* Three convolutions; the very last layer of a decoder (block 0, conv 2) is plain. */
static int
decoder_block (Builder *b, const char *decoder, int block, int x, const int widths[3])
{
  for (int j = 0; j < 3; j++) {
    g_autofree char *name = g_strdup_printf ("%s%d.%d.conv", decoder, block, j);
    x = conv (b, name, x, widths[j], 3, 1, 1, !(block == 0 && j == 2), -1);
  }
  if (block > 0) {
    g_autofree char *name = g_strdup_printf ("%s%d.up", decoder, block);
    x = resize (b, name, x, 1 << block);
  }
  return x;
}

static int
build_semantic (Builder *b, int f4, const int p[5])
{
  int x = f4;
  b->stage = HFAM_STAGE_SEMANTIC;
  for (int i = 4; i >= 0; i--) {
    g_autofree char *name = g_strdup_printf ("semantic%d.concat", i);
    const int in[2] = { x, p[i] };
    x = decoder_block (b, "semantic", i, concat (b, name, in, 2),
                       b->hp->semantic_widths[4 - i]);
  }
  return b->error ? -1 : simple (b, HFAM_OP_SEMANTIC_HEAD, "semantic", x, 3, 1, TRUE);
}

static int
build_lbb (Builder *b, int f0, int f1)
{
  const HfamHparams *hp = b->hp;
  int in[2], x;

  b->stage = HFAM_STAGE_LBB;
  b->lane = LANE_LOW_LEVEL;
  in[0] = f0;
  in[1] = resize (b, "lbb.up", f1, 2);
  x = concat (b, "lbb.concat", in, 2);
  for (int j = 0; j < 3; j++) {
    g_autofree char *name = g_strdup_printf ("lbb.%d.conv", j);
    x = conv (b, name, x, hp->lbb_width, 3, 1, hp->lbb_dilation, TRUE, -1);
  }
  b->lane = LANE_CRITICAL;
  return x;
}

static int
build_detail (Builder *b, int semantic, const int f[5], int lbb)
{
  const int skips[4] = { lbb, f[1], f[2], f[3] };  /* entering blocks 0..3 */
  const int64_t ashape[4] = { 1, 3, 1, 1 }, bshape[1] = { 1 };
  HfamNode attention = { .op = HFAM_OP_ATTENTION, .n_inputs = 1, .inputs = { semantic },
                         .channels = 1, .div = 1, .planar = TRUE };
  int a, x = f[4];

  b->stage = HFAM_STAGE_DETAIL;
  attention.attention_weight = take (b, "attention", ".weight", 4, ashape);
  attention.attention_bias = take (b, "attention", ".bias", 1, bshape);
  if (b->error)
    return -1;
  a = add_node (b, &attention, "attention");
  for (int i = 4; i >= 0; i--) {
    b->lane = i == 4 ? LANE_LOW_LEVEL : LANE_CRITICAL;
    if (i < 4) {
      g_autofree char *pname = g_strdup_printf ("detail%d.attention", i);
      g_autofree char *sname = g_strdup_printf ("detail%d.skip", i);
      g_autofree char *cname = g_strdup_printf ("detail%d.concat", i);
      const int amap = avgpool (b, HFAM_OP_POOL_MAP, pname, a, 2 << i);
      int in[2] = { x, -1 };
      HfamNode scale = { .op = HFAM_OP_SCALE_BY_MAP, .n_inputs = 2 };
      if (b->error)
        return -1;
      scale.inputs[0] = skips[i];
      scale.inputs[1] = amap;
      scale.channels = node_at (b, skips[i])->channels;
      scale.div = node_at (b, skips[i])->div;
      g_assert (scale.div == node_at (b, amap)->div);
      in[1] = add_node (b, &scale, sname);
      x = concat (b, cname, in, 2);
    }
    x = decoder_block (b, "detail", i, x, b->hp->detail_widths[4 - i]);
  }
  b->lane = LANE_CRITICAL;
  return x;
}

/* graph->lane_waits and lane_signals. seen[l][m]: the latest node of lane m that lane l is
 * known to be past (-1: none), from its own waits and, through each wait, from the waits of the
 * lane it waited for (done[j]: lane j's `seen` row once node j ran). */
static void
order_lanes (HfamGraph *graph)
{
  const int n = graph->n_nodes;
  int seen[HFAM_N_LANES][HFAM_N_LANES];
  g_autofree int *done = g_new (int, (size_t) n * HFAM_N_LANES);

  graph->lane_waits = g_new (int, (size_t) n * HFAM_N_LANES);
  graph->lane_signals = g_new0 (gboolean, n);
  for (int l = 0; l < HFAM_N_LANES; l++)
    for (int m = 0; m < HFAM_N_LANES; m++)
      seen[l][m] = -1;
  for (int i = 0; i < n; i++) {
    const HfamNode *node = &graph->nodes[i];
    int *waits = graph->lane_waits + (size_t) i * HFAM_N_LANES;
    int *row = seen[node->lane];

    for (int m = 0; m < HFAM_N_LANES; m++)
      waits[m] = -1;
    for (int k = 0; k < node->n_inputs; k++) {
      const int j = node->inputs[k], m = graph->nodes[j].lane;
      if (m != node->lane && j > row[m])
        waits[m] = MAX (waits[m], j);
    }
    for (int m = 0; m < HFAM_N_LANES; m++) {
      const int j = waits[m];
      if (j < 0)
        continue;
      graph->lane_signals[j] = TRUE;
      for (int q = 0; q < HFAM_N_LANES; q++)
        row[q] = MAX (row[q], done[(size_t) j * HFAM_N_LANES + q]);
    }
    row[node->lane] = i;
    memcpy (done + (size_t) i * HFAM_N_LANES, row, sizeof (int) * HFAM_N_LANES);
  }
}

/* The groups of a file's activation ranges (model/README.md), each all there or none: the
 * input and the encoder's convolutions (needed by the other two), L-BB's convolutions, and the
 * decoders' group (MFEM's branches b0..b3 and its projection's output, the context and PSP
 * convolutions, both decoders but their last layers). */
typedef enum {
  RANGES_NONE = -1,
  RANGES_ENCODER,
  RANGES_LBB,
  RANGES_DECODERS,
  N_RANGE_GROUPS
} RangeGroup;

/* The group whose ranges have one for the node, or RANGES_NONE. */
static RangeGroup
range_group (const HfamNode *n)
{
  if (n->op == HFAM_OP_INPUT)
    return RANGES_ENCODER;
  if (n->op == HFAM_OP_SK_PROJECT)
    return RANGES_DECODERS;
  if (n->op != HFAM_OP_CONV)
    return RANGES_NONE;
  switch (n->stage) {
  case HFAM_STAGE_ENCODER:
    return RANGES_ENCODER;
  case HFAM_STAGE_LBB:
    return RANGES_LBB;
  case HFAM_STAGE_MFEM:
  case HFAM_STAGE_SEMANTIC:
  case HFAM_STAGE_DETAIL:
    /* not MFEM's b4 on the pooled map (no time to gain), nor the decoders' last layers, whose
     * logits int8's levels would make too coarse for the softmax and the sigmoid */
    return n->div != 0 && n->conv.relu ? RANGES_DECODERS : RANGES_NONE;
  default:
    return RANGES_NONE;
  }
}

/* The name of the node's range tensor without ".act_max": the SK projection's is its
 * convolution's. */
static char *
range_name (const HfamNode *n)
{
  return n->op == HFAM_OP_SK_PROJECT ? g_strconcat (n->name, ".project.conv", NULL)
                                     : g_strdup (n->name);
}

/* The activation ranges int8 needs, each one finite value above 0: the input's and every
 * encoder convolution's, or none; L-BB's and the decoders' group each all or none (without
 * them, those run in fp32 or bf16), and neither without the encoder's. */
static void
take_act_ranges (Builder *b, gboolean *complete)
{
  static const int64_t shape[1] = { 1 };
  static const char *const need[N_RANGE_GROUPS] = {
    "a file with activation ranges needs one for the input and every convolution of the "
    "encoder",
    "L-BB's activation ranges are all there or none (L-BB then runs in fp32 or bf16)",
    "the activation ranges of MFEM, the context and PSP convolutions and the decoders are all "
    "there or none (they then run in fp32 or bf16)",
  };
  char *missing[N_RANGE_GROUPS] = { NULL };
  int found[N_RANGE_GROUPS] = { 0 };

  *complete = FALSE;
  for (guint i = 0; i < b->nodes->len && !b->error; i++) {
    HfamNode *n = node_at (b, i);
    const RangeGroup group = range_group (n);
    g_autofree char *range = NULL, *name = NULL;
    const HfamStTensor *t;

    if (group == RANGES_NONE)
      continue;
    range = range_name (n);
    name = g_strconcat (range, ".act_max", NULL);
    if (!hfam_st_find (b->st, name)) {
      if (!missing[group])
        missing[group] = g_steal_pointer (&name);
      continue;
    }
    if (!(t = hfam_st_take (b->st, name, 1, shape, &b->error)))
      break;
    hfam_st_to_f32 (t, &n->act_max);
    if (!(n->act_max > 0)) {
      g_set_error (&b->error, HFAM_ERROR, HFAM_ERROR_FORMAT,
                   "%s: tensor %s: activation range %g, want a value above 0",
                   hfam_st_path (b->st), name, n->act_max);
      break;
    }
    found[group]++;
  }
  for (int group = 0; group < N_RANGE_GROUPS && !b->error; group++) {
    const char *why = need[group];
    /* the encoder's are missing when any group has some */
    gboolean refused = group == RANGES_ENCODER
                           ? found[RANGES_ENCODER] + found[RANGES_LBB]
                                     + found[RANGES_DECODERS] > 0
                           : found[group] > 0;
    /* the detail decoder's last block reads L-BB's output in int8, in L-BB's range */
    if (group == RANGES_LBB && !refused && found[RANGES_DECODERS] > 0) {
      refused = TRUE;
      why = "the decoders' activation ranges need L-BB's";
    }
    if (refused && missing[group])
      g_set_error (&b->error, HFAM_ERROR, HFAM_ERROR_FORMAT, "%s: tensor %s missing: %s",
                   hfam_st_path (b->st), missing[group], why);
  }
  *complete = found[RANGES_ENCODER] > 0 && !b->error;
  for (int group = 0; group < N_RANGE_GROUPS; group++)
    g_free (missing[group]);
}

HfamGraph *
hfam_graph_build (const HfamHparams *hp, HfamSafetensors *st, GError **error)
{
  Builder b = { .nodes = g_array_new (FALSE, TRUE, sizeof (HfamNode)), .st = st, .hp = hp };
  HfamNode input = { .op = HFAM_OP_INPUT, .channels = 3, .div = 1, .planar = TRUE };
  HfamGraph *graph;
  int f[5], p[5], semantic, lbb, detail, fusion = -1;

  b.stage = HFAM_STAGE_ENCODER;
  const int in = add_node (&b, &input, "input");
  build_encoder (&b, in, f);
  build_context (&b, f, p);
  semantic = build_semantic (&b, f[4], p);
  lbb = build_lbb (&b, f[0], f[1]);
  detail = build_detail (&b, semantic, f, lbb);
  if (!b.error) {
    HfamNode n = { .op = HFAM_OP_FUSION, .n_inputs = 2, .inputs = { detail, semantic },
                   .channels = 2, .div = 1, .planar = TRUE };
    b.stage = HFAM_STAGE_FUSION;
    fusion = add_node (&b, &n, "fusion");
  }
  gboolean act_ranges = FALSE;
  if (!b.error)
    take_act_ranges (&b, &act_ranges);
  if (!b.error)
    hfam_st_check_all_taken (st, &b.error);

  graph = g_new0 (HfamGraph, 1);
  graph->n_nodes = (int) b.nodes->len;
  graph->nodes = (HfamNode *) g_array_free (b.nodes, FALSE);
  if (b.error) {
    g_propagate_error (error, b.error);
    hfam_graph_free (graph);
    return NULL;
  }
  graph->input = in;
  graph->semantic = semantic;
  graph->fusion = fusion;
  graph->act_ranges = act_ranges;

  graph->last_use = g_new (int, graph->n_nodes);
  for (int i = 0; i < graph->n_nodes; i++)
    graph->last_use[i] = i;
  for (int i = 0; i < graph->n_nodes; i++)
    for (int k = 0; k < graph->nodes[i].n_inputs; k++)
      graph->last_use[graph->nodes[i].inputs[k]] = i;
  graph->last_use[in] = graph->last_use[semantic] = graph->last_use[fusion] = graph->n_nodes;
  order_lanes (graph);
  return graph;
}

void
hfam_graph_free (HfamGraph *graph)
{
  if (!graph)
    return;
  for (int i = 0; i < graph->n_nodes; i++)
    g_free (graph->nodes[i].name);
  g_free (graph->nodes);
  g_free (graph->last_use);
  g_free (graph->lane_waits);
  g_free (graph->lane_signals);
  g_free (graph);
}
