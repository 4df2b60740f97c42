/* Op profiling for `unmix bench step --profile`: a copy of a backend's table whose ops time
 * each call (per op: calls, seconds), and a table of the time per op family and phase.
 * Only code handed the wrapped table is timed; the plain table is untouched (no cost off). */
#pragma once
#include <stdint.h>
#include <stdio.h>

#include "core/backend/backend.h"

/* The profiling table over be (one at a time: a second call re-targets it) with the
 * counters reset. On a GPU each op waits for the device before and after itself. */
const struct unmix_backend *unmix_profile_wrap(const struct unmix_backend *be);
void unmix_profile_reset(void);
double unmix_profile_seconds(enum unmix_op op);
int64_t unmix_profile_calls(enum unmix_op op);
/* "forward", "backward" (from the op's name) or "other" (element-wise, optimiser, ...). */
const char *unmix_op_phase(enum unmix_op op);
/* The table: family, phase, calls/step, ms/step, share of step_seconds (the measured mean
 * step; 0: share of the ops' total), rows by time; then the ops' total and the time spent
 * outside the ops (host work, memory management). */
void unmix_profile_print(FILE *f, int steps, double step_seconds);
