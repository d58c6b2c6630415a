/* The CUDA backend's weights: converted once (KRSC, channels padded to a multiple of 8 in
 * fp16, zeros) into one device allocation, shared by the backends of one model on one CUDA
 * context. MFEM's projection weights are refolded per frame on
 * the device (hfam_cuda_sk_fold, in queue.c) into each slot's arena. */
#include "cuda-backend.h"

/* Host fp32 into the weight allocation at `offset`, converted to the backend's dtype through
 * the fp32 device staging buffer (or as they are, fp32). */
static gboolean
upload (CudaBackend *be, const float *host, size_t n, size_t offset, gboolean convert,
        float *staging, const char *what, GError **error)
{
  if (!convert || be->dtype == HFAM_CUDA_F32) {
    CUDA_TRY (cudaMemcpy (be->weights + offset, host, sizeof (float) * n,
                          cudaMemcpyHostToDevice), what);
    return TRUE;
  }
  CUDA_TRY (cudaMemcpy (staging, host, sizeof (float) * n, cudaMemcpyHostToDevice), what);
  CUDA_TRY (hfam_cuda_convert (staging, HFAM_CUDA_F32, be->weights + offset, be->dtype, n, 0),
            what);
  CUDA_TRY (cudaDeviceSynchronize (), what);
  return TRUE;
}

/* The weights of the backends of one model (its graph) on one CUDA context in one dtype: their
 * layout follows from those, so the first backend uploads them and the others take its
 * allocation, which the last one to let go frees. */
typedef struct {
  const HfamGraph *graph;
  CUcontext context;  /* NULL: the device's primary one */
  int device;
  HfamCudaDtype dtype;
  char *weights;
  int users;
} SharedWeights;

static GMutex shared_lock;
static GSList *shared_weights;  /* SharedWeights* */

static SharedWeights *
find_shared (const CudaBackend *be)
{
  for (GSList *l = shared_weights; l; l = l->next) {
    SharedWeights *w = l->data;
    if (w->graph == be->base.graph && w->context == be->context && w->device == be->device
        && w->dtype == be->dtype)
      return w;
  }
  return NULL;
}

/* The backend's weights given back: freed with their last user. */
void
release_weights (CudaBackend *be)
{
  SharedWeights *w;

  if (!be->weights)
    return;
  g_mutex_lock (&shared_lock);
  if ((w = find_shared (be)) && w->weights == be->weights && --w->users == 0) {
    shared_weights = g_slist_remove (shared_weights, w);
    cudaFree (w->weights);
    g_free (w);
  }
  g_mutex_unlock (&shared_lock);
  be->weights = NULL;
}

/* Every convolution's weights (KRSC, padded with zeros) and bias, and the SK tensors, into one
 * device allocation, shared with the other backends of the model on this context and dtype
 * (held while the first uploads them, so that backends starting together upload once). */
gboolean
load_weights (CudaBackend *be, GError **error)
{
  const HfamGraph *g = be->base.graph;
  size_t total = 0, max_elems = 1;
  float *staging = NULL;
  SharedWeights *w;
  gboolean ok = TRUE, fresh;

  for (int i = 0; i < g->n_nodes; i++) {
    const HfamNode *n = &g->nodes[i];
    Step *s = &be->steps[i];
    if (n->op == HFAM_OP_CONV) {
      const size_t nw = (size_t) s->cs * n->conv.kernel * n->conv.kernel
                        * be->steps[n->inputs[0]].cs;
      s->weight_offset = total;
      total += align_up (nw * elem (be));
      s->bias_offset = total;
      total += align_up ((size_t) s->cs * elem (be));
      max_elems = MAX (max_elems, nw);
    } else if (n->op == HFAM_OP_SK_PROJECT) {
      const HfamStTensor *t[6] = { n->sk.squeeze.weight, n->sk.squeeze.bias, n->sk.select.weight,
                                   n->sk.select.bias, n->sk.project.weight, n->sk.project.bias };
      size_t off[6];
      for (int k = 0; k < 6; k++) {
        off[k] = total;
        total += align_up (sizeof (float) * hfam_st_n_elements (t[k]));
      }
      /* pointers are filled in once the allocation exists */
      s->sk.cm = n->channels;
      s->sk.d = n->sk.squeeze.cout;
      s->sk.squeeze_w = (const float *) off[0];
      s->sk.squeeze_b = (const float *) off[1];
      s->sk.select_w = (const float *) off[2];
      s->sk.select_b = (const float *) off[3];
      s->sk.project_w = (const float *) off[4];
      s->sk.project_b = (const float *) off[5];
    } else if (n->op == HFAM_OP_ATTENTION) {
      hfam_st_to_f32 (n->attention_weight, s->att_w);
      hfam_st_to_f32 (n->attention_bias, &s->att_b);
    }
  }
  g_mutex_lock (&shared_lock);
  if ((w = find_shared (be))) {
    w->users++;
    be->weights = w->weights;
  }
  fresh = !w;
  if (fresh) {
    /* (not CUDA_TRY: the lock is held) */
    cudaError_t err = cudaMalloc ((void **) &be->weights, MAX (total, 1));
    if (err == cudaSuccess)
      err = cudaMemset (be->weights, 0, MAX (total, 1));
    if (err == cudaSuccess)
      err = cudaMalloc ((void **) &staging, sizeof (float) * max_elems);
    ok = err == cudaSuccess;
    if (!ok) {
      cudaGetLastError ();
      g_set_error (error, HFAM_ERROR, HFAM_ERROR_BACKEND,
                   "cuda backend: weights: allocation failed: %s", cudaGetErrorString (err));
    }
  }

  for (int i = 0; i < g->n_nodes && ok; i++) {
    const HfamNode *n = &g->nodes[i];
    Step *s = &be->steps[i];
    if (n->op == HFAM_OP_CONV && fresh) {
      const HfamConvParams *p = &n->conv;
      const int k = p->kernel, cin_pad = be->steps[n->inputs[0]].cs;
      g_autofree float *plain = hfam_st_dup_f32 (p->weight);
      g_autofree float *bias = g_new0 (float, s->cs);
      g_autofree float *krsc = g_new0 (float, (size_t) s->cs * k * k * cin_pad);
      for (int o = 0; o < p->cout; o++)
        for (int c = 0; c < p->cin; c++)
          for (int r = 0; r < k; r++)
            for (int q = 0; q < k; q++)
              krsc[(((size_t) o * k + r) * k + q) * cin_pad + c] =
                plain[(((size_t) o * p->cin + c) * k + r) * k + q];
      hfam_st_to_f32 (p->bias, bias);
      ok = upload (be, krsc, (size_t) s->cs * k * k * cin_pad, s->weight_offset, TRUE, staging,
                   n->name, error)
           && upload (be, bias, s->cs, s->bias_offset, TRUE, staging, n->name, error);
    } else if (n->op == HFAM_OP_SK_PROJECT) {
      const HfamStTensor *t[6] = { n->sk.squeeze.weight, n->sk.squeeze.bias, n->sk.select.weight,
                                   n->sk.select.bias, n->sk.project.weight, n->sk.project.bias };
      const float **ptr[6] = { &s->sk.squeeze_w, &s->sk.squeeze_b, &s->sk.select_w,
                               &s->sk.select_b, &s->sk.project_w, &s->sk.project_b };
      for (int j = 0; j < 6 && ok; j++) {
        const size_t off = (size_t) *ptr[j];
        if (fresh) {
          g_autofree float *host = hfam_st_dup_f32 (t[j]);
          ok = upload (be, host, hfam_st_n_elements (t[j]), off, FALSE, staging, n->name,
                       error);
        }
        *ptr[j] = (const float *) (be->weights + off);
      }
    }
  }
  cudaFree (staging);
  if (fresh && ok) {
    w = g_new (SharedWeights, 1);
    *w = (SharedWeights) { .graph = g, .context = be->context, .device = be->device,
                           .dtype = be->dtype, .weights = be->weights, .users = 1 };
    shared_weights = g_slist_prepend (shared_weights, w);
  } else if (fresh) {
    /* half loaded is not loaded: the next plan starts over */
    cudaFree (be->weights);
    be->weights = NULL;
  }
  g_mutex_unlock (&shared_lock);
  return ok;
}

void *
conv_weight (const CudaBackend *be, const Slot *slot, int id, int frame)
{
  const Step *s = &be->steps[id];
  return be->base.graph->nodes[id].op == HFAM_OP_SK_PROJECT
           ? slot->arena + s->sk_weight_offset + frame * s->sk_stride
           : be->weights + s->weight_offset;
}

void *
conv_bias (const CudaBackend *be, const Slot *slot, int id, int frame)
{
  const Step *s = &be->steps[id];
  return be->base.graph->nodes[id].op == HFAM_OP_SK_PROJECT
           ? slot->arena + s->sk_bias_offset + frame * s->sk_stride
           : be->weights + s->bias_offset;
}
