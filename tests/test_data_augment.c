/* Augmentation vs the real torchvision + Pillow (tests/golden/augment.bin, written by
 * tests/golden/gen/gen_augment.py) and distribution tests of the random draws.
 * Exactness: every uint8 transform (resize, brightness/contrast/saturation/hue, grayscale,
 * Gaussian blur, Resize+CenterCrop, whole pipelines) must equal PIL's bytes EXACTLY - we
 * mirror Pillow's integer/float arithmetic, so no tolerance is needed - and ToTensor +
 * Normalize must equal torchvision's float32 values exactly (same float32 ops). The W-MSE
 * recipe (bicubic, colour before the crop) has its own fixture, augment_wmse.bin, and so has
 * the composed swav-imagenet multi-crop recipe, augment_swav_imagenet.bin. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/data/augment.h"
#include "core/data/recipe.h"
#include "core/util/rng.h"
#include "tests/support/testutil.h"

static struct unmix_fixture *g_fx;

static struct unmix_fixture *fx(void) {
  if (!g_fx) {
    char path[1024];
    g_fx = unmix_fixture_load(unmix_test_src_path("tests/golden/augment.bin", path, sizeof path));
    /* meta/versions = Pillow major, minor, torchvision major, minor of the generator */
    const struct unmix_fixture_entry *v = unmix_fixture_find(g_fx, "meta/versions");
    ck_assert_msg(v && v->numel == 4, "augment.bin lacks meta/versions");
    int pillow_major = ((const int32_t *)v->data)[0];
    unmix_pil_set_resize_order(pillow_major >= 13 ? UNMIX_PIL_ORDER_PILLOW13 : UNMIX_PIL_ORDER_LEGACY);
  }
  return g_fx;
}

static const struct unmix_fixture_entry *entry(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const struct unmix_fixture_entry *entry(const char *fmt, ...) {
  char name[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  const struct unmix_fixture_entry *e = unmix_fixture_find(fx(), name);
  ck_assert_msg(e != NULL, "fixture entry %s missing (regenerate tests/golden/augment.bin)", name);
  return e;
}
static const struct unmix_fixture_entry *entry_opt(const char *name) { return unmix_fixture_find(fx(), name); }

/* An HWC uint8 image entry (h, w, c). */
static const uint8_t *image(const struct unmix_fixture_entry *e, int *h, int *w, int *c) {
  ck_assert_uint_eq(e->dtype, 4);
  ck_assert_uint_eq(e->ndim, 3);
  *h = (int)e->shape[0];
  *w = (int)e->shape[1];
  *c = (int)e->shape[2];
  return e->data;
}

static const uint8_t *input_image(const struct unmix_fixture_entry *name_e, int *h, int *w, int *c) {
  char key[2] = {(char)((const int32_t *)name_e->data)[0], 0};
  return image(entry("img/%s", key), h, w, c);
}

/* Exact byte comparison with a useful message. */
static void expect_bytes(const char *what, const uint8_t *got, const uint8_t *want, size_t n, int w, int c) {
  for (size_t i = 0; i < n; i++) {
    if (got[i] != want[i]) {
      size_t px = i / c;
      ck_abort_msg("%s: byte %zu (y %zu, x %zu, ch %zu) is %d, PIL has %d", what, i, px / w, px % w, i % c, got[i],
                   want[i]);
    }
  }
}

START_TEST(test_resize_matches_pil) {
  /* both implementations of the horizontal pass: direct, and transposed (_i = 1) */
  unmix_pil_set_transpose_min(_i ? 0 : SIZE_MAX);
  int n = 0;
  for (;; n++) {
    char name[64];
    snprintf(name, sizeof name, "resize/%d/params", n);
    if (!entry_opt(name)) break;
    const int32_t *p = entry("resize/%d/params", n)->data;
    int ih, iw, ic, oh, ow, oc;
    const uint8_t *in = input_image(entry("resize/%d/img", n), &ih, &iw, &ic);
    const uint8_t *want = image(entry("resize/%d/out", n), &oh, &ow, &oc);
    ck_assert_int_eq(oh, p[5]);
    ck_assert_int_eq(ow, p[4]);
    uint8_t *got = malloc((size_t)oh * ow * oc);
    struct unmix_pil_scratch s = {0};
    unmix_pil_resize_window(in, ih, iw, ic, p[0], p[1], p[2], p[3], p[4], p[5], 0, 0, ow, oh, got, &s);
    char what[64];
    snprintf(what, sizeof what, "resize case %d", n);
    expect_bytes(what, got, want, (size_t)oh * ow * oc, ow, oc);
    /* a sub-window of the resized image equals the same window of the full result */
    if (ow > 4 && oh > 4) {
      uint8_t *sub = malloc((size_t)(oh - 3) * (ow - 4) * oc);
      unmix_pil_resize_window(in, ih, iw, ic, p[0], p[1], p[2], p[3], p[4], p[5], 3, 2, ow - 4, oh - 3, sub, &s);
      for (int y = 0; y < oh - 3; y++)
        ck_assert_msg(!memcmp(sub + (size_t)y * (ow - 4) * oc, want + ((size_t)(y + 2) * ow + 3) * oc, (size_t)(ow - 4) * oc),
                      "resize case %d: window row %d differs", n, y);
      free(sub);
    }
    unmix_pil_scratch_free(&s);
    free(got);
  }
  ck_assert_int_ge(n, 10);
  unmix_pil_set_transpose_min(4096);
}
END_TEST

/* Large resizes (beyond what the small fixtures hold) give the same bytes on both paths of the
 * horizontal pass and through windows, for both pass orders. */
START_TEST(test_resize_paths_agree_on_large_images) {
  const int H = 211, W = 307;
  uint8_t *in = malloc((size_t)H * W * 3), *a = malloc(240 * 240 * 3), *b = malloc(240 * 240 * 3);
  struct unmix_rng r = unmix_rng_make(9, UNMIX_RNG_TEST, 0, 0, 0);
  for (int i = 0; i < H * W * 3; i++) in[i] = (uint8_t)unmix_rng_below(&r, 256);
  struct unmix_pil_scratch s = {0};
  static const int cases[][6] = {{0, 0, 307, 211, 224, 224}, {13, 7, 250, 190, 224, 224}, {40, 5, 60, 200, 224, 100},
                                 {2, 3, 300, 30, 224, 224}, {0, 0, 307, 211, 240, 163}, {100, 50, 31, 29, 224, 224}};
  for (int k = 0; k < 6; k++) {
    const int *c = cases[k];
    unmix_pil_set_transpose_min(SIZE_MAX);
    unmix_pil_resize_window(in, H, W, 3, c[0], c[1], c[2], c[3], c[4], c[5], 0, 0, c[4], c[5], a, &s);
    unmix_pil_set_transpose_min(0);
    unmix_pil_resize_window(in, H, W, 3, c[0], c[1], c[2], c[3], c[4], c[5], 0, 0, c[4], c[5], b, &s);
    ck_assert_msg(!memcmp(a, b, (size_t)c[4] * c[5] * 3), "resize case %d: transposed pass differs", k);
    /* a centred window with padding equals the same crop of the full result */
    int ow = c[4] - 17, oh = c[5] + 6, wx = 9, wy = -3;
    unmix_pil_resize_window(in, H, W, 3, c[0], c[1], c[2], c[3], c[4], c[5], wx, wy, ow, oh, b, &s);
    for (int y = 0; y < oh; y++)
      for (int x = 0; x < ow; x++)
        for (int ch = 0; ch < 3; ch++) {
          int sy = y + wy, sx = x + wx;
          int want = sy >= 0 && sy < c[5] && sx >= 0 && sx < c[4] ? a[((size_t)sy * c[4] + sx) * 3 + ch] : 0;
          ck_assert_msg(b[((size_t)y * ow + x) * 3 + ch] == want, "case %d window pixel (%d,%d,%d)", k, y, x, ch);
        }
  }
  unmix_pil_set_transpose_min(4096);
  unmix_pil_scratch_free(&s);
  free(in);
  free(a);
  free(b);
}
END_TEST

START_TEST(test_resize_centercrop_matches_pil) {
  int n = 0;
  for (;; n++) {
    char name[64];
    snprintf(name, sizeof name, "evalcrop/%d/params", n);
    if (!entry_opt(name)) break;
    const int32_t *p = entry("evalcrop/%d/params", n)->data; /* size, crop, resized w, resized h */
    int ih, iw, ic, oh, ow, oc;
    const uint8_t *in = input_image(entry("evalcrop/%d/img", n), &ih, &iw, &ic);
    const uint8_t *want = image(entry("evalcrop/%d/out", n), &oh, &ow, &oc);
    struct unmix_view_spec spec = {.geom = UNMIX_GEOM_RESIZE_CROP, .size = p[1], .resize = p[0]};
    struct unmix_view_params vp;
    struct unmix_rng r = unmix_rng_make(1, UNMIX_RNG_TEST, 0, 0, 0);
    unmix_view_draw(&spec, &r, ih, iw, &vp);
    ck_assert_int_eq(vp.rs_w, p[2]);
    ck_assert_int_eq(vp.rs_h, p[3]);
    ck_assert_int_eq(vp.out_w, ow);
    ck_assert_int_eq(vp.out_h, oh);
    uint8_t *got = malloc((size_t)oh * ow * oc);
    struct unmix_pil_scratch s = {0};
    unmix_view_apply_u8(&vp, in, ih, iw, ic, got, &s);
    char what[64];
    snprintf(what, sizeof what, "Resize(%d)+CenterCrop(%d) case %d", p[0], p[1], n);
    expect_bytes(what, got, want, (size_t)oh * ow * oc, ow, oc);
    unmix_pil_scratch_free(&s);
    free(got);
  }
  ck_assert_int_ge(n, 6);
}
END_TEST

static void apply_step(int kind, float v, uint8_t *img, int h, int w, int c, struct unmix_pil_scratch *s) {
  size_t npix = (size_t)h * w;
  switch (kind) {
    case UNMIX_STEP_BRIGHTNESS: unmix_pil_brightness(img, npix * c, v); break;
    case UNMIX_STEP_CONTRAST: unmix_pil_contrast(img, npix, c, v); break;
    case UNMIX_STEP_SATURATION: unmix_pil_saturation(img, npix, c, v); break;
    case UNMIX_STEP_HUE: unmix_pil_hue(img, npix, c, unmix_pil_hue_shift(v)); break;
    case UNMIX_STEP_GRAY: unmix_pil_grayscale(img, npix, c); break;
    case UNMIX_STEP_BLUR: unmix_pil_gaussian_blur(img, h, w, c, v, s); break;
    default: ck_abort_msg("unknown op kind %d", kind);
  }
}

START_TEST(test_color_ops_match_pil) {
  int h, w, c, hl, wl, cl;
  const uint8_t *img = image(entry("color/img"), &h, &w, &c);
  const uint8_t *img_l = image(entry("color/img_l"), &hl, &wl, &cl);
  struct unmix_pil_scratch s = {0};
  uint8_t *buf = malloc((size_t)h * w * c), *buf_l = malloc((size_t)hl * wl * cl);
  int n = 0;
  for (;; n++) {
    char name[64];
    snprintf(name, sizeof name, "op/%d/kind", n);
    if (!entry_opt(name)) break;
    int kind = ((const int32_t *)entry("op/%d/kind", n)->data)[0];
    float v = ((const float *)entry("op/%d/value", n)->data)[0];
    memcpy(buf, img, (size_t)h * w * c);
    apply_step(kind, v, buf, h, w, c, &s);
    char what[96];
    snprintf(what, sizeof what, "op %d (kind %d, value %.7g) RGB", n, kind, v);
    int oh, ow, oc;
    expect_bytes(what, buf, image(entry("op/%d/out", n), &oh, &ow, &oc), (size_t)h * w * c, w, c);
    snprintf(name, sizeof name, "op/%d/out_l", n);
    if (entry_opt(name)) {
      memcpy(buf_l, img_l, (size_t)hl * wl * cl);
      apply_step(kind, v, buf_l, hl, wl, cl, &s);
      snprintf(what, sizeof what, "op %d (kind %d, value %.7g) L", n, kind, v);
      expect_bytes(what, buf_l, image(entry_opt(name), &oh, &ow, &oc), (size_t)hl * wl * cl, wl, cl);
    }
  }
  ck_assert_int_ge(n, 20);
  free(buf);
  free(buf_l);
  unmix_pil_scratch_free(&s);
}
END_TEST

START_TEST(test_gaussian_blur_matches_pil) {
  int h, w, c, hl, wl, cl, oh, ow, oc;
  const uint8_t *img = image(entry("blur/img"), &h, &w, &c);
  const uint8_t *img_l = image(entry("color/img_l"), &hl, &wl, &cl);
  const struct unmix_fixture_entry *radii = entry("blur/radii");
  struct unmix_pil_scratch s = {0};
  uint8_t *buf = malloc((size_t)h * w * c), *buf_l = malloc((size_t)hl * wl * cl);
  for (size_t n = 0; n < radii->numel; n++) {
    float r = ((const float *)radii->data)[n];
    char what[64];
    memcpy(buf, img, (size_t)h * w * c);
    unmix_pil_gaussian_blur(buf, h, w, c, r, &s);
    snprintf(what, sizeof what, "GaussianBlur(%.5g) RGB", r);
    expect_bytes(what, buf, image(entry("blur/%zu/out", n), &oh, &ow, &oc), (size_t)h * w * c, w, c);
    memcpy(buf_l, img_l, (size_t)hl * wl * cl);
    unmix_pil_gaussian_blur(buf_l, hl, wl, cl, r, &s);
    snprintf(what, sizeof what, "GaussianBlur(%.5g) L", r);
    expect_bytes(what, buf_l, image(entry("blur/%zu/out_l", n), &oh, &ow, &oc), (size_t)hl * wl * cl, wl, cl);
  }
  /* radius larger than the image (2 x 3) */
  const uint8_t *tiny = image(entry("blur/tiny"), &h, &w, &c);
  memcpy(buf, tiny, (size_t)h * w * c);
  unmix_pil_gaussian_blur(buf, h, w, c, 2.0f, &s);
  expect_bytes("GaussianBlur(2) of a 2x3 image", buf, image(entry("blur/tiny_out"), &oh, &ow, &oc), (size_t)h * w * c, w, c);
  free(buf);
  free(buf_l);
  unmix_pil_scratch_free(&s);
}
END_TEST

/* Every 24-bit colour through one per-pixel op; CRC32 of the result vs Pillow's. */
START_TEST(test_exhaustive_colours_match_pil) {
  const struct unmix_fixture_entry *kinds = entry("exhaustive/kind");
  const float *vals = entry("exhaustive/value")->data;
  const uint32_t *crcs = entry("exhaustive/crc")->data;
  const size_t npix = (size_t)1 << 24;
  uint8_t *img = malloc(npix * 3);
  ck_assert_ptr_nonnull(img);
  for (size_t n = 0; n < kinds->numel; n++) {
    for (size_t i = 0; i < npix; i++) {
      img[3 * i] = (uint8_t)(i >> 16);
      img[3 * i + 1] = (uint8_t)(i >> 8);
      img[3 * i + 2] = (uint8_t)i;
    }
    int kind = ((const int32_t *)kinds->data)[n];
    apply_step(kind, vals[n], img, 4096, 4096, 3, NULL);
    uint32_t crc = (uint32_t)crc32(0L, img, (uInt)(npix * 3));
    ck_assert_msg(crc == crcs[n], "all 2^24 colours, op kind %d value %.7g: CRC %08x, Pillow %08x", kind, vals[n], crc,
                  crcs[n]);
  }
  free(img);
}
END_TEST

/* The tabulated hue shift equals the direct Convert.c round trip for every colour and shifts
 * not in the Pillow fixture. */
START_TEST(test_hue_tables_equal_direct_conversion) {
  static const uint8_t shifts[] = {1, 77, 200};
  uint8_t px[3 * 256];
  for (int s = 0; s < 3; s++)
    for (int rg = 0; rg < 65536; rg++) {
      for (int b = 0; b < 256; b++) {
        px[3 * b] = (uint8_t)(rg >> 8);
        px[3 * b + 1] = (uint8_t)rg;
        px[3 * b + 2] = (uint8_t)b;
      }
      unmix_pil_hue(px, 256, 3, shifts[s]);
      for (int b = 0; b < 256; b++) {
        uint8_t in[3] = {(uint8_t)(rg >> 8), (uint8_t)rg, (uint8_t)b}, hsv[3], want[3];
        unmix_pil_rgb2hsv(in, hsv);
        hsv[0] = (uint8_t)(hsv[0] + shifts[s]);
        unmix_pil_hsv2rgb(hsv, want);
        if (memcmp(want, px + 3 * b, 3))
          ck_abort_msg("hue shift %d of (%d,%d,%d): (%d,%d,%d), direct (%d,%d,%d)", shifts[s], in[0], in[1], in[2],
                       px[3 * b], px[3 * b + 1], px[3 * b + 2], want[0], want[1], want[2]);
      }
    }
}
END_TEST

START_TEST(test_to_tensor_normalize_exact) {
  const float *mean = entry("norm/mean")->data, *std = entry("norm/std")->data;
  struct unmix_norm norm;
  unmix_norm_init(&norm, mean, std);
  const float *all = entry("norm/all")->data; /* (16, 16, 3): value v at pixel v */
  for (int v = 0; v < 256; v++)
    for (int ch = 0; ch < 3; ch++)
      ck_assert_msg(norm.lut[ch][v] == all[v * 3 + ch], "Normalize(ToTensor(%d)) ch %d: %.9g vs torchvision %.9g", v, ch,
                    norm.lut[ch][v], all[v * 3 + ch]);
  int h, w, c;
  const uint8_t *img = image(entry("norm/img"), &h, &w, &c);
  float *out = malloc(sizeof(float) * h * w * c);
  uint8_t *work = malloc((size_t)h * w * c);
  struct unmix_view_spec spec = {.geom = UNMIX_GEOM_NONE};
  struct unmix_view_params p;
  struct unmix_rng r = unmix_rng_make(1, UNMIX_RNG_TEST, 0, 0, 0);
  unmix_view_draw(&spec, &r, h, w, &p);
  struct unmix_pil_scratch s = {0};
  unmix_view_apply(&p, img, h, w, c, &norm, out, work, &s);
  ck_assert(unmix_close("ToTensor+Normalize", out, entry("norm/out")->data, (size_t)h * w * c, 0.0, 0.0));
  free(out);
  free(work);
  unmix_pil_scratch_free(&s);
}
END_TEST

START_TEST(test_pipelines_match_torchvision) {
  const float *all = entry("norm/all")->data;
  int n = 0;
  for (;; n++) {
    char name[64];
    snprintf(name, sizeof name, "pipe/%d/ints", n);
    if (!entry_opt(name)) break;
    const int32_t *iv = entry("pipe/%d/ints", n)->data; /* sx sy sw sh out flip gray order[4] */
    const float *fv = entry("pipe/%d/floats", n)->data; /* b c s h radius */
    int kind = ((const int32_t *)entry("pipe/%d/kind", n)->data)[0];
    int ih, iw, ic, oh, ow, oc;
    const uint8_t *in = input_image(entry("pipe/%d/img", n), &ih, &iw, &ic);
    const uint8_t *want = image(entry("pipe/%d/out", n), &oh, &ow, &oc);
    struct unmix_view_params p = {0};
    p.src_x = iv[0], p.src_y = iv[1], p.src_w = iv[2], p.src_h = iv[3];
    p.rs_w = p.rs_h = p.out_w = p.out_h = iv[4];
    p.flip = iv[5];
    /* torchvision's op order per recipe; the flip position does not matter (applied last) */
    int jitter = iv[7] >= 0;
#define PUSH(k, v) (p.steps[p.n_steps].kind = (k), p.steps[p.n_steps].value = (v), p.n_steps++)
#define PUSH_JITTER() \
  for (int q = 0; jitter && q < 4; q++) PUSH(UNMIX_STEP_BRIGHTNESS + iv[7 + q], fv[iv[7 + q]])
    if (kind == 1) { /* v1: gray -> jitter */
      if (iv[6]) PUSH(UNMIX_STEP_GRAY, 0.0f);
      PUSH_JITTER();
    } else {
      PUSH_JITTER();
      if (iv[6]) PUSH(UNMIX_STEP_GRAY, 0.0f);
      if (fv[4] > 0) PUSH(UNMIX_STEP_BLUR, fv[4]);
    }
#undef PUSH_JITTER
#undef PUSH
    struct unmix_pil_scratch s = {0};
    uint8_t *got = malloc((size_t)oh * ow * oc);
    unmix_view_apply_u8(&p, in, ih, iw, ic, got, &s);
    char what[64];
    snprintf(what, sizeof what, "pipeline %d (uint8)", n);
    expect_bytes(what, got, want, (size_t)oh * ow * oc, ow, oc);
    /* the float output: torchvision's normalised values of those bytes */
    struct unmix_norm norm;
    unmix_norm_init(&norm, entry("norm/mean")->data, entry("norm/std")->data);
    float *out = malloc(sizeof(float) * oh * ow * oc), *ref = malloc(sizeof(float) * oh * ow * oc);
    for (int i = 0; i < oh * ow * oc; i++) ref[i] = all[want[i] * 3 + i % 3];
    unmix_view_apply(&p, in, ih, iw, ic, &norm, out, got, &s);
    snprintf(what, sizeof what, "pipeline %d (float)", n);
    ck_assert(unmix_close(what, out, ref, (size_t)oh * ow * oc, 0.0, 0.0));
    free(out);
    free(ref);
    free(got);
    unmix_pil_scratch_free(&s);
  }
  ck_assert_int_ge(n, 6);
}
END_TEST

/* ---- distributions ----------------------------------------------------------------------- */

/* Two-sample chi-square of histograms a and b (equal totals); bins where a+b < 10 are pooled.
 * Returns the statistic; *dof = number of bins - 1. */
static double chi2_two_sample(const int32_t *a, const int32_t *b, int n, int *dof) {
  double chi = 0, pa = 0, pb = 0;
  int bins = 0;
  for (int i = 0; i < n; i++) {
    if (a[i] + b[i] < 10) {
      pa += a[i];
      pb += b[i];
      continue;
    }
    chi += (double)(a[i] - b[i]) * (a[i] - b[i]) / (a[i] + b[i]);
    bins++;
  }
  if (pa + pb > 0) {
    chi += (pa - pb) * (pa - pb) / (pa + pb);
    bins++;
  }
  *dof = bins - 1;
  return chi;
}

/* Fails when chi2 exceeds dof + 7 sd (far beyond any chance deviation; a wrong sampler,
 * e.g. a linear instead of a log-uniform ratio, gives thousands of sd). */
static void expect_chi2(const char *what, double chi, int dof) {
  double limit = dof + 7.0 * sqrt(2.0 * dof);
  ck_assert_msg(dof > 0 && chi <= limit, "%s: chi2 = %.1f with %d dof (limit %.1f)", what, chi, dof, limit);
}

START_TEST(test_rrc_size_histogram_matches_torchvision) {
  static const char *cases[] = {"c32_008", "c32_014", "r17x40_02"};
  for (int k = 0; k < 3; k++) {
    const int32_t *shape = entry("rrc/%s/shape", cases[k])->data;
    const float *scale = entry("rrc/%s/scale", cases[k])->data;
    const struct unmix_fixture_entry *he = entry("rrc/%s/hist", cases[k]);
    int H = shape[0], W = shape[1], N = shape[2];
    int32_t *ours = calloc(he->numel, sizeof(int32_t));
    for (int t = 0; t < N; t++) {
      struct unmix_rng r = unmix_rng_make(77, UNMIX_RNG_AUGMENT, 0, (uint32_t)t, (uint32_t)k);
      int i, j, h, w;
      unmix_rrc_get_params(&r, H, W, scale[0], scale[1], 3.0f / 4.0f, 4.0f / 3.0f, &i, &j, &h, &w);
      ck_assert(h > 0 && h <= H && w > 0 && w <= W && i >= 0 && j >= 0 && i + h <= H && j + w <= W);
      ours[h * (W + 1) + w]++;
    }
    int dof;
    double chi = chi2_two_sample(ours, he->data, (int)he->numel, &dof);
    char what[96];
    snprintf(what, sizeof what, "RandomResizedCrop (h, w) histogram %s vs torchvision", cases[k]);
    expect_chi2(what, chi, dof);
    free(ours);
  }
}
END_TEST

START_TEST(test_rrc_position_uniform) {
  /* Given (h, w), the offset i is uniform on 0..H-h: check i - (H-h)/2 has mean 0 and the
   * variance of a discrete uniform, pooled over draws. */
  const int H = 40, W = 33, N = 100000;
  double s = 0, s2 = 0, v = 0;
  for (int t = 0; t < N; t++) {
    struct unmix_rng r = unmix_rng_make(5, UNMIX_RNG_AUGMENT, 1, (uint32_t)t, 0);
    int i, j, h, w;
    unmix_rrc_get_params(&r, H, W, 0.08f, 1.0f, 0.75f, 4.0f / 3.0f, &i, &j, &h, &w);
    double m = (H - h) / 2.0, d = i - m;
    s += d;
    s2 += d * d;
    v += ((double)(H - h + 1) * (H - h + 1) - 1) / 12.0;
  }
  ck_assert_msg(fabs(s / N) < 0.05, "mean offset %.4f", s / N);
  ck_assert_msg(fabs(s2 / v - 1.0) < 0.02, "offset variance ratio %.4f", s2 / v);
}
END_TEST

START_TEST(test_rrc_fallback) {
  /* A scale range no crop can satisfy forces the central fallback (torchvision's rules). */
  struct unmix_rng r = unmix_rng_make(1, UNMIX_RNG_TEST, 0, 0, 0);
  int i, j, h, w;
  unmix_rrc_get_params(&r, 10, 100, 5.0f, 6.0f, 0.75f, 4.0f / 3.0f, &i, &j, &h, &w); /* W/H > 4/3 */
  ck_assert_int_eq(h, 10);
  ck_assert_int_eq(w, 13); /* round(10 * 4/3) */
  ck_assert_int_eq(i, 0);
  ck_assert_int_eq(j, (100 - 13) / 2);
  unmix_rrc_get_params(&r, 100, 10, 5.0f, 6.0f, 0.75f, 4.0f / 3.0f, &i, &j, &h, &w); /* W/H < 3/4 */
  ck_assert_int_eq(w, 10);
  ck_assert_int_eq(h, 13); /* round(10 / 0.75) = round(13.33) */
  ck_assert_int_eq(i, (100 - 13) / 2);
  unmix_rrc_get_params(&r, 30, 32, 5.0f, 6.0f, 0.75f, 4.0f / 3.0f, &i, &j, &h, &w); /* whole image */
  ck_assert(i == 0 && j == 0 && h == 30 && w == 32);
}
END_TEST

START_TEST(test_view_draw_rates_and_ranges) {
  struct unmix_recipe rec;
  ck_assert_int_eq(unmix_recipe_get("moco-cifar", &rec), UNMIX_OK);
  const struct unmix_view_spec *spec = &rec.views[0];
  const int N = 100000;
  int flips = 0, grays = 0, jitters = 0, perm_count[24] = {0};
  double fmin[4] = {9, 9, 9, 9}, fmax[4] = {-9, -9, -9, -9}, fsum[4] = {0};
  for (int t = 0; t < N; t++) {
    struct unmix_rng r = unmix_rng_make(11, UNMIX_RNG_AUGMENT, 3, (uint32_t)t, 0);
    struct unmix_view_params p;
    unmix_view_draw(spec, &r, 32, 32, &p);
    flips += p.flip;
    int js = 0, order[4], no = 0;
    for (int k = 0; k < p.n_steps; k++) {
      int kind = p.steps[k].kind;
      if (kind == UNMIX_STEP_GRAY) {
        grays++;
        ck_assert_msg(js == 0 || js == 4, "grayscale inside the jitter block");
      } else {
        int f = kind - UNMIX_STEP_BRIGHTNESS;
        ck_assert(f >= 0 && f < 4);
        order[no++] = f;
        double v = p.steps[k].value;
        fmin[f] = fmin[f] < v ? fmin[f] : v;
        fmax[f] = fmax[f] > v ? fmax[f] : v;
        fsum[f] += v;
        js++;
      }
    }
    ck_assert(js == 0 || js == 4);
    if (js == 4) {
      jitters++;
      /* Lehmer code of the order -> 0..23 */
      int code = 0, used[4] = {0};
      for (int q = 0; q < 4; q++) {
        int smaller = 0;
        for (int u = 0; u < order[q]; u++) smaller += !used[u];
        used[order[q]] = 1;
        code = code * (4 - q) + smaller;
      }
      perm_count[code]++;
    }
  }
  /* binomial rates, 6 sd */
#define RATE(cnt, n, p) ck_assert_msg(fabs((cnt) - (n) * (p)) < 6 * sqrt((n) * (p) * (1 - (p))), #cnt " = %d of %d, want p = %g", (cnt), (n), (p))
  RATE(flips, N, 0.5);
  RATE(grays, N, 0.2);
  RATE(jitters, N, 0.8);
#undef RATE
  /* factor ranges: brightness/contrast/saturation U[0.6, 1.4], hue U[-0.1, 0.1] */
  const double lo[4] = {0.6, 0.6, 0.6, -0.1}, hi[4] = {1.4, 1.4, 1.4, 0.1};
  for (int f = 0; f < 4; f++) {
    ck_assert_msg(fmin[f] >= lo[f] && fmax[f] <= hi[f], "factor %d in [%g, %g]", f, fmin[f], fmax[f]);
    ck_assert_msg(fmin[f] < lo[f] + 0.001 && fmax[f] > hi[f] - 0.001, "factor %d does not span its range", f);
    double mean = fsum[f] / jitters, want = (lo[f] + hi[f]) / 2, sd = (hi[f] - lo[f]) / sqrt(12.0 * jitters);
    ck_assert_msg(fabs(mean - want) < 6 * sd, "factor %d mean %.5f want %.5f", f, mean, want);
  }
  /* op order: uniform over the 24 permutations */
  double chi = 0, e = jitters / 24.0;
  for (int k = 0; k < 24; k++) chi += (perm_count[k] - e) * (perm_count[k] - e) / e;
  expect_chi2("ColorJitter order over 24 permutations", chi, 23);
}
END_TEST

START_TEST(test_blur_draws) {
  struct unmix_recipe rec;
  ck_assert_int_eq(unmix_recipe_get("mocov2-imagenet", &rec), UNMIX_OK);
  const int N = 40000;
  int blurs = 0;
  double smin = 9, smax = -9, ssum = 0;
  for (int t = 0; t < N; t++) {
    struct unmix_rng r = unmix_rng_make(12, UNMIX_RNG_AUGMENT, 0, (uint32_t)t, 1);
    struct unmix_view_params p;
    unmix_view_draw(&rec.views[1], &r, 300, 400, &p);
    ck_assert_int_eq(p.out_w, 224);
    for (int k = 0; k < p.n_steps; k++)
      if (p.steps[k].kind == UNMIX_STEP_BLUR) {
        double v = p.steps[k].value;
        blurs++;
        ssum += v;
        smin = v < smin ? v : smin;
        smax = v > smax ? v : smax;
        ck_assert_msg(k == p.n_steps - 1, "blur must come after jitter and grayscale");
      }
  }
  ck_assert_msg(fabs(blurs - N * 0.5) < 6 * sqrt(N * 0.25), "blur rate %d / %d", blurs, N);
  ck_assert(smin >= 0.1 && smax <= 2.0 && smin < 0.11 && smax > 1.99);
  ck_assert_double_eq_tol(ssum / blurs, 1.05, 6 * 1.9 / sqrt(12.0 * blurs));
}
END_TEST

START_TEST(test_draw_is_pure) {
  struct unmix_recipe rec;
  ck_assert_int_eq(unmix_recipe_get("mocov2-imagenet", &rec), UNMIX_OK);
  for (int t = 0; t < 200; t++) {
    struct unmix_rng a = unmix_rng_make(3, UNMIX_RNG_AUGMENT, 2, (uint32_t)t, 0);
    struct unmix_rng b = unmix_rng_make(3, UNMIX_RNG_AUGMENT, 2, (uint32_t)t, 0);
    struct unmix_view_params pa, pb;
    unmix_view_draw(&rec.views[0], &a, 375, 500, &pa);
    unmix_view_draw(&rec.views[0], &b, 375, 500, &pb);
    ck_assert(!memcmp(&pa, &pb, sizeof pa));
  }
}
END_TEST

/* ---- the W-MSE codebase's CIFAR recipe (SimCLR / BYOL): BICUBIC crop, colour before it ----- */
/* Fixture tests/golden/augment_wmse.bin (tests/golden/gen/gen_augment_wmse.py). */

static struct unmix_fixture *g_wfx;

static const struct unmix_fixture_entry *wentry(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const struct unmix_fixture_entry *wentry(const char *fmt, ...) {
  if (!g_wfx) {
    char path[1024];
    g_wfx = unmix_fixture_load(unmix_test_src_path("tests/golden/augment_wmse.bin", path, sizeof path));
    const struct unmix_fixture_entry *v = unmix_fixture_find(g_wfx, "meta/versions");
    ck_assert_msg(v && v->numel == 4, "augment_wmse.bin lacks meta/versions");
    unmix_pil_set_resize_order(((const int32_t *)v->data)[0] >= 13 ? UNMIX_PIL_ORDER_PILLOW13 : UNMIX_PIL_ORDER_LEGACY);
  }
  char name[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  return unmix_fixture_find(g_wfx, name);
}

static const uint8_t *winput(const struct unmix_fixture_entry *name_e, int *h, int *w, int *c) {
  char key[2] = {(char)((const int32_t *)name_e->data)[0], 0};
  const struct unmix_fixture_entry *e = wentry("img/%s", key);
  ck_assert_msg(e != NULL, "augment_wmse.bin: img/%s missing", key);
  return image(e, h, w, c);
}

START_TEST(test_bicubic_resize_matches_pil) {
  unmix_pil_set_transpose_min(_i ? 0 : SIZE_MAX);
  int n = 0;
  for (; wentry("resize/%d/params", n); n++) {
    const int32_t *p = wentry("resize/%d/params", n)->data;
    int ih, iw, ic, oh, ow, oc;
    const uint8_t *in = winput(wentry("resize/%d/img", n), &ih, &iw, &ic);
    const uint8_t *want = image(wentry("resize/%d/out", n), &oh, &ow, &oc);
    ck_assert_int_eq(oh, p[5]);
    ck_assert_int_eq(ow, p[4]);
    uint8_t *got = malloc((size_t)oh * ow * oc);
    struct unmix_pil_scratch s = {0};
    unmix_pil_resize_window_filter(UNMIX_PIL_BICUBIC, in, ih, iw, ic, p[0], p[1], p[2], p[3], p[4], p[5], 0, 0, ow, oh,
                                   got, &s);
    char what[64];
    snprintf(what, sizeof what, "bicubic resize case %d", n);
    expect_bytes(what, got, want, (size_t)oh * ow * oc, ow, oc);
    if (ow > 4 && oh > 4) { /* a window of the resized image equals the same window of the whole */
      uint8_t *sub = malloc((size_t)(oh - 3) * (ow - 4) * oc);
      unmix_pil_resize_window_filter(UNMIX_PIL_BICUBIC, in, ih, iw, ic, p[0], p[1], p[2], p[3], p[4], p[5], 3, 2, ow - 4,
                                     oh - 3, sub, &s);
      for (int y = 0; y < oh - 3; y++)
        ck_assert_msg(!memcmp(sub + (size_t)y * (ow - 4) * oc, want + ((size_t)(y + 2) * ow + 3) * oc, (size_t)(ow - 4) * oc),
                      "bicubic resize case %d: window row %d differs", n, y);
      free(sub);
    }
    unmix_pil_scratch_free(&s);
    free(got);
  }
  ck_assert_int_ge(n, 12);
  unmix_pil_set_transpose_min(4096);
}
END_TEST

/* Whole pipelines with fixed params in the W-MSE order, bytes and normalised floats; the
 * mean/std come from the wmse-cifar10 / wmse-cifar100 recipes, so their statistics are
 * checked against torchvision's Normalize too. */
START_TEST(test_wmse_pipelines_match_torchvision) {
  int n = 0;
  for (; wentry("pipe/%d/ints", n); n++) {
    const int32_t *iv = wentry("pipe/%d/ints", n)->data; /* sx sy sw sh flip gray order[4] */
    const float *fv = wentry("pipe/%d/floats", n)->data; /* b c s h */
    int stats = ((const int32_t *)wentry("pipe/%d/stats", n)->data)[0];
    int ih, iw, ic, oh, ow, oc;
    const struct unmix_fixture_entry *img_name = unmix_fixture_find(g_wfx, "img/b");
    ck_assert(img_name != NULL);
    const uint8_t *in = image(img_name, &ih, &iw, &ic);
    const uint8_t *want = image(wentry("pipe/%d/out", n), &oh, &ow, &oc);
    struct unmix_view_params p = {0};
    p.filter = UNMIX_PIL_BICUBIC;
    for (int q = 0; iv[6] >= 0 && q < 4; q++) {
      p.steps[p.n_steps].kind = UNMIX_STEP_BRIGHTNESS + iv[6 + q];
      p.steps[p.n_steps].value = fv[iv[6 + q]];
      p.n_steps++;
    }
    if (iv[5]) p.steps[p.n_steps++].kind = UNMIX_STEP_GRAY;
    p.pre_steps = p.n_steps;
    p.src_x = iv[0], p.src_y = iv[1], p.src_w = iv[2], p.src_h = iv[3];
    p.rs_w = p.rs_h = p.out_w = p.out_h = 32;
    p.flip = iv[4];
    struct unmix_pil_scratch s = {0};
    uint8_t *got = malloc((size_t)oh * ow * oc);
    unmix_view_apply_u8(&p, in, ih, iw, ic, got, &s);
    char what[64];
    snprintf(what, sizeof what, "W-MSE pipeline %d (uint8)", n);
    expect_bytes(what, got, want, (size_t)oh * ow * oc, ow, oc);
    struct unmix_recipe rec;
    ck_assert_int_eq(unmix_recipe_get(stats == 10 ? "wmse-cifar10" : "wmse-cifar100", &rec), UNMIX_OK);
    const char *tag = stats == 10 ? "c10" : "c100";
    ck_assert_close("recipe mean", rec.mean, wentry("norm/%s/mean", tag)->data, 3, 0.0, 0.0);
    ck_assert_close("recipe std", rec.std, wentry("norm/%s/std", tag)->data, 3, 0.0, 0.0);
    struct unmix_norm norm;
    unmix_norm_init(&norm, rec.mean, rec.std);
    const float *all = wentry("norm/%s/all", tag)->data;
    float *out = malloc(sizeof(float) * oh * ow * oc), *ref = malloc(sizeof(float) * oh * ow * oc);
    for (int i = 0; i < oh * ow * oc; i++) ref[i] = all[want[i] * 3 + i % 3];
    unmix_view_apply(&p, in, ih, iw, ic, &norm, out, got, &s);
    snprintf(what, sizeof what, "W-MSE pipeline %d (float)", n);
    ck_assert(unmix_close(what, out, ref, (size_t)oh * ow * oc, 0.0, 0.0));
    free(out);
    free(ref);
    free(got);
    unmix_pil_scratch_free(&s);
  }
  ck_assert_int_ge(n, 6);
}
END_TEST

/* The recipe's draws: jitter p 0.8, grayscale p 0.1, both before the crop (pre_steps covers
 * every colour step), bicubic, RRC area within scale (0.2, 1), flip p 0.5. */
START_TEST(test_wmse_recipe_draws) {
  struct unmix_recipe rec;
  ck_assert_int_eq(unmix_recipe_get("wmse-cifar100", &rec), UNMIX_OK);
  ck_assert_int_eq(rec.n_views, 2);
  ck_assert_int_eq(rec.eval.geom, UNMIX_GEOM_NONE);
  const int N = 100000;
  int flips = 0, grays = 0, jitters = 0;
  double amin = 9, amax = 0;
  for (int t = 0; t < N; t++) {
    struct unmix_rng r = unmix_rng_make(5, UNMIX_RNG_AUGMENT, 1, (uint32_t)t, t & 1);
    struct unmix_view_params p;
    unmix_view_draw(&rec.views[t & 1], &r, 32, 32, &p);
    ck_assert_int_eq(p.filter, UNMIX_PIL_BICUBIC);
    ck_assert_int_eq(p.pre_steps, p.n_steps);
    ck_assert_int_eq(p.out_w, 32);
    flips += p.flip;
    int js = 0;
    for (int k = 0; k < p.n_steps; k++) {
      if (p.steps[k].kind == UNMIX_STEP_GRAY) {
        grays++;
        ck_assert_msg(k == p.n_steps - 1, "grayscale must follow the jitter");
      } else {
        js++;
      }
    }
    ck_assert(js == 0 || js == 4);
    jitters += js == 4;
    double area = (double)p.src_w * p.src_h / 1024.0;
    amin = area < amin ? area : amin;
    amax = area > amax ? area : amax;
  }
#define RATE(cnt, n, p) ck_assert_msg(fabs((cnt) - (n) * (p)) < 6 * sqrt((n) * (p) * (1 - (p))), #cnt " = %d of %d, want p = %g", (cnt), (n), (p))
  RATE(flips, N, 0.5);
  RATE(grays, N, 0.1);
  RATE(jitters, N, 0.8);
#undef RATE
  /* rounding of w and h lets the area stray a little beyond the scale range */
  ck_assert_msg(amin > 0.17 && amin < 0.22 && amax == 1.0, "crop areas in [%g, %g]", amin, amax);
}
END_TEST

/* ---- the composed swav-imagenet recipe (tests/golden/augment_swav_imagenet.bin) ---------- */
static struct unmix_fixture *g_sfx;

static const struct unmix_fixture_entry *sentry(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const struct unmix_fixture_entry *sentry(const char *fmt, ...) {
  if (!g_sfx) {
    char path[1024];
    g_sfx = unmix_fixture_load(unmix_test_src_path("tests/golden/augment_swav_imagenet.bin", path, sizeof path));
    const struct unmix_fixture_entry *v = unmix_fixture_find(g_sfx, "meta/versions");
    ck_assert_msg(v && v->numel == 4, "augment_swav_imagenet.bin lacks meta/versions");
    unmix_pil_set_resize_order(((const int32_t *)v->data)[0] >= 13 ? UNMIX_PIL_ORDER_PILLOW13
                                                                   : UNMIX_PIL_ORDER_LEGACY);
  }
  char name[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  return unmix_fixture_find(g_sfx, name);
}

/* The params of view `spec` under the fixture's draws (torchvision's decisions for one crop):
 * our recipe's op list, in its order, consumes them, so a wrong op order, size, scale range,
 * probability or jitter strength in the recipe fails here, not only a wrong pixel op. */
static void swav_forced_params(const struct unmix_view_spec *spec, const int32_t *iv, const float *fv,
                               const float *consts, struct unmix_view_params *p) {
  memset(p, 0, sizeof *p);
  ck_assert_int_eq(spec->geom, UNMIX_GEOM_RRC);
  ck_assert_int_eq(spec->pre_geom_ops, 0);
  ck_assert_int_eq(spec->filter, UNMIX_PIL_BILINEAR);
  ck_assert(spec->ratio_min == 3.0f / 4.0f && spec->ratio_max == 4.0f / 3.0f);
  p->src_x = iv[1], p->src_y = iv[2], p->src_w = iv[3], p->src_h = iv[4];
  p->rs_w = p->rs_h = p->out_w = p->out_h = spec->size;
  int seen = 0;
  for (int k = 0; k < spec->n_ops; k++) {
    const struct unmix_aug_op_spec *op = &spec->ops[k];
    switch (op->op) {
      case UNMIX_AUG_HFLIP:
        ck_assert_float_eq(op->p, consts[0]);
        p->flip = iv[5];
        break;
      case UNMIX_AUG_JITTER: {
        ck_assert_float_eq(op->p, consts[1]);
        const float strength[4] = {op->brightness, op->contrast, op->saturation, op->hue};
        for (int q = 0; q < 4; q++) ck_assert_float_eq(strength[q], consts[4 + q]);
        if (!iv[6]) break;
        for (int q = 0; q < 4; q++) {
          const int f = iv[7 + q];
          const float lo = f == 3 ? -strength[3] : fmaxf(0.0f, 1.0f - strength[f]), hi = f == 3 ? strength[3] : 1.0f + strength[f];
          ck_assert_msg(fv[f] >= lo && fv[f] <= hi, "jitter factor %d = %g outside [%g, %g]", f, fv[f], lo, hi);
          p->steps[p->n_steps].kind = UNMIX_STEP_BRIGHTNESS + f;
          p->steps[p->n_steps++].value = fv[f];
        }
        break;
      }
      case UNMIX_AUG_GRAY:
        ck_assert_float_eq(op->p, consts[2]);
        if (iv[11]) p->steps[p->n_steps++].kind = UNMIX_STEP_GRAY;
        break;
      case UNMIX_AUG_BLUR:
        ck_assert_float_eq(op->p, consts[3]);
        ck_assert(op->sigma_min == consts[8] && op->sigma_max == consts[9]);
        if (!iv[12]) break;
        ck_assert(fv[4] >= op->sigma_min && fv[4] <= op->sigma_max);
        p->steps[p->n_steps].kind = UNMIX_STEP_BLUR;
        p->steps[p->n_steps++].value = fv[4];
        break;
    }
    seen |= 1 << op->op;
  }
  ck_assert_msg(seen == (1 << UNMIX_AUG_HFLIP | 1 << UNMIX_AUG_JITTER | 1 << UNMIX_AUG_GRAY | 1 << UNMIX_AUG_BLUR),
                "the swav-imagenet view lacks an op of multicropdataset.py (ops mask %#x)", seen);
}

/* Every crop of the multi-crop list (2 x 24 px, scale .14-1, + 4 x 12 px, scale .05-.14) of
 * three images, drawn by torchvision and applied by torchvision/Pillow in multicropdataset.py's
 * order: our recipe (data.crops from the fixture's groups) applied with the same draws gives
 * the same bytes and the same normalised floats, exactly. */
START_TEST(test_swav_imagenet_recipe_matches_torchvision) {
  const struct unmix_fixture_entry *ge = sentry("groups/ints");
  ck_assert_msg(ge != NULL, "tests/golden/augment_swav_imagenet.bin missing");
  const int32_t *gi = ge->data;
  const float *gs = sentry("groups/scale")->data, *consts = sentry("consts")->data;
  struct unmix_data_config dc;
  memset(&dc, 0, sizeof dc);
  snprintf(dc.recipe, sizeof dc.recipe, "swav-imagenet");
  dc.n_crop_groups = (int)ge->shape[0];
  for (int g = 0; g < dc.n_crop_groups; g++) {
    dc.nmb_crops[g] = gi[2 * g];
    dc.size_crops[g] = gi[2 * g + 1];
    dc.min_scale[g] = gs[2 * g];
    dc.max_scale[g] = gs[2 * g + 1];
  }
  struct unmix_recipe rec;
  ck_assert_msg(unmix_recipe_from_config(&dc, &rec) == UNMIX_OK, "%s", unmix_error_message());
  ck_assert_int_eq(rec.n_views, 6);
  ck_assert_close("recipe mean", rec.mean, sentry("norm/mean")->data, 3, 0.0, 0.0);
  ck_assert_close("recipe std", rec.std, sentry("norm/std")->data, 3, 0.0, 0.0);
  struct unmix_norm norm;
  unmix_norm_init(&norm, rec.mean, rec.std);
  int q = 0, flips = 0, jitters = 0, grays = 0, blurs = 0;
  for (; sentry("crop/%d/ints", q); q++) {
    const int32_t *iv = sentry("crop/%d/ints", q)->data; /* img sx sy sw sh flip jitter order[4] gray blur */
    const float *fv = sentry("crop/%d/floats", q)->data;  /* b c s h radius */
    const int v = q % rec.n_views, g = v < gi[0] ? 0 : 1;
    const struct unmix_view_spec *spec = &rec.views[v];
    ck_assert_int_eq(spec->size, gi[2 * g + 1]);
    ck_assert(spec->scale_min == gs[2 * g] && spec->scale_max == gs[2 * g + 1]);
    int ih, iw, ic, oh, ow, oc;
    const uint8_t *in = image(sentry("img/%d", iv[0]), &ih, &iw, &ic);
    const uint8_t *want = image(sentry("crop/%d/out", q), &oh, &ow, &oc);
    const float *want_f = sentry("crop/%d/float", q)->data;
    int sh, sw;
    unmix_view_out_size(spec, ih, iw, &sh, &sw);
    ck_assert(sh == oh && sw == ow && oc == 3);
    struct unmix_view_params p;
    swav_forced_params(spec, iv, fv, consts, &p);
    struct unmix_pil_scratch s = {0};
    uint8_t *got = malloc((size_t)oh * ow * oc);
    float *out = malloc(sizeof(float) * oh * ow * oc);
    unmix_view_apply_u8(&p, in, ih, iw, ic, got, &s);
    char what[96];
    snprintf(what, sizeof what, "swav-imagenet crop %d (view %d of image %d, uint8)", q, v, iv[0]);
    expect_bytes(what, got, want, (size_t)oh * ow * oc, ow, oc);
    unmix_view_apply(&p, in, ih, iw, ic, &norm, out, got, &s);
    snprintf(what, sizeof what, "swav-imagenet crop %d (view %d of image %d, float)", q, v, iv[0]);
    ck_assert(unmix_close(what, out, want_f, (size_t)oh * ow * oc, 0.0, 0.0));
    flips += iv[5], jitters += iv[6], grays += iv[11], blurs += iv[12];
    free(got);
    free(out);
    unmix_pil_scratch_free(&s);
  }
  ck_assert_int_eq(q, 18);
  /* the draws cover both branches of every random op */
  ck_assert(flips > 0 && flips < q && jitters > 0 && jitters < q && grays > 0 && grays < q && blurs > 0 && blurs < q);
  unmix_fixture_free(g_sfx);
  g_sfx = NULL;
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("data_augment");
  TCase *tc = tcase_create("pil_exact");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, test_resize_matches_pil, 0, 2);
  tcase_add_test(tc, test_resize_paths_agree_on_large_images);
  tcase_add_test(tc, test_resize_centercrop_matches_pil);
  tcase_add_test(tc, test_color_ops_match_pil);
  tcase_add_test(tc, test_gaussian_blur_matches_pil);
  tcase_add_test(tc, test_exhaustive_colours_match_pil);
  tcase_add_test(tc, test_hue_tables_equal_direct_conversion);
  tcase_add_test(tc, test_to_tensor_normalize_exact);
  tcase_add_test(tc, test_pipelines_match_torchvision);
  suite_add_tcase(s, tc);
  TCase *td = tcase_create("distributions");
  tcase_set_timeout(td, 120);
  tcase_add_test(td, test_rrc_size_histogram_matches_torchvision);
  tcase_add_test(td, test_rrc_position_uniform);
  tcase_add_test(td, test_rrc_fallback);
  tcase_add_test(td, test_view_draw_rates_and_ranges);
  tcase_add_test(td, test_blur_draws);
  tcase_add_test(td, test_draw_is_pure);
  suite_add_tcase(s, td);
  TCase *tw = tcase_create("wmse");
  tcase_set_timeout(tw, 120);
  tcase_add_loop_test(tw, test_bicubic_resize_matches_pil, 0, 2);
  tcase_add_test(tw, test_wmse_pipelines_match_torchvision);
  tcase_add_test(tw, test_wmse_recipe_draws);
  suite_add_tcase(s, tw);
  TCase *tsw = tcase_create("swav_imagenet");
  tcase_set_timeout(tsw, 120);
  tcase_add_test(tsw, test_swav_imagenet_recipe_matches_torchvision);
  suite_add_tcase(s, tsw);
  return s;
}

UNMIX_TEST_MAIN(suite)
