/* Messages answers: stop reasons, usage, the message builder, the error
 * shape, and the SSE writer over a captured request (events parsed back). */
#include "fcgi/anthropic/msgout.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static json_object *parse(const char *s)
{
    json_object *o = json_tokener_parse(s);

    if (!o)
        fail_msg("bad JSON in test: %s", s);
    return o;
}

static void assert_json(json_object *got, const char *want)
{
    json_object *w = parse(want);

    if (!json_object_equal(got, w))
        fail_msg("got %s, want %s", got ? json_object_to_json_string(got) : "NULL", want);
    json_object_put(w);
}

static void test_stop_reasons(void **state)
{
    json_object *tc = parse("{\"content\":null,\"tool_calls\":[{\"id\":\"c\"}]}");
    json_object *none = parse("{\"content\":\"x\",\"tool_calls\":[]}");

    (void)state;
    assert_string_equal(msgout_stop_reason(NULL, "stop"), "end_turn");
    assert_string_equal(msgout_stop_reason(NULL, "length"), "max_tokens");
    assert_string_equal(msgout_stop_reason(NULL, "tool_calls"), "tool_use");
    assert_string_equal(msgout_stop_reason(NULL, "content_filter"), "refusal");
    assert_string_equal(msgout_stop_reason(NULL, NULL), "end_turn");
    assert_string_equal(msgout_stop_reason(NULL, ""), "end_turn");
    assert_string_equal(msgout_stop_reason(tc, "stop"), "tool_use");
    assert_string_equal(msgout_stop_reason(none, "length"), "max_tokens");
    json_object_put(tc);
    json_object_put(none);
}

static void test_usage_and_errors(void **state)
{
    json_object *u = parse("{\"prompt_tokens\":11,\"completion_tokens\":7,\"total_tokens\":18}");
    json_object *o;

    (void)state;
    o = msgout_usage(u);
    assert_json(o, "{\"input_tokens\":11,\"output_tokens\":7}");
    json_object_put(o);
    o = msgout_usage(NULL);
    assert_json(o, "{\"input_tokens\":0,\"output_tokens\":0}");
    json_object_put(o);
    json_object_put(u);

    assert_string_equal(msgout_error_type(400), "invalid_request_error");
    assert_string_equal(msgout_error_type(422), "invalid_request_error");
    assert_string_equal(msgout_error_type(401), "authentication_error");
    assert_string_equal(msgout_error_type(403), "permission_error");
    assert_string_equal(msgout_error_type(404), "not_found_error");
    assert_string_equal(msgout_error_type(413), "request_too_large");
    assert_string_equal(msgout_error_type(429), "rate_limit_error");
    assert_string_equal(msgout_error_type(500), "api_error");
    assert_string_equal(msgout_error_type(502), "api_error");
    assert_string_equal(msgout_error_type(504), "timeout_error");
    assert_string_equal(msgout_error_type(529), "overloaded_error");
    o = msgout_error_json(404, NULL, "no such model");
    assert_json(o, "{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\","
                   "\"message\":\"no such model\"}}");
    json_object_put(o);
    o = msgout_error_json(500, "overloaded_error", "busy");
    assert_json(o, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                   "\"message\":\"busy\"}}");
    json_object_put(o);
}

static void test_message_builder(void **state)
{
    json_object *msg = parse("{\"role\":\"assistant\",\"content\":\"Let me check.\","
                             "\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\","
                             "\"function\":{\"name\":\"get_weather\","
                             "\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}},"
                             "{\"id\":\"call_2\",\"type\":\"function\","
                             "\"function\":{\"name\":\"now\",\"arguments\":\"not json\"}}]}");
    json_object *plain = parse("{\"role\":\"assistant\",\"content\":\"\"}");
    json_object *u = parse("{\"prompt_tokens\":3,\"completion_tokens\":4}");
    json_object *o;

    (void)state;
    o = msgout_message("msg_1", "helper", msg, "tool_calls", u);
    assert_json(o, "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
                   "\"model\":\"helper\",\"content\":["
                   "{\"type\":\"text\",\"text\":\"Let me check.\"},"
                   "{\"type\":\"tool_use\",\"id\":\"call_1\",\"name\":\"get_weather\","
                   "\"input\":{\"city\":\"Oslo\"}},"
                   "{\"type\":\"tool_use\",\"id\":\"call_2\",\"name\":\"now\",\"input\":{}}],"
                   "\"stop_reason\":\"tool_use\",\"stop_sequence\":null,"
                   "\"usage\":{\"input_tokens\":3,\"output_tokens\":4}}");
    json_object_put(o);
    /* No text and no calls: no blocks at all (the API refuses empty text). */
    o = msgout_message("msg_2", "helper", plain, "length", NULL);
    assert_json(o, "{\"id\":\"msg_2\",\"type\":\"message\",\"role\":\"assistant\","
                   "\"model\":\"helper\",\"content\":[],\"stop_reason\":\"max_tokens\","
                   "\"stop_sequence\":null,\"usage\":{\"input_tokens\":0,\"output_tokens\":0}}");
    json_object_put(o);
    json_object_put(msg);
    json_object_put(plain);
    json_object_put(u);
}

static void test_new_id(void **state)
{
    char a[MSGOUT_ID_MAX], b[MSGOUT_ID_MAX];

    (void)state;
    msgout_new_id(a);
    msgout_new_id(b);
    assert_int_equal(strncmp(a, "msg_", 4), 0);
    assert_int_equal(strlen(a), 4 + 24);
    assert_string_not_equal(a, b);
}

/* The captured response split into its SSE events: returns how many, each
 * name into names[i] and its data parsed into datas[i] (caller puts). */
static size_t events_of(const char *raw, char names[][32], json_object **datas, size_t max)
{
    const char *p = strstr(raw, "\r\n\r\n");
    size_t n = 0;

    assert_non_null(p);
    p += 4;
    while (*p && n < max) {
        const char *nl, *end;
        char *data;
        if (strncmp(p, "event: ", 7) != 0)
            fail_msg("not an event line at: %.40s", p);
        nl = strchr(p, '\n');
        assert_non_null(nl);
        snprintf(names[n], 32, "%.*s", (int)(nl - p - 7), p + 7);
        p = nl + 1;
        if (strncmp(p, "data: ", 6) != 0)
            fail_msg("no data line for %s", names[n]);
        end = strstr(p, "\n\n");
        assert_non_null(end);
        data = strndup(p + 6, (size_t)(end - p - 6));
        datas[n] = parse(data);
        free(data);
        if (strcmp(json_object_get_string(json_object_object_get(datas[n], "type")), names[n]))
            fail_msg("event %s has data type %s", names[n],
                     json_object_get_string(json_object_object_get(datas[n], "type")));
        n++;
        p = end + 2;
    }
    return n;
}

static void test_stream_text_and_tools(void **state)
{
    http_req_t req;
    buf_t out;
    msgout_stream_t st;
    json_object *msg = parse("{\"content\":\"Hello\",\"tool_calls\":[{\"id\":\"call_9\","
                             "\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]}");
    json_object *u = parse("{\"prompt_tokens\":5,\"completion_tokens\":2}");
    char names[16][32];
    json_object *d[16];
    size_t n, i;

    (void)state;
    memset(&req, 0, sizeof(req));
    buf_init(&out, 1 << 20);
    req.capture = &out;
    msgout_stream_init(&st, &req, "helper", "msg_abc");
    assert_int_equal(out.len, 0);                 /* nothing before the first piece */
    assert_int_equal(msgout_stream_delta(&st, "Hel", 3), 0);
    assert_int_equal(msgout_stream_delta(&st, "", 0), 0);
    assert_int_equal(msgout_stream_delta(&st, "lo", 2), 0);
    assert_int_equal(msgout_stream_flush(&st), 0);
    assert_int_equal(msgout_stream_finish(&st, msg, "tool_calls", u), 0);
    assert_int_equal(req.status, 200);
    assert_non_null(strstr(buf_str(&out), "Content-Type: text/event-stream"));
    n = events_of(buf_str(&out), names, d, 16);
    assert_int_equal(n, 10);
    assert_string_equal(names[0], "message_start");
    assert_json(json_object_object_get(d[0], "message"),
                "{\"id\":\"msg_abc\",\"type\":\"message\",\"role\":\"assistant\","
                "\"model\":\"helper\",\"content\":[],\"stop_reason\":null,"
                "\"stop_sequence\":null,\"usage\":{\"input_tokens\":0,\"output_tokens\":0}}");
    assert_string_equal(names[1], "content_block_start");
    assert_json(d[1], "{\"type\":\"content_block_start\",\"index\":0,"
                      "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}");
    assert_json(d[2], "{\"type\":\"content_block_delta\",\"index\":0,"
                      "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}");
    assert_json(d[3], "{\"type\":\"content_block_delta\",\"index\":0,"
                      "\"delta\":{\"type\":\"text_delta\",\"text\":\"lo\"}}");
    assert_json(d[4], "{\"type\":\"content_block_stop\",\"index\":0}");
    assert_json(d[5], "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":"
                      "{\"type\":\"tool_use\",\"id\":\"call_9\",\"name\":\"f\",\"input\":{}}}");
    assert_json(d[6], "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":"
                      "{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":1}\"}}");
    assert_json(d[7], "{\"type\":\"content_block_stop\",\"index\":1}");
    assert_json(d[8], "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\","
                      "\"stop_sequence\":null},\"usage\":{\"input_tokens\":5,\"output_tokens\":2}}");
    assert_json(d[9], "{\"type\":\"message_stop\"}");
    for (i = 0; i < n; i++)
        json_object_put(d[i]);
    json_object_put(msg);
    json_object_put(u);
    buf_free(&out);
}

static void test_stream_no_text(void **state)
{
    http_req_t req;
    buf_t out;
    msgout_stream_t st;
    char names[8][32];
    json_object *d[8];
    size_t n, i;

    (void)state;
    memset(&req, 0, sizeof(req));
    buf_init(&out, 1 << 20);
    req.capture = &out;
    msgout_stream_init(&st, &req, "helper", "msg_x");
    assert_int_equal(msgout_stream_finish(&st, NULL, "length", NULL), 0);
    n = events_of(buf_str(&out), names, d, 8);
    assert_int_equal(n, 3);
    assert_string_equal(names[0], "message_start");
    assert_string_equal(names[1], "message_delta");
    assert_string_equal(json_object_get_string(json_object_object_get(
        json_object_object_get(d[1], "delta"), "stop_reason")), "max_tokens");
    assert_string_equal(names[2], "message_stop");
    for (i = 0; i < n; i++)
        json_object_put(d[i]);
    buf_free(&out);
}

static void test_stream_error_after_start(void **state)
{
    http_req_t req;
    buf_t out;
    msgout_stream_t st;
    char names[8][32];
    json_object *d[8];
    size_t n, i;

    (void)state;
    memset(&req, 0, sizeof(req));
    buf_init(&out, 1 << 20);
    req.capture = &out;
    msgout_stream_init(&st, &req, "helper", "msg_y");
    assert_int_equal(msgout_stream_delta(&st, "par", 3), 0);
    assert_int_equal(msgout_stream_fail(&st, 529, NULL, "upstream overloaded"), 0);
    n = events_of(buf_str(&out), names, d, 8);
    assert_int_equal(n, 4);
    assert_string_equal(names[3], "error");
    assert_json(d[3], "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                      "\"message\":\"upstream overloaded\"}}");
    for (i = 0; i < n; i++)
        json_object_put(d[i]);
    buf_free(&out);
}

/* msgout_stream_begin: headers and message_start at once, before any text;
 * the text that follows opens its block without a second message_start.
 * Keep-alives are Anthropic's ping events, none before the stream started. */
static void test_stream_begin_and_ping(void **state)
{
    http_req_t req;
    buf_t out;
    msgout_stream_t st;
    char names[8][32];
    json_object *d[8];
    size_t n, i;

    (void)state;
    memset(&req, 0, sizeof(req));
    buf_init(&out, 1 << 20);
    req.capture = &out;
    msgout_stream_init(&st, &req, "helper", "msg_p");
    assert_int_equal(msgout_stream_ping(&st), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(msgout_stream_begin(&st), 0);
    assert_int_equal(req.status, 200);
    n = events_of(buf_str(&out), names, d, 8);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "message_start");
    json_object_put(d[0]);
    assert_int_equal(msgout_stream_begin(&st), 0);   /* once */
    assert_int_equal(msgout_stream_ping(&st), 0);
    assert_non_null(strstr(buf_str(&out), "\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\n"));
    assert_int_equal(msgout_stream_delta(&st, "hi", 2), 0);
    n = events_of(buf_str(&out), names, d, 8);
    assert_int_equal(n, 4);
    assert_string_equal(names[1], "ping");
    assert_string_equal(names[2], "content_block_start");
    assert_string_equal(names[3], "content_block_delta");
    for (i = 0; i < n; i++)
        json_object_put(d[i]);
    buf_free(&out);
}

static void test_send_error(void **state)
{
    http_req_t req;
    buf_t out;
    const char *body;
    json_object *o;

    (void)state;
    memset(&req, 0, sizeof(req));
    buf_init(&out, 1 << 16);
    req.capture = &out;
    assert_int_equal(msgout_send_error(&req, 400, NULL, "max_tokens: '%s' is required",
                                       "max_tokens"), 0);
    assert_int_equal(req.status, 400);
    body = strstr(buf_str(&out), "\r\n\r\n");
    assert_non_null(body);
    o = parse(body + 4);
    assert_json(o, "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\","
                   "\"message\":\"max_tokens: 'max_tokens' is required\"}}");
    json_object_put(o);
    buf_free(&out);
}

static void test_stream_client_gone(void **state)
{
    http_req_t req;
    buf_t out;
    msgout_stream_t st;

    (void)state;
    memset(&req, 0, sizeof(req));
    buf_init(&out, 200);      /* the headers fit, message_start does not */
    req.capture = &out;
    msgout_stream_init(&st, &req, "helper", "msg_z");
    assert_int_equal(msgout_stream_delta(&st, "a", 1), -EPIPE);
    assert_int_equal(req.client_gone, 1);
    assert_int_equal(msgout_stream_delta(&st, "b", 1), -EPIPE);
    assert_int_equal(msgout_stream_finish(&st, NULL, "stop", NULL), -EPIPE);
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stop_reasons),
        cmocka_unit_test(test_usage_and_errors),
        cmocka_unit_test(test_message_builder),
        cmocka_unit_test(test_new_id),
        cmocka_unit_test(test_stream_text_and_tools),
        cmocka_unit_test(test_stream_no_text),
        cmocka_unit_test(test_stream_error_after_start),
        cmocka_unit_test(test_stream_begin_and_ping),
        cmocka_unit_test(test_send_error),
        cmocka_unit_test(test_stream_client_gone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
