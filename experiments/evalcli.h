/* Shared pieces of the evaluation commands (knn, lincls, tsne, hist, flatness, export): a
 * table-driven option parser (each command declares its options once: name, type, range,
 * default, help, target field; the same table parses, validates and prints --help), the
 * options every command takes, and whole-file output written atomically (so a figure never
 * reads half a file). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/util/error.h"
#include "eval/ckpt_model.h"

/* ---- the option table ----------------------------------------------------------------- */
enum unmix_opt_type {
  UNMIX_OPT_FLAG,     /* bool = true; takes no value */
  UNMIX_OPT_INT,      /* long long */
  UNMIX_OPT_U64,      /* struct unmix_opt_u64 (the full range is valid: `set` says it was given) */
  UNMIX_OPT_FLOAT,    /* double */
  UNMIX_OPT_STRING,   /* const char * (points into argv) */
  UNMIX_OPT_CHOICE,   /* const char *: one of `choices`, or of the manifest enum `key` */
  UNMIX_OPT_INT_LIST, /* comma-separated ints: int[cap] at off, int count at count_off */
  UNMIX_OPT_STRINGS   /* repeatable: const char *[cap] at off, int count at count_off */
};

struct unmix_opt_u64 {
  uint64_t v;
  bool set;
};

/* Bounds of a number (INT, U64, FLOAT, INT_LIST items); ±inf = unbounded. */
struct unmix_opt_range {
  double lo, hi;
  bool lo_open, hi_open;
};
#define UNMIX_OPT_IN(a, b) ((struct unmix_opt_range){(a), (b), false, false})

struct unmix_opt {
  const char *name;      /* long name without "--" */
  enum unmix_opt_type type;
  const char *arg;       /* the value's name in --help ("N", "FILE"); NULL for flags and choices */
  /* Where the bounds come from: the manifest key that sets the same quantity (its schema range
   * or enum names, see unmix_config_key_range), else `range` / `choices`. */
  const char *key;
  struct unmix_opt_range range;
  const char *const *choices; /* NULL-terminated */
  const char *def;       /* default value, parsed into the field before argv (NULL = the field's
                          * initial value, described by def_doc) */
  const char *def_doc;   /* the default when it depends on the checkpoint ("the manifest's knn.k") */
  const char *help;      /* one line per '\n', aligned under the first */
  size_t off;            /* the target field in the command's option struct */
  int cap;               /* INT_LIST / STRINGS capacity */
  size_t count_off;      /* INT_LIST / STRINGS count (int) */
};

/* One table applied to one struct. */
struct unmix_optset {
  const struct unmix_opt *opts;
  int n;
  void *base;
};

/* The effective bounds of an option (from its manifest key when it has one). */
struct unmix_opt_range unmix_opt_bounds(const struct unmix_opt *o);

enum { UNMIX_OPTS_OK = 0, UNMIX_OPTS_HELP = 1, UNMIX_OPTS_ERROR = 2 };
/* Parses argv[1..argc-1] against the sets: "--name value", "--name=value", a unique prefix of
 * a name (as getopt_long accepts), "-h"/"--help", "--" ends the options; everything else is a
 * positional argument, returned in order in pos[0..*npos) (pos has room for argc entries).
 * Applies the tables' defaults first. Errors print "unmix CMD: ..." to stderr naming the
 * option and what it accepts (an unknown option gets the closest name, "did you mean"), and
 * return UNMIX_OPTS_ERROR; --help returns UNMIX_OPTS_HELP without printing. */
int unmix_opts_parse(const char *cmd, const struct unmix_optset *sets, int nsets, int argc, char **argv, char **pos,
                     int *npos);
/* The option list of --help, generated from the tables (name, value, help, range, default). */
void unmix_opts_help(FILE *f, const struct unmix_optset *sets, int nsets);

/* ---- the options every evaluation command takes --------------------------------------- */
struct unmix_evalcli {
  const char *cmd;                      /* "knn", ... (for messages) */
  const char *backend;                  /* NULL = the manifest's when usable here, else cpu */
  struct unmix_eval_open_options open;
  long long width;                      /* 0 = from conv1.weight */
  long long batch;                      /* 0 = the command's default */
  long long workers;                    /* -1 = the manifest's data.workers */
};
extern const struct unmix_opt unmix_evalcli_opts[];
extern const int unmix_evalcli_nopts;

/* Which of the common options a command takes: only those that change what it does (an option
 * that would be accepted and ignored is not offered, and is refused naming the command). */
enum {
  UNMIX_EVALCLI_BACKEND = 1u << 0, /* --backend: it computes (a forward pass) */
  UNMIX_EVALCLI_DATA = 1u << 1,    /* --data-root, --dataset: it reads images */
  UNMIX_EVALCLI_FORWARD = 1u << 2, /* --batch, --workers: it runs images through the encoder */
  UNMIX_EVALCLI_PLAIN = 1u << 3,   /* --arch, --stem, --width, --prefix: it takes plain backbones */
  UNMIX_EVALCLI_ALL = 0xfu
};

/* One command: its usage text (before the option list), its own table and its option struct. */
struct unmix_evalcmd {
  const char *name;
  const char *usage;
  const struct unmix_opt *opts;
  int nopts;
  unsigned common;        /* UNMIX_EVALCLI_* */
  const char *batch_help; /* what --batch is for this command (NULL: "forward batch") */
  const char *batch_def;  /* its default (NULL: "the run's optim.batch_size") */
};
/* The common options `cmd` takes, in table order, with --batch described for it; `out` has room
 * for unmix_evalcli_nopts entries. Returns how many. */
int unmix_evalcli_common(const struct unmix_evalcmd *cmd, struct unmix_opt *out);
/* The tables of the six commands (for --help tests and documentation). */
extern const struct unmix_evalcmd unmix_evalcmd_knn, unmix_evalcmd_lincls, unmix_evalcmd_tsne, unmix_evalcmd_hist,
    unmix_evalcmd_flatness, unmix_evalcmd_export;

/* Parses a command line of `cmd` into its option struct `own` and `cli`. Returns -1 to go on
 * (positionals in pos/npos), otherwise the command's exit code: 0 after --help was printed to
 * stdout, 2 after an error was printed to stderr. */
int unmix_evalcli_parse(const struct unmix_evalcmd *cmd, void *own, struct unmix_evalcli *cli, int argc, char **argv,
                        char **pos, int *npos);
/* The full --help text of a command (usage + generated option lists). */
void unmix_evalcli_usage(const struct unmix_evalcmd *cmd, FILE *f);

/* ---- output ----------------------------------------------------------------------------- */
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
