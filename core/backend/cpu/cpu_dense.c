/* CPU dense ops: GEMM and linear layers (OpenBLAS), row-wise L2 normalisation, softmax,
 * losses, reductions and top-k. Row reductions accumulate in double.
 * Accumulation: dwt +=, dbias +=, dx =. */
#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend/cpu/cpu_ops.h"

void unmix_cpu_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
                    int ldb, float beta, float *c, int ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (int i = 0; i < m; i++)
      for (int j = 0; j < n; j++) c[(int64_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[(int64_t)i * ldc + j];
    return;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda,
              b, ldb, beta, c, ldc);
}

void unmix_cpu_linear_forward(int n, int in, int out, const float *x, const float *wt, const float *bias, float *y) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, wt, in, 0.0f, y, out);
  if (bias) {
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
      for (int j = 0; j < out; j++) y[(int64_t)i * out + j] += bias[j];
  }
}

void unmix_cpu_linear_backward(int n, int in, int out, const float *dy, const float *x, const float *wt, float *dx,
                               float *dwt, float *dbias) {
  if (dx) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, in, out, 1.0f, dy, out, wt, in, 0.0f, dx, in);
  if (dwt) cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, n, 1.0f, dy, out, x, in, 1.0f, dwt, in);
  if (dbias) {
#pragma omp parallel for schedule(static)
    for (int j = 0; j < out; j++) {
      double s = 0.0;
      for (int i = 0; i < n; i++) s += dy[(int64_t)i * out + j];
      dbias[j] += (float)s;
    }
  }
}

void unmix_cpu_l2norm_forward(int n, int d, const float *x, float *y, float *norms, float eps) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) {
    const float *xr = x + (int64_t)i * d;
    double ss = 0.0;
    for (int j = 0; j < d; j++) ss += (double)xr[j] * xr[j];
    float nr = (float)sqrt(ss);
    norms[i] = nr;
    float den = nr > eps ? nr : eps;
    for (int j = 0; j < d; j++) y[(int64_t)i * d + j] = xr[j] / den;
  }
}

void unmix_cpu_l2norm_backward(int n, int d, const float *dy, const float *x, const float *norms, float eps,
                               float *dx) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) {
    const float *xr = x + (int64_t)i * d, *gr = dy + (int64_t)i * d;
    float *o = dx + (int64_t)i * d;
    float nr = norms[i];
    if (nr > eps) {
      /* y = x/|x|: dx = (dy - y (y.dy)) / |x| */
      double dot = 0.0;
      for (int j = 0; j < d; j++) dot += (double)xr[j] * gr[j];
      double k = dot / ((double)nr * nr);
      for (int j = 0; j < d; j++) o[j] = (float)((gr[j] - xr[j] * k) / nr);
    } else {
      for (int j = 0; j < d; j++) o[j] = gr[j] / eps;
    }
  }
}

/* log-sum-exp of scale*x over a row, in double. */
static double row_lse(int d, float scale, const float *x, double *mx_out) {
  double mx = -INFINITY;
  for (int j = 0; j < d; j++) {
    double v = (double)scale * x[j];
    if (v > mx) mx = v;
  }
  double s = 0.0;
  for (int j = 0; j < d; j++) s += exp((double)scale * x[j] - mx);
  if (mx_out) *mx_out = mx;
  return mx + log(s);
}

void unmix_cpu_softmax_forward(int n, int d, float scale, const float *x, float *y) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) {
    const float *xr = x + (int64_t)i * d;
    double lse = row_lse(d, scale, xr, NULL);
    for (int j = 0; j < d; j++) y[(int64_t)i * d + j] = (float)exp((double)scale * xr[j] - lse);
  }
}

void unmix_cpu_softmax_backward(int n, int d, float scale, const float *dy, const float *y, float *dx) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) {
    const float *yr = y + (int64_t)i * d, *gr = dy + (int64_t)i * d;
    double dot = 0.0;
    for (int j = 0; j < d; j++) dot += (double)gr[j] * yr[j];
    for (int j = 0; j < d; j++) dx[(int64_t)i * d + j] = (float)(scale * yr[j] * (gr[j] - dot));
  }
}

void unmix_cpu_log_softmax_forward(int n, int d, float scale, const float *x, float *y) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) {
    const float *xr = x + (int64_t)i * d;
    double lse = row_lse(d, scale, xr, NULL);
    for (int j = 0; j < d; j++) y[(int64_t)i * d + j] = (float)((double)scale * xr[j] - lse);
  }
}

void unmix_cpu_log_softmax_backward(int n, int d, float scale, const float *dy, const float *y, float *dx) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) {
    const float *yr = y + (int64_t)i * d, *gr = dy + (int64_t)i * d;
    double s = 0.0;
    for (int j = 0; j < d; j++) s += gr[j];
    for (int j = 0; j < d; j++) dx[(int64_t)i * d + j] = (float)(scale * (gr[j] - exp((double)yr[j]) * s));
  }
}

void unmix_cpu_cross_entropy_forward(int n, int d, float scale, const float *logits, const int32_t *labels,
                                     float *probs, float *loss, float *correct_top1, float *correct_top5) {
  double *row_loss = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
  UNMIX_REQUIRE(row_loss != NULL, "out of memory in cross_entropy");
  int64_t c1 = 0, c5 = 0;
#pragma omp parallel for schedule(static) reduction(+ : c1, c5)
  for (int i = 0; i < n; i++) {
    const float *zr = logits + (int64_t)i * d;
    double lse = row_lse(d, scale, zr, NULL);
    for (int j = 0; j < d; j++) probs[(int64_t)i * d + j] = (float)exp((double)scale * zr[j] - lse);
    int y = labels[i];
    row_loss[i] = lse - (double)scale * zr[y];
    /* rank of the label: larger logits, plus equal ones at lower index (topk order) */
    int rank = 0;
    for (int j = 0; j < d; j++) rank += zr[j] > zr[y] || (zr[j] == zr[y] && j < y);
    c1 += rank < 1;
    c5 += rank < 5;
  }
  double total = 0.0; /* in row order: independent of the thread count */
  for (int i = 0; i < n; i++) total += row_loss[i];
  free(row_loss);
  loss[0] = (float)(total / n);
  if (correct_top1) correct_top1[0] = (float)c1;
  if (correct_top5) correct_top5[0] = (float)c5;
}

void unmix_cpu_cross_entropy_backward(int n, int d, float scale, float dloss, const float *probs,
                                      const int32_t *labels, float *dlogits) {
  const float k = dloss * scale / (float)n;
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) {
    const float *pr = probs + (int64_t)i * d;
    float *o = dlogits + (int64_t)i * d;
    for (int j = 0; j < d; j++) o[j] = k * pr[j];
    o[labels[i]] = k * (pr[labels[i]] - 1.0f);
  }
}

void unmix_cpu_soft_cross_entropy_forward(int n, int d, float scale, const float *logits, const float *targets,
                                          float *logprobs, float *loss) {
  double *row_loss = malloc(sizeof(double) * (size_t)(n > 0 ? n : 1));
  UNMIX_REQUIRE(row_loss != NULL, "out of memory in soft_cross_entropy");
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) {
    const float *zr = logits + (int64_t)i * d, *qr = targets + (int64_t)i * d;
    double lse = row_lse(d, scale, zr, NULL);
    double s = 0.0;
    for (int j = 0; j < d; j++) {
      double lp = (double)scale * zr[j] - lse;
      logprobs[(int64_t)i * d + j] = (float)lp;
      s += qr[j] * lp;
    }
    row_loss[i] = -s;
  }
  double total = 0.0; /* in row order: independent of the thread count */
  for (int i = 0; i < n; i++) total += row_loss[i];
  free(row_loss);
  loss[0] = (float)(total / n);
}

void unmix_cpu_soft_cross_entropy_backward(int n, int d, float scale, float dloss, const float *logprobs,
                                           const float *targets, float *dlogits) {
  const double k = (double)dloss * scale / (double)n;
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) {
    const float *lr = logprobs + (int64_t)i * d, *qr = targets + (int64_t)i * d;
    double qs = 0.0;
    for (int j = 0; j < d; j++) qs += qr[j];
    for (int j = 0; j < d; j++) dlogits[(int64_t)i * d + j] = (float)(k * (exp((double)lr[j]) * qs - qr[j]));
  }
}

/* Sum (or sum of squares) of x[0..n) in double over fixed blocks of SUM_BLOCK elements
 * whose partial sums are added in order: the result does not depend on the number of
 * threads (an OpenMP reduction's would). */
#define SUM_BLOCK ((int64_t)1 << 15)
static double blocked_sum(int64_t n, const float *x, int squares) {
  const int64_t nblk = (n + SUM_BLOCK - 1) / SUM_BLOCK;
  if (nblk <= 1) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += squares ? (double)x[i] * x[i] : (double)x[i];
    return s;
  }
  double *part = malloc(sizeof(double) * (size_t)nblk);
  UNMIX_REQUIRE(part != NULL, "out of memory in a reduction");
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < nblk; b++) {
    const int64_t i1 = (b + 1) * SUM_BLOCK < n ? (b + 1) * SUM_BLOCK : n;
    double s = 0.0;
    for (int64_t i = b * SUM_BLOCK; i < i1; i++) s += squares ? (double)x[i] * x[i] : (double)x[i];
    part[b] = s;
  }
  double s = 0.0;
  for (int64_t b = 0; b < nblk; b++) s += part[b];
  free(part);
  return s;
}

void unmix_cpu_sum(int64_t n, const float *x, float *out) { out[0] = (float)blocked_sum(n, x, 0); }

void unmix_cpu_sumsq_segments(int nseg, const int64_t *off, const float *x, float *out) {
  for (int sgi = 0; sgi < nseg; sgi++) out[sgi] = (float)blocked_sum(off[sgi + 1] - off[sgi], x + off[sgi], 1);
}

void unmix_cpu_row_sum(int n, int d, const float *x, float *out) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) {
    double s = 0.0;
    for (int j = 0; j < d; j++) s += x[(int64_t)i * d + j];
    out[i] = (float)s;
  }
}

void unmix_cpu_col_sum(int n, int d, const float *x, float *out) {
#pragma omp parallel for schedule(static)
  for (int j = 0; j < d; j++) {
    double s = 0.0;
    for (int i = 0; i < n; i++) s += x[(int64_t)i * d + j];
    out[j] = (float)s;
  }
}

void unmix_cpu_scale_rows(int n, int d, const float *s, float *x) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++)
    for (int j = 0; j < d; j++) x[(int64_t)i * d + j] *= s[i];
}

void unmix_cpu_scale_cols(int n, int d, const float *s, float *x) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++)
    for (int j = 0; j < d; j++) x[(int64_t)i * d + j] *= s[j];
}

void unmix_cpu_row_dot(int n, int d, const float *a, const float *b, float *out, int out_stride) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) {
    double s = 0.0;
    for (int j = 0; j < d; j++) s += (double)a[(int64_t)i * d + j] * b[(int64_t)i * d + j];
    out[(int64_t)i * out_stride] = (float)s;
  }
}

void unmix_cpu_axpy_rows(int n, int d, const float *s, int s_stride, const float *x, float *y) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) {
    const float k = s[(int64_t)i * s_stride];
    for (int j = 0; j < d; j++) y[(int64_t)i * d + j] += k * x[(int64_t)i * d + j];
  }
}

/* Min-heap of (value, index) ordered so the root is the "worst" kept element:
 * smaller value, or equal value with larger index. */
static int worse(float va, int32_t ia, float vb, int32_t ib) { return va < vb || (va == vb && ia > ib); }

static void sift_down(float *v, int32_t *ix, int k, int i) {
  for (;;) {
    int l = 2 * i + 1, r = l + 1, m = i;
    if (l < k && worse(v[l], ix[l], v[m], ix[m])) m = l;
    if (r < k && worse(v[r], ix[r], v[m], ix[m])) m = r;
    if (m == i) return;
    float tv = v[i]; v[i] = v[m]; v[m] = tv;
    int32_t ti = ix[i]; ix[i] = ix[m]; ix[m] = ti;
    i = m;
  }
}

void unmix_cpu_topk(int n, int d, int k, const float *x, float *vals, int32_t *idx) {
  UNMIX_REQUIRE(k >= 1 && k <= d, "topk: k=%d outside 1..%d", k, d);
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) {
    const float *xr = x + (int64_t)i * d;
    float *v = vals + (int64_t)i * k;
    int32_t *ix = idx + (int64_t)i * k;
    for (int j = 0; j < k; j++) { v[j] = xr[j]; ix[j] = j; }
    for (int j = k / 2 - 1; j >= 0; j--) sift_down(v, ix, k, j);
    for (int j = k; j < d; j++) {
      if (worse(v[0], ix[0], xr[j], j)) {
        v[0] = xr[j];
        ix[0] = j;
        sift_down(v, ix, k, 0);
      }
    }
    /* heap-sort so the best comes first */
    for (int end = k - 1; end > 0; end--) {
      float tv = v[0]; v[0] = v[end]; v[end] = tv;
      int32_t ti = ix[0]; ix[0] = ix[end]; ix[end] = ti;
      sift_down(v, ix, end, 0);
    }
  }
}
