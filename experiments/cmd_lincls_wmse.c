/* `unmix lincls CKPT --protocol wmse-cifar`: backbone features of the train and test splits
 * through the run's evaluation transform (ToTensor + Normalize), computed once; a linear
 * classifier trained on them with the W-MSE codebase's Adam + exponential-decay protocol;
 * top-1/top-5 on the test split; summary.csv in the output directory. */
#include "experiments/cmd_lincls_wmse.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io/csv.h"
#include "core/util/fs.h"
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

struct wmse_opts {
  const char *protocol, *out_dir;
  long long epochs, batch_size, subset, test_subset;
  struct unmix_opt_u64 seed;
  double lr, lr_end, wd;
  bool quiet;
};
#define WO(f) offsetof(struct wmse_opts, f)
static const char *const g_protocol[] = {"wmse-cifar", NULL};
static const struct unmix_opt g_opts[] = {
    {.name = "protocol", .type = UNMIX_OPT_CHOICE, .choices = g_protocol, .off = WO(protocol), .def = "wmse-cifar",
     .help = "this protocol (the others: `unmix lincls --help`)"},
    {.name = "epochs", .type = UNMIX_OPT_INT, .arg = "N", .range = UNMIX_OPT_IN(1, 1 << 20), .off = WO(epochs),
     .def = "500", .help = "epochs (the decay still ends at --lr-end)"},
    {.name = "lr", .type = UNMIX_OPT_FLOAT, .arg = "X", .range = {0, 1e6, true, false}, .off = WO(lr), .def = "0.01",
     .help = "Adam learning rate at the start"},
    {.name = "lr-end", .type = UNMIX_OPT_FLOAT, .arg = "X", .range = {0, 1e6, true, false}, .off = WO(lr_end),
     .def = "1e-6", .help = "learning rate reached after the last epoch (ExponentialLR)"},
    {.name = "wd", .type = UNMIX_OPT_FLOAT, .arg = "X", .range = UNMIX_OPT_IN(0, 1), .off = WO(wd), .def = "5e-6",
     .help = "Adam's coupled L2 weight decay"},
    {.name = "batch-size", .type = UNMIX_OPT_INT, .arg = "N", .range = UNMIX_OPT_IN(1, 1 << 20),
     .off = WO(batch_size), .def = "1000", .help = "minibatch (a remainder smaller than it is left out each epoch)"},
    {.name = "subset", .type = UNMIX_OPT_INT, .arg = "N", .range = UNMIX_OPT_IN(0, 1e12), .off = WO(subset),
     .def = "0", .help = "first N training samples (0 = all)"},
    {.name = "test-subset", .type = UNMIX_OPT_INT, .arg = "N", .range = UNMIX_OPT_IN(0, 1e12),
     .off = WO(test_subset), .def = "0", .help = "first N test samples (0 = all)"},
    {.name = "seed", .type = UNMIX_OPT_U64, .arg = "N", .off = WO(seed), .def_doc = "the manifest's seed",
     .help = "data order and classifier init"},
    {.name = "out", .type = UNMIX_OPT_STRING, .arg = "DIR", .off = WO(out_dir),
     .def_doc = "lincls-wmse-cifar next to CKPT",
     .help = "output directory: summary.csv (checkpoint, label, pretrain_epochs,\n"
             "protocol, epochs, lr, lr_end, batch_size, weight_decay, top1, top5,\n"
             "train_samples, test_samples, seconds, backend)"},
    {.name = "quiet", .type = UNMIX_OPT_FLAG, .off = WO(quiet), .help = "no progress line"},
};

static const struct unmix_evalcmd g_cmd = {
    "lincls",
    "usage: unmix lincls CKPT --protocol wmse-cifar [options]\n\n"
    "The linear protocol of the W-MSE codebase (the SimCLR/BYOL runs; docs/FIDELITY.md): the\n"
    "512-d backbone features of the online encoder in eval mode, computed once through the run's\n"
    "evaluation transform (ToTensor + Normalize, no augmentation, no scaling); nn.Linear(d, C) with\n"
    "PyTorch's default init; Adam lr 1e-2, coupled L2 5e-6, 500 epochs over shuffled batches of\n"
    "1000, ExponentialLR to 1e-6; top-1 and top-5 of the arg-max on the test split. Data order and\n"
    "init come from Philox streams of the seed: runs are reproducible.\n\n"
    "example: unmix lincls results/runs/cifar10_simclr/checkpoint.safetensors --protocol wmse-cifar\n",
    g_opts, (int)(sizeof g_opts / sizeof g_opts[0]),
    .common = UNMIX_EVALCLI_ALL,
    .batch_help = "feature-extraction batch (the linear layer's is --batch-size)",
    .batch_def = "256"};

int unmix_cmd_lincls_wmse(int argc, char **argv) {
  struct unmix_evalcli cli;
  struct wmse_opts o = {0};
  char **pos = unmix_xmalloc(sizeof(char *) * (size_t)(argc + 1));
  int npos = 0;
  int pr = unmix_evalcli_parse(&g_cmd, &o, &cli, argc, argv, pos, &npos);
  const char *path = npos == 1 ? pos[0] : NULL;
  free(pos);
  if (pr >= 0) return pr;
  if (npos != 1) {
    fprintf(stderr, "unmix lincls: expected exactly one CKPT (got %d)\n\n", npos);
    unmix_evalcli_usage(&g_cmd, stderr);
    return 2;
  }
  struct unmix_linfeat_params p = unmix_linfeat_reference();
  p.epochs = (int)o.epochs;
  p.lr = o.lr;
  p.lr_end = o.lr_end;
  p.weight_decay = o.wd;
  p.batch_size = (int)o.batch_size;
  const long long subset = o.subset, test_subset = o.test_subset;
  const char *out_dir = o.out_dir;
  const bool quiet = o.quiet;
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
  p.seed = o.seed.set ? o.seed.v : e->cfg.seed;
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
    snprintf(dbuf, sizeof dbuf, "%s/lincls-wmse-cifar", unmix_fs_dirname(path, dir, sizeof dir));
    out_dir = dbuf;
  }
  if (unmix_fs_mkdirs(out_dir, 0755) != UNMIX_OK) goto fail;
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
