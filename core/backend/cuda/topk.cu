// CUDA top-k per row: a radix select of the k-th largest key, then a rank pass that writes
// every output exactly once (ties by the lower index, as the CPU oracle).
#include "core/backend/cuda/internal.cuh"

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

int64_t unmix_cuda_topk_max_k(void) { return (int64_t)65535 * TOPK_THREADS; }

void unmix_cuda_topk(int n, int d, int k, const float *x, float *vals, int32_t *idx) {
  UNMIX_REQUIRE(k >= 1 && k <= d, "topk: k=%d outside 1..%d", k, d);
  if (n <= 0) return;
  const size_t nk = (size_t)n * k;
  char *cand = (char *)unmix_cuda_scratch(UNMIX_SLOT_TOPK, nk * (sizeof(float) + sizeof(int32_t)));
  float *cv = (float *)cand;
  int32_t *ci = (int32_t *)(cand + nk * sizeof(float));
  UNMIX_LAUNCH(topk_select_kernel, (unsigned)n, TOPK_THREADS, 0, unmix_cuda.stream, d, k, x, cv, ci);
  UNMIX_CUDA_LAUNCHED();
  const unsigned ty = (unsigned)((k + TOPK_THREADS - 1) / TOPK_THREADS);
  UNMIX_REQUIRE(ty <= 65535u, "topk: k=%d is more than this kernel's grid allows", k);
  UNMIX_LAUNCH(topk_rank_kernel, dim3((unsigned)n, ty), TOPK_THREADS, 0, unmix_cuda.stream, k, cv, ci, vals, idx);
  UNMIX_CUDA_LAUNCHED();
}
