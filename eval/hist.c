/* Common-bin weight histograms (numpy.histogram semantics with a shared range), their tidy
 * CSV, and the selection of conv layers by 1-based index. See eval/hist.h. */
#include "eval/hist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/io/csv.h"

const int unmix_conv_layer_default_indices[UNMIX_CONV_LAYER_DEFAULT_COUNT] = {1, 10, 20, 30, 40, 50};

struct unmix_hist_params unmix_hist_params_default(void) {
  struct unmix_hist_params p = {.nbins = 100, .clip_quantile = 0.0, .symmetric = false};
  return p;
}

void unmix_hist_free(struct unmix_hist *h) {
  if (!h) return;
  free(h->edges);
  free(h->counts);
  free(h->density);
  free(h->below);
  free(h->above);
  if (h->labels)
    for (int s = 0; s < h->nseries; s++) free(h->labels[s]);
  free(h->labels);
  memset(h, 0, sizeof *h);
}

static int cmp_float(const void *a, const void *b) {
  float x = *(const float *)a, y = *(const float *)b;
  return (x > y) - (x < y);
}

/* numpy.quantile(v, q) with the default 'linear' method, on a sorted copy. */
static unmix_status quantiles(const float *v, size_t n, double q, double *qlo, double *qhi) {
  float *c = malloc(n * sizeof(float));
  if (!c) return unmix_error_set(UNMIX_ERR_NOMEM, "histogram: out of memory for %zu values", n);
  memcpy(c, v, n * sizeof(float));
  qsort(c, n, sizeof(float), cmp_float);
  double qs[2] = {q, 1.0 - q}, out[2];
  for (int t = 0; t < 2; t++) {
    double h = (double)(n - 1) * qs[t];
    size_t i = (size_t)floor(h);
    double frac = h - (double)i;
    out[t] = i + 1 < n ? (double)c[i] + frac * ((double)c[i + 1] - (double)c[i]) : (double)c[n - 1];
  }
  free(c);
  *qlo = out[0];
  *qhi = out[1];
  return UNMIX_OK;
}

unmix_status unmix_hist_common_bins(const struct unmix_hist_series *series, int nseries,
                                    const struct unmix_hist_params *p, struct unmix_hist *out) {
  if (!out || !p) return unmix_error_set(UNMIX_ERR_ARG, "histogram: missing parameters or output");
  memset(out, 0, sizeof *out);
  if (!series || nseries < 1) return unmix_error_set(UNMIX_ERR_ARG, "histogram: no arrays given");
  if (p->nbins < 1) return unmix_error_set(UNMIX_ERR_ARG, "histogram: nbins = %d must be >= 1", p->nbins);
  if (!(p->clip_quantile >= 0.0 && p->clip_quantile < 0.5))
    return unmix_error_set(UNMIX_ERR_ARG, "histogram: clip_quantile = %g must lie in [0, 0.5)", p->clip_quantile);
  for (int s = 0; s < nseries; s++) {
    const char *lab = series[s].label ? series[s].label : "(unlabelled)";
    if (series[s].n == 0 || !series[s].values)
      return unmix_error_set(UNMIX_ERR_ARG, "histogram: array '%s' has no values", lab);
    for (size_t i = 0; i < series[s].n; i++)
      if (!isfinite(series[s].values[i]))
        return unmix_error_set(UNMIX_ERR_ARG, "histogram: array '%s' has a non-finite value (%g) at index %zu", lab,
                               (double)series[s].values[i], i);
  }

  /* the common range */
  double lo = INFINITY, hi = -INFINITY;
  for (int s = 0; s < nseries; s++) {
    double a = 0.0, b = 0.0;
    if (p->clip_quantile > 0.0) {
      UNMIX_TRY(quantiles(series[s].values, series[s].n, p->clip_quantile, &a, &b));
    } else {
      a = b = series[s].values[0];
      for (size_t i = 1; i < series[s].n; i++) {
        double v = series[s].values[i];
        a = v < a ? v : a;
        b = v > b ? v : b;
      }
    }
    lo = a < lo ? a : lo;
    hi = b > hi ? b : hi;
  }
  if (p->symmetric) {
    double m = fabs(lo) > fabs(hi) ? fabs(lo) : fabs(hi);
    lo = -m;
    hi = m;
  }
  if (lo == hi) {
    lo -= 0.5;
    hi += 0.5;
  }

  const int nb = p->nbins;
  out->nbins = nb;
  out->nseries = nseries;
  out->lo = lo;
  out->hi = hi;
  out->edges = malloc(((size_t)nb + 1) * sizeof(double));
  out->counts = calloc((size_t)nseries * nb, sizeof(int64_t));
  out->density = calloc((size_t)nseries * nb, sizeof(double));
  out->below = calloc((size_t)nseries, sizeof(int64_t));
  out->above = calloc((size_t)nseries, sizeof(int64_t));
  out->labels = calloc((size_t)nseries, sizeof(char *));
  if (!out->edges || !out->counts || !out->density || !out->below || !out->above || !out->labels) {
    unmix_hist_free(out);
    return unmix_error_set(UNMIX_ERR_NOMEM, "histogram: out of memory for %d arrays x %d bins", nseries, nb);
  }
  const double step = (hi - lo) / nb, norm = nb / (hi - lo);
  for (int b = 0; b < nb; b++) out->edges[b] = b * step + lo;
  out->edges[nb] = hi;

  for (int s = 0; s < nseries; s++) {
    out->labels[s] = strdup(series[s].label ? series[s].label : "");
    if (!out->labels[s]) {
      unmix_hist_free(out);
      return unmix_error_set(UNMIX_ERR_NOMEM, "histogram: out of memory");
    }
    int64_t *cnt = out->counts + (size_t)s * nb;
    int64_t in_range = 0;
    for (size_t i = 0; i < series[s].n; i++) {
      double v = series[s].values[i];
      if (v < lo) {
        out->below[s]++;
        continue;
      }
      if (v > hi) {
        out->above[s]++;
        continue;
      }
      /* numpy: index from the scaled offset, then corrected against the stored edges so
       * that a value always lands in [edges[b], edges[b+1]) (the last bin closed) */
      int b = (int)((v - lo) * norm);
      if (b >= nb) b = nb - 1;
      if (b > 0 && v < out->edges[b]) b--;
      else if (b < nb - 1 && v >= out->edges[b + 1]) b++;
      cnt[b]++;
      in_range++;
    }
    for (int b = 0; b < nb; b++)
      out->density[(size_t)s * nb + b] =
          in_range > 0 ? (double)cnt[b] / ((double)in_range * (out->edges[b + 1] - out->edges[b])) : 0.0;
  }
  return UNMIX_OK;
}

unmix_status unmix_hist_write_csv(FILE *f, const char *layer, const struct unmix_hist *h, bool header) {
  if (!f || !h || !h->edges) return unmix_error_set(UNMIX_ERR_ARG, "histogram CSV: missing stream or histogram");
  if (header) fputs("layer,checkpoint,bin_lo,bin_hi,count,density\n", f);
  for (int s = 0; s < h->nseries; s++)
    for (int b = 0; b < h->nbins; b++) {
      unmix_csv_write_field(f, layer);
      fputc(',', f);
      unmix_csv_write_field(f, h->labels[s]);
      fprintf(f, ",%.10g,%.10g,%lld,%.9g\n", h->edges[b], h->edges[b + 1], (long long)h->counts[(size_t)s * h->nbins + b],
              h->density[(size_t)s * h->nbins + b]);
    }
  if (fflush(f) != 0 || ferror(f))
    return unmix_error_set(UNMIX_ERR_IO, "histogram CSV: write failed for layer '%s'", layer ? layer : "");
  return UNMIX_OK;
}

bool unmix_is_conv_weight(const char *name, int ndim) {
  if (!name || ndim != 4) return false;
  size_t n = strlen(name);
  return n >= 7 && strcmp(name + n - 7, ".weight") == 0;
}

unmix_status unmix_conv_layer_select(const char *const *names, int nnames, const int *indices, int nindices,
                                     const char **out) {
  if (!names || !out) return unmix_error_set(UNMIX_ERR_ARG, "conv layer selection: missing names or output");
  if (!indices) {
    indices = unmix_conv_layer_default_indices;
    nindices = UNMIX_CONV_LAYER_DEFAULT_COUNT;
  }
  for (int i = 0; i < nindices; i++) {
    int k = indices[i];
    if (k < 1 || k > nnames)
      return unmix_error_set(UNMIX_ERR_ARG,
                             "conv layer index %d is out of range: the model has %d conv layers (valid indices "
                             "1..%d)",
                             k, nnames, nnames);
    out[i] = names[k - 1];
  }
  return UNMIX_OK;
}
