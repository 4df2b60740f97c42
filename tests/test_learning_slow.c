/* Proof that the gradients train (not just that the code runs): a few hundred steps of
 * symmetric MoCo + Un-Mix on a real Fashion-MNIST subset (Debian's dataset-fashion-mnist)
 * with a narrow ResNet-18 must (1) lower the contrastive loss of the views, (2) raise the
 * instance-discrimination top-1 well above its first-epoch value, and (3) raise the kNN
 * top-1 well above that of the untrained network (measured by a run with lr 0). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io/csv.h"
#include "experiments/trainer.h"
#include "tests/support/testutil.h"

static double col(const struct unmix_csv_table *t, size_t row, const char *name) {
  double v = -1;
  ck_assert_msg(unmix_csv_get_double(t, row, name, &v) == UNMIX_OK, "%s", unmix_error_message());
  return v;
}

static int run(const char *out, const char *const *sets, int nsets) {
  char man[1024];
  snprintf(man, sizeof man, "%s/configs/fmnist/moco_sym_unmix.yaml", UNMIX_SOURCE_DIR);
  struct unmix_train_options o = {0};
  o.manifest = man;
  o.overrides = sets;
  o.n_overrides = nsets;
  o.out_dir = out;
  o.quiet = true;
  return unmix_train(&o);
}

START_TEST(test_moco_unmix_learns_on_fashion_mnist) {
  char *tmp = unmix_test_tmpdir("learn");
  char trained[600], initial[600], p[700];
  snprintf(trained, sizeof trained, "%s/trained", tmp);
  snprintf(initial, sizeof initial, "%s/initial", tmp);
  const char *common[] = {"data.subset=8192", "model.width=8", "optim.batch_size=64", "moco.K=256",
                          "knn.bank_subset=2048", "knn.test_subset=500", "data.workers=2"};
  const int nc = (int)(sizeof common / sizeof common[0]);
  const char *sets[16];
  memcpy(sets, common, sizeof common);
  sets[nc] = "train.epochs=10";
  sets[nc + 1] = "train.steps_per_epoch=30";
  sets[nc + 2] = "knn.every=10";
  ck_assert_int_eq(run(trained, sets, nc + 3), 0);
  memcpy(sets, common, sizeof common);
  sets[nc] = "train.epochs=1";
  sets[nc + 1] = "train.steps_per_epoch=1";
  sets[nc + 2] = "optim.lr=0";
  sets[nc + 3] = "knn.every=1";
  ck_assert_int_eq(run(initial, sets, nc + 4), 0);

  struct unmix_csv_table *t = NULL, *t0 = NULL;
  snprintf(p, sizeof p, "%s/metrics.csv", trained);
  ck_assert(unmix_csv_read(p, &t) == UNMIX_OK);
  snprintf(p, sizeof p, "%s/metrics.csv", initial);
  ck_assert(unmix_csv_read(p, &t0) == UNMIX_OK);
  ck_assert_int_eq(t->nrows, 10);
  double first_loss = col(t, 0, "loss_main"), last_loss = col(t, 9, "loss_main");
  double first_acc = col(t, 0, "inst_top1"), best_acc = 0;
  for (size_t r = 0; r < t->nrows; r++) {
    double a = col(t, r, "inst_top1");
    if (a > best_acc) best_acc = a;
  }
  double knn0 = col(t0, 0, "knn_top1"), knn = col(t, 9, "knn_top1");
  printf("learning: loss_main %.4f -> %.4f, inst_top1 first %.2f%% best %.2f%%, kNN %.2f%% -> %.2f%%\n", first_loss,
         last_loss, first_acc, best_acc, knn0, knn);
  ck_assert_msg(last_loss < 0.95 * first_loss, "contrastive loss did not fall: %.4f -> %.4f", first_loss, last_loss);
  ck_assert_msg(best_acc > 1.8 * first_acc, "instance top-1 did not rise: first %.2f%%, best %.2f%%", first_acc,
                best_acc);
  ck_assert_msg(knn > knn0 + 8.0, "kNN top-1 %.2f%% is not well above the untrained network's %.2f%%", knn, knn0);
  unmix_csv_table_free(t);
  unmix_csv_table_free(t0);
  unmix_test_rmdir(tmp);
  free(tmp);
}
END_TEST

static Suite *learning_suite(void) {
  Suite *s = suite_create("learning");
  TCase *tc = tcase_create("fashion-mnist");
  tcase_set_timeout(tc, 1800);
  tcase_add_test(tc, test_moco_unmix_learns_on_fashion_mnist);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(learning_suite)
