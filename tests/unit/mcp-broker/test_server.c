/* server.c through its ops table, with a fake host instead of the broker:
 * what it publishes and writes for a server that cannot start, a server
 * whose child dies before it is ready (the waiting "start" gets the reason),
 * its list links, and retirement (ops.gone once the server has freed
 * itself), and MCP progress through a real mcp-demo child: reports extend a
 * call's deadline up to max_timeout and are relayed, coalesced, before the
 * answer (the answer through ops.answer when the host has one). A real
 * libuv loop; no Redis. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mcp-broker/bmetrics.h"
#include "mcp-broker/server.h"
#include "shared/wire.h"

#define ID1 "0123456789abcdef0123456789abcdef"
#define ID2 "fedcba9876543210fedcba9876543210"

typedef struct fake_host {
    int publishes, set_keys, gone;
    char channel[256], text[2048];
    char key[256], value[2048];
    int progress, finals, late;  /* progress reports, final answers, reports after one */
    int64_t last_left_ms;
    int use_answer, answers;     /* the host has ops.answer; final answers through it */
    int sampling;                /* sampling requests relayed */
    int64_t sid;
    char sampling_id[WIRE_ID_LEN + 1], sampling_channel[256];
} fake_host_t;

static void fake_publish(void *data, const char *channel, const char *text)
{
    fake_host_t *h = data;
    wire_reply_t r;
    char err[128];

    h->publishes++;
    snprintf(h->channel, sizeof(h->channel), "%s", channel);
    if (wire_reply_decode(text, strlen(text), &r, err, sizeof(err)) == 0) {
        if (r.is_sampling) {
            h->sampling++;
            h->sid = r.sid;
            memcpy(h->sampling_id, r.id, sizeof(h->sampling_id));
            snprintf(h->sampling_channel, sizeof(h->sampling_channel), "%s", channel);
            wire_reply_clear(&r);
            return;
        }
        if (r.is_progress) {
            h->progress++;
            h->late += h->finals > 0;
            h->last_left_ms = r.left_ms;
            wire_reply_clear(&r);
            return;      /* h->text keeps the final answer */
        }
        h->finals++;
        wire_reply_clear(&r);
    }
    snprintf(h->text, sizeof(h->text), "%s", text);
}

/* ops.answer: a call's final answer (then as any publish) */
static void fake_answer(void *data, const char *channel, const char *text)
{
    fake_host_t *h = data;

    h->answers++;
    fake_publish(data, channel, text);
}

static void fake_set_key(void *data, const char *key, const char *text)
{
    fake_host_t *h = data;

    h->set_keys++;
    snprintf(h->key, sizeof(h->key), "%s", key);
    snprintf(h->value, sizeof(h->value), "%s", text);
}

static void fake_gone(void *data)
{
    fake_host_t *h = data;

    h->gone++;
}

static server_t *new_server(fake_host_t *h, uv_loop_t *loop, const char *name, const char *cfg_json)
{
    server_ops_t ops = {fake_publish, fake_set_key, fake_gone, h, h->use_answer ? fake_answer : NULL};
    json_object *cfg = json_tokener_parse(cfg_json);
    server_t *s;

    assert_non_null(cfg);
    s = server_new(&ops, loop, "p:", name, cfg);
    json_object_put(cfg); /* copied */
    assert_non_null(s);
    return s;
}

static void make_req(wire_req_t *req, enum wire_op op, const char *server)
{
    char err[128];
    char *t = wire_req_encode(op, ID1, "p:reply:1", server, "add", NULL, 4102444800000LL);

    assert_non_null(t);
    assert_int_equal(wire_req_decode(t, strlen(t), req, err, sizeof(err)), 0);
    free(t);
}

/* Runs the loop until *counter reaches want (bounded in iterations: a
 * loop with a pending timer or child never returns 0 early). */
static void run_until(uv_loop_t *loop, const int *counter, int want)
{
    for (int i = 0; i < 100000 && *counter < want; i++)
        uv_run(loop, UV_RUN_ONCE);
    assert_int_equal(*counter, want);
}

/* Lets the handles still closing (the session's pipes, its child) finish. */
/* --- progress (MCP notifications/progress) through a real mcp-demo ------- */

/* The cfg of an mcp-demo --test-tools server (built beside this program),
 * plus `extra` fields. */
static char *demo_cfg(const char *extra)
{
    char exe[4096], *slash, *cfg = malloc(8192);
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

    assert_true(n > 0);
    exe[n] = 0;
    slash = strrchr(exe, '/');
    assert_non_null(slash);
    *slash = 0;
    assert_non_null(cfg);
    snprintf(cfg, 8192, "{\"transport\":\"stdio\",\"command\":\"%s/mcp-demo\","
             "\"args\":[\"--test-tools\"]%s}", exe, extra);
    return cfg;
}

static int64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Calls the demo's progress tool with `args`, timeout_ms from now; runs the
 * loop until its answer; returns the ms it took. */
static int64_t call_progress(fake_host_t *h, server_t *s, uv_loop_t *loop, const char *args,
                             int timeout_ms)
{
    json_object *a = json_tokener_parse(args);
    char err[128];
    char *t = wire_req_encode(WIRE_OP_CALL, ID1, "p:reply:1", "d", "progress", a, unix_ms() + timeout_ms);
    wire_req_t req;
    uint64_t t0 = uv_hrtime();

    assert_non_null(t);
    assert_int_equal(wire_req_decode(t, strlen(t), &req, err, sizeof(err)), 0);
    server_handle(s, &req);
    wire_req_clear(&req);
    free(t);
    json_object_put(a);
    run_until(loop, &h->finals, 1);
    assert_int_equal(h->finals, 1);
    return (int64_t)((uv_hrtime() - t0) / 1000000);
}

static void retire(fake_host_t *h, server_t *s, uv_loop_t *loop);

/* Sends call `id` of tool `tool` with args (JSON text) answered on `reply`. */
static void send_call(server_t *s, const char *id, const char *reply, const char *tool, const char *args)
{
    json_object *a = json_tokener_parse(args);
    char err[128];
    char *t = wire_req_encode(WIRE_OP_CALL, id, reply, "d", tool, a, unix_ms() + 20000);
    wire_req_t req;

    assert_non_null(t);
    assert_int_equal(wire_req_decode(t, strlen(t), &req, err, sizeof(err)), 0);
    server_handle(s, &req);
    wire_req_clear(&req);
    free(t);
    json_object_put(a);
}

/* A server's sampling/createMessage during a call goes to the call's owner
 * on its reply channel, and the owner's answer (op "sampled") goes back to
 * the server: the demo's ask tool returns it. */
static void test_sampling_handed_to_the_call(void **state)
{
    fake_host_t h = {0};
    uv_loop_t loop;
    char *cfg = demo_cfg(""), err[128], *t;
    json_object *res = json_tokener_parse("{\"role\":\"assistant\",\"content\":{\"type\":\"text\","
                                          "\"text\":\"from the owner\"},\"model\":\"m\"}");
    wire_req_t req;
    server_t *s;

    (void)state;
    uv_loop_init(&loop);
    s = new_server(&h, &loop, "d", cfg);
    send_call(s, ID1, "p:reply:1", "ask", "{\"method\":\"sampling/createMessage\"}");
    run_until(&loop, &h.sampling, 1);
    assert_string_equal(h.sampling_id, ID1);
    assert_string_equal(h.sampling_channel, "p:reply:1");
    t = wire_req_sampled(ID1, "p:reply:1", "d", unix_ms() + 20000, h.sid, res, NULL);
    assert_non_null(t);
    assert_int_equal(wire_req_decode(t, strlen(t), &req, err, sizeof(err)), 0);
    server_sampled(s, &req);
    wire_req_clear(&req);
    free(t);
    run_until(&loop, &h.finals, 1);
    assert_non_null(strstr(h.text, "from the owner"));
    json_object_put(res);
    retire(&h, s, &loop);
    free(cfg);
}

/* With calls of two clients in flight on the session, the broker cannot
 * tell whose the request is: refused at once, handed to neither. */
static void test_sampling_refused_between_clients(void **state)
{
    fake_host_t h = {0};
    uv_loop_t loop;
    char *cfg = demo_cfg("");
    server_t *s;

    (void)state;
    uv_loop_init(&loop);
    s = new_server(&h, &loop, "d", cfg);
    send_call(s, ID2, "p:reply:2", "sleep", "{\"ms\":1000}");
    send_call(s, ID1, "p:reply:1", "ask", "{\"method\":\"sampling/createMessage\"}");
    run_until(&loop, &h.finals, 1);
    assert_int_equal(h.sampling, 0);
    assert_string_equal(h.channel, "p:reply:1");
    assert_non_null(strstr(h.text, "calls from several clients are in flight"));
    run_until(&loop, &h.finals, 2);
    retire(&h, s, &loop);
    free(cfg);
}

/* A call with a 1 s deadline that reports progress every 250 ms for 2.5 s
 * gets its result: each report gave it its 1 s again, and was relayed on
 * the call's reply channel before the answer, with the time left. */
static void test_progress_extends_deadline(void **state)
{
    fake_host_t h = {.use_answer = 1};
    uv_loop_t loop;
    char *cfg = demo_cfg("");
    server_t *s;

    (void)state;
    uv_loop_init(&loop);
    s = new_server(&h, &loop, "d", cfg);
    call_progress(&h, s, &loop, "{\"seconds\":2.5,\"every_ms\":250}", 1000);
    assert_int_equal(h.answers, 1);   /* the answer on ops.answer, the reports on publish */
    assert_non_null(strstr(h.text, "\"ok\":true"));
    assert_non_null(strstr(h.text, "progressed 2500 ms with 10 progress reports"));
    assert_true(h.progress >= 3);
    assert_int_equal(h.late, 0);
    assert_true(h.last_left_ms > 0 && h.last_left_ms <= 1000);
    retire(&h, s, &loop);
    free(cfg);
}

/* The same tool without progress times out at its deadline. */
static void test_silent_call_times_out(void **state)
{
    fake_host_t h = {0};
    uv_loop_t loop;
    char *cfg = demo_cfg("");
    server_t *s;
    int64_t took;

    (void)state;
    uv_loop_init(&loop);
    s = new_server(&h, &loop, "d", cfg);
    took = call_progress(&h, s, &loop, "{\"seconds\":3,\"every_ms\":250,\"silent\":true}", 1000);
    assert_non_null(strstr(h.text, "\"ok\":false"));
    assert_non_null(strstr(h.text, "timed out after 1 s"));
    assert_int_equal(h.progress, 0);
    assert_true(took >= 900);
    retire(&h, s, &loop);
    free(cfg);
}

/* Progress cannot keep a call alive past the server's max_timeout. */
static void test_progress_ceiling(void **state)
{
    fake_host_t h = {0};
    uv_loop_t loop;
    char *cfg = demo_cfg(",\"max_timeout\":1.5");
    server_t *s;
    int64_t took;

    (void)state;
    uv_loop_init(&loop);
    s = new_server(&h, &loop, "d", cfg);
    took = call_progress(&h, s, &loop, "{\"seconds\":10,\"every_ms\":200}", 1000);
    assert_non_null(strstr(h.text, "\"ok\":false"));
    assert_non_null(strstr(h.text, "max_timeout"));
    assert_true(h.progress >= 1);
    assert_true(took >= 1400);
    assert_true(took < 9000); /* well before the tool's own end */
    retire(&h, s, &loop);
    free(cfg);
}

/* A flood of reports (one a millisecond) is relayed at most ~10 times a
 * second (coalesced), never after the answer. */
static void test_progress_coalesced(void **state)
{
    fake_host_t h = {0};
    uv_loop_t loop;
    char *cfg = demo_cfg("");
    server_t *s;
    int64_t took;

    (void)state;
    uv_loop_init(&loop);
    s = new_server(&h, &loop, "d", cfg);
    took = call_progress(&h, s, &loop, "{\"seconds\":1,\"every_ms\":1}", 30000);
    assert_non_null(strstr(h.text, "\"ok\":true"));
    assert_true(h.progress >= 2);
    if (h.progress > 10 * took / 1000 + 2)
        fail_msg("%d progress reports relayed in %lld ms", h.progress, (long long)took);
    assert_int_equal(h.late, 0);
    retire(&h, s, &loop);
    free(cfg);
}

static void close_loop(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(loop), 0);
}

static void retire(fake_host_t *h, server_t *s, uv_loop_t *loop)
{
    server_retire(s);
    run_until(loop, &h->gone, 1);
    close_loop(loop);
}

static void test_cannot_start(void **state)
{
    fake_host_t h = {0};
    uv_loop_t loop;
    server_t *s;
    wire_req_t req;

    (void)state;
    uv_loop_init(&loop);
    s = new_server(&h, &loop, "x", "{\"transport\":\"bogus\"}");
    assert_string_equal(server_name(s), "x");
    assert_string_equal(server_catalog_key(s), "p:mcp:catalog:x");
    make_req(&req, WIRE_OP_START, "x");
    server_handle(s, &req);
    wire_req_clear(&req);
    /* the catalog says why, and the request is answered at once, on its
     * reply channel, with the reason */
    assert_int_equal(h.set_keys, 1);
    assert_string_equal(h.key, "p:mcp:catalog:x");
    assert_non_null(strstr(h.value, "\"status\":\"error\""));
    assert_non_null(strstr(h.value, "unknown transport"));
    assert_int_equal(h.publishes, 1);
    assert_string_equal(h.channel, "p:reply:1");
    assert_non_null(strstr(h.text, ID1));
    assert_non_null(strstr(h.text, "retrying in the background"));
    /* retired: frees itself on the loop, then tells the host */
    server_retire(s);
    assert_int_equal(h.gone, 0);
    run_until(&loop, &h.gone, 1);
    close_loop(&loop);
}

static void test_dies_before_ready(void **state)
{
    fake_host_t h = {0};
    uv_loop_t loop;
    server_t *s;
    wire_req_t req;

    (void)state;
    uv_loop_init(&loop);
    /* starts (a child runs) but exits at once: never ready */
    s = new_server(&h, &loop, "f", "{\"transport\":\"stdio\",\"command\":\"/bin/false\"}");
    make_req(&req, WIRE_OP_START, "f");
    server_handle(s, &req);
    wire_req_clear(&req);
    assert_int_equal(h.publishes, 0);   /* waits for the catalog */
    run_until(&loop, &h.publishes, 1);
    assert_string_equal(h.channel, "p:reply:1");
    assert_non_null(strstr(h.text, ID1));
    assert_non_null(strstr(h.text, "\"error\""));
    assert_non_null(strstr(h.value, "\"status\":\"error\""));
    server_retire(s);
    run_until(&loop, &h.gone, 1);
    close_loop(&loop);
}

static void test_list_links(void **state)
{
    fake_host_t h = {0};
    uv_loop_t loop;
    server_t *a, *b;

    (void)state;
    uv_loop_init(&loop);
    a = new_server(&h, &loop, "a", "{\"transport\":\"bogus\"}");
    b = new_server(&h, &loop, "b", "{\"transport\":\"bogus\"}");
    assert_null(server_next(a));
    server_set_next(b, a);
    assert_ptr_equal(server_find(b, "a"), a);
    assert_ptr_equal(server_find(b, "b"), b);
    assert_null(server_find(b, "c"));
    assert_int_equal(server_owned(a), 0);
    server_set_owned(a, 1);
    assert_int_equal(server_owned(a), 1);
    /* nothing was started: nothing was published or written */
    assert_int_equal(h.publishes + h.set_keys, 0);
    server_retire(a);
    server_retire(b);
    assert_int_equal(server_owned(a), 0);
    run_until(&loop, &h.gone, 2);
    close_loop(&loop);
}

/* What the metrics listener reads (server_stats) and renders: a server
 * that cannot start is in backoff with its call counted as server_down; an
 * idle one whose lease is held counts in leases_held. */
static void test_stats_rendered(void **state)
{
    fake_host_t h = {0};
    uv_loop_t loop;
    server_t *a, *b;
    server_stats_t st;
    wire_req_t req;
    buf_t out;

    (void)state;
    uv_loop_init(&loop);
    a = new_server(&h, &loop, "a", "{\"transport\":\"bogus\"}");
    b = new_server(&h, &loop, "b\"q", "{\"transport\":\"bogus\"}");
    server_set_next(b, a);
    server_set_owned(b, 1);
    server_stats(b, &st);
    assert_string_equal(st.state, "idle");
    make_req(&req, WIRE_OP_CALL, "a");
    server_handle(a, &req);
    wire_req_clear(&req);
    server_stats(a, &st);
    assert_string_equal(st.state, "backoff");
    assert_int_equal(st.calls[SERVER_OUT_SERVER_DOWN], 1);
    assert_int_equal(st.restarts, 0);
    buf_init(&out, 1 << 20);
    assert_int_equal(bmetrics_render(&out, b), 0);
    assert_non_null(strstr(buf_str(&out), "aiproxy_broker_sessions{server=\"a\",state=\"backoff\"} 1\n"));
    assert_non_null(strstr(buf_str(&out), "aiproxy_broker_sessions{server=\"b\\\"q\",state=\"idle\"} 1\n"));
    assert_non_null(strstr(buf_str(&out),
                           "aiproxy_broker_calls_total{server=\"a\",outcome=\"server_down\"} 1\n"));
    assert_non_null(strstr(buf_str(&out), "aiproxy_broker_call_duration_seconds_count{server=\"a\"} 0\n"));
    assert_non_null(strstr(buf_str(&out), "aiproxy_broker_leases_held 1\n"));
    buf_free(&out);
    server_retire(a);
    server_retire(b);
    run_until(&loop, &h.gone, 2);
    close_loop(&loop);
}

int main(void)
{
    /* as the daemon does: a write to a child that has exited is an error
     * to handle, not a signal that ends the process */
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cannot_start),
        cmocka_unit_test(test_dies_before_ready),
        cmocka_unit_test(test_list_links),
        cmocka_unit_test(test_stats_rendered),
        cmocka_unit_test(test_progress_extends_deadline),
        cmocka_unit_test(test_silent_call_times_out),
        cmocka_unit_test(test_progress_ceiling),
        cmocka_unit_test(test_progress_coalesced),
        cmocka_unit_test(test_sampling_handed_to_the_call),
        cmocka_unit_test(test_sampling_refused_between_clients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
