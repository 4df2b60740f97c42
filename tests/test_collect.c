/* `unmix collect` and the harness around it: run directories written here (status.yaml,
 * resolved manifest.yaml, metrics.csv, lincls.csv) -> the expected table rows, our/paper/delta
 * values, the full/partial/smoke/not-run markings; errors for malformed inputs naming the file
 * and line; scripts/run_row.sh's re-use / refusal logic; and every plots/NAME.gp rendering PNG +
 * SVG from small CSVs (skipped, by name, without gnuplot). */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/io/csv.h"
#include "core/io/manifest.h"
#include "experiments/collect.h"
#include "tests/support/testutil.h"

static char *g_dir;
static void setup(void) { g_dir = unmix_test_tmpdir("collect"); }
static void teardown(void) {
  unmix_test_rmdir(g_dir);
  free(g_dir);
}

/* ---- helpers ------------------------------------------------------------------------------------ */

static char *pathf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *pathf(const char *fmt, ...) {
  char rel[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(rel, sizeof rel, fmt, ap);
  va_end(ap);
  size_t n = strlen(g_dir) + strlen(rel) + 2;
  char *p = malloc(n);
  snprintf(p, n, "%s/%s", g_dir, rel);
  return p;
}

/* Writes `text` to g_dir/rel, creating the parent directories. */
static void wfile(const char *rel, const char *text) {
  char *p = pathf("%s", rel);
  unmix_test_write_text(p, text);
  free(p);
}

static const char *src(const char *rel) {
  static char buf[4][1024];
  static int k;
  k = (k + 1) % 4;
  return unmix_test_src_path(rel, buf[k], sizeof buf[k]);
}

static const char *status_text(const char *status, int done, int planned) {
  static char buf[1024];
  snprintf(buf, sizeof buf,
           "status: %s\nepochs_done: %d\nepochs_planned: %d\nsteps_per_epoch: 97\nglobal_step: 1\n"
           "git_commit: abc123def456\nversion: 0.1.0\nbackend: cpu\ndevice: \"Test CPU\"\nprecision: tf32\n"
           "threads: 2\nblas: \"x\"\nmanifest_md5: 0123456789abcdef0123456789abcdef\n"
           "started: 2026-01-01T00:00:00Z\nupdated: 2026-01-02T00:00:00Z\n",
           status, done, planned);
  return buf;
}

#define METRICS_HEADER                                                                                           \
  "epoch,steps,lr,loss,loss_main,loss_mix,loss_mix_flip,inst_top1,inst_top5,knn_top1,knn_top5,mix_global,"      \
  "mix_region,lam_mean,images_per_s,seconds\n"

/* metrics.csv with one row per kNN value ("" = no kNN that epoch); top-5 = top-1 + 5. */
static char *metrics_text(int n, const char *const *knn) {
  static char buf[8192];
  size_t len = (size_t)snprintf(buf, sizeof buf, METRICS_HEADER);
  for (int e = 0; e < n; e++) {
    char k5[32] = "";
    if (knn[e][0]) snprintf(k5, sizeof k5, "%.4f", atof(knn[e]) + 5);
    len += (size_t)snprintf(buf + len, sizeof buf - len, "%d,10,0.06,%g,1,0,0,50,60,%s,%s,0,0,1,100,1.5\n", e + 1,
                            9.0 - e, knn[e], k5);
  }
  return buf;
}

/* A run directory g_dir/rel: the resolved manifest of `manifest` (relative to the source tree)
 * with `sets`, a status.yaml, and optional metrics.csv / lincls.csv texts. */
static void make_run(const char *rel, const char *manifest, const char *const *sets, int nsets, const char *status,
                     const char *metrics, const char *lincls) {
  struct unmix_config cfg;
  unmix_status st = unmix_manifest_load(src(manifest), sets, nsets, &cfg);
  ck_assert_msg(st == UNMIX_OK, "%s: %s", manifest, unmix_error_message());
  char p[1024];
  snprintf(p, sizeof p, "%s/manifest.yaml", rel);
  wfile(p, cfg.resolved_yaml);
  unmix_config_free(&cfg);
  snprintf(p, sizeof p, "%s/status.yaml", rel);
  wfile(p, status);
  if (metrics) {
    snprintf(p, sizeof p, "%s/metrics.csv", rel);
    wfile(p, metrics);
  }
  if (lincls) {
    snprintf(p, sizeof p, "%s/lincls.csv", rel);
    wfile(p, lincls);
  }
}

static unmix_status run_collect(const char *runs_rel, const char *out_rel, const char *paper, const char *tables) {
  char *runs = pathf("%s", runs_rel), *out = pathf("%s", out_rel);
  const char *dirs[] = {runs};
  const char *tl[8];
  int nt = 0;
  char tbuf[256] = "";
  if (tables) {
    snprintf(tbuf, sizeof tbuf, "%s", tables);
    char *save = NULL;
    for (char *t = strtok_r(tbuf, ",", &save); t && nt < 8; t = strtok_r(NULL, ",", &save)) tl[nt++] = t;
  }
  struct unmix_collect_options o = {.run_dirs = dirs,
                                    .n_run_dirs = 1,
                                    .out_dir = out,
                                    .paper_csv = paper ? paper : src("results/paper/paper_results.csv"),
                                    .tables = nt ? tl : NULL,
                                    .n_tables = nt,
                                    .quiet = true};
  unmix_status st = unmix_collect(&o);
  free(runs);
  free(out);
  return st;
}

static struct unmix_csv_table *read_table(const char *rel) {
  char *p = pathf("%s", rel);
  struct unmix_csv_table *t = NULL;
  unmix_status st = unmix_csv_read(p, &t);
  ck_assert_msg(st == UNMIX_OK, "%s: %s", p, unmix_error_message());
  free(p);
  return t;
}

static const char *cell(const struct unmix_csv_table *t, int row, const char *col) {
  int c = unmix_csv_column(t, col);
  ck_assert_msg(c >= 0, "%s: no column %s", t->path, col);
  return unmix_csv_cell(t, (size_t)row, c);
}

/* The row whose key columns equal the given values (NULL-terminated name/value pairs), or -1. */
static int find_row(const struct unmix_csv_table *t, ...) {
  for (size_t r = 0; r < t->nrows; r++) {
    va_list ap;
    va_start(ap, t);
    bool ok = true;
    for (const char *k = va_arg(ap, const char *); k; k = va_arg(ap, const char *)) {
      const char *v = va_arg(ap, const char *);
      if (strcmp(cell(t, (int)r, k), v)) ok = false;
    }
    va_end(ap);
    if (ok) return (int)r;
  }
  return -1;
}

static char *slurp(const char *rel) {
  char *p = pathf("%s", rel);
  char *text = unmix_test_read(p, NULL);
  free(p);
  return text;
}

static bool exists_rel(const char *rel) {
  char *p = pathf("%s", rel);
  struct stat st;
  bool y = stat(p, &st) == 0;
  free(p);
  return y;
}

static void expect_contains(const char *hay, const char *needle) {
  ck_assert_msg(hay && strstr(hay, needle) != NULL, "expected '%s' in:\n%s", needle, hay ? hay : "(null)");
}

/* ---- paper rows, status markings --------------------------------------------------------------- */

START_TEST(test_knn_rows_and_markings) {
  const char *k_full[] = {"80", "85", "89.5"};
  make_run("runs/c10_asym", "configs/cifar10/moco_asym.yaml", NULL, 0, status_text("finished", 1000, 1000),
           metrics_text(3, k_full), NULL);
  /* a shorter, unfinished run of the same row: not shown, listed as another run */
  const char *k_short[] = {"40", "50"};
  make_run("runs/c10_asym_old", "configs/cifar10/moco_asym.yaml", NULL, 0, status_text("interrupted", 10, 1000),
           metrics_text(2, k_short), NULL);
  const char *k3[] = {"30", "35", "41.25"};
  make_run("runs/c10_asym_unmix", "configs/cifar10/moco_asym_unmix.yaml", NULL, 0,
           status_text("interrupted", 3, 1000), metrics_text(3, k3), NULL);
  const char *smoke_sets[] = {"train.epochs=2", "train.steps_per_epoch=4", "model.width=8"};
  const char *k2[] = {"60", "64.0625"};
  make_run("runs/c10_sym", "configs/cifar10/moco_sym.yaml", smoke_sets, 3, status_text("finished", 2, 2),
           metrics_text(2, k2), NULL);
  /* the last epoch has no kNN: our number is the last epoch that has one */
  const char *k_gap[] = {"88", "92.5", ""};
  make_run("runs/c10_sym_unmix", "configs/cifar10/moco_sym_unmix.yaml", NULL, 0, status_text("finished", 1000, 1000),
           metrics_text(3, k_gap), NULL);

  ck_assert_msg(run_collect("runs", "out", NULL, NULL) == UNMIX_OK, "%s", unmix_error_message());
  struct unmix_csv_table *t = read_table("out/cifar-moco.csv");
  ck_assert_int_eq((int)t->nrows, 8);
  int r = find_row(t, "dataset", "cifar10", "variant", "asymmetric", "unmix", "no", NULL);
  ck_assert_int_ge(r, 0);
  ck_assert_str_eq(cell(t, r, "ours"), "89.5000");
  ck_assert_str_eq(cell(t, r, "ours_top5"), "94.5000");
  ck_assert_str_eq(cell(t, r, "paper"), "89.11");
  ck_assert_str_eq(cell(t, r, "delta"), "0.3900");
  ck_assert_str_eq(cell(t, r, "status"), "full");
  ck_assert_str_eq(cell(t, r, "eval_epoch"), "3");
  ck_assert_str_eq(cell(t, r, "git_commit"), "abc123def456");
  ck_assert_str_eq(cell(t, r, "device"), "Test CPU");
  ck_assert_str_eq(cell(t, r, "epochs_done"), "1000");
  ck_assert_str_eq(cell(t, r, "prob"), "0.5");
  expect_contains(cell(t, r, "run_dir"), "runs/c10_asym");
  expect_contains(cell(t, r, "detail"), "other runs for this row");
  expect_contains(cell(t, r, "detail"), "c10_asym_old");

  r = find_row(t, "dataset", "cifar10", "variant", "asymmetric", "unmix", "yes", NULL);
  ck_assert_str_eq(cell(t, r, "status"), "partial");
  ck_assert_str_eq(cell(t, r, "ours"), "41.2500");
  expect_contains(cell(t, r, "detail"), "3/1000 epochs");
  expect_contains(cell(t, r, "detail"), "run interrupted");
  ck_assert_str_eq(cell(t, r, "run_status"), "interrupted");

  r = find_row(t, "dataset", "cifar10", "variant", "symmetric", "unmix", "no", NULL);
  ck_assert_str_eq(cell(t, r, "status"), "smoke");
  ck_assert_str_eq(cell(t, r, "ours"), "64.0625");
  ck_assert_str_eq(cell(t, r, "delta"), "-26.4275");
  expect_contains(cell(t, r, "detail"), "2/1000 epochs");
  expect_contains(cell(t, r, "detail"), "4 steps/epoch");
  expect_contains(cell(t, r, "detail"), "width 8");

  r = find_row(t, "dataset", "cifar10", "variant", "symmetric", "unmix", "yes", NULL);
  ck_assert_str_eq(cell(t, r, "ours"), "92.5000");
  ck_assert_str_eq(cell(t, r, "eval_epoch"), "2");
  expect_contains(cell(t, r, "detail"), "knn_top1 of epoch 2 (the last epoch, 3, has none)");

  for (int i = 0; i < 4; i++) {
    const char *v[] = {"asymmetric", "symmetric"}, *u[] = {"no", "yes"};
    r = find_row(t, "dataset", "cifar100", "variant", v[i / 2], "unmix", u[i % 2], NULL);
    ck_assert_int_ge(r, 0);
    ck_assert_str_eq(cell(t, r, "status"), "not run");
    ck_assert_str_eq(cell(t, r, "ours"), "");
    ck_assert_str_eq(cell(t, r, "delta"), "");
  }
  unmix_csv_table_free(t);

  char *md = slurp("out/cifar-moco.md");
  expect_contains(md, "| cifar10 | moco | asymmetric | no | 1000 | knn_top1 | 89.50 | 94.50 | 1 | 89.11 | +0.39 | full");
  expect_contains(md, "**smoke**: 2/1000 epochs");
  expect_contains(md, "**partial**: run interrupted; 3/1000 epochs");
  expect_contains(md, "| — | — | — | 63.64 | — | not run |");
  expect_contains(md, "## Provenance");
  expect_contains(md, "abc123def456");
  free(md);
  /* every standard table is written, the paper tables with every paper row */
  const char *std[] = {"swav-cifar-repo", "swav-cifar-paper", "imagenet-linear", "sweep-prob", "sweep-beta", "demo"};
  int rows[] = {20, 20, 10, 0, 0, 0};
  for (int i = 0; i < 6; i++) {
    char rel[256];
    snprintf(rel, sizeof rel, "out/%s.csv", std[i]);
    t = read_table(rel);
    ck_assert_msg((int)t->nrows == rows[i], "%s: %zu rows", rel, t->nrows);
    unmix_csv_table_free(t);
    snprintf(rel, sizeof rel, "out/%s.md", std[i]);
    ck_assert(exists_rel(rel));
  }
}
END_TEST

START_TEST(test_linear_rows) {
  const char *lin_sets[] = {"linear.epochs=3"};
  make_run("runs/swav400", "configs/swav_cifar10/swav.yaml", lin_sets, 1, status_text("finished", 400, 400),
           NULL,
           "epoch,lr,train_loss,train_top1,test_top1,test_top5,best_top1\n"
           "1,0.3,2,40,50,80,50\n2,0.2,1.5,60,70,90,70\n3,0.1,1.2,65,65,85,70\n");
  /* the 200-epoch column of the same table, trained but not evaluated yet */
  const char *e200[] = {"train.epochs=200", "paper.epochs=200", "name=swav_cifar10_e200"};
  const char *k1[] = {"30"};
  make_run("runs/swav200", "configs/swav_cifar10/swav.yaml", e200, 3, status_text("finished", 200, 200),
           metrics_text(1, k1), NULL);
  /* ImageNet: the last epoch's test_top1, and a linear evaluation shorter than planned */
  make_run("runs/inet", "configs/imagenet/mocov2_200.yaml", NULL, 0, status_text("finished", 200, 200), NULL,
           "epoch,lr,train_loss,train_top1,test_top1,test_top5,best_top1\n"
           "1,30,2,40,60,80,60\n2,30,1.5,60,67,88,67\n3,30,1.2,65,66.5,87.5,67\n");
  ck_assert_msg(run_collect("runs", "out", NULL, NULL) == UNMIX_OK, "%s", unmix_error_message());

  struct unmix_csv_table *t = read_table("out/swav-cifar-repo.csv");
  int r = find_row(t, "dataset", "cifar10", "unmix", "no", "epochs", "400", NULL);
  ck_assert_str_eq(cell(t, r, "ours"), "70.0000");
  ck_assert_str_eq(cell(t, r, "ours_top5"), "90.0000");
  ck_assert_str_eq(cell(t, r, "eval_epoch"), "2");
  ck_assert_str_eq(cell(t, r, "delta"), "-18.8000");
  ck_assert_str_eq(cell(t, r, "status"), "full");
  r = find_row(t, "dataset", "cifar10", "unmix", "no", "epochs", "200", NULL);
  ck_assert_str_eq(cell(t, r, "status"), "partial");
  ck_assert_str_eq(cell(t, r, "ours"), "");
  expect_contains(cell(t, r, "detail"), "no linear evaluation yet (lincls.csv missing)");
  r = find_row(t, "dataset", "cifar10", "unmix", "yes", "epochs", "400", NULL);
  ck_assert_str_eq(cell(t, r, "status"), "not run");
  unmix_csv_table_free(t);

  t = read_table("out/imagenet-linear.csv");
  r = find_row(t, "method", "moco", "variant", "v2", "unmix", "no", "epochs", "200", NULL);
  ck_assert_str_eq(cell(t, r, "ours"), "66.5000");
  ck_assert_str_eq(cell(t, r, "ours_top5"), "87.5000");
  ck_assert_str_eq(cell(t, r, "delta"), "-1.0000");
  ck_assert_str_eq(cell(t, r, "status"), "partial");
  expect_contains(cell(t, r, "detail"), "linear evaluation 3/100 epochs");
  r = find_row(t, "method", "cmc", NULL);
  ck_assert_str_eq(cell(t, r, "status"), "not run");
  expect_contains(cell(t, r, "paper_source"), "other method");
  /* Table 1's "multi-scale training" row: no code, no definition */
  r = find_row(t, "method", "moco", "variant", "v2-multiscale", NULL);
  ck_assert_str_eq(cell(t, r, "status"), "not specified by the authors");
  unmix_csv_table_free(t);
}
END_TEST

START_TEST(test_sweeps_demo_and_table_selection) {
  const char *k[] = {"70", "71.5"};
  const char *p25[] = {"unmix.prob=0.25", "paper.table=sweep-prob", "name=p25"};
  const char *p0[] = {"unmix.prob=0", "paper.table=sweep-prob", "name=p0"};
  const char *b5[] = {"unmix.beta=5", "paper.table=sweep-beta", "name=b5", "train.steps_per_epoch=4"};
  make_run("runs/sweep-prob/p0.25", "configs/cifar10/moco_sym_unmix.yaml", p25, 3,
           status_text("finished", 1000, 1000), metrics_text(2, k), NULL);
  make_run("runs/sweep-prob/p0", "configs/cifar10/moco_sym_unmix.yaml", p0, 3, status_text("finished", 1000, 1000),
           metrics_text(2, k), NULL);
  make_run("runs/sweep-beta/b5", "configs/cifar10/moco_sym_unmix.yaml", b5, 4, status_text("finished", 1000, 1000),
           metrics_text(2, k), NULL);
  const char *kd[] = {"70", "75.25"};
  make_run("runs/demo/a", "configs/fmnist/moco_sym.yaml", NULL, 0, status_text("finished", 3, 3),
           metrics_text(2, kd), NULL);
  make_run("runs/demo/b", "configs/fmnist/moco_sym_unmix.yaml", NULL, 0, status_text("running", 1, 3),
           metrics_text(1, kd), NULL);
  /* Figure 2's SimCLR/BYOL runs: a row each, ours only (the paper plots them, gives no number) */
  make_run("runs/fig2/simclr", "configs/cifar10/simclr.yaml", NULL, 0, status_text("finished", 1000, 1000),
           metrics_text(2, k), NULL);
  make_run("runs/fig2/byol_unmix", "configs/cifar100/byol_unmix.yaml", NULL, 0, status_text("finished", 1000, 1000),
           metrics_text(2, kd), NULL);
  ck_assert_msg(run_collect("runs", "out", NULL, NULL) == UNMIX_OK, "%s", unmix_error_message());
  struct unmix_csv_table *f2 = read_table("out/fig2-simclr-byol.csv");
  ck_assert_int_eq((int)f2->nrows, 2);
  int f2r = find_row(f2, "method", "byol", "unmix", "yes", NULL);
  ck_assert_int_ge(f2r, 0);
  ck_assert_str_eq(cell(f2, f2r, "dataset"), "cifar100");
  ck_assert_str_eq(cell(f2, f2r, "ours"), "75.2500");
  ck_assert_str_eq(cell(f2, f2r, "paper"), "");
  ck_assert_str_eq(cell(f2, f2r, "status"), "full");
  ck_assert_str_eq(cell(f2, f2r, "detail"), ""); /* not "no paper row for this key": none exists */
  unmix_csv_table_free(f2);
  char *f2md = slurp("out/fig2-simclr-byol.md");
  expect_contains(f2md, "| Ours | Ours top-5 | Seeds | Status |\n");
  expect_contains(f2md, "| cifar10 | simclr | — | no | 1000 | knn_top1 | 71.50 | 76.50 | 1 | full |");
  ck_assert_msg(!strstr(f2md, "Paper |"), "the ours-only table has a Paper column:\n%s", f2md);
  free(f2md);

  struct unmix_csv_table *t = read_table("out/sweep-prob.csv");
  ck_assert_int_eq((int)t->nrows, 2);
  ck_assert_str_eq(cell(t, 0, "prob"), "0"); /* sorted by P, not by directory name */
  ck_assert_str_eq(cell(t, 1, "prob"), "0.25");
  ck_assert_str_eq(cell(t, 1, "ours"), "71.5000");
  ck_assert_str_eq(cell(t, 1, "paper"), "");
  ck_assert_str_eq(cell(t, 1, "delta"), "");
  ck_assert_str_eq(cell(t, 1, "status"), "full");
  unmix_csv_table_free(t);
  t = read_table("out/sweep-beta.csv");
  ck_assert_int_eq((int)t->nrows, 1);
  ck_assert_str_eq(cell(t, 0, "beta"), "5");
  ck_assert_str_eq(cell(t, 0, "status"), "smoke");
  unmix_csv_table_free(t);
  char *md = slurp("out/sweep-prob.md");
  expect_contains(md, "| P | beta |");
  free(md);

  t = read_table("out/demo.csv");
  ck_assert_int_eq((int)t->nrows, 2);
  int r = find_row(t, "unmix", "no", NULL);
  ck_assert_str_eq(cell(t, r, "dataset"), "fashion-mnist");
  ck_assert_str_eq(cell(t, r, "status"), "finished"); /* no paper reference: complete as planned */
  ck_assert_str_eq(cell(t, r, "ours"), "75.2500");
  ck_assert_str_eq(cell(t, r, "ours_top5"), "80.2500");
  ck_assert_str_eq(cell(t, r, "epochs"), "3");
  r = find_row(t, "unmix", "yes", NULL);
  ck_assert_str_eq(cell(t, r, "status"), "partial");
  expect_contains(cell(t, r, "detail"), "1/3 epochs");
  unmix_csv_table_free(t);

  /* --tables: only those files */
  ck_assert_msg(run_collect("runs", "only", NULL, "demo") == UNMIX_OK, "%s", unmix_error_message());
  ck_assert(exists_rel("only/demo.csv"));
  ck_assert(exists_rel("only/demo.md"));
  ck_assert(!exists_rel("only/cifar-moco.csv"));
}
END_TEST

START_TEST(test_synthetic_data_is_smoke) {
  wfile("data/c10/SYNTHETIC", "synthetic stand-in\n");
  char *root = pathf("data/c10");
  char set[1200];
  snprintf(set, sizeof set, "data.root=%s", root);
  const char *sets[] = {set};
  const char *k[] = {"91"};
  make_run("runs/r", "configs/cifar10/moco_sym.yaml", sets, 1, status_text("finished", 1000, 1000), metrics_text(1, k),
           NULL);
  ck_assert_msg(run_collect("runs", "out", NULL, "cifar-moco") == UNMIX_OK, "%s", unmix_error_message());
  struct unmix_csv_table *t = read_table("out/cifar-moco.csv");
  int r = find_row(t, "dataset", "cifar10", "variant", "symmetric", "unmix", "no", NULL);
  ck_assert_str_eq(cell(t, r, "status"), "smoke");
  expect_contains(cell(t, r, "detail"), "synthetic cifar10 stand-in");
  unmix_csv_table_free(t);
  free(root);
}
END_TEST

/* ---- errors ----------------------------------------------------------------------------------- */

static void expect_error(const char *runs, const char *paper, const char *in_msg1, const char *in_msg2) {
  unmix_status st = run_collect(runs, "out", paper, NULL);
  ck_assert_msg(st != UNMIX_OK, "collect accepted %s", runs);
  expect_contains(unmix_error_message(), in_msg1);
  if (in_msg2) expect_contains(unmix_error_message(), in_msg2);
  ck_assert_msg(!exists_rel("out/cifar-moco.csv"), "a table was written despite the error");
}

START_TEST(test_errors_name_the_file) {
  const char *k[] = {"50", "60"};
  /* status.yaml: a bad epoch count, on line 2 */
  char st_bad[2048];
  snprintf(st_bad, sizeof st_bad, "%s", status_text("finished", 1, 1));
  char *e = strstr(st_bad, "epochs_done: 1");
  memcpy(e, "epochs_done: x", 14);
  make_run("r1/a", "configs/cifar10/moco_sym.yaml", NULL, 0, st_bad, metrics_text(2, k), NULL);
  expect_error("r1", NULL, "r1/a/status.yaml:2", "epochs_done");

  /* status.yaml: an unknown status */
  make_run("r2/a", "configs/cifar10/moco_sym.yaml", NULL, 0, status_text("done", 1, 1), metrics_text(2, k), NULL);
  expect_error("r2", NULL, "r2/a/status.yaml:1", "running|finished|interrupted|failed");

  /* status.yaml: not YAML key: value lines */
  make_run("r3/a", "configs/cifar10/moco_sym.yaml", NULL, 0, "- a\n- b\n", metrics_text(2, k), NULL);
  expect_error("r3", NULL, "r3/a/status.yaml", NULL);

  /* metrics.csv: a cell that is not a number (line 3) */
  make_run("r4/a", "configs/cifar10/moco_sym.yaml", NULL, 0, status_text("finished", 2, 2),
           METRICS_HEADER "1,10,0.06,9,1,0,0,50,60,50,55,0,0,1,100,1.5\n2,10,0.06,8,1,0,0,50,60,6x,65,0,0,1,100,1.5\n",
           NULL);
  expect_error("r4", NULL, "r4/a/metrics.csv:3", "knn_top1");

  /* metrics.csv: a row with a missing field */
  make_run("r5/a", "configs/cifar10/moco_sym.yaml", NULL, 0, status_text("finished", 2, 2),
           METRICS_HEADER "1,10,0.06\n", NULL);
  expect_error("r5", NULL, "r5/a/metrics.csv:2", NULL);

  /* a run directory without status.yaml */
  wfile("r6/a/metrics.csv", metrics_text(2, k));
  expect_error("r6", NULL, "r6/a/status.yaml", "missing");

  /* manifest.yaml with an unknown key */
  wfile("r7/a/manifest.yaml", "method: moco\nmodle:\n  width: 8\n");
  wfile("r7/a/status.yaml", status_text("finished", 1, 1));
  expect_error("r7", NULL, "r7/a/manifest.yaml", "modle");

  /* lincls.csv without test_top1 */
  make_run("r8/a", "configs/imagenet/mocov2_200.yaml", NULL, 0, status_text("finished", 200, 200), NULL,
           "epoch,lr,train_loss\n1,30,2\n");
  expect_error("r8", NULL, "r8/a/lincls.csv", "test_top1");

  /* the paper CSV: a row with a missing field (line 4), and a bad unmix value (line 3) */
  wfile("empty/.keep", "");
  wfile("paper1.csv", "# comment\ntable,dataset,method,variant,unmix,epochs,metric,value,source\n"
                      "cifar-moco,cifar10,moco,symmetric,yes,1000,knn_top1,92.25,x\ncifar-moco,cifar10,moco\n");
  char *p1 = pathf("paper1.csv");
  expect_error("empty", p1, "paper1.csv:4", "expected 9 fields");
  wfile("paper2.csv", "# table,dataset,method,variant,unmix,epochs,metric,value,source\n\n"
                      "cifar-moco,cifar10,moco,symmetric,maybe,1000,knn_top1,92.25,x\n");
  char *p2 = pathf("paper2.csv");
  expect_error("empty", p2, "paper2.csv:3", "unmix");
  char *p3 = pathf("nonexistent.csv");
  expect_error("empty", p3, "nonexistent.csv", NULL);
  free(p1);
  free(p2);
  free(p3);

  /* a runs directory that does not exist */
  expect_error("no-such-dir", NULL, "no-such-dir", "not a directory");
}
END_TEST

/* ---- the command and scripts/run_row.sh (need the built binary) ---------------------------------- */

static const char *unmix_bin(const char *case_name) {
  const char *bin = getenv("UNMIX_BIN");
  if (!bin) printf("SKIPPED (UNMIX_BIN not set; run through ctest): %s\n", case_name);
  return bin;
}

START_TEST(test_collect_command) {
  const char *bin = unmix_bin("test_collect_command");
  if (!bin) return;
  char cmd[4096], *out = NULL;
  snprintf(cmd, sizeof cmd, "'%s' collect --help 2>&1", bin);
  ck_assert_int_eq(unmix_test_sh(cmd, &out), 0);
  expect_contains(out, "usage: unmix collect");
  free(out);
  snprintf(cmd, sizeof cmd, "'%s' collect '%s/none' --paper '%s' --out '%s/o' 2>&1", bin, g_dir,
           src("results/paper/paper_results.csv"), g_dir);
  ck_assert_int_eq(unmix_test_sh(cmd, &out), 1);
  expect_contains(out, "unmix collect:");
  expect_contains(out, "none: not a directory");
  free(out);
  const char *k[] = {"50"};
  make_run("runs/a", "configs/cifar10/moco_sym.yaml", NULL, 0, status_text("finished", 1000, 1000), metrics_text(1, k),
           NULL);
  snprintf(cmd, sizeof cmd, "'%s' collect '%s/runs' --paper '%s' --out '%s/o' --tables cifar-moco --print 2>&1", bin,
           g_dir, src("results/paper/paper_results.csv"), g_dir);
  ck_assert_int_eq(unmix_test_sh(cmd, &out), 0);
  expect_contains(out, "| cifar10 | moco | symmetric | no | 1000 | knn_top1 | 50.00 | 55.00 | 1 |");
  expect_contains(out, "o/cifar-moco.csv (+ .md): 8 rows: 1 full, 0 partial, 0 smoke, 7 not run");
  free(out);
}
END_TEST

START_TEST(test_run_row_script) {
  const char *bin = unmix_bin("test_run_row_script");
  if (!bin) return;
  char cmd[8192], *out = NULL;
  const char *man = src("configs/cifar10/moco_sym.yaml");
  const char *script = src("scripts/run_row.sh");
  /* a finished run of exactly this resolved manifest is re-used without training */
  char *dir = pathf("runs/a");
  unmix_test_mkdirs(dir);
  snprintf(cmd, sizeof cmd,
           "md5=$('%s' validate '%s' --print --set train.epochs=3 --set backend=cpu | tail -n +2 | md5sum | cut -d' ' -f1) && "
           "printf 'status: finished\\nepochs_done: 3\\nepochs_planned: 3\\nmanifest_md5: %%s\\n' \"$md5\" > '%s/status.yaml'",
           bin, man, dir);
  ck_assert_int_eq(unmix_test_sh(cmd, NULL), 0);
  snprintf(cmd, sizeof cmd, "UNMIX='%s' BACKEND=cpu '%s' train '%s' '%s' --set train.epochs=3 2>&1", bin, script, man,
           dir);
  ck_assert_int_eq(unmix_test_sh(cmd, &out), 0);
  expect_contains(out, "finished (3/3 epochs), re-used");
  free(out);
  /* ... and a finished run of another manifest is refused, not re-used nor overwritten */
  snprintf(cmd, sizeof cmd, "UNMIX='%s' BACKEND=cpu '%s' train '%s' '%s' --set train.epochs=4 2>&1", bin, script, man,
           dir);
  ck_assert_int_eq(unmix_test_sh(cmd, &out), 1);
  expect_contains(out, "holds a finished run of another resolved manifest");
  free(out);
  /* --seed-index N: the same row with seed (manifest's + N) and name NAME_sN */
  char *dir2 = pathf("runs/a_s2");
  unmix_test_mkdirs(dir2);
  snprintf(cmd, sizeof cmd,
           "md5=$('%s' validate '%s' --print --set train.epochs=3 --set seed=2 --set name=cifar10_moco_sym_s2 "
           "--set backend=cpu | tail -n +2 | md5sum | cut -d' ' -f1) && "
           "printf 'status: finished\\nepochs_done: 3\\nepochs_planned: 3\\nmanifest_md5: %%s\\n' \"$md5\" > '%s/status.yaml'",
           bin, man, dir2);
  ck_assert_int_eq(unmix_test_sh(cmd, NULL), 0);
  snprintf(cmd, sizeof cmd, "UNMIX='%s' BACKEND=cpu '%s' --seed-index 2 train '%s' '%s' --set train.epochs=3 2>&1", bin,
           script, man, dir2);
  ck_assert_int_eq(unmix_test_sh(cmd, &out), 0);
  expect_contains(out, "finished (3/3 epochs), re-used");
  free(out);
  snprintf(cmd, sizeof cmd, "UNMIX='%s' BACKEND=cpu '%s' --seed-index 1 train '%s' '%s' --set train.epochs=3 2>&1", bin,
           script, man, dir2);
  ck_assert_int_eq(unmix_test_sh(cmd, &out), 1);
  expect_contains(out, "holds a finished run of another resolved manifest");
  free(out);
  snprintf(cmd, sizeof cmd, "UNMIX='%s' '%s' --seed-index x train '%s' '%s' 2>&1", bin, script, man, dir2);
  ck_assert_int_eq(unmix_test_sh(cmd, &out), 1);
  expect_contains(out, "--seed-index: expected a non-negative integer");
  free(out);
  free(dir2);
  /* an invalid override fails before any training */
  snprintf(cmd, sizeof cmd, "UNMIX='%s' BACKEND=cpu '%s' train '%s' '%s/new' --set train.epochz=4 2>&1", bin, script,
           man, g_dir);
  ck_assert_int_eq(unmix_test_sh(cmd, &out), 1);
  expect_contains(out, "invalid");
  free(out);
  /* an evaluation this binary does not have: optional = a note, required = an error */
  snprintf(cmd, sizeof cmd, "UNMIX='%s' '%s' eval no-such-cmd '%s' x.csv --optional -- '%s' no-such-cmd {run} 2>&1", bin,
           script, dir, bin);
  ck_assert_int_eq(unmix_test_sh(cmd, &out), 0);
  expect_contains(out, "has no 'no-such-cmd' command yet; skipping");
  free(out);
  snprintf(cmd, sizeof cmd, "UNMIX='%s' '%s' eval no-such-cmd '%s' x.csv -- '%s' no-such-cmd {run} 2>&1", bin, script,
           dir, bin);
  ck_assert_int_eq(unmix_test_sh(cmd, &out), 1);
  expect_contains(out, "has no 'no-such-cmd' command, needed for");
  free(out);
  /* an evaluation that exists runs once, then is re-used ({run} substituted, stamp written) */
  snprintf(cmd, sizeof cmd,
           "cd '%s' && UNMIX='%s' '%s' eval validate '%s' x.csv -- 'touch {run}/x.csv; echo ran' 2>&1 && "
           "UNMIX='%s' '%s' eval validate '%s' x.csv -- 'touch {run}/x.csv; echo ran' 2>&1",
           g_dir, bin, script, dir, bin, script, dir);
  ck_assert_int_eq(unmix_test_sh(cmd, &out), 0);
  expect_contains(out, "ran");
  expect_contains(out, "x.csv: up to date, re-used");
  free(out);
  free(dir);
}
END_TEST

/* ---- seeds: runs of one configuration with different seeds are averaged (make SEEDS=n) ----------- */

START_TEST(test_seeds_mean_std) {
  const char *man = "configs/cifar10/moco_sym_unmix.yaml";
  const char *k0[] = {"80", "90"}, *k1[] = {"80", "91"}, *k2[] = {"80", "92.5"}, *kdup[] = {"80", "99"},
             *kother[] = {"80", "50"}, *kpart[] = {"10"};
  const char *s1[] = {"seed=1", "name=x_s1"}, *s2[] = {"seed=2", "name=x_s2"}, *s3[] = {"seed=3"};
  const char *other[] = {"seed=4", "moco.K=1024"};
  const char *fin = status_text("finished", 1000, 1000);
  make_run("runs/s_a", man, NULL, 0, fin, metrics_text(2, k0), NULL);
  make_run("runs/s_b", man, s1, 2, fin, metrics_text(2, k1), NULL);
  make_run("runs/s_c", man, s2, 2, fin, metrics_text(2, k2), NULL);
  make_run("runs/s_d", man, s1, 1, fin, metrics_text(2, kdup), NULL);   /* a second copy of seed 1 */
  make_run("runs/s_e", man, other, 2, fin, metrics_text(2, kother), NULL); /* another configuration */
  make_run("runs/s_f", man, s3, 1, status_text("interrupted", 1, 1000), metrics_text(1, kpart), NULL);
  /* one seed only: no std */
  const char *k_one[] = {"70", "75.5"};
  make_run("runs/one", "configs/cifar10/moco_sym.yaml", NULL, 0, fin, metrics_text(2, k_one), NULL);
  /* a row without a paper row (a sweep point) with two seeds */
  const char *p0[] = {"unmix.prob=0.25", "paper.table=sweep-prob", "name=p25"};
  const char *p1[] = {"unmix.prob=0.25", "paper.table=sweep-prob", "name=p25_s1", "seed=1"};
  const char *kp0[] = {"60"}, *kp1[] = {"62"};
  make_run("runs/p25", man, p0, 3, fin, metrics_text(1, kp0), NULL);
  make_run("runs/p25_s1", man, p1, 4, fin, metrics_text(1, kp1), NULL);

  ck_assert_msg(run_collect("runs", "out", NULL, NULL) == UNMIX_OK, "%s", unmix_error_message());
  struct unmix_csv_table *t = read_table("out/cifar-moco.csv");
  int r = find_row(t, "dataset", "cifar10", "variant", "symmetric", "unmix", "yes", NULL);
  ck_assert_int_ge(r, 0);
  ck_assert_str_eq(cell(t, r, "seeds"), "3");
  ck_assert_str_eq(cell(t, r, "ours"), "91.1667");      /* (90 + 91 + 92.5) / 3 */
  ck_assert_str_eq(cell(t, r, "ours_std"), "1.2583");   /* sqrt(3.1667 / 2) */
  ck_assert_str_eq(cell(t, r, "ours_top5"), "96.1667");
  ck_assert_str_eq(cell(t, r, "ours_top5_std"), "1.2583");
  ck_assert_str_eq(cell(t, r, "delta"), "-1.0833");     /* the mean - the paper's 92.25 */
  ck_assert_str_eq(cell(t, r, "status"), "full");
  expect_contains(cell(t, r, "run_dir"), "runs/s_a");
  const char *d = cell(t, r, "detail");
  expect_contains(d, "mean of 3 seeds (seed 0: ");
  expect_contains(d, "seed 2: ");
  expect_contains(d, "other runs for this row: ");
  for (int i = 0; i < 3; i++) {
    const char *o[] = {"runs/s_d", "runs/s_e", "runs/s_f"};
    expect_contains(strstr(d, "other runs"), o[i]);
  }
  r = find_row(t, "dataset", "cifar10", "variant", "symmetric", "unmix", "no", NULL);
  ck_assert_str_eq(cell(t, r, "seeds"), "1");
  ck_assert_str_eq(cell(t, r, "ours"), "75.5000");
  ck_assert_str_eq(cell(t, r, "ours_std"), "");          /* one seed: no spread, not 0 */
  ck_assert_str_eq(cell(t, r, "ours_top5_std"), "");
  r = find_row(t, "dataset", "cifar100", "variant", "symmetric", "unmix", "no", NULL);
  ck_assert_str_eq(cell(t, r, "seeds"), "");
  unmix_csv_table_free(t);
  char *md = slurp("out/cifar-moco.md");
  expect_contains(md, "| knn_top1 | 91.17 ± 1.26 | 96.17 ± 1.26 | 3 | 92.25 | -1.08 | full");
  expect_contains(md, "| knn_top1 | 75.50 | 80.50 | 1 | ");
  free(md);

  t = read_table("out/sweep-prob.csv");
  ck_assert_int_eq((int)t->nrows, 1);
  ck_assert_str_eq(cell(t, 0, "seeds"), "2");
  ck_assert_str_eq(cell(t, 0, "ours"), "61.0000");
  ck_assert_str_eq(cell(t, 0, "ours_std"), "1.4142");
  unmix_csv_table_free(t);
}
END_TEST

/* ---- plots/NAME.gp render ------------------------------------------------------------------------ */

static bool have_gnuplot(const char *case_name) {
  if (unmix_test_sh("command -v gnuplot >/dev/null 2>&1", NULL) == 0) return true;
  printf("SKIPPED (gnuplot not installed; make deps installs gnuplot-nox): %s\n", case_name);
  return false;
}

/* Renders plots/NAME.gp with the -e assignments `vars` (OUT = the output base, substituted) and
 * checks that OUT.png and OUT.svg exist and are non-empty. */
static void render(const char *name, const char *out_rel, const char *vars) {
  char *outp = pathf("%s", out_rel);
  char *slash = strrchr(outp, '/');
  *slash = 0;
  unmix_test_mkdirs(outp);
  *slash = '/';
  char cmd[8192], script[256], *log = NULL;
  snprintf(script, sizeof script, "plots/%s.gp", name);
  snprintf(cmd, sizeof cmd, "gnuplot -e \"%s; out='%s'\" '%s' 2>&1", vars, outp, src(script));
  int rc = unmix_test_sh(cmd, &log);
  ck_assert_msg(rc == 0, "plots/%s.gp failed (%d):\n%s\n%s", name, rc, cmd, log);
  free(log);
  const char *ext[] = {".png", ".svg"};
  for (int i = 0; i < 2; i++) {
    char p[2048];
    snprintf(p, sizeof p, "%s%s", outp, ext[i]);
    struct stat st;
    ck_assert_msg(stat(p, &st) == 0 && st.st_size > 1000, "plots/%s.gp wrote no (or an empty) %s", name, p);
  }
  free(outp);
}

/* scripts/demo.sh end to end at a tiny size (`make demo` and `make study-fmnist` run it): two
 * seeds of each row of configs/fmnist/study trained side by side (DEMO_PARALLEL=1), the reference
 * levels, the summary table with mean +- std; the same seed trained one row after the other
 * (DEMO_PARALLEL=0) gives the same losses and kNN figures on the reference conv path; a DEMO_CONFIGS without the two
 * manifests and a bad DEMO_PARALLEL are refused by name. Needs the Debian Fashion-MNIST package
 * and gnuplot (make deps installs both). */
START_TEST(test_demo_script) {
  const char *bin = unmix_bin("test_demo_script");
  if (!bin || !have_gnuplot("test_demo_script")) return;
  char cmd[8192], *out = NULL;
  snprintf(cmd, sizeof cmd, "'%s' data check fashion-mnist '' --split test >/dev/null 2>&1", bin);
  if (unmix_test_sh(cmd, NULL) != 0) {
    printf("SKIPPED (Fashion-MNIST not installed; make deps installs dataset-fashion-mnist): test_demo_script\n");
    return;
  }
  char *outdir = pathf("study"), *seqdir = pathf("study-seq");
  /* the reference conv path: auto's oneDNN kernels give results that depend on the thread
   * count, and the two modes run with different counts */
  const char *tiny = "UNMIX_CPU_CONV=reference DEMO_CONFIGS=configs/fmnist/study BACKEND=cpu TSNE_CMD= DEMO_TITLE='Study (test)' "
                     "DEMO_SET='--set train.epochs=1 --set train.steps_per_epoch=2 --set data.subset=512 "
                     "--set model.width=4 --set knn.bank_subset=200 --set knn.test_subset=100'";
  snprintf(cmd, sizeof cmd, "cd '%s' && UNMIX='%s' DEMO_OUT='%s' SEEDS=2 DEMO_PARALLEL=1 %s scripts/demo.sh 2>&1",
           src("."), bin, outdir, tiny);
  int rc = unmix_test_sh(cmd, &out);
  ck_assert_msg(rc == 0, "demo.sh failed (%d):\n%s", rc, out);
  expect_contains(out, "configs/fmnist/study/moco_sym.yaml, moco_sym_unmix.yaml");
  expect_contains(out, "side by side");
  expect_contains(out, "[moco_sym_unmix] ");
  expect_contains(out, "# Study (test)");
  expect_contains(out, "| raw pixels (no training) |");
  expect_contains(out, "| untrained network (initialisation) |");
  expect_contains(out, "== skipped (TSNE_CMD is empty)");
  free(out);
  /* the summary: both rows averaged over the 2 seeds, each seed its own run directory */
  char *sum = pathf("study/demo_summary.csv");
  out = unmix_test_read(sum, NULL);
  ck_assert_ptr_nonnull(out);
  expect_contains(out, "row,knn_top1_mean,knn_top1_std,knn_top5_mean,knn_top5_std,seeds,epochs");
  ck_assert(strstr(out, "\nmoco_sym,") && strstr(out, "\nmoco_sym_unmix,"));
  ck_assert(strstr(out, ",2,1\n"));
  free(out);
  for (int i = 0; i < 2; i++) {
    char *m = pathf(i ? "study/runs/fmnist_moco_sym_unmix_s1/metrics.csv" : "study/runs/fmnist_moco_sym_s1/metrics.csv");
    struct stat st;
    ck_assert_msg(stat(m, &st) == 0, "no %s", m);
    free(m);
  }
  char *png = pathf("study/demo_curves.png");
  struct stat st;
  ck_assert(stat(png, &st) == 0 && st.st_size > 1000);
  free(png);
  free(sum);
  /* one after the other: every column but the timings (images_per_s, seconds: the last two) equal */
  snprintf(cmd, sizeof cmd, "cd '%s' && UNMIX='%s' DEMO_OUT='%s' SEEDS=1 DEMO_PARALLEL=0 %s scripts/demo.sh 2>&1",
           src("."), bin, seqdir, tiny);
  rc = unmix_test_sh(cmd, &out);
  ck_assert_msg(rc == 0, "demo.sh (DEMO_PARALLEL=0) failed (%d):\n%s", rc, out);
  expect_contains(out, "2/5 train MoCo + Un-Mix, seed 0 of 1");
  ck_assert_msg(!strstr(out, "side by side"), "DEMO_PARALLEL=0 trained side by side:\n%s", out);
  free(out);
  for (int i = 0; i < 2; i++) {
    const char *row = i ? "fmnist_moco_sym_unmix" : "fmnist_moco_sym";
    snprintf(cmd, sizeof cmd,
             "sed 's/,[^,]*,[^,]*$//' '%s/runs/%s/metrics.csv' > '%s/a.csv' && "
             "sed 's/,[^,]*,[^,]*$//' '%s/runs/%s/metrics.csv' > '%s/b.csv' && diff '%s/a.csv' '%s/b.csv' 2>&1",
             outdir, row, seqdir, seqdir, row, seqdir, seqdir, seqdir);
    char *d = NULL;
    rc = unmix_test_sh(cmd, &d);
    ck_assert_msg(rc == 0, "%s: side by side and one after the other differ:\n%s", row, d);
    free(d);
  }
  free(seqdir);
  free(outdir);
  snprintf(cmd, sizeof cmd, "cd '%s' && UNMIX='%s' DEMO_CONFIGS=configs scripts/demo.sh 2>&1", src("."), bin);
  ck_assert_int_eq(unmix_test_sh(cmd, &out), 1);
  expect_contains(out, "DEMO_CONFIGS=configs: needs moco_sym.yaml and moco_sym_unmix.yaml");
  free(out);
  snprintf(cmd, sizeof cmd, "cd '%s' && UNMIX='%s' DEMO_PARALLEL=2 scripts/demo.sh 2>&1", src("."), bin);
  ck_assert_int_eq(unmix_test_sh(cmd, &out), 1);
  expect_contains(out, "DEMO_PARALLEL must be auto, 0 or 1 (got '2')");
  free(out);
}
END_TEST

START_TEST(test_plots_render) {
  if (!have_gnuplot("test_plots_render")) return;
  /* inputs: runs (metrics, lincls, tsne), a hist CSV, and tables written by collect */
  const char *k[] = {"50", "55", "61"};
  const char *kb[] = {"52", "58", "64"};
  wfile("in/m1.csv", metrics_text(3, k));
  wfile("in/m2.csv", metrics_text(3, kb));
  const char *lincls = "epoch,lr,train_loss,train_top1,test_top1,test_top5,best_top1\n"
                       "1,30,2,40,60,80,60\n2,30,1.5,60,67,88,67\n3,30,1.2,65,66.5,87.5,67\n";
  wfile("in/l1.csv", lincls);
  char tsne[65536];
  size_t len = (size_t)snprintf(tsne, sizeof tsne, "x,y,label,class\n");
  for (int i = 0; i < 200; i++)
    len += (size_t)snprintf(tsne + len, sizeof tsne - len, "%d.5,%d.25,%d,class %d\n", (i * 37) % 50 - 25,
                            (i * 11) % 40 - 20, i % 10, i % 10);
  wfile("in/t1.csv", tsne);
  char hist[65536];
  len = (size_t)snprintf(hist, sizeof hist, "layer,checkpoint,bin_lo,bin_hi,count,density\n");
  const char *layers[] = {"conv1.weight", "layer1.0.conv1.weight", "layer2.0.conv1.weight",
                          "layer3.0.conv1.weight", "layer4.0.conv1.weight", "layer4.1.conv2.weight",
                          "fc.weight"};
  for (int l = 0; l < 7; l++)
    for (int c = 0; c < 2; c++)
      for (int b = 0; b < 10; b++)
        len += (size_t)snprintf(hist + len, sizeof hist - len, "%s,runs/%s/checkpoint.safetensors,%g,%g,%d,%g\n",
                                layers[l], c ? "moco_unmix" : "moco", -1 + 0.2 * b, -0.8 + 0.2 * b, 10 + b * (c + 1),
                                0.1 * (b + 1) * (c + 1));
  wfile("in/h.csv", hist);
  const char *lin_sets[] = {"linear.epochs=3"};
  make_run("runs/swav", "configs/swav_cifar10/swav_unmix.yaml", lin_sets, 1, status_text("finished", 400, 400), NULL,
           lincls);
  const char *p25[] = {"unmix.prob=0.25", "paper.table=sweep-prob", "name=p25"};
  const char *b2[] = {"unmix.beta=2", "paper.table=sweep-beta", "name=b2"};
  make_run("runs/p25", "configs/cifar10/moco_sym_unmix.yaml", p25, 3, status_text("finished", 1000, 1000),
           metrics_text(3, k), NULL);
  make_run("runs/b2", "configs/cifar10/moco_sym_unmix.yaml", b2, 3, status_text("finished", 1000, 1000),
           metrics_text(3, kb), NULL);
  /* a second seed of P = 0.25: its sweep point gets an error bar (ours_std) */
  const char *p25s1[] = {"unmix.prob=0.25", "paper.table=sweep-prob", "name=p25_s1", "seed=1"};
  make_run("runs/p25_s1", "configs/cifar10/moco_sym_unmix.yaml", p25s1, 4, status_text("finished", 1000, 1000),
           metrics_text(3, kb), NULL);
  ck_assert_msg(run_collect("runs", "tables", NULL, NULL) == UNMIX_OK, "%s", unmix_error_message());

  char *m1 = pathf("in/m1.csv"), *m2 = pathf("in/m2.csv"), *l1 = pathf("in/l1.csv"), *t1 = pathf("in/t1.csv"),
       *h = pathf("in/h.csv"), *none = pathf("in/none.csv"), *tabs = pathf("tables");
  char v[4096];
  /* one case per script; a new plots/NAME.gp without a case here fails below */
  const char *covered[] = {"fig2_cifar_curves", "fig3_lincls", "fig4_tsne", "fig5_hist", "swav_epochs",
                           "sweep_prob", "sweep_beta", "demo"};
  /* Figure 2 reads runs/<dataset>_<row>/metrics.csv: MoCo symmetric and asymmetric, SimCLR and
   * BYOL rows; a run stopped before its first kNN evaluation (knn.every > 1) has an empty
   * knn_top1 column, which gnuplot cannot plot: the panel leaves that run out (gnuplot aborted
   * the whole figure with "x range is invalid" before) */
  const char *k_none[] = {"", "", ""};
  const char *f2rows[] = {"cifar10_moco_sym", "cifar10_moco_asym_unmix", "cifar10_simclr", "cifar10_simclr_unmix",
                          "cifar10_byol_unmix", "cifar100_byol"};
  for (int i = 0; i < 6; i++) {
    char rel[256];
    snprintf(rel, sizeof rel, "f2runs/%s/metrics.csv", f2rows[i]);
    /* SimCLR + Un-Mix has a kNN, SimCLR not yet: one panel with a curve next to an empty run;
     * CIFAR-100 BYOL: the only run of its kNN panel has none */
    wfile(rel, metrics_text(3, i == 2 || i == 5 ? k_none : (i % 2 ? kb : k)));
  }
  snprintf(v, sizeof v, "runs='%s/f2runs'", g_dir);
  render("fig2_cifar_curves", "fig/fig2", v);
  snprintf(v, sizeof v, "runs='%s/none'", g_dir); /* no run at all: still a figure, saying so */
  render("fig2_cifar_curves", "fig/fig2_empty", v);
  snprintf(v, sizeof v, "moco='%s'; unmix='%s'; tag='SMOKE'", l1, none);
  render("fig3_lincls", "fig/fig3", v);
  snprintf(v, sizeof v, "moco='%s'; unmix='%s'", t1, t1);
  render("fig4_tsne", "fig/fig4", v);
  snprintf(v, sizeof v, "moco='%s'; unmix='%s'", none, t1);
  render("fig4_tsne", "fig/fig4_one", v);
  snprintf(v, sizeof v, "in='%s'", h);
  render("fig5_hist", "fig/fig5", v);
  snprintf(v, sizeof v, "in='%s/swav-cifar-repo.csv'", tabs);
  render("swav_epochs", "fig/swav", v);
  snprintf(v, sizeof v, "in='%s/swav-cifar-paper.csv'", tabs); /* paper lines only */
  render("swav_epochs", "fig/swav_paper", v);
  snprintf(v, sizeof v, "in='%s/sweep-prob.csv'; ref='%s/cifar-moco.csv'", tabs, tabs);
  render("sweep_prob", "fig/sweep_prob", v);
  {
    struct unmix_csv_table *sw = read_table("tables/sweep-prob.csv");
    ck_assert_str_eq(cell(sw, 0, "seeds"), "2");
    ck_assert_str_ne(cell(sw, 0, "ours_std"), ""); /* the figure above drew an error bar */
    unmix_csv_table_free(sw);
  }
  snprintf(v, sizeof v, "in='%s/sweep-beta.csv'; ref='%s/none.csv'", tabs, tabs);
  render("sweep_beta", "fig/sweep_beta", v);
  snprintf(v, sizeof v, "in='%s/sweep-beta.csv'", tabs);
  render("sweep_prob", "fig/sweep_prob_empty", v); /* no row with a P value: a figure saying so */
  snprintf(v, sizeof v, "moco='%s'; unmix='%s'", m1, m2);
  render("demo", "fig/demo", v);
  snprintf(v, sizeof v, "moco='%s'; unmix='%s'", none, m2);
  render("demo", "fig/demo_one", v);

  DIR *d = opendir(src("plots"));
  ck_assert_msg(d != NULL, "cannot list %s", src("plots"));
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (n < 4 || strcmp(e->d_name + n - 3, ".gp")) continue;
    bool ok = false;
    for (size_t i = 0; i < sizeof covered / sizeof covered[0]; i++)
      ok = ok || (strlen(covered[i]) == n - 3 && !strncmp(covered[i], e->d_name, n - 3));
    ck_assert_msg(ok, "plots/%s has no rendering case in test_plots_render", e->d_name);
  }
  closedir(d);
  free(m1);
  free(m2);
  free(l1);
  free(t1);
  free(h);
  free(none);
  free(tabs);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("collect");
  TCase *tc = tcase_create("collect");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_knn_rows_and_markings);
  tcase_add_test(tc, test_linear_rows);
  tcase_add_test(tc, test_sweeps_demo_and_table_selection);
  tcase_add_test(tc, test_synthetic_data_is_smoke);
  tcase_add_test(tc, test_seeds_mean_std);
  tcase_add_test(tc, test_errors_name_the_file);
  tcase_add_test(tc, test_collect_command);
  tcase_add_test(tc, test_run_row_script);
  tcase_add_test(tc, test_plots_render);
  tcase_add_test(tc, test_demo_script);
  suite_add_tcase(s, tc);
  return s;
}

UNMIX_TEST_MAIN(make_suite)
