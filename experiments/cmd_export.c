/* `unmix export CKPT --to torchvision OUT.safetensors | --to detectron2 OUT.pkl`: the encoder's
 * backbone (conv1 .. layer4 with BatchNorm buffers and num_batches_tracked) under torchvision
 * names and layout, or renamed into the pickle detectron2 loads. The head (MoCo fc / MLP, SwAV
 * projection and prototypes) is not exported, so torchvision's fc.weight / fc.bias are the only
 * missing keys. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io/checkpoint.h"
#include "core/io/pickle.h"
#include "core/nn/model_io.h"
#include "core/io/manifest.h"
#include "eval/ckpt_model.h"
#include "experiments/commands.h"
#include "experiments/evalcli.h"

struct export_opts {
  const char *to;
};
static const char *const g_formats[] = {"torchvision", "detectron2", NULL};
static const struct unmix_opt g_opts[] = {
    {.name = "to", .type = UNMIX_OPT_CHOICE, .choices = g_formats, .off = offsetof(struct export_opts, to),
     .help = "torchvision: OUT.safetensors under torchvision names;\n"
             "detectron2: OUT.pkl for detectron2's MODEL.WEIGHTS (required)"},
};

const struct unmix_evalcmd unmix_evalcmd_export = {
    "export",
    "usage: unmix export CKPT --to torchvision OUT.safetensors [options]\n"
    "       unmix export CKPT --to detectron2 OUT.pkl [options]\n\n"
    "Writes the checkpoint encoder's backbone - conv1, bn1, layer1..layer4 with BatchNorm running\n"
    "statistics and num_batches_tracked - under torchvision names in torchvision layout (conv weights\n"
    "OIHW), float32 (num_batches_tracked int64). MoCo: encoder_q; SwAV: the trunk without projection\n"
    "head and prototypes. There is NO fc: load it with\n"
    "  m = torchvision.models.resnet50()\n"
    "  missing, unexpected = m.load_state_dict(safetensors.torch.load_file(OUT), strict=False)\n"
    "  # missing == ['fc.weight', 'fc.bias'], unexpected == []\n"
    "(CIFAR stems: replace m.conv1 by a 3x3 stride-1 conv and m.maxpool by Identity first). The file's\n"
    "metadata records the source checkpoint, its architecture and its resolved manifest\n"
    "(unmix.source_manifest), so the evaluation commands accept it directly.\n\n"
    "--to detectron2 writes the same tensors as the pickle detectron2's checkpointer loads for\n"
    "MODEL.WEIGHTS: {\"model\": {name: numpy array}, \"__author__\", \"matching_heuristics\": True},\n"
    "renamed as the official MoCo detection converter does (conv1/bn1 -> stem.conv1[.norm],\n"
    "layerN -> res(N+1), bnK -> convK.norm, downsample.0/.1 -> shortcut[.norm]). Reading it needs\n"
    "numpy. The Faster/Mask R-CNN R50-C4 fine-tuning configs of the paper's Table 2 and the commands\n"
    "are in tools/detectron2/ (README.md there).\n\n"
    "example: unmix export results/runs/cifar10_moco_sym/checkpoint.safetensors --to torchvision r18.safetensors\n"
    "         unmix export results/runs/imagenet_mocov2_unmix_200/checkpoint.safetensors --to detectron2 r50.pkl\n",
    g_opts, (int)(sizeof g_opts / sizeof g_opts[0]),
    .common = UNMIX_EVALCLI_PLAIN};

/* A torchvision backbone name -> detectron2's, as the official MoCo detection converter
 * (detection/convert-pretrain-to-detectron2.py) does: names outside layerN go under stem.,
 * layerN -> res(N+1), bnK -> convK.norm, downsample.0 -> shortcut, downsample.1 -> shortcut.norm. */
/* Python's s.replace(from, to): a new string. */
static char *replace_all(const char *s, const char *from, const char *to) {
  size_t fl = strlen(from), tl = strlen(to), n = 0;
  for (const char *q = strstr(s, from); q; q = strstr(q + fl, from)) n++;
  char *out = unmix_xmalloc(strlen(s) + n * tl + 1), *w = out;
  for (const char *q; (q = strstr(s, from)); s = q + fl) {
    memcpy(w, s, (size_t)(q - s));
    w += q - s;
    memcpy(w, to, tl);
    w += tl;
  }
  strcpy(w, s);
  return out;
}

static char *d2_name(const char *tv) {
  static const char *const subs[][2] = {{"layer1", "res2"},
                                        {"layer2", "res3"},
                                        {"layer3", "res4"},
                                        {"layer4", "res5"},
                                        {"bn1", "conv1.norm"},
                                        {"bn2", "conv2.norm"},
                                        {"bn3", "conv3.norm"},
                                        {"downsample.0", "shortcut"},
                                        {"downsample.1", "shortcut.norm"}};
  size_t n = strlen(tv) + 6;
  char *name = unmix_xmalloc(n);
  snprintf(name, n, "%s%s", strstr(tv, "layer") ? "" : "stem.", tv);
  for (size_t k = 0; k < sizeof subs / sizeof subs[0]; k++) {
    char *next = replace_all(name, subs[k][0], subs[k][1]);
    free(name);
    name = next;
  }
  return name;
}

static unmix_status write_detectron2(const struct unmix_ckpt *ck, const char *out) {
  char **names = unmix_xmalloc((ck->n ? ck->n : 1) * sizeof *names);
  for (size_t i = 0; i < ck->n; i++) names[i] = d2_name(ck->tensors[i].name);
  unmix_status st = unmix_pickle_write_arrays(out, ck, (const char *const *)names, "unmix-c", true);
  for (size_t i = 0; i < ck->n; i++) free(names[i]);
  free(names);
  return st;
}

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
    fprintf(stderr, "unmix export: --to FORMAT is required (torchvision or detectron2)\n\n");
    unmix_evalcli_usage(&unmix_evalcmd_export, stderr);
    return 2;
  }
  bool d2 = !strcmp(to, "detectron2");
  if (npos != 2) {
    fprintf(stderr, "unmix export: expected CKPT and %s (got %d arguments)\n\n", d2 ? "OUT.pkl" : "OUT.safetensors",
            npos);
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
  if (d2) {
    if (write_detectron2(ck, out) != UNMIX_OK) goto fail;
  } else if (unmix_ckpt_save(ck, out) != UNMIX_OK) {
    goto fail;
  }
  int64_t nparams = 0;
  for (int i = 0; i < m->n_backbone_params; i++) nparams += m->params.entries[i].numel;
  printf("exported %s (%s, %s stem, width %d, epoch %s): %zu tensors, %lld backbone parameters, no fc%s -> %s\n",
         e->label, unmix_arch_name(e->cfg.model.arch), unmix_stem_name(e->cfg.model.stem), e->cfg.model.width,
         e->epochs_done >= 0 ? epochs : "unknown", ck->n, (long long)nparams, d2 ? ", detectron2 names" : "", out);
  if (d2 && e->cfg.model.stem != UNMIX_STEM_IMAGENET)
    printf("note: a %s stem (3x3 conv1, no max-pool) has no detectron2 counterpart: detectron2's 7x7 BasicStem\n"
           "      skips stem.conv1.weight (shape mismatch) and trains it from scratch\n",
           unmix_stem_name(e->cfg.model.stem));
  if (d2 && e->cfg.model.arch != UNMIX_ARCH_RESNET50)
    printf("note: the Table 2 configs (tools/detectron2/) are R50-C4; a %s needs MODEL.RESNETS.DEPTH and\n"
           "      RES2_OUT_CHANNELS set to match\n",
           unmix_arch_name(e->cfg.model.arch));
  rcode = 0;
fail:
  if (rcode) unmix_cmd_fail("export");
  unmix_ckpt_free(ck);
  unmix_model_destroy(m);
  unmix_eval_ckpt_close(e);
  return rcode;
}
