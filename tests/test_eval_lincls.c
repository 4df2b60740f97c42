/* Linear evaluation (eval/lincls.c): the three protocols' lr schedules against their closed
 * forms and the manifests' linear blocks against the reference values; one SGD step of the
 * fc against the graph's own backward (unmix_model_backward); learning on synthetic images
 * well above chance with the backbone untouched; bit-identical reruns and resume; errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/data/loader.h"
#include "core/data/synth.h"
#include "core/io/checkpoint.h"
#include "core/io/csv.h"
#include "core/io/manifest.h"
#include "eval/lincls.h"
#include "tests/support/testutil.h"

/* ---- schedules and protocol tables ------------------------------------------------------ */

START_TEST(test_lr_schedules_closed_forms) {
  struct unmix_lincls_params p;
  /* ImageNet (FIDELITY §5.2) and MoCo-CIFAR: 30, x0.1 at 60 and 80 (0-based epochs) */
  for (int proto = 0; proto < 3; proto++) {
    unmix_lincls_reference((enum unmix_lincls_protocol)proto, &p);
    ck_assert_int_eq(p.epochs, 100);
    ck_assert(p.momentum == 0.9f);
    for (int e = 0; e < 100; e++) {
      double want;
      if (proto == UNMIX_LINCLS_SWAV_CIFAR) want = 0.3f * 0.5 * (1.0 + cos(M_PI * e / 100.0));
      else want = e < 60 ? 30.0 : e < 80 ? 30.0 * 0.1f : 30.0 * 0.1f * 0.1f;
      double got = unmix_lincls_lr(&p, e);
      ck_assert_msg(fabs(got - want) <= 1e-12 * want + 1e-15, "protocol %d epoch %d: lr %.12g, want %.12g", proto, e,
                    got, want);
    }
  }
  unmix_lincls_reference(UNMIX_LINCLS_SWAV_CIFAR, &p);
  ck_assert(p.lr == 0.3f && p.weight_decay == 1e-6f && p.batch_size == 32 && p.cosine);
  ck_assert(fabs(unmix_lincls_lr(&p, 0) - 0.3f) < 1e-9);
  ck_assert(fabs(unmix_lincls_lr(&p, 50) - 0.15f) < 1e-7);
  /* a shortened run stretches the cosine over its epochs */
  p.epochs = 10;
  for (int e = 0; e < 10; e++)
    ck_assert(fabs(unmix_lincls_lr(&p, e) - 0.3f * 0.5 * (1 + cos(M_PI * e / 10.0))) < 1e-12);
  unmix_lincls_reference(UNMIX_LINCLS_IMAGENET, &p);
  ck_assert(p.lr == 30.0f && p.weight_decay == 0.0f && p.batch_size == 256 && !p.cosine && p.n_milestones == 2 &&
            p.milestones[0] == 60 && p.milestones[1] == 80);
  ck_assert_str_eq(unmix_lincls_recipe_name(UNMIX_LINCLS_IMAGENET), "lincls-imagenet");
  ck_assert_str_eq(unmix_lincls_recipe_name(UNMIX_LINCLS_SWAV_CIFAR), "lincls-swav-cifar");
  ck_assert_str_eq(unmix_lincls_recipe_name(UNMIX_LINCLS_MOCO_CIFAR), "lincls-moco-cifar");
  /* SwAV's eval_linear.py on ImageNet: lr 0.3, wd 1e-6, 32 x 8 GPUs, cosine; std 0.228 */
  unmix_lincls_reference(UNMIX_LINCLS_SWAV_IMAGENET, &p);
  ck_assert(p.lr == 0.3f && p.weight_decay == 1e-6f && p.batch_size == 256 && p.cosine && p.epochs == 100 &&
            p.momentum == 0.9f);
  ck_assert_str_eq(unmix_lincls_recipe_name(UNMIX_LINCLS_SWAV_IMAGENET), "lincls-swav-imagenet");
  struct unmix_recipe r;
  ck_assert(unmix_recipe_get("lincls-swav-imagenet", &r) == UNMIX_OK);
  ck_assert(r.std[0] == 0.228f && r.views[0].size == 224 && r.eval.geom == UNMIX_GEOM_RESIZE_CROP);
  ck_assert(unmix_recipe_get("lincls-imagenet", &r) == UNMIX_OK && r.std[0] == 0.229f);
}
END_TEST

/* The manifests' linear blocks reproduce the protocols' reference values. */
START_TEST(test_manifest_blocks_match_reference) {
  static const struct {
    const char *file;
    enum unmix_lincls_protocol proto;
  } cases[] = {{"configs/base/moco_imagenet.yaml", UNMIX_LINCLS_IMAGENET},
               {"configs/base/swav_cifar.yaml", UNMIX_LINCLS_SWAV_CIFAR},
               {"configs/base/moco_cifar.yaml", UNMIX_LINCLS_MOCO_CIFAR},
               {"configs/swav_cifar100/swav_unmix.yaml", UNMIX_LINCLS_SWAV_CIFAR},
               {"configs/swav_imagenet/unmix_swav_200ep.yaml", UNMIX_LINCLS_SWAV_IMAGENET}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char path[1024];
    unmix_test_src_path(cases[i].file, path, sizeof path);
    struct unmix_config cfg;
    ck_assert_msg(unmix_manifest_load(path, NULL, 0, &cfg) == UNMIX_OK, "%s: %s", path, unmix_error_message());
    struct unmix_lincls_params got, want;
    unmix_lincls_from_config(&cfg, &got);
    unmix_lincls_reference(cases[i].proto, &want);
    ck_assert_int_eq(got.protocol, cases[i].proto);
    ck_assert_msg(got.epochs == want.epochs && got.lr == want.lr && got.momentum == want.momentum &&
                      got.weight_decay == want.weight_decay && got.batch_size == want.batch_size &&
                      got.cosine == want.cosine,
                  "%s: linear block differs from the reference", cases[i].file);
    for (int e = 0; e < want.epochs; e++) ck_assert(unmix_lincls_lr(&got, e) == unmix_lincls_lr(&want, e));
    ck_assert_uint_eq(got.seed, cfg.seed);
    unmix_config_free(&cfg);
  }
}
END_TEST

/* ---- a tiny classifier ------------------------------------------------------------------ */

static struct unmix_model *classifier(int width, int size, int classes, uint64_t seed) {
  return unmix_test_model((struct unmix_model_spec){.arch = UNMIX_ARCH_RESNET18, .stem = UNMIX_STEM_CIFAR,
                                                    .width = width, .bn_splits = 1, .head = UNMIX_HEAD_LINEAR,
                                                    .dim = 16, .num_classes = classes, .image_size = size,
                                                    .lincls_init = true},
                          seed);
}

/* Gives the BatchNorm layers realistic running statistics (train-mode forwards over the
 * data), as a pre-trained checkpoint has. */
static void warm_bn(struct unmix_model *m, const struct unmix_dataset *ds, const struct unmix_recipe *rc) {
  struct unmix_loader_options lo;
  unmix_loader_options_init(&lo, UNMIX_LOADER_EVAL, 64, 0);
  lo.workers = 1;
  struct unmix_loader *ld = NULL;
  ck_assert(unmix_loader_create(ds, rc, &lo, &ld) == UNMIX_OK);
  struct unmix_ctx *ctx = unmix_ctx_create(m->be, "warm");
  for (int pass = 0; pass < 3; pass++) {
    ck_assert(unmix_loader_start_epoch(ld, 0) == UNMIX_OK);
    const struct unmix_batch *b;
    while (unmix_loader_next(ld, &b) == UNMIX_OK && b)
      if (b->size > 1) unmix_model_forward(m, ctx, b->views[0].data, b->size, UNMIX_FWD_TRAIN, false);
  }
  unmix_ctx_destroy(ctx);
  unmix_loader_free(ld);
}

static float *host_param(const struct unmix_model *m, int idx) {
  float *h = malloc(sizeof(float) * (size_t)m->params.entries[idx].numel);
  unmix_param_store_get(&m->params, idx, h);
  return h;
}

/* One step over one full batch (plain transform, momentum's first step buf = d) moves the fc
 * by exactly -lr * (gradient of the graph's backward + wd * W). */
START_TEST(test_fc_step_matches_graph_backward) {
  const int n = 24, C = 5;
  struct unmix_dataset *ds = NULL;
  ck_assert(unmix_synth_dataset(n, 16, 16, 3, C, 11, &ds) == UNMIX_OK);
  struct unmix_recipe rc;
  ck_assert(unmix_recipe_get("test", &rc) == UNMIX_OK);
  struct unmix_model *m = classifier(4, 16, C, 7);
  warm_bn(m, ds, &rc);
  const int fc = unmix_lincls_fc_node(m);
  ck_assert_int_eq(fc, m->out_node);
  const int iw = m->nodes[fc].weight, ib = m->nodes[fc].bias;
  float *w0 = host_param(m, iw), *b0 = host_param(m, ib);

  /* reference gradient: the graph's backward on the frozen model in eval mode */
  unmix_model_freeze_range(m, 0, fc);
  struct unmix_loader_options lo;
  unmix_loader_options_init(&lo, UNMIX_LOADER_EVAL, n, 0);
  struct unmix_loader *ld = NULL;
  ck_assert(unmix_loader_create(ds, &rc, &lo, &ld) == UNMIX_OK);
  ck_assert(unmix_loader_start_epoch(ld, 0) == UNMIX_OK);
  const struct unmix_batch *b = NULL;
  ck_assert(unmix_loader_next(ld, &b) == UNMIX_OK && b && b->size == n);
  struct unmix_ctx *ctx = unmix_ctx_create(m->be, "ref");
  const float *logits = unmix_model_forward(m, ctx, b->views[0].data, n, UNMIX_FWD_EVAL, true);
  float *probs = malloc(sizeof(float) * n * C), *dl = malloc(sizeof(float) * n * C), loss[3];
  m->be->cross_entropy_forward(n, C, 1.0f, logits, b->labels, probs, loss, NULL, NULL);
  m->be->cross_entropy_backward(n, C, 1.0f, 1.0f, probs, b->labels, dl);
  unmix_model_zero_grad(m);
  unmix_model_backward(m, ctx, dl);
  float *gw = malloc(sizeof(float) * (size_t)m->params.entries[iw].numel), *gb = malloc(sizeof(float) * C);
  unmix_param_store_get_from(&m->params, m->params.grad, iw, gw);
  unmix_param_store_get_from(&m->params, m->params.grad, ib, gb);
  /* nothing upstream of the fc got a gradient */
  const int64_t nbb = m->params.entries[m->n_backbone_params].offset;
  int64_t nonzero = 0;
  for (int64_t i = 0; i < nbb; i++) nonzero += m->params.grad[i] != 0.0f;
  ck_assert_msg(nonzero == 0, "%lld backbone gradients are non-zero", (long long)nonzero);
  unmix_ctx_destroy(ctx);
  unmix_loader_free(ld);

  struct unmix_lincls_params p;
  unmix_lincls_reference(UNMIX_LINCLS_MOCO_CIFAR, &p);
  p.epochs = 1;
  p.lr = 0.7f;
  p.weight_decay = 0.01f;
  p.batch_size = n;
  p.workers = 1;
  struct unmix_lincls_result res;
  ck_assert_msg(unmix_lincls_run(m->be, m, ds, ds, &rc, &p, NULL, &res) == UNMIX_OK, "%s", unmix_error_message());
  ck_assert_int_eq(res.epochs, 1);
  ck_assert_msg(fabs(res.last_train_loss - loss[0]) < 1e-5, "loss %g vs graph %g", res.last_train_loss, (double)loss[0]);
  float *w1 = host_param(m, iw), *b1 = host_param(m, ib);
  const int nw = (int)m->params.entries[iw].numel;
  float *want = malloc(sizeof(float) * nw);
  for (int i = 0; i < nw; i++) want[i] = w0[i] - p.lr * (gw[i] + p.weight_decay * w0[i]);
  ck_assert_close("fc.weight after one step", w1, want, (size_t)nw, 1e-6, 1e-4);
  for (int i = 0; i < C; i++) want[i] = b0[i] - p.lr * (gb[i] + p.weight_decay * b0[i]);
  ck_assert_close("fc.bias after one step", b1, want, (size_t)C, 1e-6, 1e-4);
  free(w0), free(b0), free(w1), free(b1), free(gw), free(gb), free(want), free(probs), free(dl);
  unmix_model_destroy(m);
  unmix_dataset_free(ds);
}
END_TEST

/* Backbone values (params + BN buffers) on the host. */
static float *backbone_copy(const struct unmix_model *m, int64_t *np, int64_t *nb) {
  *np = m->params.entries[m->n_backbone_params].offset;
  *nb = m->buffers.total;
  float *h = malloc(sizeof(float) * (size_t)(*np + *nb));
  memcpy(h, m->params.data, sizeof(float) * (size_t)*np);
  memcpy(h + *np, m->buffers.data, sizeof(float) * (size_t)*nb);
  return h;
}

START_TEST(test_learns_synthetic_backbone_untouched) {
  const int C = 4;
  struct unmix_dataset *train = NULL, *test = NULL;
  ck_assert(unmix_synth_dataset(384, 32, 32, 3, C, 21, &train) == UNMIX_OK);
  ck_assert(unmix_synth_dataset(128, 32, 32, 3, C, 22, &test) == UNMIX_OK);
  struct unmix_recipe rc;
  ck_assert(unmix_recipe_get("lincls-moco-cifar", &rc) == UNMIX_OK);
  struct unmix_model *m = classifier(8, 32, C, 5);
  warm_bn(m, train, &rc);
  int64_t np, nb;
  float *before = backbone_copy(m, &np, &nb);
  struct unmix_lincls_params p;
  unmix_lincls_reference(UNMIX_LINCLS_SWAV_CIFAR, &p);
  p.epochs = 8;
  p.batch_size = 32; /* 384 = 12 full batches */
  p.lr = 1.0f;
  p.workers = 2;
  struct unmix_lincls_result res;
  ck_assert_msg(unmix_lincls_run(m->be, m, train, test, &rc, &p, NULL, &res) == UNMIX_OK, "%s", unmix_error_message());
  printf("synthetic linear evaluation: best top-1 %.2f%% (epoch %d), last %.2f%%, top-5 %.2f%%, loss %.4f, %.3f s/epoch\n",
         res.best_top1, res.best_epoch, res.last_top1, res.last_top5, res.last_train_loss, res.seconds_per_epoch);
  ck_assert_msg(res.best_top1 >= 55.0, "best top-1 %.2f%% is not well above chance (25%%)", res.best_top1);
  ck_assert(res.last_top5 == 100.0); /* 4 classes */
  ck_assert(res.best_top1 >= res.last_top1);
  int64_t np2, nb2;
  float *after = backbone_copy(m, &np2, &nb2);
  ck_assert(np == np2 && nb == nb2);
  ck_assert_msg(memcmp(before, after, sizeof(float) * (size_t)(np + nb)) == 0, "a backbone tensor changed");
  free(before);
  free(after);
  unmix_model_destroy(m);
  unmix_dataset_free(train);
  unmix_dataset_free(test);
}
END_TEST

/* ---- reproducibility and resume -------------------------------------------------------- */

static void run_dir(const char *dir, int stop, bool resume, float lr, unmix_status want) {
  struct unmix_dataset *train = NULL, *test = NULL;
  ck_assert(unmix_synth_dataset(100, 16, 16, 3, 3, 31, &train) == UNMIX_OK);
  ck_assert(unmix_synth_dataset(30, 16, 16, 3, 3, 32, &test) == UNMIX_OK);
  struct unmix_recipe rc;
  ck_assert(unmix_recipe_get("lincls-moco-cifar", &rc) == UNMIX_OK);
  rc.views[0].size = 16; /* RRC to the synthetic size */
  struct unmix_model *m = classifier(4, 16, 3, 9);
  struct unmix_lincls_params p;
  unmix_lincls_reference(UNMIX_LINCLS_MOCO_CIFAR, &p);
  p.epochs = 3;
  p.n_milestones = 1;
  p.milestones[0] = 2;
  p.lr = lr;
  p.batch_size = 16; /* 100 = 6 x 16 + 4: a partial last batch */
  p.seed = 77;
  p.workers = 2;
  struct unmix_lincls_run_options o = {dir, resume, stop, true, "test"};
  struct unmix_lincls_result res;
  unmix_status st = unmix_lincls_run(m->be, m, train, test, &rc, &p, &o, &res);
  ck_assert_msg(st == want, "expected %s, got %s: %s", unmix_status_name(want), unmix_status_name(st),
                unmix_error_message());
  unmix_model_destroy(m);
  unmix_dataset_free(train);
  unmix_dataset_free(test);
}

/* lincls.csv without the seconds column, as text. */
static char *csv_sans_seconds(const char *dir) {
  char path[1024];
  snprintf(path, sizeof path, "%s/lincls.csv", dir);
  struct unmix_csv_table *t = NULL;
  ck_assert_msg(unmix_csv_read(path, &t) == UNMIX_OK, "%s", unmix_error_message());
  static const char *const want[] = {UNMIX_LINCLS_COLUMNS};
  ck_assert_int_eq(t->ncol, (int)(sizeof want / sizeof want[0]));
  for (int c = 0; c < t->ncol; c++) ck_assert_str_eq(t->header[c], want[c]);
  size_t cap = 1 << 16, len = 0;
  char *s = calloc(cap, 1);
  for (size_t r = 0; r < t->nrows; r++) {
    for (int c = 0; c < t->ncol; c++)
      if (strcmp(t->header[c], "seconds") != 0) len += (size_t)snprintf(s + len, cap - len, "%s,", unmix_csv_cell(t, r, c));
    len += (size_t)snprintf(s + len, cap - len, "\n");
  }
  unmix_csv_table_free(t);
  return s;
}

static void fc_of(const char *dir, float *w, size_t n) {
  char path[1024];
  snprintf(path, sizeof path, "%s/lincls.safetensors", dir);
  struct unmix_ckpt *ck = NULL;
  ck_assert(unmix_ckpt_load(path, &ck) == UNMIX_OK);
  const struct unmix_ckpt_tensor *t = unmix_ckpt_find(ck, "fc.weight");
  ck_assert(t && t->numel == n);
  memcpy(w, t->data, sizeof(float) * n);
  unmix_ckpt_free(ck);
}

START_TEST(test_rerun_and_resume_bit_identical) {
  char *dir = unmix_test_tmpdir("lincls");
  char a[1024], b[1024], c[1024];
  snprintf(a, sizeof a, "%s/a", dir);
  snprintf(b, sizeof b, "%s/b", dir);
  snprintf(c, sizeof c, "%s/c", dir);
  run_dir(a, 0, false, 2.0f, UNMIX_OK);
  run_dir(b, 0, false, 2.0f, UNMIX_OK);     /* rerun: same seed, same numbers */
  run_dir(c, 1, false, 2.0f, UNMIX_OK);     /* 1 epoch, state saved */
  run_dir(c, 0, false, 2.0f, UNMIX_ERR_ARG); /* DIR holds a run: needs --resume */
  run_dir(c, 0, true, 0.5f, UNMIX_ERR_ARG);  /* other parameters: refused */
  run_dir(c, 1, true, 2.0f, UNMIX_OK);      /* epoch 2 */
  run_dir(c, 0, true, 2.0f, UNMIX_OK);      /* epoch 3 */
  run_dir(c, 0, true, 2.0f, UNMIX_OK);      /* all done: nothing to run */
  char *ta = csv_sans_seconds(a), *tb = csv_sans_seconds(b), *tc = csv_sans_seconds(c);
  ck_assert_msg(strcmp(ta, tb) == 0, "rerun differs:\n%s\nvs\n%s", ta, tb);
  ck_assert_msg(strcmp(ta, tc) == 0, "resumed run differs:\n%s\nvs\n%s", ta, tc);
  int rows = 0;
  for (const char *q = ta; *q; q++) rows += *q == '\n';
  ck_assert_int_eq(rows, 3);
  ck_assert_msg(strncmp(ta, "1,2,", 4) == 0 && strstr(ta, "\n3,0.200000003,") != NULL, "epoch 3 lr is not 2.0 x 0.1:\n%s", ta);
  float wa[3 * 32], wc[3 * 32];
  fc_of(a, wa, 3 * 32);
  fc_of(c, wc, 3 * 32);
  ck_assert(memcmp(wa, wc, sizeof wa) == 0);
  free(ta), free(tb), free(tc);
  unmix_test_rmdir(dir);
  free(dir);
}
END_TEST

START_TEST(test_errors) {
  struct unmix_dataset *ds = NULL, *ds5 = NULL;
  ck_assert(unmix_synth_dataset(20, 16, 16, 3, 3, 1, &ds) == UNMIX_OK);
  ck_assert(unmix_synth_dataset(20, 16, 16, 3, 5, 1, &ds5) == UNMIX_OK);
  struct unmix_recipe rc;
  ck_assert(unmix_recipe_get("test", &rc) == UNMIX_OK);
  struct unmix_lincls_params p;
  unmix_lincls_reference(UNMIX_LINCLS_MOCO_CIFAR, &p);
  p.epochs = 1;
  p.batch_size = 8;
  struct unmix_lincls_result res;
  /* a model without a classifier */
  struct unmix_model_spec s;
  memset(&s, 0, sizeof s);
  s.arch = UNMIX_ARCH_RESNET18;
  s.stem = UNMIX_STEM_CIFAR;
  s.width = 4;
  s.bn_splits = 1;
  s.head = UNMIX_HEAD_MLP; /* its fc.2 does not read the avgpool features */
  s.hidden = 8;
  s.dim = 3;
  s.in_channels = 3;
  s.image_size = 16;
  struct unmix_model *head = NULL;
  ck_assert(unmix_model_create(&s, unmix_test_cpu(), 1, &head) == UNMIX_OK);
  ck_assert_int_eq(unmix_lincls_run(head->be, head, ds, ds, &rc, &p, NULL, &res), UNMIX_ERR_ARG);
  ck_assert(strstr(unmix_error_message(), "classifier") != NULL);
  unmix_model_destroy(head);
  struct unmix_model *m = classifier(4, 16, 3, 1);
  ck_assert_int_eq(unmix_lincls_run(m->be, m, ds, ds5, &rc, &p, NULL, &res), UNMIX_ERR_CONFIG);
  ck_assert_int_eq(unmix_lincls_run(m->be, m, ds5, ds5, &rc, &p, NULL, &res), UNMIX_ERR_CONFIG);
  p.epochs = 0;
  ck_assert_int_eq(unmix_lincls_run(m->be, m, ds, ds, &rc, &p, NULL, &res), UNMIX_ERR_ARG);
  p.epochs = 1;
  p.lr = NAN;
  ck_assert_int_eq(unmix_lincls_run(m->be, m, ds, ds, &rc, &p, NULL, &res), UNMIX_ERR_ARG);
  /* a diverging run stops with a numeric error naming the epoch */
  p.lr = 3e38f;
  p.epochs = 3;
  unmix_status st = unmix_lincls_run(m->be, m, ds, ds, &rc, &p, NULL, &res);
  ck_assert_msg(st == UNMIX_ERR_NUMERIC, "got %s", unmix_status_name(st));
  ck_assert(strstr(unmix_error_message(), "epoch") != NULL);
  unmix_model_destroy(m);
  unmix_dataset_free(ds);
  unmix_dataset_free(ds5);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("eval_lincls");
  TCase *tc = tcase_create("lincls");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_lr_schedules_closed_forms);
  tcase_add_test(tc, test_manifest_blocks_match_reference);
  tcase_add_test(tc, test_fc_step_matches_graph_backward);
  tcase_add_test(tc, test_learns_synthetic_backbone_untouched);
  tcase_add_test(tc, test_rerun_and_resume_bit_identical);
  tcase_add_test(tc, test_errors);
  suite_add_tcase(s, tc);
  return s;
}

UNMIX_TEST_MAIN(suite)
