/* transport_http — MCP streamable HTTP (revisions 2025-03-26 and later).
 *
 * Every message is a POST; the answer is 202 (notification/response), a JSON
 * body (one message or a batch), or an SSE stream carrying the response and
 * maybe requests/notifications first. A stream that ends before the response
 * is resumed with a GET carrying Last-Event-ID after the server's `retry:`
 * delay (SEP-1699). With notifications/initialized an optional GET stream
 * opens for server-initiated messages (we declare client capabilities, so
 * the server may send requests at any time; 405: it offers none).
 * A 404 once we hold a session id means the server forgot us: the transport
 * closes with "session expired (404)" and the session layer starts over.
 * Close: abort what runs, DELETE the session, then on_closed. */
#include "mcp-broker/curlmux.h"
#include "mcp-broker/httpwire.h"
#include "mcp-broker/oauth.h"
#include "mcp-broker/transport_impl.h"
#include "shared/caps.h"
#include "shared/reqid.h"
#include "shared/jget.h"

#include "shared/log.h"
#include "shared/otel.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { HTTP_POST, HTTP_GET, HTTP_DELETE };

#define HTTP_DEFAULT_RETRY   1000  /* ms, when the server sent no retry: */
#define HTTP_AUTH_TRIES      3     /* times one message is re-sent after a new token */

/* A message waiting for an OAuth flow to finish (oauth.h). */
typedef struct http__authq {
    char *body;
    size_t len;
    int auth_tries;
    struct http__authq *next;
} http__authq_t;

typedef struct http__req {
    httpwire_req_t w;
    struct mcp_http *t;
    int kind;
    int started;            /* handed to curlmux */
    uint64_t due;           /* loop time (ms) to start a delayed GET */
    char want_id[128];      /* JSON-RPC id awaiting its response, "" if none */
    char method[64];        /* of the POSTed message */
    int answered;
    int resumes;
    int optional;           /* the server-to-client GET stream */
    int got_events;
    int held;               /* waits for notifications/initialized */
    int auth_tries;         /* times this message was re-sent after a new token */
    struct http__req *next;
} http__req_t;

typedef struct mcp_http {
    struct mcp_transport base;   /* first: transport.c casts */
    curlmux_t *mux;
    httpwire_conf_t conf;
    char session_id[256];
    char proto[32];
    uv_timer_t timer;            /* on_ready, then delayed GETs */
    http__req_t *reqs;
    int ready_sent;
    int finishing;               /* shutting down: no new requests */
    int get_state;               /* optional GET: 0 not yet, 1 open/opening, 2 refused */
    int get_reopens;
    int initializing;            /* the notifications/initialized POST runs */
    oauth_t *oauth;              /* the server's `auth` block, NULL without one */
    http__authq_t *authq;        /* messages waiting for a token, in order */
    char close_reason[256];
} mcp_http_t;

static void http__schedule(mcp_http_t *t);
static void http__finish(mcp_http_t *t, const char *reason);
static int http__post(mcp_http_t *t, const char *json, size_t len, int auth_tries);

static void http__deliver_error(mcp_http_t *t, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void http__deliver_error(mcp_http_t *t, const char *id, const char *fmt, ...)
{
    char msg[768];
    char *json;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_warn("mcp %s: %s", t->base.name, msg);
    if (!id || !*id || t->finishing)
        return;
    json = httpwire_error_response(id, msg);
    if (json && t->base.cbs.on_message)
        t->base.cbs.on_message(t->base.cbs.ud, json, strlen(json));
    free(json);
}

/* Takes the session id the server gave in this response: from initialize's
 * answer (a new session), or any answer while we have none. Done before
 * delivering, since the session layer sends its next request from inside
 * on_message, while this response may still be streaming. */
static void http__adopt_session(mcp_http_t *t, http__req_t *r)
{
    if (r->w.session_id[0] && (!t->session_id[0] || strcmp(r->method, "initialize") == 0))
        memcpy(t->session_id, r->w.session_id, sizeof(t->session_id));
}

static void http__deliver(http__req_t *r, const char *json, size_t len)
{
    mcp_http_t *t = r->t;

    if (t->finishing || t->base.closed)
        return;
    if (r->kind == HTTP_POST)
        http__adopt_session(t, r);
    if (r->want_id[0] && !r->answered && httpwire_is_response_to(json, len, r->want_id))
        r->answered = 1;
    if (t->base.cbs.on_message)
        t->base.cbs.on_message(t->base.cbs.ud, json, len);
}

/* httpwire_msg_cb: an SSE event (event != NULL) or a whole JSON body. */
static int http__on_msg(void *ud, const char *event, const char *data, size_t len, const char *id)
{
    http__req_t *r = ud;
    json_object *o = NULL;
    size_t i, n;

    (void)id;
    r->got_events = 1;
    if (event) {
        if (strcmp(event, "message") == 0)
            http__deliver(r, data, len);
        return r->t->finishing ? 1 : 0;
    }
    o = json_tokener_parse(data);
    if (!o) {
        http__deliver_error(r->t, r->want_id, "MCP server %s answered with invalid JSON", r->t->base.name);
        r->answered = 1;
        return 0;
    }
    if (!json_object_is_type(o, json_type_array)) {
        http__deliver(r, data, len);
    } else {
        n = json_object_array_length(o);
        for (i = 0; i < n && !r->t->finishing; i++) {
            const char *s = json_object_to_json_string_ext(json_object_array_get_idx(o, i),
                                                           JSON_C_TO_STRING_PLAIN);
            http__deliver(r, s, strlen(s));
        }
    }
    json_object_put(o);
    return 0;
}

static void http__unlink(mcp_http_t *t, http__req_t *r)
{
    http__req_t **pp;

    for (pp = &t->reqs; *pp && *pp != r; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = r->next;
}

static void http__req_free(http__req_t *r)
{
    if (!r)
        return;
    httpwire_req_free(&r->w);
    free(r);
}

/* A new request of `kind` (not started). body only for POST. */
static http__req_t *http__req_new(mcp_http_t *t, int kind, const char *body, size_t len,
                                  const char *last_event_id)
{
    const char *extra[11];
    char sid[300], proto[64], leid[300], rid[REQID_MAX + 32], *authz = NULL, tph[OTEL_TP_LEN + 16];
    size_t n = 0;
    http__req_t *r = calloc(1, sizeof(*r));
    const char *method = kind == HTTP_POST ? "POST" : kind == HTTP_GET ? "GET" : "DELETE";

    if (!r)
        return NULL;
    r->t = t;
    r->kind = kind;
    if (kind == HTTP_POST) {
        extra[n++] = "Accept: application/json, text/event-stream";
        extra[n++] = "Content-Type: application/json";
        if (httpwire_body_rid(body, len, rid, sizeof(rid)))
            extra[n++] = rid;
    } else if (kind == HTTP_GET) {
        extra[n++] = "Accept: text/event-stream";
    }
    if (t->session_id[0]) {
        snprintf(sid, sizeof(sid), "Mcp-Session-Id: %s", t->session_id);
        extra[n++] = sid;
    }
    if (t->proto[0]) {
        snprintf(proto, sizeof(proto), "MCP-Protocol-Version: %s", t->proto);
        extra[n++] = proto;
    }
    /* a traced tools/call: its trace context as the header too (W3C) */
    memcpy(tph, "traceparent: ", 13);
    if (kind == HTTP_POST && httpwire_traceparent(body, len, tph + 13))
        extra[n++] = tph;
    if (last_event_id && *last_event_id) {
        snprintf(leid, sizeof(leid), "Last-Event-ID: %s", last_event_id);
        extra[n++] = leid;
    }
    if (oauth_token(t->oauth)) {
        size_t l = strlen(oauth_token(t->oauth)) + sizeof("Authorization: Bearer ");
        authz = malloc(l);
        if (!authz) {
            http__req_free(r);
            return NULL;
        }
        snprintf(authz, l, "Authorization: Bearer %s", oauth_token(t->oauth));
        extra[n++] = authz;
    }
    extra[n] = NULL;
    if (httpwire_req_init(&r->w, method, t->conf.url, t->conf.headers, extra, body, len,
                          http__on_msg, r) < 0) {
        free(authz);
        http__req_free(r);
        return NULL;
    }
    free(authz);
    r->next = t->reqs;
    t->reqs = r;
    return r;
}

static void http__done(void *ud, CURL *easy, CURLcode res, long status);

static int http__start(http__req_t *r)
{
    r->started = 1;
    return curlmux_add(r->t->mux, r->w.easy, http__done, r);
}

/* A GET that resumes the stream of `from` (or opens the optional stream when
 * from is NULL) after delay_ms. */
static void http__get_later(mcp_http_t *t, http__req_t *from, long delay_ms)
{
    http__req_t *g = http__req_new(t, HTTP_GET, NULL, 0, from ? from->w.last_event_id : NULL);

    if (!g) {
        if (from)
            http__deliver_error(t, from->want_id, "MCP server %s: out of memory resuming a stream",
                                t->base.name);
        return;
    }
    if (from) {
        memcpy(g->want_id, from->want_id, sizeof(g->want_id));
        g->resumes = from->resumes + 1;
        g->optional = from->optional;
    } else {
        g->optional = 1;
    }
    g->due = uv_now(t->base.loop) + (uint64_t)(delay_ms < 0 ? 0 : delay_ms);
    http__schedule(t);
}

/* notifications/initialized has reached the server: the GET stream opens
 * (we declare client capabilities, sampling and roots, so the server may
 * send a request at any time, and one tied to no POST travels only there),
 * then the messages held meanwhile (http__send) go to the timer, which
 * starts them: the stream is there before the first call, and the server
 * sees initialized before any other request. */
static void http__release(mcp_http_t *t)
{
    t->initializing = 0;
    for (http__req_t *r = t->reqs; r; r = r->next)
        if (r->held) {
            r->held = 0;
            r->due = 0;
        }
    if (t->get_state == 0) {
        t->get_state = 1;
        http__get_later(t, NULL, 0);    /* newest first in the list: it starts first */
    }
    http__schedule(t);
}

static void http__on_auth(void *ud, int rc, const char *err);

static void http__authq_free(http__authq_t *h)
{
    while (h) {
        http__authq_t *next = h->next;
        free(h->body);
        free(h);
        h = next;
    }
}

/* Queues a message until the running (or a new) OAuth flow ends. Returns 0,
 * or a negative errno when no flow can run (-EPERM: step-up limit). */
static int http__auth_wait(mcp_http_t *t, const char *body, size_t len, int auth_tries, int status,
                      const char *www_auth)
{
    http__authq_t *h = calloc(1, sizeof(*h)), **pp;
    int rc = -ENOMEM;

    if (!h || !(h->body = malloc(len + 1)))
        goto out;
    memcpy(h->body, body, len);
    h->body[len] = '\0';
    h->len = len;
    h->auth_tries = auth_tries;
    if (!oauth_busy(t->oauth)) {
        rc = oauth_start(t->oauth, t->base.loop, status, www_auth, http__on_auth, t);
        if (rc < 0)
            goto out;
    }
    for (pp = &t->authq; *pp; pp = &(*pp)->next)
        ;
    *pp = h;
    h = NULL;
    rc = 0;
out:
    http__authq_free(h);
    return rc;
}

/* oauth_done_cb: re-sends the queued messages with the new token, or fails
 * each queued request with the reason. */
static void http__on_auth(void *ud, int rc, const char *err)
{
    mcp_http_t *t = ud;
    http__authq_t *h = t->authq, *cur;

    t->authq = NULL;
    for (cur = h; cur && !t->finishing; cur = cur->next) {
        char id[128] = "", method[64] = "";

        if (rc == 0 && http__post(t, cur->body, cur->len, cur->auth_tries) == 0)
            continue;
        httpwire_request_id(cur->body, cur->len, id, sizeof(id), method, sizeof(method));
        http__deliver_error(t, id, "MCP server %s: OAuth authorization failed: %s", t->base.name,
                            rc < 0 ? err : "cannot send");
    }
    http__authq_free(h);
    if (t->finishing)
        http__finish(t, NULL);
    else
        http__schedule(t);
}

static void http__post_done(mcp_http_t *t, http__req_t *r, CURLcode res, long status)
{
    if (strcmp(r->method, "notifications/initialized") == 0)
        http__release(t);
    http__adopt_session(t, r);
    if (res == CURLE_OK && t->oauth && r->auth_tries < HTTP_AUTH_TRIES &&
        (status == 401 || (status == 403 && strstr(r->w.www_auth, "insufficient_scope"))) &&
        http__auth_wait(t, r->w.body ? r->w.body : "", r->w.body ? strlen(r->w.body) : 0,
                   r->auth_tries + 1, (int)status, r->w.www_auth) == 0)
        return;   /* re-sent once a token is in */
    if (res == CURLE_OK && status == 404 && t->session_id[0] && strcmp(r->method, "initialize") != 0) {
        http__finish(t, "session expired (404)");
        return;
    }
    if (res == CURLE_OK && status >= 200 && status < 300) {
        httpwire_req_finish(&r->w);
        if (r->want_id[0] && !r->answered && !t->finishing) {
            if (r->w.is_sse && r->w.last_event_id[0])
                http__get_later(t, r, r->w.retry_ms >= 0 ? r->w.retry_ms : HTTP_DEFAULT_RETRY);
            else
                http__deliver_error(t, r->want_id, "MCP server %s ended the answer to %s without a response",
                                    t->base.name, r->method);
        }
        return;
    }
    if (res != CURLE_OK && r->w.is_sse && r->w.last_event_id[0] && r->want_id[0] && !r->answered) {
        /* the stream broke mid-way: resume it */
        http__get_later(t, r, r->w.retry_ms >= 0 ? r->w.retry_ms : HTTP_DEFAULT_RETRY);
        return;
    }
    if (r->want_id[0] && !r->answered) {
        if (res != CURLE_OK)
            http__deliver_error(t, r->want_id, "MCP server %s: %s failed: %s", t->base.name, r->method,
                                curl_easy_strerror(res));
        else
            http__deliver_error(t, r->want_id, "MCP server %s answered %s with HTTP %ld: %.300s",
                                t->base.name, r->method, status, buf_str(&r->w.resp));
    } else if (res != CURLE_OK || status >= 300) {
        log_warn("mcp %s: POST of %s failed: %s (HTTP %ld)", t->base.name, r->method,
                 res != CURLE_OK ? curl_easy_strerror(res) : "refused", status);
    }
}

static void http__get_done(mcp_http_t *t, http__req_t *r, CURLcode res, long status)
{
    int ok = res == CURLE_OK || res == CURLE_PARTIAL_FILE || res == CURLE_RECV_ERROR;
    int pending = r->want_id[0] && !r->answered;

    if (status == 404 && t->session_id[0]) {
        http__finish(t, "session expired (404)");
        return;
    }
    if (!ok || status < 200 || status >= 300) {
        if (r->optional && !pending && t->get_state != 2) {
            t->get_state = 2;   /* 405 or other refusal: no server stream */
            log_info("mcp %s: the server offers no GET stream (HTTP %ld): requests it sends outside "
                     "a call's own stream cannot reach us", t->base.name, status);
        }
        if (pending)
            http__deliver_error(t, r->want_id, "MCP server %s: resuming the stream failed: %s (HTTP %ld)",
                                t->base.name, res != CURLE_OK ? curl_easy_strerror(res) : "refused",
                                status);
        return;
    }
    if (pending) {
        if (r->resumes < CAP_MCPHTTP_RESUMES)
            http__get_later(t, r, r->w.retry_ms >= 0 ? r->w.retry_ms : HTTP_DEFAULT_RETRY);
        else
            http__deliver_error(t, r->want_id, "MCP server %s: stream ended %d times without the response",
                                t->base.name, r->resumes);
        return;
    }
    if (r->optional) {
        t->get_reopens = r->got_events ? 0 : t->get_reopens + 1;
        if (t->get_reopens < CAP_MCPHTTP_GET_REOPENS) {
            http__req_t tmp = {.t = t, .optional = 1};

            memcpy(tmp.w.last_event_id, r->w.last_event_id, sizeof(tmp.w.last_event_id));
            http__get_later(t, &tmp, r->w.retry_ms >= 0 ? r->w.retry_ms : HTTP_DEFAULT_RETRY);
        }
    }
}

/* curlmux_done_cb for every request of this transport. */
static void http__done(void *ud, CURL *easy, CURLcode res, long status)
{
    http__req_t *r = ud;
    mcp_http_t *t = r->t;

    (void)easy;
    http__unlink(t, r);
    if (!t->finishing) {
        if (r->kind == HTTP_POST)
            http__post_done(t, r, res, status);
        else if (r->kind == HTTP_GET)
            http__get_done(t, r, res, status);
    }
    http__req_free(r);
    if (t->finishing)
        http__finish(t, NULL);
}

static void http__timer_closed(uv_handle_t *h)
{
    mcp_http_t *t = h->data;

    mcp_transport__closed(&t->base, t->close_reason);
}

/* Enters (or continues) shutdown: aborts every request except the DELETE;
 * once none is left, closes the timer, whose close callback fires on_closed. */
static void http__finish(mcp_http_t *t, const char *reason)
{
    http__req_t *r, *next;

    if (reason && !t->close_reason[0])
        snprintf(t->close_reason, sizeof(t->close_reason), "%s", reason);
    if (!t->finishing) {
        t->finishing = 1;
        for (r = t->reqs; r; r = next) {
            next = r->next;
            if (r->kind == HTTP_DELETE)
                continue;
            r->w.abort = 1;
            if (!r->started || curlmux_remove(t->mux, r->w.easy) == 0) {
                http__unlink(t, r);
                http__req_free(r);
            }
        }
    }
    http__authq_free(t->authq);
    t->authq = NULL;
    if (!t->reqs && !oauth_busy(t->oauth) && !uv_is_closing((uv_handle_t *)&t->timer)) {
        uv_timer_stop(&t->timer);
        uv_close((uv_handle_t *)&t->timer, http__timer_closed);
    }
}

static void http__on_timer(uv_timer_t *h)
{
    mcp_http_t *t = h->data;
    uint64_t now = uv_now(t->base.loop);
    http__req_t *r;
    int again = 1;

    if (!t->ready_sent && !t->finishing && !oauth_busy(t->oauth)) {
        t->ready_sent = 1;
        if (t->base.cbs.on_ready)
            t->base.cbs.on_ready(t->base.cbs.ud);
    }
    while (again && !t->finishing) {
        again = 0;
        for (r = t->reqs; r; r = r->next) {
            if (r->started || r->due > now)
                continue;
            if (http__start(r) < 0) {
                http__unlink(t, r);
                if (r->want_id[0])
                    http__deliver_error(t, r->want_id, "MCP server %s: cannot start a request",
                                        t->base.name);
                http__req_free(r);
                again = 1;   /* the list changed under us */
                break;
            }
        }
    }
    if (!t->finishing)
        http__schedule(t);
}

/* Arms the timer for the earliest delayed request. */
static void http__schedule(mcp_http_t *t)
{
    uint64_t now = uv_now(t->base.loop), first = UINT64_MAX;
    http__req_t *r;

    if (uv_is_closing((uv_handle_t *)&t->timer))
        return;
    for (r = t->reqs; r; r = r->next)
        if (!r->started && r->due < first)
            first = r->due;
    if (!t->ready_sent && !oauth_busy(t->oauth))
        first = now;
    if (first != UINT64_MAX)
        uv_timer_start(&t->timer, http__on_timer, first > now ? first - now : 0, 0);
}

/* POSTs one message; with OAuth, waits for a running flow first, and starts
 * a refresh when the token is about to expire. */
static int http__post(mcp_http_t *t, const char *json, size_t len, int auth_tries)
{
    http__req_t *r;

    if (t->finishing)
        return -ENOTCONN;
    if (t->oauth && (oauth_busy(t->oauth) || (oauth_token(t->oauth) && oauth_stale(t->oauth))) &&
        http__auth_wait(t, json, len, auth_tries, 0, "") == 0)
        return 0;
    r = http__req_new(t, HTTP_POST, json, len, NULL);
    if (!r)
        return -ENOMEM;
    r->auth_tries = auth_tries;
    httpwire_request_id(json, len, r->want_id, sizeof(r->want_id), r->method, sizeof(r->method));
    /* the MCP lifecycle puts notifications/initialized before any other
     * request, and POSTs run side by side: what is sent while its POST runs
     * waits for the answer (the server has it then) */
    if (t->initializing) {
        r->held = 1;
        r->due = UINT64_MAX;   /* the timer starts it once released */
        return 0;
    }
    if (http__start(r) < 0) {
        http__unlink(t, r);
        http__req_free(r);
        return -EIO;
    }
    if (strcmp(r->method, "notifications/initialized") == 0)
        t->initializing = 1;
    return 0;
}

static int http__send(mcp_transport_t *base, const char *json, size_t len)
{
    return http__post((mcp_http_t *)base, json, len, 0);
}

static void http__set_proto(mcp_transport_t *base, const char *version)
{
    mcp_http_t *t = (mcp_http_t *)base;

    snprintf(t->proto, sizeof(t->proto), "%s", version ? version : "");
}

static void http__close(mcp_transport_t *base)
{
    mcp_http_t *t = (mcp_http_t *)base;
    http__req_t *d = NULL;

    if (t->finishing)
        return;
    if (t->session_id[0]) {
        d = http__req_new(t, HTTP_DELETE, NULL, 0, NULL);
        if (d && http__start(d) < 0) {
            http__unlink(t, d);
            http__req_free(d);
        }
    }
    http__finish(t, "closed");
}

static void http__free(mcp_transport_t *base)
{
    mcp_http_t *t = (mcp_http_t *)base;

    httpwire_conf_free(&t->conf);
    http__authq_free(t->authq);
    oauth_free(t->oauth);
    free(t);
}

static const struct mcp_transport_ops http__ops = {
    .send = http__send,
    .set_protocol_version = http__set_proto,
    .close = http__close,
    .free = http__free,
};

mcp_transport_t *mcp_http_new(uv_loop_t *loop, const char *name, json_object *server,
                              const mcp_transport_cbs_t *cbs, char *err, size_t errlen)
{
    mcp_http_t *t = calloc(1, sizeof(*t));
    mcp_transport_t *out = NULL;

    if (!t) {
        snprintf(err, errlen, "MCP server '%s': out of memory", name);
        goto out;
    }
    mcp_transport__init(&t->base, &http__ops, loop, name, cbs);
    if (httpwire_conf_read(&t->conf, name, server, err, errlen) < 0)
        goto out;
    t->mux = curlmux_get(loop);
    if (!t->mux) {
        snprintf(err, errlen, "MCP server '%s': cannot set up the HTTP client", name);
        goto out;
    }
    if (oauth_new(name, t->conf.url, server, &t->oauth, err, errlen) < 0)
        goto out;
    uv_timer_init(loop, &t->timer);
    t->timer.data = t;
    /* a token cached by any broker (or a seeded refresh token): on_ready waits for it */
    if (t->oauth && oauth_start(t->oauth, loop, 0, "", http__on_auth, t) < 0)
        log_warn("mcp %s: cannot start loading the OAuth token", name);
    http__schedule(t);   /* on_ready from the loop, not from inside this call */
    out = &t->base;
    t = NULL;
out:
    if (t) {
        httpwire_conf_free(&t->conf);
        oauth_free(t->oauth);
        free(t);
    }
    return out;
}
