/* bench-pingpong — what Redis pub/sub itself costs, for `make bench`
 * (issue 20): the floor of the broker protocol's tool round trip. Two
 * processes, each with a publishing and a subscribed connection, as a
 * responder thread and the broker have: PUBLISH ping -> the other process's
 * subscriber -> PUBLISH pong -> back. Figure 2 is read against it.
 *
 *   bench-pingpong REDIS_URL [N]
 * Prints one line "BENCHJSON {"n":N,"p50_us":…,"p99_us":…}". */
#include "shared/rconn.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long pp__now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int pp__cmp(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;

    return x < y ? -1 : x > y;
}

/* Subscribes `sub` to `chan` and waits for the confirmation. */
static int pp__subscribe(redisContext *sub, const char *chan)
{
    redisReply *r = redisCommand(sub, "SUBSCRIBE %s", chan);
    int ok = r && r->type == REDIS_REPLY_ARRAY;

    freeReplyObject(r);
    return ok ? 0 : -1;
}

/* The next message's payload on `sub` into out; -1 on error. */
static int pp__next(redisContext *sub, char *out, size_t len)
{
    void *v = NULL;
    redisReply *r;
    int rc = -1;

    if (redisGetReply(sub, &v) != REDIS_OK)
        return -1;
    r = v;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[2]->str) {
        snprintf(out, len, "%s", r->element[2]->str);
        rc = 0;
    }
    freeReplyObject(r);
    return rc;
}

static void pp__echo(const char *url)
{
    char err[256], msg[64];
    redisContext *sub = rconn_connect(url, 2000, err, sizeof(err));
    redisContext *pub = rconn_connect(url, 2000, err, sizeof(err));

    if (!sub || !pub || pp__subscribe(sub, "bench:ping") != 0)
        _exit(1);
    redisSetTimeout(sub, (struct timeval){ 0, 0 });
    freeReplyObject(redisCommand(pub, "PUBLISH bench:ready 1"));
    while (pp__next(sub, msg, sizeof(msg)) == 0) {
        if (strcmp(msg, "stop") == 0)
            break;
        freeReplyObject(redisCommand(pub, "PUBLISH bench:pong %s", msg));
    }
    _exit(0);
}

int main(int argc, char **argv)
{
    const char *url = argc > 1 ? argv[1] : rconn_url();
    long n = argc > 2 ? strtol(argv[2], NULL, 10) : 5000;
    char err[256], msg[64];
    redisContext *sub, *pub;
    long long *lat;
    pid_t kid;
    int status, rc = 1;

    if (n < 10 || n > 10000000 || !(lat = calloc((size_t)n, sizeof(*lat))))
        return 2;
    sub = rconn_connect(url, 2000, err, sizeof(err));
    pub = rconn_connect(url, 2000, err, sizeof(err));
    if (!sub || !pub || pp__subscribe(sub, "bench:pong") != 0 ||
        pp__subscribe(sub, "bench:ready") != 0) {
        fprintf(stderr, "bench-pingpong: %s\n", err);
        return 1;
    }
    if ((kid = fork()) == 0)
        pp__echo(url);
    if (pp__next(sub, msg, sizeof(msg)) != 0)   /* the echo process is subscribed */
        goto out;
    for (long i = 0; i < n; i++) {
        long long t0 = pp__now_us();
        freeReplyObject(redisCommand(pub, "PUBLISH bench:ping %ld", i));
        if (pp__next(sub, msg, sizeof(msg)) != 0)
            goto out;
        lat[i] = pp__now_us() - t0;
    }
    qsort(lat, (size_t)n, sizeof(*lat), pp__cmp);
    printf("BENCHJSON {\"n\":%ld,\"p50_us\":%lld,\"p99_us\":%lld}\n", n, lat[n / 2],
           lat[n * 99 / 100]);
    rc = 0;
out:
    freeReplyObject(redisCommand(pub, "PUBLISH bench:ping stop"));
    waitpid(kid, &status, 0);
    redisFree(sub);
    redisFree(pub);
    free(lat);
    return rc;
}
