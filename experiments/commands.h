/* The table of `unmix` subcommands. Each run() gets argv starting at the command name and
 * returns the process exit status (0 ok, 1 failure, 2 usage error). */
#pragma once
#include <stdbool.h>

struct unmix_command {
  const char *name;
  const char *summary;
  int (*run)(int argc, char **argv);
};
extern const struct unmix_command unmix_commands[];

const char *unmix_version_string(void);

/* OMP_WAIT_POLICY for the long CPU commands (`train`, `bench step`): when the user has not set
 * it, PASSIVE, so that OpenMP threads waiting between parallel regions sleep instead of
 * spinning on cores that other processes (the data loader, another run) need. The OpenMP
 * runtime reads its environment when it is loaded, before main, so
 * unmix_omp_passive_default() sets the variable and re-executes the program (argv from main);
 * it returns without effect when the command is another one or the variable is set, and
 * carries on unchanged if the exec fails. unmix_omp_passive_wanted() is its decision. */
bool unmix_omp_passive_wanted(int argc, char **argv);
void unmix_omp_passive_default(int argc, char **argv);

/* Prints "unmix <cmd>: <message>" for the current error and returns 1. */
int unmix_cmd_fail(const char *cmd);

int unmix_cmd_baseline(int argc, char **argv);
int unmix_cmd_bench(int argc, char **argv);
int unmix_cmd_plot(int argc, char **argv);
int unmix_cmd_collect(int argc, char **argv);
int unmix_cmd_data(int argc, char **argv);
int unmix_cmd_info(int argc, char **argv);
int unmix_cmd_train(int argc, char **argv);
int unmix_cmd_validate(int argc, char **argv);
/* evaluation commands (experiments/cmd_{knn,lincls,tsne,hist,flatness,export}.c) */
int unmix_cmd_knn(int argc, char **argv);
int unmix_cmd_lincls(int argc, char **argv);
int unmix_cmd_tsne(int argc, char **argv);
int unmix_cmd_hist(int argc, char **argv);
int unmix_cmd_flatness(int argc, char **argv);
int unmix_cmd_export(int argc, char **argv);
