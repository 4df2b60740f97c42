/* The data layer's options: the manifest's data section as the data layer reads it (dataset,
 * root, recipe, crops, normalisation, loader threads). The manifest config embeds it; the dataset,
 * recipe and loader turn it into their own options (dataset.h, recipe.h, loader.h). */
#pragma once
#include <stdbool.h>

#define UNMIX_PATH_MAX 1024      /* file paths held in fixed buffers (data.root, run dirs) */
#define UNMIX_MAX_CROP_GROUPS 4

struct unmix_data_config {
  char dataset[32];            /* cifar10 | cifar100 | fashion-mnist | imagefolder */
  char root[UNMIX_PATH_MAX];   /* "" = the dataset's default root */
  char recipe[32];             /* moco-cifar | swav-cifar | mocov1-imagenet | mocov2-imagenet | test */
  int subset;                  /* use the first N training samples (0 = all) */
  int test_subset;             /* use the first N test samples (0 = all) */
  int workers;                 /* loader threads (0 = number of cores) */
  int prefetch;                /* batches prefetched */
  int pad_to;                  /* Fashion-MNIST: zero-pad 28x28 to this size (0 = keep) */
  int channels;                /* Fashion-MNIST: 1 or 3 (grey replicated) */
  bool skip_corrupt;           /* ImageFolder: skip and count unreadable images instead of failing */
  bool grey_images;            /* grey images: random grayscale and the jitter's saturation and hue are left out */
  /* SwAV multi-crop groups: nmb_crops[i] crops of size_crops[i], scale in [min_scale, max_scale]. */
  int n_crop_groups;
  int nmb_crops[UNMIX_MAX_CROP_GROUPS];
  int size_crops[UNMIX_MAX_CROP_GROUPS];
  float min_scale[UNMIX_MAX_CROP_GROUPS];
  float max_scale[UNMIX_MAX_CROP_GROUPS];
  bool has_norm;               /* mean/std override the recipe's */
  float mean[3], std[3];
};
