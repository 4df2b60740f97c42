/* Edit-distance suggestions (see suggest.h). */
#include "core/util/suggest.h"

#include <ctype.h>
#include <limits.h>
#include <string.h>
#include <strings.h>

/* Optimal-string-alignment distance: Levenshtein plus adjacent transpositions, so "trian" is
 * one edit from "train". */
int unmix_edit_distance(const char *a, const char *b) {
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
  int best = INT_MAX;
  const char *bs = NULL;
  for (int i = 0; i < n; i++) {
    int d = unmix_edit_distance(s, cands[i]);
    if (d < best) {
      best = d;
      bs = cands[i];
    }
  }
  /* a third of the length: "--wd" -> "--w" is a typo, "--k" -> "--t" is not a hint */
  int limit = (int)strlen(s) / 3;
  if (limit < 1) limit = 1;
  if (best <= limit) return bs;
  for (int i = 0; i < n; i++) { /* "--prob" for "--probability", "valid" for "validate" */
    size_t la = strlen(s), lc = strlen(cands[i]), m = la < lc ? la : lc;
    if (m >= 3 && !strncasecmp(s, cands[i], m)) return cands[i];
  }
  return NULL;
}
