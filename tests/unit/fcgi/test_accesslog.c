/* Unit tests for fcgi/core/accesslog (the JSON access line's members) and
 * http_err_msg (the request id at the end of every error message). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fcgi/core/accesslog.h"
#include "fcgi/core/http.h"
#include "shared/arena.h"
#include "shared/buf.h"

#include <stdio.h>
#include <string.h>

static void test__req(http_req_t *req, arena_t *a)
{
    memset(req, 0, sizeof(*req));
    req->arena = a;
    req->method = "POST";
    req->path = "/v1/chat/completions";
    req->query = "";
    req->body = "";
}

static json_object *test__get(json_object *o, const char *k)
{
    json_object *v = NULL;

    assert_true(json_object_object_get_ex(o, k, &v));
    return v;
}

static void fields_say_what_the_request_did(void **state)
{
    arena_t *a = arena_new(4096);
    http_req_t req;
    json_object *o;

    (void)state;
    assert_non_null(a);
    test__req(&req, a);
    snprintf(req.info.id, sizeof(req.info.id), "%s", "req_abc");
    req.info.t0_us = 1000;
    req.info.route = "/v1/chat/completions";
    req.info.assistant = "helper";
    req.info.principal = "static:0123abcd";
    req.info.upstream_us = 1500;
    req.info.tools_us = 250;
    req.info.ttft_us = 1234567;
    req.info.prompt_tokens = 7;
    req.info.completion_tokens = 3;
    req.info.tool_calls = 2;
    req.info.tool_rounds = 1;
    req.info.bytes_out = 999;
    req.status = 200;
    o = accesslog_fields(&req, 3000);
    assert_non_null(o);
    assert_string_equal(json_object_get_string(test__get(o, "request_id")), "req_abc");
    assert_string_equal(json_object_get_string(test__get(o, "method")), "POST");
    assert_string_equal(json_object_get_string(test__get(o, "route")), "/v1/chat/completions");
    assert_string_equal(json_object_get_string(test__get(o, "assistant")), "helper");
    assert_string_equal(json_object_get_string(test__get(o, "key")), "static:0123abcd");
    assert_int_equal(json_object_get_int(test__get(o, "status")), 200);
    assert_false(json_object_get_boolean(test__get(o, "client_gone")));
    assert_string_equal(json_object_to_json_string(test__get(o, "total_ms")), "2.000");
    assert_string_equal(json_object_to_json_string(test__get(o, "upstream_ms")), "1.500");
    assert_string_equal(json_object_to_json_string(test__get(o, "tools_ms")), "0.250");
    assert_string_equal(json_object_to_json_string(test__get(o, "ttft_ms")), "1234.567");
    assert_int_equal(json_object_get_int(test__get(o, "prompt_tokens")), 7);
    assert_int_equal(json_object_get_int(test__get(o, "completion_tokens")), 3);
    assert_int_equal(json_object_get_int(test__get(o, "tool_calls")), 2);
    assert_int_equal(json_object_get_int(test__get(o, "tool_rounds")), 1);
    assert_int_equal(json_object_get_int(test__get(o, "bytes_out")), 999);
    json_object_put(o);
    arena_free(a);
}

/* Nothing matched, nobody known, the client gone before an answer, a path
 * with bytes that are not UTF-8: nulls, 499, and still valid JSON text. */
static void fields_of_a_request_that_got_nowhere(void **state)
{
    arena_t *a = arena_new(4096);
    http_req_t req;
    json_object *o, *back;
    const char *text;

    (void)state;
    test__req(&req, a);
    req.path = "/x/\xff\xfe\"\n";
    req.client_gone = 1;
    o = accesslog_fields(&req, 0);
    assert_non_null(o);
    assert_null(test__get(o, "request_id"));
    assert_null(test__get(o, "route"));
    assert_null(test__get(o, "assistant"));
    assert_null(test__get(o, "key"));
    assert_null(test__get(o, "ttft_ms"));
    assert_int_equal(json_object_get_int(test__get(o, "status")), 499);
    assert_true(json_object_get_boolean(test__get(o, "client_gone")));
    text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
    back = json_tokener_parse(text);
    assert_non_null(back);
    assert_string_equal(json_object_get_string(test__get(back, "path")),
                        "/x/\xef\xbf\xbd\xef\xbf\xbd\"\n");
    json_object_put(back);
    json_object_put(o);
    arena_free(a);
}

/* accesslog_text(req) is json-c's text of accesslog_fields(req), byte for
 * byte: the line a JSON-format responder writes has not changed. */
static void test__same_text(const http_req_t *req, long long now_us)
{
    json_object *o = accesslog_fields(req, now_us);
    buf_t b;

    assert_non_null(o);
    buf_init(&b, 1 << 16);
    assert_int_equal(accesslog_text(req, now_us, &b), 0);
    assert_string_equal(buf_str(&b),
                        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE));
    buf_free(&b);
    json_object_put(o);
}

static void text_is_the_fields_as_json_c_writes_them(void **state)
{
    arena_t *a = arena_new(4096);
    char longpath[1400];
    http_req_t req;

    (void)state;
    test__req(&req, a);
    test__same_text(&req, 0);                 /* nothing known, 499 */
    snprintf(req.info.id, sizeof(req.info.id), "%s", "req_abc");
    req.info.t0_us = 1000;
    req.info.route = "/v1/chat/completions";
    req.info.assistant = "a \"quoted\" \\ name/with\tcontrols\x01\x7f caf\xc3\xa9";
    req.info.principal = "static:0123abcd";
    req.info.upstream_us = 1500;
    req.info.tools_us = 250;
    req.info.ttft_us = 1234567;
    req.info.prompt_tokens = 7;
    req.info.completion_tokens = 3000000000LL;
    req.info.tool_calls = 4000000000u;
    req.info.tool_rounds = 1;
    req.info.bytes_out = 999;
    req.status = 200;
    test__same_text(&req, 3000);
    test__same_text(&req, 0);                 /* a negative duration counts 0 */
    req.client_gone = 1;
    req.path = "/x/\xff\xfe\"\n\xe2\x82";   /* not UTF-8, and a cut character */
    test__same_text(&req, 5000);
    /* a path past the 1024 bytes kept, cut in the middle of a character */
    memset(longpath, 'a', sizeof(longpath));
    memcpy(longpath + 1022, "\xe2\x82\xac", 3);
    longpath[sizeof(longpath) - 1] = '\0';
    req.path = longpath;
    test__same_text(&req, 5000);
    arena_free(a);
}

static void error_messages_end_with_the_id(void **state)
{
    arena_t *a = arena_new(4096);
    http_req_t req;

    (void)state;
    test__req(&req, a);
    assert_string_equal(http_err_msg(&req, "no id yet"), "no id yet");
    snprintf(req.info.id, sizeof(req.info.id), "%s", "req_XYZ");
    assert_string_equal(http_err_msg(&req, "bad model"), "bad model (request id req_XYZ)");
    assert_string_equal(http_err_msg(&req, NULL), " (request id req_XYZ)");
    assert_string_equal(http_err_msg(NULL, "x"), "x");
    arena_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fields_say_what_the_request_did),
        cmocka_unit_test(fields_of_a_request_that_got_nowhere),
        cmocka_unit_test(text_is_the_fields_as_json_c_writes_them),
        cmocka_unit_test(error_messages_end_with_the_id),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
