/* MoCo v1/v2 with and without Un-Mix, as the official Un-Mix code computes it (FIDELITY §2.5,
 * §3.1): momentum update of the key encoder at the start of the iteration; queries and
 * the mixed batch through encoder_q; keys through encoder_k on a shuffled batch (shuffle-BN)
 * with no gradient; logits [u.k, u.queue]/T and cross-entropy with label 0 for the query,
 * the mixed embeddings (weight lam) and the flipped mixed embeddings (weight 1-lam), all
 * against the same key; symmetric mode repeats it with the views swapped (the mixed batch,
 * built from view 1, is paired with k1 in the second call: FIDELITY §2.5); enqueue after both.
 *
 * mix_once (FIDELITY §8.2): the two reference forwards of the mixed batch are identical in
 * train mode, so we forward it once, replay its BatchNorm running-stat update where the
 * second forward would happen, and back-propagate the sum of both upstream gradients.
 *
 * Several ranks (FIDELITY §2.8): each rank mixes and encodes its local slice of the global batch;
 * keys use the reference's shuffle-BN across ranks (the key batch all-gathered, one
 * permutation of the global batch from rank 0 broadcast, each rank encoding its slice of the
 * permuted batch, the keys all-gathered and un-shuffled); the queue receives the keys of all
 * ranks in rank order and stays identical on every rank; losses are per-rank means and the
 * gradients are averaged over ranks (DDP). With model.sync_bn both encoders normalise over
 * the global batch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/comm/comm.h"
#include "core/methods/common.h"
#include "core/util/rng.h"

struct unmix_moco {
  struct unmix_model *k;
  float *queue;              /* (K, dim): row j is a key (the reference's column j) */
  int K, dim, ptr;
  struct unmix_ctx *cq1, *cq2, *cmix, *cmix2, *ckey, *cwork;
  int32_t *labels_dev;       /* zeros */
  int32_t *perm_dev;
  int32_t *perm_host;
  float *scalars_dev;        /* loss, top1, top5 */
  float *logits, *probs, *dlogits;
  int cap_n;
};

static struct unmix_moco *moco_of(const struct unmix_method *m) { return m->impl; }

static unmix_status moco_create(struct unmix_method *m) {
  const struct unmix_method_spec *sp = &m->spec;
  const struct unmix_backend *be = m->be;
  struct unmix_moco *mc = unmix_xcalloc(1, sizeof *mc);
  m->impl = mc;
  UNMIX_TRY(unmix_model_create(&sp->model, be, sp->seed, &m->model));
  UNMIX_TRY(unmix_model_create(&sp->model, be, sp->seed, &mc->k));
  /* encoder_k starts as a copy of encoder_q (buffers identical by construction) */
  unmix_model_copy_from(mc->k, m->model);
  unmix_method_install_bn_sync(m, mc->k);
  mc->dim = unmix_model_out_dim(m->model);
  mc->K = sp->moco.K;
  mc->queue = be->alloc(sizeof(float) * (size_t)mc->K * mc->dim);
  mc->scalars_dev = be->alloc(sizeof(float) * 4);
  if (!mc->queue || !mc->scalars_dev) return unmix_error_set(UNMIX_ERR_NOMEM, "MoCo queue (%d x %d)", mc->K, mc->dim);
  /* queue = randn(dim, K) normalised per key */
  float *h = unmix_xmalloc(sizeof(float) * (size_t)mc->K * mc->dim);
  struct unmix_rng r = unmix_rng_make(sp->seed, UNMIX_RNG_QUEUE, 0, 0, 0);
  unmix_rng_fill_normal(&r, h, (size_t)mc->K * mc->dim, 0.0f, 1.0f);
  for (int j = 0; j < mc->K; j++) {
    double ss = 0.0;
    for (int d = 0; d < mc->dim; d++) ss += (double)h[(size_t)j * mc->dim + d] * h[(size_t)j * mc->dim + d];
    double nr = sqrt(ss) > 1e-12 ? sqrt(ss) : 1e-12;
    for (int d = 0; d < mc->dim; d++) h[(size_t)j * mc->dim + d] = (float)(h[(size_t)j * mc->dim + d] / nr);
  }
  be->memcpy_h2d(mc->queue, h, sizeof(float) * (size_t)mc->K * mc->dim);
  free(h);
  mc->cq1 = unmix_ctx_create(be, "moco.q1");
  mc->cq2 = unmix_ctx_create(be, "moco.q2");
  mc->cmix = unmix_ctx_create(be, "moco.mix");
  mc->cmix2 = unmix_ctx_create(be, "moco.mix2");
  mc->ckey = unmix_ctx_create(be, "moco.key");
  mc->cwork = unmix_ctx_create(be, "moco.work");
  UNMIX_TRY(unmix_optimizer_init(&m->opt, &m->model->params, &sp->optim));
  return UNMIX_OK;
}

static void moco_destroy(struct unmix_method *m) {
  struct unmix_moco *mc = moco_of(m);
  if (!mc) return;
  const struct unmix_backend *be = m->be;
  unmix_model_destroy(mc->k);
  if (mc->queue) be->free(mc->queue);
  if (mc->scalars_dev) be->free(mc->scalars_dev);
  if (mc->labels_dev) be->free(mc->labels_dev);
  if (mc->perm_dev) be->free(mc->perm_dev);
  if (mc->logits) be->free(mc->logits);
  if (mc->probs) be->free(mc->probs);
  if (mc->dlogits) be->free(mc->dlogits);
  free(mc->perm_host);
  unmix_ctx_destroy(mc->cq1);
  unmix_ctx_destroy(mc->cq2);
  unmix_ctx_destroy(mc->cmix);
  unmix_ctx_destroy(mc->cmix2);
  unmix_ctx_destroy(mc->ckey);
  unmix_ctx_destroy(mc->cwork);
  free(mc);
  m->impl = NULL;
}

static unmix_status ensure_batch(struct unmix_method *m, int n) {
  struct unmix_moco *mc = moco_of(m);
  const struct unmix_backend *be = m->be;
  if (n <= mc->cap_n) return UNMIX_OK;
  if (mc->labels_dev) be->free(mc->labels_dev);
  if (mc->perm_dev) be->free(mc->perm_dev);
  if (mc->logits) be->free(mc->logits);
  if (mc->probs) be->free(mc->probs);
  if (mc->dlogits) be->free(mc->dlogits);
  size_t lb = sizeof(float) * (size_t)n * (mc->K + 1);
  mc->labels_dev = be->alloc(sizeof(int32_t) * (size_t)n);
  mc->perm_dev = be->alloc(sizeof(int32_t) * (size_t)n * m->world); /* a permutation of the global batch */
  mc->logits = be->alloc(lb);
  mc->probs = be->alloc(lb);
  mc->dlogits = be->alloc(lb);
  mc->perm_host = unmix_xrealloc(mc->perm_host, sizeof(int32_t) * (size_t)n * m->world);
  if (!mc->labels_dev || !mc->perm_dev || !mc->logits || !mc->probs || !mc->dlogits)
    return unmix_error_set(UNMIX_ERR_NOMEM, "MoCo logits for batch %d x %d", n, mc->K + 1);
  memset(mc->perm_host, 0, sizeof(int32_t) * (size_t)n);
  be->memcpy_h2d(mc->labels_dev, mc->perm_host, sizeof(int32_t) * (size_t)n);
  mc->cap_n = n;
  return UNMIX_OK;
}

/* Normalised keys of x in the original sample order: encoder_k on the shuffled batch (its
 * BatchNorm sees the shuffled split groups), then un-shuffled (FIDELITY §2.5). With several
 * ranks (FIDELITY §2.8): x is all-gathered into the global batch, rank 0's permutation of it is
 * broadcast, this rank encodes rows [rank*n, (rank+1)*n) of the permuted batch, the keys are
 * all-gathered and un-shuffled. *k_local = this rank's n keys, *k_all = the world*n keys of the
 * global batch in rank order (the queue's; = *k_local with one rank). The permutation is
 * drawn from (seed, step, call) alone, so one process with the whole batch draws the same. */
static unmix_status keys(struct unmix_method *m, const float *x, int n, int64_t step, int call,
                         const int32_t *forced_perm, float **k_local, float **k_all) {
  struct unmix_moco *mc = moco_of(m);
  const struct unmix_backend *be = m->be;
  const int64_t img = (int64_t)m->image_size * m->image_size * 3;
  const int W = m->world, N = n * W, D = mc->dim;
  const float *xin = x;
  if (m->spec.moco.shuffle_bn) {
    const float *xall = x;
    if (W > 1) {
      float *g = unmix_ctx_alloc(mc->cwork, (int64_t)N * img);
      UNMIX_TRY(unmix_comm_allgather_rows(m->comm, x, n, img, g, UNMIX_COMM_DEVICE));
      xall = g;
    }
    if (m->rank == 0) {
      if (forced_perm) {
        memcpy(mc->perm_host, forced_perm, sizeof(int32_t) * (size_t)N);
      } else {
        struct unmix_rng r = unmix_rng_make(m->spec.seed, UNMIX_RNG_KEYPERM, (uint32_t)(step >> 32), (uint32_t)step,
                                            (uint32_t)(call * 4096));
        unmix_rng_permutation(&r, mc->perm_host, N);
      }
    }
    UNMIX_TRY(unmix_comm_bcast_i32(m->comm, mc->perm_host, N, 0, UNMIX_COMM_HOST));
    be->memcpy_h2d(mc->perm_dev, mc->perm_host, sizeof(int32_t) * (size_t)N);
    float *xs = unmix_ctx_alloc(mc->cwork, n * img);
    be->gather_rows(n, img, mc->perm_dev + (int64_t)m->rank * n, xall, xs);
    xin = xs;
  }
  const float *kraw = unmix_model_forward(mc->k, mc->ckey, xin, n, UNMIX_FWD_TRAIN, false);
  float *kn = unmix_ctx_alloc(mc->cwork, (int64_t)n * D);
  float *norms = unmix_ctx_alloc(mc->cwork, n);
  be->l2norm_forward(n, D, kraw, kn, norms, 1e-12f);
  float *kg = kn;
  if (W > 1) {
    kg = unmix_ctx_alloc(mc->cwork, (int64_t)N * D);
    UNMIX_TRY(unmix_comm_allgather_rows(m->comm, kn, n, D, kg, UNMIX_COMM_DEVICE));
  }
  if (m->spec.moco.shuffle_bn) {
    float *kout = unmix_ctx_alloc(mc->cwork, (int64_t)N * D);
    be->scatter_rows(N, D, mc->perm_dev, kg, kout); /* kout[perm[i]] = kg[i]: argsort un-shuffle */
    kg = kout;
  }
  *k_all = kg;
  *k_local = kg + (int64_t)m->rank * n * D;
  return UNMIX_OK;
}

/* CE of logits [u.kpos, u.queue]/T with label 0; du += weight * dL/du. Returns the loss. */
static double contrast(struct unmix_method *m, int n, const float *u, const float *kpos, float weight, float *du,
                       double *c1, double *c5) {
  struct unmix_moco *mc = moco_of(m);
  const struct unmix_backend *be = m->be;
  const int K = mc->K, D = mc->dim, L = K + 1;
  const float inv_t = 1.0f / m->spec.moco.T;
  be->row_dot(n, D, u, kpos, mc->logits, L);
  be->gemm(false, true, n, K, D, 1.0f, u, D, mc->queue, D, 0.0f, mc->logits + 1, L);
  be->cross_entropy_forward(n, L, inv_t, mc->logits, mc->labels_dev, mc->probs, mc->scalars_dev,
                            mc->scalars_dev + 1, mc->scalars_dev + 2);
  float h[3];
  be->memcpy_d2h(h, mc->scalars_dev, sizeof h);
  if (c1) *c1 += h[1];
  if (c5) *c5 += h[2];
  if (weight != 0.0f) {
    be->cross_entropy_backward(n, L, inv_t, weight, mc->probs, mc->labels_dev, mc->dlogits);
    be->axpy_rows(n, D, mc->dlogits, L, kpos, du);
    be->gemm(false, false, n, D, K, 1.0f, mc->dlogits + 1, L, mc->queue, D, 1.0f, du, D);
  }
  return h[0];
}

/* An encoder_q output, its normalisation and a zeroed gradient buffer for it. */
struct qbranch {
  const float *raw;
  float *norms, *un, *du;
};

static void qbranch_forward(struct unmix_method *m, struct unmix_ctx *ctx, const float *x, int n,
                            struct qbranch *b) {
  struct unmix_moco *mc = moco_of(m);
  const struct unmix_backend *be = m->be;
  b->raw = unmix_model_forward(m->model, ctx, x, n, UNMIX_FWD_TRAIN, true);
  b->norms = unmix_ctx_alloc(mc->cwork, n);
  b->un = unmix_ctx_alloc(mc->cwork, (int64_t)n * mc->dim);
  b->du = unmix_ctx_alloc(mc->cwork, (int64_t)n * mc->dim);
  be->l2norm_forward(n, mc->dim, b->raw, b->un, b->norms, 1e-12f);
  be->fill((int64_t)n * mc->dim, 0.0f, b->du);
}

static void qbranch_backward(struct unmix_method *m, struct unmix_ctx *ctx, int n, struct qbranch *b) {
  struct unmix_moco *mc = moco_of(m);
  float *draw = unmix_ctx_alloc(mc->cwork, (int64_t)n * mc->dim);
  m->be->l2norm_backward(n, mc->dim, b->du, b->raw, b->norms, 1e-12f, draw);
  unmix_model_backward(m->model, ctx, draw);
}

static unmix_status moco_step(struct unmix_method *m, const struct unmix_views *v, int64_t step, int epoch, float lr,
                              const struct unmix_forced_draws *forced, struct unmix_step_stats *st) {
  struct unmix_moco *mc = moco_of(m);
  const struct unmix_backend *be = m->be;
  const struct unmix_method_spec *sp = &m->spec;
  const int n = v->n, D = mc->dim, S = m->image_size;
  const bool sym = sp->moco.symmetric, mix = sp->unmix.enabled;
  if (v->nviews < 2) return unmix_error_set(UNMIX_ERR_CONFIG, "MoCo needs 2 views per sample, the recipe gives %d", v->nviews);
  if (v->size[0] != S || v->size[1] != S)
    return unmix_error_set(UNMIX_ERR_CONFIG, "MoCo views are %dx%d but the model was built for %d", v->size[0],
                           v->size[1], S);
  const int keys_per_step = (sym ? 2 : 1) * n * m->world;
  if (mc->K % keys_per_step != 0)
    return unmix_error_set(UNMIX_ERR_CONFIG, "moco.K = %d is not a multiple of the %d keys enqueued per step", mc->K,
                           keys_per_step);
  UNMIX_TRY(ensure_batch(m, n));
  unmix_ctx_reset(mc->cwork);
  unmix_model_zero_grad(m->model);

  /* 1. momentum update of the key encoder (parameters only) */
  unmix_ema_update(be, &mc->k->params, &m->model->params, sp->moco.m);

  /* 2. the mixture of view 1 */
  struct unmix_mix_draw draw = {0};
  float *mixed = NULL;
  if (mix) {
    if (forced && forced->have_mix) draw = forced->mix;
    else unmix_mix_draw(&sp->unmix, sp->seed, step, sp->unmix.per_rank ? m->rank : 0, S, S, &draw);
    mixed = unmix_ctx_alloc(mc->cwork, (int64_t)n * S * S * 3);
    unmix_mix_apply(be, &draw, n, S, S, 3, v->view[0], mixed);
  }
  const float lam = (float)draw.lam;

  /* 3. call A: (im1, im2, mixed) */
  double c1 = 0, c5 = 0;
  struct qbranch q1 = {0}, q2 = {0}, mx = {0}, mx2 = {0};
  qbranch_forward(m, mc->cq1, v->view[0], n, &q1);
  float *mf = NULL, *dmf = NULL, *mf2 = NULL, *dmf2 = NULL;
  if (mix) {
    qbranch_forward(m, mc->cmix, mixed, n, &mx);
    mf = unmix_ctx_alloc(mc->cwork, (int64_t)n * D);
    dmf = unmix_ctx_alloc(mc->cwork, (int64_t)n * D);
    be->flip_batch(n, D, mx.un, mf); /* nz(rev(m)) = rev(nz(m)) */
    be->fill((int64_t)n * D, 0.0f, dmf);
  }
  float *k2 = NULL, *k2_all = NULL;
  UNMIX_TRY(keys(m, v->view[1], n, step, 0, forced ? forced->perm[0] : NULL, &k2, &k2_all));
  double l_a = contrast(m, n, q1.un, k2, 1.0f, q1.du, &c1, &c5);
  double lm_a = 0, lmf_a = 0, l_b = 0, lm_b = 0, lmf_b = 0;
  if (mix) {
    lm_a = contrast(m, n, mx.un, k2, lam, mx.du, NULL, NULL);
    lmf_a = contrast(m, n, mf, k2, 1.0f - lam, dmf, NULL, NULL);
  }
  float *k1 = NULL, *k1_all = NULL;
  /* 4. call B (symmetric): (im2, im1, mixed) */
  if (sym) {
    qbranch_forward(m, mc->cq2, v->view[1], n, &q2);
    const struct qbranch *mb = &mx;
    float *mfb = mf, *dmfb = dmf;
    if (mix) {
      if (sp->moco.mix_once) {
        unmix_model_replay_bn_updates(m->model, mc->cmix);
      } else {
        qbranch_forward(m, mc->cmix2, mixed, n, &mx2);
        mf2 = unmix_ctx_alloc(mc->cwork, (int64_t)n * D);
        dmf2 = unmix_ctx_alloc(mc->cwork, (int64_t)n * D);
        be->flip_batch(n, D, mx2.un, mf2);
        be->fill((int64_t)n * D, 0.0f, dmf2);
        mb = &mx2;
        mfb = mf2;
        dmfb = dmf2;
      }
    }
    UNMIX_TRY(keys(m, v->view[0], n, step, 1, forced ? forced->perm[1] : NULL, &k1, &k1_all));
    l_b = contrast(m, n, q2.un, k1, 1.0f, q2.du, &c1, &c5);
    if (mix) {
      lm_b = contrast(m, n, mb->un, k1, lam, mb->du, NULL, NULL);
      lmf_b = contrast(m, n, mfb, k1, 1.0f - lam, dmfb, NULL, NULL);
    }
  }
  double loss = l_a + l_b + lam * (lm_a + lm_b) + (1.0 - lam) * (lmf_a + lmf_b);
  UNMIX_TRY(unmix_method_check_loss(m, loss, "MoCo", step, lr));

  /* 5. backward: d(flipped) flows back flipped into the mixed embeddings */
  qbranch_backward(m, mc->cq1, n, &q1);
  if (sym) qbranch_backward(m, mc->cq2, n, &q2);
  if (mix) {
    float *tmp = unmix_ctx_alloc(mc->cwork, (int64_t)n * D);
    be->flip_batch(n, D, dmf, tmp);
    be->add((int64_t)n * D, mx.du, tmp, mx.du);
    qbranch_backward(m, mc->cmix, n, &mx);
    if (sym && !sp->moco.mix_once) {
      be->flip_batch(n, D, dmf2, tmp);
      be->add((int64_t)n * D, mx2.du, tmp, mx2.du);
      qbranch_backward(m, mc->cmix2, n, &mx2);
    }
  }

  /* 6. update */
  UNMIX_TRY(unmix_method_allreduce_grads(m));
  unmix_optimizer_step(&m->opt, lr);

  /* 7. enqueue the keys of every rank (symmetric: cat[k1, k2] of the global batch) */
  const int N = n * m->world;
  int nk = sym ? 2 * N : N;
  UNMIX_REQUIRE(mc->ptr >= 0 && mc->ptr + nk <= mc->K, "MoCo queue pointer %d + %d keys past K = %d", mc->ptr, nk,
                mc->K);
  if (sym) {
    be->copy((int64_t)N * D, k1_all, mc->queue + (int64_t)mc->ptr * D);
    be->copy((int64_t)N * D, k2_all, mc->queue + (int64_t)(mc->ptr + N) * D);
  } else {
    be->copy((int64_t)N * D, k2_all, mc->queue + (int64_t)mc->ptr * D);
  }
  mc->ptr = (mc->ptr + nk) % mc->K;

  unmix_step_stats_fill(st, loss, "loss_cl", "loss_mix_flip", l_a + l_b, lm_a + lm_b, lmf_a + lmf_b,
                        mix ? &draw : NULL, draw.lam);
  st->metrics[0] = 100.0 * c1 / (double)(n * (sym ? 2 : 1)); /* inst_top1 */
  st->metrics[1] = 100.0 * c5 / (double)(n * (sym ? 2 : 1)); /* inst_top5 */
  return UNMIX_OK;
}

static size_t moco_device_bytes(const struct unmix_method *m) {
  const struct unmix_moco *mc = moco_of(m);
  size_t b = sizeof(float) * ((size_t)mc->k->params.total + mc->k->buffers.total + (size_t)mc->K * mc->dim);
  b += 3 * sizeof(float) * (size_t)mc->cap_n * (mc->K + 1);
  const struct unmix_ctx *cs[] = {mc->cq1, mc->cq2, mc->cmix, mc->cmix2, mc->ckey, mc->cwork};
  for (int i = 0; i < 6; i++) b += unmix_ctx_bytes(cs[i]);
  return b;
}

float *unmix_moco_queue(struct unmix_method *m, int *K, int *dim, int *ptr) {
  *K = moco_of(m)->K;
  *dim = moco_of(m)->dim;
  *ptr = moco_of(m)->ptr;
  return moco_of(m)->queue;
}

struct unmix_model *unmix_moco_key_encoder(struct unmix_method *m) { return moco_of(m)->k; }

static int moco_state(struct unmix_method *m, struct unmix_state_entry *out, int cap) {
  struct unmix_moco *mc = moco_of(m);
  int n = 0;
  n = unmix_state_add(out, n, cap, "moco.key.params", mc->k->params.data, mc->k->params.total);
  n = unmix_state_add(out, n, cap, "moco.key.buffers", mc->k->buffers.data, mc->k->buffers.total);
  if (n < cap) {
    struct unmix_state_entry *e = &out[n];
    snprintf(e->name, sizeof e->name, "moco.queue");
    e->data = mc->queue;
    e->numel = (int64_t)mc->K * mc->dim;
    e->ndim = 2;
    e->per_rank = false;
    e->shape[0] = mc->K;
    e->shape[1] = mc->dim;
  }
  return n + 1;
}

static int moco_scalars(struct unmix_method *m, const char **names, int64_t *values, int cap) {
  if (cap >= 2) {
    names[0] = "moco.ptr";
    values[0] = moco_of(m)->ptr;
    names[1] = "moco.key.bn_batches_tracked";
    values[1] = moco_of(m)->k->bn_batches_tracked;
  }
  return 2;
}

static unmix_status moco_set_scalar(struct unmix_method *m, const char *name, int64_t value) {
  if (!strcmp(name, "moco.ptr")) {
    /* the enqueue writes keys_per_step rows at ptr without wrapping: a pointer that is not a
     * multiple of it would write past the queue (the config guarantees K is one) */
    const int per_step = (m->spec.moco.symmetric ? 2 : 1) * m->spec.optim.batch_size;
    if (value < 0 || value >= moco_of(m)->K || per_step <= 0 || value % per_step != 0)
      return unmix_error_set(UNMIX_ERR_FORMAT,
                             "moco.ptr = %lld does not fit the queue of %d keys filled %d keys per step (it must be "
                             "a multiple of %d below %d)",
                             (long long)value, moco_of(m)->K, per_step, per_step, moco_of(m)->K);
    moco_of(m)->ptr = (int)value;
    return UNMIX_OK;
  }
  if (!strcmp(name, "moco.key.bn_batches_tracked")) {
    if (value < 0)
      return unmix_error_set(UNMIX_ERR_FORMAT, "moco.key.bn_batches_tracked = %lld is negative", (long long)value);
    moco_of(m)->k->bn_batches_tracked = value;
    return UNMIX_OK;
  }
  return unmix_error_set(UNMIX_ERR_FORMAT, "unknown MoCo state scalar '%s'", name);
}

static int moco_views_needed(const struct unmix_method *m) { return 2; }

/* query passes forward + backward (3x); key passes forward only */
static double moco_step_flops_per_sample(const struct unmix_method *m) {
  const struct unmix_method_spec *c = &m->spec;
  double q = c->moco.symmetric ? 2 : 1, keys = q;
  if (c->unmix.enabled) q += (c->moco.symmetric && !c->moco.mix_once) ? 2 : 1;
  return unmix_model_forward_flops(m->model) * (3.0 * q + keys);
}

const struct unmix_method_ops unmix_moco_ops = {
    .name = "moco",
    .model_needs = NULL,
    .create = moco_create,
    .destroy = moco_destroy,
    .step = moco_step,
    .begin_epoch = NULL,
    .views_needed = moco_views_needed,
    .step_flops_per_sample = moco_step_flops_per_sample,
    .device_bytes = moco_device_bytes,
    .state = moco_state,
    .scalars = moco_scalars,
    .set_scalar = moco_set_scalar,
    /* instance discrimination top-1/5 (%) of the original logits */
    .metric_columns = {"inst_top1", "inst_top5", NULL},
};
