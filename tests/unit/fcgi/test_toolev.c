/* Unit tests for fcgi/core/toolev (tool events, issue 13 item 3): who asked
 * for them (header, body field, assistant), the JSON of each event with its
 * capped previews, the list a non-streamed answer carries, and the two
 * carriers the surfaces write them in: an OpenAI chunk with an empty delta
 * and one extra field, an Anthropic named event. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fcgi/anthropic/msgout.h"
#include "fcgi/core/stream.h"
#include "fcgi/core/toolev.h"
#include "shared/caps.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int decide(const char *header, const char *body, const char *assistant, int *on,
                  aip_err_t *err)
{
    char hp[128];
    char *params[] = { hp, NULL };
    http_req_t req;
    json_object *b = body ? json_tokener_parse(body) : NULL;
    json_object *a = assistant ? json_tokener_parse(assistant) : NULL;
    int rc;

    memset(&req, 0, sizeof(req));
    snprintf(hp, sizeof(hp), "HTTP_X_AIPROXY_TOOL_EVENTS=%s", header ? header : "");
    req.params = header ? params : NULL;
    aip_err_clear(err);
    rc = toolev_decide(&req, b, a, on, err);
    json_object_put(b);
    json_object_put(a);
    return rc;
}

static void who_turns_them_on(void **state)
{
    aip_err_t e;
    int on = -1;

    (void)state;
    /* off by default */
    assert_int_equal(decide(NULL, "{}", "{}", &on, &e), 0);
    assert_int_equal(on, 0);
    assert_int_equal(decide(NULL, "{}", "{\"tool_events\":false}", &on, &e), 0);
    assert_int_equal(on, 0);
    /* the assistant's flag, the header, the body field */
    assert_int_equal(decide(NULL, "{}", "{\"tool_events\":true}", &on, &e), 0);
    assert_int_equal(on, 1);
    assert_int_equal(decide("1", "{}", "{}", &on, &e), 0);
    assert_int_equal(on, 1);
    assert_int_equal(decide("TRUE", "{}", "{}", &on, &e), 0);
    assert_int_equal(on, 1);
    assert_int_equal(decide(NULL, "{\"aiproxy\":{\"tool_events\":true}}", "{}", &on, &e), 0);
    assert_int_equal(on, 1);
    /* a request that says off wins over the assistant */
    assert_int_equal(decide("0", "{}", "{\"tool_events\":true}", &on, &e), 0);
    assert_int_equal(on, 0);
    assert_int_equal(decide(NULL, "{\"aiproxy\":{\"tool_events\":false}}",
                            "{\"tool_events\":true}", &on, &e), 0);
    assert_int_equal(on, 0);
    /* header and field: on when either says on */
    assert_int_equal(decide("off", "{\"aiproxy\":{\"tool_events\":true}}", "{}", &on, &e), 0);
    assert_int_equal(on, 1);
    /* an aiproxy object without the flag leaves it to the assistant */
    assert_int_equal(decide(NULL, "{\"aiproxy\":{}}", "{\"tool_events\":true}", &on, &e), 0);
    assert_int_equal(on, 1);
}

static void typos_are_refused_not_ignored(void **state)
{
    aip_err_t e;
    int on = -1;

    (void)state;
    assert_int_equal(decide("maybe", "{}", "{}", &on, &e), -EINVAL);
    assert_int_equal(e.status, 400);
    assert_non_null(strstr(e.msg, "X-Aiproxy-Tool-Events must be 1 or 0"));
    assert_int_equal(decide(NULL, "{\"aiproxy\":{\"tool_events\":\"yes\"}}", "{}", &on, &e),
                     -EINVAL);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.param, "aiproxy.tool_events");
    assert_int_equal(decide(NULL, "{\"aiproxy\":true}", "{}", &on, &e), -EINVAL);
    assert_string_equal(e.param, "aiproxy");
    assert_string_equal(e.type, "invalid_request_error");
}

static const char *sget(json_object *o, const char *k)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(o, k, &v) || !v)
        return NULL;
    return json_object_get_string(v);
}

static void event_json_and_previews(void **state)
{
    agent_event_t ev;
    json_object *o;
    char *big = malloc(CAP_TOOLEV_PREVIEW + 100);

    (void)state;
    assert_non_null(big);
    memset(&ev, 0, sizeof(ev));
    ev.kind = AGENT_EV_READY;
    assert_null(toolev_json(&ev));

    ev.kind = AGENT_EV_TOOL_START;
    ev.round = 1;
    ev.call_id = "call_1";
    ev.name = "demo__add";
    ev.server = "demo";
    ev.tool = "add";
    ev.args_json = "{\"a\":1}";
    o = toolev_json(&ev);
    assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
                        "{\"type\":\"tool.started\",\"round\":1,\"call_id\":\"call_1\","
                        "\"name\":\"demo__add\",\"server\":\"demo\",\"tool\":\"add\","
                        "\"arguments\":\"{\\\"a\\\":1}\",\"truncated\":false}");
    json_object_put(o);

    ev.kind = AGENT_EV_TOOL_PROGRESS;
    ev.progress = 3;
    ev.total = -1;
    ev.message = NULL;
    o = toolev_json(&ev);
    assert_string_equal(sget(o, "type"), "tool.progress");
    assert_int_equal(json_object_get_int(json_object_object_get(o, "progress")), 3);
    assert_true(json_object_object_get_ex(o, "total", NULL));
    assert_null(json_object_object_get(o, "total"));   /* null: the server gave none */
    json_object_put(o);

    /* a result past the cap is cut at a character boundary: 'é' is 2 bytes
     * straddling the cap, so it goes whole or not at all */
    memset(big, 'x', CAP_TOOLEV_PREVIEW + 99);
    big[CAP_TOOLEV_PREVIEW - 1] = (char)0xc3;
    big[CAP_TOOLEV_PREVIEW] = (char)0xa9;
    big[CAP_TOOLEV_PREVIEW + 99] = '\0';
    ev.kind = AGENT_EV_TOOL_DONE;
    ev.server = NULL;
    ev.tool = NULL;
    ev.is_error = 1;
    ev.ms = 0;
    ev.result = big;
    o = toolev_json(&ev);
    assert_string_equal(sget(o, "type"), "tool.finished");
    assert_false(json_object_get_boolean(json_object_object_get(o, "ok")));
    assert_null(json_object_object_get(o, "server"));
    assert_int_equal(json_object_get_int(json_object_object_get(o, "duration_ms")), 0);
    assert_true(json_object_get_boolean(json_object_object_get(o, "truncated")));
    assert_int_equal(strlen(sget(o, "result_preview")), CAP_TOOLEV_PREVIEW - 1);
    json_object_put(o);
    free(big);
}

static int g_emitted;
static int emit(void *run, json_object *ev)
{
    (void)run;
    (void)ev;
    g_emitted++;
    return g_emitted >= 2 ? -EPIPE : 0;
}

static void stream_or_list(void **state)
{
    toolev_t t;
    agent_event_t ev;
    json_object *answer = json_object_new_object();

    (void)state;
    memset(&ev, 0, sizeof(ev));
    ev.kind = AGENT_EV_TOOL_DONE;
    ev.result = "5";
    /* off: nothing anywhere, the answer unchanged */
    memset(&t, 0, sizeof(t));
    assert_int_equal(toolev_event(&t, &ev), 0);
    assert_int_equal(toolev_attach(&t, answer), 0);
    assert_false(json_object_object_get_ex(answer, TOOLEV_LIST_KEY, NULL));
    /* on, not streamed: kept, then one field; none kept still gives [] */
    t.on = 1;
    assert_int_equal(toolev_attach(&t, answer), 0);
    assert_int_equal(json_object_array_length(json_object_object_get(answer, TOOLEV_LIST_KEY)), 0);
    assert_int_equal(toolev_event(&t, &ev), 0);
    assert_int_equal(toolev_event(&t, &ev), 0);
    assert_int_equal(toolev_attach(&t, answer), 0);
    assert_int_equal(json_object_array_length(json_object_object_get(answer, TOOLEV_LIST_KEY)), 2);
    toolev_clear(&t);
    /* streamed: each goes to the carrier; its -EPIPE is the client leaving */
    memset(&t, 0, sizeof(t));
    t.on = t.stream = 1;
    t.emit = emit;
    g_emitted = 0;
    assert_int_equal(toolev_event(&t, &ev), 0);
    assert_int_not_equal(toolev_event(&t, &ev), 0);
    assert_null(t.list);
    json_object_put(answer);
}

/* The SSE events of a captured response (after the header block), as
 * "event|data" strings in `out`; returns how many. */
static int events(const char *cap, char out[][2048], int max)
{
    const char *p = strstr(cap, "\r\n\r\n");
    int n = 0;

    assert_non_null(p);
    p += 4;
    while (*p && n < max) {
        const char *end = strstr(p, "\n\n"), *ev = "", *data = "";
        size_t evl = 0, dl = 0;
        assert_non_null(end);
        for (const char *l = p; l < end;) {
            const char *nl = memchr(l, '\n', (size_t)(end - l));
            size_t ll = nl ? (size_t)(nl - l) : (size_t)(end - l);
            if (strncmp(l, "event: ", 7) == 0) { ev = l + 7; evl = ll - 7; }
            if (strncmp(l, "data: ", 6) == 0) { data = l + 6; dl = ll - 6; }
            l += ll + 1;
        }
        snprintf(out[n++], 2048, "%.*s|%.*s", (int)evl, ev, (int)dl, data);
        p = end + 2;
    }
    return n;
}

static void openai_carrier_is_a_chunk_that_adds_nothing(void **state)
{
    http_req_t req;
    buf_t cap;
    stream_t st;
    json_object *ev = json_tokener_parse("{\"type\":\"tool.started\",\"round\":0}"), *c;
    char ev_s[4][2048];

    (void)state;
    memset(&req, 0, sizeof(req));
    buf_init(&cap, 1 << 16);
    req.capture = &cap;
    stream_init(&st, &req, "helper", "chatcmpl-x", 1700000000, 0);
    assert_int_equal(stream_extra(&st, TOOLEV_EVENT_KEY, ev), 0);
    assert_int_equal(stream_finish(&st, NULL, "stop", NULL), 0);
    assert_int_equal(events(buf_str(&cap), ev_s, 4), 4);
    /* the role chunk first, as always, then the carrier */
    assert_non_null(strstr(ev_s[0], "\"role\":\"assistant\""));
    assert_string_equal(ev_s[1],
        "|{\"id\":\"chatcmpl-x\",\"object\":\"chat.completion.chunk\",\"created\":1700000000,"
        "\"model\":\"helper\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":null}],"
        "\"aiproxy_tool_event\":{\"type\":\"tool.started\",\"round\":0}}");
    c = json_tokener_parse(ev_s[1] + 1);
    assert_non_null(c);
    json_object_put(c);
    assert_string_equal(ev_s[3], "|[DONE]");
    json_object_put(ev);
    buf_free(&cap);
}

static void anthropic_carrier_is_a_named_event(void **state)
{
    http_req_t req;
    buf_t cap;
    msgout_stream_t st;
    json_object *ev = json_tokener_parse("{\"type\":\"tool.finished\",\"ok\":true}");
    char ev_s[8][2048];
    int n;

    (void)state;
    memset(&req, 0, sizeof(req));
    buf_init(&cap, 1 << 16);
    req.capture = &cap;
    msgout_stream_init(&st, &req, "helper", "msg_x");
    assert_int_equal(msgout_stream_delta(&st, "Hi", 2), 0);
    assert_int_equal(msgout_stream_extra(&st, TOOLEV_EVENT_KEY, TOOLEV_EVENT_KEY, ev), 0);
    assert_int_equal(msgout_stream_finish(&st, NULL, "stop", NULL), 0);
    n = events(buf_str(&cap), ev_s, 8);
    assert_int_equal(n, 7);
    assert_true(strncmp(ev_s[0], "message_start|", 14) == 0);
    assert_true(strncmp(ev_s[2], "content_block_delta|", 20) == 0);
    assert_string_equal(ev_s[3], "aiproxy_tool_event|{\"type\":\"aiproxy_tool_event\","
                        "\"aiproxy_tool_event\":{\"type\":\"tool.finished\",\"ok\":true}}");
    assert_true(strncmp(ev_s[4], "content_block_stop|", 19) == 0);
    assert_true(strncmp(ev_s[6], "message_stop|", 13) == 0);
    json_object_put(ev);
    buf_free(&cap);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(who_turns_them_on),
        cmocka_unit_test(typos_are_refused_not_ignored),
        cmocka_unit_test(event_json_and_previews),
        cmocka_unit_test(stream_or_list),
        cmocka_unit_test(openai_carrier_is_a_chunk_that_adds_nothing),
        cmocka_unit_test(anthropic_carrier_is_a_named_event),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
