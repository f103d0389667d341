/* mono — the clocks the code waits by, in the units it waits in: one
 * reading of CLOCK_MONOTONIC in milliseconds, and "ms from now" as the
 * absolute timespec pthread_cond_timedwait and friends take. */
#ifndef AIPROXY_MONO_H
#define AIPROXY_MONO_H

#include <time.h>

/* CLOCK_MONOTONIC now, in milliseconds. */
long long mono_ms(void);

/* The time `ms` from now (negative: already past) on `clock` (CLOCK_MONOTONIC for a condition
 * variable made with pthread_condattr_setclock, CLOCK_REALTIME for the
 * default one), normalised. */
struct timespec mono_deadline(clockid_t clock, long long ms);

#endif
