/* mcpc against a real, private redis-server and a fake broker thread: a
 * wall-clock step during a call breaks no deadline (CLOCK_MONOTONIC), the
 * connections heal after CLIENT KILL, and a call the client walks away from
 * is cancelled at the broker ("cancel" op), progress reports extend a
 * call's own deadline and reach on_progress, and reports for ids nobody
 * waits for (unknown, or answered already) are dropped. clock_gettime is interposed here
 * so that the test can step CLOCK_REALTIME without privileges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent/mcpc.h"
#include "tests/unit/support/tredis.h"
#include "shared/rconn.h"
#include "shared/wire.h"

#define PREFIX "tm:"


/* --- a wall clock the test can step -------------------------------------- */

static atomic_llong g_step_ms;

int clock_gettime(clockid_t id, struct timespec *ts)
{
    long rc = syscall(SYS_clock_gettime, id, ts);
    long long step = atomic_load(&g_step_ms);

    if (rc == 0 && step && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE)) {
        ts->tv_sec += (time_t)(step / 1000);
        ts->tv_nsec += (long)(step % 1000) * 1000000L;
        if (ts->tv_nsec >= 1000000000L) {
            ts->tv_sec++;
            ts->tv_nsec -= 1000000000L;
        }
    }
    return (int)rc;
}

/* --- Redis ------------------------------------------------------------------ */

static void redis_do(const char *fmt, ...)
{
    char err[256] = "";
    redisContext *c = rconn_connect(tredis_url(), 2000, err, sizeof err);
    redisReply *r;
    va_list ap;

    if (!c)
        fail_msg("%s", err);
    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    freeReplyObject(r);
    redisFree(c);
}

/* --- the fake broker ----------------------------------------------------------- */

/* Tools: "step" steps the wall clock an hour ahead, then answers "ok" half a
 * second later;
 * "hold" never answers. Every cancel is recorded. It re-subscribes after
 * its connection is killed, like the real one. */
static struct {
    pthread_t th;
    atomic_int quit;
    atomic_int calls;               /* calls received */
    pthread_mutex_t mu;
    char held[WIRE_ID_LEN + 1];     /* id of the last "hold" call */
    char cancelled[WIRE_ID_LEN + 1];
} fb = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void fb_publish(redisContext *pub, const char *channel, const char *text)
{
    redisReply *r = redisCommand(pub, "PUBLISH %s %s", channel, text);

    if (r)
        freeReplyObject(r);
}

static void fb_pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Progress tools: "progress" reports every 200 ms for 2 s (left_ms 800:
 * what a broker says for an 800 ms call), then answers "done"; "fade"
 * reports twice, then never answers; "late" answers "first", then reports
 * progress for the same call; "stray" reports progress for an id nobody
 * waits for, then answers "second". */
static int fb_progress_tool(redisContext *pub, const wire_req_t *req)
{
    char *t = NULL;

    if (strcmp(req->tool, "progress") == 0 || strcmp(req->tool, "fade") == 0) {
        int n = req->tool[0] == 'p' ? 10 : 2;
        for (int k = 1; k <= n; k++) {
            char msg[32];
            fb_pause_ms(200);
            snprintf(msg, sizeof msg, "step %d", k);
            t = wire_reply_progress(req->id, k, n, msg, 800);
            fb_publish(pub, req->reply, t);
            free(t);
            t = NULL;
        }
        if (req->tool[0] == 'p') {
            json_object *res = json_tokener_parse("{\"content\":[{\"type\":\"text\",\"text\":\"done\"}]}");
            t = wire_reply_result(req->id, res);
            fb_publish(pub, req->reply, t);
            json_object_put(res);
        } else {
            pthread_mutex_lock(&fb.mu);
            memcpy(fb.held, req->id, sizeof fb.held);
            pthread_mutex_unlock(&fb.mu);
        }
    } else if (strcmp(req->tool, "late") == 0) {
        json_object *res = json_tokener_parse("{\"content\":[{\"type\":\"text\",\"text\":\"first\"}]}");
        t = wire_reply_result(req->id, res);
        fb_publish(pub, req->reply, t);
        free(t);
        json_object_put(res);
        t = wire_reply_progress(req->id, 1, -1, "after the result", 60000);
        fb_publish(pub, req->reply, t);
    } else if (strcmp(req->tool, "stray") == 0) {
        json_object *res = json_tokener_parse("{\"content\":[{\"type\":\"text\",\"text\":\"second\"}]}");
        t = wire_reply_progress("00000000000000000000000000000000", 1, -1, "nobody's", 60000);
        fb_publish(pub, req->reply, t);
        free(t);
        t = wire_reply_result(req->id, res);
        fb_publish(pub, req->reply, t);
        json_object_put(res);
    } else {
        return 0;
    }
    free(t);
    atomic_fetch_add(&fb.calls, 1);
    return 1;
}

static void fb_handle(redisContext *pub, const char *text, size_t len)
{
    wire_req_t req;
    char err[128];

    if (wire_req_decode(text, len, &req, err, sizeof err) != 0)
        return;
    if (req.op == WIRE_OP_CANCEL) {
        pthread_mutex_lock(&fb.mu);
        memcpy(fb.cancelled, req.id, sizeof fb.cancelled);
        pthread_mutex_unlock(&fb.mu);
    } else if (req.op == WIRE_OP_CALL && fb_progress_tool(pub, &req)) {
        /* done */
    } else if (req.op == WIRE_OP_CALL && strcmp(req.tool, "step") == 0) {
        json_object *res = json_tokener_parse("{\"content\":[{\"type\":\"text\",\"text\":\"ok\"}]}");
        char *t = wire_reply_result(req.id, res);
        struct timespec pause = {0, 500 * 1000 * 1000};
        atomic_store(&g_step_ms, 3600LL * 1000);
        /* answer a while after the step, so that the caller looks at its
         * clock in between (a wall-clock wait would give up then); the pause
         * only sets the scene: the caller passes however long it is */
        nanosleep(&pause, NULL);
        redisReply *r = redisCommand(pub, "PUBLISH %s %s", req.reply, t);
        if (!r) {
            /* killed with the others and not noticed yet: once more, anew */
            redisContext *again = rconn_connect(tredis_url(), 2000, err, sizeof err);
            if (again)
                r = redisCommand(again, "PUBLISH %s %s", req.reply, t);
            if (again)
                redisFree(again);
        }
        if (r)
            freeReplyObject(r);
        free(t);
        json_object_put(res);
        atomic_fetch_add(&fb.calls, 1);
    } else if (req.op == WIRE_OP_CALL && strcmp(req.tool, "hold") == 0) {
        pthread_mutex_lock(&fb.mu);
        memcpy(fb.held, req.id, sizeof fb.held);
        pthread_mutex_unlock(&fb.mu);
        atomic_fetch_add(&fb.calls, 1);
    }
    wire_req_clear(&req);
}

static void *fb_main(void *arg)
{
    redisContext *sub = NULL, *pub = NULL;
    char err[256];

    (void)arg;
    while (!atomic_load(&fb.quit)) {
        redisReply *r = NULL;
        struct pollfd p;

        if (!sub || sub->err || !pub || pub->err) {
            if (sub)
                redisFree(sub);
            if (pub)
                redisFree(pub);
            pub = rconn_connect(tredis_url(), 2000, err, sizeof err);
            sub = rconn_connect(tredis_url(), 2000, err, sizeof err);
            if (sub) {
                r = redisCommand(sub, "SUBSCRIBE " PREFIX "mcp:calls");
                if (r)
                    freeReplyObject(r);
                r = NULL;
            }
            continue;
        }
        if (redisGetReplyFromReader(sub, (void **)&r) != REDIS_OK) {
            redisFree(sub);
            sub = NULL;
            continue;
        }
        if (r) {
            if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 && r->element[2]->type == REDIS_REPLY_STRING)
                fb_handle(pub, r->element[2]->str, r->element[2]->len);
            freeReplyObject(r);
            continue;
        }
        p.fd = sub->fd;
        p.events = POLLIN;
        p.revents = 0;
        if (poll(&p, 1, 50) > 0 && redisBufferRead(sub) != REDIS_OK) {
            redisFree(sub);
            sub = NULL;
        }
    }
    if (sub)
        redisFree(sub);
    if (pub)
        redisFree(pub);
    return NULL;
}

/* Bounded wait until the fake broker listens on the calls channel. */
static void fb_wait_listening(void)
{
    char err[256];
    redisContext *c = rconn_connect(tredis_url(), 2000, err, sizeof err);
    struct timespec ts = {0, 10 * 1000 * 1000};

    assert_non_null(c);
    for (int i = 0; i < 500; i++) {
        redisReply *r = redisCommand(c, "PUBSUB NUMSUB " PREFIX "mcp:calls");
        long long n = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? r->element[1]->integer : 0;
        if (r)
            freeReplyObject(r);
        if (n > 0) {
            redisFree(c);
            return;
        }
        nanosleep(&ts, NULL);
    }
    redisFree(c);
    fail_msg("the fake broker did not subscribe");
}

static int group_setup(void **state)
{
    (void)state;
    if (tredis_start("mcpc") < 0)
        return -1;
    if (pthread_create(&fb.th, NULL, fb_main, NULL) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    atomic_store(&fb.quit, 1);
    pthread_join(fb.th, NULL);
    tredis_stop();
    return 0;
}

/* --- tests ----------------------------------------------------------------- */

/* The wall clock jumps an hour ahead while the call is in flight: with a
 * wall-clock wait the call would "time out" at once; on CLOCK_MONOTONIC it
 * gets its answer. */
static void wall_clock_step_breaks_no_deadline(void **state)
{
    mcpc_t *c = mcpc_new(tredis_url(), PREFIX);
    mcpc_call_t call = {.server = "demo", .tool = "step", .args_json = "{}"};
    aip_err_t e;
    (void)state;
    fb_wait_listening();
    assert_int_equal(mcpc_call_many(c, &call, 1, 30000, NULL, &e), 0);
    assert_string_equal(call.text, "ok");
    assert_int_equal(call.is_error, 0);
    atomic_store(&g_step_ms, 0);
    mcpc_calls_clear(&call, 1);
    mcpc_free(c);
}

/* Every connection killed: the next catalog read and the next call work on
 * the first try (new connections, and a wait for the broker's re-subscribe). */
static void heals_after_client_kill(void **state)
{
    mcpc_t *c = mcpc_new(tredis_url(), PREFIX);
    mcpc_call_t call = {.server = "demo", .tool = "step", .args_json = "{}"};
    json_object *tools = NULL;
    aip_err_t e;
    (void)state;
    redis_do("SET " PREFIX "mcp:catalog:demo %s",
             "{\"status\":\"ready\",\"tools\":[{\"name\":\"step\",\"description\":\"\",\"inputSchema\":{}}]}");
    fb_wait_listening();
    assert_int_equal(mcpc_tools(c, "demo", 5000, &tools, &e), 0);
    json_object_put(tools);
    tools = NULL;
    assert_int_equal(mcpc_call_many(c, &call, 1, 30000, NULL, &e), 0);
    mcpc_calls_clear(&call, 1);
    redis_do("CLIENT KILL TYPE pubsub");
    redis_do("CLIENT KILL TYPE normal");
    assert_int_equal(mcpc_tools(c, "demo", 5000, &tools, &e), 0);
    assert_int_equal(json_object_array_length(tools), 1);
    json_object_put(tools);
    redis_do("CLIENT KILL TYPE pubsub");
    redis_do("CLIENT KILL TYPE normal");
    assert_int_equal(mcpc_call_many(c, &call, 1, 30000, NULL, &e), 0);
    assert_string_equal(call.text, "ok");
    atomic_store(&g_step_ms, 0);
    mcpc_calls_clear(&call, 1);
    mcpc_free(c);
}

/* alive(): the client is there until the broker holds the call. */
static int gone_once_held(void *ud)
{
    int held;

    (void)ud;
    pthread_mutex_lock(&fb.mu);
    held = fb.held[0] != 0;
    pthread_mutex_unlock(&fb.mu);
    return !held;
}

/* The client leaves while a call runs: -ECONNABORTED, and the broker gets
 * a "cancel" naming that call. */
static void abandoned_call_is_cancelled(void **state)
{
    mcpc_t *c = mcpc_new(tredis_url(), PREFIX);
    mcpc_call_t call = {.server = "demo", .tool = "hold", .args_json = "{}"};
    aip_err_t e;
    char held[WIRE_ID_LEN + 1] = "", cancelled[WIRE_ID_LEN + 1] = "";
    struct timespec ts = {0, 10 * 1000 * 1000};
    (void)state;
    fb_wait_listening();
    pthread_mutex_lock(&fb.mu);
    fb.held[0] = fb.cancelled[0] = 0;
    pthread_mutex_unlock(&fb.mu);
    mcpc_hooks_t hooks = {.alive = gone_once_held};
    assert_int_equal(mcpc_call_many(c, &call, 1, 30000, &hooks, &e),
                     -ECONNABORTED);
    for (int i = 0; i < 500 && !cancelled[0]; i++) {
        pthread_mutex_lock(&fb.mu);
        memcpy(held, fb.held, sizeof held);
        memcpy(cancelled, fb.cancelled, sizeof cancelled);
        pthread_mutex_unlock(&fb.mu);
        if (!cancelled[0])
            nanosleep(&ts, NULL);
    }
    assert_true(held[0] != 0);
    assert_string_equal(cancelled, held);
    mcpc_free(c);
}

/* mcpc_kv_* (agent/mixed.c's store): under the prefix, with the TTL, binary
 * safe, absent as 0, a value past the cap refused, and on a connection
 * Redis killed, a new one. */
static void kv_set_get_ttl_cap(void **state)
{
    mcpc_t *c = mcpc_new(tredis_url(), PREFIX);
    char err[256] = "", *v = NULL;
    redisContext *rc = rconn_connect(tredis_url(), 2000, err, sizeof err);
    redisReply *r;
    size_t len = 0;
    aip_err_t e;
    (void)state;
    assert_non_null(rc);
    assert_int_equal(mcpc_kv_set(c, "mixed:k", "a\0b", 3, 60, &e), 0);
    r = redisCommand(rc, "TTL " PREFIX "mixed:k");
    assert_true(r && r->type == REDIS_REPLY_INTEGER && r->integer > 0 && r->integer <= 60);
    freeReplyObject(r);
    assert_int_equal(mcpc_kv_get(c, "mixed:k", 16, &v, &len, &e), 1);
    assert_int_equal(len, 3);
    assert_memory_equal(v, "a\0b", 3);
    free(v);
    assert_int_equal(mcpc_kv_get(c, "mixed:k", 2, &v, &len, &e), -EFBIG);
    assert_null(v);
    assert_int_equal(mcpc_kv_get(c, "mixed:nope", 16, &v, &len, &e), 0);
    assert_null(v);
    redis_do("CLIENT KILL TYPE normal");
    assert_int_equal(mcpc_kv_get(c, "mixed:k", 16, &v, &len, &e), 1);
    free(v);
    redisFree(rc);
    mcpc_free(c);
}

/* on_progress: records what it is told. */
static struct {
    int n;
    size_t index;
    double progress, total;
    char message[64];
} seen;

static int record_progress(void *ud, const mcpc_progress_t *p)
{
    (void)ud;
    seen.n++;
    seen.index = p->index;
    seen.progress = p->progress;
    seen.total = p->total;
    snprintf(seen.message, sizeof seen.message, "%s", p->message ? p->message : "");
    return 0;
}

/* An 800 ms call whose server reports progress every 200 ms for 2 s gets
 * its result: each report gave it its time again; on_progress saw each. */
static void progress_extends_the_deadline(void **state)
{
    mcpc_t *c = mcpc_new(tredis_url(), PREFIX);
    mcpc_call_t calls[2] = {{.server = "demo", .tool = "echo-nothing", .args_json = "{"},
                            {.server = "demo", .tool = "progress", .args_json = "{}"}};
    mcpc_hooks_t hooks = {.on_progress = record_progress};
    aip_err_t e;
    (void)state;
    fb_wait_listening();
    memset(&seen, 0, sizeof seen);
    assert_int_equal(mcpc_call_many(c, calls, 2, 800, &hooks, &e), 0);
    assert_string_equal(calls[1].text, "done");
    assert_int_equal(calls[1].is_error, 0);
    assert_true(calls[0].is_error);          /* bad arguments: never sent */
    assert_true(seen.n >= 5);
    assert_int_equal(seen.index, 1);
    assert_true(seen.total == 10 && seen.progress >= 5);
    assert_non_null(strstr(seen.message, "step "));
    mcpc_calls_clear(calls, 2);
    mcpc_free(c);
}

/* Progress that stops: the call times out by itself (its last report's
 * time, not the first deadline), says so, and is cancelled at the broker. */
static void progress_that_stops_times_out(void **state)
{
    mcpc_t *c = mcpc_new(tredis_url(), PREFIX);
    mcpc_call_t call = {.server = "demo", .tool = "fade", .args_json = "{}"};
    mcpc_hooks_t hooks = {.on_progress = record_progress};
    aip_err_t e;
    char held[WIRE_ID_LEN + 1] = "", cancelled[WIRE_ID_LEN + 1] = "";
    (void)state;
    fb_wait_listening();
    memset(&seen, 0, sizeof seen);
    pthread_mutex_lock(&fb.mu);
    fb.held[0] = fb.cancelled[0] = 0;
    pthread_mutex_unlock(&fb.mu);
    assert_int_equal(mcpc_call_many(c, &call, 1, 600, &hooks, &e), 0);
    assert_int_equal(seen.n, 2);
    assert_true(call.is_error);
    assert_non_null(strstr(call.text, "[tool error] tool 'fade' timed out after"));
    assert_non_null(strstr(call.text, "no progress reported for"));
    for (int i = 0; i < 500 && !cancelled[0]; i++) {
        pthread_mutex_lock(&fb.mu);
        memcpy(held, fb.held, sizeof held);
        memcpy(cancelled, fb.cancelled, sizeof cancelled);
        pthread_mutex_unlock(&fb.mu);
        if (!cancelled[0])
            fb_pause_ms(10);
    }
    assert_string_equal(cancelled, held);
    mcpc_calls_clear(&call, 1);
    mcpc_free(c);
}

/* A report for an id nobody waits for, and one for a call already answered,
 * are dropped: on_progress never fires, the answers are untouched. */
static void stray_and_late_progress_dropped(void **state)
{
    mcpc_t *c = mcpc_new(tredis_url(), PREFIX);
    mcpc_call_t calls[2] = {{.server = "demo", .tool = "late", .args_json = "{}"},
                            {.server = "demo", .tool = "stray", .args_json = "{}"}};
    mcpc_hooks_t hooks = {.on_progress = record_progress};
    aip_err_t e;
    (void)state;
    fb_wait_listening();
    memset(&seen, 0, sizeof seen);
    assert_int_equal(mcpc_call_many(c, calls, 2, 30000, &hooks, &e), 0);
    assert_string_equal(calls[0].text, "first");
    assert_string_equal(calls[1].text, "second");
    assert_int_equal(seen.n, 0);
    mcpc_calls_clear(calls, 2);
    mcpc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(wall_clock_step_breaks_no_deadline),
        cmocka_unit_test(heals_after_client_kill),
        cmocka_unit_test(abandoned_call_is_cancelled),
        cmocka_unit_test(progress_extends_the_deadline),
        cmocka_unit_test(progress_that_stops_times_out),
        cmocka_unit_test(stray_and_late_progress_dropped),
        /* last: it kills every normal client, the fake broker's too */
        cmocka_unit_test(kv_set_get_ttl_cap),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
