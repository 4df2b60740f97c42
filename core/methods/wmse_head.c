/* The W-MSE codebase's MLP heads over backend ops (see wmse_head.h). Accumulation rule as every
 * layer: parameter gradients +=, input gradients =. */
#include "core/methods/wmse_head.h"

#include <stdio.h>

#include "core/methods/common.h"
#include "core/util/error.h"

static const float BN_EPS = 1e-5f, BN_MOMENTUM = 0.1f;

static int add_linear(struct unmix_param_store *p, const char *name, int in, int out, int *bias) {
  char nm[96];
  int ws[2] = {out, in}, bs[1] = {out};
  snprintf(nm, sizeof nm, "%s.weight", name);
  int w = unmix_param_store_add(p, nm, 2, ws, UNMIX_LAYOUT_PLAIN, UNMIX_INIT_UNIFORM_FAN_IN, 0.0f);
  snprintf(nm, sizeof nm, "%s.bias", name);
  *bias = unmix_param_store_add(p, nm, 1, bs, UNMIX_LAYOUT_PLAIN, UNMIX_INIT_UNIFORM_FAN_IN, 0.0f);
  p->entries[*bias].fan_in = in; /* nn.Linear's bias bound uses the weight's fan_in */
  return w;
}

static int add_bn(struct unmix_param_store *p, struct unmix_param_store *b, const char *name, int c, int *beta,
                  int *rm, int *rv) {
  char nm[96];
  int sh[1] = {c};
  snprintf(nm, sizeof nm, "%s.weight", name);
  int g = unmix_param_store_add(p, nm, 1, sh, UNMIX_LAYOUT_PLAIN, UNMIX_INIT_ONE, 0.0f);
  snprintf(nm, sizeof nm, "%s.bias", name);
  *beta = unmix_param_store_add(p, nm, 1, sh, UNMIX_LAYOUT_PLAIN, UNMIX_INIT_ZERO, 0.0f);
  snprintf(nm, sizeof nm, "%s.running_mean", name);
  *rm = unmix_param_store_add(b, nm, 1, sh, UNMIX_LAYOUT_PLAIN, UNMIX_INIT_ZERO, 0.0f);
  snprintf(nm, sizeof nm, "%s.running_var", name);
  *rv = unmix_param_store_add(b, nm, 1, sh, UNMIX_LAYOUT_PLAIN, UNMIX_INIT_ONE, 0.0f);
  return g;
}

void wmse_mlp_add(struct wmse_mlp *h, struct unmix_param_store *params, struct unmix_param_store *bufs,
                  const char *prefix, const char *last_name, int in, int hidden, int out, bool bn_last) {
  char nm[96];
  h->in = in, h->hidden = hidden, h->out = out, h->bn_last = bn_last;
  snprintf(nm, sizeof nm, "%s.0", prefix);
  h->w1 = add_linear(params, nm, in, hidden, &h->b1);
  snprintf(nm, sizeof nm, "%s.1", prefix);
  h->g1 = add_bn(params, bufs, nm, hidden, &h->bb1, &h->rm1, &h->rv1);
  snprintf(nm, sizeof nm, "%s.3", prefix);
  h->w2 = add_linear(params, nm, hidden, out, &h->b2);
  h->g2 = h->bb2 = h->rm2 = h->rv2 = -1;
  if (bn_last) h->g2 = add_bn(params, bufs, last_name, out, &h->bb2, &h->rm2, &h->rv2);
}

void wmse_act_free(const struct unmix_backend *be, struct wmse_act *a) {
  float *bufs[] = {a->y1, a->a1, a->m1, a->s1, a->y2, a->z, a->m2, a->s2, a->dy2, a->da1};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
    if (bufs[i]) be->free(bufs[i]);
  *a = (struct wmse_act){0};
}

static unmix_status reserve(const struct unmix_backend *be, const struct wmse_mlp *h, struct wmse_act *a, int n) {
  if (n <= a->cap) return UNMIX_OK;
  wmse_act_free(be, a);
  const size_t f = sizeof(float), nh = (size_t)n * h->hidden, no = (size_t)n * h->out;
  a->y1 = be->alloc(f * nh);
  a->a1 = be->alloc(f * nh);
  a->da1 = be->alloc(f * nh);
  a->m1 = be->alloc(f * h->hidden);
  a->s1 = be->alloc(f * h->hidden);
  a->y2 = be->alloc(f * no);
  a->z = be->alloc(f * no);
  a->dy2 = be->alloc(f * no);
  a->m2 = be->alloc(f * h->out);
  a->s2 = be->alloc(f * h->out);
  if (!a->y1 || !a->a1 || !a->da1 || !a->m1 || !a->s1 || !a->y2 || !a->z || !a->dy2 || !a->m2 || !a->s2) {
    wmse_act_free(be, a);
    return unmix_error_set(UNMIX_ERR_NOMEM, "projection head activations for a batch of %d", n);
  }
  a->cap = n;
  return UNMIX_OK;
}

unmix_status wmse_mlp_forward(const struct unmix_backend *be, const struct wmse_mlp *h,
                              const struct unmix_param_store *params, struct unmix_param_store *bufs,
                              struct wmse_act *act, int n, const float *x, const float **z) {
  UNMIX_TRY(reserve(be, h, act, n));
  const struct unmix_bn_geom g1 = {n, 1, h->hidden, 1}, g2 = {n, 1, h->out, 1};
  be->linear_forward(n, h->in, h->hidden, x, unmix_param_ptr(params, h->w1), unmix_param_ptr(params, h->b1), act->y1);
  be->batchnorm_forward_train(&g1, act->y1, unmix_param_ptr(params, h->g1), unmix_param_ptr(params, h->bb1), act->a1,
                              act->m1, act->s1, unmix_param_ptr(bufs, h->rm1), unmix_param_ptr(bufs, h->rv1),
                              BN_MOMENTUM, BN_EPS, false);
  be->relu_forward((int64_t)n * h->hidden, act->a1, act->a1);
  float *y2 = h->bn_last ? act->y2 : act->z;
  be->linear_forward(n, h->hidden, h->out, act->a1, unmix_param_ptr(params, h->w2), unmix_param_ptr(params, h->b2), y2);
  if (h->bn_last)
    be->batchnorm_forward_train(&g2, act->y2, unmix_param_ptr(params, h->g2), unmix_param_ptr(params, h->bb2), act->z,
                                act->m2, act->s2, unmix_param_ptr(bufs, h->rm2), unmix_param_ptr(bufs, h->rv2),
                                BN_MOMENTUM, BN_EPS, false);
  *z = act->z;
  return UNMIX_OK;
}

void wmse_mlp_backward(const struct unmix_backend *be, const struct wmse_mlp *h, struct unmix_param_store *params,
                       struct wmse_act *act, int n, const float *x, const float *dz, float *dx) {
  const struct unmix_bn_geom g1 = {n, 1, h->hidden, 1}, g2 = {n, 1, h->out, 1};
  const float *dy2 = dz;
  if (h->bn_last) {
    be->batchnorm_backward(&g2, dz, act->y2, unmix_param_ptr(params, h->g2), NULL, act->m2, act->s2, false, act->dy2,
                           unmix_param_grad(params, h->g2), unmix_param_grad(params, h->bb2));
    dy2 = act->dy2;
  }
  be->linear_backward(n, h->hidden, h->out, dy2, act->a1, unmix_param_ptr(params, h->w2), act->da1,
                      unmix_param_grad(params, h->w2), unmix_param_grad(params, h->b2));
  be->relu_backward((int64_t)n * h->hidden, act->da1, act->a1, act->da1);
  /* the BN's dx may alias its dy: da1 is overwritten in place */
  be->batchnorm_backward(&g1, act->da1, act->y1, unmix_param_ptr(params, h->g1), NULL, act->m1, act->s1, false, act->da1,
                         unmix_param_grad(params, h->g1), unmix_param_grad(params, h->bb1));
  be->linear_backward(n, h->in, h->hidden, act->da1, x, unmix_param_ptr(params, h->w1), dx,
                      unmix_param_grad(params, h->w1), unmix_param_grad(params, h->b1));
}

double wmse_mlp_forward_flops(const struct wmse_mlp *h) {
  return 2.0 * ((double)h->in * h->hidden + (double)h->hidden * h->out);
}

unmix_status wmse_adam_init(struct unmix_adam *a, struct unmix_param_store *s, double weight_decay, float *m_ext) {
  struct unmix_adam_params p = unmix_adam_params_default();
  p.weight_decay = weight_decay;
  return unmix_adam_init_ext(a, s->be, s->total, &p, m_ext);
}

unmix_status wmse_check_views(const struct unmix_method *m, const struct unmix_views *v, const char *method) {
  const int S = m->image_size;
  if (v->nviews < 2)
    return unmix_error_set(UNMIX_ERR_CONFIG, "%s needs 2 views per sample, the recipe gives %d", method, v->nviews);
  if (v->n < 2)
    return unmix_error_set(UNMIX_ERR_CONFIG, "%s needs at least 2 samples per batch (BatchNorm), got %d", method, v->n);
  if (v->size[0] != S || v->size[1] != S)
    return unmix_error_set(UNMIX_ERR_CONFIG, "%s views are %dx%d but the model was built for %d", method, v->size[0],
                           v->size[1], S);
  return UNMIX_OK;
}

void wmse_mix_views(struct unmix_method *m, const struct unmix_views *v, int64_t step,
                    const struct unmix_forced_draws *forced, struct unmix_ctx *work, struct unmix_mix_draw *draw,
                    float **mixed, float **mflip) {
  const struct unmix_method_spec *cfg = &m->spec;
  const int n = v->n, S = m->image_size;
  if (forced && forced->have_mix) *draw = forced->mix;
  else unmix_mix_draw(&cfg->unmix, cfg->seed, step, cfg->unmix.per_rank ? m->rank : 0, S, S, draw);
  const int64_t img = (int64_t)n * S * S * 3;
  *mixed = unmix_ctx_alloc(work, img);
  *mflip = unmix_ctx_alloc(work, img);
  unmix_mix_apply(m->be, draw, n, S, S, 3, v->view[0], *mixed);
  m->be->flip_batch(n, (int64_t)S * S * 3, *mixed, *mflip);
}
