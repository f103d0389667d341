/* sentinel_watch — the per-process thread that hears +switch-master and moves
 * sentinel_epoch() (see sentinel.h).
 *
 * Why: after a switchover (SENTINEL FAILOVER, or an old master back) Sentinel
 * reconfigures the demoted master only ~8 s later (SENTINEL_PUBLISH_PERIOD x
 * 4) and only then kills its clients; until then it takes writes that its
 * resync throws away. The holders of long-lived connections compare the
 * epoch with the one they connected under, so they move at once.
 *
 * Fork: the responder's master connects (seeding) and then forks its workers;
 * a process must not fork while this thread holds a connection half-read, and
 * ThreadSanitizer refuses threads in the child of a multi-threaded fork. So a
 * pthread_atfork prepare handler stops the thread (a wake pipe ends its waits)
 * and joins it; the parent starts it again, the child starts its own at its
 * first Sentinel connection. */
#include "shared/sentinel.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

/* Between two Sentinel links (all Sentinels down: one attempt per this). */
#define SENTINEL_WATCH_PAUSE_MS 250
/* A quiet link is PINGed after this; two PINGs unanswered end it. */
#define SENTINEL_WATCH_PING_MS 1000

static atomic_uint sentinel__epoch;

static pthread_once_t sentinel__once = PTHREAD_ONCE_INIT;
static pthread_mutex_t sentinel__mu = PTHREAD_MUTEX_INITIALIZER;
static pid_t sentinel__pid;            /* the process whose thread runs (0: none) */
static pthread_t sentinel__th;
static int sentinel__wake[2] = {-1, -1};   /* written to stop the thread */
static atomic_int sentinel__stop;
static int sentinel__restart;          /* stopped by the fork prepare handler */
static rconn_addr_t sentinel__addr;
static char sentinel__last[300];       /* "host:port" of the master last seen */

unsigned sentinel_epoch(void)
{
    return atomic_load(&sentinel__epoch);
}

/* The master is at "host:port" now: a change from the last seen moves the
 * epoch. Only the thread touches sentinel__last while it runs. */
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

/* Waits up to ms for fd (-1: none) to be readable. 1 readable, 0 not, -1 the
 * thread is told to stop (or poll failed). */
static int sentinel__wait(int fd, int ms)
{
    struct pollfd p[2] = {{sentinel__wake[0], POLLIN, 0}, {fd, POLLIN, 0}};
    int n = poll(p, fd >= 0 ? 2 : 1, ms);

    if (atomic_load(&sentinel__stop) || (n < 0 && errno != EINTR) || (p[0].revents & POLLIN))
        return -1;
    return n > 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR)) ? 1 : 0;
}

/* Sends what c has queued (a PING). 0 or -1. */
static int sentinel__flush(redisContext *c)
{
    int done = 0;

    while (!done)
        if (redisBufferWrite(c, &done) != REDIS_OK)
            return -1;
    return 0;
}

/* One Sentinel link: SUBSCRIBE +switch-master on s, then ask (on a second
 * connection) where the master is, so a switch missed while away shows; then
 * read events, PINGing each quiet second. Returns when the link is lost or
 * the thread is told to stop. */
static void sentinel__watch_one(const rconn_addr_t *a, const rconn_hostport_t *s)
{
    struct timeval tv = {0, SENTINEL_TIMEOUT_MS * 1000};
    redisContext *c = redisConnectWithTimeout(s->host, s->port, tv);
    redisReply *r = NULL;
    char host[256], why[640];
    int port, unanswered = 0, w;

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
    if (sentinel_ask_one(a, s, tv, host, sizeof host, &port, why, sizeof why) < 0)
        goto out;
    sentinel__seen(host, port);
    while ((w = sentinel__wait(c->fd, SENTINEL_WATCH_PING_MS)) >= 0) {
        void *vp = NULL;
        if (w == 0) {                  /* quiet: is the Sentinel still there? */
            if (++unanswered > 2 || redisAppendCommand(c, "PING") != REDIS_OK ||
                sentinel__flush(c) < 0)
                goto out;
            continue;
        }
        if (redisBufferRead(c) != REDIS_OK)
            goto out;
        while (redisGetReplyFromReader(c, &vp) == REDIS_OK && vp) {
            r = vp;
            unanswered = 0;
            if (sentinel_parse_switch(r, a->master, host, sizeof host, &port) == 1)
                sentinel__seen(host, port);
            freeReplyObject(r);
            r = NULL;
            vp = NULL;
        }
        if (c->err)
            goto out;
    }
out:
    if (r)
        freeReplyObject(r);
    if (c)
        redisFree(c);
}

/* One Sentinel link after another, from the front, a pause between. */
static void *sentinel__main(void *arg)
{
    const rconn_addr_t *a = arg;
    unsigned k = (unsigned)sentinel_front();

    for (; !atomic_load(&sentinel__stop); k++) {
        sentinel__watch_one(a, &a->sentinels[k % (unsigned)a->nsentinels]);
        if (sentinel__wait(-1, SENTINEL_WATCH_PAUSE_MS) < 0)
            break;
    }
    return NULL;
}

/* With sentinel__mu held: starts the thread with every signal blocked. */
static void sentinel__start(void)
{
    sigset_t all, old;

    atomic_store(&sentinel__stop, 0);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (pthread_create(&sentinel__th, NULL, sentinel__main, &sentinel__addr) == 0)
        sentinel__pid = getpid();
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* fork(): stop and join the thread (with the lock held across the fork). */
static void sentinel__prepare(void)
{
    char b = 1;

    pthread_mutex_lock(&sentinel__mu);
    sentinel__restart = 0;
    if (sentinel__pid == getpid()) {
        atomic_store(&sentinel__stop, 1);
        if (write(sentinel__wake[1], &b, 1) < 0) {
            /* the pipe is non-blocking and drained below: cannot be full */
        }
        pthread_join(sentinel__th, NULL);
        while (read(sentinel__wake[0], &b, 1) == 1) {
        }
        sentinel__pid = 0;
        sentinel__restart = 1;
    }
}

static void sentinel__parent(void)
{
    if (sentinel__restart)
        sentinel__start();
    sentinel__restart = 0;
    pthread_mutex_unlock(&sentinel__mu);
}

static void sentinel__child(void)
{
    sentinel__restart = 0;             /* started again at the first connection */
    pthread_mutex_unlock(&sentinel__mu);
}

static void sentinel__init(void)
{
    if (pipe2(sentinel__wake, O_CLOEXEC | O_NONBLOCK) == 0)
        pthread_atfork(sentinel__prepare, sentinel__parent, sentinel__child);
}

void sentinel_watch(const rconn_addr_t *a, const char *host, int port)
{
    if (!a->master[0] || a->nsentinels < 1)
        return;
    pthread_once(&sentinel__once, sentinel__init);
    if (sentinel__wake[0] < 0)
        return;                        /* no pipe: no watcher (the kill still ends links) */
    pthread_mutex_lock(&sentinel__mu);
    if (sentinel__pid != getpid()) {
        sentinel__addr = *a;
        snprintf(sentinel__last, sizeof sentinel__last, "%s:%d", host, port);
        sentinel__start();
    }
    pthread_mutex_unlock(&sentinel__mu);
}
