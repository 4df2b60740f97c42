/* Models: a small graph of layers over flat parameter stores, run with explicit forward
 * and backward passes. Activations live in a caller-owned context (struct unmix_ctx), so one
 * model can run several forward passes (query, mixed, ...), each with its own BatchNorm
 * batch and running-stat update, before their backward passes; parameter gradients
 * accumulate (+=) across them into the model's flat gradient buffer.
 *
 * Builders: torchvision-exact ResNet-18/34/50 with the imagenet / cifar / swav-cifar
 * stems, a width option, and the heads of MoCo v1 (linear), MoCo v2 (MLP) and SwAV
 * (projection + L2 norm + prototypes). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "core/backend/backend.h"
#include "core/nn/params.h"

enum unmix_arch {
  UNMIX_ARCH_RESNET18 = 0,          /* torchvision BasicBlock [2,2,2,2] */
  UNMIX_ARCH_RESNET34,              /* BasicBlock [3,4,6,3] */
  UNMIX_ARCH_RESNET50,              /* Bottleneck [3,4,6,3] */
  UNMIX_ARCH_RESNET18_BOTTLENECK    /* SwAV-CIFAR "resnet18": Bottleneck [2,2,2,2] (FIDELITY §3.3) */
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

enum unmix_node_kind {
  UNMIX_NODE_INPUT = 0,
  UNMIX_NODE_CONV,      /* no bias */
  UNMIX_NODE_BN,        /* 2-d or 1-d (hw = 1); optional fused ReLU; split variant */
  UNMIX_NODE_RELU,
  UNMIX_NODE_ADD_RELU,  /* residual join: relu(a + b) */
  UNMIX_NODE_MAXPOOL,
  UNMIX_NODE_AVGPOOL,   /* global average pool + flatten: (n,h,w,c) -> (n,c) */
  UNMIX_NODE_PAD,       /* constant zero padding of H and W */
  UNMIX_NODE_LINEAR,
  UNMIX_NODE_L2NORM
};

struct unmix_node {
  enum unmix_node_kind kind;
  int in[2];            /* input node indices */
  int h, w, c;          /* output shape per sample (h = w = 1 for vectors) */
  int k, r, s, stride, pad; /* conv / pool geometry (k = kernel for pools) */
  int weight, bias;     /* param indices (-1 none): conv/linear weight, linear bias, BN gamma/beta */
  int rmean, rvar;      /* BN running stats (indices into the buffer store) */
  int splits;           /* BN splits */
  bool relu;            /* BN: fused ReLU after the affine */
  bool frozen;          /* no parameter gradients for this node */
  char name[64];        /* module name, for error messages and named outputs */
};

enum unmix_fwd_mode {
  UNMIX_FWD_TRAIN = 0,  /* batch statistics, running stats updated */
  UNMIX_FWD_EVAL        /* running statistics (model.eval()) */
};

/* SyncBatchNorm (model.sync_bn). When allreduce_f64 is set, train-mode BatchNorm normalises
 * with statistics summed over all ranks through it: forward sums [count, count*mean], then
 * the centred [count*(var + (mean - global mean)^2)] per channel, backward sums [sum dy,
 * sum dy*xhat]; parameter gradients
 * stay local (the gradient all-reduce averages them). The method layer installs it from its
 * communicator, so nn knows nothing of dist. The first failure is kept in status (later
 * reductions are skipped and the local statistics used); the caller must check it. */
struct unmix_bn_sync {
  unmix_status (*allreduce_f64)(void *ctx, double *buf, int64_t n); /* in-place sum over ranks, host */
  void *ctx;
  unmix_status status;
};

struct unmix_model {
  const struct unmix_backend *be;
  int n_nodes, cap_nodes;
  struct unmix_node *nodes;
  struct unmix_param_store params;   /* trainable */
  struct unmix_param_store buffers;  /* BN running_mean / running_var */
  int64_t bn_batches_tracked;        /* torchvision's num_batches_tracked (host counter, exported) */
  int feat_node;                     /* backbone feature node (after avgpool) */
  int embed_node;                    /* head output before prototypes (SwAV: the L2-normalised embedding) */
  int out_node;                      /* final output */
  int n_backbone_params;             /* params [0, n) belong to the backbone (conv1 .. layer4) */
  int n_backbone_buffers;            /* BN buffers [0, n) belong to the backbone */
  char arch_name[64];
  struct unmix_bn_sync bn_sync;      /* SyncBatchNorm hook; allreduce_f64 NULL = per-rank BN */
  struct unmix_model *owner;         /* a view: the model whose stores, BN hook and counter it uses */
};

/* Activation storage for one forward/backward pass. Reset (invalidate) with
 * unmix_ctx_reset before reusing it for the next step; memory is kept. */
struct unmix_ctx;
struct unmix_ctx *unmix_ctx_create(const struct unmix_backend *be, const char *name);
void unmix_ctx_destroy(struct unmix_ctx *ctx);
void unmix_ctx_reset(struct unmix_ctx *ctx);
size_t unmix_ctx_bytes(const struct unmix_ctx *ctx); /* device memory held */
/* Scratch device buffers from the context's arena, valid until the next reset. */
float *unmix_ctx_alloc(struct unmix_ctx *ctx, int64_t floats);

/* Builds the model described by `mc` (a head is added per mc->head; num_classes > 0 adds a
 * classifier fc instead, as torchvision's fc for the parameter-count checks and linear
 * evaluation). Parameters are initialised from Philox (seed) as FIDELITY §6 says. */
struct unmix_model_spec {
  enum unmix_arch arch;
  enum unmix_stem stem;
  int width;
  int bn_splits;
  enum unmix_head head;
  int dim, hidden;
  int num_classes;       /* > 0: classifier fc (feat -> num_classes), replaces the head */
  int nmb_prototypes;    /* SwAV head: prototypes rows (0 = none) */
  int in_channels;       /* 3 */
  int image_size;        /* input H = W (for shape inference) */
  bool lincls_init;      /* classifier fc initialised N(0, 0.01^2), bias 0 (linear evaluation) */
};
unmix_status unmix_model_create(const struct unmix_model_spec *spec, const struct unmix_backend *be, uint64_t seed,
                                struct unmix_model **out);
void unmix_model_destroy(struct unmix_model *m);

/* Forward pass of n samples (x: device (n, H, W, C_in) NHWC). Returns the device pointer of
 * the final output (n, out_dim), owned by ctx. need_grad = false skips saving what only
 * backward needs and frees intermediate buffers early (key encoder, evaluation). */
const float *unmix_model_forward(struct unmix_model *m, struct unmix_ctx *ctx, const float *x, int n,
                                 enum unmix_fwd_mode mode, bool need_grad);
/* Output of a node of the last forward in ctx (feat_node, embed_node, ...); NULL if freed. */
const float *unmix_model_node_output(const struct unmix_model *m, const struct unmix_ctx *ctx, int node);
int unmix_model_out_dim(const struct unmix_model *m);
int unmix_model_node_dim(const struct unmix_model *m, int node);
/* Backward from the final output: dout (n, out_dim) device. Parameter gradients += into
 * m->params.grad (frozen nodes skipped). Computes no input gradient. */
void unmix_model_backward(struct unmix_model *m, struct unmix_ctx *ctx, const float *dout);
/* Re-applies the BatchNorm running-stat updates of the last TRAIN forward in ctx, exactly
 * as a second identical forward would (FIDELITY §8.2: symmetric MoCo forwards the mix once). */
void unmix_model_replay_bn_updates(struct unmix_model *m, struct unmix_ctx *ctx);

/* Backward as above that also writes the gradient w.r.t. the forward's input into dinput
 * ((n, input dims) device, =). */
void unmix_model_backward_input(struct unmix_model *m, struct unmix_ctx *ctx, const float *dout, float *dinput);

/* Views for multi-resolution multi-crop (SwAV's resnet50.py: the backbone runs once per run of
 * same-sized crops, the head once on the concatenated features). A view shares m's parameter,
 * gradient and buffer storage (and its SyncBN hook and BN counter); it owns only its node list.
 * backbone_view: nodes input..feat_node with spatial shapes inferred for image_size x image_size
 * (out_node = feat_node); UNMIX_ERR_CONFIG when a layer's output would be empty.
 * head_view: an input of the feature size, then the head (embed_node, out_node as in m).
 * Destroy views with unmix_model_destroy before their owner. */
unmix_status unmix_model_backbone_view(struct unmix_model *m, int image_size, struct unmix_model **out);
unmix_status unmix_model_head_view(struct unmix_model *m, struct unmix_model **out);

void unmix_model_zero_grad(struct unmix_model *m);
/* Marks params of nodes [first, last) frozen (no gradients). */
void unmix_model_freeze_range(struct unmix_model *m, int first_node, int last_node);
/* Copies all parameters and buffers from src (same architecture). */
void unmix_model_copy_from(struct unmix_model *dst, const struct unmix_model *src);
int64_t unmix_model_param_count(const struct unmix_model *m);
/* Forward FLOPs per sample (2 x multiply-adds of the convolutions and linear layers). */
double unmix_model_forward_flops(const struct unmix_model *m);
/* Names of the conv weights in torchvision module order. Returns count; names[i] point into m. */
int unmix_model_conv_names(const struct unmix_model *m, const char **names, int cap);
