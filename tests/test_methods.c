/* Method losses and gradients against PyTorch transcriptions of the official code
 * (fixtures from tests/golden/gen/gen_methods.py, float64): MoCo symmetric/asymmetric with
 * global and region mixes and without mixing (both mix-once and two-forward modes), SwAV
 * without and with Un-Mix (reverse quirk and the paper variant: losses, the gradient w.r.t.
 * the scores, all parameter gradients), and Sinkhorn-Knopp, on narrow nets (model.width
 * 16 / 8) whose float32 gradients are well conditioned. Also
 * the mixing draws' distributions and the FIDELITY §1.3 box example. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io/manifest.h"
#include "core/methods/common.h"
#include "tests/support/golden.h"

static struct unmix_fixture *load(const char *name) {
  char rel[256], path[1024];
  snprintf(rel, sizeof rel, "tests/golden/%s", name);
  return unmix_fixture_load(unmix_test_src_path(rel, path, sizeof path));
}

static void forced_from(const struct unmix_fixture *fx, struct unmix_forced_draws *f) {
  memset(f, 0, sizeof *f);
  f->have_mix = true;
  f->mix.global = unmix_fixture_scalar(fx, "global") != 0;
  f->mix.lam = unmix_fixture_scalar(fx, "lam");
  const int32_t *box = unmix_fixture_i32(fx, "box", NULL);
  f->mix.r0 = box[0];
  f->mix.r1 = box[1];
  f->mix.c0 = box[2];
  f->mix.c1 = box[3];
}

static bool near(double a, double b, double rel) { return fabs(a - b) <= rel * fabs(b) + 1e-6; }

static void run_moco(const char *fixture, bool mix_once) {
  struct unmix_fixture *fx = load(fixture);
  struct unmix_config cfg;
  unmix_config_init_defaults(&cfg);
  cfg.method = UNMIX_METHOD_MOCO;
  cfg.model.arch = UNMIX_ARCH_RESNET18;
  cfg.model.stem = UNMIX_STEM_CIFAR;
  cfg.model.width = (int)unmix_fixture_scalar(fx, "width");
  cfg.model.bn_splits = 4;
  cfg.model.head = UNMIX_HEAD_LINEAR;
  cfg.model.dim = 128;
  cfg.moco.K = 32;
  cfg.moco.m = 0.99f;
  cfg.moco.T = 0.1f;
  cfg.moco.symmetric = unmix_fixture_scalar(fx, "symmetric") != 0;
  cfg.moco.shuffle_bn = true;
  cfg.moco.mix_once = mix_once;
  cfg.unmix.enabled = unmix_fixture_scalar(fx, "unmix") != 0;
  cfg.optim.batch_size = 8;
  struct unmix_method *m = NULL;
  ck_assert_msg(unmix_method_create(&cfg, unmix_test_cpu(), 32, NULL, &m) == UNMIX_OK, "%s", unmix_error_message());
  const struct unmix_backend *be = m->be;
  unmix_golden_fill_model(m->model);
  struct unmix_model *k = unmix_moco_key_encoder(m);
  unmix_golden_fill_model(k); /* buffers as the formula */
  unmix_golden_fill_key_encoder(k);
  int K, D, ptr;
  float *queue = unmix_moco_queue(m, &K, &D, &ptr);
  float *hq = malloc(sizeof(float) * K * D);
  unmix_golden_pattern(hq, (int64_t)K * D, 9000, 1.0, 0.0);
  for (int j = 0; j < K; j++) {
    double ss = 0;
    for (int d = 0; d < D; d++) ss += (double)hq[j * D + d] * hq[j * D + d];
    for (int d = 0; d < D; d++) hq[j * D + d] = (float)(hq[j * D + d] / sqrt(ss));
  }
  be->memcpy_h2d(queue, hq, sizeof(float) * K * D);
  const int32_t *streams = unmix_fixture_i32(fx, "streams", NULL);
  float *im1 = unmix_golden_images(8, 3, 32, 32, (uint64_t)streams[0]);
  float *im2 = unmix_golden_images(8, 3, 32, 32, (uint64_t)streams[1]);
  struct unmix_views v = {.n = 8, .nviews = 2, .size = {32, 32}, .view = {im1, im2}};
  struct unmix_forced_draws f;
  forced_from(fx, &f);
  f.perm[0] = unmix_fixture_i32(fx, "perm_a", NULL);
  f.perm[1] = unmix_fixture_i32(fx, "perm_b", NULL);
  struct unmix_step_stats st;
  memset(&st, 0, sizeof st);
  ck_assert_msg(unmix_method_step_forced(m, &v, 0, 0, 0.0f, &f, &st) == UNMIX_OK, "%s", unmix_error_message());
  const double *L = unmix_fixture_f64(fx, "losses", NULL);
  char what[160];
  snprintf(what, sizeof what, "%s (mix_once=%d)", fixture, mix_once);
  ck_assert_msg(near(st.terms[0], L[0] + L[3], 1e-5), "%s loss_cl %.9g want %.9g", what, st.terms[0], L[0] + L[3]);
  ck_assert_msg(near(st.terms[1], L[1] + L[4], 1e-5), "%s loss_mix %.9g want %.9g", what, st.terms[1], L[1] + L[4]);
  ck_assert_msg(near(st.terms[2], L[2] + L[5], 1e-5), "%s loss_mix_flip %.9g want %.9g", what, st.terms[2], L[2] + L[5]);
  ck_assert_msg(near(st.loss, L[6], 1e-5), "%s total %.9g want %.9g", what, st.loss, L[6]);
  ck_assert_msg(unmix_golden_check_grads(what, m->model, fx) == 0, "%s: encoder_q gradients differ", what);
  ck_assert_msg(unmix_golden_check_buffer_sums(what, m->model, fx, "q_buf_sum") == 0, "%s: encoder_q running stats", what);
  ck_assert_msg(unmix_golden_check_buffer_sums(what, k, fx, "k_buf_sum") == 0, "%s: encoder_k running stats", what);
  size_t nk;
  const double *kp = unmix_fixture_f64(fx, "k_param_sum", &nk);
  ck_assert_int_eq(nk, (size_t)k->params.count);
  for (int i = 0; i < k->params.count; i++) {
    float *h = malloc(sizeof(float) * k->params.entries[i].numel);
    unmix_param_store_get(&k->params, i, h);
    double s = 0;
    for (int64_t j = 0; j < k->params.entries[i].numel; j++) s += h[j];
    ck_assert_msg(fabs(s - kp[i]) <= 1e-5 * fabs(kp[i]) + 1e-5, "%s: key param %s after EMA: %.8g want %.8g", what,
                  k->params.entries[i].name, s, kp[i]);
    free(h);
  }
  size_t nq;
  const float *qa = unmix_fixture_f32(fx, "queue_after", &nq);
  ck_assert_int_eq(nq, (size_t)K * D);
  be->memcpy_d2h(hq, queue, sizeof(float) * K * D);
  ck_assert_msg(unmix_close("queue after enqueue", hq, qa, nq, 1e-5, 1e-4), "%s: queue differs", what);
  int ptr_after;
  unmix_moco_queue(m, &K, &D, &ptr_after);
  ck_assert_int_eq(ptr_after, (cfg.moco.symmetric ? 16 : 8) % K);
  free(hq);
  free(im1);
  free(im2);
  unmix_method_destroy(m);
  unmix_fixture_free(fx);
}

START_TEST(test_moco_sym_global) { run_moco("method_moco_sym_global.bin", false); run_moco("method_moco_sym_global.bin", true); }
END_TEST
START_TEST(test_moco_sym_region) { run_moco("method_moco_sym_region.bin", false); run_moco("method_moco_sym_region.bin", true); }
END_TEST
START_TEST(test_moco_asym_global) { run_moco("method_moco_asym_global.bin", false); }
END_TEST
START_TEST(test_moco_asym_region) { run_moco("method_moco_asym_region.bin", false); }
END_TEST
START_TEST(test_moco_sym_nomix) { run_moco("method_moco_sym_nomix.bin", true); }
END_TEST

static void run_swav(const char *fixture) {
  struct unmix_fixture *fx = load(fixture);
  struct unmix_config cfg;
  unmix_config_init_defaults(&cfg);
  cfg.method = UNMIX_METHOD_SWAV;
  cfg.model.arch = UNMIX_ARCH_RESNET18_BOTTLENECK;
  cfg.model.stem = UNMIX_STEM_SWAV_CIFAR;
  cfg.model.width = (int)unmix_fixture_scalar(fx, "width");
  cfg.model.bn_splits = 1;
  cfg.model.head = UNMIX_HEAD_SWAV;
  cfg.model.dim = 128;
  cfg.model.hidden = 512;
  cfg.swav.nmb_prototypes = 100;
  cfg.swav.temperature = 0.1f;
  cfg.swav.epsilon = 0.05f;
  cfg.swav.sinkhorn_iterations = 3;
  cfg.swav.n_crops_for_assign = 2;
  cfg.swav.crops_for_assign[0] = 0;
  cfg.swav.crops_for_assign[1] = 1;
  cfg.swav.queue_length = 0;
  cfg.swav.freeze_prototypes_niters = 0;
  cfg.swav.reverse = unmix_fixture_scalar(fx, "paper") != 0 ? UNMIX_SWAV_REVERSE_PAPER : UNMIX_SWAV_REVERSE_CODE;
  cfg.unmix.enabled = unmix_fixture_scalar(fx, "unmix") != 0;
  cfg.optim.kind = UNMIX_OPTIM_LARC;
  const int bs = (int)unmix_fixture_scalar(fx, "bs");
  cfg.optim.batch_size = bs;
  cfg.data.n_crop_groups = 1;
  cfg.data.nmb_crops[0] = 2;
  cfg.data.size_crops[0] = 32;
  struct unmix_method *m = NULL;
  ck_assert_msg(unmix_method_create(&cfg, unmix_test_cpu(), 32, NULL, &m) == UNMIX_OK, "%s", unmix_error_message());
  unmix_golden_fill_model(m->model);
  const int32_t *streams = unmix_fixture_i32(fx, "streams", NULL);
  float *x0 = unmix_golden_images(bs, 3, 32, 32, (uint64_t)streams[0]);
  float *x1 = unmix_golden_images(bs, 3, 32, 32, (uint64_t)streams[1]);
  struct unmix_views v = {.n = bs, .nviews = 2, .size = {32, 32}, .view = {x0, x1}};
  struct unmix_forced_draws f;
  forced_from(fx, &f);
  struct unmix_step_stats st;
  ck_assert_msg(unmix_method_step_forced(m, &v, 0, 0, 0.0f, &f, &st) == UNMIX_OK, "%s", unmix_error_message());
  const double *L = unmix_fixture_f64(fx, "losses", NULL);
  for (int t = 0; t < 3; t++)
    ck_assert_msg(near(st.terms[t], L[t], 1e-5), "%s term %d: %.9g want %.9g", fixture, t, st.terms[t], L[t]);
  ck_assert_msg(near(st.loss, L[3], 1e-5), "%s total %.9g want %.9g", fixture, st.loss, L[3]);
  /* the method's gradient: d loss / d scores (the backbone's chain rule is the model
   * fixtures' business) and the head's parameter gradients */
  size_t nd;
  const double *want_ds = unmix_fixture_f64(fx, "dscores", &nd);
  int rows;
  const float *ds = unmix_swav_last_dscores(m, &rows);
  ck_assert_int_eq(nd, (size_t)rows * 100);
  float *wf = malloc(sizeof(float) * nd);
  for (size_t i = 0; i < nd; i++) wf[i] = (float)want_ds[i];
  double e = unmix_nmse(ds, wf, nd);
  ck_assert_msg(e <= 1e-4, "%s: d loss / d scores normalised error %.3g > 1e-4", fixture, e);
  free(wf);
  ck_assert_msg(unmix_golden_check_grads(fixture, m->model, fx) == 0, "%s: gradients differ", fixture);
  free(x0);
  free(x1);
  unmix_method_destroy(m);
  unmix_fixture_free(fx);
}

START_TEST(test_swav_nomix) { run_swav("method_swav_nomix.bin"); }
END_TEST
START_TEST(test_swav_global) { run_swav("method_swav_global.bin"); }
END_TEST
START_TEST(test_swav_region) { run_swav("method_swav_region.bin"); }
END_TEST
START_TEST(test_swav_region_paper) { run_swav("method_swav_region_paper.bin"); }
END_TEST

/* The registry: every manifest method name resolves to a table with every required entry
 * and the manifest accepts every registered name,
 * the tables are reachable by index up to the NULL end, metric columns are collected once,
 * and a method's model needs reach the model spec (SwAV's prototypes). */
START_TEST(test_method_registry) {
  int n = 0;
  for (; unmix_method_ops_at(n); n++) {
    const struct unmix_method_ops *o = unmix_method_ops_at(n);
    ck_assert_msg(o->name && o->create && o->destroy && o->step && o->views_needed && o->step_flops_per_sample &&
                      o->device_bytes,
                  "method %d (%s) lacks a required entry", n, o->name ? o->name : "?");
    ck_assert_ptr_eq(unmix_method_ops_find(o->name), o);
    char yaml[128];
    const bool wmse = !strcmp(o->name, "simclr") || !strcmp(o->name, "byol"); /* heads in the method, Adam */
    snprintf(yaml, sizeof yaml, "method: %s\nmodel:\n  head: %s\n%s", o->name,
             wmse ? "none" : strcmp(o->name, "swav") ? "linear" : "swav", wmse ? "optim:\n  kind: adam\n" : "");
    struct unmix_config c;
    ck_assert_msg(unmix_manifest_load_string(yaml, "m.yaml", NULL, 0, &c) == UNMIX_OK, "%s", unmix_error_message());
    ck_assert_str_eq(unmix_method_name(c.method), o->name);
    unmix_config_free(&c);
  }
  ck_assert_int_eq(n, 4); /* moco, swav, simclr, byol */
  ck_assert_ptr_nonnull(unmix_method_ops_find("simclr"));
  ck_assert_ptr_nonnull(unmix_method_ops_find("byol"));
  ck_assert_ptr_null(unmix_method_ops_at(-1));
  ck_assert_ptr_null(unmix_method_ops_find("simsiam"));
  ck_assert_ptr_null(unmix_method_ops_find(NULL));
  struct unmix_config cfg;
  unmix_config_init_defaults(&cfg);
  for (int k = UNMIX_METHOD_MOCO; k <= UNMIX_METHOD_SWAV; k++) {
    cfg.method = (enum unmix_method_kind)k;
    struct unmix_method_spec ms;
    ck_assert_msg(unmix_method_spec_from_config(&cfg, 32, &ms) == UNMIX_OK, "%s", unmix_error_message());
    ck_assert_str_eq(ms.ops->name, unmix_method_name(cfg.method));
  }
  const char *cols[8];
  ck_assert_int_eq(unmix_method_metric_columns_all(cols, 8), 2);
  ck_assert_str_eq(cols[0], "inst_top1");
  ck_assert_str_eq(cols[1], "inst_top5");
  ck_assert_int_eq(unmix_method_metric_columns_all(cols, 1), 2); /* the count, even past cap */

  struct unmix_model_spec spec;
  cfg.method = UNMIX_METHOD_SWAV;
  cfg.swav.nmb_prototypes = 37;
  unmix_model_spec_from_config(&cfg, 32, &spec);
  ck_assert_int_eq(spec.nmb_prototypes, 37);
  cfg.method = UNMIX_METHOD_MOCO;
  unmix_model_spec_from_config(&cfg, 32, &spec);
  ck_assert_int_eq(spec.nmb_prototypes, 0);
}
END_TEST

/* The generic wrappers dispatch to the method's table: views, state entries and scalars
 * (with validation of a checkpoint's values) come from the method that was configured. */
START_TEST(test_method_dispatch) {
  struct unmix_config cfg;
  unmix_config_init_defaults(&cfg);
  cfg.model.width = 4;
  cfg.model.bn_splits = 2;
  cfg.model.dim = 8;
  cfg.moco.K = 16;
  cfg.optim.batch_size = 4;
  struct unmix_method *m = NULL;
  ck_assert_msg(unmix_method_create(&cfg, unmix_test_cpu(), 16, NULL, &m) == UNMIX_OK, "%s", unmix_error_message());
  ck_assert_str_eq(unmix_method_ops_get(m)->name, "moco");
  ck_assert_int_eq(unmix_method_views_needed(m), 2);
  struct unmix_state_entry e[8];
  ck_assert_int_eq(unmix_method_state(m, e, 8), 4);
  ck_assert_str_eq(e[0].name, "optim.momentum");
  ck_assert_str_eq(e[3].name, "moco.queue");
  const char *names[8];
  int64_t vals[8];
  ck_assert_int_eq(unmix_method_scalars(m, names, vals, 8), 3);
  ck_assert_str_eq(names[1], "moco.ptr");
  ck_assert(unmix_method_set_scalar(m, "moco.ptr", 8) == UNMIX_OK);
  ck_assert(unmix_method_set_scalar(m, "moco.ptr", 2) == UNMIX_ERR_FORMAT); /* off the keys-per-step grid */
  ck_assert(unmix_method_set_scalar(m, "moco.ptr", 16) == UNMIX_ERR_FORMAT);
  ck_assert(unmix_method_set_scalar(m, "swav.use_the_queue", 1) == UNMIX_ERR_FORMAT);
  ck_assert(unmix_method_step_flops_per_sample(m) > 0);
  unmix_method_destroy(m);

  cfg.method = UNMIX_METHOD_SWAV;
  cfg.model.arch = UNMIX_ARCH_RESNET18_BOTTLENECK;
  cfg.model.stem = UNMIX_STEM_SWAV_CIFAR;
  cfg.model.head = UNMIX_HEAD_SWAV;
  cfg.model.hidden = 8;
  cfg.model.bn_splits = 1;
  cfg.data.n_crop_groups = 2;
  cfg.data.nmb_crops[0] = 2;
  cfg.data.nmb_crops[1] = 4;
  ck_assert_msg(unmix_method_create(&cfg, unmix_test_cpu(), 16, NULL, &m) == UNMIX_OK, "%s", unmix_error_message());
  ck_assert_str_eq(unmix_method_ops_get(m)->name, "swav");
  ck_assert_int_eq(unmix_method_views_needed(m), 6);
  ck_assert_int_eq(unmix_method_state(m, e, 8), 1); /* no queue before epoch_queue_starts */
  ck_assert_int_eq(unmix_method_scalars(m, names, vals, 8), 3);
  ck_assert_str_eq(names[1], "swav.use_the_queue");
  ck_assert(unmix_method_set_scalar(m, "moco.ptr", 0) == UNMIX_ERR_FORMAT);
  unmix_method_destroy(m);
}
END_TEST

START_TEST(test_sinkhorn) {
  struct unmix_fixture *fx = load("sinkhorn.bin");
  size_t n;
  const float *scores = unmix_fixture_f32(fx, "scores", &n);
  const double *want = unmix_fixture_f64(fx, "q", NULL);
  float q[13 * 7], work[2 * 7 + 13 + 16];
  unmix_sinkhorn(unmix_test_cpu(), NULL, 13, 7, 0.05f, 3, scores, q, work);
  for (int i = 0; i < 13 * 7; i++)
    ck_assert_msg(fabs(q[i] - want[i]) <= 1e-5 * fabs(want[i]) + 1e-7, "q[%d] %.9g want %.9g", i, q[i], want[i]);
  for (int i = 0; i < 13; i++) {
    double s = 0;
    for (int j = 0; j < 7; j++) s += q[i * 7 + j];
    ck_assert_double_eq_tol(s, 1.0, 1e-5);
  }
  unmix_fixture_free(fx);
}
END_TEST

START_TEST(test_bbox_spec_example) {
  int r0, r1, c0, c1;
  double lam = unmix_rand_bbox(32, 32, 0.3, 5, 20, &r0, &r1, &c0, &c1);
  ck_assert_int_eq(r0, 0);
  ck_assert_int_eq(r1, 18);
  ck_assert_int_eq(c0, 7);
  ck_assert_int_eq(c1, 32);
  ck_assert_double_eq(lam, 0.560546875);
  /* odd cut: side 2*floor(cut/2) = cut - 1; cut <= 1 gives an empty box and lam 1 */
  lam = unmix_rand_bbox(32, 32, 1.0 - (5.5 / 32.0) * (5.5 / 32.0), 16, 16, &r0, &r1, &c0, &c1);
  ck_assert_int_eq(r1 - r0, 4);
  lam = unmix_rand_bbox(32, 32, 0.9999, 16, 16, &r0, &r1, &c0, &c1);
  ck_assert_int_eq(r1 - r0, 0);
  ck_assert_double_eq(lam, 1.0);
}
END_TEST

START_TEST(test_mix_draw_distribution) {
  /* P(global) = prob; lambda ~ Beta(beta, beta); cx, cy uniform over rows / columns */
  struct unmix_mix_config mc = {.enabled = true, .prob = 0.25f, .beta = 2.0f, .per_rank = true};
  int glob = 0, cx_hist[16] = {0};
  double lam_sum = 0, lam_sq = 0;
  const int N = 20000;
  for (int s = 0; s < N; s++) {
    struct unmix_mix_draw d;
    unmix_mix_draw(&mc, 7, s, 0, 16, 16, &d);
    glob += d.global;
    lam_sum += d.lam_drawn;
    lam_sq += d.lam_drawn * d.lam_drawn;
    if (!d.global) {
      ck_assert(d.cx >= 0 && d.cx < 16 && d.cy >= 0 && d.cy < 16);
      cx_hist[d.cx]++;
      ck_assert(d.lam >= d.lam_drawn - 1e-12 || d.lam >= 0.0);
    } else {
      ck_assert(d.lam == d.lam_drawn);
    }
  }
  ck_assert_msg(fabs(glob / (double)N - 0.25) < 0.015, "P(global) %g", glob / (double)N);
  double mean = lam_sum / N, var = lam_sq / N - mean * mean;
  ck_assert_double_eq_tol(mean, 0.5, 0.01);
  ck_assert_double_eq_tol(var, 0.05, 0.004); /* Beta(2,2): 1/20 */
  for (int i = 0; i < 16; i++) ck_assert_int_lt(abs(cx_hist[i] - (N - glob) / 16), 150);
  /* the same (seed, step, rank) gives the same draw; another rank a different one */
  struct unmix_mix_draw a, b, c;
  unmix_mix_draw(&mc, 7, 123, 0, 16, 16, &a);
  unmix_mix_draw(&mc, 7, 123, 0, 16, 16, &b);
  unmix_mix_draw(&mc, 7, 123, 1, 16, 16, &c);
  ck_assert(a.r == b.r && a.lam_drawn == b.lam_drawn && a.r != c.r);
}
END_TEST

static Suite *methods_suite(void) {
  Suite *s = suite_create("methods");
  TCase *tc = tcase_create("golden");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_method_registry);
  tcase_add_test(tc, test_method_dispatch);
  tcase_add_test(tc, test_sinkhorn);
  tcase_add_test(tc, test_bbox_spec_example);
  tcase_add_test(tc, test_mix_draw_distribution);
  tcase_add_test(tc, test_moco_sym_global);
  tcase_add_test(tc, test_moco_sym_region);
  tcase_add_test(tc, test_moco_asym_global);
  tcase_add_test(tc, test_moco_asym_region);
  tcase_add_test(tc, test_moco_sym_nomix);
  tcase_add_test(tc, test_swav_nomix);
  tcase_add_test(tc, test_swav_global);
  tcase_add_test(tc, test_swav_region);
  tcase_add_test(tc, test_swav_region_paper);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(methods_suite)
