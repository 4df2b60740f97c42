/* The generic method wrappers: create/destroy around the method's table, and dispatch of
 * every unmix_method_* call through m->ops (see method.h). Nothing here names a method. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/comm/comm.h"
#include "core/methods/common.h"

unmix_status unmix_method_new(const struct unmix_method_spec *sp, const struct unmix_backend *be,
                              struct unmix_comm *comm, struct unmix_method **out) {
  *out = NULL;
  const struct unmix_method_ops *ops = sp->ops;
  UNMIX_REQUIRE(ops != NULL, "a method spec without its method");
  struct unmix_method *m = unmix_xcalloc(1, sizeof *m);
  m->ops = ops;
  m->be = be;
  m->spec = *sp;
  m->comm = comm;
  m->rank = unmix_comm_rank(comm);
  m->world = unmix_comm_world(comm);
  m->image_size = sp->model.image_size;
  unmix_status s = UNMIX_OK;
  if (sp->optim.batch_size % m->world != 0)
    s = unmix_error_set(UNMIX_ERR_CONFIG, "optim.batch_size = %d (the global batch) is not a multiple of the %d ranks",
                        sp->optim.batch_size, m->world);
  else if (sp->sync_bn && m->world > 1 && sp->model.bn_splits > 1)
    s = unmix_error_set(UNMIX_ERR_CONFIG, "model.sync_bn normalises over the global batch; it cannot be combined "
                                          "with model.bn_splits = %d (set one of them off)", sp->model.bn_splits);
  else if (sp->sync_bn && m->world > 1 && sp->sync_bn_group > 0 && m->world % sp->sync_bn_group != 0)
    s = unmix_error_set(UNMIX_ERR_CONFIG, "model.sync_bn_group = %d does not divide the %d ranks (SyncBN process "
                        "groups are consecutive ranks, as apex's --syncbn_process_group_size; set "
                        "model.sync_bn_group to a divisor of the world, or 0 for all ranks)", sp->sync_bn_group,
                        m->world);
  /* apex's process groups of N ranks; N = world is the all-rank sync of the communicator */
  else if (sp->sync_bn && m->world > 1 && sp->sync_bn_group > 0 && sp->sync_bn_group < m->world)
    s = unmix_comm_split_groups(comm, sp->sync_bn_group, &m->bn_comm);
  if (s == UNMIX_OK) s = ops->create(m);
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
  m->ops->destroy(m);
  if (m->opt.store) unmix_optimizer_free(&m->opt);
  unmix_model_destroy(m->model);
  unmix_comm_destroy(m->bn_comm);
  free(m);
}

unmix_status unmix_method_step_forced(struct unmix_method *m, const struct unmix_views *v, int64_t step, int epoch,
                                      float lr, const struct unmix_forced_draws *forced, struct unmix_step_stats *st) {
  memset(st, 0, sizeof *st);
  return m->ops->step(m, v, step, epoch, lr, forced, st);
}

unmix_status unmix_method_step(struct unmix_method *m, const struct unmix_views *v, int64_t step, int epoch,
                               float lr, struct unmix_step_stats *st) {
  return unmix_method_step_forced(m, v, step, epoch, lr, NULL, st);
}

struct unmix_model *unmix_method_encoder(struct unmix_method *m) { return m->model; }

const struct unmix_method_ops *unmix_method_ops_get(const struct unmix_method *m) { return m->ops; }

void unmix_method_begin_epoch(struct unmix_method *m, int epoch) {
  if (m->ops->begin_epoch) m->ops->begin_epoch(m, epoch);
}

int unmix_method_views_needed(const struct unmix_method *m) { return m->ops->views_needed(m); }

double unmix_method_step_flops_per_sample(const struct unmix_method *m) { return m->ops->step_flops_per_sample(m); }

static size_t store_bytes(const struct unmix_param_store *s) {
  return sizeof(float) * (size_t)s->total * (1 + (s->grad != NULL) + (s->momentum != NULL));
}

size_t unmix_method_device_bytes(const struct unmix_method *m) {
  size_t b = store_bytes(&m->model->params) + store_bytes(&m->model->buffers);
  return b + m->ops->device_bytes(m);
}

int unmix_method_state(struct unmix_method *m, struct unmix_state_entry *out, int cap) {
  int n = unmix_state_add(out, 0, cap, "optim.momentum", m->model->params.momentum, m->model->params.total);
  if (m->ops->state) n += m->ops->state(m, out + n, cap > n ? cap - n : 0);
  return n;
}

int unmix_method_scalars(struct unmix_method *m, const char **names, int64_t *values, int cap) {
  if (cap > 0) {
    names[0] = "model.bn_batches_tracked";
    values[0] = m->model->bn_batches_tracked;
  }
  int n = 1;
  if (m->ops->scalars) n += m->ops->scalars(m, names + n, values + n, cap > n ? cap - n : 0);
  return n;
}

unmix_status unmix_method_set_scalar(struct unmix_method *m, const char *name, int64_t value) {
  if (!strcmp(name, "model.bn_batches_tracked")) {
    m->model->bn_batches_tracked = value;
    return UNMIX_OK;
  }
  if (m->ops->set_scalar) return m->ops->set_scalar(m, name, value);
  return unmix_error_set(UNMIX_ERR_FORMAT, "unknown %s state scalar '%s'", m->ops->name, name);
}
