// CUDA GEMM and linear layers through cuBLAS, in the three precision modes: FP32 (FP32
// compute, no TF32), TF32 (tensor-op TF32 compute, FP32 storage) and BF16 (operands rounded
// to bf16 by our conversion kernel, products accumulated in FP32, C kept in FP32).
// Row-major C = op(A) op(B) is computed as the column-major C^T = op(B)^T op(A)^T.
// Accumulation: dwt +=, dbias +=, dx =.
#include "core/backend/cuda/internal.cuh"
#include "core/kernels/elementwise.h"

/* ---- bf16 conversion (shared with the convolutions) ---------------------------------------- */
static __global__ void to_bf16_kernel(int64_t total, int64_t cols, int64_t ld, const float *x, uint16_t *y) {
  UNMIX_GRID_STRIDE(t, total) {
    int64_t r = t / cols, c = t - r * cols;
    y[t] = unmix_k_f32_to_bf16(x[r * ld + c]);
  }
}
static __global__ void from_bf16_kernel(int64_t n, const uint16_t *x, float *y, bool accumulate) {
  UNMIX_GRID_STRIDE(i, n) {
    float v = unmix_k_bf16_to_f32(x[i]);
    y[i] = accumulate ? y[i] + v : v;
  }
}

void unmix_cuda_to_bf16(int64_t rows, int64_t cols, int64_t ld, const float *x, uint16_t *y) {
  const int64_t total = rows * cols;
  if (total <= 0) return;
  UNMIX_LAUNCH(to_bf16_kernel, unmix_cuda_blocks(total), UNMIX_CUDA_THREADS, 0, unmix_cuda.stream,
      total, cols, ld, x, y);
  UNMIX_CUDA_LAUNCHED();
}

void unmix_cuda_from_bf16(int64_t n, const uint16_t *x, float *y, bool accumulate) {
  if (n <= 0) return;
  UNMIX_LAUNCH(from_bf16_kernel, unmix_cuda_blocks(n), UNMIX_CUDA_THREADS, 0, unmix_cuda.stream, n, x, y, accumulate);
  UNMIX_CUDA_LAUNCHED();
}

/* ---- GEMM ------------------------------------------------------------------------------------ */
/* C = beta * C for k == 0 (as the CPU op: beta == 0 writes zeros, never reads C). */
static __global__ void beta_scale_kernel(int64_t total, int n, int ldc, float beta, float *c) {
  UNMIX_GRID_STRIDE(t, total) {
    int64_t i = t / n, j = t - i * n;
    float *p = c + i * ldc + j;
    *p = beta == 0.0f ? 0.0f : beta * *p;
  }
}

void unmix_cuda_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                     int ldb, float beta, float *c, int ldc) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    const int64_t total = (int64_t)m * n;
    UNMIX_LAUNCH(beta_scale_kernel, unmix_cuda_blocks(total), UNMIX_CUDA_THREADS, 0, unmix_cuda.stream,
        total, n, ldc, beta, c);
    UNMIX_CUDA_LAUNCHED();
    return;
  }
  const cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (unmix_cuda.prec == UNMIX_PREC_BF16) {
    // Row-major A is (ta ? k x m : m x k) with leading dimension lda; B likewise.
    const int64_t arows = ta ? k : m, acols = ta ? m : k, brows = tb ? n : k, bcols = tb ? k : n;
    uint16_t *a16 = (uint16_t *)unmix_cuda_scratch(UNMIX_SLOT_BF16_A, sizeof(uint16_t) * (size_t)(arows * acols));
    uint16_t *b16 = (uint16_t *)unmix_cuda_scratch(UNMIX_SLOT_BF16_B, sizeof(uint16_t) * (size_t)(brows * bcols));
    unmix_cuda_to_bf16(arows, acols, lda, a, a16);
    unmix_cuda_to_bf16(brows, bcols, ldb, b, b16);
    UNMIX_CUBLAS_CHECK(cublasGemmEx(unmix_cuda.blas, opb, opa, n, m, k, &alpha, b16, CUDA_R_16BF, (int)bcols, a16,
                                    CUDA_R_16BF, (int)acols, &beta, c, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F,
                                    CUBLAS_GEMM_DEFAULT));
    return;
  }
  const cublasComputeType_t ct =
      unmix_cuda.prec == UNMIX_PREC_TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  UNMIX_CUBLAS_CHECK(cublasGemmEx(unmix_cuda.blas, opb, opa, n, m, k, &alpha, b, CUDA_R_32F, ldb, a, CUDA_R_32F, lda,
                                  &beta, c, CUDA_R_32F, ldc, ct, CUBLAS_GEMM_DEFAULT));
}

/* ---- linear ------------------------------------------------------------------------------------ */
static __global__ void bias_rows_kernel(int64_t total, int out, const float *bias, float *y) {
  UNMIX_GRID_STRIDE(t, total) y[t] = bias[t % out];
}

void unmix_cuda_linear_forward(int n, int in, int out, const float *x, const float *wt, const float *bias, float *y) {
  if (n <= 0 || out <= 0) return;
  float beta = 0.0f;
  if (bias) {
    // y = bias, then y = x W^T + 1 * y: one rounding of (x W^T) + b, as the CPU's y += b.
    const int64_t total = (int64_t)n * out;
    UNMIX_LAUNCH(bias_rows_kernel, unmix_cuda_blocks(total), UNMIX_CUDA_THREADS, 0, unmix_cuda.stream,
        total, out, bias, y);
    UNMIX_CUDA_LAUNCHED();
    beta = 1.0f;
  }
  unmix_cuda_gemm(false, true, n, out, in, 1.0f, x, in, wt, in, beta, y, out);
}

void unmix_cuda_linear_backward(int n, int in, int out, const float *dy, const float *x, const float *wt, float *dx,
                                float *dwt, float *dbias) {
  if (dx) unmix_cuda_gemm(false, false, n, in, out, 1.0f, dy, out, wt, in, 0.0f, dx, in);
  if (dwt) unmix_cuda_gemm(true, false, out, in, n, 1.0f, dy, out, x, in, 1.0f, dwt, in);
  if (dbias) unmix_cuda_col_sum_acc(n, out, dy, dbias, true);
}
