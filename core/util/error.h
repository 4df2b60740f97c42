/* Error handling for unmix-c. Two kinds of failure, kept apart:
 *  - user-input failures (manifest, dataset file, checkpoint, flag): functions return an
 *    unmix_status and record a message naming the file/key/sample (unmix_error_set);
 *  - programmer errors (broken invariants, shape mismatches): UNMIX_REQUIRE prints
 *    file:line and the message, then aborts. It stays on in release builds. */
#pragma once
#include <stdarg.h>
#include <stddef.h>

typedef enum unmix_status {
  UNMIX_OK = 0,
  UNMIX_ERR_IO,          /* a file could not be opened/read/written */
  UNMIX_ERR_FORMAT,      /* a file's contents are malformed (dataset, checkpoint, CSV) */
  UNMIX_ERR_CONFIG,      /* a manifest key is unknown, mistyped or out of range */
  UNMIX_ERR_ARG,         /* a command-line flag is wrong */
  UNMIX_ERR_NOMEM,       /* host or device allocation failed */
  UNMIX_ERR_UNSUPPORTED, /* the backend or build cannot do what was asked */
  UNMIX_ERR_NUMERIC,     /* NaN/Inf appeared (loss, gradients) */
  UNMIX_ERR_INTERRUPTED, /* SIGINT/SIGTERM: state was saved, the run stops */
  UNMIX_ERR_DEVICE,      /* CUDA/cuDNN/cuBLAS reported an error */
  UNMIX_ERR_COMM,        /* a collective failed or a peer died */
  UNMIX_ERR_NETWORK      /* a download failed */
} unmix_status;

/* Records `fmt` as the current thread's error message (with the code) and returns code.
 * The message should name the file, key or sample at fault, and a hint where one helps. */
unmix_status unmix_error_set(unmix_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Prepends "context: " to the current message (e.g. the manifest path) and returns code. */
unmix_status unmix_error_wrap(unmix_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
const char *unmix_error_message(void);
unmix_status unmix_error_code(void);
void unmix_error_clear(void);
const char *unmix_status_name(unmix_status s);

#ifdef __cplusplus
#define UNMIX_NORETURN [[noreturn]]
#else
#define UNMIX_NORETURN _Noreturn
#endif
/* Programmer-error abort, with location. Never put side effects inside the condition. */
UNMIX_NORETURN void unmix_panic(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define UNMIX_FAIL(code, ...) unmix_error_set((code), __VA_ARGS__)
#define UNMIX_TRY(expr)                     \
  do {                                      \
    unmix_status unmix_try_s_ = (expr);     \
    if (unmix_try_s_ != UNMIX_OK) return unmix_try_s_; \
  } while (0)
#define UNMIX_REQUIRE(cond, ...)                                    \
  do {                                                              \
    if (!(cond)) unmix_panic(__FILE__, __LINE__, __VA_ARGS__);      \
  } while (0)
#define UNMIX_UNREACHABLE() unmix_panic(__FILE__, __LINE__, "unreachable")

/* Checked allocation helpers: NULL-checked malloc/calloc for small internal bookkeeping;
 * on failure they print a plain out-of-memory message (unmix_out_of_memory) and exit(1).
 * Large user-sized buffers use plain malloc and report UNMIX_ERR_NOMEM. */
UNMIX_NORETURN void unmix_out_of_memory(size_t bytes);
void *unmix_xmalloc(size_t bytes);
void *unmix_xcalloc(size_t count, size_t size);
void *unmix_xrealloc(void *p, size_t bytes);
char *unmix_xstrdup(const char *s);
