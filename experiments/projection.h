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

#endif
