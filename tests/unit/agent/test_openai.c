/* Unit tests for agent/openai (be_openai): request building, whole-answer
 * parsing, the streaming parser driven through shared/sse exactly as
 * upstream.c drives it (split reads, tool-call deltas by index, usage,
 * [DONE], error events), and upstream error bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agent/backend.h"
#include "shared/sse.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

static json_object *J(const char *s)
{
    json_object *o = json_tokener_parse(s);
    assert_non_null(o);
    return o;
}

static const char *call_field(json_object *calls, size_t i, const char *f)
{
    json_object *c = json_object_array_get_idx(calls, i), *v = NULL, *fn = NULL;
    if (strcmp(f, "id") == 0) {
        json_object_object_get_ex(c, "id", &v);
    } else {
        json_object_object_get_ex(c, "function", &fn);
        json_object_object_get_ex(fn, f, &v);
    }
    return v ? json_object_get_string(v) : NULL;
}

static void build_makes_url_headers_and_body(void **state)
{
    json_object *be = J("{\"base_url\":\"http://h:1/v1///\",\"api_key\":\"sk-1\","
                        "\"default_headers\":{\"X-Org\":\"o\"}}");
    json_object *req = J("{\"model\":\"m\",\"messages\":[]}");
    struct curl_slist *h = NULL;
    buf_t url, body;
    char err[128];
    int auth = 0, ct = 0, org = 0;
    (void)state;
    buf_init(&url, 1000);
    buf_init(&body, 1000);
    assert_int_equal(be_openai.build(be, req, 0, &url, &h, &body, err, sizeof(err)), 0);
    assert_string_equal(buf_str(&url), "http://h:1/v1/chat/completions");
    json_object *back = J(buf_str(&body));
    assert_true(json_object_equal(back, req));
    for (struct curl_slist *p = h; p; p = p->next) {
        auth += strcmp(p->data, "Authorization: Bearer sk-1") == 0;
        ct += strcmp(p->data, "Content-Type: application/json") == 0;
        org += strcmp(p->data, "X-Org: o") == 0;
    }
    assert_int_equal(auth + ct + org, 3);
    curl_slist_free_all(h);
    json_object_put(back);
    json_object_put(be);
    json_object_put(req);
    buf_free(&url);
    buf_free(&body);
}

static void build_without_key_sends_no_authorization(void **state)
{
    json_object *be = J("{\"base_url\":\"http://h\",\"api_key\":\"\"}"), *nobase = J("{}");
    json_object *req = J("{\"model\":\"m\"}");
    struct curl_slist *h = NULL;
    buf_t url, body;
    char err[128];
    (void)state;
    buf_init(&url, 1000);
    buf_init(&body, 1000);
    assert_int_equal(be_openai.build(be, req, 0, &url, &h, &body, err, sizeof(err)), 0);
    for (struct curl_slist *p = h; p; p = p->next)
        assert_null(strstr(p->data, "Authorization"));
    curl_slist_free_all(h);
    h = NULL;
    assert_int_equal(be_openai.build(nobase, req, 0, &url, &h, &body, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "base_url"));
    assert_null(h);
    json_object_put(be);
    json_object_put(nobase);
    json_object_put(req);
    buf_free(&url);
    buf_free(&body);
}

/* Chat completions' tool messages carry text only: a tool result with
 * images (the canonical form, docs/agent.md) goes up as text with markers,
 * and after the run of tool messages one user message holds each call's
 * images behind a text part naming its tool_call_id. Requests without one go
 * as they are. */
static void build_moves_tool_images_to_a_user_message(void **state)
{
    json_object *be = J("{\"base_url\":\"http://h/v1\",\"api_key\":\"\"}");
    json_object *req = J(
        "{\"model\":\"m\",\"stream\":true,\"messages\":["
        "{\"role\":\"user\",\"content\":\"show\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
        "{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"a\",\"arguments\":\"{}\"}},"
        "{\"id\":\"c2\",\"type\":\"function\",\"function\":{\"name\":\"b\",\"arguments\":\"{}\"}},"
        "{\"id\":\"c3\",\"type\":\"function\",\"function\":{\"name\":\"c\",\"arguments\":\"{}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":["
        "{\"type\":\"text\",\"text\":\"Here:\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}},"
        "{\"type\":\"text\",\"text\":\"end\"}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c2\",\"content\":\"plain\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c3\",\"content\":["
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/gif;base64,BBBB\"}}]}]}");
    json_object *want = J(
        "{\"model\":\"m\",\"stream\":true,\"messages\":["
        "{\"role\":\"user\",\"content\":\"show\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
        "{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"a\",\"arguments\":\"{}\"}},"
        "{\"id\":\"c2\",\"type\":\"function\",\"function\":{\"name\":\"b\",\"arguments\":\"{}\"}},"
        "{\"id\":\"c3\",\"type\":\"function\",\"function\":{\"name\":\"c\",\"arguments\":\"{}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"Here:\\n[image 1: in the next user message]\\nend\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c2\",\"content\":\"plain\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c3\",\"content\":\"[image 1: in the next user message]\"},"
        "{\"role\":\"user\",\"content\":["
        "{\"type\":\"text\",\"text\":\"The images returned by tool call c1:\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}},"
        "{\"type\":\"text\",\"text\":\"The images returned by tool call c3:\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/gif;base64,BBBB\"}}]}]}");
    json_object *plain = J("{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"tool_call_id\":\"x\","
                           "\"content\":[{\"type\":\"text\",\"text\":\"t\"}]}]}");
    struct curl_slist *h = NULL;
    buf_t url, body;
    char err[128];
    json_object *back;
    (void)state;
    buf_init(&url, 1000);
    buf_init(&body, 100000);
    assert_int_equal(be_openai.build(be, req, 1, &url, &h, &body, err, sizeof(err)), 0);
    back = J(buf_str(&body));
    if (!json_object_equal(back, want))
        fail_msg("got %s", buf_str(&body));
    json_object_put(back);
    /* the canonical request itself is not changed (later rounds build again) */
    assert_string_equal(json_object_get_string(json_object_object_get(
                            json_object_array_get_idx(json_object_object_get(req, "messages"), 3),
                            "role")), "tool");
    assert_int_equal(json_object_array_length(json_object_object_get(req, "messages")), 5);
    curl_slist_free_all(h);
    h = NULL;
    buf_reset(&body);
    assert_int_equal(be_openai.build(be, plain, 0, &url, &h, &body, err, sizeof(err)), 0);
    back = J(buf_str(&body));
    assert_true(json_object_equal(back, plain));
    json_object_put(back);
    curl_slist_free_all(h);
    json_object_put(be);
    json_object_put(req);
    json_object_put(want);
    json_object_put(plain);
    buf_free(&url);
    buf_free(&body);
}

static void parse_whole_answer(void **state)
{
    const char *body =
        "{\"id\":\"x\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
        "\"content\":\"hello\",\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
        "\"function\":{\"name\":\"s__add\",\"arguments\":\"{\\\"a\\\":2}\"}},"
        "{\"id\":\"c2\",\"type\":\"function\",\"function\":{\"name\":\"s__echo\","
        "\"arguments\":{\"text\":\"hi\"}}}]},\"finish_reason\":\"tool_calls\"}],"
        "\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":7,\"total_tokens\":18}}";
    be_turn_t t;
    char err[256];
    (void)state;
    be_turn_init(&t, 1000);
    assert_int_equal(be_openai.parse(body, strlen(body), &t, err, sizeof(err)), 0);
    assert_string_equal(buf_str(&t.content), "hello");
    assert_string_equal(t.finish_reason, "tool_calls");
    assert_int_equal(t.has_usage, 1);
    assert_int_equal(t.prompt_tokens, 11);
    assert_int_equal(t.completion_tokens, 7);
    assert_int_equal(json_object_array_length(t.tool_calls), 2);
    assert_string_equal(call_field(t.tool_calls, 0, "id"), "c1");
    assert_string_equal(call_field(t.tool_calls, 0, "name"), "s__add");
    assert_string_equal(call_field(t.tool_calls, 0, "arguments"), "{\"a\":2}");
    /* an object instead of a string is turned into its JSON text */
    assert_string_equal(call_field(t.tool_calls, 1, "arguments"), "{\"text\":\"hi\"}");
    be_turn_clear(&t);
}

static void parse_refuses_garbage(void **state)
{
    const char *bad[] = { "<html>oops</html>", "{\"choices\":[]}", "{\"foo\":1}",
                          "{\"error\":{\"message\":\"model gone\"}}",
                          "{\"choices\":[{\"finish_reason\":\"stop\"}]}" };
    be_turn_t t;
    char err[256];
    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        be_turn_init(&t, 1000);
        err[0] = '\0';
        assert_int_equal(be_openai.parse(bad[i], strlen(bad[i]), &t, err, sizeof(err)), -EPROTO);
        assert_true(strlen(err) > 0);
        be_turn_clear(&t);
    }
    be_turn_init(&t, 1000);
    be_openai.parse(bad[3], strlen(bad[3]), &t, err, sizeof(err));
    assert_non_null(strstr(err, "model gone"));
    be_turn_clear(&t);
}

/* ---- streaming through the SSE parser ---- */

typedef struct drv {
    void *st;
    int last;       /* last stream_event return */
    int status;
    char err[256];
    buf_t seen;     /* what the sink received */
    int stop_after; /* sink returns 1 after this many pieces (0: never) */
    int pieces;
} drv_t;

static int sink(void *ud, const char *text, size_t len)
{
    drv_t *d = ud;
    buf_append(&d->seen, text, len);
    d->pieces++;
    return d->stop_after && d->pieces >= d->stop_after;
}

static int on_event(void *ud, const char *event, const char *data, size_t len, const char *id)
{
    drv_t *d = ud;
    (void)id;
    d->last = be_openai.stream_event(d->st, event, data, len, &d->status, d->err,
                                     sizeof(d->err));
    return d->last < 0 ? d->last : 0;
}

/* Feeds `text` in pieces of `step` bytes; returns sse_feed's last result. */
static int drive(drv_t *d, be_turn_t *t, const char *text, size_t step)
{
    be_sink_t s = { sink, d };
    sse_parser_t *p = sse_new(1 << 20, on_event, d);
    size_t n = strlen(text);
    int rc = 0;
    d->st = be_openai.stream_new(t, &s);
    assert_non_null(d->st);
    for (size_t i = 0; i < n && rc == 0; i += step)
        rc = sse_feed(p, text + i, i + step > n ? n - i : step);
    sse_free(p);
    return rc;
}

static const char *STREAM =
    ": keep-alive\r\n\r\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
    "\"finish_reason\":null}]}\r\n\r\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":null}]}\n\n"
    "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"other choice\"}}]}\n\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"c2\","
    "\"type\":\"function\",\"function\":{\"name\":\"s__echo\",\"arguments\":\"\"}}]}}]}\n\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c1\","
    "\"type\":\"function\",\"function\":{\"name\":\"s__add\",\"arguments\":\"{\\\"a\\\"\"}}]}}]}\n\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
    "\"function\":{\"arguments\":\":2}\"}}]}}]}\n\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,"
    "\"function\":{\"arguments\":\"{}\"}}]}}]}\n\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3}}\n\n"
    "data: [DONE]\n\n";

static void check_stream_turn(drv_t *d, be_turn_t *t)
{
    assert_int_equal(d->last, 1);
    assert_string_equal(buf_str(&d->seen), "Hello");
    assert_string_equal(buf_str(&t->content), "Hello");
    assert_string_equal(t->finish_reason, "tool_calls");
    assert_int_equal(t->has_usage, 1);
    assert_int_equal(t->prompt_tokens, 5);
    assert_int_equal(t->completion_tokens, 3);
    assert_non_null(t->tool_calls);
    assert_int_equal(json_object_array_length(t->tool_calls), 2);
    assert_string_equal(call_field(t->tool_calls, 0, "id"), "c1");
    assert_string_equal(call_field(t->tool_calls, 0, "name"), "s__add");
    assert_string_equal(call_field(t->tool_calls, 0, "arguments"), "{\"a\":2}");
    assert_string_equal(call_field(t->tool_calls, 1, "name"), "s__echo");
    assert_string_equal(call_field(t->tool_calls, 1, "arguments"), "{}");
}

static void stream_whole_and_byte_by_byte(void **state)
{
    size_t steps[] = { 100000, 1, 7 };
    (void)state;
    for (size_t i = 0; i < 3; i++) {
        drv_t d;
        be_turn_t t;
        memset(&d, 0, sizeof(d));
        buf_init(&d.seen, 1000);
        be_turn_init(&t, 1000);
        assert_int_equal(drive(&d, &t, STREAM, steps[i]), 0);
        be_openai.stream_free(d.st);
        check_stream_turn(&d, &t);
        be_turn_clear(&t);
        buf_free(&d.seen);
    }
}

static void stream_without_done_still_yields_calls(void **state)
{
    const char *s = "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\","
                    "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}}]}\n\n";
    drv_t d;
    be_turn_t t;
    (void)state;
    memset(&d, 0, sizeof(d));
    buf_init(&d.seen, 100);
    be_turn_init(&t, 100);
    assert_int_equal(drive(&d, &t, s, 3), 0);
    assert_int_equal(d.last, 0);
    be_openai.stream_free(d.st);   /* the end of the transfer completes the calls */
    assert_int_equal(json_object_array_length(t.tool_calls), 1);
    assert_string_equal(call_field(t.tool_calls, 0, "name"), "f");
    be_turn_clear(&t);
    buf_free(&d.seen);
}

/* Issue 11: a stream that just stopped (no finish_reason, no [DONE]) was taken
 * for a finished answer. stream_end tells a cut from a turn that only lacks
 * [DONE]. */
static void stream_end_tells_a_cut_from_a_finished_turn(void **state)
{
    const char *cut = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},"
                      "\"finish_reason\":null}]}\n\n";
    const char *whole = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"},"
                        "\"finish_reason\":null}]}\n\n"
                        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":"
                        "\"length\"}]}\n\n";
    const char *texts[] = { cut, whole };
    (void)state;
    for (size_t i = 0; i < 2; i++) {
        drv_t d;
        be_turn_t t;
        char err[256] = "";
        memset(&d, 0, sizeof(d));
        buf_init(&d.seen, 100);
        be_turn_init(&t, 100);
        assert_int_equal(drive(&d, &t, texts[i], 5), 0);
        assert_int_equal(d.last, 0);    /* no [DONE] in either */
        if (i == 0) {
            assert_int_equal(be_openai.stream_end(d.st, err, sizeof(err)), -EPROTO);
            assert_non_null(strstr(err, "cut"));
        } else {
            assert_int_equal(be_openai.stream_end(d.st, err, sizeof(err)), 0);
            assert_string_equal(t.finish_reason, "length");
        }
        be_openai.stream_free(d.st);
        be_turn_clear(&t);
        buf_free(&d.seen);
    }
}

static void stream_error_event_and_bad_json(void **state)
{
    const char *err_ev = "data: {\"error\":{\"message\":\"overloaded\",\"code\":503}}\n\n";
    const char *bad = "data: {not json\n\n";
    const char *idx = "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":999}]}}]}\n\n";
    drv_t d;
    be_turn_t t;
    (void)state;
    memset(&d, 0, sizeof(d));
    buf_init(&d.seen, 100);
    be_turn_init(&t, 100);
    assert_int_equal(drive(&d, &t, err_ev, 5), -EREMOTEIO);
    assert_int_equal(d.status, 503);
    assert_string_equal(d.err, "overloaded");
    be_openai.stream_free(d.st);
    be_turn_clear(&t);

    be_turn_init(&t, 100);
    assert_int_equal(drive(&d, &t, bad, 100), -EPROTO);
    assert_non_null(strstr(d.err, "invalid JSON"));
    be_openai.stream_free(d.st);
    be_turn_clear(&t);

    be_turn_init(&t, 100);
    assert_int_equal(drive(&d, &t, idx, 100), -EPROTO);
    be_openai.stream_free(d.st);
    be_turn_clear(&t);

    /* found by fuzz_openai: an empty error still gives the client a message */
    be_turn_init(&t, 100);
    assert_int_equal(drive(&d, &t, "data: {\"error\":\"\"}\n\n", 100), -EREMOTEIO);
    assert_string_equal(d.err, "upstream stream reported an error");
    be_openai.stream_free(d.st);
    be_turn_clear(&t);
    buf_free(&d.seen);
}

static void stream_sink_stop_cancels(void **state)
{
    drv_t d;
    be_turn_t t;
    (void)state;
    memset(&d, 0, sizeof(d));
    buf_init(&d.seen, 1000);
    d.stop_after = 1;
    be_turn_init(&t, 1000);
    assert_int_equal(drive(&d, &t, STREAM, 10), -ECANCELED);
    assert_string_equal(buf_str(&d.seen), "Hel");   /* nothing after the stop */
    be_openai.stream_free(d.st);
    be_turn_clear(&t);
    buf_free(&d.seen);
}

static void error_bodies(void **state)
{
    const char *oai = "{\"error\":{\"message\":\"Incorrect API key\",\"type\":"
                      "\"invalid_request_error\",\"code\":\"invalid_api_key\"}}";
    char type[48], msg[256];
    int st;
    (void)state;
    be_openai.error(401, oai, strlen(oai), &st, type, sizeof(type), msg, sizeof(msg));
    assert_int_equal(st, 401);
    assert_string_equal(type, "invalid_request_error");
    assert_string_equal(msg, "Incorrect API key");
    be_openai.error(500, "{\"error\":\"boom\"}", 16, &st, type, sizeof(type), msg, sizeof(msg));
    assert_int_equal(st, 500);
    assert_string_equal(type, "api_error");
    assert_string_equal(msg, "boom");
    be_openai.error(429, "slow down", 9, &st, type, sizeof(type), msg, sizeof(msg));
    assert_string_equal(type, "rate_limit_error");
    assert_non_null(strstr(msg, "429"));
    assert_non_null(strstr(msg, "slow down"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(build_makes_url_headers_and_body),
        cmocka_unit_test(build_without_key_sends_no_authorization),
        cmocka_unit_test(build_moves_tool_images_to_a_user_message),
        cmocka_unit_test(parse_whole_answer),
        cmocka_unit_test(parse_refuses_garbage),
        cmocka_unit_test(stream_whole_and_byte_by_byte),
        cmocka_unit_test(stream_without_done_still_yields_calls),
        cmocka_unit_test(stream_end_tells_a_cut_from_a_finished_turn),
        cmocka_unit_test(stream_error_event_and_bad_json),
        cmocka_unit_test(stream_sink_stop_cancels),
        cmocka_unit_test(error_bodies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
