/* Top-k per row of the CPU backend (core/backend/cpu/topk.c): values and indices against a
 * full sort, ties broken by the lower index. */
#include "tests/test_backend_common.h"

/* ---- top-k ------------------------------------------------------------------ */

static void check_topk(int n, int d, int k, int ties) {
  const struct unmix_backend *be = unmix_test_cpu();
  const size_t nx = (size_t)n * d;
  float *x = ops_rand(nx, 231, -1.0f, 1.0f);
  if (ties)
    for (size_t i = 0; i < nx; i++) x[i] = (float)(int)(x[i] * 3.0f);
  float *v = ops_const((size_t)n * k, NAN);
  int32_t *ix = ops_ints((size_t)n * k);
  be->topk(n, d, k, x, v, ix);
  ck_guard(v, (size_t)n * k);
  ck_assert(ops_ints_guard_ok(ix, (size_t)n * k));
  /* reference: selection by (value desc, index asc) */
  char *used = malloc((size_t)d);
  for (int i = 0; i < n; i++) {
    const float *xr = x + (size_t)i * d;
    memset(used, 0, (size_t)d);
    for (int j = 0; j < k; j++) {
      int best = -1;
      for (int l = 0; l < d; l++)
        if (!used[l] && (best < 0 || xr[l] > xr[best])) best = l;
      used[best] = 1;
      ck_assert_msg(ix[(size_t)i * k + j] == best && v[(size_t)i * k + j] == xr[best],
                    "topk n%d d%d k%d row %d pos %d: (%d, %g), want (%d, %g)", n, d, k, i, j, ix[(size_t)i * k + j],
                    v[(size_t)i * k + j], best, xr[best]);
    }
  }
  free(used);
  unmix_guarded_free(x); unmix_guarded_free(v); ops_ints_free(ix);
}

START_TEST(test_topk) {
  check_topk(5, 13, 1, 0);
  check_topk(5, 13, 13, 0);
  check_topk(7, 11, 4, 0);
  check_topk(9, 17, 1, 1);
  check_topk(9, 17, 6, 1);
  check_topk(9, 17, 17, 1);
  check_topk(2, 1, 1, 0);
  check_topk(3, 301, 200, 1); /* kNN monitor: k = 200 */
}
END_TEST

static Suite *topk_suite(void) {
  Suite *s = suite_create("backend_topk");
  TCase *tc = tcase_create("topk");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_topk);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(topk_suite)
