/* The emulated device's cuBLAS, cuDNN and NCCL (core/backend/cuda/emu/emu_{cublas,cudnn,nccl}.cpp)
 * against independent naive computations written here from the libraries' documented semantics:
 * odd shapes, every layout/transpose/mode (and a wrong one must give a wrong answer), alpha/beta
 * blending, tf32/bf16 rounding, the argument checks with their status codes, and the NCCL
 * collectives across 2 forked ranks, each with its own emulated device. */
#include <check.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <math.h>
#include <nccl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/testutil.h"

/* ---- helpers --------------------------------------------------------------------------------- */
static uint32_t g_rng = 12345u;
static double urand(void) { /* in [-1, 1), with all 24 bits of a float's mantissa in use */
  g_rng = g_rng * 1664525u + 1013904223u;
  return (double)(g_rng >> 8) / (double)(1u << 23) - 1.0;
}
static void *dev(const void *host, size_t bytes) {
  void *d = NULL;
  ck_assert_int_eq(cudaMalloc(&d, bytes), cudaSuccess);
  if (host) ck_assert_int_eq(cudaMemcpy(d, host, bytes, cudaMemcpyHostToDevice), cudaSuccess);
  return d;
}
static void get(void *host, const void *d, size_t bytes) {
  ck_assert_int_eq(cudaDeviceSynchronize(), cudaSuccess);
  ck_assert_int_eq(cudaMemcpy(host, d, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
}
static float f32_from_bits(uint32_t u) {
  float f;
  memcpy(&f, &u, 4);
  return f;
}
static uint16_t bf16_bits(float f) { /* only for values exact in bf16 */
  uint32_t u;
  memcpy(&u, &f, 4);
  ck_assert_msg((u & 0xffffu) == 0, "%g is not exact in bf16", (double)f);
  return (uint16_t)(u >> 16);
}
static float bf16_value(uint16_t h) { return f32_from_bits((uint32_t)h << 16); }
/* max |got - want| / (1 + |want|) */
static double max_err(const float *got, const double *want, size_t n) {
  double e = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - want[i]) / (1.0 + fabs(want[i]));
    if (!(d <= e)) e = d; /* NaN propagates */
  }
  return e;
}

/* ---- cuBLAS ------------------------------------------------------------------------------------ */
/* Column-major reference: C = alpha op(A) op(B) + beta C over the m x n block; ld padding kept. */
static void gemm_ref(int ta, int tb, int m, int n, int k, double alpha, const float *a, int lda, const float *b,
                     int ldb, double beta, const float *c0, int ldc, double *out) {
  for (int j = 0; j < n; j++)
    for (int i = 0; i < m; i++) {
      double s = 0;
      for (int l = 0; l < k; l++) {
        double av = ta ? a[(size_t)i * lda + l] : a[(size_t)l * lda + i];
        double bv = tb ? b[(size_t)l * ldb + j] : b[(size_t)j * ldb + l];
        s += av * bv;
      }
      out[(size_t)j * ldc + i] = alpha * s + beta * c0[(size_t)j * ldc + i];
    }
}

START_TEST(test_gemm_transposes_and_leading_dims) {
  cublasHandle_t h;
  ck_assert_int_eq(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
  const int m = 5, n = 7, k = 11;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      const int lda = (ta ? k : m) + 3, ldb = (tb ? n : k) + 2, ldc = m + 4;
      const int acols = ta ? m : k, bcols = tb ? k : n;
      size_t na = (size_t)lda * acols, nb = (size_t)ldb * bcols, nc = (size_t)ldc * n;
      float *a = malloc(na * 4), *b = malloc(nb * 4), *c = malloc(nc * 4), *got = malloc(nc * 4);
      double *want = malloc(nc * 8);
      for (size_t i = 0; i < na; i++) a[i] = (float)urand();
      for (size_t i = 0; i < nb; i++) b[i] = (float)urand();
      for (size_t i = 0; i < nc; i++) c[i] = (float)urand();
      for (size_t i = 0; i < nc; i++) want[i] = c[i]; /* rows m..ldc-1 must stay as they were */
      const float alpha = 0.75f, beta = -0.5f;
      gemm_ref(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, want);
      float *da = dev(a, na * 4), *db = dev(b, nb * 4), *dc = dev(c, nc * 4);
      ck_assert_int_eq(cublasGemmEx(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, &alpha,
                                    da, CUDA_R_32F, lda, db, CUDA_R_32F, ldb, &beta, dc, CUDA_R_32F, ldc,
                                    CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                       CUBLAS_STATUS_SUCCESS);
      get(got, dc, nc * 4);
      double e = max_err(got, want, nc);
      ck_assert_msg(e < 1e-6, "gemm ta=%d tb=%d: error %g", ta, tb, e);
      /* the transpose flag matters: the other op on A gives a different (wrong) product */
      if (!ta) {
        const int ldat = k + 3; /* reinterpret A's storage as k x m (only when it fits) */
        if ((size_t)ldat * m <= na) {
          ck_assert_int_eq(cudaMemcpy(dc, c, nc * 4, cudaMemcpyHostToDevice), cudaSuccess);
          ck_assert_int_eq(cublasGemmEx(h, CUBLAS_OP_T, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k, &alpha, da,
                                        CUDA_R_32F, ldat, db, CUDA_R_32F, ldb, &beta, dc, CUDA_R_32F, ldc,
                                        CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                           CUBLAS_STATUS_SUCCESS);
          get(got, dc, nc * 4);
          ck_assert_msg(max_err(got, want, nc) > 1e-2, "gemm: OP_T on OP_N data still matched");
        }
      }
      cudaFree(da), cudaFree(db), cudaFree(dc);
      free(a), free(b), free(c), free(got), free(want);
    }
  ck_assert_int_eq(cublasDestroy(h), CUBLAS_STATUS_SUCCESS);
}
END_TEST

START_TEST(test_gemm_beta_zero_ignores_c_and_device_pointer_mode) {
  cublasHandle_t h;
  ck_assert_int_eq(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
  const int m = 3, n = 2, k = 4;
  float a[12], b[8], c[6], got[6];
  double want[6], zero6[6] = {0};
  float zc[6] = {0};
  for (int i = 0; i < 12; i++) a[i] = (float)urand();
  for (int i = 0; i < 8; i++) b[i] = (float)urand();
  for (int i = 0; i < 6; i++) c[i] = NAN;
  gemm_ref(0, 0, m, n, k, 2.0, a, m, b, k, 0.0, zc, m, want);
  (void)zero6;
  float *da = dev(a, sizeof a), *db = dev(b, sizeof b), *dc = dev(c, sizeof c);
  const float alpha = 2.0f, beta = 0.0f;
  ck_assert_int_eq(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, &alpha, da, CUDA_R_32F, m, db, CUDA_R_32F, k,
                                &beta, dc, CUDA_R_32F, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                   CUBLAS_STATUS_SUCCESS);
  get(got, dc, sizeof got);
  ck_assert_msg(max_err(got, want, 6) < 1e-6, "beta = 0 must not read C (NaN there)");
  /* device pointer mode: alpha and beta are read from device memory when the GEMM runs */
  float scal[2] = {-1.0f, 0.0f};
  float *dscal = dev(scal, sizeof scal);
  ck_assert_int_eq(cublasSetPointerMode(h, CUBLAS_POINTER_MODE_DEVICE), CUBLAS_STATUS_SUCCESS);
  ck_assert_int_eq(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, m, n, k, dscal, da, CUDA_R_32F, m, db, CUDA_R_32F, k,
                                dscal + 1, dc, CUDA_R_32F, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                   CUBLAS_STATUS_SUCCESS);
  get(got, dc, sizeof got);
  for (int i = 0; i < 6; i++) want[i] *= -0.5;
  ck_assert_msg(max_err(got, want, 6) < 1e-6, "device pointer mode alpha = -1");
  cudaFree(da), cudaFree(db), cudaFree(dc), cudaFree(dscal);
  cublasDestroy(h);
}
END_TEST

START_TEST(test_gemm_rejects_bad_arguments) {
  cublasHandle_t h;
  ck_assert_int_eq(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
  float *d = dev(NULL, 4096);
  const float one = 1.0f;
#define GEMM(ta, tb, m, n, k, at, lda, bt, ldb, ct, ldc, comp)                                                        \
  cublasGemmEx(h, ta, tb, m, n, k, &one, d, at, lda, d, bt, ldb, &one, d, ct, ldc, comp, CUBLAS_GEMM_DEFAULT)
  const cublasOperation_t N = CUBLAS_OP_N, T = CUBLAS_OP_T;
  ck_assert_int_eq(GEMM(N, N, 4, 4, 4, CUDA_R_32F, 4, CUDA_R_32F, 4, CUDA_R_32F, 4, CUBLAS_COMPUTE_32F),
                   CUBLAS_STATUS_SUCCESS);
  ck_assert_int_eq(GEMM(N, N, 5, 4, 4, CUDA_R_32F, 4, CUDA_R_32F, 4, CUDA_R_32F, 5, CUBLAS_COMPUTE_32F),
                   CUBLAS_STATUS_INVALID_VALUE); /* lda < m */
  ck_assert_int_eq(GEMM(T, N, 4, 4, 5, CUDA_R_32F, 4, CUDA_R_32F, 5, CUDA_R_32F, 4, CUBLAS_COMPUTE_32F),
                   CUBLAS_STATUS_INVALID_VALUE); /* op(A) = A^T: lda < k */
  ck_assert_int_eq(GEMM(N, T, 4, 6, 4, CUDA_R_32F, 4, CUDA_R_32F, 4, CUDA_R_32F, 4, CUBLAS_COMPUTE_32F),
                   CUBLAS_STATUS_INVALID_VALUE); /* op(B) = B^T: ldb < n */
  ck_assert_int_eq(GEMM(N, N, 4, 4, 4, CUDA_R_32F, 4, CUDA_R_32F, 4, CUDA_R_32F, 3, CUBLAS_COMPUTE_32F),
                   CUBLAS_STATUS_INVALID_VALUE); /* ldc < m */
  ck_assert_int_eq(GEMM(N, N, -1, 4, 4, CUDA_R_32F, 4, CUDA_R_32F, 4, CUDA_R_32F, 4, CUBLAS_COMPUTE_32F),
                   CUBLAS_STATUS_INVALID_VALUE);
  ck_assert_int_eq(GEMM(N, N, 4, 4, 4, CUDA_R_16BF, 4, CUDA_R_16BF, 4, CUDA_R_32F, 4, CUBLAS_COMPUTE_32F_FAST_TF32),
                   CUBLAS_STATUS_NOT_SUPPORTED); /* FAST_TF32 takes fp32 operands only */
  ck_assert_int_eq(GEMM(N, N, 4, 4, 4, CUDA_R_32F, 4, CUDA_R_16BF, 4, CUDA_R_32F, 4, CUBLAS_COMPUTE_32F),
                   CUBLAS_STATUS_NOT_SUPPORTED); /* A and B types differ */
  ck_assert_int_eq(cublasGemmEx(NULL, N, N, 4, 4, 4, &one, d, CUDA_R_32F, 4, d, CUDA_R_32F, 4, &one, d, CUDA_R_32F, 4,
                                CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                   CUBLAS_STATUS_NOT_INITIALIZED);
#undef GEMM
  ck_assert_str_eq(cublasGetStatusName(CUBLAS_STATUS_INVALID_VALUE), "CUBLAS_STATUS_INVALID_VALUE");
  cudaFree(d);
  cublasDestroy(h);
}
END_TEST

/* 1 x 1 x k GEMM of a row and a column, returned as float (fp32 C). */
static float dot_gemm(cublasHandle_t h, const float *a, const float *b, int k, cublasComputeType_t comp) {
  float *da = dev(a, (size_t)k * 4), *db = dev(b, (size_t)k * 4), *dc = dev(NULL, 4), c = 0;
  const float one = 1.0f, zero = 0.0f;
  ck_assert_int_eq(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, k, &one, da, CUDA_R_32F, 1, db, CUDA_R_32F, k,
                                &zero, dc, CUDA_R_32F, 1, comp, CUBLAS_GEMM_DEFAULT),
                   CUBLAS_STATUS_SUCCESS);
  get(&c, dc, 4);
  cudaFree(da), cudaFree(db), cudaFree(dc);
  return c;
}

START_TEST(test_gemm_tf32_rounds_operands) {
  cublasHandle_t h;
  ck_assert_int_eq(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
  /* 1 + 2^-12 is not a tf32 value (10 mantissa bits): tf32 sees 1, fp32 sees it exactly */
  const float x = 1.0f + ldexpf(1.0f, -12), one = 1.0f;
  ck_assert(dot_gemm(h, &x, &one, 1, CUBLAS_COMPUTE_32F) == x);
  ck_assert(dot_gemm(h, &x, &one, 1, CUBLAS_COMPUTE_32F_PEDANTIC) == x);
  ck_assert(dot_gemm(h, &x, &one, 1, CUBLAS_COMPUTE_32F_FAST_TF32) == 1.0f);
  /* 1 + 3*2^-12 rounds to nearest: up to 1 + 2^-10 (truncation would give 1) */
  const float y = 1.0f + 3.0f * ldexpf(1.0f, -12);
  ck_assert_float_eq(dot_gemm(h, &y, &one, 1, CUBLAS_COMPUTE_32F_FAST_TF32), 1.0f + ldexpf(1.0f, -10));
  /* the handle's TF32 math mode enables tf32 for plain COMPUTE_32F, not for PEDANTIC */
  ck_assert_int_eq(cublasSetMathMode(h, CUBLAS_TF32_TENSOR_OP_MATH), CUBLAS_STATUS_SUCCESS);
  ck_assert(dot_gemm(h, &x, &one, 1, CUBLAS_COMPUTE_32F) == 1.0f);
  ck_assert(dot_gemm(h, &x, &one, 1, CUBLAS_COMPUTE_32F_PEDANTIC) == x);
  cublasDestroy(h);
}
END_TEST

START_TEST(test_gemm_bf16_round_to_nearest_even) {
  cublasHandle_t h;
  ck_assert_int_eq(cublasCreate(&h), CUBLAS_STATUS_SUCCESS);
  const float e7 = ldexpf(1.0f, -7), e8 = ldexpf(1.0f, -8);
  /* rows of A (1 x 2) times columns of B (2 x 2): 1 + 2^-8 (a tie, rounds to even 1.0) and
   * 1 + 2^-7 + 2^-8 (a tie, rounds to even 1 + 2^-6) */
  const uint16_t a[2] = {bf16_bits(1.0f), bf16_bits(1.0f)};
  const uint16_t b[4] = {bf16_bits(1.0f), bf16_bits(e8), bf16_bits(1.0f + e7), bf16_bits(e8)};
  uint16_t *da = dev(a, sizeof a), *db = dev(b, sizeof b), *dc = dev(NULL, 4);
  float *dcf = dev(NULL, 8);
  const float one = 1.0f, zero = 0.0f;
  ck_assert_int_eq(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 2, 2, &one, da, CUDA_R_16BF, 1, db, CUDA_R_16BF, 2,
                                &zero, dc, CUDA_R_16BF, 1, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                   CUBLAS_STATUS_SUCCESS);
  uint16_t c[2];
  get(c, dc, sizeof c);
  ck_assert_float_eq(bf16_value(c[0]), 1.0f);
  ck_assert_float_eq(bf16_value(c[1]), 1.0f + 2 * e7);
  /* fp32 output keeps the exact sums */
  ck_assert_int_eq(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 2, 2, &one, da, CUDA_R_16BF, 1, db, CUDA_R_16BF, 2,
                                &zero, dcf, CUDA_R_32F, 1, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                   CUBLAS_STATUS_SUCCESS);
  float cf[2];
  get(cf, dcf, sizeof cf);
  ck_assert_float_eq(cf[0], 1.0f + e8);
  ck_assert_float_eq(cf[1], 1.0f + e7 + e8);
  cudaFree(da), cudaFree(db), cudaFree(dc), cudaFree(dcf);
  cublasDestroy(h);
}
END_TEST

/* ---- cuDNN ------------------------------------------------------------------------------------- */
/* A test geometry and its canonical data: x[n][c][h][w], w[k][cg][r][s], y[n][k][p][q]. */
struct conv_case {
  int n, c, h, w, k, r, s, pad_h, pad_w, su, sv, dh, dw, groups;
  cudnnConvolutionMode_t mode;
};
static int cc_p(const struct conv_case *t) { return (t->h + 2 * t->pad_h - ((t->r - 1) * t->dh + 1)) / t->su + 1; }
static int cc_q(const struct conv_case *t) { return (t->w + 2 * t->pad_w - ((t->s - 1) * t->dw + 1)) / t->sv + 1; }

/* y (+)= conv(x, w) in canonical order, straight from the definition (flip for CONVOLUTION). */
static void conv_ref(const struct conv_case *t, const double *x, const double *w, double *y) {
  const int P = cc_p(t), Q = cc_q(t), cg = t->c / t->groups, kg = t->k / t->groups;
  for (int n = 0; n < t->n; n++)
    for (int k = 0; k < t->k; k++)
      for (int p = 0; p < P; p++)
        for (int q = 0; q < Q; q++) {
          double s = 0;
          for (int c = 0; c < cg; c++)
            for (int r = 0; r < t->r; r++)
              for (int u = 0; u < t->s; u++) {
                int hh = p * t->su - t->pad_h + r * t->dh, ww = q * t->sv - t->pad_w + u * t->dw;
                if (hh < 0 || hh >= t->h || ww < 0 || ww >= t->w) continue;
                int rr = t->mode == CUDNN_CONVOLUTION ? t->r - 1 - r : r;
                int uu = t->mode == CUDNN_CONVOLUTION ? t->s - 1 - u : u;
                int ch = (k / kg) * cg + c;
                s += x[(((size_t)n * t->c + ch) * t->h + hh) * t->w + ww] *
                     w[(((size_t)k * cg + c) * t->r + rr) * t->s + uu];
              }
          y[(((size_t)n * t->k + k) * P + p) * Q + q] = s;
        }
}

/* Strides of a 4-D (n, c, h, w) tensor in a layout: 0 NCHW, 1 NHWC, 2 NCHW with padded rows. */
static void strides(int layout, int c, int h, int w, int st[4]) {
  if (layout == 0) st[0] = c * h * w, st[1] = h * w, st[2] = w, st[3] = 1;
  else if (layout == 1) st[0] = h * w * c, st[1] = 1, st[2] = w * c, st[3] = c;
  else st[3] = 1, st[2] = w + 3, st[1] = h * (w + 3), st[0] = c * h * (w + 3) + 5;
}
static size_t span4(int n, int c, int h, int w, const int st[4]) {
  return (size_t)(n - 1) * st[0] + (size_t)(c - 1) * st[1] + (size_t)(h - 1) * st[2] + (size_t)(w - 1) * st[3] + 1;
}
static float *pack(const double *canon, int n, int c, int h, int w, const int st[4], size_t *len) {
  *len = span4(n, c, h, w, st);
  float *out = malloc(*len * 4);
  for (size_t i = 0; i < *len; i++) out[i] = 1e30f; /* gaps: poison that must not be read */
  for (int a = 0; a < n; a++)
    for (int b = 0; b < c; b++)
      for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
          out[(size_t)a * st[0] + (size_t)b * st[1] + (size_t)y * st[2] + (size_t)x * st[3]] =
              (float)canon[(((size_t)a * c + b) * h + y) * w + x];
  return out;
}
static void unpack(const float *packed, int n, int c, int h, int w, const int st[4], double *canon) {
  for (int a = 0; a < n; a++)
    for (int b = 0; b < c; b++)
      for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
          canon[(((size_t)a * c + b) * h + y) * w + x] =
              packed[(size_t)a * st[0] + (size_t)b * st[1] + (size_t)y * st[2] + (size_t)x * st[3]];
}
/* Filter in KCRS (NCHW format) or KRSC (NHWC): the same as a packed (k, c, r, s) tensor. */
static void fstrides(cudnnTensorFormat_t f, int c, int r, int s, int st[4]) { strides(f == CUDNN_TENSOR_NHWC, c, r, s, st); }

struct conv_descs {
  cudnnTensorDescriptor_t x, y;
  cudnnFilterDescriptor_t w;
  cudnnConvolutionDescriptor_t cv;
};
static void make_descs(const struct conv_case *t, const int xs[4], const int ys[4], cudnnTensorFormat_t wf,
                       cudnnMathType_t math, struct conv_descs *d) {
  ck_assert_int_eq(cudnnCreateTensorDescriptor(&d->x), CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(cudnnCreateTensorDescriptor(&d->y), CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(cudnnCreateFilterDescriptor(&d->w), CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(cudnnCreateConvolutionDescriptor(&d->cv), CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(cudnnSetTensor4dDescriptorEx(d->x, CUDNN_DATA_FLOAT, t->n, t->c, t->h, t->w, xs[0], xs[1], xs[2],
                                                xs[3]),
                   CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(cudnnSetTensor4dDescriptorEx(d->y, CUDNN_DATA_FLOAT, t->n, t->k, cc_p(t), cc_q(t), ys[0], ys[1],
                                                ys[2], ys[3]),
                   CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(cudnnSetFilter4dDescriptor(d->w, CUDNN_DATA_FLOAT, wf, t->k, t->c / t->groups, t->r, t->s),
                   CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(cudnnSetConvolution2dDescriptor(d->cv, t->pad_h, t->pad_w, t->su, t->sv, t->dh, t->dw, t->mode,
                                                   CUDNN_DATA_FLOAT),
                   CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(cudnnSetConvolutionGroupCount(d->cv, t->groups), CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(cudnnSetConvolutionMathType(d->cv, math), CUDNN_STATUS_SUCCESS);
}
static void free_descs(struct conv_descs *d) {
  cudnnDestroyTensorDescriptor(d->x);
  cudnnDestroyTensorDescriptor(d->y);
  cudnnDestroyFilterDescriptor(d->w);
  cudnnDestroyConvolutionDescriptor(d->cv);
}

static const struct conv_case g_cases[] = {
    /* n c  h  w  k  r  s  ph pw su sv dh dw g  mode */
    {2, 3, 7, 5, 4, 3, 2, 1, 0, 2, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION},
    {2, 3, 7, 5, 4, 3, 2, 1, 0, 2, 1, 1, 1, 1, CUDNN_CONVOLUTION},
    {1, 4, 9, 6, 6, 3, 3, 2, 1, 1, 2, 2, 1, 2, CUDNN_CROSS_CORRELATION}, /* groups, dilation */
    {3, 5, 6, 6, 7, 1, 1, 0, 0, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION}, /* 1x1 */
    {1, 2, 5, 7, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, CUDNN_CONVOLUTION},       /* Winograd/FFT-eligible */
};

/* Runs forward, backward-data and backward-filter of one case in one layout against the
 * reference, with alpha/beta blending into existing outputs. layout: 0 NCHW/KCRS, 1 NHWC/KRSC,
 * 2 NHWC activations with a KCRS filter, 3 padded NCHW strides. */
static void check_conv_case(const struct conv_case *t, int layout) {
  cudnnHandle_t h;
  ck_assert_int_eq(cudnnCreate(&h), CUDNN_STATUS_SUCCESS);
  const int P = cc_p(t), Q = cc_q(t), cg = t->c / t->groups;
  const size_t nx = (size_t)t->n * t->c * t->h * t->w, nw = (size_t)t->k * cg * t->r * t->s,
               ny = (size_t)t->n * t->k * P * Q;
  double *x = malloc(nx * 8), *w = malloc(nw * 8), *y0 = malloc(ny * 8), *dx0 = malloc(nx * 8), *dw0 = malloc(nw * 8);
  double *ref = malloc((nx > ny ? (nx > nw ? nx : nw) : (ny > nw ? ny : nw)) * 8);
  double *got = malloc((nx > ny ? (nx > nw ? nx : nw) : (ny > nw ? ny : nw)) * 8);
  for (size_t i = 0; i < nx; i++) x[i] = urand(), dx0[i] = urand();
  for (size_t i = 0; i < nw; i++) w[i] = urand(), dw0[i] = urand();
  for (size_t i = 0; i < ny; i++) y0[i] = urand();
  int xs[4], ys[4], ws[4];
  const int tl = layout == 3 ? 2 : layout == 0 ? 0 : 1;
  const cudnnTensorFormat_t wf = layout == 1 ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW;
  strides(tl, t->c, t->h, t->w, xs);
  strides(tl, t->k, P, Q, ys);
  fstrides(wf, cg, t->r, t->s, ws);
  size_t lx, ly, lw, lt;
  float *hx = pack(x, t->n, t->c, t->h, t->w, xs, &lx), *hy = pack(y0, t->n, t->k, P, Q, ys, &ly);
  float *hw = pack(w, t->k, cg, t->r, t->s, ws, &lw), *hdx = pack(dx0, t->n, t->c, t->h, t->w, xs, &lt);
  float *hdw = pack(dw0, t->k, cg, t->r, t->s, ws, &lt);
  struct conv_descs d;
  make_descs(t, xs, ys, wf, CUDNN_FMA_MATH, &d);
  float *dxp = dev(hx, lx * 4), *dyp = dev(hy, ly * 4), *dwp = dev(hw, lw * 4), *ddx = dev(hdx, lx * 4),
        *ddw = dev(hdw, lw * 4);
  const float alpha = 1.5f, beta = 0.5f;
  size_t wsz = 0;
  void *work = dev(NULL, 1 << 20);
  char what[160];
  snprintf(what, sizeof what, "conv n%d c%d %dx%d k%d %dx%d mode %d groups %d layout %d", t->n, t->c, t->h, t->w, t->k,
           t->r, t->s, (int)t->mode, t->groups, layout);

  /* forward: y = 1.5 conv(x, w) + 0.5 y0 */
  ck_assert_int_eq(cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.cv, d.y,
                                                           CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, &wsz),
                   CUDNN_STATUS_SUCCESS);
  ck_assert_uint_le(wsz, 1 << 20);
  ck_assert_int_eq(cudnnConvolutionForward(h, &alpha, d.x, dxp, d.w, dwp, d.cv,
                                           CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, work, 1 << 20, &beta, d.y,
                                           dyp),
                   CUDNN_STATUS_SUCCESS);
  float *out = malloc(ly * 4);
  get(out, dyp, ly * 4);
  unpack(out, t->n, t->k, P, Q, ys, got);
  conv_ref(t, x, w, ref);
  double e = 0;
  for (size_t i = 0; i < ny; i++) e = fmax(e, fabs(got[i] - (1.5 * ref[i] + 0.5 * y0[i])) / (1 + fabs(ref[i])));
  ck_assert_msg(e < 1e-5, "%s forward: error %g", what, e);
  /* the gaps of a padded layout (poisoned by pack) are not part of y: never written */
  size_t touched = 0;
  for (size_t i = 0; i < ly; i++) touched += out[i] != 1e30f;
  ck_assert_msg(touched == ny, "%s forward: %zu elements written, y has %zu", what, touched, ny);
  free(out);

  /* backward data: dx = 1.5 conv^T(dy = y0, w) + 0.5 dx0, via the definition (adjoint of forward) */
  ck_assert_int_eq(cudaMemcpy(dyp, hy, ly * 4, cudaMemcpyHostToDevice), cudaSuccess);
  ck_assert_int_eq(cudnnConvolutionBackwardData(h, &alpha, d.w, dwp, d.y, dyp, d.cv, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1,
                                                work, 1 << 20, &beta, d.x, ddx),
                   CUDNN_STATUS_SUCCESS);
  out = malloc(lx * 4);
  get(out, ddx, lx * 4);
  unpack(out, t->n, t->c, t->h, t->w, xs, got);
  /* reference by adjointness: dx[i] = sum_j dy[j] * d y[j] / d x[i], with unit vectors through conv_ref */
  double *ex = calloc(nx, 8), *yy = malloc(ny * 8);
  e = 0;
  for (size_t i = 0; i < nx; i++) {
    ex[i] = 1;
    conv_ref(t, ex, w, yy);
    ex[i] = 0;
    double s = 0;
    for (size_t j = 0; j < ny; j++) s += y0[j] * yy[j];
    e = fmax(e, fabs(got[i] - (1.5 * s + 0.5 * dx0[i])) / (1 + fabs(s)));
  }
  ck_assert_msg(e < 1e-5, "%s backward-data: error %g", what, e);
  free(out);

  /* backward filter: dw = 1.5 d<dy, conv(x, w)>/dw + 0.5 dw0 */
  ck_assert_int_eq(cudnnConvolutionBackwardFilter(h, &alpha, d.x, dxp, d.y, dyp, d.cv,
                                                  CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1, work, 1 << 20, &beta, d.w, ddw),
                   CUDNN_STATUS_SUCCESS);
  out = malloc(lw * 4);
  get(out, ddw, lw * 4);
  unpack(out, t->k, cg, t->r, t->s, ws, got);
  double *ew = calloc(nw, 8);
  e = 0;
  for (size_t i = 0; i < nw; i++) {
    ew[i] = 1;
    conv_ref(t, x, ew, yy);
    ew[i] = 0;
    double s = 0;
    for (size_t j = 0; j < ny; j++) s += y0[j] * yy[j];
    e = fmax(e, fabs(got[i] - (1.5 * s + 0.5 * dw0[i])) / (1 + fabs(s)));
  }
  ck_assert_msg(e < 1e-5, "%s backward-filter: error %g", what, e);
  free(out), free(ex), free(ew), free(yy);

  cudaFree(dxp), cudaFree(dyp), cudaFree(dwp), cudaFree(ddx), cudaFree(ddw), cudaFree(work);
  free(hx), free(hy), free(hw), free(hdx), free(hdw);
  free(x), free(w), free(y0), free(dx0), free(dw0), free(ref), free(got);
  free_descs(&d);
  cudnnDestroy(h);
}

START_TEST(test_conv_all_layouts_modes_groups) {
  for (size_t i = 0; i < sizeof g_cases / sizeof g_cases[0]; i++)
    for (int layout = 0; layout < 4; layout++) check_conv_case(&g_cases[i], layout);
}
END_TEST

/* Forward of case 0 with x stored in one layout but described in another (or the mode
 * swapped): the result must NOT match, so a descriptor bug in the backend cannot pass. */
START_TEST(test_conv_wrong_layout_or_mode_gives_wrong_answer) {
  cudnnHandle_t h;
  ck_assert_int_eq(cudnnCreate(&h), CUDNN_STATUS_SUCCESS);
  for (int variant = 0; variant < 2; variant++) {
    struct conv_case t = g_cases[0];
    const int P = cc_p(&t), Q = cc_q(&t);
    const size_t nx = (size_t)t.n * t.c * t.h * t.w, nw = (size_t)t.k * t.c * t.r * t.s, ny = (size_t)t.n * t.k * P * Q;
    double *x = malloc(nx * 8), *w = malloc(nw * 8), *ref = malloc(ny * 8), *got = malloc(ny * 8);
    for (size_t i = 0; i < nx; i++) x[i] = urand();
    for (size_t i = 0; i < nw; i++) w[i] = urand();
    conv_ref(&t, x, w, ref);
    int nhwc[4], nchw[4], ys[4], ws[4];
    strides(1, t.c, t.h, t.w, nhwc);
    strides(0, t.c, t.h, t.w, nchw);
    strides(1, t.k, P, Q, ys);
    fstrides(CUDNN_TENSOR_NCHW, t.c, t.r, t.s, ws);
    size_t lx, lw;
    float *hx = pack(x, t.n, t.c, t.h, t.w, nhwc, &lx), *hw = pack(w, t.k, t.c, t.r, t.s, ws, &lw);
    struct conv_descs d;
    if (variant == 1) t.mode = CUDNN_CONVOLUTION; /* data made for cross-correlation */
    make_descs(&t, variant == 0 ? nchw : nhwc, ys, CUDNN_TENSOR_NCHW, CUDNN_FMA_MATH, &d);
    float *dx = dev(hx, lx * 4), *dw = dev(hw, lw * 4), *dy = dev(NULL, ny * 4);
    const float one = 1, zero = 0;
    ck_assert_int_eq(cudnnConvolutionForward(h, &one, d.x, dx, d.w, dw, d.cv, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
                                             NULL, 0, &zero, d.y, dy),
                     CUDNN_STATUS_SUCCESS);
    float *out = malloc(ny * 4);
    get(out, dy, ny * 4);
    unpack(out, t.n, t.k, P, Q, ys, got);
    double e = 0;
    for (size_t i = 0; i < ny; i++) e = fmax(e, fabs(got[i] - ref[i]));
    ck_assert_msg(e > 0.1, "variant %d (%s) still matched the reference (error %g)", variant,
                  variant == 0 ? "NHWC data described as NCHW" : "mode swapped", e);
    free(out), free(x), free(w), free(ref), free(got), free(hx), free(hw);
    cudaFree(dx), cudaFree(dw), cudaFree(dy);
    free_descs(&d);
  }
  cudnnDestroy(h);
}
END_TEST

START_TEST(test_conv_rejects_what_cudnn_rejects) {
  cudnnHandle_t h;
  ck_assert_int_eq(cudnnCreate(&h), CUDNN_STATUS_SUCCESS);
  cudnnTensorDescriptor_t x, y, unset;
  cudnnFilterDescriptor_t w;
  cudnnConvolutionDescriptor_t cv;
  ck_assert_int_eq(cudnnCreateTensorDescriptor(&x), CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(cudnnCreateTensorDescriptor(&y), CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(cudnnCreateTensorDescriptor(&unset), CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(cudnnCreateFilterDescriptor(&w), CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(cudnnCreateConvolutionDescriptor(&cv), CUDNN_STATUS_SUCCESS);
  /* descriptor setters */
  ck_assert_int_eq(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 0, 3, 5, 5), CUDNN_STATUS_BAD_PARAM);
  ck_assert_int_eq(cudnnSetFilter4dDescriptor(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, 4, -3, 3, 3), CUDNN_STATUS_BAD_PARAM);
  ck_assert_int_eq(cudnnSetConvolution2dDescriptor(cv, -1, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                   CUDNN_STATUS_BAD_PARAM);
  ck_assert_int_eq(cudnnSetConvolution2dDescriptor(cv, 0, 0, 0, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                   CUDNN_STATUS_BAD_PARAM);
  ck_assert_int_eq(cudnnSetConvolutionGroupCount(cv, 0), CUDNN_STATUS_BAD_PARAM);
  char msg[256];
  cudnnGetLastErrorString(msg, sizeof msg);
  ck_assert_msg(strstr(msg, "cudnnSetConvolutionGroupCount") != NULL, "last error: '%s'", msg);
  cudnnGetLastErrorString(msg, sizeof msg);
  ck_assert_str_eq(msg, ""); /* reading clears it */
  /* a valid NHWC 3x3 pad-1 geometry */
  ck_assert_int_eq(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 2, 3, 5, 5), CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 2, 4, 5, 5), CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(cudnnSetFilter4dDescriptor(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, 4, 3, 3, 3), CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(cudnnSetConvolution2dDescriptor(cv, 1, 1, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                   CUDNN_STATUS_SUCCESS);
  int on, oc, oh, ow;
  ck_assert_int_eq(cudnnGetConvolution2dForwardOutputDim(cv, x, w, &on, &oc, &oh, &ow), CUDNN_STATUS_SUCCESS);
  ck_assert(on == 2 && oc == 4 && oh == 5 && ow == 5);
  float *buf = dev(NULL, 1 << 16), *ws = dev(NULL, 1 << 16);
  const float one = 1, zero = 0;
#define FWD(xd, wd, cd, yd, algo, wsb)                                                                               \
  cudnnConvolutionForward(h, &one, xd, buf, wd, buf, cd, algo, ws, wsb, &zero, yd, buf)
  ck_assert_int_eq(FWD(x, w, cv, y, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, 0), CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(FWD(unset, w, cv, y, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, 0), CUDNN_STATUS_BAD_PARAM);
  ck_assert_int_eq(FWD(x, w, cv, NULL, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, 0), CUDNN_STATUS_BAD_PARAM);
  /* workspace smaller than the algorithm needs */
  size_t need = 0;
  ck_assert_int_eq(cudnnGetConvolutionForwardWorkspaceSize(h, x, w, cv, y, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                                                           &need),
                   CUDNN_STATUS_SUCCESS);
  ck_assert_uint_gt(need, 0);
  ck_assert_int_eq(FWD(x, w, cv, y, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, need - 1), CUDNN_STATUS_BAD_PARAM);
  ck_assert_int_eq(FWD(x, w, cv, y, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM, need), CUDNN_STATUS_SUCCESS);
  /* FFT needs NCHW data; DIRECT has no implementation */
  ck_assert_int_eq(FWD(x, w, cv, y, CUDNN_CONVOLUTION_FWD_ALGO_FFT, 1 << 16), CUDNN_STATUS_NOT_SUPPORTED);
  ck_assert_int_eq(FWD(x, w, cv, y, CUDNN_CONVOLUTION_FWD_ALGO_DIRECT, 1 << 16), CUDNN_STATUS_NOT_SUPPORTED);
  /* channels: the filter expects 3 input channels */
  ck_assert_int_eq(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 2, 5, 5, 5), CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(FWD(x, w, cv, y, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, 0), CUDNN_STATUS_BAD_PARAM);
  ck_assert_int_eq(cudnnGetConvolution2dForwardOutputDim(cv, x, w, &on, &oc, &oh, &ow), CUDNN_STATUS_BAD_PARAM);
  ck_assert_int_eq(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 2, 3, 5, 5), CUDNN_STATUS_SUCCESS);
  /* output of the wrong size */
  ck_assert_int_eq(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 2, 4, 4, 5), CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(FWD(x, w, cv, y, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, 0), CUDNN_STATUS_BAD_PARAM);
  /* data types differ */
  ck_assert_int_eq(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NHWC, CUDNN_DATA_BFLOAT16, 2, 4, 5, 5), CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(FWD(x, w, cv, y, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, 0), CUDNN_STATUS_BAD_PARAM);
  /* an NHWC (KRSC) filter with NCHW activations */
  ck_assert_int_eq(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 3, 5, 5), CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 2, 4, 5, 5), CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(FWD(x, w, cv, y, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, 0), CUDNN_STATUS_NOT_SUPPORTED);
  /* groups: 4 output channels are not a multiple of 3 groups (x has 3 = 1 x 3 channels) */
  ck_assert_int_eq(cudnnSetFilter4dDescriptor(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, 4, 1, 3, 3), CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(cudnnSetConvolutionGroupCount(cv, 3), CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(FWD(x, w, cv, y, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, 0), CUDNN_STATUS_BAD_PARAM);
  /* double data with float compute is not a supported configuration */
  ck_assert_int_eq(cudnnSetConvolutionGroupCount(cv, 1), CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(cudnnSetFilter4dDescriptor(w, CUDNN_DATA_DOUBLE, CUDNN_TENSOR_NCHW, 4, 3, 3, 3), CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, CUDNN_DATA_DOUBLE, 2, 3, 5, 5), CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, CUDNN_DATA_DOUBLE, 2, 4, 5, 5), CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(FWD(x, w, cv, y, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, 0), CUDNN_STATUS_NOT_SUPPORTED);
  /* a filter larger than the padded input */
  ck_assert_int_eq(cudnnSetConvolution2dDescriptor(cv, 0, 0, 1, 1, 4, 4, CUDNN_CROSS_CORRELATION, CUDNN_DATA_DOUBLE),
                   CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(cudnnGetConvolution2dForwardOutputDim(cv, x, w, &on, &oc, &oh, &ow), CUDNN_STATUS_BAD_PARAM);
#undef FWD
  cudaFree(buf), cudaFree(ws);
  cudnnDestroyTensorDescriptor(x), cudnnDestroyTensorDescriptor(y), cudnnDestroyTensorDescriptor(unset);
  cudnnDestroyFilterDescriptor(w), cudnnDestroyConvolutionDescriptor(cv);
  cudnnDestroy(h);
}
END_TEST

START_TEST(test_conv_find_and_get_algorithms) {
  cudnnHandle_t h;
  ck_assert_int_eq(cudnnCreate(&h), CUDNN_STATUS_SUCCESS);
  const struct conv_case *t = &g_cases[4]; /* NCHW 3x3 unit stride: FFT and Winograd apply too */
  int xs[4], ys[4];
  strides(0, t->c, t->h, t->w, xs);
  strides(0, t->k, cc_p(t), cc_q(t), ys);
  struct conv_descs d;
  make_descs(t, xs, ys, CUDNN_TENSOR_NCHW, CUDNN_FMA_MATH, &d);
  for (int find = 0; find < 2; find++) {
    cudnnConvolutionFwdAlgoPerf_t f[16];
    cudnnConvolutionBwdDataAlgoPerf_t bd[16];
    cudnnConvolutionBwdFilterAlgoPerf_t bf[16];
    int nf = 0, nd = 0, nb = 0;
    if (find) {
      ck_assert_int_eq(cudnnFindConvolutionForwardAlgorithm(h, d.x, d.w, d.cv, d.y, 16, &nf, f), CUDNN_STATUS_SUCCESS);
      ck_assert_int_eq(cudnnFindConvolutionBackwardDataAlgorithm(h, d.w, d.y, d.cv, d.x, 16, &nd, bd), CUDNN_STATUS_SUCCESS);
      ck_assert_int_eq(cudnnFindConvolutionBackwardFilterAlgorithm(h, d.x, d.y, d.cv, d.w, 16, &nb, bf), CUDNN_STATUS_SUCCESS);
    } else {
      ck_assert_int_eq(cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.cv, d.y, 16, &nf, f), CUDNN_STATUS_SUCCESS);
      ck_assert_int_eq(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w, d.y, d.cv, d.x, 16, &nd, bd), CUDNN_STATUS_SUCCESS);
      ck_assert_int_eq(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x, d.y, d.cv, d.w, 16, &nb, bf), CUDNN_STATUS_SUCCESS);
    }
    ck_assert_int_eq(nf, CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
    ck_assert_int_eq(nd, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT);
    ck_assert_int_ge(nb, 5);
    int ok = 0, with_ws = 0, seen_fail = 0;
    for (int i = 0; i < nf; i++) {
      if (f[i].status != CUDNN_STATUS_SUCCESS) {
        seen_fail = 1;
        continue;
      }
      ck_assert_msg(!seen_fail, "a supported row after an unsupported one");
      size_t sz = 0;
      ck_assert_int_eq(cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.cv, d.y, f[i].algo, &sz), CUDNN_STATUS_SUCCESS);
      ck_assert_uint_eq(sz, f[i].memory);
      ck_assert_int_eq(f[i].mathType, CUDNN_FMA_MATH);
      if (find && i > 0 && f[i - 1].status == CUDNN_STATUS_SUCCESS) ck_assert(f[i - 1].time <= f[i].time);
      ok++, with_ws += sz > 0;
    }
    ck_assert_int_ge(ok, 4);
    ck_assert_int_ge(with_ws, 2);
    ck_assert_msg(seen_fail, "DIRECT is never supported and must be listed as such");
    int det = 0, nondet = 0;
    for (int i = 0; i < nd; i++)
      if (bd[i].status == CUDNN_STATUS_SUCCESS) det += bd[i].determinism == CUDNN_DETERMINISTIC, nondet += bd[i].determinism != CUDNN_DETERMINISTIC;
    ck_assert(det >= 1 && nondet >= 1);
    det = nondet = 0;
    for (int i = 0; i < nb; i++)
      if (bf[i].status == CUDNN_STATUS_SUCCESS) det += bf[i].determinism == CUDNN_DETERMINISTIC, nondet += bf[i].determinism != CUDNN_DETERMINISTIC;
    ck_assert(det >= 1 && nondet >= 1);
  }
  /* tensor-op math: implicit-GEMM rows report it, FFT rows stay FMA */
  ck_assert_int_eq(cudnnSetConvolutionMathType(d.cv, CUDNN_TENSOR_OP_MATH), CUDNN_STATUS_SUCCESS);
  cudnnConvolutionFwdAlgoPerf_t f[16];
  int nf = 0;
  ck_assert_int_eq(cudnnFindConvolutionForwardAlgorithm(h, d.x, d.w, d.cv, d.y, 3, &nf, f), CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(nf, 3); /* requestedAlgoCount caps the list */
  ck_assert_int_eq(cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.cv, d.y, 16, &nf, f), CUDNN_STATUS_SUCCESS);
  for (int i = 0; i < nf; i++)
    if (f[i].status == CUDNN_STATUS_SUCCESS)
      ck_assert_int_eq(f[i].mathType, f[i].algo <= CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ? CUDNN_TENSOR_OP_MATH
                                                                                                     : CUDNN_FMA_MATH);
  free_descs(&d);
  cudnnDestroy(h);
}
END_TEST

/* 1x1 convolution of one pixel with two channels: y = x0*w0 + x1*w1, in a given data type/math. */
static void pixel_conv(cudnnDataType_t dt, cudnnMathType_t math, const void *x, const void *w, void *y, size_t el) {
  cudnnHandle_t h;
  ck_assert_int_eq(cudnnCreate(&h), CUDNN_STATUS_SUCCESS);
  cudnnTensorDescriptor_t xd, yd;
  cudnnFilterDescriptor_t wd;
  cudnnConvolutionDescriptor_t cv;
  cudnnCreateTensorDescriptor(&xd), cudnnCreateTensorDescriptor(&yd);
  cudnnCreateFilterDescriptor(&wd), cudnnCreateConvolutionDescriptor(&cv);
  ck_assert_int_eq(cudnnSetTensor4dDescriptor(xd, CUDNN_TENSOR_NHWC, dt, 1, 2, 1, 1), CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(cudnnSetTensor4dDescriptor(yd, CUDNN_TENSOR_NHWC, dt, 1, 1, 1, 1), CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(cudnnSetFilter4dDescriptor(wd, dt, CUDNN_TENSOR_NHWC, 1, 2, 1, 1), CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(cudnnSetConvolution2dDescriptor(cv, 0, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                   CUDNN_STATUS_SUCCESS);
  ck_assert_int_eq(cudnnSetConvolutionMathType(cv, math), CUDNN_STATUS_SUCCESS);
  void *dx = dev(x, 2 * el), *dw = dev(w, 2 * el), *dy = dev(NULL, el);
  const float one = 1, zero = 0;
  ck_assert_int_eq(cudnnConvolutionForward(h, &one, xd, dx, wd, dw, cv, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, NULL,
                                           0, &zero, yd, dy),
                   CUDNN_STATUS_SUCCESS);
  get(y, dy, el);
  cudaFree(dx), cudaFree(dw), cudaFree(dy);
  cudnnDestroyTensorDescriptor(xd), cudnnDestroyTensorDescriptor(yd);
  cudnnDestroyFilterDescriptor(wd), cudnnDestroyConvolutionDescriptor(cv);
  cudnnDestroy(h);
}

START_TEST(test_conv_tf32_and_bf16_rounding) {
  const float x[2] = {1.0f + ldexpf(1.0f, -12), 0.0f}, w[2] = {1.0f, 1.0f};
  float y = 0;
  pixel_conv(CUDNN_DATA_FLOAT, CUDNN_FMA_MATH, x, w, &y, 4);
  ck_assert(y == x[0]); /* FMA math: exact fp32 */
  pixel_conv(CUDNN_DATA_FLOAT, CUDNN_TENSOR_OP_MATH, x, w, &y, 4);
  ck_assert(y == 1.0f); /* operands rounded to tf32 */
  pixel_conv(CUDNN_DATA_FLOAT, CUDNN_DEFAULT_MATH, x, w, &y, 4);
  ck_assert(y == 1.0f); /* default math permits tf32 on the (sm90) device */
  const float e7 = ldexpf(1.0f, -7), e8 = ldexpf(1.0f, -8);
  const uint16_t xb[2] = {bf16_bits(1.0f + e7), bf16_bits(e8)}, wb[2] = {bf16_bits(1.0f), bf16_bits(1.0f)};
  uint16_t yb = 0;
  pixel_conv(CUDNN_DATA_BFLOAT16, CUDNN_TENSOR_OP_MATH, xb, wb, &yb, 2);
  ck_assert_float_eq(bf16_value(yb), 1.0f + 2 * e7); /* the tie 1 + 2^-7 + 2^-8 rounds to even */
  const uint16_t xb2[2] = {bf16_bits(1.0f), bf16_bits(e8)};
  pixel_conv(CUDNN_DATA_BFLOAT16, CUDNN_TENSOR_OP_MATH, xb2, wb, &yb, 2);
  ck_assert_float_eq(bf16_value(yb), 1.0f); /* the tie 1 + 2^-8 rounds to even 1 */
}
END_TEST

START_TEST(test_conv_beta_zero_does_not_read_output) {
  const float x[2] = {2.0f, 3.0f}, w[2] = {0.5f, -1.0f};
  float y = 0;
  pixel_conv(CUDNN_DATA_FLOAT, CUDNN_FMA_MATH, x, w, &y, 4); /* dev(NULL) output starts as garbage */
  ck_assert_float_eq(y, -2.0f);
}
END_TEST

/* ---- NCCL: 2 forked ranks ---------------------------------------------------------------------- */
#define NC_CHECK(expr)                                                                                                \
  do {                                                                                                                \
    ncclResult_t r_ = (expr);                                                                                         \
    if (r_ != ncclSuccess) {                                                                                          \
      fprintf(stderr, "rank %d: %s -> %s (%s)\n", rank, #expr, ncclGetErrorString(r_), ncclGetLastError(NULL));      \
      return 1;                                                                                                       \
    }                                                                                                                 \
  } while (0)
#define EXPECT(cond)                                                                                                  \
  do {                                                                                                                \
    if (!(cond)) {                                                                                                    \
      fprintf(stderr, "rank %d: line %d: %s\n", rank, __LINE__, #cond);                                               \
      return 1;                                                                                                       \
    }                                                                                                                 \
  } while (0)

static int rank_collectives(int rank, ncclUniqueId id) {
  ncclComm_t comm;
  NC_CHECK(ncclCommInitRank(&comm, 2, id, rank));
  int nr = 0, me = -1;
  NC_CHECK(ncclCommCount(comm, &nr));
  NC_CHECK(ncclCommUserRank(comm, &me));
  EXPECT(nr == 2 && me == rank);
  cudaStream_t st;
  EXPECT(cudaStreamCreate(&st) == cudaSuccess);
  /* all-reduce, out of place, larger than one shared slot (chunked) */
  const size_t n = 300007;
  float *h = malloc(n * 4), *o = malloc(n * 4);
  for (size_t i = 0; i < n; i++) h[i] = (float)(i % 97) * (rank + 1);
  float *ds = dev(h, n * 4), *dr = dev(NULL, n * 4);
  NC_CHECK(ncclAllReduce(ds, dr, n, ncclFloat32, ncclSum, comm, st));
  EXPECT(cudaStreamSynchronize(st) == cudaSuccess);
  EXPECT(cudaMemcpy(o, dr, n * 4, cudaMemcpyDeviceToHost) == cudaSuccess);
  for (size_t i = 0; i < n; i++) EXPECT(o[i] == (float)(i % 97) * 3);
  /* in place, max over int32, inside a group together with an average */
  int32_t iv[5] = {rank, 10 - rank, -rank, 7, rank * 100};
  int32_t *di = dev(iv, sizeof iv);
  NC_CHECK(ncclGroupStart());
  NC_CHECK(ncclAllReduce(di, di, 5, ncclInt32, ncclMax, comm, st));
  NC_CHECK(ncclAllReduce(ds, ds, n, ncclFloat32, ncclAvg, comm, st));
  NC_CHECK(ncclGroupEnd());
  EXPECT(cudaStreamSynchronize(st) == cudaSuccess);
  EXPECT(cudaMemcpy(iv, di, sizeof iv, cudaMemcpyDeviceToHost) == cudaSuccess);
  EXPECT(iv[0] == 1 && iv[1] == 10 && iv[2] == 0 && iv[3] == 7 && iv[4] == 100);
  EXPECT(cudaMemcpy(o, ds, n * 4, cudaMemcpyDeviceToHost) == cudaSuccess);
  for (size_t i = 0; i < n; i += 101) EXPECT(o[i] == (float)(i % 97) * 1.5f);
  /* broadcast from rank 1: out of place, then in place (double) */
  double bv[3] = {rank + 0.5, rank + 1.5, rank + 2.5}, bo[3];
  double *db = dev(bv, sizeof bv), *dbo = dev(NULL, sizeof bv);
  NC_CHECK(ncclBroadcast(db, dbo, 3, ncclFloat64, 1, comm, st));
  NC_CHECK(ncclBroadcast(db, db, 3, ncclFloat64, 1, comm, st));
  EXPECT(cudaStreamSynchronize(st) == cudaSuccess);
  EXPECT(cudaMemcpy(bo, dbo, sizeof bo, cudaMemcpyDeviceToHost) == cudaSuccess);
  EXPECT(bo[0] == 1.5 && bo[1] == 2.5 && bo[2] == 3.5);
  EXPECT(cudaMemcpy(bo, db, sizeof bo, cudaMemcpyDeviceToHost) == cudaSuccess);
  EXPECT(bo[0] == 1.5 && bo[2] == 3.5);
  /* all-gather: out of place, then in place (send = recv + rank * count) */
  uint8_t g[6] = {0}, mine[3] = {(uint8_t)(10 * rank + 1), (uint8_t)(10 * rank + 2), (uint8_t)(10 * rank + 3)};
  uint8_t *dg = dev(NULL, 6), *dm = dev(mine, 3);
  NC_CHECK(ncclAllGather(dm, dg, 3, ncclUint8, comm, st));
  EXPECT(cudaStreamSynchronize(st) == cudaSuccess);
  EXPECT(cudaMemcpy(g, dg, 6, cudaMemcpyDeviceToHost) == cudaSuccess);
  EXPECT(g[0] == 1 && g[2] == 3 && g[3] == 11 && g[5] == 13);
  uint8_t init[6] = {0};
  memcpy(init + 3 * rank, mine, 3);
  EXPECT(cudaMemcpy(dg, init, 6, cudaMemcpyHostToDevice) == cudaSuccess);
  NC_CHECK(ncclAllGather(dg + 3 * rank, dg, 3, ncclUint8, comm, st));
  EXPECT(cudaStreamSynchronize(st) == cudaSuccess);
  EXPECT(cudaMemcpy(g, dg, 6, cudaMemcpyDeviceToHost) == cudaSuccess);
  EXPECT(g[0] == 1 && g[2] == 3 && g[3] == 11 && g[5] == 13);
  /* reduce-scatter in place: recv = send + rank * recvcount */
  float rs[4] = {1.0f + rank, 2.0f + rank, 3.0f + rank, 4.0f + rank}, ro[2];
  float *drs = dev(rs, sizeof rs);
  NC_CHECK(ncclReduceScatter(drs, drs + 2 * rank, 2, ncclFloat32, ncclSum, comm, st));
  EXPECT(cudaStreamSynchronize(st) == cudaSuccess);
  EXPECT(cudaMemcpy(ro, drs + 2 * rank, sizeof ro, cudaMemcpyDeviceToHost) == cudaSuccess);
  EXPECT(ro[0] == (rank ? 7.0f : 3.0f) && ro[1] == (rank ? 9.0f : 5.0f));
  /* overlapping buffers that are not the in-place layout are rejected (both ranks) */
  EXPECT(ncclAllReduce(ds, ds + 1, 16, ncclFloat32, ncclSum, comm, st) == ncclInvalidArgument);
  EXPECT(ncclAllGather(dg, dg + 1, 2, ncclUint8, comm, st) == ncclInvalidArgument);
  NC_CHECK(ncclCommFinalize(comm));
  NC_CHECK(ncclCommDestroy(comm));
  cudaFree(ds), cudaFree(dr), cudaFree(di), cudaFree(db), cudaFree(dbo), cudaFree(dg), cudaFree(dm), cudaFree(drs);
  cudaStreamDestroy(st);
  free(h), free(o);
  return 0;
}

/* A non-blocking communicator, as comm_nccl.c opens it: calls may return ncclInProgress, the
 * state is polled with ncclCommGetAsyncError, and a call before the state settled is misuse. */
static int rank_nonblocking(int rank, ncclUniqueId id) {
  ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
  cfg.blocking = 0;
  ncclComm_t comm;
  ncclResult_t r = ncclCommInitRankConfig(&comm, 2, id, rank, &cfg);
  EXPECT(r == ncclInProgress || r == ncclSuccess);
  do EXPECT(ncclCommGetAsyncError(comm, &r) == ncclSuccess);
  while (r == ncclInProgress);
  EXPECT(r == ncclSuccess);
  float v = 1.0f + rank, out = 0;
  float *d = dev(&v, 4);
  r = ncclAllReduce(d, d, 1, ncclFloat32, ncclSum, comm, NULL);
  EXPECT(r == ncclInProgress || r == ncclSuccess);
  if (r == ncclInProgress) EXPECT(ncclAllReduce(d, d, 1, ncclFloat32, ncclSum, comm, NULL) == ncclInvalidUsage);
  do EXPECT(ncclCommGetAsyncError(comm, &r) == ncclSuccess);
  while (r == ncclInProgress);
  EXPECT(r == ncclSuccess);
  EXPECT(cudaMemcpy(&out, d, 4, cudaMemcpyDeviceToHost) == cudaSuccess);
  EXPECT(out == 3.0f);
  /* a group of two: ncclGroupEnd may return ncclInProgress, and both members must run */
  double two[2] = {1.0 + rank, 10.0 * rank};
  double *d2 = dev(two, sizeof two);
  NC_CHECK(ncclGroupStart());
  NC_CHECK(ncclAllReduce(d, d, 1, ncclFloat32, ncclSum, comm, NULL));
  NC_CHECK(ncclAllReduce(d2, d2, 2, ncclFloat64, ncclSum, comm, NULL));
  r = ncclGroupEnd();
  EXPECT(r == ncclInProgress || r == ncclSuccess);
  do EXPECT(ncclCommGetAsyncError(comm, &r) == ncclSuccess);
  while (r == ncclInProgress);
  EXPECT(r == ncclSuccess);
  EXPECT(cudaMemcpy(&out, d, 4, cudaMemcpyDeviceToHost) == cudaSuccess);
  EXPECT(cudaMemcpy(two, d2, sizeof two, cudaMemcpyDeviceToHost) == cudaSuccess);
  EXPECT(out == 6.0f && two[0] == 3.0 && two[1] == 10.0);
  cudaFree(d2);
  NC_CHECK(ncclCommFinalize(comm));
  NC_CHECK(ncclCommDestroy(comm));
  cudaFree(d);
  return 0;
}

/* Rank 1 aborts instead of joining the all-reduce: rank 0's collective fails with a remote error
 * instead of hanging. */
static int rank_peer_aborts(int rank, ncclUniqueId id) {
  ncclComm_t comm;
  NC_CHECK(ncclCommInitRank(&comm, 2, id, rank));
  if (rank == 1) {
    usleep(100 * 1000);
    NC_CHECK(ncclCommAbort(comm));
    return 0;
  }
  float *d = dev(NULL, 64);
  NC_CHECK(ncclAllReduce(d, d, 16, ncclFloat32, ncclSum, comm, NULL));
  cudaDeviceSynchronize();
  ncclResult_t r = ncclSuccess;
  EXPECT(ncclCommGetAsyncError(comm, &r) == ncclSuccess);
  EXPECT(r == ncclRemoteError);
  EXPECT(strstr(ncclGetLastError(comm), "aborted") != NULL);
  /* an errored communicator refuses further work */
  EXPECT(ncclAllReduce(d, d, 16, ncclFloat32, ncclSum, comm, NULL) == ncclInvalidUsage);
  NC_CHECK(ncclCommAbort(comm));
  cudaFree(d);
  return 0;
}

static void run_two_ranks(int (*body)(int, ncclUniqueId), const char *what) {
  ncclUniqueId id;
  ck_assert_int_eq(ncclGetUniqueId(&id), ncclSuccess);
  setenv("EMU_NCCL_TIMEOUT_S", "60", 0); /* a hung collective fails the case instead of the CI job */
  fflush(NULL);
  pid_t pid[2];
  for (int r = 0; r < 2; r++) {
    pid[r] = fork();
    ck_assert_int_ge(pid[r], 0);
    if (pid[r] == 0) _exit(body(r, id));
  }
  for (int done = 0; done < 2; done++) { /* in exit order: a failed rank must not wait for the other */
    int status = 0;
    pid_t p = waitpid(-1, &status, 0);
    ck_assert_msg(p == pid[0] || p == pid[1], "waitpid: %d", (int)p);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: rank %d failed (status 0x%x)", what,
                  p == pid[0] ? 0 : 1, status);
  }
}

START_TEST(test_nccl_collectives_two_ranks) { run_two_ranks(rank_collectives, "collectives"); }
END_TEST
START_TEST(test_nccl_nonblocking_two_ranks) { run_two_ranks(rank_nonblocking, "non-blocking"); }
END_TEST
START_TEST(test_nccl_peer_abort_is_an_error_not_a_hang) { run_two_ranks(rank_peer_aborts, "peer abort"); }
END_TEST

START_TEST(test_nccl_rejects_bad_init) {
  ncclUniqueId id;
  memset(&id, 0, sizeof id);
  ncclComm_t comm;
  ck_assert_int_eq(ncclCommInitRank(&comm, 2, id, 0), ncclInvalidArgument); /* not from ncclGetUniqueId */
  ck_assert_int_eq(ncclGetUniqueId(&id), ncclSuccess);
  ck_assert_int_eq(ncclCommInitRank(&comm, 2, id, 2), ncclInvalidArgument);
  ck_assert_int_eq(ncclCommInitRank(&comm, 0, id, 0), ncclInvalidArgument);
  ncclConfig_t bad;
  memset(&bad, 0, sizeof bad);
  ck_assert_int_eq(ncclCommInitRankConfig(&comm, 1, id, 0, &bad), ncclInvalidArgument);
  ck_assert_int_eq(ncclGroupEnd(), ncclInvalidUsage);
  /* a 1-rank communicator works without peers */
  ck_assert_int_eq(ncclCommInitRank(&comm, 1, id, 0), ncclSuccess);
  float v = 2.5f, *d = dev(&v, 4);
  ck_assert_int_eq(ncclAllReduce(d, d, 1, ncclFloat32, ncclSum, comm, NULL), ncclSuccess);
  get(&v, d, 4);
  ck_assert_float_eq(v, 2.5f);
  ck_assert_int_eq(ncclCommDestroy(comm), ncclSuccess);
  cudaFree(d);
}
END_TEST

static Suite *cudaemu_libs_suite(void) {
  Suite *s = suite_create("cudaemu_libs");
  TCase *tc = tcase_create("cublas");
  tcase_add_test(tc, test_gemm_transposes_and_leading_dims);
  tcase_add_test(tc, test_gemm_beta_zero_ignores_c_and_device_pointer_mode);
  tcase_add_test(tc, test_gemm_rejects_bad_arguments);
  tcase_add_test(tc, test_gemm_tf32_rounds_operands);
  tcase_add_test(tc, test_gemm_bf16_round_to_nearest_even);
  suite_add_tcase(s, tc);
  tc = tcase_create("cudnn");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_conv_all_layouts_modes_groups);
  tcase_add_test(tc, test_conv_wrong_layout_or_mode_gives_wrong_answer);
  tcase_add_test(tc, test_conv_rejects_what_cudnn_rejects);
  tcase_add_test(tc, test_conv_find_and_get_algorithms);
  tcase_add_test(tc, test_conv_tf32_and_bf16_rounding);
  tcase_add_test(tc, test_conv_beta_zero_does_not_read_output);
  suite_add_tcase(s, tc);
  tc = tcase_create("nccl");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_nccl_collectives_two_ranks);
  tcase_add_test(tc, test_nccl_nonblocking_two_ranks);
  tcase_add_test(tc, test_nccl_peer_abort_is_an_error_not_a_hang);
  tcase_add_test(tc, test_nccl_rejects_bad_init);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(cudaemu_libs_suite)
