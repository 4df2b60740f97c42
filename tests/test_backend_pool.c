/* Max pooling, global average pooling and constant padding of the CPU backend
 * (core/backend/cpu/pool.c) against double-precision references (ties, NaN), with every
 * backward checked against central finite differences. */
#include "tests/test_backend_common.h"

/* ---- max pool --------------------------------------------------------------------------- */

/* Window (p,q) covers rows p*st-pad .. +k-1 and cols q*st-pad .. +k-1 inside the image;
 * the maximum is the first one met in row-major order (lowest flat index on ties). */
static void ref_maxpool(const struct unmix_pool_geom *g, const double *x, double *y, int32_t *am) {
  for (int n = 0; n < g->n; n++)
    for (int p = 0; p < g->p; p++)
      for (int q = 0; q < g->q; q++)
        for (int c = 0; c < g->c; c++) {
          double best = -INFINITY;
          int32_t arg = -1;
          for (int r = 0; r < g->k; r++)
            for (int s = 0; s < g->k; s++) {
              int ih = p * g->stride - g->pad + r, iw = q * g->stride - g->pad + s;
              if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w) continue;
              double v = x[(((size_t)n * g->h + ih) * g->w + iw) * g->c + c];
              if (arg < 0 || v > best) {
                best = v;
                arg = ih * g->w + iw;
              }
            }
          size_t o = (((size_t)n * g->p + p) * g->q + q) * g->c + c;
          y[o] = best;
          if (am) am[o] = arg;
        }
}

struct mp_ctx {
  const struct unmix_pool_geom *g;
  double *x, *r, *y;
  size_t ny;
};
static double mp_loss(void *p) {
  struct mp_ctx *c = p;
  ref_maxpool(c->g, c->x, c->y, NULL);
  return ops_dot_d(c->r, c->y, c->ny);
}

static void check_maxpool(int n, int h, int w, int C, int k, int stride, int pad) {
  const struct unmix_backend *be = unmix_test_cpu();
  struct unmix_pool_geom g;
  unmix_pool_geom_init(&g, n, h, w, C, k, stride, pad);
  const size_t nx = (size_t)n * h * w * C, ny = (size_t)n * g.p * g.q * C;
  /* distinct values at least 1e-3 apart (a random permutation of a grid), so finite
   * differences with step 1e-5 never cross a tie */
  float *x = ops_rand(nx, 111, 0.0f, 1.0f);
  {
    int32_t *perm = malloc(nx * sizeof(int32_t));
    for (size_t i = 0; i < nx; i++) perm[i] = (int32_t)i;
    for (size_t i = nx - 1; i > 0; i--) { /* shuffle driven by the random floats */
      size_t j = (size_t)(x[i] * (float)(i + 1)) % (i + 1);
      int32_t t = perm[i]; perm[i] = perm[j]; perm[j] = t;
    }
    for (size_t i = 0; i < nx; i++) x[i] = (float)perm[i] * 1e-3f - 1.0f;
    free(perm);
  }
  float *y = ops_const(ny, NAN), *dyf = ops_rand(ny, 112, -1.0f, 1.0f), *dx = ops_const(nx, 6666.0f);
  int32_t *am = ops_ints(ny);
  be->maxpool_forward(&g, x, y, am);
  ck_guard(y, ny);
  ck_assert(ops_ints_guard_ok(am, ny));
  struct mp_ctx ctx = {&g, ops_dup_d(x, nx), ops_dup_d(dyf, ny), malloc(ny * sizeof(double)), ny};
  double *wy = malloc(ny * sizeof(double));
  int32_t *wam = malloc(ny * sizeof(int32_t));
  ref_maxpool(&g, ctx.x, wy, wam);
  ck_ops_close("maxpool forward", y, wy, ny, 0.0, 0.0);
  for (size_t i = 0; i < ny; i++) ck_assert_msg(am[i] == wam[i], "maxpool argmax[%zu] = %d, want %d", i, am[i], wam[i]);
  be->maxpool_backward(&g, dyf, am, dx);
  ck_guard(dx, nx);
  double *gx = malloc(nx * sizeof(double));
  ops_fd(mp_loss, &ctx, ctx.x, nx, 1e-5, gx);
  ck_ops_close("maxpool backward vs finite differences", dx, gx, nx, 1e-5, 0.01);
  free(ctx.x); free(ctx.r); free(ctx.y); free(wy); free(wam); free(gx);
  unmix_guarded_free(x); unmix_guarded_free(y); unmix_guarded_free(dyf); unmix_guarded_free(dx);
  ops_ints_free(am);
}

START_TEST(test_maxpool) {
  check_maxpool(5, 7, 11, 13, 3, 2, 1); /* the ResNet stem pool */
  check_maxpool(3, 8, 6, 5, 3, 2, 1);
  check_maxpool(2, 5, 7, 3, 2, 2, 0);
  check_maxpool(2, 6, 5, 4, 3, 1, 1); /* stride 1: heavy window overlap */
}
END_TEST

/* Ties go to the first maximum in row-major window order, and the backward routes the
 * whole gradient there; NaN propagates to the output. */
START_TEST(test_maxpool_ties_and_nan) {
  const struct unmix_backend *be = unmix_test_cpu();
  struct unmix_pool_geom g;
  unmix_pool_geom_init(&g, 1, 5, 5, 2, 3, 2, 1);
  const size_t nx = 50, ny = (size_t)g.p * g.q * 2;
  float *x = ops_const(nx, 1.0f), *y = ops_const(ny, NAN), *dy = ops_const(ny, 1.0f), *dx = ops_const(nx, 7.0f);
  int32_t *am = ops_ints(ny);
  x[(2 * 5 + 3) * 2 + 1] = NAN; /* channel 1, row 2, col 3 */
  be->maxpool_forward(&g, x, y, am);
  ck_guard(y, ny);
  ck_assert(ops_ints_guard_ok(am, ny));
  int32_t *wam = malloc(ny * sizeof(int32_t));
  for (int p = 0; p < g.p; p++)
    for (int q = 0; q < g.q; q++) {
      int r0 = p * 2 - 1 < 0 ? 0 : p * 2 - 1, c0 = q * 2 - 1 < 0 ? 0 : q * 2 - 1;
      size_t o = ((size_t)p * g.q + q) * 2;
      wam[o] = r0 * 5 + c0; /* all equal: the window's first in-image element */
      ck_assert_msg(am[o] == wam[o], "maxpool tie at (%d,%d): argmax %d, want %d", p, q, am[o], wam[o]);
      int has_nan = p * 2 - 1 <= 2 && 2 <= p * 2 + 1 && q * 2 - 1 <= 3 && 3 <= q * 2 + 1;
      if (has_nan) ck_assert_msg(isnan(y[o + 1]), "maxpool: NaN in window (%d,%d) did not propagate", p, q);
      else ck_assert_msg(y[o + 1] == 1.0f, "maxpool channel 1 at (%d,%d): %g", p, q, y[o + 1]);
    }
  be->maxpool_backward(&g, dy, am, dx);
  ck_guard(dx, nx);
  /* channel 0: each window's first element gets 1 per window it heads */
  for (int hh = 0; hh < 5; hh++)
    for (int ww = 0; ww < 5; ww++) {
      int cnt = 0;
      for (size_t o = 0; o < ny; o += 2) cnt += wam[o] == hh * 5 + ww;
      ck_assert_msg(dx[(hh * 5 + ww) * 2] == (float)cnt, "maxpool tie backward at (%d,%d): %g, want %d", hh, ww,
                    dx[(hh * 5 + ww) * 2], cnt);
    }
  free(wam);
  unmix_guarded_free(x); unmix_guarded_free(y); unmix_guarded_free(dy); unmix_guarded_free(dx);
  ops_ints_free(am);
}
END_TEST

/* ---- average pool and padding ----------------------------------------------------------- */

struct ap_ctx {
  int n, hw, c;
  double *x, *r;
};
static double ap_loss(void *p) {
  struct ap_ctx *a = p;
  double L = 0.0;
  for (int i = 0; i < a->n; i++)
    for (int ch = 0; ch < a->c; ch++) {
      double s = 0.0;
      for (int q = 0; q < a->hw; q++) s += a->x[((size_t)i * a->hw + q) * a->c + ch];
      L += a->r[(size_t)i * a->c + ch] * s / a->hw;
    }
  return L;
}

START_TEST(test_avgpool) {
  const struct unmix_backend *be = unmix_test_cpu();
  static const int shapes[][3] = {{5, 21, 13}, {3, 1, 7}, {2, 49, 3}};
  for (int t = 0; t < 3; t++) {
    const int n = shapes[t][0], hw = shapes[t][1], c = shapes[t][2];
    const size_t nx = (size_t)n * hw * c, ny = (size_t)n * c;
    float *x = ops_rand(nx, 121, -1.0f, 2.0f), *dyf = ops_rand(ny, 122, -1.0f, 1.0f);
    float *y = ops_const(ny, NAN), *dx = ops_const(nx, 1111.0f);
    be->avgpool_forward(n, hw, c, x, y);
    be->avgpool_backward(n, hw, c, dyf, dx);
    ck_guard(y, ny);
    ck_guard(dx, nx);
    struct ap_ctx ctx = {n, hw, c, ops_dup_d(x, nx), NULL};
    double *wy = malloc(ny * sizeof(double)), *gx = malloc(nx * sizeof(double));
    for (int i = 0; i < n; i++)
      for (int ch = 0; ch < c; ch++) {
        double s = 0.0;
        for (int q = 0; q < hw; q++) s += ctx.x[((size_t)i * hw + q) * c + ch];
        wy[(size_t)i * c + ch] = s / hw;
      }
    ck_ops_close("avgpool forward", y, wy, ny, 1e-5, 0.1);
    ctx.r = ops_dup_d(dyf, ny);
    ops_fd(ap_loss, &ctx, ctx.x, nx, 1e-3, gx);
    ck_ops_close("avgpool backward vs finite differences", dx, gx, nx, 1e-5, 0.01);
    free(ctx.x); free(ctx.r); free(wy); free(gx);
    unmix_guarded_free(x); unmix_guarded_free(dyf); unmix_guarded_free(y); unmix_guarded_free(dx);
  }
}
END_TEST

struct pad_ctx {
  int n, h, w, c, pad;
  double value, *x, *r;
};
static double ref_pad_at(const struct pad_ctx *a, int i, int r, int s, int ch) {
  int ir = r - a->pad, is = s - a->pad;
  if (ir < 0 || ir >= a->h || is < 0 || is >= a->w) return a->value;
  return a->x[(((size_t)i * a->h + ir) * a->w + is) * a->c + ch];
}
static double pad_loss(void *p) {
  struct pad_ctx *a = p;
  const int ho = a->h + 2 * a->pad, wo = a->w + 2 * a->pad;
  double L = 0.0;
  for (int i = 0; i < a->n; i++)
    for (int r = 0; r < ho; r++)
      for (int s = 0; s < wo; s++)
        for (int ch = 0; ch < a->c; ch++)
          L += a->r[(((size_t)i * ho + r) * wo + s) * a->c + ch] * ref_pad_at(a, i, r, s, ch);
  return L;
}

START_TEST(test_pad2d) {
  const struct unmix_backend *be = unmix_test_cpu();
  static const int shapes[][5] = {{5, 7, 11, 13, 1}, {2, 3, 4, 3, 2}, {3, 5, 5, 2, 0}};
  for (int t = 0; t < 3; t++) {
    const int n = shapes[t][0], h = shapes[t][1], w = shapes[t][2], c = shapes[t][3], pad = shapes[t][4];
    const int ho = h + 2 * pad, wo = w + 2 * pad;
    const size_t nx = (size_t)n * h * w * c, ny = (size_t)n * ho * wo * c;
    const float value = t == 1 ? -0.25f : 0.0f;
    float *x = ops_rand(nx, 131, -1.0f, 1.0f), *dyf = ops_rand(ny, 132, -1.0f, 1.0f);
    float *y = ops_const(ny, NAN), *dx = ops_const(nx, 1212.0f);
    be->pad2d_forward(n, h, w, c, pad, value, x, y);
    be->pad2d_backward(n, h, w, c, pad, dyf, dx);
    ck_guard(y, ny);
    ck_guard(dx, nx);
    struct pad_ctx ctx = {n, h, w, c, pad, value, ops_dup_d(x, nx), ops_dup_d(dyf, ny)};
    double *wy = malloc(ny * sizeof(double)), *gx = malloc(nx * sizeof(double));
    for (int i = 0; i < n; i++)
      for (int r = 0; r < ho; r++)
        for (int s = 0; s < wo; s++)
          for (int ch = 0; ch < c; ch++) wy[(((size_t)i * ho + r) * wo + s) * c + ch] = ref_pad_at(&ctx, i, r, s, ch);
    ck_ops_close("pad2d forward", y, wy, ny, 0.0, 0.0);
    ops_fd(pad_loss, &ctx, ctx.x, nx, 1e-3, gx);
    ck_ops_close("pad2d backward vs finite differences", dx, gx, nx, 1e-6, 0.01);
    free(ctx.x); free(ctx.r); free(wy); free(gx);
    unmix_guarded_free(x); unmix_guarded_free(dyf); unmix_guarded_free(y); unmix_guarded_free(dx);
  }
}
END_TEST

static Suite *pool_suite(void) {
  Suite *s = suite_create("backend_pool");
  TCase *tc = tcase_create("pool");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_maxpool);
  tcase_add_test(tc, test_maxpool_ties_and_nan);
  tcase_add_test(tc, test_avgpool);
  tcase_add_test(tc, test_pad2d);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(pool_suite)
