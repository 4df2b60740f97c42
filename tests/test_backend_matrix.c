/* Matrix ops of the CPU backend (core/backend/cpu/matrix.c) on odd shapes, element by element
 * with guards: row and column scaling, row-wise axpy with a strided scale (the adjoint of
 * row_dot) and the transpose. */
#include "tests/test_backend_common.h"

START_TEST(test_scale_rows_cols) {
  const struct unmix_backend *be = unmix_test_cpu();
  const int n = 13, d = 11;
  const size_t nx = (size_t)n * d;
  float *x = ops_rand(nx, 201, -1.0f, 3.0f);
  float *sr = ops_rand(n, 202, -2.0f, 2.0f), *sc = ops_rand(d, 203, -2.0f, 2.0f);
  float *a = ops_const(nx, 0.0f), *b = ops_const(nx, 0.0f);
  memcpy(a, x, nx * sizeof(float));
  memcpy(b, x, nx * sizeof(float));
  be->scale_rows(n, d, sr, a);
  be->scale_cols(n, d, sc, b);
  ck_guard(a, nx);
  ck_guard(b, nx);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < d; j++) {
      ck_assert_msg(a[(size_t)i * d + j] == x[(size_t)i * d + j] * sr[i], "scale_rows (%d,%d)", i, j);
      ck_assert_msg(b[(size_t)i * d + j] == x[(size_t)i * d + j] * sc[j], "scale_cols (%d,%d)", i, j);
    }
  float *bufs[] = {x, sr, sc, a, b};
  for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) unmix_guarded_free(bufs[i]);
}
END_TEST

START_TEST(test_transpose) {
  const struct unmix_backend *be = unmix_test_cpu();
  const int n = 13, d = 11;
  const size_t nx = (size_t)n * d;
  float *x = ops_rand(nx, 201, -1.0f, 3.0f), *t = ops_const(nx, NAN);
  be->transpose(n, d, x, t);
  ck_guard(t, nx);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < d; j++) ck_assert_msg(t[(size_t)j * n + i] == x[(size_t)i * d + j], "transpose (%d,%d)", i, j);
  unmix_guarded_free(x); unmix_guarded_free(t);
}
END_TEST

/* y[i,:] += s[i*stride] * x[i,:]: accumulates (y starts non-zero) and reads only every
 * stride-th scale (the others are NaN, which would poison a wrong read). */
START_TEST(test_axpy_rows) {
  const struct unmix_backend *be = unmix_test_cpu();
  const int n = 7, d = 13, stride = 5;
  const size_t nx = (size_t)n * d;
  float *x = ops_rand(nx, 206, -1.0f, 1.0f), *y = ops_rand(nx, 207, -1.0f, 1.0f);
  float *s = ops_const((size_t)n * stride, NAN);
  for (int i = 0; i < n; i++) s[(size_t)i * stride] = 0.25f * (float)(i - 3);
  double *w = ops_dup_d(y, nx);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < d; j++) w[(size_t)i * d + j] += (double)(s[(size_t)i * stride] * x[(size_t)i * d + j]);
  be->axpy_rows(n, d, s, stride, x, y);
  ck_guard(y, nx);
  ck_ops_close("axpy_rows", y, w, nx, 1e-6, 0.0);
  free(w);
  unmix_guarded_free(x); unmix_guarded_free(y); unmix_guarded_free(s);
}
END_TEST

static Suite *matrix_suite(void) {
  Suite *s = suite_create("backend_matrix");
  TCase *tc = tcase_create("matrix");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_scale_rows_cols);
  tcase_add_test(tc, test_transpose);
  tcase_add_test(tc, test_axpy_rows);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(matrix_suite)
