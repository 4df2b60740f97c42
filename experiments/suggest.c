/* Did-you-mean for commands and options (see suggest.h); manifest keys have their own
 * suggestions in core/io/config.c, which this reuses for "--epochs" -> "--set train.epochs=". */
#include "experiments/suggest.h"

#include <ctype.h>
#include <limits.h>
#include <string.h>
#include <strings.h>

#include "core/io/manifest.h"

/* Edit distance with adjacent transpositions ("trian" -> "train" is 1), case-insensitive. */
static int lev(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 63 || lb > 63) return INT_MAX;
  int d[64][64];
  for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
  for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
      int v = d[i - 1][j - 1] + (ca != cb);
      if (d[i - 1][j] + 1 < v) v = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
      if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) && tolower((unsigned char)a[i - 2]) == cb &&
          d[i - 2][j - 2] + 1 < v)
        v = d[i - 2][j - 2] + 1;
      d[i][j] = v;
    }
  return d[la][lb];
}

const char *unmix_suggest(const char *s, const char *const *cands, int n) {
  int best = INT_MAX, limit = (int)strlen(s) / 3;
  const char *bs = NULL;
  if (limit < 1) limit = 1;
  for (int i = 0; i < n; i++) {
    int d = lev(s, cands[i]);
    if (d < best) best = d, bs = cands[i];
  }
  if (best <= limit) return bs;
  for (int i = 0; i < n; i++) { /* "--prob" for "--probability", "valid" for "validate" */
    size_t a = strlen(s), b = strlen(cands[i]), m = a < b ? a : b;
    if (m >= 3 && !strncasecmp(s, cands[i], m)) return cands[i];
  }
  return NULL;
}

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
