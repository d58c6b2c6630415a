/* cuBLASLt's matrix products, as the CUDA backend (model/engine/cuda/) calls them, for the CUDA
 * emulator (README.md here): cublasLt.h, computed on the CPU. Each product is queued on its
 * stream and runs when the stream does, with the descriptors and the host scalars as they were
 * at the call, as on a GPU; it is captured into a graph like a launch.
 *
 * What it refuses that cuBLASLt refuses too: null arguments, layouts whose m, n and k do not
 * agree, a bias epilogue without a bias, an algorithm given pointers less aligned than the
 * heuristic was promised. What it refuses that cuBLASLt would not: data or bias that is not
 * device memory over the whole extent, a product whose output overlaps its inputs. Each
 * refusal says why on stderr. The workspace an algorithm uses is filled with 0xff bytes.
 *
 * What it cannot show: speed; the real algorithms' order of summation (here in double,
 * rounded once to the output type). */
#include "cublasLt.h"
#include "dnn-common.h"

#include <algorithm>
#include <cinttypes>
#include <vector>

using namespace hfam_emu_dnn;

struct cublasLtContext {};

struct HfamEmuLtMatmulDesc {
  cublasOperation_t trans_a = CUBLAS_OP_N, trans_b = CUBLAS_OP_N;
  cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  const void *bias = nullptr;
};

struct HfamEmuLtMatrixLayout {
  cudaDataType_t type;
  uint64_t rows, cols;
  int64_t ld;
};

struct HfamEmuLtPreference {
  uint64_t max_workspace = 0;
  uint32_t alignment[4] = { 256, 256, 256, 256 }; /* A, B, C, D */
};

namespace {

/* The emulator's algorithms, in the order its heuristic offers them: a tiled kernel with 16-byte
 * loads, the same split over k with fp32 partial sums in a workspace, and a kernel of single
 * elements that any alignment suits. An algorithm keeps its kind in data[0], tagged. */
enum LtKind : uint64_t { LT_TILED, LT_SPLIT_K, LT_SCALAR, LT_KINDS };
const uint64_t LT_TAG = 0x48464d4c54000000ull;

size_t
lt_elem (cudaDataType_t type)
{
  return type == CUDA_R_16F ? 2 : 4;
}

size_t
lt_alignment (uint64_t kind, cudaDataType_t type)
{
  return kind == LT_SCALAR ? lt_elem (type) : 16;
}

size_t
lt_workspace (uint64_t kind, uint64_t m, uint64_t n)
{
  return kind == LT_SPLIT_K ? sizeof (float) * m * n : 0;
}

bool
has_bias (cublasLtEpilogue_t epilogue)
{
  return epilogue == CUBLASLT_EPILOGUE_BIAS || epilogue == CUBLASLT_EPILOGUE_RELU_BIAS;
}

bool
has_relu (cublasLtEpilogue_t epilogue)
{
  return epilogue == CUBLASLT_EPILOGUE_RELU || epilogue == CUBLASLT_EPILOGUE_RELU_BIAS;
}

/* A product's descriptors as they were at the call, and its m, n, k. */
struct Product {
  HfamEmuLtMatmulDesc op;
  HfamEmuLtMatrixLayout a, b, c, d;
  uint64_t m, n, k;
};

/* Elements from a matrix's first to its last. */
uint64_t
extent (const HfamEmuLtMatrixLayout &l)
{
  return (uint64_t) l.ld * (l.cols - 1) + l.rows;
}

cublasStatus_t
describe_product (const char *api, const HfamEmuLtMatmulDesc *op, const HfamEmuLtMatrixLayout *a,
                  const HfamEmuLtMatrixLayout *b, const HfamEmuLtMatrixLayout *c,
                  const HfamEmuLtMatrixLayout *d, Product *out)
{
  if (!op || !a || !b || !c || !d) {
    complain ("%s: a descriptor or layout is null", api);
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  const bool ta = op->trans_a == CUBLAS_OP_T, tb = op->trans_b == CUBLAS_OP_T;
  const uint64_t m = ta ? a->cols : a->rows, k = ta ? a->rows : a->cols;
  const uint64_t kb = tb ? b->cols : b->rows, n = tb ? b->rows : b->cols;
  if (m != d->rows || n != d->cols || k != kb || c->rows != d->rows || c->cols != d->cols) {
    complain ("%s: op(A) is %" PRIu64 "x%" PRIu64 ", op(B) %" PRIu64 "x%" PRIu64 ", C %" PRIu64
              "x%" PRIu64 ", D %" PRIu64 "x%" PRIu64, api, m, k, kb, n, c->rows, c->cols,
              d->rows, d->cols);
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  if (a->type != b->type || c->type != d->type) {
    complain ("%s: A and B, or C and D, are not of one type", api);
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  if (a->type == CUDA_R_32F && d->type == CUDA_R_16F) {
    complain ("%s: fp32 inputs to an fp16 output", api);
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  *out = { *op, *a, *b, *c, *d, m, n, k };
  return CUBLAS_STATUS_SUCCESS;
}

/* Whether an algorithm of `kind` takes the product, given the alignments the preference
 * promises (A, B, C, D) and the bias pointer's own. */
bool
lt_takes (uint64_t kind, const Product &p, const uint32_t promised[4])
{
  const HfamEmuLtMatrixLayout *layouts[4] = { &p.a, &p.b, &p.c, &p.d };
  for (int i = 0; i < 4; i++) {
    const size_t need = lt_alignment (kind, layouts[i]->type);
    if (promised[i] < need || (layouts[i]->ld * lt_elem (layouts[i]->type)) % need)
      return false;
  }
  return !has_bias (p.op.epilogue)
         || (uintptr_t) p.op.bias % lt_alignment (kind, p.d.type) == 0;
}

void
multiply (const Product &p, float alpha, float beta, const void *a, const void *b, const void *c,
          void *d)
{
  const bool half_in = p.a.type == CUDA_R_16F, half_out = p.d.type == CUDA_R_16F;
  const bool ta = p.op.trans_a == CUBLAS_OP_T, tb = p.op.trans_b == CUBLAS_OP_T;
  /* op(A) by rows and op(B) by columns, each as k contiguous floats */
  std::vector<float> as (p.m * p.k), bs (p.n * p.k);

  for (uint64_t i = 0; i < p.m; i++)
    for (uint64_t l = 0; l < p.k; l++)
      as[i * p.k + l] = load (a, ta ? l + i * p.a.ld : i + l * p.a.ld, half_in);
  for (uint64_t j = 0; j < p.n; j++)
    for (uint64_t l = 0; l < p.k; l++)
      bs[j * p.k + l] = load (b, tb ? j + l * p.b.ld : l + j * p.b.ld, half_in);
  for (uint64_t j = 0; j < p.n; j++)
    for (uint64_t i = 0; i < p.m; i++) {
      double sum = 0.0, v;
      for (uint64_t l = 0; l < p.k; l++)
        sum += (double) as[i * p.k + l] * bs[j * p.k + l];
      v = alpha * sum;
      if (beta != 0.0f)
        v += beta * (double) load (c, i + j * p.c.ld, half_out);
      if (has_bias (p.op.epilogue))
        v += load (p.op.bias, i, half_out);
      if (has_relu (p.op.epilogue))
        v = v > 0.0 ? v : 0.0; /* NaN too, as cuBLASLt's ReLU does */
      store (d, i + j * p.d.ld, half_out, v);
    }
}

} // namespace

extern "C" {

const char *
cublasLtGetStatusString (cublasStatus_t status)
{
  static const std::pair<cublasStatus_t, const char *> names[] = {
    NAMED (CUBLAS_STATUS_SUCCESS),          NAMED (CUBLAS_STATUS_NOT_INITIALIZED),
    NAMED (CUBLAS_STATUS_ALLOC_FAILED),     NAMED (CUBLAS_STATUS_INVALID_VALUE),
    NAMED (CUBLAS_STATUS_EXECUTION_FAILED), NAMED (CUBLAS_STATUS_INTERNAL_ERROR),
    NAMED (CUBLAS_STATUS_NOT_SUPPORTED),
  };
  return name_of (status, names);
}

cublasStatus_t
cublasLtCreate (cublasLtHandle_t *handle)
{
  return create (handle, CUBLAS_STATUS_INVALID_VALUE);
}

cublasStatus_t
cublasLtDestroy (cublasLtHandle_t handle)
{
  ApiGuard guard (hfam_emu::api_lock ());
  if (!handle)
    return CUBLAS_STATUS_NOT_INITIALIZED;
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t
cublasLtMatmulDescCreate (cublasLtMatmulDesc_t *desc, cublasComputeType_t compute_type,
                          cudaDataType_t scale_type)
{
  ApiGuard guard (hfam_emu::api_lock ());
  if (!desc || compute_type != CUBLAS_COMPUTE_32F || scale_type != CUDA_R_32F)
    return CUBLAS_STATUS_INVALID_VALUE;
  *desc = new HfamEmuLtMatmulDesc {};
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t
cublasLtMatmulDescDestroy (cublasLtMatmulDesc_t desc)
{
  return destroy<cublasStatus_t> (desc);
}

cublasStatus_t
cublasLtMatmulDescSetAttribute (cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr,
                                const void *buf, size_t size)
{
  ApiGuard guard (hfam_emu::api_lock ());
  int32_t value;

  if (!desc || !buf)
    return CUBLAS_STATUS_INVALID_VALUE;
  switch (attr) {
  case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
    if (size != sizeof (void *))
      return CUBLAS_STATUS_INVALID_VALUE;
    std::memcpy (&desc->bias, buf, size);
    return CUBLAS_STATUS_SUCCESS;
  case CUBLASLT_MATMUL_DESC_TRANSA:
  case CUBLASLT_MATMUL_DESC_TRANSB:
  case CUBLASLT_MATMUL_DESC_EPILOGUE:
    if (size != sizeof value)
      return CUBLAS_STATUS_INVALID_VALUE;
    std::memcpy (&value, buf, size);
    if (attr == CUBLASLT_MATMUL_DESC_EPILOGUE) {
      if (value != CUBLASLT_EPILOGUE_DEFAULT && value != CUBLASLT_EPILOGUE_RELU
          && value != CUBLASLT_EPILOGUE_BIAS && value != CUBLASLT_EPILOGUE_RELU_BIAS)
        return CUBLAS_STATUS_INVALID_VALUE;
      desc->epilogue = (cublasLtEpilogue_t) value;
      return CUBLAS_STATUS_SUCCESS;
    }
    if (value != CUBLAS_OP_N && value != CUBLAS_OP_T)
      return CUBLAS_STATUS_INVALID_VALUE;
    (attr == CUBLASLT_MATMUL_DESC_TRANSA ? desc->trans_a : desc->trans_b)
      = (cublasOperation_t) value;
    return CUBLAS_STATUS_SUCCESS;
  }
  return CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t
cublasLtMatrixLayoutCreate (cublasLtMatrixLayout_t *layout, cudaDataType type, uint64_t rows,
                            uint64_t cols, int64_t ld)
{
  ApiGuard guard (hfam_emu::api_lock ());
  if (!layout || (type != CUDA_R_16F && type != CUDA_R_32F) || !rows || !cols
      || ld < (int64_t) rows)
    return CUBLAS_STATUS_INVALID_VALUE;
  *layout = new HfamEmuLtMatrixLayout { type, rows, cols, ld };
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t
cublasLtMatrixLayoutDestroy (cublasLtMatrixLayout_t layout)
{
  return destroy<cublasStatus_t> (layout);
}

cublasStatus_t
cublasLtMatmulPreferenceCreate (cublasLtMatmulPreference_t *pref)
{
  return create (pref, CUBLAS_STATUS_INVALID_VALUE);
}

cublasStatus_t
cublasLtMatmulPreferenceDestroy (cublasLtMatmulPreference_t pref)
{
  return destroy<cublasStatus_t> (pref);
}

cublasStatus_t
cublasLtMatmulPreferenceSetAttribute (cublasLtMatmulPreference_t pref,
                                      cublasLtMatmulPreferenceAttributes_t attr, const void *buf,
                                      size_t size)
{
  ApiGuard guard (hfam_emu::api_lock ());
  if (!pref || !buf)
    return CUBLAS_STATUS_INVALID_VALUE;
  switch (attr) {
  case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES:
    if (size != sizeof pref->max_workspace)
      return CUBLAS_STATUS_INVALID_VALUE;
    std::memcpy (&pref->max_workspace, buf, size);
    return CUBLAS_STATUS_SUCCESS;
  case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES:
  case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES:
  case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES:
  case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES:
    if (size != sizeof (uint32_t))
      return CUBLAS_STATUS_INVALID_VALUE;
    std::memcpy (&pref->alignment[attr - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES], buf, size);
    return CUBLAS_STATUS_SUCCESS;
  }
  return CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t
cublasLtMatmulAlgoGetHeuristic (cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                cublasLtMatrixLayout_t a_desc, cublasLtMatrixLayout_t b_desc,
                                cublasLtMatrixLayout_t c_desc, cublasLtMatrixLayout_t d_desc,
                                cublasLtMatmulPreference_t pref, int requested,
                                cublasLtMatmulHeuristicResult_t results[], int *returned)
{
  ApiGuard guard (hfam_emu::api_lock ());
  Product p;
  cublasStatus_t st;
  int n = 0;

  if (!handle || !pref || requested < 1 || !results || !returned)
    return CUBLAS_STATUS_INVALID_VALUE;
  if ((st = describe_product ("cublasLtMatmulAlgoGetHeuristic", desc, a_desc, b_desc, c_desc,
                              d_desc, &p))
      != CUBLAS_STATUS_SUCCESS)
    return st;
  for (uint64_t kind = 0; kind < LT_KINDS && n < requested; kind++) {
    const size_t workspace = lt_workspace (kind, p.m, p.n);
    if (!lt_takes (kind, p, pref->alignment) || workspace > pref->max_workspace)
      continue;
    results[n] = {};
    results[n].algo.data[0] = LT_TAG | kind;
    results[n].workspaceSize = workspace;
    results[n].state = CUBLAS_STATUS_SUCCESS;
    results[n].wavesCount = 1.0f;
    n++;
  }
  *returned = n;
  return n ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_SUPPORTED;
}

cublasStatus_t
cublasLtMatmul (cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void *alpha,
                const void *a, cublasLtMatrixLayout_t a_desc, const void *b,
                cublasLtMatrixLayout_t b_desc, const void *beta, const void *c,
                cublasLtMatrixLayout_t c_desc, void *d, cublasLtMatrixLayout_t d_desc,
                const cublasLtMatmulAlgo_t *algo, void *workspace, size_t workspace_bytes,
                cudaStream_t stream)
{
  ApiGuard guard (hfam_emu::api_lock ());
  const char *api = "cublasLtMatmul";
  Product p;
  cublasStatus_t st;

  if (!handle || !alpha || !beta || !algo) {
    complain ("%s: the handle, alpha, beta or the algorithm is null", api);
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  if ((st = describe_product (api, desc, a_desc, b_desc, c_desc, d_desc, &p))
      != CUBLAS_STATUS_SUCCESS)
    return st;
  const uint64_t kind = algo->data[0] ^ LT_TAG;
  if (kind >= LT_KINDS) {
    complain ("%s: the algorithm is none that cublasLtMatmulAlgoGetHeuristic gave", api);
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  const size_t need = lt_workspace (kind, p.m, p.n);
  if (workspace_bytes < need) {
    complain ("%s: the algorithm needs %zu bytes of workspace, given %zu", api, need,
              workspace_bytes);
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  if (has_bias (p.op.epilogue) && !p.op.bias) {
    complain ("%s: a bias epilogue without a bias pointer", api);
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  const float scale_a = *static_cast<const float *> (alpha);
  const float scale_b = *static_cast<const float *> (beta);
  const size_t a_bytes = extent (p.a) * lt_elem (p.a.type);
  const size_t b_bytes = extent (p.b) * lt_elem (p.b.type);
  const size_t d_bytes = extent (p.d) * lt_elem (p.d.type);
  if (!device_memory (api, "A", a, a_bytes) || !device_memory (api, "B", b, b_bytes)
      || !device_memory (api, "D", d, d_bytes)
      || (scale_b != 0.0f
          && !device_memory (api, "C", c, extent (p.c) * lt_elem (p.c.type)))
      || (has_bias (p.op.epilogue)
          && !device_memory (api, "the bias", p.op.bias, p.m * lt_elem (p.d.type)))
      || (need && !device_memory (api, "the workspace", workspace, need)))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (c == d && (p.c.type != p.d.type || p.c.ld != p.d.ld)) {
    complain ("%s: C is D in another layout", api);
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  if (overlap (a, a_bytes, d, d_bytes) || overlap (b, b_bytes, d, d_bytes)) {
    complain ("%s: D overlaps A or B", api);
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  const struct {
    const char *name;
    const void *p;
    cudaDataType_t type;
  } pointers[5] = { { "A", a, p.a.type }, { "B", b, p.b.type }, { "C", c, p.c.type },
                    { "D", d, p.d.type },
                    { "the bias", has_bias (p.op.epilogue) ? p.op.bias : nullptr, p.d.type } };
  for (const auto &q : pointers)
    if ((uintptr_t) q.p % lt_alignment (kind, q.type)) {
      complain ("%s: %s (%p) is not aligned to the %zu bytes that the algorithm needs (the "
                "heuristic offered it for pointers aligned so)", api, q.name, q.p,
                lt_alignment (kind, q.type));
      return CUBLAS_STATUS_NOT_SUPPORTED;
    }
  const double outputs = (double) p.m * p.n;
  return queue (stream, hfam_emu::product_cost (outputs * p.k, outputs, p.d.type == CUDA_R_16F),
                workspace, need,
                [p, scale_a, scale_b, a, b, c, d] { multiply (p, scale_a, scale_b, a, b, c, d); })
           ? CUBLAS_STATUS_SUCCESS
           : CUBLAS_STATUS_EXECUTION_FAILED;
}

} // extern "C"
