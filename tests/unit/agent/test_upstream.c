/* Unit tests for agent/upstream (and agent_run without tools) against a tiny
 * HTTP server running in a thread of this process on 127.0.0.1:0. Each test
 * sets the server's mode (what it answers) before one request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agent/agent.h"
#include "agent/upstream.h"
#include "tests/unit/support/tsrv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include "shared/utf8.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct srv {
    tsrv_t *http;
    int port;
    pthread_mutex_t mu;
    const char *mode;
    char req[65536];       /* last request received */
    int nreq;              /* requests read so far (under mu) */
    int peer_closed;       /* times the client closed while we waited on it (under mu) */
} srv_t;

static srv_t S;

static void answer(int fd, const char *mode)
{
    static const char *ok_body =
        "{\"id\":\"x\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,\"message\":"
        "{\"role\":\"assistant\",\"content\":\"hi there\"},\"finish_reason\":\"stop\"}],"
        "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}}";
    char head[512];

    if (strcmp(mode, "ok") == 0 || strcmp(mode, "client_tool") == 0) {
        const char *b = strcmp(mode, "ok") == 0 ? ok_body :
            "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":"
            "[{\"id\":\"c9\",\"type\":\"function\",\"function\":{\"name\":\"get_time\","
            "\"arguments\":\"{}\"}}]},\"finish_reason\":\"tool_calls\"}]}";
        snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n", strlen(b));
        tsrv_say(fd, head);
        tsrv_say(fd, b);
    } else if (strcmp(mode, "json500") == 0 || strcmp(mode, "json400") == 0) {
        const char *b = "{\"error\":{\"message\":\"model exploded\",\"type\":\"server_error\"}}";
        snprintf(head, sizeof(head), "HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                 mode[4] == '5' ? "500 Internal Server Error" : "400 Bad Request", strlen(b));
        tsrv_say(fd, head);
        tsrv_say(fd, b);
    } else if (strcmp(mode, "json400words") == 0) {
        /* OpenAI's own refusal of an over-long tools array */
        const char *b = "{\"error\":{\"message\":\"Invalid 'tools': array too long.\","
                        "\"type\":\"invalid_request_error\",\"param\":\"tools\","
                        "\"code\":\"array_above_max_length\"}}";
        snprintf(head, sizeof(head), "HTTP/1.1 400 Bad Request\r\nContent-Type: "
                 "application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                 strlen(b));
        tsrv_say(fd, head);
        tsrv_say(fd, b);
    } else if (strcmp(mode, "json401echo") == 0) {
        /* an upstream (or a proxy before it) that echoes the key it got */
        const char *b = "{\"error\":{\"message\":\"key sk-live-abcdef123456 is not valid; "
                        "sk-live-abcdef123456 again\",\"type\":\"invalid_request_error\"}}";
        snprintf(head, sizeof(head), "HTTP/1.1 401 Unauthorized\r\nContent-Type: "
                 "application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                 strlen(b));
        tsrv_say(fd, head);
        tsrv_say(fd, b);
    } else if (strcmp(mode, "json_cut") == 0) {
        /* promises more than it sends, then closes: a cut whole answer */
        tsrv_say(fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n"
                "Connection: close\r\n\r\n{\"choices\":[{\"index\":0,\"message\":{\"role\":"
                "\"assistant\",\"content\":\"hi th");
    } else if (strcmp(mode, "sse_cut") == 0) {
        /* a stream that just stops: no finish_reason, no [DONE], a clean EOF */
        tsrv_say(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n");
        tsrv_say(fd, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},"
                "\"finish_reason\":null}]}\n\n");
    } else if (strcmp(mode, "bytes502") == 0) {
        tsrv_say(fd, "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n"
                "Connection: close\r\n\r\nbad \xff\xfe\xc3 gate");
    } else if (strcmp(mode, "garbage") == 0) {
        tsrv_say(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 13\r\n"
                "Connection: close\r\n\r\n<html>x</html");
    } else if (strcmp(mode, "slow") == 0) {
        int c = tsrv_wait_close(fd);
        pthread_mutex_lock(&S.mu);
        S.peer_closed += c;
        pthread_mutex_unlock(&S.mu);
    } else if (strncmp(mode, "sse", 3) == 0) {
        tsrv_say(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n");
        /* one event split across writes, then several in one write */
        tsrv_say(fd, ": ping\r\n\r\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel");
        tsrv_say(fd, "\"},\"finish_reason\":null}]}\r\n");
        tsrv_say(fd, "\r\n");
        if (strcmp(mode, "sse_hold") == 0) {
            int c = tsrv_wait_close(fd);
            pthread_mutex_lock(&S.mu);
            S.peer_closed += c;
            pthread_mutex_unlock(&S.mu);
            return;
        }
        tsrv_say(fd, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},"
                "\"finish_reason\":null}]}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{},"
                "\"finish_reason\":\"stop\"}]}\n\n");
        tsrv_say(fd, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2}}\n\n");
        if (strcmp(mode, "sse") == 0)
            tsrv_say(fd, "data: [DONE]\n\n");
    }
}

/* Keeps the request and answers it in the current mode. */
static void on_request(void *ud, int fd, const char *req, const char *body)
{
    char mode[32];

    (void)ud;
    (void)body;
    pthread_mutex_lock(&S.mu);
    snprintf(S.req, sizeof(S.req), "%s", req);
    S.nreq++;
    snprintf(mode, sizeof(mode), "%s", S.mode);
    pthread_mutex_unlock(&S.mu);
    answer(fd, mode);
}

static int setup(void **state)
{
    (void)state;
    pthread_mutex_init(&S.mu, NULL);
    S.mode = "ok";
    S.http = tsrv_start(on_request, NULL);
    assert_non_null(S.http);
    S.port = tsrv_port(S.http);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tsrv_stop(S.http);
    S.http = NULL;
    pthread_mutex_destroy(&S.mu);
    return 0;
}

static void set_mode(const char *m)
{
    pthread_mutex_lock(&S.mu);
    S.mode = m;
    pthread_mutex_unlock(&S.mu);
}

static int closed_count(void)
{
    int n;
    pthread_mutex_lock(&S.mu);
    n = S.peer_closed;
    pthread_mutex_unlock(&S.mu);
    return n;
}

static json_object *backend(int port, int timeout, const char *key)
{
    char s[256];
    json_object *o;
    snprintf(s, sizeof(s), "{\"kind\":\"openai\",\"base_url\":\"http://127.0.0.1:%d/v1/\","
             "\"api_key\":\"%s\",\"timeout\":%d}", port, key, timeout);
    o = json_tokener_parse(s);
    assert_non_null(o);
    return o;
}

typedef struct deltas {
    buf_t text;
    int stop_after;
    int n;
} deltas_t;

static int on_delta(void *ud, const char *text, size_t len)
{
    deltas_t *d = ud;
    buf_append(&d->text, text, len);
    return d->stop_after && ++d->n >= d->stop_after;
}

/* One turn on the kept handle `u` against the server in `mode`. */
static int turn_on(up_t *u, const char *mode, json_object *be, int stream, deltas_t *d,
                   be_turn_t *t, agent_res_t *res)
{
    json_object *req = json_tokener_parse(stream ? "{\"model\":\"m\",\"messages\":[],\"stream\":true}"
                                                 : "{\"model\":\"m\",\"messages\":[]}");
    up_call_t c;
    int rc;
    set_mode(mode);
    memset(&c, 0, sizeof(c));
    memset(res, 0, sizeof(*res));
    c.be = &be_openai;
    c.backend_name = "b1";
    c.backend = be;
    c.req = req;
    c.stream = stream;
    c.on_delta = on_delta;
    c.ud = d;
    rc = up_turn(u, &c, t, &res->err);
    json_object_put(req);
    return rc;
}

/* One turn on a handle of its own; returns up_turn's result. */
static int turn(const char *mode, json_object *be, int stream, deltas_t *d, be_turn_t *t,
                agent_res_t *res)
{
    up_t *u = up_new();
    int rc = turn_on(u, mode, be, stream, d, t, res);

    up_free(u);
    return rc;
}

/* A port on 127.0.0.1 that refuses connections (bound, never listening);
 * the caller closes *fd. */
static int refused_port(int *fd)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);

    *fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(*fd, (struct sockaddr *)&a, sizeof(a)), 0);
    getsockname(*fd, (struct sockaddr *)&a, &al);
    return ntohs(a.sin_port);
}

static void refused_port_is_502_naming_the_missing_key(void **state)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    json_object *be;
    agent_res_t res;
    be_turn_t t;
    (void)state;
    /* a bound socket that never listens: connecting to it is refused */
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    getsockname(fd, (struct sockaddr *)&a, &al);
    be = backend(ntohs(a.sin_port), 5, "");
    be_turn_init(&t, 1000);
    assert_true(turn("ok", be, 0, NULL, &t, &res) < 0);
    assert_int_equal(res.err.status, 502);
    assert_non_null(strstr(res.err.msg, "cannot reach upstream http://127.0.0.1:"));
    assert_non_null(strstr(res.err.msg, "(backend 'b1' has no api_key configured)"));
    be_turn_clear(&t);
    json_object_put(be);
    close(fd);
}

/* Issue 11: a base_url with credentials (userinfo, ?key=) appeared verbatim in
 * the 502 a /v1 client reads. */
static void credentials_in_base_url_stay_out_of_the_error(void **state)
{
    char s[256];
    json_object *be;
    agent_res_t res;
    be_turn_t t;
    int fd, port = refused_port(&fd);
    (void)state;
    snprintf(s, sizeof(s), "{\"kind\":\"openai\",\"base_url\":"
             "\"http://user:PASS@127.0.0.1:%d/v1?key=SECRET\",\"api_key\":\"k\",\"timeout\":5}",
             port);
    assert_non_null(be = json_tokener_parse(s));
    be_turn_init(&t, 1000);
    assert_true(turn("ok", be, 0, NULL, &t, &res) < 0);
    assert_int_equal(res.err.status, 502);
    assert_non_null(strstr(res.err.msg, "cannot reach upstream http://127.0.0.1:"));
    assert_null(strstr(res.err.msg, "PASS"));
    assert_null(strstr(res.err.msg, "SECRET"));
    assert_null(strstr(res.err.msg, "user"));
    be_turn_clear(&t);
    json_object_put(be);
    close(fd);
}

/* Issue 13 item 7: an upstream's `param` and `code` reach the client as
 * they were (they were dropped: the SDKs showed null for both). */
static void upstream_param_and_code_pass_through(void **state)
{
    json_object *be = backend(S.port, 5, "k");
    agent_res_t res;
    be_turn_t t;
    (void)state;
    be_turn_init(&t, 1000);
    assert_true(turn("json400words", be, 0, NULL, &t, &res) < 0);
    assert_int_equal(res.err.status, 400);
    assert_string_equal(res.err.type, "invalid_request_error");
    assert_string_equal(res.err.param, "tools");
    assert_string_equal(res.err.code, "array_above_max_length");
    assert_string_equal(res.err.msg, "Invalid 'tools': array too long.");
    be_turn_clear(&t);
    json_object_put(be);
}

/* Issue 11: an upstream error that echoes the backend's API key reaches the
 * client with the key masked. */
static void echoed_api_key_is_masked(void **state)
{
    json_object *be = backend(S.port, 5, "sk-live-abcdef123456");
    agent_res_t res;
    be_turn_t t;
    (void)state;
    be_turn_init(&t, 1000);
    assert_true(turn("json401echo", be, 0, NULL, &t, &res) < 0);
    assert_int_equal(res.err.status, 401);
    assert_null(strstr(res.err.msg, "sk-live-abcdef123456"));
    assert_string_equal(res.err.msg, "key *** is not valid; *** again");
    be_turn_clear(&t);
    json_object_put(be);
}

/* Issue 11: the kept handle's CURLOPT_ERRORBUFFER pointed at the stack of a
 * turn that had returned. Not observable from outside (curl_easy_reset drops
 * the pointer before the next transfer), so the buffer now belongs to the
 * handle's struct; this runs the path that uses it: turns on one kept handle,
 * each failure naming its own cause, never the text of an earlier one. */
static void kept_handle_error_text_is_per_turn(void **state)
{
    json_object *dead, *be = backend(S.port, 5, "k"), *nourl;
    up_t *u = up_new();
    agent_res_t res;
    be_turn_t t;
    int fd, port = refused_port(&fd);
    (void)state;
    dead = backend(port, 5, "k");
    nourl = json_tokener_parse("{\"kind\":\"openai\",\"api_key\":\"k\"}");
    be_turn_init(&t, 1000);
    assert_int_equal(turn_on(u, "ok", be, 0, NULL, &t, &res), 0);
    be_turn_clear(&t);
    be_turn_init(&t, 1000);
    assert_true(turn_on(u, "ok", dead, 0, NULL, &t, &res) < 0);
    assert_string_equal(res.err.code, "upstream_unreachable");
    be_turn_clear(&t);
    be_turn_init(&t, 1000);   /* fails before any transfer: curl is not called */
    assert_true(turn_on(u, "ok", nourl, 0, NULL, &t, &res) < 0);
    assert_string_equal(res.err.code, "backend_misconfigured");
    be_turn_clear(&t);
    be_turn_init(&t, 1000);
    assert_true(turn_on(u, "json_cut", be, 0, NULL, &t, &res) < 0);
    assert_int_equal(res.err.status, 502);
    assert_null(strstr(res.err.msg, "onnect"));   /* not the refused turn's text */
    be_turn_clear(&t);
    up_free(u);
    json_object_put(nourl);
    json_object_put(dead);
    json_object_put(be);
    close(fd);
}

/* Issue 11: a stream that stopped without finish_reason or [DONE] became a
 * turn with finish_reason "stop"; a cut whole body must be 502 as well. */
static void cut_answers_are_502(void **state)
{
    json_object *be = backend(S.port, 5, "k");
    agent_res_t res;
    be_turn_t t;
    deltas_t d = { .stop_after = 0 };
    (void)state;
    buf_init(&d.text, 1000);
    be_turn_init(&t, 1000);
    assert_true(turn("sse_cut", be, 1, &d, &t, &res) < 0);
    assert_int_equal(res.err.status, 502);
    assert_string_equal(res.err.code, "upstream_truncated");
    assert_non_null(strstr(res.err.msg, "cut"));
    assert_string_equal(buf_str(&d.text), "Hel");   /* what came was delivered */
    buf_free(&d.text);
    be_turn_clear(&t);
    be_turn_init(&t, 1000);
    assert_true(turn("json_cut", be, 0, NULL, &t, &res) < 0);
    assert_int_equal(res.err.status, 502);
    be_turn_clear(&t);
    json_object_put(be);
}

static void slow_server_is_504(void **state)
{
    json_object *be = backend(S.port, 1, "k");
    agent_res_t res;
    be_turn_t t;
    (void)state;
    be_turn_init(&t, 1000);
    assert_true(turn("slow", be, 0, NULL, &t, &res) < 0);
    assert_int_equal(res.err.status, 504);
    assert_string_equal(res.err.code, "upstream_timeout");
    be_turn_clear(&t);
    /* curl hung up on the timeout: the server saw the close */
    set_mode("ok");
    be_turn_init(&t, 1000);
    assert_int_equal(turn("ok", be, 0, NULL, &t, &res), 0);
    assert_true(closed_count() >= 1);
    be_turn_clear(&t);
    json_object_put(be);
}

static void upstream_500_passes_status_and_message(void **state)
{
    json_object *be = backend(S.port, 5, "k");
    agent_res_t res;
    be_turn_t t;
    deltas_t d = { .stop_after = 0 };
    (void)state;
    be_turn_init(&t, 1000);
    assert_true(turn("json500", be, 0, NULL, &t, &res) < 0);
    assert_int_equal(res.err.status, 500);
    assert_string_equal(res.err.msg, "model exploded");
    assert_string_equal(res.err.type, "server_error");
    assert_non_null(strstr(S.req, "Authorization: Bearer k"));
    assert_non_null(strstr(S.req, "POST /v1/chat/completions "));
    be_turn_clear(&t);
    /* the same error as JSON to a stream request */
    buf_init(&d.text, 1000);
    be_turn_init(&t, 1000);
    assert_true(turn("json400", be, 1, &d, &t, &res) < 0);
    assert_int_equal(res.err.status, 400);
    assert_string_equal(res.err.msg, "model exploded");
    assert_int_equal(d.text.len, 0);
    buf_free(&d.text);
    be_turn_clear(&t);
    json_object_put(be);
}

/* An upstream's invalid UTF-8 is not copied into our error: each ill-formed
 * part becomes U+FFFD, so the JSON we send stays valid. */
static void upstream_invalid_utf8_is_replaced(void **state)
{
    json_object *be = backend(S.port, 5, "k");
    agent_res_t res;
    be_turn_t t;
    (void)state;
    be_turn_init(&t, 1000);
    assert_true(turn("bytes502", be, 0, NULL, &t, &res) < 0);
    assert_int_equal(res.err.status, 502);
    assert_true(utf8_valid(res.err.msg, strlen(res.err.msg)));
    assert_non_null(strstr(res.err.msg, "bad \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD gate"));
    be_turn_clear(&t);
    json_object_put(be);
}

static void garbage_2xx_is_502(void **state)
{
    json_object *be = backend(S.port, 5, "k");
    agent_res_t res;
    be_turn_t t;
    (void)state;
    be_turn_init(&t, 1000);
    assert_true(turn("garbage", be, 0, NULL, &t, &res) < 0);
    assert_int_equal(res.err.status, 502);
    assert_non_null(strstr(res.err.msg, "not JSON"));
    be_turn_clear(&t);
    json_object_put(be);
}

static void whole_answer(void **state)
{
    json_object *be = backend(S.port, 5, "k");
    agent_res_t res;
    be_turn_t t;
    (void)state;
    be_turn_init(&t, 1000);
    assert_int_equal(turn("ok", be, 0, NULL, &t, &res), 0);
    assert_string_equal(buf_str(&t.content), "hi there");
    assert_string_equal(t.finish_reason, "stop");
    assert_int_equal(t.prompt_tokens + t.completion_tokens, 5);
    be_turn_clear(&t);
    json_object_put(be);
}

static void streamed_answer_with_and_without_done(void **state)
{
    const char *modes[] = { "sse", "sse_nodone" };
    json_object *be = backend(S.port, 5, "k");
    (void)state;
    for (size_t i = 0; i < 2; i++) {
        agent_res_t res;
        be_turn_t t;
        deltas_t d = { .stop_after = 0 };
        buf_init(&d.text, 1000);
        be_turn_init(&t, 1000);
        assert_int_equal(turn(modes[i], be, 1, &d, &t, &res), 0);
        assert_string_equal(buf_str(&d.text), "Hello");
        assert_string_equal(buf_str(&t.content), "Hello");
        assert_string_equal(t.finish_reason, "stop");
        assert_int_equal(t.prompt_tokens, 4);
        assert_non_null(strstr(S.req, "\"stream\":true"));
        buf_free(&d.text);
        be_turn_clear(&t);
    }
    json_object_put(be);
}

static void client_gone_aborts_the_transfer(void **state)
{
    json_object *be = backend(S.port, 30, "k");
    agent_res_t res;
    be_turn_t t;
    deltas_t d = { .stop_after = 1 };
    int before = closed_count();
    (void)state;
    buf_init(&d.text, 1000);
    be_turn_init(&t, 1000);
    assert_int_equal(turn("sse_hold", be, 1, &d, &t, &res), -ECONNABORTED);
    assert_int_equal(res.err.status, 499);
    assert_string_equal(buf_str(&d.text), "Hel");
    buf_free(&d.text);
    be_turn_clear(&t);
    json_object_put(be);
    /* the server sees the connection closed (it serves one connection at a
     * time, so the next answer comes only after the held one ended) */
    be = backend(S.port, 5, "k");
    be_turn_init(&t, 1000);
    assert_int_equal(turn("ok", be, 0, NULL, &t, &res), 0);
    assert_int_equal(closed_count(), before + 1);
    be_turn_clear(&t);
    json_object_put(be);
}

static int g_nreq_before;

/* The client "leaves" as soon as the server holds the request. */
static int alive_until_received(void *ud)
{
    int n;
    (void)ud;
    pthread_mutex_lock(&S.mu);
    n = S.nreq;
    pthread_mutex_unlock(&S.mu);
    return n == g_nreq_before;
}

static void alive_polled_while_upstream_is_silent(void **state)
{
    json_object *be = backend(S.port, 30, "k");
    json_object *req = json_tokener_parse("{\"model\":\"m\",\"messages\":[]}");
    up_t *u = up_new();
    agent_res_t res;
    be_turn_t t;
    up_call_t c;
    int before = closed_count();
    (void)state;
    set_mode("slow");
    pthread_mutex_lock(&S.mu);
    g_nreq_before = S.nreq;
    pthread_mutex_unlock(&S.mu);
    memset(&c, 0, sizeof(c));
    memset(&res, 0, sizeof(res));
    c.be = &be_openai;
    c.backend = be;
    c.req = req;
    c.alive = alive_until_received;
    be_turn_init(&t, 1000);
    assert_int_equal(up_turn(u, &c, &t, &res.err), -ECONNABORTED);
    assert_int_equal(res.err.status, 499);
    be_turn_clear(&t);
    /* the upstream connection was closed: the held request ended */
    be_turn_init(&t, 1000);
    assert_int_equal(turn("ok", be, 0, NULL, &t, &res), 0);
    assert_int_equal(closed_count(), before + 1);
    be_turn_clear(&t);
    up_free(u);
    json_object_put(req);
    json_object_put(be);
}

static void agent_hands_client_tool_calls_back(void **state)
{
    agent_t *ag = agent_new("redis://127.0.0.1:1/0", "test:");
    json_object *be = backend(S.port, 5, "k");
    json_object *as = json_tokener_parse("{\"model\":\"m\",\"backend\":\"b1\",\"mcp_servers\":[],"
                                         "\"max_tool_iterations\":8,\"system_prompt\":\"S\"}");
    json_object *body = json_tokener_parse(
        "{\"model\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"time?\"}],\"tools\":"
        "[{\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"parameters\":{}}}]}");
    agent_req_t rq = { .assistant_name = "a", .assistant = as, .backend = be, .body = body };
    agent_res_t res;
    json_object *calls = NULL;
    (void)state;
    set_mode("client_tool");
    assert_int_equal(agent_run(ag, &rq, &res), 0);
    assert_int_equal(res.status, 200);
    assert_string_equal(res.finish_reason, "tool_calls");
    assert_true(json_object_object_get_ex(res.message, "tool_calls", &calls));
    assert_int_equal(json_object_array_length(calls), 1);
    assert_non_null(strstr(S.req, "\"get_time\""));
    assert_non_null(strstr(S.req, "\"content\":\"S\""));
    agent_res_clear(&res);

    set_mode("ok");
    assert_int_equal(agent_run(ag, &rq, &res), 0);
    assert_string_equal(json_object_get_string(json_object_object_get(res.message, "content")),
                        "hi there");
    assert_int_equal(json_object_get_int(json_object_object_get(res.usage, "total_tokens")), 5);
    agent_res_clear(&res);

    set_mode("json500");
    assert_true(agent_run(ag, &rq, &res) < 0);
    assert_int_equal(res.status, 500);
    assert_null(res.message);
    agent_res_clear(&res);
    json_object_put(as);
    json_object_put(be);
    json_object_put(body);
    agent_free(ag);
}

static void agent_with_mcp_servers_but_no_broker_is_503(void **state)
{
    agent_t *ag = agent_new("redis://127.0.0.1:1/0", "test:");
    json_object *be = backend(S.port, 5, "k");
    json_object *as = json_tokener_parse("{\"model\":\"m\",\"backend\":\"b1\","
                                         "\"mcp_servers\":[\"calc\"],\"max_tool_iterations\":8}");
    json_object *servers = json_tokener_parse("{\"calc\":{\"transport\":\"stdio\",\"timeout\":2}}");
    json_object *body = json_tokener_parse("{\"messages\":[]}");
    agent_req_t rq = { .assistant_name = "a", .assistant = as, .backend = be, .body = body,
                       .mcp_servers = servers };
    agent_res_t res;
    (void)state;
    assert_true(agent_run(ag, &rq, &res) < 0);
    assert_int_equal(res.status, 503);   /* no broker, or no Redis behind it */
    assert_string_equal(res.err.type, "api_error");
    agent_res_clear(&res);
    json_object_put(as);
    json_object_put(be);
    json_object_put(servers);
    json_object_put(body);
    agent_free(ag);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(refused_port_is_502_naming_the_missing_key),
        cmocka_unit_test(credentials_in_base_url_stay_out_of_the_error),
        cmocka_unit_test(kept_handle_error_text_is_per_turn),
        cmocka_unit_test(echoed_api_key_is_masked),
        cmocka_unit_test(upstream_param_and_code_pass_through),
        cmocka_unit_test(cut_answers_are_502),
        cmocka_unit_test(slow_server_is_504),
        cmocka_unit_test(upstream_500_passes_status_and_message),
        cmocka_unit_test(upstream_invalid_utf8_is_replaced),
        cmocka_unit_test(garbage_2xx_is_502),
        cmocka_unit_test(whole_answer),
        cmocka_unit_test(streamed_answer_with_and_without_done),
        cmocka_unit_test(client_gone_aborts_the_transfer),
        cmocka_unit_test(alive_polled_while_upstream_is_silent),
        cmocka_unit_test(agent_hands_client_tool_calls_back),
        cmocka_unit_test(agent_with_mcp_servers_but_no_broker_is_503),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
