/* Shared test support: the suite main, tolerance comparisons that report the worst
 * element, GPU skipping by name, temporary directories and the golden-fixture reader.
 *
 * Golden fixture format (written by tests/golden/gen/fixture.py, little-endian):
 *   "UNMIXFX1" | u32 version (1) | u32 count | count x entry
 *   entry: u32 name_len | name | u32 dtype (0 f32, 3 i32, 4 u8, 5 f64) | u32 ndim |
 *          u32 shape[ndim] | data
 */
#pragma once
#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/backend/backend.h"
#include "core/nn/model.h"

/* Runs the suite with CK_NORMAL output; exits non-zero if any case failed. Also applies
 * the OpenBLAS core fix (re-exec) so tests run on the right kernels. */
#define UNMIX_TEST_MAIN(make_suite)                          \
  int main(int argc, char **argv) {                          \
    unmix_test_init(argc, argv);                             \
    return unmix_test_run(make_suite());                     \
  }
void unmix_test_init(int argc, char **argv);
int unmix_test_run(Suite *s);

/* The CPU backend (always present). */
const struct unmix_backend *unmix_test_cpu(void);
/* The process's communicator (MPI when launched by mpirun, else single) with a 60 s collective
 * timeout and the CPU backend attached; asserts on failure. Free it with unmix_comm_destroy. */
struct unmix_comm *unmix_test_comm_open(void);
/* The CUDA backend, or NULL after printing "SKIPPED (<why>): <case>" to stdout. */
const struct unmix_backend *unmix_test_cuda_or_skip(const char *case_name);

/* |a-b| <= atol + rtol*|b| for all i; on failure the message names `what`, the first and
 * the worst offending index, and NaN/Inf mismatches. Returns true on success. */
bool unmix_close(const char *what, const float *a, const float *b, size_t n, double atol, double rtol);
bool unmix_close_d(const char *what, const double *a, const double *b, size_t n, double atol, double rtol);
#define ck_assert_close(what, a, b, n, atol, rtol) ck_assert(unmix_close((what), (a), (b), (n), (atol), (rtol)))
/* Normalised error max|a-b| / max(max|b|, tiny), the ggml-style comparison for odd shapes. */
double unmix_nmse(const float *a, const float *b, size_t n);

/* Random uniform floats in [lo, hi) from a Philox stream keyed by idx. */
void unmix_test_fill(float *x, size_t n, uint32_t idx, float lo, float hi);
/* Allocates n floats plus 16 guard floats on each side filled with a sentinel;
 * unmix_guard_ok() checks that the guards are intact. */
float *unmix_guarded_alloc(size_t n);
bool unmix_guard_ok(const float *p, size_t n);
void unmix_guarded_free(float *p);

/* A fresh temporary directory (removed recursively by unmix_test_rmdir). */
char *unmix_test_tmpdir(const char *tag);
void unmix_test_rmdir(const char *path);
/* "dir/name" in one of 8 rotating static buffers (paths built inline in a test). */
const char *unmix_test_path(const char *dir, const char *name);
/* The whole file, NUL-terminated (*len without the NUL; len may be NULL); fails the test,
 * naming the path, when it cannot be read. Caller frees. */
char *unmix_test_read(const char *path, size_t *len);
/* Writes len bytes (replacing the file, creating missing parent directories); fails the
 * test naming the path on error. */
void unmix_test_write(const char *path, const void *data, size_t len);
void unmix_test_write_text(const char *path, const char *text);
/* mkdir -p; fails the test on error. */
void unmix_test_mkdirs(const char *path);

/* ---- models -------------------------------------------------------------------------- */
/* A model on the CPU backend from a spec written with designated initialisers, so no call
 * site depends on an argument order (in_channels 0 = 3). Fails the test on error. */
struct unmix_model *unmix_test_model(struct unmix_model_spec spec, uint64_t seed);
/* Path of a file under the source tree ("tests/golden/x.bin" -> absolute). */
const char *unmix_test_src_path(const char *rel, char *buf, size_t len);
/* Runs a shell command, returns its exit status (or -1); output captured to *out if non-NULL. */
int unmix_test_sh(const char *cmd, char **out);
/* Runs `$UNMIX_BIN ARGS` in directory dir with stderr merged (ctest sets UNMIX_BIN); returns
 * the exit status, the output in *out (caller frees) when out is non-NULL. */
int unmix_test_unmix(const char *dir, char **out, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The last 1500 bytes of a command's output (Check truncates long failure messages). */
const char *unmix_test_tail(const char *out);
/* Fails the test unless `want` occurs in out (the message shows the output's tail). */
void unmix_test_expect(const char *out, const char *want);
/* Runs `unmix ARGS` in dir; fails the test unless it exits with rc and, when want is not
 * NULL, prints want. Returns the output (caller frees). */
char *unmix_test_run_expect(const char *dir, int rc, const char *want, const char *args);

/* ---- golden fixtures --------------------------------------------------------------- */
struct unmix_fixture_entry {
  char *name;
  uint32_t dtype;
  uint32_t ndim;
  uint32_t shape[8];
  size_t numel;
  void *data;
};
struct unmix_fixture {
  uint32_t count;
  struct unmix_fixture_entry *entries;
};
/* Loads a fixture; fails the current test (ck_abort) with the path on any problem. */
struct unmix_fixture *unmix_fixture_load(const char *path);
void unmix_fixture_free(struct unmix_fixture *f);
/* Entry by name or NULL; the _f32/_i32/_f64 variants abort the test on absence/type mismatch. */
const struct unmix_fixture_entry *unmix_fixture_find(const struct unmix_fixture *f, const char *name);
const float *unmix_fixture_f32(const struct unmix_fixture *f, const char *name, size_t *numel);
const int32_t *unmix_fixture_i32(const struct unmix_fixture *f, const char *name, size_t *numel);
const double *unmix_fixture_f64(const struct unmix_fixture *f, const char *name, size_t *numel);
double unmix_fixture_scalar(const struct unmix_fixture *f, const char *name);
