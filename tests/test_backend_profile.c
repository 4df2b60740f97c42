/* The op profiler (core/backend/profile.c): the wrapped table forwards every argument to the
 * real op (same results, bit for bit), counts each call once under its op, leaves the plain
 * table untouched, and `unmix bench step --profile` prints the per-family table. Also the
 * benchmark scripts' guards: OMP_WAIT_POLICY's default for `train` and `bench step`, and
 * tools/bench-cpu.sh refusing a batch its SplitBatchNorm cannot split. */
#include "core/backend/profile.h"
#include "experiments/commands.h"
#include "tests/test_backend_common.h"

START_TEST(test_profile_forwards_and_counts) {
  const struct unmix_backend *cpu = unmix_test_cpu();
  const struct unmix_backend *be = unmix_profile_wrap(cpu);
  ck_assert_ptr_ne(be, cpu);
  ck_assert_str_eq(be->name, "cpu");
  struct unmix_conv_geom g;
  unmix_conv_geom_init(&g, 2, 7, 5, 3, 4, 3, 3, 1, 1);
  const size_t nx = 2 * 7 * 5 * 3, nw = 4 * 27, ny = 2 * 7 * 5 * 4;
  float *x = ops_rand(nx, 1, -1, 1), *w = ops_rand(nw, 2, -1, 1), *y0 = ops_const(ny, 0), *y1 = ops_const(ny, 0);
  cpu->conv2d_forward(&g, x, w, y0);
  for (int i = 0; i < 3; i++) be->conv2d_forward(&g, x, w, y1);
  ck_assert_msg(memcmp(y0, y1, ny * sizeof(float)) == 0, "the wrapped conv gives another result");
  /* an op with many scalar arguments of one type: a swapped argument would show */
  float *c0 = ops_rand(35, 3, -1, 1), *c1 = ops_const(35, 0);
  memcpy(c1, c0, 35 * sizeof(float));
  cpu->gemm(true, false, 5, 7, 3, 0.5f, x, 5, w, 7, 0.25f, c0, 7);
  be->gemm(true, false, 5, 7, 3, 0.5f, x, 5, w, 7, 0.25f, c1, 7);
  ck_assert_msg(memcmp(c0, c1, 35 * sizeof(float)) == 0, "the wrapped gemm gives another result");
  ck_assert_int_eq(unmix_profile_calls(UNMIX_OP_CONV2D_FORWARD), 3);
  ck_assert_int_eq(unmix_profile_calls(UNMIX_OP_GEMM), 1);
  ck_assert_int_eq(unmix_profile_calls(UNMIX_OP_RELU_FORWARD), 0);
  ck_assert(unmix_profile_seconds(UNMIX_OP_CONV2D_FORWARD) > 0.0);
  /* the plain table is not timed */
  cpu->conv2d_forward(&g, x, w, y0);
  ck_assert_int_eq(unmix_profile_calls(UNMIX_OP_CONV2D_FORWARD), 3);
  ck_assert_str_eq(unmix_op_phase(UNMIX_OP_CONV2D_BACKWARD_DATA), "backward");
  ck_assert_str_eq(unmix_op_phase(UNMIX_OP_BATCHNORM_FORWARD_TRAIN), "forward");
  ck_assert_str_eq(unmix_op_phase(UNMIX_OP_SGD_STEP), "other");
  unmix_profile_reset();
  ck_assert_int_eq(unmix_profile_calls(UNMIX_OP_CONV2D_FORWARD), 0);
  unmix_guarded_free(x); unmix_guarded_free(w); unmix_guarded_free(y0); unmix_guarded_free(y1);
  unmix_guarded_free(c0); unmix_guarded_free(c1);
}
END_TEST

/* One tiny step through the command: the table lists the conv and norm families in both
 * phases and the time outside the ops. */
START_TEST(test_bench_step_profile_table) {
  char man[1024];
  unmix_test_src_path("configs/cifar10/moco_sym_unmix.yaml", man, sizeof man);
  char args[1400];
  snprintf(args, sizeof args,
           "bench step %s --batch 4 --steps 1 --warmup 0 --profile --set model.width=4 --set model.bn_splits=2 "
           "--set moco.K=16 --set precision=fp32",
           man);
  char *out = unmix_test_run_expect("/", 0, "profile: time per op family and phase", args);
  unmix_test_expect(out, "conv         forward");
  unmix_test_expect(out, "conv         backward");
  unmix_test_expect(out, "norm         backward");
  unmix_test_expect(out, "outside ops");
  free(out);
}
END_TEST

/* tools/bench-cpu.sh takes its python from --python, $PYTHON or python3 (never a path outside
 * the repository), and without torch it times ours alone, says why, and ends with n/a ratios.
 * One step per precision of a tiny model (width 4): the figures themselves are not checked. */
START_TEST(test_bench_cpu_script_without_torch) {
  char script[1024], cmd[3072];
  unmix_test_src_path("tools/bench-cpu.sh", script, sizeof script);
  const char *bin = getenv("UNMIX_BIN");
  ck_assert_msg(bin != NULL, "UNMIX_BIN is not set (run through ctest)");
  snprintf(cmd, sizeof cmd,
           "PYTHON=/nonexistent/python3 %s --unmix %s --batch 8 --steps 1 --warmup 0 --rounds 1 --threads 1 "
           "--set model.width=4 --set moco.K=16 2>&1",
           script, bin);
  char *out = NULL;
  const int st = unmix_test_sh(cmd, &out);
  ck_assert_msg(st == 0, "bench-cpu.sh: exit %d:\n%s", st, unmix_test_tail(out));
  unmix_test_expect(out, "pytorch: missing (no python at /nonexistent/python3)");
  unmix_test_expect(out, "--python PATH or PYTHON=PATH");
  unmix_test_expect(out, "ratio fp32 n/a\nratio bf16 n/a");
  free(out);
}
END_TEST

/* OMP_WAIT_POLICY: PASSIVE for `train` and `bench step` when unset (the program re-executes so
 * that the OpenMP runtime reads it), the user's value otherwise, other commands untouched. */
START_TEST(test_omp_wait_policy_default) {
  char *saved = getenv("OMP_WAIT_POLICY") ? strdup(getenv("OMP_WAIT_POLICY")) : NULL;
  unsetenv("OMP_WAIT_POLICY");
  char *train[] = {"unmix", "train", "m.yaml", NULL}, *step[] = {"unmix", "bench", "step", "m.yaml", NULL},
       *ops[] = {"unmix", "bench", "ops", NULL}, *info[] = {"unmix", "info", NULL};
  ck_assert(unmix_omp_passive_wanted(3, train));
  ck_assert(unmix_omp_passive_wanted(4, step));
  ck_assert(!unmix_omp_passive_wanted(3, ops));
  ck_assert(!unmix_omp_passive_wanted(2, info));
  setenv("OMP_WAIT_POLICY", "ACTIVE", 1);
  ck_assert(!unmix_omp_passive_wanted(3, train));
  if (saved) setenv("OMP_WAIT_POLICY", saved, 1);
  else unsetenv("OMP_WAIT_POLICY");
  free(saved);

  const char *bin = getenv("UNMIX_BIN");
  ck_assert_msg(bin != NULL, "UNMIX_BIN is not set (run through ctest)");
  char man[1024], cmd[3072];
  unmix_test_src_path("configs/cifar10/moco_sym_unmix.yaml", man, sizeof man);
  const char *envs[2] = {"env -u OMP_WAIT_POLICY -u UNMIX_OMP_WAIT_DEFAULTED", "env OMP_WAIT_POLICY=ACTIVE"};
  const char *want[2] = {"openmp: OMP_WAIT_POLICY PASSIVE (unmix's default when unset)\n",
                         "openmp: OMP_WAIT_POLICY ACTIVE\n"};
  for (int i = 0; i < 2; i++) {
    snprintf(cmd, sizeof cmd,
             "%s %s bench step %s --batch 4 --steps 1 --warmup 0 --set model.width=4 --set model.bn_splits=2 "
             "--set moco.K=16 --set precision=fp32 2>&1",
             envs[i], bin, man);
    char *out = NULL;
    const int st = unmix_test_sh(cmd, &out);
    ck_assert_msg(st == 0, "bench step: exit %d:\n%s", st, unmix_test_tail(out));
    unmix_test_expect(out, want[i]);
    free(out);
  }
}
END_TEST

/* tools/bench-cpu.sh refuses, before timing anything, a batch that the manifest's SplitBatchNorm
 * (8 splits, or model.bn_splits from --set) cannot divide. */
START_TEST(test_bench_cpu_script_batch_check) {
  char script[1024], cmd[3072];
  unmix_test_src_path("tools/bench-cpu.sh", script, sizeof script);
  const char *bin = getenv("UNMIX_BIN");
  ck_assert_msg(bin != NULL, "UNMIX_BIN is not set (run through ctest)");
  snprintf(cmd, sizeof cmd, "PYTHON=/nonexistent/python3 %s --unmix %s --batch 12 --steps 1 2>&1", script, bin);
  char *out = NULL;
  int st = unmix_test_sh(cmd, &out);
  ck_assert_msg(st == 2, "bench-cpu.sh --batch 12: exit %d, expected 2:\n%s", st, unmix_test_tail(out));
  unmix_test_expect(out, "bench-cpu.sh: --batch 12 is not a multiple of the 8 BN splits");
  ck_assert_msg(!strstr(out, "== runs"), "bench-cpu.sh timed something before refusing:\n%s", unmix_test_tail(out));
  free(out);
  /* the splits come from --set model.bn_splits when given */
  snprintf(cmd, sizeof cmd, "%s --unmix %s --batch 10 --set model.bn_splits=4 2>&1", script, bin);
  st = unmix_test_sh(cmd, &out);
  ck_assert_msg(st == 2, "bench-cpu.sh --batch 10 with 4 splits: exit %d, expected 2:\n%s", st, unmix_test_tail(out));
  unmix_test_expect(out, "bench-cpu.sh: --batch 10 is not a multiple of the 4 BN splits");
  free(out);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("backend_profile");
  TCase *tc = tcase_create("profile");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_profile_forwards_and_counts);
  tcase_add_test(tc, test_bench_step_profile_table);
  tcase_add_test(tc, test_bench_cpu_script_without_torch);
  tcase_add_test(tc, test_omp_wait_policy_default);
  tcase_add_test(tc, test_bench_cpu_script_batch_check);
  suite_add_tcase(s, tc);
  return s;
}

UNMIX_TEST_MAIN(make_suite)
