/* Logging to stderr (and optionally a run's log file), with a level threshold. */
#include "core/util/log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <time.h>

static enum unmix_log_level g_level = UNMIX_LOG_INFO;
static int g_level_init = 0;
static FILE *g_file = NULL;
static int g_rank = 0;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

void unmix_log_set_level(enum unmix_log_level lvl) {
  g_level = lvl;
  g_level_init = 1;
}
void unmix_log_set_file(FILE *f) { g_file = f; }
void unmix_log_set_rank(int rank) { g_rank = rank; }

static void init_level(void) {
  if (g_level_init) return;
  g_level_init = 1;
  const char *e = getenv("UNMIX_LOG");
  if (!e) return;
  if (!strcmp(e, "debug")) g_level = UNMIX_LOG_DEBUG;
  else if (!strcmp(e, "info")) g_level = UNMIX_LOG_INFO;
  else if (!strcmp(e, "warn")) g_level = UNMIX_LOG_WARN;
  else if (!strcmp(e, "error")) g_level = UNMIX_LOG_ERROR;
}

void unmix_log(enum unmix_log_level lvl, const char *fmt, ...) {
  init_level();
  if (lvl < g_level) return;
  if (g_rank != 0 && lvl < UNMIX_LOG_WARN) return;
  static const char *tags[] = {"debug", "info", "warning", "error"};
  char msg[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&g_mu);
  if (lvl >= UNMIX_LOG_WARN) fprintf(stderr, "unmix: %s: %s\n", tags[lvl], msg);
  else fprintf(stderr, "%s\n", msg);
  if (g_file) {
    time_t t = time(NULL);
    struct tm tmv;
    char ts[32];
    localtime_r(&t, &tmv);
    strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tmv);
    fprintf(g_file, "%s [%s] %s\n", ts, tags[lvl], msg);
    fflush(g_file);
  }
  pthread_mutex_unlock(&g_mu);
}
