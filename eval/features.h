/* Features of a dataset through a model in eval mode, and the kNN monitor of the MoCo CIFAR
 * code (FIDELITY §5.1): memory bank = the training set through the test transform, queries = the
 * test set, L2-normalised embeddings, k nearest by cosine, votes weighted exp(s/t). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "core/backend/backend.h"
#include "core/data/dataset.h"
#include "core/data/recipe.h"
#include "core/io/config.h"
#include "core/nn/model.h"

/* Rows in dataset order (the recipe's eval transform), from `node` of the model, L2-normalised
 * when asked. *feat is device memory (n x dim; free with be->free), *labels host (free()). */
unmix_status unmix_extract_features(const struct unmix_backend *be, struct unmix_model *m, int node,
                                    const struct unmix_dataset *ds, const struct unmix_recipe *rc, int batch,
                                    int workers, bool normalize, float **feat, int32_t **labels, int *dim);

struct unmix_knn_eval {
  double top1, top5;
  int64_t bank, queries;
  double seconds;
};
/* The monitor on the model's embedding (MoCo: the fc output; SwAV: the projection), or on the
 * backbone's avgpool features when kc->features says so. */
unmix_status unmix_knn_monitor(const struct unmix_backend *be, struct unmix_model *m, const struct unmix_dataset *bank,
                               const struct unmix_dataset *test, const struct unmix_recipe *rc,
                               const struct unmix_knn_config *kc, int batch, int workers, struct unmix_knn_eval *out);
