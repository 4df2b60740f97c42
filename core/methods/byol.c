/* BYOL as the W-MSE codebase trains it: the normalised MSE between the online prediction and
 * the (constant) target projection, with its gradient (see wmse_losses.h). */
#include <stdlib.h>
#include <string.h>

#include "core/io/specs.h"
#include "core/methods/common.h"
#include "core/methods/wmse_head.h"
#include "core/methods/wmse_losses.h"
#include "core/optim/adam.h"
#include "core/util/error.h"

/* pn, tn, dpn (n, d), norms (2n), cos (n), sum (1). */
int64_t unmix_byol_nmse_workspace(int n, int d) { return 3 * (int64_t)n * d + 3 * (int64_t)n + 16; }

void unmix_byol_nmse(const struct unmix_backend *be, int n, int d, const float *p, const float *t, float dscale, float *dp,
                double *loss, float *work) {
  UNMIX_REQUIRE(n >= 1 && d >= 1, "nmse: n %d, d %d", n, d);
  const int64_t nd = (int64_t)n * d;
  float *pn = work, *tn = pn + nd, *dpn = tn + nd, *norms = dpn + nd, *cos = norms + 2 * n, *sum = cos + n;
  const float eps = 1e-12f; /* F.normalize */
  be->l2norm_forward(n, d, p, pn, norms, eps);
  be->l2norm_forward(n, d, t, tn, norms + n, eps);
  be->row_dot(n, d, pn, tn, cos, 1);
  be->sum(n, cos, sum);
  float s;
  be->memcpy_d2h(&s, sum, sizeof s);
  *loss = 2.0 - 2.0 * (double)s / n;
  if (!dp) return;
  /* d/dpn_i = -2/n tn_i, then through the normalisation of p */
  be->scale(nd, -2.0f * dscale / (float)n, tn, dpn);
  be->l2norm_backward(n, d, dpn, p, norms, eps, pn);
  be->axpy(nd, 1.0f, pn, dp);
}

/* ---- the method: one row of the method table ---------------------------------------------
 * One step, as methods/byol.py + train.py of the W-MSE codebase compute it: online
 * p_v = q(g(f(v))) and target t_v = g_t(f_t(v)) (train-mode BatchNorm, no gradient) per view,
 * each view its own BatchNorm batch everywhere; loss nmse(p0, t1) + nmse(p1, t0); Adam
 * (coupled L2) on the online parameters; then the target update
 * theta_t = tau theta_t + (1 - tau) theta_o over parameters only (BN buffers are not averaged),
 * tau = 1 - (1 - tau0)(cos(pi epoch / E) + 1) / 2. The target starts as a copy of the online
 * parameters.
 * Un-Mix: loss(x0, x1) + lam loss(x1, mixed) + (1 - lam) loss(x1, mixed_flip), loss(a, b) being
 * that forward on the pair - literally, so the mixtures also pass through the target
 * (byol.mix_target: true); with byol.mix_target: false they pass through the online branch only
 * and loss(x1, mixed) = nmse(q(g(f(mixed))), t(x1)). x1's repeated passes give identical outputs
 * in train mode: computed once, the online encoder's BatchNorm running-stat update replayed and
 * the online heads re-run where the reference repeats them (the target's running statistics,
 * which nothing reads, are not repeated). */
enum { BYOL_CTX = 4 };

struct byol {
  struct unmix_model *tgt;               /* f_t */
  struct unmix_param_store gp, gb;       /* online projection head g */
  struct unmix_param_store qp, qb;       /* predictor q */
  struct unmix_param_store tp, tb;       /* target projection head g_t */
  struct wmse_mlp g, q, gt;
  struct unmix_adam adam_enc, adam_g, adam_q;
  struct unmix_ctx *ctx[BYOL_CTX], *tctx[BYOL_CTX], *cwork;
  struct wmse_act ag, aq, at;
  int feat, dim;
};

static struct byol *by_of(const struct unmix_method *m) { return m->impl; }

static void byol_model_needs(const struct unmix_method_spec *cfg, struct unmix_model_spec *spec) {
  (void)cfg;
  spec->head = UNMIX_HEAD_NONE; /* g and q live in the method */
}

static unmix_status byol_create(struct unmix_method *m) {
  const struct unmix_method_spec *cfg = &m->spec;
  const struct unmix_backend *be = m->be;
  struct byol *b = unmix_xcalloc(1, sizeof *b);
  m->impl = b;
  if (cfg->optim.kind != UNMIX_OPTIM_ADAM)
    return unmix_error_set(UNMIX_ERR_CONFIG, "byol trains with optim.kind: adam (the W-MSE codebase's optimiser)");
  if (m->world > 1) /* the heads' gradients would need their own all-reduce */
    return unmix_error_set(UNMIX_ERR_UNSUPPORTED, "byol runs on one process (the multi-rank head all-reduce is not built)");
  /* cfg->model has the head removed by byol_model_needs */
  UNMIX_TRY(unmix_model_create(&cfg->model, be, cfg->seed, &m->model));
  UNMIX_TRY(unmix_model_create(&cfg->model, be, cfg->seed, &b->tgt));
  b->feat = unmix_model_out_dim(m->model);
  b->dim = cfg->model.dim;
  const int H = cfg->model.hidden;
  wmse_mlp_add(&b->g, &b->gp, &b->gb, "head", NULL, b->feat, H, b->dim, false);
  wmse_mlp_add(&b->q, &b->qp, &b->qb, "pred", NULL, b->dim, H, b->dim, false);
  wmse_mlp_add(&b->gt, &b->tp, &b->tb, "head", NULL, b->feat, H, b->dim, false);
  UNMIX_TRY(unmix_param_store_alloc(&b->gp, be, true));
  UNMIX_TRY(unmix_param_store_alloc(&b->gb, be, false));
  UNMIX_TRY(unmix_param_store_alloc(&b->qp, be, true));
  UNMIX_TRY(unmix_param_store_alloc(&b->qb, be, false));
  UNMIX_TRY(unmix_param_store_alloc(&b->tp, be, false));
  UNMIX_TRY(unmix_param_store_alloc(&b->tb, be, false));
  unmix_param_store_init_values(&b->gp, cfg->seed, 100);
  unmix_param_store_init_values(&b->gb, cfg->seed, 101);
  unmix_param_store_init_values(&b->qp, cfg->seed, 102);
  unmix_param_store_init_values(&b->qb, cfg->seed, 103);
  unmix_param_store_init_values(&b->tb, cfg->seed, 105);
  /* update_target(0): the target's parameters (not its BN buffers) copied from the online ones */
  be->copy(m->model->params.total, m->model->params.data, b->tgt->params.data);
  be->copy(b->gp.total, b->gp.data, b->tp.data);
  UNMIX_TRY(unmix_param_store_alloc_optim(&m->model->params));
  UNMIX_TRY(wmse_adam_init(&b->adam_enc, &m->model->params, cfg->optim.weight_decay, m->model->params.momentum));
  UNMIX_TRY(wmse_adam_init(&b->adam_g, &b->gp, cfg->optim.weight_decay, NULL));
  UNMIX_TRY(wmse_adam_init(&b->adam_q, &b->qp, cfg->optim.weight_decay, NULL));
  static const char *const names[BYOL_CTX] = {"byol.x0", "byol.x1", "byol.mix", "byol.mixflip"};
  static const char *const tnames[BYOL_CTX] = {"byol.t.x0", "byol.t.x1", "byol.t.mix", "byol.t.mixflip"};
  for (int i = 0; i < BYOL_CTX; i++) {
    b->ctx[i] = unmix_ctx_create(be, names[i]);
    b->tctx[i] = unmix_ctx_create(be, tnames[i]);
  }
  b->cwork = unmix_ctx_create(be, "byol.work");
  return UNMIX_OK;
}

static void byol_destroy(struct unmix_method *m) {
  struct byol *b = by_of(m);
  if (!b) return;
  unmix_adam_free(&b->adam_enc);
  unmix_adam_free(&b->adam_g);
  unmix_adam_free(&b->adam_q);
  wmse_act_free(m->be, &b->ag);
  wmse_act_free(m->be, &b->aq);
  wmse_act_free(m->be, &b->at);
  for (int i = 0; i < BYOL_CTX; i++) {
    unmix_ctx_destroy(b->ctx[i]);
    unmix_ctx_destroy(b->tctx[i]);
  }
  unmix_ctx_destroy(b->cwork);
  unmix_model_destroy(b->tgt);
  struct unmix_param_store *st[] = {&b->gp, &b->gb, &b->qp, &b->qb, &b->tp, &b->tb};
  for (int i = 0; i < 6; i++) unmix_param_store_free(st[i]);
  free(b);
  m->impl = NULL;
}

/* Target projection t = g_t(f_t(x)) into out (n, dim), no gradient. */
static unmix_status target(struct unmix_method *m, int i, const float *x, int n, float *out) {
  struct byol *b = by_of(m);
  const float *h = unmix_model_forward(b->tgt, b->tctx[i], x, n, UNMIX_FWD_TRAIN, false);
  const float *t;
  UNMIX_TRY(wmse_mlp_forward(m->be, &b->gt, &b->tp, &b->tb, &b->at, n, h, &t));
  m->be->copy((int64_t)n * b->dim, t, out);
  return UNMIX_OK;
}

/* Online branch of encoder output h against target t: loss += weight * nmse(q(g(h)), t),
 * dh += its gradient. */
static unmix_status online(struct unmix_method *m, int n, const float *h, const float *t, float weight, float *dh,
                           double *loss) {
  struct byol *b = by_of(m);
  const struct unmix_backend *be = m->be;
  const int D = b->dim, F = b->feat;
  const float *z, *p;
  UNMIX_TRY(wmse_mlp_forward(be, &b->g, &b->gp, &b->gb, &b->ag, n, h, &z));
  UNMIX_TRY(wmse_mlp_forward(be, &b->q, &b->qp, &b->qb, &b->aq, n, z, &p));
  float *dp = unmix_ctx_alloc(b->cwork, (int64_t)n * D), *dz = unmix_ctx_alloc(b->cwork, (int64_t)n * D);
  float *dhx = unmix_ctx_alloc(b->cwork, (int64_t)n * F);
  float *work = unmix_ctx_alloc(b->cwork, unmix_byol_nmse_workspace(n, D));
  be->fill((int64_t)n * D, 0.0f, dp);
  double l;
  unmix_byol_nmse(be, n, D, p, t, weight, dp, &l, work);
  *loss += l;
  wmse_mlp_backward(be, &b->q, &b->qp, &b->aq, n, z, dp, dz);
  wmse_mlp_backward(be, &b->g, &b->gp, &b->ag, n, h, dz, dhx);
  be->axpy((int64_t)n * F, 1.0f, dhx, dh);
  return UNMIX_OK;
}

static unmix_status byol_step(struct unmix_method *m, const struct unmix_views *v, int64_t step, int epoch, float lr,
                              const struct unmix_forced_draws *forced, struct unmix_step_stats *st) {
  struct byol *b = by_of(m);
  const struct unmix_backend *be = m->be;
  const struct unmix_method_spec *cfg = &m->spec;
  const int n = v->n, F = b->feat, D = b->dim;
  const bool mix = cfg->unmix.enabled, through_target = cfg->byol.mix_target;
  UNMIX_TRY(wmse_check_views(m, v, "BYOL"));
  unmix_ctx_reset(b->cwork);
  unmix_model_zero_grad(m->model);
  be->fill(b->gp.total, 0.0f, b->gp.grad);
  be->fill(b->qp.total, 0.0f, b->qp.grad);
  float *dh[BYOL_CTX], *t[BYOL_CTX];
  for (int i = 0; i < BYOL_CTX; i++) {
    dh[i] = unmix_ctx_alloc(b->cwork, (int64_t)n * F);
    t[i] = unmix_ctx_alloc(b->cwork, (int64_t)n * D);
    be->fill((int64_t)n * F, 0.0f, dh[i]);
  }
  /* model([x0, x1]): online passes first, then the target, as the reference's forward */
  const float *h0 = unmix_model_forward(m->model, b->ctx[0], v->view[0], n, UNMIX_FWD_TRAIN, true);
  const float *h1 = unmix_model_forward(m->model, b->ctx[1], v->view[1], n, UNMIX_FWD_TRAIN, true);
  UNMIX_TRY(target(m, 0, v->view[0], n, t[0]));
  UNMIX_TRY(target(m, 1, v->view[1], n, t[1]));
  double l0 = 0, l1 = 0, l2 = 0;
  UNMIX_TRY(online(m, n, h0, t[1], 1.0f, dh[0], &l0));
  UNMIX_TRY(online(m, n, h1, t[0], 1.0f, dh[1], &l0));
  struct unmix_mix_draw draw = {0};
  if (mix) {
    float *mx[2];
    wmse_mix_views(m, v, step, forced, b->cwork, &draw, &mx[0], &mx[1]);
    const float w[2] = {(float)draw.lam, 1.0f - (float)draw.lam};
    double *lm[2] = {&l1, &l2};
    for (int k = 0; k < 2; k++) {
      /* model([x1, mixed]) (k = 0) / model([x1, mixed_flip]) (k = 1); x1's target t[1] is
       * reused as is (the target's BN running statistics are never read) */
      if (through_target) unmix_model_replay_bn_updates(m->model, b->ctx[1]);
      const float *hm = unmix_model_forward(m->model, b->ctx[2 + k], mx[k], n, UNMIX_FWD_TRAIN, true);
      if (through_target) UNMIX_TRY(target(m, 2 + k, mx[k], n, t[2 + k]));
      if (through_target) UNMIX_TRY(online(m, n, h1, t[2 + k], w[k], dh[1], lm[k]));
      UNMIX_TRY(online(m, n, hm, t[1], w[k], dh[2 + k], lm[k]));
    }
  }
  const double lam = mix ? draw.lam : 1.0;
  const double loss = l0 + lam * l1 + (1.0 - lam) * l2;
  UNMIX_TRY(unmix_method_check_loss(m, loss, "BYOL", step, lr));
  for (int i = 0; i < (mix ? 4 : 2); i++) unmix_model_backward(m->model, b->ctx[i], dh[i]);
  UNMIX_TRY(unmix_method_allreduce_grads(m));
  unmix_adam_step(&b->adam_enc, m->model->params.data, m->model->params.grad, lr);
  unmix_adam_step(&b->adam_g, b->gp.data, b->gp.grad, lr);
  unmix_adam_step(&b->adam_q, b->qp.data, b->qp.grad, lr);
  /* model.step(ep / epochs): the target moves after every optimiser step */
  const float tau = (float)unmix_byol_tau(cfg->byol.tau, epoch, cfg->epochs);
  unmix_ema_update(be, &b->tgt->params, &m->model->params, tau);
  be->ema(b->tp.total, tau, b->gp.data, b->tp.data);
  unmix_step_stats_fill(st, loss, "loss_byol", "loss_mix_flip", l0, l1, l2, mix ? &draw : NULL, lam);
  return UNMIX_OK;
}

static int byol_views_needed(const struct unmix_method *m) {
  (void)m;
  return 2;
}

/* online passes forward + backward (3x), target passes forward only; the heads likewise: g and
 * q forward + backward per online() call (x1's is re-run for each mixture through the target),
 * g_t forward per target pass */
static double byol_step_flops_per_sample(const struct unmix_method *m) {
  const struct byol *b = by_of(m);
  const bool mix = m->spec.unmix.enabled, tt = m->spec.byol.mix_target;
  double online = mix ? 4 : 2, tgt = mix && tt ? 4 : 2, calls = 2 + (mix ? (tt ? 4 : 2) : 0);
  return unmix_model_forward_flops(m->model) * (3.0 * online + tgt) +
         3.0 * calls * (wmse_mlp_forward_flops(&b->g) + wmse_mlp_forward_flops(&b->q)) +
         tgt * wmse_mlp_forward_flops(&b->gt);
}

static size_t byol_device_bytes(const struct unmix_method *m) {
  const struct byol *b = by_of(m);
  size_t f = sizeof(float);
  size_t s = f * ((size_t)b->tgt->params.total + (size_t)b->tgt->buffers.total + (size_t)m->model->params.total);
  s += f * ((size_t)b->gp.total * 4 + (size_t)b->qp.total * 4 + (size_t)b->tp.total + (size_t)b->gb.total +
            (size_t)b->qb.total + (size_t)b->tb.total);
  for (int i = 0; i < BYOL_CTX; i++) s += unmix_ctx_bytes(b->ctx[i]) + unmix_ctx_bytes(b->tctx[i]);
  return s + unmix_ctx_bytes(b->cwork);
}

static int byol_state(struct unmix_method *m, struct unmix_state_entry *out, int cap) {
  struct byol *b = by_of(m);
  int n = 0;
  n = unmix_state_add(out, n, cap, "byol.head.params", b->gp.data, b->gp.total);
  n = unmix_state_add(out, n, cap, "byol.head.buffers", b->gb.data, b->gb.total);
  n = unmix_state_add(out, n, cap, "byol.pred.params", b->qp.data, b->qp.total);
  n = unmix_state_add(out, n, cap, "byol.pred.buffers", b->qb.data, b->qb.total);
  n = unmix_state_add(out, n, cap, "byol.target.params", b->tgt->params.data, b->tgt->params.total);
  n = unmix_state_add(out, n, cap, "byol.target.buffers", b->tgt->buffers.data, b->tgt->buffers.total);
  n = unmix_state_add(out, n, cap, "byol.target_head.params", b->tp.data, b->tp.total);
  n = unmix_state_add(out, n, cap, "byol.target_head.buffers", b->tb.data, b->tb.total);
  n = unmix_state_add(out, n, cap, "adam.encoder.exp_avg_sq", b->adam_enc.v, b->adam_enc.n);
  n = unmix_state_add(out, n, cap, "adam.head.exp_avg", b->adam_g.m, b->adam_g.n);
  n = unmix_state_add(out, n, cap, "adam.head.exp_avg_sq", b->adam_g.v, b->adam_g.n);
  n = unmix_state_add(out, n, cap, "adam.pred.exp_avg", b->adam_q.m, b->adam_q.n);
  n = unmix_state_add(out, n, cap, "adam.pred.exp_avg_sq", b->adam_q.v, b->adam_q.n);
  return n;
}

static int byol_scalars(struct unmix_method *m, const char **names, int64_t *values, int cap) {
  if (cap >= 2) {
    names[0] = "adam.steps";
    values[0] = by_of(m)->adam_enc.steps;
    names[1] = "byol.target.bn_batches_tracked";
    values[1] = by_of(m)->tgt->bn_batches_tracked;
  }
  return 2;
}

static unmix_status byol_set_scalar(struct unmix_method *m, const char *name, int64_t value) {
  struct byol *b = by_of(m);
  if (!strcmp(name, "adam.steps")) {
    if (value < 0) return unmix_error_set(UNMIX_ERR_FORMAT, "adam.steps = %lld must be >= 0", (long long)value);
    b->adam_enc.steps = b->adam_g.steps = b->adam_q.steps = value;
    return UNMIX_OK;
  }
  if (!strcmp(name, "byol.target.bn_batches_tracked")) {
    b->tgt->bn_batches_tracked = value;
    return UNMIX_OK;
  }
  return unmix_error_set(UNMIX_ERR_FORMAT, "unknown BYOL state scalar '%s'", name);
}

/* Test hooks. */
struct unmix_model *unmix_byol_target(struct unmix_method *m) { return by_of(m)->tgt; }
struct unmix_param_store *unmix_byol_store(struct unmix_method *m, int which) {
  struct byol *b = by_of(m);
  struct unmix_param_store *s[] = {&b->gp, &b->qp, &b->tp, &b->gb, &b->qb, &b->tb};
  return which >= 0 && which < 6 ? s[which] : NULL;
}

const struct unmix_method_ops unmix_byol_ops = {
    .name = "byol",
    .model_needs = byol_model_needs,
    .create = byol_create,
    .destroy = byol_destroy,
    .step = byol_step,
    .begin_epoch = NULL,
    .views_needed = byol_views_needed,
    .step_flops_per_sample = byol_step_flops_per_sample,
    .device_bytes = byol_device_bytes,
    .state = byol_state,
    .scalars = byol_scalars,
    .set_scalar = byol_set_scalar,
    .metric_columns = {NULL},
};
