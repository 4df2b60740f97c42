/* OpenBLAS set-up. Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH) misreads some CPUs (AVX-512
 * EPYCs on cloud VMs among them) as "Prescott" and runs SGEMM ~4x slower. unmix detects a
 * kernel core weaker than the CPU's features and fixes it for the process by re-executing
 * itself with OPENBLAS_CORETYPE set (OpenBLAS reads it only when the library loads). */
#pragma once
#include <stdbool.h>

/* Call first thing in main(): may execv() the program again with OPENBLAS_CORETYPE set.
 * Does nothing when the variable is already set or UNMIX_NO_BLAS_FIX=1. */
void unmix_blas_fix_coretype(int argc, char **argv);
/* Idempotent: logs (debug) the core in use and warns with the exact remedy when it is
 * weaker than the CPU supports and could not be fixed. */
void unmix_blas_init(void);
/* The OpenBLAS core in use ("SkylakeX", ...), and the best core this CPU supports. */
const char *unmix_blas_corename(void);
const char *unmix_blas_best_core(void);
bool unmix_blas_core_is_weak(void);
int unmix_blas_threads(void);
/* The decision, as a pure function: the core to force for a library reporting `reported`
 * on a CPU whose best core is `best`, or NULL when no fix is needed. */
const char *unmix_blas_fix_for(const char *reported, const char *best);
/* One line for logs: "OpenBLAS core SkylakeX (auto), 2 threads" plus a note when the
 * environment pins a weaker core than the CPU supports. */
const char *unmix_blas_describe(void);
/* OpenMP's OMP_WAIT_POLICY in effect, for logs: the user's value, "PASSIVE (unmix's default
 * when unset)" (`unmix train` and `bench step` set it, experiments/commands.c), or "unset
 * (...)". */
const char *unmix_omp_wait_policy_describe(void);
