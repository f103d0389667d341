/* complete — the completion runner (see complete.h): the flow every
 * completion surface shares, with the surface's hooks at the points where
 * they differ. */
#include "fcgi/core/complete.h"
#include "fcgi/core/toolev.h"
#include "fcgi/auth/principal.h"
#include "shared/mono.h"
#include "shared/keypol.h"
#include "fcgi/metrics/metrics.h"
#include "fcgi/trace/trace.h"

#include "shared/caps.h"
#include "shared/jget.h"
#include "shared/log.h"

#include <errno.h>
#include <string.h>
#include <time.h>

struct complete__ctx {
    http_req_t *req;
    const complete_surface_t *cs;
    void *run;
    toolev_t tev;            /* tool events, when the request opted in */
    int stream;               /* a stream: start it at READY, keep it alive */
    int ready;                /* READY came: errors are stream events now */
    int start_due;            /* READY came, the stream's start is not sent yet */
    complete_pace_t pace;     /* when the next keep-alive is due */
};

/* Set once by main before the threads start (AIPROXY_STREAM_KEEPALIVE_MS). */
static long complete__keepalive_ms = COMPLETE_KEEPALIVE_DEFAULT_MS;

void complete_set_keepalive_ms(long ms)
{
    complete__keepalive_ms = ms < 0 ? 0 : ms > COMPLETE_KEEPALIVE_MAX_MS
                                              ? COMPLETE_KEEPALIVE_MAX_MS : ms;
}

long complete_keepalive_ms(json_object *assistant)
{
    json_object *v = jget(assistant, "stream_keepalive_ms");

    if (v && (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
        return (long)json_object_get_int64(v);
    return complete__keepalive_ms;
}

void complete_pace_touch(complete_pace_t *p, long long now_ms)
{
    p->last_ms = now_ms;
}

int complete_pace_due(const complete_pace_t *p, long long now_ms)
{
    return p->interval_ms > 0 && now_ms - p->last_ms >= p->interval_ms;
}

/* agent callback: a content piece for the stream. */
static int complete__on_delta(void *ud, const char *text, size_t len)
{
    struct complete__ctx *c = ud;

    c->start_due = 0;   /* the delta starts the stream if need be */
    if (!c->req->info.ttft_us && len > 0)
        c->req->info.ttft_us = reqinfo_now_us() - c->req->info.t0_us;
    return c->cs->delta(c->run, text, len) != 0;
}

/* agent callback: the pieces of one upstream read are written; push them. */
static int complete__on_flush(void *ud)
{
    struct complete__ctx *c = ud;

    return c->cs->flush(c->run) != 0;
}

/* The request is accepted (READY): the stream starts before any content,
 * so the client has its headers and first event while the upstream thinks.
 * Not here but at the next alive poll (complete__start_due), which comes
 * right after the upstream request went out: the write then overlaps the
 * upstream's time to first token instead of adding to it. */
static int complete__ready(struct complete__ctx *c)
{
    c->ready = 1;
    c->start_due = c->stream;
    return 0;
}

/* Sends the stream's start when READY left it due. Non-zero: the client is gone. */
static int complete__start_due(struct complete__ctx *c)
{
    if (!c->start_due)
        return 0;
    c->start_due = 0;
    return c->cs->start(c->run) != 0;
}

/* A keep-alive when the started stream was idle for its interval. Called
 * from the alive polls (about every 100 ms while the upstream or the tools
 * are waited on), so a write never waits on it. The clock is the request's
 * own last write (http_req_t.last_write_ms): whatever wrote it (content,
 * the start, tool events, a surface's own items, the keep-alive itself), it
 * counts. Non-zero: the client is gone. */
static int complete__keepalive(struct complete__ctx *c)
{
    if (!c->stream || c->pace.interval_ms <= 0 || !c->cs->started(c->run))
        return 0;
    complete_pace_touch(&c->pace, c->req->last_write_ms);
    if (!complete_pace_due(&c->pace, mono_ms()))
        return 0;
    return c->cs->keepalive(c->run) != 0;
}

/* agent callback: is the client still there? (And a keep-alive when due.) */
static int complete__alive(void *ud)
{
    struct complete__ctx *c = ud;

    if (http_settle(c->req) != 0)   /* refused: the answer went out */
        return 0;
    if (!http_client_alive(c->req))
        return 0;
    if (complete__start_due(c) != 0)
        return 0;
    return complete__keepalive(c) == 0;
}

/* agent callback: what the upstream wait also watches: the pending
 * check's socket (http_req_t.settle), so a verdict is read as it comes. */
static int complete__watch(void *ud)
{
    struct complete__ctx *c = ud;

    return c->req->settle && c->req->settle_fd ? c->req->settle_fd(c->req) : -1;
}

/* agent callback: the loop's events; tool events go to toolev. A pending
 * check (http_settle) is settled before anything but the first turn's
 * start: no tool call, second turn or event goes out before it passed. */
static int complete__on_event(void *ud, const agent_event_t *ev)
{
    struct complete__ctx *c = ud;

    if (ev->kind != AGENT_EV_READY && !(ev->kind == AGENT_EV_TURN_START && ev->round == 0) &&
        http_settle(c->req) != 0)
        return 1;

    trace_event(c->req, ev);
    if (c->cs->on_event && c->cs->on_event(c->run, ev) != 0)
        return 1;
    if (ev->kind == AGENT_EV_READY)
        return complete__ready(c);
    metrics_event(&c->req->info, ev);
    if (ev->kind == AGENT_EV_TURN_START || ev->kind == AGENT_EV_TURN_DONE)
        return 0;
    if (ev->kind == AGENT_EV_TOOL_DONE)
        reqinfo_tool(&c->req->info, c->req->arena, ev->server, ev->is_error, ev->ms * 1000);
    return toolev_event(&c->tev, ev);
}

/* `e` in the route's surface's shape (OpenAI's when it has no renderer). */
static int complete__send_err(http_req_t *req, const route_surface_t *s, const aip_err_t *e)
{
    if (s->send_error)
        return s->send_error(req, e, NULL);
    return http_send_err(req, e);
}

/* The agent's result to the client: the whole answer, the stream's end, or
 * the error (a stream error event once the stream started). */
static int complete__answer(struct complete__ctx *c, const route_surface_t *s,
                            const complete_req_t *cr, agent_res_t *res, const char *id,
                            long long created)
{
    http_req_t *req = c->req;
    json_object *o;
    aip_err_t e;
    int rc;

    if (req->answer_done)
        return -EPIPE;       /* http_settle answered (a refusal) */
    if (res->client_gone || req->client_gone) {
        req->client_gone = 1;
        return -EPIPE;
    }
    /* after READY a stream's error is a stream event, even when the start
     * was still due (the upstream failed before the first poll) */
    if (res->status != 200)
        req->info.failed = 1;
    if (res->status != 200 && (!cr->stream || (!c->ready && !c->cs->started(c->run))))
        return complete__send_err(req, s, &res->err);
    if (cr->stream) {
        if (res->status != 200)
            log_warn("%s %s: error after the stream started: %s", c->cs->name, id,
                     res->err.msg);
        return c->cs->stream_end(c->run, res);
    }
    if (!c->tev.on && c->cs->answer_text) {
        /* the answer's text without its object; any failure (-EAGAIN, or
         * memory) takes the object's way, which answers an error itself */
        buf_t b;
        buf_init(&b, CAP_UP_BODY * 2 + 4096);
        if (c->cs->answer_text(c->run, cr, res, created, &b) == 0) {
            rc = http_send(req, 200, "application/json", NULL, buf_str(&b), b.len);
            buf_free(&b);
            return rc;
        }
        buf_free(&b);
    }
    o = c->cs->answer(c->run, cr, res, created);
    if (o && toolev_attach(&c->tev, o) < 0) {
        json_object_put(o);
        o = NULL;
    }
    if (!o) {
        aip_err_oom(&e);
        return complete__send_err(req, s, &e);
    }
    rc = http_send_json(req, 200, o, NULL);
    json_object_put(o);
    return rc;
}

int complete_handle(http_req_t *req, const route_t *r, svc_t *svc)
{
    const route_surface_t *s = r->def->surface;
    const complete_surface_t *cs = s->complete;
    complete_req_t cr;
    aip_err_t err;
    agent_req_t areq;
    agent_res_t res;
    struct complete__ctx ctx;
    json_object *assistant, *backend = NULL, *bname = NULL;
    const char *id;
    long long created = (long long)time(NULL);
    void *run;
    int rc;

    memset(&res, 0, sizeof(res));
    memset(&cr, 0, sizeof(cr));
    memset(&ctx, 0, sizeof(ctx));
    aip_err_clear(&err);
    if (!(run = arena_alloc(req->arena, cs->run_size))) {
        aip_err_oom(&err);
        return complete__send_err(req, s, &err);
    }
    memset(run, 0, cs->run_size);
    rc = cs->parse(run, req->body, req->body_len, &cr, &err);
    if (rc != 0) {
        if (rc != -EINVAL)
            aip_err_set(&err, 500, "api_error", NULL, "out of memory reading the request");
        rc = complete__send_err(req, s, &err);
        goto out;
    }
    if (cs->prepare && (rc = cs->prepare(run, req, svc, &cr, &err)) != 0) {
        if (rc != -EINVAL)
            aip_err_oom(&err);
        rc = complete__send_err(req, s, &err);
        goto out;
    }
    assistant = reg_get(svc->reg, "assistants", cr.model);
    /* a key's policy hides assistants outside its globs: exactly as missing */
    if (assistant && req->info.auth &&
        !keypol_assistant_ok(((auth_principal_t *)req->info.auth)->policy, cr.model))
        assistant = NULL;
    if (!assistant) {
        aip_err_set(&err, 404, "invalid_request_error", "model_not_found",
                    "The model '%s' does not exist: no assistant has that name. "
                    "GET /v1/models lists the assistants.", cr.model);
        rc = complete__send_err(req, s, aip_err_param(&err, "model"));
        goto out;
    }
    req->info.assistant = arena_strdup(req->arena, cr.model);
    req->info.stream = cr.stream;
    if (json_object_object_get_ex(assistant, "backend", &bname)) {
        backend = reg_get(svc->reg, "backends", json_object_get_string(bname));
        req->info.backend = arena_strdup(req->arena, json_object_get_string(bname));
    }
    if (!backend) {
        aip_err_set(&err, 500, "api_error", "backend_not_found",
                    "assistant '%s' names backend '%s', which the registry does not "
                    "hold: fix the registry (admin API or config)", cr.model,
                    bname ? json_object_get_string(bname) : "");
        rc = complete__send_err(req, s, &err);
        goto out;
    }
    if (toolev_decide(req, cr.body, assistant, &ctx.tev.on, &err) < 0) {
        rc = complete__send_err(req, s, &err);
        goto out;
    }
    id = cs->begin(run, req, &cr, created);
    ctx.req = req;
    ctx.cs = cs;
    ctx.run = run;
    ctx.stream = cr.stream;
    ctx.pace.interval_ms = cr.stream ? complete_keepalive_ms(assistant) : 0;
    memset(&areq, 0, sizeof(areq));
    areq.assistant_name = cr.model;
    areq.request_id = req->info.id[0] ? req->info.id : NULL;
    areq.assistant = assistant;
    areq.backend = backend;
    areq.mcp_servers = reg_all(svc->reg, "mcp_servers");
    areq.body = cr.body;
    areq.tool_policy = req->info.auth ? ((auth_principal_t *)req->info.auth)->policy : NULL;
    areq.stream = cr.stream;
    areq.on_delta = cr.stream ? complete__on_delta : NULL;
    areq.on_flush = cr.stream ? complete__on_flush : NULL;
    areq.alive = complete__alive;
    areq.watch = complete__watch;
    areq.on_event = complete__on_event;
    ctx.tev.stream = cr.stream;
    ctx.tev.emit = cs->tool_event;
    ctx.tev.run = run;
    areq.ud = &ctx;
    areq.tracestate = trace_begin(req, backend);
    agent_run(svc->agent, &areq, &res);
    req->info.prompt_tokens = res.prompt_tokens;
    req->info.completion_tokens = res.completion_tokens;
    req->info.upstream_turns = res.upstream_turns;
    req->info.upstream_us = res.upstream_us;
    req->info.tool_rounds = res.tool_rounds;
    rc = complete__answer(&ctx, s, &cr, &res, id, created);
out:
    toolev_clear(&ctx.tev);
    agent_res_clear(&res);
    cs->clear(run);
    return rc;
}
