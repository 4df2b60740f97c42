/* Projected wall time of a training run (steps x measured mean step time, as `unmix bench step`),
 * and the warning for a long run that landed on the CPU (backend auto on a machine without GPU). */
#include "experiments/projection.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double unmix_cpu_warn_threshold(void) {
  const char *e = getenv("UNMIX_CPU_WARN_SECONDS");
  char *end = NULL;
  double v = e && *e ? strtod(e, &end) : -1;
  return e && end && !*end && v >= 0 ? v : UNMIX_CPU_WARN_SECONDS;
}

void unmix_format_duration(double s, char *buf, size_t len) {
  if (s >= 2 * 86400.0) snprintf(buf, len, "%.1f days", s / 86400.0);
  else if (s >= 3600.0) snprintf(buf, len, "%d h %02d min", (int)(s / 3600.0), (int)(s / 60.0) % 60);
  else snprintf(buf, len, "%d min", (int)(s / 60.0 + 0.5));
}

bool unmix_projection_cpu_warning(bool on_cpu, double mean_step_s, int64_t steps_left, double threshold_s, char *buf,
                                  size_t len) {
  if (len) buf[0] = 0;
  const double proj = mean_step_s * (double)steps_left;
  if (!on_cpu || !(proj > threshold_s)) return false;
  char d[64];
  unmix_format_duration(proj, d, sizeof d);
  snprintf(buf, len,
           "this run trains on the CPU: projected %s for the remaining %lld steps (%.2f s/step measured; training "
           "only, the model of `unmix bench step`). A GPU machine runs it with the same manifest (backend: auto); "
           "pass --set backend=cpu to silence this warning",
           d, (long long)steps_left, mean_step_s);
  return true;
}

void unmix_projection_gpu(double flops_per_sample, int64_t grad_floats, int global_batch, int64_t steps, int gpus,
                          struct unmix_gpu_projection *out) {
  memset(out, 0, sizeof *out);
  out->gpus = gpus;
  if (gpus < 1 || global_batch < gpus) return;
  out->per_gpu_batch = global_batch / gpus;
  out->compute_s = flops_per_sample * out->per_gpu_batch / UNMIX_ASSUMED_GPU_FLOPS;
  if (gpus > 1) {
    const double busbw = gpus <= 8 ? UNMIX_ASSUMED_BUSBW_NODE : UNMIX_ASSUMED_BUSBW_NET;
    out->allreduce_s = 2.0 * (gpus - 1) / gpus * 4.0 * (double)grad_floats / busbw + 2.0 * (gpus - 1) * UNMIX_ASSUMED_ALPHA;
  }
  out->step_s = out->compute_s + out->allreduce_s;
  out->run_s = out->step_s * (double)steps;
}
