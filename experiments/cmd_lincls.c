/* `unmix lincls CKPT`: linear evaluation on frozen features (eval/lincls.h) with the
 * protocol of the checkpoint's manifest (linear.*) or another one; writes the per-epoch
 * curve (the paper's Figure 3) and a summary row. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io/csv.h"
#include "core/io/manifest.h"
#include "core/util/fs.h"
#include "eval/ckpt_model.h"
#include "eval/lincls.h"
#include "experiments/cmd_lincls_wmse.h"
#include "experiments/commands.h"
#include "experiments/evalcli.h"

#define SUMMARY_COLUMNS                                                                                              \
  "checkpoint", "label", "pretrain_epochs", "protocol", "epochs", "lr", "batch_size", "weight_decay", "schedule",  \
      "best_top1", "best_epoch", "best_top5", "last_top1", "last_top5", "train_samples", "test_samples",            \
      "seconds_per_epoch", "backend"

struct lincls_opts {
  const char *protocol, *out_dir;
  long long epochs, batch_size, subset, test_subset, stop_after;
  struct unmix_opt_u64 seed;
  double lr, momentum, wd;
  int milestones[UNMIX_MAX_MILESTONES], n_milestones;
  bool resume, quiet;
};
#define LO(f) offsetof(struct lincls_opts, f)
static const struct unmix_opt g_opts[] = {
    {.name = "protocol", .type = UNMIX_OPT_CHOICE, .key = "linear.protocol", .off = LO(protocol),
     .def_doc = "linear.protocol", .help = "evaluation protocol"},
    {.name = "epochs", .type = UNMIX_OPT_INT, .arg = "N", .key = "linear.epochs", .off = LO(epochs),
     .help = "epochs (the schedule is stretched/shrunk with it: cosine over N epochs;\n"
             "milestones are kept as given)"},
    {.name = "lr", .type = UNMIX_OPT_FLOAT, .arg = "X", .key = "linear.lr", .off = LO(lr),
     .help = "learning rate (overrides the protocol's)"},
    {.name = "momentum", .type = UNMIX_OPT_FLOAT, .arg = "X", .key = "linear.momentum", .off = LO(momentum),
     .help = "SGD momentum (overrides the protocol's)"},
    {.name = "wd", .type = UNMIX_OPT_FLOAT, .arg = "X", .key = "linear.weight_decay", .off = LO(wd),
     .help = "weight decay (overrides the protocol's)"},
    {.name = "batch-size", .type = UNMIX_OPT_INT, .arg = "N", .key = "linear.batch_size", .off = LO(batch_size),
     .help = "training batch (overrides the protocol's)"},
    {.name = "milestones", .type = UNMIX_OPT_INT_LIST, .arg = "A,B,..", .key = "linear.milestones",
     .off = LO(milestones), .cap = UNMIX_MAX_MILESTONES, .count_off = LO(n_milestones),
     .help = "step-decay epochs, increasing (0-based; lr x0.1 from each)"},
    {.name = "subset", .type = UNMIX_OPT_INT, .arg = "N", .key = "data.subset", .off = LO(subset),
     .help = "first N training samples (0 = all)"},
    {.name = "test-subset", .type = UNMIX_OPT_INT, .arg = "N", .key = "data.test_subset", .off = LO(test_subset),
     .help = "first N test samples (0 = all)"},
    {.name = "seed", .type = UNMIX_OPT_U64, .arg = "N", .key = "seed", .off = LO(seed),
     .def_doc = "the manifest's seed", .help = "data order / augmentation / fc init seed"},
    {.name = "out", .type = UNMIX_OPT_STRING, .arg = "DIR", .off = LO(out_dir),
     .def_doc = "lincls-<protocol> next to CKPT",
     .help = "output directory: lincls.csv (epoch, lr, train_loss, train_top1,\n"
             "test_top1, test_top5, best_top1, seconds), summary.csv, lincls.safetensors\n"
             "(fc + SGD state)"},
    {.name = "resume", .type = UNMIX_OPT_FLAG, .off = LO(resume),
     .help = "continue DIR's lincls.safetensors (same checkpoint and flags)"},
    {.name = "stop-after-epochs", .type = UNMIX_OPT_INT, .arg = "N", .range = UNMIX_OPT_IN(1, 1 << 24),
     .off = LO(stop_after), .help = "save and stop after N epochs of this invocation"},
    {.name = "quiet", .type = UNMIX_OPT_FLAG, .off = LO(quiet), .help = "no per-epoch lines"},
};

const struct unmix_evalcmd unmix_evalcmd_lincls = {
    "lincls",
    "usage: unmix lincls CKPT [options]\n\n"
    "Linear evaluation: a fresh fc (N(0, 0.01^2), bias 0) on the avgpool features of the frozen\n"
    "backbone in eval mode (BatchNorm on its running statistics, also while training the fc); the\n"
    "pre-training head is discarded; SGD over the fc only; top-1/top-5 on the test split every epoch.\n"
    "Protocols (defaults: the manifest's linear.* block for its protocol, the reference values for\n"
    "another one; docs/FIDELITY.md §5.2):\n"
    "  imagenet    lr 30, momentum 0.9, wd 0, batch 256, 100 epochs, x0.1 at 60 and 80;\n"
    "              RRC(224)+flip / Resize(256)+CenterCrop(224)\n"
    "  swav-cifar  lr 0.3, momentum 0.9, wd 1e-6, batch 32, 100 epochs, cosine annealing per epoch;\n"
    "              RRC(32)+flip, std (0.2470, 0.2435, 0.2616); the best epoch is reported\n"
    "  moco-cifar  lr 30, momentum 0.9, wd 0, batch 256, 100 epochs, x0.1 at 60 and 80; RRC(32)+flip\n"
    "  swav-imagenet  SwAV's eval_linear.py: lr 0.3, momentum 0.9, wd 1e-6, batch 256, 100 epochs,\n"
    "              cosine annealing per epoch; RRC(224)+flip / Resize(256)+CenterCrop(224), std\n"
    "              (0.228, 0.224, 0.225); the best epoch is reported (docs/FIDELITY.md §11.6)\n"
    "  wmse-cifar  the SimCLR/BYOL runs' protocol: Adam on cached features, 500 epochs, exponential\n"
    "              decay; its own options (`unmix lincls CKPT --protocol wmse-cifar --help`)\n"
    "No protocol drops the last partial batch. Data order and augmentation come from the Philox\n"
    "streams of the manifest's seed: runs are reproducible, and --resume continues bit-identically.\n\n"
    "example: unmix lincls results/runs/imagenet_mocov2_unmix_200/checkpoint.safetensors --protocol imagenet\n",
    g_opts, (int)(sizeof g_opts / sizeof g_opts[0]),
    .common = UNMIX_EVALCLI_ALL,
    .batch_help = "test-time forward batch (the training batch is --batch-size)",
    .batch_def = "max(the training batch, 256)"};

static unmix_status write_summary(const char *path, const struct unmix_eval_ckpt *e, const char *ckpt,
                                  const struct unmix_lincls_params *p, const struct unmix_lincls_result *r,
                                  const char *backend) {
  static const char *const cols[] = {SUMMARY_COLUMNS};
  struct unmix_csv_writer *w = NULL;
  UNMIX_TRY(unmix_csv_open(path, cols, (int)(sizeof cols / sizeof cols[0]), false, &w));
  char sched[128];
  if (p->cosine) {
    snprintf(sched, sizeof sched, "cosine");
  } else {
    int k = snprintf(sched, sizeof sched, "step");
    for (int i = 0; i < p->n_milestones; i++) k += snprintf(sched + k, sizeof sched - (size_t)k, "%s%d", i ? "," : ":", p->milestones[i]);
  }
  unmix_status st = unmix_csv_set(w, "checkpoint", ckpt);
  if (st == UNMIX_OK) st = unmix_csv_set(w, "label", e->label);
  if (st == UNMIX_OK && e->epochs_done >= 0) st = unmix_csv_setf(w, "pretrain_epochs", "%d", e->epochs_done);
  if (st == UNMIX_OK) st = unmix_csv_set(w, "protocol", unmix_lincls_name(p->protocol));
  if (st == UNMIX_OK) st = unmix_csv_setf(w, "epochs", "%d", r->epochs);
  if (st == UNMIX_OK) st = unmix_csv_setf(w, "lr", "%.9g", (double)p->lr);
  if (st == UNMIX_OK) st = unmix_csv_setf(w, "batch_size", "%d", p->batch_size);
  if (st == UNMIX_OK) st = unmix_csv_setf(w, "weight_decay", "%.9g", (double)p->weight_decay);
  if (st == UNMIX_OK) st = unmix_csv_set(w, "schedule", sched);
  if (st == UNMIX_OK) st = unmix_csv_setf(w, "best_top1", "%.4f", r->best_top1);
  if (st == UNMIX_OK) st = unmix_csv_setf(w, "best_epoch", "%d", r->best_epoch);
  if (st == UNMIX_OK) st = unmix_csv_setf(w, "best_top5", "%.4f", r->best_top5);
  if (st == UNMIX_OK) st = unmix_csv_setf(w, "last_top1", "%.4f", r->last_top1);
  if (st == UNMIX_OK) st = unmix_csv_setf(w, "last_top5", "%.4f", r->last_top5);
  if (st == UNMIX_OK) st = unmix_csv_setf(w, "train_samples", "%lld", (long long)r->train_samples);
  if (st == UNMIX_OK) st = unmix_csv_setf(w, "test_samples", "%lld", (long long)r->test_samples);
  if (st == UNMIX_OK) st = unmix_csv_setf(w, "seconds_per_epoch", "%.3f", r->seconds_per_epoch);
  if (st == UNMIX_OK) st = unmix_csv_set(w, "backend", backend);
  if (st == UNMIX_OK) st = unmix_csv_end_row(w);
  unmix_status cs = unmix_csv_close(w);
  return st != UNMIX_OK ? st : cs;
}

int unmix_cmd_lincls(int argc, char **argv) {
  if (unmix_lincls_wants_wmse(argc, argv)) return unmix_cmd_lincls_wmse(argc, argv);
  struct unmix_evalcli cli;
  struct lincls_opts o = {.lr = -1, .momentum = -1, .wd = -1, .n_milestones = -1};
  char **pos = unmix_xmalloc(sizeof(char *) * (size_t)(argc + 1));
  int npos = 0;
  int pr = unmix_evalcli_parse(&unmix_evalcmd_lincls, &o, &cli, argc, argv, pos, &npos);
  const char *path = npos == 1 ? pos[0] : NULL;
  free(pos);
  if (pr >= 0) return pr;
  for (int i = 1; i < o.n_milestones; i++)
    if (o.milestones[i] <= o.milestones[i - 1]) {
      fprintf(stderr, "unmix lincls: --milestones must increase, got");
      for (int j = 0; j < o.n_milestones; j++) fprintf(stderr, "%s%d", j ? "," : " '", o.milestones[j]);
      fprintf(stderr, "'\n");
      return 2;
    }
  if (npos != 1) {
    fprintf(stderr, "unmix lincls: expected exactly one CKPT (got %d)\n\n", npos);
    unmix_evalcli_usage(&unmix_evalcmd_lincls, stderr);
    return 2;
  }
  const char *protocol = o.protocol, *out_dir = o.out_dir;
  const long long epochs = o.epochs, batch_size = o.batch_size, subset = o.subset, test_subset = o.test_subset,
                  stop_after = o.stop_after;
  const double lr = o.lr, momentum = o.momentum, wd = o.wd;
  const int n_milestones = o.n_milestones;
  const int *milestones = o.milestones;
  const bool resume = o.resume, quiet = o.quiet, seed_given = o.seed.set;
  const uint64_t seed = o.seed.v;
  struct unmix_eval_ckpt *e = NULL;
  struct unmix_dataset *train = NULL, *test = NULL;
  struct unmix_model *m = NULL;
  const struct unmix_backend *be = NULL;
  struct unmix_recipe rc;
  int rcode = 1;
  if (unmix_eval_ckpt_open(path, &cli.open, &e) != UNMIX_OK) goto fail;
  struct unmix_lincls_params p;
  enum unmix_lincls_protocol proto =
      protocol ? (enum unmix_lincls_protocol)unmix_config_enum_parse("linear.protocol", protocol) : e->cfg.linear.protocol;
  bool from_manifest = e->has_manifest && proto == e->cfg.linear.protocol;
  if (from_manifest) {
    unmix_lincls_from_config(&e->cfg, &p);
  } else {
    unmix_lincls_reference(proto, &p);
    p.seed = e->cfg.seed;
    p.workers = e->cfg.data.workers;
  }
  if (epochs > 0) p.epochs = (int)epochs;
  if (lr >= 0) p.lr = (float)lr;
  if (momentum >= 0) p.momentum = (float)momentum;
  if (wd >= 0) p.weight_decay = (float)wd;
  if (batch_size > 0) p.batch_size = (int)batch_size;
  if (n_milestones >= 0) {
    p.n_milestones = n_milestones;
    memcpy(p.milestones, milestones, sizeof(int) * (size_t)n_milestones);
    p.cosine = false;
  }
  if (seed_given) p.seed = seed;
  if (cli.workers >= 0) p.workers = cli.workers;
  p.eval_batch = cli.batch;

  if (unmix_eval_backend(e, cli.backend, &be) != UNMIX_OK) goto fail;
  if (unmix_eval_recipe(e, unmix_lincls_recipe_name(proto), &rc) != UNMIX_OK) goto fail;
  if (unmix_eval_open_dataset(e, UNMIX_SPLIT_TRAIN, subset, &train) != UNMIX_OK) goto fail;
  if (unmix_eval_open_dataset(e, UNMIX_SPLIT_TEST, test_subset, &test) != UNMIX_OK) goto fail;
  const int size = unmix_eval_image_size(e, &rc, train);
  if (unmix_eval_check_input(e, &rc.eval, test, size) != UNMIX_OK) goto fail;
  if (unmix_eval_check_input(e, &rc.views[0], train, size) != UNMIX_OK) goto fail;
  e->cfg.seed = p.seed; /* the fc is initialised from the same seed as the data streams */
  if (unmix_eval_build_model(e, be, train->num_classes, size, &m) != UNMIX_OK) goto fail;

  char dir[UNMIX_PATH_MAX], dbuf[UNMIX_PATH_MAX + 64];
  if (!out_dir) {
    snprintf(dbuf, sizeof dbuf, "%s/lincls-%s", unmix_fs_dirname(path, dir, sizeof dir), unmix_lincls_name(proto));
    out_dir = dbuf;
  }
  if (!quiet) {
    char sched[96];
    if (p.cosine) snprintf(sched, sizeof sched, "cosine");
    else {
      int k = snprintf(sched, sizeof sched, "x%g at", (double)p.gamma);
      for (int i = 0; i < p.n_milestones; i++) k += snprintf(sched + k, sizeof sched - (size_t)k, " %d", p.milestones[i]);
    }
    printf("lincls %s (%s): protocol %s%s, %d epochs, lr %g (%s), momentum %g, wd %g, batch %d; %d-d features of %s; "
           "%lld train / %lld test samples of %s, %d classes; recipe %s; %s -> %s\n",
           e->label, path, unmix_lincls_name(proto), from_manifest ? " (manifest)" : " (reference values)", p.epochs,
           (double)p.lr, sched, (double)p.momentum, (double)p.weight_decay, p.batch_size,
           unmix_model_node_dim(m, m->feat_node), m->arch_name, (long long)train->n, (long long)test->n, train->name,
           train->num_classes, rc.name, be->name, out_dir);
    fflush(stdout);
  }
  struct unmix_lincls_run_options ro = {out_dir, resume, (int)stop_after, quiet, path};
  struct unmix_lincls_result res;
  if (unmix_lincls_run(be, m, train, test, &rc, &p, &ro, &res) != UNMIX_OK) goto fail;
  char sum_path[UNMIX_PATH_MAX + 96];
  snprintf(sum_path, sizeof sum_path, "%s/summary.csv", out_dir);
  if (write_summary(sum_path, e, path, &p, &res, be->name) != UNMIX_OK) goto fail;
  if (res.epochs < p.epochs)
    printf("stopped after epoch %d of %d as asked; continue with --resume --out %s\n", res.epochs, p.epochs, out_dir);
  printf("lincls %s, %s protocol, %d/%d epochs: best top-1 %.2f%% (epoch %d), best top-5 %.2f%%; last top-1 %.2f%% "
         "top-5 %.2f%%; %.2f s/epoch on %s -> %s/lincls.csv, %s\n",
         e->label, unmix_lincls_name(proto), res.epochs, p.epochs, res.best_top1, res.best_epoch, res.best_top5,
         res.last_top1, res.last_top5, res.seconds_per_epoch, be->name, out_dir, sum_path);
  rcode = 0;
fail:
  if (rcode) unmix_cmd_fail("lincls");
  unmix_model_destroy(m);
  unmix_dataset_free(train);
  unmix_dataset_free(test);
  unmix_eval_ckpt_close(e);
  return rcode;
}
