/* CPU max-pool, global average pool and constant padding over NHWC. dx =. */
#include <math.h>
#include <string.h>

#include "core/backend/cpu/internal.h"

void unmix_cpu_maxpool_forward(const struct unmix_pool_geom *g, const float *x, float *y, int32_t *argmax) {
  const int64_t rows = (int64_t)g->n * g->p * g->q;
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < rows; row++) {
    int i = (int)(row / (g->p * g->q));
    int pq = (int)(row % (g->p * g->q));
    int p = pq / g->q, q = pq % g->q;
    const float *xi = x + (int64_t)i * g->h * g->w * g->c;
    float *yo = y + row * g->c;
    int32_t *ao = argmax + row * g->c;
    for (int c = 0; c < g->c; c++) {
      yo[c] = -INFINITY;
      ao[c] = -1;
    }
    /* Scan the window in PyTorch's order (row-major); the first maximum wins, NaN wins. */
    for (int r = 0; r < g->k; r++) {
      int ih = p * g->stride - g->pad + r;
      if (ih < 0 || ih >= g->h) continue;
      for (int s = 0; s < g->k; s++) {
        int iw = q * g->stride - g->pad + s;
        if (iw < 0 || iw >= g->w) continue;
        const float *xv = xi + ((int64_t)ih * g->w + iw) * g->c;
        int32_t flat = ih * g->w + iw;
        for (int c = 0; c < g->c; c++) {
          float v = xv[c];
          if (ao[c] < 0 || v > yo[c] || (isnan(v) && !isnan(yo[c]))) {
            yo[c] = v;
            ao[c] = flat;
          }
        }
      }
    }
  }
}

void unmix_cpu_maxpool_backward(const struct unmix_pool_geom *g, const float *dy, const int32_t *argmax, float *dx) {
  const int64_t img_in = (int64_t)g->h * g->w * g->c, img_out = (int64_t)g->p * g->q * g->c;
#pragma omp parallel for schedule(static)
  for (int i = 0; i < g->n; i++) {
    float *dxi = dx + i * img_in;
    memset(dxi, 0, sizeof(float) * img_in);
    const float *dyi = dy + i * img_out;
    const int32_t *ai = argmax + i * img_out;
    for (int64_t o = 0; o < (int64_t)g->p * g->q; o++)
      for (int c = 0; c < g->c; c++) dxi[(int64_t)ai[o * g->c + c] * g->c + c] += dyi[o * g->c + c];
  }
}

void unmix_cpu_avgpool_forward(int n, int hw, int c, const float *x, float *y) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) {
    float *yo = y + (int64_t)i * c;
    const float *xi = x + (int64_t)i * hw * c;
    for (int ch = 0; ch < c; ch++) yo[ch] = 0.0f;
    for (int p = 0; p < hw; p++)
      for (int ch = 0; ch < c; ch++) yo[ch] += xi[(int64_t)p * c + ch];
    const float inv = 1.0f / (float)hw;
    for (int ch = 0; ch < c; ch++) yo[ch] *= inv;
  }
}

void unmix_cpu_avgpool_backward(int n, int hw, int c, const float *dy, float *dx) {
  const float inv = 1.0f / (float)hw;
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++)
    for (int p = 0; p < hw; p++)
      for (int ch = 0; ch < c; ch++) dx[((int64_t)i * hw + p) * c + ch] = dy[(int64_t)i * c + ch] * inv;
}

void unmix_cpu_pad2d_forward(int n, int h, int w, int c, int pad, float value, const float *x, float *y) {
  const int ho = h + 2 * pad, wo = w + 2 * pad;
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++)
    for (int r = 0; r < ho; r++) {
      float *yr = y + (((int64_t)i * ho + r) * wo) * c;
      int ir = r - pad;
      if (ir < 0 || ir >= h) {
        for (int64_t j = 0; j < (int64_t)wo * c; j++) yr[j] = value;
        continue;
      }
      for (int64_t j = 0; j < (int64_t)pad * c; j++) yr[j] = value;
      memcpy(yr + (int64_t)pad * c, x + (((int64_t)i * h + ir) * w) * c, sizeof(float) * w * c);
      for (int64_t j = (int64_t)(pad + w) * c; j < (int64_t)wo * c; j++) yr[j] = value;
    }
}

void unmix_cpu_pad2d_backward(int n, int h, int w, int c, int pad, const float *dy, float *dx) {
  const int ho = h + 2 * pad, wo = w + 2 * pad;
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++)
    for (int r = 0; r < h; r++)
      memcpy(dx + (((int64_t)i * h + r) * w) * c, dy + (((int64_t)i * ho + r + pad) * wo + pad) * c,
             sizeof(float) * w * c);
}
