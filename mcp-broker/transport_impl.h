/* transport_impl — the struct every transport shares, behind transport.h.
 *
 * Each transport (transport_stdio.c, transport_sse.c, transport_http.c)
 * allocates its own state struct whose FIRST member is `struct mcp_transport`
 * and fills `ops`; transport.c dispatches the public calls through `ops` and
 * guarantees the on_closed-exactly-once rule through mcp_transport__closed.
 *
 * Agreement between the transports (broker core + broker HTTP engineers):
 *  - A transport calls t->cbs.on_ready once it can send, t->cbs.on_message per
 *    complete message, and mcp_transport__closed(t, reason) when it ends (never
 *    t->cbs.on_closed directly). After that no callback fires.
 *  - ops->close starts a clean shutdown and must lead to mcp_transport__closed
 *    later (from a libuv callback, not from inside close itself, so the caller
 *    is never re-entered). transport.c calls ops->close at most once.
 *  - ops->free frees the transport's own state (the whole struct, which embeds
 *    the base); it is called only after on_closed has fired.
 *  - set_protocol_version may be NULL (stdio). */
#ifndef AIPROXY_TRANSPORT_IMPL_H
#define AIPROXY_TRANSPORT_IMPL_H

#include "mcp-broker/transport.h"

struct mcp_transport_ops {
    int  (*send)(mcp_transport_t *t, const char *json, size_t len);
    void (*set_protocol_version)(mcp_transport_t *t, const char *version);
    void (*close)(mcp_transport_t *t);
    void (*free)(mcp_transport_t *t);
};

struct mcp_transport {
    const struct mcp_transport_ops *ops;
    uv_loop_t *loop;
    char name[128];          /* for logs */
    mcp_transport_cbs_t cbs;
    int closing;             /* mcp_transport_close was called */
    int closed;              /* on_closed has fired */
};

/* Fills the base: ops, loop, name (truncated), callbacks. */
void mcp_transport__init(mcp_transport_t *t, const struct mcp_transport_ops *ops,
                         uv_loop_t *loop, const char *name, const mcp_transport_cbs_t *cbs);

/* Fires on_closed once (later calls are ignored). */
void mcp_transport__closed(mcp_transport_t *t, const char *reason);

/* The constructors mcp_transport_new dispatches to by the "transport" field:
 * "stdio" → stdio, "sse" → sse, "http" and "streamable-http" → http. Same
 * arguments and contract as mcp_transport_new. */
mcp_transport_t *mcp_stdio_new(uv_loop_t *loop, const char *name, json_object *server,
                               const mcp_transport_cbs_t *cbs, char *err, size_t errlen);
mcp_transport_t *mcp_sse_new(uv_loop_t *loop, const char *name, json_object *server,
                             const mcp_transport_cbs_t *cbs, char *err, size_t errlen);
mcp_transport_t *mcp_http_new(uv_loop_t *loop, const char *name, json_object *server,
                              const mcp_transport_cbs_t *cbs, char *err, size_t errlen);

#endif
