/* The typed, validated run configuration that a YAML manifest becomes (core/io/manifest.c).
 * Every field has a default (the CIFAR MoCo reference where one exists, FIDELITY §2.1) and a
 * manifest key with the same path: `optim.lr`, `moco.symmetric`, `unmix.prob`, ...
 * The sections that are a layer's own options are defined by that layer (data, optim,
 * methods, mix, nn enums) and embedded here. Fixed-size arrays keep the struct a plain value (copyable, no ownership rules) except
 * the two strings at the end, owned by the config (unmix_config_free). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "core/backend/backend.h"
#include "core/data/options.h"   /* struct unmix_data_config: the data section */
#include "core/methods/method.h" /* moco / swav / unmix sections */
#include "core/nn/model.h"       /* model enums */
#include "core/optim/optim.h"    /* optim / schedule sections */

#define UNMIX_NAME_MAX 128

enum unmix_method_kind { UNMIX_METHOD_MOCO = 0, UNMIX_METHOD_SWAV, UNMIX_METHOD_SIMCLR, UNMIX_METHOD_BYOL };
enum unmix_lincls_protocol {
  UNMIX_LINCLS_IMAGENET = 0,   /* FIDELITY §5.2 */
  UNMIX_LINCLS_SWAV_CIFAR,     /* FIDELITY §5.2 */
  UNMIX_LINCLS_MOCO_CIFAR,     /* MoCo CIFAR demo: lr 30, wd 0, 100 epochs */
  UNMIX_LINCLS_SWAV_IMAGENET   /* SwAV's eval_linear.py on ImageNet (docs/FIDELITY.md §11.6) */
};

struct unmix_paper_row {       /* the row of reference/paper_results.csv this run reproduces */
  char table[64];              /* "cifar-moco", "swav-cifar-repo", "imagenet-linear", "" = none */
  char dataset[32];
  char method[32];
  char variant[32];
  bool unmix;
  int epochs;
  char metric[32];             /* "knn_top1", "linear_top1" */
};


struct unmix_model_config {
  enum unmix_arch arch;
  enum unmix_stem stem;
  int width;                   /* base channels (64 = torchvision) */
  int bn_splits;               /* SplitBatchNorm splits (1 = plain BN) */
  enum unmix_head head;
  int dim;                     /* output embedding dim (128) */
  int hidden;                  /* MLP / SwAV hidden width (2048 / 512) */
  bool sync_bn;                /* multi-process: synchronise BN statistics across ranks */
  int sync_bn_group;           /* with sync_bn: 0 = over all ranks, N = within groups of N consecutive ranks */
};






struct unmix_train_config {
  int epochs;
  int steps_per_epoch;         /* 0 = a full pass (drop_last); > 0 caps the epoch (smoke runs) */
  int checkpoint_every;        /* epochs between checkpoints (the last epoch always saves) */
  int log_every;               /* steps between log lines when not on a terminal */
};

/* knn.features: the method's embedding (MoCo: the fc output, as the MoCo CIFAR monitor; SwAV:
 * the projection) or the backbone's avgpool features (what a downstream task takes). */
enum unmix_knn_features { UNMIX_KNN_HEAD = 0, UNMIX_KNN_BACKBONE = 1 };
struct unmix_knn_config {
  int every;                   /* epochs between kNN evaluations (0 = never; the last epoch always runs if > 0) */
  int k;
  float t;
  int bank_subset;             /* first N train samples as the memory bank (0 = all) */
  int test_subset;             /* first N test samples as queries (0 = all) */
  int features;                /* enum unmix_knn_features: what the monitor classifies */
};

struct unmix_linear_config {
  enum unmix_lincls_protocol protocol;
  int epochs;
  float lr;
  float momentum;
  float weight_decay;
  int batch_size;
  int n_milestones;
  int milestones[UNMIX_MAX_MILESTONES];
  bool cosine;                 /* CosineAnnealingLR per epoch instead of milestones */
};

struct unmix_config {
  char name[UNMIX_NAME_MAX];
  uint64_t seed;
  char backend[16];            /* auto (GPU when usable, else CPU) | cpu | cuda */
  enum unmix_precision precision;
  bool deterministic;
  enum unmix_method_kind method;
  struct unmix_paper_row paper;
  struct unmix_data_config data;
  struct unmix_model_config model;
  struct unmix_moco_config moco;
  struct unmix_swav_config swav;
  struct unmix_simclr_config simclr;
  struct unmix_byol_config byol;
  struct unmix_mix_config unmix;
  struct unmix_optim_config optim;
  struct unmix_schedule_config schedule;
  struct unmix_train_config train;
  struct unmix_knn_config knn;
  struct unmix_linear_config linear;
  /* owned strings */
  char *source_path;           /* the manifest file given on the command line */
  char *resolved_yaml;         /* the resolved manifest (inheritance + overrides applied), every key explicit */
};
