/* Batch-axis ops of the CPU backend (core/backend/cpu/batch.c): flip, gather and scatter of
 * rows, and the blend / box paste with the flipped batch that make the image mixtures
 * (docs/FIDELITY.md §1.2-1.3), checked element by element with guards. */
#include "tests/test_backend_common.h"

/* ---- batch-axis ------------------------------------------------------------- */

START_TEST(test_flip_gather_scatter) {
  const struct unmix_backend *be = unmix_test_cpu();
  const int n = 7;
  const int64_t row = 13;
  const size_t nx = (size_t)n * row;
  float *x = ops_rand(nx, 161, -1.0f, 1.0f), *y = ops_const(nx, NAN);
  be->flip_batch(n, row, x, y);
  ck_guard(y, nx);
  for (int i = 0; i < n; i++)
    ck_assert_msg(memcmp(y + i * row, x + (n - 1 - i) * row, row * sizeof(float)) == 0, "flip_batch row %d", i);

  static const int32_t idx[5] = {4, 0, 6, 2, 5};
  float *g = ops_const(5 * row, NAN);
  be->gather_rows(5, row, idx, x, g);
  ck_guard(g, 5 * row);
  for (int i = 0; i < 5; i++)
    ck_assert_msg(memcmp(g + i * row, x + idx[i] * row, row * sizeof(float)) == 0, "gather_rows row %d", i);

  float *s = ops_const(nx, -3.0f);
  be->scatter_rows(5, row, idx, g, s);
  ck_guard(s, nx);
  for (int i = 0; i < n; i++) {
    int hit = -1;
    for (int j = 0; j < 5; j++)
      if (idx[j] == i) hit = j;
    for (int64_t k = 0; k < row; k++)
      ck_assert_msg(s[i * row + k] == (hit >= 0 ? g[hit * row + k] : -3.0f), "scatter_rows row %d col %lld", i,
                    (long long)k);
  }
  unmix_guarded_free(x); unmix_guarded_free(y); unmix_guarded_free(g); unmix_guarded_free(s);
}
END_TEST

/* ---- blend / paste box with the flipped batch (the image mixtures, docs/FIDELITY.md §1.2-1.3) */

START_TEST(test_blend_flipped) {
  const struct unmix_backend *be = unmix_test_cpu();
  static const int ns[2] = {7, 6}; /* odd n: the middle sample mixes with itself */
  for (int t = 0; t < 2; t++) {
    const int n = ns[t];
    const int64_t row = 3 * 5 * 4;
    const size_t nx = (size_t)n * row;
    const float lam = 0.3125f + 0.1f * t;
    float *x = ops_rand(nx, 181, -2.0f, 2.0f), *y = ops_const(nx, NAN);
    be->blend_flipped(n, row, lam, x, y);
    ck_guard(y, nx);
    double *w = malloc(nx * sizeof(double));
    for (int i = 0; i < n; i++)
      for (int64_t j = 0; j < row; j++)
        w[i * row + j] = (double)lam * x[i * row + j] + (1.0 - (double)lam) * x[(n - 1 - i) * row + j];
    ck_ops_close("blend_flipped", y, w, nx, 1e-6, 0.1);
    free(w);
    unmix_guarded_free(x); unmix_guarded_free(y);
  }
}
END_TEST

static void check_paste_box(int n, int h, int w, int c, int r0, int r1, int c0, int c1) {
  const struct unmix_backend *be = unmix_test_cpu();
  const size_t nx = (size_t)n * h * w * c;
  float *x = ops_rand(nx, 191, -1.0f, 1.0f), *y = ops_const(nx, NAN);
  be->paste_box_flipped(n, h, w, c, r0, r1, c0, c1, x, y);
  ck_guard(y, nx);
  for (int i = 0; i < n; i++)
    for (int r = 0; r < h; r++)
      for (int s = 0; s < w; s++) {
        int inbox = r >= r0 && r < r1 && s >= c0 && s < c1;
        int src = inbox ? n - 1 - i : i;
        for (int ch = 0; ch < c; ch++)
          ck_assert_msg(y[(((size_t)i * h + r) * w + s) * c + ch] == x[(((size_t)src * h + r) * w + s) * c + ch],
                        "paste_box_flipped box [%d,%d)x[%d,%d): sample %d at (%d,%d,%d)", r0, r1, c0, c1, i, r, s, ch);
      }
  unmix_guarded_free(x); unmix_guarded_free(y);
}

START_TEST(test_paste_box_flipped) {
  check_paste_box(5, 7, 11, 3, 2, 5, 3, 9);
  check_paste_box(4, 7, 11, 2, 0, 7, 0, 11); /* whole image */
  check_paste_box(3, 7, 11, 2, 4, 4, 0, 11); /* empty box */
  check_paste_box(3, 6, 5, 1, 5, 6, 4, 5);   /* single corner pixel */
}
END_TEST

/* The worked example of the region mixture (docs/FIDELITY.md §1.3): 32x32, lam = 0.3,
 * cx = 5, cy = 20 gives rows [0,18), cols [7,32), area 450 and a re-adjusted lam of
 * 0.560546875. The box arithmetic below is the reference formula; the op must replace
 * exactly those pixels. */
START_TEST(test_paste_box_worked_example) {
  const int H = 32, W = 32, cx = 5, cy = 20, n = 3, c = 3;
  const double lam = 0.3, cut_rat = sqrt(1.0 - lam);
  const int cut_w = (int)(H * cut_rat), cut_h = (int)(W * cut_rat); /* trunc */
  ck_assert_int_eq(cut_w, 26);
  int bbx1 = cx - cut_w / 2, bbx2 = cx + cut_w / 2, bby1 = cy - cut_h / 2, bby2 = cy + cut_h / 2;
  bbx1 = bbx1 < 0 ? 0 : bbx1 > H ? H : bbx1;
  bbx2 = bbx2 < 0 ? 0 : bbx2 > H ? H : bbx2;
  bby1 = bby1 < 0 ? 0 : bby1 > W ? W : bby1;
  bby2 = bby2 < 0 ? 0 : bby2 > W ? W : bby2;
  ck_assert_int_eq(bbx1, 0);
  ck_assert_int_eq(bbx2, 18);
  ck_assert_int_eq(bby1, 7);
  ck_assert_int_eq(bby2, 32);
  const struct unmix_backend *be = unmix_test_cpu();
  const size_t nx = (size_t)n * H * W * c;
  /* sample i is the constant i: the share of a sample's own pixels is lam' */
  float *x = ops_const(nx, 0.0f), *y = ops_const(nx, NAN);
  for (size_t i = 0; i < nx; i++) x[i] = (float)(i / ((size_t)H * W * c));
  be->paste_box_flipped(n, H, W, c, bbx1, bbx2, bby1, bby2, x, y);
  ck_guard(y, nx);
  for (int i = 0; i < n; i++) {
    if (i == n / 2) continue; /* the middle sample's partner is itself */
    size_t own = 0;
    for (size_t k = 0; k < (size_t)H * W * c; k++) own += y[(size_t)i * H * W * c + k] == (float)i;
    ck_assert_msg(own == (size_t)(H * W - 450) * c, "sample %d keeps %zu own values", i, own);
    ck_assert_double_eq_tol((double)own / ((double)H * W * c), 0.560546875, 1e-12);
  }
  unmix_guarded_free(x); unmix_guarded_free(y);
}
END_TEST

static Suite *batch_suite(void) {
  Suite *s = suite_create("backend_batch");
  TCase *tc = tcase_create("batch");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_flip_gather_scatter);
  tcase_add_test(tc, test_blend_flipped);
  tcase_add_test(tc, test_paste_box_flipped);
  tcase_add_test(tc, test_paste_box_worked_example);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(batch_suite)
