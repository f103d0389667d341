/* serve — one responder thread's requests: accept, copy the params into the
 * arena, read the body (capped), route, refresh the registry, answer, log,
 * finish, reset. */
#ifndef AIPROXY_SERVE_H
#define AIPROXY_SERVE_H

#include <stddef.h>

typedef struct serve_cfg {
    size_t max_body;          /* AIPROXY_MAX_BODY */
    const char *redis_url;    /* borrowed, outlives every thread */
    const char *prefix;
    const char *seed_json;    /* borrowed: -c's document as JSON, heals a lost registry; or NULL */
} serve_cfg_t;

typedef struct serve_thread serve_thread_t;

/* A thread's state (FCGX_Request on `listen_fd`, arena, agent; the registry
 * connection is opened now and re-tried per request while Redis is down).
 * NULL on ENOMEM. */
serve_thread_t *serve_thread_new(const serve_cfg_t *cfg, int listen_fd);
void serve_thread_free(serve_thread_t *t);

/* Waits for the next request (FCGX_Accept_r, which returns on a signal:
 * FCGI_FAIL_ACCEPT_ON_INTR). Returns 0 when a request arrived, else a
 * negative code (-EINTR on a signal). */
int serve_accept(serve_thread_t *t);

/* Answers the accepted request, finishes it and resets the arena. */
void serve_handle(serve_thread_t *t);

#endif
