/* Shared helpers of the libFuzzer harnesses (tests/fuzz/fuzz_*.c): a private scratch
 * directory per process, writing the input to a file the readers open by path, and a
 * quiet log. Built only with -DUNMIX_FUZZ=ON (clang); see tests/fuzz/README.md. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util/error.h"
#include "core/util/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A scratch directory for this process (removed by the OS's tmp cleaning; each file is
 * rewritten per input), in memory (/dev/shm) where there is one: on a disk, writing every
 * input leaves the harness waiting on I/O for most of its time. */
static inline const char *fuzz_dir(void) {
  static char dir[64];
  if (!dir[0]) {
    struct stat sb;
    snprintf(dir, sizeof dir, "%s/unmix-fuzz-XXXXXX",
             stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(dir)) abort();
    unmix_log_set_level(UNMIX_LOG_ERROR); /* skipped-file warnings would flood the output */
  }
  return dir;
}

/* Writes data to DIR/rel (creating its parent directories) and returns the path. */
static inline const char *fuzz_file(const char *rel, const uint8_t *data, size_t size) {
  static char path[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(path[k], sizeof path[k], "%s/%s", fuzz_dir(), rel);
  for (char *p = path[k] + strlen(fuzz_dir()) + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      mkdir(path[k], 0755);
      *p = '/';
    }
  FILE *f = fopen(path[k], "wb");
  if (!f) abort();
  if (size && fwrite(data, 1, size, f) != size) abort();
  fclose(f);
  return path[k];
}
