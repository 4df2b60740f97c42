/* GEMM and linear layers of the CPU backend (core/backend/cpu/dense.c) against double-
 * precision references written from ops.def; the linear backward is checked against central
 * finite differences of a random linear functional on the reference. */
#include "tests/test_backend_common.h"

/* ---- gemm ------------------------------------------------------------------------------ */

/* Row-major C(m,n) = alpha op(A) op(B) + beta C with leading dimensions larger than the
 * matrices; the padding columns of C are guard values that must survive. */
static void check_gemm(bool ta, bool tb, int m, int n, int k, float alpha, float beta) {
  const struct unmix_backend *be = unmix_test_cpu();
  const int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
  const int lda = ac + 3, ldb = bc + 5, ldc = n + 2;
  float *a = ops_rand((size_t)ar * lda, 91, -1.0f, 1.0f), *b = ops_rand((size_t)br * ldb, 92, -1.0f, 1.0f);
  float *c = ops_rand((size_t)m * ldc, 93, -1.0f, 1.0f);
  for (int i = 0; i < m; i++) /* padding of C: sentinel; if beta == 0, C is garbage */
    for (int j = 0; j < ldc; j++)
      if (j >= n) c[(size_t)i * ldc + j] = -12345.0f;
      else if (beta == 0.0f) c[(size_t)i * ldc + j] = NAN;
  double *want = malloc((size_t)m * n * sizeof(double));
  float *got = malloc((size_t)m * n * sizeof(float));
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) {
      double s = 0.0;
      for (int l = 0; l < k; l++) {
        double av = ta ? a[(size_t)l * lda + i] : a[(size_t)i * lda + l];
        double bv = tb ? b[(size_t)j * ldb + l] : b[(size_t)l * ldb + j];
        s += av * bv;
      }
      want[(size_t)i * n + j] = alpha * s + (beta == 0.0f ? 0.0 : (double)beta * c[(size_t)i * ldc + j]);
    }
  be->gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  ck_guard(c, (size_t)m * ldc);
  for (int i = 0; i < m; i++)
    for (int j = 0; j < ldc; j++)
      if (j >= n) ck_assert_msg(c[(size_t)i * ldc + j] == -12345.0f, "gemm wrote C padding at (%d,%d)", i, j);
      else got[(size_t)i * n + j] = c[(size_t)i * ldc + j];
  char what[96];
  snprintf(what, sizeof what, "gemm ta%d tb%d m%d n%d k%d alpha %g beta %g", ta, tb, m, n, k, alpha, beta);
  ck_ops_close(what, got, want, (size_t)m * n, 1e-5, 0.1);
  free(want); free(got);
  unmix_guarded_free(a); unmix_guarded_free(b); unmix_guarded_free(c);
}

START_TEST(test_gemm) {
  for (int t = 0; t < 4; t++) {
    check_gemm(t & 1, t & 2, 7, 11, 13, 1.0f, 0.0f);
    check_gemm(t & 1, t & 2, 13, 5, 6, -0.75f, 0.5f);
    check_gemm(t & 1, t & 2, 1, 9, 1, 2.0f, 1.0f);
    check_gemm(t & 1, t & 2, 67, 45, 129, 0.3f, -1.25f);
    check_gemm(t & 1, t & 2, 5, 7, 0, 1.0f, 0.5f); /* k = 0: C = beta C */
    check_gemm(t & 1, t & 2, 5, 7, 0, 1.0f, 0.0f); /* k = 0, beta 0: C = 0 even over NaN */
  }
}
END_TEST

/* ---- linear ----------------------------------------------------------------------------- */

struct lin_ctx {
  int n, in, out;
  double *x, *w, *b, *r;
};
static double lin_loss(void *p) {
  struct lin_ctx *c = p;
  double L = 0.0;
  for (int i = 0; i < c->n; i++)
    for (int o = 0; o < c->out; o++) {
      double s = c->b ? c->b[o] : 0.0;
      for (int j = 0; j < c->in; j++) s += c->x[(size_t)i * c->in + j] * c->w[(size_t)o * c->in + j];
      L += c->r[(size_t)i * c->out + o] * s;
    }
  return L;
}

static void check_linear(int n, int in, int out, int with_bias) {
  const struct unmix_backend *be = unmix_test_cpu();
  const size_t nx = (size_t)n * in, nw = (size_t)out * in, ny = (size_t)n * out;
  float *x = ops_rand(nx, 101, -1.0f, 1.0f), *w = ops_rand(nw, 102, -1.0f, 1.0f), *b = ops_rand(out, 103, -1.0f, 1.0f);
  float *dyf = ops_rand(ny, 104, -1.0f, 1.0f), *y = ops_const(ny, NAN);
  be->linear_forward(n, in, out, x, w, with_bias ? b : NULL, y);
  ck_guard(y, ny);
  struct lin_ctx ctx = {n, in, out, ops_dup_d(x, nx), ops_dup_d(w, nw), with_bias ? ops_dup_d(b, out) : NULL, NULL};
  double *wy = malloc(ny * sizeof(double));
  for (size_t i = 0; i < ny; i++) { /* y_i = L with r = e_i */
    double *e = calloc(ny, sizeof(double));
    e[i] = 1.0;
    ctx.r = e;
    wy[i] = lin_loss(&ctx);
    free(e);
  }
  ctx.r = ops_dup_d(dyf, ny);
  char buf[128];
  snprintf(buf, sizeof buf, "linear forward n%d in%d out%d bias %d", n, in, out, with_bias);
  ck_ops_close(buf, y, wy, ny, 1e-5, 0.1);

  double *gx = malloc(nx * sizeof(double)), *gw = malloc(nw * sizeof(double)), *gb = malloc(out * sizeof(double));
  ops_fd(lin_loss, &ctx, ctx.x, nx, 1e-3, gx);
  ops_fd(lin_loss, &ctx, ctx.w, nw, 1e-3, gw);
  if (with_bias) ops_fd(lin_loss, &ctx, ctx.b, out, 1e-3, gb);
  /* every subset of {dx, dwt, dbias} may be requested; the others are NULL */
  for (int mask = 0; mask < 8; mask++) {
    if ((mask & 4) && !with_bias) continue;
    float *dx = ops_const(nx, 8888.0f), *dw = ops_rand(nw, 105, -1.0f, 1.0f), *db = ops_rand(out, 106, -1.0f, 1.0f);
    float *dw0 = malloc(nw * sizeof(float)), *db0 = malloc(out * sizeof(float));
    memcpy(dw0, dw, nw * sizeof(float));
    memcpy(db0, db, out * sizeof(float));
    be->linear_backward(n, in, out, dyf, x, w, (mask & 1) ? dx : NULL, (mask & 2) ? dw : NULL, (mask & 4) ? db : NULL);
    ck_guard(dx, nx);
    ck_guard(dw, nw);
    ck_guard(db, out);
    if (mask & 1) {
      snprintf(buf, sizeof buf, "linear dx (mask %d) vs finite differences", mask);
      ck_ops_close(buf, dx, gx, nx, 1e-4, 0.1);
    } else {
      for (size_t i = 0; i < nx; i++) ck_assert_msg(dx[i] == 8888.0f, "linear wrote dx although it was NULL");
    }
    if (mask & 2) {
      double *want = ops_plus(dw0, gw, nw);
      snprintf(buf, sizeof buf, "linear dwt += (mask %d) vs finite differences", mask);
      ck_ops_close(buf, dw, want, nw, 1e-4, 0.1);
      free(want);
    } else {
      ck_assert_msg(memcmp(dw, dw0, nw * sizeof(float)) == 0, "linear wrote dwt although it was NULL");
    }
    if (mask & 4) {
      double *want = ops_plus(db0, gb, out);
      ck_ops_close("linear dbias += vs finite differences", db, want, out, 1e-4, 0.1);
      free(want);
    } else {
      ck_assert_msg(memcmp(db, db0, out * sizeof(float)) == 0, "linear wrote dbias although it was NULL");
    }
    free(dw0); free(db0);
    unmix_guarded_free(dx); unmix_guarded_free(dw); unmix_guarded_free(db);
  }
  free(ctx.x); free(ctx.w); free(ctx.b); free(ctx.r); free(wy); free(gx); free(gw); free(gb);
  unmix_guarded_free(x); unmix_guarded_free(w); unmix_guarded_free(b); unmix_guarded_free(dyf);
  unmix_guarded_free(y);
}

START_TEST(test_linear) {
  check_linear(5, 13, 6, 1);
  check_linear(5, 13, 6, 0);
  check_linear(1, 7, 11, 1);
  check_linear(9, 1, 3, 1);
}
END_TEST

static Suite *dense_suite(void) {
  Suite *s = suite_create("backend_dense");
  TCase *tc = tcase_create("dense");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_gemm);
  tcase_add_test(tc, test_linear);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(dense_suite)
