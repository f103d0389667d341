/* server — one MCP server's session, restarts and catalog (see server.h). */
#include "mcp-broker/server.h"
#include "mcp-broker/session.h"
#include "shared/log.h"
#include "shared/reqid.h"
#include "shared/otel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SERVER_BACKOFF_MIN_MS 1000
#define SERVER_BACKOFF_MAX_MS 30000
/* A call's "started" line is written once it has run this long, or just
 * before its end line when it ends sooner: a quick call's two lines both
 * come after its answer went out, not one of them on its way. */
#define SERVER_LOG_STARTED_MS 5

struct server {
    struct server *next;         /* the host's list */
    server_ops_t ops;
    uv_loop_t *loop;
    char name[256];
    char catalog_key[512];
    char *cfg_text;              /* registry entry as JSON text, to spot changes */
    json_object *cfg;            /* owned copy of the registry entry */
    struct mcp_session *sess;
    int owned, retired, restart_now, backoff_ms, in_backoff, wanted;
    uv_timer_t timer;            /* restart backoff */
    uv_timer_t logt;             /* writes the "started" lines of calls still running */
    struct server_waiter *waiters;
    struct server_call *calls;   /* in flight on the session, for cancels */
    json_object *tools;          /* the last catalog */
    char error[512];             /* why the last start failed, "" when fine */
    unsigned long long starts;   /* metrics (server_stats) */
    unsigned long long calls_n[SERVER_OUT__N];
    unsigned long long dur[SERVER_DUR_BUCKETS + 1];
    double dur_sum;
};

static const double server__bounds[SERVER_DUR_BUCKETS] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300 };

typedef struct server_waiter {
    struct server_waiter *next;
    char id[WIRE_ID_LEN + 1];
    char reply[520];
} server_waiter_t;

typedef struct server_call {
    struct server_call *next;    /* the server's calls in flight */
    server_t *s;
    char id[WIRE_ID_LEN + 1];
    char reply[520];
    char rid[REQID_MAX + 1];     /* the client request's id ("rid"), "" when none */
    char tool[128];              /* for the log lines */
    uint64_t t0;                 /* uv_now when it came */
    uint64_t t0_ns;              /* uv_hrtime() when it went out, for metrics */
    otel_span_t *span;           /* its "tools/call <tool>" span when traced, else NULL */
    int logged;                  /* its "started" line is written */
} server_call_t;

/* Wall-clock unix ms: the catalog's "updated" timestamp, read by other hosts
 * (a timestamp, not a wait: CLOCK_REALTIME is right here). */
static int64_t server__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void server__start(server_t *s);

static void server__publish(server_t *s, const char *channel, const char *text)
{
    if (!text) {
        log_error("MCP server '%s': answer on %s lost: out of memory", s->name, channel);
        return;
    }
    s->ops.publish(s->ops.data, channel, text);
}

/* A call's final answer: on the host's answer path when it has one. */
static void server__answer(server_t *s, const char *channel, const char *text)
{
    if (!text || !s->ops.answer)
        server__publish(s, channel, text);
    else
        s->ops.answer(s->ops.data, channel, text);
}

static void server__reply_error(server_t *s, const char *reply, const char *id, const char *error)
{
    char *t = wire_reply_error(id, error);

    if (t)
        server__publish(s, reply, t);
    free(t);
}

server_t *server_new(const server_ops_t *ops, uv_loop_t *loop, const char *prefix,
                     const char *name, json_object *cfg)
{
    server_t *s = calloc(1, sizeof(*s));
    const char *t = json_object_to_json_string_ext(cfg, JSON_C_TO_STRING_PLAIN);

    if (!s)
        return NULL;
    s->ops = *ops;
    s->loop = loop;
    snprintf(s->name, sizeof(s->name), "%s", name);
    snprintf(s->catalog_key, sizeof(s->catalog_key), "%smcp:catalog:%s", prefix, name);
    s->cfg_text = strdup(t ? t : "{}");
    s->cfg = json_tokener_parse(s->cfg_text);
    if (!s->cfg_text || !s->cfg) {
        free(s->cfg_text);
        json_object_put(s->cfg);
        free(s);
        return NULL;
    }
    s->backoff_ms = SERVER_BACKOFF_MIN_MS;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    uv_timer_init(loop, &s->logt);
    s->logt.data = s;
    return s;
}

server_t *server_find(server_t *list, const char *name)
{
    for (; list; list = list->next)
        if (strcmp(list->name, name) == 0)
            return list;
    return NULL;
}

server_t *server_next(const server_t *s)
{
    return s->next;
}

void server_set_next(server_t *s, server_t *next)
{
    s->next = next;
}

const char *server_catalog_key(const server_t *s)
{
    return s->catalog_key;
}

const char *server_name(const server_t *s)
{
    return s->name;
}

int server_owned(const server_t *s)
{
    return s->owned;
}

void server_set_owned(server_t *s, int owned)
{
    s->owned = owned;
}

static void server__write_catalog(server_t *s, const char *status, json_object *tools, const char *error)
{
    json_object *o = json_object_new_object();

    if (!o)
        return;
    json_object_object_add(o, "status", json_object_new_string(status));
    json_object_object_add(o, "tools", tools ? json_object_get(tools) : json_object_new_array());
    if (error)
        json_object_object_add(o, "error", json_object_new_string(error));
    json_object_object_add(o, "updated", json_object_new_int64(server__now()));
    {
        const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        if (t)
            s->ops.set_key(s->ops.data, s->catalog_key, t);
    }
    json_object_put(o);
}

/* Answers every waiting "start": with the catalog, or with `error`. */
static void server__answer_waiters(server_t *s, const char *error)
{
    server_waiter_t *w = s->waiters;

    s->waiters = NULL;
    while (w) {
        server_waiter_t *next = w->next;
        if (error) {
            server__reply_error(s, w->reply, w->id, error);
        } else {
            char *t = wire_reply_tools(w->id, s->tools);
            server__publish(s, w->reply, t);
            free(t);
        }
        free(w);
        w = next;
    }
}

static void server__on_tools(void *ud, json_object *tools)
{
    server_t *s = ud;

    json_object_put(s->tools);
    s->tools = json_object_get(tools);
    s->error[0] = 0;
    s->backoff_ms = SERVER_BACKOFF_MIN_MS;
    server__write_catalog(s, "ready", tools, NULL);
    server__answer_waiters(s, NULL);
}

static void server__timer_closed(uv_handle_t *h)
{
    server_t *s = h->data;
    server_ops_t ops = s->ops;

    server__answer_waiters(s, "mcp-broker is stopping");
    json_object_put(s->tools);
    json_object_put(s->cfg);
    free(s->cfg_text);
    free(s);
    ops.gone(ops.data);
}

/* Both timers closed, the second from the first's callback: s is freed
 * with the last. */
static void server__logt_closed(uv_handle_t *h)
{
    server_t *s = h->data;

    uv_close((uv_handle_t *)&s->timer, server__timer_closed);
}

static void server__close_handles(server_t *s)
{
    uv_close((uv_handle_t *)&s->logt, server__logt_closed);
}

static void server__on_backoff(uv_timer_t *t)
{
    server_t *s = t->data;

    s->in_backoff = 0;
    if (!s->retired && !s->sess)
        server__start(s);
}

/* The session ended or never started: when it never became ready, the
 * catalog and every waiter get the reason (the reason alone: responders
 * name the server themselves), so requests fail fast; then a restart is
 * scheduled after the current backoff, which doubles up to its cap. */
static void server__backoff(server_t *s, const char *reason, int tell_waiters)
{
    if (tell_waiters) {
        server__write_catalog(s, "error", NULL, reason);
        server__answer_waiters(s, reason);
    }
    log_warn("MCP server '%s': %s; retrying in %d ms", s->name, reason, s->backoff_ms);
    s->in_backoff = 1;
    uv_timer_start(&s->timer, server__on_backoff, (uint64_t)s->backoff_ms, 0);
    s->backoff_ms = s->backoff_ms * 2 > SERVER_BACKOFF_MAX_MS ? SERVER_BACKOFF_MAX_MS : s->backoff_ms * 2;
}

static void server__on_closed(void *ud, const char *reason)
{
    server_t *s = ud;
    int was_ready = mcp_session_ready(s->sess);

    snprintf(s->error, sizeof(s->error), "%s", reason); /* reason dies with the session */
    reason = s->error;
    mcp_session_free(s->sess);
    s->sess = NULL;
    if (s->retired) {
        server__close_handles(s);
        return;
    }
    if (s->restart_now) {
        s->restart_now = 0;
        log_info("MCP server '%s': restarting with its new settings", s->name);
        server__start(s);
        return;
    }
    server__backoff(s, reason, !was_ready);
}

/* A call's progress report (already coalesced by the session) goes to the
 * responder waiting for it, on the call's reply channel, ahead of its answer. */
static void server__on_progress(void *ud, void *call_ud, const mcp_progress_t *p)
{
    server_call_t *c = call_ud;
    char *t = wire_reply_progress(c->id, p->progress, p->total, p->message, p->left_ms);

    (void)ud;
    server__publish(c->s, c->reply, t);
    free(t);
}

/* A sampling request goes to the responder that owns the call: on the
 * call's reply channel, where it waits. With several calls in flight, they
 * must all be one responder request's (one reply channel): the broker cannot
 * tell which call a request on a shared session belongs to, and must not
 * hand one assistant's request to another. */
static int server__on_sampling(void *ud, void *const *calls, size_t n, int64_t sid,
                               json_object *params, void **chosen, char *err, size_t errlen)
{
    server_t *s = ud;
    server_call_t *c = calls[0];
    char *t;

    for (size_t i = 1; i < n; i++)
        if (strcmp(((server_call_t *)calls[i])->reply, c->reply) != 0) {
            snprintf(err, errlen, "sampling/createMessage refused: calls from several clients are "
                     "in flight on this session, and the request does not say whose it is");
            return -EBUSY;
        }
    t = wire_reply_sampling(c->id, sid, params);
    if (!t) {
        snprintf(err, errlen, "sampling/createMessage refused: out of memory");
        return -ENOMEM;
    }
    server__publish(s, c->reply, t);
    free(t);
    *chosen = c;
    return 0;
}

static void server__start(server_t *s)
{
    mcp_session_cbs_t cbs = {.on_tools = server__on_tools, .on_closed = server__on_closed,
                             .on_progress = server__on_progress, .ud = s,
                             .on_sampling = server__on_sampling};
    char err[512];

    s->wanted = 1;
    s->starts++;
    s->sess = mcp_session_new(s->loop, s->name, s->cfg, &cbs, err, sizeof(err));
    if (s->sess) {
        mcp_session_raw_calls(s->sess, 1);   /* results copied as written: no tree needed */
        return;
    }
    /* could not even start (no such command, bad URL): same path as a death */
    snprintf(s->error, sizeof(s->error), "%s", err);
    server__backoff(s, err, 1);
}

static void server__unlink_call(server_t *s, server_call_t *c)
{
    for (server_call_t **pp = &s->calls; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            return;
        }
}

/* Whether c is still in flight (not ended and freed meanwhile). */
static int server__has_call(const server_t *s, const server_call_t *c)
{
    for (const server_call_t *x = s->calls; x; x = x->next)
        if (x == c)
            return 1;
    return 0;
}

/* The log lines about one call name its request: rid= (text) or
 * "request_id" (JSON), as the responder's lines do. */
static void server__call_log(const server_call_t *c, enum log_level level, const char *what,
                             const char *detail)
{
    if (!log_enabled(level))
        return;
    log_set_request(c->rid[0] ? c->rid : NULL);
    log_msg(level, "MCP server '%s': call %s (tool '%s') %s%s%s", c->s->name, c->id, c->tool,
            what, detail ? ": " : "", detail ? detail : "");
    log_set_request(NULL);
}

/* A call that ended: counted by outcome, and its time. */
static void server__count(server_t *s, int outcome, const server_call_t *c)
{
    double secs;
    int i = 0;

    s->calls_n[outcome]++;
    if (!c)
        return;
    secs = (double)(uv_hrtime() - c->t0_ns) / 1e9;
    while (i < SERVER_DUR_BUCKETS && secs > server__bounds[i])
        i++;
    s->dur[i]++;
    s->dur_sum += secs;
}

/* The call's span, when it has one, ends with `error_type` (NULL: fine). */
static void server__span_end(server_call_t *c, const char *error_type)
{
    if (!c->span)
        return;
    if (error_type) {
        otel_span_str(c->span, "error.type", error_type);
        otel_span_status(c->span, OTEL_STATUS_ERROR, NULL);
    }
    otel_span_end(c->span);
    free(c->span);
    c->span = NULL;
}

/* A span for call `c` of `req` when the responder sent its traceparent and
 * tracing is on, child of the responder's execute_tool span; its own
 * traceparent goes into *meta for the MCP server (params._meta). */
static void server__span_start(server_t *s, server_call_t *c, const wire_req_t *req,
                               json_object **meta)
{
    otel_ctx_t parent;
    char name[300], tp[OTEL_TP_LEN + 1];

    if (!req->tp || otel_tp_parse(req->tp, &parent) != 0)
        return;
    if (!otel_sample(&parent, parent.trace_id)) {
        /* not recorded here (not sampled, or tracing off in the broker): the
         * MCP server still gets the context as the responder sent it */
        if ((*meta = json_object_new_object()))
            json_object_object_add(*meta, "traceparent", json_object_new_string(req->tp));
        return;
    }
    if (!(c->span = malloc(sizeof(*c->span))))
        return;
    snprintf(name, sizeof(name), "tools/call %s", req->tool);
    otel_span_start(c->span, &parent, name, OTEL_KIND_CLIENT);
    otel_span_str(c->span, "mcp.method.name", "tools/call");
    otel_span_str(c->span, "gen_ai.tool.name", req->tool);
    otel_span_str(c->span, "gen_ai.operation.name", "execute_tool");
    otel_span_str(c->span, "aiproxy.mcp.server", s->name);
    otel_span_str(c->span, "aiproxy.broker.call_id", req->id);
    if (s->sess && *mcp_session_protocol(s->sess))
        otel_span_str(c->span, "mcp.protocol.version", mcp_session_protocol(s->sess));
    otel_tp_format(&c->span->ctx, tp);
    if ((*meta = json_object_new_object()))
        json_object_object_add(*meta, "traceparent", json_object_new_string(tp));
}

/* The "started" line, once: SERVER_LOG_STARTED_MS after the call went out
 * (server__on_logt), or before its end line when that came first. */
static void server__log_started(server_call_t *c)
{
    if (c->logged)
        return;
    c->logged = 1;
    server__call_log(c, LOG_LVL_INFO, "started", NULL);
}

/* The "started" lines of the calls still running (they went out at most
 * SERVER_LOG_STARTED_MS ago). */
static void server__on_logt(uv_timer_t *t)
{
    server_t *s = t->data;

    for (server_call_t *c = s->calls; c; c = c->next)
        server__log_started(c);
}

static void server__call_done(void *ud, int ok, json_object *result, const char *error)
{
    server_call_t *c = ud;
    size_t rawlen = 0;
    const char *raw = ok && c->s->sess ? mcp_session_raw_result(c->s->sess, &rawlen) : NULL;
    /* the result as the server wrote it when it can be cut out (no json-c
     * round trip); else re-serialised. result is NULL when the session read
     * the answer without a tree (mcp_session_raw_calls): raw is then set */
    char *t = raw ? wire_reply_result_raw(c->id, raw, rawlen) : NULL;
    char what[64];
    json_object *is_err = NULL;
    int tool_error = ok && (result ? json_object_object_get_ex(result, "isError", &is_err) &&
                                         json_object_get_boolean(is_err)
                                   : c->s->sess && mcp_session_raw_is_error(c->s->sess));

    if (!t)
        t = !ok ? wire_reply_error(c->id, error)
            : result ? wire_reply_result(c->id, result)
                     : wire_reply_error(c->id, "out of memory in mcp-broker");

    snprintf(what, sizeof(what), "%s after %llu ms",
             !ok ? "failed" : tool_error ? "ended with a tool error" : "done",
             (unsigned long long)(uv_now(c->s->loop) - c->t0));
    /* the answer first: the log line, the counts and the span are
     * nobody's wait */
    server__unlink_call(c->s, c);
    server__answer(c->s, c->reply, t);
    free(t);
    if (!c->s->calls)
        uv_timer_stop(&c->s->logt);
    server__log_started(c);
    server__call_log(c, ok ? LOG_LVL_INFO : LOG_LVL_WARN, what, ok ? NULL : error);
    if (ok)
        server__count(c->s, tool_error ? SERVER_OUT_TOOL_ERROR : SERVER_OUT_OK, c);
    else
        server__count(c->s, error && strstr(error, "timed out") ? SERVER_OUT_TIMEOUT
                                                                : SERVER_OUT_SERVER_DOWN, c);
    if (c->span)
        server__span_end(c, !ok ? "mcp_error" : tool_error ? "tool_error" : NULL);
    free(c);
}

void server_cancel(server_t *s, const char *id)
{
    server_call_t *c = s->calls;

    while (c && strcmp(c->id, id) != 0)
        c = c->next;
    if (!c || !s->sess || mcp_session_cancel(s->sess, c, "the client went away") != 0)
        return;
    /* cancelled: its callback will not fire, nobody waits for an answer */
    server__call_log(c, LOG_LVL_INFO, "abandoned by the responder: cancelled", NULL);
    server__count(s, SERVER_OUT_CANCELLED, c);
    server__unlink_call(s, c);
    server__span_end(c, "cancelled");
    free(c);
}

void server_sampled(server_t *s, const wire_req_t *req)
{
    server_call_t *c = s->calls;

    while (c && strcmp(c->id, req->id) != 0)
        c = c->next;
    if (!c || !s->sess || mcp_session_answer(s->sess, c, req->sid, req->result, req->error) != 0)
        log_debug("MCP server '%s': answer to sampling request %lld of call %s dropped (the call ended)",
                  s->name, (long long)req->sid, req->id);
}

void server_republish(server_t *s)
{
    if (s->sess && mcp_session_ready(s->sess) && s->tools)
        server__write_catalog(s, "ready", s->tools, NULL);
}

void server_handle(server_t *s, const wire_req_t *req)
{
    char msg[1024];

    if (s->retired) {
        server__reply_error(s, req->reply, req->id, "mcp-broker is stopping this MCP server");
        return;
    }
    if (!s->sess && !s->in_backoff)
        server__start(s);
    if (!s->sess) {
        snprintf(msg, sizeof(msg), "%s; retrying in the background",
                 s->error[0] ? s->error : "not started yet");
        if (req->op == WIRE_OP_CALL)
            s->calls_n[SERVER_OUT_SERVER_DOWN]++;
        server__reply_error(s, req->reply, req->id, msg);
        return;
    }
    if (req->op == WIRE_OP_START) {
        server_waiter_t *w;
        if (mcp_session_ready(s->sess) && s->tools) {
            char *t = wire_reply_tools(req->id, s->tools);
            server__publish(s, req->reply, t);
            free(t);
            return;
        }
        w = calloc(1, sizeof(*w));
        if (!w) {
            server__reply_error(s, req->reply, req->id, "mcp-broker: out of memory");
            return;
        }
        memcpy(w->id, req->id, sizeof(w->id));
        snprintf(w->reply, sizeof(w->reply), "%s", req->reply);
        w->next = s->waiters;
        s->waiters = w;
        return;
    }
    {
        server_call_t *c = calloc(1, sizeof(*c));
        json_object *meta = NULL;
        int rc;
        if (!c) {
            server__reply_error(s, req->reply, req->id, "mcp-broker: out of memory");
            return;
        }
        c->s = s;
        c->t0_ns = uv_hrtime();
        memcpy(c->id, req->id, sizeof(c->id));
        snprintf(c->reply, sizeof(c->reply), "%s", req->reply);
        snprintf(c->tool, sizeof(c->tool), "%s", req->tool);
        if (req->rid)
            snprintf(c->rid, sizeof(c->rid), "%s", req->rid);
        c->t0 = uv_now(s->loop);
        server__span_start(s, c, req, &meta);
        /* in the list before it goes out: a send that fails ends the call
         * (server__call_done, which unlinks and frees it) before this returns */
        c->next = s->calls;
        s->calls = c;
        rc = mcp_session_call_full(s->sess, req->tool, req->args, meta, req->deadline, req->rid,
                                   server__call_done, c);
        json_object_put(meta);
        if (rc < 0) {
            server__unlink_call(s, c);
            snprintf(msg, sizeof(msg), "MCP server '%s' is restarting; try again", s->name);
            server__reply_error(s, req->reply, req->id, msg);
            server__log_started(c);
            server__call_log(c, LOG_LVL_WARN, "failed", msg);
            s->calls_n[SERVER_OUT_SERVER_DOWN]++;
            server__span_end(c, "server_restarting");
            free(c);
        } else if (server__has_call(s, c)) {
            /* on its way to the server (its answer is read by this loop
             * later): the span's id is nobody's wait, and the "started" line
             * waits for SERVER_LOG_STARTED_MS or the call's end */
            int64_t rpc = c->span ? mcp_session_call_rpc_id(s->sess, c) : 0;
            if (!uv_is_active((uv_handle_t *)&s->logt))
                uv_timer_start(&s->logt, server__on_logt, SERVER_LOG_STARTED_MS, 0);
            if (rpc > 0) {
                snprintf(msg, sizeof(msg), "%lld", (long long)rpc);
                otel_span_str(c->span, "jsonrpc.request.id", msg);
            }
        }
    }
}

void server_update(server_t *s, json_object *cfg)
{
    const char *t = json_object_to_json_string_ext(cfg, JSON_C_TO_STRING_PLAIN);
    char *text;
    json_object *copy;

    if (!t || strcmp(t, s->cfg_text) == 0)
        return;
    text = strdup(t);
    copy = text ? json_tokener_parse(text) : NULL;
    if (!copy) {
        free(text);
        log_error("MCP server '%s': out of memory applying a registry change", s->name);
        return;
    }
    free(s->cfg_text);
    json_object_put(s->cfg);
    s->cfg_text = text;
    s->cfg = copy;
    s->backoff_ms = SERVER_BACKOFF_MIN_MS;
    log_info("MCP server '%s': settings changed in the registry", s->name);
    if (s->sess) {
        s->restart_now = 1;
        mcp_session_close(s->sess);
    } else if (s->in_backoff) {
        uv_timer_stop(&s->timer);
        s->in_backoff = 0;
        server__start(s);
    }
}

void server_retire(server_t *s)
{
    s->retired = 1;
    s->owned = 0;
    uv_timer_stop(&s->timer);
    if (s->sess)
        mcp_session_close(s->sess);
    else
        server__close_handles(s);
}

int server_busy(const server_t *s)
{
    return s->calls != NULL || s->waiters != NULL;
}

void server_stats(const server_t *s, server_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    out->state = s->sess ? (mcp_session_ready(s->sess) ? "ready" : "starting")
               : s->in_backoff ? "backoff" : "idle";
    out->restarts = s->starts > 1 ? s->starts - 1 : 0;
    memcpy(out->calls, s->calls_n, sizeof(out->calls));
    out->bounds = server__bounds;
    memcpy(out->dur, s->dur, sizeof(out->dur));
    out->dur_sum = s->dur_sum;
    for (const server_call_t *c = s->calls; c; c = c->next)
        out->in_flight++;
    out->owned = s->owned;
}
