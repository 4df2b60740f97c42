/* Atomic file replacement (temp file + fsync + rename + directory fsync) and exact
 * read/write loops. */
#include "core/io/atomic.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

unmix_status unmix_write_all(int fd, const void *data, size_t len, const char *path) {
  const char *p = data;
  while (len > 0) {
    size_t chunk = len > (1u << 30) ? (1u << 30) : len;
    ssize_t w = write(fd, p, chunk);
    if (w < 0) {
      if (errno == EINTR) continue;
      return unmix_error_set(UNMIX_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    }
    if (w == 0) return unmix_error_set(UNMIX_ERR_IO, "cannot write '%s': no progress (disk full?)", path);
    p += w;
    len -= (size_t)w;
  }
  return UNMIX_OK;
}

unmix_status unmix_read_exact(int fd, void *data, size_t len, long long off, const char *path) {
  char *p = data;
  while (len > 0) {
    size_t chunk = len > (1u << 30) ? (1u << 30) : len;
    ssize_t r = pread(fd, p, chunk, (off_t)off);
    if (r < 0) {
      if (errno == EINTR) continue;
      return unmix_error_set(UNMIX_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
    }
    if (r == 0) return unmix_error_set(UNMIX_ERR_FORMAT, "'%s' is truncated (ends at byte %lld)", path, off);
    p += r;
    off += r;
    len -= (size_t)r;
  }
  return UNMIX_OK;
}

unmix_status unmix_fsync_dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  char dir[4096];
  if (!slash) snprintf(dir, sizeof dir, ".");
  else if (slash == path) snprintf(dir, sizeof dir, "/");
  else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return unmix_error_set(UNMIX_ERR_IO, "cannot open directory '%s': %s", dir, strerror(errno));
  int rc = fsync(fd);
  int err = errno;
  close(fd);
  /* some file systems cannot fsync a directory; the rename itself has happened */
  if (rc != 0 && err != EINVAL && err != ENOTSUP)
    return unmix_error_set(UNMIX_ERR_IO, "cannot fsync directory '%s': %s", dir, strerror(err));
  return UNMIX_OK;
}

unmix_status unmix_atomic_write(const char *path, const struct unmix_chunk *chunks, size_t n) {
  size_t tl = strlen(path) + 32;
  char *tmp = malloc(tl);
  if (!tmp) return unmix_error_set(UNMIX_ERR_NOMEM, "writing '%s': out of memory", path);
  snprintf(tmp, tl, "%s.tmp.%ld", path, (long)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    unmix_status st = unmix_error_set(UNMIX_ERR_IO, "cannot create '%s': %s", tmp, strerror(errno));
    free(tmp);
    return st;
  }
  unmix_status st = UNMIX_OK;
  for (size_t i = 0; i < n && st == UNMIX_OK; i++)
    if (chunks[i].len) st = unmix_write_all(fd, chunks[i].data, chunks[i].len, tmp);
  if (st == UNMIX_OK && fsync(fd) != 0) st = unmix_error_set(UNMIX_ERR_IO, "cannot fsync '%s': %s", tmp, strerror(errno));
  if (close(fd) != 0 && st == UNMIX_OK) st = unmix_error_set(UNMIX_ERR_IO, "cannot close '%s': %s", tmp, strerror(errno));
  if (st == UNMIX_OK && rename(tmp, path) != 0)
    st = unmix_error_set(UNMIX_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
  if (st != UNMIX_OK) {
    unlink(tmp);
    free(tmp);
    return st;
  }
  free(tmp);
  return unmix_fsync_dir_of(path);
}
