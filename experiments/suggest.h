/* Did-you-mean for the command line: the closest of a set of names to a typo, and the hint for
 * an unknown option (a manifest key given as --epochs gets "--set train.epochs=VALUE"). */
#ifndef UNMIX_EXPERIMENTS_SUGGEST_H
#define UNMIX_EXPERIMENTS_SUGGEST_H

#include <getopt.h>
#include <stdio.h>

#include "core/util/suggest.h"

/* For an unrecognised `arg` ("--epochs", "--epochs=3", "--unmix.prob") of command `cmd` whose
 * long options are `opts` (NULL-name terminated; may be NULL): prints to f a hint naming the
 * closest option, or the --set form when arg names a manifest key. Returns 1 when it printed. */
int unmix_cli_option_hint(FILE *f, const char *cmd, const struct option *opts, const char *arg);

#endif
