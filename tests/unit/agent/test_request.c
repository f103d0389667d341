/* Unit tests for agent/request: the canonical upstream request built from an
 * assistant, a client body and MCP catalogs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agent/request.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_object *J(const char *s)
{
    json_object *o = json_tokener_parse(s);
    assert_non_null(o);
    return o;
}

static json_object *get(json_object *o, const char *path)
{
    char key[64];
    const char *dot;
    while (o && *path) {
        dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        snprintf(key, sizeof(key), "%.*s", (int)n, path);
        if (json_object_is_type(o, json_type_array))
            o = json_object_array_get_idx(o, (size_t)strtol(key, NULL, 10));
        else if (!json_object_object_get_ex(o, key, &o))
            return NULL;
        path += n + (dot ? 1 : 0);
    }
    return o;
}

static const char *jget(json_object *o, const char *path)
{
    json_object *v = get(o, path);
    return v ? json_object_get_string(v) : NULL;
}

static json_object *build(const char *assistant, const char *body, const rq_catalog_t *cats,
                          size_t ncats, int stream, tn_map_t **mapout)
{
    json_object *a = J(assistant), *b = J(body), *out = NULL;
    tn_map_t *map = tn_new();
    aip_err_t err;
    assert_int_equal(rq_build("a1", a, b, cats, ncats, map, stream, &out, &err), 0);
    json_object_put(a);
    json_object_put(b);
    if (mapout)
        *mapout = map;
    else
        tn_free(map);
    return out;
}

static void system_prompt_prepended(void **state)
{
    json_object *r;
    (void)state;
    r = build("{\"model\":\"gpt-x\",\"system_prompt\":\"Be brief.\"}",
              "{\"model\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", NULL, 0,
              0, NULL);
    assert_string_equal(jget(r, "model"), "gpt-x");
    assert_int_equal(json_object_array_length(get(r, "messages")), 2);
    assert_string_equal(jget(r, "messages.0.role"), "system");
    assert_string_equal(jget(r, "messages.0.content"), "Be brief.");
    assert_string_equal(jget(r, "messages.1.content"), "hi");
    assert_null(get(r, "stream"));
    assert_null(get(r, "tools"));
    json_object_put(r);
}

static void system_prompt_not_added_over_system_or_developer(void **state)
{
    const char *firsts[] = { "system", "developer" };
    (void)state;
    for (size_t i = 0; i < 2; i++) {
        char body[256];
        json_object *r;
        snprintf(body, sizeof(body),
                 "{\"messages\":[{\"role\":\"%s\",\"content\":\"mine\"},"
                 "{\"role\":\"user\",\"content\":\"hi\"}]}", firsts[i]);
        r = build("{\"model\":\"m\",\"system_prompt\":\"theirs\"}", body, NULL, 0, 0, NULL);
        assert_int_equal(json_object_array_length(get(r, "messages")), 2);
        assert_string_equal(jget(r, "messages.0.content"), "mine");
        json_object_put(r);
    }
}

static void empty_system_prompt_adds_nothing(void **state)
{
    json_object *r;
    (void)state;
    r = build("{\"model\":\"m\",\"system_prompt\":\"\"}",
              "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", NULL, 0, 0, NULL);
    assert_int_equal(json_object_array_length(get(r, "messages")), 1);
    json_object_put(r);
}

static void client_overrides_assistant_defaults(void **state)
{
    json_object *r;
    (void)state;
    r = build("{\"model\":\"m\",\"temperature\":0.2,\"top_p\":0.5,\"max_tokens\":100}",
              "{\"messages\":[],\"temperature\":0.9,\"stop\":[\"x\"],\"seed\":7,"
              "\"response_format\":{\"type\":\"json_object\"},\"user\":\"u1\","
              "\"frequency_penalty\":0.1,\"unknown_field\":1}", NULL, 0, 0, NULL);
    assert_true(json_object_get_double(get(r, "temperature")) > 0.85);
    assert_true(json_object_get_double(get(r, "top_p")) < 0.55);
    assert_int_equal(json_object_get_int(get(r, "max_tokens")), 100);
    assert_string_equal(jget(r, "stop.0"), "x");
    assert_int_equal(json_object_get_int(get(r, "seed")), 7);
    assert_string_equal(jget(r, "response_format.type"), "json_object");
    assert_string_equal(jget(r, "user"), "u1");
    assert_non_null(get(r, "frequency_penalty"));
    assert_null(get(r, "unknown_field"));
    json_object_put(r);
}

static void max_completion_tokens_replaces_default_max_tokens(void **state)
{
    json_object *r;
    (void)state;
    r = build("{\"model\":\"m\",\"max_tokens\":100}",
              "{\"messages\":[],\"max_completion_tokens\":50}", NULL, 0, 0, NULL);
    assert_null(get(r, "max_tokens"));
    assert_int_equal(json_object_get_int(get(r, "max_completion_tokens")), 50);
    json_object_put(r);
}

static void null_assistant_defaults_are_omitted(void **state)
{
    json_object *r;
    (void)state;
    r = build("{\"model\":\"m\",\"temperature\":null}", "{\"messages\":[]}", NULL, 0, 0, NULL);
    assert_null(get(r, "temperature"));
    json_object_put(r);
}

static void extra_body_merged_last(void **state)
{
    json_object *r;
    (void)state;
    r = build("{\"model\":\"m\",\"extra_body\":{\"temperature\":0.0,\"top_k\":5,"
              "\"stream\":true}}",
              "{\"messages\":[],\"temperature\":0.9}", NULL, 0, 0, NULL);
    assert_true(json_object_get_double(get(r, "temperature")) < 0.01);
    assert_int_equal(json_object_get_int(get(r, "top_k")), 5);
    assert_null(get(r, "stream"));   /* streaming is ours to decide */
    json_object_put(r);
}

static void streaming_asks_for_usage(void **state)
{
    json_object *r;
    (void)state;
    r = build("{\"model\":\"m\"}", "{\"messages\":[],\"stream\":true,"
              "\"stream_options\":{\"include_usage\":false}}", NULL, 0, 1, NULL);
    assert_true(json_object_get_boolean(get(r, "stream")));
    assert_true(json_object_get_boolean(get(r, "stream_options.include_usage")));
    json_object_put(r);
}

static void tools_merge_ours_and_the_clients(void **state)
{
    json_object *cat = J("[{\"name\":\"add\",\"description\":\"Adds\","
                         "\"inputSchema\":{\"type\":\"object\",\"properties\":{\"a\":{}}}},"
                         "{\"name\":\"echo\"},{\"description\":\"nameless\"}]");
    rq_catalog_t cats[] = { { "calc", cat, NULL } };
    tn_map_t *map;
    json_object *r;
    const char *sv, *tl;
    (void)state;
    r = build("{\"model\":\"m\"}",
              "{\"messages\":[],\"tool_choice\":\"auto\",\"tools\":[{\"type\":\"function\","
              "\"function\":{\"name\":\"calc__add\",\"parameters\":{}}}]}",
              cats, 1, 0, &map);
    assert_int_equal(json_object_array_length(get(r, "tools")), 3);
    /* ours first, with a hash suffix because the client owns calc__add */
    assert_string_equal(jget(r, "tools.0.type"), "function");
    assert_string_equal(jget(r, "tools.0.function.name"), "calc__add_237879");
    assert_string_equal(jget(r, "tools.0.function.description"), "Adds");
    assert_string_equal(jget(r, "tools.0.function.parameters.type"), "object");
    assert_string_equal(jget(r, "tools.1.function.name"), "calc__echo");
    assert_string_equal(jget(r, "tools.1.function.parameters.type"), "object");
    assert_string_equal(jget(r, "tools.2.function.name"), "calc__add");
    assert_string_equal(jget(r, "tool_choice"), "auto");
    assert_int_equal(tn_lookup(map, "calc__add_237879", &sv, &tl), 0);
    assert_string_equal(tl, "add");
    assert_int_equal(tn_lookup(map, "calc__add", &sv, &tl), -ENOENT);
    rq_drop_tools(r);
    assert_null(get(r, "tools"));
    assert_null(get(r, "tool_choice"));
    tn_free(map);
    json_object_put(r);
    json_object_put(cat);
}

static void tool_choice_dropped_without_tools(void **state)
{
    json_object *r;
    (void)state;
    r = build("{\"model\":\"m\"}", "{\"messages\":[],\"tool_choice\":\"auto\"}", NULL, 0, 0,
              NULL);
    assert_null(get(r, "tool_choice"));
    json_object_put(r);
}

static void bad_inputs_are_refused(void **state)
{
    json_object *a = J("{\"model\":\"m\"}"), *noModel = J("{}"), *b = J("{\"messages\":{}}"),
                *ok = J("{\"messages\":[]}"), *bt = J("{\"messages\":[],\"tools\":{}}"), *out;
    tn_map_t *map = tn_new();
    aip_err_t err;
    (void)state;
    /* the error value says whose fault it is where it is made: the client's
     * field (400, param named) or the assistant's configuration (500), so
     * the agent never sorts them by the message's wording */
    assert_int_equal(rq_build("a1", a, b, NULL, 0, map, 0, &out, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "messages"));
    assert_int_equal(err.status, 400);
    assert_string_equal(err.type, "invalid_request_error");
    assert_string_equal(err.param, "messages");
    assert_null(out);
    assert_int_equal(rq_build("a1", noModel, ok, NULL, 0, map, 0, &out, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "model"));
    assert_int_equal(err.status, 500);
    assert_string_equal(err.code, "assistant_misconfigured");
    assert_non_null(strstr(err.msg, "assistant 'a1'"));
    assert_int_equal(rq_build("a1", a, bt, NULL, 0, map, 0, &out, &err), -EINVAL);
    assert_non_null(strstr(err.msg, "tools"));
    assert_int_equal(err.status, 400);
    assert_string_equal(err.param, "tools");
    tn_free(map);
    json_object_put(a);
    json_object_put(noModel);
    json_object_put(b);
    json_object_put(ok);
    json_object_put(bt);
}

/* A catalog of n tools named t0..t{n-1}. */
static json_object *catalog(int n)
{
    json_object *a = json_object_new_array();
    char name[32];
    for (int i = 0; i < n; i++) {
        json_object *t = json_object_new_object();
        snprintf(name, sizeof name, "t%d", i);
        json_object_object_add(t, "name", json_object_new_string(name));
        json_object_array_add(a, t);
    }
    return a;
}

static void allow_and_deny_filter_the_offered_tools(void **state)
{
    json_object *demo = catalog(3), *calc = J("[{\"name\":\"add\"},{\"name\":\"sub\"}]"), *r;
    rq_catalog_t cats[] = { { "demo", demo, NULL }, { "calc", calc, NULL } };
    tn_map_t *map;
    const char *sv, *tl;
    (void)state;
    r = build("{\"model\":\"m\",\"tools\":{\"allow\":[\"demo__*\",\"calc__add\"],"
              "\"deny\":[\"demo__t1\"]}}",
              "{\"messages\":[]}", cats, 2, 0, &map);
    assert_int_equal(json_object_array_length(get(r, "tools")), 3);
    assert_string_equal(jget(r, "tools.0.function.name"), "demo__t0");
    assert_string_equal(jget(r, "tools.1.function.name"), "demo__t2");
    assert_string_equal(jget(r, "tools.2.function.name"), "calc__add");
    /* what is not offered does not map back: the model cannot call it */
    assert_int_equal(tn_lookup(map, "demo__t1", &sv, &tl), -ENOENT);
    assert_int_equal(tn_lookup(map, "calc__sub", &sv, &tl), -ENOENT);
    tn_free(map);
    json_object_put(r);
    json_object_put(demo);
    json_object_put(calc);
}

/* Issue 18: a key's tool policy narrows what the assistant offers, never
 * widens it (demo__t1 stays denied by the assistant). */
static void a_key_policy_narrows_the_offered_tools(void **state)
{
    json_object *demo = catalog(3), *calc = J("[{\"name\":\"add\"},{\"name\":\"sub\"}]"), *r;
    json_object *pol = J("{\"tools\":{\"allow\":[\"demo__*\",\"calc__*\"],"
                         "\"deny\":[\"demo__t2\",\"calc__add\"]}}");
    rq_catalog_t cats[] = { { "demo", demo, pol }, { "calc", calc, pol } };
    tn_map_t *map;
    const char *sv, *tl;
    (void)state;
    r = build("{\"model\":\"m\",\"tools\":{\"deny\":[\"demo__t1\"]}}",
              "{\"messages\":[]}", cats, 2, 0, &map);
    assert_int_equal(json_object_array_length(get(r, "tools")), 2);
    assert_string_equal(jget(r, "tools.0.function.name"), "demo__t0");
    assert_string_equal(jget(r, "tools.1.function.name"), "calc__sub");
    assert_int_equal(tn_lookup(map, "calc__add", &sv, &tl), -ENOENT);
    tn_free(map);
    json_object_put(r);
    json_object_put(demo);
    json_object_put(calc);
    json_object_put(pol);
}

/* The cap counts what the key is offered: an assistant of 5 tools with
 * max_tools 3 is refused for a key that sees them all, served for a key
 * narrowed to 2. */
static void the_cap_counts_what_the_key_is_offered(void **state)
{
    json_object *demo = catalog(5), *r;
    json_object *pol = J("{\"tools\":{\"allow\":[\"demo__t0\",\"demo__t1\"]}}");
    rq_catalog_t all[] = { { "demo", demo, NULL } }, narrowed[] = { { "demo", demo, pol } };
    json_object *a = J("{\"model\":\"m\",\"max_tools\":3}"), *b = J("{\"messages\":[]}");
    tn_map_t *map = tn_new();
    aip_err_t err;
    (void)state;
    r = NULL;
    assert_int_equal(rq_build("a1", a, b, all, 1, map, 0, &r, &err), -E2BIG);
    assert_null(r);
    assert_int_equal(err.status, 502);
    tn_free(map);
    json_object_put(a);
    json_object_put(b);
    map = NULL;
    r = build("{\"model\":\"m\",\"max_tools\":3}", "{\"messages\":[]}", narrowed, 1, 0, &map);
    assert_non_null(r);
    assert_int_equal(json_object_array_length(get(r, "tools")), 2);
    tn_free(map);
    json_object_put(r);
    json_object_put(demo);
    json_object_put(pol);
}

/* Issue 15 item 2: a task-only tool is not offered (nor counted), a tool
 * with a title and no description gets the title, a tool listed twice is
 * offered once. */
static void tasks_titles_and_repeats(void **state)
{
    json_object *cat = J("[{\"name\":\"research\",\"description\":\"d\","
                         "\"execution\":{\"taskSupport\":\"required\"}},"
                         "{\"name\":\"maybe\",\"execution\":{\"taskSupport\":\"optional\"}},"
                         "{\"name\":\"titled\",\"title\":\"A Title\",\"description\":\"\"},"
                         "{\"name\":\"both\",\"title\":\"T\",\"description\":\"D\"},"
                         "{\"name\":\"maybe\"}]"), *r;
    rq_catalog_t cats[] = { { "ev", cat, NULL } };
    tn_map_t *map;
    const char *sv, *tl;
    (void)state;
    r = build("{\"model\":\"m\",\"max_tools\":4}", "{\"messages\":[]}", cats, 1, 0, &map);
    assert_non_null(r);
    assert_int_equal(json_object_array_length(get(r, "tools")), 3);
    assert_string_equal(jget(r, "tools.0.function.name"), "ev__maybe");
    assert_null(get(r, "tools.0.function.description"));
    assert_string_equal(jget(r, "tools.1.function.name"), "ev__titled");
    assert_string_equal(jget(r, "tools.1.function.description"), "A Title");
    assert_string_equal(jget(r, "tools.2.function.description"), "D");
    assert_int_equal(tn_lookup(map, "ev__research", &sv, &tl), -ENOENT);
    tn_free(map);
    json_object_put(r);
    json_object_put(cat);
}

static void tool_cap_refuses_the_assistant_or_the_client(void **state)
{
    json_object *big = catalog(129), *small = catalog(120), *out = NULL, *r;
    json_object *a = J("{\"model\":\"m\"}"), *a5 = J("{\"model\":\"m\",\"max_tools\":5}"),
                *allow = J("{\"model\":\"m\",\"tools\":{\"allow\":[\"big__t1*\"]}}"),
                *b = J("{\"messages\":[]}"), *b10;
    rq_catalog_t cbig[] = { { "big", big, NULL } }, csmall[] = { { "small", small, NULL } };
    tn_map_t *map = tn_new();
    aip_err_t err;
    char body[4096];
    size_t at = 0;
    (void)state;
    /* 129 tools from one server: the assistant's fault, named with the fix */
    assert_int_equal(rq_build("helper", a, b, cbig, 1, map, 0, &out, &err), -E2BIG);
    assert_null(out);
    assert_int_equal(err.status, 502);
    assert_string_equal(err.code, "too_many_tools");
    assert_non_null(strstr(err.msg, "assistant 'helper' offers 129 tools"));
    assert_non_null(strstr(err.msg, "big: 129"));
    assert_non_null(strstr(err.msg, "tools.allow"));
    tn_free(map);
    /* an allow-list brings it under: t1, t10..t19, t100..t128 = 40 */
    map = tn_new();
    assert_int_equal(rq_build("helper", allow, b, cbig, 1, map, 0, &out, &err), 0);
    assert_int_equal(json_object_array_length(get(out, "tools")), 40);
    json_object_put(out);
    tn_free(map);
    /* the assistant's own max_tools */
    map = tn_new();
    assert_int_equal(rq_build("helper", a5, b, csmall, 1, map, 0, &out, &err), -E2BIG);
    assert_non_null(strstr(err.msg, "more than the 5"));
    tn_free(map);
    /* 120 of ours and 10 of the client's: the client's fault, param tools */
    at += (size_t)snprintf(body + at, sizeof body - at, "{\"messages\":[],\"tools\":[");
    for (int i = 0; i < 10; i++)
        at += (size_t)snprintf(body + at, sizeof body - at,
                               "%s{\"type\":\"function\",\"function\":{\"name\":\"c%d\"}}",
                               i ? "," : "", i);
    snprintf(body + at, sizeof body - at, "]}");
    b10 = J(body);
    map = tn_new();
    assert_int_equal(rq_build("helper", a, b10, csmall, 1, map, 0, &out, &err), -E2BIG);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.type, "invalid_request_error");
    assert_string_equal(err.param, "tools");
    assert_string_equal(err.code, "too_many_tools");
    assert_non_null(strstr(err.msg, "offers 130 tools"));
    assert_non_null(strstr(err.msg, "send at most 8 tools"));
    tn_free(map);
    /* exactly at the cap is fine */
    map = tn_new();
    r = NULL;
    assert_int_equal(rq_build("helper", a, b, csmall, 1, map, 0, &r, &err), 0);
    assert_int_equal(json_object_array_length(get(r, "tools")), 120);
    json_object_put(r);
    tn_free(map);
    json_object_put(big);
    json_object_put(small);
    json_object_put(a);
    json_object_put(a5);
    json_object_put(allow);
    json_object_put(b);
    json_object_put(b10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(system_prompt_prepended),
        cmocka_unit_test(system_prompt_not_added_over_system_or_developer),
        cmocka_unit_test(empty_system_prompt_adds_nothing),
        cmocka_unit_test(client_overrides_assistant_defaults),
        cmocka_unit_test(max_completion_tokens_replaces_default_max_tokens),
        cmocka_unit_test(null_assistant_defaults_are_omitted),
        cmocka_unit_test(extra_body_merged_last),
        cmocka_unit_test(streaming_asks_for_usage),
        cmocka_unit_test(tools_merge_ours_and_the_clients),
        cmocka_unit_test(tool_choice_dropped_without_tools),
        cmocka_unit_test(bad_inputs_are_refused),
        cmocka_unit_test(allow_and_deny_filter_the_offered_tools),
        cmocka_unit_test(a_key_policy_narrows_the_offered_tools),
        cmocka_unit_test(the_cap_counts_what_the_key_is_offered),
        cmocka_unit_test(tool_cap_refuses_the_assistant_or_the_client),
        cmocka_unit_test(tasks_titles_and_repeats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
