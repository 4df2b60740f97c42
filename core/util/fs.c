/* File-system helpers (see fs.h): one mkdir -p and one whole-file reader instead of the
 * copies the trainer, the data layer, the CSV reader and the commands each used to carry. */
#include "core/util/fs.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

unmix_status unmix_fs_mkdirs(const char *path, mode_t mode) {
  char tmp[PATH_MAX];
  int n = snprintf(tmp, sizeof tmp, "%s", path);
  if (n < 0 || (size_t)n >= sizeof tmp) return unmix_error_set(UNMIX_ERR_ARG, "path too long: %s", path);
  if (!tmp[0]) return unmix_error_set(UNMIX_ERR_ARG, "empty directory path");
  /* each parent in turn: mkdir(2) creates one level only */
  for (char *q = tmp + 1; *q; q++) {
    if (*q != '/') continue;
    *q = 0;
    if (mkdir(tmp, mode) != 0 && errno != EEXIST)
      return unmix_error_set(UNMIX_ERR_IO, "cannot create directory %s: %s", tmp, strerror(errno));
    *q = '/';
  }
  if (mkdir(tmp, mode) != 0 && errno != EEXIST)
    return unmix_error_set(UNMIX_ERR_IO, "cannot create directory %s: %s", tmp, strerror(errno));
  /* EEXIST also covers a regular file of that name: say so here rather than at the first
   * write into it */
  struct stat sb;
  if (stat(tmp, &sb) != 0 || !S_ISDIR(sb.st_mode))
    return unmix_error_set(UNMIX_ERR_IO, "cannot create directory %s: a file of that name exists", tmp);
  return UNMIX_OK;
}

unmix_status unmix_fs_read_into(const char *path, size_t max_bytes, uint8_t **buf, size_t *cap, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return unmix_error_set(UNMIX_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    return unmix_error_set(UNMIX_ERR_IO, "%s: not a regular file", path);
  }
  size_t n = (size_t)st.st_size;
  if (max_bytes > 0 && n > max_bytes) {
    fclose(f);
    return unmix_error_set(UNMIX_ERR_FORMAT, "%s: %zu bytes, more than the %zu this reader accepts", path, n,
                           max_bytes);
  }
  if (n + 1 > *cap) {
    uint8_t *nb = realloc(*buf, n + 1);
    if (!nb) {
      fclose(f);
      return unmix_error_set(UNMIX_ERR_NOMEM, "%s: cannot allocate %zu bytes to read it", path, n + 1);
    }
    *buf = nb;
    *cap = n + 1;
  }
  size_t got = fread(*buf, 1, n, f);
  int err = ferror(f);
  fclose(f);
  if (got != n || err) return unmix_error_set(UNMIX_ERR_IO, "%s: read %zu of %zu bytes", path, got, n);
  (*buf)[n] = 0;
  *len = n;
  return UNMIX_OK;
}

unmix_status unmix_fs_read(const char *path, size_t max_bytes, uint8_t **buf, size_t *len) {
  size_t cap = 0;
  *buf = NULL;
  unmix_status s = unmix_fs_read_into(path, max_bytes, buf, &cap, len);
  if (s != UNMIX_OK) {
    free(*buf);
    *buf = NULL;
  }
  return s;
}

const char *unmix_fs_dirname(const char *path, char *buf, size_t len) {
  const char *s = strrchr(path, '/');
  if (!s) snprintf(buf, len, ".");
  else if (s == path) snprintf(buf, len, "/");
  else snprintf(buf, len, "%.*s", (int)(s - path), path);
  return buf;
}

void unmix_fs_reexec_self(char **argv) {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0 || n >= (ssize_t)sizeof self - 1) return;
  self[n] = 0;
  execv(self, argv);
}
