/* CPU normalisation: batch norm over NHWC (plain and SplitBatchNorm, docs/FIDELITY.md
 * §2.4) and row-wise L2 normalisation. Batch-norm statistics are
 * accumulated in double over fixed blocks of rows (independent of the thread count),
 * mean first then the centred second moment (two passes), so the oracle is as exact as
 * fp32 outputs allow and bit-for-bit reproducible.
 * Accumulation: dgamma +=, dbeta +=, dx =. */
#include <math.h>
#include <stdlib.h>

#include "core/backend/cpu/internal.h"
#include "core/kernels/elementwise.h"

/* Rows per reduction block: ~32K values, independent of the thread count. */
static int64_t block_rows(int c) {
  int64_t r = ((int64_t)32 << 10) / c;
  return r < 1 ? 1 : r;
}

/* acc[s*C + ch] = sum over the rows of split s of f(row, ch), f chosen by `mode`:
 * 0: x;  1: (x - mean)^2;  2: dy;  3: dy * (x - mean). In double, over fixed blocks of
 * rows whose partial sums are added in block order, so the result does not depend on the
 * number of threads. */
static void split_reduce(const struct unmix_bn_geom *g, int mode, const float *x, const float *dy,
                         const float *mean, double *acc) {
  const int S = g->splits, C = g->c;
  const int64_t rows = (int64_t)g->n * g->hw, br = block_rows(C), nblk = (rows + br - 1) / br;
  const size_t sc = (size_t)S * C;
  double *part = calloc((size_t)nblk * sc, sizeof(double));
  UNMIX_REQUIRE(part != NULL, "out of memory in batchnorm");
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < nblk; b++) {
    const int64_t r1 = (b + 1) * br < rows ? (b + 1) * br : rows;
    double *pb = part + (size_t)b * sc;
    for (int64_t r = b * br; r < r1; r++) {
      const int s = (int)((r / g->hw) % S);
      const float *xr = x ? x + r * C : NULL;
      const float *dr = dy ? dy + r * C : NULL;
      const float *m = mean ? mean + (size_t)s * C : NULL;
      double *p = pb + (size_t)s * C;
      switch (mode) {
        case 0: for (int c = 0; c < C; c++) p[c] += xr[c]; break;
        case 1: for (int c = 0; c < C; c++) { double d = (double)xr[c] - m[c]; p[c] += d * d; } break;
        case 2: for (int c = 0; c < C; c++) p[c] += dr[c]; break;
        default: for (int c = 0; c < C; c++) p[c] += (double)dr[c] * ((double)xr[c] - m[c]); break;
      }
    }
  }
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < sc; i++) {
    double t = 0.0;
    for (int64_t b = 0; b < nblk; b++) t += part[(size_t)b * sc + i];
    acc[i] = t;
  }
  free(part);
}

void unmix_cpu_batchnorm_forward_train(const struct unmix_bn_geom *g, const float *x, const float *gamma,
                                       const float *beta, float *y, float *save_mean, float *save_invstd,
                                       float *running_mean, float *running_var, float momentum, float eps) {
  const int S = g->splits, C = g->c;
  UNMIX_REQUIRE(S >= 1 && g->n % S == 0, "batch %d not a multiple of %d BN splits", g->n, S);
  const double m = (double)(g->n / S) * g->hw;
  double *acc = malloc(sizeof(double) * (size_t)S * C);
  UNMIX_REQUIRE(acc != NULL, "out of memory in batchnorm");
  split_reduce(g, 0, x, NULL, NULL, acc);
  for (int i = 0; i < S * C; i++) save_mean[i] = (float)(acc[i] / m);
  split_reduce(g, 1, x, NULL, save_mean, acc);
  double *var = malloc(sizeof(double) * (size_t)S * C);
  UNMIX_REQUIRE(var != NULL, "out of memory in batchnorm");
  for (int i = 0; i < S * C; i++) {
    var[i] = acc[i] / m;
    save_invstd[i] = (float)(1.0 / sqrt(var[i] + (double)eps));
  }
  if (running_mean) {
    /* SplitBN: every tiled copy is updated with its split's stats, then averaged. */
    for (int c = 0; c < C; c++) {
      double mu = 0.0, uv = 0.0;
      for (int s = 0; s < S; s++) {
        mu += save_mean[s * C + c];
        uv += m > 1.0 ? var[s * C + c] * m / (m - 1.0) : var[s * C + c];
      }
      mu /= S;
      uv /= S;
      running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * mu);
      running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * uv);
    }
  }
  free(acc);
  free(var);
  const int64_t rows = (int64_t)g->n * g->hw;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    int s = (int)((r / g->hw) % S);
    const float *mu = save_mean + (size_t)s * C, *is = save_invstd + (size_t)s * C;
    for (int c = 0; c < C; c++) y[r * C + c] = unmix_k_bn_apply(x[r * C + c], mu[c], is[c], gamma[c], beta[c]);
  }
}

void unmix_cpu_batchnorm_forward_eval(const struct unmix_bn_geom *g, const float *x, const float *gamma,
                                      const float *beta, const float *running_mean, const float *running_var,
                                      float eps, float *y) {
  const int C = g->c;
  float *is = unmix_cpu_scratch(3, (size_t)C);
  for (int c = 0; c < C; c++) is[c] = (float)(1.0 / sqrt((double)running_var[c] + (double)eps));
  const int64_t rows = (int64_t)g->n * g->hw;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++)
    for (int c = 0; c < C; c++)
      y[r * C + c] = unmix_k_bn_apply(x[r * C + c], running_mean[c], is[c], gamma[c], beta[c]);
}

void unmix_cpu_batchnorm_backward(const struct unmix_bn_geom *g, const float *dy, const float *x,
                                  const float *gamma, const float *save_mean, const float *save_invstd, float *dx,
                                  float *dgamma, float *dbeta) {
  const int S = g->splits, C = g->c;
  const float m = (float)((double)(g->n / S) * g->hw);
  double *sdy = malloc(sizeof(double) * (size_t)S * C), *sdyx = malloc(sizeof(double) * (size_t)S * C);
  float *fsdy = malloc(sizeof(float) * (size_t)S * C), *fsdyx = malloc(sizeof(float) * (size_t)S * C);
  UNMIX_REQUIRE(sdy && sdyx && fsdy && fsdyx, "out of memory in batchnorm backward");
  split_reduce(g, 2, NULL, dy, NULL, sdy);
  split_reduce(g, 3, x, dy, save_mean, sdyx);
  for (int i = 0; i < S * C; i++) {
    sdyx[i] *= save_invstd[i]; /* sum dy * xhat */
    fsdy[i] = (float)sdy[i];
    fsdyx[i] = (float)sdyx[i];
  }
  for (int c = 0; c < C; c++) {
    double gg = 0.0, gb = 0.0;
    for (int s = 0; s < S; s++) {
      gg += sdyx[s * C + c];
      gb += sdy[s * C + c];
    }
    if (dgamma) dgamma[c] += (float)gg;
    if (dbeta) dbeta[c] += (float)gb;
  }
  if (dx) {
    const int64_t rows = (int64_t)g->n * g->hw;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
      int s = (int)((r / g->hw) % S);
      const size_t o = (size_t)s * C;
      for (int c = 0; c < C; c++)
        dx[r * C + c] = unmix_k_bn_grad(dy[r * C + c], x[r * C + c], save_mean[o + c], save_invstd[o + c], gamma[c],
                                        m, fsdy[o + c], fsdyx[o + c]);
    }
  }
  free(sdy);
  free(sdyx);
  free(fsdy);
  free(fsdyx);
}

/* ---- row-wise L2 normalisation ---------------------------------------------------------- */
void unmix_cpu_l2norm_forward(int n, int d, const float *x, float *y, float *norms, float eps) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) {
    const float *xr = x + (int64_t)i * d;
    double ss = 0.0;
    for (int j = 0; j < d; j++) ss += (double)xr[j] * xr[j];
    float nr = (float)sqrt(ss);
    norms[i] = nr;
    float den = nr > eps ? nr : eps;
    for (int j = 0; j < d; j++) y[(int64_t)i * d + j] = xr[j] / den;
  }
}

void unmix_cpu_l2norm_backward(int n, int d, const float *dy, const float *x, const float *norms, float eps,
                               float *dx) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) {
    const float *xr = x + (int64_t)i * d, *gr = dy + (int64_t)i * d;
    float *o = dx + (int64_t)i * d;
    float nr = norms[i];
    if (nr > eps) {
      /* y = x/|x|: dx = (dy - y (y.dy)) / |x| */
      double dot = 0.0;
      for (int j = 0; j < d; j++) dot += (double)xr[j] * gr[j];
      double k = dot / ((double)nr * nr);
      for (int j = 0; j < d; j++) o[j] = (float)((gr[j] - xr[j] * k) / nr);
    } else {
      for (int j = 0; j < d; j++) o[j] = gr[j] / eps;
    }
  }
}
