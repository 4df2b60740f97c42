/* `unmix export CKPT --to torchvision OUT.safetensors`: the encoder's backbone (conv1 ..
 * layer4 with BatchNorm buffers and num_batches_tracked) under torchvision names and layout,
 * for torchvision / detectron2. The head (MoCo fc / MLP, SwAV projection and prototypes) is
 * not exported, so torchvision's fc.weight / fc.bias are the only missing keys. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io/checkpoint.h"
#include "core/nn/model_io.h"
#include "core/io/manifest.h"
#include "eval/ckpt_model.h"
#include "experiments/commands.h"
#include "experiments/evalcli.h"

struct export_opts {
  const char *to;
};
static const char *const g_formats[] = {"torchvision", NULL};
static const struct unmix_opt g_opts[] = {
    {.name = "to", .type = UNMIX_OPT_STRING, .arg = "FORMAT", .off = offsetof(struct export_opts, to),
     .help = "torchvision (the only format; required)"},
};

const struct unmix_evalcmd unmix_evalcmd_export = {
    "export",
    "usage: unmix export CKPT --to torchvision OUT.safetensors [options]\n\n"
    "Writes the checkpoint encoder's backbone - conv1, bn1, layer1..layer4 with BatchNorm running\n"
    "statistics and num_batches_tracked - under torchvision names in torchvision layout (conv weights\n"
    "OIHW), float32 (num_batches_tracked int64). MoCo: encoder_q; SwAV: the trunk without projection\n"
    "head and prototypes. There is NO fc: load it with\n"
    "  m = torchvision.models.resnet50()\n"
    "  missing, unexpected = m.load_state_dict(safetensors.torch.load_file(OUT), strict=False)\n"
    "  # missing == ['fc.weight', 'fc.bias'], unexpected == []\n"
    "(CIFAR stems: replace m.conv1 by a 3x3 stride-1 conv and m.maxpool by Identity first), or convert\n"
    "it for detectron2 (tools/convert-torchvision-to-d2.py reads a torch state dict: save it with\n"
    "torch.save first). The file's metadata records the source checkpoint, its architecture and its\n"
    "resolved manifest (unmix.source_manifest), so the evaluation commands accept it directly.\n\n"
    "example: unmix export results/runs/cifar10_moco_sym/checkpoint.safetensors --to torchvision r18.safetensors\n",
    g_opts, (int)(sizeof g_opts / sizeof g_opts[0])};

int unmix_cmd_export(int argc, char **argv) {
  struct unmix_evalcli cli;
  struct export_opts o = {0};
  char **pos = unmix_xmalloc(sizeof(char *) * (size_t)(argc + 1));
  int npos = 0;
  int pr = unmix_evalcli_parse(&unmix_evalcmd_export, &o, &cli, argc, argv, pos, &npos);
  const char *path = npos == 2 ? pos[0] : NULL, *out = npos == 2 ? pos[1] : NULL;
  free(pos);
  if (pr >= 0) return pr;
  const char *to = o.to;
  if (!to) {
    fprintf(stderr, "unmix export: --to FORMAT is required (torchvision)\n\n");
    unmix_evalcli_usage(&unmix_evalcmd_export, stderr);
    return 2;
  }
  /* a format list of its own (not an option choice): the message names the one format */
  if (strcmp(to, g_formats[0]) != 0) {
    fprintf(stderr, "unmix export: unknown format '%s' (--to torchvision)\n", to);
    return 2;
  }
  if (npos != 2) {
    fprintf(stderr, "unmix export: expected CKPT and OUT.safetensors (got %d arguments)\n\n", npos);
    unmix_evalcli_usage(&unmix_evalcmd_export, stderr);
    return 2;
  }
  struct unmix_eval_ckpt *e = NULL;
  struct unmix_model *m = NULL;
  struct unmix_ckpt *ck = NULL;
  const struct unmix_backend *be = NULL;
  struct unmix_recipe rc;
  int rcode = 1;
  if (unmix_eval_ckpt_open(path, &cli.open, &e) != UNMIX_OK) goto fail;
  if (unmix_backend_get(cli.backend ? cli.backend : "cpu", &be) != UNMIX_OK) goto fail;
  if (unmix_eval_recipe(e, NULL, &rc) != UNMIX_OK) goto fail;
  if (unmix_eval_build_model(e, be, 0, unmix_eval_image_size(e, &rc, NULL), &m) != UNMIX_OK) goto fail;
  ck = unmix_ckpt_new();
  if (unmix_model_to_ckpt(m, ck, "", true) != UNMIX_OK) goto fail;
  char width[16], epochs[16];
  snprintf(width, sizeof width, "%d", e->cfg.model.width);
  snprintf(epochs, sizeof epochs, "%d", e->epochs_done);
  if (unmix_ckpt_set_meta(ck, "unmix.format", "torchvision-backbone") != UNMIX_OK) goto fail;
  if (unmix_ckpt_set_meta(ck, "unmix.arch", unmix_arch_name(e->cfg.model.arch)) != UNMIX_OK) goto fail;
  if (unmix_ckpt_set_meta(ck, "unmix.stem", unmix_stem_name(e->cfg.model.stem)) != UNMIX_OK) goto fail;
  if (unmix_ckpt_set_meta(ck, "unmix.width", width) != UNMIX_OK) goto fail;
  if (unmix_ckpt_set_meta(ck, "unmix.source", path) != UNMIX_OK) goto fail;
  if (e->epochs_done >= 0 && unmix_ckpt_set_meta(ck, "unmix.epochs_done", epochs) != UNMIX_OK) goto fail;
  if (e->has_manifest && e->cfg.resolved_yaml &&
      unmix_ckpt_set_meta(ck, "unmix.source_manifest", e->cfg.resolved_yaml) != UNMIX_OK)
    goto fail;
  if (unmix_ckpt_save(ck, out) != UNMIX_OK) goto fail;
  int64_t nparams = 0;
  for (int i = 0; i < m->n_backbone_params; i++) nparams += m->params.entries[i].numel;
  printf("exported %s (%s, %s stem, width %d, epoch %s): %zu tensors, %lld backbone parameters, no fc -> %s\n",
         e->label, unmix_arch_name(e->cfg.model.arch), unmix_stem_name(e->cfg.model.stem), e->cfg.model.width,
         e->epochs_done >= 0 ? epochs : "unknown", ck->n, (long long)nparams, out);
  rcode = 0;
fail:
  if (rcode) unmix_cmd_fail("export");
  unmix_ckpt_free(ck);
  unmix_model_destroy(m);
  unmix_eval_ckpt_close(e);
  return rcode;
}
