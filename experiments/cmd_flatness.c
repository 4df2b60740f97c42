/* `unmix flatness CKPT [CKPT...]`: the paper's motivation figure (vis.png) - for MoCo
 * checkpoints, the softmax over a query's similarities to the negatives of the checkpoint's
 * own queue, sorted ascending: per-image curves, the curve averaged over many images, and
 * each curve's maximum (Un-Mix should give flatter, lower-peaked distributions). */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io/csv.h"
#include "core/io/manifest.h"
#include "eval/ckpt_model.h"
#include "eval/features.h"
#include "eval/flatness.h"
#include "experiments/commands.h"
#include "experiments/evalcli.h"

#define MAX_CKPTS 32
#define QUEUE_TENSOR "unmix.state.moco.queue"

struct fl_opts {
  long long images, average, negatives;
  bool last;
  double t;
  long long batch, workers;
  /* the command line */
  const char *labels[MAX_CKPTS];
  int nlabels;
  const char *keys, *out_path;
};
#define FO(f) offsetof(struct fl_opts, f)
static const char *const g_keys[] = {"first", "last", NULL};
static const struct unmix_opt g_opts[] = {
    {.name = "label", .type = UNMIX_OPT_STRINGS, .arg = "NAME", .off = FO(labels), .cap = MAX_CKPTS,
     .count_off = FO(nlabels), .def_doc = "run name",
     .help = "label of the next checkpoint, in order (repeatable)"},
    {.name = "images", .type = UNMIX_OPT_INT, .arg = "N", .range = UNMIX_OPT_IN(0, 1000), .off = FO(images),
     .def = "6", .help = "per-image curves for the first N test images"},
    {.name = "average", .type = UNMIX_OPT_INT, .arg = "N", .range = UNMIX_OPT_IN(1, 1 << 24), .off = FO(average),
     .def = "1000", .help = "the mean curve over the first N test images"},
    {.name = "negatives", .type = UNMIX_OPT_INT, .arg = "N", .range = UNMIX_OPT_IN(1, 1 << 24), .off = FO(negatives),
     .def = "2048", .help = "keys per query (at most the queue length K)"},
    {.name = "keys", .type = UNMIX_OPT_CHOICE, .choices = g_keys, .off = FO(keys), .def = "first",
     .help = "queue rows 0..N-1 or K-N..K-1"},
    {.name = "t", .type = UNMIX_OPT_FLOAT, .arg = "T", .key = "moco.T", .off = FO(t), .def_doc = "the manifest's moco.T",
     .help = "softmax temperature"},
    {.name = "out", .type = UNMIX_OPT_STRING, .arg = "FILE", .off = FO(out_path), .def = "flatness.csv",
     .help = "curves: label, checkpoint, curve (image|mean), sample (test index;\n"
             "empty for mean), rank (1 = smallest), probability; and FILE's stem + _max.csv:\n"
             "label, checkpoint, curve, sample, images, negatives, keys, t, max_probability,\n"
             "entropy (nats)"},
};

const struct unmix_evalcmd unmix_evalcmd_flatness = {
    "flatness",
    "usage: unmix flatness CKPT [CKPT...] [options]\n\n"
    "Prediction flatness of MoCo checkpoints (the paper's motivation figure): each test image's query\n"
    "q = normalize(encoder_q(x)) (eval mode) against N keys of the checkpoint's queue\n"
    "(unmix.state.moco.queue), p = softmax(q.keys / T) sorted ascending. The same test images and\n"
    "the same queue rows are used for every checkpoint.\n\n"
    "example: unmix flatness results/runs/cifar10_moco_sym/checkpoint.safetensors "
    "results/runs/cifar10_moco_sym_unmix/checkpoint.safetensors\n",
    g_opts, (int)(sizeof g_opts / sizeof g_opts[0]),
    .common = UNMIX_EVALCLI_BACKEND | UNMIX_EVALCLI_DATA | UNMIX_EVALCLI_FORWARD};

/* Sorted probabilities (M x neg, host) of one checkpoint. */
static unmix_status probabilities(const struct unmix_backend *be, struct unmix_eval_ckpt *e, const struct fl_opts *o,
                                  int *neg_common, float **probs_out, int *m_out, int32_t **idx_out, float *t_out,
                                  char *dsname, size_t dsname_len) {
  const struct unmix_config *cfg = &e->cfg;
  if (e->kind != UNMIX_EVAL_TRAINING || cfg->method != UNMIX_METHOD_MOCO)
    return unmix_error_set(UNMIX_ERR_ARG, "%s: flatness needs a MoCo training checkpoint with its queue (this is %s)",
                           e->path,
                           e->kind != UNMIX_EVAL_TRAINING ? "a backbone-only file" : unmix_method_name(cfg->method));
  const struct unmix_ckpt_tensor *q = unmix_ckpt_find(e->ck, QUEUE_TENSOR);
  if (!q) return unmix_error_set(UNMIX_ERR_FORMAT, "%s: no tensor %s (the MoCo queue)", e->path, QUEUE_TENSOR);
  if (q->ndim != 2 || q->dtype != UNMIX_CKPT_F32)
    return unmix_error_set(UNMIX_ERR_FORMAT, "%s: tensor %s is %s with %d dimensions, expected F32 (K, dim)", e->path,
                           QUEUE_TENSOR, unmix_ckpt_dtype_name(q->dtype), q->ndim);
  const int K = (int)q->shape[0], D = (int)q->shape[1];
  if (*neg_common == 0) {
    *neg_common = o->negatives < K ? o->negatives : K;
    if (o->negatives > K)
      fprintf(stderr, "unmix flatness: note: %s's queue holds %d keys; using %d negatives\n", e->path, K, K);
  } else if (K < *neg_common) {
    return unmix_error_set(UNMIX_ERR_ARG, "%s: its queue holds %d keys, fewer than the %d negatives used for the first "
                                          "checkpoint; pass --negatives %d",
                           e->path, K, *neg_common, K);
  }
  const int neg = *neg_common;
  struct unmix_recipe rc;
  struct unmix_dataset *ds = NULL;
  struct unmix_model *m = NULL;
  float *feat = NULL, *h = NULL;
  int32_t *lab = NULL;
  int d = 0;
  const int want = o->images > o->average ? o->images : o->average;
  unmix_status st = unmix_eval_recipe(e, NULL, &rc);
  if (st == UNMIX_OK) st = unmix_eval_open_dataset(e, UNMIX_SPLIT_TEST, want, &ds);
  const int size = st == UNMIX_OK ? unmix_eval_image_size(e, &rc, ds) : 0;
  if (st == UNMIX_OK) st = unmix_eval_check_input(e, &rc.eval, ds, size);
  if (st == UNMIX_OK) st = unmix_eval_build_model(e, be, 0, size, &m);
  if (st == UNMIX_OK && unmix_model_out_dim(m) != D)
    st = unmix_error_set(UNMIX_ERR_FORMAT, "%s: the queue holds %d-d keys but the encoder outputs %d-d embeddings",
                         e->path, D, unmix_model_out_dim(m));
  const int batch = o->batch > 0 ? o->batch : cfg->optim.batch_size;
  if (st == UNMIX_OK)
    st = unmix_extract_features(be, m, m->out_node, ds, &rc, batch, o->workers >= 0 ? o->workers : cfg->data.workers,
                                true, &feat, &lab, &d);
  const int M = st == UNMIX_OK ? (int)ds->n : 0;
  const float T = o->t > 0 ? (float)o->t : cfg->moco.T;
  if (st == UNMIX_OK) {
    h = unmix_xmalloc(sizeof(float) * (size_t)M * neg);
    const float *rows = (const float *)q->data + (size_t)(o->last ? K - neg : 0) * D;
    st = unmix_flatness_sorted_probs(be, feat, M, D, rows, neg, T, h);
  }
  if (st == UNMIX_OK) {
    *t_out = T;
    *idx_out = unmix_xmalloc(sizeof(int32_t) * (size_t)M);
    for (int i = 0; i < M; i++) (*idx_out)[i] = i; /* the first M test samples, in order */
    *probs_out = h;
    *m_out = M;
    snprintf(dsname, dsname_len, "%s", ds->name);
    h = NULL;
  }
  if (feat) be->free(feat);
  free(h);
  free(lab);
  unmix_model_destroy(m);
  unmix_dataset_free(ds);
  return st;
}

int unmix_cmd_flatness(int argc, char **argv) {
  struct unmix_evalcli cli;
  struct fl_opts o = {.t = -1};
  char **pos = unmix_xmalloc(sizeof(char *) * (size_t)(argc + 1));
  int npos = 0;
  int pr = unmix_evalcli_parse(&unmix_evalcmd_flatness, &o, &cli, argc, argv, pos, &npos);
  if (pr >= 0) {
    free(pos);
    return pr;
  }
  o.last = !strcmp(o.keys, "last");
  o.batch = cli.batch;
  o.workers = cli.workers;
  const int nck = npos;
  if (nck < 1 || nck > MAX_CKPTS) {
    fprintf(stderr, "unmix flatness: expected 1..%d CKPT (got %d)\n\n", MAX_CKPTS, nck);
    unmix_evalcli_usage(&unmix_evalcmd_flatness, stderr);
    free(pos);
    return 2;
  }
  if (o.nlabels > nck) {
    fprintf(stderr, "unmix flatness: %d --label for %d checkpoints\n", o.nlabels, nck);
    free(pos);
    return 2;
  }
  const char **labels = o.labels;
  const int nlabels = o.nlabels;
  const char *out_path = o.out_path;
  char max_path[UNMIX_PATH_MAX + 16];
  {
    size_t n = strlen(out_path);
    int stem = n > 4 && !strcmp(out_path + n - 4, ".csv") ? (int)(n - 4) : (int)n;
    snprintf(max_path, sizeof max_path, "%.*s_max.csv", stem, out_path);
  }
  struct unmix_evalcli_out curves = {0}, maxes = {0};
  const struct unmix_backend *be = NULL;
  int neg = 0, rcode = 1, m_ref = -1;
  char ds_ref[64] = "";
  if (unmix_evalcli_out_open(&curves) != UNMIX_OK || unmix_evalcli_out_open(&maxes) != UNMIX_OK) goto fail;
  fprintf(curves.f, "label,checkpoint,curve,sample,rank,probability\n");
  fprintf(maxes.f, "label,checkpoint,curve,sample,images,negatives,keys,t,max_probability,entropy\n");
  for (int k = 0; k < nck; k++) {
    const char *path = pos[k];
    struct unmix_eval_ckpt *e = NULL;
    float *p = NULL, T = 0;
    int32_t *idx = NULL;
    int M = 0;
    char dsname[64] = "";
    unmix_status st = unmix_eval_ckpt_open(path, &cli.open, &e);
    if (st == UNMIX_OK && !be) st = unmix_eval_backend(e, cli.backend, &be);
    if (st == UNMIX_OK) st = probabilities(be, e, &o, &neg, &p, &M, &idx, &T, dsname, sizeof dsname);
    if (st == UNMIX_OK) {
      const char *label = k < nlabels ? labels[k] : e->label;
      if (m_ref < 0) {
        m_ref = M;
        snprintf(ds_ref, sizeof ds_ref, "%s", dsname);
      } else if (M != m_ref || strcmp(ds_ref, dsname) != 0) {
        fprintf(stderr, "unmix flatness: note: %s uses %d images of %s, the first checkpoint %d of %s\n", path, M,
                dsname, m_ref, ds_ref);
      }
      const int nimg = o.images < M ? o.images : M, navg = o.average < M ? o.average : M;
      double mean_max = 0, mean_ent = 0;
      for (int i = 0; i < navg; i++) {
        mean_max += p[(size_t)i * neg + neg - 1];
        mean_ent += unmix_flatness_entropy(p + (size_t)i * neg, neg);
      }
      mean_max /= navg;
      mean_ent /= navg;
      for (int i = 0; i < nimg; i++) {
        const float *row = p + (size_t)i * neg;
        for (int r = 0; r < neg; r++) {
          unmix_csv_write_field(curves.f, label);
          fputc(',', curves.f);
          unmix_csv_write_field(curves.f, path);
          fprintf(curves.f, ",image,%d,%d,%.9g\n", idx[i], r + 1, (double)row[r]);
        }
        unmix_csv_write_field(maxes.f, label);
        fputc(',', maxes.f);
        unmix_csv_write_field(maxes.f, path);
        fprintf(maxes.f, ",image,%d,1,%d,%s,%.6g,%.9g,%.9g\n", idx[i], neg, o.last ? "last" : "first", (double)T,
                (double)row[neg - 1], unmix_flatness_entropy(row, neg));
      }
      double *mean = unmix_xmalloc(sizeof(double) * (size_t)neg);
      unmix_flatness_mean_curve(p, navg, neg, mean);
      for (int r = 0; r < neg; r++) {
        unmix_csv_write_field(curves.f, label);
        fputc(',', curves.f);
        unmix_csv_write_field(curves.f, path);
        fprintf(curves.f, ",mean,,%d,%.9g\n", r + 1, mean[r]);
      }
      free(mean);
      unmix_csv_write_field(maxes.f, label);
      fputc(',', maxes.f);
      unmix_csv_write_field(maxes.f, path);
      fprintf(maxes.f, ",mean,,%d,%d,%s,%.6g,%.9g,%.9g\n", navg, neg, o.last ? "last" : "first", (double)T, mean_max,
              mean_ent);
      printf("%-24s %d negatives (%s), T %g, %d images: mean max probability %.5f, mean entropy %.4f nats (uniform "
             "%.4f)\n",
             label, neg, o.last ? "last" : "first", (double)T, navg, mean_max, mean_ent, log((double)neg));
    }
    free(p);
    free(idx);
    unmix_eval_ckpt_close(e);
    if (st != UNMIX_OK) goto fail;
  }
  if (unmix_evalcli_out_commit(&curves, out_path) != UNMIX_OK) goto fail;
  if (unmix_evalcli_out_commit(&maxes, max_path) != UNMIX_OK) goto fail;
  printf("-> %s, %s\n", out_path, max_path);
  rcode = 0;
fail:
  if (rcode) unmix_cmd_fail("flatness");
  unmix_evalcli_out_discard(&curves);
  unmix_evalcli_out_discard(&maxes);
  free(pos);
  return rcode;
}
