/* The CPU backend's bf16 path (core/backend/cpu/onednn.c): each conv pass and the dense
 * ops in precision bf16 against the fp32 CPU oracle, held between a lower bound (bf16 must
 * differ from fp32, so a precision setting that is ignored fails) and an upper bound, and
 * against the oracle run on bf16-rounded inputs (fp32 accumulation); what supports_op and
 * `unmix info` say; and 20 steps of MoCo + Un-Mix whose loss curve stays near fp32's.
 * Built without oneDNN, or on a CPU without bf16 units, the bf16 cases say SKIPPED. */
#include <math.h>

#include "core/backend/cpu/internal.h"
#include "core/backend/cpu/onednn.h"
#include "core/io/manifest.h"
#include "core/methods/common.h"
#include "tests/test_backend_common.h"

/* NULL (the case runs) or why it cannot, after printing "SKIPPED (why): case". */
static bool skip_without_bf16(const char *case_name) {
  const char *why = !unmix_dnn_compiled()   ? "built without oneDNN"
                    : !unmix_dnn_bf16_units() ? "this CPU has no bf16 units"
                                              : NULL;
  if (why) printf("SKIPPED (%s): %s\n", why, case_name);
  return why != NULL;
}

/* Normalised error max|a-b| / max|b|. */
static double nerr(const float *a, const float *b, size_t n) { return unmix_nmse(a, b, n); }

/* A bf16 result against (1) the fp32 oracle: lo <= err <= hi, and (2) the fp32 oracle on
 * bf16-rounded inputs: err <= tight (the products are exact in fp32 and summed in fp32, so
 * only the summation order differs). */
static void check_three(const char *what, const float *got, const float *oracle, const float *oracle_rounded,
                        size_t n, double lo, double hi, double tight) {
  const double e = nerr(got, oracle, n), er = nerr(got, oracle_rounded, n);
  ck_assert_msg(e >= lo, "%s: bf16 equals fp32 (normalised error %.3g < %.3g): is bf16 ignored?", what, e, lo);
  ck_assert_msg(e <= hi, "%s: bf16 is %.3g away from fp32 (bound %.3g)", what, e, hi);
  ck_assert_msg(er <= tight, "%s: bf16 is %.3g away from fp32 on bf16-rounded inputs (bound %.3g): not fp32 "
                "accumulation?", what, er, tight);
}

/* Bounds, from bf16's 8-bit mantissa: inputs rounded by up to 2^-9 relative; over sums of
 * >= 27 random terms the normalised error lands near 1e-3 (measured 1e-3 .. 4e-3). lo
 * 1e-4 is an order below; hi 3e-2 an order above. Against rounded inputs only fp32
 * summation order remains: ~1e-6 measured, bound 1e-4 (bf16 accumulation gives ~1e-3). */
#define LO 1e-4
#define HI 3e-2
#define TIGHT 1e-4

static void set_prec(enum unmix_precision p) { unmix_test_cpu()->set_precision(p); }

static void check_conv_bf16(int n, int h, int w, int c, int k, int r, int s, int stride, int pad) {
  const struct unmix_backend *be = unmix_test_cpu();
  struct unmix_conv_geom g;
  unmix_conv_geom_init(&g, n, h, w, c, k, r, s, stride, pad);
  char what[160];
  snprintf(what, sizeof what, "conv %dx%d s%d p%d n%d h%d w%d c%d k%d", r, s, stride, pad, n, h, w, c, k);
  const size_t nx = (size_t)n * h * w * c, nw = (size_t)k * r * s * c, ny = (size_t)n * g.p * g.q * k;
  float *x = ops_rand(nx, 1, -1.0f, 1.0f), *wt = ops_rand(nw, 2, -1.0f, 1.0f), *dy = ops_rand(ny, 3, -1.0f, 1.0f);
  float *xr = ops_const(nx, 0), *wr = ops_const(nw, 0), *dyr = ops_const(ny, 0);
  unmix_dnn_round_bf16(nx, x, xr);
  unmix_dnn_round_bf16(nw, wt, wr);
  unmix_dnn_round_bf16(ny, dy, dyr);
  const enum unmix_op ops[3] = {UNMIX_OP_CONV2D_FORWARD, UNMIX_OP_CONV2D_BACKWARD_DATA, UNMIX_OP_CONV2D_BACKWARD_WEIGHT};
  const size_t nout[3] = {ny, nx, nw};
  for (int pass = 0; pass < 3; pass++) {
    const struct unmix_op_query q = {.prec = UNMIX_PREC_BF16, .conv = &g};
    ck_assert_msg(be->supports_op(ops[pass], &q), "%s %s: no bf16 kernel", what, unmix_op_name(ops[pass]));
    float *o32 = ops_const(nout[pass], 0.5f), *orr = ops_const(nout[pass], 0.5f), *o16 = ops_const(nout[pass], 0.5f);
    for (int mode = 0; mode < 3; mode++) { /* fp32, fp32 on rounded inputs, bf16 */
      set_prec(mode == 2 ? UNMIX_PREC_BF16 : UNMIX_PREC_FP32);
      float *out = mode == 0 ? o32 : mode == 1 ? orr : o16;
      const float *xa = mode == 1 ? xr : x, *wa = mode == 1 ? wr : wt, *da = mode == 1 ? dyr : dy;
      if (pass == 0) be->conv2d_forward(&g, xa, wa, out);
      else if (pass == 1) be->conv2d_backward_data(&g, da, wa, out);
      else be->conv2d_backward_weight(&g, da, xa, out); /* += onto 0.5 */
    }
    set_prec(UNMIX_PREC_FP32);
    for (int i = 0; i < 3; i++) ck_assert(unmix_guard_ok(i == 0 ? o32 : i == 1 ? orr : o16, nout[pass]));
    if (pass == 2) /* compare the accumulated parts: dw - 0.5 */
      for (size_t i = 0; i < nw; i++) o32[i] -= 0.5f, orr[i] -= 0.5f, o16[i] -= 0.5f;
    char w2[200];
    snprintf(w2, sizeof w2, "%s %s", what, unmix_op_name(ops[pass]));
    check_three(w2, o16, o32, orr, nout[pass], LO, HI, pass == 2 ? 4 * TIGHT : TIGHT);
    unmix_guarded_free(o32);
    unmix_guarded_free(orr);
    unmix_guarded_free(o16);
  }
  unmix_guarded_free(x); unmix_guarded_free(wt); unmix_guarded_free(dy);
  unmix_guarded_free(xr); unmix_guarded_free(wr); unmix_guarded_free(dyr);
}

/* The ResNet shapes (3x3 s1/s2, 1x1 s2 shortcut) at a small batch, and a size no tile
 * divides evenly. */
START_TEST(test_bf16_conv_3x3) {
  if (skip_without_bf16("test_bf16_conv_3x3")) return;
  check_conv_bf16(3, 9, 7, 32, 48, 3, 3, 1, 1);
}
END_TEST
START_TEST(test_bf16_conv_3x3_s2) {
  if (skip_without_bf16("test_bf16_conv_3x3_s2")) return;
  check_conv_bf16(2, 11, 9, 64, 32, 3, 3, 2, 1);
}
END_TEST
START_TEST(test_bf16_conv_1x1_s2) {
  if (skip_without_bf16("test_bf16_conv_1x1_s2")) return;
  check_conv_bf16(4, 8, 8, 32, 64, 1, 1, 2, 0);
}
END_TEST

/* The stem conv (3 input channels): oneDNN may have no fast bf16 kernel for it; whatever
 * supports_op answers must be what runs (bf16 within the bounds, or fp32 bit-for-bit). */
START_TEST(test_bf16_conv_stem_follows_supports_op) {
  if (skip_without_bf16("test_bf16_conv_stem_follows_supports_op")) return;
  const struct unmix_backend *be = unmix_test_cpu();
  struct unmix_conv_geom g;
  unmix_conv_geom_init(&g, 2, 8, 8, 3, 16, 3, 3, 1, 1);
  const struct unmix_op_query q = {.prec = UNMIX_PREC_BF16, .conv = &g};
  const size_t nx = 2 * 8 * 8 * 3, ny = 2 * 8 * 8 * 16;
  float *x = ops_rand(nx, 4, -1, 1), *wt = ops_rand(16 * 27, 5, -1, 1), *y32 = ops_const(ny, 0), *y16 = ops_const(ny, 0);
  be->conv2d_forward(&g, x, wt, y32);
  set_prec(UNMIX_PREC_BF16);
  be->conv2d_forward(&g, x, wt, y16);
  set_prec(UNMIX_PREC_FP32);
  const double e = nerr(y16, y32, ny);
  if (be->supports_op(UNMIX_OP_CONV2D_FORWARD, &q))
    ck_assert_msg(e >= LO && e <= HI, "stem conv in bf16: error %.3g outside [%g, %g]", e, LO, HI);
  else
    ck_assert_msg(e == 0.0, "stem conv: supports_op says fp32 but the result differs from fp32 by %.3g", e);
  unmix_guarded_free(x); unmix_guarded_free(wt); unmix_guarded_free(y32); unmix_guarded_free(y16);
}
END_TEST

/* gemm in every transpose combination with alpha/beta, against the same three references. */
START_TEST(test_bf16_gemm) {
  if (skip_without_bf16("test_bf16_gemm")) return;
  const struct unmix_backend *be = unmix_test_cpu();
  const int m = 37, n = 29, k = 53;
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++) {
      const int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
      const size_t na = (size_t)(ta ? k : m) * lda, nb = (size_t)(tb ? n : k) * ldb, nc = (size_t)m * ldc;
      float *a = ops_rand(na, 6, -1, 1), *b = ops_rand(nb, 7, -1, 1), *ar = ops_const(na, 0), *br = ops_const(nb, 0);
      unmix_dnn_round_bf16(na, a, ar);
      unmix_dnn_round_bf16(nb, b, br);
      float *c[3];
      for (int mode = 0; mode < 3; mode++) {
        c[mode] = ops_rand(nc, 8, -1, 1); /* beta 0.5 reads it */
        set_prec(mode == 2 ? UNMIX_PREC_BF16 : UNMIX_PREC_FP32);
        be->gemm(ta, tb, m, n, k, 0.75f, mode == 1 ? ar : a, lda, mode == 1 ? br : b, ldb, 0.5f, c[mode], ldc);
      }
      set_prec(UNMIX_PREC_FP32);
      char what[64];
      snprintf(what, sizeof what, "gemm ta=%d tb=%d", ta, tb);
      check_three(what, c[2], c[0], c[1], nc, LO, HI, TIGHT);
      for (int i = 0; i < 3; i++) {
        ck_assert(unmix_guard_ok(c[i], nc));
        unmix_guarded_free(c[i]);
      }
      unmix_guarded_free(a); unmix_guarded_free(b); unmix_guarded_free(ar); unmix_guarded_free(br);
    }
}
END_TEST

/* linear forward (with bias) and backward (dx =, dw +=, db +=). */
START_TEST(test_bf16_linear) {
  if (skip_without_bf16("test_bf16_linear")) return;
  const struct unmix_backend *be = unmix_test_cpu();
  const int n = 19, in = 45, out = 33;
  float *x = ops_rand((size_t)n * in, 9, -1, 1), *wt = ops_rand((size_t)out * in, 10, -1, 1);
  float *bias = ops_rand(out, 11, -1, 1), *dy = ops_rand((size_t)n * out, 12, -1, 1);
  float *y[2], *dx[2], *dw[2], *db[2];
  for (int mode = 0; mode < 2; mode++) {
    set_prec(mode ? UNMIX_PREC_BF16 : UNMIX_PREC_FP32);
    y[mode] = ops_const((size_t)n * out, NAN);
    dx[mode] = ops_const((size_t)n * in, NAN);
    dw[mode] = ops_const((size_t)out * in, 0.0f);
    db[mode] = ops_const(out, 0.0f);
    be->linear_forward(n, in, out, x, wt, bias, y[mode]);
    be->linear_backward(n, in, out, dy, x, wt, dx[mode], dw[mode], db[mode]);
  }
  set_prec(UNMIX_PREC_FP32);
  const double ey = nerr(y[1], y[0], (size_t)n * out), ex = nerr(dx[1], dx[0], (size_t)n * in),
               ew = nerr(dw[1], dw[0], (size_t)out * in);
  ck_assert_msg(ey >= LO && ey <= HI, "linear forward bf16 error %.3g", ey);
  ck_assert_msg(ex >= LO && ex <= HI, "linear backward dx bf16 error %.3g", ex);
  ck_assert_msg(ew >= LO && ew <= HI, "linear backward dw bf16 error %.3g", ew);
  /* the bias gradient is a column sum, not a GEMM: fp32 in both modes */
  ck_assert_msg(nerr(db[1], db[0], out) == 0.0, "linear dbias changed with precision");
  for (int i = 0; i < 2; i++) {
    unmix_guarded_free(y[i]); unmix_guarded_free(dx[i]); unmix_guarded_free(dw[i]); unmix_guarded_free(db[i]);
  }
  unmix_guarded_free(x); unmix_guarded_free(wt); unmix_guarded_free(bias); unmix_guarded_free(dy);
}
END_TEST

/* supports_op: bf16 for conv/dense exactly when the CPU has bf16 units; never tf32; every
 * other op in every mode. */
START_TEST(test_supports_op_bf16_truthful) {
  const struct unmix_backend *be = unmix_test_cpu();
  const struct unmix_op_query bf = {.prec = UNMIX_PREC_BF16}, tf = {.prec = UNMIX_PREC_TF32};
  for (int op = 0; op < UNMIX_OP_COUNT; op++) {
    const bool prec_op = unmix_op_uses_precision((enum unmix_op)op);
    ck_assert_msg(be->supports_op((enum unmix_op)op, &bf) == (!prec_op || unmix_dnn_bf16_units()),
                  "supports_op(%s, bf16)", unmix_op_name(op));
    ck_assert_msg(be->supports_op((enum unmix_op)op, &tf) == !prec_op, "supports_op(%s, tf32)", unmix_op_name(op));
  }
}
END_TEST

/* Without bf16 units (oneDNN capped below them by ONEDNN_MAX_CPU_ISA, or no oneDNN) `unmix
 * info` says so and the CPU runs fp32; with them it names oneDNN and its kernels. */
START_TEST(test_info_says_which_kernels) {
  /* the default, UNMIX_CPU_CONV=auto, is the reference path in a build without oneDNN */
  char *out = unmix_test_run_expect(
      "/", 0, unmix_dnn_compiled() ? "cpu fp32: conv oneDNN where it measured faster" : "cpu fp32: conv im2col",
      "info");
  if (unmix_dnn_compiled()) unmix_test_expect(out, "thread counts: Winograd conv 3x3 fwd "); /* its kernel names */
  if (!unmix_dnn_compiled()) unmix_test_expect(out, "cpu bf16: fp32 (oneDNN not compiled in");
  else if (unmix_dnn_bf16_units()) unmix_test_expect(out, "cpu bf16: oneDNN ");
  else unmix_test_expect(out, "cpu bf16: no bf16 units: fp32");
  free(out);
  if (!unmix_dnn_compiled()) return;
  char *capped = NULL;
  ck_assert_int_eq(unmix_test_sh("ONEDNN_MAX_CPU_ISA=AVX512_CORE \"$UNMIX_BIN\" info 2>&1", &capped), 0);
  unmix_test_expect(capped, "cpu bf16: no bf16 units: fp32 (oneDNN");
  free(capped);
}
END_TEST

/* oneDNN's fp32 kernel of type t (F32 direct or WINO) against the reference path, for the
 * first `passes` passes of geometry g (inputs drawn from seed): normalised error <= tol, dw
 * accumulated onto a prefill. The kernel must exist for the geometry. */
static void check_dnn_vs_reference(const struct unmix_conv_geom *g, enum unmix_dnn_type t, int passes, uint32_t seed,
                                   double tol, const char *what) {
  const struct unmix_backend *be = unmix_test_cpu();
  const size_t nx = (size_t)g->n * g->h * g->w * g->c, nw = (size_t)g->k * g->r * g->s * g->c,
               ny = (size_t)g->n * g->p * g->q * g->k, nout[3] = {ny, nx, nw};
  float *x = ops_rand(nx, seed, -1, 1), *wt = ops_rand(nw, seed + 1, -1, 1), *dy = ops_rand(ny, seed + 2, -1, 1);
  unmix_cpu_conv_set_mode(UNMIX_CPU_CONV_REFERENCE);
  for (int pass = 0; pass < passes; pass++) {
    float *ref = ops_const(nout[pass], 0.5f), *got = ops_const(nout[pass], 0.5f);
    if (pass == 0) be->conv2d_forward(g, x, wt, ref);
    else if (pass == 1) be->conv2d_backward_data(g, dy, wt, ref);
    else be->conv2d_backward_weight(g, dy, x, ref);
    ck_assert_msg(unmix_dnn_conv((enum unmix_dnn_pass)pass, t, g, pass == 0 ? x : dy, pass == 2 ? x : wt, got),
                  "%s: no oneDNN kernel for pass %d", what, pass);
    ck_assert(unmix_guard_ok(got, nout[pass]));
    const double e = nerr(got, ref, nout[pass]);
    ck_assert_msg(e <= tol, "%s pass %d: normalised error %.3g vs the reference", what, pass, e);
    unmix_guarded_free(ref);
    unmix_guarded_free(got);
  }
  unmix_cpu_conv_set_mode(UNMIX_CPU_CONV_AUTO);
  unmix_guarded_free(x); unmix_guarded_free(wt); unmix_guarded_free(dy);
}

/* UNMIX_CPU_CONV=onednn: oneDNN's fp32 convolutions agree with the reference path to fp32
 * summation order (normalised error <= 1e-5) in all three passes, dw accumulated. */
START_TEST(test_fp32_onednn_conv_matches_reference) {
  if (!unmix_dnn_compiled()) {
    printf("SKIPPED (built without oneDNN): test_fp32_onednn_conv_matches_reference\n");
    return;
  }
  struct unmix_conv_geom g;
  unmix_conv_geom_init(&g, 3, 9, 7, 32, 48, 3, 3, 2, 1);
  check_dnn_vs_reference(&g, UNMIX_DNN_F32, 3, 21, 1e-5, "fp32 oneDNN conv");
  /* the setting: named in `unmix info`, and a wrong value is refused with the choices */
  char *out = NULL;
  ck_assert_int_eq(unmix_test_sh("UNMIX_CPU_CONV=onednn \"$UNMIX_BIN\" info 2>&1", &out), 0);
  unmix_test_expect(out, "cpu fp32: conv oneDNN (UNMIX_CPU_CONV=onednn");
  free(out);
  ck_assert_int_eq(unmix_test_sh("UNMIX_CPU_CONV=fast \"$UNMIX_BIN\" info 2>&1", &out), 0);
  unmix_test_expect(out, "backend 'cpu' is unavailable: UNMIX_CPU_CONV='fast': expected auto, reference or onednn");
  free(out);
  ck_assert_int_eq(unmix_test_sh("UNMIX_CPU_CONV=reference \"$UNMIX_BIN\" info 2>&1", &out), 0);
  unmix_test_expect(out, "cpu fp32: conv im2col + OpenBLAS SGEMM (UNMIX_CPU_CONV=reference, bit-identical");
  free(out);
}
END_TEST

/* UNMIX_CPU_CONV=auto (the default) runs each fp32 pass on the kernel its rule names (conv.c):
 * bit for bit what oneDNN's Winograd kernel, =onednn (direct) or =reference gives; two calls
 * at one thread count agree bit for bit (a run is reproducible and resumable there). The
 * geometries are ResNet-18 CIFAR ones at batch 2, one per branch of the rule. */
START_TEST(test_fp32_auto_routes_passes) {
  if (!unmix_dnn_compiled()) {
    printf("SKIPPED (built without oneDNN): test_fp32_auto_routes_passes\n");
    return;
  }
  enum { R = UNMIX_CPU_KERNEL_REFERENCE, D = UNMIX_CPU_KERNEL_DIRECT, W = UNMIX_CPU_KERNEL_WINOGRAD };
  static const char *const names[] = {"reference", "direct", "winograd"};
  const struct unmix_backend *be = unmix_test_cpu();
  static const struct {
    int h, c, k, r, stride;
    int kernel[3]; /* forward, backward-data, backward-weight */
  } cases[] = {
      {32, 64, 64, 3, 1, {W, W, D}},    /* stride 1, 64 channels: Winograd */
      {7, 64, 64, 3, 1, {W, W, D}},     /* 4x4 tiles 77% filled */
      {4, 512, 512, 3, 1, {W, W, R}},   /* ... down to 4x4 outputs; 256+ channels there: ours */
      {2, 256, 256, 3, 1, {R, R, R}},   /* smaller outputs with 256+ channels */
      {5, 64, 64, 3, 1, {D, D, D}},     /* 4x4 tiles 39% filled */
      {20, 32, 32, 3, 1, {W, W, D}},    /* 32 channels on a 20x20 map */
      {10, 32, 32, 3, 1, {D, D, D}},    /* ... on a 10x10 map */
      {20, 16, 16, 3, 1, {D, D, D}},    /* narrow */
      {20, 16, 32, 3, 2, {D, D, D}},    /* narrow downsampling conv */
      {32, 64, 128, 3, 2, {D, R, R}},   /* downsampling, 64 channels */
      {8, 256, 512, 3, 2, {R, R, R}},   /* downsampling, 256 channels */
      {20, 16, 32, 1, 2, {D, D, R}},    /* 1x1 downsampling */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct unmix_conv_geom g;
    unmix_conv_geom_init(&g, 2, cases[i].h, cases[i].h, cases[i].c, cases[i].k, cases[i].r, cases[i].r,
                         cases[i].stride, cases[i].r / 2);
    const size_t nx = (size_t)g.n * g.h * g.w * g.c, nw = (size_t)g.k * g.r * g.s * g.c,
                 ny = (size_t)g.n * g.p * g.q * g.k, nout[3] = {ny, nx, nw};
    float *x = ops_rand(nx, 31, -1, 1), *wt = ops_rand(nw, 32, -1, 1), *dy = ops_rand(ny, 33, -1, 1);
    for (int pass = 0; pass < 3; pass++) {
      const int want = cases[i].kernel[pass];
      unmix_cpu_conv_set_mode(UNMIX_CPU_CONV_AUTO);
      const int got = (int)unmix_cpu_conv_kernel(pass, &g);
      ck_assert_msg(got == want, "case %zu pass %d: rule says %s, expected %s", i, pass, names[got], names[want]);
      float *out[3]; /* auto, auto again, the kernel the rule names */
      for (int v = 0; v < 3; v++) {
        out[v] = ops_const(nout[pass], 0.25f);
        const float *a = pass == 0 ? x : dy, *b = pass == 2 ? x : wt;
        if (v == 2 && want == W) {
          ck_assert_msg(unmix_dnn_conv((enum unmix_dnn_pass)pass, UNMIX_DNN_WINO, &g, a, b, out[v]),
                        "case %zu pass %d: no Winograd kernel", i, pass);
        } else {
          if (v == 2) unmix_cpu_conv_set_mode(want == D ? UNMIX_CPU_CONV_ONEDNN : UNMIX_CPU_CONV_REFERENCE);
          if (pass == 0) be->conv2d_forward(&g, a, b, out[v]);
          else if (pass == 1) be->conv2d_backward_data(&g, a, b, out[v]);
          else be->conv2d_backward_weight(&g, a, b, out[v]);
        }
        ck_assert(unmix_guard_ok(out[v], nout[pass]));
      }
      ck_assert_msg(!memcmp(out[0], out[1], nout[pass] * sizeof(float)), "case %zu pass %d: two auto calls differ",
                    i, pass);
      ck_assert_msg(!memcmp(out[0], out[2], nout[pass] * sizeof(float)), "case %zu pass %d: auto differs from %s",
                    i, pass, names[want]);
      for (int v = 0; v < 3; v++) unmix_guarded_free(out[v]);
    }
    unmix_guarded_free(x); unmix_guarded_free(wt); unmix_guarded_free(dy);
  }
  unmix_cpu_conv_set_mode(UNMIX_CPU_CONV_AUTO);
}
END_TEST

/* oneDNN's fp32 Winograd F(4x4, 3x3) forward and backward-data (auto's kernel for 3x3 stride-1
 * convs with 64+ channels) against the reference path: normalised error <= 1e-5 (measured
 * up to 1.2e-6 over a sweep of 4..20-pixel maps, 16..96 channels, batch 1..3, and up to
 * 2.7e-6 at the ResNet-18 CIFAR shapes with 256 channels), at odd map sizes (partial 4x4
 * tiles), batch 1, and the ResNet-18 CIFAR layer-4 map (4x4). A geometry oneDNN declines
 * Winograd for returns false, touching nothing. */
START_TEST(test_fp32_winograd_matches_reference) {
  if (!unmix_dnn_compiled()) {
    printf("SKIPPED (built without oneDNN): test_fp32_winograd_matches_reference\n");
    return;
  }
  static const int geo[][5] = {{2, 9, 7, 64, 64}, {1, 13, 13, 64, 128}, {3, 4, 4, 128, 64}, {2, 16, 16, 64, 64}};
  for (size_t i = 0; i < sizeof geo / sizeof geo[0]; i++) {
    struct unmix_conv_geom g;
    unmix_conv_geom_init(&g, geo[i][0], geo[i][1], geo[i][2], geo[i][3], geo[i][4], 3, 3, 1, 1);
    char what[64];
    snprintf(what, sizeof what, "Winograd, geometry %zu", i);
    check_dnn_vs_reference(&g, UNMIX_DNN_WINO, 2, 41, 1e-5, what);
  }
  /* not a Winograd geometry (stride 2): declined, the output untouched */
  struct unmix_conv_geom s2;
  unmix_conv_geom_init(&s2, 2, 8, 8, 64, 64, 3, 3, 2, 1);
  const size_t nx = (size_t)2 * 8 * 8 * 64, nw = (size_t)64 * 9 * 64, ny = (size_t)2 * s2.p * s2.q * 64;
  float *x = ops_rand(nx, 51, -1, 1), *wt = ops_rand(nw, 52, -1, 1), *y = ops_const(ny, 0.5f);
  ck_assert(!unmix_dnn_conv(UNMIX_DNN_FWD, UNMIX_DNN_WINO, &s2, x, wt, y));
  ck_assert(unmix_guard_ok(y, ny));
  for (size_t j = 0; j < ny; j++) ck_assert(y[j] == 0.5f);
  /* nor is backward-weights ever run on Winograd (oneDNN 2.6's kernel crashes), at any geometry */
  struct unmix_conv_geom s1;
  unmix_conv_geom_init(&s1, 2, 8, 8, 64, 64, 3, 3, 1, 1);
  ck_assert(!unmix_dnn_conv_ok(UNMIX_DNN_BWD_WEIGHT, UNMIX_DNN_WINO, &s1, NULL));
  unmix_guarded_free(x); unmix_guarded_free(wt); unmix_guarded_free(y);
}
END_TEST

/* 20 steps of MoCo + Un-Mix (symmetric, region and global mixtures as drawn) at a tiny size
 * (ResNet-18 width 16, batch 16 of 16x16, K 64), fp32 and bf16 from the same initialisation,
 * batches and mixture draws. Stated bound: each step's bf16 loss within 8% of fp32's and
 * the mean relative difference over the 20 steps within 3% (measured on this Sapphire
 * Rapids: max 3.3% at step 15, mean 0.9%; the gap grows with the steps as the two runs'
 * weights drift apart). Lower bound: step 0 (identical weights) must differ by > 1e-5
 * relative (measured 2.5e-3), so a bf16 setting that is ignored fails. */
static void loss_curve(enum unmix_precision prec, double *loss, int steps) {
  struct unmix_config cfg;
  unmix_config_init_defaults(&cfg);
  cfg.method = UNMIX_METHOD_MOCO;
  cfg.model.arch = UNMIX_ARCH_RESNET18;
  cfg.model.stem = UNMIX_STEM_CIFAR;
  cfg.model.width = 16;
  cfg.model.bn_splits = 1;
  cfg.model.dim = 32;
  cfg.moco.K = 64;
  cfg.moco.symmetric = true;
  cfg.unmix.enabled = true;
  cfg.optim.batch_size = 16;
  cfg.seed = 7;
  const struct unmix_backend *be = unmix_test_cpu();
  be->set_precision(prec);
  struct unmix_method *m = NULL;
  ck_assert_msg(unmix_method_create(&cfg, be, 16, NULL, &m) == UNMIX_OK, "%s", unmix_error_message());
  const int nv = unmix_method_views_needed(m);
  const size_t per = (size_t)16 * 16 * 16 * 3;
  float *views = malloc(sizeof(float) * per * (size_t)nv);
  for (int i = 0; i < steps; i++) {
    unmix_test_fill(views, per * (size_t)nv, 100 + (uint32_t)(i % 4), -1.0f, 1.0f); /* 4 batches, cycled */
    struct unmix_views v = {.n = 16, .nviews = nv};
    for (int j = 0; j < nv; j++) {
      v.view[j] = views + per * (size_t)j;
      v.size[j] = 16;
    }
    struct unmix_step_stats st;
    ck_assert_msg(unmix_method_step(m, &v, i, 0, 0.003f, &st) == UNMIX_OK, "%s", unmix_error_message());
    loss[i] = st.loss;
  }
  free(views);
  unmix_method_destroy(m);
  be->set_precision(UNMIX_PREC_FP32);
}

START_TEST(test_bf16_moco_unmix_loss_curve) {
  if (skip_without_bf16("test_bf16_moco_unmix_loss_curve")) return;
  enum { STEPS = 20 };
  double l32[STEPS], l16[STEPS], worst = 0, mean = 0;
  loss_curve(UNMIX_PREC_FP32, l32, STEPS);
  loss_curve(UNMIX_PREC_BF16, l16, STEPS);
  for (int i = 0; i < STEPS; i++) {
    ck_assert_msg(isfinite(l16[i]), "bf16 loss at step %d is %g", i, l16[i]);
    const double rel = fabs(l16[i] - l32[i]) / fabs(l32[i]);
    printf("step %2d  fp32 %.6f  bf16 %.6f  rel %.2e\n", i, l32[i], l16[i], rel);
    ck_assert_msg(rel <= 0.08, "step %d: bf16 loss %.6f is %.3g away from fp32's %.6f (bound 0.08)", i, l16[i], rel,
                  l32[i]);
    if (rel > worst) worst = rel;
    mean += rel / STEPS;
  }
  printf("loss curve: max relative difference %.3g, mean %.3g\n", worst, mean);
  ck_assert_msg(mean <= 0.03, "bf16 loss curve: mean relative difference %.3g (bound 0.03)", mean);
  ck_assert_msg(fabs(l16[0] - l32[0]) > 1e-5 * fabs(l32[0]), "bf16 step 0 loss equals fp32's (%.9g): is bf16 ignored?",
                l16[0]);
  /* both curves learn: the last 5 steps below steps 1..5 (step 0 compares its keys with the
   * random initial queue only, hence its small loss) */
  double early32 = 0, late32 = 0, early16 = 0, late16 = 0;
  for (int i = 0; i < 5; i++) {
    early32 += l32[1 + i]; late32 += l32[STEPS - 5 + i];
    early16 += l16[1 + i]; late16 += l16[STEPS - 5 + i];
  }
  ck_assert_msg(late32 < early32 && late16 < early16, "the loss did not fall in 20 steps");
}
END_TEST

/* Weight pinning at the op level (fp32 oneDNN, so any oneDNN build runs it): a filter inside a
 * pinned store is reordered once and the copy reused (bit-identical results), a new pin of
 * the store after its weights changed gives the new weights' result even while the old pin
 * is still held (a copy kept across pins would give the old one), and an unpinned filter is
 * reordered at every call. */
START_TEST(test_weight_pinning_generations) {
  if (!unmix_dnn_compiled()) {
    printf("SKIPPED (built without oneDNN): test_weight_pinning_generations\n");
    return;
  }
  struct unmix_conv_geom g;
  unmix_conv_geom_init(&g, 2, 8, 8, 16, 32, 3, 3, 1, 1);
  const size_t nx = (size_t)2 * 8 * 8 * 16, nw = (size_t)32 * 9 * 16, ny = (size_t)2 * 8 * 8 * 32;
  float *x = ops_rand(nx, 31, -1, 1), *store = ops_rand(3 * nw, 32, -1, 1);
  float *wt = store + nw; /* the second of three filters in one store */
  float *y0 = ops_const(ny, 0), *y1 = ops_const(ny, 0), *y2 = ops_const(ny, 0);
  const char *impl = NULL;
  if (!unmix_dnn_conv_ok(UNMIX_DNN_FWD, UNMIX_DNN_F32, &g, &impl)) {
    printf("SKIPPED (no fp32 oneDNN kernel: %s): test_weight_pinning_generations\n", impl);
    return;
  }
  long h0, r0, h1, r1;
  ck_assert(unmix_dnn_conv(UNMIX_DNN_FWD, UNMIX_DNN_F32, &g, x, wt, y0)); /* unpinned */
  unmix_dnn_weight_pin_stats(&h0, &r0);
  unmix_dnn_weights_pin(store, (int64_t)(3 * nw));
  ck_assert(unmix_dnn_conv(UNMIX_DNN_FWD, UNMIX_DNN_F32, &g, x, wt, y1));
  ck_assert(unmix_dnn_conv(UNMIX_DNN_FWD, UNMIX_DNN_F32, &g, x, wt, y2));
  unmix_dnn_weight_pin_stats(&h1, &r1);
  ck_assert_msg(r1 - r0 == 1 && h1 - h0 == 1, "pinned: %ld reorders and %ld hits, expected 1 and 1", r1 - r0, h1 - h0);
  ck_assert_msg(memcmp(y0, y1, ny * sizeof(float)) == 0 && memcmp(y0, y2, ny * sizeof(float)) == 0,
                "a pinned filter's result differs from the unpinned one");
  /* the optimiser changes the weights and the next forward pins the store again while the
   * first context still holds its pin (it is reset only at its next forward): the new
   * weights count */
  for (size_t i = 0; i < nw; i++) wt[i] = -wt[i];
  unmix_dnn_weights_pin(store, (int64_t)(3 * nw));
  ck_assert(unmix_dnn_conv(UNMIX_DNN_FWD, UNMIX_DNN_F32, &g, x, wt, y1));
  for (size_t i = 0; i < ny; i++)
    ck_assert_msg(y1[i] == -y0[i], "after a re-pin, output %zu is %g, expected %g (a stale copy?)", i, y1[i], -y0[i]);
  /* unpinned (both holders let go): a reorder per call, no hits */
  unmix_dnn_weights_unpin(store);
  unmix_dnn_weights_unpin(store);
  unmix_dnn_weight_pin_stats(&h0, &r0);
  ck_assert(unmix_dnn_conv(UNMIX_DNN_FWD, UNMIX_DNN_F32, &g, x, wt, y2));
  unmix_dnn_weight_pin_stats(&h1, &r1);
  ck_assert_msg(h1 == h0 && r1 == r0, "an unpinned filter read a pinned copy");
  ck_assert_msg(memcmp(y1, y2, ny * sizeof(float)) == 0, "unpinned result differs from the re-pinned one");
  unmix_guarded_free(x); unmix_guarded_free(store);
  unmix_guarded_free(y0); unmix_guarded_free(y1); unmix_guarded_free(y2);
}
END_TEST

/* Weight pinning in training (bf16, where the graph's pins are what saves the reorders):
 * 3 MoCo + Un-Mix steps with and without pinning give the same losses bit for bit, and the
 * pinned run read pinned copies. Stale copies (kept across the optimiser steps) would change
 * the losses from step 1 on. */
START_TEST(test_bf16_weight_pinning_steps) {
  if (skip_without_bf16("test_bf16_weight_pinning_steps")) return;
  enum { STEPS = 3 };
  double with[STEPS], without[STEPS];
  long h0, r0, h1, r1;
  unmix_dnn_weight_pin_stats(&h0, &r0);
  loss_curve(UNMIX_PREC_BF16, with, STEPS);
  unmix_dnn_weight_pin_stats(&h1, &r1);
  unmix_dnn_weight_pinning(false);
  loss_curve(UNMIX_PREC_BF16, without, STEPS);
  unmix_dnn_weight_pinning(true);
  printf("bf16 weight pinning: %ld conv passes read a pinned copy, %ld reorders for pins\n", h1 - h0, r1 - r0);
  ck_assert_msg(h1 - h0 > 0, "no conv pass read a pinned bf16 copy");
  ck_assert_msg(r1 - r0 > 0, "pinned copies were read but never made");
  for (int i = 0; i < STEPS; i++)
    ck_assert_msg(with[i] == without[i], "step %d: loss %.9g with weight pinning, %.9g without", i, with[i],
                  without[i]);
}
END_TEST

static Suite *make_suite(void) {
  Suite *s = suite_create("backend_onednn");
  TCase *tc = tcase_create("ops");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_supports_op_bf16_truthful);
  tcase_add_test(tc, test_info_says_which_kernels);
  tcase_add_test(tc, test_bf16_conv_3x3);
  tcase_add_test(tc, test_bf16_conv_3x3_s2);
  tcase_add_test(tc, test_bf16_conv_1x1_s2);
  tcase_add_test(tc, test_bf16_conv_stem_follows_supports_op);
  tcase_add_test(tc, test_bf16_gemm);
  tcase_add_test(tc, test_bf16_linear);
  tcase_add_test(tc, test_fp32_onednn_conv_matches_reference);
  tcase_add_test(tc, test_fp32_auto_routes_passes);
  tcase_add_test(tc, test_fp32_winograd_matches_reference);
  tcase_add_test(tc, test_weight_pinning_generations);
  suite_add_tcase(s, tc);
  TCase *curve = tcase_create("loss_curve"); /* the slow one: CK_RUN_CASE=ops skips it */
  tcase_set_timeout(curve, 900);
  tcase_add_test(curve, test_bf16_moco_unmix_loss_curve);
  tcase_add_test(curve, test_bf16_weight_pinning_steps);
  suite_add_tcase(s, curve);
  return s;
}

UNMIX_TEST_MAIN(make_suite)
