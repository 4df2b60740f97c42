/* BYOL as the W-MSE codebase trains it: the normalised MSE between the online prediction and
 * the (constant) target projection, with its gradient (see wmse_losses.h). */
#include "core/methods/wmse_losses.h"
#include "core/util/error.h"

/* pn, tn, dpn (n, d), norms (2n), cos (n), sum (1). */
int64_t unmix_byol_nmse_workspace(int n, int d) { return 3 * (int64_t)n * d + 3 * (int64_t)n + 16; }

void unmix_byol_nmse(const struct unmix_backend *be, int n, int d, const float *p, const float *t, float dscale, float *dp,
                double *loss, float *work) {
  UNMIX_REQUIRE(n >= 1 && d >= 1, "nmse: n %d, d %d", n, d);
  const int64_t nd = (int64_t)n * d;
  float *pn = work, *tn = pn + nd, *dpn = tn + nd, *norms = dpn + nd, *cos = norms + 2 * n, *sum = cos + n;
  const float eps = 1e-12f; /* F.normalize */
  be->l2norm_forward(n, d, p, pn, norms, eps);
  be->l2norm_forward(n, d, t, tn, norms + n, eps);
  be->row_dot(n, d, pn, tn, cos, 1);
  be->sum(n, cos, sum);
  float s;
  be->memcpy_d2h(&s, sum, sizeof s);
  *loss = 2.0 - 2.0 * (double)s / n;
  if (!dp) return;
  /* d/dpn_i = -2/n tn_i, then through the normalisation of p */
  be->scale(nd, -2.0f * dscale / (float)n, tn, dpn);
  be->l2norm_backward(n, d, dpn, p, norms, eps, pn);
  be->axpy(nd, 1.0f, pn, dp);
}
