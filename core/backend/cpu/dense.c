/* CPU GEMM and linear layers through OpenBLAS SGEMM, or with precision bf16 on a CPU with
 * bf16 units through oneDNN's bf16 matmul (bf16 operands, fp32 accumulation; onednn.h).
 * Accumulation: dwt +=, dbias += (in double), dx =. */
#include <cblas.h>

#include "core/backend/cpu/internal.h"
#include "core/backend/cpu/onednn.h"

/* C = alpha op(A) op(B) + beta C in the precision mode: bf16 where active, else SGEMM. */
static void gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b, int ldb,
                 float beta, float *c, int ldc) {
  if (unmix_cpu_bf16_active() && unmix_dnn_gemm_bf16(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)) return;
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda,
              b, ldb, beta, c, ldc);
}

void unmix_cpu_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                    int ldb, float beta, float *c, int ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (int i = 0; i < m; i++)
      for (int j = 0; j < n; j++) c[(int64_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[(int64_t)i * ldc + j];
    return;
  }
  gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void unmix_cpu_linear_forward(int n, int in, int out, const float *x, const float *wt, const float *bias, float *y) {
  gemm(false, true, n, out, in, 1.0f, x, in, wt, in, 0.0f, y, out);
  if (bias) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
      for (int j = 0; j < out; j++) y[(int64_t)i * out + j] += bias[j];
  }
}

void unmix_cpu_linear_backward(int n, int in, int out, const float *dy, const float *x, const float *wt, float *dx,
                               float *dwt, float *dbias) {
  if (dx) gemm(false, false, n, in, out, 1.0f, dy, out, wt, in, 0.0f, dx, in);
  if (dwt) gemm(true, false, out, in, n, 1.0f, dy, out, x, in, 1.0f, dwt, in);
  if (dbias) {
#pragma omp parallel for schedule(static)
    for (int j = 0; j < out; j++) {
      double s = 0.0;
      for (int i = 0; i < n; i++) s += dy[(int64_t)i * out + j];
      dbias[j] += (float)s;
    }
  }
}
