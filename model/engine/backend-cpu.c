/* The CPU backend: convolutions, pooling, resampling and concatenation by oneDNN on
 * channel-blocked tensors (nChw16c with AVX-512, nChw8c otherwise) kept between layers, BN
 * folded into the bias, ReLU and the residual sum fused into the convolution; the heads by
 * the CPU kernels of kernels/. Activations share buffers by liveness, and all primitives share
 * one scratchpad, so memory stays a few times the largest feature map. */
#include "backend-cpu.h"
#include "heads.h"

#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Buffers of 1 MiB and more are mapped and unmapped on their own: a plan freed and made again
 * (a new inference size, each start of the element) then gives its memory back to the system,
 * where malloc keeps it in the arena of the thread that freed it (hfam-soak saw RSS grow by
 * tens of MB over 200 restarts). A header before the buffer holds its size, which says how. */
#define MAPPED_MIN ((size_t) 1 << 20)
#define HEADER_BYTES 64 /* keeps the buffer 64-byte aligned */

void *
hfam_cpu_alloc0 (size_t size, GError **error)
{
  uint8_t *base = NULL;

  if (size <= SIZE_MAX - HEADER_BYTES) {
    if (size >= MAPPED_MIN) {
      /* anonymous pages come zeroed */
      base = mmap (NULL, size + HEADER_BYTES, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (base == MAP_FAILED)
        base = NULL;
    } else {
      void *p = NULL;
      if (posix_memalign (&p, 64, size + HEADER_BYTES) == 0)
        base = memset (p, 0, size + HEADER_BYTES);
    }
  }
  if (!base) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "cpu backend: out of memory (%zu bytes)",
                 size);
    return NULL;
  }
  memcpy (base, &size, sizeof size);
  return base + HEADER_BYTES;
}

void
hfam_cpu_free (void *p)
{
  uint8_t *base;
  size_t size;

  if (!p)
    return;
  base = (uint8_t *) p - HEADER_BYTES;
  memcpy (&size, base, sizeof size);
  if (size >= MAPPED_MIN)
    munmap (base, size + HEADER_BYTES);
  else
    free (base);
}

void *
hfam_cpu_counted_alloc (CpuBackend *be, size_t size, guint64 *held, GError **error)
{
  void *p;

  if (!hfam_host_budget_take (be->budget, size, "inference size", be->width, be->height,
                              error))
    return NULL;
  if (!(p = hfam_cpu_alloc0 (size, error)))
    hfam_host_budget_give (be->budget, size);
  else
    *held += size;
  return p;
}

void
hfam_cpu_release_counted (CpuBackend *be, guint64 *held)
{
  hfam_host_budget_give (be->budget, *held);
  *held = 0;
}

/* ---- planning ---- */

gboolean
hfam_cpu_finish_primitive (CpuBackend *be, Step *s, const HfamNode *n,
                           dnnl_primitive_desc_t pd, GError **error)
{
  const dnnl_memory_desc_t *sp = dnnl_primitive_desc_query_md (pd, dnnl_query_scratchpad_md, 0);
  const size_t sp_size = sp ? dnnl_memory_desc_get_size (sp) : 0;
  const dnnl_status_t st = dnnl_primitive_create (&s->prim, pd);
  dnnl_primitive_desc_destroy (pd);
  if (st != dnnl_success) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "cpu backend: %s: %s", n->name,
                 dnnl_status2str (st));
    return FALSE;
  }
  be->scratchpad_size = MAX (be->scratchpad_size, sp_size);
  return TRUE;
}

dnnl_primitive_attr_t
hfam_cpu_new_attr (void)
{
  dnnl_primitive_attr_t attr = NULL;
  dnnl_primitive_attr_create (&attr);
  dnnl_primitive_attr_set_scratchpad_mode (attr, dnnl_scratchpad_mode_user);
  return attr;
}

gboolean
hfam_cpu_conv_pd (CpuBackend *be, const HfamNode *n, const HfamCpuConvSpec *spec,
                  const dnnl_memory_desc_t *src_md, const dnnl_memory_desc_t *dst_md,
                  dnnl_primitive_desc_t *pd, GError **error)
{
  dnnl_memory_desc_t w_any, b_md;
  dnnl_dims_t wdims = { spec->cout, spec->cin, spec->kernel, spec->kernel };
  dnnl_dims_t bdims = { spec->cout }, strides = { spec->stride, spec->stride };
  dnnl_dims_t dil = { spec->dilation - 1, spec->dilation - 1 };
  dnnl_dims_t pad_l = { spec->pad_l[0], spec->pad_l[1] }, pad_r = { spec->pad_r[0],
                                                                     spec->pad_r[1] };
  dnnl_convolution_desc_t cd;
  dnnl_primitive_attr_t attr = hfam_cpu_new_attr ();
  dnnl_post_ops_t po = NULL;
  dnnl_status_t st;
  const dnnl_data_type_t weight_type = spec->scales ? dnnl_s8 : src_md->data_type;

  DNNL_TRY (dnnl_memory_desc_init_by_tag (&w_any, 4, wdims, weight_type, dnnl_format_tag_any), n);
  DNNL_TRY (dnnl_memory_desc_init_by_tag (&b_md, 1, bdims, dnnl_f32, dnnl_a), n);
  DNNL_TRY (dnnl_dilated_convolution_forward_desc_init (&cd, dnnl_forward_inference,
                                                        spec->alg, src_md, &w_any,
                                                        spec->bias ? &b_md : NULL, dst_md,
                                                        strides, dil, pad_l, pad_r), n);
  dnnl_post_ops_create (&po);
  if (spec->sum)
    dnnl_post_ops_append_sum (po, 1.0f);
  if (spec->relu)
    dnnl_post_ops_append_eltwise (po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f);
  dnnl_primitive_attr_set_post_ops (attr, po);
  dnnl_post_ops_destroy (po);
  if (spec->scales)
    dnnl_primitive_attr_set_output_scales (attr, spec->cout, 1 << 1, spec->scales);
  st = dnnl_primitive_desc_create (pd, &cd, attr, be->engine, NULL);
  dnnl_primitive_attr_destroy (attr);
  if (st != dnnl_success) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "cpu backend: %s: no convolution: %s",
                 n->name, dnnl_status2str (st));
    return FALSE;
  }
  return TRUE;
}

/* The graph's convolution `p`, padded by `pad` on every side, with its bias, the residual sum
 * and ReLU. */
static gboolean
conv_primitive_desc (CpuBackend *be, const HfamNode *n, const HfamConvParams *p,
                     const dnnl_memory_desc_t *src_md, const dnnl_memory_desc_t *dst_md, int pad,
                     dnnl_alg_kind_t alg, dnnl_primitive_desc_t *pd, GError **error)
{
  const HfamCpuConvSpec spec = { .cin = p->cin, .cout = p->cout, .kernel = p->kernel,
                                 .stride = p->stride, .dilation = p->dilation,
                                 .pad_l = { pad, pad }, .pad_r = { pad, pad }, .bias = TRUE,
                                 .sum = p->residual >= 0, .relu = p->relu, .alg = alg };
  return hfam_cpu_conv_pd (be, n, &spec, src_md, dst_md, pd, error);
}

static gboolean
is_reference_impl (const_dnnl_primitive_desc_t pd)
{
  const char *impl = NULL;
  return dnnl_primitive_desc_query (pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success
         && impl && g_str_has_prefix (impl, "ref");
}

/* oneDNN's JIT kernels refuse padding wider than their unrolled block, as MFEM's dilated
 * convolutions need, and the reference kernel that takes over is a hundred times slower.
 * Those convolutions read a zero-bordered copy of their input instead and pad nothing. */
static gboolean
plan_explicit_padding (CpuBackend *be, const HfamNode *n, Step *s, const HfamConvParams *p,
                       const Value *src, dnnl_memory_desc_t *padded_md, GError **error)
{
  const dnnl_dim_t pad = p->pad;
  dnnl_dims_t dims = { 1, p->cin, src->height + 2 * pad, src->width + 2 * pad };
  dnnl_dims_t inner = { 1, p->cin, src->height, src->width }, offsets = { 0, 0, pad, pad };
  dnnl_memory_desc_t sub_md;
  dnnl_primitive_desc_t rpd;
  dnnl_status_t st;

  DNNL_TRY (dnnl_memory_desc_init_by_tag (padded_md, 4, dims, src->md.data_type,
                                          be->blocked_tag), n);
  DNNL_TRY (dnnl_memory_desc_init_submemory (&sub_md, padded_md, inner, offsets), n);
  if (!(s->padded = hfam_cpu_counted_alloc (be, dnnl_memory_desc_get_size (padded_md),
                                            &be->plan_bytes, error)))
    return FALSE;
  DNNL_TRY (dnnl_memory_create (&s->padded_mem, padded_md, be->engine, s->padded), n);
  DNNL_TRY (dnnl_memory_create (&s->padded_inner, &sub_md, be->engine, s->padded), n);
  DNNL_TRY (dnnl_reorder_primitive_desc_create (&rpd, &src->md, be->engine, &sub_md, be->engine,
                                                NULL), n);
  st = dnnl_primitive_create (&s->pad_copy, rpd);
  dnnl_primitive_desc_destroy (rpd);
  DNNL_TRY (st, n);
  return TRUE;
}

/* In fp32, or in bf16 (be->runs_bf16) from the input's bf16 form to the form the node
 * writes. */
static gboolean
plan_conv (CpuBackend *be, int id, const HfamConvParams *p, const Value *input, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  Step *s = &be->steps[id];
  const Value *v = &be->values[id];
  const gboolean writes_bf16 = hfam_cpu_writes_bf16 (be, id);
  const dnnl_memory_desc_t *dst_md = writes_bf16 ? &v->bf16_md : &v->md;
  dnnl_primitive_desc_t pd = NULL;
  Value bf16_input = *input;
  const Value *src = input;
  dnnl_memory_t src_mem;
  gboolean may_winograd, winograd = FALSE, phased = FALSE;

  if (be->runs_bf16[id]) {
    bf16_input.md = input->bf16_md;
    bf16_input.mem = input->bf16_mem;
    src = &bf16_input;
  }
  src_mem = src->mem;
  /* oneDNN has no bf16 Winograd: those run direct */
  may_winograd = !be->runs_bf16[id] && hfam_cpu_wants_winograd (p, src->width, src->height);
  if (may_winograd && p->dilation == 1)
    winograd = conv_primitive_desc (be, n, p, &src->md, dst_md, p->pad,
                                    dnnl_convolution_winograd, &pd, NULL);
  else if (may_winograd)
    winograd = phased = hfam_cpu_phases_pay (p, src)
                        && hfam_cpu_phase_pd (be, n, p, src, FALSE, &pd);
  if (!winograd
      && !conv_primitive_desc (be, n, p, &src->md, dst_md, p->pad, dnnl_convolution_direct, &pd,
                               error))
    return FALSE;
  if (p->pad > 0 && is_reference_impl (pd)) {
    dnnl_memory_desc_t padded_md;
    dnnl_primitive_desc_destroy (pd);
    /* the direct kernel would read a padded copy: phase images padded with zeros pay more */
    phased = may_winograd && hfam_cpu_phase_fits (p, src, TRUE)
             && hfam_cpu_phase_pd (be, n, p, src, FALSE, &pd);
    if (!phased) {
      if (!plan_explicit_padding (be, n, s, p, src, &padded_md, error)
          || !conv_primitive_desc (be, n, p, &padded_md, dst_md, 0, dnnl_convolution_direct,
                                   &pd, error))
        return FALSE;
      src_mem = s->padded_mem;
    }
  }
  if (n->op == HFAM_OP_CONV
      && !hfam_cpu_load_conv_weights (be, s, n, p,
                                      dnnl_primitive_desc_query_md (pd, dnnl_query_weights_md, 0),
                                      error)) {
    dnnl_primitive_desc_destroy (pd);
    return FALSE;
  }
  if (n->op == HFAM_OP_SK_PROJECT)
    s->weights_md = *dnnl_primitive_desc_query_md (pd, dnnl_query_weights_md, 0);
  if (phased && !hfam_cpu_plan_phases (be, id, pd, 0, error)) {
    dnnl_primitive_desc_destroy (pd);
    return FALSE;
  }
  s->args[0] = (dnnl_exec_arg_t) { DNNL_ARG_SRC, phased ? s->phase_in : src_mem };
  s->args[1] = (dnnl_exec_arg_t) { DNNL_ARG_WEIGHTS, s->weights };
  s->args[2] = (dnnl_exec_arg_t) { DNNL_ARG_BIAS, s->bias };
  s->args[3] = (dnnl_exec_arg_t) { DNNL_ARG_DST, phased ? s->phase_out
                                                 : writes_bf16 ? v->bf16_mem : v->mem };
  s->n_args = 4;
  return hfam_cpu_finish_primitive (be, s, n, pd, error);
}

/* The SK projection: the 1x1 conv over concat(b0..b3) whose weights and bias are refolded
 * for every frame from the plain tensors kept here. */
static gboolean
plan_sk (CpuBackend *be, int id, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  const HfamSkParams *sk = &n->sk;
  const int cm = n->channels;
  Step *s = &be->steps[id];
  const Value *src = &be->values[n->inputs[0]];
  HfamConvParams conv = sk->project;
  dnnl_memory_desc_t bias_md;
  dnnl_dims_t wdims = { cm, 4 * cm, 1, 1 }, bdims = { cm };
  dnnl_primitive_desc_t rpd;

  conv.cin = 4 * cm;
  if (!s->plain) {
    s->squeeze_w = hfam_st_dup_f32 (sk->squeeze.weight);
    s->squeeze_b = hfam_st_dup_f32 (sk->squeeze.bias);
    s->select_w = hfam_st_dup_f32 (sk->select.weight);
    s->select_b = hfam_st_dup_f32 (sk->select.bias);
    s->project_w = hfam_st_dup_f32 (sk->project.weight);
    s->project_b = hfam_st_dup_f32 (sk->project.bias);
    s->plain = s->squeeze_w;
    s->folded_w = g_new0 (float, (size_t) cm * 4 * cm);
    if (!(s->bias_data = hfam_cpu_alloc0 (sizeof (float) * cm, error)))
      return FALSE;
    DNNL_TRY (dnnl_memory_desc_init_by_tag (&bias_md, 1, bdims, dnnl_f32, dnnl_a), n);
    DNNL_TRY (dnnl_memory_create (&s->bias, &bias_md, be->engine, s->bias_data), n);
    DNNL_TRY (dnnl_memory_desc_init_by_tag (&s->folded_md, 4, wdims, dnnl_f32, dnnl_oihw), n);
    DNNL_TRY (dnnl_memory_create (&s->folded_mem, &s->folded_md, be->engine, s->folded_w), n);
  }
  if (s->prim) {
    dnnl_primitive_destroy (s->prim);
    s->prim = NULL;
  }
  /* the primitive's weight layout may change with the size: rebuild the reorder */
  hfam_cpu_drop_weights (be, s);
  if (s->fold_reorder)
    dnnl_primitive_destroy (s->fold_reorder);
  s->fold_reorder = NULL;
  if (!plan_conv (be, id, &conv, src, error))
    return FALSE;
  if (!(s->weights_data = hfam_cpu_counted_alloc (be,
                                                  dnnl_memory_desc_get_size (&s->weights_md),
                                                  &s->weights_size, error)))
    return FALSE;
  DNNL_TRY (dnnl_memory_create (&s->weights, &s->weights_md, be->engine, s->weights_data), n);
  s->args[1].memory = s->weights;
  s->args[2].memory = s->bias;
  DNNL_TRY (dnnl_reorder_primitive_desc_create (&rpd, &s->folded_md, be->engine,
                                                &s->weights_md, be->engine, NULL), n);
  if (dnnl_primitive_create (&s->fold_reorder, rpd) != dnnl_success) {
    dnnl_primitive_desc_destroy (rpd);
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "cpu backend: %s: no weight reorder",
                 n->name);
    return FALSE;
  }
  dnnl_primitive_desc_destroy (rpd);
  return TRUE;
}

static gboolean
plan_to_planar (CpuBackend *be, int id, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  Step *s = &be->steps[id];
  const Value *src = &be->values[n->inputs[0]];
  dnnl_memory_desc_t md;
  dnnl_dims_t dims = { 1, be->base.graph->nodes[n->inputs[0]].channels, src->height, src->width };
  dnnl_primitive_desc_t rpd;
  dnnl_status_t st;

  DNNL_TRY (dnnl_memory_desc_init_by_tag (&md, 4, dims, dnnl_f32, dnnl_nchw), n);
  if (!(s->planar = hfam_cpu_counted_alloc (be, dnnl_memory_desc_get_size (&md),
                                            &be->plan_bytes, error)))
    return FALSE;
  DNNL_TRY (dnnl_memory_create (&s->planar_mem, &md, be->engine, s->planar), n);
  DNNL_TRY (dnnl_reorder_primitive_desc_create (&rpd, &src->md, be->engine, &md, be->engine,
                                                NULL), n);
  st = dnnl_primitive_create (&s->to_planar, rpd);
  dnnl_primitive_desc_destroy (rpd);
  DNNL_TRY (st, n);
  return TRUE;
}

static gboolean
plan_pooling (CpuBackend *be, int id, dnnl_alg_kind_t alg, int kernel_h, int kernel_w,
              int stride, int pad, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  const Value *src = &be->values[n->inputs[0]], *dst = &be->values[id];
  const gboolean int8 = be->runs_int8[id];
  dnnl_dims_t strides = { stride ? stride : kernel_h, stride ? stride : kernel_w };
  dnnl_dims_t kernel = { kernel_h, kernel_w }, pads = { pad, pad };
  dnnl_pooling_desc_t pool;
  dnnl_primitive_desc_t pd;
  dnnl_primitive_attr_t attr = hfam_cpu_new_attr ();
  dnnl_status_t st;

  DNNL_TRY (dnnl_pooling_forward_desc_init (&pool, dnnl_forward_inference, alg,
                                            int8 ? &src->qmd : &src->md,
                                            int8 ? &dst->qmd : &dst->md, strides, kernel, pads,
                                            pads), n);
  st = dnnl_primitive_desc_create (&pd, &pool, attr, be->engine, NULL);
  dnnl_primitive_attr_destroy (attr);
  DNNL_TRY (st, n);
  be->steps[id].args[0] = (dnnl_exec_arg_t) { DNNL_ARG_SRC, int8 ? src->qmem : src->mem };
  be->steps[id].args[1] = (dnnl_exec_arg_t) { DNNL_ARG_DST, int8 ? dst->qmem : dst->mem };
  be->steps[id].n_args = 2;
  return hfam_cpu_finish_primitive (be, &be->steps[id], n, pd, error);
}

static gboolean
has_slices_in_place (const CpuBackend *be, int concat)
{
  const HfamNode *n = &be->base.graph->nodes[concat];

  for (int k = 0; k < n->n_inputs; k++)
    if (be->values[n->inputs[k]].concat == concat)
      return TRUE;
  return FALSE;
}

gboolean
hfam_cpu_add_slice_copy (CpuBackend *be, Step *s, const HfamNode *n,
                         const dnnl_memory_desc_t *slice_md, void *slice_data,
                         const dnnl_memory_desc_t *from_md, dnnl_memory_t from,
                         const_dnnl_primitive_attr_t attr, GError **error)
{
  dnnl_memory_t *slice = &s->slices[s->n_copies];
  dnnl_primitive_desc_t rpd;
  dnnl_status_t st;

  DNNL_TRY (dnnl_memory_create (slice, slice_md, be->engine, slice_data), n);
  st = dnnl_reorder_primitive_desc_create (&rpd, from_md, be->engine, slice_md, be->engine,
                                           attr);
  if (st == dnnl_success) {
    st = dnnl_primitive_create (&s->copies[s->n_copies], rpd);
    dnnl_primitive_desc_destroy (rpd);
  }
  if (st != dnnl_success)
    dnnl_memory_destroy (*slice);
  DNNL_TRY (st, n);
  s->copy_args[s->n_copies][0] = (dnnl_exec_arg_t) { DNNL_ARG_FROM, from };
  s->copy_args[s->n_copies][1] = (dnnl_exec_arg_t) { DNNL_ARG_TO, *slice };
  s->n_copies++;
  return TRUE;
}

/* A concatenation some of whose inputs were written in place: a copy of each other one into
 * its slice. */
static gboolean
plan_concat_copies (CpuBackend *be, int id, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  const Value *v = &be->values[id];

  for (int k = 0; k < n->n_inputs; k++) {
    const int in = n->inputs[k];
    const Value *src = &be->values[in];
    dnnl_memory_desc_t slice_md;
    dnnl_dims_t dims;
    int w, h;

    if (src->concat == id)
      continue;
    hfam_cpu_value_dims (be, &be->base.graph->nodes[in], dims, &w, &h);
    DNNL_TRY (dnnl_memory_desc_init_by_tag (&slice_md, 4, dims, dnnl_f32, be->blocked_tag), n);
    if (!hfam_cpu_add_slice_copy (be, &be->steps[id], n, &slice_md,
                                  (uint8_t *) v->block->data + hfam_cpu_slice_offset (be, id, in),
                                  &src->md, src->mem, NULL, error))
      return FALSE;
  }
  return TRUE;
}

/* A bilinear resize: fp32 (blocked), or int8 (nhwc) from an int8 value, rescaled to its own
 * scale (its concatenation's: int8_range in backend-cpu-values.c) in the same pass. */
static gboolean
plan_resize (CpuBackend *be, int id, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  Step *s = &be->steps[id];
  const Value *v = &be->values[id], *src = &be->values[n->inputs[0]];
  const gboolean int8 = be->runs_int8[id];
  dnnl_resampling_desc_t rd;
  dnnl_primitive_attr_t attr;
  dnnl_primitive_desc_t pd;
  dnnl_status_t st;

  DNNL_TRY (dnnl_resampling_forward_desc_init (&rd, dnnl_forward_inference,
                                               dnnl_resampling_linear, NULL,
                                               int8 ? &src->qmd : &src->md,
                                               int8 ? &v->qmd : &v->md), n);
  attr = hfam_cpu_new_attr ();
  if (int8 && src->qscale != v->qscale) {
    dnnl_post_ops_t po;
    dnnl_post_ops_create (&po);
    dnnl_post_ops_append_eltwise (po, 1.0f, dnnl_eltwise_linear, src->qscale / v->qscale, 0.0f);
    dnnl_primitive_attr_set_post_ops (attr, po);
    dnnl_post_ops_destroy (po);
  }
  st = dnnl_primitive_desc_create (&pd, &rd, attr, be->engine, NULL);
  dnnl_primitive_attr_destroy (attr);
  DNNL_TRY (st, n);
  s->args[0] = (dnnl_exec_arg_t) { DNNL_ARG_SRC, int8 ? src->qmem : src->mem };
  s->args[1] = (dnnl_exec_arg_t) { DNNL_ARG_DST, int8 ? v->qmem : v->mem };
  s->n_args = 2;
  return hfam_cpu_finish_primitive (be, s, n, pd, error);
}

static gboolean
plan_node (CpuBackend *be, int id, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  Step *s = &be->steps[id];
  const Value *v = &be->values[id];
  const Value *src = n->n_inputs ? &be->values[n->inputs[0]] : NULL;
  dnnl_primitive_desc_t pd;
  dnnl_primitive_attr_t attr;
  dnnl_status_t st;

  switch (n->op) {
  case HFAM_OP_CONV:
    if (hfam_cpu_lowres_fits (be, id))
      return hfam_cpu_plan_lowres (be, id, error);
    if (hfam_cpu_narrow_fits (be, id))
      return hfam_cpu_plan_narrow (be, id, error);
    if (be->runs_int8[id])
      return hfam_cpu_plan_conv_int8 (be, id, error);
    return plan_conv (be, id, &n->conv, src, error);
  case HFAM_OP_SK_PROJECT:
    return plan_sk (be, id, error);
  case HFAM_OP_MAXPOOL:
    return plan_pooling (be, id, dnnl_pooling_max, 3, 3, 2, 1, error);
  case HFAM_OP_AVGPOOL:
    return plan_pooling (be, id, dnnl_pooling_avg_exclude_padding, n->factor, n->factor,
                         n->factor, 0, error);
  case HFAM_OP_GLOBAL_POOL:
    return plan_pooling (be, id, dnnl_pooling_avg_exclude_padding, src->height, src->width, 0,
                         0, error);
  case HFAM_OP_RESIZE:
    return plan_resize (be, id, error);
  case HFAM_OP_CONCAT: {
    dnnl_memory_desc_t mds[4];
    if (be->runs_int8[id])
      return hfam_cpu_plan_concat_int8 (be, id, error);
    if (has_slices_in_place (be, id))
      return plan_concat_copies (be, id, error);
    for (int k = 0; k < n->n_inputs; k++) {
      mds[k] = be->values[n->inputs[k]].md;
      s->args[k] = (dnnl_exec_arg_t) { DNNL_ARG_MULTIPLE_SRC + k, be->values[n->inputs[k]].mem };
    }
    s->args[n->n_inputs] = (dnnl_exec_arg_t) { DNNL_ARG_DST, v->mem };
    s->n_args = n->n_inputs + 1;
    attr = hfam_cpu_new_attr ();
    st = dnnl_concat_primitive_desc_create (&pd, &v->md, n->n_inputs, 1, mds, attr, be->engine);
    dnnl_primitive_attr_destroy (attr);
    DNNL_TRY (st, n);
    return hfam_cpu_finish_primitive (be, s, n, pd, error);
  }
  case HFAM_OP_SEMANTIC_HEAD:
  case HFAM_OP_FUSION:
    return plan_to_planar (be, id, error);
  case HFAM_OP_ATTENTION:
    hfam_st_to_f32 (n->attention_weight, s->attention_w);
    hfam_st_to_f32 (n->attention_bias, &s->attention_b);
    return TRUE;
  case HFAM_OP_INPUT:
  case HFAM_OP_POOL_MAP:
  case HFAM_OP_SCALE_BY_MAP:
    return TRUE;
  }
  g_assert_not_reached ();
}

/* Drops everything that depends on the input size; weights stay. */
static void
clear_plan (CpuBackend *be)
{
  const HfamGraph *g = be->base.graph;
  for (int i = 0; i < g->n_nodes; i++) {
    Step *s = &be->steps[i];
    if (s->prim)
      dnnl_primitive_destroy (s->prim);
    if (s->to_planar)
      dnnl_primitive_destroy (s->to_planar);
    if (s->planar_mem)
      dnnl_memory_destroy (s->planar_mem);
    hfam_cpu_free (s->planar);
    if (s->pad_copy)
      dnnl_primitive_destroy (s->pad_copy);
    if (s->padded_mem)
      dnnl_memory_destroy (s->padded_mem);
    if (s->padded_inner)
      dnnl_memory_destroy (s->padded_inner);
    hfam_cpu_free (s->padded);
    s->padded = NULL;
    s->padded_mem = s->padded_inner = NULL;
    s->pad_copy = NULL;
    hfam_cpu_clear_phases (s);
    hfam_cpu_clear_lowres (s);
    s->narrow = s->idle = FALSE;
    s->prim = s->to_planar = NULL;
    s->planar_mem = NULL;
    s->planar = NULL;
    if (s->requant)
      dnnl_primitive_destroy (s->requant);
    s->requant = NULL;
    for (int k = 0; k < s->n_copies; k++) {
      dnnl_primitive_destroy (s->copies[k]);
      dnnl_memory_destroy (s->slices[k]);
    }
    s->n_copies = 0;
    if (s->bf16_reorder)
      dnnl_primitive_destroy (s->bf16_reorder);
    s->bf16_reorder = NULL;
    if (be->values[i].bf16_mem)
      dnnl_memory_destroy (be->values[i].bf16_mem);
    if (be->values[i].mem)
      dnnl_memory_destroy (be->values[i].mem);
    if (be->values[i].qmem)
      dnnl_memory_destroy (be->values[i].qmem);
    memset (&be->values[i], 0, sizeof (Value));
  }
  g_ptr_array_set_size (be->blocks, 0);
  hfam_cpu_release_counted (be, &be->plan_bytes);
  if (be->scratchpad_mem)
    dnnl_memory_destroy (be->scratchpad_mem);
  hfam_cpu_free (be->scratchpad);
  be->scratchpad = NULL;
  be->scratchpad_mem = NULL;
  be->scratchpad_size = 0;
  be->width = be->height = 0;
}

static gboolean
cpu_plan (HfamBackend *base, int width, int height, GError **error)
{
  CpuBackend *be = (CpuBackend *) base;
  const HfamGraph *g = base->graph;
  dnnl_memory_desc_t sp_md;
  dnnl_dims_t sp_dims;

  if (be->width == width && be->height == height)
    return TRUE;
  /* oneDNN's kernels split their work for the threads there are when they are made, and run
   * on that many whatever the thread count when they run */
  omp_set_num_threads (be->n_threads);
  clear_plan (be);
  hfam_cpu_free_frames (be);
  if (width < 32 || height < 32 || width % 32 || height % 32) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT,
                 "cpu backend: input %dx%d: both sides must be positive multiples of 32", width,
                 height);
    return FALSE;
  }
  be->width = width;
  be->height = height;
  if (!hfam_cpu_assign_blocks (be, error)
      || !hfam_host_budget_check (be->budget, hfam_cpu_plan_estimate (be) + be->budget->reserved,
                                  "inference size", width, height, error)
      || !hfam_cpu_allocate_values (be, error))
    goto fail;
  for (int i = 0; i < g->n_nodes; i++)
    if (!plan_node (be, i, error)
        || (be->quantised[i] && be->fp32[i] && !hfam_cpu_plan_requant (be, i, error))
        || ((hfam_cpu_writes_bf16 (be, i) ? be->fp32[i] : be->has_bf16[i])
            && !hfam_cpu_plan_bf16_reorder (be, i, error)))
      goto fail;
  sp_dims[0] = (dnnl_dim_t) MAX (be->scratchpad_size, 1);
  if (!(be->scratchpad = hfam_cpu_counted_alloc (be, sp_dims[0], &be->plan_bytes, error))
      || dnnl_memory_desc_init_by_tag (&sp_md, 1, sp_dims, dnnl_u8, dnnl_a) != dnnl_success
      || dnnl_memory_create (&be->scratchpad_mem, &sp_md, be->engine, be->scratchpad)
             != dnnl_success) {
    if (error && !*error)
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "cpu backend: no scratchpad");
    goto fail;
  }
  if (!hfam_cpu_bind_phases (be, error) || !hfam_cpu_bind_lowres (be, error))
    goto fail;
  return TRUE;

fail:
  clear_plan (be);
  return FALSE;
}

static gboolean
cpu_set_input (HfamBackend *base, const float *input, GError **error)
{
  CpuBackend *be = (CpuBackend *) base;
  const Value *v = &be->values[base->graph->input];
  memcpy (v->block->data, input, sizeof (float) * 3 * (size_t) be->width * be->height);
  return TRUE;
}

static gboolean
execute (CpuBackend *be, const HfamNode *n, dnnl_primitive_t prim, dnnl_exec_arg_t *args,
         int n_args, GError **error)
{
  dnnl_exec_arg_t all[MAX_ARGS + 1];
  memcpy (all, args, sizeof (dnnl_exec_arg_t) * n_args);
  all[n_args] = (dnnl_exec_arg_t) { DNNL_ARG_SCRATCHPAD, be->scratchpad_mem };
  DNNL_TRY (dnnl_primitive_execute (prim, be->stream, n_args + 1, all), n);
  return TRUE;
}

static float *
value_data (const CpuBackend *be, int id)
{
  return (float *) ((uint8_t *) be->values[id].block->data + be->values[id].offset);
}

static gboolean
run_sk (CpuBackend *be, int id, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  Step *s = &be->steps[id];
  dnnl_exec_arg_t args[2] = { { DNNL_ARG_FROM, s->folded_mem }, { DNNL_ARG_TO, s->weights } };

  /* a 1x1 blocked value holds its channels in order */
  if (hfam_sk_fold (value_data (be, n->sk.gap_branches), value_data (be, n->sk.pooled_branch),
                    n->channels, n->sk.squeeze.cout, s->squeeze_w, s->squeeze_b, s->select_w,
                    s->select_b, s->project_w, s->project_b, s->folded_w, s->bias_data) != 0) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "cpu backend: %s: out of memory",
                 n->name);
    return FALSE;
  }
  DNNL_TRY (dnnl_primitive_execute (s->fold_reorder, be->stream, 2, args), n);
  return execute (be, n, s->prim, s->args, s->n_args, error);
}

static gboolean
run_op (CpuBackend *be, int id, GError **error)
{
  const HfamNode *n = &be->base.graph->nodes[id];
  Step *s = &be->steps[id];
  const Value *v = &be->values[id];
  const Value *src = n->n_inputs ? &be->values[n->inputs[0]] : NULL;

  if (s->to_planar) {
    dnnl_exec_arg_t args[2] = { { DNNL_ARG_FROM, src->mem }, { DNNL_ARG_TO, s->planar_mem } };
    DNNL_TRY (dnnl_primitive_execute (s->to_planar, be->stream, 2, args), n);
    DNNL_TRY (dnnl_stream_wait (be->stream), n);
  }
  switch (n->op) {
  case HFAM_OP_INPUT:
    return TRUE;
  case HFAM_OP_CONV:
    /* the residual's buffer is the destination unless the residual is still needed */
    if (n->conv.residual >= 0) {
      const Value *r = &be->values[n->conv.residual];
      const gboolean bf16 = hfam_cpu_writes_bf16 (be, id);
      const Block *from = be->runs_int8[id] ? r->qblock : bf16 ? r->bf16_block : r->block;
      Block *to = be->runs_int8[id] ? v->qblock : bf16 ? v->bf16_block : v->block;
      if (from != to)
        memcpy (to->data, from->data,
                dnnl_memory_desc_get_size (be->runs_int8[id] ? &v->qmd
                                           : bf16             ? &v->bf16_md
                                                              : &v->md));
    }
    if (s->pad_copy) {
      dnnl_exec_arg_t args[2] = { { DNNL_ARG_FROM, be->runs_bf16[id] ? src->bf16_mem : src->mem },
                                  { DNNL_ARG_TO, s->padded_inner } };
      DNNL_TRY (dnnl_primitive_execute (s->pad_copy, be->stream, 2, args), n);
    }
    if (s->lowres)
      return hfam_cpu_run_lowres (be, id, error);
    if (s->narrow)
      return hfam_cpu_run_narrow (be, id, error);
    if (s->phase_dilation)
      return (s->phases_from_input || hfam_cpu_run_phases (be, id, FALSE, error))
             && execute (be, n, s->prim, s->args, s->n_args, error)
             && (s->phases_to_next || hfam_cpu_run_phases (be, id, TRUE, error));
    return execute (be, n, s->prim, s->args, s->n_args, error);
  case HFAM_OP_SK_PROJECT:
    return run_sk (be, id, error);
  case HFAM_OP_SEMANTIC_HEAD:
    if (hfam_semantic_head (s->planar, v->width, v->height, value_data (be, id)) != 0)
      break;
    return TRUE;
  case HFAM_OP_FUSION: {
    float *out = value_data (be, id);
    if (hfam_fusion (s->planar, v->width, v->height, value_data (be, n->inputs[1]), out,
                     out + (size_t) v->width * v->height) != 0)
      break;
    return TRUE;
  }
  case HFAM_OP_ATTENTION:
    hfam_attention_map (value_data (be, n->inputs[0]), v->width * v->height, s->attention_w,
                        s->attention_b, value_data (be, id));
    return TRUE;
  case HFAM_OP_POOL_MAP:
    hfam_pool_plane (value_data (be, n->inputs[0]), src->width, src->height, n->factor,
                     value_data (be, id));
    return TRUE;
  case HFAM_OP_CONCAT:
    if (s->prim)
      return execute (be, n, s->prim, s->args, s->n_args, error);
    for (int k = 0; k < s->n_copies; k++)
      DNNL_TRY (dnnl_primitive_execute (s->copies[k], be->stream, 2, s->copy_args[k]), n);
    return TRUE;
  case HFAM_OP_SCALE_BY_MAP:
    if (be->runs_int8[id]) {
      hfam_scale_nhwc_int8 (src->qblock->data, n->channels, v->width * v->height,
                            src->qmd.data_type == dnnl_u8, value_data (be, n->inputs[1]),
                            src->qscale / v->qscale, v->qblock->data);
      return TRUE;
    }
    hfam_scale_blocked (value_data (be, n->inputs[0]), (n->channels + be->block - 1) / be->block,
                        v->width * v->height, be->block, value_data (be, n->inputs[1]),
                        value_data (be, id));
    return TRUE;
  default:
    return execute (be, n, s->prim, s->args, s->n_args, error);
  }
  g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "cpu backend: %s: kernel failed", n->name);
  return FALSE;
}

static gboolean
run_node (CpuBackend *be, int id, GError **error)
{
  Step *s = &be->steps[id];

  if (s->idle)
    return TRUE;
  if (!run_op (be, id, error))
    return FALSE;
  if (s->requant)
    DNNL_TRY (dnnl_primitive_execute (s->requant, be->stream, 2, s->requant_args),
              &be->base.graph->nodes[id]);
  if (s->bf16_reorder)
    DNNL_TRY (dnnl_primitive_execute (s->bf16_reorder, be->stream, 2, s->bf16_reorder_args),
              &be->base.graph->nodes[id]);
  return TRUE;
}

static gboolean
cpu_run_stage (HfamBackend *base, HfamStage stage, GError **error)
{
  CpuBackend *be = (CpuBackend *) base;
  const HfamGraph *g = base->graph;

  if (!be->width) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_ARGUMENT, "cpu backend: run before plan");
    return FALSE;
  }
  /* OpenMP's thread count belongs to the calling thread, which may differ from run to run */
  omp_set_num_threads (be->n_threads);
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i].stage == stage && !run_node (be, i, error))
      return FALSE;
  return TRUE;
}

static gboolean
cpu_synchronize (HfamBackend *base, GError **error)
{
  CpuBackend *be = (CpuBackend *) base;
  const HfamNode *n = &base->graph->nodes[0];
  DNNL_TRY (dnnl_stream_wait (be->stream), n);
  return TRUE;
}

static gboolean
cpu_get_outputs (HfamBackend *base, HfamOutputs *out, GError **error)
{
  CpuBackend *be = (CpuBackend *) base;
  const size_t plane = (size_t) be->width * be->height;
  const float *fusion = value_data (be, base->graph->fusion);
  if (out->semantic)
    memcpy (out->semantic, value_data (be, base->graph->semantic), sizeof (float) * 3 * plane);
  if (out->detail)
    memcpy (out->detail, fusion, sizeof (float) * plane);
  if (out->fused)
    memcpy (out->fused, fusion + plane, sizeof (float) * plane);
  return TRUE;
}

static void
cpu_free (HfamBackend *base)
{
  CpuBackend *be = (CpuBackend *) base;
  /* libhfam collects every frame before it frees: the runner is idle */
  if (be->runner) {
    g_async_queue_push (be->todo, be);
    g_thread_join (be->runner);
  }
  if (be->todo)
    g_async_queue_unref (be->todo);
  if (be->done)
    g_async_queue_unref (be->done);
  hfam_cpu_free_frames (be);
  if (be->steps) {
    clear_plan (be);
    for (int i = 0; i < base->graph->n_nodes; i++) {
      Step *s = &be->steps[i];
      hfam_cpu_drop_weights (be, s);
      if (s->bias)
        dnnl_memory_destroy (s->bias);
      if (s->folded_mem)
        dnnl_memory_destroy (s->folded_mem);
      if (s->fold_reorder)
        dnnl_primitive_destroy (s->fold_reorder);
      hfam_cpu_free (s->bias_data);
      g_free (s->squeeze_w);
      g_free (s->squeeze_b);
      g_free (s->select_w);
      g_free (s->select_b);
      g_free (s->project_w);
      g_free (s->project_b);
      g_free (s->folded_w);
      g_free (s->weight_scales);
    }
  }
  g_free (be->steps);
  g_free (be->runs_int8);
  g_free (be->quantised);
  g_free (be->fp32);
  g_free (be->runs_bf16);
  g_free (be->has_bf16);
  g_free (be->values);
  if (be->blocks)
    g_ptr_array_unref (be->blocks);
  if (be->stream)
    dnnl_stream_destroy (be->stream);
  if (be->engine)
    dnnl_engine_destroy (be->engine);
  g_free (be);
}

static const HfamBackendOps cpu_ops = {
  .name = "cpu",
  .plan = cpu_plan,
  .set_input = cpu_set_input,
  .run_stage = cpu_run_stage,
  .synchronize = cpu_synchronize,
  .get_outputs = cpu_get_outputs,
  .free = cpu_free,
  .queue_frame = hfam_cpu_queue_frame,
  .collect_frame = hfam_cpu_collect_frame,
};

HfamBackend *
hfam_backend_cpu_new (const HfamGraph *graph, HfamCpuWeightCache *weight_cache,
                      HfamPrecision precision, int n_threads, int pipeline_depth,
                      HfamHostBudget *budget, GError **error)
{
  CpuBackend *be;
  /* the ISA values are masks: AVX2-VNNI's (Intel's cores since 2021 without AVX-512) is above
   * AVX-512's in value, and a blocked layout of 16 sends AVX2's fp32 kernels to reference code */
  const dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa ();
  const gboolean avx512 = (isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core;

  if ((precision == HFAM_PRECISION_INT8 || precision == HFAM_PRECISION_INT8_BF16)
      && !graph->act_ranges) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_UNSUPPORTED,
                 "cpu backend: precision %s: the weight file has no activation ranges "
                 "(NAME.act_max tensors; model/python/quant/calibrate.py adds them)",
                 precision == HFAM_PRECISION_INT8 ? "int8" : "int8-bf16");
    return NULL;
  }
  /* oneDNN would emulate bf16 without the instructions, slower than fp32 */
  if ((precision == HFAM_PRECISION_BF16 || precision == HFAM_PRECISION_INT8_BF16)
      && !hfam_cpu_has_bf16 ()) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_UNSUPPORTED,
                 "cpu backend: precision %s: this CPU has no AVX512-BF16",
                 precision == HFAM_PRECISION_BF16 ? "bf16" : "int8-bf16");
    return NULL;
  }
  be = g_new0 (CpuBackend, 1);
  be->base.ops = &cpu_ops;
  be->base.graph = graph;
  /* DEFAULT: each where it passed the quality rule on DEV (BENCHMARKS.md, "bf16") */
  be->int8 = precision == HFAM_PRECISION_INT8 || precision == HFAM_PRECISION_INT8_BF16
             || (precision == HFAM_PRECISION_DEFAULT && graph->act_ranges && hfam_cpu_has_vnni ());
  be->bf16 = precision == HFAM_PRECISION_BF16 || precision == HFAM_PRECISION_INT8_BF16
             || (precision == HFAM_PRECISION_DEFAULT && hfam_cpu_has_bf16 ());
  be->base.precision = be->int8 && be->bf16 ? HFAM_PRECISION_INT8_BF16
                       : be->int8           ? HFAM_PRECISION_INT8
                       : be->bf16           ? HFAM_PRECISION_BF16
                                            : HFAM_PRECISION_FP32;
  be->budget = budget;
  be->weight_cache = weight_cache;
  be->n_threads = n_threads > 0 ? n_threads : (int) g_get_num_processors ();
  be->base.winograd = avx512;
  be->block = avx512 ? 16 : 8;
  be->blocked_tag = avx512 ? dnnl_nChw16c : dnnl_nChw8c;
  be->blocks = g_ptr_array_new_with_free_func (hfam_cpu_block_free);
  be->values = g_new0 (Value, graph->n_nodes);
  be->steps = g_new0 (Step, graph->n_nodes);
  hfam_cpu_mark_int8 (be);
  hfam_cpu_mark_bf16 (be);
  if (dnnl_engine_create (&be->engine, dnnl_cpu, 0) != dnnl_success
      || dnnl_stream_create (&be->stream, be->engine, dnnl_stream_default_flags)
             != dnnl_success) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "cpu backend: oneDNN engine failed");
    cpu_free (&be->base);
    return NULL;
  }
  be->base.pipeline_depth = CLAMP (pipeline_depth, 1, 2);
  be->todo = g_async_queue_new ();
  be->done = g_async_queue_new ();
  if (be->base.pipeline_depth == 2)
    be->runner = g_thread_new ("hfam-cpu-runner", hfam_cpu_runner_main, be);
  return &be->base;
}
