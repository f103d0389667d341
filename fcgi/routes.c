/* routes — the table. The only file that names every surface: the core
 * (core/) reads it through serve_cfg_t, each surface (openai/, anthropic/,
 * admin/) knows only its own handlers. Adding a route is adding a line here
 * (docs/responder.md, "How to add a route"): dispatch, 405 Allow, 404 and
 * the index follow from it. */
#include "fcgi/routes.h"

#include "fcgi/admin/admin.h"
#include "fcgi/anthropic/messages.h"
#include "fcgi/core/complete.h"
#include "fcgi/core/health.h"
#include "fcgi/limit/limit.h"
#include "fcgi/mcp/mcp.h"
#include "fcgi/metrics/metrics.h"
#include "fcgi/openai/openai.h"
#include "fcgi/responses/responses.h"
#include "fcgi/responses/respstore.h"
#include "fcgi/trace/trace.h"
#include "fcgi/usage/usage.h"

/* Handlers that take less than the table gives, adapted to its signature. */
static int routes__models(http_req_t *req, const route_t *r, svc_t *svc)
{
    return models_list(req, svc->reg);
}

static int routes__model(http_req_t *req, const route_t *r, svc_t *svc)
{
    return models_get(req, svc->reg, r->arg, r->arg_len);
}

static int routes__admin(http_req_t *req, const route_t *r, svc_t *svc)
{
    return admin_handle(req, svc);
}

#define ROUTES__CORE (ROUTE_NO_BODY | ROUTE_REG_ANY)
#define ROUTES__MCP (ROUTE_GET | ROUTE_POST | ROUTE_DELETE)

const route_def_t routes_table[] = {
    /* methods     path                    auth surface            flags          handler */
    { ROUTE_GET,  "/",                    0, NULL,              ROUTES__CORE,  index_handle,
      "this index of endpoints" },
    { ROUTE_GET,  "/health",              0, NULL,              ROUTES__CORE,  health_handle,
      "liveness and Redis reachability" },
    { ROUTE_GET,  "/metrics",             0, NULL,              ROUTES__CORE,  metrics_handle,
      "Prometheus metrics of the host's responders (loopback or AIPROXY_METRICS_TOKEN)" },
    { ROUTE_GET,  "/v1/models",           1, &openai_surface,   0,             routes__models,
      "the assistants, as OpenAI models" },
    { ROUTE_GET,  "/v1/models/{id}",      1, &openai_surface,   0,             routes__model,
      "one assistant" },
    { ROUTE_POST, "/v1/chat/completions", 1, &openai_surface,   ROUTE_LONG,    complete_handle,
      "chat completion through an assistant (stream or not)" },
    { ROUTE_POST, "/v1/messages",         1, &messages_surface, ROUTE_LONG,    complete_handle,
      "the same, in Anthropic's Messages API format" },
    /* issue 16: the Responses API */
    { ROUTE_POST, "/v1/responses",        1, &responses_surface, ROUTE_LONG,   complete_handle,
      "a response through an assistant, in the OpenAI Responses API format" },
    { ROUTE_GET | ROUTE_DELETE, "/v1/responses/{id}", 1, &responses_surface, 0,
      respstore_handle, "a stored response; DELETE it; .../input_items: its input" },
    /* MCP streamable HTTP (issue 17, docs/mcp-endpoint.md) */
    { ROUTES__MCP, "/mcp",                1, &mcp_surface,      ROUTE_LONG,    mcp_handle,
      "MCP server (streamable HTTP): every MCP server's tools" },
    { ROUTES__MCP, "/mcp/{assistant}",    1, &mcp_surface,      ROUTE_LONG,    mcp_handle,
      "MCP server: the tools one assistant offers" },
    { ROUTE_ANY,  "/admin/...",           1, &admin_surface,    ROUTE_REG_LIVE, routes__admin,
      "registry administration (ADMIN_API_KEY)" },
    { 0, NULL, 0, NULL, 0, NULL, NULL },
};

/* Issue 20: a Redis connection a check borrowed (reg_redis) and did not give
 * back goes back to the process's pool before the handler runs (its
 * upstream call must not hold one) and when the request is done. */
static int routes__reg_gate(http_req_t *req, const route_t *r, svc_t *svc, aip_err_t *e)
{
    (void)req, (void)r, (void)e;
    reg_release(svc->reg);
    return 0;
}

static void routes__reg_after(const http_req_t *req, svc_t *svc)
{
    (void)req;
    reg_release(svc->reg);
}

const route_gate_fn routes_gate[] = {
    limit_gate,        /* issue 18: rpm, tpm, in flight, budgets */
    routes__reg_gate,  /* issue 20: nothing borrowed reaches the handler; stays LAST */
    NULL,
};

const route_hook_fn routes_end[] = {
    limit_end,         /* issue 18: charges tokens, frees the slot; stays LAST (limit.c) */
    NULL,
};

const route_hook_fn routes_after[] = {
    limit_after,       /* issue 18: forgets the request's record; stays FIRST (limit.c) */
    metrics_after,
    trace_after,      /* the request's span (docs/traces.md) */
    usage_after,      /* issue 18: usage per principal and assistant (fcgi/usage) */
    routes__reg_after, /* issue 20: what a hook kept borrowed goes back; stays LAST */
    NULL,
};
