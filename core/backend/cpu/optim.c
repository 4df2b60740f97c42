/* CPU optimiser updates over flat buffers: SGD with momentum (plain and per-segment, for
 * LARC), Adam and the exponential moving average. Bodies shared with CUDA via elementwise.h. */
#include "core/backend/cpu/internal.h"
#include "core/kernels/elementwise.h"

void unmix_cpu_sgd_step(int64_t n, float *p, const float *g, float *buf, float lr, float momentum, float wd,
                        int nseg, const int64_t *off, const float *gscale_seg, const float *wd_seg) {
  if (nseg <= 0) {
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; i++) unmix_k_sgd(&p[i], g[i], &buf[i], lr, momentum, wd, 1.0f);
    return;
  }
  UNMIX_REQUIRE(off[0] == 0 && off[nseg] == n, "sgd_step segments do not cover the buffer");
  for (int s = 0; s < nseg; s++) {
    const float gs = gscale_seg[s], ws = wd_seg[s];
#pragma omp parallel for schedule(static)
    for (int64_t i = off[s]; i < off[s + 1]; i++) unmix_k_sgd(&p[i], g[i], &buf[i], lr, momentum, ws, gs);
  }
}

void unmix_cpu_ema(int64_t n, float m, const float *query, float *key) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; i++) key[i] = unmix_k_ema(key[i], query[i], m);
}

void unmix_cpu_adam_step(int64_t n, float *p, const float *g, float *m, float *v, float wd, float w1, float b2,
                         float w2, float eps, float step_size, float bc2_sqrt) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; i++) unmix_k_adam(&p[i], g[i], &m[i], &v[i], wd, w1, b2, w2, eps, step_size, bc2_sqrt);
}
