/* The training run behind `unmix train`: a manifest becomes a run directory
 *   DIR/manifest.yaml            the resolved manifest (every key explicit)
 *   DIR/metrics.csv              one row per epoch (columns: unmix_metrics_columns)
 *   DIR/steps.csv                one row per step: global_step, epoch, step, lr, loss (mean over
 *                                ranks), mix
 *                                (global | region | none), lam (rank 0's lambda)
 *   DIR/checkpoint.safetensors   model (torchvision names) + all state needed to resume
 *   DIR/status.yaml              provenance and progress (status, epochs done, commit, ...)
 *   DIR/train.log                the log
 * DIR/.unmix.lock is flock()ed by the run that owns DIR: a second `unmix train` into it fails,
 * and a lock left by a killed run is taken over (logged). A DIR that is not empty is only
 * used with --resume (or --restart, which moves the old files aside; nothing is deleted).
 * A run resumes bit-identically on the CPU (same thread count) from its last checkpoint,
 * including a mid-epoch one written on SIGINT/SIGTERM.
 * Under `mpirun -np N` (or srun with UNMIX_NCCL_ID_FILE) the run is data-parallel over N
 * ranks: each loads its shard of the global batch; rank 0 alone writes the run directory;
 * every rank resumes from the same checkpoint; all stop together on a signal or an error. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "core/util/error.h"

/* metrics.csv columns, in order (stable; documented in README.md):
 *  epoch          1-based epoch number
 *  steps          training steps in the epoch
 *  lr             learning rate of the epoch's first step
 *  loss           batch-size-weighted mean of the total loss (the reference's train_loss)
 *  loss_main      MoCo: contrastive loss of the views (sum over the symmetric calls); SwAV: swav(out)
 *  loss_mix       MoCo: mixed-embedding term; SwAV: swav(out_unmix) (unweighted by lambda)
 *  loss_mix_flip  MoCo: flipped-mixed term; SwAV: swav(out_unmix, reverse)
 *  (then every registered method's own metric columns, which other methods leave empty:)
 *  inst_top1/5    MoCo instance discrimination accuracy (%) of the view logits (empty for SwAV)
 *  knn_top1/5     kNN monitor accuracy (%) on the test set (empty when not evaluated)
 *  mix_global     steps with the global mixture
 *  mix_region     steps with the region mixture
 *  lam_mean       mean lambda the loss used (1 without Un-Mix)
 *  images_per_s   training images (samples x views) per second
 *  seconds        wall seconds of the epoch (training + evaluation) */
#define UNMIX_METRICS_LEAD "epoch", "steps", "lr", "loss", "loss_main", "loss_mix", "loss_mix_flip"
#define UNMIX_METRICS_TAIL "knn_top1", "knn_top5", "mix_global", "mix_region", "lam_mean", "images_per_s", "seconds"
#define UNMIX_METRICS_MAX_COLUMNS 64
/* The metrics.csv header: UNMIX_METRICS_LEAD, every registered method's metric columns (in
 * registry order, without repeats), UNMIX_METRICS_TAIL. Returns the count (<= cap). */
int unmix_metrics_columns(const char **cols, int cap);

struct unmix_train_options {
  const char *manifest;
  const char *const *overrides; /* "key.path=value" */
  int n_overrides;
  const char *out_dir;          /* NULL: results/runs/<name> */
  bool resume;                  /* continue DIR's checkpoint (start fresh only when DIR has no
                                   checkpoint and records no finished epoch) */
  bool restart;                 /* move DIR's old files into DIR/previous-<time>/ and start over */
  int stop_after_epochs;        /* > 0: checkpoint and stop after this many epochs of this invocation */
  int64_t stop_after_steps;     /* > 0: checkpoint (mid-epoch) and stop after this many steps */
  bool quiet;                   /* no progress output (warnings and errors only) */
  bool tensorboard;             /* also DIR/events.out.tfevents.unmix (TensorBoard scalars) */
  /* multi-process (core/comm/comm.h): NULL / <= 0 = the environment's or the default */
  const char *comm;             /* auto | single | mpi | nccl */
  double comm_timeout;          /* seconds a collective may wait for a peer */
  const char *nccl_id_file;     /* NCCL unique-id file for launchers without MPI (srun) */
};

struct unmix_method;
struct unmix_backend;
struct unmix_ckpt;
/* Restores a training checkpoint's encoder (parameters, BN buffers), method state tensors
 * (this rank's row of per-rank state) and scalars into `method`, validating each against
 * the method's invariants (shapes, dtypes, queue pointer, ...). UNMIX_ERR_FORMAT naming the
 * file and the tensor or scalar at fault. Used by resume, and by the checkpoint fuzzer. */
unmix_status unmix_train_restore_state(struct unmix_method *method, const struct unmix_backend *be,
                                       const struct unmix_ckpt *ck, int rank, int world);

/* Runs the training; returns the process exit status: 0 done (or stopped as asked), 1 error,
 * 130 / 143 interrupted by SIGINT / SIGTERM after saving a checkpoint. */
int unmix_train(const struct unmix_train_options *o);
