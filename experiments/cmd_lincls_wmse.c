/* `unmix lincls CKPT --protocol wmse-cifar`: backbone features of the train and test splits
 * through the run's evaluation transform (ToTensor + Normalize), computed once; a linear
 * classifier trained on them with the W-MSE codebase's Adam + exponential-decay protocol;
 * top-1/top-5 on the test split; summary.csv in the output directory. */
#include "experiments/cmd_lincls_wmse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io/csv.h"
#include "eval/ckpt_model.h"
#include "eval/features.h"
#include "eval/lincls_features.h"
#include "experiments/commands.h"
#include "experiments/evalcli.h"

#define WMSE_SUMMARY_COLUMNS                                                                                  \
  "checkpoint", "label", "pretrain_epochs", "protocol", "epochs", "lr", "lr_end", "batch_size", "weight_decay", \
      "top1", "top5", "train_samples", "test_samples", "seconds", "backend"

int unmix_lincls_wants_wmse(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--protocol=wmse-cifar")) return 1;
    if (!strcmp(argv[i], "--protocol") && i + 1 < argc && !strcmp(argv[i + 1], "wmse-cifar")) return 1;
  }
  return 0;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: unmix lincls CKPT --protocol wmse-cifar [options]\n\n"
          "The linear protocol of the W-MSE codebase (the SimCLR/BYOL runs; docs/FIDELITY.md): the\n"
          "512-d backbone features of the online encoder in eval mode, computed once through the run's\n"
          "evaluation transform (ToTensor + Normalize, no augmentation, no scaling); nn.Linear(d, C) with\n"
          "PyTorch's default init; Adam lr 1e-2, coupled L2 5e-6, 500 epochs over shuffled batches of\n"
          "1000 (a remainder smaller than a batch is left out each epoch), ExponentialLR to 1e-6; top-1\n"
          "and top-5 of the arg-max on the test split.\n\n"
          "options:\n"
          "  --epochs N  --lr X  --lr-end X  --wd X  --batch-size N   override the reference values\n"
          "  --subset N  --test-subset N   first N train / test samples (default: all)\n"
          "  --seed N            data order and classifier init (default: the manifest's seed)\n"
          "  --out DIR           output directory (default: lincls-wmse-cifar next to CKPT): summary.csv\n"
          "                      (checkpoint, label, pretrain_epochs, protocol, epochs, lr, lr_end,\n"
          "                      batch_size, weight_decay, top1, top5, train_samples, test_samples,\n"
          "                      seconds, backend)\n"
          "  --quiet             no progress line\n");
  unmix_evalcli_help(f);
}

int unmix_cmd_lincls_wmse(int argc, char **argv) {
  struct unmix_evalcli cli;
  unmix_evalcli_init(&cli, "lincls");
  struct unmix_linfeat_params p = unmix_linfeat_reference();
  long long epochs = 0, batch_size = 0, subset = 0, test_subset = 0, seed = -1;
  double lr = -1, lr_end = -1, wd = -1;
  const char *out_dir = NULL;
  int quiet = 0;
  static const struct option opts[] = {{"protocol", required_argument, 0, 'p'},
                                       {"epochs", required_argument, 0, 'e'},
                                       {"lr", required_argument, 0, 'l'},
                                       {"lr-end", required_argument, 0, 'L'},
                                       {"wd", required_argument, 0, 'w'},
                                       {"batch-size", required_argument, 0, 'b'},
                                       {"subset", required_argument, 0, 's'},
                                       {"test-subset", required_argument, 0, 'S'},
                                       {"seed", required_argument, 0, 'x'},
                                       {"out", required_argument, 0, 'o'},
                                       {"quiet", no_argument, 0, 'q'},
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
      case 'p': break; /* wmse-cifar: how we got here */
      case 'e':
        if (!unmix_evalcli_int("lincls", "--epochs", optarg, 1, 1 << 20, &epochs)) return 2;
        break;
      case 'l':
        if (!unmix_evalcli_float("lincls", "--lr", optarg, 1e-12, 1e6, &lr)) return 2;
        break;
      case 'L':
        if (!unmix_evalcli_float("lincls", "--lr-end", optarg, 1e-12, 1e6, &lr_end)) return 2;
        break;
      case 'w':
        if (!unmix_evalcli_float("lincls", "--wd", optarg, 0, 1, &wd)) return 2;
        break;
      case 'b':
        if (!unmix_evalcli_int("lincls", "--batch-size", optarg, 1, 1 << 20, &batch_size)) return 2;
        break;
      case 's':
        if (!unmix_evalcli_int("lincls", "--subset", optarg, 0, 1LL << 40, &subset)) return 2;
        break;
      case 'S':
        if (!unmix_evalcli_int("lincls", "--test-subset", optarg, 0, 1LL << 40, &test_subset)) return 2;
        break;
      case 'x':
        if (!unmix_evalcli_int("lincls", "--seed", optarg, 0, 1LL << 62, &seed)) return 2;
        break;
      case 'o': out_dir = optarg; break;
      case 'q': quiet = 1; break;
      case 'h': usage(stdout); return 0;
      default: usage(stderr); return 2;
    }
  }
  if (optind != argc - 1) {
    fprintf(stderr, "unmix lincls: expected exactly one CKPT (got %d)\n\n", argc - optind);
    usage(stderr);
    return 2;
  }
  const char *path = argv[optind];
  struct unmix_eval_ckpt *e = NULL;
  struct unmix_dataset *train = NULL, *test = NULL;
  struct unmix_model *m = NULL;
  const struct unmix_backend *be = NULL;
  struct unmix_recipe rc;
  float *ftr = NULL, *fte = NULL;
  int32_t *ltr = NULL, *lte = NULL;
  struct unmix_csv_writer *w = NULL;
  int rcode = 1;
  if (unmix_eval_ckpt_open(path, &cli.open, &e) != UNMIX_OK) goto fail;
  p.seed = seed >= 0 ? (uint64_t)seed : e->cfg.seed;
  if (epochs > 0) p.epochs = (int)epochs;
  if (lr > 0) p.lr = lr;
  if (lr_end > 0) p.lr_end = lr_end;
  if (wd >= 0) p.weight_decay = wd;
  if (batch_size > 0) p.batch_size = (int)batch_size;
  if (unmix_eval_backend(e, cli.backend, &be) != UNMIX_OK) goto fail;
  if (unmix_eval_recipe(e, NULL, &rc) != UNMIX_OK) goto fail; /* the run's own test transform */
  if (unmix_eval_open_dataset(e, UNMIX_SPLIT_TRAIN, subset, &train) != UNMIX_OK) goto fail;
  if (unmix_eval_open_dataset(e, UNMIX_SPLIT_TEST, test_subset, &test) != UNMIX_OK) goto fail;
  const int size = unmix_eval_image_size(e, &rc, train);
  if (unmix_eval_check_input(e, &rc.eval, train, size) != UNMIX_OK) goto fail;
  if (unmix_eval_check_input(e, &rc.eval, test, size) != UNMIX_OK) goto fail;
  if (unmix_eval_build_model(e, be, 0, size, &m) != UNMIX_OK) goto fail;
  const int batch = cli.batch > 0 ? cli.batch : 256;
  const int workers = cli.workers >= 0 ? cli.workers : e->cfg.data.workers;
  int d = 0;
  if (unmix_extract_features(be, m, m->feat_node, train, &rc, batch, workers, false, &ftr, &ltr, &d) != UNMIX_OK)
    goto fail;
  if (unmix_extract_features(be, m, m->feat_node, test, &rc, batch, workers, false, &fte, &lte, &d) != UNMIX_OK)
    goto fail;
  if (!quiet) {
    printf("lincls %s (%s): protocol wmse-cifar, %d epochs, Adam lr %g -> %g (exponential), wd %g, batch %d; %d-d "
           "backbone features of %lld train / %lld test samples of %s, %d classes; %s\n",
           e->label, path, p.epochs, p.lr, p.lr_end, p.weight_decay, p.batch_size, d, (long long)train->n,
           (long long)test->n, train->name, train->num_classes, be->name);
    fflush(stdout);
  }
  struct unmix_linfeat_result r;
  if (unmix_linfeat_run(be, ftr, ltr, (int)train->n, fte, lte, (int)test->n, d, train->num_classes, &p, &r, NULL,
                        NULL) != UNMIX_OK)
    goto fail;
  char dir[UNMIX_PATH_MAX], dbuf[UNMIX_PATH_MAX + 64], sum_path[UNMIX_PATH_MAX + 96];
  if (!out_dir) {
    snprintf(dbuf, sizeof dbuf, "%s/lincls-wmse-cifar", unmix_evalcli_dirname(path, dir, sizeof dir));
    out_dir = dbuf;
  }
  if (unmix_evalcli_mkdirs(out_dir) != UNMIX_OK) goto fail;
  snprintf(sum_path, sizeof sum_path, "%s/summary.csv", out_dir);
  static const char *const cols[] = {WMSE_SUMMARY_COLUMNS};
  if (unmix_csv_open(sum_path, cols, (int)(sizeof cols / sizeof cols[0]), false, &w) != UNMIX_OK) goto fail;
  unmix_status st = unmix_csv_set(w, "checkpoint", path);
  if (st == UNMIX_OK) st = unmix_csv_set(w, "label", e->label);
  if (st == UNMIX_OK && e->epochs_done >= 0) st = unmix_csv_setf(w, "pretrain_epochs", "%d", e->epochs_done);
  if (st == UNMIX_OK) st = unmix_csv_set(w, "protocol", "wmse-cifar");
  if (st == UNMIX_OK) st = unmix_csv_setf(w, "epochs", "%d", r.epochs);
  if (st == UNMIX_OK) st = unmix_csv_setf(w, "lr", "%.9g", p.lr);
  if (st == UNMIX_OK) st = unmix_csv_setf(w, "lr_end", "%.9g", p.lr_end);
  if (st == UNMIX_OK) st = unmix_csv_setf(w, "batch_size", "%d", p.batch_size);
  if (st == UNMIX_OK) st = unmix_csv_setf(w, "weight_decay", "%.9g", p.weight_decay);
  if (st == UNMIX_OK) st = unmix_csv_setf(w, "top1", "%.4f", r.top1);
  if (st == UNMIX_OK) st = unmix_csv_setf(w, "top5", "%.4f", r.top5);
  if (st == UNMIX_OK) st = unmix_csv_setf(w, "train_samples", "%lld", (long long)r.train_samples);
  if (st == UNMIX_OK) st = unmix_csv_setf(w, "test_samples", "%lld", (long long)r.test_samples);
  if (st == UNMIX_OK) st = unmix_csv_setf(w, "seconds", "%.3f", r.seconds);
  if (st == UNMIX_OK) st = unmix_csv_set(w, "backend", be->name);
  if (st == UNMIX_OK) st = unmix_csv_end_row(w);
  unmix_status cs = unmix_csv_close(w);
  w = NULL;
  if (st != UNMIX_OK || cs != UNMIX_OK) goto fail;
  printf("lincls %s, wmse-cifar protocol, %d epochs: top-1 %.2f%%  top-5 %.2f%%  (last train loss %.4f, %.1f s on "
         "%s) -> %s\n",
         e->label, r.epochs, r.top1, r.top5, r.last_train_loss, r.seconds, be->name, sum_path);
  rcode = 0;
fail:
  if (rcode) unmix_cmd_fail("lincls");
  if (w) unmix_csv_close(w);
  if (ftr) be->free(ftr);
  if (fte) be->free(fte);
  free(ltr);
  free(lte);
  unmix_model_destroy(m);
  unmix_dataset_free(train);
  unmix_dataset_free(test);
  unmix_eval_ckpt_close(e);
  return rcode;
}
