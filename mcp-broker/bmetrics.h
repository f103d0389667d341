/* bmetrics — the broker's Prometheus metrics on a tiny HTTP/1.1 listener
 * of its own loop (`--metrics HOST:PORT`, env AIPROXY_BROKER_METRICS):
 * GET /metrics answers the text format 0.0.4 (docs/observability.md); any
 * other request 404, and the connection closes after each answer. Figures
 * are the broker's own (its servers' sessions, restarts, calls), read on
 * the loop when a scrape arrives: nothing is counted twice, nothing shared.
 * Bind it to loopback or a private address: it has no authentication (it
 * tells server names and counts, never arguments, results or secrets). */
#ifndef AIPROXY_BMETRICS_H
#define AIPROXY_BMETRICS_H

#include "mcp-broker/broker.h"
#include "shared/buf.h"

#include <uv.h>

typedef struct bmetrics bmetrics_t;

/* Listens on `hostport` ("127.0.0.1:9464", "[::1]:9464") on `loop`, serving
 * `broker`'s figures (borrowed: it must outlive the listener). NULL with
 * err on a bad address or a failed bind. */
bmetrics_t *bmetrics_start(uv_loop_t *loop, broker_t *broker, const char *hostport, char *err,
                           size_t errlen);

/* Closes the listener and every open scrape connection; frees itself once
 * libuv has closed them (run the loop). NULL: nothing. */
void bmetrics_stop(bmetrics_t *m);

/* The exposition of `servers` (a server_next list) into b. 0 or buf's
 * error. */
int bmetrics_render(buf_t *b, struct server *servers);

#endif
