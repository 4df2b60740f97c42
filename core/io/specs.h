/* Manifest -> layer specs: the layers below io (nn, optim, data, methods) take their own
 * small specs; this is where a struct unmix_config becomes them. */
#pragma once
#include "core/io/config.h"
#include "core/nn/model.h"

/* The network of cfg at image_size: model.* plus what cfg's method needs (SwAV: prototypes). */
void unmix_model_spec_from_config(const struct unmix_config *cfg, int image_size, struct unmix_model_spec *spec);
