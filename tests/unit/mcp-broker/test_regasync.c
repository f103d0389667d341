/* regasync, the broker's async registry reader, against a real, private
 * redis-server on a unix socket and a libuv loop: a read, the unchanged hot
 * path, a change, refreshes folded while one is in flight, healing a lost
 * registry from the seed, no registry without a seed, and a connection lost
 * mid-read (the old snapshot stays). Redis is killed at teardown, and with
 * PR_SET_PDEATHSIG if this process dies first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mcp-broker/redisuv.h"
#include "mcp-broker/regasync.h"
#include "tests/unit/support/tredis.h"
#include "shared/rconn.h"
#include "shared/reg.h"


static int group_setup(void **state)
{
    (void)state;
    if (tredis_start("regasync") < 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tredis_stop();
    return 0;
}


/* --- the reader under test, on a libuv loop ------------------------------ */

typedef struct fix {
    uv_loop_t loop;
    redisAsyncContext *ac;
    regasync_t *ra;
    int dones, rc;
} fix_t;

static void on_done(void *data, int rc)
{
    fix_t *f = data;

    f->dones++;
    f->rc = rc;
}

static redisAsyncContext *connect_async(uv_loop_t *loop)
{
    redisAsyncContext *ac = redisAsyncConnectUnix(tredis_sock());

    assert_non_null(ac);
    assert_int_equal(ac->err, 0);
    assert_int_equal(redisuv_attach(ac, loop), 0);
    return ac;
}

static void fix_open(fix_t *f, const char *prefix)
{
    memset(f, 0, sizeof(*f));
    uv_loop_init(&f->loop);
    f->ac = connect_async(&f->loop);
    f->ra = regasync_new(prefix, on_done, f);
    assert_non_null(f->ra);
}

/* Runs the loop until `done` has fired `want` times in all (bounded). */
static void run_until(fix_t *f, int want)
{
    for (int i = 0; i < 100000 && f->dones < want; i++)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(f->dones, want);
}

static void fix_close(fix_t *f)
{
    if (f->ac)
        redisAsyncFree(f->ac);  /* frees at once; its hooks close their poll */
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    regasync_free(f->ra);
}

/* The registry of `prefix` through the blocking path (what an admin does). */
static void seed(const char *prefix, const char *doc_json, int reseed)
{
    reg_t *r = NULL;
    char err[512] = "";
    json_object *doc = json_tokener_parse(doc_json);
    int seeded = 0;

    assert_non_null(doc);
    if (reg_open(&r, tredis_url(), prefix, err, sizeof err) != 0)
        fail_msg("reg_open: %s", err);
    assert_int_equal(reg_seed(r, doc, reseed, &seeded), 0);
    json_object_put(doc);
    reg_close(r);
}

/* Redis lost the registry (restarted empty): the keys of `prefix` go. */
static void drop_registry(const char *prefix)
{
    assert_int_equal(tredis_drop_registry(prefix), 0);
}

static const char *command_of(regasync_t *ra, const char *server)
{
    json_object *s = regasync_get(ra, "mcp_servers", server), *c = NULL;

    if (!s || !json_object_object_get_ex(s, "command", &c))
        return NULL;
    return json_object_get_string(c);
}

#define DOC(cmd) "{\"mcp_servers\":{\"s\":{\"command\":\"" cmd "\"}}}"

static void test_reads_then_hot_path(void **state)
{
    fix_t f;

    (void)state;
    seed("a1:", DOC("/bin/one"), 1);
    fix_open(&f, "a1:");
    assert_null(regasync_get(f.ra, "mcp_servers", "s"));
    assert_int_equal(regasync_refresh(f.ra, f.ac), 0);
    assert_int_equal(regasync_busy(f.ra), 1);
    assert_int_equal(f.dones, 0);             /* never from inside the call */
    run_until(&f, 1);
    assert_int_equal(f.rc, 0);
    assert_int_equal(regasync_busy(f.ra), 0);
    assert_string_equal(command_of(f.ra, "s"), "/bin/one");
    /* unchanged: the same snapshot, answered again */
    assert_int_equal(regasync_refresh(f.ra, f.ac), 0);
    run_until(&f, 2);
    assert_int_equal(f.rc, 0);
    assert_string_equal(command_of(f.ra, "s"), "/bin/one");
    /* moved: the new one */
    seed("a1:", DOC("/bin/two"), 1);
    assert_int_equal(regasync_refresh(f.ra, f.ac), 0);
    run_until(&f, 3);
    assert_string_equal(command_of(f.ra, "s"), "/bin/two");
    fix_close(&f);
}

static void test_calls_in_flight_fold(void **state)
{
    fix_t f;

    (void)state;
    seed("a2:", DOC("/bin/one"), 1);
    fix_open(&f, "a2:");
    assert_int_equal(regasync_refresh(f.ra, f.ac), 0);
    /* a change lands while the first read is in flight: the second call
     * folds in, and the one answer is at least as new as it */
    seed("a2:", DOC("/bin/two"), 1);
    assert_int_equal(regasync_refresh(f.ra, f.ac), 0);
    run_until(&f, 1);
    assert_int_equal(f.rc, 0);
    assert_string_equal(command_of(f.ra, "s"), "/bin/two");
    /* and no second answer follows */
    uv_run(&f.loop, UV_RUN_NOWAIT);
    assert_int_equal(f.dones, 1);
    fix_close(&f);
}

static void test_missing_heals_from_seed(void **state)
{
    fix_t f;
    static const char seed_doc[] = DOC("/bin/seeded");

    (void)state;
    drop_registry("a3:");
    fix_open(&f, "a3:");
    regasync_set_seed(f.ra, seed_doc);
    assert_int_equal(regasync_refresh(f.ra, f.ac), 0);
    run_until(&f, 1);
    assert_int_equal(f.rc, 0);
    assert_string_equal(command_of(f.ra, "s"), "/bin/seeded");
    fix_close(&f);
}

static void test_missing_without_seed_is_empty(void **state)
{
    fix_t f;

    (void)state;
    seed("a4:", DOC("/bin/one"), 1);
    fix_open(&f, "a4:");
    assert_int_equal(regasync_refresh(f.ra, f.ac), 0);
    run_until(&f, 1);
    assert_non_null(command_of(f.ra, "s"));
    drop_registry("a4:");
    assert_int_equal(regasync_refresh(f.ra, f.ac), 0);
    run_until(&f, 2);
    assert_int_equal(f.rc, -ENOENT);
    assert_null(regasync_get(f.ra, "mcp_servers", "s"));
    assert_non_null(strstr(regasync_errstr(f.ra), "no registry"));
    fix_close(&f);
}

static void test_lost_connection_keeps_snapshot(void **state)
{
    fix_t f;

    (void)state;
    seed("a5:", DOC("/bin/one"), 1);
    fix_open(&f, "a5:");
    assert_int_equal(regasync_refresh(f.ra, NULL), -EIO);   /* no connection: no callback */
    assert_int_equal(regasync_refresh(f.ra, f.ac), 0);
    run_until(&f, 1);
    seed("a5:", DOC("/bin/two"), 1);
    assert_int_equal(regasync_refresh(f.ra, f.ac), 0);
    /* the connection goes before the answer: done fires with -EIO, and
     * the snapshot already read stays */
    redisAsyncFree(f.ac);
    f.ac = NULL;
    assert_int_equal(f.dones, 2);
    assert_int_equal(f.rc, -EIO);
    assert_int_equal(regasync_busy(f.ra), 0);
    assert_string_equal(command_of(f.ra, "s"), "/bin/one");
    /* a new connection reads again */
    f.ac = connect_async(&f.loop);
    assert_int_equal(regasync_refresh(f.ra, f.ac), 0);
    run_until(&f, 3);
    assert_int_equal(f.rc, 0);
    assert_string_equal(command_of(f.ra, "s"), "/bin/two");
    fix_close(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_then_hot_path),
        cmocka_unit_test(test_calls_in_flight_fold),
        cmocka_unit_test(test_missing_heals_from_seed),
        cmocka_unit_test(test_missing_without_seed_is_empty),
        cmocka_unit_test(test_lost_connection_keeps_snapshot),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
