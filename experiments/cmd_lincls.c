/* `unmix lincls CKPT`: linear evaluation on frozen features (eval/lincls.h) with the
 * protocol of the checkpoint's manifest (linear.*) or another one; writes the per-epoch
 * curve (the paper's Figure 3) and a summary row. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io/csv.h"
#include "core/io/manifest.h"
#include "eval/ckpt_model.h"
#include "eval/lincls.h"
#include "experiments/cmd_lincls_wmse.h"
#include "experiments/commands.h"
#include "experiments/evalcli.h"

#define SUMMARY_COLUMNS                                                                                              \
  "checkpoint", "label", "pretrain_epochs", "protocol", "epochs", "lr", "batch_size", "weight_decay", "schedule",  \
      "best_top1", "best_epoch", "best_top5", "last_top1", "last_top5", "train_samples", "test_samples",            \
      "seconds_per_epoch", "backend"

static void usage(FILE *f) {
  fprintf(f,
          "usage: unmix lincls CKPT [options]\n\n"
          "Linear evaluation: a fresh fc (N(0, 0.01^2), bias 0) on the avgpool features of the frozen\n"
          "backbone in eval mode (BatchNorm on its running statistics, also while training the fc); the\n"
          "pre-training head is discarded; SGD over the fc only; top-1/top-5 on the test split every epoch.\n"
          "Protocols (defaults: the manifest's linear.* block for its protocol, the reference values for\n"
          "another one):\n"
          "  imagenet    lr 30, momentum 0.9, wd 0, batch 256, 100 epochs, x0.1 at 60 and 80;\n"
          "              RRC(224)+flip / Resize(256)+CenterCrop(224)                       (SPEC 3.2)\n"
          "  swav-cifar  lr 0.3, momentum 0.9, wd 1e-6, batch 32, 100 epochs, cosine annealing per epoch;\n"
          "              RRC(32)+flip, std (0.2470, 0.2435, 0.2616); the best epoch is reported (SPEC 4.8)\n"
          "  moco-cifar  lr 30, momentum 0.9, wd 0, batch 256, 100 epochs, x0.1 at 60 and 80; RRC(32)+flip\n"
          "  wmse-cifar  the SimCLR/BYOL runs' protocol: Adam on cached features, 500 epochs, exponential\n"
          "              decay (see `unmix lincls CKPT --protocol wmse-cifar --help`)\n"
          "No protocol drops the last partial batch. Data order and augmentation come from the Philox\n"
          "streams of the manifest's seed: runs are reproducible, and --resume continues bit-identically.\n\n"
          "options:\n"
          "  --protocol NAME     imagenet | swav-cifar | moco-cifar | wmse-cifar (default: linear.protocol)\n"
          "  --epochs N          epochs (the schedule is stretched/shrunk with it: cosine over N epochs;\n"
          "                      milestones are kept as given)\n"
          "  --lr X  --momentum X  --wd X  --batch-size N   override the protocol's values\n"
          "  --milestones A,B,.. step-decay epochs (0-based; lr x0.1 from each)\n"
          "  --subset N          first N training samples (default: all)\n"
          "  --test-subset N     first N test samples (default: all)\n"
          "  --seed N            data order / augmentation / fc init seed (default: the manifest's seed)\n"
          "  --out DIR           output directory (default: lincls-<protocol> next to CKPT):\n"
          "                        lincls.csv (epoch, lr, train_loss, train_top1, test_top1, test_top5,\n"
          "                        best_top1, seconds), summary.csv, lincls.safetensors (fc + SGD state)\n"
          "  --resume            continue DIR's lincls.safetensors (same checkpoint and flags)\n"
          "  --stop-after-epochs N   save and stop after N epochs of this invocation\n"
          "  --quiet             no per-epoch lines\n"
          "  (--batch sets the test-time batch, default max(batch size, 256))\n");
  unmix_evalcli_help(f);
}

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
  unmix_evalcli_init(&cli, "lincls");
  const char *protocol = NULL, *out_dir = NULL;
  long long epochs = 0, batch_size = 0, subset = 0, test_subset = 0, stop_after = 0, seed = -1;
  double lr = -1, momentum = -1, wd = -1;
  int milestones[UNMIX_MAX_MILESTONES], n_milestones = -1;
  bool resume = false, quiet = false;
  static const struct option opts[] = {{"protocol", required_argument, 0, 'p'},
                                       {"epochs", required_argument, 0, 'e'},
                                       {"lr", required_argument, 0, 'l'},
                                       {"momentum", required_argument, 0, 'M'},
                                       {"wd", required_argument, 0, 'w'},
                                       {"batch-size", required_argument, 0, 'b'},
                                       {"milestones", required_argument, 0, 'm'},
                                       {"subset", required_argument, 0, 's'},
                                       {"test-subset", required_argument, 0, 'S'},
                                       {"seed", required_argument, 0, 'x'},
                                       {"out", required_argument, 0, 'o'},
                                       {"resume", no_argument, 0, 'r'},
                                       {"stop-after-epochs", required_argument, 0, 'E'},
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
      case 'p':
        if (unmix_config_enum_parse("linear.protocol", optarg) < 0) {
          fprintf(stderr, "unmix lincls: --protocol must be imagenet, swav-cifar, moco-cifar or wmse-cifar, got '%s'\n", optarg);
          return 2;
        }
        protocol = optarg;
        break;
      case 'e':
        if (!unmix_evalcli_int("lincls", "--epochs", optarg, 1, 1 << 20, &epochs)) return 2;
        break;
      case 'l':
        if (!unmix_evalcli_float("lincls", "--lr", optarg, 0, 1e6, &lr)) return 2;
        break;
      case 'M':
        if (!unmix_evalcli_float("lincls", "--momentum", optarg, 0, 0.999999, &momentum)) return 2;
        break;
      case 'w':
        if (!unmix_evalcli_float("lincls", "--wd", optarg, 0, 1, &wd)) return 2;
        break;
      case 'b':
        if (!unmix_evalcli_int("lincls", "--batch-size", optarg, 1, 1 << 20, &batch_size)) return 2;
        break;
      case 'm':
        if (!unmix_evalcli_int_list("lincls", "--milestones", optarg, 1, 1 << 20, milestones, UNMIX_MAX_MILESTONES,
                                    &n_milestones))
          return 2;
        for (int i = 1; i < n_milestones; i++)
          if (milestones[i] <= milestones[i - 1]) {
            fprintf(stderr, "unmix lincls: --milestones must increase, got '%s'\n", optarg);
            return 2;
          }
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
      case 'r': resume = true; break;
      case 'E':
        if (!unmix_evalcli_int("lincls", "--stop-after-epochs", optarg, 1, 1 << 20, &stop_after)) return 2;
        break;
      case 'q': quiet = true; break;
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
  if (seed >= 0) p.seed = (uint64_t)seed;
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
    snprintf(dbuf, sizeof dbuf, "%s/lincls-%s", unmix_evalcli_dirname(path, dir, sizeof dir), unmix_lincls_name(proto));
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
