/* The training loop of `unmix train` (see trainer.h): run directory, data, method, kNN
 * monitor, metrics, checkpoints, resume and signals. */
#include "experiments/trainer.h"
#include "experiments/projection.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/data/dataset.h"
#include "core/data/loader.h"
#include "core/data/md5.h"
#include "core/data/recipe.h"
#include "core/comm/comm.h"
#include "core/io/atomic.h"
#include "core/io/checkpoint.h"
#include "core/io/csv.h"
#include "core/io/manifest.h"
#include "core/io/tfevents.h"
#include "core/methods/method.h"
#include "core/nn/model_io.h"
#include "core/optim/optim.h"
#include "core/util/blas.h"
#include "core/util/fs.h"
#include "core/util/log.h"
#include "core/util/timer.h"
#include "eval/features.h"
#include "unmix_build_info.h"

#define CKPT_NAME "checkpoint.safetensors"
#define LOCK_NAME ".unmix.lock"   /* flock()ed by the run that owns the directory */
#define PREV_PREFIX "previous-"  /* --restart moves an old run into DIR/previous-<time>/ */
#define N_ACC 12 /* epoch accumulators saved in mid-epoch checkpoints */

static volatile sig_atomic_t g_signal = 0;
static void on_signal(int sig) { g_signal = sig; }

/* Per-epoch sums (doubles, so a resumed epoch reproduces the uninterrupted one). */
struct epoch_acc {
  double loss, t0, t1, t2, metric[UNMIX_METHOD_MAX_METRICS], n, steps, mix_g, mix_r, lam, lr0;
};

struct run {
  const struct unmix_train_options *o;
  struct unmix_config cfg;
  char dir[UNMIX_PATH_MAX];
  char path_ckpt[UNMIX_PATH_MAX + 32];
  const struct unmix_backend *be;
  struct unmix_dataset *train_ds, *test_ds, *bank_ds;
  struct unmix_recipe recipe;
  struct unmix_loader *loader;
  struct unmix_method *method;
  int image_size;
  int64_t steps_per_epoch;
  float *dev_views[UNMIX_METHOD_MAX_VIEWS];
  size_t dev_cap[UNMIX_METHOD_MAX_VIEWS];
  int start_epoch;
  int64_t start_step;
  int64_t global_step;
  struct epoch_acc acc;
  struct unmix_csv_writer *csv;
  struct unmix_csv_writer *steps_csv; /* steps.csv: one row per step (global_step, lr, loss, mix mode, lambda) */
  struct unmix_tfevents *tb;          /* --tensorboard: DIR/events.out.tfevents.unmix, the two CSVs' numbers */
  FILE *log;
  char manifest_md5[40];
  char started[32];
  bool progress;
  struct unmix_comm *comm; /* multi-process: rank 0 alone writes the run directory */
  int rank, world;
  int lock_fd;             /* DIR/.unmix.lock, flock()ed for the run's lifetime (rank 0), or -1 */
  int ckpt_epochs;         /* epochs held by the checkpoint on disk: what status.yaml may claim */
  char notes[4][600];      /* what setup did to the directory, logged once train.log is open */
  int n_notes;
  bool dir_ready;          /* the directory is ours (locked, checked): status.yaml may be written */
};

static void iso_now(char *buf, size_t len) {
  time_t t = time(NULL);
  struct tm tmv;
  gmtime_r(&t, &tmv);
  strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tmv);
}

/* Whether p exists. Only ENOENT means "no": any other stat() failure (EACCES, EIO, ...) is
 * an error, so an unreadable checkpoint is never mistaken for a missing one. */
static unmix_status path_exists(const char *p, bool *exists) {
  struct stat sb;
  if (stat(p, &sb) == 0) {
    *exists = true;
    return UNMIX_OK;
  }
  *exists = false;
  if (errno == ENOENT) return UNMIX_OK;
  return unmix_error_set(UNMIX_ERR_IO, "cannot stat %s: %s", p, strerror(errno));
}

static bool file_exists(const char *p) {
  bool e = false;
  return path_exists(p, &e) == UNMIX_OK && e;
}

static void note(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct run *r, const char *fmt, ...) {
  if (r->n_notes >= 4) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->notes[r->n_notes++], sizeof r->notes[0], fmt, ap);
  va_end(ap);
}

/* ---- the run directory: lock, contents, --restart ------------------------------------------ */
/* The lock is an flock() on DIR/.unmix.lock, which the kernel drops when the owner dies (even
 * by SIGKILL); the file's text (pid, host, start time) is only for messages. An owner that
 * exits normally empties it, so text found by a new owner means the last one was killed. */
static unmix_status rundir_lock(struct run *r) {
  char p[UNMIX_PATH_MAX + 32];
  snprintf(p, sizeof p, "%s/%s", r->dir, LOCK_NAME);
  int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return unmix_error_set(UNMIX_ERR_IO, "cannot create the lock file %s: %s", p, strerror(errno));
  char old[256] = "";
  ssize_t n = pread(fd, old, sizeof old - 1, 0);
  old[n > 0 ? n : 0] = 0;
  for (char *c = old; *c; c++)
    if (*c == '\n') *c = ' ';
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    close(fd);
    if (err == EWOULDBLOCK)
      return unmix_error_set(UNMIX_ERR_ARG,
                             "%s is in use by another `unmix train` (%s); wait for it to finish or stop it, or "
                             "train into another --out directory",
                             r->dir, old[0] ? old : "lock held");
    return unmix_error_set(UNMIX_ERR_IO, "cannot lock %s: %s", p, strerror(err));
  }
  if (old[0])
    note(r, "took over the lock of %s: that run ended without releasing it (killed?)", old);
  char host[128] = "?", txt[512];
  gethostname(host, sizeof host - 1);
  host[sizeof host - 1] = 0;
  char now[32];
  iso_now(now, sizeof now);
  int len = snprintf(txt, sizeof txt, "pid %ld host %s started %s\n", (long)getpid(), host, now);
  if (ftruncate(fd, 0) != 0 || pwrite(fd, txt, (size_t)len, 0) != len) {
    int err = errno;
    close(fd);
    return unmix_error_set(UNMIX_ERR_IO, "cannot write the lock file %s: %s", p, strerror(err));
  }
  r->lock_fd = fd;
  return UNMIX_OK;
}

static void rundir_unlock(struct run *r) {
  if (r->lock_fd < 0) return;
  if (ftruncate(r->lock_fd, 0) != 0) { /* the next owner would report a killed run; harmless */
  }
  close(r->lock_fd); /* releases the flock */
  r->lock_fd = -1;
}

static bool is_lock_or_previous(const char *name) {
  return !strcmp(name, ".") || !strcmp(name, "..") || !strcmp(name, LOCK_NAME) ||
         !strncmp(name, PREV_PREFIX, strlen(PREV_PREFIX));
}

/* Lists DIR's entries other than the lock and earlier runs moved aside (into buf, comma
 * separated, truncated) and counts them. */
static unmix_status rundir_contents(const struct run *r, int *count, char *buf, size_t len) {
  *count = 0;
  buf[0] = 0;
  DIR *d = opendir(r->dir);
  if (!d) return unmix_error_set(UNMIX_ERR_IO, "cannot list %s: %s", r->dir, strerror(errno));
  size_t off = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (is_lock_or_previous(e->d_name)) continue;
    if (off < len) off += (size_t)snprintf(buf + off, len - off, "%s%s", *count ? ", " : "", e->d_name);
    (*count)++;
  }
  closedir(d);
  return UNMIX_OK;
}

/* Temp files of atomic writes (NAME.tmp.PID) left by a killed run: we hold the lock, so no
 * live writer owns them. */
static void rundir_clean_tmp(struct run *r) {
  DIR *d = opendir(r->dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    const char *t = strstr(e->d_name, ".tmp.");
    if (!t || !t[5] || strspn(t + 5, "0123456789") != strlen(t + 5)) continue;
    char p[UNMIX_PATH_MAX + 300];
    snprintf(p, sizeof p, "%s/%s", r->dir, e->d_name);
    if (unlink(p) == 0) note(r, "removed %s, left by an interrupted write", p);
    else note(r, "could not remove the stale %s: %s", p, strerror(errno));
  }
  closedir(d);
}

/* --restart: moves every entry (but the lock and earlier previous-* folders) into
 * DIR/previous-<UTC time>/, so nothing of the old run is deleted. */
static unmix_status rundir_move_aside(struct run *r) {
  char stamp[32], dest[UNMIX_PATH_MAX + 64];
  time_t t = time(NULL);
  struct tm tmv;
  gmtime_r(&t, &tmv);
  strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tmv);
  snprintf(dest, sizeof dest, "%s/%s%s", r->dir, PREV_PREFIX, stamp);
  for (int i = 1; i < 100 && mkdir(dest, 0755) != 0; i++) {
    if (errno != EEXIST) return unmix_error_set(UNMIX_ERR_IO, "cannot create %s: %s", dest, strerror(errno));
    snprintf(dest, sizeof dest, "%s/%s%s-%d", r->dir, PREV_PREFIX, stamp, i);
  }
  DIR *d = opendir(r->dir);
  if (!d) return unmix_error_set(UNMIX_ERR_IO, "cannot list %s: %s", r->dir, strerror(errno));
  struct dirent *e;
  unmix_status st = UNMIX_OK;
  int moved = 0;
  while (st == UNMIX_OK && (e = readdir(d)) != NULL) {
    if (is_lock_or_previous(e->d_name)) continue;
    char from[UNMIX_PATH_MAX + 300], to[UNMIX_PATH_MAX + 400];
    snprintf(from, sizeof from, "%s/%s", r->dir, e->d_name);
    snprintf(to, sizeof to, "%s/%s", dest, e->d_name);
    if (rename(from, to) != 0) st = unmix_error_set(UNMIX_ERR_IO, "--restart: cannot move %s to %s: %s", from, to, strerror(errno));
    else moved++;
  }
  closedir(d);
  if (st == UNMIX_OK) note(r, "--restart: moved the %d files of the previous run into %s", moved, dest);
  return st;
}

/* Creates/locks DIR and decides how this invocation may use it:
 *   empty or new           -> a new run;
 *   --restart              -> old files moved aside, then a new run;
 *   --resume + checkpoint  -> resume (the checkpoint is read later);
 *   --resume, no checkpoint, no epoch recorded in metrics.csv
 *                          -> a new run (only steps never checkpointed are replaced);
 *   anything else          -> an error that changes nothing. */
static unmix_status rundir_open(struct run *r, bool *resume) {
  const struct unmix_train_options *o = r->o;
  *resume = false;
  UNMIX_TRY(unmix_fs_mkdirs(r->dir, 0755));
  if (r->rank != 0) { /* rank 0 owns the directory; the others follow its checkpoint */
    bool have = false;
    UNMIX_TRY(path_exists(r->path_ckpt, &have));
    *resume = o->resume && have;
    return UNMIX_OK;
  }
  UNMIX_TRY(rundir_lock(r));
  rundir_clean_tmp(r);
  if (o->restart) UNMIX_TRY(rundir_move_aside(r));
  int count = 0;
  char list[400];
  UNMIX_TRY(rundir_contents(r, &count, list, sizeof list));
  if (count == 0) return UNMIX_OK;
  bool have = false;
  UNMIX_TRY(path_exists(r->path_ckpt, &have));
  if (!o->resume)
    return unmix_error_set(UNMIX_ERR_ARG,
                           "%s already holds %s (%s); pass --resume to continue that run, --restart to move its "
                           "files aside and start over, or --out DIR for a new one",
                           r->dir, have ? "a run" : "files", list);
  if (have) {
    *resume = true;
    return UNMIX_OK;
  }
  /* no checkpoint: only our own run that never finished an epoch may start over */
  static const char *const run_files[] = {"manifest.yaml", "train.log", "status.yaml", "metrics.csv", "steps.csv"};
  DIR *dd = opendir(r->dir);
  if (!dd) return unmix_error_set(UNMIX_ERR_IO, "cannot list %s: %s", r->dir, strerror(errno));
  struct dirent *e;
  char foreign[256] = "";
  while ((e = readdir(dd)) != NULL && !foreign[0]) {
    bool ours = is_lock_or_previous(e->d_name);
    for (size_t i = 0; i < sizeof run_files / sizeof run_files[0]; i++) ours |= !strcmp(e->d_name, run_files[i]);
    if (!ours) snprintf(foreign, sizeof foreign, "%s", e->d_name);
  }
  closedir(dd);
  if (foreign[0])
    return unmix_error_set(UNMIX_ERR_ARG,
                           "%s has no %s and holds files that are not a run's (%s): nothing was changed; use "
                           "another --out directory (or --restart to move them aside)",
                           r->dir, CKPT_NAME, list);
  char csvp[UNMIX_PATH_MAX + 32];
  snprintf(csvp, sizeof csvp, "%s/metrics.csv", r->dir);
  bool csv = false;
  UNMIX_TRY(path_exists(csvp, &csv));
  size_t rows = 0;
  if (csv) {
    struct unmix_csv_table *t = NULL;
    unmix_status st = unmix_csv_read(csvp, &t);
    if (st != UNMIX_OK)
      return unmix_error_wrap(st, "%s has no %s and its metrics cannot be read; nothing was changed (--restart "
                                  "moves the old files aside and starts over)", r->dir, CKPT_NAME);
    rows = t->nrows;
    unmix_csv_table_free(t);
  }
  /* the epoch row is written just before its checkpoint: a run killed between the two (found
   * by tools/soak-resume.sh) holds up to checkpoint_every rows and no checkpoint, and starts
   * over; more rows mean a checkpoint existed and is gone */
  if (rows > (size_t)r->cfg.train.checkpoint_every)
    return unmix_error_set(UNMIX_ERR_IO,
                           "%s/metrics.csv records %zu epoch(s) but %s is missing: nothing was changed. Restore the "
                           "checkpoint to resume, or pass --restart to move the old files aside and start over",
                           r->dir, rows, r->path_ckpt);
  if (rows > 0)
    note(r, "no checkpoint in %s: its %zu epoch row(s) were never checkpointed (killed before the save); starting "
            "the run from its beginning", r->dir, rows);
  else
    note(r, "no checkpoint in %s and no finished epoch recorded: starting the run from its beginning", r->dir);
  return UNMIX_OK;
}

static const char *cpu_model(char *buf, size_t len) {
  snprintf(buf, len, "unknown CPU");
  FILE *f = fopen("/proc/cpuinfo", "r");
  if (!f) return buf;
  char line[512];
  while (fgets(line, sizeof line, f)) {
    if (strncmp(line, "model name", 10) == 0) {
      char *c = strchr(line, ':');
      if (c) {
        c++;
        while (*c == ' ') c++;
        c[strcspn(c, "\n")] = 0;
        snprintf(buf, len, "%s", c);
      }
      break;
    }
  }
  fclose(f);
  return buf;
}

/* DIR/status.yaml: provenance and progress, read by `unmix collect`. epochs_done is what the
 * checkpoint on disk holds (never an epoch trained but not yet saved). */
static void write_status(struct run *r, const char *status) {
  const int epochs_done = r->ckpt_epochs;
  if (r->rank != 0 || !r->dir_ready) return;
  char buf[4096], now[32], dev[256];
  iso_now(now, sizeof now);
  if (r->be && r->be->device == UNMIX_DEVICE_CPU) cpu_model(dev, sizeof dev);
  else snprintf(dev, sizeof dev, "%s", r->be ? r->be->name : "?");
  int n = snprintf(buf, sizeof buf,
                   "status: %s\nname: %s\nepochs_done: %d\nepochs_planned: %d\nsteps_per_epoch: %lld\n"
                   "global_step: %lld\ngit_commit: %s\nversion: %s\nbackend: %s\ndevice: \"%s\"\nprecision: %s\n"
                   "threads: %d\nblas: \"%s\"\nmanifest_md5: %s\nstarted: %s\nupdated: %s\nranks: %d\n"
                   "communicator: %s\n",
                   status, r->cfg.name, epochs_done, r->cfg.train.epochs, (long long)r->steps_per_epoch,
                   (long long)r->global_step, UNMIX_GIT_COMMIT, UNMIX_VERSION, r->be ? r->be->name : r->cfg.backend,
                   dev, unmix_precision_name(r->cfg.precision), unmix_blas_threads(), unmix_blas_describe(),
                   r->manifest_md5, r->started, now, r->world, unmix_comm_name(r->comm));
  char path[UNMIX_PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/status.yaml", r->dir);
  struct unmix_chunk ch = {buf, (size_t)n};
  if (unmix_atomic_write(path, &ch, 1) != UNMIX_OK) unmix_log_warn("%s", unmix_error_message());
}

/* ---- checkpoints ------------------------------------------------------------------------ */
/* State that differs between ranks (SwAV's per-rank queue) is gathered: the checkpoint holds
 * (world, shape...) and each rank resumes its own row. Every rank calls this (the gather is a
 * collective); rank 0 alone writes, and all ranks learn whether the write worked. */
static unmix_status save_checkpoint_rank0(struct run *r, int epoch, int64_t step_in_epoch, float **gathered);

static unmix_status save_checkpoint(struct run *r, int epoch, int64_t step_in_epoch) {
  float *gathered[16] = {0};
  unmix_status st = UNMIX_OK;
  if (r->world > 1) {
    struct unmix_state_entry ents[16];
    int ne = unmix_method_state(r->method, ents, 16);
    for (int i = 0; i < ne && i < 16 && st == UNMIX_OK; i++) {
      if (!ents[i].per_rank) continue;
      float *own = unmix_xmalloc(sizeof(float) * (size_t)(ents[i].numel ? ents[i].numel : 1));
      r->be->memcpy_d2h(own, ents[i].data, sizeof(float) * (size_t)ents[i].numel);
      gathered[i] = unmix_xmalloc(sizeof(float) * (size_t)(ents[i].numel ? ents[i].numel : 1) * r->world);
      st = unmix_comm_allgather(r->comm, own, gathered[i], ents[i].numel, UNMIX_COMM_F32, UNMIX_COMM_HOST);
      free(own);
    }
  }
  if (st == UNMIX_OK && r->rank == 0) st = save_checkpoint_rank0(r, epoch, step_in_epoch, gathered);
  if (st == UNMIX_OK) r->ckpt_epochs = epoch;
  for (int i = 0; i < 16; i++) free(gathered[i]);
  if (r->world > 1 && !unmix_comm_broken(r->comm)) {
    int32_t failed = st != UNMIX_OK;
    unmix_status bs = unmix_comm_bcast_i32(r->comm, &failed, 1, 0, UNMIX_COMM_HOST);
    if (bs != UNMIX_OK) return bs;
    if (failed && r->rank != 0) return unmix_error_set(UNMIX_ERR_IO, "rank 0 could not write the checkpoint %s", r->path_ckpt);
  }
  return st;
}

static unmix_status save_checkpoint_rank0(struct run *r, int epoch, int64_t step_in_epoch, float **gathered) {
  struct unmix_ckpt *ck = unmix_ckpt_new();
  struct unmix_model *m = unmix_method_encoder(r->method);
  unmix_status st = unmix_model_to_ckpt(m, ck, "", false);
  struct unmix_state_entry ents[16];
  int ne = unmix_method_state(r->method, ents, 16);
  float *host[16] = {0};
  for (int i = 0; i < ne && i < 16 && st == UNMIX_OK; i++) {
    char name[160];
    snprintf(name, sizeof name, "unmix.state.%s", ents[i].name);
    int64_t shape[5];
    int nd = 0;
    if (gathered[i]) shape[nd++] = r->world; /* per-rank state: one row per rank */
    for (int d = 0; d < ents[i].ndim; d++) shape[nd++] = ents[i].shape[d];
    if (gathered[i]) {
      st = unmix_ckpt_add(ck, name, UNMIX_CKPT_F32, nd, shape, gathered[i]);
      continue;
    }
    host[i] = unmix_xmalloc(sizeof(float) * (size_t)(ents[i].numel ? ents[i].numel : 1));
    r->be->memcpy_d2h(host[i], ents[i].data, sizeof(float) * (size_t)ents[i].numel);
    st = unmix_ckpt_add(ck, name, UNMIX_CKPT_F32, nd, shape, host[i]);
  }
  const char *snames[16];
  int64_t svals[16];
  int ns = unmix_method_scalars(r->method, snames, svals, 16);
  for (int i = 0; i < ns && st == UNMIX_OK; i++) {
    char name[160];
    snprintf(name, sizeof name, "unmix.scalar.%s", snames[i]);
    st = unmix_ckpt_add_copy(ck, name, UNMIX_CKPT_I64, 0, NULL, &svals[i]);
  }
  int64_t pos[3] = {epoch, step_in_epoch, r->global_step};
  int64_t sh1 = 3, shacc = N_ACC;
  if (st == UNMIX_OK) st = unmix_ckpt_add_copy(ck, "unmix.position", UNMIX_CKPT_I64, 1, &sh1, pos);
  if (st == UNMIX_OK) st = unmix_ckpt_add_copy(ck, "unmix.epoch_acc", UNMIX_CKPT_F64, 1, &shacc, &r->acc);
  char buf[64], now[32];
  iso_now(now, sizeof now);
  if (st == UNMIX_OK) st = unmix_ckpt_set_meta(ck, "unmix.manifest", r->cfg.resolved_yaml);
  snprintf(buf, sizeof buf, "%d", epoch);
  if (st == UNMIX_OK) st = unmix_ckpt_set_meta(ck, "unmix.epochs_done", buf);
  if (st == UNMIX_OK) st = unmix_ckpt_set_meta(ck, "unmix.git_commit", UNMIX_GIT_COMMIT);
  if (st == UNMIX_OK) st = unmix_ckpt_set_meta(ck, "unmix.backend", r->be->name);
  if (st == UNMIX_OK) st = unmix_ckpt_set_meta(ck, "unmix.arch", m->arch_name);
  if (st == UNMIX_OK) st = unmix_ckpt_set_meta(ck, "unmix.saved", now);
  if (st == UNMIX_OK) st = unmix_ckpt_save(ck, r->path_ckpt);
  unmix_ckpt_free(ck);
  for (int i = 0; i < 16; i++) free(host[i]);
  return st;
}

/* Keys that may change on resume: they do not alter the trained numbers of the epochs
 * already done (train.epochs extends or shortens what remains; the rest is bookkeeping or
 * thread counts, which results never depend on). */
static const char *const g_resume_free_keys[] = {"train.epochs", "train.log_every", "train.checkpoint_every",
                                                 "data.workers", "data.prefetch"};

struct manifest_diff {
  char bad[1024], ok[512];
  size_t nb, no;
  int n_bad;
};

static void on_manifest_diff(void *ctx, const char *key, const char *was, const char *now) {
  struct manifest_diff *d = ctx;
  bool free_key = false;
  for (size_t i = 0; i < sizeof g_resume_free_keys / sizeof g_resume_free_keys[0]; i++)
    free_key |= !strcmp(key, g_resume_free_keys[i]);
  char *buf = free_key ? d->ok : d->bad;
  size_t len = free_key ? sizeof d->ok : sizeof d->bad, *off = free_key ? &d->no : &d->nb;
  if (!free_key) d->n_bad++;
  if (*off < len)
    *off += (size_t)snprintf(buf + *off, len - *off, "%s%s %.60s -> %.60s", *off ? ", " : "", key, was, now);
}

/* The encoder, method state and scalars of a training checkpoint (see trainer.h). */
unmix_status unmix_train_restore_state(struct unmix_method *method, const struct unmix_backend *be,
                                       const struct unmix_ckpt *ck, int rank, int world) {
  const char *file = ck->path ? ck->path : "checkpoint";
  UNMIX_TRY(unmix_ckpt_check_finite(ck, file)); /* also for a checkpoint built in memory */
  struct unmix_model *m = unmix_method_encoder(method);
  UNMIX_TRY(unmix_model_from_ckpt(m, ck, "", false));
  struct unmix_state_entry ents[16];
  int ne = unmix_method_state(method, ents, 16);
  for (int i = 0; i < ne && i < 16; i++) {
    char name[160];
    snprintf(name, sizeof name, "unmix.state.%s", ents[i].name);
    int64_t shape[5];
    int nd = 0;
    const bool per_rank = ents[i].per_rank && world > 1;
    if (per_rank) shape[nd++] = world; /* saved by a run of as many ranks: this rank's row */
    for (int d = 0; d < ents[i].ndim; d++) shape[nd++] = ents[i].shape[d];
    const size_t rows = per_rank ? (size_t)world : 1;
    float *h = unmix_xmalloc(sizeof(float) * (size_t)(ents[i].numel ? ents[i].numel : 1) * rows);
    unmix_status st = unmix_ckpt_read(ck, name, UNMIX_CKPT_F32, nd, shape, h);
    if (st != UNMIX_OK && per_rank)
      st = unmix_error_wrap(st, "%s holds per-rank state %s; resume it with the number of ranks that wrote it",
                            file, name);
    if (st == UNMIX_OK)
      be->memcpy_h2d(ents[i].data, h + (per_rank ? (size_t)rank * (size_t)ents[i].numel : 0),
                        sizeof(float) * (size_t)ents[i].numel);
    free(h);
    UNMIX_TRY(st);
  }
  const char *snames[16];
  int64_t svals[16];
  int ns = unmix_method_scalars(method, snames, svals, 16);
  for (int i = 0; i < ns; i++) {
    char name[160];
    snprintf(name, sizeof name, "unmix.scalar.%s", snames[i]);
    int64_t v;
    UNMIX_TRY(unmix_ckpt_read(ck, name, UNMIX_CKPT_I64, 0, NULL, &v));
    UNMIX_TRY(unmix_method_set_scalar(method, snames[i], v));
  }
  return UNMIX_OK;
}

static unmix_status load_checkpoint(struct run *r, const struct unmix_ckpt *ck) {
  const char *man = unmix_ckpt_meta(ck, "unmix.manifest");
  if (!man) return unmix_error_set(UNMIX_ERR_FORMAT, "%s: not an unmix training checkpoint (no unmix.manifest)", r->path_ckpt);
  if (strcmp(man, r->cfg.resolved_yaml) != 0) {
    struct manifest_diff d = {0};
    int n = unmix_manifest_diff(man, r->cfg.resolved_yaml, on_manifest_diff, &d);
    if (n < 0 || d.n_bad > 0)
      return unmix_error_set(UNMIX_ERR_ARG,
                             "%s was written for a different resolved manifest: %s (checkpoint -> now); resume "
                             "with `unmix train --resume %s` (its own manifest.yaml), or train into a new --out "
                             "directory",
                             r->path_ckpt, n < 0 ? "(unreadable)" : d.bad, r->dir);
    unmix_log_info("resuming with changed settings: %s", d.ok);
  }
  UNMIX_TRY(unmix_train_restore_state(r->method, r->be, ck, r->rank, r->world));
  int64_t pos[3], sh1 = 3, shacc = N_ACC;
  UNMIX_TRY(unmix_ckpt_read(ck, "unmix.position", UNMIX_CKPT_I64, 1, &sh1, pos));
  UNMIX_TRY(unmix_ckpt_read(ck, "unmix.epoch_acc", UNMIX_CKPT_F64, 1, &shacc, &r->acc));
  if (pos[0] > r->cfg.train.epochs && pos[0] >= 0)
    return unmix_error_set(UNMIX_ERR_ARG, "%s holds %lld epoch(s) but train.epochs is %d: a run cannot be shortened",
                           r->path_ckpt, (long long)pos[0], r->cfg.train.epochs);
  /* a mid-epoch checkpoint is written before the epoch's last step, and every epoch has
   * steps_per_epoch steps: anything else would replay the wrong batches */
  if (pos[0] < 0 || pos[0] > r->cfg.train.epochs || pos[1] < 0 || pos[1] >= r->steps_per_epoch ||
      (pos[0] == r->cfg.train.epochs && pos[1] != 0) || pos[2] != pos[0] * r->steps_per_epoch + pos[1])
    return unmix_error_set(UNMIX_ERR_FORMAT,
                           "%s: position (epoch %lld, step %lld, global step %lld) does not fit this run (%d epochs "
                           "of %lld steps)",
                           r->path_ckpt, (long long)pos[0], (long long)pos[1], (long long)pos[2], r->cfg.train.epochs,
                           (long long)r->steps_per_epoch);
  if (!(r->acc.n >= 0 && r->acc.steps == (double)pos[1]))
    return unmix_error_set(UNMIX_ERR_FORMAT, "%s: unmix.epoch_acc counts %.0f steps of %.0f samples at step %lld",
                           r->path_ckpt, r->acc.steps, r->acc.n, (long long)pos[1]);
  r->start_epoch = (int)pos[0];
  r->start_step = pos[1];
  r->global_step = pos[2];
  return UNMIX_OK;
}

/* After a numerical failure: says what the checkpoint on disk holds, having read it back
 * (CRC and finiteness), so the log never calls a damaged or diverged file good. */
static void report_last_checkpoint(struct run *r) {
  if (r->rank != 0) return;
  char msg[2048];
  snprintf(msg, sizeof msg, "%s", unmix_error_message());
  unmix_status code = unmix_error_code();
  bool have = false;
  if (path_exists(r->path_ckpt, &have) != UNMIX_OK || !have) {
    unmix_log_error("no checkpoint was saved in %s: %s", r->dir,
                    have ? unmix_error_message() : "the run diverged before its first checkpoint");
  } else {
    struct unmix_ckpt *ck = NULL;
    if (unmix_ckpt_load(r->path_ckpt, &ck) == UNMIX_OK) {
      const char *ep = unmix_ckpt_meta(ck, "unmix.epochs_done");
      unmix_log_error("the last good checkpoint (%s, %s epoch(s)) was read back intact and finite; --resume "
                      "continues from it (with a lower optim.lr if the run diverges again)",
                      r->path_ckpt, ep ? ep : "?");
      unmix_ckpt_free(ck);
    } else {
      unmix_log_error("the checkpoint on disk is NOT usable: %s", unmix_error_message());
    }
  }
  unmix_error_set(code, "%s", msg);
}

/* ---- progress --------------------------------------------------------------------------- */
static void fmt_hms(double s, char *buf, size_t len) {
  if (!(s >= 0) || s > 1e8) s = 0;
  long t = (long)(s + 0.5);
  snprintf(buf, len, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
}

static void show_progress(struct run *r, int epoch, int64_t step, double loss, double ips, double elapsed,
                          double t_run, int64_t steps_done_run, bool force) {
  static double last = 0;
  double now = unmix_now();
  const int E = r->cfg.train.epochs;
  int64_t total_left = (int64_t)(E - epoch) * r->steps_per_epoch - step;
  double per_step = steps_done_run > 0 ? t_run / (double)steps_done_run : 0;
  char eta[32], el[32];
  fmt_hms(per_step * (double)total_left, eta, sizeof eta);
  fmt_hms(elapsed, el, sizeof el);
  if (r->progress) {
    if (!force && now - last < 0.2) return;
    last = now;
    int width = 24, filled = (int)(width * (double)step / (double)r->steps_per_epoch);
    char bar[32];
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '-';
    bar[width] = 0;
    fprintf(stderr, "\r  epoch %d/%d [%s] %lld/%lld  loss %.4f  %.0f img/s  elapsed %s  ETA %s   ", epoch + 1, E,
            bar, (long long)step, (long long)r->steps_per_epoch, loss, ips, el, eta);
    fflush(stderr);
  } else if (!r->o->quiet && (force || (r->cfg.train.log_every > 0 && step % r->cfg.train.log_every == 0))) {
    unmix_log_info("epoch %d/%d step %lld/%lld loss %.4f %.0f img/s elapsed %s ETA %s", epoch + 1, E,
                   (long long)step, (long long)r->steps_per_epoch, loss, ips, el, eta);
  }
}

/* ---- set-up ------------------------------------------------------------------------------ */
/* Everything that can reject the manifest, the data or the model runs before the run
 * directory is touched, so a bad invocation leaves no directory behind. */
static double wall_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One event per row of a CSV already on disk: the numeric columns in `only` (NULL: every one
 * but `step_col`), tagged PREFIX/column, at step = that row's step_col; as the live rows are. */
static unmix_status tensorboard_replay(struct unmix_tfevents *tb, const char *csv, const char *step_col,
                                       const char *prefix, const char *const *only, double wall) {
  if (!file_exists(csv)) return UNMIX_OK;
  struct unmix_csv_table *t = NULL;
  UNMIX_TRY(unmix_csv_read(csv, &t));
  unmix_status st = UNMIX_OK;
  int sc = unmix_csv_column(t, step_col);
  enum { MAXC = 64 };
  char tagbuf[MAXC][64];
  const char *tags[MAXC];
  float v[MAXC];
  for (size_t i = 0; sc >= 0 && i < t->nrows && st == UNMIX_OK; i++) {
    char *end = NULL;
    long long step = strtoll(unmix_csv_cell(t, i, sc), &end, 10);
    if (!end || *end) continue; /* not a row of ours: nothing to show for it */
    int n = 0;
    for (int c = 0; c < t->ncol && n < MAXC; c++) {
      const char *cell = unmix_csv_cell(t, i, c);
      double x = strtod(cell, &end);
      if (c == sc || !cell[0] || !end || *end || !isfinite(x)) continue;
      bool wanted = !only;
      for (int k = 0; only && only[k] && !wanted; k++) wanted = !strcmp(only[k], t->header[c]);
      if (!wanted) continue;
      snprintf(tagbuf[n], sizeof tagbuf[n], "%s/%s", prefix, t->header[c]);
      tags[n] = tagbuf[n];
      v[n++] = (float)x;
    }
    st = unmix_tfevents_scalars(tb, wall, step, tags, v, n);
  }
  unmix_csv_table_free(t);
  return st;
}

/* --tensorboard: DIR/events.out.tfevents.unmix holds what metrics.csv and steps.csv hold. It is
 * rebuilt from them here (so a resume, which drops the rows after its checkpoint, leaves no
 * stale events), then each new row is appended as it is written. */
static unmix_status tensorboard_open(struct run *r) {
  char path[UNMIX_PATH_MAX + 40], csv[UNMIX_PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/events.out.tfevents.unmix", r->dir);
  double wall = wall_now();
  UNMIX_TRY(unmix_tfevents_create(path, wall, &r->tb));
  snprintf(csv, sizeof csv, "%s/metrics.csv", r->dir);
  UNMIX_TRY(tensorboard_replay(r->tb, csv, "epoch", "epoch", NULL, wall));
  snprintf(csv, sizeof csv, "%s/steps.csv", r->dir);
  static const char *const step_cols[] = {"lr", "loss", "lam", NULL}; /* as train_loop writes them */
  return tensorboard_replay(r->tb, csv, "global_step", "step", step_cols, wall);
}

static unmix_status setup(struct run *r) {
  const struct unmix_train_options *o = r->o;
  UNMIX_TRY(unmix_manifest_load(o->manifest, o->overrides, o->n_overrides, &r->cfg));
  struct unmix_config *cfg = &r->cfg;
  if (o->out_dir) snprintf(r->dir, sizeof r->dir, "%s", o->out_dir);
  else snprintf(r->dir, sizeof r->dir, "results/runs/%s", cfg->name);
  snprintf(r->path_ckpt, sizeof r->path_ckpt, "%s/%s", r->dir, CKPT_NAME);
  if (o->resume && o->restart)
    return unmix_error_set(UNMIX_ERR_ARG, "--resume and --restart exclude each other");
  iso_now(r->started, sizeof r->started);
  struct unmix_md5 md5;
  unmix_md5_init(&md5);
  unmix_md5_update(&md5, cfg->resolved_yaml, strlen(cfg->resolved_yaml));
  unmix_md5_final(&md5, r->manifest_md5);

  UNMIX_TRY(unmix_backend_get(cfg->backend, &r->be));
  r->be->set_precision(cfg->precision);
  r->be->set_deterministic(cfg->deterministic);
  UNMIX_TRY(unmix_comm_attach_backend(r->comm, r->be));

  /* data */
  struct unmix_dataset_options dso;
  unmix_dataset_options_from_config(&cfg->data, UNMIX_SPLIT_TRAIN, &dso);
  UNMIX_TRY(unmix_dataset_open(&dso, &r->train_ds));
  UNMIX_TRY(unmix_recipe_from_config(&cfg->data, &r->recipe));
  r->image_size = r->recipe.views[0].size > 0 ? r->recipe.views[0].size : r->train_ds->h;
  const struct unmix_method_ops *mops = unmix_method_ops_find(unmix_method_name(cfg->method));
  for (int v = 1; v < r->recipe.n_views; v++) {
    int s = r->recipe.views[v].size > 0 ? r->recipe.views[v].size : r->train_ds->h;
    if (s != r->image_size && !(mops && mops->multi_resolution))
      return unmix_error_set(UNMIX_ERR_CONFIG,
                             "%s: views of different sizes (%d and %d): method %s takes views of one size "
                             "(data.crops)", o->manifest, r->image_size, s, unmix_method_name(cfg->method));
  }
  struct unmix_loader_options lo;
  unmix_loader_options_from_config(&lo, &cfg->data, UNMIX_LOADER_TRAIN, cfg->optim.batch_size, cfg->seed);
  lo.backend = r->be;
  lo.rank = r->rank;
  lo.world = r->world;
  UNMIX_TRY(unmix_loader_create(r->train_ds, &r->recipe, &lo, &r->loader));
  r->steps_per_epoch = unmix_loader_steps_per_epoch(r->loader);
  if (cfg->train.steps_per_epoch > 0 && cfg->train.steps_per_epoch < r->steps_per_epoch)
    r->steps_per_epoch = cfg->train.steps_per_epoch;
  if (cfg->knn.every > 0) {
    unmix_dataset_options_from_config(&cfg->data, UNMIX_SPLIT_TEST, &dso);
    if (cfg->knn.test_subset > 0) dso.subset = cfg->knn.test_subset;
    UNMIX_TRY(unmix_dataset_open(&dso, &r->test_ds));
    unmix_dataset_options_from_config(&cfg->data, UNMIX_SPLIT_TRAIN, &dso);
    if (cfg->knn.bank_subset > 0) dso.subset = cfg->knn.bank_subset;
    UNMIX_TRY(unmix_dataset_open(&dso, &r->bank_ds));
  }
  UNMIX_TRY(unmix_method_create(cfg, r->be, r->image_size, r->comm, &r->method));
  if (unmix_method_views_needed(r->method) != r->recipe.n_views)
    return unmix_error_set(UNMIX_ERR_CONFIG, "%s: method %s needs %d views but recipe %s gives %d", o->manifest,
                           unmix_method_name(cfg->method), unmix_method_views_needed(r->method), r->recipe.name,
                           r->recipe.n_views);

  /* the run directory: created, locked, and its contents checked before anything is written */
  bool resume = false;
  UNMIX_TRY(rundir_open(r, &resume));
  if (r->rank == 0) {
    char logp[UNMIX_PATH_MAX + 32];
    snprintf(logp, sizeof logp, "%s/train.log", r->dir);
    r->log = fopen(logp, "a");
    if (!r->log) return unmix_error_set(UNMIX_ERR_IO, "cannot open %s: %s", logp, strerror(errno));
    unmix_log_set_file(r->log);
  }
  unmix_log_info("unmix %s (%s) | backend %s | %s", UNMIX_VERSION, UNMIX_GIT_COMMIT, r->be->name,
                 unmix_blas_describe());
  /* which convolution kernels the CPU runs (UNMIX_CPU_CONV): whether the run is reproducible
   * at other thread counts depends on it */
  if (r->be->device == UNMIX_DEVICE_CPU && r->be->describe_kernels) {
    const char *k = r->be->describe_kernels(), *nl = strchr(k, '\n');
    unmix_log_info("%.*s; openmp: OMP_WAIT_POLICY %s", nl ? (int)(nl - k) : (int)strlen(k), k,
                   unmix_omp_wait_policy_describe());
  }
  /* after train.log is open, so the file says why "auto" chose this backend */
  if (!strcmp(cfg->backend, "auto")) unmix_log_info("%s", unmix_backend_auto_reason());
  if (r->world > 1)
    unmix_log_info("%d ranks (%s, collective timeout %.0f s): global batch %d = %d per rank%s", r->world,
                   unmix_comm_name(r->comm), unmix_comm_timeout(r->comm), cfg->optim.batch_size,
                   cfg->optim.batch_size / r->world, cfg->model.sync_bn ? ", SyncBN" : ", BatchNorm per rank");
  unmix_log_info("run %s -> %s", cfg->name, r->dir);
  for (int i = 0; i < r->n_notes; i++) unmix_log_warn("%s", r->notes[i]);
  struct unmix_model *m = unmix_method_encoder(r->method);
  char views[160] = ""; /* "2 views of 32x32", or per run of sizes: "2 x 224px + 6 x 96px" */
  for (int v = 0, k = 0; v < r->recipe.n_views; v = k) {
    int s = r->recipe.views[v].size > 0 ? r->recipe.views[v].size : r->train_ds->h;
    for (k = v; k < r->recipe.n_views && (r->recipe.views[k].size > 0 ? r->recipe.views[k].size : r->train_ds->h) == s;)
      k++;
    size_t l = strlen(views);
    if (v == 0 && k == r->recipe.n_views) snprintf(views, sizeof views, "%d views of %dx%d", k, s, s);
    else snprintf(views + l, sizeof views - l, "%s%d x %dpx", v ? " + " : "", k - v, s);
  }
  unmix_log_info("data %s: %lld train samples, %lld steps/epoch of %d (%s, %s); model %s width %d: %lld parameters",
                 r->train_ds->name, (long long)r->train_ds->n, (long long)r->steps_per_epoch, cfg->optim.batch_size,
                 r->recipe.name, views, m->arch_name, cfg->model.width, (long long)unmix_model_param_count(m));

  /* resume */
  if (resume) {
    struct unmix_ckpt *ck = NULL;
    UNMIX_TRY(unmix_ckpt_load(r->path_ckpt, &ck));
    unmix_status st = load_checkpoint(r, ck);
    unmix_ckpt_free(ck);
    UNMIX_TRY(st);
    r->ckpt_epochs = r->start_epoch;
    unmix_log_info("resuming %s at epoch %d step %lld (global step %lld)", r->path_ckpt, r->start_epoch + 1,
                   (long long)r->start_step, (long long)r->global_step);
  }
  /* from here on status.yaml is ours to write; a refused resume leaves the old one as it was */
  r->dir_ready = true;
  /* the resolved manifest and the metrics file (rows after the checkpoint are dropped) */
  if (r->rank != 0) return UNMIX_OK;
  char mp[UNMIX_PATH_MAX + 32];
  snprintf(mp, sizeof mp, "%s/manifest.yaml", r->dir);
  struct unmix_chunk ch = {r->cfg.resolved_yaml, strlen(r->cfg.resolved_yaml)};
  UNMIX_TRY(unmix_atomic_write(mp, &ch, 1));
  char csvp[UNMIX_PATH_MAX + 32];
  snprintf(csvp, sizeof csvp, "%s/metrics.csv", r->dir);
  const char *cols[UNMIX_METRICS_MAX_COLUMNS];
  const int ncols = unmix_metrics_columns(cols, UNMIX_METRICS_MAX_COLUMNS);
  bool append = false;
  if (file_exists(csvp)) {
    if (r->global_step > 0 || r->start_epoch > 0) {
      UNMIX_TRY(unmix_csv_truncate_after(csvp, "epoch", (double)r->start_epoch));
      append = true;
    } else if (unlink(csvp) != 0) {
      return unmix_error_set(UNMIX_ERR_IO, "cannot remove stale %s: %s", csvp, strerror(errno));
    }
  }
  UNMIX_TRY(unmix_csv_open(csvp, cols, ncols, append, &r->csv));
  /* steps.csv: the per-step record (Un-Mix mode and lambda of every step) */
  snprintf(csvp, sizeof csvp, "%s/steps.csv", r->dir);
  static const char *const scols[] = {"global_step", "epoch", "step", "lr", "loss", "mix", "lam"};
  append = false;
  if (file_exists(csvp)) {
    if (r->global_step > 0) {
      UNMIX_TRY(unmix_csv_truncate_after(csvp, "global_step", (double)r->global_step - 1));
      append = true;
    } else if (unlink(csvp) != 0) {
      return unmix_error_set(UNMIX_ERR_IO, "cannot remove stale %s: %s", csvp, strerror(errno));
    }
  }
  UNMIX_TRY(unmix_csv_open(csvp, scols, 7, append, &r->steps_csv));
  if (r->o->tensorboard) UNMIX_TRY(tensorboard_open(r));
  return UNMIX_OK;
}

static void teardown(struct run *r) {
  if (r->csv) unmix_csv_close(r->csv);
  if (r->steps_csv) unmix_csv_close(r->steps_csv);
  if (r->tb && unmix_tfevents_close(r->tb) != UNMIX_OK) unmix_log_warn("%s", unmix_error_message());
  unmix_method_destroy(r->method);
  unmix_loader_free(r->loader);
  unmix_dataset_free(r->train_ds);
  unmix_dataset_free(r->test_ds);
  unmix_dataset_free(r->bank_ds);
  for (int v = 0; v < UNMIX_METHOD_MAX_VIEWS; v++)
    if (r->dev_views[v]) r->be->free(r->dev_views[v]);
  unmix_log_set_file(NULL);
  if (r->log) fclose(r->log);
  rundir_unlock(r);
  unmix_config_free(&r->cfg);
}

static unmix_status batch_views(struct run *r, const struct unmix_batch *b, struct unmix_views *v) {
  memset(v, 0, sizeof *v);
  v->n = b->size;
  v->nviews = b->n_views;
  for (int i = 0; i < b->n_views; i++) {
    const struct unmix_batch_view *bv = &b->views[i];
    if (bv->h != bv->w || bv->c != 3)
      return unmix_error_set(UNMIX_ERR_CONFIG, "view %d is %dx%dx%d; training needs square 3-channel views", i, bv->h,
                             bv->w, bv->c);
    v->size[i] = bv->h;
    if (r->be->device == UNMIX_DEVICE_CPU) {
      v->view[i] = bv->data;
      continue;
    }
    size_t bytes = sizeof(float) * (size_t)b->size * bv->h * bv->w * bv->c;
    if (bytes > r->dev_cap[i]) {
      if (r->dev_views[i]) r->be->free(r->dev_views[i]);
      r->dev_views[i] = r->be->alloc(bytes);
      r->dev_cap[i] = bytes;
      if (!r->dev_views[i]) return unmix_error_set(UNMIX_ERR_NOMEM, "device batch buffer (%zu bytes)", bytes);
    }
    r->be->memcpy_h2d(r->dev_views[i], bv->data, bytes);
    v->view[i] = r->dev_views[i];
  }
  return UNMIX_OK;
}

int unmix_metrics_columns(const char **cols, int cap) {
  static const char *const lead[] = {UNMIX_METRICS_LEAD}, *const tail[] = {UNMIX_METRICS_TAIL};
  const int nl = (int)(sizeof lead / sizeof lead[0]), nt = (int)(sizeof tail / sizeof tail[0]);
  int n = 0;
  for (int i = 0; i < nl; i++, n++)
    if (n < cap) cols[n] = lead[i];
  n += unmix_method_metric_columns_all(n < cap ? cols + n : cols, n < cap ? cap - n : 0);
  for (int i = 0; i < nt; i++, n++)
    if (n < cap) cols[n] = tail[i];
  return n < cap ? n : cap;
}

/* One metrics.csv row, and (--tensorboard) the same numbers as one event at step = epoch. */
struct row_vals {
  const char *tag[UNMIX_METRICS_MAX_COLUMNS];
  char tagbuf[UNMIX_METRICS_MAX_COLUMNS][64];
  float v[UNMIX_METRICS_MAX_COLUMNS];
  int n;
};
static unmix_status set_col(struct unmix_csv_writer *w, struct row_vals *rv, const char *col, const char *fmt,
                            double v) {
  char text[64];
  snprintf(text, sizeof text, fmt, v);
  if (rv->n < UNMIX_METRICS_MAX_COLUMNS) {
    snprintf(rv->tagbuf[rv->n], sizeof rv->tagbuf[rv->n], "epoch/%s", col);
    rv->tag[rv->n] = rv->tagbuf[rv->n];
    rv->v[rv->n++] = (float)v;
  }
  return unmix_csv_set(w, col, text);
}

static unmix_status write_row(struct run *r, int epoch, const struct unmix_knn_eval *knn, double secs, double ips) {
  const struct epoch_acc *a = &r->acc;
  struct unmix_csv_writer *w = r->csv;
  double n = a->n > 0 ? a->n : 1;
  struct row_vals rv;
  rv.n = 0;
  UNMIX_TRY(unmix_csv_setf(w, "epoch", "%d", epoch + 1));
  UNMIX_TRY(set_col(w, &rv, "steps", "%.0f", a->steps));
  UNMIX_TRY(set_col(w, &rv, "lr", "%.9g", a->lr0));
  UNMIX_TRY(set_col(w, &rv, "loss", "%.9g", a->loss / n));
  UNMIX_TRY(set_col(w, &rv, "loss_main", "%.9g", a->t0 / n));
  UNMIX_TRY(set_col(w, &rv, "loss_mix", "%.9g", a->t1 / n));
  UNMIX_TRY(set_col(w, &rv, "loss_mix_flip", "%.9g", a->t2 / n));
  const struct unmix_method_ops *ops = unmix_method_ops_get(r->method);
  for (int i = 0; i < UNMIX_METHOD_MAX_METRICS && ops->metric_columns[i]; i++)
    UNMIX_TRY(set_col(w, &rv, ops->metric_columns[i], "%.4f", a->metric[i] / n));
  if (knn) {
    UNMIX_TRY(set_col(w, &rv, "knn_top1", "%.4f", knn->top1));
    UNMIX_TRY(set_col(w, &rv, "knn_top5", "%.4f", knn->top5));
  }
  UNMIX_TRY(set_col(w, &rv, "mix_global", "%.0f", a->mix_g));
  UNMIX_TRY(set_col(w, &rv, "mix_region", "%.0f", a->mix_r));
  UNMIX_TRY(set_col(w, &rv, "lam_mean", "%.6f", a->steps > 0 ? a->lam / a->steps : 1.0));
  UNMIX_TRY(set_col(w, &rv, "images_per_s", "%.1f", ips));
  UNMIX_TRY(set_col(w, &rv, "seconds", "%.2f", secs));
  UNMIX_TRY(unmix_csv_end_row(w));
  if (r->tb) UNMIX_TRY(unmix_tfevents_scalars(r->tb, wall_now(), epoch + 1, rv.tag, rv.v, rv.n));
  return UNMIX_OK;
}

/* ---- the loop ----------------------------------------------------------------------------- */
/* Sums v over ranks (a no-op with one rank): how the ranks agree on errors, signals and the
 * logged losses, so that they stop together and rank 0 logs global means. */
static unmix_status agree(struct run *r, double *v, int n) {
  if (r->world <= 1) return UNMIX_OK;
  return unmix_comm_allreduce_f64(r->comm, v, n, UNMIX_COMM_HOST);
}

/* The signal every rank acts on: SIGTERM if any rank got one, else SIGINT if any did. */
static int agreed_signal(struct run *r, unmix_status *st) {
  double f[2] = {g_signal == SIGINT, g_signal == SIGTERM};
  *st = agree(r, f, 2);
  return f[1] > 0 ? SIGTERM : f[0] > 0 ? SIGINT : 0;
}

static int train_loop(struct run *r) {
  const struct unmix_config *cfg = &r->cfg;
  const int E = cfg->train.epochs;
  double t_run0 = unmix_now();
  int64_t steps_this_run = 0;
  int epochs_this_run = 0;
  double warn_secs = 0; /* steps 2..4 of this run, for the CPU projection (the first warms up) */
  for (int epoch = r->start_epoch; epoch < E; epoch++) {
    double t_ep = unmix_now(), train_secs = 0;
    unmix_method_begin_epoch(r->method, epoch);
    unmix_status st = unmix_loader_start_epoch(r->loader, epoch);
    int64_t first = epoch == r->start_epoch ? r->start_step : 0;
    if (first == 0) memset(&r->acc, 0, sizeof r->acc);
    const struct unmix_batch *b = NULL;
    for (int64_t s = 0; s < first && st == UNMIX_OK; s++) st = unmix_loader_next(r->loader, &b); /* replay order */
    double images = 0;
    for (int64_t s = first; s < r->steps_per_epoch && st == UNMIX_OK; s++) {
      st = unmix_loader_next(r->loader, &b);
      if (st == UNMIX_OK && !b)
        st = unmix_error_set(UNMIX_ERR_FORMAT, "the loader ended epoch %d after %lld of %lld steps", epoch + 1,
                             (long long)s, (long long)r->steps_per_epoch);
      if (r->world > 1) { /* a rank without its batch stops every rank before the step's collectives */
        double bad = st != UNMIX_OK;
        unmix_status as = agree(r, &bad, 1);
        if (as != UNMIX_OK) st = as;
        else if (bad > 0 && st == UNMIX_OK)
          st = unmix_error_set(UNMIX_ERR_IO, "another rank could not load its batch for step %lld of epoch %d (see "
                                             "its messages)", (long long)s, epoch + 1);
      }
      if (st != UNMIX_OK) break;
      double lr = unmix_lr_at(&cfg->schedule, cfg->optim.lr, E, epoch, (int)s, (int)r->steps_per_epoch);
      if (s == 0) r->acc.lr0 = lr;
      struct unmix_views v;
      st = batch_views(r, b, &v);
      if (st != UNMIX_OK) break;
      double t0 = unmix_now();
      struct unmix_step_stats ss;
      st = unmix_method_step(r->method, &v, r->global_step, epoch, (float)lr, &ss);
      if (st != UNMIX_OK) break;
      r->be->synchronize();
      train_secs += unmix_now() - t0;
      if (steps_this_run >= 1 && steps_this_run <= 3) warn_secs += unmix_now() - t0;
      char warn[512];
      if (steps_this_run == 3 && r->rank == 0 && !strcmp(cfg->backend, "auto") &&
          unmix_projection_cpu_warning(r->be->device == UNMIX_DEVICE_CPU, warn_secs / 3,
                                       (int64_t)(E - epoch) * r->steps_per_epoch - (s + 1), unmix_cpu_warn_threshold(),
                                       warn, sizeof warn))
        unmix_log_warn("%s", warn);
      /* the global batch's means (per-rank means averaged: equal shards) and the agreed signal */
      _Static_assert(UNMIX_METHOD_MAX_METRICS == 2, "ag[] holds two method metrics");
      double ag[8] = {ss.loss, ss.terms[0], ss.terms[1], ss.terms[2], ss.metrics[0], ss.metrics[1],
                      g_signal == SIGINT, g_signal == SIGTERM};
      if ((st = agree(r, ag, 8)) != UNMIX_OK) break;
      for (int i = 0; i < 6; i++) ag[i] /= r->world;
      const int sig = ag[7] > 0 ? SIGTERM : ag[6] > 0 ? SIGINT : 0;
      const double n = (double)b->size * r->world;
      ss.loss = ag[0];
      r->acc.loss += ag[0] * n;
      r->acc.t0 += ag[1] * n;
      r->acc.t1 += ag[2] * n;
      r->acc.t2 += ag[3] * n;
      r->acc.metric[0] += ag[4] * n;
      r->acc.metric[1] += ag[5] * n;
      r->acc.n += n;
      r->acc.steps += 1;
      r->acc.mix_g += ss.mix_mode == 1;
      r->acc.mix_r += ss.mix_mode == 0;
      r->acc.lam += ss.lam;
      if (r->steps_csv) { /* rank 0: the ranks' mean loss; rank 0's own Un-Mix draw */
        st = unmix_csv_setf(r->steps_csv, "global_step", "%lld", (long long)r->global_step);
        if (st == UNMIX_OK) st = unmix_csv_setf(r->steps_csv, "epoch", "%d", epoch + 1);
        if (st == UNMIX_OK) st = unmix_csv_setf(r->steps_csv, "step", "%lld", (long long)s + 1);
        if (st == UNMIX_OK) st = unmix_csv_setf(r->steps_csv, "lr", "%.9g", lr);
        if (st == UNMIX_OK) st = unmix_csv_setf(r->steps_csv, "loss", "%.9g", ag[0]);
        if (st == UNMIX_OK)
          st = unmix_csv_set(r->steps_csv, "mix", ss.mix_mode == 1 ? "global" : ss.mix_mode == 0 ? "region" : "none");
        if (st == UNMIX_OK) st = unmix_csv_setf(r->steps_csv, "lam", "%.9g", ss.lam);
        if (st == UNMIX_OK) st = unmix_csv_end_row(r->steps_csv);
        if (st == UNMIX_OK && r->tb) {
          static const char *const tags[] = {"step/lr", "step/loss", "step/lam"};
          const float tv[] = {(float)lr, (float)ag[0], (float)ss.lam};
          st = unmix_tfevents_scalars(r->tb, wall_now(), r->global_step, tags, tv, 3);
        }
        if (st != UNMIX_OK) break;
      }
      r->global_step++;
      steps_this_run++;
      images += n * v.nviews; /* the global batch's images */
      show_progress(r, epoch, s + 1, ss.loss, images / (unmix_now() - t_ep), unmix_now() - t_run0,
                    unmix_now() - t_run0, steps_this_run, false);
      bool stop_steps = r->o->stop_after_steps > 0 && steps_this_run >= r->o->stop_after_steps;
      if ((sig || stop_steps) && s + 1 < r->steps_per_epoch) {
        if (r->progress) fputc('\n', stderr);
        unmix_status cs = save_checkpoint(r, epoch, s + 1);
        if (cs != UNMIX_OK) {
          unmix_log_error("could not save the checkpoint: %s", unmix_error_message());
        if (unmix_error_code() == UNMIX_ERR_NUMERIC) report_last_checkpoint(r);
          if (unmix_error_code() == UNMIX_ERR_NUMERIC) report_last_checkpoint(r);
          write_status(r, "failed");
          return 1;
        }
        write_status(r, "interrupted");
        unmix_log_info("%s: checkpoint saved at epoch %d step %lld; continue with --resume",
                       sig ? (sig == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)") : "stopped",
                       epoch + 1, (long long)(s + 1));
        return sig == SIGINT ? 130 : sig == SIGTERM ? 143 : 0;
      }
    }
    if (r->progress) fputc('\n', stderr);
    if (st != UNMIX_OK) {
      unmix_log_error("epoch %d: %s: %s", epoch + 1, unmix_status_name(unmix_error_code()), unmix_error_message());
      if (unmix_error_code() == UNMIX_ERR_NUMERIC) report_last_checkpoint(r);
      write_status(r, "failed");
      return 1;
    }
    /* evaluation, metrics, checkpoint */
    struct unmix_knn_eval knn, *kp = NULL;
    bool last = epoch + 1 == E;
    if (cfg->knn.every > 0 && ((epoch + 1) % cfg->knn.every == 0 || last)) {
      st = unmix_knn_monitor(r->be, unmix_method_encoder(r->method), r->bank_ds, r->test_ds, &r->recipe, &cfg->knn,
                             cfg->optim.batch_size, cfg->data.workers, &knn);
      if (st != UNMIX_OK) {
        unmix_log_error("kNN evaluation after epoch %d: %s", epoch + 1, unmix_error_message());
        write_status(r, "failed");
        return 1;
      }
      kp = &knn;
    }
    double secs = unmix_now() - t_ep;
    double ips = train_secs > 0 ? images / train_secs : 0;
    if (r->rank == 0 && (st = write_row(r, epoch, kp, secs, ips)) != UNMIX_OK) {
      unmix_log_error("%s", unmix_error_message());
      return 1;
    }
    if (!r->o->quiet) {
      char knnbuf[96] = "";
      if (kp) snprintf(knnbuf, sizeof knnbuf, "  kNN top-1 %.2f%% top-5 %.2f%%", kp->top1, kp->top5);
      unmix_log_info("epoch %d/%d  loss %.4f  lr %.5g  %.0f img/s  %.1f s%s", epoch + 1, E,
                     r->acc.loss / (r->acc.n > 0 ? r->acc.n : 1), r->acc.lr0, ips, secs, knnbuf);
    }
    epochs_this_run++;
    bool stop = r->o->stop_after_epochs > 0 && epochs_this_run >= r->o->stop_after_epochs;
    bool stop_steps = r->o->stop_after_steps > 0 && steps_this_run >= r->o->stop_after_steps;
    memset(&r->acc, 0, sizeof r->acc);
    const int sig = agreed_signal(r, &st);
    if (st != UNMIX_OK) {
      unmix_log_error("%s", unmix_error_message());
      return 1;
    }
    if (last || stop || stop_steps || sig || (epoch + 1) % cfg->train.checkpoint_every == 0) {
      if ((st = save_checkpoint(r, epoch + 1, 0)) != UNMIX_OK) {
        unmix_log_error("could not save the checkpoint: %s", unmix_error_message());
        if (unmix_error_code() == UNMIX_ERR_NUMERIC) report_last_checkpoint(r);
        write_status(r, "failed");
        return 1;
      }
    }
    write_status(r, last ? "finished" : "running");
    if (sig) {
      write_status(r, "interrupted");
      unmix_log_info("interrupted after epoch %d; checkpoint saved, continue with --resume", epoch + 1);
      return sig == SIGINT ? 130 : 143;
    }
    if ((stop || stop_steps) && !last) {
      write_status(r, "interrupted");
      unmix_log_info("stopped after epoch %d as asked; continue with --resume", epoch + 1);
      return 0;
    }
  }
  if (r->start_epoch >= E) unmix_log_info("%s: all %d epochs are done already", r->dir, E);
  write_status(r, "finished");
  return 0;
}

int unmix_train(const struct unmix_train_options *o) {
  struct run *r = unmix_xcalloc(1, sizeof *r);
  r->o = o;
  r->lock_fd = -1;
  r->progress = !o->quiet && isatty(STDERR_FILENO);
  unmix_config_init_defaults(&r->cfg);
  g_signal = 0;
  struct sigaction sa, old_int, old_term;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  int rc;
  /* the communicator first: the rank decides who writes, and each local rank gets its GPU
   * before the backend starts */
  struct unmix_comm_options co;
  unmix_comm_options_init(&co);
  co.timeout_s = o->comm_timeout;
  co.nccl_id_file = o->nccl_id_file;
  const char *ck = o->comm ? o->comm : getenv("UNMIX_COMM");
  unmix_status cs = ck ? unmix_comm_kind_parse(ck, &co.kind) : UNMIX_OK;
  if (cs == UNMIX_OK) cs = unmix_comm_create(&co, &r->comm);
  if (cs != UNMIX_OK) {
    fprintf(stderr, "unmix train: %s: %s\n", unmix_status_name(unmix_error_code()), unmix_error_message());
    unmix_config_free(&r->cfg);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    free(r);
    return 1;
  }
  r->rank = unmix_comm_rank(r->comm);
  r->world = unmix_comm_world(r->comm);
  unmix_log_set_rank(r->rank);
  if (r->rank != 0) r->progress = false;
  if (r->world > 1 && strcmp(r->cfg.backend, "cpu") != 0) unmix_log_debug("%s", unmix_comm_bind_local_gpu(r->comm));
  unmix_status ss = setup(r);
  if (r->world > 1) { /* every rank learns whether all could start */
    double bad = ss != UNMIX_OK;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", unmix_error_message());
    unmix_status as = agree(r, &bad, 1);
    if (ss == UNMIX_OK && as != UNMIX_OK) ss = as;
    else if (ss == UNMIX_OK && bad > 0)
      ss = unmix_error_set(UNMIX_ERR_ARG, "%.0f other rank(s) could not start the run (see their messages)", bad);
    else if (ss != UNMIX_OK)
      unmix_error_set(ss, "rank %d: %s", r->rank, msg);
  }
  if (ss != UNMIX_OK) {
    fprintf(stderr, "unmix train: %s: %s\n", unmix_status_name(unmix_error_code()), unmix_error_message());
    write_status(r, "failed");
    rc = 1;
  } else {
    write_status(r, "running");
    rc = train_loop(r);
  }
  teardown(r);
  unmix_comm_destroy(r->comm);
  unmix_log_set_rank(0);
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  free(r);
  return rc;
}
