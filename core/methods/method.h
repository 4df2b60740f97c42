/* Self-supervised methods behind one interface: MoCo v1/v2 (symmetric or asymmetric) and
 * SwAV, each with or without Un-Mix. A method owns its state (models, queue, prototypes,
 * momentum encoder, optimiser) and runs one whole training iteration per step(): its
 * forward passes, losses, backward passes, gradient all-reduce (through the communicator)
 * and optimiser update. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "core/backend/backend.h"
#include "core/io/config.h"
#include "core/methods/mix.h"
#include "core/nn/model.h"
#include "core/optim/optim.h"

struct unmix_comm; /* core/dist/comm.h; NULL = single process */

#define UNMIX_METHOD_MAX_VIEWS 16
/* One training batch on the method's backend: view v is (n, size[v], size[v], 3) NHWC. */
struct unmix_views {
  int n;
  int nviews;
  int size[UNMIX_METHOD_MAX_VIEWS];
  const float *view[UNMIX_METHOD_MAX_VIEWS];
};

#define UNMIX_MAX_TERMS 4
struct unmix_step_stats {
  double loss;                       /* the total combined loss */
  int nterms;
  const char *term_names[UNMIX_MAX_TERMS];
  double terms[UNMIX_MAX_TERMS];     /* MoCo: loss_cl, loss_mix, loss_mix_flip; SwAV: loss_swav, loss_mix, loss_mix_rev */
  double acc1, acc5;                 /* MoCo instance-discrimination top-1/5 (%), original logits; < 0 if n/a */
  int mix_mode;                      /* -1 no mixing, 0 region, 1 global */
  double lam;                        /* lambda the loss used */
};

struct unmix_method;

/* image_size: the training views' size (square). comm may be NULL. */
unmix_status unmix_method_create(const struct unmix_config *cfg, const struct unmix_backend *be, int image_size,
                                 struct unmix_comm *comm, struct unmix_method **out);
void unmix_method_destroy(struct unmix_method *m);
/* One iteration. step = global iteration number (0-based), used for every random draw and
 * for SwAV's prototype freezing; epoch for SwAV's queue start. */
unmix_status unmix_method_step(struct unmix_method *m, const struct unmix_views *v, int64_t step, int epoch,
                               float lr, struct unmix_step_stats *st);
/* The encoder evaluated by kNN / exported as the backbone (MoCo: encoder_q; SwAV: the model). */
struct unmix_model *unmix_method_encoder(struct unmix_method *m);
/* Called at the start of every epoch (SwAV resets use_the_queue). */
void unmix_method_begin_epoch(struct unmix_method *m, int epoch);
int unmix_method_views_needed(const struct unmix_method *m);
/* Training FLOPs of one step per sample of the local batch (forward 1x, backward 2x the
 * forward for the passes that back-propagate), from the model's layer shapes. */
double unmix_method_step_flops_per_sample(const struct unmix_method *m);
/* Device bytes held by the method: parameters, gradients, optimiser and method state, and
 * every activation context's arena (call after a step for the high-water). */
size_t unmix_method_device_bytes(const struct unmix_method *m);

/* ---- state for checkpoints: named device buffers the trainer saves and restores ------- */
struct unmix_state_entry {
  char name[128];
  float *data;        /* device */
  int64_t numel;
  int ndim;
  int shape[4];
  bool per_rank;      /* differs between ranks (SwAV's queue): a checkpoint holds every rank's copy */
};
/* Every buffer of method state beyond the encoder's parameters and BN buffers (MoCo: the
 * key encoder's parameters and buffers, the queue; SwAV: its queue), and the encoder's
 * optimiser momentum. Returns the count; entries valid until the method is destroyed. */
int unmix_method_state(struct unmix_method *m, struct unmix_state_entry *out, int cap);
/* Host scalars of the state (queue pointer, use_the_queue, ...), as int64 key/values. */
int unmix_method_scalars(struct unmix_method *m, const char **names, int64_t *values, int cap);
unmix_status unmix_method_set_scalar(struct unmix_method *m, const char *name, int64_t value);
