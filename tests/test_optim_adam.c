/* Adam and the W-MSE codebase's schedules: the Adam step against torch.optim.Adam (float32,
 * and a float64 run for the fp32-rounding bound) and against closed forms, the warmup +
 * MultiStepLR learning rate against the reference loop's values, the BYOL tau schedule.
 * Fixture: tests/golden/simclr_byol.bin (tests/golden/gen/gen_simclr_byol.py). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/optim/adam.h"
#include "tests/support/testutil.h"

static struct unmix_fixture *load(void) {
  char path[1024];
  return unmix_fixture_load(unmix_test_src_path("tests/golden/simclr_byol.bin", path, sizeof path));
}

/* Runs our Adam over the fixture's gradient sequence; checks p after every step and the
 * final moments against torch (fp32 tight, fp64 within fp32 rounding). */
static void check_adam(const char *tag) {
  struct unmix_fixture *fx = load();
  const struct unmix_backend *be = unmix_test_cpu();
  size_t n, ng, nl;
  const float *p0 = unmix_fixture_f32(fx, "adam/p0", &n);
  const float *grads = unmix_fixture_f32(fx, "adam/grads", &ng);
  const double *lrs = unmix_fixture_f64(fx, "adam/lrs", &nl);
  char key[96];
  snprintf(key, sizeof key, "adam/%s/wd", tag);
  double wd = unmix_fixture_scalar(fx, key);
  ck_assert_uint_eq(ng, n * nl);
  struct unmix_adam_params ap = unmix_adam_params_default();
  ap.weight_decay = wd;
  struct unmix_adam a;
  ck_assert(unmix_adam_init(&a, be, (int64_t)n, &ap) == UNMIX_OK);
  float *p = malloc(n * sizeof *p);
  memcpy(p, p0, n * sizeof *p);
  snprintf(key, sizeof key, "adam/%s/f32/p", tag);
  const float *ref32 = unmix_fixture_f32(fx, key, NULL);
  snprintf(key, sizeof key, "adam/%s/f64/p", tag);
  const double *ref64 = unmix_fixture_f64(fx, key, NULL);
  for (size_t s = 0; s < nl; s++) {
    unmix_adam_step(&a, p, grads + s * n, lrs[s]);
    char what[64];
    snprintf(what, sizeof what, "%s p after step %zu (torch fp32)", tag, s + 1);
    /* same float32 operations as ATen's kernels: equal up to a couple of ulps */
    ck_assert_close(what, p, ref32 + s * n, n, 0.0, 4e-7);
    double pd[64];
    for (size_t i = 0; i < n; i++) pd[i] = p[i];
    snprintf(what, sizeof what, "%s p after step %zu (torch fp64)", tag, s + 1);
    ck_assert(unmix_close_d(what, pd, ref64 + s * n, n, 1e-7, 1e-6));
  }
  ck_assert_int_eq(a.steps, (int64_t)nl);
  snprintf(key, sizeof key, "adam/%s/f32/m", tag);
  /* ATen's vectorised lerp fuses w*(g-m)+m (one rounding); ours rounds twice, which shows
   * only where g - m cancels (|m| ~ 1e-6): hence the small absolute tolerance */
  ck_assert_close("exp_avg", a.m, unmix_fixture_f32(fx, key, NULL), n, 1e-10, 1e-6);
  snprintf(key, sizeof key, "adam/%s/f32/v", tag);
  ck_assert_close("exp_avg_sq", a.v, unmix_fixture_f32(fx, key, NULL), n, 1e-18, 1e-6);
  unmix_adam_free(&a);
  free(p);
  unmix_fixture_free(fx);
}

START_TEST(test_adam_matches_torch) { check_adam("wd0"); }
END_TEST

START_TEST(test_adam_coupled_l2_matches_torch) { check_adam("wd"); }
END_TEST

/* Closed forms: with a constant gradient g the bias-corrected moments are exactly g and g^2,
 * so every step moves p by -lr * g / (|g| + eps); with g = 0 and wd > 0 the first step
 * moves by -lr * wd*p / (|wd*p| + eps) (coupled L2: the decay goes through the moments). */
START_TEST(test_adam_closed_forms) {
  const struct unmix_backend *be = unmix_test_cpu();
  enum { N = 11 };
  float p[N], g[N], p_start[N];
  for (int i = 0; i < N; i++) {
    p[i] = p_start[i] = 0.1f * (float)(i - 5);
    g[i] = (i % 2 ? 1.0f : -1.0f) * 1e-3f * (float)(i + 1);
  }
  struct unmix_adam_params ap = unmix_adam_params_default();
  struct unmix_adam a;
  ck_assert(unmix_adam_init(&a, be, N, &ap) == UNMIX_OK);
  const double lr = 1e-2;
  for (int s = 1; s <= 20; s++) {
    unmix_adam_step(&a, p, g, lr);
    for (int i = 0; i < N; i++) {
      double want = p_start[i] - s * lr * g[i] / (fabs(g[i]) + 1e-8);
      ck_assert_msg(fabs(p[i] - want) < 2e-6, "step %d p[%d] = %.9g, closed form %.9g", s, i, p[i], want);
    }
  }
  unmix_adam_free(&a);

  ap.weight_decay = 0.5;
  ck_assert(unmix_adam_init(&a, be, N, &ap) == UNMIX_OK);
  float z[N] = {0};
  memcpy(p, p_start, sizeof p);
  unmix_adam_step(&a, p, z, lr);
  for (int i = 0; i < N; i++) {
    double d = 0.5 * p_start[i];
    double want = p_start[i] - lr * d / (fabs(d) + 1e-8);
    ck_assert_msg(fabs(p[i] - want) < 1e-6, "wd step p[%d] = %.9g, closed form %.9g", i, p[i], want);
  }
  unmix_adam_free(&a);
}
END_TEST

START_TEST(test_adam_rejects_bad_params) {
  const struct unmix_backend *be = unmix_test_cpu();
  struct unmix_adam a;
  struct unmix_adam_params ap = unmix_adam_params_default();
  ap.beta1 = 1.0;
  ck_assert(unmix_adam_init(&a, be, 4, &ap) == UNMIX_ERR_ARG);
  ap = unmix_adam_params_default();
  ap.eps = 0.0;
  ck_assert(unmix_adam_init(&a, be, 4, &ap) == UNMIX_ERR_ARG);
  ap = unmix_adam_params_default();
  ap.weight_decay = NAN;
  ck_assert(unmix_adam_init(&a, be, 4, &ap) == UNMIX_ERR_ARG);
  ap = unmix_adam_params_default();
  ck_assert(unmix_adam_init(&a, be, 0, &ap) == UNMIX_ERR_ARG);
}
END_TEST

/* Every iteration's lr of the reference loop (warmup assignment + MultiStepLR per epoch). */
START_TEST(test_wmse_schedule_matches_reference_loop) {
  struct unmix_fixture *fx = load();
  int count = (int)unmix_fixture_i32(fx, "sched/count", NULL)[0];
  ck_assert_int_ge(count, 5);
  for (int c = 0; c < count; c++) {
    char key[64];
    snprintf(key, sizeof key, "sched/%d/ints", c);
    const int32_t *v = unmix_fixture_i32(fx, key, NULL);
    struct unmix_wmse_schedule s = {.warmup_iters = v[2], .n_drops = v[3]};
    for (int i = 0; i < s.n_drops; i++) s.drops[i] = v[4 + i];
    snprintf(key, sizeof key, "sched/%d/gamma", c);
    s.gamma = unmix_fixture_scalar(fx, key);
    snprintf(key, sizeof key, "sched/%d/lr", c);
    size_t n;
    const double *lr = unmix_fixture_f64(fx, key, &n);
    ck_assert_uint_eq(n, (size_t)v[0] * (size_t)v[1]);
    int64_t k = 0;
    for (int ep = 0; ep < v[0]; ep++)
      for (int it = 0; it < v[1]; it++, k++) {
        double got = unmix_wmse_lr(&s, 3e-3, v[0], ep, k, v[1]);
        ck_assert_msg(fabs(got - lr[k]) <= 1e-15, "case %d epoch %d iter %d: lr %.17g, reference %.17g", c, ep, it,
                      got, lr[k]);
      }
  }
  unmix_fixture_free(fx);
}
END_TEST

/* The reference run: 1000 epochs of 97 iterations, drops at 950 and 975. */
START_TEST(test_wmse_schedule_reference_run) {
  struct unmix_wmse_schedule s = unmix_wmse_schedule_default();
  const double b = 3e-3;
  ck_assert(fabs(unmix_wmse_lr(&s, b, 1000, 0, 0, 97) - b / 500) < 1e-18);
  ck_assert(fabs(unmix_wmse_lr(&s, b, 1000, 5, 499, 97) - b) < 1e-18);
  ck_assert(unmix_wmse_lr(&s, b, 1000, 5, 500, 97) == b);
  ck_assert(unmix_wmse_lr(&s, b, 1000, 949, 949 * 97 + 96, 97) == b);
  ck_assert(fabs(unmix_wmse_lr(&s, b, 1000, 950, 950 * 97, 97) - 6e-4) < 1e-15);
  ck_assert(fabs(unmix_wmse_lr(&s, b, 1000, 974, 974 * 97, 97) - 6e-4) < 1e-15);
  ck_assert(fabs(unmix_wmse_lr(&s, b, 1000, 975, 975 * 97, 97) - 1.2e-4) < 1e-15);
  ck_assert(fabs(unmix_wmse_lr(&s, b, 1000, 999, 999 * 97 + 96, 97) - 1.2e-4) < 1e-15);
}
END_TEST

START_TEST(test_byol_tau_matches_reference) {
  struct unmix_fixture *fx = load();
  int epochs = unmix_fixture_i32(fx, "tau/epochs", NULL)[0];
  size_t n;
  const double *tau = unmix_fixture_f64(fx, "tau/values", &n);
  ck_assert_uint_eq(n, (size_t)epochs);
  for (int e = 0; e < epochs; e++)
    ck_assert_msg(fabs(unmix_byol_tau(0.99, e, epochs) - tau[e]) < 1e-15, "epoch %d: tau %.17g, reference %.17g", e,
                  unmix_byol_tau(0.99, e, epochs), tau[e]);
  ck_assert(unmix_byol_tau(0.99, 0, 1000) == 0.99);
  ck_assert(fabs(unmix_byol_tau(0.99, 500, 1000) - 0.995) < 1e-15);
  unmix_fixture_free(fx);
}
END_TEST

static Suite *adam_suite(void) {
  Suite *s = suite_create("optim_adam");
  TCase *tc = tcase_create("adam");
  tcase_add_test(tc, test_adam_matches_torch);
  tcase_add_test(tc, test_adam_coupled_l2_matches_torch);
  tcase_add_test(tc, test_adam_closed_forms);
  tcase_add_test(tc, test_adam_rejects_bad_params);
  tcase_add_test(tc, test_wmse_schedule_matches_reference_loop);
  tcase_add_test(tc, test_wmse_schedule_reference_run);
  tcase_add_test(tc, test_byol_tau_matches_reference);
  suite_add_tcase(s, tc);
  return s;
}

UNMIX_TEST_MAIN(adam_suite)
