/* `unmix bench KIND ...`: benchmarks that print measured figures. Never used as tests. */
#include <stdio.h>
#include <string.h>

#include "experiments/bench.h"
#include "experiments/commands.h"

static const struct {
  const char *name;
  const char *summary;
  int (*run)(int argc, char **argv);
} g_kinds[] = {
    {"step", "a manifest's training step on synthetic batches: images/s, TFLOP/s, memory, projection", unmix_bench_step},
    {"ops", "GFLOP/s of conv2d passes at ResNet-18 CIFAR shapes vs SGEMM 2048^3", unmix_bench_ops},
    {"norm", "batch norm forward/backward (+ ReLU) at ResNet-18 CIFAR shapes: ms, GB/s", unmix_bench_norm},
    {"tsne", "seconds per phase of t-SNE on 10,000 synthetic 128-d points", unmix_bench_tsne},
    {"data", "augmented views/s of a recipe through the threaded loader", unmix_bench_data},
    {"comm", "all-reduce GB/s over MPI/NCCL ranks (run under mpirun)", unmix_bench_comm},
};

static void usage(FILE *f) {
  fprintf(f, "usage: unmix bench KIND [options]\n\nkinds:\n");
  for (size_t i = 0; i < sizeof g_kinds / sizeof g_kinds[0]; i++)
    fprintf(f, "  %-6s %s\n", g_kinds[i].name, g_kinds[i].summary);
  fprintf(f, "\n`unmix bench KIND --help` lists each kind's options.\n"
             "example: unmix bench step configs/cifar10/moco_sym_unmix.yaml --steps 5\n");
}

int unmix_cmd_bench(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
    usage(stdout);
    return 0;
  }
  for (size_t i = 0; i < sizeof g_kinds / sizeof g_kinds[0]; i++)
    if (!strcmp(argv[1], g_kinds[i].name)) return g_kinds[i].run(argc - 1, argv + 1);
  fprintf(stderr, "unmix bench: unknown kind '%s'\n", argv[1]);
  usage(stderr);
  return 2;
}
