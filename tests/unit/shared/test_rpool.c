/* The per-process Redis command pool (shared/rpool.h) against a real,
 * private redis-server: connections open lazily and are reused, named with
 * CLIENT SETNAME, never more than the size; a borrow past the size waits
 * (bounded) and fails, or gets the connection another thread gives back; a
 * connection Redis killed, or given back broken or dirty, is replaced; and a
 * Redis that is down fails borrows fast, then heals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/unit/support/tredis.h"
#include "shared/rconn.h"
#include "shared/rpool.h"

static int group_setup(void **state)
{
    (void)state;
    return tredis_start("rpool") < 0 ? -1 : 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tredis_stop();
    return 0;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Connections Redis lists under `name` (CLIENT LIST, on an admin connection). */
static int count_named(const char *name)
{
    char err[256], needle[160];
    redisContext *a = rconn_connect(tredis_url(), 2000, err, sizeof err);
    redisReply *r;
    int n = 0;

    assert_non_null(a);
    r = redisCommand(a, "CLIENT LIST");
    assert_non_null(r);
    snprintf(needle, sizeof needle, " name=%s ", name);
    for (const char *p = r->str; (p = strstr(p, needle)); p++)
        n++;
    freeReplyObject(r);
    redisFree(a);
    return n;
}

static void ping(redisContext *c)
{
    redisReply *r = redisCommand(c, "PING");
    assert_non_null(r);
    assert_string_equal(r->str, "PONG");
    freeReplyObject(r);
}

static void test_lazy_reuse_named(void **state)
{
    rpool_t *p = rpool_new(tredis_url(), 2, 1000, "tp-a");
    redisContext *c1, *c2, *c3;
    rpool_stats_t st;
    (void)state;
    assert_non_null(p);
    rpool_stats(p, &st);
    assert_int_equal(st.open, 0);              /* nothing before the first borrow */
    assert_int_equal(count_named("tp-a"), 0);
    c1 = rpool_get(p, NULL, 0);
    assert_non_null(c1);
    ping(c1);
    rpool_put(p, c1, 0);
    c2 = rpool_get(p, NULL, 0);
    assert_ptr_equal(c2, c1);                  /* the idle one is reused */
    c3 = rpool_get(p, NULL, 0);
    assert_non_null(c3);
    assert_ptr_not_equal(c3, c1);
    rpool_stats(p, &st);
    assert_int_equal(st.open, 2);
    assert_int_equal(st.busy, 2);
    assert_int_equal(count_named("tp-a"), 2);
    rpool_put(p, c2, 0);
    rpool_put(p, c3, 0);
    rpool_stats(p, &st);
    assert_int_equal(st.busy, 0);
    rpool_free(p);
}

static void test_bounded_wait(void **state)
{
    rpool_t *p = rpool_new(tredis_url(), 1, 200, "tp-b");
    redisContext *c1, *c2;
    char err[256] = "";
    rpool_stats_t st;
    long long t0;
    (void)state;
    c1 = rpool_get(p, NULL, 0);
    assert_non_null(c1);
    t0 = now_ms();
    c2 = rpool_get(p, err, sizeof err);        /* every connection busy */
    assert_null(c2);
    assert_true(now_ms() - t0 >= 200);         /* it waited its bound, then gave up */
    assert_non_null(strstr(err, "busy"));
    rpool_stats(p, &st);
    assert_int_equal(st.failed, 1);
    assert_int_equal(count_named("tp-b"), 1);  /* and opened no second connection */
    rpool_put(p, c1, 0);
    rpool_free(p);
}

typedef struct handback {
    rpool_t *p;
    redisContext *c;
    int delay_ms;
} handback_t;

static void *handback_main(void *arg)
{
    handback_t *h = arg;
    poll(NULL, 0, h->delay_ms);
    rpool_put(h->p, h->c, 0);
    return NULL;
}

/* A waiting borrower gets the connection another thread gives back. */
static void test_waiter_woken(void **state)
{
    rpool_t *p = rpool_new(tredis_url(), 1, 5000, "tp-c");
    handback_t h = { p, NULL, 50 };
    pthread_t t;
    redisContext *c2;
    (void)state;
    h.c = rpool_get(p, NULL, 0);
    assert_non_null(h.c);
    assert_int_equal(pthread_create(&t, NULL, handback_main, &h), 0);
    c2 = rpool_get(p, NULL, 0);
    assert_ptr_equal(c2, h.c);
    pthread_join(t, NULL);
    ping(c2);
    rpool_put(p, c2, 0);
    rpool_free(p);
}

/* Redis kills the idle connection: the next borrow replaces it. A
 * connection given back broken, or with a reply unread, is closed. */
static void test_killed_and_dirty_replaced(void **state)
{
    rpool_t *p = rpool_new(tredis_url(), 1, 1000, "tp-d");
    redisContext *c, *a;
    redisReply *r;
    char err[256];
    (void)state;
    c = rpool_get(p, NULL, 0);
    ping(c);
    rpool_put(p, c, 0);
    a = rconn_connect(tredis_url(), 2000, err, sizeof err);
    assert_non_null(a);
    r = redisCommand(a, "CLIENT KILL TYPE normal SKIPME yes");
    assert_non_null(r);
    freeReplyObject(r);
    redisFree(a);
    c = rpool_get(p, NULL, 0);                 /* noticed without a round trip */
    assert_non_null(c);
    ping(c);
    assert_int_equal(count_named("tp-d"), 1);
    /* dirty: a command whose reply was never read */
    assert_int_equal(redisAppendCommand(c, "PING"), REDIS_OK);
    rpool_put(p, c, 0);
    c = rpool_get(p, NULL, 0);
    ping(c);                                   /* a fresh one: no stale PONG first */
    rpool_put(p, c, 1);                        /* broken by the caller's word */
    c = rpool_get(p, NULL, 0);
    ping(c);
    rpool_put(p, c, 0);
    assert_int_equal(count_named("tp-d"), 1);
    rpool_free(p);
}

/* Redis down: a borrow fails (and the next ones fail fast, without a new
 * connect); once it is back, borrows work again. */
static void test_down_then_back(void **state)
{
    rpool_t *p = rpool_new(tredis_url(), 2, 1000, "tp-e");
    char err[256] = "", again[256] = "";
    redisContext *c = NULL;
    (void)state;
    tredis_stop();
    assert_null(rpool_get(p, err, sizeof err));
    assert_true(err[0] != 0);
    assert_null(rpool_get(p, again, sizeof again));   /* fails fast: the same reason */
    assert_string_equal(again, err);
    assert_int_equal(tredis_start("rpool"), 0);
    for (int i = 0; i < 40 && !(c = rpool_get(p, NULL, 0)); i++)
        poll(NULL, 0, 50);                     /* bounded: 2 s */
    assert_non_null(c);
    ping(c);
    rpool_put(p, c, 0);
    rpool_free(p);
}

static void test_shared_pool_and_env(void **state)
{
    rpool_t *a, *b;
    redisContext *c;
    char name[64];
    (void)state;
    setenv("AIPROXY_REDIS_POOL", "2", 1);
    a = rpool_for(tredis_url());
    b = rpool_for(tredis_url());
    assert_non_null(a);
    assert_ptr_equal(a, b);                    /* one per URL per process */
    c = rpool_get(a, NULL, 0);
    ping(c);
    rpool_put(a, c, 0);
    rpool_name("cmd", name, sizeof name);
    assert_int_equal(count_named(name), 1);
    assert_null(rpool_new(tredis_url(), 0, 0, NULL));
    assert_null(rpool_new(tredis_url(), RPOOL_MAX_SIZE + 1, 0, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lazy_reuse_named),
        cmocka_unit_test(test_bounded_wait),
        cmocka_unit_test(test_waiter_woken),
        cmocka_unit_test(test_killed_and_dirty_replaced),
        cmocka_unit_test(test_down_then_back),
        cmocka_unit_test(test_shared_pool_and_env),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
