/* Did-you-mean for the command line: the closest of a set of names to a typo, and the hint for
 * an unknown option (a manifest key given as --epochs gets "--set train.epochs=VALUE"). */
#ifndef UNMIX_EXPERIMENTS_SUGGEST_H
#define UNMIX_EXPERIMENTS_SUGGEST_H

#include <getopt.h>
#include <stdio.h>

/* The closest of cands[0..n) to s within a typo's distance (case-insensitive edit distance at
 * most max(1, len/3), or a prefix of at least 3 characters either way), or NULL. */
const char *unmix_suggest(const char *s, const char *const *cands, int n);

/* For an unrecognised `arg` ("--epochs", "--epochs=3", "--unmix.prob") of command `cmd` whose
 * long options are `opts` (NULL-name terminated; may be NULL): prints to f a hint naming the
 * closest option, or the --set form when arg names a manifest key. Returns 1 when it printed. */
int unmix_cli_option_hint(FILE *f, const char *cmd, const struct option *opts, const char *arg);

#endif
