/* `unmix collect` (collect.h): run directories -> one CSV + Markdown table per results table.
 * A run is a directory holding status.yaml/manifest.yaml (unmix train's layout); its
 * manifest's `paper:` block says which table and row it belongs to. */
#include "experiments/collect.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "core/io/atomic.h"
#include "core/io/csv.h"
#include "core/io/manifest.h"
#include "core/util/fs.h"

#define MAX_SCAN_DEPTH 4
#define MAX_PAPER_FIELDS 16

/* The tables written by default, in this order (the paper's four, then ours). */
static const char *const g_std_tables[] = {"cifar-moco", "swav-cifar-repo", "swav-cifar-paper", "imagenet-linear",
                                           "sweep-prob", "sweep-beta",      "demo"};
#define N_STD_TABLES ((int)(sizeof g_std_tables / sizeof g_std_tables[0]))

static const char *table_title(const char *t) {
  static const struct {
    const char *name, *title;
  } titles[] = {
      {"cifar-moco", "CIFAR MoCo (official repo README): kNN top-1 (%), last-epoch weights"},
      {"swav-cifar-repo", "SwAV on CIFAR, repository setting (batch 128, CIFAR mean/std): linear top-1 (%)"},
      {"swav-cifar-paper", "SwAV on CIFAR, paper figure (batch 256, ImageNet mean/std): linear top-1 (%)"},
      {"imagenet-linear", "ImageNet linear evaluation (paper Table 1), ResNet-50: top-1 (%)"},
      {"sweep-prob", "Sweep of P, the probability of the global mixture (else the region mixture)"},
      {"sweep-beta", "Sweep of beta, the mixing coefficient's distribution lambda ~ Beta(beta, beta)"},
      {"demo", "Demo: MoCo (symmetric) with and without Un-Mix on Fashion-MNIST, CPU"},
      {"fig2-simclr-byol", "SimCLR and BYOL with and without Un-Mix on CIFAR (the paper's Figure 2): kNN top-1 (%)"},
  };
  for (size_t i = 0; i < sizeof titles / sizeof titles[0]; i++)
    if (!strcmp(titles[i].name, t)) return titles[i].title;
  return "";
}

/* Tables whose rows the paper plots but gives no number for: our numbers only, no Paper or
 * Delta column in the Markdown (an empty column would read as a missing number). */
static bool table_ours_only(const char *t) { return !strcmp(t, "fig2-simclr-byol"); }

/* ---- small helpers ---------------------------------------------------------------------------- */

struct sbuf {
  char *p;
  size_t len, cap;
};

static void sb_put(struct sbuf *b, const char *s) {
  size_t n = strlen(s);
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (b->len + n + 1 > cap) cap *= 2;
    b->p = unmix_xrealloc(b->p, cap);
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n + 1);
  b->len += n;
}

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sbuf *b, const char *fmt, ...) {
  char tmp[2048];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < (int)sizeof tmp) {
    sb_put(b, tmp);
    return;
  }
  char *big = unmix_xmalloc((size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  sb_put(b, big);
  free(big);
}

/* Appends "; part" (or "part" to an empty buffer). */
static void detail_add(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void detail_add(struct sbuf *b, const char *fmt, ...) {
  char tmp[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (b->len) sb_put(b, "; ");
  sb_put(b, tmp);
}

static char *path_join(const char *a, const char *b) {
  size_t n = strlen(a) + strlen(b) + 2;
  char *p = unmix_xmalloc(n);
  size_t la = strlen(a);
  snprintf(p, n, "%s%s%s", a, (la && a[la - 1] == '/') ? "" : "/", b);
  return p;
}

static bool is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}
static bool is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* A whole text file (NUL-terminated); a NUL byte inside means it is not text. */
static unmix_status read_text(const char *path, char **out, size_t *len) {
  uint8_t *b = NULL;
  size_t n = 0;
  *out = NULL;
  UNMIX_TRY(unmix_fs_read(path, 0, &b, &n));
  if (memchr(b, 0, n)) {
    free(b);
    return unmix_error_set(UNMIX_ERR_FORMAT, "%s: binary data (a NUL byte) in a text file", path);
  }
  *out = (char *)b;
  if (len) *len = n;
  return UNMIX_OK;
}

static bool parse_int(const char *s, long long *out) {
  if (!s || !*s) return false;
  char *end = NULL;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || !end || *end || end == s) return false;
  *out = v;
  return true;
}
static bool parse_num(const char *s, double *out) {
  if (!s || !*s) return false;
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  if (errno || !end || *end || end == s || !isfinite(v)) return false;
  *out = v;
  return true;
}

/* ---- the paper CSV ---------------------------------------------------------------------------- */

struct paper_row {
  char *f[9]; /* table, dataset, method, variant, unmix, epochs, metric, value, source */
  bool unmix;
  int epochs;
  bool numeric;
  double value;
  int line;
};
enum { P_TABLE, P_DATASET, P_METHOD, P_VARIANT, P_UNMIX, P_EPOCHS, P_METRIC, P_VALUE, P_SOURCE };
static const char *const g_paper_cols[] = {"table", "dataset", "method", "variant", "unmix",
                                           "epochs", "metric",  "value",  "source"};

struct paper_set {
  struct paper_row *rows;
  int n;
};

static void paper_free(struct paper_set *p) {
  for (int i = 0; i < p->n; i++)
    for (int j = 0; j < 9; j++) free(p->rows[i].f[j]);
  free(p->rows);
  p->rows = NULL;
  p->n = 0;
}

static unmix_status paper_load(const char *path, struct paper_set *out) {
  memset(out, 0, sizeof *out);
  char *text = NULL;
  UNMIX_TRY(read_text(path, &text, NULL));
  unmix_status st = UNMIX_OK;
  int line_no = 0, cap = 0;
  bool header = false;
  char *p = text; /* lines walked by hand (not strtok) so empty lines keep the numbering */
  while (*p && st == UNMIX_OK) {
    char *nl = strchr(p, '\n');
    if (nl) *nl = 0;
    line_no++;
    size_t len = strlen(p);
    if (len && p[len - 1] == '\r') p[--len] = 0;
    if (len == 0) goto next;
    if (p[0] == '#') {
      /* the reference file carries its header as a comment: "# table,dataset,..." */
      const char *q = p + 1;
      while (*q == ' ') q++;
      if (!header && !strcmp(q, "table,dataset,method,variant,unmix,epochs,metric,value,source")) header = true;
      goto next;
    }
    char *f[MAX_PAPER_FIELDS + 1];
    int nf = unmix_csv_split_line(p, path, line_no, f, MAX_PAPER_FIELDS);
    if (nf < 0) {
      st = unmix_error_code();
      break;
    }
    if (nf > MAX_PAPER_FIELDS) {
      st = unmix_error_set(UNMIX_ERR_FORMAT, "%s:%d: too many fields", path, line_no);
      break;
    }
    if (!header) {
      header = true;
      bool ok = nf == 9;
      for (int i = 0; ok && i < 9; i++) ok = !strcmp(f[i], g_paper_cols[i]);
      for (int i = 0; i < nf; i++) free(f[i]);
      if (!ok)
        st = unmix_error_set(UNMIX_ERR_FORMAT,
                             "%s:%d: expected the header "
                             "table,dataset,method,variant,unmix,epochs,metric,value,source",
                             path, line_no);
      goto next;
    }
    if (nf != 9) {
      for (int i = 0; i < nf; i++) free(f[i]);
      st = unmix_error_set(UNMIX_ERR_FORMAT, "%s:%d: expected 9 fields, got %d", path, line_no, nf);
      break;
    }
    struct paper_row r;
    memset(&r, 0, sizeof r);
    for (int i = 0; i < 9; i++) r.f[i] = f[i];
    r.line = line_no;
    long long ep = 0;
    if (strcmp(r.f[P_UNMIX], "yes") && strcmp(r.f[P_UNMIX], "no")) {
      st = unmix_error_set(UNMIX_ERR_FORMAT, "%s:%d: column 'unmix': expected yes or no, got '%.40s'", path, line_no,
                           r.f[P_UNMIX]);
    } else if (!parse_int(r.f[P_EPOCHS], &ep) || ep < 0 || ep > 1000000) {
      st = unmix_error_set(UNMIX_ERR_FORMAT, "%s:%d: column 'epochs': '%.40s' is not an epoch count", path, line_no,
                           r.f[P_EPOCHS]);
    } else if (!r.f[P_TABLE][0] || !r.f[P_METRIC][0]) {
      st = unmix_error_set(UNMIX_ERR_FORMAT, "%s:%d: empty table or metric", path, line_no);
    }
    if (st != UNMIX_OK) {
      for (int i = 0; i < 9; i++) free(r.f[i]);
      break;
    }
    r.unmix = !strcmp(r.f[P_UNMIX], "yes");
    r.epochs = (int)ep;
    r.numeric = parse_num(r.f[P_VALUE], &r.value);
    if (out->n == cap) {
      cap = cap ? 2 * cap : 64;
      out->rows = unmix_xrealloc(out->rows, (size_t)cap * sizeof *out->rows);
    }
    out->rows[out->n++] = r;
  next:
    if (!nl) break;
    p = nl + 1;
  }
  if (st == UNMIX_OK && !header) st = unmix_error_set(UNMIX_ERR_FORMAT, "%s: no header line", path);
  free(text);
  if (st != UNMIX_OK) paper_free(out);
  return st;
}

/* ---- runs ------------------------------------------------------------------------------------- */

enum row_status { ST_NOT_RUN = 0, ST_SMOKE, ST_PARTIAL, ST_FULL };

struct run {
  char *dir;
  struct unmix_config cfg;
  /* status.yaml */
  char *status, *git_commit, *manifest_md5, *backend, *device, *precision, *started, *updated;
  int epochs_done, epochs_planned;
  /* derived */
  int ref_epochs;    /* paper.epochs, or the planned epochs without a paper reference */
  bool has_ref;      /* paper.epochs > 0 */
  bool has_value, has_top5;
  double top1, top5;
  int eval_epoch;
  enum row_status rs;
  char *detail;
  bool matched;
};

static void run_free(struct run *r) {
  free(r->dir);
  unmix_config_free(&r->cfg);
  free(r->status);
  free(r->git_commit);
  free(r->manifest_md5);
  free(r->backend);
  free(r->device);
  free(r->precision);
  free(r->started);
  free(r->updated);
  free(r->detail);
}

struct runlist {
  struct run *r;
  int n, cap;
};

static void runlist_free(struct runlist *l) {
  for (int i = 0; i < l->n; i++) run_free(&l->r[i]);
  free(l->r);
  memset(l, 0, sizeof *l);
}

/* status.yaml: a flat mapping written by the trainer (trainer.c write_status). */
static unmix_status read_status(const char *path, struct run *r) {
  char *text = NULL;
  size_t len = 0;
  UNMIX_TRY(read_text(path, &text, &len));
  struct unmix_ynode *root = NULL;
  unmix_status st = unmix_ytree_parse(text, len, path, &root);
  free(text);
  if (st != UNMIX_OK) return st;
  char pos[UNMIX_PATH_MAX + 32];
  if (root->kind != UNMIX_YNODE_MAP) {
    st = unmix_error_set(UNMIX_ERR_FORMAT, "%s: expected a mapping of key: value lines", unmix_ymark_str(&root->mark, pos, sizeof pos));
    goto out;
  }
  for (size_t i = 0; i < root->n; i++) {
    if (root->items[i]->kind != UNMIX_YNODE_SCALAR) {
      st = unmix_error_set(UNMIX_ERR_FORMAT, "%s: key '%s' must hold a plain value",
                           unmix_ymark_str(&root->key_marks[i], pos, sizeof pos), root->keys[i]);
      goto out;
    }
  }
  static const char *const req[] = {"status", "epochs_done", "epochs_planned"};
  for (int i = 0; i < 3; i++) {
    if (!unmix_ytree_find(root, req[i], NULL)) {
      st = unmix_error_set(UNMIX_ERR_FORMAT, "%s: missing key '%s'", path, req[i]);
      goto out;
    }
  }
  const struct unmix_ynode *n = unmix_ytree_find(root, "status", NULL);
  static const char *const states[] = {"running", "finished", "interrupted", "failed"};
  bool ok = false;
  for (int i = 0; i < 4; i++) ok = ok || !strcmp(n->str, states[i]);
  if (!ok) {
    st = unmix_error_set(UNMIX_ERR_FORMAT, "%s: status: expected running|finished|interrupted|failed, got '%.40s'",
                         unmix_ymark_str(&n->mark, pos, sizeof pos), n->str);
    goto out;
  }
  r->status = unmix_xstrdup(n->str);
  static const char *const ints[] = {"epochs_done", "epochs_planned"};
  int *dst[] = {&r->epochs_done, &r->epochs_planned};
  for (int i = 0; i < 2; i++) {
    n = unmix_ytree_find(root, ints[i], NULL);
    long long v = 0;
    if (!parse_int(n->str, &v) || v < 0 || v > 100000000) {
      st = unmix_error_set(UNMIX_ERR_FORMAT, "%s: %s: expected a non-negative integer, got '%.40s'",
                           unmix_ymark_str(&n->mark, pos, sizeof pos), ints[i], n->str);
      goto out;
    }
    *dst[i] = (int)v;
  }
  static const char *const strs[] = {"git_commit", "manifest_md5", "backend", "device",
                                     "precision",  "started",      "updated"};
  char **sdst[] = {&r->git_commit, &r->manifest_md5, &r->backend, &r->device,
                   &r->precision,  &r->started,      &r->updated};
  for (int i = 0; i < 7; i++) {
    n = unmix_ytree_find(root, strs[i], NULL);
    *sdst[i] = unmix_xstrdup(n && n->str ? n->str : "");
  }
out:
  unmix_ytree_free(root);
  return st;
}

static bool metric_is_knn(const char *m) { return !strncmp(m, "knn_", 4); }

/* Our number from metrics.csv: the last non-empty value of the metric's column. */
static unmix_status eval_metrics(struct run *r, struct sbuf *detail) {
  const char *metric = r->cfg.paper.metric[0] ? r->cfg.paper.metric : "knn_top1";
  char *path = path_join(r->dir, "metrics.csv");
  unmix_status st = UNMIX_OK;
  struct unmix_csv_table *t = NULL;
  if (!is_file(path)) {
    if (r->epochs_done > 0)
      st = unmix_error_set(UNMIX_ERR_FORMAT, "%s: missing, but %s/status.yaml says %d epochs are done", path, r->dir,
                           r->epochs_done);
    else
      detail_add(detail, "no epoch finished yet");
    goto out;
  }
  st = unmix_csv_read(path, &t);
  if (st != UNMIX_OK) goto out;
  int col = unmix_csv_column(t, metric);
  if (col < 0) {
    st = unmix_error_set(UNMIX_ERR_FORMAT, "%s/manifest.yaml: paper.metric '%s' is not a column of %s (nor linear_top1)",
                         r->dir, metric, path);
    goto out;
  }
  if (unmix_csv_column(t, "epoch") < 0) {
    st = unmix_error_set(UNMIX_ERR_FORMAT, "%s:1: no 'epoch' column", path);
    goto out;
  }
  char top5[64] = "";
  size_t ml = strlen(metric);
  if (ml > 4 && !strcmp(metric + ml - 4, "top1")) {
    snprintf(top5, sizeof top5, "%.*stop5", (int)(ml - 4), metric);
    if (unmix_csv_column(t, top5) < 0) top5[0] = 0;
  }
  long long last_epoch = 0;
  if (t->nrows > 0) {
    st = unmix_csv_get_int(t, t->nrows - 1, "epoch", &last_epoch);
    if (st != UNMIX_OK) goto out;
  }
  for (size_t i = t->nrows; i-- > 0;) {
    if (!unmix_csv_cell(t, i, col)[0]) continue;
    long long ep = 0;
    st = unmix_csv_get_double(t, i, metric, &r->top1);
    if (st == UNMIX_OK) st = unmix_csv_get_int(t, i, "epoch", &ep);
    if (st == UNMIX_OK && top5[0] && unmix_csv_cell(t, i, unmix_csv_column(t, top5))[0]) {
      st = unmix_csv_get_double(t, i, top5, &r->top5);
      r->has_top5 = st == UNMIX_OK;
    }
    if (st != UNMIX_OK) goto out;
    r->has_value = true;
    r->eval_epoch = (int)ep;
    if (ep != last_epoch) detail_add(detail, "%s of epoch %lld (the last epoch, %lld, has none)", metric, ep, last_epoch);
    break;
  }
  if (!r->has_value)
    detail_add(detail, t->nrows ? "no %s in metrics.csv" : "no epoch finished yet", metric);
out:
  unmix_csv_table_free(t);
  free(path);
  return st;
}

/* Our number from DIR/lincls.csv (the linear evaluation): best_top1 for the swav-cifar
 * protocol (the reference reports the best epoch), else the last epoch's test_top1.
 * Returns *complete = false when the evaluation is missing or has fewer epochs than planned. */
static unmix_status eval_lincls(struct run *r, struct sbuf *detail, bool *complete) {
  *complete = false;
  char *path = path_join(r->dir, "lincls.csv");
  unmix_status st = UNMIX_OK;
  struct unmix_csv_table *t = NULL;
  if (!is_file(path)) {
    detail_add(detail, "no linear evaluation yet (lincls.csv missing)");
    goto out;
  }
  st = unmix_csv_read(path, &t);
  if (st != UNMIX_OK) goto out;
  static const char *const need[] = {"epoch", "test_top1"};
  for (int i = 0; i < 2; i++)
    if (unmix_csv_column(t, need[i]) < 0) {
      st = unmix_error_set(UNMIX_ERR_FORMAT, "%s:1: no '%s' column", path, need[i]);
      goto out;
    }
  if (t->nrows == 0) {
    detail_add(detail, "linear evaluation has no epoch yet");
    goto out;
  }
  bool has5 = unmix_csv_column(t, "test_top5") >= 0;
  bool best = r->cfg.linear.protocol == UNMIX_LINCLS_SWAV_CIFAR || r->cfg.linear.protocol == UNMIX_LINCLS_SWAV_IMAGENET;
  size_t pick = t->nrows - 1;
  if (best) {
    double bv = -INFINITY;
    for (size_t i = 0; i < t->nrows; i++) {
      double v;
      st = unmix_csv_get_double(t, i, "test_top1", &v);
      if (st != UNMIX_OK) goto out;
      if (v > bv) {
        bv = v;
        pick = i;
      }
    }
  }
  long long ep = 0;
  st = unmix_csv_get_double(t, pick, "test_top1", &r->top1);
  if (st == UNMIX_OK) st = unmix_csv_get_int(t, pick, "epoch", &ep);
  if (st == UNMIX_OK && best && unmix_csv_column(t, "best_top1") >= 0) {
    /* the evaluator's own running best, which also covers epochs a resumed CSV lost */
    double b;
    st = unmix_csv_get_double(t, t->nrows - 1, "best_top1", &b);
    if (st == UNMIX_OK && b > r->top1 + 1e-9) {
      r->top1 = b;
      has5 = false; /* that epoch's top-5 is not in the file */
      ep = 0;
    }
  }
  if (st == UNMIX_OK && has5) {
    st = unmix_csv_get_double(t, pick, "test_top5", &r->top5);
    r->has_top5 = st == UNMIX_OK;
  }
  if (st != UNMIX_OK) goto out;
  r->has_value = true;
  r->eval_epoch = (int)ep;
  long long last = 0;
  st = unmix_csv_get_int(t, t->nrows - 1, "epoch", &last);
  if (st != UNMIX_OK) goto out;
  int planned = r->cfg.linear.epochs;
  if (last < planned) detail_add(detail, "linear evaluation %lld/%d epochs", last, planned);
  else *complete = true;
out:
  unmix_csv_table_free(t);
  free(path);
  return st;
}

/* Status word and detail of a run against its reference epochs. */
static unmix_status classify(struct run *r) {
  const struct unmix_config *c = &r->cfg;
  struct sbuf d = {0};
  sb_put(&d, "");
  r->has_ref = c->paper.epochs > 0;
  r->ref_epochs = r->has_ref ? c->paper.epochs : r->epochs_planned;
  bool complete = strcmp(r->status, "finished") == 0 && r->epochs_done >= r->ref_epochs;
  if (strcmp(r->status, "finished") != 0)
    detail_add(&d, !strcmp(r->status, "failed") ? "run failed (see %s/train.log)" : "run %s", r->status);
  if (r->epochs_done < r->ref_epochs) detail_add(&d, "%d/%d epochs", r->epochs_done, r->ref_epochs);
  /* settings that shrink the paper's protocol: a run with any of them is a smoke run */
  struct sbuf red = {0};
  sb_put(&red, "");
  if (c->train.steps_per_epoch > 0) detail_add(&red, "%d steps/epoch", c->train.steps_per_epoch);
  if (c->data.subset > 0) detail_add(&red, "train subset %d", c->data.subset);
  if (c->data.test_subset > 0) detail_add(&red, "test subset %d", c->data.test_subset);
  if (c->model.width < 64) detail_add(&red, "width %d", c->model.width);
  if (c->data.root[0]) {
    /* Makefile.paper marks the synthetic stand-ins it writes (unmix data synth) */
    char *mark = path_join(c->data.root, "SYNTHETIC");
    if (is_file(mark)) detail_add(&red, "synthetic %s stand-in", c->data.dataset);
    free(mark);
  }
  const char *metric = c->paper.metric[0] ? c->paper.metric : "knn_top1";
  if (metric_is_knn(metric)) {
    if (c->knn.bank_subset > 0) detail_add(&red, "kNN bank %d", c->knn.bank_subset);
    if (c->knn.test_subset > 0) detail_add(&red, "kNN queries %d", c->knn.test_subset);
  }
  if (red.len) detail_add(&d, "%s", red.p);
  unmix_status st;
  if (!strcmp(metric, "linear_top1")) {
    bool lin_complete = false;
    st = eval_lincls(r, &d, &lin_complete);
    complete = complete && lin_complete;
  } else {
    st = eval_metrics(r, &d);
  }
  if (st == UNMIX_OK) {
    complete = complete && r->has_value;
    if (r->has_ref && red.len) r->rs = ST_SMOKE;
    else r->rs = complete ? ST_FULL : ST_PARTIAL;
  }
  free(red.p);
  r->detail = d.p;
  return st;
}

/* Loads one run directory; *skip = true (with a warning) for a run that failed before
 * writing its manifest. */
static unmix_status run_load(const char *dir, struct run *r, bool *skip) {
  memset(r, 0, sizeof *r);
  unmix_config_init_defaults(&r->cfg);
  *skip = false;
  r->dir = unmix_xstrdup(dir);
  size_t dl = strlen(r->dir);
  while (dl > 1 && r->dir[dl - 1] == '/') r->dir[--dl] = 0;
  char *sp = path_join(r->dir, "status.yaml"), *mp = path_join(r->dir, "manifest.yaml");
  unmix_status st = UNMIX_OK;
  if (!is_file(sp)) {
    st = unmix_error_set(UNMIX_ERR_FORMAT, "%s: missing (a run directory needs status.yaml, written by unmix train)",
                         sp);
    goto out;
  }
  st = read_status(sp, r);
  if (st != UNMIX_OK) goto out;
  if (!is_file(mp)) {
    if (!strcmp(r->status, "failed")) {
      fprintf(stderr, "unmix collect: warning: %s failed before writing manifest.yaml (see its train.log); skipped\n",
              r->dir);
      *skip = true;
    } else {
      st = unmix_error_set(UNMIX_ERR_FORMAT, "%s: missing (status.yaml says '%s')", mp, r->status);
    }
    goto out;
  }
  st = unmix_manifest_load(mp, NULL, 0, &r->cfg);
  if (st != UNMIX_OK) goto out;
  st = classify(r);
out:
  free(sp);
  free(mp);
  return st;
}

static bool looks_like_run(const char *dir) {
  static const char *const marks[] = {"status.yaml", "manifest.yaml", "metrics.csv"};
  for (int i = 0; i < 3; i++) {
    char *p = path_join(dir, marks[i]);
    bool y = is_file(p);
    free(p);
    if (y) return true;
  }
  return false;
}

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static unmix_status scan(const char *dir, int depth, struct runlist *l) {
  if (looks_like_run(dir)) {
    struct run r;
    bool skip = false;
    unmix_status st = run_load(dir, &r, &skip);
    if (st != UNMIX_OK || skip) {
      run_free(&r);
      return st;
    }
    if (l->n == l->cap) {
      l->cap = l->cap ? 2 * l->cap : 16;
      l->r = unmix_xrealloc(l->r, (size_t)l->cap * sizeof *l->r);
    }
    l->r[l->n++] = r;
    return UNMIX_OK;
  }
  if (depth >= MAX_SCAN_DEPTH) return UNMIX_OK;
  DIR *d = opendir(dir);
  if (!d) return unmix_error_set(UNMIX_ERR_IO, "cannot open directory %s: %s", dir, strerror(errno));
  char **names = NULL;
  int n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char *p = path_join(dir, e->d_name);
    if (!is_dir(p)) {
      free(p);
      continue;
    }
    if (n == cap) {
      cap = cap ? 2 * cap : 16;
      names = unmix_xrealloc(names, (size_t)cap * sizeof *names);
    }
    names[n++] = p;
  }
  closedir(d);
  if (n) qsort(names, (size_t)n, sizeof *names, name_cmp);
  unmix_status st = UNMIX_OK;
  for (int i = 0; i < n; i++) {
    if (st == UNMIX_OK) st = scan(names[i], depth + 1, l);
    free(names[i]);
  }
  free(names);
  return st;
}

/* ---- tables ----------------------------------------------------------------------------------- */

struct row {
  const struct paper_row *paper; /* NULL: a run without a paper row */
  struct run *run;               /* the run the row shows (NULL: not run) */
  struct run **cand;             /* every run matching the row (row_offer), until row_finalize */
  int ncand;
  /* the runs averaged into `ours`, in seed order: `run` (= seeds[0]) and the runs of other seeds
   * with the same training configuration and the same completeness */
  struct run **seeds;
  int nseeds;
  double mean, std, mean5, std5; /* std: sample std over seeds, meaningful when nseeds > 1 */
  bool has5;                     /* every seed has a top-5 */
  struct sbuf others;            /* other runs matching the row (not averaged, not shown) */
};

static int status_rank(const struct run *r) { return r->rs == ST_FULL ? 3 : r->rs == ST_PARTIAL ? 2 : 1; }

static void row_offer(struct row *w, struct run *r) {
  w->cand = unmix_xrealloc(w->cand, (size_t)(w->ncand + 1) * sizeof *w->cand);
  w->cand[w->ncand++] = r;
}

/* Manifest keys that may differ between the seeds of one row: the seed itself, the run's name,
 * the paper: block (the row key, already equal), and settings that change no number (the loader
 * threads, the log interval: every random draw is keyed by sample, not by thread). */
static bool key_ignored_across_seeds(const char *key) {
  return !strcmp(key, "seed") || !strcmp(key, "name") || !strncmp(key, "paper.", 6) || !strcmp(key, "data.workers") ||
         !strcmp(key, "train.log_every");
}

static void count_diff(void *ctx, const char *key, const char *in_a, const char *in_b) {
  (void)in_a;
  (void)in_b;
  if (!key_ignored_across_seeds(key)) ++*(int *)ctx;
}

/* Two runs are seeds of one experiment: the same training configuration apart from the seed,
 * equally complete (status class, epochs done, a value or none), and different seeds. */
static bool same_experiment(const struct run *a, const struct run *b) {
  if (a->rs != b->rs || a->epochs_done != b->epochs_done || a->has_value != b->has_value) return false;
  if (!a->cfg.resolved_yaml || !b->cfg.resolved_yaml) return false;
  int n = 0;
  if (unmix_manifest_diff(a->cfg.resolved_yaml, b->cfg.resolved_yaml, count_diff, &n) < 0) return false;
  return n == 0;
}

/* The seeds of `lead` among the row's candidates: lead first, then one run per further seed
 * (the first in directory order: a second copy of a seed is another run, not another sample). */
static int seed_group(const struct row *w, struct run *lead, struct run **out) {
  int n = 0;
  out[n++] = lead;
  for (int i = 0; i < w->ncand; i++) {
    struct run *c = w->cand[i];
    if (c == lead || !same_experiment(lead, c)) continue;
    bool dup = false;
    for (int k = 0; k < n && !dup; k++) dup = out[k]->cfg.seed == c->cfg.seed;
    if (!dup) out[n++] = c;
  }
  return n;
}

/* Which run a row shows: the most complete, then the longest, then one with a value, then the
 * one with the most seeds, then the latest. */
static bool run_better(const struct run *a, int ga, const struct run *b, int gb) {
  if (status_rank(a) != status_rank(b)) return status_rank(a) > status_rank(b);
  if (a->epochs_done != b->epochs_done) return a->epochs_done > b->epochs_done;
  if (a->has_value != b->has_value) return a->has_value;
  if (ga != gb) return ga > gb;
  int c = strcmp(a->updated, b->updated);
  return c ? c > 0 : strcmp(a->dir, b->dir) < 0;
}

static void mean_std(const double *v, int n, double *mean, double *std) {
  double s = 0;
  for (int i = 0; i < n; i++) s += v[i];
  *mean = s / n;
  double q = 0;
  for (int i = 0; i < n; i++) q += (v[i] - *mean) * (v[i] - *mean);
  *std = n > 1 ? sqrt(q / (n - 1)) : 0;
}

static int run_seed_cmp(const void *x, const void *y) {
  const struct run *a = *(struct run *const *)x, *b = *(struct run *const *)y;
  return a->cfg.seed < b->cfg.seed ? -1 : a->cfg.seed > b->cfg.seed;
}

/* Picks the row's run and its seeds, averages them, lists the remaining candidates. */
static void row_finalize(struct row *w) {
  if (w->ncand == 0) return;
  struct run **g = unmix_xmalloc((size_t)w->ncand * sizeof *g);
  struct run *lead = NULL;
  int glead = 0;
  for (int i = 0; i < w->ncand; i++) {
    int n = seed_group(w, w->cand[i], g);
    if (!lead || run_better(w->cand[i], n, lead, glead)) {
      lead = w->cand[i];
      glead = n;
    }
  }
  w->seeds = g;
  w->nseeds = seed_group(w, lead, g);
  /* the group in seed order; the row shows its lowest seed (all are equally complete) */
  qsort(g, (size_t)w->nseeds, sizeof *g, run_seed_cmp);
  w->run = g[0];
  double *v = unmix_xmalloc((size_t)w->nseeds * sizeof *v), *v5 = unmix_xmalloc((size_t)w->nseeds * sizeof *v5);
  w->has5 = lead->has_value;
  for (int k = 0; k < w->nseeds; k++) {
    v[k] = g[k]->top1;
    v5[k] = g[k]->top5;
    w->has5 = w->has5 && g[k]->has_top5;
  }
  if (lead->has_value) {
    mean_std(v, w->nseeds, &w->mean, &w->std);
    mean_std(v5, w->nseeds, &w->mean5, &w->std5);
  }
  free(v);
  free(v5);
  for (int i = 0; i < w->ncand; i++) {
    bool in = false;
    for (int k = 0; k < w->nseeds && !in; k++) in = g[k] == w->cand[i];
    if (in) continue;
    if (!w->others.len) sb_put(&w->others, "");
    sb_printf(&w->others, "%s%s", w->others.len ? ", " : "", w->cand[i]->dir);
  }
}

static bool run_matches_paper(const struct run *r, const struct paper_row *p) {
  const struct unmix_paper_row *q = &r->cfg.paper;
  return !strcmp(q->table, p->f[P_TABLE]) && !strcmp(q->dataset, p->f[P_DATASET]) &&
         !strcmp(q->method, p->f[P_METHOD]) && !strcmp(q->variant, p->f[P_VARIANT]) && q->unmix == p->unmix &&
         q->epochs == p->epochs && !strcmp(q->metric, p->f[P_METRIC]);
}

static int run_epochs(const struct run *r) { return r->cfg.paper.epochs > 0 ? r->cfg.paper.epochs : r->epochs_planned; }

/* Order and identity of rows that come from runs alone. */
static int run_key_cmp(const struct run *a, const struct run *b) {
  const struct unmix_paper_row *p = &a->cfg.paper, *q = &b->cfg.paper;
  int c;
  if ((c = strcmp(p->dataset, q->dataset))) return c;
  if ((c = strcmp(p->method, q->method))) return c;
  if ((c = strcmp(p->variant, q->variant))) return c;
  if (p->unmix != q->unmix) return p->unmix ? 1 : -1;
  if (run_epochs(a) != run_epochs(b)) return run_epochs(a) < run_epochs(b) ? -1 : 1;
  if ((c = strcmp(p->metric, q->metric))) return c;
  if (a->cfg.unmix.prob != b->cfg.unmix.prob) return a->cfg.unmix.prob < b->cfg.unmix.prob ? -1 : 1;
  if (a->cfg.unmix.beta != b->cfg.unmix.beta) return a->cfg.unmix.beta < b->cfg.unmix.beta ? -1 : 1;
  return 0;
}

static int run_ptr_cmp(const void *x, const void *y) {
  const struct run *a = *(struct run *const *)x, *b = *(struct run *const *)y;
  int c = run_key_cmp(a, b);
  return c ? c : strcmp(a->dir, b->dir);
}

/* A paper row whose source says the authors never specified it (no code, no definition):
 * nothing can be run for it, and the table says so instead of "not run". */
#define NOT_SPECIFIED "not specified by the authors"
static const char *status_word(const struct row *w) {
  if (!w->run && w->paper && strstr(w->paper->f[P_SOURCE], NOT_SPECIFIED)) return NOT_SPECIFIED;
  if (!w->run) return "not run";
  switch (w->run->rs) {
    case ST_FULL: return w->run->has_ref ? "full" : "finished";
    case ST_PARTIAL: return "partial";
    case ST_SMOKE: return "smoke";
    default: return "not run";
  }
}

struct cells {
  char dataset[64], method[64], variant[64], unmix[8], epochs[16], metric[64], prob[32], beta[32];
  char ours[32], ours5[32], ours_std[32], ours5_std[32], seeds[16], paper[64], delta[32], eval_epoch[16], done[16],
      planned[16];
  const char *status, *detail, *source;
  char *detail_owned;
};

static void fill_cells(const struct row *w, struct cells *c) {
  memset(c, 0, sizeof *c);
  const struct run *r = w->run;
  if (w->paper) {
    const struct paper_row *p = w->paper;
    snprintf(c->dataset, sizeof c->dataset, "%s", p->f[P_DATASET]);
    snprintf(c->method, sizeof c->method, "%s", p->f[P_METHOD]);
    snprintf(c->variant, sizeof c->variant, "%s", p->f[P_VARIANT]);
    snprintf(c->unmix, sizeof c->unmix, "%s", p->unmix ? "yes" : "no");
    snprintf(c->epochs, sizeof c->epochs, "%d", p->epochs);
    snprintf(c->metric, sizeof c->metric, "%s", p->f[P_METRIC]);
    snprintf(c->paper, sizeof c->paper, "%s", p->f[P_VALUE]);
    c->source = p->f[P_SOURCE];
  } else {
    const struct unmix_paper_row *q = &r->cfg.paper;
    snprintf(c->dataset, sizeof c->dataset, "%s", q->dataset[0] ? q->dataset : r->cfg.data.dataset);
    snprintf(c->method, sizeof c->method, "%s", q->method[0] ? q->method : unmix_method_name(r->cfg.method));
    snprintf(c->variant, sizeof c->variant, "%s", q->variant);
    snprintf(c->unmix, sizeof c->unmix, "%s", q->unmix ? "yes" : "no");
    snprintf(c->epochs, sizeof c->epochs, "%d", run_epochs(r));
    snprintf(c->metric, sizeof c->metric, "%s", q->metric[0] ? q->metric : "knn_top1");
    c->source = "";
  }
  c->status = status_word(w);
  struct sbuf d = {0};
  sb_put(&d, "");
  if (!w->paper && r && r->has_ref && !table_ours_only(r->cfg.paper.table)) detail_add(&d, "no paper row for this key");
  if (r) {
    snprintf(c->prob, sizeof c->prob, "%g", r->cfg.unmix.prob);
    snprintf(c->beta, sizeof c->beta, "%g", r->cfg.unmix.beta);
    /* ours = the mean over the row's seeds; its std only where there are two seeds or more (one
     * seed has no spread to show: the cell stays empty rather than claiming 0) */
    snprintf(c->seeds, sizeof c->seeds, "%d", w->nseeds);
    if (r->has_value) {
      snprintf(c->ours, sizeof c->ours, "%.4f", w->mean);
      if (w->nseeds > 1) snprintf(c->ours_std, sizeof c->ours_std, "%.4f", w->std);
      if (r->eval_epoch > 0) snprintf(c->eval_epoch, sizeof c->eval_epoch, "%d", r->eval_epoch);
    }
    if (r->has_value && w->has5) {
      snprintf(c->ours5, sizeof c->ours5, "%.4f", w->mean5);
      if (w->nseeds > 1) snprintf(c->ours5_std, sizeof c->ours5_std, "%.4f", w->std5);
    }
    if (r->has_value && w->paper && w->paper->numeric)
      snprintf(c->delta, sizeof c->delta, "%.4f", w->mean - w->paper->value);
    snprintf(c->done, sizeof c->done, "%d", r->epochs_done);
    snprintf(c->planned, sizeof c->planned, "%d", r->epochs_planned);
    if (r->detail[0]) detail_add(&d, "%s", r->detail);
    if (w->nseeds > 1) {
      struct sbuf sd = {0};
      sb_put(&sd, "");
      for (int k = 0; k < w->nseeds; k++)
        sb_printf(&sd, "%sseed %lld: %s", k ? ", " : "", (long long)w->seeds[k]->cfg.seed, w->seeds[k]->dir);
      detail_add(&d, "mean of %d seeds (%s)", w->nseeds, sd.p);
      free(sd.p);
    }
    if (w->others.len) detail_add(&d, "other runs for this row: %s", w->others.p);
  }
  c->detail_owned = d.p;
  c->detail = d.p;
}

static unmix_status write_csv(const char *path, const char *table, struct row *rows, int n) {
  static const char *const cols[] = {UNMIX_COLLECT_COLUMNS};
  const int ncol = (int)(sizeof cols / sizeof cols[0]);
  struct unmix_csv_writer *w = NULL;
  UNMIX_TRY(unmix_csv_open(path, cols, ncol, false, &w));
  unmix_status st = UNMIX_OK;
  for (int i = 0; i < n && st == UNMIX_OK; i++) {
    struct cells c;
    fill_cells(&rows[i], &c);
    const struct run *r = rows[i].run;
    const char *f[] = {table,       c.dataset,     c.method,       c.variant,       c.unmix,         c.epochs,
                       c.metric,    c.prob,        c.beta,         c.ours,          c.ours5,         c.ours_std,
                       c.ours5_std, c.seeds,       c.paper,
                       c.delta,     c.status,      c.detail,       c.eval_epoch,    c.done,          c.planned,
                       r ? r->status : "",         r ? r->dir : "", r ? r->git_commit : "",
                       r ? r->manifest_md5 : "",   r ? r->backend : "", r ? r->device : "",
                       r ? r->precision : "",      r ? r->started : "", r ? r->updated : "",
                       c.source};
    _Static_assert(sizeof f / sizeof f[0] == 31, "one field per column");
    st = unmix_csv_write_row(w, f);
    free(c.detail_owned);
  }
  unmix_status cst = unmix_csv_close(w);
  return st != UNMIX_OK ? st : cst;
}

/* Markdown cell text: '|' escaped, newlines flattened. */
static void md_cell(struct sbuf *b, const char *s) {
  for (; s && *s; s++) {
    if (*s == '|') sb_put(b, "\\|");
    else if (*s == '\n' || *s == '\r') sb_put(b, " ");
    else {
      char c[2] = {*s, 0};
      sb_put(b, c);
    }
  }
}

static void md_num(struct sbuf *b, const char *csv_num, bool sign) {
  double v;
  if (!parse_num(csv_num, &v)) {
    md_cell(b, csv_num[0] ? csv_num : "—");
    return;
  }
  sb_printf(b, sign ? "%+.2f" : "%.2f", v);
}

/* "mean ± std" with two or more seeds; the number alone with one (its std cell is empty). */
static void md_mean_std(struct sbuf *b, const char *mean, const char *std) {
  md_num(b, mean, false);
  double v;
  if (parse_num(mean, &v) && parse_num(std, &v)) sb_printf(b, " ± %.2f", v);
}

static char *render_md(const char *table, struct row *rows, int n, const char *runs_desc, const char *paper_csv) {
  struct sbuf b = {0};
  char now[32];
  time_t t = time(NULL);
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
  const char *title = table_title(table);
  sb_printf(&b, "# %s%s%s\n\n", table, title[0] ? ": " : "", title);
  sb_printf(&b,
            "Collected by `unmix collect` on %s from %s; paper numbers from `%s`.\n"
            "Ours: `knn_top1` = kNN top-1 of the last epoch in the run's metrics.csv; `linear_top1` = the run's\n"
            "lincls.csv (best epoch for the SwAV-CIFAR protocol, last epoch otherwise). Status `full`: the\n"
            "run finished all the paper's epochs at the paper's settings; `partial`: fewer epochs, an unfinished\n"
            "run or evaluation; `smoke`: a shrunken run (SCALE=smoke) whose number is NOT the paper's protocol.\n"
            "Seeds: how many seeds (runs of the same configuration, `make SEEDS=n`) a row averages; Ours is their\n"
            "mean ± sample std, or the single run's number alone when there is one seed (no spread to show).\n\n",
            now, runs_desc, paper_csv);
  bool any5 = false, any_run = false, sweep = !strncmp(table, "sweep-", 6), paper_cols = !table_ours_only(table);
  if (!paper_cols) sb_put(&b, "The paper plots these runs and gives no number: this table shows ours only.\n\n");
  for (int i = 0; i < n; i++) {
    struct cells c;
    fill_cells(&rows[i], &c);
    any5 = any5 || c.ours5[0];
    any_run = any_run || rows[i].run;
    free(c.detail_owned);
  }
  if (n == 0) {
    sb_put(&b, "No runs for this table yet.\n");
    return b.p;
  }
  sb_put(&b, "| Dataset | Method | Variant | Un-Mix | Epochs | Metric |");
  if (sweep) sb_put(&b, " P | beta |");
  sb_put(&b, any5 ? " Ours | Ours top-5 | Seeds |" : " Ours | Seeds |");
  sb_put(&b, paper_cols ? " Paper | Delta | Status |\n" : " Status |\n");
  sb_put(&b, "|---|---|---|---|---:|---|");
  if (sweep) sb_put(&b, "---:|---:|");
  sb_put(&b, any5 ? "---:|---:|---:|" : "---:|---:|");
  sb_put(&b, paper_cols ? "---:|---:|---|\n" : "---|\n");
  for (int i = 0; i < n; i++) {
    struct cells c;
    fill_cells(&rows[i], &c);
    const char *f[] = {c.dataset, c.method, c.variant, c.unmix, c.epochs, c.metric};
    sb_put(&b, "|");
    for (int k = 0; k < 6; k++) {
      sb_put(&b, " ");
      md_cell(&b, f[k][0] ? f[k] : "—");
      sb_put(&b, " |");
    }
    if (sweep) {
      sb_put(&b, " ");
      md_cell(&b, c.prob[0] ? c.prob : "—");
      sb_put(&b, " | ");
      md_cell(&b, c.beta[0] ? c.beta : "—");
      sb_put(&b, " |");
    }
    sb_put(&b, " ");
    md_mean_std(&b, c.ours, c.ours_std);
    if (any5) {
      sb_put(&b, " | ");
      md_mean_std(&b, c.ours5, c.ours5_std);
    }
    sb_put(&b, " | ");
    md_cell(&b, c.seeds[0] ? c.seeds : "—");
    if (paper_cols) {
      sb_put(&b, " | ");
      md_num(&b, c.paper, false);
      sb_put(&b, " | ");
      md_num(&b, c.delta, true);
    }
    sb_put(&b, " | ");
    if (rows[i].run && rows[i].run->rs != ST_FULL) {
      sb_printf(&b, "**%s**", c.status);
      if (c.detail[0]) {
        sb_put(&b, ": ");
        md_cell(&b, c.detail);
      }
    } else {
      md_cell(&b, c.status);
      if (rows[i].run && c.detail[0]) {
        sb_put(&b, " (");
        md_cell(&b, c.detail);
        sb_put(&b, ")");
      }
    }
    sb_put(&b, " |\n");
    free(c.detail_owned);
  }
  if (any_run) {
    sb_put(&b,
           "\n## Provenance\n\n| Row | Run directory | Commit | Manifest md5 | Backend | Device | Precision | "
           "Epochs done/planned | Started | Updated |\n|---|---|---|---|---|---|---|---:|---|---|\n");
    for (int i = 0; i < n; i++) {
      const struct run *r = rows[i].run;
      if (!r) continue;
      struct cells c;
      fill_cells(&rows[i], &c);
      sb_put(&b, "| ");
      char label[256];
      snprintf(label, sizeof label, "%s %s %s%s%s%s, %s ep", c.dataset, c.method, c.variant,
               c.unmix[0] == 'y' ? " + Un-Mix" : "", sweep ? ", P " : "", sweep ? c.prob : "", c.epochs);
      if (sweep) {
        size_t l = strlen(label);
        snprintf(label + l, sizeof label - l, ", beta %s", c.beta);
      }
      md_cell(&b, label);
      sb_put(&b, " | `");
      md_cell(&b, r->dir);
      sb_put(&b, "` | ");
      const char *pf[] = {r->git_commit, r->manifest_md5, r->backend, r->device, r->precision};
      for (int k = 0; k < 5; k++) {
        md_cell(&b, pf[k][0] ? pf[k] : "—");
        sb_put(&b, " | ");
      }
      sb_printf(&b, "%d/%d | ", r->epochs_done, r->epochs_planned);
      md_cell(&b, r->started[0] ? r->started : "—");
      sb_put(&b, " | ");
      md_cell(&b, r->updated[0] ? r->updated : "—");
      sb_put(&b, " |\n");
      free(c.detail_owned);
    }
  }
  return b.p;
}

static bool table_wanted(const struct unmix_collect_options *o, const char *t) {
  if (!o->tables || o->n_tables == 0) return true;
  for (int i = 0; i < o->n_tables; i++)
    if (!strcmp(o->tables[i], t)) return true;
  return false;
}

/* Builds the rows of table `t`: the paper's rows (in the paper CSV's order) with their best run,
 * then rows for runs that match no paper row (sorted by key). */
static int build_rows(const char *t, const struct paper_set *ps, struct runlist *runs, struct row **out) {
  int n = 0, cap = 0;
  struct row *rows = NULL;
#define PUSH_ROW()                                                   \
  do {                                                               \
    if (n == cap) {                                                  \
      cap = cap ? 2 * cap : 16;                                      \
      rows = unmix_xrealloc(rows, (size_t)cap * sizeof *rows);       \
    }                                                                \
    memset(&rows[n], 0, sizeof rows[n]);                             \
    n++;                                                             \
  } while (0)
  for (int i = 0; i < ps->n; i++) {
    if (strcmp(ps->rows[i].f[P_TABLE], t)) continue;
    PUSH_ROW();
    rows[n - 1].paper = &ps->rows[i];
    for (int k = 0; k < runs->n; k++) {
      if (!run_matches_paper(&runs->r[k], &ps->rows[i])) continue;
      runs->r[k].matched = true;
      row_offer(&rows[n - 1], &runs->r[k]);
    }
  }
  struct run **extra = NULL;
  int ne = 0;
  for (int k = 0; k < runs->n; k++) {
    if (runs->r[k].matched || strcmp(runs->r[k].cfg.paper.table, t)) continue;
    extra = unmix_xrealloc(extra, (size_t)(ne + 1) * sizeof *extra);
    extra[ne++] = &runs->r[k];
  }
  if (ne) qsort(extra, (size_t)ne, sizeof *extra, run_ptr_cmp);
  for (int k = 0; k < ne; k++) {
    if (n > 0 && !rows[n - 1].paper && rows[n - 1].ncand && run_key_cmp(rows[n - 1].cand[0], extra[k]) == 0) {
      row_offer(&rows[n - 1], extra[k]);
      continue;
    }
    PUSH_ROW();
    row_offer(&rows[n - 1], extra[k]);
  }
#undef PUSH_ROW
  free(extra);
  for (int i = 0; i < n; i++) row_finalize(&rows[i]);
  *out = rows;
  return n;
}

static void rows_free(struct row *rows, int n) {
  for (int i = 0; i < n; i++) {
    free(rows[i].others.p);
    free(rows[i].cand);
    free(rows[i].seeds);
  }
  free(rows);
}

unmix_status unmix_collect(const struct unmix_collect_options *o) {
  static const char *const default_dirs[] = {"results/runs"};
  const char *const *dirs = o->n_run_dirs > 0 ? o->run_dirs : default_dirs;
  int ndirs = o->n_run_dirs > 0 ? o->n_run_dirs : 1;
  const char *out_dir = o->out_dir ? o->out_dir : "results";
  const char *paper_csv = o->paper_csv ? o->paper_csv : "results/paper/paper_results.csv";

  struct paper_set ps;
  UNMIX_TRY(paper_load(paper_csv, &ps));
  struct runlist runs = {0};
  unmix_status st = UNMIX_OK;
  struct sbuf desc = {0};
  sb_put(&desc, "");
  for (int i = 0; i < ndirs && st == UNMIX_OK; i++) {
    sb_printf(&desc, "%s`%s`", i ? ", " : "", dirs[i]);
    if (!is_dir(dirs[i])) {
      if (o->n_run_dirs == 0) continue; /* no results/runs yet: every row is "not run" */
      st = unmix_error_set(UNMIX_ERR_ARG, "%s: not a directory (give run directories or directories holding them)",
                           dirs[i]);
      break;
    }
    st = scan(dirs[i], 0, &runs);
  }
  /* the tables: the requested ones, or the standard ones plus any a run names */
  const char **tables = NULL;
  int nt = 0;
  if (st == UNMIX_OK) {
    if (o->tables && o->n_tables > 0) {
      for (int i = 0; i < o->n_tables; i++) {
        tables = unmix_xrealloc(tables, (size_t)(nt + 1) * sizeof *tables);
        tables[nt++] = o->tables[i];
      }
    } else {
      for (int i = 0; i < N_STD_TABLES; i++) {
        tables = unmix_xrealloc(tables, (size_t)(nt + 1) * sizeof *tables);
        tables[nt++] = g_std_tables[i];
      }
      for (int k = 0; k < runs.n; k++) {
        const char *t = runs.r[k].cfg.paper.table;
        bool have = false;
        for (int i = 0; i < nt && !have; i++) have = !strcmp(tables[i], t);
        if (!t[0]) {
          if (!o->quiet)
            fprintf(stderr, "unmix collect: note: %s has no paper.table in its manifest; not in any table\n",
                    runs.r[k].dir);
          continue;
        }
        if (!have) {
          tables = unmix_xrealloc(tables, (size_t)(nt + 1) * sizeof *tables);
          tables[nt++] = t;
        }
      }
    }
    for (int i = 0; i < nt; i++) {
      for (const char *c = tables[i]; *c; c++) {
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-' ||
              *c == '_' || *c == '.')) {
          st = unmix_error_set(UNMIX_ERR_ARG, "table name '%s' may only hold letters, digits, '-', '_' and '.'",
                               tables[i]);
          break;
        }
      }
      if (st != UNMIX_OK) break;
    }
  }
  if (st == UNMIX_OK) st = unmix_fs_mkdirs(out_dir, 0777);
  for (int i = 0; i < nt && st == UNMIX_OK; i++) {
    if (!table_wanted(o, tables[i])) continue;
    struct row *rows = NULL;
    int n = build_rows(tables[i], &ps, &runs, &rows);
    char name[256];
    snprintf(name, sizeof name, "%s.csv", tables[i]);
    char *csvp = path_join(out_dir, name);
    snprintf(name, sizeof name, "%s.md", tables[i]);
    char *mdp = path_join(out_dir, name);
    st = write_csv(csvp, tables[i], rows, n);
    char *md = render_md(tables[i], rows, n, desc.p, paper_csv);
    if (st == UNMIX_OK) {
      struct unmix_chunk ch = {md, strlen(md)};
      st = unmix_atomic_write(mdp, &ch, 1);
    }
    if (st == UNMIX_OK && o->print) printf("%s\n", md);
    if (st == UNMIX_OK && !o->quiet) {
      int cnt[4] = {0};
      for (int k = 0; k < n; k++) cnt[rows[k].run ? rows[k].run->rs : ST_NOT_RUN]++;
      fprintf(stderr, "unmix collect: %s (+ .md): %d rows: %d full, %d partial, %d smoke, %d not run\n", csvp, n,
              cnt[ST_FULL], cnt[ST_PARTIAL], cnt[ST_SMOKE], cnt[ST_NOT_RUN]);
    }
    free(md);
    free(csvp);
    free(mdp);
    rows_free(rows, n);
  }
  free(tables);
  free(desc.p);
  runlist_free(&runs);
  paper_free(&ps);
  return st;
}
