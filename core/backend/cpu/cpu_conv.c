/* CPU conv2d, NHWC activations x OHWI weights, as im2col + OpenBLAS SGEMM, processed in
 * chunks of images so the column buffer stays cache/memory friendly. A 1x1/stride-1/pad-0
 * convolution is a plain GEMM on the activations (no column buffer).
 * Accumulation: dwt +=, dx =. */
#include <cblas.h>
#include <string.h>

#include "core/backend/cpu/cpu_ops.h"

#define COL_BUDGET_FLOATS ((size_t)6 << 20) /* 24 MiB column buffer */

static int is_pointwise(const struct unmix_conv_geom *g) {
  return g->r == 1 && g->s == 1 && g->stride == 1 && g->pad == 0;
}

static int chunk_images(const struct unmix_conv_geom *g) {
  size_t per = (size_t)g->p * g->q * g->r * g->s * g->c;
  size_t nb = COL_BUDGET_FLOATS / (per ? per : 1);
  if (nb < 1) nb = 1;
  if (nb > (size_t)g->n) nb = (size_t)g->n;
  return (int)nb;
}

/* col[(i,p,q), (r,s,c)] = x[n0+i, p*st-pad+r, q*st-pad+s, c] (0 outside). */
static void im2col(const struct unmix_conv_geom *g, const float *x, int n0, int nb, float *col) {
  const int rsc = g->r * g->s * g->c;
  const size_t img = (size_t)g->h * g->w * g->c;
  const int64_t rows = (int64_t)nb * g->p * g->q;
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < rows; row++) {
    int i = (int)(row / (g->p * g->q));
    int pq = (int)(row % (g->p * g->q));
    int p = pq / g->q, q = pq % g->q;
    const float *xi = x + (size_t)(n0 + i) * img;
    float *dst = col + (size_t)row * rsc;
    for (int r = 0; r < g->r; r++) {
      int ih = p * g->stride - g->pad + r;
      for (int s = 0; s < g->s; s++) {
        int iw = q * g->stride - g->pad + s;
        float *d = dst + ((size_t)r * g->s + s) * g->c;
        if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w) memset(d, 0, sizeof(float) * g->c);
        else memcpy(d, xi + ((size_t)ih * g->w + iw) * g->c, sizeof(float) * g->c);
      }
    }
  }
}

/* dx[n0+i] = sum of the column entries that read each input element. */
static void col2im(const struct unmix_conv_geom *g, const float *col, int n0, int nb, float *dx) {
  const int rsc = g->r * g->s * g->c;
  const size_t img = (size_t)g->h * g->w * g->c;
#pragma omp parallel for schedule(static)
  for (int i = 0; i < nb; i++) {
    float *dxi = dx + (size_t)(n0 + i) * img;
    memset(dxi, 0, sizeof(float) * img);
    for (int p = 0; p < g->p; p++)
      for (int q = 0; q < g->q; q++) {
        const float *src = col + ((size_t)i * g->p * g->q + (size_t)p * g->q + q) * rsc;
        for (int r = 0; r < g->r; r++) {
          int ih = p * g->stride - g->pad + r;
          if (ih < 0 || ih >= g->h) continue;
          for (int s = 0; s < g->s; s++) {
            int iw = q * g->stride - g->pad + s;
            if (iw < 0 || iw >= g->w) continue;
            float *d = dxi + ((size_t)ih * g->w + iw) * g->c;
            const float *sv = src + ((size_t)r * g->s + s) * g->c;
            for (int c = 0; c < g->c; c++) d[c] += sv[c];
          }
        }
      }
  }
}

void unmix_cpu_conv2d_forward(const struct unmix_conv_geom *g, const float *x, const float *wt, float *y) {
  const int rsc = g->r * g->s * g->c;
  if (is_pointwise(g)) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, g->n * g->h * g->w, g->k, g->c, 1.0f, x, g->c, wt,
                g->c, 0.0f, y, g->k);
    return;
  }
  const int nb = chunk_images(g);
  float *col = unmix_cpu_scratch(0, (size_t)nb * g->p * g->q * rsc);
  for (int n0 = 0; n0 < g->n; n0 += nb) {
    int cur = g->n - n0 < nb ? g->n - n0 : nb;
    im2col(g, x, n0, cur, col);
    int m = cur * g->p * g->q;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, g->k, rsc, 1.0f, col, rsc, wt, rsc, 0.0f,
                y + (size_t)n0 * g->p * g->q * g->k, g->k);
  }
}

void unmix_cpu_conv2d_backward_data(const struct unmix_conv_geom *g, const float *dy, const float *wt, float *dx) {
  const int rsc = g->r * g->s * g->c;
  if (is_pointwise(g)) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->n * g->h * g->w, g->c, g->k, 1.0f, dy, g->k, wt,
                g->c, 0.0f, dx, g->c);
    return;
  }
  const int nb = chunk_images(g);
  float *col = unmix_cpu_scratch(0, (size_t)nb * g->p * g->q * rsc);
  for (int n0 = 0; n0 < g->n; n0 += nb) {
    int cur = g->n - n0 < nb ? g->n - n0 : nb;
    int m = cur * g->p * g->q;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, rsc, g->k, 1.0f,
                dy + (size_t)n0 * g->p * g->q * g->k, g->k, wt, rsc, 0.0f, col, rsc);
    col2im(g, col, n0, cur, dx);
  }
}

void unmix_cpu_conv2d_backward_weight(const struct unmix_conv_geom *g, const float *dy, const float *x,
                                      float *dwt) {
  const int rsc = g->r * g->s * g->c;
  if (is_pointwise(g)) {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, g->k, g->c, g->n * g->h * g->w, 1.0f, dy, g->k, x, g->c,
                1.0f, dwt, g->c);
    return;
  }
  const int nb = chunk_images(g);
  float *col = unmix_cpu_scratch(0, (size_t)nb * g->p * g->q * rsc);
  for (int n0 = 0; n0 < g->n; n0 += nb) {
    int cur = g->n - n0 < nb ? g->n - n0 : nb;
    im2col(g, x, n0, cur, col);
    int m = cur * g->p * g->q;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, g->k, rsc, m, 1.0f, dy + (size_t)n0 * g->p * g->q * g->k,
                g->k, col, rsc, 1.0f, dwt, rsc);
  }
}
