/* transport_sse — the legacy MCP HTTP+SSE transport (revision 2024-11-05).
 *
 * One long GET stream carries everything the server says; its first
 * `endpoint` event names (often relatively) the URL to POST our messages to,
 * which we resolve against the stream's URL with curl's URL API. Each POST
 * is answered 202; a POSTed request the server refuses gets a JSON-RPC error
 * response synthesised for its id, so the caller is not left waiting. The
 * stream ending ends the transport (the session layer reconnects). */
#include "mcp-broker/curlmux.h"
#include "mcp-broker/httpwire.h"
#include "mcp-broker/transport_impl.h"

#include "shared/log.h"

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
    char close_reason[256];
} mcp_sse_t;

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

static void sse__stream_done(void *ud, CURL *easy, CURLcode res, long status)
{
    mcp_sse_t *t = ud;
    char reason[300];

    (void)easy;
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
    if (!t->posts && !t->stream.easy && !uv_is_closing((uv_handle_t *)&t->timer))
        uv_close((uv_handle_t *)&t->timer, sse__timer_closed);
}

static int sse__send(mcp_transport_t *base, const char *json, size_t len)
{
    mcp_sse_t *t = (mcp_sse_t *)base;
    static const char *const extra[] = {"Content-Type: application/json",
                                        "Accept: application/json, text/event-stream", NULL};
    sse__post_t *p = NULL;
    int rc = -ENOTCONN;

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
    free(t->post_url);
    free(t);
}

static const struct mcp_transport_ops sse__ops = {
    .send = sse__send,
    .set_protocol_version = NULL,
    .close = sse__close,
    .free = sse__free,
};

mcp_transport_t *mcp_sse_new(uv_loop_t *loop, const char *name, json_object *server,
                             const mcp_transport_cbs_t *cbs, char *err, size_t errlen)
{
    static const char *const extra[] = {"Accept: text/event-stream", "Cache-Control: no-cache", NULL};
    mcp_sse_t *t = calloc(1, sizeof(*t));
    mcp_transport_t *out = NULL;

    if (!t) {
        snprintf(err, errlen, "MCP server '%s': out of memory", name);
        goto out;
    }
    mcp_transport__init(&t->base, &sse__ops, loop, name, cbs);
    if (httpwire_conf_read(&t->conf, name, server, err, errlen) < 0)
        goto out;
    t->mux = curlmux_get(loop);
    if (!t->mux || httpwire_req_init(&t->stream, "GET", t->conf.url, t->conf.headers, extra, NULL, 0,
                                     sse__on_event, t) < 0 ||
        curlmux_add(t->mux, t->stream.easy, sse__stream_done, t) < 0) {
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
        free(t);
    }
    return out;
}
