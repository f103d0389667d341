/* rmux — a shared pipelined Redis connection (rmux.h).
 *
 * Under m->mu: the slots, the counters and writing. Ticket seq n lives in
 * slot n % RMUX_INFLIGHT; `got` counts the replies handed out, so the next
 * reply belongs to got + 1. One thread at a time (m->reading) reads, with
 * the lock released: the context's reader is touched only by it, and
 * senders write the formatted command with write(2) on the fd, never
 * through the context. A reset bumps `gen`, so tickets of the old
 * connection fail; a reset while someone reads only shuts the socket down,
 * and the reader, seeing the failure, finishes it. */
#include "shared/mono.h"
#include "shared/rmux.h"
#include "shared/log.h"
#include "shared/rconn.h"
#include "shared/rpool.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { RMUX__EMPTY, RMUX__WAIT, RMUX__READY, RMUX__DROPPED };

#define RMUX_DRAIN_AT 16   /* dropped replies owed before a drop reads them itself */

typedef struct rmux__slot {
    unsigned long long seq;    /* the ticket it holds */
    int state;
    redisReply *r;             /* READY */
    rmux_check_fn check;      /* DROPPED */
} rmux__slot_t;

struct rmux {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char url[1024];
    char name[64];
    redisContext *c;           /* NULL: not connected */
    int fd;                    /* atomic: c->fd, -1 none */
    unsigned gen;              /* moves at every reset */
    unsigned epoch;            /* rconn_epoch() before c was opened */
    int reading;               /* a thread reads c (lock released) */
    int broken;                /* reset wanted while someone reads */
    int dropped;               /* DROPPED slots whose reply has not come */
    unsigned long long sent, got;
    long long retry_at_ms;     /* after a failed connect: sends fail fast until then */
    rmux__slot_t slot[RMUX_INFLIGHT];
};

rmux_t *rmux_new(const char *url, const char *name)
{
    rmux_t *m = calloc(1, sizeof(*m));
    pthread_condattr_t ca;

    if (!m)
        return NULL;
    snprintf(m->url, sizeof m->url, "%s", url ? url : rconn_url());
    snprintf(m->name, sizeof m->name, "%s", name ? name : "");
    m->fd = -1;
    pthread_mutex_init(&m->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->cv, &ca);
    pthread_condattr_destroy(&ca);
    return m;
}

void rmux_free(rmux_t *m)
{
    if (!m)
        return;
    for (int i = 0; i < RMUX_INFLIGHT; i++)
        freeReplyObject(m->slot[i].r);
    if (m->c)
        redisFree(m->c);
    pthread_cond_destroy(&m->cv);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

int rmux_fd(rmux_t *m)
{
    return m ? __atomic_load_n(&m->fd, __ATOMIC_ACQUIRE) : -1;
}

/* Fails every ticket still owed a reply and closes the connection (lock
 * held, nobody reading). Dropped tickets' checks see NULL; replies already
 * handed to a ticket stay for its waiter. */
static void rmux__reset(rmux_t *m)
{
    for (unsigned long long s = m->got + 1; s <= m->sent; s++) {
        rmux__slot_t *sl = &m->slot[s % RMUX_INFLIGHT];
        if (sl->state == RMUX__DROPPED && sl->check)
            sl->check(NULL);
        sl->state = RMUX__EMPTY;
    }
    m->dropped = 0;
    m->got = m->sent;
    m->gen++;
    m->broken = 0;
    __atomic_store_n(&m->fd, -1, __ATOMIC_RELEASE);
    if (m->c)
        redisFree(m->c);
    m->c = NULL;
    pthread_cond_broadcast(&m->cv);
}

/* The connection is unusable: reset now, or have the reader do it. */
static void rmux__fail(rmux_t *m)
{
    if (!m->reading) {
        rmux__reset(m);
        return;
    }
    m->broken = 1;
    if (m->c)
        shutdown(m->c->fd, SHUT_RDWR);   /* the reader's read fails at once */
}

/* Connects (lock held, nobody reading, no connection). 0 or -ECONNREFUSED. */
static int rmux__connect(rmux_t *m, char *err, size_t errlen)
{
    char why[256] = "";
    redisReply *r;

    if (mono_ms() < m->retry_at_ms) {
        snprintf(err ? err : why, err ? errlen : sizeof why, "Redis unreachable (retrying)");
        return -ECONNREFUSED;
    }
    m->epoch = rconn_epoch();
    m->c = rconn_connect(m->url, RPOOL_CONNECT_MS, why, sizeof why);
    if (m->c && m->name[0]) {
        r = redisCommand(m->c, "CLIENT SETNAME %s", m->name);
        if (!r) {
            redisFree(m->c);
            m->c = NULL;
        }
        freeReplyObject(r);
    }
    if (!m->c) {
        m->retry_at_ms = mono_ms() + RPOOL_RETRY_MS;
        if (err)
            snprintf(err, errlen, "%s", why[0] ? why : "Redis unreachable");
        return -ECONNREFUSED;
    }
    m->retry_at_ms = 0;
    m->gen++;
    __atomic_store_n(&m->fd, m->c->fd, __ATOMIC_RELEASE);
    return 0;
}

/* Hands reply r to the next ticket (lock held). -EIO when no ticket wanted
 * one (a reply nobody asked for: the stream is out of step). */
static int rmux__assign(rmux_t *m, redisReply *r)
{
    rmux__slot_t *sl;

    if (m->got >= m->sent) {
        freeReplyObject(r);
        return -EIO;
    }
    sl = &m->slot[++m->got % RMUX_INFLIGHT];
    if (sl->state == RMUX__DROPPED) {
        if (sl->check)
            sl->check(r);
        freeReplyObject(r);
        sl->state = RMUX__EMPTY;
        m->dropped--;
    } else {
        sl->r = r;
        sl->state = RMUX__READY;
    }
    return 0;
}

/* Reads what has come, waiting at most wait_ms for something (0: no wait),
 * as the reader (lock held on entry and return, released while reading).
 * 0, or -EIO when the connection failed or stayed silent past wait_ms with
 * replies owed (it is then reset). */
static int rmux__read(rmux_t *m, int wait_ms)
{
    redisContext *c = m->c;
    redisReply *got[64];
    int n = 0, rc = 0;

    if (!c)
        return -EIO;
    m->reading = 1;
    pthread_mutex_unlock(&m->mu);
    for (;;) {
        void *r = NULL;
        while (n < 64 && redisGetReplyFromReader(c, &r) == REDIS_OK && r) {
            got[n++] = r;
            r = NULL;
        }
        if (c->err) {
            rc = -EIO;
            break;
        }
        if (n > 0 || wait_ms < 0)
            break;
        {
            struct pollfd p = { .fd = c->fd, .events = POLLIN, .revents = 0 };
            int k = poll(&p, 1, wait_ms);
            if (k == 0) {
                rc = wait_ms > 0 ? -ETIMEDOUT : 0;
                break;
            }
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0 || redisBufferRead(c) != REDIS_OK) {
                rc = -EIO;
                break;
            }
            wait_ms = -1;   /* what came is read: hand it out, do not wait again */
        }
    }
    pthread_mutex_lock(&m->mu);
    m->reading = 0;
    for (int i = 0; i < n; i++)
        if (rmux__assign(m, got[i]) < 0)
            rc = -EIO;
    if (rc == -ETIMEDOUT && m->got < m->sent) {
        log_warn("redis mux: no reply in %d ms: reconnecting", RMUX_WAIT_MS);
        rc = -EIO;
    } else if (rc == -ETIMEDOUT) {
        rc = 0;
    }
    if (rc < 0 || m->broken)
        rmux__reset(m);
    pthread_cond_broadcast(&m->cv);
    return rc;
}

int rmux_send(rmux_t *m, int argc, const char **argv, rmux_ticket_t *t, char *err,
              size_t errlen)
{
    char *cmd = NULL;
    long long len;
    int rc = 0;

    len = redisFormatCommandArgv(&cmd, argc, argv, NULL);
    if (len < 0)
        return -ENOMEM;
    pthread_mutex_lock(&m->mu);
    if (m->c && !m->reading && (m->broken || (m->epoch != rconn_epoch() && m->got == m->sent)))
        rmux__reset(m);   /* broken, or Sentinel moved the master: reconnect */
    if (!m->c && (m->reading || (rc = rmux__connect(m, err, errlen)) < 0)) {
        rc = rc < 0 ? rc : -EIO;
        goto out;
    }
    if (m->sent - m->got >= RMUX_INFLIGHT) {
        rc = -EAGAIN;
        goto out;
    }
    for (const char *p = cmd; len > 0;) {
        ssize_t w = write(m->c->fd, p, (size_t)len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (err)
                snprintf(err, errlen, "Redis write failed: %s", strerror(errno));
            rmux__fail(m);
            rc = -EIO;
            goto out;
        }
        p += w;
        len -= w;
    }
    {
        rmux__slot_t *sl = &m->slot[++m->sent % RMUX_INFLIGHT];
        freeReplyObject(sl->r);          /* a reply its waiter never took */
        sl->r = NULL;
        sl->seq = m->sent;
        sl->state = RMUX__WAIT;
    }
    t->seq = m->sent;
    t->gen = m->gen;
out:
    pthread_mutex_unlock(&m->mu);
    free(cmd);
    return rc;
}

redisReply *rmux_wait(rmux_t *m, rmux_ticket_t t)
{
    long long deadline = mono_ms() + RMUX_WAIT_MS;
    redisReply *r = NULL;

    pthread_mutex_lock(&m->mu);
    for (;;) {
        rmux__slot_t *sl = &m->slot[t.seq % RMUX_INFLIGHT];
        long long left = deadline - mono_ms();
        if (sl->seq == t.seq && sl->state == RMUX__READY) {
            r = sl->r;
            sl->r = NULL;
            sl->state = RMUX__EMPTY;
            break;
        }
        if (t.gen != m->gen || sl->seq != t.seq)
            break;                       /* reset: the reply will never come */
        if (!m->reading) {
            (void)rmux__read(m, left > 0 ? (int)left : 1);
            continue;
        }
        {
            /* the reader has its own bound */
            struct timespec ts = mono_deadline(CLOCK_MONOTONIC, 1000);
            pthread_cond_timedwait(&m->cv, &m->mu, &ts);
        }
    }
    pthread_mutex_unlock(&m->mu);
    return r;
}

void rmux_drop(rmux_t *m, rmux_ticket_t t, rmux_check_fn check)
{
    rmux__slot_t *sl = &m->slot[t.seq % RMUX_INFLIGHT];

    pthread_mutex_lock(&m->mu);
    if (sl->seq == t.seq && sl->state == RMUX__READY) {
        if (check)
            check(sl->r);
        freeReplyObject(sl->r);
        sl->r = NULL;
        sl->state = RMUX__EMPTY;
    } else if (t.gen != m->gen || sl->seq != t.seq) {
        if (check)
            check(NULL);                 /* the connection failed under it */
    } else {
        sl->check = check;
        sl->state = RMUX__DROPPED;
        /* the next waiter reads it on the way to its own reply; when none
         * came for a while, read what has come now, without waiting, so
         * unread replies never pile up in Redis */
        if (++m->dropped >= RMUX_DRAIN_AT && !m->reading)
            (void)rmux__read(m, 0);
    }
    pthread_mutex_unlock(&m->mu);
}
