/* `unmix train` end to end on tiny synthetic datasets in the real on-disk formats:
 * a run interrupted (after an epoch, mid-epoch, or by SIGINT through the real binary) and
 * resumed gives bit-identical metrics and parameters to an uninterrupted run, for MoCo and
 * SwAV; a NaN loss stops the run with the last checkpoint intact; bad invocations give clear
 * errors; metrics.csv has every documented column. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/data/synth.h"
#include "core/io/checkpoint.h"
#include "core/io/csv.h"
#include "experiments/trainer.h"
#include "tests/support/testutil.h"

static char *g_tmp;
static char g_data[600];

static void setup_data(void) {
  g_tmp = unmix_test_tmpdir("train");
  snprintf(g_data, sizeof g_data, "%s/cifar10", g_tmp);
  struct unmix_synth_options so = {.format = "cifar10", .dir = g_data, .n = 64, .n_test = 24, .classes = 4, .seed = 5};
  ck_assert_msg(unmix_synth_write(&so) == UNMIX_OK, "%s", unmix_error_message());
}

static void teardown_data(void) {
  unmix_test_rmdir(g_tmp);
  free(g_tmp);
}

/* A tiny manifest derived from the real CIFAR bases. */
static void write_manifest(const char *path, const char *base, const char *extra) {
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f,
          "base: %s/configs/base/%s\n"
          "name: tiny\n"
          "data: {dataset: cifar10, root: %s, workers: 2}\n"
          "train: {epochs: 2, log_every: 1}\n"
          "knn: {every: 1, k: 4, bank_subset: 32, test_subset: 16}\n"
          "%s",
          UNMIX_SOURCE_DIR, base, g_data, extra);
  fclose(f);
}

static const char *MOCO_EXTRA = "optim: {batch_size: 16}\nmoco: {K: 64}\nmodel: {bn_splits: 4, width: 4}\n";
static const char *SWAV_EXTRA = "optim: {batch_size: 8}\nmodel: {width: 4}\n"
                                "swav: {freeze_prototypes_niters: 3, nmb_prototypes: 10}\n"
                                "schedule: {warmup_epochs: 1}\n";

static int train(const char *manifest, const char *out, bool resume, int stop_epochs, int64_t stop_steps) {
  struct unmix_train_options o = {0};
  o.manifest = manifest;
  o.out_dir = out;
  o.resume = resume;
  o.stop_after_epochs = stop_epochs;
  o.stop_after_steps = stop_steps;
  o.quiet = true;
  return unmix_train(&o);
}

/* metrics.csv rows must agree on every deterministic column. */
static void same_metrics(const char *dir_a, const char *dir_b) {
  char pa[1024], pb[1024];
  snprintf(pa, sizeof pa, "%s/metrics.csv", dir_a);
  snprintf(pb, sizeof pb, "%s/metrics.csv", dir_b);
  struct unmix_csv_table *a = NULL, *b = NULL;
  ck_assert_msg(unmix_csv_read(pa, &a) == UNMIX_OK, "%s", unmix_error_message());
  ck_assert_msg(unmix_csv_read(pb, &b) == UNMIX_OK, "%s", unmix_error_message());
  ck_assert_int_eq(a->nrows, b->nrows);
  static const char *cols[] = {"epoch", "steps", "lr", "loss", "loss_main", "loss_mix", "loss_mix_flip", "inst_top1",
                               "inst_top5", "knn_top1", "knn_top5", "mix_global", "mix_region", "lam_mean"};
  for (size_t r = 0; r < a->nrows; r++)
    for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++) {
      const char *x = unmix_csv_cell(a, r, unmix_csv_column(a, cols[c]));
      const char *y = unmix_csv_cell(b, r, unmix_csv_column(b, cols[c]));
      ck_assert_msg(!strcmp(x, y), "row %zu column %s: '%s' vs '%s' (%s vs %s)", r, cols[c], x, y, dir_a, dir_b);
    }
  unmix_csv_table_free(a);
  unmix_csv_table_free(b);
  /* the per-step record (lr, loss, Un-Mix mode and lambda) has no timing: byte-identical */
  char cmd[2200];
  snprintf(cmd, sizeof cmd, "cmp -s %s/steps.csv %s/steps.csv", dir_a, dir_b);
  ck_assert_msg(unmix_test_sh(cmd, NULL) == 0, "steps.csv differs between %s and %s", dir_a, dir_b);
}

/* Every tensor of the two checkpoints must be bit-identical. */
static void same_checkpoint(const char *dir_a, const char *dir_b) {
  char pa[1024], pb[1024];
  snprintf(pa, sizeof pa, "%s/checkpoint.safetensors", dir_a);
  snprintf(pb, sizeof pb, "%s/checkpoint.safetensors", dir_b);
  struct unmix_ckpt *a = NULL, *b = NULL;
  ck_assert_msg(unmix_ckpt_load(pa, &a) == UNMIX_OK, "%s", unmix_error_message());
  ck_assert_msg(unmix_ckpt_load(pb, &b) == UNMIX_OK, "%s", unmix_error_message());
  ck_assert_int_eq(a->n, b->n);
  for (size_t i = 0; i < a->n; i++) {
    const struct unmix_ckpt_tensor *t = &a->tensors[i], *u = unmix_ckpt_find(b, t->name);
    ck_assert_msg(u != NULL, "%s missing from %s", t->name, pb);
    ck_assert_int_eq(t->nbytes, u->nbytes);
    ck_assert_msg(memcmp(t->data, u->data, t->nbytes) == 0, "tensor %s differs between %s and %s", t->name, pa, pb);
  }
  ck_assert_str_eq(unmix_ckpt_meta(a, "unmix.manifest"), unmix_ckpt_meta(b, "unmix.manifest"));
  unmix_ckpt_free(a);
  unmix_ckpt_free(b);
}

static void resume_case(const char *base, const char *extra, const char *tag) {
  char man[700], a[700], b[700], c[700];
  snprintf(man, sizeof man, "%s/%s.yaml", g_tmp, tag);
  write_manifest(man, base, extra);
  snprintf(a, sizeof a, "%s/%s_full", g_tmp, tag);
  snprintf(b, sizeof b, "%s/%s_epoch", g_tmp, tag);
  snprintf(c, sizeof c, "%s/%s_mid", g_tmp, tag);
  ck_assert_int_eq(train(man, a, false, 0, 0), 0);
  /* stopped at the end of epoch 1, then resumed */
  ck_assert_int_eq(train(man, b, false, 1, 0), 0);
  ck_assert_int_eq(train(man, b, true, 0, 0), 0);
  same_metrics(a, b);
  same_checkpoint(a, b);
  /* stopped mid-epoch (after 2 steps; an epoch has 4 / 8), resumed twice */
  ck_assert_int_eq(train(man, c, false, 0, 2), 0);
  ck_assert_int_eq(train(man, c, true, 0, 3), 0);
  ck_assert_int_eq(train(man, c, true, 0, 0), 0);
  same_metrics(a, c);
  same_checkpoint(a, c);
  /* a finished run resumed again is a no-op */
  ck_assert_int_eq(train(man, c, true, 0, 0), 0);
  same_checkpoint(a, c);
}

START_TEST(test_resume_moco_bit_identical) { resume_case("moco_cifar.yaml", MOCO_EXTRA, "moco"); }
END_TEST

START_TEST(test_resume_swav_bit_identical) { resume_case("swav_cifar.yaml", SWAV_EXTRA, "swav"); }
END_TEST

/* SimCLR / BYOL + Un-Mix: the Adam moments and step count, the heads, the predictor and the
 * BYOL target (parameters and buffers) all travel through the checkpoint. */
static const char *WMSE_EXTRA = "optim: {batch_size: 16}\nmodel: {width: 4, hidden: 32, dim: 8}\n"
                                "schedule: {warmup_iters: 3, drops: [1]}\nunmix: {enabled: true}\n";

START_TEST(test_resume_simclr_bit_identical) {
  char extra[512];
  snprintf(extra, sizeof extra, "method: simclr\n%s", WMSE_EXTRA);
  resume_case("wmse_cifar.yaml", extra, "simclr");
}
END_TEST

START_TEST(test_resume_byol_bit_identical) {
  char extra[512];
  snprintf(extra, sizeof extra, "method: byol\n%s", WMSE_EXTRA);
  resume_case("wmse_cifar.yaml", extra, "byol");
}
END_TEST

START_TEST(test_metrics_columns_and_status) {
  char man[700], out[700], p[800];
  snprintf(man, sizeof man, "%s/cols.yaml", g_tmp);
  write_manifest(man, "moco_cifar.yaml", MOCO_EXTRA);
  snprintf(out, sizeof out, "%s/cols", g_tmp);
  ck_assert_int_eq(train(man, out, false, 0, 0), 0);
  snprintf(p, sizeof p, "%s/metrics.csv", out);
  struct unmix_csv_table *t = NULL;
  ck_assert(unmix_csv_read(p, &t) == UNMIX_OK);
  /* the header of every run before the method table: methods' columns must not move it */
    static const char *cols[] = {"epoch",    "steps",    "lr",         "loss",       "loss_main",  "loss_mix",
                                 "loss_mix_flip", "inst_top1", "inst_top5", "knn_top1", "knn_top5", "mix_global",
                                 "mix_region", "lam_mean", "images_per_s", "seconds"};
  ck_assert_int_eq(t->ncol, (int)(sizeof cols / sizeof cols[0]));
  for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) ck_assert_int_eq(unmix_csv_column(t, cols[i]), (int)i);
  ck_assert_int_eq(t->nrows, 2);
  double knn, loss;
  ck_assert(unmix_csv_get_double(t, 1, "knn_top1", &knn) == UNMIX_OK && knn >= 0 && knn <= 100);
  ck_assert(unmix_csv_get_double(t, 1, "loss", &loss) == UNMIX_OK && isfinite(loss));
  unmix_csv_table_free(t);
  snprintf(p, sizeof p, "cat %s/status.yaml", out);
  char *txt = NULL;
  ck_assert_int_eq(unmix_test_sh(p, &txt), 0);
  ck_assert_msg(strstr(txt, "status: finished") && strstr(txt, "epochs_done: 2"), "status.yaml: %s", txt);
  free(txt);
}
END_TEST

START_TEST(test_nan_stops_with_checkpoint_intact) {
  /* epoch 2 runs at lr 0.06 * 1e30: the loss becomes NaN/Inf */
  char man[700], out[700], p[800];
  snprintf(man, sizeof man, "%s/nan.yaml", g_tmp);
  char extra[512];
  snprintf(extra, sizeof extra, "%sschedule: {kind: step, milestones: [1], gamma: 1.0e30}\n", MOCO_EXTRA);
  write_manifest(man, "moco_cifar.yaml", extra);
  snprintf(out, sizeof out, "%s/nan", g_tmp);
  ck_assert_int_eq(train(man, out, false, 0, 0), 1);
  snprintf(p, sizeof p, "%s/checkpoint.safetensors", out);
  struct unmix_ckpt *ck = NULL;
  ck_assert_msg(unmix_ckpt_load(p, &ck) == UNMIX_OK, "last good checkpoint unreadable: %s", unmix_error_message());
  ck_assert_str_eq(unmix_ckpt_meta(ck, "unmix.epochs_done"), "1");
  unmix_ckpt_free(ck);
  snprintf(p, sizeof p, "grep -c 'status: failed' %s/status.yaml", out);
  ck_assert_int_eq(unmix_test_sh(p, NULL), 0);
  snprintf(p, sizeof p, "grep -c 'numerical error' %s/train.log", out);
  ck_assert_int_eq(unmix_test_sh(p, NULL), 0);
}
END_TEST

START_TEST(test_invocation_errors) {
  char man[700], man2[700], out[700];
  snprintf(man, sizeof man, "%s/err.yaml", g_tmp);
  write_manifest(man, "moco_cifar.yaml", MOCO_EXTRA);
  snprintf(out, sizeof out, "%s/err", g_tmp);
  ck_assert_int_eq(train(man, out, false, 1, 0), 0);
  /* a second run into the same directory without --resume */
  ck_assert_int_eq(train(man, out, false, 0, 0), 1);
  ck_assert_msg(strstr(unmix_error_message(), "--resume"), "%s", unmix_error_message());
  /* --resume with a different manifest */
  snprintf(man2, sizeof man2, "%s/err2.yaml", g_tmp);
  char extra[512];
  snprintf(extra, sizeof extra, "%sunmix: {prob: 0.25}\n", MOCO_EXTRA);
  write_manifest(man2, "moco_cifar.yaml", extra);
  ck_assert_int_eq(train(man2, out, true, 0, 0), 1);
  ck_assert_msg(strstr(unmix_error_message(), "different resolved manifest"), "%s", unmix_error_message());
  /* missing manifest, bad key, missing dataset */
  ck_assert_int_eq(train("/nonexistent/x.yaml", out, false, 0, 0), 1);
  char bad[700];
  snprintf(bad, sizeof bad, "%s/bad.yaml", g_tmp);
  write_manifest(bad, "moco_cifar.yaml", "optim: {batchsize: 3}\nmodel: {width: 4}\n");
  ck_assert_int_eq(train(bad, NULL, false, 0, 0), 1);
  ck_assert_msg(strstr(unmix_error_message(), "bad.yaml") && strstr(unmix_error_message(), "batch_size"), "%s",
                unmix_error_message());
  snprintf(bad, sizeof bad, "%s/nodata.yaml", g_tmp);
  FILE *f = fopen(bad, "w");
  fprintf(f, "base: %s/configs/base/moco_cifar.yaml\ndata: {root: %s/nowhere}\n", UNMIX_SOURCE_DIR, g_tmp);
  fclose(f);
  snprintf(out, sizeof out, "%s/nodata", g_tmp);
  ck_assert_int_eq(train(bad, out, false, 0, 0), 1);
  ck_assert_msg(strstr(unmix_error_message(), "nowhere"), "%s", unmix_error_message());
}
END_TEST

START_TEST(test_sigint_through_binary) {
  const char *bin = getenv("UNMIX_BIN");
  if (!bin) {
    printf("SKIPPED (UNMIX_BIN not set; run through ctest): test_sigint_through_binary\n");
    return;
  }
  /* a larger dataset (400 steps of 8) so the signal lands mid-run */
  char man[700], full[700], sig[700], logp[800], big[700];
  snprintf(big, sizeof big, "%s/cifar10_big", g_tmp);
  struct unmix_synth_options so = {.format = "cifar10", .dir = big, .n = 3200, .n_test = 16, .classes = 4, .seed = 6};
  ck_assert_msg(unmix_synth_write(&so) == UNMIX_OK, "%s", unmix_error_message());
  snprintf(man, sizeof man, "%s/sig.yaml", g_tmp);
  FILE *f = fopen(man, "w");
  fprintf(f,
          "base: %s/configs/base/moco_cifar.yaml\nname: sig\ndata: {dataset: cifar10, root: %s, workers: 2}\n"
          "train: {epochs: 1, log_every: 1}\nknn: {every: 1, k: 4, bank_subset: 32, test_subset: 16}\n"
          "optim: {batch_size: 8}\nmoco: {K: 64}\nmodel: {bn_splits: 4, width: 4}\n",
          UNMIX_SOURCE_DIR, big);
  fclose(f);
  snprintf(full, sizeof full, "%s/sig_full", g_tmp);
  snprintf(sig, sizeof sig, "%s/sig_int", g_tmp);
  ck_assert_int_eq(train(man, full, false, 0, 0), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 2);
    execl(bin, bin, "train", man, "--out", sig, (char *)NULL);
    _exit(127);
  }
  /* wait for the first logged step, then interrupt */
  snprintf(logp, sizeof logp, "grep -q 'step 2/' %s/train.log 2>/dev/null", sig);
  bool seen = false;
  for (int i = 0; i < 3000 && !seen; i++) {
    if (unmix_test_sh(logp, NULL) == 0) seen = true;
    else usleep(10000);
  }
  ck_assert_msg(seen, "the child never logged a step");
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  ck_assert_msg(WIFEXITED(status), "child did not exit cleanly (signal %d)", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  ck_assert_int_eq(WEXITSTATUS(status), 130);
  char p[800];
  snprintf(p, sizeof p, "grep -q 'status: interrupted' %s/status.yaml", sig);
  ck_assert_int_eq(unmix_test_sh(p, NULL), 0);
  snprintf(p, sizeof p, "grep -q 'interrupted (SIGINT): checkpoint saved at epoch 1 step' %s/train.log", sig);
  ck_assert_msg(unmix_test_sh(p, NULL) == 0, "no mid-epoch checkpoint message in %s/train.log", sig);
  ck_assert_int_eq(train(man, sig, true, 0, 0), 0);
  same_metrics(full, sig);
  same_checkpoint(full, sig);
}
END_TEST

static Suite *train_suite(void) {
  Suite *s = suite_create("train");
  TCase *tc = tcase_create("e2e");
  tcase_set_timeout(tc, 900);
  tcase_add_unchecked_fixture(tc, setup_data, teardown_data);
  tcase_add_test(tc, test_resume_moco_bit_identical);
  tcase_add_test(tc, test_resume_swav_bit_identical);
  tcase_add_test(tc, test_resume_simclr_bit_identical);
  tcase_add_test(tc, test_resume_byol_bit_identical);
  tcase_add_test(tc, test_metrics_columns_and_status);
  tcase_add_test(tc, test_nan_stops_with_checkpoint_intact);
  tcase_add_test(tc, test_invocation_errors);
  tcase_add_test(tc, test_sigint_through_binary);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(train_suite)
