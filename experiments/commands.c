/* The subcommand table and helpers shared by the subcommands. */
#include "experiments/commands.h"

#include <stdio.h>

#include "core/util/error.h"
#include "unmix_build_info.h"

const struct unmix_command unmix_commands[] = {
    {"train", "train a manifest's method (MoCo/SwAV +- Un-Mix); resumable", unmix_cmd_train},
    {"info", "print the build, the backends and the BLAS core in use", unmix_cmd_info},
    {"bench", "measure speed: ops (conv/GEMM GFLOP/s), data (views/s), tsne", unmix_cmd_bench},
    {"validate", "check manifests without running (--print: the resolved manifest)", unmix_cmd_validate},
    {"data", "datasets: fetch CIFAR, check a dataset, write synthetic datasets", unmix_cmd_data},
    {"collect", "gather run directories into results tables (ours | paper | delta | provenance)", unmix_cmd_collect},
    {NULL, NULL, NULL},
};

const char *unmix_version_string(void) {
  return "unmix " UNMIX_VERSION " (" UNMIX_GIT_COMMIT ", " UNMIX_BUILD_TYPE ")";
}

int unmix_cmd_fail(const char *cmd) {
  fprintf(stderr, "unmix %s: %s: %s\n", cmd, unmix_status_name(unmix_error_code()), unmix_error_message());
  return 1;
}
