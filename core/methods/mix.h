/* Un-Mix image mixtures (FIDELITY §1), method-agnostic. One draw per iteration (per rank),
 * shared by the whole batch, in the reference's order: r ~ U(0,1); lam ~ Beta(beta, beta);
 * region branch only: cx = randint(size[2]) (a row), then cy = randint(size[3]) (a column).
 * Global iff r < prob: mixed = lam*x + (1-lam)*rev(x). Region: the box of rev(x) pasted into
 * x, with lam re-adjusted to the share of each sample's own pixels. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "core/backend/backend.h"
#include "core/kernels/philox.h"

/* Random-stream purpose of the Un-Mix draws (index = global step, view = rank); values:
 * core/util/rng.h. */
enum unmix_mix_rng_purpose { UNMIX_RNG_MIX = 4 };

/* Un-Mix options (the manifest's unmix section). */
struct unmix_mix_config {
  bool enabled;                /* Un-Mix on/off */
  float prob;                  /* P: probability of the global mixture (else region) */
  float beta;                  /* lambda ~ Beta(beta, beta) */
  bool per_rank;               /* each rank draws its own r, lambda (ImageNet reference) vs one global draw */
};

struct unmix_mix_draw {
  bool global;        /* global mixture (else region) */
  double r;           /* the uniform that chose the mode */
  double lam_drawn;   /* lambda as drawn from Beta(beta, beta) */
  double lam;         /* lambda the loss uses (re-adjusted in region mode) */
  int cx, cy;         /* region centre (row, column) */
  int r0, r1, c0, c1; /* region box rows [r0, r1), columns [c0, c1) */
};

/* The reference's rand_bbox (utils.py): W = size[2] (rows), H = size[3] (columns),
 * cut_rat = sqrt(1 - lam), cut_w = trunc(W*cut_rat), cut_h = trunc(H*cut_rat), box
 * clip(cx -/+ cut_w//2, 0, W) x clip(cy -/+ cut_h//2, 0, H). Returns the re-adjusted lambda
 * 1 - area/(rows*cols). */
double unmix_rand_bbox(int rows, int cols, double lam, int cx, int cy, int *r0, int *r1, int *c0, int *c1);

/* Draws the mode and lambda for one iteration from the stream (seed, UNMIX_RNG_MIX, 0,
 * step, rank) as the reference does; rows/cols are the image size. */
void unmix_mix_draw(const struct unmix_mix_config *cfg, uint64_t seed, int64_t step, int rank, int rows, int cols,
                    struct unmix_mix_draw *out);
/* Region draw for a further crop pair given a previous (possibly re-adjusted) lambda: the
 * ImageNet SwAV chaining (FIDELITY §3.8). Consumes cx, cy from the same stream state. */
void unmix_mix_draw_region_chained(struct unmix_rng *rng, double lam_in, int rows, int cols, struct unmix_mix_draw *out);

/* y = mixture of x (n, rows, cols, c) per `d`. y must not alias x. */
void unmix_mix_apply(const struct unmix_backend *be, const struct unmix_mix_draw *d, int n, int rows, int cols, int c,
                     const float *x, float *y);
