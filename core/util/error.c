/* Thread-local error message store and the programmer-error panic. */
#include "core/util/error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNMIX_ERRMSG_MAX 2048
static _Thread_local char tl_msg[UNMIX_ERRMSG_MAX];
static _Thread_local unmix_status tl_code = UNMIX_OK;

unmix_status unmix_error_set(unmix_status code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(tl_msg, sizeof tl_msg, fmt, ap);
  va_end(ap);
  tl_code = code;
  return code;
}

unmix_status unmix_error_wrap(unmix_status code, const char *fmt, ...) {
  char prefix[UNMIX_ERRMSG_MAX];
  char old[UNMIX_ERRMSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, tl_msg, sizeof old);
  size_t pl = strlen(prefix);
  if (pl > sizeof tl_msg - 3) pl = sizeof tl_msg - 3;
  memcpy(tl_msg, prefix, pl);
  tl_msg[pl] = ':';
  tl_msg[pl + 1] = ' ';
  size_t room = sizeof tl_msg - pl - 3;
  size_t ol = strnlen(old, room);
  memcpy(tl_msg + pl + 2, old, ol);
  tl_msg[pl + 2 + ol] = 0;
  tl_code = code;
  return code;
}

const char *unmix_error_message(void) { return tl_msg[0] ? tl_msg : "(no error message)"; }
unmix_status unmix_error_code(void) { return tl_code; }
void unmix_error_clear(void) {
  tl_msg[0] = 0;
  tl_code = UNMIX_OK;
}

const char *unmix_status_name(unmix_status s) {
  switch (s) {
    case UNMIX_OK: return "ok";
    case UNMIX_ERR_IO: return "I/O error";
    case UNMIX_ERR_FORMAT: return "format error";
    case UNMIX_ERR_CONFIG: return "manifest error";
    case UNMIX_ERR_ARG: return "argument error";
    case UNMIX_ERR_NOMEM: return "out of memory";
    case UNMIX_ERR_UNSUPPORTED: return "unsupported";
    case UNMIX_ERR_NUMERIC: return "numerical error";
    case UNMIX_ERR_INTERRUPTED: return "interrupted";
    case UNMIX_ERR_DEVICE: return "device error";
    case UNMIX_ERR_COMM: return "communication error";
    case UNMIX_ERR_NETWORK: return "network error";
  }
  return "unknown error";
}

UNMIX_NORETURN void unmix_panic(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "unmix: internal error at %s:%d: ", file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\n(this is a bug in unmix-c; please report it with the command you ran)\n");
  fflush(stderr);
  abort();
}

/* Running out of host memory is not a bug: a configuration (model.dim, batch size, queue,
 * dataset) can simply need more than the machine or its `ulimit -v` gives. The x-allocators
 * cannot return an error, so they say so plainly and exit with status 1 (no abort, no core). */
UNMIX_NORETURN void unmix_out_of_memory(size_t bytes) {
  fprintf(stderr,
          "unmix: out of memory: could not allocate %zu bytes (%.1f MiB) of host memory.\n"
          "The configuration needs more memory than this machine (or its `ulimit -v`) allows: use a smaller\n"
          "model (model.dim, model.width), batch (optim.batch_size), queue (moco.K) or dataset subset.\n",
          bytes, (double)bytes / (1024.0 * 1024.0));
  fflush(stderr);
  exit(1);
}

void *unmix_xmalloc(size_t bytes) {
  void *p = malloc(bytes ? bytes : 1);
  if (!p) unmix_out_of_memory(bytes);
  return p;
}
void *unmix_xcalloc(size_t count, size_t size) {
  void *p = calloc(count ? count : 1, size ? size : 1);
  if (!p) unmix_out_of_memory(size && count > SIZE_MAX / size ? SIZE_MAX : count * size);
  return p;
}
void *unmix_xrealloc(void *p, size_t bytes) {
  void *q = realloc(p, bytes ? bytes : 1);
  if (!q) unmix_out_of_memory(bytes);
  return q;
}
char *unmix_xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = unmix_xmalloc(n);
  memcpy(d, s, n);
  return d;
}
