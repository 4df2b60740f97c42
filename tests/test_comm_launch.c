/* `unmix train` launched as users launch it, on 2 MPI ranks (label mpi; the suite itself is
 * one ordinary process that starts `mpirun -np 2` from UNMIX_MPIRUN): 2 ranks x B/2 with
 * SyncBN end with the checkpoint of 1 process x B; rank 0 alone writes the run directory;
 * a run stopped mid-epoch resumes on every rank from the same checkpoint to the bit-identical
 * end; SIGTERM delivered to one rank stops both with a checkpoint; a rank that stops
 * answering (SIGSTOP) makes the other fail with a communicator timeout within a bounded
 * time; a killed rank (SIGKILL) ends the job within a bounded time; `unmix bench comm` runs
 * on 2 ranks. Tiny net (width 4) on a
 * 200-image synthetic CIFAR-10. */
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/io/checkpoint.h"
#include "core/util/fs.h"
#include "tests/support/testutil.h"

static char *g_dir;
static char g_tag[64];

static const char *bin(void) {
  const char *b = getenv("UNMIX_BIN");
  ck_assert_msg(b != NULL, "UNMIX_BIN is not set (run through ctest)");
  return b;
}
static const char *mpirun(void) {
  const char *m = getenv("UNMIX_MPIRUN");
  ck_assert_msg(m != NULL, "UNMIX_MPIRUN is not set (run through ctest)");
  return m;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The file's text, or NULL while it does not exist yet (logs of running ranks). */
static char *read_file(const char *path) {
  uint8_t *b = NULL;
  size_t n = 0;
  return unmix_fs_read(path, 0, &b, &n) == UNMIX_OK ? (char *)b : NULL;
}

static int count(const char *hay, const char *needle) {
  int c = 0;
  for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) c++;
  return c;
}

/* A manifest over the synthetic data: MoCo, width 4, SyncBN, no Un-Mix (the per-rank mixture
 * flips each rank's own batch, so only runs without it can equal one process). */
static void setup(void) {
  g_dir = unmix_test_tmpdir("launch");
  snprintf(g_tag, sizeof g_tag, "launch-%d-%ld", (int)getpid(), (long)time(NULL));
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "cd '%s' && '%s' data synth cifar10 data --n 200 --n-test 40 >/dev/null 2>&1", g_dir, bin());
  ck_assert_int_eq(unmix_test_sh(cmd, NULL), 0);
  char src[1024], path[1200], text[2048];
  unmix_test_src_path("configs/base/moco_cifar.yaml", src, sizeof src);
  snprintf(text, sizeof text,
           "base: %s\nname: tiny\ndata:\n  root: %s/data\n  workers: 1\nmodel:\n  width: 4\n  bn_splits: 1\n"
           "  sync_bn: true\nmoco:\n  K: 96\n  symmetric: true\nunmix:\n  enabled: false\noptim:\n  batch_size: 16\n"
           "train:\n  epochs: 2\n  steps_per_epoch: 3\n  log_every: 1\nknn:\n  every: 1\n  bank_subset: 64\n"
           "  test_subset: 32\n  k: 5\n",
           src, g_dir);
  snprintf(path, sizeof path, "%s/tiny.yaml", g_dir);
  unmix_test_write_text(path, text);
}
static void teardown(void) {
  unmix_test_rmdir(g_dir);
  free(g_dir);
}

/* Runs a shell command in g_dir (output to DIR/LOG), returns its exit status. */
static int run(const char *log, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int run(const char *log, const char *fmt, ...) {
  char args[2048], cmd[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof cmd, "cd '%s' && UNMIX_TEST_TAG=%s %s > '%s' 2>&1", g_dir, g_tag, args, log);
  return unmix_test_sh(cmd, NULL);
}

static void show(const char *log) {
  char p[1200];
  snprintf(p, sizeof p, "%s/%s", g_dir, log);
  char *s = read_file(p);
  fprintf(stderr, "---- %s ----\n%s\n", log, s ? s : "(none)");
  free(s);
}

/* Every F32 tensor of two checkpoints within nmse tol (tol 0: bit-identical), I64 equal. */
static void compare_ckpt(const char *a, const char *b, double tol) {
  char pa[1200], pb[1200];
  snprintf(pa, sizeof pa, "%s/%s/checkpoint.safetensors", g_dir, a);
  snprintf(pb, sizeof pb, "%s/%s/checkpoint.safetensors", g_dir, b);
  struct unmix_ckpt *ca = NULL, *cb = NULL;
  ck_assert_msg(unmix_ckpt_load(pa, &ca) == UNMIX_OK, "%s", unmix_error_message());
  ck_assert_msg(unmix_ckpt_load(pb, &cb) == UNMIX_OK, "%s", unmix_error_message());
  ck_assert_int_eq(ca->n, cb->n);
  int compared = 0;
  for (size_t i = 0; i < ca->n; i++) {
    const struct unmix_ckpt_tensor *ta = &ca->tensors[i], *tb = unmix_ckpt_find(cb, ta->name);
    ck_assert_msg(tb != NULL, "%s lacks %s", pb, ta->name);
    ck_assert_int_eq(ta->numel, tb->numel);
    if (!strcmp(ta->name, "unmix.epoch_acc")) continue; /* sums of the logged losses */
    if (ta->dtype == UNMIX_CKPT_F32) {
      if (tol == 0)
        ck_assert_msg(memcmp(ta->data, tb->data, ta->nbytes) == 0, "%s differs between %s and %s", ta->name, a, b);
      else
        ck_assert_msg(unmix_nmse(ta->data, tb->data, ta->numel) <= tol, "%s: %s vs %s normalised difference %.3g",
                      ta->name, a, b, unmix_nmse(ta->data, tb->data, ta->numel));
      compared++;
    } else if (ta->dtype == UNMIX_CKPT_I64) {
      ck_assert_msg(memcmp(ta->data, tb->data, ta->nbytes) == 0, "%s differs between %s and %s", ta->name, a, b);
    }
  }
  ck_assert_int_gt(compared, 50);
  unmix_ckpt_free(ca);
  unmix_ckpt_free(cb);
}

START_TEST(test_two_ranks_equal_one_process) {
  /* one epoch of 3 steps: tiny nets are chaotic enough that rounding differences grow by
   * ~10x per step (the 1e-4 below is reached after about 6) */
  int rc = run("one.log", "'%s' train tiny.yaml --out one --quiet --set train.epochs=1", bin());
  if (rc) show("one.log");
  ck_assert_int_eq(rc, 0);
  rc = run("two.log", "%s -np 2 '%s' train tiny.yaml --out two --set train.epochs=1", mpirun(), bin());
  if (rc) show("two.log");
  ck_assert_int_eq(rc, 0);
  /* 2 ranks x 8 = 1 x 16 (SyncBN): parameters, BN buffers, key encoder, queue, momentum */
  compare_ckpt("one", "two", 2e-5);
  /* rank 0 alone wrote the run directory: one start line, ranks recorded */
  char p[1200];
  snprintf(p, sizeof p, "%s/two/train.log", g_dir);
  char *log = read_file(p);
  ck_assert_msg(log && count(log, "run tiny ->") == 1, "train.log of the 2-rank run:\n%s", log ? log : "(none)");
  ck_assert_msg(strstr(log, "2 ranks (mpi"), "%s", log);
  free(log);
  snprintf(p, sizeof p, "%s/two/status.yaml", g_dir);
  char *st = read_file(p);
  ck_assert_msg(st && strstr(st, "status: finished") && strstr(st, "ranks: 2"), "%s", st ? st : "(none)");
  free(st);
  snprintf(p, sizeof p, "%s/two/metrics.csv", g_dir);
  char *csv = read_file(p);
  ck_assert_msg(csv && count(csv, "\n") == 2, "metrics.csv: header + 1 epoch expected:\n%s", csv ? csv : "(none)");
  free(csv);
}
END_TEST

START_TEST(test_resume_on_every_rank) {
  int rc = run("full.log", "%s -np 2 '%s' train tiny.yaml --out full --quiet", mpirun(), bin());
  if (rc) show("full.log");
  ck_assert_int_eq(rc, 0);
  /* stopped mid-epoch 1, then mid-epoch 2 (the checkpoint holds the loader position) */
  rc = run("a.log", "%s -np 2 '%s' train tiny.yaml --out part --quiet --stop-after-steps 2", mpirun(), bin());
  if (rc) show("a.log");
  ck_assert_int_eq(rc, 0);
  rc = run("b.log", "%s -np 2 '%s' train tiny.yaml --out part --quiet --resume --stop-after-steps 2", mpirun(), bin());
  if (rc) show("b.log");
  ck_assert_int_eq(rc, 0);
  rc = run("c.log", "%s -np 2 '%s' train tiny.yaml --out part --quiet --resume", mpirun(), bin());
  if (rc) show("c.log");
  ck_assert_int_eq(rc, 0);
  compare_ckpt("full", "part", 0);
}
END_TEST

/* ---- signals and dead ranks ------------------------------------------------------------- */
/* The pid of rank `rank` of our job: a process whose environment has our tag and
 * OMPI_COMM_WORLD_RANK (or PMI_RANK / PMIX_RANK) = rank. */
static pid_t find_rank(int rank) {
  char want_tag[96], want_rank[3][48];
  snprintf(want_tag, sizeof want_tag, "UNMIX_TEST_TAG=%s", g_tag);
  snprintf(want_rank[0], sizeof want_rank[0], "OMPI_COMM_WORLD_RANK=%d", rank);
  snprintf(want_rank[1], sizeof want_rank[1], "PMI_RANK=%d", rank);
  snprintf(want_rank[2], sizeof want_rank[2], "PMIX_RANK=%d", rank);
  DIR *d = opendir("/proc");
  if (!d) return -1;
  struct dirent *e;
  pid_t found = -1;
  while ((e = readdir(d)) && found < 0) {
    char *end;
    long pid = strtol(e->d_name, &end, 10);
    if (*end || pid <= 0) continue;
    char p[64], comm[64] = "";
    snprintf(p, sizeof p, "/proc/%ld/comm", pid);
    FILE *f = fopen(p, "r");
    if (!f) continue;
    if (!fgets(comm, sizeof comm, f)) comm[0] = 0;
    fclose(f);
    if (strncmp(comm, "unmix", 5) != 0) continue;
    snprintf(p, sizeof p, "/proc/%ld/environ", pid);
    int fd = open(p, O_RDONLY);
    if (fd < 0) continue;
    static char env[1 << 16];
    ssize_t n = read(fd, env, sizeof env - 1);
    close(fd);
    if (n <= 0) continue;
    env[n] = 0;
    bool tag = false, rk = false;
    for (char *s = env; s < env + n; s += strlen(s) + 1) {
      if (!strcmp(s, want_tag)) tag = true;
      for (int i = 0; i < 3; i++)
        if (!strcmp(s, want_rank[i])) rk = true;
    }
    if (tag && rk) found = (pid_t)pid;
  }
  closedir(d);
  return found;
}

/* Starts `cmd` in g_dir in its own process group, output to DIR/log. */
static pid_t spawn(const char *log, const char *cmd) {
  char full[4096];
  snprintf(full, sizeof full, "cd '%s' && UNMIX_TEST_TAG=%s exec %s > '%s' 2>&1", g_dir, g_tag, cmd, log);
  pid_t pid = fork();
  ck_assert(pid >= 0);
  if (pid == 0) {
    setpgid(0, 0);
    execl("/bin/sh", "sh", "-c", full, (char *)NULL);
    _exit(127);
  }
  return pid;
}

/* Waits for pid up to `limit` seconds; returns the exit status (128 + signal if killed) or -1
 * after killing the process group at the limit. */
static int wait_limit(pid_t pid, double limit, double *took) {
  double t0 = now();
  int status = 0;
  for (;;) {
    pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (now() - t0 > limit) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      *took = now() - t0;
      return -1;
    }
    usleep(20000);
  }
  *took = now() - t0;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Waits until DIR/path contains text (training is under way). */
static bool wait_text(const char *path, const char *text, double limit) {
  char p[1200];
  snprintf(p, sizeof p, "%s/%s", g_dir, path);
  double t0 = now();
  while (now() - t0 < limit) {
    char *s = read_file(p);
    bool ok = s && strstr(s, text);
    free(s);
    if (ok) return true;
    usleep(50000);
  }
  return false;
}

/* A longer run (3 epochs of 12 steps, a slightly wider net), so the test can act mid-run. */
static void long_manifest(void) {
  char path[1200], text[512];
  snprintf(path, sizeof path, "%s/long.yaml", g_dir);
  snprintf(text, sizeof text, "base: tiny.yaml\nname: long\nmodel:\n  width: 8\ntrain:\n  epochs: 3\n  steps_per_epoch: 0\n");
  unmix_test_write_text(path, text);
}

START_TEST(test_sigterm_to_one_rank_stops_both) {
  long_manifest();
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "%s -np 2 '%s' train long.yaml --out sig", mpirun(), bin());
  pid_t job = spawn("sig.log", cmd);
  ck_assert_msg(wait_text("sig/train.log", "step 2/", 60), "training did not start");
  pid_t r1 = find_rank(1);
  ck_assert_msg(r1 > 0, "rank 1 of the job not found in /proc");
  kill(r1, SIGTERM);
  double took;
  int rc = wait_limit(job, 60, &took);
  if (rc != 143) show("sig.log");
  ck_assert_msg(rc == 143, "mpirun exit status %d (want 143: every rank saved and stopped on SIGTERM)", rc);
  char p[1200];
  snprintf(p, sizeof p, "%s/sig/status.yaml", g_dir);
  char *st = read_file(p);
  ck_assert_msg(st && strstr(st, "status: interrupted"), "%s", st ? st : "(none)");
  free(st);
  /* and the run continues from that checkpoint on both ranks */
  rc = run("sig2.log", "%s -np 2 '%s' train long.yaml --out sig --resume --quiet", mpirun(), bin());
  if (rc) show("sig2.log");
  ck_assert_int_eq(rc, 0);
}
END_TEST

/* A rank that stops answering (SIGSTOP: alive, silent) is what no launcher notices: the other
 * rank's next collective must fail after UNMIX_COMM_TIMEOUT (5 s here) and the job end. */
START_TEST(test_hung_rank_times_out) {
  long_manifest();
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "env UNMIX_COMM_TIMEOUT=5 %s -np 2 '%s' train long.yaml --out hang", mpirun(), bin());
  pid_t job = spawn("hang.log", cmd);
  ck_assert_msg(wait_text("hang/train.log", "step 2/", 60), "training did not start");
  pid_t r1 = find_rank(1);
  ck_assert_msg(r1 > 0, "rank 1 of the job not found in /proc");
  kill(r1, SIGSTOP);
  double took;
  int rc = wait_limit(job, 60, &took);
  if (rc >= 0 && find_rank(1) > 0) kill(find_rank(1), SIGKILL);
  if (rc <= 0 || took >= 30) show("hang.log");
  ck_assert_msg(rc > 0, "the job with a stopped rank did not end within 60 s");
  ck_assert_msg(took < 30, "the job took %.1f s to end after a rank stopped (timeout 5 s)", took);
  char p[1200];
  snprintf(p, sizeof p, "%s/hang.log", g_dir);
  char *log = read_file(p);
  ck_assert_msg(log && strstr(log, "timed out after"), "no communicator timeout reported:\n%s", log ? log : "");
  free(log);
  snprintf(p, sizeof p, "%s/hang/status.yaml", g_dir);
  char *st = read_file(p);
  ck_assert_msg(st && strstr(st, "status: failed"), "%s", st ? st : "(none)");
  free(st);
}
END_TEST

START_TEST(test_killed_rank_ends_job) {
  long_manifest();
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "env UNMIX_COMM_TIMEOUT=5 %s -np 2 '%s' train long.yaml --out kill", mpirun(), bin());
  pid_t job = spawn("kill.log", cmd);
  ck_assert_msg(wait_text("kill/train.log", "step 2/", 60), "training did not start");
  pid_t r1 = find_rank(1);
  ck_assert_msg(r1 > 0, "rank 1 of the job not found in /proc");
  kill(r1, SIGKILL);
  double took;
  int rc = wait_limit(job, 60, &took);
  if (rc <= 0) show("kill.log");
  ck_assert_msg(rc > 0, "the job with a killed rank ended with status %d (want an error)", rc);
  ck_assert_msg(took < 30, "the job took %.1f s to end after a rank was killed", took);
}
END_TEST

START_TEST(test_bench_comm) {
  int rc = run("bench.log", "%s -np 2 '%s' bench comm --seconds 0.02 --max-mb 1", mpirun(), bin());
  char p[1200];
  snprintf(p, sizeof p, "%s/bench.log", g_dir);
  char *log = read_file(p);
  ck_assert_msg(rc == 0 && log && strstr(log, "ResNet-50 MoCo v2 grad") && strstr(log, "sweep 1 MiB") &&
                    strstr(log, "2 ranks"),
                "bench comm (status %d):\n%s", rc, log ? log : "");
  free(log);
}
END_TEST

static Suite *launch_suite(void) {
  Suite *s = suite_create("comm-launch");
  TCase *tc = tcase_create("mpirun");
  tcase_set_timeout(tc, 300);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_two_ranks_equal_one_process);
  tcase_add_test(tc, test_resume_on_every_rank);
  tcase_add_test(tc, test_sigterm_to_one_rank_stops_both);
  tcase_add_test(tc, test_hung_rank_times_out);
  tcase_add_test(tc, test_killed_rank_ends_job);
  tcase_add_test(tc, test_bench_comm);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(launch_suite)
