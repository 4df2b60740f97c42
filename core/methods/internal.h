/* Internal layout shared by method.c, moco.c and swav.c. */
#pragma once
#include "core/methods/method.h"

struct unmix_moco;
struct unmix_swav;

struct unmix_method {
  enum unmix_method_kind kind;
  const struct unmix_backend *be;
  struct unmix_config cfg;      /* copy; owned strings not duplicated (set to NULL) */
  struct unmix_comm *comm;
  int rank, world;
  int image_size;
  struct unmix_model *model;    /* MoCo: encoder_q; SwAV: the network */
  struct unmix_optimizer opt;
  struct unmix_moco *moco;
  struct unmix_swav *swav;
};

/* Draws a test (or a caller reproducing a figure) can force instead of the Philox ones. */
struct unmix_forced_draws {
  bool have_mix;
  struct unmix_mix_draw mix;   /* MoCo; SwAV: the first crop pair */
  const int32_t *perm[2];      /* MoCo key-shuffle permutations of calls A and B, or NULL */
};

unmix_status unmix_moco_create(struct unmix_method *m);
void unmix_moco_destroy(struct unmix_method *m);
unmix_status unmix_moco_step(struct unmix_method *m, const struct unmix_views *v, int64_t step, float lr,
                             const struct unmix_forced_draws *forced, struct unmix_step_stats *st);
/* Internal state for tests: the queue (K x dim, device) and the key encoder. */
float *unmix_moco_queue(struct unmix_method *m, int *K, int *dim, int *ptr);
struct unmix_model *unmix_moco_key_encoder(struct unmix_method *m);
int unmix_moco_state(struct unmix_method *m, struct unmix_state_entry *out, int cap);
int unmix_moco_scalars(struct unmix_method *m, const char **names, int64_t *values, int cap);
unmix_status unmix_moco_set_scalar(struct unmix_method *m, const char *name, int64_t value);

unmix_status unmix_swav_create(struct unmix_method *m);
void unmix_swav_destroy(struct unmix_method *m);
unmix_status unmix_swav_step(struct unmix_method *m, const struct unmix_views *v, int64_t step, int epoch, float lr,
                             const struct unmix_forced_draws *forced, struct unmix_step_stats *st);
void unmix_swav_begin_epoch(struct unmix_method *m, int epoch);
/* The gradient of the last step's loss w.r.t. the scores of the first forward group (rows =
 * crops of that group x bs), valid until the next step. For tests. */
const float *unmix_swav_last_dscores(struct unmix_method *m, int *rows);
int unmix_swav_state(struct unmix_method *m, struct unmix_state_entry *out, int cap);
int unmix_swav_scalars(struct unmix_method *m, const char **names, int64_t *values, int cap);
unmix_status unmix_swav_set_scalar(struct unmix_method *m, const char *name, int64_t value);
/* Sinkhorn-Knopp of the old SwAV code (SPEC §4.5) on scores (b, k) -> codes (b, k), rows
 * summing to 1. Exposed for tests. comm may be NULL; with world ranks the total and the
 * per-prototype sums are all-reduced and c = 1/(world*b), as the reference does. work: >= 2*k + b floats of device scratch. */
unmix_status unmix_sinkhorn(const struct unmix_backend *be, struct unmix_comm *comm, int b, int k, float epsilon,
                            int iters, const float *scores, float *q, float *work);

size_t unmix_moco_device_bytes(const struct unmix_method *m);
size_t unmix_swav_device_bytes(const struct unmix_method *m);

/* Shared helpers */
/* Adds a named state entry for a whole flat store (params or buffers). */
int unmix_state_add(struct unmix_state_entry *out, int n, int cap, const char *name, float *data, int64_t numel);
/* Averages gradients over ranks (no-op without a communicator or with one rank). */
unmix_status unmix_method_allreduce_grads(struct unmix_method *m);
/* A non-finite loss stops every rank together: the flag is summed over ranks (one small
 * all-reduce per step when world > 1), so no rank waits in the gradient all-reduce for a
 * peer that has given up. */
unmix_status unmix_method_check_loss(struct unmix_method *m, double loss, const char *method, int64_t step, float lr);
/* SyncBatchNorm (model.sync_bn, world > 1): routes the model's BN statistics through m->comm. */
void unmix_method_install_bn_sync(struct unmix_method *m, struct unmix_model *model);
