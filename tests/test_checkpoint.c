/* safetensors checkpoints: round trip, atomic replacement, interoperability with the
 * Python `safetensors` package (both directions, via committed fixtures), and a reader that
 * turns every truncation, corruption or malformed header into an error naming the file
 * (and the tensor) instead of a crash. Run under ASan for the random byte-flip case. */
#include <dirent.h>
#include <math.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io/checkpoint.h"
#include "tests/support/testutil.h"

static char *g_dir;
static void setup(void) { g_dir = unmix_test_tmpdir("ckpt"); }
static void teardown(void) {
  unmix_test_rmdir(g_dir);
  free(g_dir);
  g_dir = NULL;
}

#define tmp(name) unmix_test_path(g_dir, (name))

/* ---- the canonical tensor set (= EXPECTED in tests/golden/gen/gen_safetensors.py) ---------------- */
static float f32v[6];
static const double f64v[3] = {1.5, -2.25, 1e300};
static const int32_t i32v[7] = {-3, -2, -1, 0, 1, 2, 3};
static const int64_t i64v[2] = {1099511627776LL, -5};
static const uint8_t u8v[6] = {250, 251, 252, 253, 254, 255};
static const float scalarv = 3.25f;

static struct unmix_ckpt *canonical(void) {
  for (int i = 0; i < 6; i++) f32v[i] = (float)i * 0.5f - 1.0f;
  struct unmix_ckpt *ck = unmix_ckpt_new();
  ck_assert_int_eq(unmix_ckpt_add(ck, "f32", UNMIX_CKPT_F32, 2, (int64_t[]){2, 3}, f32v), UNMIX_OK);
  ck_assert_int_eq(unmix_ckpt_add(ck, "f64", UNMIX_CKPT_F64, 1, (int64_t[]){3}, f64v), UNMIX_OK);
  ck_assert_int_eq(unmix_ckpt_add(ck, "i32", UNMIX_CKPT_I32, 1, (int64_t[]){7}, i32v), UNMIX_OK);
  ck_assert_int_eq(unmix_ckpt_add(ck, "i64", UNMIX_CKPT_I64, 2, (int64_t[]){2, 1}, i64v), UNMIX_OK);
  ck_assert_int_eq(unmix_ckpt_add(ck, "u8", UNMIX_CKPT_U8, 3, (int64_t[]){1, 2, 3}, u8v), UNMIX_OK);
  ck_assert_int_eq(unmix_ckpt_add(ck, "scalar", UNMIX_CKPT_F32, 0, NULL, &scalarv), UNMIX_OK);
  ck_assert_int_eq(unmix_ckpt_add(ck, "empty", UNMIX_CKPT_F32, 2, (int64_t[]){0, 4}, NULL), UNMIX_OK);
  return ck;
}

static void expect_tensor(const struct unmix_ckpt *ck, const char *name, enum unmix_ckpt_dtype dt, int ndim,
                          const int64_t *shape, const void *data, size_t nbytes) {
  const struct unmix_ckpt_tensor *t = unmix_ckpt_find(ck, name);
  ck_assert_msg(t != NULL, "tensor %s missing", name);
  ck_assert_int_eq(t->dtype, dt);
  ck_assert_int_eq(t->ndim, ndim);
  for (int i = 0; i < ndim; i++) ck_assert_int_eq(t->shape[i], shape[i]);
  ck_assert_uint_eq(t->nbytes, nbytes);
  if (nbytes) ck_assert_msg(memcmp(t->data, data, nbytes) == 0, "tensor %s: data differ", name);
}

static void expect_canonical(const struct unmix_ckpt *ck) {
  for (int i = 0; i < 6; i++) f32v[i] = (float)i * 0.5f - 1.0f;
  ck_assert_uint_eq(ck->n, 7);
  expect_tensor(ck, "f32", UNMIX_CKPT_F32, 2, (int64_t[]){2, 3}, f32v, sizeof f32v);
  expect_tensor(ck, "f64", UNMIX_CKPT_F64, 1, (int64_t[]){3}, f64v, sizeof f64v);
  expect_tensor(ck, "i32", UNMIX_CKPT_I32, 1, (int64_t[]){7}, i32v, sizeof i32v);
  expect_tensor(ck, "i64", UNMIX_CKPT_I64, 2, (int64_t[]){2, 1}, i64v, sizeof i64v);
  expect_tensor(ck, "u8", UNMIX_CKPT_U8, 3, (int64_t[]){1, 2, 3}, u8v, sizeof u8v);
  expect_tensor(ck, "scalar", UNMIX_CKPT_F32, 0, NULL, &scalarv, 4);
  expect_tensor(ck, "empty", UNMIX_CKPT_F32, 2, (int64_t[]){0, 4}, NULL, 0);
}

/* A raw safetensors file from a header text (padded here) and data bytes. */
static const char *raw(const char *name, const char *header, const void *data, size_t dlen) {
  size_t hl = strlen(header), padded = (hl + 7) & ~(size_t)7;
  unsigned char *b = calloc(1, 8 + padded + dlen + 1);
  uint64_t n = padded;
  memcpy(b, &n, 8);
  memcpy(b + 8, header, hl);
  memset(b + 8 + hl, ' ', padded - hl);
  if (dlen) memcpy(b + 8 + padded, data, dlen);
  const char *p = tmp(name);
  unmix_test_write(p, b, 8 + padded + dlen);
  free(b);
  return p;
}

/* Loading `path` fails with `code` and the message names the file and contains `needle`. */
static void load_fails(const char *path, unmix_status code, const char *needle) {
  struct unmix_ckpt *ck = (struct unmix_ckpt *)0x1;
  unmix_status st = unmix_ckpt_load(path, &ck);
  ck_assert_msg(st == code, "%s: expected %s, got %s (%s)", path, unmix_status_name(code), unmix_status_name(st),
                st ? unmix_error_message() : "loaded");
  ck_assert_ptr_null(ck);
  const char *base = strrchr(path, '/');
  ck_assert_msg(strstr(unmix_error_message(), base ? base + 1 : path) != NULL, "message does not name the file: %s",
                unmix_error_message());
  if (needle) ck_assert_msg(strstr(unmix_error_message(), needle) != NULL, "message lacks \"%s\": %s", needle,
                            unmix_error_message());
}

START_TEST(test_round_trip) {
  struct unmix_ckpt *ck = canonical();
  ck_assert_int_eq(unmix_ckpt_set_meta(ck, "format", "unmix"), UNMIX_OK);
  ck_assert_int_eq(unmix_ckpt_set_meta(ck, "epoch", "6"), UNMIX_OK);
  ck_assert_int_eq(unmix_ckpt_set_meta(ck, "epoch", "7"), UNMIX_OK); /* replaces */
  const char *p = tmp("rt.safetensors");
  ck_assert_int_eq(unmix_ckpt_save(ck, p), UNMIX_OK);
  unmix_ckpt_free(ck);
  struct unmix_ckpt *in = NULL;
  ck_assert_msg(unmix_ckpt_load(p, &in) == UNMIX_OK, "%s", unmix_error_message());
  expect_canonical(in);
  ck_assert_str_eq(unmix_ckpt_meta(in, "format"), "unmix");
  ck_assert_str_eq(unmix_ckpt_meta(in, "epoch"), "7");
  ck_assert_ptr_nonnull(unmix_ckpt_meta(in, UNMIX_CKPT_CRC_KEY));
  ck_assert_ptr_null(unmix_ckpt_meta(in, "nope"));
  ck_assert_str_eq(in->path, p);
  /* file order = insertion order */
  ck_assert_str_eq(in->tensors[0].name, "f32");
  ck_assert_str_eq(in->tensors[5].name, "scalar");
  unmix_ckpt_free(in);
  /* the data region starts 8-aligned and the header is space-padded JSON */
  size_t len;
  unsigned char *b = (unsigned char *)unmix_test_read(p, &len);
  uint64_t n;
  memcpy(&n, b, 8);
  ck_assert_uint_eq((8 + n) % 8, 0);
  ck_assert_int_eq(b[8], '{');
  ck_assert_uint_eq(len, 8 + n + sizeof f32v + sizeof f64v + sizeof i32v + sizeof i64v + sizeof u8v + 4);
  free(b);
}
END_TEST

START_TEST(test_big_and_empty) {
  enum { N = 1 << 20 };
  float *big = malloc(N * sizeof(float));
  unmix_test_fill(big, N, 3, -1, 1);
  struct unmix_ckpt *ck = unmix_ckpt_new();
  ck_assert_int_eq(unmix_ckpt_add_copy(ck, "queue", UNMIX_CKPT_F32, 2, (int64_t[]){128, N / 128}, big), UNMIX_OK);
  big[0] = 42.0f; /* the copy is independent */
  const char *p = tmp("big.safetensors");
  ck_assert_int_eq(unmix_ckpt_save(ck, p), UNMIX_OK);
  unmix_ckpt_free(ck);
  struct unmix_ckpt *in = NULL;
  ck_assert_int_eq(unmix_ckpt_load(p, &in), UNMIX_OK);
  float *back = malloc(N * sizeof(float));
  ck_assert_int_eq(unmix_ckpt_read(in, "queue", UNMIX_CKPT_F32, 2, (int64_t[]){128, N / 128}, back), UNMIX_OK);
  ck_assert(back[0] != 42.0f);
  ck_assert(memcmp(back + 1, big + 1, (N - 1) * sizeof(float)) == 0);
  unmix_ckpt_free(in);
  free(big);
  free(back);
  /* no tensors, metadata only */
  ck = unmix_ckpt_new();
  ck_assert_int_eq(unmix_ckpt_set_meta(ck, "k", "v"), UNMIX_OK);
  ck_assert_int_eq(unmix_ckpt_save(ck, p), UNMIX_OK);
  unmix_ckpt_free(ck);
  ck_assert_int_eq(unmix_ckpt_load(p, &in), UNMIX_OK);
  ck_assert_uint_eq(in->n, 0);
  ck_assert_str_eq(unmix_ckpt_meta(in, "k"), "v");
  unmix_ckpt_free(in);
}
END_TEST

START_TEST(test_atomic_replace) {
  const char *p = tmp("a.safetensors");
  unmix_test_write(p, "old contents", 12);
  struct unmix_ckpt *ck = canonical();
  ck_assert_int_eq(unmix_ckpt_save(ck, p), UNMIX_OK);
  ck_assert_int_eq(unmix_ckpt_save(ck, p), UNMIX_OK);
  /* no temp file is left behind */
  DIR *d = opendir(g_dir);
  ck_assert_ptr_nonnull(d);
  int files = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;
    ck_assert_msg(strstr(e->d_name, ".tmp.") == NULL, "temp file left: %s", e->d_name);
    files++;
  }
  closedir(d);
  ck_assert_int_eq(files, 1);
  /* a directory that does not exist: IO error naming the path, nothing created */
  const char *q = tmp("no/such/dir/x.safetensors");
  ck_assert_int_eq(unmix_ckpt_save(ck, q), UNMIX_ERR_IO);
  ck_assert_msg(strstr(unmix_error_message(), "no/such/dir/x.safetensors") != NULL, "%s", unmix_error_message());
  unmix_ckpt_free(ck);
  struct unmix_ckpt *in = NULL;
  ck_assert_int_eq(unmix_ckpt_load(p, &in), UNMIX_OK);
  expect_canonical(in);
  unmix_ckpt_free(in);
}
END_TEST

START_TEST(test_writer_argument_errors) {
  struct unmix_ckpt *ck = unmix_ckpt_new();
  float x[4] = {0};
  ck_assert_int_eq(unmix_ckpt_add(ck, "a", UNMIX_CKPT_F32, 1, (int64_t[]){4}, x), UNMIX_OK);
  ck_assert_int_eq(unmix_ckpt_add(ck, "a", UNMIX_CKPT_F32, 1, (int64_t[]){4}, x), UNMIX_ERR_ARG);
  ck_assert(strstr(unmix_error_message(), "'a' added twice") != NULL);
  ck_assert_int_eq(unmix_ckpt_add(ck, "", UNMIX_CKPT_F32, 1, (int64_t[]){4}, x), UNMIX_ERR_ARG);
  ck_assert_int_eq(unmix_ckpt_add(ck, "__metadata__", UNMIX_CKPT_F32, 1, (int64_t[]){4}, x), UNMIX_ERR_ARG);
  ck_assert_int_eq(unmix_ckpt_add(ck, "b", UNMIX_CKPT_F32, 9, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 4}, x), UNMIX_ERR_ARG);
  ck_assert_int_eq(unmix_ckpt_add(ck, "c", UNMIX_CKPT_F32, 1, (int64_t[]){-4}, x), UNMIX_ERR_ARG);
  ck_assert_int_eq(unmix_ckpt_add(ck, "d", UNMIX_CKPT_F32, 1, (int64_t[]){4}, NULL), UNMIX_ERR_ARG);
  ck_assert_int_eq(unmix_ckpt_set_meta(ck, UNMIX_CKPT_CRC_KEY, "0"), UNMIX_ERR_ARG);
  ck_assert_uint_eq(ck->n, 1);
  unmix_ckpt_free(ck);
}
END_TEST

START_TEST(test_read_helper) {
  struct unmix_ckpt *ck = canonical();
  const char *p = tmp("r.safetensors");
  ck_assert_int_eq(unmix_ckpt_save(ck, p), UNMIX_OK);
  unmix_ckpt_free(ck);
  struct unmix_ckpt *in = NULL;
  ck_assert_int_eq(unmix_ckpt_load(p, &in), UNMIX_OK);
  int32_t iv[7];
  ck_assert_int_eq(unmix_ckpt_read(in, "i32", UNMIX_CKPT_I32, 1, (int64_t[]){7}, iv), UNMIX_OK);
  ck_assert_int_eq(iv[0], -3);
  float fv[6];
  ck_assert_int_eq(unmix_ckpt_read(in, "f32", UNMIX_CKPT_F32, 2, (int64_t[]){3, 2}, fv), UNMIX_ERR_FORMAT);
  ck_assert_msg(strstr(unmix_error_message(), "r.safetensors: tensor 'f32' has shape [2, 3], expected [3, 2]"), "%s",
                unmix_error_message());
  ck_assert_int_eq(unmix_ckpt_read(in, "f32", UNMIX_CKPT_F64, 2, (int64_t[]){2, 3}, fv), UNMIX_ERR_FORMAT);
  ck_assert(strstr(unmix_error_message(), "tensor 'f32' is F32, expected F64"));
  ck_assert_int_eq(unmix_ckpt_read(in, "layer1.0.conv1.weight", UNMIX_CKPT_F32, 1, (int64_t[]){1}, fv), UNMIX_ERR_FORMAT);
  ck_assert(strstr(unmix_error_message(), "tensor 'layer1.0.conv1.weight' is missing"));
  unmix_ckpt_free(in);
}
END_TEST

START_TEST(test_python_written_file) {
  char path[1024];
  unmix_test_src_path("tests/golden/safetensors/python.safetensors", path, sizeof path);
  struct unmix_ckpt *in = NULL;
  ck_assert_msg(unmix_ckpt_load(path, &in) == UNMIX_OK, "%s", unmix_error_message());
  expect_canonical(in);
  ck_assert_str_eq(unmix_ckpt_meta(in, "format"), "pt");
  ck_assert_str_eq(unmix_ckpt_meta(in, "source"), "gen_safetensors.py");
  ck_assert_ptr_null(unmix_ckpt_meta(in, UNMIX_CKPT_CRC_KEY));
  unmix_ckpt_free(in);
}
END_TEST

/* Our writer's output is byte-stable; tests/golden/gen/gen_safetensors.py --check-c proves the
 * committed copy loads in the reference implementation. UNMIX_UPDATE_GOLDEN=1 rewrites it. */
START_TEST(test_c_written_golden) {
  struct unmix_ckpt *ck = canonical();
  ck_assert_int_eq(unmix_ckpt_set_meta(ck, "format", "unmix"), UNMIX_OK);
  ck_assert_int_eq(unmix_ckpt_set_meta(ck, "epoch", "7"), UNMIX_OK);
  ck_assert_int_eq(unmix_ckpt_set_meta(ck, "note", "a \"quoted\" value"), UNMIX_OK);
  char golden[1024];
  unmix_test_src_path("tests/golden/safetensors/c_written.safetensors", golden, sizeof golden);
  if (getenv("UNMIX_UPDATE_GOLDEN")) {
    ck_assert_int_eq(unmix_ckpt_save(ck, golden), UNMIX_OK);
    printf("wrote %s\n", golden);
  }
  const char *p = tmp("c.safetensors");
  ck_assert_int_eq(unmix_ckpt_save(ck, p), UNMIX_OK);
  unmix_ckpt_free(ck);
  size_t la, lb;
  unsigned char *a = (unsigned char *)unmix_test_read(p, &la), *b = (unsigned char *)unmix_test_read(golden, &lb);
  ck_assert_uint_eq(la, lb);
  ck_assert_msg(memcmp(a, b, la) == 0, "the writer's output changed; if intended, regenerate with "
                "UNMIX_UPDATE_GOLDEN=1 and re-run gen_safetensors.py --check-c");
  free(a);
  free(b);
  struct unmix_ckpt *in = NULL;
  ck_assert_int_eq(unmix_ckpt_load(golden, &in), UNMIX_OK);
  expect_canonical(in);
  ck_assert_str_eq(unmix_ckpt_meta(in, "note"), "a \"quoted\" value");
  unmix_ckpt_free(in);
}
END_TEST

START_TEST(test_truncation_everywhere) {
  struct unmix_ckpt *ck = canonical();
  const char *good = tmp("good.safetensors");
  ck_assert_int_eq(unmix_ckpt_save(ck, good), UNMIX_OK);
  unmix_ckpt_free(ck);
  size_t len;
  unsigned char *b = (unsigned char *)unmix_test_read(good, &len);
  const char *p = tmp("trunc.safetensors");
  for (size_t cut = 0; cut < len; cut++) {
    unmix_test_write(p, b, cut);
    struct unmix_ckpt *in = NULL;
    unmix_status st = unmix_ckpt_load(p, &in);
    ck_assert_msg(st == UNMIX_ERR_FORMAT, "truncated at %zu of %zu: %s", cut, len,
                  st ? unmix_error_message() : "loaded!");
    ck_assert_msg(strstr(unmix_error_message(), "trunc.safetensors"), "%s", unmix_error_message());
  }
  /* specific messages at the three regions */
  unmix_test_write(p, b, 5);
  load_fails(p, UNMIX_ERR_FORMAT, "too short");
  unmix_test_write(p, b, 40);
  load_fails(p, UNMIX_ERR_FORMAT, "exceeds the file size");
  unmix_test_write(p, b, len - 3);
  load_fails(p, UNMIX_ERR_FORMAT, "tensor 'scalar'");
  /* appended garbage */
  unsigned char *c = malloc(len + 4);
  memcpy(c, b, len);
  memcpy(c + len, "JUNK", 4);
  unmix_test_write(p, c, len + 4);
  load_fails(p, UNMIX_ERR_FORMAT, "4 bytes after the last tensor");
  free(c);
  free(b);
  load_fails(tmp("missing.safetensors"), UNMIX_ERR_IO, "cannot open checkpoint");
}
END_TEST

START_TEST(test_malformed_headers) {
  float d[4] = {1, 2, 3, 4};
  load_fails(raw("dtype.st", "{\"w\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]}}", d, 8), UNMIX_ERR_FORMAT,
             "tensor 'w': dtype 'F16' is not supported");
  load_fails(raw("dtype2.st", "{\"w\":{\"dtype\":4,\"shape\":[4],\"data_offsets\":[0,16]}}", d, 16), UNMIX_ERR_FORMAT,
             "tensor 'w': missing or non-string dtype");
  load_fails(raw("overlap.st",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", d, 16),
             UNMIX_ERR_FORMAT, "tensor 'b': data_offsets [4, 12) overlap tensor 'a'");
  load_fails(raw("same.st",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", d, 8),
             UNMIX_ERR_FORMAT, "overlap");
  load_fails(raw("gap.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", d, 16), UNMIX_ERR_FORMAT,
             "tensor 'a': 8 unused bytes before");
  load_fails(raw("beyond.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", d, 12),
             UNMIX_ERR_FORMAT, "tensor 'a': data_offsets end at 16 but the data region has 12 bytes");
  load_fails(raw("shape.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", d, 16),
             UNMIX_ERR_FORMAT, "tensor 'a': shape [3] of F32 needs 12 bytes but data_offsets span 16");
  load_fails(raw("huge.st", "{\"a\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904,4],\"data_offsets\":[0,16]}}", d, 16),
             UNMIX_ERR_FORMAT, "tensor 'a'");
  load_fails(raw("neg.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", d, 16),
             UNMIX_ERR_FORMAT, "shape[0] is not a non-negative integer");
  load_fails(raw("real.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4.0],\"data_offsets\":[0,16]}}", d, 16),
             UNMIX_ERR_FORMAT, "shape[0]");
  load_fails(raw("dims.st", "{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", d, 1),
             UNMIX_ERR_FORMAT, "9 dimensions");
  load_fails(raw("offs.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16,0]}}", d, 16),
             UNMIX_ERR_FORMAT, "begin <= end");
  load_fails(raw("offs2.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0]}}", d, 16),
             UNMIX_ERR_FORMAT, "data_offsets must be");
  load_fails(raw("field.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16],\"x\":1}}", d, 16),
             UNMIX_ERR_FORMAT, "unexpected header field 'x'");
  load_fails(raw("entry.st", "{\"a\":[1,2]}", d, 0), UNMIX_ERR_FORMAT, "tensor 'a': header entry is not an object");
  load_fails(raw("dup.st",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", d, 16),
             UNMIX_ERR_FORMAT, "not valid JSON");
  load_fails(raw("json.st", "{\"a\":{\"dtype\":\"F32\",", d, 0), UNMIX_ERR_FORMAT, "not valid JSON");
  load_fails(raw("arr.st", "[1, 2]", d, 0), UNMIX_ERR_FORMAT, "does not start with '{'");
  load_fails(raw("meta.st", "{\"__metadata__\":{\"epoch\":7}}", d, 0), UNMIX_ERR_FORMAT, "__metadata__ 'epoch' is not a string");
  load_fails(raw("meta2.st", "{\"__metadata__\":[]}", d, 0), UNMIX_ERR_FORMAT, "__metadata__ is not an object");
  load_fails(raw("name.st", "{\"\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", d, 16), UNMIX_ERR_FORMAT,
             "empty name");
  load_fails(raw("crc.st", "{\"__metadata__\":{\"unmix.crc32\":\"00000000\"},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", d, 16),
             UNMIX_ERR_FORMAT, "the file is corrupt");
  /* the header length itself */
  unsigned char h[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
  unmix_test_write(tmp("len.st"), h, 16);
  load_fails(tmp("len.st"), UNMIX_ERR_FORMAT, "header length 18446744073709551615 exceeds");
  h[0] = 0;
  memset(h + 1, 0, 7);
  unmix_test_write(tmp("len0.st"), h, 16);
  load_fails(tmp("len0.st"), UNMIX_ERR_FORMAT, "implausible header length 0");
  /* a valid foreign file without our CRC and with a gap-free layout loads */
  struct unmix_ckpt *in = NULL;
  ck_assert_int_eq(unmix_ckpt_load(raw("ok.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", d, 16), &in),
                   UNMIX_OK);
  ck_assert_float_eq(((float *)in->tensors[0].data)[3], 4.0f);
  unmix_ckpt_free(in);
}
END_TEST

static uint64_t xs(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

/* Random byte changes anywhere in a valid file: the reader returns an error or, when the
 * change is harmless (metadata text, padding), the original tensors. Never a crash. */
START_TEST(test_random_corruption_never_crashes) {
  struct unmix_ckpt *ck = canonical();
  ck_assert_int_eq(unmix_ckpt_set_meta(ck, "format", "unmix"), UNMIX_OK);
  const char *good = tmp("fz.safetensors");
  ck_assert_int_eq(unmix_ckpt_save(ck, good), UNMIX_OK);
  unmix_ckpt_free(ck);
  size_t len;
  unsigned char *b = (unsigned char *)unmix_test_read(good, &len);
  unsigned char *c = malloc(len);
  const char *p = tmp("fuzz.safetensors");
  uint64_t s = 0x9e3779b97f4a7c15ull;
  static const unsigned char interesting[] = {0, 0xff, '"', '{', '}', '[', ']', ',', ':', '0', '9', '-', ' ', '\\', 'e'};
  int loaded = 0, failed = 0;
  for (int it = 0; it < 3000; it++) {
    memcpy(c, b, len);
    int flips = 1 + (int)(xs(&s) % 4);
    for (int f = 0; f < flips; f++) {
      size_t at = (size_t)(xs(&s) % len);
      if (it % 3 == 0) c[at] = interesting[xs(&s) % sizeof interesting];
      else c[at] ^= (unsigned char)(1u << (xs(&s) % 8));
    }
    size_t l = (it % 10 == 9) ? (size_t)(xs(&s) % len) : len;
    unmix_test_write(p, c, l);
    struct unmix_ckpt *in = NULL;
    unmix_status st = unmix_ckpt_load(p, &in);
    if (st == UNMIX_OK) {
      /* with our CRC intact the data are exactly the original; a flip that also renamed the
       * CRC key leaves a structurally valid file whose data cannot be vouched for */
      if (unmix_ckpt_meta(in, UNMIX_CKPT_CRC_KEY)) expect_canonical(in);
      else ck_assert_uint_eq(in->n, 7);
      unmix_ckpt_free(in);
      loaded++;
    } else {
      ck_assert_msg(st == UNMIX_ERR_FORMAT, "status %s: %s", unmix_status_name(st), unmix_error_message());
      ck_assert_ptr_null(in);
      failed++;
    }
  }
  ck_assert_int_gt(failed, 2000);
  printf("random corruption: %d rejected, %d harmless\n", failed, loaded);
  free(b);
  free(c);
}
END_TEST

/* NaN/Inf never reaches a checkpoint file, and a file holding one is refused by name. */
START_TEST(test_nonfinite_refused_on_save_and_load) {
  float w[5] = {1, 2, 3, 4, 5};
  int64_t sh = 5;
  for (int kind = 0; kind < 2; kind++) {
    w[3] = kind ? INFINITY : NAN;
    struct unmix_ckpt *ck = unmix_ckpt_new();
    ck_assert(unmix_ckpt_add(ck, "layer1.0.conv1.weight", UNMIX_CKPT_F32, 1, &sh, w) == UNMIX_OK);
    const char *p = tmp("nonfinite.safetensors");
    unlink(p);
    unmix_status st = unmix_ckpt_save(ck, p);
    ck_assert_msg(st == UNMIX_ERR_NUMERIC, "saved a non-finite checkpoint: %s", unmix_status_name(st));
    ck_assert_msg(strstr(unmix_error_message(), "layer1.0.conv1.weight") &&
                      strstr(unmix_error_message(), kind ? "infinite" : "NaN") &&
                      strstr(unmix_error_message(), "element 3"),
                  "%s", unmix_error_message());
    ck_assert_int_ne(access(p, F_OK), 0);
    unmix_ckpt_free(ck);
  }
  /* a foreign file (no CRC, nothing of ours) with a NaN in an F64 tensor */
  double d[2] = {1.0, NAN};
  const char *p = raw("nan64.safetensors", "{\"bn.running_var\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}}",
                      d, sizeof d);
  load_fails(p, UNMIX_ERR_NUMERIC, "'bn.running_var' holds NaN at element 1 of 2");
  d[1] = 2.0;
  p = raw("fine64.safetensors", "{\"bn.running_var\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}}", d,
          sizeof d);
  struct unmix_ckpt *ck = NULL;
  ck_assert_msg(unmix_ckpt_load(p, &ck) == UNMIX_OK, "%s", unmix_error_message());
  ck_assert(!ck->crc_verified);
  unmix_ckpt_free(ck);
}
END_TEST

/* Our own files always carry the CRC: one of ours without it was edited and is refused. */
START_TEST(test_crc_mandatory_for_our_files) {
  float w[2] = {1, 2};
  const char *hdr = "{\"__metadata__\":{\"unmix.manifest\":\"seed: 1\"},"
                    "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
  load_fails(raw("nocrc.safetensors", hdr, w, sizeof w), UNMIX_ERR_FORMAT, "'unmix.crc32' key is missing");
  hdr = "{\"unmix.position\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
  load_fails(raw("nocrc2.safetensors", hdr, w, sizeof w), UNMIX_ERR_FORMAT, "'unmix.crc32' key is missing");
  /* what we write verifies */
  struct unmix_ckpt *ck = canonical();
  ck_assert(unmix_ckpt_set_meta(ck, "unmix.manifest", "seed: 1") == UNMIX_OK);
  ck_assert(unmix_ckpt_save(ck, tmp("ours.safetensors")) == UNMIX_OK);
  unmix_ckpt_free(ck);
  ck_assert_msg(unmix_ckpt_load(tmp("ours.safetensors"), &ck) == UNMIX_OK, "%s", unmix_error_message());
  ck_assert(ck->crc_verified);
  unmix_ckpt_free(ck);
}
END_TEST

static Suite *checkpoint_suite(void) {
  Suite *s = suite_create("checkpoint");
  TCase *tc = tcase_create("safetensors");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_round_trip);
  tcase_add_test(tc, test_big_and_empty);
  tcase_add_test(tc, test_atomic_replace);
  tcase_add_test(tc, test_writer_argument_errors);
  tcase_add_test(tc, test_read_helper);
  tcase_add_test(tc, test_python_written_file);
  tcase_add_test(tc, test_c_written_golden);
  tcase_add_test(tc, test_truncation_everywhere);
  tcase_add_test(tc, test_malformed_headers);
  tcase_add_test(tc, test_random_corruption_never_crashes);
  tcase_add_test(tc, test_nonfinite_refused_on_save_and_load);
  tcase_add_test(tc, test_crc_mandatory_for_our_files);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(checkpoint_suite)
