/* Every manifest under configs/ (the paper rows, the demo) trains one short epoch on tiny
 * generated data in its dataset's real on-disk format (CIFAR-10/100 binary batches,
 * Fashion-MNIST IDX, ImageFolder JPEG), shrunk through --set overrides only, and writes a
 * metrics.csv row with every column and a loadable checkpoint. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/data/synth.h"
#include "core/io/checkpoint.h"
#include "core/io/csv.h"
#include "core/io/manifest.h"
#include "experiments/trainer.h"
#include "tests/support/testutil.h"

static char *g_tmp;

static void collect(const char *dir, char ***list, int *n) {
  DIR *d = opendir(dir);
  ck_assert_msg(d != NULL, "cannot open %s", dir);
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    size_t len = strlen(e->d_name);
    if (e->d_type == DT_DIR) {
      if (strcmp(e->d_name, "base") != 0) collect(p, list, n);
    } else if (len > 5 && !strcmp(e->d_name + len - 5, ".yaml")) {
      *list = realloc(*list, sizeof(char *) * (size_t)(*n + 1));
      (*list)[(*n)++] = strdup(p);
    }
  }
  closedir(d);
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static const char *data_root(const char *dataset) {
  static char buf[700];
  snprintf(buf, sizeof buf, "%s/%s", g_tmp, dataset);
  char probe[800];
  snprintf(probe, sizeof probe, "test -d %s", buf);
  if (unmix_test_sh(probe, NULL) != 0) {
    struct unmix_synth_options so = {.format = dataset, .dir = buf, .n = 32, .n_test = 16, .classes = 4, .seed = 3};
    ck_assert_msg(unmix_synth_write(&so) == UNMIX_OK, "%s", unmix_error_message());
  }
  return buf;
}

START_TEST(test_every_manifest_runs) {
  g_tmp = unmix_test_tmpdir("configs");
  char root[1024];
  snprintf(root, sizeof root, "%s/configs", UNMIX_SOURCE_DIR);
  char **list = NULL;
  int n = 0;
  collect(root, &list, &n);
  qsort(list, (size_t)n, sizeof *list, cmp);
  ck_assert_int_ge(n, 20);
  for (int i = 0; i < n; i++) {
    struct unmix_config cfg;
    ck_assert_msg(unmix_manifest_load(list[i], NULL, 0, &cfg) == UNMIX_OK, "%s", unmix_error_message());
    char rootset[800], out[800];
    snprintf(rootset, sizeof rootset, "data.root=%s", data_root(cfg.data.dataset));
    bool moco = cfg.method == UNMIX_METHOD_MOCO;
    const char *sets[] = {rootset,
                          "backend=cpu",
                          "data.workers=1",
                          "train.epochs=1",
                          "train.steps_per_epoch=1",
                          "optim.batch_size=8",
                          "model.width=4",
                          moco ? "moco.K=16" : "swav.nmb_prototypes=10",
                          "knn.k=4",
                          "knn.bank_subset=16",
                          "knn.test_subset=8",
                          moco ? "moco.T=0.1" : "schedule.warmup_epochs=0"};
    snprintf(out, sizeof out, "%s/run%02d", g_tmp, i);
    /* ImageNet-sized crop lists shrink to 64 / 32 px, keeping their groups, counts and scales
     * (multi-resolution stays multi-resolution) */
    const char *all[16];
    int na = (int)(sizeof sets / sizeof sets[0]);
    memcpy(all, sets, sizeof sets);
    char crops[400] = "data.crops=[";
    if (cfg.data.n_crop_groups > 0 && cfg.data.size_crops[0] > 64) {
      for (int g = 0; g < cfg.data.n_crop_groups; g++)
        snprintf(crops + strlen(crops), sizeof crops - strlen(crops), "%s{nmb: %d, size: %d, min_scale: %g, max_scale: %g}",
                 g ? ", " : "", cfg.data.nmb_crops[g], g == 0 ? 64 : 32, cfg.data.min_scale[g], cfg.data.max_scale[g]);
      snprintf(crops + strlen(crops), sizeof crops - strlen(crops), "]");
      all[na++] = crops;
    }
    struct unmix_train_options o = {0};
    o.manifest = list[i];
    o.overrides = all;
    o.n_overrides = na;
    o.out_dir = out;
    o.quiet = true;
    printf("%s (%s, %s)\n", list[i] + strlen(UNMIX_SOURCE_DIR) + 1, cfg.data.dataset, moco ? "moco" : "swav");
    fflush(stdout);
    ck_assert_msg(unmix_train(&o) == 0, "%s: %s", list[i], unmix_error_message());
    char p[900];
    snprintf(p, sizeof p, "%s/metrics.csv", out);
    struct unmix_csv_table *t = NULL;
    ck_assert_msg(unmix_csv_read(p, &t) == UNMIX_OK, "%s", unmix_error_message());
    /* the header of every run before the method table: methods' columns must not move it */
    static const char *cols[] = {"epoch",    "steps",    "lr",         "loss",       "loss_main",  "loss_mix",
                                 "loss_mix_flip", "inst_top1", "inst_top5", "knn_top1", "knn_top5", "mix_global",
                                 "mix_region", "lam_mean", "images_per_s", "seconds"};
    ck_assert_int_eq(t->ncol, (int)(sizeof cols / sizeof cols[0]));
    ck_assert_int_eq(t->nrows, 1);
    double loss;
    ck_assert(unmix_csv_get_double(t, 0, "loss", &loss) == UNMIX_OK);
    if (cfg.knn.every > 0) {
      double k;
      ck_assert_msg(unmix_csv_get_double(t, 0, "knn_top1", &k) == UNMIX_OK, "%s: no kNN", list[i]);
    }
    unmix_csv_table_free(t);
    snprintf(p, sizeof p, "%s/checkpoint.safetensors", out);
    struct unmix_ckpt *ck = NULL;
    ck_assert_msg(unmix_ckpt_load(p, &ck) == UNMIX_OK, "%s", unmix_error_message());
    ck_assert_ptr_nonnull(unmix_ckpt_find(ck, "conv1.weight"));
    unmix_ckpt_free(ck);
    unmix_config_free(&cfg);
    free(list[i]);
  }
  free(list);
  unmix_test_rmdir(g_tmp);
  free(g_tmp);
}
END_TEST

static Suite *configs_suite(void) {
  Suite *s = suite_create("configs");
  TCase *tc = tcase_create("e2e");
  tcase_set_timeout(tc, 1800);
  tcase_add_test(tc, test_every_manifest_runs);
  suite_add_tcase(s, tc);
  return s;
}
UNMIX_TEST_MAIN(configs_suite)
