/* `unmix train MANIFEST [--set k=v]... [--out DIR] [--resume] ...`: the CLI of trainer.c. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dist/comm.h"
#include "experiments/commands.h"
#include "experiments/trainer.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: unmix train MANIFEST [options]\n\n"
          "Trains the method a manifest describes (configs/*.yaml) and writes the run directory:\n"
          "  manifest.yaml (resolved), metrics.csv (one row per epoch), checkpoint.safetensors,\n"
          "  status.yaml (provenance, progress) and train.log.\n\n"
          "options:\n"
          "  --set KEY=VALUE     override a manifest key (repeatable), e.g. --set unmix.prob=0.25\n"
          "  --backend NAME      auto, cpu or cuda (same as --set backend=NAME; auto = the GPU when usable)\n"
          "  --out DIR           run directory (default results/runs/<name>)\n"
          "  --resume            continue the checkpoint in DIR (bit-identical on the CPU); starts a\n"
          "                      new run when DIR has none\n"
          "  --stop-after-epochs N   checkpoint and stop after N epochs of this invocation\n"
          "  --stop-after-steps N    checkpoint (mid-epoch) and stop after N steps of this invocation\n"
          "  --quiet             only warnings and errors\n"
          "  --comm KIND         auto (default), single, mpi or nccl (env UNMIX_COMM)\n"
          "  --comm-timeout S    seconds a collective waits for a peer before the run fails\n"
          "                      (env UNMIX_COMM_TIMEOUT, default 300)\n"
          "  --nccl-id-file PATH NCCL id exchange through a shared file, for launchers without MPI\n"
          "                      (srun); env UNMIX_NCCL_ID_FILE\n"
          "  -h, --help          this help\n\n"
          "SIGINT / SIGTERM save a checkpoint and stop (exit 130 / 143); --resume continues.\n"
          "A NaN or infinite loss stops the run with an error; the last checkpoint stays intact.\n\n"
          "Multi-process: `mpirun -np N unmix train ...` trains data-parallel on N ranks (optim.batch_size\n"
          "is the global batch); rank 0 writes the run directory. See README, Multi-process training.\n");
}

static int parse_count(const char *opt, const char *v, long long *out) {
  char *end = NULL;
  long long x = strtoll(v, &end, 10);
  if (!end || *end || x < 1) {
    fprintf(stderr, "unmix train: %s needs a positive integer, got '%s'\n", opt, v);
    return 0;
  }
  *out = x;
  return 1;
}

int unmix_cmd_train(int argc, char **argv) {
  struct unmix_train_options o;
  memset(&o, 0, sizeof o);
  const char **sets = calloc((size_t)argc + 1, sizeof *sets);
  char **owned = calloc((size_t)argc + 1, sizeof *owned);
  int nsets = 0, nowned = 0, rc = 2;
  static const struct option opts[] = {{"set", required_argument, 0, 's'},
                                       {"backend", required_argument, 0, 'b'},
                                       {"out", required_argument, 0, 'o'},
                                       {"resume", no_argument, 0, 'r'},
                                       {"stop-after-epochs", required_argument, 0, 'E'},
                                       {"stop-after-steps", required_argument, 0, 'S'},
                                       {"quiet", no_argument, 0, 'q'},
                                       {"comm", required_argument, 0, 'C'},
                                       {"comm-timeout", required_argument, 0, 'T'},
                                       {"nccl-id-file", required_argument, 0, 'N'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  optind = 1;
  int c;
  long long n;
  while ((c = getopt_long(argc, argv, "s:b:o:rqh", opts, NULL)) != -1) {
    switch (c) {
      case 's':
        if (!strchr(optarg, '=')) {
          fprintf(stderr, "unmix train: --set needs KEY=VALUE, got '%s'\n", optarg);
          goto out;
        }
        sets[nsets++] = optarg;
        break;
      case 'b': {
        size_t len = strlen(optarg) + 16;
        owned[nowned] = malloc(len);
        snprintf(owned[nowned], len, "backend=%s", optarg);
        sets[nsets++] = owned[nowned++];
        break;
      }
      case 'o': o.out_dir = optarg; break;
      case 'r': o.resume = true; break;
      case 'E':
        if (!parse_count("--stop-after-epochs", optarg, &n)) goto out;
        o.stop_after_epochs = (int)n;
        break;
      case 'S':
        if (!parse_count("--stop-after-steps", optarg, &n)) goto out;
        o.stop_after_steps = n;
        break;
      case 'q': o.quiet = true; break;
      case 'C': {
        enum unmix_comm_kind k;
        if (unmix_comm_kind_parse(optarg, &k) != UNMIX_OK) {
          fprintf(stderr, "unmix train: --comm: %s\n", unmix_error_message());
          goto out;
        }
        o.comm = optarg;
        break;
      }
      case 'T':
        if (unmix_comm_parse_timeout(optarg, &o.comm_timeout) != UNMIX_OK) {
          fprintf(stderr, "unmix train: --comm-timeout: %s\n", unmix_error_message());
          goto out;
        }
        break;
      case 'N': o.nccl_id_file = optarg; break;
      case 'h':
        usage(stdout);
        rc = 0;
        goto out;
      default: usage(stderr); goto out;
    }
  }
  if (optind != argc - 1) {
    fprintf(stderr, "unmix train: expected exactly one MANIFEST (got %d)\n\n", argc - optind);
    usage(stderr);
    goto out;
  }
  o.manifest = argv[optind];
  o.overrides = sets;
  o.n_overrides = nsets;
  rc = unmix_train(&o);
out:
  for (int i = 0; i < nowned; i++) free(owned[i]);
  free(owned);
  free(sets);
  return rc;
}
