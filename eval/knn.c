/* Weighted kNN classifier (FIDELITY §5.1, MoCo's knn_predict): similarities and top-k on the
 * backend in chunks of queries (bounded memory), the exp(s/t) vote on the host. */
#include "eval/knn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct unmix_knn_params unmix_knn_params_default(void) {
  struct unmix_knn_params p = {.k = 200, .t = 0.1f, .num_classes = 10, .chunk = 0};
  return p;
}

/* Is class a ranked before class b? Higher score first, then lower index. */
static int ranks_before(const double *score, int a, int b) {
  return score[a] > score[b] || (score[a] == score[b] && a < b);
}

/* Votes of one query: score[c] from its k neighbours, then the (up to) 5 best classes. */
static void vote_one(int k, int nc, float t, const float *vals, const int32_t *idx, const int32_t *bank_labels,
                     double *score, int32_t best[5]) {
  for (int c = 0; c < nc; c++) score[c] = 0.0;
  for (int j = 0; j < k; j++) score[bank_labels[idx[j]]] += (double)expf(vals[j] / t);
  int nbest = nc < 5 ? nc : 5;
  for (int r = 0; r < 5; r++) best[r] = -1;
  /* insertion into a sorted list of at most 5 classes */
  for (int c = 0; c < nc; c++) {
    int pos = nbest;
    while (pos > 0 && (best[pos - 1] < 0 || ranks_before(score, c, best[pos - 1]))) pos--;
    if (pos >= nbest) continue;
    for (int r = nbest - 1; r > pos; r--) best[r] = best[r - 1];
    best[pos] = c;
  }
}

/* The checks and the query-chunk size both classifiers share: arguments, k against the bank,
 * labels in range, and the backend ops the classifier needs (`need`, count `nneed`). */
static unmix_status knn_check(const struct unmix_backend *be, const float *bank, const int32_t *bank_labels, int n,
                              int d, const float *queries, const int32_t *query_labels, int m,
                              const struct unmix_knn_params *p, const enum unmix_op *need, size_t nneed) {
  if (!be || !p || !bank_labels || (!bank && n > 0) || (!queries && m > 0))
    return unmix_error_set(UNMIX_ERR_ARG, "knn: missing backend, parameters, bank, labels or queries");
  if (n < 1 || d < 1 || m < 0)
    return unmix_error_set(UNMIX_ERR_ARG, "knn: bank of %d x %d features and %d queries: need n >= 1, d >= 1", n, d,
                           m);
  if (p->k < 1 || p->k > n)
    return unmix_error_set(UNMIX_ERR_ARG, "knn: k = %d must lie in 1..%d (the memory bank size)", p->k, n);
  if (p->num_classes < 1)
    return unmix_error_set(UNMIX_ERR_ARG, "knn: num_classes = %d must be >= 1", p->num_classes);
  if (p->chunk < 0) return unmix_error_set(UNMIX_ERR_ARG, "knn: chunk = %d must be >= 0 (0 = automatic)", p->chunk);
  for (size_t i = 0; i < nneed; i++)
    if (!be->supports_op(need[i], NULL))
      return unmix_error_set(UNMIX_ERR_UNSUPPORTED, "knn: backend '%s' does not support %s", be->name,
                             unmix_op_name(need[i]));
  const int nc = p->num_classes;
  for (int i = 0; i < n; i++)
    if (bank_labels[i] < 0 || bank_labels[i] >= nc)
      return unmix_error_set(UNMIX_ERR_ARG, "knn: memory-bank sample %d has label %d outside 0..%d", i,
                             (int)bank_labels[i], nc - 1);
  if (query_labels)
    for (int i = 0; i < m; i++)
      if (query_labels[i] < 0 || query_labels[i] >= nc)
        return unmix_error_set(UNMIX_ERR_ARG, "knn: query sample %d has label %d outside 0..%d", i,
                               (int)query_labels[i], nc - 1);
  return UNMIX_OK;
}

/* Queries per chunk: p->chunk, or what keeps a (chunk, n) similarity block near 64 MiB. */
static int knn_chunk(const struct unmix_knn_params *p, int n, int m) {
  int chunk = p->chunk;
  if (chunk == 0) {
    int64_t budget = ((int64_t)64 << 20) / ((int64_t)n * (int64_t)sizeof(float));
    chunk = budget < 1 ? 1 : budget > 4096 ? 4096 : (int)budget;
  }
  return chunk > m ? m : chunk;
}

unmix_status unmix_knn_classify(const struct unmix_backend *be, const float *bank, const int32_t *bank_labels,
                                int n, int d, const float *queries, const int32_t *query_labels, int m,
                                const struct unmix_knn_params *p, struct unmix_knn_result *res, int32_t *pred,
                                int32_t *pred5) {
  if (res) memset(res, 0, sizeof *res);
  if (p && !(p->t > 0.0f && isfinite(p->t)))
    return unmix_error_set(UNMIX_ERR_ARG, "knn: temperature t = %g must be positive and finite", (double)p->t);
  static const enum unmix_op need[] = {UNMIX_OP_GEMM, UNMIX_OP_TOPK};
  UNMIX_TRY(knn_check(be, bank, bank_labels, n, d, queries, query_labels, m, p, need, sizeof need / sizeof need[0]));
  const int nc = p->num_classes, k = p->k;
  if (res) res->total = m;
  if (m == 0) return UNMIX_OK;

  const int chunk = knn_chunk(p, n, m);

  unmix_status st = UNMIX_OK;
  float *sims = be->alloc((size_t)chunk * (size_t)n * sizeof(float));
  float *dvals = be->alloc((size_t)chunk * (size_t)k * sizeof(float));
  int32_t *didx = be->alloc((size_t)chunk * (size_t)k * sizeof(int32_t));
  float *hvals = malloc((size_t)chunk * (size_t)k * sizeof(float));
  int32_t *hidx = malloc((size_t)chunk * (size_t)k * sizeof(int32_t));
  if (!sims || !dvals || !didx || !hvals || !hidx) {
    st = unmix_error_set(UNMIX_ERR_NOMEM, "knn: out of memory for %d queries x %d bank similarities on %s", chunk, n,
                         be->name);
    goto done;
  }

  int64_t c1 = 0, c5 = 0;
  for (int q0 = 0; q0 < m; q0 += chunk) {
    int mc = m - q0 < chunk ? m - q0 : chunk;
    /* sims (mc, n) = Q_chunk (mc, d) . bank (n, d)^T */
    be->gemm(false, true, mc, n, d, 1.0f, queries + (int64_t)q0 * d, d, bank, d, 0.0f, sims, n);
    be->topk(mc, n, k, sims, dvals, didx);
    be->memcpy_d2h(hvals, dvals, (size_t)mc * k * sizeof(float));
    be->memcpy_d2h(hidx, didx, (size_t)mc * k * sizeof(int32_t));
#pragma omp parallel reduction(+ : c1, c5)
    {
      double *score = malloc((size_t)nc * sizeof(double));
      UNMIX_REQUIRE(score != NULL, "knn: out of host memory for %d class scores", nc);
#pragma omp for schedule(static)
      for (int i = 0; i < mc; i++) {
        int32_t best[5];
        vote_one(k, nc, p->t, hvals + (int64_t)i * k, hidx + (int64_t)i * k, bank_labels, score, best);
        int q = q0 + i;
        if (pred) pred[q] = best[0];
        if (pred5) memcpy(pred5 + (int64_t)q * 5, best, sizeof best);
        if (query_labels) {
          c1 += best[0] == query_labels[q];
          for (int r = 0; r < 5; r++)
            if (best[r] == query_labels[q]) c5++;
        }
      }
      free(score);
    }
  }
  if (res && query_labels) {
    res->correct1 = c1;
    res->correct5 = c5;
    res->top1 = 100.0 * (double)c1 / (double)m;
    res->top5 = 100.0 * (double)c5 / (double)m;
  }

done:
  if (sims) be->free(sims);
  if (dvals) be->free(dvals);
  if (didx) be->free(didx);
  free(hvals);
  free(hidx);
  return st;
}

/* ---- the W-MSE codebase's Euclidean, unweighted kNN ------------------------------------- */

unmix_status unmix_knn_euclid_classify(const struct unmix_backend *be, const float *bank, const int32_t *bank_labels,
                                       int n, int d, const float *queries, const int32_t *query_labels, int m,
                                       const struct unmix_knn_params *p, struct unmix_knn_result *res, int32_t *pred,
                                       int32_t *pred5) {
  if (res) memset(res, 0, sizeof *res);
  static const enum unmix_op need[] = {UNMIX_OP_GEMM, UNMIX_OP_TOPK, UNMIX_OP_ROW_DOT, UNMIX_OP_COPY};
  UNMIX_TRY(knn_check(be, bank, bank_labels, n, d, queries, query_labels, m, p, need, sizeof need / sizeof need[0]));
  const int nc = p->num_classes, k = p->k;
  if (res) res->total = m;
  if (m == 0) return UNMIX_OK;
  const int chunk = knn_chunk(p, n, m);

  unmix_status st = UNMIX_OK;
  const size_t cn = (size_t)chunk * (size_t)n;
  float *sims = be->alloc(cn * sizeof(float)), *base = be->alloc(cn * sizeof(float));
  float *bn2 = be->alloc((size_t)n * sizeof(float));
  float *dvals = be->alloc((size_t)chunk * (size_t)k * sizeof(float));
  int32_t *didx = be->alloc((size_t)chunk * (size_t)k * sizeof(int32_t));
  float *hbase = malloc(cn * sizeof(float)), *hbn2 = malloc((size_t)n * sizeof(float));
  int32_t *hidx = malloc((size_t)chunk * (size_t)k * sizeof(int32_t));
  if (!sims || !base || !bn2 || !dvals || !didx || !hbase || !hbn2 || !hidx) {
    st = unmix_error_set(UNMIX_ERR_NOMEM, "knn: out of memory for %d queries x %d bank distances on %s", chunk, n,
                         be->name);
    goto done;
  }
  /* base (chunk, n): every row -|b_j|^2; each chunk's score is base + 2 Q B^T */
  be->row_dot(n, d, bank, bank, bn2, 1);
  be->memcpy_d2h(hbn2, bn2, (size_t)n * sizeof(float));
  for (int i = 0; i < chunk; i++)
    for (int j = 0; j < n; j++) hbase[(size_t)i * n + j] = -hbn2[j];
  be->memcpy_h2d(base, hbase, cn * sizeof(float));

  int64_t c1 = 0, c5 = 0;
  for (int q0 = 0; q0 < m; q0 += chunk) {
    int mc = m - q0 < chunk ? m - q0 : chunk;
    be->copy((int64_t)mc * n, base, sims);
    be->gemm(false, true, mc, n, d, 2.0f, queries + (int64_t)q0 * d, d, bank, d, 1.0f, sims, n);
    be->topk(mc, n, k, sims, dvals, didx);
    be->memcpy_d2h(hidx, didx, (size_t)mc * k * sizeof(int32_t));
    double *votes = malloc((size_t)nc * sizeof(double));
    UNMIX_REQUIRE(votes != NULL, "knn: out of host memory for %d class votes", nc);
    for (int i = 0; i < mc; i++) {
      for (int c = 0; c < nc; c++) votes[c] = 0.0;
      for (int j = 0; j < k; j++) votes[bank_labels[hidx[(int64_t)i * k + j]]] += 1.0;
      int32_t best[5];
      int nbest = nc < 5 ? nc : 5;
      for (int r = 0; r < 5; r++) best[r] = -1;
      for (int c = 0; c < nc; c++) {
        int pos = nbest;
        while (pos > 0 && (best[pos - 1] < 0 || ranks_before(votes, c, best[pos - 1]))) pos--;
        if (pos >= nbest) continue;
        for (int r = nbest - 1; r > pos; r--) best[r] = best[r - 1];
        best[pos] = c;
      }
      int q = q0 + i;
      if (pred) pred[q] = best[0];
      if (pred5) memcpy(pred5 + (int64_t)q * 5, best, sizeof best);
      if (query_labels) {
        c1 += best[0] == query_labels[q];
        for (int r = 0; r < 5; r++) c5 += best[r] == query_labels[q];
      }
    }
    free(votes);
  }
  if (res && query_labels) {
    res->correct1 = c1;
    res->correct5 = c5;
    res->top1 = 100.0 * (double)c1 / (double)m;
    res->top5 = 100.0 * (double)c5 / (double)m;
  }
done:
  if (sims) be->free(sims);
  if (base) be->free(base);
  if (bn2) be->free(bn2);
  if (dvals) be->free(dvals);
  if (didx) be->free(didx);
  free(hbase);
  free(hbn2);
  free(hidx);
  return st;
}
