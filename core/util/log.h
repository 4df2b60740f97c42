/* Logging: levels, optional mirror to a run's train.log, plain lines when not a TTY. */
#pragma once
#include <stdio.h>

enum unmix_log_level { UNMIX_LOG_DEBUG = 0, UNMIX_LOG_INFO, UNMIX_LOG_WARN, UNMIX_LOG_ERROR };

void unmix_log_set_level(enum unmix_log_level lvl);   /* default INFO; env UNMIX_LOG=debug|info|warn|error */
void unmix_log_set_file(FILE *f);                     /* mirror every line to f (NULL: stop) */
void unmix_log_set_rank(int rank);                    /* ranks other than 0 log warnings and errors only */
void unmix_log(enum unmix_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define unmix_log_debug(...) unmix_log(UNMIX_LOG_DEBUG, __VA_ARGS__)
#define unmix_log_info(...) unmix_log(UNMIX_LOG_INFO, __VA_ARGS__)
#define unmix_log_warn(...) unmix_log(UNMIX_LOG_WARN, __VA_ARGS__)
#define unmix_log_error(...) unmix_log(UNMIX_LOG_ERROR, __VA_ARGS__)
