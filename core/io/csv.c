/* Metrics CSV writer (durable rows), resume truncation and strict reader (see csv.h). */
#include "core/io/csv.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/io/atomic.h"
#include "core/util/fs.h"

#define MAX_CSV_BYTES (256u << 20)

/* ---- growable buffers ------------------------------------------------------------------------- */

struct sbuf {
  char *p;
  size_t len, cap;
};

static void sb_put(struct sbuf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (b->len + n + 1 > cap) cap *= 2;
    b->p = unmix_xrealloc(b->p, cap);
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}
static void sb_putc(struct sbuf *b, char c) { sb_put(b, &c, 1); }

void unmix_csv_write_field(FILE *f, const char *s) {
  if (!s) s = "";
  if (!strpbrk(s, ",\"\r\n")) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"') fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

/* One CSV line (fields quoted as needed, NULL = empty, '\n' at the end) in a malloc'd
 * buffer. */
static char *format_row(const char *const *fields, int n, size_t *len) {
  char *buf = NULL;
  FILE *f = open_memstream(&buf, len);
  if (!f) unmix_panic(__FILE__, __LINE__, "open_memstream: out of memory");
  for (int i = 0; i < n; i++) {
    if (i) fputc(',', f);
    unmix_csv_write_field(f, fields[i]);
  }
  fputc('\n', f);
  if (ferror(f) || fclose(f) != 0) unmix_panic(__FILE__, __LINE__, "building a CSV row in memory failed");
  return buf;
}

/* ---- the record parser ------------------------------------------------------------------------ */

struct rec {
  char **f;
  int n, cap;
  int line;         /* where the record starts */
  bool terminated;  /* ended by a newline (not by the end of the file) */
  size_t end;       /* offset just past the record */
};

static void rec_clear(struct rec *r) {
  for (int i = 0; i < r->n; i++) free(r->f[i]);
  r->n = 0;
}
static void rec_free(struct rec *r) {
  rec_clear(r);
  free(r->f);
  r->f = NULL;
  r->cap = 0;
}
static void rec_push(struct rec *r, struct sbuf *field) {
  if (r->n == r->cap) {
    r->cap = r->cap ? 2 * r->cap : 8;
    r->f = unmix_xrealloc(r->f, (size_t)r->cap * sizeof *r->f);
  }
  r->f[r->n++] = field->p ? field->p : unmix_xstrdup("");
  *field = (struct sbuf){0};
}

/* Parses the record at *pos. Returns 1 (a record), 0 (end of input) or -1 (error set,
 * naming path:line). *line counts newlines consumed. */
static int parse_record(const char *buf, size_t len, size_t *pos, int *line, const char *path, struct rec *r) {
  rec_clear(r);
  size_t i = *pos;
  if (i >= len) return 0;
  r->line = *line;
  r->terminated = false;
  struct sbuf field = {0};
  for (;;) {
    if (i < len && buf[i] == '"') {
      int qline = *line;
      i++;
      for (;;) {
        if (i >= len) {
          free(field.p);
          unmix_error_set(UNMIX_ERR_FORMAT, "%s:%d: a quoted field is never closed", path, qline);
          return -1;
        }
        char c = buf[i++];
        if (c == '"') {
          if (i < len && buf[i] == '"') {
            sb_putc(&field, '"');
            i++;
            continue;
          }
          break;
        }
        if (c == '\n') (*line)++;
        sb_putc(&field, c);
      }
      if (i < len && buf[i] != ',' && buf[i] != '\n' && !(buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n')) {
        free(field.p);
        unmix_error_set(UNMIX_ERR_FORMAT, "%s:%d: unexpected '%c' after a closing quote", path, *line, buf[i]);
        return -1;
      }
    } else {
      while (i < len && buf[i] != ',' && buf[i] != '\n') {
        if (buf[i] == '"' || buf[i] == '\r') {
          if (buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n') break;
          free(field.p);
          unmix_error_set(UNMIX_ERR_FORMAT, "%s:%d: %s inside an unquoted field", path, *line,
                          buf[i] == '"' ? "a quote" : "a carriage return");
          return -1;
        }
        if (buf[i] == 0) {
          free(field.p);
          unmix_error_set(UNMIX_ERR_FORMAT, "%s:%d: a NUL byte (not a text file?)", path, *line);
          return -1;
        }
        sb_putc(&field, buf[i++]);
      }
    }
    rec_push(r, &field);
    if (i >= len) break;
    if (buf[i] == ',') {
      i++;
      continue;
    }
    if (buf[i] == '\r') i++;
    i++; /* '\n' */
    (*line)++;
    r->terminated = true;
    break;
  }
  *pos = i;
  r->end = i;
  return 1;
}

/* The whole file as NUL-terminated text; the size cap keeps a wrong path (a dataset, a
 * checkpoint) from being read into memory. */
static unmix_status read_all(const char *path, char **out, size_t *len) {
  uint8_t *b = NULL;
  UNMIX_TRY(unmix_fs_read(path, MAX_CSV_BYTES, &b, len));
  *out = (char *)b;
  return UNMIX_OK;
}

int unmix_csv_split_line(const char *line, const char *path, int line_no, char **fields, int max) {
  const size_t len = strlen(line);
  size_t pos = 0;
  int ln = line_no;
  struct rec r = {0};
  int k = parse_record(line, len, &pos, &ln, path, &r);
  if (k < 0) {
    rec_free(&r);
    return -1;
  }
  if (k == 0) { /* an empty line is one empty field, as in a file */
    fields[0] = unmix_xstrdup("");
    return 1;
  }
  if (pos < len) {
    rec_free(&r);
    unmix_error_set(UNMIX_ERR_FORMAT, "%s:%d: a line break inside the line", path, line_no);
    return -1;
  }
  const int n = r.n;
  if (n > max) {
    rec_free(&r);
    return max + 1;
  }
  for (int i = 0; i < n; i++) fields[i] = r.f[i]; /* ownership moves to the caller */
  free(r.f);
  return n;
}

/* Header validation shared by the reader and truncation. */
static unmix_status check_header(const char *path, const struct rec *h) {
  for (int i = 0; i < h->n; i++) {
    if (!h->f[i][0]) return unmix_error_set(UNMIX_ERR_FORMAT, "%s:1: column %d of the header is empty", path, i + 1);
    for (int j = 0; j < i; j++)
      if (!strcmp(h->f[i], h->f[j]))
        return unmix_error_set(UNMIX_ERR_FORMAT, "%s:1: column '%s' appears twice in the header", path, h->f[i]);
  }
  return UNMIX_OK;
}

/* ---- reader ------------------------------------------------------------------------------------ */

void unmix_csv_table_free(struct unmix_csv_table *t) {
  if (!t) return;
  for (int i = 0; i < t->ncol; i++) free(t->header[i]);
  for (size_t i = 0; i < t->nrows * (size_t)t->ncol; i++) free(t->cells[i]);
  free(t->header);
  free(t->cells);
  free(t->row_line);
  free(t->path);
  free(t);
}

unmix_status unmix_csv_read(const char *path, struct unmix_csv_table **out) {
  *out = NULL;
  char *buf = NULL;
  size_t len = 0;
  UNMIX_TRY(read_all(path, &buf, &len));
  struct rec r = {0};
  size_t pos = 0;
  int line = 1;
  int k = parse_record(buf, len, &pos, &line, path, &r);
  if (k <= 0) {
    free(buf);
    rec_free(&r);
    return k < 0 ? UNMIX_ERR_FORMAT : unmix_error_set(UNMIX_ERR_FORMAT, "%s: empty file: no header line", path);
  }
  unmix_status st = check_header(path, &r);
  if (st != UNMIX_OK) {
    free(buf);
    rec_free(&r);
    return st;
  }
  struct unmix_csv_table *t = unmix_xcalloc(1, sizeof *t);
  t->path = unmix_xstrdup(path);
  t->ncol = r.n;
  t->header = unmix_xmalloc((size_t)r.n * sizeof *t->header);
  for (int i = 0; i < r.n; i++) t->header[i] = r.f[i];
  r.n = 0;
  size_t cap = 0;
  while ((k = parse_record(buf, len, &pos, &line, path, &r)) == 1) {
    if (r.n != t->ncol) {
      st = unmix_error_set(UNMIX_ERR_FORMAT, "%s:%d: %d field%s, but the header has %d", path, r.line, r.n,
                           r.n == 1 ? "" : "s", t->ncol);
      break;
    }
    if (t->nrows == cap) {
      cap = cap ? 2 * cap : 64;
      t->cells = unmix_xrealloc(t->cells, cap * (size_t)t->ncol * sizeof *t->cells);
      t->row_line = unmix_xrealloc(t->row_line, cap * sizeof *t->row_line);
    }
    for (int i = 0; i < r.n; i++) t->cells[t->nrows * (size_t)t->ncol + (size_t)i] = r.f[i];
    r.n = 0;
    t->row_line[t->nrows++] = r.line;
  }
  if (k < 0) st = UNMIX_ERR_FORMAT;
  rec_free(&r);
  free(buf);
  if (st != UNMIX_OK) {
    unmix_csv_table_free(t);
    return st;
  }
  *out = t;
  return UNMIX_OK;
}

int unmix_csv_column(const struct unmix_csv_table *t, const char *name) {
  for (int i = 0; i < t->ncol; i++)
    if (!strcmp(t->header[i], name)) return i;
  return -1;
}

const char *unmix_csv_cell(const struct unmix_csv_table *t, size_t row, int col) {
  UNMIX_REQUIRE(row < t->nrows && col >= 0 && col < t->ncol, "csv cell (%zu, %d) outside %zu x %d", row, col, t->nrows,
                t->ncol);
  return t->cells[row * (size_t)t->ncol + (size_t)col];
}

static unmix_status cell_text(const struct unmix_csv_table *t, size_t row, const char *column, const char **s) {
  int c = unmix_csv_column(t, column);
  if (c < 0) return unmix_error_set(UNMIX_ERR_FORMAT, "%s: no column '%s'", t->path, column);
  if (row >= t->nrows) return unmix_error_set(UNMIX_ERR_FORMAT, "%s: no row %zu (%zu rows)", t->path, row, t->nrows);
  *s = unmix_csv_cell(t, row, c);
  if (!(*s)[0])
    return unmix_error_set(UNMIX_ERR_FORMAT, "%s:%d: column '%s' is empty", t->path, t->row_line[row], column);
  return UNMIX_OK;
}

/* strtod with full checking: the whole text, no leading space, no overflow. */
static bool parse_double(const char *s, double *out) {
  if (!s[0] || isspace((unsigned char)s[0])) return false;
  char *end = NULL;
  errno = 0;
  double v = strtod(s, &end);
  if (*end || end == s) return false;
  if (errno == ERANGE && isinf(v)) return false;
  *out = v;
  return true;
}

unmix_status unmix_csv_get_double(const struct unmix_csv_table *t, size_t row, const char *column, double *out) {
  const char *s = NULL;
  UNMIX_TRY(cell_text(t, row, column, &s));
  if (!parse_double(s, out))
    return unmix_error_set(UNMIX_ERR_FORMAT, "%s:%d: column '%s': '%.40s' is not a number", t->path, t->row_line[row],
                           column, s);
  return UNMIX_OK;
}

unmix_status unmix_csv_get_int(const struct unmix_csv_table *t, size_t row, const char *column, long long *out) {
  const char *s = NULL;
  UNMIX_TRY(cell_text(t, row, column, &s));
  char *end = NULL;
  errno = 0;
  long long v = isspace((unsigned char)s[0]) ? 0 : strtoll(s, &end, 10);
  if (isspace((unsigned char)s[0]) || !end || *end || end == s || errno == ERANGE)
    return unmix_error_set(UNMIX_ERR_FORMAT, "%s:%d: column '%s': '%.40s' is not an integer", t->path, t->row_line[row],
                           column, s);
  *out = v;
  return UNMIX_OK;
}

/* ---- writer ------------------------------------------------------------------------------------ */

struct unmix_csv_writer {
  char *path;
  int fd;
  int ncol;
  char **cols;
  char **vals;  /* the row being built (NULL = empty) */
};

static void writer_free(struct unmix_csv_writer *w) {
  if (w->fd >= 0) close(w->fd);
  for (int i = 0; i < w->ncol; i++) {
    free(w->cols[i]);
    free(w->vals[i]);
  }
  free(w->cols);
  free(w->vals);
  free(w->path);
  free(w);
}

static unmix_status write_header_file(const char *path, const char *const *columns, int ncol) {
  size_t len = 0;
  char *row = format_row(columns, ncol, &len);
  struct unmix_chunk c = {row, len};
  unmix_status st = unmix_atomic_write(path, &c, 1);
  free(row);
  return st;
}

unmix_status unmix_csv_open(const char *path, const char *const *columns, int ncol, bool append,
                            struct unmix_csv_writer **out) {
  *out = NULL;
  if (ncol < 1) return unmix_error_set(UNMIX_ERR_ARG, "%s: a CSV needs at least one column", path);
  for (int i = 0; i < ncol; i++) {
    if (!columns[i] || !columns[i][0]) return unmix_error_set(UNMIX_ERR_ARG, "%s: column %d has no name", path, i + 1);
    for (int j = 0; j < i; j++)
      if (!strcmp(columns[i], columns[j]))
        return unmix_error_set(UNMIX_ERR_ARG, "%s: column '%s' given twice", path, columns[i]);
  }
  bool need_newline = false;
  struct stat sb;
  bool exists = stat(path, &sb) == 0 && sb.st_size > 0;
  if (!append || !exists) {
    UNMIX_TRY(write_header_file(path, columns, ncol));
  } else {
    struct unmix_csv_table *t = NULL;
    UNMIX_TRY(unmix_csv_read(path, &t));
    bool same = t->ncol == ncol;
    for (int i = 0; same && i < ncol; i++) same = !strcmp(t->header[i], columns[i]);
    unmix_csv_table_free(t);
    if (!same)
      return unmix_error_set(UNMIX_ERR_FORMAT, "%s: its header differs from the %d columns this run writes "
                             "(starting with '%s'); move the old file away or start a fresh run", path, ncol, columns[0]);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char last = '\n';
    if (fd < 0 || pread(fd, &last, 1, sb.st_size - 1) != 1) {
      if (fd >= 0) close(fd);
      return unmix_error_set(UNMIX_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
    }
    close(fd);
    need_newline = last != '\n';
  }
  struct unmix_csv_writer *w = unmix_xcalloc(1, sizeof *w);
  w->path = unmix_xstrdup(path);
  w->ncol = ncol;
  w->cols = unmix_xcalloc((size_t)ncol, sizeof *w->cols);
  w->vals = unmix_xcalloc((size_t)ncol, sizeof *w->vals);
  for (int i = 0; i < ncol; i++) w->cols[i] = unmix_xstrdup(columns[i]);
  w->fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
  if (w->fd < 0) {
    unmix_status st = unmix_error_set(UNMIX_ERR_IO, "cannot open '%s' for appending: %s", path, strerror(errno));
    writer_free(w);
    return st;
  }
  if (need_newline) {
    unmix_status st = unmix_write_all(w->fd, "\n", 1, path);
    if (st != UNMIX_OK) {
      writer_free(w);
      return st;
    }
  }
  *out = w;
  return UNMIX_OK;
}

unmix_status unmix_csv_set(struct unmix_csv_writer *w, const char *column, const char *value) {
  for (int i = 0; i < w->ncol; i++)
    if (!strcmp(w->cols[i], column)) {
      free(w->vals[i]);
      w->vals[i] = unmix_xstrdup(value ? value : "");
      return UNMIX_OK;
    }
  return unmix_error_set(UNMIX_ERR_ARG, "%s: no column '%s' in this metrics file", w->path, column);
}

unmix_status unmix_csv_setf(struct unmix_csv_writer *w, const char *column, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char small[128];
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) return unmix_error_set(UNMIX_ERR_ARG, "%s: column '%s': bad format", w->path, column);
  if ((size_t)n < sizeof small) return unmix_csv_set(w, column, small);
  char *big = unmix_xmalloc((size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  unmix_status st = unmix_csv_set(w, column, big);
  free(big);
  return st;
}

unmix_status unmix_csv_write_row(struct unmix_csv_writer *w, const char *const *fields) {
  size_t len = 0;
  char *row = format_row(fields, w->ncol, &len);
  unmix_status st = unmix_write_all(w->fd, row, len, w->path);
  free(row);
  if (st == UNMIX_OK && fsync(w->fd) != 0)
    st = unmix_error_set(UNMIX_ERR_IO, "cannot fsync '%s': %s", w->path, strerror(errno));
  return st;
}

unmix_status unmix_csv_end_row(struct unmix_csv_writer *w) {
  unmix_status st = unmix_csv_write_row(w, (const char *const *)w->vals);
  for (int i = 0; i < w->ncol; i++) {
    free(w->vals[i]);
    w->vals[i] = NULL;
  }
  return st;
}

unmix_status unmix_csv_close(struct unmix_csv_writer *w) {
  if (!w) return UNMIX_OK;
  unmix_status st = UNMIX_OK;
  if (close(w->fd) != 0) st = unmix_error_set(UNMIX_ERR_IO, "cannot close '%s': %s", w->path, strerror(errno));
  w->fd = -1;
  writer_free(w);
  return st;
}

/* ---- resume truncation ----------------------------------------------------------------------------- */

unmix_status unmix_csv_truncate_after(const char *path, const char *key_column, double value) {
  char *buf = NULL;
  size_t len = 0;
  UNMIX_TRY(read_all(path, &buf, &len));
  struct rec r = {0};
  size_t pos = 0;
  int line = 1;
  unmix_status st = UNMIX_OK;
  int k = parse_record(buf, len, &pos, &line, path, &r);
  int key = -1, ncol = r.n;
  if (k == 0) st = unmix_error_set(UNMIX_ERR_FORMAT, "%s: empty file: no header line", path);
  else if (k < 0) st = UNMIX_ERR_FORMAT;
  else st = check_header(path, &r);
  if (st == UNMIX_OK) {
    for (int i = 0; i < r.n; i++)
      if (!strcmp(r.f[i], key_column)) key = i;
    if (key < 0) st = unmix_error_set(UNMIX_ERR_FORMAT, "%s: no column '%s' to truncate on", path, key_column);
  }
  size_t keep = r.end;
  bool keep_terminated = r.terminated;
  while (st == UNMIX_OK) {
    size_t start = pos;
    int rline = line;
    k = parse_record(buf, len, &pos, &line, path, &r);
    if (k == 0) break;
    /* Our writer ends every row with a newline, so a final record without one (or one that
     * does not even parse up to the end of the file) is a row cut short by a crash: drop it. */
    if (k < 0) {
      if (!memchr(buf + start, '\n', len - start)) break;
      st = UNMIX_ERR_FORMAT;
      unmix_error_wrap(st, "cannot truncate");
      break;
    }
    if (!r.terminated) break;
    double v = 0;
    if (r.n != ncol) {
      st = unmix_error_set(UNMIX_ERR_FORMAT, "cannot truncate: %s:%d: %d fields, but the header has %d", path, rline,
                           r.n, ncol);
      break;
    }
    if (!parse_double(r.f[key], &v)) {
      st = unmix_error_set(UNMIX_ERR_FORMAT, "cannot truncate: %s:%d: column '%s': '%.40s' is not a number", path, rline,
                           key_column, r.f[key]);
      break;
    }
    if (v > value) break;
    keep = r.end;
    keep_terminated = r.terminated;
  }
  rec_free(&r);
  if (st == UNMIX_OK) {
    struct unmix_chunk c[2] = {{buf, keep}, {"\n", keep_terminated ? 0 : 1}};
    st = unmix_atomic_write(path, c, 2);
  }
  free(buf);
  return st;
}
