#include "agent/upstream.h"
#include "shared/mono.h"
#include "shared/jget.h"
#include "shared/caps.h"

#include "shared/log.h"
#include "shared/reqid.h"
#include "shared/sse.h"
#include "shared/url.h"
#include "shared/utf8.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The easy handle runs inside a one-handle multi so the wait can wake every
 * 100 ms to ask whether the client is still there (libcurl's progress
 * callback slows to about once a second on an idle stream); the multi also
 * holds the connection cache, so connections are reused across turns. */
struct up {
    CURL *curl;
    CURLM *multi;
    /* curl's error text for the transfer under way. It lives as long as the
     * handle: CURLOPT_ERRORBUFFER must never point at a buffer that is gone
     * while the kept handle still holds the pointer between turns. */
    char errbuf[CURL_ERROR_SIZE];
};

#define UP_POLL_MS 100

/* State of one transfer, shared with the curl callbacks. */
typedef struct up_xfer {
    const up_call_t *call;
    be_turn_t *turn;
    CURL *curl;
    buf_t body;            /* whole body (non-stream, error or non-SSE answers) */
    int mode;              /* 0 undecided, 1 SSE, 2 buffer */
    sse_parser_t *sse;
    void *st;              /* backend stream state */
    int done;              /* the stream said it is complete */
    int ev_rc;             /* first failing stream_event return */
    int ev_status;
    int gone;
    int pending;           /* pieces went to on_delta since the last on_flush */
    int too_big;
    char err[512];
} up_xfer_t;

static size_t up__write(char *ptr, size_t size, size_t nmemb, void *ud);

/* The options every transfer of the handle shares, set once: a
 * curl_easy_reset per turn cost a re-initialisation of the whole handle and
 * a dozen setopts (parsing the protocol list, building the Accept-Encoding
 * value) on the pass-through path. up__configure sets only what a turn
 * changes, and sets every one of those on every turn, so nothing of an
 * earlier turn carries over. */
static void up__fixed_opts(up_t *u)
{
    CURL *c = u->curl;

    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, up__write);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, u->errbuf);
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
}

up_t *up_new(void)
{
    up_t *u = calloc(1, sizeof(*u));

    if (!u)
        return NULL;
    u->curl = curl_easy_init();
    u->multi = curl_multi_init();
    if (!u->curl || !u->multi) {
        up_free(u);
        return NULL;
    }
    up__fixed_opts(u);
    return u;
}

void up_free(up_t *u)
{
    if (!u)
        return;
    if (u->curl)
        curl_easy_cleanup(u->curl);
    if (u->multi)
        curl_multi_cleanup(u->multi);
    free(u);
}

static int up__sink(void *ud, const char *text, size_t len)
{
    up_xfer_t *x = ud;

    if (!x->call->on_delta)
        return 0;
    if (x->call->on_delta(x->call->ud, text, len) != 0) {
        x->gone = 1;
        return 1;
    }
    x->pending = 1;
    return 0;
}

static int up__event(void *ud, const char *event, const char *data, size_t len, const char *id)
{
    up_xfer_t *x = ud;
    int rc;

    (void)id;
    if (x->done)
        return 0;
    rc = x->call->be->stream_event(x->st, event, data, len, &x->ev_status, x->err,
                                   sizeof(x->err));
    if (rc == 1) {
        x->done = 1;
        return 0;
    }
    if (rc < 0)
        x->ev_rc = rc;
    return rc;
}

/* Decides once, at the first byte, whether the answer is an SSE stream to
 * parse as it comes, or a body to keep whole (errors, non-SSE answers). */
static void up__mode(up_xfer_t *x)
{
    long code = 0;
    char *ct = NULL;

    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(x->curl, CURLINFO_CONTENT_TYPE, &ct);
    x->mode = 2;
    if (x->call->stream && code < 300 && ct && strncasecmp(ct, "text/event-stream", 17) == 0)
        x->mode = 1;
}

static size_t up__write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    up_xfer_t *x = ud;
    size_t n = size * nmemb;
    int rc;

    if (!x->mode)
        up__mode(x);
    if (x->mode == 2) {
        if (buf_append(&x->body, ptr, n) < 0) {
            x->too_big = 1;
            return 0;
        }
        return n;
    }
    if (x->done)
        return n;   /* after [DONE]: drain, the connection stays reusable */
    rc = sse_feed(x->sse, ptr, n);
    if (rc == -ENOSPC) {
        snprintf(x->err, sizeof(x->err), "upstream sent an SSE event larger than %u bytes",
                 CAP_UP_EVENT);
        x->ev_rc = -EPROTO;
    }
    if (rc == 0 && x->pending && x->call->on_flush) {
        /* everything this read carried has been handed over: push it */
        x->pending = 0;
        if (x->call->on_flush(x->call->ud) != 0) {
            x->gone = 1;
            return 0;
        }
    }
    return rc == 0 ? n : 0;
}

/* The transfer failed at the curl level: name the cause. The client sees the
 * base URL without userinfo or query (url_redact): a credential in the
 * configured URL stays with the gateway. curl's own text names the host, not
 * the URL; should one ever carry what looks like a URL's secret part
 * ('@' or '?'), curl's generic text for the code is used instead. */
static void up__curl_fail(up_xfer_t *x, CURLcode cc, const char *ebuf, aip_err_t *e)
{
    const char *raw = jget_str(x->call->backend, "base_url");
    const char *key = jget_str(x->call->backend, "api_key");
    const char *why = ebuf && *ebuf ? ebuf : curl_easy_strerror(cc);
    char hint[200] = "", base[512];

    url_redact(raw, base, sizeof(base));
    if (strpbrk(why, "@?"))
        why = curl_easy_strerror(cc);
    log_warn("upstream %s (backend '%s'): %s (curl %d)", base,
             x->call->backend_name ? x->call->backend_name : "?", why, (int)cc);

    if (!key || !*key)
        snprintf(hint, sizeof(hint), " (backend '%s' has no api_key configured)",
                 x->call->backend_name ? x->call->backend_name : "?");
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        aip_err_set(e, 504, "api_error", "upstream_timeout",
                 "upstream %s did not answer in time: %s", base, why);
        break;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
        aip_err_set(e, 502, "api_error", "upstream_unreachable", "cannot reach upstream %s: %s%s",
                 base, why, hint);
        break;
    default:
        aip_err_set(e, 502, "api_error", "upstream_error", "upstream %s failed: %s",
                 base, why);
        break;
    }
}

/* An upstream's error text is passed on to the client; one that echoes the
 * backend's own API key back (a misconfigured proxy, a debug page) must not
 * hand it out: every occurrence becomes "***", in place (never longer than
 * what it replaces). Keys shorter than 8 bytes are left alone: they would
 * match ordinary words. */
static void up__scrub_key(up_xfer_t *x, char *msg)
{
    const char *key = jget_str(x->call->backend, "api_key");
    size_t klen = key ? strlen(key) : 0;
    char *p;

    if (klen < 8)
        return;
    while ((p = strstr(msg, key)) != NULL) {
        memcpy(p, "***", 3);
        memmove(p + 3, p + klen, strlen(p + klen) + 1);
    }
}

/* An OpenAI-dialect error body's `param` and `code`, when they are strings:
 * passed through to the client unchanged (issue 13), made valid UTF-8 and cut
 * to the error value's fields. Anthropic errors carry neither. */
static void up__error_words(const char *body, size_t len, aip_err_t *e)
{
    json_object *root = len ? json_tokener_parse(body) : NULL;
    json_object *err = jget_obj(root, "error");
    const char *param = jget_cstr(err, "param"), *code = jget_cstr(err, "code");
    char clean[AIP_ERR_MSG_MAX];

    if (param && *param) {
        utf8_clean(param, strlen(param), clean, sizeof(clean));
        aip_err_param(e, clean);
    }
    if (code && *code)
        utf8_clean(code, strlen(code), e->code, sizeof(e->code));
    json_object_put(root);
}

static void up__status_fail(up_xfer_t *x, long code, aip_err_t *e)
{
    char type[48], msg[1024], clean[1024];
    int st = (int)code;

    x->call->be->error((int)code, buf_str(&x->body), x->body.len, &st, type, sizeof(type), msg,
                       sizeof(msg));
    up__scrub_key(x, msg);
    utf8_clean(msg, strlen(msg), clean, sizeof(clean));   /* the body is the upstream's bytes */
    aip_err_set(e, st, type, "", "%s", clean);
    up__error_words(buf_str(&x->body), x->body.len, e);
}

static long up__timeout(json_object *backend)
{
    json_object *v = NULL;
    long t = 300;

    if (backend && json_object_object_get_ex(backend, "timeout", &v) && v) {
        t = (long)json_object_get_int64(v);
        if (t <= 0)
            t = 300;
    }
    return t;
}

static int up__configure(up_t *u, up_xfer_t *x, buf_t *url, buf_t *body,
                         struct curl_slist *headers)
{
    CURL *c = u->curl;

    /* the fixed options were set once (up__fixed_opts); these are the
     * turn's, every one set on every turn */
    if (curl_easy_setopt(c, CURLOPT_URL, buf_str(url)) != CURLE_OK)
        return -EINVAL;
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, buf_str(body));
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body->len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, up__timeout(x->call->backend));
    curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
    u->errbuf[0] = '\0';
    return 0;
}

static int up__alive(up_xfer_t *x)
{
    if (x->call->alive && !x->call->alive(x->call->ud)) {
        x->gone = 1;
        return 0;
    }
    return 1;
}

/* Runs the configured transfer, asking alive() at most every UP_POLL_MS
 * (each ask is a poll(2) on the client's connection, and a stream wakes per
 * chunk): a stream asks at once, after the request went out (alive() also
 * starts the client's stream then, core/complete.c), a whole answer only
 * when it is not there within UP_POLL_MS (the client was there a moment
 * ago). A client gone removes the handle mid-transfer, which closes the
 * upstream connection at once. */
static CURLcode up__perform(up_t *u, up_xfer_t *x)
{
    CURLcode cc = CURLE_OK;
    CURLMcode mc;
    CURLMsg *m;
    int running = 1, left;
    long long now, next_alive = x->call->stream ? 0 : mono_ms() + UP_POLL_MS;

    if (curl_multi_add_handle(u->multi, u->curl) != CURLM_OK)
        return CURLE_FAILED_INIT;
    while (running) {
        if ((mc = curl_multi_perform(u->multi, &running)) != CURLM_OK) {
            cc = CURLE_FAILED_INIT;
            break;
        }
        if (!running)
            break;
        if (x->gone) {
            cc = CURLE_ABORTED_BY_CALLBACK;
            break;
        }
        if ((now = mono_ms()) >= next_alive) {
            if (!up__alive(x)) {
                cc = CURLE_ABORTED_BY_CALLBACK;
                break;
            }
            next_alive = now + UP_POLL_MS;
        }
        {
            struct curl_waitfd w = { x->call->watch ? x->call->watch(x->call->ud) : -1,
                                     CURL_WAIT_POLLIN, 0 };
            if (curl_multi_poll(u->multi, w.fd >= 0 ? &w : NULL, w.fd >= 0 ? 1 : 0, UP_POLL_MS,
                                NULL) != CURLM_OK) {
                cc = CURLE_FAILED_INIT;
                break;
            }
            /* the watched fd: ask alive() now, not at its next poll */
            if (w.revents && !up__alive(x)) {
                cc = CURLE_ABORTED_BY_CALLBACK;
                break;
            }
        }
    }
    while ((m = curl_multi_info_read(u->multi, &left)))
        if (m->msg == CURLMSG_DONE && m->easy_handle == u->curl)
            cc = m->data.result;
    curl_multi_remove_handle(u->multi, u->curl);
    return cc;
}

/* The call's trace context as headers (docs/traces.md).
 * 0, or -ENOMEM. */
static int up__trace_headers(const up_call_t *call, struct curl_slist **headers)
{
    char line[CAP_TRACESTATE + 16];
    struct curl_slist *n;

    if (call->traceparent && *call->traceparent) {
        snprintf(line, sizeof(line), "traceparent: %s", call->traceparent);
        if (!(n = curl_slist_append(*headers, line)))
            return -ENOMEM;
        *headers = n;
        if (call->tracestate && *call->tracestate &&
            strlen(call->tracestate) <= CAP_TRACESTATE) {
            snprintf(line, sizeof(line), "tracestate: %s", call->tracestate);
            if (!(n = curl_slist_append(*headers, line)))
                return -ENOMEM;
            *headers = n;
        }
    }
    return 0;
}

int up_turn(up_t *u, const up_call_t *call, be_turn_t *turn, aip_err_t *e)
{
    struct curl_slist *headers = NULL;
    buf_t url, body;
    up_xfer_t x;
    char err[512] = "", shown[512];
    be_sink_t sink;
    CURLcode cc;
    long code = 0;
    int rc = -EIO, brc;

    memset(&x, 0, sizeof(x));
    x.call = call;
    x.turn = turn;
    x.curl = u->curl;
    buf_init(&x.body, CAP_UP_BODY);
    buf_init(&url, CAP_UP_URL);
    buf_init(&body, CAP_UP_REQ_BODY);
    brc = call->be->build(call->backend, call->req, call->stream, &url, &headers, &body, err,
                          sizeof(err));
    if (brc < 0) {
        aip_err_set(e, brc == -ENOMEM ? 500 : 502, "api_error", "backend_misconfigured",
                 "cannot build the request for backend '%s': %s",
                 call->backend_name ? call->backend_name : "?", err);
        goto out;
    }
    if (call->request_id && reqid_valid(call->request_id)) {
        char h[REQID_MAX + 16];
        struct curl_slist *more;
        snprintf(h, sizeof(h), "X-Request-Id: %s", call->request_id);
        if (!(more = curl_slist_append(headers, h))) {
            aip_err_oom(e);
            goto out;
        }
        headers = more;
    }
    if (up__trace_headers(call, &headers) < 0) {
        aip_err_oom(e);
        goto out;
    }
    if (call->stream) {
        sink.content = up__sink;
        sink.ud = &x;
        if (!(x.st = call->be->stream_new(turn, &sink)) ||
            !(x.sse = sse_new(CAP_UP_EVENT, up__event, &x))) {
            aip_err_oom(e);
            goto out;
        }
    }
    if (up__configure(u, &x, &url, &body, headers) < 0) {
        aip_err_set(e, 502, "api_error", "backend_misconfigured", "invalid upstream URL '%s'",
                 url_redact(buf_str(&url), shown, sizeof(shown)));
        goto out;
    }
    cc = up__perform(u, &x);
    curl_easy_getinfo(u->curl, CURLINFO_RESPONSE_CODE, &code);
    if (x.gone) {
        rc = -ECONNABORTED;
        aip_err_client_gone(e);
        goto out;
    }
    if (x.too_big) {
        aip_err_set(e, 502, "api_error", "upstream_bad_response",
                 "upstream answer larger than %u bytes", CAP_UP_BODY);
        goto out;
    }
    if (x.ev_rc == -EREMOTEIO) {
        up__scrub_key(&x, x.err);
        aip_err_set(e, x.ev_status ? x.ev_status : 502, "api_error", "upstream_error",
                 "upstream error: %s", x.err);
        goto out;
    }
    if (x.ev_rc < 0) {
        aip_err_set(e, 502, "api_error", "upstream_bad_response", "%s", x.err);
        goto out;
    }
    if (cc != CURLE_OK && !(x.done && cc == CURLE_PARTIAL_FILE)) {
        up__curl_fail(&x, cc, u->errbuf, e);
        goto out;
    }
    if (code >= 400) {
        up__status_fail(&x, code, e);
        goto out;
    }
    if (code < 200 || code >= 300) {
        aip_err_set(e, 502, "api_error", "upstream_bad_response",
                 "upstream answered HTTP %ld, expected 2xx", code);
        goto out;
    }
    if (x.mode == 1 && !x.done && call->be->stream_end &&
        call->be->stream_end(x.st, err, sizeof(err)) < 0) {
        /* EOF before the stream said it was complete: a cut, not an answer */
        aip_err_set(e, 502, "api_error", "upstream_truncated", "%s", err);
        goto out;
    }
    if (x.mode != 1) {
        /* whole body: a normal answer, or a non-SSE answer to a stream request */
        if (call->be->parse(buf_str(&x.body), x.body.len, turn, err, sizeof(err)) < 0) {
            aip_err_set(e, 502, "api_error", "upstream_bad_response", "%s", err);
            goto out;
        }
        if (call->stream && turn->content.len && call->on_delta &&
            (call->on_delta(call->ud, buf_str(&turn->content), turn->content.len) != 0 ||
             (call->on_flush && call->on_flush(call->ud) != 0))) {
            rc = -ECONNABORTED;
            aip_err_client_gone(e);
            goto out;
        }
    }
    rc = 0;
out:
    if (x.st)
        call->be->stream_free(x.st);  /* also completes calls of a stream without [DONE] */
    sse_free(x.sse);
    curl_slist_free_all(headers);
    buf_free(&x.body);
    buf_free(&url);
    buf_free(&body);
    if (rc == 0 && !turn->finish_reason[0])
        snprintf(turn->finish_reason, sizeof(turn->finish_reason), "%s",
                 turn->tool_calls ? "tool_calls" : "stop");
    return rc;
}
