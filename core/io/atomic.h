/* Atomic file replacement shared by checkpoints, metrics CSV rewrites and run manifests:
 * write `path.tmp.<pid>`, fsync it, rename it over `path`, fsync the directory. A reader
 * sees either the old file or the complete new one, never a half-written file. */
#pragma once
#include <stddef.h>

#include "core/util/error.h"

struct unmix_chunk {
  const void *data;
  size_t len;
};

/* Writes the concatenation of `chunks` to `path` atomically. UNMIX_ERR_IO names the path. */
unmix_status unmix_atomic_write(const char *path, const struct unmix_chunk *chunks, size_t n);
/* write(2) until done (retrying EINTR and short writes). */
unmix_status unmix_write_all(int fd, const void *data, size_t len, const char *path);
/* pread(2) exactly len bytes at off; a short read is UNMIX_ERR_FORMAT ("truncated"). */
unmix_status unmix_read_exact(int fd, void *data, size_t len, long long off, const char *path);
/* fsync the directory holding `path` (makes a rename durable). */
unmix_status unmix_fsync_dir_of(const char *path);
