/* The recipe table (see recipe.h for what each one reproduces). */
#include "core/data/recipe.h"

#include <stdio.h>
#include <string.h>

static const float CIFAR_MEAN[3] = {0.4914f, 0.4822f, 0.4465f};
static const float CIFAR_STD[3] = {0.2023f, 0.1994f, 0.2010f};
static const float CIFAR100_MEAN[3] = {0.5071f, 0.4867f, 0.4408f};
static const float CIFAR100_STD[3] = {0.2675f, 0.2565f, 0.2761f};
static const float SWAV_LINCLS_STD[3] = {0.2470f, 0.2435f, 0.2616f};
static const float IMAGENET_MEAN[3] = {0.485f, 0.456f, 0.406f};
static const float IMAGENET_STD[3] = {0.229f, 0.224f, 0.225f};
static const float SWAV_IMAGENET_STD[3] = {0.228f, 0.224f, 0.225f}; /* multicropdataset.py's 0.228 */

static const char *const g_names[] = {"moco-cifar",      "mocov1-imagenet",   "mocov2-imagenet",
                                      "swav-cifar",      "lincls-imagenet",   "lincls-swav-cifar",
                                      "lincls-moco-cifar", "wmse-cifar10",    "wmse-cifar100",
                                      "test",              "swav-imagenet",     "lincls-swav-imagenet", NULL};

const char *const *unmix_recipe_names(void) { return g_names; }

static struct unmix_view_spec rrc(int size, float smin, float smax) {
  struct unmix_view_spec v = {0};
  v.geom = UNMIX_GEOM_RRC;
  v.size = size;
  v.scale_min = smin;
  v.scale_max = smax;
  v.ratio_min = 3.0f / 4.0f;
  v.ratio_max = 4.0f / 3.0f;
  return v;
}
static void add(struct unmix_view_spec *v, struct unmix_aug_op_spec op) {
  UNMIX_REQUIRE(v->n_ops < UNMIX_MAX_AUG_OPS, "too many ops in a view spec");
  v->ops[v->n_ops++] = op;
}
static struct unmix_aug_op_spec flip(void) { return (struct unmix_aug_op_spec){.op = UNMIX_AUG_HFLIP, .p = 0.5f}; }
static struct unmix_aug_op_spec gray(void) { return (struct unmix_aug_op_spec){.op = UNMIX_AUG_GRAY, .p = 0.2f}; }
static struct unmix_aug_op_spec jitter(float b, float c, float s, float h, float p) {
  return (struct unmix_aug_op_spec){.op = UNMIX_AUG_JITTER, .p = p, .brightness = b, .contrast = c, .saturation = s, .hue = h};
}
static struct unmix_aug_op_spec blur(void) {
  return (struct unmix_aug_op_spec){.op = UNMIX_AUG_BLUR, .p = 0.5f, .sigma_min = 0.1f, .sigma_max = 2.0f};
}
static struct unmix_view_spec plain(void) { return (struct unmix_view_spec){.geom = UNMIX_GEOM_NONE}; }
static struct unmix_view_spec resize_crop(void) {
  return (struct unmix_view_spec){.geom = UNMIX_GEOM_RESIZE_CROP, .size = 224, .resize = 256};
}

unmix_status unmix_recipe_get(const char *name, struct unmix_recipe *r) {
  memset(r, 0, sizeof *r);
  snprintf(r->name, sizeof r->name, "%s", name);
  const float *mean = CIFAR_MEAN, *std = CIFAR_STD;
  if (!strcmp(name, "moco-cifar") || !strcmp(name, "swav-cifar")) {
    int swav = name[0] == 's';
    struct unmix_view_spec v = rrc(32, swav ? 0.14f : 0.08f, 1.0f);
    add(&v, flip());
    add(&v, jitter(0.4f, 0.4f, 0.4f, 0.1f, 0.8f));
    add(&v, gray());
    r->n_views = 2;
    r->views[0] = r->views[1] = v;
    r->eval = plain();
  } else if (!strcmp(name, "mocov1-imagenet")) {
    struct unmix_view_spec v = rrc(224, 0.2f, 1.0f);
    add(&v, gray());
    add(&v, jitter(0.4f, 0.4f, 0.4f, 0.4f, 1.0f));
    add(&v, flip());
    r->n_views = 2;
    r->views[0] = r->views[1] = v;
    r->eval = resize_crop();
    mean = IMAGENET_MEAN, std = IMAGENET_STD;
  } else if (!strcmp(name, "mocov2-imagenet")) {
    struct unmix_view_spec v = rrc(224, 0.2f, 1.0f);
    add(&v, jitter(0.4f, 0.4f, 0.4f, 0.1f, 0.8f));
    add(&v, gray());
    add(&v, blur());
    add(&v, flip());
    r->n_views = 2;
    r->views[0] = r->views[1] = v;
    r->eval = resize_crop();
    mean = IMAGENET_MEAN, std = IMAGENET_STD;
  } else if (!strcmp(name, "swav-imagenet")) {
    /* SwAV's multicropdataset.py: RRC, flip, get_color_distortion(s = 1), PIL Gaussian blur;
     * the default crop list is 2 x 224 (scale .14-1); data.crops gives the multi-crop groups */
    struct unmix_view_spec v = rrc(224, 0.14f, 1.0f);
    add(&v, flip());
    add(&v, jitter(0.8f, 0.8f, 0.8f, 0.2f, 0.8f));
    add(&v, gray());
    add(&v, blur());
    r->n_views = 2;
    r->views[0] = r->views[1] = v;
    r->eval = resize_crop();
    mean = IMAGENET_MEAN, std = SWAV_IMAGENET_STD;
  } else if (!strcmp(name, "lincls-imagenet") || !strcmp(name, "lincls-swav-imagenet")) {
    r->views[0] = rrc(224, 0.08f, 1.0f);
    add(&r->views[0], flip());
    r->n_views = 1;
    r->eval = resize_crop();
    mean = IMAGENET_MEAN, std = strcmp(name, "lincls-imagenet") ? SWAV_IMAGENET_STD : IMAGENET_STD;
  } else if (!strcmp(name, "lincls-swav-cifar") || !strcmp(name, "lincls-moco-cifar")) {
    r->views[0] = rrc(32, 0.08f, 1.0f);
    add(&r->views[0], flip());
    r->n_views = 1;
    r->eval = plain();
    if (!strcmp(name, "lincls-swav-cifar")) std = SWAV_LINCLS_STD;
  } else if (!strcmp(name, "wmse-cifar10") || !strcmp(name, "wmse-cifar100")) {
    /* ColorJitter and RandomGrayscale(0.1) on the 32x32 image, then the bicubic crop */
    struct unmix_view_spec v = rrc(32, 0.2f, 1.0f);
    v.filter = UNMIX_PIL_BICUBIC;
    add(&v, jitter(0.4f, 0.4f, 0.4f, 0.1f, 0.8f));
    struct unmix_aug_op_spec g = gray();
    g.p = 0.1f;
    add(&v, g);
    v.pre_geom_ops = 2;
    add(&v, flip());
    r->n_views = 2;
    r->views[0] = r->views[1] = v;
    r->eval = plain();
    if (!strcmp(name, "wmse-cifar100")) mean = CIFAR100_MEAN, std = CIFAR100_STD;
  } else if (!strcmp(name, "test")) {
    r->views[0] = plain();
    r->n_views = 1;
    r->eval = plain();
  } else {
    char known[512] = "";
    for (const char *const *n = g_names; *n; n++) {
      strncat(known, *n, sizeof known - strlen(known) - 1);
      if (n[1]) strncat(known, ", ", sizeof known - strlen(known) - 1);
    }
    return UNMIX_FAIL(UNMIX_ERR_CONFIG, "unknown augmentation recipe '%s' (known: %s)", name, known);
  }
  memcpy(r->mean, mean, sizeof r->mean);
  memcpy(r->std, std, sizeof r->std);
  return UNMIX_OK;
}

unmix_status unmix_recipe_from_config(const struct unmix_data_config *cfg, struct unmix_recipe *r) {
  const char *name = cfg->recipe[0] ? cfg->recipe : "moco-cifar";
  if (unmix_recipe_get(name, r) != UNMIX_OK) return unmix_error_wrap(UNMIX_ERR_CONFIG, "data.recipe");
  if (cfg->n_crop_groups > 0) {
    /* SwAV's multi-crop groups; for the MoCo and W-MSE recipes one group of 2 sets the crop size
     * and scale (the W-MSE views keep their colour ops before the crop: the template's order) */
    if (strncmp(name, "swav-", 5) != 0 && strncmp(name, "moco", 4) != 0 && strncmp(name, "wmse-", 5) != 0)
      return UNMIX_FAIL(UNMIX_ERR_CONFIG, "data.crops: crop groups apply to swav-*, moco* and wmse-* recipes, not '%s'",
                        name);
    if (cfg->n_crop_groups > UNMIX_MAX_CROP_GROUPS)
      return UNMIX_FAIL(UNMIX_ERR_CONFIG, "data.nmb_crops: at most %d crop groups", UNMIX_MAX_CROP_GROUPS);
    struct unmix_view_spec tmpl = r->views[0];
    int n = 0;
    for (int g = 0; g < cfg->n_crop_groups; g++) {
      if (cfg->nmb_crops[g] < 1 || n + cfg->nmb_crops[g] > UNMIX_MAX_VIEWS)
        return UNMIX_FAIL(UNMIX_ERR_CONFIG, "data.nmb_crops[%d] = %d: need >= 1 crops and at most %d in total", g,
                          cfg->nmb_crops[g], UNMIX_MAX_VIEWS);
      if (cfg->size_crops[g] < 1 || cfg->size_crops[g] > 4096)
        return UNMIX_FAIL(UNMIX_ERR_CONFIG, "data.size_crops[%d] = %d: must be in 1..4096", g, cfg->size_crops[g]);
      float lo = cfg->min_scale[g], hi = cfg->max_scale[g];
      if (!(lo > 0.0f && lo <= hi && hi <= 1.0f))
        return UNMIX_FAIL(UNMIX_ERR_CONFIG, "data.min_scale_crops[%d] = %g, max_scale_crops[%d] = %g: need 0 < min <= max <= 1",
                          g, lo, g, hi);
      for (int k = 0; k < cfg->nmb_crops[g]; k++, n++) {
        r->views[n] = tmpl;
        r->views[n].size = cfg->size_crops[g];
        r->views[n].scale_min = lo;
        r->views[n].scale_max = hi;
      }
    }
    r->n_views = n;
  }
  if (cfg->grey_images) /* saturation, hue and grayscale do nothing on grey images; brightness and contrast do */
    for (int v = 0; v < r->n_views; v++) {
      int k = 0, pre = 0;
      for (int i = 0; i < r->views[v].n_ops; i++) {
        struct unmix_aug_op_spec op = r->views[v].ops[i];
        if (op.op == UNMIX_AUG_GRAY) continue;
        if (op.op == UNMIX_AUG_JITTER) {
          op.saturation = op.hue = 0.0f;
          if (op.brightness == 0.0f && op.contrast == 0.0f) continue;
        }
        if (i < r->views[v].pre_geom_ops) pre++; /* the W-MSE recipes' colour ops run before the crop */
        r->views[v].ops[k++] = op;
      }
      r->views[v].n_ops = k;
      r->views[v].pre_geom_ops = pre;
    }
  if (cfg->has_norm) {
    for (int c = 0; c < 3; c++)
      if (!(cfg->std[c] > 0.0f))
        return UNMIX_FAIL(UNMIX_ERR_CONFIG, "data.std[%d] = %g: must be > 0", c, cfg->std[c]);
    memcpy(r->mean, cfg->mean, sizeof r->mean);
    memcpy(r->std, cfg->std, sizeof r->std);
  }
  return UNMIX_OK;
}
