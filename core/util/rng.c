/* Gamma/beta variates, permutations and fills drawn from Philox streams. */
#include "core/util/rng.h"

#include <math.h>

double unmix_rng_gamma(struct unmix_rng *r, double shape) {
  if (shape < 1.0) {
    /* Boost: G(a) = G(a+1) * U^(1/a). */
    double u = unmix_rng_uniform_double(r);
    if (u < 1e-300) u = 1e-300;
    return unmix_rng_gamma(r, shape + 1.0) * pow(u, 1.0 / shape);
  }
  double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
  for (;;) {
    double x, v;
    do {
      x = unmix_rng_normal(r);
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    double u = unmix_rng_uniform_double(r);
    if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
    if (u > 0.0 && log(u) < 0.5 * x * x + d * (1.0 - v + log(v))) return d * v;
  }
}

double unmix_rng_beta(struct unmix_rng *r, double a, double b) {
  if (a == 1.0 && b == 1.0) return unmix_rng_uniform_double(r); /* Beta(1,1) = U(0,1) */
  double x = unmix_rng_gamma(r, a), y = unmix_rng_gamma(r, b);
  if (x + y == 0.0) return unmix_rng_uniform_double(r) < a / (a + b) ? 1.0 : 0.0;
  return x / (x + y);
}

void unmix_rng_permutation(struct unmix_rng *r, int32_t *perm, int n) {
  for (int i = 0; i < n; i++) perm[i] = i;
  for (int i = n - 1; i > 0; i--) {
    int j = (int)unmix_rng_below(r, (uint32_t)(i + 1));
    int32_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
}

void unmix_rng_fill_uniform(struct unmix_rng *r, float *x, size_t n, float lo, float hi) {
  for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * (float)unmix_rng_uniform_double(r);
}

void unmix_rng_fill_normal(struct unmix_rng *r, float *x, size_t n, float mean, float std) {
  for (size_t i = 0; i < n; i++) x[i] = (float)(mean + std * unmix_rng_normal(r));
}
