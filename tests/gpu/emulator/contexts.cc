/* The CUDA emulator's contexts (README.md here): the driver API's context calls that the runtime
 * hands out (cudaGetDriverEntryPointByVersion), each thread's stack of current contexts, and the
 * device's primary context, which the runtime binds where a thread has none. Memory and streams
 * belong to the context current when they were made (host.cc): a stream of another context is
 * refused, a kernel argument in another context's memory too. */
#include "stream.h"

#include "cudaTypedefs.h"

#include <set>
#include <vector>

#include <string.h>

struct HfamEmuContext {
  bool primary;
};

namespace hfam_emu {
namespace {

std::set<CUcontext> contexts;
HfamEmuContext primary_context { true };
thread_local std::vector<CUcontext> context_stack;

} // namespace

CUcontext
current_context ()
{
  std::lock_guard<std::recursive_mutex> guard (api_lock ());
  if (context_stack.empty ())
    context_stack.push_back (&primary_context);
  return context_stack.back ();
}

void
bind_primary_context ()
{
  std::lock_guard<std::recursive_mutex> guard (api_lock ());
  if (context_stack.empty ())
    context_stack.push_back (&primary_context);
  else
    context_stack.back () = &primary_context;
}

} // namespace hfam_emu

using namespace hfam_emu;

#define LOCKED std::lock_guard<std::recursive_mutex> guard (api_lock ())

extern "C" {

/* The driver API's context calls, which the runtime hands out. */
static CUresult
emu_cuDeviceGet (CUdevice *device, int ordinal)
{
  if (!device)
    return CUDA_ERROR_INVALID_VALUE;
  if (ordinal != 0)
    return CUDA_ERROR_INVALID_DEVICE;
  *device = 0;
  return CUDA_SUCCESS;
}

static CUresult
emu_cuCtxCreate (CUcontext *context, unsigned int flags, CUdevice device)
{
  LOCKED;
  if (!context || flags != 0)
    return CUDA_ERROR_INVALID_VALUE;
  if (device != 0)
    return CUDA_ERROR_INVALID_DEVICE;
  *context = new HfamEmuContext { false };
  contexts.insert (*context);
  context_stack.push_back (*context);
  return CUDA_SUCCESS;
}

static CUresult
emu_cuCtxDestroy (CUcontext context)
{
  LOCKED;
  if (!context || !contexts.count (context))
    return CUDA_ERROR_INVALID_VALUE;
  drain_context (context);
  if (!context_stack.empty () && context_stack.back () == context)
    context_stack.pop_back ();
  contexts.erase (context);
  delete context;
  return CUDA_SUCCESS;
}

static CUresult
emu_cuCtxPopCurrent (CUcontext *context)
{
  LOCKED;
  if (context_stack.empty ())
    return CUDA_ERROR_INVALID_CONTEXT;
  if (context)
    *context = context_stack.back ();
  context_stack.pop_back ();
  return CUDA_SUCCESS;
}

static CUresult
emu_cuCtxGetCurrent (CUcontext *context)
{
  LOCKED;
  if (!context)
    return CUDA_ERROR_INVALID_VALUE;
  *context = context_stack.empty () ? nullptr : context_stack.back ();
  return CUDA_SUCCESS;
}

static CUresult
emu_cuCtxSetCurrent (CUcontext context)
{
  LOCKED;
  if (context && context != &primary_context && !contexts.count (context))
    return CUDA_ERROR_INVALID_CONTEXT;
  if (!context) {
    if (!context_stack.empty ())
      context_stack.pop_back ();
  } else if (context_stack.empty ()) {
    context_stack.push_back (context);
  } else {
    context_stack.back () = context;
  }
  return CUDA_SUCCESS;
}

cudaError_t
cudaGetDriverEntryPointByVersion (const char *symbol, void **function, unsigned int version,
                                  unsigned long long flags,
                                  enum cudaDriverEntryPointQueryResult *status)
{
  static const struct {
    const char *name;
    unsigned int version;
    void *function;
  } table[] = {
    { "cuDeviceGet", 2000, (void *) emu_cuDeviceGet },
    { "cuCtxCreate", 3020, (void *) emu_cuCtxCreate },
    { "cuCtxDestroy", 4000, (void *) emu_cuCtxDestroy },
    { "cuCtxPopCurrent", 4000, (void *) emu_cuCtxPopCurrent },
    { "cuCtxGetCurrent", 4000, (void *) emu_cuCtxGetCurrent },
    { "cuCtxSetCurrent", 4000, (void *) emu_cuCtxSetCurrent },
  };
  if (!symbol || !function || flags != cudaEnableDefault)
    return set_error (cudaErrorInvalidValue);
  *function = nullptr;
  if (status)
    *status = cudaDriverEntryPointSymbolNotFound;
  for (const auto &entry : table)
    if (strcmp (entry.name, symbol) == 0) {
      if (version < entry.version) {
        if (status)
          *status = cudaDriverEntryPointVersionNotSufficent;
        return cudaSuccess;
      }
      *function = entry.function;
      if (status)
        *status = cudaDriverEntryPointSuccess;
    }
  return cudaSuccess;
}

} // extern "C"
