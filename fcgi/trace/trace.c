/* trace — the responder's spans (see trace.h). */
#include "fcgi/trace/trace.h"

#include "shared/caps.h"
#include "shared/jget.h"
#include "shared/otel.h"

#include <curl/curl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A tool call's span while it runs. */
typedef struct trace__tool {
    struct trace__tool *next;
    const char *call_id;          /* arena copy */
    int round;
    otel_span_t span;
} trace__tool_t;

/* One request's trace state (arena memory). */
typedef struct trace__req {
    int sampled;                  /* spans are recorded */
    otel_ctx_t ctx;               /* what children descend from: the request's
                                   * span, or (not sampled) the client's context */
    otel_span_t span;             /* the request's span (sampled only) */
    otel_span_t turn;
    int turn_open;
    trace__tool_t *tools;         /* open tool spans */
    unsigned ntools;
    const char *provider;         /* gen_ai.provider.name */
    const char *host;             /* the upstream's host, and port (0: unknown) */
    long port;
} trace__req_t;

/* The thread's current request: its identity is checked before the state
 * is read (the arena of a finished request is gone). */
static __thread const http_req_t *trace__owner;
static __thread long long trace__t0;
static __thread trace__req_t *trace__cur;

static trace__req_t *trace__get(const http_req_t *req)
{
    if (trace__cur && trace__owner == req && trace__t0 == req->info.t0_us)
        return trace__cur;
    return NULL;
}

/* The request's start in unix ns: its monotonic start, seen from now. */
static long long trace__t0_ns(const http_req_t *req)
{
    long long ago_us = reqinfo_now_us() - req->info.t0_us;

    return otel_now_ns() - (ago_us > 0 ? ago_us * 1000 : 0);
}

/* The client's context when it sent a valid traceparent. */
static int trace__client_ctx(http_req_t *req, otel_ctx_t *out)
{
    const char *tp = http_header(req, "traceparent");

    return tp && otel_tp_parse(tp, out) == 0;
}

/* gen_ai.provider.name from the backend's kind. */
static const char *trace__provider(json_object *backend)
{
    const char *kind = jget_str(backend, "kind");

    if (!kind || strcmp(kind, "openai") == 0 || strncmp(kind, "openai", 6) == 0)
        return "openai";
    return strcmp(kind, "anthropic") == 0 ? "anthropic" : kind;
}

/* server.address and server.port of the backend's base_url: the host only
 * (no user, password, path or query reaches the span). */
static void trace__server(http_req_t *req, trace__req_t *t, json_object *backend)
{
    const char *base = jget_str(backend, "base_url");
    CURLU *u = base ? curl_url() : NULL;
    char *host = NULL, *port = NULL;

    if (u && curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        t->host = arena_strdup(req->arena, host);
        if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK)
            t->port = strtol(port, NULL, 10);
    }
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
}

/* A tracestate worth passing on: non-empty, within the W3C size, printable
 * ASCII only (it becomes a header line upstream). */
static int trace__tracestate_ok(const char *ts)
{
    size_t n = 0;

    if (!ts || !*ts)
        return 0;
    for (; ts[n]; n++)
        if ((unsigned char)ts[n] < 0x20 || (unsigned char)ts[n] > 0x7e || n >= CAP_TRACESTATE)
            return 0;
    return 1;
}

const char *trace_begin(http_req_t *req, json_object *backend)
{
    trace__req_t *t;
    otel_ctx_t client;
    const char *ts;
    char name[160];
    int has_client;

    if (!otel_enabled())
        return NULL;
    if (!(t = arena_alloc(req->arena, sizeof(*t))))
        return NULL;
    memset(t, 0, offsetof(trace__req_t, span));
    t->turn_open = 0;
    t->tools = NULL;
    t->ntools = 0;
    t->host = NULL;
    t->port = 0;
    t->provider = trace__provider(backend);
    has_client = trace__client_ctx(req, &client);
    if (has_client) {
        t->ctx = client;
    } else {
        /* a new trace; its id decides a ratio sampler */
        otel_span_start(&t->span, NULL, "", OTEL_KIND_SERVER);
        t->ctx = t->span.ctx;
    }
    t->sampled = otel_sample(has_client ? &client : NULL, t->ctx.trace_id);
    if (t->sampled) {
        snprintf(name, sizeof name, "%s %s", req->method,
                 req->info.route ? req->info.route : req->path);
        otel_span_start(&t->span, &t->ctx, name, OTEL_KIND_SERVER);
        if (!has_client)   /* a root: no parent */
            memset(t->span.parent_id, 0, sizeof(t->span.parent_id));
        t->span.start_ns = trace__t0_ns(req);
        t->ctx = t->span.ctx;
        trace__server(req, t, backend);
    } else {
        t->ctx.flags = 0;
    }
    trace__owner = req;
    trace__t0 = req->info.t0_us;
    trace__cur = t;
    /* W3C: a tracestate goes with the traceparent it came with, or not at all */
    ts = has_client ? http_header(req, "tracestate") : NULL;
    return trace__tracestate_ok(ts) ? ts : NULL;
}

/* A child context of the request for something not recorded: the same
 * trace, a new span id, not sampled. */
static void trace__unsampled(const trace__req_t *t, char *tp)
{
    otel_span_t s;

    otel_span_start(&s, &t->ctx, "", OTEL_KIND_INTERNAL);
    s.ctx.flags = 0;
    otel_tp_format(&s.ctx, tp);
}

static void trace__turn_start(http_req_t *req, trace__req_t *t, const agent_event_t *ev)
{
    char name[200];

    if (t->turn_open)
        otel_span_end(&t->turn);
    snprintf(name, sizeof name, "chat %s", ev->model ? ev->model : "");
    otel_span_start(&t->turn, &t->ctx, name, OTEL_KIND_CLIENT);
    otel_span_str(&t->turn, "gen_ai.operation.name", "chat");
    otel_span_str(&t->turn, "gen_ai.provider.name", t->provider);
    otel_span_str(&t->turn, "gen_ai.request.model", ev->model);
    otel_span_bool(&t->turn, "gen_ai.request.stream", req->info.stream);
    otel_span_str(&t->turn, "server.address", t->host);
    if (t->port > 0)
        otel_span_int(&t->turn, "server.port", t->port);
    otel_span_int(&t->turn, "aiproxy.turn", ev->round);
    t->turn_open = 1;
    if (ev->traceparent)
        otel_tp_format(&t->turn.ctx, ev->traceparent);
}

static void trace__turn_done(trace__req_t *t, const agent_event_t *ev)
{
    char st[16];

    if (!t->turn_open)
        return;
    if (ev->prompt_tokens || ev->completion_tokens) {
        otel_span_int(&t->turn, "gen_ai.usage.input_tokens", ev->prompt_tokens);
        otel_span_int(&t->turn, "gen_ai.usage.output_tokens", ev->completion_tokens);
    }
    if (ev->finish_reason && *ev->finish_reason)
        otel_span_str(&t->turn, "gen_ai.response.finish_reasons", ev->finish_reason);
    if (ev->status && ev->status != 200) {
        snprintf(st, sizeof st, "%d", ev->status);
        otel_span_str(&t->turn, "error.type", st);
        otel_span_int(&t->turn, "http.response.status_code", ev->status);
        otel_span_status(&t->turn, OTEL_STATUS_ERROR, NULL);
    }
    otel_span_end(&t->turn);
    t->turn_open = 0;
}

static void trace__tool_start(http_req_t *req, trace__req_t *t, const agent_event_t *ev)
{
    const char *tool = ev->tool ? ev->tool : ev->name;
    trace__tool_t *x;
    char name[200];

    if (t->ntools >= CAP_TRACE_TOOLS || !(x = arena_alloc(req->arena, sizeof(*x)))) {
        if (ev->traceparent)   /* no span of its own: the broker's joins the request */
            otel_tp_format(&t->ctx, ev->traceparent);
        return;
    }
    x->call_id = arena_strdup(req->arena, ev->call_id ? ev->call_id : "");
    x->round = ev->round;
    snprintf(name, sizeof name, "execute_tool %s", tool ? tool : "");
    otel_span_start(&x->span, &t->ctx, name, OTEL_KIND_INTERNAL);
    otel_span_str(&x->span, "gen_ai.operation.name", "execute_tool");
    otel_span_str(&x->span, "gen_ai.tool.name", tool);
    otel_span_str(&x->span, "gen_ai.tool.call.id", ev->call_id);
    otel_span_str(&x->span, "gen_ai.tool.type", "extension");
    otel_span_str(&x->span, "mcp.method.name", "tools/call");
    otel_span_str(&x->span, "aiproxy.mcp.server", ev->server);
    if (ev->traceparent)
        otel_tp_format(&x->span.ctx, ev->traceparent);
    x->next = t->tools;
    t->tools = x;
    t->ntools++;
}

static void trace__tool_done(trace__req_t *t, const agent_event_t *ev)
{
    for (trace__tool_t **pp = &t->tools; *pp; pp = &(*pp)->next) {
        trace__tool_t *x = *pp;
        if (x->round != ev->round || !x->call_id || !ev->call_id ||
            strcmp(x->call_id, ev->call_id) != 0)
            continue;
        if (ev->is_error) {
            otel_span_str(&x->span, "error.type", "tool_error");
            otel_span_status(&x->span, OTEL_STATUS_ERROR, NULL);
        }
        otel_span_end(&x->span);
        *pp = x->next;
        return;
    }
}

void trace_event(http_req_t *req, const agent_event_t *ev)
{
    trace__req_t *t;

    if (!otel_enabled() || !(t = trace__get(req)))
        return;
    if (!t->sampled) {
        if (ev->traceparent)
            trace__unsampled(t, ev->traceparent);
        return;
    }
    switch (ev->kind) {
    case AGENT_EV_TURN_START: trace__turn_start(req, t, ev); break;
    case AGENT_EV_TURN_DONE:  trace__turn_done(t, ev); break;
    case AGENT_EV_TOOL_START: trace__tool_start(req, t, ev); break;
    case AGENT_EV_TOOL_DONE:  trace__tool_done(t, ev); break;
    default: break;
    }
}

/* The request's span gets its outcome and goes out. */
static void trace__finish(const http_req_t *req, otel_span_t *sp)
{
    const reqinfo_t *ri = &req->info;
    int status = req->status ? req->status : req->client_gone ? 499 : 0;
    char st[16];

    otel_span_str(sp, "http.request.method", req->method);
    otel_span_str(sp, "http.route", ri->route);
    otel_span_str(sp, "url.path", req->path);
    if (status)
        otel_span_int(sp, "http.response.status_code", status);
    otel_span_str(sp, "gen_ai.agent.name", ri->assistant);
    if (ri->upstream_turns) {
        otel_span_int(sp, "gen_ai.usage.input_tokens", ri->prompt_tokens);
        otel_span_int(sp, "gen_ai.usage.output_tokens", ri->completion_tokens);
        otel_span_int(sp, "aiproxy.upstream_turns", ri->upstream_turns);
        otel_span_int(sp, "aiproxy.tool_rounds", ri->tool_rounds);
    }
    if (status >= 500 || (ri->failed && status == 200)) {
        snprintf(st, sizeof st, "%d", status);
        otel_span_str(sp, "error.type", status >= 500 ? st : "stream_error");
        otel_span_status(sp, OTEL_STATUS_ERROR, NULL);
    }
    otel_span_end(sp);
}

void trace_after(const http_req_t *req, svc_t *svc)
{
    trace__req_t *t;
    otel_span_t *sp;
    otel_ctx_t client;
    int has_client;
    char name[160];

    (void)svc;
    if (!otel_enabled())
        return;
    t = trace__get(req);
    trace__cur = NULL;
    trace__owner = NULL;
    if (t) {
        if (!t->sampled)
            return;
        if (t->turn_open)
            otel_span_end(&t->turn);
        for (trace__tool_t *x = t->tools; x; x = x->next)
            otel_span_end(&x->span);   /* abandoned: the client left */
        trace__finish(req, &t->span);
        return;
    }
    /* a request that ran no agent: its span is made now */
    has_client = trace__client_ctx((http_req_t *)req, &client);
    if (!(sp = malloc(sizeof(*sp))))
        return;
    snprintf(name, sizeof name, "%s%s%s", req->method ? req->method : "GET",
             req->info.route ? " " : "", req->info.route ? req->info.route : "");
    otel_span_start(sp, has_client ? &client : NULL, name, OTEL_KIND_SERVER);
    if (otel_sample(has_client ? &client : NULL, sp->ctx.trace_id)) {
        sp->start_ns = trace__t0_ns(req);
        trace__finish(req, sp);
    }
    free(sp);
}
