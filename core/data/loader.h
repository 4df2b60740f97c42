/* The data loader: worker threads fill whole batches (every view of every sample, normalised
 * float32 NHWC) into a ring of buffers allocated with the backend's alloc_host (page-locked
 * when the CUDA backend is used), ahead of the consumer.
 *
 * Determinism: the epoch order is a Philox permutation keyed by (seed, UNMIX_RNG_SHUFFLE,
 * epoch); view v of dataset sample i in epoch e draws from (seed, UNMIX_RNG_AUGMENT, e, i, v).
 * Batches are therefore bit-identical whatever the number of threads, the prefetch depth
 * or the sharding.
 * Sharding: with world ranks and global batch B, step k's global batch is positions
 * [kB, kB + b) of the epoch order (b = B, or the remainder for the last eval batch) and rank r
 * gets the contiguous slice [floor(r b / world), floor((r+1) b / world)) of it, so the union
 * of the ranks' local batches is the single-process batch.
 * Train mode: shuffle, drop_last, the recipe's training views. Eval mode: dataset order, the
 * last partial batch kept, the recipe's eval transform (one view) - for feature extraction. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "core/backend/backend.h"
#include "core/data/dataset.h"
#include "core/data/recipe.h"

/* Random-stream purpose of the per-epoch dataset order; values: core/util/rng.h. */
enum unmix_loader_rng_purpose { UNMIX_RNG_SHUFFLE = 2 };

enum unmix_loader_mode { UNMIX_LOADER_TRAIN = 0, UNMIX_LOADER_EVAL };

struct unmix_loader_options {
  enum unmix_loader_mode mode;
  int batch_size;              /* global batch B (split over `world` ranks) */
  int rank, world;             /* this process's shard (0, 1 = single process) */
  int workers;                 /* threads (0 = online CPUs) */
  int prefetch;                /* batches filled ahead of the consumer (>= 1) */
  uint64_t seed;
  bool shuffle;                /* train default true; eval always false */
  bool drop_last;              /* train default true; eval always false */
  const struct unmix_backend *backend; /* alloc_host/free_host for the batch buffers; NULL = malloc */
};
/* Defaults for a mode: 1 rank, workers 0, prefetch 2, shuffle/drop_last per mode. */
void unmix_loader_options_init(struct unmix_loader_options *o, enum unmix_loader_mode mode, int batch_size,
                               uint64_t seed);

/* Defaults for a mode with the manifest's data.workers and data.prefetch (0 = default). */
void unmix_loader_options_from_config(struct unmix_loader_options *o, const struct unmix_data_config *cfg,
                                      enum unmix_loader_mode mode, int batch_size, uint64_t seed);

struct unmix_batch_view {
  float *data;                 /* (size, h, w, c) normalised */
  int h, w, c;
};
struct unmix_batch {
  int epoch;
  int64_t step;                /* index of the batch within the epoch */
  int size;                    /* local samples in this batch */
  int n_views;
  struct unmix_batch_view views[UNMIX_MAX_VIEWS];
  int32_t *labels;             /* (size) */
  int32_t *indices;            /* (size) dataset sample index of each row */
};

struct unmix_loader;
/* The dataset and recipe must outlive the loader. Errors: UNMIX_ERR_CONFIG for options that
 * cannot work (batch not divisible by world, fewer samples than a batch with drop_last, a
 * ToTensor-only view on images of varying size), UNMIX_ERR_NOMEM for the buffers. */
unmix_status unmix_loader_create(const struct unmix_dataset *ds, const struct unmix_recipe *recipe,
                                 const struct unmix_loader_options *o, struct unmix_loader **out);
/* Starts (or restarts, abandoning the current one) epoch `epoch`. */
unmix_status unmix_loader_start_epoch(struct unmix_loader *ld, int epoch);
/* The next batch of the epoch, or *out = NULL after the last one. The batch stays valid until
 * the next call to next/start_epoch/free. A sample that failed to load (streamed ImageFolder
 * without skip_corrupt) makes this return its error, naming the file and sample. */
unmix_status unmix_loader_next(struct unmix_loader *ld, const struct unmix_batch **out);
int64_t unmix_loader_steps_per_epoch(const struct unmix_loader *ld);
/* Stops the workers (also mid-epoch) and frees everything. */
void unmix_loader_free(struct unmix_loader *ld);

/* The DCT-scale denominator (8, 4, 2 or 1) that keeps every view's crop at or above its
 * output resolution, for an (h, w) image with the given view params. */
int unmix_views_dct_denom(const struct unmix_view_params *p, int n_views, int h, int w);
/* Maps params drawn on a (full_h, full_w) image to the (h, w) image decoded at reduced scale. */
void unmix_view_params_rescale(struct unmix_view_params *p, int full_h, int full_w, int h, int w);
