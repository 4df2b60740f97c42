/* Python pickle (protocol 3) writer for dicts of numpy arrays (pickle.h). The opcodes are the
 * ones pickle.dumps(obj, protocol=3) emits for a dict of ndarrays, without the memo (BINPUT):
 * repeating the two GLOBALs per array costs a few bytes and keeps the writer stateless. */
#include "core/io/pickle.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/io/atomic.h"

/* opcodes (Lib/pickletools.py) */
enum {
  OP_PROTO = 0x80,
  OP_STOP = '.',
  OP_MARK = '(',
  OP_EMPTY_DICT = '}',
  OP_SETITEMS = 'u',
  OP_EMPTY_TUPLE = ')',
  OP_TUPLE = 't',
  OP_TUPLE1 = 0x85,
  OP_TUPLE3 = 0x87,
  OP_BININT1 = 'K',
  OP_BININT = 'J',
  OP_NONE = 'N',
  OP_NEWTRUE = 0x88,
  OP_NEWFALSE = 0x89,
  OP_BINUNICODE = 'X',
  OP_SHORT_BINBYTES = 'C',
  OP_BINBYTES = 'B',
  OP_GLOBAL = 'c',
  OP_REDUCE = 'R',
  OP_BUILD = 'b',
};

/* The output as a list of chunks: small opcode runs in `ops` (appended), tensor data borrowed
 * from the checkpoint (never copied: a ResNet-50 is 100 MB). A chunk refers to `ops` by offset
 * because `ops` moves as it grows. */
struct piece {
  bool borrowed;
  size_t off, len; /* into ops when !borrowed */
  const void *data;
};
struct pout {
  uint8_t *ops;
  size_t len, cap;
  struct piece *pieces;
  size_t np, pcap;
  size_t open_from; /* start of the current ops run not yet closed into a piece */
};

static void put(struct pout *o, const void *p, size_t n) {
  if (o->len + n > o->cap) {
    size_t cap = o->cap ? o->cap : 4096;
    while (o->len + n > cap) cap *= 2;
    o->ops = unmix_xrealloc(o->ops, cap);
    o->cap = cap;
  }
  memcpy(o->ops + o->len, p, n);
  o->len += n;
}
static void put1(struct pout *o, int b) {
  uint8_t c = (uint8_t)b;
  put(o, &c, 1);
}
static void put_u32(struct pout *o, uint32_t v) {
  uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
  put(o, b, 4);
}
static void push_piece(struct pout *o, struct piece p) {
  if (o->np == o->pcap) {
    o->pcap = o->pcap ? 2 * o->pcap : 64;
    o->pieces = unmix_xrealloc(o->pieces, o->pcap * sizeof *o->pieces);
  }
  o->pieces[o->np++] = p;
}
static void close_run(struct pout *o) {
  if (o->len > o->open_from) push_piece(o, (struct piece){false, o->open_from, o->len - o->open_from, NULL});
  o->open_from = o->len;
}

static void op_str(struct pout *o, const char *s) { /* BINUNICODE: u32 length + UTF-8 */
  size_t n = strlen(s);
  put1(o, OP_BINUNICODE);
  put_u32(o, (uint32_t)n);
  put(o, s, n);
}
static void op_int(struct pout *o, long long v) {
  if (v >= 0 && v < 256) {
    put1(o, OP_BININT1);
    put1(o, (int)v);
  } else {
    put1(o, OP_BININT);
    put_u32(o, (uint32_t)(int32_t)v);
  }
}
static void op_global(struct pout *o, const char *module, const char *name) {
  put1(o, OP_GLOBAL);
  put(o, module, strlen(module));
  put1(o, '\n');
  put(o, name, strlen(name));
  put1(o, '\n');
}

/* numpy.dtype(code, False, True) with the state numpy's own dtype.__reduce__ gives. */
static void op_dtype(struct pout *o, const char *code, const char *byteorder) {
  op_global(o, "numpy", "dtype");
  op_str(o, code);
  put1(o, OP_NEWFALSE);
  put1(o, OP_NEWTRUE);
  put1(o, OP_TUPLE3);
  put1(o, OP_REDUCE);
  put1(o, OP_MARK);
  op_int(o, 3);
  op_str(o, byteorder);
  put1(o, OP_NONE);
  put1(o, OP_NONE);
  put1(o, OP_NONE);
  op_int(o, -1);
  op_int(o, -1);
  op_int(o, 0);
  put1(o, OP_TUPLE);
  put1(o, OP_BUILD);
}

static void dtype_code(enum unmix_ckpt_dtype dt, const char **code, const char **order) {
  *order = "<";
  switch (dt) {
    case UNMIX_CKPT_F32: *code = "f4"; break;
    case UNMIX_CKPT_F64: *code = "f8"; break;
    case UNMIX_CKPT_I32: *code = "i4"; break;
    case UNMIX_CKPT_I64: *code = "i8"; break;
    default: *code = "u1"; *order = "|"; break; /* one byte: no byte order */
  }
}

/* numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b'b') then
 * __setstate__((1, shape, dtype, False, raw bytes)). */
static void op_array(struct pout *o, const struct unmix_ckpt_tensor *t) {
  op_global(o, "numpy.core.multiarray", "_reconstruct");
  op_global(o, "numpy", "ndarray");
  op_int(o, 0);
  put1(o, OP_TUPLE1);
  put1(o, OP_SHORT_BINBYTES);
  put1(o, 1);
  put1(o, 'b');
  put1(o, OP_TUPLE3);
  put1(o, OP_REDUCE);
  put1(o, OP_MARK);
  op_int(o, 1);
  if (t->ndim == 0) {
    put1(o, OP_EMPTY_TUPLE);
  } else {
    put1(o, OP_MARK);
    for (int d = 0; d < t->ndim; d++) op_int(o, t->shape[d]);
    put1(o, OP_TUPLE);
  }
  const char *code, *order;
  dtype_code(t->dtype, &code, &order);
  op_dtype(o, code, order);
  put1(o, OP_NEWFALSE); /* C order */
  put1(o, OP_BINBYTES);
  put_u32(o, (uint32_t)t->nbytes);
  close_run(o);
  if (t->nbytes) push_piece(o, (struct piece){true, 0, t->nbytes, t->data});
  put1(o, OP_TUPLE);
  put1(o, OP_BUILD);
}

unmix_status unmix_pickle_write_arrays(const char *path, const struct unmix_ckpt *ck, const char *const *names,
                                       const char *author, bool matching_heuristics) {
  for (size_t i = 0; i < ck->n; i++) {
    const struct unmix_ckpt_tensor *t = &ck->tensors[i];
    if (!names[i] || !names[i][0])
      return unmix_error_set(UNMIX_ERR_ARG, "%s: tensor %s has an empty name in the pickle", path, t->name);
    if (t->nbytes > UINT32_MAX)
      return unmix_error_set(UNMIX_ERR_ARG, "%s: tensor %s has %zu bytes, over the 4 GiB a protocol-3 pickle holds",
                             path, names[i], t->nbytes);
    for (int d = 0; d < t->ndim; d++)
      if (t->shape[d] > INT32_MAX)
        return unmix_error_set(UNMIX_ERR_ARG, "%s: tensor %s: dimension %d is too large", path, names[i], d);
  }
  struct pout o = {0};
  put1(&o, OP_PROTO);
  put1(&o, 3);
  put1(&o, OP_EMPTY_DICT);
  put1(&o, OP_MARK);
  op_str(&o, "model");
  put1(&o, OP_EMPTY_DICT);
  if (ck->n) {
    put1(&o, OP_MARK);
    for (size_t i = 0; i < ck->n; i++) {
      op_str(&o, names[i]);
      op_array(&o, &ck->tensors[i]);
    }
    put1(&o, OP_SETITEMS);
  }
  op_str(&o, "__author__");
  op_str(&o, author ? author : "");
  op_str(&o, "matching_heuristics");
  put1(&o, matching_heuristics ? OP_NEWTRUE : OP_NEWFALSE);
  put1(&o, OP_SETITEMS);
  put1(&o, OP_STOP);
  close_run(&o);
  struct unmix_chunk *ch = unmix_xmalloc((o.np ? o.np : 1) * sizeof *ch);
  for (size_t i = 0; i < o.np; i++)
    ch[i] = (struct unmix_chunk){o.pieces[i].borrowed ? o.pieces[i].data : o.ops + o.pieces[i].off, o.pieces[i].len};
  unmix_status st = unmix_atomic_write(path, ch, o.np);
  free(ch);
  free(o.pieces);
  free(o.ops);
  return st;
}
