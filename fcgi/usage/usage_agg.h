/* usage_agg — sums the counters of usage buckets into the rows of one
 * GET /admin/usage answer and renders them as JSON or CSV (docs/usage.md).
 * Pure: it is fed what Redis answered (field, value pairs per bucket) and does
 * no I/O. */
#ifndef AIPROXY_USAGE_AGG_H
#define AIPROXY_USAGE_AGG_H

#include "fcgi/usage/usage_q.h"

#include <json-c/json.h>

typedef struct usage_agg usage_agg_t;

/* A new, empty sum for query `q` (borrowed: it must outlive the agg). NULL on
 * ENOMEM. */
usage_agg_t *usage_agg_new(const usage_query_t *q);

/* Frees g and everything it holds (NULL is fine); rendered answers are the
 * caller's and stay valid. */
void usage_agg_free(usage_agg_t *g);

/* Adds one counter of the bucket starting at `bucket_t`: `field` is
 * "<principal>|<assistant>|<metric>" (usage_q.h), `value` its decimal count.
 * Fields the query's filters leave out, unknown metrics and values that are
 * not counts are skipped. 0; -ENOSPC past CAP_USAGE_ROWS rows; -ENOMEM;
 * -EALREADY once the agg was rendered. */
int usage_agg_add(usage_agg_t *g, long long bucket_t, const char *field, const char *value);

/* The answer: {"object":"usage","from","to","granularity","rows":[...],
 * "totals":{...}} plus "note" when `note` is not NULL. Rows are sorted by
 * time, key, assistant and hold only the dimensions grouped by. New (the
 * caller owns it), or NULL on ENOMEM. */
json_object *usage_agg_json(usage_agg_t *g, const char *note);

/* The rows as CSV (RFC 4180, CRLF lines): a header line, then one line per
 * row in the JSON's order; tool calls as tool_calls_total plus one column
 * "tool_calls.<server>" per server seen, sorted. Malloc'd text (*len its
 * length), or NULL on ENOMEM or past CAP_USAGE_CSV. */
char *usage_agg_csv(usage_agg_t *g, size_t *len);

#endif
