/* rpool — a process's Redis command connections, bounded in number (issue 20).
 *
 * A pool holds at most `size` blocking hiredis connections to one REDIS_URL,
 * opened lazily and named with CLIENT SETNAME (<name>, e.g.
 * "aiproxy-rsp:<pid>:cmd"), so a host's connection count depends on its
 * worker processes, not on their threads. A thread borrows a connection for
 * one command or a short pipeline and gives it back at once: never across an
 * upstream call, a tool wait, or idleness. A borrow that finds every
 * connection lent out waits, at most the pool's wait bound, then fails
 * (the caller answers 503 redis_unavailable: never a hang).
 *
 * A connection comes back clean: every reply of what was sent on it read.
 * One that broke (a context error, a reply saying the master is gone —
 * rconn_reply_lost —, the caller's `broken`, or a Sentinel switch since it
 * was opened: rconn_epoch moved) is closed, and its slot re-opened lazily by
 * a later borrow. An idle connection Redis closed (restart, CLIENT KILL,
 * timeout) is noticed at checkout without a round trip and replaced.
 *
 * rpool_for() gives the process's shared pool of a URL (created on first
 * use; a forked child gets its own, never its parent's sockets). Sizes come
 * from AIPROXY_REDIS_POOL (default RPOOL_DEFAULT_SIZE) and
 * AIPROXY_REDIS_POOL_WAIT_MS (default RPOOL_DEFAULT_WAIT_MS). */
#ifndef AIPROXY_RPOOL_H
#define AIPROXY_RPOOL_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#define RPOOL_DEFAULT_SIZE 3
#define RPOOL_MAX_SIZE 64
#define RPOOL_DEFAULT_WAIT_MS 2000
#define RPOOL_CONNECT_MS 2000
#define RPOOL_RETRY_MS 500      /* after a failed connect, borrows fail fast this long */

typedef struct rpool rpool_t;

/* A pool of at most `size` (1..RPOOL_MAX_SIZE) connections to `url` (copied),
 * named `name` (copied; NULL or "": no CLIENT SETNAME); a borrow waits at
 * most wait_ms for one to come back. Connects nothing yet. NULL on ENOMEM or
 * a size out of range. */
rpool_t *rpool_new(const char *url, int size, int wait_ms, const char *name);

/* Closes every connection and frees p. Every borrowed connection must have
 * been returned. NULL is a no-op. */
void rpool_free(rpool_t *p);

/* The process's shared pool for `url` (created on first call, sized from the
 * environment, named "aiproxy-rsp:<pid>:cmd"), or NULL on ENOMEM. Lives until
 * the process exits. Thread-safe. */
rpool_t *rpool_for(const char *url);

/* Borrows a connection: an idle one, else a new one while fewer than size
 * are open, else waits for one, at most the pool's wait bound. Returns it,
 * or NULL with err (may be NULL) saying why: Redis unreachable (the
 * connect's reason, password-free; further borrows fail at once for
 * RPOOL_RETRY_MS), or every connection busy past the bound. Never blocks
 * longer than the wait bound plus one connect timeout. */
redisContext *rpool_get(rpool_t *p, char *err, size_t errlen);

/* Gives `c` (from rpool_get on p; NULL is a no-op) back. `broken` non-zero,
 * an error on the context, unread bytes or unsent commands close it instead
 * (its slot is re-opened by a later borrow). Wakes one waiting borrower. */
void rpool_put(rpool_t *p, redisContext *c, int broken);

/* Closes the idle connections (borrowed ones stay): for a process that used
 * Redis for a while and will not again soon (the master after its start-up
 * checks, before it forks workers). Later borrows open them again. */
void rpool_close_idle(rpool_t *p);

/* What a reply says about the connection it came on: 1 when it is lost (NULL:
 * no reply, or rconn_reply_lost), for rpool_put's `broken`. */
int rpool_reply_broken(const redisReply *r);

/* Counts for metrics and tests: connections open now, lent out now, and
 * borrows that failed (unreachable or waited past the bound). */
typedef struct rpool_stats {
    int open, busy;
    unsigned long long failed;
} rpool_stats_t;
void rpool_stats(rpool_t *p, rpool_stats_t *out);

/* The pipelined connection to p's Redis that shares p's life
 * (shared/rmux.h): made on the first call, named "aiproxy-rsp:<pid>:mux",
 * freed with p, so a forked child that drops its parent's pools
 * (rpool_for) drops their mux too. NULL on ENOMEM. Thread-safe. */
struct rmux;
struct rmux *rpool_mux(rpool_t *p);

/* "aiproxy-rsp:<pid>:<role>" into out: the CLIENT SETNAME of this process's
 * connection of that role ("cmd", "sub", "watch"). */
void rpool_name(const char *role, char *out, size_t n);

/* Sends CLIENT SETNAME `name` on c (blocking); errors (an ACL without
 * CLIENT) are ignored. 0, or -EIO when the connection failed. */
int rpool_setname(redisContext *c, const char *name);

#endif
