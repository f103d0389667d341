/* session — one MCP client session over a transport (MCP rev 2025-06-18):
 * initialize → notifications/initialized → tools/list (paginated) → ready;
 * then tools/call with many calls in flight matched by JSON-RPC id, ping both
 * ways, tools/list_changed → catalog refresh, server requests: sampling
 * handed to the call's owner (on_sampling), roots/list from the "roots"
 * setting, elicitation declined, others -32601, a call past its deadline → timed out + notifications/cancelled.
 *
 * Used by the broker (one per configured server) and by mcp-probe. All
 * callbacks run on the loop thread. No restart logic here: the owner decides
 * (broker.c restarts with backoff). */
#ifndef AIPROXY_SESSION_H
#define AIPROXY_SESSION_H

#include <json-c/json.h>
#include <stdint.h>
#include <uv.h>

typedef struct mcp_session mcp_session_t;

/* One progress report of a call, as relayed (see on_progress). Borrowed. */
typedef struct mcp_progress {
    double progress;             /* as the server reported it */
    double total;                /* < 0 when the server gave none */
    const char *message;         /* NULL when the server gave none */
    int64_t left_ms;             /* the call's deadline, just extended, is this far away */
} mcp_progress_t;

typedef struct mcp_session_cbs {
    /* The catalog: after initialization and after each list_changed refresh.
     * `tools` is an array of {name, description, inputSchema, and title,
     * outputSchema, annotations, execution, _meta when given}, borrowed for
     * the call. */
    void (*on_tools)(void *ud, json_object *tools);
    /* The session is gone (failed to start, the server died, or after
     * mcp_session_close). Calls in flight have already been answered with an
     * error. Fires once; the owner may then mcp_session_free. */
    void (*on_closed)(void *ud, const char *reason);
    /* A call in flight reported progress (MCP notifications/progress for the
     * progressToken sent with it); `call_ud` is the ud given to
     * mcp_session_call. Every report extends the call's deadline (see
     * mcp_session_call); this fires at most once per SESSION_RELAY_MS (100 ms)
     * per call, with the latest report (the ones between are coalesced), and
     * never after the call's cb. It must not cancel the call. May be NULL. */
    void (*on_progress)(void *ud, void *call_ud, const mcp_progress_t *p);
    void *ud;
    /* The server sent sampling/createMessage while calls are in flight;
     * `calls` are their call_ud (n >= 1, newest first), `params` is borrowed.
     * Pick the call it belongs to (*chosen) and return 0: answer it later,
     * or at once, with mcp_session_answer(…, *chosen, sid, …); a call that
     * ends first has it refused for you. Or return a negative code with a
     * reason in err: the server gets it as a JSON-RPC error at once. NULL:
     * the "sampling" capability is not declared, and requests are refused. */
    int (*on_sampling)(void *ud, void *const *calls, size_t n, int64_t sid, json_object *params,
                       void **chosen, char *err, size_t errlen);
} mcp_session_cbs_t;

/* Starts a session for the registry entry `server` (its "transport" picks the
 * wire). NULL with err when the transport cannot start (no callback fires). */
mcp_session_t *mcp_session_new(uv_loop_t *loop, const char *name, json_object *server,
                               const mcp_session_cbs_t *cbs, char *err, size_t errlen);

/* Answer to one call: ok=1 with the tools/call result object (borrowed; NULL
 * when read without a tree, see mcp_session_raw_calls), or
 * ok=0 with a human-readable error ("timed out after 5 s", "server exited …").
 * Fires exactly once, never from inside mcp_session_call. */
typedef void (*mcp_session_call_cb)(void *ud, int ok, json_object *result, const char *error);

/* Calls `tool` with `args` (borrowed; NULL = {}); deadline_ms is unix ms (0 =
 * the server's timeout), turned at once into a CLOCK_MONOTONIC deadline, so a
 * step of the wall clock afterwards neither fires nor delays it. The call
 * carries _meta.progressToken (its JSON-RPC id): each progress report for it
 * moves its deadline to now + its own timeout (the time it was given here)
 * again, never past start + the server's max_timeout (default 3600 s; never
 * below the first deadline). Queued until the session is ready. Returns 0 or
 * -ENOTCONN (closing) / -ENOMEM, in which case cb never fires. */
int mcp_session_call(mcp_session_t *s, const char *tool, json_object *args, int64_t deadline_ms,
                     mcp_session_call_cb cb, void *ud);

/* mcp_session_call with more in the call's params._meta, beside
 * progressToken (which they cannot replace): the members of `meta` (an
 * object, borrowed; NULL: none), e.g. {"traceparent": "00-…"}
 * (docs/traces.md), and the request id `rid` (NULL or not reqid_valid:
 * none) as REQID_MCP_META, "io.aiproxy/request_id" (shared/reqid.h), which
 * the HTTP transports also send as the POST's X-Request-Id
 * (httpwire_body_rid). */
int mcp_session_call_full(mcp_session_t *s, const char *tool, json_object *args,
                          json_object *meta, int64_t deadline_ms, const char *rid,
                          mcp_session_call_cb cb, void *ud);

/* During a call's callback with ok = 1: the text of its result exactly as
 * the server wrote it (*len bytes, valid during the callback only), so the
 * answer can carry it without a json-c round trip; NULL when there is none
 * to give (the answer came in a batch, or the text could not be cut out). */
const char *mcp_session_raw_result(const mcp_session_t *s, size_t *len);

/* With on non-zero, the common answer to a call ({"jsonrpc":"2.0","id":N,
 * "result":{...}}, jsonrpc_scan_result) is read without a json-c tree: its
 * callback gets ok = 1 with result NULL, and mcp_session_raw_result and
 * mcp_session_raw_is_error (valid during the callback) say what it is.
 * Every other message is parsed as before. Off by default. */
void mcp_session_raw_calls(mcp_session_t *s, int on);

/* During a call's callback with ok = 1 and result NULL: whether the result
 * says "isError": true. */
int mcp_session_raw_is_error(const mcp_session_t *s);

/* The JSON-RPC id the call made with user data `ud` went out with; 0 while
 * it is queued (the session is not ready) or when no call has that ud. */
int64_t mcp_session_call_rpc_id(const mcp_session_t *s, const void *ud);

/* Abandons the call made with user data `ud`: the server gets
 * notifications/cancelled with its requestId and `reason` (when the call was
 * sent already), and cb never fires. Returns 0, or -ENOENT when no call in
 * flight has that ud (it was answered already: its cb has fired). */
int mcp_session_cancel(mcp_session_t *s, void *ud, const char *reason);

/* Answers server request `sid` handed to call `call_ud` by on_sampling: the
 * createMessage result (borrowed object) or, when result is NULL, a JSON-RPC
 * error with `error`. 0, or -ENOENT when no such request waits (the call
 * ended: it was refused already). */
int mcp_session_answer(mcp_session_t *s, void *call_ud, int64_t sid, json_object *result,
                       const char *error);

/* 1 once initialized and the catalog is listed. */
int mcp_session_ready(const mcp_session_t *s);

/* The negotiated protocol version ("" before). */
const char *mcp_session_protocol(const mcp_session_t *s);

/* Ends the session cleanly: pending calls fail ("session closed"), the
 * transport closes; on_closed fires when done. Safe to call twice. */
void mcp_session_close(mcp_session_t *s);

/* Frees a session whose on_closed has fired. NULL is a no-op. */
void mcp_session_free(mcp_session_t *s);

#endif
