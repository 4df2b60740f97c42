/* CPU conv2d, NHWC activations x OHWI weights, as im2col + OpenBLAS SGEMM.
 * The work is cut into tiles whose size depends on the geometry only; each OpenMP thread
 * builds one tile's column matrix in its own cache-sized buffer and multiplies it with a
 * single-threaded SGEMM (OpenBLAS runs single-threaded inside a parallel region). Every
 * output element therefore comes from the same sequence of operations whatever the
 * thread count: results are bit-for-bit independent of it.
 * With precision bf16 on a CPU with bf16 units the three passes go to oneDNN instead
 * (onednn.h: bf16 operands, fp32 accumulation), except for geometries it has no kernel for.
 * In fp32, UNMIX_CPU_CONV=auto (the default) sends the passes where oneDNN's Winograd or
 * direct kernels measured faster to oneDNN (unmix_cpu_conv_kernel below; not bit-identical
 * across thread counts), and UNMIX_CPU_CONV=onednn every pass to its direct kernels; this
 * file's path is UNMIX_CPU_CONV=reference, the oracle.
 * Accumulation: dwt +=, dx =. */
#include <cblas.h>
#include <omp.h>
#include <string.h>

#include "core/backend/cpu/internal.h"
#include "core/backend/cpu/onednn.h"

/* Tile size: SGEMM re-packs the filter matrix for every tile, so a tile has at least
 * TILE_MIN_ROWS rows (at the ResNet-18 shapes 256..1024 rows measured alike, fewer was
 * slower); layers with short column rows take more rows, up to TILE_FLOATS floats, so
 * that a thread's column buffer stays cache-sized. */
#define TILE_FLOATS ((int64_t)96 << 10)
#define TILE_MIN_ROWS 512
/* Backward-weight reduces over all rows: the tiles are split into LANES fixed groups,
 * each summed into its own partial dW, and the partials are added in lane order. */
#define LANES 8

static int is_pointwise(const struct unmix_conv_geom *g) {
  return g->r == 1 && g->s == 1 && g->stride == 1 && g->pad == 0;
}

static int64_t tile_rows(const struct unmix_conv_geom *g) {
  const int64_t rsc = (int64_t)g->r * g->s * g->c, total = (int64_t)g->n * g->p * g->q;
  int64_t rows = TILE_FLOATS / rsc;
  if (rows < TILE_MIN_ROWS) rows = TILE_MIN_ROWS;
  return rows < total ? rows : total;
}

/* col[i, (r,s,c)] = x[n, p*st-pad+r, q*st-pad+s, c] for output rows row0 .. row0+m-1
 * (0 outside the image). For each filter row r the s-run is one contiguous stretch of x,
 * so it is copied in one piece, with zeros where it sticks out of the image. */
static void im2col_rows(const struct unmix_conv_geom *g, const float *x, int64_t row0, int64_t m, float *col) {
  const int64_t rsc = (int64_t)g->r * g->s * g->c, sc = (int64_t)g->s * g->c, pq = (int64_t)g->p * g->q;
  for (int64_t i = 0; i < m; i++) {
    const int64_t row = row0 + i;
    const int n = (int)(row / pq), p = (int)(row % pq) / g->q, q = (int)(row % pq) % g->q;
    const float *xn = x + (int64_t)n * g->h * g->w * g->c;
    const int iw0 = q * g->stride - g->pad;
    const int s_lo = iw0 < 0 ? -iw0 : 0;                     /* first s inside the image */
    const int s_hi = g->w - iw0 < g->s ? g->w - iw0 : g->s;  /* one past the last */
    float *dst = col + i * rsc;
    for (int r = 0; r < g->r; r++, dst += sc) {
      const int ih = p * g->stride - g->pad + r;
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

/* dx[n0 .. n0+nb) = sum of the column entries that read each input element. Only this
 * tile's images are touched; they are zeroed, then summed in a fixed (p, q, r, s) order. */
static void col2im_images(const struct unmix_conv_geom *g, const float *col, int n0, int nb, float *dx) {
  const int64_t rsc = (int64_t)g->r * g->s * g->c, img = (int64_t)g->h * g->w * g->c;
  memset(dx + (int64_t)n0 * img, 0, sizeof(float) * img * nb);
  for (int i = 0; i < nb; i++) {
    float *dxi = dx + (int64_t)(n0 + i) * img;
    for (int p = 0; p < g->p; p++)
      for (int q = 0; q < g->q; q++) {
        const float *src = col + (((int64_t)i * g->p + p) * g->q + q) * rsc;
        for (int r = 0; r < g->r; r++) {
          const int ih = p * g->stride - g->pad + r;
          if (ih < 0 || ih >= g->h) continue;
          for (int s = 0; s < g->s; s++) {
            const int iw = q * g->stride - g->pad + s;
            if (iw < 0 || iw >= g->w) continue;
            float *d = dxi + ((int64_t)ih * g->w + iw) * g->c;
            const float *sv = src + ((int64_t)r * g->s + s) * g->c;
            for (int c = 0; c < g->c; c++) d[c] += sv[c];
          }
        }
      }
  }
}

/* UNMIX_CPU_CONV=auto's choice, from timings of the three kernels for every conv geometry of
 * ResNet-18 CIFAR at width 64 on 32x32 images and at width 16 on 20x20 and 28x28 images
 * (batch 64 and 256, one and two threads, 2-core Sapphire Rapids VM with AVX-512;
 * docs/FIDELITY.md section 4.2).
 * - Winograd (forward and backward-data of 3x3 stride-1 convs) took about half the time of
 *   the direct kernels, its layout reorders included, with 64+ channels in and out (32+ on
 *   maps of 16x16 or more) when its 4x4 output tiles are at least 60% filled (5x5 maps, 39%,
 *   and 3x3 ones, 56%, were slower or even); with 16 channels it was slower. Its
 *   backward-weight kernel (oneDNN 2.6) crashed on most geometries of a sweep (193 of
 *   240), so it is never used.
 * - oneDNN's direct kernels won the other stride-1 convs by 5-60% (most at the narrow widths)
 *   and the small downsampling convs;
 * - im2col + SGEMM won, by up to a third, the backward passes of downsampling convs with 64 or
 *   more input channels (backward-weight: 32 or more, or 1x1) and the forward of those with
 *   256 or more, and the stride-1 convs with 256+ channels on 4x4 or smaller outputs where
 *   Winograd does not apply (backward-weight at 512 channels on 4x4: 19.0 ms against 23.6 ms
 *   at two threads, even at one). */
static bool auto_winograd(int pass, const struct unmix_conv_geom *g) {
  if (pass == UNMIX_DNN_BWD_WEIGHT || g->r != 3 || g->s != 3 || g->stride != 1) return false;
  const int64_t tiled = (int64_t)((g->p + 3) / 4 * 4) * ((g->q + 3) / 4 * 4), pq = (int64_t)g->p * g->q;
  if (10 * pq < 6 * tiled) return false; /* tiles less than 60% filled */
  return (g->c >= 64 && g->k >= 64) || (g->c >= 32 && g->k >= 32 && pq >= 256);
}
static bool auto_direct(int pass, const struct unmix_conv_geom *g) {
  if (g->stride == 1) return (int64_t)g->p * g->q > 16 || g->c < 256;
  if (pass == UNMIX_DNN_FWD) return g->c < 256;
  if (pass == UNMIX_DNN_BWD_DATA) return g->c < 64;
  return g->c < 32 && g->r > 1;
}

enum unmix_cpu_kernel unmix_cpu_conv_kernel(int pass, const struct unmix_conv_geom *g) {
  switch (unmix_cpu_conv_mode()) {
    case UNMIX_CPU_CONV_ONEDNN: return UNMIX_CPU_KERNEL_DIRECT;
    case UNMIX_CPU_CONV_AUTO:
      return auto_winograd(pass, g) ? UNMIX_CPU_KERNEL_WINOGRAD
             : auto_direct(pass, g) ? UNMIX_CPU_KERNEL_DIRECT
                                    : UNMIX_CPU_KERNEL_REFERENCE;
    default: return UNMIX_CPU_KERNEL_REFERENCE;
  }
}

/* The pass on the library kernel the mode names (a = x or dy, b = wt or x, as onednn.h);
 * false: run ours. */
static bool fp32_library(enum unmix_dnn_pass pass, const struct unmix_conv_geom *g, const float *a, const float *b,
                         float *out) {
  enum unmix_cpu_kernel k = unmix_cpu_conv_kernel(pass, g);
  if (k == UNMIX_CPU_KERNEL_WINOGRAD) {
    if (unmix_dnn_conv(pass, UNMIX_DNN_WINO, g, a, b, out)) return true;
    /* oneDNN declined Winograd for this geometry: auto's choice without it */
    k = auto_direct(pass, g) ? UNMIX_CPU_KERNEL_DIRECT : UNMIX_CPU_KERNEL_REFERENCE;
  }
  return k == UNMIX_CPU_KERNEL_DIRECT && unmix_dnn_conv(pass, UNMIX_DNN_F32, g, a, b, out);
}

void unmix_cpu_conv2d_forward(const struct unmix_conv_geom *g, const float *x, const float *wt, float *y) {
  if (unmix_cpu_bf16_active() && unmix_dnn_conv(UNMIX_DNN_FWD, UNMIX_DNN_BF16, g, x, wt, y)) return;
  if (fp32_library(UNMIX_DNN_FWD, g, x, wt, y)) return;
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

void unmix_cpu_conv2d_backward_data(const struct unmix_conv_geom *g, const float *dy, const float *wt, float *dx) {
  if (unmix_cpu_bf16_active() && unmix_dnn_conv(UNMIX_DNN_BWD_DATA, UNMIX_DNN_BF16, g, dy, wt, dx)) return;
  if (fp32_library(UNMIX_DNN_BWD_DATA, g, dy, wt, dx)) return;
  const int64_t rsc = (int64_t)g->r * g->s * g->c;
  if (is_pointwise(g)) { /* dx = dy . W by row tiles, no columns */
    const int64_t total = (int64_t)g->n * g->h * g->w, tr = tile_rows(g), ntiles = (total + tr - 1) / tr;
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t t = 0; t < ntiles; t++) {
      const int64_t row0 = t * tr, m = total - row0 < tr ? total - row0 : tr;
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, g->c, g->k, 1.0f, dy + row0 * g->k, g->k, wt,
                  g->c, 0.0f, dx + row0 * g->c, g->c);
    }
    return;
  }
  /* Tiles of whole images (col2im of an image needs all of its rows, and no two threads
   * may add into the same image): columns = dy . W, scattered back into the tile's images. */
  const int64_t per_img = (int64_t)g->p * g->q;
  int nb = (int)((tile_rows(g) + per_img - 1) / per_img);
  if (nb > g->n) nb = g->n;
  const int ntiles = (g->n + nb - 1) / nb;
  const int64_t tile_floats = (int64_t)nb * per_img * rsc;
  float *cols = unmix_cpu_scratch(0, (size_t)omp_get_max_threads() * tile_floats);
#pragma omp parallel for schedule(dynamic, 1)
  for (int t = 0; t < ntiles; t++) {
    const int n0 = t * nb, cur = g->n - n0 < nb ? g->n - n0 : nb;
    float *col = cols + omp_get_thread_num() * tile_floats;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(cur * per_img), (int)rsc, g->k, 1.0f,
                dy + n0 * per_img * g->k, g->k, wt, (int)rsc, 0.0f, col, (int)rsc);
    col2im_images(g, col, n0, cur, dx);
  }
}

void unmix_cpu_conv2d_backward_weight(const struct unmix_conv_geom *g, const float *dy, const float *x, float *dwt) {
  if (unmix_cpu_bf16_active() && unmix_dnn_conv(UNMIX_DNN_BWD_WEIGHT, UNMIX_DNN_BF16, g, dy, x, dwt)) return;
  if (fp32_library(UNMIX_DNN_BWD_WEIGHT, g, dy, x, dwt)) return;
  const int64_t rsc = (int64_t)g->r * g->s * g->c, nw = rsc * g->k, total = (int64_t)g->n * g->p * g->q;
  const int64_t tr = tile_rows(g), ntiles = (total + tr - 1) / tr;
  const int lanes = ntiles < LANES ? (int)ntiles : LANES;
  const int pw = is_pointwise(g);
  float *part = unmix_cpu_scratch(1, (size_t)lanes * nw);
  float *cols = pw ? NULL : unmix_cpu_scratch(0, (size_t)omp_get_max_threads() * tr * rsc);
  /* lane l owns the contiguous tiles [l*ntiles/lanes, (l+1)*ntiles/lanes) */
#pragma omp parallel for schedule(dynamic, 1)
  for (int l = 0; l < lanes; l++) {
    const int64_t t0 = l * ntiles / lanes, t1 = (l + 1) * ntiles / lanes;
    float *col = pw ? NULL : cols + (int64_t)omp_get_thread_num() * tr * rsc;
    for (int64_t t = t0; t < t1; t++) {
      const int64_t row0 = t * tr, m = total - row0 < tr ? total - row0 : tr;
      const float *b = x + row0 * g->c; /* pointwise: the activations are the columns */
      if (!pw) {
        im2col_rows(g, x, row0, m, col);
        b = col;
      }
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, g->k, (int)rsc, (int)m, 1.0f, dy + row0 * g->k, g->k, b,
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
