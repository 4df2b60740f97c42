/* Pillow-exact uint8 image operations: the arithmetic of Pillow's C code (Resample.c,
 * Blend.c, Convert.c, BoxBlur.c) and of torchvision's PIL path, re-implemented so that
 * our outputs equal PIL's bit for bit (tests/test_data_augment.c proves it against
 * fixtures written by the real torchvision + Pillow). Images are HWC uint8, contiguous,
 * with c = 1 (PIL mode "L") or c = 3 (mode "RGB"). FIDELITY §7 describes each formula. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* Growable scratch memory for the operations below (one per worker thread). */
struct unmix_pil_scratch {
  uint8_t *tmp;      /* resample intermediate, blur ping-pong buffer */
  size_t tmp_cap;
  uint8_t *tmp2;     /* transposed copies, blur running sums */
  size_t tmp2_cap;
  int32_t *coef;     /* fixed-point resample coefficients (horizontal then vertical) */
  size_t coef_cap;
  int *bounds;
  size_t bounds_cap;
  uint8_t *pre;      /* the whole input, for pixel steps that run before the geometry */
  size_t pre_cap;
};
void unmix_pil_scratch_free(struct unmix_pil_scratch *s);

/* Resampling filters (Image.Resampling): BILINEAR (support 1) and BICUBIC (support 2,
 * Keys' cubic with a = -0.5, as Resample.c). */
enum unmix_pil_filter { UNMIX_PIL_BILINEAR = 0, UNMIX_PIL_BICUBIC = 1 };

/* The same for any filter (the bilinear functions below are these with UNMIX_PIL_BILINEAR). */
int unmix_pil_ksize(enum unmix_pil_filter f, int in_size, int out_size);
int unmix_pil_coeffs(enum unmix_pil_filter f, int in_size, int out_size, int lo, int hi, int *bounds, int32_t *k);

/* Fixed-point bilinear coefficients of Pillow's precompute_coeffs + normalize_coeffs_8bpc
 * for output positions [lo, hi) of an in_size -> out_size resize. Writes, for each
 * position, bounds[2i] = first tap, bounds[2i+1] = number of taps, and `ksize`
 * coefficients k[i*ksize ...] (sum ~ 2^22). Returns ksize. Exposed for tests. */
int unmix_pil_bilinear_ksize(int in_size, int out_size);
int unmix_pil_bilinear_coeffs(int in_size, int out_size, int lo, int hi, int *bounds, int32_t *k);

/* Pass order of the two-pass resize. Pillow >= 13 runs the vertical pass first when the
 * height shrinks by more than twice the width's shrink; Pillow <= 12 always runs the
 * horizontal pass first. The results differ by 1 in a few pixels of such resizes (never
 * for CIFAR-size RRC, which only upsamples). Process-wide; default PILLOW13. */
enum unmix_pil_resize_order { UNMIX_PIL_ORDER_PILLOW13 = 0, UNMIX_PIL_ORDER_LEGACY };
void unmix_pil_set_resize_order(enum unmix_pil_resize_order order);
enum unmix_pil_resize_order unmix_pil_get_resize_order(void);

/* Horizontal resample passes with at least this many output pixels run as transpose +
 * vectorised column pass + transpose (same bytes, faster on ImageNet-size images). Default
 * 4096; exposed so tests can force either path. */
void unmix_pil_set_transpose_min(size_t pixels);

/* PIL `img.crop(box).resize((rw, rh), BILINEAR)` followed by a crop of the window
 * (wx, wy, ow, oh) of the resized image (zero outside it, as torchvision's CenterCrop pads).
 *   in:  (in_h, in_w, c); box (sx, sy, sw, sh) inside it
 *   out: (oh, ow, c)
 * Only the window's pixels are computed; each equals PIL's pixel exactly. */
void unmix_pil_resize_window(const uint8_t *in, int in_h, int in_w, int c, int sx, int sy, int sw, int sh,
                             int rw, int rh, int wx, int wy, int ow, int oh, uint8_t *out,
                             struct unmix_pil_scratch *s);
/* The same with another resampling filter (`resize(..., BICUBIC)`; bicubic taps can leave
 * [0, 255] and are clipped as Pillow's clip8 does). */
void unmix_pil_resize_window_filter(enum unmix_pil_filter f, const uint8_t *in, int in_h, int in_w, int c, int sx,
                                    int sy, int sw, int sh, int rw, int rh, int wx, int wy, int ow, int oh,
                                    uint8_t *out, struct unmix_pil_scratch *s);

/* ImageEnhance.Brightness(img).enhance(f): blend with black. n = h*w*c values, in place. */
void unmix_pil_brightness(uint8_t *img, size_t n, float f);
/* ImageEnhance.Contrast: blend with the constant int(mean(L(img)) + 0.5). npix = h*w. */
void unmix_pil_contrast(uint8_t *img, size_t npix, int c, float f);
/* ImageEnhance.Color (saturation): blend with L(img) replicated. c = 1 is the identity. */
void unmix_pil_saturation(uint8_t *img, size_t npix, int c, float f);
/* torchvision adjust_hue on PIL: RGB -> HSV (Pillow), H += shift (mod 256), HSV -> RGB.
 * c = 1 is the identity (torchvision returns L images unchanged). */
void unmix_pil_hue(uint8_t *img, size_t npix, int c, uint8_t shift);
/* The hue shift torchvision applies for hue_factor h: uint8(int32(h * 255)). */
uint8_t unmix_pil_hue_shift(float hue_factor);
/* Pillow's RGB -> HSV and HSV -> RGB of one pixel (exposed for the exhaustive test). */
void unmix_pil_rgb2hsv(const uint8_t rgb[3], uint8_t hsv[3]);
void unmix_pil_hsv2rgb(const uint8_t hsv[3], uint8_t rgb[3]);
/* Pillow >= 7 luma: (19595 R + 38470 G + 7471 B + 32768) >> 16. */
static inline uint8_t unmix_pil_luma(uint8_t r, uint8_t g, uint8_t b) {
  return (uint8_t)((19595u * r + 38470u * g + 7471u * b + 0x8000u) >> 16);
}
/* torchvision rgb_to_grayscale(img, 3): every channel = luma. c = 1 is the identity. */
void unmix_pil_grayscale(uint8_t *img, size_t npix, int c);
/* Generic PIL blend of `img` against a degenerate image d (same size): Image.blend(d, img, f). */
void unmix_pil_blend(uint8_t *img, const uint8_t *d, size_t n, float f);

/* ImageFilter.GaussianBlur(radius): 3 extended-box passes horizontally then 3 vertically,
 * edges replicated (BoxBlur.c). In place on (h, w, c). */
void unmix_pil_gaussian_blur(uint8_t *img, int h, int w, int c, float radius, struct unmix_pil_scratch *s);
/* The extended box radius Pillow uses for a Gaussian of `radius` with `passes` passes. */
float unmix_pil_gaussian_box_radius(float radius, int passes);

/* torchvision CenterCrop offset of a crop of size `crop` from `size`: negative (padding)
 * when crop > size. */
int unmix_center_crop_offset(int size, int crop);
/* torchvision Resize(int): the (rh, rw) that makes the shorter side `size`. */
void unmix_resize_short_side(int h, int w, int size, int *rh, int *rw);
