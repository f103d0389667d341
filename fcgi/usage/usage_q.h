/* usage_q — the pure parts of usage accounting (docs/usage.md): UTC time
 * buckets and their names, the Redis field of one counter, and the query of
 * GET /admin/usage. No I/O, no allocation. */
#ifndef AIPROXY_USAGE_Q_H
#define AIPROXY_USAGE_Q_H

#include "shared/caps.h"

#include <stddef.h>

enum usage_gran { USAGE_HOUR = 0, USAGE_DAY = 1 };

/* group_by bits */
#define USAGE_G_KEY 1u
#define USAGE_G_ASSISTANT 2u
#define USAGE_G_TIME 4u

/* Longest principal id / assistant / server name kept in a field (longer ones
 * are cut: ids are at most "apiman:" + 64, names 64). */
#define USAGE_ID_MAX 96
/* A whole field "<principal>|<assistant>|t:<server>", NUL included. */
#define USAGE_FIELD_MAX (3 * USAGE_ID_MAX + 8)
/* A bucket's name: YYYYMMDDHH or YYYYMMDD, NUL included. */
#define USAGE_BUCKET_MAX 16
/* An RFC 3339 time "YYYY-MM-DDTHH:MM:SSZ" or a day "YYYY-MM-DD", NUL included. */
#define USAGE_TIME_MAX 24

/* The start (unix seconds) of the UTC hour or day holding `t`. */
long long usage_bucket_start(long long t, int gran);

/* The name of the bucket holding `t` into out (USAGE_BUCKET_MAX bytes):
 * "2026120721" (hour) or "20261207" (day), as Redis keys use it. */
void usage_bucket_name(long long t, int gran, char *out);

/* The label of the bucket holding `t` into out (USAGE_TIME_MAX bytes), as
 * answers show it: "2026-12-07T21:00:00Z" (hour) or "2026-12-07" (day). */
void usage_bucket_label(long long t, int gran, char *out);

/* `t` as RFC 3339 UTC into out (USAGE_TIME_MAX bytes). */
void usage_time_format(long long t, char *out);

/* Parses a time given to the query: unix seconds ("1796680800"), a day
 * ("2026-12-07": its midnight UTC, or with `is_to` the midnight after it, so
 * to=<day> covers that day), or RFC 3339 ("2026-12-07T21:00:00Z",
 * "...T21:00:00.5+01:00"; a '+' decoded to a space by the query string is
 * accepted). 0 and *out, or -EINVAL. */
int usage_time_parse(const char *s, int is_to, long long *out);

/* Copies `s` into out (USAGE_ID_MAX + 1 bytes) with every byte outside
 * [A-Za-z0-9._:-] made '_' and cut at USAGE_ID_MAX; NULL or "" gives "-".
 * Keeps the field separator '|' out of ids and names. */
void usage_id_clean(const char *s, char *out);

/* "<principal>|<assistant>|<metric>" into out (USAGE_FIELD_MAX bytes) from
 * ids already cleaned. Returns 0 or -ENOSPC. */
int usage_field(char *out, size_t len, const char *principal, const char *assistant,
                const char *metric);

/* Splits a field: the principal and assistant are copied into p and a
 * (USAGE_ID_MAX + 1 bytes each), *metric points into `field` (borrowed). 0,
 * or -EINVAL when it is not a usage field. */
int usage_field_split(const char *field, char *p, char *a, const char **metric);

/* The query's raw parameters (NULL when absent), as the request gave them. */
typedef struct usage_params {
    const char *key, *assistant, *from, *to, *granularity, *group_by, *format, *accept;
} usage_params_t;

typedef struct usage_query {
    long long from, to;       /* [from, to), unix seconds */
    int gran;                 /* USAGE_HOUR or USAGE_DAY */
    long long first;          /* start of the first bucket */
    long nbuckets;            /* buckets from `first`, at most CAP_USAGE_BUCKETS */
    unsigned group;           /* USAGE_G_* */
    const char *key, *assistant;  /* filters, borrowed from the params; NULL: all */
    int csv;
} usage_query_t;

/* Parses the query of GET /admin/usage at time `now` (docs/usage.md). 0, or
 * -EINVAL with err (errlen bytes) saying what to send instead and *param
 * naming the parameter (static). */
int usage_query_parse(const usage_params_t *p, long long now, usage_query_t *q, char *err,
                      size_t errlen, const char **param);

#endif
