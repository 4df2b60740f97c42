/* Optimisers and schedules: SGD and LARC steps against PyTorch/apex (fixture from
 * gen_models.py, incl. a zero-norm tensor and skipped tensors), the MoCo EMA, and every
 * learning-rate schedule against its closed-form formula computed here. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/optim/optim.h"
#include "tests/support/golden.h"
#include "tests/support/testutil.h"

static void run_optim(enum unmix_optim_kind kind, const char *prefix) {
  char path[1024];
  struct unmix_fixture *fx = unmix_fixture_load(unmix_test_src_path("tests/golden/optim_sgd_larc.bin", path, sizeof path));
  const struct unmix_backend *be = unmix_test_cpu();
  struct unmix_param_store s = {0};
  int shapes[4][3] = {{7, 5, 0}, {13, 0, 0}, {3, 4, 2}, {6, 0, 0}};
  int nd[4] = {2, 1, 3, 1};
  for (int t = 0; t < 4; t++) {
    char name[16];
    snprintf(name, sizeof name, "p%d", t);
    unmix_param_store_add(&s, name, nd[t], shapes[t], UNMIX_LAYOUT_PLAIN, UNMIX_INIT_ZERO, 0.0f);
  }
  ck_assert(unmix_param_store_alloc(&s, be, true) == UNMIX_OK);
  for (int t = 0; t < 4; t++) {
    float v[64];
    unmix_golden_pattern(v, s.entries[t].numel, 7000 + t, 0.8, 0.0);
    if (t == 3) memset(v, 0, sizeof v); /* zero-norm tensor */
    unmix_param_store_set(&s, t, v);
  }
  struct unmix_optim_config oc = {0};
  oc.kind = kind;
  oc.momentum = 0.9f;
  oc.weight_decay = kind == UNMIX_OPTIM_SGD ? 5e-4f : 1e-6f;
  oc.larc_trust = 0.001f;
  oc.larc_eps = 1e-8f;
  struct unmix_optimizer o;
  ck_assert(unmix_optimizer_init(&o, &s, &oc) == UNMIX_OK);
  for (int step = 0; step < 3; step++) {
    for (int t = 0; t < 4; t++) {
      float g[64];
      unmix_golden_pattern(g, s.entries[t].numel, 8000 + 10 * step + t, 0.5, 0.0);
      s.be->memcpy_h2d(s.grad + s.entries[t].offset, g, sizeof(float) * s.entries[t].numel);
    }
    unmix_optimizer_step(&o, 0.1f);
    for (int t = 0; t < 4; t++) {
      char key[64];
      snprintf(key, sizeof key, "%s_step%d_p%d", prefix, step, t);
      size_t n;
      const float *want = unmix_fixture_f32(fx, key, &n);
      float got[64];
      unmix_param_store_get(&s, t, got);
      ck_assert_int_eq(n, (size_t)s.entries[t].numel);
      ck_assert_msg(unmix_close(key, got, want, n, 1e-7, 2e-6), "%s differs from PyTorch", key);
    }
  }
  unmix_optimizer_free(&o);
  unmix_param_store_free(&s);
  unmix_fixture_free(fx);
}

START_TEST(test_sgd_matches_pytorch) { run_optim(UNMIX_OPTIM_SGD, "sgd"); }
END_TEST
START_TEST(test_larc_matches_apex) { run_optim(UNMIX_OPTIM_LARC, "larc"); }
END_TEST

START_TEST(test_skipped_tensor_untouched) {
  /* SwAV freezes prototypes by setting grad = None: no update, no wd, no momentum. */
  const struct unmix_backend *be = unmix_test_cpu();
  struct unmix_param_store s = {0};
  int sh[1] = {5};
  unmix_param_store_add(&s, "a", 1, sh, UNMIX_LAYOUT_PLAIN, UNMIX_INIT_ONE, 0);
  unmix_param_store_add(&s, "b", 1, sh, UNMIX_LAYOUT_PLAIN, UNMIX_INIT_ONE, 0);
  unmix_param_store_add(&s, "c", 1, sh, UNMIX_LAYOUT_PLAIN, UNMIX_INIT_ONE, 0);
  ck_assert(unmix_param_store_alloc(&s, be, true) == UNMIX_OK);
  unmix_param_store_init_values(&s, 1, 0);
  for (int kind = 0; kind < 2; kind++) {
    struct unmix_optim_config oc = {.kind = kind, .momentum = 0.9f, .weight_decay = 0.1f, .larc_trust = 0.001f, .larc_eps = 1e-8f};
    struct unmix_optimizer o;
    ck_assert(unmix_optimizer_init(&o, &s, &oc) == UNMIX_OK);
    be->fill(s.total, 0.0f, s.momentum);
    be->fill(s.total, 0.5f, s.grad);
    unmix_optimizer_set_skip(&o, 1, true);
    float before[5], after[5];
    unmix_param_store_get(&s, 1, before);
    unmix_optimizer_step(&o, 1.0f);
    unmix_param_store_get(&s, 1, after);
    for (int i = 0; i < 5; i++) ck_assert(before[i] == after[i] && s.momentum[s.entries[1].offset + i] == 0.0f);
    unmix_param_store_get(&s, 2, after);
    ck_assert(after[0] != 1.0f);
    unmix_optimizer_free(&o);
    unmix_param_store_init_values(&s, 1, 0);
  }
  unmix_param_store_free(&s);
}
END_TEST

START_TEST(test_ema) {
  const struct unmix_backend *be = unmix_test_cpu();
  struct unmix_param_store q = {0}, k = {0};
  int sh[2] = {3, 7};
  unmix_param_store_add(&q, "w", 2, sh, UNMIX_LAYOUT_PLAIN, UNMIX_INIT_UNIFORM_FAN_IN, 0);
  unmix_param_store_add(&k, "w", 2, sh, UNMIX_LAYOUT_PLAIN, UNMIX_INIT_UNIFORM_FAN_IN, 0);
  ck_assert(unmix_param_store_alloc(&q, be, false) == UNMIX_OK && unmix_param_store_alloc(&k, be, false) == UNMIX_OK);
  unmix_param_store_init_values(&q, 1, 0);
  unmix_param_store_init_values(&k, 2, 0);
  float hq[21], hk[21], out[21];
  unmix_param_store_get(&q, 0, hq);
  unmix_param_store_get(&k, 0, hk);
  unmix_ema_update(be, &k, &q, 0.99f);
  unmix_param_store_get(&k, 0, out);
  for (int i = 0; i < 21; i++) ck_assert(out[i] == hk[i] * 0.99f + hq[i] * (1.0f - 0.99f));
  unmix_param_store_free(&q);
  unmix_param_store_free(&k);
}
END_TEST

START_TEST(test_schedules_closed_form) {
  struct unmix_schedule_config s = {0};
  /* MoCo CIFAR (FIDELITY §2.7): epochs 1..1000, lr_e = 0.06*0.5*(1+cos(pi*e/1000)) */
  s.kind = UNMIX_SCHED_COSINE_1BASED;
  ck_assert_double_eq_tol(unmix_lr_at(&s, 0.06, 1000, 0, 0, 97), 0.06 * 0.5 * (1 + cos(M_PI / 1000)), 1e-15);
  ck_assert_double_eq_tol(unmix_lr_at(&s, 0.06, 1000, 0, 0, 97), 0.05999985, 5e-9);
  ck_assert_double_eq_tol(unmix_lr_at(&s, 0.06, 1000, 999, 50, 97), 0.0, 1e-15);
  /* MoCo v2 --cos: epochs 0..199 */
  s.kind = UNMIX_SCHED_COSINE;
  ck_assert_double_eq_tol(unmix_lr_at(&s, 0.03, 200, 0, 0, 5000), 0.03, 1e-15);
  ck_assert_double_eq_tol(unmix_lr_at(&s, 0.03, 200, 100, 0, 5000), 0.015, 1e-12);
  /* step milestones (MoCo v1 120/160; linear eval 60/80) */
  s.kind = UNMIX_SCHED_STEP;
  s.n_milestones = 2;
  s.milestones[0] = 120;
  s.milestones[1] = 160;
  s.gamma = 0.1f;
  ck_assert_double_eq_tol(unmix_lr_at(&s, 0.03, 200, 119, 0, 1), 0.03, 1e-15);
  ck_assert_double_eq_tol(unmix_lr_at(&s, 0.03, 200, 120, 0, 1), 0.03 * (double)0.1f, 1e-12);
  ck_assert_double_eq_tol(unmix_lr_at(&s, 0.03, 200, 199, 0, 1), 0.03 * (double)0.1f * (double)0.1f, 1e-12);
  /* SwAV (FIDELITY §3.7): I = 390, warmup linspace(0, 0.6, 5I), then cosine to 0.0006 over 395I */
  s.kind = UNMIX_SCHED_WARMUP_COSINE;
  s.warmup_epochs = 5;
  s.start_warmup = 0.0f;
  s.final_lr = 0.0006f;
  const int I = 390, E = 400;
  ck_assert_double_eq_tol(unmix_lr_at(&s, 0.6, E, 0, 0, I), 0.0, 1e-15);
  ck_assert_double_eq_tol(unmix_lr_at(&s, 0.6, E, 4, 389, I), 0.6, 1e-12);              /* it 1949 */
  ck_assert_double_eq_tol(unmix_lr_at(&s, 0.6, E, 0, 1, I), 0.6 / (5.0 * I - 1.0), 1e-12);
  ck_assert_double_eq_tol(unmix_lr_at(&s, 0.6, E, 5, 0, I), 0.6, 1e-7);                  /* it 1950 */
  for (int it = 1950; it < E * I; it += 7919) {
    double t = it - 1950;
    double want = (double)0.0006f + 0.5 * (0.6 - (double)0.0006f) * (1 + cos(M_PI * t / (395.0 * I)));
    ck_assert_double_eq_tol(unmix_lr_at(&s, 0.6, E, it / I, it % I, I), want, 1e-12);
  }
  s.kind = UNMIX_SCHED_CONSTANT;
  ck_assert_double_eq(unmix_lr_at(&s, 0.3, 100, 50, 3, 10), 0.3);
}
END_TEST

static Suite *optim_suite(void) {
  Suite *s = suite_create("optim");
  TCase *tc = tcase_create("optim");
  tcase_add_test(tc, test_sgd_matches_pytorch);
  tcase_add_test(tc, test_larc_matches_apex);
  tcase_add_test(tc, test_skipped_tensor_untouched);
  tcase_add_test(tc, test_ema);
  tcase_add_test(tc, test_schedules_closed_form);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(optim_suite)
