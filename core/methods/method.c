/* The method interface: dispatch to MoCo / SwAV, shared helpers (see method.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/methods/internal.h"

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
  m->rank = 0;
  m->world = 1;
  m->image_size = image_size;
  unmix_status s = cfg->method == UNMIX_METHOD_MOCO ? unmix_moco_create(m) : unmix_swav_create(m);
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

unmix_status unmix_method_allreduce_grads(struct unmix_method *m) {
  if (!m->comm || m->world <= 1) return UNMIX_OK;
  return unmix_error_set(UNMIX_ERR_UNSUPPORTED, "multi-process gradient all-reduce is not built yet");
}
