/* File-system helpers shared by the trainer, the data layer, the CSV reader and the
 * evaluation commands: `mkdir -p`, reading a whole regular file into memory, and the
 * directory part of a path. Errors are unmix_status codes whose message names the path. */
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/util/error.h"

/* mkdir -p: creates `path` and every missing parent with `mode` (masked by the umask, as
 * mkdir(2) does). Existing directories are fine. UNMIX_ERR_IO names the component that
 * could not be created; UNMIX_ERR_ARG a path longer than PATH_MAX. */
unmix_status unmix_fs_mkdirs(const char *path, mode_t mode);

/* Reads the whole regular file `path` into *buf, growing it (realloc) when *cap is too
 * small, so a caller reading many files reuses one buffer. The data is followed by a NUL
 * byte that *len does not count (text can be parsed in place). max_bytes > 0 refuses a
 * larger file with UNMIX_ERR_FORMAT before reading it; 0 = no limit. On error *buf stays
 * valid (possibly grown) and is the caller's to free. */
unmix_status unmix_fs_read_into(const char *path, size_t max_bytes, uint8_t **buf, size_t *cap, size_t *len);
/* The same into a fresh buffer (*buf NULL on error). */
unmix_status unmix_fs_read(const char *path, size_t max_bytes, uint8_t **buf, size_t *len);

/* The directory of a file path into buf ("." when it has none, "/" for a file at the
 * root); returns buf. */
const char *unmix_fs_dirname(const char *path, char *buf, size_t len);
/* Runs this program again with argv (after an environment change the libraries must see at
 * load). Execs the binary /proc/self/exe resolves to, not the link itself, so the process keeps
 * its name (/proc/PID/comm, ps, pkill: "unmix", not "exe"). Returns only when exec failed. */
void unmix_fs_reexec_self(char **argv);
