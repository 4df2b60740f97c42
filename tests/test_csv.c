/* Metrics CSV: exact writer output and quoting, rows visible as soon as they are written,
 * resume (append with header check, truncation after an epoch, crash-cut last rows), and a
 * strict reader whose errors name file:line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io/csv.h"
#include "tests/support/testutil.h"

static char *g_dir;
static void setup(void) { g_dir = unmix_test_tmpdir("csv"); }
static void teardown(void) {
  unmix_test_rmdir(g_dir);
  free(g_dir);
  g_dir = NULL;
}

#define tmp(name) unmix_test_path(g_dir, (name))

/* Writes text to g_dir/name and returns the path. */
static const char *spit(const char *name, const char *text) {
  const char *p = tmp(name);
  unmix_test_write_text(p, text);
  return p;
}

static void expect_text(const char *path, const char *want) {
  char *got = unmix_test_read(path, NULL);
  ck_assert_msg(strcmp(got, want) == 0, "%s:\n--- got ---\n%s--- want ---\n%s", path, got, want);
  free(got);
}

static void read_fails(const char *path, const char *needle) {
  struct unmix_csv_table *t = (struct unmix_csv_table *)0x1;
  unmix_status st = unmix_csv_read(path, &t);
  ck_assert_msg(st == UNMIX_ERR_FORMAT, "%s: expected a format error, got %s (%s)", path, unmix_status_name(st),
                st ? unmix_error_message() : "read");
  ck_assert_ptr_null(t);
  ck_assert_msg(strstr(unmix_error_message(), needle) != NULL, "message lacks \"%s\": %s", needle, unmix_error_message());
}

static const char *const COLS[] = {"epoch", "train_loss", "knn_top1", "note"};

START_TEST(test_writer_output_and_quoting) {
  const char *p = tmp("m.csv");
  struct unmix_csv_writer *w = NULL;
  ck_assert_int_eq(unmix_csv_open(p, COLS, 4, false, &w), UNMIX_OK);
  expect_text(p, "epoch,train_loss,knn_top1,note\n");
  ck_assert_int_eq(unmix_csv_setf(w, "epoch", "%d", 1), UNMIX_OK);
  ck_assert_int_eq(unmix_csv_setf(w, "train_loss", "%.4f", 0.5), UNMIX_OK);
  ck_assert_int_eq(unmix_csv_end_row(w), UNMIX_OK);
  /* visible before close: the row is written and synced */
  expect_text(p, "epoch,train_loss,knn_top1,note\n1,0.5000,,\n");
  ck_assert_int_eq(unmix_csv_set(w, "note", "a, \"quoted\"\nnote\r"), UNMIX_OK);
  ck_assert_int_eq(unmix_csv_set(w, "epoch", "2"), UNMIX_OK);
  ck_assert_int_eq(unmix_csv_setf(w, "knn_top1", "%s", "91.5"), UNMIX_OK);
  ck_assert_int_eq(unmix_csv_setf(w, "train_loss", "%0300d", 0), UNMIX_OK); /* longer than the inline buffer */
  ck_assert_int_eq(unmix_csv_end_row(w), UNMIX_OK);
  const char *row3[] = {"3", NULL, "92", "plain"};
  ck_assert_int_eq(unmix_csv_write_row(w, row3), UNMIX_OK);
  ck_assert_int_eq(unmix_csv_set(w, "nope", "1"), UNMIX_ERR_ARG);
  ck_assert(strstr(unmix_error_message(), "no column 'nope'") != NULL);
  ck_assert_int_eq(unmix_csv_close(w), UNMIX_OK);
  char want[1024];
  snprintf(want, sizeof want, "epoch,train_loss,knn_top1,note\n1,0.5000,,\n2,%0300d,91.5,\"a, \"\"quoted\"\"\nnote\r\"\n3,,92,plain\n", 0);
  expect_text(p, want);
  /* and it reads back exactly */
  struct unmix_csv_table *t = NULL;
  ck_assert_msg(unmix_csv_read(p, &t) == UNMIX_OK, "%s", unmix_error_message());
  ck_assert_int_eq(t->ncol, 4);
  ck_assert_uint_eq(t->nrows, 3);
  ck_assert_str_eq(t->header[3], "note");
  ck_assert_str_eq(unmix_csv_cell(t, 1, 3), "a, \"quoted\"\nnote\r");
  ck_assert_str_eq(unmix_csv_cell(t, 0, 2), "");
  ck_assert_int_eq(t->row_line[0], 2);
  ck_assert_int_eq(t->row_line[1], 3);
  ck_assert_int_eq(t->row_line[2], 5); /* the quoted newline counts */
  unmix_csv_table_free(t);
  ck_assert_int_eq(unmix_csv_close(NULL), UNMIX_OK);
}
END_TEST

START_TEST(test_open_argument_errors) {
  struct unmix_csv_writer *w = NULL;
  const char *dup[] = {"a", "b", "a"};
  ck_assert_int_eq(unmix_csv_open(tmp("x.csv"), dup, 3, false, &w), UNMIX_ERR_ARG);
  const char *empty[] = {"a", ""};
  ck_assert_int_eq(unmix_csv_open(tmp("x.csv"), empty, 2, false, &w), UNMIX_ERR_ARG);
  ck_assert_int_eq(unmix_csv_open(tmp("x.csv"), dup, 0, false, &w), UNMIX_ERR_ARG);
  ck_assert_int_eq(unmix_csv_open(tmp("no/dir/x.csv"), COLS, 4, false, &w), UNMIX_ERR_IO);
  ck_assert(strstr(unmix_error_message(), "no/dir/x.csv") != NULL);
  ck_assert_ptr_null(w);
}
END_TEST

START_TEST(test_reader_accessors) {
  const char *p = spit("r.csv", "epoch,loss,acc,name\r\n1,0.5,,x\r\n2,1e-3,nan,y\r\n3,abc,7, z\n4,2,99999999999999999999,w");
  struct unmix_csv_table *t = NULL;
  ck_assert_msg(unmix_csv_read(p, &t) == UNMIX_OK, "%s", unmix_error_message());
  ck_assert_uint_eq(t->nrows, 4); /* CRLF and a missing final newline are fine */
  ck_assert_str_eq(unmix_csv_cell(t, 3, 3), "w");
  ck_assert_int_eq(unmix_csv_column(t, "acc"), 2);
  ck_assert_int_eq(unmix_csv_column(t, "ACC"), -1);
  double d;
  long long ll;
  ck_assert_int_eq(unmix_csv_get_double(t, 1, "loss", &d), UNMIX_OK);
  ck_assert_double_eq(d, 1e-3);
  ck_assert_int_eq(unmix_csv_get_int(t, 2, "epoch", &ll), UNMIX_OK);
  ck_assert_int_eq(ll, 3);
  ck_assert_int_eq(unmix_csv_get_double(t, 1, "acc", &d), UNMIX_OK); /* a diverged run's nan is a number */
  ck_assert(d != d);
  ck_assert_int_eq(unmix_csv_get_double(t, 2, "loss", &d), UNMIX_ERR_FORMAT);
  ck_assert_msg(strstr(unmix_error_message(), "r.csv:4: column 'loss': 'abc' is not a number"), "%s", unmix_error_message());
  ck_assert_int_eq(unmix_csv_get_double(t, 0, "acc", &d), UNMIX_ERR_FORMAT);
  ck_assert(strstr(unmix_error_message(), "r.csv:2: column 'acc' is empty"));
  ck_assert_int_eq(unmix_csv_get_double(t, 0, "top5", &d), UNMIX_ERR_FORMAT);
  ck_assert(strstr(unmix_error_message(), "r.csv: no column 'top5'"));
  ck_assert_int_eq(unmix_csv_get_int(t, 1, "loss", &ll), UNMIX_ERR_FORMAT);
  ck_assert(strstr(unmix_error_message(), "'1e-3' is not an integer"));
  ck_assert_int_eq(unmix_csv_get_int(t, 3, "acc", &ll), UNMIX_ERR_FORMAT);
  ck_assert_int_eq(unmix_csv_get_double(t, 2, "name", &d), UNMIX_ERR_FORMAT); /* " z" */
  ck_assert_int_eq(unmix_csv_get_double(t, 9, "loss", &d), UNMIX_ERR_FORMAT);
  unmix_csv_table_free(t);
  /* header only */
  ck_assert_int_eq(unmix_csv_read(spit("h.csv", "a,b"), &t), UNMIX_OK);
  ck_assert_uint_eq(t->nrows, 0);
  ck_assert_int_eq(t->ncol, 2);
  unmix_csv_table_free(t);
}
END_TEST

START_TEST(test_reader_errors) {
  read_fails(spit("e1.csv", "a,b,c\n1,2,3\n4,5\n"), "e1.csv:3: 2 fields, but the header has 3");
  read_fails(spit("e2.csv", "a,b\n1,2\n3,4,5\n"), "e2.csv:3: 3 fields, but the header has 2");
  read_fails(spit("e3.csv", "a,b\n1,\"2\n3,4\n"), "e3.csv:2: a quoted field is never closed");
  read_fails(spit("e4.csv", "a,b\n1,\"2\"x\n"), "e4.csv:2: unexpected 'x' after a closing quote");
  read_fails(spit("e5.csv", "a,b\n1,2\"3\n"), "e5.csv:2: a quote inside an unquoted field");
  read_fails(spit("e6.csv", ""), "e6.csv: empty file: no header line");
  read_fails(spit("e7.csv", "a,b,a\n"), "e7.csv:1: column 'a' appears twice");
  read_fails(spit("e8.csv", "a,,c\n"), "e8.csv:1: column 2 of the header is empty");
  read_fails(spit("e9.csv", "a,b\n1,2\n\n"), "e9.csv:3: 1 field, but the header has 2");
  read_fails(spit("e10.csv", "a,b\n1,2\r3\n"), "e10.csv:2: a carriage return inside an unquoted field");
  struct unmix_csv_table *t = NULL;
  ck_assert_int_eq(unmix_csv_read(tmp("missing.csv"), &t), UNMIX_ERR_IO);
  ck_assert(strstr(unmix_error_message(), "missing.csv") != NULL);
}
END_TEST

static void write_epochs(const char *p, int from, int to, bool append) {
  struct unmix_csv_writer *w = NULL;
  ck_assert_msg(unmix_csv_open(p, COLS, 4, append, &w) == UNMIX_OK, "%s", unmix_error_message());
  for (int e = from; e <= to; e++) {
    ck_assert_int_eq(unmix_csv_setf(w, "epoch", "%d", e), UNMIX_OK);
    ck_assert_int_eq(unmix_csv_setf(w, "train_loss", "%.2f", 10.0 / e), UNMIX_OK);
    ck_assert_int_eq(unmix_csv_end_row(w), UNMIX_OK);
  }
  ck_assert_int_eq(unmix_csv_close(w), UNMIX_OK);
}

START_TEST(test_resume_truncate_and_append) {
  const char *p = tmp("metrics.csv");
  write_epochs(p, 1, 7, false);
  /* the last checkpoint was epoch 5: rows 6 and 7 go, then the resumed run appends 6.. */
  ck_assert_int_eq(unmix_csv_truncate_after(p, "epoch", 5), UNMIX_OK);
  expect_text(p, "epoch,train_loss,knn_top1,note\n1,10.00,,\n2,5.00,,\n3,3.33,,\n4,2.50,,\n5,2.00,,\n");
  write_epochs(p, 6, 7, true);
  expect_text(p, "epoch,train_loss,knn_top1,note\n1,10.00,,\n2,5.00,,\n3,3.33,,\n4,2.50,,\n5,2.00,,\n6,1.67,,\n7,1.43,,\n");
  /* nothing beyond: unchanged */
  ck_assert_int_eq(unmix_csv_truncate_after(p, "epoch", 100), UNMIX_OK);
  struct unmix_csv_table *t = NULL;
  ck_assert_int_eq(unmix_csv_read(p, &t), UNMIX_OK);
  ck_assert_uint_eq(t->nrows, 7);
  unmix_csv_table_free(t);
  /* a checkpoint before the first epoch: header only */
  ck_assert_int_eq(unmix_csv_truncate_after(p, "epoch", 0), UNMIX_OK);
  expect_text(p, "epoch,train_loss,knn_top1,note\n");
  /* a fresh (non-append) open replaces whatever was there */
  write_epochs(p, 1, 2, true);
  write_epochs(p, 1, 1, false);
  expect_text(p, "epoch,train_loss,knn_top1,note\n1,10.00,,\n");
}
END_TEST

START_TEST(test_resume_after_a_crash_mid_row) {
  /* the process died while writing epoch 4's row */
  const char *p = spit("crash.csv", "epoch,train_loss,knn_top1,note\n1,1,,\n2,2,,\n3,3,,\n4,0.12");
  ck_assert_int_eq(unmix_csv_truncate_after(p, "epoch", 3), UNMIX_OK);
  expect_text(p, "epoch,train_loss,knn_top1,note\n1,1,,\n2,2,,\n3,3,,\n");
  /* even when the cut row happens to look complete, and when it is an unclosed quote */
  p = spit("crash2.csv", "epoch,train_loss,knn_top1,note\n1,1,,\n2,2,,x\n3,3,9");
  ck_assert_int_eq(unmix_csv_truncate_after(p, "epoch", 10), UNMIX_OK);
  expect_text(p, "epoch,train_loss,knn_top1,note\n1,1,,\n2,2,,x\n");
  p = spit("crash3.csv", "epoch,train_loss,knn_top1,note\n1,1,,\n2,2,,\"a, b");
  ck_assert_int_eq(unmix_csv_truncate_after(p, "epoch", 10), UNMIX_OK);
  expect_text(p, "epoch,train_loss,knn_top1,note\n1,1,,\n");
  /* a header cut short keeps the header with a newline */
  p = spit("crash4.csv", "epoch,train_loss,knn_top1,note");
  ck_assert_int_eq(unmix_csv_truncate_after(p, "epoch", 10), UNMIX_OK);
  expect_text(p, "epoch,train_loss,knn_top1,note\n");
  /* append after a complete final row that lacks its newline (hand-edited file) */
  p = spit("nonl.csv", "epoch,train_loss,knn_top1,note\n1,1,,");
  write_epochs(p, 2, 2, true);
  expect_text(p, "epoch,train_loss,knn_top1,note\n1,1,,\n2,5.00,,\n");
}
END_TEST

START_TEST(test_resume_errors) {
  /* damage before the cut point is an error naming the line, and the file is untouched */
  const char *text = "epoch,loss\n1,1\n2,2,2\n3,3\n";
  const char *p = spit("bad.csv", text);
  ck_assert_int_eq(unmix_csv_truncate_after(p, "epoch", 3), UNMIX_ERR_FORMAT);
  ck_assert_msg(strstr(unmix_error_message(), "bad.csv:3: 3 fields, but the header has 2"), "%s", unmix_error_message());
  expect_text(p, text);
  p = spit("bad2.csv", "epoch,loss\n1,1\nfive,2\n");
  ck_assert_int_eq(unmix_csv_truncate_after(p, "epoch", 3), UNMIX_ERR_FORMAT);
  ck_assert(strstr(unmix_error_message(), "bad2.csv:3: column 'epoch': 'five' is not a number"));
  p = spit("bad3.csv", "epoch,loss\n1,1\n2,\"x\"y\n3,3\n");
  ck_assert_int_eq(unmix_csv_truncate_after(p, "epoch", 3), UNMIX_ERR_FORMAT);
  ck_assert_msg(strstr(unmix_error_message(), "bad3.csv:3: unexpected 'y'"), "%s", unmix_error_message());
  ck_assert_int_eq(unmix_csv_truncate_after(p, "step", 3), UNMIX_ERR_FORMAT);
  ck_assert(strstr(unmix_error_message(), "no column 'step'"));
  ck_assert_int_eq(unmix_csv_truncate_after(spit("empty.csv", ""), "epoch", 3), UNMIX_ERR_FORMAT);
  ck_assert_int_eq(unmix_csv_truncate_after(tmp("none.csv"), "epoch", 3), UNMIX_ERR_IO);
  /* appending to a file whose header differs */
  p = spit("other.csv", "epoch,loss\n1,1\n");
  struct unmix_csv_writer *w = NULL;
  ck_assert_int_eq(unmix_csv_open(p, COLS, 4, true, &w), UNMIX_ERR_FORMAT);
  ck_assert(strstr(unmix_error_message(), "other.csv: its header differs"));
  ck_assert_ptr_null(w);
  /* appending to a damaged file */
  p = spit("dmg.csv", "epoch,train_loss,knn_top1,note\n1,1\n");
  ck_assert_int_eq(unmix_csv_open(p, COLS, 4, true, &w), UNMIX_ERR_FORMAT);
  ck_assert(strstr(unmix_error_message(), "dmg.csv:2"));
  /* appending to a missing or empty file writes the header */
  p = spit("zero.csv", "");
  write_epochs(p, 1, 1, true);
  expect_text(p, "epoch,train_loss,knn_top1,note\n1,10.00,,\n");
  write_epochs(tmp("fresh.csv"), 1, 1, true);
  expect_text(tmp("fresh.csv"), "epoch,train_loss,knn_top1,note\n1,10.00,,\n");
}
END_TEST

START_TEST(test_write_field_quoting) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  const char *in[] = {"plain", "a,b", "say \"hi\"", "two\nlines", "cr\r", "", NULL};
  for (int i = 0; i < 7; i++) {
    if (i) fputc('|', f);
    unmix_csv_write_field(f, in[i]);
  }
  fclose(f);
  ck_assert_str_eq(buf, "plain|\"a,b\"|\"say \"\"hi\"\"\"|\"two\nlines\"|\"cr\r\"||");
  free(buf);
}
END_TEST

START_TEST(test_split_line) {
  char *f[4];
  int n = unmix_csv_split_line("a,\"b,c\",\"say \"\"x\"\"\",", "p.csv", 3, f, 4);
  ck_assert_int_eq(n, 4);
  ck_assert_str_eq(f[0], "a");
  ck_assert_str_eq(f[1], "b,c");
  ck_assert_str_eq(f[2], "say \"x\"");
  ck_assert_str_eq(f[3], "");
  for (int i = 0; i < n; i++) free(f[i]);
  n = unmix_csv_split_line("", "p.csv", 3, f, 4); /* an empty line: one empty field */
  ck_assert_int_eq(n, 1);
  ck_assert_str_eq(f[0], "");
  free(f[0]);
  /* more fields than room: max + 1, nothing stored */
  ck_assert_int_eq(unmix_csv_split_line("1,2,3,4,5", "p.csv", 3, f, 4), 5);
  /* malformed quoting names path:line */
  ck_assert_int_eq(unmix_csv_split_line("a,\"open", "p.csv", 7, f, 4), -1);
  ck_assert_msg(strstr(unmix_error_message(), "p.csv:7") != NULL, "%s", unmix_error_message());
  ck_assert_int_eq(unmix_csv_split_line("a,b\"c", "p.csv", 8, f, 4), -1);
  ck_assert_msg(strstr(unmix_error_message(), "p.csv:8: a quote inside an unquoted field") != NULL, "%s",
                unmix_error_message());
  ck_assert_int_eq(unmix_csv_split_line("\"x\"y", "p.csv", 9, f, 4), -1);
  ck_assert_int_eq(unmix_csv_split_line("a\nb", "p.csv", 10, f, 4), -1);
  ck_assert_msg(strstr(unmix_error_message(), "p.csv:10: a line break") != NULL, "%s", unmix_error_message());
}
END_TEST

START_TEST(test_reader_non_files) {
  struct unmix_csv_table *t = NULL;
  ck_assert_int_eq(unmix_csv_read(g_dir, &t), UNMIX_ERR_IO); /* a directory */
  ck_assert_ptr_null(t);
  ck_assert_int_eq(unmix_csv_read(tmp("nope.csv"), &t), UNMIX_ERR_IO);
  ck_assert_msg(strstr(unmix_error_message(), "nope.csv") != NULL, "%s", unmix_error_message());
}
END_TEST

static Suite *csv_suite(void) {
  Suite *s = suite_create("csv");
  TCase *tc = tcase_create("csv");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_writer_output_and_quoting);
  tcase_add_test(tc, test_open_argument_errors);
  tcase_add_test(tc, test_reader_accessors);
  tcase_add_test(tc, test_reader_errors);
  tcase_add_test(tc, test_resume_truncate_and_append);
  tcase_add_test(tc, test_resume_after_a_crash_mid_row);
  tcase_add_test(tc, test_resume_errors);
  tcase_add_test(tc, test_write_field_quoting);
  tcase_add_test(tc, test_split_line);
  tcase_add_test(tc, test_reader_non_files);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(csv_suite)
