/* Shared scaffolding of the learning tests (tests/test_learning*_slow.c): a manifest under
 * configs/fmnist/ trained for a few epochs and, from the same initialisation, one step at lr 0
 * (the untrained network under the same kNN evaluation) and optionally an epoch at lr 0 (the
 * untrained weights with estimated BatchNorm statistics), the runs' metrics.csv read back. */
#pragma once
#include <stddef.h>

#include "core/io/csv.h"

struct unmix_learn_runs {
  char *tmp;                        /* the temporary directory holding both runs */
  struct unmix_csv_table *trained;  /* one row per epoch */
  struct unmix_csv_table *initial;  /* one row: the untrained network (1 step at lr 0) */
  struct unmix_csv_table *control;  /* one row: `control_steps` steps at lr 0 (NULL when 0): the
                                     * untrained weights, whose BatchNorm running statistics are
                                     * estimated from the training views as the trained run's are,
                                     * where after one step they are still ~ the init's (0, 1) */
};

/* Runs configs/fmnist/`manifest` with the `common` overrides plus `epochs` epochs of
 * `steps_per_epoch` steps and a kNN evaluation every `knn_every` epochs; then with `common` plus
 * one epoch of one step at lr 0 and a kNN evaluation; then, when `control_steps` > 0, one epoch
 * of that many steps at lr 0 and a kNN evaluation. Fails the test when a run fails; free the
 * result with unmix_learn_free (which removes the directory). */
void unmix_learn_runs(const char *tag, const char *manifest, const char *const *common, int n_common, int epochs,
                      int steps_per_epoch, int knn_every, int control_steps, struct unmix_learn_runs *r);
void unmix_learn_free(struct unmix_learn_runs *r);

/* A metrics.csv value by row and column; fails the test naming the column when absent. */
double unmix_learn_col(const struct unmix_csv_table *t, size_t row, const char *name);
