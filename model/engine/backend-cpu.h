/* The CPU backend's private parts, shared by backend-cpu.c (the object, planning, running)
 * and backend-cpu-frames.c (frames queued with queue_frame, the runner thread). */
#ifndef HFAM_BACKEND_CPU_H
#define HFAM_BACKEND_CPU_H

#include "backend.h"

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>

G_BEGIN_DECLS

#define MAX_ARGS 8

typedef struct _HfamCpuLowres HfamCpuLowres;

typedef struct {
  void *data;
  size_t size;
  gboolean in_use;
} Block;

typedef struct {
  dnnl_memory_desc_t md;
  dnnl_memory_t mem;
  Block *block;     /* NULL for an int8 value that nothing reads in fp32 */
  size_t offset;    /* bytes into the block: a value written in place into its concatenation */
  int concat;       /* that concatenation, or -1 */
  int width, height;
  /* int8 (CpuBackend.quantised): the value quantised, nhwc, u8 after a ReLU and s8 otherwise,
   * value = q * qscale */
  dnnl_memory_desc_t qmd;
  dnnl_memory_t qmem;
  Block *qblock;
  float qscale;
  /* bf16 (CpuBackend.bf16): the value in bf16, blocked like the fp32 form, where a bf16
   * convolution writes or reads it */
  dnnl_memory_desc_t bf16_md;
  dnnl_memory_t bf16_mem;
  Block *bf16_block;
} Value;

/* How a phased convolution's phase images lie along one axis of its batch
 * (backend-cpu-phases.c): in `images` images of `side` pixels, one phase each or two */
typedef struct {
  int images, side;
  gboolean paired;
} PhaseAxis;

typedef struct {
  dnnl_primitive_t prim;
  dnnl_exec_arg_t args[MAX_ARGS];
  int n_args;
  /* CONV: weights in the primitive's layout, kept across re-plans when the layout holds */
  dnnl_memory_desc_t weights_md;
  dnnl_memory_t weights, bias;
  void *weights_data, *bias_data;
  guint64 weights_size;     /* of weights_data, counted in the budget */
  gboolean weights_shared;  /* weights_data is the model's (HfamCpuWeightCache) */
  /* SK_PROJECT: the plain weights, and a reorder for the per-frame folded ones */
  float *plain, *squeeze_w, *squeeze_b, *select_w, *select_b, *project_w, *project_b;
  float *folded_w;
  dnnl_memory_desc_t folded_md;
  dnnl_memory_t folded_mem;
  dnnl_primitive_t fold_reorder;
  /* CONV with explicit padding: a zero-bordered copy of the input */
  void *padded;
  dnnl_memory_t padded_mem, padded_inner;
  dnnl_primitive_t pad_copy;
  /* CONV run as a batch of phase images (backend-cpu-phases.c): its dilation (0 for none),
   * the batches in and out, which lie in the scratchpad at these offsets, and whether the
   * batch in is the input node's batch out (no copy in) and the batch out the next node's
   * batch in (no copy out); the batch's images across and down, and the map's column and row
   * at each of their columns, then rows (-1: a zero) */
  int phase_dilation;
  PhaseAxis phase_x, phase_y;
  int *phase_sources;
  dnnl_memory_t phase_in, phase_out;
  size_t phase_offset, phase_out_offset;
  gboolean phases_from_input, phases_to_next;
  /* heads: a planar copy of a blocked input */
  dnnl_primitive_t to_planar;
  dnnl_memory_t planar_mem;
  float *planar;
  float attention_w[3], attention_b;
  /* int8: the per-channel scales of the quantised weights (kept across plans), and the
   * reorder from the form of the value the node writes to the other one (fp32 <-> int8) */
  float *weight_scales;
  dnnl_primitive_t requant;
  dnnl_exec_arg_t requant_args[2];
  /* CONCAT whose inputs were written in place (no primitive): the copies of those that were
   * not, each into its slice of the destination */
  dnnl_primitive_t copies[4];
  dnnl_memory_t slices[4];
  dnnl_exec_arg_t copy_args[4][2];
  int n_copies;
  /* bf16: the reorder between the value's bf16 form and its fp32 or int8 one, from the one
   * the node writes */
  dnnl_primitive_t bf16_reorder;
  dnnl_exec_arg_t bf16_reorder_args[2];
  /* CONV over an enlarged input, run at the input's size before the enlargement
   * (backend-cpu-lowres.c) */
  HfamCpuLowres *lowres;
  /* CONV into a few channels, by the kernel of backend-cpu-narrow.c */
  gboolean narrow;
  /* a node whose value nothing reads: L-BB's up(f1) where backend-cpu-lowres.c enlarges
   * only the strips it needs from f1 */
  gboolean idle;
} Step;

/* A frame queued with queue_frame: its input and, once run, its outputs or its error. */
typedef struct {
  float *input;     /* 3 planes */
  float *semantic;  /* 3 planes */
  float *fusion;    /* alpha_d, alpha_p */
  guint64 bytes;    /* the three, counted in the budget */
  GError *error;
} CpuFrame;

typedef struct {
  HfamBackend base;
  /* queue_frame: at depth 2 a runner thread computes the frames in order while the caller
   * prepares the next one and writes out the previous one; at depth 1 queue_frame runs the
   * frame itself. Either way collect_frame pops them from `done`. */
  GThread *runner;
  GAsyncQueue *todo, *done;
  CpuFrame frames[2];
  int next_frame;
  dnnl_engine_t engine;
  dnnl_stream_t stream;
  dnnl_format_tag_t blocked_tag;
  int block;
  int n_threads;
  /* int8 (HFAM_PRECISION_INT8): per node, whether it runs in int8 (the convolutions with
   * activation ranges, the encoder's max pool), whether its value has an int8 form (it runs in
   * int8 or an int8 node reads it) and whether it has an fp32 one (it does not run in int8 or
   * an fp32 node reads it) */
  gboolean int8;
  gboolean *runs_int8, *quantised, *fp32;
  /* bf16 (HFAM_PRECISION_BF16, INT8_BF16): per node, whether it is a convolution that runs in
   * bf16 (every one int8 does not take, but the one on the planar input), and whether its
   * value has a bf16 form (such a node writes it or reads it); hfam_cpu_writes_bf16 says which
   * form such a node writes */
  gboolean bf16;
  gboolean *runs_bf16, *has_bf16;
  HfamHostBudget *budget;  /* the context's */
  HfamCpuWeightCache *weight_cache;  /* the model's, or NULL: weights of its own */
  guint64 plan_bytes;      /* what the plan holds of it: arena, copies, scratchpad */
  int width, height;
  Value *values;
  Step *steps;
  GPtrArray *blocks;  /* Block*, the activation arena */
  void *scratchpad;
  size_t scratchpad_size;
  dnnl_memory_t scratchpad_mem;
} CpuBackend;

#define DNNL_TRY(call, node)                                                                 \
  do {                                                                                       \
    const dnnl_status_t status_ = (call);                                                    \
    if (status_ != dnnl_success) {                                                           \
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "cpu backend: %s: %s failed: %s",   \
                   (node)->name, #call, dnnl_status2str (status_));                           \
      return FALSE;                                                                          \
    }                                                                                        \
  } while (0)

/* Host memory whose size comes from the weight file or the input size: counted in the
 * context's budget (refused above it, HFAM_ERROR_BUDGET) and in `held`, which
 * hfam_cpu_release_counted gives back; 64-byte aligned, zeroed, freed with hfam_cpu_free. */
void *hfam_cpu_counted_alloc (CpuBackend *be, size_t size, guint64 *held, GError **error);
void hfam_cpu_free (void *p);
void hfam_cpu_release_counted (CpuBackend *be, guint64 *held);

/* backend-cpu.c: zeroed 64-byte aligned memory, not counted (freed with hfam_cpu_free); a
 * primitive attribute with the user scratchpad; a primitive made from `pd` (destroyed), its
 * scratchpad counted in the plan's. */
void *hfam_cpu_alloc0 (size_t size, GError **error);
dnnl_primitive_attr_t hfam_cpu_new_attr (void);
gboolean hfam_cpu_finish_primitive (CpuBackend *be, Step *s, const HfamNode *n,
                                    dnnl_primitive_desc_t pd, GError **error);

/* backend-cpu.c: a convolution's primitive description, its weights in the layout oneDNN
 * picks; backend-cpu-phases.c: whether a 3x3 convolution on a map of width x height pays in
 * Winograd. */
typedef struct {
  int cin, cout, kernel, stride, dilation;
  int pad_l[2], pad_r[2];   /* (top, left) and (bottom, right) */
  gboolean bias, sum, relu; /* post-ops: a sum over the destination, then ReLU */
  const float *scales;      /* int8 (s8 weights): the output's scale per channel */
  dnnl_alg_kind_t alg;
} HfamCpuConvSpec;
gboolean hfam_cpu_conv_pd (CpuBackend *be, const HfamNode *n, const HfamCpuConvSpec *spec,
                           const dnnl_memory_desc_t *src_md, const dnnl_memory_desc_t *dst_md,
                           dnnl_primitive_desc_t *pd, GError **error);
gboolean hfam_cpu_wants_winograd (const HfamConvParams *p, int width, int height);

/* backend-cpu-values.c: a node's value dimensions (NCHW, N = 1); giving every value its block
 * of the arena (and to the inputs a concatenation lets write in place, Value.concat, their
 * slice of its block); what the plan of those blocks will hold at least; their memory and
 * memory objects; where input `id` of `concat` starts in its block, in bytes; freeing a
 * block. */
void hfam_cpu_value_dims (const CpuBackend *be, const HfamNode *n, dnnl_dims_t dims, int *w,
                          int *h);
gboolean hfam_cpu_assign_blocks (CpuBackend *be, GError **error);
guint64 hfam_cpu_plan_estimate (const CpuBackend *be);
gboolean hfam_cpu_allocate_values (CpuBackend *be, GError **error);
size_t hfam_cpu_slice_offset (const CpuBackend *be, int concat, int id);
void hfam_cpu_block_free (gpointer p);

/* backend-cpu-weights.c: a convolution's weights in the layout `want` (kept when it is the
 * one they have; quantised per output channel when s->weight_scales is set), and dropped. */
gboolean hfam_cpu_load_conv_weights (CpuBackend *be, Step *s, const HfamNode *n,
                                     const HfamConvParams *p, const dnnl_memory_desc_t *want,
                                     GError **error);
void hfam_cpu_drop_weights (CpuBackend *be, Step *s);
/* int8 weights: quantised per output channel with `scales` (s->weight_scales). */
void hfam_cpu_quantise_weights (const float *w, int cout, size_t per_channel,
                                const float *scales, int8_t *q);
/* Weights in a plain oihw layout (`data_type`, `plain` holding them) reordered into `to`. */
gboolean hfam_cpu_reorder_weights (CpuBackend *be, int cout, int cin, int kernel,
                                   dnnl_data_type_t data_type, void *plain, dnnl_memory_t to);
/* The convolution's bias as s->bias (kept across plans). */
gboolean hfam_cpu_load_bias (CpuBackend *be, Step *s, const HfamNode *n,
                             const HfamConvParams *p, GError **error);
/* An int8 convolution's weight scales per output channel (s->weight_scales, kept across
 * plans), and its bias in s->bias divided by input_scale times them. */
gboolean hfam_cpu_int8_scales (CpuBackend *be, Step *s, const HfamNode *n,
                               const HfamConvParams *p, float input_scale, GError **error);
/* int8: the node's int8 convolution (one with an activation range), the reorder between its
 * value's two forms, an int8 concatenation (its inputs reordered into their slices), the
 * range and int8 type of a value, whether the CPU has VNNI, and which nodes run in int8 and
 * which forms each value needs (be->int8 set). */
gboolean hfam_cpu_plan_conv_int8 (CpuBackend *be, int id, GError **error);
gboolean hfam_cpu_plan_requant (CpuBackend *be, int id, GError **error);
gboolean hfam_cpu_plan_concat_int8 (CpuBackend *be, int id, GError **error);
/* backend-cpu.c: a concatenation step's next copy, `from` (described by from_md) reordered
 * into the slice slice_md at slice_data, with `attr` (NULL: none, a plain copy). */
gboolean hfam_cpu_add_slice_copy (CpuBackend *be, Step *s, const HfamNode *n,
                                  const dnnl_memory_desc_t *slice_md, void *slice_data,
                                  const dnnl_memory_desc_t *from_md, dnnl_memory_t from,
                                  const_dnnl_primitive_attr_t attr, GError **error);
float hfam_cpu_value_range (const HfamGraph *g, int id, dnnl_data_type_t *data_type);
gboolean hfam_cpu_has_vnni (void);
void hfam_cpu_mark_int8 (CpuBackend *be);

/* backend-cpu-bf16.c: whether the CPU has AVX512-BF16's dot products; which nodes run in bf16
 * and which values have a bf16 form (after hfam_cpu_mark_int8); whether a node writes its
 * value's bf16 form; the reorder between that form and the other one, from the one the node
 * writes. */
gboolean hfam_cpu_has_bf16 (void);
void hfam_cpu_mark_bf16 (CpuBackend *be);
gboolean hfam_cpu_writes_bf16 (const CpuBackend *be, int id);
gboolean hfam_cpu_plan_bf16_reorder (CpuBackend *be, int id, GError **error);

/* backend-cpu-phases.c: whether a convolution can run as a batch of undilated phase images
 * (`padded`: of a map whose sides d need not divide); whether they pay against the direct
 * kernel (unpadded, or padded but filling Winograd's tiles well); its Winograd description on
 * them (`sum`: adding what the batch out holds); planning node `id`'s batches for `conv`,
 * that description (after its own scratch and at least `before` bytes of the scratchpad,
 * which grows to hold them; a phased input's batch out is taken as it is where it can be), and
 * where they end when so placed;
 * giving them their place once the scratchpad exists; copying a map of node `id`'s size into
 * its batch in (merge FALSE), or its batch out into one; running those copies for the node's
 * input and value; and dropping them. */
gboolean hfam_cpu_phase_fits (const HfamConvParams *p, const Value *src, gboolean padded);
gboolean hfam_cpu_phases_pay (const HfamConvParams *p, const Value *src);
gboolean hfam_cpu_phase_pd (CpuBackend *be, const HfamNode *n, const HfamConvParams *p,
                            const Value *src, gboolean sum, dnnl_primitive_desc_t *pd);
gboolean hfam_cpu_plan_phases (CpuBackend *be, int id, const_dnnl_primitive_desc_t conv,
                               size_t before, GError **error);
size_t hfam_cpu_phases_end (const_dnnl_primitive_desc_t conv, size_t before);
gboolean hfam_cpu_bind_phases (CpuBackend *be, GError **error);
gboolean hfam_cpu_copy_phases (const CpuBackend *be, int id, float *map, int channels,
                               gboolean merge, GError **error);
gboolean hfam_cpu_run_phases (CpuBackend *be, int id, gboolean merge, GError **error);
void hfam_cpu_clear_phases (Step *s);

/* backend-cpu-lowres.c: whether a convolution is a dilated one over an enlarged input that can
 * run at the input's size (L-BB's first, in fp32 or int8); planning it so (some of its maps in
 * the concatenation it replaces, the others after its convolutions' scratch in the scratchpad,
 * which grows to hold them); giving those their place once the scratchpad exists; running it;
 * dropping it. */
gboolean hfam_cpu_lowres_fits (const CpuBackend *be, int id);
gboolean hfam_cpu_plan_lowres (CpuBackend *be, int id, GError **error);
gboolean hfam_cpu_bind_lowres (CpuBackend *be, GError **error);
gboolean hfam_cpu_run_lowres (CpuBackend *be, int id, GError **error);
void hfam_cpu_clear_lowres (Step *s);

/* backend-cpu-narrow.c: whether a convolution is a 3x3 one into at most 4 channels that
 * hfam_narrow_conv3x3 computes (fp32, blocked); planning it (its weights); running it. */
gboolean hfam_cpu_narrow_fits (const CpuBackend *be, int id);
gboolean hfam_cpu_plan_narrow (CpuBackend *be, int id, GError **error);
gboolean hfam_cpu_run_narrow (CpuBackend *be, int id, GError **error);

/* backend-cpu-frames.c: the ops queue_frame and collect_frame, the runner thread's main
 * (a CpuFrame that is `be` itself stops it), and freeing the frames (a plan resizes them). */
gboolean hfam_cpu_queue_frame (HfamBackend *base, const float *input, GError **error);
gboolean hfam_cpu_collect_frame (HfamBackend *base, HfamOutputs *out, GError **error);
gpointer hfam_cpu_runner_main (gpointer data);
void hfam_cpu_free_frames (CpuBackend *be);

G_END_DECLS

#endif
