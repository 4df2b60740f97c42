/* Prediction flatness, the paper's motivation figure (vis.png): how peaked a MoCo query's
 * softmax over its negatives is. For queries q (L2-normalised encoder_q outputs) and keys
 * (rows of the checkpoint's queue), p = softmax(q . keys^T / T) per query, sorted ascending;
 * the per-image curves, their rank-wise mean over many images, each curve's maximum and its
 * entropy summarise it (Un-Mix should flatten the distribution). */
#pragma once
#include "core/backend/backend.h"
#include "core/util/error.h"

/* out (host, m x k): row i = softmax(q_i . keys^T / t) sorted ascending. q is (m, d) in the
 * backend's memory, keys (k, d) on the host; gemm and softmax run on the backend. Errors:
 * bad sizes or t <= 0 (UNMIX_ERR_ARG), out of memory. */
unmix_status unmix_flatness_sorted_probs(const struct unmix_backend *be, const float *q, int m, int d,
                                         const float *keys, int k, float t, float *out);
/* mean[r] = (1/m) sum_i sorted[i, r]: the curve averaged over images, rank by rank. */
void unmix_flatness_mean_curve(const float *sorted, int m, int k, double *mean);
/* -sum p log p (nats) of one distribution. */
double unmix_flatness_entropy(const float *p, int k);
