/* Helpers for the GPU-versus-CPU op suites: device buffers with guard values on both sides
 * (so an out-of-bounds write shows as a changed guard after the copy back), poisoned
 * outputs (NaN, so an element the op never wrote cannot pass), and the normalised-error
 * comparison that also demands NaN/Inf agree. Every comparison prints one greppable line,
 * "gpu-check <what> err <e> tol <t> ok|FAIL", which tools/device-check.sh summarises. */
#pragma once
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/testutil.h"

#define GPU_GUARD 16
#define GPU_GUARD_F (-7777.25f)
#define GPU_GUARD_I (-777777)

/* Tolerances on the normalised error max|got - want| / max|want|. */
#define TOL_FP32 1e-5   /* our kernels: same formulas, fp32/fp64 arithmetic */
#define TOL_GEMM32 1e-5 /* cuBLAS fp32: only the summation order differs */
#define TOL_CONV32 1e-4 /* cuDNN fp32 (FMA): summation order and Winograd/FFT transforms */
/* TF32 keeps 10 of fp32's 23 mantissa bits. Rounded to nearest, the error of a product is
 * ~4e-4 relative; truncated (tensor cores ignore the low 13 bits of operands that a kernel
 * does not round first) it is biased towards zero by ~1e-3. 2e-3 still tells TF32 from bf16
 * or fp16 (~4e-3 and up); device-check's summary shows the measured worst case. */
#define TOL_TF32 2e-3
#define TOL_BF16 2e-2

struct gpu_pair {
  const struct unmix_backend *cpu, *gpu;
};

/* The two backends, or false after printing the SKIPPED line (the case then returns). */
static inline bool gpu_begin(const char *case_name, struct gpu_pair *p) {
  p->gpu = unmix_test_cuda_or_skip(case_name);
  if (!p->gpu) return false;
  p->cpu = unmix_test_cpu();
  // A case that failed half-way (CK_FORK=no runs every case in one process) may have left
  // a mode switched on: every case starts from fp32, non-deterministic.
  p->gpu->set_precision(UNMIX_PREC_FP32);
  p->gpu->set_deterministic(false);
  return true;
}

/* UNMIX_GPU_TEST_SMALL=1 (set for the slow sanitizer tools) skips the large shapes. */
static inline bool gpu_small(void) {
  const char *e = getenv("UNMIX_GPU_TEST_SMALL");
  return e && *e && strcmp(e, "0") != 0;
}

/* Device copy of n floats between guards; host NULL poisons the contents with NaN. */
static inline float *dput(const struct unmix_backend *be, const float *host, size_t n) {
  float *h = malloc((n + 2 * GPU_GUARD) * sizeof(float));
  ck_assert_ptr_nonnull(h);
  for (size_t i = 0; i < GPU_GUARD; i++) h[i] = h[GPU_GUARD + n + i] = GPU_GUARD_F;
  for (size_t i = 0; i < n; i++) h[GPU_GUARD + i] = host ? host[i] : NAN;
  float *d = be->alloc((n + 2 * GPU_GUARD) * sizeof(float));
  ck_assert_msg(d != NULL, "device allocation of %zu floats failed", n);
  be->memcpy_h2d(d, h, (n + 2 * GPU_GUARD) * sizeof(float));
  free(h);
  return d + GPU_GUARD;
}
static inline int32_t *dput_i32(const struct unmix_backend *be, const int32_t *host, size_t n) {
  int32_t *h = malloc((n + 2 * GPU_GUARD) * sizeof(int32_t));
  ck_assert_ptr_nonnull(h);
  for (size_t i = 0; i < GPU_GUARD; i++) h[i] = h[GPU_GUARD + n + i] = GPU_GUARD_I;
  for (size_t i = 0; i < n; i++) h[GPU_GUARD + i] = host ? host[i] : GPU_GUARD_I;
  int32_t *d = be->alloc((n + 2 * GPU_GUARD) * sizeof(int32_t));
  ck_assert_msg(d != NULL, "device allocation of %zu ints failed", n);
  be->memcpy_h2d(d, h, (n + 2 * GPU_GUARD) * sizeof(int32_t));
  free(h);
  return d + GPU_GUARD;
}
/* Copies n floats back into host[] and fails the case if a guard changed. */
static inline void dget(const struct unmix_backend *be, const char *what, const float *d, size_t n, float *host) {
  float *h = malloc((n + 2 * GPU_GUARD) * sizeof(float));
  ck_assert_ptr_nonnull(h);
  be->memcpy_d2h(h, d - GPU_GUARD, (n + 2 * GPU_GUARD) * sizeof(float));
  for (size_t i = 0; i < GPU_GUARD; i++) {
    ck_assert_msg(h[i] == GPU_GUARD_F, "%s: guard %zu before the buffer overwritten (%g)", what, GPU_GUARD - i,
                  h[i]);
    ck_assert_msg(h[GPU_GUARD + n + i] == GPU_GUARD_F, "%s: guard %zu after the buffer overwritten (%g)", what, i,
                  h[GPU_GUARD + n + i]);
  }
  memcpy(host, h + GPU_GUARD, n * sizeof(float));
  free(h);
}
static inline void dget_i32(const struct unmix_backend *be, const char *what, const int32_t *d, size_t n,
                            int32_t *host) {
  int32_t *h = malloc((n + 2 * GPU_GUARD) * sizeof(int32_t));
  ck_assert_ptr_nonnull(h);
  be->memcpy_d2h(h, d - GPU_GUARD, (n + 2 * GPU_GUARD) * sizeof(int32_t));
  for (size_t i = 0; i < GPU_GUARD; i++) {
    ck_assert_msg(h[i] == GPU_GUARD_I, "%s: guard before the buffer overwritten", what);
    ck_assert_msg(h[GPU_GUARD + n + i] == GPU_GUARD_I, "%s: guard after the buffer overwritten", what);
  }
  memcpy(host, h + GPU_GUARD, n * sizeof(int32_t));
  free(h);
}
static inline void dfree(const struct unmix_backend *be, void *d) {
  if (d) be->free((char *)d - GPU_GUARD * sizeof(float)); /* float and int32 guards are both 4 bytes */
}

/* Host buffers. */
static inline float *hrand(size_t n, uint32_t seed, float lo, float hi) {
  float *x = malloc((n ? n : 1) * sizeof(float));
  ck_assert_ptr_nonnull(x);
  unmix_test_fill(x, n, seed, lo, hi);
  return x;
}
static inline float *hzeros(size_t n) {
  float *x = calloc(n ? n : 1, sizeof(float));
  ck_assert_ptr_nonnull(x);
  return x;
}
static inline float *hcopy(const float *src, size_t n) {
  float *x = malloc((n ? n : 1) * sizeof(float));
  ck_assert_ptr_nonnull(x);
  memcpy(x, src, n * sizeof(float));
  return x;
}

/* Normalised error; INFINITY when NaN/Inf do not agree element for element. */
static inline double norm_err(const float *got, const float *want, size_t n, size_t *worst) {
  double md = 0.0, mw = 0.0;
  *worst = 0;
  for (size_t i = 0; i < n; i++) {
    const float a = got[i], b = want[i];
    if (!isfinite(a) || !isfinite(b)) {
      if ((isnan(a) && isnan(b)) || a == b) continue;
      *worst = i;
      return INFINITY;
    }
    const double d = fabs((double)a - b);
    if (d > md) {
      md = d;
      *worst = i;
    }
    if (fabs(b) > mw) mw = fabs(b);
  }
  return md / (mw > 1e-30 ? mw : 1e-30);
}

/* Compares and fails the case when the normalised error exceeds tol. */
#define ck_gpu_close(what, got, want, n, tol)                                                            \
  do {                                                                                                   \
    size_t w_;                                                                                           \
    const double e_ = norm_err((got), (want), (n), &w_);                                                 \
    const bool ok_ = e_ <= (tol);                                                                        \
    printf("gpu-check %-44s err %9.2e tol %7.0e %s\n", (what), e_, (double)(tol), ok_ ? "ok" : "FAIL");  \
    fflush(stdout);                                                                                      \
    ck_assert_msg(ok_, "%s: normalised error %.3g > %.3g (worst [%zu] got %.9g want %.9g)", (what), e_,  \
                  (double)(tol), w_, (double)(got)[w_], (double)(want)[w_]);                             \
  } while (0)

/* Element-wise relative error max |got - want| / max(|want|, floor): unlike the normalised
 * error it does not let the largest element hide the small ones (softmax tails). */
static inline double rel_err(const float *got, const float *want, size_t n, double floor, size_t *worst) {
  double m = 0.0;
  *worst = 0;
  for (size_t i = 0; i < n; i++) {
    const double w = fabs((double)want[i]), e = fabs((double)got[i] - want[i]) / (w > floor ? w : floor);
    if (!(e <= m)) { /* NaN counts as the worst */
      m = e;
      *worst = i;
      if (isnan(e)) return INFINITY;
    }
  }
  return m;
}
#define ck_gpu_close_rel(what, got, want, n, tol, floor)                                                 \
  do {                                                                                                   \
    size_t w_;                                                                                           \
    const double e_ = rel_err((got), (want), (n), (floor), &w_);                                         \
    const bool ok_ = e_ <= (tol);                                                                        \
    printf("gpu-check %-44s rel %9.2e tol %7.0e %s\n", (what), e_, (double)(tol), ok_ ? "ok" : "FAIL");  \
    fflush(stdout);                                                                                      \
    ck_assert_msg(ok_, "%s: relative error %.3g > %.3g (worst [%zu] got %.9g want %.9g)", (what), e_,    \
                  (double)(tol), w_, (double)(got)[w_], (double)(want)[w_]);                             \
  } while (0)

/* Bit-for-bit equality (deterministic results, integer outputs carried in floats). */
#define ck_gpu_same(what, got, want, n)                                                                  \
  do {                                                                                                   \
    size_t bad_ = (size_t)-1;                                                                            \
    for (size_t i_ = 0; i_ < (n); i_++)                                                                  \
      if (memcmp(&(got)[i_], &(want)[i_], sizeof((got)[0])) != 0) {                                      \
        bad_ = i_;                                                                                       \
        break;                                                                                           \
      }                                                                                                  \
    printf("gpu-check %-44s %s\n", (what), bad_ == (size_t)-1 ? "identical ok" : "differs FAIL");        \
    fflush(stdout);                                                                                      \
    ck_assert_msg(bad_ == (size_t)-1, "%s: element %zu differs", (what), bad_);                          \
  } while (0)
