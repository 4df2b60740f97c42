/* Linear evaluation on frozen features (`unmix lincls`, the paper's Figure 3 and SwAV-CIFAR
 * tables): a fresh classifier fc (N(0, 0.01^2), bias 0) on the avgpool features of a frozen
 * backbone in eval mode (BatchNorm on its running statistics, also while training the fc),
 * trained by SGD over the fc only, top-1/top-5 on the test split after every epoch.
 *
 * Protocols (reference values; a manifest's `linear.*` block overrides them for its protocol):
 *   imagenet    FIDELITY §5.2  lr 30, momentum 0.9, wd 0, batch 256, 100 epochs, x0.1 at 60 and 80,
 *               recipe lincls-imagenet (RRC 224 + flip / Resize 256 + CenterCrop 224)
 *   swav-cifar  FIDELITY §5.2  lr 0.3, momentum 0.9, wd 1e-6, batch 32, 100 epochs,
 *               CosineAnnealingLR: epoch e (0-based) uses lr*0.5*(1+cos(pi e/E)); best top-1 reported;
 *               recipe lincls-swav-cifar (RRC 32 + flip, std (0.2470, 0.2435, 0.2616))
 *   swav-imagenet  docs/FIDELITY.md §11.6: SwAV's eval_linear.py - lr 0.3, momentum 0.9, wd 1e-6,
 *               batch 256 (32 x 8 GPUs), 100 epochs, cosine to 0, best top-1 reported; recipe
 *               lincls-swav-imagenet (RRC 224 + flip / Resize 256 + CenterCrop 224, std (0.228, 0.224, 0.225))
 *   moco-cifar  the MoCo CIFAR demo: lr 30, momentum 0.9, wd 0, batch 256, 100 epochs, x0.1 at 60
 *               and 80, recipe lincls-moco-cifar (RRC 32 + flip, CIFAR mean/std)
 * Every protocol keeps the last partial batch (no drop_last) and shuffles with the Philox
 * permutation of (seed, epoch); augmentations draw from (seed, epoch, sample): runs are
 * bit-identical on the CPU for a seed, and a resumed run equals an uninterrupted one.
 *
 * Implementation: the frozen backbone runs forward in eval mode without keeping activations;
 * the fc's gradient is computed from the kept avgpool features with the backend's
 * linear_backward - exactly what unmix_model_backward computes for this model, since the
 * graph stops at the fc when everything upstream is frozen (tests/test_eval_lincls.c
 * checks the two agree). The optimiser is the model's SGD with every backbone tensor marked
 * skipped (unmix_optimizer_set_skip), so only fc.weight / fc.bias move; a check at the end
 * verifies that no backbone parameter or BN buffer changed (as main_lincls.py's sanity check). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "core/backend/backend.h"
#include "core/data/dataset.h"
#include "core/data/recipe.h"
#include "core/io/config.h"
#include "core/nn/model.h"

struct unmix_lincls_params {
  enum unmix_lincls_protocol protocol;
  int epochs;
  float lr, momentum, weight_decay;
  int batch_size;
  bool cosine;                          /* CosineAnnealingLR per epoch, else step decay */
  int n_milestones;
  int milestones[UNMIX_MAX_MILESTONES]; /* 0-based epochs where lr *= gamma */
  float gamma;
  uint64_t seed;                        /* data order and augmentation */
  int workers, prefetch;                /* loader threads (0 = cores), batches ahead */
  int eval_batch;                       /* test batch (0 = max(batch_size, 256)) */
};

/* The protocol's reference values (seed 0, workers 0). */
void unmix_lincls_reference(enum unmix_lincls_protocol p, struct unmix_lincls_params *out);
/* A manifest's linear.* block (seed, workers from the manifest too). */
void unmix_lincls_from_config(const struct unmix_config *cfg, struct unmix_lincls_params *out);
/* The recipe of a protocol: "lincls-imagenet", "lincls-swav-cifar", "lincls-moco-cifar". */
const char *unmix_lincls_recipe_name(enum unmix_lincls_protocol p);
/* Learning rate of 0-based epoch e. */
double unmix_lincls_lr(const struct unmix_lincls_params *p, int epoch);

/* One row of lincls.csv (accuracies in %). */
struct unmix_lincls_epoch {
  int epoch;                       /* 1-based */
  double lr, train_loss, train_top1, test_top1, test_top5, best_top1, seconds;
};
#define UNMIX_LINCLS_COLUMNS \
  "epoch", "lr", "train_loss", "train_top1", "test_top1", "test_top5", "best_top1", "seconds"

struct unmix_lincls_result {
  int epochs;                      /* epochs done in total (incl. resumed ones) */
  int resumed_from;                /* epochs found in the resume checkpoint (0 = fresh) */
  double best_top1, best_top5;     /* maxima over epochs */
  int best_epoch;                  /* 1-based epoch of best_top1 (first one on ties) */
  double last_top1, last_top5, last_train_loss;
  double seconds_per_epoch;        /* mean over the epochs run by this call */
  int64_t train_samples, test_samples;
};

struct unmix_lincls_run_options {
  const char *out_dir;             /* NULL: no files; else DIR/lincls.csv and DIR/lincls.safetensors */
  bool resume;                     /* continue DIR/lincls.safetensors (fresh when absent) */
  int stop_after_epochs;           /* > 0: save and stop after this many epochs of this call */
  bool quiet;                      /* no per-epoch log lines */
  const char *source;              /* the evaluated checkpoint (recorded in the state file) */
};

/* Trains m's fc (m built with num_classes = train->num_classes and lincls_init, its
 * backbone loaded) and evaluates after every epoch. rc is the protocol's recipe: training
 * views[0] for the fc, eval for the test split. Errors: data/config problems
 * (UNMIX_ERR_CONFIG), a resume file written for other parameters (UNMIX_ERR_ARG), I/O, a
 * non-finite loss (UNMIX_ERR_NUMERIC). */
unmix_status unmix_lincls_run(const struct unmix_backend *be, struct unmix_model *m, const struct unmix_dataset *train,
                              const struct unmix_dataset *test, const struct unmix_recipe *rc,
                              const struct unmix_lincls_params *p, const struct unmix_lincls_run_options *o,
                              struct unmix_lincls_result *res);

/* The fc node of a classifier model (the node after feat_node), or -1. */
int unmix_lincls_fc_node(const struct unmix_model *m);
