/* The weighted kNN classifier of the MoCo CIFAR monitor (FIDELITY §5.1): a memory bank of
 * L2-normalised features votes for each query's class with weights exp(cos/t) over its
 * top-k neighbours. Runs through the backend op table (gemm, topk), so it works on any
 * backend that has those two ops; the vote itself happens on the host. */
#pragma once
#include <stdint.h>

#include "core/backend/backend.h"
#include "core/util/error.h"

struct unmix_knn_params {
  int k;           /* neighbours (MoCo: 200); 1 <= k <= bank size */
  float t;         /* temperature of w = exp(s / t) (MoCo: 0.1); > 0 */
  int num_classes; /* C; labels are 0..C-1 */
  int chunk;       /* queries per gemm+topk chunk; 0 = automatic (about 64 MiB of scores) */
};
/* k 200, t 0.1, num_classes 10, chunk 0. */
struct unmix_knn_params unmix_knn_params_default(void);

struct unmix_knn_result {
  double top1;     /* % of queries whose label has the highest score */
  double top5;     /* % of queries whose label is among the 5 highest scores (all when C <= 5) */
  int64_t correct1, correct5, total;
};

/* Classifies m queries against a bank of n features, both (rows, d) row-major float32
 * in the backend's memory (device pointers from be->alloc; host pointers on cpu):
 *   s = bank . q (be->gemm, chunks of queries), top-k of s sorted descending (be->topk:
 *   equal similarities keep the lower bank index), w_j = exp(s_j / t) (float, as PyTorch),
 *   score_c = sum of w_j over the top-k neighbours with label c (accumulated in double),
 *   prediction = argmax_c score_c; equal scores go to the LOWEST class index. The top-5
 *   ranking orders classes by score descending, then class index ascending.
 * Features are used as given (the caller L2-normalises them). Labels are host int32.
 * query_labels may be NULL (then res only has total; accuracies are 0).
 * pred (host, m) receives the top-1 class per query when non-NULL; pred5 (host, m x 5)
 * the five best classes per query when non-NULL (-1 where C < 5).
 * Errors: bad sizes, k > n, a label outside 0..C-1 (naming the sample), a backend without
 * gemm/topk (UNMIX_ERR_UNSUPPORTED), out of memory. */
unmix_status unmix_knn_classify(const struct unmix_backend *be, const float *bank, const int32_t *bank_labels,
                                int n, int d, const float *queries, const int32_t *query_labels, int m,
                                const struct unmix_knn_params *p, struct unmix_knn_result *res, int32_t *pred,
                                int32_t *pred5);

/* The W-MSE codebase's kNN (eval/knn.py there; the SimCLR/BYOL runs): Euclidean distance on
 * unnormalised features, the k nearest bank entries (k 5) vote with equal weight, the class
 * with the most votes wins and equal counts go to the LOWEST class index (torch.unique sorts,
 * argmax takes the first). The top-5 ranking orders classes by votes, then index. Distances
 * are ranked by 2 q.b - |b|^2 (the same order as |q - b|; be->gemm + be->topk, equal values
 * keep the lower bank index). Same arguments, errors and outputs as unmix_knn_classify;
 * only p->k, p->num_classes and p->chunk are used. */
unmix_status unmix_knn_euclid_classify(const struct unmix_backend *be, const float *bank, const int32_t *bank_labels,
                                       int n, int d, const float *queries, const int32_t *query_labels, int m,
                                       const struct unmix_knn_params *p, struct unmix_knn_result *res, int32_t *pred,
                                       int32_t *pred5);
