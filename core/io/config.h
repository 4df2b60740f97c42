/* The typed, validated run configuration that a YAML manifest becomes (core/io/manifest.c).
 * Every field has a default (the CIFAR MoCo reference where one exists, SPEC §2.1) and a
 * manifest key with the same path: `optim.lr`, `moco.symmetric`, `unmix.prob`, ...
 * Fixed-size arrays keep the struct a plain value (copyable, no ownership rules) except
 * the two strings at the end, owned by the config (unmix_config_free). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "core/backend/backend.h"

#define UNMIX_NAME_MAX 128
#define UNMIX_PATH_MAX 1024
#define UNMIX_MAX_CROP_GROUPS 4
#define UNMIX_MAX_MILESTONES 8

enum unmix_method_kind { UNMIX_METHOD_MOCO = 0, UNMIX_METHOD_SWAV, UNMIX_METHOD_SIMCLR, UNMIX_METHOD_BYOL };
enum unmix_arch {
  UNMIX_ARCH_RESNET18 = 0,          /* torchvision BasicBlock [2,2,2,2] */
  UNMIX_ARCH_RESNET34,              /* BasicBlock [3,4,6,3] */
  UNMIX_ARCH_RESNET50,              /* Bottleneck [3,4,6,3] */
  UNMIX_ARCH_RESNET18_BOTTLENECK    /* SwAV-CIFAR "resnet18": Bottleneck [2,2,2,2] (SPEC §4.3) */
};
enum unmix_stem {
  UNMIX_STEM_IMAGENET = 0,  /* 7x7/2 conv + 3x3/2 max-pool */
  UNMIX_STEM_CIFAR,         /* 3x3/1 conv (PyTorch default uniform init), no max-pool */
  UNMIX_STEM_SWAV_CIFAR     /* ConstantPad2d(1) then 3x3/1 conv pad 1, no max-pool */
};
enum unmix_head {
  UNMIX_HEAD_NONE = 0,   /* backbone features only */
  UNMIX_HEAD_LINEAR,     /* fc: Linear(feat, dim) (MoCo v1 / MoCo CIFAR) */
  UNMIX_HEAD_MLP,        /* Linear(feat, hidden) -> ReLU -> Linear(hidden, dim) (MoCo v2) */
  UNMIX_HEAD_SWAV        /* Linear(feat, hidden) -> BN1d -> ReLU -> Linear(hidden, dim) -> L2 norm, + prototypes */
};
enum unmix_optim_kind { UNMIX_OPTIM_SGD = 0, UNMIX_OPTIM_LARC, UNMIX_OPTIM_ADAM /* SimCLR/BYOL: core/optim/adam.h */ };
enum unmix_sched_kind {
  UNMIX_SCHED_COSINE_1BASED = 0, /* per epoch e = 1..E: lr*0.5*(1+cos(pi*e/E)) (MoCo CIFAR, SPEC §2.6) */
  UNMIX_SCHED_COSINE,            /* per epoch e = 0..E-1: lr*0.5*(1+cos(pi*e/E)) (MoCo v2 --cos) */
  UNMIX_SCHED_STEP,              /* per epoch: lr * gamma^(number of milestones <= e) */
  UNMIX_SCHED_WARMUP_COSINE,     /* per iteration: linear warmup then cosine to final_lr (SwAV, SPEC §4.7) */
  UNMIX_SCHED_CONSTANT,
  UNMIX_SCHED_WARMUP_STEP        /* per iteration: linear warmup over warmup_iters, then x gamma at epochs E - drops[i]
                                  * (the W-MSE codebase's SimCLR/BYOL schedule, core/optim/adam.h) */
};
enum unmix_swav_reverse {
  UNMIX_SWAV_REVERSE_CODE = 0, /* reference code: `reverse` flips only the crop-0 code (SPEC §4.5 quirk) */
  UNMIX_SWAV_REVERSE_PAPER     /* authors' explanation: flipped mixed prediction in both terms */
};
enum unmix_lincls_protocol {
  UNMIX_LINCLS_IMAGENET = 0,   /* SPEC §3.2 */
  UNMIX_LINCLS_SWAV_CIFAR,     /* SPEC §4.8 */
  UNMIX_LINCLS_MOCO_CIFAR      /* MoCo CIFAR demo: lr 30, wd 0, 100 epochs */
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

struct unmix_data_config {
  char dataset[32];            /* cifar10 | cifar100 | fashion-mnist | imagefolder */
  char root[UNMIX_PATH_MAX];   /* "" = the dataset's default root */
  char recipe[32];             /* moco-cifar | swav-cifar | mocov1-imagenet | mocov2-imagenet | test */
  int subset;                  /* use the first N training samples (0 = all) */
  int test_subset;             /* use the first N test samples (0 = all) */
  int workers;                 /* loader threads (0 = number of cores) */
  int prefetch;                /* batches prefetched */
  int pad_to;                  /* Fashion-MNIST: zero-pad 28x28 to this size (0 = keep) */
  int channels;                /* Fashion-MNIST: 1 or 3 (grey replicated) */
  bool skip_corrupt;           /* ImageFolder: skip and count unreadable images instead of failing */
  /* SwAV multi-crop groups: nmb_crops[i] crops of size_crops[i], scale in [min_scale, max_scale]. */
  int n_crop_groups;
  int nmb_crops[UNMIX_MAX_CROP_GROUPS];
  int size_crops[UNMIX_MAX_CROP_GROUPS];
  float min_scale[UNMIX_MAX_CROP_GROUPS];
  float max_scale[UNMIX_MAX_CROP_GROUPS];
  bool has_norm;               /* mean/std override the recipe's */
  float mean[3], std[3];
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
};

struct unmix_moco_config {
  int K;                       /* queue length */
  float m;                     /* key-encoder momentum */
  float T;                     /* softmax temperature */
  bool symmetric;              /* symmetric loss (SPEC §2.5.3) */
  bool shuffle_bn;             /* batch-shuffle the keys for BN */
  bool mix_once;               /* symmetric: forward the mixed batch once (exact equivalence, SPEC §10) */
};

struct unmix_swav_config {
  int nmb_prototypes;
  float temperature;
  float epsilon;
  int sinkhorn_iterations;
  int n_crops_for_assign;
  int crops_for_assign[8];
  int queue_length;            /* reference: becomes 0 at CIFAR settings (SPEC §4.6) */
  int epoch_queue_starts;
  int freeze_prototypes_niters;
  enum unmix_swav_reverse reverse;
};

struct unmix_mix_config {
  bool enabled;                /* Un-Mix on/off */
  float prob;                  /* P: probability of the global mixture (else region) */
  float beta;                  /* lambda ~ Beta(beta, beta) */
  bool per_rank;               /* each rank draws its own r, lambda (ImageNet reference) vs one global draw */
};

struct unmix_optim_config {
  enum unmix_optim_kind kind;
  float lr;
  float momentum;
  float weight_decay;
  int batch_size;              /* global batch (split over ranks) */
  float larc_trust;            /* 0.001 */
  float larc_eps;              /* 1e-8 */
  bool larc_clip;              /* false: scale mode (SPEC §4.7) */
};

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

struct unmix_simclr_config {
  float tau;                   /* NT-Xent temperature (0.5) */
};

struct unmix_byol_config {
  float tau;                   /* target momentum at epoch 0 (0.99), cosine-increased to 1 */
  bool mix_target;             /* Un-Mix: the mixtures also pass through the target network (literal
                                * loss(x1, mixed)); false: only through the online branch */
};

struct unmix_train_config {
  int epochs;
  int steps_per_epoch;         /* 0 = a full pass (drop_last); > 0 caps the epoch (smoke runs) */
  int checkpoint_every;        /* epochs between checkpoints (the last epoch always saves) */
  int log_every;               /* steps between log lines when not on a terminal */
};

struct unmix_knn_config {
  int every;                   /* epochs between kNN evaluations (0 = never; the last epoch always runs if > 0) */
  int k;
  float t;
  int bank_subset;             /* first N train samples as the memory bank (0 = all) */
  int test_subset;             /* first N test samples as queries (0 = all) */
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
