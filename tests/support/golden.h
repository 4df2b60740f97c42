/* The deterministic-value formula shared with tests/golden/gen/gen_models.py (parameters,
 * inputs and queues are computed on both sides, never stored), and the per-parameter
 * gradient checksum comparison used by the golden-parity suites. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "core/nn/model.h"
#include "tests/support/testutil.h"

/* u in [0,1) from an exact integer hash of (i, stream); pattern = offset + amp*(2u-1). */
double unmix_golden_uniform(uint64_t i, uint64_t stream);
void unmix_golden_pattern(float *dst, int64_t n, uint64_t stream, double amp, double offset);
/* Fills a model's parameters and BN buffers as gen_models.fill_params does. */
void unmix_golden_fill_model(struct unmix_model *m);
/* The key-encoder variant of gen_methods.fill_key_encoder (parameters only). */
void unmix_golden_fill_key_encoder(struct unmix_model *m);
/* NCHW pattern images converted to NHWC (caller frees). */
float *unmix_golden_images(int n, int c, int h, int w, uint64_t stream);
/* Compares every parameter's gradient sum / sum of squares / three samples with the
 * fixture entries grad_sum, grad_sumsq, grad_samples (rel 1e-3, absolute floor from the
 * model-wide gradient scale). Prints each mismatch; returns the number of bad tensors. */
int unmix_golden_check_grads(const char *what, const struct unmix_model *m, const struct unmix_fixture *fx);
/* The same for parameters [first, count) only (the fixture holds count - first entries). */
int unmix_golden_check_grads_from(const char *what, const struct unmix_model *m, const struct unmix_fixture *fx,
                                  int first);
/* Sum of every BN buffer (in store order) against a fixture entry of such sums. */
int unmix_golden_check_buffer_sums(const char *what, const struct unmix_model *m, const struct unmix_fixture *fx,
                                   const char *entry);
