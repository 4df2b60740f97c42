/* The threaded loader: bit-identical batches for 1, 2 and 3 threads and any prefetch depth;
 * every batch row equals an independent draw+apply of (seed, epoch, sample, view); per-epoch
 * permutations with drop_last; sharding whose rank slices make up the single-process batch;
 * the deterministic eval mode; multi-crop views; error propagation from a worker; clean
 * shutdown mid-epoch; pinned (alloc_host) buffers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/data/jpeg.h"
#include "core/data/loader.h"
#include "core/data/synth.h"
#include "tests/support/testutil.h"

static struct unmix_dataset *g_ds; /* 203 synthetic 32x32x3 images, 10 classes */

static void setup(void) {
  ck_assert_int_eq(unmix_synth_dataset(203, 32, 32, 3, 10, 5, &g_ds), UNMIX_OK);
}
static void teardown(void) {
  unmix_dataset_free(g_ds);
  g_ds = NULL;
}

static struct unmix_recipe recipe(const char *name) {
  struct unmix_recipe r;
  ck_assert_int_eq(unmix_recipe_get(name, &r), UNMIX_OK);
  return r;
}

static struct unmix_loader *make(const struct unmix_dataset *ds, const struct unmix_recipe *r, enum unmix_loader_mode mode,
                                 int batch, int workers, int prefetch, int rank, int world) {
  struct unmix_loader_options o;
  unmix_loader_options_init(&o, mode, batch, 1234);
  o.workers = workers;
  o.prefetch = prefetch;
  o.rank = rank;
  o.world = world;
  struct unmix_loader *ld;
  ck_assert_msg(unmix_loader_create(ds, r, &o, &ld) == UNMIX_OK, "%s", unmix_error_message());
  return ld;
}

/* A running checksum of everything a loader produces over some epochs (FNV-1a over bytes). */
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const uint8_t *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}
static uint64_t digest_epochs(struct unmix_loader *ld, int epochs, int64_t *nbatches) {
  uint64_t h = 0xcbf29ce484222325ull;
  *nbatches = 0;
  for (int e = 0; e < epochs; e++) {
    ck_assert_int_eq(unmix_loader_start_epoch(ld, e), UNMIX_OK);
    const struct unmix_batch *b;
    for (;;) {
      ck_assert_msg(unmix_loader_next(ld, &b) == UNMIX_OK, "%s", unmix_error_message());
      if (!b) break;
      ck_assert_int_eq(b->epoch, e);
      h = fnv(h, &b->size, sizeof b->size);
      h = fnv(h, b->labels, sizeof(int32_t) * b->size);
      h = fnv(h, b->indices, sizeof(int32_t) * b->size);
      for (int v = 0; v < b->n_views; v++)
        h = fnv(h, b->views[v].data, sizeof(float) * b->size * b->views[v].h * b->views[v].w * b->views[v].c);
      (*nbatches)++;
    }
  }
  return h;
}

START_TEST(test_same_batches_for_any_thread_count) {
  struct unmix_recipe r = recipe("moco-cifar");
  uint64_t ref = 0;
  int64_t nref = 0;
  const int cfg[][2] = {{1, 1}, {2, 2}, {3, 1}, {3, 4}};
  for (int k = 0; k < 4; k++) {
    struct unmix_loader *ld = make(g_ds, &r, UNMIX_LOADER_TRAIN, 32, cfg[k][0], cfg[k][1], 0, 1);
    int64_t nb;
    uint64_t h = digest_epochs(ld, 2, &nb);
    unmix_loader_free(ld);
    ck_assert_int_eq(nb, 2 * (203 / 32));
    if (k == 0) {
      ref = h;
      nref = nb;
    }
    ck_assert_msg(h == ref && nb == nref, "%d threads / prefetch %d: batches differ from 1 thread", cfg[k][0], cfg[k][1]);
  }
}
END_TEST

START_TEST(test_rows_equal_independent_augmentation) {
  struct unmix_recipe r = recipe("moco-cifar");
  struct unmix_loader *ld = make(g_ds, &r, UNMIX_LOADER_TRAIN, 16, 2, 2, 0, 1);
  ck_assert_int_eq(unmix_loader_start_epoch(ld, 3), UNMIX_OK);
  struct unmix_norm norm;
  unmix_norm_init(&norm, r.mean, r.std);
  struct unmix_pil_scratch s = {0};
  float out[32 * 32 * 3];
  uint8_t work[32 * 32 * 3];
  const struct unmix_batch *b;
  int batches = 0;
  while (unmix_loader_next(ld, &b) == UNMIX_OK && b && batches < 3) {
    ck_assert_int_eq(b->n_views, 2);
    for (int i = 0; i < b->size; i++) {
      int32_t idx = b->indices[i];
      ck_assert_int_eq(b->labels[i], g_ds->labels[idx]);
      struct unmix_image img;
      ck_assert_int_eq(unmix_dataset_load(g_ds, idx, NULL, NULL, NULL, &img), UNMIX_OK);
      for (int v = 0; v < 2; v++) {
        struct unmix_rng rng = unmix_rng_make(1234, UNMIX_RNG_AUGMENT, 3, (uint32_t)idx, (uint32_t)v);
        struct unmix_view_params p;
        unmix_view_draw(&r.views[v], &rng, 32, 32, &p);
        unmix_view_apply(&p, img.data, 32, 32, 3, &norm, out, work, &s);
        ck_assert_msg(!memcmp(out, b->views[v].data + (size_t)i * 3072, sizeof out), "batch %lld row %d view %d",
                      (long long)b->step, i, v);
      }
    }
    batches++;
  }
  ck_assert_int_eq(batches, 3);
  /* the two views of a sample differ (independent draws) */
  ck_assert(memcmp(b->views[0].data, b->views[1].data, 3072 * sizeof(float)) != 0);
  unmix_pil_scratch_free(&s);
  unmix_loader_free(ld);
}
END_TEST

START_TEST(test_epoch_permutation_and_drop_last) {
  struct unmix_recipe r = recipe("test");
  struct unmix_loader *ld = make(g_ds, &r, UNMIX_LOADER_TRAIN, 20, 2, 3, 0, 1);
  ck_assert_int_eq(unmix_loader_steps_per_epoch(ld), 10); /* 203 / 20, last 3 dropped */
  int32_t first[2][200];
  for (int e = 0; e < 2; e++) {
    ck_assert_int_eq(unmix_loader_start_epoch(ld, e), UNMIX_OK);
    int seen[203] = {0}, n = 0;
    const struct unmix_batch *b;
    while (unmix_loader_next(ld, &b) == UNMIX_OK && b) {
      ck_assert_int_eq(b->size, 20);
      ck_assert_int_eq(b->step, n / 20);
      for (int i = 0; i < b->size; i++) {
        ck_assert_int_eq(seen[b->indices[i]]++, 0);
        first[e][n++] = b->indices[i];
      }
    }
    ck_assert_int_eq(n, 200);
  }
  int same = 0;
  for (int i = 0; i < 200; i++) same += first[0][i] == first[1][i];
  ck_assert_msg(same < 10, "epochs 0 and 1 share %d of 200 positions: not reshuffled", same);
  /* restarting an epoch gives the same order */
  ck_assert_int_eq(unmix_loader_start_epoch(ld, 1), UNMIX_OK);
  const struct unmix_batch *b;
  ck_assert_int_eq(unmix_loader_next(ld, &b), UNMIX_OK);
  ck_assert(!memcmp(b->indices, first[1], 20 * sizeof(int32_t)));
  unmix_loader_free(ld);
}
END_TEST

START_TEST(test_shards_make_up_the_global_batch) {
  struct unmix_recipe r = recipe("swav-cifar");
  const int B = 24, W = 3;
  struct unmix_loader *one = make(g_ds, &r, UNMIX_LOADER_TRAIN, B, 2, 2, 0, 1), *rk[3];
  for (int k = 0; k < W; k++) rk[k] = make(g_ds, &r, UNMIX_LOADER_TRAIN, B, 1 + k % 2, 2, k, W);
  ck_assert_int_eq(unmix_loader_start_epoch(one, 1), UNMIX_OK);
  for (int k = 0; k < W; k++) {
    ck_assert_int_eq(unmix_loader_steps_per_epoch(rk[k]), unmix_loader_steps_per_epoch(one));
    ck_assert_int_eq(unmix_loader_start_epoch(rk[k], 1), UNMIX_OK);
  }
  const size_t view = 32 * 32 * 3;
  for (int64_t step = 0; step < unmix_loader_steps_per_epoch(one); step++) {
    const struct unmix_batch *g, *l;
    ck_assert_int_eq(unmix_loader_next(one, &g), UNMIX_OK);
    ck_assert_ptr_nonnull(g);
    for (int k = 0; k < W; k++) {
      ck_assert_int_eq(unmix_loader_next(rk[k], &l), UNMIX_OK);
      ck_assert_ptr_nonnull(l);
      ck_assert_int_eq(l->size, B / W);
      int off = k * (B / W);
      ck_assert(!memcmp(l->indices, g->indices + off, sizeof(int32_t) * l->size));
      ck_assert(!memcmp(l->labels, g->labels + off, sizeof(int32_t) * l->size));
      for (int v = 0; v < 2; v++)
        ck_assert_msg(!memcmp(l->views[v].data, g->views[v].data + off * view, sizeof(float) * view * l->size),
                      "rank %d view %d of step %lld differs from the global batch slice", k, v, (long long)step);
    }
  }
  unmix_loader_free(one);
  for (int k = 0; k < W; k++) unmix_loader_free(rk[k]);
  /* a batch that does not split evenly is refused */
  struct unmix_loader_options o;
  unmix_loader_options_init(&o, UNMIX_LOADER_TRAIN, 25, 1);
  o.world = 2;
  struct unmix_loader *ld;
  ck_assert_int_eq(unmix_loader_create(g_ds, &r, &o, &ld), UNMIX_ERR_CONFIG);
  ck_assert(strstr(unmix_error_message(), "not divisible by the 2 ranks"));
  unmix_loader_options_init(&o, UNMIX_LOADER_TRAIN, 256, 1);
  ck_assert_int_eq(unmix_loader_create(g_ds, &r, &o, &ld), UNMIX_ERR_CONFIG);
  ck_assert(strstr(unmix_error_message(), "fewer than one batch of 256"));
}
END_TEST

START_TEST(test_eval_mode_in_order_with_last_batch) {
  struct unmix_recipe r = recipe("moco-cifar"); /* eval transform: ToTensor + Normalize */
  struct unmix_norm norm;
  unmix_norm_init(&norm, r.mean, r.std);
  for (int world = 1; world <= 2; world++) {
    int64_t next_index = 0;
    for (int rank = 0; rank < world; rank++) {
      struct unmix_loader *ld = make(g_ds, &r, UNMIX_LOADER_EVAL, 50, 2, 2, rank, world);
      ck_assert_int_eq(unmix_loader_steps_per_epoch(ld), 5);
      ck_assert_int_eq(unmix_loader_start_epoch(ld, 9), UNMIX_OK);
      const struct unmix_batch *b;
      int64_t step = 0;
      while (unmix_loader_next(ld, &b) == UNMIX_OK && b) {
        int gsize = step < 4 ? 50 : 3, lo = rank * gsize / world, hi = (rank + 1) * gsize / world;
        ck_assert_int_eq(b->n_views, 1);
        ck_assert_int_eq(b->size, hi - lo);
        for (int i = 0; i < b->size; i++) {
          ck_assert_int_eq(b->indices[i], step * 50 + lo + i);
          struct unmix_image img;
          ck_assert_int_eq(unmix_dataset_load(g_ds, b->indices[i], NULL, NULL, NULL, &img), UNMIX_OK);
          for (int k = 0; k < 3072; k++)
            ck_assert(b->views[0].data[(size_t)i * 3072 + k] == norm.lut[k % 3][img.data[k]]);
        }
        if (world == 1) next_index += b->size;
        step++;
      }
      ck_assert_int_eq(step, 5);
      unmix_loader_free(ld);
    }
    if (world == 1) ck_assert_int_eq(next_index, 203);
  }
}
END_TEST

START_TEST(test_multicrop_groups) {
  struct unmix_data_config cfg = {0};
  snprintf(cfg.recipe, sizeof cfg.recipe, "swav-cifar");
  cfg.n_crop_groups = 2;
  cfg.nmb_crops[0] = 2, cfg.size_crops[0] = 32, cfg.min_scale[0] = 0.14f, cfg.max_scale[0] = 1.0f;
  cfg.nmb_crops[1] = 3, cfg.size_crops[1] = 16, cfg.min_scale[1] = 0.05f, cfg.max_scale[1] = 0.14f;
  cfg.has_norm = true;
  for (int c = 0; c < 3; c++) cfg.mean[c] = 0.5f, cfg.std[c] = 0.25f;
  struct unmix_recipe r;
  ck_assert_int_eq(unmix_recipe_from_config(&cfg, &r), UNMIX_OK);
  ck_assert_int_eq(r.n_views, 5);
  ck_assert(r.mean[1] == 0.5f && r.std[2] == 0.25f);
  struct unmix_loader *ld = make(g_ds, &r, UNMIX_LOADER_TRAIN, 8, 2, 1, 0, 1);
  ck_assert_int_eq(unmix_loader_start_epoch(ld, 0), UNMIX_OK);
  const struct unmix_batch *b;
  ck_assert_int_eq(unmix_loader_next(ld, &b), UNMIX_OK);
  ck_assert_int_eq(b->n_views, 5);
  for (int v = 0; v < 5; v++) {
    ck_assert_int_eq(b->views[v].h, v < 2 ? 32 : 16);
    ck_assert_int_eq(b->views[v].w, v < 2 ? 32 : 16);
  }
  unmix_loader_free(ld);
  struct unmix_loader_options lo;
  cfg.workers = 3;
  cfg.prefetch = 5;
  unmix_loader_options_from_config(&lo, &cfg, UNMIX_LOADER_EVAL, 64, 9);
  ck_assert(lo.workers == 3 && lo.prefetch == 5 && lo.batch_size == 64 && lo.seed == 9 && !lo.shuffle && !lo.drop_last);
  /* bad groups name the key */
  cfg.min_scale[1] = 0.5f;
  ck_assert_int_eq(unmix_recipe_from_config(&cfg, &r), UNMIX_ERR_CONFIG);
  ck_assert(strstr(unmix_error_message(), "min_scale_crops[1]"));
  snprintf(cfg.recipe, sizeof cfg.recipe, "moco-cifar");
  ck_assert_int_eq(unmix_recipe_from_config(&cfg, &r), UNMIX_ERR_CONFIG);
  snprintf(cfg.recipe, sizeof cfg.recipe, "simclr");
  ck_assert_int_eq(unmix_recipe_from_config(&cfg, &r), UNMIX_ERR_CONFIG);
  ck_assert(strstr(unmix_error_message(), "data.recipe: unknown augmentation recipe 'simclr'"));
}
END_TEST

/* data.grey_images drops random grayscale and the jitter's saturation and hue; in the W-MSE
 * recipes the colour ops run before the crop, so the count of ops before the geometry must drop
 * with the grayscale (it once stayed 2 of 1 op: the loader aborted on a Fashion-MNIST
 * SimCLR/BYOL manifest). */
START_TEST(test_grey_images_wmse_recipe) {
  struct unmix_data_config cfg = {0};
  snprintf(cfg.recipe, sizeof cfg.recipe, "wmse-cifar10");
  cfg.grey_images = true;
  struct unmix_recipe r;
  ck_assert_int_eq(unmix_recipe_from_config(&cfg, &r), UNMIX_OK);
  ck_assert_int_eq(r.n_views, 2);
  for (int v = 0; v < 2; v++) {
    ck_assert_int_eq(r.views[v].n_ops, 2);
    ck_assert_int_eq(r.views[v].ops[0].op, UNMIX_AUG_JITTER);
    ck_assert(r.views[v].ops[0].saturation == 0.0f && r.views[v].ops[0].hue == 0.0f);
    ck_assert(r.views[v].ops[0].brightness == 0.4f && r.views[v].ops[0].contrast == 0.4f);
    ck_assert_int_eq(r.views[v].ops[1].op, UNMIX_AUG_HFLIP);
    ck_assert_int_eq(r.views[v].pre_geom_ops, 1);
  }
  struct unmix_loader *ld = make(g_ds, &r, UNMIX_LOADER_TRAIN, 8, 2, 1, 0, 1);
  ck_assert_int_eq(unmix_loader_start_epoch(ld, 0), UNMIX_OK);
  const struct unmix_batch *b;
  ck_assert_int_eq(unmix_loader_next(ld, &b), UNMIX_OK);
  ck_assert_int_eq(b->n_views, 2);
  unmix_loader_free(ld);
}
END_TEST

/* A crop group on a W-MSE recipe (configs/fmnist/byol.yaml's 35-100 % crops) changes only the
 * crops' size and scale: the colour ops keep their place before the crop. */
START_TEST(test_crop_group_wmse_recipe) {
  struct unmix_data_config cfg = {0};
  snprintf(cfg.recipe, sizeof cfg.recipe, "wmse-cifar10");
  struct unmix_recipe base, r;
  ck_assert_int_eq(unmix_recipe_from_config(&cfg, &base), UNMIX_OK);
  cfg.n_crop_groups = 1;
  cfg.nmb_crops[0] = 2, cfg.size_crops[0] = 32, cfg.min_scale[0] = 0.35f, cfg.max_scale[0] = 1.0f;
  ck_assert_msg(unmix_recipe_from_config(&cfg, &r) == UNMIX_OK, "%s", unmix_error_message());
  ck_assert_int_eq(r.n_views, 2);
  for (int v = 0; v < 2; v++) {
    ck_assert(r.views[v].scale_min == 0.35f && r.views[v].scale_max == 1.0f);
    ck_assert_int_eq(r.views[v].size, 32);
    ck_assert_int_eq(r.views[v].n_ops, base.views[0].n_ops);
    ck_assert_int_eq(r.views[v].pre_geom_ops, base.views[0].pre_geom_ops);
    ck_assert_int_gt(r.views[v].pre_geom_ops, 0);
    for (int i = 0; i < r.views[v].n_ops; i++) ck_assert_int_eq(r.views[v].ops[i].op, base.views[0].ops[i].op);
  }
  struct unmix_loader *ld = make(g_ds, &r, UNMIX_LOADER_TRAIN, 8, 2, 1, 0, 1);
  ck_assert_int_eq(unmix_loader_start_epoch(ld, 0), UNMIX_OK);
  const struct unmix_batch *b;
  ck_assert_int_eq(unmix_loader_next(ld, &b), UNMIX_OK);
  ck_assert_int_eq(b->n_views, 2);
  ck_assert_int_eq(b->views[1].h, 32);
  unmix_loader_free(ld);
}
END_TEST

/* swav-imagenet: SwAV's multicropdataset.py per crop (RRC, flip, jitter(.8,.8,.8,.2)@.8,
 * gray@.2, PIL blur(.1-2)@.5, in that order), std 0.228, the groups of data.crops in order. */
START_TEST(test_swav_imagenet_recipe) {
  struct unmix_data_config cfg = {0};
  snprintf(cfg.recipe, sizeof cfg.recipe, "swav-imagenet");
  cfg.n_crop_groups = 2;
  cfg.nmb_crops[0] = 2, cfg.size_crops[0] = 224, cfg.min_scale[0] = 0.14f, cfg.max_scale[0] = 1.0f;
  cfg.nmb_crops[1] = 6, cfg.size_crops[1] = 96, cfg.min_scale[1] = 0.05f, cfg.max_scale[1] = 0.14f;
  struct unmix_recipe r;
  ck_assert_int_eq(unmix_recipe_from_config(&cfg, &r), UNMIX_OK);
  ck_assert_int_eq(r.n_views, 8);
  ck_assert(r.mean[0] == 0.485f && r.std[0] == 0.228f && r.std[1] == 0.224f && r.std[2] == 0.225f);
  for (int v = 0; v < 8; v++) {
    const struct unmix_view_spec *s = &r.views[v];
    ck_assert_int_eq(s->geom, UNMIX_GEOM_RRC);
    ck_assert_int_eq(s->size, v < 2 ? 224 : 96);
    ck_assert(s->scale_min == (v < 2 ? 0.14f : 0.05f) && s->scale_max == (v < 2 ? 1.0f : 0.14f));
    ck_assert(s->ratio_min == 3.0f / 4.0f && s->ratio_max == 4.0f / 3.0f);
    ck_assert_int_eq(s->pre_geom_ops, 0);
    ck_assert_int_eq(s->n_ops, 4);
    ck_assert(s->ops[0].op == UNMIX_AUG_HFLIP && s->ops[0].p == 0.5f);
    ck_assert(s->ops[1].op == UNMIX_AUG_JITTER && s->ops[1].p == 0.8f && s->ops[1].brightness == 0.8f &&
              s->ops[1].contrast == 0.8f && s->ops[1].saturation == 0.8f && s->ops[1].hue == 0.2f);
    ck_assert(s->ops[2].op == UNMIX_AUG_GRAY && s->ops[2].p == 0.2f);
    ck_assert(s->ops[3].op == UNMIX_AUG_BLUR && s->ops[3].p == 0.5f && s->ops[3].sigma_min == 0.1f &&
              s->ops[3].sigma_max == 2.0f);
  }
  ck_assert_int_eq(r.eval.geom, UNMIX_GEOM_RESIZE_CROP);
}
END_TEST

START_TEST(test_shutdown_mid_epoch_and_restart) {
  struct unmix_recipe r = recipe("moco-cifar");
  for (int k = 0; k < 5; k++) {
    struct unmix_loader *ld = make(g_ds, &r, UNMIX_LOADER_TRAIN, 8, 3, 4, 0, 1);
    ck_assert_int_eq(unmix_loader_start_epoch(ld, 0), UNMIX_OK);
    const struct unmix_batch *b;
    ck_assert_int_eq(unmix_loader_next(ld, &b), UNMIX_OK);
    ck_assert_ptr_nonnull(b);
    if (k % 2) { /* abandon the epoch for another one, then stop while workers are busy */
      ck_assert_int_eq(unmix_loader_start_epoch(ld, 7), UNMIX_OK);
      ck_assert_int_eq(unmix_loader_next(ld, &b), UNMIX_OK);
      ck_assert_int_eq(b->epoch, 7);
      ck_assert_int_eq(b->step, 0);
    }
    unmix_loader_free(ld);
  }
  /* free without ever starting an epoch */
  unmix_loader_free(make(g_ds, &r, UNMIX_LOADER_TRAIN, 8, 2, 1, 0, 1));
  /* next() before start_epoch() is an error, not a hang */
  struct unmix_loader *ld = make(g_ds, &r, UNMIX_LOADER_TRAIN, 8, 1, 1, 0, 1);
  const struct unmix_batch *b;
  ck_assert_int_eq(unmix_loader_next(ld, &b), UNMIX_ERR_ARG);
  unmix_loader_free(ld);
}
END_TEST

START_TEST(test_worker_error_reaches_consumer) {
  char *dir = unmix_test_tmpdir("loader");
  char cmd[1200], path[1200];
  snprintf(cmd, sizeof cmd, "mkdir -p %s/train/a %s/train/b", dir, dir);
  ck_assert_int_eq(unmix_test_sh(cmd, NULL), 0);
  uint8_t img[40 * 50 * 3];
  for (size_t i = 0; i < sizeof img; i++) img[i] = (uint8_t)(i * 31);
  uint8_t *jpg;
  size_t len;
  ck_assert_int_eq(unmix_jpeg_encode(img, 40, 50, 3, 90, &jpg, &len), UNMIX_OK);
  for (int i = 0; i < 12; i++) {
    snprintf(path, sizeof path, "%s/train/%c/%02d.jpg", dir, i % 2 ? 'b' : 'a', i);
    FILE *f = fopen(path, "wb");
    fwrite(jpg, 1, i == 5 ? len / 3 : len, f); /* sample b/05.jpg is truncated */
    fclose(f);
  }
  free(jpg);
  struct unmix_dataset_options o = {.name = "imagefolder", .root = dir, .split = UNMIX_SPLIT_TRAIN,
                                    .cache = UNMIX_CACHE_STREAM};
  struct unmix_dataset *ds;
  ck_assert_int_eq(unmix_dataset_open(&o, &ds), UNMIX_OK);
  struct unmix_recipe r = recipe("lincls-imagenet");
  r.views[0].size = 24;
  r.eval.size = 20;
  r.eval.resize = 22;
  struct unmix_loader *ld = make(ds, &r, UNMIX_LOADER_EVAL, 4, 2, 2, 0, 1);
  ck_assert_int_eq(unmix_loader_start_epoch(ld, 0), UNMIX_OK);
  const struct unmix_batch *b;
  ck_assert_int_eq(unmix_loader_next(ld, &b), UNMIX_OK); /* samples 0..3 are fine */
  ck_assert(b && b->views[0].h == 20 && b->size == 4);
  unmix_status s = unmix_loader_next(ld, &b); /* sorted order: a/00 a/02 .. a/10 b/01 b/03 b/05 ...: b/05 is sample 8 */
  if (s == UNMIX_OK) s = unmix_loader_next(ld, &b);
  ck_assert_int_eq(s, UNMIX_ERR_FORMAT);
  ck_assert_msg(strstr(unmix_error_message(), "b/05.jpg") && strstr(unmix_error_message(), "batch 2"), "%s",
                unmix_error_message());
  unmix_loader_free(ld);
  /* a ToTensor-only view cannot batch images of varying size */
  struct unmix_recipe t = recipe("test");
  struct unmix_loader_options lo;
  unmix_loader_options_init(&lo, UNMIX_LOADER_TRAIN, 4, 1);
  ck_assert_int_eq(unmix_loader_create(ds, &t, &lo, &ld), UNMIX_ERR_CONFIG);
  unmix_dataset_free(ds);
  unmix_test_rmdir(dir);
  free(dir);
}
END_TEST

START_TEST(test_pinned_buffers_and_dct_params) {
  struct unmix_recipe r = recipe("moco-cifar");
  struct unmix_loader_options o;
  unmix_loader_options_init(&o, UNMIX_LOADER_TRAIN, 16, 3);
  o.backend = unmix_test_cpu();
  o.workers = 2;
  struct unmix_loader *ld;
  ck_assert_int_eq(unmix_loader_create(g_ds, &r, &o, &ld), UNMIX_OK);
  int64_t nb;
  digest_epochs(ld, 1, &nb);
  ck_assert_int_eq(nb, 12);
  unmix_loader_free(ld);
  /* DCT denominators keep every crop at or above its output size */
  struct unmix_view_params p[2] = {{.src_w = 400, .src_h = 300, .rs_w = 100, .rs_h = 100},
                                   {.src_w = 90, .src_h = 220, .rs_w = 20, .rs_h = 20}};
  ck_assert_int_eq(unmix_views_dct_denom(p, 1, 300, 400), 2);
  ck_assert_int_eq(unmix_views_dct_denom(p + 1, 1, 300, 400), 4);
  ck_assert_int_eq(unmix_views_dct_denom(p, 2, 300, 400), 2);
  p[0].src_x = 101, p[0].src_y = 60, p[0].src_w = 200, p[0].src_h = 151;
  unmix_view_params_rescale(&p[0], 300, 400, 150, 200);
  ck_assert_msg(p[0].src_x == 50 && p[0].src_y == 30 && p[0].src_w == 101 && p[0].src_h == 76, "(%d %d %d %d)", p[0].src_x,
                p[0].src_y, p[0].src_w, p[0].src_h);
}
END_TEST

START_TEST(test_dct_scaled_loader) {
  char *dir = unmix_test_tmpdir("dct");
  struct unmix_synth_options so = {.format = "imagefolder", .dir = dir, .n = 16, .classes = 2, .seed = 3};
  ck_assert_int_eq(unmix_synth_write(&so), UNMIX_OK);
  struct unmix_recipe r = recipe("lincls-imagenet");
  r.eval.resize = 20; /* images are 40..96 px: most decode at 1/2 */
  r.eval.size = 18;
  uint64_t h[3];
  double diff = 0;
  float *ref = malloc(sizeof(float) * 16 * 18 * 18 * 3);
  for (int k = 0; k < 3; k++) {
    struct unmix_dataset_options o = {.name = "imagefolder", .root = dir, .split = UNMIX_SPLIT_TRAIN,
                                      .cache = UNMIX_CACHE_STREAM, .dct_scale = k > 0};
    struct unmix_dataset *ds;
    ck_assert_int_eq(unmix_dataset_open(&o, &ds), UNMIX_OK);
    struct unmix_loader *ld = make(ds, &r, UNMIX_LOADER_EVAL, 16, k == 2 ? 3 : 1, 1, 0, 1);
    int64_t nb;
    h[k] = digest_epochs(ld, 1, &nb);
    ck_assert_int_eq(unmix_loader_start_epoch(ld, 0), UNMIX_OK);
    const struct unmix_batch *b;
    ck_assert_int_eq(unmix_loader_next(ld, &b), UNMIX_OK);
    ck_assert(b->size == 16 && b->views[0].h == 18);
    size_t n = (size_t)16 * 18 * 18 * 3;
    if (k == 0) memcpy(ref, b->views[0].data, n * sizeof(float));
    if (k == 1)
      for (size_t i = 0; i < n; i++) diff += fabs(b->views[0].data[i] - ref[i]) / n;
    unmix_loader_free(ld);
    unmix_dataset_free(ds);
  }
  ck_assert_msg(h[1] != h[0], "dct_scale changed nothing");
  ck_assert_msg(h[1] == h[2], "dct-scaled batches depend on the thread count");
  ck_assert_msg(diff < 0.25, "dct-scaled decode is far from the full decode (mean |diff| %.3f)", diff);
  free(ref);
  unmix_test_rmdir(dir);
  free(dir);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("data_loader");
  TCase *tc = tcase_create("loader");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_same_batches_for_any_thread_count);
  tcase_add_test(tc, test_rows_equal_independent_augmentation);
  tcase_add_test(tc, test_epoch_permutation_and_drop_last);
  tcase_add_test(tc, test_shards_make_up_the_global_batch);
  tcase_add_test(tc, test_eval_mode_in_order_with_last_batch);
  tcase_add_test(tc, test_multicrop_groups);
  tcase_add_test(tc, test_grey_images_wmse_recipe);
  tcase_add_test(tc, test_crop_group_wmse_recipe);
  tcase_add_test(tc, test_swav_imagenet_recipe);
  tcase_add_test(tc, test_shutdown_mid_epoch_and_restart);
  tcase_add_test(tc, test_worker_error_reaches_consumer);
  tcase_add_test(tc, test_pinned_buffers_and_dct_params);
  tcase_add_test(tc, test_dct_scaled_loader);
  suite_add_tcase(s, tc);
  return s;
}

UNMIX_TEST_MAIN(suite)
