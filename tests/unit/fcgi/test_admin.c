/* Unit tests of the admin API's pure parts: routes, redaction of secrets
 * (JSON and YAML exports), references between objects, PUT bodies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "fcgi/admin/admin_doc.h"
#include "fcgi/admin/admin_route.h"
#include "shared/cfg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_routes(void **st)
{
    (void)st;
    admin_route_t r;
    assert_int_equal(admin_route_parse("/admin/config", &r), 0);
    assert_int_equal(r.target, ADMIN_T_CONFIG);
    assert_int_equal(admin_route_parse("/admin/assistants", &r), 0);
    assert_int_equal(r.target, ADMIN_T_LIST);
    assert_string_equal(r.kind, "assistants");
    assert_int_equal(admin_route_parse("/admin/mcp/", &r), 0);
    assert_int_equal(r.target, ADMIN_T_LIST);
    assert_string_equal(r.kind, "mcp_servers");
    assert_int_equal(admin_route_parse("/admin/backends/openai", &r), 0);
    assert_int_equal(r.target, ADMIN_T_ITEM);
    assert_string_equal(r.kind, "backends");
    assert_string_equal(r.name, "openai");
    assert_int_equal(admin_route_parse("/admin/assistants/gpt-4o.mini_2", &r), 0);
    assert_string_equal(r.name, "gpt-4o.mini_2");
    /* issue 11: the path is raw, and neither traversal nor escapes are names */
    static const char *const bad[] = {
        "/admin/assistants/team/gpt", "/admin/assistants/../backends/x", "/admin/assistants/..",
        "/admin/assistants/.", "/admin/assistants/a//b", "/admin/assistants/..%2Fbackends%2Fx",
        "/admin/backends/%2E%2E", "/admin/backends/x%2Fy", "/admin/mcp/../tools",
        "/admin/mcp/.x", "/admin/backends/a:b", NULL,
    };
    for (const char *const *b = bad; *b; b++)
        if (admin_route_parse(*b, &r) != -EINVAL)
            fail_msg("%s: not refused", *b);
    assert_int_equal(admin_route_parse("/admin/mcp/fs/tools", &r), 0);
    assert_int_equal(r.target, ADMIN_T_TOOLS);
    assert_string_equal(r.name, "fs");
    assert_int_equal(admin_route_parse("/admin/assistants/helper/tools", &r), 0);
    assert_int_equal(r.target, ADMIN_T_ASSISTANT_TOOLS);
    assert_string_equal(r.kind, "assistants");
    assert_string_equal(r.name, "helper");
    assert_true(admin_route_allows(&r, "GET"));
    assert_false(admin_route_allows(&r, "PUT"));
    assert_int_equal(admin_route_parse("/admin/assistants/../tools", &r), -EINVAL);
    assert_int_equal(admin_route_parse("/admin/assistants/a/b/tools", &r), -EINVAL);
    assert_int_equal(admin_route_parse("/admin/mcp/fs/other", &r), -ENOENT);
    assert_int_equal(admin_route_parse("/admin/mcpx", &r), -ENOENT);
    assert_int_equal(admin_route_parse("/admin/secrets", &r), -ENOENT);
    assert_int_equal(admin_route_parse("/admin", &r), -ENOENT);
    assert_int_equal(admin_route_parse("/v1/models", &r), -ENOENT);
    assert_int_equal(admin_route_parse("/admin/backends/a\nb", &r), -EINVAL);
    assert_int_equal(admin_route_parse("/admin/mcp//tools", &r), -EINVAL);
    char longp[ADMIN_NAME_MAX + 32] = "/admin/backends/";
    memset(longp + 16, 'n', ADMIN_NAME_MAX + 1);
    longp[16 + ADMIN_NAME_MAX + 1] = '\0';
    assert_int_equal(admin_route_parse(longp, &r), -EINVAL);
}

/* AIPROXY_MCP_COMMANDS: globs, ':' or ',' separated; nothing when unset. */
static void test_command_allowed(void **st)
{
    (void)st;
    assert_false(admin_doc_command_allowed(NULL, "/bin/sh"));
    assert_false(admin_doc_command_allowed("", "/bin/sh"));
    assert_true(admin_doc_command_allowed("*", "/bin/sh"));
    assert_true(admin_doc_command_allowed("npx:uvx", "uvx"));
    assert_true(admin_doc_command_allowed("npx,/opt/mcp/*", "/opt/mcp/bin/demo"));
    assert_false(admin_doc_command_allowed("npx,/opt/mcp/*", "/bin/sh"));
    assert_false(admin_doc_command_allowed("npx", "/usr/bin/npx"));
    assert_false(admin_doc_command_allowed("npx", "npx2"));
    assert_false(admin_doc_command_allowed("::,", "x"));
    assert_false(admin_doc_command_allowed("*", ""));
}

static void test_route_methods(void **st)
{
    (void)st;
    admin_route_t r;
    assert_int_equal(admin_route_parse("/admin/backends/x", &r), 0);
    assert_true(admin_route_allows(&r, "PUT"));
    assert_true(admin_route_allows(&r, "DELETE"));
    assert_false(admin_route_allows(&r, "POST"));
    assert_int_equal(admin_route_parse("/admin/config", &r), 0);
    assert_true(admin_route_allows(&r, "GET"));
    assert_false(admin_route_allows(&r, "PUT"));
    assert_int_equal(admin_route_parse("/admin/backends", &r), 0);
    assert_false(admin_route_allows(&r, "DELETE"));
}

static void test_credential_names(void **st)
{
    (void)st;
    const char *yes[] = { "Authorization", "authorization", "Cookie", "X-API-Key", "x-goog-api-key",
                          "GITHUB_TOKEN", "Client-Secret", "DB_PASSWORD", "X-Auth", "Session-Id" };
    const char *no[] = { "Accept", "User-Agent", "X-Request-Id", "PATH", "OpenAI-Organization" };
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
        assert_true(admin_doc_credential_name(yes[i]));
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
        assert_false(admin_doc_credential_name(no[i]));
}

/* A document shaped as cfg produces it, secrets marked SECRET-n. */
static const char *doc_json =
    "{\"backends\":{"
    "  \"openai\":{\"kind\":\"openai\",\"base_url\":\"https://api.example\",\"api_key\":\"SECRET-1\","
    "    \"default_headers\":{\"X-Api-Key\":\"SECRET-2\",\"Accept\":\"text/plain\"},\"timeout\":300,"
    "    \"_src\":{\"api_key\":\"${OPENAI_KEY}\"}},"
    "  \"local\":{\"kind\":\"openai\",\"base_url\":\"http://l\",\"api_key\":\"SECRET-3\","
    "    \"default_headers\":{},\"timeout\":300,"
    "    \"_src\":{\"api_key\":\"${LOCAL_KEY:-SECRET-3}\"}},"
    "  \"none\":{\"kind\":\"openai\",\"base_url\":\"http://n\",\"api_key\":\"\",\"default_headers\":{},"
    "    \"timeout\":300}},"
    " \"mcp_servers\":{"
    "  \"gh\":{\"transport\":\"stdio\",\"command\":\"gh-mcp\",\"args\":[],\"env\":{\"GITHUB_TOKEN\":\"SECRET-4\","
    "    \"LANG\":\"C\"},\"headers\":{}},"
    "  \"web\":{\"transport\":\"http\",\"url\":\"http://w\",\"args\":[],\"env\":{},"
    "    \"headers\":{\"Authorization\":\"Bearer SECRET-5\"},"
    "    \"_src\":{\"headers.Authorization\":\"Bearer ${WEB_TOKEN}\"}}},"
    " \"assistants\":{"
    "  \"a1\":{\"name\":\"a1\",\"backend\":\"openai\",\"model\":\"m\",\"mcp_servers\":[\"gh\",\"web\"]},"
    "  \"a2\":{\"name\":\"a2\",\"backend\":\"openai\",\"model\":\"m\",\"mcp_servers\":[\"web\"]},"
    "  \"a3\":{\"name\":\"a3\",\"backend\":\"local\",\"model\":\"m\",\"mcp_servers\":[]}},"
    " \"settings\":{\"proxy_api_keys\":[\"SECRET-6\",\"SECRET-7\"],"
    "  \"_src\":{\"proxy_api_keys\":[\"SECRET-6\",\"${PROXY_KEY}\"]},"
    "  \"apiman\":{\"mode\":\"trusted_header\",\"header\":\"X-Gw\",\"secret\":\"SECRET-8\"}}}";

static json_object *doc_new(void)
{
    json_object *d = json_tokener_parse(doc_json);
    assert_non_null(d);
    return d;
}

static const char *at(json_object *o, const char *path)
{
    /* dotted path lookup: "backends.openai.api_key" */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_object *cur = o;
    for (char *save = NULL, *seg = strtok_r(buf, ".", &save); seg; seg = strtok_r(NULL, ".", &save)) {
        if (json_object_is_type(cur, json_type_array))
            cur = json_object_array_get_idx(cur, (size_t)strtol(seg, NULL, 10));
        else if (!json_object_object_get_ex(cur, seg, &cur))
            return NULL;
    }
    return json_object_get_string(cur);
}

static void test_redact_json(void **st)
{
    (void)st;
    json_object *d = doc_new();
    json_object *r = admin_doc_redact(d, ADMIN_REDACT_JSON);
    assert_non_null(r);
    const char *text = json_object_to_json_string(r);
    assert_null(strstr(text, "SECRET"));
    assert_null(strstr(text, "_src"));
    assert_string_equal(at(r, "backends.openai.api_key"), "${OPENAI_KEY}");
    assert_string_equal(at(r, "backends.local.api_key"), "${LOCAL_KEY:-***}");
    assert_string_equal(at(r, "backends.none.api_key"), "");
    assert_string_equal(at(r, "backends.openai.default_headers.X-Api-Key"), "***");
    assert_string_equal(at(r, "backends.openai.default_headers.Accept"), "text/plain");
    assert_string_equal(at(r, "mcp_servers.gh.env.GITHUB_TOKEN"), "***");
    assert_string_equal(at(r, "mcp_servers.gh.env.LANG"), "C");
    assert_string_equal(at(r, "mcp_servers.web.headers.Authorization"), "Bearer ${WEB_TOKEN}");
    assert_string_equal(at(r, "settings.proxy_api_keys.0"), "***");
    assert_string_equal(at(r, "settings.proxy_api_keys.1"), "${PROXY_KEY}");
    assert_string_equal(at(r, "settings.apiman.secret"), "***");
    assert_string_equal(at(r, "settings.apiman.header"), "X-Gw");
    /* the original is untouched */
    assert_string_equal(at(d, "backends.openai.api_key"), "SECRET-1");
    json_object_put(r);
    json_object_put(d);
}

static void test_redact_yaml_export(void **st)
{
    (void)st;
    json_object *d = doc_new();
    json_object *r = admin_doc_redact(d, ADMIN_REDACT_YAML);
    assert_non_null(r);
    assert_null(strstr(json_object_to_json_string(r), "SECRET"));
    char *yaml = cfg_dump_yaml(r);
    assert_non_null(yaml);
    assert_null(strstr(yaml, "SECRET"));
    assert_non_null(strstr(yaml, "${OPENAI_KEY}"));
    assert_non_null(strstr(yaml, "${PROXY_KEY}"));
    free(yaml);
    json_object_put(r);
    json_object_put(d);
}

static void test_redact_one(void **st)
{
    (void)st;
    json_object *d = doc_new();
    json_object *b;
    assert_true(json_object_object_get_ex(json_object_object_get(d, "backends"), "openai", &b));
    json_object *r = admin_doc_redact_one("backends", b, ADMIN_REDACT_JSON);
    assert_null(strstr(json_object_to_json_string(r), "SECRET"));
    json_object_put(r);
    json_object_put(d);
}

static void test_users(void **st)
{
    (void)st;
    json_object *d = doc_new();
    json_object *u = admin_doc_users(d, "backends", "openai");
    assert_int_equal(json_object_array_length(u), 2);
    json_object_put(u);
    u = admin_doc_users(d, "mcp_servers", "web");
    assert_int_equal(json_object_array_length(u), 2);
    json_object_put(u);
    u = admin_doc_users(d, "mcp_servers", "gh");
    assert_int_equal(json_object_array_length(u), 1);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(u, 0)), "a1");
    json_object_put(u);
    u = admin_doc_users(d, "backends", "none");
    assert_int_equal(json_object_array_length(u), 0);
    json_object_put(u);
    json_object_put(d);
}

static void test_keep_secrets(void **st)
{
    (void)st;
    json_object *d = doc_new();
    json_object *old = json_object_object_get(json_object_object_get(d, "backends"), "openai");
    /* a GET answer PUT back unchanged keeps every stored secret */
    json_object *shown = admin_doc_redact_one("backends", old, ADMIN_REDACT_JSON);
    admin_doc_keep_secrets("backends", shown, old);
    assert_string_equal(at(shown, "api_key"), "SECRET-1");
    assert_string_equal(at(shown, "default_headers.X-Api-Key"), "SECRET-2");
    assert_string_equal(at(shown, "_src.api_key"), "${OPENAI_KEY}");
    json_object_put(shown);
    /* a new value is taken as sent */
    json_object *mine = json_tokener_parse("{\"api_key\":\"sk-new\",\"default_headers\":"
                                           "{\"X-Api-Key\":\"***\"}}");
    admin_doc_keep_secrets("backends", mine, old);
    assert_string_equal(at(mine, "api_key"), "sk-new");
    assert_string_equal(at(mine, "default_headers.X-Api-Key"), "SECRET-2");
    json_object_put(mine);
    /* nothing stored: "***" stays what was sent */
    mine = json_tokener_parse("{\"api_key\":\"***\"}");
    admin_doc_keep_secrets("backends", mine, NULL);
    assert_string_equal(at(mine, "api_key"), "***");
    json_object_put(mine);
    json_object_put(d);
}

static int body(const char *kind, const char *name, const char *text, json_object **o,
                const char **param)
{
    char err[256];
    return admin_doc_body(kind, name, text, text ? strlen(text) : 0, o, err, sizeof(err), param);
}

static void test_body(void **st)
{
    (void)st;
    json_object *o;
    const char *param;
    assert_int_equal(body("assistants", "a", "{\"backend\":\"b\"}", &o, &param), 0);
    assert_string_equal(at(o, "name"), "a");
    json_object_put(o);
    assert_int_equal(body("assistants", "a", "{\"name\":\"a\"}", &o, &param), 0);
    json_object_put(o);
    assert_int_equal(body("assistants", "a", "{\"name\":\"b\"}", &o, &param), -EINVAL);
    assert_string_equal(param, "name");
    assert_null(o);
    assert_int_equal(body("backends", "b", "{\"name\":\"b\",\"kind\":\"openai\"}", &o, &param), 0);
    assert_null(at(o, "name"));
    json_object_put(o);
    assert_int_equal(body("backends", "b", "{\"name\":7}", &o, &param), -EINVAL);
    assert_int_equal(body("backends", "b", "", &o, &param), -EBADMSG);
    assert_int_equal(body("backends", "b", NULL, &o, &param), -EBADMSG);
    assert_int_equal(body("backends", "b", "[1,2]", &o, &param), -EBADMSG);
    assert_int_equal(body("backends", "b", "{\"kind\":", &o, &param), -EBADMSG);
    assert_int_equal(body("backends", "b", "{} {}", &o, &param), -EBADMSG);
    assert_int_equal(body("backends", "b", "{}  \n", &o, &param), 0);
    json_object_put(o);
}

static void test_err_param(void **st)
{
    (void)st;
    char p[64];
    admin_doc_err_param("transport: must be one of stdio, sse", p, sizeof(p));
    assert_string_equal(p, "transport");
    admin_doc_err_param("default_headers.X: must be a string", p, sizeof(p));
    assert_string_equal(p, "default_headers.X");
    admin_doc_err_param("no field here", p, sizeof(p));
    assert_string_equal(p, "");
    admin_doc_err_param("a sentence: with colon", p, sizeof(p));
    assert_string_equal(p, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_route_methods),
        cmocka_unit_test(test_command_allowed),
        cmocka_unit_test(test_credential_names),
        cmocka_unit_test(test_redact_json),
        cmocka_unit_test(test_redact_yaml_export),
        cmocka_unit_test(test_redact_one),
        cmocka_unit_test(test_users),
        cmocka_unit_test(test_keep_secrets),
        cmocka_unit_test(test_body),
        cmocka_unit_test(test_err_param),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
