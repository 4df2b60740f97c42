/* Adam with coupled L2 (PyTorch's torch.optim.Adam, amsgrad off) over one flat parameter
 * buffer, and the learning-rate schedule of the W-MSE / "self-supervised" codebase used for
 * the SimCLR and BYOL runs: linear warmup over the first iterations, then step drops.
 * Layer-independent: a small parameter struct, no manifest types. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "core/backend/backend.h"
#include "core/util/error.h"

struct unmix_adam_params {
  /* Doubles, as the Python floats PyTorch holds: 1-beta and beta^t are computed in double
   * and only then rounded to float32 (1 - 0.999f is not 0.001f). */
  double beta1, beta2; /* PyTorch defaults 0.9, 0.999 */
  double eps;          /* 1e-8, added to sqrt(v)/sqrt(1-beta2^t) */
  double weight_decay; /* coupled L2: g += wd * p before the moments (not AdamW) */
};
/* beta (0.9, 0.999), eps 1e-8, weight_decay 0. */
struct unmix_adam_params unmix_adam_params_default(void);

/* State over n floats: first and second moments and the step count t (shared by every
 * element: all tensors in the buffer get a gradient every step, as in the reference). */
struct unmix_adam {
  struct unmix_adam_params p;
  const struct unmix_backend *be;
  int64_t n;
  float *m, *v;        /* backend memory, n floats each, zero-initialised (PyTorch's lazy init) */
  bool own_m;          /* m was allocated here (else it is the caller's buffer) */
  int64_t steps;       /* t after the last step */
};

/* Allocates zeroed moments. Errors: n < 1 or a non-finite / out-of-range hyper-parameter
 * (UNMIX_ERR_ARG: beta in [0, 1), eps > 0, wd >= 0), out of memory. */
unmix_status unmix_adam_init(struct unmix_adam *a, const struct unmix_backend *be, int64_t n,
                             const struct unmix_adam_params *p);
/* The same with the first moment in the caller's zero-filled buffer m_ext (n floats of backend
 * memory, e.g. a param store's momentum buffer, which the checkpoint already saves); it is
 * not freed by unmix_adam_free. */
unmix_status unmix_adam_init_ext(struct unmix_adam *a, const struct unmix_backend *be, int64_t n,
                                 const struct unmix_adam_params *p, float *m_ext);
void unmix_adam_free(struct unmix_adam *a);
/* One step at learning rate lr, exactly PyTorch's single-tensor Adam in float32:
 *   t += 1;  g' = g + wd*p;  m = lerp(m, g', 1-beta1);  v = beta2*v + (1-beta2)*g'^2;
 *   p -= (lr / (1-beta1^t)) * m / (sqrt(v) / sqrt(1-beta2^t) + eps)
 * (bias corrections in double, as Python computes them). param and grad are n floats in the
 * backend's memory (a param store's data/grad). The grad buffer is not modified. */
void unmix_adam_step(struct unmix_adam *a, float *param, const float *grad, double lr);

/* The reference schedule. Iteration k (0-based, global) of 0-based epoch `epoch`:
 *   k < warmup_iters:  lr = base * (k + 1) / warmup_iters   (set before the step)
 *   otherwise:         lr = base * gamma^(number of effective drops m <= epoch)
 * Drops come from MultiStepLR stepped at the end of every epoch, milestones epochs-d for each
 * d in drops[] (reference: d = 50, 25, gamma 0.2). A milestone m < 0 never fires; a drop that
 * fires while the warmup is still running is overwritten by the warmup (the warmup assigns
 * the lr absolutely), so m counts only when m * iters_per_epoch >= warmup_iters. */
struct unmix_wmse_schedule {
  int warmup_iters;    /* 500; 0 = no warmup (--no_lr_warmup) */
  int n_drops;
  int drops[8];        /* epochs before the end: 50, 25 */
  double gamma;        /* 0.2 */
};
struct unmix_wmse_schedule unmix_wmse_schedule_default(void);
double unmix_wmse_lr(const struct unmix_wmse_schedule *s, double base_lr, int epochs, int epoch,
                     int64_t global_iter, int iters_per_epoch);

/* BYOL target momentum tau at 0-based epoch `epoch` of E:
 *   tau = 1 - (1 - tau0) * (cos(pi * epoch / E) + 1) / 2   (constant within an epoch). */
double unmix_byol_tau(double tau0, int epoch, int epochs);
