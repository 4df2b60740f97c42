/* The kNN monitor (eval/knn.c) against a brute-force double-precision reference on
 * clustered data of odd sizes, exact tie-breaking on dyadic data, chunking invariance,
 * the error paths, and the CUDA backend when it has gemm and topk. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util/rng.h"
#include "eval/knn.h"
#include "tests/support/testutil.h"

/* Clustered unit vectors: class c has centre mu_c; a sample is normalise(mu_c + noise).
 * Class sizes are uneven (class 0 gets only `small` samples); 10% of labels are flipped so
 * that votes are not unanimous. */
static void make_data(int n, int d, int nc, int small, uint32_t seed, float *x, int32_t *y) {
  struct unmix_rng r = unmix_rng_make(seed, UNMIX_RNG_TEST, 0, 0, 0);
  float *mu = malloc(sizeof(float) * nc * d);
  for (int i = 0; i < nc * d; i++) mu[i] = (float)unmix_rng_normal(&r);
  for (int i = 0; i < n; i++) {
    int c = i < small ? 0 : 1 + (int)unmix_rng_below(&r, (uint32_t)(nc - 1));
    double ss = 0;
    for (int j = 0; j < d; j++) {
      float v = mu[c * d + j] + 1.1f * (float)unmix_rng_normal(&r);
      x[(size_t)i * d + j] = v;
      ss += (double)v * v;
    }
    for (int j = 0; j < d; j++) x[(size_t)i * d + j] = (float)(x[(size_t)i * d + j] / sqrt(ss));
    y[i] = unmix_rng_uniform(&r) < 0.1f ? (int32_t)unmix_rng_below(&r, (uint32_t)nc) : c;
  }
  free(mu);
}

struct ref_item {
  double s;
  int j;
};
static int ref_cmp(const void *a, const void *b) {
  const struct ref_item *x = a, *y = b;
  if (x->s != y->s) return x->s > y->s ? -1 : 1;
  return x->j - y->j;
}

/* Brute-force reference in double. Returns the predicted class; *fragile is set when the
 * k-th/(k+1)-th similarity gap or the best/second class margin is so small that float32
 * rounding in the gemm could legitimately change the answer. top5 gets the 5 best. */
static int ref_predict(const float *bank, const int32_t *lab, int n, int d, const float *q, int k, double t, int nc,
                       int *fragile, int top5[5]) {
  struct ref_item *it = malloc(sizeof *it * n);
  for (int j = 0; j < n; j++) {
    double s = 0;
    for (int e = 0; e < d; e++) s += (double)bank[(size_t)j * d + e] * q[e];
    it[j].s = s;
    it[j].j = j;
  }
  qsort(it, n, sizeof *it, ref_cmp);
  *fragile = k < n && it[k - 1].s - it[k].s < 1e-5;
  double *score = calloc(nc, sizeof(double));
  for (int r = 0; r < k; r++) score[lab[it[r].j]] += exp(it[r].s / t);
  int used[64] = {0};
  for (int r = 0; r < 5; r++) {
    int b = -1;
    for (int c = 0; c < nc; c++)
      if (!used[c] && (b < 0 || score[c] > score[b])) b = c;
    top5[r] = b;
    if (b >= 0) used[b] = 1;
  }
  double second = nc > 1 ? score[top5[1]] : 0.0;
  if (nc > 1 && score[top5[0]] - second <= 1e-4 * score[top5[0]]) *fragile = 1;
  int best = top5[0];
  free(score);
  free(it);
  return best;
}

static void check_against_reference(const struct unmix_backend *be, int n, int m, int d, int nc, int k, int chunk) {
  float *bank = malloc(sizeof(float) * n * d), *qs = malloc(sizeof(float) * m * d);
  int32_t *bl = malloc(sizeof(int32_t) * n), *ql = malloc(sizeof(int32_t) * m);
  { /* bank and queries drawn from the same clusters */
    float *tmp = malloc(sizeof(float) * (n + m) * d);
    int32_t *tl = malloc(sizeof(int32_t) * (n + m));
    make_data(n + m, d, nc, 5, 11, tmp, tl);
    memcpy(bank, tmp, sizeof(float) * n * d);
    memcpy(bl, tl, sizeof(int32_t) * n);
    memcpy(qs, tmp + (size_t)n * d, sizeof(float) * m * d);
    memcpy(ql, tl + n, sizeof(int32_t) * m);
    free(tmp);
    free(tl);
  }
  int class0 = 0;
  for (int i = 0; i < n; i++) class0 += bl[i] == 0;
  ck_assert_msg(class0 < k, "test set-up: class 0 has %d samples, want fewer than k = %d", class0, k);

  float *dbank = be->alloc(sizeof(float) * n * d), *dq = be->alloc(sizeof(float) * m * d);
  be->memcpy_h2d(dbank, bank, sizeof(float) * n * d);
  be->memcpy_h2d(dq, qs, sizeof(float) * m * d);
  struct unmix_knn_params p = unmix_knn_params_default();
  p.k = k;
  p.num_classes = nc;
  p.chunk = chunk;
  struct unmix_knn_result res;
  int32_t *pred = malloc(sizeof(int32_t) * m), *pred5 = malloc(sizeof(int32_t) * m * 5);
  ck_assert_msg(unmix_knn_classify(be, dbank, bl, n, d, dq, ql, m, &p, &res, pred, pred5) == UNMIX_OK, "%s",
                unmix_error_message());
  int fragile_total = 0;
  int64_t ref1 = 0, ref5 = 0;
  for (int i = 0; i < m; i++) {
    int fragile, top5[5];
    int want = ref_predict(bank, bl, n, d, qs + (size_t)i * d, k, 0.1, nc, &fragile, top5);
    ref1 += want == ql[i];
    for (int r = 0; r < 5; r++) ref5 += top5[r] == ql[i];
    if (fragile) {
      fragile_total++;
      continue;
    }
    ck_assert_msg(pred[i] == want, "query %d: predicted %d, reference %d", i, pred[i], want);
    ck_assert_int_eq(pred5[(size_t)i * 5], pred[i]);
    for (int r = 0; r < 5 && r < nc; r++)
      ck_assert_msg(pred5[(size_t)i * 5 + r] == top5[r], "query %d rank %d: %d vs reference %d", i, r,
                    pred5[(size_t)i * 5 + r], top5[r]);
  }
  ck_assert_msg(fragile_total <= m / 50, "%d of %d queries too close to call", fragile_total, m);
  ck_assert_int_eq(res.total, m);
  ck_assert_msg(llabs(res.correct1 - ref1) <= fragile_total, "top-1 correct %lld vs reference %lld",
                (long long)res.correct1, (long long)ref1);
  ck_assert_msg(llabs(res.correct5 - ref5) <= fragile_total, "top-5 correct %lld vs reference %lld",
                (long long)res.correct5, (long long)ref5);
  ck_assert_double_eq_tol(res.top1, 100.0 * res.correct1 / m, 1e-9);
  /* the data are learnable: well above chance, below perfect (label noise) */
  ck_assert_msg(res.top1 > 60.0 && res.top1 < 99.0, "top-1 %.2f%%", res.top1);
  ck_assert(res.top5 >= res.top1);
  be->free(dbank);
  be->free(dq);
  free(bank); free(qs); free(bl); free(ql); free(pred); free(pred5);
}

START_TEST(test_knn_matches_reference) {
  /* odd sizes; k = 37 exceeds class 0's 5 samples */
  check_against_reference(unmix_test_cpu(), 1013, 301, 13, 7, 37, 0);
}
END_TEST

START_TEST(test_knn_k200_t01) {
  /* the monitor's own k = 200 on a bank of 2003 samples of dimension 128 */
  check_against_reference(unmix_test_cpu(), 2003, 211, 128, 10, 200, 0);
}
END_TEST

START_TEST(test_knn_chunking_invariant) {
  const struct unmix_backend *be = unmix_test_cpu();
  enum { N = 517, M = 97, D = 11, C = 6 };
  float *x = malloc(sizeof(float) * (N + M) * D);
  int32_t *y = malloc(sizeof(int32_t) * (N + M));
  make_data(N + M, D, C, 4, 5, x, y);
  struct unmix_knn_params p = unmix_knn_params_default();
  p.k = 23;
  p.num_classes = C;
  int32_t pa[M], pb[M], p5a[M * 5], p5b[M * 5];
  struct unmix_knn_result ra, rb;
  p.chunk = 0;
  ck_assert(unmix_knn_classify(be, x, y, N, D, x + N * D, y + N, M, &p, &ra, pa, p5a) == UNMIX_OK);
  static const int chunks[] = {1, 7, 96, 97, 1000};
  for (int c = 0; c < 5; c++) {
    p.chunk = chunks[c];
    ck_assert(unmix_knn_classify(be, x, y, N, D, x + N * D, y + N, M, &p, &rb, pb, p5b) == UNMIX_OK);
    ck_assert_msg(memcmp(pa, pb, sizeof pa) == 0, "chunk %d changed predictions", chunks[c]);
    ck_assert(memcmp(p5a, p5b, sizeof p5a) == 0);
    ck_assert_int_eq(ra.correct1, rb.correct1);
    ck_assert_int_eq(ra.correct5, rb.correct5);
  }
  /* without query labels: predictions only */
  ck_assert(unmix_knn_classify(be, x, y, N, D, x + N * D, NULL, M, &p, &rb, pb, NULL) == UNMIX_OK);
  ck_assert(memcmp(pa, pb, sizeof pa) == 0);
  ck_assert_int_eq(rb.total, M);
  ck_assert_int_eq(rb.correct1, 0);
  free(x);
  free(y);
}
END_TEST

/* Dyadic data (entries +-0.5 in 4-D): every similarity is exact in float, so ties are
 * real ties and the tie rules are observable. */
START_TEST(test_knn_ties) {
  const struct unmix_backend *be = unmix_test_cpu();
  enum { D = 4, C = 5 };
  const float q[D] = {0.5f, 0.5f, 0.5f, 0.5f};
  /* bank: idx 0: -q (label 0), 1: q (label 3), 2: q (label 1), 3: -q (label 4),
   *       4: sim 0 (label 4), 5: sim 0.5 (label 2), 6: sim 0.5 (label 3) */
  const float bank[7][D] = {{-0.5f, -0.5f, -0.5f, -0.5f}, {0.5f, 0.5f, 0.5f, 0.5f}, {0.5f, 0.5f, 0.5f, 0.5f},
                            {-0.5f, -0.5f, -0.5f, -0.5f}, {0.5f, 0.5f, -0.5f, -0.5f}, {0.5f, 0.5f, 0.5f, -0.5f},
                            {-0.5f, 0.5f, 0.5f, 0.5f}};
  const int32_t lab[7] = {0, 3, 1, 4, 4, 2, 3};
  struct unmix_knn_params p = unmix_knn_params_default();
  p.num_classes = C;
  int32_t pred, pred5[5], want_label = 1;
  struct unmix_knn_result res;
  /* k = 3: both sim-1 neighbours (classes 3 and 1 tie at e^10) and, of the two sim-0.5
   * neighbours, the lower index 5 (class 2). Tie 1 vs 3 -> lowest class, 1. */
  p.k = 3;
  ck_assert(unmix_knn_classify(be, &bank[0][0], lab, 7, D, q, &want_label, 1, &p, &res, &pred, pred5) == UNMIX_OK);
  ck_assert_int_eq(pred, 1);
  const int32_t want5[5] = {1, 3, 2, 0, 4}; /* classes 0 and 4 score 0: by index */
  for (int r = 0; r < 5; r++) ck_assert_int_eq(pred5[r], want5[r]);
  ck_assert_int_eq(res.correct1, 1);
  ck_assert_double_eq(res.top1, 100.0);
  /* k = 4: index 6 joins (class 3 gets e^10 + e^5) -> class 3 */
  p.k = 4;
  ck_assert(unmix_knn_classify(be, &bank[0][0], lab, 7, D, q, &want_label, 1, &p, &res, &pred, pred5) == UNMIX_OK);
  ck_assert_int_eq(pred, 3);
  ck_assert_int_eq(pred5[1], 1);
  ck_assert_int_eq(pred5[2], 2);
  ck_assert_int_eq(res.correct1, 0);
  ck_assert_int_eq(res.correct5, 1);
  /* k = n = 7: classes 0 and 4 now score e^-10 each (4 also e^0): order 3 1 2 4 0 */
  p.k = 7;
  ck_assert(unmix_knn_classify(be, &bank[0][0], lab, 7, D, q, NULL, 1, &p, &res, &pred, pred5) == UNMIX_OK);
  const int32_t want7[5] = {3, 1, 2, 4, 0};
  for (int r = 0; r < 5; r++) ck_assert_int_eq(pred5[r], want7[r]);
  /* fewer than 5 classes: the tail of pred5 is -1, top-5 always counts */
  p.k = 3;
  const int32_t lab3[7] = {0, 2, 1, 2, 2, 2, 2};
  p.num_classes = 3;
  ck_assert(unmix_knn_classify(be, &bank[0][0], lab3, 7, D, q, &want_label, 1, &p, &res, &pred, pred5) == UNMIX_OK);
  ck_assert_int_eq(pred, 2);
  ck_assert_int_eq(pred5[3], -1);
  ck_assert_int_eq(pred5[4], -1);
  ck_assert_int_eq(res.correct5, 1);
}
END_TEST

START_TEST(test_knn_errors) {
  const struct unmix_backend *be = unmix_test_cpu();
  float bank[3 * 2] = {1, 0, 0, 1, 1, 0}, q[2] = {1, 0};
  int32_t lab[3] = {0, 1, 0}, ql = 0;
  struct unmix_knn_params p = unmix_knn_params_default();
  p.num_classes = 2;
  p.k = 4;
  ck_assert_int_eq(unmix_knn_classify(be, bank, lab, 3, 2, q, &ql, 1, &p, NULL, NULL, NULL), UNMIX_ERR_ARG);
  ck_assert_ptr_nonnull(strstr(unmix_error_message(), "k = 4"));
  p.k = 2;
  p.t = 0.0f;
  ck_assert_int_eq(unmix_knn_classify(be, bank, lab, 3, 2, q, &ql, 1, &p, NULL, NULL, NULL), UNMIX_ERR_ARG);
  p.t = 0.1f;
  lab[2] = 2;
  ck_assert_int_eq(unmix_knn_classify(be, bank, lab, 3, 2, q, &ql, 1, &p, NULL, NULL, NULL), UNMIX_ERR_ARG);
  ck_assert_ptr_nonnull(strstr(unmix_error_message(), "sample 2"));
  lab[2] = 0;
  ql = -1;
  ck_assert_int_eq(unmix_knn_classify(be, bank, lab, 3, 2, q, &ql, 1, &p, NULL, NULL, NULL), UNMIX_ERR_ARG);
  ck_assert_ptr_nonnull(strstr(unmix_error_message(), "query sample 0"));
  ql = 0;
  ck_assert_int_eq(unmix_knn_classify(be, bank, lab, 3, 2, q, &ql, 0, &p, NULL, NULL, NULL), UNMIX_OK);
  unmix_error_clear();
}
END_TEST

START_TEST(test_knn_cuda_matches_cpu) {
  const struct unmix_backend *be = unmix_test_cuda_or_skip("test_knn_cuda_matches_cpu");
  if (!be) return;
  if (!be->supports_op(UNMIX_OP_GEMM, NULL) || !be->supports_op(UNMIX_OP_TOPK, NULL)) {
    printf("SKIPPED (backend cuda lacks gemm/topk): test_knn_cuda_matches_cpu\n");
    float x = 1.0f;
    int32_t l = 0;
    struct unmix_knn_params p = unmix_knn_params_default();
    p.k = 1;
    ck_assert_int_eq(unmix_knn_classify(be, &x, &l, 1, 1, &x, &l, 1, &p, NULL, NULL, NULL), UNMIX_ERR_UNSUPPORTED);
    unmix_error_clear();
    return;
  }
  /* TF32 would change near-ties; compare in fp32 */
  be->set_precision(UNMIX_PREC_FP32);
  check_against_reference(be, 1013, 301, 13, 7, 37, 64);
  check_against_reference(be, 2003, 211, 128, 10, 200, 0);
}
END_TEST

/* ---- the W-MSE codebase's 5-NN (Euclidean, unweighted) ---------------------------------- */

/* Against eval/knn.py there (torch.cdist + topk + unique/argmax), tests/golden/simclr_byol.bin. */
START_TEST(test_knn_euclid_matches_reference) {
  char path[1024];
  struct unmix_fixture *fx = unmix_fixture_load(unmix_test_src_path("tests/golden/simclr_byol.bin", path, sizeof path));
  size_t nb, nq, nl;
  const float *bank = unmix_fixture_f32(fx, "knn/bank", &nb);
  const float *q = unmix_fixture_f32(fx, "knn/queries", &nq);
  const int32_t *bl = unmix_fixture_i32(fx, "knn/bank_labels", &nl);
  const int32_t *ql = unmix_fixture_i32(fx, "knn/query_labels", NULL);
  const int32_t *want = unmix_fixture_i32(fx, "knn/pred", NULL);
  const int d = (int)(nb / nl), n = (int)nl, m = (int)(nq / (size_t)d);
  struct unmix_knn_params p = unmix_knn_params_default();
  p.k = 5;
  p.num_classes = unmix_fixture_i32(fx, "knn/classes", NULL)[0];
  for (int chunk = 0; chunk <= 4; chunk += 4) { /* automatic, and chunks of 4 queries */
    p.chunk = chunk;
    int32_t pred[64];
    struct unmix_knn_result r;
    ck_assert_int_eq(unmix_knn_euclid_classify(unmix_test_cpu(), bank, bl, n, d, q, ql, m, &p, &r, pred, NULL),
                     UNMIX_OK);
    int correct = 0;
    for (int i = 0; i < m; i++) {
      ck_assert_msg(pred[i] == want[i], "query %d: predicted %d, reference %d (chunk %d)", i, pred[i], want[i], chunk);
      correct += want[i] == ql[i];
    }
    ck_assert_int_eq(r.correct1, correct);
    ck_assert_double_eq_tol(r.top1, 100.0 * correct / m, 1e-9);
  }
  unmix_fixture_free(fx);
}
END_TEST

/* Closed form: Euclidean (not cosine) neighbours, one vote each, ties to the lowest class. */
START_TEST(test_knn_euclid_votes_and_ties) {
  /* 1-d features: the query at 0; bank at distances 1 (class 3), 2 (class 3), 3 (class 1),
   * 4 (class 1), 5 (class 0), and far away 100 (class 2) x 3. A cosine kNN would see all
   * positive entries as identical; the weighted MoCo vote would favour class 3. */
  float bank[8] = {1, -2, 3, -4, 5, 100, 100, 100};
  int32_t bl[8] = {3, 3, 1, 1, 0, 2, 2, 2};
  float q[1] = {0};
  int32_t ql[1] = {1};
  struct unmix_knn_params p = unmix_knn_params_default();
  p.k = 5;
  p.num_classes = 4;
  int32_t pred[1], pred5[5];
  struct unmix_knn_result r;
  ck_assert_int_eq(unmix_knn_euclid_classify(unmix_test_cpu(), bank, bl, 8, 1, q, ql, 1, &p, &r, pred, pred5), UNMIX_OK);
  ck_assert_int_eq(pred[0], 1); /* 2 votes for 1 and for 3: the lower class id wins */
  ck_assert_int_eq(pred5[1], 3);
  ck_assert_int_eq(pred5[2], 0);
  ck_assert_int_eq(pred5[3], 2); /* no votes: by index */
  ck_assert_int_eq(pred5[4], -1);
  ck_assert_double_eq(r.top1, 100.0);
  /* k = 3: class 3 has two of the three nearest */
  p.k = 3;
  ck_assert_int_eq(unmix_knn_euclid_classify(unmix_test_cpu(), bank, bl, 8, 1, q, ql, 1, &p, &r, pred, NULL), UNMIX_OK);
  ck_assert_int_eq(pred[0], 3);
  /* errors: k beyond the bank, a label outside the classes */
  p.k = 9;
  ck_assert_int_eq(unmix_knn_euclid_classify(unmix_test_cpu(), bank, bl, 8, 1, q, ql, 1, &p, &r, pred, NULL),
                   UNMIX_ERR_ARG);
  p.k = 5;
  p.num_classes = 3;
  ck_assert_int_eq(unmix_knn_euclid_classify(unmix_test_cpu(), bank, bl, 8, 1, q, ql, 1, &p, &r, pred, NULL),
                   UNMIX_ERR_ARG);
}
END_TEST

static Suite *knn_suite(void) {
  Suite *s = suite_create("knn");
  TCase *tc = tcase_create("knn");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_knn_matches_reference);
  tcase_add_test(tc, test_knn_k200_t01);
  tcase_add_test(tc, test_knn_chunking_invariant);
  tcase_add_test(tc, test_knn_ties);
  tcase_add_test(tc, test_knn_errors);
  tcase_add_test(tc, test_knn_euclid_matches_reference);
  tcase_add_test(tc, test_knn_euclid_votes_and_ties);
  tcase_add_test(tc, test_knn_cuda_matches_cpu);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(knn_suite)
