/* limit_lua: the limiter's scripts against a real Redis (tredis), on a test
 * clock (the scripts' extra ARGV), so every step is exact: the rpm GCRA's
 * burst and spacing, the tpm bucket's debt and refill, budget days and
 * months at UTC boundaries (a leap day, a year's end), and in-flight slots
 * freed by the end script or by their lease. */
#include "fcgi/limit/limit_lua.h"
#include "fcgi/limit/limit_wire.h"
#include "tests/unit/support/tredis.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

static redisContext *rc;

static int group_setup(void **state)
{
    (void)state;
    if (tredis_start("limit_lua") < 0)
        return -1;
    rc = redisConnectUnix(tredis_sock());
    return rc && !rc->err ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    if (rc)
        redisFree(rc);
    tredis_stop();
    return 0;
}

#define S 1000000LL   /* µs in a second */
/* 2024-02-29 23:59:59 UTC: a leap day's last second */
#define LEAP_LAST (1709251199LL * S)
/* 2026-12-31 23:59:59 UTC */
#define YEAR_LAST (1798761599LL * S)

/* The gate for `base` and `pol` at `now_us`. */
static limit_verdict_t gate(const char *base, const limit_pol_t *pol, const char *member,
                            long long lease_ms, long long now_us)
{
    limit_cmd_t c;
    limit_verdict_t v;
    char clock[24];
    redisReply *rep;

    limit_cmd_gate(&c, "", base, pol, member, lease_ms);
    c.argv[0] = "EVAL";
    c.argv[1] = limit_lua_gate;
    snprintf(clock, sizeof clock, "%lld", now_us);
    c.argv[c.argc++] = clock;
    rep = redisCommandArgv(rc, c.argc, c.argv, NULL);
    assert_non_null(rep);
    if (rep->type == REDIS_REPLY_ERROR)
        fail_msg("gate: %s", rep->str);
    assert_int_equal(limit_parse_gate(rep, &v), 0);
    assert_int_equal(v.now_us, now_us);     /* the clock it used, for the end */
    freeReplyObject(rep);
    return v;
}

static void end(const char *base, const limit_pol_t *pol, const char *member, long long tokens,
                long long now_us)
{
    limit_cmd_t c;
    char clock[24];
    redisReply *rep;

    limit_cmd_end(&c, "", base, pol, member, tokens);
    c.argv[0] = "EVAL";
    c.argv[1] = limit_lua_end;
    snprintf(clock, sizeof clock, "%lld", now_us);
    c.argv[c.argc++] = clock;
    rep = redisCommandArgv(rc, c.argc, c.argv, NULL);
    assert_non_null(rep);
    if (rep->type == REDIS_REPLY_ERROR)
        fail_msg("end: %s", rep->str);
    assert_int_equal(rep->type, REDIS_REPLY_INTEGER);
    freeReplyObject(rep);
}

static int exists(const char *key)
{
    redisReply *rep = redisCommand(rc, "EXISTS %s", key);
    int n = rep && rep->type == REDIS_REPLY_INTEGER ? (int)rep->integer : -1;

    if (rep)
        freeReplyObject(rep);
    return n;
}

/* rpm 3: three at once, the fourth waits one interval (20 s), then one more. */
static void test_rpm_gcra(void **state)
{
    limit_pol_t p = {.rpm = 3};
    const char *b = "t:lim:rpm3:";
    long long t0 = 1800000000LL * S;
    limit_verdict_t v;

    (void)state;
    for (int i = 0; i < 3; i++) {
        v = gate(b, &p, "", 0, t0);
        assert_int_equal(v.verdict, LIMIT_OK);
        assert_int_equal(v.req_remaining, 2 - i);
        assert_int_equal(v.req_reset_ms, 20000 * (i + 1));
    }
    v = gate(b, &p, "", 0, t0);
    assert_int_equal(v.verdict, LIMIT_RPM);
    assert_int_equal(v.retry_ms, 20000);
    assert_int_equal(v.req_remaining, 0);
    v = gate(b, &p, "", 0, t0 + 20 * S - 1000);      /* 1 ms early: still no */
    assert_int_equal(v.verdict, LIMIT_RPM);
    assert_int_equal(v.retry_ms, 1);
    v = gate(b, &p, "", 0, t0 + 20 * S);
    assert_int_equal(v.verdict, LIMIT_OK);
    assert_int_equal(v.req_remaining, 0);
    assert_int_equal(gate(b, &p, "", 0, t0 + 20 * S).verdict, LIMIT_RPM);
    /* a refused request took nothing: a minute later the bucket is full */
    v = gate(b, &p, "", 0, t0 + 80 * S);
    assert_int_equal(v.verdict, LIMIT_OK);
    assert_int_equal(v.req_remaining, 2);
}

/* tpm 600 (10 a second): 650 charged is a debt of 50; one token is back
 * after 5.1 s. */
static void test_tpm_bucket(void **state)
{
    limit_pol_t p = {.tpm = 600};
    const char *b = "t:lim:tpm:";
    long long t0 = 1800000000LL * S;
    limit_verdict_t v;

    (void)state;
    v = gate(b, &p, "", 0, t0);
    assert_int_equal(v.verdict, LIMIT_OK);
    assert_int_equal(v.tok_remaining, 600);
    assert_int_equal(v.tok_reset_ms, 0);
    end(b, &p, "", 650, t0);
    v = gate(b, &p, "", 0, t0);
    assert_int_equal(v.verdict, LIMIT_TPM);
    assert_int_equal(v.tok_remaining, 0);
    assert_int_equal(v.retry_ms, 5100);
    assert_int_equal(v.tok_reset_ms, 65000);
    assert_int_equal(gate(b, &p, "", 0, t0 + 5 * S).verdict, LIMIT_TPM);
    v = gate(b, &p, "", 0, t0 + 5100000);
    assert_int_equal(v.verdict, LIMIT_OK);
    assert_int_equal(v.tok_remaining, 1);
    /* no tokens: nothing charged */
    end(b, &p, "", 0, t0 + 5100000);
    assert_int_equal(gate(b, &p, "", 0, t0 + 5100000).tok_remaining, 1);
}

/* Budgets on a leap day's last second: spent, they reset a second later,
 * the day at midnight and February's on March 1st. */
static void test_budget_days(void **state)
{
    limit_pol_t p = {.day = 100, .month = 1000};
    const char *b = "t:lim:bud:";
    limit_verdict_t v;

    (void)state;
    assert_int_equal(gate(b, &p, "", 0, LEAP_LAST).verdict, LIMIT_OK);
    end(b, &p, "", 120, LEAP_LAST);
    assert_int_equal(exists("t:lim:bud:d:20240229"), 1);
    assert_int_equal(exists("t:lim:bud:m:202402"), 1);
    v = gate(b, &p, "", 0, LEAP_LAST);
    assert_int_equal(v.verdict, LIMIT_DAY);
    assert_int_equal(v.used_day, 120);
    assert_int_equal(v.retry_ms, 1000);
    v = gate(b, &p, "", 0, LEAP_LAST + S);          /* 2024-03-01 00:00:00 */
    assert_int_equal(v.verdict, LIMIT_OK);
    assert_int_equal(v.used_day, 0);
    assert_int_equal(v.used_month, 0);
    /* the month: spent on February's last second, it resets a second later */
    end(b, &p, "", 900, LEAP_LAST);
    v = gate(b, &p, "", 0, LEAP_LAST);
    assert_int_equal(v.verdict, LIMIT_DAY);         /* the day is checked first */
    p.day = 0;
    v = gate(b, &p, "", 0, LEAP_LAST);
    assert_int_equal(v.verdict, LIMIT_MONTH);
    assert_int_equal(v.used_month, 1020);
    assert_int_equal(v.retry_ms, 1000);
    /* mid-month: the reset is at the month's end (2024-02-10 12:00 -> 19.5 days) */
    v = gate(b, &p, "", 0, LEAP_LAST - (19LL * 86400 + 43199) * S);
    assert_int_equal(v.verdict, LIMIT_MONTH);
    assert_int_equal(v.retry_ms, (19LL * 86400 + 43200) * 1000);
}

/* A year's last second names December's keys; the next second January's. */
static void test_budget_year_end(void **state)
{
    limit_pol_t p = {.day = 10, .month = 10};
    const char *b = "t:lim:ye:";

    (void)state;
    end(b, &p, "", 10, YEAR_LAST);
    assert_int_equal(exists("t:lim:ye:d:20261231"), 1);
    assert_int_equal(exists("t:lim:ye:m:202612"), 1);
    assert_int_equal(gate(b, &p, "", 0, YEAR_LAST).verdict, LIMIT_DAY);
    end(b, &p, "", 3, YEAR_LAST + S);
    assert_int_equal(exists("t:lim:ye:d:20270101"), 1);
    assert_int_equal(exists("t:lim:ye:m:202701"), 1);
    assert_int_equal(gate(b, &p, "", 0, YEAR_LAST + S).verdict, LIMIT_OK);
}

/* max_concurrent 1: the slot is taken, freed by the end script, and a slot
 * never freed (a responder killed) heals when its lease ends. */
static void test_concurrency(void **state)
{
    limit_pol_t p = {.conc = 1};
    const char *b = "t:lim:conc:";
    long long t0 = 1800000000LL * S;
    limit_verdict_t v;

    (void)state;
    v = gate(b, &p, "m1", 60000, t0);
    assert_int_equal(v.verdict, LIMIT_OK);
    assert_int_equal(v.inflight, 1);
    v = gate(b, &p, "m2", 60000, t0);
    assert_int_equal(v.verdict, LIMIT_CONC);
    assert_int_equal(v.inflight, 1);
    assert_int_equal(v.retry_ms, 1000);
    end(b, &p, "m1", 0, t0);
    assert_int_equal(gate(b, &p, "m2", 60000, t0).verdict, LIMIT_OK);   /* m2 never ends */
    assert_int_equal(gate(b, &p, "m3", 60000, t0 + 59 * S).verdict, LIMIT_CONC);
    assert_int_equal(gate(b, &p, "m3", 60000, t0 + 60 * S).verdict, LIMIT_OK);
}

/* Every limit at once: a refusal by one takes nothing from the others. */
static void test_all_or_nothing(void **state)
{
    limit_pol_t p = {.rpm = 2, .conc = 1};
    const char *b = "t:lim:all:";
    long long t0 = 1800000000LL * S;
    limit_verdict_t v;

    (void)state;
    assert_int_equal(gate(b, &p, "a", 60000, t0).verdict, LIMIT_OK);
    v = gate(b, &p, "b", 60000, t0);                 /* refused on concurrency ... */
    assert_int_equal(v.verdict, LIMIT_CONC);
    assert_int_equal(v.req_remaining, 1);            /* ... the rpm count untouched */
    end(b, &p, "a", 0, t0);
    v = gate(b, &p, "c", 60000, t0);
    assert_int_equal(v.verdict, LIMIT_OK);
    assert_int_equal(v.req_remaining, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rpm_gcra),
        cmocka_unit_test(test_tpm_bucket),
        cmocka_unit_test(test_budget_days),
        cmocka_unit_test(test_budget_year_end),
        cmocka_unit_test(test_concurrency),
        cmocka_unit_test(test_all_or_nothing),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
