// Emulated CUDA device (TEST INFRASTRUCTURE): cuBLAS's GemmEx and handle calls, implemented from
// cuBLAS's documentation on the CPU. Column-major C = alpha*op(A)*op(B) + beta*C with leading
// dimensions; the documented argument checks return cuBLAS's status codes; valid calls that the
// emulator does not implement stop through emu_fail instead of returning a wrong answer.
#include <cblas.h>

#include <cstdio>
#include <cstring>
#include <vector>

#include "cublas_v2.h"
#include "emu.h"
#include "emu_libs.h"

namespace {
const uint32_t kHandleMagic = 0xb1a5b1a5u;
}

struct cublasContext {
  uint32_t magic;
  cudaStream_t stream;
  cublasMath_t math;
  cublasPointerMode_t pointer_mode;
};

static bool valid(cublasHandle_t h) { return h && h->magic == kHandleMagic; }

extern "C" {

cublasStatus_t cublasCreate(cublasHandle_t *handle) {
  if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
  cublasContext *c = new cublasContext;
  c->magic = kHandleMagic;
  c->stream = nullptr; // the legacy default stream, as a new handle has
  c->math = CUBLAS_DEFAULT_MATH;
  c->pointer_mode = CUBLAS_POINTER_MODE_HOST;
  *handle = c;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  if (!valid(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  emu_stream_drain(handle->stream); // cuBLAS synchronises the handle's work before releasing it
  handle->magic = 0;
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  if (!valid(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream(cublasHandle_t handle, cudaStream_t *stream) {
  if (!valid(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!stream) return CUBLAS_STATUS_INVALID_VALUE;
  *stream = handle->stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
  if (!valid(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  const int base = (int)mode & 0xf, flags = (int)mode & ~0xf;
  if (base > CUBLAS_TF32_TENSOR_OP_MATH || (flags & ~CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION))
    return CUBLAS_STATUS_INVALID_VALUE;
  handle->math = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetMathMode(cublasHandle_t handle, cublasMath_t *mode) {
  if (!valid(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = handle->math;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetPointerMode(cublasHandle_t handle, cublasPointerMode_t mode) {
  if (!valid(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (mode != CUBLAS_POINTER_MODE_HOST && mode != CUBLAS_POINTER_MODE_DEVICE) return CUBLAS_STATUS_INVALID_VALUE;
  handle->pointer_mode = mode;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetPointerMode(cublasHandle_t handle, cublasPointerMode_t *mode) {
  if (!valid(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (!mode) return CUBLAS_STATUS_INVALID_VALUE;
  *mode = handle->pointer_mode;
  return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusName(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

const char *cublasGetStatusString(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
  }
  return "unknown error";
}

} // extern "C"

/* ---- GemmEx --------------------------------------------------------------------------------- */
namespace {

enum class Rounding { none, tf32, bf16, fp16 };

size_t type_size(cudaDataType t) {
  switch (t) {
    case CUDA_R_32F: return 4;
    case CUDA_R_64F: return 8;
    case CUDA_R_16F: case CUDA_R_16BF: return 2;
    case CUDA_R_8I: return 1;
    case CUDA_R_32I: return 4;
  }
  return 0;
}

/* The (A, B, C, compute) combinations cuBLAS documents for cublasGemmEx that we implement; the
 * scale type (alpha, beta) follows the compute type: double for 64F, float otherwise. */
bool supported(cudaDataType at, cudaDataType bt, cudaDataType ct, cublasComputeType_t comp) {
  if (at != bt) return false;
  switch (comp) {
    case CUBLAS_COMPUTE_32F: case CUBLAS_COMPUTE_32F_PEDANTIC:
      if (at == CUDA_R_32F) return ct == CUDA_R_32F;
      if (at == CUDA_R_16BF) return ct == CUDA_R_16BF || ct == CUDA_R_32F;
      if (at == CUDA_R_16F) return ct == CUDA_R_16F || ct == CUDA_R_32F;
      return false; // (8I, 8I, 32F) exists in cuBLAS but is not emulated: NOT_SUPPORTED here
    case CUBLAS_COMPUTE_32F_FAST_16F: case CUBLAS_COMPUTE_32F_FAST_16BF: case CUBLAS_COMPUTE_32F_FAST_TF32:
      return at == CUDA_R_32F && ct == CUDA_R_32F;
    case CUBLAS_COMPUTE_64F: case CUBLAS_COMPUTE_64F_PEDANTIC:
      return at == CUDA_R_64F && ct == CUDA_R_64F;
  }
  return false;
}

bool valid_algo(int algo) { return algo == -1 || (algo >= 0 && algo <= 23) || (algo >= 99 && algo <= 115); }

/* The rounding the compute type (and, for plain 32F, the handle's math mode) applies to fp32
 * operands on a tensor-core GPU; bf16/fp16 operands are already exact in fp32. */
Rounding rounding_for(cudaDataType at, cublasComputeType_t comp, cublasMath_t math) {
  if (at != CUDA_R_32F) return Rounding::none;
  if (comp == CUBLAS_COMPUTE_32F_FAST_TF32) return Rounding::tf32;
  if (comp == CUBLAS_COMPUTE_32F_FAST_16BF) return Rounding::bf16;
  if (comp == CUBLAS_COMPUTE_32F_FAST_16F) return Rounding::fp16;
  if (comp == CUBLAS_COMPUTE_32F && ((int)math & 0xf) == CUBLAS_TF32_TENSOR_OP_MATH) return Rounding::tf32;
  return Rounding::none;
}

double load(const void *p, cudaDataType t, size_t i, Rounding r) {
  double v = 0;
  switch (t) {
    case CUDA_R_32F: {
      float f = ((const float *)p)[i];
      if (r == Rounding::tf32) f = emu_round_tf32(f);
      else if (r == Rounding::bf16) f = emu_round_bf16(f);
      else if (r == Rounding::fp16) f = (float)(_Float16)f;
      v = f;
      break;
    }
    case CUDA_R_64F: v = ((const double *)p)[i]; break;
    case CUDA_R_16BF: v = emulib_bf16_to_float(((const uint16_t *)p)[i]); break;
    case CUDA_R_16F: { _Float16 h; memcpy(&h, (const uint16_t *)p + i, 2); v = (double)h; break; }
    default: emu_fail("cublasGemmEx: element type %d is not emulated", (int)t);
  }
  return v;
}

void store(void *p, cudaDataType t, size_t i, double v) {
  switch (t) {
    case CUDA_R_32F: ((float *)p)[i] = (float)v; break;
    case CUDA_R_64F: ((double *)p)[i] = v; break;
    case CUDA_R_16BF: ((uint16_t *)p)[i] = emulib_float_to_bf16((float)v); break;
    case CUDA_R_16F: { _Float16 h = (_Float16)(float)v; memcpy((uint16_t *)p + i, &h, 2); break; }
    default: emu_fail("cublasGemmEx: element type %d is not emulated", (int)t);
  }
}

/* Bytes spanned by a column-major rows x cols matrix with leading dimension ld. */
size_t span(int rows, int cols, int ld, size_t el) {
  if (rows <= 0 || cols <= 0) return 0;
  return ((size_t)ld * (size_t)(cols - 1) + (size_t)rows) * el;
}

} // namespace

extern "C" cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                       int m, int n, int k, const void *alpha, const void *A, cudaDataType Atype,
                                       int lda, const void *B, cudaDataType Btype, int ldb, const void *beta, void *C,
                                       cudaDataType Ctype, int ldc, cublasComputeType_t computeType,
                                       cublasGemmAlgo_t algo) {
  if (!valid(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
  const bool ok_op = (transa == CUBLAS_OP_N || transa == CUBLAS_OP_T || transa == CUBLAS_OP_C) &&
                     (transb == CUBLAS_OP_N || transb == CUBLAS_OP_T || transb == CUBLAS_OP_C);
  if (!ok_op || m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
  const bool ta = transa != CUBLAS_OP_N, tb = transb != CUBLAS_OP_N; // OP_C == OP_T for real types
  const int arows = ta ? k : m, acols = ta ? m : k, brows = tb ? n : k, bcols = tb ? k : n;
  if (lda < (arows > 1 ? arows : 1) || ldb < (brows > 1 ? brows : 1) || ldc < (m > 1 ? m : 1))
    return CUBLAS_STATUS_INVALID_VALUE;
  if (!supported(Atype, Btype, Ctype, computeType) || !valid_algo((int)algo)) return CUBLAS_STATUS_NOT_SUPPORTED;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS; // quick return, nothing is read
  if (!alpha || !beta) return CUBLAS_STATUS_INVALID_VALUE;

  emu_set_current_call("cublasGemmEx");
  const bool f64 = computeType == CUBLAS_COMPUTE_64F || computeType == CUBLAS_COMPUTE_64F_PEDANTIC;
  const size_t scale_bytes = f64 ? 8 : 4;
  const bool dev_scalars = handle->pointer_mode == CUBLAS_POINTER_MODE_DEVICE;
  double alpha_h = 0, beta_h = 0;
  if (dev_scalars) {
    emu_check_device_range(alpha, scale_bytes, "cublasGemmEx alpha (device pointer mode)");
    emu_check_device_range(beta, scale_bytes, "cublasGemmEx beta (device pointer mode)");
  } else { // host pointer mode: read now; the caller may reuse the variables once we return
    alpha_h = f64 ? *(const double *)alpha : *(const float *)alpha;
    beta_h = f64 ? *(const double *)beta : *(const float *)beta;
  }
  const size_t ea = type_size(Atype), ec = type_size(Ctype);
  emu_check_device_range(C, span(m, n, ldc, ec), "cublasGemmEx C");
  if (k > 0) {
    emu_check_device_range(A, span(arows, acols, lda, ea), "cublasGemmEx A");
    emu_check_device_range(B, span(brows, bcols, ldb, ea), "cublasGemmEx B");
  }
  const Rounding rnd = rounding_for(Atype, computeType, handle->math);
  emu_set_current_call(nullptr);

  emu_stream_enqueue(handle->stream, [=] {
    emu_device_access access;
    emu_set_current_call("cublasGemmEx (on its stream)");
    double al = alpha_h, be = beta_h;
    if (dev_scalars) {
      al = f64 ? *(const double *)alpha : *(const float *)alpha;
      be = f64 ? *(const double *)beta : *(const float *)beta;
    }
    // op(A) as m rows of k and op(B) as n rows of k, widened (and rounded as the math mode says)
    // once, so the dot products below run over contiguous memory.
    const bool reads_ab = k > 0 && al != 0.0;
    std::vector<double> a, b;
    if (reads_ab) {
      a.resize((size_t)m * k);
      b.resize((size_t)n * k);
      for (int i = 0; i < m; i++)
        for (int l = 0; l < k; l++)
          a[(size_t)i * k + l] = load(A, Atype, ta ? (size_t)i * lda + l : (size_t)l * lda + i, rnd);
      for (int j = 0; j < n; j++)
        for (int l = 0; l < k; l++)
          b[(size_t)j * k + l] = load(B, Btype, tb ? (size_t)l * ldb + j : (size_t)j * ldb + l, rnd);
    }
    // ab[j][i] = sum_l op(A)[i][l] op(B)[l][j], in double (cblas_dgemm: a plain reference, fast
    // enough for emulated training)
    std::vector<double> ab;
    if (reads_ab) {
      ab.resize((size_t)m * n);
      cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, m, k, 1.0, b.data(), k, a.data(), k, 0.0, ab.data(), m);
    }
    for (int j = 0; j < n; j++)
      for (int i = 0; i < m; i++) {
        const double acc = reads_ab ? ab[(size_t)j * m + i] : 0.0;
        const size_t ci = (size_t)j * ldc + i;
        // beta == 0: C is write-only (a NaN there must not leak into the result)
        const double old = be == 0.0 ? 0.0 : load(C, Ctype, ci, Rounding::none);
        store(C, Ctype, ci, al * acc + (be == 0.0 ? 0.0 : be * old));
      }
    emu_set_current_call(nullptr);
  });
  return CUBLAS_STATUS_SUCCESS;
}
