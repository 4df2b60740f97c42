/* Element-wise, batch-axis, BLAS-1, Un-Mix mixing, reduction, optimiser, top-k and
 * finiteness ops of the CPU backend against references written from backend.h and the
 * SPEC (§1.2-1.3 mixing, §4.7/§6 SGD and LARC), with guards around every output. */
#include "tests/test_ops_common.h"

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
  free(ctx.a); free(ctx.b); free(ctx.r); free(ga); free(gb);
  float *bufs[] = {a, b, dyf, y, yr, dx, ai, bi};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) unmix_guarded_free(bufs[i]);
}
END_TEST

/* ---- batch-axis and BLAS-1 ------------------------------------------------------------- */

START_TEST(test_flip_gather_scatter) {
  const struct unmix_backend *be = unmix_test_cpu();
  const int n = 7;
  const int64_t row = 13;
  const size_t nx = (size_t)n * row;
  float *x = ops_rand(nx, 161, -1.0f, 1.0f), *y = ops_const(nx, NAN);
  be->flip_batch(n, row, x, y);
  ck_guard(y, nx);
  for (int i = 0; i < n; i++)
    ck_assert_msg(memcmp(y + i * row, x + (n - 1 - i) * row, row * sizeof(float)) == 0, "flip_batch row %d", i);

  static const int32_t idx[5] = {4, 0, 6, 2, 5};
  float *g = ops_const(5 * row, NAN);
  be->gather_rows(5, row, idx, x, g);
  ck_guard(g, 5 * row);
  for (int i = 0; i < 5; i++)
    ck_assert_msg(memcmp(g + i * row, x + idx[i] * row, row * sizeof(float)) == 0, "gather_rows row %d", i);

  float *s = ops_const(nx, -3.0f);
  be->scatter_rows(5, row, idx, g, s);
  ck_guard(s, nx);
  for (int i = 0; i < n; i++) {
    int hit = -1;
    for (int j = 0; j < 5; j++)
      if (idx[j] == i) hit = j;
    for (int64_t k = 0; k < row; k++)
      ck_assert_msg(s[i * row + k] == (hit >= 0 ? g[hit * row + k] : -3.0f), "scatter_rows row %d col %lld", i,
                    (long long)k);
  }
  unmix_guarded_free(x); unmix_guarded_free(y); unmix_guarded_free(g); unmix_guarded_free(s);
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

/* ---- Un-Mix mixing (SPEC §1.2, §1.3) ------------------------------------------------------ */

START_TEST(test_mix_global) {
  const struct unmix_backend *be = unmix_test_cpu();
  static const int ns[2] = {7, 6}; /* odd n: the middle sample mixes with itself */
  for (int t = 0; t < 2; t++) {
    const int n = ns[t];
    const int64_t row = 3 * 5 * 4;
    const size_t nx = (size_t)n * row;
    const float lam = 0.3125f + 0.1f * t;
    float *x = ops_rand(nx, 181, -2.0f, 2.0f), *y = ops_const(nx, NAN);
    be->mix_global(n, row, lam, x, y);
    ck_guard(y, nx);
    double *w = malloc(nx * sizeof(double));
    for (int i = 0; i < n; i++)
      for (int64_t j = 0; j < row; j++)
        w[i * row + j] = (double)lam * x[i * row + j] + (1.0 - (double)lam) * x[(n - 1 - i) * row + j];
    ck_ops_close("mix_global", y, w, nx, 1e-6, 0.1);
    free(w);
    unmix_guarded_free(x); unmix_guarded_free(y);
  }
}
END_TEST

static void check_mix_region(int n, int h, int w, int c, int r0, int r1, int c0, int c1) {
  const struct unmix_backend *be = unmix_test_cpu();
  const size_t nx = (size_t)n * h * w * c;
  float *x = ops_rand(nx, 191, -1.0f, 1.0f), *y = ops_const(nx, NAN);
  be->mix_region(n, h, w, c, r0, r1, c0, c1, x, y);
  ck_guard(y, nx);
  for (int i = 0; i < n; i++)
    for (int r = 0; r < h; r++)
      for (int s = 0; s < w; s++) {
        int inbox = r >= r0 && r < r1 && s >= c0 && s < c1;
        int src = inbox ? n - 1 - i : i;
        for (int ch = 0; ch < c; ch++)
          ck_assert_msg(y[(((size_t)i * h + r) * w + s) * c + ch] == x[(((size_t)src * h + r) * w + s) * c + ch],
                        "mix_region box [%d,%d)x[%d,%d): sample %d at (%d,%d,%d)", r0, r1, c0, c1, i, r, s, ch);
      }
  unmix_guarded_free(x); unmix_guarded_free(y);
}

START_TEST(test_mix_region) {
  check_mix_region(5, 7, 11, 3, 2, 5, 3, 9);
  check_mix_region(4, 7, 11, 2, 0, 7, 0, 11); /* whole image */
  check_mix_region(3, 7, 11, 2, 4, 4, 0, 11); /* empty box */
  check_mix_region(3, 6, 5, 1, 5, 6, 4, 5);   /* single corner pixel */
}
END_TEST

/* The worked example of SPEC §1.3: 32x32, lam = 0.3, cx = 5, cy = 20 gives rows [0,18),
 * cols [7,32), area 450 and a re-adjusted lam of 0.560546875. The box arithmetic below is
 * the reference formula; the op must replace exactly those pixels. */
START_TEST(test_mix_region_spec_example) {
  const int H = 32, W = 32, cx = 5, cy = 20, n = 3, c = 3;
  const double lam = 0.3, cut_rat = sqrt(1.0 - lam);
  const int cut_w = (int)(H * cut_rat), cut_h = (int)(W * cut_rat); /* trunc */
  ck_assert_int_eq(cut_w, 26);
  int bbx1 = cx - cut_w / 2, bbx2 = cx + cut_w / 2, bby1 = cy - cut_h / 2, bby2 = cy + cut_h / 2;
  bbx1 = bbx1 < 0 ? 0 : bbx1 > H ? H : bbx1;
  bbx2 = bbx2 < 0 ? 0 : bbx2 > H ? H : bbx2;
  bby1 = bby1 < 0 ? 0 : bby1 > W ? W : bby1;
  bby2 = bby2 < 0 ? 0 : bby2 > W ? W : bby2;
  ck_assert_int_eq(bbx1, 0);
  ck_assert_int_eq(bbx2, 18);
  ck_assert_int_eq(bby1, 7);
  ck_assert_int_eq(bby2, 32);
  const struct unmix_backend *be = unmix_test_cpu();
  const size_t nx = (size_t)n * H * W * c;
  /* sample i is the constant i: the share of a sample's own pixels is lam' */
  float *x = ops_const(nx, 0.0f), *y = ops_const(nx, NAN);
  for (size_t i = 0; i < nx; i++) x[i] = (float)(i / ((size_t)H * W * c));
  be->mix_region(n, H, W, c, bbx1, bbx2, bby1, bby2, x, y);
  ck_guard(y, nx);
  for (int i = 0; i < n; i++) {
    if (i == n / 2) continue; /* the middle sample's partner is itself */
    size_t own = 0;
    for (size_t k = 0; k < (size_t)H * W * c; k++) own += y[(size_t)i * H * W * c + k] == (float)i;
    ck_assert_msg(own == (size_t)(H * W - 450) * c, "sample %d keeps %zu own values", i, own);
    ck_assert_double_eq_tol((double)own / ((double)H * W * c), 0.560546875, 1e-12);
  }
  unmix_guarded_free(x); unmix_guarded_free(y);
}
END_TEST

/* ---- reductions --------------------------------------------------------------------------- */

START_TEST(test_reductions) {
  const struct unmix_backend *be = unmix_test_cpu();
  const int n = 13, d = 11;
  const size_t nx = (size_t)n * d;
  float *x = ops_rand(nx, 201, -1.0f, 3.0f);
  double wsum = 0.0;
  for (size_t i = 0; i < nx; i++) wsum += x[i];
  float *out = ops_const(1, NAN);
  be->sum((int64_t)nx, x, out);
  ck_guard(out, 1);
  ck_ops_close("sum", out, &wsum, 1, 1e-7, 0.0);
  double zero = 0.0;
  be->sum(0, x, out);
  ck_ops_close("sum of nothing", out, &zero, 1, 0.0, 0.0);

  /* segments incl. an empty one and one of a single element */
  const int64_t off[6] = {0, 17, 17, 18, 100, (int64_t)nx};
  float *ss = ops_const(5, NAN);
  be->sumsq_segments(5, off, x, ss);
  ck_guard(ss, 5);
  double wss[5];
  for (int s = 0; s < 5; s++) {
    wss[s] = 0.0;
    for (int64_t i = off[s]; i < off[s + 1]; i++) wss[s] += (double)x[i] * x[i];
  }
  ck_ops_close("sumsq_segments", ss, wss, 5, 1e-6, 0.0);

  float *rs = ops_const(n, NAN), *cs = ops_const(d, NAN);
  be->row_sum(n, d, x, rs);
  be->col_sum(n, d, x, cs);
  ck_guard(rs, n);
  ck_guard(cs, d);
  double *wr = calloc(n, sizeof(double)), *wc = calloc(d, sizeof(double));
  for (int i = 0; i < n; i++)
    for (int j = 0; j < d; j++) {
      wr[i] += x[(size_t)i * d + j];
      wc[j] += x[(size_t)i * d + j];
    }
  ck_ops_close("row_sum", rs, wr, n, 1e-6, 0.0);
  ck_ops_close("col_sum", cs, wc, d, 1e-6, 0.0);

  float *sr = ops_rand(n, 202, -2.0f, 2.0f), *sc = ops_rand(d, 203, -2.0f, 2.0f);
  float *a = ops_const(nx, 0.0f), *b = ops_const(nx, 0.0f);
  memcpy(a, x, nx * sizeof(float));
  memcpy(b, x, nx * sizeof(float));
  be->scale_rows(n, d, sr, a);
  be->scale_cols(n, d, sc, b);
  ck_guard(a, nx);
  ck_guard(b, nx);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < d; j++) {
      ck_assert_msg(a[(size_t)i * d + j] == x[(size_t)i * d + j] * sr[i], "scale_rows (%d,%d)", i, j);
      ck_assert_msg(b[(size_t)i * d + j] == x[(size_t)i * d + j] * sc[j], "scale_cols (%d,%d)", i, j);
    }

  float *e = ops_const(nx, NAN);
  be->exp_scaled((int64_t)nx, 20.0f, 3.5f, x, e); /* Sinkhorn: exp(s/eps - shift) */
  ck_guard(e, nx);
  double *we = malloc(nx * sizeof(double));
  for (size_t i = 0; i < nx; i++) we[i] = exp((double)20.0f * x[i] - 3.5);
  ck_ops_close("exp_scaled", e, we, nx, 2e-6, 0.0);

  float *t = ops_const(nx, NAN);
  be->transpose(n, d, x, t);
  ck_guard(t, nx);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < d; j++) ck_assert_msg(t[(size_t)j * n + i] == x[(size_t)i * d + j], "transpose (%d,%d)", i, j);

  free(wr); free(wc); free(we);
  float *bufs[] = {x, out, ss, rs, cs, sr, sc, a, b, e, t};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) unmix_guarded_free(bufs[i]);
}
END_TEST

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
  /* LARC (SPEC §4.7): per tensor a = trust ratio, g <- (g + wd p) a, inner wd 0, i.e.
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

/* ---- top-k and finiteness ------------------------------------------------------------------ */

static void check_topk(int n, int d, int k, int ties) {
  const struct unmix_backend *be = unmix_test_cpu();
  const size_t nx = (size_t)n * d;
  float *x = ops_rand(nx, 231, -1.0f, 1.0f);
  if (ties)
    for (size_t i = 0; i < nx; i++) x[i] = (float)(int)(x[i] * 3.0f);
  float *v = ops_const((size_t)n * k, NAN);
  int32_t *ix = ops_ints((size_t)n * k);
  be->topk(n, d, k, x, v, ix);
  ck_guard(v, (size_t)n * k);
  ck_assert(ops_ints_guard_ok(ix, (size_t)n * k));
  /* reference: selection by (value desc, index asc) */
  char *used = malloc((size_t)d);
  for (int i = 0; i < n; i++) {
    const float *xr = x + (size_t)i * d;
    memset(used, 0, (size_t)d);
    for (int j = 0; j < k; j++) {
      int best = -1;
      for (int l = 0; l < d; l++)
        if (!used[l] && (best < 0 || xr[l] > xr[best])) best = l;
      used[best] = 1;
      ck_assert_msg(ix[(size_t)i * k + j] == best && v[(size_t)i * k + j] == xr[best],
                    "topk n%d d%d k%d row %d pos %d: (%d, %g), want (%d, %g)", n, d, k, i, j, ix[(size_t)i * k + j],
                    v[(size_t)i * k + j], best, xr[best]);
    }
  }
  free(used);
  unmix_guarded_free(x); unmix_guarded_free(v); ops_ints_free(ix);
}

START_TEST(test_topk) {
  check_topk(5, 13, 1, 0);
  check_topk(5, 13, 13, 0);
  check_topk(7, 11, 4, 0);
  check_topk(9, 17, 1, 1);
  check_topk(9, 17, 6, 1);
  check_topk(9, 17, 17, 1);
  check_topk(2, 1, 1, 0);
  check_topk(3, 301, 200, 1); /* kNN monitor: k = 200 */
}
END_TEST

START_TEST(test_nonfinite_count) {
  const struct unmix_backend *be = unmix_test_cpu();
  const size_t n = 1009;
  float *x = ops_rand(n, 241, -1e30f, 1e30f), *out = ops_const(1, NAN);
  be->nonfinite_count((int64_t)n, x, out);
  ck_guard(out, 1);
  ck_assert_msg(out[0] == 0.0f, "nonfinite_count of finite data: %g", out[0]);
  x[0] = NAN;
  x[5] = INFINITY;
  x[500] = -INFINITY;
  x[n - 1] = -NAN;
  x[7] = 3.4e38f; /* large but finite */
  be->nonfinite_count((int64_t)n, x, out);
  ck_assert_msg(out[0] == 4.0f, "nonfinite_count: %g, want 4", out[0]);
  be->nonfinite_count(0, x, out);
  ck_assert_msg(out[0] == 0.0f, "nonfinite_count of nothing: %g", out[0]);
  unmix_guarded_free(x); unmix_guarded_free(out);
}
END_TEST

static Suite *misc_suite(void) {
  Suite *s = suite_create("ops_misc");
  TCase *tc = tcase_create("misc");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_relu);
  tcase_add_test(tc, test_add_and_add_relu);
  tcase_add_test(tc, test_flip_gather_scatter);
  tcase_add_test(tc, test_blas1);
  tcase_add_test(tc, test_mix_global);
  tcase_add_test(tc, test_mix_region);
  tcase_add_test(tc, test_mix_region_spec_example);
  tcase_add_test(tc, test_reductions);
  tcase_add_test(tc, test_sgd_step);
  tcase_add_test(tc, test_ema);
  tcase_add_test(tc, test_topk);
  tcase_add_test(tc, test_nonfinite_count);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(misc_suite)
