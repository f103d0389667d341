/* transport — dispatch of the public transport API to the stdio, SSE and
 * streamable-HTTP implementations through their ops table (transport_impl.h). */
#include "mcp-broker/transport_impl.h"
#include "shared/jget.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void mcp_transport__init(mcp_transport_t *t, const struct mcp_transport_ops *ops,
                         uv_loop_t *loop, const char *name, const mcp_transport_cbs_t *cbs)
{
    t->ops = ops;
    t->loop = loop;
    snprintf(t->name, sizeof(t->name), "%s", name ? name : "?");
    t->cbs = *cbs;
    t->closing = 0;
    t->closed = 0;
}

void mcp_transport__closed(mcp_transport_t *t, const char *reason)
{
    if (t->closed)
        return;
    t->closed = 1;
    if (t->cbs.on_closed)
        t->cbs.on_closed(t->cbs.ud, reason ? reason : "closed");
}

mcp_transport_t *mcp_transport_new(uv_loop_t *loop, const char *name, json_object *server,
                                   const mcp_transport_cbs_t *cbs, char *err, size_t errlen)
{
    const char *kind = jget_str(server, "transport");

    if (!kind)
        kind = "stdio";
    if (strcmp(kind, "stdio") == 0)
        return mcp_stdio_new(loop, name, server, cbs, err, errlen);
    if (strcmp(kind, "sse") == 0)
        return mcp_sse_new(loop, name, server, cbs, err, errlen);
    if (strcmp(kind, "http") == 0 || strcmp(kind, "streamable-http") == 0)
        return mcp_http_new(loop, name, server, cbs, err, errlen);
    snprintf(err, errlen, "MCP server '%s': unknown transport '%s' (use stdio, sse, http or streamable-http)",
             name, kind);
    return NULL;
}

int mcp_transport_send(mcp_transport_t *t, const char *json, size_t len)
{
    if (t->closing || t->closed)
        return -ENOTCONN;
    return t->ops->send(t, json, len);
}

void mcp_transport_set_protocol_version(mcp_transport_t *t, const char *version)
{
    if (t->ops->set_protocol_version)
        t->ops->set_protocol_version(t, version);
}

void mcp_transport_close(mcp_transport_t *t)
{
    if (t->closing || t->closed)
        return;
    t->closing = 1;
    t->ops->close(t);
}

void mcp_transport_free(mcp_transport_t *t)
{
    if (t)
        t->ops->free(t);
}
