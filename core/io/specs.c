/* The translation from the manifest's typed config to the small specs the layers below io
 * take (the model spec, with what the configured method needs of its network). */
#include "core/io/specs.h"

#include <string.h>

#include "core/io/manifest.h"
#include "core/methods/method.h"

void unmix_model_spec_from_config(const struct unmix_config *cfg, int image_size, struct unmix_model_spec *spec) {
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
  const struct unmix_method_ops *ops = unmix_method_ops_find(unmix_method_name(cfg->method));
  if (ops && ops->model_needs) ops->model_needs(cfg, spec);
}
