// CUDA batch norm over NHWC, plain and SplitBatchNorm (split s = samples i with i mod S == s).
// Statistics as the CPU oracle computes them: double accumulation, mean first, then the
// centred second moment. Reductions are two-level with a fixed grid (not the GPU's size)
// and fixed combination order, so results repeat bit for bit on any GPU; no atomics.
// The ReLU after a ResNet's BN is fused in: the forward clamps in its apply kernel, the
// backward masks dy where the recomputed forward output is not positive (both sums and dx).
// Accumulation: dgamma +=, dbeta +=, dx =.
#include "core/backend/cuda/internal.cuh"
#include "core/kernels/elementwise.h"

#define BN_TX 32 // channels per block
#define BN_TY 8  // rows in flight per block
#define BN_TARGET_BLOCKS 1024

/* A split's rows: u in [0, (n/S)*hw) is position u % hw of the split's (u / hw)-th sample,
 * which is sample s + (u / hw) * S of the batch. */
struct bn_plan {
  int S, C, hw, ctiles, nchunks;
  int64_t rows;  // per split
  int64_t chunk; // rows per block
};

static bn_plan make_plan(const struct unmix_bn_geom *g) {
  bn_plan p;
  p.S = g->splits;
  p.C = g->c;
  p.hw = g->hw;
  p.ctiles = (g->c + BN_TX - 1) / BN_TX;
  p.rows = (int64_t)(g->n / g->splits) * g->hw;
  int64_t want = BN_TARGET_BLOCKS / ((int64_t)p.ctiles * p.S);
  int64_t most = (p.rows + 63) / 64; // at least 64 rows per block
  if (want > most) want = most;
  if (want < 1) want = 1;
  p.nchunks = (int)want;
  p.chunk = (p.rows + want - 1) / want;
  return p;
}

/* MODE 0: sum x.  MODE 1: sum (x - mean)^2.  MODE 2: sum dy and sum dy * (x - mean), dy
 * masked by the fused ReLU when invstd is non-NULL (then gamma and beta are the forward's).
 * Writes part0/part1[(s * nchunks + chunk) * C + c]. */
template <int MODE>
static __global__ void bn_partial_kernel(bn_plan p, const float *x, const float *dy, const float *mean,
                                         const float *invstd, const float *gamma, const float *beta, double *part0,
                                         double *part1) {
  __shared__ double sh0[BN_TY][BN_TX + 1], sh1[BN_TY][BN_TX + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int c = blockIdx.x * BN_TX + tx, j = blockIdx.y, s = blockIdx.z;
  const int64_t u0 = (int64_t)j * p.chunk;
  const int64_t u1 = u0 + p.chunk < p.rows ? u0 + p.chunk : p.rows;
  double a0 = 0.0, a1 = 0.0;
  if (c < p.C) {
    const float m = MODE != 0 ? mean[s * p.C + c] : 0.0f;
    const bool relu = MODE == 2 && invstd != nullptr;
    const float is = relu ? invstd[s * p.C + c] : 0.0f, ga = relu ? gamma[c] : 0.0f, bt = relu ? beta[c] : 0.0f;
    for (int64_t u = u0 + ty; u < u1; u += BN_TY) {
      int64_t t = u / p.hw, pos = u - t * p.hw;
      int64_t off = (((int64_t)s + t * p.S) * p.hw + pos) * p.C + c;
      if (MODE == 0) {
        a0 += x[off];
      } else if (MODE == 1) {
        double d = (double)x[off] - m;
        a0 += d * d;
      } else {
        double g = relu ? unmix_k_bn_relu_mask(dy[off], x[off], m, is, ga, bt) : dy[off];
        a0 += g;
        a1 += g * ((double)x[off] - m);
      }
    }
  }
  sh0[ty][tx] = a0;
  sh1[ty][tx] = a1;
  __syncthreads();
  if (ty == 0 && c < p.C) {
    double r0 = 0.0, r1 = 0.0;
    for (int k = 0; k < BN_TY; k++) {
      r0 += sh0[k][tx];
      r1 += sh1[k][tx];
    }
    const int64_t o = ((int64_t)s * p.nchunks + j) * p.C + c;
    part0[o] = r0;
    if (MODE == 2) part1[o] = r1;
  }
}

static __global__ void bn_mean_kernel(bn_plan p, const double *part0, double m, float *save_mean) {
  const int sc = blockIdx.x * blockDim.x + threadIdx.x;
  if (sc >= p.S * p.C) return;
  const int s = sc / p.C, c = sc - s * p.C;
  double acc = 0.0;
  for (int j = 0; j < p.nchunks; j++) acc += part0[((int64_t)s * p.nchunks + j) * p.C + c];
  save_mean[sc] = (float)(acc / m);
}

/* Per channel: each split's variance and invstd, then the running statistics as the CPU
 * updates them (every tiled copy updated with its split's statistics, then averaged). */
static __global__ void bn_var_kernel(bn_plan p, const double *part0, double m, float eps, const float *save_mean,
                                     float *save_invstd, float *running_mean, float *running_var, float momentum) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= p.C) return;
  double mu = 0.0, uv = 0.0;
  for (int s = 0; s < p.S; s++) {
    double acc = 0.0;
    for (int j = 0; j < p.nchunks; j++) acc += part0[((int64_t)s * p.nchunks + j) * p.C + c];
    double var = acc / m;
    save_invstd[s * p.C + c] = (float)(1.0 / sqrt(var + (double)eps));
    mu += save_mean[s * p.C + c];
    uv += m > 1.0 ? var * m / (m - 1.0) : var;
  }
  if (running_mean) {
    mu /= p.S;
    uv /= p.S;
    running_mean[c] = (float)((1.0 - momentum) * running_mean[c] + momentum * mu);
    running_var[c] = (float)((1.0 - momentum) * running_var[c] + momentum * uv);
  }
}

static __global__ void bn_apply_kernel(int64_t total, bn_plan p, const float *x, const float *mean,
                                       const float *invstd, const float *gamma, const float *beta, float *y,
                                       bool per_split, bool relu) {
  UNMIX_GRID_STRIDE(t, total) {
    int64_t r = t / p.C;
    int c = (int)(t - r * p.C);
    int s = per_split ? (int)((r / p.hw) % p.S) : 0;
    int sc = s * p.C + c;
    y[t] = relu ? unmix_k_bn_relu_apply(x[t], mean[sc], invstd[sc], gamma[c], beta[c])
                : unmix_k_bn_apply(x[t], mean[sc], invstd[sc], gamma[c], beta[c]);
  }
}

static __global__ void bn_eval_invstd_kernel(int C, const float *rv, float eps, float *invstd) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c < C) invstd[c] = (float)(1.0 / sqrt((double)rv[c] + (double)eps));
}

static __global__ void bn_grad_sums_kernel(bn_plan p, const double *part0, const double *part1,
                                           const float *save_invstd, float *fsdy, float *fsdyx, float *dgamma,
                                           float *dbeta) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= p.C) return;
  double gg = 0.0, gb = 0.0;
  for (int s = 0; s < p.S; s++) {
    double sdy = 0.0, sdyx = 0.0;
    for (int j = 0; j < p.nchunks; j++) {
      const int64_t o = ((int64_t)s * p.nchunks + j) * p.C + c;
      sdy += part0[o];
      sdyx += part1[o];
    }
    sdyx *= save_invstd[s * p.C + c]; // sum dy * xhat
    fsdy[s * p.C + c] = (float)sdy;
    fsdyx[s * p.C + c] = (float)sdyx;
    gg += sdyx;
    gb += sdy;
  }
  if (dgamma) dgamma[c] += (float)gg;
  if (dbeta) dbeta[c] += (float)gb;
}

static __global__ void bn_grad_kernel(int64_t total, bn_plan p, const float *dy, const float *x, const float *mean,
                                      const float *invstd, const float *gamma, const float *beta, bool relu, float m,
                                      const float *fsdy, const float *fsdyx, float *dx) {
  UNMIX_GRID_STRIDE(t, total) {
    int64_t r = t / p.C;
    int c = (int)(t - r * p.C);
    int sc = (int)((r / p.hw) % p.S) * p.C + c;
    const float g = relu ? unmix_k_bn_relu_mask(dy[t], x[t], mean[sc], invstd[sc], gamma[c], beta[c]) : dy[t];
    dx[t] = unmix_k_bn_grad(g, x[t], mean[sc], invstd[sc], gamma[c], m, fsdy[sc], fsdyx[sc]);
  }
}

/* invstd/gamma/beta: non-NULL only for the backward of a fused BN + ReLU (mode 2). */
static void launch_partial(int mode, const bn_plan &p, const float *x, const float *dy, const float *mean,
                           const float *invstd, const float *gamma, const float *beta, double *part0, double *part1) {
  dim3 grid((unsigned)p.ctiles, (unsigned)p.nchunks, (unsigned)p.S), block(BN_TX, BN_TY);
  if (mode == 0) {
    UNMIX_LAUNCH(bn_partial_kernel<0>, grid, block, 0, unmix_cuda.stream, p, x, dy, mean, invstd, gamma, beta, part0,
                 part1);
  } else if (mode == 1) {
    UNMIX_LAUNCH(bn_partial_kernel<1>, grid, block, 0, unmix_cuda.stream, p, x, dy, mean, invstd, gamma, beta, part0,
                 part1);
  } else {
    UNMIX_LAUNCH(bn_partial_kernel<2>, grid, block, 0, unmix_cuda.stream, p, x, dy, mean, invstd, gamma, beta, part0,
                 part1);
  }
  UNMIX_CUDA_LAUNCHED();
}

void unmix_cuda_batchnorm_forward_train(const struct unmix_bn_geom *g, const float *x, const float *gamma,
                                        const float *beta, float *y, float *save_mean, float *save_invstd,
                                        float *running_mean, float *running_var, float momentum, float eps,
                                        bool relu) {
  UNMIX_REQUIRE(g->splits >= 1 && g->n % g->splits == 0, "batch %d not a multiple of %d BN splits", g->n,
                g->splits);
  const bn_plan p = make_plan(g);
  const double m = (double)(g->n / g->splits) * g->hw;
  double *part = (double *)unmix_cuda_scratch(UNMIX_SLOT_PARTIAL, sizeof(double) * (size_t)p.S * p.nchunks * p.C);
  const int sc = p.S * p.C;
  launch_partial(0, p, x, nullptr, nullptr, nullptr, nullptr, nullptr, part, nullptr);
  UNMIX_LAUNCH(bn_mean_kernel, (sc + 127) / 128, 128, 0, unmix_cuda.stream, p, part, m, save_mean);
  UNMIX_CUDA_LAUNCHED();
  launch_partial(1, p, x, nullptr, save_mean, nullptr, nullptr, nullptr, part, nullptr);
  UNMIX_LAUNCH(bn_var_kernel, (p.C + 127) / 128, 128, 0, unmix_cuda.stream,
      p, part, m, eps, save_mean, save_invstd, running_mean, running_var, momentum);
  UNMIX_CUDA_LAUNCHED();
  const int64_t total = (int64_t)g->n * g->hw * g->c;
  if (total > 0) {
    UNMIX_LAUNCH(bn_apply_kernel, unmix_cuda_blocks(total), UNMIX_CUDA_THREADS, 0, unmix_cuda.stream,
        total, p, x, save_mean, save_invstd, gamma, beta, y, true, relu);
    UNMIX_CUDA_LAUNCHED();
  }
}

void unmix_cuda_batchnorm_forward_eval(const struct unmix_bn_geom *g, const float *x, const float *gamma,
                                       const float *beta, const float *running_mean, const float *running_var,
                                       float eps, bool relu, float *y) {
  // Splits are ignored in eval mode (any value, 0 included: make_plan divides by it).
  struct unmix_bn_geom one = *g;
  one.splits = 1;
  const bn_plan p = make_plan(&one);
  float *invstd = (float *)unmix_cuda_scratch(UNMIX_SLOT_STATS, sizeof(float) * (size_t)g->c);
  UNMIX_LAUNCH(bn_eval_invstd_kernel, (g->c + 127) / 128, 128, 0, unmix_cuda.stream, g->c, running_var, eps, invstd);
  UNMIX_CUDA_LAUNCHED();
  const int64_t total = (int64_t)g->n * g->hw * g->c;
  if (total > 0) {
    UNMIX_LAUNCH(bn_apply_kernel, unmix_cuda_blocks(total), UNMIX_CUDA_THREADS, 0, unmix_cuda.stream,
        total, p, x, running_mean, invstd, gamma, beta, y, false, relu);
    UNMIX_CUDA_LAUNCHED();
  }
}

void unmix_cuda_batchnorm_backward(const struct unmix_bn_geom *g, const float *dy, const float *x,
                                   const float *gamma, const float *beta, const float *save_mean,
                                   const float *save_invstd, bool relu, float *dx, float *dgamma, float *dbeta) {
  UNMIX_REQUIRE(g->splits >= 1 && g->n % g->splits == 0, "batch %d not a multiple of %d BN splits", g->n,
                g->splits);
  const bn_plan p = make_plan(g);
  const size_t np = (size_t)p.S * p.nchunks * p.C;
  double *part = (double *)unmix_cuda_scratch(UNMIX_SLOT_PARTIAL, sizeof(double) * 2 * np);
  float *sums = (float *)unmix_cuda_scratch(UNMIX_SLOT_STATS, sizeof(float) * 2 * (size_t)p.S * p.C);
  float *fsdy = sums, *fsdyx = sums + (size_t)p.S * p.C;
  launch_partial(2, p, x, dy, save_mean, relu ? save_invstd : nullptr, gamma, beta, part, part + np);
  UNMIX_LAUNCH(bn_grad_sums_kernel, (p.C + 127) / 128, 128, 0, unmix_cuda.stream,
      p, part, part + np, save_invstd, fsdy, fsdyx, dgamma, dbeta);
  UNMIX_CUDA_LAUNCHED();
  const int64_t total = (int64_t)g->n * g->hw * g->c;
  if (dx && total > 0) {
    const float m = (float)((double)(g->n / g->splits) * g->hw);
    UNMIX_LAUNCH(bn_grad_kernel, unmix_cuda_blocks(total), UNMIX_CUDA_THREADS, 0, unmix_cuda.stream,
        total, p, dy, x, save_mean, save_invstd, gamma, beta, relu, m, fsdy, fsdyx, dx);
    UNMIX_CUDA_LAUNCHED();
  }
}

/* ---- L2 normalisation ------------------------------------------------------------------------ */
static __global__ void l2norm_kernel(int d, const float *x, float *y, float *norms, float eps) {
  __shared__ double sh[32];
  const int64_t o = (int64_t)blockIdx.x * d;
  double ss = 0.0;
  for (int j = threadIdx.x; j < d; j += blockDim.x) ss += (double)x[o + j] * x[o + j];
  ss = unmix_block_sum(ss, sh);
  const float nr = (float)sqrt(ss);
  if (threadIdx.x == 0) norms[blockIdx.x] = nr;
  const float den = nr > eps ? nr : eps;
  for (int j = threadIdx.x; j < d; j += blockDim.x) y[o + j] = x[o + j] / den;
}

static __global__ void l2norm_grad_kernel(int d, const float *dy, const float *x, const float *norms, float eps,
                                          float *dx) {
  __shared__ double sh[32];
  const int64_t o = (int64_t)blockIdx.x * d;
  const float nr = norms[blockIdx.x];
  if (nr > eps) {
    // y = x/|x|: dx = (dy - y (y.dy)) / |x|
    double dot = 0.0;
    for (int j = threadIdx.x; j < d; j += blockDim.x) dot += (double)x[o + j] * dy[o + j];
    dot = unmix_block_sum(dot, sh);
    const double k = dot / ((double)nr * nr);
    for (int j = threadIdx.x; j < d; j += blockDim.x) dx[o + j] = (float)((dy[o + j] - x[o + j] * k) / nr);
  } else {
    for (int j = threadIdx.x; j < d; j += blockDim.x) dx[o + j] = dy[o + j] / eps;
  }
}

void unmix_cuda_l2norm_forward(int n, int d, const float *x, float *y, float *norms, float eps) {
  UNMIX_LAUNCH_ROWS(l2norm_kernel, n, d, d, x, y, norms, eps);
}
void unmix_cuda_l2norm_backward(int n, int d, const float *dy, const float *x, const float *norms, float eps,
                                float *dx) {
  UNMIX_LAUNCH_ROWS(l2norm_grad_kernel, n, d, d, dy, x, norms, eps, dx);
}
