/* Weight histograms for the paper's Fig. 5 (conv-weight distributions of baseline vs Un-Mix
 * checkpoints, one panel per selected layer): common bin edges over several arrays, counts
 * and densities per array, a tidy CSV writer, and the choice of conv layers by index. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/util/error.h"

/* One array to histogram (e.g. one checkpoint's weights of one layer). */
struct unmix_hist_series {
  const char *label; /* checkpoint label, written to the CSV */
  const float *values;
  size_t n;
};

struct unmix_hist_params {
  int nbins;            /* >= 1 (default 100) */
  double clip_quantile; /* 0 = range [min, max] over all arrays; q in (0, 0.5): range
                         * [min_a Q_a(q), max_a Q_a(1-q)], Q_a = linear-interpolated quantile of
                         * array a (numpy's default), so long tails do not squash the bulk */
  bool symmetric;       /* range [-m, m], m = max(|lo|, |hi|) of the range above */
};
/* nbins 100, no clipping, not symmetric. */
struct unmix_hist_params unmix_hist_params_default(void);

/* Semantics follow numpy.histogram with a shared range: nbins equal bins, edges[i] =
 * lo + i*(hi-lo)/nbins (edges[nbins] = hi exactly); bins are [edge_i, edge_i+1) except the
 * last, which is closed; values outside [lo, hi] (only with clipping) are not counted but
 * tallied in below/above; density = count / (counted_a * bin width), so each array's density
 * integrates to 1 over the range (numpy density=True, matplotlib hist(density=True)). A
 * degenerate range lo == hi becomes [lo - 0.5, hi + 0.5] (numpy). Edges in double. */
struct unmix_hist {
  int nbins, nseries;
  double lo, hi;
  double *edges;    /* nbins + 1 */
  int64_t *counts;  /* (nseries, nbins) */
  double *density;  /* (nseries, nbins) */
  int64_t *below;   /* (nseries) values < lo */
  int64_t *above;   /* (nseries) values > hi */
  char **labels;    /* (nseries) copies */
};

/* Errors (UNMIX_ERR_ARG naming the array): no arrays, an empty array, a NaN/Inf value
 * (with its index), nbins < 1, clip_quantile outside [0, 0.5). */
unmix_status unmix_hist_common_bins(const struct unmix_hist_series *series, int nseries,
                                    const struct unmix_hist_params *p, struct unmix_hist *out);
void unmix_hist_free(struct unmix_hist *h);

/* Writes one row per (array, bin): layer,checkpoint,bin_lo,bin_hi,count,density (with a
 * header line first when `header`). Fields with commas, quotes or line breaks are quoted
 * (RFC 4180). UNMIX_ERR_IO when the stream reports an error. */
unmix_status unmix_hist_write_csv(FILE *f, const char *layer, const struct unmix_hist *h, bool header);

/* ---- choosing layers --------------------------------------------------------------- */
/* The paper's panels: conv layers 1, 10, 20, 30, 40, 50 (ResNet-50 has 53). */
#define UNMIX_CONV_LAYER_DEFAULT_COUNT 6
extern const int unmix_conv_layer_default_indices[UNMIX_CONV_LAYER_DEFAULT_COUNT];

/* True for a conv weight in a torchvision state dict: a 4-D tensor named "*.weight". */
bool unmix_is_conv_weight(const char *name, int ndim);

/* Given the model's conv weight names in torchvision module order (conv1.weight,
 * layer1.0.conv1.weight, ..., layer1.0.downsample.0.weight, ...) and 1-based indices
 * (NULL = the defaults above, nindices ignored), stores names[index - 1] in out[i] (pointers
 * into names). UNMIX_ERR_ARG naming the index and the number of conv layers when an index is
 * outside 1..nnames. */
unmix_status unmix_conv_layer_select(const char *const *names, int nnames, const int *indices, int nindices,
                                     const char **out);
