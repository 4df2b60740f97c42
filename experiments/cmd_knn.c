/* `unmix knn CKPT`: the kNN monitor of the MoCo CIFAR code (SPEC §2.7) run standalone on a
 * checkpoint - memory bank = the train split, queries = the test split, both through the
 * recipe's evaluation transform - with the same defaults as the run's monitor, so it
 * reproduces the knn_top1/knn_top5 of the run's last metrics.csv row. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "eval/ckpt_model.h"
#include "eval/features.h"
#include "eval/knn.h"
#include "experiments/commands.h"
#include "experiments/evalcli.h"

/* The W-MSE codebase's kNN: unnormalised backbone features, Euclidean, unweighted votes. */
static unmix_status knn_wmse(const struct unmix_backend *be, struct unmix_model *m, const struct unmix_dataset *bank,
                             const struct unmix_dataset *test, const struct unmix_recipe *rc, int k, int batch,
                             int workers, struct unmix_knn_eval *out) {
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  float *fb = NULL, *fq = NULL;
  int32_t *lb = NULL, *lq = NULL;
  int d = 0;
  unmix_status st = unmix_extract_features(be, m, m->feat_node, bank, rc, batch, workers, false, &fb, &lb, &d);
  if (st == UNMIX_OK) st = unmix_extract_features(be, m, m->feat_node, test, rc, batch, workers, false, &fq, &lq, &d);
  struct unmix_knn_params kp = unmix_knn_params_default();
  kp.k = k;
  kp.num_classes = bank->num_classes;
  struct unmix_knn_result res;
  if (st == UNMIX_OK)
    st = unmix_knn_euclid_classify(be, fb, lb, (int)bank->n, d, fq, lq, (int)test->n, &kp, &res, NULL, NULL);
  if (st == UNMIX_OK) {
    clock_gettime(CLOCK_MONOTONIC, &t1);
    out->top1 = res.top1;
    out->top5 = res.top5;
    out->bank = bank->n;
    out->queries = test->n;
    out->seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
  }
  if (fb) be->free(fb);
  if (fq) be->free(fq);
  free(lb);
  free(lq);
  return st;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: unmix knn CKPT [options]\n\n"
          "Weighted kNN classification (SPEC §2.7) of the checkpoint's encoder: the train split is the\n"
          "memory bank, the test split the queries, both through the recipe's evaluation transform;\n"
          "L2-normalised features, the k most similar bank entries vote with weights exp(cos/t).\n"
          "Defaults repeat the run's monitor, so the result equals the last knn_top1/5 of metrics.csv.\n\n"
          "options:\n"
          "  --k N               neighbours (default: the manifest's knn.k, 200)\n"
          "  --t T               temperature (default: knn.t, 0.1)\n"
          "  --bank-subset N     first N train samples as the bank (default: knn.bank_subset, else\n"
          "                      data.subset; 0 = all)\n"
          "  --test-subset N     first N test samples as queries (default: knn.test_subset, else\n"
          "                      data.test_subset; 0 = all)\n"
          "  --features head|backbone   the monitor's embedding (MoCo: fc output; SwAV: projection;\n"
          "                      default) or the backbone's avgpool features\n"
          "  --protocol moco|wmse   moco: the weighted cosine monitor above (default); wmse: the W-MSE\n"
          "                      codebase's kNN of the SimCLR/BYOL runs (docs/FIDELITY.md) - Euclidean\n"
          "                      distance on the unnormalised backbone features, k 5, one vote per\n"
          "                      neighbour, equal counts to the lower class (t is not used: empty column)\n"
          "  --csv FILE          result row (default: knn.csv next to CKPT); columns: checkpoint, label,\n"
          "                      epochs (of pre-training; empty when unknown), features, k, t, bank,\n"
          "                      queries, top1, top5 (%%), seconds\n");
  unmix_evalcli_help(f);
}

int unmix_cmd_knn(int argc, char **argv) {
  struct unmix_evalcli cli;
  unmix_evalcli_init(&cli, "knn");
  long long k = -1, bank_subset = -1, test_subset = -1;
  double t = -1;
  const char *csv = NULL;
  bool backbone = false, wmse = false;
  static const struct option opts[] = {{"k", required_argument, 0, 'k'},
                                       {"protocol", required_argument, 0, 'P'},
                                       {"t", required_argument, 0, 't'},
                                       {"bank-subset", required_argument, 0, 'B'},
                                       {"test-subset", required_argument, 0, 'T'},
                                       {"features", required_argument, 0, 'F'},
                                       {"csv", required_argument, 0, 'c'},
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
      case 'k':
        if (!unmix_evalcli_int("knn", "--k", optarg, 1, 1 << 20, &k)) return 2;
        break;
      case 't':
        if (!unmix_evalcli_float("knn", "--t", optarg, 1e-6, 1e6, &t)) return 2;
        break;
      case 'B':
        if (!unmix_evalcli_int("knn", "--bank-subset", optarg, 0, 1LL << 40, &bank_subset)) return 2;
        break;
      case 'T':
        if (!unmix_evalcli_int("knn", "--test-subset", optarg, 0, 1LL << 40, &test_subset)) return 2;
        break;
      case 'F':
        if (!strcmp(optarg, "backbone")) backbone = true;
        else if (!strcmp(optarg, "head")) backbone = false;
        else {
          fprintf(stderr, "unmix knn: --features must be head or backbone, got '%s'\n", optarg);
          return 2;
        }
        break;
      case 'P':
        if (!strcmp(optarg, "wmse")) wmse = true;
        else if (!strcmp(optarg, "moco")) wmse = false;
        else {
          fprintf(stderr, "unmix knn: --protocol must be moco or wmse, got '%s'\n", optarg);
          return 2;
        }
        break;
      case 'c': csv = optarg; break;
      case 'h': usage(stdout); return 0;
      default: usage(stderr); return 2;
    }
  }
  if (optind != argc - 1) {
    fprintf(stderr, "unmix knn: expected exactly one CKPT (got %d)\n\n", argc - optind);
    usage(stderr);
    return 2;
  }
  const char *path = argv[optind];
  struct unmix_eval_ckpt *e = NULL;
  struct unmix_dataset *bank = NULL, *test = NULL;
  struct unmix_model *m = NULL;
  const struct unmix_backend *be = NULL;
  struct unmix_recipe rc;
  struct unmix_evalcli_out out = {0};
  int rcode = 1;
  if (unmix_eval_ckpt_open(path, &cli.open, &e) != UNMIX_OK) goto fail;
  const struct unmix_config *cfg = &e->cfg;
  struct unmix_knn_config kc = cfg->knn;
  if (wmse) kc.k = 5;
  if (k > 0) kc.k = (int)k;
  if (t > 0) kc.t = (float)t;
  /* the trainer's monitor: knn.*_subset when set, else the data section's subsets */
  int64_t nb = bank_subset >= 0 ? bank_subset : kc.bank_subset > 0 ? kc.bank_subset : cfg->data.subset;
  int64_t nq = test_subset >= 0 ? test_subset : kc.test_subset > 0 ? kc.test_subset : cfg->data.test_subset;
  if (unmix_eval_backend(e, cli.backend, &be) != UNMIX_OK) goto fail;
  if (unmix_eval_recipe(e, NULL, &rc) != UNMIX_OK) goto fail;
  if (unmix_eval_open_dataset(e, UNMIX_SPLIT_TRAIN, nb, &bank) != UNMIX_OK) goto fail;
  if (unmix_eval_open_dataset(e, UNMIX_SPLIT_TEST, nq, &test) != UNMIX_OK) goto fail;
  const int size = unmix_eval_image_size(e, &rc, bank);
  if (unmix_eval_check_input(e, &rc.eval, bank, size) != UNMIX_OK) goto fail;
  if (unmix_eval_check_input(e, &rc.eval, test, size) != UNMIX_OK) goto fail;
  if (unmix_eval_build_model(e, be, 0, size, &m) != UNMIX_OK) goto fail;
  if (backbone || wmse) m->embed_node = m->feat_node; /* the monitor reads embed_node */
  const char *feat_name = m->embed_node == m->feat_node ? "backbone" : "head";
  if (kc.k > bank->n) {
    fprintf(stderr, "unmix knn: note: k = %d is more than the %lld bank samples; using k = %lld\n", kc.k,
            (long long)bank->n, (long long)bank->n);
  }
  const int batch = cli.batch > 0 ? cli.batch : cfg->optim.batch_size;
  const int workers = cli.workers >= 0 ? cli.workers : cfg->data.workers;
  struct unmix_knn_eval r;
  if (wmse) {
    if (knn_wmse(be, m, bank, test, &rc, kc.k < bank->n ? kc.k : (int)bank->n, batch, workers, &r) != UNMIX_OK)
      goto fail;
  } else if (unmix_knn_monitor(be, m, bank, test, &rc, &kc, batch, workers, &r) != UNMIX_OK) {
    goto fail;
  }
  char tcol[32] = "";
  if (!wmse) snprintf(tcol, sizeof tcol, "%.6g", (double)kc.t);

  char csv_buf[UNMIX_PATH_MAX + 16], dir[UNMIX_PATH_MAX];
  if (!csv) {
    snprintf(csv_buf, sizeof csv_buf, "%s/knn.csv", unmix_evalcli_dirname(path, dir, sizeof dir));
    csv = csv_buf;
  }
  if (unmix_evalcli_out_open(&out) != UNMIX_OK) goto fail;
  fprintf(out.f, "checkpoint,label,epochs,features,k,t,bank,queries,top1,top5,seconds\n");
  unmix_evalcli_csv_field(out.f, path);
  fputc(',', out.f);
  unmix_evalcli_csv_field(out.f, e->label);
  char ep[16] = "";
  if (e->epochs_done >= 0) snprintf(ep, sizeof ep, "%d", e->epochs_done);
  fprintf(out.f, ",%s,%s,%d,%s,%lld,%lld,%.4f,%.4f,%.3f\n", ep, wmse ? "backbone-euclidean" : feat_name,
          kc.k < bank->n ? kc.k : (int)bank->n, tcol, (long long)r.bank, (long long)r.queries, r.top1, r.top5,
          r.seconds);
  if (unmix_evalcli_out_commit(&out, csv) != UNMIX_OK) goto fail;
  printf("kNN %s (%s, epoch %s, %s features, k %d, t %s): top-1 %.2f%%  top-5 %.2f%%  (%lld bank, %lld queries, "
         "%.1f s on %s) -> %s\n",
         e->label, path, ep[0] ? ep : "unknown", wmse ? "backbone, Euclidean, unweighted" : feat_name,
         kc.k < bank->n ? kc.k : (int)bank->n, wmse ? "-" : tcol, r.top1, r.top5,
         (long long)r.bank, (long long)r.queries, r.seconds, be->name, csv);
  rcode = 0;
fail:
  if (rcode) unmix_cmd_fail("knn");
  unmix_evalcli_out_discard(&out);
  unmix_model_destroy(m);
  unmix_dataset_free(bank);
  unmix_dataset_free(test);
  unmix_eval_ckpt_close(e);
  return rcode;
}
