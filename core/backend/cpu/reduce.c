/* CPU reductions: sum, per-segment sums of squares, row and column sums, row dot
 * products and the non-finite count. Sums accumulate in double, in an order that does not
 * depend on the thread count. */
#include <math.h>
#include <stdlib.h>

#include "core/backend/cpu/internal.h"

/* Sum (or sum of squares) of x[0..n) in double over fixed blocks of SUM_BLOCK elements
 * whose partial sums are added in order: the result does not depend on the number of
 * threads (an OpenMP reduction's would). */
#define SUM_BLOCK ((int64_t)1 << 15)
static double blocked_sum(int64_t n, const float *x, int squares) {
  const int64_t nblk = (n + SUM_BLOCK - 1) / SUM_BLOCK;
  if (nblk <= 1) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += squares ? (double)x[i] * x[i] : (double)x[i];
    return s;
  }
  double *part = malloc(sizeof(double) * (size_t)nblk);
  UNMIX_REQUIRE(part != NULL, "out of memory in a reduction");
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < nblk; b++) {
    const int64_t i1 = (b + 1) * SUM_BLOCK < n ? (b + 1) * SUM_BLOCK : n;
    double s = 0.0;
    for (int64_t i = b * SUM_BLOCK; i < i1; i++) s += squares ? (double)x[i] * x[i] : (double)x[i];
    part[b] = s;
  }
  double s = 0.0;
  for (int64_t b = 0; b < nblk; b++) s += part[b];
  free(part);
  return s;
}

void unmix_cpu_sum(int64_t n, const float *x, float *out) { out[0] = (float)blocked_sum(n, x, 0); }

void unmix_cpu_sumsq_segments(int nseg, const int64_t *off, const float *x, float *out) {
  for (int sgi = 0; sgi < nseg; sgi++) out[sgi] = (float)blocked_sum(off[sgi + 1] - off[sgi], x + off[sgi], 1);
}

void unmix_cpu_row_sum(int n, int d, const float *x, float *out) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) {
    double s = 0.0;
    for (int j = 0; j < d; j++) s += x[(int64_t)i * d + j];
    out[i] = (float)s;
  }
}

void unmix_cpu_col_sum(int n, int d, const float *x, float *out) {
#pragma omp parallel for schedule(static)
  for (int j = 0; j < d; j++) {
    double s = 0.0;
    for (int i = 0; i < n; i++) s += x[(int64_t)i * d + j];
    out[j] = (float)s;
  }
}

void unmix_cpu_row_dot(int n, int d, const float *a, const float *b, float *out, int out_stride) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) {
    double s = 0.0;
    for (int j = 0; j < d; j++) s += (double)a[(int64_t)i * d + j] * b[(int64_t)i * d + j];
    out[(int64_t)i * out_stride] = (float)s;
  }
}

void unmix_cpu_nonfinite_count(int64_t n, const float *x, float *out) {
  int64_t bad = 0;
#pragma omp parallel for reduction(+ : bad) schedule(static)
  for (int64_t i = 0; i < n; i++) bad += !isfinite(x[i]);
  out[0] = (float)bad;
}
