/* redisuv, hiredis's async context on libuv, against a private redis-server:
 * a command queued outside the loop, in a timer callback (before the poll)
 * and in a reply callback (during the I/O phase) is written without waiting
 * for anything else to wake the loop; redisuv_flush writes at once outside
 * a reply callback and leaves it to the loop inside one; a context freed
 * with a write pending closes cleanly; commands sent without a reply
 * callback after CLIENT REPLY OFF are carried out and get no reply. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <hiredis/sds.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mcp-broker/redisuv.h"
#include "shared/rconn.h"
#include "tests/unit/support/tredis.h"

static int group_setup(void **state)
{
    (void)state;
    return tredis_start("redisuv") < 0 ? -1 : 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tredis_stop();
    return 0;
}

typedef struct fix {
    uv_loop_t loop;
    uv_timer_t timer, watchdog;
    redisAsyncContext *ac;
    int replies;             /* "+PONG"s (or the reply to the chained command) seen */
    int watchdog_fired;
    int chain;               /* queue one more PING from the reply callback */
    size_t obuf_after_flush; /* bytes still queued right after redisuv_flush in a callback */
} fix_t;

static void on_reply(redisAsyncContext *ac, void *r, void *priv)
{
    fix_t *f = priv;
    redisReply *rep = r;

    if (!rep || rep->type != REDIS_REPLY_STATUS)
        return;
    f->replies++;
    if (f->chain > 0) {
        f->chain--;
        assert_int_equal(redisAsyncCommand(ac, on_reply, f, "PING"), REDIS_OK);
        redisuv_flush(ac); /* inside a reply callback: left to the loop */
        f->obuf_after_flush = sdslen(ac->c.obuf);
    }
}

static void on_watchdog(uv_timer_t *t)
{
    fix_t *f = t->data;

    f->watchdog_fired = 1;
}

/* A connected context on a fresh loop (one PING answered), and a watchdog
 * that wakes the loop after 10 s: a reply that only comes after it means
 * the write waited for something else to wake the loop. */
static void fix_open(fix_t *f)
{
    memset(f, 0, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->ac = redisAsyncConnectUnix(tredis_sock());
    assert_non_null(f->ac);
    assert_int_equal(f->ac->err, 0);
    assert_int_equal(redisuv_attach(f->ac, &f->loop), 0);
    assert_int_equal(redisAsyncCommand(f->ac, on_reply, f, "PING"), REDIS_OK);
    for (int i = 0; i < 1000 && f->replies < 1; i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(f->replies, 1);
    uv_timer_init(&f->loop, &f->watchdog);
    f->watchdog.data = f;
    uv_timer_start(&f->watchdog, on_watchdog, 10000, 0);
    uv_timer_init(&f->loop, &f->timer);
    f->timer.data = f;
}

/* Runs the loop until `want` replies came (bounded by the watchdog). */
static void run_until(fix_t *f, int want)
{
    while (f->replies < want && !f->watchdog_fired)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(f->watchdog_fired, 0);
    assert_int_equal(f->replies, want);
}

static void fix_close(fix_t *f)
{
    if (f->ac)
        redisAsyncFree(f->ac);
    uv_close((uv_handle_t *)&f->timer, NULL);
    uv_close((uv_handle_t *)&f->watchdog, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void test_queued_outside_the_loop(void **state)
{
    fix_t f;

    (void)state;
    fix_open(&f);
    assert_int_equal(redisAsyncCommand(f.ac, on_reply, &f, "PING"), REDIS_OK);
    run_until(&f, 2);
    fix_close(&f);
}

static void on_timer(uv_timer_t *t)
{
    fix_t *f = t->data;

    assert_int_equal(redisAsyncCommand(f->ac, on_reply, f, "PING"), REDIS_OK);
}

static void test_queued_in_a_timer(void **state)
{
    fix_t f;

    (void)state;
    fix_open(&f);
    uv_timer_start(&f.timer, on_timer, 0, 0);
    run_until(&f, 2);
    fix_close(&f);
}

static void test_queued_in_a_reply_callback(void **state)
{
    fix_t f;

    (void)state;
    fix_open(&f);
    f.chain = 3;
    assert_int_equal(redisAsyncCommand(f.ac, on_reply, &f, "PING"), REDIS_OK);
    run_until(&f, 5);
    assert_true(f.obuf_after_flush > 0);   /* the flush waited for the loop */
    fix_close(&f);
}

static void test_flush_writes_at_once(void **state)
{
    fix_t f;

    (void)state;
    fix_open(&f);
    assert_int_equal(redisAsyncCommand(f.ac, on_reply, &f, "PING"), REDIS_OK);
    assert_true(sdslen(f.ac->c.obuf) > 0);
    redisuv_flush(f.ac);
    assert_int_equal(sdslen(f.ac->c.obuf), 0);
    redisuv_flush(f.ac);                  /* nothing queued: a no-op */
    redisuv_flush(NULL);
    run_until(&f, 2);
    fix_close(&f);
}

static void test_freed_with_a_write_pending(void **state)
{
    fix_t f;

    (void)state;
    fix_open(&f);
    assert_int_equal(redisAsyncCommand(f.ac, on_reply, &f, "PING"), REDIS_OK);
    redisAsyncFree(f.ac);      /* the reply callback runs with NULL; nothing is written */
    f.ac = NULL;
    fix_close(&f);
    assert_int_equal(f.replies, 1);
}

/* The value of `key` read on a blocking connection ("" when none). */
static void get_key(const char *key, char *out, size_t n)
{
    char err[256];
    redisContext *c = rconn_connect(tredis_url(), 2000, err, sizeof(err));
    redisReply *r;

    assert_non_null(c);
    r = redisCommand(c, "GET %s", key);
    assert_non_null(r);
    snprintf(out, n, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    redisFree(c);
}

static void test_noreply_after_reply_off(void **state)
{
    static const char off[] = "*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$3\r\nOFF\r\n";
    fix_t f;
    char *cmd = NULL, got[64] = "";
    int len;

    (void)state;
    fix_open(&f);
    assert_int_equal(redisuv_send_noreply(f.ac, off, sizeof(off) - 1), 0);
    for (int i = 0; i < 3; i++) {
        len = redisFormatCommand(&cmd, "SET redisuv:k v%d", i);
        assert_true(len > 0);
        assert_int_equal(redisuv_send_noreply(f.ac, cmd, (size_t)len), 0);
        redisFreeCommand(cmd);
    }
    redisuv_flush(f.ac);
    assert_int_equal(sdslen(f.ac->c.obuf), 0);
    /* Redis carries them out in order; no reply comes (hiredis would abort
     * on one nobody waits for) */
    for (int i = 0; i < 1000 && strcmp(got, "v2") != 0; i++) {
        uv_run(&f.loop, UV_RUN_NOWAIT);
        get_key("redisuv:k", got, sizeof(got));
    }
    assert_string_equal(got, "v2");
    assert_int_equal(f.replies, 1);
    assert_int_equal(redisuv_send_noreply(NULL, off, sizeof(off) - 1), -ENOTCONN);
    fix_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queued_outside_the_loop),
        cmocka_unit_test(test_queued_in_a_timer),
        cmocka_unit_test(test_queued_in_a_reply_callback),
        cmocka_unit_test(test_flush_writes_at_once),
        cmocka_unit_test(test_freed_with_a_write_pending),
        cmocka_unit_test(test_noreply_after_reply_off),
    };

    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
