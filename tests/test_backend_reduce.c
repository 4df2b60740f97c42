/* Reductions of the CPU backend (core/backend/cpu/reduce.c) against double references:
 * sum, segment sums of squares, row and column sums, row dot products, non-finite count. */
#include "tests/test_backend_common.h"

START_TEST(test_reductions) {
  const struct unmix_backend *be = unmix_test_cpu();
  const int n = 13, d = 11;
  const size_t nx = (size_t)n * d;
  float *x = ops_rand(nx, 201, -1.0f, 3.0f);
  double wsum = 0.0;
  for (size_t i = 0; i < nx; i++) wsum += x[i];
  float *out = ops_const(1, NAN);
  be->sum((int64_t)nx, x, out);
  ck_guard(out, 1);
  ck_ops_close("sum", out, &wsum, 1, 1e-7, 0.0);
  double zero = 0.0;
  be->sum(0, x, out);
  ck_ops_close("sum of nothing", out, &zero, 1, 0.0, 0.0);

  /* segments incl. an empty one and one of a single element */
  const int64_t off[6] = {0, 17, 17, 18, 100, (int64_t)nx};
  float *ss = ops_const(5, NAN);
  be->sumsq_segments(5, off, x, ss);
  ck_guard(ss, 5);
  double wss[5];
  for (int s = 0; s < 5; s++) {
    wss[s] = 0.0;
    for (int64_t i = off[s]; i < off[s + 1]; i++) wss[s] += (double)x[i] * x[i];
  }
  ck_ops_close("sumsq_segments", ss, wss, 5, 1e-6, 0.0);

  float *rs = ops_const(n, NAN), *cs = ops_const(d, NAN);
  be->row_sum(n, d, x, rs);
  be->col_sum(n, d, x, cs);
  ck_guard(rs, n);
  ck_guard(cs, d);
  double *wr = calloc(n, sizeof(double)), *wc = calloc(d, sizeof(double));
  for (int i = 0; i < n; i++)
    for (int j = 0; j < d; j++) {
      wr[i] += x[(size_t)i * d + j];
      wc[j] += x[(size_t)i * d + j];
    }
  ck_ops_close("row_sum", rs, wr, n, 1e-6, 0.0);
  ck_ops_close("col_sum", cs, wc, d, 1e-6, 0.0);

  free(wr); free(wc);
  float *bufs[] = {x, out, ss, rs, cs};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) unmix_guarded_free(bufs[i]);
}
END_TEST

START_TEST(test_nonfinite_count) {
  const struct unmix_backend *be = unmix_test_cpu();
  const size_t n = 1009;
  float *x = ops_rand(n, 241, -1e30f, 1e30f), *out = ops_const(1, NAN);
  be->nonfinite_count((int64_t)n, x, out);
  ck_guard(out, 1);
  ck_assert_msg(out[0] == 0.0f, "nonfinite_count of finite data: %g", out[0]);
  x[0] = NAN;
  x[5] = INFINITY;
  x[500] = -INFINITY;
  x[n - 1] = -NAN;
  x[7] = 3.4e38f; /* large but finite */
  be->nonfinite_count((int64_t)n, x, out);
  ck_assert_msg(out[0] == 4.0f, "nonfinite_count: %g, want 4", out[0]);
  be->nonfinite_count(0, x, out);
  ck_assert_msg(out[0] == 0.0f, "nonfinite_count of nothing: %g", out[0]);
  unmix_guarded_free(x); unmix_guarded_free(out);
}
END_TEST

/* row_dot writes out[i*out_stride] and nothing between (the positive logit in column 0 of
 * a logits matrix), with a double-accumulated dot product. */
START_TEST(test_row_dot) {
  const struct unmix_backend *be = unmix_test_cpu();
  const int n = 7, d = 13, stride = 5;
  float *a = ops_rand((size_t)n * d, 204, -1.0f, 1.0f), *b = ops_rand((size_t)n * d, 205, -1.0f, 1.0f);
  float *out = ops_const((size_t)n * stride, -7.0f);
  be->row_dot(n, d, a, b, out, stride);
  ck_guard(out, (size_t)n * stride);
  for (int i = 0; i < n; i++) {
    double w = 0.0;
    for (int j = 0; j < d; j++) w += (double)a[(size_t)i * d + j] * b[(size_t)i * d + j];
    ck_ops_close("row_dot", &out[(size_t)i * stride], &w, 1, 1e-6, 0.0);
    for (int j = 1; j < stride; j++)
      ck_assert_msg(out[(size_t)i * stride + j] == -7.0f, "row_dot wrote between rows (row %d, +%d)", i, j);
  }
  unmix_guarded_free(a); unmix_guarded_free(b); unmix_guarded_free(out);
}
END_TEST

static Suite *reduce_suite(void) {
  Suite *s = suite_create("backend_reduce");
  TCase *tc = tcase_create("reduce");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_reductions);
  tcase_add_test(tc, test_nonfinite_count);
  tcase_add_test(tc, test_row_dot);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(reduce_suite)
