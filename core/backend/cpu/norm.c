/* CPU normalisation: batch norm over NHWC (plain and SplitBatchNorm, docs/FIDELITY.md
 * §2.4), optionally with the ReLU that follows it fused in, and row-wise L2 normalisation.
 * Batch-norm statistics are accumulated in double over fixed blocks of rows (independent of
 * the thread count, so bit-for-bit reproducible): each block's sum and its second moment
 * about its own mean in two sweeps while the block sits in cache, the blocks then combined in
 * block order (exact two-level variance), so x is read from memory once for the statistics
 * and once for the output. The backward pass's two sums share one pass over dy and x.
 * Accumulation: dgamma +=, dbeta +=, dx =. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/backend/cpu/internal.h"
#include "core/kernels/elementwise.h"

/* Rows per reduction block: ~32K values (128 KB: the block's second sweep reads it from L2),
 * independent of the thread count. */
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

static int split_of(const struct unmix_bn_geom *g, int64_t r) { return (int)((r / g->hw) % g->splits); }

/* Forward statistics of one block [b0, b1): the count of rows of each split cnt[s], and for the
 * splits present (cnt[s] > 0; the other splits' rows are left unwritten) sum[s*C + c] and
 * m2[s*C + c] = sum (x - mean)^2 about the block's own mean[s*C + c] = sum/cnt. Two sweeps
 * over the block, the second from cache. Rows are visited in memory order (the accumulators,
 * one row of C doubles per split, stay in L1), which lets the hardware stream x. */
static void block_moments(const struct unmix_bn_geom *g, const float *x, int64_t b0, int64_t b1, double *sum,
                          double *m2, double *mean, double *cnt) {
  const int C = g->c, S = g->splits;
  memset(cnt, 0, sizeof(double) * (size_t)S);
  for (int64_t r = b0; r < b1; r++) {
    const int s = split_of(g, r);
    double *restrict p = sum + (size_t)s * C;
    const float *restrict xr = x + r * C;
    if (cnt[s] == 0.0) {
      memset(p, 0, sizeof(double) * (size_t)C);
      memset(m2 + (size_t)s * C, 0, sizeof(double) * (size_t)C);
    }
    cnt[s] += 1.0;
#pragma omp simd
    for (int c = 0; c < C; c++) p[c] += xr[c];
  }
  for (int s = 0; s < S; s++)
    if (cnt[s] > 0.0)
      for (size_t i = (size_t)s * C; i < (size_t)(s + 1) * C; i++) mean[i] = sum[i] / cnt[s];
  for (int64_t r = b0; r < b1; r++) {
    const size_t o = (size_t)split_of(g, r) * C;
    double *restrict q = m2 + o;
    const double *restrict mu = mean + o;
    const float *restrict xr = x + r * C;
#pragma omp simd
    for (int c = 0; c < C; c++) {
      const double d = (double)xr[c] - mu[c];
      q[c] += d * d;
    }
  }
}

/* unmix_k_bn_relu_mask(dy, x, ...) given the recomputed forward output y, as bit operations:
 * the same value (dy, or +0.0f), but GCC turns the ternary, when its result only feeds sums,
 * into conditional stores that it then does not vectorise. */
static inline float relu_masked(float dy, float y) {
  uint32_t u;
  memcpy(&u, &dy, sizeof u);
  u &= 0u - (uint32_t)(y > 0.0f);
  float r;
  memcpy(&r, &u, sizeof r);
  return r;
}

/* Backward sums of one block [b0, b1): sdy[s*C + c] = sum dy, sdyx = sum dy * (x - mean), dy
 * masked by the fused ReLU when relu (gamma, beta: the forward's). One sweep in memory order.
 * seen[s] = 1 for the splits present; the other splits' rows are left unwritten. */
static void block_grad_sums(const struct unmix_bn_geom *g, const float *dy, const float *x, const float *mean,
                            const float *invstd, const float *gamma, const float *beta, bool relu, int64_t b0,
                            int64_t b1, double *sdy, double *sdyx, double *seen) {
  const int C = g->c, S = g->splits;
  memset(seen, 0, sizeof(double) * (size_t)S);
  for (int64_t r = b0; r < b1; r++) {
    const int s = split_of(g, r);
    const size_t o = (size_t)s * C;
    if (seen[s] == 0.0) {
      memset(sdy + o, 0, sizeof(double) * (size_t)C);
      memset(sdyx + o, 0, sizeof(double) * (size_t)C);
      seen[s] = 1.0;
    }
    const float *restrict mu = mean + o, *restrict is = invstd + o, *restrict xr = x + r * C, *restrict dr = dy + r * C;
    double *restrict a = sdy + o, *restrict b = sdyx + o;
    if (relu) {
#pragma omp simd
      for (int c = 0; c < C; c++) {
        const float d = relu_masked(dr[c], unmix_k_bn_apply(xr[c], mu[c], is[c], gamma[c], beta[c]));
        a[c] += d;
        b[c] += (double)d * ((double)xr[c] - mu[c]);
      }
    } else {
#pragma omp simd
      for (int c = 0; c < C; c++) {
        a[c] += dr[c];
        b[c] += (double)dr[c] * ((double)xr[c] - mu[c]);
      }
    }
  }
}

void unmix_cpu_batchnorm_forward_train(const struct unmix_bn_geom *g, const float *x, const float *gamma,
                                       const float *beta, float *y, float *save_mean, float *save_invstd,
                                       float *running_mean, float *running_var, float momentum, float eps,
                                       bool relu) {
  const int S = g->splits, C = g->c;
  UNMIX_REQUIRE(S >= 1 && g->n % S == 0, "batch %d not a multiple of %d BN splits", g->n, S);
  const double m = (double)(g->n / S) * g->hw;
  const int64_t rows = (int64_t)g->n * g->hw, br = block_rows(C), nblk = (rows + br - 1) / br;
  /* per block: sum | m2 | mean (S*C each) | count (S) */
  const size_t sc = (size_t)S * C, per_blk = 3 * sc + (size_t)S;
  double *part = part_buf((size_t)nblk * per_blk);
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < nblk; b++) {
    double *pb = part + (size_t)b * per_blk;
    block_moments(g, x, b * br, (b + 1) * br < rows ? (b + 1) * br : rows, pb, pb + sc, pb + 2 * sc, pb + 3 * sc);
  }
  double *gm = malloc(sizeof(double) * sc), *var = malloc(sizeof(double) * sc);
  UNMIX_REQUIRE(gm && var, "out of memory in batchnorm");
  /* Per split and channel, in block order (each block's partials read in memory order): the
   * mean from the blocks' sums, then the second moment about it as the blocks' own second
   * moments plus count * (block mean - mean)^2. */
  for (size_t i = 0; i < sc; i++) gm[i] = var[i] = 0.0;
  for (int64_t b = 0; b < nblk; b++) {
    const double *restrict pb = part + (size_t)b * per_blk;
    for (int s = 0; s < S; s++)
      if (pb[3 * sc + (size_t)s] > 0.0)
        for (size_t i = (size_t)s * C; i < (size_t)(s + 1) * C; i++) gm[i] += pb[i];
  }
  for (size_t i = 0; i < sc; i++) gm[i] /= m;
  for (int64_t b = 0; b < nblk; b++) {
    const double *restrict pb = part + (size_t)b * per_blk;
    for (int s = 0; s < S; s++) {
      const double n = pb[3 * sc + (size_t)s];
      if (n == 0.0) continue;
      const size_t o = (size_t)s * C;
      for (int c = 0; c < C; c++) {
        const double d = pb[2 * sc + o + c] - gm[o + c];
        var[o + c] += pb[sc + o + c] + n * d * d;
      }
    }
  }
  for (size_t i = 0; i < sc; i++) {
    save_mean[i] = (float)gm[i];
    var[i] /= m;
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
  free(gm);
  free(var);
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const size_t o = (size_t)split_of(g, r) * C;
    const float *mu = save_mean + o, *is = save_invstd + o;
    const float *xr = x + r * C;
    float *yr = y + r * C; /* may be xr itself: each element is read before it is written */
    if (relu) {
#pragma omp simd
      for (int c = 0; c < C; c++) yr[c] = unmix_k_bn_relu_apply(xr[c], mu[c], is[c], gamma[c], beta[c]);
    } else {
#pragma omp simd
      for (int c = 0; c < C; c++) yr[c] = unmix_k_bn_apply(xr[c], mu[c], is[c], gamma[c], beta[c]);
    }
  }
}

void unmix_cpu_batchnorm_forward_eval(const struct unmix_bn_geom *g, const float *x, const float *gamma,
                                      const float *beta, const float *running_mean, const float *running_var,
                                      float eps, bool relu, float *y) {
  const int C = g->c;
  float *is = unmix_cpu_scratch(3, (size_t)C);
  for (int c = 0; c < C; c++) is[c] = (float)(1.0 / sqrt((double)running_var[c] + (double)eps));
  const int64_t rows = (int64_t)g->n * g->hw;
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * C;
    float *yr = y + r * C; /* may be xr itself */
    if (relu) {
#pragma omp simd
      for (int c = 0; c < C; c++) yr[c] = unmix_k_bn_relu_apply(xr[c], running_mean[c], is[c], gamma[c], beta[c]);
    } else {
#pragma omp simd
      for (int c = 0; c < C; c++) yr[c] = unmix_k_bn_apply(xr[c], running_mean[c], is[c], gamma[c], beta[c]);
    }
  }
}

void unmix_cpu_batchnorm_backward(const struct unmix_bn_geom *g, const float *dy, const float *x,
                                  const float *gamma, const float *beta, const float *save_mean,
                                  const float *save_invstd, bool relu, float *dx, float *dgamma, float *dbeta) {
  const int S = g->splits, C = g->c;
  const float m = (float)((double)(g->n / S) * g->hw);
  const int64_t rows = (int64_t)g->n * g->hw, br = block_rows(C), nblk = (rows + br - 1) / br;
  /* per block: sum dy | sum dy (x - mean) (S*C each) | split present (S) */
  const size_t sc = (size_t)S * C, per_blk = 2 * sc + (size_t)S;
  double *part = part_buf((size_t)nblk * per_blk);
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < nblk; b++) {
    double *pb = part + (size_t)b * per_blk;
    block_grad_sums(g, dy, x, save_mean, save_invstd, gamma, beta, relu, b * br, (b + 1) * br < rows ? (b + 1) * br : rows,
                    pb, pb + sc, pb + 2 * sc);
  }
  double *sdy = malloc(sizeof(double) * sc), *sdyx = malloc(sizeof(double) * sc);
  float *fsdy = malloc(sizeof(float) * sc), *fsdyx = malloc(sizeof(float) * sc);
  UNMIX_REQUIRE(sdy && sdyx && fsdy && fsdyx, "out of memory in batchnorm backward");
  /* block order, each sum from 0.0 */
  for (size_t i = 0; i < sc; i++) sdy[i] = sdyx[i] = 0.0;
  for (int64_t b = 0; b < nblk; b++) {
    const double *restrict pb = part + (size_t)b * per_blk;
    for (int s = 0; s < S; s++)
      if (pb[2 * sc + (size_t)s] > 0.0)
        for (size_t i = (size_t)s * C; i < (size_t)(s + 1) * C; i++) {
          sdy[i] += pb[i];
          sdyx[i] += pb[sc + i];
        }
  }
  for (size_t i = 0; i < sc; i++) {
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
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
      const size_t o = (size_t)split_of(g, r) * C;
      const float *dyr = dy + r * C, *xr = x + r * C, *mu = save_mean + o, *is = save_invstd + o;
      const float *sd = fsdy + o, *sdx = fsdyx + o;
      float *dxr = dx + r * C; /* may be dyr itself: each element is read before it is written */
      if (relu) {
#pragma omp simd
        for (int c = 0; c < C; c++) {
          const float d = unmix_k_bn_relu_mask(dyr[c], xr[c], mu[c], is[c], gamma[c], beta[c]);
          dxr[c] = unmix_k_bn_grad(d, xr[c], mu[c], is[c], gamma[c], m, sd[c], sdx[c]);
        }
      } else {
#pragma omp simd
        for (int c = 0; c < C; c++) dxr[c] = unmix_k_bn_grad(dyr[c], xr[c], mu[c], is[c], gamma[c], m, sd[c], sdx[c]);
      }
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
