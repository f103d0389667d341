/* Chat request validation (each 400 case names its param), the completion and
 * chunk builders, and the SSE stream writer over a captured request. */
#include "fcgi/openai/chatreq.h"
#include "fcgi/openai/oai.h"
#include "fcgi/core/stream.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define MSGS "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"

static void expect_bad(const char *body, const char *param)
{
    chatreq_t cr;
    aip_err_t err;

    if (chatreq_parse(body, strlen(body), &cr, &err) != -EINVAL)
        fail_msg("accepted: %s", body);
    if (strcmp(err.param, param) != 0)
        fail_msg("%s: param '%s', want '%s' (%s)", body, err.param, param, err.msg);
    assert_true(err.msg[0] != '\0');
    /* the error value the surface renders as is: a 400 of the client's */
    assert_int_equal(err.status, 400);
    assert_string_equal(err.type, "invalid_request_error");
    assert_null(cr.body);
}

static void test_bad_bodies(void **state)
{
    (void)state;
    expect_bad("", "");
    expect_bad("not json", "");
    expect_bad("{\"model\":\"a\"", "");
    expect_bad("[1,2]", "");
    expect_bad("{\"model\":\"a\"," MSGS "} trailing", "");
    expect_bad("{" MSGS "}", "model");
    expect_bad("{\"model\":5," MSGS "}", "model");
    expect_bad("{\"model\":\"\"," MSGS "}", "model");
    expect_bad("{\"model\":\"a\"}", "messages");
    expect_bad("{\"model\":\"a\",\"messages\":{}}", "messages");
    expect_bad("{\"model\":\"a\",\"messages\":[]}", "messages");
    expect_bad("{\"model\":\"a\",\"messages\":[1]}", "messages[0]");
    expect_bad("{\"model\":\"a\",\"messages\":[{\"content\":\"x\"}]}", "messages[0].role");
    expect_bad("{\"model\":\"a\",\"messages\":[{\"role\":7,\"content\":\"x\"}]}",
               "messages[0].role");
    expect_bad("{\"model\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
               "{\"role\":\"robot\",\"content\":\"x\"}]}", "messages[1].role");
    expect_bad("{\"model\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":5}]}",
               "messages[0].content");
    expect_bad("{\"model\":\"a\",\"messages\":[{\"role\":\"user\"}]}", "messages[0].content");
    expect_bad("{\"model\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":[3]}]}",
               "messages[0].content[0]");
    expect_bad("{\"model\":\"a\"," MSGS ",\"stream\":\"yes\"}", "stream");
    expect_bad("{\"model\":\"a\"," MSGS ",\"temperature\":\"hot\"}", "temperature");
    expect_bad("{\"model\":\"a\"," MSGS ",\"temperature\":1e999999}", "temperature");
    expect_bad("{\"model\":\"a\"," MSGS ",\"top_p\":-1e400}", "top_p");
    expect_bad("{\"model\":\"a\"," MSGS ",\"top_p\":[]}", "top_p");
    expect_bad("{\"model\":\"a\"," MSGS ",\"presence_penalty\":true}", "presence_penalty");
    expect_bad("{\"model\":\"a\"," MSGS ",\"frequency_penalty\":{}}", "frequency_penalty");
    expect_bad("{\"model\":\"a\"," MSGS ",\"max_tokens\":1.5}", "max_tokens");
    expect_bad("{\"model\":\"a\"," MSGS ",\"seed\":\"1\"}", "seed");
    expect_bad("{\"model\":\"a\"," MSGS ",\"n\":2.0}", "n");
    expect_bad("{\"model\":\"a\"," MSGS ",\"stop\":5}", "stop");
    expect_bad("{\"model\":\"a\"," MSGS ",\"stop\":[\"a\",1]}", "stop");
    expect_bad("{\"model\":\"a\"," MSGS ",\"tools\":{}}", "tools");
    expect_bad("{\"model\":\"a\"," MSGS ",\"tools\":[{\"type\":\"function\"}]}", "tools[0]");
    expect_bad("{\"model\":\"a\"," MSGS ",\"tool_choice\":3}", "tool_choice");
    expect_bad("{\"model\":\"a\"," MSGS ",\"stream_options\":true}", "stream_options");
    expect_bad("{\"model\":\"a\"," MSGS ",\"stream_options\":{\"include_usage\":1}}",
               "stream_options.include_usage");
}

/* Issue 11: a token budget below 1 was passed on to the upstream. */
static void test_token_budget_at_least_one(void **state)
{
    chatreq_t cr;
    aip_err_t err;
    const char *ok = "{\"model\":\"a\"," MSGS ",\"max_tokens\":1,\"max_completion_tokens\":1}";

    (void)state;
    expect_bad("{\"model\":\"a\"," MSGS ",\"max_tokens\":-1}", "max_tokens");
    expect_bad("{\"model\":\"a\"," MSGS ",\"max_tokens\":0}", "max_tokens");
    expect_bad("{\"model\":\"a\"," MSGS ",\"max_tokens\":-9223372036854775808}", "max_tokens");
    expect_bad("{\"model\":\"a\"," MSGS ",\"max_completion_tokens\":-1}",
               "max_completion_tokens");
    expect_bad("{\"model\":\"a\"," MSGS ",\"max_completion_tokens\":0}",
               "max_completion_tokens");
    assert_int_equal(chatreq_parse(ok, strlen(ok), &cr, &err), 0);
    chatreq_clear(&cr);
}

static void test_deep_nesting_refused(void **state)
{
    char body[4096];
    size_t i, o = 0;

    (void)state;
    o += (size_t)snprintf(body, sizeof(body), "{\"model\":\"a\"," MSGS ",\"x\":");
    for (i = 0; i < 1000; i++)
        body[o++] = '[';
    for (i = 0; i < 1000; i++)
        body[o++] = ']';
    body[o++] = '}';
    body[o] = '\0';
    expect_bad(body, "");
}

static void test_good_body(void **state)
{
    const char *body = "{\"model\":\"helper\",\"stream\":true,\"stream_options\":"
                       "{\"include_usage\":true},\"temperature\":0.5,\"top_p\":1,"
                       "\"max_tokens\":10,\"stop\":[\"x\"],\"tool_choice\":\"auto\","
                       "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
                       "\"seed\":null,\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
                       "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"t\"}]},"
                       "{\"role\":\"assistant\",\"tool_calls\":[]},"
                       "{\"role\":\"tool\",\"tool_call_id\":\"1\",\"content\":\"r\"}]}  \n";
    chatreq_t cr;
    aip_err_t err;

    (void)state;
    assert_int_equal(chatreq_parse(body, strlen(body), &cr, &err), 0);
    assert_string_equal(cr.model, "helper");
    assert_int_equal(cr.stream, 1);
    assert_int_equal(cr.include_usage, 1);
    chatreq_clear(&cr);
    body = "{\"model\":\"m\"," MSGS "}";
    assert_int_equal(chatreq_parse(body, strlen(body), &cr, &err), 0);
    assert_int_equal(cr.stream, 0);
    assert_int_equal(cr.include_usage, 0);
    chatreq_clear(&cr);
}

static const char *sget(json_object *o, const char *k)
{
    json_object *v = NULL;

    return json_object_object_get_ex(o, k, &v) && v ? json_object_get_string(v) : NULL;
}

static void test_completion_builder(void **state)
{
    json_object *msg = json_tokener_parse("{\"role\":\"assistant\",\"content\":\"hello\"}");
    json_object *usage = json_tokener_parse("{\"prompt_tokens\":3,\"completion_tokens\":2,"
                                            "\"total_tokens\":5}");
    json_object *c, *ch, *v;
    char id1[OAI_ID_MAX], id2[OAI_ID_MAX];

    (void)state;
    oai_new_id(id1);
    oai_new_id(id2);
    assert_int_equal(strncmp(id1, "chatcmpl-", 9), 0);
    assert_true(strlen(id1) > 20);
    assert_string_not_equal(id1, id2);
    c = oai_completion(id1, 1700000000, "helper", msg, "stop", usage);
    assert_string_equal(sget(c, "id"), id1);
    assert_string_equal(sget(c, "object"), "chat.completion");
    assert_string_equal(sget(c, "model"), "helper");
    assert_int_equal(json_object_get_int64(json_object_object_get(c, "created")), 1700000000);
    assert_true(json_object_object_get_ex(c, "system_fingerprint", &v));
    assert_null(v);
    ch = json_object_array_get_idx(json_object_object_get(c, "choices"), 0);
    assert_int_equal(json_object_get_int(json_object_object_get(ch, "index")), 0);
    assert_string_equal(sget(ch, "finish_reason"), "stop");
    assert_true(json_object_object_get_ex(ch, "logprobs", &v));
    assert_null(v);
    assert_string_equal(sget(json_object_object_get(ch, "message"), "content"), "hello");
    assert_int_equal(json_object_get_int(json_object_object_get(
                         json_object_object_get(c, "usage"), "total_tokens")), 5);
    json_object_put(c);
    json_object_put(msg);
    /* Tool calls for the client: finish_reason tool_calls, content null. */
    msg = json_tokener_parse("{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c1\",\"type\":"
                             "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}");
    c = oai_completion(id1, 1, "helper", msg, "stop", NULL);
    ch = json_object_array_get_idx(json_object_object_get(c, "choices"), 0);
    assert_string_equal(sget(ch, "finish_reason"), "tool_calls");
    assert_true(json_object_object_get_ex(json_object_object_get(ch, "message"), "content", &v));
    assert_null(v);
    assert_true(json_object_object_get_ex(c, "usage", &v));
    assert_null(v);
    json_object_put(c);
    json_object_put(msg);
    json_object_put(usage);
}

static void test_chunk_builder(void **state)
{
    json_object *d = json_object_new_object(), *c, *ch, *v;
    buf_t b;

    (void)state;
    json_object_object_add(d, "content", json_object_new_string("x"));
    c = oai_chunk("chatcmpl-1", 5, "helper", d, NULL, 1);
    assert_string_equal(sget(c, "object"), "chat.completion.chunk");
    ch = json_object_array_get_idx(json_object_object_get(c, "choices"), 0);
    assert_true(json_object_object_get_ex(ch, "finish_reason", &v));
    assert_null(v);
    assert_true(json_object_object_get_ex(c, "usage", &v));
    assert_null(v);
    buf_init(&b, 4096);
    assert_int_equal(oai_sse_event(&b, c), 0);
    assert_int_equal(strncmp(b.data, "data: {", 7), 0);
    assert_int_equal(strcmp(b.data + b.len - 3, "}\n\n"), 0);
    buf_free(&b);
    json_object_put(c);
    c = oai_chunk("chatcmpl-1", 5, "helper", NULL, "stop", 0);
    ch = json_object_array_get_idx(json_object_object_get(c, "choices"), 0);
    assert_string_equal(sget(ch, "finish_reason"), "stop");
    assert_false(json_object_object_get_ex(c, "usage", NULL));
    json_object_put(c);
    c = oai_usage_chunk("chatcmpl-1", 5, "helper", NULL);
    assert_int_equal(json_object_array_length(json_object_object_get(c, "choices")), 0);
    assert_int_equal(json_object_get_int(json_object_object_get(
                         json_object_object_get(c, "usage"), "total_tokens")), 0);
    json_object_put(c);
}

/* Splits captured SSE into the JSON of each data: event; counts [DONE]. */
static int events(const char *s, json_object **out, int max, int *done)
{
    int n = 0;
    const char *p = strstr(s, "\r\n\r\n");

    *done = 0;
    p = p ? p + 4 : s;
    while ((p = strstr(p, "data: ")) != NULL) {
        const char *end = strstr(p, "\n\n");
        assert_non_null(end);
        if (strncmp(p + 6, "[DONE]", 6) == 0) {
            (*done)++;
        } else {
            assert_true(n < max);
            char *js = strndup(p + 6, (size_t)(end - p - 6));
            out[n++] = json_tokener_parse(js);
            assert_non_null(out[n - 1]);
            free(js);
        }
        p = end + 2;
    }
    return n;
}

static void test_stream_writer(void **state)
{
    http_req_t req;
    buf_t out;
    stream_t st;
    json_object *ev[16], *msg, *usage, *ch, *delta;
    int n, done, i;

    (void)state;
    memset(&req, 0, sizeof(req));
    buf_init(&out, 1 << 20);
    req.capture = &out;
    stream_init(&st, &req, "helper", "chatcmpl-abc", 42, 1);
    assert_int_equal(out.len, 0);     /* lazy: nothing before the first delta */
    assert_int_equal(stream_delta(&st, "Hel", 3), 0);
    assert_int_equal(stream_delta(&st, "lo", 2), 0);
    msg = json_tokener_parse("{\"role\":\"assistant\",\"content\":\"Hello\",\"tool_calls\":"
                             "[{\"id\":\"c1\",\"type\":\"function\",\"function\":"
                             "{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]}");
    usage = json_tokener_parse("{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}");
    assert_int_equal(stream_finish(&st, msg, "stop", usage), 0);
    assert_non_null(strstr(out.data, "Content-Type: text/event-stream\r\n"));
    assert_non_null(strstr(out.data, "X-Accel-Buffering: no\r\n"));
    assert_non_null(strstr(out.data, "Cache-Control: no-cache\r\n"));
    n = events(out.data, ev, 16, &done);
    assert_int_equal(done, 1);
    assert_int_equal(n, 6);   /* role, Hel, lo, tool_calls, finish, usage */
    for (i = 0; i < n; i++) {
        assert_string_equal(sget(ev[i], "id"), "chatcmpl-abc");
        assert_int_equal(json_object_get_int(json_object_object_get(ev[i], "created")), 42);
        assert_string_equal(sget(ev[i], "model"), "helper");
        assert_string_equal(sget(ev[i], "object"), "chat.completion.chunk");
    }
    delta = json_object_object_get(json_object_array_get_idx(
        json_object_object_get(ev[0], "choices"), 0), "delta");
    assert_string_equal(sget(delta, "role"), "assistant");
    delta = json_object_object_get(json_object_array_get_idx(
        json_object_object_get(ev[2], "choices"), 0), "delta");
    assert_string_equal(sget(delta, "content"), "lo");
    delta = json_object_object_get(json_object_array_get_idx(
        json_object_object_get(ev[3], "choices"), 0), "delta");
    ch = json_object_array_get_idx(json_object_object_get(delta, "tool_calls"), 0);
    assert_int_equal(json_object_get_int(json_object_object_get(ch, "index")), 0);
    assert_string_equal(sget(ch, "id"), "c1");
    assert_string_equal(sget(json_object_object_get(ch, "function"), "arguments"), "{\"a\":1}");
    ch = json_object_array_get_idx(json_object_object_get(ev[4], "choices"), 0);
    assert_string_equal(sget(ch, "finish_reason"), "tool_calls");
    assert_int_equal(json_object_array_length(json_object_object_get(ev[5], "choices")), 0);
    assert_int_equal(json_object_get_int(json_object_object_get(
                         json_object_object_get(ev[5], "usage"), "total_tokens")), 3);
    for (i = 0; i < n; i++)
        json_object_put(ev[i]);
    json_object_put(msg);
    json_object_put(usage);
    buf_free(&out);
}

/* An error after the stream started is OpenAI's error event, the one the
 * openai SDKs raise as APIError (with the type, code and param), and nothing
 * follows it: no finish_reason and no [DONE] that would pass a broken answer
 * off as finished (it used to be a "[aiproxy error]" content chunk, a "stop"
 * chunk and [DONE], which the SDKs took for a normal answer). */
static void test_stream_error_after_start(void **state)
{
    http_req_t req;
    buf_t out;
    stream_t st;
    aip_err_t e;
    json_object *ev[8], *err;
    int n, done, i;

    (void)state;
    memset(&req, 0, sizeof(req));
    buf_init(&out, 1 << 20);
    req.capture = &out;
    stream_init(&st, &req, "helper", "chatcmpl-x", 1, 1);
    assert_int_equal(stream_delta(&st, "a", 1), 0);
    aip_err_set(&e, 429, NULL, "rate_limit_exceeded", "upstream dropped");
    aip_err_param(&e, "messages");
    assert_int_equal(stream_fail(&st, &e), 0);
    n = events(out.data, ev, 8, &done);
    assert_int_equal(done, 0);
    assert_int_equal(n, 3);   /* role, a, the error */
    assert_false(json_object_object_get_ex(ev[2], "choices", NULL));
    assert_true(json_object_object_get_ex(ev[2], "error", &err));
    assert_string_equal(sget(err, "message"), "upstream dropped");
    assert_string_equal(sget(err, "type"), "rate_limit_error");
    assert_string_equal(sget(err, "code"), "rate_limit_exceeded");
    assert_string_equal(sget(err, "param"), "messages");
    for (i = 0; i < n; i++)
        json_object_put(ev[i]);
    buf_free(&out);
}

/* stream_begin: the headers and the role chunk at once, before any content;
 * the content that follows adds no second role chunk. Keep-alives are SSE
 * comments, and none go out before the stream started. */
static void test_stream_begin_and_keepalive(void **state)
{
    http_req_t req;
    buf_t out;
    stream_t st;
    json_object *ev[8], *ch, *delta;
    const char *body;
    int n, done, i;

    (void)state;
    memset(&req, 0, sizeof(req));
    buf_init(&out, 1 << 20);
    req.capture = &out;
    stream_init(&st, &req, "helper", "chatcmpl-k", 7, 0);
    assert_int_equal(stream_keepalive(&st), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(stream_begin(&st), 0);
    assert_true(st.started);
    assert_non_null(strstr(out.data, "text/event-stream"));
    body = strstr(out.data, "\r\n\r\n");
    assert_non_null(body);
    n = events(out.data, ev, 8, &done);
    assert_int_equal(n, 1);
    ch = json_object_array_get_idx(json_object_object_get(ev[0], "choices"), 0);
    delta = json_object_object_get(ch, "delta");
    assert_string_equal(sget(delta, "role"), "assistant");
    assert_string_equal(sget(delta, "content"), "");
    json_object_put(ev[0]);
    assert_int_equal(stream_begin(&st), 0);          /* once */
    assert_int_equal(stream_keepalive(&st), 0);
    assert_non_null(strstr(out.data, "}\n\n: keep-alive\n\n"));
    assert_int_equal(stream_delta(&st, "hi", 2), 0);
    n = events(out.data, ev, 8, &done);
    assert_int_equal(n, 2);                           /* role, hi: no second role */
    ch = json_object_array_get_idx(json_object_object_get(ev[1], "choices"), 0);
    assert_string_equal(sget(json_object_object_get(ch, "delta"), "content"), "hi");
    assert_false(json_object_object_get_ex(json_object_object_get(ch, "delta"), "role", NULL));
    for (i = 0; i < n; i++)
        json_object_put(ev[i]);
    buf_free(&out);
}

static void test_stream_client_gone(void **state)
{
    http_req_t req;
    buf_t out;
    stream_t st;

    (void)state;
    memset(&req, 0, sizeof(req));
    buf_init(&out, 300);      /* the headers fit, the role chunk does not */
    req.capture = &out;
    stream_init(&st, &req, "helper", "chatcmpl-x", 1, 0);
    assert_int_equal(stream_delta(&st, "a", 1), -EPIPE);
    assert_int_equal(req.client_gone, 1);
    assert_int_equal(stream_delta(&st, "b", 1), -EPIPE);
    buf_free(&out);
}

/* A NUL inside a name or an id would cut it as a C string ("plain\u0000evil"
 * was served as "plain"): refused, naming the field. */
static void test_nul_in_names_and_ids_refused(void **state)
{
    (void)state;
    expect_bad("{\"model\":\"plain\\u0000evil\"," MSGS "}", "model");
    expect_bad("{\"model\":\"a\",\"messages\":[{\"role\":\"user\\u0000x\",\"content\":\"x\"}]}",
               "messages[0].role");
    expect_bad("{\"model\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
               "{\"role\":\"tool\",\"tool_call_id\":\"c\\u00001\",\"content\":\"r\"}]}",
               "messages[1].tool_call_id");
    expect_bad("{\"model\":\"a\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":"
               "\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\\u0000g\","
               "\"arguments\":\"{}\"}}]}]}", "messages[0].tool_calls[0].function.name");
    expect_bad("{\"model\":\"a\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":"
               "\"c\\u00001\",\"type\":\"function\",\"function\":{\"name\":\"f\","
               "\"arguments\":\"{}\"}}]}]}", "messages[0].tool_calls[0].id");
    expect_bad("{\"model\":\"a\"," MSGS ",\"tools\":[{\"type\":\"function\",\"function\":"
               "{\"name\":\"t\\u0000x\"}}]}", "tools[0].function.name");
}

/* Content keeps a NUL (it is only used with its length), and integers past 64
 * bits keep their text; one where an integer is required is refused rather
 * than clamped. */
static void test_content_nul_and_big_integers_kept(void **state)
{
    const char *in = "{\"model\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"x\\u0000y\"}],"
                     "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":"
                     "{\"maximum\":100000000000000000000000}}}";
    chatreq_t cr;
    aip_err_t err;
    json_object *msgs, *c;
    const char *text;
    (void)state;
    assert_int_equal(chatreq_parse(in, strlen(in), &cr, &err), 0);
    msgs = json_object_object_get(cr.body, "messages");
    c = json_object_object_get(json_object_array_get_idx(msgs, 0), "content");
    assert_int_equal(json_object_get_string_len(c), 3);
    text = json_object_to_json_string_ext(cr.body, JSON_C_TO_STRING_PLAIN);
    assert_non_null(strstr(text, "\"maximum\":100000000000000000000000}"));
    assert_non_null(strstr(text, "\"content\":\"x\\u0000y\""));
    chatreq_clear(&cr);
    expect_bad("{\"model\":\"a\"," MSGS ",\"max_tokens\":100000000000000000000000}", "max_tokens");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_bodies),
        cmocka_unit_test(test_token_budget_at_least_one),
        cmocka_unit_test(test_nul_in_names_and_ids_refused),
        cmocka_unit_test(test_content_nul_and_big_integers_kept),
        cmocka_unit_test(test_deep_nesting_refused),
        cmocka_unit_test(test_good_body),
        cmocka_unit_test(test_completion_builder),
        cmocka_unit_test(test_chunk_builder),
        cmocka_unit_test(test_stream_writer),
        cmocka_unit_test(test_stream_error_after_start),
        cmocka_unit_test(test_stream_begin_and_keepalive),
        cmocka_unit_test(test_stream_client_gone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
