/* `unmix collect [RUNS_DIR...] [--out DIR] [--paper CSV] [--tables T,...] [--print]`: the CLI of
 * collect.c — run directories in, one CSV + Markdown results table per paper table out. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "experiments/collect.h"
#include "experiments/commands.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: unmix collect [RUNS_DIR...] [options]\n\n"
          "Gathers run directories (written by unmix train; default results/runs, searched 4 levels\n"
          "deep) into one table per results table: OUT/<table>.csv and OUT/<table>.md with our number,\n"
          "the paper's, the difference, the row's status (full | partial | smoke | not run) and each\n"
          "run's provenance (commit, manifest md5, backend, device, precision, epochs, dates).\n"
          "A run's manifest `paper:` block (table, dataset, method, variant, unmix, epochs, metric)\n"
          "places it in a table. Tables: cifar-moco, swav-cifar-repo, swav-cifar-paper,\n"
          "imagenet-linear, sweep-prob, sweep-beta, demo, and any other table a run names.\n"
          "Runs of one row that differ only by seed (make SEEDS=n) are averaged: ours = the mean,\n"
          "ours_std = the sample std (empty for one seed), seeds = how many.\n\n"
          "options:\n"
          "  --out DIR       where the tables go (default results)\n"
          "  --paper CSV     the paper's numbers (default results/paper/paper_results.csv)\n"
          "  --tables LIST   only these tables (comma-separated), e.g. --tables demo\n"
          "  --print         print each table's Markdown to stdout\n"
          "  --quiet         no summary lines on stderr\n"
          "  -h, --help      this help\n\n"
          "A malformed input (status.yaml, manifest.yaml, metrics.csv, lincls.csv, the paper CSV)\n"
          "is an error naming the file and line; nothing is written then.\n\n"
          "example: unmix collect results/runs --out results --print\n");
}

int unmix_cmd_collect(int argc, char **argv) {
  struct unmix_collect_options o;
  memset(&o, 0, sizeof o);
  char *tables_arg = NULL;
  const char **tables = NULL;
  int rc = 2;
  static const struct option opts[] = {{"out", required_argument, 0, 'o'},   {"paper", required_argument, 0, 'p'},
                                       {"tables", required_argument, 0, 't'}, {"print", no_argument, 0, 'P'},
                                       {"quiet", no_argument, 0, 'q'},       {"help", no_argument, 0, 'h'},
                                       {0, 0, 0, 0}};
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, "o:p:t:qh", opts, NULL)) != -1) {
    switch (c) {
      case 'o': o.out_dir = optarg; break;
      case 'p': o.paper_csv = optarg; break;
      case 't': {
        free(tables_arg);
        free(tables);
        tables_arg = strdup(optarg);
        tables = calloc(strlen(optarg) + 1, sizeof *tables);
        if (!tables_arg || !tables) {
          fprintf(stderr, "unmix collect: out of memory\n");
          rc = 1;
          goto out;
        }
        o.n_tables = 0;
        char *save = NULL;
        for (char *t = strtok_r(tables_arg, ",", &save); t; t = strtok_r(NULL, ",", &save)) tables[o.n_tables++] = t;
        if (o.n_tables == 0) {
          fprintf(stderr, "unmix collect: --tables needs at least one table name\n");
          goto out;
        }
        o.tables = tables;
        break;
      }
      case 'P': o.print = true; break;
      case 'q': o.quiet = true; break;
      case 'h':
        usage(stdout);
        rc = 0;
        goto out;
      default: usage(stderr); goto out;
    }
  }
  o.run_dirs = (const char *const *)(argv + optind);
  o.n_run_dirs = argc - optind;
  rc = unmix_collect(&o) == UNMIX_OK ? 0 : unmix_cmd_fail("collect");
out:
  free(tables);
  free(tables_arg);
  return rc;
}
