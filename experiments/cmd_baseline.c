/* `unmix baseline MANIFEST`: the reference levels a run must beat, under the run's own kNN
 * monitor (same bank, queries, k, t, eval transform): raw pixels, and the untrained network
 * (the run's initialisation, seed included). The demo's table puts them beside the runs. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/data/dataset.h"
#include "core/data/loader.h"
#include "core/io/manifest.h"
#include "core/methods/method.h"
#include "core/util/timer.h"
#include "eval/features.h"
#include "eval/knn.h"
#include "experiments/commands.h"
#include "experiments/suggest.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: unmix baseline MANIFEST [--set KEY=VALUE]... [--csv FILE]\n\n"
          "Evaluates the kNN monitor of the manifest's run (knn.k, knn.t, knn.bank_subset,\n"
          "knn.test_subset, the recipe's eval transform) on two references, so a trained run can be\n"
          "read against them:\n"
          "  raw-pixels  the normalised input images themselves, L2-normalised, as features\n"
          "  untrained   the run's network at initialisation (same seed), its monitor embedding\n"
          "Prints one line per reference and writes them as CSV rows (columns: baseline, manifest,\n"
          "dataset, features, dim, k, t, bank, queries, top1, top5, seconds) to FILE (default\n"
          "baseline.csv in the current directory).\n\n"
          "options:\n"
          "  --set KEY=VALUE   override a manifest key, as for unmix train\n"
          "  --csv FILE        where the rows go\n"
          "  -h, --help        this help\n\n"
          "example: unmix baseline configs/fmnist/moco_sym.yaml --csv results/demo/baseline.csv\n");
}

/* Raw pixels through the eval transform, one L2-normalised row per sample (host memory). */
static unmix_status pixel_features(const struct unmix_dataset *ds, const struct unmix_recipe *rc, int batch,
                                   int workers, float **feat, int32_t **labels, int *dim) {
  *feat = NULL;
  *labels = NULL;
  struct unmix_loader_options lo;
  unmix_loader_options_init(&lo, UNMIX_LOADER_EVAL, batch, 0);
  lo.workers = workers;
  struct unmix_loader *ld = NULL;
  UNMIX_TRY(unmix_loader_create(ds, rc, &lo, &ld));
  unmix_status st = unmix_loader_start_epoch(ld, 0);
  float *out = NULL;
  int32_t *lab = malloc(sizeof(int32_t) * (size_t)(ds->n ? ds->n : 1));
  int64_t row = 0;
  int d = 0;
  while (st == UNMIX_OK) {
    const struct unmix_batch *b = NULL;
    st = unmix_loader_next(ld, &b);
    if (st != UNMIX_OK || !b) break;
    const struct unmix_batch_view *v = &b->views[0];
    if (!out) {
      d = v->h * v->w * v->c;
      out = malloc(sizeof(float) * (size_t)ds->n * d);
      if (!out) {
        st = unmix_error_set(UNMIX_ERR_NOMEM, "raw-pixel features of %lld samples x %d", (long long)ds->n, d);
        break;
      }
    }
    if (v->h * v->w * v->c != d) {
      st = unmix_error_set(UNMIX_ERR_FORMAT, "raw pixels: images of different sizes (%dx%dx%d)", v->h, v->w, v->c);
      break;
    }
    for (int i = 0; i < b->size; i++, row++) {
      const float *x = v->data + (size_t)i * d;
      float *y = out + (size_t)row * d;
      double ss = 0;
      for (int k = 0; k < d; k++) ss += (double)x[k] * x[k];
      const float inv = (float)(1.0 / fmax(sqrt(ss), 1e-12));
      for (int k = 0; k < d; k++) y[k] = x[k] * inv;
      lab[row] = b->labels[i];
    }
  }
  unmix_loader_free(ld);
  if (st == UNMIX_OK && row != ds->n)
    st = unmix_error_set(UNMIX_ERR_FORMAT, "raw pixels: saw %lld of %lld samples", (long long)row, (long long)ds->n);
  if (st != UNMIX_OK) {
    free(out);
    free(lab);
    return st;
  }
  *feat = out;
  *labels = lab;
  *dim = d;
  return UNMIX_OK;
}

int unmix_cmd_baseline(int argc, char **argv) {
  const char **sets = calloc((size_t)argc + 1, sizeof *sets);
  const char *csv = "baseline.csv";
  int nsets = 0, rc = 2;
  static const struct option opts[] = {{"set", required_argument, 0, 's'}, {"csv", required_argument, 0, 'c'},
                                       {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
  optind = 1;
  int o;
  while ((o = getopt_long(argc, argv, "s:c:h", opts, NULL)) != -1) {
    switch (o) {
      case 's': sets[nsets++] = optarg; break;
      case 'c': csv = optarg; break;
      case 'h': usage(stdout); free(sets); return 0;
      default:
        unmix_cli_option_hint(stderr, "baseline", opts, argv[optind - 1]);
        free(sets);
        return 2;
    }
  }
  if (optind != argc - 1) {
    usage(stderr);
    free(sets);
    return 2;
  }
  const char *man = argv[optind];
  struct unmix_config cfg;
  if (unmix_manifest_load(man, sets, nsets, &cfg) != UNMIX_OK) {
    free(sets);
    return unmix_cmd_fail("baseline");
  }
  free(sets);
  rc = 1;
  const struct unmix_backend *be = NULL;
  struct unmix_dataset *bank = NULL, *test = NULL;
  struct unmix_method *m = NULL;
  float *fb = NULL, *fq = NULL;
  int32_t *lb = NULL, *lq = NULL;
  FILE *f = NULL;
  struct unmix_recipe recipe;
  struct unmix_dataset_options dso;
  if (unmix_backend_get(cfg.backend, &be) != UNMIX_OK) goto fail;
  be->set_precision(cfg.precision);
  if (unmix_recipe_from_config(&cfg.data, &recipe) != UNMIX_OK) goto fail;
  unmix_dataset_options_from_config(&cfg.data, UNMIX_SPLIT_TRAIN, &dso);
  if (cfg.knn.bank_subset > 0) dso.subset = cfg.knn.bank_subset;
  if (unmix_dataset_open(&dso, &bank) != UNMIX_OK) goto fail;
  unmix_dataset_options_from_config(&cfg.data, UNMIX_SPLIT_TEST, &dso);
  if (cfg.knn.test_subset > 0) dso.subset = cfg.knn.test_subset;
  if (unmix_dataset_open(&dso, &test) != UNMIX_OK) goto fail;
  const int batch = cfg.optim.batch_size, workers = cfg.data.workers;
  const int k = cfg.knn.k < bank->n ? cfg.knn.k : (int)bank->n;

  /* raw pixels */
  double t0 = unmix_now();
  int d = 0;
  if (pixel_features(bank, &recipe, batch, workers, &fb, &lb, &d) != UNMIX_OK) goto fail;
  if (pixel_features(test, &recipe, batch, workers, &fq, &lq, &d) != UNMIX_OK) goto fail;
  const struct unmix_backend *cpu = NULL;
  if (unmix_backend_get("cpu", &cpu) != UNMIX_OK) goto fail;
  struct unmix_knn_params p = unmix_knn_params_default();
  p.k = k;
  p.t = cfg.knn.t;
  p.num_classes = bank->num_classes;
  struct unmix_knn_result px;
  if (unmix_knn_classify(cpu, fb, lb, (int)bank->n, d, fq, lq, (int)test->n, &p, &px, NULL, NULL) != UNMIX_OK)
    goto fail;
  const double px_secs = unmix_now() - t0;

  /* the untrained network: the run's initialisation */
  const int S = recipe.views[0].size > 0 ? recipe.views[0].size : bank->h;
  if (unmix_method_create(&cfg, be, S, NULL, &m) != UNMIX_OK) goto fail;
  struct unmix_model *enc = unmix_method_encoder(m);
  struct unmix_knn_eval ev;
  if (unmix_knn_monitor(be, enc, bank, test, &recipe, &cfg.knn, batch, workers, &ev) != UNMIX_OK) goto fail;

  printf("baseline %s (%s, kNN k %d t %g, %lld bank, %lld queries):\n", cfg.name, bank->name, k, cfg.knn.t,
         (long long)bank->n, (long long)test->n);
  printf("  raw-pixels  top-1 %6.2f%%  top-5 %6.2f%%  (%d-d, %.1f s)\n", px.top1, px.top5, d, px_secs);
  printf("  untrained   top-1 %6.2f%%  top-5 %6.2f%%  (%d-d embedding, %.1f s on %s)\n", ev.top1, ev.top5,
         unmix_model_node_dim(enc, enc->embed_node), ev.seconds, be->name);
  f = fopen(csv, "w");
  if (!f) {
    unmix_error_set(UNMIX_ERR_IO, "cannot write %s", csv);
    goto fail;
  }
  fprintf(f, "baseline,manifest,dataset,features,dim,k,t,bank,queries,top1,top5,seconds\n");
  fprintf(f, "raw-pixels,%s,%s,pixels,%d,%d,%g,%lld,%lld,%.4f,%.4f,%.2f\n", man, bank->name, d, k, cfg.knn.t,
          (long long)bank->n, (long long)test->n, px.top1, px.top5, px_secs);
  fprintf(f, "untrained,%s,%s,embedding,%d,%d,%g,%lld,%lld,%.4f,%.4f,%.2f\n", man, bank->name,
          unmix_model_node_dim(enc, enc->embed_node), k, cfg.knn.t, (long long)bank->n, (long long)test->n, ev.top1,
          ev.top5, ev.seconds);
  if (fclose(f) != 0) {
    f = NULL;
    unmix_error_set(UNMIX_ERR_IO, "cannot write %s", csv);
    goto fail;
  }
  f = NULL;
  rc = 0;
  goto done;
fail:
  rc = unmix_cmd_fail("baseline");
done:
  if (f) fclose(f);
  free(fb);
  free(fq);
  free(lb);
  free(lq);
  unmix_method_destroy(m);
  unmix_dataset_free(bank);
  unmix_dataset_free(test);
  unmix_config_free(&cfg);
  return rc;
}
