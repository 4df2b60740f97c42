/* The op list itself (core/backend/ops.def) and what is generated from it: unique names, a
 * table field per op, each op's CPU and CUDA bodies in the files its family names (one hop
 * from one to the other), and supports_op derived from the table plus the CPU backend's
 * explicit exception (no tf32/bf16 arithmetic). */
#include "tests/test_backend_common.h"

/* Whole file, NUL-terminated, or NULL when it cannot be read. */
static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *buf = NULL;
  size_t len = 0, cap = 0, got;
  char chunk[4096];
  while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
    if (len + got + 1 > cap) {
      cap = 2 * (len + got + 1);
      buf = realloc(buf, cap);
      ck_assert(buf != NULL);
    }
    memcpy(buf + len, chunk, got);
    len += got;
  }
  fclose(f);
  if (buf) buf[len] = '\0';
  return buf;
}

/* Number of lines of `text` that start a definition of `fn` ("void fn(" at column 0). */
static int definitions(const char *text, const char *fn) {
  char pat[160];
  snprintf(pat, sizeof pat, "void %s(", fn);
  int count = 0;
  for (const char *p = text; (p = strstr(p, pat)) != NULL; p += strlen(pat))
    if (p == text || p[-1] == '\n') count++;
  return count;
}

START_TEST(test_names_unique) {
  for (int a = 0; a < UNMIX_OP_COUNT; a++) {
    const char *na = unmix_op_name((enum unmix_op)a);
    ck_assert_msg(strcmp(na, "unknown_op") != 0 && na[0], "op %d has no name", a);
    ck_assert_msg(strcmp(unmix_op_family((enum unmix_op)a), "unknown_family") != 0, "op %s has no family", na);
    for (int b = a + 1; b < UNMIX_OP_COUNT; b++)
      ck_assert_msg(strcmp(na, unmix_op_name((enum unmix_op)b)) != 0, "ops %d and %d are both '%s'", a, b, na);
  }
  ck_assert_str_eq(unmix_op_name(UNMIX_OP_COUNT), "unknown_op");
  ck_assert_str_eq(unmix_op_name((enum unmix_op)-1), "unknown_op");
  ck_assert_str_eq(unmix_op_name(UNMIX_OP_BLEND_FLIPPED), "blend_flipped");
  ck_assert_str_eq(unmix_op_family(UNMIX_OP_CONV2D_BACKWARD_WEIGHT), "conv");
}
END_TEST

/* Each op is defined exactly once per backend, in <family>.c / <family>.cu: a reader who
 * found one body finds the other by swapping the directory. */
START_TEST(test_bodies_in_family_files) {
  static const struct {
    const char *dir, *prefix, *ext;
  } be[2] = {{"core/backend/cpu", "unmix_cpu_", ".c"}, {"core/backend/cuda", "unmix_cuda_", ".cu"}};
  static const char *const families[] = {"conv", "norm", "elementwise", "pool", "dense", "softmax",
                                         "batch", "reduce", "matrix", "optim", "topk", "backend"};
  const int nfam = (int)(sizeof families / sizeof families[0]);
  for (int b = 0; b < 2; b++) {
    char *text[sizeof families / sizeof families[0]];
    for (int f = 0; f < nfam; f++) {
      char path[512];
      snprintf(path, sizeof path, "%s/%s/%s%s", UNMIX_SOURCE_DIR, be[b].dir, families[f], be[b].ext);
      text[f] = slurp(path);
      ck_assert_msg(text[f] != NULL, "cannot read %s", path);
    }
    for (int op = 0; op < UNMIX_OP_COUNT; op++) {
      char fn[128];
      snprintf(fn, sizeof fn, "%s%s", be[b].prefix, unmix_op_name((enum unmix_op)op));
      const char *fam = unmix_op_family((enum unmix_op)op);
      int total = 0, home = -1;
      for (int f = 0; f < nfam; f++) {
        int d = definitions(text[f], fn);
        total += d;
        if (!strcmp(families[f], fam)) home = d;
      }
      ck_assert_msg(home >= 0, "op %s: family '%s' has no file in %s", fn, fam, be[b].dir);
      ck_assert_msg(home == 1 && total == 1, "%s is defined %d times in %s/%s%s and %d times in all of %s", fn, home,
                    be[b].dir, fam, be[b].ext, total, be[b].dir);
    }
    for (int f = 0; f < nfam; f++) free(text[f]);
  }
}
END_TEST

START_TEST(test_cpu_supports_every_op_in_fp32) {
  const struct unmix_backend *be = unmix_test_cpu();
  const struct unmix_op_query fp32 = {.prec = UNMIX_PREC_FP32};
  for (int op = 0; op < UNMIX_OP_COUNT; op++) {
    ck_assert_msg(unmix_backend_has_op(be, (enum unmix_op)op), "cpu table lacks %s", unmix_op_name(op));
    ck_assert_msg(be->supports_op((enum unmix_op)op, NULL), "cpu says no to %s", unmix_op_name(op));
    ck_assert_msg(be->supports_op((enum unmix_op)op, &fp32), "cpu says no to %s in fp32", unmix_op_name(op));
  }
  ck_assert(!be->supports_op(UNMIX_OP_COUNT, NULL));
  ck_assert(!unmix_backend_has_op(be, UNMIX_OP_COUNT));
}
END_TEST

/* The CPU has no tf32 arithmetic: asked for a tf32 convolution or GEMM it says no; ops
 * that no precision mode changes are still supported in that mode. (bf16, which the CPU
 * runs where it has bf16 units, is test_backend_onednn's.) */
START_TEST(test_cpu_refuses_reduced_precision) {
  const struct unmix_backend *be = unmix_test_cpu();
  const struct unmix_op_query q = {.prec = UNMIX_PREC_TF32};
  for (int op = 0; op < UNMIX_OP_COUNT; op++) {
    bool want = !unmix_op_uses_precision((enum unmix_op)op);
    ck_assert_msg(be->supports_op((enum unmix_op)op, &q) == want, "cpu supports_op(%s, tf32) = %d",
                  unmix_op_name(op), !want);
  }
  ck_assert(unmix_op_uses_precision(UNMIX_OP_CONV2D_FORWARD));
  ck_assert(unmix_op_uses_precision(UNMIX_OP_GEMM));
  ck_assert(unmix_op_uses_precision(UNMIX_OP_LINEAR_BACKWARD));
  ck_assert(!unmix_op_uses_precision(UNMIX_OP_SOFTMAX_FORWARD));
}
END_TEST

/* has_op reads the table: a backend whose field is NULL does not have the op. */
START_TEST(test_has_op_follows_the_table) {
  struct unmix_backend partial = *unmix_test_cpu();
  partial.topk = NULL;
  partial.conv2d_backward_weight = NULL;
  for (int op = 0; op < UNMIX_OP_COUNT; op++) {
    bool want = op != UNMIX_OP_TOPK && op != UNMIX_OP_CONV2D_BACKWARD_WEIGHT;
    ck_assert_msg(unmix_backend_has_op(&partial, (enum unmix_op)op) == want, "has_op(%s)", unmix_op_name(op));
  }
}
END_TEST

static Suite *ops_suite(void) {
  Suite *s = suite_create("backend_ops");
  TCase *tc = tcase_create("ops");
  tcase_add_test(tc, test_names_unique);
  tcase_add_test(tc, test_bodies_in_family_files);
  tcase_add_test(tc, test_cpu_supports_every_op_in_fp32);
  tcase_add_test(tc, test_cpu_refuses_reduced_precision);
  tcase_add_test(tc, test_has_op_follows_the_table);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(ops_suite)
