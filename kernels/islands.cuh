/* Islands of the matte dropped on the GPU (islands.h says what, and is the CPU twin): labels by
 * lock-free union-find (Playne and Hawick 2018), each region's root its smallest index as on
 * the CPU, then the masses by atomic sums, the largest by an atomic maximum, and the drop. Five
 * small kernels on the stream, nothing read back to the host. */
#ifndef HFAM_KERNELS_ISLANDS_CUH
#define HFAM_KERNELS_ISLANDS_CUH

#include "cuda-common.cuh"
#include "islands.h"

HFAM_CUDA_BEGIN_DECLS

/* matte (device, w x h fp32, in place); scratch (device) of hfam_islands_scratch_bytes (w, h)
 * bytes. */
cudaError_t hfam_cuda_matte_drop_islands (float *matte, int w, int h, const HfamIslandParams *p,
                                          void *scratch, cudaStream_t stream);

HFAM_CUDA_END_DECLS

#endif
