// CUDA optimiser updates over flat buffers: SGD with momentum (plain, and per-segment for
// LARC), Adam and the exponential moving average, with the per-element bodies of elementwise.h.
#include "core/backend/cuda/internal.cuh"

#include "core/kernels/elementwise.h"

static __global__ void ema_kernel(int64_t n, float m, const float *q, float *k) {
  UNMIX_GRID_STRIDE(i, n) k[i] = unmix_k_ema(k[i], q[i], m);
}

void unmix_cuda_ema(int64_t n, float m, const float *query, float *key) {
  UNMIX_LAUNCH_N(ema_kernel, n, m, query, key);
}

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
    UNMIX_LAUNCH_N(sgd_kernel, n, p, g, buf, lr, momentum, wd);
    return;
  }
  UNMIX_REQUIRE(off[0] == 0 && off[nseg] == n, "sgd_step segments do not cover the buffer");
  // One upload of the three host tables: [off (nseg+1) | gscale (nseg) | wd (nseg)].
  const size_t ob = sizeof(int64_t) * (size_t)(nseg + 1), fb = sizeof(float) * (size_t)nseg;
  char *dev = (char *)unmix_cuda_scratch(UNMIX_SLOT_SEGMENTS, ob + 2 * fb);
  unmix_cuda_upload(dev, off, ob);
  unmix_cuda_upload(dev + ob, gscale_seg, fb);
  unmix_cuda_upload(dev + ob + fb, wd_seg, fb);
  UNMIX_LAUNCH_N(sgd_seg_kernel, n, p, g, buf, lr, momentum, nseg, (const int64_t *)dev, (const float *)(dev + ob),
           (const float *)(dev + ob + fb));
}

static __global__ void adam_kernel(int64_t n, float *p, const float *g, float *m, float *v, float wd, float w1,
                                   float b2, float w2, float eps, float step_size, float bc2_sqrt) {
  UNMIX_GRID_STRIDE(i, n) unmix_k_adam(&p[i], g[i], &m[i], &v[i], wd, w1, b2, w2, eps, step_size, bc2_sqrt);
}

void unmix_cuda_adam_step(int64_t n, float *p, const float *g, float *m, float *v, float wd, float w1, float b2,
                          float w2, float eps, float step_size, float bc2_sqrt) {
  UNMIX_LAUNCH_N(adam_kernel, n, p, g, m, v, wd, w1, b2, w2, eps, step_size, bc2_sqrt);
}
