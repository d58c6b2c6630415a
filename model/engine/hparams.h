/* The network's hyper-parameters, read from a weight file's __metadata__ (keys in
 * model/README.md). */
#ifndef HFAM_HPARAMS_H
#define HFAM_HPARAMS_H

#include <hfam/hfam-types.h>
#include "safetensors.h"

G_BEGIN_DECLS

typedef struct {
  int encoder_depth;          /* 18, 34, 50, 101 */
  int encoder_width;          /* 64 in torchvision */
  gboolean stride_in_1x1;
  gboolean input_bgr;         /* network sees B, G, R */
  float input_scale;          /* pixels mapped to 0..input_scale */
  float input_mean[3], input_std[3];  /* in the network's channel order */
  int mfem_channels;          /* Cm */
  int mfem_rates[3][3];       /* [level 2,3,4][branch 1..3] */
  int sk_width;               /* d */
  int context_widths[5];      /* p_4 .. p_0 */
  int semantic_widths[5][3];  /* [block 4..0][conv] */
  int detail_widths[5][3];
  int lbb_width, lbb_dilation;
  int inference_size;
} HfamHparams;

/* Fills `hp` from the metadata; every key is required and checked for range and
 * consistency; the error names the file, the key and what is wrong with it. */
gboolean hfam_hparams_read (const HfamSafetensors *st, HfamHparams *hp, GError **error);

/* Channel widths of the encoder outputs f0..f4 implied by depth and width. */
void hfam_hparams_encoder_channels (const HfamHparams *hp, int channels[5]);

/* Blocks per layer for the depth: 18 -> 2,2,2,2; 34 and 50 -> 3,4,6,3; 101 -> 3,4,23,3. */
void hfam_hparams_encoder_blocks (const HfamHparams *hp, int blocks[4]);

G_END_DECLS

#endif
