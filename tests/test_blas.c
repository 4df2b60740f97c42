/* The OpenBLAS core-type decision (core/util/blas.h): which kernel core to force for a
 * library that reports `reported` on a CPU whose best core is `best`. Pure function, so
 * every CPU case is testable on any machine. */
#include "core/util/blas.h"
#include "tests/support/testutil.h"

#include <string.h>

static void expect_fix(const char *reported, const char *best, const char *want) {
  const char *got = unmix_blas_fix_for(reported, best);
  if (!want)
    ck_assert_msg(got == NULL, "fix_for(%s, %s) = %s, want no fix", reported ? reported : "NULL",
                  best ? best : "NULL", got);
  else
    ck_assert_msg(got != NULL && strcmp(got, want) == 0, "fix_for(%s, %s) = %s, want %s",
                  reported ? reported : "NULL", best ? best : "NULL", got ? got : "NULL", want);
}

START_TEST(test_weak_cores_are_fixed_on_skylakex) {
  /* Debian's DYNAMIC_ARCH OpenBLAS misreads AVX-512 EPYCs as Prescott; Haswell is the
   * AVX2 core, still weaker than the AVX-512 one the CPU supports */
  expect_fix("Prescott", "SkylakeX", "SkylakeX");
  expect_fix("Core2", "SkylakeX", "SkylakeX");
  expect_fix("Nehalem", "SkylakeX", "SkylakeX");
  expect_fix("Sandybridge", "SkylakeX", "SkylakeX");
  expect_fix("Haswell", "SkylakeX", "SkylakeX");
  expect_fix("Zen", "SkylakeX", "SkylakeX");
}
END_TEST

START_TEST(test_avx512_cores_need_no_fix) {
  expect_fix("SkylakeX", "SkylakeX", NULL);
  expect_fix("Cooperlake", "SkylakeX", NULL);
  expect_fix("SapphireRapids", "SkylakeX", NULL);
}
END_TEST

START_TEST(test_other_cpus) {
  expect_fix("Prescott", "Haswell", "Haswell"); /* AVX2 CPU misread */
  expect_fix("Haswell", "Haswell", NULL);
  expect_fix("Zen", "Haswell", NULL);
  expect_fix("SkylakeX", "Haswell", NULL); /* never downgrade */
  expect_fix("Prescott", "Sandybridge", "Sandybridge");
  expect_fix("Prescott", NULL, NULL); /* CPU of unknown capability: leave it alone */
  expect_fix(NULL, "SkylakeX", NULL);
  expect_fix(NULL, NULL, NULL);
}
END_TEST

/* The live queries answer something sensible on this machine. */
START_TEST(test_live_queries) {
  const char *core = unmix_blas_corename();
  ck_assert_ptr_nonnull(core);
  ck_assert_int_gt((int)strlen(core), 0);
  ck_assert_int_ge(unmix_blas_threads(), 1);
  const char *d = unmix_blas_describe();
  ck_assert_msg(strstr(d, "OpenBLAS core") != NULL, "describe: '%s'", d);
  ck_assert_msg(strstr(d, core) != NULL, "describe does not name the core %s: '%s'", core, d);
}
END_TEST

static Suite *blas_suite(void) {
  Suite *s = suite_create("blas");
  TCase *tc = tcase_create("coretype");
  tcase_add_test(tc, test_weak_cores_are_fixed_on_skylakex);
  tcase_add_test(tc, test_avx512_cores_need_no_fix);
  tcase_add_test(tc, test_other_cpus);
  tcase_add_test(tc, test_live_queries);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(blas_suite)
