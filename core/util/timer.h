/* Monotonic wall-clock time in seconds. */
#pragma once
double unmix_now(void);
