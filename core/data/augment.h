/* Augmentation with torchvision/Pillow semantics, split in two halves:
 *  - draw: a pure function of a Philox stream and the input size that fixes every random
 *    decision of one view (crop box, flip, jitter order and factors, grayscale, blur radius);
 *  - apply: deterministic uint8 HWC in -> float32 HWC normalised out, using those params.
 * A view spec lists the ops in torchvision's order; params are a flat, fixed-size struct
 * (POD, GPU-copyable), so a CUDA port can apply the same params and tests can apply
 * fixed ones. Every pixel equals torchvision's PIL pipeline exactly (FIDELITY §7). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "core/data/pil.h"

/* Random-stream purpose of the per-sample, per-view augmentation draws (index = sample,
 * view); values: core/util/rng.h. */
enum unmix_augment_rng_purpose { UNMIX_RNG_AUGMENT = 3 };
#include "core/kernels/philox.h"

/* Geometry: first in most torchvision pipelines we reproduce; the W-MSE codebase's CIFAR
 * pipeline puts its colour ops before it (`pre_geom_ops`). */
enum unmix_geom {
  UNMIX_GEOM_NONE = 0,     /* the image as is (ToTensor only) */
  UNMIX_GEOM_RRC,          /* RandomResizedCrop(size, scale, ratio), bilinear or `filter` */
  UNMIX_GEOM_RESIZE_CROP   /* Resize(resize) (shorter side) then CenterCrop(size) */
};
/* Ops after the geometry, in list order. */
enum unmix_aug_op {
  UNMIX_AUG_HFLIP = 1,     /* RandomHorizontalFlip(p): flip iff u < p */
  UNMIX_AUG_JITTER,        /* RandomApply([ColorJitter(b, c, s, h)], p): apply iff p >= u */
  UNMIX_AUG_GRAY,          /* RandomGrayscale(p): iff u < p, 3 equal channels */
  UNMIX_AUG_BLUR           /* RandomApply([GaussianBlur(sigma ~ U[lo, hi])], p) (MoCo v2, PIL) */
};
#define UNMIX_MAX_AUG_OPS 6

struct unmix_aug_op_spec {
  enum unmix_aug_op op;
  float p;
  float brightness, contrast, saturation, hue; /* JITTER: torchvision's arguments (0 = off) */
  float sigma_min, sigma_max;                  /* BLUR */
};

struct unmix_view_spec {
  enum unmix_geom geom;
  int size;                       /* RRC output side / CenterCrop side */
  int resize;                     /* RESIZE_CROP: Resize(int) shorter side */
  float scale_min, scale_max;     /* RRC scale */
  float ratio_min, ratio_max;     /* RRC aspect ratio */
  enum unmix_pil_filter filter;   /* resize interpolation (0 = bilinear, torchvision's default) */
  int pre_geom_ops;               /* ops[0 .. pre_geom_ops) run (and draw) before the geometry */
  int n_ops;
  struct unmix_aug_op_spec ops[UNMIX_MAX_AUG_OPS];
};

/* Pixel steps applied after the geometry, in order. */
enum unmix_pix_step_kind {
  UNMIX_STEP_BRIGHTNESS = 1,
  UNMIX_STEP_CONTRAST,
  UNMIX_STEP_SATURATION,
  UNMIX_STEP_HUE,        /* value = hue factor in [-0.5, 0.5] */
  UNMIX_STEP_GRAY,
  UNMIX_STEP_BLUR        /* value = PIL radius (sigma) */
};
#define UNMIX_MAX_PIX_STEPS 8

/* Every random decision of one view. The geometry is "crop (src_*) of the input, resized to
 * (rs_w, rs_h), then the window (win_*, out_*) of that" - RRC and Resize+CenterCrop are both
 * of this form. The flip is applied last: it commutes exactly with every pixel step (all are
 * per pixel, the contrast mean is flip-invariant, the blur kernel is symmetric). */
struct unmix_view_params {
  int src_x, src_y, src_w, src_h;
  int rs_w, rs_h;
  int win_x, win_y, out_w, out_h;
  int flip;
  int filter;     /* enum unmix_pil_filter of the resize */
  int pre_steps;  /* steps[0 .. pre_steps) apply to the whole input before the geometry */
  int n_steps;
  struct {
    int kind;     /* enum unmix_pix_step_kind */
    float value;
  } steps[UNMIX_MAX_PIX_STEPS];
};

/* ToTensor + Normalize: out = ((float)v / 255 - mean) / std, in float32 like torchvision,
 * tabulated per channel. */
struct unmix_norm {
  float mean[3], std[3];
  float lut[3][256];
};
void unmix_norm_init(struct unmix_norm *n, const float mean[3], const float std[3]);

/* The output size of a view for an input of (in_h, in_w) (RRC/RESIZE_CROP: size x size). */
void unmix_view_out_size(const struct unmix_view_spec *spec, int in_h, int in_w, int *out_h, int *out_w);

/* torchvision RandomResizedCrop.get_params, all draws from `rng` (FIDELITY §7). Returns the box
 * (i = top, j = left, h, w). */
void unmix_rrc_get_params(struct unmix_rng *rng, int height, int width, float scale_min, float scale_max,
                          float ratio_min, float ratio_max, int *i, int *j, int *h, int *w);

/* Draws the params of one view of an (in_h, in_w) image. Pure: same stream state and size
 * give the same params. */
void unmix_view_draw(const struct unmix_view_spec *spec, struct unmix_rng *rng, int in_h, int in_w,
                     struct unmix_view_params *p);

/* Applies params to `in` (in_h, in_w, c), writing (out_h, out_w, c) floats to out.
 * `s` is per-thread scratch; `work` must hold out_h*out_w*c bytes. */
void unmix_view_apply(const struct unmix_view_params *p, const uint8_t *in, int in_h, int in_w, int c,
                      const struct unmix_norm *norm, float *out, uint8_t *work, struct unmix_pil_scratch *s);
/* The uint8 image before ToTensor (flip included): what torchvision's PIL image holds. */
void unmix_view_apply_u8(const struct unmix_view_params *p, const uint8_t *in, int in_h, int in_w, int c,
                         uint8_t *out, struct unmix_pil_scratch *s);
