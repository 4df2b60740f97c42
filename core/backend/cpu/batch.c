/* CPU batch-axis ops: flip, gather and scatter of per-sample rows, and the blend and box
 * paste of each sample with its mirror in the flipped batch (the image mixtures). */
#include <string.h>

#include "core/backend/cpu/internal.h"
#include "core/kernels/elementwise.h"

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

void unmix_cpu_blend_flipped(int n, int64_t row, float lam, const float *x, float *y) {
  UNMIX_REQUIRE(x != y, "blend_flipped cannot work in place");
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) {
    const float *a = x + (int64_t)i * row, *b = x + (int64_t)(n - 1 - i) * row;
    float *o = y + (int64_t)i * row;
    for (int64_t j = 0; j < row; j++) o[j] = unmix_k_blend(a[j], b[j], lam);
  }
}

void unmix_cpu_paste_box_flipped(int n, int h, int w, int c, int r0, int r1, int c0, int c1, const float *x, float *y) {
  UNMIX_REQUIRE(x != y, "paste_box_flipped cannot work in place");
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
