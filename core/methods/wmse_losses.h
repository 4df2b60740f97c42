/* The two losses of the W-MSE codebase's SimCLR ("contrastive") and BYOL, on embeddings, with
 * their gradients, over backend ops (core/methods/simclr.c, core/methods/byol.c). Each call is
 * one two-view loss `loss(a, b)` as the reference's forward computes it for one view pair;
 * Un-Mix calls it once per pair and weights the results. */
#pragma once
#include <stdint.h>

#include "core/backend/backend.h"

/* Symmetric NT-Xent (methods/contrastive.py: contrastive_loss, norm=True):
 *   a = normalize(z0), b = normalize(z1) (x / max(|x|, 1e-12)),
 *   L = ( CE([a b^T, a a^T - 1e9 I] / tau, arange) + CE([b a^T, b b^T - 1e9 I] / tau, arange) ) / 2
 * i.e. each anchor's positive is the other view of its image, against 2N-2 negatives (the
 * other N-1 images of both views); the two directions averaged.
 * z0, z1: (n, d) device. dz0, dz1: (n, d) device, ACCUMULATED (+=) with dscale * dL/dz (NULL:
 * no gradient). *loss: host, the value of L. work: unmix_simclr_ntxent_workspace(n, d) floats of
 * device scratch (contents not preserved). */
int64_t unmix_simclr_ntxent_workspace(int n, int d);
void unmix_simclr_ntxent(const struct unmix_backend *be, int n, int d, float tau, const float *z0, const float *z1,
                  float dscale, float *dz0, float *dz1, double *loss, float *work);

/* BYOL's normalised MSE (methods/norm_mse.py): nmse(p, t) = 2 - 2 mean_i cos(p_i, t_i), the
 * target t treated as a constant. p, t: (n, d) device; dp (n, d) += dscale * dnmse/dp (NULL:
 * no gradient); *loss host. work: unmix_byol_nmse_workspace(n, d) floats of device scratch. */
int64_t unmix_byol_nmse_workspace(int n, int d);
void unmix_byol_nmse(const struct unmix_backend *be, int n, int d, const float *p, const float *t, float dscale, float *dp,
                double *loss, float *work);
