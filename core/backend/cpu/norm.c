/* CPU normalisation: batch norm over NHWC (plain and SplitBatchNorm, docs/FIDELITY.md
 * §2.4) and row-wise L2 normalisation. Batch-norm statistics are accumulated in double over
 * fixed blocks of rows (independent of the thread count), mean first then the centred second
 * moment (two passes), so the oracle is as exact as fp32 outputs allow and bit-for-bit
 * reproducible. The backward pass's two sums share one pass over dy and x.
 * Accumulation: dgamma +=, dbeta +=, dx =. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend/cpu/internal.h"
#include "core/kernels/elementwise.h"

/* Rows per reduction block: ~32K values, independent of the thread count. */
static int64_t block_rows(int c) {
  int64_t r = ((int64_t)32 << 10) / c;
  return r < 1 ? 1 : r;
}

/* The reductions' per-block partial sums: one buffer grown on demand and kept (ops run on
 * one caller thread at a time), so no call pays for fresh pages. */
static double *g_part;
static size_t g_part_cap;
static double *part_buf(size_t n) {
  if (n > g_part_cap) {
    free(g_part);
    g_part = malloc(sizeof(double) * n);
    UNMIX_REQUIRE(g_part != NULL, "out of memory in batchnorm");
    g_part_cap = n;
  }
  return g_part;
}

enum bn_reduce {
  BN_SUM_X,     /* acc = sum x */
  BN_SUM_SQ,    /* acc = sum (x - mean)^2 */
  BN_SUM_DY_DYX /* acc = sum dy, acc2 = sum dy * (x - mean): one pass over dy and x */
};

/* acc[s*C + ch] (and acc2 for BN_SUM_DY_DYX) = sum over the rows of split s of the mode's
 * term. In double, over fixed blocks of rows whose partial sums are added in block order,
 * so the result does not depend on the number of threads; each sum is the same sequence of
 * additions whichever mode computes it (the backward's two sums once took a pass each). */
static void split_reduce(const struct unmix_bn_geom *g, enum bn_reduce mode, const float *x, const float *dy,
                         const float *mean, double *acc, double *acc2) {
  const int S = g->splits, C = g->c;
  const int64_t rows = (int64_t)g->n * g->hw, br = block_rows(C), nblk = (rows + br - 1) / br;
  const size_t sc = (size_t)S * C, nacc = mode == BN_SUM_DY_DYX ? 2 : 1, per_blk = nacc * sc;
  double *part = part_buf((size_t)nblk * per_blk);
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < nblk; b++) {
    const int64_t r1 = (b + 1) * br < rows ? (b + 1) * br : rows;
    double *pb = part + (size_t)b * per_blk;
    memset(pb, 0, sizeof(double) * per_blk);
    for (int64_t r = b * br; r < r1; r++) {
      const int s = (int)((r / g->hw) % S);
      double *restrict p = pb + (size_t)s * C;
      if (mode == BN_SUM_X) {
        const float *restrict xr = x + r * C;
        for (int c = 0; c < C; c++) p[c] += xr[c];
      } else if (mode == BN_SUM_SQ) {
        const float *restrict xr = x + r * C, *restrict m = mean + (size_t)s * C;
        for (int c = 0; c < C; c++) {
          const double d = (double)xr[c] - m[c];
          p[c] += d * d;
        }
      } else {
        const float *restrict xr = x + r * C, *restrict dr = dy + r * C, *restrict m = mean + (size_t)s * C;
        double *restrict p2 = p + sc;
        for (int c = 0; c < C; c++) {
          p[c] += dr[c];
          p2[c] += (double)dr[c] * ((double)xr[c] - m[c]);
        }
      }
    }
  }
  /* block order, each sum from 0.0; the blocks in the outer loop read the partials in order */
  for (size_t i = 0; i < sc; i++) acc[i] = 0.0;
  for (int64_t b = 0; b < nblk; b++) {
    const double *restrict pb = part + (size_t)b * per_blk;
    for (size_t i = 0; i < sc; i++) acc[i] += pb[i];
  }
  if (nacc == 2) {
    for (size_t i = 0; i < sc; i++) acc2[i] = 0.0;
    for (int64_t b = 0; b < nblk; b++) {
      const double *restrict pb = part + (size_t)b * per_blk + sc;
      for (size_t i = 0; i < sc; i++) acc2[i] += pb[i];
    }
  }
}

void unmix_cpu_batchnorm_forward_train(const struct unmix_bn_geom *g, const float *x, const float *gamma,
                                       const float *beta, float *y, float *save_mean, float *save_invstd,
                                       float *running_mean, float *running_var, float momentum, float eps) {
  const int S = g->splits, C = g->c;
  UNMIX_REQUIRE(S >= 1 && g->n % S == 0, "batch %d not a multiple of %d BN splits", g->n, S);
  const double m = (double)(g->n / S) * g->hw;
  double *acc = malloc(sizeof(double) * (size_t)S * C), *var = malloc(sizeof(double) * (size_t)S * C);
  UNMIX_REQUIRE(acc && var, "out of memory in batchnorm");
  split_reduce(g, BN_SUM_X, x, NULL, NULL, acc, NULL);
  for (int i = 0; i < S * C; i++) save_mean[i] = (float)(acc[i] / m);
  split_reduce(g, BN_SUM_SQ, x, NULL, save_mean, acc, NULL);
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
    const float *xr = x + r * C;
    float *yr = y + r * C; /* may be xr itself: each element is read before it is written */
#pragma omp simd
    for (int c = 0; c < C; c++) yr[c] = unmix_k_bn_apply(xr[c], mu[c], is[c], gamma[c], beta[c]);
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
  split_reduce(g, BN_SUM_DY_DYX, x, dy, save_mean, sdy, sdyx);
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
      const float *dyr = dy + r * C, *xr = x + r * C, *mu = save_mean + o, *is = save_invstd + o;
      const float *sd = fsdy + o, *sdx = fsdyx + o;
      float *dxr = dx + r * C; /* may be dyr itself: each element is read before it is written */
#pragma omp simd
      for (int c = 0; c < C; c++)
        dxr[c] = unmix_k_bn_grad(dyr[c], xr[c], mu[c], is[c], gamma[c], m, sd[c], sdx[c]);
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
