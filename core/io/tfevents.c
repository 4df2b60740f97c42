/* TensorBoard event files (tfevents.h): a hand-written encoder/decoder for the few protobuf
 * fields scalar summaries use, so the trainer needs no TensorFlow, protobuf or Python. The
 * field numbers are those of tensorflow/core/util/event.proto and framework/summary.proto:
 *   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
 *   Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; } */
#include "core/io/tfevents.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util/fs.h"

/* ---- CRC-32C ------------------------------------------------------------------------------- */

uint32_t unmix_crc32c(const void *data, size_t n) {
  static uint32_t table[256];
  static bool ready;
  if (!ready) { /* idempotent: two threads racing here write the same values */
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      table[i] = c;
    }
    ready = true;
  }
  const uint8_t *p = data;
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint32_t unmix_tfrecord_mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

/* ---- protobuf encoding ---------------------------------------------------------------------- */

struct buf {
  uint8_t *p;
  size_t len, cap;
};

static void put(struct buf *b, const void *d, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (b->len + n > cap) cap *= 2;
    b->p = unmix_xrealloc(b->p, cap);
    b->cap = cap;
  }
  memcpy(b->p + b->len, d, n);
  b->len += n;
}
static void put_varint(struct buf *b, uint64_t v) {
  uint8_t t[10];
  int n = 0;
  do {
    t[n] = (uint8_t)(v & 0x7F);
    v >>= 7;
    if (v) t[n] |= 0x80;
    n++;
  } while (v);
  put(b, t, (size_t)n);
}
static void put_le(struct buf *b, uint64_t v, int bytes) {
  uint8_t t[8];
  for (int i = 0; i < bytes; i++) t[i] = (uint8_t)(v >> (8 * i));
  put(b, t, (size_t)bytes);
}
static void put_key(struct buf *b, int field, int wire) { put_varint(b, (uint64_t)(field << 3 | wire)); }
static void put_bytes(struct buf *b, int field, const void *d, size_t n) {
  put_key(b, field, 2);
  put_varint(b, n);
  put(b, d, n);
}
static void put_double(struct buf *b, int field, double v) {
  uint64_t u;
  memcpy(&u, &v, 8);
  put_key(b, field, 1);
  put_le(b, u, 8);
}
static void put_float(struct buf *b, int field, float v) {
  uint32_t u;
  memcpy(&u, &v, 4);
  put_key(b, field, 5);
  put_le(b, u, 4);
}

/* ---- the writer ----------------------------------------------------------------------------- */

struct unmix_tfevents {
  FILE *f;
  char *path;
  unmix_status err; /* the first write error */
};

static unmix_status write_record(struct unmix_tfevents *w, const struct buf *data) {
  if (w->err != UNMIX_OK) return w->err;
  uint8_t hdr[12];
  uint64_t n = data->len;
  for (int i = 0; i < 8; i++) hdr[i] = (uint8_t)(n >> (8 * i));
  uint32_t lc = unmix_tfrecord_mask(unmix_crc32c(hdr, 8)), dc = unmix_tfrecord_mask(unmix_crc32c(data->p, data->len));
  for (int i = 0; i < 4; i++) hdr[8 + i] = (uint8_t)(lc >> (8 * i));
  uint8_t tail[4];
  for (int i = 0; i < 4; i++) tail[i] = (uint8_t)(dc >> (8 * i));
  if (fwrite(hdr, 1, 12, w->f) != 12 || fwrite(data->p, 1, data->len, w->f) != data->len ||
      fwrite(tail, 1, 4, w->f) != 4 || fflush(w->f) != 0)
    w->err = unmix_error_set(UNMIX_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
  return w->err;
}

unmix_status unmix_tfevents_create(const char *path, double wall_time, struct unmix_tfevents **out) {
  *out = NULL;
  FILE *f = fopen(path, "wb");
  if (!f) return unmix_error_set(UNMIX_ERR_IO, "cannot create %s: %s", path, strerror(errno));
  struct unmix_tfevents *w = unmix_xmalloc(sizeof *w);
  w->f = f;
  w->path = unmix_xstrdup(path);
  w->err = UNMIX_OK;
  struct buf e = {0};
  put_double(&e, 1, wall_time);
  static const char version[] = "brain.Event:2";
  put_bytes(&e, 3, version, sizeof version - 1);
  unmix_status st = write_record(w, &e);
  free(e.p);
  if (st != UNMIX_OK) {
    unmix_tfevents_close(w);
    return st;
  }
  *out = w;
  return UNMIX_OK;
}

unmix_status unmix_tfevents_scalars(struct unmix_tfevents *w, double wall_time, int64_t step, const char *const *tags,
                                    const float *values, int n) {
  struct buf summary = {0}, value = {0}, e = {0};
  for (int i = 0; i < n; i++) {
    value.len = 0;
    put_bytes(&value, 1, tags[i], strlen(tags[i]));
    put_float(&value, 2, values[i]);
    put_bytes(&summary, 1, value.p, value.len);
  }
  put_double(&e, 1, wall_time);
  put_key(&e, 2, 0);
  put_varint(&e, (uint64_t)step); /* int64 as varint: two's complement for a negative step */
  put_bytes(&e, 5, summary.p, summary.len);
  unmix_status st = write_record(w, &e);
  free(summary.p);
  free(value.p);
  free(e.p);
  return st;
}

unmix_status unmix_tfevents_close(struct unmix_tfevents *w) {
  if (!w) return UNMIX_OK;
  unmix_status st = w->err;
  if (fclose(w->f) != 0 && st == UNMIX_OK)
    st = unmix_error_set(UNMIX_ERR_IO, "%s: close failed: %s", w->path, strerror(errno));
  free(w->path);
  free(w);
  return st;
}

/* ---- the reader ----------------------------------------------------------------------------- */

struct rd {
  const uint8_t *p, *end;
  bool bad;
};

static uint64_t get_varint(struct rd *r) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (r->p >= r->end) break;
    uint8_t c = *r->p++;
    v |= (uint64_t)(c & 0x7F) << shift;
    if (!(c & 0x80)) return v;
  }
  r->bad = true;
  return 0;
}
static uint64_t get_le(struct rd *r, int bytes) {
  if (r->end - r->p < bytes) {
    r->bad = true;
    return 0;
  }
  uint64_t v = 0;
  for (int i = 0; i < bytes; i++) v |= (uint64_t)r->p[i] << (8 * i);
  r->p += bytes;
  return v;
}
/* A length-delimited field: its sub-range, or bad. */
static struct rd get_sub(struct rd *r) {
  uint64_t n = get_varint(r);
  struct rd s = {r->p, r->p, false};
  if (r->bad || n > (uint64_t)(r->end - r->p)) {
    r->bad = true;
    return s;
  }
  s.end = r->p + n;
  r->p += n;
  return s;
}
static void skip(struct rd *r, int wire) {
  switch (wire) {
    case 0: get_varint(r); break;
    case 1: get_le(r, 8); break;
    case 2: get_sub(r); break;
    case 5: get_le(r, 4); break;
    default: r->bad = true;
  }
}

/* One Event: calls fn per scalar value (or once for file_version). */
static bool decode_event(struct rd r, unmix_tfevents_fn fn, void *ctx) {
  double wall = 0;
  int64_t step = 0;
  struct rd summary = {0};
  bool has_summary = false;
  char *version = NULL;
  while (r.p < r.end && !r.bad) {
    uint64_t key = get_varint(&r);
    int field = (int)(key >> 3), wire = (int)(key & 7);
    if (field == 1 && wire == 1) {
      uint64_t u = get_le(&r, 8);
      memcpy(&wall, &u, 8);
    } else if (field == 2 && wire == 0) {
      step = (int64_t)get_varint(&r);
    } else if (field == 3 && wire == 2) {
      struct rd s = get_sub(&r);
      free(version);
      version = unmix_xmalloc((size_t)(s.end - s.p) + 1);
      memcpy(version, s.p, (size_t)(s.end - s.p));
      version[s.end - s.p] = 0;
    } else if (field == 5 && wire == 2) {
      summary = get_sub(&r);
      has_summary = true;
    } else {
      skip(&r, wire);
    }
  }
  bool ok = !r.bad;
  if (ok && version) fn(ctx, wall, step, NULL, 0, version);
  while (ok && has_summary && summary.p < summary.end) {
    uint64_t key = get_varint(&summary);
    if (summary.bad) break;
    if ((key >> 3) != 1 || (key & 7) != 2) {
      skip(&summary, (int)(key & 7));
      continue;
    }
    struct rd v = get_sub(&summary);
    char tag[256] = "";
    bool has_value = false;
    float value = 0;
    while (v.p < v.end && !v.bad) {
      uint64_t k = get_varint(&v);
      if ((k >> 3) == 1 && (k & 7) == 2) {
        struct rd t = get_sub(&v);
        size_t n = (size_t)(t.end - t.p);
        if (n >= sizeof tag) n = sizeof tag - 1;
        memcpy(tag, t.p, n);
        tag[n] = 0;
      } else if ((k >> 3) == 2 && (k & 7) == 5) {
        uint32_t u = (uint32_t)get_le(&v, 4);
        memcpy(&value, &u, 4);
        has_value = true;
      } else {
        skip(&v, (int)(k & 7));
      }
    }
    if (v.bad) summary.bad = true;
    else if (has_value) fn(ctx, wall, step, tag, value, NULL);
  }
  free(version);
  return ok && !summary.bad;
}

unmix_status unmix_tfevents_read(const char *path, unmix_tfevents_fn fn, void *ctx, int64_t *n_events) {
  uint8_t *b = NULL;
  size_t n = 0;
  UNMIX_TRY(unmix_fs_read(path, 0, &b, &n));
  unmix_status st = UNMIX_OK;
  size_t off = 0;
  int64_t count = 0;
  while (off < n) {
    if (n - off < 12) {
      st = unmix_error_set(UNMIX_ERR_FORMAT, "%s: byte %zu: a truncated record header", path, off);
      break;
    }
    uint64_t len = 0;
    for (int i = 0; i < 8; i++) len |= (uint64_t)b[off + i] << (8 * i);
    uint32_t lc = 0, dc = 0;
    for (int i = 0; i < 4; i++) lc |= (uint32_t)b[off + 8 + i] << (8 * i);
    if (lc != unmix_tfrecord_mask(unmix_crc32c(b + off, 8))) {
      st = unmix_error_set(UNMIX_ERR_FORMAT, "%s: byte %zu: the length's CRC does not match", path, off);
      break;
    }
    if (len > n - off - 12 || n - off - 12 - len < 4) {
      st = unmix_error_set(UNMIX_ERR_FORMAT, "%s: byte %zu: a truncated record (%llu bytes announced)", path, off,
                           (unsigned long long)len);
      break;
    }
    const uint8_t *data = b + off + 12;
    for (int i = 0; i < 4; i++) dc |= (uint32_t)data[len + i] << (8 * i);
    if (dc != unmix_tfrecord_mask(unmix_crc32c(data, len))) {
      st = unmix_error_set(UNMIX_ERR_FORMAT, "%s: byte %zu: the record's CRC does not match", path, off);
      break;
    }
    struct rd r = {data, data + len, false};
    if (!decode_event(r, fn, ctx)) {
      st = unmix_error_set(UNMIX_ERR_FORMAT, "%s: byte %zu: not an Event protobuf", path, off);
      break;
    }
    count++;
    off += 12 + len + 4;
  }
  free(b);
  if (n_events) *n_events = count;
  return st;
}
