/* bmetrics — the broker's metrics listener (see bmetrics.h). One request
 * per connection: read up to the end of the headers (capped), answer,
 * close. A slow or silent peer holds only its own small connection. */
#include "mcp-broker/bmetrics.h"

#include "mcp-broker/server.h"
#include "shared/log.h"
#include "shared/mtext.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BMETRICS_REQ_MAX   8192        /* request line and headers */
#define BMETRICS_TEXT_MAX  (4u << 20)
#define BMETRICS_CONNS_MAX 64          /* scrapes open at once; more are closed at once */

typedef struct bmetrics_conn {
    uv_tcp_t tcp;
    uv_write_t w;
    struct bmetrics *m;
    struct bmetrics_conn *next;
    char in[BMETRICS_REQ_MAX];
    size_t len;
    char *out;                 /* the answer, while it is written */
    int answered;
} bmetrics_conn_t;

struct bmetrics {
    uv_tcp_t listener;
    broker_t *broker;
    bmetrics_conn_t *conns;
    int nconns, stopping, handles;   /* handles: listener + conns not yet closed */
};

static const char *const bmetrics__outcomes[SERVER_OUT__N] = {
    "ok", "tool_error", "timeout", "server_down", "cancelled" };
static const char *const bmetrics__states[] = { "ready", "starting", "backoff", "idle" };

/* One gauge or counter sample with up to two labels. */
static int bmetrics__sample(buf_t *b, const char *name, const char *l1, const char *v1,
                            const char *l2, const char *v2, unsigned long long v)
{
    const char *ln[2] = { l1, l2 }, *lv[2] = { v1, v2 };
    char s[32];

    snprintf(s, sizeof s, "%llu", v);
    return mtext_sample(b, name, ln, lv, l2 ? 2 : l1 ? 1 : 0, s);
}

int bmetrics_render(buf_t *b, struct server *servers)
{
    server_stats_t st;
    server_t *s;
    unsigned long long leases = 0;
    int rc;

    rc = mtext_family(b, "aiproxy_broker_sessions", "gauge",
                      "MCP sessions of this broker by server and state (1 for the current state).");
    for (s = servers; s && !rc; s = server_next(s)) {
        server_stats(s, &st);
        for (size_t i = 0; i < sizeof bmetrics__states / sizeof *bmetrics__states && !rc; i++)
            rc = bmetrics__sample(b, "aiproxy_broker_sessions", "server", server_name(s), "state",
                                  bmetrics__states[i], strcmp(st.state, bmetrics__states[i]) == 0);
        leases += st.owned != 0;
    }
    if (!rc)
        rc = mtext_family(b, "aiproxy_broker_restarts_total", "counter",
                          "Session starts after the first, by server (crashes, failed starts, "
                          "settings changed).");
    for (s = servers; s && !rc; s = server_next(s)) {
        server_stats(s, &st);
        rc = bmetrics__sample(b, "aiproxy_broker_restarts_total", "server", server_name(s), NULL,
                              NULL, st.restarts);
    }
    if (!rc)
        rc = mtext_family(b, "aiproxy_broker_calls_total", "counter",
                          "Tool calls by server and outcome (ok, tool_error, timeout, server_down, "
                          "cancelled).");
    for (s = servers; s && !rc; s = server_next(s)) {
        server_stats(s, &st);
        for (int o = 0; o < SERVER_OUT__N && !rc; o++)
            rc = bmetrics__sample(b, "aiproxy_broker_calls_total", "server", server_name(s),
                                  "outcome", bmetrics__outcomes[o], st.calls[o]);
    }
    if (!rc)
        rc = mtext_family(b, "aiproxy_broker_calls_in_flight", "gauge",
                          "Tool calls running on a session now, by server.");
    for (s = servers; s && !rc; s = server_next(s)) {
        server_stats(s, &st);
        rc = bmetrics__sample(b, "aiproxy_broker_calls_in_flight", "server", server_name(s), NULL,
                              NULL, (unsigned long long)st.in_flight);
    }
    if (!rc)
        rc = mtext_family(b, "aiproxy_broker_call_duration_seconds", "histogram",
                          "Answered tool calls, from the request to the answer, by server.");
    for (s = servers; s && !rc; s = server_next(s)) {
        const char *ln[1] = { "server" }, *lv[1];
        uint64_t counts[SERVER_DUR_BUCKETS + 1];
        server_stats(s, &st);
        lv[0] = server_name(s);
        for (int i = 0; i <= SERVER_DUR_BUCKETS; i++)
            counts[i] = st.dur[i];
        rc = mtext_histogram(b, "aiproxy_broker_call_duration_seconds", ln, lv, 1, st.bounds,
                             SERVER_DUR_BUCKETS, counts, st.dur_sum);
    }
    if (!rc)
        rc = mtext_family(b, "aiproxy_broker_leases_held", "gauge",
                          "MCP servers whose lease this broker holds (it runs their sessions).");
    if (!rc)
        rc = bmetrics__sample(b, "aiproxy_broker_leases_held", NULL, NULL, NULL, NULL, leases);
    return rc;
}

static void bmetrics__freed(bmetrics_t *m)
{
    if (--m->handles == 0)
        free(m);
}

static void bmetrics__conn_closed(uv_handle_t *h)
{
    bmetrics_conn_t *c = h->data;
    bmetrics_t *m = c->m;

    for (bmetrics_conn_t **pp = &m->conns; *pp; pp = &(*pp)->next)
        if (*pp == c) {
            *pp = c->next;
            break;
        }
    m->nconns--;
    free(c->out);
    free(c);
    bmetrics__freed(m);
}

static void bmetrics__close(bmetrics_conn_t *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, bmetrics__conn_closed);
}

static void bmetrics__written(uv_write_t *w, int status)
{
    bmetrics__close(w->data);
}

/* The answer to the request head in c->in. */
static void bmetrics__answer(bmetrics_conn_t *c)
{
    int get = strncmp(c->in, "GET /metrics ", 13) == 0 || strncmp(c->in, "GET /metrics?", 13) == 0;
    const char *status = "404 Not Found", *ctype = "text/plain; charset=utf-8";
    buf_t body, all;
    uv_buf_t ub;

    c->answered = 1;
    buf_init(&body, BMETRICS_TEXT_MAX);
    buf_init(&all, BMETRICS_TEXT_MAX + 512);
    if (get && bmetrics_render(&body, broker_servers(c->m->broker)) == 0) {
        status = "200 OK";
        ctype = MTEXT_CONTENT_TYPE;
    } else {
        buf_reset(&body);
        (void)buf_puts(&body, get ? "the metrics text could not be built\n"
                                  : "GET /metrics is the one thing served here\n");
        if (get)
            status = "500 Internal Server Error";
    }
    if (buf_printf(&all, "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\n\r\n", status, ctype, body.len) != 0 ||
        buf_append(&all, body.data ? body.data : "", body.len) != 0 ||
        !(c->out = buf_detach(&all))) {
        buf_free(&body);
        buf_free(&all);
        bmetrics__close(c);
        return;
    }
    ub = uv_buf_init(c->out, (unsigned)strlen(c->out));
    c->w.data = c;
    if (uv_write(&c->w, (uv_stream_t *)&c->tcp, &ub, 1, bmetrics__written) != 0)
        bmetrics__close(c);
    buf_free(&body);
    buf_free(&all);
}

static void bmetrics__alloc(uv_handle_t *h, size_t want, uv_buf_t *out)
{
    bmetrics_conn_t *c = h->data;

    *out = uv_buf_init(c->in + c->len, (unsigned)(sizeof c->in - 1 - c->len));
}

static void bmetrics__read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    bmetrics_conn_t *c = st->data;

    if (n < 0 || c->answered) {
        if (n < 0 && !c->answered)
            bmetrics__close(c);
        return;
    }
    c->len += (size_t)n;
    c->in[c->len] = '\0';
    if (strstr(c->in, "\r\n\r\n") || strstr(c->in, "\n\n")) {
        uv_read_stop(st);
        bmetrics__answer(c);
    } else if (c->len >= sizeof c->in - 1) {
        bmetrics__close(c);   /* a head that large is no scrape */
    }
}

static void bmetrics__on_conn(uv_stream_t *l, int status)
{
    bmetrics_t *m = l->data;
    bmetrics_conn_t *c;

    if (status < 0 || m->stopping)
        return;
    c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->m = m;
    uv_tcp_init(l->loop, &c->tcp);
    c->tcp.data = c;
    c->next = m->conns;
    m->conns = c;
    m->nconns++;
    m->handles++;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0 || m->nconns > BMETRICS_CONNS_MAX ||
        uv_read_start((uv_stream_t *)&c->tcp, bmetrics__alloc, bmetrics__read) != 0)
        bmetrics__close(c);
}

static void bmetrics__listener_closed(uv_handle_t *h)
{
    bmetrics__freed(h->data);
}

/* "HOST:PORT" or "[V6]:PORT" into addr. */
static int bmetrics__addr(const char *hp, struct sockaddr_storage *addr)
{
    char host[128];
    const char *colon = strrchr(hp, ':');
    char *end;
    long port;
    size_t hl;

    if (!colon || colon == hp)
        return -EINVAL;
    port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535)
        return -EINVAL;
    hl = (size_t)(colon - hp);
    if (hp[0] == '[' && hl >= 2 && hp[hl - 1] == ']') {
        hp++;
        hl -= 2;
    }
    if (hl == 0 || hl >= sizeof host)
        return -EINVAL;
    memcpy(host, hp, hl);
    host[hl] = '\0';
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)addr) == 0)
        return 0;
    return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)addr) == 0 ? 0 : -EINVAL;
}

bmetrics_t *bmetrics_start(uv_loop_t *loop, broker_t *broker, const char *hostport, char *err,
                           size_t errlen)
{
    struct sockaddr_storage addr;
    bmetrics_t *m = NULL;
    int rc;

    memset(&addr, 0, sizeof addr);
    if (bmetrics__addr(hostport, &addr) != 0) {
        snprintf(err, errlen, "metrics listener %s: want HOST:PORT (an IP address)", hostport);
        return NULL;
    }
    m = calloc(1, sizeof(*m));
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    m->broker = broker;
    m->handles = 1;
    uv_tcp_init(loop, &m->listener);
    m->listener.data = m;
    if ((rc = uv_tcp_bind(&m->listener, (const struct sockaddr *)&addr, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&m->listener, 64, bmetrics__on_conn)) != 0) {
        snprintf(err, errlen, "metrics listener %s: %s", hostport, uv_strerror(rc));
        m->stopping = 1;
        uv_close((uv_handle_t *)&m->listener, bmetrics__listener_closed);
        return NULL;
    }
    log_info("metrics on http://%s/metrics", hostport);
    return m;
}

void bmetrics_stop(bmetrics_t *m)
{
    if (!m || m->stopping)
        return;
    m->stopping = 1;
    for (bmetrics_conn_t *c = m->conns; c; c = c->next)
        bmetrics__close(c);
    uv_close((uv_handle_t *)&m->listener, bmetrics__listener_closed);
}
