/* Every non-GEMM op of the CUDA backend against the CPU oracle on odd shapes: element-wise,
 * batch-axis and mixing ops, pooling, padding, batch norm (plain and split), row-wise
 * normalisation and losses, reductions, optimiser updates, top-k and the non-finite count.
 * Device outputs carry guards and start poisoned; NaN/Inf must agree where the op passes
 * them through. Without a CUDA device every case prints "SKIPPED (...): <case>". */
#include "core/optim/adam.h"
#include "tests/gpu/gpu_check.h"

/* ---- element-wise ------------------------------------------------------------------------ */
START_TEST(test_relu) {
  struct gpu_pair b;
  if (!gpu_begin("relu_forward / relu_backward (NaN, Inf, in place)", &b)) return;
  const size_t n = 1000003;
  float *x = hrand(n, 1, -1, 1), *dy = hrand(n, 2, -1, 1);
  x[3] = NAN, x[7] = INFINITY, x[8] = -INFINITY, x[9] = -0.0f;
  dy[5] = NAN, dy[11] = INFINITY;
  float *y = hzeros(n), *dx = hzeros(n), *got = hzeros(n);
  b.cpu->relu_forward(n, x, y);
  b.cpu->relu_backward(n, dy, y, dx);
  float *gx = dput(b.gpu, x, n), *gy = dput(b.gpu, NULL, n), *gdy = dput(b.gpu, dy, n), *gdx = dput(b.gpu, NULL, n);
  b.gpu->relu_forward(n, gx, gy);
  dget(b.gpu, "relu y", gy, n, got);
  ck_gpu_close("relu_forward", got, y, n, TOL_FP32);
  b.gpu->relu_backward(n, gdy, gy, gdx);
  dget(b.gpu, "relu dx", gdx, n, got);
  ck_gpu_close("relu_backward", got, dx, n, TOL_FP32);
  b.gpu->relu_forward(n, gx, gx); /* y may alias x */
  dget(b.gpu, "relu in place", gx, n, got);
  ck_gpu_close("relu_forward in place", got, y, n, TOL_FP32);
  b.gpu->relu_backward(n, gdy, gy, gdy); /* dx may alias dy */
  dget(b.gpu, "relu_backward in place", gdy, n, got);
  ck_gpu_close("relu_backward in place", got, dx, n, TOL_FP32);
  dfree(b.gpu, gx), dfree(b.gpu, gy), dfree(b.gpu, gdy), dfree(b.gpu, gdx);
  free(x), free(dy), free(y), free(dx), free(got);
}
END_TEST

START_TEST(test_add_blas1) {
  struct gpu_pair b;
  if (!gpu_begin("add / add_relu (forward, backward) / fill / scale / axpy / axpby / exp_scaled / ema", &b)) return;
  const size_t n = 100003;
  float *a = hrand(n, 3, -2, 2), *c = hrand(n, 4, -2, 2), *want = hzeros(n), *got = hzeros(n);
  a[10] = INFINITY, c[10] = -INFINITY, a[11] = NAN; /* inf + -inf = NaN; NaN propagates */
  float *ga = dput(b.gpu, a, n), *gc = dput(b.gpu, c, n), *gy = dput(b.gpu, NULL, n);

  b.cpu->add(n, a, c, want);
  b.gpu->add(n, ga, gc, gy);
  dget(b.gpu, "add", gy, n, got);
  ck_gpu_close("add", got, want, n, TOL_FP32);
  b.cpu->add_relu_forward(n, a, c, want);
  b.gpu->add_relu_forward(n, ga, gc, gy);
  dget(b.gpu, "add_relu", gy, n, got);
  ck_gpu_close("add_relu_forward", got, want, n, TOL_FP32);
  { /* the join's fused backward on add_relu's output: both outputs, da in place of dy */
    float *dy = hrand(n, 5, -1, 1), *want_b = hzeros(n);
    float *gdy = dput(b.gpu, dy, n), *gdb = dput(b.gpu, NULL, n);
    b.cpu->add_relu_backward(n, dy, want, dy, want_b); /* want holds add_relu's output */
    b.gpu->add_relu_backward(n, gdy, gy, gdy, gdb);
    dget(b.gpu, "add_relu_backward da", gdy, n, got);
    ck_gpu_close("add_relu_backward da (in place)", got, dy, n, 0.0);
    dget(b.gpu, "add_relu_backward db", gdb, n, got);
    ck_gpu_close("add_relu_backward db", got, want_b, n, 0.0);
    dfree(b.gpu, gdy), dfree(b.gpu, gdb);
    free(dy), free(want_b);
  }
  b.cpu->fill(n, -0.375f, want);
  b.gpu->fill(n, -0.375f, gy);
  dget(b.gpu, "fill", gy, n, got);
  ck_gpu_close("fill", got, want, n, 0.0);
  b.cpu->scale(n, 0.3f, a, want);
  b.gpu->scale(n, 0.3f, ga, gy);
  dget(b.gpu, "scale", gy, n, got);
  ck_gpu_close("scale", got, want, n, TOL_FP32);

  float *y0 = hrand(n, 5, -1, 1);
  memcpy(want, y0, n * sizeof(float));
  b.cpu->axpy(n, -0.7f, a, want);
  b.gpu->memcpy_h2d(gy, y0, n * sizeof(float));
  b.gpu->axpy(n, -0.7f, ga, gy);
  dget(b.gpu, "axpy", gy, n, got);
  ck_gpu_close("axpy", got, want, n, TOL_FP32);
  memcpy(want, y0, n * sizeof(float));
  b.cpu->axpby(n, 0.6f, a, -1.3f, want);
  b.gpu->memcpy_h2d(gy, y0, n * sizeof(float));
  b.gpu->axpby(n, 0.6f, ga, -1.3f, gy);
  dget(b.gpu, "axpby", gy, n, got);
  ck_gpu_close("axpby", got, want, n, TOL_FP32);

  float *s = hrand(n, 6, -1, 1);
  float *gs = dput(b.gpu, s, n);
  b.cpu->exp_scaled(n, 1.0f / 0.05f, 3.0f, s, want);
  b.gpu->exp_scaled(n, 1.0f / 0.05f, 3.0f, gs, gy);
  dget(b.gpu, "exp_scaled", gy, n, got);
  ck_gpu_close("exp_scaled", got, want, n, TOL_FP32);

  memcpy(want, y0, n * sizeof(float));
  b.cpu->ema(n, 0.99f, s, want);
  b.gpu->memcpy_h2d(gy, y0, n * sizeof(float));
  b.gpu->ema(n, 0.99f, gs, gy);
  dget(b.gpu, "ema", gy, n, got);
  ck_gpu_close("ema", got, want, n, TOL_FP32);

  b.cpu->add(n, a, c, want); /* y may alias a */
  b.gpu->add(n, ga, gc, ga);
  dget(b.gpu, "add in place", ga, n, got);
  ck_gpu_close("add in place", got, want, n, TOL_FP32);
  dfree(b.gpu, ga), dfree(b.gpu, gc), dfree(b.gpu, gy), dfree(b.gpu, gs);
  free(a), free(c), free(want), free(got), free(y0), free(s);
}
END_TEST

START_TEST(test_copy) {
  struct gpu_pair b;
  if (!gpu_begin("copy (plain and overlapping)", &b)) return;
  const size_t n = 10007;
  float *x = hrand(n + 13, 7, -1, 1), *got = hzeros(n + 13), *want = hcopy(x, n + 13);
  float *gx = dput(b.gpu, x, n + 13), *gy = dput(b.gpu, NULL, n);
  b.gpu->copy(n, gx, gy);
  dget(b.gpu, "copy", gy, n, got);
  ck_gpu_close("copy", got, x, n, 0.0);
  b.cpu->copy(n, want, want + 13); /* overlapping: memmove semantics */
  b.gpu->copy(n, gx, gx + 13);
  dget(b.gpu, "copy overlap", gx, n + 13, got);
  ck_gpu_close("copy overlapping", got, want, n + 13, 0.0);
  dfree(b.gpu, gx), dfree(b.gpu, gy);
  free(x), free(got), free(want);
}
END_TEST

/* ---- batch-axis and mixing ------------------------------------------------------------------ */
START_TEST(test_batch_axis) {
  struct gpu_pair b;
  if (!gpu_begin("flip_batch / gather_rows / scatter_rows / blend_flipped / paste_box_flipped", &b)) return;
  const int n = 7, h = 11, w = 13, c = 3;
  const int64_t row = (int64_t)h * w * c;
  const size_t tot = (size_t)n * row;
  float *x = hrand(tot, 8, -1, 1), *want = hzeros(tot), *got = hzeros(tot);
  const int32_t perm[7] = {3, 0, 6, 2, 5, 1, 4};
  float *gx = dput(b.gpu, x, tot), *gy = dput(b.gpu, NULL, tot);
  int32_t *gi = dput_i32(b.gpu, perm, 7);

  b.cpu->flip_batch(n, row, x, want);
  b.gpu->flip_batch(n, row, gx, gy);
  dget(b.gpu, "flip", gy, tot, got);
  ck_gpu_close("flip_batch", got, want, tot, 0.0);
  b.cpu->gather_rows(n, row, perm, x, want);
  b.gpu->gather_rows(n, row, gi, gx, gy);
  dget(b.gpu, "gather", gy, tot, got);
  ck_gpu_close("gather_rows", got, want, tot, 0.0);
  b.cpu->scatter_rows(n, row, perm, x, want);
  b.gpu->scatter_rows(n, row, gi, gx, gy);
  dget(b.gpu, "scatter", gy, tot, got);
  ck_gpu_close("scatter_rows", got, want, tot, 0.0);
  b.cpu->blend_flipped(n, row, 0.37f, x, want);
  b.gpu->blend_flipped(n, row, 0.37f, gx, gy);
  dget(b.gpu, "blend_flipped", gy, tot, got);
  ck_gpu_close("blend_flipped", got, want, tot, TOL_FP32);
  b.cpu->paste_box_flipped(n, h, w, c, 2, 7, 3, 12, x, want);
  b.gpu->paste_box_flipped(n, h, w, c, 2, 7, 3, 12, gx, gy);
  dget(b.gpu, "paste_box_flipped", gy, tot, got);
  ck_gpu_close("paste_box_flipped", got, want, tot, 0.0);
  b.cpu->paste_box_flipped(n, h, w, c, 0, 0, 0, 0, x, want); /* an empty box copies */
  b.gpu->paste_box_flipped(n, h, w, c, 0, 0, 0, 0, gx, gy);
  dget(b.gpu, "paste_box_flipped empty", gy, tot, got);
  ck_gpu_close("paste_box_flipped empty box", got, want, tot, 0.0);
  dfree(b.gpu, gx), dfree(b.gpu, gy), dfree(b.gpu, gi);
  free(x), free(want), free(got);
}
END_TEST

/* ---- pooling and padding ------------------------------------------------------------------ */
static void check_maxpool(struct gpu_pair *b, const char *tag, int quantise, int with_nan) {
  struct unmix_pool_geom g;
  unmix_pool_geom_init(&g, 3, 11, 13, 5, 3, 2, 1);
  const size_t nx = (size_t)g.n * g.h * g.w * g.c, ny = (size_t)g.n * g.p * g.q * g.c;
  float *x = hrand(nx, 9, -1, 1), *dy = hrand(ny, 10, -1, 1);
  if (quantise)
    for (size_t i = 0; i < nx; i++) x[i] = floorf((x[i] + 1.0f) * 1.5f); /* values 0..2: many ties */
  if (with_nan) x[17] = NAN, x[300] = NAN, x[301] = INFINITY;
  float *y = hzeros(ny), *dx = hzeros(nx), *got = hzeros(nx);
  int32_t *am = calloc(ny, sizeof(int32_t)), *gam_h = calloc(ny, sizeof(int32_t));
  b->cpu->maxpool_forward(&g, x, y, am);
  b->cpu->maxpool_backward(&g, dy, am, dx);
  float *gx = dput(b->gpu, x, nx), *gy = dput(b->gpu, NULL, ny), *gdy = dput(b->gpu, dy, ny),
        *gdx = dput(b->gpu, NULL, nx);
  int32_t *gam = dput_i32(b->gpu, NULL, ny);
  b->gpu->maxpool_forward(&g, gx, gy, gam);
  char what[96];
  snprintf(what, sizeof what, "maxpool_forward %s", tag);
  dget(b->gpu, what, gy, ny, got);
  ck_gpu_close(what, got, y, ny, 0.0);
  dget_i32(b->gpu, what, gam, ny, gam_h);
  snprintf(what, sizeof what, "maxpool argmax %s", tag);
  ck_gpu_same(what, gam_h, am, ny);
  b->gpu->maxpool_backward(&g, gdy, gam, gdx);
  snprintf(what, sizeof what, "maxpool_backward %s", tag);
  dget(b->gpu, what, gdx, nx, got);
  ck_gpu_close(what, got, dx, nx, TOL_FP32);
  dfree(b->gpu, gx), dfree(b->gpu, gy), dfree(b->gpu, gdy), dfree(b->gpu, gdx), dfree(b->gpu, gam);
  free(x), free(dy), free(y), free(dx), free(got), free(am), free(gam_h);
}

START_TEST(test_maxpool) {
  struct gpu_pair b;
  if (!gpu_begin("maxpool_forward / maxpool_backward (3x3 s2 p1, ties, NaN)", &b)) return;
  check_maxpool(&b, "random", 0, 0);
  check_maxpool(&b, "ties", 1, 0);
  check_maxpool(&b, "NaN/Inf", 0, 1);
}
END_TEST

START_TEST(test_avgpool_pad) {
  struct gpu_pair b;
  if (!gpu_begin("avgpool_forward / avgpool_backward / pad2d_forward / pad2d_backward", &b)) return;
  const int n = 7, hw = 49, c = 13;
  float *x = hrand((size_t)n * hw * c, 11, -1, 1), *dy = hrand((size_t)n * c, 12, -1, 1);
  float *y = hzeros((size_t)n * c), *dx = hzeros((size_t)n * hw * c), *got = hzeros((size_t)n * hw * c);
  float *gx = dput(b.gpu, x, (size_t)n * hw * c), *gy = dput(b.gpu, NULL, (size_t)n * c),
        *gdy = dput(b.gpu, dy, (size_t)n * c), *gdx = dput(b.gpu, NULL, (size_t)n * hw * c);
  b.cpu->avgpool_forward(n, hw, c, x, y);
  b.gpu->avgpool_forward(n, hw, c, gx, gy);
  dget(b.gpu, "avgpool y", gy, (size_t)n * c, got);
  ck_gpu_close("avgpool_forward", got, y, (size_t)n * c, TOL_FP32);
  b.cpu->avgpool_backward(n, hw, c, dy, dx);
  b.gpu->avgpool_backward(n, hw, c, gdy, gdx);
  dget(b.gpu, "avgpool dx", gdx, (size_t)n * hw * c, got);
  ck_gpu_close("avgpool_backward", got, dx, (size_t)n * hw * c, TOL_FP32);
  dfree(b.gpu, gx), dfree(b.gpu, gy), dfree(b.gpu, gdy), dfree(b.gpu, gdx);
  free(x), free(dy), free(y), free(dx), free(got);

  const int pn = 3, h = 5, w = 7, pc = 11, pad = 2, ho = h + 2 * pad, wo = w + 2 * pad;
  const size_t ni = (size_t)pn * h * w * pc, no = (size_t)pn * ho * wo * pc;
  x = hrand(ni, 13, -1, 1), dy = hrand(no, 14, -1, 1), y = hzeros(no), dx = hzeros(ni), got = hzeros(no);
  gx = dput(b.gpu, x, ni), gy = dput(b.gpu, NULL, no), gdy = dput(b.gpu, dy, no), gdx = dput(b.gpu, NULL, ni);
  b.cpu->pad2d_forward(pn, h, w, pc, pad, -0.5f, x, y);
  b.gpu->pad2d_forward(pn, h, w, pc, pad, -0.5f, gx, gy);
  dget(b.gpu, "pad y", gy, no, got);
  ck_gpu_close("pad2d_forward", got, y, no, 0.0);
  b.cpu->pad2d_backward(pn, h, w, pc, pad, dy, dx);
  b.gpu->pad2d_backward(pn, h, w, pc, pad, gdy, gdx);
  dget(b.gpu, "pad dx", gdx, ni, got);
  ck_gpu_close("pad2d_backward", got, dx, ni, 0.0);
  dfree(b.gpu, gx), dfree(b.gpu, gy), dfree(b.gpu, gdy), dfree(b.gpu, gdx);
  free(x), free(dy), free(y), free(dx), free(got);
}
END_TEST

/* ---- batch norm ------------------------------------------------------------------------------- */
/* relu: the fused BN + ReLU (forward clamps, backward masks dy by the recomputed output). */
static void check_bn(struct gpu_pair *b, int n, int hw, int c, int splits, bool in_place, bool relu, uint32_t seed) {
  const struct unmix_bn_geom g = {n, hw, c, splits};
  const size_t nx = (size_t)n * hw * c, sc = (size_t)splits * c;
  char what[128], tag[64];
  snprintf(tag, sizeof tag, "n%d hw%d c%d S%d%s%s", n, hw, c, splits, in_place ? " in place" : "", relu ? " relu" : "");
  float *x = hrand(nx, seed, -0.5f, 1.5f), *gamma = hrand(c, seed + 1, 0.5f, 1.5f),
        *beta = hrand(c, seed + 2, -0.5f, 0.5f), *rm = hrand(c, seed + 3, -0.1f, 0.1f),
        *rv = hrand(c, seed + 4, 0.5f, 1.5f), *dy = hrand(nx, seed + 5, -1, 1),
        *dg = hrand(c, seed + 6, -1, 1), *db = hrand(c, seed + 7, -1, 1);
  float *y = hzeros(nx), *sm = hzeros(sc), *si = hzeros(sc), *rm_c = hcopy(rm, c), *rv_c = hcopy(rv, c),
        *dx = hzeros(nx), *dg_c = hcopy(dg, c), *db_c = hcopy(db, c), *got = hzeros(nx);
  b->cpu->batchnorm_forward_train(&g, x, gamma, beta, y, sm, si, rm_c, rv_c, 0.1f, 1e-5f, relu);
  b->cpu->batchnorm_backward(&g, dy, x, gamma, beta, sm, si, relu, dx, dg_c, db_c);

  float *gx = dput(b->gpu, x, nx), *ggam = dput(b->gpu, gamma, c), *gbet = dput(b->gpu, beta, c),
        *gy = in_place ? gx : dput(b->gpu, NULL, nx), *gsm = dput(b->gpu, NULL, sc), *gsi = dput(b->gpu, NULL, sc),
        *grm = dput(b->gpu, rm, c), *grv = dput(b->gpu, rv, c);
  b->gpu->batchnorm_forward_train(&g, gx, ggam, gbet, gy, gsm, gsi, grm, grv, 0.1f, 1e-5f, relu);
  snprintf(what, sizeof what, "bn train y %s", tag);
  dget(b->gpu, what, gy, nx, got);
  ck_gpu_close(what, got, y, nx, TOL_FP32);
  snprintf(what, sizeof what, "bn train save_mean %s", tag);
  dget(b->gpu, what, gsm, sc, got);
  ck_gpu_close(what, got, sm, sc, TOL_FP32);
  snprintf(what, sizeof what, "bn train save_invstd %s", tag);
  dget(b->gpu, what, gsi, sc, got);
  ck_gpu_close(what, got, si, sc, TOL_FP32);
  snprintf(what, sizeof what, "bn train running_mean %s", tag);
  dget(b->gpu, what, grm, c, got);
  ck_gpu_close(what, got, rm_c, c, TOL_FP32);
  snprintf(what, sizeof what, "bn train running_var %s", tag);
  dget(b->gpu, what, grv, c, got);
  ck_gpu_close(what, got, rv_c, c, TOL_FP32);

  /* Backward from the CPU's saved statistics, so only the backward op is under test. */
  float *gx2 = dput(b->gpu, x, nx), *gdy = dput(b->gpu, dy, nx), *gdx = in_place ? gdy : dput(b->gpu, NULL, nx),
        *gdg = dput(b->gpu, dg, c), *gdb = dput(b->gpu, db, c);
  b->gpu->memcpy_h2d(gsm, sm, sc * sizeof(float));
  b->gpu->memcpy_h2d(gsi, si, sc * sizeof(float));
  b->gpu->batchnorm_backward(&g, gdy, gx2, ggam, gbet, gsm, gsi, relu, gdx, gdg, gdb);
  snprintf(what, sizeof what, "bn backward dx %s", tag);
  dget(b->gpu, what, gdx, nx, got);
  ck_gpu_close(what, got, dx, nx, TOL_FP32);
  snprintf(what, sizeof what, "bn backward dgamma+= %s", tag);
  dget(b->gpu, what, gdg, c, got);
  ck_gpu_close(what, got, dg_c, c, TOL_FP32);
  snprintf(what, sizeof what, "bn backward dbeta+= %s", tag);
  dget(b->gpu, what, gdb, c, got);
  ck_gpu_close(what, got, db_c, c, TOL_FP32);

  /* Eval mode from the (updated) running statistics. */
  b->cpu->batchnorm_forward_eval(&g, x, gamma, beta, rm_c, rv_c, 1e-5f, relu, y);
  b->gpu->memcpy_h2d(grm, rm_c, c * sizeof(float));
  b->gpu->memcpy_h2d(grv, rv_c, c * sizeof(float));
  b->gpu->memcpy_h2d(gx2, x, nx * sizeof(float));
  float *gye = in_place ? gx2 : dput(b->gpu, NULL, nx);
  b->gpu->batchnorm_forward_eval(&g, gx2, ggam, gbet, grm, grv, 1e-5f, relu, gye);
  snprintf(what, sizeof what, "bn eval y %s", tag);
  dget(b->gpu, what, gye, nx, got);
  ck_gpu_close(what, got, y, nx, TOL_FP32);

  dfree(b->gpu, gx), dfree(b->gpu, ggam), dfree(b->gpu, gbet), dfree(b->gpu, gsm), dfree(b->gpu, gsi);
  dfree(b->gpu, grm), dfree(b->gpu, grv), dfree(b->gpu, gx2), dfree(b->gpu, gdy), dfree(b->gpu, gdg);
  dfree(b->gpu, gdb);
  if (!in_place) dfree(b->gpu, gy), dfree(b->gpu, gdx), dfree(b->gpu, gye);
  free(x), free(gamma), free(beta), free(rm), free(rv), free(dy), free(dg), free(db), free(y), free(sm), free(si);
  free(rm_c), free(rv_c), free(dx), free(dg_c), free(db_c), free(got);
}

START_TEST(test_batchnorm) {
  struct gpu_pair b;
  if (!gpu_begin("batchnorm train / eval / backward (plain, split, BN1d, in place)", &b)) return;
  check_bn(&b, 5, 11, 37, 1, false, false, 100);
  check_bn(&b, 15, 7, 13, 3, false, false, 110);
  check_bn(&b, 13, 1, 5, 1, false, false, 120);   /* BatchNorm1d */
  check_bn(&b, 6, 1000, 70, 2, false, false, 130); /* several row chunks per split */
  check_bn(&b, 14, 9, 11, 7, true, false, 140);    /* y aliases x, dx aliases dy */
}
END_TEST

/* The fused BN + ReLU: the forward's clamp and the backward's mask, which each backend
 * recomputes from x; the CPU's is checked against finite differences in test_backend_norm. */
START_TEST(test_batchnorm_relu) {
  struct gpu_pair b;
  if (!gpu_begin("batchnorm + relu train / eval / backward (plain, split, BN1d, in place)", &b)) return;
  check_bn(&b, 5, 11, 37, 1, false, true, 170);
  check_bn(&b, 15, 7, 13, 3, false, true, 180);
  check_bn(&b, 13, 1, 5, 1, false, true, 190);
  check_bn(&b, 6, 1000, 70, 2, false, true, 200);
  check_bn(&b, 14, 9, 11, 7, true, true, 210);
}
END_TEST

START_TEST(test_batchnorm_nan) {
  struct gpu_pair b;
  if (!gpu_begin("batchnorm_forward_train with a NaN input", &b)) return;
  const struct unmix_bn_geom g = {5, 7, 3, 1};
  const size_t nx = 5 * 7 * 3;
  float *x = hrand(nx, 150, -1, 1), *gamma = hrand(3, 151, 0.5f, 1.5f), *beta = hrand(3, 152, -1, 1);
  x[4] = NAN; /* channel 1 becomes NaN everywhere, the others stay finite */
  float *y = hzeros(nx), *sm = hzeros(3), *si = hzeros(3), *got = hzeros(nx);
  b.cpu->batchnorm_forward_train(&g, x, gamma, beta, y, sm, si, NULL, NULL, 0.1f, 1e-5f, false);
  float *gx = dput(b.gpu, x, nx), *gg = dput(b.gpu, gamma, 3), *gb = dput(b.gpu, beta, 3), *gy = dput(b.gpu, NULL, nx),
        *gsm = dput(b.gpu, NULL, 3), *gsi = dput(b.gpu, NULL, 3);
  b.gpu->batchnorm_forward_train(&g, gx, gg, gb, gy, gsm, gsi, NULL, NULL, 0.1f, 1e-5f, false);
  dget(b.gpu, "bn nan y", gy, nx, got);
  ck_gpu_close("bn train y (NaN input)", got, y, nx, TOL_FP32);
  dfree(b.gpu, gx), dfree(b.gpu, gg), dfree(b.gpu, gb), dfree(b.gpu, gy), dfree(b.gpu, gsm), dfree(b.gpu, gsi);
  free(x), free(gamma), free(beta), free(y), free(sm), free(si), free(got);
}
END_TEST

/* Eval mode ignores splits: 0 (a BN that never trained with splits) and a value that does not
 * divide the batch must both give the CPU's result (the kernel once divided by splits). */
START_TEST(test_batchnorm_eval_any_splits) {
  struct gpu_pair b;
  if (!gpu_begin("batchnorm_forward_eval with splits 0 and 3 (n = 5)", &b)) return;
  const int n = 5, hw = 7, c = 3;
  const size_t nx = (size_t)n * hw * c;
  float *x = hrand(nx, 160, -1, 1), *gamma = hrand(c, 161, 0.5f, 1.5f), *beta = hrand(c, 162, -1, 1),
        *rm = hrand(c, 163, -0.1f, 0.1f), *rv = hrand(c, 164, 0.5f, 1.5f), *want = hzeros(nx), *got = hzeros(nx);
  const struct unmix_bn_geom g1 = {n, hw, c, 1};
  b.cpu->batchnorm_forward_eval(&g1, x, gamma, beta, rm, rv, 1e-5f, false, want);
  float *gx = dput(b.gpu, x, nx), *gg = dput(b.gpu, gamma, c), *gb = dput(b.gpu, beta, c), *grm = dput(b.gpu, rm, c),
        *grv = dput(b.gpu, rv, c), *gy = dput(b.gpu, NULL, nx);
  for (int splits = 0; splits <= 3; splits += 3) {
    const struct unmix_bn_geom g = {n, hw, c, splits};
    b.gpu->batchnorm_forward_eval(&g, gx, gg, gb, grm, grv, 1e-5f, false, gy);
    dget(b.gpu, "bn eval any splits", gy, nx, got);
    ck_gpu_close(splits ? "bn eval y (splits 3)" : "bn eval y (splits 0)", got, want, nx, TOL_FP32);
  }
  dfree(b.gpu, gx), dfree(b.gpu, gg), dfree(b.gpu, gb), dfree(b.gpu, grm), dfree(b.gpu, grv), dfree(b.gpu, gy);
  free(x), free(gamma), free(beta), free(rm), free(rv), free(want), free(got);
}
END_TEST

/* ---- row-wise normalisation and losses ------------------------------------------------------ */
START_TEST(test_l2norm) {
  struct gpu_pair b;
  if (!gpu_begin("l2norm_forward / l2norm_backward (incl. a zero row)", &b)) return;
  const int n = 13, d = 37;
  const size_t nd = (size_t)n * d;
  float *x = hrand(nd, 20, -1, 1), *dy = hrand(nd, 21, -1, 1);
  for (int j = 0; j < d; j++) x[3 * d + j] = 0.0f;
  float *y = hzeros(nd), *nr = hzeros(n), *dx = hzeros(nd), *got = hzeros(nd);
  b.cpu->l2norm_forward(n, d, x, y, nr, 1e-12f);
  b.cpu->l2norm_backward(n, d, dy, x, nr, 1e-12f, dx);
  float *gx = dput(b.gpu, x, nd), *gy = dput(b.gpu, NULL, nd), *gn = dput(b.gpu, NULL, n), *gdy = dput(b.gpu, dy, nd),
        *gdx = dput(b.gpu, NULL, nd);
  b.gpu->l2norm_forward(n, d, gx, gy, gn, 1e-12f);
  dget(b.gpu, "l2norm y", gy, nd, got);
  ck_gpu_close("l2norm_forward y", got, y, nd, TOL_FP32);
  dget(b.gpu, "l2norm norms", gn, n, got);
  ck_gpu_close("l2norm_forward norms", got, nr, n, TOL_FP32);
  b.gpu->l2norm_backward(n, d, gdy, gx, gn, 1e-12f, gdx);
  dget(b.gpu, "l2norm dx", gdx, nd, got);
  /* the zero row's gradient is dy/eps (~1e12): compare the other rows on their own scale */
  for (int j = 0; j < d; j++) {
    ck_assert_msg(fabsf(got[3 * d + j] - dx[3 * d + j]) <= 1e-5f * fabsf(dx[3 * d + j]), "l2norm zero row dx");
    got[3 * d + j] = dx[3 * d + j] = 0.0f;
  }
  ck_gpu_close("l2norm_backward dx", got, dx, nd, TOL_FP32);
  dfree(b.gpu, gx), dfree(b.gpu, gy), dfree(b.gpu, gn), dfree(b.gpu, gdy), dfree(b.gpu, gdx);
  free(x), free(dy), free(y), free(nr), free(dx), free(got);
}
END_TEST

static void check_softmax(struct gpu_pair *b, int n, int d, float scale, bool nonfinite, uint32_t seed) {
  const size_t nd = (size_t)n * d;
  char what[96];
  float *x = hrand(nd, seed, -1, 1), *dy = hrand(nd, seed + 1, -1, 1);
  if (nonfinite) x[1] = NAN, x[d + 2] = INFINITY; /* rows 0 and 1 become NaN rows */
  float *y = hzeros(nd), *dx = hzeros(nd), *got = hzeros(nd);
  float *gx = dput(b->gpu, x, nd), *gy = dput(b->gpu, NULL, nd), *gdy = dput(b->gpu, dy, nd),
        *gdx = dput(b->gpu, NULL, nd);
  for (int lg = 0; lg < 2; lg++) {
    const char *name = lg ? "log_softmax" : "softmax";
    if (lg) b->cpu->log_softmax_forward(n, d, scale, x, y), b->gpu->log_softmax_forward(n, d, scale, gx, gy);
    else b->cpu->softmax_forward(n, d, scale, x, y), b->gpu->softmax_forward(n, d, scale, gx, gy);
    snprintf(what, sizeof what, "%s_forward n%d d%d%s", name, n, d, nonfinite ? " NaN/Inf" : "");
    dget(b->gpu, what, gy, nd, got);
    ck_gpu_close(what, got, y, nd, TOL_FP32);
    if (nonfinite) continue;
    if (!lg) { /* the tails too: every probability to TOL_FP32 of itself, not of the row's largest */
      snprintf(what, sizeof what, "softmax_forward n%d d%d per element", n, d);
      ck_gpu_close_rel(what, got, y, nd, TOL_FP32, 1e-30);
    }
    b->gpu->memcpy_h2d(gy, y, nd * sizeof(float)); /* backward from the CPU's y */
    if (lg) b->cpu->log_softmax_backward(n, d, scale, dy, y, dx), b->gpu->log_softmax_backward(n, d, scale, gdy, gy, gdx);
    else b->cpu->softmax_backward(n, d, scale, dy, y, dx), b->gpu->softmax_backward(n, d, scale, gdy, gy, gdx);
    snprintf(what, sizeof what, "%s_backward n%d d%d", name, n, d);
    dget(b->gpu, what, gdx, nd, got);
    ck_gpu_close(what, got, dx, nd, TOL_FP32);
  }
  dfree(b->gpu, gx), dfree(b->gpu, gy), dfree(b->gpu, gdy), dfree(b->gpu, gdx);
  free(x), free(dy), free(y), free(dx), free(got);
}

START_TEST(test_softmax) {
  struct gpu_pair b;
  if (!gpu_begin("softmax / log_softmax forward and backward", &b)) return;
  check_softmax(&b, 11, 7, 1.0f / 0.07f, false, 30);
  check_softmax(&b, 5, 4099, 1.0f, false, 32);
  if (!gpu_small()) check_softmax(&b, 3, 65537, 1.0f / 0.2f, false, 34);
  check_softmax(&b, 5, 13, 1.0f, true, 36);
}
END_TEST

static void check_ce(struct gpu_pair *b, int n, int d, float scale, bool ties, bool counts, uint32_t seed) {
  const size_t nd = (size_t)n * d;
  char what[96], tag[48];
  snprintf(tag, sizeof tag, "n%d d%d%s", n, d, ties ? " ties" : "");
  float *z = hrand(nd, seed, -3, 3), *p = hzeros(nd), *dz = hzeros(nd), *got = hzeros(nd);
  if (ties)
    for (size_t i = 0; i < nd; i++) z[i] = floorf(z[i]); /* integers -3..2: ties at the label */
  int32_t *lab = malloc(sizeof(int32_t) * (size_t)n);
  float *u = hrand((size_t)n, seed + 1, 0, 1);
  for (int i = 0; i < n; i++) lab[i] = (int32_t)(u[i] * d) % d;
  float loss = 0, c1 = 0, c5 = 0, g3[3];
  b->cpu->cross_entropy_forward(n, d, scale, z, lab, p, &loss, counts ? &c1 : NULL, counts ? &c5 : NULL);
  b->cpu->cross_entropy_backward(n, d, scale, 0.7f, p, lab, dz);
  float *gz = dput(b->gpu, z, nd), *gp = dput(b->gpu, NULL, nd), *gs = dput(b->gpu, NULL, 3),
        *gdz = dput(b->gpu, NULL, nd);
  int32_t *gl = dput_i32(b->gpu, lab, (size_t)n);
  b->gpu->cross_entropy_forward(n, d, scale, gz, gl, gp, gs, counts ? gs + 1 : NULL, counts ? gs + 2 : NULL);
  snprintf(what, sizeof what, "cross_entropy probs %s", tag);
  dget(b->gpu, what, gp, nd, got);
  ck_gpu_close(what, got, p, nd, TOL_FP32);
  dget(b->gpu, "ce scalars", gs, 3, g3);
  snprintf(what, sizeof what, "cross_entropy loss %s", tag);
  ck_gpu_close(what, g3, &loss, 1, TOL_FP32);
  if (counts) {
    snprintf(what, sizeof what, "cross_entropy top1/top5 counts %s", tag);
    const float want[2] = {c1, c5};
    ck_gpu_same(what, g3 + 1, want, 2);
  } else {
    ck_assert_msg(isnan(g3[1]) && isnan(g3[2]), "cross_entropy wrote counts it was not asked for");
  }
  b->gpu->memcpy_h2d(gp, p, nd * sizeof(float));
  b->gpu->cross_entropy_backward(n, d, scale, 0.7f, gp, gl, gdz);
  snprintf(what, sizeof what, "cross_entropy_backward %s", tag);
  dget(b->gpu, what, gdz, nd, got);
  ck_gpu_close(what, got, dz, nd, TOL_FP32);
  dfree(b->gpu, gz), dfree(b->gpu, gp), dfree(b->gpu, gs), dfree(b->gpu, gdz), dfree(b->gpu, gl);
  free(z), free(p), free(dz), free(got), free(lab), free(u);
}

START_TEST(test_cross_entropy) {
  struct gpu_pair b;
  if (!gpu_begin("cross_entropy forward / backward (counts, ties)", &b)) return;
  check_ce(&b, 13, 7, 1.0f, true, true, 40);
  check_ce(&b, 5, 1001, 10.0f, false, true, 42);
  if (!gpu_small()) check_ce(&b, 257, 65537, 1.0f / 0.2f, false, false, 44); /* MoCo-sized logits */
  check_ce(&b, 11, 3, 1.0f, true, true, 46);                /* fewer classes than top-5 */
}
END_TEST

START_TEST(test_soft_cross_entropy) {
  struct gpu_pair b;
  if (!gpu_begin("soft_cross_entropy forward / backward", &b)) return;
  static const int shapes[2][2] = {{11, 13}, {7, 3001}};
  for (int t = 0; t < 2; t++) {
    const int n = shapes[t][0], d = shapes[t][1];
    const size_t nd = (size_t)n * d;
    char what[96];
    float *z = hrand(nd, 50 + t, -1, 1), *q = hrand(nd, 60 + t, 0, 1), *lp = hzeros(nd), *dz = hzeros(nd),
          *got = hzeros(nd), loss = 0, gl = 0;
    b.cpu->soft_cross_entropy_forward(n, d, 1.0f / 0.1f, z, q, lp, &loss);
    b.cpu->soft_cross_entropy_backward(n, d, 1.0f / 0.1f, 1.3f, lp, q, dz);
    float *gz = dput(b.gpu, z, nd), *gq = dput(b.gpu, q, nd), *glp = dput(b.gpu, NULL, nd), *gs = dput(b.gpu, NULL, 1),
          *gdz = dput(b.gpu, NULL, nd);
    b.gpu->soft_cross_entropy_forward(n, d, 1.0f / 0.1f, gz, gq, glp, gs);
    snprintf(what, sizeof what, "soft_cross_entropy logprobs n%d d%d", n, d);
    dget(b.gpu, what, glp, nd, got);
    ck_gpu_close(what, got, lp, nd, TOL_FP32);
    dget(b.gpu, "soft ce loss", gs, 1, &gl);
    snprintf(what, sizeof what, "soft_cross_entropy loss n%d d%d", n, d);
    ck_gpu_close(what, &gl, &loss, 1, TOL_FP32);
    b.gpu->memcpy_h2d(glp, lp, nd * sizeof(float));
    b.gpu->soft_cross_entropy_backward(n, d, 1.0f / 0.1f, 1.3f, glp, gq, gdz);
    snprintf(what, sizeof what, "soft_cross_entropy_backward n%d d%d", n, d);
    dget(b.gpu, what, gdz, nd, got);
    ck_gpu_close(what, got, dz, nd, TOL_FP32);
    dfree(b.gpu, gz), dfree(b.gpu, gq), dfree(b.gpu, glp), dfree(b.gpu, gs), dfree(b.gpu, gdz);
    free(z), free(q), free(lp), free(dz), free(got);
  }
}
END_TEST

/* ---- reductions ------------------------------------------------------------------------------- */
START_TEST(test_sum_nonfinite) {
  struct gpu_pair b;
  if (!gpu_begin("sum / nonfinite_count (incl. Inf and NaN)", &b)) return;
  static const size_t sizes[3] = {5, 1000003, 7777777};
  for (int t = 0; t < (gpu_small() ? 2 : 3); t++) {
    const size_t n = sizes[t];
    char what[64];
    /* Mean 1, so the sum (~n) is its own scale and nothing cancels: both backends add in
     * double, so the float results agree to a unit or two in the last place (2.4e-7); one
     * dropped block of 1024 elements at n = 7.8M would be 1.3e-4. */
    float *x = hrand(n, 70 + t, 0.5f, 1.5f), want = 0, got = 0;
    float *gx = dput(b.gpu, x, n), *go = dput(b.gpu, NULL, 1);
    b.cpu->sum(n, x, &want);
    b.gpu->sum(n, gx, go);
    dget(b.gpu, "sum", go, 1, &got);
    snprintf(what, sizeof what, "sum n%zu (mean 1)", n);
    ck_gpu_close_rel(what, &got, &want, 1, 2.4e-7, 1e-30);
    b.cpu->nonfinite_count(n, x, &want);
    b.gpu->nonfinite_count(n, gx, go);
    dget(b.gpu, "nonfinite", go, 1, &got);
    snprintf(what, sizeof what, "nonfinite_count n%zu (finite)", n);
    ck_gpu_same(what, &got, &want, 1);
    if (n > 100) {
      x[17] = NAN, x[n - 1] = NAN, x[n / 2] = INFINITY, x[n / 3] = -INFINITY, x[5] = INFINITY;
      b.gpu->memcpy_h2d(gx, x, n * sizeof(float));
      b.cpu->nonfinite_count(n, x, &want);
      b.gpu->nonfinite_count(n, gx, go);
      dget(b.gpu, "nonfinite", go, 1, &got);
      snprintf(what, sizeof what, "nonfinite_count n%zu (5 bad)", n);
      ck_gpu_same(what, &got, &want, 1);
      ck_assert_float_eq(got, 5.0f);
      b.cpu->sum(n, x, &want);
      b.gpu->sum(n, gx, go);
      dget(b.gpu, "sum nan", go, 1, &got);
      snprintf(what, sizeof what, "sum n%zu with NaN", n);
      ck_gpu_close(what, &got, &want, 1, TOL_FP32);
    }
    dfree(b.gpu, gx), dfree(b.gpu, go);
    free(x);
  }
}
END_TEST

START_TEST(test_sumsq_segments) {
  struct gpu_pair b;
  if (!gpu_begin("sumsq_segments (empty and multi-block segments)", &b)) return;
  const int64_t off[8] = {0, 7, 7, 1000, 201001, 201002, 333333, 400001};
  const int nseg = 7;
  const size_t n = (size_t)off[nseg];
  float *x = hrand(n, 80, -1, 1), want[7], got[7];
  float *gx = dput(b.gpu, x, n), *go = dput(b.gpu, NULL, nseg);
  b.cpu->sumsq_segments(nseg, off, x, want);
  b.gpu->sumsq_segments(nseg, off, gx, go);
  dget(b.gpu, "sumsq", go, nseg, got);
  for (int s = 0; s < nseg; s++) {
    char what[64];
    snprintf(what, sizeof what, "sumsq_segments segment %d (%lld values)", s, (long long)(off[s + 1] - off[s]));
    ck_gpu_close(what, &got[s], &want[s], 1, TOL_FP32);
  }
  dfree(b.gpu, gx), dfree(b.gpu, go);
  free(x);
}
END_TEST

START_TEST(test_row_col) {
  struct gpu_pair b;
  if (!gpu_begin("row_sum / col_sum / scale_rows / scale_cols / transpose", &b)) return;
  static const int shapes[4][2] = {{13, 5003}, {1000, 3}, {5, 1031}, {70001, 13}};
  for (int t = 0; t < (gpu_small() ? 3 : 4); t++) {
    const int n = shapes[t][0], d = shapes[t][1];
    const size_t nd = (size_t)n * d;
    char what[64];
    float *x = hrand(nd, 90 + t, 0, 1), *rs = hzeros(n), *cs = hzeros(d), *got = hzeros(nd), *want = hzeros(nd);
    float *sr = hrand(n, 94 + t, -2, 2), *sc = hrand(d, 98 + t, -2, 2);
    float *gx = dput(b.gpu, x, nd), *grs = dput(b.gpu, NULL, n), *gcs = dput(b.gpu, NULL, d), *gsr = dput(b.gpu, sr, n),
          *gsc = dput(b.gpu, sc, d), *gt = dput(b.gpu, NULL, nd);
    b.cpu->row_sum(n, d, x, rs);
    b.gpu->row_sum(n, d, gx, grs);
    snprintf(what, sizeof what, "row_sum %dx%d", n, d);
    dget(b.gpu, what, grs, n, got);
    ck_gpu_close(what, got, rs, n, TOL_FP32);
    b.cpu->col_sum(n, d, x, cs);
    b.gpu->col_sum(n, d, gx, gcs);
    snprintf(what, sizeof what, "col_sum %dx%d", n, d);
    dget(b.gpu, what, gcs, d, got);
    ck_gpu_close(what, got, cs, d, TOL_FP32);
    b.cpu->transpose(n, d, x, want);
    b.gpu->transpose(n, d, gx, gt);
    snprintf(what, sizeof what, "transpose %dx%d", n, d);
    dget(b.gpu, what, gt, nd, got);
    ck_gpu_close(what, got, want, nd, 0.0);
    memcpy(want, x, nd * sizeof(float));
    b.cpu->scale_rows(n, d, sr, want);
    b.gpu->scale_rows(n, d, gsr, gx);
    snprintf(what, sizeof what, "scale_rows %dx%d", n, d);
    dget(b.gpu, what, gx, nd, got);
    ck_gpu_close(what, got, want, nd, TOL_FP32);
    b.cpu->scale_cols(n, d, sc, want);
    b.gpu->scale_cols(n, d, gsc, gx);
    snprintf(what, sizeof what, "scale_cols %dx%d", n, d);
    dget(b.gpu, what, gx, nd, got);
    ck_gpu_close(what, got, want, nd, TOL_FP32);
    dfree(b.gpu, gx), dfree(b.gpu, grs), dfree(b.gpu, gcs), dfree(b.gpu, gsr), dfree(b.gpu, gsc), dfree(b.gpu, gt);
    free(x), free(rs), free(cs), free(got), free(want), free(sr), free(sc);
  }
}
END_TEST

/* ---- optimiser ---------------------------------------------------------------------------------- */
START_TEST(test_sgd) {
  struct gpu_pair b;
  if (!gpu_begin("sgd_step (plain and LARC segments, 3 steps)", &b)) return;
  const int64_t n = 100003;
  const int64_t off[6] = {0, 13, 13, 5000, 77777, 100003};
  const float gsc[5] = {0.5f, 2.0f, 1.0f, 0.03f, 1.7f}, wds[5] = {5e-4f, 0.0f, 1e-4f, 0.0f, 5e-4f};
  for (int seg = 0; seg < 2; seg++) {
    float *p = hrand(n, 200, -1, 1), *buf = hzeros(n), *got = hzeros(n);
    float *gp = dput(b.gpu, p, n), *gbuf = dput(b.gpu, buf, n), *gg = dput(b.gpu, NULL, n);
    for (int step = 0; step < 3; step++) {
      float *g = hrand(n, 210 + step, -1, 1);
      b.gpu->memcpy_h2d(gg, g, n * sizeof(float));
      b.cpu->sgd_step(n, p, g, buf, 0.1f, 0.9f, 5e-4f, seg ? 5 : 0, seg ? off : NULL, seg ? gsc : NULL,
                      seg ? wds : NULL);
      b.gpu->sgd_step(n, gp, gg, gbuf, 0.1f, 0.9f, 5e-4f, seg ? 5 : 0, seg ? off : NULL, seg ? gsc : NULL,
                      seg ? wds : NULL);
      free(g);
    }
    dget(b.gpu, "sgd p", gp, n, got);
    ck_gpu_close(seg ? "sgd_step segmented params" : "sgd_step params", got, p, n, TOL_FP32);
    dget(b.gpu, "sgd buf", gbuf, n, got);
    ck_gpu_close(seg ? "sgd_step segmented momentum" : "sgd_step momentum", got, buf, n, TOL_FP32);
    dfree(b.gpu, gp), dfree(b.gpu, gbuf), dfree(b.gpu, gg);
    free(p), free(buf), free(got);
  }
}
END_TEST

/* Adam with coupled L2 (the W-MSE codebase's optimiser): the op against the CPU oracle over 3
 * steps with and without weight decay (wd 0 skips the L2 term), zero gradients included; then
 * unmix_adam_step on both backends (the per-step scalars it derives in double, the moments it
 * keeps in backend memory, the first in the caller's buffer). */
START_TEST(test_adam) {
  struct gpu_pair b;
  if (!gpu_begin("adam_step (op with and without L2, 3 steps; unmix_adam_step)", &b)) return;
  const int64_t n = 100003;
  char what[64];
  for (int k = 0; k < 2; k++) {
    const float wd = k ? 1e-2f : 0.0f;
    float *p = hrand(n, 300, -1, 1), *m = hzeros(n), *v = hzeros(n), *got = hzeros(n);
    float *gp = dput(b.gpu, p, n), *gm = dput(b.gpu, m, n), *gv = dput(b.gpu, v, n), *gg = dput(b.gpu, NULL, n);
    for (int step = 1; step <= 3; step++) {
      float *g = hrand(n, 310 + step, -1, 1);
      for (int64_t i = 0; i < n; i += 97) g[i] = 0.0f;
      b.gpu->memcpy_h2d(gg, g, n * sizeof(float));
      const float ss = (float)(3e-3 / (1.0 - pow(0.9, step))), bc2 = (float)sqrt(1.0 - pow(0.999, step));
      b.cpu->adam_step(n, p, g, m, v, wd, (float)(1.0 - 0.9), 0.999f, (float)(1.0 - 0.999), 1e-8f, ss, bc2);
      b.gpu->adam_step(n, gp, gg, gm, gv, wd, (float)(1.0 - 0.9), 0.999f, (float)(1.0 - 0.999), 1e-8f, ss, bc2);
      free(g);
    }
    const float *want[3] = {p, m, v};
    float *dev[3] = {gp, gm, gv};
    const char *names[3] = {"params", "first moment", "second moment"};
    for (int j = 0; j < 3; j++) {
      snprintf(what, sizeof what, "adam_step wd %g %s", (double)wd, names[j]);
      dget(b.gpu, what, dev[j], n, got);
      ck_gpu_close(what, got, want[j], n, TOL_FP32);
    }
    dfree(b.gpu, gp), dfree(b.gpu, gm), dfree(b.gpu, gv), dfree(b.gpu, gg);
    free(p), free(m), free(v), free(got);
  }

  struct unmix_adam_params ap = unmix_adam_params_default();
  ap.weight_decay = 1e-6;
  struct unmix_adam ac, ag;
  float *p = hrand(n, 320, -1, 1), *got = hzeros(n), *mext = hzeros(n);
  float *gp = dput(b.gpu, p, n), *gg = dput(b.gpu, NULL, n), *gm = dput(b.gpu, mext, n);
  ck_assert_int_eq(unmix_adam_init(&ac, b.cpu, n, &ap), UNMIX_OK);
  ck_assert_int_eq(unmix_adam_init_ext(&ag, b.gpu, n, &ap, gm), UNMIX_OK);
  for (int step = 0; step < 4; step++) {
    float *g = hrand(n, 330 + step, -1, 1);
    b.gpu->memcpy_h2d(gg, g, n * sizeof(float));
    unmix_adam_step(&ac, p, g, 1e-3 * (step + 1));
    unmix_adam_step(&ag, gp, gg, 1e-3 * (step + 1));
    free(g);
  }
  dget(b.gpu, "unmix_adam_step params", gp, n, got);
  ck_gpu_close("unmix_adam_step params", got, p, n, TOL_FP32);
  dget(b.gpu, "unmix_adam_step first moment", gm, n, got);
  ck_gpu_close("unmix_adam_step first moment", got, ac.m, n, TOL_FP32);
  b.gpu->memcpy_d2h(got, ag.v, n * sizeof(float));
  ck_gpu_close("unmix_adam_step second moment", got, ac.v, n, TOL_FP32);
  unmix_adam_free(&ac);
  unmix_adam_free(&ag);
  dfree(b.gpu, gp), dfree(b.gpu, gg), dfree(b.gpu, gm);
  free(p), free(got), free(mext);
}
END_TEST

/* ---- top-k --------------------------------------------------------------------------------------- */
static void check_topk(struct gpu_pair *b, int n, int d, int k, int levels, uint32_t seed) {
  const size_t nd = (size_t)n * d, nk = (size_t)n * k;
  char what[96];
  float *x = hrand(nd, seed, -1, 1), *v = hzeros(nk), *got = hzeros(nk);
  if (levels)
    for (size_t i = 0; i < nd; i++) x[i] = floorf((x[i] + 1.0f) * 0.5f * levels) - levels / 2;
  if (levels && d > 6) x[1] = -0.0f, x[2] = 0.0f, x[5] = -0.0f; /* -0 and +0 tie, ordered by index */
  int32_t *ix = calloc(nk, sizeof(int32_t)), *gix_h = calloc(nk, sizeof(int32_t));
  b->cpu->topk(n, d, k, x, v, ix);
  float *gx = dput(b->gpu, x, nd), *gv = dput(b->gpu, NULL, nk);
  int32_t *gi = dput_i32(b->gpu, NULL, nk);
  b->gpu->topk(n, d, k, gx, gv, gi);
  snprintf(what, sizeof what, "topk values n%d d%d k%d%s", n, d, k, levels ? " ties" : "");
  dget(b->gpu, what, gv, nk, got);
  ck_gpu_same(what, got, v, nk);
  snprintf(what, sizeof what, "topk indices n%d d%d k%d%s", n, d, k, levels ? " ties" : "");
  dget_i32(b->gpu, what, gi, nk, gix_h);
  ck_gpu_same(what, gix_h, ix, nk);
  dfree(b->gpu, gx), dfree(b->gpu, gv), dfree(b->gpu, gi);
  free(x), free(v), free(got), free(ix), free(gix_h);
}

START_TEST(test_topk) {
  struct gpu_pair b;
  if (!gpu_begin("topk (kNN sizes, ties, k = 1, k = d)", &b)) return;
  check_topk(&b, 7, 13, 5, 0, 300);
  check_topk(&b, gpu_small() ? 1 : 5, 50000, 200, 0, 301);
  check_topk(&b, gpu_small() ? 1 : 3, 50000, 200, 10, 302);
  check_topk(&b, 4, 17, 17, 0, 303);
  check_topk(&b, 4, 17, 17, 3, 304);
  check_topk(&b, 9, 9, 1, 0, 305);
  check_topk(&b, 2, 1000, 999, 5, 306);
}
END_TEST

/* ---- row_dot / axpy_rows ------------------------------------------------------------------------ */
/* Strided outputs and scales as the contrastive logits use them (column 0 of an (n, 1+K)
 * matrix): the entries between the strided ones must stay untouched / unread. */
START_TEST(test_row_dot_axpy_rows) {
  struct gpu_pair b;
  if (!gpu_begin("row_dot / axpy_rows (strided out and scale)", &b)) return;
  static const int shapes[3][3] = {{13, 7, 5}, {256, 128, 4097}, {3, 5003, 1}};
  for (int t = 0; t < 3; t++) {
    const int n = shapes[t][0], d = shapes[t][1], st = shapes[t][2];
    const size_t nd = (size_t)n * d, ns = (size_t)n * st;
    char what[64];
    float *a = hrand(nd, 400 + t, -1, 1), *bb = hrand(nd, 410 + t, -1, 1), *out = hrand(ns, 420 + t, -1, 1);
    float *y = hrand(nd, 430 + t, -1, 1), *sc = hrand(ns, 440 + t, -2, 2), *got = hzeros(nd > ns ? nd : ns);
    float *out_c = hcopy(out, ns), *y_c = hcopy(y, nd);
    for (size_t i = 0; i < ns; i++)
      if (i % (size_t)st) sc[i] = NAN; /* read only every st-th scale */
    float *ga = dput(b.gpu, a, nd), *gb = dput(b.gpu, bb, nd), *go = dput(b.gpu, out, ns), *gy = dput(b.gpu, y, nd),
          *gs = dput(b.gpu, sc, ns);
    b.cpu->row_dot(n, d, a, bb, out_c, st);
    b.gpu->row_dot(n, d, ga, gb, go, st);
    snprintf(what, sizeof what, "row_dot n%d d%d stride %d", n, d, st);
    dget(b.gpu, what, go, ns, got);
    ck_gpu_close_rel(what, got, out_c, ns, TOL_FP32, 1e-3); /* untouched entries compare exactly */
    b.cpu->axpy_rows(n, d, sc, st, a, y_c);
    b.gpu->axpy_rows(n, d, gs, st, ga, gy);
    snprintf(what, sizeof what, "axpy_rows+= n%d d%d stride %d", n, d, st);
    dget(b.gpu, what, gy, nd, got);
    ck_gpu_close(what, got, y_c, nd, TOL_FP32);
    dfree(b.gpu, ga), dfree(b.gpu, gb), dfree(b.gpu, go), dfree(b.gpu, gy), dfree(b.gpu, gs);
    free(a), free(bb), free(out), free(y), free(sc), free(got), free(out_c), free(y_c);
  }
}
END_TEST

/* ---- memory ops through the table --------------------------------------------------------------- */
START_TEST(test_memcpy_and_host_memory) {
  struct gpu_pair b;
  if (!gpu_begin("memcpy_d2d / alloc_host / free_host", &b)) return;
  const size_t n = 100003;
  float *hx = b.gpu->alloc_host(n * sizeof(float)), *hy = b.gpu->alloc_host(n * sizeof(float));
  ck_assert_msg(hx && hy, "alloc_host of %zu floats failed", n);
  unmix_test_fill(hx, n, 450, -1, 1);
  for (size_t i = 0; i < n; i++) hy[i] = NAN;
  float *gx = dput(b.gpu, NULL, n), *gy = dput(b.gpu, NULL, n);
  b.gpu->memcpy_h2d(gx, hx, n * sizeof(float)); /* from page-locked memory */
  b.gpu->memcpy_d2d(gy, gx, n * sizeof(float));
  b.gpu->memcpy_d2d(gy + 5, gx + 100, 7 * sizeof(float)); /* a piece inside, unaligned */
  b.gpu->memcpy_d2d(gy, gy, n * sizeof(float));           /* onto itself: nothing happens */
  b.gpu->memcpy_d2h(hy, gy, n * sizeof(float));           /* into page-locked memory */
  float *want = hcopy(hx, n);
  memcpy(want + 5, hx + 100, 7 * sizeof(float));
  ck_gpu_same("memcpy_d2d (whole, piece, self)", hy, want, n);
  float *back = hzeros(n);
  dget(b.gpu, "memcpy_d2d guards", gy, n, back); /* dget checks the guards around gy */
  dfree(b.gpu, gx), dfree(b.gpu, gy);
  b.gpu->free_host(hx);
  b.gpu->free_host(hy);
  b.gpu->free_host(NULL); /* as free(NULL) */
  free(want), free(back);
}
END_TEST

/* ---- contract checks -------------------------------------------------------------------------- */
START_TEST(test_supports_and_alloc) {
  struct gpu_pair b;
  if (!gpu_begin("supports_op for every op; alloc returns NULL when memory is short", &b)) return;
  for (int op = 0; op < UNMIX_OP_COUNT; op++)
    ck_assert_msg(b.gpu->supports_op((enum unmix_op)op, NULL), "cuda does not support %s", unmix_op_name(op));
  ck_assert(!b.gpu->supports_op(UNMIX_OP_COUNT, NULL));
  /* the explicit exceptions: a top-k beyond the rank pass's grid, k > d */
  const struct unmix_op_query big_k = {.n = 2, .d = (int64_t)1 << 30, .k = (int64_t)1 << 26};
  const struct unmix_op_query knn = {.n = 256, .d = 50000, .k = 200}, k_over_d = {.n = 2, .d = 10, .k = 11};
  ck_assert(!b.gpu->supports_op(UNMIX_OP_TOPK, &big_k));
  ck_assert(!b.gpu->supports_op(UNMIX_OP_TOPK, &k_over_d));
  ck_assert(b.gpu->supports_op(UNMIX_OP_TOPK, &knn));
  /* every precision is real on the GPU for an ordinary 3x3 convolution */
  struct unmix_conv_geom g;
  unmix_conv_geom_init(&g, 8, 16, 16, 64, 64, 3, 3, 1, 1);
  for (int prec = UNMIX_PREC_FP32; prec <= UNMIX_PREC_BF16; prec++) {
    const struct unmix_op_query q = {.prec = (enum unmix_precision)prec, .conv = &g};
    ck_assert_msg(b.gpu->supports_op(UNMIX_OP_CONV2D_FORWARD, &q), "no conv forward in precision %d", prec);
  }
  void *huge = b.gpu->alloc((size_t)1 << 52);
  ck_assert_msg(huge == NULL, "a 4 PiB allocation succeeded");
  float *ok = b.gpu->alloc(1024);
  ck_assert_ptr_nonnull(ok);
  ck_assert_msg(((uintptr_t)ok & 63u) == 0, "alloc is not 64-byte aligned");
  b.gpu->free(ok);
  printf("gpu-check %-44s ok\n", "supports_op / alloc");
}
END_TEST

START_TEST(test_reductions_repeat) {
  struct gpu_pair b;
  if (!gpu_begin("reductions repeat bit for bit", &b)) return;
  enum { N = 4099, D = 129, OUT = 1 + 3 * D };
  const size_t nd = (size_t)N * D;
  float *x = hrand(nd, 400, -1, 1), r1[OUT], r2[OUT];
  float *gx = dput(b.gpu, x, nd), *go = dput(b.gpu, NULL, OUT);
  const struct unmix_bn_geom g = {N, 1, D, 1};
  float *gy = dput(b.gpu, NULL, nd), *gg = dput(b.gpu, x, D), *gb = dput(b.gpu, x + D, D);
  for (int rep = 0; rep < 2; rep++) {
    b.gpu->sum(nd, gx, go);
    b.gpu->col_sum(N, D, gx, go + 1);
    b.gpu->batchnorm_forward_train(&g, gx, gg, gb, gy, go + 1 + D, go + 1 + 2 * D, NULL, NULL, 0.1f, 1e-5f, false);
    dget(b.gpu, "repeat", go, OUT, rep ? r2 : r1);
  }
  ck_gpu_same("sum / col_sum / bn stats repeat", r2, r1, OUT);
  dfree(b.gpu, gx), dfree(b.gpu, go), dfree(b.gpu, gy), dfree(b.gpu, gg), dfree(b.gpu, gb);
  free(x);
}
END_TEST

/* Test cases by kind, so that CK_RUN_CASE=<name> runs one kind (the sanitizer runs). */
static Suite *make_suite(void) {
  const struct {
    const char *name;
    const TTest *tests[6];
  } cases[] = {
      {"elementwise", {test_relu, test_add_blas1, test_copy, test_batch_axis}},
      {"pool", {test_maxpool, test_avgpool_pad}},
      {"bn", {test_batchnorm, test_batchnorm_relu, test_batchnorm_nan, test_batchnorm_eval_any_splits}},
      {"rows", {test_l2norm, test_softmax, test_cross_entropy, test_soft_cross_entropy}},
      {"reduce", {test_sum_nonfinite, test_sumsq_segments, test_row_col, test_reductions_repeat, test_row_dot_axpy_rows}},
      {"optim", {test_sgd, test_adam, NULL}},
      {"topk", {test_topk}},
      {"contract", {test_supports_and_alloc, test_memcpy_and_host_memory}},
  };
  Suite *s = suite_create("gpu_ops");
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    TCase *tc = tcase_create(cases[i].name);
    tcase_set_timeout(tc, 600);
    for (int j = 0; j < 6 && cases[i].tests[j]; j++) tcase_add_test(tc, cases[i].tests[j]);
    suite_add_tcase(s, tc);
  }
  return s;
}

UNMIX_TEST_MAIN(make_suite)
