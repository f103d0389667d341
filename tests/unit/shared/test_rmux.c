/* The shared pipelined connection (shared/rmux.h) against a real, private
 * redis-server: replies reach their own tickets whatever order they are
 * waited for in and however many threads share it; a dropped ticket's reply
 * is read by someone else and shown to its check; a Redis that goes away
 * fails the tickets in flight (NULL, never a hang) and the next send
 * reconnects; the connection is named and there is one. */
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

#include "tests/unit/support/tredis.h"
#include "shared/rmux.h"

static int group_setup(void **state)
{
    (void)state;
    return tredis_start("rmux") < 0 ? -1 : 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tredis_stop();
    return 0;
}

static rmux_ticket_t send3(rmux_t *m, const char *a, const char *b, const char *c)
{
    const char *argv[3] = { a, b, c };
    rmux_ticket_t t;
    assert_int_equal(rmux_send(m, c ? 3 : b ? 2 : 1, argv, &t, NULL, 0), 0);
    return t;
}

static void expect_str(redisReply *r, const char *s)
{
    assert_non_null(r);
    assert_true(r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS);
    assert_string_equal(r->str, s);
    freeReplyObject(r);
}

static void test_order_and_name(void **state)
{
    rmux_t *m = rmux_new(tredis_url(), "tm-a");
    rmux_ticket_t t1, t2, t3, t4;
    redisReply *r;
    (void)state;
    assert_non_null(m);
    assert_int_equal(rmux_fd(m), -1);           /* lazily connected */
    t1 = send3(m, "SET", "rmux:a", "one");
    t2 = send3(m, "GET", "rmux:a", NULL);
    t3 = send3(m, "ECHO", "three", NULL);
    t4 = send3(m, "CLIENT", "GETNAME", NULL);
    assert_true(rmux_fd(m) >= 0);
    expect_str(rmux_wait(m, t3), "three");      /* out of order: the others are kept */
    expect_str(rmux_wait(m, t1), "OK");
    expect_str(rmux_wait(m, t4), "tm-a");
    expect_str(rmux_wait(m, t2), "one");
    r = rmux_wait(m, send3(m, "INCRBY", "rmux:a", "1"));   /* an error reply is a reply */
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
    rmux_free(m);
}

struct worker {
    rmux_t *m;
    int id, bad;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char key[32];

    snprintf(key, sizeof key, "rmux:w:%d", w->id);
    for (long long i = 1; i <= 300; i++) {
        rmux_ticket_t t = send3(w->m, "INCR", key, NULL);
        redisReply *r = rmux_wait(w->m, t);
        if (!r || r->type != REDIS_REPLY_INTEGER || r->integer != i)
            w->bad++;
        freeReplyObject(r);
    }
    return NULL;
}

/* 8 threads, each counting its own key: every reply is its own */
static void test_threads(void **state)
{
    rmux_t *m = rmux_new(tredis_url(), "tm-b");
    pthread_t th[8];
    struct worker w[8];
    (void)state;
    for (int i = 0; i < 8; i++) {
        w[i] = (struct worker){ m, i, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].bad, 0);
    }
    rmux_free(m);
}

static int checked, check_errors, check_null;

static void count_check(redisReply *r)
{
    checked++;
    if (!r)
        check_null++;
    else if (r->type == REDIS_REPLY_ERROR)
        check_errors++;
}

static void test_drop(void **state)
{
    rmux_t *m = rmux_new(tredis_url(), "tm-c");
    rmux_ticket_t t;
    (void)state;
    checked = check_errors = check_null = 0;
    t = send3(m, "SET", "rmux:d", "x");
    rmux_drop(m, t, count_check);
    t = send3(m, "HSET", "rmux:d", "f");          /* WRONGTYPE, dropped */
    rmux_drop(m, t, count_check);
    expect_str(rmux_wait(m, send3(m, "ECHO", "after", NULL)), "after");
    assert_int_equal(checked, 2);                  /* read on the way to the ECHO's */
    assert_int_equal(check_errors, 1);
    assert_int_equal(check_null, 0);
    /* with nobody waiting, drops read what came themselves, so nothing
     * piles up: 100 dropped, then Redis has at most a few owed */
    for (int i = 0; i < 100; i++)
        rmux_drop(m, send3(m, "ECHO", "x", NULL), count_check);
    for (int i = 0; i < 200 && checked < 2 + 100 - 16; i++) {
        poll(NULL, 0, 10);                         /* bounded: 2 s */
        rmux_drop(m, send3(m, "ECHO", "x", NULL), count_check);
    }
    assert_true(checked >= 2 + 100 - 16);
    assert_int_equal(check_errors, 1);
    rmux_free(m);
}

static void test_down_then_back(void **state)
{
    rmux_t *m = rmux_new(tredis_url(), "tm-d");
    rmux_ticket_t t, d;
    char err[256] = "";
    int rc = -1;
    (void)state;
    checked = check_errors = check_null = 0;
    expect_str(rmux_wait(m, send3(m, "ECHO", "up", NULL)), "up");
    t = send3(m, "BLPOP", "rmux:never", "0");     /* owed a reply Redis never sends */
    d = send3(m, "ECHO", "dropped", NULL);
    rmux_drop(m, d, count_check);
    tredis_stop();
    assert_null(rmux_wait(m, t));                  /* failed, not hung */
    assert_int_equal(check_null, 1);               /* the dropped one heard it too */
    {
        const char *argv[1] = { "PING" };
        rmux_ticket_t x;
        assert_true(rmux_send(m, 1, argv, &x, err, sizeof err) < 0);   /* down: fails */
        assert_true(err[0] != 0);
    }
    assert_int_equal(tredis_start("rmux"), 0);
    for (int i = 0; i < 40 && rc != 0; i++) {      /* bounded: 2 s */
        const char *argv[2] = { "ECHO", "back" };
        rc = rmux_send(m, 2, argv, &t, NULL, 0);
        if (rc != 0)
            poll(NULL, 0, 50);
    }
    assert_int_equal(rc, 0);
    expect_str(rmux_wait(m, t), "back");
    rmux_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_name),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_drop),
        cmocka_unit_test(test_down_then_back),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
