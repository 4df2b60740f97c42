/* A minimal pickle reader for torchvision's CIFAR python release (see cifar_pickle.h): a small
 * stack machine over the opcodes those files use (protocol 2; the bytes/unicode and framing
 * opcodes of later protocols too), no code execution: GLOBAL and REDUCE only record names. */
#include "core/data/cifar_pickle.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/data/dataset_impl.h"
#include "core/io/atomic.h"
#include "core/util/fs.h"

enum pk { PK_NONE, PK_BOOL, PK_INT, PK_STR, PK_LIST, PK_TUPLE, PK_DICT, PK_GLOBAL, PK_OBJ, PK_MARK };

struct pobj {
  enum pk k;
  int64_t i;           /* PK_INT, PK_BOOL */
  const uint8_t *s;    /* PK_STR (into the file buffer), PK_GLOBAL ("module.name" in name) */
  size_t len;
  struct pobj **items; /* PK_LIST, PK_TUPLE; PK_DICT: key, value, key, value, ... */
  size_t n, cap;
  struct pobj *fn, *args, *state; /* PK_OBJ: fn(*args), then BUILD(state) */
  char name[96];
  struct pobj *next;   /* every object, for freeing */
};

struct pm {
  const char *path;
  const uint8_t *b;
  size_t len, pos;
  struct pobj **stack;
  size_t sp, scap;
  struct pobj **memo;
  size_t nmemo;
  struct pobj *all;
};

static struct pobj *obj(struct pm *m, enum pk k) {
  struct pobj *o = unmix_xcalloc(1, sizeof *o);
  o->k = k;
  o->next = m->all;
  m->all = o;
  return o;
}

static void push_item(struct pobj *c, struct pobj *x) {
  if (c->n == c->cap) {
    c->cap = c->cap ? 2 * c->cap : 16;
    c->items = unmix_xrealloc(c->items, c->cap * sizeof *c->items);
  }
  c->items[c->n++] = x;
}

static unmix_status bad(struct pm *m, const char *what) {
  return UNMIX_FAIL(UNMIX_ERR_FORMAT, "%s: at byte %zu: %s (expected torchvision's CIFAR python format: "
                                      "a pickled dict with 'data' and the labels)", m->path, m->pos, what);
}

static unmix_status push(struct pm *m, struct pobj *o) {
  if (m->sp == m->scap) {
    m->scap = m->scap ? 2 * m->scap : 64;
    m->stack = unmix_xrealloc(m->stack, m->scap * sizeof *m->stack);
  }
  m->stack[m->sp++] = o;
  return UNMIX_OK;
}

static unmix_status pop(struct pm *m, struct pobj **o) {
  if (m->sp == 0) return bad(m, "stack underflow");
  *o = m->stack[--m->sp];
  return UNMIX_OK;
}

static unmix_status need(struct pm *m, size_t n) {
  return m->len - m->pos >= n ? UNMIX_OK : bad(m, "the file ends inside an opcode (truncated)");
}

static uint64_t le(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

/* Index of the topmost MARK. */
static unmix_status find_mark(struct pm *m, size_t *at) {
  for (size_t i = m->sp; i-- > 0;)
    if (m->stack[i]->k == PK_MARK) {
      *at = i;
      return UNMIX_OK;
    }
  return bad(m, "no MARK on the stack");
}

static unmix_status memo_put(struct pm *m, uint64_t idx) {
  if (m->sp == 0) return bad(m, "memo store with an empty stack");
  if (idx > m->len) return bad(m, "memo index out of range");
  if (idx >= m->nmemo) {
    size_t n = (size_t)idx + 1;
    m->memo = unmix_xrealloc(m->memo, n * sizeof *m->memo);
    memset(m->memo + m->nmemo, 0, (n - m->nmemo) * sizeof *m->memo);
    m->nmemo = n;
  }
  m->memo[idx] = m->stack[m->sp - 1];
  return UNMIX_OK;
}

static unmix_status string_op(struct pm *m, int lenbytes) {
  UNMIX_TRY(need(m, (size_t)lenbytes));
  uint64_t n = le(m->b + m->pos, lenbytes);
  m->pos += (size_t)lenbytes;
  if (n > m->len - m->pos) return bad(m, "a string runs past the end of the file (truncated)");
  struct pobj *o = obj(m, PK_STR);
  o->s = m->b + m->pos;
  o->len = (size_t)n;
  m->pos += (size_t)n;
  return push(m, o);
}

static unmix_status run(struct pm *m, struct pobj **result) {
  for (;;) {
    UNMIX_TRY(need(m, 1));
    const size_t at = m->pos;
    const uint8_t op = m->b[m->pos++];
    struct pobj *a = NULL, *b = NULL, *c = NULL;
    size_t mk = 0;
    switch (op) {
      case 0x80: /* PROTO */
        UNMIX_TRY(need(m, 1));
        if (m->b[m->pos] > 5) return bad(m, "pickle protocol above 5");
        m->pos++;
        break;
      case 0x95: /* FRAME */
        UNMIX_TRY(need(m, 8));
        m->pos += 8;
        break;
      case '}': UNMIX_TRY(push(m, obj(m, PK_DICT))); break;
      case ']': UNMIX_TRY(push(m, obj(m, PK_LIST))); break;
      case ')': UNMIX_TRY(push(m, obj(m, PK_TUPLE))); break;
      case '(': UNMIX_TRY(push(m, obj(m, PK_MARK))); break;
      case 'N': UNMIX_TRY(push(m, obj(m, PK_NONE))); break;
      case 0x88:
      case 0x89:
        a = obj(m, PK_BOOL);
        a->i = op == 0x88;
        UNMIX_TRY(push(m, a));
        break;
      case 'K':
      case 'M':
      case 'J': {
        int nb = op == 'K' ? 1 : op == 'M' ? 2 : 4;
        UNMIX_TRY(need(m, (size_t)nb));
        a = obj(m, PK_INT);
        uint64_t v = le(m->b + m->pos, nb);
        a->i = op == 'J' ? (int64_t)(int32_t)(uint32_t)v : (int64_t)v;
        m->pos += (size_t)nb;
        UNMIX_TRY(push(m, a));
        break;
      }
      case 0x8a: { /* LONG1: little-endian two's complement */
        UNMIX_TRY(need(m, 1));
        int nb = m->b[m->pos++];
        if (nb > 8) return bad(m, "an integer wider than 64 bits");
        UNMIX_TRY(need(m, (size_t)nb));
        uint64_t v = le(m->b + m->pos, nb);
        if (nb > 0 && nb < 8 && (m->b[m->pos + (size_t)nb - 1] & 0x80)) v |= ~0ULL << (8 * nb);
        m->pos += (size_t)nb;
        a = obj(m, PK_INT);
        a->i = (int64_t)v;
        UNMIX_TRY(push(m, a));
        break;
      }
      case 'U': case 'C': case 0x8c: UNMIX_TRY(string_op(m, 1)); break; /* short (bin)string/bytes/unicode */
      case 'T': case 'B': case 'X': UNMIX_TRY(string_op(m, 4)); break;
      case 0x8e: case 0x8d: UNMIX_TRY(string_op(m, 8)); break;
      case 'q':
        UNMIX_TRY(need(m, 1));
        UNMIX_TRY(memo_put(m, m->b[m->pos++]));
        break;
      case 'r':
        UNMIX_TRY(need(m, 4));
        UNMIX_TRY(memo_put(m, le(m->b + m->pos, 4)));
        m->pos += 4;
        break;
      case 0x94: UNMIX_TRY(memo_put(m, m->nmemo)); break; /* MEMOIZE */
      case 'h':
      case 'j': {
        int nb = op == 'h' ? 1 : 4;
        UNMIX_TRY(need(m, (size_t)nb));
        uint64_t idx = le(m->b + m->pos, nb);
        m->pos += (size_t)nb;
        if (idx >= m->nmemo || !m->memo[idx]) return bad(m, "memo fetch of an unset index");
        UNMIX_TRY(push(m, m->memo[idx]));
        break;
      }
      case 'a':
        UNMIX_TRY(pop(m, &b));
        UNMIX_TRY(pop(m, &a));
        if (a->k != PK_LIST) return bad(m, "APPEND to a non-list");
        push_item(a, b);
        UNMIX_TRY(push(m, a));
        break;
      case 'e':
      case 'u':
      case 't':
        UNMIX_TRY(find_mark(m, &mk));
        if (op == 't') {
          a = obj(m, PK_TUPLE);
        } else {
          if (mk == 0) return bad(m, "APPENDS/SETITEMS without a container");
          a = m->stack[mk - 1];
          if (a->k != (op == 'e' ? PK_LIST : PK_DICT)) return bad(m, "APPENDS/SETITEMS on the wrong container");
          if (op == 'u' && (m->sp - mk - 1) % 2) return bad(m, "SETITEMS with an odd number of items");
        }
        for (size_t i = mk + 1; i < m->sp; i++) push_item(a, m->stack[i]);
        m->sp = mk;
        if (op == 't') UNMIX_TRY(push(m, a));
        break;
      case 's':
        UNMIX_TRY(pop(m, &c));
        UNMIX_TRY(pop(m, &b));
        UNMIX_TRY(pop(m, &a));
        if (a->k != PK_DICT) return bad(m, "SETITEM on a non-dict");
        push_item(a, b);
        push_item(a, c);
        UNMIX_TRY(push(m, a));
        break;
      case 0x85:
      case 0x86:
      case 0x87: {
        int n = op - 0x84;
        if (m->sp < (size_t)n) return bad(m, "stack underflow");
        a = obj(m, PK_TUPLE);
        for (int i = n; i > 0; i--) push_item(a, m->stack[m->sp - (size_t)i]);
        m->sp -= (size_t)n;
        UNMIX_TRY(push(m, a));
        break;
      }
      case 'c': { /* GLOBAL module\nname\n: recorded, never imported */
        a = obj(m, PK_GLOBAL);
        size_t k = 0;
        for (int part = 0; part < 2; part++) {
          while (m->pos < m->len && m->b[m->pos] != '\n') {
            if (k + 2 < sizeof a->name) a->name[k++] = (char)m->b[m->pos];
            m->pos++;
          }
          if (m->pos >= m->len) return bad(m, "GLOBAL runs past the end of the file");
          m->pos++;
          if (part == 0) a->name[k++] = '.';
        }
        a->name[k] = 0;
        UNMIX_TRY(push(m, a));
        break;
      }
      case 0x93: /* STACK_GLOBAL */
        UNMIX_TRY(pop(m, &b));
        UNMIX_TRY(pop(m, &a));
        if (a->k != PK_STR || b->k != PK_STR) return bad(m, "STACK_GLOBAL without two names");
        c = obj(m, PK_GLOBAL);
        snprintf(c->name, sizeof c->name, "%.*s.%.*s", (int)(a->len < 40 ? a->len : 40), (const char *)a->s,
                 (int)(b->len < 40 ? b->len : 40), (const char *)b->s);
        UNMIX_TRY(push(m, c));
        break;
      case 'R':
      case 0x81: /* REDUCE, NEWOBJ: an object made by a named callable */
        UNMIX_TRY(pop(m, &b));
        UNMIX_TRY(pop(m, &a));
        if (a->k != PK_GLOBAL || b->k != PK_TUPLE) return bad(m, "REDUCE without a callable and an argument tuple");
        c = obj(m, PK_OBJ);
        c->fn = a;
        c->args = b;
        UNMIX_TRY(push(m, c));
        break;
      case 'b':
        UNMIX_TRY(pop(m, &b));
        UNMIX_TRY(pop(m, &a));
        if (a->k != PK_OBJ) return bad(m, "BUILD on a plain value");
        a->state = b;
        UNMIX_TRY(push(m, a));
        break;
      case '.':
        return pop(m, result);
      default: {
        char what[96];
        m->pos = at;
        snprintf(what, sizeof what, "unsupported pickle opcode 0x%02x", op);
        return bad(m, what);
      }
    }
  }
}

static bool str_is(const struct pobj *o, const char *s) {
  return o && o->k == PK_STR && o->len == strlen(s) && !memcmp(o->s, s, o->len);
}

static const struct pobj *dict_get(const struct pobj *d, const char *key) {
  for (size_t i = 0; i + 1 < d->n; i += 2)
    if (str_is(d->items[i], key)) return d->items[i + 1];
  return NULL;
}

static bool global_is(const struct pobj *o, const char *suffix) {
  size_t n = strlen(o->name), k = strlen(suffix);
  return o->k == PK_GLOBAL && n >= k && !strcmp(o->name + n - k, suffix) && !strncmp(o->name, "numpy", 5);
}

/* The uint8 (n, 3072) array: numpy's _reconstruct + BUILD((version, shape, dtype, fortran, bytes)). */
static unmix_status get_array(const char *path, const struct pobj *a, int64_t *n, const uint8_t **data) {
  if (!a || a->k != PK_OBJ || !global_is(a->fn, "._reconstruct") || !a->state || a->state->k != PK_TUPLE ||
      a->state->n != 5)
    return UNMIX_FAIL(UNMIX_ERR_FORMAT, "%s: 'data' is not a pickled numpy array", path);
  const struct pobj *shape = a->state->items[1], *dt = a->state->items[2], *fortran = a->state->items[3],
                    *raw = a->state->items[4];
  if (!dt || dt->k != PK_OBJ || !global_is(dt->fn, ".dtype") || dt->args->n < 1 || !str_is(dt->args->items[0], "u1"))
    return UNMIX_FAIL(UNMIX_ERR_FORMAT, "%s: 'data' is not a uint8 array", path);
  if (shape->k != PK_TUPLE || shape->n != 2 || shape->items[0]->k != PK_INT || shape->items[1]->k != PK_INT ||
      shape->items[1]->i != 3072 || shape->items[0]->i < 1)
    return UNMIX_FAIL(UNMIX_ERR_FORMAT, "%s: 'data' must have shape (N, 3072)", path);
  if (fortran->k == PK_BOOL && fortran->i)
    return UNMIX_FAIL(UNMIX_ERR_FORMAT, "%s: 'data' is stored in Fortran order (not torchvision's files)", path);
  if (raw->k != PK_STR || raw->len != (size_t)shape->items[0]->i * 3072)
    return UNMIX_FAIL(UNMIX_ERR_FORMAT, "%s: 'data' holds %zu bytes, its shape (%lld, 3072) needs %lld", path,
                      raw->k == PK_STR ? raw->len : 0, (long long)shape->items[0]->i,
                      (long long)shape->items[0]->i * 3072);
  *n = shape->items[0]->i;
  *data = raw->s;
  return UNMIX_OK;
}

static unmix_status get_labels(const char *path, const struct pobj *d, const char *key, int64_t n, int nclass,
                               uint8_t **out) {
  const struct pobj *l = dict_get(d, key);
  if (!l || (l->k != PK_LIST && l->k != PK_TUPLE))
    return UNMIX_FAIL(UNMIX_ERR_FORMAT, "%s: no '%s' list (is it a %s file?)", path, key,
                      nclass == 10 ? "CIFAR-10" : "CIFAR-100");
  if ((int64_t)l->n != n)
    return UNMIX_FAIL(UNMIX_ERR_FORMAT, "%s: '%s' has %zu entries for %lld images", path, key, l->n, (long long)n);
  *out = unmix_xmalloc((size_t)n);
  for (int64_t i = 0; i < n; i++) {
    const struct pobj *v = l->items[i];
    if (v->k != PK_INT || v->i < 0 || v->i >= nclass) {
      free(*out);
      *out = NULL;
      return UNMIX_FAIL(UNMIX_ERR_FORMAT, "%s: '%s'[%lld] is not a label in 0..%d", path, key, (long long)i, nclass - 1);
    }
    (*out)[i] = (uint8_t)v->i;
  }
  return UNMIX_OK;
}

void unmix_cifar_batch_free(struct unmix_cifar_batch *b) {
  if (!b) return;
  free(b->pixels);
  free(b->labels);
  free(b->coarse);
  memset(b, 0, sizeof *b);
}

unmix_status unmix_cifar_pickle_read(const char *path, bool c100, struct unmix_cifar_batch *out) {
  memset(out, 0, sizeof *out);
  uint8_t *buf = NULL;
  size_t len = 0;
  UNMIX_TRY(unmix_fs_read(path, 0, &buf, &len));
  struct pm m = {.path = path, .b = buf, .len = len};
  struct pobj *root = NULL;
  unmix_status st = len >= 2 && buf[0] == 0x80 ? run(&m, &root)
                                                 : UNMIX_FAIL(UNMIX_ERR_FORMAT, "%s: not a pickle file (no protocol "
                                                                                "header)", path);
  if (st == UNMIX_OK && (!root || root->k != PK_DICT))
    st = UNMIX_FAIL(UNMIX_ERR_FORMAT, "%s: the pickle holds no dict", path);
  int64_t n = 0;
  const uint8_t *data = NULL;
  if (st == UNMIX_OK) st = get_array(path, dict_get(root, "data"), &n, &data);
  if (st == UNMIX_OK) st = get_labels(path, root, c100 ? "fine_labels" : "labels", n, c100 ? 100 : 10, &out->labels);
  if (st == UNMIX_OK && c100) st = get_labels(path, root, "coarse_labels", n, 20, &out->coarse);
  if (st == UNMIX_OK) {
    out->n = n;
    out->pixels = unmix_xmalloc((size_t)n * 3072);
    memcpy(out->pixels, data, (size_t)n * 3072);
  } else {
    unmix_cifar_batch_free(out);
  }
  while (m.all) {
    struct pobj *next = m.all->next;
    free(m.all->items);
    free(m.all);
    m.all = next;
  }
  free(m.stack);
  free(m.memo);
  free(buf);
  return st;
}

bool unmix_cifar_find_python(const char *root, bool c100, char *buf, size_t len) {
  const char *sub = c100 ? "cifar-100-python" : "cifar-10-batches-py";
  const char *probe = c100 ? "test" : "test_batch";
  char p[UNMIX_PATH_MAX + 64];
  snprintf(buf, len, "%s/%s", root, sub);
  snprintf(p, sizeof p, "%s/%s", buf, probe);
  if (unmix_is_file(p)) return true;
  snprintf(buf, len, "%s", root);
  snprintf(p, sizeof p, "%s/%s", buf, probe);
  return unmix_is_file(p);
}

unmix_status unmix_cifar_import_python(const char *src, const char *dst, bool c100, int64_t *n_train,
                                       int64_t *n_test) {
  *n_train = *n_test = 0;
  char from[UNMIX_PATH_MAX];
  if (!unmix_cifar_find_python(src, c100, from, sizeof from))
    return UNMIX_FAIL(UNMIX_ERR_IO, "%s: no %s here (expected %s/%s/%s, torchvision's download)", src,
                      c100 ? "CIFAR-100 python release" : "CIFAR-10 python release", src,
                      c100 ? "cifar-100-python" : "cifar-10-batches-py", c100 ? "test" : "test_batch");
  static const char *const in10[] = {"data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5",
                                     "test_batch"};
  static const char *const out10[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                      "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
  static const char *const in100[] = {"train", "test"}, *const out100[] = {"train.bin", "test.bin"};
  const char *const *in = c100 ? in100 : in10, *const *out = c100 ? out100 : out10;
  const int nf = c100 ? 2 : 6;
  char dir[UNMIX_PATH_MAX];
  snprintf(dir, sizeof dir, "%s/%s", dst, c100 ? "cifar-100-binary" : "cifar-10-batches-bin");
  for (char *p = dir + 1;; p++) /* mkdir -p */
    if (*p == '/' || !*p) {
      char keep = *p;
      *p = 0;
      int bad_dir = mkdir(dir, 0777) != 0 && errno != EEXIST;
      *p = keep;
      if (bad_dir) return UNMIX_FAIL(UNMIX_ERR_IO, "%s: cannot create: %s", dir, strerror(errno));
      if (!keep) break;
    }
  for (int f = 0; f < nf; f++) {
    char ip[UNMIX_PATH_MAX + 32], op[UNMIX_PATH_MAX + 32];
    snprintf(ip, sizeof ip, "%s/%s", from, in[f]);
    snprintf(op, sizeof op, "%s/%s", dir, out[f]);
    struct unmix_cifar_batch b;
    UNMIX_TRY(unmix_cifar_pickle_read(ip, c100, &b));
    const size_t rec = c100 ? 3074 : 3073;
    uint8_t *bin = malloc((size_t)b.n * rec);
    if (!bin) {
      unmix_cifar_batch_free(&b);
      return UNMIX_FAIL(UNMIX_ERR_NOMEM, "%s: cannot allocate the binary records", ip);
    }
    for (int64_t i = 0; i < b.n; i++) { /* the binary release: [coarse,] label, 3072 pixels */
      uint8_t *r = bin + (size_t)i * rec;
      if (c100) *r++ = b.coarse[i];
      *r++ = b.labels[i];
      memcpy(r, b.pixels + (size_t)i * 3072, 3072);
    }
    struct unmix_chunk ch = {bin, (size_t)b.n * rec};
    unmix_status st = unmix_atomic_write(op, &ch, 1);
    if (f == nf - 1) *n_test += b.n;
    else *n_train += b.n;
    free(bin);
    unmix_cifar_batch_free(&b);
    UNMIX_TRY(st);
  }
  return UNMIX_OK;
}
