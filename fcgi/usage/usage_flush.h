/* usage_flush — the worker process's pending usage counters and the thread
 * that writes them to Redis (docs/usage.md "How it is kept"). usage_after
 * merges each request's record into the live table (usage_pend.h) under a
 * mutex, with no I/O; the flusher swaps the table out under the same mutex
 * every flush_ms, and writes the swapped copy as one MULTI/EXEC pipeline on a
 * connection borrowed from the process's pool (shared/rpool.h). Started in a
 * worker after its fork (usage_start), so a child never inherits a parent's
 * thread or sums. */
#ifndef AIPROXY_USAGE_FLUSH_H
#define AIPROXY_USAGE_FLUSH_H

#include "fcgi/usage/usage_pend.h"

#include <hiredis/hiredis.h>

#define USAGE_FLUSH_MS_DEFAULT 1000

/* Merges the record `rec` (the caller's; unchanged) into the live table.
 * 0; -ESRCH when no flusher runs (CGI, before usage_start, after usage_stop:
 * the caller writes it itself); -ENOSPC when the table would pass
 * CAP_USAGE_PENDING (the caller drops it); -ENOMEM. Wakes the flusher early
 * past half the cap. Thread-safe. */
int usage_flush_add(const usage_pend_t *rec);

/* Sets the flush interval (ms, > 0) the running flusher waits between
 * flushes (the registry's usage.flush_ms, seen by usage_after). Thread-safe. */
void usage_flush_interval(int ms);

/* Writes t on c as MULTI, one HINCRBY per pair, one EXPIREAT per key, EXEC,
 * reading every reply. 0; -EIO when the connection failed before EXEC's
 * reply was read (Redis discarded the transaction, unless the reply alone
 * was lost: retrying may then count twice); -EPROTO when Redis refused it
 * (retrying will not help). Empty t: 0, nothing sent. */
int usage_flush_send(redisContext *c, const usage_pend_t *t, char *why, size_t whylen);

/* Counts n dropped records and warns, at most once a minute over all
 * threads, saying why. */
void usage_flush_drop(unsigned long n, const char *why);

#endif
