// CUDA element-wise, batch-axis, Un-Mix mixing, pooling, padding and optimiser-update ops.
// The per-element arithmetic is the UNMIX_HD bodies of core/kernels/elementwise.h, the same
// code the CPU backend runs. Every output element is written by exactly one thread (pool
// backward gathers instead of scattering), so results are deterministic. dx =.
#include "core/backend/cuda/cuda_internal.cuh"

#include "core/kernels/elementwise.h"

/* ---- element-wise ------------------------------------------------------------------------ */
static __global__ void relu_kernel(int64_t n, const float *x, float *y) {
  UNMIX_GRID_STRIDE(i, n) y[i] = unmix_k_relu(x[i]);
}
static __global__ void relu_grad_kernel(int64_t n, const float *dy, const float *y, float *dx) {
  UNMIX_GRID_STRIDE(i, n) dx[i] = unmix_k_relu_grad(dy[i], y[i]);
}
static __global__ void add_kernel(int64_t n, const float *a, const float *b, float *y) {
  UNMIX_GRID_STRIDE(i, n) y[i] = a[i] + b[i];
}
static __global__ void add_relu_kernel(int64_t n, const float *a, const float *b, float *y) {
  UNMIX_GRID_STRIDE(i, n) y[i] = unmix_k_relu(a[i] + b[i]);
}
static __global__ void fill_kernel(int64_t n, float v, float *y) {
  UNMIX_GRID_STRIDE(i, n) y[i] = v;
}
static __global__ void scale_kernel(int64_t n, float a, const float *x, float *y) {
  UNMIX_GRID_STRIDE(i, n) y[i] = a * x[i];
}
static __global__ void axpy_kernel(int64_t n, float a, const float *x, float *y) {
  UNMIX_GRID_STRIDE(i, n) y[i] += a * x[i];
}
static __global__ void axpby_kernel(int64_t n, float a, const float *x, float b, float *y) {
  UNMIX_GRID_STRIDE(i, n) y[i] = a * x[i] + b * y[i];
}
static __global__ void exp_scaled_kernel(int64_t n, float a, float b, const float *x, float *y) {
  // The product is rounded before the subtraction, as the CPU's expf(a*x - b) does, so the
  // exponent argument is the same float on both backends.
  UNMIX_GRID_STRIDE(i, n) y[i] = expf(__fsub_rn(__fmul_rn(a, x[i]), b));
}
static __global__ void ema_kernel(int64_t n, float m, const float *q, float *k) {
  UNMIX_GRID_STRIDE(i, n) k[i] = unmix_k_ema(k[i], q[i], m);
}

#define LAUNCH_N(kernel, n, ...)                                                                  \
  do {                                                                                            \
    if ((n) <= 0) return;                                                                         \
    kernel<<<unmix_cuda_blocks(n), UNMIX_CUDA_THREADS, 0, unmix_cuda.stream>>>((n), __VA_ARGS__); \
    UNMIX_CUDA_LAUNCHED();                                                                        \
  } while (0)

void unmix_cuda_relu_forward(int64_t n, const float *x, float *y) { LAUNCH_N(relu_kernel, n, x, y); }
void unmix_cuda_relu_backward(int64_t n, const float *dy, const float *y, float *dx) {
  LAUNCH_N(relu_grad_kernel, n, dy, y, dx);
}
void unmix_cuda_add(int64_t n, const float *a, const float *b, float *y) { LAUNCH_N(add_kernel, n, a, b, y); }
void unmix_cuda_add_relu_forward(int64_t n, const float *a, const float *b, float *y) {
  LAUNCH_N(add_relu_kernel, n, a, b, y);
}
void unmix_cuda_fill(int64_t n, float value, float *y) { LAUNCH_N(fill_kernel, n, value, y); }
void unmix_cuda_scale(int64_t n, float a, const float *x, float *y) { LAUNCH_N(scale_kernel, n, a, x, y); }
void unmix_cuda_axpy(int64_t n, float a, const float *x, float *y) { LAUNCH_N(axpy_kernel, n, a, x, y); }
void unmix_cuda_axpby(int64_t n, float a, const float *x, float b, float *y) {
  LAUNCH_N(axpby_kernel, n, a, x, b, y);
}
void unmix_cuda_exp_scaled(int64_t n, float a, float b, const float *x, float *y) {
  LAUNCH_N(exp_scaled_kernel, n, a, b, x, y);
}
void unmix_cuda_ema(int64_t n, float m, const float *query, float *key) { LAUNCH_N(ema_kernel, n, m, query, key); }

void unmix_cuda_copy(int64_t n, const float *x, float *y) {
  if (n <= 0 || x == y) return;
  const size_t bytes = sizeof(float) * (size_t)n;
  const char *xs = (const char *)x, *ys = (const char *)y;
  if (ys < xs + bytes && xs < ys + bytes) {
    // Overlapping ranges (the CPU op is a memmove): cudaMemcpy does not allow overlap.
    void *tmp = unmix_cuda_scratch(UNMIX_SLOT_TEMP, bytes);
    UNMIX_CUDA_CHECK(cudaMemcpyAsync(tmp, x, bytes, cudaMemcpyDeviceToDevice, unmix_cuda.stream));
    UNMIX_CUDA_CHECK(cudaMemcpyAsync(y, tmp, bytes, cudaMemcpyDeviceToDevice, unmix_cuda.stream));
    return;
  }
  UNMIX_CUDA_CHECK(cudaMemcpyAsync(y, x, bytes, cudaMemcpyDeviceToDevice, unmix_cuda.stream));
}

/* ---- batch-axis ops and Un-Mix mixing ----------------------------------------------------- */
static __global__ void flip_kernel(int64_t total, int n, int64_t row, const float *x, float *y) {
  UNMIX_GRID_STRIDE(t, total) {
    int64_t i = t / row, j = t - i * row;
    y[t] = x[(int64_t)(n - 1 - i) * row + j];
  }
}
static __global__ void gather_kernel(int64_t total, int64_t row, const int32_t *idx, const float *x, float *y) {
  UNMIX_GRID_STRIDE(t, total) {
    int64_t i = t / row, j = t - i * row;
    y[t] = x[(int64_t)idx[i] * row + j];
  }
}
static __global__ void scatter_kernel(int64_t total, int64_t row, const int32_t *idx, const float *x, float *y) {
  UNMIX_GRID_STRIDE(t, total) {
    int64_t i = t / row, j = t - i * row;
    y[(int64_t)idx[i] * row + j] = x[t];
  }
}
static __global__ void mix_global_kernel(int64_t total, int n, int64_t row, float lam, const float *x, float *y) {
  UNMIX_GRID_STRIDE(t, total) {
    int64_t i = t / row, j = t - i * row;
    y[t] = unmix_k_mix(x[t], x[(int64_t)(n - 1 - i) * row + j], lam);
  }
}
static __global__ void mix_region_kernel(int64_t total, int n, int h, int w, int c, int r0, int r1, int c0, int c1,
                                         const float *x, float *y) {
  const int64_t img = (int64_t)h * w * c;
  UNMIX_GRID_STRIDE(t, total) {
    int64_t i = t / img, off = t - i * img;
    int64_t pix = off / c;
    int row = (int)(pix / w), col = (int)(pix - (int64_t)row * w);
    y[t] = unmix_k_in_box(row, col, r0, r1, c0, c1) ? x[(int64_t)(n - 1 - i) * img + off] : x[t];
  }
}

void unmix_cuda_flip_batch(int n, int64_t row, const float *x, float *y) {
  UNMIX_REQUIRE(x != y, "flip_batch cannot work in place");
  const int64_t total = (int64_t)n * row;
  LAUNCH_N(flip_kernel, total, n, row, x, y);
}
void unmix_cuda_gather_rows(int n, int64_t row, const int32_t *idx, const float *x, float *y) {
  const int64_t total = (int64_t)n * row;
  LAUNCH_N(gather_kernel, total, row, idx, x, y);
}
void unmix_cuda_scatter_rows(int n, int64_t row, const int32_t *idx, const float *x, float *y) {
  const int64_t total = (int64_t)n * row;
  LAUNCH_N(scatter_kernel, total, row, idx, x, y);
}
void unmix_cuda_mix_global(int n, int64_t row, float lam, const float *x, float *y) {
  UNMIX_REQUIRE(x != y, "mix_global cannot work in place");
  const int64_t total = (int64_t)n * row;
  LAUNCH_N(mix_global_kernel, total, n, row, lam, x, y);
}
void unmix_cuda_mix_region(int n, int h, int w, int c, int r0, int r1, int c0, int c1, const float *x, float *y) {
  UNMIX_REQUIRE(x != y, "mix_region cannot work in place");
  const int64_t total = (int64_t)n * h * w * c;
  LAUNCH_N(mix_region_kernel, total, n, h, w, c, r0, r1, c0, c1, x, y);
}

/* ---- rows and columns scaling --------------------------------------------------------------- */
static __global__ void scale_rows_kernel(int64_t total, int d, const float *s, float *x) {
  UNMIX_GRID_STRIDE(t, total) x[t] *= s[t / d];
}
static __global__ void scale_cols_kernel(int64_t total, int d, const float *s, float *x) {
  UNMIX_GRID_STRIDE(t, total) x[t] *= s[t % d];
}
void unmix_cuda_scale_rows(int n, int d, const float *s, float *x) {
  const int64_t total = (int64_t)n * d;
  LAUNCH_N(scale_rows_kernel, total, d, s, x);
}
void unmix_cuda_scale_cols(int n, int d, const float *s, float *x) {
  const int64_t total = (int64_t)n * d;
  LAUNCH_N(scale_cols_kernel, total, d, s, x);
}

/* ---- pooling and padding ------------------------------------------------------------------ */
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
  LAUNCH_N(maxpool_kernel, total, *g, x, y, argmax);
}
void unmix_cuda_maxpool_backward(const struct unmix_pool_geom *g, const float *dy, const int32_t *argmax, float *dx) {
  const int64_t total = (int64_t)g->n * g->h * g->w * g->c;
  LAUNCH_N(maxpool_grad_kernel, total, *g, dy, argmax, dx);
}
void unmix_cuda_avgpool_forward(int n, int hw, int c, const float *x, float *y) {
  const int64_t total = (int64_t)n * c;
  LAUNCH_N(avgpool_kernel, total, hw, c, x, y);
}
void unmix_cuda_avgpool_backward(int n, int hw, int c, const float *dy, float *dx) {
  const int64_t total = (int64_t)n * hw * c;
  LAUNCH_N(avgpool_grad_kernel, total, hw, c, dy, dx);
}
void unmix_cuda_pad2d_forward(int n, int h, int w, int c, int pad, float value, const float *x, float *y) {
  const int64_t total = (int64_t)n * (h + 2 * pad) * (w + 2 * pad) * c;
  LAUNCH_N(pad_kernel, total, h, w, c, pad, value, x, y);
}
void unmix_cuda_pad2d_backward(int n, int h, int w, int c, int pad, const float *dy, float *dx) {
  const int64_t total = (int64_t)n * h * w * c;
  LAUNCH_N(pad_grad_kernel, total, h, w, c, pad, dy, dx);
}

/* ---- optimiser ------------------------------------------------------------------------------ */
static __global__ void sgd_kernel(int64_t n, float *p, const float *g, float *buf, float lr, float momentum,
                                  float wd) {
  UNMIX_GRID_STRIDE(i, n) unmix_k_sgd(&p[i], g[i], &buf[i], lr, momentum, wd, 1.0f);
}
/* Segment of element i: the s with off[s] <= i < off[s+1] (binary search over the LARC
 * table, a few hundred entries, read through the cache). */
static __global__ void sgd_seg_kernel(int64_t n, float *p, const float *g, float *buf, float lr, float momentum,
                                      int nseg, const int64_t *off, const float *gs, const float *ws) {
  UNMIX_GRID_STRIDE(i, n) {
    int lo = 0, hi = nseg - 1;
    while (lo < hi) {
      int mid = (lo + hi + 1) >> 1;
      if (off[mid] <= i) lo = mid;
      else hi = mid - 1;
    }
    unmix_k_sgd(&p[i], g[i], &buf[i], lr, momentum, ws[lo], gs[lo]);
  }
}

void unmix_cuda_sgd_step(int64_t n, float *p, const float *g, float *buf, float lr, float momentum, float wd,
                         int nseg, const int64_t *off, const float *gscale_seg, const float *wd_seg) {
  if (nseg <= 0) {
    LAUNCH_N(sgd_kernel, n, p, g, buf, lr, momentum, wd);
    return;
  }
  UNMIX_REQUIRE(off[0] == 0 && off[nseg] == n, "sgd_step segments do not cover the buffer");
  // One upload of the three host tables: [off (nseg+1) | gscale (nseg) | wd (nseg)].
  const size_t ob = sizeof(int64_t) * (size_t)(nseg + 1), fb = sizeof(float) * (size_t)nseg;
  char *dev = (char *)unmix_cuda_scratch(UNMIX_SLOT_SEGMENTS, ob + 2 * fb);
  unmix_cuda_upload(dev, off, ob);
  unmix_cuda_upload(dev + ob, gscale_seg, fb);
  unmix_cuda_upload(dev + ob + fb, wd_seg, fb);
  LAUNCH_N(sgd_seg_kernel, n, p, g, buf, lr, momentum, nseg, (const int64_t *)dev, (const float *)(dev + ob),
           (const float *)(dev + ob + fb));
}
