/* Shared helpers of the op suites (test_backend_*.c): guarded random buffers, float <-> double
 * copies, comparison of a float result with a double reference, and central finite
 * differences of a scalar function evaluated on double-precision reference arithmetic.
 * Header-only (static inline) because every suite is its own executable. */
#pragma once
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/testutil.h"

/* A guarded buffer of n floats filled from the test Philox stream `seed` with U[lo, hi). */
static inline float *ops_rand(size_t n, uint32_t seed, float lo, float hi) {
  float *p = unmix_guarded_alloc(n);
  unmix_test_fill(p, n, seed, lo, hi);
  return p;
}

/* A guarded buffer of n floats, every element `v` (garbage for outputs that must be
 * overwritten, or a known prefill for outputs that must be accumulated into). */
static inline float *ops_const(size_t n, float v) {
  float *p = unmix_guarded_alloc(n);
  for (size_t i = 0; i < n; i++) p[i] = v;
  return p;
}

/* A guarded int32 buffer (same element size as float, so the float guards work). */
static inline int32_t *ops_ints(size_t n) { return (int32_t *)unmix_guarded_alloc(n); }
static inline bool ops_ints_guard_ok(const int32_t *p, size_t n) { return unmix_guard_ok((const float *)p, n); }
static inline void ops_ints_free(int32_t *p) { unmix_guarded_free((float *)p); }

static inline double *ops_dup_d(const float *x, size_t n) {
  double *d = malloc((n ? n : 1) * sizeof(double));
  ck_assert_ptr_nonnull(d);
  for (size_t i = 0; i < n; i++) d[i] = x[i];
  return d;
}

static inline double ops_maxabs_d(const double *x, size_t n) {
  double m = 0.0;
  for (size_t i = 0; i < n; i++)
    if (fabs(x[i]) > m) m = fabs(x[i]);
  return m;
}

/* |got - want| <= rtol*|want| + rtol*floor*max|want|: relative per element, with an
 * absolute floor proportional to the tensor's scale so that elements which cancel to
 * nearly zero are judged against the size of the terms that produced them. */
static inline bool ops_close(const char *what, const float *got, const double *want, size_t n, double rtol,
                             double floor) {
  double *g = ops_dup_d(got, n);
  bool ok = unmix_close_d(what, g, want, n, rtol * floor * ops_maxabs_d(want, n) + 1e-30, rtol);
  free(g);
  return ok;
}
#define ck_ops_close(what, got, want, n, rtol, floor) ck_assert(ops_close((what), (got), (want), (n), (rtol), (floor)))
#define ck_guard(p, n) ck_assert_msg(unmix_guard_ok((p), (n)), "guard overwritten around %s", #p)

/* grad[i] = (f(x + h e_i) - f(x - h e_i)) / 2h, perturbing x (a double input of the
 * reference that f reads through ctx) in place and restoring it. */
typedef double (*ops_scalar_fn)(void *ctx);
static inline void ops_fd(ops_scalar_fn f, void *ctx, double *x, size_t n, double h, double *grad) {
  for (size_t i = 0; i < n; i++) {
    double save = x[i];
    x[i] = save + h;
    double lp = f(ctx);
    x[i] = save - h;
    double lm = f(ctx);
    x[i] = save;
    grad[i] = (lp - lm) / (2.0 * h);
  }
}

/* sum_i r_i y_i: the random linear functional whose gradient the backward ops compute
 * when called with dy = r. */
static inline double ops_dot_d(const double *r, const double *y, size_t n) {
  double s = 0.0;
  for (size_t i = 0; i < n; i++) s += r[i] * y[i];
  return s;
}

/* want[i] = base[i] + add[i]: the expected value of an accumulated (+=) gradient. */
static inline double *ops_plus(const float *base, const double *add, size_t n) {
  double *d = malloc((n ? n : 1) * sizeof(double));
  ck_assert_ptr_nonnull(d);
  for (size_t i = 0; i < n; i++) d[i] = (double)base[i] + add[i];
  return d;
}
