/* What an evaluation command is given, opened: a training checkpoint (the encoder's tensors
 * under torchvision names + the run's resolved manifest in metadata `unmix.manifest`) or a
 * plain torchvision-layout backbone (e.g. from `unmix export`), and the encoder rebuilt
 * exactly as the run built it, with its datasets, recipe, image size and backend.
 *
 * Kinds of file:
 *  - training checkpoint (`unmix.manifest` present): the config is the run's resolved
 *    manifest; the model is the encoder with its head (MoCo: encoder_q; SwAV: the model with
 *    projection and prototypes); --arch/--stem/--width must agree with it when given;
 *  - exported backbone (`unmix.source_manifest` present, written by `unmix export`): the
 *    config is the source run's manifest with the head removed (features = avgpool);
 *  - plain backbone (neither): needs an explicit architecture (--arch); the stem and width
 *    are read from conv1.weight unless given; the dataset / recipe / linear protocol default
 *    to the stem's family (imagenet: ImageFolder + ImageNet recipes; cifar / swav-cifar:
 *    CIFAR-10 + the MoCo / SwAV CIFAR recipes).
 * Every error names the file and the key or tensor at fault. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "core/backend/backend.h"
#include "core/data/dataset.h"
#include "core/data/recipe.h"
#include "core/io/checkpoint.h"
#include "core/io/config.h"
#include "core/nn/model.h"

enum unmix_eval_kind {
  UNMIX_EVAL_TRAINING = 0, /* a training checkpoint: encoder + head */
  UNMIX_EVAL_BACKBONE      /* conv1 .. layer4 only (exported or foreign) */
};

struct unmix_eval_open_options {
  const char *arch;      /* NULL = the manifest's; required for plain backbones */
  const char *stem;      /* NULL = the manifest's, else inferred from conv1.weight */
  int width;             /* 0 = the manifest's, else inferred from conv1.weight */
  const char *prefix;    /* prefix of the tensor names in the file (NULL = ""), e.g. "module.encoder_q." */
  const char *dataset;   /* NULL = the manifest's data.dataset (or the stem's default) */
  const char *data_root; /* NULL = the manifest's data.root */
  bool no_plain;         /* the command needs an unmix checkpoint: a plain backbone is refused as
                          * such (no hint at --arch, which it does not take) */
};

struct unmix_eval_ckpt {
  char path[UNMIX_PATH_MAX];
  enum unmix_eval_kind kind;
  struct unmix_ckpt *ck;
  struct unmix_config cfg;   /* resolved manifest (plain backbones: defaults + the architecture) */
  bool has_manifest;         /* cfg came from the file's metadata */
  char prefix[128];
  int epochs_done;           /* metadata unmix.epochs_done, -1 when absent */
  char label[UNMIX_NAME_MAX];/* the run name (manifest `name`), else the file name without extension */
};

unmix_status unmix_eval_ckpt_open(const char *path, const struct unmix_eval_open_options *o,
                                  struct unmix_eval_ckpt **out);
void unmix_eval_ckpt_close(struct unmix_eval_ckpt *e);

/* The backend to run on: `name` when given, else the manifest's backend when it is usable
 * here, else cpu. Applies the manifest's GPU precision. */
unmix_status unmix_eval_backend(const struct unmix_eval_ckpt *e, const char *name, const struct unmix_backend **out);

/* The input size to build the encoder for: what the recipe's evaluation transform gives (its
 * resize/crop size, else the dataset's images), else its first training view, else the
 * dataset's default (ds may be NULL: CIFAR 32, Fashion-MNIST pad_to or 28, ImageNet 224). The
 * network takes any size; the training crops (data.crops) may be smaller than the images
 * evaluated. */
int unmix_eval_image_size(const struct unmix_eval_ckpt *e, const struct unmix_recipe *rc,
                          const struct unmix_dataset *ds);

/* Builds the encoder and loads its tensors. num_classes = 0: the model as the run had it
 * (all tensors of a training checkpoint; the backbone of a backbone file). num_classes > 0:
 * a linear classifier `fc` (N(0, 0.01^2), bias 0, seeded by the manifest seed) on the
 * backbone's avgpool features replaces the head; only the backbone is loaded. */
unmix_status unmix_eval_build_model(const struct unmix_eval_ckpt *e, const struct unmix_backend *be, int num_classes,
                                    int image_size, struct unmix_model **out);

/* The manifest's dataset for a split, first `subset` samples (0 = all). */
unmix_status unmix_eval_open_dataset(const struct unmix_eval_ckpt *e, enum unmix_split split, int64_t subset,
                                     struct unmix_dataset **out);
/* The manifest's recipe (its evaluation transform is what kNN / t-SNE / flatness use), or the
 * recipe `name` with the manifest's mean/std override when name is non-NULL. */
unmix_status unmix_eval_recipe(const struct unmix_eval_ckpt *e, const char *name, struct unmix_recipe *out);
/* UNMIX_ERR_CONFIG when `view` applied to ds does not give image_size^2 x 3 inputs. */
unmix_status unmix_eval_check_input(const struct unmix_eval_ckpt *e, const struct unmix_view_spec *view,
                                    const struct unmix_dataset *ds, int image_size);
