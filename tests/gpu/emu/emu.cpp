// The emulator's state, "device" allocation (poisoned host memory), cublasGemmEx on CBLAS in
// cuBLAS's column-major convention (so the backend's row/column-major mapping is exercised),
// and convolution entry points that abort: cuDNN is not emulated.
#include "emu.h"
#include <cblas.h>
extern "C" {
#include "core/backend/backend.h"
#include "core/kernels/elementwise.h"
}
thread_local uint3e threadIdx, blockIdx;
dim3 blockDim, gridDim;
thread_local emu_tls emu_t;
cudaError_t cudaMalloc(void **p, size_t n) {
  if (n > (1ull << 40)) { *p = nullptr; return cudaErrorMemoryAllocation; }
  *p = aligned_alloc(256, (n + 255) / 256 * 256);
  // poison (all bits set: NaN), so an output the kernels never write cannot pass
  if (*p) memset(*p, 0xff, (n + 255) / 256 * 256);
  return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void *p) { free(p); return cudaSuccess; }
static std::vector<float> widen(const void *p, cudaDataType t, size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; i++)
    v[i] = t == CUDA_R_32F ? ((const float *)p)[i] : unmix_k_bf16_to_f32(((const uint16_t *)p)[i]);
  return v;
}
cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType at, int lda, const void *B, cudaDataType bt,
                            int ldb, const void *beta, void *C, cudaDataType ct, int ldc, cublasComputeType_t, int) {
  if (ct != CUDA_R_32F) abort();
  // column-major: A is (ta ? k x m : m x k) with ld lda, i.e. lda * cols elements
  size_t na = (size_t)lda * (ta ? m : k), nb = (size_t)ldb * (tb ? k : n);
  if (ta == CUBLAS_OP_N && lda < m) return CUBLAS_STATUS_INVALID_VALUE;
  if (ta == CUBLAS_OP_T && lda < k) return CUBLAS_STATUS_INVALID_VALUE;
  if (tb == CUBLAS_OP_N && ldb < k) return CUBLAS_STATUS_INVALID_VALUE;
  if (tb == CUBLAS_OP_T && ldb < n) return CUBLAS_STATUS_INVALID_VALUE;
  if (ldc < m) return CUBLAS_STATUS_INVALID_VALUE;
  std::vector<float> a = widen(A, at, na), b = widen(B, bt, nb);
  float be = *(const float *)beta;
  float *c = (float *)C;
  if (be == 0.0f) for (int j = 0; j < n; j++) for (int i = 0; i < m; i++) c[(size_t)j * ldc + i] = 0.0f;
  cblas_sgemm(CblasColMajor, ta == CUBLAS_OP_T ? CblasTrans : CblasNoTrans, tb == CUBLAS_OP_T ? CblasTrans : CblasNoTrans,
              m, n, k, *(const float *)alpha, a.data(), lda, b.data(), ldb, be, c, ldc);
  return CUBLAS_STATUS_SUCCESS;
}
void unmix_cuda_conv_release(void) {}
static void no_conv() { fprintf(stderr, "emu: convolutions are not emulated\n"); abort(); }
void unmix_cuda_conv2d_forward(const struct unmix_conv_geom *, const float *, const float *, float *) { no_conv(); }
void unmix_cuda_conv2d_backward_data(const struct unmix_conv_geom *, const float *, const float *, float *) { no_conv(); }
void unmix_cuda_conv2d_backward_weight(const struct unmix_conv_geom *, const float *, const float *, float *) { no_conv(); }
