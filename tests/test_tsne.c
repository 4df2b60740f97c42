/* t-SNE (eval/tsne.c): PCA against the eigen equation, perplexity calibration, Barnes-Hut
 * repulsion against brute force, cluster preservation (trustworthiness), Barnes-Hut vs
 * exact KL, determinism (seed and thread count), progress reporting and the error paths. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util/rng.h"
#include "eval/tsne.h"
#include "tests/support/testutil.h"

/* n points in d dims from nc Gaussian clusters (centres ~ N(0, sep^2), unit noise);
 * labels i % nc. */
static void make_clusters(int n, int d, int nc, double sep, uint32_t seed, float *x, int *lab) {
  struct unmix_rng r = unmix_rng_make(seed, UNMIX_RNG_TEST, 0, 0, 0);
  double *mu = malloc(sizeof(double) * nc * d);
  for (int i = 0; i < nc * d; i++) mu[i] = sep * unmix_rng_normal(&r);
  for (int i = 0; i < n; i++) {
    int c = i % nc;
    if (lab) lab[i] = c;
    for (int j = 0; j < d; j++) x[(size_t)i * d + j] = (float)(mu[c * d + j] + unmix_rng_normal(&r));
  }
  free(mu);
}

/* Fraction of points whose k nearest embedding neighbours mostly (> half) share its label. */
static double knn_purity(const float *y, const int *lab, int n, int k) {
  int good = 0;
  double *dd = malloc(sizeof(double) * n);
  int *ord = malloc(sizeof(int) * n);
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < n; j++) {
      double a = y[2 * i] - y[2 * j], b = y[2 * i + 1] - y[2 * j + 1];
      dd[j] = j == i ? INFINITY : a * a + b * b;
    }
    int same = 0;
    for (int m = 0; m < k; m++) { /* k smallest by selection */
      int best = -1;
      for (int j = 0; j < n; j++)
        if (isfinite(dd[j]) && (best < 0 || dd[j] < dd[best])) best = j;
      ord[m] = best;
      same += lab[best] == lab[i];
      dd[best] = INFINITY;
    }
    good += 2 * same > k;
  }
  free(dd);
  free(ord);
  return (double)good / n;
}

START_TEST(test_pca_eigen_equation) {
  enum { N = 301, D = 23, K = 6 };
  float *x = malloc(sizeof(float) * N * D), *proj = malloc(sizeof(float) * N * K), comp[K * D];
  double var[K];
  /* anisotropic data: column scales 1..D, plus a shared low-rank component */
  struct unmix_rng r = unmix_rng_make(3, UNMIX_RNG_TEST, 0, 0, 0);
  for (int i = 0; i < N; i++) {
    double a = 4.0 * unmix_rng_normal(&r);
    for (int j = 0; j < D; j++) x[i * D + j] = (float)(0.2 * (j + 1) * unmix_rng_normal(&r) + a * sin(j) + 7.0);
  }
  ck_assert_msg(unmix_pca(x, N, D, K, proj, comp, var) == UNMIX_OK, "%s", unmix_error_message());
  /* covariance in double */
  double mean[D] = {0}, cov[D][D];
  for (int i = 0; i < N; i++)
    for (int j = 0; j < D; j++) mean[j] += x[i * D + j] / (double)N;
  for (int a = 0; a < D; a++)
    for (int b = 0; b < D; b++) {
      double s = 0;
      for (int i = 0; i < N; i++) s += (x[i * D + a] - mean[a]) * (x[i * D + b] - mean[b]);
      cov[a][b] = s / (N - 1);
    }
  double top = var[0];
  for (int c = 0; c < K; c++) {
    if (c > 0) ck_assert_msg(var[c] <= var[c - 1], "variances not descending at %d", c);
    /* Cov v = lambda v, |v| = 1, largest entry positive */
    double nrm = 0, resid = 0, big = 0;
    for (int a = 0; a < D; a++) {
      double cv = 0;
      for (int b = 0; b < D; b++) cv += cov[a][b] * comp[c * D + b];
      resid = fmax(resid, fabs(cv - var[c] * comp[c * D + a]));
      nrm += (double)comp[c * D + a] * comp[c * D + a];
      if (fabs(comp[c * D + a]) > fabs(big)) big = comp[c * D + a];
    }
    ck_assert_msg(resid < 1e-4 * top, "component %d: eigen residual %g (lambda %g)", c, resid, var[c]);
    ck_assert_double_eq_tol(nrm, 1.0, 1e-5);
    ck_assert(big > 0);
    /* projections: mean 0, variance lambda, uncorrelated with the others */
    double m = 0, v = 0;
    for (int i = 0; i < N; i++) m += proj[i * K + c] / (double)N;
    for (int i = 0; i < N; i++) v += (proj[i * K + c] - m) * (proj[i * K + c] - m) / (N - 1);
    ck_assert_msg(fabs(m) < 1e-4 * sqrt(top), "projection %d mean %g", c, m);
    ck_assert_msg(fabs(v - var[c]) < 1e-4 * top, "projection %d variance %g vs %g", c, v, var[c]);
    for (int e = 0; e < c; e++) {
      double cc = 0;
      for (int i = 0; i < N; i++) cc += (double)proj[i * K + c] * proj[i * K + e] / (N - 1);
      ck_assert_msg(fabs(cc) < 1e-4 * top, "projections %d and %d correlate: %g", c, e, cc);
    }
  }
  /* the eigenvalues are variances of orthogonal directions: their sum is bounded by the trace */
  double tr = 0, sum = 0;
  for (int a = 0; a < D; a++) tr += cov[a][a];
  for (int c = 0; c < K; c++) sum += var[c];
  ck_assert(sum <= tr * (1 + 1e-6));
  ck_assert_int_eq(unmix_pca(x, 1, D, K, proj, NULL, NULL), UNMIX_ERR_ARG);
  ck_assert_int_eq(unmix_pca(x, N, D, D + 1, proj, NULL, NULL), UNMIX_ERR_ARG);
  unmix_error_clear();
  free(x);
  free(proj);
}
END_TEST

START_TEST(test_calibrate_row) {
  enum { K = 90 };
  double dist[K], p[K];
  struct unmix_rng r = unmix_rng_make(4, UNMIX_RNG_TEST, 0, 0, 0);
  for (int m = 0; m < K; m++) dist[m] = 50.0 + 30.0 * unmix_rng_uniform_double(&r); /* large: exp would underflow unshifted */
  static const double perps[] = {2.0, 5.0, 30.0, 80.0};
  for (int t = 0; t < 4; t++) {
    double beta;
    double h = unmix_tsne_calibrate_row(dist, K, perps[t], p, &beta);
    ck_assert_msg(fabs(h - log(perps[t])) < 1e-5, "perplexity %g: entropy %.8f want %.8f", perps[t], h, log(perps[t]));
    double s = 0, hh = 0;
    for (int m = 0; m < K; m++) {
      s += p[m];
      if (p[m] > 0) hh -= p[m] * log(p[m]);
    }
    ck_assert_double_eq_tol(s, 1.0, 1e-12);
    ck_assert_msg(fabs(hh - log(perps[t])) < 1e-5, "entropy from p %.8f", hh);
    for (int a = 0; a < K; a++)
      for (int b = 0; b < K; b++)
        if (dist[a] < dist[b]) ck_assert(p[a] >= p[b]);
    ck_assert(beta > 0);
  }
}
END_TEST

static void brute_repulsion(const double *y, int n, double *f, double *z) {
  *z = 0;
  for (int i = 0; i < n; i++) {
    double fx = 0, fy = 0;
    for (int j = 0; j < n; j++) {
      if (j == i) continue;
      double dx = y[2 * i] - y[2 * j], dy = y[2 * i + 1] - y[2 * j + 1], q = 1.0 / (1.0 + dx * dx + dy * dy);
      *z += q;
      fx += q * q * dx;
      fy += q * q * dy;
    }
    f[2 * i] = fx;
    f[2 * i + 1] = fy;
  }
}

START_TEST(test_barnes_hut_repulsion) {
  enum { N = 517 };
  double *y = malloc(sizeof(double) * 2 * N), *fb = malloc(sizeof(double) * 2 * N), *fe = malloc(sizeof(double) * 2 * N);
  struct unmix_rng r = unmix_rng_make(5, UNMIX_RNG_TEST, 0, 0, 0);
  for (int i = 0; i < N; i++) { /* three blobs of different spread, plus duplicates */
    double cx = (i % 3) * 15.0, s = 1.0 + (i % 3) * 3.0;
    y[2 * i] = cx + s * unmix_rng_normal(&r);
    y[2 * i + 1] = -cx + s * unmix_rng_normal(&r);
  }
  for (int i = 0; i < 12; i++) { y[2 * (N - 1 - i)] = y[0]; y[2 * (N - 1 - i) + 1] = y[1]; }
  double ze, zb;
  brute_repulsion(y, N, fe, &ze);
  unmix_tsne_repulsion(y, N, 0.0, fb, &zb); /* theta 0: every point visited */
  ck_assert_msg(fabs(zb - ze) <= 1e-12 * ze, "theta 0: Z %.15g vs %.15g", zb, ze);
  double err = 0, ref = 0;
  for (int e = 0; e < 2 * N; e++) {
    err = fmax(err, fabs(fb[e] - fe[e]));
    ref = fmax(ref, fabs(fe[e]));
  }
  ck_assert_msg(err <= 1e-12 * ref, "theta 0: force error %g of %g", err, ref);
  /* summaries underestimate Z (Jensen: q is convex far out); the error shrinks with theta
   * roughly as theta^2. theta 1 is bhtsne's 0.5. */
  static const double th[2] = {1.0, 0.5}, zt[2] = {0.03, 0.006}, ft[2] = {0.05, 0.012};
  for (int t = 0; t < 2; t++) {
    unmix_tsne_repulsion(y, N, th[t], fb, &zb);
    double num = 0, den = 0;
    for (int e = 0; e < 2 * N; e++) {
      num += (fb[e] - fe[e]) * (fb[e] - fe[e]);
      den += fe[e] * fe[e];
    }
    ck_assert_msg(fabs(zb - ze) < zt[t] * ze, "theta %g: Z %g vs %g", th[t], zb, ze);
    ck_assert_msg(sqrt(num / den) < ft[t], "theta %g: relative force error %g", th[t], sqrt(num / den));
  }
  free(y); free(fb); free(fe);
}
END_TEST

START_TEST(test_trustworthiness_values) {
  /* values from sklearn.manifold.trustworthiness 1.9 on the same float32 data */
  static const float X[13 * 3] = {1.79f, 0.44f, 0.10f, -1.86f, -0.28f, -0.35f, -0.08f, -0.63f, -0.04f, -0.48f,
                                  -1.31f, 0.88f, 0.88f, 1.71f, 0.05f, -0.40f, -0.55f, -1.55f, 0.98f, -1.10f,
                                  -1.19f, -0.21f, 1.49f, 0.24f, -1.02f, -0.71f, 0.63f, -0.16f, -0.77f, -0.23f,
                                  0.75f, 1.98f, -1.24f, -0.63f, -0.80f, -2.42f, -0.92f, -1.02f, 1.12f};
  static const float Y[13 * 2] = {-0.13f, -1.62f, 0.65f, -0.36f, -1.74f, -0.60f, -0.59f, -0.87f, 0.03f,
                                  -2.25f, -0.27f, 1.01f, 0.85f, 1.11f, 1.12f, 1.49f, -1.12f, 0.85f,
                                  -1.86f, -0.60f, -1.91f, 1.05f, 1.33f, -0.20f, 1.77f, -0.67f};
  double t;
  ck_assert(unmix_tsne_trustworthiness(X, 13, 3, Y, 2, 1, &t) == UNMIX_OK);
  ck_assert_double_eq_tol(t, 0.43356643356643354, 1e-12);
  ck_assert(unmix_tsne_trustworthiness(X, 13, 3, Y, 2, 3, &t) == UNMIX_OK);
  ck_assert_double_eq_tol(t, 0.5865384615384616, 1e-12);
  ck_assert(unmix_tsne_trustworthiness(X, 13, 3, Y, 2, 5, &t) == UNMIX_OK);
  ck_assert_double_eq_tol(t, 0.5076923076923077, 1e-12);
  /* an embedding equal to the input is perfectly trustworthy */
  ck_assert(unmix_tsne_trustworthiness(X, 13, 3, X, 3, 4, &t) == UNMIX_OK);
  ck_assert_double_eq(t, 1.0);
  ck_assert_int_eq(unmix_tsne_trustworthiness(X, 13, 3, Y, 2, 7, &t), UNMIX_ERR_ARG);
  unmix_error_clear();
}
END_TEST

START_TEST(test_clusters_stay_separated) {
  /* 5 Gaussian clusters in 20-D (no PCA: d <= 50), Barnes-Hut, default schedule */
  enum { N = 503, D = 20, C = 5 };
  float *x = malloc(sizeof(float) * N * D), *y = malloc(sizeof(float) * N * 2);
  int lab[N];
  make_clusters(N, D, C, 3.0, 21, x, lab);
  struct unmix_tsne_params p = unmix_tsne_params_default();
  p.seed = 1;
  struct unmix_tsne_stats st;
  ck_assert_msg(unmix_tsne_run(x, N, D, &p, y, &st) == UNMIX_OK, "%s", unmix_error_message());
  ck_assert_int_eq(st.dims_used, D);
  ck_assert_int_eq(st.neighbours, 90);
  ck_assert_double_eq(st.learning_rate, 200.0);
  double t;
  ck_assert(unmix_tsne_trustworthiness(x, N, D, y, 2, 10, &t) == UNMIX_OK);
  double pur = knn_purity(y, lab, N, 10);
  printf("clusters: trustworthiness(10) %.4f, 10-NN purity %.4f, KL %.4f\n", t, pur, st.kl);
  ck_assert_msg(t >= 0.9, "trustworthiness %.4f < 0.9", t);
  ck_assert_msg(pur >= 0.98, "10-NN label purity %.4f", pur);
  ck_assert(isfinite(st.kl) && st.kl > 0);
  free(x);
  free(y);
}
END_TEST

static void bh_vs_exact(int n, int d, uint32_t seed) {
  float *x = malloc(sizeof(float) * n * d), *ye = malloc(sizeof(float) * n * 2), *yb = malloc(sizeof(float) * n * 2);
  make_clusters(n, d, 5, 2.0, seed, x, NULL);
  struct unmix_tsne_params p = unmix_tsne_params_default();
  p.seed = 2;
  struct unmix_tsne_stats se, sb;
  p.theta = 0.0f;
  ck_assert_msg(unmix_tsne_run(x, n, d, &p, ye, &se) == UNMIX_OK, "%s", unmix_error_message());
  p.theta = 0.5f;
  ck_assert_msg(unmix_tsne_run(x, n, d, &p, yb, &sb) == UNMIX_OK, "%s", unmix_error_message());
  double te, tb;
  ck_assert(unmix_tsne_trustworthiness(x, n, d, ye, 2, 10, &te) == UNMIX_OK);
  ck_assert(unmix_tsne_trustworthiness(x, n, d, yb, 2, 10, &tb) == UNMIX_OK);
  printf("n %d: KL exact %.5f, Barnes-Hut %.5f (%+.2f%%); trustworthiness %.4f / %.4f\n", n, se.kl, sb.kl,
         100.0 * (sb.kl - se.kl) / se.kl, te, tb);
  ck_assert_int_eq(se.neighbours, n - 1);
  ck_assert(se.kl_exact_z && sb.kl_exact_z);
  ck_assert_msg(fabs(sb.kl - se.kl) < 0.04 * se.kl, "n %d: KL Barnes-Hut %.5f vs exact %.5f", n, sb.kl, se.kl);
  ck_assert(te >= 0.9 && tb >= 0.9);
  /* one objective for both: the dense P. The KL evaluator reproduces the run's own figure,
   * and the Barnes-Hut embedding is nearly as good under the exact objective. */
  double ke, kb;
  p.theta = 0.0f;
  ck_assert(unmix_tsne_kl_divergence(x, n, d, &p, ye, &ke) == UNMIX_OK);
  ck_assert(unmix_tsne_kl_divergence(x, n, d, &p, yb, &kb) == UNMIX_OK);
  ck_assert_msg(fabs(ke - se.kl) < 1e-6 * se.kl, "KL evaluator %.8f vs run %.8f", ke, se.kl);
  printf("n %d: under the dense P: exact embedding %.5f, Barnes-Hut embedding %.5f (%+.2f%%)\n", n, ke, kb,
         100.0 * (kb - ke) / ke);
  ck_assert_msg(kb >= ke * 0.99 && kb < 1.03 * ke, "n %d: dense-P KL of the Barnes-Hut embedding %.5f vs %.5f", n,
                kb, ke);
  p.theta = 0.5f;
  ck_assert(unmix_tsne_kl_divergence(x, n, d, &p, yb, &kb) == UNMIX_OK);
  ck_assert_msg(fabs(kb - sb.kl) < 1e-6 * sb.kl, "KL evaluator %.8f vs run %.8f (sparse)", kb, sb.kl);
  free(x); free(ye); free(yb);
}

START_TEST(test_barnes_hut_kl_near_exact) {
  bh_vs_exact(401, 20, 22);
  bh_vs_exact(997, 30, 27);
}
END_TEST

START_TEST(test_exact_mode_kl_is_kl) {
  /* exact mode: the reported KL equals KL(P||Q) recomputed here from scratch (dense P
   * rebuilt from the same calibration) on a tiny problem; also dims_out 1 and 3 run. */
  enum { N = 40, D = 5 };
  float x[N * D], y[N * 3];
  make_clusters(N, D, 2, 2.0, 23, x, NULL);
  struct unmix_tsne_params p = unmix_tsne_params_default();
  p.theta = 0.0f;
  p.perplexity = 5.0f;
  p.iterations = 300;
  p.exaggeration_iters = 100;
  struct unmix_tsne_stats st;
  ck_assert(unmix_tsne_run(x, N, D, &p, y, &st) == UNMIX_OK);
  /* reference P: centre, scale by max |x|, calibrate, symmetrise */
  double xc[N * D], mean[D] = {0}, mx = 0;
  for (int i = 0; i < N; i++)
    for (int j = 0; j < D; j++) mean[j] += x[i * D + j] / (double)N;
  for (int i = 0; i < N * D; i++) {
    xc[i] = (float)(x[i] - mean[i % D]);
    mx = fmax(mx, fabs(xc[i]));
  }
  static double P[N][N];
  for (int i = 0; i < N; i++) {
    double dist[N - 1], pr[N - 1];
    int m = 0;
    for (int j = 0; j < N; j++) {
      if (j == i) continue;
      double s = 0;
      for (int e = 0; e < D; e++) {
        double t = (double)(float)(xc[i * D + e] / mx) - (float)(xc[j * D + e] / mx);
        s += t * t;
      }
      dist[m++] = s;
    }
    unmix_tsne_calibrate_row(dist, N - 1, 5.0, pr, NULL);
    m = 0;
    for (int j = 0; j < N; j++) P[i][j] = j == i ? 0 : pr[m++];
  }
  double tot = 0, z = 0, kl = 0;
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++) tot += P[i][j] + P[j][i];
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++)
      if (j != i) {
        double a = y[2 * i] - y[2 * j], b = y[2 * i + 1] - y[2 * j + 1];
        z += 1.0 / (1.0 + a * a + b * b);
      }
  for (int i = 0; i < N; i++)
    for (int j = 0; j < N; j++)
      if (j != i) {
        double pij = (P[i][j] + P[j][i]) / tot;
        double a = y[2 * i] - y[2 * j], b = y[2 * i + 1] - y[2 * j + 1];
        double q = 1.0 / (1.0 + a * a + b * b) / z;
        kl += pij * log(pij / q);
      }
  ck_assert_msg(fabs(kl - st.kl) < 1e-4 * kl, "KL reported %.8f, recomputed %.8f", st.kl, kl);
  p.dims_out = 1;
  ck_assert(unmix_tsne_run(x, N, D, &p, y, &st) == UNMIX_OK && isfinite(st.kl));
  p.dims_out = 3;
  ck_assert(unmix_tsne_run(x, N, D, &p, y, &st) == UNMIX_OK && isfinite(st.kl));
}
END_TEST

START_TEST(test_deterministic) {
  /* 64-D input goes through PCA to 50 */
  enum { N = 307, D = 64 };
  float *x = malloc(sizeof(float) * N * D), *a = malloc(sizeof(float) * N * 2), *b = malloc(sizeof(float) * N * 2);
  make_clusters(N, D, 4, 2.0, 24, x, NULL);
  struct unmix_tsne_params p = unmix_tsne_params_default();
  p.iterations = 300;
  p.seed = 77;
  struct unmix_tsne_stats st;
  int threads = omp_get_max_threads();
  ck_assert(unmix_tsne_run(x, N, D, &p, a, &st) == UNMIX_OK);
  ck_assert_int_eq(st.dims_used, 50);
  ck_assert(unmix_tsne_run(x, N, D, &p, b, NULL) == UNMIX_OK);
  ck_assert_msg(memcmp(a, b, sizeof(float) * N * 2) == 0, "same seed, different embedding");
  /* thread count: 1 vs the default (2 under ctest) */
  omp_set_num_threads(1);
  ck_assert(unmix_tsne_run(x, N, D, &p, b, NULL) == UNMIX_OK);
  omp_set_num_threads(threads);
  ck_assert_msg(memcmp(a, b, sizeof(float) * N * 2) == 0, "1 thread and %d threads differ", threads);
  p.seed = 78;
  ck_assert(unmix_tsne_run(x, N, D, &p, b, NULL) == UNMIX_OK);
  ck_assert(memcmp(a, b, sizeof(float) * N * 2) != 0);
  free(x); free(a); free(b);
}
END_TEST

struct progress_log {
  int calls, last_iter, stop_at;
  double kl[64];
};
static int on_progress(void *user, int it, int total, double kl) {
  struct progress_log *l = user;
  ck_assert_int_eq(total, 400);
  ck_assert_int_eq(it, (l->calls + 1) * 50);
  l->kl[l->calls++] = kl;
  l->last_iter = it;
  return l->stop_at && it >= l->stop_at;
}

START_TEST(test_progress_and_errors) {
  enum { N = 211, D = 10 };
  float *x = malloc(sizeof(float) * N * D), *y = malloc(sizeof(float) * N * 2);
  make_clusters(N, D, 3, 2.0, 25, x, NULL);
  struct unmix_tsne_params p = unmix_tsne_params_default();
  p.iterations = 400;
  struct progress_log log = {0};
  p.progress = on_progress;
  p.progress_user = &log;
  struct unmix_tsne_stats st;
  ck_assert(unmix_tsne_run(x, N, D, &p, y, &st) == UNMIX_OK);
  ck_assert_int_eq(log.calls, 8);
  for (int c = 0; c < log.calls; c++) ck_assert(isfinite(log.kl[c]) && log.kl[c] > 0);
  /* after exaggeration the KL goes down; the last report (tree Z, a little low: see the
   * repulsion test) is close to the final one (exact Z) */
  ck_assert(log.kl[7] < log.kl[5]);
  ck_assert_msg(fabs(log.kl[7] - st.kl) < 0.05 * st.kl, "progress KL %.5f vs final %.5f", log.kl[7], st.kl);
  memset(&log, 0, sizeof log);
  log.stop_at = 100;
  ck_assert_int_eq(unmix_tsne_run(x, N, D, &p, y, NULL), UNMIX_ERR_INTERRUPTED);
  ck_assert_int_eq(log.last_iter, 100);
  p.progress = NULL;

  struct unmix_tsne_params q = p;
  q.perplexity = 80.0f; /* 3 * 80 > 210 */
  ck_assert_int_eq(unmix_tsne_run(x, N, D, &q, y, NULL), UNMIX_ERR_ARG);
  ck_assert_ptr_nonnull(strstr(unmix_error_message(), "perplexity"));
  q = p;
  q.dims_out = 3;
  ck_assert_int_eq(unmix_tsne_run(x, N, D, &q, y, NULL), UNMIX_ERR_ARG);
  q = p;
  q.theta = 0.0f;
  ck_assert_int_eq(unmix_tsne_run(x, 6000, D, &q, y, NULL), UNMIX_ERR_ARG); /* checked before reading x */
  ck_assert_ptr_nonnull(strstr(unmix_error_message(), "exact"));
  q = p;
  q.learning_rate = -1.0f;
  ck_assert_int_eq(unmix_tsne_run(x, N, D, &q, y, NULL), UNMIX_ERR_ARG);
  x[17 * D + 3] = NAN;
  ck_assert_int_eq(unmix_tsne_run(x, N, D, &p, y, NULL), UNMIX_ERR_NUMERIC);
  ck_assert_ptr_nonnull(strstr(unmix_error_message(), "sample 17"));
  unmix_error_clear();
  free(x);
  free(y);
}
END_TEST

START_TEST(test_duplicates_and_auto_rate) {
  /* many identical points (quadtree depth limit, zero distances) and the automatic learning
   * rate above n = 2400 */
  enum { N = 2501, D = 3 };
  float *x = malloc(sizeof(float) * N * D), *y = malloc(sizeof(float) * N * 2);
  make_clusters(N, D, 3, 3.0, 26, x, NULL);
  for (int i = 0; i < 400; i++)
    for (int j = 0; j < D; j++) x[i * D + j] = x[j];
  struct unmix_tsne_params p = unmix_tsne_params_default();
  p.iterations = 100;
  p.exaggeration_iters = 50;
  struct unmix_tsne_stats st;
  ck_assert_msg(unmix_tsne_run(x, N, D, &p, y, &st) == UNMIX_OK, "%s", unmix_error_message());
  ck_assert_double_eq_tol(st.learning_rate, N / 12.0, 1e-9);
  for (int e = 0; e < N * 2; e++) ck_assert(isfinite(y[e]));
  ck_assert(isfinite(st.kl));
  free(x);
  free(y);
}
END_TEST

static Suite *tsne_suite(void) {
  Suite *s = suite_create("tsne");
  TCase *tc = tcase_create("tsne");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_pca_eigen_equation);
  tcase_add_test(tc, test_calibrate_row);
  tcase_add_test(tc, test_barnes_hut_repulsion);
  tcase_add_test(tc, test_trustworthiness_values);
  tcase_add_test(tc, test_clusters_stay_separated);
  tcase_add_test(tc, test_barnes_hut_kl_near_exact);
  tcase_add_test(tc, test_exact_mode_kl_is_kl);
  tcase_add_test(tc, test_deterministic);
  tcase_add_test(tc, test_progress_and_errors);
  tcase_add_test(tc, test_duplicates_and_auto_rate);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(tsne_suite)
