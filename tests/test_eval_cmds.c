/* The evaluation commands run as a user runs them (the `unmix` binary) on tiny checkpoints
 * trained here by `unmix train` on a synthetic CIFAR-10: help and usage errors; kNN equal to
 * the trainer's monitor and to unmix_knn_monitor on an independently loaded model; linear
 * evaluation, t-SNE, histograms and flatness writing their CSVs with the documented columns
 * and consistent values; export round trips; clear errors for bad files, missing tensors,
 * wrong architectures and missing datasets. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io/checkpoint.h"
#include "core/io/csv.h"
#include "core/io/manifest.h"
#include "core/nn/model_io.h"
#include "eval/ckpt_model.h"
#include "eval/features.h"
#include "tests/support/testutil.h"

static char *g_dir;
static char g_moco[1200], g_moco_b[1200], g_swav[1200], g_data[1100];

/* `unmix ARGS` in g_dir (stderr merged): the shared test helper. */
#define unmix(out, ...) unmix_test_unmix(g_dir, (out), __VA_ARGS__)
#define run_expect(rc, want, args) free(unmix_test_run_expect(g_dir, (rc), (want), (args)))

static void train_run(const char *name, const char *body, char *ckpt, size_t len) {
  char man[1200], text[4096];
  snprintf(man, sizeof man, "%s/%s.yaml", g_dir, name);
  snprintf(text, sizeof text, "name: %s\nbackend: cpu\n%s", name, body);
  unmix_test_write_text(man, text);
  char *o = NULL;
  int st = unmix(&o, "train %s.yaml --out %s --quiet --set data.root=%s", name, name, g_data);
  ck_assert_msg(st == 0, "training %s failed:\n%s", name, unmix_test_tail(o));
  free(o);
  snprintf(ckpt, len, "%s/%s/checkpoint.safetensors", g_dir, name);
}

#define MOCO_BODY                                                                        \
  "method: moco\n"                                                                       \
  "data: {dataset: cifar10, recipe: moco-cifar, workers: 1}\n"                           \
  "model: {arch: resnet18, stem: cifar, width: 4, bn_splits: 2, head: linear, dim: 16}\n" \
  "moco: {K: 64, m: 0.99, T: 0.1, symmetric: true}\n"                                    \
  "optim: {batch_size: 16, lr: 0.06}\n"                                                  \
  "schedule: {kind: cosine-1based}\n"                                                    \
  "train: {epochs: 1, steps_per_epoch: 2}\n"                                             \
  "knn: {every: 1, k: 20, bank_subset: 64, test_subset: 40}\n"                           \
  "linear: {protocol: moco-cifar, epochs: 3, lr: 1.0, batch_size: 32, milestones: [1]}\n"

static void setup(void) {
  g_dir = unmix_test_tmpdir("evalcmd");
  snprintf(g_data, sizeof g_data, "%s/data", g_dir);
  char *o = NULL;
  int st = unmix(&o, "data synth cifar10 data --n 160 --n-test 48 --classes 4 --seed 1");
  ck_assert_msg(st == 0, "%s", unmix_test_tail(o));
  free(o);
  train_run("moco", "seed: 3\nunmix: {enabled: true, prob: 0.5}\n" MOCO_BODY, g_moco, sizeof g_moco);
  train_run("moco_b", "seed: 4\nunmix: {enabled: false}\n" MOCO_BODY, g_moco_b, sizeof g_moco_b);
  train_run("swav",
            "method: swav\nseed: 5\n"
            "data: {dataset: cifar10, recipe: swav-cifar, workers: 1, crops: [{nmb: 2, size: 32, min_scale: 0.14, "
            "max_scale: 1.0}]}\n"
            "model: {arch: resnet18-bottleneck, stem: swav-cifar, width: 4, bn_splits: 1, head: swav, dim: 16, hidden: "
            "32}\n"
            "swav: {nmb_prototypes: 10, queue_length: 0, freeze_prototypes_niters: 1}\n"
            "unmix: {enabled: true, prob: 0.5}\n"
            "optim: {kind: larc, batch_size: 16, lr: 0.6, weight_decay: 1.0e-6}\n"
            "schedule: {kind: warmup-cosine, warmup_epochs: 0, final_lr: 0.0006}\n"
            "train: {epochs: 1, steps_per_epoch: 2}\n"
            "knn: {every: 0}\n"
            "linear: {protocol: swav-cifar, epochs: 2, lr: 0.3, weight_decay: 1.0e-6, batch_size: 32, cosine: true}\n",
            g_swav, sizeof g_swav);
}

static void teardown(void) {
  unmix_test_rmdir(g_dir);
  free(g_dir);
}

/* ---- CSV helpers ------------------------------------------------------------------------ */

static struct unmix_csv_table *read_csv(const char *rel, const char *const *cols, int ncol) {
  char path[1400];
  if (rel[0] == '/') snprintf(path, sizeof path, "%s", rel);
  else snprintf(path, sizeof path, "%s/%s", g_dir, rel);
  struct unmix_csv_table *t = NULL;
  ck_assert_msg(unmix_csv_read(path, &t) == UNMIX_OK, "%s", unmix_error_message());
  ck_assert_msg(t->ncol == ncol, "%s has %d columns, expected %d", path, t->ncol, ncol);
  for (int c = 0; c < ncol; c++) ck_assert_msg(!strcmp(t->header[c], cols[c]), "%s column %d is '%s', expected '%s'", path, c, t->header[c], cols[c]);
  return t;
}

static double num(const struct unmix_csv_table *t, size_t r, const char *col) {
  double v;
  ck_assert_msg(unmix_csv_get_double(t, r, col, &v) == UNMIX_OK, "%s", unmix_error_message());
  return v;
}

static const char *cell(const struct unmix_csv_table *t, size_t r, const char *col) {
  int c = unmix_csv_column(t, col);
  ck_assert_msg(c >= 0, "no column %s", col);
  return unmix_csv_cell(t, r, c);
}

/* ---- tests ------------------------------------------------------------------------------- */

START_TEST(test_help_and_usage_errors) {
  static const char *cmds[] = {"knn", "lincls", "tsne", "hist", "flatness", "export"};
  char args[256], want[64], a_[2048];
  for (int i = 0; i < 6; i++) {
    snprintf(args, sizeof args, "%s --help", cmds[i]);
    snprintf(want, sizeof want, "usage: unmix %s", cmds[i]);
    run_expect(0, want, args);
    snprintf(args, sizeof args, "%s", cmds[i]);
    run_expect(2, NULL, args); /* no checkpoint */
    snprintf(args, sizeof args, "%s %s --no-such-flag", cmds[i], g_moco);
    run_expect(2, NULL, args);
    snprintf(args, sizeof args, "%s %s --backend tpu", cmds[i], g_moco);
    /* hist and export compute nothing on a device: --backend is not theirs */
    run_expect(2, i < 3 || i == 4 ? "--backend must be cpu or cuda" : "--backend does not apply to", args);
  }
  /* an option that would do nothing for the command is refused by name, not ignored */
  snprintf(a_, sizeof a_, "hist %s --dataset cifar100", g_moco);
  run_expect(2, "unmix hist: --dataset does not apply to hist (it reads no images)", a_);
  snprintf(a_, sizeof a_, "export %s --to torchvision x.safetensors --workers=2", g_moco);
  run_expect(2, "unmix export: --workers does not apply to export", a_);
  snprintf(a_, sizeof a_, "flatness %s --arch resnet18", g_moco);
  run_expect(2, "unmix flatness: --arch does not apply to flatness (it needs an unmix checkpoint)", a_);
  char a[2048];
  snprintf(a, sizeof a, "knn %s --k 12abc", g_moco);
  run_expect(2, "--k must be an integer", a);
  snprintf(a, sizeof a, "knn %s --t -1", g_moco);
  run_expect(2, "--t must be a number", a);
  snprintf(a, sizeof a, "knn %s --features fc", g_moco);
  run_expect(2, "--features must be head or backbone", a);
  snprintf(a, sizeof a, "lincls %s --protocol cifar", g_moco);
  run_expect(2, "--protocol must be", a);
  snprintf(a, sizeof a, "lincls %s --milestones 80,60", g_moco);
  run_expect(2, "--milestones must increase", a);
  snprintf(a, sizeof a, "lincls %s --epochs 0", g_moco);
  run_expect(2, "--epochs must be an integer in 1", a);
  snprintf(a, sizeof a, "tsne %s --split val", g_moco);
  run_expect(2, "--split must be test or train", a);
  snprintf(a, sizeof a, "hist %s --layers 1,x", g_moco);
  run_expect(2, "--layers must be a comma-separated list", a);
  snprintf(a, sizeof a, "hist %s --label a --label b", g_moco);
  run_expect(2, "2 --label for 1 checkpoints", a);
  snprintf(a, sizeof a, "flatness %s --keys middle", g_moco);
  run_expect(2, "--keys must be first or last", a);
  snprintf(a, sizeof a, "export %s out.safetensors", g_moco);
  run_expect(2, "--to FORMAT is required", a);
  snprintf(a, sizeof a, "export %s --to onnx out.onnx", g_moco);
  run_expect(2, "--to must be torchvision or detectron2, got 'onnx'", a);
  snprintf(a, sizeof a, "export %s --to torchvision", g_moco);
  run_expect(2, "expected CKPT and OUT.safetensors", a);
  char *o;
  ck_assert_int_eq(unmix(&o, "--help"), 0);
  unmix_test_expect(o, "lincls");
  unmix_test_expect(o, "flatness");
  free(o);
}
END_TEST

static const char *const KNN_COLS[] = {"checkpoint", "label", "epochs", "features", "k", "t",
                                       "bank", "queries", "top1", "top5", "seconds"};

START_TEST(test_knn_equals_monitor) {
  char a[2048];
  snprintf(a, sizeof a, "knn %s --csv knn.csv", g_moco);
  run_expect(0, "top-1", a);
  struct unmix_csv_table *k = read_csv("knn.csv", KNN_COLS, 11);
  ck_assert_int_eq(k->nrows, 1);
  ck_assert_str_eq(cell(k, 0, "label"), "moco");
  ck_assert_str_eq(cell(k, 0, "features"), "head");
  ck_assert_int_eq((int)num(k, 0, "k"), 20);
  ck_assert_int_eq((int)num(k, 0, "bank"), 64);
  ck_assert_int_eq((int)num(k, 0, "queries"), 40);
  ck_assert_int_eq((int)num(k, 0, "epochs"), 1);
  /* the trainer's monitor after the last epoch, on the same weights */
  char mp[1400];
  snprintf(mp, sizeof mp, "%s/moco/metrics.csv", g_dir);
  struct unmix_csv_table *mt = NULL;
  ck_assert(unmix_csv_read(mp, &mt) == UNMIX_OK);
  ck_assert_str_eq(cell(k, 0, "top1"), cell(mt, mt->nrows - 1, "knn_top1"));
  ck_assert_str_eq(cell(k, 0, "top5"), cell(mt, mt->nrows - 1, "knn_top5"));
  unmix_csv_table_free(mt);

  /* unmix_knn_monitor on a model loaded independently of eval/ckpt_model.c */
  struct unmix_ckpt *ck = NULL;
  ck_assert(unmix_ckpt_load(g_moco, &ck) == UNMIX_OK);
  struct unmix_config cfg;
  ck_assert(unmix_manifest_load_string(unmix_ckpt_meta(ck, "unmix.manifest"), "m", NULL, 0, &cfg) == UNMIX_OK);
  snprintf(cfg.data.root, sizeof cfg.data.root, "%s", g_data);
  struct unmix_model_spec spec;
  unmix_model_spec_from_config(&cfg, 32, &spec);
  struct unmix_model *m = NULL;
  ck_assert(unmix_model_create(&spec, unmix_test_cpu(), 0, &m) == UNMIX_OK);
  ck_assert(unmix_model_from_ckpt(m, ck, "", false) == UNMIX_OK);
  struct unmix_dataset_options dso;
  struct unmix_dataset *bank = NULL, *test = NULL;
  unmix_dataset_options_from_config(&cfg.data, UNMIX_SPLIT_TRAIN, &dso);
  dso.subset = cfg.knn.bank_subset;
  ck_assert(unmix_dataset_open(&dso, &bank) == UNMIX_OK);
  unmix_dataset_options_from_config(&cfg.data, UNMIX_SPLIT_TEST, &dso);
  dso.subset = cfg.knn.test_subset;
  ck_assert(unmix_dataset_open(&dso, &test) == UNMIX_OK);
  struct unmix_recipe rc;
  ck_assert(unmix_recipe_from_config(&cfg.data, &rc) == UNMIX_OK);
  struct unmix_knn_eval r;
  ck_assert(unmix_knn_monitor(m->be, m, bank, test, &rc, &cfg.knn, cfg.optim.batch_size, 1, &r) == UNMIX_OK);
  char buf[32];
  snprintf(buf, sizeof buf, "%.4f", r.top1);
  ck_assert_str_eq(cell(k, 0, "top1"), buf);
  snprintf(buf, sizeof buf, "%.4f", r.top5);
  ck_assert_str_eq(cell(k, 0, "top5"), buf);
  unmix_csv_table_free(k);
  unmix_dataset_free(bank);
  unmix_dataset_free(test);
  unmix_model_destroy(m);
  unmix_ckpt_free(ck);
  unmix_config_free(&cfg);

  /* overrides and the backbone features; the default CSV lands next to the checkpoint */
  snprintf(a, sizeof a, "knn %s --k 5 --t 0.5 --bank-subset 0 --test-subset 10 --features backbone --batch 7", g_moco);
  run_expect(0, "backbone features", a);
  snprintf(mp, sizeof mp, "%s/moco/knn.csv", g_dir);
  k = read_csv(mp, KNN_COLS, 11);
  ck_assert_str_eq(cell(k, 0, "features"), "backbone");
  ck_assert_int_eq((int)num(k, 0, "k"), 5);
  ck_assert(num(k, 0, "t") == 0.5);
  ck_assert_int_eq((int)num(k, 0, "bank"), 160);
  ck_assert_int_eq((int)num(k, 0, "queries"), 10);
  unmix_csv_table_free(k);
}
END_TEST

static const char *const LINCLS_COLS[] = {"epoch",     "lr",        "train_loss", "train_top1",
                                          "test_top1", "test_top5", "best_top1",  "seconds"};
static const char *const SUMMARY_COLS[] = {"checkpoint", "label",     "pretrain_epochs", "protocol",     "epochs",
                                           "lr",         "batch_size", "weight_decay",   "schedule",     "best_top1",
                                           "best_epoch", "best_top5",  "last_top1",      "last_top5",    "train_samples",
                                           "test_samples", "seconds_per_epoch", "backend"};

START_TEST(test_lincls_cmd) {
  char a[2048];
  /* the manifest's protocol (moco-cifar, lr 1, x0.1 at 1), shortened to 2 epochs */
  snprintf(a, sizeof a, "lincls %s --epochs 2 --subset 96 --test-subset 32 --out lc --quiet", g_moco);
  run_expect(0, "best top-1", a);
  struct unmix_csv_table *t = read_csv("lc/lincls.csv", LINCLS_COLS, 8);
  ck_assert_int_eq(t->nrows, 2);
  ck_assert(num(t, 0, "lr") == 1.0 && fabs(num(t, 1, "lr") - 0.1) < 1e-7);
  double best = 0;
  for (size_t r = 0; r < 2; r++) {
    ck_assert_int_eq((int)num(t, r, "epoch"), (int)r + 1);
    double t1 = num(t, r, "test_top1");
    ck_assert(t1 >= 0 && t1 <= 100 && num(t, r, "test_top5") >= t1);
    best = t1 > best ? t1 : best;
    ck_assert(num(t, r, "best_top1") == best);
    ck_assert(isfinite(num(t, r, "train_loss")));
  }
  struct unmix_csv_table *s = read_csv("lc/summary.csv", SUMMARY_COLS, 18);
  ck_assert_int_eq(s->nrows, 1);
  ck_assert_str_eq(cell(s, 0, "protocol"), "moco-cifar");
  ck_assert_str_eq(cell(s, 0, "schedule"), "step:1");
  ck_assert_int_eq((int)num(s, 0, "train_samples"), 96);
  ck_assert_int_eq((int)num(s, 0, "test_samples"), 32);
  ck_assert(num(s, 0, "best_top1") == best);
  ck_assert_str_eq(cell(s, 0, "last_top1"), cell(t, 1, "test_top1"));
  unmix_csv_table_free(t);
  unmix_csv_table_free(s);
  /* the run is complete: a second run needs --resume, which then has nothing to do */
  run_expect(1, "pass --resume", a);
  snprintf(a, sizeof a, "lincls %s --epochs 2 --subset 96 --test-subset 32 --out lc --quiet --resume", g_moco);
  run_expect(0, "2/2 epochs", a);
  snprintf(a, sizeof a, "lincls %s --epochs 2 --subset 96 --test-subset 32 --out lc --quiet --resume --lr 3", g_moco);
  run_expect(1, "other parameters", a);

  /* SwAV-CIFAR from its manifest: lr 0.3 with cosine annealing, 2048-d... here 4*32 = 128-d */
  snprintf(a, sizeof a, "lincls %s --subset 64 --test-subset 16 --out lcs", g_swav);
  run_expect(0, "protocol swav-cifar (manifest), 2 epochs, lr 0.3 (cosine)", a);
  t = read_csv("lcs/lincls.csv", LINCLS_COLS, 8);
  ck_assert_int_eq(t->nrows, 2);
  ck_assert(fabs(num(t, 0, "lr") - 0.3) < 1e-7 && fabs(num(t, 1, "lr") - 0.15) < 1e-7);
  unmix_csv_table_free(t);
  /* another protocol than the manifest's takes that protocol's reference values */
  snprintf(a, sizeof a, "lincls %s --protocol swav-cifar --epochs 1 --subset 40 --test-subset 8 --out lcx --quiet", g_moco);
  run_expect(0, "swav-cifar protocol, 1/1 epochs", a);
  t = read_csv("lcx/lincls.csv", LINCLS_COLS, 8);
  ck_assert(fabs(num(t, 0, "lr") - 0.3) < 1e-7);
  unmix_csv_table_free(t);
  s = read_csv("lcx/summary.csv", SUMMARY_COLS, 18);
  ck_assert_int_eq((int)num(s, 0, "batch_size"), 32);
  ck_assert_str_eq(cell(s, 0, "schedule"), "cosine");
  unmix_csv_table_free(s);
}
END_TEST

START_TEST(test_tsne_cmd) {
  char a[2048];
  snprintf(a, sizeof a, "tsne %s --n 40 --perplexity 5 --exact --iterations 250 --out ts", g_moco);
  run_expect(0, "40 test images", a);
  static const char *const cols[] = {"index", "x", "y", "label", "class"};
  struct unmix_csv_table *t = read_csv("ts/tsne.csv", cols, 5);
  ck_assert_int_eq(t->nrows, 40);
  for (size_t r = 0; r < 40; r++) {
    ck_assert_int_eq((int)num(t, r, "index"), (int)r);
    ck_assert((int)num(t, r, "label") == (int)r % 4); /* synthetic labels are i mod C */
    ck_assert(isfinite(num(t, r, "x")) && isfinite(num(t, r, "y")));
    ck_assert(strlen(cell(t, r, "class")) > 0);
  }
  unmix_csv_table_free(t);
  /* features.f32: header, then the same numbers as features.csv */
  char p[1400];
  snprintf(p, sizeof p, "%s/ts/features.f32", g_dir);
  FILE *f = fopen(p, "rb");
  ck_assert(f != NULL);
  char magic[8];
  uint32_t hdr[4];
  ck_assert(fread(magic, 1, 8, f) == 8 && fread(hdr, 4, 4, f) == 4);
  ck_assert(memcmp(magic, "UNMIXF32", 8) == 0);
  ck_assert(hdr[0] == 1 && hdr[1] == 40 && hdr[2] == 32 && hdr[3] == 0); /* width 4 -> 32-d avgpool */
  float *x = malloc(sizeof(float) * 40 * 32);
  int32_t lab[40];
  ck_assert(fread(x, sizeof(float), 40 * 32, f) == 40 * 32 && fread(lab, 4, 40, f) == 40);
  ck_assert(fgetc(f) == EOF);
  fclose(f);
  snprintf(p, sizeof p, "%s/ts/features.csv", g_dir);
  struct unmix_csv_table *fc = NULL;
  ck_assert(unmix_csv_read(p, &fc) == UNMIX_OK);
  ck_assert_int_eq(fc->ncol, 3 + 32);
  ck_assert_int_eq(fc->nrows, 40);
  ck_assert_str_eq(fc->header[3], "f0");
  for (size_t r = 0; r < 40; r++) {
    ck_assert_int_eq((int)num(fc, r, "label"), lab[r]);
    char col[8];
    for (int j = 0; j < 32; j += 7) {
      snprintf(col, sizeof col, "f%d", j);
      ck_assert((float)num(fc, r, col) == x[r * 32 + j]);
    }
  }
  unmix_csv_table_free(fc);
  free(x);
  /* too few points for the perplexity: a clear error naming the parameter, features kept */
  snprintf(a, sizeof a, "tsne %s --n 10 --out ts2", g_moco);
  run_expect(1, "perplexity", a);
}
END_TEST

START_TEST(test_hist_cmd) {
  char a[4096];
  snprintf(a, sizeof a, "hist %s %s --label unmix --out h.csv", g_moco, g_moco_b);
  run_expect(0, "using 1,5,9,12,16,20", a); /* ResNet-18: 20 convs, the note says which */
  static const char *const cols[] = {"layer", "checkpoint", "bin_lo", "bin_hi", "count", "density"};
  struct unmix_csv_table *t = read_csv("h.csv", cols, 6);
  ck_assert_int_eq(t->nrows, 6 * 2 * 100);
  /* per (layer, checkpoint): counts add up to the layer's weights, densities integrate to 1,
   * and both checkpoints share the bins */
  static const long long numel[6] = {4 * 3 * 9, 4 * 4 * 9, 8 * 8 * 9, 16 * 16 * 9, 32 * 16 * 9, 32 * 32 * 9};
  for (int l = 0; l < 6; l++)
    for (int k = 0; k < 2; k++) {
      long long sum = 0;
      double integral = 0;
      for (int b = 0; b < 100; b++) {
        size_t r = (size_t)(l * 200 + k * 100 + b);
        sum += (long long)num(t, r, "count");
        integral += num(t, r, "density") * (num(t, r, "bin_hi") - num(t, r, "bin_lo"));
        ck_assert_str_eq(cell(t, r, "bin_lo"), cell(t, (size_t)(l * 200 + b), "bin_lo"));
      }
      ck_assert_msg(sum == numel[l], "layer %d ckpt %d: %lld weights, expected %lld", l, k, sum, numel[l]);
      ck_assert(fabs(integral - 1.0) < 1e-6);
    }
  ck_assert_str_eq(cell(t, 0, "layer"), "1:conv1.weight");
  ck_assert_str_eq(cell(t, 200, "layer"), "5:layer1.1.conv2.weight");
  ck_assert_str_eq(cell(t, 0, "checkpoint"), "unmix");
  ck_assert_str_eq(cell(t, 100, "checkpoint"), "moco_b");
  unmix_csv_table_free(t);
  snprintf(a, sizeof a, "hist %s --layers 2,20 --bins 10 --out h2.csv", g_moco);
  run_expect(0, "layer  2 layer1.0.conv1.weight", a);
  t = read_csv("h2.csv", cols, 6);
  ck_assert_int_eq(t->nrows, 2 * 10);
  unmix_csv_table_free(t);
  snprintf(a, sizeof a, "hist %s --layers 1,21", g_moco);
  run_expect(1, "conv layer index 21 is out of range: the model has 20 conv layers", a);
  snprintf(a, sizeof a, "hist %s %s", g_moco, g_swav);
  run_expect(1, "weight histograms compare one architecture", a);
}
END_TEST

START_TEST(test_flatness_cmd) {
  char a[4096];
  snprintf(a, sizeof a, "flatness %s %s --label a --label b --images 3 --average 20 --negatives 48 --out f.csv", g_moco,
           g_moco_b);
  run_expect(0, "mean max probability", a);
  static const char *const cols[] = {"label", "checkpoint", "curve", "sample", "rank", "probability"};
  struct unmix_csv_table *t = read_csv("f.csv", cols, 6);
  ck_assert_int_eq(t->nrows, 2 * (3 * 48 + 48));
  static const char *const mcols[] = {"label", "checkpoint", "curve", "sample", "images",
                                      "negatives", "keys", "t", "max_probability", "entropy"};
  struct unmix_csv_table *mx = read_csv("f_max.csv", mcols, 10);
  ck_assert_int_eq(mx->nrows, 2 * 4);
  for (int k = 0; k < 2; k++)
    for (int c = 0; c < 4; c++) { /* 3 images, then the mean */
      size_t base = (size_t)k * 192 + (size_t)c * 48;
      double sum = 0, prev = 0;
      for (int r = 0; r < 48; r++) {
        double pr = num(t, base + r, "probability");
        ck_assert_int_eq((int)num(t, base + r, "rank"), r + 1);
        ck_assert(pr >= prev); /* ascending */
        prev = pr;
        sum += pr;
      }
      ck_assert_msg(fabs(sum - 1.0) < 1e-4, "curve %d of %d sums to %g", c, k, sum);
      ck_assert_str_eq(cell(t, base, "label"), k ? "b" : "a");
      ck_assert_str_eq(cell(t, base, "curve"), c < 3 ? "image" : "mean");
      size_t mr = (size_t)k * 4 + (size_t)c;
      ck_assert_str_eq(cell(mx, mr, "max_probability"), cell(t, base + 47, "probability"));
      ck_assert_int_eq((int)num(mx, mr, "images"), c < 3 ? 1 : 20);
      ck_assert(num(mx, mr, "entropy") > 0 && num(mx, mr, "entropy") <= log(48.0) + 1e-6);
    }
  ck_assert_str_eq(cell(t, 48, "sample"), "1");

  /* image 0 of checkpoint a recomputed here: softmax(q . queue[0:48] / T), sorted */
  struct unmix_eval_ckpt *e = NULL;
  struct unmix_eval_open_options oo = {0};
  oo.data_root = g_data;
  ck_assert(unmix_eval_ckpt_open(g_moco, &oo, &e) == UNMIX_OK);
  struct unmix_model *m = NULL;
  ck_assert(unmix_eval_build_model(e, unmix_test_cpu(), 0, 32, &m) == UNMIX_OK);
  struct unmix_dataset *ds = NULL;
  ck_assert(unmix_eval_open_dataset(e, UNMIX_SPLIT_TEST, 1, &ds) == UNMIX_OK);
  struct unmix_recipe rc;
  ck_assert(unmix_eval_recipe(e, NULL, &rc) == UNMIX_OK);
  float *q = NULL;
  int32_t *lab = NULL;
  int d = 0;
  ck_assert(unmix_extract_features(m->be, m, m->out_node, ds, &rc, 1, 1, true, &q, &lab, &d) == UNMIX_OK);
  const struct unmix_ckpt_tensor *queue = unmix_ckpt_find(e->ck, "unmix.state.moco.queue");
  ck_assert(queue && queue->shape[0] == 64 && queue->shape[1] == d);
  double logit[48], z = 0, mxl = -1e30;
  for (int j = 0; j < 48; j++) {
    double s = 0;
    for (int i = 0; i < d; i++) s += (double)q[i] * ((const float *)queue->data)[j * d + i];
    logit[j] = s / 0.1;
    mxl = logit[j] > mxl ? logit[j] : mxl;
  }
  double pj[48];
  for (int j = 0; j < 48; j++) z += exp(logit[j] - mxl);
  for (int j = 0; j < 48; j++) pj[j] = exp(logit[j] - mxl) / z;
  for (int i = 0; i < 48; i++) /* sort ascending */
    for (int j = i + 1; j < 48; j++)
      if (pj[j] < pj[i]) {
        double tmp = pj[i];
        pj[i] = pj[j];
        pj[j] = tmp;
      }
  for (int r = 0; r < 48; r++)
    ck_assert_msg(fabs(num(t, (size_t)r, "probability") - pj[r]) <= 1e-6 + 1e-4 * pj[r], "rank %d: %g vs %g", r + 1,
                  num(t, (size_t)r, "probability"), pj[r]);
  m->be->free(q);
  free(lab);
  unmix_dataset_free(ds);
  unmix_model_destroy(m);
  unmix_eval_ckpt_close(e);
  unmix_csv_table_free(t);
  unmix_csv_table_free(mx);

  /* more negatives than the queue holds: the queue length, with a note */
  snprintf(a, sizeof a, "flatness %s --images 1 --average 4 --out f2.csv", g_moco);
  run_expect(0, "holds 64 keys; using 64 negatives", a);
  snprintf(a, sizeof a, "flatness %s", g_swav);
  run_expect(1, "flatness needs a MoCo training checkpoint", a);
}
END_TEST

/* A copy of `src` with the tensors renamed (prefix), some dropped, and metadata replaced. */
static void rewrite(const char *src, const char *dst, const char *prefix, const char *drop, bool keep_meta,
                    const char *meta_key, const char *meta_val) {
  struct unmix_ckpt *in = NULL;
  ck_assert(unmix_ckpt_load(src, &in) == UNMIX_OK);
  struct unmix_ckpt *out = unmix_ckpt_new();
  for (size_t i = 0; i < in->n; i++) {
    const struct unmix_ckpt_tensor *t = &in->tensors[i];
    if (drop && !strcmp(t->name, drop)) continue;
    char name[512];
    snprintf(name, sizeof name, "%s%s", prefix, t->name);
    ck_assert(unmix_ckpt_add(out, name, t->dtype, t->ndim, t->shape, t->data) == UNMIX_OK);
  }
  for (size_t i = 0; keep_meta && i < in->n_meta; i++)
    if (strcmp(in->meta_keys[i], UNMIX_CKPT_CRC_KEY) != 0)
      ck_assert(unmix_ckpt_set_meta(out, in->meta_keys[i], in->meta_values[i]) == UNMIX_OK);
  if (meta_key) ck_assert(unmix_ckpt_set_meta(out, meta_key, meta_val) == UNMIX_OK);
  ck_assert_msg(unmix_ckpt_save(out, dst) == UNMIX_OK, "%s", unmix_error_message());
  unmix_ckpt_free(out);
  unmix_ckpt_free(in);
}

/* Exported tensors == the checkpoint's backbone tensors, exactly; nothing else. */
static void check_export(const char *ckpt, const char *exported, int64_t want_tensors) {
  struct unmix_ckpt *a = NULL, *b = NULL;
  ck_assert(unmix_ckpt_load(ckpt, &a) == UNMIX_OK);
  ck_assert(unmix_ckpt_load(exported, &b) == UNMIX_OK);
  ck_assert_int_eq((int64_t)b->n, want_tensors);
  for (size_t i = 0; i < b->n; i++) {
    const struct unmix_ckpt_tensor *t = &b->tensors[i], *s = unmix_ckpt_find(a, t->name);
    ck_assert_msg(strncmp(t->name, "conv1.", 6) == 0 || strncmp(t->name, "bn1.", 4) == 0 ||
                      strncmp(t->name, "layer", 5) == 0,
                  "%s is not a backbone tensor", t->name);
    ck_assert_msg(s != NULL, "%s is not in the checkpoint", t->name);
    ck_assert(s->dtype == t->dtype && s->ndim == t->ndim && s->nbytes == t->nbytes);
    ck_assert_msg(memcmp(s->data, t->data, t->nbytes) == 0, "%s differs", t->name);
  }
  /* every backbone tensor of the checkpoint is there */
  for (size_t i = 0; i < a->n; i++) {
    const char *n = a->tensors[i].name;
    if (!strncmp(n, "conv1.", 6) || !strncmp(n, "bn1.", 4) || !strncmp(n, "layer", 5))
      ck_assert_msg(unmix_ckpt_find(b, n) != NULL, "%s was not exported", n);
  }
  ck_assert_str_eq(unmix_ckpt_meta(b, "unmix.format"), "torchvision-backbone");
  ck_assert(unmix_ckpt_meta(b, "unmix.manifest") == NULL);
  ck_assert(unmix_ckpt_meta(b, "unmix.source_manifest") != NULL);
  ck_assert(unmix_ckpt_find(b, "layer1.0.bn1.num_batches_tracked") != NULL);
  unmix_ckpt_free(a);
  unmix_ckpt_free(b);
}

START_TEST(test_export_round_trip) {
  char a[4096], out[1400], plain[1400];
  snprintf(out, sizeof out, "%s/moco_tv.safetensors", g_dir);
  snprintf(a, sizeof a, "export %s --to torchvision %s", g_moco, out);
  run_expect(0, "no fc", a);
  check_export(g_moco, out, 120); /* ResNet-18: 20 convs, 20 BNs x (2 params + 2 buffers + counter) */
  /* export -> load the backbone back -> export again: identical tensors */
  struct unmix_eval_ckpt *e = NULL;
  ck_assert(unmix_eval_ckpt_open(out, NULL, &e) == UNMIX_OK);
  ck_assert_int_eq(e->kind, UNMIX_EVAL_BACKBONE);
  ck_assert_int_eq(e->cfg.model.width, 4);
  struct unmix_model *m = NULL;
  ck_assert_msg(unmix_eval_build_model(e, unmix_test_cpu(), 0, 32, &m) == UNMIX_OK, "%s", unmix_error_message());
  ck_assert_int_eq(m->out_node, m->feat_node); /* no head */
  struct unmix_ckpt *again = unmix_ckpt_new();
  ck_assert(unmix_model_to_ckpt(m, again, "", true) == UNMIX_OK);
  ck_assert_int_eq(again->n, e->ck->n);
  for (size_t i = 0; i < again->n; i++) {
    const struct unmix_ckpt_tensor *t = &again->tensors[i], *s = unmix_ckpt_find(e->ck, t->name);
    ck_assert_msg(s && s->nbytes == t->nbytes && !memcmp(s->data, t->data, t->nbytes), "%s differs", t->name);
  }
  unmix_ckpt_free(again);
  unmix_model_destroy(m);
  unmix_eval_ckpt_close(e);
  /* SwAV: the Bottleneck trunk without projection head and prototypes */
  snprintf(out, sizeof out, "%s/swav_tv.safetensors", g_dir);
  snprintf(a, sizeof a, "export %s --to torchvision %s", g_swav, out);
  run_expect(0, "resnet18-bottleneck, swav-cifar stem", a);
  check_export(g_swav, out, 29 + 5 * 29); /* 29 convs, 29 BNs x (2 params + 2 buffers + counter) */

  /* the exported file evaluates like the checkpoint's backbone, and a foreign copy of it
   * (prefixed names, no metadata) does too once its architecture is given */
  snprintf(out, sizeof out, "%s/moco_tv.safetensors", g_dir);
  snprintf(a, sizeof a, "knn %s --csv k_exp.csv --batch 16", out);
  run_expect(0, "backbone features", a);
  snprintf(plain, sizeof plain, "%s/foreign.safetensors", g_dir);
  rewrite(out, plain, "module.encoder_q.", NULL, false, NULL, NULL);
  snprintf(a, sizeof a, "knn %s --csv k_plain.csv --batch 16", plain);
  run_expect(1, "pass --arch", a);
  snprintf(a, sizeof a, "knn %s --arch resnet18 --csv k_plain.csv --batch 16", plain);
  run_expect(1, "use --prefix", a);
  snprintf(a, sizeof a,
           "knn %s --arch resnet18 --prefix module.encoder_q. --data-root %s --k 20 --bank-subset 64 --test-subset 40 "
           "--csv k_plain.csv --batch 16",
           plain, g_data);
  run_expect(0, "backbone features", a);
  snprintf(a, sizeof a, "knn %s --features backbone --csv k_ck.csv --batch 16", g_moco);
  run_expect(0, "backbone features", a);
  struct unmix_csv_table *k1 = read_csv("k_exp.csv", KNN_COLS, 11), *k2 = read_csv("k_plain.csv", KNN_COLS, 11),
                         *k3 = read_csv("k_ck.csv", KNN_COLS, 11);
  ck_assert_str_eq(cell(k1, 0, "top1"), cell(k3, 0, "top1"));
  ck_assert_str_eq(cell(k1, 0, "top5"), cell(k3, 0, "top5"));
  ck_assert_str_eq(cell(k2, 0, "top1"), cell(k3, 0, "top1"));
  ck_assert_str_eq(cell(k2, 0, "label"), "foreign");
  unmix_csv_table_free(k1);
  unmix_csv_table_free(k2);
  unmix_csv_table_free(k3);
  /* a wrong architecture for the foreign file names the tensor that does not fit */
  snprintf(a, sizeof a, "knn %s --arch resnet34 --prefix module.encoder_q. --data-root %s", plain, g_data);
  run_expect(1, "module.encoder_q.layer1.2.conv1.weight", a);
  snprintf(a, sizeof a, "knn %s --arch resnet50 --prefix module.encoder_q. --data-root %s", plain, g_data);
  run_expect(1, "layer1.0.conv1.weight", a);
  snprintf(a, sizeof a, "knn %s --arch vgg16 --prefix module.encoder_q.", plain);
  /* the names are the manifest's model.arch names, checked with the other options (usage error) */
  run_expect(2, "--arch must be resnet18, resnet34, resnet50 or resnet18-bottleneck, got 'vgg16'", a);

  /* --to detectron2: the pickle detectron2 loads, checked by Python (the standard library with
   * stand-ins for numpy's classes; then numpy itself when installed) against the torchvision
   * export under the official converter's renaming */
  char pkl[1400], chk[1024], cmd[8192], *o = NULL;
  snprintf(pkl, sizeof pkl, "%s/moco_d2.pkl", g_dir);
  snprintf(a, sizeof a, "export %s --to detectron2 %s", g_moco, pkl);
  run_expect(0, "has no detectron2 counterpart", a); /* and the CIFAR stem is named */
  snprintf(out, sizeof out, "%s/moco_tv.safetensors", g_dir);
  unmix_test_src_path("tests/support/check_d2_pkl.py", chk, sizeof chk);
  const char *py = getenv("UNMIX_PYTHON") && *getenv("UNMIX_PYTHON") ? getenv("UNMIX_PYTHON") : "python3";
  snprintf(cmd, sizeof cmd, "command -v '%s' >/dev/null 2>&1", py);
  if (unmix_test_sh(cmd, NULL) != 0) {
    printf("SKIPPED (no %s; set UNMIX_PYTHON): test_export_round_trip detectron2 pickle check\n", py);
  } else {
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' '%s' 2>&1", py, chk, pkl, out);
    ck_assert_msg(unmix_test_sh(cmd, &o) == 0, "check_d2_pkl.py failed:\n%s", o);
    free(o);
    snprintf(cmd, sizeof cmd, "'%s' '%s' '%s' '%s' --numpy 2>&1", py, chk, pkl, out);
    int rc = unmix_test_sh(cmd, &o);
    if (rc == 77) printf("SKIPPED (numpy not installed for %s): test_export_round_trip detectron2 numpy load\n", py);
    else ck_assert_msg(rc == 0, "check_d2_pkl.py --numpy failed:\n%s", o);
    free(o);
  }
}
END_TEST

START_TEST(test_bad_inputs) {
  char a[4096], p[1400];
  snprintf(a, sizeof a, "knn %s/nope.safetensors", g_dir);
  run_expect(1, "nope.safetensors", a);
  snprintf(p, sizeof p, "%s/garbage.safetensors", g_dir);
  unmix_test_write_text(p, "this is not a safetensors file at all");
  snprintf(a, sizeof a, "lincls %s", p);
  run_expect(1, "garbage.safetensors", a);
  snprintf(a, sizeof a, "export %s --to torchvision x.safetensors", p);
  run_expect(1, "garbage.safetensors", a);
  /* a training checkpoint missing one tensor: the message names it */
  snprintf(p, sizeof p, "%s/missing.safetensors", g_dir);
  rewrite(g_moco, p, "", "layer3.1.bn2.running_var", true, NULL, NULL);
  snprintf(a, sizeof a, "knn %s", p);
  run_expect(1, "layer3.1.bn2.running_var", a);
  snprintf(a, sizeof a, "export %s --to torchvision x.safetensors", p);
  run_expect(1, "layer3.1.bn2.running_var", a);
  /* a head tensor missing still fails kNN (it uses the head) but not linear evaluation */
  snprintf(p, sizeof p, "%s/nohead.safetensors", g_dir);
  rewrite(g_moco, p, "", "fc.bias", true, NULL, NULL);
  snprintf(a, sizeof a, "knn %s", p);
  run_expect(1, "fc.bias", a);
  snprintf(a, sizeof a, "lincls %s --epochs 1 --subset 16 --test-subset 8 --out lcnh --quiet", p);
  run_expect(0, "1/1 epochs", a);
  /* a manifest in the metadata that does not validate */
  snprintf(p, sizeof p, "%s/badman.safetensors", g_dir);
  rewrite(g_moco, p, "", NULL, true, "unmix.manifest", "model:\n  arch: resnet99\n");
  snprintf(a, sizeof a, "tsne %s", p);
  run_expect(1, "unmix.manifest", a);
  /* architecture flags that contradict a training checkpoint */
  snprintf(a, sizeof a, "knn %s --arch resnet50", g_moco);
  run_expect(1, "was trained with model.arch resnet18; --arch resnet50 disagrees", a);
  snprintf(a, sizeof a, "knn %s --width 64", g_moco);
  run_expect(1, "--width 64 disagrees", a);
  /* the dataset is missing where --data-root points */
  snprintf(a, sizeof a, "knn %s --data-root %s/no-data", g_moco, g_dir);
  run_expect(1, "no-data", a);
  snprintf(a, sizeof a, "lincls %s --data-root %s/no-data", g_moco, g_dir);
  run_expect(1, "--data-root", a);
  snprintf(a, sizeof a, "flatness %s --data-root %s/no-data", g_moco, g_dir);
  run_expect(1, "no-data", a);
  /* a backbone file has no queue */
  snprintf(p, sizeof p, "%s/moco_tv2.safetensors", g_dir);
  snprintf(a, sizeof a, "export %s --to torchvision %s", g_moco, p);
  run_expect(0, NULL, a);
  snprintf(a, sizeof a, "flatness %s", p);
  run_expect(1, "backbone-only", a);
}
END_TEST

/* The W-MSE codebase's protocols (SimCLR/BYOL runs): knn --protocol wmse, lincls --protocol
 * wmse-cifar, on any checkpoint. */
START_TEST(test_wmse_protocols_cmd) {
  char a[2048];
  snprintf(a, sizeof a, "knn %s --protocol wmse --bank-subset 64 --test-subset 40 --csv knnw.csv", g_moco);
  run_expect(0, "backbone, Euclidean, unweighted features, k 5, t -", a);
  static const char *const kcols[] = {"checkpoint", "label", "epochs", "features", "k", "t", "bank", "queries",
                                      "top1", "top5", "seconds"};
  struct unmix_csv_table *t = read_csv("knnw.csv", kcols, 11);
  ck_assert_int_eq(t->nrows, 1);
  ck_assert_str_eq(cell(t, 0, "features"), "backbone-euclidean");
  ck_assert_int_eq((int)num(t, 0, "k"), 5);
  ck_assert_str_eq(cell(t, 0, "t"), "");
  ck_assert_int_eq((int)num(t, 0, "bank"), 64);
  ck_assert(num(t, 0, "top1") >= 0 && num(t, 0, "top5") >= num(t, 0, "top1") && num(t, 0, "top5") <= 100);
  unmix_csv_table_free(t);
  snprintf(a, sizeof a, "knn %s --protocol cosine", g_moco);
  run_expect(2, "--protocol must be moco or wmse", a);

  snprintf(a, sizeof a, "lincls %s --protocol wmse-cifar --epochs 3 --batch-size 32 --subset 100 --test-subset 40 --out lw",
           g_moco);
  run_expect(0, "wmse-cifar protocol, 3 epochs: top-1", a);
  static const char *const scols[] = {"checkpoint", "label", "pretrain_epochs", "protocol", "epochs", "lr", "lr_end",
                                      "batch_size", "weight_decay", "top1", "top5", "train_samples", "test_samples",
                                      "seconds", "backend"};
  t = read_csv("lw/summary.csv", scols, 15);
  ck_assert_int_eq(t->nrows, 1);
  ck_assert_str_eq(cell(t, 0, "protocol"), "wmse-cifar");
  ck_assert_int_eq((int)num(t, 0, "epochs"), 3);
  ck_assert(num(t, 0, "lr") == 0.01 && num(t, 0, "lr_end") == 1e-6 && num(t, 0, "weight_decay") == 5e-6);
  ck_assert_int_eq((int)num(t, 0, "train_samples"), 100);
  ck_assert_int_eq((int)num(t, 0, "test_samples"), 40);
  ck_assert(num(t, 0, "top1") >= 0 && num(t, 0, "top5") >= num(t, 0, "top1"));
  unmix_csv_table_free(t);
  snprintf(a, sizeof a, "lincls %s --protocol=wmse-cifar --lr-end x", g_moco);
  run_expect(2, "--lr-end", a);
}
END_TEST

/* Training crops smaller than the evaluated images (data.crops size 24 on 32-px CIFAR): the
 * encoder built for 24x24 gives, on 32x32 images, bit for bit the features (head embedding and
 * backbone) of the same weights built for 32x32; and `unmix knn` on such a run (its encoder built
 * for the evaluation's 32x32) equals the trainer's monitor, on the features knn.features names
 * (backbone here; head gives another figure). Before, the monitor fed 32-px images
 * to a 24-px graph (chance-level kNN) and `unmix knn` refused the run. */
START_TEST(test_eval_other_image_size) {
  struct unmix_ckpt *ck = NULL;
  ck_assert(unmix_ckpt_load(g_moco, &ck) == UNMIX_OK);
  struct unmix_config cfg;
  ck_assert(unmix_manifest_load_string(unmix_ckpt_meta(ck, "unmix.manifest"), "m", NULL, 0, &cfg) == UNMIX_OK);
  snprintf(cfg.data.root, sizeof cfg.data.root, "%s", g_data);
  struct unmix_model *m[2] = {NULL, NULL};
  const int sizes[2] = {32, 24};
  for (int i = 0; i < 2; i++) {
    struct unmix_model_spec spec;
    unmix_model_spec_from_config(&cfg, sizes[i], &spec);
    ck_assert(unmix_model_create(&spec, unmix_test_cpu(), 0, &m[i]) == UNMIX_OK);
    ck_assert(unmix_model_from_ckpt(m[i], ck, "", false) == UNMIX_OK);
  }
  struct unmix_dataset_options dso;
  struct unmix_dataset *test = NULL;
  unmix_dataset_options_from_config(&cfg.data, UNMIX_SPLIT_TEST, &dso);
  ck_assert(unmix_dataset_open(&dso, &test) == UNMIX_OK);
  struct unmix_recipe rc;
  ck_assert(unmix_recipe_from_config(&cfg.data, &rc) == UNMIX_OK);
  for (int pass = 0; pass < 2; pass++) { /* the head embedding (normalised), the backbone features */
    float *f[2];
    int32_t *lab[2];
    int d[2];
    for (int i = 0; i < 2; i++) {
      const int node = pass ? m[i]->feat_node : m[i]->embed_node;
      ck_assert(unmix_extract_features(m[i]->be, m[i], node, test, &rc, 7, 1, pass == 0, &f[i], &lab[i], &d[i]) ==
                UNMIX_OK);
    }
    ck_assert_int_eq(d[0], d[1]);
    ck_assert_int_eq(d[0], pass ? 32 : 16);
    ck_assert_msg(memcmp(f[0], f[1], sizeof(float) * (size_t)test->n * d[0]) == 0,
                  "%s features of 32-px images differ between encoders built for 32 and 24", pass ? "backbone" : "head");
    ck_assert(memcmp(lab[0], lab[1], sizeof(int32_t) * (size_t)test->n) == 0);
    for (int i = 0; i < 2; i++) {
      m[i]->be->free(f[i]);
      free(lab[i]);
    }
  }
  unmix_dataset_free(test);
  for (int i = 0; i < 2; i++) unmix_model_destroy(m[i]);
  unmix_ckpt_free(ck);
  unmix_config_free(&cfg);

  /* a run trained on 24-px crops: its monitor and `unmix knn` agree */
  char man[1200], text[4096], *o = NULL;
  snprintf(man, sizeof man, "%s/crop24.yaml", g_dir);
  snprintf(text, sizeof text, "name: crop24\nbackend: cpu\nseed: 6\nunmix: {enabled: false}\n%s", MOCO_BODY);
  unmix_test_write_text(man, text);
  int st = unmix(&o, "train crop24.yaml --out crop24 --quiet --set data.root=%s --set knn.features=backbone "
                     "--set 'data.crops=[{nmb: 2, size: 24, min_scale: 0.2, max_scale: 1.0}]'", g_data);
  ck_assert_msg(st == 0, "training crop24 failed:\n%s", unmix_test_tail(o));
  free(o);
  char a[2048], mp[1400];
  snprintf(a, sizeof a, "knn %s/crop24/checkpoint.safetensors --csv knn24.csv", g_dir);
  run_expect(0, "top-1", a);
  struct unmix_csv_table *k = read_csv("knn24.csv", KNN_COLS, 11), *mt = NULL;
  snprintf(mp, sizeof mp, "%s/crop24/metrics.csv", g_dir);
  ck_assert(unmix_csv_read(mp, &mt) == UNMIX_OK);
  ck_assert_str_eq(cell(k, 0, "top1"), cell(mt, mt->nrows - 1, "knn_top1"));
  ck_assert_str_eq(cell(k, 0, "top5"), cell(mt, mt->nrows - 1, "knn_top5"));
  ck_assert_str_eq(cell(k, 0, "features"), "backbone"); /* knn.features from the run's manifest */
  unmix_csv_table_free(k);
  /* the head embedding instead: another result (this run's figures differ), labelled head */
  snprintf(a, sizeof a, "knn %s/crop24/checkpoint.safetensors --features head --csv knn24h.csv", g_dir);
  run_expect(0, "head features", a);
  k = read_csv("knn24h.csv", KNN_COLS, 11);
  ck_assert_str_eq(cell(k, 0, "features"), "head");
  printf("crop24: kNN top-1 backbone %s, head %s\n", cell(mt, mt->nrows - 1, "knn_top1"), cell(k, 0, "top1"));
  ck_assert_str_ne(cell(k, 0, "top1"), cell(mt, mt->nrows - 1, "knn_top1"));
  unmix_csv_table_free(mt);
  unmix_csv_table_free(k);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("eval_cmds");
  TCase *tc = tcase_create("cmds");
  tcase_set_timeout(tc, 600);
  tcase_add_unchecked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_help_and_usage_errors);
  tcase_add_test(tc, test_knn_equals_monitor);
  tcase_add_test(tc, test_eval_other_image_size);
  tcase_add_test(tc, test_lincls_cmd);
  tcase_add_test(tc, test_wmse_protocols_cmd);
  tcase_add_test(tc, test_tsne_cmd);
  tcase_add_test(tc, test_hist_cmd);
  tcase_add_test(tc, test_flatness_cmd);
  tcase_add_test(tc, test_export_round_trip);
  tcase_add_test(tc, test_bad_inputs);
  suite_add_tcase(s, tc);
  return s;
}

UNMIX_TEST_MAIN(suite)
