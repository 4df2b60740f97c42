/* Normalisation ops of the CPU backend (core/backend/cpu/norm.c) against double-precision
 * references written from ops.def and docs/FIDELITY.md §2.4: batch norm (plain, SplitBatchNorm
 * with S = 2 and 4, BN1d, eval mode, running statistics, thread-count independence, the fused
 * BN + ReLU) and row L2 normalisation (incl. the eps path). Every backward is checked against central finite
 * differences of a random linear functional. */
#include <omp.h>

#include "tests/test_backend_common.h"

/* ---- batch norm ------------------------------------------------------------------------ */

/* SplitBatchNorm (docs/FIDELITY.md §2.4): split s holds the samples i with i mod S == s; per
 * split and channel, mean and biased variance over (n/S)*hw values;
 * y = gamma (x - mean)/sqrt(var + eps) + beta. */
static void ref_bn(const struct unmix_bn_geom *g, const double *x, const double *gamma, const double *beta,
                   double eps, double *y, double *mean, double *var) {
  const int S = g->splits, C = g->c;
  const double m = (double)(g->n / S) * g->hw;
  for (int s = 0; s < S; s++)
    for (int c = 0; c < C; c++) {
      double mu = 0.0, v = 0.0;
      for (int i = s; i < g->n; i += S)
        for (int p = 0; p < g->hw; p++) mu += x[((size_t)i * g->hw + p) * C + c];
      mu /= m;
      for (int i = s; i < g->n; i += S)
        for (int p = 0; p < g->hw; p++) {
          double d = x[((size_t)i * g->hw + p) * C + c] - mu;
          v += d * d;
        }
      v /= m;
      if (mean) mean[s * C + c] = mu;
      if (var) var[s * C + c] = v;
      double is = 1.0 / sqrt(v + eps);
      for (int i = s; i < g->n; i += S)
        for (int p = 0; p < g->hw; p++) {
          size_t o = ((size_t)i * g->hw + p) * C + c;
          y[o] = gamma[c] * (x[o] - mu) * is + beta[c];
        }
    }
}

struct bn_ctx {
  const struct unmix_bn_geom *g;
  double *x, *gamma, *beta, *r, *y;
  double eps;
  size_t ny;
};
static double bn_loss(void *p) {
  struct bn_ctx *c = p;
  ref_bn(c->g, c->x, c->gamma, c->beta, c->eps, c->y, NULL, NULL);
  return ops_dot_d(c->r, c->y, c->ny);
}

/* dx, dgamma and dbeta (accumulated onto dg0, db0) against central finite differences of
 * `loss` in h over ctx's x, gamma and beta. */
static void check_bn_grads_fd(const char *what, ops_scalar_fn loss, struct bn_ctx *ctx, double h, const float *dx,
                              const float *dg, const float *db, const float *dg0, const float *db0, size_t nx, int C) {
  char buf[256];
  double *gx = malloc(nx * sizeof(double)), *gg = malloc(C * sizeof(double)), *gb = malloc(C * sizeof(double));
  ops_fd(loss, ctx, ctx->x, nx, h, gx);
  ops_fd(loss, ctx, ctx->gamma, C, h, gg);
  ops_fd(loss, ctx, ctx->beta, C, h, gb);
  double *wg = ops_plus(dg0, gg, C), *wb = ops_plus(db0, gb, C);
  snprintf(buf, sizeof buf, "%s: dx vs finite differences", what);
  ck_ops_close(buf, dx, gx, nx, 1e-4, 0.1);
  snprintf(buf, sizeof buf, "%s: dgamma (+=) vs finite differences", what);
  ck_ops_close(buf, dg, wg, C, 1e-4, 0.1);
  snprintf(buf, sizeof buf, "%s: dbeta (+=) vs finite differences", what);
  ck_ops_close(buf, db, wb, C, 1e-4, 0.1);
  free(gx); free(gg); free(gb); free(wg); free(wb);
}

static void check_bn_train(int n, int hw, int C, int S) {
  const struct unmix_backend *be = unmix_test_cpu();
  const struct unmix_bn_geom g = {n, hw, C, S};
  const float eps = 1e-5f, mom = 0.1f;
  const size_t nx = (size_t)n * hw * C, ns = (size_t)S * C;
  char what[96], buf[200];
  snprintf(what, sizeof what, "bn train n%d hw%d c%d S%d", n, hw, C, S);

  /* per-sample and per-channel offsets, so that grouping samples wrongly (contiguous
   * blocks instead of i mod S) changes every statistic */
  float *x = ops_rand(nx, 31, -1.0f, 1.0f);
  for (int i = 0; i < n; i++)
    for (int p = 0; p < hw; p++)
      for (int c = 0; c < C; c++) x[((size_t)i * hw + p) * C + c] = 2.0f * x[((size_t)i * hw + p) * C + c] + 0.3f * i + 0.5f * c;
  float *gamma = ops_rand(C, 32, 0.5f, 1.5f), *beta = ops_rand(C, 33, -1.0f, 1.0f);
  float *rm = ops_rand(C, 34, -1.0f, 1.0f), *rv = ops_rand(C, 35, 0.5f, 2.0f);
  float *rm0 = malloc(C * sizeof(float)), *rv0 = malloc(C * sizeof(float));
  memcpy(rm0, rm, C * sizeof(float));
  memcpy(rv0, rv, C * sizeof(float));
  float *y = ops_const(nx, NAN), *smean = ops_const(ns, NAN), *sinv = ops_const(ns, NAN);
  be->batchnorm_forward_train(&g, x, gamma, beta, y, smean, sinv, rm, rv, mom, eps, false);
  ck_guard(y, nx);
  ck_guard(smean, ns);
  ck_guard(sinv, ns);
  ck_guard(rm, C);
  ck_guard(rv, C);

  double *dy = NULL;
  float *dyf = ops_rand(nx, 36, -1.0f, 1.0f);
  dy = ops_dup_d(dyf, nx);
  struct bn_ctx ctx = {&g, ops_dup_d(x, nx), ops_dup_d(gamma, C), ops_dup_d(beta, C), dy,
                       malloc(nx * sizeof(double)), eps, nx};
  double *mean = malloc(ns * sizeof(double)), *var = malloc(ns * sizeof(double)), *inv = malloc(ns * sizeof(double));
  ref_bn(&g, ctx.x, ctx.gamma, ctx.beta, eps, ctx.y, mean, var);
  for (size_t i = 0; i < ns; i++) inv[i] = 1.0 / sqrt(var[i] + eps);
  snprintf(buf, sizeof buf, "%s: y", what);
  ck_ops_close(buf, y, ctx.y, nx, 1e-5, 0.1);
  snprintf(buf, sizeof buf, "%s: save_mean", what);
  ck_ops_close(buf, smean, mean, ns, 1e-5, 0.1);
  snprintf(buf, sizeof buf, "%s: save_invstd", what);
  ck_ops_close(buf, sinv, inv, ns, 1e-5, 0.0);

  /* running stats: every split's tiled copy moves by momentum towards its own (mean,
   * unbiased var); the buffer is the mean over splits (docs/FIDELITY.md §2.4) */
  const double m = (double)(n / S) * hw;
  double *wrm = malloc(C * sizeof(double)), *wrv = malloc(C * sizeof(double));
  for (int c = 0; c < C; c++) {
    double a = 0.0, b = 0.0;
    for (int s = 0; s < S; s++) {
      a += (1.0 - mom) * rm0[c] + mom * mean[s * C + c];
      b += (1.0 - mom) * rv0[c] + mom * var[s * C + c] * m / (m - 1.0);
    }
    wrm[c] = a / S;
    wrv[c] = b / S;
  }
  snprintf(buf, sizeof buf, "%s: running_mean", what);
  ck_ops_close(buf, rm, wrm, C, 1e-5, 0.1);
  snprintf(buf, sizeof buf, "%s: running_var", what);
  ck_ops_close(buf, rv, wrv, C, 1e-5, 0.0);

  /* no running buffers: same outputs; in place (y == x): same outputs */
  float *y2 = ops_const(nx, NAN), *sm2 = ops_const(ns, NAN), *si2 = ops_const(ns, NAN);
  be->batchnorm_forward_train(&g, x, gamma, beta, y2, sm2, si2, NULL, NULL, mom, eps, false);
  ck_guard(y2, nx);
  ck_guard(sm2, ns);
  ck_guard(si2, ns);
  ck_assert_msg(memcmp(y, y2, nx * sizeof(float)) == 0, "%s: y differs without running buffers", what);
  ck_assert_msg(memcmp(smean, sm2, ns * sizeof(float)) == 0 && memcmp(sinv, si2, ns * sizeof(float)) == 0,
                "%s: saved stats differ without running buffers", what);
  float *xi = ops_const(nx, 0.0f);
  memcpy(xi, x, nx * sizeof(float));
  be->batchnorm_forward_train(&g, xi, gamma, beta, xi, sm2, si2, NULL, NULL, mom, eps, false);
  ck_guard(xi, nx);
  ck_assert_msg(memcmp(y, xi, nx * sizeof(float)) == 0, "%s: in-place forward differs", what);

  /* backward: dx overwritten (garbage prefill), dgamma/dbeta accumulated */
  float *dx = ops_const(nx, 9999.0f), *dg = ops_rand(C, 37, -1.0f, 1.0f), *db = ops_rand(C, 38, -1.0f, 1.0f);
  float *dg0 = malloc(C * sizeof(float)), *db0 = malloc(C * sizeof(float));
  memcpy(dg0, dg, C * sizeof(float));
  memcpy(db0, db, C * sizeof(float));
  be->batchnorm_backward(&g, dyf, x, gamma, NULL, smean, sinv, false, dx, dg, db);
  ck_guard(dx, nx);
  ck_guard(dg, C);
  ck_guard(db, C);
  check_bn_grads_fd(what, bn_loss, &ctx, 1e-4, dx, dg, db, dg0, db0, nx, C);

  /* in-place backward (dx == dy) gives the same dx */
  float *dyi = ops_const(nx, 0.0f);
  memcpy(dyi, dyf, nx * sizeof(float));
  memcpy(dg, dg0, C * sizeof(float));
  memcpy(db, db0, C * sizeof(float));
  be->batchnorm_backward(&g, dyi, x, gamma, NULL, smean, sinv, false, dyi, dg, db);
  ck_guard(dyi, nx);
  ck_assert_msg(memcmp(dx, dyi, nx * sizeof(float)) == 0, "%s: in-place backward differs", what);

  free(rm0); free(rv0); free(ctx.x); free(ctx.gamma); free(ctx.beta); free(ctx.y); free(dy);
  free(mean); free(var); free(inv); free(wrm); free(wrv); free(dg0); free(db0);
  float *bufs[] = {x, gamma, beta, rm, rv, y, smean, sinv, dyf, y2, sm2, si2, xi, dx, dg, db, dyi};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) unmix_guarded_free(bufs[i]);
}

START_TEST(test_bn_plain) { check_bn_train(5, 21, 13, 1); }
END_TEST
START_TEST(test_bn_split2) { check_bn_train(6, 15, 13, 2); }
END_TEST
START_TEST(test_bn_split4) { check_bn_train(12, 6, 13, 4); }
END_TEST
START_TEST(test_bn1d) {
  check_bn_train(7, 1, 13, 1);
  check_bn_train(12, 1, 11, 4);
}
END_TEST
START_TEST(test_bn_wide) { check_bn_train(16, 3, 67, 8); } /* S = 8 as in the paper */
END_TEST

/* ---- the fused BN + ReLU ------------------------------------------------------------------ */

static double bn_relu_loss(void *p) {
  struct bn_ctx *c = p;
  ref_bn(c->g, c->x, c->gamma, c->beta, c->eps, c->y, NULL, NULL);
  double L = 0.0;
  for (size_t i = 0; i < c->ny; i++) L += c->r[i] * (c->y[i] > 0.0 ? c->y[i] : 0.0);
  return L;
}

/* relu = true: the forward must be max(BN, 0) of the plain op bit for bit (same statistics),
 * the backward the plain backward of relu_backward's masked dy bit for bit, and both must match
 * finite differences of sum r * max(BN(x), 0) (a step of 1e-7, far below the distance of any
 * output of these inputs from the kink). Eval mode likewise. */
static void check_bn_relu(int n, int hw, int C, int S) {
  const struct unmix_backend *be = unmix_test_cpu();
  const struct unmix_bn_geom g = {n, hw, C, S};
  const float eps = 1e-5f, mom = 0.1f;
  const size_t nx = (size_t)n * hw * C, ns = (size_t)S * C;
  char what[96];
  snprintf(what, sizeof what, "bn+relu n%d hw%d c%d S%d", n, hw, C, S);
  float *x = ops_rand(nx, 71, -1.0f, 1.0f);
  for (size_t i = 0; i < nx; i++) x[i] = 2.0f * x[i] + 0.3f * (float)(i / ((size_t)hw * C)) + 0.5f * (float)(i % C);
  float *gamma = ops_rand(C, 72, 0.5f, 1.5f), *beta = ops_rand(C, 73, -0.5f, 0.5f);
  float *y = ops_const(nx, NAN), *sm = ops_const(ns, NAN), *si = ops_const(ns, NAN);
  float *yr = ops_const(nx, NAN), *smr = ops_const(ns, NAN), *sir = ops_const(ns, NAN);
  be->batchnorm_forward_train(&g, x, gamma, beta, y, sm, si, NULL, NULL, mom, eps, false);
  be->batchnorm_forward_train(&g, x, gamma, beta, yr, smr, sir, NULL, NULL, mom, eps, true);
  ck_guard(yr, nx);
  ck_guard(smr, ns);
  ck_guard(sir, ns);
  ck_assert_msg(memcmp(sm, smr, ns * sizeof(float)) == 0 && memcmp(si, sir, ns * sizeof(float)) == 0,
                "%s: statistics differ from the plain op's", what);
  size_t pos = 0;
  for (size_t i = 0; i < nx; i++) {
    const float want = y[i] > 0.0f ? y[i] : 0.0f;
    ck_assert_msg(memcmp(&yr[i], &want, sizeof want) == 0, "%s: y[%zu] = %.9g, max(plain, 0) = %.9g", what, i, yr[i],
                  want);
    pos += y[i] > 0.0f;
  }
  ck_assert_msg(pos > nx / 4 && pos < 3 * nx / 4, "%s: %zu of %zu outputs positive (the mask must matter)", what, pos,
                nx);

  /* backward: fused == relu_backward then the plain backward, bit for bit */
  float *dy = ops_rand(nx, 74, -1.0f, 1.0f), *dym = ops_const(nx, NAN);
  float *dx = ops_const(nx, 9999.0f), *dxu = ops_const(nx, 9999.0f);
  float *dg = ops_rand(C, 75, -1.0f, 1.0f), *db = ops_rand(C, 76, -1.0f, 1.0f);
  float *dgu = ops_const(C, 0.0f), *dbu = ops_const(C, 0.0f);
  memcpy(dgu, dg, C * sizeof(float));
  memcpy(dbu, db, C * sizeof(float));
  be->relu_backward((int64_t)nx, dy, yr, dym);
  be->batchnorm_backward(&g, dym, x, gamma, NULL, sm, si, false, dxu, dgu, dbu);
  float *dg0 = ops_const(C, 0.0f), *db0 = ops_const(C, 0.0f);
  memcpy(dg0, dg, C * sizeof(float));
  memcpy(db0, db, C * sizeof(float));
  be->batchnorm_backward(&g, dy, x, gamma, beta, sm, si, true, dx, dg, db);
  ck_guard(dx, nx);
  ck_guard(dg, C);
  ck_guard(db, C);
  ck_assert_msg(memcmp(dx, dxu, nx * sizeof(float)) == 0, "%s: dx differs from relu_backward + plain backward", what);
  ck_assert_msg(memcmp(dg, dgu, C * sizeof(float)) == 0 && memcmp(db, dbu, C * sizeof(float)) == 0,
                "%s: dgamma/dbeta differ from relu_backward + plain backward", what);

  struct bn_ctx ctx = {&g, ops_dup_d(x, nx), ops_dup_d(gamma, C), ops_dup_d(beta, C), ops_dup_d(dy, nx),
                       malloc(nx * sizeof(double)), eps, nx};
  check_bn_grads_fd(what, bn_relu_loss, &ctx, 1e-7, dx, dg, db, dg0, db0, nx, C);

  /* in place (dx == dy) */
  float *dyi = ops_const(nx, 0.0f);
  memcpy(dyi, dy, nx * sizeof(float));
  be->batchnorm_backward(&g, dyi, x, gamma, beta, sm, si, true, dyi, NULL, NULL);
  ck_assert_msg(memcmp(dx, dyi, nx * sizeof(float)) == 0, "%s: in-place backward differs", what);

  /* eval mode: max(plain eval, 0) bit for bit, in place too */
  float *rm = ops_rand(C, 77, -0.5f, 0.5f), *rv = ops_rand(C, 78, 0.5f, 2.0f);
  float *ye = ops_const(nx, NAN), *yer = ops_const(nx, NAN), *xi = ops_const(nx, 0.0f);
  memcpy(xi, x, nx * sizeof(float));
  be->batchnorm_forward_eval(&g, x, gamma, beta, rm, rv, eps, false, ye);
  be->batchnorm_forward_eval(&g, x, gamma, beta, rm, rv, eps, true, yer);
  be->batchnorm_forward_eval(&g, xi, gamma, beta, rm, rv, eps, true, xi);
  ck_guard(yer, nx);
  for (size_t i = 0; i < nx; i++) {
    const float want = ye[i] > 0.0f ? ye[i] : 0.0f;
    ck_assert_msg(memcmp(&yer[i], &want, sizeof want) == 0, "%s: eval y[%zu] = %.9g, max(plain, 0) = %.9g", what, i,
                  yer[i], want);
  }
  ck_assert_msg(memcmp(xi, yer, nx * sizeof(float)) == 0, "%s: in-place eval differs", what);

  free(ctx.x); free(ctx.gamma); free(ctx.beta); free(ctx.r); free(ctx.y);
  float *bufs[] = {x, gamma, beta, y, sm, si, yr, smr, sir, dy, dym, dx, dxu, dg, db, dgu, dbu, dg0, db0, dyi,
                   rm, rv, ye, yer, xi};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) unmix_guarded_free(bufs[i]);
}

START_TEST(test_bn_relu) {
  check_bn_relu(5, 21, 13, 1);
  check_bn_relu(12, 6, 13, 4);
  check_bn_relu(7, 1, 11, 1);  /* BN1d */
  check_bn_relu(16, 3, 67, 8); /* S = 8, channels beyond one vector */
}
END_TEST

START_TEST(test_bn_eval) {
  const struct unmix_backend *be = unmix_test_cpu();
  const int n = 6, hw = 5, C = 13;
  const struct unmix_bn_geom g = {n, hw, C, 2}; /* splits are ignored in eval mode */
  const size_t nx = (size_t)n * hw * C;
  float *x = ops_rand(nx, 41, -3.0f, 3.0f), *gamma = ops_rand(C, 42, 0.5f, 1.5f), *beta = ops_rand(C, 43, -1.0f, 1.0f);
  float *rm = ops_rand(C, 44, -1.0f, 1.0f), *rv = ops_rand(C, 45, 0.1f, 2.0f), *y = ops_const(nx, NAN);
  const float eps = 1e-5f;
  be->batchnorm_forward_eval(&g, x, gamma, beta, rm, rv, eps, false, y);
  ck_guard(y, nx);
  double *want = malloc(nx * sizeof(double));
  for (size_t i = 0; i < nx; i++) {
    int c = (int)(i % C);
    want[i] = (double)gamma[c] * ((double)x[i] - rm[c]) / sqrt((double)rv[c] + eps) + beta[c];
  }
  ck_ops_close("bn eval", y, want, nx, 1e-5, 0.1);
  float *xi = ops_const(nx, 0.0f);
  memcpy(xi, x, nx * sizeof(float));
  be->batchnorm_forward_eval(&g, xi, gamma, beta, rm, rv, eps, false, xi);
  ck_assert_msg(memcmp(xi, y, nx * sizeof(float)) == 0, "bn eval in place differs");
  free(want);
  float *bufs[] = {x, gamma, beta, rm, rv, y, xi};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) unmix_guarded_free(bufs[i]);
}
END_TEST

/* Train-mode statistics and gradients must not depend on the OpenMP thread count. */
START_TEST(test_bn_thread_count_independent) {
  const struct unmix_backend *be = unmix_test_cpu();
  const struct unmix_bn_geom g = {64, 37, 29, 8};
  const size_t nx = (size_t)g.n * g.hw * g.c, ns = (size_t)g.splits * g.c;
  float *x = ops_rand(nx, 46, -2.0f, 3.0f), *dy = ops_rand(nx, 47, -1.0f, 1.0f);
  float *gamma = ops_rand(g.c, 48, 0.5f, 1.5f), *beta = ops_rand(g.c, 49, -1.0f, 1.0f);
  float *o[3][7];
  const int saved = omp_get_max_threads();
  for (int relu = 0; relu < 2; relu++) { /* plain, and with the fused ReLU's masked sums */
    for (int t = 0; t < 3; t++) {
      omp_set_num_threads(t + 1);
      o[t][0] = ops_const(nx, 0.0f);
      o[t][1] = ops_const(ns, 0.0f);
      o[t][2] = ops_const(ns, 0.0f);
      o[t][3] = ops_const(g.c, 0.0f);
      o[t][4] = ops_const(g.c, 1.0f);
      o[t][5] = ops_const(nx, 0.0f);
      o[t][6] = ops_const(2 * (size_t)g.c, 0.0f);
      be->batchnorm_forward_train(&g, x, gamma, beta, o[t][0], o[t][1], o[t][2], o[t][3], o[t][4], 0.1f, 1e-5f, relu);
      be->batchnorm_backward(&g, dy, x, gamma, beta, o[t][1], o[t][2], relu, o[t][5], o[t][6], o[t][6] + g.c);
    }
    omp_set_num_threads(saved);
    const size_t sz[7] = {nx, ns, ns, (size_t)g.c, (size_t)g.c, nx, 2 * (size_t)g.c};
    for (int t = 0; t < 3; t++)
      for (int k = 0; k < 7; k++) ck_assert_msg(unmix_guard_ok(o[t][k], sz[k]), "guard of output %d", k);
    for (int t = 1; t < 3; t++)
      for (int k = 0; k < 7; k++)
        ck_assert_msg(memcmp(o[0][k], o[t][k], sz[k] * sizeof(float)) == 0,
                      "batchnorm output %d (relu %d) differs between 1 and %d OpenMP threads", k, relu, t + 1);
    for (int t = 0; t < 3; t++)
      for (int k = 0; k < 7; k++) unmix_guarded_free(o[t][k]);
  }
  unmix_guarded_free(x); unmix_guarded_free(dy); unmix_guarded_free(gamma); unmix_guarded_free(beta);
}
END_TEST

/* ---- L2 normalisation ------------------------------------------------------------------- */

struct l2_ctx {
  int n, d;
  double *x, *r, eps;
};
static double l2_loss(void *p) {
  struct l2_ctx *c = p;
  double L = 0.0;
  for (int i = 0; i < c->n; i++) {
    const double *xr = c->x + (size_t)i * c->d;
    double ss = 0.0;
    for (int j = 0; j < c->d; j++) ss += xr[j] * xr[j];
    double den = fmax(sqrt(ss), c->eps);
    for (int j = 0; j < c->d; j++) L += c->r[(size_t)i * c->d + j] * xr[j] / den;
  }
  return L;
}

/* row_scale[i] shrinks row i (0 makes a zero row); h[i] is its finite-difference step,
 * small enough to stay inside the eps region for rows whose norm is below eps. */
static void check_l2norm(int n, int d, float eps, const float *row_scale, const double *h) {
  const struct unmix_backend *be = unmix_test_cpu();
  const size_t nx = (size_t)n * d;
  float *x = ops_rand(nx, 51, -1.0f, 1.0f);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < d; j++) x[(size_t)i * d + j] *= row_scale[i];
  float *y = ops_const(nx, NAN), *norms = ops_const(n, NAN), *dyf = ops_rand(nx, 52, -1.0f, 1.0f);
  be->l2norm_forward(n, d, x, y, norms, eps);
  ck_guard(y, nx);
  ck_guard(norms, n);
  struct l2_ctx ctx = {n, d, ops_dup_d(x, nx), ops_dup_d(dyf, nx), eps};
  double *wy = malloc(nx * sizeof(double)), *wn = malloc(n * sizeof(double));
  for (int i = 0; i < n; i++) {
    double ss = 0.0;
    for (int j = 0; j < d; j++) ss += ctx.x[(size_t)i * d + j] * ctx.x[(size_t)i * d + j];
    wn[i] = sqrt(ss);
    for (int j = 0; j < d; j++) wy[(size_t)i * d + j] = ctx.x[(size_t)i * d + j] / fmax(wn[i], eps);
  }
  ck_ops_close("l2norm forward", y, wy, nx, 1e-6, 0.0);
  ck_ops_close("l2norm norms", norms, wn, n, 1e-6, 0.0);
  float *dx = ops_const(nx, 5555.0f);
  be->l2norm_backward(n, d, dyf, x, norms, eps, dx);
  ck_guard(dx, nx);
  double *gx = malloc(nx * sizeof(double));
  for (int i = 0; i < n; i++) ops_fd(l2_loss, &ctx, ctx.x + (size_t)i * d, d, h[i], gx + (size_t)i * d);
  /* rows are independent: judge each against its own scale */
  for (int i = 0; i < n; i++) {
    char buf[96];
    snprintf(buf, sizeof buf, "l2norm backward (eps %g) row %d vs finite differences", eps, i);
    ck_ops_close(buf, dx + (size_t)i * d, gx + (size_t)i * d, d, 1e-4, 0.1);
  }
  free(ctx.x); free(ctx.r); free(wy); free(wn); free(gx);
  unmix_guarded_free(x); unmix_guarded_free(y); unmix_guarded_free(norms); unmix_guarded_free(dyf);
  unmix_guarded_free(dx);
}

START_TEST(test_l2norm) {
  const float scale_a[5] = {1.0f, 3.0f, 0.0f, 0.2f, 1.0f};
  const double h_a[5] = {1e-6, 1e-6, 1e-14, 1e-7, 1e-6};
  check_l2norm(5, 13, 1e-12f, scale_a, h_a); /* F.normalize default eps, one zero row */
  const float scale_b[4] = {1.0f, 0.003f, 0.0f, 0.5f};
  const double h_b[4] = {1e-6, 1e-7, 1e-7, 1e-6};
  check_l2norm(4, 7, 0.05f, scale_b, h_b); /* a nonzero row below eps: y = x/eps */
}
END_TEST

/* Statistics over many reduction blocks (the CPU op sums fixed blocks of rows in double and
 * adds the blocks' partials in order): a large common offset (mean ~1000, spread ~0.01, so
 * E[x^2] - mean^2 would lose about 11 of double's 16 digits, and a partial lost or counted
 * twice moves the mean by ~1000/n) and a per-sample drift, with SplitBN S = 8 and blocks that
 * end inside a sample. save_mean must match the double two-pass reference to fp32 precision;
 * the variance (each block's second moment about its own mean, the blocks combined with their
 * means' spread) within the bounds that once held for a variance taken around the fp32 mean
 * (off by up to ulp(1000)/2 = 3e-5, adding up to 9e-10 to a variance of ~2.6e-4):
 * save_invstd within 3e-6 relative, the running variance within 6e-6. */
START_TEST(test_bn_many_blocks_offset) {
  const struct unmix_backend *be = unmix_test_cpu();
  const struct unmix_bn_geom g = {16, 300, 7, 8}; /* 4800 rows, blocks of 4681 rows */
  const size_t nx = (size_t)g.n * g.hw * g.c, ns = (size_t)g.splits * g.c;
  float *x = ops_rand(nx, 61, 0.0f, 0.01f);
  for (int i = 0; i < g.n; i++)
    for (size_t k = 0; k < (size_t)g.hw * g.c; k++) x[(size_t)i * g.hw * g.c + k] += 1000.0f + 0.004f * (float)i;
  float *gamma = ops_rand(g.c, 62, 0.5f, 1.5f), *beta = ops_rand(g.c, 63, -1.0f, 1.0f);
  float *y = ops_const(nx, NAN), *smean = ops_const(ns, NAN), *sinv = ops_const(ns, NAN);
  float *rm = ops_const(g.c, 0.0f), *rv = ops_const(g.c, 1.0f);
  be->batchnorm_forward_train(&g, x, gamma, beta, y, smean, sinv, rm, rv, 1.0f, 0.0f, false); /* momentum 1: rv = var */
  ck_guard(y, nx);
  ck_guard(sinv, ns);
  double *xd = ops_dup_d(x, nx), *gd = ops_dup_d(gamma, g.c), *bd = ops_dup_d(beta, g.c);
  double *yd = malloc(nx * sizeof(double)), *mean = malloc(ns * sizeof(double)), *var = malloc(ns * sizeof(double));
  ref_bn(&g, xd, gd, bd, 0.0, yd, mean, var);
  const double m = (double)(g.n / g.splits) * g.hw;
  for (size_t i = 0; i < ns; i++) {
    const double want = 1.0 / sqrt(var[i]);
    ck_assert_msg(fabs(sinv[i] - want) <= 3e-6 * want, "save_invstd[%zu] = %.9g, reference %.9g", i, sinv[i], want);
    ck_assert_msg(fabs(smean[i] - mean[i]) <= 1e-7 * fabs(mean[i]), "save_mean[%zu] = %.9g, reference %.9g", i,
                  smean[i], mean[i]);
  }
  for (int c = 0; c < g.c; c++) {
    double want = 0.0;
    for (int s = 0; s < g.splits; s++) want += var[s * g.c + c] * m / (m - 1.0) / g.splits;
    ck_assert_msg(fabs(rv[c] - want) <= 6e-6 * want, "running_var[%d] = %.9g, reference %.9g", c, rv[c], want);
  }
  /* y itself is not compared: x - mean in fp32 at x ~ 1000 keeps only ~2 digits of a 0.003
   * spread, whatever the statistics */
  free(xd); free(gd); free(bd); free(yd); free(mean); free(var);
  float *bufs[] = {x, gamma, beta, y, smean, sinv, rm, rv};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) unmix_guarded_free(bufs[i]);
}
END_TEST

static Suite *norm_suite(void) {
  Suite *s = suite_create("backend_norm");
  TCase *tc = tcase_create("norm");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_bn_plain);
  tcase_add_test(tc, test_bn_split2);
  tcase_add_test(tc, test_bn_split4);
  tcase_add_test(tc, test_bn1d);
  tcase_add_test(tc, test_bn_wide);
  tcase_add_test(tc, test_bn_eval);
  tcase_add_test(tc, test_bn_relu);
  tcase_add_test(tc, test_bn_thread_count_independent);
  tcase_add_test(tc, test_bn_many_blocks_offset);
  tcase_add_test(tc, test_l2norm);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(norm_suite)
