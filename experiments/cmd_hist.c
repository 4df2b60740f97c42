/* `unmix hist CKPT [CKPT...]`: the paper's Figure 5 - histograms of chosen conv layers'
 * weights of several checkpoints (baseline vs Un-Mix) on common bins (eval/hist.h), as a
 * tidy CSV with one row per (layer, checkpoint, bin). */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io/manifest.h"
#include "eval/ckpt_model.h"
#include "eval/hist.h"
#include "experiments/commands.h"
#include "experiments/evalcli.h"

#define MAX_LAYERS 64
#define MAX_CKPTS 32

struct hist_opts {
  const char *labels[MAX_CKPTS];
  int nlabels, layers[MAX_LAYERS], nlayers;
  long long bins;
  double clip;
  bool symmetric;
  const char *out_path;
};
#define HO(f) offsetof(struct hist_opts, f)
static const struct unmix_opt g_opts[] = {
    {.name = "label", .type = UNMIX_OPT_STRINGS, .arg = "NAME", .off = HO(labels), .cap = MAX_CKPTS,
     .count_off = HO(nlabels), .def_doc = "run name",
     .help = "label of the next checkpoint, in order (repeatable)"},
    {.name = "layers", .type = UNMIX_OPT_INT_LIST, .arg = "A,B,...", .range = UNMIX_OPT_IN(1, 100000),
     .off = HO(layers), .cap = MAX_LAYERS, .count_off = HO(nlayers), .def_doc = "as above",
     .help = "1-based conv layers"},
    {.name = "bins", .type = UNMIX_OPT_INT, .arg = "N", .range = UNMIX_OPT_IN(1, 1 << 20), .off = HO(bins),
     .def = "100", .help = "bins per layer"},
    {.name = "clip", .type = UNMIX_OPT_FLOAT, .arg = "Q", .range = {0, 0.5, false, true}, .off = HO(clip),
     .help = "range from the Q and 1-Q quantiles instead of min..max"},
    {.name = "symmetric", .type = UNMIX_OPT_FLAG, .off = HO(symmetric), .help = "range symmetric around 0"},
    {.name = "out", .type = UNMIX_OPT_STRING, .arg = "FILE", .off = HO(out_path), .def = "hist.csv",
     .help = "tidy CSV: layer (\"<index>:<tensor>\"), checkpoint (label), bin_lo,\n"
             "bin_hi, count, density (density integrates to 1 per layer and label)"},
};

const struct unmix_evalcmd unmix_evalcmd_hist = {
    "hist",
    "usage: unmix hist CKPT [CKPT...] [options]\n\n"
    "Weight histograms of conv layers (the paper's Figure 5) with common bins across the checkpoints,\n"
    "so their densities can be overlaid. Conv layers are numbered from 1 in torchvision module order\n"
    "(conv1, layer1.0.conv1, ..., with each block's downsample conv after its convs). The paper's\n"
    "panels are layers 1,10,20,30,40,50 of a ResNet-50 (53 convs); for a smaller network the default\n"
    "is 6 layers spread evenly from the first to the last (ResNet-18: 1,5,9,12,16,20).\n\n"
    "example: unmix hist results/runs/cifar10_moco_sym/checkpoint.safetensors "
    "results/runs/cifar10_moco_sym_unmix/checkpoint.safetensors\n",
    g_opts, (int)(sizeof g_opts / sizeof g_opts[0]),
    .common = UNMIX_EVALCLI_PLAIN};

int unmix_cmd_hist(int argc, char **argv) {
  struct unmix_evalcli cli;
  struct hist_opts o = {.nlabels = 0};
  char **pos = unmix_xmalloc(sizeof(char *) * (size_t)(argc + 1));
  int npos = 0;
  int pr = unmix_evalcli_parse(&unmix_evalcmd_hist, &o, &cli, argc, argv, pos, &npos);
  if (pr >= 0) {
    free(pos);
    return pr;
  }
  const int nck = npos;
  if (nck < 1 || nck > MAX_CKPTS) {
    fprintf(stderr, "unmix hist: expected 1..%d CKPT (got %d)\n\n", MAX_CKPTS, nck);
    unmix_evalcli_usage(&unmix_evalcmd_hist, stderr);
    free(pos);
    return 2;
  }
  if (o.nlabels > nck) {
    fprintf(stderr, "unmix hist: %d --label for %d checkpoints\n", o.nlabels, nck);
    free(pos);
    return 2;
  }
  const char **labels = o.labels;
  const int nlabels = o.nlabels;
  int nlayers = o.nlayers, *layers = o.layers;
  const long long bins = o.bins;
  const double clip = o.clip;
  const bool symmetric = o.symmetric;
  const char *out_path = o.out_path;
  const struct unmix_backend *be = NULL;
  float *values[MAX_CKPTS][MAX_LAYERS];
  size_t numel[MAX_LAYERS] = {0};
  memset(values, 0, sizeof values);
  char names[MAX_LAYERS][96], label_buf[MAX_CKPTS][UNMIX_NAME_MAX];
  char ref_arch[128] = "", ref_path[UNMIX_PATH_MAX] = "";
  const char *lab[MAX_CKPTS];
  int nconv_ref = 0, rcode = 1;
  struct unmix_evalcli_out out = {0};
  struct unmix_hist h = {0};
  bool note = false;
  for (int k = 0; k < nck; k++) {
    struct unmix_eval_ckpt *e = NULL;
    struct unmix_model *m = NULL;
    unmix_status st = unmix_eval_ckpt_open(pos[k], &cli.open, &e);
    if (st == UNMIX_OK && !be) st = unmix_backend_get(cli.backend ? cli.backend : "cpu", &be);
    struct unmix_recipe rc;
    if (st == UNMIX_OK) st = unmix_eval_recipe(e, NULL, &rc);
    if (st == UNMIX_OK) st = unmix_eval_build_model(e, be, 0, unmix_eval_image_size(e, &rc, NULL), &m);
    if (st == UNMIX_OK) {
      const char *conv[512];
      int nconv = unmix_model_conv_names(m, conv, 512);
      char arch[128];
      snprintf(arch, sizeof arch, "%s/%s/width %d", m->arch_name, unmix_stem_name(e->cfg.model.stem), e->cfg.model.width);
      if (k == 0) {
        nconv_ref = nconv;
        snprintf(ref_arch, sizeof ref_arch, "%s", arch);
        snprintf(ref_path, sizeof ref_path, "%s", e->path);
        if (nlayers == 0) {
          if (nconv >= 50) {
            memcpy(layers, unmix_conv_layer_default_indices, sizeof(int) * UNMIX_CONV_LAYER_DEFAULT_COUNT);
            nlayers = UNMIX_CONV_LAYER_DEFAULT_COUNT;
          } else {
            nlayers = nconv < 6 ? nconv : 6;
            for (int i = 0; i < nlayers; i++)
              layers[i] = nlayers == 1 ? 1 : 1 + (int)((double)i * (nconv - 1) / (nlayers - 1) + 0.5);
            note = true;
          }
        }
        const char *sel[MAX_LAYERS];
        st = unmix_conv_layer_select(conv, nconv, layers, nlayers, sel);
        if (st != UNMIX_OK) unmix_error_wrap(st, "%s (%s) --layers", e->path, arch);
        for (int i = 0; st == UNMIX_OK && i < nlayers; i++) snprintf(names[i], sizeof names[i], "%s", sel[i]);
      } else if (nconv != nconv_ref || strcmp(arch, ref_arch) != 0) {
        st = unmix_error_set(UNMIX_ERR_ARG, "%s is %s but %s is %s: weight histograms compare one architecture",
                             e->path, arch, ref_path, ref_arch);
      }
      for (int i = 0; st == UNMIX_OK && i < nlayers; i++) {
        int idx = unmix_param_store_find(&m->params, names[i]);
        numel[i] = (size_t)m->params.entries[idx].numel;
        values[k][i] = unmix_xmalloc(sizeof(float) * numel[i]);
        unmix_param_store_get(&m->params, idx, values[k][i]);
      }
      snprintf(label_buf[k], sizeof label_buf[k], "%s", k < nlabels ? labels[k] : e->label);
      lab[k] = label_buf[k];
    }
    unmix_model_destroy(m);
    unmix_eval_ckpt_close(e);
    if (st != UNMIX_OK) goto fail;
  }
  if (note) {
    fprintf(stderr, "unmix hist: note: the network has %d conv layers (the paper's 1,10,...,50 are ResNet-50's); using",
            nconv_ref);
    for (int i = 0; i < nlayers; i++) fprintf(stderr, "%s%d", i ? "," : " ", layers[i]);
    fprintf(stderr, "\n");
  }
  struct unmix_hist_params hp = unmix_hist_params_default();
  hp.nbins = (int)bins;
  hp.clip_quantile = clip;
  hp.symmetric = symmetric;
  if (unmix_evalcli_out_open(&out) != UNMIX_OK) goto fail;
  printf("weight histograms of %d checkpoint%s (%s), %d bins:\n", nck, nck > 1 ? "s" : "", ref_arch, hp.nbins);
  for (int i = 0; i < nlayers; i++) {
    struct unmix_hist_series ser[MAX_CKPTS];
    for (int k = 0; k < nck; k++) ser[k] = (struct unmix_hist_series){lab[k], values[k][i], numel[i]};
    if (unmix_hist_common_bins(ser, nck, &hp, &h) != UNMIX_OK) {
      unmix_error_wrap(unmix_error_code(), "layer %d (%s)", layers[i], names[i]);
      goto fail;
    }
    char lname[160];
    snprintf(lname, sizeof lname, "%d:%s", layers[i], names[i]);
    if (unmix_hist_write_csv(out.f, lname, &h, i == 0) != UNMIX_OK) goto fail;
    printf("  layer %2d %-28s %8zu weights  range [%.4g, %.4g]", layers[i], names[i], numel[i], h.lo, h.hi);
    for (int k = 0; k < nck; k++) {
      double s = 0, s2 = 0;
      for (size_t j = 0; j < numel[i]; j++) {
        s += values[k][i][j];
        s2 += (double)values[k][i][j] * values[k][i][j];
      }
      double mean = s / (double)numel[i], var = s2 / (double)numel[i] - mean * mean;
      printf("  %s: std %.4g", lab[k], var > 0 ? sqrt(var) : 0.0);
    }
    printf("\n");
    unmix_hist_free(&h);
  }
  if (unmix_evalcli_out_commit(&out, out_path) != UNMIX_OK) goto fail;
  printf("-> %s\n", out_path);
  rcode = 0;
fail:
  if (rcode) unmix_cmd_fail("hist");
  unmix_hist_free(&h);
  unmix_evalcli_out_discard(&out);
  for (int k = 0; k < nck; k++)
    for (int i = 0; i < MAX_LAYERS; i++) free(values[k][i]);
  free(pos);
  return rcode;
}
