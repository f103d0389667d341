/* Unit tests for the tool loop (agent/agent.c, agent/toolround.c) against a
 * scripted upstream (an HTTP server thread answering canned replies in order)
 * and a fake broker client: this file defines every mcpc_* function, so the
 * linker takes these instead of agent/mcpc.o. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agent/agent.h"
#include "tests/unit/support/tsrv.h"
#include "agent/mcpc.h"
#include "shared/buf.h"

#include <curl/curl.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- fake mcpc ---- */

struct mcpc { int unused; };
static int g_batches, g_calls, g_broker_down;

mcpc_t *mcpc_new(const char *url, const char *prefix)
{
    (void)url; (void)prefix;
    return calloc(1, sizeof(struct mcpc));
}

void mcpc_free(mcpc_t *c) { free(c); }

int mcpc_tools(mcpc_t *c, const char *server, int timeout_ms, json_object **tools, aip_err_t *e)
{
    (void)c; (void)timeout_ms;
    *tools = NULL;
    if (g_broker_down)
        return aip_err_set(e, 503, "api_error", "mcp_broker_unavailable",
                           "mcp-broker is not running; start it and retry");
    if (strcmp(server, "broken") == 0)
        return aip_err_set(e, 502, "api_error", "mcp_server_unavailable",
                           "MCP server '%s' cannot start: spawn ./nope: No such file or directory",
                           server);
    *tools = json_tokener_parse("[{\"name\":\"add\",\"description\":\"a+b\",\"inputSchema\":"
                                "{\"type\":\"object\"}},{\"name\":\"echo\"}]");
    return 0;
}

int mcpc_call_many(mcpc_t *c, mcpc_call_t *calls, size_t n, int timeout_ms,
                   const mcpc_hooks_t *hooks, aip_err_t *e)
{
    (void)c; (void)timeout_ms;
    g_batches++;
    for (size_t i = 0; i < n; i++) {
        json_object *a = json_tokener_parse(calls[i].args_json), *x = NULL, *y = NULL;
        mcpc_progress_t p = { i, 1, 2, "half way" };
        char out[64];
        g_calls++;
        /* as the broker relays it: progress while the call runs, then done */
        if (hooks && hooks->on_progress && hooks->on_progress(hooks->ud, &p) != 0) {
            json_object_put(a);
            return aip_err_client_gone(e), -ECONNABORTED;
        }
        json_object_object_get_ex(a, "a", &x);
        json_object_object_get_ex(a, "b", &y);
        snprintf(out, sizeof(out), "%d", json_object_get_int(x) + json_object_get_int(y));
        calls[i].text = strdup(strcmp(calls[i].tool, "add") == 0 ? out : "echoed");
        /* the raw result, for mcpc_parts (echo's has an image) */
        calls[i].result = json_tokener_parse(strcmp(calls[i].tool, "add") == 0
            ? "{\"content\":[{\"type\":\"text\",\"text\":\"5\"}]}"
            : "{\"content\":[{\"type\":\"image\",\"data\":\"AAAA\",\"mimeType\":\"image/png\"}]}");
        json_object_put(a);
        if (hooks && hooks->on_done && hooks->on_done(hooks->ud, i, 7) != 0)
            return aip_err_client_gone(e), -ECONNABORTED;
    }
    return 0;
}

void mcpc_calls_clear(mcpc_call_t *calls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(calls[i].text);
        calls[i].text = NULL;
        json_object_put(calls[i].result);
        calls[i].result = NULL;
    }
}

char *mcpc_flatten(json_object *result)
{
    (void)result;
    return NULL;
}

/* The cap the loop last asked for; parts only for a result with an image. */
static size_t g_image_cap;

json_object *mcpc_parts(json_object *result, size_t image_cap, int *nomem)
{
    *nomem = 0;
    g_image_cap = image_cap;
    if (!image_cap || !strstr(json_object_to_json_string(result), "\"image\""))
        return NULL;
    return json_tokener_parse("[{\"type\":\"text\",\"text\":\"pic:\"},{\"type\":\"image_url\","
                              "\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}}]");
}

/* In-memory mcpc_kv_* (agent/mixed.c keeps mixed turns' rounds there). */
#define KVN 8
static struct { char *key, *val; int ttl; } g_kv[KVN];

static void kv_reset(void)
{
    for (int i = 0; i < KVN; i++) {
        free(g_kv[i].key);
        free(g_kv[i].val);
        g_kv[i].key = g_kv[i].val = NULL;
    }
}

int mcpc_kv_set(mcpc_t *c, const char *key, const char *val, size_t len, int ttl_s,
                aip_err_t *e)
{
    (void)c; (void)e;
    for (int i = 0; i < KVN; i++) {
        if (g_kv[i].key && strcmp(g_kv[i].key, key) != 0)
            continue;
        free(g_kv[i].key);
        free(g_kv[i].val);
        g_kv[i].key = strdup(key);
        g_kv[i].val = strndup(val, len);
        g_kv[i].ttl = ttl_s;
        return 0;
    }
    return aip_err_set(e, 503, "api_error", "redis_unavailable", "fake kv full");
}

int mcpc_kv_get(mcpc_t *c, const char *key, size_t cap, char **val, size_t *len, aip_err_t *e)
{
    (void)c; (void)e;
    *val = NULL;
    *len = 0;
    for (int i = 0; i < KVN; i++) {
        if (!g_kv[i].key || strcmp(g_kv[i].key, key) != 0)
            continue;
        if (strlen(g_kv[i].val) > cap)
            return -EFBIG;
        *val = strdup(g_kv[i].val);
        *len = strlen(*val);
        return 1;
    }
    return 0;
}

/* ---- scripted upstream ---- */

#define MAXR 16
typedef struct srv {
    tsrv_t *http;
    int port;
    pthread_mutex_t mu;
    const char *replies[MAXR];
    int nreplies, next;
    char *reqs[MAXR];      /* request bodies received */
} srv_t;

static srv_t S;

/* Answers the next scripted reply and keeps the request body. */
static void on_request(void *ud, int fd, const char *req, const char *body)
{
    const char *reply = "{}";
    char head[256];

    (void)ud;
    (void)req;
    pthread_mutex_lock(&S.mu);
    if (S.next < MAXR) {
        S.reqs[S.next] = strdup(body);
        if (S.next < S.nreplies)
            reply = S.replies[S.next];
        S.next++;
    }
    pthread_mutex_unlock(&S.mu);
    snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n"
             "Connection: close\r\n\r\n",
             strncmp(reply, "data:", 5) == 0 ? "text/event-stream" : "application/json");
    tsrv_say(fd, head);
    tsrv_say(fd, reply);
}

static void script(int n, const char **replies)
{
    pthread_mutex_lock(&S.mu);
    for (int i = 0; i < MAXR; i++) {
        free(S.reqs[i]);
        S.reqs[i] = NULL;
    }
    for (int i = 0; i < n; i++)
        S.replies[i] = replies[i];
    S.nreplies = n;
    S.next = 0;
    pthread_mutex_unlock(&S.mu);
    g_batches = g_calls = g_broker_down = 0;
    g_image_cap = 0;
}

/* The i-th request body the upstream received, parsed (caller puts). */
static json_object *req_n(int i)
{
    json_object *o;
    pthread_mutex_lock(&S.mu);
    o = S.reqs[i] ? json_tokener_parse(S.reqs[i]) : NULL;
    pthread_mutex_unlock(&S.mu);
    assert_non_null(o);
    return o;
}

static int nreqs(void)
{
    int n;
    pthread_mutex_lock(&S.mu);
    n = S.next;
    pthread_mutex_unlock(&S.mu);
    return n;
}

static int setup(void **state)
{
    (void)state;
    pthread_mutex_init(&S.mu, NULL);
    S.http = tsrv_start(on_request, NULL);
    assert_non_null(S.http);
    S.port = tsrv_port(S.http);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tsrv_stop(S.http);
    S.http = NULL;
    script(0, NULL);
    pthread_mutex_destroy(&S.mu);
    return 0;
}

/* ---- helpers ---- */

#define CALL(id, name, args)                                                                   \
    "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":" \
    "\"" id "\",\"type\":\"function\",\"function\":{\"name\":\"" name "\",\"arguments\":\"" args  \
    "\"}}]},\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":10,"               \
    "\"completion_tokens\":1}}"
#define ANSWER(text)                                                                           \
    "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"" text "\"},"            \
    "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":2}}"

typedef struct run {
    agent_res_t res;
    buf_t deltas;
    int rc;
} run_t;

/* Tool events as lines "kind round id name server tool detail", in order;
 * g_ev_stop_at: answer "client gone" at that event (1-based; 0 never). */
static buf_t g_evlog;
static int g_ev_on, g_ev_n, g_ev_stop_at;

static int on_event(void *ud, const agent_event_t *ev)
{
    static const char *const kinds[] = { "?", "ready", "start", "progress", "done" };
    char line[512];

    (void)ud;
    if (ev->kind == AGENT_EV_READY || ev->kind == AGENT_EV_TURN_START ||
        ev->kind == AGENT_EV_TURN_DONE)
        return 0;
    if (ev->kind == AGENT_EV_TOOL_START)
        snprintf(line, sizeof(line), "%s %d %s %s %s %s %s\n", kinds[ev->kind], ev->round,
                 ev->call_id, ev->name, ev->server ? ev->server : "-", ev->tool ? ev->tool : "-",
                 ev->args_json);
    else if (ev->kind == AGENT_EV_TOOL_PROGRESS)
        snprintf(line, sizeof(line), "%s %d %s %s %s %s %g/%g %s\n", kinds[ev->kind], ev->round,
                 ev->call_id, ev->name, ev->server, ev->tool, ev->progress, ev->total,
                 ev->message);
    else
        snprintf(line, sizeof(line), "%s %d %s %s %s %s err=%d ms=%lld %.40s\n", kinds[ev->kind],
                 ev->round, ev->call_id, ev->name, ev->server ? ev->server : "-",
                 ev->tool ? ev->tool : "-", ev->is_error, ev->ms, ev->result);
    buf_puts(&g_evlog, line);
    return ++g_ev_n == g_ev_stop_at;
}

static int on_delta(void *ud, const char *text, size_t len)
{
    return buf_append(&((run_t *)ud)->deltas, text, len) < 0;
}

/* More fields for the assistant and the backend run() makes (",..." or ""). */
static const char *g_as_extra = "", *g_be_extra = "";

static void run(run_t *r, const char *servers, int max_rounds, int stream)
{
    char as[512], be[512];
    json_object *ja, *jb, *body, *all;
    agent_t *ag = agent_new("redis://127.0.0.1:1/0", "t:");
    agent_req_t rq;
    snprintf(as, sizeof(as), "{\"model\":\"m\",\"backend\":\"b\",\"mcp_servers\":%s,"
             "\"max_tool_iterations\":%d%s}", servers, max_rounds, g_as_extra);
    snprintf(be, sizeof(be), "{\"kind\":\"openai\",\"base_url\":\"http://127.0.0.1:%d\","
             "\"api_key\":\"k\",\"timeout\":10%s}", S.port, g_be_extra);
    ja = json_tokener_parse(as);
    jb = json_tokener_parse(be);
    body = json_tokener_parse("{\"messages\":[{\"role\":\"user\",\"content\":\"add 2 and 3\"}]}");
    all = json_tokener_parse("{\"calc\":{\"timeout\":5},\"broken\":{}}");
    memset(&rq, 0, sizeof(rq));
    rq.assistant_name = "a";
    rq.assistant = ja;
    rq.backend = jb;
    rq.mcp_servers = all;
    rq.body = body;
    rq.stream = stream;
    rq.on_delta = on_delta;
    rq.on_event = g_ev_on ? on_event : NULL;
    rq.ud = r;
    buf_init(&r->deltas, 4096);
    r->rc = agent_run(ag, &rq, &r->res);
    json_object_put(ja);
    json_object_put(jb);
    json_object_put(body);
    json_object_put(all);
    agent_free(ag);
}

static void done(run_t *r)
{
    agent_res_clear(&r->res);
    buf_free(&r->deltas);
}

static const char *path_s(json_object *o, const char *a, int i, const char *b)
{
    json_object *v = NULL;
    json_object_object_get_ex(o, a, &v);
    if (i >= 0)
        v = json_object_array_get_idx(v, (size_t)i);
    if (b && !json_object_object_get_ex(v, b, &v))
        return NULL;
    return v ? json_object_get_string(v) : NULL;
}

static int has(json_object *o, const char *k)
{
    return json_object_object_get_ex(o, k, NULL);
}

/* ---- tests ---- */

static void one_round_then_answer(void **state)
{
    const char *rep[] = { CALL("c1", "calc__add", "{\\\"a\\\":2,\\\"b\\\":3}"), ANSWER("It is 5") };
    run_t r;
    json_object *q0, *q1, *msgs;
    (void)state;
    script(2, rep);
    run(&r, "[\"calc\"]", 8, 0);
    assert_int_equal(r.rc, 0);
    assert_string_equal(path_s(r.res.message, "content", -1, NULL), "It is 5");
    assert_string_equal(r.res.finish_reason, "stop");
    assert_int_equal(r.res.tool_rounds, 1);
    assert_int_equal(json_object_get_int(json_object_object_get(r.res.usage, "prompt_tokens")), 30);
    assert_int_equal(json_object_get_int(json_object_object_get(r.res.usage, "total_tokens")), 33);
    assert_int_equal(g_calls, 1);
    q0 = req_n(0);
    q1 = req_n(1);
    assert_string_equal(path_s(q0, "tools", 0, "type"), "function");
    assert_true(has(q1, "tools"));
    msgs = json_object_object_get(q1, "messages");
    assert_int_equal(json_object_array_length(msgs), 3);
    assert_string_equal(path_s(q1, "messages", 1, "role"), "assistant");
    assert_string_equal(path_s(q1, "messages", 2, "role"), "tool");
    assert_string_equal(path_s(q1, "messages", 2, "tool_call_id"), "c1");
    assert_string_equal(path_s(q1, "messages", 2, "content"), "5");
    json_object_put(q0);
    json_object_put(q1);
    done(&r);
}

/* Issue 11: usage summed over the turns overflowed (UBSan: INT64_MAX + 20)
 * when an upstream sent hostile counts; the sums saturate. */
static void hostile_usage_counts_saturate(void **state)
{
    const char *rep[] = {
        "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":"
        "[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"calc__add\","
        "\"arguments\":\"{}\"}}]},\"finish_reason\":\"tool_calls\"}],\"usage\":"
        "{\"prompt_tokens\":9223372036854775807,\"completion_tokens\":9223372036854775807}}",
        ANSWER("ok"),
    };
    json_object *u;
    run_t r;
    (void)state;
    script(2, rep);
    run(&r, "[\"calc\"]", 8, 0);
    assert_int_equal(r.rc, 0);
    u = r.res.usage;
    assert_true(json_object_get_int64(json_object_object_get(u, "prompt_tokens")) == INT64_MAX);
    assert_true(json_object_get_int64(json_object_object_get(u, "completion_tokens")) == INT64_MAX);
    assert_true(json_object_get_int64(json_object_object_get(u, "total_tokens")) == INT64_MAX);
    done(&r);
}

static void unknown_tool_and_bad_arguments_become_tool_errors(void **state)
{
    const char *rep[] = {
        "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"tool_calls\":["
        "{\"id\":\"u\",\"type\":\"function\",\"function\":{\"name\":\"nope\",\"arguments\":\"{}\"}},"
        "{\"id\":\"v\",\"type\":\"function\",\"function\":{\"name\":\"calc__add\","
        "\"arguments\":\"{bad\"}},"
        "{\"id\":\"w\",\"type\":\"function\",\"function\":{\"name\":\"calc__echo\","
        "\"arguments\":\"{}\"}}]},\"finish_reason\":\"tool_calls\"}]}",
        ANSWER("ok") };
    run_t r;
    json_object *q1;
    (void)state;
    script(2, rep);
    run(&r, "[\"calc\"]", 8, 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(g_batches, 1);
    assert_int_equal(g_calls, 1);   /* only the valid one reached the broker */
    q1 = req_n(1);
    assert_non_null(strstr(path_s(q1, "messages", 2, "content"), "[tool error] unknown tool 'nope'"));
    assert_non_null(strstr(path_s(q1, "messages", 3, "content"), "[tool error] invalid JSON"));
    assert_string_equal(path_s(q1, "messages", 4, "content"), "echoed");
    assert_string_equal(path_s(q1, "messages", 4, "tool_call_id"), "w");
    json_object_put(q1);
    done(&r);
}

/* tool_images (issue 15): the assistant's switch, else the backend's, else
 * off for an openai-kind backend. On: the tool message carries the result's
 * parts, and the openai dialect moves the image to a user message; off: the
 * text (with its placeholder). */
static void tool_images_follow_the_switch(void **state)
{
    static const struct { const char *as, *be; int images; } cases[] = {
        { "", "", 0 },
        { ",\"tool_images\":true", "", 1 },
        { "", ",\"tool_images\":true", 1 },
        { ",\"tool_images\":false", ",\"tool_images\":true", 0 },
        { ",\"tool_images\":null", ",\"tool_images\":true", 1 },
    };
    (void)state;
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const char *rep[] = { CALL("c1", "calc__echo", "{}"), ANSWER("a picture") };
        run_t r;
        json_object *q1;
        g_as_extra = cases[k].as;
        g_be_extra = cases[k].be;
        g_image_cap = 0;
        script(2, rep);
        run(&r, "[\"calc\"]", 8, 0);
        g_as_extra = g_be_extra = "";
        assert_int_equal(r.rc, 0);
        q1 = req_n(1);
        if (cases[k].images) {
            assert_true(g_image_cap > 0);
            assert_string_equal(path_s(q1, "messages", 2, "content"),
                                "pic:\n[image 1: in the next user message]");
            assert_string_equal(path_s(q1, "messages", 3, "role"), "user");
            assert_non_null(strstr(json_object_to_json_string(q1), "data:image\\/png;base64,AAAA"));
        } else {
            assert_string_equal(path_s(q1, "messages", 2, "content"), "echoed");
            assert_int_equal(json_object_array_length(json_object_object_get(q1, "messages")), 3);
        }
        json_object_put(q1);
        done(&r);
    }
}

static void round_cap_withdraws_tools(void **state)
{
    const char *rep[] = { CALL("a", "calc__add", "{\\\"a\\\":1}"),
                          CALL("b", "calc__add", "{\\\"a\\\":2}"),
                          CALL("c", "calc__add", "{\\\"a\\\":3}") };
    run_t r;
    json_object *q;
    (void)state;
    script(3, rep);
    run(&r, "[\"calc\"]", 2, 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(nreqs(), 3);
    assert_int_equal(r.res.tool_rounds, 2);
    assert_int_equal(g_calls, 2);   /* the call made without tools offered is not run */
    assert_string_equal(r.res.finish_reason, "stop");
    q = req_n(2);
    assert_false(has(q, "tools"));
    json_object_put(q);
    q = req_n(1);
    assert_true(has(q, "tools"));
    json_object_put(q);
    done(&r);
}

static void same_call_three_times_stops_offering_tools(void **state)
{
    const char *rep[] = { CALL("a", "calc__add", "{}"), CALL("b", "calc__add", "{}"),
                          CALL("c", "calc__add", "{}"), ANSWER("fine") };
    run_t r;
    json_object *q;
    (void)state;
    script(4, rep);
    run(&r, "[\"calc\"]", 8, 0);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.res.tool_rounds, 3);
    q = req_n(2);
    assert_true(has(q, "tools"));
    json_object_put(q);
    q = req_n(3);
    assert_false(has(q, "tools"));
    json_object_put(q);
    done(&r);
}

static void broken_server_and_missing_broker(void **state)
{
    run_t r;
    (void)state;
    script(0, NULL);
    run(&r, "[\"calc\",\"broken\"]", 8, 0);
    assert_true(r.rc < 0);
    assert_int_equal(r.res.status, 502);
    assert_non_null(strstr(r.res.err.msg, "MCP server 'broken' cannot start: spawn ./nope"));
    assert_int_equal(nreqs(), 0);
    done(&r);
    g_broker_down = 1;
    run(&r, "[\"calc\"]", 8, 0);
    assert_int_equal(r.res.status, 503);
    assert_string_equal(r.res.err.code, "mcp_broker_unavailable");
    assert_non_null(strstr(r.res.err.msg, "mcp-broker is not running"));
    done(&r);
}

static void streaming_through_a_tool_round(void **state)
{
    const char *rep[] = {
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Let me check. \"}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"s1\","
        "\"function\":{\"name\":\"calc__add\",\"arguments\":\"{\\\"a\\\":2,\"}}]}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
        "\"function\":{\"arguments\":\"\\\"b\\\":3}\"}}]},\"finish_reason\":\"tool_calls\"}]}\n\n"
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1}}\n\n"
        "data: [DONE]\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"It is \"}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"5.\"},"
        "\"finish_reason\":\"stop\"}]}\n\n"
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":2}}\n\n"
        "data: [DONE]\n\n" };
    run_t r;
    json_object *q;
    (void)state;
    script(2, rep);
    run(&r, "[\"calc\"]", 8, 1);
    assert_int_equal(r.rc, 0);
    /* the turns' texts are joined with a blank line, streamed and not alike */
    assert_string_equal(buf_str(&r.deltas), "Let me check. \n\nIt is 5.");
    assert_string_equal(path_s(r.res.message, "content", -1, NULL), "Let me check. \n\nIt is 5.");
    assert_int_equal(json_object_get_int(json_object_object_get(r.res.usage, "total_tokens")), 6);
    q = req_n(1);
    assert_string_equal(path_s(q, "messages", 2, "content"), "5");
    assert_true(json_object_get_boolean(json_object_object_get(q, "stream")));
    json_object_put(q);
    done(&r);
}

/* ---- mixed turns (agent/mixed.c) ---- */

#define WEATHER_TOOL                                                                           \
    "{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":"            \
    "{\"type\":\"object\"}}}"
#define MIXED_CALLS                                                                            \
    "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"Checking.\","             \
    "\"tool_calls\":[{\"id\":\"m1\",\"type\":\"function\",\"function\":{\"name\":"              \
    "\"calc__add\",\"arguments\":\"{\\\"a\\\":2,\\\"b\\\":3}\"}},{\"id\":\"c1\",\"type\":"     \
    "\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":"                       \
    "\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},\"finish_reason\":\"tool_calls\"}]}"

/* As run(), for assistant `name` with the client's `body`. */
static void run_as(run_t *r, const char *name, const char *body_json)
{
    json_object *ja = json_tokener_parse("{\"model\":\"m\",\"backend\":\"b\",\"mcp_servers\":"
                                         "[\"calc\"],\"max_tool_iterations\":8}");
    json_object *body = json_tokener_parse(body_json), *jb, *all;
    agent_t *ag = agent_new("redis://127.0.0.1:1/0", "t:");
    agent_req_t rq;
    char be[256];

    assert_non_null(body);
    snprintf(be, sizeof(be), "{\"kind\":\"openai\",\"base_url\":\"http://127.0.0.1:%d\","
             "\"api_key\":\"k\",\"timeout\":10}", S.port);
    jb = json_tokener_parse(be);
    all = json_tokener_parse("{\"calc\":{\"timeout\":5}}");
    memset(&rq, 0, sizeof(rq));
    rq.assistant_name = name;
    rq.assistant = ja;
    rq.backend = jb;
    rq.mcp_servers = all;
    rq.body = body;
    rq.on_delta = on_delta;
    rq.ud = r;
    buf_init(&r->deltas, 4096);
    r->rc = agent_run(ag, &rq, &r->res);
    json_object_put(ja);
    json_object_put(jb);
    json_object_put(body);
    json_object_put(all);
    agent_free(ag);
}

/* Turn 1 of a mixed turn; returns the id the client got for get_weather
 * (caller frees). */
static char *mixed_turn_one(void)
{
    const char *rep[] = { MIXED_CALLS };
    json_object *calls;
    char *id;
    run_t r;

    script(1, rep);
    run_as(&r, "a", "{\"messages\":[{\"role\":\"user\",\"content\":\"add 2 and 3, and the "
                    "weather\"}],\"tools\":[" WEATHER_TOOL "]}");
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.res.finish_reason, "tool_calls");
    calls = json_object_object_get(r.res.message, "tool_calls");
    assert_int_equal(json_object_array_length(calls), 1);
    assert_string_equal(path_s(json_object_array_get_idx(calls, 0), "function", -1, "name"),
                        "get_weather");
    id = strdup(path_s(json_object_array_get_idx(calls, 0), "id", -1, NULL));
    done(&r);
    return id;
}

/* Issue 13: a turn calling calc__add and the client's get_weather gave the
 * client its call and dropped ours unrun. Now ours runs, the round is kept
 * and the client gets only its call, under an id of ours. */
static void mixed_turn_runs_ours_keeps_the_round(void **state)
{
    json_object *kept;
    char *id;
    (void)state;
    kv_reset();
    id = mixed_turn_one();
    assert_int_equal(g_calls, 1);               /* calc__add ran */
    assert_int_equal(nreqs(), 1);               /* and the client runs the rest */
    assert_int_equal(strncmp(id, "call_mx", 7), 0);
    assert_int_equal(strlen(id), 7 + 24 + 2);   /* prefix, 96-bit token, "_0" */
    assert_non_null(g_kv[0].key);
    assert_null(g_kv[1].key);
    assert_int_equal(strncmp(g_kv[0].key, "mixed:", 6), 0);
    assert_int_equal(strlen(g_kv[0].key), 6 + 16 + 1 + 24);    /* mixed:<hash>:<token> */
    assert_memory_equal(g_kv[0].key + 6 + 16 + 1, id + 7, 24); /* the id's token */
    assert_int_equal(g_kv[0].ttl, 3600);
    kept = json_tokener_parse(g_kv[0].val);
    assert_int_equal(json_object_array_length(json_object_object_get(kept, "tool_calls")), 2);
    assert_string_equal(path_s(kept, "tool_calls", 0, "id"), "m1");
    assert_string_equal(path_s(kept, "tool_calls", 1, "id"), id);
    assert_string_equal(path_s(kept, "results", 0, "tool_call_id"), "m1");
    assert_string_equal(path_s(kept, "results", 0, "content"), "5");
    json_object_put(kept);
    free(id);
    kv_reset();
}

static char *follow_up(const char *id)
{
    char *b = NULL;
    assert_true(asprintf(&b, "{\"messages\":[{\"role\":\"user\",\"content\":\"add 2 and 3, and "
                         "the weather\"},{\"role\":\"assistant\",\"content\":null,\"name\":null,"
                         "\"tool_calls\":[{\"id\":\"%s\",\"type\":\"function\",\"function\":"
                         "{\"name\":\"get_weather\",\"arguments\":\"{}\"}}]},{\"role\":\"tool\","
                         "\"tool_call_id\":\"%s\",\"content\":\"sunny\"}],\"tools\":["
                         WEATHER_TOOL "]}", id, id) > 0);
    return b;
}

/* The client's follow-up: its assistant message gets both calls back, our
 * result comes before the client's, so every call has its result. */
static void mixed_follow_up_reinserts_the_round(void **state)
{
    const char *rep[] = { ANSWER("5, and sunny") };
    json_object *q;
    char *id, *body;
    run_t r;
    (void)state;
    kv_reset();
    id = mixed_turn_one();
    body = follow_up(id);
    script(1, rep);
    run_as(&r, "a", body);
    assert_int_equal(r.rc, 0);
    assert_string_equal(path_s(r.res.message, "content", -1, NULL), "5, and sunny");
    q = req_n(0);
    assert_int_equal(json_object_array_length(json_object_object_get(q, "messages")), 4);
    assert_string_equal(path_s(q, "messages", 1, "role"), "assistant");
    assert_null(path_s(q, "messages", 1, "content"));   /* the client's (null) */
    {
        json_object *m = json_object_array_get_idx(json_object_object_get(q, "messages"), 1);
        assert_int_equal(json_object_array_length(json_object_object_get(m, "tool_calls")), 2);
        assert_string_equal(path_s(m, "tool_calls", 0, "id"), "m1");
        assert_string_equal(path_s(m, "tool_calls", 1, "id"), id);
    }
    assert_string_equal(path_s(q, "messages", 2, "tool_call_id"), "m1");
    assert_string_equal(path_s(q, "messages", 2, "content"), "5");
    assert_string_equal(path_s(q, "messages", 3, "tool_call_id"), id);
    assert_string_equal(path_s(q, "messages", 3, "content"), "sunny");
    json_object_put(q);
    done(&r);
    free(body);
    free(id);
    kv_reset();
}

/* The round is gone (TTL, Redis lost), or the id is sent to another
 * assistant: the client's conversation goes up as it is (valid by itself). */
static void mixed_follow_up_without_its_round_falls_back(void **state)
{
    const char *rep[] = { ANSWER("sunny") };
    char *id, *body;
    const char *who[] = { "a", "b" };
    (void)state;
    for (int k = 0; k < 2; k++) {
        json_object *q;
        run_t r;
        kv_reset();
        id = mixed_turn_one();
        if (k == 0)
            kv_reset();                 /* expired */
        body = follow_up(id);
        script(1, rep);
        run_as(&r, who[k], body);       /* k == 1: another assistant names it */
        assert_int_equal(r.rc, 0);
        q = req_n(0);
        assert_int_equal(json_object_array_length(json_object_object_get(q, "messages")), 3);
        {
            json_object *m = json_object_array_get_idx(json_object_object_get(q, "messages"), 1);
            assert_int_equal(json_object_array_length(json_object_object_get(m, "tool_calls")),
                             1);
        }
        assert_string_equal(path_s(q, "messages", 2, "tool_call_id"), id);
        json_object_put(q);
        done(&r);
        free(body);
        free(id);
    }
    kv_reset();
}

/* AIPROXY_MIXED_TTL_S sets the round's TTL; a value out of range is the
 * default (and logged), not a round kept forever or never. */
static void mixed_round_ttl_from_the_environment(void **state)
{
    const char *vals[] = { "60", "0", "nope", "604801" };
    const int want[] = { 60, 3600, 3600, 3600 };
    (void)state;
    for (int i = 0; i < 4; i++) {
        char *id;
        kv_reset();
        setenv("AIPROXY_MIXED_TTL_S", vals[i], 1);
        id = mixed_turn_one();
        assert_non_null(g_kv[0].key);
        assert_int_equal(g_kv[0].ttl, want[i]);
        free(id);
    }
    unsetenv("AIPROXY_MIXED_TTL_S");
    kv_reset();
}

/* Issue 13 item 3: every MCP call of every round is seen by the caller as
 * it happens: started (in order, before any goes out), progress as the
 * broker relays it, finished with its result; calls answered without the
 * broker (unknown tool, bad arguments) are finished at once, with an error
 * and no time. */
static void tool_events_follow_each_call(void **state)
{
    const char *rep[] = {
        "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"tool_calls\":["
        "{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"calc__add\","
        "\"arguments\":\"{\\\"a\\\":2,\\\"b\\\":3}\"}},"
        "{\"id\":\"c2\",\"type\":\"function\",\"function\":{\"name\":\"nope\",\"arguments\":\"{}\"}},"
        "{\"id\":\"c3\",\"type\":\"function\",\"function\":{\"name\":\"calc__echo\","
        "\"arguments\":\"{bad\"}}]},\"finish_reason\":\"tool_calls\"}]}",
        CALL("c4", "calc__echo", "{}"),
        ANSWER("done") };
    const char *want =
        "start 0 c1 calc__add calc add {\"a\":2,\"b\":3}\n"
        "start 0 c2 nope - - {}\n"
        "start 0 c3 calc__echo calc echo {bad\n"
        "done 0 c2 nope - - err=1 ms=0 [tool error] unknown tool 'nope': call o\n"
        "done 0 c3 calc__echo calc echo err=1 ms=0 [tool error] invalid JSON arguments for \n"
        "progress 0 c1 calc__add calc add 1/2 half way\n"
        "done 0 c1 calc__add calc add err=0 ms=7 5\n"
        "start 1 c4 calc__echo calc echo {}\n"
        "progress 1 c4 calc__echo calc echo 1/2 half way\n"
        "done 1 c4 calc__echo calc echo err=0 ms=7 echoed\n";
    run_t r;
    (void)state;
    script(3, rep);
    buf_init(&g_evlog, 1 << 16);
    g_ev_on = 1;
    g_ev_n = g_ev_stop_at = 0;
    run(&r, "[\"calc\"]", 8, 0);
    g_ev_on = 0;
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.res.tool_rounds, 2);
    assert_string_equal(buf_str(&g_evlog), want);
    buf_free(&g_evlog);
    done(&r);
}

/* A caller whose event hook says the client left stops the loop there: no
 * call goes out after a refused started event, and the answer is 499. */
static void tool_event_hook_can_stop_the_loop(void **state)
{
    const char *rep[] = { CALL("c1", "calc__add", "{}"), ANSWER("never") };
    run_t r;
    (void)state;
    script(2, rep);
    buf_init(&g_evlog, 4096);
    g_ev_on = 1;
    g_ev_n = 0;
    g_ev_stop_at = 1;
    run(&r, "[\"calc\"]", 8, 0);
    g_ev_on = g_ev_stop_at = 0;
    assert_int_equal(r.rc, -ECONNABORTED);
    assert_true(r.res.client_gone);
    assert_int_equal(g_batches, 0);
    assert_int_equal(nreqs(), 1);
    buf_free(&g_evlog);
    done(&r);
    /* and on progress: the call is abandoned, no further turn */
    script(2, rep);
    buf_init(&g_evlog, 4096);
    g_ev_on = 1;
    g_ev_n = 0;
    g_ev_stop_at = 2;
    run(&r, "[\"calc\"]", 8, 0);
    g_ev_on = g_ev_stop_at = 0;
    assert_int_equal(r.rc, -ECONNABORTED);
    assert_int_equal(nreqs(), 1);
    buf_free(&g_evlog);
    done(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_round_then_answer),
        cmocka_unit_test(hostile_usage_counts_saturate),
        cmocka_unit_test(unknown_tool_and_bad_arguments_become_tool_errors),
        cmocka_unit_test(tool_images_follow_the_switch),
        cmocka_unit_test(round_cap_withdraws_tools),
        cmocka_unit_test(same_call_three_times_stops_offering_tools),
        cmocka_unit_test(broken_server_and_missing_broker),
        cmocka_unit_test(streaming_through_a_tool_round),
        cmocka_unit_test(mixed_turn_runs_ours_keeps_the_round),
        cmocka_unit_test(mixed_follow_up_reinserts_the_round),
        cmocka_unit_test(mixed_follow_up_without_its_round_falls_back),
        cmocka_unit_test(mixed_round_ttl_from_the_environment),
        cmocka_unit_test(tool_events_follow_each_call),
        cmocka_unit_test(tool_event_hook_can_stop_the_loop),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
