/* Projected wall time of a training run from measured step times: steps x mean step time, the
 * model `unmix bench step` prints. The trainer uses it to warn when a long run lands on the CPU. */
#ifndef UNMIX_EXPERIMENTS_PROJECTION_H
#define UNMIX_EXPERIMENTS_PROJECTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Runs projected to last longer than this on the CPU get a warning (seconds). */
#define UNMIX_CPU_WARN_SECONDS (2.0 * 3600.0)

/* UNMIX_CPU_WARN_SECONDS, or the environment variable of that name when it holds a number >= 0
 * (tests set it to 0 to see the warning on a short run). */
double unmix_cpu_warn_threshold(void);

/* Formats "X h Y min" / "X.Y days" into buf. */
void unmix_format_duration(double seconds, char *buf, size_t len);

/* When on_cpu and steps_left * mean_step_s exceeds threshold_s, writes the warning into buf and
 * returns true; otherwise returns false and leaves buf empty. */
bool unmix_projection_cpu_warning(bool on_cpu, double mean_step_s, int64_t steps_left, double threshold_s, char *buf,
                                  size_t len);

/* The multi-GPU model of docs/scaling.md, applied to any manifest: per step
 *   T(N) = compute + all-reduce,
 *   compute    = model FLOPs of the step at the per-GPU batch / UNMIX_ASSUMED_GPU_FLOPS,
 *   all-reduce = 2(N-1)/N * gradient bytes / busbw(N) + 2(N-1) * alpha (none for N = 1).
 * The inputs are assumptions, not measurements: one H100 at the docs/scaling.md figure for
 * ResNet-50 at 224 px in TF32 (0.67 ms per image forward + backward = 3 x 8.18 GFLOP in our
 * FLOP count), busbw 350 GB/s inside one 8-GPU NVLink node and 40 GB/s across nodes, alpha 5 us.
 * Small images and small per-GPU batches run below that rate, so small-image figures are
 * optimistic; collectives other than the gradient all-reduce (shuffle-BN, Sinkhorn's small
 * all-reduces, SyncBN) are left out. */
#define UNMIX_ASSUMED_GPU_FLOPS (3.0 * 8.18e9 / 0.67e-3)
#define UNMIX_ASSUMED_BUSBW_NODE 350e9 /* bytes/s, <= 8 GPUs (one NVLink node) */
#define UNMIX_ASSUMED_BUSBW_NET 40e9   /* bytes/s, more GPUs (InfiniBand between nodes) */
#define UNMIX_ASSUMED_ALPHA 5e-6       /* seconds per hop */

struct unmix_gpu_projection {
  int gpus;
  int per_gpu_batch;  /* global batch / gpus; 0 when the batch does not split */
  double compute_s;   /* per step */
  double allreduce_s; /* per step */
  double step_s;
  double run_s;       /* steps x step_s */
};

/* flops_per_sample: the method's model FLOPs per sample and step; grad_floats: the floats
 * all-reduced per step; global_batch: the manifest's batch over all GPUs. */
void unmix_projection_gpu(double flops_per_sample, int64_t grad_floats, int global_batch, int64_t steps, int gpus,
                          struct unmix_gpu_projection *out);

#endif
