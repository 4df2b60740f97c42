/* core/util/error.c: messages and wrapping, and what an ordinary out-of-memory looks like
 * (a plain message and exit status 1, not an "internal error ... bug" abort). */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/util/error.h"
#include "tests/support/testutil.h"

/* Under ASan an impossible malloc aborts unless the allocator may return NULL, as libc's does;
 * ASan reads this at start-up (ASAN_OPTIONS in the environment still wins, key by key). */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

START_TEST(test_set_and_wrap) {
  ck_assert_int_eq(unmix_error_set(UNMIX_ERR_IO, "cannot open %s", "x.bin"), UNMIX_ERR_IO);
  ck_assert_int_eq(unmix_error_wrap(UNMIX_ERR_FORMAT, "dataset %d", 3), UNMIX_ERR_FORMAT);
  ck_assert_str_eq(unmix_error_message(), "dataset 3: cannot open x.bin");
  ck_assert_int_eq(unmix_error_code(), UNMIX_ERR_FORMAT);
  unmix_error_clear();
  ck_assert_str_eq(unmix_error_message(), "(no error message)");
}
END_TEST

/* Runs fn in a child with stderr captured; returns the wait status, the text in buf. */
static int in_child(void (*fn)(void), char *buf, size_t len) {
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], 2);
    fn();
    _exit(0);
  }
  close(fds[1]);
  size_t off = 0;
  ssize_t r;
  while (off + 1 < len && (r = read(fds[0], buf + off, len - off - 1)) > 0) off += (size_t)r;
  buf[off] = 0;
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

static void huge_malloc(void) {
  volatile size_t n = SIZE_MAX / 2;
  void *p = unmix_xmalloc(n);
  free(p);
}
static void huge_calloc(void) { free(unmix_xcalloc(SIZE_MAX / 8, 4)); }
static void huge_realloc(void) { free(unmix_xrealloc(NULL, SIZE_MAX / 4)); }

START_TEST(test_out_of_memory_is_a_clear_error) {
  void (*fns[3])(void) = {huge_malloc, huge_calloc, huge_realloc};
  for (int i = 0; i < 3; i++) {
    char out[2048];
    int st = in_child(fns[i], out, sizeof out);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 1, "case %d: %s (signal %d)", i, out,
                  WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    ck_assert_msg(strstr(out, "unmix: out of memory: could not allocate") && strstr(out, "model.dim"), "case %d: %s",
                  i, out);
    ck_assert_msg(!strstr(out, "internal error") && !strstr(out, "bug"), "case %d: %s", i, out);
  }
}
END_TEST

static Suite *error_suite(void) {
  Suite *s = suite_create("error");
  TCase *tc = tcase_create("error");
  tcase_add_test(tc, test_set_and_wrap);
  tcase_add_test(tc, test_out_of_memory_is_a_clear_error);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(error_suite)
