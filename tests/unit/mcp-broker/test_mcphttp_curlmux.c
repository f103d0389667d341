/* curlmux on a real libuv loop against an in-process HTTP server: done fires
 * once per transfer with the status; a removal outside curl is silent; a
 * removal from inside a write callback is deferred and reported as
 * CURLE_ABORTED_BY_CALLBACK; an add from inside a write callback works. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "mcp-broker/curlmux.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a tiny HTTP server: "/hang" never answers, anything else gets "hello" */

typedef struct conn {
    uv_tcp_t tcp;
    char req[2048];
    size_t len;
    int answered;
    uv_write_t wr;
} conn_t;

static uv_tcp_t server;
static int port;
static conn_t *conns[16];
static int nconns;

static void conn_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    conn_t *c = h->data;
    (void)hint;
    b->base = c->req + c->len;
    b->len = sizeof(c->req) - 1 - c->len;
}

static void on_written(uv_write_t *w, int status)
{
    int i;

    (void)status;
    for (i = 0; i < nconns; i++)
        if (conns[i] && &conns[i]->tcp == (uv_tcp_t *)w->handle)
            conns[i] = NULL;
    uv_close((uv_handle_t *)w->handle, conn_closed);   /* Connection: close */
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    static const char resp[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
    conn_t *c = s->data;
    uv_buf_t out = uv_buf_init((char *)resp, sizeof(resp) - 1);

    (void)b;
    if (n <= 0)
        return;
    c->len += (size_t)n;
    c->req[c->len] = '\0';
    if (c->answered || !strstr(c->req, "\r\n\r\n") || strstr(c->req, "GET /hang"))
        return;
    c->answered = 1;
    uv_write(&c->wr, s, &out, 1, on_written);
}

static void on_conn(uv_stream_t *srv, int status)
{
    conn_t *c = calloc(1, sizeof(*c));

    assert_int_equal(status, 0);
    assert_non_null(c);
    uv_tcp_init(srv->loop, &c->tcp);
    c->tcp.data = c;
    assert_int_equal(uv_accept(srv, (uv_stream_t *)&c->tcp), 0);
    assert_true(nconns < 16);
    conns[nconns++] = c;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void server_start(uv_loop_t *loop)
{
    struct sockaddr_in a;
    struct sockaddr_storage got;
    int len = sizeof(got);

    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_init(loop, &server), 0);
    assert_int_equal(uv_tcp_bind(&server, (const struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&server, 16, on_conn), 0);
    uv_tcp_getsockname(&server, (struct sockaddr *)&got, &len);
    port = ntohs(((struct sockaddr_in *)&got)->sin_port);
    nconns = 0;
}

static void server_stop(void)
{
    int i;

    for (i = 0; i < nconns; i++)
        if (conns[i])
            uv_close((uv_handle_t *)&conns[i]->tcp, conn_closed);
    uv_close((uv_handle_t *)&server, NULL);
}

/* ---- transfers */

typedef struct xfer {
    CURL *easy;
    curlmux_t *m;
    int done;
    CURLcode res;
    long status;
    char body[64];
    size_t len;
    int remove_in_write;    /* curlmux_remove from inside the write callback */
    int remove_rc;
    struct xfer *chain;     /* curlmux_add from inside the write callback */
} xfer_t;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    xfer_t *x = ud;
    size_t k = sz * n;

    if (x->len + k < sizeof(x->body)) {
        memcpy(x->body + x->len, p, k);
        x->len += k;
    }
    if (x->remove_in_write) {
        x->remove_in_write = 0;
        x->remove_rc = curlmux_remove(x->m, x->easy);
    }
    return k;
}

static void on_done(void *ud, CURL *easy, CURLcode res, long status);

static void xfer_init(xfer_t *x, curlmux_t *m, const char *path)
{
    char url[128];

    memset(x, 0, sizeof(*x));
    x->m = m;
    x->remove_rc = -1;
    x->easy = curl_easy_init();
    assert_non_null(x->easy);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    curl_easy_setopt(x->easy, CURLOPT_URL, url);
    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
}

static void on_done(void *ud, CURL *easy, CURLcode res, long status)
{
    xfer_t *x = ud;

    assert_ptr_equal(easy, x->easy);
    x->done++;
    x->res = res;
    x->status = status;
}

static size_t on_body_chain(char *p, size_t sz, size_t n, void *ud)
{
    xfer_t *x = ud;

    if (x->chain) {
        assert_int_equal(curlmux_add(x->m, x->chain->easy, on_done, x->chain), 0);
        x->chain = NULL;
    }
    return on_body(p, sz, n, ud);
}

static void on_guard(uv_timer_t *t)
{
    uv_stop(t->loop);
}

static void stop_when_done(uv_timer_t *t)
{
    xfer_t **xs = t->data;
    int i, all = 1;

    for (i = 0; xs[i]; i++)
        if (!xs[i]->done)
            all = 0;
    if (all)
        uv_stop(t->loop);
}

static int closed;

static void count_closed(uv_handle_t *h)
{
    (void)h;
    closed++;
}

/* Runs the loop until every transfer in the NULL-terminated list is done
 * (bounded: fails after 10 s). */
static void run_until_done(uv_loop_t *loop, xfer_t **xs)
{
    uv_timer_t poll, guard;
    uint64_t start = uv_now(loop);
    int i;

    uv_timer_init(loop, &poll);
    poll.data = xs;
    uv_timer_start(&poll, stop_when_done, 1, 1);
    uv_timer_init(loop, &guard);
    uv_timer_start(&guard, on_guard, 10000, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    assert_true(uv_now(loop) - start < 10000);
    closed = 0;
    uv_close((uv_handle_t *)&poll, count_closed);
    uv_close((uv_handle_t *)&guard, count_closed);
    for (i = 0; i < 100 && closed < 2; i++)
        uv_run(loop, UV_RUN_NOWAIT);   /* both handles live on this stack frame */
    assert_int_equal(closed, 2);
}

static void finish(uv_loop_t *loop, curlmux_t *m, xfer_t **xs)
{
    int i;

    for (i = 0; xs[i]; i++)
        curl_easy_cleanup(xs[i]->easy);
    curlmux_close(m);
    server_stop();
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void two_transfers(void **state)
{
    uv_loop_t loop;
    curlmux_t *m;
    xfer_t a, b;
    xfer_t *xs[] = {&a, &b, NULL};

    (void)state;
    uv_loop_init(&loop);
    server_start(&loop);
    m = curlmux_get(&loop);
    assert_non_null(m);
    assert_ptr_equal(curlmux_get(&loop), m);   /* one mux per loop */
    xfer_init(&a, m, "/a");
    xfer_init(&b, m, "/b");
    assert_int_equal(curlmux_add(m, a.easy, on_done, &a), 0);
    assert_int_equal(curlmux_add(m, b.easy, on_done, &b), 0);
    run_until_done(&loop, xs);
    assert_int_equal(a.done, 1);
    assert_int_equal(b.done, 1);
    assert_int_equal(a.res, CURLE_OK);
    assert_int_equal(a.status, 200);
    assert_string_equal(b.body, "hello");
    finish(&loop, m, xs);
}

static void remove_idle_is_silent(void **state)
{
    uv_loop_t loop;
    curlmux_t *m;
    xfer_t hang, ok;
    xfer_t *xs[] = {&ok, NULL}, *all[] = {&hang, &ok, NULL};

    (void)state;
    uv_loop_init(&loop);
    server_start(&loop);
    m = curlmux_get(&loop);
    xfer_init(&hang, m, "/hang");
    xfer_init(&ok, m, "/ok");
    assert_int_equal(curlmux_add(m, hang.easy, on_done, &hang), 0);
    assert_int_equal(curlmux_add(m, ok.easy, on_done, &ok), 0);
    run_until_done(&loop, xs);      /* by then /hang is connected and waiting */
    assert_int_equal(curlmux_remove(m, hang.easy), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    assert_int_equal(hang.done, 0);
    assert_int_equal(ok.done, 1);
    finish(&loop, m, all);
}

static void remove_and_add_from_write_callback(void **state)
{
    uv_loop_t loop;
    curlmux_t *m;
    xfer_t a, b;
    xfer_t *xs[] = {&a, &b, NULL};

    (void)state;
    uv_loop_init(&loop);
    server_start(&loop);
    m = curlmux_get(&loop);
    xfer_init(&a, m, "/a");
    xfer_init(&b, m, "/b");
    a.remove_in_write = 1;
    a.chain = &b;
    curl_easy_setopt(a.easy, CURLOPT_WRITEFUNCTION, on_body_chain);
    assert_int_equal(curlmux_add(m, a.easy, on_done, &a), 0);
    run_until_done(&loop, xs);
    assert_int_equal(a.remove_rc, 1);   /* deferred: curl was running */
    assert_int_equal(a.done, 1);
    assert_int_equal(a.res, CURLE_ABORTED_BY_CALLBACK);
    assert_int_equal(b.done, 1);        /* the add made inside curl happened */
    assert_int_equal(b.res, CURLE_OK);
    assert_string_equal(b.body, "hello");
    finish(&loop, m, xs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_transfers),
        cmocka_unit_test(remove_idle_is_silent),
        cmocka_unit_test(remove_and_add_from_write_callback),
    };
    int rc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
