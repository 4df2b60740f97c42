/* `unmix knn CKPT`: the kNN monitor of the MoCo CIFAR code (FIDELITY §5.1) run standalone on a
 * checkpoint - memory bank = the train split, queries = the test split, both through the
 * recipe's evaluation transform - with the same defaults as the run's monitor, so it
 * reproduces the knn_top1/knn_top5 of the run's last metrics.csv row. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/io/csv.h"
#include "core/util/fs.h"
#include "eval/ckpt_model.h"
#include "eval/features.h"
#include "eval/knn.h"
#include "experiments/commands.h"
#include "experiments/evalcli.h"

struct knn_opts {
  long long k, bank_subset, test_subset;
  double t;
  const char *features, *csv, *protocol;
};
#define KO(f) offsetof(struct knn_opts, f)
static const char *const g_protocols[] = {"moco", "wmse", NULL};
static const struct unmix_opt g_opts[] = {
    {.name = "k", .type = UNMIX_OPT_INT, .arg = "N", .key = "knn.k", .off = KO(k), .def_doc = "the manifest's knn.k",
     .help = "neighbours"},
    {.name = "t", .type = UNMIX_OPT_FLOAT, .arg = "T", .key = "knn.t", .off = KO(t), .def_doc = "the manifest's knn.t",
     .help = "temperature"},
    {.name = "bank-subset", .type = UNMIX_OPT_INT, .arg = "N", .key = "knn.bank_subset", .off = KO(bank_subset),
     .def_doc = "knn.bank_subset, else data.subset", .help = "first N train samples as the bank (0 = all)"},
    {.name = "test-subset", .type = UNMIX_OPT_INT, .arg = "N", .key = "knn.test_subset", .off = KO(test_subset),
     .def_doc = "knn.test_subset, else data.test_subset", .help = "first N test samples as queries (0 = all)"},
    {.name = "features", .type = UNMIX_OPT_CHOICE, .key = "knn.features", .off = KO(features),
     .def_doc = "the manifest's knn.features (head unless set)",
     .help = "head: the method's embedding (MoCo: fc output; SwAV: projection), as the\n"
             "MoCo CIFAR monitor; backbone: the backbone's avgpool features"},
    {.name = "protocol", .type = UNMIX_OPT_CHOICE, .choices = g_protocols, .off = KO(protocol), .def = "moco",
     .help = "moco: the weighted cosine monitor above; wmse: the W-MSE codebase's kNN\n"
             "of the SimCLR/BYOL runs (docs/FIDELITY.md) - Euclidean distance on the\n"
             "unnormalised backbone features, k 5, one vote per neighbour, equal counts\n"
             "to the lower class (t is not used: its CSV cell is empty)"},
    {.name = "csv", .type = UNMIX_OPT_STRING, .arg = "FILE", .off = KO(csv), .def_doc = "knn.csv next to CKPT",
     .help = "result row; columns: checkpoint, label, epochs (of pre-training;\n"
             "empty when unknown), features, k, t, bank, queries, top1, top5 (%), seconds"},
};

const struct unmix_evalcmd unmix_evalcmd_knn = {
    "knn",
    "usage: unmix knn CKPT [options]\n\n"
    "Weighted kNN classification (docs/FIDELITY.md §5.1) of the checkpoint's encoder: the train split\n"
    "is the memory bank, the test split the queries, both through the recipe's evaluation transform;\n"
    "L2-normalised features, the k most similar bank entries vote with weights exp(cos/t).\n"
    "Defaults repeat the run's monitor, so the result equals the last knn_top1/5 of metrics.csv.\n\n"
    "example: unmix knn results/runs/cifar10_moco_sym_unmix/checkpoint.safetensors --k 20\n",
    g_opts, (int)(sizeof g_opts / sizeof g_opts[0]),
    .common = UNMIX_EVALCLI_ALL};

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

int unmix_cmd_knn(int argc, char **argv) {
  struct unmix_evalcli cli;
  struct knn_opts o = {.k = -1, .bank_subset = -1, .test_subset = -1, .t = -1};
  char **pos = unmix_xmalloc(sizeof(char *) * (size_t)(argc + 1));
  int npos = 0;
  int pr = unmix_evalcli_parse(&unmix_evalcmd_knn, &o, &cli, argc, argv, pos, &npos);
  if (pr >= 0) {
    free(pos);
    return pr;
  }
  if (npos != 1) {
    fprintf(stderr, "unmix knn: expected exactly one CKPT (got %d)\n\n", npos);
    unmix_evalcli_usage(&unmix_evalcmd_knn, stderr);
    free(pos);
    return 2;
  }
  const long long k = o.k, bank_subset = o.bank_subset, test_subset = o.test_subset;
  const double t = o.t;
  const char *csv = o.csv;
  const bool wmse = !strcmp(o.protocol, "wmse");
  const char *path = pos[0];
  free(pos);
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
  if (o.features) kc.features = strcmp(o.features, "backbone") ? UNMIX_KNN_HEAD : UNMIX_KNN_BACKBONE;
  if (wmse) {
    kc.k = 5;
    kc.features = UNMIX_KNN_BACKBONE;
  }
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
  const char *feat_name = kc.features == UNMIX_KNN_BACKBONE || m->embed_node == m->feat_node ? "backbone" : "head";
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
    snprintf(csv_buf, sizeof csv_buf, "%s/knn.csv", unmix_fs_dirname(path, dir, sizeof dir));
    csv = csv_buf;
  }
  if (unmix_evalcli_out_open(&out) != UNMIX_OK) goto fail;
  fprintf(out.f, "checkpoint,label,epochs,features,k,t,bank,queries,top1,top5,seconds\n");
  unmix_csv_write_field(out.f, path);
  fputc(',', out.f);
  unmix_csv_write_field(out.f, e->label);
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
