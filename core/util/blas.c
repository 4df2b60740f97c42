/* OpenBLAS core-type detection and the re-exec fix (see blas.h). */
#include "core/util/blas.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util/fs.h"
#include "core/util/log.h"

char *openblas_get_corename(void);
int openblas_get_num_threads(void);

/* 3: AVX-512 kernels, 2: AVX2/FMA, 1: AVX, 0: SSE or unknown. */
static int core_level(const char *name) {
  static const char *l3[] = {"SkylakeX", "Cooperlake", "SapphireRapids", "Sapphirerapids", NULL};
  static const char *l2[] = {"Haswell", "Zen", "SkylakeX", NULL};
  static const char *l1[] = {"Sandybridge", "Bulldozer", "Piledriver", "Steamroller", "Excavator", NULL};
  for (int i = 0; l3[i]; i++) if (!strcasecmp(name, l3[i])) return 3;
  for (int i = 0; l2[i]; i++) if (!strcasecmp(name, l2[i])) return 2;
  for (int i = 0; l1[i]; i++) if (!strcasecmp(name, l1[i])) return 1;
  return 0;
}

const char *unmix_blas_best_core(void) {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
  if (__builtin_cpu_supports("avx")) return "Sandybridge";
#endif
  return NULL;
}

const char *unmix_blas_corename(void) {
  const char *c = openblas_get_corename();
  return c ? c : "unknown";
}

const char *unmix_blas_fix_for(const char *reported, const char *best) {
  if (!best || !reported) return NULL;
  return core_level(reported) < core_level(best) ? best : NULL;
}

bool unmix_blas_core_is_weak(void) { return unmix_blas_fix_for(unmix_blas_corename(), unmix_blas_best_core()) != NULL; }

int unmix_blas_threads(void) { return openblas_get_num_threads(); }

void unmix_blas_fix_coretype(int argc, char **argv) {
  (void)argc;
  if (getenv("OPENBLAS_CORETYPE")) return;
  const char *no = getenv("UNMIX_NO_BLAS_FIX");
  if (no && strcmp(no, "0") != 0) return;
  if (!unmix_blas_core_is_weak()) return;
  const char *best = unmix_blas_best_core();
  setenv("OPENBLAS_CORETYPE", best, 1);
  setenv("UNMIX_BLAS_FIXED_FROM", unmix_blas_corename(), 1);
  unmix_fs_reexec_self(argv);
  /* exec failed: carry on with the slow core, and say how to fix it. */
  unsetenv("OPENBLAS_CORETYPE");
}

void unmix_blas_init(void) {
  static int done = 0;
  if (done) return;
  done = 1;
  const char *from = getenv("UNMIX_BLAS_FIXED_FROM");
  if (from)
    unmix_log_debug("BLAS: OpenBLAS misdetected this CPU as %s; re-executed with OPENBLAS_CORETYPE=%s", from,
                    unmix_blas_corename());
  /* A pinned OPENBLAS_CORETYPE is the user's choice: unmix_blas_describe() mentions it.
   * An auto-detected weak core that the re-exec could not fix gets a warning. */
  if (!getenv("OPENBLAS_CORETYPE") && unmix_blas_core_is_weak())
    unmix_log_warn("OpenBLAS uses the '%s' kernels but this CPU supports '%s' (SGEMM runs several times "
                   "slower). Fix: export OPENBLAS_CORETYPE=%s",
                   unmix_blas_corename(), unmix_blas_best_core(), unmix_blas_best_core());
}

const char *unmix_blas_describe(void) {
  static char buf[256];
  const char *env = getenv("OPENBLAS_CORETYPE");
  const char *from = getenv("UNMIX_BLAS_FIXED_FROM");
  const char *how = from ? "fixed by unmix" : env ? "OPENBLAS_CORETYPE" : "auto-detected";
  int n = snprintf(buf, sizeof buf, "OpenBLAS core %s (%s), %d threads", unmix_blas_corename(), how,
                   unmix_blas_threads());
  if (from && n > 0 && (size_t)n < sizeof buf)
    snprintf(buf + n, sizeof buf - (size_t)n, "; OpenBLAS had detected %s", from);
  else if (env && !from && unmix_blas_core_is_weak() && n > 0 && (size_t)n < sizeof buf)
    snprintf(buf + n, sizeof buf - (size_t)n, "; note: this CPU supports %s kernels (faster SGEMM)",
             unmix_blas_best_core());
  return buf;
}

const char *unmix_omp_wait_policy_describe(void) {
  const char *p = getenv("OMP_WAIT_POLICY");
  if (!p) return "unset (the OpenMP runtime's default)";
  return getenv("UNMIX_OMP_WAIT_DEFAULTED") ? "PASSIVE (unmix's default when unset)" : p;
}
