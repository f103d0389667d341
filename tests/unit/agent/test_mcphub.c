/* The per-process reply subscriber (agent/mcphub.h) against a real, private
 * redis-server: replies published on the process's channel reach the waiter
 * of their id whatever the order, a reply nobody expects is dropped, and when
 * Redis kills the subscription a waiter is told (never left to its
 * deadline) and the hub subscribes again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/mcphub.h"
#include "tests/unit/support/tredis.h"
#include "shared/rconn.h"
#include "shared/wire.h"

#define ID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define ID_C "cccccccccccccccccccccccccccccccc"
#define ID_D "dddddddddddddddddddddddddddddddd"   /* ids are never reused */

static redisContext *admin;

static int group_setup(void **state)
{
    char err[256];
    (void)state;
    if (tredis_start("mcphub") < 0)
        return -1;
    admin = rconn_connect(tredis_url(), 2000, err, sizeof err);
    return admin ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    redisFree(admin);
    tredis_stop();
    return 0;
}

/* Publishes an error reply for `id` on the hub's channel; the receivers. */
static long long publish(mcphub_t *h, const char *id, const char *text)
{
    char *msg = wire_reply_error(id, text);
    redisReply *r;
    long long n;

    assert_non_null(msg);
    r = redisCommand(admin, "PUBLISH %s %s", mcphub_channel(h), msg);
    free(msg);
    assert_non_null(r);
    n = r->integer;
    freeReplyObject(r);
    return n;
}

static void expect_reply(mcphub_waiter_t *w, const char *id, const char *text)
{
    wire_reply_t rep;
    int rc = mcphub_next(w, 5000, &rep);

    assert_int_equal(rc, 1);
    assert_string_equal(rep.id, id);
    assert_string_equal(rep.error, text);
    wire_reply_clear(&rep);
}

static void test_replies_reach_their_waiter(void **state)
{
    mcphub_t *h = mcphub_for(tredis_url(), "hub1:");
    mcphub_waiter_t *a, *b;
    wire_reply_t rep;
    (void)state;
    assert_non_null(h);
    assert_ptr_equal(mcphub_for(tredis_url(), "hub1:"), h);   /* one per process */
    assert_non_null(strstr(mcphub_channel(h), "hub1:mcp:reply:"));
    a = mcphub_waiter_new(h);
    b = mcphub_waiter_new(h);
    assert_int_equal(mcphub_ready(a, 5000), 0);
    assert_int_equal(mcphub_ready(b, 5000), 0);
    assert_int_equal(mcphub_expect(a, ID_A), 0);
    assert_int_equal(mcphub_expect(b, ID_B), 0);
    assert_int_equal(publish(h, ID_C, "nobody"), 1);    /* dropped */
    assert_int_equal(publish(h, ID_B, "for b"), 1);
    assert_int_equal(publish(h, ID_A, "for a"), 1);
    expect_reply(a, ID_A, "for a");
    expect_reply(b, ID_B, "for b");
    assert_int_equal(mcphub_next(a, 50, &rep), 0);      /* nothing else for a */
    mcphub_forget(a);
    assert_int_equal(publish(h, ID_A, "late"), 1);
    assert_int_equal(mcphub_next(a, 50, &rep), 0);      /* forgotten: dropped */
    mcphub_waiter_free(a);
    mcphub_waiter_free(b);
}

static void test_lost_subscription_is_told(void **state)
{
    mcphub_t *h = mcphub_for(tredis_url(), "hub1:");
    mcphub_waiter_t *w = mcphub_waiter_new(h);
    wire_reply_t rep;
    redisReply *r;
    int rc;
    (void)state;
    assert_int_equal(mcphub_ready(w, 5000), 0);
    assert_int_equal(mcphub_expect(w, ID_D), 0);
    r = redisCommand(admin, "CLIENT KILL TYPE pubsub");
    assert_non_null(r);
    freeReplyObject(r);
    /* bounded: 0 while the hub has not seen the close yet, then the loss */
    for (int i = 0; i < 100 && (rc = mcphub_next(w, 100, &rep)) == 0; i++)
        ;
    assert_int_equal(rc, -ECONNREFUSED);
    /* it subscribes again; a new round works */
    assert_int_equal(mcphub_ready(w, 5000), 0);
    assert_int_equal(publish(h, ID_D, "again"), 1);
    expect_reply(w, ID_D, "again");
    mcphub_waiter_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replies_reach_their_waiter),
        cmocka_unit_test(test_lost_subscription_is_told),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
