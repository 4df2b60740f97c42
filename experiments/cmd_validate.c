/* `unmix validate`: checks manifests (inheritance, overrides, types, ranges, cross-field
 * rules) without running anything; optionally prints the resolved manifest or the key list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/io/manifest.h"
#include "experiments/commands.h"
#include "experiments/suggest.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: unmix validate FILE... [--set key.path=value ...] [--print]\n"
          "       unmix validate --keys\n\n"
          "Loads each manifest as `unmix train` would (base: inheritance, then the --set overrides\n"
          "in order) and checks every key: unknown keys, types, ranges, names, cross-field rules.\n"
          "Prints 'FILE: ok' or the errors (file:line:column, key); exits 1 if any manifest fails.\n\n"
          "  --set k=v  override a key after inheritance (value: a YAML scalar or [a, b] list)\n"
          "  --print    print each resolved manifest (every key explicit) after its 'ok' line\n"
          "  --keys     list every key with its type, default and allowed values\n\n"
          "example: unmix validate configs/*/*.yaml --set unmix.prob=0.25\n");
}

static void print_keys(void) {
  printf("%-32s %-10s %-24s %s\n", "key", "type", "default", "allowed");
  for (int i = 0; i < unmix_config_key_count(); i++) {
    char allowed[256];
    printf("%-32s %-10s %-24s %s\n", unmix_config_key_path(i), unmix_config_key_type(i), unmix_config_key_default(i),
           unmix_config_key_allowed(i, allowed, sizeof allowed));
  }
}

int unmix_cmd_validate(int argc, char **argv) {
  const char **files = calloc((size_t)argc, sizeof *files);
  const char **sets = calloc((size_t)argc, sizeof *sets);
  if (!files || !sets) {
    free(files);
    free(sets);
    fprintf(stderr, "unmix validate: out of memory\n");
    return 1;
  }
  int nf = 0, ns = 0, rc = 0;
  bool print = false, keys = false, dashdash = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (dashdash || a[0] != '-' || !a[1]) {
      files[nf++] = a;
    } else if (!strcmp(a, "--")) {
      dashdash = true;
    } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      goto out;
    } else if (!strcmp(a, "--print")) {
      print = true;
    } else if (!strcmp(a, "--keys")) {
      keys = true;
    } else if (!strcmp(a, "--set")) {
      if (i + 1 >= argc) {
        fprintf(stderr, "unmix validate: --set needs key.path=value\n");
        rc = 2;
        goto out;
      }
      sets[ns++] = argv[++i];
    } else if (!strncmp(a, "--set=", 6)) {
      sets[ns++] = a + 6;
    } else {
      fprintf(stderr, "unmix validate: unknown option '%s'\n\n", a);
      usage(stderr);
      static const struct option opts[] = {{"set", 1, 0, 0}, {"print", 0, 0, 0}, {"keys", 0, 0, 0}, {"help", 0, 0, 0},
                                           {0, 0, 0, 0}};
      unmix_cli_option_hint(stderr, "validate", opts, a);
      rc = 2;
      goto out;
    }
  }
  if (keys) {
    print_keys();
    if (!nf) goto out;
  }
  if (!nf) {
    fprintf(stderr, "unmix validate: no manifest given\n\n");
    usage(stderr);
    rc = 2;
    goto out;
  }
  for (int i = 0; i < nf; i++) {
    struct unmix_config cfg;
    if (unmix_manifest_load(files[i], sets, ns, &cfg) != UNMIX_OK) {
      fprintf(stderr, "%s: FAILED\n%s\n", files[i], unmix_error_message());
      rc = 1;
      continue;
    }
    printf("%s: ok\n", files[i]);
    if (print) fputs(cfg.resolved_yaml, stdout);
    unmix_config_free(&cfg);
  }
out:
  free(files);
  free(sets);
  return rc;
}
