/* Augmentation recipes as data: the multi-view training transform and the evaluation
 * transform of each reference script, selected by name (`data.recipe` in a manifest).
 *
 *   moco-cifar         2 x [RRC(32) HFlip Jitter(.4,.4,.4,.1)@.8 Gray@.2], CIFAR mean/std  (FIDELITY §2.2)
 *   mocov1-imagenet    2 x [RRC(224,.2-1) Gray@.2 Jitter(.4,.4,.4,.4) HFlip], ImageNet     (FIDELITY §2.8)
 *   mocov2-imagenet    2 x [RRC(224,.2-1) Jitter(.4,.4,.4,.1)@.8 Gray@.2 Blur(.1-2)@.5 HFlip] (FIDELITY §2.8)
 *   swav-cifar         groups of [RRC(size, scale) HFlip Jitter(.4,.4,.4,.1)@.8 Gray@.2];
 *                      default 2 x 32px, scale .14-1; CIFAR mean, std (.2023,.1994,.2010) (FIDELITY §3.2)
 *   swav-imagenet      groups of [RRC(size, scale) HFlip Jitter(.8,.8,.8,.2)@.8 Gray@.2 Blur(.1-2)@.5];
 *                      default 2 x 224px, scale .14-1; ImageNet mean, std (.228,.224,.225)
 *                      (docs/FIDELITY.md "SwAV on ImageNet")
 *   lincls-imagenet    [RRC(224) HFlip] / eval Resize(256)+CenterCrop(224)               (FIDELITY §5.2)
 *   lincls-swav-imagenet  as lincls-imagenet with std (.228,.224,.225)  (SwAV's eval_linear.py)
 *   lincls-swav-cifar  [RRC(32) HFlip] / eval ToTensor; std (.2470,.2435,.2616)          (FIDELITY §5.2)
 *   lincls-moco-cifar  [RRC(32) HFlip] / eval ToTensor; CIFAR mean/std
 *   wmse-cifar10       2 x [Jitter(.4,.4,.4,.1)@.8 Gray@.1 RRC(32,.2-1,BICUBIC) HFlip], colour BEFORE
 *                      the crop; CIFAR-10 mean/std. The SimCLR/BYOL recipe of the W-MSE codebase
 *                      (htdt/self-supervised, datasets/transforms.py), docs/FIDELITY.md
 *   wmse-cifar100      the same with CIFAR-100 mean (.5071,.4867,.4408), std (.2675,.2565,.2761)
 *   test               ToTensor + Normalize only (CIFAR mean/std)
 * The ImageNet recipes evaluate with Resize(256)+CenterCrop(224); the CIFAR ones with
 * ToTensor+Normalize (the kNN memory/test transform). Mean/std can be overridden. */
#pragma once
#include "core/data/augment.h"
#include "core/data/options.h"
#include "core/util/error.h"

#define UNMIX_MAX_VIEWS 16

struct unmix_recipe {
  char name[32];
  int n_views;
  struct unmix_view_spec views[UNMIX_MAX_VIEWS]; /* training views */
  struct unmix_view_spec eval;                   /* evaluation / feature-extraction transform */
  float mean[3], std[3];
};

/* NULL-terminated list of recipe names. */
const char *const *unmix_recipe_names(void);
/* The recipe `name`; UNMIX_ERR_CONFIG naming the known recipes when unknown. */
unmix_status unmix_recipe_get(const char *name, struct unmix_recipe *out);
/* The recipe of a data config: `recipe` ("" = moco-cifar), SwAV crop groups (n_crop_groups > 0
 * replaces the views of a swav-* recipe by nmb_crops[i] views of size_crops[i] and scale
 * [min_scale[i], max_scale[i]]) and the mean/std override. Errors name the manifest key. */
unmix_status unmix_recipe_from_config(const struct unmix_data_config *cfg, struct unmix_recipe *out);
