/* Golden-formula helpers shared by the PyTorch-parity suites (see golden.h). */
#include "tests/support/golden.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double unmix_golden_uniform(uint64_t i, uint64_t stream) {
  uint64_t h = (i * 0x9E3779B1ull + (stream + 1) * 0x85EBCA77ull) & 0xFFFFFFFFull;
  h ^= h >> 15;
  h = (h * 0x2C1B3C6Dull) & 0xFFFFFFFFull;
  h ^= h >> 12;
  h = (h * 0x297A2D39ull) & 0xFFFFFFFFull;
  h ^= h >> 15;
  return (double)h / 4294967296.0;
}

void unmix_golden_pattern(float *dst, int64_t n, uint64_t stream, double amp, double offset) {
  for (int64_t i = 0; i < n; i++)
    dst[i] = (float)(offset + amp * (2.0 * unmix_golden_uniform((uint64_t)i, stream) - 1.0));
}

static bool ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && !strcmp(s + a - b, suffix);
}

static bool is_bn_param(const struct unmix_model *m, int pidx) {
  for (int i = 0; i < m->n_nodes; i++)
    if (m->nodes[i].kind == UNMIX_NODE_BN && (m->nodes[i].weight == pidx || m->nodes[i].bias == pidx)) return true;
  return false;
}

/* gen_models.param_values: t counts named_parameters() (params) or named_buffers() incl.
 * num_batches_tracked (buffers). */
static void param_values(int t, const struct unmix_param_entry *e, bool bn, float *dst) {
  if (ends_with(e->name, "running_mean")) return unmix_golden_pattern(dst, e->numel, 1000 + t, 0.1, 0.0);
  if (ends_with(e->name, "running_var")) return unmix_golden_pattern(dst, e->numel, 1000 + t, 0.3, 1.0);
  if (bn && ends_with(e->name, "weight")) return unmix_golden_pattern(dst, e->numel, t, 0.2, 1.0);
  if (e->ndim == 1) return unmix_golden_pattern(dst, e->numel, t, 0.1, 0.0);
  int64_t fan_in = e->numel / e->shape[0];
  unmix_golden_pattern(dst, e->numel, t, sqrt(6.0 / (double)fan_in), 0.0);
}

void unmix_golden_fill_model(struct unmix_model *m) {
  for (int i = 0; i < m->params.count; i++) {
    float *h = malloc(sizeof(float) * m->params.entries[i].numel);
    param_values(i, &m->params.entries[i], is_bn_param(m, i), h);
    unmix_param_store_set(&m->params, i, h);
    free(h);
  }
  for (int j = 0; j < m->buffers.count; j++) {
    float *h = malloc(sizeof(float) * m->buffers.entries[j].numel);
    param_values(3 * (j / 2) + j % 2, &m->buffers.entries[j], false, h);
    unmix_param_store_set(&m->buffers, j, h);
    free(h);
  }
}

void unmix_golden_fill_key_encoder(struct unmix_model *m) {
  for (int i = 0; i < m->params.count; i++) {
    const struct unmix_param_entry *e = &m->params.entries[i];
    float *h = malloc(sizeof(float) * e->numel);
    bool bn_w = e->ndim == 1 && is_bn_param(m, i) && ends_with(e->name, "weight");
    double amp = e->ndim > 1 ? sqrt(6.0 / (double)(e->numel / e->shape[0])) : 0.1;
    unmix_golden_pattern(h, e->numel, 500 + i, amp * (bn_w ? 0.2 : 1.0), bn_w ? 1.0 : 0.0);
    unmix_param_store_set(&m->params, i, h);
    free(h);
  }
}

float *unmix_golden_images(int n, int c, int h, int w, uint64_t stream) {
  int64_t total = (int64_t)n * c * h * w;
  float *nchw = malloc(sizeof(float) * total), *nhwc = malloc(sizeof(float) * total);
  unmix_golden_pattern(nchw, total, stream, 1.5, 0.0);
  for (int i = 0; i < n; i++)
    for (int ch = 0; ch < c; ch++)
      for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
          nhwc[(((int64_t)i * h + y) * w + x) * c + ch] = nchw[(((int64_t)i * c + ch) * h + y) * w + x];
  free(nchw);
  return nhwc;
}

int unmix_golden_check_grads(const char *what, const struct unmix_model *m, const struct unmix_fixture *fx) {
  return unmix_golden_check_grads_from(what, m, fx, 0);
}

int unmix_golden_check_grads_from(const char *what, const struct unmix_model *m, const struct unmix_fixture *fx,
                                  int first) {
  size_t np;
  const double *gs0 = unmix_fixture_f64(fx, "grad_sum", &np);
  const double *gss0 = unmix_fixture_f64(fx, "grad_sumsq", NULL);
  const double *gsmp0 = unmix_fixture_f64(fx, "grad_samples", NULL);
  ck_assert_int_eq(np, (size_t)(m->params.count - first));
  /* index fixture arrays by parameter number */
  const double *gs = gs0 - first, *gss = gss0 - first, *gsmp = gsmp0 - 3 * first;
  /* Absolute floor from the model-wide gradient scale: a tensor whose true gradient is 0
   * (a linear bias in front of BatchNorm) carries float32 noise of that scale. */
  double tot_ss = 0.0, tot_n = 0.0;
  for (int i = first; i < m->params.count; i++) {
    tot_ss += gss[i];
    tot_n += (double)m->params.entries[i].numel;
  }
  const double floor_el = 1e-5 * sqrt(tot_ss / tot_n);
  int bad = 0;
  for (int i = first; i < m->params.count; i++) {
    const struct unmix_param_entry *e = &m->params.entries[i];
    float *g = malloc(sizeof(float) * e->numel);
    unmix_param_store_get_from(&m->params, m->params.grad, i, g);
    double s = 0, ss = 0;
    for (int64_t k = 0; k < e->numel; k++) {
      s += g[k];
      ss += (double)g[k] * g[k];
    }
    const double rms = sqrt(gss[i] / (double)e->numel), ne = (double)e->numel;
    double smp[3] = {g[0], g[e->numel / 3], g[e->numel - 1]};
    bool ok = fabs(s - gs[i]) <= 1e-3 * fabs(gs[i]) + 1e-3 * sqrt(gss[i]) + floor_el * sqrt(ne) &&
              fabs(ss - gss[i]) <= 2e-3 * gss[i] + floor_el * floor_el * ne;
    for (int k = 0; k < 3; k++)
      ok = ok && fabs(smp[k] - gsmp[3 * i + k]) <= 1e-3 * fabs(gsmp[3 * i + k]) + 1e-3 * rms + floor_el;
    if (!ok) {
      fprintf(stderr,
              "%s: gradient of %s: sum %.8g want %.8g, sumsq %.8g want %.8g, samples %.6g %.6g %.6g want %.6g %.6g "
              "%.6g\n",
              what, e->name, s, gs[i], ss, gss[i], smp[0], smp[1], smp[2], gsmp[3 * i], gsmp[3 * i + 1],
              gsmp[3 * i + 2]);
      bad++;
    }
    free(g);
  }
  return bad;
}

int unmix_golden_check_buffer_sums(const char *what, const struct unmix_model *m, const struct unmix_fixture *fx,
                                   const char *entry) {
  size_t nb;
  const double *bs = unmix_fixture_f64(fx, entry, &nb);
  ck_assert_int_eq(nb, (size_t)m->buffers.count);
  int bad = 0;
  for (int j = 0; j < m->buffers.count; j++) {
    const struct unmix_param_entry *e = &m->buffers.entries[j];
    float *v = malloc(sizeof(float) * e->numel);
    unmix_param_store_get(&m->buffers, j, v);
    double s = 0;
    for (int64_t k = 0; k < e->numel; k++) s += v[k];
    if (fabs(s - bs[j]) > 1e-4 * fabs(bs[j]) + 1e-4) {
      fprintf(stderr, "%s: %s sum %.8g want %.8g\n", what, e->name, s, bs[j]);
      bad++;
    }
    free(v);
  }
  return bad;
}
