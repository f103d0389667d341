/* mstore — the host's metric values in one shared anonymous segment: mapped
 * by the responder's master before it forks (so every worker, and every
 * worker that replaces a dead one, adds into the same memory), or by the one
 * process of -w 0. Values are 64-bit integers changed with relaxed atomic
 * adds; a reader sums nothing and locks nothing.
 *
 * A series is a family number and its label values; it is interned once in
 * a fixed table (CAP_METRICS_SERIES rows) with a lock-free insert (a row is
 * claimed with a compare-and-swap and published when its key is written).
 * When the table is full, or a key is too long, the values go to the
 * family's overflow row (rendered with every label "other") and
 * mstore_dropped() counts it. Gauges that a dead worker must not leave
 * behind (threads busy, requests in flight) are per worker slot, reset when
 * the slot's worker starts. No I/O; never fails once mapped: every call is a
 * no-op before mstore_init or after mstore_init failed. */
#ifndef AIPROXY_MSTORE_H
#define AIPROXY_MSTORE_H

#include "shared/caps.h"

#include <stdint.h>

#define MSTORE_SERIES   CAP_METRICS_SERIES
#define MSTORE_FAMS     32     /* family numbers 0..31 */
#define MSTORE_VALS     18     /* values per series (a histogram: buckets + 1, sum) */
#define MSTORE_KEY      120    /* label values, '\x1f'-joined, with their NUL */
#define MSTORE_WORKERS  257    /* worker slots: -w takes 0..256 */
#define MSTORE_GAUGES   4      /* per-worker gauges, numbered by the caller */

/* Maps the segment (idempotent). 0, or -ENOMEM when mmap failed (metrics
 * then stay off). Call before fork so children share it. */
int mstore_init(void);

/* 1 when the segment is mapped. */
int mstore_on(void);

/* This process is worker slot `slot` (0..MSTORE_WORKERS-1): its per-worker
 * gauges start at 0 (what a dead predecessor left is dropped). */
void mstore_worker(int slot);

/* The master reaped slot's worker: its gauges go to 0 (the process cannot
 * take back what it held). Counters stay. */
void mstore_worker_gone(int slot);

/* The value row of the series (fam, vals[0..n-1]), interned on first use.
 * `vals` are label values (NUL-terminated, no '\x1f'); NULL entries count as
 * "". Returns the row (MSTORE_VALS counters), the family's overflow row when
 * the table is full or the key too long, or NULL when off or fam is out of
 * range. */
uint64_t *mstore_row(unsigned fam, const char *const *vals, int n);

/* row[i] += v, atomically (relaxed). NULL row: nothing. */
void mstore_add(uint64_t *row, int i, uint64_t v);

/* row[i], atomically. */
uint64_t mstore_get(const uint64_t *row, int i);

/* This worker's gauge g (0..MSTORE_GAUGES-1) += d. */
void mstore_gauge_add(int g, int64_t d);

/* Gauge g summed over every worker slot. */
int64_t mstore_gauge_sum(int g);

/* Series that went to an overflow row because the table was full or the key
 * too long (each time). */
uint64_t mstore_dropped(void);

/* Calls fn for every series of family `fam`: `key` is its label values
 * '\x1f'-joined, or NULL for the overflow row (only when it was used).
 * Returns the number of calls. Series inserted meanwhile may be missed. */
int mstore_each(unsigned fam, void (*fn)(void *ud, const char *key, const uint64_t *row),
                void *ud);

#endif
