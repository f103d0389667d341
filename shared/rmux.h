/* rmux — one pipelined Redis connection shared by a process's threads, for
 * commands whose reply a thread wants later or never (issue 18: the
 * limiter's gate, read beside the upstream call, and its end script).
 *
 * A pooled connection (rpool.h) is lent for a command and its reply, so a
 * thread that sends now and reads later holds one all that time, and under
 * load the pool runs dry. Here a thread appends its command to the shared
 * connection and gets a ticket; Redis answers in order, and whichever
 * waiting thread reads the socket hands each reply to its ticket (leader /
 * follower: no thread of its own). A ticket nobody waits for (rmux_drop)
 * has its reply read by a later reader and shown to a check function.
 *
 * Commands are written with write(2) of the formatted text under the lock,
 * replies read by one thread at a time outside it, so a slow reader never
 * blocks a sender. The connection is opened lazily (the process's, from
 * rpool_mux, named "aiproxy-rsp:<pid>:mux"), and replaced when it fails or a Sentinel switch
 * moved the master (rconn_epoch) with nothing in flight; a failure fails
 * every ticket in flight (their waiters get NULL: Redis unavailable). */
#ifndef AIPROXY_RMUX_H
#define AIPROXY_RMUX_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#define RMUX_INFLIGHT 1024      /* commands in flight per process, at most */
#define RMUX_WAIT_MS 5000       /* a reply later than this fails the connection */

typedef struct rmux rmux_t;

/* What a dropped ticket's reply is shown to (rmux_drop): the reply, or
 * NULL when the connection failed before it came. */
typedef void (*rmux_check_fn)(redisReply *r);

typedef struct rmux_ticket {
    unsigned long long seq;
    unsigned gen;               /* the connection it was sent on */
} rmux_ticket_t;

/* Sends the command argv[0..argc) (lengths by strlen). 0 and *t; -EAGAIN
 * when RMUX_INFLIGHT commands are in flight; -ECONNREFUSED when Redis
 * cannot be reached (err, when not NULL, says why); -EIO when the write
 * failed (the connection is reset). */
int rmux_send(rmux_t *m, int argc, const char **argv, rmux_ticket_t *t, char *err,
              size_t errlen);

/* The reply to t (the caller frees it), waiting for it at most
 * RMUX_WAIT_MS; NULL when the connection failed or was reset before it
 * came. Each ticket is waited for or dropped once. */
redisReply *rmux_wait(rmux_t *m, rmux_ticket_t t);

/* Gives up t: its reply, when it comes, is shown to `check` (may be NULL;
 * NULL reply: the connection failed first) by whichever thread reads it. */
void rmux_drop(rmux_t *m, rmux_ticket_t t, rmux_check_fn check);

/* The socket replies come on (-1 when not connected): readable when some
 * reply came, not always t's. For a wait that also watches other things. */
int rmux_fd(rmux_t *m);

/* Closes the connection and frees m (for tests; nothing may be in
 * flight). */
void rmux_free(rmux_t *m);

/* A new instance for `url` (copied; NULL: rconn_url()), named `name`
 * (copied; "": no CLIENT SETNAME), connecting nothing yet. The process's
 * own lives beside its command pool (rpool_mux); tests make private ones.
 * NULL on ENOMEM. */
rmux_t *rmux_new(const char *url, const char *name);

#endif
