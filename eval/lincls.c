/* Linear evaluation on frozen features (see lincls.h): protocol tables, the lr schedules,
 * the training loop over the fc, per-epoch CSV and the resumable state file. */
#include "eval/lincls.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/data/loader.h"
#include "core/io/checkpoint.h"
#include "core/io/csv.h"
#include "core/io/manifest.h"
#include "core/optim/optim.h"
#include "core/util/fs.h"
#include "core/util/log.h"
#include "core/util/timer.h"

#define STATE_FILE "lincls.safetensors"
#define CSV_FILE "lincls.csv"

void unmix_lincls_reference(enum unmix_lincls_protocol p, struct unmix_lincls_params *o) {
  memset(o, 0, sizeof *o);
  o->protocol = p;
  o->epochs = 100;
  o->momentum = 0.9f;
  o->gamma = 0.1f;
  o->prefetch = 2;
  switch (p) {
    case UNMIX_LINCLS_SWAV_CIFAR:
      o->lr = 0.3f;
      o->weight_decay = 1e-6f;
      o->batch_size = 32;
      o->cosine = true;
      break;
    case UNMIX_LINCLS_SWAV_IMAGENET: /* eval_linear.py: 32 per GPU x 8 GPUs */
      o->lr = 0.3f;
      o->weight_decay = 1e-6f;
      o->batch_size = 256;
      o->cosine = true;
      break;
    case UNMIX_LINCLS_IMAGENET:
    case UNMIX_LINCLS_MOCO_CIFAR:
      o->lr = 30.0f;
      o->weight_decay = 0.0f;
      o->batch_size = 256;
      o->n_milestones = 2;
      o->milestones[0] = 60;
      o->milestones[1] = 80;
      break;
  }
}

void unmix_lincls_from_config(const struct unmix_config *cfg, struct unmix_lincls_params *o) {
  const struct unmix_linear_config *lc = &cfg->linear;
  unmix_lincls_reference(lc->protocol, o);
  o->epochs = lc->epochs;
  o->lr = lc->lr;
  o->momentum = lc->momentum;
  o->weight_decay = lc->weight_decay;
  o->batch_size = lc->batch_size;
  o->cosine = lc->cosine;
  o->n_milestones = lc->n_milestones;
  memcpy(o->milestones, lc->milestones, sizeof o->milestones);
  o->seed = cfg->seed;
  o->workers = cfg->data.workers;
  if (cfg->data.prefetch > 0) o->prefetch = cfg->data.prefetch;
}

const char *unmix_lincls_recipe_name(enum unmix_lincls_protocol p) {
  switch (p) {
    case UNMIX_LINCLS_IMAGENET: return "lincls-imagenet";
    case UNMIX_LINCLS_SWAV_CIFAR: return "lincls-swav-cifar";
    case UNMIX_LINCLS_MOCO_CIFAR: return "lincls-moco-cifar";
    case UNMIX_LINCLS_SWAV_IMAGENET: return "lincls-swav-imagenet";
  }
  return "lincls-moco-cifar";
}

double unmix_lincls_lr(const struct unmix_lincls_params *p, int epoch) {
  struct unmix_schedule_config s;
  memset(&s, 0, sizeof s);
  if (p->cosine) {
    s.kind = UNMIX_SCHED_COSINE; /* CosineAnnealingLR(T_max = E, eta_min = 0) stepped per epoch */
  } else {
    s.kind = UNMIX_SCHED_STEP;
    s.n_milestones = p->n_milestones;
    memcpy(s.milestones, p->milestones, sizeof s.milestones);
    s.gamma = p->gamma;
  }
  return unmix_lr_at(&s, p->lr, p->epochs, epoch, 0, 1);
}

int unmix_lincls_fc_node(const struct unmix_model *m) {
  int i = m->out_node;
  if (i <= m->feat_node || m->nodes[i].kind != UNMIX_NODE_LINEAR || m->nodes[i].in[0] != m->feat_node) return -1;
  return i;
}

/* ---- helpers --------------------------------------------------------------------------- */

/* FNV-1a over the backbone's parameters and BN buffers (host copies): the sanity check that
 * linear evaluation moved nothing but the fc, and the identity of the backbone in the state file. */
static uint64_t backbone_fingerprint(const struct unmix_model *m) {
  uint64_t h = 1469598103934665603ull;
  const struct unmix_param_store *stores[2] = {&m->params, &m->buffers};
  const int counts[2] = {m->n_backbone_params, m->n_backbone_buffers};
  for (int s = 0; s < 2; s++) {
    const struct unmix_param_store *ps = stores[s];
    if (counts[s] == 0) continue;
    int64_t n = counts[s] < ps->count ? ps->entries[counts[s]].offset : ps->total;
    uint32_t *buf = unmix_xmalloc(sizeof(float) * (size_t)(n ? n : 1));
    ps->be->memcpy_d2h(buf, ps->data, sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
      h ^= buf[i];
      h *= 1099511628211ull;
    }
    free(buf);
  }
  return h;
}

static void params_text(const struct unmix_lincls_params *p, uint64_t fp, int64_t ntrain, int64_t ntest, char *buf,
                        size_t len) {
  int k = snprintf(buf, len,
                   "protocol=%s epochs=%d lr=%.9g momentum=%.9g weight_decay=%.9g batch_size=%d cosine=%d gamma=%.9g "
                   "seed=%llu train=%lld test=%lld backbone=%016llx milestones=",
                   unmix_lincls_name(p->protocol), p->epochs, (double)p->lr, (double)p->momentum,
                   (double)p->weight_decay, p->batch_size, p->cosine ? 1 : 0, (double)p->gamma,
                   (unsigned long long)p->seed, (long long)ntrain, (long long)ntest, (unsigned long long)fp);
  for (int i = 0; i < p->n_milestones && k > 0 && (size_t)k < len; i++)
    k += snprintf(buf + k, len - (size_t)k, "%s%d", i ? "," : "", p->milestones[i]);
}

static bool file_exists(const char *p) {
  struct stat sb;
  return stat(p, &sb) == 0;
}

struct lrun {
  const struct unmix_backend *be;
  struct unmix_model *m;
  int fc, feat_dim, classes;
  int iw, ib;                 /* fc weight / bias param indices */
  struct unmix_optimizer opt;
  struct unmix_ctx *ctx;
  float *xdev;
  size_t xcap;
  int32_t *lab_dev;
  float *probs, *dlogits, *scal;
  int maxb;
};

/* Host copy of tensor idx of a store buffer (values or momentum). */
static float *get_tensor(const struct unmix_param_store *s, const float *base, int idx) {
  float *h = unmix_xmalloc(sizeof(float) * (size_t)s->entries[idx].numel);
  unmix_param_store_get_from(s, base, idx, h);
  return h;
}

/* progress: best top-1, best top-5, epoch of best top-1, epochs done, last top-1, last top-5,
 * last train loss */
#define NPROG 7

static unmix_status save_state(struct lrun *r, const char *path, const char *ptext, const char *source,
                               const double *prog) {
  struct unmix_ckpt *ck = unmix_ckpt_new();
  const struct unmix_param_store *s = &r->m->params;
  float *hw = get_tensor(s, s->data, r->iw), *hb = get_tensor(s, s->data, r->ib);
  float *mw = get_tensor(s, s->momentum, r->iw), *mb = get_tensor(s, s->momentum, r->ib);
  int64_t shw[2] = {r->classes, r->feat_dim}, shb[1] = {r->classes}, shp[1] = {NPROG};
  char ep[32];
  snprintf(ep, sizeof ep, "%d", (int)prog[3]);
  unmix_status st = unmix_ckpt_add(ck, "fc.weight", UNMIX_CKPT_F32, 2, shw, hw);
  if (st == UNMIX_OK) st = unmix_ckpt_add(ck, "fc.bias", UNMIX_CKPT_F32, 1, shb, hb);
  if (st == UNMIX_OK) st = unmix_ckpt_add(ck, "unmix.lincls.momentum.fc.weight", UNMIX_CKPT_F32, 2, shw, mw);
  if (st == UNMIX_OK) st = unmix_ckpt_add(ck, "unmix.lincls.momentum.fc.bias", UNMIX_CKPT_F32, 1, shb, mb);
  if (st == UNMIX_OK) st = unmix_ckpt_add(ck, "unmix.lincls.progress", UNMIX_CKPT_F64, 1, shp, prog);
  if (st == UNMIX_OK) st = unmix_ckpt_set_meta(ck, "unmix.lincls.params", ptext);
  if (st == UNMIX_OK) st = unmix_ckpt_set_meta(ck, "unmix.lincls.epochs_done", ep);
  if (st == UNMIX_OK && source) st = unmix_ckpt_set_meta(ck, "unmix.lincls.source", source);
  if (st == UNMIX_OK) st = unmix_ckpt_save(ck, path);
  unmix_ckpt_free(ck);
  free(hw);
  free(hb);
  free(mw);
  free(mb);
  return st;
}

static unmix_status load_state(struct lrun *r, const char *path, const char *ptext, int epochs, double *prog) {
  struct unmix_ckpt *ck = NULL;
  UNMIX_TRY(unmix_ckpt_load(path, &ck));
  unmix_status st = UNMIX_OK;
  const char *pt = unmix_ckpt_meta(ck, "unmix.lincls.params");
  if (!pt) {
    st = unmix_error_set(UNMIX_ERR_FORMAT, "%s: not a linear-evaluation state file (no unmix.lincls.params)", path);
  } else if (strcmp(pt, ptext) != 0) {
    st = unmix_error_set(UNMIX_ERR_ARG,
                         "%s was written for other parameters or another backbone:\n  file: %s\n  now:  %s\nresume with "
                         "the same checkpoint and flags, or use another --out",
                         path, pt, ptext);
  }
  int64_t shw[2] = {r->classes, r->feat_dim}, shb[1] = {r->classes}, shp[1] = {NPROG};
  const int64_t nw = (int64_t)r->classes * r->feat_dim;
  float *hw = unmix_xmalloc(sizeof(float) * (size_t)nw), *mw = unmix_xmalloc(sizeof(float) * (size_t)nw);
  float *hb = unmix_xmalloc(sizeof(float) * (size_t)r->classes), *mb = unmix_xmalloc(sizeof(float) * (size_t)r->classes);
  double b[NPROG];
  if (st == UNMIX_OK) st = unmix_ckpt_read(ck, "fc.weight", UNMIX_CKPT_F32, 2, shw, hw);
  if (st == UNMIX_OK) st = unmix_ckpt_read(ck, "fc.bias", UNMIX_CKPT_F32, 1, shb, hb);
  if (st == UNMIX_OK) st = unmix_ckpt_read(ck, "unmix.lincls.momentum.fc.weight", UNMIX_CKPT_F32, 2, shw, mw);
  if (st == UNMIX_OK) st = unmix_ckpt_read(ck, "unmix.lincls.momentum.fc.bias", UNMIX_CKPT_F32, 1, shb, mb);
  if (st == UNMIX_OK) st = unmix_ckpt_read(ck, "unmix.lincls.progress", UNMIX_CKPT_F64, 1, shp, b);
  if (st == UNMIX_OK && !(b[3] >= 0 && b[3] <= epochs && b[3] == floor(b[3])))
    st = unmix_error_set(UNMIX_ERR_FORMAT, "%s: %g epochs done does not fit a run of %d", path, b[3], epochs);
  if (st == UNMIX_OK) {
    struct unmix_param_store *s = &r->m->params;
    const struct unmix_backend *be = r->be;
    unmix_param_store_set(s, r->iw, hw);
    unmix_param_store_set(s, r->ib, hb);
    be->memcpy_h2d(s->momentum + s->entries[r->iw].offset, mw, sizeof(float) * (size_t)nw);
    be->memcpy_h2d(s->momentum + s->entries[r->ib].offset, mb, sizeof(float) * (size_t)r->classes);
    memcpy(prog, b, sizeof b);
  }
  free(hw);
  free(hb);
  free(mw);
  free(mb);
  unmix_ckpt_free(ck);
  return st;
}

/* Input batch on the device (the loader's host buffer itself on the CPU). */
static unmix_status to_device(struct lrun *r, const struct unmix_batch *b, const float **x, const int32_t **lab) {
  const struct unmix_batch_view *v = &b->views[0];
  if (r->be->device == UNMIX_DEVICE_CPU) {
    *x = v->data;
    *lab = b->labels;
    return UNMIX_OK;
  }
  size_t bytes = sizeof(float) * (size_t)b->size * v->h * v->w * v->c;
  if (bytes > r->xcap) {
    if (r->xdev) r->be->free(r->xdev);
    r->xdev = r->be->alloc(bytes);
    r->xcap = r->xdev ? bytes : 0;
    if (!r->xdev) return unmix_error_set(UNMIX_ERR_NOMEM, "linear evaluation: device batch (%zu bytes)", bytes);
  }
  r->be->memcpy_h2d(r->xdev, v->data, bytes);
  r->be->memcpy_h2d(r->lab_dev, b->labels, sizeof(int32_t) * (size_t)b->size);
  *x = r->xdev;
  *lab = r->lab_dev;
  return UNMIX_OK;
}

/* Top-1/top-5 (%) and mean loss of the test split. */
static unmix_status evaluate(struct lrun *r, struct unmix_loader *ld, int64_t n_total, double *top1, double *top5,
                             double *loss) {
  UNMIX_TRY(unmix_loader_start_epoch(ld, 0));
  double c1 = 0, c5 = 0, ls = 0;
  int64_t seen = 0;
  for (;;) {
    const struct unmix_batch *b = NULL;
    UNMIX_TRY(unmix_loader_next(ld, &b));
    if (!b) break;
    const float *x;
    const int32_t *lab;
    UNMIX_TRY(to_device(r, b, &x, &lab));
    const float *logits = unmix_model_forward(r->m, r->ctx, x, b->size, UNMIX_FWD_EVAL, false);
    r->be->cross_entropy_forward(b->size, r->classes, 1.0f, logits, lab, r->probs, r->scal, r->scal + 1, r->scal + 2);
    float s[3];
    r->be->memcpy_d2h(s, r->scal, sizeof s);
    ls += (double)s[0] * b->size;
    c1 += s[1];
    c5 += s[2];
    seen += b->size;
  }
  if (seen != n_total)
    return unmix_error_set(UNMIX_ERR_FORMAT, "linear evaluation saw %lld of %lld test samples", (long long)seen,
                           (long long)n_total);
  *top1 = 100.0 * c1 / (double)seen;
  *top5 = 100.0 * c5 / (double)seen;
  *loss = ls / (double)seen;
  return UNMIX_OK;
}

/* One epoch of fc training; sums into loss/correct. */
static unmix_status train_epoch(struct lrun *r, struct unmix_loader *ld, int epoch, float lr, double *loss_sum,
                                double *c1_sum, int64_t *seen) {
  const struct unmix_backend *be = r->be;
  struct unmix_param_store *s = &r->m->params;
  const struct unmix_param_entry *ew = &s->entries[r->iw], *eb = &s->entries[r->ib];
  UNMIX_TRY(unmix_loader_start_epoch(ld, epoch));
  int64_t step = 0;
  for (;; step++) {
    const struct unmix_batch *b = NULL;
    UNMIX_TRY(unmix_loader_next(ld, &b));
    if (!b) break;
    const float *x;
    const int32_t *lab;
    UNMIX_TRY(to_device(r, b, &x, &lab));
    const int n = b->size;
    /* frozen backbone in eval mode, nothing kept for a backward pass; feat_node and the
     * logits stay available */
    const float *logits = unmix_model_forward(r->m, r->ctx, x, n, UNMIX_FWD_EVAL, false);
    const float *feat = unmix_model_node_output(r->m, r->ctx, r->m->feat_node);
    be->cross_entropy_forward(n, r->classes, 1.0f, logits, lab, r->probs, r->scal, r->scal + 1, NULL);
    be->cross_entropy_backward(n, r->classes, 1.0f, 1.0f, r->probs, lab, r->dlogits);
    be->fill(ew->numel, 0.0f, s->grad + ew->offset);
    be->fill(eb->numel, 0.0f, s->grad + eb->offset);
    be->linear_backward(n, r->feat_dim, r->classes, r->dlogits, feat, s->data + ew->offset, NULL, s->grad + ew->offset,
                        s->grad + eb->offset);
    unmix_optimizer_step(&r->opt, lr);
    float sc[2];
    be->memcpy_d2h(sc, r->scal, sizeof sc);
    if (!isfinite(sc[0]))
      return unmix_error_set(UNMIX_ERR_NUMERIC, "linear evaluation: loss %g at epoch %d step %lld (lr %g)", (double)sc[0],
                             epoch + 1, (long long)step, (double)lr);
    *loss_sum += (double)sc[0] * n;
    *c1_sum += sc[1];
    *seen += n;
  }
  return UNMIX_OK;
}

static unmix_status check_params(const struct unmix_lincls_params *p) {
  if (p->epochs < 1) return unmix_error_set(UNMIX_ERR_ARG, "linear evaluation: epochs = %d must be >= 1", p->epochs);
  if (p->batch_size < 1)
    return unmix_error_set(UNMIX_ERR_ARG, "linear evaluation: batch size %d must be >= 1", p->batch_size);
  if (!(p->lr >= 0) || !isfinite(p->lr))
    return unmix_error_set(UNMIX_ERR_ARG, "linear evaluation: lr %g must be >= 0", (double)p->lr);
  if (!(p->momentum >= 0 && p->momentum < 1))
    return unmix_error_set(UNMIX_ERR_ARG, "linear evaluation: momentum %g must be in [0, 1)", (double)p->momentum);
  if (!(p->weight_decay >= 0) || !isfinite(p->weight_decay))
    return unmix_error_set(UNMIX_ERR_ARG, "linear evaluation: weight decay %g must be >= 0", (double)p->weight_decay);
  if (p->n_milestones < 0 || p->n_milestones > UNMIX_MAX_MILESTONES)
    return unmix_error_set(UNMIX_ERR_ARG, "linear evaluation: %d milestones (at most %d)", p->n_milestones,
                           UNMIX_MAX_MILESTONES);
  return UNMIX_OK;
}

unmix_status unmix_lincls_run(const struct unmix_backend *be, struct unmix_model *m, const struct unmix_dataset *train,
                              const struct unmix_dataset *test, const struct unmix_recipe *rc,
                              const struct unmix_lincls_params *p, const struct unmix_lincls_run_options *o,
                              struct unmix_lincls_result *res) {
  static const struct unmix_lincls_run_options none = {0};
  if (!o) o = &none;
  memset(res, 0, sizeof *res);
  UNMIX_TRY(check_params(p));
  struct lrun r;
  memset(&r, 0, sizeof r);
  r.be = be;
  r.m = m;
  r.fc = unmix_lincls_fc_node(m);
  if (r.fc < 0 || m->be != be)
    return unmix_error_set(UNMIX_ERR_ARG, "linear evaluation needs a classifier model (num_classes > 0) on backend %s",
                           be->name);
  r.feat_dim = unmix_model_node_dim(m, m->feat_node);
  r.classes = m->nodes[r.fc].c;
  r.iw = m->nodes[r.fc].weight;
  r.ib = m->nodes[r.fc].bias;
  if (r.classes != train->num_classes || test->num_classes != train->num_classes)
    return unmix_error_set(UNMIX_ERR_CONFIG, "linear evaluation: the classifier has %d classes, %s has %d (train) and %d (test)",
                           r.classes, train->name, train->num_classes, test->num_classes);
  unmix_model_freeze_range(m, 0, r.fc);

  const int eval_batch = p->eval_batch > 0 ? p->eval_batch : (p->batch_size > 256 ? p->batch_size : 256);
  r.maxb = p->batch_size > eval_batch ? p->batch_size : eval_batch;
  struct unmix_loader *ltrain = NULL, *ltest = NULL;
  struct unmix_csv_writer *csv = NULL;
  char csv_path[UNMIX_PATH_MAX + 32] = "", state_path[UNMIX_PATH_MAX + 32] = "";
  double prog[NPROG] = {-1, -1, 0, 0, 0, 0, 0};
  double t_start = unmix_now();
  int ran = 0;

  struct unmix_optim_config oc;
  memset(&oc, 0, sizeof oc);
  oc.kind = UNMIX_OPTIM_SGD;
  oc.lr = p->lr;
  oc.momentum = p->momentum;
  oc.weight_decay = p->weight_decay;
  oc.batch_size = p->batch_size;
  unmix_status st = unmix_optimizer_init(&r.opt, &m->params, &oc);
  if (st != UNMIX_OK) return st;
  for (int i = 0; i < m->params.count; i++) unmix_optimizer_set_skip(&r.opt, i, i != r.iw && i != r.ib);
  /* SGD momentum of the fc starts at zero (a fresh optimiser) */
  be->fill(m->params.entries[r.iw].numel, 0.0f, m->params.momentum + m->params.entries[r.iw].offset);
  be->fill(m->params.entries[r.ib].numel, 0.0f, m->params.momentum + m->params.entries[r.ib].offset);

  struct unmix_loader_options lo;
  unmix_loader_options_init(&lo, UNMIX_LOADER_TRAIN, p->batch_size, p->seed);
  lo.drop_last = false;
  lo.shuffle = true;
  lo.workers = p->workers;
  lo.prefetch = p->prefetch > 0 ? p->prefetch : 2;
  lo.backend = be;
  struct unmix_recipe rtrain = *rc;
  rtrain.n_views = 1;
  if (st == UNMIX_OK) st = unmix_loader_create(train, &rtrain, &lo, &ltrain);
  unmix_loader_options_init(&lo, UNMIX_LOADER_EVAL, eval_batch, p->seed);
  lo.workers = p->workers;
  lo.prefetch = p->prefetch > 0 ? p->prefetch : 2;
  lo.backend = be;
  if (st == UNMIX_OK) st = unmix_loader_create(test, rc, &lo, &ltest);

  r.ctx = unmix_ctx_create(be, "lincls");
  if (be->device != UNMIX_DEVICE_CPU) r.lab_dev = be->alloc(sizeof(int32_t) * (size_t)r.maxb);
  r.probs = be->alloc(sizeof(float) * (size_t)r.maxb * r.classes);
  r.dlogits = be->alloc(sizeof(float) * (size_t)r.maxb * r.classes);
  r.scal = be->alloc(sizeof(float) * 4);
  if (st == UNMIX_OK && (!r.probs || !r.dlogits || !r.scal || (be->device != UNMIX_DEVICE_CPU && !r.lab_dev)))
    st = unmix_error_set(UNMIX_ERR_NOMEM, "linear evaluation buffers (%d x %d)", r.maxb, r.classes);

  const uint64_t fp0 = st == UNMIX_OK ? backbone_fingerprint(m) : 0;
  char ptext[1024];
  params_text(p, fp0, train->n, test->n, ptext, sizeof ptext);

  if (st == UNMIX_OK && o->out_dir) {
    st = unmix_fs_mkdirs(o->out_dir, 0755);
    snprintf(csv_path, sizeof csv_path, "%s/%s", o->out_dir, CSV_FILE);
    snprintf(state_path, sizeof state_path, "%s/%s", o->out_dir, STATE_FILE);
    if (st == UNMIX_OK && file_exists(state_path)) {
      if (!o->resume)
        st = unmix_error_set(UNMIX_ERR_ARG,
                             "%s already holds a linear evaluation (%s); pass --resume to continue it, or --out DIR "
                             "for a new one",
                             o->out_dir, STATE_FILE);
      else
        st = load_state(&r, state_path, ptext, p->epochs, prog);
    }
    static const char *const cols[] = {UNMIX_LINCLS_COLUMNS};
    bool append = false;
    if (st == UNMIX_OK && file_exists(csv_path)) {
      if (prog[3] > 0) {
        st = unmix_csv_truncate_after(csv_path, "epoch", prog[3]);
        append = true;
      } else if (unlink(csv_path) != 0) {
        st = unmix_error_set(UNMIX_ERR_IO, "cannot remove stale %s: %s", csv_path, strerror(errno));
      }
    }
    if (st == UNMIX_OK) st = unmix_csv_open(csv_path, cols, (int)(sizeof cols / sizeof cols[0]), append, &csv);
  }
  const int done = (int)prog[3];
  res->resumed_from = done;
  res->epochs = done;
  if (st == UNMIX_OK && done > 0 && !o->quiet)
    unmix_log_info("resuming the linear evaluation in %s after epoch %d of %d", o->out_dir, done, p->epochs);

  for (int epoch = done; st == UNMIX_OK && epoch < p->epochs; epoch++) {
    double t0 = unmix_now();
    const float lr = (float)unmix_lincls_lr(p, epoch);
    double loss_sum = 0, c1 = 0, tl = 0;
    int64_t seen = 0;
    st = train_epoch(&r, ltrain, epoch, lr, &loss_sum, &c1, &seen);
    if (st != UNMIX_OK) break;
    double t1 = 0, t5 = 0;
    st = evaluate(&r, ltest, test->n, &t1, &t5, &tl);
    if (st != UNMIX_OK) break;
    if (t1 > prog[0]) {
      prog[0] = t1;
      prog[2] = epoch + 1;
    }
    if (t5 > prog[1]) prog[1] = t5;
    prog[3] = epoch + 1;
    prog[4] = t1;
    prog[5] = t5;
    prog[6] = loss_sum / (double)seen;
    struct unmix_lincls_epoch row = {epoch + 1, lr, prog[6], 100.0 * c1 / (double)seen, t1, t5, prog[0],
                                     unmix_now() - t0};
    if (csv) {
      st = unmix_csv_setf(csv, "epoch", "%d", row.epoch);
      if (st == UNMIX_OK) st = unmix_csv_setf(csv, "lr", "%.9g", row.lr);
      if (st == UNMIX_OK) st = unmix_csv_setf(csv, "train_loss", "%.9g", row.train_loss);
      if (st == UNMIX_OK) st = unmix_csv_setf(csv, "train_top1", "%.4f", row.train_top1);
      if (st == UNMIX_OK) st = unmix_csv_setf(csv, "test_top1", "%.4f", row.test_top1);
      if (st == UNMIX_OK) st = unmix_csv_setf(csv, "test_top5", "%.4f", row.test_top5);
      if (st == UNMIX_OK) st = unmix_csv_setf(csv, "best_top1", "%.4f", row.best_top1);
      if (st == UNMIX_OK) st = unmix_csv_setf(csv, "seconds", "%.3f", row.seconds);
      if (st == UNMIX_OK) st = unmix_csv_end_row(csv);
      if (st == UNMIX_OK) st = save_state(&r, state_path, ptext, o->source, prog);
      if (st != UNMIX_OK) break;
    }
    if (!o->quiet)
      unmix_log_info("lincls epoch %d/%d  lr %.5g  loss %.4f  train top-1 %.2f%%  test top-1 %.2f%% top-5 %.2f%%  "
                     "(best %.2f%%)  %.1f s",
                     row.epoch, p->epochs, row.lr, row.train_loss, row.train_top1, t1, t5, prog[0], row.seconds);
    ran++;
    res->epochs = epoch + 1;
    if (o->stop_after_epochs > 0 && ran >= o->stop_after_epochs) break;
  }
  if (st == UNMIX_OK && backbone_fingerprint(m) != fp0)
    st = unmix_error_set(UNMIX_ERR_NUMERIC, "linear evaluation changed a backbone tensor (sanity check failed)");
  if (st == UNMIX_OK) {
    res->best_top1 = prog[0];
    res->best_top5 = prog[1];
    res->best_epoch = (int)prog[2];
    res->last_top1 = prog[4];
    res->last_top5 = prog[5];
    res->last_train_loss = prog[6];
    res->seconds_per_epoch = ran ? (unmix_now() - t_start) / ran : 0;
    res->train_samples = train->n;
    res->test_samples = test->n;
  }
  if (csv) {
    unmix_status cs = unmix_csv_close(csv);
    if (st == UNMIX_OK) st = cs;
  }
  unmix_loader_free(ltrain);
  unmix_loader_free(ltest);
  unmix_ctx_destroy(r.ctx);
  if (r.xdev) be->free(r.xdev);
  if (r.lab_dev) be->free(r.lab_dev);
  if (r.probs) be->free(r.probs);
  if (r.dlogits) be->free(r.dlogits);
  if (r.scal) be->free(r.scal);
  unmix_optimizer_free(&r.opt);
  return st;
}
