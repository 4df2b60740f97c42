/* Shared pieces of the evaluation commands (knn, lincls, tsne, hist, flatness, export):
 * the options every one of them takes (backend, architecture of plain backbones, data
 * location, batch, workers), checked number parsing, and whole-file CSV output written
 * atomically (so a figure never reads half a file). */
#pragma once
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "core/util/error.h"
#include "eval/ckpt_model.h"

/* getopt_long codes of the common options (long-only). */
enum {
  EVALCLI_BACKEND = 1000,
  EVALCLI_ARCH,
  EVALCLI_STEM,
  EVALCLI_WIDTH,
  EVALCLI_PREFIX,
  EVALCLI_DATASET,
  EVALCLI_DATA_ROOT,
  EVALCLI_BATCH,
  EVALCLI_WORKERS
};
#define EVALCLI_LONG_OPTIONS                                                                             \
  {"backend", required_argument, 0, EVALCLI_BACKEND}, {"arch", required_argument, 0, EVALCLI_ARCH},     \
      {"stem", required_argument, 0, EVALCLI_STEM}, {"width", required_argument, 0, EVALCLI_WIDTH},     \
      {"prefix", required_argument, 0, EVALCLI_PREFIX}, {"dataset", required_argument, 0, EVALCLI_DATASET}, \
      {"data-root", required_argument, 0, EVALCLI_DATA_ROOT}, {"batch", required_argument, 0, EVALCLI_BATCH}, \
      {"workers", required_argument, 0, EVALCLI_WORKERS}

struct unmix_evalcli {
  const char *cmd;                      /* "knn", ... (for messages) */
  const char *backend;                  /* NULL = the manifest's when usable here, else cpu */
  struct unmix_eval_open_options open;
  int batch;                            /* 0 = the command's default */
  int workers;                          /* -1 = the manifest's data.workers */
};
void unmix_evalcli_init(struct unmix_evalcli *c, const char *cmd);
/* Handles option code `opt` if it is a common one: 1 handled, 0 not common, -1 bad value
 * (message printed). */
int unmix_evalcli_option(struct unmix_evalcli *c, int opt, const char *arg);
/* The help lines of the common options. */
void unmix_evalcli_help(FILE *f);

/* Checked parsing; on error prints "unmix CMD: FLAG ..." and returns 0. */
int unmix_evalcli_int(const char *cmd, const char *flag, const char *s, long long lo, long long hi, long long *out);
int unmix_evalcli_float(const char *cmd, const char *flag, const char *s, double lo, double hi, double *out);
/* Comma-separated integers in [lo, hi], at most cap. */
int unmix_evalcli_int_list(const char *cmd, const char *flag, const char *s, long long lo, long long hi, int *out,
                           int cap, int *n);


/* A file built in memory and written atomically at commit (temp file + rename). */
struct unmix_evalcli_out {
  FILE *f;
  char *buf;
  size_t len;
};
unmix_status unmix_evalcli_out_open(struct unmix_evalcli_out *o);
/* Writes the file (UNMIX_ERR_IO naming path) and releases the buffer. */
unmix_status unmix_evalcli_out_commit(struct unmix_evalcli_out *o, const char *path);
void unmix_evalcli_out_discard(struct unmix_evalcli_out *o);
