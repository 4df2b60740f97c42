/* Host-side random distributions on top of the Philox streams (core/kernels/philox.h):
 * gamma, beta, permutations and fills. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "core/kernels/philox.h"

double unmix_rng_gamma(struct unmix_rng *r, double shape);          /* Marsaglia-Tsang; shape > 0 */
double unmix_rng_beta(struct unmix_rng *r, double a, double b);     /* X/(X+Y), X~G(a), Y~G(b) */
void unmix_rng_permutation(struct unmix_rng *r, int32_t *perm, int n); /* uniform permutation of 0..n-1 */
void unmix_rng_fill_uniform(struct unmix_rng *r, float *x, size_t n, float lo, float hi);
void unmix_rng_fill_normal(struct unmix_rng *r, float *x, size_t n, float mean, float std);
