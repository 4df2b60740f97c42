/* Host-side random distributions on top of the Philox streams (core/kernels/philox.h):
 * gamma, beta, permutations and fills. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include "core/kernels/philox.h"

/* Random-stream purposes (the `purpose` of unmix_rng_make) are defined where they are used,
 * each with its own value, never reused (tests/test_rng.c checks they are distinct):
 *   1 UNMIX_RNG_INIT     core/nn/params.h      parameter initialisation
 *   2 UNMIX_RNG_SHUFFLE  core/data/loader.h    per-epoch dataset order
 *   3 UNMIX_RNG_AUGMENT  core/data/augment.h   per-sample, per-view augmentation
 *   4 UNMIX_RNG_MIX      core/methods/mix.h    Un-Mix draws
 *   5, 6                 core/methods/common.h MoCo key shuffle, queue initialisation
 *   7, 8, 9              below                 linear eval on cached features, t-SNE, tests
 *  10 UNMIX_RNG_DATA     core/data/synth.h     synthetic data
 * A new purpose takes the next free value, 11. */
enum unmix_rng_tool_purpose {
  UNMIX_RNG_LINEAR = 7,    /* linear evaluation on cached features: head init, batch order */
  UNMIX_RNG_TSNE = 8,      /* t-SNE initial embedding */
  UNMIX_RNG_TEST = 9       /* tests and benchmarks */
};

double unmix_rng_gamma(struct unmix_rng *r, double shape);          /* Marsaglia-Tsang; shape > 0 */
double unmix_rng_beta(struct unmix_rng *r, double a, double b);     /* X/(X+Y), X~G(a), Y~G(b) */
void unmix_rng_permutation(struct unmix_rng *r, int32_t *perm, int n); /* uniform permutation of 0..n-1 */
void unmix_rng_fill_uniform(struct unmix_rng *r, float *x, size_t n, float lo, float hi);
void unmix_rng_fill_normal(struct unmix_rng *r, float *x, size_t n, float mean, float std);
