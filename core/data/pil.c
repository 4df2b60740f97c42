/* Pillow-exact uint8 image operations (see pil.h). Every expression below keeps the
 * operand types of the Pillow source it mirrors (float vs double, truncation vs rounding),
 * because that is what makes the results bit-identical. a*b+c must stay two roundings, as in
 * Pillow's generic x86-64 wheels: GCC does not contract into FMA in ISO C mode (-std=c11),
 * clang is told so below. */
#include "core/data/pil.h"
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "core/util/error.h"

#define PIL_PRECISION_BITS 22 /* 32 - 8 - 2, Resample.c */

static void *grow(void *p, size_t *cap, size_t need) {
  if (need <= *cap) return p;
  size_t n = *cap ? *cap : 4096;
  while (n < need) n *= 2;
  *cap = n;
  return unmix_xrealloc(p, n);
}

void unmix_pil_scratch_free(struct unmix_pil_scratch *s) {
  free(s->tmp);
  free(s->tmp2);
  free(s->coef);
  free(s->bounds);
  free(s->pre);
  memset(s, 0, sizeof *s);
}

/* ---- resampling ----------------------------------------------------------------------- */

static inline double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

/* Resample.c's bicubic_filter (a = -0.5). */
static inline double bicubic_filter(double x) {
  const double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

static double filter_support(enum unmix_pil_filter f) { return f == UNMIX_PIL_BICUBIC ? 2.0 : 1.0; }

int unmix_pil_ksize(enum unmix_pil_filter f, int in_size, int out_size) {
  double filterscale = (double)in_size / out_size;
  if (filterscale < 1.0) filterscale = 1.0;
  return (int)ceil(filter_support(f) * filterscale) * 2 + 1;
}

int unmix_pil_bilinear_ksize(int in_size, int out_size) { return unmix_pil_ksize(UNMIX_PIL_BILINEAR, in_size, out_size); }

int unmix_pil_coeffs(enum unmix_pil_filter f, int in_size, int out_size, int lo, int hi, int *bounds, int32_t *kout) {
  double scale = (double)((float)in_size - 0.0f) / out_size; /* (double)(in1 - in0) / outSize */
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = filter_support(f) * filterscale;
  int ksize = (int)ceil(support) * 2 + 1;
  double kd[ksize];
  for (int xx = lo; xx < hi; xx++) {
    double center = 0.0 + (xx + 0.5) * scale;
    double ww = 0.0, ss = 1.0 / filterscale;
    int xmin = (int)(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = (int)(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    int x;
    for (x = 0; x < xmax; x++) {
      double t = (x + xmin - center + 0.5) * ss;
      double w = f == UNMIX_PIL_BICUBIC ? bicubic_filter(t) : bilinear_filter(t);
      kd[x] = w;
      ww += w;
    }
    for (x = 0; x < xmax; x++)
      if (ww != 0.0) kd[x] /= ww;
    for (; x < ksize; x++) kd[x] = 0;
    int32_t *k = kout + (size_t)(xx - lo) * ksize;
    for (x = 0; x < ksize; x++)
      k[x] = kd[x] < 0 ? (int32_t)(-0.5 + kd[x] * (1 << PIL_PRECISION_BITS))
                       : (int32_t)(0.5 + kd[x] * (1 << PIL_PRECISION_BITS));
    bounds[(xx - lo) * 2 + 0] = xmin;
    bounds[(xx - lo) * 2 + 1] = xmax;
  }
  return ksize;
}

int unmix_pil_bilinear_coeffs(int in_size, int out_size, int lo, int hi, int *bounds, int32_t *kout) {
  return unmix_pil_coeffs(UNMIX_PIL_BILINEAR, in_size, out_size, lo, hi, bounds, kout);
}

static inline uint8_t clip8(int32_t ss) {
  int32_t v = ss >> PIL_PRECISION_BITS; /* arithmetic shift, as clip8_lookups[in >> 22] */
  return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Horizontal pass: rows [0, nrows) of src (row stride sstride, first column = tap 0 of the
 * bounds) into dst (nrows, ncols, c) with row stride dstride. */
static void resample_h(const uint8_t *src, size_t sstride, int nrows, int c, int ncols, int ksize,
                       const int *bounds, const int32_t *kk, uint8_t *dst, size_t dstride) {
  for (int y = 0; y < nrows; y++) {
    const uint8_t *row = src + (size_t)y * sstride;
    uint8_t *o = dst + (size_t)y * dstride;
    if (c == 3) {
      for (int xx = 0; xx < ncols; xx++) {
        const int xmin = bounds[2 * xx], xmax = bounds[2 * xx + 1];
        const int32_t *k = kk + (size_t)xx * ksize;
        const uint8_t *p = row + (size_t)xmin * 3;
        int32_t s0 = 1 << (PIL_PRECISION_BITS - 1), s1 = s0, s2 = s0;
        for (int x = 0; x < xmax; x++) {
          s0 += p[3 * x + 0] * k[x];
          s1 += p[3 * x + 1] * k[x];
          s2 += p[3 * x + 2] * k[x];
        }
        o[3 * xx + 0] = clip8(s0);
        o[3 * xx + 1] = clip8(s1);
        o[3 * xx + 2] = clip8(s2);
      }
    } else {
      for (int xx = 0; xx < ncols; xx++) {
        const int xmin = bounds[2 * xx], xmax = bounds[2 * xx + 1];
        const int32_t *k = kk + (size_t)xx * ksize;
        for (int ch = 0; ch < c; ch++) {
          int32_t s = 1 << (PIL_PRECISION_BITS - 1);
          for (int x = 0; x < xmax; x++) s += row[(size_t)(xmin + x) * c + ch] * k[x];
          o[xx * c + ch] = clip8(s);
        }
      }
    }
  }
}

/* Vertical pass: output rows from src rows (row stride sstride, `n` values per row). The
 * accumulation runs along the row (acc[i] += src[y][i] * k[y]) so it vectorises; integer
 * sums are exact, so the order does not change the result. */
static void resample_v(const uint8_t *src, size_t sstride, int n, int nout, int ksize, const int *bounds,
                       const int32_t *kk, uint8_t *dst, size_t dstride) {
  enum { BLOCK = 256 };
  int32_t acc[BLOCK];
  for (int yy = 0; yy < nout; yy++) {
    const int ymin = bounds[2 * yy], ymax = bounds[2 * yy + 1];
    const int32_t *k = kk + (size_t)yy * ksize;
    uint8_t *o = dst + (size_t)yy * dstride;
    const uint8_t *base = src + (size_t)ymin * sstride;
    for (int i0 = 0; i0 < n; i0 += BLOCK) {
      const int m = n - i0 < BLOCK ? n - i0 : BLOCK;
      for (int i = 0; i < m; i++) acc[i] = 1 << (PIL_PRECISION_BITS - 1);
      for (int y = 0; y < ymax; y++) {
        const uint8_t *row = base + (size_t)y * sstride + i0;
        const int32_t ky = k[y];
        for (int i = 0; i < m; i++) acc[i] += row[i] * ky;
      }
      for (int i = 0; i < m; i++) o[i0 + i] = clip8(acc[i]);
    }
  }
}

/* (h, w, c) -> (w, h, c) with row strides (in bytes) on both sides. */
static void transpose_hwc(const uint8_t *in, size_t istride, uint8_t *out, size_t ostride, int h, int w, int c) {
  enum { T = 16 }; /* tiles keep both sides in cache */
  for (int y0 = 0; y0 < h; y0 += T)
    for (int x0 = 0; x0 < w; x0 += T) {
      int y1 = y0 + T < h ? y0 + T : h, x1 = x0 + T < w ? x0 + T : w;
      for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
          for (int ch = 0; ch < c; ch++) out[(size_t)x * ostride + (size_t)y * c + ch] = in[(size_t)y * istride + (size_t)x * c + ch];
    }
}

/* The horizontal pass computed as transpose -> vertical pass -> transpose: the vertical pass
 * vectorises across the row, which beats the short per-pixel tap loops on large images.
 * Same integer sums per output value, so the same bytes. */
static void resample_h_transposed(const uint8_t *src, size_t sstride, int nrows, int c, int ncols, int ksize,
                                  const int *bounds, const int32_t *kk, uint8_t *dst, size_t dstride,
                                  struct unmix_pil_scratch *s) {
  const int xlo = bounds[0], xhi = bounds[2 * (ncols - 1)] + bounds[2 * (ncols - 1) + 1], w = xhi - xlo;
  const size_t col = (size_t)nrows * c, a = (size_t)w * col, b = (size_t)ncols * col;
  s->tmp2 = grow(s->tmp2, &s->tmp2_cap, a + b + sizeof(int) * 2 * (size_t)ncols + sizeof(int));
  uint8_t *t1 = s->tmp2, *t2 = s->tmp2 + a;
  int *bs = (int *)(void *)(((uintptr_t)(t2 + b) + sizeof(int) - 1) & ~(uintptr_t)(sizeof(int) - 1));
  for (int i = 0; i < ncols; i++) {
    bs[2 * i] = bounds[2 * i] - xlo;
    bs[2 * i + 1] = bounds[2 * i + 1];
  }
  transpose_hwc(src + (size_t)xlo * c, sstride, t1, col, nrows, w, c); /* (w, nrows, c) */
  resample_v(t1, col, (int)col, ncols, ksize, bs, kk, t2, col);        /* (ncols, nrows, c) */
  transpose_hwc(t2, col, dst, dstride, ncols, nrows, c);               /* (nrows, ncols, c) */
}

/* Output pixels of a horizontal pass from which it runs transposed (a tuning knob; tests set it
 * to 0 and to SIZE_MAX to check that both paths give the same bytes). */
static size_t g_transpose_min = 4096;
void unmix_pil_set_transpose_min(size_t pixels) { g_transpose_min = pixels; }

/* Picks the horizontal pass implementation by size. */
static void resample_h_any(const uint8_t *src, size_t sstride, int nrows, int c, int ncols, int ksize,
                           const int *bounds, const int32_t *kk, uint8_t *dst, size_t dstride,
                           struct unmix_pil_scratch *s) {
  if ((size_t)nrows * ncols >= g_transpose_min) resample_h_transposed(src, sstride, nrows, c, ncols, ksize, bounds, kk, dst, dstride, s);
  else resample_h(src, sstride, nrows, c, ncols, ksize, bounds, kk, dst, dstride);
}

static enum unmix_pil_resize_order g_order = UNMIX_PIL_ORDER_PILLOW13;
void unmix_pil_set_resize_order(enum unmix_pil_resize_order order) { g_order = order; }
enum unmix_pil_resize_order unmix_pil_get_resize_order(void) { return g_order; }

void unmix_pil_resize_window(const uint8_t *in, int in_h, int in_w, int c, int sx, int sy, int sw, int sh,
                             int rw, int rh, int wx, int wy, int ow, int oh, uint8_t *out,
                             struct unmix_pil_scratch *s) {
  unmix_pil_resize_window_filter(UNMIX_PIL_BILINEAR, in, in_h, in_w, c, sx, sy, sw, sh, rw, rh, wx, wy, ow, oh, out, s);
}

void unmix_pil_resize_window_filter(enum unmix_pil_filter f, const uint8_t *in, int in_h, int in_w, int c, int sx,
                                    int sy, int sw, int sh, int rw, int rh, int wx, int wy, int ow, int oh,
                                    uint8_t *out, struct unmix_pil_scratch *s) {
  UNMIX_REQUIRE(sx >= 0 && sy >= 0 && sw > 0 && sh > 0 && sx + sw <= in_w && sy + sh <= in_h,
                "resize box (%d,%d,%d,%d) outside a %dx%d image", sx, sy, sw, sh, in_w, in_h);
  UNMIX_REQUIRE(rw > 0 && rh > 0 && ow > 0 && oh > 0, "resize to %dx%d window %dx%d", rw, rh, ow, oh);
  /* The part of the window inside the resized image. */
  int x0 = wx < 0 ? 0 : wx, x1 = wx + ow > rw ? rw : wx + ow;
  int y0 = wy < 0 ? 0 : wy, y1 = wy + oh > rh ? rh : wy + oh;
  if (x0 != wx || y0 != wy || x1 != wx + ow || y1 != wy + oh) memset(out, 0, (size_t)ow * oh * c);
  if (x1 <= x0 || y1 <= y0) return;
  const int ncols = x1 - x0, nrows = y1 - y0;
  const size_t in_stride = (size_t)in_w * c;
  const uint8_t *box = in + (size_t)sy * in_stride + (size_t)sx * c;
  uint8_t *obase = out + ((size_t)(y0 - wy) * ow + (size_t)(x0 - wx)) * c;
  const size_t ostride = (size_t)ow * c;
  const int need_h = rw != sw, need_v = rh != sh;
  if (!need_h && !need_v) {
    for (int y = 0; y < nrows; y++)
      memcpy(obase + (size_t)y * ostride, box + (size_t)(y0 + y) * in_stride + (size_t)x0 * c, (size_t)ncols * c);
    return;
  }
  /* Pillow >= 13 runs the vertical pass first when the height shrinks by more than twice
   * what the width shrinks (Resample.c, ImagingResampleInner); older Pillow never does. */
  const int vertical_first =
      g_order == UNMIX_PIL_ORDER_PILLOW13 && need_h && need_v && (sh - rh) > 0 && (sh - rh) > (sw - rw) * 2;

  int kh = need_h ? unmix_pil_ksize(f, sw, rw) : 0;
  int kv = need_v ? unmix_pil_ksize(f, sh, rh) : 0;
  s->coef = grow(s->coef, &s->coef_cap, sizeof(int32_t) * ((size_t)kh * ncols + (size_t)kv * nrows));
  s->bounds = grow(s->bounds, &s->bounds_cap, sizeof(int) * 2 * ((size_t)ncols + nrows));
  int32_t *khc = s->coef, *kvc = s->coef + (size_t)kh * ncols;
  int *bh = s->bounds, *bv = s->bounds + 2 * ncols;
  if (need_h) unmix_pil_coeffs(f, sw, rw, x0, x1, bh, khc);
  if (need_v) unmix_pil_coeffs(f, sh, rh, y0, y1, bv, kvc);

  if (!need_v) { /* horizontal only: rows map 1:1 */
    resample_h_any(box + (size_t)y0 * in_stride, in_stride, nrows, c, ncols, kh, bh, khc, obase, ostride, s);
  } else if (!need_h) { /* vertical only: columns map 1:1 */
    resample_v(box + (size_t)x0 * c, in_stride, ncols * c, nrows, kv, bv, kvc, obase, ostride);
  } else if (!vertical_first) {
    /* source rows [ylo, yhi) feed the output rows; the horizontal pass makes only those */
    int ylo = bv[0], yhi = bv[2 * (nrows - 1)] + bv[2 * (nrows - 1) + 1];
    for (int i = 0; i < nrows; i++) bv[2 * i] -= ylo;
    size_t tstride = (size_t)ncols * c;
    s->tmp = grow(s->tmp, &s->tmp_cap, (size_t)(yhi - ylo) * tstride);
    resample_h_any(box + (size_t)ylo * in_stride, in_stride, yhi - ylo, c, ncols, kh, bh, khc, s->tmp, tstride, s);
    resample_v(s->tmp, tstride, ncols * c, nrows, kv, bv, kvc, obase, ostride);
  } else {
    /* source columns [xlo, xhi) feed the output columns; the vertical pass makes only those */
    int xlo = bh[0], xhi = bh[2 * (ncols - 1)] + bh[2 * (ncols - 1) + 1];
    for (int i = 0; i < ncols; i++) bh[2 * i] -= xlo;
    size_t tstride = (size_t)(xhi - xlo) * c;
    s->tmp = grow(s->tmp, &s->tmp_cap, (size_t)nrows * tstride);
    resample_v(box + (size_t)xlo * c, in_stride, (xhi - xlo) * c, nrows, kv, bv, kvc, s->tmp, tstride);
    resample_h_any(s->tmp, tstride, nrows, c, ncols, kh, bh, khc, obase, ostride, s);
  }
}

/* ---- colour ---------------------------------------------------------------------------- */

/* Blend.c: out = (UINT8)((int)in1 + alpha * ((int)in2 - (int)in1)), clipped when alpha is
 * outside [0, 1]; alpha == 0 / 1 copy an input. */
static inline uint8_t blend1(int d, int v, float alpha) {
  float t = (float)(d + alpha * (v - d));
  return (uint8_t)t;
}
static inline uint8_t blend1_clip(int d, int v, float alpha) {
  float t = (float)(d + alpha * (v - d));
  if (t <= 0.0) return 0;
  if (t >= 255.0) return 255;
  return (uint8_t)t;
}

void unmix_pil_blend(uint8_t *img, const uint8_t *d, size_t n, float f) {
  if (f == 1.0f) return;
  if (f == 0.0f) {
    memcpy(img, d, n);
    return;
  }
  if (f >= 0 && f <= 1.0) {
    for (size_t i = 0; i < n; i++) img[i] = blend1(d[i], img[i], f);
  } else {
    for (size_t i = 0; i < n; i++) img[i] = blend1_clip(d[i], img[i], f);
  }
}

/* Blend against a constant degenerate value; a 256-entry table holds every result. */
static void blend_const(uint8_t *img, size_t n, int d, float f) {
  if (f == 1.0f) return;
  uint8_t lut[256];
  for (int v = 0; v < 256; v++) {
    if (f == 0.0f) lut[v] = (uint8_t)d;
    else if (f >= 0 && f <= 1.0) lut[v] = blend1(d, v, f);
    else lut[v] = blend1_clip(d, v, f);
  }
  for (size_t i = 0; i < n; i++) img[i] = lut[img[i]];
}

void unmix_pil_brightness(uint8_t *img, size_t n, float f) { blend_const(img, n, 0, f); }

void unmix_pil_contrast(uint8_t *img, size_t npix, int c, float f) {
  /* ImageStat mean of L(img) (a double from integer sums), then int(mean + 0.5). */
  uint64_t sum = 0;
  if (c == 3) {
    for (size_t i = 0; i < npix; i++) sum += unmix_pil_luma(img[3 * i], img[3 * i + 1], img[3 * i + 2]);
  } else {
    for (size_t i = 0; i < npix; i++) sum += img[i];
  }
  double mean = npix ? (double)sum / (double)npix : 0.0;
  blend_const(img, npix * c, (int)(mean + 0.5), f);
}

void unmix_pil_saturation(uint8_t *img, size_t npix, int c, float f) {
  if (c != 3 || f == 1.0f) return;
  /* in blocks: the degenerate image L(img) replicated to 3 channels, then one contiguous
   * (vectorisable) blend over the bytes, exactly Blend.c's expression */
  enum { BLOCK = 256 };
  uint8_t deg[3 * BLOCK];
  for (size_t i0 = 0; i0 < npix; i0 += BLOCK) {
    const size_t m = npix - i0 < BLOCK ? npix - i0 : BLOCK;
    uint8_t *p = img + 3 * i0;
    for (size_t i = 0; i < m; i++) deg[3 * i] = deg[3 * i + 1] = deg[3 * i + 2] = unmix_pil_luma(p[3 * i], p[3 * i + 1], p[3 * i + 2]);
    unmix_pil_blend(p, deg, 3 * m, f);
  }
}

void unmix_pil_grayscale(uint8_t *img, size_t npix, int c) {
  if (c != 3) return;
  for (size_t i = 0; i < npix; i++) {
    uint8_t *p = img + 3 * i;
    p[0] = p[1] = p[2] = unmix_pil_luma(p[0], p[1], p[2]);
  }
}

static inline int clip8i(int v) { return v <= 0 ? 0 : v >= 255 ? 255 : v; }

/* round() of a non-negative double, inline: trunc(x) and x - trunc(x) are exact, so this is
 * C's round() (half away from zero) without the libm call. */
static inline int round_pos(double x) {
  int t = (int)x;
  return t + (x - (double)t >= 0.5);
}

/* Convert.c rgb2hsv_row. fmod(x, 1.0) is x - 1.0 here: x = h/6 + 1 lies in [5/6, 11/6]
 * (h is in [-1, 5]) and x - 1.0 is exact on [1, 2). */
static inline void rgb2hsv(const uint8_t *rgb, uint8_t *hsv) {
  float h, s, rc, gc, bc, cr;
  uint8_t r = rgb[0], g = rgb[1], b = rgb[2];
  uint8_t maxc = r > g ? (r > b ? r : b) : (g > b ? g : b);
  uint8_t minc = r < g ? (r < b ? r : b) : (g < b ? g : b);
  uint8_t uh, us;
  if (minc == maxc) {
    uh = 0;
    us = 0;
  } else {
    cr = (float)(maxc - minc);
    s = cr / (float)maxc;
    rc = ((float)(maxc - r)) / cr;
    gc = ((float)(maxc - g)) / cr;
    bc = ((float)(maxc - b)) / cr;
    if (r == maxc) h = bc - gc;
    else if (g == maxc) h = (float)(2.0 + rc - bc);
    else h = (float)(4.0 + gc - rc);
    double x = h / 6.0 + 1.0;
    h = (float)(x >= 1.0 ? x - 1.0 : x);
    uh = (uint8_t)clip8i((int)(h * 255.0));
    us = (uint8_t)clip8i((int)(s * 255.0));
  }
  hsv[0] = uh;
  hsv[1] = us;
  hsv[2] = maxc;
}

/* Convert.c hsv2rgb. */
static inline void hsv2rgb(const uint8_t *hsv, uint8_t *out) {
  uint8_t h = hsv[0], s = hsv[1], v = hsv[2];
  if (s == 0) {
    out[0] = out[1] = out[2] = v;
    return;
  }
  int i = (int)floor((float)h * 6.0 / 255.0);
  float f = (float)((float)h * 6.0 / 255.0 - (float)i);
  float fs = (float)(((float)s) / 255.0);
  int p = round_pos((float)v * (1.0 - fs));
  int q = round_pos((float)v * (1.0 - fs * f));
  int t = round_pos((float)v * (1.0 - fs * (1.0 - f)));
  uint8_t up = (uint8_t)clip8i(p), uq = (uint8_t)clip8i(q), ut = (uint8_t)clip8i(t);
  switch (i % 6) {
    case 0: out[0] = v; out[1] = ut; out[2] = up; break;
    case 1: out[0] = uq; out[1] = v; out[2] = up; break;
    case 2: out[0] = up; out[1] = v; out[2] = ut; break;
    case 3: out[0] = up; out[1] = uq; out[2] = v; break;
    case 4: out[0] = ut; out[1] = up; out[2] = v; break;
    default: out[0] = v; out[1] = up; out[2] = uq; break;
  }
}

void unmix_pil_rgb2hsv(const uint8_t rgb[3], uint8_t hsv[3]) { rgb2hsv(rgb, hsv); }
void unmix_pil_hsv2rgb(const uint8_t hsv[3], uint8_t rgb[3]) { hsv2rgb(hsv, rgb); }

uint8_t unmix_pil_hue_shift(float hue_factor) {
  /* np.int32(hue_factor * 255).astype(np.uint8): truncate toward zero, then wrap. */
  int32_t t = (int32_t)((double)hue_factor * 255.0);
  return (uint8_t)(uint32_t)t;
}

/* Tables that make the hue round trip cheap while keeping every intermediate value of
 * rgb2hsv/hsv2rgb above (they are built by calling those functions):
 *  - H depends only on which channel is the maximum, which is the minimum, cr = max - min
 *    and d = max - mid (rc, gc, bc are differences over cr), so hue[case][cr][d] holds it;
 *  - S = sat[max][cr]; in hsv2rgb, i, f and 1 - f depend on H, fs and 1 - fs on S, and
 *    p = round(V (1 - fs)) on (S, V) only; q and t are computed with the tabulated operands,
 *    in the same float/double operations. tests/test_data_augment.c checks all 2^24 colours. */
struct hue_tables {
  uint8_t hue[6][256][256];  /* case = 2 * max channel + (min is the later of the other two) */
  uint8_t sat[256][256];     /* [max][cr] */
  uint8_t p[256][256];       /* [S][V] */
  uint8_t sel[256];          /* i mod 6 per H */
  float f[256];              /* per H */
  double one_minus_f[256];   /* per H */
  float fs[256];             /* per S */
};
static struct hue_tables *g_hue;
static pthread_once_t g_hue_once = PTHREAD_ONCE_INIT;

static void hue_tables_build(void) {
  struct hue_tables *t = unmix_xcalloc(1, sizeof *t);
  for (int cr = 1; cr < 256; cr++) {
    for (int d = 0; d <= cr; d++) {
      const uint8_t mx = 255, mid = (uint8_t)(255 - d), mn = (uint8_t)(255 - cr);
      /* {max, mid, min} placed per case: max channel m, min channel the first/second other one */
      const uint8_t rgbs[6][3] = {{mx, mn, mid}, {mx, mid, mn}, {mn, mx, mid}, {mid, mx, mn}, {mn, mid, mx}, {mid, mn, mx}};
      for (int k = 0; k < 6; k++) {
        uint8_t hsv[3];
        rgb2hsv(rgbs[k], hsv);
        t->hue[k][cr][d] = hsv[0];
      }
    }
  }
  for (int mx = 1; mx < 256; mx++)
    for (int cr = 1; cr <= mx; cr++) {
      uint8_t rgb[3] = {(uint8_t)mx, (uint8_t)(mx - cr), (uint8_t)(mx - cr)}, hsv[3];
      rgb2hsv(rgb, hsv);
      t->sat[mx][cr] = hsv[1];
    }
  for (int h = 0; h < 256; h++) {
    int i = (int)floor((float)h * 6.0 / 255.0);
    t->f[h] = (float)((float)h * 6.0 / 255.0 - (float)i);
    t->one_minus_f[h] = 1.0 - t->f[h];
    t->sel[h] = (uint8_t)(i % 6);
  }
  for (int sv = 0; sv < 256; sv++) {
    t->fs[sv] = (float)(((float)sv) / 255.0);
    for (int v = 0; v < 256; v++) t->p[sv][v] = (uint8_t)clip8i(round_pos((float)v * (1.0 - t->fs[sv])));
  }
  g_hue = t;
}

void unmix_pil_hue(uint8_t *img, size_t npix, int c, uint8_t shift) {
  if (c != 3) return;
  pthread_once(&g_hue_once, hue_tables_build);
  const struct hue_tables *T = g_hue;
  /* output order per i mod 6, as indices into {v, p, q, t} */
  static const uint8_t order[6][3] = {{0, 3, 1}, {2, 0, 1}, {1, 0, 3}, {1, 2, 0}, {3, 1, 0}, {0, 1, 2}};
  for (size_t i = 0; i < npix; i++) {
    uint8_t *px = img + 3 * i;
    const int r = px[0], g = px[1], b = px[2];
    int mx, mn, mid, k;
    if (r >= g && r >= b) { /* r == max is tested first, as in rgb2hsv */
      mx = r;
      if (b <= g) mn = b, mid = g, k = 1;
      else mn = g, mid = b, k = 0;
    } else if (g >= b) {
      mx = g;
      if (b <= r) mn = b, mid = r, k = 3;
      else mn = r, mid = b, k = 2;
    } else {
      mx = b;
      if (g <= r) mn = g, mid = r, k = 5;
      else mn = r, mid = g, k = 4;
    }
    if (mx == mn) continue; /* grey: H = S = 0 -> (V, V, V), unchanged */
    const int cr = mx - mn;
    const uint8_t H = (uint8_t)(T->hue[k][cr][mx - mid] + shift), S = T->sat[mx][cr];
    if (S == 0) {
      px[0] = px[1] = px[2] = (uint8_t)mx;
      continue;
    }
    const float fs = T->fs[S], f = T->f[H];
    const double v = (float)mx;
    uint8_t vals[4];
    vals[0] = (uint8_t)mx;
    vals[1] = T->p[S][mx];
    vals[2] = (uint8_t)clip8i(round_pos(v * (1.0 - fs * f)));
    vals[3] = (uint8_t)clip8i(round_pos(v * (1.0 - fs * T->one_minus_f[H])));
    const uint8_t *o = order[T->sel[H]];
    px[0] = vals[o[0]];
    px[1] = vals[o[1]];
    px[2] = vals[o[2]];
  }
}

/* ---- Gaussian blur (BoxBlur.c) ------------------------------------------------------------ */

float unmix_pil_gaussian_box_radius(float radius, int passes) {
  float sigma2, L, l, a;
  sigma2 = radius * radius / passes;
  L = (float)sqrt(12.0 * sigma2 + 1.0);
  l = (float)floor((L - 1.0) / 2.0);
  a = (2 * l + 1) * (l * (l + 1) - 3 * sigma2);
  a /= 6 * (sigma2 - (l + 1) * (l + 1));
  return l + a;
}

/* The extended box of BoxBlur.c: out[x] = (ww * sum_{|k|<=r} in[x+k] + fw * (in[x-r-1] +
 * in[x+r+1]) + 2^23) >> 24 with indices clamped to the line (edge replication); this is the
 * value ImagingLineBoxBlur's running sums produce. Integer arithmetic (UINT32, as Pillow), so
 * any evaluation order gives the same bytes. */
struct box {
  int r;
  uint32_t ww, fw;
};
static struct box box_make(float fradius) {
  struct box b;
  b.r = (int)fradius;
  b.ww = (uint32_t)((float)(1 << 24) / (fradius * 2 + 1));
  b.fw = ((1u << 24) - (uint32_t)(b.r * 2 + 1) * b.ww) / 2;
  return b;
}
static inline int clampi(int v, int hi) { return v < 0 ? 0 : v > hi ? hi : v; }

/* One vertical pass: the same line filter down every column, run for all m = w * c columns
 * at once (running sums per column, vectorisable). Equals Pillow's transpose + horizontal
 * pass + transpose. */
static void box_pass_v(const uint8_t *in, uint8_t *out, int h, int m, struct box b, uint32_t *acc) {
  const int r = b.r, last = h - 1;
  for (int i = 0; i < m; i++) acc[i] = 0;
  for (int k = -r - 1; k <= r - 1; k++) {
    const uint8_t *row = in + (size_t)clampi(k, last) * m;
    for (int i = 0; i < m; i++) acc[i] += row[i];
  }
  for (int y = 0; y <= last; y++) {
    const uint8_t *add = in + (size_t)clampi(y + r, last) * m, *sub = in + (size_t)clampi(y - r - 1, last) * m;
    const uint8_t *far = in + (size_t)clampi(y + r + 1, last) * m;
    uint8_t *o = out + (size_t)y * m;
    for (int i = 0; i < m; i++) {
      uint32_t a = acc[i] + add[i] - sub[i];
      acc[i] = a;
      o[i] = (uint8_t)((a * b.ww + (uint32_t)(sub[i] + far[i]) * b.fw + (1u << 23)) >> 24);
    }
  }
}

void unmix_pil_gaussian_blur(uint8_t *img, int h, int w, int c, float radius, struct unmix_pil_scratch *s) {
  if (radius == 0.0f) return;
  const int passes = 3;
  float r = unmix_pil_gaussian_box_radius(radius, passes);
  if (r == 0.0f) return; /* ImagingBoxBlur skips a zero radius */
  const struct box b = box_make(r);
  const size_t n = (size_t)h * w * c;
  const size_t m = (size_t)(h > w ? h : w) * c;
  s->tmp = grow(s->tmp, &s->tmp_cap, n);
  s->tmp2 = grow(s->tmp2, &s->tmp2_cap, 2 * n + sizeof(uint32_t) * m + 4);
  uint8_t *t1 = s->tmp2, *t2 = s->tmp2 + n;
  uint32_t *acc = (uint32_t *)(void *)(((uintptr_t)(s->tmp2 + 2 * n) + 3) & ~(uintptr_t)3);
  /* Pillow: 3 horizontal passes, then (via a transpose) 3 vertical ones. The horizontal passes
   * are run as column passes on the transposed image, which vectorise. */
  transpose_hwc(img, (size_t)w * c, t1, (size_t)h * c, h, w, c); /* (w, h, c) */
  box_pass_v(t1, t2, w, h * c, b, acc);
  box_pass_v(t2, t1, w, h * c, b, acc);
  box_pass_v(t1, t2, w, h * c, b, acc);
  transpose_hwc(t2, (size_t)h * c, s->tmp, (size_t)w * c, w, h, c); /* back to (h, w, c) */
  box_pass_v(s->tmp, img, h, w * c, b, acc);
  box_pass_v(img, s->tmp, h, w * c, b, acc);
  box_pass_v(s->tmp, img, h, w * c, b, acc);
}

/* ---- geometry helpers --------------------------------------------------------------------- */

int unmix_center_crop_offset(int size, int crop) {
  if (crop > size) return -((crop - size) / 2);
  /* int(round((size - crop) / 2.0)), Python's round: half to even */
  return (int)nearbyint((size - crop) / 2.0);
}

void unmix_resize_short_side(int h, int w, int size, int *rh, int *rw) {
  /* torchvision _compute_resized_output_size: new_long = int(size * long / short) */
  if (w <= h) {
    *rw = size;
    *rh = (int)((double)size * h / w);
  } else {
    *rh = size;
    *rw = (int)((double)size * w / h);
  }
}
