/* SimCLR as the W-MSE codebase trains it ("contrastive"): the symmetric NT-Xent loss over
 * 2N-2 negatives with its gradient (see wmse_losses.h). The diagonal of each same-view
 * similarity block is pushed to -1e9 exactly as the reference's eye mask does, so its
 * softmax weight underflows to 0 and it drops out of the gradient too. */
#include <stdlib.h>
#include <string.h>

#include "core/methods/wmse_losses.h"
#include "core/util/error.h"

/* a, b, norms (2n), logits (n, 2n), probs (n, 2n), dlogits (n, 2n), mask (n, 2n), da, db (n, d),
 * loss (1), labels (n int32 in float slots). */
int64_t unmix_simclr_ntxent_workspace(int n, int d) {
  return 4 * (int64_t)n * d + 2 * (int64_t)n + 4 * (int64_t)n * 2 * n + 1 + n + 16;
}

/* One direction: anchors x against [y; x]. G = dloss-scaled dCE/dlogits; dx += G1 y/tau +
 * (G2 + G2^T) x/tau, dy += G1^T x/tau. */
static double direction(const struct unmix_backend *be, int n, int d, float tau, const float *x, const float *y,
                        float dloss, float *dx, float *dy, float *logits, float *probs, float *dlog, const float *mask,
                        const int32_t *labels, float *lossbuf) {
  const int w = 2 * n;
  const float it = 1.0f / tau;
  be->gemm(false, true, n, n, d, it, x, d, y, d, 0.0f, logits, w);     /* x y^T / tau */
  be->gemm(false, true, n, n, d, it, x, d, x, d, 0.0f, logits + n, w); /* x x^T / tau */
  be->add((int64_t)n * w, logits, mask, logits);                      /* - 1e9 on the self terms */
  be->cross_entropy_forward(n, w, 1.0f, logits, labels, probs, lossbuf, NULL, NULL);
  float l;
  be->memcpy_d2h(&l, lossbuf, sizeof l);
  if (dx || dy) {
    be->cross_entropy_backward(n, w, 1.0f, dloss, probs, labels, dlog);
    if (dx) {
      be->gemm(false, false, n, d, n, it, dlog, w, y, d, 1.0f, dx, d);
      be->gemm(false, false, n, d, n, it, dlog + n, w, x, d, 1.0f, dx, d);
      be->gemm(true, false, n, d, n, it, dlog + n, w, x, d, 1.0f, dx, d);
    }
    if (dy) be->gemm(true, false, n, d, n, it, dlog, w, x, d, 1.0f, dy, d);
  }
  return l;
}

void unmix_simclr_ntxent(const struct unmix_backend *be, int n, int d, float tau, const float *z0, const float *z1,
                  float dscale, float *dz0, float *dz1, double *loss, float *work) {
  UNMIX_REQUIRE(n >= 2 && d >= 1 && tau > 0.0f, "ntxent: n %d, d %d, tau %g", n, d, (double)tau);
  const int64_t nd = (int64_t)n * d, nw = (int64_t)n * 2 * n;
  float *a = work, *b = a + nd, *da = b + nd, *db = da + nd, *norms = db + nd;
  float *logits = norms + 2 * n, *probs = logits + nw, *dlog = probs + nw, *mask = dlog + nw;
  float *lossbuf = mask + nw;
  int32_t *labels = (int32_t *)(lossbuf + 1);
  /* the mask and the targets arange(n) (small host tables, rebuilt per call) */
  float *hm = calloc((size_t)nw, sizeof(float));
  int32_t *hl = malloc(sizeof(int32_t) * (size_t)n);
  UNMIX_REQUIRE(hm && hl, "ntxent: out of host memory");
  for (int i = 0; i < n; i++) {
    hm[(int64_t)i * 2 * n + n + i] = -1e9f;
    hl[i] = i;
  }
  be->memcpy_h2d(mask, hm, sizeof(float) * (size_t)nw);
  be->memcpy_h2d(labels, hl, sizeof(int32_t) * (size_t)n);
  free(hm);
  free(hl);
  const float eps = 1e-12f;
  be->l2norm_forward(n, d, z0, a, norms, eps);
  be->l2norm_forward(n, d, z1, b, norms + n, eps);
  const int grad = dz0 || dz1;
  if (grad) {
    be->fill(nd, 0.0f, da);
    be->fill(nd, 0.0f, db);
  }
  /* (CE_a + CE_b) / 2: each direction's cross-entropy gets dloss = dscale / 2 */
  const float half = 0.5f * dscale;
  double la = direction(be, n, d, tau, a, b, half, grad ? da : NULL, grad ? db : NULL, logits, probs, dlog, mask,
                        labels, lossbuf);
  double lb = direction(be, n, d, tau, b, a, half, grad ? db : NULL, grad ? da : NULL, logits, probs, dlog, mask,
                        labels, lossbuf);
  *loss = (la + lb) / 2.0;
  if (!grad) return;
  /* through the normalisation (a and b are free now: scratch for the input gradients) */
  if (dz0) {
    be->l2norm_backward(n, d, da, z0, norms, eps, a);
    be->axpy(nd, 1.0f, a, dz0);
  }
  if (dz1) {
    be->l2norm_backward(n, d, db, z1, norms + n, eps, b);
    be->axpy(nd, 1.0f, b, dz1);
  }
}
