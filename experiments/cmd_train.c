/* `unmix train MANIFEST [--set k=v]... [--out DIR] [--resume|--restart] ...` and
 * `unmix train --resume DIR [--set k=v]...`: the CLI of trainer.c. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/comm/comm.h"
#include "experiments/commands.h"
#include "experiments/suggest.h"
#include "experiments/trainer.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: unmix train MANIFEST [options]\n"
          "       unmix train --resume DIR [--set train.epochs=N] [options]\n\n"
          "Trains the method a manifest describes (configs/*.yaml) and writes the run directory:\n"
          "  manifest.yaml (resolved), metrics.csv (one row per epoch), checkpoint.safetensors,\n"
          "  status.yaml (provenance, progress) and train.log.\n\n"
          "options:\n"
          "  --set KEY=VALUE     override a manifest key (repeatable), e.g. --set unmix.prob=0.25\n"
          "  --backend NAME      auto, cpu or cuda (same as --set backend=NAME; auto = the GPU when usable)\n"
          "  --out DIR           run directory (default results/runs/<name>)\n"
          "  --resume            continue the checkpoint in DIR (bit-identical on the CPU); starts a\n"
          "                      new run only when DIR has no checkpoint and no finished epoch.\n"
          "                      `--resume DIR` alone reads DIR/manifest.yaml; a manifest that differs\n"
          "                      from the checkpoint's is refused with the differing keys, except\n"
          "                      train.epochs (extends a finished run), train.log_every,\n"
          "                      train.checkpoint_every, data.workers and data.prefetch\n"
          "  --restart           DIR holds an old run: move its files into DIR/previous-<time>/ and\n"
          "                      start over (nothing is deleted)\n"
          "  --stop-after-epochs N   checkpoint and stop after N epochs of this invocation\n"
          "  --stop-after-steps N    checkpoint (mid-epoch) and stop after N steps of this invocation\n"
          "  --quiet             only warnings and errors\n"
          "  --tensorboard       also write DIR/events.out.tfevents.unmix: metrics.csv's columns as\n"
          "                      scalars epoch/<column> and steps.csv's lr, loss, lam as step/<column>,\n"
          "                      for TensorBoard pointed at DIR (rebuilt from the CSVs on --resume;\n"
          "                      env UNMIX_TENSORBOARD=1 does the same)\n"
          "  --comm KIND         auto (default), single, mpi or nccl (env UNMIX_COMM)\n"
          "  --comm-timeout S    seconds a collective waits for a peer before the run fails\n"
          "                      (env UNMIX_COMM_TIMEOUT, default 300)\n"
          "  --nccl-id-file PATH NCCL id exchange through a shared file, for launchers without MPI\n"
          "                      (srun); env UNMIX_NCCL_ID_FILE\n"
          "  -h, --help          this help\n\n"
          "SIGINT / SIGTERM save a checkpoint and stop (exit 130 / 143); --resume continues.\n"
          "DIR is locked while a run trains in it: a second `unmix train` into it fails.\n"
          "A NaN or infinite loss, or non-finite weights, stop the run with an error; the last\n"
          "checkpoint stays intact (a non-finite checkpoint is never written or loaded).\n\n"
          "Multi-process: `mpirun -np N unmix train ...` trains data-parallel on N ranks (optim.batch_size\n"
          "is the global batch); rank 0 writes the run directory. See README, Multi-process training.\n\n"
          "example: unmix train configs/cifar10/moco_sym_unmix.yaml --set train.epochs=10 --out results/runs/try\n"
          "         unmix train configs/fmnist/moco_sym.yaml --out runs/a --set train.epochs=2\n"
          "         unmix train --resume runs/a --set train.epochs=4     # extend the finished run\n");
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
                                       {"restart", no_argument, 0, 'R'},
                                       {"stop-after-epochs", required_argument, 0, 'E'},
                                       {"stop-after-steps", required_argument, 0, 'S'},
                                       {"quiet", no_argument, 0, 'q'},
                                       {"tensorboard", no_argument, 0, 'B'},
                                       {"comm", required_argument, 0, 'C'},
                                       {"comm-timeout", required_argument, 0, 'T'},
                                       {"nccl-id-file", required_argument, 0, 'N'},
                                       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  /* make targets reach the trainer through run_row.sh, which passes only --set: the env too */
  const char *tb_env = getenv("UNMIX_TENSORBOARD");
  o.tensorboard = tb_env && *tb_env && strcmp(tb_env, "0") != 0;
  optind = 1;
  int c;
  long long n;
  while ((c = getopt_long(argc, argv, "s:b:o:rRqh", opts, NULL)) != -1) {
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
      case 'R': o.restart = true; break;
      case 'E':
        if (!parse_count("--stop-after-epochs", optarg, &n)) goto out;
        o.stop_after_epochs = (int)n;
        break;
      case 'S':
        if (!parse_count("--stop-after-steps", optarg, &n)) goto out;
        o.stop_after_steps = n;
        break;
      case 'q': o.quiet = true; break;
      case 'B': o.tensorboard = true; break;
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
      default:
        usage(stderr);
        unmix_cli_option_hint(stderr, "train", opts, argv[optind - 1]); /* --epochs -> --set train.epochs= */
        goto out;
    }
  }
  if (optind != argc - 1) {
    fprintf(stderr, "unmix train: expected exactly one MANIFEST (or --resume DIR) (got %d)\n\n", argc - optind);
    usage(stderr);
    goto out;
  }
  o.manifest = argv[optind];
  struct stat sb;
  if (o.resume && stat(o.manifest, &sb) == 0 && S_ISDIR(sb.st_mode)) {
    /* `--resume DIR`: the run's own resolved manifest, in its own directory */
    if (o.out_dir && strcmp(o.out_dir, o.manifest) != 0) {
      fprintf(stderr, "unmix train: --resume %s resumes that directory; --out %s names another\n", o.manifest,
              o.out_dir);
      goto out;
    }
    size_t len = strlen(o.manifest) + 32;
    owned[nowned] = malloc(len);
    snprintf(owned[nowned], len, "%s/manifest.yaml", o.manifest);
    o.out_dir = o.manifest;
    o.manifest = owned[nowned++];
    if (stat(o.manifest, &sb) != 0) {
      fprintf(stderr, "unmix train: --resume %s: no %s (%s): not a run directory\n", o.out_dir, o.manifest,
              strerror(errno));
      goto out;
    }
  }
  o.overrides = sets;
  o.n_overrides = nsets;
  rc = unmix_train(&o);
out:
  for (int i = 0; i < nowned; i++) free(owned[i]);
  free(owned);
  free(sets);
  return rc;
}
