// CUDA element-wise and BLAS-1 ops. The per-element arithmetic is the UNMIX_HD bodies of
// core/kernels/elementwise.h, the same code the CPU backend runs; every output element is
// written by exactly one thread.
#include "core/backend/cuda/internal.cuh"

#include "core/kernels/elementwise.h"

/* ---- element-wise ------------------------------------------------------------------------ */
static __global__ void relu_kernel(int64_t n, const float *x, float *y) {
  UNMIX_GRID_STRIDE(i, n) y[i] = unmix_k_relu(x[i]);
}
static __global__ void relu_grad_kernel(int64_t n, const float *dy, const float *y, float *dx) {
  UNMIX_GRID_STRIDE(i, n) dx[i] = unmix_k_relu_grad(dy[i], y[i]);
}
static __global__ void add_kernel(int64_t n, const float *a, const float *b, float *y) {
  UNMIX_GRID_STRIDE(i, n) y[i] = a[i] + b[i];
}
static __global__ void add_relu_kernel(int64_t n, const float *a, const float *b, float *y) {
  UNMIX_GRID_STRIDE(i, n) y[i] = unmix_k_relu(a[i] + b[i]);
}
static __global__ void add_relu_grad_kernel(int64_t n, const float *dy, const float *y, float *da, float *db) {
  UNMIX_GRID_STRIDE(i, n) {
    const float d = unmix_k_relu_grad(dy[i], y[i]); // read before da (maybe dy) is written
    da[i] = d;
    db[i] = d;
  }
}
static __global__ void fill_kernel(int64_t n, float v, float *y) {
  UNMIX_GRID_STRIDE(i, n) y[i] = v;
}
static __global__ void scale_kernel(int64_t n, float a, const float *x, float *y) {
  UNMIX_GRID_STRIDE(i, n) y[i] = a * x[i];
}
static __global__ void axpy_kernel(int64_t n, float a, const float *x, float *y) {
  UNMIX_GRID_STRIDE(i, n) y[i] += a * x[i];
}
static __global__ void axpby_kernel(int64_t n, float a, const float *x, float b, float *y) {
  UNMIX_GRID_STRIDE(i, n) y[i] = a * x[i] + b * y[i];
}
static __global__ void exp_scaled_kernel(int64_t n, float a, float b, const float *x, float *y) {
  // The product is rounded before the subtraction, as the CPU's expf(a*x - b) does, so the
  // exponent argument is the same float on both backends.
  UNMIX_GRID_STRIDE(i, n) y[i] = expf(__fsub_rn(__fmul_rn(a, x[i]), b));
}

void unmix_cuda_relu_forward(int64_t n, const float *x, float *y) { UNMIX_LAUNCH_N(relu_kernel, n, x, y); }
void unmix_cuda_relu_backward(int64_t n, const float *dy, const float *y, float *dx) {
  UNMIX_LAUNCH_N(relu_grad_kernel, n, dy, y, dx);
}
void unmix_cuda_add(int64_t n, const float *a, const float *b, float *y) { UNMIX_LAUNCH_N(add_kernel, n, a, b, y); }
void unmix_cuda_add_relu_forward(int64_t n, const float *a, const float *b, float *y) {
  UNMIX_LAUNCH_N(add_relu_kernel, n, a, b, y);
}
void unmix_cuda_add_relu_backward(int64_t n, const float *dy, const float *y, float *da, float *db) {
  UNMIX_LAUNCH_N(add_relu_grad_kernel, n, dy, y, da, db);
}
void unmix_cuda_fill(int64_t n, float value, float *y) { UNMIX_LAUNCH_N(fill_kernel, n, value, y); }
void unmix_cuda_scale(int64_t n, float a, const float *x, float *y) { UNMIX_LAUNCH_N(scale_kernel, n, a, x, y); }
void unmix_cuda_axpy(int64_t n, float a, const float *x, float *y) { UNMIX_LAUNCH_N(axpy_kernel, n, a, x, y); }
void unmix_cuda_axpby(int64_t n, float a, const float *x, float b, float *y) {
  UNMIX_LAUNCH_N(axpby_kernel, n, a, x, b, y);
}
void unmix_cuda_exp_scaled(int64_t n, float a, float b, const float *x, float *y) {
  UNMIX_LAUNCH_N(exp_scaled_kernel, n, a, b, x, y);
}

void unmix_cuda_copy(int64_t n, const float *x, float *y) {
  if (n <= 0 || x == y) return;
  const size_t bytes = sizeof(float) * (size_t)n;
  const char *xs = (const char *)x, *ys = (const char *)y;
  if (ys < xs + bytes && xs < ys + bytes) {
    // Overlapping ranges (the CPU op is a memmove): cudaMemcpy does not allow overlap.
    void *tmp = unmix_cuda_scratch(UNMIX_SLOT_TEMP, bytes);
    UNMIX_CUDA_CHECK(cudaMemcpyAsync(tmp, x, bytes, cudaMemcpyDeviceToDevice, unmix_cuda.stream));
    UNMIX_CUDA_CHECK(cudaMemcpyAsync(y, tmp, bytes, cudaMemcpyDeviceToDevice, unmix_cuda.stream));
    return;
  }
  UNMIX_CUDA_CHECK(cudaMemcpyAsync(y, x, bytes, cudaMemcpyDeviceToDevice, unmix_cuda.stream));
}
