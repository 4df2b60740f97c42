/* Weight histograms (eval/hist.c): numpy.histogram's bin rules on exact edge values, the
 * bin invariant on random data, quantile clipping and symmetric ranges, densities, the
 * tidy CSV (quoting, I/O errors), and conv-layer selection on ResNet-50/18 name lists. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util/rng.h"
#include "eval/hist.h"
#include "tests/support/testutil.h"

START_TEST(test_numpy_edge_rules) {
  /* numpy.histogram([0, .25, .5, .75, 1, .1, .3], bins=4) -> [2, 2, 1, 2] (last bin closed) */
  const float a[] = {0.0f, 0.25f, 0.5f, 0.75f, 1.0f, 0.1f, 0.3f};
  const float b[] = {0.5f, 0.5f, 0.625f};
  struct unmix_hist_series s[2] = {{"base", a, 7}, {"unmix", b, 3}};
  struct unmix_hist_params p = unmix_hist_params_default();
  p.nbins = 4;
  struct unmix_hist h;
  ck_assert(unmix_hist_common_bins(s, 2, &p, &h) == UNMIX_OK);
  ck_assert_int_eq(h.nbins, 4);
  ck_assert_int_eq(h.nseries, 2);
  const double edges[5] = {0, 0.25, 0.5, 0.75, 1.0};
  for (int e = 0; e < 5; e++) ck_assert_double_eq(h.edges[e], edges[e]);
  const int64_t want_a[4] = {2, 2, 1, 2}, want_b[4] = {0, 0, 3, 0};
  for (int k = 0; k < 4; k++) {
    ck_assert_int_eq(h.counts[k], want_a[k]);
    ck_assert_int_eq(h.counts[4 + k], want_b[k]);
    /* density = count / (n * width) */
    ck_assert_double_eq_tol(h.density[k], want_a[k] / (7.0 * 0.25), 1e-15);
    ck_assert_double_eq_tol(h.density[4 + k], want_b[k] / (3.0 * 0.25), 1e-15);
  }
  ck_assert_str_eq(h.labels[1], "unmix");
  ck_assert_int_eq(h.below[0] + h.above[0] + h.below[1] + h.above[1], 0);
  unmix_hist_free(&h);
}
END_TEST

START_TEST(test_random_invariants) {
  /* three "checkpoints" of different spread; odd sizes and bin count */
  enum { NB = 37 };
  const size_t ns[3] = {1001, 4097, 333};
  float *v[3];
  struct unmix_hist_series s[3];
  struct unmix_rng r = unmix_rng_make(1, UNMIX_RNG_TEST, 0, 0, 0);
  for (int k = 0; k < 3; k++) {
    v[k] = malloc(sizeof(float) * ns[k]);
    unmix_rng_fill_normal(&r, v[k], ns[k], 0.01f * k, 0.05f * (k + 1));
    s[k].label = k == 0 ? "moco" : k == 1 ? "unmix" : "third";
    s[k].values = v[k];
    s[k].n = ns[k];
  }
  struct unmix_hist_params p = unmix_hist_params_default();
  p.nbins = NB;
  struct unmix_hist h;
  ck_assert(unmix_hist_common_bins(s, 3, &p, &h) == UNMIX_OK);
  float mn = INFINITY, mx = -INFINITY;
  for (int k = 0; k < 3; k++)
    for (size_t i = 0; i < ns[k]; i++) {
      mn = fminf(mn, v[k][i]);
      mx = fmaxf(mx, v[k][i]);
    }
  ck_assert_double_eq(h.lo, mn);
  ck_assert_double_eq(h.hi, mx);
  ck_assert_double_eq(h.edges[NB], mx);
  for (int k = 0; k < 3; k++) {
    /* recount with the reported edges: [e_b, e_b+1), last closed */
    int64_t recount[NB] = {0}, total = 0;
    for (size_t i = 0; i < ns[k]; i++) {
      double x = v[k][i];
      int b = 0;
      while (b < NB - 1 && x >= h.edges[b + 1]) b++;
      recount[b]++;
    }
    double integral = 0;
    for (int b = 0; b < NB; b++) {
      ck_assert_msg(h.counts[k * NB + b] == recount[b], "array %d bin %d: %lld vs %lld", k, b,
                    (long long)h.counts[k * NB + b], (long long)recount[b]);
      total += h.counts[k * NB + b];
      integral += h.density[k * NB + b] * (h.edges[b + 1] - h.edges[b]);
    }
    ck_assert_int_eq(total, (int64_t)ns[k]);
    ck_assert_double_eq_tol(integral, 1.0, 1e-12);
  }
  unmix_hist_free(&h);

  /* symmetric: [-m, m] with m the larger magnitude */
  p.symmetric = true;
  ck_assert(unmix_hist_common_bins(s, 3, &p, &h) == UNMIX_OK);
  double m = fmax(fabs(mn), fabs(mx));
  ck_assert_double_eq(h.lo, -m);
  ck_assert_double_eq(h.hi, m);
  unmix_hist_free(&h);
  for (int k = 0; k < 3; k++) free(v[k]);
}
END_TEST

START_TEST(test_quantile_clipping) {
  /* 0..999 / 1000 plus two outliers; q = 0.01 (numpy 'linear' quantile) */
  enum { N = 1002 };
  float v[N], w[5] = {-0.5f, 0.0f, 0.1f, 0.2f, 0.3f};
  for (int i = 0; i < 1000; i++) v[i] = (float)i / 1000.0f;
  v[1000] = 50.0f;
  v[1001] = -40.0f;
  struct unmix_hist_series s[2] = {{"a", v, N}, {"b", w, 5}};
  struct unmix_hist_params p = unmix_hist_params_default();
  p.nbins = 10;
  p.clip_quantile = 0.01;
  struct unmix_hist h;
  ck_assert(unmix_hist_common_bins(s, 2, &p, &h) == UNMIX_OK);
  /* sorted a: -40, 0, .001, ..., .999, 50. Q(.01): h = 1001*.01 = 10.01 -> a[10] + .01 (a[11]-a[10])
   * = .009 + .01*.001; Q(.99): h = 990.99 -> a[990] + .99 (a[991]-a[990]) = .989 + .99*.001.
   * b: Q(.01) = -.5 + .04*.5 = -.48; Q(.99) = .2 + .96*.1 = .296. Range: [-.48, .98999]. */
  double qa_hi = (double)v[989] + 0.99 * ((double)v[990] - (double)v[989]);
  double qb_lo = -0.5 + 0.04 * 0.5;
  ck_assert_double_eq_tol(h.lo, qb_lo, 1e-7);
  ck_assert_double_eq_tol(h.hi, qa_hi, 1e-7);
  /* outside: a has -40 below and 50 plus .990 .. .999 above; b has -.5 below */
  ck_assert_int_eq(h.below[0], 1);
  ck_assert_int_eq(h.above[0], 11);
  ck_assert_int_eq(h.below[1], 1);
  ck_assert_int_eq(h.above[1], 0);
  int64_t in = 0;
  double integral = 0;
  for (int b = 0; b < 10; b++) {
    in += h.counts[b];
    integral += h.density[b] * (h.edges[b + 1] - h.edges[b]);
  }
  ck_assert_int_eq(in, N - 12);
  ck_assert_double_eq_tol(integral, 1.0, 1e-12); /* normalised by the counted values */
  unmix_hist_free(&h);

  /* degenerate range (numpy: +-0.5) */
  float c[3] = {0.25f, 0.25f, 0.25f};
  struct unmix_hist_series sc = {"const", c, 3};
  p.clip_quantile = 0;
  p.nbins = 2;
  ck_assert(unmix_hist_common_bins(&sc, 1, &p, &h) == UNMIX_OK);
  ck_assert_double_eq(h.lo, -0.25);
  ck_assert_double_eq(h.hi, 0.75);
  ck_assert_int_eq(h.counts[0], 0);
  ck_assert_int_eq(h.counts[1], 3);
  unmix_hist_free(&h);
}
END_TEST

START_TEST(test_hist_errors) {
  float v[3] = {0.1f, NAN, 0.2f};
  struct unmix_hist_series s = {"ckpt-A", v, 3};
  struct unmix_hist_params p = unmix_hist_params_default();
  struct unmix_hist h;
  ck_assert_int_eq(unmix_hist_common_bins(&s, 1, &p, &h), UNMIX_ERR_ARG);
  ck_assert_ptr_nonnull(strstr(unmix_error_message(), "ckpt-A"));
  ck_assert_ptr_nonnull(strstr(unmix_error_message(), "index 1"));
  v[1] = 0.3f;
  s.n = 0;
  ck_assert_int_eq(unmix_hist_common_bins(&s, 1, &p, &h), UNMIX_ERR_ARG);
  s.n = 3;
  p.nbins = 0;
  ck_assert_int_eq(unmix_hist_common_bins(&s, 1, &p, &h), UNMIX_ERR_ARG);
  p.nbins = 10;
  p.clip_quantile = 0.5;
  ck_assert_int_eq(unmix_hist_common_bins(&s, 1, &p, &h), UNMIX_ERR_ARG);
  p.clip_quantile = 0;
  ck_assert_int_eq(unmix_hist_common_bins(&s, 0, &p, &h), UNMIX_ERR_ARG);
  unmix_error_clear();
}
END_TEST

START_TEST(test_csv) {
  const float a[] = {0.0f, 1.0f}, b[] = {0.5f};
  struct unmix_hist_series s[2] = {{"moco v2", a, 2}, {"un-mix, \"800ep\"", b, 1}};
  struct unmix_hist_params p = unmix_hist_params_default();
  p.nbins = 2;
  struct unmix_hist h;
  ck_assert(unmix_hist_common_bins(s, 2, &p, &h) == UNMIX_OK);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  ck_assert_ptr_nonnull(f);
  ck_assert(unmix_hist_write_csv(f, "layer1.0.conv1.weight", &h, true) == UNMIX_OK);
  ck_assert(unmix_hist_write_csv(f, "conv1.weight", &h, false) == UNMIX_OK);
  fclose(f);
  const char *want =
      "layer,checkpoint,bin_lo,bin_hi,count,density\n"
      "layer1.0.conv1.weight,moco v2,0,0.5,1,1\n"
      "layer1.0.conv1.weight,moco v2,0.5,1,1,1\n"
      "layer1.0.conv1.weight,\"un-mix, \"\"800ep\"\"\",0,0.5,0,0\n"
      "layer1.0.conv1.weight,\"un-mix, \"\"800ep\"\"\",0.5,1,1,2\n"
      "conv1.weight,moco v2,0,0.5,1,1\n"
      "conv1.weight,moco v2,0.5,1,1,1\n"
      "conv1.weight,\"un-mix, \"\"800ep\"\"\",0,0.5,0,0\n"
      "conv1.weight,\"un-mix, \"\"800ep\"\"\",0.5,1,1,2\n";
  ck_assert_str_eq(buf, want);
  free(buf);
  /* a stream that cannot be written */
  FILE *full = fopen("/dev/full", "w");
  if (full) {
    ck_assert_int_eq(unmix_hist_write_csv(full, "conv1.weight", &h, true), UNMIX_ERR_IO);
    fclose(full);
  } else {
    printf("SKIPPED (no /dev/full): test_csv write-error case\n");
  }
  unmix_error_clear();
  unmix_hist_free(&h);
}
END_TEST

/* torchvision conv weight names in module order: Bottleneck (conv1..3, then downsample.0
 * in block 0) or BasicBlock (conv1..2). */
static int resnet_conv_names(char names[][48], const int *blocks, int bottleneck) {
  int n = 0;
  snprintf(names[n++], 48, "conv1.weight");
  for (int l = 0; l < 4; l++)
    for (int b = 0; b < blocks[l]; b++) {
      for (int c = 1; c <= (bottleneck ? 3 : 2); c++) snprintf(names[n++], 48, "layer%d.%d.conv%d.weight", l + 1, b, c);
      if (b == 0 && (bottleneck || l > 0)) snprintf(names[n++], 48, "layer%d.%d.downsample.0.weight", l + 1, b);
    }
  return n;
}

START_TEST(test_conv_layer_select) {
  static char buf[64][48];
  const char *names[64], *out[8];
  static const int r50[4] = {3, 4, 6, 3}, r18[4] = {2, 2, 2, 2};
  int n = resnet_conv_names(buf, r50, 1);
  ck_assert_int_eq(n, 53);
  for (int i = 0; i < n; i++) names[i] = buf[i];
  ck_assert(unmix_conv_layer_select(names, n, NULL, 0, out) == UNMIX_OK);
  const char *want[6] = {"conv1.weight",          "layer1.2.conv2.weight", "layer2.2.conv2.weight",
                         "layer3.1.conv2.weight", "layer3.4.conv3.weight", "layer4.1.conv3.weight"};
  for (int i = 0; i < 6; i++) ck_assert_str_eq(out[i], want[i]);
  ck_assert_str_eq(names[4], "layer1.0.downsample.0.weight"); /* 5th conv: after block 0's conv3 */
  const int idx[3] = {53, 5, 1};
  ck_assert(unmix_conv_layer_select(names, n, idx, 3, out) == UNMIX_OK);
  ck_assert_str_eq(out[0], "layer4.2.conv3.weight");
  ck_assert_str_eq(out[1], "layer1.0.downsample.0.weight");
  /* ResNet-18 has 20 conv layers: the default index 30 fails, naming both numbers */
  n = resnet_conv_names(buf, r18, 0);
  ck_assert_int_eq(n, 20);
  ck_assert_int_eq(unmix_conv_layer_select(names, n, NULL, 0, out), UNMIX_ERR_ARG);
  ck_assert_ptr_nonnull(strstr(unmix_error_message(), "index 30"));
  ck_assert_ptr_nonnull(strstr(unmix_error_message(), "20 conv layers"));
  const int zero = 0;
  ck_assert_int_eq(unmix_conv_layer_select(names, n, &zero, 1, out), UNMIX_ERR_ARG);
  unmix_error_clear();
  ck_assert(unmix_is_conv_weight("layer1.0.conv1.weight", 4));
  ck_assert(unmix_is_conv_weight("layer1.0.downsample.0.weight", 4));
  ck_assert(!unmix_is_conv_weight("layer1.0.downsample.1.weight", 1)); /* its BN */
  ck_assert(!unmix_is_conv_weight("fc.weight", 2));
  ck_assert(!unmix_is_conv_weight("conv1.bias", 4));
}
END_TEST

static Suite *hist_suite(void) {
  Suite *s = suite_create("hist");
  TCase *tc = tcase_create("hist");
  tcase_add_test(tc, test_numpy_edge_rules);
  tcase_add_test(tc, test_random_invariants);
  tcase_add_test(tc, test_quantile_clipping);
  tcase_add_test(tc, test_hist_errors);
  tcase_add_test(tc, test_csv);
  tcase_add_test(tc, test_conv_layer_select);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(hist_suite)
