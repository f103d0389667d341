/* serve — one responder thread's requests: accept, copy the params into the
 * arena, route, refresh the registry, check the credentials, admit (long
 * routes), read the body (capped), answer, log, finish, reset. The body is
 * read last so that a client without a key, or one the pool has no room
 * for, never holds a thread while it uploads. */
#ifndef AIPROXY_SERVE_H
#define AIPROXY_SERVE_H

#include "fcgi/core/admit.h"
#include "fcgi/core/route.h"

#include <stddef.h>

typedef struct serve_cfg {
    size_t max_body;          /* AIPROXY_MAX_BODY */
    const char *redis_url;    /* borrowed, outlives every thread */
    const char *prefix;
    const char *seed_json;    /* borrowed: -c's document as JSON, heals a lost registry; or NULL */
    /* CGI: the config file (AIPROXY_CONFIG) to seed from, read only when
     * Redis holds no registry: the common request does not parse it. */
    const char *seed_path;
    admit_t *admit;           /* the worker's admission control; NULL = none */
    const route_def_t *routes; /* the route table (fcgi/routes.h); static */
    /* The worker's registry watcher (shared/regwatch.h), borrowed; NULL:
     * every request GETs the registry version (CGI, tests). */
    struct regwatch *watch;
    /* Hooks run when each request is answered (route_hook_fn): `end` before
     * it is finished, `after` once it is. NULL-ended, static; NULL: none. */
    const route_gate_fn *gate;   /* after the credential check (route_gate_fn) */
    const route_hook_fn *end;
    const route_hook_fn *after;
    /* Route on PATH_INFO when the server sets one, not on REQUEST_URI: the
     * script's own URL (SCRIPT_NAME) is then the deployment's base, and
     * .../aiproxy.cgi/v1/models routes as /v1/models. Always on in CGI mode;
     * AIPROXY_PATH_INFO=1 for a FastCGI program under a URL prefix (mod_fcgid
     * from .htaccess in a sub-directory). */
    int path_info;
} serve_cfg_t;

typedef struct serve_thread serve_thread_t;

/* A thread's state (FCGX_Request on `listen_fd`, arena, agent; the registry
 * connection is opened now and re-tried per request while Redis is down).
 * `listen_fd` < 0: no FCGX_Request of its own (CGI mode: the request comes
 * to serve_handle_req). With a listen socket the calling thread's info lines
 * (the access line) are held and written in runs (log_hold), so the thread
 * that made `t` must be the one that frees it. NULL on ENOMEM. */
serve_thread_t *serve_thread_new(const serve_cfg_t *cfg, int listen_fd);
/* Frees `t` (NULL: nothing) and writes the lines its thread held. */
void serve_thread_free(serve_thread_t *t);

/* Waits for the next request (FCGX_Accept_r, which returns on a signal:
 * FCGI_FAIL_ACCEPT_ON_INTR). Returns 0 when a request arrived, else a
 * negative code (-EINTR on a signal). */
int serve_accept(serve_thread_t *t);

/* Answers the accepted request, finishes it and resets the arena. */
void serve_handle(serve_thread_t *t);

/* Answers `r`, a request the caller built and owns (CGI mode: streams over
 * stdin/stdout), and resets the arena. The caller flushes and closes r's
 * streams; nothing is drained or kept alive. */
void serve_handle_req(serve_thread_t *t, FCGX_Request *r);

#endif
