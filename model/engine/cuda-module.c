/* The CUDA backend is a module of its own (model/engine/cuda/, libhfam-cuda.so), opened here
 * when a context first asks for CUDA (or auto), the way GStreamer's nvcodec opens its GPU
 * libraries: only the module links cudart, cuDNN and cuBLASLt, so libhfam, the tools and the
 * GStreamer plugin load on a machine without them, and run on the CPU there.
 * The module is $HFAMMATTE_CUDA_MODULE where that is set (the build tree's, for the tests and
 * `meson devenv`), else the installed one, HFAM_CUDA_MODULE; one built for another layout of
 * what the two exchange is refused (HFAM_CUDA_MODULE_ABI_INIT). */
#include "backend.h"

#include <gmodule.h>
#include <string.h>

typedef struct {
  HfamCudaModuleNewBackend *new_backend;  /* NULL when the module did not open */
  char *error;                            /* why it did not */
} CudaModule;

/* Opens the module once for the process, whether it opens or not. */
static const CudaModule *
open_cuda_module (void)
{
  static CudaModule cuda_module;
  static gsize opened;

  if (g_once_init_enter (&opened)) {
    const char *path = g_getenv ("HFAMMATTE_CUDA_MODULE");
    static const HfamCudaModuleAbi ours = HFAM_CUDA_MODULE_ABI_INIT;
    GModule *module;
    gpointer entry = NULL, abi = NULL;

    if (!path || !path[0])
      path = HFAM_CUDA_MODULE;
    /* local: the static pieces of libhfam that the module carries stay its own */
    module = g_module_open (path, G_MODULE_BIND_LOCAL);
    if (!module || !g_module_symbol (module, HFAM_CUDA_MODULE_ENTRY, &entry)
        || !g_module_symbol (module, HFAM_CUDA_MODULE_ABI_SYMBOL, &abi))
      cuda_module.error = g_strdup_printf ("the CUDA backend's module %s does not open: %s",
                                           path, g_module_error ());
    else if (memcmp (abi, ours, sizeof ours) != 0)
      cuda_module.error = g_strdup_printf ("the CUDA backend's module %s was built for another "
                                           "libhfam (layout version %u, this one's %u, or other "
                                           "sizes): build and install the two together",
                                           path, ((const guint32 *) abi)[0], ours[0]);
    else
      cuda_module.new_backend = (HfamCudaModuleNewBackend *) entry;
    if (cuda_module.new_backend)
      /* backends outlive every context: the module stays */
      g_module_make_resident (module);
    else if (module)
      g_module_close (module);
    g_once_init_leave (&opened, 1);
  }
  return &cuda_module;
}

HfamBackend *
hfam_backend_cuda_new (const HfamGraph *graph, int device_id, const HfamCudaBackendOptions *options,
                       GError **error)
{
  const CudaModule *cuda_module = open_cuda_module ();

  if (!cuda_module->new_backend) {
    g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND, "cuda backend: %s", cuda_module->error);
    return NULL;
  }
  return cuda_module->new_backend (graph, device_id, options, hfam_stage_name, error);
}
