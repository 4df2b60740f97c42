/* conv2d forward / backward-data / backward-weight of the CPU backend against a naive
 * double-precision convolution written from the contract in backend.h, with gradients
 * checked by central finite differences on that reference, for every geometry the models
 * use (and odd ones), plus the chunked path and thread-count independence. Every geometry
 * is checked on both fp32 kernel sets (UNMIX_CPU_CONV=reference and, in a build with
 * oneDNN, =onednn; the default auto runs each pass on one of the two). */
#include <omp.h>

#include "core/backend/cpu/internal.h"
#include "tests/test_backend_common.h"

static const enum unmix_cpu_conv k_modes[] = {UNMIX_CPU_CONV_REFERENCE, UNMIX_CPU_CONV_ONEDNN};
static const char *const k_mode_names[] = {"reference", "onednn"};

/* y[n,p,q,k] = sum_{r,s,c} x[n, p*st-pad+r, q*st-pad+s, c] * w[k,r,s,c] (0 outside). */
static void ref_conv(const struct unmix_conv_geom *g, const double *x, const double *w, double *y) {
  for (int n = 0; n < g->n; n++)
    for (int p = 0; p < g->p; p++)
      for (int q = 0; q < g->q; q++)
        for (int k = 0; k < g->k; k++) {
          double acc = 0.0;
          for (int r = 0; r < g->r; r++) {
            int ih = p * g->stride - g->pad + r;
            if (ih < 0 || ih >= g->h) continue;
            for (int s = 0; s < g->s; s++) {
              int iw = q * g->stride - g->pad + s;
              if (iw < 0 || iw >= g->w) continue;
              const double *xv = x + (((size_t)n * g->h + ih) * g->w + iw) * g->c;
              const double *wv = w + (((size_t)k * g->r + r) * g->s + s) * g->c;
              for (int c = 0; c < g->c; c++) acc += xv[c] * wv[c];
            }
          }
          y[(((size_t)n * g->p + p) * g->q + q) * g->k + k] = acc;
        }
}

struct conv_ctx {
  const struct unmix_conv_geom *g;
  double *x, *w, *r, *y;
  size_t ny;
};
static double conv_loss(void *p) {
  struct conv_ctx *c = p;
  ref_conv(c->g, c->x, c->w, c->y);
  return ops_dot_d(c->r, c->y, c->ny);
}

/* One geometry: forward against the reference; dx (pre-filled with garbage) and dw
 * (pre-filled with nonzero values, so += is visible) against finite differences of
 * L = sum r*y on the reference; guards around every output. */
static void check_conv_kernels(int mode, int n, int h, int w, int c, int k, int r, int s, int stride, int pad) {
  const struct unmix_backend *be = unmix_test_cpu();
  unmix_cpu_conv_set_mode(k_modes[mode]);
  struct unmix_conv_geom g;
  unmix_conv_geom_init(&g, n, h, w, c, k, r, s, stride, pad);
  char what[160];
  snprintf(what, sizeof what, "%s conv %dx%d s%d p%d (n%d h%d w%d c%d k%d -> p%d q%d)", k_mode_names[mode], r, s,
           stride, pad, n, h, w, c, k, g.p, g.q);
  const size_t nx = (size_t)n * h * w * c, nw = (size_t)k * r * s * c, ny = (size_t)n * g.p * g.q * k;

  float *x = ops_rand(nx, 1, -1.0f, 1.0f), *wt = ops_rand(nw, 2, -1.0f, 1.0f), *dy = ops_rand(ny, 3, -1.0f, 1.0f);
  float *y = ops_const(ny, NAN);
  be->conv2d_forward(&g, x, wt, y);
  ck_guard(y, ny);

  struct conv_ctx ctx = {&g, ops_dup_d(x, nx), ops_dup_d(wt, nw), ops_dup_d(dy, ny), malloc(ny * sizeof(double)),
                         ny};
  ref_conv(&g, ctx.x, ctx.w, ctx.y);
  char buf[400];
  snprintf(buf, sizeof buf, "%s forward", what);
  ck_ops_close(buf, y, ctx.y, ny, 1e-5, 0.1);

  float *dx = ops_const(nx, 7777.0f);
  be->conv2d_backward_data(&g, dy, wt, dx);
  ck_guard(dx, nx);
  double *gx = malloc(nx * sizeof(double));
  ops_fd(conv_loss, &ctx, ctx.x, nx, 1e-3, gx);
  snprintf(buf, sizeof buf, "%s backward_data vs finite differences", what);
  ck_ops_close(buf, dx, gx, nx, 1e-4, 0.1);

  float *dw = ops_rand(nw, 4, -2.0f, 2.0f), *dw0 = malloc(nw * sizeof(float));
  memcpy(dw0, dw, nw * sizeof(float));
  be->conv2d_backward_weight(&g, dy, x, dw);
  ck_guard(dw, nw);
  double *gw = malloc(nw * sizeof(double));
  ops_fd(conv_loss, &ctx, ctx.w, nw, 1e-3, gw);
  double *want = ops_plus(dw0, gw, nw);
  snprintf(buf, sizeof buf, "%s backward_weight (+= onto prefill) vs finite differences", what);
  ck_ops_close(buf, dw, want, nw, 1e-4, 0.1);

  free(want); free(gw); free(gx); free(dw0);
  free(ctx.x); free(ctx.w); free(ctx.r); free(ctx.y);
  unmix_guarded_free(x); unmix_guarded_free(wt); unmix_guarded_free(dy); unmix_guarded_free(y);
  unmix_guarded_free(dx); unmix_guarded_free(dw);
}
static void check_conv(int n, int h, int w, int c, int k, int r, int s, int stride, int pad) {
  for (int m = 0; m < 2; m++) check_conv_kernels(m, n, h, w, c, k, r, s, stride, pad);
  unmix_cpu_conv_set_mode(UNMIX_CPU_CONV_AUTO);
}

START_TEST(test_conv_pointwise_s1) { check_conv(5, 7, 11, 13, 6, 1, 1, 1, 0); }
END_TEST
START_TEST(test_conv_pointwise_s2) { check_conv(5, 7, 11, 13, 6, 1, 1, 2, 0); }
END_TEST
START_TEST(test_conv_3x3_s1_p1) { check_conv(5, 7, 11, 13, 6, 3, 3, 1, 1); }
END_TEST
START_TEST(test_conv_3x3_s2_p1) {
  check_conv(5, 7, 11, 13, 6, 3, 3, 2, 1);
  check_conv(3, 8, 6, 13, 6, 3, 3, 2, 1); /* even input: last row/col of padding unused */
}
END_TEST
START_TEST(test_conv_3x3_s1_p0) { check_conv(3, 7, 11, 13, 6, 3, 3, 1, 0); }
END_TEST
START_TEST(test_conv_7x7_s2_p3) { check_conv(3, 9, 11, 5, 6, 7, 7, 2, 3); }
END_TEST
START_TEST(test_conv_nonsquare) {
  check_conv(5, 7, 11, 13, 6, 3, 5, 1, 1);
  check_conv(3, 7, 11, 5, 7, 5, 3, 2, 2);
}
END_TEST
START_TEST(test_conv_single_channel_and_filter) { check_conv(2, 5, 3, 1, 1, 3, 3, 1, 1); }
END_TEST

/* Shapes with many tiles (and a remainder) on every path: im2col, pointwise, strided
 * backward-data by image tiles, backward-weight lanes. Compared with the reference and its
 * exact adjoint (conv is linear, so the adjoint is the gradient; finite differences at
 * this size would be slow). */
static void check_conv_large_kernels(int mode, int n, int h, int w, int c, int k, int r, int s, int stride,
                                     int pad) {
  const struct unmix_backend *be = unmix_test_cpu();
  unmix_cpu_conv_set_mode(k_modes[mode]);
  struct unmix_conv_geom g;
  unmix_conv_geom_init(&g, n, h, w, c, k, r, s, stride, pad);
  const size_t nx = (size_t)g.n * g.h * g.w * g.c, nw = (size_t)g.k * g.r * g.s * g.c,
               ny = (size_t)g.n * g.p * g.q * g.k;
  float *x = ops_rand(nx, 11, -1.0f, 1.0f), *wt = ops_rand(nw, 12, -1.0f, 1.0f), *dy = ops_rand(ny, 13, -1.0f, 1.0f);
  float *y = ops_const(ny, NAN), *dx = ops_const(nx, NAN), *dw = ops_const(nw, 0.5f);
  be->conv2d_forward(&g, x, wt, y);
  be->conv2d_backward_data(&g, dy, wt, dx);
  be->conv2d_backward_weight(&g, dy, x, dw);
  ck_guard(y, ny);
  ck_guard(dx, nx);
  ck_guard(dw, nw);

  double *xd = ops_dup_d(x, nx), *wd = ops_dup_d(wt, nw), *dyd = ops_dup_d(dy, ny);
  double *yr = malloc(ny * sizeof(double)), *dxr = calloc(nx, sizeof(double)), *dwr = malloc(nw * sizeof(double));
  for (size_t i = 0; i < nw; i++) dwr[i] = 0.5;
  ref_conv(&g, xd, wd, yr);
  /* adjoint: every product x*w in the forward sends dy*w to dx and dy*x to dw */
  for (int in = 0; in < g.n; in++)
    for (int p = 0; p < g.p; p++)
      for (int q = 0; q < g.q; q++)
        for (int ir = 0; ir < g.r; ir++) {
          int ih = p * g.stride - g.pad + ir;
          if (ih < 0 || ih >= g.h) continue;
          for (int is = 0; is < g.s; is++) {
            int iw = q * g.stride - g.pad + is;
            if (iw < 0 || iw >= g.w) continue;
            size_t xo = (((size_t)in * g.h + ih) * g.w + iw) * g.c;
            for (int ik = 0; ik < g.k; ik++) {
              double d = dyd[(((size_t)in * g.p + p) * g.q + q) * g.k + ik];
              size_t wo = (((size_t)ik * g.r + ir) * g.s + is) * g.c;
              for (int ic = 0; ic < g.c; ic++) {
                dxr[xo + ic] += d * wd[wo + ic];
                dwr[wo + ic] += d * xd[xo + ic];
              }
            }
          }
        }
  char what[160], buf[400];
  snprintf(what, sizeof what, "%s large conv %dx%d s%d p%d (n%d h%d w%d c%d k%d)", k_mode_names[mode], r, s, stride,
           pad, n, h, w, c, k);
  snprintf(buf, sizeof buf, "%s forward", what);
  ck_ops_close(buf, y, yr, ny, 1e-5, 0.1);
  snprintf(buf, sizeof buf, "%s backward_data", what);
  ck_ops_close(buf, dx, dxr, nx, 1e-5, 0.1);
  snprintf(buf, sizeof buf, "%s backward_weight", what);
  ck_ops_close(buf, dw, dwr, nw, 1e-4, 0.1);
  free(xd); free(wd); free(dyd); free(yr); free(dxr); free(dwr);
  unmix_guarded_free(x); unmix_guarded_free(wt); unmix_guarded_free(dy);
  unmix_guarded_free(y); unmix_guarded_free(dx); unmix_guarded_free(dw);
}
static void check_conv_large(int n, int h, int w, int c, int k, int r, int s, int stride, int pad) {
  for (int m = 0; m < 2; m++) check_conv_large_kernels(m, n, h, w, c, k, r, s, stride, pad);
  unmix_cpu_conv_set_mode(UNMIX_CPU_CONV_AUTO);
}

START_TEST(test_conv_large_tiled) {
  check_conv_large(7, 58, 54, 96, 10, 3, 3, 1, 1);
  check_conv_large(7, 40, 38, 24, 10, 3, 3, 2, 1);
  check_conv_large(5, 30, 31, 40, 12, 1, 1, 1, 0);
  check_conv_large(6, 33, 35, 16, 8, 1, 1, 2, 0);
  check_conv_large(3, 45, 43, 3, 16, 7, 7, 2, 3);
}
END_TEST

/* On the reference kernels (UNMIX_CPU_CONV=reference) results do not depend on the number of
 * OpenMP threads: such runs are reproducible bit-for-bit on CPU whatever the machine. */
START_TEST(test_conv_thread_count_independent) {
  const struct unmix_backend *be = unmix_test_cpu();
  unmix_cpu_conv_set_mode(UNMIX_CPU_CONV_REFERENCE);
  static const int geo[][9] = {{6, 13, 11, 24, 16, 3, 3, 1, 1}, {5, 13, 11, 24, 16, 3, 3, 2, 1},
                               {5, 13, 11, 24, 16, 1, 1, 1, 0}, {3, 17, 15, 3, 8, 7, 7, 2, 3}};
  const int saved = omp_get_max_threads();
  for (size_t t = 0; t < sizeof geo / sizeof geo[0]; t++) {
    const int *a = geo[t];
    struct unmix_conv_geom g;
    unmix_conv_geom_init(&g, a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8]);
    const size_t nx = (size_t)g.n * g.h * g.w * g.c, nw = (size_t)g.k * g.r * g.s * g.c,
                 ny = (size_t)g.n * g.p * g.q * g.k;
    float *x = ops_rand(nx, 21, -1.0f, 1.0f), *wt = ops_rand(nw, 22, -1.0f, 1.0f), *dy = ops_rand(ny, 23, -1.0f, 1.0f);
    float *out[3][3];
    for (int th = 0; th < 3; th++) {
      omp_set_num_threads(th + 1);
      out[th][0] = ops_const(ny, 0.0f);
      out[th][1] = ops_const(nx, 0.0f);
      out[th][2] = ops_const(nw, 0.25f);
      be->conv2d_forward(&g, x, wt, out[th][0]);
      be->conv2d_backward_data(&g, dy, wt, out[th][1]);
      be->conv2d_backward_weight(&g, dy, x, out[th][2]);
    }
    omp_set_num_threads(saved);
    const size_t sz[3] = {ny, nx, nw};
    for (int th = 0; th < 3; th++)
      for (int o = 0; o < 3; o++) ck_assert_msg(unmix_guard_ok(out[th][o], sz[o]), "guard of pass %d", o);
    for (int th = 1; th < 3; th++)
      for (int o = 0; o < 3; o++)
        ck_assert_msg(memcmp(out[0][o], out[th][o], sz[o] * sizeof(float)) == 0,
                      "geometry %zu pass %d differs between 1 and %d OpenMP threads", t, o, th + 1);
    for (int th = 0; th < 3; th++)
      for (int o = 0; o < 3; o++) unmix_guarded_free(out[th][o]);
    unmix_guarded_free(x); unmix_guarded_free(wt); unmix_guarded_free(dy);
  }
  unmix_cpu_conv_set_mode(UNMIX_CPU_CONV_AUTO);
}
END_TEST

static Suite *conv_suite(void) {
  Suite *s = suite_create("backend_conv");
  TCase *tc = tcase_create("conv2d");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_conv_pointwise_s1);
  tcase_add_test(tc, test_conv_pointwise_s2);
  tcase_add_test(tc, test_conv_3x3_s1_p1);
  tcase_add_test(tc, test_conv_3x3_s2_p1);
  tcase_add_test(tc, test_conv_3x3_s1_p0);
  tcase_add_test(tc, test_conv_7x7_s2_p3);
  tcase_add_test(tc, test_conv_nonsquare);
  tcase_add_test(tc, test_conv_single_channel_and_filter);
  tcase_add_test(tc, test_conv_large_tiled);
  tcase_add_test(tc, test_conv_thread_count_independent);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(conv_suite)
