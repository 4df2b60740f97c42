/* Manifest -> layer specs: the layers below io (nn, optim, data, methods) take their own
 * small specs; this is where a struct unmix_config becomes them. */
#pragma once
#include "core/io/config.h"
#include "core/methods/method.h"
#include "core/nn/model.h"

/* The network of cfg at image_size: model.* plus what cfg's method needs (SwAV: prototypes). */
void unmix_model_spec_from_config(const struct unmix_config *cfg, int image_size, struct unmix_model_spec *spec);
/* Everything cfg's method is built from, its network at image_size (the training views'
 * size); UNMIX_ERR_CONFIG when the method is not registered. */
unmix_status unmix_method_spec_from_config(const struct unmix_config *cfg, int image_size,
                                           struct unmix_method_spec *out);
/* unmix_method_new on cfg's spec. comm may be NULL. */
unmix_status unmix_method_create(const struct unmix_config *cfg, const struct unmix_backend *be, int image_size,
                                 struct unmix_comm *comm, struct unmix_method **out);
