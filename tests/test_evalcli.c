/* experiments/evalcli: the table-driven option parser of the evaluation commands (values,
 * defaults, ranges from the manifest schema, unknown options with did-you-mean, missing
 * values, abbreviations, positionals) and the generated --help, which must list exactly each
 * command's table. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/io/manifest.h"
#include "core/util/suggest.h"
#include "experiments/evalcli.h"
#include "tests/support/testutil.h"

struct t_opts {
  long long n, k;
  double x, wd;
  bool flag;
  const char *mode, *proto, *file;
  int list[4], nlist;
  const char *names[2];
  int nnames;
  struct unmix_opt_u64 seed;
};
#define TO(f) offsetof(struct t_opts, f)
static const char *const g_modes[] = {"first", "last", NULL};
static const struct unmix_opt g_t[] = {
    {.name = "n", .type = UNMIX_OPT_INT, .arg = "N", .range = UNMIX_OPT_IN(2, 100), .off = TO(n), .def = "7",
     .help = "count"},
    {.name = "knn-k", .type = UNMIX_OPT_INT, .arg = "N", .key = "knn.k", .off = TO(k), .help = "from the schema"},
    {.name = "x", .type = UNMIX_OPT_FLOAT, .arg = "X", .range = {0, 1, false, true}, .off = TO(x), .help = "fraction"},
    {.name = "wd", .type = UNMIX_OPT_FLOAT, .arg = "X", .key = "linear.weight_decay", .off = TO(wd), .help = "wd"},
    {.name = "flag", .type = UNMIX_OPT_FLAG, .off = TO(flag), .help = "a flag"},
    {.name = "mode", .type = UNMIX_OPT_CHOICE, .choices = g_modes, .off = TO(mode), .def = "first", .help = "mode"},
    {.name = "protocol", .type = UNMIX_OPT_CHOICE, .key = "linear.protocol", .off = TO(proto), .help = "proto"},
    {.name = "file", .type = UNMIX_OPT_STRING, .arg = "FILE", .off = TO(file), .help = "a file"},
    {.name = "list", .type = UNMIX_OPT_INT_LIST, .arg = "A,B", .range = UNMIX_OPT_IN(1, 9), .off = TO(list), .cap = 4,
     .count_off = TO(nlist), .help = "ints"},
    {.name = "name", .type = UNMIX_OPT_STRINGS, .arg = "S", .off = TO(names), .cap = 2, .count_off = TO(nnames),
     .help = "repeatable"},
    {.name = "seed", .type = UNMIX_OPT_U64, .arg = "N", .key = "seed", .off = TO(seed), .help = "seed"},
};
#define NT ((int)(sizeof g_t / sizeof g_t[0]))

static struct t_opts g_o;
static char g_err[4096];
static char *g_pos[32];
static int g_npos;

/* Parses the space-separated command line `line` (after the command name); stderr captured
 * into g_err. */
static int parse(const char *line) {
  char buf[1024];
  snprintf(buf, sizeof buf, "%s", line);
  char *argv[32] = {"t"};
  int argc = 1;
  for (char *tok = strtok(buf, " "); tok && argc < 31; tok = strtok(NULL, " ")) argv[argc++] = strdup(tok);
  memset(&g_o, 0, sizeof g_o);
  struct unmix_optset set = {g_t, NT, &g_o};
  fflush(stderr);
  char path[] = "/tmp/unmix-evalcli-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  int saved = dup(2);
  dup2(fd, 2);
  int r = unmix_opts_parse("t", &set, 1, argc, argv, g_pos, &g_npos);
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  lseek(fd, 0, SEEK_SET);
  ssize_t n = read(fd, g_err, sizeof g_err - 1);
  g_err[n > 0 ? n : 0] = 0;
  close(fd);
  unlink(path);
  /* argv strings stay alive: the parser stores pointers into them (leaked on purpose) */
  return r;
}

static void fails_with(const char *line, const char *needle) {
  ck_assert_msg(parse(line) == UNMIX_OPTS_ERROR, "'%s' was accepted", line);
  ck_assert_msg(strstr(g_err, needle) != NULL, "'%s': expected \"%s\" in:\n%s", line, needle, g_err);
}

START_TEST(test_values_defaults_and_positionals) {
  ck_assert_int_eq(parse("a --n 5 b --x=0.25 --flag --mode last --file f.csv --list 1,3,9 --name p --name q c"),
                   UNMIX_OPTS_OK);
  ck_assert_int_eq(g_o.n, 5);
  ck_assert(g_o.x == 0.25);
  ck_assert(g_o.flag);
  ck_assert_str_eq(g_o.mode, "last");
  ck_assert_str_eq(g_o.file, "f.csv");
  ck_assert_int_eq(g_o.nlist, 3);
  ck_assert_int_eq(g_o.list[2], 9);
  ck_assert_int_eq(g_o.nnames, 2);
  ck_assert_str_eq(g_o.names[1], "q");
  ck_assert_int_eq(g_npos, 3);
  ck_assert_str_eq(g_pos[0], "a");
  ck_assert_str_eq(g_pos[2], "c");
  /* defaults from the table; untouched fields keep their initial value */
  ck_assert_int_eq(parse("ck"), UNMIX_OPTS_OK);
  ck_assert_int_eq(g_o.n, 7);
  ck_assert_str_eq(g_o.mode, "first");
  ck_assert_ptr_null(g_o.file);
  ck_assert(!g_o.seed.set);
  /* "--" ends the options; a lone "-" is positional */
  ck_assert_int_eq(parse("-- --n -"), UNMIX_OPTS_OK);
  ck_assert_int_eq(g_npos, 2);
  ck_assert_str_eq(g_pos[0], "--n");
  ck_assert_int_eq(g_o.n, 7);
  /* unique prefixes, as getopt_long accepts them */
  ck_assert_int_eq(parse("--fla --proto imagenet --se 18446744073709551615"), UNMIX_OPTS_OK);
  ck_assert(g_o.flag);
  ck_assert_str_eq(g_o.proto, "imagenet");
  ck_assert(g_o.seed.set && g_o.seed.v == UINT64_MAX);
  ck_assert_int_eq(parse("--help"), UNMIX_OPTS_HELP);
  ck_assert_int_eq(parse("x -h"), UNMIX_OPTS_HELP);
  ck_assert_int_eq(parse("--he"), UNMIX_OPTS_HELP);
}
END_TEST

START_TEST(test_unknown_option_did_you_mean) {
  fails_with("--nn 3", "unknown option '--nn' (did you mean --n?)");
  fails_with("--protocl imagenet", "did you mean --protocol?");
  fails_with("--flg", "did you mean --flag?");
  fails_with("--zzzzzzzz", "unknown option '--zzzzzzzz'; see unmix t --help");
  ck_assert_ptr_null(strstr(g_err, "did you mean"));
  fails_with("-q", "unknown option '-q'");
  /* an ambiguous prefix lists the candidates */
  fails_with("--f 1", "option '--f' is ambiguous: --flag --file");
}
END_TEST

START_TEST(test_out_of_range_names_option_and_range) {
  fails_with("--n 1", "t: --n must be an integer in 2..100, got '1'");
  fails_with("--n 101", "--n must be an integer in 2..100, got '101'");
  fails_with("--n 5x", "--n must be an integer in 2..100, got '5x'");
  fails_with("--x 1", "--x must be a number in [0, 1), got '1'");
  fails_with("--x nan", "--x must be a number in [0, 1)");
  fails_with("--mode middle", "--mode must be first or last, got 'middle'");
  fails_with("--protocol cifar", "--protocol must be imagenet, swav-cifar, moco-cifar or swav-imagenet, got 'cifar'");
  fails_with("--list 1,10", "--list must be a comma-separated list of at most 4 integers in 1..9, got '1,10'");
  fails_with("--list 1,2,3,4,5", "at most 4 integers");
  fails_with("--list 1,,2", "--list must be");
  fails_with("--name a --name b --name c", "at most 2 --name");
  fails_with("--seed -1", "--seed must be an integer >= 0, got '-1'");
  fails_with("--flag=1", "--flag takes no value");
}
END_TEST

START_TEST(test_missing_value) {
  fails_with("--n", "--n needs a value (N)");
  fails_with("ck --file", "--file needs a value (FILE)");
  fails_with("--mode", "--mode needs a value");
}
END_TEST

/* Options with a manifest key take the key's range: --wd is unbounded above like
 * linear.weight_decay (the old lincls flag stopped at 1), knn.k is an int >= 1. */
START_TEST(test_ranges_come_from_the_manifest_schema) {
  ck_assert_int_eq(parse("--wd 5"), UNMIX_OPTS_OK);
  ck_assert(g_o.wd == 5);
  fails_with("--wd -0.1", "--wd must be a number >= 0");
  fails_with("--wd 1e39", "--wd must be a number >= 0"); /* not a float32 */
  fails_with("--knn-k 0", "--knn-k must be an integer >= 1, got '0'");
  fails_with("--knn-k 2147483648", "--knn-k must be an integer >= 1");
  struct unmix_config_range r;
  ck_assert(unmix_config_key_range("linear.momentum", &r));
  ck_assert(r.lo == 0 && r.hi == 1 && !r.lo_open && r.hi_open && r.kind == UNMIX_CONFIG_RANGE_FLOAT);
  ck_assert(unmix_config_key_range("knn.t", &r));
  ck_assert(r.lo == 0 && r.lo_open && r.hi == INFINITY);
  ck_assert(unmix_config_key_range("train.epochs", &r) && r.kind == UNMIX_CONFIG_RANGE_INT && r.hi == 1 << 24);
  ck_assert(unmix_config_key_range("seed", &r) && r.kind == UNMIX_CONFIG_RANGE_U64);
  ck_assert(!unmix_config_key_range("model.arch", &r)); /* not numeric */
  ck_assert(!unmix_config_key_range("no.such", &r));
  /* the commands' flags with a key really use it */
  const struct unmix_evalcmd *l = &unmix_evalcmd_lincls;
  for (int i = 0; i < l->nopts; i++)
    if (!strcmp(l->opts[i].name, "wd")) {
      ck_assert_str_eq(l->opts[i].key, "linear.weight_decay");
      struct unmix_opt_range b = unmix_opt_bounds(&l->opts[i]);
      ck_assert(b.lo == 0 && b.hi == INFINITY);
    }
}
END_TEST

START_TEST(test_suggest) {
  ck_assert_int_eq(unmix_edit_distance("kitten", "sitting"), 3);
  ck_assert_int_eq(unmix_edit_distance("", "abc"), 3);
  ck_assert_int_eq(unmix_edit_distance("Epochs", "epochs"), 0);
  ck_assert_int_eq(unmix_edit_distance("trian", "train"), 1); /* a transposition is one typo */
  const char *c[] = {"epochs", "lr", "momentum"};
  ck_assert_str_eq(unmix_suggest("epoch", c, 3), "epochs");
  ck_assert_str_eq(unmix_suggest("momentun", c, 3), "momentum");
  ck_assert_ptr_null(unmix_suggest("batch", c, 3));
  ck_assert_str_eq(unmix_suggest("mom", c, 3), "momentum"); /* a prefix of 3 or more */
}
END_TEST

/* Every command's --help shows exactly the options of its table and the common table, and
 * every one of them is accepted by the parser (no help line without an option or the
 * other way round). */
START_TEST(test_help_lists_exactly_the_table) {
  const struct unmix_evalcmd *cmds[] = {&unmix_evalcmd_knn,  &unmix_evalcmd_lincls,   &unmix_evalcmd_tsne,
                                        &unmix_evalcmd_hist, &unmix_evalcmd_flatness, &unmix_evalcmd_export};
  for (int c = 0; c < 6; c++) {
    char *out = NULL;
    ck_assert_int_eq(unmix_test_unmix("/tmp", &out, "%s --help", cmds[c]->name), 0);
    /* the names at the start of the option lines, in order */
    const char *listed[64];
    int nl = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n")) {
      if (strncmp(line, "  --", 4) != 0) continue;
      char *name = line + 4;
      size_t len = strcspn(name, " ");
      name[len] = 0;
      ck_assert_int_lt(nl, 64);
      listed[nl++] = name;
    }
    int want = cmds[c]->nopts + unmix_evalcli_nopts;
    ck_assert_msg(nl == want, "%s --help lists %d options, its tables have %d", cmds[c]->name, nl, want);
    for (int i = 0; i < want; i++) {
      const struct unmix_opt *o =
          i < cmds[c]->nopts ? &cmds[c]->opts[i] : &unmix_evalcli_opts[i - cmds[c]->nopts];
      ck_assert_msg(!strcmp(listed[i], o->name), "%s --help: line %d is --%s, the table has --%s", cmds[c]->name, i,
                    listed[i], o->name);
      ck_assert_msg(o->help && o->help[0], "%s --%s has no help", cmds[c]->name, o->name);
    }
    free(out);
    /* "-h, --help" closes the list */
    ck_assert_int_eq(unmix_test_unmix("/tmp", &out, "%s -h", cmds[c]->name), 0);
    ck_assert(strstr(out, "  -h, --help") != NULL);
    free(out);
  }
}
END_TEST

/* The commands report parser errors with exit status 2 and the did-you-mean hint. */
START_TEST(test_commands_use_the_parser) {
  char *out = NULL;
  ck_assert_int_eq(unmix_test_unmix("/tmp", &out, "lincls x.safetensors --epoch 3 --momentun 0.5"), 2);
  ck_assert_msg(strstr(out, "unknown option '--momentun' (did you mean --momentum?)") != NULL, "%s", out);
  free(out);
  ck_assert_int_eq(unmix_test_unmix("/tmp", &out, "knn x.safetensors --k"), 2);
  ck_assert_msg(strstr(out, "--k needs a value (N)") != NULL, "%s", out);
  free(out);
  ck_assert_int_eq(unmix_test_unmix("/tmp", &out, "lincls x.safetensors --momentum 1"), 2);
  ck_assert_msg(strstr(out, "--momentum must be a number in [0, 1), got '1'") != NULL, "%s", out);
  free(out);
  ck_assert_int_eq(unmix_test_unmix("/tmp", &out, "hist --bins 0 a b"), 2);
  ck_assert_msg(strstr(out, "--bins must be an integer in 1..1048576, got '0'") != NULL, "%s", out);
  free(out);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("evalcli");
  TCase *tc = tcase_create("evalcli");
  tcase_add_test(tc, test_values_defaults_and_positionals);
  tcase_add_test(tc, test_unknown_option_did_you_mean);
  tcase_add_test(tc, test_out_of_range_names_option_and_range);
  tcase_add_test(tc, test_missing_value);
  tcase_add_test(tc, test_ranges_come_from_the_manifest_schema);
  tcase_add_test(tc, test_suggest);
  tcase_add_test(tc, test_help_lists_exactly_the_table);
  tcase_add_test(tc, test_commands_use_the_parser);
  suite_add_tcase(s, tc);
  return s;
}

UNMIX_TEST_MAIN(suite)
