/* Unit tests for shared/toolsel: allow/deny filtering over <server>__<tool>
 * names, the cap (max_tools, AIPROXY_MAX_TOOLS, 128) and the counting that
 * the config loader, the admin API and the request builder share. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "shared/toolsel.h"

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

static void no_lists_allow_everything(void **state)
{
    json_object *a = J("{\"model\":\"m\"}"), *b = J("{\"tools\":{\"allow\":null,\"deny\":[]}}");
    (void)state;
    assert_true(tsel_allowed(a, "demo", "add"));
    assert_true(tsel_allowed(b, "demo", "add"));
    json_object_put(a);
    json_object_put(b);
}

static void allow_and_deny_match_raw_server_tool_names(void **state)
{
    json_object *a = J("{\"tools\":{\"allow\":[\"demo__*\",\"calc__add\"],"
                       "\"deny\":[\"demo__sleep*\"]}}");
    (void)state;
    assert_true(tsel_allowed(a, "demo", "echo"));
    assert_true(tsel_allowed(a, "calc", "add"));
    assert_false(tsel_allowed(a, "calc", "sub"));        /* not on the allow-list */
    assert_false(tsel_allowed(a, "demo", "sleep"));      /* deny wins over allow */
    assert_false(tsel_allowed(a, "demo", "sleep_long"));
    assert_int_equal(tsel_why(a, "demo", "sleep"), TSEL_DENIED);
    assert_int_equal(tsel_why(a, "calc", "sub"), TSEL_NOT_ALLOWED);
    assert_int_equal(tsel_why(a, "demo", "echo"), TSEL_OFFERED);
    /* the raw name, not the model's: a '.' is not turned into '_' first */
    json_object_put(a);
    a = J("{\"tools\":{\"allow\":[\"fs__read.file\"]}}");
    assert_true(tsel_allowed(a, "fs", "read.file"));
    assert_false(tsel_allowed(a, "fs", "read_file"));
    json_object_put(a);
}

static void empty_allow_list_allows_nothing(void **state)
{
    json_object *a = J("{\"tools\":{\"allow\":[]}}");
    (void)state;
    assert_false(tsel_allowed(a, "demo", "add"));
    json_object_put(a);
}

static void deny_alone_removes_only_what_it_names(void **state)
{
    json_object *a = J("{\"tools\":{\"deny\":[\"*__delete_*\"]}}");
    (void)state;
    assert_false(tsel_allowed(a, "fs", "delete_file"));
    assert_true(tsel_allowed(a, "fs", "read_file"));
    json_object_put(a);
}

static void long_tool_names_match_whole(void **state)
{
    char tool[600], glob[64];
    json_object *a;
    (void)state;
    memset(tool, 'x', sizeof tool - 2);
    tool[sizeof tool - 2] = 'Z';
    tool[sizeof tool - 1] = '\0';
    snprintf(glob, sizeof glob, "{\"tools\":{\"allow\":[\"s__*Z\"]}}");
    a = J(glob);
    assert_true(tsel_allowed(a, "s", tool));
    tool[sizeof tool - 2] = 'Y';
    assert_false(tsel_allowed(a, "s", tool));
    json_object_put(a);
}

static void cap_from_assistant_env_or_default(void **state)
{
    json_object *a = J("{}"), *b = J("{\"max_tools\":5}"), *c = J("{\"max_tools\":null}");
    (void)state;
    unsetenv(TSEL_CAP_ENV);
    assert_int_equal(tsel_global_cap(), 128);
    assert_int_equal(tsel_cap(a), 128);
    assert_int_equal(tsel_cap(b), 5);
    assert_int_equal(tsel_cap(c), 128);
    setenv(TSEL_CAP_ENV, "40", 1);
    assert_int_equal(tsel_cap(a), 40);
    assert_int_equal(tsel_cap(b), 5);           /* the assistant's own wins */
    setenv(TSEL_CAP_ENV, "0", 1);
    assert_int_equal(tsel_global_cap(), 128);   /* out of range: the default */
    setenv(TSEL_CAP_ENV, "12x", 1);
    assert_int_equal(tsel_global_cap(), 128);
    unsetenv(TSEL_CAP_ENV);
    json_object_put(a);
    json_object_put(b);
    json_object_put(c);
}

/* Issue 15 item 2: a tool whose execution.taskSupport is "required" runs
 * only as an MCP task: never offered, never counted, with a reason. */
static void task_only_tools_are_not_offered(void **state)
{
    json_object *a = J("{}"), *cat = J("[{\"name\":\"research\",\"execution\":{\"taskSupport\":"
                                      "\"required\"}},{\"name\":\"opt\",\"execution\":"
                                      "{\"taskSupport\":\"optional\"}},{\"name\":\"plain\"},"
                                      "{\"name\":\"odd\",\"execution\":\"required\"}]");
    tsel_tally_t t;
    (void)state;
    assert_non_null(tsel_unofferable(json_object_array_get_idx(cat, 0)));
    assert_non_null(strstr(tsel_unofferable(json_object_array_get_idx(cat, 0)), "task"));
    assert_null(tsel_unofferable(json_object_array_get_idx(cat, 1)));
    assert_null(tsel_unofferable(json_object_array_get_idx(cat, 3)));
    assert_int_equal(tsel_why_tool(a, "ev", json_object_array_get_idx(cat, 0)), TSEL_TASK_REQUIRED);
    assert_int_equal(tsel_why_tool(a, "ev", json_object_array_get_idx(cat, 1)), TSEL_OFFERED);
    tsel_tally_init(&t);
    assert_int_equal(tsel_tally_add(&t, a, "ev", cat), 3);
    json_object_put(a);
    json_object_put(cat);
}

static void tally_counts_offered_named_tools(void **state)
{
    json_object *a = J("{\"tools\":{\"deny\":[\"big__t1*\"]}}"), *big = catalog(129),
                *odd = J("[{\"name\":\"x\"},{\"description\":\"nameless\"},{\"name\":\"\"},7,"
                        "{\"name\":5}]");
    tsel_tally_t t;
    char msg[1024];
    (void)state;
    tsel_tally_init(&t);
    /* t1, t10..t19, t100..t128: 1 + 10 + 29 = 40 denied */
    assert_int_equal(tsel_tally_add(&t, a, "big", big), 89);
    /* counted as the request builder offers them: a number is a name, none is not */
    assert_int_equal(tsel_tally_add(&t, a, "odd", odd), 2);
    assert_int_equal(tsel_tally_add(&t, a, "none", NULL), 0);
    assert_int_equal(t.total, 91);
    assert_string_equal(t.detail, "big: 89, odd: 2, none: 0");
    tsel_over_msg(&t, "helper", 0, 64, msg, sizeof msg);
    assert_non_null(strstr(msg, "assistant 'helper' offers 91 tools"));
    assert_non_null(strstr(msg, "64"));
    assert_non_null(strstr(msg, "tools.allow"));
    tsel_over_msg(&t, "helper", 50, 128, msg, sizeof msg);
    assert_non_null(strstr(msg, "offers 141 tools"));
    assert_non_null(strstr(msg, "50 sent by the client"));
    assert_non_null(strstr(msg, "send at most 37 tools"));
    json_object_put(a);
    json_object_put(big);
    json_object_put(odd);
}

static void tally_detail_is_capped(void **state)
{
    json_object *a = J("{}"), *one = catalog(1);
    tsel_tally_t t;
    char server[64];
    (void)state;
    tsel_tally_init(&t);
    for (int i = 0; i < 100; i++) {
        snprintf(server, sizeof server, "server-with-a-long-name-%d", i);
        tsel_tally_add(&t, a, server, one);
    }
    assert_int_equal(t.total, 100);
    assert_true(strlen(t.detail) < sizeof t.detail);
    assert_non_null(strstr(t.detail, "..."));
    json_object_put(a);
    json_object_put(one);
}

static void uses_mcp_needs_servers_and_rounds(void **state)
{
    json_object *a = J("{\"mcp_servers\":[\"d\"],\"max_tool_iterations\":8}"),
                *b = J("{\"mcp_servers\":[\"d\"],\"max_tool_iterations\":0}"),
                *c = J("{\"mcp_servers\":[]}");
    (void)state;
    assert_true(tsel_uses_mcp(a));
    assert_false(tsel_uses_mcp(b));
    assert_false(tsel_uses_mcp(c));
    json_object_put(a);
    json_object_put(b);
    json_object_put(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(no_lists_allow_everything),
        cmocka_unit_test(allow_and_deny_match_raw_server_tool_names),
        cmocka_unit_test(empty_allow_list_allows_nothing),
        cmocka_unit_test(deny_alone_removes_only_what_it_names),
        cmocka_unit_test(long_tool_names_match_whole),
        cmocka_unit_test(cap_from_assistant_env_or_default),
        cmocka_unit_test(tally_counts_offered_named_tools),
        cmocka_unit_test(task_only_tools_are_not_offered),
        cmocka_unit_test(tally_detail_is_capped),
        cmocka_unit_test(uses_mcp_needs_servers_and_rounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
