/* regwatch — the process's registry change watcher (regwatch.h). */
#include "shared/regwatch.h"

#include "shared/log.h"
#include "shared/rconn.h"
#include "shared/rpool.h"
#include "shared/reg.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REGWATCH_RETRY_MS 200
#define REGWATCH_CONNECT_MS 2000

struct regwatch {
    char url[1024];
    reg_keys_t k;
    unsigned long gen;       /* atomic */
    int fd;                  /* atomic: the subscribed socket, -1 when not subscribed */
    int wake[2];             /* self-pipe: regwatch_stop wakes the thread */
    int stop;                /* atomic */
    pthread_t tid;
};

unsigned long regwatch_gen(const regwatch_t *w)
{
    return __atomic_load_n(&w->gen, __ATOMIC_ACQUIRE);
}

void regwatch_bump(regwatch_t *w)
{
    __atomic_add_fetch(&w->gen, 1, __ATOMIC_ACQ_REL);
}

int regwatch_pending(const regwatch_t *w)
{
    struct pollfd p;
    int fd = __atomic_load_n(&w->fd, __ATOMIC_ACQUIRE);

    if (fd < 0)
        return 1;
    p.fd = fd;
    p.events = POLLIN;
    p.revents = 0;
    /* readable, hung up or invalid alike: re-read rather than trust */
    return poll(&p, 1, 0) != 0;
}

/* Waits up to ms for the socket fd (or only the wake pipe when fd < 0).
 * 1: fd readable; 0: timeout; -1: woken to stop. */
static int regwatch__wait(regwatch_t *w, int fd, int ms)
{
    struct pollfd p[2] = { { w->wake[0], POLLIN, 0 }, { fd, POLLIN, 0 } };
    int n = poll(p, fd >= 0 ? 2 : 1, ms);

    if (__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE) || (n > 0 && p[0].revents))
        return -1;
    return n > 0 && p[1].revents ? 1 : 0;
}

/* A connection subscribed to the change channel, or NULL. */
static redisContext *regwatch__subscribe(regwatch_t *w)
{
    char err[512];
    redisContext *c = rconn_connect(w->url, REGWATCH_CONNECT_MS, err, sizeof(err));
    redisReply *r;

    char name[64];

    if (!c)
        return NULL;
    rpool_name("watch", name, sizeof name);   /* countable per process (CLIENT LIST) */
    (void)rpool_setname(c, name);
    /* one confirmation per channel */
    r = redisCommand(c, "SUBSCRIBE %s %s", w->k.changed, w->k.keys_changed);
    if (r && r->type == REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        if (redisGetReply(c, (void **)&r) != REDIS_OK)
            r = NULL;
    }
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        redisFree(c);
        return NULL;
    }
    freeReplyObject(r);
    return c;
}

static void *regwatch__main(void *arg)
{
    regwatch_t *w = arg;
    redisContext *c = NULL;
    unsigned epoch = 0;
    int down_logged = 0;

    while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
        int ready;
        void *rep = NULL;
        if (!c) {
            if (!(c = regwatch__subscribe(w))) {
                if (!down_logged++)
                    log_debug("regwatch: not subscribed (Redis away); readers check per request");
                if (regwatch__wait(w, -1, REGWATCH_RETRY_MS) < 0)
                    break;
                continue;
            }
            down_logged = 0;
            epoch = rconn_epoch();
            __atomic_store_n(&w->fd, c->fd, __ATOMIC_RELEASE);
            regwatch_bump(w);   /* edits may have been missed while away */
        }
        ready = regwatch__wait(w, c->fd, REGWATCH_TICK_MS);
        if (ready < 0)
            break;
        /* before reading: a reader that finds the socket empty finds the
         * generation moved */
        regwatch_bump(w);
        if (ready == 0 && epoch == rconn_epoch())
            continue;          /* the tick */
        if (ready == 0 || redisGetReply(c, &rep) != REDIS_OK) {
            /* lost, or Sentinel named another master: subscribe there */
            __atomic_store_n(&w->fd, -1, __ATOMIC_RELEASE);
            redisFree(c);
            c = NULL;
            regwatch_bump(w);
            continue;
        }
        freeReplyObject(rep);
        /* a message may be followed by more already buffered by hiredis:
         * drain them without blocking */
        while (redisGetReplyFromReader(c, &rep) == REDIS_OK && rep)
            freeReplyObject(rep);
    }
    __atomic_store_n(&w->fd, -1, __ATOMIC_RELEASE);
    if (c)
        redisFree(c);
    return NULL;
}

regwatch_t *regwatch_start(const char *url, const char *prefix)
{
    regwatch_t *w = calloc(1, sizeof(*w));

    if (!w)
        return NULL;
    w->fd = -1;
    w->wake[0] = w->wake[1] = -1;
    if (!url)
        url = rconn_url();
    if (strlen(url) >= sizeof(w->url) || reg_keys_init(&w->k, prefix ? prefix : rconn_prefix()) != 0 ||
        pipe2(w->wake, O_CLOEXEC | O_NONBLOCK) != 0)
        goto fail;
    memcpy(w->url, url, strlen(url) + 1);
    if (pthread_create(&w->tid, NULL, regwatch__main, w) != 0)
        goto fail;
    return w;
fail:
    if (w->wake[0] >= 0) {
        close(w->wake[0]);
        close(w->wake[1]);
    }
    free(w);
    return NULL;
}

void regwatch_stop(regwatch_t *w)
{
    ssize_t n;

    if (!w)
        return;
    __atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
    n = write(w->wake[1], "x", 1);
    (void)n;
    pthread_join(w->tid, NULL);
    close(w->wake[0]);
    close(w->wake[1]);
    free(w);
}
