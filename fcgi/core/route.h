/* route — method + path to handler, with no I/O (a parser: unit tests drive it).
 *
 * The table is the whole HTTP surface of the responder; GET / lists it. */
#ifndef AIPROXY_ROUTE_H
#define AIPROXY_ROUTE_H

#include <stddef.h>

typedef enum route_id {
    ROUTE_NONE = 0,    /* no match: see route_t.status (404 or 405) */
    ROUTE_INDEX,       /* GET / */
    ROUTE_HEALTH,      /* GET /health */
    ROUTE_MODELS,      /* GET /v1/models */
    ROUTE_MODEL,       /* GET /v1/models/{id} */
    ROUTE_CHAT,        /* POST /v1/chat/completions */
    ROUTE_MESSAGES,    /* POST /v1/messages (Anthropic's Messages API) */
    ROUTE_ADMIN,       /* any method on /admin and /admin/... (admin.c answers) */
} route_id_t;

typedef struct route {
    route_id_t id;
    int status;          /* 0 on a match, else 404 (unknown path) or 405 (wrong method) */
    const char *allow;   /* 405: the Allow header value, e.g. "GET, HEAD"; static */
    int needs_auth;      /* /v1/...: auth_check first */
    const char *arg;     /* ROUTE_MODEL: the {id} part of the path (points into path) */
    size_t arg_len;
} route_t;

/* Matches `method` and `path` (no query string); HEAD matches the GET routes.
 * Always fills *out; returns 0 on a match, -ENOENT (status 404) or -EINVAL
 * (status 405, allow set, e.g. "GET, HEAD"). */
int route_find(const char *method, const char *path, route_t *out);

/* One entry of the endpoint index (GET /): NULL-terminated, static. */
typedef struct route_doc {
    const char *method;
    const char *path;
    const char *what;
} route_doc_t;

const route_doc_t *route_index(void);

#endif
