/* The W-MSE codebase's linear protocol on cached features (eval/lincls_features.c): the
 * trained classifier and its accuracy against a float64 PyTorch run of eval/sgd.py there
 * (full batch, so the data order does not matter), reproducibility, the lr decay and errors.
 * Fixture: tests/golden/simclr_byol.bin (tests/golden/gen/gen_simclr_byol.py). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/lincls_features.h"
#include "tests/support/testutil.h"

static struct unmix_fixture *load(void) {
  char path[1024];
  return unmix_fixture_load(unmix_test_src_path("tests/golden/simclr_byol.bin", path, sizeof path));
}

START_TEST(test_linfeat_matches_torch) {
  struct unmix_fixture *fx = load();
  const int32_t *iv = unmix_fixture_i32(fx, "lin/ints", NULL); /* n m d C epochs */
  const int n = iv[0], m = iv[1], d = iv[2], C = iv[3];
  struct unmix_linfeat_params p = unmix_linfeat_reference();
  p.epochs = iv[4];
  p.batch_size = n; /* the reference run is full-batch */
  p.init_w = unmix_fixture_f32(fx, "lin/w0", NULL);
  p.init_b = unmix_fixture_f32(fx, "lin/b0", NULL);
  float w[64], b[8];
  struct unmix_linfeat_result r;
  ck_assert_int_eq(unmix_linfeat_run(unmix_test_cpu(), unmix_fixture_f32(fx, "lin/x", NULL),
                                     unmix_fixture_i32(fx, "lin/y", NULL), n, unmix_fixture_f32(fx, "lin/xt", NULL),
                                     unmix_fixture_i32(fx, "lin/yt", NULL), m, d, C, &p, &r, w, b),
                   UNMIX_OK);
  /* float32 against float64 over 30 Adam steps of size ~lr: a few 1e-6 */
  const double *wr = unmix_fixture_f64(fx, "lin/w", NULL), *br = unmix_fixture_f64(fx, "lin/b", NULL);
  double wd[64], bd[8];
  for (int i = 0; i < C * d; i++) wd[i] = w[i];
  for (int i = 0; i < C; i++) bd[i] = b[i];
  ck_assert(unmix_close_d("weight", wd, wr, (size_t)C * d, 2e-5, 1e-4));
  ck_assert(unmix_close_d("bias", bd, br, (size_t)C, 2e-5, 1e-4));
  ck_assert_double_eq_tol(r.top1, unmix_fixture_scalar(fx, "lin/top1"), 1e-9);
  ck_assert_double_eq_tol(r.top5, unmix_fixture_scalar(fx, "lin/top5"), 1e-9);
  ck_assert_int_eq(r.epochs, p.epochs);
  ck_assert(isfinite(r.last_train_loss) && r.last_train_loss > 0);
  unmix_fixture_free(fx);
}
END_TEST

/* Minibatches: a seed gives the same classifier twice, another seed a different one; the
 * classifier learns a separable problem; the default lr decays to lr_end (a run whose lr
 * stays at 1e-2 moves the weights differently). */
START_TEST(test_linfeat_minibatch_reproducible_and_learns) {
  enum { N = 240, M = 60, D = 5, C = 3 };
  float *x = malloc(sizeof(float) * N * D), *xt = malloc(sizeof(float) * M * D);
  int32_t y[N], yt[M];
  unmix_test_fill(x, N * D, 1, -0.5f, 0.5f);
  unmix_test_fill(xt, M * D, 2, -0.5f, 0.5f);
  for (int i = 0; i < N; i++) {
    y[i] = i % C;
    x[i * D + y[i]] += 2.0f;
  }
  for (int i = 0; i < M; i++) {
    yt[i] = (i * 7) % C;
    xt[i * D + yt[i]] += 2.0f;
  }
  struct unmix_linfeat_params p = unmix_linfeat_reference();
  p.epochs = 20;
  p.batch_size = 50; /* 4 batches, 40 samples dropped per epoch */
  p.seed = 3;
  float w1[C * D], w2[C * D], w3[C * D], w4[C * D];
  struct unmix_linfeat_result r;
  const struct unmix_backend *be = unmix_test_cpu();
  ck_assert_int_eq(unmix_linfeat_run(be, x, y, N, xt, yt, M, D, C, &p, &r, w1, NULL), UNMIX_OK);
  ck_assert_msg(r.top1 >= 90.0, "top-1 %.1f%% on a separable problem (chance 33%%)", r.top1);
  ck_assert_int_eq(unmix_linfeat_run(be, x, y, N, xt, yt, M, D, C, &p, &r, w2, NULL), UNMIX_OK);
  ck_assert(!memcmp(w1, w2, sizeof w1));
  p.seed = 4;
  ck_assert_int_eq(unmix_linfeat_run(be, x, y, N, xt, yt, M, D, C, &p, &r, w3, NULL), UNMIX_OK);
  ck_assert(memcmp(w1, w3, sizeof w1) != 0);
  p.seed = 3;
  p.lr_end = p.lr; /* gamma 1: no decay */
  ck_assert_int_eq(unmix_linfeat_run(be, x, y, N, xt, yt, M, D, C, &p, &r, w4, NULL), UNMIX_OK);
  ck_assert(memcmp(w1, w4, sizeof w1) != 0);
  free(x);
  free(xt);
}
END_TEST

START_TEST(test_linfeat_errors) {
  float x[6] = {0}, w[6];
  int32_t y[3] = {0, 1, 2};
  struct unmix_linfeat_params p = unmix_linfeat_reference();
  p.epochs = 1;
  struct unmix_linfeat_result r;
  const struct unmix_backend *be = unmix_test_cpu();
  ck_assert_int_eq(unmix_linfeat_run(be, x, y, 3, x, y, 3, 2, 2, &p, &r, w, NULL), UNMIX_ERR_ARG); /* label 2 of 2 */
  ck_assert_int_eq(unmix_linfeat_run(be, x, y, 0, x, y, 3, 2, 3, &p, &r, w, NULL), UNMIX_ERR_ARG);
  p.lr = 0;
  ck_assert_int_eq(unmix_linfeat_run(be, x, y, 3, x, y, 3, 2, 3, &p, &r, w, NULL), UNMIX_ERR_ARG);
  p = unmix_linfeat_reference();
  p.epochs = 1;
  x[0] = NAN;
  ck_assert_int_eq(unmix_linfeat_run(be, x, y, 3, x, y, 3, 2, 3, &p, &r, w, NULL), UNMIX_ERR_NUMERIC);
}
END_TEST

static Suite *linfeat_suite(void) {
  Suite *s = suite_create("eval_linfeat");
  TCase *tc = tcase_create("linfeat");
  tcase_add_test(tc, test_linfeat_matches_torch);
  tcase_add_test(tc, test_linfeat_minibatch_reproducible_and_learns);
  tcase_add_test(tc, test_linfeat_errors);
  suite_add_tcase(s, tc);
  return s;
}

UNMIX_TEST_MAIN(linfeat_suite)
