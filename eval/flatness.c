/* Sorted softmax probabilities of queries against queue keys (see flatness.h). */
#include "eval/flatness.h"

#include <math.h>
#include <stdlib.h>

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

unmix_status unmix_flatness_sorted_probs(const struct unmix_backend *be, const float *q, int m, int d,
                                         const float *keys, int k, float t, float *out) {
  if (m < 1 || d < 1 || k < 1 || !q || !keys || !out)
    return unmix_error_set(UNMIX_ERR_ARG, "flatness: %d queries x %d keys of dimension %d", m, k, d);
  if (!(t > 0.0f) || !isfinite(t)) return unmix_error_set(UNMIX_ERR_ARG, "flatness: temperature %g must be > 0", (double)t);
  float *kd = be->alloc(sizeof(float) * (size_t)k * d);
  float *logits = be->alloc(sizeof(float) * (size_t)m * k);
  float *probs = be->alloc(sizeof(float) * (size_t)m * k);
  unmix_status st = UNMIX_OK;
  if (!kd || !logits || !probs) {
    st = unmix_error_set(UNMIX_ERR_NOMEM, "flatness: %d x %d probabilities", m, k);
  } else {
    be->memcpy_h2d(kd, keys, sizeof(float) * (size_t)k * d);
    be->gemm(false, true, m, k, d, 1.0f, q, d, kd, d, 0.0f, logits, k); /* (m, k) = q . keys^T */
    be->softmax_forward(m, k, 1.0f / t, logits, probs);
    be->memcpy_d2h(out, probs, sizeof(float) * (size_t)m * k);
    for (int i = 0; i < m; i++) qsort(out + (size_t)i * k, (size_t)k, sizeof(float), cmp_float);
  }
  if (kd) be->free(kd);
  if (logits) be->free(logits);
  if (probs) be->free(probs);
  return st;
}

void unmix_flatness_mean_curve(const float *sorted, int m, int k, double *mean) {
  for (int r = 0; r < k; r++) mean[r] = 0;
  for (int i = 0; i < m; i++)
    for (int r = 0; r < k; r++) mean[r] += sorted[(size_t)i * k + r];
  for (int r = 0; r < k; r++) mean[r] /= m;
}

double unmix_flatness_entropy(const float *p, int k) {
  double s = 0;
  for (int j = 0; j < k; j++)
    if (p[j] > 0) s -= (double)p[j] * log((double)p[j]);
  return s;
}
