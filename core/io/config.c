/* The manifest schema: one row per config key (path, type, default, range or names, field
 * offset). The same table gives the defaults, binds a YAML tree onto struct unmix_config
 * with file:line:column errors, and writes the canonical resolved YAML. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/io/manifest.h"
#include "core/util/suggest.h"

enum ktype {
  K_STR,     /* char[], optionally restricted to `names` */
  K_NAME,    /* char[] of [A-Za-z0-9._+-] (run names end up in paths) */
  K_INT,
  K_U64,
  K_FLOAT,
  K_BOOL,
  K_ENUM,    /* int-sized enum, `names` indexed by value */
  K_INTLIST, /* int[size] + int count at count_off */
  K_NORM3,   /* data.mean / data.std: [] or 3 floats; `size` = 0 (mean) or 1 (std) */
  K_CROPS    /* data.crops: 1..UNMIX_MAX_CROP_GROUPS of {nmb, size, min_scale, max_scale} */
};

/* range flags */
#define R_LO 1u
#define R_HI 2u
#define R_LO_OPEN 4u
#define R_HI_OPEN 8u

struct range {
  double lo, hi;
  unsigned flags;
};

struct key_def {
  const char *path;
  enum ktype type;
  size_t off;
  size_t size;      /* field bytes; K_INTLIST: capacity; K_NORM3: 0 mean / 1 std */
  size_t count_off; /* K_INTLIST */
  struct range r;   /* K_INT, K_FLOAT, K_INTLIST items */
  const char *const *names;
  const char *def;  /* default as YAML text */
};

static const char *const g_precision[] = {"fp32", "tf32", "bf16", NULL};
static const char *const g_method[] = {"moco", "swav", "simclr", "byol", NULL};
static const char *const g_arch[] = {"resnet18", "resnet34", "resnet50", "resnet18-bottleneck", NULL};
static const char *const g_stem[] = {"imagenet", "cifar", "swav-cifar", NULL};
static const char *const g_head[] = {"none", "linear", "mlp", "swav", NULL};
static const char *const g_optim[] = {"sgd", "larc", "adam", NULL};
static const char *const g_sched[] = {"cosine-1based", "cosine", "step", "warmup-cosine", "constant", "warmup-step",
                                       NULL};
static const char *const g_reverse[] = {"code", "paper", NULL};
static const char *const g_knn_features[] = {"head", "backbone", NULL}; /* enum unmix_knn_features */
static const char *const g_sinkhorn[] = {"original", "simplified", NULL};
static const char *const g_lincls[] = {"imagenet", "swav-cifar", "moco-cifar", "swav-imagenet", NULL};
static const char *const g_backend[] = {"auto", "cpu", "cuda", NULL};
static const char *const g_dataset[] = {"cifar10", "cifar100", "fashion-mnist", "imagefolder", NULL};
static const char *const g_recipe[] = {"moco-cifar", "swav-cifar", "mocov1-imagenet", "mocov2-imagenet", "test",
                                        "wmse-cifar10", "wmse-cifar100", "swav-imagenet", NULL};

_Static_assert(UNMIX_PREC_BF16 == 2 && UNMIX_METHOD_BYOL == 3 && UNMIX_ARCH_RESNET18_BOTTLENECK == 3 &&
                   UNMIX_STEM_SWAV_CIFAR == 2 && UNMIX_HEAD_SWAV == 3 && UNMIX_OPTIM_ADAM == 2 &&
                   UNMIX_SCHED_WARMUP_STEP == 5 && UNMIX_SWAV_REVERSE_PAPER == 1 &&
                   UNMIX_SWAV_SINKHORN_SIMPLIFIED == 1 && UNMIX_LINCLS_MOCO_CIFAR == 2 &&
                   UNMIX_LINCLS_SWAV_IMAGENET == 3,
               "enum name tables must follow the enum values");

#define OFF(f) offsetof(struct unmix_config, f)
#define FSIZE(f) sizeof(((struct unmix_config *)0)->f)
#define GE(x) ((struct range){(x), 0, R_LO})
#define GT(x) ((struct range){(x), 0, R_LO | R_LO_OPEN})
#define IN(a, b) ((struct range){(a), (b), R_LO | R_HI})
#define IN_HO(a, b) ((struct range){(a), (b), R_LO | R_HI | R_HI_OPEN})
#define ANY ((struct range){0, 0, 0})

#define KS(p, f, ch, d) {p, K_STR, OFF(f), FSIZE(f), 0, ANY, ch, d}
#define KN(p, f, d) {p, K_NAME, OFF(f), FSIZE(f), 0, ANY, NULL, d}
#define KI(p, f, rg, d) {p, K_INT, OFF(f), FSIZE(f), 0, rg, NULL, d}
#define KU(p, f, d) {p, K_U64, OFF(f), FSIZE(f), 0, ANY, NULL, d}
#define KF(p, f, rg, d) {p, K_FLOAT, OFF(f), FSIZE(f), 0, rg, NULL, d}
#define KB(p, f, d) {p, K_BOOL, OFF(f), FSIZE(f), 0, ANY, NULL, d}
#define KE(p, f, nm, d) {p, K_ENUM, OFF(f), FSIZE(f), 0, ANY, nm, d}
#define KL(p, f, cnt, rg, d) {p, K_INTLIST, OFF(f), FSIZE(f) / sizeof(int), OFF(cnt), rg, NULL, d}

/* The schema. Order = the order of the resolved dump; a section's keys are contiguous.
 * Defaults: CIFAR-10 MoCo reference (FIDELITY §2.1), swav block SwAV-CIFAR (FIDELITY §3.1),
 * linear block the MoCo CIFAR demo protocol. */
static const struct key_def g_keys[] = {
    KN("name", name, "\"\""),
    KU("seed", seed, "0"),
    KS("backend", backend, g_backend, "auto"),
    KE("precision", precision, g_precision, "tf32"),
    KB("deterministic", deterministic, "false"),
    KE("method", method, g_method, "moco"),

    KS("data.dataset", data.dataset, g_dataset, "cifar10"),
    KS("data.root", data.root, NULL, "\"\""),
    KS("data.recipe", data.recipe, g_recipe, "moco-cifar"),
    KI("data.subset", data.subset, GE(0), "0"),
    KI("data.test_subset", data.test_subset, GE(0), "0"),
    KI("data.workers", data.workers, IN(0, 1024), "0"),
    KI("data.prefetch", data.prefetch, IN(0, 64), "2"), /* the loader's ring: 0 = its default */
    KI("data.pad_to", data.pad_to, IN(0, 4096), "0"),
    KI("data.channels", data.channels, IN(1, 3), "3"),
    KB("data.skip_corrupt", data.skip_corrupt, "false"),
    KB("data.grey_images", data.grey_images, "false"),
    {"data.crops", K_CROPS, OFF(data), FSIZE(data), 0, ANY, NULL, "[]"},
    {"data.mean", K_NORM3, OFF(data.mean), 0, 0, ANY, NULL, "[]"},
    {"data.std", K_NORM3, OFF(data.std), 1, 0, GT(0), NULL, "[]"},

    KE("model.arch", model.arch, g_arch, "resnet18"),
    KE("model.stem", model.stem, g_stem, "cifar"),
    KI("model.width", model.width, IN(1, 4096), "64"),
    KI("model.bn_splits", model.bn_splits, IN(1, 4096), "8"),
    KE("model.head", model.head, g_head, "linear"),
    KI("model.dim", model.dim, IN(1, 1 << 20), "128"),
    KI("model.hidden", model.hidden, IN(1, 1 << 20), "2048"),
    KB("model.sync_bn", model.sync_bn, "false"),
    KI("model.sync_bn_group", model.sync_bn_group, IN(0, 1 << 20), "0"),

    KI("moco.K", moco.K, GE(1), "4096"),
    KF("moco.m", moco.m, IN(0, 1), "0.99"),
    KF("moco.T", moco.T, GT(0), "0.1"),
    KB("moco.symmetric", moco.symmetric, "true"),
    KB("moco.shuffle_bn", moco.shuffle_bn, "true"),
    KB("moco.mix_once", moco.mix_once, "false"),

    KI("swav.nmb_prototypes", swav.nmb_prototypes, IN(1, 1 << 20), "100"),
    KF("swav.temperature", swav.temperature, GT(0), "0.1"),
    KF("swav.epsilon", swav.epsilon, GT(0), "0.05"),
    KI("swav.sinkhorn_iterations", swav.sinkhorn_iterations, IN(1, 1000), "3"),
    KL("swav.crops_for_assign", swav.crops_for_assign, swav.n_crops_for_assign, GE(0), "[0, 1]"),
    KI("swav.queue_length", swav.queue_length, GE(0), "120"),
    KI("swav.epoch_queue_starts", swav.epoch_queue_starts, GE(0), "15"),
    KI("swav.freeze_prototypes_niters", swav.freeze_prototypes_niters, GE(0), "5005"),
    KE("swav.reverse", swav.reverse, g_reverse, "code"),
    KE("swav.sinkhorn", swav.sinkhorn, g_sinkhorn, "original"),

    KF("simclr.tau", simclr.tau, GT(0), "0.5"),

    KF("byol.tau", byol.tau, IN(0, 1), "0.99"),
    KB("byol.mix_target", byol.mix_target, "true"),

    KB("unmix.enabled", unmix.enabled, "true"),
    KF("unmix.prob", unmix.prob, IN(0, 1), "0.5"),
    KF("unmix.beta", unmix.beta, GT(0), "1"),
    KB("unmix.per_rank", unmix.per_rank, "true"),

    KE("optim.kind", optim.kind, g_optim, "sgd"),
    KF("optim.lr", optim.lr, GE(0), "0.06"),
    KF("optim.momentum", optim.momentum, IN_HO(0, 1), "0.9"),
    KF("optim.weight_decay", optim.weight_decay, GE(0), "5e-4"),
    KI("optim.batch_size", optim.batch_size, IN(1, 1 << 24), "512"),
    KF("optim.larc_trust", optim.larc_trust, GT(0), "0.001"),
    KF("optim.larc_eps", optim.larc_eps, GE(0), "1e-8"),
    KB("optim.larc_clip", optim.larc_clip, "false"),

    KE("schedule.kind", schedule.kind, g_sched, "cosine-1based"),
    KL("schedule.milestones", schedule.milestones, schedule.n_milestones, GE(1), "[]"),
    KF("schedule.gamma", schedule.gamma, GT(0), "0.1"),
    KI("schedule.warmup_epochs", schedule.warmup_epochs, GE(0), "0"),
    KF("schedule.start_warmup", schedule.start_warmup, GE(0), "0"),
    KF("schedule.final_lr", schedule.final_lr, GE(0), "0"),
    KI("schedule.warmup_iters", schedule.warmup_iters, GE(0), "500"),
    KL("schedule.drops", schedule.drops, schedule.n_drops, GE(0), "[50, 25]"),

    KI("train.epochs", train.epochs, IN(1, 1 << 24), "1000"),
    KI("train.steps_per_epoch", train.steps_per_epoch, GE(0), "0"),
    KI("train.checkpoint_every", train.checkpoint_every, GE(1), "1"),
    KI("train.log_every", train.log_every, GE(1), "10"),

    KI("knn.every", knn.every, GE(0), "1"),
    KI("knn.k", knn.k, GE(1), "200"),
    KF("knn.t", knn.t, GT(0), "0.1"),
    KI("knn.bank_subset", knn.bank_subset, GE(0), "0"),
    KI("knn.test_subset", knn.test_subset, GE(0), "0"),
    KE("knn.features", knn.features, g_knn_features, "head"),

    KE("linear.protocol", linear.protocol, g_lincls, "moco-cifar"),
    KI("linear.epochs", linear.epochs, IN(1, 1 << 24), "100"),
    KF("linear.lr", linear.lr, GE(0), "30"),
    KF("linear.momentum", linear.momentum, IN_HO(0, 1), "0.9"),
    KF("linear.weight_decay", linear.weight_decay, GE(0), "0"),
    KI("linear.batch_size", linear.batch_size, IN(1, 1 << 24), "256"),
    KL("linear.milestones", linear.milestones, linear.n_milestones, GE(1), "[60, 80]"),
    KB("linear.cosine", linear.cosine, "false"),

    KS("paper.table", paper.table, NULL, "\"\""),
    KS("paper.dataset", paper.dataset, NULL, "\"\""),
    KS("paper.method", paper.method, NULL, "\"\""),
    KS("paper.variant", paper.variant, NULL, "\"\""),
    KB("paper.unmix", paper.unmix, "false"),
    KI("paper.epochs", paper.epochs, GE(0), "0"),
    KS("paper.metric", paper.metric, NULL, "\"\""),
};
#define N_KEYS ((int)(sizeof g_keys / sizeof g_keys[0]))

/* ---- enum names ---------------------------------------------------------------------------- */

static const char *name_of(const char *const *names, int v) {
  for (int i = 0; names[i]; i++)
    if (i == v) return names[i];
  return "?";
}
const char *unmix_precision_name(enum unmix_precision v) { return name_of(g_precision, (int)v); }
const char *unmix_method_name(enum unmix_method_kind v) { return name_of(g_method, (int)v); }
const char *unmix_arch_name(enum unmix_arch v) { return name_of(g_arch, (int)v); }
const char *unmix_stem_name(enum unmix_stem v) { return name_of(g_stem, (int)v); }
const char *unmix_head_name(enum unmix_head v) { return name_of(g_head, (int)v); }
const char *unmix_optim_name(enum unmix_optim_kind v) { return name_of(g_optim, (int)v); }
const char *unmix_sched_name(enum unmix_sched_kind v) { return name_of(g_sched, (int)v); }
const char *unmix_swav_reverse_name(enum unmix_swav_reverse v) { return name_of(g_reverse, (int)v); }
const char *unmix_lincls_name(enum unmix_lincls_protocol v) { return name_of(g_lincls, (int)v); }

static const struct key_def *find_key(const char *path) {
  for (int i = 0; i < N_KEYS; i++)
    if (!strcmp(g_keys[i].path, path)) return &g_keys[i];
  return NULL;
}

int unmix_config_enum_parse(const char *key, const char *name) {
  const struct key_def *k = find_key(key);
  if (!k || k->type != K_ENUM) return -1;
  for (int i = 0; k->names[i]; i++)
    if (!strcmp(k->names[i], name)) return i;
  return -1;
}

/* ---- key table queries and suggestions ------------------------------------------------------- */

int unmix_config_key_count(void) { return N_KEYS; }
const char *unmix_config_key_path(int i) { return i >= 0 && i < N_KEYS ? g_keys[i].path : NULL; }
const char *unmix_config_key_default(int i) { return i >= 0 && i < N_KEYS ? g_keys[i].def : NULL; }
bool unmix_config_has_key(const char *path) { return find_key(path) != NULL; }

const char *unmix_config_key_type(int i) {
  if (i < 0 || i >= N_KEYS) return NULL;
  switch (g_keys[i].type) {
    case K_STR: return g_keys[i].names ? "choice" : "string";
    case K_NAME: return "name";
    case K_INT: return "int";
    case K_U64: return "uint64";
    case K_FLOAT: return "float";
    case K_BOOL: return "bool";
    case K_ENUM: return "choice";
    case K_INTLIST: return "int list";
    case K_NORM3: return "3 floats";
    case K_CROPS: return "crop list";
  }
  return "?";
}

static const char *range_str(const struct range *r, char *buf, size_t len) {
  if ((r->flags & R_LO) && (r->flags & R_HI))
    snprintf(buf, len, "in %c%.10g, %.10g%c", (r->flags & R_LO_OPEN) ? '(' : '[', r->lo, r->hi,
             (r->flags & R_HI_OPEN) ? ')' : ']');
  else if (r->flags & R_LO) snprintf(buf, len, "%s %.10g", (r->flags & R_LO_OPEN) ? ">" : ">=", r->lo);
  else if (r->flags & R_HI) snprintf(buf, len, "%s %.10g", (r->flags & R_HI_OPEN) ? "<" : "<=", r->hi);
  else snprintf(buf, len, "any");
  return buf;
}

static void join_names(const char *const *names, char *buf, size_t len) {
  size_t off = 0;
  buf[0] = 0;
  for (int i = 0; names[i] && off < len; i++) off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? "|" : "", names[i]);
}

const char *unmix_config_key_allowed(int i, char *buf, size_t len) {
  if (i < 0 || i >= N_KEYS || !len) return NULL;
  const struct key_def *k = &g_keys[i];
  char r[64];
  buf[0] = 0;
  switch (k->type) {
    case K_STR:
      if (k->names) join_names(k->names, buf, len);
      else snprintf(buf, len, "text, at most %zu bytes", k->size - 1);
      break;
    case K_NAME: snprintf(buf, len, "[A-Za-z0-9._+-], at most %zu bytes; empty = the file's stem", k->size - 1); break;
    case K_INT:
    case K_FLOAT: snprintf(buf, len, "%s", range_str(&k->r, r, sizeof r)); break;
    case K_U64: snprintf(buf, len, "0 .. 2^64-1"); break;
    case K_BOOL: snprintf(buf, len, "true|false"); break;
    case K_ENUM: join_names(k->names, buf, len); break;
    case K_INTLIST: snprintf(buf, len, "up to %zu ints, each %s", k->size, range_str(&k->r, r, sizeof r)); break;
    case K_NORM3: snprintf(buf, len, "[] or 3 numbers%s", k->size ? ", each > 0" : ""); break;
    case K_CROPS:
      snprintf(buf, len, "1..%d of {nmb: >= 1, size: >= 1, min_scale: (0, 1], max_scale: [min_scale, 1]}",
               UNMIX_MAX_CROP_GROUPS);
      break;
  }
  return buf;
}

/* The closest of `cands` (NULL-terminated) to s within a typo's distance, or NULL. */
static const char *closest(const char *s, const char *const *cands, int n) {
  int best = INT_MAX;
  const char *bs = NULL;
  for (int i = 0; i < n; i++) {
    int d = unmix_edit_distance(s, cands[i]);
    if (d < best) {
      best = d;
      bs = cands[i];
    }
  }
  int limit = (int)strlen(s) / 4;
  if (limit < 1) limit = 1;
  return best <= limit ? bs : NULL;
}

static const char *last_seg(const char *p) {
  const char *d = strrchr(p, '.');
  return d ? d + 1 : p;
}

const char *unmix_config_suggest(const char *path) {
  /* candidates: every key and every section name */
  static const char *const sections[] = {"data", "model", "moco", "swav", "simclr", "byol", "unmix", "optim",
                                         "schedule", "train", "knn", "linear", "paper"};
  const char *cands[N_KEYS + 16];
  int n = 0;
  for (int i = 0; i < N_KEYS; i++) cands[n++] = g_keys[i].path;
  for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++) cands[n++] = sections[i];
  const char *c = closest(path, cands, n);
  if (c) return c;
  /* the right leaf in the wrong section ("epochs" -> "train.epochs") */
  const char *seg = last_seg(path);
  if (strlen(seg) < 2) return NULL;
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < N_KEYS; i++)
      if (unmix_edit_distance(seg, last_seg(g_keys[i].path)) <= pass) return g_keys[i].path;
  /* a longer or shorter spelling of a leaf in the same section ("unmix.probability" -> "unmix.prob") */
  const size_t sec = (size_t)(seg - path);
  for (int i = 0; i < N_KEYS; i++) {
    const char *kp = g_keys[i].path, *ks = last_seg(kp);
    size_t a = strlen(seg), b = strlen(ks), m = a < b ? a : b;
    if ((size_t)(ks - kp) == sec && !strncmp(kp, path, sec) && m >= 3 && !strncasecmp(seg, ks, m)) return kp;
  }
  return NULL;
}

/* The bounds of a numeric key, for command-line flags that set the same quantity (the
 * evaluation commands), so a flag and its manifest key cannot accept different values. */
bool unmix_config_key_range(const char *path, struct unmix_config_range *out) {
  const struct key_def *k = find_key(path);
  if (!k) return false;
  struct unmix_config_range r = {-INFINITY, INFINITY, false, false, UNMIX_CONFIG_RANGE_FLOAT};
  switch (k->type) {
    case K_INT:
    case K_INTLIST: /* the items' range; an int field holds 32 bits */
      r.kind = UNMIX_CONFIG_RANGE_INT;
      r.lo = INT_MIN;
      r.hi = INT_MAX;
      break;
    case K_U64:
      r.kind = UNMIX_CONFIG_RANGE_U64;
      r.lo = 0;
      r.hi = (double)UINT64_MAX;
      *out = r;
      return true;
    case K_FLOAT: break;
    default: return false;
  }
  if (k->r.flags & R_LO) {
    r.lo = k->r.lo;
    r.lo_open = (k->r.flags & R_LO_OPEN) != 0;
  }
  if (k->r.flags & R_HI) {
    r.hi = k->r.hi;
    r.hi_open = (k->r.flags & R_HI_OPEN) != 0;
  }
  *out = r;
  return true;
}

/* ---- binding -------------------------------------------------------------------------------- */

#define MAX_SHOWN_ERRORS 24
#define ERRBUF 1900

struct bind_ctx {
  const char *file;
  const struct unmix_ynode *root;
  char msg[ERRBUF];
  size_t len;
  int nerr, shown;
  bool full;
  int norm_n[2];  /* values given for data.mean / data.std */
};

__attribute__((format(printf, 4, 5))) static void cerr(struct bind_ctx *c, const struct unmix_ymark *m,
                                                       const char *key, const char *fmt, ...) {
  c->nerr++;
  if (c->full || c->shown >= MAX_SHOWN_ERRORS) return;
  char line[600], pos[UNMIX_PATH_MAX + 40], body[480];
  struct unmix_ymark fm = {(char *)c->file, 0, 0};
  unmix_ymark_str(m ? m : &fm, pos, sizeof pos);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(body, sizeof body, fmt, ap);
  va_end(ap);
  int n = key ? snprintf(line, sizeof line, "%s: key '%s': %s", pos, key, body)
              : snprintf(line, sizeof line, "%s: %s", pos, body);
  size_t ln = n < 0 ? 0 : strlen(line);
  if (c->len + ln + 2 >= ERRBUF - 40) {
    c->full = true;
    return;
  }
  if (c->len) c->msg[c->len++] = '\n';
  memcpy(c->msg + c->len, line, ln + 1);
  c->len += ln;
  c->shown++;
}

static const char *shown(const struct unmix_ynode *n, char *buf, size_t len) {
  switch (n->kind) {
    case UNMIX_YNODE_SEQ: return "a list";
    case UNMIX_YNODE_MAP: return "a mapping";
    case UNMIX_YNODE_SCALAR: break;
  }
  if (unmix_ynode_is_null(n)) return "nothing";
  if (n->plain) snprintf(buf, len, "'%.60s'", n->str);
  else snprintf(buf, len, "the quoted string \"%.60s\"", n->str);
  return buf;
}

static bool looks_int(const char *s) {
  if (*s == '+' || *s == '-') s++;
  if (!isdigit((unsigned char)*s)) return false;
  while (isdigit((unsigned char)*s)) s++;
  return *s == 0;
}

static bool looks_float(const char *s) {
  if (*s == '+' || *s == '-') s++;
  int digits = 0;
  while (isdigit((unsigned char)*s)) s++, digits++;
  if (*s == '.') {
    s++;
    while (isdigit((unsigned char)*s)) s++, digits++;
  }
  if (!digits) return false;
  if (*s == 'e' || *s == 'E') {
    s++;
    if (*s == '+' || *s == '-') s++;
    if (!isdigit((unsigned char)*s)) return false;
    while (isdigit((unsigned char)*s)) s++;
  }
  return *s == 0;
}

static bool in_range(double v, const struct range *r) {
  if (r->flags & R_LO) {
    if ((r->flags & R_LO_OPEN) ? !(v > r->lo) : !(v >= r->lo)) return false;
  }
  if (r->flags & R_HI) {
    if ((r->flags & R_HI_OPEN) ? !(v < r->hi) : !(v <= r->hi)) return false;
  }
  return true;
}

static bool get_int(struct bind_ctx *c, const struct unmix_ynode *n, const char *key, const struct range *r,
                    int *out) {
  char b[128], rb[64];
  if (n->kind != UNMIX_YNODE_SCALAR || !n->plain || unmix_ynode_is_null(n) || !looks_int(n->str)) {
    const char *why = "";
    if (n->kind == UNMIX_YNODE_SCALAR && n->plain && looks_float(n->str)) {
      /* 1e400 or 1e12 is out of range, 1e3 is an integer in float notation, 2.5 is fractional */
      double d = strtod(n->str, NULL);
      why = !isfinite(d) || fabs(d) > (double)INT_MAX ? " (out of range for a 32-bit integer)"
            : d == floor(d)                           ? " (write it as an integer)"
                                                      : " (a fractional number)";
    }
    cerr(c, &n->mark, key, "expected an integer, got %s%s", shown(n, b, sizeof b), why);
    return false;
  }
  errno = 0;
  long long v = strtoll(n->str, NULL, 10);
  if (errno == ERANGE || v < INT_MIN || v > INT_MAX) {
    cerr(c, &n->mark, key, "%s does not fit a 32-bit integer", n->str);
    return false;
  }
  if (!in_range((double)v, r)) {
    cerr(c, &n->mark, key, "%lld is out of range: must be %s", v, range_str(r, rb, sizeof rb));
    return false;
  }
  *out = (int)v;
  return true;
}

static bool get_float(struct bind_ctx *c, const struct unmix_ynode *n, const char *key, const struct range *r,
                      float *out) {
  char b[128], rb[64];
  if (n->kind != UNMIX_YNODE_SCALAR || !n->plain || unmix_ynode_is_null(n) || !looks_float(n->str)) {
    cerr(c, &n->mark, key, "expected a number, got %s", shown(n, b, sizeof b));
    return false;
  }
  errno = 0;
  float v = strtof(n->str, NULL);
  if (errno == ERANGE || !isfinite(v)) {
    cerr(c, &n->mark, key, "%s is not representable as a 32-bit float", n->str);
    return false;
  }
  if (!in_range((double)v, r)) {
    cerr(c, &n->mark, key, "%s is out of range: must be %s", n->str, range_str(r, rb, sizeof rb));
    return false;
  }
  *out = v;
  return true;
}

static bool get_bool(struct bind_ctx *c, const struct unmix_ynode *n, const char *key, bool *out) {
  char b[128];
  if (n->kind == UNMIX_YNODE_SCALAR && n->plain) {
    const char *s = n->str;
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) {
      *out = true;
      return true;
    }
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) {
      *out = false;
      return true;
    }
  }
  cerr(c, &n->mark, key, "expected true or false, got %s", shown(n, b, sizeof b));
  return false;
}

static bool get_u64(struct bind_ctx *c, const struct unmix_ynode *n, const char *key, uint64_t *out) {
  char b[128];
  if (n->kind != UNMIX_YNODE_SCALAR || !n->plain || unmix_ynode_is_null(n) || !looks_int(n->str)) {
    cerr(c, &n->mark, key, "expected a non-negative integer, got %s", shown(n, b, sizeof b));
    return false;
  }
  if (n->str[0] == '-') {
    cerr(c, &n->mark, key, "%s is out of range: must be >= 0", n->str);
    return false;
  }
  errno = 0;
  unsigned long long v = strtoull(n->str, NULL, 10);
  if (errno == ERANGE) {
    cerr(c, &n->mark, key, "%s does not fit a 64-bit unsigned integer", n->str);
    return false;
  }
  *out = (uint64_t)v;
  return true;
}

/* A string value: any scalar (a bare `key:` is the empty string). */
static bool get_str(struct bind_ctx *c, const struct unmix_ynode *n, const char *key, const char **out) {
  char b[128];
  if (n->kind != UNMIX_YNODE_SCALAR) {
    cerr(c, &n->mark, key, "expected text, got %s", shown(n, b, sizeof b));
    return false;
  }
  *out = unmix_ynode_is_null(n) ? "" : n->str;
  return true;
}

static int choice_index(struct bind_ctx *c, const struct unmix_ynode *n, const char *key, const char *const *names) {
  const char *s = NULL;
  if (!get_str(c, n, key, &s)) return -1;
  int cnt = 0;
  for (; names[cnt]; cnt++)
    if (!strcmp(names[cnt], s)) return cnt;
  char all[256];
  join_names(names, all, sizeof all);
  const char *sug = closest(s, names, cnt);
  if (sug) cerr(c, &n->mark, key, "unknown value '%.60s' (expected %s; did you mean '%s'?)", s, all, sug);
  else cerr(c, &n->mark, key, "unknown value '%.60s' (expected %s)", s, all);
  return -1;
}

static void bind_crops(struct bind_ctx *c, const struct unmix_ynode *n, const char *key, struct unmix_config *cfg) {
  char b[128];
  if (n->kind != UNMIX_YNODE_SEQ || n->n > UNMIX_MAX_CROP_GROUPS) {
    cerr(c, &n->mark, key, "expected a list of 0 to %d crop groups like [{nmb: 2, size: 32, min_scale: 0.14, "
         "max_scale: 1.0}] ([] = the recipe's own views), got %s", UNMIX_MAX_CROP_GROUPS,
         n->kind == UNMIX_YNODE_SEQ ? "a list of another length" : shown(n, b, sizeof b));
    return;
  }
  static const char *const fields[] = {"nmb", "size", "min_scale", "max_scale", NULL};
  struct unmix_data_config d = cfg->data;
  bool ok = true;
  d.n_crop_groups = (int)n->n;
  for (int g = 0; g < UNMIX_MAX_CROP_GROUPS; g++) d.nmb_crops[g] = d.size_crops[g] = 0, d.min_scale[g] = d.max_scale[g] = 0;
  for (size_t g = 0; g < n->n; g++) {
    const struct unmix_ynode *m = n->items[g];
    char gk[64];
    snprintf(gk, sizeof gk, "%s[%zu]", key, g);
    if (m->kind != UNMIX_YNODE_MAP) {
      cerr(c, &m->mark, gk, "expected a mapping {nmb, size, min_scale, max_scale}, got %s", shown(m, b, sizeof b));
      ok = false;
      continue;
    }
    bool have[4] = {false, false, false, false};
    for (size_t i = 0; i < m->n; i++) {
      char fk[96];
      snprintf(fk, sizeof fk, "%s.%s", gk, m->keys[i]);
      int f = -1;
      for (int j = 0; fields[j]; j++)
        if (!strcmp(fields[j], m->keys[i])) f = j;
      if (f < 0) {
        const char *sug = closest(m->keys[i], fields, 4);
        if (sug) cerr(c, &m->key_marks[i], NULL, "unknown key '%s' (did you mean '%s'?)", fk, sug);
        else cerr(c, &m->key_marks[i], NULL, "unknown key '%s' (a crop group has nmb, size, min_scale, max_scale)", fk);
        ok = false;
        continue;
      }
      have[f] = true;
      const struct unmix_ynode *v = m->items[i];
      switch (f) {
        case 0: ok &= get_int(c, v, fk, &IN(1, 64), &d.nmb_crops[g]); break;
        case 1: ok &= get_int(c, v, fk, &IN(1, 4096), &d.size_crops[g]); break;
        case 2: ok &= get_float(c, v, fk, &((struct range){0, 1, R_LO | R_HI | R_LO_OPEN}), &d.min_scale[g]); break;
        case 3: ok &= get_float(c, v, fk, &((struct range){0, 1, R_LO | R_HI | R_LO_OPEN}), &d.max_scale[g]); break;
      }
    }
    for (int j = 0; j < 4; j++)
      if (!have[j]) {
        cerr(c, &m->mark, gk, "missing '%s' (a crop group needs nmb, size, min_scale and max_scale)", fields[j]);
        ok = false;
      }
    if (ok && d.min_scale[g] > d.max_scale[g]) {
      cerr(c, &m->mark, gk, "min_scale %g is larger than max_scale %g", (double)d.min_scale[g], (double)d.max_scale[g]);
      ok = false;
    }
  }
  if (ok) cfg->data = d;
}

static void bind_key(struct bind_ctx *c, const struct key_def *k, const struct unmix_ynode *n,
                     struct unmix_config *cfg) {
  char *f = (char *)cfg + k->off;
  char b[128];
  const char *key = k->path;
  switch (k->type) {
    case K_STR:
    case K_NAME: {
      const char *s = NULL;
      if (k->names) {
        int i = choice_index(c, n, key, k->names);
        if (i < 0) return;
        s = k->names[i];
      } else if (!get_str(c, n, key, &s)) {
        return;
      }
      if (strlen(s) >= k->size) {
        cerr(c, &n->mark, key, "too long (%zu bytes; at most %zu)", strlen(s), k->size - 1);
        return;
      }
      if (k->type == K_NAME) {
        for (const char *p = s; *p; p++)
          if (!isalnum((unsigned char)*p) && !strchr("._+-", *p)) {
            cerr(c, &n->mark, key, "'%.60s' contains '%c': a name may use letters, digits and . _ + - only", s, *p);
            return;
          }
        if (s[0] == '.') {
          cerr(c, &n->mark, key, "a name may not start with '.'");
          return;
        }
      }
      memset(f, 0, k->size);
      memcpy(f, s, strlen(s));
      return;
    }
    case K_INT: {
      int v;
      if (get_int(c, n, key, &k->r, &v)) memcpy(f, &v, sizeof v);
      return;
    }
    case K_U64: {
      uint64_t v;
      if (get_u64(c, n, key, &v)) memcpy(f, &v, sizeof v);
      return;
    }
    case K_FLOAT: {
      float v;
      if (get_float(c, n, key, &k->r, &v)) memcpy(f, &v, sizeof v);
      return;
    }
    case K_BOOL: {
      bool v;
      if (get_bool(c, n, key, &v)) memcpy(f, &v, sizeof v);
      return;
    }
    case K_ENUM: {
      int i = choice_index(c, n, key, k->names);
      if (i >= 0) memcpy(f, &i, sizeof i);
      return;
    }
    case K_INTLIST: {
      if (unmix_ynode_is_null(n)) {
        memset(f, 0, k->size * sizeof(int));
        memset((char *)cfg + k->count_off, 0, sizeof(int));
        return;
      }
      if (n->kind != UNMIX_YNODE_SEQ) {
        cerr(c, &n->mark, key, "expected a list of integers like [60, 80], got %s", shown(n, b, sizeof b));
        return;
      }
      if (n->n > k->size) {
        cerr(c, &n->mark, key, "%zu values given; at most %zu", n->n, k->size);
        return;
      }
      int vals[64] = {0};
      bool ok = true;
      for (size_t i = 0; i < n->n; i++) {
        char ik[96];
        snprintf(ik, sizeof ik, "%s[%zu]", key, i);
        ok &= get_int(c, n->items[i], ik, &k->r, &vals[i]);
      }
      if (!ok) return;
      int cnt = (int)n->n;
      memcpy(f, vals, k->size * sizeof(int));
      memcpy((char *)cfg + k->count_off, &cnt, sizeof cnt);
      return;
    }
    case K_NORM3: {
      if (unmix_ynode_is_null(n) || (n->kind == UNMIX_YNODE_SEQ && n->n == 0)) {
        memset(f, 0, 3 * sizeof(float));
        c->norm_n[k->size] = 0;
        return;
      }
      if (n->kind != UNMIX_YNODE_SEQ || n->n != 3) {
        cerr(c, &n->mark, key, "expected [] or 3 numbers (one per RGB channel), got %s",
             n->kind == UNMIX_YNODE_SEQ ? "a list of another length" : shown(n, b, sizeof b));
        return;
      }
      float v[3];
      bool ok = true;
      for (int i = 0; i < 3; i++) {
        char ik[96];
        snprintf(ik, sizeof ik, "%s[%d]", key, i);
        ok &= get_float(c, n->items[i], ik, &k->r, &v[i]);
      }
      if (!ok) return;
      memcpy(f, v, sizeof v);
      c->norm_n[k->size] = 3;
      return;
    }
    case K_CROPS: bind_crops(c, n, key, cfg); return;
  }
}

static bool is_section(const char *path) {
  size_t n = strlen(path);
  for (int i = 0; i < N_KEYS; i++)
    if (!strncmp(g_keys[i].path, path, n) && g_keys[i].path[n] == '.') return true;
  return false;
}

static void bind_map(struct bind_ctx *c, const struct unmix_ynode *map, const char *prefix, struct unmix_config *cfg) {
  char b[128];
  for (size_t i = 0; i < map->n; i++) {
    char full[256];
    snprintf(full, sizeof full, "%s%s%s", prefix, prefix[0] ? "." : "", map->keys[i]);
    const struct unmix_ymark *km = &map->key_marks[i];
    const struct unmix_ynode *v = map->items[i];
    if (strchr(map->keys[i], '.')) {
      if (find_key(full))
        cerr(c, km, NULL, "key '%s': a dotted key is not expanded inside a manifest; nest it under its section "
             "(dotted paths are for --set)", full);
      else
        cerr(c, km, NULL, "unknown key '%s'", full);
      continue;
    }
    const struct key_def *k = find_key(full);
    if (k) {
      bind_key(c, k, v, cfg);
    } else if (is_section(full)) {
      if (v->kind == UNMIX_YNODE_MAP) bind_map(c, v, full, cfg);
      else if (!unmix_ynode_is_null(v))
        cerr(c, &v->mark, full, "this is a section: expected a mapping of its keys, got %s", shown(v, b, sizeof b));
    } else {
      const char *sug = unmix_config_suggest(full);
      if (sug) cerr(c, km, NULL, "unknown key '%s' (did you mean '%s'?)", full, sug);
      else cerr(c, km, NULL, "unknown key '%s' (`unmix validate --keys` lists them)", full);
    }
  }
}

/* The mark of the first of the keys present in the tree (NULL = all defaults). */
static const struct unmix_ymark *mark_of(struct bind_ctx *c, const char *k1, const char *k2) {
  const struct unmix_ynode *n = c->root ? unmix_ytree_find(c->root, k1, NULL) : NULL;
  if (!n && k2 && c->root) n = unmix_ytree_find(c->root, k2, NULL);
  return n ? &n->mark : NULL;
}

static void check_increasing(struct bind_ctx *c, const char *key, const int *v, int n) {
  for (int i = 1; i < n; i++)
    if (v[i] <= v[i - 1]) {
      cerr(c, mark_of(c, key, NULL), key, "milestones must increase: %d comes after %d", v[i], v[i - 1]);
      return;
    }
}

static void cross_checks(struct bind_ctx *c, struct unmix_config *cfg) {
  const int bs = cfg->optim.batch_size;
  if (bs % cfg->model.bn_splits)
    cerr(c, mark_of(c, "optim.batch_size", "model.bn_splits"), "optim.batch_size",
         "%d is not a multiple of model.bn_splits %d (SplitBatchNorm divides the batch evenly)", bs,
         cfg->model.bn_splits);
  if (cfg->method == UNMIX_METHOD_MOCO) {
    long keys = (long)bs * (cfg->moco.symmetric ? 2 : 1);
    if (cfg->moco.K % keys)
      cerr(c, mark_of(c, "moco.K", "optim.batch_size"), "moco.K",
           "%d is not a multiple of the %ld keys enqueued per step (optim.batch_size %d%s), as the reference asserts",
           cfg->moco.K, keys, bs, cfg->moco.symmetric ? " x 2 for moco.symmetric" : "");
    if (cfg->model.head != UNMIX_HEAD_LINEAR && cfg->model.head != UNMIX_HEAD_MLP)
      cerr(c, mark_of(c, "model.head", "method"), "model.head", "method moco needs head linear or mlp, not %s",
           unmix_head_name(cfg->model.head));
  } else if (cfg->method == UNMIX_METHOD_SWAV && cfg->model.head != UNMIX_HEAD_SWAV) {
    cerr(c, mark_of(c, "model.head", "method"), "model.head", "method swav needs head swav, not %s",
         unmix_head_name(cfg->model.head));
  } else if ((cfg->method == UNMIX_METHOD_SIMCLR || cfg->method == UNMIX_METHOD_BYOL) &&
             cfg->model.head != UNMIX_HEAD_NONE) {
    /* their projection head / predictor (model.hidden, model.dim) live in the method */
    cerr(c, mark_of(c, "model.head", "method"), "model.head", "method %s needs head none, not %s",
         unmix_method_name(cfg->method), unmix_head_name(cfg->model.head));
  }
  if ((cfg->method == UNMIX_METHOD_SIMCLR || cfg->method == UNMIX_METHOD_BYOL) && cfg->optim.kind != UNMIX_OPTIM_ADAM)
    cerr(c, mark_of(c, "optim.kind", "method"), "optim.kind", "method %s trains with adam (the W-MSE codebase), not %s",
         unmix_method_name(cfg->method), unmix_optim_name(cfg->optim.kind));
  if (cfg->optim.kind == UNMIX_OPTIM_ADAM && cfg->method != UNMIX_METHOD_SIMCLR && cfg->method != UNMIX_METHOD_BYOL)
    cerr(c, mark_of(c, "optim.kind", "method"), "optim.kind", "adam is the optimiser of simclr and byol only");
  int total = 0;
  for (int g = 0; g < cfg->data.n_crop_groups; g++) total += cfg->data.nmb_crops[g];
  /* crop indices are checked against explicit crop groups; with data.crops: [] the recipe's
   * views decide and the method checks them when it starts */
  for (int i = 0; cfg->method == UNMIX_METHOD_SWAV && cfg->data.n_crop_groups > 0 && i < cfg->swav.n_crops_for_assign;
       i++)
    if (cfg->swav.crops_for_assign[i] >= total) {
      cerr(c, mark_of(c, "swav.crops_for_assign", "data.crops"), "swav.crops_for_assign",
           "crop index %d does not exist: data.crops makes %d crops (indices 0..%d)", cfg->swav.crops_for_assign[i],
           total, total - 1);
      break;
    }
  if (cfg->method == UNMIX_METHOD_SWAV && cfg->swav.n_crops_for_assign == 0)
    cerr(c, mark_of(c, "swav.crops_for_assign", NULL), "swav.crops_for_assign", "SwAV needs at least one crop index");
  check_increasing(c, "schedule.milestones", cfg->schedule.milestones, cfg->schedule.n_milestones);
  check_increasing(c, "linear.milestones", cfg->linear.milestones, cfg->linear.n_milestones);
  if (c->norm_n[0] != c->norm_n[1])
    cerr(c, mark_of(c, c->norm_n[0] ? "data.mean" : "data.std", NULL), c->norm_n[0] ? "data.mean" : "data.std",
         "data.mean and data.std go together: give both (3 numbers each) or neither");
  if (cfg->data.channels == 2)
    cerr(c, mark_of(c, "data.channels", NULL), "data.channels", "must be 1 or 3, not 2");
  if (cfg->schedule.kind == UNMIX_SCHED_WARMUP_COSINE && cfg->schedule.warmup_epochs > cfg->train.epochs)
    cerr(c, mark_of(c, "schedule.warmup_epochs", "train.epochs"), "schedule.warmup_epochs",
         "%d warmup epochs exceed train.epochs %d", cfg->schedule.warmup_epochs, cfg->train.epochs);
  cfg->data.has_norm = c->norm_n[0] == 3;
}

static unmix_status bind_finish(struct bind_ctx *c) {
  if (!c->nerr) return UNMIX_OK;
  if (c->nerr > c->shown) {
    size_t room = sizeof c->msg - c->len;
    snprintf(c->msg + c->len, room, "\n(and %d more errors)", c->nerr - c->shown);
  }
  return unmix_error_set(UNMIX_ERR_CONFIG, "%s", c->msg);
}

unmix_status unmix_config_bind(const struct unmix_ynode *root, const char *file, struct unmix_config *cfg) {
  struct bind_ctx c;
  memset(&c, 0, sizeof c);
  c.file = file;
  c.root = root;
  c.norm_n[0] = cfg->data.has_norm ? 3 : 0;
  c.norm_n[1] = c.norm_n[0];
  bind_map(&c, root, "", cfg);
  if (!c.nerr) cross_checks(&c, cfg);
  return bind_finish(&c);
}

void unmix_config_init_defaults(struct unmix_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  struct bind_ctx c;
  memset(&c, 0, sizeof c);
  c.file = "(defaults)";
  for (int i = 0; i < N_KEYS; i++) {
    const struct key_def *k = &g_keys[i];
    /* the table's types must match the struct's fields */
    size_t want = k->type == K_ENUM || k->type == K_INT ? sizeof(int)
                  : k->type == K_FLOAT                  ? sizeof(float)
                  : k->type == K_BOOL                   ? sizeof(bool)
                  : k->type == K_U64                    ? sizeof(uint64_t)
                                                        : k->size;
    UNMIX_REQUIRE(k->size == want, "%s: field size %zu does not match its key type", k->path, k->size);
    struct unmix_ynode *n = NULL;
    unmix_status st = unmix_ytree_parse(k->def, strlen(k->def), k->path, &n);
    UNMIX_REQUIRE(st == UNMIX_OK && n, "default of %s does not parse", k->path);
    bind_key(&c, k, n, cfg);
    unmix_ytree_free(n);
    UNMIX_REQUIRE(c.nerr == 0, "default of %s is invalid: %s", k->path, c.msg);
  }
}

/* ---- the canonical dump ----------------------------------------------------------------------- */

/* The shortest %g text that reads back as the same float. */
static void fmt_float(float v, char *buf, size_t len) {
  double a = fabs((double)v);
  bool plain_range = a >= 1e-4 && a < 1e9; /* there, prefer 30 to 3e+01 */
  for (int p = 1; p <= 9; p++) {
    snprintf(buf, len, "%.*g", p, (double)v);
    if (strtof(buf, NULL) == v && !(plain_range && strchr(buf, 'e') && p < 9)) return;
  }
}

static void put_str(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
    else if (*p < 0x20 || *p == 0x7f) fprintf(f, "\\x%02x", *p);
    else fputc(*p, f);
  }
  fputc('"', f);
}

static void put_value(FILE *f, const struct key_def *k, const struct unmix_config *cfg) {
  const char *p = (const char *)cfg + k->off;
  char b[48];
  switch (k->type) {
    case K_STR:
    case K_NAME: {
      char s[UNMIX_PATH_MAX + 1];
      memcpy(s, p, k->size);
      s[k->size - 1] = 0;
      if (k->names) fputs(s, f);
      else put_str(f, s);
      return;
    }
    case K_INT: {
      int v;
      memcpy(&v, p, sizeof v);
      fprintf(f, "%d", v);
      return;
    }
    case K_U64: {
      uint64_t v;
      memcpy(&v, p, sizeof v);
      fprintf(f, "%" PRIu64, v);
      return;
    }
    case K_FLOAT: {
      float v;
      memcpy(&v, p, sizeof v);
      fmt_float(v, b, sizeof b);
      fputs(b, f);
      return;
    }
    case K_BOOL: {
      bool v;
      memcpy(&v, p, sizeof v);
      fputs(v ? "true" : "false", f);
      return;
    }
    case K_ENUM: {
      int v;
      memcpy(&v, p, sizeof v);
      fputs(name_of(k->names, v), f);
      return;
    }
    case K_INTLIST: {
      int cnt, v[64];
      memcpy(&cnt, (const char *)cfg + k->count_off, sizeof cnt);
      memcpy(v, p, k->size * sizeof(int));
      fputc('[', f);
      for (int i = 0; i < cnt; i++) fprintf(f, "%s%d", i ? ", " : "", v[i]);
      fputc(']', f);
      return;
    }
    case K_NORM3: {
      if (!cfg->data.has_norm) {
        fputs("[]", f);
        return;
      }
      float v[3];
      memcpy(v, p, sizeof v);
      fputc('[', f);
      for (int i = 0; i < 3; i++) {
        fmt_float(v[i], b, sizeof b);
        fprintf(f, "%s%s", i ? ", " : "", b);
      }
      fputc(']', f);
      return;
    }
    case K_CROPS: {
      const struct unmix_data_config *d = &cfg->data;
      fputc('[', f);
      for (int g = 0; g < d->n_crop_groups; g++) {
        char lo[48], hi[48];
        fmt_float(d->min_scale[g], lo, sizeof lo);
        fmt_float(d->max_scale[g], hi, sizeof hi);
        fprintf(f, "%s{nmb: %d, size: %d, min_scale: %s, max_scale: %s}", g ? ", " : "", d->nmb_crops[g],
                d->size_crops[g], lo, hi);
      }
      fputc(']', f);
      return;
    }
  }
}

char *unmix_config_to_yaml(const struct unmix_config *cfg) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  UNMIX_REQUIRE(f != NULL, "open_memstream failed");
  char section[32] = "";
  for (int i = 0; i < N_KEYS; i++) {
    const struct key_def *k = &g_keys[i];
    const char *dot = strchr(k->path, '.');
    const char *leaf = k->path;
    if (dot) {
      size_t sl = (size_t)(dot - k->path);
      if (strlen(section) != sl || strncmp(section, k->path, sl) != 0) {
        memcpy(section, k->path, sl);
        section[sl] = 0;
        fprintf(f, "%s:\n", section);
      }
      leaf = dot + 1;
      fputs("  ", f);
    } else {
      section[0] = 0;
    }
    fprintf(f, "%s: ", leaf);
    put_value(f, k, cfg);
    fputc('\n', f);
  }
  UNMIX_REQUIRE(fclose(f) == 0, "open_memstream close failed");
  return buf;
}
