/* hfammatte's model and backend: the model loaded (shared with the other
 * elements or not), CUDA where asked for and available, else the CPU, and
 * whether running on the CPU deserves a warning (all builds); and where the
 * element is built with gstcuda, the pipeline's CUDA context: the
 * GstCudaContext shared with the neighbours through GstContext (set on the
 * element, asked for in context queries), the CUDA backend opened on it, and
 * the CUDA buffer pool proposed upstream so that frames arrive in its memory.
 * SPDX-License-Identifier: LGPL-2.1-or-later */
#include "gsthfammatteprivate.h"

#include <gmodule.h>

HfamModel *
gst_hfam_matte_load_model (GstHfamMatte * self, const gchar * path,
    gboolean share_model)
{
  HfamModel *model;
  GError *error = NULL;

  if (g_strcmp0 (path, hfam_default_model_path ()) == 0
      && !g_file_test (path, G_FILE_TEST_EXISTS)) {
    GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND,
        ("No model: the default model %s is not installed; set the model "
            "property to an HFAM .safetensors file", path), (NULL));
    return NULL;
  }
  model = share_model ? hfam_model_load_shared (path, &error)
      : hfam_model_load (path, &error);
  if (!model) {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ,
        ("Could not load the model: %s", error->message),
        ("model=%s", path));
    g_error_free (error);
    return NULL;
  }
  /* which model it is says which elements share one */
  GST_INFO_OBJECT (self, "model %s: %s at %p", path,
      share_model ? "shared" : "a copy of its own", (gpointer) model);
  return model;
}

/* Whether an NVIDIA driver is installed and sees a GPU (the driver library
 * stays loaded: the CUDA runtime would load it again). */
static gboolean
gst_hfam_matte_have_nvidia_gpu (void)
{
  GModule *driver = g_module_open ("libcuda.so.1", G_MODULE_BIND_LAZY);
  int (*cu_init) (unsigned int flags);
  int (*cu_device_get_count) (int *count);
  int count = 0;

  return driver && g_module_symbol (driver, "cuInit", (gpointer *) & cu_init)
      && g_module_symbol (driver, "cuDeviceGetCount",
      (gpointer *) & cu_device_get_count)
      && cu_init (0) == 0 && cu_device_get_count (&count) == 0 && count > 0;
}

/* backend=auto runs on the CPU. Without CUDA in libhfam, or without an NVIDIA
 * driver and GPU, that is expected: said once a process, at INFO. A device
 * that is there but does not open is worth a warning. */
static void
gst_hfam_matte_report_cpu_fallback (GstHfamMatte * self, const GError * error)
{
  static gsize checked = 0;
  static gboolean no_gpu;

  if (g_once_init_enter (&checked)) {
    no_gpu = g_error_matches (error, HFAM_ERROR, HFAM_ERROR_UNSUPPORTED)
        || !gst_hfam_matte_have_nvidia_gpu ();
    if (no_gpu)
      GST_INFO_OBJECT (self, "no NVIDIA driver/GPU found, running on the CPU "
          "(%s)", error->message);
    g_once_init_leave (&checked, 1);
  } else if (no_gpu) {
    GST_DEBUG_OBJECT (self, "running on the CPU: %s", error->message);
  }
  if (!no_gpu && !self->warned_cpu_fallback) {
    GST_ELEMENT_WARNING (self, LIBRARY, INIT,
        ("No CUDA device, running on the CPU: %s", error->message), (NULL));
    self->warned_cpu_fallback = TRUE;
  }
}

#ifdef HFAM_HAVE_GST_CUDA
#include <gst/cuda/gstcudabufferpool.h>
#include <gst/cuda/gstcudaloader.h>
#include <gst/cuda/gstcudamemory.h>
#include <gst/cuda/gstcudautils.h>

/* self->cuda_context, a reference, or NULL. */
static GstCudaContext *
gst_hfam_matte_get_cuda_context (GstHfamMatte * self)
{
  GstCudaContext *cuda_context;

  GST_OBJECT_LOCK (self);
  cuda_context = self->cuda_context ? gst_object_ref (self->cuda_context)
      : NULL;
  GST_OBJECT_UNLOCK (self);
  return cuda_context;
}

/* The CUDA context of the device that elements sharing their model (share-model)
 * make when their pipeline has none: one a device while any element holds it,
 * so that elements in several pipelines of one process (four OBS sources, say)
 * run on one context and share the device copy of the weights. A reference, or
 * NULL. */
static GstCudaContext *
gst_hfam_matte_process_cuda_context (gint device_id)
{
  static GMutex lock;
  static GHashTable *by_device;        /* device id -> GWeakRef to its context */
  GstCudaContext *cuda_context;
  GWeakRef *ref;

  g_mutex_lock (&lock);
  if (!by_device)
    by_device = g_hash_table_new (g_direct_hash, g_direct_equal);
  ref = g_hash_table_lookup (by_device, GINT_TO_POINTER (device_id));
  if (!ref) {
    ref = g_new0 (GWeakRef, 1);
    g_weak_ref_init (ref, NULL);
    g_hash_table_insert (by_device, GINT_TO_POINTER (device_id), ref);
  }
  if (!(cuda_context = g_weak_ref_get (ref))
      && (cuda_context = gst_cuda_context_new (device_id)))
    g_weak_ref_set (ref, cuda_context);
  g_mutex_unlock (&lock);
  return cuda_context;
}

/* The pipeline's CUDA context, found or made the way
 * gst_cuda_ensure_element_context does it (a neighbour's through a context
 * query, downstream then upstream; the application's through need-context; one
 * set on the element before, which GstElement keeps across READY while stop
 * drops ours, for an element that no bin or neighbour answers; or a new one,
 * announced with have-context: with share-model the process's for the device),
 * but with self->cuda_context written only under the object lock: set_context
 * stores what is found. A reference, or NULL. */
static GstCudaContext *
gst_hfam_matte_ensure_cuda_context (GstHfamMatte * self, gint device_id,
    gboolean share_model)
{
  GstPad *const neighbours[] = { self->fill.pad, self->key.pad, self->sinkpad };
  GstCudaContext *cuda_context = gst_hfam_matte_get_cuda_context (self);
  GstContext *context;
  GstQuery *query;

  if (cuda_context)
    return cuda_context;
  query = gst_query_new_context (GST_CUDA_CONTEXT_TYPE);
  for (guint i = 0; i < G_N_ELEMENTS (neighbours) && !cuda_context; i++) {
    if (gst_pad_peer_query (neighbours[i], query)) {
      gst_query_parse_context (query, &context);
      if (context)
        gst_element_set_context (GST_ELEMENT (self), context);
    }
    cuda_context = gst_hfam_matte_get_cuda_context (self);
  }
  gst_query_unref (query);
  if (cuda_context)
    return cuda_context;
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_need_context (GST_OBJECT (self), GST_CUDA_CONTEXT_TYPE));
  if ((cuda_context = gst_hfam_matte_get_cuda_context (self)))
    return cuda_context;
  if ((context = gst_element_get_context (GST_ELEMENT (self),
              GST_CUDA_CONTEXT_TYPE))) {
    gst_element_set_context (GST_ELEMENT (self), context);
    gst_context_unref (context);
    if ((cuda_context = gst_hfam_matte_get_cuda_context (self)))
      return cuda_context;
  }

  cuda_context = share_model
      ? gst_hfam_matte_process_cuda_context (MAX (device_id, 0))
      : gst_cuda_context_new (MAX (device_id, 0));
  if (!cuda_context)
    return NULL;
  context = gst_context_new_cuda_context (cuda_context);
  gst_object_unref (cuda_context);
  gst_element_set_context (GST_ELEMENT (self), context);
  GST_INFO_OBJECT (self, "sharing a new CUDA context with the pipeline");
  gst_element_post_message (GST_ELEMENT (self),
      gst_message_new_have_context (GST_OBJECT (self), context));
  return gst_hfam_matte_get_cuda_context (self);
}

/* The CUDA backend on the pipeline's CUDA context (a neighbour's, one set on
 * the element, or a new one announced to the others), so that CUDA memory
 * passes without copies. NULL, and *cuda_context left NULL, where gstcuda has
 * no context to give: libhfam then opens the device's primary context. */
static HfamContext *
gst_hfam_matte_open_cuda_on_pipeline_context (GstHfamMatte * self,
    const HfamOptions * options, const HfamCudaOptions * cuda,
    GstCudaContext ** cuda_context, GError ** error)
{
  HfamCudaOptions on_context = *cuda;
  GstCudaContext *shared;
  gboolean share_model;
  HfamContext *ctx;

  if (!gst_cuda_load_library ())
    return NULL;
  /* registers gstcuda's allocator, without which its buffer pools refuse every
   * configuration (nvcodec does this when it loads; that plugin may be absent) */
  gst_cuda_memory_init_once ();
  GST_OBJECT_LOCK (self);
  share_model = self->share_model;
  GST_OBJECT_UNLOCK (self);
  shared = gst_hfam_matte_ensure_cuda_context (self, cuda->device_id,
      share_model);
  if (!shared || !gst_cuda_context_push (shared)) {
    gst_clear_object (&shared);
    return NULL;
  }
  on_context.current_context = TRUE;
  ctx = hfam_context_new (self->model, options, &on_context, error);
  gst_cuda_context_pop (NULL);
  if (ctx)
    *cuda_context = shared;
  else
    gst_object_unref (shared);
  return ctx;
}

/* A neighbour (or the application) shares its CUDA context; the first one
 * stays. */
void
gst_hfam_matte_handle_set_context (GstHfamMatte * self, GstContext * context)
{
  GstCudaContext *found = NULL;
  gint device_id;

  GST_OBJECT_LOCK (self);
  device_id = self->cuda_device_id;
  GST_OBJECT_UNLOCK (self);
  if (!gst_cuda_handle_set_context (GST_ELEMENT (self), context, device_id,
          &found) || !found)
    return;
  GST_OBJECT_LOCK (self);
  if (!self->cuda_context)
    self->cuda_context = g_steal_pointer (&found);
  GST_OBJECT_UNLOCK (self);
  gst_clear_object (&found);
}

gboolean
gst_hfam_matte_context_query (GstHfamMatte * self, GstQuery * query)
{
  GstCudaContext *cuda_context = gst_hfam_matte_get_cuda_context (self);
  gboolean answered;

  answered = gst_cuda_handle_context_query (GST_ELEMENT (self), query,
      cuda_context);
  gst_clear_object (&cuda_context);
  return answered;
}

/* CUDA memory in: upstream gets a pool of the CUDA context libhfam runs on, so
 * that its frames are on the device path, with room for the frames held. */
void
gst_hfam_matte_propose_cuda_pool (GstHfamMatte * self, GstQuery * query)
{
  GstCudaContext *cuda_context;
  GstBufferPool *pool;
  GstStructure *config;
  GstVideoInfo info;
  gboolean need_pool;
  GstCaps *caps;
  guint size;

  gst_query_parse_allocation (query, &caps, &need_pool);
  if (!need_pool || !caps || !gst_caps_features_contains
      (gst_caps_get_features (caps, 0), GST_CAPS_FEATURE_MEMORY_CUDA_MEMORY)
      || !gst_video_info_from_caps (&info, caps))
    return;
  cuda_context = gst_hfam_matte_get_cuda_context (self);
  if (!cuda_context)
    return;
  pool = gst_cuda_buffer_pool_new (cuda_context);
  gst_object_unref (cuda_context);
  config = gst_buffer_pool_get_config (pool);
  gst_buffer_pool_config_set_params (config, caps, GST_VIDEO_INFO_SIZE (&info),
      0, 0);
  gst_buffer_pool_config_add_option (config, GST_BUFFER_POOL_OPTION_VIDEO_META);
  if (!gst_buffer_pool_set_config (pool, config)) {
    GST_WARNING_OBJECT (self, "the CUDA buffer pool rejects %" GST_PTR_FORMAT,
        caps);
    gst_object_unref (pool);
    return;
  }
  /* the pool pads rows for the device: its size, not the caps' */
  config = gst_buffer_pool_get_config (pool);
  gst_buffer_pool_config_get_params (config, NULL, &size, NULL, NULL);
  gst_structure_free (config);
  gst_query_add_allocation_pool (query, pool, size,
      gst_hfam_matte_worker_depth (self->worker), 0);
  gst_object_unref (pool);
}
#endif

HfamContext *
gst_hfam_matte_open_context (GstHfamMatte * self, GstHfamMatteBackend backend,
    gint device_id, const HfamOptions * context_options, gpointer * cuda_context)
{
  HfamOptions options = *context_options;
  const HfamCudaOptions cuda = {.device_id = device_id };
  HfamContext *ctx = NULL;
  GError *error = NULL;

  *cuda_context = NULL;
  options.backend = HFAM_BACKEND_CUDA;
  if (backend != GST_HFAM_MATTE_BACKEND_CPU) {
#ifdef HFAM_HAVE_GST_CUDA
    ctx = gst_hfam_matte_open_cuda_on_pipeline_context (self, &options, &cuda,
        (GstCudaContext **) cuda_context, &error);
#endif
    if (!ctx && !error)
      ctx = hfam_context_new (self->model, &options, &cuda, &error);
    if (ctx)
      return ctx;
    if (backend == GST_HFAM_MATTE_BACKEND_CUDA) {
      GST_ELEMENT_ERROR (self, LIBRARY, INIT,
          ("The cuda backend is not available: %s", error->message),
          ("backend=cuda cuda-device-id=%d", device_id));
      g_error_free (error);
      return NULL;
    }
    gst_hfam_matte_report_cpu_fallback (self, error);
    g_clear_error (&error);
  }

  options.backend = HFAM_BACKEND_CPU;
  ctx = hfam_context_new (self->model, &options, NULL, &error);
  if (!ctx) {
    GST_ELEMENT_ERROR (self, LIBRARY, INIT,
        ("The cpu backend failed to start: %s", error->message), (NULL));
    g_error_free (error);
  }
  return ctx;
}
