/* upstream — one LLM turn over HTTP (libcurl): build with the backend's
 * hooks, transfer (whole or streamed), parse, and map every failure to the
 * one error value (shared/err.h) where it happens.
 *
 * One up_t per agent (per responder thread): it keeps one curl easy handle so
 * connections to an upstream are reused across turns and requests. */
#ifndef AIPROXY_UPSTREAM_H
#define AIPROXY_UPSTREAM_H

#include "agent/backend.h"
#include "shared/err.h"

typedef struct up up_t;

/* NULL on ENOMEM. */
up_t *up_new(void);
void up_free(up_t *u);

typedef struct up_call {
    const be_ops_t *be;
    const char *backend_name;   /* for messages */
    json_object *backend;       /* registry entry: base_url, api_key, timeout, ... */
    json_object *req;           /* canonical request (borrowed) */
    int stream;
    int (*on_delta)(void *ud, const char *text, size_t len);  /* stream only */
    int (*on_flush)(void *ud);  /* after each read that delivered pieces; may be NULL */
    int (*alive)(void *ud);     /* may be NULL */
    int (*watch)(void *ud);     /* may be NULL: agent_req_t.watch */
    void *ud;
    const char *request_id;     /* NULL, or sent as X-Request-Id (shared/reqid.h) */
    /* W3C trace context sent with the turn as the traceparent and
     * tracestate headers; NULL or "" sends none */
    const char *traceparent, *tracestate;
} up_call_t;

/* Runs one turn into *turn (initialised by the caller). Returns 0; or
 * -ECONNABORTED when on_delta, on_flush or alive said the client left (*e is
 * the 499 client_gone error); or another negative code with *e saying what
 * failed (status, OpenAI type and code, message). */
int up_turn(up_t *u, const up_call_t *call, be_turn_t *turn, aip_err_t *e);

#endif
