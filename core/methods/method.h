/* Self-supervised methods behind one table (struct unmix_method_ops): MoCo v1/v2 (symmetric
 * or asymmetric) and SwAV, each with or without Un-Mix. A method owns its state (models,
 * queue, prototypes, momentum encoder, optimiser) and runs one whole training iteration per
 * step(): its forward passes, losses, backward passes, gradient all-reduce (through the
 * communicator) and optimiser update. The unmix_method_* functions below are the generic
 * wrappers the trainer calls; they dispatch through the table found in the registry.
 *
 * Adding a method = one file (core/methods/NAME.c exporting `const struct unmix_method_ops
 * unmix_NAME_ops`, built on core/methods/common.h) + one row in core/methods/registry.c
 * (+ its manifest keys, if it has options). Nothing else names a method. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "core/backend/backend.h"
#include "core/methods/mix.h"
#include "core/nn/model.h"
#include "core/optim/optim.h"

struct unmix_comm; /* core/comm/comm.h; NULL = single process */

/* ---- method options (the manifest's moco and swav sections) ---------------------------- */
struct unmix_moco_config {
  int K;                       /* queue length */
  float m;                     /* key-encoder momentum */
  float T;                     /* softmax temperature */
  bool symmetric;              /* symmetric loss (FIDELITY §2.5) */
  bool shuffle_bn;             /* batch-shuffle the keys for BN */
  bool mix_once;               /* symmetric: forward the mixed batch once (exact equivalence, FIDELITY §8.2) */
};

enum unmix_swav_reverse {
  UNMIX_SWAV_REVERSE_CODE = 0, /* reference code: `reverse` flips only the crop-0 code (FIDELITY §3.5) */
  UNMIX_SWAV_REVERSE_PAPER     /* authors' explanation: flipped mixed prediction in both terms */
};
enum unmix_swav_sinkhorn {
  UNMIX_SWAV_SINKHORN_ORIGINAL = 0, /* the 2020 SwAV code (Un-Mix CIFAR): r/u and c/v scalings, shoot_infs,
                                     * a final column normalisation (FIDELITY §3.5) */
  UNMIX_SWAV_SINKHORN_SIMPLIFIED    /* the 2021 SwAV code (Un-Mix ImageNet): /rowsum /K /colsum /B, then *B
                                     * (docs/FIDELITY.md "SwAV on ImageNet") */
};
struct unmix_swav_config {
  int nmb_prototypes;
  float temperature;
  float epsilon;
  int sinkhorn_iterations;
  int n_crops_for_assign;
  int crops_for_assign[8];
  int queue_length;            /* reference: becomes 0 at CIFAR settings (FIDELITY §3.6) */
  int epoch_queue_starts;
  int freeze_prototypes_niters;
  enum unmix_swav_reverse reverse;
  enum unmix_swav_sinkhorn sinkhorn;
};

/* SimCLR / BYOL (the W-MSE codebase's; docs/FIDELITY.md §10) */
struct unmix_simclr_config {
  float tau;                   /* NT-Xent temperature (0.5) */
};
struct unmix_byol_config {
  float tau;                   /* target momentum at epoch 0 (0.99), cosine-increased to 1 */
  bool mix_target;             /* Un-Mix: the mixtures also pass through the target network (literal
                                * loss(x1, mixed)); false: only through the online branch */
};

#define UNMIX_MAX_METHOD_CROPS 16
struct unmix_method_ops;
/* Everything a method is built from (core/io/specs.c makes it from a manifest). */
struct unmix_method_spec {
  const struct unmix_method_ops *ops;
  uint64_t seed;
  struct unmix_model_spec model; /* the network, image_size = the training views' size, with the
                                    method's model needs applied */
  bool sync_bn;                  /* multi-process: SyncBatchNorm over the communicator */
  int sync_bn_group;             /* 0: over all ranks; N: over groups of N consecutive ranks (apex) */
  int n_crops;                   /* crops per sample of the multi-crop recipe (0 = none configured) */
  int crop_size[UNMIX_MAX_METHOD_CROPS]; /* their sizes (the first n_crops, at most UNMIX_MAX_METHOD_CROPS) */
  struct unmix_optim_config optim;
  struct unmix_mix_config unmix;
  struct unmix_moco_config moco;
  struct unmix_swav_config swav;
  struct unmix_simclr_config simclr;
  struct unmix_byol_config byol;
  int epochs;                    /* train.epochs (BYOL's target momentum follows epoch / epochs) */
};

#define UNMIX_METHOD_MAX_VIEWS 16
/* One training batch on the method's backend: view v is (n, size[v], size[v], 3) NHWC. */
struct unmix_views {
  int n;
  int nviews;
  int size[UNMIX_METHOD_MAX_VIEWS];
  const float *view[UNMIX_METHOD_MAX_VIEWS];
};

#define UNMIX_MAX_TERMS 4
#define UNMIX_METHOD_MAX_METRICS 2
struct unmix_step_stats {
  double loss;                       /* the total combined loss */
  int nterms;
  const char *term_names[UNMIX_MAX_TERMS];
  double terms[UNMIX_MAX_TERMS];     /* MoCo: loss_cl, loss_mix, loss_mix_flip; SwAV: loss_swav, loss_mix, loss_mix_rev */
  /* values of the method's metric columns (ops->metric_columns[i]), in that order */
  double metrics[UNMIX_METHOD_MAX_METRICS];
  int mix_mode;                      /* -1 no mixing, 0 region, 1 global */
  double lam;                        /* lambda the loss used */
};

struct unmix_method;                 /* generic part: core/methods/common.h */
struct unmix_forced_draws;           /* core/methods/common.h */
struct unmix_state_entry;

/* One method. Every function receives the generic method object, whose `impl` the method
 * owns. NULL optional members mean "nothing to do" / "none". */
struct unmix_method_ops {
  const char *name;                  /* the manifest's `method:` value */
  bool multi_resolution;             /* its step takes views of different sizes (SwAV multi-crop) */
  /* Adjusts the model spec built from model.* to what the method's network needs (SwAV: its
   * prototypes). Used for training and for rebuilding the model from a checkpoint. Optional. */
  void (*model_needs)(const struct unmix_method_spec *spec, struct unmix_model_spec *model);
  /* Builds the models (m->model = the evaluated encoder), the state in m->impl and the
   * optimiser m->opt. On failure, destroy is still called. */
  unmix_status (*create)(struct unmix_method *m);
  void (*destroy)(struct unmix_method *m); /* frees m->impl (m->model and m->opt are freed for it) */
  /* One iteration; forced may be NULL (tests pass draws to compare with fixtures). */
  unmix_status (*step)(struct unmix_method *m, const struct unmix_views *v, int64_t step, int epoch, float lr,
                       const struct unmix_forced_draws *forced, struct unmix_step_stats *st);
  void (*begin_epoch)(struct unmix_method *m, int epoch); /* optional */
  int (*views_needed)(const struct unmix_method *m);
  double (*step_flops_per_sample)(const struct unmix_method *m);
  /* Device bytes of the method's own state and activation contexts (the encoder's stores
   * are counted by the wrapper). */
  size_t (*device_bytes)(const struct unmix_method *m);
  /* Checkpoint state beyond the encoder's params, buffers and optimiser momentum: as
   * unmix_method_state / unmix_method_scalars / unmix_method_set_scalar below. set_scalar
   * validates the value (a checkpoint is user input). */
  int (*state)(struct unmix_method *m, struct unmix_state_entry *out, int cap);
  int (*scalars)(struct unmix_method *m, const char **names, int64_t *values, int cap);
  unmix_status (*set_scalar)(struct unmix_method *m, const char *name, int64_t value);
  /* metrics.csv columns the method fills from unmix_step_stats.metrics (epoch means per
   * sample); at most UNMIX_METHOD_MAX_METRICS, NULL-terminated. */
  const char *metric_columns[UNMIX_METHOD_MAX_METRICS + 1];
};

/* ---- registry (core/methods/registry.c) ------------------------------------------------ */
/* The i-th registered method (0-based), NULL past the end. */
const struct unmix_method_ops *unmix_method_ops_at(int i);
/* The method registered under `name`, or NULL. */
const struct unmix_method_ops *unmix_method_ops_find(const char *name);
/* Every registered method's metric columns, without repeats, in registry order. Returns the
 * count (names[] holds the first cap). */
int unmix_method_metric_columns_all(const char **names, int cap);

/* ---- the generic wrappers ----------------------------------------------------------------- */

/* A method from its spec (spec->ops chooses it; from a manifest: unmix_method_create in
 * core/io/specs.h). comm may be NULL. */
unmix_status unmix_method_new(const struct unmix_method_spec *spec, const struct unmix_backend *be,
                              struct unmix_comm *comm, struct unmix_method **out);
void unmix_method_destroy(struct unmix_method *m);
/* One iteration. step = global iteration number (0-based), used for every random draw and
 * for SwAV's prototype freezing; epoch for SwAV's queue start. */
unmix_status unmix_method_step(struct unmix_method *m, const struct unmix_views *v, int64_t step, int epoch,
                               float lr, struct unmix_step_stats *st);
/* The encoder evaluated by kNN / exported as the backbone (MoCo: encoder_q; SwAV: the model). */
struct unmix_model *unmix_method_encoder(struct unmix_method *m);
const struct unmix_method_ops *unmix_method_ops_get(const struct unmix_method *m);
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
