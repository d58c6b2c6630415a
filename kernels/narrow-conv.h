/* 3x3 convolutions with few output channels (the decoders' last layers: 64 -> 3 and 64 -> 1)
 * on channel-blocked maps, on the CPU. oneDNN pads the output channels to its block of 8 or 16
 * and so does 5 to 16 times the arithmetic these need. */
#ifndef HFAM_KERNELS_NARROW_CONV_H
#define HFAM_KERNELS_NARROW_CONV_H

#ifdef __cplusplus
extern "C" {
#endif

#define HFAM_NARROW_CONV_MAX_OUT 4

/* The input: `n_blocks` blocks of `block` channels (8 or 16), each h x w pixels of `block`
 * floats (oneDNN's aBcd8b / aBcd16b). */
typedef struct {
  const float *src;
  int block, n_blocks, width, height;
} HfamBlockedMap;

/* dst (one block: h x w pixels of `block` values, lanes from n_out on zero) = the 3x3
 * convolution of `in` with stride 1, dilation 1 and zero padding 1, plus `bias`, then ReLU
 * when `relu`. weights: n_out x n_blocks x 3 x 3 x block floats (oneDNN's aBcd*b on the
 * weights), input channels past the map's zero. 0, or -1 on bad sizes (n_out from 1 to
 * HFAM_NARROW_CONV_MAX_OUT, block 8 or 16). Rows spread over the calling thread's OpenMP
 * team. */
int hfam_narrow_conv3x3 (const HfamBlockedMap *in, const float *weights, const float *bias,
                         int n_out, int relu, float *dst);

#ifdef __cplusplus
}
#endif

#endif
