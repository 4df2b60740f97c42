/* Manifest loading: defaults, base: inheritance, --set overrides, every class of error
 * (with file:line:column and key), cross-field rules, the resolved-YAML round trip and the
 * `unmix validate` command. Manifests are written to a temporary directory by the tests. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io/manifest.h"
#include "tests/support/testutil.h"

static char *g_dir;

static void setup(void) { g_dir = unmix_test_tmpdir("manifest"); }
static void teardown(void) {
  unmix_test_rmdir(g_dir);
  free(g_dir);
  g_dir = NULL;
}

/* Writes `text` to g_dir/name (creating its directory) and returns the path. */
static const char *put(const char *name, const char *text) {
  const char *p = unmix_test_path(g_dir, name);
  unmix_test_write_text(p, text);
  return p;
}

static void load_ok(const char *path, const char *const *ovr, int n, struct unmix_config *c) {
  unmix_status st = unmix_manifest_load(path, ovr, n, c);
  ck_assert_msg(st == UNMIX_OK, "load %s failed: %s", path, unmix_error_message());
}

/* Loading fails with `code` and the message contains every one of the NULL-terminated needles. */
static void expect_fail(const char *path, const char *const *ovr, int n, unmix_status code, ...) {
  struct unmix_config c;
  unmix_error_clear();
  unmix_status st = unmix_manifest_load(path, ovr, n, &c);
  ck_assert_msg(st == code, "%s: expected status %s, got %s (%s)", path, unmix_status_name(code),
                unmix_status_name(st), unmix_error_message());
  ck_assert_ptr_null(c.source_path);
  ck_assert_ptr_null(c.resolved_yaml);
  const char *msg = unmix_error_message();
  va_list ap;
  va_start(ap, code);
  for (const char *needle; (needle = va_arg(ap, const char *));)
    ck_assert_msg(strstr(msg, needle) != NULL, "message lacks \"%s\":\n%s", needle, msg);
  va_end(ap);
}

/* A one-file manifest body must fail naming `needle`. */
static void bad(const char *body, const char *needle) {
  const char *p = put("bad.yaml", body);
  expect_fail(p, NULL, 0, UNMIX_ERR_CONFIG, needle, (const char *)NULL);
}

START_TEST(test_defaults_match_reference) {
  struct unmix_config c;
  unmix_config_init_defaults(&c);
  /* FIDELITY §2.1 */
  ck_assert_int_eq(c.method, UNMIX_METHOD_MOCO);
  ck_assert_int_eq(c.model.arch, UNMIX_ARCH_RESNET18);
  ck_assert_int_eq(c.model.stem, UNMIX_STEM_CIFAR);
  ck_assert_int_eq(c.model.bn_splits, 8);
  ck_assert_int_eq(c.model.head, UNMIX_HEAD_LINEAR);
  ck_assert_int_eq(c.model.dim, 128);
  ck_assert_int_eq(c.model.width, 64);
  ck_assert_int_eq(c.moco.K, 4096);
  ck_assert_float_eq(c.moco.m, 0.99f);
  ck_assert_float_eq(c.moco.T, 0.1f);
  ck_assert(c.moco.symmetric);
  ck_assert_float_eq(c.optim.lr, 0.06f);
  ck_assert_int_eq(c.optim.batch_size, 512);
  ck_assert_float_eq(c.optim.weight_decay, 5e-4f);
  ck_assert_float_eq(c.optim.momentum, 0.9f);
  ck_assert_int_eq(c.optim.kind, UNMIX_OPTIM_SGD);
  ck_assert_int_eq(c.schedule.kind, UNMIX_SCHED_COSINE_1BASED);
  ck_assert_int_eq(c.train.epochs, 1000);
  ck_assert(c.unmix.enabled);
  ck_assert_float_eq(c.unmix.prob, 0.5f);
  ck_assert_float_eq(c.unmix.beta, 1.0f);
  ck_assert_int_eq(c.knn.k, 200);
  ck_assert_float_eq(c.knn.t, 0.1f);
  ck_assert_int_eq(c.knn.every, 1);
  ck_assert_str_eq(c.data.dataset, "cifar10");
  ck_assert_str_eq(c.data.recipe, "moco-cifar");
  ck_assert_uint_eq(c.seed, 0);
  ck_assert_str_eq(c.backend, "auto"); /* GPU when usable, else CPU */
  ck_assert_int_eq(c.precision, UNMIX_PREC_TF32);
  /* FIDELITY §3.1 */
  ck_assert_int_eq(c.swav.nmb_prototypes, 100);
  ck_assert_float_eq(c.swav.temperature, 0.1f);
  ck_assert_float_eq(c.swav.epsilon, 0.05f);
  ck_assert_int_eq(c.swav.sinkhorn_iterations, 3);
  ck_assert_int_eq(c.swav.n_crops_for_assign, 2);
  ck_assert_int_eq(c.swav.crops_for_assign[0], 0);
  ck_assert_int_eq(c.swav.crops_for_assign[1], 1);
  ck_assert_int_eq(c.swav.queue_length, 120);
  ck_assert_int_eq(c.swav.epoch_queue_starts, 15);
  ck_assert_int_eq(c.swav.freeze_prototypes_niters, 5005);
  ck_assert_int_eq(c.swav.reverse, UNMIX_SWAV_REVERSE_CODE);
  ck_assert_int_eq(c.swav.sinkhorn, UNMIX_SWAV_SINKHORN_ORIGINAL); /* the CIFAR code's; ImageNet manifests set simplified */
  ck_assert_int_eq(c.data.n_crop_groups, 0); /* [] = the recipe's own views */
  ck_assert(!c.data.has_norm);
  ck_assert_int_eq(c.linear.n_milestones, 2);
  ck_assert_ptr_null(c.source_path);
  ck_assert_ptr_null(c.resolved_yaml);
  /* every key's default is listed and non-empty */
  for (int i = 0; i < unmix_config_key_count(); i++) {
    char buf[256];
    ck_assert_ptr_nonnull(unmix_config_key_default(i));
    ck_assert_ptr_nonnull(unmix_config_key_allowed(i, buf, sizeof buf));
    ck_assert(strlen(unmix_config_key_type(i)) > 0);
  }
}
END_TEST

START_TEST(test_empty_manifest_gives_defaults_and_stem_name) {
  struct unmix_config c, d;
  load_ok(put("my run+1.yaml", "# nothing but a comment\n"), NULL, 0, &c);
  ck_assert_str_eq(c.name, "my_run+1");
  ck_assert_ptr_nonnull(c.source_path);
  ck_assert(strstr(c.source_path, "my run+1.yaml") != NULL);
  unmix_config_init_defaults(&d);
  memcpy(d.name, c.name, sizeof d.name);
  char *sp = c.source_path, *ry = c.resolved_yaml;
  c.source_path = c.resolved_yaml = NULL;
  ck_assert(memcmp(&c, &d, sizeof c) == 0);
  c.source_path = sp;
  c.resolved_yaml = ry;
  unmix_config_free(&c);
  ck_assert_ptr_null(c.source_path);
}
END_TEST

START_TEST(test_values_bind) {
  struct unmix_config c;
  const char *p = put("v.yaml",
                      "name: sym-unmix\n"
                      "seed: 18446744073709551615\n"
                      "backend: cuda\n"
                      "precision: bf16\n"
                      "method: swav\n"
                      "data:\n"
                      "  dataset: cifar100\n"
                      "  root: 'data/c100'\n"
                      "  crops:\n"
                      "    - {nmb: 2, size: 32, min_scale: 0.14, max_scale: 1}\n"
                      "    - nmb: 6\n"
                      "      size: 16\n"
                      "      min_scale: 0.05\n"
                      "      max_scale: 0.14\n"
                      "  mean: [0.485, 0.456, 0.406]\n"
                      "  std: [0.228, 0.224, 0.225]\n"
                      "model: {arch: resnet18-bottleneck, stem: swav-cifar, head: swav, hidden: 512}\n"
                      "swav:\n"
                      "  crops_for_assign: [0, 7]\n"
                      "  reverse: paper\n"
                      "unmix: {prob: 0.25, beta: 0.5, enabled: False}\n"
                      "optim: {kind: larc, lr: 6e-1, batch_size: 128, weight_decay: 1e-6}\n"
                      "schedule: {kind: step, milestones: [120, 160], gamma: 0.2}\n"
                      "linear: {protocol: swav-cifar, cosine: true, milestones: []}\n"
                      "paper: {table: swav-cifar-repo, unmix: true, epochs: 400, metric: linear_top1}\n");
  load_ok(p, NULL, 0, &c);
  ck_assert_str_eq(c.name, "sym-unmix");
  ck_assert_uint_eq(c.seed, UINT64_MAX);
  ck_assert_str_eq(c.backend, "cuda");
  ck_assert_int_eq(c.precision, UNMIX_PREC_BF16);
  ck_assert_int_eq(c.method, UNMIX_METHOD_SWAV);
  ck_assert_str_eq(c.data.dataset, "cifar100");
  ck_assert_str_eq(c.data.root, "data/c100");
  ck_assert_int_eq(c.data.n_crop_groups, 2);
  ck_assert_int_eq(c.data.nmb_crops[1], 6);
  ck_assert_int_eq(c.data.size_crops[1], 16);
  ck_assert_float_eq(c.data.min_scale[1], 0.05f);
  ck_assert_float_eq(c.data.max_scale[1], 0.14f);
  ck_assert(c.data.has_norm);
  ck_assert_float_eq(c.data.mean[2], 0.406f);
  ck_assert_float_eq(c.data.std[0], 0.228f);
  ck_assert_int_eq(c.model.arch, UNMIX_ARCH_RESNET18_BOTTLENECK);
  ck_assert_int_eq(c.model.stem, UNMIX_STEM_SWAV_CIFAR);
  ck_assert_int_eq(c.model.head, UNMIX_HEAD_SWAV);
  ck_assert_int_eq(c.model.hidden, 512);
  ck_assert_int_eq(c.swav.crops_for_assign[1], 7);
  ck_assert_int_eq(c.swav.reverse, UNMIX_SWAV_REVERSE_PAPER);
  ck_assert(!c.unmix.enabled);
  ck_assert_float_eq(c.unmix.prob, 0.25f);
  ck_assert_float_eq(c.unmix.beta, 0.5f);
  ck_assert_int_eq(c.optim.kind, UNMIX_OPTIM_LARC);
  ck_assert_float_eq(c.optim.lr, 0.6f);
  ck_assert_float_eq(c.optim.weight_decay, 1e-6f);
  ck_assert_int_eq(c.schedule.kind, UNMIX_SCHED_STEP);
  ck_assert_int_eq(c.schedule.n_milestones, 2);
  ck_assert_int_eq(c.schedule.milestones[1], 160);
  ck_assert_int_eq(c.linear.protocol, UNMIX_LINCLS_SWAV_CIFAR);
  ck_assert_int_eq(c.linear.n_milestones, 0);
  ck_assert_int_eq(c.linear.milestones[0], 0);
  ck_assert(c.linear.cosine);
  ck_assert_str_eq(c.paper.table, "swav-cifar-repo");
  ck_assert(c.paper.unmix);
  ck_assert_int_eq(c.paper.epochs, 400);
  unmix_config_free(&c);
}
END_TEST

START_TEST(test_base_chain_deep_merge) {
  put("bases/root.yaml",
      "seed: 1\n"
      "optim: {lr: 0.03, batch_size: 256, weight_decay: 1e-4}\n"
      "schedule: {kind: step, milestones: [120, 160]}\n"
      "moco: {K: 65536}\n");
  put("bases/mid.yaml",
      "base: root.yaml\n"  /* relative to bases/ */
      "seed: 2\n"
      "optim: {lr: 0.05}\n"
      "schedule: {milestones: [100]}\n");
  const char *leaf = put("runs/leaf.yaml",
                         "base: ../bases/mid.yaml\n"
                         "optim:\n"
                         "  batch_size: 512\n"
                         "unmix:\n"  /* empty section: keeps the defaults */
                         "name: leaf\n");
  struct unmix_config c;
  load_ok(leaf, NULL, 0, &c);
  ck_assert_uint_eq(c.seed, 2);                    /* mid wins over root */
  ck_assert_float_eq(c.optim.lr, 0.05f);           /* mid */
  ck_assert_int_eq(c.optim.batch_size, 512);       /* leaf */
  ck_assert_float_eq(c.optim.weight_decay, 1e-4f); /* root, through two merges */
  ck_assert_int_eq(c.schedule.kind, UNMIX_SCHED_STEP);
  ck_assert_int_eq(c.schedule.n_milestones, 1);    /* sequences are replaced, not merged */
  ck_assert_int_eq(c.schedule.milestones[0], 100);
  ck_assert_int_eq(c.schedule.milestones[1], 0);
  ck_assert_int_eq(c.moco.K, 65536);
  ck_assert_float_eq(c.unmix.prob, 0.5f);
  ck_assert(strstr(c.resolved_yaml, "base") == NULL);
  unmix_config_free(&c);
  /* a child's empty section keeps the base's section */
  put("bases/u.yaml", "unmix: {prob: 0.75}\n");
  load_ok(put("bases/u2.yaml", "base: u.yaml\nunmix:\n"), NULL, 0, &c);
  ck_assert_float_eq(c.unmix.prob, 0.75f);
  unmix_config_free(&c);
  /* errors in a base name the base file and its line */
  put("bases/broken.yaml", "seed: 1\noptim:\n  lr: fast\n");
  const char *p = put("child.yaml", "base: bases/broken.yaml\n");
  expect_fail(p, NULL, 0, UNMIX_ERR_CONFIG, "broken.yaml:3:7: key 'optim.lr'", (const char *)NULL);
}
END_TEST

START_TEST(test_base_errors) {
  const char *a = put("cyc/a.yaml", "base: b.yaml\nseed: 1\n");
  put("cyc/b.yaml", "base: c.yaml\n");
  put("cyc/c.yaml", "base: a.yaml\n");
  expect_fail(a, NULL, 0, UNMIX_ERR_CONFIG, "inheritance cycle", "a.yaml -> ", "c.yaml:1:7: key 'base'",
              (const char *)NULL);
  expect_fail(put("self.yaml", "base: self.yaml\n"), NULL, 0, UNMIX_ERR_CONFIG, "inheritance cycle",
              (const char *)NULL);
  expect_fail(put("miss.yaml", "seed: 3\nbase: nowhere/none.yaml\n"), NULL, 0, UNMIX_ERR_IO,
              "miss.yaml:2:7: key 'base'", "nowhere/none.yaml", (const char *)NULL);
  expect_fail(put("badbase.yaml", "base: [a.yaml]\n"), NULL, 0, UNMIX_ERR_CONFIG, "badbase.yaml:1:7: key 'base'",
              (const char *)NULL);
  bad("data:\n  base: x.yaml\n", "unknown key 'data.base'");
  char missing[1100];
  snprintf(missing, sizeof missing, "%s/does-not-exist.yaml", g_dir);
  expect_fail(missing, NULL, 0, UNMIX_ERR_IO, "does-not-exist.yaml", (const char *)NULL);
}
END_TEST

START_TEST(test_overrides) {
  const char *p = put("o.yaml", "base: ob.yaml\nunmix: {prob: 0.1}\n");
  put("ob.yaml", "schedule: {kind: step, milestones: [10]}\n");
  const char *ovr[] = {"unmix.prob=0.25", "schedule.milestones=[60,80]", "name=over", "data.root=/x y/z",
                       "moco.symmetric=false", "unmix.prob=0.3"};
  struct unmix_config c;
  load_ok(p, ovr, 6, &c);
  ck_assert_float_eq(c.unmix.prob, 0.3f); /* overrides apply in order, after inheritance */
  ck_assert_int_eq(c.schedule.n_milestones, 2);
  ck_assert_int_eq(c.schedule.milestones[0], 60);
  ck_assert_int_eq(c.schedule.milestones[1], 80);
  ck_assert_str_eq(c.name, "over");
  ck_assert_str_eq(c.data.root, "/x y/z");
  ck_assert(!c.moco.symmetric);
  unmix_config_free(&c);
  /* an empty value is an empty string for text keys */
  const char *o2[] = {"data.root="};
  load_ok(put("o2.yaml", "data: {root: abc}\n"), o2, 1, &c);
  ck_assert_str_eq(c.data.root, "");
  unmix_config_free(&c);
  /* overriding into a section the file left empty */
  const char *o3[] = {"optim.lr=0.5"};
  load_ok(put("o3.yaml", "optim:\n"), o3, 1, &c);
  ck_assert_float_eq(c.optim.lr, 0.5f);
  unmix_config_free(&c);

  const char *u1[] = {"unmix.probb=0.25"};
  expect_fail(p, u1, 1, UNMIX_ERR_CONFIG, "--set unmix.probb=0.25", "unknown key 'unmix.probb'",
              "did you mean 'unmix.prob'", (const char *)NULL);
  const char *u2[] = {"unmix=0.25"};
  expect_fail(p, u2, 1, UNMIX_ERR_CONFIG, "'unmix' is a section, not a key", "e.g. --set unmix.", (const char *)NULL);
  const char *u2b[] = {"optim=1"}; /* once "unknown key 'optim' (did you mean 'optim'?)" */
  expect_fail(p, u2b, 1, UNMIX_ERR_CONFIG, "--set optim=1: 'optim' is a section, not a key", (const char *)NULL);
  ck_assert_ptr_null(strstr(unmix_error_message(), "did you mean 'optim'"));
  const char *u3[] = {"unmix.prob"};
  expect_fail(p, u3, 1, UNMIX_ERR_CONFIG, "expected key.path=value", (const char *)NULL);
  const char *u4[] = {"unmix.prob=1.5"};
  expect_fail(p, u4, 1, UNMIX_ERR_CONFIG, "--set unmix.prob=1.5: key 'unmix.prob': 1.5 is out of range: must be in [0, 1]",
              (const char *)NULL);
  const char *u5[] = {"schedule.milestones=[60,"};
  expect_fail(p, u5, 1, UNMIX_ERR_CONFIG, "--set schedule.milestones=[60,", "YAML syntax error", (const char *)NULL);
  const char *u6[] = {"unmix.prob=0.2"};
  expect_fail(put("o4.yaml", "unmix: 3\n"), u6, 1, UNMIX_ERR_CONFIG, "'unmix' at", "o4.yaml:1:8",
              "is not a mapping", (const char *)NULL);
  const char *u7[] = {"train.epochs=[1, 2]"};
  expect_fail(p, u7, 1, UNMIX_ERR_CONFIG, "--set train.epochs=[1, 2]: key 'train.epochs': expected an integer, got a list",
              (const char *)NULL);
}
END_TEST

/* Key lookups must stay O(1) per key: a mapping of N keys costs O(N) comparisons to parse
 * (it cost N^2/2 with the linear scan: 80k keys took 30 s). Counted, not timed. */
START_TEST(test_many_keys_parse_in_linear_time) {
  const size_t N = 20000;
  size_t cap = N * 24 + 64, off = 0;
  char *text = malloc(cap);
  off += (size_t)snprintf(text + off, cap - off, "section:\n");
  for (size_t i = 0; i < N; i++) off += (size_t)snprintf(text + off, cap - off, "  key_%zu: %zu\n", i, i);
  unsigned long long before = unmix_ytree_key_compares();
  struct unmix_ynode *t = NULL;
  ck_assert_msg(unmix_ytree_parse(text, off, "many.yaml", &t) == UNMIX_OK, "%s", unmix_error_message());
  unsigned long long used = unmix_ytree_key_compares() - before;
  ck_assert_msg(used <= 4 * N, "%llu key comparisons to parse %zu keys (quadratic?)", used, N);
  const struct unmix_ynode *v = unmix_ytree_find(t, "section.key_12345", NULL);
  ck_assert_ptr_nonnull(v);
  ck_assert_str_eq(v->str, "12345");
  ck_assert_ptr_null(unmix_ytree_find(t, "section.key_20000", NULL));
  unmix_ytree_free(t);
  /* a duplicate among many keys is still found, with both positions */
  off += (size_t)snprintf(text + off, cap - off, "  key_777: 1\n");
  ck_assert_int_eq(unmix_ytree_parse(text, off, "many.yaml", &t), UNMIX_ERR_CONFIG);
  ck_assert_msg(strstr(unmix_error_message(), "duplicate key 'section.key_777' (first at line 779:3)"), "%s",
                unmix_error_message());
  free(text);
}
END_TEST

START_TEST(test_type_errors) {
  bad("seed: 1\noptim:\n  batch_size: big\n", "bad.yaml:3:15: key 'optim.batch_size': expected an integer, got 'big'");
  bad("optim:\n  batch_size: 12.5\n", "key 'optim.batch_size': expected an integer, got '12.5' (a fractional number)");
  bad("optim:\n  batch_size: \"512\"\n", "expected an integer, got the quoted string \"512\"");
  bad("optim:\n  batch_size: 1e3\n", "got '1e3' (write it as an integer)");
  bad("optim:\n  batch_size: 1e400\n", "got '1e400' (out of range for a 32-bit integer)"); /* was "fractional" */
  bad("optim:\n  batch_size: -2.5e10\n", "(out of range for a 32-bit integer)");
  bad("data:\n  prefetch: 100\n", "key 'data.prefetch': 100 is out of range"); /* train's loader takes <= 64 */
  bad("optim:\n  batch_size:\n", "key 'optim.batch_size': expected an integer, got nothing");
  bad("optim:\n  batch_size: 99999999999\n", "does not fit a 32-bit integer");
  bad("optim:\n  lr: '0.1'\n", "key 'optim.lr': expected a number, got the quoted string \"0.1\"");
  bad("optim:\n  lr: .inf\n", "key 'optim.lr': expected a number, got '.inf'");
  bad("optim:\n  lr: 0x10\n", "expected a number, got '0x10'");
  bad("optim:\n  lr: 1e40\n", "not representable as a 32-bit float");
  bad("optim:\n  lr: [0.1]\n", "expected a number, got a list");
  bad("moco:\n  symmetric: yes\n", "bad.yaml:2:14: key 'moco.symmetric': expected true or false, got 'yes'");
  bad("moco:\n  symmetric: 1\n", "expected true or false, got '1'");
  bad("moco:\n  symmetric: \"true\"\n", "expected true or false, got the quoted string");
  bad("seed: -1\n", "key 'seed': -1 is out of range: must be >= 0");
  bad("seed: 18446744073709551616\n", "does not fit a 64-bit unsigned integer");
  bad("name: {a: 1}\n", "key 'name': expected text, got a mapping");
  bad("name: 'has space'\n", "key 'name': 'has space' contains ' '");
  bad("model:\n  arch: resnet-50\n", "bad.yaml:2:9: key 'model.arch': unknown value 'resnet-50' "
                                     "(expected resnet18|resnet34|resnet50|resnet18-bottleneck; did you mean 'resnet50'?)");
  bad("precision: fp16\n", "key 'precision': unknown value 'fp16' (expected fp32|tf32|bf16");
  bad("schedule:\n  kind: cosine_1based\n", "did you mean 'cosine-1based'");
  bad("data:\n  dataset: imagenet\n", "key 'data.dataset': unknown value 'imagenet' (expected cifar10|cifar100|fashion-mnist|imagefolder");
  bad("backend: gpu\n", "key 'backend': unknown value 'gpu'");
  bad("optim: 5\n", "key 'optim': this is a section: expected a mapping of its keys, got '5'");
  bad("schedule:\n  milestones: 60\n", "key 'schedule.milestones': expected a list of integers like [60, 80], got '60'");
  bad("schedule:\n  milestones: [1,2,3,4,5,6,7,8,9]\n", "9 values given; at most 8");
  bad("schedule:\n  milestones: [10, x]\n", "bad.yaml:2:20: key 'schedule.milestones[1]': expected an integer");
  bad("data:\n  mean: [0.5, 0.5]\n", "key 'data.mean': expected [] or 3 numbers");
  bad("data:\n  mean: [0.5, 0.5, 0.5]\n  std: [0.2, 0, 0.2]\n", "key 'data.std[1]': 0 is out of range: must be > 0");
  char longname[300];
  snprintf(longname, sizeof longname, "name: %0200d\n", 7);
  bad(longname, "key 'name': too long (200 bytes; at most 127)");
}
END_TEST

START_TEST(test_range_errors) {
  bad("unmix:\n  prob: 1.5\n", "bad.yaml:2:9: key 'unmix.prob': 1.5 is out of range: must be in [0, 1]");
  bad("unmix:\n  prob: -0.1\n", "key 'unmix.prob': -0.1 is out of range");
  bad("unmix:\n  beta: 0\n", "key 'unmix.beta': 0 is out of range: must be > 0");
  bad("optim:\n  batch_size: 0\n", "key 'optim.batch_size': 0 is out of range: must be in [1, 16777216]");
  bad("train:\n  epochs: 0\n", "key 'train.epochs': 0 is out of range");
  bad("model:\n  width: 0\n", "key 'model.width': 0 is out of range");
  bad("model:\n  sync_bn_group: -8\n", "key 'model.sync_bn_group': -8 is out of range: must be in [0, 1048576]");
  bad("optim:\n  lr: -1\n", "key 'optim.lr': -1 is out of range: must be >= 0");
  bad("optim:\n  momentum: 1.0\n", "key 'optim.momentum': 1.0 is out of range: must be in [0, 1)");
  bad("linear:\n  momentum: 1\n", "key 'linear.momentum': 1 is out of range: must be in [0, 1)");
  bad("moco:\n  T: 0\n", "key 'moco.T': 0 is out of range: must be > 0");
  bad("knn:\n  k: 0\n", "key 'knn.k'");
  bad("data:\n  channels: 2\n", "key 'data.channels': must be 1 or 3, not 2");
  bad("schedule:\n  milestones: [0]\n", "key 'schedule.milestones[0]': 0 is out of range: must be >= 1");
  /* boundaries that are allowed */
  struct unmix_config c;
  load_ok(put("edge.yaml", "unmix: {prob: 0, beta: 1e-3}\noptim: {lr: 0, momentum: 0}\nmoco: {m: 1}\n"), NULL, 0, &c);
  ck_assert_float_eq(c.unmix.prob, 0.0f);
  unmix_config_free(&c);
  load_ok(put("edge2.yaml", "unmix: {prob: 1.0}\n"), NULL, 0, &c);
  ck_assert_float_eq(c.unmix.prob, 1.0f);
  unmix_config_free(&c);
}
END_TEST

START_TEST(test_structure_errors) {
  bad("seed: 1\nunmix:\n  prob: 0.5\n  probb: 0.5\n", "bad.yaml:4:3: unknown key 'unmix.probb' (did you mean 'unmix.prob'?)");
  bad("epochs: 3\n", "bad.yaml:1:1: unknown key 'epochs' (did you mean 'train.epochs'?)");
  bad("moco:\n  k: 3\n", "unknown key 'moco.k' (did you mean 'moco.K'?)");
  bad("unmx:\n  prob: 1\n", "unknown key 'unmx' (did you mean 'unmix'?)");
  bad("totally_unrelated_thing: 1\n", "unknown key 'totally_unrelated_thing' (`unmix validate --keys`");
  bad("unmix.prob: 0.3\n", "a dotted key is not expanded");
  bad("seed: 1\nmodel:\n  dim: 3\nseed: 2\n", "bad.yaml:4:1: duplicate key 'seed' (first at line 1:1)");
  bad("model:\n  dim: 3\n  dim: 4\n", "bad.yaml:3:3: duplicate key 'model.dim' (first at line 2:3)");
  bad("seed: 1\n  bad indent: [\n", "bad.yaml:2:");
  bad("seed: [1, 2\n", "YAML syntax error");
  bad("seed: 1\n\xff\xfe: 2\n", "bad.yaml: YAML error at byte 8: invalid leading UTF-8 octet");
  bad("- 1\n- 2\n", "bad.yaml:1:1: a manifest must be a mapping");
  bad("seed: 1\n---\nseed: 2\n", "a second YAML document");
  bad("seed: !!int 3\n", "YAML tags");
  bad("a: &x [*x]\n", "nesting deeper than");
  bad("data:\n  crops: [{nmb: 2, size: 32, min_scale: 0.2}]\n", "key 'data.crops[0]': missing 'max_scale'");
  bad("data:\n  crops: [{nmb: 2, size: 32, min_scale: 0.2, max_scale: 1, sizes: 3}]\n",
      "unknown key 'data.crops[0].sizes' (did you mean 'size'?)");
  bad("data:\n  crops: [{nmb: 2, size: 32, min_scale: 0.5, max_scale: 0.2}]\n", "min_scale 0.5 is larger than max_scale 0.2");
  bad("data:\n  crops: [{nmb: 0, size: 32, min_scale: 0.5, max_scale: 1}]\n", "key 'data.crops[0].nmb': 0 is out of range");
  bad("data:\n  crops: {nmb: 2}\n", "key 'data.crops': expected a list of 0 to 4 crop groups");
  /* several errors are all reported, one per line */
  const char *p = put("many.yaml", "unmix:\n  prob: 2\noptim:\n  lr: x\nepochz: 1\n");
  expect_fail(p, NULL, 0, UNMIX_ERR_CONFIG, "many.yaml:2:9: key 'unmix.prob'", "\n", "many.yaml:4:7: key 'optim.lr'",
              "many.yaml:5:1: unknown key 'epochz'", (const char *)NULL);
  /* a flood of errors is capped with a count */
  char flood[8192] = "";
  for (int i = 0; i < 60; i++) snprintf(flood + strlen(flood), sizeof flood - strlen(flood), "bogus_key_%02d: 1\n", i);
  bad(flood, "more errors)");
}
END_TEST

START_TEST(test_aliases_are_expanded) {
  struct unmix_config c;
  load_ok(put("alias.yaml", "schedule: {milestones: &ms [30, 40]}\nlinear: {milestones: *ms}\n"), NULL, 0, &c);
  ck_assert_int_eq(c.linear.n_milestones, 2);
  ck_assert_int_eq(c.linear.milestones[1], 40);
  unmix_config_free(&c);
}
END_TEST

START_TEST(test_cross_field_checks) {
  bad("optim:\n  batch_size: 500\n", "bad.yaml:2:15: key 'optim.batch_size': 500 is not a multiple of model.bn_splits 8");
  bad("moco:\n  K: 4000\n", "bad.yaml:2:6: key 'moco.K': 4000 is not a multiple of the 1024 keys enqueued per step "
                             "(optim.batch_size 512 x 2 for moco.symmetric)");
  bad("moco:\n  K: 1536\n", "not a multiple of the 1024 keys");
  /* asymmetric MoCo enqueues one batch per step: 1536 = 3 x 512 is fine */
  struct unmix_config c;
  load_ok(put("asym.yaml", "moco: {K: 1536, symmetric: false}\n"), NULL, 0, &c);
  unmix_config_free(&c);
  /* the default K is checked against an overridden batch and points at the override */
  const char *p = put("k.yaml", "seed: 1\n");
  const char *o[] = {"optim.batch_size=384"};
  expect_fail(p, o, 1, UNMIX_ERR_CONFIG, "--set optim.batch_size=384: key 'moco.K': 4096 is not a multiple of the 768 keys",
              (const char *)NULL);
  bad("method: swav\nmodel: {head: swav}\ndata: {recipe: swav-cifar, crops: [{nmb: 2, size: 32, min_scale: 0.14, "
      "max_scale: 1.0}]}\nswav:\n  crops_for_assign: [0, 2]\n",
      "key 'swav.crops_for_assign': crop index 2 does not exist: data.crops makes 2 crops (indices 0..1)");
  bad("method: swav\nmodel: {head: swav}\nswav:\n  crops_for_assign: []\n", "SwAV needs at least one crop index");
  bad("method: swav\n", "key 'model.head': method swav needs head swav, not linear");
  bad("model: {head: swav}\n", "key 'model.head': method moco needs head linear or mlp, not swav");
  bad("schedule:\n  milestones: [120, 60]\n", "key 'schedule.milestones': milestones must increase: 60 comes after 120");
  bad("linear:\n  milestones: [60, 60]\n", "key 'linear.milestones': milestones must increase");
  bad("data:\n  mean: [0.4, 0.4, 0.4]\n", "bad.yaml:2:9: key 'data.mean': data.mean and data.std go together");
  bad("data:\n  std: [0.2, 0.2, 0.2]\n", "key 'data.std': data.mean and data.std go together");
  bad("schedule: {kind: warmup-cosine, warmup_epochs: 20}\ntrain: {epochs: 10}\n",
      "20 warmup epochs exceed train.epochs 10");
  /* the SwAV-CIFAR reference settings pass */
  load_ok(put("swav.yaml",
              "method: swav\n"
              "data: {recipe: swav-cifar, crops: [{nmb: 2, size: 32, min_scale: 0.14, max_scale: 1.0}]}\n"
              "model: {arch: resnet18-bottleneck, stem: swav-cifar, head: swav, hidden: 512, bn_splits: 1}\n"
              "optim: {kind: larc, lr: 0.6, batch_size: 128, weight_decay: 1e-6}\n"
              "schedule: {kind: warmup-cosine, warmup_epochs: 5, start_warmup: 0, final_lr: 0.0006}\n"
              "train: {epochs: 400}\n"),
          NULL, 0, &c);
  ck_assert_float_eq(c.schedule.final_lr, 0.0006f);
  unmix_config_free(&c);
}
END_TEST

static void zero_ptrs(struct unmix_config *c) {
  unmix_config_free(c);
}

/* Loading the resolved YAML gives a byte-identical config, and dumping it again gives the same text. */
static void check_round_trip(const char *path, const char *const *ovr, int n) {
  struct unmix_config a, b;
  load_ok(path, ovr, n, &a);
  unmix_status st = unmix_manifest_load_string(a.resolved_yaml, "resolved.yaml", NULL, 0, &b);
  ck_assert_msg(st == UNMIX_OK, "reload of the resolved manifest failed: %s\n%s", unmix_error_message(), a.resolved_yaml);
  ck_assert_str_eq(a.resolved_yaml, b.resolved_yaml);
  ck_assert_str_eq(b.source_path, "resolved.yaml");
  zero_ptrs(&a);
  zero_ptrs(&b);
  ck_assert_msg(memcmp(&a, &b, sizeof a) == 0, "round trip changed the config (%s)", path);
}

START_TEST(test_resolved_round_trip) {
  check_round_trip(put("rt0.yaml", ""), NULL, 0);
  const char *p = put("rt1.yaml",
                      "name: rt.1\n"
                      "seed: 123456789012345\n"
                      "backend: cuda\nprecision: fp32\ndeterministic: true\nmethod: swav\n"
                      "data:\n"
                      "  dataset: fashion-mnist\n  root: \"dir with \\\"quotes\\\" and \\\\ and: colon # hash\"\n"
                      "  recipe: test\n  subset: 1000\n  test_subset: 500\n  workers: 3\n  prefetch: 7\n"
                      "  pad_to: 32\n  channels: 1\n  skip_corrupt: true\n  grey_images: true\n"
                      "  crops:\n    - {nmb: 2, size: 224, min_scale: 0.14, max_scale: 1}\n"
                      "    - {nmb: 6, size: 96, min_scale: 0.05, max_scale: 0.14}\n"
                      "  mean: [0.1, -0.25, 3.3333333]\n  std: [1e-3, 0.2, 1]\n"
                      "model: {arch: resnet50, stem: imagenet, width: 32, bn_splits: 1, head: swav, dim: 64,"
                      " hidden: 1024, sync_bn: true, sync_bn_group: 8}\n"
                      "moco: {K: 65536, m: 0.999, T: 0.07, symmetric: false, shuffle_bn: false, mix_once: true}\n"
                      "swav: {nmb_prototypes: 3000, temperature: 0.2, epsilon: 0.03, sinkhorn_iterations: 5,"
                      " crops_for_assign: [1, 0, 7], queue_length: 3840, epoch_queue_starts: 30,"
                      " freeze_prototypes_niters: 313, reverse: paper, sinkhorn: simplified}\n"
                      "simclr: {tau: 0.2}\n"
                      "byol: {tau: 0.996, mix_target: false}\n"
                      "unmix: {enabled: false, prob: 0.3333, beta: 2.5, per_rank: false}\n"
                      "optim: {kind: larc, lr: 4.8, momentum: 0.875, weight_decay: 1.5e-6, batch_size: 4096,"
                      " larc_trust: 0.002, larc_eps: 1e-9, larc_clip: true}\n"
                      "schedule: {kind: warmup-cosine, milestones: [1, 2, 3, 4, 5, 6, 7, 8], gamma: 0.5,"
                      " warmup_epochs: 10, start_warmup: 0.3, final_lr: 4.8e-3, warmup_iters: 7, drops: [9, 3]}\n"
                      "train: {epochs: 800, steps_per_epoch: 17, checkpoint_every: 25, log_every: 50}\n"
                      "knn: {every: 0, k: 20, t: 0.07, bank_subset: 5000, test_subset: 100, features: backbone}\n"
                      "linear: {protocol: imagenet, epochs: 90, lr: 0.1, momentum: 0, weight_decay: 1e-4,"
                      " batch_size: 1024, milestones: [30, 60, 80], cosine: true}\n"
                      "paper: {table: imagenet-linear, dataset: imagenet, method: 'mocov2: \"x\"', variant: '#1',"
                      " unmix: true, epochs: 800, metric: linear_top1}\n");
  check_round_trip(p, NULL, 0);
  const char *o[] = {"unmix.prob=0.1", "seed=42", "data.root=über/naïve"};
  check_round_trip(p, o, 3);
  /* the tricky strings survived */
  struct unmix_config c;
  load_ok(p, NULL, 0, &c);
  ck_assert_str_eq(c.data.root, "dir with \"quotes\" and \\ and: colon # hash");
  ck_assert_str_eq(c.paper.method, "mocov2: \"x\"");
  ck_assert_str_eq(c.paper.variant, "#1");
  ck_assert_float_eq(c.data.mean[2], 3.3333333f);
  /* rt1 gives EVERY key a non-default value, so the round trip above covers every key (a new
   * key must be added to rt1.yaml): each "key: value" line differs from the defaults' dump */
  struct unmix_config dflt;
  unmix_config_init_defaults(&dflt);
  char *dd = unmix_config_to_yaml(&dflt);
  int same = 0, lines = 0;
  for (char *a = c.resolved_yaml, *b = dd; *a && *b; lines++) {
    char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
    ck_assert(ea && eb);
    bool header = ea[-1] == ':';
    if (!header && ea - a == eb - b && !memcmp(a, b, (size_t)(ea - a))) {
      fprintf(stderr, "key keeps its default in rt1.yaml: %.*s\n", (int)(ea - a), a);
      same++;
    }
    a = ea + 1;
    b = eb + 1;
  }
  free(dd);
  ck_assert_int_eq(same, 0);
  ck_assert_int_gt(lines, unmix_config_key_count());
  /* every key appears in the dump */
  for (int i = 0; i < unmix_config_key_count(); i++) {
    const char *key = unmix_config_key_path(i);
    const char *leaf = strrchr(key, '.');
    char needle[80];
    snprintf(needle, sizeof needle, "%s%s: ", leaf ? "\n  " : "", leaf ? leaf + 1 : key);
    ck_assert_msg(strstr(c.resolved_yaml, needle) != NULL, "key %s missing from the dump", key);
  }
  unmix_config_free(&c);
}
END_TEST

START_TEST(test_load_string) {
  struct unmix_config c;
  const char *o[] = {"knn.k=50"};
  ck_assert_int_eq(unmix_manifest_load_string("seed: 9\n", "<resume>", o, 1, &c), UNMIX_OK);
  ck_assert_uint_eq(c.seed, 9);
  ck_assert_int_eq(c.knn.k, 50);
  ck_assert_str_eq(c.name, ""); /* only a file gives a stem */
  unmix_config_free(&c);
  ck_assert_int_eq(unmix_manifest_load_string("seed: x\n", "run/manifest.yaml", NULL, 0, &c), UNMIX_ERR_CONFIG);
  ck_assert(strstr(unmix_error_message(), "run/manifest.yaml:1:7: key 'seed'") != NULL);
  /* base: relative to the name's directory */
  put("sub/base.yaml", "seed: 77\n");
  char name[1100];
  snprintf(name, sizeof name, "%s/sub/inline.yaml", g_dir);
  ck_assert_int_eq(unmix_manifest_load_string("base: base.yaml\n", name, NULL, 0, &c), UNMIX_OK);
  ck_assert_uint_eq(c.seed, 77);
  unmix_config_free(&c);
}
END_TEST

START_TEST(test_enum_helpers_and_suggest) {
  ck_assert_str_eq(unmix_arch_name(UNMIX_ARCH_RESNET18_BOTTLENECK), "resnet18-bottleneck");
  ck_assert_str_eq(unmix_sched_name(UNMIX_SCHED_WARMUP_COSINE), "warmup-cosine");
  ck_assert_str_eq(unmix_precision_name(UNMIX_PREC_BF16), "bf16");
  ck_assert_str_eq(unmix_method_name(UNMIX_METHOD_SWAV), "swav");
  ck_assert_str_eq(unmix_stem_name(UNMIX_STEM_SWAV_CIFAR), "swav-cifar");
  ck_assert_str_eq(unmix_head_name(UNMIX_HEAD_MLP), "mlp");
  ck_assert_str_eq(unmix_optim_name(UNMIX_OPTIM_LARC), "larc");
  ck_assert_str_eq(unmix_swav_reverse_name(UNMIX_SWAV_REVERSE_PAPER), "paper");
  ck_assert_str_eq(unmix_lincls_name(UNMIX_LINCLS_MOCO_CIFAR), "moco-cifar");
  ck_assert_int_eq(unmix_config_enum_parse("model.head", "mlp"), UNMIX_HEAD_MLP);
  ck_assert_int_eq(unmix_config_enum_parse("model.head", "MLP"), -1);
  ck_assert_int_eq(unmix_config_enum_parse("optim.lr", "sgd"), -1);
  ck_assert(unmix_config_has_key("swav.reverse"));
  ck_assert(!unmix_config_has_key("swav"));
  ck_assert_str_eq(unmix_config_suggest("optim.batchsize"), "optim.batch_size");
  ck_assert_str_eq(unmix_config_suggest("lr"), "optim.lr");
  ck_assert_ptr_null(unmix_config_suggest("qqqqqqqqqqqq"));
  /* sections are contiguous in the table (the dump relies on it) */
  char seen[32][16];
  int ns = 0;
  char prev[16] = "";
  for (int i = 0; i < unmix_config_key_count(); i++) {
    const char *k = unmix_config_key_path(i), *dot = strchr(k, '.');
    char sec[16] = "";
    if (dot) snprintf(sec, sizeof sec, "%.*s", (int)(dot - k), k);
    if (strcmp(sec, prev) != 0) {
      for (int j = 0; j < ns; j++) ck_assert_msg(strcmp(seen[j], sec) != 0 || !sec[0], "section %s split", sec);
      snprintf(seen[ns++], 16, "%s", sec);
      snprintf(prev, sizeof prev, "%s", sec);
    }
  }
}
END_TEST

START_TEST(test_validate_command) {
  const char *bin = getenv("UNMIX_BIN");
  if (!bin) {
    printf("SKIPPED (UNMIX_BIN not set; run through ctest): test_validate_command\n");
    return;
  }
  const char *good = put("good.yaml", "seed: 3\n");
  const char *badf = put("badv.yaml", "unmix:\n  prob: 7\n");
  char cmd[4096], *out = NULL;
  snprintf(cmd, sizeof cmd, "'%s' validate '%s' 2>&1", bin, good);
  ck_assert_int_eq(unmix_test_sh(cmd, &out), 0);
  ck_assert_msg(strstr(out, "good.yaml: ok") != NULL, "%s", out);
  free(out);
  snprintf(cmd, sizeof cmd, "'%s' validate '%s' '%s' 2>&1", bin, good, badf);
  ck_assert_int_eq(unmix_test_sh(cmd, &out), 1);
  ck_assert_msg(strstr(out, "good.yaml: ok") && strstr(out, "badv.yaml:2:9: key 'unmix.prob'"), "%s", out);
  free(out);
  snprintf(cmd, sizeof cmd, "'%s' validate '%s' --set unmix.prob=0.2 --print 2>&1", bin, badf);
  ck_assert_int_eq(unmix_test_sh(cmd, &out), 0);
  ck_assert_msg(strstr(out, "badv.yaml: ok") && strstr(out, "  prob: 0.2\n"), "%s", out);
  free(out);
  snprintf(cmd, sizeof cmd, "'%s' validate '%s' --set=unmix.pro=0.2 2>&1", bin, good);
  ck_assert_int_eq(unmix_test_sh(cmd, &out), 1);
  ck_assert_msg(strstr(out, "did you mean 'unmix.prob'"), "%s", out);
  free(out);
  snprintf(cmd, sizeof cmd, "'%s' validate --help", bin);
  ck_assert_int_eq(unmix_test_sh(cmd, &out), 0);
  ck_assert(strstr(out, "usage: unmix validate") != NULL);
  free(out);
  snprintf(cmd, sizeof cmd, "'%s' validate --keys", bin);
  ck_assert_int_eq(unmix_test_sh(cmd, &out), 0);
  ck_assert(strstr(out, "unmix.prob") && strstr(out, "in [0, 1]"));
  free(out);
  snprintf(cmd, sizeof cmd, "'%s' validate 2>&1", bin);
  ck_assert_int_eq(unmix_test_sh(cmd, &out), 2);
  free(out);
  snprintf(cmd, sizeof cmd, "'%s' validate --bogus x.yaml 2>&1", bin);
  ck_assert_int_eq(unmix_test_sh(cmd, &out), 2);
  free(out);
}
END_TEST

static Suite *manifest_suite(void) {
  Suite *s = suite_create("manifest");
  TCase *tc = tcase_create("manifest");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_defaults_match_reference);
  tcase_add_test(tc, test_empty_manifest_gives_defaults_and_stem_name);
  tcase_add_test(tc, test_values_bind);
  tcase_add_test(tc, test_base_chain_deep_merge);
  tcase_add_test(tc, test_base_errors);
  tcase_add_test(tc, test_overrides);
  tcase_add_test(tc, test_type_errors);
  tcase_add_test(tc, test_many_keys_parse_in_linear_time);
  tcase_add_test(tc, test_range_errors);
  tcase_add_test(tc, test_structure_errors);
  tcase_add_test(tc, test_aliases_are_expanded);
  tcase_add_test(tc, test_cross_field_checks);
  tcase_add_test(tc, test_resolved_round_trip);
  tcase_add_test(tc, test_load_string);
  tcase_add_test(tc, test_enum_helpers_and_suggest);
  tcase_add_test(tc, test_validate_command);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(manifest_suite)
