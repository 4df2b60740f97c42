/* Golden parity with PyTorch (fixtures from tests/golden/gen/gen_models.py): the MoCo
 * CIFAR encoder (SplitBN, train and eval), torchvision ResNet-50 (train and eval) and the
 * SwAV-CIFAR Bottleneck net with its head and prototypes. Parameters come from a formula
 * both sides compute; we compare outputs (normalised error 1e-4), the loss, per-parameter
 * gradient checksums (rel 1e-3) and the BN running statistics after the forward.
 * Gradient fixtures use narrow nets (model.width 16 / 8, torchvision's structure and
 * names) whose float32 train-mode gradients are well conditioned; ResNet-50 is also
 * checked at full width on the forward pass. References are
 * computed in float64 by PyTorch; we run float32. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/nn/model.h"
#include "tests/support/golden.h"

static void check_model(const char *fixture, struct unmix_model *m, bool train) {
  char path[1024];
  snprintf(path, sizeof path, "%s/tests/golden/%s", UNMIX_SOURCE_DIR, fixture);
  struct unmix_fixture *fx = unmix_fixture_load(path);
  size_t ns;
  const int32_t *shape = unmix_fixture_i32(fx, "input_shape", &ns);
  ck_assert_int_eq(ns, 4);
  const int n = shape[0], c = shape[1], h = shape[2], w = shape[3];
  unmix_golden_fill_model(m);
  float *x = unmix_golden_images(n, c, h, w, (uint64_t)unmix_fixture_scalar(fx, "input_stream"));
  struct unmix_ctx *ctx = unmix_ctx_create(m->be, "golden");
  const float *y = unmix_model_forward(m, ctx, x, n, train ? UNMIX_FWD_TRAIN : UNMIX_FWD_EVAL, train);
  size_t nout;
  const float *want = unmix_fixture_f32(fx, "out", &nout);
  ck_assert_int_eq(nout, (size_t)n * unmix_model_out_dim(m));
  /* normalised error (max |a-b| / max |b|), the "rel <= 1e-4" */
  double nerr = unmix_nmse(y, want, nout);
  ck_assert_msg(nerr <= 1e-4, "%s: forward output differs: normalised error %.3g > 1e-4", fixture, nerr);
  float *wts = malloc(sizeof(float) * nout);
  unmix_golden_pattern(wts, (int64_t)nout, 6000, 1.0, 0.0);
  double loss = 0.0;
  for (size_t i = 0; i < nout; i++) loss += (double)y[i] * wts[i];
  double want_loss = unmix_fixture_scalar(fx, "loss");
  ck_assert_msg(fabs(loss - want_loss) <= 1e-4 * fabs(want_loss) + 1e-4, "%s: loss %.9g want %.9g", fixture, loss,
                want_loss);
  if (train && unmix_fixture_find(fx, "grad_sum")) {
    unmix_model_zero_grad(m);
    unmix_model_backward(m, ctx, wts);
    int bad = unmix_golden_check_grads(fixture, m, fx);
    ck_assert_msg(bad == 0, "%s: %d parameter gradients differ from PyTorch", fixture, bad);
  }
  /* running statistics after the forward (updated in train mode, untouched in eval) */
  size_t nb;
  const double *bs = unmix_fixture_f64(fx, "buf_sum", &nb);
  const double *bsmp = unmix_fixture_f64(fx, "buf_samples", NULL);
  ck_assert_int_eq(nb, (size_t)m->buffers.count);
  for (int j = 0; j < m->buffers.count; j++) {
    const struct unmix_param_entry *e = &m->buffers.entries[j];
    float *v = malloc(sizeof(float) * e->numel);
    unmix_param_store_get(&m->buffers, j, v);
    double s = 0;
    for (int64_t k = 0; k < e->numel; k++) s += v[k];
    ck_assert_msg(fabs(s - bs[j]) <= 1e-4 * fabs(bs[j]) + 1e-4, "%s: %s sum %.8g want %.8g", fixture, e->name, s, bs[j]);
    ck_assert_msg(fabs(v[0] - bsmp[2 * j]) <= 1e-4 * fabs(bsmp[2 * j]) + 1e-5, "%s: %s[0]", fixture, e->name);
    ck_assert_msg(fabs(v[e->numel - 1] - bsmp[2 * j + 1]) <= 1e-4 * fabs(bsmp[2 * j + 1]) + 1e-5, "%s: %s[-1]",
                  fixture, e->name);
    free(v);
  }
  free(wts);
  free(x);
  unmix_ctx_destroy(ctx);
  unmix_fixture_free(fx);
}

START_TEST(test_moco_cifar_encoder) {
  struct unmix_model *m = unmix_test_model(
      (struct unmix_model_spec){.arch = UNMIX_ARCH_RESNET18, .stem = UNMIX_STEM_CIFAR,
                                .head = UNMIX_HEAD_LINEAR, .dim = 128, .image_size = 32, .width = 16,
                                .bn_splits = 4},
      3);
  check_model("model_moco_cifar_train.bin", m, true);
  check_model("model_moco_cifar_eval.bin", m, false);
  unmix_model_destroy(m);
}
END_TEST

START_TEST(test_resnet50) {
  struct unmix_model *m = unmix_test_model(
      (struct unmix_model_spec){.arch = UNMIX_ARCH_RESNET50, .stem = UNMIX_STEM_IMAGENET,
                                .head = UNMIX_HEAD_NONE, .num_classes = 1000, .image_size = 64, .width = 8,
                                .bn_splits = 1},
      3);
  check_model("model_resnet50_train.bin", m, true);
  check_model("model_resnet50_eval.bin", m, false);
  unmix_model_destroy(m);
  /* full width, forward (eval mode) */
  m = unmix_test_model(
      (struct unmix_model_spec){.arch = UNMIX_ARCH_RESNET50, .stem = UNMIX_STEM_IMAGENET,
                                .head = UNMIX_HEAD_NONE, .num_classes = 1000, .image_size = 64, .width = 64,
                                .bn_splits = 1},
      3);
  check_model("model_resnet50_full_eval.bin", m, false);
  unmix_model_destroy(m);
}
END_TEST

START_TEST(test_swav_cifar) {
  struct unmix_model *m =
      unmix_test_model(
          (struct unmix_model_spec){.arch = UNMIX_ARCH_RESNET18_BOTTLENECK, .stem = UNMIX_STEM_SWAV_CIFAR,
                                    .head = UNMIX_HEAD_SWAV, .dim = 128, .hidden = 512, .nmb_prototypes = 100,
                                    .image_size = 32, .width = 8, .bn_splits = 1},
          3);
  check_model("model_swav_cifar_train.bin", m, true);
  unmix_model_destroy(m);
}
END_TEST

static Suite *golden_suite(void) {
  Suite *s = suite_create("models_golden");
  TCase *tc = tcase_create("pytorch");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_moco_cifar_encoder);
  tcase_add_test(tc, test_resnet50);
  tcase_add_test(tc, test_swav_cifar);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(golden_suite)
