/* core/util/fs: mkdir -p (nested, existing, a file in the way, the mode), the whole-file
 * reader (exact bytes + NUL terminator, buffer reuse, size cap, missing and non-regular
 * files) and dirname. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/util/fs.h"
#include "tests/support/testutil.h"

static char *g_dir;
static void setup(void) { g_dir = unmix_test_tmpdir("fs"); }
static void teardown(void) {
  unmix_test_rmdir(g_dir);
  free(g_dir);
  g_dir = NULL;
}

#define tmp(name) unmix_test_path(g_dir, (name))

static bool is_dir(const char *p) {
  struct stat sb;
  return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

START_TEST(test_mkdirs_nested_and_existing) {
  const char *deep = tmp("a/b/c/d");
  ck_assert_int_eq(unmix_fs_mkdirs(deep, 0755), UNMIX_OK);
  ck_assert(is_dir(tmp("a")) && is_dir(tmp("a/b")) && is_dir(deep));
  /* again: existing directories are not an error */
  ck_assert_int_eq(unmix_fs_mkdirs(deep, 0755), UNMIX_OK);
  /* a trailing slash */
  char p[1100];
  snprintf(p, sizeof p, "%s/", tmp("e/f"));
  ck_assert_int_eq(unmix_fs_mkdirs(p, 0755), UNMIX_OK);
  ck_assert(is_dir(tmp("e/f")));
  /* the mode is passed to mkdir(2) (0700 survives any umask) */
  ck_assert_int_eq(unmix_fs_mkdirs(tmp("private"), 0700), UNMIX_OK);
  struct stat sb;
  ck_assert_int_eq(stat(tmp("private"), &sb), 0);
  ck_assert_int_eq(sb.st_mode & 0777, 0700);
}
END_TEST

START_TEST(test_mkdirs_errors_name_the_component) {
  FILE *f = fopen(tmp("file"), "w");
  ck_assert_ptr_nonnull(f);
  fclose(f);
  /* a file where a parent should be */
  ck_assert_int_eq(unmix_fs_mkdirs(tmp("file/sub"), 0755), UNMIX_ERR_IO);
  ck_assert_msg(strstr(unmix_error_message(), tmp("file")) != NULL, "%s", unmix_error_message());
  /* a file where the leaf should be */
  ck_assert_int_eq(unmix_fs_mkdirs(tmp("file"), 0755), UNMIX_ERR_IO);
  ck_assert_msg(strstr(unmix_error_message(), "a file of that name exists") != NULL, "%s", unmix_error_message());
  ck_assert_int_eq(unmix_fs_mkdirs("", 0755), UNMIX_ERR_ARG);
  char *longp = malloc(10000);
  memset(longp, 'x', 9999);
  longp[9999] = 0;
  ck_assert_int_eq(unmix_fs_mkdirs(longp, 0755), UNMIX_ERR_ARG);
  free(longp);
}
END_TEST

START_TEST(test_read_whole_file) {
  const char *p = tmp("data.bin");
  const unsigned char bytes[] = {'a', 0, 'b', 0xff, '\n', 'z'};
  FILE *f = fopen(p, "wb");
  ck_assert_ptr_nonnull(f);
  fwrite(bytes, 1, sizeof bytes, f);
  fclose(f);
  uint8_t *buf = NULL;
  size_t len = 0;
  ck_assert_int_eq(unmix_fs_read(p, 0, &buf, &len), UNMIX_OK);
  ck_assert_uint_eq(len, sizeof bytes);
  ck_assert_mem_eq(buf, bytes, sizeof bytes);
  ck_assert_int_eq(buf[len], 0); /* NUL after the data */
  free(buf);
  /* an empty file is an empty NUL-terminated buffer */
  f = fopen(tmp("empty"), "wb");
  fclose(f);
  ck_assert_int_eq(unmix_fs_read(tmp("empty"), 0, &buf, &len), UNMIX_OK);
  ck_assert_uint_eq(len, 0);
  ck_assert_int_eq(buf[0], 0);
  free(buf);
}
END_TEST

START_TEST(test_read_into_reuses_the_buffer) {
  const char *big = tmp("big"), *small = tmp("small");
  FILE *f = fopen(big, "wb");
  for (int i = 0; i < 5000; i++) fputc('a' + i % 26, f);
  fclose(f);
  f = fopen(small, "wb");
  fputs("hello", f);
  fclose(f);
  uint8_t *buf = NULL;
  size_t cap = 0, len = 0;
  ck_assert_int_eq(unmix_fs_read_into(big, 0, &buf, &cap, &len), UNMIX_OK);
  ck_assert_uint_eq(len, 5000);
  ck_assert_uint_ge(cap, 5001);
  uint8_t *first = buf;
  size_t cap1 = cap;
  ck_assert_int_eq(unmix_fs_read_into(small, 0, &buf, &cap, &len), UNMIX_OK);
  ck_assert_ptr_eq(buf, first); /* no reallocation for a smaller file */
  ck_assert_uint_eq(cap, cap1);
  ck_assert_str_eq((char *)buf, "hello");
  free(buf);
}
END_TEST

START_TEST(test_read_errors) {
  uint8_t *buf = (uint8_t *)0x1;
  size_t len = 0;
  ck_assert_int_eq(unmix_fs_read(tmp("missing"), 0, &buf, &len), UNMIX_ERR_IO);
  ck_assert_ptr_null(buf);
  ck_assert_msg(strstr(unmix_error_message(), "missing: cannot open") != NULL, "%s", unmix_error_message());
  ck_assert_int_eq(unmix_fs_read(g_dir, 0, &buf, &len), UNMIX_ERR_IO); /* a directory */
  ck_assert_msg(strstr(unmix_error_message(), "not a regular file") != NULL, "%s", unmix_error_message());
  FILE *f = fopen(tmp("ten"), "wb");
  fputs("0123456789", f);
  fclose(f);
  ck_assert_int_eq(unmix_fs_read(tmp("ten"), 9, &buf, &len), UNMIX_ERR_FORMAT); /* over the cap */
  ck_assert_ptr_null(buf);
  ck_assert_int_eq(unmix_fs_read(tmp("ten"), 10, &buf, &len), UNMIX_OK); /* exactly the cap */
  ck_assert_uint_eq(len, 10);
  free(buf);
}
END_TEST

START_TEST(test_dirname) {
  char b[64];
  ck_assert_str_eq(unmix_fs_dirname("runs/x/checkpoint.safetensors", b, sizeof b), "runs/x");
  ck_assert_str_eq(unmix_fs_dirname("checkpoint.safetensors", b, sizeof b), ".");
  ck_assert_str_eq(unmix_fs_dirname("/ckpt", b, sizeof b), "/");
  ck_assert_str_eq(unmix_fs_dirname("/a/b", b, sizeof b), "/a");
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("util_fs");
  TCase *tc = tcase_create("fs");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_mkdirs_nested_and_existing);
  tcase_add_test(tc, test_mkdirs_errors_name_the_component);
  tcase_add_test(tc, test_read_whole_file);
  tcase_add_test(tc, test_read_into_reuses_the_buffer);
  tcase_add_test(tc, test_read_errors);
  tcase_add_test(tc, test_dirname);
  suite_add_tcase(s, tc);
  return s;
}

UNMIX_TEST_MAIN(suite)
