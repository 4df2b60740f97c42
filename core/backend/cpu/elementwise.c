/* CPU element-wise and BLAS-1 ops. The per-element arithmetic comes from
 * core/kernels/elementwise.h, shared with the CUDA backend. */
#include <math.h>
#include <string.h>

#include "core/backend/cpu/internal.h"
#include "core/kernels/elementwise.h"

void unmix_cpu_relu_forward(int64_t n, const float *x, float *y) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] = unmix_k_relu(x[i]);
}

void unmix_cpu_relu_backward(int64_t n, const float *dy, const float *y, float *dx) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; i++) dx[i] = unmix_k_relu_grad(dy[i], y[i]);
}

void unmix_cpu_add(int64_t n, const float *a, const float *b, float *y) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void unmix_cpu_add_relu_forward(int64_t n, const float *a, const float *b, float *y) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] = unmix_k_relu(a[i] + b[i]);
}

void unmix_cpu_add_relu_backward(int64_t n, const float *dy, const float *y, float *da, float *db) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; i++) {
    const float d = unmix_k_relu_grad(dy[i], y[i]); /* read before da (maybe dy) is written */
    da[i] = d;
    db[i] = d;
  }
}

void unmix_cpu_copy(int64_t n, const float *x, float *y) {
  if (x != y && n > 0) memmove(y, x, sizeof(float) * (size_t)n);
}

void unmix_cpu_fill(int64_t n, float value, float *y) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] = value;
}

void unmix_cpu_scale(int64_t n, float a, const float *x, float *y) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] = a * x[i];
}

void unmix_cpu_axpy(int64_t n, float a, const float *x, float *y) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

void unmix_cpu_axpby(int64_t n, float a, const float *x, float b, float *y) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] = a * x[i] + b * y[i];
}

void unmix_cpu_exp_scaled(int64_t n, float a, float b, const float *x, float *y) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] = expf(a * x[i] - b);
}
