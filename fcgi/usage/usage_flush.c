/* usage_flush — see usage_flush.h. One mutex guards the live table and the
 * flusher's state; it is held to merge a record in or to swap the table out,
 * never across I/O. */
#include "fcgi/usage/usage_flush.h"

#include "fcgi/usage/usage.h"
#include "shared/mono.h"
#include "shared/caps.h"
#include "shared/log.h"
#include "shared/rpool.h"
#include "fcgi/core/reqinfo.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define USAGE_FLUSH__WARN_EVERY_S 60

static pthread_mutex_t usage_flush__mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t usage_flush__cv;
static pthread_t usage_flush__tid;
static usage_pend_t *usage_flush__live;      /* NULL while no flusher runs */
static rpool_t *usage_flush__pool;
static int usage_flush__running, usage_flush__stopping, usage_flush__kick;
static int usage_flush__rewait;   /* the interval changed: wait anew, no flush */
static atomic_int usage_flush__ms = USAGE_FLUSH_MS_DEFAULT;
static atomic_ulong usage_flush__dropped;
static atomic_llong usage_flush__warned_at;

unsigned long usage_drops(void)
{
    return atomic_load(&usage_flush__dropped);
}

/* 1 when a warning may be logged now (at most one a minute, all threads). */
static int usage_flush__may_warn(void)
{
    long long now = (long long)time(NULL), last = atomic_load(&usage_flush__warned_at);
    return now - last >= USAGE_FLUSH__WARN_EVERY_S &&
           atomic_compare_exchange_strong(&usage_flush__warned_at, &last, now);
}

void usage_flush_drop(unsigned long n, const char *why)
{
    unsigned long all = atomic_fetch_add(&usage_flush__dropped, n) + n;
    if (n > 0 && usage_flush__may_warn())
        log_warn("usage: a usage record was dropped (%s); %lu dropped since start", why, all);
}

void usage_flush_interval(int ms)
{
    if (ms > 0 && atomic_exchange(&usage_flush__ms, ms) != ms) {
        pthread_mutex_lock(&usage_flush__mu);   /* the wait starts again with it */
        if (usage_flush__running) {
            usage_flush__rewait = 1;
            pthread_cond_signal(&usage_flush__cv);
        }
        pthread_mutex_unlock(&usage_flush__mu);
    }
}

int usage_flush_add(const usage_pend_t *rec)
{
    int rc = -ESRCH;
    pthread_mutex_lock(&usage_flush__mu);
    if (usage_flush__running) {
        rc = usage_pend_merge(usage_flush__live, rec, CAP_USAGE_PENDING);
        if (usage_pend_count(usage_flush__live) * 2 >= CAP_USAGE_PENDING) {
            usage_flush__kick = 1;
            pthread_cond_signal(&usage_flush__cv);
        }
    }
    pthread_mutex_unlock(&usage_flush__mu);
    return rc;
}

typedef struct usage_flush__pipe {
    redisContext *c;
    size_t n;   /* commands appended */
} usage_flush__pipe_t;

static int usage_flush__pair(const char *key, const char *field, long long v, void *arg)
{
    usage_flush__pipe_t *pp = arg;
    if (redisAppendCommand(pp->c, "HINCRBY %s %s %lld", key, field, v) != REDIS_OK)
        return -ENOMEM;
    pp->n++;
    return 0;
}

static int usage_flush__key(const char *key, long long expire_at, void *arg)
{
    usage_flush__pipe_t *pp = arg;
    if (redisAppendCommand(pp->c, "EXPIREAT %s %lld", key, expire_at) != REDIS_OK)
        return -ENOMEM;
    pp->n++;
    return 0;
}

int usage_flush_send(redisContext *c, const usage_pend_t *t, char *why, size_t whylen)
{
    usage_flush__pipe_t pp = { c, 0 };
    redisReply *r = NULL;
    int rc = 0;

    snprintf(why, whylen, "Redis did not answer");
    if (usage_pend_count(t) == 0)
        return 0;
    if (redisAppendCommand(c, "MULTI") != REDIS_OK || (pp.n++, 0) ||
        usage_pend_each(t, usage_flush__pair, usage_flush__key, &pp) != 0 ||
        redisAppendCommand(c, "EXEC") != REDIS_OK) {
        snprintf(why, whylen, "out of memory");
        return -EIO;   /* half a pipeline: the pool closes the connection */
    }
    pp.n++;
    /* every reply is read, so the connection stays in step; the last is
     * EXEC's: the transaction's results, or why it did not run */
    for (size_t i = 0; i < pp.n; i++) {
        if (redisGetReply(c, (void **)&r) != REDIS_OK || !r) {
            if (c->errstr[0])
                snprintf(why, whylen, "%s", c->errstr);
            return -EIO;
        }
        if (rpool_reply_broken(r))
            rc = -EIO;
        else if (i + 1 == pp.n && r->type != REDIS_REPLY_ARRAY && rc == 0) {
            snprintf(why, whylen, "Redis refused the transaction: %s",
                     r->type == REDIS_REPLY_ERROR ? r->str : "aborted");
            rc = -EPROTO;
        }
        freeReplyObject(r);
    }
    if (rc == -EIO)
        snprintf(why, whylen, "the Redis connection was lost");
    return rc;
}

/* Swaps the live table out and writes it. Redis unreachable: the sums go
 * back into the live table for the next flush (past the cap, or at the
 * last flush, they are dropped and counted). */
static void usage_flush__once(int last)
{
    usage_pend_t *fresh = usage_pend_new(), *out = NULL;
    redisContext *c = NULL;
    char why[320] = "", err[256];
    long long t0;
    int rc, mrc;

    if (!fresh)
        return;   /* the sums stay in the live table */
    pthread_mutex_lock(&usage_flush__mu);
    if (usage_pend_count(usage_flush__live) > 0) {
        out = usage_flush__live;
        usage_flush__live = fresh;
        fresh = NULL;
    }
    pthread_mutex_unlock(&usage_flush__mu);
    usage_pend_free(fresh);
    if (!out)
        return;
    t0 = reqinfo_now_us();
    if (!(c = rpool_get(usage_flush__pool, err, sizeof(err)))) {
        log_debug("usage: no Redis connection for the flush: %s", err);
        snprintf(why, sizeof(why), "Redis is unreachable");   /* no address in a warning */
        rc = -EIO;
    } else {
        rc = usage_flush_send(c, out, why, sizeof(why));
        rpool_put(usage_flush__pool, c, rc == -EIO);
    }
    if (rc == 0) {
        log_debug("usage: %lu records as %zu sums in one round trip, %lld us",
                  usage_pend_records(out), usage_pend_count(out), reqinfo_now_us() - t0);
    } else if (rc == -EIO && !last) {
        pthread_mutex_lock(&usage_flush__mu);
        mrc = usage_pend_merge(usage_flush__live, out, CAP_USAGE_PENDING);
        pthread_mutex_unlock(&usage_flush__mu);
        if (mrc < 0)
            usage_flush_drop(usage_pend_records(out), why);
        else if (usage_flush__may_warn())
            log_warn("usage: writing %lu usage records failed (%s); kept for the next flush",
                     usage_pend_records(out), why);
    } else {
        usage_flush_drop(usage_pend_records(out), why);
    }
    usage_pend_free(out);
}

static void *usage_flush__main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&usage_flush__mu);
    for (;;) {
        struct timespec until;
        int ms = atomic_load(&usage_flush__ms), last;
        until = mono_deadline(CLOCK_MONOTONIC, ms);
        while (!usage_flush__stopping && !usage_flush__kick && !usage_flush__rewait &&
               pthread_cond_timedwait(&usage_flush__cv, &usage_flush__mu, &until) != ETIMEDOUT)
            ;
        if (usage_flush__rewait && !usage_flush__stopping && !usage_flush__kick) {
            usage_flush__rewait = 0;
            continue;
        }
        usage_flush__rewait = 0;
        last = usage_flush__stopping;
        usage_flush__kick = 0;
        pthread_mutex_unlock(&usage_flush__mu);
        usage_flush__once(last);
        pthread_mutex_lock(&usage_flush__mu);
        if (last)
            break;
    }
    pthread_mutex_unlock(&usage_flush__mu);
    return NULL;
}

int usage_start(const char *redis_url)
{
    pthread_condattr_t ca;
    int rc = 0;

    pthread_mutex_lock(&usage_flush__mu);
    if (usage_flush__running)
        goto out;
    rc = -ENOMEM;
    if (!redis_url || !(usage_flush__pool = rpool_for(redis_url)) ||
        !(usage_flush__live = usage_pend_new()))
        goto out;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&usage_flush__cv, &ca);
    pthread_condattr_destroy(&ca);
    usage_flush__stopping = usage_flush__kick = 0;
    if (pthread_create(&usage_flush__tid, NULL, usage_flush__main, NULL) != 0) {
        pthread_cond_destroy(&usage_flush__cv);
        rc = -EAGAIN;
        goto out;
    }
    usage_flush__running = 1;
    rc = 0;
out:
    if (rc < 0) {
        usage_pend_free(usage_flush__live);
        usage_flush__live = NULL;
        log_warn("usage: no flusher thread (%s); each record is written by its request",
                 strerror(-rc));
    }
    pthread_mutex_unlock(&usage_flush__mu);
    return rc;
}

void usage_stop(void)
{
    pthread_mutex_lock(&usage_flush__mu);
    if (!usage_flush__running) {
        pthread_mutex_unlock(&usage_flush__mu);
        return;
    }
    usage_flush__running = 0;    /* later records are written by their request */
    usage_flush__stopping = 1;
    pthread_cond_signal(&usage_flush__cv);
    pthread_mutex_unlock(&usage_flush__mu);
    pthread_join(usage_flush__tid, NULL);   /* after its last flush */
    pthread_mutex_lock(&usage_flush__mu);
    usage_pend_free(usage_flush__live);
    usage_flush__live = NULL;
    pthread_cond_destroy(&usage_flush__cv);
    pthread_mutex_unlock(&usage_flush__mu);
}
