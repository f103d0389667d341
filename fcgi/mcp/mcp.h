/* mcp — aiproxy as an MCP server (docs/mcp-endpoint.md): POST/GET/DELETE
 * /mcp and /mcp/{assistant}, MCP's streamable HTTP transport (revisions
 * 2025-11-25, 2025-06-18, 2025-03-26), tools only. /mcp offers every MCP
 * server's tools as `<server>__<tool>` (agent/toolname.h), /mcp/{assistant}
 * exactly the tools that assistant offers its model, under the same names.
 * tools/call goes through the broker as the agent's calls do (mcpc).
 * Sessions live in Redis, so any responder serves any request of one. */
#ifndef AIPROXY_MCP_H
#define AIPROXY_MCP_H

#include "fcgi/core/route.h"

/* The surface for the route table: the /v1 credential check (auth_check:
 * 401 with WWW-Authenticate), errors before the handler in OpenAI's shape.
 * Static. */
extern const route_surface_t mcp_surface;

/* The handler of both routes (r->arg: the assistant of /mcp/{assistant}).
 * Answers the request itself; returns 0, or -EPIPE when the client left. */
int mcp_handle(http_req_t *req, const route_t *r, svc_t *svc);

/* Idle lifetime of a session in seconds: AIPROXY_MCP_SESSION_TTL (default
 * 3600, 60..604800). Each request of the session restarts it. */
int mcp_session_ttl(void);

/* The revision to answer a client that asked for `asked` (NULL: none):
 * `asked` when it is one we speak, else the newest. Pure. */
const char *mcp_negotiate(const char *asked);

/* 1 when `v` is a revision we speak, else 0. Pure. */
int mcp_version_ok(const char *v);

/* 1 when the Accept value `accept` (NULL: none sent) admits media type
 * `type` ("application/json"), counting * / * and type/ *. Pure. */
int mcp_accepts(const char *accept, const char *type);

/* 1 when a request that carries Origin `origin` may be served (DNS
 * rebinding: the transport says 403 otherwise): its host is localhost,
 * 127.0.0.1 or [::1] (any scheme, any port), or it equals an entry of the
 * comma-separated `allowed` list (AIPROXY_MCP_ORIGINS; case-insensitive,
 * "*" allows every origin). Pure. */
int mcp_origin_ok(const char *origin, const char *allowed);

#endif
