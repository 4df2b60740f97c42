/* Manifest loading: libyaml text -> a tree that keeps every node's file:line:column,
 * `base:` inheritance (deep merge, cycle detection), `--set key=value` overrides, then
 * the schema binding of core/io/config.c. */
#include "core/io/manifest.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_TREE_DEPTH 64       /* a manifest is 3 levels deep; deeper means a recursive alias */
#define MAX_TREE_NODES 200000   /* alias expansion bomb guard */
#define MAX_BASE_CHAIN 32
#define MAX_MANIFEST_BYTES (16u << 20)

/* ---- tree basics ------------------------------------------------------------------------ */

static struct unmix_ynode *node_new(enum unmix_ynode_kind kind, const char *file, int line, int col) {
  struct unmix_ynode *n = unmix_xcalloc(1, sizeof *n);
  n->kind = kind;
  n->mark.file = unmix_xstrdup(file);
  n->mark.line = line;
  n->mark.col = col;
  return n;
}

void unmix_ytree_free(struct unmix_ynode *n) {
  if (!n) return;
  for (size_t i = 0; i < n->n; i++) {
    unmix_ytree_free(n->items[i]);
    if (n->kind == UNMIX_YNODE_MAP) {
      free(n->keys[i]);
      free(n->key_marks[i].file);
    }
  }
  free(n->items);
  free(n->keys);
  free(n->key_marks);
  free(n->index);
  free(n->str);
  free(n->mark.file);
  free(n);
}

bool unmix_ynode_is_null(const struct unmix_ynode *n) {
  if (!n || n->kind != UNMIX_YNODE_SCALAR || !n->plain) return false;
  const char *s = n->str;
  return !s[0] || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

const char *unmix_ymark_str(const struct unmix_ymark *m, char *buf, size_t len) {
  if (m->line > 0) snprintf(buf, len, "%s:%d:%d", m->file, m->line, m->col);
  else snprintf(buf, len, "%s", m->file);
  return buf;
}

/* ---- mapping key index --------------------------------------------------------------------- */
/* Small maps (every real manifest section) are scanned; from 8 pairs on, an open-addressing
 * hash (FNV-1a, linear probing, load <= 1/2) finds a key in O(1), so a manifest with many
 * keys parses in linear time. The arrays grow geometrically for the same reason. */
#define INDEX_FROM 8
static unsigned long long g_key_compares;

unsigned long long unmix_ytree_key_compares(void) { return g_key_compares; }

static size_t key_hash(const char *key, size_t len) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)key[i]) * 1099511628211ull;
  return (size_t)h;
}

static bool key_is(const char *k, const char *key, size_t key_len) {
  g_key_compares++;
  return !strncmp(k, key, key_len) && k[key_len] == 0;
}

static void index_put(struct unmix_ynode *map, size_t i) {
  size_t mask = map->index_cap - 1, h = key_hash(map->keys[i], strlen(map->keys[i])) & mask;
  while (map->index[h]) h = (h + 1) & mask;
  map->index[h] = i + 1;
}

static void index_rebuild(struct unmix_ynode *map) {
  free(map->index);
  map->index = NULL;
  map->index_cap = 0;
  if (map->n < INDEX_FROM) return;
  size_t cap = 16;
  while (cap < 2 * (map->n + 1)) cap *= 2;
  map->index = unmix_xcalloc(cap, sizeof *map->index);
  map->index_cap = cap;
  for (size_t i = 0; i < map->n; i++) index_put(map, i);
}

static size_t capacity_for(size_t n) { /* array slots for n pairs: powers of two */
  size_t c = 1;
  while (c < n) c *= 2;
  return c;
}

static void map_append(struct unmix_ynode *map, char *key, struct unmix_ymark key_mark, struct unmix_ynode *val) {
  if (map->n == 0 || capacity_for(map->n) == map->n) {
    size_t cap = capacity_for(map->n + 1);
    map->items = unmix_xrealloc(map->items, cap * sizeof *map->items);
    map->keys = unmix_xrealloc(map->keys, cap * sizeof *map->keys);
    map->key_marks = unmix_xrealloc(map->key_marks, cap * sizeof *map->key_marks);
  }
  map->items[map->n] = val;
  map->keys[map->n] = key;
  map->key_marks[map->n] = key_mark;
  map->n++;
  if (map->n >= INDEX_FROM && 2 * (map->n + 1) <= map->index_cap) index_put(map, map->n - 1);
  else if (map->n >= INDEX_FROM) index_rebuild(map);
}

static long map_index(const struct unmix_ynode *map, const char *key, size_t key_len) {
  if (map->index_cap) {
    size_t mask = map->index_cap - 1, h = key_hash(key, key_len) & mask;
    for (; map->index[h]; h = (h + 1) & mask)
      if (key_is(map->keys[map->index[h] - 1], key, key_len)) return (long)(map->index[h] - 1);
    return -1;
  }
  for (size_t i = 0; i < map->n; i++)
    if (key_is(map->keys[i], key, key_len)) return (long)i;
  return -1;
}

/* Removes pair i, freeing it. */
static void map_remove(struct unmix_ynode *map, size_t i) {
  unmix_ytree_free(map->items[i]);
  free(map->keys[i]);
  free(map->key_marks[i].file);
  for (size_t j = i + 1; j < map->n; j++) {
    map->items[j - 1] = map->items[j];
    map->keys[j - 1] = map->keys[j];
    map->key_marks[j - 1] = map->key_marks[j];
  }
  map->n--;
  index_rebuild(map);
}

const struct unmix_ynode *unmix_ytree_find(const struct unmix_ynode *root, const char *path,
                                           const struct unmix_ymark **key_mark) {
  const struct unmix_ynode *cur = root;
  const char *p = path;
  for (;;) {
    if (!cur || cur->kind != UNMIX_YNODE_MAP) return NULL;
    const char *dot = strchr(p, '.');
    size_t len = dot ? (size_t)(dot - p) : strlen(p);
    long i = map_index(cur, p, len);
    if (i < 0) return NULL;
    if (!dot) {
      if (key_mark) *key_mark = &cur->key_marks[i];
      return cur->items[i];
    }
    cur = cur->items[i];
    p = dot + 1;
  }
}

/* ---- libyaml document -> tree ------------------------------------------------------------ */

struct conv {
  yaml_document_t *doc;
  const char *file;
  long nodes;
};

static bool default_tag(const yaml_node_t *yn) {
  const char *t = (const char *)yn->tag;
  if (!t) return true;
  switch (yn->type) {
    case YAML_SCALAR_NODE: return !strcmp(t, YAML_DEFAULT_SCALAR_TAG);
    case YAML_SEQUENCE_NODE: return !strcmp(t, YAML_DEFAULT_SEQUENCE_TAG);
    case YAML_MAPPING_NODE: return !strcmp(t, YAML_DEFAULT_MAPPING_TAG);
    default: return false;
  }
}

static unmix_status conv_node(struct conv *c, yaml_node_t *yn, const char *path, int depth,
                              struct unmix_ynode **out) {
  int line = (int)yn->start_mark.line + 1, col = (int)yn->start_mark.column + 1;
  const char *where = path[0] ? path : "(top level)";
  if (depth > MAX_TREE_DEPTH)
    return unmix_error_set(UNMIX_ERR_CONFIG, "%s:%d:%d: '%.40s...': nesting deeper than %d levels (a recursive alias?)",
                           c->file, line, col, where, MAX_TREE_DEPTH);
  if (++c->nodes > MAX_TREE_NODES)
    return unmix_error_set(UNMIX_ERR_CONFIG, "%s:%d:%d: more than %d YAML nodes (a manifest has about a hundred keys: not a manifest, or an alias expanding without end)", c->file, line,
                           col, MAX_TREE_NODES);
  if (!default_tag(yn))
    return unmix_error_set(UNMIX_ERR_CONFIG, "%s:%d:%d: '%s': YAML tags ('%s') are not supported in manifests",
                           c->file, line, col, where, (const char *)yn->tag);
  struct unmix_ynode *n = NULL;
  switch (yn->type) {
    case YAML_SCALAR_NODE: {
      size_t len = yn->data.scalar.length;
      if (memchr(yn->data.scalar.value, 0, len))
        return unmix_error_set(UNMIX_ERR_CONFIG, "%s:%d:%d: '%s': the value contains a NUL character", c->file,
                               line, col, where);
      n = node_new(UNMIX_YNODE_SCALAR, c->file, line, col);
      n->str = unmix_xmalloc(len + 1);
      memcpy(n->str, yn->data.scalar.value, len);
      n->str[len] = 0;
      n->plain = yn->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
      break;
    }
    case YAML_SEQUENCE_NODE: {
      n = node_new(UNMIX_YNODE_SEQ, c->file, line, col);
      size_t cnt = (size_t)(yn->data.sequence.items.top - yn->data.sequence.items.start);
      n->items = unmix_xcalloc(cnt ? cnt : 1, sizeof *n->items);
      for (size_t i = 0; i < cnt; i++) {
        char sub[512];
        snprintf(sub, sizeof sub, "%s[%zu]", path, i);
        yaml_node_t *item = yaml_document_get_node(c->doc, yn->data.sequence.items.start[i]);
        unmix_status st = conv_node(c, item, sub, depth + 1, &n->items[i]);
        if (st != UNMIX_OK) {
          n->n = i;
          unmix_ytree_free(n);
          return st;
        }
        n->n = i + 1;
      }
      break;
    }
    case YAML_MAPPING_NODE: {
      n = node_new(UNMIX_YNODE_MAP, c->file, line, col);
      for (yaml_node_pair_t *p = yn->data.mapping.pairs.start; p < yn->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(c->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(c->doc, p->value);
        int kl = (int)k->start_mark.line + 1, kc = (int)k->start_mark.column + 1;
        if (k->type != YAML_SCALAR_NODE || memchr(k->data.scalar.value, 0, k->data.scalar.length)) {
          unmix_ytree_free(n);
          return unmix_error_set(UNMIX_ERR_CONFIG, "%s:%d:%d: '%s': a key must be a plain name", c->file, kl, kc,
                                 where);
        }
        const char *key = (const char *)k->data.scalar.value;
        long prev = map_index(n, key, k->data.scalar.length);
        if (prev >= 0) {
          unmix_status st = unmix_error_set(UNMIX_ERR_CONFIG, "%s:%d:%d: duplicate key '%s%s%s' (first at line %d:%d)",
                                            c->file, kl, kc, path, path[0] ? "." : "", key,
                                            n->key_marks[prev].line, n->key_marks[prev].col);
          unmix_ytree_free(n);
          return st;
        }
        char sub[512];
        snprintf(sub, sizeof sub, "%s%s%s", path, path[0] ? "." : "", key);
        struct unmix_ynode *val = NULL;
        unmix_status st = conv_node(c, v, sub, depth + 1, &val);
        if (st != UNMIX_OK) {
          unmix_ytree_free(n);
          return st;
        }
        struct unmix_ymark km = {unmix_xstrdup(c->file), kl, kc};
        map_append(n, unmix_xstrdup(key), km, val);
      }
      break;
    }
    default:
      return unmix_error_set(UNMIX_ERR_CONFIG, "%s:%d:%d: empty YAML node", c->file, line, col);
  }
  *out = n;
  return UNMIX_OK;
}

static unmix_status yaml_syntax_error(const yaml_parser_t *p, const char *file) {
  const char *problem = p->problem ? p->problem : "malformed YAML";
  if (p->error == YAML_READER_ERROR) /* encoding problems carry a byte offset, not a line */
    return unmix_error_set(UNMIX_ERR_CONFIG, "%s: YAML error at byte %zu: %s (is the file UTF-8 text?)", file,
                           p->problem_offset, problem);
  if (p->context)
    return unmix_error_set(UNMIX_ERR_CONFIG, "%s:%zu:%zu: YAML syntax error: %s (%s at line %zu:%zu)", file,
                           p->problem_mark.line + 1, p->problem_mark.column + 1, problem, p->context,
                           p->context_mark.line + 1, p->context_mark.column + 1);
  return unmix_error_set(UNMIX_ERR_CONFIG, "%s:%zu:%zu: YAML syntax error: %s", file, p->problem_mark.line + 1,
                         p->problem_mark.column + 1, problem);
}

/* Parses one YAML document; an empty stream gives *out = NULL. */
unmix_status unmix_ytree_parse(const char *text, size_t len, const char *file, struct unmix_ynode **out) {
  *out = NULL;
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser)) return unmix_error_set(UNMIX_ERR_NOMEM, "%s: cannot start the YAML parser", file);
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
  yaml_document_t doc;
  if (!yaml_parser_load(&parser, &doc)) {
    unmix_status st = yaml_syntax_error(&parser, file);
    yaml_parser_delete(&parser);
    return st;
  }
  unmix_status st = UNMIX_OK;
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  if (root) {
    struct conv c = {&doc, file, 0};
    st = conv_node(&c, root, "", 0, out);
    if (st == UNMIX_OK) {
      yaml_document_t doc2;
      if (!yaml_parser_load(&parser, &doc2)) {
        st = yaml_syntax_error(&parser, file);
      } else {
        yaml_node_t *r2 = yaml_document_get_root_node(&doc2);
        if (r2)
          st = unmix_error_set(UNMIX_ERR_CONFIG, "%s:%zu:%zu: a second YAML document ('---'); a manifest holds one",
                               file, r2->start_mark.line + 1, r2->start_mark.column + 1);
        yaml_document_delete(&doc2);
      }
      if (st != UNMIX_OK) {
        unmix_ytree_free(*out);
        *out = NULL;
      }
    }
  }
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  return st;
}

/* ---- files and inheritance ----------------------------------------------------------------- */

static unmix_status read_text(const char *path, char **text, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return unmix_error_set(UNMIX_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
  size_t cap = 4096, n = 0;
  char *buf = unmix_xmalloc(cap);
  for (;;) {
    if (n + 1 >= cap) {
      if (cap >= MAX_MANIFEST_BYTES) {
        fclose(f);
        free(buf);
        return unmix_error_set(UNMIX_ERR_CONFIG, "'%s' is larger than %u MiB: not a manifest", path,
                               MAX_MANIFEST_BYTES >> 20);
      }
      cap *= 2;
      buf = unmix_xrealloc(buf, cap);
    }
    size_t r = fread(buf + n, 1, cap - n - 1, f);
    n += r;
    if (r == 0) break;
  }
  int err = ferror(f) ? errno : 0;
  fclose(f);
  if (err) {
    free(buf);
    return unmix_error_set(UNMIX_ERR_IO, "cannot read '%s': %s", path, strerror(err));
  }
  buf[n] = 0;
  *text = buf;
  *len = n;
  return UNMIX_OK;
}

/* Moves child's pairs over base (consuming child): mappings merge recursively, anything
 * else is replaced whole. */
static void merge_into(struct unmix_ynode *base, struct unmix_ynode *child) {
  for (size_t i = 0; i < child->n; i++) {
    long j = map_index(base, child->keys[i], strlen(child->keys[i]));
    struct unmix_ynode *cv = child->items[i];
    if (j < 0) {
      map_append(base, child->keys[i], child->key_marks[i], cv);
    } else {
      if (base->items[j]->kind == UNMIX_YNODE_MAP && cv->kind == UNMIX_YNODE_MAP) {
        merge_into(base->items[j], cv);
      } else if (base->items[j]->kind == UNMIX_YNODE_MAP && unmix_ynode_is_null(cv)) {
        unmix_ytree_free(cv); /* `unmix:` with every key commented out keeps the base section */
      } else {
        unmix_ytree_free(base->items[j]);
        base->items[j] = cv;
      }
      free(base->key_marks[j].file);
      base->key_marks[j] = child->key_marks[i];
      free(child->keys[i]);
    }
  }
  child->n = 0;
  unmix_ytree_free(child);
}

struct chain {
  char *real[MAX_BASE_CHAIN];
  char *shown[MAX_BASE_CHAIN];
  int n;
};

static void chain_free(struct chain *c) {
  for (int i = 0; i < c->n; i++) {
    free(c->real[i]);
    free(c->shown[i]);
  }
  c->n = 0;
}

static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return unmix_xstrdup(".");
  if (slash == path) return unmix_xstrdup("/");
  size_t n = (size_t)(slash - path);
  char *d = unmix_xmalloc(n + 1);
  memcpy(d, path, n);
  d[n] = 0;
  return d;
}

static unmix_status load_tree(const char *text, size_t len, const char *file, struct chain *ch,
                              struct unmix_ynode **out);

static unmix_status load_base(struct unmix_ynode *root, const char *file, struct chain *ch,
                              struct unmix_ynode **out) {
  *out = root;
  long bi = map_index(root, "base", 4);
  if (bi < 0) return UNMIX_OK;
  const struct unmix_ynode *bv = root->items[bi];
  char pos[UNMIX_PATH_MAX + 32];
  unmix_ymark_str(&bv->mark, pos, sizeof pos);
  if (bv->kind != UNMIX_YNODE_SCALAR || unmix_ynode_is_null(bv) || !bv->str[0])
    return unmix_error_set(UNMIX_ERR_CONFIG, "%s: key 'base': expected the path of another manifest", pos);
  char *dir = dir_of(file);
  size_t need = strlen(dir) + strlen(bv->str) + 2;
  char *bpath = unmix_xmalloc(need);
  if (bv->str[0] == '/' || !strcmp(dir, ".")) snprintf(bpath, need, "%s", bv->str);
  else snprintf(bpath, need, "%s/%s", dir, bv->str);
  free(dir);
  char *real = realpath(bpath, NULL);
  if (!real) {
    unmix_status st = unmix_error_set(UNMIX_ERR_IO, "%s: key 'base': cannot open base manifest '%s': %s", pos, bpath,
                                      strerror(errno));
    free(bpath);
    return st;
  }
  for (int i = 0; i < ch->n; i++) {
    if (strcmp(ch->real[i], real) != 0) continue;
    char cyc[2048] = "";
    size_t off = 0;
    for (int j = i; j < ch->n && off < sizeof cyc; j++)
      off += (size_t)snprintf(cyc + off, sizeof cyc - off, "%s -> ", ch->shown[j]);
    if (off < sizeof cyc) snprintf(cyc + off, sizeof cyc - off, "%s", bpath);
    unmix_status st = unmix_error_set(UNMIX_ERR_CONFIG, "%s: key 'base': inheritance cycle: %s", pos, cyc);
    free(real);
    free(bpath);
    return st;
  }
  free(real);
  char *text = NULL;
  size_t len = 0;
  unmix_status st = read_text(bpath, &text, &len);
  if (st != UNMIX_OK) {
    unmix_error_wrap(st, "%s: key 'base'", pos);
    free(bpath);
    return st;
  }
  struct unmix_ynode *base = NULL;
  st = load_tree(text, len, bpath, ch, &base);
  free(text);
  free(bpath);
  if (st != UNMIX_OK) return st;
  map_remove(root, (size_t)bi);
  merge_into(base, root);
  *out = base;
  return UNMIX_OK;
}

/* Parses `text` (from `file`) and resolves its `base:` chain; *out is a mapping. */
static unmix_status load_tree(const char *text, size_t len, const char *file, struct chain *ch,
                              struct unmix_ynode **out) {
  *out = NULL;
  if (ch->n >= MAX_BASE_CHAIN)
    return unmix_error_set(UNMIX_ERR_CONFIG, "%s: more than %d levels of 'base:' inheritance", file, MAX_BASE_CHAIN);
  struct unmix_ynode *root = NULL;
  UNMIX_TRY(unmix_ytree_parse(text, len, file, &root));
  if (!root) root = node_new(UNMIX_YNODE_MAP, file, 1, 1);
  if (root->kind != UNMIX_YNODE_MAP) {
    unmix_status st = unmix_error_set(UNMIX_ERR_CONFIG, "%s:%d:%d: a manifest must be a mapping of keys (e.g. 'seed: 1')",
                                      file, root->mark.line, root->mark.col);
    unmix_ytree_free(root);
    return st;
  }
  char *real = realpath(file, NULL);
  int pushed = ch->n;
  ch->real[ch->n] = real ? real : unmix_xstrdup(file);
  ch->shown[ch->n] = unmix_xstrdup(file);
  ch->n++;
  struct unmix_ynode *merged = NULL;
  unmix_status st = load_base(root, file, ch, &merged);
  free(ch->real[pushed]);
  free(ch->shown[pushed]);
  ch->n = pushed;
  if (st != UNMIX_OK) {
    unmix_ytree_free(root);
    return st;
  }
  *out = merged;
  return UNMIX_OK;
}

/* ---- overrides ------------------------------------------------------------------------------ */

static void unposition(struct unmix_ynode *n, const char *label) {
  free(n->mark.file);
  n->mark.file = unmix_xstrdup(label);
  n->mark.line = 0;
  for (size_t i = 0; i < n->n; i++) {
    unposition(n->items[i], label);
    if (n->kind == UNMIX_YNODE_MAP) {
      free(n->key_marks[i].file);
      n->key_marks[i].file = unmix_xstrdup(label);
      n->key_marks[i].line = 0;
    }
  }
}

static unmix_status apply_override(struct unmix_ynode *root, const char *ovr) {
  char label[600];
  snprintf(label, sizeof label, "--set %s", ovr);
  const char *eq = strchr(ovr, '=');
  if (!eq || eq == ovr)
    return unmix_error_set(UNMIX_ERR_CONFIG, "%s: expected key.path=value (e.g. --set unmix.prob=0.25)", label);
  size_t klen = (size_t)(eq - ovr);
  if (klen >= 256) return unmix_error_set(UNMIX_ERR_CONFIG, "%s: key too long", label);
  char key[256];
  memcpy(key, ovr, klen);
  key[klen] = 0;
  if (!unmix_config_has_key(key)) {
    /* a section ("optim") is not a key: suggesting the section itself would be no help */
    size_t kl = strlen(key);
    for (int i = 0; i < unmix_config_key_count(); i++) {
      const char *kp = unmix_config_key_path(i);
      if (!strncmp(kp, key, kl) && kp[kl] == '.')
        return unmix_error_set(UNMIX_ERR_CONFIG, "%s: '%s' is a section, not a key: set one of its keys, e.g. --set %s=...",
                               label, key, kp);
    }
    const char *sug = unmix_config_suggest(key);
    if (sug) return unmix_error_set(UNMIX_ERR_CONFIG, "%s: unknown key '%s' (did you mean '%s'?)", label, key, sug);
    return unmix_error_set(UNMIX_ERR_CONFIG, "%s: unknown key '%s' (`unmix validate --keys` lists them)", label, key);
  }
  struct unmix_ynode *val = NULL;
  UNMIX_TRY(unmix_ytree_parse(eq + 1, strlen(eq + 1), label, &val));
  if (!val) {
    val = node_new(UNMIX_YNODE_SCALAR, label, 0, 0);
    val->str = unmix_xstrdup("");
    val->plain = true;
  }
  unposition(val, label);
  struct unmix_ynode *cur = root;
  char *seg = key;
  for (;;) {
    char *dot = strchr(seg, '.');
    if (dot) *dot = 0;
    long i = map_index(cur, seg, strlen(seg));
    struct unmix_ymark km = {unmix_xstrdup(label), 0, 0};
    if (!dot) {
      if (i >= 0) {
        unmix_ytree_free(cur->items[i]);
        cur->items[i] = val;
        free(km.file);
      } else {
        map_append(cur, unmix_xstrdup(seg), km, val);
      }
      return UNMIX_OK;
    }
    if (i < 0) {
      map_append(cur, unmix_xstrdup(seg), km, node_new(UNMIX_YNODE_MAP, label, 0, 0));
      i = (long)cur->n - 1;
    } else {
      free(km.file);
      if (cur->items[i]->kind != UNMIX_YNODE_MAP) {
        if (unmix_ynode_is_null(cur->items[i])) {  /* `unmix:` with nothing below it */
          unmix_ytree_free(cur->items[i]);
          cur->items[i] = node_new(UNMIX_YNODE_MAP, label, 0, 0);
        } else {
          char pos[UNMIX_PATH_MAX + 32];
          unmix_ymark_str(&cur->items[i]->mark, pos, sizeof pos);
          unmix_ytree_free(val);
          return unmix_error_set(UNMIX_ERR_CONFIG, "%s: '%s' at %s is not a mapping of keys", label, seg, pos);
        }
      }
    }
    cur = cur->items[i];
    seg = dot + 1;
  }
}

/* ---- the public loaders ---------------------------------------------------------------------- */

void unmix_config_free(struct unmix_config *cfg) {
  free(cfg->source_path);
  free(cfg->resolved_yaml);
  cfg->source_path = NULL;
  cfg->resolved_yaml = NULL;
}

/* An empty `name` becomes the manifest file's stem, restricted to [A-Za-z0-9._+-]. */
static void name_from_stem(struct unmix_config *cfg, const char *path) {
  if (cfg->name[0]) return;
  const char *b = strrchr(path, '/');
  b = b ? b + 1 : path;
  size_t n = strlen(b);
  if (n > 5 && !strcmp(b + n - 5, ".yaml")) n -= 5;
  else if (n > 4 && !strcmp(b + n - 4, ".yml")) n -= 4;
  if (n >= sizeof cfg->name) n = sizeof cfg->name - 1;
  for (size_t i = 0; i < n; i++) {
    char c = b[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-' || c == '+';
    cfg->name[i] = ok ? c : '_';
  }
  cfg->name[n] = 0;
  if (cfg->name[0] == '.') cfg->name[0] = '_';
}

static unmix_status load_common(const char *text, size_t len, const char *file, bool from_file,
                                const char *const *overrides, int n_overrides, struct unmix_config *out) {
  unmix_config_init_defaults(out);
  struct chain ch = {0};
  struct unmix_ynode *tree = NULL;
  unmix_status st = load_tree(text, len, file, &ch, &tree);
  chain_free(&ch);
  for (int i = 0; st == UNMIX_OK && i < n_overrides; i++) st = apply_override(tree, overrides[i]);
  if (st == UNMIX_OK) st = unmix_config_bind(tree, file, out);
  unmix_ytree_free(tree);
  if (st != UNMIX_OK) {
    unmix_config_init_defaults(out);
    return st;
  }
  if (from_file) name_from_stem(out, file);
  out->source_path = unmix_xstrdup(file);
  out->resolved_yaml = unmix_config_to_yaml(out);
  return UNMIX_OK;
}

unmix_status unmix_manifest_load(const char *path, const char *const *overrides, int n_overrides,
                                 struct unmix_config *out) {
  char *text = NULL;
  size_t len = 0;
  unmix_status st = read_text(path, &text, &len);
  if (st != UNMIX_OK) {
    unmix_config_init_defaults(out);
    return st;
  }
  st = load_common(text, len, path, true, overrides, n_overrides, out);
  free(text);
  return st;
}

unmix_status unmix_manifest_load_string(const char *text, const char *name, const char *const *overrides,
                                        int n_overrides, struct unmix_config *out) {
  return load_common(text, strlen(text), name ? name : "<string>", false, overrides, n_overrides, out);
}

/* ---- comparing resolved manifests ---------------------------------------------------------- */

/* A non-mapping value as one line of flow YAML-ish text (for messages and comparison). */
static void render(const struct unmix_ynode *n, char *buf, size_t len, size_t *off) {
  if (*off >= len) return;
  if (n->kind == UNMIX_YNODE_SCALAR) {
    *off += (size_t)snprintf(buf + *off, len - *off, "%s", n->str);
    return;
  }
  bool map = n->kind == UNMIX_YNODE_MAP;
  *off += (size_t)snprintf(buf + *off, len - *off, map ? "{" : "[");
  for (size_t i = 0; i < n->n && *off < len; i++) {
    if (i) *off += (size_t)snprintf(buf + *off, len - *off, ", ");
    if (map && *off < len) *off += (size_t)snprintf(buf + *off, len - *off, "%s: ", n->keys[i]);
    render(n->items[i], buf, len, off);
  }
  if (*off < len) *off += (size_t)snprintf(buf + *off, len - *off, map ? "}" : "]");
}

static void render_value(const struct unmix_ynode *n, char *buf, size_t len) {
  size_t off = 0;
  buf[0] = 0;
  if (!n) snprintf(buf, len, "(absent)");
  else render(n, buf, len, &off);
}

struct diff_walk {
  unmix_manifest_diff_fn fn;
  void *ctx;
  int count;
};

/* Visits a's keys (and, with b_only, the keys only b has) below `prefix`. */
static void diff_maps(struct diff_walk *w, const struct unmix_ynode *a, const struct unmix_ynode *b,
                      const char *prefix, bool b_only) {
  for (size_t i = 0; i < a->n; i++) {
    char path[512];
    snprintf(path, sizeof path, "%s%s%s", prefix, prefix[0] ? "." : "", a->keys[i]);
    long j = b ? map_index(b, a->keys[i], strlen(a->keys[i])) : -1;
    const struct unmix_ynode *av = a->items[i], *bv = j >= 0 ? b->items[j] : NULL;
    if (av->kind == UNMIX_YNODE_MAP && (!bv || bv->kind == UNMIX_YNODE_MAP)) {
      diff_maps(w, av, bv, path, b_only);
      continue;
    }
    if (b_only && bv) continue; /* seen from the other side */
    char x[256], y[256];
    render_value(av, x, sizeof x);
    render_value(bv, y, sizeof y);
    if (strcmp(x, y) != 0) {
      w->count++;
      if (b_only) w->fn(w->ctx, path, y, x);
      else w->fn(w->ctx, path, x, y);
    }
  }
}

int unmix_manifest_diff(const char *a, const char *b, unmix_manifest_diff_fn fn, void *ctx) {
  struct unmix_ynode *ta = NULL, *tb = NULL;
  int n = -1;
  if (unmix_ytree_parse(a, strlen(a), "(checkpoint manifest)", &ta) == UNMIX_OK &&
      unmix_ytree_parse(b, strlen(b), "(manifest)", &tb) == UNMIX_OK && ta && tb && ta->kind == UNMIX_YNODE_MAP &&
      tb->kind == UNMIX_YNODE_MAP) {
    struct diff_walk w = {fn, ctx, 0};
    diff_maps(&w, ta, tb, "", false);
    diff_maps(&w, tb, ta, "", true);
    n = w.count;
  }
  unmix_ytree_free(ta);
  unmix_ytree_free(tb);
  return n;
}
