/* Test support (see testutil.h). */
#define _GNU_SOURCE
#include "tests/support/testutil.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/comm/comm.h"
#include "core/util/blas.h"
#include "core/util/fs.h"
#include "core/util/rng.h"

void unmix_test_init(int argc, char **argv) { unmix_blas_fix_coretype(argc, argv); }

int unmix_test_run(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}

struct unmix_comm *unmix_test_comm_open(void) {
  struct unmix_comm_options o;
  unmix_comm_options_init(&o);
  o.timeout_s = 60;
  struct unmix_comm *c = NULL;
  ck_assert_msg(unmix_comm_create(&o, &c) == UNMIX_OK, "%s", unmix_error_message());
  ck_assert_msg(unmix_comm_attach_backend(c, unmix_test_cpu()) == UNMIX_OK, "%s", unmix_error_message());
  return c;
}

const struct unmix_backend *unmix_test_cpu(void) {
  const struct unmix_backend *be = NULL;
  ck_assert_msg(unmix_backend_get("cpu", &be) == UNMIX_OK, "cpu backend: %s", unmix_error_message());
  return be;
}

const struct unmix_backend *unmix_test_cuda_or_skip(const char *case_name) {
  const struct unmix_backend *be = NULL;
  if (unmix_backend_get("cuda", &be) != UNMIX_OK) {
    printf("SKIPPED (%s): %s\n", unmix_error_message(), case_name);
    fflush(stdout);
    unmix_error_clear();
    return NULL;
  }
  return be;
}

static bool close_impl(const char *what, size_t n, double atol, double rtol, double (*get_a)(const void *, size_t),
                       double (*get_b)(const void *, size_t), const void *a, const void *b) {
  size_t bad = 0, first = (size_t)-1, worst = 0;
  double worst_excess = -1.0;
  for (size_t i = 0; i < n; i++) {
    double x = get_a(a, i), y = get_b(b, i);
    bool fx = isfinite(x), fy = isfinite(y);
    bool ok;
    double excess = 0.0;
    if (!fx || !fy) {
      ok = (isnan(x) && isnan(y)) || (x == y);
      excess = ok ? 0.0 : INFINITY;
    } else {
      double lim = atol + rtol * fabs(y);
      excess = fabs(x - y) - lim;
      ok = excess <= 0.0;
    }
    if (!ok) {
      if (bad == 0) first = i;
      bad++;
      if (excess > worst_excess) {
        worst_excess = excess;
        worst = i;
      }
    }
  }
  if (bad) {
    fprintf(stderr,
            "MISMATCH %s: %zu of %zu elements outside atol=%g rtol=%g; first [%zu] got %.9g want %.9g; "
            "worst [%zu] got %.9g want %.9g\n",
            what, bad, n, atol, rtol, first, get_a(a, first), get_b(b, first), worst, get_a(a, worst),
            get_b(b, worst));
    return false;
  }
  return true;
}
static double getf(const void *p, size_t i) { return ((const float *)p)[i]; }
static double getd(const void *p, size_t i) { return ((const double *)p)[i]; }

bool unmix_close(const char *what, const float *a, const float *b, size_t n, double atol, double rtol) {
  return close_impl(what, n, atol, rtol, getf, getf, a, b);
}
bool unmix_close_d(const char *what, const double *a, const double *b, size_t n, double atol, double rtol) {
  return close_impl(what, n, atol, rtol, getd, getd, a, b);
}

double unmix_nmse(const float *a, const float *b, size_t n) {
  double md = 0.0, mb = 1e-30;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)a[i] - b[i]);
    if (d > md || isnan(d)) md = d;
    if (fabs(b[i]) > mb) mb = fabs(b[i]);
  }
  return md / mb;
}

void unmix_test_fill(float *x, size_t n, uint32_t idx, float lo, float hi) {
  struct unmix_rng r = unmix_rng_make(12345, UNMIX_RNG_TEST, 0, idx, 0);
  unmix_rng_fill_uniform(&r, x, n, lo, hi);
}

#define GUARD 16
#define GUARD_VAL 1234567.0f
float *unmix_guarded_alloc(size_t n) {
  float *p = malloc((n + 2 * GUARD) * sizeof(float));
  ck_assert_ptr_nonnull(p);
  for (size_t i = 0; i < GUARD; i++) p[i] = p[GUARD + n + i] = GUARD_VAL;
  memset(p + GUARD, 0, n * sizeof(float));
  return p + GUARD;
}
bool unmix_guard_ok(const float *p, size_t n) {
  for (size_t i = 0; i < GUARD; i++)
    if (p[-(ptrdiff_t)GUARD + (ptrdiff_t)i] != GUARD_VAL || p[n + i] != GUARD_VAL) {
      fprintf(stderr, "GUARD overwritten around a %zu-float buffer\n", n);
      return false;
    }
  return true;
}
void unmix_guarded_free(float *p) {
  if (p) free(p - GUARD);
}

char *unmix_test_tmpdir(const char *tag) {
  char tmpl[512];
  const char *base = getenv("TMPDIR");
  snprintf(tmpl, sizeof tmpl, "%s/unmix-%s-XXXXXX", base ? base : "/tmp", tag);
  char *d = mkdtemp(tmpl);
  ck_assert_msg(d != NULL, "mkdtemp failed for %s", tmpl);
  return strdup(d);
}

void unmix_test_rmdir(const char *path) {
  if (!path || strlen(path) < 8 || strncmp(path, "/tmp", 4) != 0) return;
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
  if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", path);
}

int unmix_test_unmix(const char *dir, char **out, const char *fmt, ...) {
  const char *bin = getenv("UNMIX_BIN");
  ck_assert_msg(bin != NULL, "UNMIX_BIN is not set (run through ctest)");
  char args[4096], cmd[8192];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s 2>&1", dir, bin, args);
  char *o = NULL;
  int st = unmix_test_sh(cmd, &o);
  if (out) *out = o;
  else free(o);
  return st;
}

const char *unmix_test_tail(const char *out) {
  if (!out) return "(no output)";
  size_t n = strlen(out);
  return n > 1500 ? out + n - 1500 : out;
}

void unmix_test_expect(const char *out, const char *want) {
  ck_assert_msg(out && strstr(out, want) != NULL, "output lacks '%s':\n%s", want, unmix_test_tail(out));
}

char *unmix_test_run_expect(const char *dir, int rc, const char *want, const char *args) {
  char *o = NULL;
  int st = unmix_test_unmix(dir, &o, "%s", args);
  ck_assert_msg(st == rc, "unmix %.300s: exit %d, expected %d:\n%s", args, st, rc, unmix_test_tail(o));
  if (want) unmix_test_expect(o, want);
  return o;
}

const char *unmix_test_path(const char *dir, const char *name) {
  static char buf[8][4096];
  static int k;
  char *p = buf[k++ % 8];
  snprintf(p, sizeof buf[0], "%s/%s", dir, name);
  return p;
}

char *unmix_test_read(const char *path, size_t *len) {
  uint8_t *b = NULL;
  size_t n = 0;
  ck_assert_msg(unmix_fs_read(path, 0, &b, &n) == UNMIX_OK, "%s", unmix_error_message());
  if (len) *len = n;
  return (char *)b;
}

void unmix_test_mkdirs(const char *path) {
  ck_assert_msg(unmix_fs_mkdirs(path, 0777) == UNMIX_OK, "%s", unmix_error_message());
}

void unmix_test_write(const char *path, const void *data, size_t len) {
  char dir[4096];
  if (strchr(path, '/')) unmix_test_mkdirs(unmix_fs_dirname(path, dir, sizeof dir));
  FILE *f = fopen(path, "wb");
  ck_assert_msg(f != NULL, "cannot write %s", path);
  ck_assert_msg(fwrite(data, 1, len, f) == len && fclose(f) == 0, "cannot write %s", path);
}

void unmix_test_write_text(const char *path, const char *text) { unmix_test_write(path, text, strlen(text)); }

struct unmix_model *unmix_test_model(struct unmix_model_spec spec, uint64_t seed) {
  if (!spec.in_channels) spec.in_channels = 3;
  struct unmix_model *m = NULL;
  ck_assert_msg(unmix_model_create(&spec, unmix_test_cpu(), seed, &m) == UNMIX_OK, "%s", unmix_error_message());
  return m;
}

const char *unmix_test_src_path(const char *rel, char *buf, size_t len) {
  snprintf(buf, len, "%s/%s", UNMIX_SOURCE_DIR, rel);
  return buf;
}

int unmix_test_sh(const char *cmd, char **out) {
  FILE *p = popen(cmd, "r");
  if (!p) return -1;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  size_t r;
  while ((r = fread(buf + len, 1, cap - len - 1, p)) > 0) {
    len += r;
    if (cap - len < 1024) buf = realloc(buf, cap *= 2);
  }
  buf[len] = 0;
  int st = pclose(p);
  if (out) *out = buf;
  else free(buf);
  if (st == -1) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- fixtures --------------------------------------------------------------------- */
static size_t dtype_bytes(uint32_t dt) {
  switch (dt) {
    case 0: return 4;
    case 3: return 4;
    case 4: return 1;
    case 5: return 8;
  }
  return 0;
}

struct unmix_fixture *unmix_fixture_load(const char *path) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open golden fixture %s (regenerate with tests/golden/gen/)", path);
  char magic[8];
  uint32_t version = 0, count = 0;
  ck_assert_msg(fread(magic, 1, 8, f) == 8 && memcmp(magic, "UNMIXFX1", 8) == 0, "%s: bad fixture magic", path);
  ck_assert_msg(fread(&version, 4, 1, f) == 1 && version == 1, "%s: unsupported fixture version", path);
  ck_assert_msg(fread(&count, 4, 1, f) == 1 && count < 100000, "%s: bad entry count", path);
  struct unmix_fixture *fx = calloc(1, sizeof *fx);
  fx->count = count;
  fx->entries = calloc(count ? count : 1, sizeof *fx->entries);
  for (uint32_t i = 0; i < count; i++) {
    struct unmix_fixture_entry *e = &fx->entries[i];
    uint32_t nl = 0;
    ck_assert_msg(fread(&nl, 4, 1, f) == 1 && nl > 0 && nl < 4096, "%s: entry %u: bad name length", path, i);
    e->name = calloc(nl + 1, 1);
    ck_assert_msg(fread(e->name, 1, nl, f) == nl, "%s: entry %u: truncated name", path, i);
    ck_assert_msg(fread(&e->dtype, 4, 1, f) == 1 && dtype_bytes(e->dtype) > 0, "%s: %s: bad dtype", path, e->name);
    ck_assert_msg(fread(&e->ndim, 4, 1, f) == 1 && e->ndim <= 8, "%s: %s: bad rank", path, e->name);
    e->numel = 1;
    for (uint32_t d = 0; d < e->ndim; d++) {
      ck_assert_msg(fread(&e->shape[d], 4, 1, f) == 1, "%s: %s: truncated shape", path, e->name);
      e->numel *= e->shape[d];
    }
    size_t bytes = e->numel * dtype_bytes(e->dtype);
    e->data = malloc(bytes ? bytes : 1);
    ck_assert_msg(fread(e->data, 1, bytes, f) == bytes, "%s: %s: truncated data", path, e->name);
  }
  fclose(f);
  return fx;
}

void unmix_fixture_free(struct unmix_fixture *f) {
  if (!f) return;
  for (uint32_t i = 0; i < f->count; i++) {
    free(f->entries[i].name);
    free(f->entries[i].data);
  }
  free(f->entries);
  free(f);
}

const struct unmix_fixture_entry *unmix_fixture_find(const struct unmix_fixture *f, const char *name) {
  for (uint32_t i = 0; i < f->count; i++)
    if (!strcmp(f->entries[i].name, name)) return &f->entries[i];
  return NULL;
}

static const void *typed(const struct unmix_fixture *f, const char *name, uint32_t dt, size_t *numel) {
  const struct unmix_fixture_entry *e = unmix_fixture_find(f, name);
  ck_assert_msg(e != NULL, "fixture has no entry '%s'", name);
  ck_assert_msg(e->dtype == dt, "fixture entry '%s' has dtype %u, wanted %u", name, e->dtype, dt);
  if (numel) *numel = e->numel;
  return e->data;
}
const float *unmix_fixture_f32(const struct unmix_fixture *f, const char *name, size_t *numel) {
  return typed(f, name, 0, numel);
}
const int32_t *unmix_fixture_i32(const struct unmix_fixture *f, const char *name, size_t *numel) {
  return typed(f, name, 3, numel);
}
const double *unmix_fixture_f64(const struct unmix_fixture *f, const char *name, size_t *numel) {
  return typed(f, name, 5, numel);
}
double unmix_fixture_scalar(const struct unmix_fixture *f, const char *name) {
  const struct unmix_fixture_entry *e = unmix_fixture_find(f, name);
  ck_assert_msg(e != NULL && e->numel == 1, "fixture has no scalar '%s'", name);
  switch (e->dtype) {
    case 0: return *(const float *)e->data;
    case 3: return *(const int32_t *)e->data;
    case 5: return *(const double *)e->data;
  }
  ck_abort_msg("fixture scalar '%s' has unsupported dtype", name);
  return 0.0;
}
