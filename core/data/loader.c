/* Threaded, prefetching, deterministic batch loader (see loader.h).
 * Work unit: a chunk of consecutive samples of one batch. Workers take chunks in step order
 * as long as the step's ring slot is free; the consumer takes steps in order. One mutex
 * guards the bookkeeping; samples are processed without it. */
#include "core/data/loader.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util/rng.h"

#define CHUNK 8

struct slot {
  int64_t step;
  int chunks_total, chunks_done;
  int ready;
  unmix_status err;
  char errmsg[1024];
  struct unmix_batch batch;
  void *mem;
};

struct worker {
  struct unmix_loader *ld;
  pthread_t thread;
  struct unmix_sample_reader rd;
  struct unmix_pil_scratch scratch;
  uint8_t *work;
  struct unmix_view_params params[UNMIX_MAX_VIEWS];
  int epoch, drawn;
  int64_t index;
};

struct unmix_loader {
  const struct unmix_dataset *ds;
  struct unmix_loader_options o;
  int n_views;
  struct unmix_view_spec specs[UNMIX_MAX_VIEWS];
  struct unmix_norm norm;
  int vh[UNMIX_MAX_VIEWS], vw[UNMIX_MAX_VIEWS], c;
  int local_max;
  int64_t steps;
  int32_t *order;
  struct slot *slots;
  int ring;
  struct worker *workers;
  int n_workers;

  pthread_mutex_t mu;
  pthread_cond_t cv_work, cv_ready, cv_idle;
  int stop, active, epoch;
  uint64_t generation;
  int64_t fill_step;   /* step whose chunks are being handed out */
  int fill_chunk;
  int64_t consume_step;
  int held;            /* the consumer holds step consume_step - 1 */
  int in_flight;
};

void unmix_loader_options_init(struct unmix_loader_options *o, enum unmix_loader_mode mode, int batch_size,
                               uint64_t seed) {
  memset(o, 0, sizeof *o);
  o->mode = mode;
  o->batch_size = batch_size;
  o->rank = 0;
  o->world = 1;
  o->workers = 0;
  o->prefetch = 2;
  o->seed = seed;
  o->shuffle = mode == UNMIX_LOADER_TRAIN;
  o->drop_last = mode == UNMIX_LOADER_TRAIN;
}

void unmix_loader_options_from_config(struct unmix_loader_options *o, const struct unmix_data_config *cfg,
                                      enum unmix_loader_mode mode, int batch_size, uint64_t seed) {
  unmix_loader_options_init(o, mode, batch_size, seed);
  o->workers = cfg->workers;
  if (cfg->prefetch > 0) o->prefetch = cfg->prefetch;
}

/* Global batch of step k and this rank's slice of it. */
static void step_slice(const struct unmix_loader *ld, int64_t k, int64_t *first, int *count) {
  int64_t B = ld->o.batch_size, start = k * B;
  int64_t b = ld->ds->n - start < B ? ld->ds->n - start : B;
  int64_t lo = ((int64_t)ld->o.rank * b) / ld->o.world, hi = ((int64_t)(ld->o.rank + 1) * b) / ld->o.world;
  *first = start + lo;
  *count = (int)(hi - lo);
}

static int chunks_of(int count) { return count == 0 ? 1 : (count + CHUNK - 1) / CHUNK; }

int unmix_views_dct_denom(const struct unmix_view_params *p, int n_views, int h, int w) {
  int best = 8;
  for (int v = 0; v < n_views; v++) {
    int d = 8;
    while (d > 1 && ((int64_t)p[v].src_w < (int64_t)d * p[v].rs_w || (int64_t)p[v].src_h < (int64_t)d * p[v].rs_h)) d /= 2;
    if (p[v].src_w == w && p[v].src_h == h && p[v].rs_w == w && p[v].rs_h == h) d = 1; /* ToTensor only */
    if (d < best) best = d;
  }
  return best;
}

void unmix_view_params_rescale(struct unmix_view_params *p, int full_h, int full_w, int h, int w) {
  if (full_h == h && full_w == w) return;
  double fx = (double)w / full_w, fy = (double)h / full_h;
  int x0 = (int)floor(p->src_x * fx), y0 = (int)floor(p->src_y * fy);
  int x1 = (int)ceil((p->src_x + p->src_w) * fx), y1 = (int)ceil((p->src_y + p->src_h) * fy);
  if (x1 > w) x1 = w;
  if (y1 > h) y1 = h;
  if (x1 <= x0) x1 = x0 + 1;
  if (y1 <= y0) y1 = y0 + 1;
  p->src_x = x0;
  p->src_y = y0;
  p->src_w = x1 - x0;
  p->src_h = y1 - y0;
}

static void draw_views(struct worker *wk, int h, int w) {
  struct unmix_loader *ld = wk->ld;
  for (int v = 0; v < ld->n_views; v++) {
    struct unmix_rng r = unmix_rng_make(ld->o.seed, UNMIX_RNG_AUGMENT, (uint32_t)wk->epoch, (uint32_t)wk->index, (uint32_t)v);
    unmix_view_draw(&ld->specs[v], &r, h, w, &wk->params[v]);
  }
  wk->drawn = 1;
}

static int scale_cb(void *arg, int h, int w) {
  struct worker *wk = arg;
  draw_views(wk, h, w);
  return unmix_views_dct_denom(wk->params, wk->ld->n_views, h, w);
}

/* Fills rows [row0, row0 + n) of `batch` from epoch positions starting at `pos`. */
static unmix_status process(struct worker *wk, int epoch, struct unmix_batch *batch, int row0, int64_t pos, int n) {
  struct unmix_loader *ld = wk->ld;
  for (int k = 0; k < n; k++) {
    int row = row0 + k;
    wk->epoch = epoch;
    wk->index = ld->order[pos + k];
    wk->drawn = 0;
    struct unmix_image img;
    UNMIX_TRY(unmix_dataset_load(ld->ds, wk->index, &wk->rd, scale_cb, wk, &img));
    if (!wk->drawn) draw_views(wk, img.full_h, img.full_w);
    for (int v = 0; v < ld->n_views; v++) {
      struct unmix_view_params *p = &wk->params[v];
      unmix_view_params_rescale(p, img.full_h, img.full_w, img.h, img.w);
      if (p->out_h != ld->vh[v] || p->out_w != ld->vw[v])
        return UNMIX_FAIL(UNMIX_ERR_FORMAT, "%s: sample %lld is %dx%d, but view %d needs %dx%d images",
                          unmix_dataset_sample_path(ld->ds, img.index), (long long)img.index, img.h, img.w, v,
                          ld->vh[v], ld->vw[v]);
      float *out = batch->views[v].data + (size_t)row * ld->vh[v] * ld->vw[v] * ld->c;
      unmix_view_apply(p, img.data, img.h, img.w, img.c, &ld->norm, out, wk->work, &wk->scratch);
    }
    batch->labels[row] = ld->ds->labels[img.index];
    batch->indices[row] = (int32_t)img.index;
  }
  return UNMIX_OK;
}

static int64_t first_unreleased(const struct unmix_loader *ld) { return ld->held ? ld->consume_step - 1 : ld->consume_step; }

static void *worker_main(void *arg) {
  struct worker *wk = arg;
  struct unmix_loader *ld = wk->ld;
  pthread_mutex_lock(&ld->mu);
  while (!ld->stop) {
    if (!(ld->active && ld->fill_step < ld->steps && ld->fill_step - first_unreleased(ld) < ld->ring)) {
      pthread_cond_wait(&ld->cv_work, &ld->mu);
      continue;
    }
    int64_t step = ld->fill_step;
    int64_t first;
    int count;
    step_slice(ld, step, &first, &count);
    struct slot *sl = &ld->slots[step % ld->ring];
    int chunk = ld->fill_chunk++;
    if (chunk == 0) {
      sl->step = step;
      sl->chunks_total = chunks_of(count);
      sl->chunks_done = 0;
      sl->ready = 0;
      sl->err = UNMIX_OK;
      sl->batch.epoch = ld->epoch;
      sl->batch.step = step;
      sl->batch.size = count;
    }
    if (ld->fill_chunk >= sl->chunks_total) {
      ld->fill_step++;
      ld->fill_chunk = 0;
    }
    uint64_t gen = ld->generation;
    int epoch = ld->epoch;
    ld->in_flight++;
    pthread_mutex_unlock(&ld->mu);

    int row0 = chunk * CHUNK, n = count - row0 < CHUNK ? count - row0 : CHUNK;
    unmix_status s = n > 0 ? process(wk, epoch, &sl->batch, row0, first + row0, n) : UNMIX_OK;

    pthread_mutex_lock(&ld->mu);
    ld->in_flight--;
    if (gen == ld->generation) {
      if (s != UNMIX_OK && sl->err == UNMIX_OK) {
        sl->err = s;
        snprintf(sl->errmsg, sizeof sl->errmsg, "%s", unmix_error_message());
      }
      if (++sl->chunks_done == sl->chunks_total) {
        sl->ready = 1;
        pthread_cond_broadcast(&ld->cv_ready);
      }
    }
    if (ld->in_flight == 0) pthread_cond_broadcast(&ld->cv_idle);
  }
  pthread_mutex_unlock(&ld->mu);
  return NULL;
}

static void free_slots(struct unmix_loader *ld) {
  if (!ld->slots) return;
  for (int i = 0; i < ld->ring; i++) {
    if (!ld->slots[i].mem) continue;
    if (ld->o.backend) ld->o.backend->free_host(ld->slots[i].mem);
    else free(ld->slots[i].mem);
  }
  free(ld->slots);
  ld->slots = NULL;
}

unmix_status unmix_loader_create(const struct unmix_dataset *ds, const struct unmix_recipe *recipe,
                                 const struct unmix_loader_options *o, struct unmix_loader **out) {
  *out = NULL;
  if (o->batch_size < 1) return UNMIX_FAIL(UNMIX_ERR_CONFIG, "optim.batch_size = %d: must be >= 1", o->batch_size);
  if (o->world < 1 || o->rank < 0 || o->rank >= o->world)
    return UNMIX_FAIL(UNMIX_ERR_CONFIG, "loader: rank %d of world %d", o->rank, o->world);
  if (o->batch_size % o->world != 0)
    return UNMIX_FAIL(UNMIX_ERR_CONFIG, "optim.batch_size = %d is not divisible by the %d ranks", o->batch_size, o->world);
  if (o->prefetch < 1 || o->prefetch > 64)
    return UNMIX_FAIL(UNMIX_ERR_CONFIG, "data.prefetch = %d: must be in 1..64", o->prefetch);
  if (o->workers < 0 || o->workers > 1024) return UNMIX_FAIL(UNMIX_ERR_CONFIG, "data.workers = %d: must be in 0..1024", o->workers);
  if (ds->n < 1) return UNMIX_FAIL(UNMIX_ERR_CONFIG, "dataset %s (%s) has no samples", ds->name, ds->root);
  if (ds->n > INT32_MAX) return UNMIX_FAIL(UNMIX_ERR_CONFIG, "dataset %s: more than 2^31 samples", ds->name);
  const int eval = o->mode == UNMIX_LOADER_EVAL;
  const int drop_last = eval ? 0 : o->drop_last;
  int64_t steps = drop_last ? ds->n / o->batch_size : (ds->n + o->batch_size - 1) / o->batch_size;
  if (steps == 0)
    return UNMIX_FAIL(UNMIX_ERR_CONFIG,
                      "dataset %s has %lld samples, fewer than one batch of %d (drop_last leaves no step)", ds->name,
                      (long long)ds->n, o->batch_size);

  struct unmix_loader *ld = unmix_xcalloc(1, sizeof *ld);
  ld->ds = ds;
  ld->o = *o;
  ld->o.drop_last = drop_last;
  ld->o.shuffle = eval ? 0 : o->shuffle;
  ld->steps = steps;
  ld->c = ds->c;
  if (eval) {
    ld->n_views = 1;
    ld->specs[0] = recipe->eval;
  } else {
    ld->n_views = recipe->n_views;
    memcpy(ld->specs, recipe->views, sizeof(struct unmix_view_spec) * recipe->n_views);
  }
  size_t work_bytes = 0;
  for (int v = 0; v < ld->n_views; v++) {
    if (ld->specs[v].geom == UNMIX_GEOM_NONE && ds->h == 0) {
      free(ld);
      return UNMIX_FAIL(UNMIX_ERR_CONFIG,
                        "recipe '%s': a ToTensor-only view needs images of one size, but %s images vary in size",
                        recipe->name, ds->name);
    }
    unmix_view_out_size(&ld->specs[v], ds->h, ds->w, &ld->vh[v], &ld->vw[v]);
    size_t b = (size_t)ld->vh[v] * ld->vw[v] * ld->c;
    if (b > work_bytes) work_bytes = b;
  }
  unmix_norm_init(&ld->norm, recipe->mean, recipe->std);
  if (ld->c == 1) { /* single-channel data: channel 0's mean/std */
    for (int v = 0; v < 256; v++) ld->norm.lut[1][v] = ld->norm.lut[2][v] = ld->norm.lut[0][v];
  }
  ld->local_max = o->batch_size / o->world + 1;
  ld->ring = o->prefetch + 1;
  ld->order = unmix_xmalloc(sizeof(int32_t) * (size_t)ds->n);
  ld->slots = unmix_xcalloc((size_t)ld->ring, sizeof(struct slot));
  size_t per_view[UNMIX_MAX_VIEWS], total = 0;
  for (int v = 0; v < ld->n_views; v++) {
    per_view[v] = ((size_t)ld->local_max * ld->vh[v] * ld->vw[v] * ld->c * sizeof(float) + 255) & ~(size_t)255;
    total += per_view[v];
  }
  total += 2 * (((size_t)ld->local_max * sizeof(int32_t) + 255) & ~(size_t)255);
  for (int i = 0; i < ld->ring; i++) {
    struct slot *sl = &ld->slots[i];
    sl->mem = o->backend ? o->backend->alloc_host(total) : malloc(total);
    if (!sl->mem) {
      free_slots(ld);
      free(ld->order);
      free(ld);
      return UNMIX_FAIL(UNMIX_ERR_NOMEM, "loader: cannot allocate %d batch buffers of %zu bytes", o->prefetch + 1, total);
    }
    uint8_t *p = sl->mem;
    sl->batch.n_views = ld->n_views;
    for (int v = 0; v < ld->n_views; v++) {
      sl->batch.views[v].data = (float *)p;
      sl->batch.views[v].h = ld->vh[v];
      sl->batch.views[v].w = ld->vw[v];
      sl->batch.views[v].c = ld->c;
      p += per_view[v];
    }
    sl->batch.labels = (int32_t *)p;
    p += ((size_t)ld->local_max * sizeof(int32_t) + 255) & ~(size_t)255;
    sl->batch.indices = (int32_t *)p;
  }
  pthread_mutex_init(&ld->mu, NULL);
  pthread_cond_init(&ld->cv_work, NULL);
  pthread_cond_init(&ld->cv_ready, NULL);
  pthread_cond_init(&ld->cv_idle, NULL);
  int nw = o->workers;
  if (nw == 0) {
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    nw = c > 0 ? (int)c : 1;
  }
  ld->workers = unmix_xcalloc((size_t)nw, sizeof(struct worker));
  for (int i = 0; i < nw; i++) {
    struct worker *wk = &ld->workers[i];
    wk->ld = ld;
    wk->work = unmix_xmalloc(work_bytes);
    if (pthread_create(&wk->thread, NULL, worker_main, wk) != 0) {
      free(wk->work);
      ld->n_workers = i;
      unmix_loader_free(ld);
      return UNMIX_FAIL(UNMIX_ERR_NOMEM, "loader: cannot start worker thread %d", i);
    }
    ld->n_workers = i + 1;
  }
  *out = ld;
  return UNMIX_OK;
}

int64_t unmix_loader_steps_per_epoch(const struct unmix_loader *ld) { return ld->steps; }

/* Stops handing out work for the current epoch and waits for chunks in progress. */
static void quiesce(struct unmix_loader *ld) {
  ld->active = 0;
  ld->generation++;
  while (ld->in_flight > 0) pthread_cond_wait(&ld->cv_idle, &ld->mu);
}

unmix_status unmix_loader_start_epoch(struct unmix_loader *ld, int epoch) {
  if (epoch < 0) return UNMIX_FAIL(UNMIX_ERR_ARG, "loader: epoch %d < 0", epoch);
  pthread_mutex_lock(&ld->mu);
  quiesce(ld);
  const int64_t n = ld->ds->n;
  if (ld->o.shuffle) {
    struct unmix_rng r = unmix_rng_make(ld->o.seed, UNMIX_RNG_SHUFFLE, (uint32_t)epoch, 0, 0);
    unmix_rng_permutation(&r, ld->order, (int)n);
  } else {
    for (int64_t i = 0; i < n; i++) ld->order[i] = (int32_t)i;
  }
  ld->epoch = epoch;
  ld->fill_step = 0;
  ld->fill_chunk = 0;
  ld->consume_step = 0;
  ld->held = 0;
  for (int i = 0; i < ld->ring; i++) ld->slots[i].ready = 0;
  ld->active = 1;
  pthread_cond_broadcast(&ld->cv_work);
  pthread_mutex_unlock(&ld->mu);
  return UNMIX_OK;
}

unmix_status unmix_loader_next(struct unmix_loader *ld, const struct unmix_batch **out) {
  *out = NULL;
  pthread_mutex_lock(&ld->mu);
  if (ld->held) {
    ld->held = 0;
    pthread_cond_broadcast(&ld->cv_work);
  }
  if (!ld->active) {
    pthread_mutex_unlock(&ld->mu);
    return UNMIX_FAIL(UNMIX_ERR_ARG, "loader: next() before start_epoch()");
  }
  if (ld->consume_step >= ld->steps) {
    pthread_mutex_unlock(&ld->mu);
    return UNMIX_OK;
  }
  struct slot *sl = &ld->slots[ld->consume_step % ld->ring];
  while (!(sl->ready && sl->step == ld->consume_step)) pthread_cond_wait(&ld->cv_ready, &ld->mu);
  if (sl->err != UNMIX_OK) {
    unmix_status e = sl->err;
    char msg[sizeof sl->errmsg];
    memcpy(msg, sl->errmsg, sizeof msg);
    quiesce(ld); /* the epoch cannot continue */
    pthread_mutex_unlock(&ld->mu);
    return unmix_error_set(e, "epoch %d, batch %lld: %s", ld->epoch, (long long)sl->step, msg);
  }
  ld->consume_step++;
  ld->held = 1;
  *out = &sl->batch;
  pthread_mutex_unlock(&ld->mu);
  return UNMIX_OK;
}

void unmix_loader_free(struct unmix_loader *ld) {
  if (!ld) return;
  pthread_mutex_lock(&ld->mu);
  ld->stop = 1;
  ld->active = 0;
  ld->generation++;
  pthread_cond_broadcast(&ld->cv_work);
  pthread_mutex_unlock(&ld->mu);
  for (int i = 0; i < ld->n_workers; i++) {
    pthread_join(ld->workers[i].thread, NULL);
    unmix_sample_reader_free(&ld->workers[i].rd);
    unmix_pil_scratch_free(&ld->workers[i].scratch);
    free(ld->workers[i].work);
  }
  free(ld->workers);
  pthread_mutex_destroy(&ld->mu);
  pthread_cond_destroy(&ld->cv_work);
  pthread_cond_destroy(&ld->cv_ready);
  pthread_cond_destroy(&ld->cv_idle);
  free_slots(ld);
  free(ld->order);
  free(ld);
}
