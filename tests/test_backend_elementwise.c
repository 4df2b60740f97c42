/* Element-wise and BLAS-1 ops of the CPU backend (core/backend/cpu/elementwise.c) against
 * references written from ops.def, with guards around every output and finite-difference
 * checks of the relu backward passes. */
#include "tests/test_backend_common.h"

/* ---- relu / add / add_relu ---------------------------------------------------------------- */

/* Random values kept at least 1e-3 away from 0, so finite differences with step 1e-5
 * never cross the kink. */
static float *away_from_zero(size_t n, uint32_t seed) {
  float *x = ops_rand(n, seed, -1.0f, 1.0f);
  for (size_t i = 0; i < n; i++)
    if (fabsf(x[i]) < 1e-3f) x[i] = x[i] < 0 ? -1e-3f - x[i] : 1e-3f + x[i];
  return x;
}

struct relu_ctx {
  size_t n;
  double *a, *b, *r; /* b NULL: relu(a); else relu(a + b) */
};
static double relu_loss(void *p) {
  struct relu_ctx *c = p;
  double L = 0.0;
  for (size_t i = 0; i < c->n; i++) L += c->r[i] * fmax(c->a[i] + (c->b ? c->b[i] : 0.0), 0.0);
  return L;
}

START_TEST(test_relu) {
  const struct unmix_backend *be = unmix_test_cpu();
  const size_t n = 1001;
  float *x = away_from_zero(n, 141), *dyf = ops_rand(n, 142, -1.0f, 1.0f);
  float *y = ops_const(n, NAN), *dx = ops_const(n, 1234.0f);
  be->relu_forward((int64_t)n, x, y);
  ck_guard(y, n);
  for (size_t i = 0; i < n; i++) ck_assert_msg(y[i] == (x[i] > 0 ? x[i] : 0.0f), "relu[%zu]", i);
  be->relu_backward((int64_t)n, dyf, y, dx);
  ck_guard(dx, n);
  struct relu_ctx ctx = {n, ops_dup_d(x, n), NULL, ops_dup_d(dyf, n)};
  double *gx = malloc(n * sizeof(double));
  ops_fd(relu_loss, &ctx, ctx.a, n, 1e-5, gx);
  ck_ops_close("relu backward vs finite differences", dx, gx, n, 1e-6, 0.0);
  /* in place: y == x, dx == dy */
  float *xi = ops_const(n, 0.0f), *di = ops_const(n, 0.0f);
  memcpy(xi, x, n * sizeof(float));
  memcpy(di, dyf, n * sizeof(float));
  be->relu_forward((int64_t)n, xi, xi);
  be->relu_backward((int64_t)n, di, xi, di);
  ck_guard(xi, n);
  ck_guard(di, n);
  ck_assert_msg(memcmp(xi, y, n * sizeof(float)) == 0 && memcmp(di, dx, n * sizeof(float)) == 0,
                "relu in place differs");
  free(ctx.a); free(ctx.r); free(gx);
  float *bufs[] = {x, dyf, y, dx, xi, di};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) unmix_guarded_free(bufs[i]);
}
END_TEST

START_TEST(test_add_and_add_relu) {
  const struct unmix_backend *be = unmix_test_cpu();
  const size_t n = 777;
  float *a = ops_rand(n, 151, -1.0f, 1.0f), *b = away_from_zero(n, 152), *dyf = ops_rand(n, 153, -1.0f, 1.0f);
  float *y = ops_const(n, NAN), *yr = ops_const(n, NAN), *dx = ops_const(n, 1234.0f);
  be->add((int64_t)n, a, b, y);
  be->add_relu_forward((int64_t)n, a, b, yr);
  ck_guard(y, n);
  ck_guard(yr, n);
  for (size_t i = 0; i < n; i++) {
    ck_assert_msg(y[i] == a[i] + b[i], "add[%zu]", i);
    ck_assert_msg(yr[i] == (a[i] + b[i] > 0.0f ? a[i] + b[i] : 0.0f), "add_relu[%zu]", i);
  }
  /* aliasing: y may be a or b */
  float *ai = ops_const(n, 0.0f), *bi = ops_const(n, 0.0f);
  memcpy(ai, a, n * sizeof(float));
  memcpy(bi, b, n * sizeof(float));
  be->add((int64_t)n, ai, b, ai);
  be->add((int64_t)n, a, bi, bi);
  ck_guard(ai, n);
  ck_guard(bi, n);
  ck_assert_msg(memcmp(ai, y, n * sizeof(float)) == 0 && memcmp(bi, y, n * sizeof(float)) == 0, "add in place differs");
  /* the residual join's backward is relu_backward on add_relu's output: check it against
   * finite differences with respect to both inputs (sums kept away from the kink) */
  for (size_t i = 0; i < n; i++)
    if (fabsf(a[i] + b[i]) < 1e-3f) a[i] += 3e-3f;
  be->add_relu_forward((int64_t)n, a, b, yr);
  be->relu_backward((int64_t)n, dyf, yr, dx);
  ck_guard(yr, n);
  ck_guard(dx, n);
  struct relu_ctx ctx = {n, ops_dup_d(a, n), ops_dup_d(b, n), ops_dup_d(dyf, n)};
  double *ga = malloc(n * sizeof(double)), *gb = malloc(n * sizeof(double));
  ops_fd(relu_loss, &ctx, ctx.a, n, 1e-5, ga);
  ops_fd(relu_loss, &ctx, ctx.b, n, 1e-5, gb);
  ck_ops_close("add_relu backward (da) vs finite differences", dx, ga, n, 1e-6, 0.0);
  ck_ops_close("add_relu backward (db) vs finite differences", dx, gb, n, 1e-6, 0.0);
  /* the fused backward (one pass, two outputs) against the same finite differences, and equal
   * to relu_backward bit for bit; da may alias dy */
  float *da = ops_const(n, 1234.0f), *db = ops_const(n, 4321.0f), *dyi = ops_const(n, 0.0f), *db2 = ops_const(n, 0.0f);
  be->add_relu_backward((int64_t)n, dyf, yr, da, db);
  ck_guard(da, n);
  ck_guard(db, n);
  ck_ops_close("add_relu_backward da vs finite differences", da, ga, n, 1e-6, 0.0);
  ck_ops_close("add_relu_backward db vs finite differences", db, gb, n, 1e-6, 0.0);
  ck_assert_msg(memcmp(da, dx, n * sizeof(float)) == 0 && memcmp(db, dx, n * sizeof(float)) == 0,
                "add_relu_backward differs from relu_backward");
  memcpy(dyi, dyf, n * sizeof(float));
  be->add_relu_backward((int64_t)n, dyi, yr, dyi, db2);
  ck_guard(dyi, n);
  ck_assert_msg(memcmp(dyi, dx, n * sizeof(float)) == 0 && memcmp(db2, dx, n * sizeof(float)) == 0,
                "add_relu_backward in place (da == dy) differs");
  free(ctx.a); free(ctx.b); free(ctx.r); free(ga); free(gb);
  float *bufs[] = {a, b, dyf, y, yr, dx, ai, bi, da, db, dyi, db2};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) unmix_guarded_free(bufs[i]);
}
END_TEST

START_TEST(test_blas1) {
  const struct unmix_backend *be = unmix_test_cpu();
  const size_t n = 1013;
  float *x = ops_rand(n, 171, -2.0f, 2.0f), *y0 = ops_rand(n, 172, -2.0f, 2.0f);
  float *y = ops_const(n, NAN);
  be->copy((int64_t)n, x, y);
  ck_guard(y, n);
  ck_assert_msg(memcmp(x, y, n * sizeof(float)) == 0, "copy");
  be->fill((int64_t)n, -0.375f, y);
  ck_guard(y, n);
  for (size_t i = 0; i < n; i++) ck_assert_msg(y[i] == -0.375f, "fill[%zu]", i);
  be->copy(0, x, y); /* empty: nothing written */
  be->fill(0, 1.0f, y);
  ck_assert_msg(y[0] == -0.375f, "copy/fill of 0 elements wrote");

  double *w = malloc(n * sizeof(double));
  be->scale((int64_t)n, -1.5f, x, y);
  ck_guard(y, n);
  for (size_t i = 0; i < n; i++) w[i] = -1.5 * x[i];
  ck_ops_close("scale", y, w, n, 1e-7, 0.0);
  memcpy(y, x, n * sizeof(float));
  be->scale((int64_t)n, -1.5f, y, y); /* in place */
  ck_ops_close("scale in place", y, w, n, 1e-7, 0.0);

  memcpy(y, y0, n * sizeof(float));
  be->axpy((int64_t)n, 0.7f, x, y);
  ck_guard(y, n);
  for (size_t i = 0; i < n; i++) w[i] = (double)y0[i] + (double)0.7f * x[i];
  ck_ops_close("axpy", y, w, n, 1e-6, 0.1);

  memcpy(y, y0, n * sizeof(float));
  be->axpby((int64_t)n, 0.7f, x, -0.3f, y);
  ck_guard(y, n);
  for (size_t i = 0; i < n; i++) w[i] = (double)0.7f * x[i] + (double)-0.3f * y0[i];
  ck_ops_close("axpby", y, w, n, 1e-6, 0.1);
  free(w);
  unmix_guarded_free(x); unmix_guarded_free(y0); unmix_guarded_free(y);
}
END_TEST

START_TEST(test_exp_scaled) {
  const struct unmix_backend *be = unmix_test_cpu();
  const size_t nx = 143;
  float *x = ops_rand(nx, 201, -1.0f, 3.0f), *e = ops_const(nx, NAN);
  be->exp_scaled((int64_t)nx, 20.0f, 3.5f, x, e); /* Sinkhorn: exp(s/eps - shift) */
  ck_guard(e, nx);
  double *we = malloc(nx * sizeof(double));
  for (size_t i = 0; i < nx; i++) we[i] = exp((double)20.0f * x[i] - 3.5);
  ck_ops_close("exp_scaled", e, we, nx, 2e-6, 0.0);
  free(we);
  unmix_guarded_free(x); unmix_guarded_free(e);
}
END_TEST

static Suite *elementwise_suite(void) {
  Suite *s = suite_create("backend_elementwise");
  TCase *tc = tcase_create("elementwise");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_relu);
  tcase_add_test(tc, test_add_and_add_relu);
  tcase_add_test(tc, test_blas1);
  tcase_add_test(tc, test_exp_scaled);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(elementwise_suite)
