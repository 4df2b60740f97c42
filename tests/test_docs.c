/* docs/FIDELITY.md stays true to the tree: every test it cites (`suite: case`) exists and is
 * registered, every "FIDELITY §N.M" cited by a source, script, config or doc names a section
 * the page has, and nothing cites a specification or note outside the repository. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util/fs.h"
#include "tests/support/testutil.h"

static char *read_src(const char *rel) {
  char path[1024];
  unmix_test_src_path(rel, path, sizeof path);
  uint8_t *b = NULL;
  size_t len = 0;
  ck_assert_msg(unmix_fs_read(path, 0, &b, &len) == UNMIX_OK, "%s", unmix_error_message());
  return (char *)b;
}

static bool is_ident(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }

START_TEST(test_fidelity_cited_tests_exist) {
  char *doc = read_src("docs/FIDELITY.md");
  int n = 0;
  for (const char *p = doc; (p = strstr(p, "`test_")) != NULL; p++) {
    const char *s = p + 1, *e = s;
    while (is_ident(*e)) e++;
    if (strncmp(e, ": test_", 7) != 0) continue;
    const char *c = e + 2, *ce = c;
    while (is_ident(*ce)) ce++;
    if (*ce != '`') continue;
    char suite[128], kase[128], rel[300], want[200];
    snprintf(suite, sizeof suite, "%.*s", (int)(e - s), s);
    snprintf(kase, sizeof kase, "%.*s", (int)(ce - c), c);
    snprintf(rel, sizeof rel, "tests/%s.c", suite);
    char path[1024];
    FILE *f = fopen(unmix_test_src_path(rel, path, sizeof path), "r");
    if (!f) snprintf(rel, sizeof rel, "tests/gpu/%s.c", suite);
    else fclose(f);
    char *src = read_src(rel);
    snprintf(want, sizeof want, "START_TEST(%s)", kase);
    ck_assert_msg(strstr(src, want) != NULL, "FIDELITY.md cites %s: %s, which %s does not define", suite, kase, rel);
    snprintf(want, sizeof want, ", %s)", kase);
    bool registered = strstr(src, want) != NULL;
    snprintf(want, sizeof want, ", %s,", kase); /* tcase_add_loop_test(tc, case, a, b) */
    registered = registered || strstr(src, want) != NULL;
    ck_assert_msg(registered, "FIDELITY.md cites %s: %s, which is never added to a test case", suite, kase);
    free(src);
    n++;
  }
  ck_assert_int_ge(n, 50);
  free(doc);
}
END_TEST

/* ---- citations across the tree ---------------------------------------------------------- */

static char *g_doc;
static int g_cites, g_bad, g_spec;
static char g_first_bad[2048], g_first_spec[2048];

/* Whether the page has section "N" (a "## N." heading) or "N.M" (a "**N.M " paragraph). */
static bool has_section(const char *sec) {
  char want[64];
  if (strchr(sec, '.')) snprintf(want, sizeof want, "\n**%s ", sec);
  else snprintf(want, sizeof want, "\n## %s. ", sec);
  return strstr(g_doc, want) != NULL;
}

static void bad(const char *path, const char *what) {
  if (!g_bad++) snprintf(g_first_bad, sizeof g_first_bad, "%s: %s", path, what);
}

static int visit(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
  (void)sb;
  (void)ftw;
  if (type != FTW_F) return 0;
  const char *dot = strrchr(path, '.');
  static const char *const exts[] = {".c", ".h", ".cu", ".cuh", ".def", ".py", ".sh", ".yaml", ".gp", ".md", ".txt", NULL};
  bool text = false;
  for (int i = 0; exts[i]; i++) text = text || (dot && !strcmp(dot, exts[i]));
  const char *base = strrchr(path, '/');
  text = text || (base && !strncmp(base + 1, "Makefile", 8));
  /* these suites spell the patterns to look for them */
  if (!text || strstr(path, "/tests/test_docs.c") || strstr(path, "/tests/test_cli.c")) return 0;
  uint8_t *b = NULL;
  size_t len = 0;
  if (unmix_fs_read(path, 0, &b, &len) != UNMIX_OK) return 0;
  const char *s = (const char *)b;
  for (const char *p = s; (p = strstr(p, "FIDELITY")) != NULL; p++) {
    const char *q = p + 8;
    if (!strncmp(q, ".md", 3)) q += 3;
    while (*q == ' ') q++;
    /* "§N.M", "§N.M-§N.K", "§N.M, §N.K" */
    while (!strncmp(q, "\xc2\xa7", 2)) {
      q += 2;
      char sec[32];
      int k = 0;
      while (k < 30 && ((*q >= '0' && *q <= '9') || (*q == '.' && q[1] >= '0' && q[1] <= '9'))) sec[k++] = *q++;
      sec[k] = 0;
      g_cites++;
      if (!k || !has_section(sec)) {
        char msg[128];
        snprintf(msg, sizeof msg, "cites FIDELITY §%s, which docs/FIDELITY.md does not have", sec);
        bad(path, msg);
      }
      while (*q == ',' || *q == ' ' || *q == '-' || !strncmp(q, "and ", 4)) q += !strncmp(q, "and ", 4) ? 4 : 1;
    }
  }
  /* no pointers to a specification that is not in the repository */
  static const char *const outside[] = {"SPEC \xc2\xa7", "SPEC.md", "../shared", "STYLE.md", "DESIGN.md", NULL};
  bool cites = false;
  for (int i = 0; outside[i]; i++) cites = cites || strstr(s, outside[i]) != NULL;
  /* "quirk 4": the numbered list of a specification that is not here */
  for (const char *q = s; !cites && (q = strstr(q, "quirk ")) != NULL; q++) cites = q[6] >= '0' && q[6] <= '9';
  if (cites && !g_spec++) snprintf(g_first_spec, sizeof g_first_spec, "%s", path);
  free(b);
  return 0;
}

static void scan_tree(void) {
  g_doc = read_src("docs/FIDELITY.md");
  g_cites = g_bad = g_spec = 0;
  static const char *const roots[] = {"core", "eval", "experiments", "tests", "tools", "configs", "scripts",
                                      "plots", "docs", "README.md", "Makefile", "Makefile.paper", NULL};
  for (int i = 0; roots[i]; i++) {
    char path[1024];
    unmix_test_src_path(roots[i], path, sizeof path);
    if (!strchr(roots[i], '.') && strncmp(roots[i], "Makefile", 8) != 0) nftw(path, visit, 16, FTW_PHYS);
    else visit(path, NULL, FTW_F, NULL);
  }
}

START_TEST(test_fidelity_sections_cited_exist) {
  scan_tree();
  ck_assert_msg(g_bad == 0, "%d bad citation(s); first: %s", g_bad, g_first_bad);
  ck_assert_int_ge(g_cites, 30);
  free(g_doc);
}
END_TEST

/* Comments, --help texts, configs and docs cite docs/FIDELITY.md, never a specification or
 * a note that is not in the repository. */
START_TEST(test_nothing_cites_outside_the_repository) {
  scan_tree();
  ck_assert_msg(g_spec == 0, "%d file(s) cite SPEC, a numbered quirk or a note outside the repository; first: %s",
                g_spec, g_first_spec);
  free(g_doc);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("docs");
  TCase *tc = tcase_create("docs");
  tcase_add_test(tc, test_fidelity_cited_tests_exist);
  tcase_add_test(tc, test_fidelity_sections_cited_exist);
  tcase_add_test(tc, test_nothing_cites_outside_the_repository);
  suite_add_tcase(s, tc);
  return s;
}

UNMIX_TEST_MAIN(suite)
