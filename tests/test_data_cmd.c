/* The `unmix data` command (and `unmix bench data`) run as a user runs them: help texts,
 * usage errors (exit 2), synth -> check round trips in every format, and fetch against a
 * local file:// mirror (download, md5 check, extraction, "already present", checksum
 * mismatch, unreachable URL with the offline hint). Needs curl and tar for the fetch case. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/data/md5.h"
#include "tests/support/testutil.h"

static char *g_dir;
static void setup(void) { g_dir = unmix_test_tmpdir("cmd"); }
static void teardown(void) {
  unmix_test_rmdir(g_dir);
  free(g_dir);
}

/* `unmix ARGS` in g_dir (stderr merged): the shared test helper. */
#define unmix(out, ...) unmix_test_unmix(g_dir, (out), __VA_ARGS__)

static void expect_out(const char *out, const char *want) {
  ck_assert_msg(strstr(out, want) != NULL, "output lacks '%s':\n%s", want, out);
}

START_TEST(test_help_and_usage_errors) {
  char *o;
  ck_assert_int_eq(unmix(&o, "data --help"), 0);
  expect_out(o, "fetch");
  expect_out(o, "synth");
  free(o);
  const char *subs[] = {"fetch", "check", "synth"};
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(unmix(&o, "data %s --help", subs[i]), 0);
    expect_out(o, "usage: unmix data");
    free(o);
  }
  ck_assert_int_eq(unmix(&o, "data frobnicate"), 2);
  expect_out(o, "unknown subcommand 'frobnicate'");
  free(o);
  ck_assert_int_eq(unmix(&o, "data synth cifar10 out --n 12abc"), 2);
  expect_out(o, "--n must be an integer");
  free(o);
  ck_assert_int_eq(unmix(&o, "data synth cifar10 out --classes 11"), 2);
  expect_out(o, "--classes 11 out of range 1..10");
  free(o);
  ck_assert_int_eq(unmix(&o, "data synth gif out"), 2);
  expect_out(o, "unknown format 'gif'");
  free(o);
  ck_assert_int_eq(unmix(&o, "data check cifar10"), 2);
  free(o);
  ck_assert_int_eq(unmix(&o, "data fetch imagenet"), 2);
  free(o);
  ck_assert_int_eq(unmix(&o, "bench data --help"), 0);
  expect_out(o, "views/s");
  free(o);
  ck_assert_int_eq(unmix(&o, "bench data moco-cifar --threads 0"), 2);
  free(o);
}
END_TEST

START_TEST(test_synth_then_check_every_format) {
  char *o;
  ck_assert_int_eq(unmix(&o, "data synth cifar10 c10 --n 50 --classes 5 --seed 3"), 0);
  free(o);
  ck_assert_int_eq(unmix(&o, "data check cifar10 c10"), 0);
  expect_out(o, "cifar10 train (c10/cifar-10-batches-bin): 50 images of 32x32x3, 10 classes");
  expect_out(o, "cifar10 test (c10/cifar-10-batches-bin): 10 images");
  expect_out(o, "4 synthetic_class_004      10\n"); /* 5 classes, balanced */
  expect_out(o, "5 synthetic_class_005      0\n");
  free(o);
  ck_assert_int_eq(unmix(&o, "data synth cifar100 c100 --n 40 --n-test 7"), 0);
  free(o);
  ck_assert_int_eq(unmix(&o, "data check cifar100 c100 --split test"), 0);
  expect_out(o, "7 images of 32x32x3, 100 classes");
  expect_out(o, "coarse classes: 5 2 0");
  free(o);
  ck_assert_int_eq(unmix(&o, "data synth fashion-mnist fm --n 30"), 0);
  free(o);
  ck_assert_int_eq(unmix(&o, "data check fashion-mnist fm --channels 3 --pad-to 32"), 0);
  expect_out(o, "30 images of 32x32x3");
  free(o);
  ck_assert_int_eq(unmix(&o, "data synth imagefolder if --n 12 --classes 3"), 0);
  free(o);
  ck_assert_int_eq(unmix(&o, "data check imagefolder if --split train"), 0);
  expect_out(o, "12 images of varying size, decoded into memory, 3 classes");
  expect_out(o, "class_002");
  free(o);
  /* a broken file is reported with its name and exit status 1 */
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "truncate -s 1000 '%s/c10/cifar-10-batches-bin/data_batch_2.bin'", g_dir);
  ck_assert_int_eq(unmix_test_sh(cmd, NULL), 0);
  ck_assert_int_eq(unmix(&o, "data check cifar10 c10"), 1);
  expect_out(o, "data_batch_2.bin: 1000 bytes is not a whole number of 3073-byte records");
  free(o);
  ck_assert_int_eq(unmix(&o, "data check cifar10 nowhere"), 1);
  expect_out(o, "root directory 'nowhere' does not exist");
  free(o);
}
END_TEST

START_TEST(test_fetch_from_local_mirror) {
  if (unmix_test_sh("command -v curl >/dev/null && command -v tar >/dev/null", NULL) != 0) {
    printf("SKIPPED (curl or tar missing): test_fetch_from_local_mirror\n");
    return;
  }
  char *o, cmd[2048], tgz[1200], md5[33];
  /* a mirror archive laid out like the official one */
  ck_assert_int_eq(unmix(&o, "data synth cifar10 src --n 25"), 0);
  free(o);
  snprintf(tgz, sizeof tgz, "%s/mirror.tar.gz", g_dir);
  snprintf(cmd, sizeof cmd, "tar -czf '%s' -C '%s/src' cifar-10-batches-bin", tgz, g_dir);
  ck_assert_int_eq(unmix_test_sh(cmd, NULL), 0);
  ck_assert_int_eq(unmix_md5_file(tgz, md5), UNMIX_OK);

  ck_assert_int_eq(unmix(&o, "data fetch cifar10 --root got --url 'file://%s' --md5 %s", tgz, md5), 0);
  expect_out(o, "cifar10 train: 25 images of 32x32x3, 10 classes");
  expect_out(o, "cifar10 ready in got");
  free(o);
  ck_assert_int_eq(unmix(&o, "data fetch cifar10 --root got --url 'file://%s' --md5 %s", tgz, md5), 0);
  expect_out(o, "already in got");
  free(o);
  /* wrong checksum: nothing is kept */
  ck_assert_int_eq(unmix(&o, "data fetch cifar10 --root bad --url 'file://%s' --md5 %032d", tgz, 0), 1);
  expect_out(o, "expected 00000000000000000000000000000000 (corrupt download); nothing kept");
  free(o);
  snprintf(cmd, sizeof cmd, "test ! -e '%s/bad/cifar-10-binary.tar.gz' && test ! -e '%s/bad/cifar-10-binary.tar.gz.part'",
           g_dir, g_dir);
  ck_assert_int_eq(unmix_test_sh(cmd, NULL), 0);
  /* unreachable: the offline hint says where to put the archive, and an archive placed there is used */
  ck_assert_int_eq(unmix(&o, "data fetch cifar10 --root off --url file:///nonexistent/x.tgz --md5 %s", md5), 1);
  expect_out(o, "If this machine is offline");
  expect_out(o, "off/cifar-10-binary.tar.gz");
  free(o);
  snprintf(cmd, sizeof cmd, "cp '%s' '%s/off/cifar-10-binary.tar.gz'", tgz, g_dir);
  ck_assert_int_eq(unmix_test_sh(cmd, NULL), 0);
  ck_assert_int_eq(unmix(&o, "data fetch cifar10 --root off --url file:///nonexistent/x.tgz --md5 %s", md5), 0);
  expect_out(o, "using off/cifar-10-binary.tar.gz (md5 ok)");
  free(o);
  /* the official checksum is the default: a local archive that is not the official one is refused */
  snprintf(cmd, sizeof cmd, "mkdir -p '%s/fake' && cp '%s' '%s/fake/cifar-10-binary.tar.gz'", g_dir, tgz, g_dir);
  ck_assert_int_eq(unmix_test_sh(cmd, NULL), 0);
  ck_assert_int_eq(unmix(&o, "data fetch cifar10 --root fake"), 1);
  expect_out(o, "expected c32a1d4ab5d03f1284b67883e8d87530");
  free(o);
}
END_TEST

START_TEST(test_bench_data_runs) {
  char *o;
  ck_assert_int_eq(unmix(&o, "bench data moco-cifar --threads 2 --seconds 0.2 --n 64 --batch 16"), 0);
  expect_out(o, "recipe moco-cifar, dataset synthetic (64 images), 2 views of 32x32, batch 16");
  expect_out(o, "views/s/core");
  expect_out(o, "views/cpu-s");
  free(o);
  ck_assert_int_eq(unmix(&o, "bench data lincls-swav-cifar --seconds 0.1 --n 32 --batch 8"), 0);
  free(o);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("data_cmd");
  TCase *tc = tcase_create("cmd");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_help_and_usage_errors);
  tcase_add_test(tc, test_synth_then_check_every_format);
  tcase_add_test(tc, test_fetch_from_local_mirror);
  tcase_add_test(tc, test_bench_data_runs);
  suite_add_tcase(s, tc);
  return s;
}

UNMIX_TEST_MAIN(suite)
