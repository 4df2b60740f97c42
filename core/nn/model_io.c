/* Model <-> checkpoint conversion (see model_io.h). */
#include "core/nn/model_io.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void shape64(const struct unmix_param_entry *e, int64_t *shape) {
  for (int d = 0; d < e->ndim; d++) shape[d] = e->shape[d];
}

static unmix_status add_store(const struct unmix_param_store *s, int count, struct unmix_ckpt *ck, const char *prefix) {
  for (int i = 0; i < count; i++) {
    const struct unmix_param_entry *e = &s->entries[i];
    float *h = unmix_xmalloc(sizeof(float) * (size_t)e->numel);
    unmix_param_store_get(s, i, h);
    char name[256];
    snprintf(name, sizeof name, "%s%s", prefix, e->name);
    int64_t shape[4];
    shape64(e, shape);
    unmix_status st = unmix_ckpt_add_copy(ck, name, UNMIX_CKPT_F32, e->ndim, shape, h);
    free(h);
    UNMIX_TRY(st);
  }
  return UNMIX_OK;
}

unmix_status unmix_model_to_ckpt(const struct unmix_model *m, struct unmix_ckpt *ck, const char *prefix,
                                 bool backbone_only) {
  UNMIX_TRY(add_store(&m->params, backbone_only ? m->n_backbone_params : m->params.count, ck, prefix));
  int nb = backbone_only ? m->n_backbone_buffers : m->buffers.count;
  UNMIX_TRY(add_store(&m->buffers, nb, ck, prefix));
  /* torchvision's per-BN counter: entries come in (running_mean, running_var) pairs */
  for (int j = 0; j < nb; j += 2) {
    const char *rm = m->buffers.entries[j].name;
    char name[256];
    snprintf(name, sizeof name, "%s%.*s.num_batches_tracked", prefix, (int)(strlen(rm) - strlen(".running_mean")), rm);
    int64_t v = m->bn_batches_tracked;
    UNMIX_TRY(unmix_ckpt_add_copy(ck, name, UNMIX_CKPT_I64, 0, NULL, &v));
  }
  return UNMIX_OK;
}

static unmix_status read_store(struct unmix_param_store *s, int count, const struct unmix_ckpt *ck, const char *prefix) {
  for (int i = 0; i < count; i++) {
    const struct unmix_param_entry *e = &s->entries[i];
    char name[256];
    snprintf(name, sizeof name, "%s%s", prefix, e->name);
    int64_t shape[4];
    shape64(e, shape);
    float *h = unmix_xmalloc(sizeof(float) * (size_t)e->numel);
    unmix_status st = unmix_ckpt_read(ck, name, UNMIX_CKPT_F32, e->ndim, shape, h);
    if (st == UNMIX_OK) unmix_param_store_set(s, i, h);
    free(h);
    UNMIX_TRY(st);
  }
  return UNMIX_OK;
}

unmix_status unmix_model_from_ckpt(struct unmix_model *m, const struct unmix_ckpt *ck, const char *prefix,
                                   bool backbone_only) {
  UNMIX_TRY(read_store(&m->params, backbone_only ? m->n_backbone_params : m->params.count, ck, prefix));
  int nb = backbone_only ? m->n_backbone_buffers : m->buffers.count;
  UNMIX_TRY(read_store(&m->buffers, nb, ck, prefix));
  if (nb > 0) {
    const char *rm = m->buffers.entries[0].name;
    char name[256];
    snprintf(name, sizeof name, "%s%.*s.num_batches_tracked", prefix, (int)(strlen(rm) - strlen(".running_mean")), rm);
    int64_t v = 0;
    if (unmix_ckpt_find(ck, name)) {
      UNMIX_TRY(unmix_ckpt_read(ck, name, UNMIX_CKPT_I64, 0, NULL, &v));
      m->bn_batches_tracked = v;
    }
  }
  return UNMIX_OK;
}
