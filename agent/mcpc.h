/* mcpc — the responder's side of the broker protocol (docs/broker-protocol.md):
 * tool catalogs and tool calls on MCP servers, through Redis pub/sub to the
 * mcp-broker daemon that holds the sessions.
 *
 * One mcpc_t per responder thread. It owns no Redis connection: commands
 * borrow one of the process's pool (shared/rpool.h) for each publish or
 * read, and replies come through the process's one subscriber
 * (agent/mcphub.h) on the reply channel <prefix>mcp:reply:<host>:<pid>. */
#ifndef AIPROXY_MCPC_H
#define AIPROXY_MCPC_H

#include "shared/err.h"

#include <json-c/json.h>
#include <stddef.h>

typedef struct mcpc mcpc_t;

/* A client for Redis at `url` with key `prefix`; connects lazily. NULL on ENOMEM. */
mcpc_t *mcpc_new(const char *url, const char *prefix);
void mcpc_free(mcpc_t *c);

/* The tools `server` advertises: *tools is a new array of {name, description,
 * inputSchema} (caller owns). Read from the catalog in Redis; when there is
 * none, asks the broker to start the server and waits for it, at most
 * timeout_ms. Returns 0, or a negative code with *e the error to answer:
 * 503 mcp_broker_unavailable (no broker listening), 504 mcp_timeout, 502
 * mcp_server_unavailable (the server failed to start: e->msg has its
 * reason), 503 redis_unavailable. */
int mcpc_tools(mcpc_t *c, const char *server, int timeout_ms, json_object **tools,
               aip_err_t *e);

/* mcpc_tools, or with ask_broker 0 only the catalog Redis already holds:
 * -ENOENT (and *e) when there is none, so no server is started for it. */
int mcpc_tools_ex(mcpc_t *c, const char *server, int timeout_ms, int ask_broker,
                  json_object **tools, aip_err_t *e);

typedef struct mcpc_call {
    const char *server;      /* in */
    const char *tool;        /* in: the tool's MCP name */
    const char *args_json;   /* in: the arguments object as JSON text */
    const char *request_id;  /* in: NULL, or the request's id, sent as "rid" */
    const char *traceparent; /* in: W3C trace context for the call, sent to the
                                broker ("tp") and on to the MCP server; NULL or
                                "" for none */
    char *text;              /* out: result flattened to text (malloc'd) */
    int is_error;            /* out: text starts with "[tool error]" */
    int outcome;             /* out: AGENT_TOOL_* (agent/agent.h): ok, tool error,
                                timeout, or server down (the broker's error) */
    json_object *result;     /* out: the tools/call result as the server sent
                                it (a reference, for mcpc_parts), or NULL when
                                the text was made here (failure, timeout) */
} mcpc_call_t;

/* A progress report for one running call (MCP notifications/progress,
 * relayed by the broker). Everything is borrowed for the callback's time. */
typedef struct mcpc_progress {
    size_t index;            /* which of the n calls */
    double progress;         /* as the server reported it */
    double total;            /* < 0 when the server gave none */
    const char *message;     /* NULL when the server gave none */
} mcpc_progress_t;

/* What mcpc_call_many tells its caller while it waits. Every member may be
 * NULL; all run on the calling thread, inside mcpc_call_many. */
typedef struct mcpc_hooks {
    /* Polled at least every 100 ms; 0 when the client has gone. */
    int (*alive)(void *ud);
    /* A call reported progress (its deadline was extended). Non-zero: the
     * client has gone (treated as alive() returning 0). */
    int (*on_progress)(void *ud, const mcpc_progress_t *p);
    /* Call `index` has its text (result, tool error or timeout), `ms` after
     * the calls went out. Non-zero: the client has gone. */
    int (*on_done)(void *ud, size_t index, long long ms);
    void *ud;
    /* The MCP server running call `index` asks for an LLM completion (MCP
     * sampling/createMessage, relayed by the broker; `params` borrowed).
     * `left_ms`: how long the call may still run (its deadline keeps
     * running while this does). Return 0 with *result a new object {role,
     * content:{type:"text",text}, model, stopReason} (mcpc sends and frees
     * it), or a negative code with a reason in err that the server receives
     * as the refusal; -ECONNABORTED also means the client has gone. NULL:
     * every such request is refused. */
    int (*on_sampling)(void *ud, size_t index, json_object *params, long long left_ms,
                       json_object **result, char *err, size_t errlen);
} mcpc_hooks_t;

/* Runs n calls concurrently and waits for all, each bounded by timeout_ms;
 * a call whose MCP server reports progress gets timeout_ms again with each
 * report (on_progress fires), up to the server's max_timeout as the broker
 * applies it (docs/broker-protocol.md, "Progress").
 * Returns 0 when every call has its text (tool failures, timeouts and crashed
 * servers are results with is_error set, for the model to see), or a request
 * failure with *e the error to answer: -ECONNABORTED when a hook said the
 * client left (calls are abandoned; 499 client_gone), another negative
 * code for 503 mcp_broker_unavailable or redis_unavailable. `hooks` may be
 * NULL. */
int mcpc_call_many(mcpc_t *c, mcpc_call_t *calls, size_t n, int timeout_ms,
                   const mcpc_hooks_t *hooks, aip_err_t *e);

/* Frees the out-fields of n calls (text, result). */
void mcpc_calls_clear(mcpc_call_t *calls, size_t n);

/* Flattens an MCP tools/call result to the text the model sees (the rules
 * are in docs/agent.md, "Tool results the model sees"): text blocks joined by
 * "\n"; image/audio as "[binary <mime> content omitted]"; resource_link as a
 * "[resource link] ..." line; embedded text resources as their text, blobs as
 * a placeholder with mime and size; other blocks as JSON; structuredContent
 * as JSON when content is empty; isError prefixed "[tool error] ". Past
 * CAP_MCPC_TEXT the text says it was truncated. malloc'd; NULL on ENOMEM. */
char *mcpc_flatten(json_object *result);

/* The same result as OpenAI content parts for a vision upstream: a new array
 * of {type:"text"} parts (the blocks mcpc_flatten renders, consecutive ones
 * joined) and {type:"image_url", image_url:{url:"data:<mime>;base64,..."}}
 * parts, in the server's order. An image whose base64 passes image_cap bytes
 * is a text placeholder with its mime and size. Returns NULL when there is no
 * image to carry (image_cap 0, none in the result, or all over the cap: the
 * text of mcpc_flatten says it all) or on ENOMEM (*nomem set). Caller owns. */
json_object *mcpc_parts(json_object *result, size_t image_cap, int *nomem);

/* Small key-value storage on the process's command connections, for
 * agent state that must outlive one request (agent/mixed.c). `key` is
 * relative: the client's prefix is put in front. */

/* SET key value EX ttl_s. Returns 0, or -ECONNREFUSED / -EIO with *e the
 * 503 redis_unavailable error. */
int mcpc_kv_set(mcpc_t *c, const char *key, const char *val, size_t len, int ttl_s,
                aip_err_t *e);

/* GET key. Returns 1 with *val (malloc'd, NUL-terminated, caller frees) and
 * *len, 0 when the key is absent (or not a string), -EFBIG when the value
 * passes `cap` bytes (nothing returned), or -ECONNREFUSED / -EIO with *e the
 * 503 redis_unavailable error. */
int mcpc_kv_get(mcpc_t *c, const char *key, size_t cap, char **val, size_t *len,
                aip_err_t *e);

/* The Redis URL the client was made with (borrowed), for a caller that
 * needs a connection of its own (a SUBSCRIBE, fcgi/mcp's GET stream). */
const char *mcpc_url(const mcpc_t *c);

#endif
