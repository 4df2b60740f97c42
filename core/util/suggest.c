/* Edit-distance suggestions (see suggest.h). */
#include "core/util/suggest.h"

#include <ctype.h>
#include <limits.h>
#include <string.h>

int unmix_edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 255 || lb > 255) return INT_MAX;
  int row[256];
  for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
  for (size_t i = 1; i <= la; i++) {
    int diag = row[0];
    row[0] = (int)i;
    for (size_t j = 1; j <= lb; j++) {
      int up = row[j];
      int cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
      int v = diag + cost;
      if (row[j] + 1 < v) v = row[j] + 1;
      if (row[j - 1] + 1 < v) v = row[j - 1] + 1;
      row[j] = v;
      diag = up;
    }
  }
  return row[lb];
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
  /* a quarter of the length: "--wd" -> "--w" is a typo, "--k" -> "--t" is not a hint */
  int limit = (int)strlen(s) / 4;
  if (limit < 1) limit = 1;
  return best <= limit ? bs : NULL;
}
