/* The library-backed ops of the CUDA backend against the CPU oracle: GEMM (cuBLAS, all
 * transpose combinations, padded leading dimensions, beta = 0 over NaN, k = 0), linear
 * layers, and the three conv2d passes (cuDNN) on odd geometries, in each precision mode,
 * plus deterministic mode (identical results on repeat). Tolerances on the normalised error:
 * fp32 GEMM 1e-5 (summation order only), fp32 conv 1e-4 (cuDNN's FMA algorithms include
 * Winograd and FFT transforms), tf32 2e-3 (see gpu_check.h), bf16 2e-2. */
#include "tests/gpu/gpu_check.h"

static const char *prec_name(enum unmix_precision p) {
  return p == UNMIX_PREC_FP32 ? "fp32" : p == UNMIX_PREC_TF32 ? "tf32" : "bf16";
}
static double gemm_tol(enum unmix_precision p) {
  return p == UNMIX_PREC_FP32 ? TOL_GEMM32 : p == UNMIX_PREC_TF32 ? TOL_TF32 : TOL_BF16;
}
static double conv_tol(enum unmix_precision p) {
  return p == UNMIX_PREC_FP32 ? TOL_CONV32 : p == UNMIX_PREC_TF32 ? TOL_TF32 : TOL_BF16;
}

/* ---- GEMM ---------------------------------------------------------------------------------------- */
static void check_gemm(struct gpu_pair *b, enum unmix_precision prec, bool ta, bool tb, int m, int n, int k, int pad,
                       float alpha, float beta, bool nan_c, uint32_t seed) {
  const int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
  const int lda = ac + pad, ldb = bc + pad, ldc = n + pad;
  const size_t na = (size_t)ar * lda, nb = (size_t)br * ldb, nc = (size_t)m * ldc;
  float *a = hrand(na, seed, -1, 1), *bm = hrand(nb, seed + 1, -1, 1), *c = hrand(nc, seed + 2, -1, 1);
  if (nan_c)
    for (int i = 0; i < m; i++)
      for (int j = 0; j < n; j++) c[(size_t)i * ldc + j] = NAN; /* beta = 0 must not read C */
  float *want = hcopy(c, nc), *got = hzeros(nc);
  b->cpu->gemm(ta, tb, m, n, k, alpha, a, lda, bm, ldb, beta, want, ldc);
  float *ga = dput(b->gpu, a, na), *gb = dput(b->gpu, bm, nb), *gc = dput(b->gpu, c, nc);
  b->gpu->set_precision(prec);
  b->gpu->gemm(ta, tb, m, n, k, alpha, ga, lda, gb, ldb, beta, gc, ldc);
  b->gpu->set_precision(UNMIX_PREC_FP32);
  char what[128];
  snprintf(what, sizeof what, "gemm %s %c%c m%d n%d k%d ld+%d b%g%s", prec_name(prec), ta ? 'T' : 'N', tb ? 'T' : 'N',
           m, n, k, pad, (double)beta, nan_c ? " NaN C" : "");
  dget(b->gpu, what, gc, nc, got);
  ck_gpu_close(what, got, want, nc, gemm_tol(prec)); /* padding columns must be untouched too */
  dfree(b->gpu, ga), dfree(b->gpu, gb), dfree(b->gpu, gc);
  free(a), free(bm), free(c), free(want), free(got);
}

START_TEST(test_gemm) {
  struct gpu_pair b;
  if (!gpu_begin("gemm (4 transposes x 3 precisions, padded ld, beta 0 over NaN, k = 0)", &b)) return;
  static const int shapes[3][3] = {{13, 7, 11}, {5, 11, 64}, {37, 29, 301}};
  uint32_t seed = 500;
  for (int pr = 0; pr < 3; pr++)
    for (int t = 0; t < 4; t++)
      for (int s = 0; s < 3; s++, seed += 3)
        check_gemm(&b, (enum unmix_precision)pr, t & 1, t & 2, shapes[s][0], shapes[s][1], shapes[s][2], s, 0.7f, 0.3f,
                   false, seed);
  check_gemm(&b, UNMIX_PREC_FP32, false, true, 257, 129, 2049, 3, 1.0f, 0.0f, true, 600);
  check_gemm(&b, UNMIX_PREC_TF32, true, false, 129, 257, 1025, 0, 1.0f, 0.0f, true, 603);
  check_gemm(&b, UNMIX_PREC_FP32, false, false, 7, 5, 0, 1, 1.0f, 0.5f, false, 606); /* k = 0: C = beta C */
  check_gemm(&b, UNMIX_PREC_FP32, false, false, 7, 5, 0, 1, 1.0f, 0.0f, true, 609);  /* k = 0, beta 0: zeros */
}
END_TEST

/* ---- linear --------------------------------------------------------------------------------------- */
static void check_linear(struct gpu_pair *b, enum unmix_precision prec, bool bias, bool want_dx, bool want_dw,
                         uint32_t seed) {
  const int n = 13, in = 37, out = 11;
  const size_t nx = (size_t)n * in, nw = (size_t)out * in, ny = (size_t)n * out;
  float *x = hrand(nx, seed, -1, 1), *w = hrand(nw, seed + 1, -1, 1), *bi = hrand(out, seed + 2, -1, 1),
        *dy = hrand(ny, seed + 3, -1, 1), *dw0 = hrand(nw, seed + 4, -1, 1), *db0 = hrand(out, seed + 5, -1, 1);
  float *y = hzeros(ny), *dx = hzeros(nx), *dw = hcopy(dw0, nw), *db = hcopy(db0, out), *got = hzeros(nx + nw);
  b->cpu->linear_forward(n, in, out, x, w, bias ? bi : NULL, y);
  b->cpu->linear_backward(n, in, out, dy, x, w, want_dx ? dx : NULL, want_dw ? dw : NULL, bias ? db : NULL);
  float *gx = dput(b->gpu, x, nx), *gw = dput(b->gpu, w, nw), *gbi = dput(b->gpu, bi, out), *gy = dput(b->gpu, NULL, ny),
        *gdy = dput(b->gpu, dy, ny), *gdx = dput(b->gpu, NULL, nx), *gdw = dput(b->gpu, dw0, nw),
        *gdb = dput(b->gpu, db0, out);
  b->gpu->set_precision(prec);
  b->gpu->linear_forward(n, in, out, gx, gw, bias ? gbi : NULL, gy);
  b->gpu->linear_backward(n, in, out, gdy, gx, gw, want_dx ? gdx : NULL, want_dw ? gdw : NULL, bias ? gdb : NULL);
  b->gpu->set_precision(UNMIX_PREC_FP32);
  char what[96], tag[64];
  snprintf(tag, sizeof tag, "%s%s%s%s", prec_name(prec), bias ? " bias" : "", want_dx ? "" : " no-dx",
           want_dw ? "" : " frozen");
  snprintf(what, sizeof what, "linear_forward %s", tag);
  dget(b->gpu, what, gy, ny, got);
  ck_gpu_close(what, got, y, ny, gemm_tol(prec));
  if (want_dx) {
    snprintf(what, sizeof what, "linear_backward dx %s", tag);
    dget(b->gpu, what, gdx, nx, got);
    ck_gpu_close(what, got, dx, nx, gemm_tol(prec));
  }
  snprintf(what, sizeof what, "linear_backward dw+= %s", tag);
  dget(b->gpu, what, gdw, nw, got);
  ck_gpu_close(what, got, dw, nw, gemm_tol(prec)); /* equals dw0 when frozen */
  snprintf(what, sizeof what, "linear_backward dbias+= %s", tag);
  dget(b->gpu, what, gdb, out, got);
  ck_gpu_close(what, got, db, out, TOL_FP32); /* our column sum in every mode */
  dfree(b->gpu, gx), dfree(b->gpu, gw), dfree(b->gpu, gbi), dfree(b->gpu, gy), dfree(b->gpu, gdy), dfree(b->gpu, gdx);
  dfree(b->gpu, gdw), dfree(b->gpu, gdb);
  free(x), free(w), free(bi), free(dy), free(dw0), free(db0), free(y), free(dx), free(dw), free(db), free(got);
}

START_TEST(test_linear) {
  struct gpu_pair b;
  if (!gpu_begin("linear_forward / linear_backward (bias, no dx, frozen)", &b)) return;
  check_linear(&b, UNMIX_PREC_FP32, true, true, true, 700);
  check_linear(&b, UNMIX_PREC_FP32, false, true, true, 710);
  check_linear(&b, UNMIX_PREC_FP32, true, false, true, 720);
  check_linear(&b, UNMIX_PREC_FP32, true, true, false, 730);
  check_linear(&b, UNMIX_PREC_TF32, true, true, true, 740);
  check_linear(&b, UNMIX_PREC_BF16, true, true, true, 750);
}
END_TEST

/* ---- conv2d ----------------------------------------------------------------------------------------- */
struct conv_case {
  int n, h, w, c, k, r, s, stride, pad;
};
static const struct conv_case g_convs[] = {
    {5, 7, 11, 13, 7, 3, 3, 1, 1},  /* odd everything */
    {3, 13, 11, 5, 11, 3, 3, 2, 1}, /* strided 3x3 */
    {7, 5, 5, 13, 5, 1, 1, 1, 0},   /* pointwise */
    {3, 9, 7, 7, 13, 1, 1, 2, 0},   /* strided 1x1 (downsample) */
    {2, 23, 19, 3, 11, 7, 7, 2, 3}, /* stem: 7x7 stride 2 pad 3 on 3 channels */
    {4, 8, 8, 64, 64, 3, 3, 1, 1},  /* a ResNet layer-1 shape */
};
#define NCONV ((int)(sizeof g_convs / sizeof g_convs[0]))

struct conv_data {
  struct unmix_conv_geom g;
  size_t nx, nw, ny;
  float *x, *w, *dy, *dw0;   /* inputs (host) */
  float *y, *dx, *dw;        /* CPU results */
  float *gx, *gw, *gdy;      /* device inputs */
};

static void conv_setup(struct gpu_pair *b, const struct conv_case *cc, uint32_t seed, struct conv_data *d) {
  unmix_conv_geom_init(&d->g, cc->n, cc->h, cc->w, cc->c, cc->k, cc->r, cc->s, cc->stride, cc->pad);
  d->nx = (size_t)d->g.n * d->g.h * d->g.w * d->g.c;
  d->nw = (size_t)d->g.k * d->g.r * d->g.s * d->g.c;
  d->ny = (size_t)d->g.n * d->g.p * d->g.q * d->g.k;
  d->x = hrand(d->nx, seed, -1, 1), d->w = hrand(d->nw, seed + 1, -1, 1), d->dy = hrand(d->ny, seed + 2, -1, 1);
  d->dw0 = hrand(d->nw, seed + 3, -1, 1);
  d->y = hzeros(d->ny), d->dx = hzeros(d->nx), d->dw = hcopy(d->dw0, d->nw);
  b->cpu->conv2d_forward(&d->g, d->x, d->w, d->y);
  b->cpu->conv2d_backward_data(&d->g, d->dy, d->w, d->dx);
  b->cpu->conv2d_backward_weight(&d->g, d->dy, d->x, d->dw);
  d->gx = dput(b->gpu, d->x, d->nx), d->gw = dput(b->gpu, d->w, d->nw), d->gdy = dput(b->gpu, d->dy, d->ny);
}
static void conv_teardown(struct gpu_pair *b, struct conv_data *d) {
  dfree(b->gpu, d->gx), dfree(b->gpu, d->gw), dfree(b->gpu, d->gdy);
  free(d->x), free(d->w), free(d->dy), free(d->dw0), free(d->y), free(d->dx), free(d->dw);
}

/* The three passes on the GPU; results into y/dx/dw (host). */
static void conv_run(struct gpu_pair *b, struct conv_data *d, const char *tag, float *y, float *dx, float *dw) {
  float *gy = dput(b->gpu, NULL, d->ny), *gdx = dput(b->gpu, NULL, d->nx), *gdw = dput(b->gpu, d->dw0, d->nw);
  b->gpu->conv2d_forward(&d->g, d->gx, d->gw, gy);
  b->gpu->conv2d_backward_data(&d->g, d->gdy, d->gw, gdx);
  b->gpu->conv2d_backward_weight(&d->g, d->gdy, d->gx, gdw);
  dget(b->gpu, tag, gy, d->ny, y);
  dget(b->gpu, tag, gdx, d->nx, dx);
  dget(b->gpu, tag, gdw, d->nw, dw);
  dfree(b->gpu, gy), dfree(b->gpu, gdx), dfree(b->gpu, gdw);
}

static void check_conv(struct gpu_pair *b, struct conv_data *d, enum unmix_precision prec, bool det) {
  char tag[96], what[160];
  const struct unmix_conv_geom *g = &d->g;
  snprintf(tag, sizeof tag, "n%d %dx%dx%d k%d %dx%d s%d p%d %s%s", g->n, g->h, g->w, g->c, g->k, g->r, g->s,
           g->stride, g->pad, prec_name(prec), det ? " det" : "");
  float *y = hzeros(d->ny), *dx = hzeros(d->nx), *dw = hzeros(d->nw);
  b->gpu->set_precision(prec);
  b->gpu->set_deterministic(det);
  conv_run(b, d, tag, y, dx, dw);
  snprintf(what, sizeof what, "conv fwd %s", tag);
  ck_gpu_close(what, y, d->y, d->ny, conv_tol(prec));
  snprintf(what, sizeof what, "conv bwd-data %s", tag);
  ck_gpu_close(what, dx, d->dx, d->nx, conv_tol(prec));
  snprintf(what, sizeof what, "conv bwd-weight+= %s", tag);
  ck_gpu_close(what, dw, d->dw, d->nw, conv_tol(prec));
  if (det) {
    float *y2 = hzeros(d->ny), *dx2 = hzeros(d->nx), *dw2 = hzeros(d->nw);
    conv_run(b, d, tag, y2, dx2, dw2);
    snprintf(what, sizeof what, "conv repeat %s", tag);
    ck_gpu_same(what, y2, y, d->ny);
    ck_gpu_same(what, dx2, dx, d->nx);
    ck_gpu_same(what, dw2, dw, d->nw);
    free(y2), free(dx2), free(dw2);
  }
  b->gpu->set_deterministic(false);
  b->gpu->set_precision(UNMIX_PREC_FP32);
  free(y), free(dx), free(dw);
}

START_TEST(test_conv_fp32) {
  struct gpu_pair b;
  if (!gpu_begin("conv2d forward / backward-data / backward-weight, fp32 (+ deterministic)", &b)) return;
  for (int i = 0; i < NCONV; i++) {
    struct conv_data d;
    conv_setup(&b, &g_convs[i], 800 + 10 * i, &d);
    check_conv(&b, &d, UNMIX_PREC_FP32, false);
    check_conv(&b, &d, UNMIX_PREC_FP32, true);
    conv_teardown(&b, &d);
  }
}
END_TEST

START_TEST(test_conv_tf32_bf16) {
  struct gpu_pair b;
  if (!gpu_begin("conv2d all passes, tf32 and bf16 (+ deterministic)", &b)) return;
  for (int i = 0; i < NCONV; i++) {
    struct conv_data d;
    conv_setup(&b, &g_convs[i], 900 + 10 * i, &d);
    check_conv(&b, &d, UNMIX_PREC_TF32, false);
    check_conv(&b, &d, UNMIX_PREC_BF16, false);
    check_conv(&b, &d, UNMIX_PREC_TF32, true);
    check_conv(&b, &d, UNMIX_PREC_BF16, true);
    check_conv(&b, &d, UNMIX_PREC_FP32, false); /* switching back finds the fp32 plans again */
    conv_teardown(&b, &d);
  }
}
END_TEST

/* A NaN in the input reaches exactly the outputs whose window holds it in im2col+GEMM (the
 * CPU) and in direct/implicit-GEMM kernels, but Winograd and FFT kernels smear it over a
 * tile. So only "NaN stays NaN" is demanded: every output the CPU marks NaN is NaN on the
 * GPU as well (extra NaN outputs are allowed). */
START_TEST(test_conv_nan) {
  struct gpu_pair b;
  if (!gpu_begin("conv2d forward propagates NaN", &b)) return;
  struct conv_data d;
  conv_setup(&b, &g_convs[0], 990, &d);
  d.x[100] = NAN;
  b.cpu->conv2d_forward(&d.g, d.x, d.w, d.y);
  b.gpu->memcpy_h2d(d.gx, d.x, d.nx * sizeof(float));
  float *gy = dput(b.gpu, NULL, d.ny), *y = hzeros(d.ny);
  b.gpu->conv2d_forward(&d.g, d.gx, d.gw, gy);
  dget(b.gpu, "conv nan", gy, d.ny, y);
  size_t nan_cpu = 0;
  for (size_t i = 0; i < d.ny; i++)
    if (isnan(d.y[i])) {
      nan_cpu++;
      ck_assert_msg(isnan(y[i]), "conv forward: output %zu is NaN on the CPU but %g on the GPU", i, y[i]);
    }
  ck_assert_uint_gt(nan_cpu, 0);
  printf("gpu-check %-44s ok (%zu NaN outputs)\n", "conv fwd NaN propagation", nan_cpu);
  dfree(b.gpu, gy);
  free(y);
  conv_teardown(&b, &d);
}
END_TEST

/* ---- did the precision mode engage? ----------------------------------------------------------- */
/* Tolerances only bound the error from above: an ignored set_precision, or a bf16 pass that
 * quietly ran in tf32, would pass every case above. These probes make the mode visible in
 * the result. Each dot product is 32 pairs (1 + 2^-e, -1) x (1, 1): exact in fp32, it sums to
 * 32 * 2^-e. TF32 keeps 10 mantissa bits, so with e = 12 its operands lose the 2^-12 (rounded
 * or truncated) and the sum is 0; bf16 keeps 7, so with e = 9 it is 0 in bf16 but 2^-4
 * exactly in tf32 and fp32. Every partial sum is a small dyadic number: no rounding of the
 * accumulation can hide or fake the difference. */
static float probe_want(enum unmix_precision run, int e) {
  const bool lost = (run == UNMIX_PREC_TF32 && e > 10) || (run == UNMIX_PREC_BF16 && e > 7);
  return lost ? 0.0f : 32.0f * ldexpf(1.0f, -e);
}
static void probe_fill(float *x, size_t n, int e) {
  for (size_t i = 0; i < n; i++) x[i] = i % 2 ? -1.0f : 1.0f + ldexpf(1.0f, -e);
}

/* GEMM: C(m,n) = A(m,64) B(64,n), rows of A the probe pattern, B all ones. */
static void probe_gemm(struct gpu_pair *b, enum unmix_precision prec, int e) {
  const int m = 3, n = 5, k = 64;
  float *a = hzeros((size_t)m * k), *bm = hzeros((size_t)k * n), *c = hzeros((size_t)m * n);
  probe_fill(a, (size_t)m * k, e);
  for (int i = 0; i < k * n; i++) bm[i] = 1.0f;
  float *ga = dput(b->gpu, a, (size_t)m * k), *gb = dput(b->gpu, bm, (size_t)k * n), *gc = dput(b->gpu, NULL, (size_t)m * n);
  b->gpu->set_precision(prec);
  b->gpu->gemm(false, false, m, n, k, 1.0f, ga, k, gb, n, 0.0f, gc, n);
  b->gpu->set_precision(UNMIX_PREC_FP32);
  char what[96];
  snprintf(what, sizeof what, "gemm %s engaged (probe 2^-%d)", prec_name(prec), e);
  dget(b->gpu, what, gc, (size_t)m * n, c);
  const float want = probe_want(prec, e);
  for (int i = 0; i < m * n; i++)
    ck_assert_msg(c[i] == want, "%s: C[%d] = %.9g, want %.9g (the mode did not change the arithmetic)", what, i,
                  (double)c[i], (double)want);
  printf("gpu-check %-44s ok\n", what);
  dfree(b->gpu, ga), dfree(b->gpu, gb), dfree(b->gpu, gc);
  free(a), free(bm), free(c);
}

/* Conv forward, 1x1, 64 input channels holding the probe pattern, weights all one. */
static void probe_conv(struct gpu_pair *b, enum unmix_precision prec, bool det, int e) {
  struct unmix_conv_geom g;
  unmix_conv_geom_init(&g, 4, 8, 8, 64, 32, 1, 1, 1, 0);
  const size_t nx = (size_t)g.n * g.h * g.w * g.c, nw = (size_t)g.k * g.c, ny = (size_t)g.n * g.p * g.q * g.k;
  float *x = hzeros(nx), *w = hzeros(nw), *y = hzeros(ny);
  probe_fill(x, nx, e); /* channel c of every pixel: c even 1 + 2^-e, c odd -1 */
  for (size_t i = 0; i < nw; i++) w[i] = 1.0f;
  float *gx = dput(b->gpu, x, nx), *gw = dput(b->gpu, w, nw), *gy = dput(b->gpu, NULL, ny);
  b->gpu->set_precision(prec);
  b->gpu->set_deterministic(det);
  const struct unmix_op_query q = {.prec = prec, .conv = &g};
  const bool native = b->gpu->supports_op(UNMIX_OP_CONV2D_FORWARD, &q);
  b->gpu->conv2d_forward(&g, gx, gw, gy);
  b->gpu->set_deterministic(false);
  b->gpu->set_precision(UNMIX_PREC_FP32);
  char what[96];
  snprintf(what, sizeof what, "conv fwd %s%s engaged (probe 2^-%d)", prec_name(prec), det ? " det" : "", e);
  ck_assert_msg(native, "%s: cuDNN has no %s kernel for a 1x1 conv with C = 64, K = 32", what, prec_name(prec));
  dget(b->gpu, what, gy, ny, y);
  const float want = probe_want(prec, e);
  for (size_t i = 0; i < ny; i++)
    ck_assert_msg(y[i] == want, "%s: y[%zu] = %.9g, want %.9g (the mode did not change the arithmetic)", what, i,
                  (double)y[i], (double)want);
  printf("gpu-check %-44s ok\n", what);
  dfree(b->gpu, gx), dfree(b->gpu, gw), dfree(b->gpu, gy);
  free(x), free(w), free(y);
}

START_TEST(test_precision_engaged) {
  struct gpu_pair b;
  if (!gpu_begin("tf32 / bf16 really change the arithmetic (GEMM, conv, det)", &b)) return;
  for (int pr = UNMIX_PREC_FP32; pr <= UNMIX_PREC_BF16; pr++)
    for (int e = 9; e <= 12; e += 3) {
      probe_gemm(&b, (enum unmix_precision)pr, e);
      probe_conv(&b, (enum unmix_precision)pr, false, e);
      probe_conv(&b, (enum unmix_precision)pr, true, e);
    }
}
END_TEST

/* Shapes whose channel counts cuDNN's bf16 NHWC kernels take (multiples of 8): every pass must
 * run natively in bf16 (no tf32 fallback), close to the CPU and, in deterministic mode, repeat
 * bit for bit. The odd shapes of g_convs may fall back; their count is reported. */
static const struct conv_case g_bf16_convs[] = {
    {4, 8, 8, 16, 32, 3, 3, 1, 1},
    {6, 9, 7, 32, 16, 3, 3, 2, 1},
    {5, 8, 8, 64, 128, 1, 1, 2, 0},
};

START_TEST(test_conv_bf16_native) {
  struct gpu_pair b;
  if (!gpu_begin("conv2d bf16 without fallback (C, K multiples of 8; det)", &b)) return;
  static const enum unmix_op passes[3] = {UNMIX_OP_CONV2D_FORWARD, UNMIX_OP_CONV2D_BACKWARD_DATA,
                                          UNMIX_OP_CONV2D_BACKWARD_WEIGHT};
  for (int i = 0; i < (int)(sizeof g_bf16_convs / sizeof g_bf16_convs[0]); i++) {
    struct conv_data d;
    conv_setup(&b, &g_bf16_convs[i], 1100 + 10 * i, &d);
    for (int det = 0; det < 2; det++) {
      b.gpu->set_deterministic(det);
      for (int ps = 0; ps < 3; ps++) {
        const struct unmix_op_query q = {.prec = UNMIX_PREC_BF16, .conv = &d.g};
        ck_assert_msg(b.gpu->supports_op(passes[ps], &q), "no native bf16 %s for conv case %d%s",
                      unmix_op_name(passes[ps]), i, det ? " (deterministic)" : "");
      }
      b.gpu->set_deterministic(false);
      check_conv(&b, &d, UNMIX_PREC_BF16, det);
    }
    conv_teardown(&b, &d);
  }
  int fallbacks = 0;
  for (int i = 0; i < NCONV; i++) {
    struct unmix_conv_geom g;
    const struct conv_case *cc = &g_convs[i];
    unmix_conv_geom_init(&g, cc->n, cc->h, cc->w, cc->c, cc->k, cc->r, cc->s, cc->stride, cc->pad);
    const struct unmix_op_query q = {.prec = UNMIX_PREC_BF16, .conv = &g};
    for (int ps = 0; ps < 3; ps++) fallbacks += !b.gpu->supports_op(passes[ps], &q);
  }
  printf("gpu-check %-44s %d of %d passes run in tf32\n", "conv bf16 fallbacks (odd shapes)", fallbacks, 3 * NCONV);
}
END_TEST

/* Two test cases, so that CK_RUN_CASE=gemm or =conv runs one kind. */
static Suite *make_suite(void) {
  Suite *s = suite_create("gpu_dense");
  TCase *tg = tcase_create("gemm");
  tcase_set_timeout(tg, 600);
  tcase_add_test(tg, test_gemm);
  tcase_add_test(tg, test_linear);
  tcase_add_test(tg, test_precision_engaged);
  suite_add_tcase(s, tg);
  TCase *tc = tcase_create("conv");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_conv_fp32);
  tcase_add_test(tc, test_conv_tf32_bf16);
  tcase_add_test(tc, test_conv_nan);
  tcase_add_test(tc, test_conv_bf16_native);
  suite_add_tcase(s, tc);
  return s;
}

UNMIX_TEST_MAIN(make_suite)
