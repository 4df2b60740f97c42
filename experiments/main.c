/* The `unmix` command: dispatches to subcommands. */
#include <stdio.h>
#include <string.h>

#include "core/util/blas.h"
#include "experiments/commands.h"

static const struct unmix_command *find(const char *name) {
  for (const struct unmix_command *c = unmix_commands; c->name; c++)
    if (!strcmp(c->name, name)) return c;
  return NULL;
}

static void usage(FILE *f) {
  fprintf(f, "usage: unmix <command> [options]\n\ncommands:\n");
  for (const struct unmix_command *c = unmix_commands; c->name; c++) fprintf(f, "  %-10s %s\n", c->name, c->summary);
  fprintf(f, "\n`unmix <command> --help` describes each command.\n");
}

int main(int argc, char **argv) {
  unmix_blas_fix_coretype(argc, argv);
  if (argc < 2) {
    usage(stderr);
    return 2;
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
    fprintf(stderr, "unmix: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
  }
  return c->run(argc - 1, argv + 1);
}
