/* The layer-graph engine: forward and backward passes over a model's nodes, with
 * activations in a caller-owned context. Nodes are stored in execution order (every input
 * precedes its consumers), so backward visits them in reverse index order and a node's
 * gradient is complete when it is visited. Input gradients of fan-out nodes are summed
 * explicitly (ops overwrite dx; see the accumulation rule in backend.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/nn/arena.h"
#include "core/nn/model.h"

struct node_state {
  float *out;          /* output activation (n, h, w, c) */
  float *save_a;       /* BN: save_mean (S, C); L2NORM: norms (n) */
  float *save_b;       /* BN: save_invstd (S, C) */
  int32_t *argmax;     /* MAXPOOL */
  bool out_pooled;     /* out came from the pool (may be recycled) */
};

struct pool_buf {
  float *p;
  int64_t floats;
  bool used;
};

struct unmix_ctx {
  const struct unmix_backend *be;
  struct unmix_arena *arena;
  char name[48];
  int n;                 /* batch of the last forward */
  int n_nodes;
  struct node_state *st;
  enum unmix_fwd_mode mode;
  bool need_grad;
  bool valid;            /* a forward ran since the last reset */
  const struct unmix_model *model;
  struct pool_buf *pool;
  int npool, cappool;
  int *remaining;        /* consumer counts during a no-grad forward */
  float **grad;          /* per-node upstream gradient during backward */
  bool synced;           /* the last forward used SyncBatchNorm (model->bn_sync) */
  double *sync_count;    /* SyncBN: per node, the global number of values per channel */
  const float *pinned;   /* the parameter store this pass pinned (backend weights_pin), or NULL */
};

/* The weights are read-only from a forward pass to the end of its backward pass (or to the end
 * of the forward when there is none): the pin spans exactly that. */
static void ctx_unpin(struct unmix_ctx *ctx) {
  if (!ctx->pinned) return;
  if (ctx->be->weights_unpin) ctx->be->weights_unpin(ctx->pinned);
  ctx->pinned = NULL;
}

struct unmix_ctx *unmix_ctx_create(const struct unmix_backend *be, const char *name) {
  struct unmix_ctx *c = unmix_xcalloc(1, sizeof *c);
  c->be = be;
  c->arena = unmix_arena_create(be, name);
  snprintf(c->name, sizeof c->name, "%s", name ? name : "ctx");
  return c;
}

void unmix_ctx_destroy(struct unmix_ctx *ctx) {
  if (!ctx) return;
  ctx_unpin(ctx);
  unmix_arena_destroy(ctx->arena);
  free(ctx->st);
  free(ctx->pool);
  free(ctx->remaining);
  free(ctx->grad);
  free(ctx->sync_count);
  free(ctx);
}

void unmix_ctx_reset(struct unmix_ctx *ctx) {
  ctx_unpin(ctx);
  unmix_arena_reset(ctx->arena);
  ctx->npool = 0;
  ctx->valid = false;
  if (ctx->st) memset(ctx->st, 0, sizeof *ctx->st * (size_t)ctx->n_nodes);
}

size_t unmix_ctx_bytes(const struct unmix_ctx *ctx) { return unmix_arena_capacity(ctx->arena); }

float *unmix_ctx_alloc(struct unmix_ctx *ctx, int64_t floats) {
  float *p = unmix_arena_alloc(ctx->arena, sizeof(float) * (size_t)(floats > 0 ? floats : 1));
  UNMIX_REQUIRE(p != NULL, "%s", unmix_error_message());
  return p;
}

/* Recyclable buffers: best fit among free pooled buffers, else a new arena buffer. */
static float *pool_get(struct unmix_ctx *ctx, int64_t floats) {
  int best = -1;
  for (int i = 0; i < ctx->npool; i++)
    if (!ctx->pool[i].used && ctx->pool[i].floats >= floats &&
        (best < 0 || ctx->pool[i].floats < ctx->pool[best].floats))
      best = i;
  if (best >= 0) {
    ctx->pool[best].used = true;
    return ctx->pool[best].p;
  }
  if (ctx->npool == ctx->cappool) {
    ctx->cappool = ctx->cappool ? 2 * ctx->cappool : 32;
    ctx->pool = unmix_xrealloc(ctx->pool, sizeof *ctx->pool * (size_t)ctx->cappool);
  }
  float *p = unmix_ctx_alloc(ctx, floats);
  ctx->pool[ctx->npool++] = (struct pool_buf){p, floats, true};
  return p;
}

static void pool_put(struct unmix_ctx *ctx, float *p) {
  for (int i = 0; i < ctx->npool; i++)
    if (ctx->pool[i].p == p) {
      UNMIX_REQUIRE(ctx->pool[i].used, "double release of a pooled buffer");
      ctx->pool[i].used = false;
      return;
    }
  UNMIX_UNREACHABLE();
}

static int64_t node_numel(const struct unmix_node *nd, int n) { return (int64_t)n * nd->h * nd->w * nd->c; }

static void ensure_state(struct unmix_ctx *ctx, const struct unmix_model *m) {
  if (ctx->n_nodes != m->n_nodes) {
    free(ctx->st);
    free(ctx->remaining);
    free(ctx->grad);
    free(ctx->sync_count);
    ctx->n_nodes = m->n_nodes;
    ctx->sync_count = unmix_xcalloc((size_t)m->n_nodes, sizeof *ctx->sync_count);
    ctx->st = unmix_xcalloc((size_t)m->n_nodes, sizeof *ctx->st);
    ctx->remaining = unmix_xcalloc((size_t)m->n_nodes, sizeof *ctx->remaining);
    ctx->grad = unmix_xcalloc((size_t)m->n_nodes, sizeof *ctx->grad);
  }
}

/* A view (unmix_model_backbone_view / _head_view) shares its owner's SyncBatchNorm hook and
 * BatchNorm batch counter. */
static struct unmix_bn_sync *bnsync(struct unmix_model *m) { return m->owner ? &m->owner->bn_sync : &m->bn_sync; }
static struct unmix_model *counter_model(struct unmix_model *m) { return m->owner ? m->owner : m; }

static bool is_kept(const struct unmix_model *m, int i) {
  return i == m->feat_node || i == m->embed_node || i == m->out_node;
}

/* ---- SyncBatchNorm (model->bn_sync) ------------------------------------------------------
 * Forward: this rank's mean and biased variance come from the backend's train-mode BN (no
 * running-stat update; its output is overwritten below); they are combined over ranks in
 * double as Chan's parallel variance does, in two sums: [count, count*mean] gives the global
 * mean, then [count*(var + (mean - global mean)^2)] the global variance (one sum of
 * count*(var + mean^2) would cancel catastrophically when |mean| >> std, as before the BN1d
 * of a projection head); the output is the backend's affine normalisation
 * (the eval op) with the global mean and biased variance; the running stats move with the
 * global mean and unbiased variance, as torch.nn.SyncBatchNorm does. save_a = (global mean |
 * unbiased variance), save_b = global invstd.
 * Backward: the backend's BN backward with the saved global statistics and no dx gives this
 * rank's [sum dy, sum dy*xhat] (its dgamma/dbeta, which stay local); their sums over ranks
 * give dx = gamma*invstd*(dy - (Sdy + xhat*Sdyx)/N), computed as k*dy + a*(x - mean) + b with
 * per-channel k = gamma*invstd, a = -k*invstd*Sdyx/N, b = -k*Sdy/N (scale_cols and the eval
 * op with unit variance and eps 0). */
static void sync_bn_forward(struct unmix_model *m, struct unmix_ctx *ctx, int i, const float *xa, int n) {
  const struct unmix_node *nd = &m->nodes[i];
  struct node_state *st = &ctx->st[i];
  const struct unmix_backend *be = m->be;
  const int C = nd->c;
  const float eps = 1e-5f;
  UNMIX_REQUIRE(nd->splits == 1, "%s: SyncBatchNorm (model.sync_bn) with %d BN splits", nd->name, nd->splits);
  struct unmix_bn_geom g = {n, nd->h * nd->w, C, 1};
  const float *gamma = unmix_param_ptr(&m->params, nd->weight), *beta = unmix_param_ptr(&m->params, nd->bias);
  float *rm = unmix_param_ptr(&m->buffers, nd->rmean), *rv = unmix_param_ptr(&m->buffers, nd->rvar);
  st->save_a = unmix_ctx_alloc(ctx, 2 * (int64_t)C);
  st->save_b = unmix_ctx_alloc(ctx, C);
  float *gvar = unmix_ctx_alloc(ctx, C);
  be->batchnorm_forward_train(&g, xa, gamma, beta, st->out, st->save_a, st->save_b, NULL, NULL, 0.1f, eps, false);
  float *h = unmix_xmalloc(sizeof(float) * 3 * (size_t)C);
  double *acc = unmix_xmalloc(sizeof(double) * (1 + (size_t)C));
  be->memcpy_d2h(h, st->save_a, sizeof(float) * (size_t)C);
  be->memcpy_d2h(h + C, st->save_b, sizeof(float) * (size_t)C);
  const double cnt = (double)n * nd->h * nd->w;
  acc[0] = cnt;
  for (int c = 0; c < C; c++) acc[1 + c] = cnt * h[c];
  if (bnsync(m)->status == UNMIX_OK) bnsync(m)->status = bnsync(m)->allreduce_f64(bnsync(m)->ctx, acc, 1 + (int64_t)C);
  const double N = acc[0];
  for (int c = 0; c < C; c++) {
    double mu = acc[1 + c] / N, d = (double)h[c] - mu, is = h[C + c], var = 1.0 / (is * is) - (double)eps;
    h[c] = (float)mu;
    acc[1 + c] = cnt * ((var > 0 ? var : 0) + d * d);
  }
  if (bnsync(m)->status == UNMIX_OK) bnsync(m)->status = bnsync(m)->allreduce_f64(bnsync(m)->ctx, acc + 1, C);
  for (int c = 0; c < C; c++) {
    double var = acc[1 + c] / N;
    if (var < 0) var = 0;
    h[C + c] = (float)(N > 1 ? var * N / (N - 1) : var);
    h[2 * C + c] = (float)var;
  }
  be->memcpy_h2d(st->save_a, h, sizeof(float) * 2 * (size_t)C);
  be->memcpy_h2d(gvar, h + 2 * C, sizeof(float) * (size_t)C);
  for (int c = 0; c < C; c++) h[c] = (float)(1.0 / sqrt((double)h[2 * C + c] + (double)eps));
  be->memcpy_h2d(st->save_b, h, sizeof(float) * (size_t)C);
  be->batchnorm_forward_eval(&g, xa, gamma, beta, st->save_a, gvar, eps, false, st->out);
  be->axpby(C, 0.1f, st->save_a, 0.9f, rm);
  be->axpby(C, 0.1f, st->save_a + C, 0.9f, rv);
  ctx->sync_count[i] = N;
  free(h);
  free(acc);
}

static void sync_bn_backward(struct unmix_model *m, struct unmix_ctx *ctx, int i, const float *dy, const float *xa,
                             float *dx);

const float *unmix_model_forward(struct unmix_model *m, struct unmix_ctx *ctx, const float *x, int n,
                                 enum unmix_fwd_mode mode, bool need_grad) {
  const struct unmix_backend *be = m->be;
  UNMIX_REQUIRE(n > 0, "forward of an empty batch");
  UNMIX_REQUIRE(ctx->be == be, "context and model are on different backends");
  if (ctx->valid) unmix_ctx_reset(ctx);
  ensure_state(ctx, m);
  ctx->n = n;
  ctx->mode = mode;
  ctx->need_grad = need_grad;
  ctx->model = m;
  ctx->valid = true;
  ctx->synced = mode == UNMIX_FWD_TRAIN && bnsync(m)->allreduce_f64 != NULL;
  if (be->weights_pin) { /* a view pins its owner's store: the same data pointer, counted pins */
    be->weights_pin(m->params.data, m->params.total);
    ctx->pinned = m->params.data;
  }
  if (!need_grad) {
    memset(ctx->remaining, 0, sizeof(int) * (size_t)m->n_nodes);
    for (int i = 0; i < m->n_nodes; i++)
      for (int j = 0; j < 2; j++)
        if (m->nodes[i].in[j] >= 0) ctx->remaining[m->nodes[i].in[j]]++;
  }
  bool any_bn_update = false;
  for (int i = 0; i < m->n_nodes; i++) {
    const struct unmix_node *nd = &m->nodes[i];
    struct node_state *st = &ctx->st[i];
    const int64_t numel = node_numel(nd, n);
    if (nd->kind == UNMIX_NODE_INPUT) {
      st->out = (float *)x;
      continue;
    }
    const struct unmix_node *a = &m->nodes[nd->in[0]];
    const float *xa = ctx->st[nd->in[0]].out;
    UNMIX_REQUIRE(xa != NULL, "node %s: input %s was freed", nd->name, a->name);
    if (need_grad || is_kept(m, i)) {
      st->out = unmix_ctx_alloc(ctx, numel);
      st->out_pooled = false;
    } else {
      st->out = pool_get(ctx, numel);
      st->out_pooled = true;
    }
    switch (nd->kind) {
      case UNMIX_NODE_CONV: {
        struct unmix_conv_geom g;
        unmix_conv_geom_init(&g, n, a->h, a->w, a->c, nd->c, nd->r, nd->s, nd->stride, nd->pad);
        be->conv2d_forward(&g, xa, unmix_param_ptr(&m->params, nd->weight), st->out);
        break;
      }
      case UNMIX_NODE_BN: {
        struct unmix_bn_geom g = {n, nd->h * nd->w, nd->c, mode == UNMIX_FWD_TRAIN ? nd->splits : 1};
        const float *gamma = unmix_param_ptr(&m->params, nd->weight);
        const float *beta = unmix_param_ptr(&m->params, nd->bias);
        float *rm = unmix_param_ptr(&m->buffers, nd->rmean), *rv = unmix_param_ptr(&m->buffers, nd->rvar);
        if (mode == UNMIX_FWD_TRAIN) {
          UNMIX_REQUIRE(n % nd->splits == 0, "batch %d is not a multiple of the %d BN splits of %s", n,
                        nd->splits, nd->name);
          UNMIX_REQUIRE((int64_t)(n / nd->splits) * nd->h * nd->w > 1,
                        "%s: BatchNorm in train mode needs more than one value per channel", nd->name);
          if (ctx->synced) {
            sync_bn_forward(m, ctx, i, xa, n);
            if (nd->relu) be->relu_forward(numel, st->out, st->out);
          } else { /* BN and its ReLU in one pass */
            int64_t sc = (int64_t)nd->splits * nd->c;
            st->save_a = unmix_ctx_alloc(ctx, sc);
            st->save_b = unmix_ctx_alloc(ctx, sc);
            be->batchnorm_forward_train(&g, xa, gamma, beta, st->out, st->save_a, st->save_b, rm, rv, 0.1f, 1e-5f,
                                        nd->relu);
          }
          any_bn_update = true;
        } else {
          be->batchnorm_forward_eval(&g, xa, gamma, beta, rm, rv, 1e-5f, nd->relu, st->out);
        }
        break;
      }
      case UNMIX_NODE_RELU: be->relu_forward(numel, xa, st->out); break;
      case UNMIX_NODE_ADD_RELU: {
        const float *xb = ctx->st[nd->in[1]].out;
        UNMIX_REQUIRE(xb != NULL, "node %s: second input was freed", nd->name);
        be->add_relu_forward(numel, xa, xb, st->out);
        break;
      }
      case UNMIX_NODE_MAXPOOL: {
        struct unmix_pool_geom g;
        unmix_pool_geom_init(&g, n, a->h, a->w, a->c, nd->k, nd->stride, nd->pad);
        st->argmax = (int32_t *)unmix_ctx_alloc(ctx, numel);
        be->maxpool_forward(&g, xa, st->out, st->argmax);
        break;
      }
      case UNMIX_NODE_AVGPOOL: be->avgpool_forward(n, a->h * a->w, a->c, xa, st->out); break;
      case UNMIX_NODE_PAD: be->pad2d_forward(n, a->h, a->w, a->c, nd->pad, 0.0f, xa, st->out); break;
      case UNMIX_NODE_LINEAR: {
        int in = a->h * a->w * a->c;
        be->linear_forward(n, in, nd->c, xa, unmix_param_ptr(&m->params, nd->weight),
                           nd->bias >= 0 ? unmix_param_ptr(&m->params, nd->bias) : NULL, st->out);
        break;
      }
      case UNMIX_NODE_L2NORM:
        st->save_a = unmix_ctx_alloc(ctx, n);
        be->l2norm_forward(n, nd->c, xa, st->out, st->save_a, 1e-12f);
        break;
      case UNMIX_NODE_INPUT: UNMIX_UNREACHABLE();
    }
    if (!need_grad) {
      for (int j = 0; j < 2; j++) {
        int src = nd->in[j];
        if (src < 0) continue;
        if (--ctx->remaining[src] == 0 && ctx->st[src].out_pooled && !is_kept(m, src)) {
          pool_put(ctx, ctx->st[src].out);
          ctx->st[src].out = NULL;
        }
      }
    }
  }
  if (any_bn_update) counter_model(m)->bn_batches_tracked++;
  if (!need_grad) ctx_unpin(ctx);
  return ctx->st[m->out_node].out;
}

const float *unmix_model_node_output(const struct unmix_model *m, const struct unmix_ctx *ctx, int node) {
  UNMIX_REQUIRE(ctx->valid && ctx->model == m, "node output requested from a context without a forward");
  UNMIX_REQUIRE(node >= 0 && node < m->n_nodes, "bad node %d", node);
  return ctx->st[node].out;
}

int unmix_model_node_dim(const struct unmix_model *m, int node) {
  const struct unmix_node *nd = &m->nodes[node];
  return nd->h * nd->w * nd->c;
}
int unmix_model_out_dim(const struct unmix_model *m) { return unmix_model_node_dim(m, m->out_node); }

/* Does node i (or anything upstream of it) hold trainable parameters? Then its input
 * gradient is needed. */
static bool needs_grad_upstream(const struct unmix_model *m, int i, bool *memo, bool *done, bool want_input) {
  if (done[i]) return memo[i];
  const struct unmix_node *nd = &m->nodes[i];
  bool r = nd->kind == UNMIX_NODE_INPUT && want_input;
  if (nd->kind != UNMIX_NODE_INPUT) {
    bool has_params = nd->kind == UNMIX_NODE_CONV || nd->kind == UNMIX_NODE_BN || nd->kind == UNMIX_NODE_LINEAR;
    r = has_params && !nd->frozen;
    for (int j = 0; j < 2 && !r; j++)
      if (nd->in[j] >= 0) r = needs_grad_upstream(m, nd->in[j], memo, done, want_input);
  }
  memo[i] = r;
  done[i] = true;
  return r;
}

/* grad[j] += g (g is a buffer owned by the caller, of node j's size). */
static void accumulate(struct unmix_ctx *ctx, int j, float *g, int64_t numel, bool transfer) {
  const struct unmix_backend *be = ctx->be;
  if (!ctx->grad[j]) {
    if (transfer) {
      ctx->grad[j] = g;
      return;
    }
    ctx->grad[j] = pool_get(ctx, numel);
    be->copy(numel, g, ctx->grad[j]);
  } else {
    be->add(numel, ctx->grad[j], g, ctx->grad[j]);
    if (transfer) pool_put(ctx, g);
  }
}

/* Backward with upstream gradients injected at several nodes: douts[i] is (n,
 * dim(nodes[i])) device, or NULL. dinput: NULL, or (n, input dims) device = the input's gradient. */
static void backward_multi(struct unmix_model *m, struct unmix_ctx *ctx, int count, const int *nodes,
                           const float *const *douts, float *dinput) {
  const bool want_input = dinput != NULL;
  const struct unmix_backend *be = m->be;
  UNMIX_REQUIRE(ctx->valid && ctx->model == m, "backward without a forward in this context");
  UNMIX_REQUIRE(ctx->need_grad, "backward after a forward with need_grad = false");
  const int n = ctx->n;
  bool *memo = unmix_xcalloc((size_t)m->n_nodes, sizeof *memo), *done = unmix_xcalloc((size_t)m->n_nodes, 1);
  memset(ctx->grad, 0, sizeof(float *) * (size_t)m->n_nodes);
  int last = -1;
  for (int t = 0; t < count; t++) {
    if (!douts[t]) continue;
    int j = nodes[t];
    accumulate(ctx, j, (float *)douts[t], node_numel(&m->nodes[j], n), false);
    if (j > last) last = j;
  }
  for (int i = last; i >= 0; i--) {
    const struct unmix_node *nd = &m->nodes[i];
    float *dy = ctx->grad[i];
    if (!dy || nd->kind == UNMIX_NODE_INPUT) continue;
    const int64_t numel = node_numel(nd, n);
    const struct node_state *st = &ctx->st[i];
    const int ia = nd->in[0];
    const struct unmix_node *a = &m->nodes[ia];
    const float *xa = ctx->st[ia].out;
    const int64_t na = node_numel(a, n);
    const bool want_dx = needs_grad_upstream(m, ia, memo, done, want_input);
    bool consumed = false;
    switch (nd->kind) {
      case UNMIX_NODE_CONV: {
        struct unmix_conv_geom g;
        unmix_conv_geom_init(&g, n, a->h, a->w, a->c, nd->c, nd->r, nd->s, nd->stride, nd->pad);
        if (!nd->frozen) be->conv2d_backward_weight(&g, dy, xa, unmix_param_grad(&m->params, nd->weight));
        if (want_dx) {
          float *dx = pool_get(ctx, na);
          be->conv2d_backward_data(&g, dy, unmix_param_ptr(&m->params, nd->weight), dx);
          accumulate(ctx, ia, dx, na, true);
        }
        break;
      }
      case UNMIX_NODE_BN: {
        UNMIX_REQUIRE(ctx->mode == UNMIX_FWD_TRAIN, "%s: backward through BatchNorm in eval mode is not supported",
                      nd->name);
        struct unmix_bn_geom g = {n, nd->h * nd->w, nd->c, nd->splits};
        float *dx = want_dx ? pool_get(ctx, na) : NULL;
        if (ctx->synced) {
          if (nd->relu) be->relu_backward(numel, dy, st->out, dy); /* dy is ours: mask in place */
          sync_bn_backward(m, ctx, i, dy, xa, dx);
        } else { /* the ReLU's mask is applied inside the BN backward's passes */
          be->batchnorm_backward(&g, dy, xa, unmix_param_ptr(&m->params, nd->weight),
                                 unmix_param_ptr(&m->params, nd->bias), st->save_a, st->save_b, nd->relu, dx,
                                 nd->frozen ? NULL : unmix_param_grad(&m->params, nd->weight),
                                 nd->frozen ? NULL : unmix_param_grad(&m->params, nd->bias));
        }
        if (dx) accumulate(ctx, ia, dx, na, true);
        break;
      }
      case UNMIX_NODE_RELU:
        if (want_dx) {
          float *dx = pool_get(ctx, na);
          be->relu_backward(numel, dy, st->out, dx);
          accumulate(ctx, ia, dx, na, true);
        }
        break;
      case UNMIX_NODE_ADD_RELU: {
        const int ib = nd->in[1];
        bool want_db = needs_grad_upstream(m, ib, memo, done, want_input);
        if (want_db && want_dx && !ctx->grad[ib]) { /* a ResNet's join: the masked dy and its copy in one pass */
          float *db = pool_get(ctx, numel);
          be->add_relu_backward(numel, dy, st->out, dy, db);
          ctx->grad[ib] = db;
        } else {
          be->relu_backward(numel, dy, st->out, dy);
          if (want_db) accumulate(ctx, ib, dy, numel, false);
        }
        if (want_dx) {
          accumulate(ctx, ia, dy, numel, true); /* hands dy over */
          consumed = true;
        }
        break;
      }
      case UNMIX_NODE_MAXPOOL:
        if (want_dx) {
          struct unmix_pool_geom g;
          unmix_pool_geom_init(&g, n, a->h, a->w, a->c, nd->k, nd->stride, nd->pad);
          float *dx = pool_get(ctx, na);
          be->maxpool_backward(&g, dy, st->argmax, dx);
          accumulate(ctx, ia, dx, na, true);
        }
        break;
      case UNMIX_NODE_AVGPOOL:
        if (want_dx) {
          float *dx = pool_get(ctx, na);
          be->avgpool_backward(n, a->h * a->w, a->c, dy, dx);
          accumulate(ctx, ia, dx, na, true);
        }
        break;
      case UNMIX_NODE_PAD:
        if (want_dx) {
          float *dx = pool_get(ctx, na);
          be->pad2d_backward(n, a->h, a->w, a->c, nd->pad, dy, dx);
          accumulate(ctx, ia, dx, na, true);
        }
        break;
      case UNMIX_NODE_LINEAR: {
        int in = a->h * a->w * a->c;
        float *dx = want_dx ? pool_get(ctx, na) : NULL;
        be->linear_backward(n, in, nd->c, dy, xa, unmix_param_ptr(&m->params, nd->weight), dx,
                            nd->frozen ? NULL : unmix_param_grad(&m->params, nd->weight),
                            nd->frozen || nd->bias < 0 ? NULL : unmix_param_grad(&m->params, nd->bias));
        if (dx) accumulate(ctx, ia, dx, na, true);
        break;
      }
      case UNMIX_NODE_L2NORM:
        if (want_dx) {
          float *dx = pool_get(ctx, na);
          be->l2norm_backward(n, nd->c, dy, xa, st->save_a, 1e-12f, dx);
          accumulate(ctx, ia, dx, na, true);
        }
        break;
      case UNMIX_NODE_INPUT: break;
    }
    /* node i's gradient is used up: recycle it (it is always a pooled buffer: injected
     * gradients were copied by accumulate) */
    if (!consumed) pool_put(ctx, dy);
    ctx->grad[i] = NULL;
  }
  if (dinput) {
    const int64_t n0 = node_numel(&m->nodes[0], n);
    if (ctx->grad[0]) {
      be->copy(n0, ctx->grad[0], dinput);
      pool_put(ctx, ctx->grad[0]);
      ctx->grad[0] = NULL;
    } else {
      be->fill(n0, 0.0f, dinput);
    }
  }
  free(memo);
  free(done);
  ctx_unpin(ctx);
}

static void sync_bn_backward(struct unmix_model *m, struct unmix_ctx *ctx, int i, const float *dy, const float *xa,
                             float *dx) {
  const struct unmix_node *nd = &m->nodes[i];
  const struct node_state *st = &ctx->st[i];
  const struct unmix_backend *be = m->be;
  const int C = nd->c, n = ctx->n;
  const int64_t rows = (int64_t)n * nd->h * nd->w;
  struct unmix_bn_geom g = {n, nd->h * nd->w, C, 1};
  const float *gamma = unmix_param_ptr(&m->params, nd->weight);
  float *loc = pool_get(ctx, 5 * (int64_t)C); /* dgamma | dbeta | k | a | b, then ones | zeros */
  be->fill(2 * (int64_t)C, 0.0f, loc);
  be->batchnorm_backward(&g, dy, xa, gamma, NULL, st->save_a, st->save_b, false, NULL, loc, loc + C);
  if (!nd->frozen) {
    be->add(C, unmix_param_grad(&m->params, nd->weight), loc, unmix_param_grad(&m->params, nd->weight));
    be->add(C, unmix_param_grad(&m->params, nd->bias), loc + C, unmix_param_grad(&m->params, nd->bias));
  }
  if (dx) {
    float *h = unmix_xmalloc(sizeof(float) * 5 * (size_t)C);
    double *acc = unmix_xmalloc(sizeof(double) * 2 * (size_t)C);
    be->memcpy_d2h(h, loc, sizeof(float) * 2 * (size_t)C);
    be->memcpy_d2h(h + 2 * C, gamma, sizeof(float) * (size_t)C);
    be->memcpy_d2h(h + 3 * C, st->save_b, sizeof(float) * (size_t)C);
    for (int c = 0; c < 2 * C; c++) acc[c] = h[c]; /* [sum dgamma = sum dy*xhat | sum dy] */
    if (bnsync(m)->status == UNMIX_OK) bnsync(m)->status = bnsync(m)->allreduce_f64(bnsync(m)->ctx, acc, 2 * (int64_t)C);
    const double N = ctx->sync_count[i];
    for (int c = 0; c < C; c++) {
      double is = h[3 * C + c], k = (double)h[2 * C + c] * is;
      h[c] = (float)k;
      h[C + c] = (float)(-k * is * acc[c] / N);
      h[2 * C + c] = (float)(-k * acc[C + c] / N);
      h[3 * C + c] = 1.0f;
      h[4 * C + c] = 0.0f;
    }
    float *k = loc, *a = loc + C, *b = loc + 2 * C, *ones = loc + 3 * C;
    be->memcpy_h2d(loc, h, sizeof(float) * 5 * (size_t)C);
    float *t = pool_get(ctx, rows * C);
    be->batchnorm_forward_eval(&g, xa, a, b, st->save_a, ones, 0.0f, false, t); /* a*(x - mean) + b */
    be->copy(rows * C, dy, dx);
    be->scale_cols((int)rows, C, k, dx);
    be->add(rows * C, dx, t, dx);
    pool_put(ctx, t);
    free(h);
    free(acc);
  }
  pool_put(ctx, loc);
}

void unmix_model_backward(struct unmix_model *m, struct unmix_ctx *ctx, const float *dout) {
  const float *d[1] = {dout};
  int nodes[1] = {m->out_node};
  backward_multi(m, ctx, 1, nodes, d, NULL);
}

void unmix_model_backward_input(struct unmix_model *m, struct unmix_ctx *ctx, const float *dout, float *dinput) {
  const float *d[1] = {dout};
  int nodes[1] = {m->out_node};
  backward_multi(m, ctx, 1, nodes, d, dinput);
}

void unmix_model_replay_bn_updates(struct unmix_model *m, struct unmix_ctx *ctx) {
  UNMIX_REQUIRE(ctx->valid && ctx->model == m && ctx->mode == UNMIX_FWD_TRAIN && ctx->need_grad,
                "BN replay needs the context of a TRAIN forward with need_grad");
  const int n = ctx->n;
  for (int i = 0; i < m->n_nodes; i++) {
    const struct unmix_node *nd = &m->nodes[i];
    if (nd->kind != UNMIX_NODE_BN) continue;
    if (ctx->synced) { /* the global statistics of the forward, saved by sync_bn_forward */
      const float *st = ctx->st[i].save_a;
      m->be->axpby(nd->c, 0.1f, st, 0.9f, unmix_param_ptr(&m->buffers, nd->rmean));
      m->be->axpby(nd->c, 0.1f, st + nd->c, 0.9f, unmix_param_ptr(&m->buffers, nd->rvar));
      continue;
    }
    struct unmix_bn_geom g = {n, nd->h * nd->w, nd->c, nd->splits};
    int64_t numel = node_numel(nd, n), sc = (int64_t)nd->splits * nd->c;
    float *y = pool_get(ctx, numel), *sm = pool_get(ctx, sc), *si = pool_get(ctx, sc);
    m->be->batchnorm_forward_train(&g, ctx->st[nd->in[0]].out, unmix_param_ptr(&m->params, nd->weight),
                                   unmix_param_ptr(&m->params, nd->bias), y, sm, si,
                                   unmix_param_ptr(&m->buffers, nd->rmean), unmix_param_ptr(&m->buffers, nd->rvar),
                                   0.1f, 1e-5f, false);
    pool_put(ctx, y);
    pool_put(ctx, sm);
    pool_put(ctx, si);
  }
  counter_model(m)->bn_batches_tracked++;
}
