/* mtext — the Prometheus text exposition format 0.0.4, written into a
 * capped buffer, for the responder's GET /metrics and the broker's listener.
 * No I/O, no state: unit tests drive it (tests/unit/fcgi/test_metrics.c).
 *
 * A family is its "# HELP" and "# TYPE" lines, then all its samples,
 * contiguous; label values are escaped (\\ \" \n), HELP text too (\\ \n).
 * Every function returns 0, or buf_append's error (-ENOSPC past the cap,
 * -ENOMEM); the buffer then holds a cut-off text the caller must not send. */
#ifndef AIPROXY_MTEXT_H
#define AIPROXY_MTEXT_H

#include "shared/buf.h"

#include <stdint.h>

#define MTEXT_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* "# HELP name help\n# TYPE name type\n"; type is "counter", "gauge",
 * "histogram". */
int mtext_family(buf_t *b, const char *name, const char *type, const char *help);

/* One sample: name{l1="v1",...} value. `lnames`/`lvals` have n entries (n
 * may be 0); a NULL value is "". `value` is already formatted (mtext_u64,
 * mtext_f). */
int mtext_sample(buf_t *b, const char *name, const char *const *lnames,
                 const char *const *lvals, int n, const char *value);

/* A histogram series: name_bucket{...,le="b"} for each bound (ascending,
 * cumulative) and le="+Inf", then name_sum and name_count. `counts` has
 * nb + 1 entries: observations in (bound[i-1], bound[i]], the last one past
 * every bound; _count is their total, so it always equals the +Inf bucket. */
int mtext_histogram(buf_t *b, const char *name, const char *const *lnames,
                    const char *const *lvals, int n, const double *bounds, int nb,
                    const uint64_t *counts, double sum);

/* Appends `v` escaped as a label value (\\, \", \n), without quotes. */
int mtext_label_value(buf_t *b, const char *v);

/* Formats into out (>= 32 bytes): an integer, or a float as Prometheus reads
 * it ("0.25", "1e+06", "+Inf", "NaN"). Returns out. */
const char *mtext_u64(uint64_t v, char *out, size_t len);
const char *mtext_f(double v, char *out, size_t len);

#endif
