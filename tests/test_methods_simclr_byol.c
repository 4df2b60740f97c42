/* SimCLR and BYOL as the W-MSE codebase trains them: the two-view losses and their gradients
 * against float64 PyTorch transcriptions (tests/golden/simclr_byol.bin, written by
 * tests/golden/gen/gen_simclr_byol.py), to fp32 rounding, plus the properties the
 * transcription implies (the 1e9 mask removes the self-similarity, the loss is symmetric
 * in its views, accumulation is +=). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/methods/wmse_losses.h"
#include "tests/support/testutil.h"

static struct unmix_fixture *load(void) {
  char path[1024];
  return unmix_fixture_load(unmix_test_src_path("tests/golden/simclr_byol.bin", path, sizeof path));
}

static const char *const CASES[] = {"a", "b", "c"};

static void to_double(const float *x, double *y, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = x[i];
}

START_TEST(test_ntxent_matches_reference) {
  struct unmix_fixture *fx = load();
  const struct unmix_backend *be = unmix_test_cpu();
  char key[64];
  snprintf(key, sizeof key, "ntxent/%s/z0", CASES[_i]);
  const struct unmix_fixture_entry *e = unmix_fixture_find(fx, key);
  ck_assert(e && e->ndim == 2);
  const int n = (int)e->shape[0], d = (int)e->shape[1];
  const size_t nd = (size_t)n * d;
  const float *z0 = e->data;
  snprintf(key, sizeof key, "ntxent/%s/z1", CASES[_i]);
  const float *z1 = unmix_fixture_f32(fx, key, NULL);
  float *work = malloc(sizeof(float) * (size_t)unmix_simclr_ntxent_workspace(n, d));
  float *dz0 = calloc(nd, sizeof(float)), *dz1 = calloc(nd, sizeof(float));
  double loss;
  unmix_simclr_ntxent(be, n, d, 0.5f, z0, z1, 1.0f, dz0, dz1, &loss, work);
  snprintf(key, sizeof key, "ntxent/%s/loss", CASES[_i]);
  double want = unmix_fixture_scalar(fx, key);
  ck_assert_msg(fabs(loss - want) <= 1e-5 * fabs(want) + 1e-6, "case %s: loss %.9g, reference %.9g", CASES[_i], loss,
                want);
  double *g = malloc(sizeof(double) * nd);
  to_double(dz0, g, nd);
  snprintf(key, sizeof key, "ntxent/%s/dz0", CASES[_i]);
  ck_assert(unmix_close_d("dL/dz0", g, unmix_fixture_f64(fx, key, NULL), nd, 1e-7, 1e-4));
  to_double(dz1, g, nd);
  snprintf(key, sizeof key, "ntxent/%s/dz1", CASES[_i]);
  ck_assert(unmix_close_d("dL/dz1", g, unmix_fixture_f64(fx, key, NULL), nd, 1e-7, 1e-4));
  /* accumulation: a second call with dscale 0.5 adds half of the gradient */
  float *again = malloc(sizeof(float) * nd);
  memcpy(again, dz0, sizeof(float) * nd);
  unmix_simclr_ntxent(be, n, d, 0.5f, z0, z1, 0.5f, again, NULL, &loss, work);
  for (size_t i = 0; i < nd; i++) ck_assert(fabsf(again[i] - 1.5f * dz0[i]) <= 1e-6f + 1e-5f * fabsf(dz0[i]));
  /* swapping the views leaves the loss unchanged (both directions are averaged) */
  double swapped;
  unmix_simclr_ntxent(be, n, d, 0.5f, z1, z0, 1.0f, NULL, NULL, &swapped, work);
  ck_assert(fabs(swapped - loss) <= 1e-6 * fabs(loss));
  free(again);
  free(g);
  free(dz0);
  free(dz1);
  free(work);
  unmix_fixture_free(fx);
}
END_TEST

/* The positive pair is (z0_i, z1_i) and the self-similarity is masked: with identical views
 * whose images are mutually orthogonal, each anchor has cosine 1 to its positive and 0 to its
 * 2n-2 negatives, so at tau 0.5 L = log(e^2 + 2n - 2) - 2 (an unmasked self term would add
 * another e^2 to the sum). */
START_TEST(test_ntxent_closed_form) {
  enum { N = 4, D = 6 };
  float z[N * D] = {0};
  for (int i = 0; i < N; i++) z[i * D + i] = 1.0f + (float)i; /* orthogonal, unnormalised */
  float *work = malloc(sizeof(float) * (size_t)unmix_simclr_ntxent_workspace(N, D));
  double loss;
  unmix_simclr_ntxent(unmix_test_cpu(), N, D, 0.5f, z, z, 1.0f, NULL, NULL, &loss, work);
  double want = log(exp(2.0) + 2 * N - 2) - 2.0;
  ck_assert_msg(fabs(loss - want) < 1e-6, "loss %.9g, closed form %.9g", loss, want);
  free(work);
}
END_TEST

START_TEST(test_nmse_matches_reference) {
  struct unmix_fixture *fx = load();
  const struct unmix_backend *be = unmix_test_cpu();
  char key[64];
#define GET(name) (snprintf(key, sizeof key, "nmse/%s/" name, CASES[_i]), unmix_fixture_f32(fx, key, NULL))
  snprintf(key, sizeof key, "nmse/%s/p0", CASES[_i]);
  const struct unmix_fixture_entry *e = unmix_fixture_find(fx, key);
  ck_assert(e && e->ndim == 2);
  const int n = (int)e->shape[0], d = (int)e->shape[1];
  const size_t nd = (size_t)n * d;
  const float *p0 = GET("p0"), *p1 = GET("p1"), *t0 = GET("t0"), *t1 = GET("t1");
#undef GET
  float *work = malloc(sizeof(float) * (size_t)unmix_byol_nmse_workspace(n, d));
  float *dp0 = calloc(nd, sizeof(float)), *dp1 = calloc(nd, sizeof(float));
  double l01, l10;
  /* the reference sums the two directions: nmse(p0, t1) + nmse(p1, t0) */
  unmix_byol_nmse(be, n, d, p0, t1, 1.0f, dp0, &l01, work);
  unmix_byol_nmse(be, n, d, p1, t0, 1.0f, dp1, &l10, work);
  snprintf(key, sizeof key, "nmse/%s/loss", CASES[_i]);
  double want = unmix_fixture_scalar(fx, key);
  ck_assert_msg(fabs(l01 + l10 - want) <= 1e-6 * fabs(want) + 1e-6, "case %s: loss %.9g, reference %.9g", CASES[_i],
                l01 + l10, want);
  ck_assert(l01 >= 0 && l01 <= 4 && l10 >= 0 && l10 <= 4);
  double *g = malloc(sizeof(double) * nd);
  to_double(dp0, g, nd);
  snprintf(key, sizeof key, "nmse/%s/dp0", CASES[_i]);
  ck_assert(unmix_close_d("dL/dp0", g, unmix_fixture_f64(fx, key, NULL), nd, 1e-7, 1e-4));
  to_double(dp1, g, nd);
  snprintf(key, sizeof key, "nmse/%s/dp1", CASES[_i]);
  ck_assert(unmix_close_d("dL/dp1", g, unmix_fixture_f64(fx, key, NULL), nd, 1e-7, 1e-4));
  /* identical directions: loss 0 (up to rounding) and a zero gradient */
  double self;
  float *gz = calloc(nd, sizeof(float));
  unmix_byol_nmse(be, n, d, p0, p0, 1.0f, gz, &self, work);
  ck_assert(fabs(self) < 1e-6);
  for (size_t i = 0; i < nd; i++) ck_assert(fabsf(gz[i]) < 1e-5f);
  free(gz);
  free(g);
  free(dp0);
  free(dp1);
  free(work);
  unmix_fixture_free(fx);
}
END_TEST

static Suite *wmse_suite(void) {
  Suite *s = suite_create("methods_simclr_byol");
  TCase *tc = tcase_create("losses");
  tcase_add_loop_test(tc, test_ntxent_matches_reference, 0, 3);
  tcase_add_test(tc, test_ntxent_closed_form);
  tcase_add_loop_test(tc, test_nmse_matches_reference, 0, 3);
  suite_add_tcase(s, tc);
  return s;
}

UNMIX_TEST_MAIN(wmse_suite)
