/* CPU softmax, log-softmax and the cross-entropy losses (integer and soft targets), one
 * row at a time with row statistics in double. Accumulation: dx =. */
#include <math.h>
#include <stdlib.h>

#include "core/backend/cpu/internal.h"

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
