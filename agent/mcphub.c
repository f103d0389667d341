/* mcphub — the process's reply subscriber (see mcphub.h).
 *
 * One mutex guards the id table, every waiter's queue and the hub's state;
 * it is held only to move pointers (decoding runs before it is taken). Each
 * waiter sleeps on its own condition variable, so a reply wakes exactly the
 * thread it is for. Waits use CLOCK_MONOTONIC.
 *
 * Who reads the socket (leader/follower, so the common reply costs no
 * thread hop): while some thread is in a round of calls (between
 * mcphub_ready and mcphub_forget), one of the threads waiting in
 * mcphub_next holds the reader role: it polls the subscribed socket itself,
 * keeps its own replies and queues the others' (waking them), and hands the
 * role to another waiting thread when it leaves. With no round in progress
 * the hub's own thread looks every MCPHUB_SLICE_MS (a poll that does not
 * wait): it drains late replies and notices a lost connection, without ever
 * holding the role while a round could want it and without a wake-up per
 * call (on two shared cores, each extra thread wake-up showed in the tool
 * round trip). The hub's thread alone opens, re-subscribes and closes the
 * connection. */
#include "agent/mcphub.h"
#include "shared/mono.h"
#include "shared/log.h"
#include "shared/rconn.h"
#include "shared/rpool.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MCPHUB_BUCKETS 256
#define MCPHUB_SLICE_MS 100      /* the thread looks at the Sentinel epoch this often */
#define MCPHUB_RETRY_MS 200      /* between attempts while Redis is away */
#define MCPHUB_CONNECT_MS 2000

typedef struct mcphub_entry {
    char id[WIRE_ID_LEN + 1];
    mcphub_waiter_t *w;
    struct mcphub_entry *next;    /* in its bucket */
    struct mcphub_entry *wnext;   /* in its waiter's list */
} mcphub_entry_t;

typedef struct mcphub_msg {
    wire_reply_t rep;
    struct mcphub_msg *next;
} mcphub_msg_t;

struct mcphub_waiter {
    mcphub_t *h;
    pthread_cond_t cv;
    mcphub_entry_t *ids;
    mcphub_msg_t *head, **tail;
    unsigned long session;        /* the subscription mcphub_ready saw */
    int active;                   /* in a round: between mcphub_ready and mcphub_forget */
    int waiting;                  /* inside mcphub_next */
    struct mcphub_waiter *prev, *next;
};

struct mcphub {
    pthread_mutex_t mu;
    pthread_cond_t ready_cv;
    char url[1024];
    char prefix[128];
    char channel[320];
    int started, subscribed;
    unsigned long session;        /* moves at each new subscription */
    pthread_cond_t hub_cv;        /* the hub's thread: the role came free, or c broke */
    redisContext *c;              /* the subscribed connection (the hub's thread opens/closes) */
    int broken;                   /* c failed (or the Sentinel epoch moved): to be re-made */
    int reader;                   /* 0 nobody, 1 the hub's thread, 2 a waiter polls c */
    int nactive;                  /* waiters in a round */
    mcphub_entry_t *buckets[MCPHUB_BUCKETS];
    mcphub_waiter_t *waiters;
    struct mcphub *next_hub;      /* the process's list */
};

static void mcphub__deadline(struct timespec *ts, int ms)
{
    *ts = mono_deadline(CLOCK_MONOTONIC, ms);
}

static int mcphub__past(const struct timespec *ts)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > ts->tv_sec || (now.tv_sec == ts->tv_sec && now.tv_nsec >= ts->tv_nsec);
}

static void mcphub__cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t ca;

    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

static unsigned mcphub__hash(const char *id)
{
    unsigned x = 2166136261u;

    for (; *id; id++)
        x = (x ^ (unsigned char)*id) * 16777619u;
    return x % MCPHUB_BUCKETS;
}

/* --- the hub's thread --------------------------------------------------------- */

/* A connection subscribed to h->channel, or NULL (logged once per outage). */
static redisContext *mcphub__subscribe(mcphub_t *h, unsigned *epoch, int *quiet)
{
    char why[512] = "", name[64];
    redisContext *c;
    redisReply *r = NULL;

    *epoch = rconn_epoch();
    c = rconn_connect(h->url, MCPHUB_CONNECT_MS, why, sizeof why);
    if (!c)
        goto fail;
    rpool_name("sub", name, sizeof name);
    if (rpool_setname(c, name) != 0)
        goto fail;
    r = redisCommand(c, "SUBSCRIBE %s", h->channel);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        snprintf(why, sizeof why, "cannot subscribe to the reply channel: %s",
                 r ? (r->str ? r->str : "bad reply") : c->errstr);
        goto fail;
    }
    freeReplyObject(r);
    *quiet = 0;
    return c;
fail:
    if (!*quiet)
        log_warn("mcphub: %s (retrying every %d ms)", why[0] ? why : "connection lost",
                 MCPHUB_RETRY_MS);
    *quiet = 1;
    if (r)
        freeReplyObject(r);
    if (c)
        redisFree(c);
    return NULL;
}

/* Hands one pub/sub message to the waiter of its id (or drops it). */
static void mcphub__deliver(mcphub_t *h, redisReply *r)
{
    mcphub_msg_t *m;
    mcphub_entry_t *e;
    char err[128];

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "message") != 0 ||
        r->element[2]->type != REDIS_REPLY_STRING)
        return;                   /* (un)subscribe confirmations */
    if (!(m = calloc(1, sizeof *m)))
        return;
    if (wire_reply_decode(r->element[2]->str, r->element[2]->len, &m->rep, err, sizeof err) != 0) {
        free(m);
        return;                   /* malformed: ignored, as before */
    }
    pthread_mutex_lock(&h->mu);
    for (e = h->buckets[mcphub__hash(m->rep.id)]; e; e = e->next)
        if (strcmp(e->id, m->rep.id) == 0)
            break;
    if (e) {
        *e->w->tail = m;
        e->w->tail = &m->next;
        pthread_cond_signal(&e->w->cv);
        m = NULL;
    }
    pthread_mutex_unlock(&h->mu);
    if (m) {                      /* nobody waits for it (answered, timed out) */
        wire_reply_clear(&m->rep);
        free(m);
    }
}

/* Reads what c has (a poll said so): every reply to its waiter. 1 when the
 * connection is lost. Lock not held. */
static int mcphub__read(mcphub_t *h, redisContext *c)
{
    if (redisBufferRead(c) != REDIS_OK)
        return 1;
    for (;;) {
        redisReply *r = NULL;
        if (redisGetReplyFromReader(c, (void **)&r) != REDIS_OK)
            return 1;
        if (!r)
            return 0;
        mcphub__deliver(h, r);
        freeReplyObject(r);
    }
}

/* The reader role is free (lock held): a waiting thread (not `not`) takes
 * it. With none waiting, nobody is woken: the next thread to wait takes it,
 * and the hub's thread looks at its next tick (no wake-up per call). A
 * broken connection wakes the hub's thread, which re-makes it. */
static void mcphub__pass(mcphub_t *h, const mcphub_waiter_t *not)
{
    if (h->broken) {
        pthread_cond_signal(&h->hub_cv);
        return;
    }
    for (mcphub_waiter_t *w = h->waiters; w; w = w->next)
        if (w->waiting && w != not) {
            pthread_cond_signal(&w->cv);
            return;
        }
}

/* Takes the reader role (`role`: 1 the hub's thread, 2 a waiter), looks at
 * the subscribed socket for at most wait_ms (0: no wait), reads what came,
 * marks the connection broken if it was lost, and passes the role on to a
 * waiter other than `not` (mcphub__pass). Lock held on entry and return,
 * released while polling and reading. */
static void mcphub__look(mcphub_t *h, int role, int wait_ms, const mcphub_waiter_t *not)
{
    redisContext *c = h->c;
    struct pollfd pfd = { c->fd, POLLIN, 0 };
    int n, lost = 0;

    h->reader = role;
    pthread_mutex_unlock(&h->mu);
    n = poll(&pfd, 1, wait_ms);
    if (n > 0)
        lost = mcphub__read(h, c);
    else if (n < 0 && errno != EINTR)
        lost = 1;
    pthread_mutex_lock(&h->mu);
    h->reader = 0;
    if (lost)
        h->broken = 1;
    mcphub__pass(h, not);
}

static void *mcphub__main(void *arg)
{
    mcphub_t *h = arg;
    unsigned epoch = 0;
    int quiet = 0;

    pthread_mutex_lock(&h->mu);
    for (;;) {
        struct timespec until;
        if (!h->c) {
            redisContext *c;
            pthread_mutex_unlock(&h->mu);
            if (!(c = mcphub__subscribe(h, &epoch, &quiet)))
                poll(NULL, 0, MCPHUB_RETRY_MS);
            pthread_mutex_lock(&h->mu);
            if (c) {
                h->c = c;
                h->broken = 0;
                h->subscribed = 1;
                h->session++;
                pthread_cond_broadcast(&h->ready_cv);
            }
            continue;
        }
        if (epoch != rconn_epoch())
            h->broken = 1;        /* Sentinel moved the master: subscribe on the new one */
        if (h->broken && h->reader == 0) {
            log_warn("mcphub: reply channel connection lost%s%s; re-subscribing",
                     h->c->errstr[0] ? ": " : "", h->c->errstr);
            redisFree(h->c);
            h->c = NULL;
            h->subscribed = 0;
            for (mcphub_waiter_t *w = h->waiters; w; w = w->next)
                pthread_cond_signal(&w->cv);     /* their wait now fails */
            continue;
        }
        if (!h->broken && h->reader == 0 && h->nactive == 0) {
            mcphub__look(h, 1, 0, NULL);
            if (h->broken)
                continue;
        }
        mcphub__deadline(&until, MCPHUB_SLICE_MS);
        pthread_cond_timedwait(&h->hub_cv, &h->mu, &until);
    }
    return NULL;
}

/* --- the process's hubs -------------------------------------------------------- */

static pthread_mutex_t mcphub__mu = PTHREAD_MUTEX_INITIALIZER;
static mcphub_t *mcphub__list;
static mcphub_t *mcphub__stale;   /* a parent's, after fork */
static pid_t mcphub__pid;

mcphub_t *mcphub_for(const char *url, const char *prefix)
{
    char host[128] = "localhost";
    mcphub_t *h;

    pthread_mutex_lock(&mcphub__mu);
    if (mcphub__pid != getpid()) {
        /* a forked child: the parent's hubs (and their thread) are not
         * here; kept reachable, never used */
        if (mcphub__list) {
            mcphub_t *last = mcphub__list;
            while (last->next_hub)
                last = last->next_hub;
            last->next_hub = mcphub__stale;
            mcphub__stale = mcphub__list;
        }
        mcphub__list = NULL;
        mcphub__pid = getpid();
    }
    for (h = mcphub__list; h; h = h->next_hub)
        if (strcmp(h->url, url) == 0 && strcmp(h->prefix, prefix) == 0)
            goto out;
    if (!(h = calloc(1, sizeof *h)))
        goto out;
    pthread_mutex_init(&h->mu, NULL);
    mcphub__cond_init(&h->ready_cv);
    mcphub__cond_init(&h->hub_cv);
    snprintf(h->url, sizeof h->url, "%s", url);
    snprintf(h->prefix, sizeof h->prefix, "%s", prefix);
    gethostname(host, sizeof host - 1);
    host[sizeof host - 1] = 0;
    snprintf(h->channel, sizeof h->channel, "%smcp:reply:%s:%d", h->prefix, host, (int)getpid());
    h->next_hub = mcphub__list;
    mcphub__list = h;
out:
    pthread_mutex_unlock(&mcphub__mu);
    return h;
}

const char *mcphub_channel(const mcphub_t *h)
{
    return h->channel;
}

mcphub_waiter_t *mcphub_waiter_new(mcphub_t *h)
{
    mcphub_waiter_t *w = calloc(1, sizeof *w);

    if (!w)
        return NULL;
    w->h = h;
    w->tail = &w->head;
    mcphub__cond_init(&w->cv);
    pthread_mutex_lock(&h->mu);
    w->next = h->waiters;
    if (h->waiters)
        h->waiters->prev = w;
    h->waiters = w;
    pthread_mutex_unlock(&h->mu);
    return w;
}

void mcphub_waiter_free(mcphub_waiter_t *w)
{
    mcphub_t *h;

    if (!w)
        return;
    h = w->h;
    mcphub_forget(w);
    pthread_mutex_lock(&h->mu);
    if (w->prev)
        w->prev->next = w->next;
    else
        h->waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    pthread_mutex_unlock(&h->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}

/* Starts the hub's thread (lock held). 0 or -EAGAIN. */
static int mcphub__start(mcphub_t *h)
{
    pthread_attr_t attr;
    pthread_t tid;
    sigset_t all, old;
    int rc;

    if (h->started)
        return 0;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    sigfillset(&all);                 /* signals stay with the process's own threads */
    pthread_sigmask(SIG_BLOCK, &all, &old);
    rc = pthread_create(&tid, &attr, mcphub__main, h);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        log_error("mcphub: cannot start the reply thread: %s", strerror(rc));
        return -EAGAIN;
    }
    h->started = 1;
    return 0;
}

int mcphub_ready(mcphub_waiter_t *w, int wait_ms)
{
    mcphub_t *h = w->h;
    struct timespec until;
    int rc = 0;

    mcphub__deadline(&until, wait_ms);
    pthread_mutex_lock(&h->mu);
    if (mcphub__start(h) != 0)
        rc = -ECONNREFUSED;
    while (rc == 0) {
        if (h->subscribed && !h->broken && h->reader == 0 && h->c) {
            /* a look without waiting: a hang-up Redis sent while nobody read
             * (restart, CLIENT KILL) is seen before the round relies on it */
            mcphub__look(h, 2, 0, w);
        }
        if (h->subscribed && !h->broken)
            break;
        if (mcphub__past(&until)) {
            rc = -ECONNREFUSED;
            break;
        }
        pthread_cond_timedwait(&h->ready_cv, &h->mu, &until);
    }
    w->session = h->session;
    if (rc == 0 && !w->active) {
        w->active = 1;            /* from now on the hub's thread leaves the socket to us */
        h->nactive++;
    }
    pthread_mutex_unlock(&h->mu);
    return rc;
}

int mcphub_expect(mcphub_waiter_t *w, const char *id)
{
    mcphub_t *h = w->h;
    mcphub_entry_t *e = calloc(1, sizeof *e);
    unsigned b;

    if (!e)
        return -ENOMEM;
    snprintf(e->id, sizeof e->id, "%s", id);
    e->w = w;
    b = mcphub__hash(e->id);
    pthread_mutex_lock(&h->mu);
    e->next = h->buckets[b];
    h->buckets[b] = e;
    e->wnext = w->ids;
    w->ids = e;
    pthread_mutex_unlock(&h->mu);
    return 0;
}

void mcphub_forget(mcphub_waiter_t *w)
{
    mcphub_t *h = w->h;
    mcphub_entry_t *e, *ids;
    mcphub_msg_t *m;

    pthread_mutex_lock(&h->mu);
    ids = w->ids;
    w->ids = NULL;
    for (e = ids; e; e = e->wnext) {
        mcphub_entry_t **pp = &h->buckets[mcphub__hash(e->id)];
        while (*pp && *pp != e)
            pp = &(*pp)->next;
        if (*pp)
            *pp = e->next;
    }
    m = w->head;
    w->head = NULL;
    w->tail = &w->head;
    if (w->active) {
        w->active = 0;            /* the hub's thread looks again at its next tick */
        h->nactive--;
    }
    pthread_mutex_unlock(&h->mu);
    while (ids) {
        e = ids->wnext;
        free(ids);
        ids = e;
    }
    while (m) {
        mcphub_msg_t *next = m->next;
        wire_reply_clear(&m->rep);
        free(m);
        m = next;
    }
}

int mcphub_next(mcphub_waiter_t *w, int wait_ms, wire_reply_t *out)
{
    mcphub_t *h = w->h;
    struct timespec until;
    mcphub_msg_t *m = NULL;
    int rc = 0;

    mcphub__deadline(&until, wait_ms > 0 ? wait_ms : 0);
    pthread_mutex_lock(&h->mu);
    w->waiting = 1;
    for (;;) {
        if ((m = w->head)) {
            w->head = m->next;
            if (!w->head)
                w->tail = &w->head;
            rc = 1;
            break;
        }
        if (!h->subscribed || h->session != w->session) {
            rc = -ECONNREFUSED;
            break;
        }
        if (mcphub__past(&until))
            break;
        if (h->reader == 0 && h->c && !h->broken && w->active) {
            /* read the socket ourselves: our reply then costs no hop (a
             * loss wakes the hub's thread, which re-makes the connection) */
            struct timespec now;
            long long left;
            clock_gettime(CLOCK_MONOTONIC, &now);
            /* rounded up: a wait of less than 1 ms left polls, not spins */
            left = ((until.tv_sec - now.tv_sec) * 1000000000LL + (until.tv_nsec - now.tv_nsec) +
                    999999) / 1000000;
            mcphub__look(h, 2, left > 0 ? (int)left : 0, w);
            continue;
        }
        pthread_cond_timedwait(&w->cv, &h->mu, &until);
    }
    w->waiting = 0;
    pthread_mutex_unlock(&h->mu);
    if (m) {
        *out = m->rep;
        free(m);
    }
    return rc;
}
