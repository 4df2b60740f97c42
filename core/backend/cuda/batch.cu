// CUDA batch-axis ops: flip, gather and scatter of per-sample rows, and the blend and box
// paste of each sample with its mirror in the flipped batch (the image mixtures).
#include "core/backend/cuda/internal.cuh"

#include "core/kernels/elementwise.h"

static __global__ void flip_kernel(int64_t total, int n, int64_t row, const float *x, float *y) {
  UNMIX_GRID_STRIDE(t, total) {
    int64_t i = t / row, j = t - i * row;
    y[t] = x[(int64_t)(n - 1 - i) * row + j];
  }
}
static __global__ void gather_kernel(int64_t total, int64_t row, const int32_t *idx, const float *x, float *y) {
  UNMIX_GRID_STRIDE(t, total) {
    int64_t i = t / row, j = t - i * row;
    y[t] = x[(int64_t)idx[i] * row + j];
  }
}
static __global__ void scatter_kernel(int64_t total, int64_t row, const int32_t *idx, const float *x, float *y) {
  UNMIX_GRID_STRIDE(t, total) {
    int64_t i = t / row, j = t - i * row;
    y[(int64_t)idx[i] * row + j] = x[t];
  }
}
static __global__ void blend_flipped_kernel(int64_t total, int n, int64_t row, float lam, const float *x, float *y) {
  UNMIX_GRID_STRIDE(t, total) {
    int64_t i = t / row, j = t - i * row;
    y[t] = unmix_k_blend(x[t], x[(int64_t)(n - 1 - i) * row + j], lam);
  }
}
static __global__ void paste_box_flipped_kernel(int64_t total, int n, int h, int w, int c, int r0, int r1, int c0, int c1,
                                         const float *x, float *y) {
  const int64_t img = (int64_t)h * w * c;
  UNMIX_GRID_STRIDE(t, total) {
    int64_t i = t / img, off = t - i * img;
    int64_t pix = off / c;
    int row = (int)(pix / w), col = (int)(pix - (int64_t)row * w);
    y[t] = unmix_k_in_box(row, col, r0, r1, c0, c1) ? x[(int64_t)(n - 1 - i) * img + off] : x[t];
  }
}

void unmix_cuda_flip_batch(int n, int64_t row, const float *x, float *y) {
  UNMIX_REQUIRE(x != y, "flip_batch cannot work in place");
  const int64_t total = (int64_t)n * row;
  UNMIX_LAUNCH_N(flip_kernel, total, n, row, x, y);
}
void unmix_cuda_gather_rows(int n, int64_t row, const int32_t *idx, const float *x, float *y) {
  const int64_t total = (int64_t)n * row;
  UNMIX_LAUNCH_N(gather_kernel, total, row, idx, x, y);
}
void unmix_cuda_scatter_rows(int n, int64_t row, const int32_t *idx, const float *x, float *y) {
  const int64_t total = (int64_t)n * row;
  UNMIX_LAUNCH_N(scatter_kernel, total, row, idx, x, y);
}
void unmix_cuda_blend_flipped(int n, int64_t row, float lam, const float *x, float *y) {
  UNMIX_REQUIRE(x != y, "blend_flipped cannot work in place");
  const int64_t total = (int64_t)n * row;
  UNMIX_LAUNCH_N(blend_flipped_kernel, total, n, row, lam, x, y);
}
void unmix_cuda_paste_box_flipped(int n, int h, int w, int c, int r0, int r1, int c0, int c1, const float *x, float *y) {
  UNMIX_REQUIRE(x != y, "paste_box_flipped cannot work in place");
  const int64_t total = (int64_t)n * h * w * c;
  UNMIX_LAUNCH_N(paste_box_flipped_kernel, total, n, h, w, c, r0, r1, c0, c1, x, y);
}
