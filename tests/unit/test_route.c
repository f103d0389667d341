/* Router, HTTP helpers (query, headers, error JSON, capture output). */
#include "fcgi/http.h"
#include "fcgi/route.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

static void test_routes_match(void **state)
{
    route_t r;

    (void)state;
    assert_int_equal(route_find("GET", "/", &r), 0);
    assert_int_equal(r.id, ROUTE_INDEX);
    assert_int_equal(r.needs_auth, 0);
    assert_int_equal(route_find("GET", "/health", &r), 0);
    assert_int_equal(r.id, ROUTE_HEALTH);
    assert_int_equal(route_find("GET", "/v1/models", &r), 0);
    assert_int_equal(r.id, ROUTE_MODELS);
    assert_int_equal(r.needs_auth, 1);
    assert_int_equal(route_find("POST", "/v1/chat/completions", &r), 0);
    assert_int_equal(r.id, ROUTE_CHAT);
    assert_int_equal(r.needs_auth, 1);
    assert_int_equal(route_find("GET", "/v1/models/helper", &r), 0);
    assert_int_equal(r.id, ROUTE_MODEL);
    assert_int_equal(r.arg_len, 6);
    assert_memory_equal(r.arg, "helper", 6);
    assert_int_equal(route_find("DELETE", "/admin/assistants/x", &r), 0);
    assert_int_equal(r.id, ROUTE_ADMIN);
    assert_int_equal(route_find("GET", "/admin", &r), 0);
    assert_int_equal(r.id, ROUTE_ADMIN);
}

static void test_routes_404(void **state)
{
    static const char *const paths[] = { "/nope", "/v1", "/v1/", "/v1/models/", "/healthz",
                                         "/administrator", "/v1/chat/completions/x", "" };
    route_t r;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        assert_int_equal(route_find("GET", paths[i], &r), -ENOENT);
        assert_int_equal(r.status, 404);
        assert_int_equal(r.id, ROUTE_NONE);
    }
    assert_int_equal(route_find(NULL, "/", &r), -ENOENT);
}

static void test_routes_405(void **state)
{
    route_t r;

    (void)state;
    assert_int_equal(route_find("GET", "/v1/chat/completions", &r), -EINVAL);
    assert_int_equal(r.status, 405);
    assert_string_equal(r.allow, "POST");
    assert_int_equal(route_find("POST", "/v1/models", &r), -EINVAL);
    assert_string_equal(r.allow, "GET");
    assert_int_equal(route_find("DELETE", "/v1/models/x", &r), -EINVAL);
    assert_string_equal(r.allow, "GET");
    assert_int_equal(route_find("POST", "/health", &r), -EINVAL);
    assert_int_equal(route_find("HEAD", "/", &r), -EINVAL);
}

static void test_index_lists_routes(void **state)
{
    const route_doc_t *d;
    int n = 0, chat = 0;

    (void)state;
    for (d = route_index(); d->method; d++, n++)
        chat |= strcmp(d->path, "/v1/chat/completions") == 0;
    assert_true(n >= 5);
    assert_true(chat);
}

static void test_query_and_headers(void **state)
{
    char *params[] = { "REQUEST_METHOD=GET", "HTTP_AUTHORIZATION=Bearer k1",
                       "HTTP_X_API_KEY=abc", "CONTENT_TYPE=application/json", NULL };
    http_req_t req;

    (void)state;
    memset(&req, 0, sizeof(req));
    req.arena = arena_new(1024);
    req.params = params;
    req.query = "a=1&b=hello+w%6Frld&flag&c=%zz&e=";
    assert_string_equal(http_query_param(&req, "a"), "1");
    assert_string_equal(http_query_param(&req, "b"), "hello world");
    assert_string_equal(http_query_param(&req, "flag"), "");
    assert_string_equal(http_query_param(&req, "c"), "%zz");
    assert_string_equal(http_query_param(&req, "e"), "");
    assert_null(http_query_param(&req, "zz"));
    assert_string_equal(http_header(&req, "Authorization"), "Bearer k1");
    assert_string_equal(http_header(&req, "x-api-key"), "abc");
    assert_string_equal(http_header(&req, "Content-Type"), "application/json");
    assert_null(http_header(&req, "Cookie"));
    assert_string_equal(http_param(&req, "REQUEST_METHOD"), "GET");
    assert_null(http_param(&req, "REQUEST"));
    arena_free(req.arena);
}

static void test_send_error_capture(void **state)
{
    http_req_t req;
    buf_t out;
    json_object *o, *e, *v;
    const char *body;

    (void)state;
    memset(&req, 0, sizeof(req));
    buf_init(&out, 1 << 16);
    req.capture = &out;
    assert_int_equal(http_send_error(&req, 404, NULL, "model_not_found", "model", "no %s", "x"), 0);
    assert_int_equal(req.status, 404);
    assert_non_null(strstr(out.data, "Status: 404 Not Found\r\n"));
    body = strstr(out.data, "\r\n\r\n");
    assert_non_null(body);
    o = json_tokener_parse(body + 4);
    assert_non_null(o);
    assert_true(json_object_object_get_ex(o, "error", &e));
    assert_string_equal(json_object_get_string(json_object_object_get(e, "message")), "no x");
    assert_string_equal(json_object_get_string(json_object_object_get(e, "type")),
                        "invalid_request_error");
    assert_string_equal(json_object_get_string(json_object_object_get(e, "param")), "model");
    assert_string_equal(json_object_get_string(json_object_object_get(e, "code")),
                        "model_not_found");
    json_object_put(o);
    /* A second answer is refused once headers went out. */
    assert_int_equal(http_send(&req, 200, "text/plain", NULL, "x", 1), -EALREADY);
    buf_free(&out);

    /* an echoed model name with byte 0xFF stays valid UTF-8 */
    o = http_error_json(404, NULL, NULL, "model", "no assistant 'a\xFF'");
    e = json_object_object_get(o, "error");
    assert_string_equal(json_object_get_string(json_object_object_get(e, "message")),
                        "no assistant 'a\xEF\xBF\xBD'");
    json_object_put(o);
    o = http_error_json(503, NULL, NULL, "", "down");
    e = json_object_object_get(o, "error");
    assert_string_equal(json_object_get_string(json_object_object_get(e, "type")), "api_error");
    assert_true(json_object_object_get_ex(e, "param", &v));
    assert_null(v);
    json_object_put(o);
    assert_string_equal(http_error_type(401), "authentication_error");
    assert_string_equal(http_error_type(429), "rate_limit_error");
    assert_string_equal(http_error_type(413), "invalid_request_error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_match),
        cmocka_unit_test(test_routes_404),
        cmocka_unit_test(test_routes_405),
        cmocka_unit_test(test_index_lists_routes),
        cmocka_unit_test(test_query_and_headers),
        cmocka_unit_test(test_send_error_capture),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
