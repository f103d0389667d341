/* rpool — bounded Redis command connections per process (see rpool.h).
 *
 * Slots under one mutex: FREE (no connection), OPENING (a borrower is
 * connecting outside the lock), IDLE, BUSY. The connect, the liveness poll
 * and redisFree run outside the lock, so one slow connect does not stall the
 * borrowers of the other connections. Waits use CLOCK_MONOTONIC. */
#include "shared/mono.h"
#include "shared/rpool.h"
#include "shared/log.h"
#include "shared/rconn.h"
#include "shared/rmux.h"

#include <errno.h>
#include <hiredis/sds.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { RPOOL__FREE, RPOOL__OPENING, RPOOL__IDLE, RPOOL__BUSY };

typedef struct rpool_slot {
    redisContext *c;
    unsigned epoch;          /* rconn_epoch() before c was opened */
    int state;
} rpool_slot_t;

struct rpool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    char url[1024];
    char name[128];
    int size, wait_ms;
    long long retry_at_ms;   /* after a failed connect: borrows fail fast until then */
    char lasterr[512];
    unsigned long long failed;
    rmux_t *mux;             /* rpool_mux: made on first use */
    rpool_slot_t slots[];
};

static int rpool__env_int(const char *name, int def, int lo, int hi)
{
    const char *e = getenv(name);
    char *end;
    long v;

    if (!e || !*e)
        return def;
    errno = 0;
    v = strtol(e, &end, 10);
    if (errno || *end || v < lo || v > hi) {
        log_warn("%s=%s: want %d..%d; using %d", name, e, lo, hi, def);
        return def;
    }
    return (int)v;
}

rpool_t *rpool_new(const char *url, int size, int wait_ms, const char *name)
{
    rpool_t *p;
    pthread_condattr_t ca;

    if (size < 1 || size > RPOOL_MAX_SIZE)
        return NULL;
    p = calloc(1, sizeof(*p) + (size_t)size * sizeof(p->slots[0]));
    if (!p)
        return NULL;
    snprintf(p->url, sizeof p->url, "%s", url ? url : rconn_url());
    snprintf(p->name, sizeof p->name, "%s", name ? name : "");
    p->size = size;
    p->wait_ms = wait_ms < 0 ? 0 : wait_ms;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    return p;
}

void rpool_free(rpool_t *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->size; i++)
        if (p->slots[i].c)
            redisFree(p->slots[i].c);
    rmux_free(p->mux);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

struct rmux *rpool_mux(rpool_t *p)
{
    char name[64];
    rmux_t *m;

    pthread_mutex_lock(&p->mu);
    if (!p->mux) {
        rpool_name("mux", name, sizeof name);
        p->mux = rmux_new(p->url, name);
    }
    m = p->mux;
    pthread_mutex_unlock(&p->mu);
    return m;
}

void rpool_name(const char *role, char *out, size_t n)
{
    snprintf(out, n, "aiproxy-rsp:%d:%s", (int)getpid(), role);
}

int rpool_setname(redisContext *c, const char *name)
{
    redisReply *r;

    if (!c || !name || !*name)
        return 0;
    r = redisCommand(c, "CLIENT SETNAME %s", name);
    if (!r)
        return -EIO;
    freeReplyObject(r);      /* an error reply (ACL) is not a broken connection */
    return 0;
}

int rpool_reply_broken(const redisReply *r)
{
    return !r || rconn_reply_lost(r);
}

/* 1 when an idle connection is still usable: no error, and nothing readable
 * on its socket (on a clean command connection that can only be a close or
 * bytes nobody asked for). One poll(2), no wait. */
static int rpool__alive(redisContext *c)
{
    struct pollfd pfd = { .fd = c->fd, .events = POLLIN | POLLRDHUP, .revents = 0 };

    if (c->err)
        return 0;
    return poll(&pfd, 1, 0) == 0;
}

/* 1 when c cannot go back to the idle list: an error, commands appended but
 * not sent, or reply bytes read but not consumed. */
static int rpool__dirty(const redisContext *c)
{
    if (c->err)
        return 1;
    if (c->obuf && sdslen(c->obuf) > 0)
        return 1;
    return c->reader && c->reader->pos < c->reader->len;
}

/* Opens slot i (marked OPENING by the caller, lock not held). */
static redisContext *rpool__open(rpool_t *p, unsigned *epoch, char *err, size_t errlen)
{
    redisContext *c;

    *epoch = rconn_epoch();
    c = rconn_connect(p->url, RPOOL_CONNECT_MS, err, errlen);
    if (c && rpool_setname(c, p->name) != 0) {
        snprintf(err, errlen, "Redis connection lost naming it: %s", c->errstr);
        redisFree(c);
        c = NULL;
    }
    return c;
}

static void rpool__fail(rpool_t *p, char *err, size_t errlen, const char *why)
{
    p->failed++;
    if (err && errlen)
        snprintf(err, errlen, "%s", why);
}

redisContext *rpool_get(rpool_t *p, char *err, size_t errlen)
{
    long long deadline = mono_ms() + p->wait_ms;
    redisContext *res = NULL;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        int i, freeslot = -1;
        for (i = 0; i < p->size; i++) {
            if (p->slots[i].state == RPOOL__IDLE)
                break;
            if (p->slots[i].state == RPOOL__FREE && freeslot < 0)
                freeslot = i;
        }
        if (i < p->size) {
            rpool_slot_t *s = &p->slots[i];
            redisContext *c = s->c;
            s->state = RPOOL__BUSY;
            pthread_mutex_unlock(&p->mu);
            if (s->epoch == rconn_epoch() && rpool__alive(c))
                return c;
            redisFree(c);    /* closed by Redis, or Sentinel moved the master */
            pthread_mutex_lock(&p->mu);
            s->c = NULL;
            s->state = RPOOL__FREE;
            continue;
        }
        if (freeslot >= 0) {
            rpool_slot_t *s = &p->slots[freeslot];
            char why[512] = "";
            unsigned epoch;
            redisContext *c;
            if (mono_ms() < p->retry_at_ms) {
                rpool__fail(p, err, errlen, p->lasterr);
                break;
            }
            s->state = RPOOL__OPENING;
            pthread_mutex_unlock(&p->mu);
            c = rpool__open(p, &epoch, why, sizeof why);
            pthread_mutex_lock(&p->mu);
            if (!c) {
                s->state = RPOOL__FREE;
                snprintf(p->lasterr, sizeof p->lasterr, "%s", why);
                p->retry_at_ms = mono_ms() + RPOOL_RETRY_MS;
                rpool__fail(p, err, errlen, why);
                pthread_cond_broadcast(&p->cv);   /* waiters fail fast too */
                break;
            }
            p->retry_at_ms = 0;
            s->c = c;
            s->epoch = epoch;
            s->state = RPOOL__BUSY;
            res = c;
            break;
        }
        /* every slot lent out or opening: wait for a checkin */
        {
            long long left = deadline - mono_ms();
            struct timespec ts;
            if (left <= 0) {
                char why[160];
                snprintf(why, sizeof why,
                         "all %d Redis connections of this process stayed busy for %d ms "
                         "(AIPROXY_REDIS_POOL)", p->size, p->wait_ms);
                rpool__fail(p, err, errlen, why);
                break;
            }
            ts = mono_deadline(CLOCK_MONOTONIC, left);
            pthread_cond_timedwait(&p->cv, &p->mu, &ts);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return res;
}

void rpool_put(rpool_t *p, redisContext *c, int broken)
{
    redisContext *drop = NULL;

    if (!c)
        return;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->size; i++) {
        rpool_slot_t *s = &p->slots[i];
        if (s->c != c || s->state != RPOOL__BUSY)
            continue;
        if (broken || rpool__dirty(c)) {
            drop = c;
            s->c = NULL;
            s->state = RPOOL__FREE;
        } else {
            s->state = RPOOL__IDLE;
        }
        break;
    }
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (drop)
        redisFree(drop);
}

void rpool_close_idle(rpool_t *p)
{
    redisContext *drop[RPOOL_MAX_SIZE];
    int n = 0;

    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->size; i++)
        if (p->slots[i].state == RPOOL__IDLE) {
            drop[n++] = p->slots[i].c;
            p->slots[i].c = NULL;
            p->slots[i].state = RPOOL__FREE;
        }
    pthread_mutex_unlock(&p->mu);
    while (n > 0)
        redisFree(drop[--n]);
}

void rpool_stats(rpool_t *p, rpool_stats_t *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->size; i++) {
        if (p->slots[i].state == RPOOL__IDLE || p->slots[i].state == RPOOL__BUSY)
            out->open++;
        if (p->slots[i].state == RPOOL__BUSY)
            out->busy++;
    }
    out->failed = p->failed;
    pthread_mutex_unlock(&p->mu);
}

/* --- the process's shared pools, one per URL -------------------------------- */

typedef struct rpool__entry {
    struct rpool__entry *next;
    rpool_t *pool;
} rpool__entry_t;

static pthread_mutex_t rpool__mu = PTHREAD_MUTEX_INITIALIZER;
static rpool__entry_t *rpool__list;
static pid_t rpool__pid;

rpool_t *rpool_for(const char *url)
{
    rpool__entry_t *e;
    rpool_t *res = NULL;
    char name[64];

    if (!url)
        url = rconn_url();
    pthread_mutex_lock(&rpool__mu);
    if (rpool__pid != getpid()) {
        /* a forked child: the parent's pools are not ours. Freeing them
         * closes the child's copies of the parent's sockets only (no thread
         * of the parent runs here, so none is borrowed). */
        while (rpool__list) {
            e = rpool__list;
            rpool__list = e->next;
            rpool_free(e->pool);
            free(e);
        }
        rpool__pid = getpid();
    }
    for (e = rpool__list; e; e = e->next)
        if (strcmp(e->pool->url, url) == 0) {
            res = e->pool;
            goto out;
        }
    e = calloc(1, sizeof *e);
    rpool_name("cmd", name, sizeof name);
    if (!e || !(e->pool = rpool_new(url, rpool__env_int("AIPROXY_REDIS_POOL", RPOOL_DEFAULT_SIZE,
                                                         1, RPOOL_MAX_SIZE),
                                    rpool__env_int("AIPROXY_REDIS_POOL_WAIT_MS",
                                                   RPOOL_DEFAULT_WAIT_MS, 0, 60000),
                                    name))) {
        free(e);
        goto out;
    }
    e->next = rpool__list;
    rpool__list = e;
    res = e->pool;
out:
    pthread_mutex_unlock(&rpool__mu);
    return res;
}
