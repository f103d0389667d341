/* Unit tests of usage's pending sums (fcgi/usage/usage_pend.h): adding the
 * same pair merges, keys keep their latest EXPIREAT, merging tables (the
 * flusher's retry after a failed write) and its cap, what the flusher's
 * hand-off answers with no flusher running (CGI: the request writes), and a
 * flusher stopped with Redis unreachable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "fcgi/usage/usage.h"
#include "fcgi/usage/usage_flush.h"
#include "fcgi/usage/usage_pend.h"
#include "fcgi/usage/usage_q.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What usage_pend_each reports, as "key|field=v" lines and "key@expire". */
typedef struct seen {
    char text[4096];
    size_t len;
    long long sum;
    int pairs, keys;
} seen_t;

static int see_pair(const char *key, const char *field, long long v, void *arg)
{
    seen_t *s = arg;
    s->pairs++;
    s->sum += v;
    if (s->len < sizeof(s->text) / 2)   /* the first ones are enough to look at */
        s->len += (size_t)snprintf(s->text + s->len, sizeof(s->text) - s->len, "%s|%s=%lld\n",
                                   key, field, v);
    return 0;
}

static int see_key(const char *key, long long expire_at, void *arg)
{
    seen_t *s = arg;
    s->keys++;
    if (s->len < sizeof(s->text) - 300)
        s->len += (size_t)snprintf(s->text + s->len, sizeof(s->text) - s->len, "%s@%lld\n", key,
                                   expire_at);
    return 0;
}

static int stop_at_first(const char *key, const char *field, long long v, void *arg)
{
    (void)key, (void)field, (void)v, (void)arg;
    return 7;
}

static seen_t see(const usage_pend_t *t)
{
    seen_t s;
    memset(&s, 0, sizeof(s));
    assert_int_equal(usage_pend_each(t, see_pair, see_key, &s), 0);
    return s;
}

static void test_add_merges(void **st)
{
    (void)st;
    usage_pend_t *t = usage_pend_new();
    assert_non_null(t);
    assert_int_equal(usage_pend_count(t), 0);
    /* 1000 requests of one key: two buckets, two fields each */
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(usage_pend_add(t, "p:use:h:2026120721", "k|a|req", 1, 500), 0);
        assert_int_equal(usage_pend_add(t, "p:use:h:2026120721", "k|a|pt", 3, 500), 0);
        assert_int_equal(usage_pend_add(t, "p:use:d:20261207", "k|a|req", 1, 900 + i), 0);
        assert_int_equal(usage_pend_add(t, "p:use:d:20261207", "k|a|pt", 3, 900), 0);
        usage_pend_note_record(t);
    }
    assert_int_equal(usage_pend_add(t, "p:use:d:20261207", "k|a|err", 0, 900), 0);  /* nothing */
    assert_int_equal(usage_pend_count(t), 4);
    assert_int_equal(usage_pend_records(t), 1000);
    seen_t s = see(t);
    assert_int_equal(s.pairs, 4);
    assert_int_equal(s.keys, 2);
    assert_int_equal(s.sum, 8000);
    assert_non_null(strstr(s.text, "p:use:h:2026120721|k|a|req=1000\n"));
    assert_non_null(strstr(s.text, "p:use:d:20261207|k|a|pt=3000\n"));
    assert_non_null(strstr(s.text, "p:use:h:2026120721@500\n"));
    assert_non_null(strstr(s.text, "p:use:d:20261207@1899\n"));   /* the latest expiry */
    /* the same field under another key is another pair */
    assert_int_equal(usage_pend_add(t, "p:use:h:2026120722", "k|a|req", 2, 600), 0);
    assert_int_equal(usage_pend_count(t), 5);
    /* too long */
    char big[600];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(usage_pend_add(t, big, "f", 1, 1), -EINVAL);
    assert_int_equal(usage_pend_add(t, "k", big, 1, 1), -EINVAL);
    assert_int_equal(usage_pend_count(t), 5);
    /* the longest field usage writes: two ids and a tool server's metric */
    char longest[USAGE_FIELD_MAX];
    memset(longest, 'y', sizeof(longest) - 1);
    longest[sizeof(longest) - 1] = '\0';
    assert_int_equal(usage_pend_add(t, "k", longest, 1, 1), 0);
    assert_int_equal(usage_pend_count(t), 6);
    assert_int_equal(usage_pend_each(t, stop_at_first, NULL, NULL), 7);
    usage_pend_free(t);
    usage_pend_free(NULL);
}

/* Many distinct fields: the table grows and keeps every sum. */
/* A table emptied for reuse adds again without new pairs, reports and
 * merges only what was added since, and asks to be renewed when it grew. */
static void test_zero_reuse(void **st)
{
    usage_pend_t *t = usage_pend_new(), *live = usage_pend_new();
    seen_t s;
    (void)st;
    assert_non_null(t);
    assert_non_null(live);
    assert_int_equal(usage_pend_add(t, "u:h:1", "k|a|req", 1, 100), 0);
    assert_int_equal(usage_pend_add(t, "u:h:1", "k|a|pt", 11, 100), 0);
    usage_pend_note_record(t);
    assert_int_equal(usage_pend_zero(t, 64), 0);
    assert_int_equal(usage_pend_records(t), 0);
    s = see(t);
    assert_int_equal(s.pairs, 0);                 /* zero sums are not reported */
    assert_int_equal(usage_pend_add(t, "u:h:1", "k|a|req", 1, 100), 0);
    assert_int_equal(usage_pend_count(t), 2);     /* the kept fields, no new pair */
    assert_int_equal(usage_pend_merge(live, t, 100), 0);
    s = see(live);
    assert_int_equal(s.pairs, 1);                 /* only req: pt stayed zero */
    assert_int_equal(s.sum, 1);
    /* a third key (a bucket changed) or too many pairs: renew instead */
    assert_int_equal(usage_pend_add(t, "u:d:1", "k|a|req", 1, 100), 0);
    assert_int_equal(usage_pend_zero(t, 64), 0);
    assert_int_equal(usage_pend_add(t, "u:h:2", "k|a|req", 1, 100), 0);
    assert_int_equal(usage_pend_zero(t, 64), -E2BIG);
    assert_int_equal(usage_pend_zero(live, 0), -E2BIG);
    usage_pend_free(t);
    usage_pend_free(live);
}

static void test_grow(void **st)
{
    (void)st;
    usage_pend_t *t = usage_pend_new();
    char f[64];
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 5000; i++) {
            snprintf(f, sizeof(f), "key%d|a|req", i);
            assert_int_equal(usage_pend_add(t, i % 2 ? "h" : "d", f, i + 1, 1), 0);
        }
    assert_int_equal(usage_pend_count(t), 5000);
    seen_t s = see(t);
    assert_int_equal(s.pairs, 5000);
    assert_int_equal(s.keys, 2);
    assert_int_equal(s.sum, 3LL * 5000 * 5001 / 2);
    usage_pend_free(t);
}

/* The flusher's retry: a swapped-out table that failed to write goes back
 * into the live one, sums added; past the cap nothing is merged. */
static void test_merge_and_cap(void **st)
{
    (void)st;
    usage_pend_t *live = usage_pend_new(), *out = usage_pend_new(), *big = usage_pend_new();
    char f[64];
    assert_int_equal(usage_pend_add(live, "h", "k|a|req", 2, 100), 0);
    usage_pend_note_record(live);
    usage_pend_note_record(live);
    assert_int_equal(usage_pend_add(out, "h", "k|a|req", 5, 200), 0);
    assert_int_equal(usage_pend_add(out, "h", "k|a|ct", 7, 200), 0);
    assert_int_equal(usage_pend_add(out, "d", "k|a|req", 5, 300), 0);
    for (int i = 0; i < 5; i++)
        usage_pend_note_record(out);
    assert_int_equal(usage_pend_merge(live, out, 10), 0);
    assert_int_equal(usage_pend_count(live), 3);
    assert_int_equal(usage_pend_records(live), 7);
    assert_int_equal(usage_pend_count(out), 3);   /* src unchanged */
    seen_t s = see(live);
    assert_non_null(strstr(s.text, "h|k|a|req=7\n"));
    assert_non_null(strstr(s.text, "h|k|a|ct=7\n"));
    assert_non_null(strstr(s.text, "d|k|a|req=5\n"));
    assert_non_null(strstr(s.text, "h@200\n"));
    assert_non_null(strstr(s.text, "d@300\n"));
    /* the cap: 3 held + 8 more > 10: refused, live unchanged */
    for (int i = 0; i < 8; i++) {
        snprintf(f, sizeof(f), "k%d|a|req", i);
        assert_int_equal(usage_pend_add(big, "h", f, 1, 1), 0);
    }
    assert_int_equal(usage_pend_merge(live, big, 10), -ENOSPC);
    assert_int_equal(usage_pend_count(live), 3);
    assert_int_equal(usage_pend_records(live), 7);
    assert_int_equal(usage_pend_merge(live, big, 11), 0);   /* exactly at the cap */
    assert_int_equal(usage_pend_count(live), 11);
    /* merging an empty table changes nothing */
    usage_pend_t *empty = usage_pend_new();
    assert_int_equal(usage_pend_merge(live, empty, 11), 0);
    assert_int_equal(usage_pend_count(live), 11);
    usage_pend_free(empty);
    usage_pend_free(big);
    usage_pend_free(out);
    usage_pend_free(live);
}

/* No flusher (CGI, or before usage_start): the hand-off says so, and the
 * caller writes the record itself. */
static void test_no_flusher(void **st)
{
    (void)st;
    usage_pend_t *t = usage_pend_new();
    assert_int_equal(usage_pend_add(t, "h", "k|a|req", 1, 1), 0);
    assert_int_equal(usage_flush_add(t), -ESRCH);
    usage_flush_interval(5);   /* no thread to wake: harmless */
    assert_int_equal(usage_pend_count(t), 1);
    usage_pend_free(t);
}

/* The flusher's life in a process: started, fed records, stopped. Its last
 * flush finds no Redis (nothing listens on port 1): what it held is dropped
 * and counted, and records after the stop are the request's to write. */
static void test_flusher_stop_without_redis(void **st)
{
    (void)st;
    unsigned long dropped = usage_drops();
    usage_pend_t *t = usage_pend_new();
    assert_int_equal(usage_start("redis://127.0.0.1:1"), 0);
    assert_int_equal(usage_start("redis://127.0.0.1:1"), 0);   /* already running */
    usage_flush_interval(600000);   /* no tick before the stop */
    assert_int_equal(usage_pend_add(t, "h", "k|a|req", 1, 1), 0);
    usage_pend_note_record(t);
    for (int i = 0; i < 3; i++)
        assert_int_equal(usage_flush_add(t), 0);
    usage_stop();
    assert_int_equal(usage_drops(), dropped + 3);
    assert_int_equal(usage_flush_add(t), -ESRCH);
    usage_stop();   /* a second stop is a no-op */
    usage_pend_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_merges),
        cmocka_unit_test(test_zero_reuse),
        cmocka_unit_test(test_grow),
        cmocka_unit_test(test_merge_and_cap),
        cmocka_unit_test(test_no_flusher),
        cmocka_unit_test(test_flusher_stop_without_redis),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
