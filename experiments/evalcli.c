/* The evaluation commands' option parser and --help generator (one table per command, see
 * evalcli.h), their common options, and atomic whole-file output. */
#include "experiments/evalcli.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/io/atomic.h"
#include "core/io/manifest.h"
#include "core/util/suggest.h"

#define MAX_CHOICES 16
#define HELP_COLUMN 22

/* ---- bounds and choices ------------------------------------------------------------------ */

struct unmix_opt_range unmix_opt_bounds(const struct unmix_opt *o) {
  struct unmix_config_range cr;
  if (o->key && unmix_config_key_range(o->key, &cr)) return (struct unmix_opt_range){cr.lo, cr.hi, cr.lo_open, cr.hi_open};
  return o->range;
}

/* The allowed names of a CHOICE into names[] (pointers into buf); returns the count. */
static int choices_of(const struct unmix_opt *o, char *buf, size_t len, const char **names) {
  int n = 0;
  if (!o->key) {
    for (; o->choices && o->choices[n] && n < MAX_CHOICES; n++) names[n] = o->choices[n];
    return n;
  }
  /* the manifest key's names ("a|b|c"): the same list the manifest accepts */
  buf[0] = 0;
  for (int i = 0; i < unmix_config_key_count(); i++)
    if (!strcmp(unmix_config_key_path(i), o->key)) unmix_config_key_allowed(i, buf, len);
  for (char *p = buf; *p && n < MAX_CHOICES;) {
    names[n++] = p;
    char *bar = strchr(p, '|');
    if (!bar) break;
    *bar = 0;
    p = bar + 1;
  }
  return n;
}

/* "a or b", "a, b or c" */
static void or_list(const char *const *names, int n, char *buf, size_t len) {
  size_t k = 0;
  buf[0] = 0;
  for (int i = 0; i < n && k < len; i++)
    k += (size_t)snprintf(buf + k, len - k, "%s%s", i == 0 ? "" : i == n - 1 ? " or " : ", ", names[i]);
}

static bool in_bounds(double v, const struct unmix_opt_range *r) {
  if (r->lo_open ? !(v > r->lo) : !(v >= r->lo)) return false;
  if (r->hi_open ? !(v < r->hi) : !(v <= r->hi)) return false;
  return true;
}

/* "in 1..100", ">= 1" (ints); "in [0, 1)", "> 0" (numbers); "" when unbounded */
static const char *bounds_str(const struct unmix_opt_range *r, bool integer, char *buf, size_t len) {
  const bool lo = isfinite(r->lo) && !(integer && r->lo <= INT_MIN), hi = isfinite(r->hi) && !(integer && r->hi >= INT_MAX);
  if (integer) {
    /* integer bounds are inclusive: an open one is the next integer */
    long long a = (long long)(r->lo_open ? floor(r->lo) + 1 : ceil(r->lo));
    long long b = hi ? (long long)(r->hi_open ? ceil(r->hi) - 1 : floor(r->hi)) : 0;
    if (lo && hi) snprintf(buf, len, "in %lld..%lld", a, b);
    else if (lo) snprintf(buf, len, ">= %lld", a);
    else if (hi) snprintf(buf, len, "<= %lld", b);
    else buf[0] = 0;
  } else {
    if (lo && hi)
      snprintf(buf, len, "in %c%g, %g%c", r->lo_open ? '(' : '[', r->lo, r->hi, r->hi_open ? ')' : ']');
    else if (lo) snprintf(buf, len, "%s %g", r->lo_open ? ">" : ">=", r->lo);
    else if (hi) snprintf(buf, len, "%s %g", r->hi_open ? "<" : "<=", r->hi);
    else buf[0] = 0;
  }
  return buf;
}

/* ---- value parsing ------------------------------------------------------------------------ */

static bool parse_ll(const char *s, long long *out) {
  char *end = NULL;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  if (errno || !end || end == s || *end) return false;
  *out = v;
  return true;
}

static int bad_number(const char *cmd, const struct unmix_opt *o, const char *what, const char *s) {
  char b[96];
  const struct unmix_opt_range r = unmix_opt_bounds(o);
  bounds_str(&r, o->type != UNMIX_OPT_FLOAT, b, sizeof b);
  fprintf(stderr, "unmix %s: --%s must be %s%s%s, got '%s'\n", cmd, o->name, what, b[0] ? " " : "", b, s);
  return UNMIX_OPTS_ERROR;
}

/* Stores value s into the field of option o; prints the error and returns UNMIX_OPTS_ERROR. */
static int set_value(const char *cmd, const struct unmix_opt *o, void *base, const char *s) {
  char *field = (char *)base + o->off;
  const struct unmix_opt_range r = unmix_opt_bounds(o);
  switch (o->type) {
    case UNMIX_OPT_FLAG: *(bool *)field = true; return UNMIX_OPTS_OK;
    case UNMIX_OPT_STRING: *(const char **)field = s; return UNMIX_OPTS_OK;
    case UNMIX_OPT_INT: {
      long long v;
      if (!parse_ll(s, &v) || !in_bounds((double)v, &r)) return bad_number(cmd, o, "an integer", s);
      *(long long *)field = v;
      return UNMIX_OPTS_OK;
    }
    case UNMIX_OPT_U64: {
      char *end = NULL;
      errno = 0;
      unsigned long long v = strtoull(s, &end, 10);
      /* strtoull accepts "-1" (as 2^64-1): a seed must be written as the number it is */
      if (errno || !end || end == s || *end || strchr(s, '-') || !in_bounds((double)v, &r))
        return bad_number(cmd, o, "an integer", s);
      ((struct unmix_opt_u64 *)field)->v = (uint64_t)v;
      ((struct unmix_opt_u64 *)field)->set = true;
      return UNMIX_OPTS_OK;
    }
    case UNMIX_OPT_FLOAT: {
      char *end = NULL;
      errno = 0;
      double v = strtod(s, &end);
      /* the targets are float32 fields: a value that overflows one is out of range too */
      if (errno || !end || end == s || *end || !isfinite(v) || !isfinite((float)v) || !in_bounds(v, &r))
        return bad_number(cmd, o, "a number", s);
      *(double *)field = v;
      return UNMIX_OPTS_OK;
    }
    case UNMIX_OPT_CHOICE: {
      char buf[512], list[512];
      const char *names[MAX_CHOICES];
      int n = choices_of(o, buf, sizeof buf, names);
      for (int i = 0; i < n; i++)
        if (!strcmp(names[i], s)) {
          /* the table's own string when it has one (argv may not outlive a caller's copy) */
          *(const char **)field = o->key ? s : o->choices[i];
          return UNMIX_OPTS_OK;
        }
      or_list(names, n, list, sizeof list);
      fprintf(stderr, "unmix %s: --%s must be %s, got '%s'\n", cmd, o->name, list, s);
      return UNMIX_OPTS_ERROR;
    }
    case UNMIX_OPT_INT_LIST: {
      int *out = (int *)field, *count = (int *)((char *)base + o->count_off), n = 0;
      const char *p = s;
      if (!*p) goto bad_list;
      for (;;) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (errno || end == p || !in_bounds((double)v, &r) || n >= o->cap) goto bad_list;
        out[n++] = (int)v;
        if (*end == 0) break;
        if (*end != ',') goto bad_list;
        p = end + 1;
      }
      *count = n;
      return UNMIX_OPTS_OK;
    bad_list: {
      char b[96];
      bounds_str(&r, true, b, sizeof b);
      fprintf(stderr, "unmix %s: --%s must be a comma-separated list of at most %d integers%s%s, got '%s'\n", cmd,
              o->name, o->cap, b[0] ? " " : "", b, s);
      return UNMIX_OPTS_ERROR;
    }
    }
    case UNMIX_OPT_STRINGS: {
      int *count = (int *)((char *)base + o->count_off);
      if (*count >= o->cap) {
        fprintf(stderr, "unmix %s: at most %d --%s\n", cmd, o->cap, o->name);
        return UNMIX_OPTS_ERROR;
      }
      ((const char **)field)[(*count)++] = s;
      return UNMIX_OPTS_OK;
    }
  }
  return UNMIX_OPTS_ERROR;
}

/* ---- the parser ----------------------------------------------------------------------------- */

struct found {
  const struct unmix_opt *o;
  void *base;
};

/* Exact name, else a unique prefix (getopt_long's abbreviations). 0 found, -1 unknown,
 * -2 ambiguous (message printed). */
static int lookup(const char *cmd, const struct unmix_optset *sets, int nsets, const char *name, size_t len,
                  struct found *f) {
  int hits = 0;
  for (int s = 0; s < nsets; s++)
    for (int i = 0; i < sets[s].n; i++) {
      const struct unmix_opt *o = &sets[s].opts[i];
      if (strlen(o->name) == len && !strncmp(o->name, name, len)) {
        *f = (struct found){o, sets[s].base};
        return 0;
      }
    }
  for (int s = 0; s < nsets; s++)
    for (int i = 0; i < sets[s].n; i++)
      if (!strncmp(sets[s].opts[i].name, name, len)) {
        if (hits++ == 0) *f = (struct found){&sets[s].opts[i], sets[s].base};
      }
  if (hits == 1) return 0;
  if (hits == 0) return -1;
  fprintf(stderr, "unmix %s: option '--%.*s' is ambiguous:", cmd, (int)len, name);
  for (int s = 0; s < nsets; s++)
    for (int i = 0; i < sets[s].n; i++)
      if (!strncmp(sets[s].opts[i].name, name, len)) fprintf(stderr, " --%s", sets[s].opts[i].name);
  fputc('\n', stderr);
  return -2;
}

static int unknown(const char *cmd, const struct unmix_optset *sets, int nsets, const char *arg, const char *name,
                   size_t len) {
  const char *cands[256];
  int n = 0;
  for (int s = 0; s < nsets; s++)
    for (int i = 0; i < sets[s].n && n < 255; i++) cands[n++] = sets[s].opts[i].name;
  cands[n++] = "help";
  char nm[256];
  snprintf(nm, sizeof nm, "%.*s", (int)(len < 255 ? len : 255), name);
  const char *sug = unmix_suggest(nm, cands, n);
  if (sug) fprintf(stderr, "unmix %s: unknown option '%s' (did you mean --%s?); see unmix %s --help\n", cmd, arg, sug, cmd);
  else fprintf(stderr, "unmix %s: unknown option '%s'; see unmix %s --help\n", cmd, arg, cmd);
  return UNMIX_OPTS_ERROR;
}

int unmix_opts_parse(const char *cmd, const struct unmix_optset *sets, int nsets, int argc, char **argv, char **pos,
                     int *npos) {
  *npos = 0;
  for (int s = 0; s < nsets; s++)
    for (int i = 0; i < sets[s].n; i++) {
      const struct unmix_opt *o = &sets[s].opts[i];
      if (o->def && set_value(cmd, o, sets[s].base, o->def) != UNMIX_OPTS_OK)
        unmix_panic(__FILE__, __LINE__, "unmix %s: the default of --%s is invalid", cmd, o->name);
    }
  bool options = true;
  for (int a = 1; a < argc; a++) {
    const char *arg = argv[a];
    if (!options || arg[0] != '-' || !arg[1]) {
      pos[(*npos)++] = argv[a];
      continue;
    }
    if (!strcmp(arg, "--")) {
      options = false;
      continue;
    }
    if (!strcmp(arg, "-h")) return UNMIX_OPTS_HELP;
    if (arg[1] != '-') return unknown(cmd, sets, nsets, arg, arg + 1, strlen(arg + 1));
    const char *name = arg + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    if (len >= 1 && !strncmp("help", name, len) && !eq) {
      /* --help, or a prefix of it that is not also a prefix of another option */
      bool other = false;
      for (int s = 0; s < nsets; s++)
        for (int i = 0; i < sets[s].n; i++)
          if (!strncmp(sets[s].opts[i].name, name, len)) other = true;
      if (len == 4 || !other) return UNMIX_OPTS_HELP;
    }
    struct found f;
    int k = lookup(cmd, sets, nsets, name, len, &f);
    if (k == -2) return UNMIX_OPTS_ERROR;
    if (k == -1) return unknown(cmd, sets, nsets, arg, name, len);
    const char *val = NULL;
    if (f.o->type == UNMIX_OPT_FLAG) {
      if (eq) {
        fprintf(stderr, "unmix %s: --%s takes no value (got '%s')\n", cmd, f.o->name, arg);
        return UNMIX_OPTS_ERROR;
      }
    } else if (eq) {
      val = eq + 1;
    } else if (a + 1 < argc) {
      val = argv[++a];
    } else {
      fprintf(stderr, "unmix %s: --%s needs a value (%s)\n", cmd, f.o->name, f.o->arg ? f.o->arg : "see --help");
      return UNMIX_OPTS_ERROR;
    }
    if (set_value(cmd, f.o, f.base, val) != UNMIX_OPTS_OK) return UNMIX_OPTS_ERROR;
  }
  return UNMIX_OPTS_OK;
}

/* ---- --help --------------------------------------------------------------------------------- */

static void help_one(FILE *f, const struct unmix_opt *o) {
  char head[128], buf[512], list[512];
  const char *names[MAX_CHOICES];
  if (o->type == UNMIX_OPT_CHOICE) {
    int n = choices_of(o, buf, sizeof buf, names);
    size_t k = 0;
    list[0] = 0;
    for (int i = 0; i < n; i++) k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? "|" : "", names[i]);
    snprintf(head, sizeof head, "  --%s %s", o->name, list);
  } else if (o->type == UNMIX_OPT_FLAG) {
    snprintf(head, sizeof head, "  --%s", o->name);
  } else {
    snprintf(head, sizeof head, "  --%s %s", o->name, o->arg ? o->arg : "X");
  }
  /* the range, its manifest key and the default follow on their own line, generated from
   * the table so they are never restated by hand */
  char extra[320] = "", b[96];
  const struct unmix_opt_range r = unmix_opt_bounds(o);
  size_t k = 0;
  b[0] = 0;
  if (o->type == UNMIX_OPT_INT || o->type == UNMIX_OPT_FLOAT || o->type == UNMIX_OPT_INT_LIST)
    bounds_str(&r, o->type != UNMIX_OPT_FLOAT, b, sizeof b);
  if (b[0])
    k += (size_t)snprintf(extra + k, sizeof extra - k, "%s %s", o->type == UNMIX_OPT_INT_LIST ? "each" : o->arg, b);
  if (o->key)
    k += (size_t)snprintf(extra + k, sizeof extra - k, "%s(as manifest key %s)", k ? " " : "", o->key);
  if (o->def) snprintf(extra + k, sizeof extra - k, "%sdefault %s", k ? "; " : "", o->def);
  else if (o->def_doc) snprintf(extra + k, sizeof extra - k, "%sdefault: %s", k ? "; " : "", o->def_doc);
  int w = fprintf(f, "%s", head);
  /* a long head gets the help on the next line */
  if (w >= HELP_COLUMN) fprintf(f, "\n%*s", HELP_COLUMN, "");
  else fprintf(f, "%*s", HELP_COLUMN - w, "");
  for (const char *p = o->help ? o->help : "";;) {
    const char *nl = strchr(p, '\n');
    if (!nl) {
      fprintf(f, "%s\n", p);
      break;
    }
    fprintf(f, "%.*s\n%*s", (int)(nl - p), p, HELP_COLUMN, "");
    p = nl + 1;
  }
  if (extra[0]) fprintf(f, "%*s%s\n", HELP_COLUMN, "", extra);
}

void unmix_opts_help(FILE *f, const struct unmix_optset *sets, int nsets) {
  for (int s = 0; s < nsets; s++)
    for (int i = 0; i < sets[s].n; i++) help_one(f, &sets[s].opts[i]);
}

/* ---- the common options ----------------------------------------------------------------------- */

static const char *const g_backends[] = {"cpu", "cuda", NULL};
#define CO(f) offsetof(struct unmix_evalcli, f)

const struct unmix_opt unmix_evalcli_opts[] = {
    {.name = "backend", .type = UNMIX_OPT_CHOICE, .choices = g_backends, .off = CO(backend),
     .def_doc = "the run's backend when usable here, else cpu", .help = "where to compute"},
    {.name = "data-root", .type = UNMIX_OPT_STRING, .arg = "DIR", .off = CO(open.data_root),
     .def_doc = "the manifest's data.root", .help = "where the checkpoint's dataset lives"},
    {.name = "dataset", .type = UNMIX_OPT_CHOICE, .key = "data.dataset", .off = CO(open.dataset),
     .def_doc = "the manifest's", .help = "evaluate on another dataset"},
    {.name = "batch", .type = UNMIX_OPT_INT, .arg = "N", .key = "optim.batch_size", .off = CO(batch),
     .def_doc = "the run's optim.batch_size", .help = "forward batch"},
    {.name = "workers", .type = UNMIX_OPT_INT, .arg = "N", .key = "data.workers", .off = CO(workers),
     .def_doc = "the manifest's data.workers", .help = "loader threads (0 = cores)"},
    {.name = "arch", .type = UNMIX_OPT_CHOICE, .key = "model.arch", .off = CO(open.arch),
     .help = "architecture of a plain torchvision backbone (no unmix.manifest in the file,\n"
             "e.g. converted from PyTorch); needed for one"},
    {.name = "stem", .type = UNMIX_OPT_CHOICE, .key = "model.stem", .off = CO(open.stem),
     .def_doc = "from conv1.weight's kernel", .help = "stem of a plain backbone"},
    {.name = "width", .type = UNMIX_OPT_INT, .arg = "N", .key = "model.width", .off = CO(width),
     .def_doc = "conv1.weight's output channels", .help = "base width of a plain backbone"},
    {.name = "prefix", .type = UNMIX_OPT_STRING, .arg = "STR", .off = CO(open.prefix),
     .help = "prefix of a plain backbone's tensor names, e.g. module.encoder_q."},
};
const int unmix_evalcli_nopts = (int)(sizeof unmix_evalcli_opts / sizeof unmix_evalcli_opts[0]);
_Static_assert(sizeof unmix_evalcli_opts / sizeof unmix_evalcli_opts[0] <= 16,
               "the commands copy the common table into 16 slots");

/* The group of a common option (UNMIX_EVALCLI_*). */
static unsigned common_group(const char *name) {
  if (!strcmp(name, "backend")) return UNMIX_EVALCLI_BACKEND;
  if (!strcmp(name, "data-root") || !strcmp(name, "dataset")) return UNMIX_EVALCLI_DATA;
  if (!strcmp(name, "batch") || !strcmp(name, "workers")) return UNMIX_EVALCLI_FORWARD;
  return UNMIX_EVALCLI_PLAIN;
}

int unmix_evalcli_common(const struct unmix_evalcmd *cmd, struct unmix_opt *out) {
  int n = 0;
  for (int i = 0; i < unmix_evalcli_nopts; i++) {
    if (!(cmd->common & common_group(unmix_evalcli_opts[i].name))) continue;
    out[n] = unmix_evalcli_opts[i];
    if (!strcmp(out[n].name, "batch")) {
      if (cmd->batch_help) { /* another batch than the run's optim.batch_size: no manifest key */
        out[n].help = cmd->batch_help;
        out[n].key = NULL;
        out[n].range = UNMIX_OPT_IN(1, 1 << 24);
      }
      if (cmd->batch_def) out[n].def_doc = cmd->batch_def;
    }
    n++;
  }
  return n;
}

void unmix_evalcli_usage(const struct unmix_evalcmd *cmd, FILE *f) {
  fputs(cmd->usage, f);
  fputs("\noptions:\n", f);
  struct unmix_opt common[16];
  int nc = unmix_evalcli_common(cmd, common);
  struct unmix_optset own = {cmd->opts, cmd->nopts, NULL}, com = {common, nc, NULL};
  unmix_opts_help(f, &own, 1);
  if (nc) {
    fputs("common options:\n", f);
    unmix_opts_help(f, &com, 1);
  }
  fprintf(f, "  -h, --help%*sthis help\n", HELP_COLUMN - 12, "");
}

/* A common option this command does not take, given anyway: refused by name (the generic
 * "unknown option" would suggest a similar-looking option of the command instead). */
static bool refuse_foreign_common(const struct unmix_evalcmd *cmd, int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--")) break;
    if (strncmp(argv[i], "--", 2) != 0) continue;
    const char *name = argv[i] + 2;
    size_t len = strcspn(name, "=");
    for (int k = 0; k < unmix_evalcli_nopts; k++) {
      const char *c = unmix_evalcli_opts[k].name;
      if (strlen(c) != len || strncmp(c, name, len) != 0 || (cmd->common & common_group(c))) continue;
      static const char *const why[] = {"it computes nothing on a device", "it reads no images",
                                        "it runs no images through the encoder", "it needs an unmix checkpoint"};
      unsigned g = common_group(c);
      int w = g == UNMIX_EVALCLI_BACKEND ? 0 : g == UNMIX_EVALCLI_DATA ? 1 : g == UNMIX_EVALCLI_FORWARD ? 2 : 3;
      fprintf(stderr, "unmix %s: --%s does not apply to %s (%s); see unmix %s --help\n", cmd->name, c, cmd->name,
              why[w], cmd->name);
      return true;
    }
  }
  return false;
}

int unmix_evalcli_parse(const struct unmix_evalcmd *cmd, void *own, struct unmix_evalcli *cli, int argc, char **argv,
                        char **pos, int *npos) {
  memset(cli, 0, sizeof *cli);
  cli->cmd = cmd->name;
  cli->workers = -1;
  if (refuse_foreign_common(cmd, argc, argv)) return 2;
  struct unmix_opt common[16];
  int nc = unmix_evalcli_common(cmd, common);
  struct unmix_optset sets[2] = {{cmd->opts, cmd->nopts, own}, {common, nc, cli}};
  int r = unmix_opts_parse(cmd->name, sets, 2, argc, argv, pos, npos);
  if (r == UNMIX_OPTS_HELP) {
    unmix_evalcli_usage(cmd, stdout);
    return 0;
  }
  if (r != UNMIX_OPTS_OK) return 2;
  cli->open.width = (int)cli->width;
  cli->open.no_plain = !(cmd->common & UNMIX_EVALCLI_PLAIN);
  return -1;
}

/* ---- output ----------------------------------------------------------------------------------- */

unmix_status unmix_evalcli_out_open(struct unmix_evalcli_out *o) {
  memset(o, 0, sizeof *o);
  o->f = open_memstream(&o->buf, &o->len);
  if (!o->f) return unmix_error_set(UNMIX_ERR_NOMEM, "cannot open an output buffer: %s", strerror(errno));
  return UNMIX_OK;
}

unmix_status unmix_evalcli_out_commit(struct unmix_evalcli_out *o, const char *path) {
  int bad = ferror(o->f);
  if (fclose(o->f) != 0) bad = 1;
  o->f = NULL;
  unmix_status st = UNMIX_OK;
  if (bad) {
    st = unmix_error_set(UNMIX_ERR_NOMEM, "%s: building the file in memory failed", path);
  } else {
    struct unmix_chunk ch = {o->buf, o->len};
    st = unmix_atomic_write(path, &ch, 1);
  }
  free(o->buf);
  o->buf = NULL;
  return st;
}

void unmix_evalcli_out_discard(struct unmix_evalcli_out *o) {
  if (o->f) fclose(o->f);
  free(o->buf);
  memset(o, 0, sizeof *o);
}
