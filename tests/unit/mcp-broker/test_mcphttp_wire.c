/* httpwire: registry entry reading, JSON-RPC id matching and the error
 * responses synthesised for failed HTTP requests (no network). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "mcp-broker/httpwire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static json_object *parse(const char *s)
{
    json_object *o = json_tokener_parse(s);
    assert_non_null(o);
    return o;
}

static void conf_ok(void **state)
{
    json_object *srv = parse("{\"url\":\"https://h.example/mcp\",\"headers\":{\"Authorization\":\"Bearer x\",\"X-A\":\"1\"}}");
    httpwire_conf_t c;
    char err[256] = "";
    int n = 0;
    const struct curl_slist *l;

    (void)state;
    assert_int_equal(httpwire_conf_read(&c, "s", srv, err, sizeof(err)), 0);
    assert_string_equal(c.url, "https://h.example/mcp");
    for (l = c.headers; l; l = l->next) {
        n++;
        assert_true(strcmp(l->data, "Authorization: Bearer x") == 0 || strcmp(l->data, "X-A: 1") == 0);
    }
    assert_int_equal(n, 2);
    httpwire_conf_free(&c);
    json_object_put(srv);
}

static void conf_bad(void **state)
{
    static const struct { const char *json, *want; } cases[] = {
        {"{}", "url: required"},
        {"{\"url\":5}", "url: required"},
        {"{\"url\":\"ftp://x/\"}", "url: must start with http"},
        {"{\"url\":\"http://x/\",\"headers\":[1]}", "headers: must be an object"},
        {"{\"url\":\"http://x/\",\"headers\":{\"A\":\"x\\r\\nB: y\"}}", "headers.A: must be a string"},
        {"{\"url\":\"http://x/\",\"headers\":{\"A\":7}}", "headers.A: must be a string"},
        {"{\"url\":\"http://x/\",\"headers\":{\"A:B\":\"v\"}}", "must be a string"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_object *srv = parse(cases[i].json);
        httpwire_conf_t c;
        char err[256] = "";

        assert_int_equal(httpwire_conf_read(&c, "srv", srv, err, sizeof(err)), -EINVAL);
        if (!strstr(err, cases[i].want) || !strstr(err, "'srv'"))
            fail_msg("case %zu: got '%s', want '%s'", i, err, cases[i].want);
        httpwire_conf_free(&c);
        json_object_put(srv);
    }
}

static void request_ids(void **state)
{
    char id[64], method[64];
    const char *req = "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{}}";
    const char *sreq = "{\"jsonrpc\":\"2.0\",\"id\":\"a b\",\"method\":\"ping\"}";
    const char *note = "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}";
    const char *resp = "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}";

    (void)state;
    assert_int_equal(httpwire_request_id(req, strlen(req), id, sizeof(id), method, sizeof(method)), 1);
    assert_string_equal(id, "7");
    assert_string_equal(method, "tools/call");
    assert_int_equal(httpwire_request_id(sreq, strlen(sreq), id, sizeof(id), NULL, 0), 1);
    assert_string_equal(id, "\"a b\"");
    assert_int_equal(httpwire_request_id(note, strlen(note), id, sizeof(id), method, sizeof(method)), 0);
    assert_string_equal(method, "notifications/initialized");
    assert_int_equal(httpwire_request_id(resp, strlen(resp), id, sizeof(id), method, sizeof(method)), 0);
    assert_int_equal(httpwire_request_id("{not json", 9, id, sizeof(id), method, sizeof(method)), 0);

    assert_int_equal(httpwire_is_response_to(resp, strlen(resp), "7"), 1);
    assert_int_equal(httpwire_is_response_to(resp, strlen(resp), "8"), 0);
    assert_int_equal(httpwire_is_response_to(resp, strlen(resp), "\"7\""), 0);
    assert_int_equal(httpwire_is_response_to(req, strlen(req), "7"), 0);   /* a request, not a response */
    assert_int_equal(httpwire_is_response_to("[]", 2, "7"), 0);
}

static void error_response(void **state)
{
    char *s = httpwire_error_response("\"x\"", "HTTP 500: \"boom\"");
    json_object *o, *v, *e;

    (void)state;
    assert_non_null(s);
    o = parse(s);
    assert_true(json_object_object_get_ex(o, "id", &v));
    assert_string_equal(json_object_get_string(v), "x");
    assert_true(json_object_object_get_ex(o, "error", &e));
    assert_true(json_object_object_get_ex(e, "code", &v));
    assert_int_equal(json_object_get_int(v), -32000);
    assert_true(json_object_object_get_ex(e, "message", &v));
    assert_string_equal(json_object_get_string(v), "HTTP 500: \"boom\"");
    assert_int_equal(httpwire_is_response_to(s, strlen(s), "\"x\""), 1);
    json_object_put(o);
    free(s);
}

/* The traceparent header comes from params._meta only, well-formed. */
static void traceparent_from_meta(void **state)
{
    static const char tp[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    char out[64], m[512];

    (void)state;
    snprintf(m, sizeof m, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"tools/call\",\"params\":"
             "{\"_meta\":{\"progressToken\":4,\"traceparent\":\"%s\"},\"name\":\"t\"}}", tp);
    assert_int_equal(httpwire_traceparent(m, strlen(m), out), 1);
    assert_string_equal(out, tp);
    /* in the arguments, not _meta: no header */
    snprintf(m, sizeof m, "{\"params\":{\"_meta\":{\"progressToken\":4},\"name\":\"t\","
             "\"arguments\":{\"traceparent\":\"%s\"}}}", tp);
    assert_int_equal(httpwire_traceparent(m, strlen(m), out), 0);
    /* ill-formed */
    snprintf(m, sizeof m, "{\"params\":{\"_meta\":{\"traceparent\":\"00-%032d-00f067aa0ba902b7-01\"}}}", 0);
    assert_int_equal(httpwire_traceparent(m, strlen(m), out), 0);
    assert_int_equal(httpwire_traceparent("{}", 2, out), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conf_ok),
        cmocka_unit_test(conf_bad),
        cmocka_unit_test(request_ids),
        cmocka_unit_test(error_response),
        cmocka_unit_test(traceparent_from_meta),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
