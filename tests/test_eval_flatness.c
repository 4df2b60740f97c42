/* Prediction flatness (eval/flatness.c): sorted softmax of queries against keys against a
 * double-precision brute force on odd sizes, the mean curve and entropy, the error paths,
 * and the CUDA backend against the CPU when a device is present. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/flatness.h"
#include "tests/support/testutil.h"

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Row-normalised random vectors. */
static void unit_rows(float *x, int n, int d, uint32_t seed) {
  unmix_test_fill(x, (size_t)n * d, seed, -1.0f, 1.0f);
  for (int i = 0; i < n; i++) {
    double s = 0;
    for (int j = 0; j < d; j++) s += (double)x[i * d + j] * x[i * d + j];
    for (int j = 0; j < d; j++) x[i * d + j] = (float)(x[i * d + j] / sqrt(s));
  }
}

START_TEST(test_sorted_probs_match_brute_force) {
  enum { M = 7, D = 5, K = 13 };
  const float T = 0.2f;
  float q[M * D], keys[K * D], out[M * K];
  unit_rows(q, M, D, 1);
  unit_rows(keys, K, D, 2);
  ck_assert(unmix_flatness_sorted_probs(unmix_test_cpu(), q, M, D, keys, K, T, out) == UNMIX_OK);
  for (int i = 0; i < M; i++) {
    double p[K], z = 0, mx = -1e30;
    for (int j = 0; j < K; j++) {
      double s = 0;
      for (int e = 0; e < D; e++) s += (double)q[i * D + e] * keys[j * D + e];
      p[j] = s / T;
      mx = p[j] > mx ? p[j] : mx;
    }
    for (int j = 0; j < K; j++) z += p[j] = exp(p[j] - mx);
    for (int j = 0; j < K; j++) p[j] /= z;
    qsort(p, K, sizeof(double), cmp_double);
    float want[K];
    for (int j = 0; j < K; j++) want[j] = (float)p[j];
    ck_assert_close("sorted probabilities", out + i * K, want, K, 1e-7, 1e-5);
    for (int j = 1; j < K; j++) ck_assert(out[i * K + j - 1] <= out[i * K + j]);
  }
  double mean[K];
  unmix_flatness_mean_curve(out, M, K, mean);
  double total = 0;
  for (int r = 0; r < K; r++) {
    double s = 0;
    for (int i = 0; i < M; i++) s += out[i * K + r];
    ck_assert(fabs(mean[r] - s / M) < 1e-12);
    total += mean[r];
  }
  ck_assert(fabs(total - 1.0) < 1e-5);
  /* entropy: uniform = log K, one-hot = 0 */
  float uni[K], hot[K] = {0};
  for (int j = 0; j < K; j++) uni[j] = 1.0f / K;
  hot[3] = 1.0f;
  ck_assert(fabs(unmix_flatness_entropy(uni, K) - log((double)K)) < 1e-6);
  ck_assert(unmix_flatness_entropy(hot, K) == 0.0);
  /* a lower temperature makes every curve more peaked */
  float cold[M * K];
  ck_assert(unmix_flatness_sorted_probs(unmix_test_cpu(), q, M, D, keys, K, T / 4, cold) == UNMIX_OK);
  for (int i = 0; i < M; i++) ck_assert(cold[i * K + K - 1] >= out[i * K + K - 1]);
}
END_TEST

START_TEST(test_errors) {
  float q[4] = {1, 0, 0, 1}, k[4] = {1, 0, 0, 1}, out[4];
  ck_assert_int_eq(unmix_flatness_sorted_probs(unmix_test_cpu(), q, 2, 2, k, 2, 0.0f, out), UNMIX_ERR_ARG);
  ck_assert_int_eq(unmix_flatness_sorted_probs(unmix_test_cpu(), q, 2, 2, k, 2, NAN, out), UNMIX_ERR_ARG);
  ck_assert_int_eq(unmix_flatness_sorted_probs(unmix_test_cpu(), q, 0, 2, k, 2, 0.1f, out), UNMIX_ERR_ARG);
  ck_assert_int_eq(unmix_flatness_sorted_probs(unmix_test_cpu(), q, 2, 2, k, 0, 0.1f, out), UNMIX_ERR_ARG);
}
END_TEST

START_TEST(test_cuda_matches_cpu) {
  const struct unmix_backend *gpu = unmix_test_cuda_or_skip("flatness: test_cuda_matches_cpu");
  if (!gpu) return;
  enum { M = 33, D = 17, K = 257 };
  float *q = malloc(sizeof(float) * M * D), *keys = malloc(sizeof(float) * K * D);
  float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * M * K);
  unit_rows(q, M, D, 3);
  unit_rows(keys, K, D, 4);
  float *qd = gpu->alloc(sizeof(float) * M * D);
  gpu->memcpy_h2d(qd, q, sizeof(float) * M * D);
  gpu->set_precision(UNMIX_PREC_FP32);
  ck_assert(unmix_flatness_sorted_probs(unmix_test_cpu(), q, M, D, keys, K, 0.1f, a) == UNMIX_OK);
  ck_assert(unmix_flatness_sorted_probs(gpu, qd, M, D, keys, K, 0.1f, b) == UNMIX_OK);
  ck_assert_close("cuda vs cpu", b, a, (size_t)M * K, 1e-7, 1e-4);
  gpu->free(qd);
  free(q), free(keys), free(a), free(b);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("eval_flatness");
  TCase *tc = tcase_create("flatness");
  tcase_add_test(tc, test_sorted_probs_match_brute_force);
  tcase_add_test(tc, test_errors);
  tcase_add_test(tc, test_cuda_matches_cpu);
  suite_add_tcase(s, tc);
  return s;
}

UNMIX_TEST_MAIN(suite)
