/* Reading HfamHparams from a weight file's __metadata__ (keys in model/README.md). */
#ifndef HFAM_HPARAMS_H
#define HFAM_HPARAMS_H

#include <hfam/hfam.h>
#include "safetensors.h"

G_BEGIN_DECLS

/* Fills `hp` from the metadata; every key is required and checked for range and
 * consistency; the error names the file, the key and what is wrong with it. */
gboolean hfam_hparams_read (const HfamSafetensors *st, HfamHparams *hp, GError **error);

/* Channel widths of the encoder outputs f0..f4 implied by depth and width. */
void hfam_hparams_encoder_channels (const HfamHparams *hp, int channels[5]);

/* Blocks per layer for the depth: 18 -> 2,2,2,2; 34 and 50 -> 3,4,6,3; 101 -> 3,4,23,3. */
void hfam_hparams_encoder_blocks (const HfamHparams *hp, int blocks[4]);

G_END_DECLS

#endif
