/* The projection head and predictor of the W-MSE codebase's SimCLR and BYOL, shared by
 * core/methods/simclr.c and byol.c: Linear(in, H) -> BatchNorm1d(H) -> ReLU -> Linear(H, out),
 * optionally followed by an affine BatchNorm1d(out) (SimCLR's bn_last), with PyTorch's default
 * init (Linear U(+-1/sqrt(fan_in)) for weight and bias, BN gamma 1, beta 0) and PyTorch's BN1d
 * (eps 1e-5, momentum 0.1, train mode). The head runs on vectors, outside the encoder graph,
 * because SimCLR's head sees both views' features as one batch while the encoder sees each view
 * alone. Also the step helpers both methods use: Adam over a store, the mixture of view 0. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "core/backend/backend.h"
#include "core/nn/params.h"
#include "core/optim/adam.h"

struct wmse_mlp {
  int in, hidden, out;
  bool bn_last;
  int w1, b1, g1, bb1, w2, b2, g2, bb2; /* parameter indices (g2, bb2: bn_last) */
  int rm1, rv1, rm2, rv2;               /* buffer indices */
};

/* Registers the tensors as `prefix`.0 (Linear), .1 (BN), .3 (Linear) and, with bn_last,
 * `last_name`.weight/.bias (BN) - the reference's module names. */
void wmse_mlp_add(struct wmse_mlp *h, struct unmix_param_store *params, struct unmix_param_store *bufs,
                  const char *prefix, const char *last_name, int in, int hidden, int out, bool bn_last);

/* Activations of one forward (reused pass after pass; grows to the largest batch). */
struct wmse_act {
  int cap;
  float *y1, *a1, *m1, *s1, *y2, *z, *m2, *s2, *dy2, *da1;
};
void wmse_act_free(const struct unmix_backend *be, struct wmse_act *a);

/* z (n, out) = head(x (n, in)) in train mode; running statistics updated in bufs. The
 * returned pointer is owned by act. x must stay valid until the backward. */
unmix_status wmse_mlp_forward(const struct unmix_backend *be, const struct wmse_mlp *h,
                              const struct unmix_param_store *params, struct unmix_param_store *bufs,
                              struct wmse_act *act, int n, const float *x, const float **z);
/* Backward of the last forward: parameter gradients += into params->grad, dx (n, in) =. */
void wmse_mlp_backward(const struct unmix_backend *be, const struct wmse_mlp *h, struct unmix_param_store *params,
                       struct wmse_act *act, int n, const float *x, const float *dz, float *dx);

/* Forward FLOPs per sample of the two Linear layers (2 x multiply-adds; BN and ReLU left out,
 * as unmix_model_forward_flops leaves them out of the encoder). */
double wmse_mlp_forward_flops(const struct wmse_mlp *h);

/* Adam for a store (coupled L2 wd, PyTorch betas/eps). m_ext as unmix_adam_init_ext. */
unmix_status wmse_adam_init(struct unmix_adam *a, struct unmix_param_store *s, double weight_decay, float *m_ext);

/* ---- the step skeleton both methods share ------------------------------------------------- */
struct unmix_method;
struct unmix_model;
struct unmix_views;
struct unmix_forced_draws;
struct unmix_ctx;
struct unmix_mix_draw;
/* The views a step needs: 2 per sample of the model's image size, and >= 2 samples (BatchNorm,
 * SimCLR's negatives). Errors name `method`. */
unmix_status wmse_check_views(const struct unmix_method *m, const struct unmix_views *v, const char *method);
/* Un-Mix's mixtures of view 0 as our MoCo path makes them: the step's draw (global with
 * probability P, else region; the test's forced draw when given) into *draw, the mixed batch
 * and its batch-flipped partner into *mixed and *mflip (allocated in work). */
void wmse_mix_views(struct unmix_method *m, const struct unmix_views *v, int64_t step,
                    const struct unmix_forced_draws *forced, struct unmix_ctx *work, struct unmix_mix_draw *draw,
                    float **mixed, float **mflip);

/* Test hooks of the two methods (defined in simclr.c / byol.c). */
/* SimCLR: the head + bn_last parameter store (its grad holds the last step's gradients) and,
 * in *buffers, their BN running statistics. */
struct unmix_param_store *unmix_simclr_head(struct unmix_method *m, struct unmix_param_store **buffers);
/* BYOL: the target encoder, and the stores 0 g, 1 q, 2 g_t (parameters), 3-5 their buffers. */
struct unmix_model *unmix_byol_target(struct unmix_method *m);
struct unmix_param_store *unmix_byol_store(struct unmix_method *m, int which);
