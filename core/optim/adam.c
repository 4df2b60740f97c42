/* Adam (PyTorch semantics, coupled L2), the W-MSE codebase's warmup + step-drop schedule and
 * the BYOL target-momentum schedule (see adam.h). The element-wise update is the backend's
 * adam_step op (core/kernels/elementwise.h's body on either backend), so a device backend
 * updates its buffers in place; this file computes the per-step scalars in double. */
#include "core/optim/adam.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct unmix_adam_params unmix_adam_params_default(void) {
  return (struct unmix_adam_params){.beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.0};
}

unmix_status unmix_adam_init(struct unmix_adam *a, const struct unmix_backend *be, int64_t n,
                             const struct unmix_adam_params *p) {
  return unmix_adam_init_ext(a, be, n, p, NULL);
}

unmix_status unmix_adam_init_ext(struct unmix_adam *a, const struct unmix_backend *be, int64_t n,
                                 const struct unmix_adam_params *p, float *m_ext) {
  memset(a, 0, sizeof *a);
  if (!be || !p || n < 1) return unmix_error_set(UNMIX_ERR_ARG, "adam: need a backend, parameters and n >= 1");
  if (!(p->beta1 >= 0.0 && p->beta1 < 1.0) || !(p->beta2 >= 0.0 && p->beta2 < 1.0))
    return unmix_error_set(UNMIX_ERR_ARG, "adam: betas (%g, %g) must lie in [0, 1)", p->beta1, p->beta2);
  if (!(p->eps > 0.0) || !isfinite(p->eps))
    return unmix_error_set(UNMIX_ERR_ARG, "adam: eps = %g must be positive and finite", p->eps);
  if (!(p->weight_decay >= 0.0) || !isfinite(p->weight_decay))
    return unmix_error_set(UNMIX_ERR_ARG, "adam: weight_decay = %g must be >= 0 and finite", p->weight_decay);
  a->p = *p;
  a->be = be;
  a->n = n;
  size_t bytes = sizeof(float) * (size_t)n;
  a->own_m = m_ext == NULL;
  a->m = m_ext ? m_ext : be->alloc(bytes);
  a->v = be->alloc(bytes);
  if (!a->m || !a->v) {
    unmix_adam_free(a);
    return unmix_error_set(UNMIX_ERR_NOMEM, "adam: moments for %lld parameters", (long long)n);
  }
  be->fill(n, 0.0f, a->m);
  be->fill(n, 0.0f, a->v);
  return UNMIX_OK;
}

void unmix_adam_free(struct unmix_adam *a) {
  if (a->be) {
    if (a->m && a->own_m) a->be->free(a->m);
    if (a->v) a->be->free(a->v);
  }
  memset(a, 0, sizeof *a);
}

void unmix_adam_step(struct unmix_adam *a, float *param, const float *grad, double lr) {
  a->steps++;
  const double t = (double)a->steps;
  const double bc1 = 1.0 - pow(a->p.beta1, t);
  const double bc2 = 1.0 - pow(a->p.beta2, t);
  const float step_size = (float)(lr / bc1); /* Python: lr / bias_correction1 in double */
  const float bc2_sqrt = (float)sqrt(bc2);
  /* ATen casts each Python scalar to float32 once; 1 - beta is formed in double first */
  const struct unmix_adam_params *ap = &a->p;
  a->be->adam_step(a->n, param, grad, a->m, a->v, (float)ap->weight_decay, (float)(1.0 - ap->beta1), (float)ap->beta2,
                   (float)(1.0 - ap->beta2), (float)ap->eps, step_size, bc2_sqrt);
}

struct unmix_wmse_schedule unmix_wmse_schedule_default(void) {
  return (struct unmix_wmse_schedule){.warmup_iters = 500, .n_drops = 2, .drops = {50, 25}, .gamma = 0.2};
}

double unmix_wmse_lr(const struct unmix_wmse_schedule *s, double base_lr, int epochs, int epoch,
                     int64_t global_iter, int iters_per_epoch) {
  if (global_iter < s->warmup_iters) return base_lr * (double)(global_iter + 1) / (double)s->warmup_iters;
  double lr = base_lr;
  for (int i = 0; i < s->n_drops; i++) {
    int64_t m = (int64_t)epochs - s->drops[i];
    /* MultiStepLR: lr *= gamma when last_epoch reaches m (m = 0: at construction); the
     * warmup's absolute assignment wipes any drop before its last iteration. */
    if (m >= 0 && m <= epoch && m * (int64_t)iters_per_epoch >= s->warmup_iters) lr *= s->gamma;
  }
  return lr;
}

double unmix_byol_tau(double tau0, int epoch, int epochs) {
  return 1.0 - (1.0 - tau0) * (cos(M_PI * (double)epoch / (double)epochs) + 1.0) / 2.0;
}
