/* Tensors and the step arena. A tensor is (data, dtype, device, shape up to 4-D); data is
 * contiguous (activations NHWC). Tensors never own memory: it comes from a flat parameter
 * buffer (named views) or from an arena that hands out the same buffers step after step. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "core/backend/backend.h"

enum unmix_dtype { UNMIX_F32 = 0, UNMIX_BF16, UNMIX_F16, UNMIX_I32, UNMIX_U8 };
size_t unmix_dtype_size(enum unmix_dtype dt);
const char *unmix_dtype_name(enum unmix_dtype dt);

#define UNMIX_MAX_DIMS 4
struct unmix_tensor {
  void *data;
  enum unmix_dtype dtype;
  enum unmix_device device;
  int ndim;
  int shape[UNMIX_MAX_DIMS];
};

int64_t unmix_tensor_numel(const struct unmix_tensor *t);
size_t unmix_tensor_bytes(const struct unmix_tensor *t);
/* A view of existing memory. ndim 1..4; unused dims are ignored. */
struct unmix_tensor unmix_tensor_make(void *data, enum unmix_dtype dt, enum unmix_device dev, int ndim,
                                      const int *shape);
static inline float *unmix_tensor_f32(const struct unmix_tensor *t) { return (float *)t->data; }
/* "(5, 7, 11, 13)" into buf. */
const char *unmix_tensor_shape_str(const struct unmix_tensor *t, char *buf, size_t len);

/* The step arena: allocations are bump-allocated from large device blocks; reset() makes
 * all of them invalid at once and keeps the memory. After the first step the arena holds
 * one block of the high-water size, so later steps allocate nothing. */
struct unmix_arena;
struct unmix_arena *unmix_arena_create(const struct unmix_backend *be, const char *name);
void unmix_arena_destroy(struct unmix_arena *a);
/* NULL (with UNMIX_ERR_NOMEM set, naming the arena and size) on failure. 256-byte aligned. */
void *unmix_arena_alloc(struct unmix_arena *a, size_t bytes);
struct unmix_tensor unmix_arena_tensor(struct unmix_arena *a, enum unmix_dtype dt, int ndim, const int *shape);
void unmix_arena_reset(struct unmix_arena *a);
size_t unmix_arena_in_use(const struct unmix_arena *a);
size_t unmix_arena_high_water(const struct unmix_arena *a);
size_t unmix_arena_capacity(const struct unmix_arena *a);
