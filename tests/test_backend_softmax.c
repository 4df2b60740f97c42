/* Softmax-family ops of the CPU backend (core/backend/cpu/softmax.c) against double-precision
 * references: softmax / log-softmax with a scale, hard- and soft-target cross-entropy (with
 * top-1/top-5 counts and ties). Every backward is checked against central finite differences
 * of a random linear functional. */
#include "tests/test_backend_common.h"

/* ---- softmax / log-softmax ---------------------------------------------------------------- */

struct sm_ctx {
  int n, d, log;
  double scale, *x, *r;
};
static void ref_softmax(int n, int d, int log_, double scale, const double *x, double *y) {
  for (int i = 0; i < n; i++) {
    const double *xr = x + (size_t)i * d;
    double mx = -INFINITY, s = 0.0;
    for (int j = 0; j < d; j++) mx = fmax(mx, scale * xr[j]);
    for (int j = 0; j < d; j++) s += exp(scale * xr[j] - mx);
    for (int j = 0; j < d; j++) {
      double lp = scale * xr[j] - mx - log(s);
      y[(size_t)i * d + j] = log_ ? lp : exp(lp);
    }
  }
}
static double sm_loss(void *p) {
  struct sm_ctx *c = p;
  size_t nx = (size_t)c->n * c->d;
  double *y = malloc(nx * sizeof(double));
  ref_softmax(c->n, c->d, c->log, c->scale, c->x, y);
  double L = ops_dot_d(c->r, y, nx);
  free(y);
  return L;
}

static void check_softmax(int log_, int n, int d, float scale) {
  const struct unmix_backend *be = unmix_test_cpu();
  const size_t nx = (size_t)n * d;
  float *x = ops_rand(nx, 61, -1.0f, 1.0f), *dyf = ops_rand(nx, 62, -1.0f, 1.0f), *y = ops_const(nx, NAN);
  (log_ ? be->log_softmax_forward : be->softmax_forward)(n, d, scale, x, y);
  ck_guard(y, nx);
  struct sm_ctx ctx = {n, d, log_, scale, ops_dup_d(x, nx), ops_dup_d(dyf, nx)};
  double *wy = malloc(nx * sizeof(double)), *gx = malloc(nx * sizeof(double));
  ref_softmax(n, d, log_, scale, ctx.x, wy);
  char buf[96];
  snprintf(buf, sizeof buf, "%s forward scale %g", log_ ? "log_softmax" : "softmax", scale);
  ck_ops_close(buf, y, wy, nx, 1e-5, 0.01);
  float *dx = ops_const(nx, 3333.0f);
  (log_ ? be->log_softmax_backward : be->softmax_backward)(n, d, scale, dyf, y, dx);
  ck_guard(dx, nx);
  ops_fd(sm_loss, &ctx, ctx.x, nx, 1e-6, gx);
  snprintf(buf, sizeof buf, "%s backward scale %g vs finite differences", log_ ? "log_softmax" : "softmax", scale);
  ck_ops_close(buf, dx, gx, nx, 1e-4, 0.1);
  free(ctx.x); free(ctx.r); free(wy); free(gx);
  unmix_guarded_free(x); unmix_guarded_free(dyf); unmix_guarded_free(y); unmix_guarded_free(dx);
}

START_TEST(test_softmax) {
  check_softmax(0, 5, 11, 1.0f);
  check_softmax(0, 7, 13, 10.0f); /* 1/T with T = 0.1 */
  check_softmax(0, 3, 6, -0.7f);
}
END_TEST
START_TEST(test_log_softmax) {
  check_softmax(1, 5, 11, 1.0f);
  check_softmax(1, 7, 13, 10.0f);
  check_softmax(1, 3, 6, -0.7f);
}
END_TEST

/* ---- cross-entropy ---------------------------------------------------------------------- */

struct ce_ctx {
  int n, d;
  double scale, *z;
  const int32_t *labels;
  const double *q; /* soft targets, or NULL for integer labels */
};
static double ce_ref_loss(void *p) {
  struct ce_ctx *c = p;
  double total = 0.0;
  double *lp = malloc((size_t)c->d * sizeof(double));
  for (int i = 0; i < c->n; i++) {
    ref_softmax(1, c->d, 1, c->scale, c->z + (size_t)i * c->d, lp);
    if (c->q)
      for (int j = 0; j < c->d; j++) total -= c->q[(size_t)i * c->d + j] * lp[j];
    else
      total -= lp[c->labels[i]];
  }
  free(lp);
  return total / c->n;
}

/* Rank of the label's logit when the row is sorted descending with ties broken by lower
 * index (the topk order). */
static int label_rank(const float *z, int d, int y) {
  int rank = 0;
  for (int j = 0; j < d; j++) rank += z[j] > z[y] || (z[j] == z[y] && j < y);
  return rank;
}

static void check_ce(int n, int d, float scale, float dloss, int with_ties) {
  const struct unmix_backend *be = unmix_test_cpu();
  const size_t nz = (size_t)n * d;
  float *z = ops_rand(nz, 71, -1.0f, 1.0f);
  int32_t *labels = ops_ints(n);
  for (int i = 0; i < n; i++) labels[i] = (int32_t)((i * 7 + 3) % d);
  if (with_ties) /* few distinct values: many ties at and around each label */
    for (size_t i = 0; i < nz; i++) z[i] = (float)((int)((z[i] + 1.0f) * 2.0f)) * 0.5f;
  float *probs = ops_const(nz, NAN), *loss = ops_const(1, NAN), *t1 = ops_const(1, NAN), *t5 = ops_const(1, NAN);
  be->cross_entropy_forward(n, d, scale, z, labels, probs, loss, t1, t5);
  ck_guard(probs, nz);
  ck_guard(loss, 1);
  ck_guard(t1, 1);
  ck_guard(t5, 1);
  ck_assert(ops_ints_guard_ok(labels, n));
  struct ce_ctx ctx = {n, d, scale, ops_dup_d(z, nz), labels, NULL};
  double wl = ce_ref_loss(&ctx);
  ck_ops_close("cross_entropy loss", loss, &wl, 1, 1e-6, 0.0);
  double *wp = malloc(nz * sizeof(double));
  ref_softmax(n, d, 0, scale, ctx.z, wp);
  ck_ops_close("cross_entropy probs", probs, wp, nz, 1e-5, 0.01);
  int c1 = 0, c5 = 0;
  for (int i = 0; i < n; i++) {
    int r = label_rank(z + (size_t)i * d, d, labels[i]);
    c1 += r < 1;
    c5 += r < 5;
  }
  ck_assert_msg(t1[0] == (float)c1 && t5[0] == (float)c5, "cross_entropy top1/top5 %g/%g, want %d/%d", t1[0], t5[0],
                c1, c5);
  /* the counters are optional */
  float *loss2 = ops_const(1, NAN);
  be->cross_entropy_forward(n, d, scale, z, labels, probs, loss2, NULL, NULL);
  ck_guard(loss2, 1);
  ck_guard(probs, nz);
  ck_assert_msg(loss2[0] == loss[0], "cross_entropy loss changes without the top-k counters");

  if (!with_ties) {
    float *dz = ops_const(nz, 4444.0f);
    be->cross_entropy_backward(n, d, scale, dloss, probs, labels, dz);
    ck_guard(dz, nz);
    double *gz = malloc(nz * sizeof(double));
    ops_fd(ce_ref_loss, &ctx, ctx.z, nz, 1e-6, gz);
    for (size_t i = 0; i < nz; i++) gz[i] *= dloss;
    ck_ops_close("cross_entropy backward vs finite differences", dz, gz, nz, 1e-4, 0.1);
    free(gz);
    unmix_guarded_free(dz);
  }
  free(ctx.z); free(wp);
  unmix_guarded_free(z); unmix_guarded_free(probs); unmix_guarded_free(loss); unmix_guarded_free(loss2);
  unmix_guarded_free(t1); unmix_guarded_free(t5); ops_ints_free(labels);
}

START_TEST(test_cross_entropy) {
  check_ce(7, 13, 10.0f, 1.0f, 0);
  check_ce(9, 11, 1.0f, 0.7f, 0);
  check_ce(5, 3, 2.0f, 1.3f, 0); /* fewer than 5 classes: every row is top-5 */
  check_ce(31, 9, 1.0f, 1.0f, 1);
}
END_TEST

START_TEST(test_soft_cross_entropy) {
  const struct unmix_backend *be = unmix_test_cpu();
  const int n = 6, d = 11;
  const size_t nz = (size_t)n * d;
  const float dloss = 0.8f;
  for (int variant = 0; variant < 2; variant++) {
    const float scale = variant ? 10.0f : 1.0f;
    float *z = ops_rand(nz, 81, -1.0f, 1.0f), *q = ops_rand(nz, 82, 0.0f, 1.0f);
    if (variant) /* rows of codes summing to 1, as Sinkhorn produces */
      for (int i = 0; i < n; i++) {
        double s = 0.0;
        for (int j = 0; j < d; j++) s += q[(size_t)i * d + j];
        for (int j = 0; j < d; j++) q[(size_t)i * d + j] = (float)(q[(size_t)i * d + j] / s);
      }
    float *lp = ops_const(nz, NAN), *loss = ops_const(1, NAN), *dz = ops_const(nz, 2222.0f);
    be->soft_cross_entropy_forward(n, d, scale, z, q, lp, loss);
    ck_guard(lp, nz);
    ck_guard(loss, 1);
    double *qd = ops_dup_d(q, nz);
    struct ce_ctx ctx = {n, d, scale, ops_dup_d(z, nz), NULL, qd};
    double wl = ce_ref_loss(&ctx), *wlp = malloc(nz * sizeof(double)), *gz = malloc(nz * sizeof(double));
    ck_ops_close("soft_cross_entropy loss", loss, &wl, 1, 1e-6, 0.0);
    ref_softmax(n, d, 1, scale, ctx.z, wlp);
    ck_ops_close("soft_cross_entropy logprobs", lp, wlp, nz, 1e-5, 0.01);
    be->soft_cross_entropy_backward(n, d, scale, dloss, lp, q, dz);
    ck_guard(dz, nz);
    ops_fd(ce_ref_loss, &ctx, ctx.z, nz, 1e-6, gz);
    for (size_t i = 0; i < nz; i++) gz[i] *= dloss;
    ck_ops_close("soft_cross_entropy backward vs finite differences", dz, gz, nz, 1e-4, 0.1);
    free(qd); free(ctx.z); free(wlp); free(gz);
    unmix_guarded_free(z); unmix_guarded_free(q); unmix_guarded_free(lp); unmix_guarded_free(loss);
    unmix_guarded_free(dz);
  }
}
END_TEST

static Suite *softmax_suite(void) {
  Suite *s = suite_create("backend_softmax");
  TCase *tc = tcase_create("softmax");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_softmax);
  tcase_add_test(tc, test_log_softmax);
  tcase_add_test(tc, test_cross_entropy);
  tcase_add_test(tc, test_soft_cross_entropy);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(softmax_suite)
