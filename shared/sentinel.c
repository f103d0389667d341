/* sentinel — asking Redis Sentinels where the master is (see sentinel.h). */
#include "shared/sentinel.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* The index of the Sentinel that answered last, tried first next time (one
 * REDIS_URL per process; another URL's index only changes where we start). */
static atomic_int sentinel__front;

int sentinel_parse_master(const redisReply *r, char *host, size_t hostcap, int *port, char *err,
                          size_t errlen)
{
    const redisReply *h, *p;
    char *end;
    long v;

    if (!r) {
        snprintf(err, errlen, "no reply");
        return -EPROTO;
    }
    if (r->type == REDIS_REPLY_NIL) {
        snprintf(err, errlen, "unknown master");
        return -ENOENT;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "%s", r->str ? r->str : "error");
        return -EIO;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        snprintf(err, errlen, "unexpected reply to SENTINEL get-master-addr-by-name");
        return -EPROTO;
    }
    h = r->element[0];
    p = r->element[1];
    if (h->type != REDIS_REPLY_STRING || p->type != REDIS_REPLY_STRING || h->len == 0 ||
        h->len >= hostcap || memchr(h->str, '\0', h->len)) {
        snprintf(err, errlen, "unexpected address in the reply to SENTINEL get-master-addr-by-name");
        return -EPROTO;
    }
    errno = 0;
    v = strtol(p->str, &end, 10);
    if (errno || end == p->str || *end || v < 1 || v > 65535) {
        snprintf(err, errlen, "unexpected port '%.16s' in the reply to SENTINEL "
                              "get-master-addr-by-name", p->str);
        return -EPROTO;
    }
    memcpy(host, h->str, h->len);
    host[h->len] = '\0';
    *port = (int)v;
    return 0;
}

int sentinel_parse_role(const redisReply *r)
{
    const redisReply *e;

    if (!r)
        return -EPROTO;
    if (r->type == REDIS_REPLY_ERROR)
        return 0;
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 1)
        return -EPROTO;
    e = r->element[0];
    if (e->type != REDIS_REPLY_STRING && e->type != REDIS_REPLY_STATUS)
        return -EPROTO;
    return strcmp(e->str, "master") == 0;
}

/* One Sentinel: 0 with the address, or the code of sentinel_parse_master /
 * -EHOSTUNREACH (no answer) with why[] naming the Sentinel. */
static int sentinel__ask_one(const rconn_addr_t *a, const rconn_hostport_t *s, struct timeval tv,
                             char *host, size_t hostcap, int *port, char *why, size_t whylen)
{
    redisContext *c = redisConnectWithTimeout(s->host, s->port, tv);
    redisReply *r = NULL;
    char txt[256];
    int rc = -EHOSTUNREACH;

    if (!c || c->err) {
        snprintf(why, whylen, "%s:%d: %s", s->host, s->port, c ? c->errstr : "out of memory");
        goto out;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(why, whylen, "%s:%d: %s", s->host, s->port, c->errstr);
        goto out;
    }
    if (a->sentinel_password[0]) {
        r = redisCommand(c, "AUTH %s", a->sentinel_password);
        if (!r) {
            snprintf(why, whylen, "%s:%d: %s", s->host, s->port, c->errstr);
            goto out;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            snprintf(why, whylen, "%s:%d refused AUTH: %s", s->host, s->port, r->str);
            rc = -EIO;
            goto out;
        }
        freeReplyObject(r);
    }
    r = redisCommand(c, "SENTINEL get-master-addr-by-name %s", a->master);
    if (!r) {
        snprintf(why, whylen, "%s:%d: %s", s->host, s->port, c->errstr);
        goto out;
    }
    rc = sentinel_parse_master(r, host, hostcap, port, txt, sizeof txt);
    if (rc < 0)
        snprintf(why, whylen, "%s:%d: %s", s->host, s->port, txt);
out:
    if (r)
        freeReplyObject(r);
    if (c)
        redisFree(c);
    return rc;
}

int sentinel_ask(const rconn_addr_t *a, int timeout_ms, char *host, size_t hostcap, int *port,
                 char *err, size_t errlen)
{
    struct timeval tv;
    char shown[1024], why[640] = "no Sentinel in the URL";
    int n = a->nsentinels, first = atomic_load(&sentinel__front), k, unknown = 0, rc = -EHOSTUNREACH;

    if (timeout_ms <= 0 || timeout_ms > SENTINEL_TIMEOUT_MS)
        timeout_ms = SENTINEL_TIMEOUT_MS;
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    rconn_redacted(a, shown, sizeof shown);
    for (k = 0; k < n; k++) {
        int i = (first + k) % n;
        rc = sentinel__ask_one(a, &a->sentinels[i], tv, host, hostcap, port, why, sizeof why);
        if (rc == 0) {
            if (i != first)
                atomic_store(&sentinel__front, i);
            return 0;
        }
        if (rc == -ENOENT)
            unknown++;
    }
    if (unknown) {
        snprintf(err, errlen, "the Sentinels of %s do not know a master named '%s' "
                              "(%d of %d answered so; check the name in REDIS_URL)",
                 shown, a->master, unknown, n);
        return -ENOENT;
    }
    snprintf(err, errlen, "no Sentinel reachable for %s (last: %s)", shown, why);
    return -EHOSTUNREACH;
}

/* --- the watcher: +switch-master ------------------------------------------------ */

/* Bumped when the master moves (sentinel.h, sentinel_epoch). */
static atomic_uint sentinel__epoch;

static pthread_mutex_t sentinel__mu = PTHREAD_MUTEX_INITIALIZER;
static pid_t sentinel__watch_pid;      /* the process whose watcher runs (0: none) */
static rconn_addr_t sentinel__watch_addr;
static char sentinel__last[300];       /* "host:port" of the master last seen */

unsigned sentinel_epoch(void)
{
    return atomic_load(&sentinel__epoch);
}

/* The master is at "host:port" now: a change from the last seen bumps the
 * epoch. Only the watcher thread (and sentinel_watch, before it starts)
 * touch sentinel__last. */
static void sentinel__seen(const char *host, int port)
{
    char now[sizeof sentinel__last];

    snprintf(now, sizeof now, "%s:%d", host, port);
    if (sentinel__last[0] && strcmp(now, sentinel__last) != 0)
        atomic_fetch_add(&sentinel__epoch, 1);
    memcpy(sentinel__last, now, sizeof now);
}

int sentinel_parse_switch(const redisReply *r, const char *master, char *host, size_t hostcap,
                          int *port)
{
    const redisReply *ch, *msg;
    char name[128], nhost[256];
    long p;

    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3)
        return 0;
    ch = r->element[1];
    msg = r->element[2];
    if (r->element[0]->type != REDIS_REPLY_STRING || strcmp(r->element[0]->str, "message") != 0 ||
        ch->type != REDIS_REPLY_STRING || strcmp(ch->str, "+switch-master") != 0 ||
        msg->type != REDIS_REPLY_STRING || msg->len >= 700)
        return 0;
    /* "<name> <old-ip> <old-port> <new-ip> <new-port>" */
    if (sscanf(msg->str, "%127s %*s %*s %255s %ld", name, nhost, &p) != 3 || p < 1 || p > 65535 ||
        strcmp(name, master) != 0 || strlen(nhost) >= hostcap)
        return 0;
    memcpy(host, nhost, strlen(nhost) + 1);
    *port = (int)p;
    return 1;
}

/* A message on the watcher's link: a switch of our master moves the epoch. */
static void sentinel__event(const rconn_addr_t *a, const redisReply *r)
{
    char host[256];
    int port;

    if (sentinel_parse_switch(r, a->master, host, sizeof host, &port) == 1)
        sentinel__seen(host, port);
}

/* One Sentinel link: SUBSCRIBE +switch-master on Sentinel s, then ask (on a
 * second connection) where the master is, so a switch missed while we were
 * away shows, then read events, with a PING after each quiet second (two
 * unanswered: the link is dead). Returns when the link is lost. */
static void sentinel__watch_one(const rconn_addr_t *a, const rconn_hostport_t *s)
{
    struct timeval tv = {0, SENTINEL_TIMEOUT_MS * 1000};
    redisContext *c = redisConnectWithTimeout(s->host, s->port, tv);
    redisReply *r = NULL;
    char host[256], why[640];
    int port, unanswered = 0, done;

    if (!c || c->err || redisSetTimeout(c, tv) != REDIS_OK)
        goto out;
    if (a->sentinel_password[0]) {
        r = redisCommand(c, "AUTH %s", a->sentinel_password);
        if (!r || r->type == REDIS_REPLY_ERROR)
            goto out;
        freeReplyObject(r);
    }
    r = redisCommand(c, "SUBSCRIBE +switch-master");
    if (!r || r->type != REDIS_REPLY_ARRAY)
        goto out;
    freeReplyObject(r);
    r = NULL;
    if (sentinel__ask_one(a, s, tv, host, sizeof host, &port, why, sizeof why) < 0)
        goto out;
    sentinel__seen(host, port);
    for (;;) {
        struct pollfd pfd = {c->fd, POLLIN, 0};
        int n = poll(&pfd, 1, 1000);
        if (n < 0 && errno != EINTR)
            goto out;
        if (n == 0) {                  /* quiet: is the Sentinel still there? */
            if (++unanswered > 2 || redisAppendCommand(c, "PING") != REDIS_OK)
                goto out;
            do {
                if (redisBufferWrite(c, &done) != REDIS_OK)
                    goto out;
            } while (!done);
            continue;
        }
        if (n < 0 || redisBufferRead(c) != REDIS_OK)
            goto out;
        for (;;) {
            void *vp = NULL;
            if (redisGetReplyFromReader(c, &vp) != REDIS_OK)
                goto out;
            if (!vp)
                break;
            r = vp;
            unanswered = 0;
            sentinel__event(a, r);
            freeReplyObject(r);
            r = NULL;
        }
    }
out:
    if (r)
        freeReplyObject(r);
    if (c)
        redisFree(c);
}

/* The watcher thread: one Sentinel link after another, from the front, a
 * short pause between (all Sentinels down costs one attempt each 250 ms). */
static void *sentinel__watch_main(void *arg)
{
    const rconn_addr_t *a = arg;
    unsigned k = (unsigned)atomic_load(&sentinel__front);

    for (;; k++) {
        sentinel__watch_one(a, &a->sentinels[k % (unsigned)a->nsentinels]);
        nanosleep(&(struct timespec){0, 250 * 1000000L}, NULL);
    }
    return NULL;
}

void sentinel_watch(const rconn_addr_t *a, const char *host, int port)
{
    pid_t me = getpid();
    pthread_attr_t at;
    pthread_t th;
    sigset_t all, old;

    if (!a->master[0] || a->nsentinels < 1)
        return;
    pthread_mutex_lock(&sentinel__mu);
    if (sentinel__watch_pid != me && pthread_attr_init(&at) == 0) {
        sentinel__watch_addr = *a;
        snprintf(sentinel__last, sizeof sentinel__last, "%s:%d", host, port);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        /* no signal for this thread: the daemons wait for theirs elsewhere */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        if (pthread_create(&th, &at, sentinel__watch_main, &sentinel__watch_addr) == 0)
            sentinel__watch_pid = me;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&at);
    }
    pthread_mutex_unlock(&sentinel__mu);
}
