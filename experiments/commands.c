/* The subcommand table and helpers shared by the subcommands. */
#include "experiments/commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util/error.h"
#include "core/util/fs.h"
#include "unmix_build_info.h"

const struct unmix_command unmix_commands[] = {
    {"train", "train a manifest's method (MoCo/SwAV +- Un-Mix); resumable", unmix_cmd_train},
    {"info", "print the build, the backends and the BLAS core in use", unmix_cmd_info},
    {"bench", "measure speed: ops, step, data, comm, tsne (prints measured figures)", unmix_cmd_bench},
    {"validate", "check manifests without running (--print: the resolved manifest)", unmix_cmd_validate},
    {"data", "datasets: fetch CIFAR, check a dataset, write synthetic datasets", unmix_cmd_data},
    {"knn", "kNN accuracy of a checkpoint's encoder (the run's monitor, standalone)", unmix_cmd_knn},
    {"lincls", "linear evaluation on frozen features (imagenet | swav-cifar | moco-cifar protocol)", unmix_cmd_lincls},
    {"tsne", "t-SNE of a checkpoint's features (Figure 4): features + 2-D embedding as CSV", unmix_cmd_tsne},
    {"hist", "conv-weight histograms of checkpoints on common bins (Figure 5)", unmix_cmd_hist},
    {"flatness", "sorted softmax of MoCo queries against the queue (motivation figure)", unmix_cmd_flatness},
    {"export", "write a checkpoint's backbone as a torchvision safetensors file (no fc)", unmix_cmd_export},
    {"baseline", "kNN of raw pixels and of the untrained network under a manifest's monitor", unmix_cmd_baseline},
    {"plot", "draw runs' curves (loss, kNN per epoch) from their metrics.csv; --watch redraws", unmix_cmd_plot},
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

bool unmix_omp_passive_wanted(int argc, char **argv) {
  if (argc < 2 || getenv("OMP_WAIT_POLICY")) return false;
  return !strcmp(argv[1], "train") || (argc > 2 && !strcmp(argv[1], "bench") && !strcmp(argv[2], "step"));
}

void unmix_omp_passive_default(int argc, char **argv) {
  if (!unmix_omp_passive_wanted(argc, argv)) return;
  setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  setenv("UNMIX_OMP_WAIT_DEFAULTED", "1", 1);
  unmix_fs_reexec_self(argv);
  /* exec failed: run on with the runtime's own policy (it read the environment at load) */
  unsetenv("OMP_WAIT_POLICY");
  unsetenv("UNMIX_OMP_WAIT_DEFAULTED");
}
