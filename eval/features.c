/* Feature extraction and the kNN monitor (see features.h). */
#include "eval/features.h"

#include <stdlib.h>
#include <string.h>

#include "core/data/loader.h"
#include "core/util/timer.h"
#include "eval/knn.h"

/* A model's graph has its input size fixed when it is built: the trainer builds it for the
 * training crops, which need not be the size of the whole images its kNN monitor feeds it (a
 * run trained on 20-px crops of 28-px images). Images of another size go through a backbone view
 * built for their size, and through the head view when `node` lies in the head: the same
 * parameters, the same arithmetic as a model built for that size. */
struct sized_model {
  struct unmix_model *bb, *head;
  struct unmix_ctx *chead;
  int size;
};

static void sized_free(struct sized_model *z) {
  unmix_ctx_destroy(z->chead);
  unmix_model_destroy(z->head);
  unmix_model_destroy(z->bb);
}

/* Forwards n images of h x w and sets *f to the output of `node` (of m's node numbering). */
static unmix_status forward_node(struct unmix_model *m, int node, struct unmix_ctx *ctx, struct sized_model *z,
                                 const float *x, int n, int h, int w, const float **f) {
  if (h == m->nodes[0].h && w == m->nodes[0].w) {
    unmix_model_forward(m, ctx, x, n, UNMIX_FWD_EVAL, false);
    *f = unmix_model_node_output(m, ctx, node);
    return UNMIX_OK;
  }
  if (h != w)
    return unmix_error_set(UNMIX_ERR_CONFIG, "images of %dx%d: %s takes square images", h, w, m->arch_name);
  if (!z->bb || z->size != h) {
    unmix_model_destroy(z->bb);
    z->bb = NULL;
    UNMIX_TRY(unmix_model_backbone_view(m, h, &z->bb));
    z->size = h;
  }
  unmix_model_forward(z->bb, ctx, x, n, UNMIX_FWD_EVAL, false);
  if (node <= m->feat_node) { /* a backbone view keeps m's numbering up to feat_node */
    *f = unmix_model_node_output(z->bb, ctx, node);
    return UNMIX_OK;
  }
  if (!z->head) {
    UNMIX_TRY(unmix_model_head_view(m, &z->head));
    z->chead = unmix_ctx_create(m->be, "features.head");
  }
  unmix_model_forward(z->head, z->chead, unmix_model_node_output(z->bb, ctx, z->bb->feat_node), n, UNMIX_FWD_EVAL,
                      false);
  *f = unmix_model_node_output(z->head, z->chead, node - m->feat_node); /* the head view's numbering */
  return UNMIX_OK;
}

unmix_status unmix_extract_features(const struct unmix_backend *be, struct unmix_model *m, int node,
                                    const struct unmix_dataset *ds, const struct unmix_recipe *rc, int batch,
                                    int workers, bool normalize, float **feat, int32_t **labels, int *dim) {
  *feat = NULL;
  *labels = NULL;
  const int d = unmix_model_node_dim(m, node);
  *dim = d;
  struct unmix_loader_options lo;
  unmix_loader_options_init(&lo, UNMIX_LOADER_EVAL, batch, 0);
  lo.workers = workers;
  lo.backend = be;
  struct unmix_loader *ld = NULL;
  UNMIX_TRY(unmix_loader_create(ds, rc, &lo, &ld));
  unmix_status st = unmix_loader_start_epoch(ld, 0);
  float *out = be->alloc(sizeof(float) * (size_t)ds->n * d);
  int32_t *lab = malloc(sizeof(int32_t) * (size_t)(ds->n ? ds->n : 1));
  struct unmix_ctx *ctx = unmix_ctx_create(be, "features");
  float *xdev = NULL, *norms = NULL;
  size_t xcap = 0;
  struct sized_model sized = {0};
  if (!out || !lab) st = unmix_error_set(UNMIX_ERR_NOMEM, "features of %lld samples x %d", (long long)ds->n, d);
  int64_t row = 0;
  while (st == UNMIX_OK) {
    const struct unmix_batch *b = NULL;
    st = unmix_loader_next(ld, &b);
    if (st != UNMIX_OK || !b) break;
    const struct unmix_batch_view *v = &b->views[0];
    const size_t bytes = sizeof(float) * (size_t)b->size * v->h * v->w * v->c;
    const float *x = v->data;
    if (be->device != UNMIX_DEVICE_CPU) {
      if (bytes > xcap) {
        if (xdev) be->free(xdev);
        xdev = be->alloc(bytes);
        xcap = bytes;
        if (!xdev) {
          st = unmix_error_set(UNMIX_ERR_NOMEM, "feature-extraction batch");
          break;
        }
      }
      be->memcpy_h2d(xdev, v->data, bytes);
      x = xdev;
    }
    const float *f = NULL;
    st = forward_node(m, node, ctx, &sized, x, b->size, v->h, v->w, &f);
    if (st != UNMIX_OK) break;
    float *dst = out + row * d;
    if (normalize) {
      if (!norms) norms = be->alloc(sizeof(float) * (size_t)batch);
      be->l2norm_forward(b->size, d, f, dst, norms, 1e-12f);
    } else {
      be->copy((int64_t)b->size * d, f, dst);
    }
    memcpy(lab + row, b->labels, sizeof(int32_t) * (size_t)b->size);
    row += b->size;
  }
  if (st == UNMIX_OK && row != ds->n)
    st = unmix_error_set(UNMIX_ERR_FORMAT, "feature extraction saw %lld of %lld samples", (long long)row,
                         (long long)ds->n);
  sized_free(&sized);
  unmix_ctx_destroy(ctx);
  unmix_loader_free(ld);
  if (xdev) be->free(xdev);
  if (norms) be->free(norms);
  if (st != UNMIX_OK) {
    if (out) be->free(out);
    free(lab);
    return st;
  }
  *feat = out;
  *labels = lab;
  return UNMIX_OK;
}

unmix_status unmix_knn_monitor(const struct unmix_backend *be, struct unmix_model *m, const struct unmix_dataset *bank,
                               const struct unmix_dataset *test, const struct unmix_recipe *rc,
                               const struct unmix_knn_config *kc, int batch, int workers, struct unmix_knn_eval *out) {
  double t0 = unmix_now();
  memset(out, 0, sizeof *out);
  float *fb = NULL, *fq = NULL;
  int32_t *lb = NULL, *lq = NULL;
  int d;
  const int node = kc->features == UNMIX_KNN_BACKBONE ? m->feat_node : m->embed_node;
  unmix_status st = unmix_extract_features(be, m, node, bank, rc, batch, workers, true, &fb, &lb, &d);
  if (st == UNMIX_OK) st = unmix_extract_features(be, m, node, test, rc, batch, workers, true, &fq, &lq, &d);
  if (st == UNMIX_OK) {
    struct unmix_knn_params p = unmix_knn_params_default();
    p.k = kc->k < bank->n ? kc->k : (int)bank->n;
    p.t = kc->t;
    p.num_classes = bank->num_classes;
    struct unmix_knn_result r;
    st = unmix_knn_classify(be, fb, lb, (int)bank->n, d, fq, lq, (int)test->n, &p, &r, NULL, NULL);
    if (st == UNMIX_OK) {
      out->top1 = r.top1;
      out->top5 = r.top5;
      out->bank = bank->n;
      out->queries = test->n;
    }
  }
  if (fb) be->free(fb);
  if (fq) be->free(fq);
  free(lb);
  free(lq);
  out->seconds = unmix_now() - t0;
  return st;
}
