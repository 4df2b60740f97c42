/* CPU matrix ops on (n, d) row-major data: row/column scaling, row-wise axpy, transpose. */
#include "core/backend/cpu/internal.h"

void unmix_cpu_scale_rows(int n, int d, const float *s, float *x) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++)
    for (int j = 0; j < d; j++) x[(int64_t)i * d + j] *= s[i];
}

void unmix_cpu_scale_cols(int n, int d, const float *s, float *x) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++)
    for (int j = 0; j < d; j++) x[(int64_t)i * d + j] *= s[j];
}

void unmix_cpu_axpy_rows(int n, int d, const float *s, int s_stride, const float *x, float *y) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) {
    const float k = s[(int64_t)i * s_stride];
    for (int j = 0; j < d; j++) y[(int64_t)i * d + j] += k * x[(int64_t)i * d + j];
  }
}

void unmix_cpu_transpose(int n, int d, const float *x, float *y) {
  UNMIX_REQUIRE(x != y, "transpose cannot work in place");
#pragma omp parallel for schedule(static)
  for (int j = 0; j < d; j++)
    for (int i = 0; i < n; i++) y[(int64_t)j * n + i] = x[(int64_t)i * d + j];
}
