/* Proof that the gradients train (not just that the code runs): a few hundred steps of
 * symmetric MoCo + Un-Mix on a real Fashion-MNIST subset (Debian's dataset-fashion-mnist)
 * with a narrow ResNet-18 must (1) lower the contrastive loss of the views, (2) raise the
 * instance-discrimination top-1 well above its first-epoch value, and (3) raise the kNN
 * top-1 well above that of the untrained network (measured by a run with lr 0). */
#include <stdio.h>

#include "tests/support/learning.h"
#include "tests/support/testutil.h"

START_TEST(test_moco_unmix_learns_on_fashion_mnist) {
  const char *common[] = {"data.subset=8192", "model.width=8", "optim.batch_size=64", "moco.K=256",
                          "knn.bank_subset=2048", "knn.test_subset=500", "data.workers=2"};
  struct unmix_learn_runs r;
  unmix_learn_runs("learn", "moco_sym_unmix.yaml", common, (int)(sizeof common / sizeof common[0]), 10, 30, 10, 0, &r);
  const struct unmix_csv_table *t = r.trained;
  double first_loss = unmix_learn_col(t, 0, "loss_main"), last_loss = unmix_learn_col(t, 9, "loss_main");
  double first_acc = unmix_learn_col(t, 0, "inst_top1"), best_acc = 0;
  for (size_t row = 0; row < t->nrows; row++) {
    double a = unmix_learn_col(t, row, "inst_top1");
    if (a > best_acc) best_acc = a;
  }
  double knn0 = unmix_learn_col(r.initial, 0, "knn_top1"), knn = unmix_learn_col(t, 9, "knn_top1");
  printf("learning: loss_main %.4f -> %.4f, inst_top1 first %.2f%% best %.2f%%, kNN %.2f%% -> %.2f%%\n", first_loss,
         last_loss, first_acc, best_acc, knn0, knn);
  ck_assert_msg(last_loss < 0.95 * first_loss, "contrastive loss did not fall: %.4f -> %.4f", first_loss, last_loss);
  ck_assert_msg(best_acc > 1.8 * first_acc, "instance top-1 did not rise: first %.2f%%, best %.2f%%", first_acc,
                best_acc);
  ck_assert_msg(knn > knn0 + 8.0, "kNN top-1 %.2f%% is not well above the untrained network's %.2f%%", knn, knn0);
  unmix_learn_free(&r);
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
