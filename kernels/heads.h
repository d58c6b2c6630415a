/* The per-pixel heads of HFAM and the SK attention fold, on the CPU. These are the oracles
 * of their CUDA twins. Planes are float, row-major, tightly packed. */
#ifndef HFAM_KERNELS_HEADS_H
#define HFAM_KERNELS_HEADS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Semantic logits (3 planes at w/2 x h/2) -> enlarged to w x h (bilinear, align_corners =
 * false) -> softmax over the 3 classes: `prob` (3 planes at w x h). 0, or -1 on bad sizes. */
int hfam_semantic_head (const float *logits, int w, int h, float *prob);

/* A = sigmoid(weight . P_s + bias) per pixel. */
void hfam_attention_map (const float *prob, int n_pixels, const float weight[3], float bias,
                         float *map);

/* Average pool of one plane (w x h) by an exact factor. */
void hfam_pool_plane (const float *src, int w, int h, int factor, float *dst);

/* Channel-blocked feature map (n_blocks x n_pixels x block floats) times a per-pixel map. */
void hfam_scale_blocked (const float *src, int n_blocks, int n_pixels, int block,
                         const float *map, float *dst);

/* The same for an int8 map, nhwc (n_pixels x channels of u8 when `is_unsigned`, else s8):
 * each value times its pixel's map value and `scale` (the input's quantisation scale over the
 * output's), rounded to the nearest (ties to even, as oneDNN rounds) and saturated. src and
 * dst may be the same map. */
void hfam_scale_nhwc_int8 (const void *src, int channels, int n_pixels, int is_unsigned,
                           const float *map, float scale, void *dst);

/* The class of pixel i in P_s (three planes of `plane` values): 0 background, 1 unknown,
 * 2 foreground; the first maximum wins. Written as selects, so that hfam_fusion's loop over
 * the pixels vectorises with it. */
static inline int
hfam_semantic_class (const float *prob, size_t plane, size_t i)
{
  const float bg = prob[i], unknown = prob[plane + i], fg = prob[2 * plane + i];
  return fg > bg && fg > unknown ? 2 : unknown > bg ? 1 : 0;
}

/* Detail logit (1 plane at w/2 x h/2) -> enlarged -> sigmoid = alpha_d; alpha_p from the
 * argmax of P_s (background 0, unknown alpha_d, foreground 1; first maximum wins).
 * 0, or -1 on bad sizes. */
int hfam_fusion (const float *detail_logit, int w, int h, const float *prob, float *alpha_d,
                 float *alpha_p);

/* MFEM's SK attention folded into its 1x1 projection.
 * gap[4 cm]: spatial means of b0..b3; pooled[cm]: b4 (constant over the plane).
 * s = sum_k gap_k + pooled; z = ReLU(Wsq s + bsq) (d values); a = softmax over the 5
 * branches of (Wsel z + bsel), index k * cm + c. The projection of concat(a_k b_k), k < 5,
 * equals a 1x1 conv over concat(b0..b3) with weights Wp[o][k cm + c] a_k[c] plus the
 * constant b4 term moved into the bias:
 *   weight_out[o][k cm + c] (cm x 4 cm), bias_out[o] = bp[o] + sum_c Wp[o][4 cm + c] a_4[c] b4[c].
 * Weights are row-major (out, in). Returns 0, or -1 when out of memory. */
int hfam_sk_fold (const float *gap, const float *pooled, int cm, int d,
                   const float *squeeze_w, const float *squeeze_b,
                   const float *select_w, const float *select_b,
                   const float *project_w, const float *project_b,
                   float *weight_out, float *bias_out);

#ifdef __cplusplus
}
#endif

#endif
