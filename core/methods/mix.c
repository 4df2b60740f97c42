/* Un-Mix draws, the reference's box arithmetic and application (see mix.h). */
#include "core/methods/mix.h"

#include <math.h>

#include "core/util/rng.h"

static int clip(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

double unmix_rand_bbox(int rows, int cols, double lam, int cx, int cy, int *r0, int *r1, int *c0, int *c1) {
  double cut_rat = sqrt(1.0 - lam);
  int cut_w = (int)(rows * cut_rat); /* np.int: truncation toward zero */
  int cut_h = (int)(cols * cut_rat);
  *r0 = clip(cx - cut_w / 2, 0, rows);
  *r1 = clip(cx + cut_w / 2, 0, rows);
  *c0 = clip(cy - cut_h / 2, 0, cols);
  *c1 = clip(cy + cut_h / 2, 0, cols);
  return 1.0 - (double)(*r1 - *r0) * (double)(*c1 - *c0) / ((double)rows * (double)cols);
}

void unmix_mix_draw_region_chained(struct unmix_rng *rng, double lam_in, int rows, int cols, struct unmix_mix_draw *out) {
  out->global = false;
  out->cx = (int)unmix_rng_below(rng, (uint32_t)rows);
  out->cy = (int)unmix_rng_below(rng, (uint32_t)cols);
  out->lam = unmix_rand_bbox(rows, cols, lam_in, out->cx, out->cy, &out->r0, &out->r1, &out->c0, &out->c1);
}

void unmix_mix_draw(const struct unmix_mix_config *cfg, uint64_t seed, int64_t step, int rank, int rows, int cols,
                    struct unmix_mix_draw *out) {
  struct unmix_rng rng = unmix_rng_make(seed, UNMIX_RNG_MIX, (uint32_t)(step >> 32), (uint32_t)step, (uint32_t)rank);
  out->r = unmix_rng_uniform_double(&rng);
  out->lam_drawn = unmix_rng_beta(&rng, cfg->beta, cfg->beta);
  out->cx = out->cy = 0;
  out->r0 = out->r1 = out->c0 = out->c1 = 0;
  if (out->r < cfg->prob) {
    out->global = true;
    out->lam = out->lam_drawn;
  } else {
    unmix_mix_draw_region_chained(&rng, out->lam_drawn, rows, cols, out);
  }
}

void unmix_mix_apply(const struct unmix_backend *be, const struct unmix_mix_draw *d, int n, int rows, int cols, int c,
                     const float *x, float *y) {
  if (d->global) be->blend_flipped(n, (int64_t)rows * cols * c, (float)d->lam, x, y);
  else be->paste_box_flipped(n, rows, cols, c, d->r0, d->r1, d->c0, d->c1, x, y);
}
