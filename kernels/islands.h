/* Islands of the matte dropped, on the CPU: the oracle of islands.cu.
 *
 * The network mistakes busy parts of a photographic background (flowers, boats, a patterned
 * wall) for the person; most of them come out as regions of their own, apart from the person.
 * Here a region is a set of pixels whose alpha is above `floor`, 8-connected (so that thin,
 * diagonal strands of hair keep a region whole), and its mass is the sum of its alpha. Every
 * region whose mass is under `share` times the largest region's is set to 0; the pixels at or
 * under `floor` are left as they are.
 *
 * Regions are found by union-find with the smaller index as the root: here over the runs of
 * pixels above the floor along the rows, on the GPU over the pixels (Playne and Hawick 2018's
 * lock-free form). Both give the same regions. The masses are summed in another order on the
 * GPU, so a region whose mass lies within rounding of the limit may fall either way there.
 * CUDA twin: islands.cuh. */
#ifndef HFAM_KERNELS_ISLANDS_H
#define HFAM_KERNELS_ISLANDS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
  float floor;  /* alpha above which a pixel belongs to a region, 0..1 */
  float share;  /* of the largest region's mass, under which a region is dropped, 0..1 */
} HfamIslandParams;

int hfam_island_params_valid (const HfamIslandParams *p);

/* The scratch of a call on w x h: on the device the labels (w * h int32) and the masses
 * (w * h + 1 floats); the host's runs fit in the same bytes with 8 h more. */
size_t hfam_islands_scratch_bytes (int w, int h);

/* matte (w x h, in place) with its islands dropped as above; `scratch` holds
 * hfam_islands_scratch_bytes (w, h) bytes, aligned for floats. 0, or -1 on bad arguments. */
int hfam_matte_drop_islands (float *matte, int w, int h, const HfamIslandParams *p,
                             void *scratch);

#ifdef __cplusplus
}
#endif

#endif
