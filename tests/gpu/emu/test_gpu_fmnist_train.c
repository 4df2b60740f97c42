/* `unmix train --backend cuda` against `unmix train --backend cpu`: one short epoch of the
 * Fashion-MNIST demo manifest (MoCo + Un-Mix, fp32, deterministic), from the same seed and data,
 * through the whole command (data loader, uploads, method, optimiser, kNN monitor, checkpoint).
 * Every step's loss must agree within the GPU training suite's 1e-3 relative. Runs on a GPU and on
 * the emulated CUDA device (UNMIX_CUDA=EMU); skipped by name where neither is present. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io/csv.h"
#include "tests/support/testutil.h"

static double cell(const struct unmix_csv_table *t, size_t row, const char *col) {
  double v = NAN;
  ck_assert_msg(unmix_csv_get_double(t, row, col, &v) == UNMIX_OK, "%s", unmix_error_message());
  return v;
}

static struct unmix_csv_table *read_csv(const char *dir, const char *name) {
  struct unmix_csv_table *t = NULL;
  const char *p = unmix_test_path(dir, name);
  ck_assert_msg(unmix_csv_read(p, &t) == UNMIX_OK, "%s: %s", p, unmix_error_message());
  return t;
}

static void train(const char *tmp, const char *backend, int steps) {
  char *out = NULL;
  // Small enough for the emulator; the same for both backends, so the comparison is exact in kind.
  int rc = unmix_test_unmix(tmp, &out,
                            "train %s/configs/fmnist/moco_sym_unmix.yaml --backend %s --out %s/%s "
                            "--set precision=fp32 --set deterministic=true --set model.width=4 "
                            "--set optim.batch_size=16 --set moco.K=64 --set data.subset=512 --set data.workers=1 "
                            "--set train.epochs=1 --set train.steps_per_epoch=%d --set knn.bank_subset=128 "
                            "--set knn.test_subset=32",
                            UNMIX_SOURCE_DIR, backend, tmp, backend, steps);
  ck_assert_msg(rc == 0, "unmix train --backend %s exited with %d:\n%s", backend, rc, unmix_test_tail(out));
  free(out);
}

START_TEST(test_gpu_fmnist_one_epoch_matches_cpu) {
  if (!unmix_test_cuda_or_skip("fmnist_one_epoch_matches_cpu")) return;
  char *tmp = unmix_test_tmpdir("fmnist-gpu");
  const char *small = getenv("UNMIX_GPU_TEST_SMALL");
  const int steps = small && *small && strcmp(small, "0") != 0 ? 3 : 8;
  train(tmp, "cpu", steps);
  train(tmp, "cuda", steps);
  struct unmix_csv_table *sc = read_csv(unmix_test_path(tmp, "cpu"), "steps.csv");
  struct unmix_csv_table *sg = read_csv(unmix_test_path(tmp, "cuda"), "steps.csv");
  ck_assert_uint_eq(sc->nrows, (size_t)steps);
  ck_assert_uint_eq(sg->nrows, (size_t)steps);
  double worst = 0.0;
  for (size_t i = 0; i < sc->nrows; i++) {
    double lc = cell(sc, i, "loss"), lg = cell(sg, i, "loss");
    ck_assert_msg(isfinite(lc) && isfinite(lg), "step %zu: loss cpu %g cuda %g", i, lc, lg);
    // The Un-Mix draw (mode, lambda) comes from host Philox: it must be identical.
    ck_assert_double_eq(cell(sc, i, "lam"), cell(sg, i, "lam"));
    double rel = fabs(lg - lc) / fabs(lc);
    printf("gpu-check fmnist train step %zu cpu %.9g cuda %.9g err %.3g tol 1e-3 %s\n", i, lc, lg, rel,
           rel <= 1e-3 ? "ok" : "FAIL");
    if (rel > worst) worst = rel;
  }
  ck_assert_msg(worst <= 1e-3, "cuda loss curve differs from the cpu's by %.3g relative", worst);
  struct unmix_csv_table *mc = read_csv(unmix_test_path(tmp, "cpu"), "metrics.csv");
  struct unmix_csv_table *mg = read_csv(unmix_test_path(tmp, "cuda"), "metrics.csv");
  ck_assert_uint_eq(mc->nrows, 1);
  ck_assert_uint_eq(mg->nrows, 1);
  double kc = cell(mc, 0, "knn_top1"), kg = cell(mg, 0, "knn_top1");
  printf("gpu-check fmnist train kNN top-1 cpu %.2f cuda %.2f\n", kc, kg);
  // 32 test images: agreeing features give the same neighbours except for near-ties.
  ck_assert_msg(fabs(kc - kg) <= 100.0 * 2 / 32 + 1e-9, "kNN top-1 cpu %.2f%% vs cuda %.2f%%", kc, kg);
  unmix_csv_table_free(sc);
  unmix_csv_table_free(sg);
  unmix_csv_table_free(mc);
  unmix_csv_table_free(mg);
  unmix_test_rmdir(tmp);
  free(tmp);
}
END_TEST

static Suite *fmnist_train_suite(void) {
  Suite *s = suite_create("gpu_fmnist_train");
  TCase *tc = tcase_create("cpu_vs_gpu");
  tcase_set_timeout(tc, 1200);
  tcase_add_test(tc, test_gpu_fmnist_one_epoch_matches_cpu);
  suite_add_tcase(s, tc);
  return s;
}

UNMIX_TEST_MAIN(fmnist_train_suite)
