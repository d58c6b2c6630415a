/* The operations the CUDA backend runs between convolutions, on the CPU: the oracles of the
 * CUDA ops in nhwc.cu (one function here per launcher there). Plain loops in fp32 over NHWC
 * maps, N = 1; written for clarity, not speed.
 *
 * A map's element (y, x, c) lives at data[((size_t) y * w + x) * cs + c], cs >= c, as in
 * HfamNhwc of cuda-common.cuh: a map may be a view of channels [c0, c0 + c) of a wider map
 * (data then points at channel c0 and cs is the wide map's). */
#ifndef HFAM_KERNELS_NHWC_H
#define HFAM_KERNELS_NHWC_H

#include <stddef.h>

typedef struct {
  float *data;
  int w, h, c, cs;
} HfamNhwcHost;

static inline float *
hfam_nhwc_at (const HfamNhwcHost *t, int x, int y)
{
  return t->data + ((size_t) y * t->w + x) * t->cs;
}

/* y = act(x + bias[c] + residual), residual may be NULL; act = ReLU when relu != 0.
 * x and y may be the same map. */
void hfam_nhwc_bias_act (const HfamNhwcHost *x, const float *bias, const HfamNhwcHost *residual,
                         int relu, const HfamNhwcHost *y);

/* The sum of a split-K convolution's partial results, then as hfam_nhwc_bias_act:
 * y = act(sum over g < splits of partials[g * group + c] + bias[c] + residual), where the
 * partials (a grouped convolution's output, one group per slice of the input channels) hold
 * `splits` groups of group = partials->c / splits channels, and y->c <= group. */
void hfam_nhwc_split_k_sum (const HfamNhwcHost *partials, int splits, const float *bias,
                            const HfamNhwcHost *residual, int relu, const HfamNhwcHost *y);

/* Bilinear resize, align_corners = false, to dst's size (PyTorch's upsample_bilinear2d without
 * antialiasing: source = (i + 0.5) * in / out - 0.5, negative clamped to 0, the far tap
 * clamped to the edge). Equals hfam_resize_plane (resize.h) on every channel when enlarging. */
void hfam_nhwc_resize (const HfamNhwcHost *src, const HfamNhwcHost *dst);

/* Average pooling, kernel = stride = factor, no padding: dst is src / factor. */
void hfam_nhwc_avgpool (const HfamNhwcHost *src, int factor, const HfamNhwcHost *dst);

/* Max pooling 3x3, stride 2, padding 1 (padding never wins): dst is ceil-free src / 2. */
void hfam_nhwc_maxpool (const HfamNhwcHost *src, const HfamNhwcHost *dst);

/* Mean over the plane of each channel: out[c] (a 1x1 map). */
void hfam_nhwc_global_pool (const HfamNhwcHost *src, const HfamNhwcHost *dst);

/* dst = src, channel for channel (dst is typically a slice of a concatenation). */
void hfam_nhwc_copy (const HfamNhwcHost *src, const HfamNhwcHost *dst);

/* dst = src * map[y * w + x] (a planar map of the same size). */
void hfam_nhwc_scale_by_map (const HfamNhwcHost *src, const float *map,
                             const HfamNhwcHost *dst);

/* Planar NCHW (dst->c planes of w x h) into dst; channels c..cs-1 of every pixel become 0. */
void hfam_nhwc_from_planar (const float *planar, const HfamNhwcHost *dst);

/* src into planar NCHW (src->c planes). */
void hfam_nhwc_to_planar (const HfamNhwcHost *src, float *planar);

#endif
