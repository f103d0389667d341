/* Config loading: env expansion, defaults, both section forms, every
 * validation error with its file:line, the ${} round trip through
 * cfg_dump_yaml, and truncated input that must never crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shared/cfg.h"

static json_object *load_ok(const char *y)
{
    json_object *doc = NULL;
    char err[1024] = "";
    if (cfg_load_yaml(y, strlen(y), "t.yaml", &doc, err, sizeof err) != 0)
        fail_msg("unexpected error: %s\n--- yaml ---\n%s", err, y);
    assert_non_null(doc);
    return doc;
}

static void load_err(const char *y, const char *expect)
{
    json_object *doc = NULL;
    char err[1024] = "";
    int rc = cfg_load_yaml(y, strlen(y), "t.yaml", &doc, err, sizeof err);
    if (rc != -EINVAL)
        fail_msg("expected -EINVAL containing '%s', got %d (%s)\n%s", expect, rc, err, y);
    assert_null(doc);
    if (!strstr(err, expect))
        fail_msg("error '%s' does not contain '%s'", err, expect);
}

static json_object *at(json_object *o, const char *a, const char *b, const char *c)
{
    json_object *v = o;
    if (a && !json_object_object_get_ex(v, a, &v))
        return NULL;
    if (b && !json_object_object_get_ex(v, b, &v))
        return NULL;
    if (c && !json_object_object_get_ex(v, c, &v))
        return NULL;
    return v;
}

static const char *str_at(json_object *o, const char *a, const char *b, const char *c)
{
    json_object *v = at(o, a, b, c);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

#define BK "backends:\n  b:\n    kind: openai\n"

/* ---- env expansion ---- */

static void expand(const char *in, const char *want, int want_ref)
{
    char *out = NULL, err[256] = "";
    int ref = -1;
    if (cfg_expand_env(in, &out, &ref, err, sizeof err) != 0)
        fail_msg("%s: %s", in, err);
    assert_string_equal(out, want);
    assert_int_equal(ref, want_ref);
    free(out);
}

static void test_env_expand(void **state)
{
    char *out = NULL, err[256] = "";
    (void)state;
    setenv("CFGT_A", "alpha", 1);
    setenv("CFGT_EMPTY", "", 1);
    unsetenv("CFGT_UNSET");
    expand("plain", "plain", 0);
    expand("${CFGT_A}", "alpha", 1);
    expand("x-${CFGT_A}-y", "x-alpha-y", 1);
    expand("${CFGT_UNSET}", "", 1);
    expand("${CFGT_UNSET:-dflt}", "dflt", 1);
    expand("${CFGT_EMPTY:-dflt}", "dflt", 1);      /* :- also covers empty */
    expand("${CFGT_A:-dflt}", "alpha", 1);
    expand("${CFGT_UNSET:-}", "", 1);
    expand("${CFGT_UNSET:-a:b/c}", "a:b/c", 1);
    expand("$$", "$", 1);
    expand("$${CFGT_A}", "${CFGT_A}", 1);
    expand("cost $5", "cost $5", 0);               /* lone $ stays */
    expand("end$", "end$", 0);
    assert_int_equal(cfg_expand_env("${CFGT_A", &out, NULL, err, sizeof err), -EINVAL);
    assert_null(out);
    assert_non_null(strstr(err, "unterminated"));
    assert_int_equal(cfg_expand_env("${}", &out, NULL, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "bad reference"));
    assert_int_equal(cfg_expand_env("${1X}", &out, NULL, err, sizeof err), -EINVAL);
    assert_int_equal(cfg_expand_env("${A-b}", &out, NULL, err, sizeof err), -EINVAL);
    assert_int_equal(cfg_expand_env("${A B}", &out, NULL, err, sizeof err), -EINVAL);
}

static void test_env_types_and_src(void **state)
{
    json_object *d;
    (void)state;
    setenv("CFGT_T", "42", 1);
    setenv("CFGT_KEY", "12345", 1);
    unsetenv("CFGT_UNSET");
    d = load_ok("backends:\n  b:\n    kind: openai\n    timeout: ${CFGT_T}\n"
                "    api_key: ${CFGT_KEY}\n  c:\n    kind: anthropic\n"
                "    timeout: ${CFGT_UNSET:-30}\n    api_key: \"${CFGT_UNSET:-}\"\n"
                "proxy_api_keys: [\"${CFGT_UNSET:-}\", k1, \"${CFGT_KEY}\", \"\"]\n");
    assert_int_equal(json_object_get_int(at(d, "backends", "b", "timeout")), 42);
    assert_true(json_object_is_type(at(d, "backends", "b", "timeout"), json_type_int));
    /* digits from ${} in a string field stay a string */
    assert_string_equal(str_at(d, "backends", "b", "api_key"), "12345");
    assert_string_equal(str_at(at(d, "backends", "b", "_src"), "api_key", NULL, NULL), "${CFGT_KEY}");
    assert_int_equal(json_object_get_int(at(d, "backends", "c", "timeout")), 30);
    assert_string_equal(str_at(d, "backends", "c", "api_key"), "");
    /* empty entries are dropped */
    json_object *keys = at(d, "settings", "proxy_api_keys", NULL);
    assert_int_equal(json_object_array_length(keys), 2);
    /* and the rest are stored as their hashes, never as themselves */
    char h[CFG_KEY_HASH_LEN + 1];
    cfg_key_hash("k1", 2, h);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(keys, 0)), h);
    cfg_key_hash("12345", 5, h);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(keys, 1)), h);
    assert_null(strstr(json_object_to_json_string(at(d, "settings", NULL, NULL)), "k1"));
    json_object_put(d);
    load_err(BK "    api_key: \"${CFGT_OPEN\"\n", "t.yaml:4: backends.b.api_key: unterminated");
}

/* Found by fuzz_cfg: YAML floats that are not JSON numbers (.5, +1., 1e5 is
 * fine) must not reach the registry's JSON text as written. */
static void test_floats_stay_json(void **state)
{
    json_object *d, *back;
    (void)state;
    d = load_ok(BK "assistants: [{name: a, backend: b, model: m, temperature: .5, top_p: 0.7,\n"
                "  extra_body: {x: +1., y: -0.25e+2, z: 1.}}]\n");
    back = json_tokener_parse(json_object_to_json_string(d));
    assert_non_null(back);
    assert_true(json_object_equal(d, back));
    assert_true(json_object_get_double(at(d, "assistants", "a", "temperature")) == 0.5);
    assert_non_null(strstr(json_object_to_json_string(d), "\"top_p\": 0.7"));
    json_object_put(back);
    json_object_put(d);
}

/* The export writes a whole-number double with its ".0" (built with strncat
 * once, with snprintf now: scripts/checksrc.sh bans strncat), so it reads back
 * as a double, not an int; other doubles keep their shortest text. */
static void test_dump_whole_double(void **state)
{
    json_object *d1, *d2;
    char *y, err[1024] = "";
    (void)state;
    d1 = load_ok(BK "assistants: [{name: a, backend: b, model: m, temperature: 1.0, top_p: 0.25}]\n");
    y = cfg_dump_yaml(d1);
    assert_non_null(y);
    assert_non_null(strstr(y, "temperature: 1.0\n"));
    assert_non_null(strstr(y, "top_p: 0.25\n"));
    assert_int_equal(cfg_load_yaml(y, strlen(y), "dump", &d2, err, sizeof err), 0);
    assert_true(json_object_is_type(at(d2, "assistants", "a", "temperature"), json_type_double));
    assert_true(json_object_equal(d1, d2));
    json_object_put(d2);
    free(y);
    json_object_put(d1);
}

/* Found by fuzz_cfg: a reference that expands to "null" or "~" is that text,
 * not a null the check would replace by a default, so the export (which
 * writes the reference back quoted) loads to the same document. */
static void test_env_null_text_round_trip(void **state)
{
    json_object *d1, *d2;
    char *y, err[1024] = "";
    (void)state;
    setenv("CFGT_TILDE", "~", 1);
    unsetenv("CFGT_UNSET");
    d1 = load_ok(BK "    api_key: ${CFGT_UNSET:-}Null\n    base_url: ${CFGT_UNSET:-https://x/v1}\n"
                 "    default_headers:\n      X-Pin: ${CFGT_UNSET:-0012}\n"
                 "      X-Big: ${CFGT_UNSET:-00015184643435372619095}\n"
                 "    timeout: ${CFGT_UNSET:-30}\n"
                 "proxy_api_keys:\n  - ${CFGT_TILDE}\n");
    assert_string_equal(str_at(d1, "backends", "b", "api_key"), "Null");
    /* and digits keep their text (leading zeros, a sign) in a string field */
    assert_string_equal(str_at(at(d1, "backends", "b", "default_headers"), "X-Pin", NULL, NULL),
                        "0012");
    assert_string_equal(str_at(at(d1, "backends", "b", "default_headers"), "X-Big", NULL, NULL),
                        "00015184643435372619095");
    assert_int_equal(json_object_get_int(at(d1, "backends", "b", "timeout")), 30);
    char h[CFG_KEY_HASH_LEN + 1];
    cfg_key_hash("~", 1, h);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(
                            at(d1, "settings", "proxy_api_keys", NULL), 0)), h);
    y = cfg_dump_yaml(d1);
    assert_non_null(y);
    assert_int_equal(cfg_load_yaml(y, strlen(y), "dump", &d2, err, sizeof err), 0);
    assert_true(json_object_equal(d1, d2));
    json_object_put(d2);
    free(y);
    json_object_put(d1);
}

/* A ${} value keeps its text and case: KEY=True is the string "True" (it was
 * the boolean true, which a string field printed "true"); exactly true/false
 * still give a boolean, whose text is the same. */
static void test_env_keeps_case(void **state)
{
    json_object *d, *d2;
    char *y, err[1024] = "";
    (void)state;
    setenv("CFGT_TRUE_CAP", "True", 1);
    setenv("CFGT_FALSE_UP", "FALSE", 1);
    setenv("CFGT_TRUE", "true", 1);
    d = load_ok(BK "    api_key: ${CFGT_TRUE_CAP}\n"
                "    default_headers:\n      X-A: ${CFGT_FALSE_UP}\n      X-B: ${CFGT_TRUE}\n"
                "apiman:\n  mode: trusted_header\n  header: h\n  secret: s\n"
                "  enabled: ${CFGT_TRUE}\n");
    assert_string_equal(str_at(d, "backends", "b", "api_key"), "True");
    assert_string_equal(str_at(at(d, "backends", "b", "default_headers"), "X-A", NULL, NULL),
                        "FALSE");
    assert_string_equal(str_at(at(d, "backends", "b", "default_headers"), "X-B", NULL, NULL),
                        "true");
    assert_true(json_object_get_boolean(at(d, "settings", "apiman", "enabled")));
    y = cfg_dump_yaml(d);
    assert_non_null(y);
    assert_int_equal(cfg_load_yaml(y, strlen(y), "dump", &d2, err, sizeof err), 0);
    assert_true(json_object_equal(d, d2));
    json_object_put(d2);
    free(y);
    json_object_put(d);
}

/* Found by fuzz_cfg: a key with "$$" and no ${} (`- k$$1`, the key "k$1") is
 * a literal; it kept a settings._src.proxy_api_keys, which the check turned
 * into hashes only, and the export (writing the hashes) loaded back without
 * it. Such a list has no _src; beside a ${} it is written as its hash.
 * The same for "$${X}" (the key "${X}"), which was kept unhashed in _src. */
static void round_trip(json_object *d)
{
    json_object *d2 = NULL;
    char *y = cfg_dump_yaml(d), err[1024] = "";

    assert_non_null(y);
    assert_int_equal(cfg_load_yaml(y, strlen(y), "dump", &d2, err, sizeof err), 0);
    if (!json_object_equal(d, d2))
        fail_msg("round trip differs:\n%s\n---\n%s\n---\n%s", y, json_object_to_json_string(d),
                 json_object_to_json_string(d2));
    json_object_put(d2);
    free(y);
}

static void test_key_dollar_literal_round_trip(void **state)
{
    char h[CFG_KEY_HASH_LEN + 1];
    json_object *d, *refs;
    (void)state;
    unsetenv("CFGT_UNSET");
    cfg_key_hash("k$1", 3, h);
    d = load_ok("proxy_api_keys:\n  - k$$1\n");
    assert_string_equal(json_object_get_string(json_object_array_get_idx(
                            at(d, "settings", "proxy_api_keys", NULL), 0)), h);
    assert_null(at(d, "settings", "_src", NULL));
    assert_null(strstr(json_object_to_json_string(d), "k$"));
    round_trip(d);
    json_object_put(d);
    /* "$${X}" is the key "${X}", no reference: hashed, never kept as written */
    cfg_key_hash("${X}", 4, h);
    d = load_ok("proxy_api_keys:\n  - $${X}\n");
    assert_string_equal(json_object_get_string(json_object_array_get_idx(
                            at(d, "settings", "proxy_api_keys", NULL), 0)), h);
    assert_null(at(d, "settings", "_src", NULL));
    assert_null(strstr(json_object_to_json_string(d), "{X}"));
    round_trip(d);
    json_object_put(d);
    assert_true(cfg_has_ref("a${X}") && cfg_has_ref("$$${X}") && cfg_has_ref("$${X}${Y}"));
    assert_false(cfg_has_ref("$${X}") || cfg_has_ref("k$$1") || cfg_has_ref("$x{") ||
                 cfg_has_ref(""));
    cfg_key_hash("k$1", 3, h);
    d = load_ok("proxy_api_keys:\n  - ${CFGT_UNSET:-}\n  - k$$1\n");
    refs = at(d, "settings", "_src", "proxy_api_keys");
    assert_int_equal(json_object_array_length(refs), 2);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(refs, 0)),
                        "${CFGT_UNSET:-}");
    assert_string_equal(json_object_get_string(json_object_array_get_idx(refs, 1)), h);
    round_trip(d);
    json_object_put(d);
}

/* Found by fuzz_cfg: libyaml refuses a simple key past 1024 characters, so
 * the export writes a long key explicitly ("? key" / ":"), and a mapping in a
 * list in block style (it was JSON text, a flow mapping: the same limit, and
 * its ${} written expanded). */
static void test_long_key_round_trip(void **state)
{
    char key[1101], *y, *ystr;
    json_object *d;
    (void)state;
    setenv("CFGT_KEY", "sek-123", 1);
    memset(key, 'k', sizeof key - 1);
    key[sizeof key - 1] = '\0';
    if (asprintf(&ystr, "mcp_servers:\n  s:\n    command: p\n    env: {%s}\n", key) < 0)
        fail();
    d = load_ok(ystr);
    free(ystr);
    assert_true(json_object_object_get_ex(at(d, "mcp_servers", "s", "env"), key, NULL));
    round_trip(d);
    y = cfg_dump_yaml(d);
    assert_non_null(strstr(y, "    ? kkk"));
    free(y);
    json_object_put(d);
    if (asprintf(&ystr, BK "assistants:\n  - name: a\n    backend: b\n    model: m\n"
                        "    extra_body: {l: [{%s, r: \"${CFGT_KEY}\"}, [1, [2]], {}, []]}\n",
                 key) < 0)
        fail();
    d = load_ok(ystr);
    free(ystr);
    assert_string_equal(str_at(at(d, "assistants", "a", "_src"), "extra_body.l[0].r", NULL, NULL),
                        "${CFGT_KEY}");
    round_trip(d);
    y = cfg_dump_yaml(d);
    assert_null(strstr(y, "sek-123"));
    free(y);
    json_object_put(d);
}

/* ---- defaults and forms ---- */

static void test_defaults(void **state)
{
    json_object *d, *a, *m, *b;
    (void)state;
    d = load_ok("backends:\n  o: {kind: openai}\n  an: {kind: anthropic}\n"
                "mcp_servers:\n  s: {command: /bin/true}\n  h: {transport: http, url: http://x/mcp}\n"
                "assistants:\n  - name: a\n    backend: o\n    model: m\n");
    b = at(d, "backends", "o", NULL);
    assert_string_equal(str_at(b, "base_url", NULL, NULL), "https://api.openai.com/v1");
    assert_string_equal(str_at(b, "api_key", NULL, NULL), "");
    assert_int_equal(json_object_get_int(at(b, "timeout", NULL, NULL)), 300);
    assert_int_equal(json_object_object_length(at(b, "default_headers", NULL, NULL)), 0);
    assert_null(at(b, "_src", NULL, NULL));
    assert_string_equal(str_at(d, "backends", "an", "base_url"), "https://api.anthropic.com/v1");
    /* images in tool results: Anthropic takes them; OpenAI-compatible servers vary */
    assert_false(json_object_get_boolean(at(b, "tool_images", NULL, NULL)));
    assert_true(json_object_is_type(at(d, "backends", "an", "tool_images"), json_type_boolean));
    assert_true(json_object_get_boolean(at(d, "backends", "an", "tool_images")));
    m = at(d, "mcp_servers", "s", NULL);
    assert_string_equal(str_at(m, "transport", NULL, NULL), "stdio");
    assert_int_equal(json_object_array_length(at(m, "args", NULL, NULL)), 0);
    assert_int_equal(json_object_object_length(at(m, "env", NULL, NULL)), 0);
    assert_true(json_object_object_get_ex(m, "cwd", NULL));
    assert_null(at(m, "cwd", NULL, NULL));
    assert_null(at(m, "url", NULL, NULL));
    assert_string_equal(str_at(m, "description", NULL, NULL), "");
    assert_int_equal(json_object_get_int(at(m, "timeout", NULL, NULL)), 60);
    assert_int_equal(json_object_get_int(at(m, "max_timeout", NULL, NULL)), 3600);
    /* no roots unless configured: roots/list answers [] */
    assert_int_equal(json_object_array_length(at(m, "roots", NULL, NULL)), 0);
    /* elicitation is declined unless the server says defaults */
    assert_string_equal(str_at(m, "elicitation", NULL, NULL), "decline");
    assert_null(at(d, "mcp_servers", "h", "command"));
    a = at(d, "assistants", "a", NULL);
    assert_string_equal(str_at(a, "name", NULL, NULL), "a");
    assert_int_equal(json_object_get_int(at(a, "max_tool_iterations", NULL, NULL)), 8);
    /* tool events are off unless the assistant (or the request) asks */
    assert_true(json_object_is_type(at(a, "tool_events", NULL, NULL), json_type_boolean));
    assert_false(json_object_get_boolean(at(a, "tool_events", NULL, NULL)));
    /* an assistant serves its MCP servers' sampling requests unless it says not */
    assert_true(json_object_get_boolean(at(a, "allow_sampling", NULL, NULL)));
    assert_true(json_object_object_get_ex(a, "temperature", NULL));
    assert_null(at(a, "temperature", NULL, NULL));
    assert_null(at(a, "top_p", NULL, NULL));
    assert_null(at(a, "max_tokens", NULL, NULL));
    /* null: the responders' AIPROXY_STREAM_KEEPALIVE_MS applies */
    assert_true(json_object_object_get_ex(a, "stream_keepalive_ms", NULL));
    assert_null(at(a, "stream_keepalive_ms", NULL, NULL));
    /* null: the backend's tool_images */
    assert_true(json_object_object_get_ex(a, "tool_images", NULL));
    assert_null(at(a, "tool_images", NULL, NULL));
    assert_string_equal(str_at(a, "system_prompt", NULL, NULL), "");
    assert_int_equal(json_object_array_length(at(a, "mcp_servers", NULL, NULL)), 0);
    assert_int_equal(json_object_object_length(at(a, "extra_body", NULL, NULL)), 0);
    /* no tool selection: allow null (everything), deny [], max_tools null (global) */
    assert_true(json_object_object_get_ex(at(a, "tools", NULL, NULL), "allow", NULL));
    assert_null(at(a, "tools", "allow", NULL));
    assert_int_equal(json_object_array_length(at(a, "tools", "deny", NULL)), 0);
    assert_true(json_object_object_get_ex(a, "max_tools", NULL));
    assert_null(at(a, "max_tools", NULL, NULL));
    assert_int_equal(json_object_array_length(at(d, "settings", "proxy_api_keys", NULL)), 0);
    assert_true(json_object_object_get_ex(at(d, "settings", NULL, NULL), "apiman", NULL));
    assert_null(at(d, "settings", "apiman", NULL));
    json_object_put(d);
    /* an empty file is an empty registry */
    d = load_ok("");
    assert_int_equal(json_object_object_length(at(d, "assistants", NULL, NULL)), 0);
    json_object_put(d);
}

static void test_tool_selection_kept(void **state)
{
    json_object *d, *a;
    char *y;
    (void)state;
    d = load_ok(BK "assistants:\n  - name: a\n    backend: b\n    model: m\n"
                "    max_tools: 200\n    tools: {deny: ['demo__sleep*'], allow: ['demo__*', 'calc__add']}\n");
    a = at(d, "assistants", "a", NULL);
    assert_int_equal(json_object_get_int(at(a, "max_tools", NULL, NULL)), 200);
    assert_int_equal(json_object_array_length(at(a, "tools", "allow", NULL)), 2);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(at(a, "tools", "deny", NULL), 0)),
                        "demo__sleep*");
    /* an export loads back to the same document */
    y = cfg_dump_yaml(d);
    assert_non_null(y);
    json_object *d2 = load_ok(y);
    assert_true(json_object_equal(at(d, "assistants", NULL, NULL), at(d2, "assistants", NULL, NULL)));
    free(y);
    json_object_put(d2);
    json_object_put(d);
}

static void test_forms(void **state)
{
    json_object *d;
    (void)state;
    d = load_ok("backends:\n  - name: b\n    kind: openai\n"
                "mcp_servers:\n  - name: s\n    command: x\n    env: {N: 3, F: false, E: }\n"
                "assistants:\n  a1: {backend: b, model: m, mcp_servers: [s]}\n"
                "  a2: {name: a2, backend: b, model: m, stream_keepalive_ms: 0}\n"
                "  a3: {backend: b, model: m, stream_keepalive_ms: 1500}\n");
    assert_int_equal(json_object_get_int(at(d, "assistants", "a2", "stream_keepalive_ms")), 0);
    assert_int_equal(json_object_get_int(at(d, "assistants", "a3", "stream_keepalive_ms")), 1500);
    assert_string_equal(str_at(d, "backends", "b", "kind"), "openai");
    assert_null(at(d, "backends", "b", "name"));          /* the key is the name */
    assert_string_equal(str_at(d, "mcp_servers", "s", "command"), "x");
    assert_string_equal(str_at(d, "mcp_servers", "s", "env")
                            ? NULL : str_at(at(d, "mcp_servers", "s", "env"), "N", NULL, NULL), "3");
    assert_string_equal(str_at(at(d, "mcp_servers", "s", "env"), "F", NULL, NULL), "false");
    assert_string_equal(str_at(at(d, "mcp_servers", "s", "env"), "E", NULL, NULL), "");
    assert_string_equal(str_at(d, "assistants", "a1", "name"), "a1");
    assert_string_equal(str_at(d, "assistants", "a2", "backend"), "b");
    json_object_put(d);
}

/* ---- errors, each with its line ---- */

static void test_errors(void **state)
{
    (void)state;
    load_err("foo: 1\n", "t.yaml:1: foo: unknown top-level key");
    /* found by fuzz_cfg: a written _src loaded, and the export dropped it */
    load_err("mcp_servers:\n s:\n   command: p\n   _src: {H}\n",
             "t.yaml:4: mcp_servers.s._src: '_src' is reserved");
    load_err("- a\n", "must be a mapping");
    load_err("backends:\n  b:\n    kind: gemini\n", "t.yaml:3: backends.b.kind: unknown backend kind 'gemini'");
    load_err("backends:\n  b: {base_url: http://x}\n", "backends.b.kind: required");
    load_err(BK "    base_url: ftp://x\n", "t.yaml:4: backends.b.base_url: must start with http://");
    load_err(BK "    timeout: 0\n", "t.yaml:4: backends.b.timeout: out of range");
    load_err(BK "    timeout: soon\n", "backends.b.timeout: must be a number");
    load_err(BK "    api_key: 123\n", "backends.b.api_key: must be a string");
    load_err(BK "    default_headers: [a]\n", "backends.b.default_headers: must be a mapping");
    load_err(BK "    default_headers: {X: [1]}\n", "t.yaml:4: backends.b.default_headers.X: must be a string");
    load_err(BK "    colour: red\n", "t.yaml:4: backends.b.colour: unknown field");
    load_err("backends: 3\n", "backends: must be a mapping of name");
    load_err("backends:\n  b: 3\n", "backends.b: must be a mapping");
    load_err("mcp_servers:\n  s: {}\n", "mcp_servers.s.transport: required when no command");
    load_err("mcp_servers:\n  s: {transport: ftp, url: http://x}\n", "transport: must be one of stdio");
    load_err("mcp_servers:\n  s: {transport: stdio}\n", "mcp_servers.s.command: required for the stdio");
    load_err("mcp_servers:\n  s: {transport: sse}\n", "mcp_servers.s.url: required for the sse");
    load_err("mcp_servers:\n  s: {transport: streamable-http, url: ws://x}\n", "url: must start with http");
    load_err("mcp_servers:\n  s: {command: x, args: a}\n", "args: must be a list");
    load_err("mcp_servers:\n  s:\n    command: x\n    args: [a, [b]]\n", "t.yaml:4: mcp_servers.s.args[1]: must be a string");
    load_err("mcp_servers:\n  s: {command: x, env: {A: [1]}}\n", "env.A: must be a string");
    load_err("mcp_servers:\n  s: {command: x, timeout: -1}\n", "timeout: out of range");
    /* max_timeout: the progress ceiling, validated like timeout, never below it */
    load_err("mcp_servers:\n  s: {command: x, max_timeout: 0}\n", "mcp_servers.s.max_timeout: out of range");
    load_err("mcp_servers:\n  s: {command: x, max_timeout: 90000}\n", "max_timeout: out of range");
    load_err("mcp_servers:\n  s: {command: x, max_timeout: soon}\n", "max_timeout: must be a number");
    load_err("mcp_servers:\n  s: {command: x, timeout: 30, max_timeout: 10}\n",
             "max_timeout: must be at least timeout (30 s)");
    {
        /* a timeout above the default ceiling is still fine: the broker takes the larger */
        json_object *ok = load_ok("mcp_servers:\n  s: {command: x, timeout: 7200}\n"
                                  "  f: {command: x, timeout: 1, max_timeout: 2.5}\n");
        assert_int_equal(json_object_get_int(at(ok, "mcp_servers", "s", "max_timeout")), 3600);
        assert_true(json_object_get_double(at(ok, "mcp_servers", "f", "max_timeout")) == 2.5);
        json_object_put(ok);
    }
    /* roots: a list of {uri: file://…, name?} */
    load_err("mcp_servers:\n  s: {command: x, roots: /srv}\n", "mcp_servers.s.roots: must be a list of {uri, name}");
    load_err("mcp_servers:\n  s: {command: x, roots: [/srv]}\n", "roots[0]: must be a mapping {uri, name}");
    load_err("mcp_servers:\n  s: {command: x, roots: [{uri: \"http://x/\"}]}\n", "roots[0].uri: must be a file:// URI");
    load_err("mcp_servers:\n  s: {command: x, roots: [{name: n}]}\n", "roots[0].uri: must be a file:// URI");
    load_err("mcp_servers:\n  s: {command: x, roots: [{uri: \"file:///a\", name: [n]}]}\n",
             "roots[0].name: must be a string");
    load_err("mcp_servers:\n  s: {command: x, roots: [{uri: \"file:///a\", path: p}]}\n",
             "roots[0]: unknown field 'path' (allowed: uri, name)");
    load_err("mcp_servers:\n  s: {command: x, elicitation: ask}\n",
             "mcp_servers.s.elicitation: must be decline or defaults (got 'ask')");
    load_err(BK "assistants:\n  - {name: a, backend: b, model: m, allow_sampling: no-way}\n",
             "allow_sampling: must be true or false");
    {
        json_object *ok = load_ok("mcp_servers:\n  s: {command: x, roots: [{uri: \"file:///srv/p\", name: p}]}\n");
        assert_string_equal(str_at(json_object_array_get_idx(at(ok, "mcp_servers", "s", "roots"), 0), "uri",
                                   NULL, NULL), "file:///srv/p");
        json_object_put(ok);
    }
    load_err("mcp_servers:\n  bad/name: {command: x}\n", "not a valid MCP server name");
    load_err("mcp_servers:\n  \"..\": {command: x}\n", "not a valid MCP server name");
    load_err("backends:\n  .hidden: {kind: openai}\n", "not a valid backend name");
    load_err("backends:\n  a:b: {kind: openai}\n", "not a valid backend name");
    load_err(BK "assistants:\n  - {name: ../b, backend: b, model: m}\n", "not a valid assistant name");
    load_err(BK "assistants:\n  - {name: team/gpt, backend: b, model: m}\n", "not a valid assistant name");
    load_err("mcp_servers:\n  s: {command: x, inherit_env: [OPENAI_API_KEY]}\n",
             "mcp_servers.s.inherit_env[0]: 'OPENAI_API_KEY' is one of the gateway's own secrets");
    load_err("mcp_servers:\n  s: {command: x, inherit_env: [HOME, AIPROXY_MCP_USER]}\n",
             "inherit_env[1]: 'AIPROXY_MCP_USER' is one of the gateway's own secrets");
    load_err("mcp_servers:\n  s: {command: x, inherit_env: [\"A=B\"]}\n",
             "inherit_env[0]: 'A=B' is not an environment variable name");
    load_err("mcp_servers:\n  s: {command: x, inherit_env: FOO}\n", "inherit_env: must be a list");
    load_err(BK "assistants:\n  - backend: b\n    model: m\n", "assistants[0].name: required");
    load_err(BK "assistants:\n  - name: a\n    model: m\n", "t.yaml:5: assistants[0].backend: required");
    load_err(BK "assistants:\n  - name: a\n    backend: nope\n    model: m\n",
             "t.yaml:6: assistants[0].backend: unknown backend 'nope'");
    load_err(BK "assistants:\n  - name: a\n    backend: b\n", "assistants[0].model: required");
    load_err(BK "assistants:\n  - name: a\n    backend: b\n    model: m\n    mcp_servers: [x]\n",
             "t.yaml:8: assistants[0].mcp_servers[0]: unknown MCP server 'x'");
    load_err(BK "mcp_servers: {s: {command: x}}\nassistants:\n  - {name: a, backend: b, model: m, mcp_servers: [s, s]}\n",
             "mcp_servers[1]: 's' is listed twice");
    load_err(BK "assistants:\n  - {name: a, backend: b, model: m, max_tool_iterations: 101}\n", "max_tool_iterations: out of range");
    load_err(BK "assistants:\n  - {name: a, backend: b, model: m, max_tool_iterations: 2.5}\n", "must be a whole number");
    load_err(BK "assistants:\n  - {name: a, backend: b, model: m, temperature: 2.5}\n", "temperature: out of range");
    load_err(BK "assistants:\n  - {name: a, backend: b, model: m, top_p: -0.1}\n", "top_p: out of range");
    load_err(BK "assistants:\n  - {name: a, backend: b, model: m, max_tokens: 0}\n", "max_tokens: out of range");
    load_err(BK "assistants:\n  - {name: a, backend: b, model: m, tool_events: 1}\n",
             "assistants[0].tool_events: must be true or false");
    load_err(BK "    tool_images: yes please\n", "t.yaml:4: backends.b.tool_images: must be true or false");
    load_err(BK "assistants:\n  - {name: a, backend: b, model: m, tool_images: 1}\n",
             "assistants[0].tool_images: must be true, false or null");
    load_err(BK "assistants:\n  - {name: a, backend: b, model: m, stream_keepalive_ms: -1}\n",
             "stream_keepalive_ms: out of range: must be from 0 (off) to 600000 ms");
    load_err(BK "assistants:\n  - {name: a, backend: b, model: m, stream_keepalive_ms: 600001}\n",
             "stream_keepalive_ms: out of range");
    load_err(BK "assistants:\n  - {name: a, backend: b, model: m, stream_keepalive_ms: 1.5}\n",
             "stream_keepalive_ms: must be a whole number");
    load_err(BK "assistants:\n  - {name: a, backend: b, model: m, stream_keepalive_ms: fast}\n",
             "stream_keepalive_ms: must be a number");
    load_err(BK "assistants:\n  - {name: a, backend: b, model: m, extra_body: 3}\n", "extra_body: must be a mapping");
    load_err(BK "assistants:\n  - {name: a, backend: b, model: m, tools: []}\n", "assistants[0].tools: must be a mapping");
    load_err(BK "assistants:\n  - {name: a, backend: b, model: m, toolz: {}}\n", "assistants[0].toolz: unknown field");
    /* tool selection and the cap (shared/toolsel.h) */
    load_err(BK "assistants:\n  - name: a\n    backend: b\n    model: m\n    tools:\n      allow: [1]\n",
             "t.yaml:9: assistants[0].tools.allow[0]: must be a string");
    load_err(BK "assistants:\n  - {name: a, backend: b, model: m, tools: {allow: 'demo__*'}}\n",
             "assistants[0].tools.allow: must be a list of globs");
    load_err(BK "assistants:\n  - {name: a, backend: b, model: m, tools: {deny: [{x: 1}]}}\n",
             "assistants[0].tools.deny[0]: must be a string");
    load_err(BK "assistants:\n  - {name: a, backend: b, model: m, tools: {deny: ['']}}\n",
             "assistants[0].tools.deny[0]: must be 1 to 256 characters");
    load_err(BK "assistants:\n  - {name: a, backend: b, model: m, tools: {only: []}}\n",
             "assistants[0].tools.only: unknown field (allowed: allow, deny)");
    load_err(BK "assistants:\n  - {name: a, backend: b, model: m, max_tools: 0}\n",
             "assistants[0].max_tools: out of range: must be from 1 to 10000");
    load_err(BK "assistants:\n  - {name: a, backend: b, model: m, max_tools: many}\n",
             "assistants[0].max_tools: must be a number");
    load_err(BK "assistants:\n  - {name: 'a b', backend: b, model: m}\n", "not a valid assistant name");
    load_err(BK "assistants:\n  x: {name: y, backend: b, model: m}\n", "assistants.x.name: does not match");
    load_err(BK "assistants:\n  - name: a\n    backend: b\n    model: m\n  - name: a\n    backend: b\n    model: m\n",
             "t.yaml:8: assistants[1].name: duplicate assistant name 'a' (also at line 5)");
    load_err("backends:\n  b: {kind: openai}\n  b: {kind: openai}\n", "t.yaml:3: backends.b: duplicate key 'b' (first at line 2)");
    load_err("proxy_api_keys: key\n", "proxy_api_keys: must be a list");
    load_err("proxy_api_keys: [[1]]\n", "proxy_api_keys[0]: must be a string");
    load_err("apiman: {mode: magic}\n", "t.yaml:1: apiman.mode: must be gateway_probe or trusted_header");
    load_err("apiman: {enabled: true}\n", "apiman.mode: required");
    load_err("apiman:\n  mode: gateway_probe\n  probe_api: o/a/v\n", "apiman.gateway_url: required");
    load_err("apiman:\n  mode: gateway_probe\n  gateway_url: http://g\n  probe_api: o/a\n", "t.yaml:4: apiman.probe_api: required for mode gateway_probe, of the form");
    load_err("apiman: {mode: trusted_header, header: X-U}\n", "apiman.secret: required");
    load_err("apiman: {mode: trusted_header, secret: s}\n", "apiman.header: required");
    load_err("apiman: {mode: trusted_header, header: h, secret: s, extra: 1}\n", "apiman.extra: unknown field");
    load_err("apiman: {mode: trusted_header, header: h, secret: s, enabled: maybe}\n", "apiman.enabled: must be true or false");
    /* issue 18: the Apiman plan settings (docs/keys.md) */
    load_err("apiman: {mode: trusted_header, header: h, secret: s, plan: ../x}\n", "apiman.plan: must be a plan name");
    load_err("apiman: {mode: trusted_header, header: h, secret: s, plan: 3}\n", "apiman.plan: must be a string");
    load_err("apiman: {mode: trusted_header, header: h, secret: s, plan_header: 'X: y'}\n", "apiman.plan_header: must be a header name");
    load_err("apiman:\n  mode: gateway_probe\n  gateway_url: http://g\n  probe_api: o/a/v\n  plan_header: X-Plan\n",
             "apiman.plan_header: only for mode trusted_header");
    load_err("apiman:\n  mode: gateway_probe\n  gateway_url: http://g\n  probe_api: o/a/v\n  client_header: X-C\n",
             "apiman.client_header: only for mode trusted_header");
    load_err("backends:\n  b: &x {kind: openai}\n  c: *x\n", "aliases");
    load_err("a: b\n---\nc: d\n", "more than one YAML document");
    load_err("backends:\n  b: {kind: openai\n", "t.yaml:3:1: YAML syntax error");
    load_err("backends:\n  [a]: 1\n", "mapping keys");
}

static void test_apiman_ok(void **state)
{
    json_object *d;
    (void)state;
    d = load_ok("apiman:\n  mode: gateway_probe\n  gateway_url: https://gw\n  probe_api: org/api/1.0\n");
    assert_string_equal(str_at(d, "settings", "apiman", "api_key_header"), "X-API-Key");
    assert_string_equal(str_at(d, "settings", "apiman", "probe_path"), "");
    assert_int_equal(json_object_get_int(at(d, "settings", "apiman", "timeout")), 5);
    assert_int_equal(json_object_get_int(at(d, "settings", "apiman", "cache_ttl")), 60);
    assert_true(json_object_get_boolean(at(d, "settings", "apiman", "enabled")));
    json_object_put(d);
    d = load_ok("apiman: {mode: trusted_header, header: h, secret: s, plan: basic, "
                "plan_header: X-Apiman-Plan, client_header: X-Apiman-Client}\n");
    assert_string_equal(str_at(d, "settings", "apiman", "plan"), "basic");
    assert_string_equal(str_at(d, "settings", "apiman", "plan_header"), "X-Apiman-Plan");
    json_object_put(d);
    d = load_ok("apiman:\n  mode: gateway_probe\n  gateway_url: https://gw\n  probe_api: org/api/1.0\n"
                "  plan: basic\n");
    assert_string_equal(str_at(d, "settings", "apiman", "plan"), "basic");
    json_object_put(d);
    /* off: requirements of the mode are not enforced */
    d = load_ok("apiman: {mode: trusted_header, enabled: false}\n");
    assert_false(json_object_get_boolean(at(d, "settings", "apiman", "enabled")));
    json_object_put(d);
    d = load_ok("apiman: null\n");
    assert_null(at(d, "settings", "apiman", NULL));
    json_object_put(d);
}

/* ---- the admin API's direct use of the checks ---- */

static void test_check_direct(void **state)
{
    char err[512];
    json_object *doc = json_tokener_parse("{\"backends\":{\"b\":{}},\"mcp_servers\":{}}");
    json_object *o = json_tokener_parse("{\"backend\":\"b\",\"model\":\"m\"}");
    (void)state;
    assert_int_equal(cfg_check_assistant("x", o, doc, err, sizeof err), 0);
    assert_string_equal(json_object_get_string(json_object_object_get(o, "name")), "x");
    json_object_put(o);
    o = json_tokener_parse("{\"backend\":\"zz\",\"model\":\"m\"}");
    assert_int_equal(cfg_check_assistant("x", o, doc, err, sizeof err), -EINVAL);
    assert_string_equal(err, "backend: unknown backend 'zz' (define it under backends first)");
    /* without a doc, cross references are not checked */
    assert_int_equal(cfg_check_assistant("x", o, NULL, err, sizeof err), 0);
    json_object_put(o);
    o = json_tokener_parse("[1]");
    assert_int_equal(cfg_check_backend("b", o, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "must be an object"));
    json_object_put(o);
    assert_int_equal(cfg_check_mcp_server("s", NULL, err, sizeof err), -EINVAL);
    o = json_tokener_parse("{\"_src\":3,\"kind\":\"openai\"}");
    assert_int_equal(cfg_check_backend("b", o, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "_src:"));
    json_object_put(o);
    o = json_tokener_parse("{\"proxy_api_keys\":[\"a\",\"\"],\"apiman\":null}");
    assert_int_equal(cfg_check_settings(o, err, sizeof err), 0);
    assert_int_equal(json_object_array_length(json_object_object_get(o, "proxy_api_keys")), 1);
    json_object_put(o);
    json_object_put(doc);
}

/* One naming rule for every kind: a path segment and a Redis field. */
static void test_names(void **state)
{
    static const char *const good[] = {"a", "A9", "gpt-4o", "gpt-4o.mini_x", "0", "a..b", NULL};
    static const char *const bad[] = {"", ".", "..", ".a", "-a", "_a", "a/b", "a//b", "../x",
                                      "%2E%2E", "a%2Fb", "a b", "a:b", "é", "a\n", NULL};
    char n65[66];
    (void)state;
    for (const char *const *g = good; *g; g++)
        if (!cfg_name_valid(*g))
            fail_msg("'%s' refused", *g);
    for (const char *const *b = bad; *b; b++)
        if (cfg_name_valid(*b))
            fail_msg("'%s' accepted", *b);
    assert_false(cfg_name_valid(NULL));
    memset(n65, 'n', 65);
    n65[65] = '\0';
    assert_false(cfg_name_valid(n65));
    n65[64] = '\0';
    assert_true(cfg_name_valid(n65));
    assert_true(cfg_env_name_valid("_X1"));
    assert_false(cfg_env_name_valid("1X"));
    assert_false(cfg_env_name_valid("A-B"));
    assert_true(cfg_env_is_secret("REDIS_URL"));
    assert_true(cfg_env_is_secret("AIPROXY_ANYTHING"));
    assert_false(cfg_env_is_secret("PATH"));
}

/* proxy_api_keys become "sha256:<hex>"; a hash given as such stays; the
 * literal entries of _src are hashed too; "$$" is the key's "$". */
static void test_settings_keys_hashed(void **state)
{
    char err[256], ha[CFG_KEY_HASH_LEN + 1], hd[CFG_KEY_HASH_LEN + 1];
    json_object *o;
    const char *txt;
    (void)state;
    cfg_key_hash("a", 1, ha);
    cfg_key_hash("x$y", 3, hd);
    assert_true(cfg_key_is_hash(ha));
    assert_false(cfg_key_is_hash("sha256:abc"));
    assert_false(cfg_key_is_hash("SHA256:2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6"));
    o = json_tokener_parse("{\"proxy_api_keys\":[\"a\",\"x$y\"],"
                           "\"_src\":{\"proxy_api_keys\":[\"a\",\"x$$y\",\"${K:-}\"]}}");
    json_object_array_add(json_object_object_get(o, "proxy_api_keys"), json_object_new_string(ha));
    assert_int_equal(cfg_check_settings(o, err, sizeof err), 0);
    json_object *keys = json_object_object_get(o, "proxy_api_keys");
    assert_int_equal(json_object_array_length(keys), 3);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(keys, 0)), ha);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(keys, 1)), hd);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(keys, 2)), ha);
    json_object *refs = json_object_object_get(json_object_object_get(o, "_src"), "proxy_api_keys");
    assert_string_equal(json_object_get_string(json_object_array_get_idx(refs, 0)), ha);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(refs, 1)), hd);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(refs, 2)), "${K:-}");
    txt = json_object_to_json_string(o);
    assert_null(strstr(txt, "\"a\""));
    assert_null(strstr(txt, "x$"));
    /* checking again (the admin path re-validates stored objects) changes nothing */
    json_object *again = NULL;
    assert_int_equal(json_object_deep_copy(o, &again, NULL), 0);
    assert_int_equal(cfg_check_settings(again, err, sizeof err), 0);
    assert_true(json_object_equal(o, again));
    json_object_put(again);
    json_object_put(o);
}

/* ---- round trip ---- */

static const char ROUND[] =
    "backends:\n"
    "  openai:\n    kind: openai\n    base_url: ${CFGT_BASE:-https://api.openai.com/v1}\n"
    "    api_key: ${CFGT_KEY}\n    default_headers: {Authorization: \"Bearer ${CFGT_KEY}\", X: y}\n"
    "    timeout: ${CFGT_T:-30}\n"
    "mcp_servers:\n  demo:\n    command: ${CFGT_HOME:-.}/bin/demo\n    args: [\"--x\", \"${CFGT_KEY}\"]\n"
    "    env: {K: \"${CFGT_KEY}\", N: 1}\n    inherit_env: [GIT_SSH, LC_ALL]\n    description: \"quote \\\" and \\\\ and \\n and $$\"\n"
    "assistants:\n  - name: a.b_c-9\n    backend: openai\n    model: m\n    temperature: 0.7\n"
    "    extra_body: {reasoning: {effort: low}, list: [1, 2], \"we ird\": true}\n"
    "proxy_api_keys: [\"${CFGT_PK:-}\", plain]\n"
    "apiman: {mode: trusted_header, header: X-T, secret: \"${CFGT_KEY}\"}\n";

static void test_round_trip(void **state)
{
    json_object *d1, *d2;
    char *y, err[1024] = "";
    (void)state;
    setenv("CFGT_KEY", "sek-123", 1);
    unsetenv("CFGT_BASE");
    unsetenv("CFGT_T");
    unsetenv("CFGT_HOME");
    unsetenv("CFGT_PK");
    d1 = load_ok(ROUND);
    assert_string_equal(str_at(d1, "mcp_servers", "demo", "description"), "quote \" and \\ and \n and $");
    y = cfg_dump_yaml(d1);
    assert_non_null(y);
    /* the references are written back, never the secret */
    assert_null(strstr(y, "sek-123"));
    assert_non_null(strstr(y, "${CFGT_KEY}"));
    assert_non_null(strstr(y, "timeout: ${CFGT_T:-30}"));
    assert_non_null(strstr(y, "\"${CFGT_PK:-}\""));
    assert_null(strstr(y, "plain")); /* a literal key is written as its hash */
    assert_non_null(strstr(y, "inherit_env:"));
    assert_int_equal(cfg_load_yaml(y, strlen(y), "dump", &d2, err, sizeof err), 0);
    if (!json_object_equal(d1, d2))
        fail_msg("round trip differs:\n%s\n---\n%s\n---\n%s", y,
                 json_object_to_json_string(d1), json_object_to_json_string(d2));
    json_object_put(d2);
    /* a different environment on reload gives the new values */
    setenv("CFGT_KEY", "other", 1);
    assert_int_equal(cfg_load_yaml(y, strlen(y), "dump", &d2, err, sizeof err), 0);
    assert_string_equal(str_at(d2, "backends", "openai", "api_key"), "other");
    json_object_put(d2);
    free(y);
    json_object_put(d1);
}

/* ---- files and hostile input ---- */

static void test_file(void **state)
{
    char path[] = "/tmp/aiproxy-test-cfg-XXXXXX", err[1024];
    json_object *d = NULL;
    int fd;
    (void)state;
    assert_int_equal(cfg_load_file("/nonexistent/aiproxy.yaml", &d, err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/aiproxy.yaml: cannot open"));
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, BK "    bad: 1\n", strlen(BK) + 11), (ssize_t)strlen(BK) + 11);
    close(fd);
    assert_int_equal(cfg_load_file(path, &d, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, ":4: backends.b.bad: unknown field"));
    assert_non_null(strstr(err, path));
    unlink(path);
}

static void test_example_config(void **state)
{
    json_object *d = NULL;
    char err[1024] = "";
    (void)state;
    if (access("conf/config.example.yaml", R_OK) != 0)
        skip();
    if (cfg_load_file("conf/config.example.yaml", &d, err, sizeof err) != 0)
        fail_msg("%s", err);
    assert_non_null(at(d, "assistants", "assistant", NULL));
    assert_non_null(at(d, "assistants", "calculator", NULL));
    assert_non_null(at(d, "assistants", "claude", NULL));
    assert_non_null(at(d, "mcp_servers", "demo", NULL));
    json_object_put(d);
}

static void test_truncations_never_crash(void **state)
{
    size_t n, len = strlen(ROUND);
    char *copy;
    (void)state;
    for (n = 0; n <= len; n++) {
        json_object *d = NULL;
        char err[1024];
        copy = malloc(n + 1);
        assert_non_null(copy);
        memcpy(copy, ROUND, n);
        copy[n] = '\0';
        if (cfg_load_yaml(copy, n, "t", &d, err, sizeof err) == 0)
            json_object_put(d);
        else
            assert_true(err[0] != '\0');
        /* and with a byte flipped */
        if (n) {
            copy[n / 2] ^= (char)0x5a;
            d = NULL;
            if (cfg_load_yaml(copy, n, "t", &d, err, sizeof err) == 0)
                json_object_put(d);
        }
        free(copy);
    }
}

static void test_deep_nesting(void **state)
{
    char y[600];
    size_t i;
    (void)state;
    memcpy(y, "assistants: ", 12);
    for (i = 12; i < 12 + 200; i++)
        y[i] = '[';
    y[i] = '\0';
    load_err(y, "nested too deeply");
}

/* The responders' `broker:` section (issue 14): normalised, validated with
 * its line, kept out of the registry (reg_seed reads the three maps and
 * settings only), absent when the file has none. */
static void test_broker_section(void **state)
{
    json_object *doc, *b;

    (void)state;
    doc = load_ok("backends: {}\n");
    assert_null(json_object_object_get(doc, "broker"));
    json_object_put(doc);
    doc = load_ok("broker: {autostart: true}\n");
    b = json_object_object_get(doc, "broker");
    assert_non_null(b);
    assert_string_equal(json_object_to_json_string_ext(b, JSON_C_TO_STRING_PLAIN),
                        "{\"autostart\":true,\"command\":\"\",\"args\":[],\"log\":\"\","
                        "\"idle_exit_s\":0,\"start_timeout\":10}");
    assert_null(json_object_object_get(json_object_object_get(doc, "settings"), "broker"));
    json_object_put(doc);
    setenv("CFGT_AUTOSTART", "false", 1);
    doc = load_ok("broker:\n  autostart: ${CFGT_AUTOSTART:-true}\n  command: /opt/b\n"
                  "  args: [-c, /etc/a.yaml]\n  idle_exit_s: 600\n");
    b = json_object_object_get(doc, "broker");
    assert_false(json_object_get_boolean(json_object_object_get(b, "autostart")));
    assert_int_equal(json_object_get_int(json_object_object_get(b, "idle_exit_s")), 600);
    assert_string_equal(json_object_get_string(json_object_array_get_idx(
                            json_object_object_get(b, "args"), 1)), "/etc/a.yaml");
    json_object_put(doc);
    unsetenv("CFGT_AUTOSTART");
    load_err("backends: {}\nbroker:\n  autostart: yes please\n",
             "t.yaml:3: broker.autostart: must be true or false");
    load_err("broker:\n  idle_exit_s: -1\n", "t.yaml:2: broker.idle_exit_s: out of range");
    load_err("broker:\n  start_timeout: 0\n", "broker.start_timeout: out of range");
    load_err("broker:\n  autostrat: true\n", "t.yaml:2: broker.autostrat: unknown field");
    load_err("broker: [1]\n", "broker: must be an object");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_expand),
        cmocka_unit_test(test_env_types_and_src),
        cmocka_unit_test(test_key_dollar_literal_round_trip),
        cmocka_unit_test(test_long_key_round_trip),
        cmocka_unit_test(test_env_keeps_case),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_tool_selection_kept),
        cmocka_unit_test(test_forms),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_apiman_ok),
        cmocka_unit_test(test_check_direct),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_settings_keys_hashed),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_env_null_text_round_trip),
        cmocka_unit_test(test_floats_stay_json),
        cmocka_unit_test(test_dump_whole_double),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_example_config),
        cmocka_unit_test(test_truncations_never_crash),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_broker_section),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
