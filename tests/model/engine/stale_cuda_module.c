/* A CUDA backend's module built for another libhfam (the layout version one past this one's),
 * for test-cuda-module: its entry point must never be called. */
#include "backend.h"

#include <gmodule.h>

G_MODULE_EXPORT HfamCudaModuleNewBackend hfam_cuda_module_new_backend;
G_MODULE_EXPORT extern const HfamCudaModuleAbi hfam_cuda_module_abi;

const HfamCudaModuleAbi hfam_cuda_module_abi =
  HFAM_CUDA_MODULE_ABI_OF (HFAM_CUDA_MODULE_VERSION + 1);

HfamBackend *
hfam_cuda_module_new_backend (const HfamGraph *graph, int device_id,
                              const HfamCudaBackendOptions *options,
                              const char *(*stage_name) (HfamStage stage), GError **error)
{
  g_error ("the stale module's entry point was called");
  return NULL;
}
