/* server — the broker's view of one MCP server: its registry entry, its
 * session (started lazily, restarted with backoff 1 s, 2 s, … 30 s), its
 * catalog in Redis (<prefix>mcp:catalog:<name>), whether this broker holds its
 * lease, and the "start" requests waiting for the catalog. */
#ifndef AIPROXY_SERVER_H
#define AIPROXY_SERVER_H

#include <json-c/json.h>

#include "mcp-broker/broker.h"
#include "shared/wire.h"

typedef struct server server_t;

struct server_waiter;
struct server_call;

struct server {
    struct server *next;         /* the broker's list */
    /* the rest is server.c's */
    broker_t *b;
    char name[256];
    char catalog_key[512];
    char *cfg_text;              /* registry entry as JSON text, to spot changes */
    json_object *cfg;            /* owned copy of the registry entry */
    struct mcp_session *sess;
    int owned, retired, restart_now, backoff_ms, in_backoff, wanted;
    uv_timer_t timer;            /* restart backoff */
    struct server_waiter *waiters;
    struct server_call *calls;   /* in flight on the session, for cancels */
    json_object *tools;          /* the last catalog */
    char error[512];             /* why the last start failed, "" when fine */
};

/* A server for registry entry `cfg` (copied); does not start it yet. */
server_t *server_new(broker_t *b, const char *name, json_object *cfg);

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

/* Writes the catalog key again (Redis came back without it). */
void server_republish(server_t *s);

/* The registry entry may have changed: when it did, the session restarts
 * with the new settings (the old child is reaped first). */
void server_update(server_t *s, json_object *cfg);

/* Stops the server for good (removed or shutdown): calls fail, the session
 * closes, then the server frees itself and calls broker_server_gone. The
 * caller has already unlinked it. */
void server_retire(server_t *s);

#endif
