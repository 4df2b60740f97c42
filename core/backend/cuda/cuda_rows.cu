// CUDA row-wise ops: L2 normalisation, softmax / log-softmax, cross-entropy with integer and
// soft targets, and top-k per row. One block per row; row statistics in double with the
// CPU oracle's formulas; fixed block sizes (a function of d) and fixed combination order, so
// results repeat bit for bit. Losses are summed over rows by one block, in row order.
// Accumulation: dx =.
#include "core/backend/cuda/cuda_internal.cuh"

#define ROW_LAUNCH(kernel, n, d, ...)                                                                     \
  do {                                                                                                   \
    if ((n) <= 0) return;                                                                                \
    kernel<<<(unsigned)(n), unmix_cuda_row_threads(d), 0, unmix_cuda.stream>>>(__VA_ARGS__);             \
    UNMIX_CUDA_LAUNCHED();                                                                               \
  } while (0)

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
  ROW_LAUNCH(l2norm_kernel, n, d, d, x, y, norms, eps);
}
void unmix_cuda_l2norm_backward(int n, int d, const float *dy, const float *x, const float *norms, float eps,
                                float *dx) {
  ROW_LAUNCH(l2norm_grad_kernel, n, d, d, dy, x, norms, eps, dx);
}

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
  ROW_LAUNCH(softmax_kernel, n, d, d, scale, x, y, false);
}
void unmix_cuda_softmax_backward(int n, int d, float scale, const float *dy, const float *y, float *dx) {
  ROW_LAUNCH(softmax_grad_kernel, n, d, d, scale, dy, y, dx);
}
void unmix_cuda_log_softmax_forward(int n, int d, float scale, const float *x, float *y) {
  ROW_LAUNCH(softmax_kernel, n, d, d, scale, x, y, true);
}
void unmix_cuda_log_softmax_backward(int n, int d, float scale, const float *dy, const float *y, float *dx) {
  ROW_LAUNCH(log_softmax_grad_kernel, n, d, d, scale, dy, y, dx);
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
  ROW_LAUNCH(ce_kernel, n, d, d, scale, logits, labels, probs, rows, rows + n, rows + 2 * n);
  ce_total_kernel<<<1, 256, 0, unmix_cuda.stream>>>(n, rows, rows + n, rows + 2 * n, loss, correct_top1,
                                                    correct_top5);
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
  ce_grad_kernel<<<unmix_cuda_blocks(total), UNMIX_CUDA_THREADS, 0, unmix_cuda.stream>>>(total, d, k, probs, labels,
                                                                                        dlogits);
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
  ROW_LAUNCH(soft_ce_kernel, n, d, d, scale, logits, targets, logprobs, rows);
  ce_total_kernel<<<1, 256, 0, unmix_cuda.stream>>>(n, rows, nullptr, nullptr, loss, nullptr, nullptr);
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
  ROW_LAUNCH(soft_ce_grad_kernel, n, d, d, k, logprobs, targets, dlogits);
}

/* ---- top-k per row ---------------------------------------------------------------------------------- */
/* Order-preserving key: larger float -> larger key. -0 is folded onto +0 so the two tie (and
 * tie-break by index) as they do under the CPU's float comparisons. NaN keys sort above
 * +Inf (or below -Inf for a negative NaN); the CPU's order for NaN is unspecified. */
static __device__ __forceinline__ unsigned topk_key(float v) {
  unsigned u = __float_as_uint(v);
  if (u == 0x80000000u) u = 0u;
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

#define TOPK_THREADS 256
/* Pass 1, one block per row: radix-select the key T of the k-th largest element (four 8-bit
 * digits, most significant first), then copy out the elements above T and the lowest-index
 * elements equal to T, k in all, into the row's candidate slots (in no particular order). */
static __global__ void topk_select_kernel(int d, int k, const float *x, float *cv, int32_t *ci) {
  __shared__ unsigned hist[256];
  __shared__ unsigned s_prefix;
  __shared__ int s_remaining;
  __shared__ int s_wa[TOPK_THREADS / 32], s_wb[TOPK_THREADS / 32];
  const float *xr = x + (int64_t)blockIdx.x * d;
  float *cvr = cv + (int64_t)blockIdx.x * k;
  int32_t *cir = ci + (int64_t)blockIdx.x * k;
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, nw = blockDim.x >> 5;

  unsigned prefix = 0u, mask = 0u;
  int remaining = k;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = tid; b < 256; b += blockDim.x) hist[b] = 0u;
    __syncthreads();
    for (int j = tid; j < d; j += blockDim.x) {
      unsigned key = topk_key(xr[j]);
      if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 255u], 1u); // integer counts: exact
    }
    __syncthreads();
    if (tid == 0) {
      unsigned cum = 0u;
      for (int b = 255; b >= 0; b--) {
        if (cum + hist[b] >= (unsigned)remaining) {
          s_prefix = prefix | ((unsigned)b << shift);
          s_remaining = remaining - (int)cum;
          break;
        }
        cum += hist[b];
      }
    }
    __syncthreads();
    prefix = s_prefix;
    remaining = s_remaining;
    mask |= 255u << shift;
    __syncthreads(); // everyone has read s_prefix before thread 0 may write it again
  }
  const unsigned T = prefix;
  const int n_gt = k - remaining; // elements strictly above T: exactly this many

  // Compaction in index order, one tile of blockDim elements at a time (block-wide scan).
  int base_gt = 0, base_eq = 0;
  const unsigned lt_mask = (1u << lane) - 1u;
  for (int start = 0; start < d; start += blockDim.x) {
    const int j = start + tid;
    unsigned key = j < d ? topk_key(xr[j]) : 0u;
    const bool gt = j < d && key > T, eq = j < d && key == T;
    const unsigned ba = __ballot_sync(0xffffffffu, gt), bb = __ballot_sync(0xffffffffu, eq);
    if (lane == 0) {
      s_wa[warp] = __popc(ba);
      s_wb[warp] = __popc(bb);
    }
    __syncthreads();
    int oa = 0, ob = 0, ta = 0, tb = 0;
    for (int w = 0; w < nw; w++) {
      if (w < warp) {
        oa += s_wa[w];
        ob += s_wb[w];
      }
      ta += s_wa[w];
      tb += s_wb[w];
    }
    __syncthreads(); // s_wa/s_wb are rewritten by the next tile
    if (gt) {
      const int pos = base_gt + oa + __popc(ba & lt_mask);
      cvr[pos] = xr[j];
      cir[pos] = j;
    }
    if (eq) {
      const int e = base_eq + ob + __popc(bb & lt_mask);
      if (e < remaining) {
        cvr[n_gt + e] = xr[j];
        cir[n_gt + e] = j;
      }
    }
    base_gt += ta;
    base_eq += tb;
    if (base_gt >= n_gt && base_eq >= remaining) break; // uniform across the block
  }
}

/* Pass 2: each candidate's output slot is the number of candidates that come before it
 * (larger key, or equal key and lower index). Keys and indices are distinct pairs, so the
 * slots are a permutation: every output is written exactly once. */
static __global__ void topk_rank_kernel(int k, const float *cv, const int32_t *ci, float *vals, int32_t *idx) {
  __shared__ unsigned sk[TOPK_THREADS];
  __shared__ int32_t si[TOPK_THREADS];
  const int64_t row = blockIdx.x;
  const int j = blockIdx.y * blockDim.x + threadIdx.x;
  const float *cvr = cv + row * k;
  const int32_t *cir = ci + row * k;
  float my_v = 0.0f;
  unsigned my_k = 0u;
  int32_t my_i = 0;
  if (j < k) {
    my_v = cvr[j];
    my_k = topk_key(my_v);
    my_i = cir[j];
  }
  int rank = 0;
  for (int t0 = 0; t0 < k; t0 += blockDim.x) {
    const int t = t0 + threadIdx.x;
    if (t < k) {
      sk[threadIdx.x] = topk_key(cvr[t]);
      si[threadIdx.x] = cir[t];
    }
    __syncthreads();
    const int m = k - t0 < (int)blockDim.x ? k - t0 : (int)blockDim.x;
    if (j < k)
      for (int u = 0; u < m; u++) rank += sk[u] > my_k || (sk[u] == my_k && si[u] < my_i);
    __syncthreads();
  }
  if (j < k) {
    vals[row * k + rank] = my_v;
    idx[row * k + rank] = my_i;
  }
}

void unmix_cuda_topk(int n, int d, int k, const float *x, float *vals, int32_t *idx) {
  UNMIX_REQUIRE(k >= 1 && k <= d, "topk: k=%d outside 1..%d", k, d);
  if (n <= 0) return;
  const size_t nk = (size_t)n * k;
  char *cand = (char *)unmix_cuda_scratch(UNMIX_SLOT_TOPK, nk * (sizeof(float) + sizeof(int32_t)));
  float *cv = (float *)cand;
  int32_t *ci = (int32_t *)(cand + nk * sizeof(float));
  topk_select_kernel<<<(unsigned)n, TOPK_THREADS, 0, unmix_cuda.stream>>>(d, k, x, cv, ci);
  UNMIX_CUDA_LAUNCHED();
  const unsigned ty = (unsigned)((k + TOPK_THREADS - 1) / TOPK_THREADS);
  UNMIX_REQUIRE(ty <= 65535u, "topk: k=%d is more than this kernel's grid allows", k);
  topk_rank_kernel<<<dim3((unsigned)n, ty), TOPK_THREADS, 0, unmix_cuda.stream>>>(k, cv, ci, vals, idx);
  UNMIX_CUDA_LAUNCHED();
}
