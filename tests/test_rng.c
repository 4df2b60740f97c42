/* Philox-4x32-10 known-answer vectors (Random123's kat_vectors) and distribution moments
 * of the samplers built on it. */
#include <math.h>
#include <stdlib.h>

#include "core/data/augment.h"
#include "core/data/loader.h"
#include "core/data/synth.h"
#include "core/methods/common.h"
#include "core/methods/mix.h"
#include "core/nn/params.h"
#include "core/util/rng.h"
#include "tests/support/testutil.h"

/* The purposes, defined next to their users, keep the values every recorded run and fixture
 * was drawn with, and no two share a counter space. */
START_TEST(test_purposes_distinct_and_fixed) {
  const int p[] = {UNMIX_RNG_INIT, UNMIX_RNG_SHUFFLE, UNMIX_RNG_AUGMENT, UNMIX_RNG_MIX, UNMIX_RNG_KEYPERM,
                   UNMIX_RNG_QUEUE, UNMIX_RNG_LINEAR, UNMIX_RNG_TSNE, UNMIX_RNG_TEST, UNMIX_RNG_DATA};
  const int want[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  const int n = (int)(sizeof p / sizeof p[0]);
  for (int i = 0; i < n; i++) {
    ck_assert_int_eq(p[i], want[i]);
    ck_assert(p[i] > 0 && p[i] < 0x10000); /* the top 16 bits of ctr[3] */
    for (int j = 0; j < i; j++) ck_assert_int_ne(p[i], p[j]);
  }
}
END_TEST

START_TEST(test_philox_kat) {
  static const uint32_t ctr[3][4] = {{0, 0, 0, 0},
                                     {0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
                                     {0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}};
  static const uint32_t key[3][2] = {{0, 0}, {0xffffffffu, 0xffffffffu}, {0xa4093822u, 0x299f31d0u}};
  static const uint32_t want[3][4] = {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u},
                                      {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu},
                                      {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}};
  for (int t = 0; t < 3; t++) {
    uint32_t out[4];
    unmix_philox4x32_10(ctr[t], key[t], out);
    for (int i = 0; i < 4; i++) ck_assert_msg(out[i] == want[t][i], "KAT %d word %d: %08x != %08x", t, i, out[i], want[t][i]);
  }
}
END_TEST

START_TEST(test_stream_first_values_fixed) {
  /* Streams are pure functions of their key: the same key gives the same words, a
   * different epoch/index/view/purpose gives different ones. */
  struct unmix_rng a = unmix_rng_make(42, UNMIX_RNG_AUGMENT, 3, 17, 1);
  struct unmix_rng b = unmix_rng_make(42, UNMIX_RNG_AUGMENT, 3, 17, 1);
  struct unmix_rng c = unmix_rng_make(42, UNMIX_RNG_AUGMENT, 3, 17, 2);
  uint32_t wa[9], wc[9];
  for (int i = 0; i < 9; i++) {
    wa[i] = unmix_rng_u32(&a);
    ck_assert_uint_eq(wa[i], unmix_rng_u32(&b));
    wc[i] = unmix_rng_u32(&c);
  }
  int same = 0;
  for (int i = 0; i < 9; i++) same += wa[i] == wc[i];
  ck_assert_int_lt(same, 2);
  /* The first block is philox(ctr = (0, index, epoch, purpose<<16|view), key = seed). */
  uint32_t ctr[4] = {0, 17, 3, (UNMIX_RNG_AUGMENT << 16) | 1}, key[2] = {42, 0}, out[4];
  unmix_philox4x32_10(ctr, key, out);
  for (int i = 0; i < 4; i++) ck_assert_uint_eq(out[i], wa[i]);
}
END_TEST

static void moments(double *x, int n, double *mean, double *var) {
  double m = 0, v = 0;
  for (int i = 0; i < n; i++) m += x[i];
  m /= n;
  for (int i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m);
  *mean = m;
  *var = v / (n - 1);
}

START_TEST(test_uniform_normal_moments) {
  enum { N = 200000 };
  double *x = malloc(sizeof(double) * N);
  struct unmix_rng r = unmix_rng_make(7, UNMIX_RNG_TEST, 0, 0, 0);
  double m, v;
  for (int i = 0; i < N; i++) {
    float u = unmix_rng_uniform(&r);
    ck_assert(u >= 0.0f && u < 1.0f);
    x[i] = u;
  }
  moments(x, N, &m, &v);
  ck_assert_double_eq_tol(m, 0.5, 0.005);
  ck_assert_double_eq_tol(v, 1.0 / 12.0, 0.002);
  for (int i = 0; i < N; i++) x[i] = unmix_rng_normal(&r);
  moments(x, N, &m, &v);
  ck_assert_double_eq_tol(m, 0.0, 0.01);
  ck_assert_double_eq_tol(v, 1.0, 0.015);
  free(x);
}
END_TEST

START_TEST(test_beta_gamma_moments) {
  enum { N = 100000 };
  double *x = malloc(sizeof(double) * N);
  struct unmix_rng r = unmix_rng_make(8, UNMIX_RNG_TEST, 0, 0, 0);
  static const double ab[][2] = {{1, 1}, {0.2, 0.2}, {2, 5}, {5, 2}, {0.5, 3}};
  for (int t = 0; t < 5; t++) {
    double a = ab[t][0], b = ab[t][1], m, v;
    for (int i = 0; i < N; i++) {
      x[i] = unmix_rng_beta(&r, a, b);
      ck_assert(x[i] >= 0.0 && x[i] <= 1.0);
    }
    moments(x, N, &m, &v);
    double wm = a / (a + b), wv = a * b / ((a + b) * (a + b) * (a + b + 1));
    ck_assert_msg(fabs(m - wm) < 0.006, "Beta(%g,%g) mean %g want %g", a, b, m, wm);
    ck_assert_msg(fabs(v - wv) < 0.05 * wv + 0.001, "Beta(%g,%g) var %g want %g", a, b, v, wv);
  }
  for (int i = 0; i < N; i++) x[i] = unmix_rng_gamma(&r, 3.5);
  double m, v;
  moments(x, N, &m, &v);
  ck_assert_double_eq_tol(m, 3.5, 0.03);
  ck_assert_double_eq_tol(v, 3.5, 0.1);
  free(x);
}
END_TEST

START_TEST(test_randint_and_permutation) {
  struct unmix_rng r = unmix_rng_make(9, UNMIX_RNG_TEST, 0, 0, 0);
  int counts[7] = {0};
  for (int i = 0; i < 70000; i++) {
    uint32_t k = unmix_rng_below(&r, 7);
    ck_assert_uint_lt(k, 7);
    counts[k]++;
  }
  for (int k = 0; k < 7; k++) ck_assert_int_lt(abs(counts[k] - 10000), 400);
  /* permutation: valid, and position 0 is uniform over values */
  int32_t perm[13];
  int first[13] = {0};
  for (int t = 0; t < 13000; t++) {
    unmix_rng_permutation(&r, perm, 13);
    int seen[13] = {0};
    for (int i = 0; i < 13; i++) {
      ck_assert(perm[i] >= 0 && perm[i] < 13);
      ck_assert(!seen[perm[i]]);
      seen[perm[i]] = 1;
    }
    first[perm[0]]++;
  }
  for (int k = 0; k < 13; k++) ck_assert_int_lt(abs(first[k] - 1000), 150);
}
END_TEST

static Suite *rng_suite(void) {
  Suite *s = suite_create("rng");
  TCase *tc = tcase_create("philox");
  tcase_add_test(tc, test_purposes_distinct_and_fixed);
  tcase_add_test(tc, test_philox_kat);
  tcase_add_test(tc, test_stream_first_values_fixed);
  tcase_add_test(tc, test_uniform_normal_moments);
  tcase_add_test(tc, test_beta_gamma_moments);
  tcase_add_test(tc, test_randint_and_permutation);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(rng_suite)
