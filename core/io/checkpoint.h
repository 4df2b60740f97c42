/* Checkpoints in the safetensors format (https://github.com/huggingface/safetensors):
 *   u64 little-endian N | N bytes of JSON header, space-padded so the data starts 8-aligned |
 *   data: the tensors back to back, row-major, little-endian.
 * The header maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]}
 * (relative to the data start) plus an optional "__metadata__" string->string map.
 * We write with jansson, atomically (temp file, fsync, rename, directory fsync), and add
 * the metadata key "unmix.crc32" (CRC-32 of the data region, then of each tensor's name,
 * dtype and shape in file order). The reader validates everything (sizes, JSON, dtypes,
 * shapes vs byte lengths, offsets tiling the data region exactly as the reference
 * implementation demands) and reports UNMIX_ERR_FORMAT / UNMIX_ERR_IO naming the file and
 * the tensor. It verifies the CRC; a file with unmix.* entries but no CRC is refused (ours
 * always carry one); a foreign file without it loads unverified (crc_verified false).
 * NaN/Inf in a floating tensor is refused on save and on load (UNMIX_ERR_NUMERIC naming the
 * tensor): a diverged model never becomes, or is used as, a checkpoint. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/util/error.h"

#define UNMIX_CKPT_MAX_DIMS 8
#define UNMIX_CKPT_CRC_KEY "unmix.crc32"

enum unmix_ckpt_dtype { UNMIX_CKPT_F32 = 0, UNMIX_CKPT_F64, UNMIX_CKPT_I32, UNMIX_CKPT_I64, UNMIX_CKPT_U8 };

size_t unmix_ckpt_dtype_size(enum unmix_ckpt_dtype dt);
const char *unmix_ckpt_dtype_name(enum unmix_ckpt_dtype dt); /* "F32", "F64", "I32", "I64", "U8" */

struct unmix_ckpt_tensor {
  char *name;
  enum unmix_ckpt_dtype dtype;
  int ndim;                              /* 0 = scalar */
  int64_t shape[UNMIX_CKPT_MAX_DIMS];
  size_t numel;
  size_t nbytes;
  void *data;                            /* host memory */
  bool owned;                            /* data freed by unmix_ckpt_free */
};

struct unmix_ckpt {
  char *path;                            /* the file it was loaded from; NULL for a new one */
  size_t n;
  struct unmix_ckpt_tensor *tensors;     /* in insertion (writer) or file-offset (reader) order */
  size_t n_meta;
  char **meta_keys;
  char **meta_values;
  bool crc_verified;                     /* loaded, and its unmix.crc32 matched */
};

struct unmix_ckpt *unmix_ckpt_new(void);
void unmix_ckpt_free(struct unmix_ckpt *ck);

/* Adds a tensor. `data` is BORROWED: it must stay valid until unmix_ckpt_save/free.
 * UNMIX_ERR_ARG for an empty, reserved ("__metadata__") or duplicate name, ndim outside
 * 0..8, a negative dimension or NULL data with elements. */
unmix_status unmix_ckpt_add(struct unmix_ckpt *ck, const char *name, enum unmix_ckpt_dtype dtype, int ndim,
                            const int64_t *shape, const void *data);
/* Same, copying the data now. */
unmix_status unmix_ckpt_add_copy(struct unmix_ckpt *ck, const char *name, enum unmix_ckpt_dtype dtype, int ndim,
                                 const int64_t *shape, const void *data);
/* Sets (or replaces) a metadata string. The key UNMIX_CKPT_CRC_KEY is reserved. */
unmix_status unmix_ckpt_set_meta(struct unmix_ckpt *ck, const char *key, const char *value);

/* Writes the checkpoint atomically. */
unmix_status unmix_ckpt_save(const struct unmix_ckpt *ck, const char *path);
/* Reads and validates a safetensors file (ours or any other writer's, for our dtypes). */
unmix_status unmix_ckpt_load(const char *path, struct unmix_ckpt **out);

/* UNMIX_ERR_NUMERIC naming `what` and the first tensor holding NaN/Inf (and where), else OK. */
unmix_status unmix_ckpt_check_finite(const struct unmix_ckpt *ck, const char *what);
/* Whether the checkpoint was written by unmix (unmix.* metadata or tensors). */
bool unmix_ckpt_is_ours(const struct unmix_ckpt *ck);

const struct unmix_ckpt_tensor *unmix_ckpt_find(const struct unmix_ckpt *ck, const char *name);
const char *unmix_ckpt_meta(const struct unmix_ckpt *ck, const char *key);
/* Copies tensor `name` into dst after checking it exists with exactly this dtype and shape;
 * otherwise UNMIX_ERR_FORMAT naming the file, the tensor, and what differs. */
unmix_status unmix_ckpt_read(const struct unmix_ckpt *ck, const char *name, enum unmix_ckpt_dtype dtype, int ndim,
                             const int64_t *shape, void *dst);
