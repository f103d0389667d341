/* transport_sse — the legacy MCP HTTP+SSE transport (revision 2024-11-05).
 *
 * One long GET stream carries everything the server says; its first
 * `endpoint` event names (often relatively) the URL to POST our messages to,
 * which we resolve against the stream's URL with curl's URL API. Each POST
 * is answered 202; a POSTed request the server refuses gets a JSON-RPC error
 * response synthesised for its id, so the caller is not left waiting. The
 * stream ending ends the transport (the session layer reconnects).
 * With an `auth` block (oauth.h) the stream waits for a cached token, and a
 * 401 on the stream runs the OAuth flow and opens it again (a POST refused
 * later is failed like any refused POST: the session starts over). */
#include "mcp-broker/curlmux.h"
#include "mcp-broker/httpwire.h"
#include "mcp-broker/oauth.h"
#include "mcp-broker/transport_impl.h"

#include "shared/log.h"
#include "shared/reqid.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sse__post {
    httpwire_req_t w;
    struct mcp_sse *t;
    char want_id[128];
    char method[64];
    int held;                    /* waits for notifications/initialized */
    struct sse__post *next;
} sse__post_t;

typedef struct mcp_sse {
    struct mcp_transport base;   /* first: transport.c casts */
    curlmux_t *mux;
    httpwire_conf_t conf;
    httpwire_req_t stream;       /* the GET; stream.easy NULL once ended */
    char *post_url;              /* from the endpoint event, resolved */
    sse__post_t *posts;
    uv_timer_t timer;            /* closed last: its close callback fires on_closed */
    int finishing;
    int initializing;            /* the notifications/initialized POST runs */
    oauth_t *oauth;              /* NULL without an auth block */
    int auth_tries;              /* stream 401s since the last endpoint event */
    char close_reason[256];
} mcp_sse_t;

#define SSE_AUTH_TRIES 3

/* "Authorization: Bearer …" for the current token (malloc'd), or NULL. */
static char *sse__authz(mcp_sse_t *t)
{
    const char *tok = oauth_token(t->oauth);
    size_t l;
    char *s;

    if (!tok)
        return NULL;
    l = strlen(tok) + sizeof("Authorization: Bearer ");
    s = malloc(l);
    if (s)
        snprintf(s, l, "Authorization: Bearer %s", tok);
    return s;
}

static void sse__finish(mcp_sse_t *t, const char *reason);

/* Resolves `rel` against `base` (RFC 3986). malloc'd (curl_free'd copy
 * duplicated with strdup) or NULL. */
static char *sse__resolve(const char *base, const char *rel)
{
    CURLU *u = curl_url();
    char *s = NULL, *out = NULL;

    if (!u)
        return NULL;
    if (curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
        curl_url_set(u, CURLUPART_URL, rel, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK)
        out = strdup(s);
    curl_free(s);
    curl_url_cleanup(u);
    return out;
}

/* httpwire_msg_cb for the GET stream. */
static int sse__on_event(void *ud, const char *event, const char *data, size_t len, const char *id)
{
    mcp_sse_t *t = ud;

    (void)id;
    if (t->finishing || !event)
        return t->finishing;
    if (strcmp(event, "endpoint") == 0) {
        char *u;

        if (t->post_url)
            return 0;   /* only the first one counts */
        u = sse__resolve(t->conf.url, data);
        if (!u) {
            sse__finish(t, "the server's endpoint event is not a valid URL");
            return 1;
        }
        t->post_url = u;
        t->auth_tries = 0;
        if (t->base.cbs.on_ready)
            t->base.cbs.on_ready(t->base.cbs.ud);
    } else if (strcmp(event, "message") == 0) {
        if (t->base.cbs.on_message)
            t->base.cbs.on_message(t->base.cbs.ud, data, len);
    }
    return t->finishing;
}

static void sse__post_unlink(mcp_sse_t *t, sse__post_t *p)
{
    sse__post_t **pp;

    for (pp = &t->posts; *pp && *pp != p; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = p->next;
}

static void sse__post_free(sse__post_t *p)
{
    httpwire_req_free(&p->w);
    free(p);
}

static int sse__ignore(void *ud, const char *event, const char *data, size_t len, const char *id)
{
    (void)ud; (void)event; (void)data; (void)len; (void)id;
    return 0;
}

static void sse__post_done(void *ud, CURL *easy, CURLcode res, long status);

/* Answers request `id` (none: nothing to answer) with a JSON-RPC error. */
static void sse__fail_request(mcp_sse_t *t, const char *id, const char *msg)
{
    char *json;

    if (!id[0] || !t->base.cbs.on_message)
        return;
    if ((json = httpwire_error_response(id, msg)))
        t->base.cbs.on_message(t->base.cbs.ud, json, strlen(json));
    free(json);
}

/* Sends the messages held while notifications/initialized was on its way
 * (sse__send). */
static void sse__release(mcp_sse_t *t)
{
    sse__post_t *p, *next;

    t->initializing = 0;
    for (p = t->posts; p; p = next) {
        next = p->next;
        if (!p->held)
            continue;
        p->held = 0;
        if (curlmux_add(t->mux, p->w.easy, sse__post_done, p) < 0) {
            sse__post_unlink(t, p);
            sse__fail_request(t, p->want_id, "cannot start a request");
            sse__post_free(p);
        }
    }
}

static void sse__post_done(void *ud, CURL *easy, CURLcode res, long status)
{
    sse__post_t *p = ud;
    mcp_sse_t *t = p->t;

    (void)easy;
    sse__post_unlink(t, p);
    if (!t->finishing && strcmp(p->method, "notifications/initialized") == 0)
        sse__release(t);
    if (!t->finishing && (res != CURLE_OK || status < 200 || status >= 300)) {
        char msg[768];

        if (res != CURLE_OK)
            snprintf(msg, sizeof(msg), "MCP server %s: POST of %s failed: %s", t->base.name, p->method,
                     curl_easy_strerror(res));
        else
            snprintf(msg, sizeof(msg), "MCP server %s answered %s with HTTP %ld: %.300s", t->base.name,
                     p->method, status, buf_str(&p->w.resp));
        log_warn("mcp %s: %s", t->base.name, msg);
        sse__fail_request(t, p->want_id, msg);
    }
    sse__post_free(p);
    if (t->finishing)
        sse__finish(t, NULL);
}

static void sse__on_auth(void *ud, int rc, const char *err);

static void sse__stream_done(void *ud, CURL *easy, CURLcode res, long status)
{
    mcp_sse_t *t = ud;
    char reason[300];

    (void)easy;
    if (res == CURLE_OK && status == 401 && t->oauth && !t->finishing && !t->post_url &&
        t->auth_tries++ < SSE_AUTH_TRIES &&
        oauth_start(t->oauth, t->base.loop, 401, t->stream.www_auth, sse__on_auth, t) == 0) {
        httpwire_req_free(&t->stream);   /* opened again with the token */
        return;
    }
    if (res != CURLE_OK)
        snprintf(reason, sizeof(reason), "SSE stream failed: %s", curl_easy_strerror(res));
    else if (status < 200 || status >= 300)
        snprintf(reason, sizeof(reason), "SSE stream refused with HTTP %ld", status);
    else if (!t->post_url)
        snprintf(reason, sizeof(reason), "SSE stream ended before its endpoint event");
    else
        snprintf(reason, sizeof(reason), "SSE stream ended");
    httpwire_req_free(&t->stream);
    sse__finish(t, reason);
}

static void sse__timer_closed(uv_handle_t *h)
{
    mcp_sse_t *t = h->data;

    mcp_transport__closed(&t->base, t->close_reason);
}

/* Aborts everything; once nothing runs, closes the timer, whose close
 * callback fires on_closed (never from inside the caller's call). */
static void sse__finish(mcp_sse_t *t, const char *reason)
{
    sse__post_t *p, *next;

    if (reason && !t->close_reason[0])
        snprintf(t->close_reason, sizeof(t->close_reason), "%s", reason);
    if (!t->finishing) {
        t->finishing = 1;
        if (t->stream.easy) {
            t->stream.abort = 1;
            if (curlmux_remove(t->mux, t->stream.easy) == 0)
                httpwire_req_free(&t->stream);
        }
        for (p = t->posts; p; p = next) {
            next = p->next;
            p->w.abort = 1;
            if (p->held || curlmux_remove(t->mux, p->w.easy) == 0) {
                sse__post_unlink(t, p);
                sse__post_free(p);
            }
        }
    }
    if (!t->posts && !t->stream.easy && !oauth_busy(t->oauth) &&
        !uv_is_closing((uv_handle_t *)&t->timer))
        uv_close((uv_handle_t *)&t->timer, sse__timer_closed);
}

static int sse__send(mcp_transport_t *base, const char *json, size_t len)
{
    mcp_sse_t *t = (mcp_sse_t *)base;
    const char *extra[] = {"Content-Type: application/json",
                           "Accept: application/json, text/event-stream", NULL, NULL, NULL};
    char rid[REQID_MAX + 32];
    sse__post_t *p = NULL;
    char *authz = sse__authz(t);
    int rc = -ENOTCONN;

    extra[2] = authz;
    if (httpwire_body_rid(json, len, rid, sizeof(rid)))
        extra[authz ? 3 : 2] = rid;
    if (t->finishing || !t->post_url)
        goto out;
    rc = -ENOMEM;
    p = calloc(1, sizeof(*p));
    if (!p)
        goto out;
    p->t = t;
    if (httpwire_req_init(&p->w, "POST", t->post_url, t->conf.headers, extra, json, len, sse__ignore,
                          p) < 0)
        goto out;
    httpwire_request_id(json, len, p->want_id, sizeof(p->want_id), p->method, sizeof(p->method));
    rc = -EIO;
    /* the MCP lifecycle puts notifications/initialized before any other
     * request, and POSTs run side by side: what is sent while its POST runs
     * waits for the answer (the server has it then) */
    p->held = t->initializing;
    if (!p->held && curlmux_add(t->mux, p->w.easy, sse__post_done, p) < 0)
        goto out;
    if (strcmp(p->method, "notifications/initialized") == 0)
        t->initializing = 1;
    p->next = t->posts;
    t->posts = p;
    p = NULL;
    rc = 0;
out:
    free(authz);
    if (p)
        sse__post_free(p);
    return rc;
}

static void sse__close(mcp_transport_t *base)
{
    sse__finish((mcp_sse_t *)base, "closed");
}

static void sse__free(mcp_transport_t *base)
{
    mcp_sse_t *t = (mcp_sse_t *)base;

    httpwire_conf_free(&t->conf);
    oauth_free(t->oauth);
    free(t->post_url);
    free(t);
}

static const struct mcp_transport_ops sse__ops = {
    .send = sse__send,
    .set_protocol_version = NULL,
    .close = sse__close,
    .free = sse__free,
};

/* Opens the GET stream (with the current token, if any). 0 or -EIO. */
static int sse__open(mcp_sse_t *t)
{
    const char *extra[] = {"Accept: text/event-stream", "Cache-Control: no-cache", NULL, NULL};
    char *authz = sse__authz(t);
    int rc = -EIO;

    extra[2] = authz;
    if (httpwire_req_init(&t->stream, "GET", t->conf.url, t->conf.headers, extra, NULL, 0,
                          sse__on_event, t) < 0 ||
        curlmux_add(t->mux, t->stream.easy, sse__stream_done, t) < 0) {
        httpwire_req_free(&t->stream);
        goto out;
    }
    rc = 0;
out:
    free(authz);
    return rc;
}

/* oauth_done_cb: (re)opens the stream with the token, or ends. */
static void sse__on_auth(void *ud, int rc, const char *err)
{
    mcp_sse_t *t = ud;
    char reason[600];

    if (t->finishing) {
        sse__finish(t, NULL);
        return;
    }
    if (rc < 0) {
        snprintf(reason, sizeof(reason), "OAuth authorization failed: %.500s", err);
        sse__finish(t, reason);
        return;
    }
    if (sse__open(t) < 0)
        sse__finish(t, "cannot open the SSE stream");
}

mcp_transport_t *mcp_sse_new(uv_loop_t *loop, const char *name, json_object *server,
                             const mcp_transport_cbs_t *cbs, char *err, size_t errlen)
{
    mcp_sse_t *t = calloc(1, sizeof(*t));
    mcp_transport_t *out = NULL;

    if (!t) {
        snprintf(err, errlen, "MCP server '%s': out of memory", name);
        goto out;
    }
    mcp_transport__init(&t->base, &sse__ops, loop, name, cbs);
    if (httpwire_conf_read(&t->conf, name, server, err, errlen) < 0 ||
        oauth_new(name, t->conf.url, server, &t->oauth, err, errlen) < 0)
        goto out;
    t->mux = curlmux_get(loop);
    /* with OAuth, the stream opens once a cached token (if any) is loaded */
    if (!t->mux || (t->oauth ? oauth_start(t->oauth, loop, 0, "", sse__on_auth, t) < 0
                             : sse__open(t) < 0)) {
        snprintf(err, errlen, "MCP server '%s': cannot set up the HTTP client", name);
        goto out;
    }
    uv_timer_init(loop, &t->timer);
    t->timer.data = t;
    out = &t->base;
    t = NULL;
out:
    if (t) {
        httpwire_req_free(&t->stream);
        httpwire_conf_free(&t->conf);
        oauth_free(t->oauth);
        free(t);
    }
    return out;
}
