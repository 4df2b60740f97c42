/* Metrics CSV (RFC 4180): a writer with a fixed column list that makes every row durable
 * (write + fsync per row), the resume-time truncation that drops rows after the last
 * checkpointed epoch, and a strict reader (header + string cells with numeric accessors)
 * for the harness that collects results. Fields holding a comma, quote, CR or LF are
 * quoted, quotes doubled. Errors name file:line. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "core/util/error.h"

/* ---- writer ---------------------------------------------------------------------------------- */
struct unmix_csv_writer;

/* Opens `path` for rows of `columns` (names must be non-empty and distinct).
 * append = false: the file is (atomically) replaced by one holding only the header.
 * append = true (resume): a missing or empty file gets the header; an existing one must be
 * a valid CSV whose header is exactly `columns` (UNMIX_ERR_FORMAT otherwise) and rows are
 * added after its last row. */
unmix_status unmix_csv_open(const char *path, const char *const *columns, int ncol, bool append,
                            struct unmix_csv_writer **out);
/* Sets one cell of the row being built (UNMIX_ERR_ARG for an unknown column). Unset cells
 * are written empty. */
unmix_status unmix_csv_set(struct unmix_csv_writer *w, const char *column, const char *value);
unmix_status unmix_csv_setf(struct unmix_csv_writer *w, const char *column, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Writes the row built with set/setf, flushes and fsyncs it, and starts an empty row. */
unmix_status unmix_csv_end_row(struct unmix_csv_writer *w);
/* Writes a whole row (ncol fields, NULL = empty) at once, durably. */
unmix_status unmix_csv_write_row(struct unmix_csv_writer *w, const char *const *fields);
/* Closes the file; NULL is a no-op. */
unmix_status unmix_csv_close(struct unmix_csv_writer *w);

/* Resume: keeps the header and the leading rows whose `key_column` value is <= `value`
 * (numerically), dropping everything from the first row with a larger key on; a final row
 * cut short by a crash (no newline and malformed) is dropped too. The file is rewritten
 * atomically. A malformed row before that point is UNMIX_ERR_FORMAT naming file:line. */
unmix_status unmix_csv_truncate_after(const char *path, const char *key_column, double value);

/* ---- single fields and lines (for CSV built or read by hand) ----------------------------------- */
/* Writes one field to f, RFC 4180 quoted when it holds a comma, quote, CR or LF (NULL = empty). */
void unmix_csv_write_field(FILE *f, const char *s);
/* Splits one line (no line break; the reader's quoting rules) into at most max malloc'd
 * fields. Returns the field count, max + 1 when there are more (nothing stored), or -1 with
 * UNMIX_ERR_FORMAT set naming path:line_no. */
int unmix_csv_split_line(const char *line, const char *path, int line_no, char **fields, int max);

/* ---- reader ---------------------------------------------------------------------------------- */
struct unmix_csv_table {
  char *path;
  int ncol;
  char **header;        /* ncol names */
  size_t nrows;
  char **cells;         /* nrows x ncol, row-major; empty cells are "" */
  int *row_line;        /* the 1-based line each row starts on */
};

/* Reads a whole CSV: header first; every row must have the header's field count; a missing
 * trailing newline is fine. UNMIX_ERR_FORMAT names file:line; UNMIX_ERR_IO an unreadable file. */
unmix_status unmix_csv_read(const char *path, struct unmix_csv_table **out);
void unmix_csv_table_free(struct unmix_csv_table *t);
/* Column index by name, or -1. */
int unmix_csv_column(const struct unmix_csv_table *t, const char *name);
const char *unmix_csv_cell(const struct unmix_csv_table *t, size_t row, int col);
/* The cell of `column` in `row` as a number; UNMIX_ERR_FORMAT naming file:line and the column
 * when the column is missing or the cell is empty or not a number. */
unmix_status unmix_csv_get_double(const struct unmix_csv_table *t, size_t row, const char *column, double *out);
unmix_status unmix_csv_get_int(const struct unmix_csv_table *t, size_t row, const char *column, long long *out);
