/* server — the broker's view of one MCP server: its registry entry, its
 * session (started lazily, restarted with backoff 1 s, 2 s, … 30 s), its
 * catalog in Redis (<prefix>mcp:catalog:<name>), whether this broker holds its
 * lease, and the "start" requests waiting for the catalog. */
#ifndef AIPROXY_SERVER_H
#define AIPROXY_SERVER_H

#include <json-c/json.h>
#include <uv.h>

#include "shared/wire.h"

typedef struct server server_t;

/* What a server needs from its host (the broker), passed in as a table the
 * way hiredis takes its event loop's hooks (ac->ev): server.c never names
 * the broker. Each hook gets `data` first. Hooks must not free or retire
 * the calling server. */
typedef struct server_ops {
    /* PUBLISHes `text` on `channel` (answers to responders). Both borrowed.
     * Fire and forget: lost when the host is disconnected from Redis, which
     * the responder sees as its own timeout, never as a wrong answer. */
    void (*publish)(void *data, const char *channel, const char *text);
    /* SETs `key` to `text` (the catalog), same terms as publish. */
    void (*set_key)(void *data, const char *key, const char *text);
    /* A retired server has freed itself (the host's shutdown waits for all). */
    void (*gone)(void *data);
    void *data;
    /* PUBLISHes a call's final answer, same terms as publish (NULL: publish
     * does it). May take another connection than publish, so a progress
     * report published just before may arrive after it (the responder
     * drops it). */
    void (*answer)(void *data, const char *channel, const char *text);
} server_ops_t;

/* A server for registry entry `cfg` (copied) on `loop`, its catalog under
 * key prefix `prefix`; `ops` is copied. Does not start it yet. NULL when out
 * of memory. Free it by server_retire only. */
server_t *server_new(const server_ops_t *ops, uv_loop_t *loop, const char *prefix,
                     const char *name, json_object *cfg);

/* The host keeps its servers in a list threaded through them (no allocation
 * per link): the next one, or NULL; and relinking. */
server_t *server_next(const server_t *s);
void server_set_next(server_t *s, server_t *next);

/* The Redis key of the server's catalog (<prefix>mcp:catalog:<name>). */
const char *server_catalog_key(const server_t *s);

/* The server called `name` in list, or NULL. */
server_t *server_find(server_t *list, const char *name);
const char *server_name(const server_t *s);
int server_owned(const server_t *s);
void server_set_owned(server_t *s, int owned);

/* Serves one request (borrowed: what is kept is copied): "start" answers
 * with the catalog once ready, "call" runs the tool; answers are PUBLISHed. */
void server_handle(server_t *s, const wire_req_t *req);

/* A responder abandoned call `id` (op "cancel"): when it is in flight here,
 * the session tells the MCP server (notifications/cancelled) and the call is
 * answered no further. Unknown ids are ignored (done already, or another
 * broker's). */
void server_cancel(server_t *s, const char *id);

/* A responder answered a sampling request of call `req->id` (op
 * "sampled"): the answer goes to the MCP server. Unknown calls and requests
 * are ignored (the call ended, and the request was refused then). */
void server_sampled(server_t *s, const wire_req_t *req);

/* 1 while a call or a "start" waits on this server (its host must not
 * idle out), else 0. */
int server_busy(const server_t *s);

/* How calls ended, for metrics (server_stats_t.calls). */
enum { SERVER_OUT_OK, SERVER_OUT_TOOL_ERROR, SERVER_OUT_TIMEOUT, SERVER_OUT_SERVER_DOWN,
       SERVER_OUT_CANCELLED, SERVER_OUT__N };
#define SERVER_DUR_BUCKETS 15

/* What the server has done since server_new, for the broker's metrics
 * listener (bmetrics.h). `state` is static text: "ready", "starting",
 * "backoff" (failed; waiting to retry) or "idle" (never asked for). */
typedef struct server_stats {
    const char *state;
    unsigned long long restarts;               /* session starts after the first */
    unsigned long long calls[SERVER_OUT__N];   /* tool calls by how they ended */
    const double *bounds;                      /* SERVER_DUR_BUCKETS upper bounds, seconds */
    unsigned long long dur[SERVER_DUR_BUCKETS + 1]; /* answered calls by duration bucket */
    double dur_sum;                            /* seconds */
    int in_flight;                             /* calls running on the session now */
    int owned;                                 /* this broker holds the server's lease */
} server_stats_t;
void server_stats(const server_t *s, server_stats_t *out);

/* Writes the catalog key again (Redis came back without it). */
void server_republish(server_t *s);

/* The registry entry may have changed: when it did, the session restarts
 * with the new settings (the old child is reaped first). */
void server_update(server_t *s, json_object *cfg);

/* Stops the server for good (removed or shutdown): calls fail, the session
 * closes, then the server frees itself and calls ops->gone. The caller
 * has already unlinked it. */
void server_retire(server_t *s);

#endif
