/* `unmix tsne CKPT`: the paper's Figure 4 - features of N test images through the checkpoint's
 * encoder, dumped (CSV + binary), embedded in 2-D by t-SNE (eval/tsne.h) and written as
 * x, y, label, class rows ready for gnuplot. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io/csv.h"
#include "core/io/manifest.h"
#include "core/util/fs.h"
#include "eval/ckpt_model.h"
#include "eval/features.h"
#include "eval/tsne.h"
#include "experiments/commands.h"
#include "experiments/evalcli.h"

/* features.f32: "UNMIXF32" | u32 version (1) | u32 n | u32 d | u32 0 | n*d float32 (row-major)
 * | n int32 labels; all little-endian. */
#define F32_MAGIC "UNMIXF32"

struct tsne_opts {
  long long n, iterations;
  struct unmix_opt_u64 seed;
  double perplexity, theta;
  bool exact;
  const char *split, *features, *out_dir;
};
#define TO(f) offsetof(struct tsne_opts, f)
static const char *const g_splits[] = {"test", "train", NULL};
static const char *const g_features[] = {"backbone", "head", NULL};
static const struct unmix_opt g_opts[] = {
    {.name = "n", .type = UNMIX_OPT_INT, .arg = "N", .range = UNMIX_OPT_IN(2, 1 << 24), .off = TO(n), .def = "2000",
     .help = "images (all when the split is smaller)"},
    {.name = "split", .type = UNMIX_OPT_CHOICE, .choices = g_splits, .off = TO(split), .def = "test",
     .help = "which split"},
    {.name = "features", .type = UNMIX_OPT_CHOICE, .choices = g_features, .off = TO(features), .def = "backbone",
     .help = "avgpool features or the head's embedding"},
    {.name = "exact", .type = UNMIX_OPT_FLAG, .off = TO(exact), .help = "exact O(N^2) gradient (N <= 5000)"},
    {.name = "perplexity", .type = UNMIX_OPT_FLOAT, .arg = "P", .range = UNMIX_OPT_IN(1, 1000), .off = TO(perplexity),
     .def = "30", .help = "needs N - 1 >= 3P"},
    {.name = "theta", .type = UNMIX_OPT_FLOAT, .arg = "X", .range = UNMIX_OPT_IN(0, 10), .off = TO(theta),
     .def = "0.5", .help = "Barnes-Hut accuracy"},
    {.name = "iterations", .type = UNMIX_OPT_INT, .arg = "N", .range = UNMIX_OPT_IN(1, 1 << 20), .off = TO(iterations),
     .def = "1000", .help = "gradient-descent iterations"},
    {.name = "seed", .type = UNMIX_OPT_U64, .arg = "N", .key = "seed", .off = TO(seed),
     .def_doc = "the manifest's seed", .help = "initial embedding"},
    {.name = "out", .type = UNMIX_OPT_STRING, .arg = "DIR", .off = TO(out_dir), .def_doc = "tsne next to CKPT",
     .help = "output directory:\n"
             "  tsne.csv       index, x, y, label, class (one row per image)\n"
             "  features.csv   index, label, class, f0 .. f(d-1)\n"
             "  features.f32   \"UNMIXF32\" | u32 version 1 | u32 n | u32 d | u32 0 |\n"
             "                 n x d float32 | n int32 labels (little-endian)"},
};

const struct unmix_evalcmd unmix_evalcmd_tsne = {
    "tsne",
    "usage: unmix tsne CKPT [options]\n\n"
    "t-SNE of N images' features (the paper's Figure 4): the first N images of the split through\n"
    "the recipe's evaluation transform and the encoder in eval mode, PCA to 50 dimensions, then\n"
    "Barnes-Hut t-SNE (theta 0.5, perplexity 30, 1000 iterations; eval/tsne.h) or exact t-SNE.\n\n"
    "example: unmix tsne results/runs/cifar10_moco_sym/checkpoint.safetensors --n 2000\n",
    g_opts, (int)(sizeof g_opts / sizeof g_opts[0]),
    .common = UNMIX_EVALCLI_ALL};

static unmix_status write_f32(const char *path, const float *x, const int32_t *lab, int n, int d) {
  struct unmix_evalcli_out o;
  UNMIX_TRY(unmix_evalcli_out_open(&o));
  uint32_t hdr[4] = {1, (uint32_t)n, (uint32_t)d, 0};
  fwrite(F32_MAGIC, 1, 8, o.f);
  fwrite(hdr, sizeof hdr, 1, o.f);
  fwrite(x, sizeof(float), (size_t)n * d, o.f);
  fwrite(lab, sizeof(int32_t), (size_t)n, o.f);
  return unmix_evalcli_out_commit(&o, path);
}

int unmix_cmd_tsne(int argc, char **argv) {
  struct unmix_evalcli cli;
  struct tsne_opts o = {.iterations = -1, .perplexity = -1, .theta = -1};
  char **pos = unmix_xmalloc(sizeof(char *) * (size_t)(argc + 1));
  int npos = 0;
  int pr = unmix_evalcli_parse(&unmix_evalcmd_tsne, &o, &cli, argc, argv, pos, &npos);
  const char *path = npos == 1 ? pos[0] : NULL;
  free(pos);
  if (pr >= 0) return pr;
  if (npos != 1) {
    fprintf(stderr, "unmix tsne: expected exactly one CKPT (got %d)\n\n", npos);
    unmix_evalcli_usage(&unmix_evalcmd_tsne, stderr);
    return 2;
  }
  const long long n = o.n, iterations = o.iterations;
  const double perplexity = o.perplexity, theta = o.theta;
  const bool exact = o.exact, head = !strcmp(o.features, "head");
  const enum unmix_split split = !strcmp(o.split, "train") ? UNMIX_SPLIT_TRAIN : UNMIX_SPLIT_TEST;
  const char *out_dir = o.out_dir;
  struct unmix_eval_ckpt *e = NULL;
  struct unmix_dataset *ds = NULL;
  struct unmix_model *m = NULL;
  const struct unmix_backend *be = NULL;
  struct unmix_recipe rc;
  float *fdev = NULL, *feat = NULL, *y = NULL;
  int32_t *lab = NULL;
  struct unmix_evalcli_out out = {0};
  int d = 0, rcode = 1;
  if (unmix_eval_ckpt_open(path, &cli.open, &e) != UNMIX_OK) goto fail;
  if (unmix_eval_backend(e, cli.backend, &be) != UNMIX_OK) goto fail;
  if (unmix_eval_recipe(e, NULL, &rc) != UNMIX_OK) goto fail;
  if (unmix_eval_open_dataset(e, split, n, &ds) != UNMIX_OK) goto fail;
  const int size = unmix_eval_image_size(e, &rc, ds);
  if (unmix_eval_check_input(e, &rc.eval, ds, size) != UNMIX_OK) goto fail;
  if (unmix_eval_build_model(e, be, 0, size, &m) != UNMIX_OK) goto fail;
  const int N = (int)ds->n;
  const int node = head ? m->embed_node : m->feat_node;
  const char *fname = node == m->feat_node ? "backbone" : "head";
  const int batch = cli.batch > 0 ? cli.batch : e->cfg.optim.batch_size;
  if (unmix_extract_features(be, m, node, ds, &rc, batch, cli.workers >= 0 ? cli.workers : e->cfg.data.workers, false,
                             &fdev, &lab, &d) != UNMIX_OK)
    goto fail;
  feat = unmix_xmalloc(sizeof(float) * (size_t)N * d);
  be->memcpy_d2h(feat, fdev, sizeof(float) * (size_t)N * d);

  char dir[UNMIX_PATH_MAX], dbuf[UNMIX_PATH_MAX + 16], p1[UNMIX_PATH_MAX + 32];
  if (!out_dir) {
    snprintf(dbuf, sizeof dbuf, "%s/tsne", unmix_fs_dirname(path, dir, sizeof dir));
    out_dir = dbuf;
  }
  if (unmix_fs_mkdirs(out_dir, 0755) != UNMIX_OK) goto fail;
  /* the features, before t-SNE (so they survive a failed or interrupted embedding) */
  snprintf(p1, sizeof p1, "%s/features.f32", out_dir);
  if (write_f32(p1, feat, lab, N, d) != UNMIX_OK) goto fail;
  if (unmix_evalcli_out_open(&out) != UNMIX_OK) goto fail;
  fprintf(out.f, "index,label,class");
  for (int j = 0; j < d; j++) fprintf(out.f, ",f%d", j);
  fputc('\n', out.f);
  for (int i = 0; i < N; i++) {
    fprintf(out.f, "%d,%d,", i, lab[i]);
    unmix_csv_write_field(out.f, ds->class_names ? ds->class_names[lab[i]] : "");
    for (int j = 0; j < d; j++) fprintf(out.f, ",%.9g", (double)feat[(size_t)i * d + j]);
    fputc('\n', out.f);
  }
  snprintf(p1, sizeof p1, "%s/features.csv", out_dir);
  if (unmix_evalcli_out_commit(&out, p1) != UNMIX_OK) goto fail;

  struct unmix_tsne_params tp = unmix_tsne_params_default();
  if (exact) tp.theta = 0.0f;
  else if (theta >= 0) tp.theta = (float)theta;
  if (perplexity > 0) tp.perplexity = (float)perplexity;
  if (iterations > 0) tp.iterations = (int)iterations;
  if (tp.exaggeration_iters > tp.iterations) tp.exaggeration_iters = tp.iterations;
  tp.seed = o.seed.set ? o.seed.v : e->cfg.seed;
  y = unmix_xmalloc(sizeof(float) * (size_t)N * 2);
  struct unmix_tsne_stats ts;
  if (unmix_tsne_run(feat, N, d, &tp, y, &ts) != UNMIX_OK) {
    unmix_error_wrap(unmix_error_code(), "t-SNE of %d x %d %s features of %s (features kept in %s)", N, d, fname, path,
                     out_dir);
    goto fail;
  }
  if (unmix_evalcli_out_open(&out) != UNMIX_OK) goto fail;
  fprintf(out.f, "index,x,y,label,class\n");
  for (int i = 0; i < N; i++) {
    fprintf(out.f, "%d,%.9g,%.9g,%d,", i, (double)y[2 * i], (double)y[2 * i + 1], lab[i]);
    unmix_csv_write_field(out.f, ds->class_names ? ds->class_names[lab[i]] : "");
    fputc('\n', out.f);
  }
  snprintf(p1, sizeof p1, "%s/tsne.csv", out_dir);
  if (unmix_evalcli_out_commit(&out, p1) != UNMIX_OK) goto fail;
  printf("t-SNE %s (%s): %d %s images of %s, %d-d %s features -> PCA %d -> 2-D (%s, perplexity %g, %d iterations): "
         "KL %.4f, %.1f s -> %s/{tsne.csv,features.csv,features.f32}\n",
         e->label, path, N, split == UNMIX_SPLIT_TEST ? "test" : "train", ds->name, d, fname, ts.dims_used,
         tp.theta == 0.0f ? "exact" : "Barnes-Hut", (double)tp.perplexity, tp.iterations, ts.kl, ts.seconds_total,
         out_dir);
  rcode = 0;
fail:
  if (rcode) unmix_cmd_fail("tsne");
  unmix_evalcli_out_discard(&out);
  if (fdev) be->free(fdev);
  free(feat);
  free(lab);
  free(y);
  unmix_model_destroy(m);
  unmix_dataset_free(ds);
  unmix_eval_ckpt_close(e);
  return rcode;
}
