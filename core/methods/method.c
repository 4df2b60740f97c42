/* The method interface: dispatch to MoCo / SwAV, shared helpers (see method.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dist/comm.h"
#include "core/methods/internal.h"

/* SyncBatchNorm's reduction (model.h's hook) over the method's communicator. */
static unmix_status bn_allreduce(void *comm, double *buf, int64_t n) {
  return unmix_comm_allreduce_f64(comm, buf, n, UNMIX_COMM_HOST);
}

void unmix_method_install_bn_sync(struct unmix_method *m, struct unmix_model *model) {
  if (!model || !m->cfg.model.sync_bn || m->world <= 1) return;
  model->bn_sync.allreduce_f64 = bn_allreduce;
  model->bn_sync.ctx = m->comm;
  model->bn_sync.status = UNMIX_OK;
}

unmix_status unmix_method_create(const struct unmix_config *cfg, const struct unmix_backend *be, int image_size,
                                 struct unmix_comm *comm, struct unmix_method **out) {
  *out = NULL;
  struct unmix_method *m = unmix_xcalloc(1, sizeof *m);
  m->kind = cfg->method;
  m->be = be;
  m->cfg = *cfg;
  m->cfg.source_path = NULL;
  m->cfg.resolved_yaml = NULL;
  m->comm = comm;
  m->rank = unmix_comm_rank(comm);
  m->world = unmix_comm_world(comm);
  m->image_size = image_size;
  unmix_status s = UNMIX_OK;
  if (cfg->optim.batch_size % m->world != 0)
    s = unmix_error_set(UNMIX_ERR_CONFIG, "optim.batch_size = %d (the global batch) is not a multiple of the %d ranks",
                        cfg->optim.batch_size, m->world);
  else if (cfg->model.sync_bn && m->world > 1 && cfg->model.bn_splits > 1)
    s = unmix_error_set(UNMIX_ERR_CONFIG, "model.sync_bn normalises over the global batch; it cannot be combined "
                                          "with model.bn_splits = %d (set one of them off)", cfg->model.bn_splits);
  if (s == UNMIX_OK) s = cfg->method == UNMIX_METHOD_MOCO ? unmix_moco_create(m) : unmix_swav_create(m);
  if (s == UNMIX_OK) unmix_method_install_bn_sync(m, m->model);
  if (s != UNMIX_OK) {
    unmix_method_destroy(m);
    return s;
  }
  *out = m;
  return UNMIX_OK;
}

void unmix_method_destroy(struct unmix_method *m) {
  if (!m) return;
  if (m->moco) unmix_moco_destroy(m);
  if (m->swav) unmix_swav_destroy(m);
  if (m->opt.store) unmix_optimizer_free(&m->opt);
  unmix_model_destroy(m->model);
  free(m);
}

unmix_status unmix_method_step(struct unmix_method *m, const struct unmix_views *v, int64_t step, int epoch,
                               float lr, struct unmix_step_stats *st) {
  memset(st, 0, sizeof *st);
  if (m->kind == UNMIX_METHOD_MOCO) return unmix_moco_step(m, v, step, lr, NULL, st);
  return unmix_swav_step(m, v, step, epoch, lr, NULL, st);
}

struct unmix_model *unmix_method_encoder(struct unmix_method *m) { return m->model; }

void unmix_method_begin_epoch(struct unmix_method *m, int epoch) {
  if (m->kind == UNMIX_METHOD_SWAV) unmix_swav_begin_epoch(m, epoch);
}

int unmix_method_views_needed(const struct unmix_method *m) {
  if (m->kind == UNMIX_METHOD_MOCO) return 2;
  int t = 0;
  for (int g = 0; g < m->cfg.data.n_crop_groups; g++) t += m->cfg.data.nmb_crops[g];
  return t;
}

double unmix_method_step_flops_per_sample(const struct unmix_method *m) {
  const double f = unmix_model_forward_flops(m->model);
  const struct unmix_config *c = &m->cfg;
  if (m->kind == UNMIX_METHOD_MOCO) {
    /* query passes forward + backward (3x); key passes forward only */
    double q = c->moco.symmetric ? 2 : 1, keys = q;
    if (c->unmix.enabled) q += (c->moco.symmetric && !c->moco.mix_once) ? 2 : 1;
    return f * (3.0 * q + keys);
  }
  double views = unmix_method_views_needed(m);
  if (c->unmix.enabled) views += views / 2;
  return f * 3.0 * views;
}

static size_t store_bytes(const struct unmix_param_store *s) {
  return sizeof(float) * (size_t)s->total * (1 + (s->grad != NULL) + (s->momentum != NULL));
}

size_t unmix_method_device_bytes(const struct unmix_method *m) {
  size_t b = store_bytes(&m->model->params) + store_bytes(&m->model->buffers);
  return b + (m->kind == UNMIX_METHOD_MOCO ? unmix_moco_device_bytes(m) : unmix_swav_device_bytes(m));
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

int unmix_method_state(struct unmix_method *m, struct unmix_state_entry *out, int cap) {
  int n = unmix_state_add(out, 0, cap, "optim.momentum", m->model->params.momentum, m->model->params.total);
  if (m->kind == UNMIX_METHOD_MOCO) n += unmix_moco_state(m, out + n, cap > n ? cap - n : 0);
  else n += unmix_swav_state(m, out + n, cap > n ? cap - n : 0);
  return n;
}

int unmix_method_scalars(struct unmix_method *m, const char **names, int64_t *values, int cap) {
  int n = 0;
  if (cap > 0) {
    names[0] = "model.bn_batches_tracked";
    values[0] = m->model->bn_batches_tracked;
  }
  n = 1;
  if (m->kind == UNMIX_METHOD_MOCO) n += unmix_moco_scalars(m, names + n, values + n, cap > n ? cap - n : 0);
  else n += unmix_swav_scalars(m, names + n, values + n, cap > n ? cap - n : 0);
  return n;
}

unmix_status unmix_method_set_scalar(struct unmix_method *m, const char *name, int64_t value) {
  if (!strcmp(name, "model.bn_batches_tracked")) {
    m->model->bn_batches_tracked = value;
    return UNMIX_OK;
  }
  if (m->kind == UNMIX_METHOD_MOCO) return unmix_moco_set_scalar(m, name, value);
  return unmix_swav_set_scalar(m, name, value);
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
