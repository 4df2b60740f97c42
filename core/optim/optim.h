/* Optimisers over a model's flat buffers: SGD with momentum exactly as PyTorch (dampening 0,
 * no nesterov, weight decay added to the gradient), LARC exactly as apex with clip=False
 * (FIDELITY §3.7, incl. the zero-norm case), the MoCo key-encoder EMA, and the learning-rate
 * schedules of the reference recipes. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "core/nn/params.h"

#define UNMIX_MAX_MILESTONES 8

enum unmix_optim_kind { UNMIX_OPTIM_SGD = 0, UNMIX_OPTIM_LARC, UNMIX_OPTIM_ADAM /* SimCLR/BYOL: core/optim/adam.h */ };
enum unmix_sched_kind {
  UNMIX_SCHED_COSINE_1BASED = 0, /* per epoch e = 1..E: lr*0.5*(1+cos(pi*e/E)) (MoCo CIFAR, FIDELITY §2.7) */
  UNMIX_SCHED_COSINE,            /* per epoch e = 0..E-1: lr*0.5*(1+cos(pi*e/E)) (MoCo v2 --cos) */
  UNMIX_SCHED_STEP,              /* per epoch: lr * gamma^(number of milestones <= e) */
  UNMIX_SCHED_WARMUP_COSINE,     /* per iteration: linear warmup then cosine to final_lr (SwAV, FIDELITY §3.7) */
  UNMIX_SCHED_CONSTANT,
  UNMIX_SCHED_WARMUP_STEP        /* per iteration: linear warmup over warmup_iters, then x gamma at epochs E - drops[i]
                                  * (the W-MSE codebase's SimCLR/BYOL schedule, core/optim/adam.h) */
};

/* The optimiser spec (the manifest's optim section). */
struct unmix_optim_config {
  enum unmix_optim_kind kind;
  float lr;
  float momentum;
  float weight_decay;
  int batch_size;              /* global batch (split over ranks) */
  float larc_trust;            /* 0.001 */
  float larc_eps;              /* 1e-8 */
  bool larc_clip;              /* false: scale mode (FIDELITY §3.7) */
};

/* The learning-rate schedule (the manifest's schedule section). */
struct unmix_schedule_config {
  enum unmix_sched_kind kind;
  int n_milestones;
  int milestones[UNMIX_MAX_MILESTONES];
  float gamma;                 /* step decay factor (0.1) */
  int warmup_epochs;
  float start_warmup;
  float final_lr;
  int warmup_iters;            /* warmup-step: iterations of linear warmup (500) */
  int n_drops;
  int drops[UNMIX_MAX_MILESTONES]; /* warmup-step: drops at epochs E - d (50, 25) */
};

struct unmix_optimizer {
  enum unmix_optim_kind kind;
  float momentum, weight_decay;
  float larc_trust, larc_eps;
  struct unmix_param_store *store;
  int nseg;
  int64_t *off;          /* host: per-tensor segment offsets (nseg + 1) */
  float *norm_p, *norm_g;/* host scratch: per-tensor norms */
  float *gscale, *wdseg; /* host scratch: per-tensor LARC factors */
  float *dev_sumsq;      /* device scratch: nseg floats */
  bool *skip;            /* host: tensors with no gradient this step (SwAV frozen prototypes) */
  int64_t steps;
};

unmix_status unmix_optimizer_init(struct unmix_optimizer *o, struct unmix_param_store *store,
                                  const struct unmix_optim_config *cfg);
void unmix_optimizer_free(struct unmix_optimizer *o);
/* Marks a tensor as having no gradient (PyTorch: p.grad = None): it is neither decayed nor
 * moved, and its momentum buffer is left untouched. */
void unmix_optimizer_set_skip(struct unmix_optimizer *o, int param_index, bool skip);
/* One step at learning rate lr over the store's gradients. */
void unmix_optimizer_step(struct unmix_optimizer *o, float lr);

/* key = m*key + (1-m)*query over the whole flat parameter buffer (not BN buffers). */
void unmix_ema_update(const struct unmix_backend *be, struct unmix_param_store *key,
                      const struct unmix_param_store *query, float m);

/* Learning rate for (epoch, iteration within epoch). `epoch` is 0-based; the 1-based MoCo
 * CIFAR cosine uses epoch+1 as the reference loop does (FIDELITY §2.7). */
double unmix_lr_at(const struct unmix_schedule_config *s, double base_lr, int epochs, int epoch, int iter,
                   int iters_per_epoch);
