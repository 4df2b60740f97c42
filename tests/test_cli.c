/* The user-facing front door as a new user meets it: `make` only builds, backend auto (the GPU
 * when usable, else the CPU, and the log says why), the CPU projection warning, the message for
 * `--backend cuda` without a GPU, did-you-mean for commands/keys/options, `unmix help CMD`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/data/recipe.h"
#include "core/io/config.h"
#include "experiments/projection.h"
#include "tests/support/testutil.h"

static char *g_dir;

#define unmix(out, ...) unmix_test_unmix(g_dir, (out), __VA_ARGS__)
#define run_expect(rc, want, args) unmix_test_run_expect(g_dir, (rc), (want), (args))

static void expect_not(const char *out, const char *bad) {
  ck_assert_msg(strstr(out, bad) == NULL, "output has '%s':\n%s", bad, unmix_test_tail(out));
}

static void setup(void) { g_dir = unmix_test_tmpdir("cli"); }

static void teardown(void) {
  unmix_test_rmdir(g_dir);
  free(g_dir);
}

/* ---- make ------------------------------------------------------------------------------- */

/* Plain `make` (dry run) configures and builds, and starts none of the paper targets: before the
 * fix Makefile.paper's `all:` joined the default goal and `make` began the whole reproduction. */
START_TEST(make_default_goal_only_builds) {
  char src[1024], cmd[2600];
  unmix_test_src_path("", src, sizeof src);
  if (unmix_test_sh("command -v make >/dev/null 2>&1", NULL) != 0) {
    printf("SKIPPED (no make): make_default_goal_only_builds\n");
    return;
  }
  snprintf(cmd, sizeof cmd, "make -n -C '%s' BUILD='%s/b' 2>&1", src, g_dir);
  char *o = NULL;
  int st = unmix_test_sh(cmd, &o);
  ck_assert_msg(st == 0, "make -n failed:\n%s", unmix_test_tail(o));
  unmix_test_expect(o, "cmake --build");
  expect_not(o, "run_row.sh");
  expect_not(o, "data fetch");
  expect_not(o, "figures.sh");
  free(o);
  /* the whole reproduction is still one named target */
  snprintf(cmd, sizeof cmd, "make -n -C '%s' BUILD='%s/b' paper-all 2>&1", src, g_dir);
  st = unmix_test_sh(cmd, &o);
  ck_assert_msg(st == 0, "make -n paper-all failed:\n%s", unmix_test_tail(o));
  unmix_test_expect(o, "run_row.sh");
  free(o);
}
END_TEST

/* ---- backend auto ----------------------------------------------------------------------- */

/* The line of `text` that starts with `key` (copied into line; "" when none). */
static void line_of(const char *text, const char *key, char *line, size_t len) {
  line[0] = 0;
  for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
    if (!strncmp(p, key, strlen(key))) {
      snprintf(line, len, "%.*s", (int)strcspn(p, "\n"), p);
      return;
    }
}

START_TEST(backend_auto_is_the_default) {
  char *keys = run_expect(0, NULL, "validate --keys");
  char line[256];
  line_of(keys, "backend", line, sizeof line);
  free(keys);
  ck_assert_msg(line[0] != 0, "validate --keys lists no backend key");
  ck_assert_msg(strstr(line, "auto") != NULL, "the backend default is not auto: %s", line);
  /* every shipped manifest resolves to backend auto */
  char src[1024], cmd[2600];
  unmix_test_src_path("configs", src, sizeof src);
  snprintf(cmd, sizeof cmd, "grep -rh '^backend:' '%s' | grep -v '^backend: auto' || true", src);
  char *other = NULL;
  ck_assert_int_eq(unmix_test_sh(cmd, &other), 0);
  ck_assert_msg(other[0] == 0, "manifests with another backend than auto:\n%s", other);
  free(other);
}
END_TEST

/* A run with backend auto says in its log which backend it got and why. */
START_TEST(backend_auto_logs_which_and_why) {
  free(run_expect(0, NULL, "data synth fashion-mnist data --n 64 --n-test 32 --seed 1"));
  char man[1200];
  snprintf(man, sizeof man, "%s/m.yaml", g_dir);
  unmix_test_write_text(man,
             "name: auto\nmethod: moco\nbackend: auto\n"
             "data: {dataset: fashion-mnist, root: data, recipe: moco-cifar, workers: 1}\n"
             "model: {arch: resnet18, stem: cifar, width: 4, bn_splits: 2, head: linear, dim: 16}\n"
             "moco: {K: 32, symmetric: true}\noptim: {batch_size: 16, lr: 0.06}\n"
             "train: {epochs: 2, steps_per_epoch: 3}\nknn: {every: 0}\n");
  /* threshold 0: any run landing on the CPU gets the projection warning after its 4th step */
  setenv("UNMIX_CPU_WARN_SECONDS", "0", 1);
  char *o = run_expect(0, NULL, "train m.yaml --out run --quiet");
  unsetenv("UNMIX_CPU_WARN_SECONDS");
  free(o);
  char logp[1300], cmd[1400];
  snprintf(logp, sizeof logp, "%s/run/train.log", g_dir);
  snprintf(cmd, sizeof cmd, "cat '%s'", logp);
  ck_assert_int_eq(unmix_test_sh(cmd, &o), 0);
  unmix_test_expect(o, "backend auto: ");
  if (strstr(o, "backend auto: cpu")) {
    unmix_test_expect(o, "because");
    unmix_test_expect(o, "this run trains on the CPU: projected");
    unmix_test_expect(o, "for the remaining 2 steps");
  }
  free(o);
}
END_TEST

START_TEST(cpu_projection_warning) {
  char buf[512];
  /* 2 s/step x 10000 steps = 5.6 h on the CPU: warned, with the projection */
  ck_assert(unmix_projection_cpu_warning(true, 2.0, 10000, UNMIX_CPU_WARN_SECONDS, buf, sizeof buf));
  unmix_test_expect(buf, "projected 5 h 33 min");
  unmix_test_expect(buf, "10000 steps");
  /* the same run on a GPU, or a short CPU run: silent */
  ck_assert(!unmix_projection_cpu_warning(false, 2.0, 10000, UNMIX_CPU_WARN_SECONDS, buf, sizeof buf));
  ck_assert_str_eq(buf, "");
  ck_assert(!unmix_projection_cpu_warning(true, 0.5, 1000, UNMIX_CPU_WARN_SECONDS, buf, sizeof buf));
  unmix_format_duration(3 * 86400.0 + 3600, buf, sizeof buf);
  ck_assert_str_eq(buf, "3.0 days");
  unmix_format_duration(90, buf, sizeof buf);
  ck_assert_str_eq(buf, "2 min");
}
END_TEST

/* The multi-GPU projection of bench step (docs/scaling.md's model) computed by hand:
 * 1 GFLOP per sample, 1M gradient floats, global batch 512, 1000 steps. */
START_TEST(gpu_projection_model) {
  struct unmix_gpu_projection p;
  const double rate = 3.0 * 8.18e9 / 0.67e-3;
  unmix_projection_gpu(1e9, 1000000, 512, 1000, 1, &p);
  ck_assert_int_eq(p.per_gpu_batch, 512);
  ck_assert(fabs(p.compute_s - 512e9 / rate) < 1e-12 && p.allreduce_s == 0.0);
  unmix_projection_gpu(1e9, 1000000, 512, 1000, 8, &p);
  ck_assert_int_eq(p.per_gpu_batch, 64);
  /* 2 * 7/8 * 4 MB / 350 GB/s + 14 * 5 us = 20 us + 70 us */
  ck_assert_msg(fabs(p.allreduce_s - 9e-5) < 1e-12, "all-reduce %.9g s", p.allreduce_s);
  ck_assert(fabs(p.run_s - 1000 * (64e9 / rate + 9e-5)) < 1e-9);
  unmix_projection_gpu(1e9, 1000000, 512, 1000, 64, &p); /* across nodes: 40 GB/s */
  ck_assert_int_eq(p.per_gpu_batch, 8);
  ck_assert_msg(fabs(p.allreduce_s - (2.0 * 63 / 64 * 4e6 / 40e9 + 126 * 5e-6)) < 1e-12, "%.9g", p.allreduce_s);
  unmix_projection_gpu(1e9, 1000000, 32, 1000, 64, &p); /* a batch of 32 does not split over 64 GPUs */
  ck_assert_int_eq(p.per_gpu_batch, 0);
  ck_assert(p.run_s == 0.0);
}
END_TEST

/* `--backend cuda` on a machine without a GPU says so (not the CUDA runtime's wording alone). */
START_TEST(backend_cuda_without_gpu) {
  char *info = run_expect(0, "backends:", "info");
  char src[1024], args[1400];
  unmix_test_src_path("configs/fmnist/moco_sym.yaml", src, sizeof src);
  snprintf(args, sizeof args, "bench step %s --backend cuda --steps 1 --warmup 0", src);
  if (strstr(info, "cuda(usable)")) {
    printf("SKIPPED (a GPU is usable here): backend_cuda_without_gpu\n");
  } else if (strstr(info, "cuda(no device)")) {
    char *o = run_expect(1, "there is no usable GPU here", args);
    unmix_test_expect(o, "unmix info");
    free(o);
  } else {
    free(run_expect(1, "was not compiled into this build", args));
  }
  free(info);
}
END_TEST


/* ---- did-you-mean and help ------------------------------------------------------------------ */

START_TEST(did_you_mean_commands_keys_options) {
  free(run_expect(2, "unknown command 'trian'; did you mean 'train'?", "trian"));
  free(run_expect(2, "did you mean 'validate'?", "valdate x.yaml"));
  free(run_expect(2, "did you mean 'collect'?", "help colect"));
  char man[1200], args[1400];
  unmix_test_src_path("configs/fmnist/moco_sym.yaml", man, sizeof man);
  snprintf(args, sizeof args, "validate %s --set unmix.probability=0.3", man);
  free(run_expect(1, "unknown key 'unmix.probability' (did you mean 'unmix.prob'?)", args));
  /* manifest keys given as options get their --set form */
  snprintf(args, sizeof args, "train %s --epochs 3", man);
  free(run_expect(2, "'--epochs' is not an option; manifest keys are set with --set: --set train.epochs=VALUE", args));
  snprintf(args, sizeof args, "train %s --batch-size=64", man);
  free(run_expect(2, "--set optim.batch_size=64", args));
  snprintf(args, sizeof args, "bench step %s --lr 0.1", man);
  free(run_expect(2, "--set optim.lr=VALUE", args));
  snprintf(args, sizeof args, "validate %s --prnt", man);
  free(run_expect(2, "did you mean --print?", args));
}
END_TEST

/* The options a help text declares: every --name on its usage lines (up to the first blank
 * line) and at the start of its option lines ("  --name", "  -x, --name"). */
static int declared_options(const char *help, char names[][40], int cap) {
  int n = 0;
  bool usage = true;
  for (const char *line = help; line && *line;) {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    if (len == 0) usage = false;
    const char *scan_from = NULL, *scan_to = line + len;
    if (usage) scan_from = line;
    else if (len > 4 && !strncmp(line, "  --", 4)) scan_from = line + 2, scan_to = line + 2 + strcspn(line + 2, " \n");
    else if (len > 8 && !strncmp(line, "  -", 3) && !strncmp(line + 4, ", --", 4))
      scan_from = line + 6, scan_to = line + 6 + strcspn(line + 6, " \n");
    for (const char *p = scan_from; p && (p = strstr(p, "--")) && p < scan_to; p += 2) {
      size_t k = strspn(p + 2, "abcdefghijklmnopqrstuvwxyz0123456789-");
      if (k == 0 || n == cap) continue;
      snprintf(names[n++], 40, "%.*s", (int)k, p + 2);
    }
    line = end ? end + 1 : NULL;
  }
  return n;
}

/* What can be enforced of "no option that does nothing, none documented twice with two
 * meanings, an example in each": an option line per option at most once, and every --name the
 * text mentions (descriptions, examples) is one the command declares. */
static void audit_help(const char *cmd, const char *help, bool check_mentions) {
  char names[128][40];
  int n = declared_options(help, names, 128);
  /* option lines: each name once */
  char seen[128][40];
  int ns = 0;
  for (const char *line = help; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
    const char *p = NULL;
    if (!strncmp(line, "  --", 4)) p = line + 4;
    else if (!strncmp(line, "  -", 3) && !strncmp(line + 4, ", --", 4)) p = line + 8;
    if (!p) continue;
    size_t k = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789-");
    for (int i = 0; i < ns; i++)
      ck_assert_msg(strlen(seen[i]) != k || strncmp(seen[i], p, k), "unmix %s --help lists --%.*s twice", cmd, (int)k,
                    p);
    if (ns < 128) snprintf(seen[ns++], 40, "%.*s", (int)k, p);
  }
  if (!check_mentions) return;
  for (const char *p = help; (p = strstr(p, "--")); p += 2) {
    if (p > help && p[-1] != ' ' && p[-1] != '[' && p[-1] != '(' && p[-1] != '`' && p[-1] != '\n') continue;
    size_t k = strspn(p + 2, "abcdefghijklmnopqrstuvwxyz0123456789-");
    if (k == 0 || (k == 4 && !strncmp(p + 2, "help", 4))) continue;
    bool ok = false;
    for (int i = 0; i < n && !ok; i++) ok = strlen(names[i]) == k && !strncmp(names[i], p + 2, k);
    ck_assert_msg(ok, "unmix %s --help mentions --%.*s, which is not one of its options", cmd, (int)k, p + 2);
  }
}

/* `unmix help CMD [SUB]` is `unmix CMD [SUB] --help`; each help has an example and points
 * nowhere outside the repository. */
START_TEST(help_texts) {
  static const char *const cmds[] = {"train",       "info",       "bench",      "validate",   "data",
                                     "collect",     "baseline",   "plot",       "knn",        "lincls",
                                     "tsne",        "hist",       "flatness",   "export",     "data fetch", "data check", "data synth", "data import",
                                     "bench ops",   "bench step", "bench data", "bench comm", "bench tsne", "bench norm"};
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
    char a[128], b[128];
    snprintf(a, sizeof a, "help %s", cmds[i]);
    snprintf(b, sizeof b, "%s --help", cmds[i]);
    char *h = run_expect(0, "\nexample: ", a), *d = run_expect(0, NULL, b);
    ck_assert_msg(!strcmp(h, d), "`unmix %s` differs from `unmix %s`", a, b);
    expect_not(h, "SPEC");
    expect_not(h, "../shared");
    /* a parent (bench, data) describes its subcommands' options; the subcommands are checked */
    audit_help(cmds[i], h, strcmp(cmds[i], "bench") && strcmp(cmds[i], "data"));
    free(h);
    free(d);
  }
  /* the SimCLR/BYOL linear protocol has a help of its own */
  char *w = run_expect(0, "\nexample: ", "lincls x.safetensors --protocol wmse-cifar --help");
  audit_help("lincls --protocol wmse-cifar", w, true);
  free(w);
  char *top = run_expect(0, "unmix help <command>", "help");
  unmix_test_expect(top, "example: ");
  free(top);
}
END_TEST


/* ---- the demo's recipe keys and reference levels ----------------------------------------------- */

START_TEST(recipe_grey_images_and_moco_crops) {
  struct unmix_data_config cfg = {0};
  snprintf(cfg.recipe, sizeof cfg.recipe, "moco-cifar");
  struct unmix_recipe r;
  ck_assert_int_eq(unmix_recipe_from_config(&cfg, &r), UNMIX_OK);
  int colour = 0;
  for (int i = 0; i < r.views[0].n_ops; i++)
    colour += r.views[0].ops[i].op == UNMIX_AUG_JITTER || r.views[0].ops[i].op == UNMIX_AUG_GRAY;
  ck_assert_int_eq(colour, 2);
  ck_assert(r.views[0].scale_min == 0.08f);
  /* grey images: no random grayscale, the jitter keeps its brightness and contrast (p 0.8)
   * without saturation and hue, the flip stays; one crop group sets the MoCo crops */
  cfg.grey_images = true;
  cfg.n_crop_groups = 1;
  cfg.nmb_crops[0] = 2, cfg.size_crops[0] = 32, cfg.min_scale[0] = 0.35f, cfg.max_scale[0] = 1.0f;
  ck_assert_int_eq(unmix_recipe_from_config(&cfg, &r), UNMIX_OK);
  ck_assert_int_eq(r.n_views, 2);
  for (int v = 0; v < 2; v++) {
    ck_assert(r.views[v].scale_min == 0.35f && r.views[v].scale_max == 1.0f);
    ck_assert_int_eq(r.views[v].n_ops, 2);
    ck_assert_int_eq(r.views[v].ops[0].op, UNMIX_AUG_HFLIP);
    const struct unmix_aug_op_spec *j = &r.views[v].ops[1];
    ck_assert_int_eq(j->op, UNMIX_AUG_JITTER);
    ck_assert(j->brightness == 0.4f && j->contrast == 0.4f && j->p == 0.8f);
    ck_assert(j->saturation == 0.0f && j->hue == 0.0f);
  }
  /* the keys reach the recipe from a manifest */
  free(run_expect(0, "data.grey_images", "validate --keys"));
}
END_TEST

START_TEST(baseline_levels) {
  free(run_expect(0, NULL, "data synth fashion-mnist data --n 64 --n-test 32 --classes 4 --seed 3"));
  char man[1200];
  snprintf(man, sizeof man, "%s/m.yaml", g_dir);
  unmix_test_write_text(man,
             "name: b\nmethod: moco\n"
             "data: {dataset: fashion-mnist, root: data, channels: 3, pad_to: 32, workers: 1}\n"
             "model: {arch: resnet18, stem: cifar, width: 4, bn_splits: 2, head: linear, dim: 16}\n"
             "moco: {K: 32}\noptim: {batch_size: 16}\nknn: {k: 5, bank_subset: 48, test_subset: 24}\n");
  char *o = run_expect(0, "raw-pixels  top-1", "baseline m.yaml --csv b.csv");
  unmix_test_expect(o, "untrained   top-1");
  unmix_test_expect(o, "kNN k 5 t 0.1, 48 bank, 24 queries");
  free(o);
  char path[1300], cmd[1400];
  snprintf(path, sizeof path, "%s/b.csv", g_dir);
  snprintf(cmd, sizeof cmd, "cat '%s'", path);
  ck_assert_int_eq(unmix_test_sh(cmd, &o), 0);
  unmix_test_expect(o, "baseline,manifest,dataset,features,dim,k,t,bank,queries,top1,top5,seconds\nraw-pixels,m.yaml,fashion-mnist,"
            "pixels,3072,5,0.1,48,24,");
  unmix_test_expect(o, "\nuntrained,m.yaml,fashion-mnist,embedding,16,5,0.1,48,24,");
  free(o);
  /* the same seed gives the same untrained network, hence the same level */
  free(run_expect(0, NULL, "baseline m.yaml --csv c.csv"));
  snprintf(cmd, sizeof cmd, "cd '%s' && cut -d, -f1-11 b.csv > b1 && cut -d, -f1-11 c.csv > c1 && cmp b1 c1", g_dir);
  ck_assert_msg(unmix_test_sh(cmd, &o) == 0, "two baselines of one manifest differ: %s", o);
  free(o);
}
END_TEST


/* sweep-prob P=0.5 / sweep-beta beta=1 link to the main row's run instead of training it again */
START_TEST(sweep_point_reuses_main_run) {
  free(run_expect(0, NULL, "data synth fashion-mnist data --n 64 --n-test 32 --seed 1"));
  char man[1200], src[1024], cmd[4096];
  snprintf(man, sizeof man, "%s/m.yaml", g_dir);
  unmix_test_write_text(man,
             "name: main\nmethod: moco\nbackend: cpu\n"
             "data: {dataset: fashion-mnist, root: data, recipe: moco-cifar, workers: 1}\n"
             "model: {arch: resnet18, stem: cifar, width: 4, bn_splits: 2, head: linear, dim: 16}\n"
             "moco: {K: 32, symmetric: true}\nunmix: {prob: 0.5}\noptim: {batch_size: 16, lr: 0.06}\n"
             "train: {epochs: 1, steps_per_epoch: 2}\nknn: {every: 0}\npaper: {table: main}\n");
  unmix_test_src_path("scripts/run_row.sh", src, sizeof src);
  char *o = NULL;
  snprintf(cmd, sizeof cmd, "cd '%s' && UNMIX=\"$UNMIX_BIN\" BACKEND= '%s' train m.yaml runs/main 2>&1", g_dir, src);
  ck_assert_msg(unmix_test_sh(cmd, &o) == 0, "%s", o);
  free(o);
  snprintf(cmd, sizeof cmd,
           "cd '%s' && UNMIX=\"$UNMIX_BIN\" BACKEND= '%s' reuse m.yaml runs/p0.5 runs/main --set unmix.prob=0.5 "
           "--set name=main_p0.5 --set paper.table=sweep-prob 2>&1 && cat runs/p0.5/REUSED && grep -c 'name: \"main_p0.5\"' "
           "runs/p0.5/manifest.yaml && grep -c 'table: \"sweep-prob\"' runs/p0.5/manifest.yaml && test -L runs/p0.5/metrics.csv",
           g_dir, src);
  ck_assert_msg(unmix_test_sh(cmd, &o) == 0, "%s", o);
  unmix_test_expect(o, "identical training configuration), re-used");
  free(o);
  /* another P is another configuration: trained, not linked */
  snprintf(cmd, sizeof cmd,
           "cd '%s' && UNMIX=\"$UNMIX_BIN\" BACKEND= '%s' reuse m.yaml runs/p0.25 runs/main --set unmix.prob=0.25 "
           "--set name=main_p0.25 2>&1 && test ! -e runs/p0.25/REUSED && test ! -L runs/p0.25/metrics.csv",
           g_dir, src);
  ck_assert_msg(unmix_test_sh(cmd, &o) == 0, "%s", o);
  unmix_test_expect(o, "differs from runs/main's; training it");
  free(o);
}
END_TEST


/* results/paper/paper_results.csv is a plain CSV (pandas.read_csv reads it without options) */
START_TEST(paper_csv_is_plain) {
  char src[1024], cmd[1400];
  unmix_test_src_path("results/paper/paper_results.csv", src, sizeof src);
  snprintf(cmd, sizeof cmd, "head -n 1 '%s'; grep -c '^#' '%s' || true", src, src);
  char *o = NULL;
  ck_assert_int_eq(unmix_test_sh(cmd, &o), 0);
  ck_assert_str_eq(o, "table,dataset,method,variant,unmix,epochs,metric,value,source\n0\n");
  free(o);
}
END_TEST


/* `unmix plot RUN...` draws the runs' curves; --watch redraws (--count bounds it here) */
START_TEST(plot_runs) {
  if (unmix_test_sh("command -v gnuplot >/dev/null 2>&1", NULL) != 0) {
    printf("SKIPPED (no gnuplot): plot_runs\n");
    return;
  }
  char cmd[1400];
  snprintf(cmd, sizeof cmd,
           "cd '%s' && mkdir -p a b && printf 'epoch,loss,knn_top1\\n1,9.5,40\\n2,9.1,45\\n' > a/metrics.csv && "
           "printf 'epoch,loss,knn_top1\\n1,9.7,41\\n' > b/metrics.csv",
           g_dir);
  ck_assert_int_eq(unmix_test_sh(cmd, NULL), 0);
  free(run_expect(0, "unmix plot: a/curves.png (2 runs)", "plot a b"));
  snprintf(cmd, sizeof cmd, "test -s '%s/a/curves.png' && head -c 4 '%s/a/curves.png' | od -c | grep -q P", g_dir, g_dir);
  ck_assert_msg(unmix_test_sh(cmd, NULL) == 0, "a/curves.png is not a PNG");
  free(run_expect(0, "x.png redrawn at", "plot a/metrics.csv --out x.png --columns knn_top1 --watch 1 --count 1"));
  free(run_expect(1, "nowhere: no metrics.csv", "plot nowhere"));
  free(run_expect(1, "gnuplot failed", "plot a --columns no_such_column --out y.png"));
  free(run_expect(2, "--watch must be an integer", "plot a --watch 0"));
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("cli");
  TCase *t = tcase_create("cli");
  tcase_set_timeout(t, 600);
  tcase_add_checked_fixture(t, setup, teardown);
  tcase_add_test(t, make_default_goal_only_builds);
  tcase_add_test(t, backend_auto_is_the_default);
  tcase_add_test(t, backend_auto_logs_which_and_why);
  tcase_add_test(t, cpu_projection_warning);
  tcase_add_test(t, gpu_projection_model);
  tcase_add_test(t, backend_cuda_without_gpu);
  tcase_add_test(t, did_you_mean_commands_keys_options);
  tcase_add_test(t, help_texts);
  tcase_add_test(t, recipe_grey_images_and_moco_crops);
  tcase_add_test(t, baseline_levels);
  tcase_add_test(t, sweep_point_reuses_main_run);
  tcase_add_test(t, paper_csv_is_plain);
  tcase_add_test(t, plot_runs);
  suite_add_tcase(s, t);
  return s;
}

UNMIX_TEST_MAIN(suite)
