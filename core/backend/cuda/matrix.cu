// CUDA matrix ops on (n, d) row-major data: row/column scaling, row-wise axpy (the adjoint
// of row_dot) and the tiled transpose. Every output element is written by one thread.
#include "core/backend/cuda/internal.cuh"

static __global__ void scale_rows_kernel(int64_t total, int d, const float *s, float *x) {
  UNMIX_GRID_STRIDE(t, total) x[t] *= s[t / d];
}
static __global__ void scale_cols_kernel(int64_t total, int d, const float *s, float *x) {
  UNMIX_GRID_STRIDE(t, total) x[t] *= s[t % d];
}
void unmix_cuda_scale_rows(int n, int d, const float *s, float *x) {
  const int64_t total = (int64_t)n * d;
  UNMIX_LAUNCH_N(scale_rows_kernel, total, d, s, x);
}
void unmix_cuda_scale_cols(int n, int d, const float *s, float *x) {
  const int64_t total = (int64_t)n * d;
  UNMIX_LAUNCH_N(scale_cols_kernel, total, d, s, x);
}

static __global__ void axpy_rows_kernel(int n, int d, const float *s, int s_stride, const float *x, float *y) {
  UNMIX_GRID_STRIDE(i, (int64_t)n * d) {
    const int64_t r = i / d;
    y[i] += s[r * s_stride] * x[i];
  }
}

void unmix_cuda_axpy_rows(int n, int d, const float *s, int s_stride, const float *x, float *y) {
  if (n <= 0 || d <= 0) return;
  UNMIX_LAUNCH(axpy_rows_kernel, unmix_cuda_blocks((int64_t)n * d), UNMIX_CUDA_THREADS, 0, unmix_cuda.stream,
      n, d, s, s_stride, x, y);
  UNMIX_CUDA_LAUNCHED();
}

/* ---- transpose ----------------------------------------------------------------------------------- */
#define TR_TILE 32
/* Row tiles on grid.x (no practical limit), column tiles on grid.y, looped when there are
 * more than the 65535 that grid.y allows. */
static __global__ void transpose_kernel(int n, int d, const float *x, float *y) {
  __shared__ float tile[TR_TILE][TR_TILE + 1]; // +1: no bank conflicts on the column read
  const int i0 = blockIdx.x * TR_TILE;
  for (int j0 = blockIdx.y * TR_TILE; j0 < d; j0 += gridDim.y * TR_TILE) {
    for (int r = threadIdx.y; r < TR_TILE; r += blockDim.y) {
      int i = i0 + r, j = j0 + threadIdx.x;
      if (i < n && j < d) tile[r][threadIdx.x] = x[(int64_t)i * d + j];
    }
    __syncthreads();
    for (int r = threadIdx.y; r < TR_TILE; r += blockDim.y) {
      int j = j0 + r, i = i0 + threadIdx.x;
      if (i < n && j < d) y[(int64_t)j * n + i] = tile[threadIdx.x][r];
    }
    __syncthreads(); // the tile is refilled on the next pass
  }
}

void unmix_cuda_transpose(int n, int d, const float *x, float *y) {
  UNMIX_REQUIRE(x != y, "transpose cannot work in place");
  if (n <= 0 || d <= 0) return;
  int64_t gy = (d + TR_TILE - 1) / TR_TILE;
  if (gy > 65535) gy = 65535;
  dim3 grid((unsigned)((n + TR_TILE - 1) / TR_TILE), (unsigned)gy), block(TR_TILE, 8);
  UNMIX_LAUNCH(transpose_kernel, grid, block, 0, unmix_cuda.stream, n, d, x, y);
  UNMIX_CUDA_LAUNCHED();
}
