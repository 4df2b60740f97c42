/* `unmix tsne CKPT`: the paper's Figure 4 - features of N test images through the checkpoint's
 * encoder, dumped (CSV + binary), embedded in 2-D by t-SNE (eval/tsne.h) and written as
 * x, y, label, class rows ready for gnuplot. */
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

static void usage(FILE *f) {
  fprintf(f,
          "usage: unmix tsne CKPT [options]\n\n"
          "t-SNE of N images' features (the paper's Figure 4): the first N images of the split through\n"
          "the recipe's evaluation transform and the encoder in eval mode, PCA to 50 dimensions, then\n"
          "Barnes-Hut t-SNE (theta 0.5, perplexity 30, 1000 iterations; eval/tsne.h) or exact t-SNE.\n\n"
          "options:\n"
          "  --n N               images (default 2000; all when the split is smaller)\n"
          "  --split test|train  which split (default test)\n"
          "  --features backbone|head   avgpool features (default) or the head's embedding\n"
          "  --exact             exact O(N^2) gradient (N <= 5000)\n"
          "  --perplexity P      (default 30; needs N - 1 >= 3P)\n"
          "  --theta X           Barnes-Hut accuracy (default 0.5)\n"
          "  --iterations N      (default 1000)\n"
          "  --seed N            initial embedding (default: the manifest's seed)\n"
          "  --out DIR           output directory (default: tsne next to CKPT):\n"
          "                        tsne.csv       index, x, y, label, class (one row per image)\n"
          "                        features.csv   index, label, class, f0 .. f(d-1)\n"
          "                        features.f32   \"UNMIXF32\" | u32 version 1 | u32 n | u32 d | u32 0 |\n"
          "                                       n x d float32 | n int32 labels (little-endian)\n");
  unmix_evalcli_help(f);
}

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
  unmix_evalcli_init(&cli, "tsne");
  long long n = 2000, iterations = -1, seed = -1;
  double perplexity = -1, theta = -1;
  bool exact = false, head = false;
  enum unmix_split split = UNMIX_SPLIT_TEST;
  const char *out_dir = NULL;
  static const struct option opts[] = {{"n", required_argument, 0, 'n'},
                                       {"split", required_argument, 0, 's'},
                                       {"features", required_argument, 0, 'F'},
                                       {"exact", no_argument, 0, 'x'},
                                       {"perplexity", required_argument, 0, 'p'},
                                       {"theta", required_argument, 0, 't'},
                                       {"iterations", required_argument, 0, 'i'},
                                       {"seed", required_argument, 0, 'S'},
                                       {"out", required_argument, 0, 'o'},
                                       {"help", no_argument, 0, 'h'},
                                       EVALCLI_LONG_OPTIONS,
                                       {0, 0, 0, 0}};
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    int r = unmix_evalcli_option(&cli, c, optarg);
    if (r < 0) return 2;
    if (r > 0) continue;
    switch (c) {
      case 'n':
        if (!unmix_evalcli_int("tsne", "--n", optarg, 2, 1 << 24, &n)) return 2;
        break;
      case 's':
        if (!strcmp(optarg, "test")) split = UNMIX_SPLIT_TEST;
        else if (!strcmp(optarg, "train")) split = UNMIX_SPLIT_TRAIN;
        else {
          fprintf(stderr, "unmix tsne: --split must be test or train, got '%s'\n", optarg);
          return 2;
        }
        break;
      case 'F':
        if (!strcmp(optarg, "head")) head = true;
        else if (!strcmp(optarg, "backbone")) head = false;
        else {
          fprintf(stderr, "unmix tsne: --features must be backbone or head, got '%s'\n", optarg);
          return 2;
        }
        break;
      case 'x': exact = true; break;
      case 'p':
        if (!unmix_evalcli_float("tsne", "--perplexity", optarg, 1, 1000, &perplexity)) return 2;
        break;
      case 't':
        if (!unmix_evalcli_float("tsne", "--theta", optarg, 0, 10, &theta)) return 2;
        break;
      case 'i':
        if (!unmix_evalcli_int("tsne", "--iterations", optarg, 1, 1 << 20, &iterations)) return 2;
        break;
      case 'S':
        if (!unmix_evalcli_int("tsne", "--seed", optarg, 0, 1LL << 62, &seed)) return 2;
        break;
      case 'o': out_dir = optarg; break;
      case 'h': usage(stdout); return 0;
      default: usage(stderr); return 2;
    }
  }
  if (optind != argc - 1) {
    fprintf(stderr, "unmix tsne: expected exactly one CKPT (got %d)\n\n", argc - optind);
    usage(stderr);
    return 2;
  }
  const char *path = argv[optind];
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
  tp.seed = seed >= 0 ? (uint64_t)seed : e->cfg.seed;
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
