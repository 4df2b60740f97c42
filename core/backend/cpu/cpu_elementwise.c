/* CPU element-wise, batch-axis, Un-Mix mixing and optimiser-update ops. The per-element
 * arithmetic comes from core/kernels/elementwise.h, shared with the CUDA backend. */
#include <math.h>
#include <string.h>

#include "core/backend/cpu/cpu_ops.h"
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

void unmix_cpu_flip_batch(int n, int64_t row, const float *x, float *y) {
  UNMIX_REQUIRE(x != y, "flip_batch cannot work in place");
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) memcpy(y + (int64_t)i * row, x + (int64_t)(n - 1 - i) * row, sizeof(float) * row);
}

void unmix_cpu_gather_rows(int n, int64_t row, const int32_t *idx, const float *x, float *y) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) memcpy(y + (int64_t)i * row, x + (int64_t)idx[i] * row, sizeof(float) * row);
}

void unmix_cpu_scatter_rows(int n, int64_t row, const int32_t *idx, const float *x, float *y) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) memcpy(y + (int64_t)idx[i] * row, x + (int64_t)i * row, sizeof(float) * row);
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

void unmix_cpu_mix_global(int n, int64_t row, float lam, const float *x, float *y) {
  UNMIX_REQUIRE(x != y, "mix_global cannot work in place");
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) {
    const float *a = x + (int64_t)i * row, *b = x + (int64_t)(n - 1 - i) * row;
    float *o = y + (int64_t)i * row;
    for (int64_t j = 0; j < row; j++) o[j] = unmix_k_mix(a[j], b[j], lam);
  }
}

void unmix_cpu_mix_region(int n, int h, int w, int c, int r0, int r1, int c0, int c1, const float *x, float *y) {
  UNMIX_REQUIRE(x != y, "mix_region cannot work in place");
  const int64_t img = (int64_t)h * w * c;
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) {
    const float *a = x + i * img, *b = x + (int64_t)(n - 1 - i) * img;
    float *o = y + i * img;
    for (int row = 0; row < h; row++)
      for (int col = 0; col < w; col++) {
        int64_t off = ((int64_t)row * w + col) * c;
        const float *src = unmix_k_in_box(row, col, r0, r1, c0, c1) ? b : a;
        memcpy(o + off, src + off, sizeof(float) * c);
      }
  }
}

void unmix_cpu_exp_scaled(int64_t n, float a, float b, const float *x, float *y) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) y[i] = expf(a * x[i] - b);
}

void unmix_cpu_transpose(int n, int d, const float *x, float *y) {
  UNMIX_REQUIRE(x != y, "transpose cannot work in place");
#pragma omp parallel for schedule(static)
  for (int j = 0; j < d; j++)
    for (int i = 0; i < n; i++) y[(int64_t)j * n + i] = x[(int64_t)i * d + j];
}

void unmix_cpu_sgd_step(int64_t n, float *p, const float *g, float *buf, float lr, float momentum, float wd,
                        int nseg, const int64_t *off, const float *gscale_seg, const float *wd_seg) {
  if (nseg <= 0) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) unmix_k_sgd(&p[i], g[i], &buf[i], lr, momentum, wd, 1.0f);
    return;
  }
  UNMIX_REQUIRE(off[0] == 0 && off[nseg] == n, "sgd_step segments do not cover the buffer");
  for (int s = 0; s < nseg; s++) {
    const float gs = gscale_seg[s], ws = wd_seg[s];
#pragma omp parallel for schedule(static)
    for (int64_t i = off[s]; i < off[s + 1]; i++) unmix_k_sgd(&p[i], g[i], &buf[i], lr, momentum, ws, gs);
  }
}

void unmix_cpu_ema(int64_t n, float m, const float *query, float *key) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; i++) key[i] = unmix_k_ema(key[i], query[i], m);
}

void unmix_cpu_nonfinite_count(int64_t n, const float *x, float *out) {
  int64_t bad = 0;
#pragma omp parallel for reduction(+ : bad) schedule(static)
  for (int64_t i = 0; i < n; i++) bad += !isfinite(x[i]);
  out[0] = (float)bad;
}
