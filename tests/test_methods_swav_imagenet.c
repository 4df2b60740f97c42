/* One SwAV-ImageNet (+ Un-Mix) step against the float64 PyTorch transcription of
 * UnMix_SwAV/for_ImageNet/main_swav_unmix.py (tests/golden/gen/gen_swav_imagenet.py):
 * multi-resolution crops (2 x 32 px + 2 x 16 px, backbone per size, head on all), Un-Mix
 * pairs with lambda chained over the pairs, the simplified Sinkhorn, the queue (used and
 * refilled by the three loss calls); losses, d loss / d scores, every parameter gradient and
 * the queue after the step, to fp32 rounding. Also the simplified Sinkhorn alone, prototype
 * freezing. */
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io/manifest.h"
#include "core/methods/common.h"
#include "tests/support/golden.h"
#include "tests/support/testutil.h"

static struct unmix_fixture *load(const char *name) {
  char rel[256], path[1024];
  snprintf(rel, sizeof rel, "tests/golden/%s", name);
  return unmix_fixture_load(unmix_test_src_path(rel, path, sizeof path));
}

static bool near(double a, double b, double rel) { return fabs(a - b) <= rel * fabs(b) + 1e-6; }

/* The fixture's configuration: ResNet-50 (imagenet stem) at the fixture width, SwAV head. */
static void config_of(const struct unmix_fixture *fx, struct unmix_config *cfg) {
  unmix_config_init_defaults(cfg);
  cfg->method = UNMIX_METHOD_SWAV;
  cfg->model.arch = UNMIX_ARCH_RESNET50;
  cfg->model.stem = UNMIX_STEM_IMAGENET;
  cfg->model.width = (int)unmix_fixture_scalar(fx, "width");
  cfg->model.bn_splits = 1;
  cfg->model.head = UNMIX_HEAD_SWAV;
  cfg->model.dim = (int)unmix_fixture_scalar(fx, "dim");
  cfg->model.hidden = (int)unmix_fixture_scalar(fx, "hidden");
  cfg->swav.nmb_prototypes = (int)unmix_fixture_scalar(fx, "prototypes");
  cfg->swav.temperature = (float)unmix_fixture_scalar(fx, "temperature");
  cfg->swav.epsilon = (float)unmix_fixture_scalar(fx, "epsilon");
  cfg->swav.sinkhorn_iterations = 3;
  cfg->swav.sinkhorn = UNMIX_SWAV_SINKHORN_SIMPLIFIED;
  cfg->swav.n_crops_for_assign = 2;
  cfg->swav.crops_for_assign[0] = 0;
  cfg->swav.crops_for_assign[1] = 1;
  cfg->swav.queue_length = (int)unmix_fixture_scalar(fx, "queue_len");
  cfg->swav.epoch_queue_starts = 0;
  cfg->swav.freeze_prototypes_niters = 0;
  cfg->unmix.enabled = unmix_fixture_scalar(fx, "unmix") != 0;
  cfg->optim.kind = UNMIX_OPTIM_LARC;
  cfg->optim.batch_size = (int)unmix_fixture_scalar(fx, "bs");
  size_t nc;
  const int32_t *sizes = unmix_fixture_i32(fx, "sizes", &nc);
  ck_assert_int_eq(nc, 4);
  cfg->data.n_crop_groups = 2;
  cfg->data.nmb_crops[0] = cfg->data.nmb_crops[1] = 2;
  cfg->data.size_crops[0] = sizes[0];
  cfg->data.size_crops[1] = sizes[2];
  cfg->data.min_scale[0] = cfg->data.min_scale[1] = 0.5f;
  cfg->data.max_scale[0] = cfg->data.max_scale[1] = 1.0f;
}

/* Every parameter gradient: the checksums of tests/support/golden.c (sum, sum of squares, three
 * samples) against float64, each within the golden tolerance or within 8x PyTorch's own
 * float32 distance from float64 for that number (stored in the fixture), whichever is larger:
 * a 50-layer net at width 4 has BatchNorm channels whose gamma gradients cancel, and our
 * summation orders (im2col + BLAS, our BN reductions) round differently from PyTorch's. A
 * semantic error (a wrong lambda, box, group or code) moves these numbers by orders more. */
static int check_grads(const char *what, const struct unmix_model *m, const struct unmix_fixture *fx) {
  size_t np;
  const double *gs = unmix_fixture_f64(fx, "grad_sum", &np), *gss = unmix_fixture_f64(fx, "grad_sumsq", NULL);
  const double *gsmp = unmix_fixture_f64(fx, "grad_samples", NULL);
  const double *ts = unmix_fixture_f64(fx, "grad32_sum", NULL), *tss = unmix_fixture_f64(fx, "grad32_sumsq", NULL);
  const double *tsmp = unmix_fixture_f64(fx, "grad32_samples", NULL);
  ck_assert_int_eq(np, (size_t)m->params.count);
  double tot_ss = 0.0, tot_n = 0.0;
  for (int i = 0; i < m->params.count; i++) tot_ss += gss[i], tot_n += (double)m->params.entries[i].numel;
  const double floor_el = 1e-5 * sqrt(tot_ss / tot_n);
  int bad = 0;
  for (int i = 0; i < m->params.count; i++) {
    const struct unmix_param_entry *e = &m->params.entries[i];
    float *g = malloc(sizeof(float) * e->numel);
    unmix_param_store_get_from(&m->params, m->params.grad, i, g);
    double s = 0, ss = 0;
    for (int64_t k = 0; k < e->numel; k++) s += g[k], ss += (double)g[k] * g[k];
    const double ne = (double)e->numel, rms = sqrt(gss[i] / ne);
    const double smp[3] = {g[0], g[e->numel / 3], g[e->numel - 1]};
    bool ok = fabs(s - gs[i]) <= fmax(1e-3 * fabs(gs[i]) + 1e-3 * sqrt(gss[i]) + floor_el * sqrt(ne),
                                      8.0 * fabs(ts[i] - gs[i])) &&
              fabs(ss - gss[i]) <= fmax(2e-3 * gss[i] + floor_el * floor_el * ne, 8.0 * fabs(tss[i] - gss[i]));
    for (int k = 0; k < 3; k++)
      ok = ok && fabs(smp[k] - gsmp[3 * i + k]) <= fmax(1e-3 * fabs(gsmp[3 * i + k]) + 1e-3 * rms + floor_el,
                                                        8.0 * fabs(tsmp[3 * i + k] - gsmp[3 * i + k]));
    if (!ok) {
      fprintf(stderr, "%s: gradient of %s: sum %.8g want %.8g (torch f32 %.8g), sumsq %.8g want %.8g, samples %.6g %.6g "
              "%.6g want %.6g %.6g %.6g (torch f32 %.6g %.6g %.6g)\n", what, e->name, s, gs[i], ts[i], ss, gss[i],
              smp[0], smp[1], smp[2], gsmp[3 * i], gsmp[3 * i + 1], gsmp[3 * i + 2], tsmp[3 * i], tsmp[3 * i + 1],
              tsmp[3 * i + 2]);
      bad++;
    }
    free(g);
  }
  return bad;
}

static float *queue_of(struct unmix_method *m, int64_t *numel) {
  struct unmix_state_entry e[4];
  int n = unmix_method_state(m, e, 4);
  for (int i = 0; i < n && i < 4; i++)
    if (!strcmp(e[i].name, "swav.queue")) {
      *numel = e[i].numel;
      return e[i].data;
    }
  return NULL;
}

static void run_step(const char *fixture) {
  struct unmix_fixture *fx = load(fixture);
  struct unmix_config cfg;
  config_of(fx, &cfg);
  const int bs = cfg.optim.batch_size, P = cfg.swav.nmb_prototypes;
  struct unmix_method *m = NULL;
  ck_assert_msg(unmix_method_create(&cfg, unmix_test_cpu(), cfg.data.size_crops[0], NULL, &m) == UNMIX_OK, "%s",
                unmix_error_message());
  const struct unmix_backend *be = m->be;
  unmix_golden_fill_model(m->model);
  unmix_method_begin_epoch(m, 0);
  size_t nqb = 0;
  if (cfg.swav.queue_length > 0) { /* the fixture's pre-filled queue (its last rows non-zero: in use) */
    int64_t nq = 0;
    float *q = queue_of(m, &nq);
    ck_assert_ptr_nonnull(q);
    const double *qb = unmix_fixture_f64(fx, "queue_before", &nqb);
    ck_assert_int_eq((int64_t)nqb, nq);
    float *h = malloc(sizeof(float) * nqb);
    for (size_t i = 0; i < nqb; i++) h[i] = (float)qb[i];
    be->memcpy_h2d(q, h, sizeof(float) * nqb);
    free(h);
  }
  const int32_t *streams = unmix_fixture_i32(fx, "streams", NULL);
  const int32_t *sizes = unmix_fixture_i32(fx, "sizes", NULL);
  struct unmix_views v = {.n = bs, .nviews = 4};
  for (int c = 0; c < 4; c++) {
    v.size[c] = sizes[c];
    v.view[c] = unmix_golden_images(bs, 3, sizes[c], sizes[c], (uint64_t)streams[c]);
  }
  struct unmix_forced_draws f;
  memset(&f, 0, sizeof f);
  f.mix.global = unmix_fixture_scalar(fx, "global") != 0;
  f.mix.lam_drawn = unmix_fixture_scalar(fx, "lam_drawn");
  const int32_t *cen = unmix_fixture_i32(fx, "centres", NULL);
  f.n_centres = 2;
  for (int p = 0; p < 2; p++) f.centre[p][0] = cen[2 * p], f.centre[p][1] = cen[2 * p + 1];
  struct unmix_step_stats st;
  memset(&st, 0, sizeof st);
  ck_assert_msg(unmix_method_step_forced(m, &v, 0, 0, 0.0f, &f, &st) == UNMIX_OK, "%s", unmix_error_message());
  /* fp32 rounding, measured by PyTorch's own float32 step against float64 (stored in the
   * fixture): within 4x of it (other summation orders), and at least 1e-5 / 1e-4 */
  const double tol_l = fmax(1e-5, 4.0 * unmix_fixture_scalar(fx, "f32_loss_err"));
  const double tol_ds = fmax(1e-4, 4.0 * unmix_fixture_scalar(fx, "f32_dscores_err"));
  const double *L = unmix_fixture_f64(fx, "losses", NULL);
  for (int t = 0; t < 3; t++)
    ck_assert_msg(near(st.terms[t], L[t], tol_l), "%s term %d: %.9g want %.9g", fixture, t, st.terms[t], L[t]);
  ck_assert_msg(near(st.loss, L[3], tol_l), "%s total %.9g want %.9g", fixture, st.loss, L[3]);
  if (cfg.unmix.enabled)
    ck_assert_msg(fabs(st.lam - unmix_fixture_scalar(fx, "lam")) < 1e-12, "%s: lambda %.9g want %.9g (chained)",
                  fixture, st.lam, unmix_fixture_scalar(fx, "lam"));
  /* d loss / d scores over every input, in the forward order [x0 x1 m0 | x2 x3 m2] */
  size_t nd;
  const double *want_ds = unmix_fixture_f64(fx, "dscores", &nd);
  int rows;
  const float *ds = unmix_swav_last_dscores(m, &rows);
  ck_assert_int_eq(nd, (size_t)rows * P);
  float *wf = malloc(sizeof(float) * nd);
  for (size_t i = 0; i < nd; i++) wf[i] = (float)want_ds[i];
  double e = unmix_nmse(ds, wf, nd);
  ck_assert_msg(e <= tol_ds, "%s: d loss / d scores normalised error %.3g > %.3g", fixture, e, tol_ds);
  free(wf);
  ck_assert_msg(check_grads(fixture, m->model, fx) == 0, "%s: gradients differ", fixture);
  if (cfg.swav.queue_length > 0) {
    int64_t nq = 0;
    float *q = queue_of(m, &nq);
    size_t na;
    const double *qa = unmix_fixture_f64(fx, "queue_after", &na);
    ck_assert_int_eq((int64_t)na, nq);
    float *h = malloc(sizeof(float) * na), *w = malloc(sizeof(float) * na);
    be->memcpy_d2h(h, q, sizeof(float) * na);
    for (size_t i = 0; i < na; i++) w[i] = (float)qa[i];
    /* forward embeddings: float32 rounding as the scores, within 8x PyTorch's own (or 1e-4) */
    const double eq = unmix_nmse(h, w, na), tol_q = fmax(1e-4, 8.0 * unmix_fixture_scalar(fx, "f32_queue_err"));
    ck_assert_msg(eq <= tol_q, "%s: queue after the step: normalised error %.3g > %.3g", fixture, eq, tol_q);
    free(h);
    free(w);
  }
  for (int c = 0; c < 4; c++) free((void *)v.view[c]);
  unmix_method_destroy(m);
  unmix_config_free(&cfg);
  unmix_fixture_free(fx);
}

START_TEST(test_swin_region) { run_step("method_swin_region.bin"); }
END_TEST
START_TEST(test_swin_global) { run_step("method_swin_global.bin"); }
END_TEST
START_TEST(test_swin_nomix) { run_step("method_swin_nomix.bin"); }
END_TEST

/* SyncBN as each script runs it: --sync_bn apex (process groups of 8 consecutive GPUs,
 * --syncbn_process_group_size's default) on the 64/128-GPU scripts, --sync_bn pytorch (all 4
 * GPUs) on the bs256 ones. */
START_TEST(test_manifest_sync_bn_groups) {
  char dir[1024];
  unmix_test_src_path("configs/swav_imagenet", dir, sizeof dir);
  DIR *d = opendir(dir);
  ck_assert_msg(d != NULL, "%s", dir);
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    const size_t len = strlen(e->d_name);
    if (len < 6 || strcmp(e->d_name + len - 5, ".yaml")) continue;
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    struct unmix_config cfg;
    ck_assert_msg(unmix_manifest_load(path, NULL, 0, &cfg) == UNMIX_OK, "%s: %s", path, unmix_error_message());
    const int want = strstr(e->d_name, "_bs256") ? 0 : 8;
    ck_assert_msg(cfg.model.sync_bn && cfg.model.sync_bn_group == want, "%s: sync_bn %d, sync_bn_group %d (want %d)",
                  e->d_name, cfg.model.sync_bn, cfg.model.sync_bn_group, want);
    unmix_config_free(&cfg);
    n++;
  }
  closedir(d);
  ck_assert_int_eq(n, 18);
}
END_TEST

START_TEST(test_sinkhorn_simplified) {
  struct unmix_fixture *fx = load("sinkhorn_simplified.bin");
  size_t n;
  const float *scores = unmix_fixture_f32(fx, "scores", &n);
  const double *want = unmix_fixture_f64(fx, "q", NULL);
  ck_assert_int_eq(n, 13 * 7);
  float q[13 * 7], work[2 * 7 + 13 + 16];
  ck_assert(unmix_sinkhorn_simplified(unmix_test_cpu(), NULL, 13, 7, 0.05f, 3, scores, q, work) == UNMIX_OK);
  for (int i = 0; i < 13 * 7; i++)
    ck_assert_msg(fabs(q[i] - want[i]) <= 1e-5 * fabs(want[i]) + 1e-7, "q[%d] %.9g want %.9g", i, q[i], want[i]);
  unmix_fixture_free(fx);
}
END_TEST

/* freeze_prototypes_niters: the prototypes keep their (re-normalised) values while
 * step < niters, and move after it; the rest of the network moves from the first step. */
START_TEST(test_prototypes_frozen) {
  struct unmix_fixture *fx = load("method_swin_nomix.bin");
  struct unmix_config cfg;
  config_of(fx, &cfg);
  cfg.swav.freeze_prototypes_niters = 1;
  const int bs = cfg.optim.batch_size;
  struct unmix_method *m = NULL;
  ck_assert_msg(unmix_method_create(&cfg, unmix_test_cpu(), 32, NULL, &m) == UNMIX_OK, "%s", unmix_error_message());
  unmix_golden_fill_model(m->model);
  const int pi = unmix_param_store_find(&m->model->params, "prototypes.weight");
  const int ci = unmix_param_store_find(&m->model->params, "conv1.weight");
  ck_assert(pi >= 0 && ci >= 0);
  const int64_t np = m->model->params.entries[pi].numel, nc = m->model->params.entries[ci].numel;
  float *p0 = malloc(sizeof(float) * np), *p1 = malloc(sizeof(float) * np);
  float *c0 = malloc(sizeof(float) * nc), *c1 = malloc(sizeof(float) * nc);
  const int32_t *sizes = unmix_fixture_i32(fx, "sizes", NULL);
  struct unmix_views v = {.n = bs, .nviews = 4};
  for (int c = 0; c < 4; c++) {
    v.size[c] = sizes[c];
    v.view[c] = unmix_golden_images(bs, 3, sizes[c], sizes[c], 9900 + (uint64_t)c);
  }
  struct unmix_step_stats st;
  for (int step = 0; step < 2; step++) {
    ck_assert_msg(unmix_method_step(m, &v, step, 0, 0.5f, &st) == UNMIX_OK, "%s", unmix_error_message());
    if (step == 0) {
      unmix_param_store_get(&m->model->params, pi, p0);
      unmix_param_store_get(&m->model->params, ci, c0);
    }
  }
  unmix_param_store_get(&m->model->params, pi, p1);
  unmix_param_store_get(&m->model->params, ci, c1);
  /* after step 0 (frozen) the prototypes are the normalised start; step 1 (not frozen) moves
   * them beyond the re-normalisation: compare row directions */
  double moved = 0, conv_moved = 0;
  for (int64_t i = 0; i < np; i++) moved += fabs((double)p1[i] - p0[i]);
  for (int64_t i = 0; i < nc; i++) conv_moved += fabs((double)c1[i] - c0[i]);
  ck_assert_msg(moved > 1e-6, "prototypes did not move once unfrozen (%.3g)", moved);
  ck_assert_msg(conv_moved > 1e-6, "conv1 did not move (%.3g)", conv_moved);
  /* a second method frozen for 2 steps: the prototypes stay exactly at their normalised start */
  struct unmix_method *m2 = NULL;
  cfg.swav.freeze_prototypes_niters = 2;
  ck_assert(unmix_method_create(&cfg, unmix_test_cpu(), 32, NULL, &m2) == UNMIX_OK);
  unmix_golden_fill_model(m2->model);
  for (int step = 0; step < 2; step++) ck_assert(unmix_method_step(m2, &v, step, 0, 0.5f, &st) == UNMIX_OK);
  unmix_param_store_get(&m2->model->params, pi, p1);
  for (int64_t i = 0; i < np; i++) /* only the per-step re-normalisation (a rounding) */
    ck_assert_msg(fabs((double)p1[i] - p0[i]) <= 1e-6, "frozen prototype %lld changed: %.9g -> %.9g", (long long)i,
                  p0[i], p1[i]);
  for (int c = 0; c < 4; c++) free((void *)v.view[c]);
  free(p0);
  free(p1);
  free(c0);
  free(c1);
  unmix_method_destroy(m);
  unmix_method_destroy(m2);
  unmix_config_free(&cfg);
  unmix_fixture_free(fx);
}
END_TEST

static Suite *swav_imagenet_suite(void) {
  Suite *s = suite_create("methods_swav_imagenet");
  TCase *tc = tcase_create("golden");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_sinkhorn_simplified);
  tcase_add_test(tc, test_swin_region);
  tcase_add_test(tc, test_swin_global);
  tcase_add_test(tc, test_swin_nomix);
  tcase_add_test(tc, test_prototypes_frozen);
  tcase_add_test(tc, test_manifest_sync_bn_groups);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(swav_imagenet_suite)
