/* The registry watcher (shared/regwatch.h) against a real, private
 * redis-server: a reader with a watcher sees another writer's edits, makes
 * no round trip while nothing moves, and follows a Redis restart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/unit/support/tredis.h"
#include "shared/cfg.h"
#include "shared/rconn.h"
#include "shared/reg.h"
#include "shared/regwatch.h"

static int group_setup(void **state)
{
    (void)state;
    return tredis_start("regwatch") < 0 ? -1 : 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tredis_stop();
    return 0;
}

static reg_t *open_reg(const char *prefix)
{
    reg_t *r = NULL;
    char err[512] = "";
    if (reg_open(&r, tredis_url(), prefix, err, sizeof err) != 0)
        fail_msg("reg_open: %s", err);
    return r;
}

static json_object *doc(void)
{
    const char *y = "backends:\n  b: {kind: openai, api_key: k}\n"
                    "assistants:\n  - {name: a, backend: b, model: m}\n";
    char err[512];
    json_object *d = NULL;
    if (cfg_load_yaml(y, strlen(y), "t", &d, err, sizeof err) != 0)
        fail_msg("%s", err);
    return d;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Redis's count of GET commands so far. */
static long long gets_done(void)
{
    char err[256];
    redisContext *c = rconn_connect(tredis_url(), 2000, err, sizeof err);
    redisReply *r = c ? redisCommand(c, "INFO commandstats") : NULL;
    long long n = 0;
    const char *p;
    if (r && r->type == REDIS_REPLY_STRING && (p = strstr(r->str, "cmdstat_get:calls=")))
        n = strtoll(p + strlen("cmdstat_get:calls="), NULL, 10);
    freeReplyObject(r);
    if (c)
        redisFree(c);
    return n;
}

/* Refreshes rd until its version is at least v (bounded: 5 s). */
static void refresh_until(reg_t *rd, long long v)
{
    long long end = now_ms() + 5000;
    while (now_ms() < end) {
        if (reg_refresh(rd) == 0 && reg_version(rd) >= v)
            return;
    }
    fail_msg("the reader never saw version %lld (has %lld)", v, reg_version(rd));
}

/* Until the watcher is subscribed, readers check every time: wait for it
 * (bounded: 5 s). */
static void wait_subscribed(regwatch_t *w)
{
    long long end = now_ms() + 5000;
    while (regwatch_pending(w) && now_ms() < end)
        ;
    assert_false(regwatch_pending(w));
}

static void test_sees_edits_without_polling_redis(void **state)
{
    reg_t *w = open_reg("w1:"), *rd = open_reg("w1:");
    regwatch_t *watch = regwatch_start(tredis_url(), "w1:");
    json_object *d = doc(), *a;
    long long before;
    int seeded;
    (void)state;
    assert_non_null(watch);
    reg_set_watch(rd, watch);
    assert_int_equal(reg_seed(w, d, 0, &seeded), 0);
    refresh_until(rd, 1);
    wait_subscribed(watch);
    refresh_until(rd, 1);
    /* nothing moves: a thousand refreshes make (almost) no GET — at most
     * the ticks of the watcher that fall in the loop */
    before = gets_done();
    for (int i = 0; i < 1000; i++)
        assert_int_equal(reg_refresh(rd), 0);
    assert_true(gets_done() - before < 10);
    /* another writer's edit arrives through the change message */
    a = json_tokener_parse("{\"name\":\"a2\",\"backend\":\"b\",\"model\":\"x\"}");
    assert_int_equal(reg_put(w, "assistants", "a2", a, 0), 0);
    refresh_until(rd, 2);
    assert_non_null(reg_get(rd, "assistants", "a2"));
    /* reg_refresh_now always reads */
    before = gets_done();
    assert_int_equal(reg_refresh_now(rd), 0);
    assert_int_equal(gets_done() - before, 1);
    json_object_put(a);
    json_object_put(d);
    reg_close(rd);
    reg_close(w);
    regwatch_stop(watch);
}

static void test_follows_a_restart(void **state)
{
    reg_t *w = open_reg("w2:"), *rd = open_reg("w2:");
    regwatch_t *watch = regwatch_start(tredis_url(), "w2:");
    json_object *d = doc();
    unsigned long g;
    int seeded;
    (void)state;
    reg_set_watch(rd, watch);
    assert_int_equal(reg_seed(w, d, 0, &seeded), 0);
    refresh_until(rd, 1);
    g = regwatch_gen(watch);
    tredis_stop();
    /* Redis gone: the watcher is not subscribed, so readers check (and fail) */
    {
        long long end = now_ms() + 5000;
        while (!regwatch_pending(watch) && now_ms() < end)
            ;
        assert_true(regwatch_pending(watch));
    }
    assert_true(reg_refresh(rd) < 0);
    assert_int_equal(tredis_start("regwatch"), 0);
    assert_int_equal(reg_seed(w, d, 0, &seeded), 0);
    refresh_until(rd, 1);
    assert_true(regwatch_gen(watch) != g);
    json_object_put(d);
    reg_close(rd);
    reg_close(w);
    regwatch_stop(watch);
}

/* Redis killed the pooled connection (CLIENT KILL): the next borrow notices
 * it without a round trip and opens a new one, so another module's command
 * works at once, and so does the refresh (issue 20: connections are the
 * process's pool's, not the thread's). */
static void test_broken_connection_reopened(void **state)
{
    reg_t *w = open_reg("w3:"), *rd = open_reg("w3:");
    regwatch_t *watch = regwatch_start(tredis_url(), "w3:");
    json_object *d = doc();
    char err[256];
    redisContext *admin;
    redisReply *rep;
    int seeded;
    (void)state;
    reg_set_watch(rd, watch);
    assert_int_equal(reg_seed(w, d, 0, &seeded), 0);
    wait_subscribed(watch);
    refresh_until(rd, 1);
    admin = rconn_connect(tredis_url(), 2000, err, sizeof err);
    assert_non_null(admin);
    freeReplyObject(redisCommand(admin, "CLIENT KILL TYPE normal SKIPME yes"));
    rep = redisCommand(reg_redis(rd), "PING");   /* the killed one was replaced */
    assert_non_null(rep);
    assert_string_equal(rep->str, "PONG");
    freeReplyObject(rep);
    reg_release(rd);
    assert_int_equal(reg_refresh(rd), 0);
    rep = redisCommand(reg_redis(rd), "PING");
    assert_non_null(rep);
    assert_string_equal(rep->str, "PONG");
    freeReplyObject(rep);
    reg_release(rd);
    redisFree(admin);
    json_object_put(d);
    reg_close(rd);
    reg_close(w);
    regwatch_stop(watch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sees_edits_without_polling_redis),
        cmocka_unit_test(test_follows_a_restart),
        cmocka_unit_test(test_broken_connection_reopened),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
