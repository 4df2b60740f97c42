/* Shared scaffolding of the learning tests (see learning.h): the runs through unmix_train, as
 * `unmix train configs/fmnist/M --set ...` would run them, quiet, into one temporary directory. */
#include "tests/support/learning.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "experiments/trainer.h"
#include "tests/support/testutil.h"

enum { LEARN_MAX_SETS = 32 };

double unmix_learn_col(const struct unmix_csv_table *t, size_t row, const char *name) {
  double v = -1;
  ck_assert_msg(unmix_csv_get_double(t, row, name, &v) == UNMIX_OK, "%s", unmix_error_message());
  return v;
}

static void train(const char *manifest, const char *out, const char *const *sets, int nsets) {
  char man[1024];
  snprintf(man, sizeof man, "%s/configs/fmnist/%s", UNMIX_SOURCE_DIR, manifest);
  struct unmix_train_options o = {0};
  o.manifest = man;
  o.overrides = sets;
  o.n_overrides = nsets;
  o.out_dir = out;
  o.quiet = true;
  ck_assert_msg(unmix_train(&o) == 0, "training %s into %s failed: %s", manifest, out, unmix_error_message());
}

static struct unmix_csv_table *metrics(const char *dir) {
  char p[700];
  snprintf(p, sizeof p, "%s/metrics.csv", dir);
  struct unmix_csv_table *t = NULL;
  ck_assert_msg(unmix_csv_read(p, &t) == UNMIX_OK, "%s", unmix_error_message());
  return t;
}

void unmix_learn_runs(const char *tag, const char *manifest, const char *const *common, int n_common, int epochs,
                      int steps_per_epoch, int knn_every, int control_steps, struct unmix_learn_runs *r) {
  ck_assert_int_le(n_common + 4, LEARN_MAX_SETS);
  memset(r, 0, sizeof *r);
  r->tmp = unmix_test_tmpdir(tag);
  char trained[600], initial[600], control[600], ep[48], spe[48], ke[48], cs[48];
  snprintf(trained, sizeof trained, "%s/trained", r->tmp);
  snprintf(initial, sizeof initial, "%s/initial", r->tmp);
  snprintf(control, sizeof control, "%s/control", r->tmp);
  snprintf(ep, sizeof ep, "train.epochs=%d", epochs);
  snprintf(spe, sizeof spe, "train.steps_per_epoch=%d", steps_per_epoch);
  snprintf(ke, sizeof ke, "knn.every=%d", knn_every);
  const char *sets[LEARN_MAX_SETS];
  memcpy(sets, common, (size_t)n_common * sizeof *sets);
  int ns = n_common;
  sets[ns++] = ep;
  sets[ns++] = spe;
  sets[ns++] = ke;
  train(manifest, trained, sets, ns);
  ns = n_common;
  sets[ns++] = "train.epochs=1";
  sets[ns++] = "train.steps_per_epoch=1";
  sets[ns++] = "optim.lr=0";
  sets[ns++] = "knn.every=1";
  train(manifest, initial, sets, ns);
  r->trained = metrics(trained);
  r->initial = metrics(initial);
  ck_assert_int_eq((int)r->trained->nrows, epochs);
  ck_assert_int_eq((int)r->initial->nrows, 1);
  if (control_steps > 0) {
    snprintf(cs, sizeof cs, "train.steps_per_epoch=%d", control_steps);
    sets[n_common + 1] = cs; /* the initial run's settings, `control_steps` steps instead of 1 */
    train(manifest, control, sets, ns);
    r->control = metrics(control);
    ck_assert_int_eq((int)r->control->nrows, 1);
  }
}

void unmix_learn_free(struct unmix_learn_runs *r) {
  unmix_csv_table_free(r->trained);
  unmix_csv_table_free(r->initial);
  unmix_csv_table_free(r->control);
  if (r->tmp) unmix_test_rmdir(r->tmp);
  free(r->tmp);
  memset(r, 0, sizeof *r);
}
