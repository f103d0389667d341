/* transport — one MCP server connection carrying JSON-RPC messages, whatever the
 * wire: stdio (a child process), legacy HTTP+SSE, or streamable HTTP. The
 * session layer (session.c) speaks JSON-RPC over this and knows nothing of the
 * wire; transports know nothing of JSON-RPC methods, except that the HTTP ones
 * read the negotiated protocol version and session id they must send.
 *
 * All callbacks run on the broker's libuv loop thread. After on_closed fires,
 * no other callback fires and the owner frees the transport with
 * mcp_transport_free (libuv's rule: free only after the close callback). */
#ifndef AIPROXY_TRANSPORT_H
#define AIPROXY_TRANSPORT_H

#include <json-c/json.h>
#include <stddef.h>
#include <uv.h>

typedef struct mcp_transport mcp_transport_t;

typedef struct mcp_transport_cbs {
    /* One complete JSON-RPC message from the server (a request, notification
     * or response), as text; valid during the call only. */
    void (*on_message)(void *ud, const char *json, size_t len);
    /* The transport is ready to send (stdio: child spawned; sse: endpoint
     * event received; http: immediately). */
    void (*on_ready)(void *ud);
    /* The connection ended: the child exited, the stream broke, or the HTTP
     * server forgot our session (reason says which, e.g. "process exited with
     * status 1", "session expired (404)"). Fires exactly once, also after
     * mcp_transport_close. */
    void (*on_closed)(void *ud, const char *reason);
    void *ud;
} mcp_transport_cbs_t;

/* Creates and starts a transport for the registry entry `server` (transport,
 * command, args, env, cwd, url, headers). `name` is used in logs (a stdio
 * server's stderr is logged line by line under it). Returns NULL with err
 * when it cannot even start (e.g. the command does not exist: say so). The
 * callbacks struct is copied. */
mcp_transport_t *mcp_transport_new(uv_loop_t *loop, const char *name, json_object *server,
                                   const mcp_transport_cbs_t *cbs, char *err, size_t errlen);

/* Queues one JSON-RPC message. Returns 0, -ENOTCONN when closed. Delivery
 * failures later surface as on_closed (or, for HTTP, as a JSON-RPC error
 * response delivered through on_message when the message was a request). */
int mcp_transport_send(mcp_transport_t *t, const char *json, size_t len);

/* Tells the HTTP transports what to send from now on: the negotiated
 * MCP-Protocol-Version (from the initialize result). No-op for stdio. */
void mcp_transport_set_protocol_version(mcp_transport_t *t, const char *version);

/* Ends the connection cleanly (stdio: close stdin, then SIGTERM after a grace
 * period, then SIGKILL, and reap; streamable HTTP: DELETE the session).
 * on_closed fires when done. Safe to call twice. */
void mcp_transport_close(mcp_transport_t *t);

/* Frees a transport whose on_closed has fired. */
void mcp_transport_free(mcp_transport_t *t);

/* Per-transport constructors behind mcp_transport_new (transport_stdio.c,
 * transport_sse.c, transport_http.c). They share the struct layout declared
 * in transport_impl.h. */

#endif
