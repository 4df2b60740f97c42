/* What every method file shares: the generic part of a method object (struct unmix_method,
 * which the method's ops fill and use), the draws a test can force, and the helpers every
 * method's step needs (gradient all-reduce, loss check, SyncBatchNorm, checkpoint entries).
 * Included by method.c and by each method file; the method files never include each other. */
#pragma once
#include "core/methods/method.h"

/* Random-stream purposes of the methods' own draws; values: core/util/rng.h. */
enum unmix_method_rng_purpose {
  UNMIX_RNG_KEYPERM = 5,   /* MoCo batch-shuffle permutation (index = global step) */
  UNMIX_RNG_QUEUE = 6      /* MoCo queue initialisation */
};

struct unmix_method {
  const struct unmix_method_ops *ops;
  const struct unmix_backend *be;
  struct unmix_method_spec spec; /* copy */
  struct unmix_comm *comm;
  struct unmix_comm *bn_comm;   /* SyncBN's process group (model.sync_bn_group), owned; NULL: comm */
  int rank, world;
  int image_size;               /* spec.model.image_size: the training views' size */
  struct unmix_model *model;    /* the encoder that is evaluated/exported (MoCo: encoder_q) */
  struct unmix_optimizer opt;   /* over model's parameters; initialised by ops->create */
  void *impl;                   /* the method's own state, owned by ops->create/destroy */
};

/* Draws a test (or a caller reproducing a figure) can force instead of the Philox ones. */
struct unmix_forced_draws {
  bool have_mix;
  struct unmix_mix_draw mix;   /* MoCo; SwAV: the first crop pair */
  /* SwAV with several crop pairs: n_centres > 0 replaces the draws by mix.global,
   * mix.lam_drawn and, in region mode, pair p's box centre centre[p] (the box and lambda
   * then follow the reference's chain from pair to pair) */
  int n_centres;
  int centre[8][2];
  const int32_t *perm[2];      /* MoCo key-shuffle permutations of calls A and B, or NULL */
};

/* One step with forced draws (forced may be NULL): what unmix_method_step runs. For tests. */
unmix_status unmix_method_step_forced(struct unmix_method *m, const struct unmix_views *v, int64_t step, int epoch,
                                      float lr, const struct unmix_forced_draws *forced, struct unmix_step_stats *st);

/* ---- shared helpers ----------------------------------------------------------------------- */
/* Adds a named 1-d state entry for a whole flat store (params or buffers); returns n + 1. */
int unmix_state_add(struct unmix_state_entry *out, int n, int cap, const char *name, float *data, int64_t numel);
/* Averages gradients over ranks (no-op without a communicator or with one rank). */
unmix_status unmix_method_allreduce_grads(struct unmix_method *m);
/* A non-finite loss stops every rank together: the flag is summed over ranks (one small
 * all-reduce per step when world > 1), so no rank waits in the gradient all-reduce for a
 * peer that has given up. */
unmix_status unmix_method_check_loss(struct unmix_method *m, double loss, const char *method, int64_t step, float lr);
/* The three loss terms every method reports (its main two-view term, then Un-Mix's mixture term
 * "loss_mix" and its flipped/reversed partner) with the total and the mixture: draw NULL = no
 * mixing (mix_mode -1, lam 1). The method's metric columns are left to the caller. */
void unmix_step_stats_fill(struct unmix_step_stats *st, double loss, const char *main_name, const char *third_name,
                           double main, double mix, double third, const struct unmix_mix_draw *draw, double lam);
/* SyncBatchNorm (model.sync_bn, world > 1): routes the model's BN statistics through m->comm, or
 * through m->bn_comm, the process group of model.sync_bn_group consecutive ranks. */
void unmix_method_install_bn_sync(struct unmix_method *m, struct unmix_model *model);

/* ---- test hooks of the individual methods (defined in their files) ------------------------- */
/* MoCo: the queue (K x dim, device) and the key encoder. */
float *unmix_moco_queue(struct unmix_method *m, int *K, int *dim, int *ptr);
struct unmix_model *unmix_moco_key_encoder(struct unmix_method *m);
/* SwAV: the gradient of the last step's loss w.r.t. the scores of the first forward group
 * (rows = crops of that group x bs), valid until the next step. */
const float *unmix_swav_last_dscores(struct unmix_method *m, int *rows);
/* Sinkhorn-Knopp as the old SwAV code computes it, on scores (b, k) -> codes (b, k), rows
 * summing to 1. comm may be NULL; with world ranks the total and the
 * per-prototype sums are all-reduced and c = 1/(world*b), as the reference does.
 * work: >= 2*k + b floats of device scratch. */
unmix_status unmix_sinkhorn(const struct unmix_backend *be, struct unmix_comm *comm, int b, int k, float epsilon,
                            int iters, const float *scores, float *q, float *work);
/* The same with the 2021 SwAV code's simplified iteration (swav.sinkhorn: simplified); equal
 * in exact arithmetic, different roundings. Same arguments. */
unmix_status unmix_sinkhorn_simplified(const struct unmix_backend *be, struct unmix_comm *comm, int b, int k,
                                       float epsilon, int iters, const float *scores, float *q, float *work);
