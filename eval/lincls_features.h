/* The W-MSE codebase's linear protocol (eval/sgd.py there; the SimCLR/BYOL runs): a fresh
 * nn.Linear(d, C) on CACHED features (computed once, no augmentation, no scaling), trained
 * with Adam (lr 1e-2, coupled L2 5e-6) for 500 epochs over shuffled minibatches of 1000,
 * ExponentialLR stepped per epoch with gamma = (1e-6 / 1e-2)^(1/epochs), so the lr falls
 * from 1e-2 to 1e-6; then top-1 / top-5 of the arg-max on the test features.
 *
 * Differences that the reference leaves open (docs/FIDELITY.md): the reference reshapes
 * randperm(n) into rows of 1000 and fails unless 1000 divides n; here a remainder smaller
 * than the batch is dropped each epoch (with n < batch, one batch of all n). The data order
 * and the PyTorch-default init U(-1/sqrt(d), 1/sqrt(d)) of weight and bias come from Philox
 * streams of the seed, so runs are reproducible. */
#pragma once
#include <stdint.h>

#include "core/backend/backend.h"
#include "core/util/error.h"

struct unmix_linfeat_params {
  int epochs;          /* 500 */
  double lr;           /* 1e-2 */
  double lr_end;       /* 1e-6: ExponentialLR gamma = (lr_end / lr)^(1 / epochs) */
  double weight_decay; /* 5e-6 (Adam's coupled L2) */
  int batch_size;      /* 1000 */
  uint64_t seed;
  const float *init_w; /* optional host (C, d) / (C) initial values instead of the random init */
  const float *init_b;
};
/* The reference values (seed 0). */
struct unmix_linfeat_params unmix_linfeat_reference(void);

struct unmix_linfeat_result {
  double top1, top5;      /* % on the test features */
  double last_train_loss; /* mean minibatch loss of the last epoch */
  int epochs;
  int64_t train_samples, test_samples;
  double seconds;
};

/* Trains and evaluates. train (n, d) / test (m, d) features are backend memory; labels are
 * host int32 in 0..num_classes-1. w_out / b_out (host (C, d) / (C)) receive the trained
 * classifier when non-NULL. Errors: bad sizes or labels (UNMIX_ERR_ARG naming the sample),
 * a non-finite loss (UNMIX_ERR_NUMERIC), out of memory. */
unmix_status unmix_linfeat_run(const struct unmix_backend *be, const float *train, const int32_t *train_labels, int n,
                               const float *test, const int32_t *test_labels, int m, int d, int num_classes,
                               const struct unmix_linfeat_params *p, struct unmix_linfeat_result *res, float *w_out,
                               float *b_out);
