/* Helpers every method's step shares (see common.h): gradient all-reduce over ranks, the
 * agreed loss check, SyncBatchNorm over the communicator, checkpoint state entries. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/comm/comm.h"
#include "core/methods/common.h"

/* SyncBatchNorm's reduction (model.h's hook) over the method's communicator. */
static unmix_status bn_allreduce(void *comm, double *buf, int64_t n) {
  return unmix_comm_allreduce_f64(comm, buf, n, UNMIX_COMM_HOST);
}

void unmix_method_install_bn_sync(struct unmix_method *m, struct unmix_model *model) {
  if (!model || !m->spec.sync_bn || m->world <= 1) return;
  model->bn_sync.allreduce_f64 = bn_allreduce;
  model->bn_sync.ctx = m->bn_comm ? m->bn_comm : m->comm; /* model.sync_bn_group */
  model->bn_sync.status = UNMIX_OK;
}

int unmix_state_add(struct unmix_state_entry *out, int n, int cap, const char *name, float *data, int64_t numel) {
  if (n < cap) {
    struct unmix_state_entry *e = &out[n];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->data = data;
    e->numel = numel;
    e->ndim = 1;
    e->shape[0] = (int)numel;
    e->per_rank = false;
  }
  return n + 1;
}

/* DDP's averaging: every rank's loss is the mean over its local batch, and the gradient is
 * the mean over ranks, summed in buckets of the flat buffer (all started, then waited for
 * together, so the transport pipelines them) and scaled by 1/world. */
unmix_status unmix_method_allreduce_grads(struct unmix_method *m) {
  if (!m->comm || m->world <= 1) return UNMIX_OK;
  if (m->model->bn_sync.status != UNMIX_OK) return m->model->bn_sync.status;
  struct unmix_param_store *p = &m->model->params;
  const int64_t bucket = unmix_comm_bucket_bytes(m->comm) / (int64_t)sizeof(float);
  const int nb = (int)((p->total + bucket - 1) / bucket);
  void **bufs = unmix_xmalloc(sizeof(void *) * (size_t)nb);
  int64_t *counts = unmix_xmalloc(sizeof(int64_t) * (size_t)nb);
  for (int b = 0; b < nb; b++) {
    int64_t off = (int64_t)b * bucket;
    bufs[b] = p->grad + off;
    counts[b] = p->total - off < bucket ? p->total - off : bucket;
  }
  unmix_status s = unmix_comm_allreduce_sum_many(m->comm, bufs, counts, nb, UNMIX_COMM_F32, UNMIX_COMM_DEVICE);
  free(bufs);
  free(counts);
  UNMIX_TRY(s);
  m->be->scale(p->total, 1.0f / (float)m->world, p->grad, p->grad);
  return UNMIX_OK;
}

void unmix_step_stats_fill(struct unmix_step_stats *st, double loss, const char *main_name, const char *third_name,
                           double main, double mix, double third, const struct unmix_mix_draw *draw, double lam) {
  st->loss = loss;
  st->nterms = 3;
  st->term_names[0] = main_name;
  st->term_names[1] = "loss_mix";
  st->term_names[2] = third_name;
  st->terms[0] = main;
  st->terms[1] = mix;
  st->terms[2] = third;
  st->mix_mode = draw ? (draw->global ? 1 : 0) : -1;
  st->lam = draw ? lam : 1.0;
}

unmix_status unmix_method_check_loss(struct unmix_method *m, double loss, const char *method, int64_t step,
                                     float lr) {
  double bad = isfinite(loss) ? 0.0 : 1.0;
  if (m->comm && m->world > 1) UNMIX_TRY(unmix_comm_allreduce_f64(m->comm, &bad, 1, UNMIX_COMM_HOST));
  if (bad == 0.0) return UNMIX_OK;
  if (!isfinite(loss))
    return unmix_error_set(UNMIX_ERR_NUMERIC, "%s loss is %g at step %lld (lr %g): training diverged", method, loss,
                           (long long)step, (double)lr);
  return unmix_error_set(UNMIX_ERR_NUMERIC, "%s loss is not finite on %.0f other rank(s) at step %lld (lr %g): "
                                            "training diverged", method, bad, (long long)step, (double)lr);
}
