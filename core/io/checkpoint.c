/* safetensors checkpoints: a jansson-built header, atomic writes with a CRC-32 of the data
 * in the metadata, and a reader that validates every byte it trusts (see checkpoint.h). */
#include "core/io/checkpoint.h"
#include "core/io/sniff.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "core/io/atomic.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader/writer assumes a little-endian host"
#endif

#define MAX_HEADER_BYTES 100000000ull /* the reference implementation's limit */

static const char *const g_dtype_names[] = {"F32", "F64", "I32", "I64", "U8"};
static const size_t g_dtype_sizes[] = {4, 8, 4, 8, 1};

size_t unmix_ckpt_dtype_size(enum unmix_ckpt_dtype dt) {
  return (unsigned)dt < 5 ? g_dtype_sizes[dt] : 0;
}
const char *unmix_ckpt_dtype_name(enum unmix_ckpt_dtype dt) {
  return (unsigned)dt < 5 ? g_dtype_names[dt] : "?";
}

struct unmix_ckpt *unmix_ckpt_new(void) { return unmix_xcalloc(1, sizeof(struct unmix_ckpt)); }

void unmix_ckpt_free(struct unmix_ckpt *ck) {
  if (!ck) return;
  for (size_t i = 0; i < ck->n; i++) {
    free(ck->tensors[i].name);
    if (ck->tensors[i].owned) free(ck->tensors[i].data);
  }
  for (size_t i = 0; i < ck->n_meta; i++) {
    free(ck->meta_keys[i]);
    free(ck->meta_values[i]);
  }
  free(ck->tensors);
  free(ck->meta_keys);
  free(ck->meta_values);
  free(ck->path);
  free(ck);
}

const struct unmix_ckpt_tensor *unmix_ckpt_find(const struct unmix_ckpt *ck, const char *name) {
  for (size_t i = 0; i < ck->n; i++)
    if (!strcmp(ck->tensors[i].name, name)) return &ck->tensors[i];
  return NULL;
}

const char *unmix_ckpt_meta(const struct unmix_ckpt *ck, const char *key) {
  for (size_t i = 0; i < ck->n_meta; i++)
    if (!strcmp(ck->meta_keys[i], key)) return ck->meta_values[i];
  return NULL;
}

static void shape_str(int ndim, const int64_t *shape, char *buf, size_t len) {
  size_t off = (size_t)snprintf(buf, len, "[");
  for (int i = 0; i < ndim && off < len; i++)
    off += (size_t)snprintf(buf + off, len - off, "%s%" PRId64, i ? ", " : "", shape[i]);
  if (off < len) snprintf(buf + off, len - off, "]");
}

/* The first NaN/Inf of a floating tensor: its index, or -1 when every element is finite. */
static long long first_nonfinite(const struct unmix_ckpt_tensor *t) {
  if (t->dtype == UNMIX_CKPT_F32) {
    const float *x = t->data;
    for (size_t i = 0; i < t->numel; i++)
      if (!isfinite(x[i])) return (long long)i;
  } else if (t->dtype == UNMIX_CKPT_F64) {
    const double *x = t->data;
    for (size_t i = 0; i < t->numel; i++)
      if (!isfinite(x[i])) return (long long)i;
  }
  return -1;
}

static double value_at(const struct unmix_ckpt_tensor *t, long long i) {
  return t->dtype == UNMIX_CKPT_F32 ? (double)((const float *)t->data)[i] : ((const double *)t->data)[i];
}

unmix_status unmix_ckpt_check_finite(const struct unmix_ckpt *ck, const char *what) {
  for (size_t i = 0; i < ck->n; i++) {
    const struct unmix_ckpt_tensor *t = &ck->tensors[i];
    long long at = t->numel ? first_nonfinite(t) : -1;
    if (at < 0) continue;
    return unmix_error_set(UNMIX_ERR_NUMERIC, "%s: tensor '%s' holds %s at element %lld of %zu", what, t->name,
                           isnan(value_at(t, at)) ? "NaN" : "an infinite value", at, t->numel);
  }
  return UNMIX_OK;
}

/* ---- writer ---------------------------------------------------------------------------------- */

static unmix_status add_impl(struct unmix_ckpt *ck, const char *name, enum unmix_ckpt_dtype dtype, int ndim,
                             const int64_t *shape, const void *data, bool copy) {
  if (!name || !name[0] || !strcmp(name, "__metadata__"))
    return unmix_error_set(UNMIX_ERR_ARG, "checkpoint tensor name '%s' is empty or reserved", name ? name : "(null)");
  if (unmix_ckpt_find(ck, name)) return unmix_error_set(UNMIX_ERR_ARG, "checkpoint tensor '%s' added twice", name);
  if ((unsigned)dtype >= 5) return unmix_error_set(UNMIX_ERR_ARG, "checkpoint tensor '%s': bad dtype %d", name, (int)dtype);
  if (ndim < 0 || ndim > UNMIX_CKPT_MAX_DIMS)
    return unmix_error_set(UNMIX_ERR_ARG, "checkpoint tensor '%s': %d dimensions (at most %d)", name, ndim,
                           UNMIX_CKPT_MAX_DIMS);
  size_t numel = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) return unmix_error_set(UNMIX_ERR_ARG, "checkpoint tensor '%s': negative dimension", name);
    if (shape[i] && numel > (SIZE_MAX / 16) / (size_t)shape[i])
      return unmix_error_set(UNMIX_ERR_ARG, "checkpoint tensor '%s': too many elements", name);
    numel *= (size_t)shape[i];
  }
  size_t nbytes = numel * g_dtype_sizes[dtype];
  if (nbytes && !data) return unmix_error_set(UNMIX_ERR_ARG, "checkpoint tensor '%s': no data", name);
  void *d = (void *)data;
  if (copy && nbytes) {
    d = malloc(nbytes);
    if (!d) return unmix_error_set(UNMIX_ERR_NOMEM, "checkpoint tensor '%s': cannot copy %zu bytes", name, nbytes);
    memcpy(d, data, nbytes);
  }
  ck->tensors = unmix_xrealloc(ck->tensors, (ck->n + 1) * sizeof *ck->tensors);
  struct unmix_ckpt_tensor *t = &ck->tensors[ck->n++];
  memset(t, 0, sizeof *t);
  t->name = unmix_xstrdup(name);
  t->dtype = dtype;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
  t->numel = numel;
  t->nbytes = nbytes;
  t->data = d;
  t->owned = copy && nbytes;
  return UNMIX_OK;
}

unmix_status unmix_ckpt_add(struct unmix_ckpt *ck, const char *name, enum unmix_ckpt_dtype dtype, int ndim,
                            const int64_t *shape, const void *data) {
  return add_impl(ck, name, dtype, ndim, shape, data, false);
}

unmix_status unmix_ckpt_add_copy(struct unmix_ckpt *ck, const char *name, enum unmix_ckpt_dtype dtype, int ndim,
                                 const int64_t *shape, const void *data) {
  return add_impl(ck, name, dtype, ndim, shape, data, true);
}

static void meta_put(struct unmix_ckpt *ck, const char *key, const char *value) {
  for (size_t i = 0; i < ck->n_meta; i++)
    if (!strcmp(ck->meta_keys[i], key)) {
      free(ck->meta_values[i]);
      ck->meta_values[i] = unmix_xstrdup(value);
      return;
    }
  ck->meta_keys = unmix_xrealloc(ck->meta_keys, (ck->n_meta + 1) * sizeof *ck->meta_keys);
  ck->meta_values = unmix_xrealloc(ck->meta_values, (ck->n_meta + 1) * sizeof *ck->meta_values);
  ck->meta_keys[ck->n_meta] = unmix_xstrdup(key);
  ck->meta_values[ck->n_meta] = unmix_xstrdup(value);
  ck->n_meta++;
}

unmix_status unmix_ckpt_set_meta(struct unmix_ckpt *ck, const char *key, const char *value) {
  if (!key || !value) return unmix_error_set(UNMIX_ERR_ARG, "checkpoint metadata: NULL key or value");
  if (!strcmp(key, UNMIX_CKPT_CRC_KEY))
    return unmix_error_set(UNMIX_ERR_ARG, "checkpoint metadata key '%s' is reserved", key);
  meta_put(ck, key, value);
  return UNMIX_OK;
}

static uint32_t crc_update(uint32_t crc, const void *data, size_t len) {
  const Bytef *p = data;
  uLong c = crc;
  while (len > 0) {
    uInt chunk = len > (1u << 30) ? (1u << 30) : (uInt)len;
    c = crc32(c, p, chunk);
    p += chunk;
    len -= chunk;
  }
  return (uint32_t)c;
}

/* File order: by data offset; empty tensors sharing an offset by name (deterministic). */
struct pending {
  size_t idx;
  uint64_t begin, end;
  const char *name;
};

static int cmp_pending(const void *a, const void *b) {
  const struct pending *x = a, *y = b;
  if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
  if (x->end != y->end) return x->end < y->end ? -1 : 1;
  return strcmp(x->name, y->name);
}

/* The CRC also covers each tensor's name, dtype and shape (in file order), so a corrupted
 * header entry is caught too; only metadata text is not covered. */
static uint32_t crc_layout(uint32_t crc, const struct unmix_ckpt_tensor *t) {
  char buf[64];
  crc = crc_update(crc, t->name, strlen(t->name) + 1);
  crc = crc_update(crc, g_dtype_names[t->dtype], strlen(g_dtype_names[t->dtype]) + 1);
  for (int d = 0; d < t->ndim; d++) {
    int n = snprintf(buf, sizeof buf, "%" PRId64 ",", t->shape[d]);
    crc = crc_update(crc, buf, (size_t)n);
  }
  return crc_update(crc, "\n", 1);
}

unmix_status unmix_ckpt_save(const struct unmix_ckpt *ck, const char *path) {
  /* a diverged model is never written over a good checkpoint */
  if (unmix_ckpt_check_finite(ck, path) != UNMIX_OK)
    return unmix_error_wrap(UNMIX_ERR_NUMERIC, "refusing to save a non-finite checkpoint (the run has diverged)");
  uint32_t crc = (uint32_t)crc32(0L, Z_NULL, 0);
  for (size_t i = 0; i < ck->n; i++) crc = crc_update(crc, ck->tensors[i].data, ck->tensors[i].nbytes);
  {
    struct pending *pd = unmix_xcalloc(ck->n ? ck->n : 1, sizeof *pd);
    size_t at = 0;
    for (size_t i = 0; i < ck->n; i++) {
      pd[i] = (struct pending){i, at, at + ck->tensors[i].nbytes, ck->tensors[i].name};
      at += ck->tensors[i].nbytes;
    }
    qsort(pd, ck->n, sizeof *pd, cmp_pending);
    for (size_t i = 0; i < ck->n; i++) crc = crc_layout(crc, &ck->tensors[pd[i].idx]);
    free(pd);
  }
  char crc_hex[16];
  snprintf(crc_hex, sizeof crc_hex, "%08" PRIx32, crc);

  json_t *root = json_object(), *meta = json_object();
  UNMIX_REQUIRE(root && meta, "jansson: out of memory");
  for (size_t i = 0; i < ck->n_meta; i++)
    if (strcmp(ck->meta_keys[i], UNMIX_CKPT_CRC_KEY) != 0)
      json_object_set_new(meta, ck->meta_keys[i], json_string(ck->meta_values[i]));
  json_object_set_new(meta, UNMIX_CKPT_CRC_KEY, json_string(crc_hex));
  json_object_set_new(root, "__metadata__", meta);
  size_t off = 0;
  for (size_t i = 0; i < ck->n; i++) {
    const struct unmix_ckpt_tensor *t = &ck->tensors[i];
    json_t *e = json_object(), *shape = json_array(), *offs = json_array();
    UNMIX_REQUIRE(e && shape && offs, "jansson: out of memory");
    json_object_set_new(e, "dtype", json_string(g_dtype_names[t->dtype]));
    for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer((json_int_t)t->shape[d]));
    json_object_set_new(e, "shape", shape);
    json_array_append_new(offs, json_integer((json_int_t)off));
    json_array_append_new(offs, json_integer((json_int_t)(off + t->nbytes)));
    json_object_set_new(e, "data_offsets", offs);
    json_object_set_new(root, t->name, e);
    off += t->nbytes;
  }
  char *hdr = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(root);
  if (!hdr) return unmix_error_set(UNMIX_ERR_FORMAT, "%s: cannot encode the checkpoint header (invalid UTF-8 in a name?)", path);
  size_t hl = strlen(hdr), padded = (hl + 7) & ~(size_t)7; /* 8 + padded is a multiple of 8 */
  char *hbuf = malloc(8 + padded);
  if (!hbuf) {
    free(hdr);
    return unmix_error_set(UNMIX_ERR_NOMEM, "%s: out of memory", path);
  }
  uint64_t n = padded;
  memcpy(hbuf, &n, 8);
  memcpy(hbuf + 8, hdr, hl);
  memset(hbuf + 8 + hl, ' ', padded - hl);
  free(hdr);

  struct unmix_chunk *chunks = unmix_xmalloc((ck->n + 1) * sizeof *chunks);
  chunks[0] = (struct unmix_chunk){hbuf, 8 + padded};
  for (size_t i = 0; i < ck->n; i++) chunks[i + 1] = (struct unmix_chunk){ck->tensors[i].data, ck->tensors[i].nbytes};
  unmix_status st = unmix_atomic_write(path, chunks, ck->n + 1);
  free(chunks);
  free(hbuf);
  if (st != UNMIX_OK) unmix_error_wrap(st, "saving checkpoint");
  return st;
}

/* ---- reader ---------------------------------------------------------------------------------- */


static bool get_u64(const json_t *v, uint64_t *out) {
  if (!json_is_integer(v) || json_integer_value(v) < 0) return false;
  *out = (uint64_t)json_integer_value(v);
  return true;
}

static unmix_status parse_tensor(const char *path, const char *name, json_t *e, uint64_t data_len,
                                 struct unmix_ckpt_tensor *t, struct pending *pd) {
  if (!json_is_object(e))
    return unmix_error_set(UNMIX_ERR_FORMAT, "%s: tensor '%s': header entry is not an object", path, name);
  const char *k;
  json_t *v;
  json_object_foreach(e, k, v) {
    if (strcmp(k, "dtype") && strcmp(k, "shape") && strcmp(k, "data_offsets"))
      return unmix_error_set(UNMIX_ERR_FORMAT, "%s: tensor '%s': unexpected header field '%s'", path, name, k);
  }
  json_t *dt = json_object_get(e, "dtype"), *shape = json_object_get(e, "shape"),
         *offs = json_object_get(e, "data_offsets");
  if (!json_is_string(dt))
    return unmix_error_set(UNMIX_ERR_FORMAT, "%s: tensor '%s': missing or non-string dtype", path, name);
  int dtype = -1;
  for (int i = 0; i < 5; i++)
    if (!strcmp(json_string_value(dt), g_dtype_names[i])) dtype = i;
  if (dtype < 0)
    return unmix_error_set(UNMIX_ERR_FORMAT, "%s: tensor '%s': dtype '%.20s' is not supported (F32, F64, I32, I64, U8)",
                           path, name, json_string_value(dt));
  if (!json_is_array(shape))
    return unmix_error_set(UNMIX_ERR_FORMAT, "%s: tensor '%s': missing or malformed shape", path, name);
  size_t nd = json_array_size(shape);
  if (nd > UNMIX_CKPT_MAX_DIMS)
    return unmix_error_set(UNMIX_ERR_FORMAT, "%s: tensor '%s': %zu dimensions (at most %d)", path, name, nd,
                           UNMIX_CKPT_MAX_DIMS);
  uint64_t numel = 1;
  t->ndim = (int)nd;
  for (size_t i = 0; i < nd; i++) {
    uint64_t d;
    if (!get_u64(json_array_get(shape, i), &d))
      return unmix_error_set(UNMIX_ERR_FORMAT, "%s: tensor '%s': shape[%zu] is not a non-negative integer", path, name, i);
    if (d && numel > data_len / d + 1)
      return unmix_error_set(UNMIX_ERR_FORMAT, "%s: tensor '%s': shape larger than the file", path, name);
    numel *= d;
    t->shape[i] = (int64_t)d;
  }
  uint64_t b, en;
  if (!json_is_array(offs) || json_array_size(offs) != 2 || !get_u64(json_array_get(offs, 0), &b) ||
      !get_u64(json_array_get(offs, 1), &en) || en < b)
    return unmix_error_set(UNMIX_ERR_FORMAT, "%s: tensor '%s': data_offsets must be [begin, end] with begin <= end",
                           path, name);
  uint64_t es = g_dtype_sizes[dtype];
  if (numel > UINT64_MAX / es || numel * es != en - b) {
    char sh[160];
    shape_str(t->ndim, t->shape, sh, sizeof sh);
    return unmix_error_set(UNMIX_ERR_FORMAT,
                           "%s: tensor '%s': shape %s of %s needs %" PRIu64 " bytes but data_offsets span %" PRIu64,
                           path, name, sh, g_dtype_names[dtype], numel > UINT64_MAX / es ? UINT64_MAX : numel * es,
                           en - b);
  }
  t->name = unmix_xstrdup(name);
  t->dtype = (enum unmix_ckpt_dtype)dtype;
  t->numel = (size_t)numel;
  t->nbytes = (size_t)(en - b);
  pd->begin = b;
  pd->end = en;
  return UNMIX_OK;
}

static unmix_status load_impl(int fd, const char *path, struct unmix_ckpt *ck) {
  struct stat sb;
  if (fstat(fd, &sb) != 0) return unmix_error_set(UNMIX_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
  uint64_t size = (uint64_t)sb.st_size;
  if (size < 8)
    return unmix_error_set(UNMIX_ERR_FORMAT, "%s: %" PRIu64 " bytes: too short for a safetensors file (truncated?)", path, size);
  uint64_t n = 0;
  UNMIX_TRY(unmix_read_exact(fd, &n, 8, 0, path));
  if (n > size - 8) /* a .pth or another format? say what it is */
    UNMIX_TRY(unmix_sniff_expect_safetensors(path, (const unsigned char *)&n, 8));
  if (n > size - 8)
    return unmix_error_set(UNMIX_ERR_FORMAT, "%s: header length %" PRIu64 " exceeds the file size %" PRIu64
                           " (truncated, or not a safetensors file)", path, n, size);
  if (n > MAX_HEADER_BYTES || n < 2)
    return unmix_error_set(UNMIX_ERR_FORMAT, "%s: implausible header length %" PRIu64, path, n);
  char *hdr = malloc((size_t)n);
  if (!hdr) return unmix_error_set(UNMIX_ERR_NOMEM, "%s: cannot allocate the %" PRIu64 "-byte header", path, n);
  unmix_status st = unmix_read_exact(fd, hdr, (size_t)n, 8, path);
  if (st != UNMIX_OK) {
    free(hdr);
    return st;
  }
  if (hdr[0] != '{') {
    free(hdr);
    return unmix_error_set(UNMIX_ERR_FORMAT, "%s: the header does not start with '{': not a safetensors file", path);
  }
  json_error_t jerr;
  json_t *root = json_loadb(hdr, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
  free(hdr);
  if (!root)
    return unmix_error_set(UNMIX_ERR_FORMAT, "%s: header is not valid JSON: %s (header byte %d)", path, jerr.text,
                           jerr.position);
  if (!json_is_object(root)) {
    json_decref(root);
    return unmix_error_set(UNMIX_ERR_FORMAT, "%s: header is not a JSON object", path);
  }
  uint64_t data_len = size - 8 - n;
  size_t count = json_object_size(root);
  ck->tensors = unmix_xcalloc(count ? count : 1, sizeof *ck->tensors);
  struct pending *pd = unmix_xcalloc(count ? count : 1, sizeof *pd);
  const char *key;
  json_t *val;
  json_object_foreach(root, key, val) {
    if (!strcmp(key, "__metadata__")) {
      if (!json_is_object(val)) {
        st = unmix_error_set(UNMIX_ERR_FORMAT, "%s: __metadata__ is not an object", path);
        break;
      }
      const char *mk;
      json_t *mv;
      json_object_foreach(val, mk, mv) {
        if (!json_is_string(mv)) {
          st = unmix_error_set(UNMIX_ERR_FORMAT, "%s: __metadata__ '%s' is not a string", path, mk);
          break;
        }
        meta_put(ck, mk, json_string_value(mv));
      }
      if (st != UNMIX_OK) break;
      continue;
    }
    if (!key[0]) {
      st = unmix_error_set(UNMIX_ERR_FORMAT, "%s: a tensor has an empty name", path);
      break;
    }
    st = parse_tensor(path, key, val, data_len, &ck->tensors[ck->n], &pd[ck->n]);
    if (st != UNMIX_OK) break;
    pd[ck->n].idx = ck->n;
    pd[ck->n].name = ck->tensors[ck->n].name;
    ck->n++;
  }
  json_decref(root);
  if (st != UNMIX_OK) {
    free(pd);
    return st;
  }
  /* The tensors must tile [0, data_len) exactly: no gap, no overlap, nothing past the end. */
  qsort(pd, ck->n, sizeof *pd, cmp_pending);
  uint64_t at = 0;
  for (size_t i = 0; i < ck->n && st == UNMIX_OK; i++) {
    const char *nm = ck->tensors[pd[i].idx].name;
    if (pd[i].begin < at)
      st = unmix_error_set(UNMIX_ERR_FORMAT, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64 ") overlap tensor '%s'",
                           path, nm, pd[i].begin, pd[i].end, ck->tensors[pd[i - 1].idx].name);
    else if (pd[i].begin > at)
      st = unmix_error_set(UNMIX_ERR_FORMAT, "%s: tensor '%s': %" PRIu64 " unused bytes before its data_offsets", path, nm,
                           pd[i].begin - at);
    else if (pd[i].end > data_len)
      st = unmix_error_set(UNMIX_ERR_FORMAT, "%s: tensor '%s': data_offsets end at %" PRIu64 " but the data region has %"
                           PRIu64 " bytes (file truncated?)", path, nm, pd[i].end, data_len);
    at = pd[i].end;
  }
  if (st == UNMIX_OK && at != data_len)
    st = unmix_error_set(UNMIX_ERR_FORMAT, "%s: %" PRIu64 " bytes after the last tensor's data (corrupt or appended to)",
                         path, data_len - at);
  if (st != UNMIX_OK) {
    free(pd);
    return st;
  }
  /* Present the tensors in file order. */
  struct unmix_ckpt_tensor *sorted = unmix_xcalloc(ck->n ? ck->n : 1, sizeof *sorted);
  for (size_t i = 0; i < ck->n; i++) sorted[i] = ck->tensors[pd[i].idx];
  free(ck->tensors);
  ck->tensors = sorted;
  /* Read the data in file order, keeping the CRC of the whole data region. */
  uint32_t crc = (uint32_t)crc32(0L, Z_NULL, 0);
  for (size_t i = 0; i < ck->n && st == UNMIX_OK; i++) {
    struct unmix_ckpt_tensor *t = &ck->tensors[i];
    if (!t->nbytes) continue;
    t->data = malloc(t->nbytes);
    if (!t->data) {
      st = unmix_error_set(UNMIX_ERR_NOMEM, "%s: tensor '%s': cannot allocate %zu bytes", path, t->name, t->nbytes);
      break;
    }
    t->owned = true;
    st = unmix_read_exact(fd, t->data, t->nbytes, (long long)(8 + n + pd[i].begin), path);
    if (st != UNMIX_OK) unmix_error_wrap(st, "tensor '%s'", t->name);
    else crc = crc_update(crc, t->data, t->nbytes);
  }
  free(pd);
  if (st != UNMIX_OK) return st;
  for (size_t i = 0; i < ck->n; i++) crc = crc_layout(crc, &ck->tensors[i]);
  const char *want = unmix_ckpt_meta(ck, UNMIX_CKPT_CRC_KEY);
  if (want) {
    char got[16];
    snprintf(got, sizeof got, "%08" PRIx32, crc);
    if (strcmp(want, got) != 0)
      return unmix_error_set(UNMIX_ERR_FORMAT, "%s: data CRC-32 is %s but the header records %.16s: the file is corrupt",
                             path, got, want);
    ck->crc_verified = true;
  } else if (unmix_ckpt_is_ours(ck)) {
    /* every file we write carries the CRC: one without it was edited or damaged */
    return unmix_error_set(UNMIX_ERR_FORMAT,
                           "%s: written by unmix (it has unmix.* entries) but its '%s' key is missing: the header was "
                           "edited or damaged, so its data cannot be trusted",
                           path, UNMIX_CKPT_CRC_KEY);
  }
  return unmix_ckpt_check_finite(ck, path);
}

bool unmix_ckpt_is_ours(const struct unmix_ckpt *ck) {
  for (size_t i = 0; i < ck->n_meta; i++)
    if (!strncmp(ck->meta_keys[i], "unmix.", 6) && strcmp(ck->meta_keys[i], UNMIX_CKPT_CRC_KEY) != 0) return true;
  for (size_t i = 0; i < ck->n; i++)
    if (!strncmp(ck->tensors[i].name, "unmix.", 6)) return true;
  return false;
}

unmix_status unmix_ckpt_load(const char *path, struct unmix_ckpt **out) {
  *out = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return unmix_error_set(UNMIX_ERR_IO, "cannot open checkpoint '%s': %s", path, strerror(errno));
  struct unmix_ckpt *ck = unmix_ckpt_new();
  ck->path = unmix_xstrdup(path);
  unmix_status st = load_impl(fd, path, ck);
  close(fd);
  if (st != UNMIX_OK) {
    unmix_ckpt_free(ck);
    return st;
  }
  *out = ck;
  return UNMIX_OK;
}

unmix_status unmix_ckpt_read(const struct unmix_ckpt *ck, const char *name, enum unmix_ckpt_dtype dtype, int ndim,
                             const int64_t *shape, void *dst) {
  const char *file = ck->path ? ck->path : "checkpoint";
  const struct unmix_ckpt_tensor *t = unmix_ckpt_find(ck, name);
  if (!t) return unmix_error_set(UNMIX_ERR_FORMAT, "%s: tensor '%s' is missing", file, name);
  if (t->dtype != dtype)
    return unmix_error_set(UNMIX_ERR_FORMAT, "%s: tensor '%s' is %s, expected %s", file, name,
                           g_dtype_names[t->dtype], unmix_ckpt_dtype_name(dtype));
  bool same = t->ndim == ndim;
  for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
  if (!same) {
    char a[160], b[160];
    shape_str(t->ndim, t->shape, a, sizeof a);
    shape_str(ndim, shape, b, sizeof b);
    return unmix_error_set(UNMIX_ERR_FORMAT, "%s: tensor '%s' has shape %s, expected %s", file, name, a, b);
  }
  if (t->nbytes) memcpy(dst, t->data, t->nbytes);
  return UNMIX_OK;
}
