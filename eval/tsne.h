/* t-SNE (van der Maaten & Hinton 2008; Barnes-Hut: van der Maaten 2014) for the paper's
 * feature visualisations (Fig. 4): PCA to 50 dims, perplexity-calibrated affinities, then
 * gradient descent with early exaggeration, momentum and gains as in the reference bhtsne.
 * Two gradient modes: Barnes-Hut (quadtree, sparse P on 3*perplexity exact neighbours) and
 * exact O(N^2) for small N. Also PCA and trustworthiness as library functions.
 *
 * Choices (all documented here, compared with bhtsne):
 *  - input: centred (after PCA when d > pca_dims), then divided by max |value| (bhtsne);
 *  - P: Gaussian on SQUARED Euclidean distances, per-point binary search on the precision
 *    beta until |H - log(perplexity)| < 1e-5 nats (at most 200 steps); symmetrised
 *    P = (P_cond + P_cond^T) / sum. Barnes-Hut uses K = floor(3*perplexity) exact nearest
 *    neighbours (blocked SGEMM candidates, distances recomputed in double); exact mode uses
 *    all n-1 others (dense, n <= 5000);
 *  - gradient without the factor 4 (bhtsne's convention): dY_i = sum_j (a*P_ij - q_ij/Z)
 *    q_ij (y_i - y_j), q_ij = 1/(1+|y_i-y_j|^2), a = exaggeration during the first
 *    exaggeration_iters iterations, else 1;
 *  - Barnes-Hut: a square cell of side s whose centre of mass lies at distance r from the
 *    point is summarised by that centre of mass when s / r < theta (Barnes & Hut's
 *    criterion, as sklearn) and the cell does not contain the point; leaves hold up to 8
 *    points whose interactions are computed exactly. bhtsne compares the HALF side with r,
 *    so its theta 0.5 is our theta 1.0. Measured on 997 clustered points, under the exact
 *    objective: bhtsne's setting ended 5.4% above the exact method's KL, ours at 0.5 1.7%
 *    above; at n = 10,000 ours costs ~1.6x the optimisation time (still ~30 s on 2 cores);
 *  - update (bhtsne): gain += 0.2 where sign(grad) != sign(update), else gain *= 0.8, gain
 *    >= 0.01; update = momentum*update - lr*gain*grad; y += update; y re-centred every
 *    iteration. Momentum `momentum` (0.5) while exaggerating, then `final_momentum` (0.8).
 *    Exaggeration covers iterations 0 .. exaggeration_iters-1 (bhtsne: 0 .. 250 inclusive);
 *  - learning rate: learning_rate > 0 is used as given; 0 (default) = max(200, n/exaggeration)
 *    (200 is bhtsne's constant; n/12 is Belkina et al. 2019 / openTSNE's "auto" which
 *    converges within 1000 iterations for large n);
 *  - initial embedding: N(0, (1e-4)^2) from Philox (seed, UNMIX_RNG_TSNE), drawn in order.
 *  - determinism: same seed => bit-identical output, and the same for any thread count
 *    (tested, 1 vs 2 threads). Every OpenMP loop writes per-point results that are reduced
 *    in a fixed order; PCA's BLAS/LAPACK calls run on one thread (their rounding did depend on
 *    the thread count); the threaded neighbour-candidate SGEMM splits
 *    its output, not its dot products, and the chosen neighbours' distances are recomputed
 *    in double, so at worst a thread-dependent rounding could swap two neighbours tied at
 *    the K-th place (OpenBLAS does not promise bitwise reproducibility across thread counts).
 *  - final KL(P||Q): exact mode sums over all pairs. Barnes-Hut reports KL of its sparse P
 *    against the exact Q (normaliser Z summed over all pairs, O(n^2), for n <= 50000; beyond
 *    that Z is the Barnes-Hut estimate and stats.kl_exact_z = 0). */
#pragma once
#include <stdint.h>

#include "core/util/error.h"

/* Called every progress_every iterations and after the last one, with the KL divergence
 * at that point (un-exaggerated P; Barnes-Hut: with the tree's estimate of Z). A non-zero
 * return stops the run (UNMIX_ERR_INTERRUPTED). */
typedef int (*unmix_tsne_progress_fn)(void *user, int iteration, int iterations, double kl);

struct unmix_tsne_params {
  int dims_out;           /* 2 (Barnes-Hut); exact mode allows 1..3 */
  float perplexity;       /* 30; needs n - 1 >= 3 * perplexity */
  float theta;            /* 0.5; 0 = exact O(n^2) gradient */
  int iterations;         /* 1000 */
  int exaggeration_iters; /* 250 */
  float exaggeration;     /* 12 */
  float learning_rate;    /* 0 = max(200, n / exaggeration) */
  float momentum;         /* 0.5 during exaggeration */
  float final_momentum;   /* 0.8 afterwards */
  int pca_dims;           /* 50; 0 = no PCA (input only centred) */
  uint64_t seed;          /* initial embedding */
  int verbose;            /* log phases and the KL every progress_every iterations */
  int progress_every;     /* 50 */
  unmix_tsne_progress_fn progress; /* or NULL */
  void *progress_user;
};
struct unmix_tsne_params unmix_tsne_params_default(void);

struct unmix_tsne_stats {
  double seconds_pca;      /* centring / PCA and scaling */
  double seconds_affinity; /* neighbours, perplexity calibration, symmetrisation */
  double seconds_optimise; /* gradient descent */
  double seconds_kl;       /* final KL */
  double seconds_total;
  double kl;               /* final KL(P||Q) */
  int kl_exact_z;          /* 1 when Z was summed over all pairs */
  int dims_used;           /* input dimensions after PCA */
  int neighbours;          /* per point (K, or n-1 in exact mode) */
  int64_t p_nnz;           /* non-zeros of the symmetrised P */
  double learning_rate;    /* the one used */
};

/* Embeds n points x (n, d) into y_out (n, dims_out). stats may be NULL.
 * Errors: UNMIX_ERR_ARG for bad sizes/parameters (the message names the parameter),
 * UNMIX_ERR_NUMERIC for a NaN/Inf input (naming the sample and column) or a failed
 * eigen-decomposition, UNMIX_ERR_NOMEM, UNMIX_ERR_INTERRUPTED from the progress callback. */
unmix_status unmix_tsne_run(const float *x, int n, int d, const struct unmix_tsne_params *p, float *y_out,
                            struct unmix_tsne_stats *stats);

/* KL(P||Q) of a given embedding y (n, dims_out) of x, with P built exactly as
 * unmix_tsne_run builds it for these parameters (dense for theta = 0, sparse otherwise) and
 * Q normalised over all pairs. Lets embeddings from different modes be compared under one
 * objective. */
unmix_status unmix_tsne_kl_divergence(const float *x, int n, int d, const struct unmix_tsne_params *p,
                                      const float *y, double *kl);

/* PCA: centres x (n, d) (n >= 2), covariance by SSYRK (divided by n-1), eigenvectors by
 * LAPACK dsyevr. proj (n, k) = centred x . V; components (k, d) row-major, each of unit
 * norm with its largest-magnitude entry positive (a fixed sign); variances (k) the
 * eigenvalues, descending. components/variances may be NULL. 1 <= k <= d. */
unmix_status unmix_pca(const float *x, int n, int d, int k, float *proj, float *components, double *variances);

/* Trustworthiness T(k) (Venna & Kaski 2001, as sklearn.manifold.trustworthiness):
 * 1 - 2/(n k (2n - 3k - 1)) sum_i sum_{j in kNN_Y(i) \ kNN_X(i)} (r_X(i,j) - k), with
 * r_X the rank of j among i's neighbours in the input (Euclidean; ties by index).
 * x (n, dx), y (n, dy); 1 <= k < n/2. O(n^2 (d + log n)) time. */
unmix_status unmix_tsne_trustworthiness(const float *x, int n, int dx, const float *y, int dy, int k, double *out);

/* ---- building blocks, exposed for tests ---------------------------------------------- */
/* Calibrates one conditional row: p_m = exp(-beta*sqdist_m)/sum for m < k, beta found by
 * binary search so that the entropy (nats) is log(perplexity). Returns the entropy;
 * beta_out may be NULL. */
double unmix_tsne_calibrate_row(const double *sqdist, int k, double perplexity, double *p_out, double *beta_out);
/* Repulsive forces on a 2-D embedding y (n, 2): neg_f (n, 2) = sum_j q_ij^2 (y_i - y_j) and
 * *sum_q = sum_{i != j} q_ij, by Barnes-Hut with theta (theta = 0 visits every point). */
void unmix_tsne_repulsion(const double *y, int n, double theta, double *neg_f, double *sum_q);
