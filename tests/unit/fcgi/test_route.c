/* Router, HTTP helpers (query, headers, error JSON, capture output). */
#include "fcgi/admin/admin.h"
#include "fcgi/core/health.h"
#include "fcgi/core/http.h"
#include "fcgi/core/route.h"
#include "fcgi/openai/openai.h"
#include "fcgi/routes.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

/* The entry `method path` matched in the real table, or NULL. */
static const route_def_t *match(const char *method, const char *path, route_t *r)
{
    return route_find(routes_table, method, path, r) == 0 ? r->def : NULL;
}

static void test_routes_match(void **state)
{
    route_t r;

    (void)state;
    assert_non_null(match("GET", "/", &r));
    assert_ptr_equal(r.def->handler, index_handle);
    assert_int_equal(r.def->needs_auth, 0);
    assert_non_null(match("GET", "/health", &r));
    assert_ptr_equal(r.def->handler, health_handle);
    assert_int_equal(r.def->needs_auth, 0);
    assert_non_null(match("GET", "/v1/models", &r));
    assert_string_equal(r.def->path, "/v1/models");
    assert_int_equal(r.def->needs_auth, 1);
    assert_ptr_equal(r.def->surface, &openai_surface);
    assert_non_null(match("POST", "/v1/chat/completions", &r));
    assert_string_equal(r.def->path, "/v1/chat/completions");
    assert_int_equal(r.def->needs_auth, 1);
    assert_true(r.def->flags & ROUTE_LONG);
    assert_non_null(match("GET", "/v1/models/helper", &r));
    assert_string_equal(r.def->path, "/v1/models/{id}");
    assert_int_equal(r.arg_len, 6);
    assert_memory_equal(r.arg, "helper", 6);
    assert_non_null(match("DELETE", "/admin/assistants/x", &r));
    assert_ptr_equal(r.def->surface, &admin_surface);
    assert_true(r.def->flags & ROUTE_REG_LIVE);
    assert_non_null(match("GET", "/admin", &r));
    assert_ptr_equal(r.def->surface, &admin_surface);
    assert_non_null(match("OPTIONS", "/admin/config", &r));
    assert_ptr_equal(r.def->surface, &admin_surface);
}

static void test_routes_404(void **state)
{
    static const char *const paths[] = { "/nope", "/v1", "/v1/", "/v1/models/", "/healthz",
                                         "/administrator", "/v1/chat/completions/x", "" };
    route_t r;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        assert_int_equal(route_find(routes_table, "GET", paths[i], &r), -ENOENT);
        assert_int_equal(r.status, 404);
        assert_null(r.def);
    }
    assert_int_equal(route_find(routes_table, NULL, "/", &r), -ENOENT);
    assert_int_equal(route_find(NULL, "GET", "/", &r), -ENOENT);
}

static void test_routes_405(void **state)
{
    route_t r;

    (void)state;
    assert_int_equal(route_find(routes_table, "GET", "/v1/chat/completions", &r), -EINVAL);
    assert_int_equal(r.status, 405);
    assert_null(r.def);
    assert_string_equal(r.allow, "POST");
    assert_int_equal(route_find(routes_table, "POST", "/v1/models", &r), -EINVAL);
    assert_string_equal(r.allow, "GET, HEAD");
    assert_int_equal(route_find(routes_table, "DELETE", "/v1/models/x", &r), -EINVAL);
    assert_string_equal(r.allow, "GET, HEAD");
    assert_int_equal(route_find(routes_table, "POST", "/health", &r), -EINVAL);
    assert_int_equal(route_find(routes_table, "HEAD", "/v1/chat/completions", &r), -EINVAL);
    assert_string_equal(r.allow, "POST");
    assert_int_equal(route_find(routes_table, "BREW", "/v1/messages", &r), -EINVAL);
    assert_string_equal(r.allow, "POST");
}

/* HEAD is GET without a body: every GET route answers it (HEAD /health was a
 * 405, so monitors probing with HEAD saw the gateway as down). */
static void test_routes_head_is_get(void **state)
{
    route_t r;

    (void)state;
    assert_non_null(match("HEAD", "/", &r));
    assert_ptr_equal(r.def->handler, index_handle);
    assert_non_null(match("HEAD", "/health", &r));
    assert_ptr_equal(r.def->handler, health_handle);
    assert_non_null(match("HEAD", "/v1/models", &r));
    assert_string_equal(r.def->path, "/v1/models");
    assert_int_equal(r.def->needs_auth, 1);
    assert_non_null(match("HEAD", "/v1/models/helper", &r));
    assert_string_equal(r.def->path, "/v1/models/{id}");
}

static int fake_handler(http_req_t *req, const route_t *r, svc_t *svc)
{
    (void)req;
    (void)r;
    return 0;
}

/* Allow is every method the path takes, read from the table: a second entry
 * on a path adds its methods with no other list to edit. */
static void test_allow_derived_from_table(void **state)
{
    static const route_def_t table[] = {
        { ROUTE_GET,    "/things",      0, NULL, 0, fake_handler, "list" },
        { ROUTE_POST,   "/things",      0, NULL, 0, fake_handler, "add" },
        { ROUTE_DELETE | ROUTE_PUT, "/things/{id}", 0, NULL, 0, fake_handler, "edit" },
        { ROUTE_ANY,    "/raw/...",     0, NULL, 0, fake_handler, "anything" },
        { 0, NULL, 0, NULL, 0, NULL, NULL },
    };
    route_t r;
    char buf[ROUTE_ALLOW_MAX];

    (void)state;
    assert_int_equal(route_find(table, "PATCH", "/things", &r), -EINVAL);
    assert_string_equal(r.allow, "GET, HEAD, POST");
    assert_int_equal(route_find(table, "POST", "/things", &r), 0);
    assert_ptr_equal(r.def, &table[1]);
    assert_int_equal(route_find(table, "HEAD", "/things", &r), 0);
    assert_ptr_equal(r.def, &table[0]);
    assert_int_equal(route_find(table, "GET", "/things/7", &r), -EINVAL);
    assert_string_equal(r.allow, "PUT, DELETE");
    assert_int_equal(route_find(table, "PUT", "/things/7", &r), 0);
    assert_memory_equal(r.arg, "7", 2);
    assert_int_equal(route_find(table, "GET", "/things/", &r), -ENOENT);
    assert_int_equal(route_find(table, "TRACE", "/raw", &r), 0);
    assert_ptr_equal(r.def, &table[3]);
    assert_int_equal(route_find(table, "GET", "/raw/a/b", &r), 0);
    assert_string_equal(r.arg, "/a/b");
    assert_int_equal(route_find(table, "GET", "/rawer", &r), -ENOENT);
    assert_string_equal(route_methods(ROUTE_ANY, 1, buf, sizeof(buf)), "*");
    assert_string_equal(route_methods(ROUTE_GET | ROUTE_PATCH, 0, buf, sizeof(buf)), "GET, PATCH");
    /* a buffer too small keeps whole names only */
    assert_string_equal(route_methods(ROUTE_GET | ROUTE_POST, 1, buf, 12), "GET, HEAD");
}

/* GET / lists exactly the table, in its order, with each entry's line. */
static void test_index_matches_table(void **state)
{
    json_object *o, *eps, *e;
    const route_def_t *d;
    size_t n = 0, i;
    int chat = 0;

    (void)state;
    o = route_index_json(routes_table);
    assert_non_null(o);
    assert_true(json_object_object_get_ex(o, "endpoints", &eps));
    for (d = routes_table; d->path; d++)
        n++;
    assert_int_equal(json_object_array_length(eps), n);
    for (i = 0, d = routes_table; d->path; d++, i++) {
        char methods[ROUTE_ALLOW_MAX];
        e = json_object_array_get_idx(eps, i);
        assert_string_equal(json_object_get_string(json_object_object_get(e, "path")), d->path);
        assert_string_equal(json_object_get_string(json_object_object_get(e, "method")),
                            route_methods(d->methods, 0, methods, sizeof(methods)));
        assert_string_equal(json_object_get_string(json_object_object_get(e, "description")),
                            d->what);
        chat |= strcmp(d->path, "/v1/chat/completions") == 0;
    }
    assert_true(n >= 7);
    assert_true(chat);
    e = json_object_array_get_idx(eps, n - 1);
    assert_string_equal(json_object_get_string(json_object_object_get(e, "method")), "*");
    json_object_put(o);
}

/* What the core relies on without checking at run time: every entry has a
 * handler and an index line, a route with needs_auth has a surface with a
 * credential check, and every /v1 route needs one. */
static void test_table_complete(void **state)
{
    const route_def_t *d;

    (void)state;
    for (d = routes_table; d->path; d++) {
        assert_non_null(d->handler);
        assert_non_null(d->what);
        assert_true(d->methods != 0);
        if (d->needs_auth) {
            assert_non_null(d->surface);
            assert_non_null(d->surface->authorize);
        }
        if (strncmp(d->path, "/v1/", 4) == 0 || strncmp(d->path, "/admin", 6) == 0)
            assert_true(d->needs_auth);
    }
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

/* The error value is rendered whole by the OpenAI surface: status, type,
 * code, param and message as made where the failure happened. */
static void test_send_err_renders_the_value(void **state)
{
    http_req_t req;
    buf_t out;
    aip_err_t err;
    json_object *o, *e;
    const char *body;

    (void)state;
    memset(&req, 0, sizeof(req));
    buf_init(&out, 1 << 16);
    req.capture = &out;
    aip_err_set(&err, 503, "api_error", "mcp_broker_unavailable", "mcp-broker is not running");
    aip_err_param(&err, "tools");
    assert_int_equal(http_send_err(&req, &err), 0);
    assert_int_equal(req.status, 503);
    body = strstr(out.data, "\r\n\r\n");
    assert_non_null(body);
    o = json_tokener_parse(body + 4);
    assert_non_null(o);
    assert_true(json_object_object_get_ex(o, "error", &e));
    assert_string_equal(json_object_get_string(json_object_object_get(e, "message")),
                        "mcp-broker is not running");
    assert_string_equal(json_object_get_string(json_object_object_get(e, "type")), "api_error");
    assert_string_equal(json_object_get_string(json_object_object_get(e, "code")),
                        "mcp_broker_unavailable");
    assert_string_equal(json_object_get_string(json_object_object_get(e, "param")), "tools");
    json_object_put(o);
    buf_free(&out);
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

/* HEAD: the same status and headers as GET (Content-Length of the body it
 * would have), and no body. */
static void test_head_sends_no_body(void **state)
{
    http_req_t req;
    buf_t out;

    (void)state;
    memset(&req, 0, sizeof(req));
    buf_init(&out, 1 << 16);
    req.capture = &out;
    req.method = "HEAD";
    assert_int_equal(http_send(&req, 200, "application/json", NULL, "{\"status\":\"ok\"}", 15), 0);
    assert_non_null(strstr(out.data, "Status: 200 OK\r\n"));
    assert_non_null(strstr(out.data, "Content-Length: 15\r\n"));
    assert_int_equal(out.len, (size_t)(strstr(out.data, "\r\n\r\n") - out.data) + 4);
    buf_free(&out);

    memset(&req, 0, sizeof(req));
    buf_init(&out, 1 << 16);
    req.capture = &out;
    req.method = "HEAD";
    assert_int_equal(http_send_headers(&req, 200, "text/event-stream", NULL), 0);
    assert_int_equal(http_write(&req, "data: x\n\n", 9, 1), 0);
    assert_null(strstr(out.data, "data: x"));
    buf_free(&out);

    memset(&req, 0, sizeof(req));
    buf_init(&out, 1 << 16);
    req.capture = &out;
    req.method = "GET";
    assert_int_equal(http_send(&req, 200, "application/json", NULL, "{}", 2), 0);
    assert_int_equal(out.len, (size_t)(strstr(out.data, "\r\n\r\n") - out.data) + 4 + 2);
    buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_match),
        cmocka_unit_test(test_routes_404),
        cmocka_unit_test(test_routes_405),
        cmocka_unit_test(test_routes_head_is_get),
        cmocka_unit_test(test_head_sends_no_body),
        cmocka_unit_test(test_allow_derived_from_table),
        cmocka_unit_test(test_index_matches_table),
        cmocka_unit_test(test_table_complete),
        cmocka_unit_test(test_query_and_headers),
        cmocka_unit_test(test_send_error_capture),
        cmocka_unit_test(test_send_err_renders_the_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
