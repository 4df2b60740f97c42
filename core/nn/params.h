/* Flat parameter storage: every trainable tensor of a model lives in ONE device buffer
 * (and its gradient and SGD momentum in one buffer each, same offsets); BatchNorm running
 * statistics live in a buffer of their own. Named views use torchvision names
 * (`layer1.0.conv1.weight`, `layer1.0.bn1.running_mean`, ...). This makes SGD/LARC, the
 * key-encoder EMA, gradient all-reduce and checkpointing single loops over one buffer.
 *
 * Layout: conv weights are stored OHWI (K, R, S, C) for NHWC convolution; their torchvision
 * layout is OIHW (K, C, R, S). Everything else is stored exactly as in PyTorch.
 * Offsets are 16-float aligned so each tensor starts on a 64-byte boundary. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "core/backend/backend.h"

/* Random-stream purpose of parameter initialisation (index = tensor number); values: core/util/rng.h. */
enum unmix_nn_rng_purpose { UNMIX_RNG_INIT = 1 };

enum unmix_init_kind {
  UNMIX_INIT_ZERO = 0,
  UNMIX_INIT_ONE,
  UNMIX_INIT_KAIMING_NORMAL_FAN_OUT, /* N(0, 2/fan_out), fan_out = K*R*S (torchvision convs) */
  UNMIX_INIT_UNIFORM_FAN_IN,         /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (PyTorch Linear/Conv default) */
  UNMIX_INIT_NORMAL,                 /* N(0, std^2) with the entry's init_std (linear-eval fc: 0.01) */
};

enum unmix_param_layout { UNMIX_LAYOUT_PLAIN = 0, UNMIX_LAYOUT_CONV_OHWI };

struct unmix_param_entry {
  char name[96];
  int ndim;
  int shape[4];          /* torchvision shape: conv (K, C, R, S); stored as OHWI */
  int64_t offset;        /* in floats, into the store's buffers */
  int64_t numel;
  enum unmix_param_layout layout;
  enum unmix_init_kind init;
  float init_std;
  int fan_in, fan_out;
};

struct unmix_param_store {
  const struct unmix_backend *be;
  int count, cap;
  struct unmix_param_entry *entries;
  int64_t total;         /* floats, including alignment padding */
  float *data;           /* device: values */
  float *grad;           /* device: gradients (NULL for buffer stores) */
  float *momentum;       /* device: SGD momentum buffers (NULL until unmix_param_store_alloc_optim) */
};

/* Registers a tensor (before unmix_param_store_alloc). Returns its index. */
int unmix_param_store_add(struct unmix_param_store *s, const char *name, int ndim, const int *shape,
                          enum unmix_param_layout layout, enum unmix_init_kind init, float init_std);
/* Allocates data (+grad if with_grad) on the backend, zero-filled. */
unmix_status unmix_param_store_alloc(struct unmix_param_store *s, const struct unmix_backend *be, bool with_grad);
unmix_status unmix_param_store_alloc_optim(struct unmix_param_store *s);
void unmix_param_store_free(struct unmix_param_store *s);
/* Initialises every entry by its init kind from Philox (seed, UNMIX_RNG_INIT, index = entry
 * number, view = init_stream) — deterministic across backends. */
void unmix_param_store_init_values(struct unmix_param_store *s, uint64_t seed, uint32_t init_stream);
int unmix_param_store_find(const struct unmix_param_store *s, const char *name);
static inline float *unmix_param_ptr(const struct unmix_param_store *s, int idx) {
  return s->data + s->entries[idx].offset;
}
static inline float *unmix_param_grad(const struct unmix_param_store *s, int idx) {
  return s->grad ? s->grad + s->entries[idx].offset : 0;
}
/* Host copies in torchvision layout (OIHW for convs): dst has entries[idx].numel floats. */
void unmix_param_store_get(const struct unmix_param_store *s, int idx, float *dst);
void unmix_param_store_set(struct unmix_param_store *s, int idx, const float *src);
/* Like _get, but reads entry idx's layout from another buffer with the same offsets
 * (the gradient or momentum buffer). */
void unmix_param_store_get_from(const struct unmix_param_store *s, const float *base, int idx, float *dst);
int64_t unmix_param_store_numel(const struct unmix_param_store *s); /* sum of numel (no padding) */
/* Segment offsets for per-tensor ops (LARC norms): off has count+1 entries. */
void unmix_param_store_segments(const struct unmix_param_store *s, int64_t *off);
