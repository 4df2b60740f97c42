/* Models in checkpoints: parameters and BatchNorm buffers under torchvision names in
 * torchvision layout (conv weights OIHW), plus one `<bn>.num_batches_tracked` I64 scalar per
 * BatchNorm, so `torchvision.models.resnet50().load_state_dict(safetensors.torch.load_file(f))`
 * accepts the backbone of an exported file. */
#pragma once
#include <stdbool.h>

#include "core/io/checkpoint.h"
#include "core/nn/model.h"

/* Adds copies of the model's tensors to ck under `prefix` + torchvision name. backbone_only
 * stops after layer4 (no head / fc / prototypes). */
unmix_status unmix_model_to_ckpt(const struct unmix_model *m, struct unmix_ckpt *ck, const char *prefix,
                                 bool backbone_only);
/* Loads them back; every tensor must be present with the model's shape (errors name the file
 * and tensor). backbone_only loads only the backbone (e.g. a MoCo checkpoint into a linear
 * classifier whose fc differs). */
unmix_status unmix_model_from_ckpt(struct unmix_model *m, const struct unmix_ckpt *ck, const char *prefix,
                                   bool backbone_only);
