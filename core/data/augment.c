/* Augmentation: drawing the params of a view from a Philox stream (torchvision's decisions,
 * in torchvision's order) and applying them with Pillow's arithmetic (core/data/pil.c). */
#include "core/data/augment.h"
/* no FMA contraction (see pil.c) */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#include <math.h>
#include <string.h>

#include "core/util/error.h"
#include "core/util/rng.h"

void unmix_norm_init(struct unmix_norm *n, const float mean[3], const float std[3]) {
  for (int c = 0; c < 3; c++) {
    n->mean[c] = mean[c];
    n->std[c] = std[c];
    /* ToTensor: byte.to(float32).div(255); Normalize: sub_(mean).div_(std), all float32 */
    for (int v = 0; v < 256; v++) n->lut[c][v] = ((float)v / 255.0f - mean[c]) / std[c];
  }
}

void unmix_view_out_size(const struct unmix_view_spec *spec, int in_h, int in_w, int *out_h, int *out_w) {
  if (spec->geom == UNMIX_GEOM_NONE) {
    *out_h = in_h;
    *out_w = in_w;
  } else {
    *out_h = spec->size;
    *out_w = spec->size;
  }
}

/* torch.empty(1).uniform_(lo, hi) on float32. */
static inline float uniform_f(struct unmix_rng *rng, float lo, float hi) {
  return lo + (hi - lo) * unmix_rng_uniform(rng);
}

void unmix_rrc_get_params(struct unmix_rng *rng, int height, int width, float scale_min, float scale_max,
                          float ratio_min, float ratio_max, int *pi, int *pj, int *ph, int *pw) {
  const double area = (double)height * (double)width;
  const float lr0 = logf(ratio_min), lr1 = logf(ratio_max); /* torch.log(torch.tensor(ratio)) */
  for (int attempt = 0; attempt < 10; attempt++) {
    double target_area = area * (double)uniform_f(rng, scale_min, scale_max);
    double aspect = (double)expf(uniform_f(rng, lr0, lr1));
    int w = (int)nearbyint(sqrt(target_area * aspect)); /* Python round(): half to even */
    int h = (int)nearbyint(sqrt(target_area / aspect));
    if (0 < w && w <= width && 0 < h && h <= height) {
      *pi = (int)unmix_rng_below(rng, (uint32_t)(height - h + 1));
      *pj = (int)unmix_rng_below(rng, (uint32_t)(width - w + 1));
      *ph = h;
      *pw = w;
      return;
    }
  }
  /* Fallback to a central crop. */
  double in_ratio = (double)width / (double)height;
  double rmin = ratio_min < ratio_max ? ratio_min : ratio_max;
  double rmax = ratio_min < ratio_max ? ratio_max : ratio_min;
  int w, h;
  if (in_ratio < rmin) {
    w = width;
    h = (int)nearbyint(w / rmin);
  } else if (in_ratio > rmax) {
    h = height;
    w = (int)nearbyint(h * rmax);
  } else {
    w = width;
    h = height;
  }
  *pi = (height - h) / 2;
  *pj = (width - w) / 2;
  *ph = h;
  *pw = w;
}

static void push_step(struct unmix_view_params *p, int kind, float value) {
  UNMIX_REQUIRE(p->n_steps < UNMIX_MAX_PIX_STEPS, "too many pixel steps in one view");
  p->steps[p->n_steps].kind = kind;
  p->steps[p->n_steps].value = value;
  p->n_steps++;
}

/* Draws op k of a view spec into p (torchvision's draws for that transform, in order). */
static void draw_op(const struct unmix_aug_op_spec *op, struct unmix_rng *rng, struct unmix_view_params *p) {
  switch (op->op) {
    case UNMIX_AUG_HFLIP:
      p->flip = unmix_rng_uniform(rng) < op->p;
      break;
    case UNMIX_AUG_JITTER: {
      if (!(op->p >= unmix_rng_uniform(rng))) break; /* RandomApply: skip iff p < u */
      int32_t order[4];
      unmix_rng_permutation(rng, order, 4);
      float v[4] = {0, 0, 0, 0};
      const float x[4] = {op->brightness, op->contrast, op->saturation, op->hue};
      for (int q = 0; q < 3; q++)
        if (x[q] > 0) v[q] = uniform_f(rng, x[q] < 1.0f ? 1.0f - x[q] : 0.0f, 1.0f + x[q]);
      if (x[3] > 0) v[3] = uniform_f(rng, -x[3], x[3]);
      for (int q = 0; q < 4; q++) {
        int f = order[q];
        if (x[f] > 0) push_step(p, UNMIX_STEP_BRIGHTNESS + f, v[f]);
      }
      break;
    }
    case UNMIX_AUG_GRAY:
      if (unmix_rng_uniform(rng) < op->p) push_step(p, UNMIX_STEP_GRAY, 0.0f);
      break;
    case UNMIX_AUG_BLUR:
      if (!(op->p >= unmix_rng_uniform(rng))) break;
      push_step(p, UNMIX_STEP_BLUR, uniform_f(rng, op->sigma_min, op->sigma_max));
      break;
  }
}

void unmix_view_draw(const struct unmix_view_spec *spec, struct unmix_rng *rng, int in_h, int in_w,
                     struct unmix_view_params *p) {
  memset(p, 0, sizeof *p);
  UNMIX_REQUIRE(spec->pre_geom_ops >= 0 && spec->pre_geom_ops <= spec->n_ops, "pre_geom_ops %d of %d ops",
                spec->pre_geom_ops, spec->n_ops);
  /* pixel steps before the geometry (colour only: the flip commutes and is applied last) */
  for (int k = 0; k < spec->pre_geom_ops; k++) {
    UNMIX_REQUIRE(spec->ops[k].op != UNMIX_AUG_BLUR, "blur before the geometry is not supported");
    draw_op(&spec->ops[k], rng, p);
  }
  p->pre_steps = p->n_steps;
  p->filter = spec->filter;
  p->src_w = in_w;
  p->src_h = in_h;
  switch (spec->geom) {
    case UNMIX_GEOM_NONE:
      p->rs_w = p->out_w = in_w;
      p->rs_h = p->out_h = in_h;
      break;
    case UNMIX_GEOM_RRC: {
      int i, j, h, w;
      unmix_rrc_get_params(rng, in_h, in_w, spec->scale_min, spec->scale_max, spec->ratio_min, spec->ratio_max, &i,
                           &j, &h, &w);
      p->src_x = j;
      p->src_y = i;
      p->src_w = w;
      p->src_h = h;
      p->rs_w = p->rs_h = p->out_w = p->out_h = spec->size;
      break;
    }
    case UNMIX_GEOM_RESIZE_CROP:
      unmix_resize_short_side(in_h, in_w, spec->resize, &p->rs_h, &p->rs_w);
      p->out_w = p->out_h = spec->size;
      p->win_x = unmix_center_crop_offset(p->rs_w, spec->size);
      p->win_y = unmix_center_crop_offset(p->rs_h, spec->size);
      break;
  }
  for (int k = spec->pre_geom_ops; k < spec->n_ops; k++) draw_op(&spec->ops[k], rng, p);
}

/* One pixel step on an (h, w, c) image in place. */
static void apply_step(int kind, float v, uint8_t *img, int h, int w, int c, struct unmix_pil_scratch *s) {
  const size_t npix = (size_t)w * h;
  switch (kind) {
    case UNMIX_STEP_BRIGHTNESS: unmix_pil_brightness(img, npix * c, v); break;
    case UNMIX_STEP_CONTRAST: unmix_pil_contrast(img, npix, c, v); break;
    case UNMIX_STEP_SATURATION: unmix_pil_saturation(img, npix, c, v); break;
    case UNMIX_STEP_HUE: unmix_pil_hue(img, npix, c, unmix_pil_hue_shift(v)); break;
    case UNMIX_STEP_GRAY: unmix_pil_grayscale(img, npix, c); break;
    case UNMIX_STEP_BLUR: unmix_pil_gaussian_blur(img, h, w, c, v, s); break;
    default: UNMIX_UNREACHABLE();
  }
}

/* Geometry and pixel steps, no flip; work = (out_h, out_w, c). */
static void apply_noflip(const struct unmix_view_params *p, const uint8_t *in, int in_h, int in_w, int c,
                         uint8_t *work, struct unmix_pil_scratch *s) {
  if (p->pre_steps > 0) {
    /* colour on the whole input first (its contrast mean is the whole image's) */
    size_t bytes = (size_t)in_h * in_w * c;
    if (s->pre_cap < bytes) {
      s->pre = unmix_xrealloc(s->pre, bytes);
      s->pre_cap = bytes;
    }
    memcpy(s->pre, in, bytes);
    for (int k = 0; k < p->pre_steps; k++) apply_step(p->steps[k].kind, p->steps[k].value, s->pre, in_h, in_w, c, s);
    in = s->pre;
  }
  unmix_pil_resize_window_filter((enum unmix_pil_filter)p->filter, in, in_h, in_w, c, p->src_x, p->src_y, p->src_w,
                                 p->src_h, p->rs_w, p->rs_h, p->win_x, p->win_y, p->out_w, p->out_h, work, s);
  for (int k = p->pre_steps; k < p->n_steps; k++)
    apply_step(p->steps[k].kind, p->steps[k].value, work, p->out_h, p->out_w, c, s);
}

void unmix_view_apply_u8(const struct unmix_view_params *p, const uint8_t *in, int in_h, int in_w, int c,
                         uint8_t *out, struct unmix_pil_scratch *s) {
  apply_noflip(p, in, in_h, in_w, c, out, s);
  if (!p->flip) return;
  for (int y = 0; y < p->out_h; y++) {
    uint8_t *row = out + (size_t)y * p->out_w * c;
    for (int a = 0, b = p->out_w - 1; a < b; a++, b--)
      for (int ch = 0; ch < c; ch++) {
        uint8_t t = row[a * c + ch];
        row[a * c + ch] = row[b * c + ch];
        row[b * c + ch] = t;
      }
  }
}

void unmix_view_apply(const struct unmix_view_params *p, const uint8_t *in, int in_h, int in_w, int c,
                      const struct unmix_norm *norm, float *out, uint8_t *work, struct unmix_pil_scratch *s) {
  apply_noflip(p, in, in_h, in_w, c, work, s);
  const int W = p->out_w;
  const float *l0 = norm->lut[0], *l1 = norm->lut[1], *l2 = norm->lut[2];
  for (int y = 0; y < p->out_h; y++) {
    const uint8_t *row = work + (size_t)y * W * c;
    float *o = out + (size_t)y * W * c;
    if (c == 3 && !p->flip) {
      for (int x = 0; x < W; x++) {
        o[3 * x] = l0[row[3 * x]];
        o[3 * x + 1] = l1[row[3 * x + 1]];
        o[3 * x + 2] = l2[row[3 * x + 2]];
      }
    } else if (c == 3) {
      for (int x = 0; x < W; x++) {
        const uint8_t *px = row + 3 * (W - 1 - x);
        o[3 * x] = l0[px[0]];
        o[3 * x + 1] = l1[px[1]];
        o[3 * x + 2] = l2[px[2]];
      }
    } else {
      for (int x = 0; x < W; x++) {
        const uint8_t *px = row + (size_t)(p->flip ? W - 1 - x : x) * c;
        for (int ch = 0; ch < c; ch++) o[x * c + ch] = norm->lut[ch][px[ch]];
      }
    }
  }
}
