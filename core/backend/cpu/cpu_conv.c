/* CPU conv2d, NHWC activations x OHWI weights, as im2col + OpenBLAS SGEMM.
 * The output rows (n, p, q) are cut into tiles whose size depends on the geometry only;
 * each OpenMP thread builds one tile's column matrix in its own cache-sized buffer and
 * multiplies it with a single-threaded SGEMM (OpenBLAS runs single-threaded inside a
 * parallel region). Every output element therefore comes from the same sequence of
 * operations whatever the thread count: results are bit-for-bit independent of it.
 * Accumulation: dwt +=, dx =. */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "core/backend/cpu/cpu_ops.h"

/* A convolution with separate row/column padding: backward-data of a stride-1 conv is
 * the forward conv of dy with flipped, transposed filters and padding (r-1-pad, s-1-pad). */
struct plan {
  int n, h, w, c; /* input (n, h, w, c) */
  int k, r, s;    /* filters (k, r, s, c) */
  int stride, pad_h, pad_w;
  int p, q; /* output (n, p, q, k) */
};

static struct plan plan_of(const struct unmix_conv_geom *g) {
  struct plan pl = {g->n, g->h, g->w, g->c, g->k, g->r, g->s, g->stride, g->pad, g->pad, g->p, g->q};
  return pl;
}

static int is_pointwise(const struct plan *g) {
  return g->r == 1 && g->s == 1 && g->stride == 1 && g->pad_h == 0 && g->pad_w == 0;
}

/* Tile size: SGEMM re-packs the filter matrix for every tile, so a tile has at least
 * TILE_MIN_ROWS rows (at the ResNet-18 shapes 256..1024 rows measured alike, fewer was
 * slower); layers with short column rows take more rows, up to TILE_FLOATS floats, so
 * that a thread's column buffer stays cache-sized. */
#define TILE_FLOATS ((int64_t)96 << 10)
#define TILE_MIN_ROWS 512
/* Backward-weight reduces over all rows: tiles are summed in LANES fixed groups, each
 * into its own partial dW, and the partials are added in lane order. */
#define LANES 8

static int64_t tile_rows(const struct plan *g) {
  int64_t rsc = (int64_t)g->r * g->s * g->c;
  int64_t rows = TILE_FLOATS / rsc;
  if (rows < TILE_MIN_ROWS) rows = TILE_MIN_ROWS;
  int64_t total = (int64_t)g->n * g->p * g->q;
  return rows < total ? rows : total;
}

/* col[i, (r,s,c)] = x[n, p*st-pad_h+r, q*st-pad_w+s, c] for output rows row0 .. row0+m-1
 * (0 outside the image). For each filter row r the s-run is one contiguous stretch of x
 * when it lies inside the image, so it is copied in at most one piece. */
static void im2col_rows(const struct plan *g, const float *x, int64_t row0, int64_t m, float *col) {
  const int64_t rsc = (int64_t)g->r * g->s * g->c, sc = (int64_t)g->s * g->c;
  const int64_t pq = (int64_t)g->p * g->q;
  for (int64_t i = 0; i < m; i++) {
    const int64_t row = row0 + i;
    const int n = (int)(row / pq), p = (int)(row % pq) / g->q, q = (int)(row % pq) % g->q;
    const float *xn = x + (int64_t)n * g->h * g->w * g->c;
    const int iw0 = q * g->stride - g->pad_w;
    /* valid s range: 0 <= iw0 + s < w */
    const int s_lo = iw0 < 0 ? -iw0 : 0;
    const int s_hi = g->w - iw0 < g->s ? g->w - iw0 : g->s;
    float *dst = col + i * rsc;
    for (int r = 0; r < g->r; r++, dst += sc) {
      const int ih = p * g->stride - g->pad_h + r;
      if (ih < 0 || ih >= g->h || s_hi <= s_lo) {
        memset(dst, 0, sizeof(float) * sc);
        continue;
      }
      if (s_lo > 0) memset(dst, 0, sizeof(float) * s_lo * g->c);
      memcpy(dst + (int64_t)s_lo * g->c, xn + ((int64_t)ih * g->w + iw0 + s_lo) * g->c,
             sizeof(float) * (s_hi - s_lo) * g->c);
      if (s_hi < g->s) memset(dst + (int64_t)s_hi * g->c, 0, sizeof(float) * (g->s - s_hi) * g->c);
    }
  }
}

/* dx[n0 .. n0+nb) = sum over the column entries that read each input element; the
 * images are zeroed first and summed in a fixed (p, q, r, s) order. */
static void col2im_images(const struct plan *g, const float *col, int n0, int nb, float *dx) {
  const int64_t rsc = (int64_t)g->r * g->s * g->c, img = (int64_t)g->h * g->w * g->c;
  memset(dx + (int64_t)n0 * img, 0, sizeof(float) * img * nb);
  for (int i = 0; i < nb; i++) {
    float *dxi = dx + (int64_t)(n0 + i) * img;
    for (int p = 0; p < g->p; p++)
      for (int q = 0; q < g->q; q++) {
        const float *src = col + (((int64_t)i * g->p + p) * g->q + q) * rsc;
        for (int r = 0; r < g->r; r++) {
          const int ih = p * g->stride - g->pad_h + r;
          if (ih < 0 || ih >= g->h) continue;
          for (int s = 0; s < g->s; s++) {
            const int iw = q * g->stride - g->pad_w + s;
            if (iw < 0 || iw >= g->w) continue;
            float *d = dxi + ((int64_t)ih * g->w + iw) * g->c;
            const float *sv = src + ((int64_t)r * g->s + s) * g->c;
            for (int c = 0; c < g->c; c++) d[c] += sv[c];
          }
        }
      }
  }
}

/* wf[c, r', s', k] = wt[k, r-1-r', s-1-s', c]: for every filter tap a (k x c) -> (c x k)
 * transpose, done in square blocks so that neither side is walked with a large stride. */
static void flip_filters(const struct plan *g, const float *wt, float *wf) {
  enum { B = 32 };
  const int64_t rsc = (int64_t)g->r * g->s * g->c, rsk = (int64_t)g->r * g->s * g->k;
  const int taps = g->r * g->s, kb = (g->k + B - 1) / B, cb = (g->c + B - 1) / B;
#pragma omp parallel for collapse(2) schedule(static)
  for (int tap = 0; tap < taps; tap++)
    for (int blk = 0; blk < kb * cb; blk++) {
      const int r = tap / g->s, s = tap % g->s;
      const float *src = wt + ((int64_t)(g->r - 1 - r) * g->s + (g->s - 1 - s)) * g->c;
      float *dst = wf + ((int64_t)r * g->s + s) * g->k;
      const int k0 = blk / cb * B, c0 = blk % cb * B;
      const int k1 = k0 + B < g->k ? k0 + B : g->k, c1 = c0 + B < g->c ? c0 + B : g->c;
      for (int c = c0; c < c1; c++)
        for (int k = k0; k < k1; k++) dst[c * rsk + k] = src[k * rsc + c];
    }
}

/* y = conv(x, wt) by row tiles; wt is (k, r*s*c) row-major. */
static void forward_tiles(const struct plan *g, const float *x, const float *wt, float *y) {
  const int64_t rsc = (int64_t)g->r * g->s * g->c, total = (int64_t)g->n * g->p * g->q;
  const int64_t tr = tile_rows(g), ntiles = (total + tr - 1) / tr;
  const int pw = is_pointwise(g);
  float *cols = pw ? NULL : unmix_cpu_scratch(0, (size_t)omp_get_max_threads() * tr * rsc);
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t t = 0; t < ntiles; t++) {
    const int64_t row0 = t * tr, m = total - row0 < tr ? total - row0 : tr;
    const float *a = x + row0 * g->c; /* pointwise: the activations are the columns */
    if (!pw) {
      float *col = cols + (int64_t)omp_get_thread_num() * tr * rsc;
      im2col_rows(g, x, row0, m, col);
      a = col;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, g->k, (int)rsc, 1.0f, a, (int)rsc, wt, (int)rsc,
                0.0f, y + row0 * g->k, g->k);
  }
}

void unmix_cpu_conv2d_forward(const struct unmix_conv_geom *geom, const float *x, const float *wt, float *y) {
  const struct plan g = plan_of(geom);
  forward_tiles(&g, x, wt, y);
}

void unmix_cpu_conv2d_backward_data(const struct unmix_conv_geom *geom, const float *dy, const float *wt,
                                    float *dx) {
  const struct plan g = plan_of(geom);
  const int64_t rsc = (int64_t)g.r * g.s * g.c;
  if (is_pointwise(&g)) { /* dx = dy . W, by row tiles */
    const int64_t total = (int64_t)g.n * g.h * g.w, tr = tile_rows(&g), ntiles = (total + tr - 1) / tr;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t t = 0; t < ntiles; t++) {
      const int64_t row0 = t * tr, m = total - row0 < tr ? total - row0 : tr;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, g.c, g.k, 1.0f, dy + row0 * g.k, g.k, wt, g.c,
                  0.0f, dx + row0 * g.c, g.c);
    }
    return;
  }
  if (g.stride == 1 && g.pad_h <= g.r - 1 && g.pad_w <= g.s - 1) {
    /* Stride 1: dx = conv(dy, W') with W'[c, r', s', k] = W[k, r-1-r', s-1-s', c] and
     * padding (r-1-pad, s-1-pad): a forward pass, with no col2im scatter. */
    float *wf = unmix_cpu_scratch(2, (size_t)rsc * g.k);
    flip_filters(&g, wt, wf);
    const struct plan t = {g.n, g.p, g.q, g.k, g.c, g.r, g.s, 1, g.r - 1 - g.pad_h, g.s - 1 - g.pad_w, g.h, g.w};
    forward_tiles(&t, dy, wf, dx);
    return;
  }
  /* Strided: tiles of whole images (col2im of an image needs all of its rows); each
   * tile's columns = dy . W, scattered back into its own images only. */
  const int64_t per_img = (int64_t)g.p * g.q;
  int nb = (int)((tile_rows(&g) + per_img - 1) / per_img);
  if (nb > g.n) nb = g.n;
  const int ntiles = (g.n + nb - 1) / nb;
  float *cols = unmix_cpu_scratch(0, (size_t)omp_get_max_threads() * nb * per_img * rsc);
#pragma omp parallel for schedule(dynamic, 1)
  for (int t = 0; t < ntiles; t++) {
    const int n0 = t * nb, cur = g.n - n0 < nb ? g.n - n0 : nb;
    float *col = cols + (int64_t)omp_get_thread_num() * nb * per_img * rsc;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(cur * per_img), (int)rsc, g.k, 1.0f,
                dy + (int64_t)n0 * per_img * g.k, g.k, wt, (int)rsc, 0.0f, col, (int)rsc);
    col2im_images(&g, col, n0, cur, dx);
  }
}

void unmix_cpu_conv2d_backward_weight(const struct unmix_conv_geom *geom, const float *dy, const float *x,
                                      float *dwt) {
  const struct plan g = plan_of(geom);
  const int64_t rsc = (int64_t)g.r * g.s * g.c, nw = rsc * g.k, total = (int64_t)g.n * g.p * g.q;
  const int64_t tr = tile_rows(&g), ntiles = (total + tr - 1) / tr;
  const int lanes = ntiles < LANES ? (int)ntiles : LANES;
  const int pw = is_pointwise(&g);
  float *part = unmix_cpu_scratch(1, (size_t)lanes * nw);
  float *cols = pw ? NULL : unmix_cpu_scratch(0, (size_t)omp_get_max_threads() * tr * rsc);
  /* lane l owns the contiguous tiles [l*ntiles/lanes, (l+1)*ntiles/lanes) */
#pragma omp parallel for schedule(dynamic, 1)
  for (int l = 0; l < lanes; l++) {
    const int64_t t0 = l * ntiles / lanes, t1 = (l + 1) * ntiles / lanes;
    float *col = pw ? NULL : cols + (int64_t)omp_get_thread_num() * tr * rsc;
    for (int64_t t = t0; t < t1; t++) {
      const int64_t row0 = t * tr, m = total - row0 < tr ? total - row0 : tr;
      const float *b = x + row0 * g.c;
      if (!pw) {
        im2col_rows(&g, x, row0, m, col);
        b = col;
      }
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, g.k, (int)rsc, (int)m, 1.0f, dy + row0 * g.k, g.k, b,
                  (int)rsc, t == t0 ? 0.0f : 1.0f, part + (int64_t)l * nw, (int)rsc);
    }
  }
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < nw; i++) {
    float s = dwt[i];
    for (int l = 0; l < lanes; l++) s += part[(int64_t)l * nw + i];
    dwt[i] = s;
  }
}
