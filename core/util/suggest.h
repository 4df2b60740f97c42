/* "Did you mean": the closest of a list of names by edit distance, for messages about an
 * unknown option or key. */
#pragma once

/* Edit distance (Levenshtein + adjacent transpositions), case-insensitive; INT_MAX for strings
 * over 63 bytes. */
int unmix_edit_distance(const char *a, const char *b);
/* The candidate closest to s when it is within a typo's distance (max(1, len(s)/3) edits),
 * else the first candidate that s prefixes or that prefixes s (3 characters at least), else
 * NULL. Ties go to the first candidate. */
const char *unmix_suggest(const char *s, const char *const *cands, int n);
