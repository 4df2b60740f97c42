/* The table of `unmix` subcommands. Each run() gets argv starting at the command name and
 * returns the process exit status (0 ok, 1 failure, 2 usage error). */
#pragma once

struct unmix_command {
  const char *name;
  const char *summary;
  int (*run)(int argc, char **argv);
};
extern const struct unmix_command unmix_commands[];

const char *unmix_version_string(void);

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
