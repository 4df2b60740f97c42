/* Fuzzes the manifest loader: YAML text, then (after the first NUL byte) up to 8
 * newline-separated `--set key=value` overrides. A manifest that loads must dump to a
 * resolved manifest that loads again to the same dump (what a resumed run relies on), and
 * the key-by-key diff of the two must find nothing. */
#include "core/io/manifest.h"
#include "tests/fuzz/fuzz_common.h"

static void no_diff(void *ctx, const char *key, const char *a, const char *b) {
  fprintf(stderr, "resolved manifests differ at %s: %s vs %s\n", key, a, b);
  abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 1 << 16) return 0;
  fuzz_dir();
  char *buf = malloc(size + 1);
  memcpy(buf, data, size);
  buf[size] = 0;
  /* `base:` may name any file; keep the fuzzer off devices and pseudo-files that block */
  if (strstr(buf, "/dev") || strstr(buf, "/proc") || strstr(buf, "/sys")) {
    free(buf);
    return 0;
  }
  const char *sets[8];
  int n = 0;
  char *ov = NULL;
  size_t tl = strlen(buf);
  if (tl < size) ov = buf + tl + 1;
  while (ov && *ov && n < 8) {
    sets[n++] = ov;
    char *nl = strchr(ov, '\n');
    if (!nl) break;
    *nl = 0;
    ov = nl + 1;
  }
  struct unmix_config c;
  if (unmix_manifest_load_string(buf, "fuzz.yaml", sets, n, &c) == UNMIX_OK) {
    struct unmix_config c2;
    if (unmix_manifest_load_string(c.resolved_yaml, "resolved.yaml", NULL, 0, &c2) != UNMIX_OK) {
      fprintf(stderr, "the resolved dump does not load: %s\n---\n%s\n", unmix_error_message(), c.resolved_yaml);
      abort();
    }
    if (strcmp(c.resolved_yaml, c2.resolved_yaml) != 0) {
      fprintf(stderr, "the resolved dump is not a fixed point\n");
      abort();
    }
    if (unmix_manifest_diff(c.resolved_yaml, c2.resolved_yaml, no_diff, NULL) != 0) abort();
    unmix_config_free(&c2);
    unmix_config_free(&c);
  }
  free(buf);
  return 0;
}
