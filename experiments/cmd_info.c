/* `unmix info`: what this build contains and what the machine offers. */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "core/backend/backend.h"
#include "core/util/blas.h"
#include "experiments/commands.h"

int unmix_cmd_info(int argc, char **argv) {
  if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    printf("usage: unmix info\n\nPrints the version, compiled-in backends (and whether each is usable here),\n"
           "the OpenBLAS kernel core and thread counts, and which kernels each backend runs (on\n"
           "the CPU: fp32, and bf16 on the CPU's bf16 units through oneDNN where present).\n"
           "`backend: auto` (the default) uses a backend listed as usable: the GPU when there\n"
           "is one, else the CPU.\n\n"
           "example: unmix info\n");
    return 0;
  }
  if (argc > 1) {
    fprintf(stderr, "unmix info: unexpected argument '%s'\n", argv[1]);
    return 2;
  }
  unmix_blas_init();
  printf("%s\n", unmix_version_string());
  printf("backends:");
  for (const char *const *n = unmix_backend_names(); *n; n++)
    printf(" %s(%s)", *n, unmix_backend_available(*n) ? "usable" : "no device");
  printf("\n");
  printf("blas: %s\n", unmix_blas_describe());
  for (const char *const *n = unmix_backend_names(); *n; n++) {
    const struct unmix_backend *be;
    if (unmix_backend_get(*n, &be) != UNMIX_OK) {
      printf("%s\n", unmix_error_message());
      unmix_error_clear();
      continue;
    }
    if (be->describe_kernels) printf("%s\n", be->describe_kernels());
  }
  printf("openmp: %d threads\n", omp_get_max_threads());
  return 0;
}
