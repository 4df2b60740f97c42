/* SwAV with and without Un-Mix, as the official Un-Mix CIFAR code (the old SwAV code)
 * computes it (FIDELITY §3.4-§3.6): prototypes re-normalised every step; crops of the same
 * resolution concatenated into one forward (with Un-Mix, each crop pair (k, k+1) adds
 * mix(x_k), so at CIFAR all 3*bs images share one BatchNorm batch); codes by Sinkhorn-Knopp
 * on the detached scores; L = swav(out) + lam*swav(out_unmix) + (1-lam)*swav(out_unmix,
 * reverse), where `reverse` flips only the crop-0 code (FIDELITY §3.5; `swav.reverse: paper`
 * also flips the mixed prediction); prototypes frozen for the first iterations; LARC+SGD.
 * The queue follows the code: its length is rounded down to a multiple of bs*world (0 at
 * the CIFAR settings), zero-filled at epoch_queue_starts, used once full.
 * Several ranks: each rank holds its own queue of length/world rows of its local embeddings
 * (as the reference); Sinkhorn all-reduces the total and the per-prototype sums with
 * c = 1/(world*rows); with model.sync_bn the BatchNorm statistics cover the global batch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/comm/comm.h"
#include "core/methods/common.h"
#include "core/util/rng.h"

#define MAX_CROPS 16

struct unmix_swav {
  struct unmix_ctx *cwork;
  struct unmix_ctx *cgroup[MAX_CROPS];
  int proto_idx;
  int nproto, dim;
  int qlen;                 /* effective queue length (0 = none) */
  float *queue;             /* (n_assign, qlen, dim) device, NULL until epoch_queue_starts */
  bool use_the_queue;
  float *scalars_dev;
  const float *last_dscores; /* first forward group's score gradients (tests) */
  int last_rows;
  unmix_status comm_status;  /* first failed Sinkhorn all-reduce of the step */
  /* multi-resolution: a backbone view per crop size, the head on the concatenated features */
  struct unmix_model *bb_view[MAX_CROPS];
  int bb_size[MAX_CROPS], n_bb;
  struct unmix_model *head_view;
  struct unmix_ctx *chead;
};

static struct unmix_swav *swav_of(const struct unmix_method *m) { return m->impl; }

/* shoot_infs: replace +-inf by the largest finite value (the reference's helper). */
static void shoot_infs(float *x, int n) {
  float mx = -INFINITY;
  for (int i = 0; i < n; i++)
    if (isfinite(x[i]) && x[i] > mx) mx = x[i];
  for (int i = 0; i < n; i++)
    if (isinf(x[i])) x[i] = mx;
}

/* Both Sinkhorn versions start alike: q = exp(scores/eps) (stored b x k: the reference's Q
 * transposed) and the sum of q over all ranks' samples, which is returned; a failed all-reduce
 * is recorded in *s. `tmp` is one device float of scratch. */
static float exp_total(const struct unmix_backend *be, struct unmix_comm *comm, int b, int k, float epsilon,
                       const float *scores, float *q, float *tmp, unmix_status *s) {
  float total;
  be->exp_scaled((int64_t)b * k, 1.0f / epsilon, 0.0f, scores, q);
  be->sum((int64_t)b * k, q, tmp);
  be->memcpy_d2h(&total, tmp, sizeof total);
  if (unmix_comm_world(comm) > 1 && *s == UNMIX_OK) *s = unmix_comm_allreduce_f32(comm, &total, 1, UNMIX_COMM_HOST);
  return total;
}

unmix_status unmix_sinkhorn(const struct unmix_backend *be, struct unmix_comm *comm, int b, int k, float epsilon,
                            int iters, const float *scores, float *q, float *work) {
  unmix_status s = UNMIX_OK;
  const int world = unmix_comm_world(comm);
  float *u_dev = work, *v_dev = work + k;
  float *u = unmix_xmalloc(sizeof(float) * (size_t)k), *v = unmix_xmalloc(sizeof(float) * (size_t)b);
  float total = exp_total(be, comm, b, k, epsilon, scores, q, u_dev, &s);
  shoot_infs(&total, 1);
  be->scale((int64_t)b * k, 1.0f / total, q, q);
  const float r = 1.0f / (float)k, c = 1.0f / ((float)world * (float)b);
  for (int it = 0; it < iters; it++) {
    /* u = rowsum over samples per prototype; Q *= r/u per prototype */
    be->col_sum(b, k, q, u_dev);
    be->memcpy_d2h(u, u_dev, sizeof(float) * (size_t)k);
    if (world > 1 && s == UNMIX_OK) s = unmix_comm_allreduce_f32(comm, u, k, UNMIX_COMM_HOST);
    for (int j = 0; j < k; j++) u[j] = r / u[j];
    shoot_infs(u, k);
    be->memcpy_h2d(u_dev, u, sizeof(float) * (size_t)k);
    be->scale_cols(b, k, u_dev, q);
    /* Q *= c/colsum per sample */
    be->row_sum(b, k, q, v_dev);
    be->memcpy_d2h(v, v_dev, sizeof(float) * (size_t)b);
    for (int i = 0; i < b; i++) v[i] = c / v[i];
    be->memcpy_h2d(v_dev, v, sizeof(float) * (size_t)b);
    be->scale_rows(b, k, v_dev, q);
  }
  /* (Q / colsum(Q))^T: each sample's code sums to 1 */
  be->row_sum(b, k, q, v_dev);
  be->memcpy_d2h(v, v_dev, sizeof(float) * (size_t)b);
  for (int i = 0; i < b; i++) v[i] = 1.0f / v[i];
  be->memcpy_h2d(v_dev, v, sizeof(float) * (size_t)b);
  be->scale_rows(b, k, v_dev, q);
  free(u);
  free(v);
  return s;
}

/* The 2021 SwAV code's distributed_sinkhorn (Un-Mix ImageNet): Q = exp(s/eps)^T / sum; per
 * iteration Q /= rowsum (all-reduced) and /= K, then Q /= colsum and /= B (B = world * rows);
 * finally Q *= B. Equal to the old version in exact arithmetic (its last column scaling to
 * 1/B followed by *B is the old final normalisation); the roundings differ, and there is no
 * shoot_infs. Here /K and /B are folded into the per-row and per-column factors. */
unmix_status unmix_sinkhorn_simplified(const struct unmix_backend *be, struct unmix_comm *comm, int b, int k,
                                       float epsilon, int iters, const float *scores, float *q, float *work) {
  unmix_status s = UNMIX_OK;
  const int world = unmix_comm_world(comm);
  const double B = (double)world * (double)b, K = (double)k;
  float *u_dev = work, *v_dev = work + k;
  float *u = unmix_xmalloc(sizeof(float) * (size_t)k), *v = unmix_xmalloc(sizeof(float) * (size_t)b);
  const float total = exp_total(be, comm, b, k, epsilon, scores, q, u_dev, &s);
  be->scale((int64_t)b * k, (float)(1.0 / (double)total), q, q);
  for (int it = 0; it < iters; it++) {
    be->col_sum(b, k, q, u_dev); /* per prototype: the reference's sum over dim 1 of K x B */
    be->memcpy_d2h(u, u_dev, sizeof(float) * (size_t)k);
    if (world > 1 && s == UNMIX_OK) s = unmix_comm_allreduce_f32(comm, u, k, UNMIX_COMM_HOST);
    for (int j = 0; j < k; j++) u[j] = (float)(1.0 / ((double)u[j] * K));
    be->memcpy_h2d(u_dev, u, sizeof(float) * (size_t)k);
    be->scale_cols(b, k, u_dev, q);
    be->row_sum(b, k, q, v_dev); /* per sample */
    be->memcpy_d2h(v, v_dev, sizeof(float) * (size_t)b);
    /* the last iteration's /B and the final *B cancel */
    const double bb = it == iters - 1 ? 1.0 : B;
    for (int i = 0; i < b; i++) v[i] = (float)(1.0 / ((double)v[i] * bb));
    be->memcpy_h2d(v_dev, v, sizeof(float) * (size_t)b);
    be->scale_rows(b, k, v_dev, q);
  }
  free(u);
  free(v);
  return s;
}

/* The backbone view for crops of size s (created on first use). */
static unmix_status backbone_at(struct unmix_method *m, int s, struct unmix_model **out) {
  struct unmix_swav *sw = swav_of(m);
  for (int i = 0; i < sw->n_bb; i++)
    if (sw->bb_size[i] == s) {
      *out = sw->bb_view[i];
      return UNMIX_OK;
    }
  UNMIX_REQUIRE(sw->n_bb < MAX_CROPS, "more crop sizes than crops");
  UNMIX_TRY(unmix_model_backbone_view(m->model, s, &sw->bb_view[sw->n_bb]));
  sw->bb_size[sw->n_bb] = s;
  *out = sw->bb_view[sw->n_bb++];
  return UNMIX_OK;
}

static unmix_status swav_create(struct unmix_method *m) {
  const struct unmix_method_spec *sp = &m->spec;
  struct unmix_swav *sw = unmix_xcalloc(1, sizeof *sw);
  m->impl = sw;
  UNMIX_TRY(unmix_model_create(&sp->model, m->be, sp->seed, &m->model));
  sw->proto_idx = unmix_param_store_find(&m->model->params, "prototypes.weight");
  if (sw->proto_idx < 0) return unmix_error_set(UNMIX_ERR_CONFIG, "SwAV needs model.head: swav with prototypes");
  sw->nproto = sp->swav.nmb_prototypes;
  sw->dim = sp->model.dim;
  /* the reference: queue_length -= queue_length % (batch_size * world_size) (optim.batch_size
   * is already the global batch); each rank holds queue_length / world_size rows */
  sw->qlen = (sp->swav.queue_length - sp->swav.queue_length % sp->optim.batch_size) / m->world;
  sw->cwork = unmix_ctx_create(m->be, "swav.work");
  for (int i = 0; i < MAX_CROPS; i++) sw->cgroup[i] = unmix_ctx_create(m->be, "swav.group");
  sw->chead = unmix_ctx_create(m->be, "swav.head");
  sw->scalars_dev = m->be->alloc(sizeof(float) * 4);
  if (!sw->scalars_dev) return unmix_error_set(UNMIX_ERR_NOMEM, "SwAV scalars");
  UNMIX_TRY(unmix_optimizer_init(&m->opt, &m->model->params, &sp->optim));
  /* multi-resolution crop lists: every size's backbone view now, so a crop too small for the
   * network is refused before training starts */
  bool multi = false;
  for (int c = 0; c < sp->n_crops && c < UNMIX_MAX_METHOD_CROPS; c++) multi |= sp->crop_size[c] != sp->crop_size[0];
  if (multi) {
    struct unmix_model *v;
    for (int c = 0; c < sp->n_crops && c < UNMIX_MAX_METHOD_CROPS; c++) UNMIX_TRY(backbone_at(m, sp->crop_size[c], &v));
    UNMIX_TRY(unmix_model_head_view(m->model, &sw->head_view));
  }
  return UNMIX_OK;
}

static void swav_destroy(struct unmix_method *m) {
  struct unmix_swav *sw = swav_of(m);
  if (!sw) return;
  unmix_ctx_destroy(sw->cwork);
  for (int i = 0; i < MAX_CROPS; i++) unmix_ctx_destroy(sw->cgroup[i]);
  unmix_ctx_destroy(sw->chead);
  for (int i = 0; i < sw->n_bb; i++) unmix_model_destroy(sw->bb_view[i]);
  unmix_model_destroy(sw->head_view);
  if (sw->queue) m->be->free(sw->queue);
  if (sw->scalars_dev) m->be->free(sw->scalars_dev);
  free(sw);
  m->impl = NULL;
}

static void swav_begin_epoch(struct unmix_method *m, int epoch) {
  struct unmix_swav *sw = swav_of(m);
  const struct unmix_method_spec *sp = &m->spec;
  sw->use_the_queue = false;
  if (sw->qlen > 0 && epoch >= sp->swav.epoch_queue_starts && !sw->queue) {
    size_t nq = (size_t)sp->swav.n_crops_for_assign * sw->qlen * sw->dim;
    sw->queue = m->be->alloc(sizeof(float) * nq);
    UNMIX_REQUIRE(sw->queue != NULL, "out of device memory for the SwAV queue");
    m->be->fill((int64_t)nq, 0.0f, sw->queue);
  }
}

/* One crop of a loss call: its scores (prediction), the gradient accumulator of those
 * scores, and its embedding (for the queue). */
struct crop {
  const float *scores;
  float *dscores;
  const float *embed;
};

/* The reference's swav_loss over T crops: returns the loss; adds weight * dL/dscores. */
static double swav_loss(struct unmix_method *m, int bs, int T, const struct crop *crops, bool reverse, float weight) {
  struct unmix_swav *sw = swav_of(m);
  const struct unmix_backend *be = m->be;
  const struct unmix_method_spec *sp = &m->spec;
  const int P = sw->nproto, D = sw->dim, na = sp->swav.n_crops_for_assign;
  const bool paper = sp->swav.reverse == UNMIX_SWAV_REVERSE_PAPER;
  const float inv_t = 1.0f / sp->swav.temperature;
  const int rows_max = bs + sw->qlen;
  float *out = unmix_ctx_alloc(sw->cwork, (int64_t)rows_max * P);
  float *q = unmix_ctx_alloc(sw->cwork, (int64_t)rows_max * P);
  float *work = unmix_ctx_alloc(sw->cwork, 2 * P + rows_max + 16);
  float *lp = unmix_ctx_alloc(sw->cwork, (int64_t)bs * P);
  float *dz = unmix_ctx_alloc(sw->cwork, (int64_t)bs * P);
  float *flipped = unmix_ctx_alloc(sw->cwork, (int64_t)bs * P);
  float *e_tmp = unmix_ctx_alloc(sw->cwork, (int64_t)bs * D);
  double loss = 0.0;
  for (int i = 0; i < na; i++) {
    const int crop_id = sp->swav.crops_for_assign[i];
    const bool flip_code = reverse && crop_id == 0;
    int rows = bs;
    float *cur = out;
    /* time to use the queue */
    if (sw->queue) {
      float *qi = sw->queue + (int64_t)i * sw->qlen * D;
      if (!sw->use_the_queue) {
        float *last = unmix_xmalloc(sizeof(float) * (size_t)D);
        be->memcpy_d2h(last, qi + (int64_t)(sw->qlen - 1) * D, sizeof(float) * (size_t)D);
        for (int d = 0; d < D; d++)
          if (last[d] != 0.0f) sw->use_the_queue = true;
        free(last);
      }
      if (sw->use_the_queue) {
        be->gemm(false, true, sw->qlen, P, D, 1.0f, qi, D, unmix_param_ptr(&m->model->params, sw->proto_idx), D,
                 0.0f, out, P);
        rows += sw->qlen;
        cur = out + (int64_t)sw->qlen * P;
      }
      /* fill the queue: shift by bs, newest embeddings first */
      float *shift = unmix_ctx_alloc(sw->cwork, (int64_t)(sw->qlen - bs) * D);
      be->copy((int64_t)(sw->qlen - bs) * D, qi, shift);
      be->copy((int64_t)(sw->qlen - bs) * D, shift, qi + (int64_t)bs * D);
      if (flip_code) {
        be->flip_batch(bs, D, crops[crop_id].embed, e_tmp);
        be->copy((int64_t)bs * D, e_tmp, qi);
      } else {
        be->copy((int64_t)bs * D, crops[crop_id].embed, qi);
      }
    }
    if (flip_code) be->flip_batch(bs, P, crops[crop_id].scores, cur);
    else be->copy((int64_t)bs * P, crops[crop_id].scores, cur);
    unmix_status ss =
        sp->swav.sinkhorn == UNMIX_SWAV_SINKHORN_SIMPLIFIED
            ? unmix_sinkhorn_simplified(be, m->comm, rows, P, sp->swav.epsilon, sp->swav.sinkhorn_iterations, out, q,
                                        work)
            : unmix_sinkhorn(be, m->comm, rows, P, sp->swav.epsilon, sp->swav.sinkhorn_iterations, out, q, work);
    if (ss != UNMIX_OK && sw->comm_status == UNMIX_OK) sw->comm_status = ss;
    const float *qb = q + (int64_t)(rows - bs) * P; /* the batch's codes: last bs rows */
    double subloss = 0.0;
    const float w = weight / (float)(T - 1) / (float)na;
    for (int v = 0; v < T; v++) {
      if (v == crop_id) continue;
      const bool flip_pred = paper && reverse && v == 0;
      const float *z = crops[v].scores;
      if (flip_pred) {
        be->flip_batch(bs, P, z, flipped);
        z = flipped;
      }
      be->soft_cross_entropy_forward(bs, P, inv_t, z, qb, lp, sw->scalars_dev);
      float h;
      be->memcpy_d2h(&h, sw->scalars_dev, sizeof h);
      subloss += h;
      if (w != 0.0f) {
        be->soft_cross_entropy_backward(bs, P, inv_t, w, lp, qb, dz);
        if (flip_pred) {
          be->flip_batch(bs, P, dz, flipped);
          be->add((int64_t)bs * P, crops[v].dscores, flipped, crops[v].dscores);
        } else {
          be->add((int64_t)bs * P, crops[v].dscores, dz, crops[v].dscores);
        }
      }
    }
    loss += subloss / (double)(T - 1);
  }
  return loss / (double)na;
}

static unmix_status swav_step(struct unmix_method *m, const struct unmix_views *v, int64_t step, int epoch, float lr,
                              const struct unmix_forced_draws *forced, struct unmix_step_stats *st) {
  struct unmix_swav *sw = swav_of(m);
  const struct unmix_backend *be = m->be;
  const struct unmix_method_spec *sp = &m->spec;
  const int bs = v->n, P = sw->nproto, D = sw->dim, T = v->nviews;
  const bool mix = sp->unmix.enabled;
  (void)epoch;
  if (T < 2 || T > MAX_CROPS / 2)
    return unmix_error_set(UNMIX_ERR_CONFIG, "SwAV needs 2..%d crops, the recipe gives %d", MAX_CROPS / 2, T);
  for (int i = 0; i < sp->swav.n_crops_for_assign; i++)
    if (sp->swav.crops_for_assign[i] >= T)
      return unmix_error_set(UNMIX_ERR_CONFIG, "swav.crops_for_assign has crop %d but there are %d crops",
                             sp->swav.crops_for_assign[i], T);
  unmix_ctx_reset(sw->cwork);
  unmix_model_zero_grad(m->model);
  sw->comm_status = UNMIX_OK;

  /* 1. prototypes re-normalised (rows) */
  float *pw = unmix_param_ptr(&m->model->params, sw->proto_idx);
  float *tmpw = unmix_ctx_alloc(sw->cwork, (int64_t)P * D), *nrm = unmix_ctx_alloc(sw->cwork, P);
  be->l2norm_forward(P, D, pw, tmpw, nrm, 1e-12f);
  be->copy((int64_t)P * D, tmpw, pw);

  /* 2. inputs: [x0, x1, m0, x2, x3, m2, ...] with Un-Mix (one draw, lambda chained over
   * the pairs in region mode), else [x0, x1, ...] */
  const float *in[MAX_CROPS];
  int in_size[MAX_CROPS], nin = 0;
  int mixed_of[MAX_CROPS]; /* for crop c (original index): index in `in` of its mixed image, or -1 */
  int orig_at[MAX_CROPS];
  struct unmix_mix_draw draw = {0};
  double lam = 1.0;
  struct unmix_rng rng = unmix_rng_make(sp->seed, UNMIX_RNG_MIX, (uint32_t)(step >> 32), (uint32_t)step,
                                        (uint32_t)(sp->unmix.per_rank ? m->rank : 0));
  for (int c = 0; c < T; c++) mixed_of[c] = -1;
  const bool centres = forced && forced->n_centres > 0;
  if (mix) {
    draw.r = unmix_rng_uniform_double(&rng);
    draw.lam_drawn = unmix_rng_beta(&rng, sp->unmix.beta, sp->unmix.beta);
    draw.global = draw.r < sp->unmix.prob;
    if (centres) {
      draw.global = forced->mix.global;
      draw.lam_drawn = forced->mix.lam_drawn;
    }
    lam = draw.lam_drawn;
  }
  for (int c = 0; c < T; c++) {
    orig_at[c] = nin;
    in_size[nin] = v->size[c];
    in[nin++] = v->view[c];
    if (mix && c % 2 == 1) {
      /* pair (c-1, c) is complete: add mix(x_{c-1}) */
      const int s = v->size[c - 1];
      float *mx = unmix_ctx_alloc(sw->cwork, (int64_t)bs * s * s * 3);
      struct unmix_mix_draw d = draw;
      if (centres) {
        const int p = (c - 1) / 2;
        UNMIX_REQUIRE(p < forced->n_centres && p < 8, "forced draws: no box centre for crop pair %d", p);
        if (draw.global) {
          d.lam = draw.lam_drawn;
        } else {
          d.cx = forced->centre[p][0];
          d.cy = forced->centre[p][1];
          d.lam = unmix_rand_bbox(s, s, lam, d.cx, d.cy, &d.r0, &d.r1, &d.c0, &d.c1);
          lam = d.lam;
        }
      } else if (forced && forced->have_mix && c == 1) {
        d = forced->mix;
        draw = d;
        lam = d.lam;
      } else if (!draw.global) {
        unmix_mix_draw_region_chained(&rng, lam, s, s, &d);
        lam = d.lam; /* the next pair receives the re-adjusted lambda; the loss uses the last */
      } else {
        d.lam = draw.lam_drawn;
      }
      if (c == 1) draw = d;
      unmix_mix_apply(be, &d, bs, s, s, 3, v->view[c - 1], mx);
      mixed_of[c - 1] = nin;
      in_size[nin] = s;
      in[nin++] = mx;
    }
  }

  /* 3. forward consecutive same-resolution inputs together (SwAV's resnet50.py). One resolution:
   * the whole model on the batch. Several: the backbone per run of same-sized inputs, then the
   * head once on the concatenated features (its BatchNorm1d sees every input). */
  const float *scores_at[2 * MAX_CROPS], *embed_at[2 * MAX_CROPS];
  float *dscores_at[2 * MAX_CROPS];
  int ngroups = 0;
  struct {
    int first, count, size;
    float *dscores;
    struct unmix_model *view;
  } groups[MAX_CROPS];
  for (int i = 0; i < nin;) {
    int j = i;
    while (j < nin && in_size[j] == in_size[i]) j++;
    groups[ngroups].first = i;
    groups[ngroups].count = j - i;
    groups[ngroups].size = in_size[i];
    groups[ngroups].view = NULL;
    ngroups++;
    i = j;
  }
  float *dscores_all = NULL, *feats = NULL;
  int feat_dim = 0;
  if (ngroups > 1 && !sw->head_view) UNMIX_TRY(unmix_model_head_view(m->model, &sw->head_view));
  if (ngroups > 1) {
    feat_dim = unmix_model_node_dim(m->model, m->model->feat_node);
    feats = unmix_ctx_alloc(sw->cwork, (int64_t)nin * bs * feat_dim);
  }
  for (int g = 0; g < ngroups; g++) {
    const int i = groups[g].first, cnt = groups[g].count, s = groups[g].size;
    if (ngroups == 1 && s != m->image_size)
      return unmix_error_set(UNMIX_ERR_CONFIG, "SwAV crops of %dx%d, but the model was built for %dx%d", s, s,
                             m->image_size, m->image_size);
    float *batch = unmix_ctx_alloc(sw->cwork, (int64_t)cnt * bs * s * s * 3);
    for (int t = 0; t < cnt; t++) be->copy((int64_t)bs * s * s * 3, in[i + t], batch + (int64_t)t * bs * s * s * 3);
    struct unmix_ctx *ctx = sw->cgroup[g];
    if (ngroups == 1) {
      const float *sc = unmix_model_forward(m->model, ctx, batch, cnt * bs, UNMIX_FWD_TRAIN, true);
      const float *em = unmix_model_node_output(m->model, ctx, m->model->embed_node);
      float *ds = unmix_ctx_alloc(sw->cwork, (int64_t)cnt * bs * P);
      be->fill((int64_t)cnt * bs * P, 0.0f, ds);
      for (int t = 0; t < cnt; t++) {
        scores_at[i + t] = sc + (int64_t)t * bs * P;
        embed_at[i + t] = em + (int64_t)t * bs * D;
        dscores_at[i + t] = ds + (int64_t)t * bs * P;
      }
      groups[g].dscores = ds;
    } else {
      UNMIX_TRY(backbone_at(m, s, &groups[g].view));
      const float *f = unmix_model_forward(groups[g].view, ctx, batch, cnt * bs, UNMIX_FWD_TRAIN, true);
      be->copy((int64_t)cnt * bs * feat_dim, f, feats + (int64_t)i * bs * feat_dim);
    }
  }
  if (ngroups > 1) {
    const int N = nin * bs;
    const float *sc = unmix_model_forward(sw->head_view, sw->chead, feats, N, UNMIX_FWD_TRAIN, true);
    const float *em = unmix_model_node_output(sw->head_view, sw->chead, sw->head_view->embed_node);
    dscores_all = unmix_ctx_alloc(sw->cwork, (int64_t)N * P);
    be->fill((int64_t)N * P, 0.0f, dscores_all);
    for (int k = 0; k < nin; k++) {
      scores_at[k] = sc + (int64_t)k * bs * P;
      embed_at[k] = em + (int64_t)k * bs * D;
      dscores_at[k] = dscores_all + (int64_t)k * bs * P;
    }
  }

  /* 4. losses */
  struct crop out[MAX_CROPS], out_unmix[MAX_CROPS];
  for (int c = 0; c < T; c++) {
    int k = orig_at[c];
    out[c] = (struct crop){scores_at[k], dscores_at[k], embed_at[k]};
    int km = (c % 2 == 0 && mixed_of[c] >= 0) ? mixed_of[c] : k;
    out_unmix[c] = (struct crop){scores_at[km], dscores_at[km], embed_at[km]};
  }
  double l0 = swav_loss(m, bs, T, out, false, 1.0f);
  double l1 = 0.0, l2 = 0.0;
  if (mix) {
    l1 = swav_loss(m, bs, T, out_unmix, false, (float)lam);
    l2 = swav_loss(m, bs, T, out_unmix, true, (float)(1.0 - lam));
  }
  double loss = l0 + lam * l1 + (1.0 - lam) * l2;
  if (sw->comm_status != UNMIX_OK) return sw->comm_status;
  UNMIX_TRY(unmix_method_check_loss(m, loss, "SwAV", step, lr));

  /* 5. backward: the whole model, or the head (with the features' gradient) then each group's backbone */
  if (ngroups == 1) {
    sw->last_dscores = groups[0].dscores;
    sw->last_rows = groups[0].count * bs;
    unmix_model_backward(m->model, sw->cgroup[0], groups[0].dscores);
  } else {
    sw->last_dscores = dscores_all;
    sw->last_rows = nin * bs;
    float *dfeats = unmix_ctx_alloc(sw->cwork, (int64_t)nin * bs * feat_dim);
    unmix_model_backward_input(sw->head_view, sw->chead, dscores_all, dfeats);
    for (int g = 0; g < ngroups; g++)
      unmix_model_backward(groups[g].view, sw->cgroup[g], dfeats + (int64_t)groups[g].first * bs * feat_dim);
  }

  /* 6. prototypes frozen for the first iterations (their grad is None: no update at all) */
  unmix_optimizer_set_skip(&m->opt, sw->proto_idx, step < sp->swav.freeze_prototypes_niters);
  UNMIX_TRY(unmix_method_allreduce_grads(m));
  unmix_optimizer_step(&m->opt, lr);

  unmix_step_stats_fill(st, loss, "loss_swav", "loss_mix_rev", l0, l1, l2, mix ? &draw : NULL, lam);
  return UNMIX_OK;
}

static size_t swav_device_bytes(const struct unmix_method *m) {
  const struct unmix_swav *sw = swav_of(m);
  size_t b = unmix_ctx_bytes(sw->cwork) + unmix_ctx_bytes(sw->chead);
  for (int i = 0; i < MAX_CROPS; i++) b += unmix_ctx_bytes(sw->cgroup[i]);
  if (sw->queue) b += sizeof(float) * (size_t)m->spec.swav.n_crops_for_assign * sw->qlen * sw->dim;
  return b;
}

const float *unmix_swav_last_dscores(struct unmix_method *m, int *rows) {
  *rows = swav_of(m)->last_rows;
  return swav_of(m)->last_dscores;
}

static int swav_state(struct unmix_method *m, struct unmix_state_entry *out, int cap) {
  struct unmix_swav *sw = swav_of(m);
  if (!sw->queue) return 0;
  if (cap >= 1) {
    struct unmix_state_entry *e = &out[0];
    snprintf(e->name, sizeof e->name, "swav.queue");
    e->data = sw->queue;
    e->numel = (int64_t)m->spec.swav.n_crops_for_assign * sw->qlen * sw->dim;
    e->ndim = 3;
    e->shape[0] = m->spec.swav.n_crops_for_assign;
    e->shape[1] = sw->qlen;
    e->shape[2] = sw->dim;
    e->per_rank = m->world > 1;
  }
  return 1;
}

static int swav_scalars(struct unmix_method *m, const char **names, int64_t *values, int cap) {
  if (cap >= 2) {
    names[0] = "swav.use_the_queue";
    values[0] = swav_of(m)->use_the_queue;
    names[1] = "swav.queue_length";
    values[1] = swav_of(m)->qlen;
  }
  return 2;
}

static unmix_status swav_set_scalar(struct unmix_method *m, const char *name, int64_t value) {
  if (!strcmp(name, "swav.use_the_queue")) {
    if (value != 0 && value != 1)
      return unmix_error_set(UNMIX_ERR_FORMAT, "swav.use_the_queue = %lld: a flag is 0 or 1", (long long)value);
    swav_of(m)->use_the_queue = value != 0;
    return UNMIX_OK;
  }
  if (!strcmp(name, "swav.queue_length")) {
    if (value != swav_of(m)->qlen)
      return unmix_error_set(UNMIX_ERR_FORMAT, "checkpoint SwAV queue length %lld differs from this run's %d",
                             (long long)value, swav_of(m)->qlen);
    return UNMIX_OK;
  }
  return unmix_error_set(UNMIX_ERR_FORMAT, "unknown SwAV state scalar '%s'", name);
}

static int swav_views_needed(const struct unmix_method *m) {
  return m->spec.n_crops;
}

/* every input (crops, and with Un-Mix one mixed image per crop pair, at the pair's first
 * crop's size) forward + backward; multi-resolution: each crop's backbone at its size */
static double swav_step_flops_per_sample(const struct unmix_method *m) {
  const struct unmix_swav *sw = swav_of(m);
  const struct unmix_method_spec *sp = &m->spec;
  const double full = unmix_model_forward_flops(m->model);
  if (!sw->head_view) {
    double views = swav_views_needed(m);
    if (sp->unmix.enabled) views += views / 2;
    return full * 3.0 * views;
  }
  const double head = unmix_model_forward_flops(sw->head_view);
  double f = 0.0;
  for (int c = 0; c < sp->n_crops && c < UNMIX_MAX_METHOD_CROPS; c++) {
    double bb = 0.0;
    for (int i = 0; i < sw->n_bb; i++)
      if (sw->bb_size[i] == sp->crop_size[c]) bb = unmix_model_forward_flops(sw->bb_view[i]);
    const double one = bb + head;
    f += one;
    if (sp->unmix.enabled && c % 2 == 0 && c + 1 < sp->n_crops) f += one;
  }
  return 3.0 * f;
}

/* the prototypes layer on top of the head */
static void swav_model_needs(const struct unmix_method_spec *spec, struct unmix_model_spec *model) {
  model->nmb_prototypes = spec->swav.nmb_prototypes;
}

const struct unmix_method_ops unmix_swav_ops = {
    .name = "swav",
    .multi_resolution = true,
    .model_needs = swav_model_needs,
    .create = swav_create,
    .destroy = swav_destroy,
    .step = swav_step,
    .begin_epoch = swav_begin_epoch,
    .views_needed = swav_views_needed,
    .step_flops_per_sample = swav_step_flops_per_sample,
    .device_bytes = swav_device_bytes,
    .state = swav_state,
    .scalars = swav_scalars,
    .set_scalar = swav_set_scalar,
    .metric_columns = {NULL},
};
