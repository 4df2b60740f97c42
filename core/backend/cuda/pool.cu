// CUDA max-pool, global average pool and constant padding over NHWC. Every output element
// is written by exactly one thread (pool backward gathers instead of scattering), so results
// are deterministic and match the CPU bit for bit. dx =.
#include "core/backend/cuda/internal.cuh"

static __global__ void maxpool_kernel(int64_t total, struct unmix_pool_geom g, const float *x, float *y,
                                      int32_t *argmax) {
  UNMIX_GRID_STRIDE(t, total) {
    int c = (int)(t % g.c);
    int64_t pix = t / g.c;
    int q = (int)(pix % g.q);
    int64_t r = pix / g.q;
    int p = (int)(r % g.p);
    int64_t i = r / g.p;
    const float *xi = x + i * g.h * g.w * g.c + c;
    float best = -INFINITY;
    int32_t arg = -1;
    // Window scanned in PyTorch's (row-major) order; the first maximum wins, NaN wins.
    for (int kr = 0; kr < g.k; kr++) {
      int ih = p * g.stride - g.pad + kr;
      if (ih < 0 || ih >= g.h) continue;
      for (int ks = 0; ks < g.k; ks++) {
        int iw = q * g.stride - g.pad + ks;
        if (iw < 0 || iw >= g.w) continue;
        int32_t flat = ih * g.w + iw;
        float v = xi[(int64_t)flat * g.c];
        if (arg < 0 || v > best || (isnan(v) && !isnan(best))) {
          best = v;
          arg = flat;
        }
      }
    }
    y[t] = best;
    argmax[t] = arg;
  }
}

/* Each input element sums the output gradients whose argmax names it, in output order (the
 * order of the CPU's scatter), so the result matches it bit for bit without atomics. */
static __global__ void maxpool_grad_kernel(int64_t total, struct unmix_pool_geom g, const float *dy,
                                           const int32_t *argmax, float *dx) {
  UNMIX_GRID_STRIDE(t, total) {
    int c = (int)(t % g.c);
    int64_t pix = t / g.c;
    int iw = (int)(pix % g.w);
    int64_t r = pix / g.w;
    int ih = (int)(r % g.h);
    int64_t i = r / g.h;
    int32_t flat = ih * g.w + iw;
    int nr = ih + g.pad - g.k + 1, nc = iw + g.pad - g.k + 1;
    int p0 = nr <= 0 ? 0 : (nr + g.stride - 1) / g.stride, p1 = (ih + g.pad) / g.stride;
    int q0 = nc <= 0 ? 0 : (nc + g.stride - 1) / g.stride, q1 = (iw + g.pad) / g.stride;
    if (p1 > g.p - 1) p1 = g.p - 1;
    if (q1 > g.q - 1) q1 = g.q - 1;
    float acc = 0.0f;
    const int64_t base = i * g.p * g.q;
    for (int p = p0; p <= p1; p++)
      for (int q = q0; q <= q1; q++) {
        int64_t o = ((base + (int64_t)p * g.q + q) * g.c) + c;
        if (argmax[o] == flat) acc += dy[o];
      }
    dx[t] = acc;
  }
}

static __global__ void avgpool_kernel(int64_t total, int hw, int c, const float *x, float *y) {
  UNMIX_GRID_STRIDE(t, total) {
    int64_t i = t / c;
    int ch = (int)(t - i * c);
    const float *xi = x + i * hw * c + ch;
    float acc = 0.0f; // float, in position order: the CPU's arithmetic exactly
    for (int p = 0; p < hw; p++) acc += xi[(int64_t)p * c];
    y[t] = acc * (1.0f / (float)hw);
  }
}
static __global__ void avgpool_grad_kernel(int64_t total, int hw, int c, const float *dy, float *dx) {
  const float inv = 1.0f / (float)hw;
  UNMIX_GRID_STRIDE(t, total) {
    int ch = (int)(t % c);
    int64_t i = t / ((int64_t)hw * c);
    dx[t] = dy[i * c + ch] * inv;
  }
}

static __global__ void pad_kernel(int64_t total, int h, int w, int c, int pad, float value, const float *x,
                                  float *y) {
  const int ho = h + 2 * pad, wo = w + 2 * pad;
  UNMIX_GRID_STRIDE(t, total) {
    int ch = (int)(t % c);
    int64_t pix = t / c;
    int col = (int)(pix % wo);
    int64_t r = pix / wo;
    int row = (int)(r % ho);
    int64_t i = r / ho;
    int ir = row - pad, ic = col - pad;
    y[t] = (ir < 0 || ir >= h || ic < 0 || ic >= w) ? value : x[((i * h + ir) * w + ic) * c + ch];
  }
}
static __global__ void pad_grad_kernel(int64_t total, int h, int w, int c, int pad, const float *dy, float *dx) {
  const int ho = h + 2 * pad, wo = w + 2 * pad;
  UNMIX_GRID_STRIDE(t, total) {
    int ch = (int)(t % c);
    int64_t pix = t / c;
    int col = (int)(pix % w);
    int64_t r = pix / w;
    int row = (int)(r % h);
    int64_t i = r / h;
    dx[t] = dy[((i * ho + row + pad) * wo + col + pad) * c + ch];
  }
}

void unmix_cuda_maxpool_forward(const struct unmix_pool_geom *g, const float *x, float *y, int32_t *argmax) {
  const int64_t total = (int64_t)g->n * g->p * g->q * g->c;
  UNMIX_LAUNCH_N(maxpool_kernel, total, *g, x, y, argmax);
}
void unmix_cuda_maxpool_backward(const struct unmix_pool_geom *g, const float *dy, const int32_t *argmax, float *dx) {
  const int64_t total = (int64_t)g->n * g->h * g->w * g->c;
  UNMIX_LAUNCH_N(maxpool_grad_kernel, total, *g, dy, argmax, dx);
}
void unmix_cuda_avgpool_forward(int n, int hw, int c, const float *x, float *y) {
  const int64_t total = (int64_t)n * c;
  UNMIX_LAUNCH_N(avgpool_kernel, total, hw, c, x, y);
}
void unmix_cuda_avgpool_backward(int n, int hw, int c, const float *dy, float *dx) {
  const int64_t total = (int64_t)n * hw * c;
  UNMIX_LAUNCH_N(avgpool_grad_kernel, total, hw, c, dy, dx);
}
void unmix_cuda_pad2d_forward(int n, int h, int w, int c, int pad, float value, const float *x, float *y) {
  const int64_t total = (int64_t)n * (h + 2 * pad) * (w + 2 * pad) * c;
  UNMIX_LAUNCH_N(pad_kernel, total, h, w, c, pad, value, x, y);
}
void unmix_cuda_pad2d_backward(int n, int h, int w, int c, int pad, const float *dy, float *dx) {
  const int64_t total = (int64_t)n * h * w * c;
  UNMIX_LAUNCH_N(pad_grad_kernel, total, h, w, c, pad, dy, dx);
}
