/* SGD / LARC over flat buffers, EMA, and learning-rate schedules (see optim.h). */
#include "core/optim/optim.h"

#include "core/optim/adam.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

unmix_status unmix_optimizer_init(struct unmix_optimizer *o, struct unmix_param_store *store,
                                  const struct unmix_optim_config *cfg) {
  memset(o, 0, sizeof *o);
  o->kind = cfg->kind;
  o->momentum = cfg->momentum;
  o->weight_decay = cfg->weight_decay;
  o->larc_trust = cfg->larc_trust;
  o->larc_eps = cfg->larc_eps;
  o->store = store;
  o->nseg = store->count;
  UNMIX_TRY(unmix_param_store_alloc_optim(store));
  o->off = unmix_xcalloc((size_t)o->nseg + 1, sizeof *o->off);
  unmix_param_store_segments(store, o->off);
  o->norm_p = unmix_xcalloc((size_t)o->nseg, sizeof(float));
  o->norm_g = unmix_xcalloc((size_t)o->nseg, sizeof(float));
  o->gscale = unmix_xcalloc((size_t)o->nseg, sizeof(float));
  o->wdseg = unmix_xcalloc((size_t)o->nseg, sizeof(float));
  o->skip = unmix_xcalloc((size_t)o->nseg, sizeof(bool));
  o->dev_sumsq = store->be->alloc(sizeof(float) * (size_t)(o->nseg ? o->nseg : 1));
  if (!o->dev_sumsq) return unmix_error_set(UNMIX_ERR_NOMEM, "optimizer scratch");
  return UNMIX_OK;
}

void unmix_optimizer_free(struct unmix_optimizer *o) {
  if (o->dev_sumsq) o->store->be->free(o->dev_sumsq);
  free(o->off);
  free(o->norm_p);
  free(o->norm_g);
  free(o->gscale);
  free(o->wdseg);
  free(o->skip);
  memset(o, 0, sizeof *o);
}

void unmix_optimizer_set_skip(struct unmix_optimizer *o, int param_index, bool skip) {
  UNMIX_REQUIRE(param_index >= 0 && param_index < o->nseg, "bad param index %d", param_index);
  o->skip[param_index] = skip;
}

/* Runs sgd_step over maximal runs of non-skipped tensors. */
static void step_runs(struct unmix_optimizer *o, float lr, bool segmented) {
  const struct unmix_backend *be = o->store->be;
  struct unmix_param_store *s = o->store;
  int i = 0;
  while (i < o->nseg) {
    if (o->skip[i]) {
      i++;
      continue;
    }
    int j = i;
    while (j < o->nseg && !o->skip[j]) j++;
    int64_t base = o->off[i], n = o->off[j] - base;
    if (segmented) {
      /* segment offsets relative to the run */
      int64_t *rel = unmix_xmalloc(sizeof(int64_t) * (size_t)(j - i + 1));
      for (int k = i; k <= j; k++) rel[k - i] = o->off[k] - base;
      be->sgd_step(n, s->data + base, s->grad + base, s->momentum + base, lr, o->momentum, 0.0f, j - i, rel,
                   o->gscale + i, o->wdseg + i);
      free(rel);
    } else {
      be->sgd_step(n, s->data + base, s->grad + base, s->momentum + base, lr, o->momentum, o->weight_decay, 0,
                   NULL, NULL, NULL);
    }
    i = j;
  }
}

void unmix_optimizer_step(struct unmix_optimizer *o, float lr) {
  const struct unmix_backend *be = o->store->be;
  struct unmix_param_store *s = o->store;
  if (o->kind == UNMIX_OPTIM_LARC) {
    /* apex LARC (clip=False): per tensor, a = trust*|p| / (|g| + wd*|p| + eps);
     * g <- (g + wd*p) * a when both norms are non-zero, else g unchanged (no wd);
     * then the inner SGD runs with weight decay 0. */
    be->sumsq_segments(o->nseg, o->off, s->data, o->dev_sumsq);
    be->memcpy_d2h(o->norm_p, o->dev_sumsq, sizeof(float) * (size_t)o->nseg);
    be->sumsq_segments(o->nseg, o->off, s->grad, o->dev_sumsq);
    be->memcpy_d2h(o->norm_g, o->dev_sumsq, sizeof(float) * (size_t)o->nseg);
    for (int i = 0; i < o->nseg; i++) {
      float pn = sqrtf(o->norm_p[i]), gn = sqrtf(o->norm_g[i]);
      if (pn != 0.0f && gn != 0.0f) {
        float a = o->larc_trust * pn / (gn + pn * o->weight_decay + o->larc_eps);
        o->gscale[i] = a;
        o->wdseg[i] = o->weight_decay * a;
      } else {
        o->gscale[i] = 1.0f;
        o->wdseg[i] = 0.0f;
      }
    }
    step_runs(o, lr, true);
  } else {
    step_runs(o, lr, false);
  }
  o->steps++;
}

void unmix_ema_update(const struct unmix_backend *be, struct unmix_param_store *key,
                      const struct unmix_param_store *query, float m) {
  UNMIX_REQUIRE(key->total == query->total, "EMA between different architectures");
  be->ema(key->total, m, query->data, key->data);
}

double unmix_lr_at(const struct unmix_schedule_config *s, double base_lr, int epochs, int epoch, int iter,
                   int iters_per_epoch) {
  switch (s->kind) {
    case UNMIX_SCHED_CONSTANT: return base_lr;
    case UNMIX_SCHED_COSINE_1BASED: return base_lr * 0.5 * (1.0 + cos(M_PI * (epoch + 1) / epochs));
    case UNMIX_SCHED_COSINE: return base_lr * 0.5 * (1.0 + cos(M_PI * epoch / epochs));
    case UNMIX_SCHED_STEP: {
      double lr = base_lr;
      for (int i = 0; i < s->n_milestones; i++)
        if (epoch >= s->milestones[i]) lr *= s->gamma;
      return lr;
    }
    case UNMIX_SCHED_WARMUP_STEP: {
      /* the W-MSE codebase's SimCLR/BYOL schedule (core/optim/adam.h) */
      struct unmix_wmse_schedule w = {.warmup_iters = s->warmup_iters, .n_drops = s->n_drops, .gamma = s->gamma};
      for (int i = 0; i < s->n_drops && i < 8; i++) w.drops[i] = s->drops[i];
      return unmix_wmse_lr(&w, base_lr, epochs, epoch, (int64_t)epoch * iters_per_epoch + iter, iters_per_epoch);
    }
    case UNMIX_SCHED_WARMUP_COSINE: {
      /* SwAV: warmup = linspace(start_warmup, base_lr, W*I) over iterations, then
       * final + 0.5*(base - final)*(1 + cos(pi*t/((E-W)*I))), t = it - W*I. */
      int64_t it = (int64_t)epoch * iters_per_epoch + iter;
      int64_t wn = (int64_t)s->warmup_epochs * iters_per_epoch;
      if (it < wn) {
        if (wn == 1) return s->start_warmup;
        return s->start_warmup + (base_lr - s->start_warmup) * (double)it / (double)(wn - 1);
      }
      int64_t cn = (int64_t)(epochs - s->warmup_epochs) * iters_per_epoch;
      double t = (double)(it - wn);
      return s->final_lr + 0.5 * (base_lr - s->final_lr) * (1.0 + cos(M_PI * t / (double)cn));
    }
  }
  UNMIX_UNREACHABLE();
}
