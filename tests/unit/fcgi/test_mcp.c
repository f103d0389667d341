/* The /mcp surface (issue 17): revision negotiation, Accept and Origin
 * matching, the session TTL knob, and the transport errors answered before
 * any session is looked up (no Redis needed). */
#include "agent/mcpc.h"
#include "fcgi/core/http.h"
#include "fcgi/core/route.h"
#include "fcgi/mcp/mcp.h"
#include "fcgi/routes.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static void test_versions(void **state)
{
    (void)state;
    assert_string_equal(mcp_negotiate("2025-06-18"), "2025-06-18");
    assert_string_equal(mcp_negotiate("2025-03-26"), "2025-03-26");
    assert_string_equal(mcp_negotiate("2025-11-25"), "2025-11-25");
    assert_string_equal(mcp_negotiate("2024-11-05"), "2025-11-25");
    assert_string_equal(mcp_negotiate(NULL), "2025-11-25");
    assert_true(mcp_version_ok("2025-06-18"));
    assert_false(mcp_version_ok("1999-01-01"));
    assert_false(mcp_version_ok(NULL));
}

static void test_accept(void **state)
{
    (void)state;
    assert_true(mcp_accepts(NULL, "application/json"));
    assert_true(mcp_accepts("application/json, text/event-stream", "text/event-stream"));
    assert_true(mcp_accepts("text/event-stream;q=0.5 , application/json", "application/json"));
    assert_true(mcp_accepts("*/*", "text/event-stream"));
    assert_true(mcp_accepts("text/*", "text/event-stream"));
    assert_false(mcp_accepts("text/html", "application/json"));
    assert_false(mcp_accepts("application/jsonx", "application/json"));
    assert_false(mcp_accepts("text/*", "application/json"));
}

static void test_origin(void **state)
{
    (void)state;
    assert_true(mcp_origin_ok("http://localhost:3000", NULL));
    assert_true(mcp_origin_ok("http://127.0.0.1", NULL));
    assert_true(mcp_origin_ok("https://[::1]:8443", NULL));
    assert_false(mcp_origin_ok("http://evil.example.com", NULL));
    assert_false(mcp_origin_ok("http://localhost.evil.com", NULL));
    assert_false(mcp_origin_ok("null", NULL));
    assert_true(mcp_origin_ok("https://app.example.com", "https://x.org, https://APP.example.com"));
    assert_false(mcp_origin_ok("https://app.example.com.evil", "https://app.example.com"));
    assert_true(mcp_origin_ok("https://anything", "*"));
}

static void test_session_ttl(void **state)
{
    (void)state;
    unsetenv("AIPROXY_MCP_SESSION_TTL");
    assert_int_equal(mcp_session_ttl(), 3600);
    setenv("AIPROXY_MCP_SESSION_TTL", "120", 1);
    assert_int_equal(mcp_session_ttl(), 120);
    setenv("AIPROXY_MCP_SESSION_TTL", "5", 1);
    assert_int_equal(mcp_session_ttl(), 3600);
    setenv("AIPROXY_MCP_SESSION_TTL", "12x", 1);
    assert_int_equal(mcp_session_ttl(), 3600);
    unsetenv("AIPROXY_MCP_SESSION_TTL");
}

/* POSTs `body` to /mcp with `params` and returns the status; the JSON-RPC
 * error code of the answer in *code (0 when none). */
static int call(const char *method, char **params, const char *body, int *code)
{
    route_t r;
    http_req_t req;
    svc_t svc;
    buf_t out;
    json_object *o, *e;
    const char *b;
    int status;

    memset(&req, 0, sizeof(req));
    memset(&svc, 0, sizeof(svc));
    buf_init(&out, 1 << 16);
    req.capture = &out;
    req.arena = arena_new(1024);
    req.params = params;
    req.method = method;
    req.path = "/mcp";
    req.query = "";
    req.body = body;
    req.body_len = strlen(body);
    svc.mcpc = mcpc_new("unix:///nonexistent/redis.sock", "t:");
    assert_int_equal(route_find(routes_table, method, "/mcp", &r), 0);
    assert_ptr_equal(r.def->handler, mcp_handle);
    assert_true(r.def->needs_auth);
    mcp_handle(&req, &r, &svc);
    status = req.status;
    *code = 0;
    b = out.data ? strstr(out.data, "\r\n\r\n") : NULL;
    if (b && (o = json_tokener_parse(b + 4))) {
        if (json_object_object_get_ex(o, "error", &e))
            *code = json_object_get_int(json_object_object_get(e, "code"));
        json_object_put(o);
    }
    mcpc_free(svc.mcpc);
    arena_reset(req.arena);
    arena_free(req.arena);
    buf_free(&out);
    return status;
}

static int post(char **params, const char *body, int *code)
{
    return call("POST", params, body, code);
}

static void test_transport_errors(void **state)
{
    char *json[] = { "CONTENT_TYPE=application/json",
                     "HTTP_ACCEPT=application/json, text/event-stream", NULL };
    char *text[] = { "CONTENT_TYPE=text/plain", NULL };
    char *html[] = { "CONTENT_TYPE=application/json", "HTTP_ACCEPT=text/html", NULL };
    char *evil[] = { "CONTENT_TYPE=application/json", "HTTP_ORIGIN=http://evil.example.com",
                     NULL };
    int code;

    (void)state;
    unsetenv("AIPROXY_MCP_ORIGINS");
    assert_int_equal(post(text, "{}", &code), 415);
    assert_int_equal(code, -32600);
    assert_int_equal(post(html, "{}", &code), 406);
    assert_int_equal(post(json, "{\"jsonrpc\":", &code), 400);
    assert_int_equal(code, -32700);
    assert_int_equal(post(json, "{} {}", &code), 400);
    assert_int_equal(code, -32700);
    assert_int_equal(post(json, "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", &code), 400);
    assert_int_equal(code, -32600);
    assert_int_equal(post(json, "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"ping\"}", &code), 400);
    assert_int_equal(post(json, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}", &code), 400);
    assert_int_equal(code, -32600);   /* no Mcp-Session-Id */
    assert_int_equal(post(json, "{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"ping\"}", &code), 400);
    assert_int_equal(post(evil, "{}", &code), 403);
    /* HEAD matches the GET route: it must not open a stream */
    assert_int_equal(call("HEAD", json, "", &code), 405);
    /* GET and DELETE without a session */
    assert_int_equal(call("DELETE", json, "", &code), 400);
    {
        char *sse[] = { "HTTP_ACCEPT=text/event-stream", NULL };
        char *js[] = { "HTTP_ACCEPT=application/json", NULL };
        assert_int_equal(call("GET", js, "", &code), 406);
        assert_int_equal(call("GET", sse, "", &code), 400);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_accept),
        cmocka_unit_test(test_origin),
        cmocka_unit_test(test_session_ttl),
        cmocka_unit_test(test_transport_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
