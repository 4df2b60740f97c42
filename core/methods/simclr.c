/* SimCLR as the W-MSE codebase trains it ("contrastive"): the symmetric NT-Xent loss over
 * 2N-2 negatives with its gradient (see wmse_losses.h). The diagonal of each same-view
 * similarity block is pushed to -1e9 exactly as the reference's eye mask does, so its
 * softmax weight underflows to 0 and it drops out of the gradient too. */
#include <stdlib.h>
#include <string.h>

#include "core/io/specs.h"
#include "core/methods/common.h"
#include "core/methods/wmse_head.h"
#include "core/methods/wmse_losses.h"
#include "core/util/error.h"

/* a, b, norms (2n), logits (n, 2n), probs (n, 2n), dlogits (n, 2n), mask (n, 2n), da, db (n, d),
 * loss (1), labels (n int32 in float slots). */
int64_t unmix_simclr_ntxent_workspace(int n, int d) {
  return 4 * (int64_t)n * d + 2 * (int64_t)n + 4 * (int64_t)n * 2 * n + 1 + n + 16;
}

/* One direction: anchors x against [y; x]. G = dloss-scaled dCE/dlogits; dx += G1 y/tau +
 * (G2 + G2^T) x/tau, dy += G1^T x/tau. */
static double direction(const struct unmix_backend *be, int n, int d, float tau, const float *x, const float *y,
                        float dloss, float *dx, float *dy, float *logits, float *probs, float *dlog, const float *mask,
                        const int32_t *labels, float *lossbuf) {
  const int w = 2 * n;
  const float it = 1.0f / tau;
  be->gemm(false, true, n, n, d, it, x, d, y, d, 0.0f, logits, w);     /* x y^T / tau */
  be->gemm(false, true, n, n, d, it, x, d, x, d, 0.0f, logits + n, w); /* x x^T / tau */
  be->add((int64_t)n * w, logits, mask, logits);                      /* - 1e9 on the self terms */
  be->cross_entropy_forward(n, w, 1.0f, logits, labels, probs, lossbuf, NULL, NULL);
  float l;
  be->memcpy_d2h(&l, lossbuf, sizeof l);
  if (dx || dy) {
    be->cross_entropy_backward(n, w, 1.0f, dloss, probs, labels, dlog);
    if (dx) {
      be->gemm(false, false, n, d, n, it, dlog, w, y, d, 1.0f, dx, d);
      be->gemm(false, false, n, d, n, it, dlog + n, w, x, d, 1.0f, dx, d);
      be->gemm(true, false, n, d, n, it, dlog + n, w, x, d, 1.0f, dx, d);
    }
    if (dy) be->gemm(true, false, n, d, n, it, dlog, w, x, d, 1.0f, dy, d);
  }
  return l;
}

void unmix_simclr_ntxent(const struct unmix_backend *be, int n, int d, float tau, const float *z0, const float *z1,
                  float dscale, float *dz0, float *dz1, double *loss, float *work) {
  UNMIX_REQUIRE(n >= 2 && d >= 1 && tau > 0.0f, "ntxent: n %d, d %d, tau %g", n, d, (double)tau);
  const int64_t nd = (int64_t)n * d, nw = (int64_t)n * 2 * n;
  float *a = work, *b = a + nd, *da = b + nd, *db = da + nd, *norms = db + nd;
  float *logits = norms + 2 * n, *probs = logits + nw, *dlog = probs + nw, *mask = dlog + nw;
  float *lossbuf = mask + nw;
  int32_t *labels = (int32_t *)(lossbuf + 1);
  /* the mask and the targets arange(n) (small host tables, rebuilt per call) */
  float *hm = calloc((size_t)nw, sizeof(float));
  int32_t *hl = malloc(sizeof(int32_t) * (size_t)n);
  UNMIX_REQUIRE(hm && hl, "ntxent: out of host memory");
  for (int i = 0; i < n; i++) {
    hm[(int64_t)i * 2 * n + n + i] = -1e9f;
    hl[i] = i;
  }
  be->memcpy_h2d(mask, hm, sizeof(float) * (size_t)nw);
  be->memcpy_h2d(labels, hl, sizeof(int32_t) * (size_t)n);
  free(hm);
  free(hl);
  const float eps = 1e-12f;
  be->l2norm_forward(n, d, z0, a, norms, eps);
  be->l2norm_forward(n, d, z1, b, norms + n, eps);
  const int grad = dz0 || dz1;
  if (grad) {
    be->fill(nd, 0.0f, da);
    be->fill(nd, 0.0f, db);
  }
  /* (CE_a + CE_b) / 2: each direction's cross-entropy gets dloss = dscale / 2 */
  const float half = 0.5f * dscale;
  double la = direction(be, n, d, tau, a, b, half, grad ? da : NULL, grad ? db : NULL, logits, probs, dlog, mask,
                        labels, lossbuf);
  double lb = direction(be, n, d, tau, b, a, half, grad ? db : NULL, grad ? da : NULL, logits, probs, dlog, mask,
                        labels, lossbuf);
  *loss = (la + lb) / 2.0;
  if (!grad) return;
  /* through the normalisation (a and b are free now: scratch for the input gradients) */
  if (dz0) {
    be->l2norm_backward(n, d, da, z0, norms, eps, a);
    be->axpy(nd, 1.0f, a, dz0);
  }
  if (dz1) {
    be->l2norm_backward(n, d, db, z1, norms + n, eps, b);
    be->axpy(nd, 1.0f, b, dz1);
  }
}

/* ---- the method: one row of the method table ---------------------------------------------
 * One step, as methods/contrastive.py + train.py of the W-MSE codebase compute it:
 *   each view through the encoder alone (per-view BatchNorm batches); the head g and the
 *   affine bn_last over [h(x0); h(x1)] as one batch; NT-Xent; Adam (coupled L2) on every
 *   parameter.
 * With Un-Mix (the paper's pseudo-code, literally): loss(x0, x1) + lam loss(x1, mixed) +
 * (1 - lam) loss(x1, mixed_flip), each loss(a, b) a separate call of that forward - so the
 * head's BatchNorm statistics are those of [h(x1); h(mixed)] and [h(x1); h(mixed_flip)], the
 * negatives of a call are its own 2N-2 embeddings, and x1's encoder pass is repeated: its
 * output and gradient are identical in train mode, so it runs once and its BatchNorm
 * running-stat update is replayed where the repeats would happen (the mix_once argument).
 * mixed_flip goes through the encoder as its own batch. */
enum { SIMCLR_CTX = 4 };

struct simclr {
  struct unmix_param_store hp, hb;    /* head + bn_last parameters, BN buffers */
  struct wmse_mlp head;
  struct unmix_adam adam_enc, adam_head;
  struct unmix_ctx *ctx[SIMCLR_CTX];  /* x0, x1, mixed, mixed_flip */
  struct unmix_ctx *cwork;
  struct wmse_act act;
  int feat, dim;
};

static struct simclr *sc_of(const struct unmix_method *m) { return m->impl; }

static void simclr_model_needs(const struct unmix_method_spec *cfg, struct unmix_model_spec *spec) {
  (void)cfg;
  spec->head = UNMIX_HEAD_NONE; /* the head lives in the method (it sees both views as one batch) */
}

static unmix_status simclr_create(struct unmix_method *m) {
  const struct unmix_method_spec *cfg = &m->spec;
  struct simclr *s = unmix_xcalloc(1, sizeof *s);
  m->impl = s;
  if (cfg->optim.kind != UNMIX_OPTIM_ADAM)
    return unmix_error_set(UNMIX_ERR_CONFIG, "simclr trains with optim.kind: adam (the W-MSE codebase's optimiser)");
  if (m->world > 1) /* the head's gradients would need their own all-reduce */
    return unmix_error_set(UNMIX_ERR_UNSUPPORTED, "simclr runs on one process (the multi-rank head all-reduce is not built)");
  /* cfg->model has the head removed by simclr_model_needs */
  UNMIX_TRY(unmix_model_create(&cfg->model, m->be, cfg->seed, &m->model));
  s->feat = unmix_model_out_dim(m->model);
  s->dim = cfg->model.dim;
  wmse_mlp_add(&s->head, &s->hp, &s->hb, "head", "bn_last", s->feat, cfg->model.hidden, s->dim, true);
  UNMIX_TRY(unmix_param_store_alloc(&s->hp, m->be, true));
  UNMIX_TRY(unmix_param_store_alloc(&s->hb, m->be, false));
  unmix_param_store_init_values(&s->hp, cfg->seed, 100);
  unmix_param_store_init_values(&s->hb, cfg->seed, 101);
  UNMIX_TRY(unmix_param_store_alloc_optim(&m->model->params));
  UNMIX_TRY(wmse_adam_init(&s->adam_enc, &m->model->params, cfg->optim.weight_decay, m->model->params.momentum));
  UNMIX_TRY(wmse_adam_init(&s->adam_head, &s->hp, cfg->optim.weight_decay, NULL));
  static const char *const names[SIMCLR_CTX] = {"simclr.x0", "simclr.x1", "simclr.mix", "simclr.mixflip"};
  for (int i = 0; i < SIMCLR_CTX; i++) s->ctx[i] = unmix_ctx_create(m->be, names[i]);
  s->cwork = unmix_ctx_create(m->be, "simclr.work");
  return UNMIX_OK;
}

static void simclr_destroy(struct unmix_method *m) {
  struct simclr *s = sc_of(m);
  if (!s) return;
  unmix_adam_free(&s->adam_enc);
  unmix_adam_free(&s->adam_head);
  wmse_act_free(m->be, &s->act);
  for (int i = 0; i < SIMCLR_CTX; i++) unmix_ctx_destroy(s->ctx[i]);
  unmix_ctx_destroy(s->cwork);
  unmix_param_store_free(&s->hp);
  unmix_param_store_free(&s->hb);
  free(s);
  m->impl = NULL;
}

/* One call of the reference forward on a view pair: head over [ha; hb], NT-Xent; dha, dhb +=
 * weight * gradient. Returns the loss. */
static unmix_status pair(struct unmix_method *m, int n, const float *ha, const float *hb, float weight, float *dha,
                         float *dhb, double *loss) {
  struct simclr *s = sc_of(m);
  const struct unmix_backend *be = m->be;
  const int F = s->feat, D = s->dim;
  float *hcat = unmix_ctx_alloc(s->cwork, 2 * (int64_t)n * F);
  float *dz = unmix_ctx_alloc(s->cwork, 2 * (int64_t)n * D);
  float *dh = unmix_ctx_alloc(s->cwork, 2 * (int64_t)n * F);
  float *work = unmix_ctx_alloc(s->cwork, unmix_simclr_ntxent_workspace(n, D));
  be->copy((int64_t)n * F, ha, hcat);
  be->copy((int64_t)n * F, hb, hcat + (int64_t)n * F);
  const float *z;
  UNMIX_TRY(wmse_mlp_forward(be, &s->head, &s->hp, &s->hb, &s->act, 2 * n, hcat, &z));
  be->fill(2 * (int64_t)n * D, 0.0f, dz);
  unmix_simclr_ntxent(be, n, D, m->spec.simclr.tau, z, z + (int64_t)n * D, weight, dz, dz + (int64_t)n * D, loss, work);
  wmse_mlp_backward(be, &s->head, &s->hp, &s->act, 2 * n, hcat, dz, dh);
  be->axpy((int64_t)n * F, 1.0f, dh, dha);
  be->axpy((int64_t)n * F, 1.0f, dh + (int64_t)n * F, dhb);
  return UNMIX_OK;
}

static unmix_status simclr_step(struct unmix_method *m, const struct unmix_views *v, int64_t step, int epoch, float lr,
                                const struct unmix_forced_draws *forced, struct unmix_step_stats *st) {
  (void)epoch;
  struct simclr *s = sc_of(m);
  const struct unmix_backend *be = m->be;
  const struct unmix_method_spec *cfg = &m->spec;
  const int n = v->n, F = s->feat;
  const bool mix = cfg->unmix.enabled;
  UNMIX_TRY(wmse_check_views(m, v, "SimCLR"));
  unmix_ctx_reset(s->cwork);
  unmix_model_zero_grad(m->model);
  be->fill(s->hp.total, 0.0f, s->hp.grad);
  float *dh[SIMCLR_CTX];
  for (int i = 0; i < SIMCLR_CTX; i++) {
    dh[i] = unmix_ctx_alloc(s->cwork, (int64_t)n * F);
    be->fill((int64_t)n * F, 0.0f, dh[i]);
  }
  const float *h0 = unmix_model_forward(m->model, s->ctx[0], v->view[0], n, UNMIX_FWD_TRAIN, true);
  const float *h1 = unmix_model_forward(m->model, s->ctx[1], v->view[1], n, UNMIX_FWD_TRAIN, true);
  double l0 = 0, l1 = 0, l2 = 0;
  UNMIX_TRY(pair(m, n, h0, h1, 1.0f, dh[0], dh[1], &l0));
  struct unmix_mix_draw draw = {0};
  if (mix) {
    float *mixed, *mflip;
    wmse_mix_views(m, v, step, forced, s->cwork, &draw, &mixed, &mflip);
    const float lam = (float)draw.lam;
    unmix_model_replay_bn_updates(m->model, s->ctx[1]); /* model([x1, mixed]) encodes x1 again */
    const float *hm = unmix_model_forward(m->model, s->ctx[2], mixed, n, UNMIX_FWD_TRAIN, true);
    UNMIX_TRY(pair(m, n, h1, hm, lam, dh[1], dh[2], &l1));
    unmix_model_replay_bn_updates(m->model, s->ctx[1]); /* model([x1, mixed_flip]) */
    const float *hf = unmix_model_forward(m->model, s->ctx[3], mflip, n, UNMIX_FWD_TRAIN, true);
    UNMIX_TRY(pair(m, n, h1, hf, 1.0f - lam, dh[1], dh[3], &l2));
  }
  const double lam = mix ? draw.lam : 1.0;
  const double loss = l0 + lam * l1 + (1.0 - lam) * l2;
  UNMIX_TRY(unmix_method_check_loss(m, loss, "SimCLR", step, lr));
  for (int i = 0; i < (mix ? 4 : 2); i++) unmix_model_backward(m->model, s->ctx[i], dh[i]);
  UNMIX_TRY(unmix_method_allreduce_grads(m));
  unmix_adam_step(&s->adam_enc, m->model->params.data, m->model->params.grad, lr);
  unmix_adam_step(&s->adam_head, s->hp.data, s->hp.grad, lr);
  unmix_step_stats_fill(st, loss, "loss_cl", "loss_mix_flip", l0, l1, l2, mix ? &draw : NULL, lam);
  return UNMIX_OK;
}

static int simclr_views_needed(const struct unmix_method *m) {
  (void)m;
  return 2;
}

/* every encoder pass forward + backward (3x), and the head's: each of the (Un-Mix: 3) pair
 * calls runs it forward + backward over both views' embeddings (2 per sample) */
static double simclr_step_flops_per_sample(const struct unmix_method *m) {
  const bool mix = m->spec.unmix.enabled;
  return unmix_model_forward_flops(m->model) * 3.0 * (mix ? 4 : 2) +
         wmse_mlp_forward_flops(&sc_of(m)->head) * 3.0 * 2.0 * (mix ? 3 : 1);
}

static size_t simclr_device_bytes(const struct unmix_method *m) {
  const struct simclr *s = sc_of(m);
  size_t b = sizeof(float) * ((size_t)s->hp.total * 4 + (size_t)s->hb.total + (size_t)m->model->params.total);
  for (int i = 0; i < SIMCLR_CTX; i++) b += unmix_ctx_bytes(s->ctx[i]);
  return b + unmix_ctx_bytes(s->cwork) + sizeof(float) * (size_t)s->act.cap * (3 * s->head.hidden + 3 * s->dim);
}

static int simclr_state(struct unmix_method *m, struct unmix_state_entry *out, int cap) {
  struct simclr *s = sc_of(m);
  int n = 0;
  n = unmix_state_add(out, n, cap, "simclr.head.params", s->hp.data, s->hp.total);
  n = unmix_state_add(out, n, cap, "simclr.head.buffers", s->hb.data, s->hb.total);
  n = unmix_state_add(out, n, cap, "adam.encoder.exp_avg_sq", s->adam_enc.v, s->adam_enc.n);
  n = unmix_state_add(out, n, cap, "adam.head.exp_avg", s->adam_head.m, s->adam_head.n);
  n = unmix_state_add(out, n, cap, "adam.head.exp_avg_sq", s->adam_head.v, s->adam_head.n);
  return n;
}

static int simclr_scalars(struct unmix_method *m, const char **names, int64_t *values, int cap) {
  if (cap >= 1) {
    names[0] = "adam.steps";
    values[0] = sc_of(m)->adam_enc.steps;
  }
  return 1;
}

static unmix_status simclr_set_scalar(struct unmix_method *m, const char *name, int64_t value) {
  if (!strcmp(name, "adam.steps")) {
    if (value < 0) return unmix_error_set(UNMIX_ERR_FORMAT, "adam.steps = %lld must be >= 0", (long long)value);
    sc_of(m)->adam_enc.steps = sc_of(m)->adam_head.steps = value;
    return UNMIX_OK;
  }
  return unmix_error_set(UNMIX_ERR_FORMAT, "unknown SimCLR state scalar '%s'", name);
}

/* Test hooks: the head's parameter store (gradients of the last step) and BN buffers. */
struct unmix_param_store *unmix_simclr_head(struct unmix_method *m, struct unmix_param_store **buffers) {
  if (buffers) *buffers = &sc_of(m)->hb;
  return &sc_of(m)->hp;
}

const struct unmix_method_ops unmix_simclr_ops = {
    .name = "simclr",
    .model_needs = simclr_model_needs,
    .create = simclr_create,
    .destroy = simclr_destroy,
    .step = simclr_step,
    .begin_epoch = NULL,
    .views_needed = simclr_views_needed,
    .step_flops_per_sample = simclr_step_flops_per_sample,
    .device_bytes = simclr_device_bytes,
    .state = simclr_state,
    .scalars = simclr_scalars,
    .set_scalar = simclr_set_scalar,
    .metric_columns = {NULL},
};
