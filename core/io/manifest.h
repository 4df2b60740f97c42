/* YAML manifests -> struct unmix_config (core/io/config.h): loading with `base:` inheritance
 * and `--set key.path=value` overrides, the table-driven schema that binds and validates
 * every key (core/io/config.c), the canonical resolved dump, and enum <-> name helpers.
 *
 * Manifest rules (the full key list with types, defaults and ranges: `unmix validate --keys`,
 * or the table `g_keys` in core/io/config.c):
 *  - keys are the field paths of config.h (`optim.lr`, `moco.symmetric`, ...), nested as
 *    YAML mappings; a dotted key is NOT accepted as a shortcut for nesting inside a file;
 *  - `base: other.yaml` (top level only; path relative to the including file) inherits:
 *    mappings merge deeply, the including file wins, sequences are replaced whole; chains
 *    are allowed, cycles are an error;
 *  - overrides `key.path=value` apply after inheritance; the value is a YAML scalar or flow
 *    collection (`0.25`, `[60,80]`, `"text"`); the key must be a schema key;
 *  - every error is UNMIX_ERR_CONFIG (UNMIX_ERR_IO for an unreadable file) and names
 *    file:line:column and the key; all errors of a manifest are reported, one per line;
 *  - `data.crops` is a list of 1..4 mappings {nmb, size, min_scale, max_scale} (all four
 *    required); `data.mean`/`data.std` are both [] (the recipe's normalisation) or both
 *    three numbers (sets data.has_norm);
 *  - an empty `name` becomes the manifest file's stem. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#include "core/io/config.h"
#include "core/io/specs.h"
#include "core/util/error.h"

/* ---- loading ------------------------------------------------------------------------- */

/* Loads `path` (following `base:`), applies `overrides` ("key.path=value", in order),
 * validates, and fills `out` (source_path = path, resolved_yaml = the canonical dump).
 * On failure `out` holds the defaults with no owned strings. */
unmix_status unmix_manifest_load(const char *path, const char *const *overrides, int n_overrides,
                                 struct unmix_config *out);
/* Same for manifest text held in memory (e.g. a run's resolved manifest.yaml on resume).
 * `name` is used in messages and as source_path; a `base:` is resolved relative to the
 * directory of `name` (the working directory when `name` has no '/'). */
unmix_status unmix_manifest_load_string(const char *text, const char *name, const char *const *overrides,
                                        int n_overrides, struct unmix_config *out);

/* The reference defaults (FIDELITY §2.1 CIFAR-10 MoCo; FIDELITY §3.1 for the swav block). The
 * struct is zeroed first, so two configs with equal values compare equal with memcmp
 * (pointers aside). Owns nothing. */
void unmix_config_init_defaults(struct unmix_config *cfg);
/* Frees the owned strings (source_path, resolved_yaml) and sets them to NULL. */
void unmix_config_free(struct unmix_config *cfg);
/* The canonical YAML of the whole config: every key, in schema order, no comments.
 * Loading it gives a config equal to `cfg`. Caller frees. */
char *unmix_config_to_yaml(const struct unmix_config *cfg);

/* Compares two manifests (typically resolved dumps) leaf by leaf: calls fn(ctx, "a.b",
 * value in a, value in b) for every dotted key whose value differs (or exists on one side
 * only, shown as "(absent)"); returns how many, or -1 when either text does not parse. */
typedef void (*unmix_manifest_diff_fn)(void *ctx, const char *key, const char *in_a, const char *in_b);
int unmix_manifest_diff(const char *a, const char *b, unmix_manifest_diff_fn fn, void *ctx);

/* ---- the key table ----------------------------------------------------------------- */
int unmix_config_key_count(void);
const char *unmix_config_key_path(int i);
const char *unmix_config_key_type(int i);     /* "int", "float", "bool", "string", "enum", ... */
const char *unmix_config_key_default(int i);  /* YAML text */
/* Human description of the allowed values ("[0, 1]", "moco|swav", ""), written into buf. */
const char *unmix_config_key_allowed(int i, char *buf, size_t len);
bool unmix_config_has_key(const char *path);
/* The closest key or section name by edit distance, or NULL when nothing is close. */
const char *unmix_config_suggest(const char *path);

/* The numeric schema of a key: kind and bounds (±inf when unbounded; *_open = exclusive).
 * Int keys (and int-list items) are bounded by the 32-bit range as well. False when the key
 * does not exist or is not numeric. */
enum unmix_config_range_kind { UNMIX_CONFIG_RANGE_INT, UNMIX_CONFIG_RANGE_U64, UNMIX_CONFIG_RANGE_FLOAT };
struct unmix_config_range {
  double lo, hi;
  bool lo_open, hi_open;
  enum unmix_config_range_kind kind;
};
bool unmix_config_key_range(const char *path, struct unmix_config_range *out);

/* ---- enum names ------------------------------------------------------------------------ */
const char *unmix_precision_name(enum unmix_precision v);
const char *unmix_method_name(enum unmix_method_kind v);
const char *unmix_arch_name(enum unmix_arch v);
const char *unmix_stem_name(enum unmix_stem v);
const char *unmix_head_name(enum unmix_head v);
const char *unmix_optim_name(enum unmix_optim_kind v);
const char *unmix_sched_name(enum unmix_sched_kind v);
const char *unmix_swav_reverse_name(enum unmix_swav_reverse v);
const char *unmix_lincls_name(enum unmix_lincls_protocol v);
/* The value of enum key `key` (e.g. "model.arch") named `name`, or -1. */
int unmix_config_enum_parse(const char *key, const char *name);

/* ---- the parsed YAML tree (shared by manifest.c and config.c) ---------------------------- */
enum unmix_ynode_kind { UNMIX_YNODE_SCALAR = 0, UNMIX_YNODE_SEQ, UNMIX_YNODE_MAP };

struct unmix_ymark {
  char *file;  /* owned; for override values the text "--set key=value" */
  int line;    /* 1-based; 0 = no position (override values, defaults) */
  int col;     /* 1-based */
};

struct unmix_ynode {
  enum unmix_ynode_kind kind;
  struct unmix_ymark mark;
  char *str;                     /* SCALAR: the text */
  bool plain;                    /* SCALAR: unquoted (only plain scalars may be numbers/bools/null) */
  size_t n;                      /* SEQ: items, MAP: pairs */
  struct unmix_ynode **items;    /* SEQ items or MAP values */
  char **keys;                   /* MAP keys */
  struct unmix_ymark *key_marks; /* MAP key positions */
  size_t *index;                 /* MAP: open-addressing hash of keys -> pair index + 1 (0 = empty),
                                    built by manifest.c once a map has 8 pairs, so key lookups stay
                                    O(1) in a manifest of many keys (once a linear scan: quadratic) */
  size_t index_cap;              /* MAP: slots in index (a power of two, or 0) */
};

/* Parses YAML text (one document; an empty document is an empty mapping). Errors name
 * `file` and the position. */
unmix_status unmix_ytree_parse(const char *text, size_t len, const char *file, struct unmix_ynode **out);
void unmix_ytree_free(struct unmix_ynode *n);
/* Key comparisons made by mapping lookups since the process started: lets a test assert that
 * parsing stays linear in the number of keys without timing anything. */
unsigned long long unmix_ytree_key_compares(void);
bool unmix_ynode_is_null(const struct unmix_ynode *n);
/* The value at dotted `path` below a mapping, or NULL; *key_mark (optional) gets the key's mark. */
const struct unmix_ynode *unmix_ytree_find(const struct unmix_ynode *root, const char *path,
                                           const struct unmix_ymark **key_mark);
/* Writes "file:line:col" (or just "file" when line is 0) into buf. */
const char *unmix_ymark_str(const struct unmix_ymark *m, char *buf, size_t len);

/* Binds a merged, overridden tree onto cfg (already holding the defaults): types, ranges,
 * unknown keys, cross-field checks. `file` names the manifest in messages about defaults. */
unmix_status unmix_config_bind(const struct unmix_ynode *root, const char *file, struct unmix_config *cfg);
