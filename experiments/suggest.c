/* The command line's option hint (see suggest.h) on top of core/util/suggest; manifest keys have
 * their own suggestions in core/io/config.c, which this reuses for "--epochs" -> "--set train.epochs=". */
#include "experiments/suggest.h"

#include <string.h>
#include <strings.h>

#include "core/io/manifest.h"

int unmix_cli_option_hint(FILE *f, const char *cmd, const struct option *opts, const char *arg) {
  if (!arg || strncmp(arg, "--", 2) != 0 || !arg[2]) return 0;
  char name[128];
  snprintf(name, sizeof name, "%.*s", (int)strcspn(arg + 2, "="), arg + 2);
  const char *value = strchr(arg, '=') ? strchr(arg, '=') + 1 : "VALUE";
  /* a manifest key given as an option: --epochs, --train.epochs, --batch-size */
  char key[128];
  snprintf(key, sizeof key, "%s", name);
  for (char *p = key; *p; p++)
    if (*p == '-') *p = '_';
  const char *k = unmix_config_has_key(key) ? key : unmix_config_suggest(key);
  if (k && strchr(k, '.') && !unmix_config_has_key(name)) {
    /* only a plausible key: the leaf or the whole path must match closely */
    const char *leaf = strrchr(k, '.') + 1;
    if (!strcmp(k, key) || !strcasecmp(leaf, key) || unmix_suggest(key, &leaf, 1)) {
      fprintf(f, "unmix %s: '--%s' is not an option; manifest keys are set with --set: --set %s=%s\n", cmd, name, k,
              value);
      return 1;
    }
  }
  if (opts) {
    const char *names[64];
    int n = 0;
    for (const struct option *o = opts; o->name && n < 64; o++) names[n++] = o->name;
    const char *s = unmix_suggest(name, names, n);
    if (s) {
      fprintf(f, "unmix %s: unknown option '--%s'; did you mean --%s?\n", cmd, name, s);
      return 1;
    }
  }
  return 0;
}
