/* The part of the op contract that every backend shares: the geometry helpers, the op
 * names and the table lookup behind supports_op (all generated from ops.def). */
#include <string.h>

#include "core/backend/backend.h"

void unmix_conv_geom_init(struct unmix_conv_geom *g, int n, int h, int w, int c, int k, int r, int s,
                          int stride, int pad) {
  UNMIX_REQUIRE(n > 0 && h > 0 && w > 0 && c > 0 && k > 0 && r > 0 && s > 0 && stride > 0 && pad >= 0,
                "bad conv geometry n=%d h=%d w=%d c=%d k=%d r=%d s=%d stride=%d pad=%d", n, h, w, c, k, r, s,
                stride, pad);
  g->n = n; g->h = h; g->w = w; g->c = c;
  g->k = k; g->r = r; g->s = s;
  g->stride = stride; g->pad = pad;
  g->p = (h + 2 * pad - r) / stride + 1;
  g->q = (w + 2 * pad - s) / stride + 1;
  UNMIX_REQUIRE(g->p > 0 && g->q > 0, "conv output would be empty (%dx%d input, %dx%d kernel, pad %d)", h, w, r,
                s, pad);
}

void unmix_pool_geom_init(struct unmix_pool_geom *g, int n, int h, int w, int c, int k, int stride, int pad) {
  UNMIX_REQUIRE(n > 0 && h > 0 && w > 0 && c > 0 && k > 0 && stride > 0 && pad >= 0 && 2 * pad <= k,
                "bad pool geometry");
  g->n = n; g->h = h; g->w = w; g->c = c;
  g->k = k; g->stride = stride; g->pad = pad;
  g->p = (h + 2 * pad - k) / stride + 1;
  g->q = (w + 2 * pad - k) / stride + 1;
}

const char *unmix_op_name(enum unmix_op op) {
  static const char *const names[UNMIX_OP_COUNT] = {
#define UNMIX_OP(NAME, name, family, params) [UNMIX_OP_##NAME] = #name,
#include "core/backend/ops.def"
#undef UNMIX_OP
  };
  if ((int)op < 0 || op >= UNMIX_OP_COUNT) return "unknown_op";
  return names[op];
}

const char *unmix_op_family(enum unmix_op op) {
  static const char *const families[UNMIX_OP_COUNT] = {
#define UNMIX_OP(NAME, name, family, params) [UNMIX_OP_##NAME] = #family,
#include "core/backend/ops.def"
#undef UNMIX_OP
  };
  if ((int)op < 0 || op >= UNMIX_OP_COUNT) return "unknown_family";
  return families[op];
}

bool unmix_op_uses_precision(enum unmix_op op) {
  const char *f = unmix_op_family(op);
  return strcmp(f, "conv") == 0 || strcmp(f, "dense") == 0;
}

bool unmix_backend_has_op(const struct unmix_backend *be, enum unmix_op op) {
  switch (op) {
#define UNMIX_OP(NAME, name, family, params) \
  case UNMIX_OP_##NAME:                       \
    return be->name != NULL;
#include "core/backend/ops.def"
#undef UNMIX_OP
    case UNMIX_OP_COUNT:
      break;
  }
  return false;
}
