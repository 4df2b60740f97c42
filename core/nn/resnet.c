/* Model builders: torchvision-exact ResNet-18/34/50 (BasicBlock / Bottleneck v1.5, stride on
 * the 3x3 conv) with the imagenet / cifar / swav-cifar stems, the SwAV-CIFAR Bottleneck
 * "resnet18", and the MoCo v1 / v2 and SwAV heads. Parameters are registered in
 * torchvision's named_parameters() order, so names, order and shapes match a state_dict. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/nn/model.h"

struct builder {
  struct unmix_model *m;
  int splits;
};

static int add_node(struct unmix_model *m, enum unmix_node_kind kind, int in0, int in1, const char *name) {
  if (m->n_nodes == m->cap_nodes) {
    m->cap_nodes = m->cap_nodes ? 2 * m->cap_nodes : 64;
    m->nodes = unmix_xrealloc(m->nodes, sizeof *m->nodes * (size_t)m->cap_nodes);
  }
  struct unmix_node *nd = &m->nodes[m->n_nodes];
  memset(nd, 0, sizeof *nd);
  nd->kind = kind;
  nd->in[0] = in0;
  nd->in[1] = in1;
  nd->weight = nd->bias = nd->rmean = nd->rvar = -1;
  nd->splits = 1;
  snprintf(nd->name, sizeof nd->name, "%s", name);
  return m->n_nodes++;
}

static const struct unmix_node *N(struct builder *b, int i) { return &b->m->nodes[i]; }

/* Builders copy the input node's shape before add_node(): it may move the node array. */
static int conv(struct builder *b, int in, int cout, int k, int stride, int pad, const char *name,
                enum unmix_init_kind init) {
  const struct unmix_node a = *N(b, in);
  char pname[96];
  snprintf(pname, sizeof pname, "%s.weight", name);
  int shape[4] = {cout, a.c, k, k};
  int w = unmix_param_store_add(&b->m->params, pname, 4, shape, UNMIX_LAYOUT_CONV_OHWI, init, 0.0f);
  int i = add_node(b->m, UNMIX_NODE_CONV, in, -1, name);
  struct unmix_node *nd = &b->m->nodes[i];
  nd->weight = w;
  nd->c = cout;
  nd->r = nd->s = k;
  nd->stride = stride;
  nd->pad = pad;
  nd->h = (a.h + 2 * pad - k) / stride + 1;
  nd->w = (a.w + 2 * pad - k) / stride + 1;
  return i;
}

static int bn(struct builder *b, int in, bool relu, int splits, const char *name) {
  const struct unmix_node a = *N(b, in);
  char pname[96];
  int shape[1] = {a.c};
  int i = add_node(b->m, UNMIX_NODE_BN, in, -1, name);
  struct unmix_node *nd = &b->m->nodes[i];
  snprintf(pname, sizeof pname, "%s.weight", name);
  nd->weight = unmix_param_store_add(&b->m->params, pname, 1, shape, UNMIX_LAYOUT_PLAIN, UNMIX_INIT_ONE, 0.0f);
  snprintf(pname, sizeof pname, "%s.bias", name);
  nd->bias = unmix_param_store_add(&b->m->params, pname, 1, shape, UNMIX_LAYOUT_PLAIN, UNMIX_INIT_ZERO, 0.0f);
  snprintf(pname, sizeof pname, "%s.running_mean", name);
  nd->rmean = unmix_param_store_add(&b->m->buffers, pname, 1, shape, UNMIX_LAYOUT_PLAIN, UNMIX_INIT_ZERO, 0.0f);
  snprintf(pname, sizeof pname, "%s.running_var", name);
  nd->rvar = unmix_param_store_add(&b->m->buffers, pname, 1, shape, UNMIX_LAYOUT_PLAIN, UNMIX_INIT_ONE, 0.0f);
  nd->h = a.h;
  nd->w = a.w;
  nd->c = a.c;
  nd->splits = splits;
  nd->relu = relu;
  return i;
}

static int linear(struct builder *b, int in, int out, bool bias, const char *name, enum unmix_init_kind winit,
                  float std) {
  const struct unmix_node a = *N(b, in);
  int fan_in = a.h * a.w * a.c;
  char pname[96];
  int wshape[2] = {out, fan_in}, bshape[1] = {out};
  int i = add_node(b->m, UNMIX_NODE_LINEAR, in, -1, name);
  struct unmix_node *nd = &b->m->nodes[i];
  snprintf(pname, sizeof pname, "%s.weight", name);
  nd->weight = unmix_param_store_add(&b->m->params, pname, 2, wshape, UNMIX_LAYOUT_PLAIN, winit, std);
  if (bias) {
    snprintf(pname, sizeof pname, "%s.bias", name);
    /* PyTorch's Linear bias bound uses the weight's fan_in */
    enum unmix_init_kind binit = winit == UNMIX_INIT_NORMAL ? UNMIX_INIT_ZERO : winit;
    nd->bias = unmix_param_store_add(&b->m->params, pname, 1, bshape, UNMIX_LAYOUT_PLAIN, binit, 0.0f);
    b->m->params.entries[nd->bias].fan_in = fan_in;
  }
  nd->h = nd->w = 1;
  nd->c = out;
  return i;
}

static int simple(struct builder *b, enum unmix_node_kind kind, int in0, int in1, const char *name) {
  const struct unmix_node *a = N(b, in0);
  int h = a->h, w = a->w, c = a->c;
  int i = add_node(b->m, kind, in0, in1, name);
  struct unmix_node *nd = &b->m->nodes[i];
  nd->h = h;
  nd->w = w;
  nd->c = c;
  if (kind == UNMIX_NODE_AVGPOOL) nd->h = nd->w = 1;
  return i;
}

/* torchvision BasicBlock: conv3x3(stride)-bn-relu-conv3x3-bn (+downsample) -> add -> relu */
static int basic_block(struct builder *b, int in, int planes, int stride, const char *prefix) {
  char nm[96];
  const struct unmix_node *a = N(b, in);
  bool ds = stride != 1 || a->c != planes;
  snprintf(nm, sizeof nm, "%s.conv1", prefix);
  int x = conv(b, in, planes, 3, stride, 1, nm, UNMIX_INIT_KAIMING_NORMAL_FAN_OUT);
  snprintf(nm, sizeof nm, "%s.bn1", prefix);
  x = bn(b, x, true, b->splits, nm);
  snprintf(nm, sizeof nm, "%s.conv2", prefix);
  x = conv(b, x, planes, 3, 1, 1, nm, UNMIX_INIT_KAIMING_NORMAL_FAN_OUT);
  snprintf(nm, sizeof nm, "%s.bn2", prefix);
  x = bn(b, x, false, b->splits, nm);
  int sc = in;
  if (ds) {
    snprintf(nm, sizeof nm, "%s.downsample.0", prefix);
    sc = conv(b, in, planes, 1, stride, 0, nm, UNMIX_INIT_KAIMING_NORMAL_FAN_OUT);
    snprintf(nm, sizeof nm, "%s.downsample.1", prefix);
    sc = bn(b, sc, false, b->splits, nm);
  }
  snprintf(nm, sizeof nm, "%s.add", prefix);
  return simple(b, UNMIX_NODE_ADD_RELU, x, sc, nm);
}

/* torchvision Bottleneck (v1.5): conv1x1-bn-relu-conv3x3(stride)-bn-relu-conv1x1(x4)-bn (+ds) */
static int bottleneck(struct builder *b, int in, int planes, int stride, const char *prefix) {
  char nm[96];
  const struct unmix_node *a = N(b, in);
  bool ds = stride != 1 || a->c != planes * 4;
  snprintf(nm, sizeof nm, "%s.conv1", prefix);
  int x = conv(b, in, planes, 1, 1, 0, nm, UNMIX_INIT_KAIMING_NORMAL_FAN_OUT);
  snprintf(nm, sizeof nm, "%s.bn1", prefix);
  x = bn(b, x, true, b->splits, nm);
  snprintf(nm, sizeof nm, "%s.conv2", prefix);
  x = conv(b, x, planes, 3, stride, 1, nm, UNMIX_INIT_KAIMING_NORMAL_FAN_OUT);
  snprintf(nm, sizeof nm, "%s.bn2", prefix);
  x = bn(b, x, true, b->splits, nm);
  snprintf(nm, sizeof nm, "%s.conv3", prefix);
  x = conv(b, x, planes * 4, 1, 1, 0, nm, UNMIX_INIT_KAIMING_NORMAL_FAN_OUT);
  snprintf(nm, sizeof nm, "%s.bn3", prefix);
  x = bn(b, x, false, b->splits, nm);
  int sc = in;
  if (ds) {
    snprintf(nm, sizeof nm, "%s.downsample.0", prefix);
    sc = conv(b, in, planes * 4, 1, stride, 0, nm, UNMIX_INIT_KAIMING_NORMAL_FAN_OUT);
    snprintf(nm, sizeof nm, "%s.downsample.1", prefix);
    sc = bn(b, sc, false, b->splits, nm);
  }
  snprintf(nm, sizeof nm, "%s.add", prefix);
  return simple(b, UNMIX_NODE_ADD_RELU, x, sc, nm);
}

static const char *arch_name(enum unmix_arch a) {
  switch (a) {
    case UNMIX_ARCH_RESNET18: return "resnet18";
    case UNMIX_ARCH_RESNET34: return "resnet34";
    case UNMIX_ARCH_RESNET50: return "resnet50";
    case UNMIX_ARCH_RESNET18_BOTTLENECK: return "resnet18-bottleneck";
  }
  return "?";
}

unmix_status unmix_model_create(const struct unmix_model_spec *spec, const struct unmix_backend *be, uint64_t seed,
                                struct unmix_model **out) {
  *out = NULL;
  if (spec->width < 1) return unmix_error_set(UNMIX_ERR_CONFIG, "model.width must be >= 1 (got %d)", spec->width);
  if (spec->bn_splits < 1)
    return unmix_error_set(UNMIX_ERR_CONFIG, "model.bn_splits must be >= 1 (got %d)", spec->bn_splits);
  int min_size = spec->stem == UNMIX_STEM_IMAGENET ? 32 : 8;
  if (spec->image_size < min_size)
    return unmix_error_set(UNMIX_ERR_CONFIG, "input size %d is too small for the %s stem (minimum %d)",
                           spec->image_size, spec->stem == UNMIX_STEM_IMAGENET ? "imagenet" : "cifar", min_size);
  struct unmix_model *m = unmix_xcalloc(1, sizeof *m);
  m->be = be;
  m->embed_node = -1;
  snprintf(m->arch_name, sizeof m->arch_name, "%s", arch_name(spec->arch));
  struct builder b = {m, spec->bn_splits};

  int x = add_node(m, UNMIX_NODE_INPUT, -1, -1, "input");
  m->nodes[x].h = m->nodes[x].w = spec->image_size;
  m->nodes[x].c = spec->in_channels > 0 ? spec->in_channels : 3;
  const int w0 = spec->width;
  switch (spec->stem) {
    case UNMIX_STEM_IMAGENET:
      x = conv(&b, x, w0, 7, 2, 3, "conv1", UNMIX_INIT_KAIMING_NORMAL_FAN_OUT);
      x = bn(&b, x, true, b.splits, "bn1");
      x = add_node(m, UNMIX_NODE_MAXPOOL, x, -1, "maxpool");
      {
        struct unmix_node *nd = &m->nodes[x];
        const struct unmix_node *a = &m->nodes[x - 1];
        nd->k = 3;
        nd->stride = 2;
        nd->pad = 1;
        nd->c = a->c;
        nd->h = (a->h + 2 - 3) / 2 + 1;
        nd->w = (a->w + 2 - 3) / 2 + 1;
      }
      break;
    case UNMIX_STEM_CIFAR:
      /* MoCo CIFAR: the new conv1 is created after torchvision's init loop => default init */
      x = conv(&b, x, w0, 3, 1, 1, "conv1", UNMIX_INIT_UNIFORM_FAN_IN);
      x = bn(&b, x, true, b.splits, "bn1");
      break;
    case UNMIX_STEM_SWAV_CIFAR:
      x = add_node(m, UNMIX_NODE_PAD, x, -1, "padding");
      m->nodes[x].pad = 1;
      m->nodes[x].c = m->nodes[0].c;
      m->nodes[x].h = m->nodes[0].h + 2;
      m->nodes[x].w = m->nodes[0].w + 2;
      x = conv(&b, x, w0, 3, 1, 1, "conv1", UNMIX_INIT_KAIMING_NORMAL_FAN_OUT);
      x = bn(&b, x, true, b.splits, "bn1");
      break;
  }
  static const int blocks18[4] = {2, 2, 2, 2}, blocks34[4] = {3, 4, 6, 3};
  const int *blocks = spec->arch == UNMIX_ARCH_RESNET34 || spec->arch == UNMIX_ARCH_RESNET50 ? blocks34 : blocks18;
  bool bottle = spec->arch == UNMIX_ARCH_RESNET50 || spec->arch == UNMIX_ARCH_RESNET18_BOTTLENECK;
  for (int l = 0; l < 4; l++) {
    int planes = w0 << l;
    for (int k = 0; k < blocks[l]; k++) {
      char prefix[32];
      snprintf(prefix, sizeof prefix, "layer%d.%d", l + 1, k);
      int stride = (k == 0 && l > 0) ? 2 : 1;
      x = bottle ? bottleneck(&b, x, planes, stride, prefix) : basic_block(&b, x, planes, stride, prefix);
    }
  }
  x = simple(&b, UNMIX_NODE_AVGPOOL, x, -1, "avgpool");
  m->feat_node = x;
  m->n_backbone_params = m->params.count;
  m->n_backbone_buffers = m->buffers.count;
  const int feat = m->nodes[x].c;

  if (spec->num_classes > 0) {
    x = linear(&b, x, spec->num_classes, true, "fc",
               spec->lincls_init ? UNMIX_INIT_NORMAL : UNMIX_INIT_UNIFORM_FAN_IN, 0.01f);
  } else {
    switch (spec->head) {
      case UNMIX_HEAD_NONE: break;
      case UNMIX_HEAD_LINEAR: x = linear(&b, x, spec->dim, true, "fc", UNMIX_INIT_UNIFORM_FAN_IN, 0.0f); break;
      case UNMIX_HEAD_MLP:
        x = linear(&b, x, spec->hidden > 0 ? spec->hidden : feat, true, "fc.0", UNMIX_INIT_UNIFORM_FAN_IN, 0.0f);
        x = simple(&b, UNMIX_NODE_RELU, x, -1, "fc.1");
        x = linear(&b, x, spec->dim, true, "fc.2", UNMIX_INIT_UNIFORM_FAN_IN, 0.0f);
        break;
      case UNMIX_HEAD_SWAV:
        x = linear(&b, x, spec->hidden, true, "projection_head.0", UNMIX_INIT_UNIFORM_FAN_IN, 0.0f);
        x = bn(&b, x, true, 1, "projection_head.1");
        x = linear(&b, x, spec->dim, true, "projection_head.3", UNMIX_INIT_UNIFORM_FAN_IN, 0.0f);
        x = simple(&b, UNMIX_NODE_L2NORM, x, -1, "l2norm");
        m->embed_node = x;
        if (spec->nmb_prototypes > 0)
          x = linear(&b, x, spec->nmb_prototypes, false, "prototypes", UNMIX_INIT_UNIFORM_FAN_IN, 0.0f);
        break;
    }
  }
  m->out_node = x;
  if (m->embed_node < 0) m->embed_node = x;

  unmix_status st = unmix_param_store_alloc(&m->params, be, true);
  if (st == UNMIX_OK) st = unmix_param_store_alloc(&m->buffers, be, false);
  if (st != UNMIX_OK) {
    unmix_model_destroy(m);
    return st;
  }
  unmix_param_store_init_values(&m->params, seed, 0);
  unmix_param_store_init_values(&m->buffers, seed, 1);
  *out = m;
  return UNMIX_OK;
}

void unmix_model_destroy(struct unmix_model *m) {
  if (!m) return;
  if (!m->owner) { /* a view's stores belong to its owner */
    unmix_param_store_free(&m->params);
    unmix_param_store_free(&m->buffers);
  }
  free(m->nodes);
  free(m);
}

static struct unmix_model *view_of(struct unmix_model *m, int first, int last) {
  struct unmix_model *v = unmix_xcalloc(1, sizeof *v);
  *v = *m;
  v->owner = m->owner ? m->owner : m;
  v->bn_batches_tracked = 0;
  v->n_nodes = v->cap_nodes = last - first;
  v->nodes = unmix_xmalloc(sizeof *v->nodes * (size_t)v->n_nodes);
  memcpy(v->nodes, m->nodes + first, sizeof *v->nodes * (size_t)v->n_nodes);
  return v;
}

unmix_status unmix_model_backbone_view(struct unmix_model *m, int image_size, struct unmix_model **out) {
  *out = NULL;
  struct unmix_model *v = view_of(m, 0, m->feat_node + 1);
  v->feat_node = v->embed_node = v->out_node = m->feat_node;
  v->nodes[0].h = v->nodes[0].w = image_size;
  for (int i = 1; i < v->n_nodes; i++) {
    struct unmix_node *nd = &v->nodes[i];
    const struct unmix_node *a = &v->nodes[nd->in[0]];
    switch (nd->kind) {
      case UNMIX_NODE_CONV:
        nd->h = (a->h + 2 * nd->pad - nd->r) / nd->stride + 1;
        nd->w = (a->w + 2 * nd->pad - nd->s) / nd->stride + 1;
        break;
      case UNMIX_NODE_MAXPOOL:
        nd->h = (a->h + 2 * nd->pad - nd->k) / nd->stride + 1;
        nd->w = (a->w + 2 * nd->pad - nd->k) / nd->stride + 1;
        break;
      case UNMIX_NODE_PAD:
        nd->h = a->h + 2 * nd->pad;
        nd->w = a->w + 2 * nd->pad;
        break;
      case UNMIX_NODE_AVGPOOL: nd->h = nd->w = 1; break;
      case UNMIX_NODE_LINEAR:
        unmix_model_destroy(v);
        return unmix_error_set(UNMIX_ERR_CONFIG, "%s: a linear layer inside the backbone cannot change resolution",
                               nd->name);
      default: nd->h = a->h, nd->w = a->w; break;
    }
    if (nd->h < 1 || nd->w < 1 || a->h < 1) {
      unmix_model_destroy(v);
      return unmix_error_set(UNMIX_ERR_CONFIG, "crops of %dx%d are too small for %s: layer %s would be empty",
                             image_size, image_size, m->arch_name, nd->name);
    }
  }
  *out = v;
  return UNMIX_OK;
}

unmix_status unmix_model_head_view(struct unmix_model *m, struct unmix_model **out) {
  *out = NULL;
  const int f = m->feat_node;
  if (m->out_node <= f) return unmix_error_set(UNMIX_ERR_CONFIG, "%s has no head to view", m->arch_name);
  struct unmix_model *v = view_of(m, f, m->n_nodes);
  struct unmix_node *in = &v->nodes[0];
  const int c = in->h * in->w * in->c;
  memset(in, 0, sizeof *in);
  in->kind = UNMIX_NODE_INPUT;
  in->in[0] = in->in[1] = -1;
  in->weight = in->bias = in->rmean = in->rvar = -1;
  in->splits = 1;
  in->h = in->w = 1;
  in->c = c;
  snprintf(in->name, sizeof in->name, "features");
  for (int i = 1; i < v->n_nodes; i++)
    for (int j = 0; j < 2; j++)
      if (v->nodes[i].in[j] >= 0) {
        UNMIX_REQUIRE(v->nodes[i].in[j] >= f, "head node %s reads a backbone node", v->nodes[i].name);
        v->nodes[i].in[j] -= f;
      }
  v->feat_node = 0;
  v->embed_node = m->embed_node - f;
  v->out_node = m->out_node - f;
  *out = v;
  return UNMIX_OK;
}

void unmix_model_zero_grad(struct unmix_model *m) { m->be->fill(m->params.total, 0.0f, m->params.grad); }

void unmix_model_freeze_range(struct unmix_model *m, int first_node, int last_node) {
  for (int i = first_node; i < last_node && i < m->n_nodes; i++) m->nodes[i].frozen = true;
}

void unmix_model_copy_from(struct unmix_model *dst, const struct unmix_model *src) {
  UNMIX_REQUIRE(dst->params.total == src->params.total && dst->buffers.total == src->buffers.total,
                "copy between different architectures");
  dst->be->memcpy_d2d(dst->params.data, src->params.data, sizeof(float) * (size_t)src->params.total);
  dst->be->memcpy_d2d(dst->buffers.data, src->buffers.data, sizeof(float) * (size_t)src->buffers.total);
  dst->bn_batches_tracked = src->bn_batches_tracked;
}

int64_t unmix_model_param_count(const struct unmix_model *m) { return unmix_param_store_numel(&m->params); }

double unmix_model_forward_flops(const struct unmix_model *m) {
  double f = 0.0;
  for (int i = 0; i < m->n_nodes; i++) {
    const struct unmix_node *nd = &m->nodes[i];
    if (nd->kind == UNMIX_NODE_CONV) {
      const struct unmix_node *a = &m->nodes[nd->in[0]];
      f += 2.0 * nd->h * nd->w * nd->c * (double)nd->r * nd->s * a->c;
    } else if (nd->kind == UNMIX_NODE_LINEAR) {
      const struct unmix_node *a = &m->nodes[nd->in[0]];
      f += 2.0 * nd->c * (double)a->h * a->w * a->c;
    }
  }
  return f;
}

int unmix_model_conv_names(const struct unmix_model *m, const char **names, int cap) {
  int k = 0;
  for (int i = 0; i < m->params.count; i++) {
    const struct unmix_param_entry *e = &m->params.entries[i];
    if (e->layout != UNMIX_LAYOUT_CONV_OHWI) continue;
    if (k < cap) names[k] = e->name;
    k++;
  }
  return k;
}
