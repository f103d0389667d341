/* mcp — see mcp.h. */
#include "fcgi/mcp/mcp.h"

#include "agent/mcpc.h"
#include "agent/toolname.h"
#include "fcgi/auth/auth.h"
#include "fcgi/auth/principal.h"
#include "shared/mono.h"
#include "shared/keypol.h"
#include "fcgi/metrics/metrics.h"
#include "shared/jget.h"
#include "shared/rconn.h"
#include "shared/rid.h"
#include "shared/toolsel.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MCP__SID_LEN 32              /* hex digits of a session id */
#define MCP__PAGE 100                /* tools per tools/list page */
#define MCP__NAME_MAX 256            /* an assistant's name in the path */
#define MCP__SESS_MAX 512            /* a session record in Redis */
#define MCP__LIST_MS 30000           /* waiting for one server's catalog, at most */
#define MCP__HDR_MAX 160

/* JSON-RPC error codes. */
enum {
    MCP__PARSE = -32700, MCP__INVALID = -32600, MCP__NO_METHOD = -32601,
    MCP__PARAMS = -32602, MCP__INTERNAL = -32603, MCP__CANCELLED = -32800,
};

static const char *const mcp__versions[] = { "2025-11-25", "2025-06-18", "2025-03-26", NULL };

int mcp_version_ok(const char *v)
{
    for (size_t i = 0; v && mcp__versions[i]; i++)
        if (strcmp(v, mcp__versions[i]) == 0)
            return 1;
    return 0;
}

const char *mcp_negotiate(const char *asked)
{
    for (size_t i = 0; asked && mcp__versions[i]; i++)
        if (strcmp(asked, mcp__versions[i]) == 0)
            return mcp__versions[i];
    return mcp__versions[0];
}

int mcp_accepts(const char *accept, const char *type)
{
    const char *slash = strchr(type, '/'), *p = accept;
    size_t tl = strlen(type), ml = slash ? (size_t)(slash - type) : tl;

    if (!accept || !*accept)
        return 1;   /* no Accept: anything goes (RFC 9110 12.5.1) */
    while (*p) {
        const char *end = strchr(p, ','), *semi;
        size_t len;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!end)
            end = p + strlen(p);
        semi = memchr(p, ';', (size_t)(end - p));
        len = (size_t)((semi ? semi : end) - p);
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if ((len == 3 && strncmp(p, "*/*", 3) == 0) ||
            (len == tl && strncasecmp(p, type, tl) == 0) ||
            (len == ml + 2 && strncasecmp(p, type, ml) == 0 && p[ml] == '/' && p[ml + 1] == '*'))
            return 1;
        p = *end ? end + 1 : end;
    }
    return 0;
}

int mcp_origin_ok(const char *origin, const char *allowed)
{
    static const char *const local[] = { "localhost", "127.0.0.1", "[::1]", NULL };
    const char *host = strstr(origin, "://"), *p = allowed;
    size_t hl, ol = strlen(origin);

    while (p && *p) {
        const char *end = strchr(p, ',');
        size_t len;
        while (*p == ' ')
            p++;
        len = end ? (size_t)(end - p) : strlen(p);
        while (len && p[len - 1] == ' ')
            len--;
        if ((len == 1 && *p == '*') || (len == ol && len && strncasecmp(p, origin, len) == 0))
            return 1;
        p = end ? end + 1 : NULL;
    }
    if (!host)
        return 0;
    host += 3;
    hl = host[0] == '[' ? (strchr(host, ']') ? (size_t)(strchr(host, ']') - host) + 1 : 0)
                        : strcspn(host, ":/");
    if (!hl || (host[hl] && host[hl] != ':' && host[hl] != '/'))
        return 0;
    for (size_t i = 0; local[i]; i++)
        if (strlen(local[i]) == hl && strncasecmp(host, local[i], hl) == 0)
            return 1;
    return 0;
}

int mcp_session_ttl(void)
{
    const char *s = getenv("AIPROXY_MCP_SESSION_TTL");
    char *end;
    long v;

    if (!s || !*s)
        return 3600;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || *end || v < 60 || v > 604800)
        return 3600;
    return (int)v;
}

/* One request's state. */
typedef struct mcp__ctx {
    http_req_t *req;
    svc_t *svc;
    mcpc_t *mcpc;
    const char *assistant;      /* NULL on /mcp */
    json_object *ajson;         /* the assistant's registry entry (borrowed) */
    char sid[MCP__SID_LEN + 1]; /* the session, "" before initialize */
    char hdrs[MCP__HDR_MAX];    /* extra header lines of every answer */
    json_object *id;            /* the request's id (borrowed) */
    json_object *token;         /* tools/call's progressToken, or NULL */
    int sse;                    /* the answer is an SSE stream (headers out) */
    char cancel_key[256];       /* tools/call: the key a notifications/cancelled sets */
    long long cancel_next;      /* when to look at it next (monotonic ms) */
    int cancelled;              /* the client cancelled the call */
} mcp__ctx_t;


/* The caller's key policy (docs/keys.md), NULL when none. */
static json_object *mcp__policy(const mcp__ctx_t *x)
{
    return x->req->info.auth ? ((const auth_principal_t *)x->req->info.auth)->policy : NULL;
}

/* Sends a JSON-RPC message `msg` (consumed) as the answer: an SSE event when
 * the stream is open, else a whole JSON body with `status`. */
static int mcp__send(mcp__ctx_t *x, int status, json_object *msg)
{
    const char *s;
    int rc;

    if (!msg)
        return http_send_error(x->req, 500, NULL, NULL, NULL, "out of memory");
    if (x->sse) {
        char head[] = "event: message\ndata: ";
        s = json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        rc = http_write(x->req, head, sizeof(head) - 1, 0);
        if (rc == 0)
            rc = http_write(x->req, s, strlen(s), 0);
        if (rc == 0)
            rc = http_write(x->req, "\n\n", 2, 1);
    } else {
        rc = http_send_json(x->req, status, msg, x->hdrs[0] ? x->hdrs : NULL);
    }
    json_object_put(msg);
    return rc;
}

/* {"jsonrpc":"2.0","id":id,...}; NULL on ENOMEM. */
static json_object *mcp__msg(json_object *id)
{
    json_object *o = json_object_new_object();

    if (!o)
        return NULL;
    json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
    json_object_object_add(o, "id", json_object_get(id));
    return o;
}

static int mcp__result(mcp__ctx_t *x, json_object *result)
{
    json_object *o = mcp__msg(x->id);

    if (!o) {
        json_object_put(result);
        return mcp__send(x, 500, NULL);
    }
    json_object_object_add(o, "result", result);
    return mcp__send(x, 200, o);
}

/* A JSON-RPC error with HTTP `status` (200 when the transport is fine). */
static int mcp__error(mcp__ctx_t *x, int status, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int mcp__error(mcp__ctx_t *x, int status, int code, const char *fmt, ...)
{
    json_object *o = mcp__msg(x->id), *err = json_object_new_object();
    char msg[AIP_ERR_MSG_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (!o || !err) {
        json_object_put(o);
        json_object_put(err);
        return mcp__send(x, 500, NULL);
    }
    json_object_object_add(err, "code", json_object_new_int(code));
    json_object_object_add(err, "message", json_object_new_string(http_err_msg(x->req, msg)));
    json_object_object_add(o, "error", err);
    return mcp__send(x, status, o);
}

/* Headers every answer of the session carries. */
static void mcp__set_hdrs(mcp__ctx_t *x)
{
    snprintf(x->hdrs, sizeof(x->hdrs), "%s%s%s", x->sid[0] ? "Mcp-Session-Id: " : "",
             x->sid, x->sid[0] ? "\r\n" : "");
}

/* ---- sessions: key "mcp:sess:<id>", value "<scope>\n<version>" ---- */

static void mcp__sess_key(const char *sid, char *key, size_t len)
{
    snprintf(key, len, "mcp:sess:%s", sid);
}

/* The session id of the request into x->sid: 1 when it names a live
 * session of this endpoint (its idle clock restarted), 0 when unknown or
 * expired, negative when Redis failed (*e). */
static int mcp__sess_load(mcp__ctx_t *x, const char *sid, aip_err_t *e)
{
    char key[64], want[MCP__SESS_MAX], *val = NULL;
    size_t len = 0, sl = strlen(sid), wl;
    int rc;

    if (sl != MCP__SID_LEN || strspn(sid, "0123456789abcdef") != sl)
        return 0;
    mcp__sess_key(sid, key, sizeof(key));
    rc = mcpc_kv_get(x->mcpc, key, MCP__SESS_MAX, &val, &len, e);
    if (rc <= 0)
        return rc == -EFBIG ? 0 : rc;
    snprintf(want, sizeof(want), "%s\n", x->assistant ? x->assistant : "");
    wl = strlen(want);
    if (len < wl || memcmp(val, want, wl) != 0) {
        free(val);
        return 0;   /* a session of another endpoint */
    }
    rc = mcpc_kv_set(x->mcpc, key, val, len, mcp_session_ttl(), e);
    free(val);
    if (rc < 0)
        return rc;
    memcpy(x->sid, sid, sl + 1);
    return 1;
}

static int mcp__sess_new(mcp__ctx_t *x, const char *version, aip_err_t *e)
{
    char key[64], val[MCP__SESS_MAX];
    int n;

    rid_hex(x->sid, MCP__SID_LEN);
    mcp__sess_key(x->sid, key, sizeof(key));
    n = snprintf(val, sizeof(val), "%s\n%s", x->assistant ? x->assistant : "", version);
    if (n < 0 || (size_t)n >= sizeof(val))
        return -ENAMETOOLONG;
    return mcpc_kv_set(x->mcpc, key, val, (size_t)n, mcp_session_ttl(), e);
}

/* ---- the tools offered ---- */

typedef struct mcp__cat {
    tn_map_t *map;        /* offered name -> (server, tool), ud = catalog entry */
    json_object *keep;    /* the catalogs the entries live in */
} mcp__cat_t;

static void mcp__cat_clear(mcp__cat_t *c)
{
    tn_free(c->map);
    json_object_put(c->keep);
    c->map = NULL;
    c->keep = NULL;
}

/* How long a call on `server` may run, in ms (its timeout, default 60 s). */
static int mcp__server_ms(mcp__ctx_t *x, const char *server)
{
    json_object *t = jget(reg_get(x->svc->reg, "mcp_servers", server), "timeout");
    long long own = t ? json_object_get_int64(t) : 60;

    if (own <= 0 || own > 3600)
        own = 60;
    return (int)(own * 1000);
}

/* Adds the tools of one server's catalog that are offered. */
static int mcp__cat_server(mcp__ctx_t *x, mcp__cat_t *c, const char *server)
{
    json_object *tools = NULL;
    aip_err_t e;
    size_t n;
    int ms = mcp__server_ms(x, server);

    if (mcpc_tools(x->mcpc, server, ms < MCP__LIST_MS ? ms : MCP__LIST_MS, &tools, &e) < 0)
        return 0;   /* not listed: an unavailable server offers nothing now */
    if (json_object_array_add(c->keep, tools) != 0) {
        json_object_put(tools);
        return -ENOMEM;
    }
    n = json_object_is_type(tools, json_type_array) ? json_object_array_length(tools) : 0;
    for (size_t i = 0; i < n; i++) {
        json_object *t = json_object_array_get_idx(tools, i);
        const char *name = jget_str(t, "name");
        int rc;
        if (!name || !*name || tsel_unofferable(t))
            continue;
        if (x->ajson && tsel_why_tool(x->ajson, server, t) != TSEL_OFFERED)
            continue;
        if (!keypol_tool_ok(mcp__policy(x), server, name))
            continue;   /* the caller's key may not use it: as unknown */
        rc = tn_add(c->map, server, name, t);
        if (rc < 0 && rc != -EEXIST)
            return rc;
    }
    return 0;
}

/* The tools this endpoint offers, as the agent names them. 0 or -ENOMEM. */
static int mcp__cat_build(mcp__ctx_t *x, mcp__cat_t *c)
{
    int rc = -ENOMEM;

    c->map = tn_new();
    c->keep = json_object_new_array();
    if (!c->map || !c->keep)
        goto out;
    if (x->ajson) {
        json_object *names = jget_arr(x->ajson, "mcp_servers");
        size_t n = names && tsel_uses_mcp(x->ajson) ? json_object_array_length(names) : 0;
        for (size_t i = 0; i < n; i++) {
            const char *s = json_object_get_string(json_object_array_get_idx(names, i));
            if (s && (rc = mcp__cat_server(x, c, s)) < 0)
                goto out;
        }
    } else {
        json_object *all = reg_all(x->svc->reg, "mcp_servers");
        if (all && json_object_is_type(all, json_type_object)) {
            json_object_object_foreach(all, s, v) {
                (void)v;
                if ((rc = mcp__cat_server(x, c, s)) < 0)
                    goto out;
            }
        }
    }
    rc = tn_seal(c->map);
out:
    return rc;
}

static const char *const mcp__tool_keys[] = {
    "title", "description", "inputSchema", "outputSchema", "annotations", "icons", "_meta", NULL,
};

static int mcp__tools_list(mcp__ctx_t *x, json_object *params)
{
    const char *cursor = jget_str(params, "cursor");
    mcp__cat_t c = { NULL, NULL };
    json_object *res = NULL, *arr = NULL;
    size_t start = 0, n, i;
    int rc;

    if (cursor) {
        char *end;
        unsigned long v;
        errno = 0;
        v = strtoul(cursor, &end, 10);
        if (!*cursor || *end || errno) {
            return mcp__error(x, 200, MCP__PARAMS, "invalid cursor");
        }
        start = v;
    }
    if (mcp__cat_build(x, &c) < 0) {
        rc = mcp__error(x, 500, MCP__INTERNAL, "out of memory listing the tools");
        goto out;
    }
    n = tn_ours(c.map);
    if (start > n) {
        rc = mcp__error(x, 200, MCP__PARAMS, "invalid cursor");
        goto out;
    }
    if (!(res = json_object_new_object()) || !(arr = json_object_new_array())) {
        json_object_put(res);
        json_object_put(arr);
        rc = mcp__error(x, 500, MCP__INTERNAL, "out of memory listing the tools");
        goto out;
    }
    json_object_object_add(res, "tools", arr);
    for (i = start; i < n && i < start + MCP__PAGE; i++) {
        const char *name;
        void *ud;
        json_object *t = json_object_new_object(), *src;
        tn_get(c.map, i, &name, NULL, NULL, &ud);
        src = ud;
        if (!t || json_object_array_add(arr, t) != 0) {
            json_object_put(t);
            json_object_put(res);
            rc = mcp__error(x, 500, MCP__INTERNAL, "out of memory listing the tools");
            goto out;
        }
        json_object_object_add(t, "name", json_object_new_string(name));
        for (size_t k = 0; mcp__tool_keys[k]; k++) {
            json_object *v = jget(src, mcp__tool_keys[k]);
            if (v)
                json_object_object_add(t, mcp__tool_keys[k], json_object_get(v));
        }
        if (!jget(t, "inputSchema")) {
            json_object *s = json_object_new_object();
            json_object_object_add(s, "type", json_object_new_string("object"));
            json_object_object_add(t, "inputSchema", s);
        }
    }
    if (i < n) {
        char next[32];
        snprintf(next, sizeof(next), "%zu", i);
        json_object_object_add(res, "nextCursor", json_object_new_string(next));
    }
    rc = mcp__result(x, res);
out:
    mcp__cat_clear(&c);
    return rc;
}

/* ---- tools/call ---- */

#define MCP__CANCEL_POLL_MS 250
#define MCP__CANCEL_TTL_S 600

/* The key notifications/cancelled sets for request `id` of session `sid`
 * (any responder may get the notification; the call's own polls it). */
static int mcp__cancel_key(const char *sid, json_object *id, char *key, size_t len)
{
    const char *t = json_object_to_json_string_ext(id, JSON_C_TO_STRING_PLAIN);
    int n = snprintf(key, len, "mcp:cancel:%s:%s", sid, t ? t : "");

    return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int mcp__alive(void *ud)
{
    mcp__ctx_t *x = ud;
    long long now;

    if (x->req->client_gone || !http_client_alive(x->req))
        return 0;
    now = mono_ms();
    if (x->cancel_key[0] && now >= x->cancel_next) {
        char *val = NULL;
        size_t len;
        aip_err_t e;
        x->cancel_next = now + MCP__CANCEL_POLL_MS;
        if (mcpc_kv_get(x->mcpc, x->cancel_key, 64, &val, &len, &e) == 1) {
            free(val);
            x->cancelled = 1;
            return 0;
        }
    }
    return 1;
}

/* notifications/cancelled: marks the request for the responder running it. */
static void mcp__cancel(mcp__ctx_t *x, json_object *params)
{
    json_object *rid = jget(params, "requestId");
    char key[256];
    aip_err_t e;

    if (!rid || (!json_object_is_type(rid, json_type_string) &&
                 !json_object_is_type(rid, json_type_int)))
        return;
    if (mcp__cancel_key(x->sid, rid, key, sizeof(key)) == 0)
        mcpc_kv_set(x->mcpc, key, "1", 1, MCP__CANCEL_TTL_S, &e);
}

static int mcp__progress(void *ud, const mcpc_progress_t *p)
{
    mcp__ctx_t *x = ud;
    json_object *o, *params;

    if (!x->token || !x->sse)
        return 0;
    o = json_object_new_object();
    params = json_object_new_object();
    if (!o || !params) {
        json_object_put(o);
        json_object_put(params);
        return 0;
    }
    json_object_object_add(o, "jsonrpc", json_object_new_string("2.0"));
    json_object_object_add(o, "method", json_object_new_string("notifications/progress"));
    json_object_object_add(params, "progressToken", json_object_get(x->token));
    json_object_object_add(params, "progress", json_object_new_double(p->progress));
    if (p->total >= 0)
        json_object_object_add(params, "total", json_object_new_double(p->total));
    if (p->message)
        json_object_object_add(params, "message", json_object_new_string(p->message));
    json_object_object_add(o, "params", params);
    return mcp__send(x, 200, o) < 0 ? 1 : 0;
}

static int mcp__tools_call(mcp__ctx_t *x, json_object *params)
{
    const char *name = jget_str(params, "name"), *server, *tool;
    json_object *args = jget(params, "arguments"), *result;
    mcp__cat_t c = { NULL, NULL };
    long long t0;
    mcpc_call_t call;
    mcpc_hooks_t hooks;
    aip_err_t e;
    int rc;

    if (!name)
        return mcp__error(x, 200, MCP__PARAMS, "params.name: a tool name is required");
    if (args && !json_object_is_type(args, json_type_object))
        return mcp__error(x, 200, MCP__PARAMS, "params.arguments must be an object");
    if (mcp__cat_build(x, &c) < 0) {
        rc = mcp__error(x, 500, MCP__INTERNAL, "out of memory listing the tools");
        goto out;
    }
    if (tn_lookup(c.map, name, &server, &tool) < 0) {
        rc = mcp__error(x, 200, MCP__PARAMS, "Unknown tool: %s", name);
        goto out;
    }
    x->token = jget(jget_obj(params, "_meta"), "progressToken");
    if (x->token && mcp_accepts(http_header(x->req, "Accept"), "text/event-stream")) {
        char h[MCP__HDR_MAX + 64];
        snprintf(h, sizeof(h), "%sCache-Control: no-cache\r\nX-Accel-Buffering: no\r\n", x->hdrs);
        if ((rc = http_send_headers(x->req, 200, "text/event-stream", h)) < 0)
            goto out;
        x->sse = 1;
    }
    memset(&call, 0, sizeof(call));
    memset(&hooks, 0, sizeof(hooks));
    call.server = server;
    call.tool = tool;
    call.request_id = x->req->info.id[0] ? x->req->info.id : NULL;
    call.args_json = args ? json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN) : "{}";
    hooks.alive = mcp__alive;
    hooks.on_progress = mcp__progress;
    hooks.ud = x;
    if (mcp__cancel_key(x->sid, x->id, x->cancel_key, sizeof(x->cancel_key)) < 0)
        x->cancel_key[0] = '\0';
    aip_err_clear(&e);
    t0 = reqinfo_now_us();
    rc = mcpc_call_many(x->mcpc, &call, 1, mcp__server_ms(x, server), &hooks, &e);
    if (rc == 0)
        metrics_tool(server, tool, call.outcome, reqinfo_now_us() - t0);
    /* usage accounting (fcgi/usage): the call counts whatever its outcome */
    reqinfo_tool(&x->req->info, x->req->arena, server, rc < 0 || call.is_error,
                 reqinfo_now_us() - t0);
    if (rc == -ECONNABORTED && x->cancelled) {
        /* cancelled at the MCP server by mcpc; no result follows. A JSON
         * answer still needs a body: the error a cancelled request gets. */
        mcpc_calls_clear(&call, 1);
        rc = x->sse ? 0 : mcp__error(x, 200, MCP__CANCELLED, "Request cancelled");
        goto out;
    }
    if (rc == -ECONNABORTED) {
        mcpc_calls_clear(&call, 1);
        rc = -EPIPE;
        goto out;
    }
    if (rc < 0) {
        mcpc_calls_clear(&call, 1);
        rc = mcp__error(x, e.status ? e.status : 503, MCP__INTERNAL, "%s", e.msg);
        goto out;
    }
    if (call.result) {
        result = json_object_get(call.result);
    } else {
        json_object *content = json_object_new_array(), *b = json_object_new_object();
        result = json_object_new_object();
        if (b) {
            json_object_object_add(b, "type", json_object_new_string("text"));
            json_object_object_add(b, "text", json_object_new_string(call.text ? call.text : ""));
        }
        json_object_array_add(content, b);
        json_object_object_add(result, "content", content);
        json_object_object_add(result, "isError", json_object_new_boolean(call.is_error));
    }
    mcpc_calls_clear(&call, 1);
    rc = mcp__result(x, result);
out:
    mcp__cat_clear(&c);
    return rc;
}

/* ---- the transport ---- */

static int mcp__initialize(mcp__ctx_t *x, json_object *params)
{
    const char *v = mcp_negotiate(jget_str(params, "protocolVersion"));
    json_object *res = json_object_new_object(), *caps = json_object_new_object();
    json_object *tools = json_object_new_object(), *info = json_object_new_object();
    aip_err_t e;
    int rc;

    if (!res || !caps || !tools || !info) {
        json_object_put(res);
        json_object_put(caps);
        json_object_put(tools);
        json_object_put(info);
        return mcp__error(x, 500, MCP__INTERNAL, "out of memory");
    }
    json_object_object_add(tools, "listChanged", json_object_new_boolean(1));
    json_object_object_add(caps, "tools", tools);
    json_object_object_add(info, "name", json_object_new_string("aiproxy"));
    json_object_object_add(info, "version", json_object_new_string("1.0"));
    json_object_object_add(res, "protocolVersion", json_object_new_string(v));
    json_object_object_add(res, "capabilities", caps);
    json_object_object_add(res, "serverInfo", info);
    json_object_object_add(res, "instructions", json_object_new_string(
        x->assistant ? "The MCP tools of one aiproxy assistant."
                     : "Every MCP server behind aiproxy; tools are named <server>__<tool>."));
    aip_err_clear(&e);
    if ((rc = mcp__sess_new(x, v, &e)) < 0) {
        json_object_put(res);
        x->sid[0] = '\0';
        return mcp__error(x, 503, MCP__INTERNAL, "sessions are unavailable: %s",
                          e.msg[0] ? e.msg : "the session could not be stored");
    }
    mcp__set_hdrs(x);
    return mcp__result(x, res);
}

/* Answers a 4xx with a JSON-RPC error and no id (transport errors). */
static int mcp__transport(mcp__ctx_t *x, int status, int code, const char *msg)
{
    x->id = NULL;
    return mcp__error(x, status, code, "%s", msg);
}

static int mcp__post(mcp__ctx_t *x)
{
    http_req_t *req = x->req;
    const char *ct = http_header(req, "Content-Type"), *accept = http_header(req, "Accept");
    const char *method, *sid = http_header(req, "Mcp-Session-Id");
    const char *pv = http_header(req, "MCP-Protocol-Version");
    json_tokener *tok;
    json_object *msg = NULL, *params;
    aip_err_t e;
    int rc;

    if (!ct || strncasecmp(ct, "application/json", 16) != 0 ||
        (ct[16] && ct[16] != ';' && ct[16] != ' '))
        return mcp__transport(x, 415, MCP__INVALID, "Content-Type must be application/json");
    if (!mcp_accepts(accept, "application/json") && !mcp_accepts(accept, "text/event-stream"))
        return mcp__transport(x, 406, MCP__INVALID,
                              "Accept must admit application/json and text/event-stream");
    if (!(tok = json_tokener_new_ex(64)))
        return mcp__transport(x, 500, MCP__INTERNAL, "out of memory");
    msg = json_tokener_parse_ex(tok, req->body, (int)req->body_len);
    if (json_tokener_get_error(tok) != json_tokener_success ||
        json_tokener_get_parse_end(tok) != req->body_len) {
        json_tokener_free(tok);
        json_object_put(msg);
        return mcp__transport(x, 400, MCP__PARSE, "Parse error: the body is not one JSON value");
    }
    json_tokener_free(tok);
    if (!json_object_is_type(msg, json_type_object)) {
        rc = mcp__transport(x, 400, MCP__INVALID,
                            json_object_is_type(msg, json_type_array)
                                ? "Invalid Request: batches are not supported"
                                : "Invalid Request: a JSON-RPC message is an object");
        goto out;
    }
    method = jget_str(msg, "method");
    x->id = jget(msg, "id");
    if (!method) {
        if (jget(msg, "result") || jget(msg, "error")) {
            rc = http_send(req, 202, NULL, NULL, "", 0);   /* a response: nothing asked */
            goto out;
        }
        rc = mcp__error(x, 400, MCP__INVALID, "Invalid Request: no method");
        goto out;
    }
    if (strcmp(jget_str(msg, "jsonrpc") ? jget_str(msg, "jsonrpc") : "", "2.0") != 0) {
        rc = mcp__error(x, 400, MCP__INVALID, "Invalid Request: jsonrpc must be \"2.0\"");
        goto out;
    }
    if (x->id && !json_object_is_type(x->id, json_type_string) &&
        !json_object_is_type(x->id, json_type_int)) {
        x->id = NULL;
        rc = mcp__error(x, 400, MCP__INVALID, "Invalid Request: id must be a string or number");
        goto out;
    }
    params = jget(msg, "params");
    if (params && !json_object_is_type(params, json_type_object)) {
        rc = mcp__error(x, 200, MCP__PARAMS, "params must be an object");
        goto out;
    }
    if (strcmp(method, "initialize") == 0) {
        if (!x->id) {
            rc = mcp__error(x, 400, MCP__INVALID, "initialize is a request: it needs an id");
            goto out;
        }
        rc = mcp__initialize(x, params);
        goto out;
    }
    if (!sid) {
        rc = mcp__error(x, 400, MCP__INVALID, "Bad Request: Mcp-Session-Id header is required");
        goto out;
    }
    aip_err_clear(&e);
    rc = mcp__sess_load(x, sid, &e);
    if (rc < 0) {
        rc = mcp__error(x, 503, MCP__INTERNAL, "sessions are unavailable: %s", e.msg);
        goto out;
    }
    if (rc == 0) {
        rc = mcp__error(x, 404, MCP__INVALID, "Session not found: initialize again");
        goto out;
    }
    mcp__set_hdrs(x);
    if (pv && !mcp_version_ok(pv)) {
        rc = mcp__error(x, 400, MCP__INVALID, "Bad Request: unsupported MCP-Protocol-Version %s",
                        pv);
        goto out;
    }
    if (!x->id) {   /* a notification: initialized, cancelled, ... */
        if (strcmp(method, "notifications/cancelled") == 0)
            mcp__cancel(x, params);
        rc = http_send(req, 202, NULL, x->hdrs, "", 0);
        goto out;
    }
    if (strcmp(method, "ping") == 0)
        rc = mcp__result(x, json_object_new_object());
    else if (strcmp(method, "tools/list") == 0)
        rc = mcp__tools_list(x, params);
    else if (strcmp(method, "tools/call") == 0)
        rc = mcp__tools_call(x, params);
    else
        rc = mcp__error(x, 200, MCP__NO_METHOD, "Method not found: %s", method);
out:
    json_object_put(msg);
    return rc;
}

static int mcp__delete(mcp__ctx_t *x)
{
    const char *sid = http_header(x->req, "Mcp-Session-Id");
    char key[64];
    aip_err_t e;
    int rc;

    if (!sid)
        return mcp__transport(x, 400, MCP__INVALID, "Bad Request: Mcp-Session-Id header is required");
    aip_err_clear(&e);
    rc = mcp__sess_load(x, sid, &e);
    if (rc < 0)
        return mcp__transport(x, 503, MCP__INTERNAL, "sessions are unavailable");
    if (rc == 0)
        return mcp__transport(x, 404, MCP__INVALID, "Session not found");
    mcp__sess_key(x->sid, key, sizeof(key));
    /* An expiry of one second ends it: the key API has no DEL. */
    if (mcpc_kv_set(x->mcpc, key, "", 0, 1, &e) < 0)
        return mcp__transport(x, 503, MCP__INTERNAL, "sessions are unavailable");
    return http_send(x->req, 204, NULL, NULL, "", 0);
}


/* ---- the GET stream: notifications/tools/list_changed ---- */

#define MCP__TICK_MS 500           /* how often the stream looks at the client and Redis */
#define MCP__CATALOG_MS 2000       /* how often the catalogs and the session are checked */
#define MCP__KEEPALIVE_MS 15000    /* an idle stream gets ": keep-alive" */
#define MCP__CATALOG_CAP (8u << 20)

/* FNV-1a over the catalogs of the servers in scope (and their names), so
 * that a changed catalog, a server added or removed changes the sum. */
static uint64_t mcp__catalog_sum(mcp__ctx_t *x)
{
    uint64_t h = 1469598103934665603ull;
    json_object *names = NULL, *all = NULL;
    size_t n = 0;

    if (x->ajson)
        names = jget_arr(x->ajson, "mcp_servers");
    else
        all = reg_all(x->svc->reg, "mcp_servers");
    if (names)
        n = json_object_array_length(names);
    else if (all && json_object_is_type(all, json_type_object))
        n = (size_t)json_object_object_length(all);
    {
        struct lh_entry *ent = all && !names && json_object_is_type(all, json_type_object)
                                   ? json_object_get_object(all)->head : NULL;
        for (size_t i = 0; i < n; i++) {
            const char *server;
            char key[320], *val = NULL;
            size_t len = 0;
            aip_err_t e;
            if (names) {
                server = json_object_get_string(json_object_array_get_idx(names, i));
            } else {
                if (!ent)
                    break;
                server = (const char *)lh_entry_k(ent);
                ent = ent->next;
            }
            if (!server)
                continue;
            for (const char *p = server; *p; p++)
                h = (h ^ (unsigned char)*p) * 1099511628211ull;
            snprintf(key, sizeof(key), "mcp:catalog:%s", server);
            if (mcpc_kv_get(x->mcpc, key, MCP__CATALOG_CAP, &val, &len, &e) == 1) {
                for (size_t k = 0; k < len; k++)
                    h = (h ^ (unsigned char)val[k]) * 1099511628211ull;
                free(val);
            }
            h = (h ^ 0xff) * 1099511628211ull;
        }
    }
    return h;
}

static int mcp__list_changed(mcp__ctx_t *x)
{
    static const char ev[] = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":"
                             "\"notifications/tools/list_changed\"}\n\n";

    return http_write(x->req, ev, sizeof(ev) - 1, 1);
}

/* Drains what the subscription has: 1 when reg:changed was published, 0
 * when nothing, negative when the connection failed. */
static int mcp__sub_read(redisContext *sub)
{
    struct pollfd pfd = { sub->fd, POLLIN, 0 };
    redisReply *rep = NULL;
    int changed = 0;

    if (poll(&pfd, 1, MCP__TICK_MS) < 0)
        return 0;
    if (pfd.revents & (POLLERR | POLLHUP | POLLNVAL))
        return -EIO;
    if ((pfd.revents & POLLIN) && redisBufferRead(sub) != REDIS_OK)
        return -EIO;
    while (redisGetReplyFromReader(sub, (void **)&rep) == REDIS_OK && rep) {
        if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 3 &&
            rep->element[0]->type == REDIS_REPLY_STRING &&
            strcmp(rep->element[0]->str, "message") == 0)
            changed = 1;
        freeReplyObject(rep);
        rep = NULL;
    }
    return changed;
}

static int mcp__get(mcp__ctx_t *x)
{
    const char *sid = http_header(x->req, "Mcp-Session-Id");
    char err[256], chan[192], hdrs[MCP__HDR_MAX + 64];
    redisContext *sub = NULL;
    redisReply *rep;
    long long last_write, last_cat, last_sess, now;
    uint64_t sum;
    aip_err_t e;
    unsigned epoch;
    int rc;

    if (!mcp_accepts(http_header(x->req, "Accept"), "text/event-stream"))
        return mcp__transport(x, 406, MCP__INVALID, "Accept must admit text/event-stream");
    if (!sid)
        return mcp__transport(x, 400, MCP__INVALID, "Bad Request: Mcp-Session-Id header is required");
    aip_err_clear(&e);
    rc = mcp__sess_load(x, sid, &e);
    if (rc < 0)
        return mcp__transport(x, 503, MCP__INTERNAL, "sessions are unavailable");
    if (rc == 0)
        return mcp__transport(x, 404, MCP__INVALID, "Session not found");
    mcp__set_hdrs(x);
    epoch = rconn_epoch();
    if (!x->svc->reg || !(sub = rconn_connect(mcpc_url(x->mcpc), 2000, err, sizeof(err))))
        return mcp__transport(x, 503, MCP__INTERNAL, "Redis is unavailable for the stream");
    snprintf(chan, sizeof(chan), "%sreg:changed", reg_prefix(x->svc->reg));
    rep = redisCommand(sub, "SUBSCRIBE %s", chan);
    if (!rep) {
        redisFree(sub);
        return mcp__transport(x, 503, MCP__INTERNAL, "Redis is unavailable for the stream");
    }
    freeReplyObject(rep);
    snprintf(hdrs, sizeof(hdrs), "%sCache-Control: no-cache\r\nX-Accel-Buffering: no\r\n", x->hdrs);
    if ((rc = http_send_headers(x->req, 200, "text/event-stream", hdrs)) < 0 ||
        (rc = http_write(x->req, ": stream open\n\n", 16, 1)) < 0)
        goto out;
    sum = mcp__catalog_sum(x);
    last_write = last_cat = last_sess = mono_ms();
    for (;;) {
        int changed = mcp__sub_read(sub);
        if (changed < 0 || rconn_epoch() != epoch) {
            rc = 0;   /* Redis went (or Sentinel moved it): the client reconnects the stream */
            break;
        }
        if (!http_client_alive(x->req)) {
            rc = -EPIPE;
            break;
        }
        now = mono_ms();
        if (changed) {
            reg_refresh(x->svc->reg);
            if (x->assistant)
                x->ajson = reg_get(x->svc->reg, "assistants", x->assistant);
            sum = mcp__catalog_sum(x);
            last_cat = now;
        } else if (now - last_cat >= MCP__CATALOG_MS) {
            uint64_t s2 = mcp__catalog_sum(x);
            changed = s2 != sum;
            sum = s2;
            last_cat = now;
        }
        if (changed) {
            if ((rc = mcp__list_changed(x)) < 0)
                break;
            last_write = now;
        } else if (now - last_write >= MCP__KEEPALIVE_MS) {
            if ((rc = http_write(x->req, ": keep-alive\n\n", 14, 1)) < 0)
                break;
            last_write = now;
        }
        if (now - last_sess >= MCP__CATALOG_MS) {
            /* the open stream keeps its session; a DELETE ends both */
            if (mcp__sess_load(x, sid, &e) <= 0) {
                rc = 0;
                break;
            }
            last_sess = now;
        }
    }
out:
    redisFree(sub);
    return rc;
}

int mcp_handle(http_req_t *req, const route_t *r, svc_t *svc)
{
    mcp__ctx_t x;
    char name[MCP__NAME_MAX];

    memset(&x, 0, sizeof(x));
    x.req = req;
    x.svc = svc;
    x.mcpc = svc->mcpc;
    if (r->arg) {
        if (r->arg_len >= sizeof(name) || memchr(r->arg, '/', r->arg_len))
            return mcp__transport(&x, 404, MCP__INVALID, "no such assistant");
        memcpy(name, r->arg, r->arg_len);
        name[r->arg_len] = '\0';
        x.assistant = name;
        if (!svc->reg || !(x.ajson = reg_get(svc->reg, "assistants", name)) ||
            !keypol_assistant_ok(mcp__policy(&x), name))
            return mcp__transport(&x, 404, MCP__INVALID, "no such assistant");
        req->info.assistant = arena_strdup(req->arena, name);
    }
    if (http_header(req, "Origin") &&
        !mcp_origin_ok(http_header(req, "Origin"), getenv("AIPROXY_MCP_ORIGINS")))
        return mcp__transport(&x, 403, MCP__INVALID,
                              "Forbidden: Origin not allowed (AIPROXY_MCP_ORIGINS)");
    if (!x.mcpc)
        return mcp__transport(&x, 503, MCP__INTERNAL, "the broker client is unavailable");
    if (strcmp(req->method, "POST") == 0)
        return mcp__post(&x);
    if (strcmp(req->method, "DELETE") == 0)
        return mcp__delete(&x);
    if (strcmp(req->method, "GET") == 0)
        return mcp__get(&x);
    /* HEAD (the table lets it through on GET routes) would open a stream */
    return http_send(req, 405, NULL, "Allow: GET, POST, DELETE\r\n", "", 0);
}

static int mcp__authorize(http_req_t *req, svc_t *svc)
{
    return auth_check(req, svc->reg);
}

const route_surface_t mcp_surface = { "mcp", mcp__authorize, NULL, NULL };
