/* Model architecture checks: parameter counts against torchvision / the reference code
 * (FIDELITY §2.3, §3.3), torchvision names/shapes, initialisation statistics,
 * multi-context forward/backward, the BN-replay equivalence (FIDELITY §8.2). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/nn/arena.h"
#include "core/nn/model.h"
#include "tests/support/testutil.h"

/* Same arithmetic up to summation order: normalised error (max|a-b| / max|b|) <= 1e-5. */
static bool unix_close_ok(const float *a, const float *b, int64_t n) {
  double e = unmix_nmse(a, b, (size_t)n);
  if (e > 1e-5) fprintf(stderr, "gradients: normalised error %.3g > 1e-5\n", e);
  return e <= 1e-5;
}

/* The activation arena: 64-byte aligned, grows by blocks, and after a reset holds one block
 * large enough for the step, so the same step again allocates nothing. */
START_TEST(test_arena_consolidates) {
  struct unmix_arena *a = unmix_arena_create(unmix_test_cpu(), "test");
  ck_assert_uint_eq(unmix_arena_capacity(a), 0);
  const size_t sizes[] = {1000, 3 << 20, 5, 9 << 20};
  for (int step = 0; step < 2; step++) {
    for (int i = 0; i < 4; i++) {
      char *p = unmix_arena_alloc(a, sizes[i]);
      ck_assert_ptr_nonnull(p);
      ck_assert_uint_eq((uintptr_t)p % 64, 0); /* backend.h: alloc is 64-byte aligned */
      memset(p, 0x5a, sizes[i]); /* the whole allocation is usable (ASan would catch overruns) */
    }
    const size_t cap = unmix_arena_capacity(a);
    ck_assert_uint_ge(cap, (3u << 20) + (9u << 20) + 2048);
    unmix_arena_reset(a);
    if (step == 0) ck_assert_uint_ge(unmix_arena_capacity(a), cap); /* merged into one block */
    else ck_assert_uint_eq(unmix_arena_capacity(a), cap);            /* one block: nothing new */
  }
  /* one contiguous block: an allocation larger than any of the first step's blocks fits */
  const size_t cap = unmix_arena_capacity(a);
  ck_assert_ptr_nonnull(unmix_arena_alloc(a, cap - 4096));
  ck_assert_uint_eq(unmix_arena_capacity(a), cap);
  unmix_arena_destroy(a);
}
END_TEST

START_TEST(test_param_counts) {
  struct unmix_model *m = unmix_test_model(
      (struct unmix_model_spec){.arch = UNMIX_ARCH_RESNET18, .stem = UNMIX_STEM_IMAGENET,
                                .head = UNMIX_HEAD_NONE, .num_classes = 1000, .image_size = 64, .width = 64,
                                .bn_splits = 1},
      1);
  ck_assert_int_eq(unmix_model_param_count(m), 11689512);
  unmix_model_destroy(m);
  m = unmix_test_model(
      (struct unmix_model_spec){.arch = UNMIX_ARCH_RESNET50, .stem = UNMIX_STEM_IMAGENET,
                                .head = UNMIX_HEAD_NONE, .num_classes = 1000, .image_size = 64, .width = 64,
                                .bn_splits = 1},
      1);
  ck_assert_int_eq(unmix_model_param_count(m), 25557032);
  unmix_model_destroy(m);
  m = unmix_test_model(
      (struct unmix_model_spec){.arch = UNMIX_ARCH_RESNET34, .stem = UNMIX_STEM_IMAGENET,
                                .head = UNMIX_HEAD_NONE, .num_classes = 1000, .image_size = 64, .width = 64,
                                .bn_splits = 1},
      1);
  ck_assert_int_eq(unmix_model_param_count(m), 21797672);
  unmix_model_destroy(m);
  /* MoCo CIFAR encoder: resnet18, 3x3 conv1, no maxpool, fc 512->128, SplitBN(8) */
  m = unmix_test_model(
      (struct unmix_model_spec){.arch = UNMIX_ARCH_RESNET18, .stem = UNMIX_STEM_CIFAR,
                                .head = UNMIX_HEAD_LINEAR, .dim = 128, .image_size = 32, .width = 64,
                                .bn_splits = 8},
      1);
  ck_assert_int_eq(unmix_model_param_count(m), 11234496);
  unmix_model_destroy(m);
  /* SwAV CIFAR backbone: Bottleneck [2,2,2,2], padded stem => 2048-d, 13,938,496 params */
  m = unmix_test_model(
      (struct unmix_model_spec){.arch = UNMIX_ARCH_RESNET18_BOTTLENECK, .stem = UNMIX_STEM_SWAV_CIFAR,
                                .head = UNMIX_HEAD_NONE, .image_size = 32, .width = 64, .bn_splits = 1},
      1);
  ck_assert_int_eq(unmix_model_param_count(m), 13938496);
  ck_assert_int_eq(unmix_model_node_dim(m, m->feat_node), 2048);
  unmix_model_destroy(m);
  /* MoCo v2 head: fc = Linear(2048,2048) -> ReLU -> Linear(2048,128) */
  m = unmix_test_model(
      (struct unmix_model_spec){.arch = UNMIX_ARCH_RESNET50, .stem = UNMIX_STEM_IMAGENET,
                                .head = UNMIX_HEAD_MLP, .dim = 128, .hidden = 2048, .image_size = 64,
                                .width = 64, .bn_splits = 1},
      1);
  ck_assert_int_eq(unmix_model_param_count(m), 25557032 - 2049000 + 2048 * 2048 + 2048 + 2048 * 128 + 128);
  unmix_model_destroy(m);
  /* SwAV's resnet50w2 / resnet50w4 (`widen`: every width x2 / x4, stem included) = width 128 /
   * 256: 93,907,072 and 375,378,176 backbone parameters (SwAV's README: 94M, 375M). A ResNet's
   * count is A w^2 + B w in its width w (conv weights ~ w^2, BatchNorm ~ w): fitted on widths 1
   * and 2, checked on 3, evaluated at 128 and 256 without allocating 1.5 GB */
  int64_t cnt[4];
  for (int w = 1; w <= 3; w++) {
    m = unmix_test_model((struct unmix_model_spec){.arch = UNMIX_ARCH_RESNET50, .stem = UNMIX_STEM_IMAGENET,
                                                   .head = UNMIX_HEAD_NONE, .image_size = 32, .width = w,
                                                   .bn_splits = 1},
                         1);
    cnt[w] = unmix_model_param_count(m);
    unmix_model_destroy(m);
  }
  const int64_t A = (cnt[2] - 2 * cnt[1]) / 2, B = cnt[1] - A;
  ck_assert_int_eq(A * 9 + B * 3, cnt[3]);
  ck_assert_int_eq(A * 64 * 64 + B * 64, 23508032); /* torchvision's 25,557,032 without its fc */
  ck_assert_int_eq(A * 128 * 128 + B * 128, 93907072);
  ck_assert_int_eq(A * 256 * 256 + B * 256, 375378176);
}
END_TEST

static void grads_host(const struct unmix_model *m, float *dst) {
  m->be->memcpy_d2h(dst, m->params.grad, sizeof(float) * (size_t)m->params.total);
}

/* Views for multi-resolution multi-crop: a backbone view at another size computes what a model
 * built for that size computes (same parameters), and backbone view + head view (with the
 * head's input gradient handed to the backbone) equal the whole model, forward and gradients;
 * BatchNorm batches are counted on the owner. */
START_TEST(test_backbone_and_head_views) {
  const struct unmix_model_spec spec = {.arch = UNMIX_ARCH_RESNET50, .stem = UNMIX_STEM_IMAGENET,
                                        .head = UNMIX_HEAD_SWAV, .dim = 8, .hidden = 16, .nmb_prototypes = 5,
                                        .image_size = 48, .width = 4, .bn_splits = 1};
  struct unmix_model *m = unmix_test_model(spec, 1);
  struct unmix_model_spec s16 = spec;
  s16.image_size = 32;
  struct unmix_model *m16 = unmix_test_model(s16, 1); /* same seed: same parameters */
  ck_assert_int_eq(m16->params.total, m->params.total);
  struct unmix_model *bb16 = NULL, *bb32 = NULL, *head = NULL;
  ck_assert(unmix_model_backbone_view(m, 32, &bb16) == UNMIX_OK);
  ck_assert(unmix_model_backbone_view(m, 48, &bb32) == UNMIX_OK);
  ck_assert(unmix_model_head_view(m, &head) == UNMIX_OK);
  const int n = 6, F = unmix_model_node_dim(m, m->feat_node), P = unmix_model_out_dim(m);
  ck_assert_int_eq(unmix_model_out_dim(bb16), F);
  ck_assert_int_eq(unmix_model_out_dim(head), P);
  float *x16 = malloc(sizeof(float) * n * 32 * 32 * 3), *x32 = malloc(sizeof(float) * n * 48 * 48 * 3);
  unmix_test_fill(x16, (size_t)n * 32 * 32 * 3, 1, -1, 1);
  unmix_test_fill(x32, (size_t)n * 48 * 48 * 3, 2, -1, 1);
  struct unmix_ctx *c1 = unmix_ctx_create(m->be, "a"), *c2 = unmix_ctx_create(m->be, "b");
  float *fa = malloc(sizeof(float) * n * F), *fb = malloc(sizeof(float) * n * F);
  m->be->memcpy_d2h(fa, unmix_model_forward(bb16, c1, x16, n, UNMIX_FWD_TRAIN, true), sizeof(float) * n * F);
  unmix_model_forward(m16, c2, x16, n, UNMIX_FWD_TRAIN, true);
  m->be->memcpy_d2h(fb, unmix_model_node_output(m16, c2, m16->feat_node), sizeof(float) * n * F);
  ck_assert_msg(!memcmp(fa, fb, sizeof(float) * n * F), "backbone view at 32 px differs from a 32-px model");
  /* whole model vs backbone view + head view at 48 px (the model's own size) */
  const int64_t G = m->params.total;
  float *dout = malloc(sizeof(float) * n * P), *ga = malloc(sizeof(float) * G), *gb = malloc(sizeof(float) * G);
  float *sa = malloc(sizeof(float) * n * P), *sb = malloc(sizeof(float) * n * P);
  unmix_test_fill(dout, (size_t)n * P, 3, -1, 1);
  const int64_t tracked = m->bn_batches_tracked;
  unmix_model_zero_grad(m);
  m->be->memcpy_d2h(sa, unmix_model_forward(m, c1, x32, n, UNMIX_FWD_TRAIN, true), sizeof(float) * n * P);
  unmix_model_backward(m, c1, dout);
  grads_host(m, ga);
  unmix_model_zero_grad(m);
  struct unmix_ctx *c3 = unmix_ctx_create(m->be, "head");
  const float *f = unmix_model_forward(bb32, c2, x32, n, UNMIX_FWD_TRAIN, true);
  m->be->memcpy_d2h(sb, unmix_model_forward(head, c3, f, n, UNMIX_FWD_TRAIN, true), sizeof(float) * n * P);
  float *df = unmix_ctx_alloc(c3, (int64_t)n * F);
  unmix_model_backward_input(head, c3, dout, df);
  unmix_model_backward(bb32, c2, df);
  grads_host(m, gb);
  ck_assert_msg(!memcmp(sa, sb, sizeof(float) * n * P), "backbone view + head view scores differ from the model's");
  ck_assert_msg(unix_close_ok(gb, ga, G), "view gradients differ from the whole model's");
  ck_assert_int_eq(m->bn_batches_tracked, tracked + 3); /* the model, the backbone view, the head view */
  unmix_ctx_destroy(c1);
  unmix_ctx_destroy(c2);
  unmix_ctx_destroy(c3);
  free(x16); free(x32); free(fa); free(fb); free(dout); free(ga); free(gb); free(sa); free(sb);
  unmix_model_destroy(bb16);
  unmix_model_destroy(bb32);
  unmix_model_destroy(head);
  unmix_model_destroy(m16);
  unmix_model_destroy(m);
}
END_TEST

START_TEST(test_torchvision_names_and_shapes) {
  struct unmix_model *m = unmix_test_model(
      (struct unmix_model_spec){.arch = UNMIX_ARCH_RESNET50, .stem = UNMIX_STEM_IMAGENET,
                                .head = UNMIX_HEAD_NONE, .num_classes = 1000, .image_size = 64, .width = 64,
                                .bn_splits = 1},
      1);
  char path[1024];
  unmix_test_src_path("tests/golden/resnet50_keys.txt", path, sizeof path);
  FILE *f = fopen(path, "r");
  ck_assert_msg(f != NULL, "missing %s (tests/golden/gen/gen_models.py writes it)", path);
  char line[256];
  int np = 0, nb = 0;
  while (fgets(line, sizeof line, f)) {
    char name[160];
    int shape[4] = {0}, nd = 0;
    char *tok = strtok(line, " \n");
    if (!tok) continue;
    snprintf(name, sizeof name, "%s", tok);
    while ((tok = strtok(NULL, " \n")) && nd < 4) shape[nd++] = (int)strtol(tok, NULL, 10);
    if (strstr(name, "num_batches_tracked")) continue;
    bool is_buf = strstr(name, "running_") != NULL;
    const struct unmix_param_store *s = is_buf ? &m->buffers : &m->params;
    int idx = unmix_param_store_find(s, name);
    ck_assert_msg(idx >= 0, "torchvision tensor %s missing from our model", name);
    /* same order as torchvision's state_dict within parameters and within buffers */
    ck_assert_msg(idx == (is_buf ? nb : np), "%s at position %d, torchvision has it at %d", name, idx,
                  is_buf ? nb : np);
    if (is_buf) nb++;
    else np++;
    ck_assert_int_eq(s->entries[idx].ndim, nd);
    for (int d = 0; d < nd; d++) ck_assert_int_eq(s->entries[idx].shape[d], shape[d]);
  }
  fclose(f);
  ck_assert_int_eq(np, m->params.count);
  ck_assert_int_eq(nb, m->buffers.count);
  unmix_model_destroy(m);
}
END_TEST

START_TEST(test_init_statistics) {
  struct unmix_model *m = unmix_test_model(
      (struct unmix_model_spec){.arch = UNMIX_ARCH_RESNET18, .stem = UNMIX_STEM_CIFAR,
                                .head = UNMIX_HEAD_LINEAR, .dim = 128, .image_size = 32, .width = 64,
                                .bn_splits = 1},
      1);
  /* conv1 (cifar stem): U(+-1/sqrt(27)); layer1.0.conv1: N(0, 2/(64*9)); fc bias U(+-1/sqrt(512)) */
  struct { const char *name; double mean, std, maxabs; } want[] = {
      {"conv1.weight", 0.0, 1.0 / sqrt(27.0) / sqrt(3.0), 1.0 / sqrt(27.0)},
      {"layer1.0.conv1.weight", 0.0, sqrt(2.0 / 576.0), 1e9},
      {"layer4.1.conv2.weight", 0.0, sqrt(2.0 / (512 * 9.0)), 1e9},
      {"fc.weight", 0.0, 1.0 / sqrt(512.0) / sqrt(3.0), 1.0 / sqrt(512.0)},
      {"fc.bias", 0.0, 1.0 / sqrt(512.0) / sqrt(3.0), 1.0 / sqrt(512.0)},
  };
  for (size_t t = 0; t < sizeof want / sizeof want[0]; t++) {
    int idx = unmix_param_store_find(&m->params, want[t].name);
    ck_assert_int_ge(idx, 0);
    int64_t n = m->params.entries[idx].numel;
    float *h = malloc(sizeof(float) * n);
    unmix_param_store_get(&m->params, idx, h);
    double s = 0, ss = 0, mx = 0;
    for (int64_t i = 0; i < n; i++) {
      s += h[i];
      ss += (double)h[i] * h[i];
      if (fabs(h[i]) > mx) mx = fabs(h[i]);
    }
    double mean = s / n, sd = sqrt(ss / n - mean * mean);
    ck_assert_msg(fabs(mean) < 4 * want[t].std / sqrt((double)n) + 1e-4, "%s mean %g", want[t].name, mean);
    double tol = n > 1000 ? 0.05 : 0.25;
    ck_assert_msg(fabs(sd / want[t].std - 1.0) < tol, "%s std %g want %g", want[t].name, sd, want[t].std);
    ck_assert_msg(mx <= want[t].maxabs, "%s max |w| %g > %g", want[t].name, mx, want[t].maxabs);
    free(h);
  }
  int g = unmix_param_store_find(&m->params, "layer2.0.bn1.weight");
  int b = unmix_param_store_find(&m->params, "layer2.0.bn1.bias");
  int rv = unmix_param_store_find(&m->buffers, "layer2.0.bn1.running_var");
  float hg[128], hb[128], hv[128];
  unmix_param_store_get(&m->params, g, hg);
  unmix_param_store_get(&m->params, b, hb);
  unmix_param_store_get(&m->buffers, rv, hv);
  for (int i = 0; i < 128; i++) {
    ck_assert(hg[i] == 1.0f && hb[i] == 0.0f && hv[i] == 1.0f);
  }
  unmix_model_destroy(m);
}
END_TEST


START_TEST(test_two_contexts_accumulate) {
  /* Two forward passes in two contexts, then both backward passes: the gradient is the
   * sum of the gradients of the separate passes (each BN batch normalised on its own). */
  struct unmix_model *m = unmix_test_model(
      (struct unmix_model_spec){.arch = UNMIX_ARCH_RESNET18, .stem = UNMIX_STEM_CIFAR,
                                .head = UNMIX_HEAD_LINEAR, .dim = 16, .image_size = 16, .width = 8,
                                .bn_splits = 2},
      1);
  const int n = 4, d = unmix_model_out_dim(m);
  const int64_t nx = (int64_t)n * 16 * 16 * 3, P = m->params.total;
  float *xa = malloc(sizeof(float) * nx), *xb = malloc(sizeof(float) * nx), *dout = malloc(sizeof(float) * n * d);
  unmix_test_fill(xa, nx, 1, -1, 1);
  unmix_test_fill(xb, nx, 2, -1, 1);
  unmix_test_fill(dout, n * d, 3, -1, 1);
  float *ga = malloc(sizeof(float) * P), *gb = malloc(sizeof(float) * P), *gab = malloc(sizeof(float) * P);
  struct unmix_ctx *c1 = unmix_ctx_create(m->be, "a"), *c2 = unmix_ctx_create(m->be, "b");
  unmix_model_zero_grad(m);
  unmix_model_forward(m, c1, xa, n, UNMIX_FWD_TRAIN, true);
  unmix_model_backward(m, c1, dout);
  grads_host(m, ga);
  unmix_model_zero_grad(m);
  unmix_model_forward(m, c1, xb, n, UNMIX_FWD_TRAIN, true);
  unmix_model_backward(m, c1, dout);
  grads_host(m, gb);
  unmix_model_zero_grad(m);
  unmix_model_forward(m, c1, xa, n, UNMIX_FWD_TRAIN, true);
  unmix_model_forward(m, c2, xb, n, UNMIX_FWD_TRAIN, true);
  unmix_model_backward(m, c2, dout);
  unmix_model_backward(m, c1, dout);
  grads_host(m, gab);
  for (int64_t i = 0; i < P; i++) ga[i] += gb[i];
  ck_assert_msg(unix_close_ok(gab, ga, P), "accumulated gradients differ from the sum of separate passes");
  unmix_ctx_destroy(c1);
  unmix_ctx_destroy(c2);
  free(xa); free(xb); free(dout); free(ga); free(gb); free(gab);
  unmix_model_destroy(m);
}
END_TEST

START_TEST(test_bn_replay_equals_two_forwards) {
  /* FIDELITY §8.2: symmetric MoCo forwards the mixed batch twice in train mode. Forwarding it
   * once, replaying the BN running-stat update, and back-propagating the sum of the two
   * upstream gradients must give the same running stats (bit for bit) and gradients. */
  struct unmix_model *a = unmix_test_model(
      (struct unmix_model_spec){.arch = UNMIX_ARCH_RESNET18, .stem = UNMIX_STEM_CIFAR,
                                .head = UNMIX_HEAD_LINEAR, .dim = 16, .image_size = 16, .width = 8,
                                .bn_splits = 2},
      1);
  struct unmix_model *b = unmix_test_model(
      (struct unmix_model_spec){.arch = UNMIX_ARCH_RESNET18, .stem = UNMIX_STEM_CIFAR,
                                .head = UNMIX_HEAD_LINEAR, .dim = 16, .image_size = 16, .width = 8,
                                .bn_splits = 2},
      1);
  const int n = 4, d = unmix_model_out_dim(a);
  const int64_t nx = (int64_t)n * 16 * 16 * 3, P = a->params.total, B = a->buffers.total;
  float *x = malloc(sizeof(float) * nx), *d1 = malloc(sizeof(float) * n * d), *d2 = malloc(sizeof(float) * n * d);
  float *dsum = malloc(sizeof(float) * n * d);
  unmix_test_fill(x, nx, 4, -1, 1);
  unmix_test_fill(d1, n * d, 5, -1, 1);
  unmix_test_fill(d2, n * d, 6, -1, 1);
  for (int i = 0; i < n * d; i++) dsum[i] = d1[i] + d2[i];
  struct unmix_ctx *c1 = unmix_ctx_create(a->be, "1"), *c2 = unmix_ctx_create(a->be, "2");
  unmix_model_zero_grad(a);
  unmix_model_forward(a, c1, x, n, UNMIX_FWD_TRAIN, true);
  unmix_model_forward(a, c2, x, n, UNMIX_FWD_TRAIN, true);
  unmix_model_backward(a, c1, d1);
  unmix_model_backward(a, c2, d2);
  unmix_model_zero_grad(b);
  unmix_model_forward(b, c1, x, n, UNMIX_FWD_TRAIN, true);
  unmix_model_replay_bn_updates(b, c1);
  unmix_model_backward(b, c1, dsum);
  ck_assert_int_eq(a->bn_batches_tracked, b->bn_batches_tracked);
  ck_assert_msg(memcmp(a->buffers.data, b->buffers.data, sizeof(float) * (size_t)B) == 0,
                "running stats after replay differ from two forwards");
  float *ga = malloc(sizeof(float) * P), *gb = malloc(sizeof(float) * P);
  grads_host(a, ga);
  grads_host(b, gb);
  ck_assert_msg(unix_close_ok(gb, ga, P), "one forward with summed gradients differs from two forwards");
  /* and it is not trivially equal: without the replay the running stats differ */
  unmix_model_forward(b, c1, x, n, UNMIX_FWD_TRAIN, true);
  unmix_model_forward(a, c1, x, n, UNMIX_FWD_TRAIN, true);
  unmix_model_forward(a, c2, x, n, UNMIX_FWD_TRAIN, true);
  ck_assert(memcmp(a->buffers.data, b->buffers.data, sizeof(float) * (size_t)B) != 0);
  unmix_ctx_destroy(c1);
  unmix_ctx_destroy(c2);
  free(x); free(d1); free(d2); free(dsum); free(ga); free(gb);
  unmix_model_destroy(a);
  unmix_model_destroy(b);
}
END_TEST

START_TEST(test_nograd_forward_matches) {
  /* The no-grad forward (key encoder) recycles buffers; its output must equal the
   * grad-mode forward's, also when the context is reused across steps. */
  struct unmix_model *m = unmix_test_model(
      (struct unmix_model_spec){.arch = UNMIX_ARCH_RESNET50, .stem = UNMIX_STEM_IMAGENET,
                                .head = UNMIX_HEAD_MLP, .dim = 16, .hidden = 32, .image_size = 32, .width = 8,
                                .bn_splits = 1},
      1);
  const int n = 3, d = unmix_model_out_dim(m);
  const int64_t nx = (int64_t)n * 32 * 32 * 3;
  float *x = malloc(sizeof(float) * nx), *ya = malloc(sizeof(float) * n * d);
  unmix_test_fill(x, nx, 7, -1, 1);
  struct unmix_ctx *c = unmix_ctx_create(m->be, "k");
  memcpy(ya, unmix_model_forward(m, c, x, n, UNMIX_FWD_EVAL, true), sizeof(float) * n * d);
  size_t grad_bytes = unmix_ctx_bytes(c);
  unmix_ctx_reset(c);
  for (int rep = 0; rep < 2; rep++) {
    const float *yb = unmix_model_forward(m, c, x, n, UNMIX_FWD_EVAL, false);
    ck_assert(memcmp(ya, yb, sizeof(float) * n * d) == 0);
  }
  ck_assert_msg(unmix_ctx_bytes(c) <= grad_bytes, "no-grad forward should not need more memory");
  unmix_ctx_destroy(c);
  free(x); free(ya);
  unmix_model_destroy(m);
}
END_TEST

static Suite *models_suite(void) {
  Suite *s = suite_create("models");
  TCase *tc = tcase_create("arch");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_arena_consolidates);
  tcase_add_test(tc, test_param_counts);
  tcase_add_test(tc, test_torchvision_names_and_shapes);
  tcase_add_test(tc, test_init_statistics);
  tcase_add_test(tc, test_two_contexts_accumulate);
  tcase_add_test(tc, test_bn_replay_equals_two_forwards);
  tcase_add_test(tc, test_nograd_forward_matches);
  tcase_add_test(tc, test_backbone_and_head_views);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(models_suite)
