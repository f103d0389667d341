/* serve — the per-request path of a responder thread. */
#include "fcgi/core/serve.h"
#include "shared/caps.h"

#include "agent/agent.h"

#include "fcgi/core/accesslog.h"
#include "fcgi/core/http.h"
#include "fcgi/core/route.h"
#include "shared/buf.h"
#include "shared/cfg.h"
#include "shared/log.h"
#include "shared/reqid.h"
#include "shared/rpool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>


struct serve_thread {
    const serve_cfg_t *cfg;
    FCGX_Request fcgx;
    int own_fcgx;           /* fcgx was initialised on a listen socket */
    int held;               /* this thread's log lines are held (log_hold) */
    arena_t *arena;
    svc_t svc;              /* lent to each handler; owned here */
};

serve_thread_t *serve_thread_new(const serve_cfg_t *cfg, int listen_fd)
{
    serve_thread_t *t = calloc(1, sizeof(*t)), *res = NULL;
    char err[256];

    if (!t)
        goto out;
    t->cfg = cfg;
    if (listen_fd >= 0) {
        if (FCGX_InitRequest(&t->fcgx, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0)
            goto out;
        t->own_fcgx = 1;
        /* a pool thread's access line per request goes out with others in
         * one write(2), not one each: a syscall the floor does not make */
        t->held = log_hold(1) == 0;
    }
    t->arena = arena_new(CAP_ARENA_BLOCK);
    t->svc.agent = agent_new(cfg->redis_url, cfg->prefix);
    if (!t->arena || !t->svc.agent)
        goto out;
    t->svc.mcpc = agent_broker(t->svc.agent);
    if (listen_fd < 0) {
        /* CGI: the one request opens and reads the registry (serve__refresh),
         * once; a snapshot to outlive Redis outages has no later request */
    } else if (reg_open_pool(&t->svc.reg, cfg->redis_url, cfg->prefix,
                                rpool_for(cfg->redis_url), err, sizeof(err)) != 0) {
        log_warn("responder thread: %s (retrying per request)", err);
        t->svc.reg = NULL;
    } else {
        reg_set_watch(t->svc.reg, cfg->watch);
        /* every thread holds a snapshot from the start, so that during a
         * Redis outage all of them can serve the last known registry */
        (void)reg_refresh(t->svc.reg);
    }
    res = t;
    t = NULL;
out:
    serve_thread_free(t);
    return res;
}

void serve_thread_free(serve_thread_t *t)
{
    if (!t)
        return;
    if (t->own_fcgx)
        FCGX_Free(&t->fcgx, 1);
    if (t->held)
        (void)log_hold(0);
    arena_free(t->arena);
    agent_free(t->svc.agent);
    reg_close(t->svc.reg);
    free(t);
}

int serve_accept(serve_thread_t *t)
{
    int rc = FCGX_Accept_r(&t->fcgx);

    return rc < 0 ? (rc == -9999 ? -EIO : rc) : 0;
}

/* Copies libfcgi's params into the arena: they die at the next accept. */
static int serve__params(http_req_t *req)
{
    size_t n = 0, i;
    char **envp = req->fcgx->envp;

    while (envp && envp[n])
        n++;
    req->params = arena_alloc(req->arena, (n + 1) * sizeof(char *));
    if (!req->params)
        return -ENOMEM;
    for (i = 0; i < n; i++) {
        req->params[i] = arena_strdup(req->arena, envp[i]);
        if (!req->params[i])
            return -ENOMEM;
    }
    req->params[n] = NULL;
    return 0;
}

/* Method, path (REQUEST_URI without the query; SCRIPT_NAME+PATH_INFO when a
 * server sends no REQUEST_URI; PATH_INFO alone, when set, with `path_info`:
 * CGI, where the script's own URL is the deployment's base) and query. */
static int serve__target(http_req_t *req, int path_info)
{
    const char *uri = http_param(req, "REQUEST_URI"), *q;
    const char *cgi_pi = path_info ? http_param(req, "PATH_INFO") : NULL;

    req->method = http_param(req, "REQUEST_METHOD");
    if (!req->method)
        req->method = "GET";
    req->query = http_param(req, "QUERY_STRING");
    if (cgi_pi && *cgi_pi) {
        req->path = cgi_pi;   /* what follows the script's URL */
    } else if (uri && *uri) {
        q = strchr(uri, '?');
        req->path = q ? arena_strndup(req->arena, uri, (size_t)(q - uri)) : uri;
        if (!req->query && q)
            req->query = q + 1;
    } else {
        const char *sn = http_param(req, "SCRIPT_NAME"), *pi = http_param(req, "PATH_INFO");
        size_t a = sn ? strlen(sn) : 0, b = pi ? strlen(pi) : 0;
        char *p = arena_alloc(req->arena, a + b + 2);
        if (!p)
            return -ENOMEM;
        memcpy(p, sn ? sn : "", a);
        memcpy(p + a, pi ? pi : "", b);
        if (a + b == 0)
            p[0] = '/';
        req->path = p;
    }
    if (!req->query)
        req->query = "";
    return req->path ? 0 : -ENOMEM;
}

/* A body of unknown length (no CONTENT_LENGTH: every GET, and chunked
 * uploads): read to EOF into a buffer that grows with what arrives, so a
 * bodiless request costs nothing and a long one stops at the cap. */
static int serve__body_to_eof(http_req_t *req, size_t max)
{
    char chunk[16384];
    buf_t b;
    int n, rc = 0;

    buf_init(&b, max);
    while ((n = FCGX_GetStr(chunk, (int)sizeof(chunk), req->fcgx->in)) > 0) {
        if ((rc = buf_append(&b, chunk, (size_t)n)) < 0) {
            rc = rc == -ENOSPC ? -EFBIG : rc;
            goto out;
        }
    }
    if (b.len) {
        req->body_len = b.len;
        req->body = buf_detach(&b);
        if (!req->body || arena_own_malloc(req->arena, (void *)req->body) < 0) {
            req->body = "";
            req->body_len = 0;
            rc = -ENOMEM;
        }
    }
out:
    buf_free(&b);
    return rc;
}

/* Reads the body: CONTENT_LENGTH bytes, or up to EOF when absent. Returns 0,
 * -EFBIG past the cap (nothing more is read), -EINVAL for a bad length,
 * -EIO when the body ends early, -ENOMEM. */
static int serve__body(http_req_t *req, size_t max)
{
    const char *cl = http_param(req, "CONTENT_LENGTH");
    size_t want, got = 0;
    char *p;

    req->body = "";
    req->body_len = 0;
    if (cl && *cl) {
        char *end;
        long long v;
        errno = 0;
        v = strtoll(cl, &end, 10);
        if (errno || *end || v < 0)
            return -EINVAL;
        if ((unsigned long long)v > max)
            return -EFBIG;
        want = (size_t)v;
    } else {
        return serve__body_to_eof(req, max);
    }
    if (want == 0)
        return 0;
    p = arena_alloc(req->arena, want + 1);
    if (!p)
        return -ENOMEM;
    while (got < want) {
        size_t chunk = want - got > (1u << 20) ? (1u << 20) : want - got;
        int n = FCGX_GetStr(p + got, (int)chunk, req->fcgx->in);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    if (got < want)
        return -EIO;
    p[got] = '\0';
    req->body = p;
    req->body_len = got;
    return 0;
}

/* CGI: Redis holds no registry; seed it from the config file now. Returns
 * reg_refresh's result, or -EINVAL when the file does not load (the reason
 * is logged: the answer names only the setting). */
static int serve__seed_from_file(serve_thread_t *t)
{
    json_object *doc = NULL;
    char err[1024];
    int rc;

    if (cfg_load_file(t->cfg->seed_path, &doc, err, sizeof(err)) != 0) {
        log_error("AIPROXY_CONFIG: %s", err);
        return -EINVAL;
    }
    reg_set_seed(t->svc.reg, json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN));
    rc = reg_refresh(t->svc.reg);
    reg_set_seed(t->svc.reg, NULL);
    json_object_put(doc);
    return rc;
}

/* Makes the thread's registry current; re-opens a lost connection. */
static int serve__refresh(serve_thread_t *t, int live)
{
    char err[256];
    int rc;

    if (!t->svc.reg) {
        if (reg_open_pool(&t->svc.reg, t->cfg->redis_url, t->cfg->prefix,
                          rpool_for(t->cfg->redis_url), err, sizeof(err)) != 0) {
            t->svc.reg = NULL;
            return -ECONNREFUSED;
        }
        reg_set_watch(t->svc.reg, t->cfg->watch);
    }
    /* started with -c: a registry lost with Redis is written back from it */
    reg_set_seed(t->svc.reg, t->cfg->seed_json);
    /* a live route (admin) reads the version itself: never a stale snapshot */
    rc = live ? reg_refresh_now(t->svc.reg) : reg_refresh(t->svc.reg);
    if (rc == -ENOENT && t->cfg->seed_path && !t->cfg->seed_json)
        rc = serve__seed_from_file(t);
    return rc;
}

/* An error the core answers for route `d` (NULL: no route matched), in the
 * route's surface's shape. */
static int serve__send_error(http_req_t *req, const route_def_t *d, const aip_err_t *e,
                             const char *headers)
{
    json_object *o;
    int rc;

    if (d && d->surface && d->surface->send_error)
        return d->surface->send_error(req, e, headers);
    o = http_error_json(e->status, e->type, e->code, e->param, http_err_msg(req, e->msg));
    if (!o)
        return http_send_err(req, e);
    rc = http_send_json(req, e->status, o, headers);
    json_object_put(o);
    return rc;
}

static int serve__redis_down(http_req_t *req, reg_t *reg, const route_def_t *d, int reg_rc)
{
    aip_err_t e;

    if (reg_rc == -ENOENT) {
        aip_err_set(&e, 503, "api_error", "registry_missing",
                    "Redis holds no registry: start aiproxy-fcgi with -c CONFIG (as CGI: set "
                    "AIPROXY_CONFIG) to seed it");
    } else if (reg_rc == -EINVAL) {
        aip_err_set(&e, 500, "api_error", "misconfigured",
                    "the gateway's configuration does not load (AIPROXY_CONFIG); the web "
                    "server's error log says why");
    } else {
        aip_err_set(&e, 503, "api_error", "redis_unavailable",
                    "the registry is unavailable: cannot reach Redis; retry when Redis is back");
        /* the Redis address stays out of an answer: the log has it */
        log_warn("registry unavailable: %s",
                 reg ? reg_errstr(reg) : "cannot reach Redis");
    }
    return serve__send_error(req, d, &e, NULL);
}

/* Redis is unreachable but this thread holds a registry snapshot: /v1 goes on
 * from it (edits cannot happen meanwhile anyway), so an outage of the
 * registry store does not stop plain chat. A ROUTE_REG_LIVE route (the admin
 * API) still refuses: its answers would be stale or its writes lost.
 * /health reports the outage. */
static int serve__stale_ok(reg_t *reg, const route_def_t *d, int reg_rc)
{
    static __thread long long warned_at;
    struct timespec ts;

    if (reg_rc == -ENOENT || reg_rc == -EINVAL || (d->flags & ROUTE_REG_LIVE) || !reg ||
        !reg_doc(reg))
        return 0;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (ts.tv_sec - warned_at >= 10) {
        warned_at = ts.tv_sec;
        log_warn("Redis unreachable (%s): serving the last known registry (version %lld)",
                 reg_errstr(reg), reg_version(reg));
    }
    return 1;
}

/* May the route run with what the registry refresh returned? */
static int serve__registry_ok(reg_t *reg, const route_def_t *d, int reg_rc)
{
    if (reg_rc == 0 || (d->flags & ROUTE_REG_ANY))
        return 1;
    if (reg_rc == -ENOENT && (d->flags & ROUTE_REG_LIVE))
        return 1;
    return serve__stale_ok(reg, d, reg_rc);
}

/* Answers without reading the body first (a request refused from its
 * headers). Whatever body follows is drained after the answer went out
 * (serve__drain), unless the request carries none (Content-Length 0, or none
 * on a GET/HEAD). */
static void serve__skip_body(http_req_t *req)
{
    const char *cl = http_param(req, "CONTENT_LENGTH");

    if (cl && *cl ? strcmp(cl, "0") == 0
                  : strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0)
        return;
    req->body_skipped = 1;
}

/* After an answer given without reading the body: read and drop the body if
 * it is already at hand, so the kept-alive FastCGI connection stays usable.
 * Closing it instead races the web server, which may hand the next request
 * to the cached connection we are closing (nginx answers that request 502
 * and does not retry a POST). Behind a web server that buffers bodies (the
 * shipped nginx and lighttpd configs) the body follows the params at once.
 * libfcgi may already hold it in its own buffer, so the socket cannot be
 * polled: each read gets a short receive timeout instead, and a body that is
 * not all there within SERVE_DRAIN_MS (a slow client behind a web server
 * that streams bodies) costs the connection instead of the thread. */
#define SERVE_DRAIN_MS 200
static void serve__drain(http_req_t *req, size_t max_body)
{
    FCGX_Stream *in = req->fcgx->in;
    const char *cl = http_param(req, "CONTENT_LENGTH");
    struct timeval tv = { 0, 50 * 1000 }, none = { 0, 0 };
    struct timespec t0, now;
    char scratch[16384];
    size_t total = 0;
    int n;

    if (cl && *cl) {
        char *end;
        unsigned long long v;
        errno = 0;
        v = strtoull(cl, &end, 10);
        if (errno || *end || v > max_body)
            goto close;
    }
    if (FCGX_FFlush(req->fcgx->out) != 0)   /* the client has its answer before we wait */
        goto close;
    if (setsockopt(req->fcgx->ipcFd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0)
        goto close;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        /* only what is buffered (FCGX_GetStr waits for all it is asked), or
         * one byte, which reads the next record */
        n = (int)(in->stop - in->rdNext);
        n = FCGX_GetStr(scratch, n > 0 ? (n < (int)sizeof(scratch) ? n : (int)sizeof(scratch)) : 1,
                        in);
        if (n <= 0)
            break;
        total += (size_t)n;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (total > max_body ||
            (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000 > SERVE_DRAIN_MS)
            goto close;
    }
    /* the end of the body (0 and no error): the connection stays good */
    if (FCGX_GetError(in) != 0 ||
        setsockopt(req->fcgx->ipcFd, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof(none)) != 0)
        goto close;
    return;
close:
    req->fcgx->keepConnection = 0;
}

/* The pool is saturated with long requests: a fast 503 the client can retry,
 * in the route's shape, instead of a wait behind streams. */
static void serve__overloaded(http_req_t *req, const route_def_t *d)
{
    aip_err_t e;

    aip_err_set(&e, 503, "server_error", "overloaded",
                "the gateway is at capacity (every responder thread that may serve a "
                "completion is busy); retry in a moment");
    serve__send_error(req, d, &e, "Retry-After: 1\r\n");
}

static int serve__read_body(http_req_t *req, const route_def_t *d, size_t max_body)
{
    int rc = serve__body(req, max_body);
    aip_err_t e;

    if (rc == 0)
        return 0;
    /* Unread input would poison a kept-alive connection: close it. */
    req->fcgx->keepConnection = 0;
    if (rc == -EFBIG)
        aip_err_set(&e, 413, NULL, "request_too_large",
                    "the request body is larger than %zu bytes (AIPROXY_MAX_BODY)", max_body);
    else
        aip_err_set(&e, 400, NULL, NULL, "the request body could not be read (%s)",
                    rc == -EINVAL ? "bad Content-Length" : "it ended early");
    serve__send_error(req, d, &e, NULL);
    return rc;
}

/* The gates after the credential check (limits): the first that refuses
 * answers in the route's shape, before admission and the body. */
static int serve__gate(serve_thread_t *t, http_req_t *req, const route_t *r)
{
    aip_err_t e;

    for (const route_gate_fn *g = t->cfg->gate; g && *g; g++) {
        aip_err_clear(&e);
        if ((*g)(req, r, &t->svc, &e) != 0) {
            serve__skip_body(req);
            if (!aip_err_is_set(&e))
                aip_err_set(&e, 500, "api_error", NULL, "the request was refused");
            serve__send_error(req, r->def, &e, NULL);
            return -EACCES;
        }
    }
    return 0;
}

/* No route: 404, or 405 with every method the path takes in Allow. */
static void serve__no_route(http_req_t *req, const route_t *r)
{
    char allow[ROUTE_ALLOW_MAX + 16];
    aip_err_t e;

    serve__skip_body(req);
    if (r->status == 405) {
        snprintf(allow, sizeof(allow), "Allow: %s\r\n", r->allow);
        aip_err_set(&e, 405, NULL, "method_not_allowed", "%s is not allowed on %s; use %s",
                    req->method, req->path, r->allow);
        serve__send_error(req, NULL, &e, allow);
    } else {
        aip_err_set(&e, 404, NULL, "unknown_route", "no route %s %s; GET / lists the endpoints",
                    req->method, req->path);
        serve__send_error(req, NULL, &e, NULL);
    }
}

/* Route, registry, credentials, admission, and only then the body: a client
 * that sends no valid key, or arrives while the pool is full, is answered
 * from its headers and never holds a thread for its upload. Every step reads
 * the matched entry of the route table; none names a route. */
static void serve__dispatch(serve_thread_t *t, http_req_t *req, size_t max_body)
{
    route_t r;
    const route_def_t *d;
    int admitted = 0;

    if (route_find(t->cfg->routes, req->method, req->path, &r) != 0) {
        serve__no_route(req, &r);
        return;
    }
    d = r.def;
    req->info.route = d->path;
    r.reg_rc = serve__refresh(t, (d->flags & ROUTE_REG_LIVE) != 0);
    if (!serve__registry_ok(t->svc.reg, d, r.reg_rc)) {
        serve__skip_body(req);
        serve__redis_down(req, t->svc.reg, d, r.reg_rc);
        return;
    }
    if (d->needs_auth && d->surface && d->surface->authorize(req, &t->svc) != 0) {
        serve__skip_body(req);
        return;
    }
    if (d->needs_auth && serve__gate(t, req, &r) != 0)
        return;
    if (d->flags & ROUTE_LONG) {
        if (admit_enter(t->cfg->admit) != 0) {
            serve__skip_body(req);
            serve__overloaded(req, d);
            return;
        }
        admitted = 1;
    }
    if (d->flags & ROUTE_NO_BODY)
        serve__skip_body(req);
    else if (serve__read_body(req, d, max_body) != 0)
        goto out;
    d->handler(req, &r, &t->svc);
out:
    if (admitted)
        admit_leave(t->cfg->admit);
}

/* The request's id, before anything can answer: the client's X-Request-Id
 * when it is one we may echo, else a new one; on every answer (the header),
 * and on every line the thread logs until serve__after is done. */
static void serve__request_id(http_req_t *req)
{
    (void)reqid_take(req->params ? http_header(req, "X-Request-Id") : NULL, req->info.id);
    (void)http_add_header(req, "X-Request-Id", "%s", req->info.id);
    log_set_request(req->info.id);
}

/* One request on `fcgx`, answered; the caller finishes it and then runs
 * serve__after. */
static void serve__answer(serve_thread_t *t, FCGX_Request *fcgx, http_req_t *req)
{
    int rc;

    memset(req, 0, sizeof(*req));
    req->info.t0_us = reqinfo_now_us();
    req->arena = t->arena;
    req->fcgx = fcgx;
    req->method = "-";
    req->path = "-";
    req->query = "";
    req->body = "";
    rc = serve__params(req);
    serve__request_id(req);
    if (rc != 0 || serve__target(req, t->cfg->path_info) != 0)
        http_send_error(req, 500, NULL, NULL, NULL, "out of memory reading the request");
    else
        serve__dispatch(t, req, t->cfg->max_body);
    if (!req->headers_sent && !req->client_gone)
        http_send_error(req, 500, NULL, NULL, NULL, "the request got no answer");
    if (req->status >= 400)
        req->info.failed = 1;
    for (const route_hook_fn *f = t->cfg->end; f && *f; f++)
        (*f)(req, &t->svc);
    /* a CGI process ends with its request: nothing to keep usable */
    if (req->body_skipped && fcgx->ipcFd >= 0) {
        if (req->client_gone)
            req->fcgx->keepConnection = 0;
        else
            serve__drain(req, t->cfg->max_body);
    }
}

/* The request is finished (the client has its answer): the access log and
 * the after-hooks, off the answer's critical path. */
static void serve__after(serve_thread_t *t, const http_req_t *req)
{
    accesslog_write(req);
    for (const route_hook_fn *f = t->cfg->after; f && *f; f++)
        (*f)(req, &t->svc);
    log_set_request(NULL);   /* req->info.id dies with the request */
}

void serve_handle(serve_thread_t *t)
{
    http_req_t req;

    serve__answer(t, &t->fcgx, &req);
    FCGX_Finish_r(&t->fcgx);
    serve__after(t, &req);
    arena_reset(t->arena);
}

void serve_handle_req(serve_thread_t *t, FCGX_Request *r)
{
    http_req_t req;

    serve__answer(t, r, &req);
    serve__after(t, &req);
    arena_reset(t->arena);
}
