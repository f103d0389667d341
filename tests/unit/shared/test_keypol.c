/* Unit tests for shared/keypol: secrets and ids, policy validation, the
 * plan+key merge, the visibility checks and the expiry time parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "shared/keypol.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

static json_object *J(const char *s)
{
    json_object *o = json_tokener_parse(s);
    assert_non_null(o);
    return o;
}

static void secrets_are_prefixed_base64url_and_distinct(void **state)
{
    char a[KEYPOL_SECRET_LEN + 1], b[KEYPOL_SECRET_LEN + 1], d[KEYPOL_DISPLAY_LEN + 1];
    (void)state;
    assert_int_equal(keypol_secret(a), 0);
    assert_int_equal(keypol_secret(b), 0);
    assert_int_equal(strlen(a), 50);
    assert_memory_equal(a, "sk-aip-", 7);
    assert_int_equal(strspn(a + 7, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                   "0123456789-_"), 43);
    assert_string_not_equal(a, b);
    assert_true(keypol_is_secret(a, strlen(a)));
    assert_false(keypol_is_secret("sk-aip-", 7));
    assert_false(keypol_is_secret("sk-other", 8));
    keypol_display(a, d);
    assert_int_equal(strlen(d), 12);
    assert_memory_equal(d, a, 12);
    keypol_display("short", d);
    assert_string_equal(d, "short");
}

static void ids_are_key_and_16_hex(void **state)
{
    char id[KEYPOL_ID_LEN + 1], id2[KEYPOL_ID_LEN + 1];
    (void)state;
    assert_int_equal(keypol_new_id(id), 0);
    assert_int_equal(keypol_new_id(id2), 0);
    assert_true(keypol_id_valid(id));
    assert_string_not_equal(id, id2);
    assert_false(keypol_id_valid("key_0123456789abcde"));
    assert_false(keypol_id_valid("key_0123456789ABCDEF"));
    assert_false(keypol_id_valid("kex_0123456789abcdef"));
    assert_false(keypol_id_valid(NULL));
    assert_true(keypol_id_valid("key_0123456789abcdef"));
}

static void hash_is_sha256_hex(void **state)
{
    char h[KEYPOL_HASH_LEN + 1];
    (void)state;
    keypol_hash("abc", 3, h);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

static void check_accepts_a_full_policy(void **state)
{
    char err[256] = "";
    json_object *p = J("{\"assistants\":[\"demo*\",\"x\"],\"tools\":{\"allow\":[\"demo__*\"],"
                       "\"deny\":[\"demo__rm\"]},\"rpm\":10,\"tpm\":1000,\"max_concurrent\":2,"
                       "\"budget\":{\"tokens_per_day\":5,\"tokens_per_month\":9007199254740992}}");
    json_object *e = J("{}");
    (void)state;
    assert_int_equal(keypol_check(p, err, sizeof err), 0);
    assert_int_equal(keypol_check(e, err, sizeof err), 0);
    json_object_put(p);
    json_object_put(e);
}

/* Each bad policy fails with err naming the field first. */
static void check_refuses_bad_fields_naming_them(void **state)
{
    static const struct {
        const char *json, *field;
    } bad[] = {
        {"[]", "policy:"},
        {"{\"colour\":1}", "colour: unknown field"},
        {"{\"rpm\":-1}", "rpm:"},
        {"{\"rpm\":0}", "rpm:"},
        {"{\"rpm\":1.5}", "rpm:"},
        {"{\"rpm\":\"10\"}", "rpm:"},
        {"{\"tpm\":9007199254740993}", "tpm:"},
        {"{\"assistants\":\"demo\"}", "assistants:"},
        {"{\"assistants\":[1]}", "assistants[0]:"},
        {"{\"assistants\":[\"\"]}", "assistants[0]:"},
        {"{\"tools\":[]}", "tools:"},
        {"{\"tools\":{\"allow\":[\"a\"],\"block\":[]}}", "tools.block: unknown field"},
        {"{\"tools\":{\"deny\":[\"a\",2]}}", "tools.deny[1]:"},
        {"{\"budget\":{\"tokens_per_week\":1}}", "budget.tokens_per_week: unknown"},
        {"{\"budget\":{\"tokens_per_day\":0}}", "budget.tokens_per_day:"},
        {"{\"budget\":3}", "budget:"},
    };
    char err[256];
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_object *p = J(bad[i].json);
        err[0] = '\0';
        assert_int_equal(keypol_check(p, err, sizeof err), -EINVAL);
        if (strncmp(err, bad[i].field, strlen(bad[i].field)) != 0)
            fail_msg("%s: got '%s', want it to start with '%s'", bad[i].json, err, bad[i].field);
        json_object_put(p);
    }
    /* a glob one byte over the cap */
    {
        char g[300];
        char js[400];
        memset(g, 'a', 257);
        g[257] = '\0';
        snprintf(js, sizeof js, "{\"assistants\":[\"%s\"]}", g);
        json_object *p = J(js);
        assert_int_equal(keypol_check(p, err, sizeof err), -EINVAL);
        json_object_put(p);
    }
}

static void merge_puts_key_fields_over_plan_budget_per_field(void **state)
{
    json_object *plan = J("{\"assistants\":[\"*\"],\"rpm\":10,\"tools\":{\"deny\":[\"a__*\"]},"
                          "\"budget\":{\"tokens_per_day\":100,\"tokens_per_month\":1000}}");
    json_object *key = J("{\"rpm\":5,\"tools\":{\"allow\":[\"b__*\"]},"
                         "\"budget\":{\"tokens_per_day\":50}}");
    json_object *m = NULL;
    (void)state;
    assert_int_equal(keypol_merge(plan, key, &m), 0);
    assert_non_null(m);
    assert_string_equal(json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN),
                        "{\"assistants\":[\"*\"],\"rpm\":5,\"tools\":{\"allow\":[\"b__*\"]},"
                        "\"budget\":{\"tokens_per_day\":50,\"tokens_per_month\":1000}}");
    /* the inputs are not changed */
    assert_int_equal(json_object_get_int(json_object_object_get(
                         json_object_object_get(plan, "budget"), "tokens_per_day")), 100);
    json_object_put(m);
    assert_int_equal(keypol_merge(NULL, key, &m), 0);
    assert_non_null(m);
    json_object_put(m);
    json_object_put(plan);
    json_object_put(key);
}

static void merge_of_nothing_is_no_policy(void **state)
{
    json_object *e = J("{}"), *m = (json_object *)1;
    (void)state;
    assert_int_equal(keypol_merge(NULL, NULL, &m), 0);
    assert_null(m);
    assert_int_equal(keypol_merge(e, e, &m), 0);
    assert_null(m);
    json_object_put(e);
}

static void assistants_globs_decide_visibility(void **state)
{
    json_object *p = J("{\"assistants\":[\"demo*\",\"exact\"]}"), *none = J("{\"rpm\":1}");
    json_object *empty = J("{\"assistants\":[]}");
    (void)state;
    assert_true(keypol_assistant_ok(NULL, "anything"));
    assert_true(keypol_assistant_ok(none, "anything"));
    assert_true(keypol_assistant_ok(p, "demo"));
    assert_true(keypol_assistant_ok(p, "demo-2"));
    assert_true(keypol_assistant_ok(p, "exact"));
    assert_false(keypol_assistant_ok(p, "exactly"));
    assert_false(keypol_assistant_ok(p, "other"));
    assert_false(keypol_assistant_ok(empty, "demo"));
    json_object_put(p);
    json_object_put(none);
    json_object_put(empty);
}

static void tools_allow_and_deny_compose_like_toolsel(void **state)
{
    json_object *p = J("{\"tools\":{\"allow\":[\"demo__*\"],\"deny\":[\"demo__rm\"]}}");
    (void)state;
    assert_true(keypol_tool_ok(NULL, "demo", "rm"));
    assert_true(keypol_tool_ok(p, "demo", "add"));
    assert_false(keypol_tool_ok(p, "demo", "rm"));
    assert_false(keypol_tool_ok(p, "calc", "add"));
    json_object_put(p);
}

static void times_are_unix_seconds_or_rfc3339(void **state)
{
    long long t = -1;
    json_object *v;
    (void)state;
    assert_int_equal(keypol_time(NULL, &t), 0);
    assert_int_equal(t, 0);
    v = json_object_new_int64(1800000000);
    assert_int_equal(keypol_time(v, &t), 0);
    assert_int_equal(t, 1800000000);
    json_object_put(v);
    v = json_object_new_string("2027-01-31T12:00:00Z");
    assert_int_equal(keypol_time(v, &t), 0);
    assert_int_equal(t, 1801396800);
    json_object_put(v);
    v = json_object_new_string("2027-01-31T14:00:00.250+02:00");
    assert_int_equal(keypol_time(v, &t), 0);
    assert_int_equal(t, 1801396800);
    json_object_put(v);
    static const char *const bad[] = {"tomorrow", "2027-02-30T00:00:00Z", "2027-01-31T12:00:00",
                                      "2027-01-31", "2027-01-31T25:00:00Z",
                                      "2027-01-31T12:00:00+2", "2027-01-31T12:00:00Zjunk"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = json_object_new_string(bad[i]);
        if (keypol_time(v, &t) != -EINVAL)
            fail_msg("'%s' parsed", bad[i]);
        json_object_put(v);
    }
    v = json_object_new_int64(-5);
    assert_int_equal(keypol_time(v, &t), -EINVAL);
    json_object_put(v);
    v = json_object_new_double(1.5);
    assert_int_equal(keypol_time(v, &t), -EINVAL);
    json_object_put(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(secrets_are_prefixed_base64url_and_distinct),
        cmocka_unit_test(ids_are_key_and_16_hex),
        cmocka_unit_test(hash_is_sha256_hex),
        cmocka_unit_test(check_accepts_a_full_policy),
        cmocka_unit_test(check_refuses_bad_fields_naming_them),
        cmocka_unit_test(merge_puts_key_fields_over_plan_budget_per_field),
        cmocka_unit_test(merge_of_nothing_is_no_policy),
        cmocka_unit_test(assistants_globs_decide_visibility),
        cmocka_unit_test(tools_allow_and_deny_compose_like_toolsel),
        cmocka_unit_test(times_are_unix_seconds_or_rfc3339),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
