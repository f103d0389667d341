/* Unit tests for fcgi/admin/admin_keydoc: a managed key's POST/PATCH body
 * to HSET pairs (with the field at fault on a refusal), and its stored hash
 * to the admin's view (never the secret's hash). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fcgi/admin/admin_keydoc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static json_object *J(const char *s)
{
    json_object *o = json_tokener_parse(s);
    assert_non_null(o);
    return o;
}

/* The value of `field` among the pairs argv[0..n). */
static const char *pair(const char **argv, int n, const char *field)
{
    for (int i = 0; i + 1 < n; i += 2)
        if (strcmp(argv[i], field) == 0)
            return argv[i + 1];
    return NULL;
}

static void a_full_body_becomes_pairs(void **state)
{
    arena_t *a = arena_new(4096);
    const char *argv[ADMIN_KEYDOC_ARGS], *param = NULL;
    char err[256];
    int n = 0;
    json_object *b = J("{\"name\":\"n\",\"owner\":null,\"plan\":\"gold\","
                       "\"expires_at\":\"2099-01-01T00:00:00Z\",\"policy\":{\"rpm\":5}}");
    (void)state;
    assert_int_equal(admin_keydoc_fields(b, 1, a, argv, &n, err, sizeof err, &param), 0);
    assert_int_equal(n, 10);
    assert_string_equal(pair(argv, n, "name"), "n");
    assert_string_equal(pair(argv, n, "owner"), "");
    assert_string_equal(pair(argv, n, "plan"), "gold");
    assert_string_equal(pair(argv, n, "expires_at"), "4070908800");
    assert_string_equal(pair(argv, n, "policy"), "{\"rpm\":5}");
    json_object_put(b);
    /* PATCH: only what is given; null clears */
    n = 0;
    b = J("{\"policy\":null,\"expires_at\":null}");
    assert_int_equal(admin_keydoc_fields(b, 0, a, argv, &n, err, sizeof err, &param), 0);
    assert_int_equal(n, 4);
    assert_string_equal(pair(argv, n, "policy"), "{}");
    assert_string_equal(pair(argv, n, "expires_at"), "0");
    json_object_put(b);
    arena_free(a);
}

static void bad_bodies_name_the_field(void **state)
{
    static const struct {
        const char *json, *param;
        int create;
    } bad[] = {
        {"{}", "name", 1},
        {"{\"name\":null}", "name", 0},
        {"{\"name\":7}", "name", 1},
        {"{\"name\":\"x\",\"owner\":5}", "owner", 1},
        {"{\"name\":\"x\",\"plan\":\"a/b\"}", "plan", 1},
        {"{\"name\":\"x\",\"expires_at\":1}", "expires_at", 1},
        {"{\"name\":\"x\",\"expires_at\":\"soon\"}", "expires_at", 1},
        {"{\"name\":\"x\",\"policy\":{\"tpm\":0}}", "policy.tpm", 1},
        {"{\"name\":\"x\",\"policy\":{\"tools\":{\"allow\":[3]}}}", "policy.tools.allow[0]", 1},
        {"{\"name\":\"x\",\"policy\":[]}", "policy", 1},
        {"{\"name\":\"x\",\"secret\":\"mine\"}", "secret", 1},
    };
    arena_t *a = arena_new(4096);
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *argv[ADMIN_KEYDOC_ARGS], *param = NULL;
        char err[256] = "";
        int n = 0;
        json_object *b = J(bad[i].json);
        assert_int_equal(admin_keydoc_fields(b, bad[i].create, a, argv, &n, err, sizeof err,
                                             &param), -EINVAL);
        if (!param || strcmp(param, bad[i].param) != 0)
            fail_msg("%s: param %s, want %s (%s)", bad[i].json, param ? param : "NULL",
                     bad[i].param, err);
        assert_true(strlen(err) > 0);
        json_object_put(b);
    }
    arena_free(a);
}

/* A HGETALL reply built by hand. */
static redisReply *hgetall(const char *const *kv, size_t n)
{
    redisReply *r = calloc(1, sizeof *r);
    r->type = REDIS_REPLY_ARRAY;
    r->elements = n;
    r->element = calloc(n, sizeof *r->element);
    for (size_t i = 0; i < n; i++) {
        redisReply *e = calloc(1, sizeof *e);
        e->type = REDIS_REPLY_STRING;
        e->str = strdup(kv[i]);
        e->len = strlen(kv[i]);
        r->element[i] = e;
    }
    return r;
}

static void the_view_hides_hashes_and_merges_the_plan(void **state)
{
    static const char *const kv[] = {
        "name", "n", "owner", "", "plan", "gold", "policy", "{\"rpm\":5}",
        "created_at", "100", "expires_at", "0", "revoked_at", "200", "display", "sk-aip-abcde",
        "hash", "ffff", "old_hashes", "eeee",
    };
    redisReply *h = hgetall(kv, sizeof kv / sizeof kv[0]);
    json_object *plan = J("{\"rpm\":50,\"assistants\":[\"a*\"]}");
    json_object *v = admin_keydoc_view("key_0123456789abcdef", h, 1, plan);
    const char *s;
    (void)state;
    assert_non_null(v);
    s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
    assert_null(strstr(s, "ffff"));
    assert_null(strstr(s, "eeee"));
    assert_string_equal(s, "{\"id\":\"key_0123456789abcdef\",\"object\":\"api_key\",\"name\":\"n\","
                           "\"owner\":null,\"plan\":\"gold\",\"display\":\"sk-aip-abcde\","
                           "\"created_at\":100,\"expires_at\":null,\"revoked_at\":200,"
                           "\"revoked\":true,\"effective_policy\":{\"rpm\":5,\"assistants\":[\"a*\"]},"
                           "\"policy\":{\"rpm\":5}}");
    assert_string_equal(admin_keydoc_field(h, "plan"), "gold");
    assert_null(admin_keydoc_field(h, "nope"));
    json_object_put(v);
    json_object_put(plan);
    freeReplyObject(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_full_body_becomes_pairs),
        cmocka_unit_test(bad_bodies_name_the_field),
        cmocka_unit_test(the_view_hides_hashes_and_merges_the_plan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
