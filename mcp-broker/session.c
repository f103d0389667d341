/* session — the MCP client state machine over one transport (see session.h).
 *
 * States: STARTING (transport not ready) → INIT (initialize sent) → LISTING
 * (tools/list pages) → READY; CLOSING once the transport is asked to close.
 * Every request we send is a `pend` in one list, keyed by its integer id; a
 * 100 ms tick fails the ones past their deadline. Calls made before READY wait
 * in the same list, unsent (id 0), and are sent when the catalog is in. */
#include "mcp-broker/session.h"
#include "mcp-broker/jsonrpc.h"
#include "mcp-broker/transport.h"
#include "shared/jtext.h"
#include "shared/log.h"
#include "shared/caps.h"
#include "shared/jget.h"
#include "shared/reqid.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SESSION_PROTOCOL      "2025-06-18"
#define SESSION_INIT_MS       30000   /* initialize + tools/list must finish in this */
#define SESSION_TICK_MS       100
#define SESSION_RELAY_MS      100     /* progress relayed at most this often per call */
#define SESSION_MAX_TIMEOUT_MS 3600000 /* max_timeout's default */

static const char *const session_versions[] = {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"};

enum session_state { ST_STARTING, ST_INIT, ST_LISTING, ST_READY, ST_CLOSING };
enum pend_kind { P_INIT, P_LIST, P_CALL, P_PING };

typedef struct pend {
    struct pend *next;
    enum pend_kind kind;
    int64_t id;                  /* 0 while queued (not sent) */
    int64_t deadline;            /* CLOCK_MONOTONIC ms */
    int64_t started;             /* CLOCK_MONOTONIC ms, for "timed out after N s" */
    char *tool;                  /* P_CALL */
    json_object *args;           /* P_CALL, owned */
    int64_t budget;              /* P_CALL: its timeout, given again by each progress report */
    int64_t ceiling;             /* P_CALL: no progress extends the deadline past this */
    int64_t relayed_at;          /* P_CALL: when progress was last handed on (0: never) */
    int64_t last_progress;       /* P_CALL: when the last report came (0: none) */
    int held;                    /* P_CALL: a report waits to be handed on (coalesced) */
    double held_progress, held_total;
    char *held_msg;              /* owned, NULL when none */
    json_object *meta;           /* P_CALL, owned: more members of params._meta, or NULL */
    mcp_session_call_cb cb;
    void *ud;
    char rid[REQID_MAX + 1];     /* P_CALL: the request id for _meta, "" when none */
} pend_t;

/* A server request (sampling/createMessage) handed to the owner of a call,
 * waiting for mcp_session_answer. */
typedef struct sreq {
    struct sreq *next;
    int64_t sid;                 /* our number for it (the server's id may be a string) */
    json_object *rpc_id;         /* owned: the server's JSON-RPC id */
    void *call_ud;               /* the call it was handed to */
} sreq_t;

struct mcp_session {
    uv_loop_t *loop;
    char name[128];
    mcp_session_cbs_t cbs;
    mcp_transport_t *t;
    uv_timer_t tick;
    enum session_state state;
    int64_t next_id;
    int64_t timeout_ms;          /* the server's default call timeout */
    int64_t max_ms;              /* max_timeout: the progress ceiling */
    pend_t *pends;
    sreq_t *sreqs;               /* server requests handed on, unanswered */
    int64_t next_sid;
    json_object *roots;          /* owned: the configured roots/list answer's array */
    int elicit_defaults;         /* elicitation: defaults (accept with the schema's defaults) */
    json_object *tools_acc;      /* tools/list pages gathered so far */
    int pages;
    int relist;                  /* list_changed arrived while listing */
    int transport_closed, tick_closed, closed_fired;
    char protocol[32];
    char reason[512];
    const char *line;            /* the message being dispatched, when it is one object */
    size_t line_len;
    int raw_calls;               /* mcp_session_raw_calls */
    const char *raw;             /* a call's result read without a tree, during its callback */
    size_t raw_len;
    int raw_is_error;
};

/* Every wait in here runs on CLOCK_MONOTONIC: a wall-clock step (NTP, an
 * operator) must not time out calls early or keep them past their bound. */
static int64_t session__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A deadline the wire gives in unix ms, on session__now()'s clock. */
static int64_t session__from_unix(int64_t unix_ms)
{
    struct timespec ts;
    int64_t wall;

    clock_gettime(CLOCK_REALTIME, &ts);
    wall = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    return session__now() + (unix_ms - wall);
}

/* Tells the server to stop working on request `id` (MCP cancellation). */
static int session__send(mcp_session_t *s, char *text);
static void session__send_cancel(mcp_session_t *s, int64_t id, const char *reason)
{
    json_object *params = json_object_new_object();

    if (!params)
        return;
    json_object_object_add(params, "requestId", json_object_new_int64(id));
    json_object_object_add(params, "reason", json_object_new_string(reason));
    session__send(s, jsonrpc_notification("notifications/cancelled", params));
    json_object_put(params);
}

static void pend_free(pend_t *p)
{
    free(p->held_msg);
    free(p->tool);
    json_object_put(p->args);
    json_object_put(p->meta);
    free(p);
}

static void sreq_free(sreq_t *r)
{
    json_object_put(r->rpc_id);
    free(r);
}

static int session__call_alive(const mcp_session_t *s, void *call_ud)
{
    for (const pend_t *p = s->pends; p; p = p->next)
        if (p->kind == P_CALL && p->ud == call_ud)
            return 1;
    return 0;
}

/* Server requests whose call is over (answered, timed out, cancelled) get a
 * JSON-RPC error now: the owner will not answer them, and the server must
 * not wait. All of them when `all`. */
static void session__sreqs_orphaned(mcp_session_t *s, int all)
{
    for (sreq_t **pp = &s->sreqs; *pp;) {
        sreq_t *r = *pp;
        if (!all && session__call_alive(s, r->call_ud)) {
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        if (s->state != ST_CLOSING)
            session__send(s, jsonrpc_error(r->rpc_id, JSONRPC_INTERNAL_ERROR,
                                           "sampling request abandoned: the tool call it belongs to has ended"));
        sreq_free(r);
    }
}

static void session__maybe_closed(mcp_session_t *s)
{
    if (s->transport_closed && s->tick_closed && !s->closed_fired) {
        s->closed_fired = 1;
        if (s->cbs.on_closed)
            s->cbs.on_closed(s->cbs.ud, s->reason[0] ? s->reason : "closed");
    }
}

static void session__tick_closed(uv_handle_t *h)
{
    mcp_session_t *s = h->data;
    s->tick_closed = 1;
    session__maybe_closed(s);
}

/* Fails every pending request; calls get `why` as their error. */
static void session__fail_all(mcp_session_t *s, const char *why)
{
    pend_t *p = s->pends;

    s->pends = NULL;
    while (p) {
        pend_t *next = p->next;
        if (p->kind == P_CALL && p->cb)
            p->cb(p->ud, 0, NULL, why);
        pend_free(p);
        p = next;
    }
}

/* Starts closing for `why` (the first reason wins). */
static void session__shutdown(mcp_session_t *s, const char *why)
{
    char msg[800];

    if (s->state == ST_CLOSING)
        return;
    s->state = ST_CLOSING;
    if (!s->reason[0])
        snprintf(s->reason, sizeof(s->reason), "%s", why);
    snprintf(msg, sizeof(msg), "MCP server '%s' %s", s->name, s->reason);
    session__sreqs_orphaned(s, 1);   /* nothing is sent now: only freed */
    session__fail_all(s, msg);
    mcp_transport_close(s->t);
}

static int session__send(mcp_session_t *s, char *text)
{
    int rc;

    if (!text)
        return -ENOMEM;
    log_debug("mcp '%s' >> %s", s->name, text);
    rc = mcp_transport_send(s->t, text, strlen(text));
    free(text);
    return rc;
}

static pend_t *session__add(mcp_session_t *s, enum pend_kind kind, int64_t deadline)
{
    pend_t *p = calloc(1, sizeof(*p));

    if (!p)
        return NULL;
    p->kind = kind;
    p->started = session__now();
    p->deadline = deadline;
    p->next = s->pends;
    s->pends = p;
    return p;
}

static void session__unlink(mcp_session_t *s, pend_t *p)
{
    for (pend_t **pp = &s->pends; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            return;
        }
}

static pend_t *session__find(mcp_session_t *s, int64_t id)
{
    for (pend_t *p = s->pends; p; p = p->next)
        if (p->id == id && id > 0)
            return p;
    return NULL;
}

/* Sends a request for pend p (method/params), giving it the next id. */
static int session__request(mcp_session_t *s, pend_t *p, const char *method, json_object *params)
{
    p->id = ++s->next_id;
    return session__send(s, jsonrpc_request(p->id, method, params));
}

static void session__list(mcp_session_t *s, const char *cursor)
{
    json_object *params = NULL;
    pend_t *p = session__add(s, P_LIST, session__now() + SESSION_INIT_MS);

    if (!p) {
        session__shutdown(s, "out of memory");
        return;
    }
    if (cursor) {
        params = json_object_new_object();
        json_object_object_add(params, "cursor", json_object_new_string(cursor));
    }
    if (session__request(s, p, "tools/list", params) < 0)
        session__shutdown(s, "cannot send tools/list");
    json_object_put(params);
}

/* The tools/call line of pend p, written straight into text rather than
 * built as a json-c tree and serialised (a tree per call cost a few µs
 * on the broker's path): params._meta (progressToken, the request id, the
 * call's other members, which win over the request id as a tree's last add
 * did), name, arguments. malloc'd, NULL on ENOMEM. */
static char *session__call_line(const pend_t *p)
{
    const int plain = JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;
    buf_t b;
    int rc;

    buf_init(&b, CAP_STDIO_LINE);
    rc = buf_printf(&b, "{\"jsonrpc\":\"2.0\",\"id\":%lld,\"method\":\"tools/call\","
                        "\"params\":{\"_meta\":{\"progressToken\":%lld",
                    (long long)p->id, (long long)p->id);
    if (!rc && p->rid[0] && !(p->meta && json_object_object_get_ex(p->meta, REQID_MCP_META, NULL)))
        rc = buf_puts(&b, ",\"" REQID_MCP_META "\":") || buf_json_str(&b, p->rid, strlen(p->rid));
    if (!rc && p->meta) {
        json_object_object_foreach(p->meta, k, v) {
            if (rc || strcmp(k, "progressToken") == 0)
                continue;
            rc = buf_puts(&b, ",") || buf_json_str(&b, k, strlen(k)) || buf_puts(&b, ":") ||
                 buf_puts(&b, v ? json_object_to_json_string_ext(v, plain) : "null");
        }
    }
    if (!rc)
        rc = buf_puts(&b, "},\"name\":") || buf_json_str(&b, p->tool, strlen(p->tool)) ||
             buf_puts(&b, ",\"arguments\":") ||
             buf_puts(&b, p->args ? json_object_to_json_string_ext(p->args, plain) : "{}") ||
             buf_puts(&b, "}}");
    if (rc) {
        buf_free(&b);
        return NULL;
    }
    return buf_detach(&b);
}

static void session__send_call(mcp_session_t *s, pend_t *p)
{
    int rc;

    /* the JSON-RPC id doubles as the progress token: unique among the
     * session's requests, as MCP requires, and found with session__find */
    p->id = ++s->next_id;
    rc = session__send(s, session__call_line(p));
    if (rc < 0) {
        char msg[300];
        session__unlink(s, p);
        snprintf(msg, sizeof(msg), "MCP server '%s': cannot send the call", s->name);
        p->cb(p->ud, 0, NULL, msg);
        pend_free(p);
    }
}

static void session__flush_queued(mcp_session_t *s)
{
    pend_t *q = NULL, *p, *next;

    /* take the queued calls out first: sending may fail and unlink */
    for (pend_t **pp = &s->pends; *pp;) {
        p = *pp;
        if (p->kind == P_CALL && p->id == 0) {
            *pp = p->next;
            p->next = q;
            q = p;
        } else {
            pp = &p->next;
        }
    }
    for (p = q; p; p = next) {
        next = p->next;
        p->next = s->pends;
        s->pends = p;
        session__send_call(s, p);
    }
}

/* The catalog keeps what a client may act on besides name, description and
 * inputSchema (MCP 2025-06-18 and later), each only when of its type:
 * `title`, `annotations` (readOnlyHint, destructiveHint, ...),
 * `outputSchema`, `execution` (taskSupport: a "required" tool is not offered,
 * shared/toolsel.h) and `_meta`. `icons` are left out: data URLs can be
 * large, and nothing here shows them. */
static void session__keep(json_object *o, json_object *t)
{
    static const struct { const char *key; json_type type; } keep[] = {
        {"title", json_type_string},    {"annotations", json_type_object},
        {"outputSchema", json_type_object}, {"execution", json_type_object},
        {"_meta", json_type_object},
    };
    json_object *v;

    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
        if ((v = jget_typed(t, keep[i].key, keep[i].type)))
            json_object_object_add(o, keep[i].key, json_object_get(v));
}

static void session__tools_page(mcp_session_t *s, json_object *result)
{
    json_object *tools = jget_arr(result, "tools");
    const char *cur = jget_str(result, "nextCursor");

    if (!s->tools_acc)
        s->tools_acc = json_object_new_array();
    if (tools) {
        size_t n = json_object_array_length(tools);
        for (size_t i = 0; i < n; i++) {
            json_object *t = json_object_array_get_idx(tools, i), *v, *o;
            if (!(v = jget_typed(t, "name", json_type_string)))
                continue;
            o = json_object_new_object();
            json_object_object_add(o, "name", json_object_get(v));
            session__keep(o, t);
            if ((v = jget_typed(t, "description", json_type_string)))
                json_object_object_add(o, "description", json_object_get(v));
            else
                json_object_object_add(o, "description", json_object_new_string(""));
            if ((v = jget_obj(t, "inputSchema")))
                json_object_object_add(o, "inputSchema", json_object_get(v));
            else
                json_object_object_add(o, "inputSchema",
                                       json_tokener_parse("{\"type\":\"object\",\"properties\":{}}"));
            json_object_array_add(s->tools_acc, o);
        }
    }
    if (cur && *cur && ++s->pages < CAP_MCP_LIST_PAGES) {
        session__list(s, cur);
        return;
    }
    if (s->state != ST_READY)
        log_info("mcp server '%s': ready (protocol %s, %zu tools)", s->name, s->protocol,
                 json_object_array_length(s->tools_acc));
    s->state = ST_READY;
    if (s->cbs.on_tools)
        s->cbs.on_tools(s->cbs.ud, s->tools_acc);
    json_object_put(s->tools_acc);
    s->tools_acc = NULL;
    s->pages = 0;
    if (s->relist) {
        s->relist = 0;
        session__list(s, NULL);
    }
    session__flush_queued(s);
}

static void session__init_result(mcp_session_t *s, json_object *result)
{
    const char *ver = jget_str(result, "protocolVersion");
    size_t i;

    for (i = 0; ver && i < sizeof(session_versions) / sizeof(session_versions[0]); i++)
        if (strcmp(ver, session_versions[i]) == 0)
            break;
    if (!ver || i == sizeof(session_versions) / sizeof(session_versions[0])) {
        char why[200];
        snprintf(why, sizeof(why), "offers unsupported protocol version '%s'", ver ? ver : "(none)");
        session__shutdown(s, why);
        return;
    }
    snprintf(s->protocol, sizeof(s->protocol), "%s", ver);
    mcp_transport_set_protocol_version(s->t, ver);
    if (session__send(s, jsonrpc_notification("notifications/initialized", NULL)) < 0) {
        session__shutdown(s, "cannot send notifications/initialized");
        return;
    }
    s->state = ST_LISTING;
    session__list(s, NULL);
}

static void session__response(mcp_session_t *s, const jsonrpc_msg_t *m)
{
    pend_t *p = session__find(s, m->num_id);
    char msg[600];

    if (!p) {
        log_debug("mcp server '%s': answer for unknown id dropped", s->name);
        return;
    }
    session__unlink(s, p);
    switch (p->kind) {
    case P_INIT:
        if (m->kind == JSONRPC_ERROR) {
            snprintf(msg, sizeof(msg), "refused initialize: %s (%lld)", m->err_message, (long long)m->err_code);
            session__shutdown(s, msg);
        } else {
            session__init_result(s, m->result);
        }
        break;
    case P_LIST:
        if (m->kind == JSONRPC_ERROR) {
            snprintf(msg, sizeof(msg), "refused tools/list: %s (%lld)", m->err_message, (long long)m->err_code);
            session__shutdown(s, msg);
        } else {
            session__tools_page(s, m->result);
        }
        break;
    case P_CALL:
        if (m->kind == JSONRPC_ERROR) {
            snprintf(msg, sizeof(msg), "%s (MCP error %lld)", m->err_message, (long long)m->err_code);
            p->cb(p->ud, 0, NULL, msg);
        } else if (!json_object_is_type(m->result, json_type_object)) {
            p->cb(p->ud, 0, NULL, "the server sent a tools/call result that is not an object");
        } else {
            p->cb(p->ud, 1, m->result, NULL);
        }
        break;
    case P_PING:
        break;
    }
    pend_free(p);
}

/* sampling/createMessage: handed to the owner of the call in flight (the
 * server asks on behalf of the tool it is running). Which call: the only one
 * in flight, or, with several, the newest, when all belong to one owner
 * (cbs.on_sampling decides; it sees them all). Outside a call, or when the
 * owner cannot take it, the server gets an error at once. */
static void session__sampling(mcp_session_t *s, const jsonrpc_msg_t *m)
{
    void *calls[CAP_MCP_SAMPLING_CALLS];
    size_t n = 0;
    sreq_t *r = NULL;
    char err[300] = "";
    int rc;

    for (pend_t *p = s->pends; p && n < CAP_MCP_SAMPLING_CALLS; p = p->next)
        if (p->kind == P_CALL && p->id > 0)
            calls[n++] = p->ud;     /* newest first: session__add puts them at the head */
    if (n == 0 || !s->cbs.on_sampling) {
        session__send(s, jsonrpc_error(m->id, JSONRPC_INVALID_REQUEST,
                                       n == 0 ? "sampling/createMessage refused: aiproxy serves sampling only "
                                                "during a tool call, for the assistant that made it"
                                              : "sampling/createMessage refused: this client does not serve sampling"));
        return;
    }
    if (!m->params || !json_object_is_type(m->params, json_type_object)) {
        session__send(s, jsonrpc_error(m->id, JSONRPC_INVALID_PARAMS, "sampling/createMessage: params must be an object"));
        return;
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        session__send(s, jsonrpc_error(m->id, JSONRPC_INTERNAL_ERROR, "out of memory"));
        return;
    }
    r->sid = ++s->next_sid;
    r->rpc_id = json_object_get(m->id);
    r->next = s->sreqs;
    s->sreqs = r;
    /* listed before the hook runs: it may answer at once (mcp-probe) */
    rc = s->cbs.on_sampling(s->cbs.ud, calls, n, r->sid, m->params, &r->call_ud, err, sizeof(err));
    if (rc < 0) {
        for (sreq_t **pp = &s->sreqs; *pp; pp = &(*pp)->next)
            if (*pp == r) {
                *pp = r->next;
                session__send(s, jsonrpc_error(r->rpc_id, JSONRPC_INVALID_REQUEST,
                                               err[0] ? err : "sampling/createMessage refused"));
                sreq_free(r);
                break;
            }
    }
}

/* roots/list: the roots configured for the server ("roots", default none). */
static void session__roots(mcp_session_t *s, const jsonrpc_msg_t *m)
{
    json_object *res = json_object_new_object();

    if (!res)
        return;
    json_object_object_add(res, "roots", s->roots ? json_object_get(s->roots) : json_object_new_array());
    session__send(s, jsonrpc_result(m->id, res));
    json_object_put(res);
}

/* elicitation/create: nobody is at hand to ask (a gateway runs tools
 * unattended), so the answer never waits. With "elicitation: defaults" a
 * form whose every required field has a default is accepted with all the
 * defaults the schema gives (SEP-1034); anything else is declined. NULL on
 * ENOMEM. */
static json_object *session__elicit(const mcp_session_t *s, json_object *params)
{
    json_object *res = json_object_new_object(), *content = NULL;
    json_object *schema = jget_obj(params, "requestedSchema"), *props = jget_obj(schema, "properties");
    json_object *req = jget_arr(schema, "required");
    const char *mode = jget_str(params, "mode");
    int accept = s->elicit_defaults && props && (!mode || strcmp(mode, "form") == 0);

    if (!res)
        return NULL;
    for (size_t i = 0; accept && req && i < json_object_array_length(req); i++) {
        const char *name = json_object_get_string(json_object_array_get_idx(req, i));
        if (!name || !json_object_object_get_ex(jget_obj(props, name), "default", NULL))
            accept = 0;
    }
    if (accept && (content = json_object_new_object())) {
        json_object_object_foreach(props, name, prop) {
            json_object *d = NULL;
            if (json_object_is_type(prop, json_type_object) && json_object_object_get_ex(prop, "default", &d) && d)
                json_object_object_add(content, name, json_object_get(d));
        }
    }
    json_object_object_add(res, "action", json_object_new_string(content ? "accept" : "decline"));
    if (content)
        json_object_object_add(res, "content", content);
    return res;
}

static void session__server_request(mcp_session_t *s, const jsonrpc_msg_t *m)
{
    char msg[300];

    if (strcmp(m->method, "ping") == 0) {
        json_object *empty = json_object_new_object();
        session__send(s, jsonrpc_result(m->id, empty));
        json_object_put(empty);
        return;
    }
    if (strcmp(m->method, "sampling/createMessage") == 0) {
        session__sampling(s, m);
        return;
    }
    if (strcmp(m->method, "roots/list") == 0) {
        session__roots(s, m);
        return;
    }
    if (strcmp(m->method, "elicitation/create") == 0) {
        json_object *res = session__elicit(s, m->params);
        if (res) {
            session__send(s, jsonrpc_result(m->id, res));
            json_object_put(res);
        }
        return;
    }
    snprintf(msg, sizeof(msg), "Method not found: %s (aiproxy serves ping, sampling/createMessage, "
             "roots/list and elicitation/create)", m->method);
    session__send(s, jsonrpc_error(m->id, JSONRPC_METHOD_NOT_FOUND, msg));
}

/* Hands p's held progress report to the owner, now. */
static void session__relay(mcp_session_t *s, pend_t *p, int64_t now)
{
    mcp_progress_t pr = {p->held_progress, p->held_total, p->held_msg, p->deadline - now};

    p->held = 0;
    p->relayed_at = now;
    if (s->cbs.on_progress)
        s->cbs.on_progress(s->cbs.ud, p->ud, &pr);
    free(p->held_msg);
    p->held_msg = NULL;
}

/* notifications/progress {progressToken, progress, total?, message?}: the
 * call it names is alive, so its deadline moves to now + its timeout (up to
 * its ceiling); the report is relayed now or, within SESSION_RELAY_MS of the
 * last one, held (the latest wins) for the tick. A token that names no call
 * in flight (answered already, never ours) is dropped. */
static void session__progress(mcp_session_t *s, json_object *params)
{
    json_object *tok = jget(params, "progressToken"), *v = jget(params, "progress");
    int64_t id = 0, now = session__now(), want;
    pend_t *p;

    if (tok && json_object_is_type(tok, json_type_int)) {
        id = json_object_get_int64(tok);
    } else if (tok && json_object_is_type(tok, json_type_string)) {
        /* a server that echoes the token as a string */
        const char *t = json_object_get_string(tok);
        char *end = NULL;
        errno = 0;
        id = strtoll(t, &end, 10);
        if (errno || end == t || *end)
            id = 0;
    }
    p = session__find(s, id);
    if (!p || p->kind != P_CALL) {
        log_debug("mcp server '%s': progress for no call in flight dropped", s->name);
        return;
    }
    if (!v || !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)) ||
        !isfinite(json_object_get_double(v))) {
        log_warn("mcp server '%s': ignored a progress report without a numeric progress", s->name);
        return;
    }
    want = now + p->budget;
    if (want > p->ceiling)
        want = p->ceiling;
    if (want > p->deadline)
        p->deadline = want;
    p->last_progress = now;
    p->held = 1;
    p->held_progress = json_object_get_double(v);
    v = jget(params, "total");
    p->held_total = v && (json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)) &&
                            isfinite(json_object_get_double(v)) && json_object_get_double(v) >= 0
                        ? json_object_get_double(v) : -1;
    free(p->held_msg);
    p->held_msg = NULL;
    v = jget_typed(params, "message", json_type_string);
    if (v)
        p->held_msg = strdup(json_object_get_string(v)); /* NULL on ENOMEM: relayed without */
    if (p->relayed_at == 0 || now - p->relayed_at >= SESSION_RELAY_MS)
        session__relay(s, p, now);
}

static void session__notification(mcp_session_t *s, const jsonrpc_msg_t *m)
{
    if (strcmp(m->method, "notifications/tools/list_changed") == 0) {
        if (s->state == ST_READY) {
            int listing = 0;
            for (pend_t *p = s->pends; p; p = p->next)
                listing |= (p->kind == P_LIST);
            if (listing)
                s->relist = 1;
            else
                session__list(s, NULL);
        }
    } else if (strcmp(m->method, "notifications/progress") == 0) {
        session__progress(s, m->params);
    } else if (strcmp(m->method, "notifications/message") == 0) {
        json_object *d = NULL;
        if (m->params && json_object_object_get_ex(m->params, "data", &d))
            log_info("[%s] %s", s->name, json_object_to_json_string(d));
    }
}

static void session__dispatch(mcp_session_t *s, json_object *o)
{
    jsonrpc_msg_t m;
    char err[200];

    if (jsonrpc_classify(o, &m, err, sizeof(err)) != 0) {
        log_warn("mcp server '%s': ignored a bad message: %s", s->name, err);
        return;
    }
    switch (m.kind) {
    case JSONRPC_RESULT:
    case JSONRPC_ERROR:
        session__response(s, &m);
        break;
    case JSONRPC_REQUEST:
        session__server_request(s, &m);
        break;
    case JSONRPC_NOTIFICATION:
        session__notification(s, &m);
        break;
    }
}

/* A call's result read without a json-c tree (jsonrpc_scan_result), as
 * session__response would hand it over: 1 when done so, 0 when the
 * message is left to the full parse (another kind, not a pending call). */
static int session__fast_result(mcp_session_t *s, const char *json, size_t len)
{
    const char *res;
    size_t rlen;
    int64_t id;
    int is_error;
    pend_t *p;

    if (jsonrpc_scan_result(json, len, &id, &res, &rlen, &is_error) != 0 ||
        !(p = session__find(s, id)) || p->kind != P_CALL)
        return 0;
    session__unlink(s, p);
    s->raw = res;
    s->raw_len = rlen;
    s->raw_is_error = is_error;
    p->cb(p->ud, 1, NULL, NULL);
    s->raw = NULL;
    pend_free(p);
    return 1;
}

static void session__on_message(void *ud, const char *json, size_t len)
{
    mcp_session_t *s = ud;
    json_object *o;

    if (s->state == ST_CLOSING)
        return;
    log_debug("mcp '%s' << %.*s", s->name, (int)len, json);
    if (s->raw_calls && session__fast_result(s, json, len))
        return;
    /* as written: integers past 64 bits keep their text */
    o = jtext_parse_peer(json, len);
    if (!o) {
        log_warn("mcp server '%s': ignored a line that is not JSON: %.80s", s->name, json);
    } else if (json_object_is_type(o, json_type_array)) {
        size_t n = json_object_array_length(o);
        for (size_t i = 0; i < n && s->state != ST_CLOSING; i++)
            session__dispatch(s, json_object_array_get_idx(o, i));
    } else {
        s->line = json;
        s->line_len = len;
        session__dispatch(s, o);
        s->line = NULL;
    }
    json_object_put(o);
}

/* What we can answer: sampling (through the calling assistant's backend,
 * when the owner can serve it) and roots (the configured list, maybe
 * empty). Elicitation only with "elicitation: defaults": otherwise nobody
 * is there to answer, and a request that comes anyway is declined. */
static json_object *session__capabilities(const mcp_session_t *s)
{
    json_object *caps = json_object_new_object(), *roots = json_object_new_object();

    if (caps && roots) {
        json_object_object_add(roots, "listChanged", json_object_new_boolean(0));
        json_object_object_add(caps, "roots", roots);
        roots = NULL;
        if (s->cbs.on_sampling)
            json_object_object_add(caps, "sampling", json_object_new_object());
        if (s->elicit_defaults)  /* {} is form mode, in every revision */
            json_object_object_add(caps, "elicitation", json_object_new_object());
    }
    json_object_put(roots);
    return caps;
}

static void session__on_ready(void *ud)
{
    mcp_session_t *s = ud;
    json_object *params, *ci;
    pend_t *p;

    if (s->state != ST_STARTING)
        return;
    s->state = ST_INIT;
    p = session__add(s, P_INIT, session__now() + SESSION_INIT_MS);
    params = json_object_new_object();
    ci = json_object_new_object();
    if (!p || !params || !ci) {
        json_object_put(params);
        json_object_put(ci);
        session__shutdown(s, "out of memory");
        return;
    }
    json_object_object_add(ci, "name", json_object_new_string("aiproxy"));
    json_object_object_add(ci, "version", json_object_new_string("0.1.0"));
    json_object_object_add(params, "protocolVersion", json_object_new_string(SESSION_PROTOCOL));
    json_object_object_add(params, "capabilities", session__capabilities(s));
    json_object_object_add(params, "clientInfo", ci);
    if (session__request(s, p, "initialize", params) < 0)
        session__shutdown(s, "cannot send initialize");
    json_object_put(params);
}

static void session__on_closed(void *ud, const char *reason)
{
    mcp_session_t *s = ud;
    char why[400];

    snprintf(why, sizeof(why), "%s%s", s->state == ST_READY ? "died: " : "", reason);
    if (s->state != ST_CLOSING)
        session__shutdown(s, why); /* fails the calls in flight at once */
    s->transport_closed = 1;
    uv_close((uv_handle_t *)&s->tick, session__tick_closed);
}

static void session__on_tick(uv_timer_t *t)
{
    mcp_session_t *s = t->data;
    int64_t now = session__now();
    pend_t **pp = &s->pends;

    /* coalesced progress reports whose turn has come (before deadlines: a
     * report that extended a deadline is told before the call can time out) */
    for (pend_t *p = s->pends; p; p = p->next)
        if (p->held && now - p->relayed_at >= SESSION_RELAY_MS)
            session__relay(s, p, now);
    if (s->sreqs)
        session__sreqs_orphaned(s, 0);
    while (*pp && s->state != ST_CLOSING) {
        pend_t *p = *pp;
        if (p->deadline > now) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        if (p->kind == P_CALL) {
            char msg[400];
            long long secs = (long long)((p->deadline - p->started + 999) / 1000);
            if (!p->last_progress)
                snprintf(msg, sizeof(msg), "tool '%s' on MCP server '%s' timed out after %lld s", p->tool,
                         s->name, secs);
            else if (p->deadline >= p->ceiling)
                snprintf(msg, sizeof(msg), "tool '%s' on MCP server '%s' timed out after %lld s: it "
                         "reported progress but reached the server's max_timeout", p->tool, s->name, secs);
            else
                snprintf(msg, sizeof(msg), "tool '%s' on MCP server '%s' timed out after %lld s: no "
                         "progress reported for %lld s", p->tool, s->name, secs,
                         (long long)((now - p->last_progress + 500) / 1000));
            if (p->id > 0)
                session__send_cancel(s, p->id, "timed out");
            p->cb(p->ud, 0, NULL, msg);
            pend_free(p);
        } else if (p->kind == P_PING) {
            pend_free(p);
        } else {
            int was_init = (p->kind == P_INIT);
            pend_free(p);
            session__shutdown(s, was_init ? "did not answer initialize in time"
                                          : "did not answer tools/list in time");
            return;
        }
    }
}

/* The configured roots ([{uri, name?}], checked by cfg_check) as the
 * roots/list answer: entries without a string uri are skipped. NULL on
 * ENOMEM (answered as no roots). */
static json_object *session__roots_of(json_object *cfg)
{
    json_object *out = json_object_new_array();
    size_t n = json_object_array_length(cfg);

    for (size_t i = 0; out && i < n; i++) {
        json_object *e = json_object_array_get_idx(cfg, i), *r, *v;
        if (!(v = jget_typed(e, "uri", json_type_string)) || !(r = json_object_new_object()))
            continue;
        json_object_object_add(r, "uri", json_object_get(v));
        if ((v = jget_typed(e, "name", json_type_string)))
            json_object_object_add(r, "name", json_object_get(v));
        json_object_array_add(out, r);
    }
    return out;
}

int mcp_session_answer(mcp_session_t *s, void *call_ud, int64_t sid, json_object *result,
                       const char *error)
{
    for (sreq_t **pp = &s->sreqs; *pp; pp = &(*pp)->next) {
        sreq_t *r = *pp;
        if (r->sid != sid || r->call_ud != call_ud)
            continue;
        *pp = r->next;
        if (s->state != ST_CLOSING) {
            if (result)
                session__send(s, jsonrpc_result(r->rpc_id, result));
            else
                session__send(s, jsonrpc_error(r->rpc_id, JSONRPC_INTERNAL_ERROR,
                                               error ? error : "sampling failed"));
        }
        sreq_free(r);
        return 0;
    }
    return -ENOENT;
}

mcp_session_t *mcp_session_new(uv_loop_t *loop, const char *name, json_object *server,
                               const mcp_session_cbs_t *cbs, char *err, size_t errlen)
{
    mcp_session_t *s = calloc(1, sizeof(*s)), *res = NULL;
    mcp_transport_cbs_t tcbs = {session__on_message, session__on_ready, session__on_closed, NULL};
    json_object *v = NULL;

    if (!s) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    s->loop = loop;
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->cbs = *cbs;
    s->timeout_ms = 300000;
    if (json_object_object_get_ex(server, "timeout", &v) && json_object_get_double(v) > 0)
        s->timeout_ms = (int64_t)(json_object_get_double(v) * 1000);
    if ((v = jget_arr(server, "roots")))
        s->roots = session__roots_of(v);
    s->elicit_defaults = jget_str(server, "elicitation") && strcmp(jget_str(server, "elicitation"), "defaults") == 0;
    s->max_ms = SESSION_MAX_TIMEOUT_MS;
    if (json_object_object_get_ex(server, "max_timeout", &v) && json_object_get_double(v) > 0)
        s->max_ms = (int64_t)(json_object_get_double(v) * 1000);
    tcbs.ud = s;
    s->t = mcp_transport_new(loop, name, server, &tcbs, err, errlen);
    if (!s->t)
        goto out;
    uv_timer_init(loop, &s->tick);
    s->tick.data = s;
    uv_timer_start(&s->tick, session__on_tick, SESSION_TICK_MS, SESSION_TICK_MS);
    uv_unref((uv_handle_t *)&s->tick);
    res = s;
    s = NULL;
out:
    if (s)
        json_object_put(s->roots);
    free(s);
    return res;
}

int mcp_session_call(mcp_session_t *s, const char *tool, json_object *args, int64_t deadline_ms,
                     mcp_session_call_cb cb, void *ud)
{
    return mcp_session_call_full(s, tool, args, NULL, deadline_ms, NULL, cb, ud);
}

int mcp_session_call_full(mcp_session_t *s, const char *tool, json_object *args,
                          json_object *meta, int64_t deadline_ms, const char *rid,
                          mcp_session_call_cb cb, void *ud)
{
    pend_t *p;
    int64_t now = session__now();

    if (s->state == ST_CLOSING)
        return -ENOTCONN;
    p = session__add(s, P_CALL, deadline_ms > 0 ? session__from_unix(deadline_ms) : now + s->timeout_ms);
    if (!p)
        return -ENOMEM;
    /* the time the caller gave the call is what each progress report gives
     * it again (the responder waits by the same rule, docs/broker-protocol.md) */
    p->budget = p->deadline - now > 0 ? p->deadline - now : 1;
    p->ceiling = now + (s->max_ms > p->budget ? s->max_ms : p->budget);
    p->tool = strdup(tool);
    p->args = args ? json_object_get(args) : NULL;
    p->meta = meta ? json_object_get(meta) : NULL;
    p->cb = cb;
    p->ud = ud;
    if (rid && reqid_valid(rid))
        memcpy(p->rid, rid, strlen(rid) + 1);
    if (!p->tool) {
        session__unlink(s, p);
        pend_free(p);
        return -ENOMEM;
    }
    if (s->state == ST_READY)
        session__send_call(s, p);
    return 0;
}

int mcp_session_cancel(mcp_session_t *s, void *ud, const char *reason)
{
    pend_t *p = s->pends;

    while (p && !(p->kind == P_CALL && p->ud == ud))
        p = p->next;
    if (!p)
        return -ENOENT;
    session__unlink(s, p);
    if (p->id > 0 && s->state != ST_CLOSING)
        session__send_cancel(s, p->id, reason);
    pend_free(p);
    return 0;
}

int mcp_session_ready(const mcp_session_t *s)
{
    return s->state == ST_READY;
}

const char *mcp_session_protocol(const mcp_session_t *s)
{
    return s->protocol;
}

void mcp_session_close(mcp_session_t *s)
{
    session__shutdown(s, "closed");
}

void mcp_session_free(mcp_session_t *s)
{
    if (!s)
        return;
    mcp_transport_free(s->t);
    json_object_put(s->tools_acc);
    json_object_put(s->roots);
    while (s->sreqs) {
        sreq_t *r = s->sreqs;
        s->sreqs = r->next;
        sreq_free(r);
    }
    free(s);
}

void mcp_session_raw_calls(mcp_session_t *s, int on)
{
    s->raw_calls = on;
}

int mcp_session_raw_is_error(const mcp_session_t *s)
{
    return s->raw ? s->raw_is_error : 0;
}

const char *mcp_session_raw_result(const mcp_session_t *s, size_t *len)
{
    const char *v = NULL;

    if (s->raw) {
        *len = s->raw_len;
        return s->raw;
    }
    if (!s->line || jsonrpc_member_raw(s->line, s->line_len, "result", &v, len) != 0 || *v != '{')
        return NULL;
    return v;
}

int64_t mcp_session_call_rpc_id(const mcp_session_t *s, const void *ud)
{
    for (const pend_t *p = s->pends; p; p = p->next)
        if (p->kind == P_CALL && p->ud == ud)
            return p->id;
    return 0;
}
