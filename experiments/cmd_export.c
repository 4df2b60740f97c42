/* `unmix export CKPT --to torchvision OUT.safetensors`: the encoder's backbone (conv1 ..
 * layer4 with BatchNorm buffers and num_batches_tracked) under torchvision names and layout,
 * for torchvision / detectron2. The head (MoCo fc / MLP, SwAV projection and prototypes) is
 * not exported, so torchvision's fc.weight / fc.bias are the only missing keys. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io/checkpoint.h"
#include "core/nn/model_io.h"
#include "core/io/manifest.h"
#include "eval/ckpt_model.h"
#include "experiments/commands.h"
#include "experiments/evalcli.h"

static void usage(FILE *f) {
  fprintf(f,
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
          "options:\n"
          "  --to FORMAT         torchvision (the only format)\n");
  unmix_evalcli_help(f);
}

int unmix_cmd_export(int argc, char **argv) {
  struct unmix_evalcli cli;
  unmix_evalcli_init(&cli, "export");
  const char *to = NULL;
  static const struct option opts[] = {
      {"to", required_argument, 0, 't'}, {"help", no_argument, 0, 'h'}, EVALCLI_LONG_OPTIONS, {0, 0, 0, 0}};
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    int r = unmix_evalcli_option(&cli, c, optarg);
    if (r < 0) return 2;
    if (r > 0) continue;
    switch (c) {
      case 't': to = optarg; break;
      case 'h': usage(stdout); return 0;
      default: usage(stderr); return 2;
    }
  }
  if (!to) {
    fprintf(stderr, "unmix export: --to FORMAT is required (torchvision)\n\n");
    usage(stderr);
    return 2;
  }
  if (strcmp(to, "torchvision") != 0) {
    fprintf(stderr, "unmix export: unknown format '%s' (--to torchvision)\n", to);
    return 2;
  }
  if (optind != argc - 2) {
    fprintf(stderr, "unmix export: expected CKPT and OUT.safetensors (got %d arguments)\n\n", argc - optind);
    usage(stderr);
    return 2;
  }
  const char *path = argv[optind], *out = argv[optind + 1];
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
