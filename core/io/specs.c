/* The translation from the manifest's typed config to the small specs the layers below io
 * take (the model spec, with what the configured method needs of its network). */
#include "core/io/specs.h"

#include <string.h>

#include "core/io/manifest.h"
#include "core/methods/method.h"

/* model.* alone (no method needs) */
static void model_section(const struct unmix_config *cfg, int image_size, struct unmix_model_spec *spec) {
  memset(spec, 0, sizeof *spec);
  spec->arch = cfg->model.arch;
  spec->stem = cfg->model.stem;
  spec->width = cfg->model.width;
  spec->bn_splits = cfg->model.bn_splits;
  spec->head = cfg->model.head;
  spec->dim = cfg->model.dim;
  spec->hidden = cfg->model.hidden;
  spec->in_channels = 3;
  spec->image_size = image_size;
}

unmix_status unmix_method_spec_from_config(const struct unmix_config *cfg, int image_size,
                                           struct unmix_method_spec *out) {
  memset(out, 0, sizeof *out);
  const char *name = unmix_method_name(cfg->method);
  out->ops = unmix_method_ops_find(name);
  if (!out->ops) return unmix_error_set(UNMIX_ERR_CONFIG, "method '%s' is not registered", name);
  out->seed = cfg->seed;
  model_section(cfg, image_size, &out->model);
  out->sync_bn = cfg->model.sync_bn;
  out->sync_bn_group = cfg->model.sync_bn_group;
  for (int g = 0; g < cfg->data.n_crop_groups; g++)
    for (int k = 0; k < cfg->data.nmb_crops[g]; k++)
      if (out->n_crops < UNMIX_MAX_METHOD_CROPS) out->crop_size[out->n_crops++] = cfg->data.size_crops[g];
      else out->n_crops++;
  out->optim = cfg->optim;
  out->unmix = cfg->unmix;
  out->moco = cfg->moco;
  out->swav = cfg->swav;
  out->simclr = cfg->simclr;
  out->byol = cfg->byol;
  out->epochs = cfg->train.epochs;
  if (out->ops->model_needs) out->ops->model_needs(out, &out->model);
  return UNMIX_OK;
}

void unmix_model_spec_from_config(const struct unmix_config *cfg, int image_size, struct unmix_model_spec *spec) {
  struct unmix_method_spec ms;
  if (unmix_method_spec_from_config(cfg, image_size, &ms) == UNMIX_OK) *spec = ms.model;
  else model_section(cfg, image_size, spec);
}

unmix_status unmix_method_create(const struct unmix_config *cfg, const struct unmix_backend *be, int image_size,
                                 struct unmix_comm *comm, struct unmix_method **out) {
  *out = NULL;
  struct unmix_method_spec ms;
  UNMIX_TRY(unmix_method_spec_from_config(cfg, image_size, &ms));
  return unmix_method_new(&ms, be, comm, out);
}
