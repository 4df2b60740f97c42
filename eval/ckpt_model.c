/* Opening checkpoints / backbones for the evaluation commands and rebuilding their
 * encoder (see ckpt_model.h). */
#include "eval/ckpt_model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io/manifest.h"
#include "core/nn/model_io.h"

static const char *base_name(const char *path) {
  const char *s = strrchr(path, '/');
  return s ? s + 1 : path;
}

static void file_stem(const char *path, char *buf, size_t len) {
  snprintf(buf, len, "%s", base_name(path));
  char *dot = strrchr(buf, '.');
  if (dot && dot != buf) *dot = 0;
}

/* Architecture / stem names for messages: "resnet18, resnet34, ...". */
static void enum_names(int count, const char *(*name)(int), char *buf, size_t len) {
  buf[0] = 0;
  for (int i = 0; i < count; i++) {
    if (i) strncat(buf, ", ", len - strlen(buf) - 1);
    strncat(buf, name(i), len - strlen(buf) - 1);
  }
}
static const char *arch_name_i(int i) { return unmix_arch_name((enum unmix_arch)i); }
static const char *stem_name_i(int i) { return unmix_stem_name((enum unmix_stem)i); }

static unmix_status parse_arch(const char *path, const char *name, int *out) {
  *out = -1;
  int v = unmix_config_enum_parse("model.arch", name);
  if (v < 0) {
    char names[256];
    enum_names(4, arch_name_i, names, sizeof names);
    return unmix_error_set(UNMIX_ERR_ARG, "%s: unknown architecture '%s' (--arch: %s)", path, name, names);
  }
  *out = v;
  return UNMIX_OK;
}

static unmix_status parse_stem(const char *path, const char *name, int *out) {
  *out = -1;
  int v = unmix_config_enum_parse("model.stem", name);
  if (v < 0) {
    char names[256];
    enum_names(3, stem_name_i, names, sizeof names);
    return unmix_error_set(UNMIX_ERR_ARG, "%s: unknown stem '%s' (--stem: %s)", path, name, names);
  }
  *out = v;
  return UNMIX_OK;
}

/* Defaults of a plain backbone's "run": the stem's dataset family and linear protocol. */
static void plain_defaults(struct unmix_config *cfg) {
  cfg->model.head = UNMIX_HEAD_NONE;
  cfg->model.bn_splits = 1;
  cfg->method = UNMIX_METHOD_MOCO;
  cfg->knn.bank_subset = cfg->knn.test_subset = 0;
  struct unmix_linear_config *lc = &cfg->linear;
  switch (cfg->model.stem) {
    case UNMIX_STEM_IMAGENET:
      snprintf(cfg->data.dataset, sizeof cfg->data.dataset, "imagefolder");
      snprintf(cfg->data.recipe, sizeof cfg->data.recipe, "mocov2-imagenet");
      lc->protocol = UNMIX_LINCLS_IMAGENET;
      break;
    case UNMIX_STEM_CIFAR:
      snprintf(cfg->data.dataset, sizeof cfg->data.dataset, "cifar10");
      snprintf(cfg->data.recipe, sizeof cfg->data.recipe, "moco-cifar");
      lc->protocol = UNMIX_LINCLS_MOCO_CIFAR;
      break;
    case UNMIX_STEM_SWAV_CIFAR:
      snprintf(cfg->data.dataset, sizeof cfg->data.dataset, "cifar10");
      snprintf(cfg->data.recipe, sizeof cfg->data.recipe, "swav-cifar");
      lc->protocol = UNMIX_LINCLS_SWAV_CIFAR;
      break;
  }
  /* lincls uses the protocol's reference values for files without a manifest */
}

/* The config of a file without `unmix.manifest`. */
static unmix_status plain_config(struct unmix_eval_ckpt *e, const struct unmix_eval_open_options *o) {
  struct unmix_config *cfg = &e->cfg;
  const char *src = unmix_ckpt_meta(e->ck, "unmix.source_manifest");
  if (src) {
    char name[UNMIX_PATH_MAX + 32];
    snprintf(name, sizeof name, "%s:unmix.source_manifest", e->path);
    UNMIX_TRY(unmix_manifest_load_string(src, name, NULL, 0, cfg));
    e->has_manifest = true;
    cfg->model.head = UNMIX_HEAD_NONE;
    cfg->model.bn_splits = 1;
  } else if (o->no_plain) {
    return unmix_error_set(UNMIX_ERR_FORMAT,
                           "%s: not an unmix training checkpoint (no metadata key unmix.manifest); this command "
                           "needs one (a plain backbone has no training state)",
                           e->path);
  } else if (!o->arch) {
    return unmix_error_set(UNMIX_ERR_FORMAT,
                           "%s: not an unmix training checkpoint (no metadata key unmix.manifest); to use it as a "
                           "plain torchvision backbone pass --arch resnet18|resnet34|resnet50|resnet18-bottleneck "
                           "(and --stem imagenet|cifar|swav-cifar)",
                           e->path);
  }
  int v = -1;
  if (o->arch) {
    UNMIX_TRY(parse_arch(e->path, o->arch, &v));
    cfg->model.arch = (enum unmix_arch)v;
  }
  /* stem and width from conv1.weight (K, C, R, S) unless given */
  char conv1[256];
  snprintf(conv1, sizeof conv1, "%sconv1.weight", e->prefix);
  const struct unmix_ckpt_tensor *t = unmix_ckpt_find(e->ck, conv1);
  if (!t)
    return unmix_error_set(UNMIX_ERR_FORMAT, "%s: no tensor '%s': not a torchvision ResNet backbone%s", e->path, conv1,
                           e->prefix[0] ? "" : " (use --prefix if its names carry one, e.g. module.encoder_q.)");
  if (t->ndim != 4)
    return unmix_error_set(UNMIX_ERR_FORMAT, "%s: tensor '%s' has %d dimensions, expected 4 (K, C, R, S)", e->path,
                           conv1, t->ndim);
  if (o->stem) {
    UNMIX_TRY(parse_stem(e->path, o->stem, &v));
    cfg->model.stem = (enum unmix_stem)v;
  } else if (!src || o->arch) {
    cfg->model.stem = t->shape[2] == 7                                   ? UNMIX_STEM_IMAGENET
                      : cfg->model.arch == UNMIX_ARCH_RESNET18_BOTTLENECK ? UNMIX_STEM_SWAV_CIFAR
                                                                         : UNMIX_STEM_CIFAR;
  }
  if (o->width > 0) cfg->model.width = o->width;
  else if (!src || o->arch) cfg->model.width = (int)t->shape[0];
  if (!src) plain_defaults(cfg);
  return UNMIX_OK;
}

unmix_status unmix_eval_ckpt_open(const char *path, const struct unmix_eval_open_options *o,
                                  struct unmix_eval_ckpt **out) {
  *out = NULL;
  struct unmix_eval_open_options none = {0};
  if (!o) o = &none;
  struct unmix_eval_ckpt *e = unmix_xcalloc(1, sizeof *e);
  unmix_config_init_defaults(&e->cfg);
  snprintf(e->path, sizeof e->path, "%s", path);
  snprintf(e->prefix, sizeof e->prefix, "%s", o->prefix ? o->prefix : "");
  e->epochs_done = -1;
  unmix_status st = unmix_ckpt_load(path, &e->ck);
  if (st != UNMIX_OK) goto fail;
  const char *man = unmix_ckpt_meta(e->ck, "unmix.manifest");
  if (man) {
    char name[UNMIX_PATH_MAX + 32];
    snprintf(name, sizeof name, "%s:unmix.manifest", path);
    st = unmix_manifest_load_string(man, name, NULL, 0, &e->cfg);
    if (st != UNMIX_OK) goto fail;
    e->kind = UNMIX_EVAL_TRAINING;
    e->has_manifest = true;
    int v = -1;
    if (o->arch) {
      if ((st = parse_arch(path, o->arch, &v)) != UNMIX_OK) goto fail;
      if (v != (int)e->cfg.model.arch) {
        st = unmix_error_set(UNMIX_ERR_ARG, "%s was trained with model.arch %s; --arch %s disagrees", path,
                             unmix_arch_name(e->cfg.model.arch), o->arch);
        goto fail;
      }
    }
    if (o->stem) {
      if ((st = parse_stem(path, o->stem, &v)) != UNMIX_OK) goto fail;
      if (v != (int)e->cfg.model.stem) {
        st = unmix_error_set(UNMIX_ERR_ARG, "%s was trained with model.stem %s; --stem %s disagrees", path,
                             unmix_stem_name(e->cfg.model.stem), o->stem);
        goto fail;
      }
    }
    if (o->width > 0 && o->width != e->cfg.model.width) {
      st = unmix_error_set(UNMIX_ERR_ARG, "%s was trained with model.width %d; --width %d disagrees", path,
                           e->cfg.model.width, o->width);
      goto fail;
    }
  } else {
    e->kind = UNMIX_EVAL_BACKBONE;
    if ((st = plain_config(e, o)) != UNMIX_OK) goto fail;
  }
  if (o->dataset) {
    if (!*o->dataset) {
      st = unmix_error_set(UNMIX_ERR_ARG, "--dataset is empty");
      goto fail;
    }
    if (strcmp(o->dataset, e->cfg.data.dataset) != 0) {
      snprintf(e->cfg.data.dataset, sizeof e->cfg.data.dataset, "%s", o->dataset);
      e->cfg.data.root[0] = 0; /* the manifest's root belongs to its dataset */
      /* a plain backbone's CIFAR recipes fit every 32x32 dataset; Fashion-MNIST needs 3
       * channels padded to 32 for them */
      if (!strcmp(o->dataset, "fashion-mnist") && e->cfg.model.stem != UNMIX_STEM_IMAGENET) {
        e->cfg.data.channels = 3;
        if (e->cfg.data.pad_to == 0) e->cfg.data.pad_to = 32;
      }
    }
  }
  if (o->data_root) snprintf(e->cfg.data.root, sizeof e->cfg.data.root, "%s", o->data_root);
  const char *ep = unmix_ckpt_meta(e->ck, "unmix.epochs_done");
  if (ep) {
    char *end = NULL;
    errno = 0;
    long v = strtol(ep, &end, 10);
    if (!errno && end && end != ep && !*end && v >= 0 && v < (1L << 30)) e->epochs_done = (int)v;
  }
  if (e->has_manifest && e->cfg.name[0]) snprintf(e->label, sizeof e->label, "%s", e->cfg.name);
  else file_stem(path, e->label, sizeof e->label);
  *out = e;
  return UNMIX_OK;
fail:
  unmix_eval_ckpt_close(e);
  return st;
}

void unmix_eval_ckpt_close(struct unmix_eval_ckpt *e) {
  if (!e) return;
  unmix_ckpt_free(e->ck);
  unmix_config_free(&e->cfg);
  free(e);
}

unmix_status unmix_eval_backend(const struct unmix_eval_ckpt *e, const char *name, const struct unmix_backend **out) {
  const char *use = name;
  if (!use) use = e->has_manifest && unmix_backend_available(e->cfg.backend) ? e->cfg.backend : "cpu";
  UNMIX_TRY(unmix_backend_get(use, out));
  (*out)->set_precision(e->cfg.precision);
  return UNMIX_OK;
}

int unmix_eval_image_size(const struct unmix_eval_ckpt *e, const struct unmix_recipe *rc,
                          const struct unmix_dataset *ds) {
  if (rc && rc->eval.geom != UNMIX_GEOM_NONE && rc->eval.size > 0) return rc->eval.size;
  if (ds && ds->h > 0) return ds->h;
  if (rc && rc->n_views > 0 && rc->views[0].size > 0) return rc->views[0].size;
  if (rc && rc->eval.size > 0) return rc->eval.size;
  const struct unmix_data_config *d = &e->cfg.data;
  if (!strcmp(d->dataset, "fashion-mnist")) return d->pad_to > 0 ? d->pad_to : 28;
  if (!strcmp(d->dataset, "imagefolder")) return 224;
  return 32;
}

unmix_status unmix_eval_build_model(const struct unmix_eval_ckpt *e, const struct unmix_backend *be, int num_classes,
                                    int image_size, struct unmix_model **out) {
  *out = NULL;
  struct unmix_model_spec spec;
  unmix_model_spec_from_config(&e->cfg, image_size, &spec);
  if (e->kind == UNMIX_EVAL_BACKBONE) {
    spec.head = UNMIX_HEAD_NONE;
    spec.nmb_prototypes = 0;
  }
  if (num_classes > 0) {
    spec.num_classes = num_classes;
    spec.lincls_init = true;
    spec.bn_splits = 1; /* the classifier runs BatchNorm in eval mode only */
  }
  struct unmix_model *m = NULL;
  unmix_status st = unmix_model_create(&spec, be, e->cfg.seed, &m);
  if (st != UNMIX_OK) return unmix_error_wrap(st, "%s: building %s", e->path, unmix_arch_name(spec.arch));
  bool backbone_only = num_classes > 0 || e->kind == UNMIX_EVAL_BACKBONE;
  st = unmix_model_from_ckpt(m, e->ck, e->prefix, backbone_only);
  if (st != UNMIX_OK) {
    unmix_model_destroy(m);
    return unmix_error_wrap(st, "%s %s stem %s width %d", unmix_arch_name(spec.arch),
                            e->has_manifest ? "(from the manifest)" : "(as given)", unmix_stem_name(spec.stem),
                            spec.width);
  }
  *out = m;
  return UNMIX_OK;
}

unmix_status unmix_eval_open_dataset(const struct unmix_eval_ckpt *e, enum unmix_split split, int64_t subset,
                                     struct unmix_dataset **out) {
  struct unmix_dataset_options o;
  unmix_dataset_options_from_config(&e->cfg.data, split, &o);
  o.subset = subset;
  unmix_status st = unmix_dataset_open(&o, out);
  if (st != UNMIX_OK)
    return unmix_error_wrap(st, "%s: the %s split of data.dataset %s (pass --data-root DIR if it lives elsewhere)",
                            e->path, split == UNMIX_SPLIT_TRAIN ? "train" : "test", e->cfg.data.dataset);
  return UNMIX_OK;
}

unmix_status unmix_eval_recipe(const struct unmix_eval_ckpt *e, const char *name, struct unmix_recipe *out) {
  struct unmix_data_config d = e->cfg.data;
  if (name) {
    snprintf(d.recipe, sizeof d.recipe, "%s", name);
    d.n_crop_groups = 0; /* SwAV multi-crop groups describe the pre-training views only */
  }
  unmix_status st = unmix_recipe_from_config(&d, out);
  if (st != UNMIX_OK) return unmix_error_wrap(st, "%s", e->path);
  return UNMIX_OK;
}

unmix_status unmix_eval_check_input(const struct unmix_eval_ckpt *e, const struct unmix_view_spec *view,
                                    const struct unmix_dataset *ds, int image_size) {
  if (ds->c != 3)
    return unmix_error_set(UNMIX_ERR_CONFIG,
                           "%s: dataset %s (%s) has %d-channel images but the encoder takes 3 (data.channels: 3)",
                           e->path, ds->name, ds->root, ds->c);
  int h, w;
  if (view->geom == UNMIX_GEOM_NONE) {
    if (ds->h == 0)
      return unmix_error_set(UNMIX_ERR_CONFIG, "%s: dataset %s has images of varying size and the recipe does not "
                                               "crop them", e->path, ds->name);
    h = ds->h;
    w = ds->w;
  } else {
    h = w = view->size;
  }
  if (h != image_size || w != image_size)
    return unmix_error_set(UNMIX_ERR_CONFIG,
                           "%s: the transform gives %dx%d images of dataset %s but the encoder was built for %dx%d "
                           "(data.pad_to / the recipe)",
                           e->path, h, w, ds->name, image_size, image_size);
  return UNMIX_OK;
}
