/* "Did you mean": the closest of a list of names by edit distance, for messages about an
 * unknown command, option or key. One implementation for the whole program (the command
 * line in experiments/ and the evaluation commands' option tables use it). */
#pragma once

/* Edit distance with adjacent transpositions ("trian" -> "train" is 1), case-insensitive;
 * INT_MAX when a string is longer than 63 bytes. */
int unmix_edit_distance(const char *a, const char *b);
/* The closest of cands[0..n) to s within a typo's distance (at most max(1, len(s)/3) edits;
 * ties go to the first), else a candidate sharing a prefix of at least 3 characters with s
 * ("prob" for "probability", "valid" for "validate"), else NULL. */
const char *unmix_suggest(const char *s, const char *const *cands, int n);
