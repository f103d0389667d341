/* route — the responder's routes as one table of hooks, and what is derived
 * from it with no I/O (a parser: unit tests drive it): the match for a method
 * and path, the 405 Allow value, the 404, and the GET / index.
 *
 * The table itself is fcgi/routes.c, the one place that names every route;
 * the core (serve.c) never names a route or a surface: it reads the matched
 * entry's fields. docs/responder.md, "How to add a route". */
#ifndef AIPROXY_ROUTE_H
#define AIPROXY_ROUTE_H

#include "fcgi/core/http.h"
#include "shared/caps.h"
#include "fcgi/core/svc.h"

#include <json-c/json.h>
#include <stddef.h>

/* Methods, as a mask. HEAD is GET without the body (RFC 9110 9.3.2): it
 * matches every GET route and http.c sends the headers only. */
enum {
    ROUTE_GET    = 1u << 0,
    ROUTE_POST   = 1u << 1,
    ROUTE_PUT    = 1u << 2,
    ROUTE_PATCH  = 1u << 3,
    ROUTE_DELETE = 1u << 4,
    ROUTE_ANY    = ~0u,     /* every method, unknown ones too (the route sorts them out) */
};

/* What the core does around the handler. */
enum {
    ROUTE_LONG    = 1u << 0, /* a completion: admitted (admit.h), may hold a thread for minutes */
    ROUTE_NO_BODY = 1u << 1, /* the body is never read (the connection is closed if one came) */
    ROUTE_REG_ANY = 1u << 2, /* runs whatever the registry's state; route_t.reg_rc says it */
    ROUTE_REG_LIVE = 1u << 3,/* never from a stale snapshot while Redis is down (answers would
                              * be stale, writes lost), but runs when Redis holds no registry
                              * yet (it may write the first) */
};

struct complete_surface;   /* core/complete.h */

/* An API surface as the core sees it: whose credential check guards it,
 * what its errors look like and, for completions, its translation. Defined
 * by the surface's folder (openai/, anthropic/, admin/), static, shared by
 * all threads. */
typedef struct route_surface {
    const char *name;       /* "openai", "anthropic", "admin": for logs and tests */
    /* The credential check of a route with needs_auth: 0 to go on, or answers
     * 401/403 in this surface's shape itself and returns -EACCES. */
    int (*authorize)(http_req_t *req, svc_t *svc);
    /* Sends `e` in this surface's shape: an error the core answers before
     * or instead of the handler (503 registry down or overloaded, 413, 400
     * unreadable body), and every error of the completion runner
     * (core/complete.c). `headers`: extra header lines each ending in
     * "\r\n", or NULL. Returns as http_send. NULL: OpenAI's
     * {"error":{"message","type","param","code"}}. */
    int (*send_error)(http_req_t *req, const aip_err_t *e, const char *headers);
    /* A completion surface's translation hooks (core/complete.h), run by
     * complete_handle; NULL for a surface without completion routes. */
    const struct complete_surface *complete;
} route_surface_t;

struct route;

/* A route's answer, given the request, its match and the thread's services.
 * Returns 0, or -EPIPE when the client went away. The registry snapshot
 * (svc->reg) is fresh when it runs, unless the route has ROUTE_REG_ANY or
 * Redis is down and a snapshot is served. */
typedef int (*route_handler_fn)(http_req_t *req, const struct route *r, svc_t *svc);

/* One entry of the table. `path` is exact ("/health"), or ends in "/{name}"
 * (one non-empty rest of the path, given to the handler as route_t.arg), or
 * in "/..." (the prefix itself and everything under it). The table ends with
 * an entry whose path is NULL. */
typedef struct route_def {
    unsigned methods;               /* ROUTE_GET | ..., or ROUTE_ANY */
    const char *path;
    int needs_auth;                 /* run surface->authorize before the body is read */
    const route_surface_t *surface; /* NULL: the core's (OpenAI-shaped) errors, no credential */
    unsigned flags;                 /* ROUTE_LONG | ROUTE_NO_BODY | ... */
    route_handler_fn handler;
    const char *what;               /* one line for the GET / index */
} route_def_t;

/* Runs once a request is answered, at one of two moments (serve_cfg_t):
 * `end`, when the answer is written but before the request is finished
 * (the client cannot yet send its next request on the strength of this
 * answer: what the next one must see, like a released concurrency slot or
 * charged tokens, belongs here; keep it to one Redis round trip), and
 * `after`, once it is finished (metrics, logs: off the critical path).
 * `req` and its arena are valid; nothing can be sent. NULL-ended arrays of
 * these are fcgi/routes.c's routes_end and routes_after. */
typedef void (*route_hook_fn)(const http_req_t *req, svc_t *svc);

/* Runs after the credential check of a route with needs_auth, before
 * admission and the body: 0 lets the request go on; non-zero refuses it
 * with *e (e.g. 429), which the core sends in the route's surface's shape
 * with the request's resp_headers (Retry-After: add it with
 * http_add_header). NULL-ended array: serve_cfg_t.gate (fcgi/routes.c:
 * routes_gate). */
typedef int (*route_gate_fn)(http_req_t *req, const struct route *r, svc_t *svc, aip_err_t *e);

#define ROUTE_ALLOW_MAX CAP_ROUTE_ALLOW

/* A match (or why there is none). */
typedef struct route {
    const route_def_t *table;  /* the table searched (GET / lists it) */
    const route_def_t *def;    /* the matched entry; NULL when status != 0 */
    int status;                /* 0 on a match, else 404 (unknown path) or 405 (wrong method) */
    char allow[ROUTE_ALLOW_MAX]; /* 405: the Allow value, every method the path takes,
                                  * e.g. "GET, HEAD" */
    const char *arg;           /* a "/{name}" route: the rest of the path (points into path) */
    size_t arg_len;
    int reg_rc;                /* set by the core: the registry refresh's result (0, -ENOENT
                                * when Redis holds no registry, another code when unreachable) */
} route_t;

/* Matches `method` and `path` (no query string) against `table`, first match
 * wins; HEAD matches the GET routes. Always fills *out; returns 0 on a match,
 * -ENOENT (status 404) or -EINVAL (status 405, allow set). Pure. */
int route_find(const route_def_t *table, const char *method, const char *path, route_t *out);

/* The methods of `mask` as a header value into buf ("GET, HEAD, POST"; "*"
 * for ROUTE_ANY); `with_head` adds HEAD after GET. Returns buf. */
const char *route_methods(unsigned mask, int with_head, char *buf, size_t len);

/* The GET / index of `table`: {"name","description","endpoints":[{method,
 * path, description}, ...]}, one endpoint per entry in table order. Caller
 * owns the result; NULL on ENOMEM. Pure. */
json_object *route_index_json(const route_def_t *table);

#endif
