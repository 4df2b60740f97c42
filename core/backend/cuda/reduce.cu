// CUDA reductions: sum, segment sums of squares, row and column sums, row dot products and
// the non-finite count. Sums accumulate in double like the CPU oracle; each is two-level over a
// grid whose shape depends on the problem size only, combined in a fixed order, so results
// repeat bit for bit on every run and every GPU. No floating-point atomics.
#include "core/backend/cuda/internal.cuh"

#define RED_THREADS 256
#define RED_MAX_BLOCKS 1024
#define SEG_CHUNK ((int64_t)1 << 16) // elements per block in sumsq_segments

struct f_identity {
  __device__ double operator()(float v) const { return (double)v; }
};
struct f_square {
  __device__ double operator()(float v) const { return (double)v * v; }
};
struct f_nonfinite {
  __device__ double operator()(float v) const { return isfinite(v) ? 0.0 : 1.0; }
};

/* part[blockIdx.x] = sum of f(x[i]) over the block's grid-stride share. */
template <class F>
static __global__ void partial_kernel(int64_t n, const float *x, double *part, F f) {
  __shared__ double sh[32];
  double acc = 0.0;
  UNMIX_GRID_STRIDE(i, n) acc += f(x[i]);
  acc = unmix_block_sum(acc, sh);
  if (threadIdx.x == 0) part[blockIdx.x] = acc;
}

/* out[0] = (float) sum of part[0..nparts), by one block. */
static __global__ void final_kernel(int nparts, const double *part, float *out) {
  __shared__ double sh[32];
  double acc = 0.0;
  for (int i = threadIdx.x; i < nparts; i += blockDim.x) acc += part[i];
  acc = unmix_block_sum(acc, sh);
  if (threadIdx.x == 0) out[0] = (float)acc;
}

template <class F>
static void reduce_to_scalar(int64_t n, const float *x, float *out, F f) {
  int64_t blocks = (n + RED_THREADS * 4 - 1) / (RED_THREADS * 4);
  if (blocks > RED_MAX_BLOCKS) blocks = RED_MAX_BLOCKS;
  if (blocks < 1) blocks = 1;
  double *part = (double *)unmix_cuda_scratch(UNMIX_SLOT_PARTIAL, sizeof(double) * (size_t)blocks);
  UNMIX_LAUNCH(partial_kernel<F>, (unsigned)blocks, RED_THREADS, 0, unmix_cuda.stream, n, x, part, f);
  UNMIX_CUDA_LAUNCHED();
  UNMIX_LAUNCH(final_kernel, 1, RED_THREADS, 0, unmix_cuda.stream, (int)blocks, part, out);
  UNMIX_CUDA_LAUNCHED();
}

void unmix_cuda_sum(int64_t n, const float *x, float *out) { reduce_to_scalar(n, x, out, f_identity()); }
void unmix_cuda_nonfinite_count(int64_t n, const float *x, float *out) {
  reduce_to_scalar(n, x, out, f_nonfinite());
}

/* ---- sum of squares per segment ------------------------------------------------------------- */
/* Block b sums squares over [start[b], end[b]) (inside one segment). */
static __global__ void seg_partial_kernel(const int64_t *start, const int64_t *end, const float *x, double *part) {
  __shared__ double sh[32];
  const int64_t s0 = start[blockIdx.x], s1 = end[blockIdx.x];
  double acc = 0.0;
  for (int64_t i = s0 + threadIdx.x; i < s1; i += blockDim.x) acc += (double)x[i] * x[i];
  acc = unmix_block_sum(acc, sh);
  if (threadIdx.x == 0) part[blockIdx.x] = acc;
}
/* out[s] = sum of the partials of segment s's blocks first[s] .. first[s+1]. */
static __global__ void seg_final_kernel(int nseg, const int64_t *first, const double *part, float *out) {
  const int s = blockIdx.x * blockDim.x + threadIdx.x;
  if (s >= nseg) return;
  double acc = 0.0;
  for (int64_t b = first[s]; b < first[s + 1]; b++) acc += part[b];
  out[s] = (float)acc;
}

void unmix_cuda_sumsq_segments(int nseg, const int64_t *off, const float *x, float *out) {
  if (nseg <= 0) return;
  // The block table is built on the host from the host offsets: [start | end | first].
  int64_t nblocks = 0;
  for (int s = 0; s < nseg; s++) {
    UNMIX_REQUIRE(off[s + 1] >= off[s], "sumsq_segments: offsets decrease at segment %d", s);
    nblocks += (off[s + 1] - off[s] + SEG_CHUNK - 1) / SEG_CHUNK;
  }
  const size_t table = (size_t)(2 * nblocks + nseg + 1);
  int64_t *h = (int64_t *)unmix_xmalloc(sizeof(int64_t) * table);
  int64_t *hs = h, *he = h + nblocks, *hf = h + 2 * nblocks;
  int64_t b = 0;
  for (int s = 0; s < nseg; s++) {
    hf[s] = b;
    for (int64_t i = off[s]; i < off[s + 1]; i += SEG_CHUNK, b++) {
      hs[b] = i;
      he[b] = i + SEG_CHUNK < off[s + 1] ? i + SEG_CHUNK : off[s + 1];
    }
  }
  hf[nseg] = b;
  int64_t *d = (int64_t *)unmix_cuda_scratch(UNMIX_SLOT_SEGMENTS, sizeof(int64_t) * table);
  unmix_cuda_upload(d, h, sizeof(int64_t) * table);
  free(h);
  double *part = (double *)unmix_cuda_scratch(UNMIX_SLOT_PARTIAL, sizeof(double) * (size_t)(nblocks ? nblocks : 1));
  if (nblocks > 0) {
    UNMIX_REQUIRE(nblocks < INT32_MAX, "sumsq_segments: %lld blocks", (long long)nblocks);
    UNMIX_LAUNCH(seg_partial_kernel, (unsigned)nblocks, RED_THREADS, 0, unmix_cuda.stream, d, d + nblocks, x, part);
    UNMIX_CUDA_LAUNCHED();
  }
  UNMIX_LAUNCH(seg_final_kernel, (nseg + 127) / 128, 128, 0, unmix_cuda.stream, nseg, d + 2 * nblocks, part, out);
  UNMIX_CUDA_LAUNCHED();
}

/* ---- row and column sums ----------------------------------------------------------------------- */
static __global__ void row_sum_kernel(int d, const float *x, float *out) {
  __shared__ double sh[32];
  const float *xr = x + (int64_t)blockIdx.x * d;
  double acc = 0.0;
  for (int j = threadIdx.x; j < d; j += blockDim.x) acc += xr[j];
  acc = unmix_block_sum(acc, sh);
  if (threadIdx.x == 0) out[blockIdx.x] = (float)acc;
}

void unmix_cuda_row_sum(int n, int d, const float *x, float *out) {
  if (n <= 0) return;
  UNMIX_LAUNCH(row_sum_kernel, (unsigned)n, unmix_cuda_row_threads(d), 0, unmix_cuda.stream, d, x, out);
  UNMIX_CUDA_LAUNCHED();
}

#define CS_TX 32
#define CS_TY 8
/* part[chunk * d + j] = sum over the chunk's rows of x[i, j]. */
static __global__ void col_partial_kernel(int n, int d, int64_t chunk, const float *x, double *part) {
  __shared__ double sh[CS_TY][CS_TX + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int j = blockIdx.x * CS_TX + tx;
  const int64_t i0 = (int64_t)blockIdx.y * chunk;
  const int64_t i1 = i0 + chunk < n ? i0 + chunk : n;
  double acc = 0.0;
  if (j < d)
    for (int64_t i = i0 + ty; i < i1; i += CS_TY) acc += x[i * d + j];
  sh[ty][tx] = acc;
  __syncthreads();
  if (ty == 0 && j < d) {
    double r = 0.0;
    for (int k = 0; k < CS_TY; k++) r += sh[k][tx];
    part[(int64_t)blockIdx.y * d + j] = r;
  }
}
static __global__ void col_final_kernel(int d, int nchunks, const double *part, float *out, bool accumulate) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= d) return;
  double acc = 0.0;
  for (int c = 0; c < nchunks; c++) acc += part[(int64_t)c * d + j];
  out[j] = accumulate ? out[j] + (float)acc : (float)acc;
}

void unmix_cuda_col_sum_acc(int n, int d, const float *x, float *out, bool accumulate) {
  if (d <= 0) return;
  const int64_t ctiles = (d + CS_TX - 1) / CS_TX;
  int64_t nchunks = RED_MAX_BLOCKS / ctiles;
  const int64_t most = ((int64_t)n + 63) / 64;
  if (nchunks > most) nchunks = most;
  if (nchunks < 1) nchunks = 1;
  const int64_t chunk = ((int64_t)n + nchunks - 1) / nchunks;
  double *part = (double *)unmix_cuda_scratch(UNMIX_SLOT_PARTIAL, sizeof(double) * (size_t)(nchunks * d));
  UNMIX_LAUNCH(col_partial_kernel, dim3((unsigned)ctiles, (unsigned)nchunks), dim3(CS_TX, CS_TY), 0, unmix_cuda.stream,
      n, d, chunk, x, part);
  UNMIX_CUDA_LAUNCHED();
  UNMIX_LAUNCH(col_final_kernel, (d + 127) / 128, 128, 0, unmix_cuda.stream, d, (int)nchunks, part, out, accumulate);
  UNMIX_CUDA_LAUNCHED();
}

void unmix_cuda_col_sum(int n, int d, const float *x, float *out) { unmix_cuda_col_sum_acc(n, d, x, out, false); }

/* ---- row dot products ------------------------------------------------------------------------- */
static __global__ void row_dot_kernel(int d, const float *a, const float *b, float *out, int out_stride) {
  __shared__ double sh[32];
  const int64_t r = blockIdx.x;
  const float *ar = a + r * d, *br = b + r * d;
  double acc = 0.0;
  for (int j = threadIdx.x; j < d; j += blockDim.x) acc += (double)ar[j] * br[j];
  acc = unmix_block_sum(acc, sh);
  if (threadIdx.x == 0) out[r * out_stride] = (float)acc;
}

void unmix_cuda_row_dot(int n, int d, const float *a, const float *b, float *out, int out_stride) {
  if (n <= 0) return;
  UNMIX_LAUNCH(row_dot_kernel, (unsigned)n, unmix_cuda_row_threads(d), 0, unmix_cuda.stream,
      d, a, b, out, out_stride);
  UNMIX_CUDA_LAUNCHED();
}
