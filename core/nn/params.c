/* Flat parameter stores (see params.h). */
#include "core/nn/params.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util/rng.h"

#define ALIGN_FLOATS 16

int unmix_param_store_add(struct unmix_param_store *s, const char *name, int ndim, const int *shape,
                          enum unmix_param_layout layout, enum unmix_init_kind init, float init_std) {
  UNMIX_REQUIRE(s->data == NULL, "param store already allocated; cannot add '%s'", name);
  UNMIX_REQUIRE(ndim >= 1 && ndim <= 4, "bad rank for '%s'", name);
  UNMIX_REQUIRE(strlen(name) < sizeof s->entries[0].name, "parameter name too long: %s", name);
  UNMIX_REQUIRE(unmix_param_store_find(s, name) < 0, "duplicate parameter name '%s'", name);
  if (s->count == s->cap) {
    s->cap = s->cap ? 2 * s->cap : 64;
    s->entries = unmix_xrealloc(s->entries, sizeof *s->entries * (size_t)s->cap);
  }
  struct unmix_param_entry *e = &s->entries[s->count];
  memset(e, 0, sizeof *e);
  snprintf(e->name, sizeof e->name, "%s", name);
  e->ndim = ndim;
  e->numel = 1;
  for (int i = 0; i < ndim; i++) {
    e->shape[i] = shape[i];
    e->numel *= shape[i];
  }
  e->layout = layout;
  e->init = init;
  e->init_std = init_std;
  /* PyTorch's fan computation: fan_in = shape[1] * receptive field, fan_out = shape[0] * rf */
  int64_t rf = 1;
  for (int i = 2; i < ndim; i++) rf *= shape[i];
  e->fan_in = ndim >= 2 ? (int)(shape[1] * rf) : shape[0];
  e->fan_out = (int)(shape[0] * rf);
  e->offset = s->total;
  s->total += (e->numel + ALIGN_FLOATS - 1) / ALIGN_FLOATS * ALIGN_FLOATS;
  return s->count++;
}

unmix_status unmix_param_store_alloc(struct unmix_param_store *s, const struct unmix_backend *be, bool with_grad) {
  s->be = be;
  size_t bytes = sizeof(float) * (size_t)(s->total ? s->total : ALIGN_FLOATS);
  s->data = be->alloc(bytes);
  if (!s->data) return unmix_error_set(UNMIX_ERR_NOMEM, "cannot allocate %.1f MiB of parameters on %s",
                                       (double)bytes / 1048576.0, be->name);
  be->fill(s->total, 0.0f, s->data);
  if (with_grad) {
    s->grad = be->alloc(bytes);
    if (!s->grad) return unmix_error_set(UNMIX_ERR_NOMEM, "cannot allocate %.1f MiB of gradients on %s",
                                         (double)bytes / 1048576.0, be->name);
    be->fill(s->total, 0.0f, s->grad);
  }
  return UNMIX_OK;
}

unmix_status unmix_param_store_alloc_optim(struct unmix_param_store *s) {
  if (s->momentum) return UNMIX_OK;
  size_t bytes = sizeof(float) * (size_t)(s->total ? s->total : ALIGN_FLOATS);
  s->momentum = s->be->alloc(bytes);
  if (!s->momentum) return unmix_error_set(UNMIX_ERR_NOMEM, "cannot allocate %.1f MiB of optimiser state on %s",
                                           (double)bytes / 1048576.0, s->be->name);
  s->be->fill(s->total, 0.0f, s->momentum);
  return UNMIX_OK;
}

void unmix_param_store_free(struct unmix_param_store *s) {
  if (s->be) {
    if (s->data) s->be->free(s->data);
    if (s->grad) s->be->free(s->grad);
    if (s->momentum) s->be->free(s->momentum);
  }
  free(s->entries);
  memset(s, 0, sizeof *s);
}

int unmix_param_store_find(const struct unmix_param_store *s, const char *name) {
  for (int i = 0; i < s->count; i++)
    if (!strcmp(s->entries[i].name, name)) return i;
  return -1;
}

int64_t unmix_param_store_numel(const struct unmix_param_store *s) {
  int64_t n = 0;
  for (int i = 0; i < s->count; i++) n += s->entries[i].numel;
  return n;
}

void unmix_param_store_segments(const struct unmix_param_store *s, int64_t *off) {
  for (int i = 0; i < s->count; i++) off[i] = s->entries[i].offset;
  off[s->count] = s->total;
}

/* OHWI <-> OIHW conversion on the host (torchvision checkpoints hold OIHW). */
static void oihw_to_ohwi(const float *src, float *dst, int k, int c, int r, int s) {
  for (int o = 0; o < k; o++)
    for (int i = 0; i < c; i++)
      for (int y = 0; y < r; y++)
        for (int x = 0; x < s; x++)
          dst[(((size_t)o * r + y) * s + x) * c + i] = src[(((size_t)o * c + i) * r + y) * s + x];
}

static void ohwi_to_oihw(const float *src, float *dst, int k, int c, int r, int s) {
  for (int o = 0; o < k; o++)
    for (int i = 0; i < c; i++)
      for (int y = 0; y < r; y++)
        for (int x = 0; x < s; x++)
          dst[(((size_t)o * c + i) * r + y) * s + x] = src[(((size_t)o * r + y) * s + x) * c + i];
}

void unmix_param_store_get_from(const struct unmix_param_store *s, const float *base, int idx, float *dst) {
  const struct unmix_param_entry *e = &s->entries[idx];
  if (e->layout == UNMIX_LAYOUT_CONV_OHWI) {
    float *tmp = unmix_xmalloc(sizeof(float) * (size_t)e->numel);
    s->be->memcpy_d2h(tmp, base + e->offset, sizeof(float) * (size_t)e->numel);
    ohwi_to_oihw(tmp, dst, e->shape[0], e->shape[1], e->shape[2], e->shape[3]);
    free(tmp);
  } else {
    s->be->memcpy_d2h(dst, base + e->offset, sizeof(float) * (size_t)e->numel);
  }
}

void unmix_param_store_get(const struct unmix_param_store *s, int idx, float *dst) {
  unmix_param_store_get_from(s, s->data, idx, dst);
}

void unmix_param_store_set(struct unmix_param_store *s, int idx, const float *src) {
  const struct unmix_param_entry *e = &s->entries[idx];
  if (e->layout == UNMIX_LAYOUT_CONV_OHWI) {
    float *tmp = unmix_xmalloc(sizeof(float) * (size_t)e->numel);
    oihw_to_ohwi(src, tmp, e->shape[0], e->shape[1], e->shape[2], e->shape[3]);
    s->be->memcpy_h2d(s->data + e->offset, tmp, sizeof(float) * (size_t)e->numel);
    free(tmp);
  } else {
    s->be->memcpy_h2d(s->data + e->offset, src, sizeof(float) * (size_t)e->numel);
  }
}

void unmix_param_store_init_values(struct unmix_param_store *s, uint64_t seed, uint32_t init_stream) {
  for (int i = 0; i < s->count; i++) {
    const struct unmix_param_entry *e = &s->entries[i];
    float *h = unmix_xmalloc(sizeof(float) * (size_t)e->numel);
    struct unmix_rng r = unmix_rng_make(seed, UNMIX_RNG_INIT, 0, (uint32_t)i, init_stream);
    switch (e->init) {
      case UNMIX_INIT_ZERO: memset(h, 0, sizeof(float) * (size_t)e->numel); break;
      case UNMIX_INIT_ONE:
        for (int64_t j = 0; j < e->numel; j++) h[j] = 1.0f;
        break;
      case UNMIX_INIT_KAIMING_NORMAL_FAN_OUT:
        unmix_rng_fill_normal(&r, h, (size_t)e->numel, 0.0f, (float)sqrt(2.0 / e->fan_out));
        break;
      case UNMIX_INIT_UNIFORM_FAN_IN: {
        float b = (float)(1.0 / sqrt((double)e->fan_in));
        unmix_rng_fill_uniform(&r, h, (size_t)e->numel, -b, b);
        break;
      }
      case UNMIX_INIT_NORMAL: unmix_rng_fill_normal(&r, h, (size_t)e->numel, 0.0f, e->init_std); break;
    }
    /* values are drawn in torchvision (OIHW) order so they do not depend on our layout */
    unmix_param_store_set(s, i, h);
    free(h);
  }
}
