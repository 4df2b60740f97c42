/* The run directory of `unmix train` keeps history safe: it is locked by its run (a second
 * run into it fails; a lock left by a killed run is taken over), a missing or unreadable
 * checkpoint never restarts and truncates a run, --restart moves old files aside, stale
 * temp files are removed, a bad manifest leaves no directory, status.yaml never claims an
 * epoch the checkpoint lacks, resume names the keys that differ (or extends a run), and
 * --tensorboard's event file holds exactly the CSVs' numbers, also across a resume. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/data/synth.h"
#include "core/io/checkpoint.h"
#include "core/io/csv.h"
#include "core/io/tfevents.h"
#include "experiments/trainer.h"
#include "tests/support/testutil.h"

static char *g_tmp;
static char g_data[600];
static char g_man[700];

/* 32 images, batch 16: 2 steps per epoch of a width-4 ResNet, no kNN monitor. */
static void setup_data(void) {
  g_tmp = unmix_test_tmpdir("rundir");
  snprintf(g_data, sizeof g_data, "%s/cifar10", g_tmp);
  struct unmix_synth_options so = {.format = "cifar10", .dir = g_data, .n = 32, .n_test = 8, .classes = 4, .seed = 5};
  ck_assert_msg(unmix_synth_write(&so) == UNMIX_OK, "%s", unmix_error_message());
  snprintf(g_man, sizeof g_man, "%s/tiny.yaml", g_tmp);
  FILE *f = fopen(g_man, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f,
          "base: %s/configs/base/moco_cifar.yaml\nname: tiny\ndata: {dataset: cifar10, root: %s, workers: 1}\n"
          "train: {epochs: 2, log_every: 1}\nknn: {every: 0}\noptim: {batch_size: 16}\nmoco: {K: 32}\n"
          "model: {bn_splits: 4, width: 4}\n",
          UNMIX_SOURCE_DIR, g_data);
  fclose(f);
}

static void teardown_data(void) {
  unmix_test_rmdir(g_tmp);
  free(g_tmp);
}

struct opts {
  bool resume, restart, tensorboard;
  int stop_epochs;
  const char *sets[4];
};

static int train(const char *out, struct opts op) {
  struct unmix_train_options o = {0};
  o.manifest = g_man;
  o.out_dir = out;
  o.resume = op.resume;
  o.restart = op.restart;
  o.tensorboard = op.tensorboard;
  o.stop_after_epochs = op.stop_epochs;
  o.quiet = true;
  int n = 0;
  while (n < 4 && op.sets[n]) n++;
  o.overrides = op.sets;
  o.n_overrides = n;
  return unmix_train(&o);
}

static const char *dirp(const char *name) {
  static char buf[4][800];
  static int k = 0;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", g_tmp, name);
  return buf[k];
}

static size_t metrics_rows(const char *dir) {
  char p[900];
  snprintf(p, sizeof p, "%s/metrics.csv", dir);
  struct unmix_csv_table *t = NULL;
  ck_assert_msg(unmix_csv_read(p, &t) == UNMIX_OK, "%s", unmix_error_message());
  size_t n = t->nrows;
  unmix_csv_table_free(t);
  return n;
}

static bool file_has(const char *dir, const char *file, const char *needle) {
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "grep -qF -- '%s' %s/%s", needle, dir, file);
  return unmix_test_sh(cmd, NULL) == 0;
}

static void expect_error(int rc, const char *needle) {
  ck_assert_int_eq(rc, 1);
  ck_assert_msg(strstr(unmix_error_message(), needle), "message lacks '%s': %s", needle, unmix_error_message());
}

START_TEST(test_locked_directory_refuses_a_second_run) {
  const char *d = dirp("locked");
  ck_assert_int_eq(train(d, (struct opts){.stop_epochs = 1}), 0);
  /* the log names the CPU's conv kernels and the OpenMP wait policy (results depend on them) */
  ck_assert(file_has(d, "train.log", "cpu fp32: conv "));
  ck_assert(file_has(d, "train.log", "; openmp: OMP_WAIT_POLICY "));
  /* a live owner: another open file description holding the flock */
  char lp[900];
  snprintf(lp, sizeof lp, "%s/.unmix.lock", d);
  int fd = open(lp, O_RDWR);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(flock(fd, LOCK_EX | LOCK_NB), 0);
  ck_assert_int_eq(write(fd, "pid 4242 host h started t\n", 26), 26);
  expect_error(train(d, (struct opts){.resume = true}), "in use by another `unmix train` (pid 4242");
  expect_error(train(d, (struct opts){.restart = true}), "in use by another");
  ck_assert(file_has(d, "status.yaml", "status: interrupted")); /* the owner's status untouched */
  ck_assert_int_eq(metrics_rows(d), 1);
  /* the owner is killed: its flock goes, its text stays; the next run takes over and says so */
  close(fd);
  ck_assert_int_eq(train(d, (struct opts){.resume = true}), 0);
  ck_assert(file_has(d, "train.log", "took over the lock of pid 4242"));
  ck_assert_int_eq(metrics_rows(d), 2);
  /* a clean exit leaves an empty lock file: no take-over message next time */
  struct stat sb;
  ck_assert_int_eq(stat(lp, &sb), 0);
  ck_assert_int_eq(sb.st_size, 0);
}
END_TEST

START_TEST(test_missing_checkpoint_never_wipes_history) {
  const char *d = dirp("lost");
  ck_assert_int_eq(train(d, (struct opts){0}), 0); /* 2 epochs, a checkpoint after each */
  char ck[900], moved[900];
  snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", d);
  snprintf(moved, sizeof moved, "%s/elsewhere.safetensors", g_tmp);
  ck_assert_int_eq(rename(ck, moved), 0);
  expect_error(train(d, (struct opts){.resume = true}), "records 2 epoch(s) but");
  ck_assert_int_eq(metrics_rows(d), 2);
  expect_error(train(d, (struct opts){0}), "--restart");
  ck_assert_int_eq(metrics_rows(d), 2);
  /* a checkpoint that cannot be stat()ed (a symlink loop: ELOOP) is an error, not "none" */
  ck_assert_int_eq(symlink("checkpoint.safetensors", ck), 0);
  expect_error(train(d, (struct opts){.resume = true}), "cannot stat");
  ck_assert_int_eq(metrics_rows(d), 2);
  unlink(ck);
  /* --restart moves the old run aside, then starts over */
  ck_assert_int_eq(train(d, (struct opts){.restart = true, .stop_epochs = 1}), 0);
  ck_assert_int_eq(metrics_rows(d), 1);
  ck_assert(file_has(d, "train.log", "--restart: moved the"));
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "test $(tail -n +2 %s/previous-*/metrics.csv | wc -l) = 2", d);
  ck_assert_msg(unmix_test_sh(cmd, NULL) == 0, "the old metrics.csv was not kept under previous-*");
  /* killed between an epoch's metrics row and its checkpoint (the soak found it): one row
   * (checkpoint_every 1) and no checkpoint is a run that never saved: it starts over */
  ck_assert_int_eq(unlink(ck), 0);
  ck_assert_int_eq(train(d, (struct opts){.resume = true}), 0);
  ck_assert_int_eq(metrics_rows(d), 2);
  ck_assert(file_has(d, "train.log", "were never checkpointed"));
}
END_TEST

START_TEST(test_foreign_files_and_stale_temp_files) {
  /* a directory with someone else's file is not a run: refused, file untouched */
  const char *d = dirp("foreign");
  ck_assert_int_eq(mkdir(d, 0755), 0);
  char p[900];
  snprintf(p, sizeof p, "%s/notes.txt", d);
  FILE *f = fopen(p, "w");
  fputs("mine\n", f);
  fclose(f);
  expect_error(train(d, (struct opts){0}), "notes.txt");
  expect_error(train(d, (struct opts){.resume = true}), "notes.txt");
  ck_assert(file_has(d, "notes.txt", "mine"));
  /* a killed checkpoint write leaves NAME.tmp.PID: the next owner removes it */
  const char *e = dirp("tmpfiles");
  ck_assert_int_eq(train(e, (struct opts){.stop_epochs = 1}), 0);
  snprintf(p, sizeof p, "%s/checkpoint.safetensors.tmp.99999", e);
  f = fopen(p, "w");
  fputs("partial", f);
  fclose(f);
  ck_assert_int_eq(train(e, (struct opts){.resume = true}), 0);
  ck_assert_int_ne(access(p, F_OK), 0);
  ck_assert(file_has(e, "train.log", "checkpoint.safetensors.tmp.99999, left by an interrupted write"));
}
END_TEST

START_TEST(test_bad_invocation_leaves_no_directory) {
  const char *d = dirp("never");
  /* train rejected data.prefetch = 100 only after creating the directory; validate accepted it */
  expect_error(train(d, (struct opts){.sets = {"data.prefetch=100"}}), "data.prefetch");
  ck_assert_int_ne(access(d, F_OK), 0);
  /* a dataset that is not there */
  char set[800];
  snprintf(set, sizeof set, "data.root=%s/nowhere", g_tmp);
  expect_error(train(d, (struct opts){.sets = {set}}), "nowhere");
  ck_assert_int_ne(access(d, F_OK), 0);
}
END_TEST

START_TEST(test_status_never_ahead_of_the_checkpoint) {
  /* epoch 1 is fine, epoch 2 diverges (lr x 1e30); with checkpoint_every 5 no checkpoint
   * exists when the run fails, so status.yaml must say 0 epochs */
  const char *d = dirp("status");
  ck_assert_int_eq(train(d, (struct opts){.sets = {"train.checkpoint_every=5", "schedule.kind=step",
                                                   "schedule.milestones=[1]", "schedule.gamma=1.0e30"}}),
                   1);
  ck_assert_msg(file_has(d, "status.yaml", "status: failed"), "no failed status");
  ck_assert_msg(file_has(d, "status.yaml", "epochs_done: 0"), "status.yaml claims an epoch no checkpoint holds");
  ck_assert(file_has(d, "train.log", "no checkpoint was saved"));
  /* epoch 2 may end with a finite loss but non-finite weights: then its row is written and
   * the checkpoint refused (the case of the report: lr 1e5, loss 14.9, 96 bad tensors) */
  ck_assert_int_ge(metrics_rows(d), 1);
  ck_assert_int_le(metrics_rows(d), 2);
  /* with a checkpoint after epoch 1, the log vouches for it only after reading it back */
  const char *e = dirp("status2");
  ck_assert_int_eq(train(e, (struct opts){.sets = {"schedule.kind=step", "schedule.milestones=[1]",
                                                   "schedule.gamma=1.0e30"}}),
                   1);
  ck_assert(file_has(e, "status.yaml", "epochs_done: 1"));
  ck_assert_msg(file_has(e, "train.log", "epoch(s)) was read back intact and finite"), "no verified last checkpoint");
  char p[900];
  snprintf(p, sizeof p, "%s/checkpoint.safetensors", e);
  struct unmix_ckpt *ck = NULL;
  ck_assert_msg(unmix_ckpt_load(p, &ck) == UNMIX_OK, "%s", unmix_error_message());
  ck_assert_str_eq(unmix_ckpt_meta(ck, "unmix.epochs_done"), "1");
  unmix_ckpt_free(ck);
}
END_TEST

START_TEST(test_resume_names_keys_and_extends_a_run) {
  const char *d = dirp("extend");
  ck_assert_int_eq(train(d, (struct opts){0}), 0);
  ck_assert(file_has(d, "status.yaml", "status: finished"));
  expect_error(train(d, (struct opts){.resume = true, .sets = {"unmix.prob=0.25", "optim.lr=0.03"}}),
               "unmix.prob 0.5 -> 0.25");
  ck_assert_msg(strstr(unmix_error_message(), "optim.lr"), "%s", unmix_error_message());
  expect_error(train(d, (struct opts){.resume = true, .sets = {"train.epochs=1"}}), "cannot be shortened");
  ck_assert_int_eq(train(d, (struct opts){.resume = true, .sets = {"train.epochs=3"}}), 0);
  ck_assert_int_eq(metrics_rows(d), 3);
  ck_assert(file_has(d, "status.yaml", "epochs_done: 3"));
  ck_assert(file_has(d, "train.log", "resuming with changed settings: train.epochs 2 -> 3"));
  ck_assert(file_has(d, "manifest.yaml", "epochs: 3"));
  /* `unmix train --resume DIR` reads DIR/manifest.yaml */
  const char *bin = getenv("UNMIX_BIN");
  if (!bin) {
    printf("SKIPPED (UNMIX_BIN not set; run through ctest): --resume DIR through the binary\n");
    return;
  }
  char *out = NULL;
  int rc = unmix_test_unmix(g_tmp, &out, "train --resume %s --set train.epochs=4 --quiet", d);
  ck_assert_msg(rc == 0, "%s", out);
  free(out);
  ck_assert_int_eq(metrics_rows(d), 4);
  rc = unmix_test_unmix(g_tmp, &out, "train --resume %s/nothing", g_tmp);
  ck_assert_int_ne(rc, 0);
  free(out);
}
END_TEST

/* Rewrites DIR's checkpoint with tensor `name` changed by fn (a valid CRC: the file is
 * consistent, only its values lie), keeping the original in DIR/orig.safetensors once. */
static void tamper(const char *dir, const char *name, void (*fn)(struct unmix_ckpt_tensor *t)) {
  char p[900], orig[900], cmd[2000];
  snprintf(p, sizeof p, "%s/checkpoint.safetensors", dir);
  snprintf(orig, sizeof orig, "%s/orig.safetensors", g_tmp);
  if (access(orig, F_OK) != 0) {
    snprintf(cmd, sizeof cmd, "cp %s %s", p, orig);
    ck_assert_int_eq(unmix_test_sh(cmd, NULL), 0);
  }
  struct unmix_ckpt *ck = NULL;
  ck_assert_msg(unmix_ckpt_load(orig, &ck) == UNMIX_OK, "%s", unmix_error_message());
  struct unmix_ckpt_tensor *t = (struct unmix_ckpt_tensor *)unmix_ckpt_find(ck, name);
  ck_assert_msg(t != NULL, "no tensor %s", name);
  fn(t);
  struct unmix_ckpt *w = unmix_ckpt_new();
  for (size_t i = 0; i < ck->n; i++)
    ck_assert(unmix_ckpt_add(w, ck->tensors[i].name, ck->tensors[i].dtype, ck->tensors[i].ndim, ck->tensors[i].shape,
                             ck->tensors[i].data) == UNMIX_OK);
  for (size_t i = 0; i < ck->n_meta; i++)
    if (strcmp(ck->meta_keys[i], UNMIX_CKPT_CRC_KEY) != 0)
      ck_assert(unmix_ckpt_set_meta(w, ck->meta_keys[i], ck->meta_values[i]) == UNMIX_OK);
  ck_assert_msg(unmix_ckpt_save(w, p) == UNMIX_OK, "%s", unmix_error_message());
  unmix_ckpt_free(w);
  unmix_ckpt_free(ck);
}

static void ptr_misaligned(struct unmix_ckpt_tensor *t) { *(int64_t *)t->data = 8; } /* 32 keys per step */
static void ptr_negative(struct unmix_ckpt_tensor *t) { *(int64_t *)t->data = -32; }
static void step_skewed(struct unmix_ckpt_tensor *t) { ((int64_t *)t->data)[2] += 1; } /* global step */
static void tracked_negative(struct unmix_ckpt_tensor *t) { *(int64_t *)t->data = -1; }

/* Every scalar read back from a checkpoint is checked against what the code relies on: a
 * queue pointer off the 32-keys-per-step grid once made the enqueue write 8 KB past the
 * queue (heap overflow under ASan, exit 134, status left 'running'). */
START_TEST(test_tampered_checkpoint_state_refused) {
  const char *d = dirp("tamper");
  ck_assert_int_eq(train(d, (struct opts){.stop_epochs = 1}), 0);
  tamper(d, "unmix.scalar.moco.ptr", ptr_misaligned);
  expect_error(train(d, (struct opts){.resume = true}), "moco.ptr = 8 does not fit the queue of 32 keys");
  tamper(d, "unmix.scalar.moco.ptr", ptr_negative);
  expect_error(train(d, (struct opts){.resume = true}), "moco.ptr = -32");
  tamper(d, "unmix.position", step_skewed);
  expect_error(train(d, (struct opts){.resume = true}), "global step 3) does not fit this run");
  tamper(d, "unmix.scalar.moco.key.bn_batches_tracked", tracked_negative);
  expect_error(train(d, (struct opts){.resume = true}), "bn_batches_tracked = -1 is negative");
  ck_assert_int_eq(metrics_rows(d), 1); /* every refusal left the run as it was */
  ck_assert(file_has(d, "status.yaml", "epochs_done: 1"));
}
END_TEST

/* --tensorboard: DIR/events.out.tfevents.unmix = metrics.csv (epoch/<column> at step = epoch)
 * and steps.csv (step/lr, step/loss, step/lam at step = global_step), float32 of the CSV text;
 * a resume rebuilds it, so no epoch appears twice. */
struct tb_seen {
  int n;
  char tag[256][40];
  int64_t step[256];
  float v[256];
};
static void tb_collect(void *ctx, double wall, int64_t step, const char *tag, float value, const char *version) {
  (void)wall;
  struct tb_seen *t = ctx;
  if (version || t->n >= 256) return;
  snprintf(t->tag[t->n], sizeof t->tag[t->n], "%s", tag);
  t->step[t->n] = step;
  t->v[t->n++] = value;
}

static void check_events_match_csvs(const char *dir) {
  char p[900];
  snprintf(p, sizeof p, "%s/events.out.tfevents.unmix", dir);
  struct tb_seen seen = {0};
  ck_assert_msg(unmix_tfevents_read(p, tb_collect, &seen, NULL) == UNMIX_OK, "%s", unmix_error_message());
  const char *files[] = {"metrics.csv", "steps.csv"}, *stepcol[] = {"epoch", "global_step"}, *pre[] = {"epoch", "step"};
  int matched = 0;
  for (int f = 0; f < 2; f++) {
    snprintf(p, sizeof p, "%s/%s", dir, files[f]);
    struct unmix_csv_table *t = NULL;
    ck_assert_msg(unmix_csv_read(p, &t) == UNMIX_OK, "%s", unmix_error_message());
    const char *cols[] = {"loss", "lr"};
    for (size_t r = 0; r < t->nrows; r++) {
      long long step = 0;
      ck_assert(unmix_csv_get_int(t, r, stepcol[f], &step) == UNMIX_OK);
      for (int c = 0; c < 2; c++) {
        double want = 0;
        ck_assert(unmix_csv_get_double(t, r, cols[c], &want) == UNMIX_OK);
        char tag[40];
        snprintf(tag, sizeof tag, "%s/%s", pre[f], cols[c]);
        int hits = 0;
        for (int i = 0; i < seen.n; i++)
          if (!strcmp(seen.tag[i], tag) && seen.step[i] == step) {
            hits++;
            ck_assert_msg(seen.v[i] == (float)want, "%s at %lld: %g in the events, %g in %s", tag, step,
                          (double)seen.v[i], want, files[f]);
          }
        ck_assert_msg(hits == 1, "%s at step %lld appears %d times in the events", tag, step, hits);
        matched++;
      }
    }
    unmix_csv_table_free(t);
  }
  /* nothing else than those rows: every event value belongs to a CSV row */
  int expected = 0;
  for (int i = 0; i < seen.n; i++) expected += !strcmp(seen.tag[i], "epoch/loss") || !strcmp(seen.tag[i], "epoch/lr") ||
                                               !strcmp(seen.tag[i], "step/loss") || !strcmp(seen.tag[i], "step/lr");
  ck_assert_int_eq(expected, matched);
}

START_TEST(test_tensorboard_events_follow_the_csvs) {
  const char *d = dirp("tb");
  ck_assert_int_eq(train(d, (struct opts){.tensorboard = true, .stop_epochs = 1}), 0);
  check_events_match_csvs(d);
  ck_assert_int_eq(train(d, (struct opts){.tensorboard = true, .resume = true}), 0);
  ck_assert_int_eq(metrics_rows(d), 2);
  check_events_match_csvs(d);
  /* without the flag no event file is written */
  const char *e = dirp("no_tb");
  ck_assert_int_eq(train(e, (struct opts){.stop_epochs = 1}), 0);
  char p[900];
  snprintf(p, sizeof p, "%s/events.out.tfevents.unmix", e);
  ck_assert_int_ne(access(p, F_OK), 0);
}
END_TEST

static Suite *rundir_suite(void) {
  Suite *s = suite_create("train_rundir");
  TCase *tc = tcase_create("rundir");
  tcase_set_timeout(tc, 600);
  tcase_add_unchecked_fixture(tc, setup_data, teardown_data);
  tcase_add_test(tc, test_locked_directory_refuses_a_second_run);
  tcase_add_test(tc, test_missing_checkpoint_never_wipes_history);
  tcase_add_test(tc, test_foreign_files_and_stale_temp_files);
  tcase_add_test(tc, test_bad_invocation_leaves_no_directory);
  tcase_add_test(tc, test_status_never_ahead_of_the_checkpoint);
  tcase_add_test(tc, test_resume_names_keys_and_extends_a_run);
  tcase_add_test(tc, test_tampered_checkpoint_state_refused);
  tcase_add_test(tc, test_tensorboard_events_follow_the_csvs);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(rundir_suite)
