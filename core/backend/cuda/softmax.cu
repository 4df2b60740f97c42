// CUDA softmax / log-softmax and the cross-entropy losses (integer and soft targets). One
// block per row; row statistics in double with the
// CPU oracle's formulas; fixed block sizes (a function of d) and fixed combination order, so
// results repeat bit for bit. Losses are summed over rows by one block, in row order.
// Accumulation: dx =.
#include "core/backend/cuda/internal.cuh"

/* ---- softmax family ----------------------------------------------------------------------------- */
/* log-sum-exp of scale*x over the block's row, in double (every thread gets it). The maximum
 * ignores NaN as the CPU's `if (v > mx)` does; a NaN still reaches the sum. */
static __device__ double row_lse(int d, float scale, const float *xr, double *sh) {
  double mx = -INFINITY;
  for (int j = threadIdx.x; j < d; j += blockDim.x) mx = unmix_max_nonan(mx, (double)scale * xr[j]);
  mx = unmix_block_max(mx, sh);
  double s = 0.0;
  for (int j = threadIdx.x; j < d; j += blockDim.x) s += exp((double)scale * xr[j] - mx);
  s = unmix_block_sum(s, sh);
  return mx + log(s);
}

static __global__ void softmax_kernel(int d, float scale, const float *x, float *y, bool log_out) {
  __shared__ double sh[32];
  const int64_t o = (int64_t)blockIdx.x * d;
  const double lse = row_lse(d, scale, x + o, sh);
  for (int j = threadIdx.x; j < d; j += blockDim.x) {
    double v = (double)scale * x[o + j] - lse;
    y[o + j] = log_out ? (float)v : (float)exp(v);
  }
}

static __global__ void softmax_grad_kernel(int d, float scale, const float *dy, const float *y, float *dx) {
  __shared__ double sh[32];
  const int64_t o = (int64_t)blockIdx.x * d;
  double dot = 0.0;
  for (int j = threadIdx.x; j < d; j += blockDim.x) dot += (double)dy[o + j] * y[o + j];
  dot = unmix_block_sum(dot, sh);
  for (int j = threadIdx.x; j < d; j += blockDim.x) dx[o + j] = (float)(scale * y[o + j] * (dy[o + j] - dot));
}

static __global__ void log_softmax_grad_kernel(int d, float scale, const float *dy, const float *y, float *dx) {
  __shared__ double sh[32];
  const int64_t o = (int64_t)blockIdx.x * d;
  double s = 0.0;
  for (int j = threadIdx.x; j < d; j += blockDim.x) s += dy[o + j];
  s = unmix_block_sum(s, sh);
  for (int j = threadIdx.x; j < d; j += blockDim.x)
    dx[o + j] = (float)(scale * (dy[o + j] - exp((double)y[o + j]) * s));
}

void unmix_cuda_softmax_forward(int n, int d, float scale, const float *x, float *y) {
  UNMIX_LAUNCH_ROWS(softmax_kernel, n, d, d, scale, x, y, false);
}
void unmix_cuda_softmax_backward(int n, int d, float scale, const float *dy, const float *y, float *dx) {
  UNMIX_LAUNCH_ROWS(softmax_grad_kernel, n, d, d, scale, dy, y, dx);
}
void unmix_cuda_log_softmax_forward(int n, int d, float scale, const float *x, float *y) {
  UNMIX_LAUNCH_ROWS(softmax_kernel, n, d, d, scale, x, y, true);
}
void unmix_cuda_log_softmax_backward(int n, int d, float scale, const float *dy, const float *y, float *dx) {
  UNMIX_LAUNCH_ROWS(log_softmax_grad_kernel, n, d, d, scale, dy, y, dx);
}

/* ---- cross-entropy -------------------------------------------------------------------------------- */
/* Per row: probs, the row's loss and whether the label ranks first / in the top five (rank =
 * larger logits plus equal ones at a lower index, the top-k order). */
static __global__ void ce_kernel(int d, float scale, const float *z, const int32_t *labels, float *probs,
                                 double *row_loss, double *row_c1, double *row_c5) {
  __shared__ double sh[32];
  const int64_t o = (int64_t)blockIdx.x * d;
  const double lse = row_lse(d, scale, z + o, sh);
  for (int j = threadIdx.x; j < d; j += blockDim.x) probs[o + j] = (float)exp((double)scale * z[o + j] - lse);
  const int y = labels[blockIdx.x];
  const float zy = z[o + y];
  double rank = 0.0;
  for (int j = threadIdx.x; j < d; j += blockDim.x) rank += z[o + j] > zy || (z[o + j] == zy && j < y);
  rank = unmix_block_sum(rank, sh);
  if (threadIdx.x == 0) {
    row_loss[blockIdx.x] = lse - (double)scale * zy;
    row_c1[blockIdx.x] = rank < 1.0;
    row_c5[blockIdx.x] = rank < 5.0;
  }
}

/* Mean of the row losses and the two counts, by one block in row order. */
static __global__ void ce_total_kernel(int n, const double *row_loss, const double *row_c1, const double *row_c5,
                                       float *loss, float *c1, float *c5) {
  __shared__ double sh[32];
  double l = 0.0, a = 0.0, b = 0.0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    l += row_loss[i];
    if (row_c1) {
      a += row_c1[i];
      b += row_c5[i];
    }
  }
  l = unmix_block_sum(l, sh);
  a = unmix_block_sum(a, sh);
  b = unmix_block_sum(b, sh);
  if (threadIdx.x == 0) {
    loss[0] = (float)(l / n);
    if (c1) c1[0] = (float)a;
    if (c5) c5[0] = (float)b;
  }
}

void unmix_cuda_cross_entropy_forward(int n, int d, float scale, const float *logits, const int32_t *labels,
                                      float *probs, float *loss, float *correct_top1, float *correct_top5) {
  if (n <= 0) return;
  double *rows = (double *)unmix_cuda_scratch(UNMIX_SLOT_PARTIAL, sizeof(double) * 3 * (size_t)n);
  UNMIX_LAUNCH_ROWS(ce_kernel, n, d, d, scale, logits, labels, probs, rows, rows + n, rows + 2 * n);
  UNMIX_LAUNCH(ce_total_kernel, 1, 256, 0, unmix_cuda.stream,
      n, rows, rows + n, rows + 2 * n, loss, correct_top1, correct_top5);
  UNMIX_CUDA_LAUNCHED();
}

static __global__ void ce_grad_kernel(int64_t total, int d, float k, const float *probs, const int32_t *labels,
                                      float *dlogits) {
  UNMIX_GRID_STRIDE(t, total) {
    int64_t i = t / d;
    int j = (int)(t - i * d);
    float p = probs[t];
    dlogits[t] = j == labels[i] ? k * (p - 1.0f) : k * p;
  }
}

void unmix_cuda_cross_entropy_backward(int n, int d, float scale, float dloss, const float *probs,
                                       const int32_t *labels, float *dlogits) {
  const int64_t total = (int64_t)n * d;
  if (total <= 0) return;
  const float k = dloss * scale / (float)n; // the CPU's float expression, evaluated once
  UNMIX_LAUNCH(ce_grad_kernel, unmix_cuda_blocks(total), UNMIX_CUDA_THREADS, 0, unmix_cuda.stream,
      total, d, k, probs, labels, dlogits);
  UNMIX_CUDA_LAUNCHED();
}

static __global__ void soft_ce_kernel(int d, float scale, const float *z, const float *q, float *logprobs,
                                      double *row_loss) {
  __shared__ double sh[32];
  const int64_t o = (int64_t)blockIdx.x * d;
  const double lse = row_lse(d, scale, z + o, sh);
  double s = 0.0;
  for (int j = threadIdx.x; j < d; j += blockDim.x) {
    double lp = (double)scale * z[o + j] - lse;
    logprobs[o + j] = (float)lp;
    s += q[o + j] * lp;
  }
  s = unmix_block_sum(s, sh);
  if (threadIdx.x == 0) row_loss[blockIdx.x] = -s;
}

void unmix_cuda_soft_cross_entropy_forward(int n, int d, float scale, const float *logits, const float *targets,
                                           float *logprobs, float *loss) {
  if (n <= 0) return;
  double *rows = (double *)unmix_cuda_scratch(UNMIX_SLOT_PARTIAL, sizeof(double) * (size_t)n);
  UNMIX_LAUNCH_ROWS(soft_ce_kernel, n, d, d, scale, logits, targets, logprobs, rows);
  UNMIX_LAUNCH(ce_total_kernel, 1, 256, 0, unmix_cuda.stream, n, rows, nullptr, nullptr, loss, nullptr, nullptr);
  UNMIX_CUDA_LAUNCHED();
}

static __global__ void soft_ce_grad_kernel(int d, double k, const float *lp, const float *q, float *dlogits) {
  __shared__ double sh[32];
  const int64_t o = (int64_t)blockIdx.x * d;
  double qs = 0.0;
  for (int j = threadIdx.x; j < d; j += blockDim.x) qs += q[o + j];
  qs = unmix_block_sum(qs, sh);
  for (int j = threadIdx.x; j < d; j += blockDim.x) dlogits[o + j] = (float)(k * (exp((double)lp[o + j]) * qs - q[o + j]));
}

void unmix_cuda_soft_cross_entropy_backward(int n, int d, float scale, float dloss, const float *logprobs,
                                            const float *targets, float *dlogits) {
  const double k = (double)dloss * scale / (double)n;
  UNMIX_LAUNCH_ROWS(soft_ce_grad_kernel, n, d, d, k, logprobs, targets, dlogits);
}
