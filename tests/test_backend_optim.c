/* Optimiser updates of the CPU backend (core/backend/cpu/optim.c): SGD with momentum, plain
 * and per-segment (LARC), over several steps against PyTorch's formulas in double, and the
 * exponential moving average. */
#include "tests/test_backend_common.h"

/* ---- optimiser updates ---------------------------------------------------------------------- */

/* PyTorch SGD (dampening 0, no nesterov) per element over several steps, in double:
 * d = gscale*g + wd*p; buf = d on the first step, else m*buf + d; p -= lr*buf. */
static void check_sgd(int nseg, const int64_t *off, const float *gs, const float *wds) {
  const struct unmix_backend *be = unmix_test_cpu();
  const int64_t n = nseg ? off[nseg] : 301;
  const float lr = 0.06f, mom = 0.9f, wd = 5e-4f;
  float *p = ops_rand((size_t)n, 211, -1.0f, 1.0f), *buf = ops_const((size_t)n, 0.0f);
  double *pd = ops_dup_d(p, (size_t)n), *bd = calloc((size_t)n, sizeof(double));
  for (int step = 0; step < 5; step++) {
    float *g = ops_rand((size_t)n, 212 + step, -0.5f, 0.5f);
    be->sgd_step(n, p, g, buf, lr, mom, wd, nseg, nseg ? off : NULL, gs, wds);
    ck_guard(p, (size_t)n);
    ck_guard(buf, (size_t)n);
    for (int64_t i = 0; i < n; i++) {
      int s = 0;
      while (nseg && i >= off[s + 1]) s++;
      double gsc = nseg ? gs[s] : 1.0, w = nseg ? wds[s] : wd;
      double d = gsc * g[i] + w * pd[i];
      bd[i] = step == 0 ? d : (double)mom * bd[i] + d;
      pd[i] -= (double)lr * bd[i];
    }
    char what[64];
    snprintf(what, sizeof what, "sgd_step (%d segments) step %d: p", nseg, step);
    ck_ops_close(what, p, pd, (size_t)n, 1e-5, 0.01);
    snprintf(what, sizeof what, "sgd_step (%d segments) step %d: buf", nseg, step);
    ck_ops_close(what, buf, bd, (size_t)n, 1e-5, 0.01);
    unmix_guarded_free(g);
  }
  free(pd); free(bd);
  unmix_guarded_free(p); unmix_guarded_free(buf);
}

START_TEST(test_sgd_step) {
  check_sgd(0, NULL, NULL, NULL);
  /* LARC (docs/FIDELITY.md §3.7): per tensor a = trust ratio, g <- (g + wd p) a, inner wd 0, i.e.
   * gscale = a and wd_seg = a*wd; a zero-norm tensor keeps raw g and no decay */
  const int64_t off[5] = {0, 37, 38, 138, 211};
  const float gs[4] = {0.013f, 1.0f, 2.5e-3f, 0.4f}, wds[4] = {0.013f * 1e-6f, 0.0f, 2.5e-3f * 1e-6f, 0.02f};
  check_sgd(4, off, gs, wds);
}
END_TEST

START_TEST(test_ema) {
  const struct unmix_backend *be = unmix_test_cpu();
  const size_t n = 517;
  float *q = ops_rand(n, 221, -1.0f, 1.0f), *k = ops_rand(n, 222, -1.0f, 1.0f);
  double *w = malloc(n * sizeof(double));
  for (size_t i = 0; i < n; i++) w[i] = (double)k[i] * 0.99f + (double)q[i] * (1.0 - 0.99f);
  be->ema((int64_t)n, 0.99f, q, k);
  ck_guard(k, n);
  ck_ops_close("ema", k, w, n, 1e-6, 0.01);
  free(w);
  unmix_guarded_free(q); unmix_guarded_free(k);
}
END_TEST

static Suite *optim_suite(void) {
  Suite *s = suite_create("backend_optim");
  TCase *tc = tcase_create("optim");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_sgd_step);
  tcase_add_test(tc, test_ema);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(optim_suite)
