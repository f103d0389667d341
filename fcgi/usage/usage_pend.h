/* usage_pend — usage counters not yet written to Redis: sums keyed by (bucket
 * key, field), each bucket key with the EXPIREAT it wants (docs/usage.md).
 * Adding the same pair again adds to its sum, so many requests of one key
 * become one HINCRBY per field at the flush. Pure: no I/O, no lock (the
 * caller serialises access to one table; usage.c holds the process's live
 * table under a mutex and swaps it out to flush it). */
#ifndef AIPROXY_USAGE_PEND_H
#define AIPROXY_USAGE_PEND_H

#include <stddef.h>

typedef struct usage_pend usage_pend_t;

/* A new, empty table. NULL on ENOMEM. */
usage_pend_t *usage_pend_new(void);

/* Frees t and its strings (NULL is fine). */
void usage_pend_free(usage_pend_t *t);

/* Adds v to the sum of (key, field) (both copied; key at most 511 bytes,
 * field at most 511), creating it at v; the key's EXPIREAT becomes the later
 * of what it had and expire_at. v <= 0 adds nothing. 0; -EINVAL (too long);
 * -ENOMEM (the table is as it was). */
int usage_pend_add(usage_pend_t *t, const char *key, const char *field, long long v,
                   long long expire_at);

/* Empties t for reuse: every sum back to 0 and no records, its keys and
 * fields kept (so the same request shape adds without allocating; merge and
 * each skip zero sums). 0; -E2BIG when t holds more than `max_pairs` pairs or
 * two keys (a bucket changed): free it and make a new one instead. */
int usage_pend_zero(usage_pend_t *t, size_t max_pairs);

/* Counts one more request record in t (usage_pend_records). */
void usage_pend_note_record(usage_pend_t *t);

/* Distinct (key, field) pairs held, and request records noted (sums of
 * merged tables included). */
size_t usage_pend_count(const usage_pend_t *t);
unsigned long usage_pend_records(const usage_pend_t *t);

/* Adds every sum, EXPIREAT and record of src into dst (src unchanged), unless
 * dst would then hold more than `cap` pairs: -ENOSPC and dst unchanged (the
 * test is dst's count plus src's, an upper bound). 0, -ENOSPC, -ENOMEM (dst
 * may hold part of src: the caller drops both as one). */
int usage_pend_merge(usage_pend_t *dst, const usage_pend_t *src, size_t cap);

/* Calls fn(key, field, sum, arg) for every pair with a sum (zero sums,
 * left by usage_pend_zero, are skipped), and then key_fn(key,
 * expire_at, arg) once per distinct key (either fn may be NULL). Strings are
 * borrowed for the call. Stops at the first non-zero return and returns it;
 * else 0. */
int usage_pend_each(const usage_pend_t *t,
                    int (*fn)(const char *key, const char *field, long long v, void *arg),
                    int (*key_fn)(const char *key, long long expire_at, void *arg), void *arg);

#endif
