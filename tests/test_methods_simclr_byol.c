/* SimCLR and BYOL as the W-MSE codebase trains them: the two-view losses and their gradients
 * against float64 PyTorch transcriptions (tests/golden/simclr_byol.bin, written by
 * tests/golden/gen/gen_simclr_byol.py), to fp32 rounding, plus the properties the
 * transcription implies (the 1e9 mask removes the self-similarity, the loss is symmetric
 * in its views, accumulation is +=). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io/manifest.h"
#include "core/methods/common.h"
#include "core/methods/wmse_head.h"
#include "core/methods/wmse_losses.h"
#include "core/optim/adam.h"
#include "tests/support/golden.h"
#include "tests/support/testutil.h"

static struct unmix_fixture *load(void) {
  char path[1024];
  return unmix_fixture_load(unmix_test_src_path("tests/golden/simclr_byol.bin", path, sizeof path));
}

static const char *const CASES[] = {"a", "b", "c"};

static void to_double(const float *x, double *y, size_t n) {
  for (size_t i = 0; i < n; i++) y[i] = x[i];
}

START_TEST(test_ntxent_matches_reference) {
  struct unmix_fixture *fx = load();
  const struct unmix_backend *be = unmix_test_cpu();
  char key[64];
  snprintf(key, sizeof key, "ntxent/%s/z0", CASES[_i]);
  const struct unmix_fixture_entry *e = unmix_fixture_find(fx, key);
  ck_assert(e && e->ndim == 2);
  const int n = (int)e->shape[0], d = (int)e->shape[1];
  const size_t nd = (size_t)n * d;
  const float *z0 = e->data;
  snprintf(key, sizeof key, "ntxent/%s/z1", CASES[_i]);
  const float *z1 = unmix_fixture_f32(fx, key, NULL);
  float *work = malloc(sizeof(float) * (size_t)unmix_simclr_ntxent_workspace(n, d));
  float *dz0 = calloc(nd, sizeof(float)), *dz1 = calloc(nd, sizeof(float));
  double loss;
  unmix_simclr_ntxent(be, n, d, 0.5f, z0, z1, 1.0f, dz0, dz1, &loss, work);
  snprintf(key, sizeof key, "ntxent/%s/loss", CASES[_i]);
  double want = unmix_fixture_scalar(fx, key);
  ck_assert_msg(fabs(loss - want) <= 1e-5 * fabs(want) + 1e-6, "case %s: loss %.9g, reference %.9g", CASES[_i], loss,
                want);
  double *g = malloc(sizeof(double) * nd);
  to_double(dz0, g, nd);
  snprintf(key, sizeof key, "ntxent/%s/dz0", CASES[_i]);
  ck_assert(unmix_close_d("dL/dz0", g, unmix_fixture_f64(fx, key, NULL), nd, 1e-7, 1e-4));
  to_double(dz1, g, nd);
  snprintf(key, sizeof key, "ntxent/%s/dz1", CASES[_i]);
  ck_assert(unmix_close_d("dL/dz1", g, unmix_fixture_f64(fx, key, NULL), nd, 1e-7, 1e-4));
  /* accumulation: a second call with dscale 0.5 adds half of the gradient */
  float *again = malloc(sizeof(float) * nd);
  memcpy(again, dz0, sizeof(float) * nd);
  unmix_simclr_ntxent(be, n, d, 0.5f, z0, z1, 0.5f, again, NULL, &loss, work);
  for (size_t i = 0; i < nd; i++) ck_assert(fabsf(again[i] - 1.5f * dz0[i]) <= 1e-6f + 1e-5f * fabsf(dz0[i]));
  /* swapping the views leaves the loss unchanged (both directions are averaged) */
  double swapped;
  unmix_simclr_ntxent(be, n, d, 0.5f, z1, z0, 1.0f, NULL, NULL, &swapped, work);
  ck_assert(fabs(swapped - loss) <= 1e-6 * fabs(loss));
  free(again);
  free(g);
  free(dz0);
  free(dz1);
  free(work);
  unmix_fixture_free(fx);
}
END_TEST

/* The positive pair is (z0_i, z1_i) and the self-similarity is masked: with identical views
 * whose images are mutually orthogonal, each anchor has cosine 1 to its positive and 0 to its
 * 2n-2 negatives, so at tau 0.5 L = log(e^2 + 2n - 2) - 2 (an unmasked self term would add
 * another e^2 to the sum). */
START_TEST(test_ntxent_closed_form) {
  enum { N = 4, D = 6 };
  float z[N * D] = {0};
  for (int i = 0; i < N; i++) z[i * D + i] = 1.0f + (float)i; /* orthogonal, unnormalised */
  float *work = malloc(sizeof(float) * (size_t)unmix_simclr_ntxent_workspace(N, D));
  double loss;
  unmix_simclr_ntxent(unmix_test_cpu(), N, D, 0.5f, z, z, 1.0f, NULL, NULL, &loss, work);
  double want = log(exp(2.0) + 2 * N - 2) - 2.0;
  ck_assert_msg(fabs(loss - want) < 1e-6, "loss %.9g, closed form %.9g", loss, want);
  free(work);
}
END_TEST

START_TEST(test_nmse_matches_reference) {
  struct unmix_fixture *fx = load();
  const struct unmix_backend *be = unmix_test_cpu();
  char key[64];
#define GET(name) (snprintf(key, sizeof key, "nmse/%s/" name, CASES[_i]), unmix_fixture_f32(fx, key, NULL))
  snprintf(key, sizeof key, "nmse/%s/p0", CASES[_i]);
  const struct unmix_fixture_entry *e = unmix_fixture_find(fx, key);
  ck_assert(e && e->ndim == 2);
  const int n = (int)e->shape[0], d = (int)e->shape[1];
  const size_t nd = (size_t)n * d;
  const float *p0 = GET("p0"), *p1 = GET("p1"), *t0 = GET("t0"), *t1 = GET("t1");
#undef GET
  float *work = malloc(sizeof(float) * (size_t)unmix_byol_nmse_workspace(n, d));
  float *dp0 = calloc(nd, sizeof(float)), *dp1 = calloc(nd, sizeof(float));
  double l01, l10;
  /* the reference sums the two directions: nmse(p0, t1) + nmse(p1, t0) */
  unmix_byol_nmse(be, n, d, p0, t1, 1.0f, dp0, &l01, work);
  unmix_byol_nmse(be, n, d, p1, t0, 1.0f, dp1, &l10, work);
  snprintf(key, sizeof key, "nmse/%s/loss", CASES[_i]);
  double want = unmix_fixture_scalar(fx, key);
  ck_assert_msg(fabs(l01 + l10 - want) <= 1e-6 * fabs(want) + 1e-6, "case %s: loss %.9g, reference %.9g", CASES[_i],
                l01 + l10, want);
  ck_assert(l01 >= 0 && l01 <= 4 && l10 >= 0 && l10 <= 4);
  double *g = malloc(sizeof(double) * nd);
  to_double(dp0, g, nd);
  snprintf(key, sizeof key, "nmse/%s/dp0", CASES[_i]);
  ck_assert(unmix_close_d("dL/dp0", g, unmix_fixture_f64(fx, key, NULL), nd, 1e-7, 1e-4));
  to_double(dp1, g, nd);
  snprintf(key, sizeof key, "nmse/%s/dp1", CASES[_i]);
  ck_assert(unmix_close_d("dL/dp1", g, unmix_fixture_f64(fx, key, NULL), nd, 1e-7, 1e-4));
  /* identical directions: loss 0 (up to rounding) and a zero gradient */
  double self;
  float *gz = calloc(nd, sizeof(float));
  unmix_byol_nmse(be, n, d, p0, p0, 1.0f, gz, &self, work);
  ck_assert(fabs(self) < 1e-6);
  for (size_t i = 0; i < nd; i++) ck_assert(fabsf(gz[i]) < 1e-5f);
  free(gz);
  free(g);
  free(dp0);
  free(dp1);
  free(work);
  unmix_fixture_free(fx);
}
END_TEST

/* ---- whole steps against tests/golden/method_{simclr,byol}_*.bin ------------------------ */

/* gen_simclr_byol.fill_head: tensor t of a head store = pattern(numel, base + t, amp). */
static void fill_head(struct unmix_param_store *s, uint64_t base) {
  for (int t = 0; t < s->count; t++) {
    const struct unmix_param_entry *e = &s->entries[t];
    float *h = malloc(sizeof(float) * (size_t)e->numel);
    bool bn_w = e->ndim == 1 && strstr(e->name, ".weight") &&
                (strstr(e->name, ".1.weight") || !strncmp(e->name, "bn_last", 7));
    if (e->ndim == 2) unmix_golden_pattern(h, e->numel, base + (uint64_t)t, sqrt(6.0 / e->shape[1]), 0.0);
    else if (bn_w) unmix_golden_pattern(h, e->numel, base + (uint64_t)t, 0.2, 1.0);
    else unmix_golden_pattern(h, e->numel, base + (uint64_t)t, 0.1, 0.0);
    unmix_param_store_set(s, t, h);
    free(h);
  }
}

/* All of a store's values (from `base`: data or grad) in entry order, as doubles. */
static double *store_values(const struct unmix_param_store *s, const float *base, size_t *n) {
  *n = (size_t)unmix_param_store_numel(s);
  double *out = malloc(sizeof(double) * *n);
  size_t k = 0;
  for (int t = 0; t < s->count; t++) {
    float *h = malloc(sizeof(float) * (size_t)s->entries[t].numel);
    unmix_param_store_get_from(s, base, t, h);
    for (int64_t j = 0; j < s->entries[t].numel; j++) out[k++] = h[j];
    free(h);
  }
  return out;
}

static void check_store(const char *what, const struct unmix_param_store *s, const float *base,
                        const struct unmix_fixture *fx, const char *entry, double atol_scale) {
  size_t n, nf;
  double *got = store_values(s, base, &n);
  const double *want = unmix_fixture_f64(fx, entry, &nf);
  ck_assert_msg(n == nf, "%s: %zu values, fixture %s has %zu", what, n, entry, nf);
  double scale = 0;
  for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(want[i]));
  ck_assert(unmix_close_d(what, got, want, n, atol_scale * scale + 1e-9, 2e-3));
  free(got);
}

static struct unmix_method *make_method(const char *method, const struct unmix_fixture *fx, bool unmix,
                                        bool mix_target) {
  const int32_t *dims = unmix_fixture_i32(fx, "dims", NULL); /* width, batch, hidden, dim */
  struct unmix_config cfg;
  unmix_config_init_defaults(&cfg);
  cfg.method = !strcmp(method, "simclr") ? UNMIX_METHOD_SIMCLR : UNMIX_METHOD_BYOL;
  cfg.model.arch = UNMIX_ARCH_RESNET18;
  cfg.model.stem = UNMIX_STEM_CIFAR;
  cfg.model.width = dims[0];
  cfg.model.bn_splits = 1;
  cfg.model.head = UNMIX_HEAD_NONE;
  cfg.model.hidden = dims[2];
  cfg.model.dim = dims[3];
  cfg.optim.kind = UNMIX_OPTIM_ADAM;
  cfg.optim.batch_size = dims[1];
  cfg.optim.weight_decay = 1e-6f;
  cfg.unmix.enabled = unmix;
  cfg.byol.mix_target = mix_target;
  cfg.train.epochs = 10;
  struct unmix_method *m = NULL;
  ck_assert_msg(unmix_method_create(&cfg, unmix_test_cpu(), 32, NULL, &m) == UNMIX_OK, "%s", unmix_error_message());
  unmix_golden_fill_model(m->model);
  return m;
}

static const char *const STEP_CASES[] = {"simclr_nomix", "simclr_global", "simclr_region",
                                         "byol_nomix",   "byol_global",   "byol_region",
                                         "byol_global_online"};

/* Forward, loss terms, every encoder gradient (checksums), every head / predictor gradient,
 * the running statistics after the step's forwards, to fp32 rounding of the float64
 * transcription. lr 0: nothing moves, so the gradients can be read after the step. */
START_TEST(test_step_matches_reference) {
  const char *name = STEP_CASES[_i];
  char file[128];
  snprintf(file, sizeof file, "tests/golden/method_%s.bin", name);
  char path[1024];
  struct unmix_fixture *fx = unmix_fixture_load(unmix_test_src_path(file, path, sizeof path));
  const bool byol = !strncmp(name, "byol", 4), unmix = !strstr(name, "nomix"), online = strstr(name, "online") != NULL;
  struct unmix_method *m = make_method(byol ? "byol" : "simclr", fx, unmix, !online);
  const int32_t *dims = unmix_fixture_i32(fx, "dims", NULL);
  const int n = dims[1];
  if (byol) {
    fill_head(unmix_byol_store(m, 0), 3000);
    fill_head(unmix_byol_store(m, 1), 4000);
    /* update_target(0) after the fill: the target's parameters are the online ones */
    struct unmix_model *t = unmix_byol_target(m);
    m->be->copy(m->model->params.total, m->model->params.data, t->params.data);
    struct unmix_param_store *g = unmix_byol_store(m, 0), *gt = unmix_byol_store(m, 2);
    m->be->copy(g->total, g->data, gt->data);
  } else {
    fill_head(unmix_simclr_head(m, NULL), 3000);
  }
  const double *draw = unmix_fixture_f64(fx, "draw", NULL); /* global lam_drawn lam cx cy r0 r1 c0 c1 */
  struct unmix_forced_draws f = {0};
  f.have_mix = true;
  f.mix.global = draw[0] != 0;
  f.mix.lam_drawn = draw[1];
  f.mix.lam = draw[2];
  f.mix.cx = (int)draw[3];
  f.mix.cy = (int)draw[4];
  f.mix.r0 = (int)draw[5], f.mix.r1 = (int)draw[6], f.mix.c0 = (int)draw[7], f.mix.c1 = (int)draw[8];
  float *x0 = unmix_golden_images(n, 3, 32, 32, 7100), *x1 = unmix_golden_images(n, 3, 32, 32, 7101);
  struct unmix_views v = {.n = n, .nviews = 2, .size = {32, 32}, .view = {x0, x1}};
  struct unmix_step_stats st;
  ck_assert_msg(unmix_method_step_forced(m, &v, 0, 0, 0.0f, &f, &st) == UNMIX_OK, "%s", unmix_error_message());
  const double *L = unmix_fixture_f64(fx, "loss", NULL); /* total, l0, l1, l2 */
  for (int i = 0; i < 3; i++)
    ck_assert_msg(fabs(st.terms[i] - L[1 + i]) <= 1e-5 * fabs(L[1 + i]) + 1e-6, "%s: term %d %.9g, reference %.9g",
                  name, i, st.terms[i], L[1 + i]);
  ck_assert_msg(fabs(st.loss - L[0]) <= 1e-5 * fabs(L[0]) + 1e-6, "%s: loss %.9g, reference %.9g", name, st.loss, L[0]);
  ck_assert_msg(unmix_golden_check_grads(name, m->model, fx) == 0, "%s: encoder gradients differ", name);
  ck_assert_msg(unmix_golden_check_buffer_sums(name, m->model, fx, "buffer_sums") == 0, "%s: encoder running stats",
                name);
  char what[160];
  if (byol) {
    snprintf(what, sizeof what, "%s: head gradients", name);
    check_store(what, unmix_byol_store(m, 0), unmix_byol_store(m, 0)->grad, fx, "head_grad", 1e-4);
    snprintf(what, sizeof what, "%s: predictor gradients", name);
    check_store(what, unmix_byol_store(m, 1), unmix_byol_store(m, 1)->grad, fx, "pred_grad", 1e-4);
    snprintf(what, sizeof what, "%s: head running stats", name);
    check_store(what, unmix_byol_store(m, 3), unmix_byol_store(m, 3)->data, fx, "head_buffers", 1e-5);
  } else {
    struct unmix_param_store *hb = NULL, *hp = unmix_simclr_head(m, &hb);
    snprintf(what, sizeof what, "%s: head gradients", name);
    check_store(what, hp, hp->grad, fx, "head_grad", 1e-4);
    snprintf(what, sizeof what, "%s: head running stats", name);
    check_store(what, hb, hb->data, fx, "head_buffers", 1e-5);
  }
  free(x0);
  free(x1);
  unmix_method_destroy(m);
  unmix_fixture_free(fx);
}
END_TEST

/* The optimiser and target wiring of a step with lr > 0: every parameter of every store moves
 * by Adam's first step, p - lr (g + wd p) / (|g + wd p| + eps), from the step's own gradients;
 * BYOL's target then equals tau p_t + (1 - tau) p_new over parameters (tau at epoch 3 of 10),
 * and its BN buffers are not averaged. */
START_TEST(test_step_adam_and_target_update) {
  const bool byol = _i == 1;
  char path[1024];
  struct unmix_fixture *fx = unmix_fixture_load(
      unmix_test_src_path(byol ? "tests/golden/method_byol_global.bin" : "tests/golden/method_simclr_global.bin", path,
                          sizeof path));
  struct unmix_method *m = make_method(byol ? "byol" : "simclr", fx, true, true);
  const int n = unmix_fixture_i32(fx, "dims", NULL)[1];
  struct unmix_param_store *stores[3] = {&m->model->params, NULL, NULL};
  int ns = 2;
  if (byol) {
    stores[1] = unmix_byol_store(m, 0);
    stores[2] = unmix_byol_store(m, 1);
    ns = 3;
  } else {
    stores[1] = unmix_simclr_head(m, NULL);
  }
  float *before[3], *tgt_before = NULL, *tbuf_before = NULL, *th_before = NULL;
  for (int k = 0; k < ns; k++) {
    before[k] = malloc(sizeof(float) * (size_t)stores[k]->total);
    memcpy(before[k], stores[k]->data, sizeof(float) * (size_t)stores[k]->total);
  }
  struct unmix_model *t = byol ? unmix_byol_target(m) : NULL;
  if (t) {
    tgt_before = malloc(sizeof(float) * (size_t)t->params.total);
    memcpy(tgt_before, t->params.data, sizeof(float) * (size_t)t->params.total);
    tbuf_before = malloc(sizeof(float) * (size_t)t->buffers.total);
    struct unmix_param_store *gt = unmix_byol_store(m, 2);
    th_before = malloc(sizeof(float) * (size_t)gt->total);
    memcpy(th_before, gt->data, sizeof(float) * (size_t)gt->total);
  }
  float *x0 = unmix_golden_images(n, 3, 32, 32, 7100), *x1 = unmix_golden_images(n, 3, 32, 32, 7101);
  struct unmix_views v = {.n = n, .nviews = 2, .size = {32, 32}, .view = {x0, x1}};
  struct unmix_step_stats st;
  const float lr = 1e-3f, wd = 1e-6f;
  ck_assert_msg(unmix_method_step(m, &v, 5, 3, lr, &st) == UNMIX_OK, "%s", unmix_error_message());
  for (int k = 0; k < ns; k++) {
    const struct unmix_param_store *s = stores[k];
    int moved = 0;
    for (int64_t i = 0; i < s->total; i++) {
      double g = (double)s->grad[i] + (double)wd * before[k][i];
      double want = before[k][i] - (double)lr * g / (fabs(g) + 1e-8);
      ck_assert_msg(fabs(s->data[i] - want) <= 1e-6 + 1e-6 * fabs(want), "store %d [%lld]: %.9g, Adam step %.9g", k,
                    (long long)i, s->data[i], want);
      moved += s->data[i] != before[k][i];
    }
    ck_assert_msg(moved > s->total / 2, "store %d: only %d of %lld values moved", k, moved, (long long)s->total);
  }
  if (t) {
    const double tau = unmix_byol_tau(0.99, 3, 10);
    for (int64_t i = 0; i < t->params.total; i++) {
      double want = tau * tgt_before[i] + (1.0 - tau) * m->model->params.data[i];
      ck_assert_msg(fabs(t->params.data[i] - want) <= 1e-6 + 1e-6 * fabs(want), "target [%lld] %.9g, EMA %.9g",
                    (long long)i, t->params.data[i], want);
    }
    const struct unmix_param_store *gt = unmix_byol_store(m, 2), *g = unmix_byol_store(m, 0);
    for (int64_t i = 0; i < gt->total; i++) {
      double want = tau * th_before[i] + (1.0 - tau) * g->data[i];
      ck_assert_msg(fabs(gt->data[i] - want) <= 1e-7 + 1e-6 * fabs(want), "target head [%lld] %.9g, EMA %.9g",
                    (long long)i, gt->data[i], want);
    }
    /* the target's BN buffers are its own running statistics, never averaged with the online ones */
    memcpy(tbuf_before, t->buffers.data, sizeof(float) * (size_t)t->buffers.total);
    ck_assert(memcmp(tbuf_before, m->model->buffers.data, sizeof(float) * (size_t)t->buffers.total) != 0);
  }
  for (int k = 0; k < ns; k++) free(before[k]);
  free(tgt_before);
  free(tbuf_before);
  free(th_before);
  free(x0);
  free(x1);
  unmix_method_destroy(m);
  unmix_fixture_free(fx);
}
END_TEST

/* `unmix bench step`'s model FLOPs count the heads the method runs next to the encoder, pass by
 * pass as the reference's forward makes them (fwd + bwd = 3 forwards): SimCLR's head over both
 * views per loss call (1 call, Un-Mix 3); BYOL's g and q per online branch (2, Un-Mix 6 with the
 * mixtures through the target, 4 without), g_t per target pass (2, Un-Mix 4 / 2). */
START_TEST(test_step_flops_count_the_heads) {
  char path[1024];
  struct unmix_fixture *fx =
      unmix_fixture_load(unmix_test_src_path("tests/golden/method_simclr_nomix.bin", path, sizeof path));
  const int32_t *dims = unmix_fixture_i32(fx, "dims", NULL);
  const double H = dims[2], D = dims[3];
  struct {
    const char *method;
    bool unmix, mix_target;
    double enc_fb, enc_f, head_fb, pred_fb, tgt_head_f;
  } c[] = {{"simclr", false, true, 2, 0, 2, 0, 0}, {"simclr", true, true, 4, 0, 6, 0, 0},
           {"byol", false, true, 2, 2, 2, 2, 2},   {"byol", true, true, 4, 4, 6, 6, 4},
           {"byol", true, false, 4, 2, 4, 4, 2}};
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    struct unmix_method *m = make_method(c[i].method, fx, c[i].unmix, c[i].mix_target);
    const double F = unmix_model_out_dim(m->model), enc = unmix_model_forward_flops(m->model);
    const double head = 2 * (F * H + H * D), pred = 2 * (D * H + H * D);
    const double want = enc * (3 * c[i].enc_fb + c[i].enc_f) + 3 * c[i].head_fb * head + 3 * c[i].pred_fb * pred +
                        c[i].tgt_head_f * head;
    const double got = unmix_method_step_flops_per_sample(m);
    ck_assert_msg(fabs(got - want) <= 1e-9 * want, "%s unmix %d mix_target %d: %.0f FLOPs per sample, want %.0f",
                  c[i].method, c[i].unmix, c[i].mix_target, got, want);
    unmix_method_destroy(m);
  }
  unmix_fixture_free(fx);
}
END_TEST

static Suite *wmse_suite(void) {
  Suite *s = suite_create("methods_simclr_byol");
  TCase *tc = tcase_create("losses");
  tcase_add_loop_test(tc, test_ntxent_matches_reference, 0, 3);
  tcase_add_test(tc, test_ntxent_closed_form);
  tcase_add_loop_test(tc, test_nmse_matches_reference, 0, 3);
  suite_add_tcase(s, tc);
  TCase *ts = tcase_create("steps");
  tcase_set_timeout(ts, 600);
  tcase_add_loop_test(ts, test_step_matches_reference, 0, 7);
  tcase_add_loop_test(ts, test_step_adam_and_target_update, 0, 2);
  tcase_add_test(ts, test_step_flops_count_the_heads);
  suite_add_tcase(s, ts);
  return s;
}

UNMIX_TEST_MAIN(wmse_suite)
