/* The `unmix` command: dispatches to subcommands; `unmix help CMD` is `unmix CMD --help`, and a
 * mistyped command gets the closest one suggested. */
#include <stdio.h>
#include <string.h>

#include "core/util/blas.h"
#include "experiments/commands.h"
#include "experiments/suggest.h"

static const struct unmix_command *find(const char *name) {
  for (const struct unmix_command *c = unmix_commands; c->name; c++)
    if (!strcmp(c->name, name)) return c;
  return NULL;
}

static void usage(FILE *f) {
  fprintf(f, "usage: unmix <command> [options]\n\ncommands:\n");
  for (const struct unmix_command *c = unmix_commands; c->name; c++) fprintf(f, "  %-10s %s\n", c->name, c->summary);
  fprintf(f, "\n`unmix help <command>` (or `unmix <command> --help`) describes each command.\n"
             "example: unmix train configs/cifar10/moco_sym_unmix.yaml --set train.epochs=10\n");
}

int main(int argc, char **argv) {
  unmix_omp_passive_default(argc, argv);
  unmix_blas_fix_coretype(argc, argv);
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  if (!strcmp(argv[1], "help") && argc > 2) { /* unmix help CMD [SUB] == unmix CMD [SUB] --help */
    const struct unmix_command *c = find(argv[2]);
    if (!c) {
      argv[1] = argv[2];
      goto unknown;
    }
    char *args[4] = {argv[2], argc > 3 ? argv[3] : (char *)"--help", (char *)"--help", NULL};
    return c->run(argc > 3 ? 3 : 2, args);
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("%s\n", unmix_version_string());
    return 0;
  }
  const struct unmix_command *c = find(argv[1]);
  if (!c) {
  unknown:;
    const char *names[64];
    int n = 0;
    for (const struct unmix_command *k = unmix_commands; k->name && n < 64; k++) names[n++] = k->name;
    const char *s = unmix_suggest(argv[1], names, n);
    if (s) {
      fprintf(stderr, "unmix: unknown command '%s'; did you mean '%s'?  (unmix %s --help)\n", argv[1], s, s);
      return 2;
    }
    fprintf(stderr, "unmix: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
  }
  return c->run(argc - 1, argv + 1);
}
